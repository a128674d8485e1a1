-- The dashboard's SQL (0.6.0): passwords (argon2id), sign-in with lockout,
-- sessions, the dashboard document and the CSV, each confined to the
-- user's tenant.  The HTTP side is tested in test/integration/web.sh and
-- in a browser (test/integration/browser.sh).
BEGIN;
\ir fixtures.psql
SELECT plan(36);

SELECT add_user(:ta, 'kanri', 'kanri@a.example', 'manager') AS u1 \gset
SELECT add_user(:tb, 'viewer_b', 'viewer@b.example', 'viewer') AS u2 \gset

-- ---- passwords
SELECT throws_ok(format('SELECT set_user_password(%s, %L, %L)', :ta, 'kanri', 'short'), '22023',
    'a password has 10 to 200 characters', 'a password under 10 characters is refused');
SELECT throws_ok(format('SELECT set_user_password(%s, %L, %L)', :ta, 'kanri', repeat('x', 201)), '22023', NULL,
    'a password over 200 characters is refused');
SELECT throws_ok(format('SELECT set_user_password(%s, %L, NULL)', :ta, 'kanri'), '22004', NULL, 'a NULL password is refused');
SELECT throws_ok(format('SELECT set_user_password(%s, %L, %L)', :ta, 'nobody', 'long enough password'), 'P0002', NULL,
    'an unknown user is refused');
SELECT lives_ok(format('SELECT set_user_password(%s, %L, %L)', :ta, 'kanri', 'correct horse battery'), 'a password is set');
SELECT lives_ok(format('SELECT set_user_password(%s, %L, %L)', :tb, 'viewer_b', 'tenant b password'), '... for another tenant''s user too');
SELECT matches((SELECT password_hash FROM web_login WHERE tenant_id = :ta), '^\$argon2id\$v=19\$m=19456,t=2,p=1\$',
    'stored as an argon2id hash (19 MiB, 2 passes)');
SELECT is((SELECT count(*) FROM web_login WHERE password_hash LIKE '%correct horse%'), 0::bigint, 'never in clear');
SELECT ok(has_function_privilege('status_checker_admin', 'set_user_password(bigint,text,text)', 'EXECUTE')
          AND NOT has_function_privilege('status_checker_manager', 'set_user_password(bigint,text,text)', 'EXECUTE'),
    'admins set passwords; managers may not');
SELECT ok(NOT has_table_privilege('status_checker_viewer', 'web_login', 'SELECT')
          AND NOT has_table_privilege('status_checker_admin', 'web_session', 'SELECT'),
    'no tenant role reads password hashes or sessions');

-- ---- signing in
SELECT is((SELECT (ok, reason) FROM web_login(:ta, 'kanri', 'wrong password')), (false, 'wrong'::text),
    'a wrong password: not ok, "wrong"');
SELECT is((SELECT (ok, reason) FROM web_login(:ta, 'nobody', 'wrong password')), (false, 'wrong'::text),
    'an unknown login says the same');
SELECT is((SELECT (ok, reason) FROM web_login(:tb, 'kanri', 'correct horse battery')), (false, 'wrong'::text),
    'the right password in the wrong tenant says the same');
SELECT is((SELECT failures FROM web_login WHERE tenant_id = :ta), 1, 'the failure is counted (no exception rolls it back)');
SELECT is((SELECT detail -> 'changed' FROM audit_log WHERE tenant_id = :ta AND object = 'web_login' AND action = 'update'
           ORDER BY audit_id DESC LIMIT 1), '["failures"]'::jsonb, '... and audited');
SELECT * INTO TEMP s1 FROM web_login(:ta, 'kanri', 'correct horse battery');
SELECT ok((SELECT ok AND role = 'manager' AND length(session_token) = 43 AND length(csrf_token) = 32 FROM s1),
    'the right password: a session (256-bit token), a CSRF token and the role');
SELECT is((SELECT failures FROM web_login WHERE tenant_id = :ta), 0, 'a success resets the failures');
SELECT is((SELECT count(*) FROM web_session WHERE session_hash = convert_to((SELECT session_token FROM s1), 'UTF8')), 0::bigint,
    'the session token is stored only as a hash');
SELECT is((SELECT (tenant_id, login, role) FROM web_session_user((SELECT session_token FROM s1))),
          (:ta::bigint, 'kanri'::text, 'manager'::text), 'web_session_user: the session''s user');
