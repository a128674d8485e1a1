#!/usr/bin/env bash
# Integration: the update from 0.10.1 (the release 1.0.0 updates from; its
# install script is frozen in versions/) gives the same extension as a fresh
# install of the current version — test/catalog_fingerprint.sh, but for the
# rows of the tables — and keeps the data working: a tenant with sites, a
# contact, a channel, a request with reports, a mapped manager's login and a
# web sign-in made on 0.10.1's schema (with the current library, as between
# installing a new package and ALTER EXTENSION UPDATE) still work after it:
# reports by link and for a site, the request's summary, the contacts the
# manager reads decrypted, the sign-in.  estimate_shindo classes its value
# by JMA's rule for 計測震度 after the update (rounded at the third decimal,
# truncated at the second), as in a fresh install.
# The same from 1.0.0 (the release 1.1.0 updates from): equal to a fresh
# install, its earthquake rule still deciding, and a warning rule made
# after the update firing on a recorded 大雨特別警報.
# Prints TAP.  Uses the running server (PGHOST/PGPORT).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SC_ROOT/status_checker.control")
from=0.10.1
sc_psql -c "DROP DATABASE IF EXISTS sc_upgraded" -c "DROP DATABASE IF EXISTS sc_fresh" -c "DROP DATABASE IF EXISTS sc_upgraded100" \
        -c "CREATE DATABASE sc_upgraded" -c "CREATE DATABASE sc_fresh" -c "CREATE DATABASE sc_upgraded100" >/dev/null 2>&1
sc_psql -c "DROP ROLE IF EXISTS sc_upg_mgr" >/dev/null
answers='{"building": "none", "injured": 0, "operation": "normal"}'
# estimate_shindo on a site whose computed intensity is 4.476 (one decimal:
# 4.5, 5-; JMA's rule: 4.48, 4.4, 4) and one at 5.464 (5.5, 6-; 5.46, 5.4, 5+)
shindo_sql="SELECT status_checker.estimate_shindo(7.0, 10, 35.0, 135.0, 35.0, 135.87)::text || ' '
                   || status_checker.estimate_shindo(7.0, 10, 35.0, 135.0, 35.0, 135.39)::text"
# and over a grid of magnitudes, depths and distances
grid_sql="SELECT md5(string_agg(status_checker.estimate_shindo(m, d, 35.0, 135.0, 35.0 + g, 135.0 + g)::text, ',' ORDER BY m, d, g))
          FROM generate_series(3.0, 9.0, 0.25) m, generate_series(0, 60, 10) d, generate_series(0.0, 3.0, 0.01) g"

token=$(sc_psql -d sc_upgraded -At <<SQL | tail -1
CREATE EXTENSION status_checker VERSION '$from';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT upsert_site(1, 'S2', '支店', '1310100', 35.68, 139.76);
SELECT add_site_contact(1, 'S1', 'email', 'honsha@example.com', '本社 太郎');
SELECT add_channel(1, 'webhook', 'hook', '{"url": "https://hooks.example.com/x", "secret": "old-secret-0123456789"}');
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SELECT submit_report_for(1, 'S1', '$answers');
SELECT set_user_password(1, 'admin', 'correct horse battery');
SELECT ok FROM web_login(1, 'admin', 'correct horse battery');
CREATE ROLE sc_upg_mgr LOGIN;
SELECT add_user(1, 'kanri', 'kanri@example.com', 'manager');
SELECT map_db_role(1, 'kanri', 'sc_upg_mgr');
SELECT token FROM issue_tokens(1) WHERE site_code = 'S2';
SQL
)
before=$(sc_psql -d sc_upgraded -At -c "$shindo_sql")
sc_psql -d sc_upgraded -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
sc_psql -d sc_fresh -c "CREATE EXTENSION status_checker" >/dev/null

tmpd=$(mktemp -d)
trap 'rm -rf "$tmpd"' EXIT
# the catalog_fingerprint.sh lines, but for the tables' rows (the data differ)
same_as_fresh() {
    diff <(bash "$SC_ROOT/test/catalog_fingerprint.sh" "$1" | grep -v '^rows ') \
         <(bash "$SC_ROOT/test/catalog_fingerprint.sh" sc_fresh | grep -v '^rows ') > "$tmpd/diff.$1" && return 0
    sed 's/^/# /' "$tmpd/diff.$1" | head -20
    return 1
}
q() { sc_psql -d sc_upgraded -At -c "$1"; }
submit_link() { q "SELECT status_checker.submit_report('$token', '$answers') > 0"; }
submit_site() { q "SELECT status_checker.submit_report_for(1, 'S1', '$answers') > 0"; }
n=1; fail=0
t() { if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi; n=$((n + 1)); }
echo "1..11"
t "ALTER EXTENSION UPDATE from $from reaches $version" \
  '[ "$(q "SELECT extversion FROM pg_extension WHERE extname = '"'status_checker'"'")" = "$version" ]'
