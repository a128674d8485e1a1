-- Every error path: the SQLSTATE and message, and that a failed call leaves
-- no row behind.
BEGIN;
\ir fixtures.psql
SELECT plan(85);

CREATE TEMP TABLE before AS SELECT pg_temp.row_counts() AS counts;

SELECT issue_token(:ra, 'A01') AS tok_a01 \gset
SELECT issue_token(:ra, 'A02') AS tok_a02_old \gset
SELECT issue_token(:ra, 'A02') AS tok_a02 \gset
CREATE TEMP TABLE before_reports AS SELECT pg_temp.row_counts() AS counts;

-- shindo
SELECT throws_ok($$SELECT '8'::status_checker.shindo$$, '22P02', 'invalid input syntax for type shindo: "8"', 'shindo 8 is invalid');
SELECT throws_ok($$SELECT '5'::status_checker.shindo$$, '22P02', 'invalid input syntax for type shindo: "5"', 'shindo 5 is ambiguous');
SELECT throws_ok($$SELECT 'abc'::status_checker.shindo$$, '22P02', 'invalid input syntax for type shindo: "abc"', 'shindo abc is invalid');
SELECT throws_ok($$SELECT ''::status_checker.shindo$$, '22P02', 'invalid input syntax for type shindo: ""', 'empty shindo is invalid');
SELECT throws_ok($$SELECT status_checker.shindo_from_p2pquake(35)$$, '22023', 'invalid P2PQuake scale: 35', 'unknown P2PQuake scale');
SELECT throws_ok($$SELECT status_checker.shindo_from_instrumental(8.5)$$, '22003', NULL, 'instrumental intensity out of range');
SELECT throws_ok($$SELECT status_checker.shindo_label('5-', 'fr')$$, '22023', 'unsupported label language: "fr"', 'unknown label language');

-- municipality codes and the JMA table
SELECT throws_ok($$SELECT status_checker.normalize_municipality_code('131017')$$, '22023', 'invalid municipality code "131017"', 'wrong JIS check digit');
SELECT throws_ok($$SELECT status_checker.load_jma_area_codes('1,2,3')$$, '22P02', 'load_jma_area_codes: 1 problem(s); nothing was loaded', 'malformed area code table');

-- tenants and users
SELECT throws_ok($$SELECT status_checker.create_tenant(' ', 'a', 'a@example.com')$$, '22023', $m$invalid tenant name ' '$m$, 'blank tenant name');
SELECT throws_ok(format($$SELECT status_checker.add_user(%s, 'x', 'x@a.example', 'owner')$$, :ta), '22023', $m$unknown role 'owner'$m$, 'unknown role');
SELECT throws_ok(format($$SELECT status_checker.add_user(%s, 'a b', 'x@a.example', 'viewer')$$, :ta), '22023', $m$invalid login 'a b'$m$, 'bad login');
SELECT throws_ok(format($$SELECT status_checker.add_user(%s, 'x', 'x.example', 'viewer')$$, :ta), '22023', $m$invalid email address 'x.example'$m$, 'bad email');
SELECT throws_ok(format($$SELECT status_checker.add_user(%s, 'admin_a', 'x@a.example', 'viewer')$$, :ta), '23505', format($m$login 'admin_a' already exists in tenant %s$m$, :ta), 'duplicate login');
SELECT throws_ok($$SELECT status_checker.add_user(-1, 'x', 'x@a.example', 'viewer')$$, '23503', 'tenant -1 does not exist', 'unknown tenant');