SELECT is((SELECT csrf_token FROM web_session_user((SELECT session_token FROM s1))), (SELECT csrf_token FROM s1),
    '... and its CSRF token');
SELECT throws_ok($$SELECT web_session_user('not a session')$$, '28000', NULL, 'an unknown session: 28000');
SELECT throws_ok($$SELECT web_session_user(NULL)$$, '28000', NULL, 'no session: 28000');

-- five failures slow the sign-ins of browsers that never signed in (0.10.1: never a lock)
SELECT count(*) AS tried FROM (SELECT web_login(:ta, 'kanri', 'wrong password ' || i) FROM generate_series(1, 5) i) x \gset
SELECT is((SELECT (ok, reason) FROM web_login(:ta, 'kanri', 'correct horse battery')), (false, 'wrong'::text),
    'after five failures a new browser''s sign-in waits, even with the right password, and says only "wrong"');
SELECT ok((SELECT throttled_until BETWEEN now() + interval '14 seconds' AND now() + interval '16 seconds' FROM web_login WHERE tenant_id = :ta),
    '... for 15 seconds');
SELECT is((SELECT ok FROM web_login(:ta, 'kanri', 'correct horse battery', (SELECT device_token FROM s1))), true,
    'the browser that signed in before is not kept waiting');
SELECT lives_ok(format('SELECT set_user_password(%s, %L, %L)', :ta, 'kanri', 'a brand new password'), 'an admin sets a new password');
SELECT is((SELECT ok FROM web_login(:ta, 'kanri', 'a brand new password')), true, '... which ends the waiting');
SELECT throws_ok(format('SELECT web_session_user(%L)', (SELECT session_token FROM s1)), '28000', NULL,
    '... and ended the sessions made with the old one');

-- sessions end when idle for 2 hours, and on sign-out
SELECT * INTO TEMP s2 FROM web_login(:ta, 'kanri', 'a brand new password');
UPDATE web_session SET seen_at = now() - interval '3 hours' WHERE session_hash = sha256(convert_to((SELECT session_token FROM s2), 'UTF8'));
SELECT throws_ok(format('SELECT web_session_user(%L)', (SELECT session_token FROM s2)), '28000', NULL, 'a session idle for 2 hours has ended');
SELECT * INTO TEMP s3 FROM web_login(:ta, 'kanri', 'a brand new password');
SELECT web_logout((SELECT session_token FROM s3)) AS out \gset
SELECT throws_ok(format('SELECT web_session_user(%L)', (SELECT session_token FROM s3)), '28000', NULL, 'a signed-out session has ended');

-- ---- what the dashboard reads, as the user
SELECT submit_report_for(:ra, 'A01', '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}') AS rep \gset
CREATE ROLE dash_gateway LOGIN IN ROLE status_checker_gateway;
GRANT status_checker_viewer, status_checker_manager TO dash_gateway;
SET SESSION AUTHORIZATION dash_gateway;
SELECT set_app_user(:ta, 'kanri') AS grp \gset
SET LOCAL ROLE :grp;
SELECT request_dashboard(:ra) AS doc \gset
SELECT is((:'doc'::jsonb) #>> '{request,responded}', '1', 'request_dashboard: the counts, as request_summary has them');
SELECT is(jsonb_array_length((:'doc'::jsonb) -> 'sites'), 3, '... every site of the request');
SELECT is((:'doc'::jsonb) #>> '{sites,0,code}', 'A02', '... unanswered sites first (then the worst, the most shaken)');
SELECT is(jsonb_array_length((:'doc'::jsonb) -> 'levels'), 3, '... the form''s levels with their colours');
SELECT matches(status_matrix_csv(:ra), '^\uFEFFsite_code,site_name,group,level,label_ja,.*\r\n"A01","A輪島","北陸/能登","2",',
    'status_matrix_csv: a BOM, a header, one quoted line per site');
RESET ROLE;
SELECT reset_app_user() AS r1 \gset
SELECT set_app_user(:tb, 'viewer_b') AS grp \gset
SET LOCAL ROLE :grp;
SELECT throws_ok(format('SELECT request_dashboard(%s)', :ra), '23503', NULL,
    'another tenant''s request does not exist for the dashboard');
RESET ROLE;
SELECT reset_app_user() AS r2 \gset
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
