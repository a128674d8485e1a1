-- Tenant isolation smoke test: two tenants' requests and reports never mix
-- in any view or in the GeoJSON.  (Row-level security and roles come with
-- the security domain; this proves the data model and views keep tenants apart.)
BEGIN;
\ir fixtures.psql
SELECT plan(16);

-- both tenants report, with clashing site names and the same form name
SELECT submit_report_for(:ra, 'A01', '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}') AS r \gset
SELECT submit_report_for(:ra, 'A03', :'ok_answers') AS r \gset
SELECT submit_report_for(:rb, 'B01', '{"building": "partial", "detail": "ひび", "injured": 0, "operation": "limited"}') AS r \gset

SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM status_checker.site_status WHERE request_id = :ra), ARRAY[:ta]::bigint[],
          'site_status of A''s request holds only tenant A');
SELECT set_eq(format('SELECT site_code FROM status_checker.site_status WHERE request_id = %s', :ra), ARRAY['A01', 'A02', 'A03'],
              'site_status of A''s request lists exactly A''s sites');
SELECT set_eq(format('SELECT site_code FROM status_checker.site_status WHERE request_id = %s', :rb), ARRAY['B01', 'B02'],
              'site_status of B''s request lists exactly B''s sites');
SELECT is((SELECT level_counts FROM status_checker.request_summary WHERE request_id = :ra),
          '{"0": 1, "1": 0, "2": 1, "none": 1}'::jsonb, 'A''s summary counts only A''s reports');
SELECT is((SELECT level_counts FROM status_checker.request_summary WHERE request_id = :rb),
          '{"0": 0, "1": 1, "2": 0, "none": 1}'::jsonb, 'B''s summary counts only B''s reports');
SELECT is((SELECT count(*)::int FROM status_checker.request_summary WHERE tenant_id = :ta), 1, 'A sees one request in its summary rows');
SELECT set_eq(format('SELECT group_path FROM status_checker.group_rollup WHERE request_id = %s', :ra), ARRAY['北陸', '北陸/能登', '北陸/加賀', '関東'],
              'A''s roll-up uses only A''s groups');
SELECT is_empty(format('SELECT 1 FROM status_checker.group_rollup g JOIN status_checker.site_group s USING (group_id) WHERE g.request_id = %s AND s.tenant_id <> %s', :rb, :tb),
                'B''s roll-up has no group of another tenant');
SELECT is((SELECT sum(count)::int FROM status_checker.answer_counts WHERE request_id = :rb AND question_key = 'building'), 1,
          'B''s answer counts hold B''s one report');
SELECT is((SELECT max(responded) FROM status_checker.response_timeline WHERE request_id = :ra), 2, 'A''s timeline counts A''s two sites');
SELECT set_eq(format($$SELECT f ->> 'id' FROM jsonb_array_elements(status_checker.request_geojson(%s) -> 'features') f$$, :rb),
              ARRAY['B01', 'B02'], 'B''s GeoJSON draws only B''s sites');
SELECT is_empty(format('SELECT 1 FROM status_checker.report_history WHERE request_id = %s AND tenant_id <> %s', :ra, :ta),
                'A''s report history holds no other tenant''s report');

-- cross-tenant calls are refused
SELECT throws_ok(format($$SELECT status_checker.submit_report_for(%s, 'B01', %L)$$, :ra, :'ok_answers'), '23503', NULL,
                 'a report for B''s site cannot be filed under A''s request');
SELECT throws_ok(format($$SELECT status_checker.create_request(%s, %s, 'x', now() + interval '1 hour', '{"groups": [%s]}')$$, :ta, :fa,
                        (SELECT min(group_id) FROM status_checker.site_group WHERE tenant_id = :tb)), '23503', NULL,
                 'A cannot target B''s group');
SELECT issue_token(:rb, 'B02') AS tok_b02 \gset
SELECT lives_ok(format($$SELECT status_checker.submit_report(%L, %L)$$, :'tok_b02', :'ok_answers'), 'B''s token files a report');
SELECT is((SELECT responded FROM status_checker.request_summary WHERE request_id = :ra), 2, 'and A''s counts did not move');

SELECT * FROM finish();
ROLLBACK;
