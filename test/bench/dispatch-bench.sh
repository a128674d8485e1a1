#!/usr/bin/env bash
# test/bench/dispatch-bench.sh — `make bench-dispatch`: delivery throughput.
#
#   1. webhooks: 20,000 messages (one request to 20,000 sites, a
#      broadcasting webhook channel) to a loopback nginx that answers 200
#      (../shared/bench/nginx-sink.conf), from the commit that enqueued them
#      to the last recorded outcome (and, for comparison, from the start of
#      the enqueueing transaction: create_request's own time included);
#      beside it, in the same run and in
#      alternation, the raw limit of a plain libcurl multi client
#      (../shared/bench/curl_multi_post.c, "fresh" handles, as many in
#      flight as the dispatcher) sending the same number of POSTs to the
#      same nginx.  RUNS pairs (default 5); medians and the median ratio.
#      Also the CPU (user + system, /proc and bash's time) per message of
#      the dispatcher workers, of the raw client and of nginx in each run:
#      steadier on a shared VM than the rates.
#   2. mails: 2,000 mails to the local SMTP server (test/integration/smtp_sink.py,
#      aiosmtpd, plain SMTP on loopback), RUNS runs, median.
#   3. the dispatcher workers' memory over 200,000 webhooks: RSS (and its
#      private part, RssAnon) before, in the middle and after.
# WORKERS (default 2) sets status_checker.dispatch_workers; CONCURRENCY is
# the transfers in flight of all of them together, as many as the raw client;
# BATCH (default 1000) the claim's batch, status_checker.dispatch_batch_size.
#
# A benchmark, not a test: it asserts nothing and prints a Markdown report
# (also saved under test/bench/results/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

RUNS=${RUNS:-5}
MESSAGES=${MESSAGES:-20000}
MAILS=${MAILS:-2000}
BIG=${BIG:-200000}
CONCURRENCY=${CONCURRENCY:-64}
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-1000}
DIR=${BENCH_DIR:-/tmp/status_checker-dispatch-bench}
DB=sc_dbench
[ "$BIG" -ge $((MAILS + MESSAGES)) ] || sc_die "BIG ($BIG) must be at least MAILS + MESSAGES ($((MAILS + MESSAGES))): the sites come from it"
out="$SC_ROOT/test/bench/results/dispatch-$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$(dirname "$out")"

sc_apt_install $SC_BUILD_PACKAGES nginx-light python3-aiosmtpd
sc_build_install
sc_bench_dir "$DIR"
smtp_pid=
cleanup() {
    sc_cluster_stop "$DIR/cluster"
    sc_nginx_stop "$DIR"
    [ -n "$smtp_pid" ] && kill "$smtp_pid" 2>/dev/null || true
}
trap cleanup EXIT

# the baselines of ../shared/bench: nginx (our port and paths) and the raw client
nginx_port=$(sc_nginx_sink "$DIR") || sc_die "nginx did not start"
cc -O2 -o "$DIR/curl_multi_post" "$SC_SHARED/bench/curl_multi_post.c" -lcurl
sink="http://127.0.0.1:$nginx_port/hook"

"$SC_PYTHON" "$SC_ROOT/test/integration/smtp_sink.py" "$DIR/mail" "$DIR/smtp.port" >"$DIR/smtp.log" 2>&1 &
smtp_pid=$!
for _ in $(seq 100); do [ -s "$DIR/smtp.port" ] && break; sleep 0.1; done
smtp_port=$(cat "$DIR/smtp.port")

