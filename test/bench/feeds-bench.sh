#!/usr/bin/env bash
# test/bench/feeds-bench.sh — `make bench-feeds` (also part of `make bench`):
#
#   1. documents parsed per second by each parser (the extension's parser
#      code, built with the server's flags, outside the server), against the
#      bare library parse of the same documents (libxml2 / jansson, no event
#      model) measured in the same run;
#   2. one VXSE53 that shakes 100,000 sites of 100 tenants (one rule each):
#      time from calling ingest_feed_document to all 100 requests and
#      100,000 targets committed (psql \timing, autocommit, so the commit is
#      included), against the same 100,000 targets made by 100 plain
#      create_request calls in one transaction;
#   3. in the same runs, one VPWW54 気象警報・注意報 for a whole prefecture
#      (山口県, JMA's sample: 高潮警報 in 18 of its 19 municipalities, 乾燥
#      and 霜注意報 in all) against 100,000 other sites of 100 tenants (in
#      its 19 municipalities, in a database of their own, so that neither
#      benchmark sees the other's rules), each tenant with one warning rule
#      (any_warning, min_level 4): time from ingest_feed_document to all
#      requests and targets committed.  Each run's telegram is issued four
#      days after the last one (its date rewritten), so that it opens a new
#      episode, as the earthquake's runs each use a new EventID.
#
# Median of RUNS runs (default 5).  A benchmark, not a test: it asserts
# nothing and prints a Markdown report (also saved under test/bench/results/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

RUNS=${RUNS:-5}
SECONDS_PER_RUN=${PARSE_SECONDS:-2}
DIR=${BENCH_DIR:-/tmp/status_checker-bench-feeds}
DB=sc_bench_feeds
F=$SC_FIXTURES
out="$SC_ROOT/test/bench/results/feeds-$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$(dirname "$out")"
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

sc_apt_install $SC_BUILD_PACKAGES python3
sc_build_install

# ---------------------------------------------------------------- 1. parsers
sc_log "parsers: $RUNS runs of ${SECONDS_PER_RUN}s each"
feedcat=$(mktemp /tmp/feedcat.XXXXXX)
trap 'rm -f "$feedcat"' EXIT
cflags=$(pg_config --cflags)
gcc $cflags -I"$SC_ROOT/src" $(xml2-config --cflags) -o "$feedcat" "$SC_ROOT/test/fuzz/feedcat.c" \
    "$SC_ROOT/src/feeds/feed_parse.c" "$SC_ROOT/src/feeds/feed_common.c" "$SC_ROOT/src/feeds/feed_jma.c" "$SC_ROOT/src/feeds/feed_jma_weather.c" "$SC_ROOT/src/feeds/feed_json.c" \
    "$SC_ROOT/src/shindo/shindo_core.c" $(xml2-config --libs) -ljansson
