-- Attacks (0.10.1): the holes a review of 0.10.0 found, each tried the way an
-- attacker would, logged in as the non-superuser roles an installation has
-- (SET SESSION AUTHORIZATION: session_user is the attacker's login, as over
-- a real connection; test/integration/attacks.sh does the same over real
-- connections and HTTP).  Every test here failed on 0.10.0.
--
--   1. a SECURITY DEFINER function that reused a caller's temporary table
--      let a tenant's manager run code as status_checker_api and switch
--      the session to another tenant;
--   2. viewers could decrypt contacts and user addresses, and read
--      broadcast webhook URLs and channel URLs;
--   3. first links failed through a non-superuser gateway, and the failure
--      told whether the target a link names exists;
--   6. five wrong passwords locked an administrator out, and a locked
--      account answered differently from an unknown one;
--   7. delete_tenant left mapped logins in the group roles;
--  10. CSV cells starting with a tab or a carriage return were not guarded;
--  and: a caller's settings (row_security = off) hid its failed sign-ins
--  from the audit log.
BEGIN;
\ir fixtures.psql
SELECT plan(54);

-- what a statement does, as text, whatever it does (an error included):
-- so that a probe of 0.10.0 fails its test instead of aborting the file
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE stmt INTO r;
    RETURN coalesce(r, '<null>');
EXCEPTION WHEN OTHERS THEN
    RETURN format('ERROR %s: %s', SQLSTATE, SQLERRM);
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

-- people of tenant A with their own database logins, a gateway, an operator
SELECT add_user(:ta, 'viewer_a', 'viewer@a.example', 'viewer'), add_user(:ta, 'reporter_a', 'reporter@a.example', 'reporter'),
       add_user(:ta, 'manager_a', 'manager@a.example', 'manager') \gset
CREATE ROLE atk_viewer LOGIN; CREATE ROLE atk_reporter LOGIN; CREATE ROLE atk_manager LOGIN; CREATE ROLE atk_admin LOGIN;
CREATE ROLE atk_gateway LOGIN IN ROLE status_checker_gateway;
CREATE ROLE atk_operator LOGIN IN ROLE status_checker_operator;
SELECT map_db_role(:ta, 'viewer_a', 'atk_viewer'), map_db_role(:ta, 'reporter_a', 'atk_reporter'),
       map_db_role(:ta, 'manager_a', 'atk_manager'), map_db_role(:ta, 'admin_a', 'atk_admin') \gset
-- tenant B has a contact, a channel with a secret and a broadcast webhook
SELECT add_site_contact(:tb, 'B01', 'email', 'b-secret-contact@b.example', 'B担当') AS cb \gset
SELECT add_channel(:tb, 'webhook', 'b-room', '{"url": "https://hooks.example.com/services/T0B/B0B/b-room-credential", "secret": "b-secret-0123456789"}') AS chb \gset
-- and tenant A too: its own broadcast webhook, whose URL is a credential
SELECT add_channel(:ta, 'webhook', 'a-room', '{"url": "https://hooks.example.com/services/T0A/B0A/a-room-credential", "format": "slack"}') AS cha \gset
SELECT create_request(:ta, :fa, 'A request with messages', now() + interval '6 hours') AS ra2 \gset
-- something to steal, and a record of whoever ran the attacker's code
CREATE TABLE public.pwned (who name, what text);
GRANT INSERT ON public.pwned TO PUBLIC;

-- ------------------------------------------------------------ 1. temporary objects in SECURITY DEFINER functions

SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'status_checker'::regnamespace
                  AND p.prosrc ~* '(pg_temp\s*\.|create\s+(local\s+|global\s+)?temp(orary)?\s|to_regclass)'
                ORDER BY 1),
          '{}'::text[],
          'no function of the extension creates, reuses or names a temporary object (catalog check of every body)');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace = 'status_checker'::regnamespace AND p.prosecdef
                  AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                                  WHERE c IN ('search_path=pg_catalog, pg_temp', 'search_path=pg_catalog, status_checker, pg_temp',
                                              'search_path=""'))
                ORDER BY 1),
          '{}'::text[],
          'every SECURITY DEFINER function pins its search_path (pg_catalog first, pg_temp last)');
