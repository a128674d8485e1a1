#!/usr/bin/env bash
# test/bench/burst-bench.sh — `make bench-burst`: the disaster burst, the
# whole system at once on one machine (issue: resilience, part 5).
#
#   100,000 sites of 500 tenants (200 each, over every municipality of
#   JMA's table), each tenant with a webhook channel to a loopback nginx
#   and a rule "震度4以上".  The recorded Noto earthquake (2024-01-01) is
#   published by the local feed server (test/integration/feed_server.py);
#   the feed watcher ingests it, each tenant's rule asks its shaken sites,
#   the dispatcher sends one webhook per site, and as soon as the links
#   exist 64 concurrent clients (pgbench) submit one report per asked site
#   (all but the remainder of a division by 64)
#   through the SQL path (submit_report), while the sending goes on.
#
#   Reported per run: sites asked, seconds from publication to the last
#   request created and to the last message sent; reports per second
#   sustained and submit_report latency p50/p99 (pgbench's per-transaction
#   log); and that nothing was lost: reports stored = acknowledged,
#   messages sent = queued (nginx logged each idempotency key; duplicates
#   counted), none dead.  RUNS runs (default 3) from the same starting
#   database (a template copy), medians.  No HTTP path yet (the web issue).
#
# A benchmark, not a test: it asserts nothing and prints a Markdown report
# (also saved under test/bench/results/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

RUNS=${RUNS:-3}
TENANTS=${TENANTS:-500}
SITES=${SITES:-200}               # per tenant
CLIENTS=${CLIENTS:-64}
DIR=${BENCH_DIR:-/tmp/status_checker-burst-bench}
DB=sc_burst
out="$SC_ROOT/test/bench/results/burst-$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$(dirname "$out")"

sc_apt_install $SC_BUILD_PACKAGES nginx-light python3
sc_build_install
sc_bench_dir "$DIR"
feed_pid=
cleanup() {
    sc_cluster_stop "$DIR/cluster"
    sc_nginx_stop "$DIR"
    [ -n "$feed_pid" ] && kill "$feed_pid" 2>/dev/null || true
}
trap cleanup EXIT

# the webhook sink: ../shared/bench's nginx, logging each idempotency key
nginx_port=$(sc_nginx_sink "$DIR" "$DIR/nginx/keys.log") || sc_die "nginx did not start"
sink="http://127.0.0.1:$nginx_port/hook"

# the feed server
"$SC_PYTHON" "$SC_ROOT/test/integration/feed_server.py" "$SC_FIXTURES" "$DIR/feed.port" >"$DIR/feed.log" 2>&1 &
feed_pid=$!
for _ in $(seq 100); do [ -s "$DIR/feed.port" ] && break; sleep 0.1; done
feeds="http://127.0.0.1:$(cat "$DIR/feed.port")"

