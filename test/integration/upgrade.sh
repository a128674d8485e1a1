#!/usr/bin/env bash
# Integration: upgrading from each released version (0.1.0 to 0.7.0) gives the
# same extension as a fresh install of the current version — the same member
# objects, the same table columns, the same function definitions — and keeps
# the data; a personal link issued before the upgrade keeps working; reports
# stored before 0.4.0 join the audit chain; 0.5.0's system_health() is there;
# 0.6.0's report_form and keyed submit_report work on links issued before;
# 0.7.0's library stores reports on a 0.6.0 schema, and after the update;
# messages a 0.7.0 dispatcher left sending (no worker recorded) are taken
# back by worker 0 of 0.8.0, and by no other; links 0.8.0's claim sent (their
# token's hash stored then) still work, and so do the links that name their
# target, which the next messages carry; a session that claimed with 0.9.0
# (its temporary tables made) claims with 0.10.0 after the update; 0.10.0's
# security holes are closed by the update to 0.10.1: a broadcast webhook's
# URL left in clear in the outbox is encrypted, a locked account is
# unlocked, _set_context is gone, viewers no longer decrypt.
# Prints TAP.  Uses the running server (PGHOST/PGPORT).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SC_ROOT/status_checker.control")
sc_psql -c "DROP DATABASE IF EXISTS sc_upgraded" -c "DROP DATABASE IF EXISTS sc_fresh" -c "DROP DATABASE IF EXISTS sc_upgraded2" \
        -c "DROP DATABASE IF EXISTS sc_upgraded3" -c "DROP DATABASE IF EXISTS sc_upgraded4" \
        -c "DROP DATABASE IF EXISTS sc_upgraded5" -c "DROP DATABASE IF EXISTS sc_upgraded6" \
        -c "DROP DATABASE IF EXISTS sc_upgraded7" -c "CREATE DATABASE sc_upgraded7" \
        -c "DROP DATABASE IF EXISTS sc_upgraded8" -c "CREATE DATABASE sc_upgraded8" \
        -c "DROP DATABASE IF EXISTS sc_upgraded9" -c "CREATE DATABASE sc_upgraded9" \
        -c "DROP DATABASE IF EXISTS sc_upgraded10" -c "CREATE DATABASE sc_upgraded10" \
        -c "CREATE DATABASE sc_upgraded6" -c "CREATE DATABASE sc_upgraded" -c "CREATE DATABASE sc_fresh" -c "CREATE DATABASE sc_upgraded2" \
        -c "CREATE DATABASE sc_upgraded3" -c "CREATE DATABASE sc_upgraded4" -c "CREATE DATABASE sc_upgraded5" >/dev/null 2>&1
sc_psql -d sc_upgraded >/dev/null <<'SQL'
CREATE EXTENSION status_checker VERSION '0.1.0';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SELECT submit_report_for(1, 'S1', '{"building": "none", "injured": 0, "operation": "normal"}');
ALTER EXTENSION status_checker UPDATE;
SQL
sc_psql -d sc_fresh -c "CREATE EXTENSION status_checker" >/dev/null
old_token=$(sc_psql -d sc_upgraded2 -At <<'SQL'
CREATE EXTENSION status_checker VERSION '0.2.0';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT upsert_site(1, 'S2', '支店', '1310100', 35.68, 139.76);
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SELECT issue_token(1, 'S1');
SQL
)
old_token=$(echo "$old_token" | tail -1)
sc_psql -d sc_upgraded2 -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
sc_psql -d sc_upgraded3 >/dev/null <<'SQL'
CREATE EXTENSION status_checker VERSION '0.3.0';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT upsert_site(1, 'S2', '支店', '1310100', 35.68, 139.76);
SELECT add_site_contact(1, 'S1', 'email', 'honsha@example.com', '本社 太郎');
SELECT add_channel(1, 'webhook', 'hook', '{"url": "http://127.0.0.1:9/x", "secret": "old-secret-0123456789"}');
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SELECT submit_report_for(1, 'S1', '{"building": "none", "injured": 0, "operation": "normal"}');
SELECT submit_report_for(1, 'S2', '{"building": "none", "injured": 0, "operation": "normal"}');
ALTER EXTENSION status_checker UPDATE;
SQL

