-- Tenant isolation with roles and row-level security: users of tenant A,
-- in every role, directly and through a gateway, can neither read nor
-- change anything of tenant B — not through tables, views, the API
-- functions, error messages, foreign-key probes, nor a leaky function in a
-- WHERE clause (the technique of PostgreSQL's rowsecurity test).
BEGIN;
\ir fixtures.psql
SELECT plan(42);

-- tenant B gets something in every table
SELECT submit_report_for(:rb, 'B01', :'ok_answers') AS r \gset
SELECT add_channel(:tb, 'webhook', 'b-hook', '{"url": "https://hooks.b.example/b", "secret": "b-secret-0123456789"}') AS chb \gset
SELECT set_message_template(:tb, 'request', 'ja', 'B件名 {{site_name}}', 'B本文 {{link}}');
SELECT create_trigger_rule(:tb, 'B規則', :fb, '5+') AS rule_b \gset
SELECT add_user(:tb, 'mgr_b', 'mgr@b.example', 'manager') AS mgr_b \gset
SELECT add_group_manager(:tb, (SELECT min(group_id) FROM site_group WHERE tenant_id = :tb), 'mgr_b');
SELECT issue_token(:rb, 'B02') AS token_b \gset
SELECT create_request(:tb, :fb, 'B request 2', now() + interval '6 hours') AS rb2 \gset
SELECT seal_audit_log() AS sealed \gset

-- people of tenant A: one database login per role, and a gateway
SELECT add_user(:ta, 'viewer_a', 'v@a.example', 'viewer'), add_user(:ta, 'reporter_a', 'r@a.example', 'reporter'),
       add_user(:ta, 'manager_a', 'm@a.example', 'manager') \gset
CREATE ROLE iso_viewer LOGIN; CREATE ROLE iso_reporter LOGIN; CREATE ROLE iso_manager LOGIN; CREATE ROLE iso_admin LOGIN;
CREATE ROLE iso_gateway LOGIN IN ROLE status_checker_gateway;
-- a gateway may take the group roles of the users it serves
GRANT status_checker_viewer, status_checker_reporter, status_checker_manager, status_checker_admin TO iso_gateway;
CREATE ROLE iso_stranger LOGIN;
SELECT map_db_role(:ta, 'viewer_a', 'iso_viewer'), map_db_role(:ta, 'reporter_a', 'iso_reporter'),
       map_db_role(:ta, 'manager_a', 'iso_manager'), map_db_role(:ta, 'admin_a', 'iso_admin') \gset

-- probes, run as each role: rows of the other tenant seen, changed, or refused
CREATE FUNCTION public.iso_read(other bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record; n bigint; seen text[] := '{}'; refused int := 0; checked int := 0;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1 LOOP
        checked := checked + 1;
        BEGIN
            EXECUTE format('SELECT count(*) FROM status_checker.%I WHERE tenant_id = $1', r.relname) INTO n USING other;
            IF n > 0 THEN seen := seen || r.relname::text; END IF;
        EXCEPTION WHEN insufficient_privilege THEN refused := refused + 1;
        END;
    END LOOP;
    RETURN jsonb_build_object('seen', seen, 'refused', refused, 'checked', checked);
END
$$;
CREATE FUNCTION public.iso_write(other bigint, mine bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r record; n bigint; changed text[] := '{}'; refused int := 0; checked int := 0; stmt text;
BEGIN
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
             WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind = 'r' ORDER BY 1 LOOP
        FOREACH stmt IN ARRAY ARRAY[
            format('UPDATE status_checker.%I SET tenant_id = tenant_id WHERE tenant_id = %s', r.relname, other),
            format('UPDATE status_checker.%I SET tenant_id = %s WHERE tenant_id = %s', r.relname, other, mine),
            format('DELETE FROM status_checker.%I WHERE tenant_id = %s', r.relname, other),
            format('INSERT INTO status_checker.%I SELECT * FROM status_checker.%I WHERE tenant_id = %s', r.relname, r.relname, mine),
            format('INSERT INTO status_checker.%I (tenant_id) VALUES (%s)', r.relname, other)] LOOP
            checked := checked + 1;
            BEGIN
                EXECUTE stmt;
                GET DIAGNOSTICS n = ROW_COUNT;
                IF n > 0 THEN changed := changed || stmt; END IF;
            EXCEPTION WHEN OTHERS THEN refused := refused + 1;
            END;
        END LOOP;
    END LOOP;
    RETURN jsonb_build_object('changed', changed, 'refused', refused, 'checked', checked);
END
$$;
-- the API functions, called with the other tenant's identifiers: each must fail
CREATE FUNCTION public.iso_calls(tb bigint, rb bigint, rb2 bigint, fb bigint, chb bigint, rule_b bigint, gb bigint, ta bigint, fa bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    stmt text; passed text[] := '{}'; checked int := 0; msgs jsonb := '{}';
BEGIN
    FOREACH stmt IN ARRAY ARRAY[
        -- calls that would work for the tenant itself (and for the operator)
        format('SELECT status_checker.add_user(%s, %L, %L, %L)', tb, 'intruder', 'x@x.example', 'admin'),
        format('SELECT status_checker.set_user_role(%s, %L, %L)', tb, 'mgr_b', 'viewer'),
        format('SELECT status_checker.create_site_group(%s, %L)', tb, 'x'),
        format('SELECT status_checker.upsert_site(%s, %L, %L, %L, 35.0, 139.0)', tb, 'B09', 'x', '1310100'),
        format('SELECT status_checker.add_site_contact(%s, %L, %L, %L)', tb, 'B01', 'email', 'x@x.example'),
        format('SELECT status_checker.import_sites(%s, %L)', tb, E'code,name,municipality_code,lat,lon\nB08,x,1310100,35,139\n'),
        format('SELECT status_checker.create_form(%s, %L, status_checker.default_form_definition())', tb, 'x'),
        format('SELECT status_checker.create_request(%s, %s, %L, now() + interval ''1 hour'')', tb, fb, 'x'),
        format('SELECT status_checker.check_answers(%s, %L)', fb, '{"building": "none", "injured": 0, "operation": "normal"}'),
        format('SELECT status_checker.request_geojson(%s)', rb),
        format('SELECT status_checker.issue_token(%s, %L)', rb, 'B01'),
        format('SELECT status_checker.issue_tokens(%s)', rb),
        format('SELECT status_checker.submit_report_for(%s, %L, %L)', rb, 'B01', '{"building": "none", "injured": 0, "operation": "normal"}'),
        format('SELECT status_checker.set_request_reminders(%s, ARRAY[''1 hour''::interval])', rb),
        format('SELECT status_checker.create_trigger_rule(%s, %L, %s, %L)', tb, 'x', fb, '5+'),
        format('SELECT status_checker.set_trigger_rule_enabled(%s, false)', rule_b),
        format('SELECT status_checker.set_rule_reminders(%s, ARRAY[''1 hour''::interval])', rule_b),
        format('SELECT status_checker.add_channel(%s, %L, %L, %L)', tb, 'webhook', 'x', '{"url": "https://hooks.b.example/x", "secret": "x-secret-0123456789"}'),
        format('SELECT status_checker.set_channel_enabled(%s, false)', chb),
        format('SELECT status_checker.set_message_template(%s, %L, %L, %L, %L)', tb, 'request', 'en', 'x', 'x'),
        format('SELECT status_checker.add_group_manager(%s, %s, %L)', tb, gb, 'admin_b'),
        format('SELECT status_checker.audit_chain_head(%s)', tb),
        format('SELECT * FROM status_checker.verify_audit_log(%s)', tb),
        format('SELECT status_checker.close_request(%s)', rb2),
        format('SELECT status_checker.cancel_request(%s, %L)', rb, 'x'),
        format('SELECT status_checker.remove_user(%s, %L)', tb, 'mgr_b'),
        format('SELECT status_checker.map_db_role(%s, %L, %L)', tb, 'admin_b', 'iso_stranger'),
        format('SELECT status_checker.set_app_user(%s, %L)', tb, 'admin_b'),
        format('SELECT status_checker.reset_app_user()'),
        format('SELECT status_checker.delete_tenant(%s)', tb),
        -- foreign-key probes: another tenant's group, site, form under one's own tenant (refused even for the operator)
        format('SELECT status_checker.create_site_group(%s, %L, %s)', ta, 'x', gb),
        format('SELECT status_checker.add_site_contact(%s, %L, %L, %L)', ta, 'B01', 'email', 'x@x.example'),
        format('SELECT status_checker.create_request(%s, %s, %L, now() + interval ''1 hour'')', ta, fb, 'x'),
        format('SELECT status_checker.create_request(%s, %s, %L, now() + interval ''1 hour'', %L)', ta, fa, 'x', format('{"groups": [%s]}', gb)),
        format('SELECT status_checker.create_trigger_rule(%s, %L, %s, %L)', ta, 'x', fb, '5+')] LOOP
        checked := checked + 1;
        BEGIN
            EXECUTE stmt;
            passed := passed || stmt;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
    RETURN jsonb_build_object('passed', passed, 'checked', checked);
END
$$;
CREATE TABLE public.leaked (v text);
GRANT INSERT ON public.leaked TO PUBLIC;
CREATE FUNCTION public.leak(v text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
BEGIN
    INSERT INTO public.leaked VALUES (v);
    RETURN true;
END
$$;

SELECT pg_temp.row_counts() AS before \gset

-- control: the operator (no tenant) can make the first 30 calls, so each probe is a call that works
SAVEPOINT control;
SELECT public.iso_calls(:tb, :rb, :rb2, :fb, :chb, :rule_b, (SELECT min(group_id) FROM status_checker.site_group WHERE tenant_id = :tb), :ta, :fa) AS control \gset
SELECT is(jsonb_array_length(:'control'::jsonb -> 'passed'), 30, 'control: every probe call except the five foreign-key probes works for the operator');
ROLLBACK TO SAVEPOINT control;

-- ------------------------------------------------------------ reading

SET SESSION AUTHORIZATION iso_viewer;
SELECT is(current_tenant(), :ta::bigint, 'a mapped login acts for its tenant');
SELECT is(public.iso_read(:tb) -> 'seen', '[]', 'viewer: no table or view shows a row of the other tenant');
SELECT is((SELECT count(*)::int FROM status_checker.site), 3, 'viewer: sees its own tenant''s sites');
SELECT is((SELECT count(*)::int FROM status_checker.site_status), 3, 'viewer: and their status');
SELECT is((SELECT count(*)::int FROM status_checker.site WHERE public.leak(name)), 3, 'viewer: a leaky function in WHERE…');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*)::int FROM public.leaked WHERE v LIKE 'B%'), 0, '…is never shown the other tenant''s rows');
SET SESSION AUTHORIZATION iso_viewer;
SELECT throws_ok('SELECT secrets FROM status_checker.channel', '42501', NULL, 'viewer: channel secrets are not readable');
SELECT throws_ok('SELECT key FROM status_checker.link_key', '42501', NULL, 'viewer: link keys are not readable');
SELECT throws_ok('SELECT private_key FROM status_checker.signing_key', '42501', NULL, 'viewer: the signing key is not readable');
SELECT throws_ok('SELECT * FROM status_checker.audit_log', '42501', NULL, 'viewer: the audit log is for administrators');
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION iso_reporter;
SELECT is(public.iso_read(:tb) -> 'seen', '[]', 'reporter: nothing of the other tenant');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_manager;
SELECT is(public.iso_read(:tb) -> 'seen', '[]', 'manager: nothing of the other tenant');
SELECT is((SELECT count(*)::int FROM status_checker.channel_list), 0, 'manager: channel_list shows only its own channels');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_admin;
SELECT public.iso_read(:tb) AS admin_read \gset
SELECT is(:'admin_read'::jsonb -> 'seen', '[]', 'admin: nothing of the other tenant');
SELECT is((SELECT count(*)::int FROM status_checker.audit_log WHERE tenant_id = :ta) > 0, true, 'admin: reads its own audit log');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_stranger;
SELECT is(public.iso_read(:tb) -> 'seen', '[]', 'a login of no tenant sees nothing');
SELECT is(public.iso_read(:ta) -> 'seen', '[]', 'of either tenant');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ writing

SET SESSION AUTHORIZATION iso_admin;
SELECT public.iso_write(:tb, :ta) AS admin_write \gset
SELECT is(:'admin_write'::jsonb -> 'changed', '[]', 'admin: no statement changes a row of the other tenant, or moves a row to it');
SELECT public.iso_calls(:tb, :rb, :rb2, :fb, :chb, :rule_b, (SELECT min(group_id) FROM status_checker.site_group WHERE tenant_id = :tb), :ta, :fa) AS admin_calls \gset
SELECT is(:'admin_calls'::jsonb -> 'passed', '[]', 'admin: every API function refuses the other tenant''s identifiers');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_manager;
SELECT is(public.iso_write(:tb, :ta) -> 'changed', '[]', 'manager: changes nothing of the other tenant');
SELECT is(public.iso_calls(:tb, :rb, :rb2, :fb, :chb, :rule_b, (SELECT min(group_id) FROM status_checker.site_group WHERE tenant_id = :tb), :ta, :fa) -> 'passed',
          '[]', 'manager: no API call reaches the other tenant');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_viewer;
SELECT is(public.iso_write(:tb, :ta) -> 'changed', '[]', 'viewer: changes nothing of the other tenant');
SELECT is(public.iso_write(:ta, :ta) -> 'changed', '[]', 'viewer: nor of its own by hand');
RESET SESSION AUTHORIZATION;
SELECT is(pg_temp.row_counts(), :'before'::jsonb, 'after all those attempts, no table changed');

-- ------------------------------------------------------------ roles

SET SESSION AUTHORIZATION iso_viewer;
SELECT throws_ok(format('SELECT status_checker.create_request(%s, %s, %L, now() + interval ''1 hour'')', :ta, :fa, 'x'), '42501', NULL,
                 'a viewer cannot create a request');
SELECT throws_ok(format('SELECT status_checker.submit_report_for(%s, %L, %L)', :ra, 'A01', :'ok_answers'), '42501', NULL,
                 'nor report for a site');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_reporter;
SELECT lives_ok(format('SELECT status_checker.submit_report_for(%s, %L, %L)', :ra, 'A01', :'ok_answers'), 'a reporter reports for a site');
SELECT throws_ok(format('SELECT status_checker.add_user(%s, %L, %L, %L)', :ta, 'x', 'x@a.example', 'admin'), '42501', NULL,
                 'but cannot add users');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_manager;
SELECT lives_ok(format('SELECT status_checker.create_request(%s, %s, %L, now() + interval ''1 hour'')', :ta, :fa, 'by manager'),
                'a manager creates a request');
SELECT throws_ok(format('SELECT status_checker.add_user(%s, %L, %L, %L)', :ta, 'x', 'x@a.example', 'admin'), '42501', NULL,
                 'only administrators add users');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_admin;
SELECT lives_ok(format('SELECT status_checker.add_user(%s, %L, %L, %L)', :ta, 'new_a', 'n@a.example', 'viewer'), 'an administrator adds a user');
SELECT throws_ok(format('SELECT status_checker.delete_tenant(%s)', :ta), '42501', NULL, 'deleting a tenant is for the operator');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ error messages and probes

SET SESSION AUTHORIZATION iso_admin;
SELECT throws_ok(format('SELECT status_checker.close_request(%s)', :rb), '23503', format('request %s does not exist', :rb),
                 'another tenant''s request does not exist (the same message as a request that does not exist)');
SELECT throws_ok(format('SELECT status_checker.create_request(%s, %s, %L, now() + interval ''1 hour'')', :ta, :fb, 'x'), '23503', NULL,
                 'a foreign-key probe with another tenant''s form is refused like a form that does not exist');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ the gateway

SET SESSION AUTHORIZATION iso_gateway;
SELECT is(public.iso_read(:ta) -> 'seen', '[]', 'a gateway without a context reads nothing');
SELECT set_app_user(:ta, 'viewer_a') AS grp \gset
SET LOCAL ROLE :grp;
SELECT is((SELECT count(*)::int FROM status_checker.site), 3, 'acting for a viewer of A, under the viewer role, it sees A''s sites');
SELECT is(public.iso_read(:tb) -> 'seen', '[]', 'and nothing of B');
SET LOCAL ROLE status_checker_admin;
SELECT is((SELECT count(*)::int FROM status_checker.site), 0, 'under a higher role than its user''s, it sees nothing at all');
RESET ROLE;
SELECT reset_app_user();
SELECT throws_ok(format('SELECT set_app_user(%s, %L)', :ta, 'nobody'), '28000', NULL, 'an unknown user gives no context');
SELECT ok(submit_report(:'token_b', :'ok_answers') > 0, 'a gateway takes a report by link for any tenant: the link is the credential');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION iso_viewer;
SELECT throws_ok(format('SELECT status_checker.set_app_user(%s, %L)', :ta, 'admin_a'), '42501', NULL,
                 'only a gateway can act for a user');
RESET SESSION AUTHORIZATION;

SELECT diag(format('isolation cases checked: %s table and view reads per role, %s direct writes, %s API calls with the other tenant''s ids',
                   :'admin_read'::jsonb ->> 'checked', :'admin_write'::jsonb ->> 'checked', :'admin_calls'::jsonb ->> 'checked'));

SELECT * FROM finish();
ROLLBACK;
