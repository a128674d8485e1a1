-- What a reporter page needs from the SQL API (0.6.0): report_form(token)
-- shows a link's request, site, form and latest report without changing
-- anything; submit_report(token, answers, idempotency_key) stores a
-- replayed submission once; answer errors name their question in the
-- error's column_name field.  The HTTP worker on top of these is tested in
-- test/integration/web.sh.
BEGIN;
\ir fixtures.psql
SELECT plan(35);

SELECT issue_token(:ra, 'A01') AS tok \gset
SELECT issue_token(:rb, 'B01') AS tok_b \gset
CREATE TEMP TABLE before AS SELECT pg_temp.row_counts() AS c;
CREATE TEMP TABLE targets_before AS SELECT * FROM request_target;

-- ---- report_form
SELECT report_form(:'tok') AS doc \gset
SELECT is((:'doc'::jsonb) #>> '{request,title}', 'A request', 'report_form: the request''s title');
SELECT is((:'doc'::jsonb) #>> '{request,state}', 'open', '... its state');
SELECT is(((:'doc'::jsonb) #>> '{request,id}')::bigint, :ra::bigint, '... its id');
SELECT ok((:'doc'::jsonb) #> '{request,deadline}' IS NOT NULL, '... its deadline');
SELECT is((:'doc'::jsonb) ->> 'tenant', 'テナントA', '... the tenant''s name');
SELECT is((:'doc'::jsonb) -> 'site', '{"code": "A01", "name": "A輪島", "shindo": null, "shindo_label": null}'::jsonb,
    '... the site (no intensity: the request was made by hand)');
SELECT is((:'doc'::jsonb) -> 'form', (SELECT definition FROM form WHERE form_id = :fa),
    '... the form version of the request');
SELECT is((:'doc'::jsonb) -> 'latest', 'null'::jsonb, '... no latest report yet');
SELECT is(pg_temp.row_counts(), (SELECT c FROM before), 'report_form changed no table');
SELECT is((SELECT count(*) FROM (SELECT * FROM request_target EXCEPT SELECT * FROM targets_before) x), 0::bigint,
    '... and no target row');
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'report_form(text)'::regprocedure), 's',
    'report_form is STABLE (it can run in a read-only transaction, on a standby)');

SELECT throws_ok($$SELECT report_form('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')$$, '28000', 'unknown report token',
    'report_form: an unknown token');
SELECT throws_ok($$SELECT report_form(NULL)$$, '28000', 'unknown report token', 'report_form: NULL');
SELECT throws_ok($$SELECT report_form('not a token')$$, '28000', 'unknown report token', 'report_form: not a token at all');
SELECT issue_token(:ra, 'A02') AS old_a02 \gset
SELECT issue_token(:ra, 'A02') AS new_a02 \gset
SELECT throws_ok(format('SELECT report_form(%L)', :'old_a02'), '28000', 'this report link has been replaced by a newer one',
    'report_form: a replaced token says so');
-- which of the two 28000s it is, in a field (the reporter page answers 410 by it, not by the words)
CREATE FUNCTION pg_temp.constraint_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c text;
BEGIN
    EXECUTE stmt;
    RETURN '<no error>';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
    RETURN SQLSTATE || ' ' || coalesce(nullif(c, ''), '<none>');
END $$;
SELECT is(pg_temp.constraint_of(format('SELECT report_form(%L)', :'old_a02')), '28000 report_token_replaced',
          'report_form: a replaced token names report_token_replaced in CONSTRAINT');
SELECT is(pg_temp.constraint_of(format('SELECT submit_report(%L, %L)', :'old_a02', '{"building": "none", "injured": 0, "operation": "normal"}')),
          '28000 report_token_replaced', 'submit_report: the same');

-- ---- submit_report with an idempotency key
SELECT submit_report(:'tok', :'ok_answers', 'key-1') AS r1 \gset
SELECT is(submit_report(:'tok', :'ok_answers', 'key-1'), :r1::bigint, 'a replay with the same key returns the same report id');
SELECT is((SELECT count(*) FROM report WHERE request_id = :ra), 1::bigint, '... and stores nothing');
SELECT is((SELECT responded FROM request_summary WHERE request_id = :ra), 1, '... nor counts twice');
SELECT isnt(submit_report(:'tok', '{"building": "partial", "detail": "窓ガラス", "injured": 0, "operation": "limited"}', 'key-2'), :r1::bigint,
    'a new key stores a new report (the site updates its status)');
SELECT is((SELECT level FROM site_status WHERE request_id = :ra AND site_code = 'A01'), 1, '... which is the site''s status');
SELECT is((SELECT count(*) FROM report WHERE request_id = :ra), 2::bigint, '... two reports kept');
SELECT ok(submit_report(:'tok', :'ok_answers', NULL) > 0, 'without a key, as submit_report(token, answers)');
SELECT is((report_form(:'tok') -> 'latest' ->> 'report_count')::int, 3, 'report_form: the latest report and the count');
SELECT is(report_form(:'tok') #> '{latest,answers}', :'ok_answers'::jsonb, '... with its answers (to fill the form again)');

SELECT throws_ok(format('SELECT submit_report(%L, %L, %L)', :'tok', :'ok_answers', ''), '22023', NULL,
    'an empty idempotency key is refused');
SELECT throws_ok(format('SELECT submit_report(%L, %L, %L)', :'tok', :'ok_answers', repeat('k', 129)), '22023', NULL,
    'an idempotency key over 128 characters is refused');
SELECT throws_ok(format('SELECT submit_report(%L, %L, %L)', :'tok', :'ok_answers', 'a key'), '22023', NULL,
    'an idempotency key with a space is refused');
SELECT throws_ok(format('SELECT submit_report(%L, %L, %L)', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', :'ok_answers', 'k'),
    '28000', 'unknown report token', 'keyed submit: an unknown token');
SELECT close_request(:rb);
SELECT throws_ok(format('SELECT submit_report(%L, %L, %L)', :'tok_b', :'ok_answers', 'k'), '55000', NULL,
    'keyed submit: a closed request');
SELECT is(report_form(:'tok_b') #>> '{request,state}', 'closed', 'report_form still shows a closed request (the page says so)');

-- ---- the question an error is about
CREATE FUNCTION pg_temp.error_column(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    c text;
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS c = COLUMN_NAME;
    RETURN c;
END
$$;
SELECT is(pg_temp.error_column(format('SELECT submit_report(%L, %L, %L)', :'tok',
          '{"building": "none", "injured": -1, "operation": "normal"}', 'k9')), 'injured',
    'an answer error names its question in column_name');
SELECT is(pg_temp.error_column(format('SELECT submit_report(%L, %L, %L)', :'tok',
          '{"building": "partial", "injured": 0, "operation": "normal"}', 'k9')), 'detail',
    '... also for a missing required question (a condition met)');

-- ---- the HTTP workers' counters: NULLs unless the library is preloaded (it is not in this suite)
SELECT is((SELECT requests IS NULL AND reports IS NULL AND refused IS NULL FROM http_counters()),
          current_setting('status_checker.database', true) IS NULL,
          'http_counters: NULLs without the workers'' shared memory, figures with it');

SELECT * FROM finish();
ROLLBACK;