t "the extension updated from $from equals a fresh install (catalog_fingerprint.sh: objects, columns, functions, owners and privileges, row-level security, constraints, indexes, policies, triggers, comments, views, types)" \
  "same_as_fresh sc_upgraded"
t "a link issued on $from's schema takes a report after the update; a report for a site too" \
  '[ "$(submit_link)" = t ] && [ "$(submit_site)" = t ]'
t "the request's summary counts the reports of before and after the update" \
  '[ "$(q "SELECT responded FROM status_checker.request_summary WHERE request_id = 1")" = 2 ] &&
   [ "$(q "SELECT count(*) FROM status_checker.report")" = 3 ]'
t "the mapped manager's login reads the contact decrypted; stored encrypted" \
  '[ "$(sc_psql -d sc_upgraded -At -c "SET SESSION AUTHORIZATION sc_upg_mgr" -c "SELECT address || '"' '"' || name FROM status_checker.contact_list")" = "honsha@example.com 本社 太郎" ] &&
   [ "$(q "SELECT address LIKE '"'sc1:%'"' FROM status_checker.site_contact")" = t ]'
t "the web sign-in of $from works after the update" \
  '[ "$(q "SELECT ok FROM status_checker.web_login(1, '"'admin'"', '"'correct horse battery'"')")" = t ]'
t "estimate_shindo: one decimal on $from's schema (5- 6-), JMA's rule after the update (4 5+)" \
  'after=$(q "$shindo_sql"); echo "# before: $before, after: $after"; [ "$before" = "5- 6-" ] && [ "$after" = "4 5+" ]'
t "estimate_shindo after the update answers as in a fresh install (a grid of magnitudes, depths, distances)" \
  '[ "$(q "$grid_sql")" = "$(sc_psql -d sc_fresh -At -c "$grid_sql")" ]'

# from 1.0.0: a tenant with a site in 浜田市 (島根県) and an earthquake rule
sc_psql -d sc_upgraded100 -q >/dev/null <<SQL
CREATE EXTENSION status_checker VERSION '1.0.0';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'HMD', '浜田', '3220200', 34.90, 132.08);
SELECT create_form(1, 'f', default_form_definition());
SELECT create_trigger_rule(1, '震度5弱以上', 1, '5-');
SQL
sc_psql -d sc_upgraded100 -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
q100() { sc_psql -d sc_upgraded100 -At -c "$1"; }
t "ALTER EXTENSION UPDATE from 1.0.0 reaches $version and equals a fresh install" \
  '[ "$(q100 "SELECT extversion FROM pg_extension WHERE extname = '"'status_checker'"'")" = "$version" ] && same_as_fresh sc_upgraded100'
t "after the update from 1.0.0, its earthquake rule still has its threshold and no level" \
  '[ "$(q100 "SELECT hazard || '"' '"' || min_shindo || '"' '"' || coalesce(min_level::text, '"'-'"') FROM status_checker.trigger_rule")" = "earthquake 5- -" ]'
special=$(printf '%s' "$SC_FIXTURES/jma/weather/VPWW54_sample_161130__15_12_01.xml")
t "after the update from 1.0.0, a warning rule fires on a recorded 大雨特別警報 (浜田市)" \
  '[ "$(q100 "SELECT status_checker.create_trigger_rule(1, '"'大雨特別警報'"', 1, hazard => '"'rain'"', min_level => 5) IS NOT NULL
              AND status_checker.ingest_feed_document('"'jma'"', pg_read_binary_file('"'$special'"')) > 0")" = t ] &&
   [ "$(q100 "SELECT string_agg(s.code, '"','"') FROM status_checker.request_target t JOIN status_checker.site s USING (tenant_id, site_id)")" = HMD ]'
sc_psql -c "DROP DATABASE sc_upgraded" -c "DROP DATABASE sc_fresh" -c "DROP DATABASE sc_upgraded100" -c "DROP ROLE sc_upg_mgr" >/dev/null
exit $fail