sc_cluster_start "$DIR/cluster" >/dev/null
cat <<EOF | sc_as_pg tee -a "$DIR/cluster/data/postgresql.conf" >/dev/null
shared_preload_libraries = 'status_checker'
status_checker.database = '$DB'
status_checker.feed_watcher = off
status_checker.dispatch_concurrency = $CONCURRENCY
status_checker.dispatch_workers = $WORKERS
status_checker.dispatch_batch_size = $BATCH
status_checker.allowed_destinations = '127.0.0.0/8'
max_wal_size = '16GB'
checkpoint_timeout = '1h'
EOF
sc_psql -c "CREATE DATABASE $DB" >/dev/null
sc_as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/cluster/data" -l "$DIR/cluster/server.log" -w restart >/dev/null
q() { sc_psql -d $DB -At -c "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
wait_sent() {  # wait_sent N: until N messages are settled (one polling session: sc_wait_until)
    sc_wait_until $DB 900 "SELECT count(*) >= $1 FROM status_checker.outbox WHERE state IN ('sent', 'dead')" && return 0
    echo "timed out waiting for $1 messages" >&2; return 1
}

sc_log "setting up: $BIG sites"
sc_psql -d $DB >/dev/null <<SQL
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('配信ベンチ', 'admin', 'admin@example.com');
SELECT create_form(1, 'f', default_form_definition());
INSERT INTO site (tenant_id, code, name) SELECT 1, 'S' || lpad(g::text, 6, '0'), '拠点 ' || g FROM generate_series(1, $BIG) g;
SELECT create_site_group(1, 'mail');
SELECT create_site_group(1, 'hook');
-- the mail sites and the webhook sites in groups of their own; the mail sites have an email contact each
UPDATE site SET group_id = 1 WHERE site_id <= $MAILS;
UPDATE site SET group_id = 2 WHERE site_id > $MAILS AND site_id <= $MAILS + $MESSAGES;
INSERT INTO site_contact (tenant_id, site_id, channel, address) SELECT 1, g, 'email', 'site' || g || '@example.com' FROM generate_series(1, $MAILS) g;
SELECT add_channel(1, 'email', 'mail', '{"url": "smtp://127.0.0.1:$smtp_port", "from": "noreply@example.com", "starttls": "off"}');
SELECT add_channel(1, 'webhook', 'hook', '{"url": "$sink", "secret": "bench-secret-0123456789"}');
SELECT set_channel_enabled(2, false);
VACUUM ANALYZE;
SQL
# CPU (user + system) of processes, in clock ticks, from /proc
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{c=$0; sub(/^[^)]*\) /, "", c); split(c, a, " "); print a[12] + a[13]}' "/proc/$p/stat"))); done; echo $t; }
nginx_pids() { pgrep -P "$(cat "$DIR/nginx/nginx.pid")" | xargs; }
hz=$(getconf CLK_TCK)
us_per() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN {printf "%.0f", t * 1000000 / hz / n}'; }
reset_outbox() { q "DELETE FROM status_checker.outbox" >/dev/null; q "VACUUM status_checker.outbox" >/dev/null; q "CHECKPOINT" >/dev/null; }

# one run of the dispatcher: one request, MESSAGES webhooks.  Prints
# "FROM_COMMIT FROM_START CREATE_MS WORKERS_US NGINX_US": messages per
# second from the commit that enqueued them (clock_timestamp() in the next
# statement of the same session) to the last recorded outcome; the same
# from the start of the enqueueing transaction (enqueued_at = now():
# create_request's own time included); create_request's time in ms; and
# the CPU (user + system) per message of the dispatcher workers and of
# nginx over the run
dispatch_run() {
    reset_outbox
    q "SELECT status_checker.set_channel_enabled(2, true)" >/dev/null
    local committed workers ngx w0 n0 w1 n1
    workers=$(q "SELECT string_agg(pid::text, ' ') FROM status_checker.dispatcher_workers() WHERE running")
    ngx=$(nginx_pids)
    w0=$(ticks $workers); n0=$(ticks $ngx)
    committed=$(sc_psql -d $DB -At -c "SELECT status_checker.create_request(1, 1, 'bench', now() + interval '1 hour', '{\"groups\": [2]}')" \
                -c "SELECT clock_timestamp()" | tail -1)
    wait_sent "$MESSAGES"
    w1=$(ticks $workers); n1=$(ticks $ngx)
    q "SELECT status_checker.set_channel_enabled(2, false)" >/dev/null
    echo "$(q "SELECT round(count(*) / extract(epoch FROM max(sent_at) - '$committed'::timestamptz)) || ' ' ||
                      round(count(*) / extract(epoch FROM max(sent_at) - min(enqueued_at))) || ' ' ||
                      round(extract(epoch FROM '$committed'::timestamptz - min(enqueued_at)) * 1000)
               FROM status_checker.outbox WHERE state = 'sent'") $(us_per $((w1 - w0)) "$MESSAGES") $(us_per $((n1 - n0)) "$MESSAGES")"
}
# the raw client: "RATE CLIENT_US NGINX_US" (requests/s; CPU per request
# of the client, from bash's time, and of nginx)
raw_run() {
    local ngx n0 n1 rate cpu TIMEFORMAT='%U %S'
    ngx=$(nginx_pids); n0=$(ticks $ngx)
    { time "$DIR/curl_multi_post" "$sink" "$MESSAGES" "$CONCURRENCY" fresh > "$DIR/raw.out"; } 2> "$DIR/raw.time"
    n1=$(ticks $ngx)
    rate=$(sed -n 's/.*req\/s=\([0-9]*\).*/\1/p' "$DIR/raw.out")
    cpu=$(awk -v n="$MESSAGES" '{printf "%.0f", ($1 + $2) * 1000000 / n}' "$DIR/raw.time")
    echo "$rate $cpu $(us_per $((n1 - n0)) "$MESSAGES")"
}

# the first run is the disaster's first burst: request_target's statistics
# are those of an empty table until autovacuum analyses it
sc_log "first run (request_target's statistics stale)"
read first first_start _ <<<"$(dispatch_run)"; raw_run >/dev/null
sc_log "first run: dispatcher $first/s from the commit ($first_start/s from the transaction's start)"
: > "$DIR/pairs"
for i in $(seq "$RUNS"); do
    if [ $((i % 2)) = 1 ]; then r=$(raw_run); d=$(dispatch_run); else d=$(dispatch_run); r=$(raw_run); fi
    sc_log "pair $i: dispatcher $d (from commit, from start /s; create ms; workers', nginx's µs a message), raw libcurl $r (/s; client's, nginx's µs a request)"
    echo "$d $r" >> "$DIR/pairs"