-- groups and sites
SELECT throws_ok(format($$SELECT status_checker.create_site_group(%s, 'a/b')$$, :ta), '22023', $m$invalid group name 'a/b'$m$, 'group name with a slash');
SELECT throws_ok(format($$SELECT status_checker.create_site_group(%s, 'x', -5)$$, :ta), '23503', format('site group -5 does not exist in tenant %s', :ta), 'unknown parent group');
SELECT throws_ok(format($$SELECT status_checker.create_site_group(%s, '北陸')$$, :ta), '23505', $m$group '北陸' already exists$m$, 'duplicate group');
SELECT throws_ok(format($$SELECT status_checker.upsert_site(%s, 'X', 'x', '12345', 35, 139)$$, :ta), '22023', NULL, 'malformed municipality code');
SELECT throws_ok(format($$SELECT status_checker.upsert_site(%s, 'X', 'x', '0110100', 35, 139)$$, :ta), '22023',
                 $m$invalid site 'X': municipality code '0110100' is unknown to JMA's table$m$, 'unknown municipality code');
SELECT throws_ok(format($$SELECT status_checker.upsert_site(%s, 'X', 'x', '1310100', -91, 139)$$, :ta), '22023',
                 $m$invalid site 'X': latitude -91 is outside [-90, 90]$m$, 'bad latitude');
SELECT throws_ok(format($$SELECT status_checker.upsert_site(%s, 'X', 'x', '1310100', 35, 139, -1)$$, :ta), '23503', NULL, 'unknown group');
SELECT throws_ok(format($$SELECT status_checker.upsert_site(%s, 'X', 'x', '1310100', 35, 139, NULL, NULL, '"a"')$$, :ta), '22023', NULL, 'attributes not an object');
SELECT throws_ok(format($$SELECT status_checker.add_site_contact(%s, 'A01', 'sms', '090')$$, :ta), '22023', $m$unknown channel 'sms' (use email or webhook)$m$, 'unknown channel');
SELECT throws_ok(format($$SELECT status_checker.add_site_contact(%s, 'B01', 'email', 'b@b.example')$$, :ta), '23503', format($m$site 'B01' does not exist in tenant %s$m$, :ta), 'other tenant''s site code');

-- import_sites
SELECT throws_ok(format($$SELECT status_checker.import_sites(%s, E'code,name,municipality_code,lat,lon\nZ1,z,1310100,99,139\nZ1,z,1310100,35,139\n')$$, :ta),
                 '22P02', 'import_sites: 2 bad line(s); nothing was imported', 'bad lines');
SELECT throws_ok(format($$SELECT status_checker.import_sites(%s, E'code,name\nZ1,z\n')$$, :ta),
                 '22P02', 'import_sites: the header lacks column(s) municipality_code, lat, lon', 'missing columns');
SELECT throws_ok(format($$SELECT status_checker.import_sites(%s, '')$$, :ta), '22P02', 'import_sites: no header row', 'empty import');
SELECT throws_ok(format($$SELECT status_checker.import_sites(%s, '\x636f64650a8e'::bytea)$$, :ta), '22P02', NULL, 'bad UTF-8');
SET LOCAL status_checker.max_import_bytes = 1024;
SELECT throws_ok(format($$SELECT status_checker.import_sites(%s, repeat('x', 2000))$$, :ta),
                 '54000', 'CSV input of 2000 bytes exceeds the limit of 1024 bytes', 'oversize import');
RESET status_checker.max_import_bytes;
SELECT throws_ok($$SELECT status_checker.import_sites(-1, 'code')$$, '23503', 'tenant -1 does not exist', 'import for unknown tenant');

-- forms
SELECT throws_ok($$SELECT status_checker.validate_form_definition('{}')$$, '22023', 'invalid form definition at $.levels: "levels" is required', 'form without levels');
SELECT throws_ok($$SELECT status_checker.validate_form_definition(jsonb_set(status_checker.default_form_definition(), '{questions,0,type}', '"radio"'))$$,
                 '22023', 'invalid form definition at $.questions[0].type: unknown question type "radio" (use single, multi, number, boolean, text, location or photo)', 'unknown question type');
SELECT throws_ok($$SELECT status_checker.default_form_definition('fr')$$, '22023', $m$unsupported form language 'fr'$m$, 'unknown form language');
SELECT throws_ok($$SELECT status_checker.create_form(-1, 'x', status_checker.default_form_definition())$$, '23503', NULL, 'form for unknown tenant');
SELECT throws_ok(format($$UPDATE status_checker.form SET definition = '{}' WHERE form_id = %s$$, :fa), '55000', 'form versions are immutable', 'forms are immutable');

-- requests
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, 'x', now() - interval '1 second')$$, :ta, :fa), '22023', NULL, 'deadline in the past');
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, 'x', now() + interval '1 hour')$$, :ta, :fb), '23503',
                 format('form %s does not exist in tenant %s', :fb, :ta), 'other tenant''s form');
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, ' ', now() + interval '1 hour')$$, :ta, :fa), '22023', NULL, 'blank title');
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, 'x', now() + interval '1 hour', '{"sites": ["A01", "B01"]}')$$, :ta, :fa), '23503',
                 format('unknown site code(s) B01 in tenant %s', :ta), 'target names another tenant''s site');
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, 'x', now() + interval '1 hour', '{"region": "kanto"}')$$, :ta, :fa), '22023', NULL, 'unknown target kind');
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, 'x', now() + interval '1 hour', '{"areas": ["100"]}')$$, :ta, :fa), '22023',
                 'the target {"areas": ["100"]} selects no sites', 'target selects nothing');
