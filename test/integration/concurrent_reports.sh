#!/usr/bin/env bash
# Integration: 8 concurrent clients submit 4,000 reports (first reports and
# updates that change level) to one request of 500 sites, half through
# personal tokens and half on the sites' behalf; afterwards the
# maintained counters must equal a recount of the targets, every report
# must be kept, and each target's latest report must be its newest.
# Prints TAP.  Usage: concurrent_reports.sh (PGHOST/PGPORT of a running
# server with status_checker installed).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

db=sc_concurrency
sc_psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
sc_psql -d $db >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('並行テスト', 'admin', 'admin@example.com');
SELECT import_sites(1, 'code,name,municipality_code,lat,lon' || E'\n' ||
       string_agg(format('S%s,拠点%s,1310100,35.6,139.7', i, i), E'\n')) FROM generate_series(1, 500) i;
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '並行', now() + interval '1 hour');
CREATE TABLE public.answers (n int PRIMARY KEY, a jsonb);
INSERT INTO public.answers VALUES
  (0, '{"building": "none", "injured": 0, "operation": "normal"}'),
  (1, '{"building": "partial", "detail": "ひび", "injured": 0, "operation": "limited"}'),
  (2, '{"building": "severe", "detail": "倒壊", "injured": 2, "operation": "stopped"}');
CREATE TABLE public.links AS SELECT substr(site_code, 2)::int AS n, token FROM issue_tokens(1);
SQL

script=$(mktemp); chmod 644 "$script"
cat > "$script" <<'SQL'
\set site random(1, 500)
\set level random(0, 2)
SELECT status_checker.submit_report_for(1, 'S' || :site, (SELECT a FROM public.answers WHERE n = :level));
SQL
script2=$(mktemp); chmod 644 "$script2"
cat > "$script2" <<'SQL'
\set site random(1, 500)
\set level random(0, 2)
SELECT status_checker.submit_report((SELECT token FROM public.links WHERE n = :site), (SELECT a FROM public.answers WHERE n = :level));
SQL
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -n -U postgres -c 8 -j 2 -t 500 \
    -f "$script"@1 -f "$script2"@1 $db >/dev/null
rm -f "$script" "$script2"

check() {  # check "description" "SQL returning true/false"
    local got
    got=$(sc_psql -d $db -At -c "$2")
    if [ "$got" = t ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (got: $got)"; fail=1; fi
    n=$((n + 1))
}
n=1; fail=0
echo "1..4"
check "every acknowledged report is kept (4,000)" "SELECT count(*) = 4000 FROM status_checker.report"
check "responded equals a recount of the targets" \
  "SELECT s.responded = (SELECT count(*) FROM status_checker.request_target WHERE request_id = 1 AND level IS NOT NULL)
   FROM status_checker.request_summary s WHERE request_id = 1"
check "level counts equal a recount of the targets" \
  "SELECT s.level_counts = (SELECT jsonb_build_object('0', count(*) FILTER (WHERE level = 0), '1', count(*) FILTER (WHERE level = 1),
                                                     '2', count(*) FILTER (WHERE level = 2), 'none', count(*) FILTER (WHERE level IS NULL))
                            FROM status_checker.request_target WHERE request_id = 1)
   FROM status_checker.request_summary s WHERE request_id = 1"
check "each site's status is its newest report" \
  "SELECT bool_and(t.latest_report_id = (SELECT max(report_id) FROM status_checker.report r WHERE r.request_id = 1 AND r.site_id = t.site_id)
                   AND t.report_count = (SELECT count(*) FROM status_checker.report r WHERE r.request_id = 1 AND r.site_id = t.site_id))
   FROM status_checker.request_target t WHERE t.request_id = 1 AND t.level IS NOT NULL"
sc_psql -c "DROP DATABASE $db" >/dev/null
exit $fail
