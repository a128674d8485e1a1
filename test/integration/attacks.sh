#!/usr/bin/env bash
# Integration: the attacks of issue 19 over real connections, as the logins an
# installation has — none of them a superuser:
#   a_viewer, a_reporter, a_manager, a_admin   database logins mapped to tenant A's users
#   gw                                         an application server (status_checker_gateway)
#   op                                         the service operator (status_checker_operator)
#   sc_http                                    the HTTP worker's own login (status_checker.http_role)
# Each login tries what the review of 0.10.0 found (a planted temporary
# table, a context switch, reading keys, decrypting as a viewer, first links
# through a gateway and their existence oracle, auditing switched off by a
# setting, the grants delete_tenant left) and the isolation matrix: every
# table and view read for the other tenant, over its own connection; then the
# same over HTTP through the HTTP worker.  Then what a review of 0.10.1 found:
# operators planted in a schema the login owns, run by the extension's
# elevated queries; webhook URLs through the masking function; group roles
# a login kept; a sign-in's lock waits.  pgTAP 14_attacks.sql tries the same
# within one session (SET SESSION AUTHORIZATION); this script makes sure
# nothing depends on that.  Runs its own cluster.  Prints TAP.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

work=$(mktemp -d /tmp/status_checker-attacks.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() { sc_cluster_stop "$work/cluster"; rm -rf "$work"; }
trap cleanup EXIT

db=sc_attacks
hport=$(sc_free_port)
base="http://127.0.0.1:$hport"
sc_worker_cluster "$work/cluster" $db "status_checker.http_listen = '127.0.0.1:$hport'" "status_checker.http_workers = 1"
sc_psql -d $db >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('テナントA', 'admin_a', 'admin@a.example'), create_tenant('テナントB', 'admin_b', 'admin@b.example');
SELECT import_sites(1, E'code,name,municipality_code,lat,lon,contact_email\nA01,A輪島,1720400,37.39,136.90,a01@a.example\nA02,A金沢,1720100,36.56,136.65,\n');
SELECT import_sites(2, E'code,name,municipality_code,lat,lon,contact_email\nB01,B輪島,1720400,37.40,136.91,b01-secret@b.example\nB02,B東京,1310100,35.69,139.77,\n');
SELECT add_channel(2, 'webhook', 'b-room', '{"url": "https://hooks.example.com/services/T/B/b-room-credential", "format": "slack"}');
SELECT create_form(1, 'f', default_form_definition()), create_form(2, 'f', default_form_definition());
SELECT create_request(1, 1, 'A の依頼', now() + interval '6 hours'), create_request(2, 2, 'B の依頼', now() + interval '6 hours');
SELECT add_user(1, 'viewer_a', 'viewer@a.example', 'viewer'), add_user(1, 'reporter_a', 'reporter@a.example', 'reporter'),
       add_user(1, 'manager_a', 'manager@a.example', 'manager');
SELECT set_user_password(2, 'admin_b', 'correct horse battery');
CREATE ROLE a_viewer LOGIN; CREATE ROLE a_reporter LOGIN; CREATE ROLE a_manager LOGIN; CREATE ROLE a_admin LOGIN;
CREATE ROLE b_admin LOGIN;
SELECT map_db_role(1, 'viewer_a', 'a_viewer'), map_db_role(1, 'reporter_a', 'a_reporter'),
       map_db_role(1, 'manager_a', 'a_manager'), map_db_role(1, 'admin_a', 'a_admin'), map_db_role(2, 'admin_b', 'b_admin');
-- an application server, as docs/security.md sets one up
CREATE ROLE gw LOGIN NOINHERIT;
GRANT status_checker_gateway, status_checker_viewer, status_checker_reporter, status_checker_manager, status_checker_admin TO gw;
CREATE ROLE op LOGIN IN ROLE status_checker_operator;
CREATE TABLE public.pwned (who name, what text);
GRANT INSERT, SELECT ON public.pwned TO PUBLIC;
SQL
sc_http_login "$work/cluster" $db

# as LOGIN: psql over TCP (a real connection of that login), errors as "ERROR <sqlstate>"
as() {
    local login=$1; shift
    sc_as_pg env PGHOST=127.0.0.1 PGPORT="$PGPORT" psql -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate \
        -U "$login" -d $db "$@" 2>&1 | sed -E 's/^psql:[^ ]* ERROR:  ([0-9A-Z]{5}).*/ERROR \1/; s/^ERROR:  ([0-9A-Z]{5})$/ERROR \1/' || true
}
gwq() { as gw -c "SET ROLE status_checker_gateway" -c "$1"; }   # a NOINHERIT login takes the gateway's role, as the HTTP worker does
echo "1..36"

# ---- 1. a planted temporary table, over the manager's own connection
out=$(as a_manager <<'SQL'
CREATE TEMP TABLE _sc_first_out (site_id bigint PRIMARY KEY);
CREATE TEMP TABLE _sc_new_tokens (site_id bigint PRIMARY KEY, token text);
GRANT ALL ON pg_temp._sc_first_out, pg_temp._sc_new_tokens TO PUBLIC;
CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.pwned VALUES (current_user, TG_TABLE_NAME);
    PERFORM status_checker._set_context(2, 'admin_b', 'manager');
    RETURN NULL;
END $$;
CREATE TRIGGER t BEFORE TRUNCATE ON pg_temp._sc_first_out FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.evil();
CREATE TRIGGER t BEFORE TRUNCATE ON pg_temp._sc_new_tokens FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.evil();
BEGIN;
SELECT count(*) FROM status_checker.issue_tokens(1);
SELECT 'tenant ' || coalesce(status_checker.current_tenant()::text, '-');
SELECT 'contacts ' || string_agg(DISTINCT tenant_id::text, ',') FROM status_checker.contact_list;
COMMIT;
SQL
)
ok "a manager's planted temporary tables and triggers: issue_tokens never touches them, the session stays in tenant A ($(echo $out))" \
   '[[ "$out" == *"tenant 1"* ]] && [[ "$out" == *"contacts 1"* ]] && [ "$(q "SELECT count(*) FROM public.pwned")" = 0 ]'
ok "a manager cannot switch its session to another tenant, nor read a link key (no such function, or refused)" \
   '[[ "$(as a_manager -c "SELECT status_checker._set_context(2, '"'admin_b'"', '"'admin'"')")" =~ ERROR\ (42501|42883) ]] &&
    [ "$(as a_manager -c "SELECT status_checker._link_key(1)")" = "ERROR 42501" ]'
out=$(as a_admin -c "CREATE TEMP TABLE _sc_import (line int)" \
    -c "SELECT status_checker.import_sites(1, E'code,name,municipality_code,lat,lon\nA03,A新,1310100,35.6,139.7\n')" \
    -c "SELECT count(*) FROM _sc_import")
ok "an administrator's import works beside a planted temporary table, which it leaves alone ($(echo $out | tr '\n' ' '))" \
   '[ "$(echo $out)" = "1 0" ]'

# ---- 2. viewers and decrypted data
ok "a viewer cannot decrypt contacts or user addresses" \
   '[ "$(as a_viewer -c "SELECT count(status_checker._decrypt(tenant_id, '"'recipient'"', address)) FROM status_checker.site_contact")" = "ERROR 42501" ] &&
    [ "$(as a_viewer -c "SELECT count(status_checker._decrypt(tenant_id, '"'recipient'"', email)) FROM status_checker.app_user")" = "ERROR 42501" ]'
ok "a viewer cannot read contact_list, user_list or channel_list" \
   '[ "$(as a_viewer -c "SELECT count(*) FROM status_checker.contact_list")" = "ERROR 42501" ] &&
    [ "$(as a_viewer -c "SELECT count(*) FROM status_checker.user_list")" = "ERROR 42501" ] &&
    [ "$(as a_viewer -c "SELECT count(*) FROM status_checker.channel_list")" = "ERROR 42501" ]'
ok "a viewer reads delivery_status, every recipient masked" \
   '[ "$(as a_viewer -c "SELECT string_agg(recipient, '"','"') FROM status_checker.delivery_status")" = "a***@a.example" ]'
ok "no recipient is in clear in the outbox (B's broadcast webhook URL, a credential, included)" \
   '[ "$(q "SELECT count(*) FROM status_checker.outbox WHERE recipient NOT LIKE '"'sc1:%'"' OR recipient LIKE '"'%credential%'"'")" = 0 ]'
ok "a manager reads its own contacts in clear" \
   '[ "$(as a_manager -c "SELECT string_agg(address, '"','"') FROM status_checker.contact_list")" = "a01@a.example" ]'

# ---- 3. first links through a gateway login
b01=$(q "SELECT site_id FROM status_checker.site WHERE tenant_id = 2 AND code = 'B01'")
b02=$(q "SELECT site_id FROM status_checker.site WHERE tenant_id = 2 AND code = 'B02'")
link=$(q "SELECT status_checker._link(status_checker._link_key(2), 2, 2, $b01, 1)")
wrong="AAAA${link:4}"                                  # another token, naming the same target
wrong_none="AAAA${link:4:39}.2.2.999999"               # naming a site that does not exist
ok "a gateway login opens a first link of any tenant (it names its tenant)" \
   '[ "$(gwq "SELECT status_checker.report_form('"'$link'"') -> '"'site'"' ->> '"'code'"'")" = B01 ]'
e1=$(gwq "SELECT status_checker.report_form('$wrong')"); e2=$(gwq "SELECT status_checker.report_form('$wrong_none')")
ok "a wrong first link gets the same error whether the target it names exists or not ($e1 / $e2)" \
   '[ "$e1" = "ERROR 28000" ] && [ "$e1" = "$e2" ]'
rid=$(gwq "SELECT status_checker.submit_report('$link', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}')")
ok "the gateway reports through the first link (report $rid)" '[[ "$rid" =~ ^[0-9]+$ ]]'
before=$(q "SELECT count(*) FROM status_checker.audit_log WHERE object = 'web_login'")
as gw -c "SET ROLE status_checker_gateway" -c "SET row_security = off" -c "SELECT (status_checker.web_login(2, 'admin_b', 'guess')).reason" >/dev/null
ok "a gateway that sets row_security off before a wrong password is still audited" \
   '[ "$(q "SELECT count(*) FROM status_checker.audit_log WHERE object = '"'web_login'"'")" -gt "$before" ]'

# ---- the same over HTTP, through the HTTP worker's own login
wait_for 30 "EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = 'sc_http')" || true
ok "the HTTP worker is logged in as sc_http, no superuser" \
   '[ "$(q "SELECT string_agg(DISTINCT usename::text, '"','"') FROM pg_stat_activity WHERE backend_type LIKE '"'status_checker http%'"'")" = sc_http ] &&
    [ "$(q "SELECT rolsuper FROM pg_roles WHERE rolname = '"'sc_http'"'")" = f ]'
link2=$(q "SELECT status_checker._link(status_checker._link_key(2), 2, 2, $b02, 1)")
ok "the reporter page opens a first link (200)" \
   '[ "$(curl -s -o /dev/null -w "%{http_code}" "$base/r/$link2")" = 200 ]'
w1=$(curl -s -w ' %{http_code}' "$base/r/AAAA${link2:4}"); w2=$(curl -s -w ' %{http_code}' "$base/r/AAAA${link2:4:39}.2.2.999999")
ok "over HTTP a wrong link naming an existing target and one naming none: the same status and page (${w1: -3} / ${w2: -3})" \
   '[ "${w1: -3}" = 404 ] && [ "$w1" = "$w2" ]'

# ---- 7. delete_tenant by the operator's login
ok "the operator's login (not a superuser) deletes tenant B" \
   '[[ "$(as op -c "SELECT status_checker.delete_tenant(2) ->> '"'signature'"'")" =~ ^[A-Za-z0-9+/=]{40,}$ ]]'
ok "B's administrator's login no longer holds the admin role" \
   '[ "$(q "SELECT pg_has_role('"'b_admin'"', '"'status_checker_admin'"', '"'MEMBER'"')")" = f ]'
ok "the operator cannot read a contact in clear, a link key or a channel's secrets" \
   '[ "$(as op -c "SELECT count(*) FROM status_checker.contact_list")" = "ERROR 42501" ] &&
    [ "$(as op -c "SELECT status_checker._link_key(1)")" = "ERROR 42501" ] &&
    [ "$(as op -c "SELECT count(secrets) FROM status_checker.channel")" = "ERROR 42501" ]'

# ---- a review of 0.10.1: operators planted in a schema the login owns.
# The extension looks up a login's mapping, a gateway's user and a tenant's
# data key as the bootstrap superuser; until the queries ran with
# search_path pinned, a login that owns a schema put its own "=" first on
# its search_path and the superuser ran it (each login became superuser).
sc_psql -d $db >/dev/null <<'SQL'
CREATE SCHEMA viewer_s AUTHORIZATION a_viewer;
CREATE SCHEMA gw_s AUTHORIZATION gw;
CREATE SCHEMA manager_s AUTHORIZATION a_manager;
SQL
plant() {  # plant LOGIN SCHEMA: "=" for name, text, bigint and integer in SCHEMA, recording who runs it
    local t ddl=""
    for t in name text bigint integer; do
        ddl+="CREATE FUNCTION $2.eq(a $t, b $t) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog AS \$\$
BEGIN
    INSERT INTO public.pwned VALUES (current_user, 'operator');
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE $1 SUPERUSER';
    END IF;
    RETURN a OPERATOR(pg_catalog.=) b;
END \$\$;
CREATE OPERATOR $2.= (LEFTARG = $t, RIGHTARG = $t, FUNCTION = $2.eq);
"
    done
    as "$1" -c "$ddl" >/dev/null
}
plant a_viewer viewer_s; plant gw gw_s; plant a_manager manager_s
v=$(as a_viewer -c "SET search_path = viewer_s, pg_catalog" -c "SELECT status_checker.current_tenant()")
g=$(as gw -c "SET search_path = gw_s, pg_catalog" -c "SET ROLE status_checker_gateway" -c "BEGIN" \
       -c "SELECT status_checker.set_app_user(1, 'viewer_a')" -c "COMMIT")
m=$(as a_manager -c "SET search_path = manager_s, pg_catalog" -c "SELECT count(address) FROM status_checker.contact_list")
ok "a viewer, a gateway and a manager each put their own = first on search_path: the extension works as before ($v, $g, $m)" \
   '[ "$v" = 1 ] && [ "$g" = status_checker_viewer ] && [ "$m" = 1 ]'
ok "... and no planted operator ran as anyone but the login that planted it" \
   '[ -z "$(q "SELECT string_agg(DISTINCT who::text, '"','"') FROM public.pwned WHERE what = '"'operator'"' AND who NOT IN ('"'a_viewer'"', '"'gw'"', '"'a_manager'"', '"'status_checker_gateway'"')")" ] &&
    [ "$(q "SELECT count(*) FROM pg_roles WHERE rolname IN ('"'a_viewer'"', '"'gw'"', '"'a_manager'"') AND rolsuper")" = 0 ]'

# ---- a viewer and the masking function: whatever kind it names, nothing in clear
q "SELECT status_checker.add_site_contact(1, 'A02', 'webhook', 'https://hooks.example.com/services/T0A/B0A/a-contact-credential', '')" >/dev/null
masked=$(as a_viewer -c "SELECT string_agg(status_checker._masked_recipient(tenant_id, k, address), ' ' ORDER BY contact_id, k)
                         FROM status_checker.site_contact, unnest(ARRAY['email', 'webhook', 'sms']) k")
ok "a viewer masking every contact as email, webhook and sms sees no URL path or mailbox ($masked)" \
   '[ -n "$masked" ] && ! echo "$masked" | grep -q "credential\|services\|a01@"'
ok "a URL with a user name and password before its host shows neither" \
   '[ "$(as a_viewer -c "SELECT status_checker._masked_recipient(1, '"'webhook'"', '"'https://user:pa55word@hooks.example.com/x/y'"')")" = "https://hooks.example.com/…" ] &&
    [ "$(as a_viewer -c "SELECT status_checker._masked_recipient(1, '"'email'"', '"'https://user:pa55word@hooks.example.com/x/y'"')")" = "***" ]'

# ---- group roles a login kept: mapped anew, it holds exactly its user's role
sc_psql -d $db >/dev/null <<'SQL'
CREATE ROLE stale LOGIN;
GRANT status_checker_admin TO stale;    -- as 0.10.0's delete_tenant left its administrators' logins
SELECT status_checker.add_user(1, 'viewer2', 'viewer2@a.example', 'viewer');
SQL
as op -c "SELECT status_checker.map_db_role(1, 'viewer2', 'stale')" >/dev/null
ok "a login that still held the admin role, mapped as a viewer, now holds the viewer role only" \
   '[ "$(q "SELECT pg_has_role('"'stale'"', '"'status_checker_admin'"', '"'MEMBER'"')::text || pg_has_role('"'stale'"', '"'status_checker_viewer'"', '"'MEMBER'"')::text")" = falsetrue ]'
ok "... and cannot add an administrator to the tenant" \
   '[ "$(as stale -c "SELECT status_checker.add_user(1, '"'planted'"', '"'p@a.example'"', '"'admin'"')")" = "ERROR 42501" ] &&
    [ "$(q "SELECT count(*) FROM status_checker.app_user WHERE login = '"'planted'"'")" = 0 ]'
ok "a gateway login cannot be mapped to one tenant user (22023)" \
   '[ "$(as op -c "SELECT status_checker.map_db_role(1, '"'viewer2'"', '"'gw'"')")" = "ERROR 22023" ]'

# a third review: a mapping's login dropped and its name made again as a
# gateway; a login that holds the admin role through another role; a
# grant WITH ADMIN OPTION kept by the mapping
sc_psql -d $db >/dev/null <<'SQL'
SELECT status_checker.add_user(1, 'temp_u', 'temp@a.example', 'manager');
CREATE ROLE tmp_login LOGIN;
SELECT status_checker.map_db_role(1, 'temp_u', 'tmp_login');
DROP ROLE tmp_login;
CREATE ROLE tmp_login LOGIN NOINHERIT;       -- the name reused for an application server
GRANT status_checker_gateway, status_checker_viewer, status_checker_reporter, status_checker_manager,
      status_checker_admin TO tmp_login;
CREATE ROLE staff NOLOGIN; GRANT status_checker_admin TO staff;
CREATE ROLE ind LOGIN IN ROLE staff;
SELECT status_checker.add_user(1, 'ind_u', 'ind@a.example', 'viewer');
CREATE ROLE adm_opt LOGIN; GRANT status_checker_admin TO adm_opt WITH ADMIN OPTION;
SELECT status_checker.add_user(1, 'adm_u', 'adm@a.example', 'admin');
SQL
r1=$(as a_admin -c "SELECT status_checker.set_user_role(1, 'temp_u', 'viewer')")
t1=$(as tmp_login -c "SET ROLE status_checker_manager" -c "SELECT coalesce(status_checker.current_tenant()::text, 'none')")
as a_admin -c "SELECT status_checker.remove_user(1, 'temp_u')" >/dev/null
ok "a mapping whose login was dropped and its name made a gateway: the name is no tenant's user ($t1), the tenant's administrator cannot change its roles ($r1), removing the user leaves them" \
   '[ "$r1" = "ERROR 22023" ] &&
    [ "$(q "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '"'tmp_login'"'")" = 5 ] &&
    [ "$t1" = none ]'
ok "a login that holds the admin role through another role cannot be mapped as a viewer (22023)" \
   '[ "$(as op -c "SELECT status_checker.map_db_role(1, '"'ind_u'"', '"'ind'"')")" = "ERROR 22023" ] &&
    [ "$(as ind -c "SELECT coalesce(status_checker.current_tenant()::text, '"'none'"')")" = none ]'
as op -c "SELECT status_checker.map_db_role(1, 'adm_u', 'adm_opt')" >/dev/null
ok "a login granted its role WITH ADMIN OPTION holds it plainly once mapped, and cannot grant it on" \
   '[ "$(q "SELECT string_agg(admin_option::text, '"','"') FROM pg_auth_members WHERE member = '"'adm_opt'"'::regrole")" = false ] &&
    [ "$(as adm_opt -c "GRANT status_checker_admin TO a_viewer")" = "ERROR 42501" ]'
masks=$(as a_viewer <<'SQL'
SELECT string_agg(status_checker._masked_recipient(1, k, u), ' | ' ORDER BY u, k)
FROM unnest(ARRAY['https://hooks.example.com;token=SECRET1', 'https://hooks.example.com\services\SECRET2',
                  'https://hooks.example.com:SECRET6/x', 'https://user:p@SECRET4@hooks.example.com/x',
                  E'https://hooks.example.com SECRET5/x', 'mailto:SECRET7@x.example', '"SECRET8"@x.example']) u,
     unnest(ARRAY['email', 'webhook']) k;
SQL
)
ok "URLs and addresses of odd shapes masked as either kind show no secret ($masks)" \
   '[ -n "$masks" ] && ! echo "$masks" | grep -q SECRET'

# ---- sign-in: a second attempt at the same login waits for the first, whether the login exists or not
q "SELECT status_checker.set_user_password(1, 'admin_a', 'correct horse battery')" >/dev/null
waits() {  # waits LOGIN → what a second attempt gets while a first one for LOGIN is open
    local fifo="$work/s1.$1" second
    mkfifo "$fifo"; chmod 666 "$fifo"
    as gw < "$fifo" > "$work/s1.out" &
    local pid=$!
    exec 7>"$fifo"
    printf '%s\n' "SET ROLE status_checker_gateway;" "BEGIN;" "SELECT (status_checker.web_login(1, '$1', 'wrong password 1')).ok;" >&7
    # the first attempt has returned and its transaction stays open
    wait_for 30 "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = 'gw' AND state = 'idle in transaction')" || true
    second=$(as gw -c "SET ROLE status_checker_gateway" -c "SET lock_timeout = '300ms'" \
                 -c "SELECT (status_checker.web_login(1, '$1', 'wrong password 2')).ok")
    echo "ROLLBACK;" >&7; exec 7>&-; wait $pid || true; rm -f "$fifo"
    echo "$second"
}
known=$(waits admin_a); unknown=$(waits nobody-here)
ok "two attempts at once: the second waits (lock timeout) for a known login and for an unknown one alike ($known / $unknown)" \
   '[ "$known" = "ERROR 55P03" ] && [ "$unknown" = "ERROR 55P03" ]'

# ---- the isolation matrix over real connections: every table and view, read for the other tenant
sc_psql -d $db >/dev/null <<'SQL'
SELECT status_checker.create_tenant('テナントB2', 'admin_b2', 'admin@b2.example');
SELECT status_checker.import_sites(3, E'code,name,municipality_code,lat,lon,contact_email\nC01,C,1310100,35.6,139.7,c@c.example\n');
SELECT status_checker.create_form(3, 'f', status_checker.default_form_definition());
SELECT status_checker.create_request(3, 3, 'C の依頼', now() + interval '6 hours');
CREATE FUNCTION public.seen_of(other bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record; n bigint; seen text[] := '{}'; checked int := 0;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1 LOOP
        checked := checked + 1;
        BEGIN
            EXECUTE format('SELECT count(*) FROM status_checker.%I WHERE tenant_id = $1', r.relname) INTO n USING other;
            IF n > 0 THEN seen := seen || r.relname::text; END IF;
        EXCEPTION WHEN insufficient_privilege THEN NULL;
        END;
    END LOOP;
    RETURN format('%s checked, seen: %s', checked, array_to_string(seen, ','));
END $$;
GRANT EXECUTE ON FUNCTION public.seen_of(bigint) TO PUBLIC;
SQL
for login in a_viewer a_reporter a_manager a_admin gw; do
    got=$(as $login -c "SELECT public.seen_of(3)")
    ok "$login over its own connection: no table or view shows a row of another tenant ($got)" '[[ "$got" =~ ^[0-9]+\ checked,\ seen:\ $ ]]'
done
grp=$(as gw <<'SQL' | tail -1
BEGIN;
SET LOCAL ROLE status_checker_gateway;
SELECT status_checker.set_app_user(1, 'viewer_a') \gset
SET LOCAL ROLE status_checker_viewer;
SELECT public.seen_of(3);
COMMIT;
SQL
)
ok "the gateway acting for A's viewer: nothing of the other tenant ($grp)" '[[ "$grp" =~ ^[0-9]+\ checked,\ seen:\ $ ]]'
exit $fail