token4=$(sc_psql -d sc_upgraded4 -At <<'SQL' | tail -1
CREATE EXTENSION status_checker VERSION '0.4.0';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT add_channel(1, 'webhook', 'hook', '{"url": "http://127.0.0.1:9/x", "secret": "old-secret-0123456789"}');
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SELECT token FROM issue_tokens(1);
SQL
)
sc_psql -d sc_upgraded4 -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
# 0.5.0: a report by link with the 0.5.0 schema and this version's library
# (the library is installed before ALTER EXTENSION UPDATE runs)
# one_link DB VERSION: the extension at an old VERSION in DB, with one site,
# a form and an open request; prints the site's personal link
one_link() {
    sc_psql -d "$1" -At <<SQL | tail -1
CREATE EXTENSION status_checker VERSION '$2';
SET search_path = status_checker;
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SELECT token FROM issue_tokens(1);
SQL
}
token5=$(one_link sc_upgraded5 0.5.0)
sc_psql -d sc_upgraded5 -At -c "SELECT status_checker.submit_report('$token5', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}')" >/dev/null
sc_psql -d sc_upgraded5 -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
# 0.6.0: reports by link with the 0.6.0 schema and this version's library,
# one of them keyed, before and after the update
token6=$(one_link sc_upgraded6 0.6.0)
sc_psql -d sc_upgraded6 -At -c "SELECT status_checker.submit_report('$token6', '{\"building\": \"partial\", \"detail\": \"ひび\", \"injured\": 0, \"operation\": \"limited\"}')" >/dev/null
sc_psql -d sc_upgraded6 -At -c "SELECT status_checker.submit_report('$token6', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}', 'k6')" >/dev/null
sc_psql -d sc_upgraded6 -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
sc_psql -d sc_upgraded6 -At -c "SELECT status_checker.submit_report('$token6', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}', 'k6')" >/dev/null
# 0.7.0: a message its dispatcher claimed (left sending), then the update
one_link sc_upgraded7 0.7.0 >/dev/null
sc_psql -d sc_upgraded7 >/dev/null <<'SQL'
SET search_path = status_checker;
SELECT add_channel(1, 'webhook', 'hook', '{"url": "http://127.0.0.1:9/x", "secret": "old-secret-0123456789"}');
SELECT create_request(1, 1, '移行中', now() + interval '1 hour');
SELECT count(*) FROM _claim_messages(10, 60000);
ALTER EXTENSION status_checker UPDATE;
SQL
# 0.8.0: the claim stored each first link's token hash when it rendered the
# message (webhooks to S1 and S2); then the update
two_sites() {  # SQL: the extension at version $1, two sites with webhooks, a request
    printf "CREATE EXTENSION status_checker VERSION '%s';\n" "$1"
    cat <<'SQL'
SET search_path = status_checker;
SELECT set_config('status_checker.link_base_url', 'https://status.example.com/r/', false);
SELECT create_tenant('移行テスト', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'S1', '本社', '1310100', 35.68, 139.76);
SELECT upsert_site(1, 'S2', '支店', '1310100', 35.68, 139.76);
SELECT add_channel(1, 'webhook', 'hook', '{"url": "http://127.0.0.1:9/x", "secret": "old-secret-0123456789"}');
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '移行前', now() + interval '1 hour');
SQL
}
link8=$({ two_sites 0.8.0; cat <<'SQL'; } | sc_psql -d sc_upgraded8 -At | tail -1
SELECT string_agg(substring(body::jsonb ->> 'link' FROM '/r/(.*)$'), ' ' ORDER BY body::jsonb #>> '{site,code}')
FROM _claim_messages(10, 60000);
SQL
)
sc_psql -d sc_upgraded8 -c "ALTER EXTENSION status_checker UPDATE" >/dev/null
# after the update: a reminder to S2 carries a link that names its target
link8r=$(sc_psql -d sc_upgraded8 -At <<'SQL' | tail -1
SET search_path = status_checker;
SELECT set_config('status_checker.link_base_url', 'https://status.example.com/r/', false);
SELECT _record_outcomes(ARRAY[1, 1]::bigint[], ARRAY(SELECT message_id FROM outbox ORDER BY message_id), ARRAY[1, 1], ARRAY['sent', 'sent'],
                        ARRAY[200, 200], ARRAY['', ''], ARRAY[0, 0], 3, 1000, 60000);
SELECT _enqueue_site_messages(1, 1, 'reminder', 1, ARRAY(SELECT site_id FROM site WHERE code = 'S2'));
SELECT substring(body::jsonb ->> 'link' FROM '/r/(.*)$') FROM _claim_messages(10, 60000);
SQL
)

# 0.9.0: one session claims a message with 0.9.0 (which made its temporary
# tables), updates the extension, and claims the next with the new version
links9=$({ two_sites 0.9.0; cat <<'SQL'; } | sc_psql -d sc_upgraded9 -At | tail -2 | paste -sd' '
SELECT substring(body::jsonb ->> 'link' FROM '/r/(.*)$') FROM _claim_messages(1, 60000);
ALTER EXTENSION status_checker UPDATE;
SELECT substring(body::jsonb ->> 'link' FROM '/r/(.*)$') FROM _claim_messages(1, 60000);
SQL
)

# 0.10.0: a broadcast webhook (its URL went into the outbox in clear), a
# contact, an account locked by five wrong passwords; then the update
{ two_sites 0.10.0; cat <<'SQL'; } | sc_psql -d sc_upgraded10 >/dev/null
SELECT add_channel(1, 'webhook', 'room', '{"url": "https://hooks.example.com/services/T/B/room-credential", "format": "slack"}');
SELECT add_site_contact(1, 'S1', 'email', 'honsha@example.com');
SELECT create_request(1, 1, '移行前 2', now() + interval '1 hour');
SELECT set_user_password(1, 'admin', 'correct horse battery');
SELECT web_login(1, 'admin', 'wrong ' || i) FROM generate_series(1, 5) i;
-- a login mapped as a viewer that still holds the admin role (as 0.10.0's
-- delete_tenant left the logins of a deleted tenant's administrators)
DROP ROLE IF EXISTS sc_upg_stale;
CREATE ROLE sc_upg_stale LOGIN;
SELECT add_user(1, 'kanshi', 'kanshi@example.com', 'viewer');
SELECT map_db_role(1, 'kanshi', 'sc_upg_stale');
GRANT status_checker_admin TO sc_upg_stale;
ALTER EXTENSION status_checker UPDATE;
SQL

# a fingerprint of everything the extension defines
# (its lines, sorted; same_as_fresh DB compares and shows what differs)
fingerprint() {
    sc_psql -d "$1" -At <<'SQL'
SELECT x FROM (
    SELECT pg_describe_object(classid, objid, objsubid) AS x FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'status_checker')
    UNION ALL
    SELECT format('%s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'status_checker' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT p.oid::regprocedure::text || md5(pg_get_functiondef(p.oid)) || ' owner ' || p.proowner::regrole::text
           || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '-')
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'status_checker' AND p.prokind <> 'a'
    UNION ALL
    SELECT c.oid::regclass::text || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '-')
           || ' rls ' || c.relrowsecurity || c.relforcerowsecurity
    FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'v', 'S')
    UNION ALL
    SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'status_checker'::regnamespace
    UNION ALL
    SELECT pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relnamespace = 'status_checker'::regnamespace) s
