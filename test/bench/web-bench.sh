#!/usr/bin/env bash
# test/bench/web-bench.sh — `make bench-web`: the HTTP worker (2 workers on
# 127.0.0.1) under wrk, against the same reports submitted through plain
# SQL with pgbench, in the same run:
#
#   1. reporter page GETs (GET /r/<token> of random sites), 64 connections:
#      requests per second and latency percentiles (goal: p99 < 50 ms);
#   2. report POSTs (the page's form, a fresh idempotency key each, 303 to
#      the confirmation), 64 connections;
#   3. the same reports through SQL: submit_report(token, answers, key),
#      64 pgbench clients (goal: POSTs ≥ 50 % of this).
#
# wrk and pgbench run on the same 2-core machine as the server, so they take
# their share of the CPU.  Each figure is the median of RUNS runs (default
# 3).  A benchmark, not a test: it asserts nothing and prints a Markdown
# report (also saved under test/bench/results/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

RUNS=${RUNS:-3}
SITES=${SITES:-10000}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
DIR=${BENCH_DIR:-/tmp/status_checker-bench-web}
out="$SC_ROOT/test/bench/results/web-$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$(dirname "$out")"

sc_apt_install $SC_BUILD_PACKAGES wrk
sc_build_install
sc_bench_dir "$DIR"
hport=$(sc_free_port)
db=sc_bench_web
trap 'sc_cluster_stop "$DIR/cluster"' EXIT
# wrk's connections all come from 127.0.0.1 but stand for many clients: no per-address connection limit
sc_worker_cluster "$DIR/cluster" $db "status_checker.http_listen = '127.0.0.1:$hport'" "status_checker.http_workers = 2" \
    "status_checker.http_max_connections_per_address = 0" "max_wal_size = '8GB'"
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

sc_log "loading $SITES sites and a request"
sc_psql -d $db -q >/dev/null <<SQL
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('ベンチ', 'admin', 'admin@example.com');
SELECT import_sites(1, 'code,name,group_path,municipality_code,lat,lon' || E'\n' ||
       string_agg(format('S%s,拠点%s,全国/G%s,1310100,%s,%s', i, i, i % 47, 30 + (i % 1000) / 100.0, 130 + (i % 997) / 100.0), E'\n'))
FROM generate_series(1, $SITES) i;
SELECT create_form(1, 'f', default_form_definition('all'));
SELECT create_request(1, 1, 'ベンチ', now() + interval '1 day');
CREATE TABLE public.bench_token (i integer PRIMARY KEY, token text NOT NULL);
INSERT INTO public.bench_token SELECT row_number() OVER (), token FROM issue_tokens(1);
SQL
sc_psql -d $db -At -c "SELECT token FROM public.bench_token ORDER BY i" > "$DIR/tokens.txt"
for _ in $(seq 100); do [ "$(curl -s "http://127.0.0.1:$hport/healthz")" = ok ] && break; sleep 0.1; done

cat > "$DIR/get.lua" <<LUA
local tokens = {}
for line in io.lines("$DIR/tokens.txt") do tokens[#tokens + 1] = line end
math.randomseed(os.time())
request = function()
    return wrk.format("GET", "/r/" .. tokens[math.random(#tokens)])
end
LUA
cat > "$DIR/post.lua" <<LUA
local tokens = {}
for line in io.lines("$DIR/tokens.txt") do tokens[#tokens + 1] = line end
math.randomseed(os.time())
local n = 0
request = function()
    n = n + 1
    local key = string.format("%08x%08x%016x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), n)
    local body = "_key=" .. key .. "&q.building=none&q.injured=0&q.operation=normal&q.lifelines=water"
    return wrk.format("POST", "/r/" .. tokens[math.random(#tokens)],
                      {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
done = function(summary, latency, requests)
    io.write(string.format("non2xx3xx %d\n", summary.errors.status))
end
LUA
cat > "$DIR/sql.pgb" <<'PGB'
\set i random(1, :sites)
SELECT status_checker.submit_report((SELECT token FROM public.bench_token WHERE i = :i),
       '{"building": "none", "injured": 0, "operation": "normal", "lifelines": ["water"]}', md5(random()::text));
PGB
chmod 644 "$DIR"/*.lua "$DIR/sql.pgb" "$DIR/tokens.txt"

# wrk's "Latency Distribution" in ms
pct() { awk -v p="$1" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 } print v }'; }
wrkrun() {  # wrkrun SCRIPT → the wrk report
    wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$1" "http://127.0.0.1:$hport" 2>&1
}
declare -a get_rps get_p50 get_p99 post_rps post_p99 sql_tps post_bad
for run in $(seq 1 "$RUNS"); do
    sc_log "run $run: GET /r/<token>"
    r=$(wrkrun "$DIR/get.lua")
    get_rps+=("$(echo "$r" | awk '/^Requests\/sec/ {print $2}')")
    get_p50+=("$(echo "$r" | pct 50%)")
    get_p99+=("$(echo "$r" | pct 99%)")
    sc_log "run $run: POST /r/<token>"
    r=$(wrkrun "$DIR/post.lua")
    post_rps+=("$(echo "$r" | awk '/^Requests\/sec/ {print $2}')")
    post_p99+=("$(echo "$r" | pct 99%)")
    post_bad+=("$(echo "$r" | awk '/^non2xx3xx/ {print $2}')")
    sc_log "run $run: submit_report through SQL (pgbench)"
    r=$(sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -n -U postgres -c "$CONNS" -j 2 -T "$DURATION" \
            -D sites="$SITES" -f "$DIR/sql.pgb" $db 2>&1)
    sql_tps+=("$(echo "$r" | awk '/^tps/ {print $3}')")
done

m() { printf '%s\n' "$@" | median; }
g_rps=$(m "${get_rps[@]}"); g50=$(m "${get_p50[@]}"); g99=$(m "${get_p99[@]}")
p_rps=$(m "${post_rps[@]}"); p99=$(m "${post_p99[@]}"); s_tps=$(m "${sql_tps[@]}")
ratio=$(awk -v a="$p_rps" -v b="$s_tps" 'BEGIN {printf "%.0f", 100 * a / b}')
reports=$(sc_psql -d $db -At -c "SELECT count(*) FROM status_checker.report")
{
    echo "## Web: the HTTP worker under wrk ($(date -u +%Y-%m-%d), $(nproc) cores)"
    echo
    echo "\`make bench-web\` — $SITES sites, 2 HTTP workers, $CONNS connections, ${DURATION} s per run, median of $RUNS runs"
    echo "(wrk and pgbench on the same machine as the server)."
    echo
    echo "| workload | per second | p50 | p99 | runs |"
    echo "|---|---|---|---|---|"
    echo "| reporter page GET \`/r/<token>\` | $g_rps | $g50 ms | $g99 ms | ${get_rps[*]} |"
    echo "| report POST \`/r/<token>\` (form, 303) | $p_rps | | $p99 ms | ${post_rps[*]} |"
    echo "| the same reports through SQL (\`submit_report(token, answers, key)\`, pgbench) | $(printf '%.0f' "$s_tps") | | | $(printf '%.0f ' "${sql_tps[@]}")|"
    echo
    echo "POSTs reach **$ratio %** of the SQL path (goal ≥ 50 %); GET p99 **$g99 ms** (goal < 50 ms)."
    echo "GET p99 of each run: ${get_p99[*]} ms; POST p99 of each run: ${post_p99[*]} ms."
    echo "Responses other than 2xx/3xx to POSTs: ${post_bad[*]}. Reports stored in all: $reports."
} | tee "$out"
