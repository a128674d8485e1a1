#!/usr/bin/env bash
# test/bench/run-bench.sh — `make bench`: the foundation benchmarks.
#
#   1. submit_report throughput (default form, 8 clients, one request of
#      100,000 sites, first reports and updates; the client holds its tokens
#      and, like both workloads, uses prepared statements) vs a plain
#      single-row INSERT of the same payload into an unindexed table, in pairs in the
#      same run (after VACUUM, a checkpoint and a warm-up of each; enough WAL
#      that no checkpoint falls inside the series; the order alternating);
#   2. create_request for 100,000 sites;
#   3. request_summary latency for one request of 100,000 targets, 60 % reported.
#
# Each figure is the median of RUNS runs (default 5); throughput is
# measured in PAIRS (default 10) alternating pairs of DURATION-second runs
# and the ratio is the median of the pairs' ratios.  A benchmark, not a
# test: it asserts nothing and prints a Markdown report (also saved under
# test/bench/results/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

RUNS=${RUNS:-5}
PAIRS=${PAIRS:-10}
DURATION=${DURATION:-6}
CLIENTS=${CLIENTS:-8}
DIR=${BENCH_DIR:-/tmp/status_checker-bench}
DB=sc_bench
out="$SC_ROOT/test/bench/results/$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$(dirname "$out")"

sc_apt_install $SC_BUILD_PACKAGES python3
sc_build_install
sc_cluster_stop "$DIR"; rm -rf "$DIR"
sc_cluster_start "$DIR"
trap 'sc_cluster_stop "$DIR"' EXIT
sc_psql -q -c "ALTER SYSTEM SET max_wal_size = '16GB'" -c "ALTER SYSTEM SET checkpoint_timeout = '1h'" -c "SELECT pg_reload_conf()" >/dev/null
sc_psql -c "CREATE DATABASE $DB" >/dev/null
psqlb() { sc_psql -d $DB "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
pgb() { sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -U postgres "$@"; }

sc_log "setting up: 100,000 sites"
codes=$SC_FIXTURES/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv
psqlb -v codes="$codes" >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
\set jma_csv `cat :'codes'`
SELECT load_jma_area_codes(:'jma_csv');
SELECT create_tenant('ベンチマーク', 'admin', 'admin@example.com');
SELECT create_form(1, '被害状況報告', default_form_definition('all'));
-- 100,000 sites over every municipality of the table, one group per prefecture
\timing on
SELECT import_sites(1, 'code,name,group_path,municipality_code,lat,lon' || E'\n' ||
    string_agg(format('S%s,拠点%s,全国/%s,%s,%s,%s', i, i, left(m.code, 2), m.code,
                      30 + (i % 1000) / 100.0, 130 + (i % 997) / 100.0), E'\n'))
FROM generate_series(1, 100000) i
JOIN (SELECT code, row_number() OVER (ORDER BY code) - 1 AS k FROM jma_municipality) m
  ON m.k = i % (SELECT count(*) FROM jma_municipality);
\timing off
CREATE TABLE public.bench_plain (payload jsonb);      -- the baseline: unindexed
SQL

answers='{"building": "partial", "detail": "外壁にひび、窓ガラス破損", "injured": 0, "operation": "limited", "lifelines": ["water"]}'

# ---------------------------------------------------------------- 2. create_request
sc_log "create_request for 100,000 sites ($RUNS runs)"
create_ms=()
for r in $(seq "$RUNS"); do
    ms=$(psqlb -At -c "SELECT round(extract(epoch FROM (clock_timestamp() - t0)) * 1000)
                       FROM (SELECT clock_timestamp() AS t0) s,
                            LATERAL (SELECT status_checker.create_request(1, 1, 'bench $r', now() + interval '1 day')) c")
    create_ms+=("$ms"); echo "   run $r: $ms ms"
done
create_med=$(printf '%s\n' "${create_ms[@]}" | median)

# ------------------------------------------------- 3. request_summary, 60 % reported
sc_log "reporting 60,000 of the 100,000 targets of request 1"
psqlb -At -c "SELECT count(status_checker.submit_report_for(1, 'S' || i,
                 CASE i % 3 WHEN 0 THEN '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}'::jsonb
                            WHEN 1 THEN '$answers'::jsonb
                            ELSE '{\"building\": \"severe\", \"detail\": \"倒壊\", \"injured\": 1, \"operation\": \"stopped\"}' END))
              FROM generate_series(1, 60000) i" >/dev/null
psqlb -c "VACUUM ANALYZE" >/dev/null
echo "SELECT * FROM status_checker.request_summary WHERE request_id = 1;" > "$DIR/summary.sql"
chmod 644 "$DIR/summary.sql"
summary_ms=()
for r in $(seq "$RUNS"); do
    rm -f "$DIR"/pgbench_log.*
    (cd "$DIR" && pgb -n -c 1 -T 5 -l --log-prefix="$DIR/pgbench_log" -f "$DIR/summary.sql" $DB >/dev/null)
    ms=$(cat "$DIR"/pgbench_log.* | awk '{print $3 / 1000.0}' | median)
    summary_ms+=("$ms"); echo "   run $r: median $ms ms"