-- (the policy's expression read with the schema named, whatever the file's search_path)
SET LOCAL search_path = pg_catalog, public;
-- every table with a tenant_id has row-level security, forced, and the one
-- tenant policy (declared next to each table since 1.0.0: a table added
-- without them would otherwise leak through the API, which may read every
-- table, and no other test would notice)
SELECT is(ARRAY(SELECT c.oid::regclass::text FROM pg_class c
                JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
                WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'p')
                  AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                           AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) = 1
                           AND EXISTS (SELECT 1 FROM pg_policy p
                                       WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation' AND p.polcmd = '*'
                                         AND p.polpermissive AND p.polroles = '{0}'
                                         AND pg_get_expr(p.polqual, p.polrelid) = 'status_checker._may_see(tenant_id)'
                                         AND pg_get_expr(p.polwithcheck, p.polrelid) = 'status_checker._may_see(tenant_id)'))
                ORDER BY 1),
          '{}'::text[],
          'every tenant table has row-level security, forced, and exactly the tenant_isolation policy');
SET LOCAL search_path = status_checker, public;

-- the manager plants temporary tables under every name a SECURITY DEFINER
-- function of 0.10.0 used, each with triggers that run the manager's code
SET SESSION AUTHORIZATION atk_manager;
CREATE FUNCTION pg_temp.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.pwned VALUES (current_user, TG_TABLE_NAME);
    BEGIN
        EXECUTE format('SELECT status_checker._set_context(%s, %L, %L)', current_setting('atk.other'), 'admin_b', 'manager');
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO public.pwned VALUES (current_user, 'set_context refused: ' || SQLERRM);
    END;
    RETURN NULL;
END
$$;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['_sc_first_out', '_sc_new_tokens', '_sc_import_raw', '_sc_import', '_sc_jma', '_sc_ask', '_sc_open'] LOOP
        EXECUTE format('CREATE TEMP TABLE %I (site_id bigint PRIMARY KEY, token text, line int, fields text[], error text)', t);
        EXECUTE format('GRANT ALL ON pg_temp.%I TO PUBLIC', t);
        EXECUTE format('CREATE TRIGGER t1 BEFORE TRUNCATE ON pg_temp.%I FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.evil()', t);
        EXECUTE format('CREATE TRIGGER t2 BEFORE INSERT OR UPDATE OR DELETE ON pg_temp.%I FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.evil()', t);
    END LOOP;
END
$$;
SELECT set_config('atk.other', :'tb', true);
SELECT lives_ok(format('SELECT count(*) FROM status_checker.issue_tokens(%s)', :ra), 'the manager issues the links of its request…');
SELECT lives_ok(format('SELECT status_checker.issue_token(%s, %L)', :ra, 'A02'), '… and one link');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION atk_admin;
SELECT set_config('atk.other', :'tb', true);
CREATE TEMP TABLE admin_planted AS SELECT 1;
SELECT lives_ok(format('SELECT status_checker.import_sites(%s, %L)', :ta, E'code,name,municipality_code,lat,lon\nA04,A新拠点,1310100,35.6,139.7\n'),
                'an administrator imports sites');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION atk_manager;
SELECT is(current_tenant(), :ta::bigint, 'after those calls the manager still acts for its own tenant…');
SELECT ok((SELECT count(*) FROM status_checker.contact_list WHERE tenant_id = :ta) > 0
          AND (SELECT count(*) FROM status_checker.contact_list WHERE tenant_id <> :ta) = 0, '… reads its own contacts, and only those…');
-- (on 0.10.0 the planted code had set a gateway's context for tenant B, which held under the manager group role)
SET LOCAL ROLE status_checker_manager;
SELECT is((SELECT count(*)::int FROM status_checker.contact_list WHERE tenant_id <> :ta), 0,
          '… and, under its group role, reads no other tenant''s contacts (0.10.0: tenant B''s, decrypted)');
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*)::int FROM public.pwned), 0, 'the planted triggers never ran (no function touched a temporary table of the caller)');
SELECT reset_app_user();   -- (on 0.10.0 the planted code switched the session to tenant B: undone, so that the file goes on)
-- who may switch a session's tenant or read a key: no role that runs code a caller can influence
SELECT is(ARRAY(SELECT format('%s may run %s', r.rolname, p.oid::regprocedure)
                FROM pg_proc p
                CROSS JOIN (VALUES ('status_checker_api'), ('status_checker_viewer'), ('status_checker_reporter'),
                                   ('status_checker_manager'), ('status_checker_admin'), ('status_checker_gateway'),
                                   ('atk_manager'), ('atk_gateway'), ('public')) r(rolname)
                WHERE p.pronamespace = 'status_checker'::regnamespace
                  AND p.proname IN ('_set_context', '_link_key', '_master_wrap', '_master_unwrap', '_rewrap',
                                    '_new_data_key', '_forget_keys', '_decrypt_secrets', '_claim_messages', '_first_link_valid')
                  AND CASE WHEN r.rolname = 'public'
                           THEN EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                        WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
                           ELSE has_function_privilege(r.rolname, p.oid, 'EXECUTE') END
                ORDER BY 1),
          '{}'::text[],
          'no tenant role, gateway or the API functions'' owner may execute a context switch or read a key');