ORDER BY x;
SQL
}
same_as_fresh() {
    diff <(fingerprint "$1") <(fingerprint sc_fresh) > "$tmpd/diff.$1" && return 0
    sed 's/^/# /' "$tmpd/diff.$1" | head -20
    return 1
}
tmpd=$(mktemp -d)
trap 'rm -rf "$tmpd"' EXIT
n=1; fail=0
t() { if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi; n=$((n + 1)); }
echo "1..36"
t "ALTER EXTENSION UPDATE reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the upgraded extension equals a fresh install (objects, columns, functions, owners and privileges, row-level security, constraints, indexes)" \
  "same_as_fresh sc_upgraded"
t "data from 0.1.0 survives and works with the new version" \
  "[ \"\$(sc_psql -d sc_upgraded -At -c \"SELECT responded FROM status_checker.request_summary WHERE request_id = 1\")\" = 1 ]"
t "ALTER EXTENSION UPDATE from 0.2.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded2 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.2.0 equals a fresh install" \
  "same_as_fresh sc_upgraded2"
t "a link (random token) issued by 0.2.0 still works after the upgrade" \
  "[ \"\$(sc_psql -d sc_upgraded2 -At -c \"SELECT status_checker.submit_report('$old_token', '{\\\"building\\\": \\\"none\\\", \\\"injured\\\": 0, \\\"operation\\\": \\\"normal\\\"}') > 0\")\" = t ]"