done
# pairs: FROM_COMMIT FROM_START CREATE_MS WORKERS_US NGINX_US RAW RAW_US RAW_NGINX_US
col() { awk -v c="$1" '{print $c}' "$DIR/pairs"; }
d_med=$(col 1 | median); ds_med=$(col 2 | median); c_med=$(col 3 | median); r_med=$(col 6 | median)
wus_med=$(col 4 | median); nus_med=$(col 5 | median); rus_med=$(col 7 | median); rnus_med=$(col 8 | median)
ratio_med=$(awk '{printf "%.3f\n", $1 / $6}' "$DIR/pairs" | median)
ratio_start_med=$(awk '{printf "%.3f\n", $2 / $6}' "$DIR/pairs" | median)
runs() { col "$1" | xargs | tr ' ' ','; }

sc_log "mails"
: > "$DIR/mails"
for i in $(seq "$RUNS"); do
    reset_outbox
    q "SELECT status_checker.create_request(1, 1, 'mail bench', now() + interval '1 hour', '{\"groups\": [1]}')" >/dev/null
    wait_sent "$MAILS"
    q "SELECT round(count(*) / extract(epoch FROM max(sent_at) - min(enqueued_at))) FROM status_checker.outbox WHERE state = 'sent'" >> "$DIR/mails"
done
m_med=$(median < "$DIR/mails")

sc_log "memory over $BIG webhooks"
reset_outbox
q "SELECT status_checker.set_channel_enabled(1, false)" >/dev/null   # webhooks only
pids=$(q "SELECT string_agg(pid::text, ' ' ORDER BY worker) FROM status_checker.dispatcher_workers() WHERE running")
rss() {  # each worker's
    local w=0
    for pid in $pids; do
        printf 'worker %s: ' $w; w=$((w + 1))
        awk '/^VmRSS|^RssAnon|^RssShmem/ {sub(":", "", $1); printf "%s %s kB, ", $1, $2}' "/proc/$pid/status"
    done
}
before=$(rss)
q "SELECT status_checker.set_channel_enabled(2, true)" >/dev/null
q "SELECT status_checker.create_request(1, 1, 'memory', now() + interval '1 hour', '{\"all\": true}')" >/dev/null
wait_sent $((BIG / 2)); middle=$(rss)
wait_sent "$BIG"; after=$(rss)
big_rate=$(q "SELECT round(count(*) / extract(epoch FROM max(sent_at) - min(enqueued_at))) FROM status_checker.outbox WHERE state = 'sent'")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
{
echo "## Dispatch benchmark — $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) vCPU ($cpu), $(free -g | awk '/Mem:/ {print $2}') GB RAM; PostgreSQL $(pg_config --version | awk '{print $2}'), $(curl --version | head -1 | cut -d' ' -f1-2), nginx $(nginx -v 2>&1 | cut -d/ -f2)."
echo "Command: \`make bench-dispatch\` (RUNS=$RUNS MESSAGES=$MESSAGES CONCURRENCY=$CONCURRENCY WORKERS=$WORKERS BATCH=$BATCH)."
echo
echo "| measure | median | runs |"
echo "|---|---|---|"
echo "| dispatcher ($WORKERS workers): webhooks/s, enqueueing commit → last recorded outcome ($MESSAGES messages) | $d_med | $(runs 1) |"
echo "| raw libcurl multi client (curl_multi_post, fresh handles, $CONCURRENCY in flight), same nginx, same run | $r_med | $(runs 6) |"
echo "| **ratio dispatcher / raw** (median of the pairs' ratios) | **$ratio_med** | |"
echo "| dispatcher: webhooks/s from the start of the enqueueing transaction (create_request's time included) | $ds_med | $(runs 2) |"
echo "| ratio from the transaction's start / raw | $ratio_start_med | |"
echo "| create_request for the $MESSAGES sites (ms) | $c_med | $(runs 3) |"
echo "| CPU (user + system) per message of the dispatcher workers, µs | $wus_med | $(runs 4) |"
echo "| CPU per request of the raw client, µs | $rus_med | $(runs 7) |"
echo "| CPU per request of nginx: with the dispatcher / with the raw client, µs | $nus_med / $rnus_med | $(runs 5) / $(runs 8) |"
echo "| dispatcher, the first run after setup (from the commit; request_target's statistics stale, as in a disaster's first minute) | $first | |"
echo "| mails/s to the local SMTP server (aiosmtpd, $MAILS mails) | $m_med | $(xargs < "$DIR/mails" | tr ' ' ',') |"
echo
echo "Dispatcher memory over $BIG webhooks ($big_rate webhooks/s): before $before; after $((BIG / 2)): $middle; after $BIG: $after."
} | tee "$out"