SET SESSION AUTHORIZATION atk_manager;
SELECT matches(pg_temp.try(format('SELECT status_checker._set_context(%s, %L, %L)', :tb, 'admin_b', 'admin')), '^ERROR (42501|42883)',
               'a manager cannot switch its session to another tenant');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ a caller's settings

SELECT set_user_password(:ta, 'admin_a', 'correct horse battery');
SELECT count(*) AS audited_before FROM audit_log WHERE tenant_id = :ta AND object = 'web_login' \gset
SET SESSION AUTHORIZATION atk_gateway;
SET LOCAL row_security = off;
SELECT is(pg_temp.try(format('SELECT (web_login(%s, %L, %L)).reason', :ta, 'admin_a', 'guess 1')), 'wrong',
          'a gateway''s sign-in with row_security off is checked as any other');
RESET row_security;
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM audit_log WHERE tenant_id = :ta AND object = 'web_login') - :audited_before, 1::bigint,
          '… and its failure is in the audit log (a caller''s setting does not switch auditing off)');

-- ------------------------------------------------------------ 2. viewers and decrypted data

SET SESSION AUTHORIZATION atk_viewer;
SELECT matches(pg_temp.try(format('SELECT min(status_checker._decrypt(tenant_id, %L, address)) FROM status_checker.site_contact', 'recipient')),
               '^ERROR 42501', 'a viewer cannot decrypt the contacts'' addresses');
SELECT matches(pg_temp.try(format('SELECT min(status_checker._decrypt(tenant_id, %L, email)) FROM status_checker.app_user', 'recipient')),
               '^ERROR 42501', 'nor the users'' mail addresses');
SELECT matches(pg_temp.try('SELECT count(status_checker._decrypt_bytes(tenant_id, ''contact_name'', decode(substr(name, 5), ''base64'')))::text FROM status_checker.site_contact'),
               '^ERROR 42501', 'nor with the bytes variant');
SELECT is((SELECT count(*)::int FROM status_checker.outbox WHERE recipient !~ '^sc1:'), 0,
          'the outbox holds no recipient in clear: a broadcast webhook''s URL is encrypted like a contact''s address');
SELECT is((SELECT count(*)::int FROM status_checker.outbox WHERE recipient LIKE '%credential%'), 0, 'the channel''s URL is nowhere in it');
SELECT matches(pg_temp.try('SELECT count(*)::text FROM status_checker.channel_list'), '^ERROR 42501',
               'a viewer cannot read the channels'' configuration (their URLs are credentials)');
SELECT is(pg_temp.try($$SELECT count(*)::text FROM status_checker.delivery_status
                         WHERE recipient LIKE '%credential%' OR recipient IN ('a01@a.example', 'a02@a.example')$$),
          '0', 'a viewer reads delivery_status, its recipients masked');
SELECT is(pg_temp.try($$SELECT count(*)::text FROM status_checker.delivery_status WHERE recipient = 'https://hooks.example.com/…' AND channel_name = 'a-room'$$),
          '3', '… the broadcast webhook (once per site) as scheme and host');
SELECT is(pg_temp.try($$SELECT count(*)::text FROM status_checker.delivery_status WHERE recipient = 'a***@a.example'$$), '4',
          '… and a contact''s mail as its first letter and domain');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION atk_manager;
SELECT is((SELECT min(address) FROM status_checker.contact_list WHERE site_code = 'A01'), 'a01@a.example',
          'a manager still reads the contacts in clear');
SELECT is((SELECT count(*)::int FROM status_checker.channel_list WHERE config ->> 'url' LIKE '%a-room-credential'), 1,
          'and the channels');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ 3. first links through a gateway that is not a superuser