t "ALTER EXTENSION UPDATE from 0.3.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded3 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.3.0 equals a fresh install" \
  "same_as_fresh sc_upgraded3"
sc_psql -d sc_upgraded3 -c "SELECT status_checker.seal_audit_log()" >/dev/null
t "reports stored by 0.3.0 join the audit chain, which verifies" \
  "[ \"\$(sc_psql -d sc_upgraded3 -At -c \"SELECT (SELECT ok FROM status_checker.verify_audit_log(1)), (SELECT count(*) FROM status_checker.audit_chain WHERE source = 'report')\")\" = 't|2' ]"
t "personal data stored by 0.3.0 is encrypted by the upgrade and reads back" \
  "[ \"\$(sc_psql -d sc_upgraded3 -At -c \"SELECT (SELECT address LIKE 'sc1:%' AND name LIKE 'sc1:%' FROM status_checker.site_contact)
      AND (SELECT bool_and(recipient LIKE 'sc1:%') FROM status_checker.outbox WHERE channel_id IS NULL)
      AND (SELECT secrets -> 'secret' ? 'enc' FROM status_checker.channel)
      AND (SELECT address = 'honsha@example.com' AND name = '本社 太郎' FROM status_checker.contact_list)
      AND (SELECT email = 'admin@example.com' FROM status_checker.user_list)\")\" = t ]"
t "ALTER EXTENSION UPDATE from 0.4.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded4 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.4.0 equals a fresh install" \
  "same_as_fresh sc_upgraded4"
t "a link issued by 0.4.0 still works after the upgrade" \
  "[ \"\$(sc_psql -d sc_upgraded4 -At -c \"SELECT status_checker.submit_report('$token4', '{\\\"building\\\": \\\"none\\\", \\\"injured\\\": 0, \\\"operation\\\": \\\"normal\\\"}') > 0\")\" = t ]"
t "system_health() answers after the upgrade, as the operator's roles may call it" \
  "[ \"\$(sc_psql -d sc_upgraded4 -At -c \"SELECT count(*) > 5 AND has_function_privilege('pg_monitor', 'status_checker.system_health()', 'EXECUTE') FROM status_checker.system_health()\")\" = t ]"
t "ALTER EXTENSION UPDATE from 0.5.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded5 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.5.0 equals a fresh install" \
  "same_as_fresh sc_upgraded5"
t "report_form shows a 0.5.0 link with the report it took before the upgrade" \
  "[ \"\$(sc_psql -d sc_upgraded5 -At -c \"SELECT status_checker.report_form('$token5') #>> '{latest,report_count}'\")\" = 1 ]"
keyed() { sc_psql -d sc_upgraded5 -At -c "SELECT status_checker.submit_report('$token5', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}', 'k1')"; }
k1=$(keyed); k2=$(keyed)
reports5=$(sc_psql -d sc_upgraded5 -At -c "SELECT count(*) FROM status_checker.report")
t "a keyed submit on that link, replayed, stores once" '[ -n "$k1" ] && [ "$k1" = "$k2" ] && [ "$reports5" = 2 ]'
t "ALTER EXTENSION UPDATE from 0.6.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded6 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.6.0 equals a fresh install" \
  "same_as_fresh sc_upgraded6"
t "reports on a 0.6.0 schema and after the update: two kept (the keyed one replayed after the update), counted, latest level 0" \
  "[ \"\$(sc_psql -d sc_upgraded6 -At -c \"SELECT (SELECT count(*) FROM status_checker.report), (SELECT responded || ' ' || level_counts::text FROM status_checker.request_summary), (SELECT level FROM status_checker.request_target)\")\" = '2|1 {\"0\": 1, \"1\": 0, \"2\": 0, \"none\": 0}|0' ]"
t "ALTER EXTENSION UPDATE from 0.7.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded7 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.7.0 equals a fresh install" \
  "same_as_fresh sc_upgraded7"
