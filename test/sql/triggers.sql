-- triggers: events make requests by themselves — once per rule and event,
-- growing with later telegrams, cancelled with the event; drills, tsunami,
-- aftershocks, 未入電, estimated intensity; explanations and backtests.
--
-- Recorded telegrams come from SC_FIXTURES (../shared/fixtures/feeds).  The variants a
-- scenario needs (another EventID for an aftershock, 訓練 status, an
-- issued telegram for a recorded 取消) are derived from recorded ones
-- with replace(), named for what they change.
SET search_path = status_checker, public;
SET timezone = 'Asia/Tokyo';
\set SHOW_CONTEXT never
\getenv fixtures SC_FIXTURES
\set feeds :fixtures '/'
SELECT set_config('sc.feeds', :'feeds', false) IS NOT NULL AS fixtures_dir_set;
CREATE FUNCTION pg_temp.doc(path text) RETURNS text
    LANGUAGE sql AS $$ SELECT convert_from(pg_read_binary_file(current_setting('sc.feeds') || path), 'UTF8') $$;
-- derive a telegram: replace pairs of strings in a recorded one
CREATE FUNCTION pg_temp.derive(path text, VARIADIC pairs text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    body text := pg_temp.doc(path);
BEGIN
    FOR i IN 1 .. cardinality(pairs) BY 2 LOOP
        IF strpos(body, pairs[i]) = 0 THEN
            RAISE EXCEPTION 'derive: % not found in %', pairs[i], path;
        END IF;
        body := replace(body, pairs[i], pairs[i + 1]);
    END LOOP;
    RETURN body;
END $$;
CREATE FUNCTION pg_temp.requests() RETURNS TABLE (rule text, request_id bigint, title text, drill boolean, state text, sites text)
    LANGUAGE sql AS $$
    SELECT r.name, q.request_id, q.title, q.drill, q.state,
           string_agg(s.code || ' ' || coalesce(t.asked_shindo::text, '-'), ', ' ORDER BY s.code)
    FROM request q
    JOIN trigger_rule r ON r.rule_id = q.rule_id
    JOIN request_target t ON t.tenant_id = q.tenant_id AND t.request_id = q.request_id
    JOIN site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
    WHERE q.rule_id IS NOT NULL
    GROUP BY r.name, q.request_id, q.title, q.drill, q.state ORDER BY q.request_id $$;

-- JMA's table was loaded by the feeds test; its events are forgotten so
-- that every telegram below is new
TRUNCATE event RESTART IDENTITY CASCADE;
-- a company with sites in Noto,
-- Kanazawa, Tokyo, Kyushu, Iwate and abroad
SELECT create_tenant('北陸電機', 'admin', 'admin@hokuriku.example') AS t \gset
SELECT create_site_group(:t, '九州') AS kyushu \gset
SELECT upsert_site(:t, 'NOTO1', '輪島工場', '1720400', 37.39, 136.90, attributes => '{"tsunami_area": "360"}') IS NOT NULL,
       upsert_site(:t, 'KAGA1', '金沢支店', '1720100', 36.56, 136.65) IS NOT NULL,
       upsert_site(:t, 'TKY1', '東京本社', '1310100', 35.68, 139.76) IS NOT NULL,
       upsert_site(:t, 'MYZ1', '宮崎営業所', '4520100', 31.91, 131.42, :kyushu) IS NOT NULL,
       upsert_site(:t, 'KNY1', '鹿屋工場', '4620300', 31.38, 130.85, :kyushu) IS NOT NULL,
       upsert_site(:t, 'IWT1', '二戸倉庫', '0321300', 40.27, 141.30) IS NOT NULL,
       upsert_site(:t, 'IWT2', '八幡平倉庫', '0321400', 39.93, 141.07) IS NOT NULL,
       upsert_site(:t, 'PH1', 'Baguio plant', NULL, 16.85, 121.10) IS NOT NULL,
       upsert_site(:t, 'BKK1', 'Bangkok office', NULL, 13.75, 100.50) IS NOT NULL;
SELECT create_form(:t, '安否・被害報告', default_form_definition('ja')) AS f \gset

SELECT create_trigger_rule(:t, '震度5弱以上', :f, '5-') AS r1 \gset
SELECT create_trigger_rule(:t, '九州 震度4以上', :f, '4', target => jsonb_build_object('groups', jsonb_build_array(:kyushu)),
                           repeat_within => '1 day') AS r2 \gset
SELECT create_trigger_rule(:t, '訓練 震度3以上', :f, '3', drill => true) AS r3 \gset
SELECT create_trigger_rule(:t, '津波警報', :f, NULL, hazard => 'tsunami') AS r4 \gset
SELECT create_trigger_rule(:t, '海外 推計震度3以上', :f, '3', target => '{"sites": ["PH1", "BKK1"]}',
                           sources => '{usgs}', use_estimate => true) AS r5 \gset
SELECT create_trigger_rule(:t, '岩手 震度5弱以上', :f, '5-', target => '{"areas": ["212"]}') AS r6 \gset
SELECT rule_id, name, hazard, min_shindo, target, deadline, drill, repeat_within, use_estimate, sources, tsunami_kinds
FROM trigger_rule WHERE tenant_id = :t ORDER BY rule_id;

-- 1. Noto, 震度速報: one request for the sites at 5弱 or more, by area
SELECT ingest_feed_document('jma', pg_temp.doc('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')) AS noto;
SELECT event_id AS noto FROM disaster_event WHERE source = 'jma' AND kind = 'earthquake' AND source_event_id = '20240101161010' \gset
SELECT * FROM pg_temp.requests();
-- the feed repeats: nothing new
SELECT ingest_feed_document('jma', pg_temp.doc('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')) AS replay;
SELECT count(*) AS requests FROM request WHERE tenant_id = :t;
-- why each site was asked or not
SELECT rule_name, site_code, shindo, decision, reason FROM trigger_decision
WHERE event_id = :noto AND rule_id = :r1 ORDER BY site_code;
-- the request carries the event; its targets await tokens like any other
SELECT request_id, title, targets, responded, event_id = :noto AS from_event, rule_id = :r1 AS from_rule, state
FROM request_summary WHERE rule_id = :r1;
SELECT deadline - created_at AS deadline_after, target_spec ->> 'rule' = :'r1' AS spec_names_rule FROM request WHERE rule_id = :r1;

-- 2. the tsunami warning: sites in the warned 津波予報区 (site attribute tsunami_area)
SELECT ingest_feed_document('jma', pg_temp.doc('jma/VTSE41_20240101_noto_major_tsunami_warning.xml')) AS tsunami;
SELECT * FROM pg_temp.requests() WHERE rule = '津波警報';
SELECT site_code, decision, reason FROM trigger_decision WHERE rule_id = :r4 ORDER BY site_code;

-- 3. a later telegram of the same event adds newly affected sites to the
--    same request: 宮崎県南部平野部 raised 3 → 4 by a re-issued 震度速報
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE51_sample_20100125_1615_osumi_maxint4__32-35_04_02.xml')) AS osumi;
SELECT * FROM pg_temp.requests() WHERE rule = '九州 震度4以上';
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE51_sample_20100125_1615_osumi_2nd_issue__32-35_04_05.xml')) AS reissue;
SELECT * FROM pg_temp.requests() WHERE rule = '九州 震度4以上';
SELECT targets FROM request WHERE rule_id = :r2;
-- the VXSE53 that follows lists municipalities: nothing more to ask
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE53_sample_20100125_1615_osumi_serial1__32-35_04_04.xml')) AS vxse53;
SELECT count(*) AS requests_for_osumi FROM request WHERE rule_id = :r2;

-- 4. aftershocks (repeat_within 1 day): a new event asks a site again only
--    if it shook the site harder than when the site was last asked
SELECT ingest_feed_document('jma', pg_temp.derive('jma/official_samples/VXSE51_sample_20100125_1615_osumi_2nd_issue__32-35_04_05.xml',
    '<EventID>20100125161517</EventID>', '<EventID>20100125180000</EventID>')) AS aftershock_same;
SELECT event_id AS after1 FROM disaster_event WHERE source_event_id = '20100125180000' \gset
SELECT site_code, shindo, decision, reason FROM backtest_rule(:r2, :after1);
SELECT count(*) AS requests_for_aftershock FROM request WHERE rule_id = :r2 AND event_id = :after1;
SELECT ingest_feed_document('jma', pg_temp.derive('jma/official_samples/VXSE51_sample_20100125_1615_osumi_2nd_issue__32-35_04_05.xml',
    '<EventID>20100125161517</EventID>', '<EventID>20100125190000</EventID>',
    '<Area><Name>宮崎県南部平野部</Name><Code>762</Code><MaxInt>4</MaxInt></Area>',
    '<Area><Name>宮崎県南部平野部</Name><Code>762</Code><MaxInt>5-</MaxInt></Area>',
    '<Name>宮崎県</Name><Code>45</Code><MaxInt>4</MaxInt>', '<Name>宮崎県</Name><Code>45</Code><MaxInt>5-</MaxInt>')) AS aftershock_harder;
SELECT * FROM pg_temp.requests() WHERE rule = '九州 震度4以上';

-- 5. training telegrams (訓練) fire only drill rules; the request is a drill
SELECT ingest_feed_document('jma', pg_temp.derive('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml',
    '<Status>通常</Status>', '<Status>訓練</Status>',
    '<EventID>20240101161010</EventID>', '<EventID>20240301100000</EventID>')) AS training;
SELECT * FROM pg_temp.requests() WHERE drill;
SELECT rule_name, count(*) FILTER (WHERE decision = 'asked') AS asked,
       min(reason) FILTER (WHERE decision = 'skip' AND reason LIKE '%訓練%') AS why_not
FROM trigger_decision d JOIN disaster_event e USING (event_id)
WHERE e.status = 'training' GROUP BY rule_name ORDER BY rule_name;

-- 6. 取消: a withdrawn event cancels its request (the issued telegram is
--    derived for the EventID of the recorded 取消)
SELECT ingest_feed_document('jma', pg_temp.derive('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml',
    '<EventID>20240101161010</EventID>', '<EventID>20220509152315</EventID>',
    '<DateTime>2024-01-01T07:13:41Z</DateTime>', '<DateTime>2022-05-09T06:26:00Z</DateTime>')) AS false_event;
SELECT request_id AS false_req FROM request WHERE event_id = (SELECT event_id FROM disaster_event WHERE source_event_id = '20220509152315') \gset
SELECT state FROM request WHERE request_id = :false_req;
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE51_sample_20220509_CANCEL__32-35_10_01.xml')) AS cancel;
SELECT e.status AS event_status, q.state, q.cancel_reason
FROM request q JOIN disaster_event e USING (event_id) WHERE q.request_id = :false_req;
-- a cancelled request refuses reports like any other
SELECT issue_token(:false_req, 'NOTO1');

-- 7. 震度５弱以上未入電: a municipality that may have reached 5弱 is asked
SELECT ingest_feed_document('jma', pg_temp.derive('jma/VXSE53_20210219_iwate_maxint4.xml',
    '<City><Name>八幡平市</Name><Code>0321400</Code><MaxInt>2</MaxInt>',
    '<City><Name>八幡平市</Name><Code>0321400</Code><MaxInt>2</MaxInt><Condition>震度５弱以上未入電</Condition>')) AS iwate;
SELECT d.site_code, d.shindo, d.decision, d.reason FROM trigger_decision d JOIN disaster_event e USING (event_id)
WHERE d.rule_id = :r6 AND e.source_event_id = '20210219181113' ORDER BY d.site_code;

-- 8. abroad: USGS events with estimated intensity (use_estimate)
SELECT ingest_feed_document('usgs', pg_temp.doc('usgs/summary_4.5_day_20240206.geojson')) AS usgs;
SELECT * FROM pg_temp.requests() WHERE rule = '海外 推計震度3以上';
SELECT d.site_code, d.shindo, d.decision, d.reason FROM trigger_decision d JOIN disaster_event e USING (event_id)
WHERE d.rule_id = :r5 AND e.source_event_id = 'us7000lx97' ORDER BY d.site_code;
-- other rules never look at USGS events: they watch JMA
SELECT count(*) AS other_rules_on_usgs FROM trigger_evaluation v JOIN event e USING (event_id)
WHERE e.source = 'usgs' AND v.rule_id <> :r5;

-- 9. backtest: what a rule would do for a past event, without doing it
SELECT create_trigger_rule(:t, '全拠点 震度3以上', :f, '3') AS r7 \gset
SELECT * FROM backtest_rule(:r7, :noto);
SELECT count(*) AS requests_of_new_rule FROM request WHERE rule_id = :r7;

-- 10. estimated intensity on its own
SELECT d AS km, estimate_shindo(7.6, 10, 37.5, 137.2, 37.5 + d / 111.0, 137.2) AS noto_m76
FROM unnest(ARRAY[0, 30, 100, 200, 400]) d;
SELECT estimate_shindo(9.0, 29, 38.297, 142.373, 38.26, 140.87) AS tohoku_at_sendai,
       estimate_shindo(9.0, 29, 38.297, 142.373, 35.68, 139.76) AS tohoku_at_tokyo,
       estimate_shindo(3.0, 10, 35.0, 135.0, 35.0, 136.0) AS small_far;

-- 11. bad input
SELECT create_trigger_rule(:t, 'x', 999999, '5-');
SELECT create_trigger_rule(999999, 'x', :f, '5-');
SELECT create_trigger_rule(:t, ' ', :f, '5-');
SELECT create_trigger_rule(:t, 'x', :f, NULL);
SELECT create_trigger_rule(:t, 'x', :f, '5-', hazard => 'flood');
SELECT create_trigger_rule(:t, 'x', :f, '5-', target => '{"sites": ["NOPE"]}');
SELECT create_trigger_rule(:t, 'x', :f, '5-', deadline => '-1 hour');
SELECT create_trigger_rule(:t, 'x', :f, '5-', sources => '{twitter}');
SELECT create_trigger_rule(:t, 'x', :f, NULL, hazard => 'tsunami', tsunami_kinds => '{99}');
SELECT create_trigger_rule(:t, 'x', :f, '8');
SELECT * FROM backtest_rule(999999, :noto);
SELECT * FROM backtest_rule(:r1, 999999);
SELECT set_trigger_rule_enabled(999999, false);
SELECT count(*) AS rules FROM trigger_rule WHERE tenant_id = :t;
-- a disabled rule explains itself and asks nobody
SELECT set_trigger_rule_enabled(:r7, false);
SELECT DISTINCT decision, reason FROM backtest_rule(:r7, :noto);