SELECT throws_ok(format($$SELECT status_checker.issue_token(%s, 'B01')$$, :ra), '23503', NULL, 'token for another tenant''s site');
SELECT throws_ok($$SELECT status_checker.issue_token(-1, 'A01')$$, '23503', 'request -1 does not exist', 'token for unknown request');
SELECT throws_ok($$SELECT status_checker.cancel_request(-1, 'x')$$, '23503', 'request -1 does not exist', 'cancel unknown request');
SELECT throws_ok(format($$SELECT status_checker.cancel_request(%s, '')$$, :ra), '22023', NULL, 'cancel without a reason');
SELECT throws_ok($$SELECT status_checker.request_geojson(-1)$$, '23503', 'request -1 does not exist', 'GeoJSON of unknown request');

-- a NULL argument is an error naming it, never a silent NULL result
SELECT throws_ok($$SELECT status_checker.create_tenant(NULL, 'a', 'a@example.com')$$, '22004', 'create_tenant: name must not be NULL', 'create_tenant with a NULL name');
SELECT throws_ok(format($$SELECT status_checker.add_user(%s, NULL, 'x@a.example', 'viewer')$$, :ta), '22004', 'add_user: login must not be NULL', 'add_user with a NULL login');
SELECT throws_ok(format($$SELECT status_checker.create_form(%s, 'x', NULL)$$, :ta), '22004', 'create_form: definition must not be NULL', 'create_form with a NULL definition');
SELECT throws_ok(format($$SELECT status_checker.import_sites(%s, NULL::text)$$, :ta), '22004', 'import_sites: csv must not be NULL', 'import_sites with NULL CSV');
SELECT throws_ok($$SELECT status_checker.load_jma_area_codes(NULL)$$, '22004', 'load_jma_area_codes: csv must not be NULL', 'load_jma_area_codes with NULL');
SELECT throws_ok(format($$SELECT status_checker.issue_token(%s, NULL)$$, :ra), '22004', 'issue_token: site_code must not be NULL', 'issue_token with a NULL site code');
SELECT throws_ok($$SELECT * FROM status_checker.issue_tokens(NULL)$$, '22004', 'issue_tokens: request_id must not be NULL', 'issue_tokens with a NULL request');
SELECT throws_ok($$SELECT status_checker.close_request(NULL)$$, '22004', 'close_request: request_id must not be NULL', 'close_request with a NULL request');

SELECT is((SELECT counts FROM before_reports), pg_temp.row_counts(), 'the failed calls above left no row behind');

-- reports
SELECT throws_ok($$SELECT status_checker.submit_report('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '{}')$$, '28000', 'unknown report token', 'unknown token');
SELECT throws_ok($$SELECT status_checker.submit_report('', '{}')$$, '28000', 'unknown report token', 'empty token');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, %L)$$, :'tok_a02_old', :'ok_answers'), '28000',
                 'this report link has been replaced by a newer one', 'revoked token');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, '{"building": "none"}')$$, :'tok_a01'), '22023',
                 'invalid answer at $.injured: question "injured" is required', 'missing required answer');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, '{"building": "gone", "injured": 0, "operation": "normal"}')$$, :'tok_a01'), '22023',
                 'invalid answer at $.building: "gone" is not one of the choices', 'unknown choice');