SELECT site_id AS a01 FROM site WHERE tenant_id = :ta AND code = 'A01' \gset
SELECT site_id AS a03 FROM site WHERE tenant_id = :ta AND code = 'A03' \gset
SELECT site_id AS b01 FROM site WHERE tenant_id = :tb AND code = 'B01' \gset
SELECT _link(_link_key(:ta), :ta, :ra2, :a01, 1) AS first_link \gset
SELECT _link(_link_key(:ta), :ta, :ra2, :a03, 1) AS first_link3 \gset
SET SESSION AUTHORIZATION atk_gateway;
SELECT is(pg_temp.try(format('SELECT status_checker.report_form(%L) -> ''site'' ->> ''code''', :'first_link')), 'A01',
          'a gateway login opens a first link');
SELECT matches(pg_temp.try(format('SELECT status_checker.submit_report(%L, %L, %L)', :'first_link', :'ok_answers', 'k-1')), '^[0-9]+$',
               'and reports through it');
-- a wrong link gets the same error whatever it names
SELECT is(pg_temp.try(format('SELECT status_checker.report_form(%L)', overlay(:'first_link3' placing 'AAAA' from 1 for 4))),
          'ERROR 28000: unknown report token', 'a first link with a wrong token naming a target that exists: unknown token');
SELECT is(pg_temp.try(format('SELECT status_checker.report_form(%L)', overlay(:'first_link3' placing 'AAAA' from 1 for 4) || '0')),
          'ERROR 28000: unknown report token', 'the same link naming a site that does not exist: the same error');
SELECT is(pg_temp.try(format('SELECT status_checker.report_form(%L)', regexp_replace(:'first_link3', '\.[0-9]+\.', format('.%s.', :tb)))),
          'ERROR 28000: unknown report token', 'naming another tenant: the same error');
SELECT is(pg_temp.try(format('SELECT status_checker.submit_report(%L, %L)', overlay(:'first_link3' placing 'AAAA' from 1 for 4), :'ok_answers')),
          'ERROR 28000: unknown report token', 'submitting by a wrong first link: the same error');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION atk_reporter;
SELECT is(pg_temp.try(format('SELECT status_checker.report_form(%L) -> ''site'' ->> ''code''', :'first_link3')), 'A03',
          'a reporter''s login opens a first link of its tenant too');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ 6. sign-in: throttled, never locked, every failure alike

-- the administrator signed in before from her browser: it holds a device token
SELECT pg_temp.try(format('SELECT (web_login(%s, %L, %L, NULL)).device_token', :ta, 'admin_a', 'correct horse battery')) AS device \gset
SELECT matches(:'device'::text, '^[A-Za-z0-9_-]{43}$', 'a sign-in gives the browser a device token');
SET SESSION AUTHORIZATION atk_gateway;
-- an attacker tries twenty passwords
SELECT count(*) AS tried FROM (SELECT pg_temp.try(format('SELECT (web_login(%s, %L, %L)).reason', :ta, 'admin_a', 'guess ' || i))
                               FROM generate_series(1, 20) i) x \gset
SELECT is(pg_temp.try(format('SELECT (web_login(%s, %L, %L, %L)).ok', :ta, 'admin_a', 'correct horse battery', :'device')), 'true',
          'after twenty wrong passwords from elsewhere, the administrator signs in from her browser with the right one');
SELECT is(pg_temp.try(format('SELECT row(ok, reason, session_token, csrf_token, role, locked_until)::text FROM web_login(%s, %L, %L)',
                             :ta, 'admin_a', 'guess 21')),
          pg_temp.try(format('SELECT row(ok, reason, session_token, csrf_token, role, locked_until)::text FROM web_login(%s, %L, %L)',
                             :ta, 'nobody', 'guess 21')),
          'a throttled account answers exactly as an unknown login');
SELECT is(pg_temp.try(format('SELECT (web_login(%s, %L, %L, NULL)).ok', :ta, 'admin_a', 'correct horse battery')), 'false',
          'from a browser that never signed in, the right password waits for the throttle (guessing is slowed)');
RESET SESSION AUTHORIZATION;
SELECT pg_temp.try(format($$UPDATE status_checker.web_login SET throttled_until = now() - interval '1 second' WHERE tenant_id = %s RETURNING 'moved'$$, :ta)) AS moved \gset
SET SESSION AUTHORIZATION atk_gateway;
SELECT is(pg_temp.try(format('SELECT (web_login(%s, %L, %L, NULL)).ok', :ta, 'admin_a', 'correct horse battery')), 'true',
          'once the delay is over, the right password signs in from anywhere');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT array_agg(DISTINCT reason) FROM (SELECT (web_login(:ta, 'admin_a', 'x' || i)).reason FROM generate_series(1, 8) i) x),
          ARRAY['wrong'], 'every failure says "wrong", throttled or not');