done
summary_med=$(printf '%s\n' "${summary_ms[@]}" | median)
summary_check=$(psqlb -At -c "SELECT format('%s targets, %s responded, %s', targets, responded, level_counts)
                              FROM status_checker.request_summary WHERE request_id = 1")

# ------------------------------------------------ 1. submit_report vs plain INSERT
sc_log "submit_report vs plain INSERT: $CLIENTS clients, $PAIRS pairs of ${DURATION}s"
# The client holds its tokens, as the reporter page or an application does:
# the burst request's targets get bench tokens a client can derive
# ('AAA…<site number>', 43 base64url characters); only their SHA-256 is
# stored, exactly as issue_token stores a random one.
psqlb >/dev/null <<'SQL'
SELECT status_checker.create_request(1, 1, 'burst', now() + interval '1 day', '{"groups": [1]}') AS burst \gset
UPDATE status_checker.request_target t
   SET token_hash = sha256(convert_to(lpad(substr(s.code, 2), 43, 'A'), 'UTF8')), token_issued_at = now()
  FROM status_checker.site s
 WHERE s.tenant_id = t.tenant_id AND s.site_id = t.site_id AND t.request_id = :burst;
SQL
ntok=100000
cat > "$DIR/submit.sql" <<SQL
\set n random(1, $ntok)
SELECT status_checker.submit_report(lpad(:n::text, 43, 'A'), '$answers');
SQL
cat > "$DIR/insert.sql" <<SQL
INSERT INTO public.bench_plain (payload) VALUES ('$answers');
SQL
chmod 644 "$DIR"/*.sql
submit_tps=(); insert_tps=(); ratios=(); submit_cpu=(); insert_cpu=()
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }   # jiffies, steal excluded
hz=$(getconf CLK_TCK)
measure() {  # measure SCRIPT → "tps cpu_us_per_tx"
    local b0 b1 out tps n
    b0=$(busy)
    out=$(pgb -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$DIR/$1.sql" $DB)
    b1=$(busy)
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
    n=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
    awk -v t="$tps" -v b=$((b1 - b0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.0f %.0f", t, b * 1e6 / hz / n}'
}
# steady state: vacuum what issue_tokens left, one checkpoint, a warm-up of
# each workload (not counted); max_wal_size keeps checkpoints out of the pairs
psqlb -q -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
measure insert >/dev/null; measure submit >/dev/null
for r in $(seq "$PAIRS"); do
    if [ $((r % 2)) = 1 ]; then i=$(measure insert); t=$(measure submit)
    else t=$(measure submit); i=$(measure insert); fi
    insert_tps+=("${i% *}"); insert_cpu+=("${i#* }"); submit_tps+=("${t% *}"); submit_cpu+=("${t#* }")
    ratios+=("$(awk -v a="${t% *}" -v b="${i% *}" 'BEGIN {printf "%.0f", 100 * a / b}')")
    echo "   pair $r: plain INSERT ${i% *} tps (${i#* } µs CPU/tx), submit_report ${t% *} tps (${t#* } µs CPU/tx): ${ratios[-1]} %"
done
insert_med=$(printf '%s\n' "${insert_tps[@]}" | median)
submit_med=$(printf '%s\n' "${submit_tps[@]}" | median)
ratio=$(printf '%s\n' "${ratios[@]}" | median)
insert_cpu_med=$(printf '%s\n' "${insert_cpu[@]}" | median)
submit_cpu_med=$(printf '%s\n' "${submit_cpu[@]}" | median)
cpu_ratio=$(awk -v a="$insert_cpu_med" -v b="$submit_cpu_med" 'BEGIN {printf "%.0f", 100 * a / b}')
burst_check=$(psqlb -At -c "SELECT format('%s sites of %s answered, %s reports', responded, targets,
                                          (SELECT count(*) FROM status_checker.report WHERE request_id = s.request_id))
                            FROM status_checker.request_summary s ORDER BY request_id DESC LIMIT 1")

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
{
echo "## Foundation benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM; $(sc_as_pg "$PG_BINDIR/postgres" --version);"
echo "server: fsync on, synchronous_commit on, shared_buffers 256MB, max_wal_size 16GB, checkpoint_timeout 1h (no checkpoint inside the series; VACUUM, CHECKPOINT and a warm-up of each workload first); pgbench on the same machine."
echo "Command: \`make bench\` (RUNS=$RUNS PAIRS=$PAIRS DURATION=$DURATION CLIENTS=$CLIENTS). Medians of $RUNS runs; throughput: $PAIRS alternating pairs of ${DURATION}-second runs, the ratio is the median of the pairs' ratios."
echo
echo "| benchmark | runs | median | goal |"
echo "|---|---|---|---|"
echo "| submit_report, $CLIENTS clients, prepared, one request of $ntok sites | ${submit_tps[*]} tps | **$submit_med tps** | |"
echo "| baseline: plain INSERT of the same payload, unindexed table, same run | ${insert_tps[*]} tps | **$insert_med tps** | |"
echo "| submit_report / plain INSERT, per pair | ${ratios[*]} % | **$ratio %** | ≥ 50 % |"
echo "| CPU per transaction (server and pgbench, steal excluded): submit_report | ${submit_cpu[*]} µs | **$submit_cpu_med µs** | |"
echo "| CPU per transaction: plain INSERT | ${insert_cpu[*]} µs | **$insert_cpu_med µs** | |"
echo "| CPU-bound ratio (INSERT CPU / submit_report CPU) | | **$cpu_ratio %** | |"
echo "| request_summary, 100,000 targets, 60 % reported (1 client, per-call latency) | ${summary_ms[*]} ms | **$summary_med ms** | < 5 ms |"
echo "| create_request for 100,000 sites | ${create_ms[*]} ms | **$create_med ms** | < 3,000 ms |"
echo
echo "Checks: summary saw $summary_check; the burst request ended with $burst_check."
} | tee "$out"
