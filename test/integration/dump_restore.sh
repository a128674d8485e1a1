#!/usr/bin/env bash
# Integration: pg_dump of a database using status_checker, restored into a
# fresh database, holds every tenant, site, form, request, report and
# counter, and the restored database keeps working (ids continue, reports
# are accepted, counters stay right), with its audit chain intact (a head
# kept before the dump still verifies, the restore itself is not recorded as
# changes) and deletion certificates still verifiable.  Prints TAP.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

src=sc_dump_src; dst=sc_dump_dst
sc_psql -q -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" -c "CREATE DATABASE $src" -c "CREATE DATABASE $dst" 2>/dev/null
sc_psql -d $src -q >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT load_jma_area_codes(E'390,石川県能登,,1720400,輪島市,,1720420,輪島市門前町走出,\n');
SELECT create_tenant('復元テスト', 'admin', 'admin@example.com');
SELECT import_sites(1, E'code,name,group_path,municipality_code,lat,lon,address,contact_email\n'
                       'W1,輪島一,能登/輪島,1720400,37.39,136.9,,w1@example.com\nW2,輪島二,能登,1720400,37.4,136.91,,\n');
SELECT create_form(1, '被害状況報告', default_form_definition('all'));
SELECT create_request(1, 1, '復元', now() + interval '1 day');
SELECT submit_report_for(1, 'W1', '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}');
SELECT create_tenant('解約済み', 'admin', 'admin@example.org');
SQL
head=$(sc_psql -d $src -At -c "SELECT status_checker.audit_chain_head(1)")
cert=$(sc_psql -d $src -At -c "SELECT status_checker.delete_tenant(2)")
token=$(sc_psql -d $src -At -c "SELECT token FROM status_checker.issue_tokens(1) WHERE site_code = 'W2'")
dump=$(mktemp /tmp/sc_dump.XXXXXX); chmod 666 "$dump"
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pg_dump -U postgres -Fc -f "$dump" $src
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pg_restore -U postgres -d $dst "$dump"
rm -f "$dump"

n=1; fail=0
check() {
    local got
    got=$(sc_psql -d $dst -At -c "$2" 2>&1)
    if [ "$got" = t ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (got: $got)"; fail=1; fi
    n=$((n + 1))
}
same() {  # same "description" "query": the query gives the same rows in both databases
    local a b
    a=$(sc_psql -d $src -At -c "$2"); b=$(sc_psql -d $dst -At -c "$2")
    if [ "$a" = "$b" ] && [ -n "$a" ]; then echo "ok $n - $1"; else echo "not ok $n - $1 ($a vs $b)"; fail=1; fi
    n=$((n + 1))
}
echo "1..10"
same "every table has the same rows after restore" \
  "SELECT string_agg(format('%s=%s', c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM status_checker.%I', c.relname), false, true, '')))[1]), ',' ORDER BY c.relname)
   FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'status_checker' AND c.relkind = 'r'"
same "the summary is the same" "SELECT request_summary::text FROM status_checker.request_summary"
same "the status matrix is the same" "SELECT string_agg(site_code || coalesce(level::text, '-'), ',' ORDER BY site_code) FROM status_checker.site_status"
check "the personal token still works after restore" \
  "SELECT status_checker.submit_report('$token', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}') > 1"
check "identity sequences continue (no id reused)" \
  "SELECT max(report_id) = 2 AND count(*) = 2 FROM status_checker.report"
check "counters stay right after restore" \
  "SELECT responded = 2 AND level_counts = '{\"0\": 1, \"1\": 0, \"2\": 1, \"none\": 0}' FROM status_checker.request_summary"
check "new sites can be added" \
  "SELECT status_checker.upsert_site(1, 'W3', '輪島三', '1720400', 37.4, 136.9) > 2"
check "the audit chain verifies after restore, against the head kept before the dump" \
  "SELECT ok FROM status_checker.verify_audit_log(1, '$head')"
check "the restore wrote no audit records of its own, and later changes are recorded" \
  "SELECT count(*) = 1 FROM status_checker.audit_log WHERE object = 'site' AND action = 'insert' AND detail -> 'key' ->> 'site_id' = '3'"
check "a deletion certificate issued before the dump verifies after restore" \
  "SELECT status_checker.verify_deletion_certificate('$cert')"
sc_psql -q -c "DROP DATABASE $src" -c "DROP DATABASE $dst"
exit $fail
