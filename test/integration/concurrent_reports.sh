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
echo "1..9"
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

# one transaction of 20,000 reports: linear time, counters written once at commit
sc_psql -d $db -q >/dev/null <<'SQL'
SET search_path = status_checker;
SELECT import_sites(1, 'code,name,municipality_code,lat,lon' || E'\n' ||
       string_agg(format('B%s,一括%s,1310100,35.6,139.7', i, i), E'\n')) FROM generate_series(1, 20000) i;
SELECT create_request(1, 1, '一括', now() + interval '1 hour', jsonb_build_object('sites',
       (SELECT jsonb_agg('B' || i) FROM generate_series(1, 20000) i)));
SQL
req=$(sc_psql -d $db -At -c "SELECT max(request_id) FROM status_checker.request")
sc_psql -d $db -q -c "SELECT count(status_checker.submit_report_for($req, 'B' || i,
    (SELECT a FROM public.answers WHERE n = i % 3))) FROM generate_series(1, 20000) i" >/dev/null
check "20,000 reports in one transaction are all counted" \
  "SELECT responded = 20000 AND level_counts = '{\"0\": 6666, \"1\": 6667, \"2\": 6667, \"none\": 0}'
   FROM status_checker.request_summary WHERE request_id = $req"
check "the counters of that transaction were written at commit" \
  "SELECT sum(responded) = 20000 FROM status_checker.request_counter WHERE request_id = $req"

# with the counter trigger disabled (or IMMEDIATE) the counters are written at once
sc_psql -d $db -q -c "ALTER TABLE status_checker.report DISABLE TRIGGER report_counters"
fresh=$(sc_psql -d $db -At -c "SELECT status_checker.create_request(1, 1, 'trigger off', now() + interval '1 hour', '{\"sites\": [\"S1\", \"S2\"]}')")
sc_psql -d $db -q -c "SELECT count(status_checker.submit_report_for($fresh, s, (SELECT a FROM public.answers WHERE n = 2)))
                      FROM unnest(ARRAY['S1', 'S2']) s" >/dev/null
sc_psql -d $db -q -c "ALTER TABLE status_checker.report ENABLE ALWAYS TRIGGER report_counters"
check "with the counter trigger disabled, the counters are still right" \
  "SELECT sum(responded) = 2 AND sum(counts[3]) = 2 FROM status_checker.request_counter WHERE request_id = $fresh"

# REPEATABLE READ: a report on a status that another transaction changed
# after the snapshot is refused with a serialization failure, as an UPDATE
# statement would be, and changes nothing.  Sequenced with files, not sleeps.
flags=$(mktemp -d); chmod 777 "$flags"
sc_psql -d $db -At -v ON_ERROR_STOP=0 -v VERBOSITY=verbose >"$flags/a.out" 2>&1 <<SQL &
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM status_checker.request_target;
\\! touch $flags/a-has-snapshot
\\! while [ ! -f $flags/b-committed ]; do sleep 0.05; done
SELECT status_checker.submit_report((SELECT token FROM public.links WHERE n = 7), (SELECT a FROM public.answers WHERE n = 2));
ROLLBACK;
SQL
a_pid=$!
while [ ! -f "$flags/a-has-snapshot" ] && kill -0 "$a_pid" 2>/dev/null; do sleep 0.05; done
before=$(sc_psql -d $db -At -c "SELECT count(*) FROM status_checker.report")
sc_psql -d $db -q -c "SELECT status_checker.submit_report((SELECT token FROM public.links WHERE n = 7), (SELECT a FROM public.answers WHERE n = 1))" >/dev/null || true
touch "$flags/b-committed"
wait "$a_pid" || true
if grep -q "40001" "$flags/a.out"; then echo "ok $n - REPEATABLE READ: a report on a status changed since the snapshot fails with 40001"
else echo "not ok $n - REPEATABLE READ: expected 40001, got: $(cat "$flags/a.out")"; fail=1; fi
n=$((n + 1))
check "... and only the other transaction's report is kept" \
  "SELECT count(*) = $before + 1 FROM status_checker.report"
rm -rf "$flags"

sc_psql -c "DROP DATABASE $db" >/dev/null
exit $fail