declare -a rows
parse_row() {  # parse_row LABEL SOURCE FILES...
    local label=$1 source=$2; shift 2
    local ours=() base=() o b
    for _ in $(seq "$RUNS"); do
        o=$("$feedcat" -b "$SECONDS_PER_RUN" "$source" "$@" | cut -f1)
        b=$("$feedcat" -r "$SECONDS_PER_RUN" "$source" "$@" | cut -f1)
        ours+=("$o"); base+=("$b")
    done
    local om bm
    om=$(printf '%s\n' "${ours[@]}" | median); bm=$(printf '%s\n' "${base[@]}" | median)
    local kb=$(( $(cat "$@" | wc -c) / $# / 1024 ))
    rows+=("| $label | $# | ${kb} KB | ${ours[*]} | **$om** | $bm | $(awk -v o="$om" -v b="$bm" 'BEGIN {printf "%.0f %%", 100 * o / b}') |")
    echo "   $label: $om docs/s (bare library parse: $bm)"
}
parse_row "JMA VXSE51 震度速報" jma "$F"/jma/VXSE51_*.xml "$F"/jma/official_samples/VXSE51_*.xml
parse_row "JMA VXSE52 震源" jma "$F"/jma/VXSE52_*.xml "$F"/jma/official_samples/VXSE52_*.xml
parse_row "JMA VXSE53 震源・震度" jma "$F"/jma/VXSE53_*.xml "$F"/jma/official_samples/VXSE53_*.xml
parse_row "JMA VTSE41 津波警報" jma "$F"/jma/VTSE41_*.xml "$F"/jma/official_samples/VTSE41_*.xml
parse_row "JMA VPWW53/54 気象警報・注意報" jma "$F"/jma/weather/VPWW5*.xml
parse_row "JMA Atom feed (169 and 17 entries)" jma_atom "$F"/jma/atom_*.xml
parse_row "P2PQuake history (30 items) and bodies" p2pquake "$F"/p2pquake/*.json "$F"/p2pquake/epsp_converted_from_jmaxml/*.json
parse_row "USGS summary feeds and a detail document" usgs "$F"/usgs/*.geojson

# ---------------------------------------------------------------- 2. firing
sc_log "trigger firing: 100 tenants × 1,000 sites, one VXSE53"
sc_cluster_stop "$DIR"; rm -rf "$DIR"
sc_cluster_start "$DIR"
trap 'rm -f "$feedcat"; sc_cluster_stop "$DIR"' EXIT
sc_psql -c "CREATE DATABASE $DB" >/dev/null
psqlb() { sc_psql -d $DB "$@"; }
psqlb -v codes="$F/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv" \
      -v doc="$F/jma/VXSE53_20210217_fukushima-oki_maxint3.xml" >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
\set jma_csv `cat :'codes'`
SELECT load_jma_area_codes(:'jma_csv');
\set vxse53 `cat :'doc'`
CREATE TABLE public.doc AS SELECT :'vxse53'::text AS body;
-- the 100 municipalities the telegram lists, 10 sites of each per tenant
CREATE TABLE public.cities AS
SELECT row_number() OVER (ORDER BY code) - 1 AS k, code
FROM (SELECT DISTINCT x ->> 'code' AS code
      FROM jsonb_array_elements(parse_feed_document('jma', (SELECT body FROM public.doc)) -> 'events' -> 0 -> 'intensities') x
      WHERE x ->> 'scope' = 'city') c;
DO $$
DECLARE
    t bigint;
BEGIN
    FOR i IN 1 .. 100 LOOP
        t := status_checker.create_tenant('テナント' || i, 'admin', 'admin@t' || i || '.example');
        PERFORM status_checker.import_sites(t, 'code,name,municipality_code,lat,lon' || E'\n' ||
            (SELECT string_agg(format('S%s,拠点%s,%s,37.5,140.5', j, j, c.code), E'\n')
             FROM generate_series(1, 1000) j JOIN public.cities c ON c.k = j % 100));
        PERFORM status_checker.create_form(t, '安否', status_checker.default_form_definition('ja'));
        PERFORM status_checker.create_trigger_rule(t, '震度1以上', (SELECT max(form_id) FROM status_checker.form WHERE tenant_id = t), '1');
    END LOOP;
END $$;
VACUUM ANALYZE;
SQL

# ---------------------------------------------------------------- 3. warnings
WDB=sc_bench_warnings
WDOC="$F/jma/weather/VPWW54_sample_150916__15_11_01.xml"
sc_log "warning rules: 100 tenants × 1,000 sites in 山口県, one VPWW54"
sc_psql -c "CREATE DATABASE $WDB" >/dev/null
sc_psql -d $WDB -v codes="$F/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv" \
      -v doc="$WDOC" >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
\set jma_csv `cat :'codes'`
SELECT load_jma_area_codes(:'jma_csv');
\set vpww54 `cat :'doc'`
CREATE TABLE public.doc AS SELECT :'vpww54'::text AS body;
-- the municipalities the telegram lists (all of 山口県), 1,000 sites per tenant over them
CREATE TABLE public.cities AS
SELECT row_number() OVER (ORDER BY code) - 1 AS k, code
FROM (SELECT DISTINCT x ->> 'code' AS code
      FROM jsonb_array_elements(parse_feed_document('jma', (SELECT body FROM public.doc)) -> 'events' -> 0 -> 'warnings') x
      WHERE x ->> 'scope' = 'city') c;
DO $$
DECLARE
    t bigint;
    n integer := (SELECT count(*) FROM public.cities);
BEGIN
    FOR i IN 1 .. 100 LOOP
        t := status_checker.create_tenant('テナント' || i, 'admin', 'admin@t' || i || '.example');
        PERFORM status_checker.import_sites(t, 'code,name,municipality_code,lat,lon' || E'\n' ||
            (SELECT string_agg(format('S%s,拠点%s,%s,34.2,131.5', j, j, c.code), E'\n')
             FROM generate_series(1, 1000) j JOIN public.cities c ON c.k = j % n));
        PERFORM status_checker.create_form(t, '安否', status_checker.default_form_definition('ja'));
        PERFORM status_checker.create_trigger_rule(t, '警戒レベル4相当以上', (SELECT max(form_id) FROM status_checker.form WHERE tenant_id = t),
                                                   hazard => 'any_warning', min_level => 4);
    END LOOP;
END $$;
VACUUM ANALYZE;
SQL

# wall time (psql \timing, commit included) and the backend's CPU time
# (/proc/<pid>/stat utime + stime): on this shared VM the wall time swings
# with CPU steal, the backend's CPU time much less
timed() {  # timed SQL [DB] → "wall_ms cpu_ms"
    sc_psql -d "${2:-$DB}" -At <<SQL | awk '/^cpu/ {c[++k] = $2} /^Time:/ {w = $2} END {printf "%s %d\n", w, (c[2] - c[1]) * 10}'
SELECT pg_backend_pid() AS pid \gset
\setenv BENCH_PID :pid
\! awk '{print "cpu", \$14 + \$15}' /proc/\$BENCH_PID/stat
\timing on
$1
\timing off
\! awk '{print "cpu", \$14 + \$15}' /proc/\$BENCH_PID/stat
SQL
}
fire_ms=(); fire_cpu=(); base_ms=(); base_cpu=(); check=
wx_ms=(); wx_cpu=(); wx_check=
for r in $(seq "$RUNS"); do
    eid=$(printf '2021021723%04d' "$r")
    read -r w c < <(timed "SELECT status_checker.ingest_feed_document('jma', replace(body, '<EventID>20210217230627</EventID>', '<EventID>$eid</EventID>')) FROM public.doc;")
    fire_ms+=("$w"); fire_cpu+=("$c")
    check=$(psqlb -At -c "SELECT count(*) || ' requests, ' || sum(targets) || ' targets' FROM status_checker.request q
                          JOIN status_checker.event e USING (event_id) WHERE e.source_event_id = '$eid'")
    # baseline: the same 100 × 1,000 targets by create_request, one transaction
    read -r w c < <(timed "SELECT count(status_checker.create_request(t.tenant_id, f.form_id, 'baseline', now() + interval '6 hours'))
                           FROM status_checker.tenant t JOIN LATERAL (SELECT max(form_id) AS form_id FROM status_checker.form WHERE tenant_id = t.tenant_id) f ON true;")
    base_ms+=("$w"); base_cpu+=("$c")
    echo "   run $r: $check in ${fire_ms[-1]} ms, backend CPU ${fire_cpu[-1]} ms (create_request ×100: $w ms, CPU $c ms)"
    # the warning: issued four days after the last run's (a new episode)
    day=$(date -u -d "2015-07-01 + $((4 * r)) days" +%Y-%m-%d)
    read -r w c < <(timed "SELECT status_checker.ingest_feed_document('jma', replace(replace(body, '2015-06-22T18:00:00+09:00', '${day}T18:00:00+09:00'),
                                                                              '2015-06-22T09:00:00Z', '${day}T09:00:00Z')) FROM public.doc;" $WDB)
    wx_ms+=("$w"); wx_cpu+=("$c")
    wx_check=$(sc_psql -d $WDB -At -c "SELECT count(*) || ' requests, ' || sum(targets) || ' targets, ' || string_agg(DISTINCT e.kind, '+')
                                       || ' episode' FROM status_checker.request q JOIN status_checker.event e USING (event_id)
                                       WHERE e.origin_time = '${day}T18:00:00+09:00'")
    echo "   run $r: VPWW54 山口県: $wx_check in $w ms, backend CPU $c ms"
done
fire_med=$(printf '%s\n' "${fire_ms[@]}" | median)
base_med=$(printf '%s\n' "${base_ms[@]}" | median)
fire_cpu_med=$(printf '%s\n' "${fire_cpu[@]}" | median)
base_cpu_med=$(printf '%s\n' "${base_cpu[@]}" | median)
wx_med=$(printf '%s\n' "${wx_ms[@]}" | median)
wx_cpu_med=$(printf '%s\n' "${wx_cpu[@]}" | median)

{
    echo "## Feeds and trigger rules — $(date -u +%Y-%m-%d), $(git -C "$SC_ROOT" rev-parse --short HEAD)"
    echo
    echo "Command: \`make bench-feeds\` (RUNS=$RUNS, ${SECONDS_PER_RUN} s per parser run)."
    echo
    echo "| parser | documents | mean size | runs (docs/s) | median docs/s | bare library parse, same run | ours / bare |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "| benchmark | runs | median | goal |"
    echo "|---|---|---|---|"
    echo "| one VXSE53 (100 municipalities) shaking 100,000 sites of 100 tenants: ingest → 100 requests, 100,000 targets committed | ${fire_ms[*]} ms | **$fire_med ms** | < 2,000 ms |"
    echo "| … the same, CPU time of the backend | ${fire_cpu[*]} ms | **$fire_cpu_med ms** | |"
    echo "| baseline, same run: 100 \`create_request\` of 1,000 sites each, one transaction | ${base_ms[*]} ms | $base_med ms | |"
    echo "| … the same, CPU time of the backend | ${base_cpu[*]} ms | $base_cpu_med ms | |"
    echo "| same runs: one VPWW54 (山口県, 19 municipalities) against 100,000 sites of 100 tenants (rule any_warning ≥ 4): ingest → requests and targets committed | ${wx_ms[*]} ms | **$wx_med ms** | < 2,000 ms |"
    echo "| … the same, CPU time of the backend | ${wx_cpu[*]} ms | **$wx_cpu_med ms** | |"
    echo
    echo "Checks printed by the last run: VXSE53: $check; VPWW54: $wx_check."
} | tee "$out"
