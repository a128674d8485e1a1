-- Feeds and trigger rules: the SQLSTATE of every bad input, that a failed
-- call stores nothing, and the behaviour users rely on: one request per rule
-- and event, tenants kept apart, cancellation, drills.
-- The recorded documents are read from ../shared/fixtures/feeds
-- (SC_FIXTURES, set by test/run-all.sh).
BEGIN;
\ir fixtures.psql
\getenv fixtures SC_FIXTURES
SELECT plan(49);
SELECT set_config('sc.fixtures', :'fixtures', true) IS NOT NULL AS fixtures_set \gset
CREATE FUNCTION pg_temp.doc(path text) RETURNS bytea
    LANGUAGE sql AS $$ SELECT pg_read_binary_file(current_setting('sc.fixtures') || '/' || path) $$;
-- JMA's full table, so that every code of the telegrams is known
SELECT load_jma_area_codes(convert_from(pg_temp.doc('codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'), 'UTF8')) AS n \gset
CREATE TEMP TABLE before AS SELECT pg_temp.row_counts() AS counts;

-- ------------------------------------------------------------ bad documents
SELECT throws_ok($$SELECT ingest_feed_document('jma', substring(pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml') FOR 2000))$$,
    '22P02', NULL, 'truncated XML: 22P02');
SELECT throws_ok($$SELECT ingest_feed_document('jma', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Report xmlns="http://xml.kishou.go.jp/jmaxml1/">&x;</Report>')$$,
    '42501', NULL, 'external entity: refused (42501)');
SELECT throws_ok($$SELECT ingest_feed_document('jma', '<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><r>&b;</r>')$$,
    '42501', NULL, 'entity expansion: refused (42501)');
SELECT throws_ok($$SELECT ingest_feed_document('jma', convert_to(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), 'SJIS'))$$,
    '22021', NULL, 'Shift_JIS bytes: 22021');
SELECT throws_ok($$SELECT ingest_feed_document('jma', '<?xml version="1.0" encoding="EUC-JP"?><Report xmlns="http://xml.kishou.go.jp/jmaxml1/"/>')$$,
    '22021', NULL, 'declared non-UTF-8 encoding: 22021');
SELECT throws_ok($$SELECT ingest_feed_document('jma', convert_to(repeat('x', 50 * 1024 * 1024), 'UTF8'))$$,
    '54000', NULL, '50 MB document: 54000 (status_checker.max_feed_bytes)');
SELECT throws_ok($$SELECT ingest_feed_document('jma', replace(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), '震源に関する情報</Title>', '火山の状況に関する解説情報</Title>'))$$,
    '0A000', NULL, 'a product we do not parse: 0A000');
SELECT throws_ok($$SELECT ingest_feed_document('jma', replace(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), '<Status>通常</Status>', '<Status>本番</Status>'))$$,
    '22023', 'invalid jma document: Control/Status "本番" is not 通常, 訓練 or 試験', 'an unknown Control/Status: 22023 naming it');
