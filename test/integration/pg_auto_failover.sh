#!/usr/bin/env bash
# Integration: one automated failover with pg_auto_failover (requirements
# Q1, Q5), with the scripts of deploy/pg_auto_failover/ on 127.0.0.1.
# A monitor and two nodes; the extension on the primary sends the
# webhooks of a request of 500 sites.  The primary is lost in the middle
# (its keeper and its postgres killed); the monitor promotes the secondary
# by itself; its workers finish the sending: every message sent, none
# lost, duplicates counted.  Then the old primary's keeper starts again
# and the node rejoins as a secondary by itself.
# Never sleeps blindly: every wait polls with a deadline.  Prints TAP.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

command -v pg_autoctl >/dev/null || { echo "1..0 # SKIP pg_autoctl is not installed"; exit 0; }
work=$(mktemp -d /tmp/status_checker-paf.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
hook_pid=; keepers=()
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data XDG_RUNTIME_DIR=$work/run
export PATH=$PG_BINDIR:$PATH LISTEN=127.0.0.1 AUTH=trust SSL=--no-ssl
# (pg_autoctl reads PGHOST and PGPORT: those of the test runner's cluster must not leak in)
paf() { sc_as_pg env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE PATH="$PATH" XDG_CONFIG_HOME="$XDG_CONFIG_HOME" XDG_DATA_HOME="$XDG_DATA_HOME" \
            XDG_RUNTIME_DIR="$XDG_RUNTIME_DIR" LISTEN=$LISTEN AUTH=$AUTH SSL=$SSL \
            DATABASE=postgres MASTER_KEY="$work/master.key" LINK_BASE_URL=https://status.example.com/r/ "$@"; }
run_keeper() {  # run_keeper NAME: `pg_autoctl run` in the background, in a
                # process group of its own (its id in NAME.pgid)
    paf setsid bash -c 'echo $$ > "$1.pgid"; exec pg_autoctl run --pgdata "$1"' keeper "$work/$1" \
        >>"$work/$1.keeper.log" 2>&1 &
    keepers+=($!)
}
cleanup() {
    [ -n "$hook_pid" ] && kill "$hook_pid" 2>/dev/null || true
    for d in node1 node2 monitor; do
        [ -d "$work/$d" ] && paf pg_autoctl stop --pgdata "$work/$d" --fast >/dev/null 2>&1 || true
    done
    for p in "${keepers[@]}"; do kill "$p" 2>/dev/null || true; done
    for d in node1 node2 monitor; do
        [ -f "$work/$d/postmaster.pid" ] && sc_as_pg "$PG_BINDIR/pg_ctl" -D "$work/$d" -m immediate stop >/dev/null 2>&1 || true
    done
    [ -n "${SC_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
# a step that fails stops the script (set -e): say which, with the logs' ends
trap 'echo "# failed at line $LINENO"; tail -n 5 "$work"/*.log 2>/dev/null | sed "s/^/# /"' ERR
sc_as_pg mkdir -p "$XDG_RUNTIME_DIR"
sc_new_master_key "$work/master.key"

"$SC_PYTHON" "$SC_ROOT/test/integration/webhook_sink.py" "$work/hooks.jsonl" "$work/hook.port" >"$work/hook.log" 2>&1 &
hook_pid=$!
for _ in $(seq 100); do [ -s "$work/hook.port" ] && break; sleep 0.1; done
hook="http://127.0.0.1:$(cat "$work/hook.port")"

mport=$(sc_free_port); p1=$(sc_free_port); p2=$(sc_free_port)
monitor="postgres://autoctl_node@127.0.0.1:$mport/pg_auto_failover?sslmode=disable"
deploy=$SC_ROOT/deploy/pg_auto_failover
state() {  # state NODE → its reported state, as the monitor sees it
    paf pg_autoctl show state --pgdata "$work/monitor" --json 2>/dev/null |
        "$SC_PYTHON" -c "import json,sys; print(next((n['current_group_state'] for n in json.load(sys.stdin) if n['nodename'] == '$1'), ''))" 2>/dev/null || true
}
until_state() {  # until_state SECONDS NODE STATE...
    local deadline=$((SECONDS + $1)) node=$2 s; shift 2
    while [ $SECONDS -lt $deadline ]; do
        s=$(state "$node"); for want in "$@"; do [ "$s" = "$want" ] && return 0; done
        sleep 0.5
    done
    echo "# $node is '$(state "$node")'" >&2; return 1
}
psql_on() { local port=$1; shift; sc_as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"; }
sent() { psql_on "$1" -c "SELECT count(*) FROM status_checker.outbox WHERE request_id = 1 AND state = 'sent'" 2>/dev/null || echo 0; }

echo "1..9"
paf "$deploy/create-monitor.sh" "$work/monitor" "$mport" 127.0.0.1 >"$work/monitor.create.log" 2>&1
run_keeper monitor
wait_monitor() { local deadline=$((SECONDS + 60)); while [ $SECONDS -lt $deadline ]; do
    sc_as_pg pg_isready -q -h 127.0.0.1 -p "$mport" && return 0; sleep 0.2; done; return 1; }
ok "the monitor runs" wait_monitor
# fail over quickly in the test (production keeps the defaults: 20 s)
sc_as_pg psql -X -q -h 127.0.0.1 -p "$mport" -U postgres -d pg_auto_failover \
    -c "ALTER SYSTEM SET pgautofailover.health_check_period = 1000" \
    -c "ALTER SYSTEM SET pgautofailover.health_check_timeout = 1000" \
    -c "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" \
    -c "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = 500" \
    -c "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = 3000" \
    -c "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = 5000" \
    -c "SELECT pg_reload_conf()" >/dev/null

paf "$deploy/create-node.sh" "$work/node1" "$p1" 127.0.0.1 node1 "$monitor" >"$work/node1.create.log" 2>&1
# small nodes on a small test machine (pg_auto_failover sizes for the host)
echo "shared_buffers = '128MB'" | sc_as_pg tee -a "$work/node1/status_checker.conf" >/dev/null
echo "effective_cache_size = '1GB'" | sc_as_pg tee -a "$work/node1/status_checker.conf" >/dev/null
echo "status_checker.dispatch_rate_limit = 100" | sc_as_pg tee -a "$work/node1/status_checker.conf" >/dev/null
echo "status_checker.dispatch_retry_base = '100ms'" | sc_as_pg tee -a "$work/node1/status_checker.conf" >/dev/null
echo "status_checker.dispatch_retry_max = '1s'" | sc_as_pg tee -a "$work/node1/status_checker.conf" >/dev/null
echo "status_checker.allowed_destinations = '127.0.0.0/8'" | sc_as_pg tee -a "$work/node1/status_checker.conf" >/dev/null
# an isolated primary stops taking writes after this long (it must stay
# below the monitor's primary_demote_timeout, which waits for it)
paf pg_autoctl config set --pgdata "$work/node1" timeout.network_partition_timeout 3 >/dev/null
run_keeper node1
ok "node1 runs as the single node" "until_state 60 node1 single"
paf "$deploy/create-node.sh" "$work/node2" "$p2" 127.0.0.1 node2 "$monitor" >"$work/node2.create.log" 2>&1
paf pg_autoctl config set --pgdata "$work/node2" timeout.network_partition_timeout 3 >/dev/null
run_keeper node2
ok "node2 joins as the secondary (node1 primary)" "until_state 120 node2 secondary && until_state 30 node1 primary"

psql_on "$p1" >/dev/null <<SQL
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('北陸電機', 'admin', 'admin@example.com');
SELECT create_form(1, 'f', default_form_definition());
SELECT import_sites(1, 'code,name,municipality_code,lat,lon' || E'\n' ||
       string_agg(format('S%s,拠点%s,1720400,37.39,136.90', i, i), E'\n')) FROM generate_series(1, 500) i;
SELECT add_channel(1, 'webhook', 'sink', jsonb_build_object('url', '$hook/ok', 'secret', 'whsec-paf-test-0000'));
SELECT create_request(1, 1, '地震 被害報告', now() + interval '1 hour');
SQL
wait_sent() {  # wait_sent PORT N SECONDS
    local deadline=$((SECONDS + $3)); while [ $SECONDS -lt $deadline ]; do
        [ "$(sent "$1")" -ge "$2" ] && return 0; sleep 0.2; done; return 1; }
ok "node1 sends the request's webhooks" "wait_sent $p1 100 60"

# node1 is lost: its keeper's processes and its postgres die at once
at_loss=$(sent "$p1")
kill -9 -- -"$(cat "$work/node1.pgid")" 2>/dev/null || true
# (the postmaster was in the group; if not, stop it now)
sc_as_pg "$PG_BINDIR/pg_ctl" -D "$work/node1" -m immediate -t 10 stop >/dev/null 2>&1 || true
t_loss=$SECONDS
ok "the monitor promotes node2 by itself" "until_state 120 node2 wait_primary primary"
t_promoted=$SECONDS
ok "node2's dispatcher sends the rest: all 500 sent" "wait_sent $p2 500 120"
read -r total unique dups <<<"$(curl -s "$hook/_stats" | "$SC_PYTHON" -c "
import json, sys
k = json.load(sys.stdin)['keys']
print(sum(k.values()), len(k), sum(c - 1 for c in k.values()))")"
ok "the receiver saw all 500 idempotency keys: none lost ($total requests, $dups duplicates)" "[ \"$unique\" = 500 ]"
ok "no message is dead" "[ \"\$(psql_on $p2 -c \"SELECT count(*) FROM status_checker.outbox WHERE state = 'dead'\")\" = 0 ]"

# the old primary comes back: it rejoins as a secondary by itself
run_keeper node1
ok "node1 rejoins as the secondary (pg_rewind by pg_auto_failover)" "until_state 180 node1 secondary"
echo "# pg_auto_failover: node1 lost with $at_loss of 500 sent; node2 promoted after $((t_promoted - t_loss)) s; $total webhooks received, $unique keys, $dups duplicates"
exit $fail