taken_back() {  # worker 1's start-up, worker 0's, then the message's state
    sc_psql -d sc_upgraded7 -At -c "SELECT status_checker._dispatcher_startup(1, 2)" \
        -c "SELECT status_checker._dispatcher_startup(0, 2)" -c "SELECT string_agg(state, ',') FROM status_checker.outbox" | paste -sd'|'
}
t "the message 0.7.0's dispatcher left sending: worker 1 leaves it, worker 0 takes it back" \
  '[ "$(taken_back)" = "0|1|retrying" ]'
t "ALTER EXTENSION UPDATE from 0.8.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded8 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.8.0 equals a fresh install" \
  "same_as_fresh sc_upgraded8"
submit8() { sc_psql -d sc_upgraded8 -At -c "SELECT status_checker.submit_report('$1', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}') > 0"; }
t "a link 0.8.0's claim sent (its token's hash stored then) works after the update" \
  '[ "$(submit8 "${link8%% *}")" = t ]'
t "after the update a reminder's link names its target, carries the same token as 0.8.0's link, and works" \
  '[ "${link8r:0:43}" = "${link8#* }" ] && [ "${#link8r}" -gt 43 ] && [ "$(submit8 "$link8r")" = t ]'
t "ALTER EXTENSION UPDATE from 0.9.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded9 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.9.0 equals a fresh install" \
  "same_as_fresh sc_upgraded9"
submit9() { sc_psql -d sc_upgraded9 -At -c "SELECT status_checker.submit_report('$1', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}') > 0"; }
t "one session claimed with 0.9.0 and, after the update, with the new version: two first links, of two targets, both work" \
  'a="${links9%% *}" b="${links9#* }"; [ "${#a}" -gt 43 ] && [ "${#b}" -gt 43 ] && [ "$a" != "$b" ] && [ "$(submit9 "${links9%% *}")" = t ] && [ "$(submit9 "${links9#* }")" = t ]'
t "ALTER EXTENSION UPDATE from 0.10.0 reaches $version" \
  "[ \"\$(sc_psql -d sc_upgraded10 -At -c \"SELECT extversion FROM pg_extension WHERE extname = 'status_checker'\")\" = '$version' ]"
t "the extension upgraded from 0.10.0 equals a fresh install" \
  "same_as_fresh sc_upgraded10"
t "0.10.0's outbox held the broadcast webhook's URL in clear: encrypted by the update, and still masked in delivery_status" \
  "[ \"\$(sc_psql -d sc_upgraded10 -At -c \"SELECT (SELECT count(*) FROM status_checker.outbox WHERE recipient NOT LIKE 'sc1:%'),
      (SELECT count(*) FROM status_checker.delivery_status WHERE recipient = 'https://hooks.example.com/…')\")\" = '0|2' ]"
t "an account 0.10.0 locked signs in with the right password after the update; _set_context is gone; viewers decrypt nothing" \
  "[ \"\$(sc_psql -d sc_upgraded10 -At -c \"SELECT (SELECT ok FROM status_checker.web_login(1, 'admin', 'correct horse battery')),
      to_regprocedure('status_checker._set_context(bigint,text,text)') IS NULL,
      NOT has_function_privilege('status_checker_viewer', 'status_checker._decrypt(bigint,text,text)', 'EXECUTE')\")\" = 't|t|t' ]"
t "a mapped viewer's login that still held the admin role holds the viewer role only after the update" \
  "[ \"\$(sc_psql -d sc_upgraded10 -At -c \"SELECT pg_has_role('sc_upg_stale', 'status_checker_admin', 'MEMBER'), pg_has_role('sc_upg_stale', 'status_checker_viewer', 'MEMBER')\")\" = 'f|t' ]"
sc_psql -c "DROP DATABASE sc_upgraded10" -c "DROP DATABASE sc_upgraded9" -c "DROP DATABASE sc_upgraded8" -c "DROP DATABASE sc_upgraded7" -c "DROP DATABASE sc_upgraded6" -c "DROP DATABASE sc_upgraded" -c "DROP DATABASE sc_fresh" -c "DROP DATABASE sc_upgraded2" -c "DROP DATABASE sc_upgraded3" \
        -c "DROP DATABASE sc_upgraded4" -c "DROP DATABASE sc_upgraded5" -c "DROP ROLE sc_upg_stale" >/dev/null
exit $fail