-- the kind of answer problem, in fields (COLUMN: the question; CONSTRAINT: answer_required or answer_check)
CREATE FUNCTION pg_temp.fields_of(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE c text; col text;
BEGIN
    EXECUTE stmt;
    RETURN '<no error>';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME, col = COLUMN_NAME;
    RETURN SQLSTATE || ' ' || c || ' ' || col;
END $f$;
SELECT is(pg_temp.fields_of(format($$SELECT status_checker.submit_report(%L, '{"building": "none"}')$$, :'tok_a01')),
          '22023 answer_required injured', 'a missing required answer: CONSTRAINT answer_required, COLUMN its question');
SELECT is(pg_temp.fields_of(format($$SELECT status_checker.submit_report(%L, '{"building": "gone", "injured": 0, "operation": "normal"}')$$, :'tok_a01')),
          '22023 answer_check building', 'another answer problem: CONSTRAINT answer_check');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, '{"building": "none", "injured": 0, "operation": "normal", "x": 1}')$$, :'tok_a01'), '22023',
                 'invalid answer at $.x: the form has no question "x"', 'unknown answer key');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, '{"building": "none", "detail": "x", "injured": 0, "operation": "normal"}')$$, :'tok_a01'), '22023',
                 'invalid answer at $.detail: question "detail" does not apply (its condition on "building" is not met) and must be left out', 'answer to a question that does not apply');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, '{"building": "none", "injured": -3, "operation": "normal"}')$$, :'tok_a01'), '22023',
                 'invalid answer at $.injured: -3 is below the minimum 0', 'number below minimum');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, NULL)$$, :'tok_a01'), '22004', 'answers must not be NULL', 'NULL answers');
SET LOCAL status_checker.max_answers_bytes = 512;
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, jsonb_build_object('comment', repeat('x', 600)))$$, :'tok_a01'),
                 '54000', NULL, 'oversize answers');
RESET status_checker.max_answers_bytes;
SELECT throws_ok(format($$SELECT status_checker.submit_report_for(%s, 'B01', %L)$$, :ra, :'ok_answers'), '23503',
                 format($m$site 'B01' does not exist in tenant %s$m$, :ta), 'report for another tenant''s site');
SELECT throws_ok(format($$SELECT status_checker.check_answers(-1, '{}')$$), '23503', 'form -1 does not exist', 'dry run on unknown form');

SELECT is((SELECT counts FROM before_reports), pg_temp.row_counts(), 'the failed reports left no row behind');

-- a report is refused once the request is closed or cancelled
SELECT lives_ok(format($$SELECT status_checker.submit_report(%L, %L)$$, :'tok_a01', :'ok_answers'), 'a good report is stored');
SELECT lives_ok(format($$SELECT status_checker.close_request(%s)$$, :ra), 'close the request');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, %L)$$, :'tok_a01', :'ok_answers'), '55000', format('request %s is closed', :ra), 'closed request refuses reports');
SELECT throws_ok(format($$SELECT status_checker.issue_token(%s, 'A01')$$, :ra), '55000', format('request %s is closed', :ra), 'closed request issues no tokens');
SELECT throws_ok(format($$SELECT * FROM status_checker.issue_tokens(%s)$$, :ra), '55000', format('request %s is closed', :ra), 'closed request issues no tokens in bulk either');
SELECT lives_ok(format($$SELECT status_checker.cancel_request(%s, 'test')$$, :ra), 'cancel the closed request');
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, %L)$$, :'tok_a01', :'ok_answers'), '55000', format('request %s was cancelled', :ra), 'cancelled request refuses reports');
SELECT throws_ok(format($$SELECT status_checker.close_request(%s)$$, :ra), '55000', NULL, 'a cancelled request cannot be closed');
SELECT is((SELECT count(*)::int FROM status_checker.report WHERE request_id = :ra), 1, 'only the good report was stored');

-- tokens never appear in errors
SELECT throws_ok(format($$SELECT status_checker.submit_report(%L, '{}')$$, :'tok_a01' || 'x'), '28000', 'unknown report token', 'a near-miss token is not echoed');
SELECT is((SELECT count(*)::int FROM status_checker.request_target
           WHERE encode(token_hash, 'escape') LIKE '%' || :'tok_a01' || '%'), 0, 'no token is stored in plain text');

-- the very same calls succeed with good input (the tests above are not vacuous)
SELECT lives_ok(format($$SELECT status_checker.upsert_site(%s, 'X', 'x', '1310100', 35, 139)$$, :ta), 'a good site is accepted');
SELECT lives_ok(format($$SELECT status_checker.add_user(%s, 'newuser', 'n@a.example', 'viewer')$$, :ta), 'a good user is accepted');
SELECT isnt((SELECT counts FROM before), pg_temp.row_counts(), 'good calls do change rows');

SELECT * FROM finish();
ROLLBACK;