sc_cluster_start "$DIR/cluster" >/dev/null
cat <<EOF | sc_as_pg tee -a "$DIR/cluster/data/postgresql.conf" >/dev/null
shared_preload_libraries = 'status_checker'
status_checker.database = '$DB'
status_checker.dispatch_concurrency = 64
status_checker.dispatch_batch_size = 1000
status_checker.feed_timeout = '10s'
status_checker.allowed_destinations = '127.0.0.0/8'
max_connections = 200
max_wal_size = '16GB'
checkpoint_timeout = '1h'
EOF
restart() { sc_as_pg "$PG_BINDIR/pg_ctl" -D "$DIR/cluster/data" -l "$DIR/cluster/server.log" -w restart >/dev/null; }
restart
q() { sc_psql -d $DB -At -c "$1"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
pgb() { sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -U postgres "$@"; }

sc_log "setting up: $TENANTS tenants × $SITES sites"
codes=$SC_FIXTURES/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv
t0=$SECONDS
sc_psql -c "CREATE DATABASE ${DB}_base" >/dev/null
sc_psql -d ${DB}_base -v codes="$codes" -v tenants="$TENANTS" -v sites="$SITES" -v sink="$sink" >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
\set jma_csv `cat :'codes'`
SELECT load_jma_area_codes(:'jma_csv');
CREATE TEMP TABLE m AS SELECT code, row_number() OVER (ORDER BY code) - 1 AS k FROM jma_municipality;
SELECT count(*) AS nm FROM m \gset
SELECT format($$
    SELECT create_tenant('会社%1$s', 'admin', 'admin%1$s@example.com');
    SELECT create_form(%1$s, '被害状況報告', default_form_definition());
    SELECT import_sites(%1$s, 'code,name,municipality_code,lat,lon' || E'\n' ||
        string_agg(format('S%%s,拠点%%s,%%s,%%s,%%s', i, i, m.code, 30 + (i %% 1000) / 100.0, 130 + (i %% 997) / 100.0), E'\n'))
      FROM generate_series(1, %2$s) i JOIN m ON m.k = (i * 7 + %1$s * 13) %% %3$s;
    SELECT add_channel(%1$s, 'webhook', 'hook', jsonb_build_object('url', %4$L, 'secret', 'whsec-burst-bench-0000'));
    SELECT create_trigger_rule(%1$s, '震度4以上', (SELECT form_id FROM form WHERE tenant_id = %1$s), '4');
    $$, t, :sites, :nm, :'sink')
FROM generate_series(1, :tenants) t \gexec
SQL
setup_s=$((SECONDS - t0))
sc_log "set up in ${setup_s} s"

declare -a r_sites r_req r_sent r_rps r_p50 r_p99 r_lost r_dups r_reports
for run in $(seq "$RUNS"); do
    sc_log "run $run of $RUNS"
    sc_psql -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB TEMPLATE ${DB}_base" >/dev/null
    restart                      # the workers start in the new copy
    : > "$DIR/nginx/keys.log"; kill -USR1 "$(cat "$DIR/nginx/nginx.pid")"   # reopen the log
    curl -s -X POST "$feeds/_control/reset" >/dev/null
    q "SELECT status_checker.add_feed('jma_atom', '$feeds/jma/eqvol.xml', '1 second')" >/dev/null
    q "CHECKPOINT" >/dev/null
    # the watcher knows the (still empty) feed and polls it every second
    deadline=$((SECONDS + 60))
    until [ "$(q "SELECT polls >= 2 FROM status_checker.feed")" = t ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done

    # the earthquake is published: every telegram of the recorded feed
    published=$(date +%s.%N)
    while [ "$(curl -s -X POST "$feeds/_control/advance" | "$SC_PYTHON" -c 'import json,sys; a=json.load(sys.stdin); print(int(a["published"] < a["of"]))')" = 1 ]; do :; done
    # all tenants' rules have fired (one request each), their messages queued
    sc_wait_until $DB 600 "SELECT count(*) = $TENANTS FROM status_checker.request" 0.05 || true
    requested=$(date +%s.%N)
    asked=$(q "SELECT sum(targets) FROM status_checker.request")
    # the links of the asked sites, for the reporters
    q "CREATE TABLE public.links AS SELECT row_number() OVER () AS n, token FROM status_checker.request r, status_checker.issue_tokens(r.request_id)" >/dev/null
    q "ALTER TABLE public.links ADD PRIMARY KEY (n)" >/dev/null
    # 64 clients, one report per asked site, while the sending goes on
    # (each transaction takes the next link: one report per asked site)
    q "CREATE SEQUENCE public.link_seq" >/dev/null
    cat > "$DIR/report.sql" <<'SQL'
WITH l AS (SELECT nextval('public.link_seq') AS n)
SELECT status_checker.submit_report(links.token, '{"building": "partial", "detail": "壁にひび", "injured": 0, "operation": "limited"}')
FROM l JOIN public.links USING (n);
SQL
    per_client=$((asked / CLIENTS))
    chmod 644 "$DIR/report.sql"
    rm -f "$DIR"/pgbench_log.*
    (cd "$DIR" && pgb -n -c "$CLIENTS" -j 2 -t "$per_client" -l --log-prefix="$DIR/pgbench_log" \
        -f "$DIR/report.sql" $DB > "$DIR/pgbench.out" 2>&1) &
    pgb_pid=$!
    # (one polling session: a new psql each time would take CPU from what is measured)
    sc_wait_until $DB 900 "SELECT NOT EXISTS (SELECT 1 FROM status_checker.outbox WHERE state IN ('queued', 'sending', 'retrying'))" 0.05 || true
    all_sent=$(date +%s.%N)
    wait $pgb_pid || { cat "$DIR/pgbench.out" >&2; sc_die "pgbench failed"; }

    reports=$((per_client * CLIENTS))
    rps=$(sed -n "s/^tps = \([0-9.]*\) .*/\1/p" "$DIR/pgbench.out" | head -1 | xargs printf "%.0f")
    sort -n -k3,3 "$DIR"/pgbench_log.* | awk '{a[NR]=$3} END {printf "%.2f %.2f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}' > "$DIR/pct"
    read -r p50 p99 < "$DIR/pct"
    stored=$(q "SELECT count(*) FROM status_checker.report")
    queued=$(q "SELECT count(*) FROM status_checker.outbox")
    sent=$(q "SELECT count(*) FROM status_checker.outbox WHERE state = 'sent'")
    dead=$(q "SELECT count(*) FROM status_checker.outbox WHERE state = 'dead'")
    # nginx flushes its log within a second
    for _ in $(seq 50); do [ "$(sort -u "$DIR/nginx/keys.log" | grep -c .)" -ge "$sent" ] && break; sleep 0.1; done
    received=$(grep -c . "$DIR/nginx/keys.log" || true); keys=$(sort -u "$DIR/nginx/keys.log" | grep -c . || true)
    lost=$(( (reports - stored) + (queued - sent) + (queued - keys) ))
    r_sites+=("$asked"); r_reports+=("$stored")
    r_req+=("$(awk "BEGIN {printf \"%.1f\", $requested - $published}")"); r_sent+=("$(awk "BEGIN {printf \"%.1f\", $all_sent - $published}")")
    r_rps+=("$rps"); r_p50+=("$p50"); r_p99+=("$p99"); r_lost+=("$lost"); r_dups+=("$((received - keys))")
    echo "run $run: asked $asked sites; requests after ${r_req[-1]} s; all $sent/$queued messages sent after ${r_sent[-1]} s (dead $dead, nginx $received requests, $keys keys); reports $stored/$reports at $rps/s, p50 $p50 ms, p99 $p99 ms; lost $lost"
    q "DROP TABLE public.links; DROP SEQUENCE public.link_seq" >/dev/null
done

med() { printf '%s\n' "$@" | median; }
{
echo "## Disaster burst ($(date -u +%Y-%m-%d), \`make bench-burst\`)"
echo
echo "$TENANTS tenants × $SITES sites = $((TENANTS * SITES)) sites over every municipality of JMA's table; rule 震度4以上 per tenant; the recorded Noto earthquake (2024-01-01) published by the local feed server; one webhook per asked site to a loopback nginx; $CLIENTS pgbench clients (2 threads) submit one report per asked site through \`submit_report\` while the messages go out. One machine: $(nproc) vCPU, PostgreSQL 15 (fsync on, synchronous_commit on, shared_buffers 256MB), nginx, pgbench and the feed server on it too. $RUNS runs from the same starting database; setup (tenants, sites, rules) took $setup_s s and is not counted."
echo
echo "| | runs | median |"
echo "|---|---|---|"
echo "| sites asked (requests' targets) | ${r_sites[*]} | $(med "${r_sites[@]}") |"
echo "| publication → last request created (s) | ${r_req[*]} | **$(med "${r_req[@]}")** |"
echo "| publication → last message sent (s) | ${r_sent[*]} | **$(med "${r_sent[@]}")** |"
echo "| reports per second sustained (64 clients, during the sending) | ${r_rps[*]} | **$(med "${r_rps[@]}")** |"
echo "| submit_report latency p50 (ms) | ${r_p50[*]} | **$(med "${r_p50[@]}")** |"
echo "| submit_report latency p99 (ms) | ${r_p99[*]} | **$(med "${r_p99[@]}")** |"
echo "| reports stored | ${r_reports[*]} | |"
echo "| lost (reports not stored + messages not sent + keys nginx never saw) | ${r_lost[*]} | |"
echo "| duplicate webhooks (same idempotency key twice) | ${r_dups[*]} | |"
} | tee "$out"