SELECT throws_ok($$SELECT ingest_feed_document('p2pquake', '{"code": 551, "issue": {"type": 5}}')$$,
    '22023', NULL, 'P2PQuake with a wrong type: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('p2pquake', '[{"code": 556, "issue": {"eventId": "123", "serial": "1"}}]')$$,
    '22023', NULL, 'P2PQuake 556 with a bad event id: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('usgs', '{"type": "Feature", "id": "x", "properties": {"updated": "yesterday"}}')$$,
    '22023', NULL, 'USGS with a wrong type: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('usgs', '{"type": "Feature", ')$$,
    '22P02', NULL, 'truncated JSON: 22P02');
SELECT throws_ok($$SELECT ingest_feed_document('rss', 'x')$$, '22023', NULL, 'unknown source: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('jma', NULL::text)$$, '22004', NULL, 'NULL body: 22004');
SELECT throws_ok($$SELECT ingest_feed_document('jma_atom', pg_temp.doc('jma/atom_eqvol_20211112T1049_capture.xml'))$$,
    '22023', NULL, 'an Atom feed given to ingest: 22023 with a hint');
SELECT is((SELECT counts FROM before), pg_temp.row_counts(), 'no bad document changed any table');

-- ------------------------------------------------------------ feeds
SELECT throws_ok($$SELECT add_feed('rss', 'https://example.org/')$$, '22023', NULL, 'add_feed: unknown kind');
SELECT throws_ok($$SELECT add_feed('jma_atom', 'ftp://example.org/')$$, '22023', NULL, 'add_feed: not http(s)');
SELECT throws_ok($$SELECT add_feed('jma_atom', 'https://example.org/eqvol.xml', '0.5 seconds')$$, '22023', NULL, 'add_feed: interval below one second');
SELECT lives_ok($$SELECT add_feed('jma_atom', 'https://example.org/eqvol.xml')$$, 'add_feed');
SELECT throws_ok($$SELECT add_feed('jma_atom', 'https://example.org/eqvol.xml')$$, '23505', NULL, 'add_feed: the same URL twice');
SELECT throws_ok($$SELECT remove_feed(999999)$$, '23503', NULL, 'remove_feed: unknown feed');
SELECT throws_ok($$SELECT add_feed('jma_atom', NULL)$$, '22004', 'add_feed: url must not be NULL', 'add_feed: NULL url (22004, named)');
SELECT throws_ok($$SELECT remove_feed(NULL)$$, '22004', NULL, 'remove_feed: NULL');
SELECT is((SELECT health FROM feed_health WHERE url = 'https://example.org/eqvol.xml'),
          CASE WHEN EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher' AND datname = current_database())
               THEN 'starting' ELSE 'no watcher' END, 'feed_health says whether a watcher polls the feed');

-- ------------------------------------------------------------ trigger rules
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, %L)', :ta, 'x', :fb, '5-'), '23503', NULL,
    'a rule cannot use another tenant''s form');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, NULL)', :ta, 'x', :fa), '22004', NULL, 'an earthquake rule needs min_shindo');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, %L, hazard => %L)', :ta, 'x', :fa, '5-', 'volcano'), '22023', NULL, 'unknown hazard');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, %L, target => %L)', :ta, 'x', :fa, '5-', '{"sites": ["B01"]}'), '23503', NULL,
    'a rule cannot target another tenant''s site');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, %L, repeat_within => %L)', :ta, 'x', :fa, '5-', '0 seconds'), '22023', NULL, 'repeat_within must be positive');
SELECT throws_ok($$SELECT backtest_rule(999999, 1)$$, '23503', NULL, 'backtest: unknown rule');
SELECT throws_ok($$SELECT backtest_rule(NULL, 1)$$, '22004', 'backtest_rule: rule_id must not be NULL', 'backtest: NULL rule (22004, named)');
SELECT throws_ok($$SELECT set_trigger_rule_enabled(1, NULL)$$, '22004', NULL, 'set_trigger_rule_enabled: NULL');

SELECT create_trigger_rule(:ta, 'A 5弱', :fa, '5-') AS rule_a \gset
SELECT create_trigger_rule(:tb, 'B 6強', :fb, '6+') AS rule_b \gset
SELECT create_trigger_rule(:tb, 'B drill', :fb, '1', drill => true) AS rule_b_drill \gset
SELECT is(ingest_feed_document('jma', pg_temp.doc('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')), 1, 'the Noto 震度速報 is one event');
SELECT is(ingest_feed_document('jma', pg_temp.doc('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')), 0, 'the same telegram again changes nothing');
SELECT results_eq(format($$SELECT s.code FROM request q JOIN request_target t USING (tenant_id, request_id)
                           JOIN site s USING (tenant_id, site_id) WHERE q.rule_id = %s ORDER BY 1$$, :rule_a),
    $$VALUES ('A01'), ('A02')$$, 'tenant A: its 輪島 (6強) and 金沢 (5強) sites, not 東京 (3)');
SELECT results_eq(format($$SELECT s.code FROM request q JOIN request_target t USING (tenant_id, request_id)
                           JOIN site s USING (tenant_id, site_id) WHERE q.rule_id = %s ORDER BY 1$$, :rule_b),
    $$VALUES ('B01')$$, 'tenant B: only its 輪島 site reaches its 6強 threshold');