SELECT is((SELECT (failures, throttled) FROM web_login WHERE tenant_id = :ta AND user_id = (SELECT user_id FROM app_user WHERE login = 'admin_a')),
          (5, 3), 'five failures are counted; the three that came while slowed were refused unchecked');
UPDATE web_login SET throttled_until = now() - interval '1 second' WHERE tenant_id = :ta;
SELECT is((SELECT reason FROM web_login(:ta, 'admin_a', 'x9')), 'wrong', 'once the delay is over a wrong password is checked again…');
SELECT ok((SELECT throttled_until BETWEEN now() + interval '29 seconds' AND now() + interval '31 seconds' FROM web_login WHERE tenant_id = :ta),
          '… and the next delay is twice as long (15 s, 30 s, … up to 15 minutes)');

-- ------------------------------------------------------------ 7. deleting a tenant revokes its logins' group roles

CREATE ROLE atk_b_admin LOGIN;
SELECT map_db_role(:tb, 'admin_b', 'atk_b_admin');
SELECT ok(pg_has_role('atk_b_admin', 'status_checker_admin', 'MEMBER'), 'a login mapped to B''s administrator holds the admin role');
SET SESSION AUTHORIZATION atk_operator;
SELECT lives_ok(format('SELECT status_checker.delete_tenant(%s)', :tb), 'the operator (a login, not a superuser) deletes tenant B');
RESET SESSION AUTHORIZATION;
SELECT ok(NOT pg_has_role('atk_b_admin', 'status_checker_admin', 'MEMBER'), 'the login no longer holds the admin role');
SELECT add_user(:ta, 'from_b', 'from-b@a.example', 'viewer');
SELECT map_db_role(:ta, 'from_b', 'atk_b_admin');
SELECT is(ARRAY(SELECT r.rolname::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
                WHERE m.member = 'atk_b_admin'::regrole ORDER BY 1),
          ARRAY['status_checker_viewer'], 'mapped later as a viewer of A, it is a viewer and nothing more');

-- ------------------------------------------------------------ the operator's login

-- (until 0.10.1 nothing was granted to status_checker_operator: only a superuser could operate)
SET SESSION AUTHORIZATION atk_operator;
SELECT matches(pg_temp.try($$SELECT status_checker.create_tenant('テナントC', 'admin_c', 'admin@c.example')::text$$), '^[0-9]+$',
               'an operator''s login creates a tenant');
SELECT is(pg_temp.try(format($$SELECT (count(DISTINCT tenant_id) >= 2)::text FROM status_checker.app_user$$)), 'true',
          'and reads every tenant (their users, here)');
SELECT matches(pg_temp.try('SELECT status_checker.seal_audit_log()::text'), '^[0-9]+$', 'and seals the audit log');
SELECT matches(pg_temp.try(format('SELECT status_checker.map_db_role(%s, %L, %L)::text', :ta, 'viewer_a', 'atk_operator')), '^ERROR 22023',
               'but cannot map its own login to a tenant''s user');
SELECT matches(pg_temp.try('SELECT min(address) FROM status_checker.contact_list'), '^ERROR 42501',
               'nor read contacts in clear');
SELECT matches(pg_temp.try(format('SELECT encode(status_checker._link_key(%s), %L)', :ta, 'hex')), '^ERROR 42501',
               'nor a link key');
SELECT matches(pg_temp.try('SELECT secrets::text FROM status_checker.channel LIMIT 1'), '^ERROR 42501',
               'nor a channel''s secrets');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------ 10. the CSV formula guard

SELECT upsert_site(:ta, 'A05', E'\t=1+2', '1310100', 35.6, 139.7) AS a05 \gset
SELECT upsert_site(:ta, 'A06', E'\r=1+2', '1310100', 35.6, 139.7) AS a06 \gset
SELECT create_request(:ta, :fa, 'CSV', now() + interval '1 hour', '{"sites": ["A05", "A06"]}') AS rcsv \gset
SELECT ok(status_matrix_csv(:rcsv) LIKE E'%"''\t=1+2"%', 'a cell starting with a tab is prefixed with a quote');
SELECT ok(status_matrix_csv(:rcsv) LIKE E'%"''\r=1+2"%', 'so is one starting with a carriage return');

SELECT * FROM finish();
ROLLBACK;