SELECT is_empty(format($$SELECT 1 FROM request q JOIN request_target t USING (tenant_id, request_id)
                        WHERE q.rule_id IN (%s, %s) AND t.tenant_id <> q.tenant_id$$, :rule_a, :rule_b),
    'no request of a rule targets another tenant''s site');
SELECT is((SELECT count(*)::int FROM request WHERE rule_id = :rule_b_drill), 0, 'a drill rule does not fire on a real telegram');
SELECT is((SELECT count(*)::int FROM backtest_rule(:rule_a, (SELECT event_id FROM event WHERE source_event_id = '20240101161010' AND kind = 'earthquake'))
           WHERE decision = 'asked'), 2, 'backtest shows the asked sites as asked');

-- a 取消 of the same product and EventID cancels the requests
SELECT is(ingest_feed_document('jma', replace(replace(replace(
        convert_from(pg_temp.doc('jma/official_samples/VXSE51_sample_20220509_CANCEL__32-35_10_01.xml'), 'UTF8'),
        '<EventID>20220509152315</EventID>', '<EventID>20240101161010</EventID>'),
        '<DateTime>2022-05-10T09:10:20Z</DateTime>', '<DateTime>2024-01-01T07:30:00Z</DateTime>'),
        '2022-05-10T18:10:00+09:00', '2024-01-01T16:30:00+09:00')), 1, 'a 取消 changes the event');
SELECT is((SELECT array_agg(DISTINCT state) FROM request WHERE rule_id IN (:rule_a, :rule_b)), ARRAY['cancelled'],
    'a withdrawn event cancels the requests it made');
SELECT is((SELECT status FROM disaster_event WHERE source_event_id = '20240101161010' AND kind = 'earthquake'), 'cancelled',
    'the event is cancelled');

-- a telegram on another host than its feed's, or redirected to one, is not
-- fetched by the watcher (0.10.1: test/integration/feed_watcher.sh); the
-- SQL side records it
SELECT add_feed('jma_atom', 'https://www.data.jma.go.jp/developer/xml/feed/eqvol.xml', '1 minute') AS feed \gset
INSERT INTO feed_document (url, feed_id, product) VALUES
    ('https://elsewhere.example/x.xml', :feed, 'VXSE53'), ('https://www.data.jma.go.jp/developer/xml/data/y.xml', :feed, 'VXSE53');
SELECT _feed_document_refused('https://elsewhere.example/x.xml', 'not fetched: not on the feed''s host (https://www.data.jma.go.jp:443)', false);
SELECT _feed_document_refused('https://www.data.jma.go.jp/developer/xml/data/y.xml',
                              'not fetched: redirected to another host (http://elsewhere.example:80)', true);
SELECT is((SELECT array_agg(state || '/' || attempts || '/' || (fetched_at IS NOT NULL) ORDER BY url) FROM feed_document WHERE feed_id = :feed),
    '{failed/0/false,failed/1/true}', 'a telegram not fetched fails at once, with no attempt; one redirected elsewhere counts its one fetch');
SELECT is((SELECT bad_documents || '/' || consecutive_errors || ' ' || last_error FROM feed WHERE feed_id = :feed),
    '2/0 https://www.data.jma.go.jp/developer/xml/data/y.xml: not fetched: redirected to another host (http://elsewhere.example:80)',
    'each is a bad document of its feed, whose last_error says why; the feed is not failing');
SELECT _feed_document_refused('https://elsewhere.example/x.xml', 'again', false);
SELECT is((SELECT bad_documents FROM feed WHERE feed_id = :feed), 2::bigint, 'a telegram already settled is not counted again');

-- request_target has no foreign key to site: a trigger guards deletions
SELECT throws_ok(format($$DELETE FROM site WHERE tenant_id = %s AND code = 'A01'$$, :ta), '23503',
    NULL, 'a site that a request asked cannot be deleted (23503)');
SELECT upsert_site(:ta, 'A99', '新設', '1310100', 35.6, 139.7) AS a99 \gset
SELECT lives_ok(format($$DELETE FROM site WHERE tenant_id = %s AND code = 'A99'$$, :ta), 'a site never asked can be deleted');
SELECT is((SELECT count(*)::int FROM site WHERE tenant_id = :ta AND code IN ('A01', 'A99')), 1, 'only the unasked site is gone');

SELECT * FROM finish();
ROLLBACK;
