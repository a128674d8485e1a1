-- Weather, landslide, record-rain and volcano warnings as triggers (1.1.0):
-- one request per rule and episode, escalation asking only newly covered
-- sites, 解除 shown but not closing the request, a new episode after it,
-- training and withdrawal (取消), JMA's 2026 level-named warnings, the
-- operator's own kinds, tenants kept apart, and every bad input with its
-- SQLSTATE and nothing stored.
-- JMA's official sample telegrams are read from ../shared/fixtures/feeds
-- (SC_FIXTURES); the further cases are derived from them with replace().
BEGIN;
\ir fixtures.psql
\getenv fixtures SC_FIXTURES
SELECT plan(64);
SELECT set_config('sc.fixtures', :'fixtures', true) IS NOT NULL AS fixtures_set \gset
CREATE FUNCTION pg_temp.doc(path text) RETURNS text
    LANGUAGE sql AS $$ SELECT convert_from(pg_read_binary_file(current_setting('sc.fixtures') || '/jma/weather/' || path), 'UTF8') $$;
-- derive a telegram: replace pairs of strings (each must be there)
CREATE FUNCTION pg_temp.derive(body text, VARIADIC pairs text[]) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. cardinality(pairs) BY 2 LOOP
        IF strpos(body, pairs[i]) = 0 THEN
            RAISE EXCEPTION 'derive: % not found', pairs[i];
        END IF;
        body := replace(body, pairs[i], pairs[i + 1]);
    END LOOP;
    RETURN body;
END $$;
-- the sites a rule's requests asked, per request
CREATE FUNCTION pg_temp.asked(p_rule bigint) RETURNS TABLE (request_id bigint, state text, sites text)
    LANGUAGE sql AS $$
    SELECT q.request_id, q.state, string_agg(s.code, ',' ORDER BY s.code)
    FROM request q
    JOIN request_target t ON t.tenant_id = q.tenant_id AND t.request_id = q.request_id
    JOIN site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
    WHERE q.rule_id = p_rule GROUP BY q.request_id, q.state ORDER BY q.request_id $$;
SELECT load_jma_area_codes(convert_from(pg_read_binary_file(current_setting('sc.fixtures') || '/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'), 'UTF8')) AS n \gset

-- 島根県, 2016-02-12 15:44: 大雨特別警報 in 浜田市, 江津市 and 邑南町, 大雨警報 in
-- 大田市 …, 大雨注意報 in 松江市 …  An hour before (derived): the 特別警報 were 注意報.
SELECT pg_temp.doc('VPWW54_sample_161130__15_12_01.xml') AS special \gset
SELECT regexp_replace(pg_temp.derive(:'special', '2016-02-12T15:44:00+09:00', '2016-02-12T14:44:00+09:00',
                                                 '2016-02-12T06:44:00Z', '2016-02-12T05:44:00Z'),
                      '<Name>大雨特別警報</Name>(\s*)<Code>33</Code>', '<Name>大雨注意報</Name>\1<Code>10</Code>', 'g') AS before \gset
-- at 20:44 (derived) everything lifted
SELECT regexp_replace(pg_temp.derive(:'special', '2016-02-12T15:44:00+09:00', '2016-02-12T20:44:00+09:00',
                                                 '2016-02-12T06:44:00Z', '2016-02-12T11:44:00Z'),
                      '<Status>(発表|継続)</Status>', '<Status>解除</Status>', 'g') AS lifted \gset

SELECT import_sites(:ta, E'code,name,group_path,municipality_code,lat,lon,address,contact_email\n'
    'HMD,A浜田,島根,3220200,34.90,132.08,,\n'
    'OHD,A大田,島根,3220500,35.19,132.50,,\n'
    'MTE,A松江,島根,3220100,35.47,133.05,,\n'
    'ODW,A小田原,神奈川,1420600,35.26,139.15,,\n'
    'HKN,A箱根,神奈川,1438200,35.23,139.10,,\n'
    'KIT,A北九州門司,福岡,4010100,33.94,130.96,,\n') AS n \gset
SELECT import_sites(:tb, E'code,name,group_path,municipality_code,lat,lon,address,contact_email\n'
    'GTU,B江津,島根,3220700,35.01,132.22,,\n') AS n \gset
CREATE TEMP TABLE before AS SELECT pg_temp.row_counts() AS counts;

-- ------------------------------------------------------------ bad input
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 3)', :ta, 'x', :fa, 'earthquake'),
    '22023', NULL, 'a warning rule for earthquake: 22023 (earthquake rules take min_shindo)');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 3)', :ta, 'x', :fa, 'tornado'),
    '22023', NULL, 'an unknown hazard: 22023');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 6)', :ta, 'x', :fa, 'rain'),
    '22023', NULL, 'min_level 6: 22023');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => NULL)', :ta, 'x', :fa, 'rain'),
    '22004', 'create_trigger_rule: min_level must not be NULL', 'min_level NULL: 22004, named');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 3, deadline => %L)', :ta, 'x', :fa, 'rain', '-1 hour'),
    '22023', NULL, 'a warning rule with a deadline that is not positive: 22023');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 3)', :ta, ' ', :fa, 'rain'),
    '22023', NULL, 'a warning rule with a blank name: 22023');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 3)', :ta, 'x', :fb, 'rain'),
    '23503', NULL, 'a warning rule cannot use another tenant''s form');
SELECT throws_ok(format('SELECT create_trigger_rule(%s, %L, %s, hazard => %L, min_level => 3, target => %L)', :ta, 'x', :fa, 'rain', '{"sites": ["GTU"]}'),
    '23503', NULL, 'a warning rule cannot target another tenant''s site');
SELECT throws_ok($$SELECT ingest_feed_document('jma', pg_temp.derive(pg_temp.doc('VPWW54_sample_161130__15_12_01.xml'), '<Code>3220200</Code>', '<Code>32202X0</Code>'))$$,
    '22023', NULL, 'a municipality code that is not 7 digits: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('jma', pg_temp.derive(pg_temp.doc('VXWW50_sample_190529__17_01_01.xml'), '<Status>通常</Status>', '<Status>本番</Status>'))$$,
    '22023', NULL, 'an unknown Control/Status: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('jma', pg_temp.derive(pg_temp.doc('VFVO50_sample_200522__45_02_01.xml'), '<ReportDateTime>2020-05-22T13:26:00+09:00</ReportDateTime>', ''))$$,
    '22023', NULL, 'a telegram without ReportDateTime: 22023');
SELECT throws_ok($$SELECT ingest_feed_document('jma', substring(pg_temp.doc('VPOA50_sample_190412__18_03_01.xml') FOR 900))$$,
    '22P02', NULL, 'a truncated telegram: 22P02');
SELECT is((SELECT counts FROM before), pg_temp.row_counts(), 'no bad input changed any table');

-- ------------------------------------------------------------ rules
SELECT create_trigger_rule(:ta, 'A 大雨警報以上', :fa, hazard => 'rain', min_level => 3) AS a_rain3 \gset
SELECT create_trigger_rule(:ta, 'A 特別警報', :fa, hazard => 'any_warning', min_level => 5) AS a_any5 \gset
SELECT create_trigger_rule(:ta, 'A 土砂災害', :fa, hazard => 'landslide', min_level => 4) AS a_land4 \gset
SELECT create_trigger_rule(:ta, 'A 噴火レベル5', :fa, hazard => 'volcano', min_level => 5) AS a_volc5 \gset
SELECT create_trigger_rule(:ta, 'A 訓練', :fa, hazard => 'rain', min_level => 2, drill => true) AS a_drill \gset
SELECT create_trigger_rule(:tb, 'B 大雨警報以上', :fb, hazard => 'rain', min_level => 3) AS b_rain3 \gset
SELECT is((SELECT array_agg(hazard || ' ' || min_level || ' ' || coalesce(min_shindo::text, '-') ORDER BY rule_id) FROM trigger_rule WHERE tenant_id = :ta),
    ARRAY['rain 3 -', 'any_warning 5 -', 'landslide 4 -', 'volcano 5 -', 'rain 2 -'], 'warning rules store a hazard and a level, no shindo');

-- 14:44: 大雨警報 in 大田 (level 3): A's rule asks 大田 only
SELECT ok(ingest_feed_document('jma', :'before') > 0, 'the 14:44 telegram opens episodes');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s)', :a_rain3), $$VALUES ('OHD')$$,
    '警報 (level 3) asks 大田; 浜田 at 注意報 (level 2) is not asked');
SELECT is((SELECT reason FROM trigger_decision WHERE rule_id = :a_rain3 AND site_code = 'HMD'),
    'below threshold: 大雨注意報 (レベル2) for 浜田市 < レベル3', 'the decision for 浜田 says why');
SELECT is((SELECT count(*)::integer FROM request WHERE rule_id = :a_any5), 0, 'no 特別警報 yet: the any_warning rule made no request');
-- 15:44: 特別警報 in 浜田 and 江津: the same request grows by the newly covered site only
SELECT ok(ingest_feed_document('jma', :'special') > 0, 'the 15:44 telegram revises the episodes');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s)', :a_rain3), $$VALUES ('HMD,OHD')$$,
    'escalation within the episode (注意報 → 特別警報): 浜田 added to the one request; 大田 not asked twice');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s)', :a_any5), $$VALUES ('HMD')$$,
    'any_warning at level 5: 浜田 (大雨特別警報)');
SELECT is((SELECT asked_reason FROM request_target t JOIN site s USING (tenant_id, site_id)
           WHERE s.code = 'HMD' AND t.request_id = (SELECT request_id FROM request WHERE rule_id = :a_rain3)),
    '大雨特別警報 (レベル5) for 浜田市 ≥ レベル3', 'the request says why 浜田 was asked');
SELECT is((SELECT title FROM request WHERE rule_id = :a_any5), '大雨特別警報 島根県 (02/12 14:44 JST)', 'the request''s title names the warning and the prefecture');
SELECT is(ingest_feed_document('jma', :'special'), 0, 'the same telegram again changes nothing');
SELECT is(ingest_feed_document('jma', :'before'), 0, 'an older telegram after a newer one changes nothing');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s)', :b_rain3), $$VALUES ('GTU')$$,
    'tenant B''s rule asks B''s 江津 site only');
SELECT is((SELECT count(*)::integer FROM request_target t JOIN request q USING (tenant_id, request_id)
           WHERE q.rule_id IN (:a_rain3, :a_any5) AND t.tenant_id <> :ta), 0, 'tenant A''s requests hold none of B''s sites');
SELECT is((SELECT count(*)::integer FROM request WHERE rule_id = :a_drill), 0, 'a drill rule does not fire on a real telegram');
SELECT is((SELECT level || ' ' || status || ' ' || (until IS NULL) FROM hazard_warning
           WHERE municipality = '3220200' AND kind = '大雨特別警報'), '5 発表 true', 'hazard_warning: 浜田 大雨特別警報 level 5, in force');
SELECT is((SELECT status FROM hazard_warning WHERE municipality = '3220200' AND kind = '大雨注意報'), '切替（大雨特別警報）',
    'hazard_warning: 浜田''s 大雨注意報 replaced by the 特別警報');

-- 20:44: everything lifted: the episodes end, the requests stay open
SELECT ok(ingest_feed_document('jma', :'lifted') > 0, 'the 解除 telegram revises the episodes');
SELECT is((SELECT ended_at FROM disaster_event WHERE kind = 'rain' AND source_event_id LIKE 'weather:320000:%'),
    '2016-02-12 20:44:00+09'::timestamptz, 'the rain episode ended at the 解除');
SELECT is((SELECT count(*)::integer FROM hazard_warning WHERE source_event_id LIKE 'weather:320000:%' AND until IS NULL), 0,
    'no warning of 島根県 is in force any more');
SELECT results_eq(format('SELECT state FROM pg_temp.asked(%s)', :a_rain3), $$VALUES ('open')$$, 'a 解除 does not close the request');
SELECT matches((SELECT reason FROM trigger_decision WHERE rule_id = :a_rain3 AND site_code = 'MTE'),
    '^below threshold', '松江 stays below the threshold');
SELECT is((SELECT reason FROM backtest_rule(:a_any5, (SELECT event_id FROM disaster_event WHERE kind = 'rain' AND source_event_id LIKE 'weather:320000:%')) WHERE site_code = 'HMD'),
    '大雨特別警報 (レベル5) for 浜田市 ≥ レベル5', 'backtest_rule explains the asked site');
SELECT is(ingest_feed_document('jma', :'before'), 0, 'the 14:44 telegram delivered late, after the 解除: it reopens nothing');
-- a new 発表 after the 解除 is a new episode: one more request
SELECT ok(ingest_feed_document('jma', pg_temp.derive(:'special', '2016-02-12T15:44:00+09:00', '2016-02-12T23:44:00+09:00',
                                                     '2016-02-12T06:44:00Z', '2016-02-12T14:44:00Z')) > 0, 'a 発表 after the 解除');
SELECT is((SELECT count(*)::integer FROM pg_temp.asked(:a_rain3)), 2, 'a new episode after the 解除: exactly one more request');

-- training: only the drill rule fires, on an episode of its own
SELECT ok(ingest_feed_document('jma', pg_temp.derive(:'special', '<Status>通常</Status>', '<Status>訓練</Status>')) > 0, 'a training telegram');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s)', :a_drill), $$VALUES ('HMD,MTE,OHD')$$,
    'training: the drill rule asks every site at level 2 or more');
SELECT is((SELECT count(*)::integer FROM pg_temp.asked(:a_rain3)), 2, 'training: the real rule made no request');

-- landslide: 福岡県 (北九州市 警戒: the site in its 門司区 is asked); a 取消 of a later telegram withdraws that one only
SELECT ok(ingest_feed_document('jma', pg_temp.doc('VXWW50_sample_190529__17_01_01.xml')) > 0, '福岡県 土砂災害警戒情報');
SELECT results_eq(format('SELECT state || '' '' || sites FROM pg_temp.asked(%s)', :a_land4), $$VALUES ('open KIT')$$,
    '土砂災害警戒情報 (level 4) for 北九州市 asks the site in 北九州門司区');
SELECT pg_temp.derive(pg_temp.doc('VXWW50_sample_190529__17_01_01.xml'), '<Serial>5</Serial>', '<Serial>6</Serial>',
                      '2013-08-31T11:05:00+09:00', '2013-08-31T11:35:00+09:00') AS serial6 \gset
SELECT ok(ingest_feed_document('jma', :'serial6') > 0 AND
          ingest_feed_document('jma', pg_temp.derive(:'serial6', '<InfoType>発表</InfoType>', '<InfoType>取消</InfoType>',
                                                     '2013-08-31T11:35:00+09:00', '2013-08-31T11:50:00+09:00')) > 0,
    'serial 6, then its 取消');
SELECT results_eq(format('SELECT state FROM pg_temp.asked(%s)', :a_land4), $$VALUES ('open')$$,
    'a 取消 of a later telegram leaves the episode and its request (serial 5 still stands)');

-- 2026: 神奈川県「レベル４土砂災害危険警報」 asks 小田原 like a 土砂災害警戒情報; withdrawn, its request is cancelled
SELECT ok(ingest_feed_document('jma', pg_temp.doc('VXWW50_sample_250630__17_04_01.xml')) > 0, '神奈川県 レベル４土砂災害危険警報');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s) WHERE sites = ''ODW''', :a_land4), $$VALUES ('ODW')$$,
    'the 2026 level-named landslide warning asks 小田原 at level 4');
-- a 取消 with a Body of its own (岡山県) that names 神奈川県's EventID withdraws nothing of 神奈川県
SELECT is(ingest_feed_document('jma', pg_temp.derive(pg_temp.doc('VXWW50_sample_190529__17_03_01.xml'),
          '<EventID>岡山県土砂災害警戒情報</EventID>', '<EventID>神奈川県土砂災害警戒情報</EventID>',
          '<InfoType>発表</InfoType>', '<InfoType>取消</InfoType>', '2013-09-02T15:37:00+09:00', '2024-11-02T19:50:00+09:00')), 0,
    'a 取消 of another scope carrying this episode''s EventID changes nothing');
SELECT results_eq(format('SELECT state FROM pg_temp.asked(%s) WHERE sites = ''ODW''', :a_land4), $$VALUES ('open')$$,
    '... and 小田原''s request stays open');
SELECT ok(ingest_feed_document('jma', regexp_replace(pg_temp.derive(pg_temp.doc('VXWW50_sample_250630__17_04_01.xml'),
          '<InfoType>発表</InfoType>', '<InfoType>取消</InfoType>', '2024-11-02T18:50:00+09:00', '2024-11-02T19:10:00+09:00'),
          '<Body .*</Body>', '<Body xmlns="http://xml.kishou.go.jp/jmaxml1/body/meteorology1/"/>')) > 0,
    'its 取消, with an empty Body (the episode found by JMA''s EventID)');
SELECT results_eq(format('SELECT state FROM pg_temp.asked(%s) WHERE sites = ''ODW''', :a_land4), $$VALUES ('cancelled')$$,
    'a warning withdrawn by its only telegram cancels its request');
-- volcanoes compare by 噴火警戒レベル: 浅間山 at レベル3 asks nobody at 5, 箱根山 at レベル5 asks 箱根
SELECT ok(ingest_feed_document('jma', pg_temp.doc('VFVO50_sample_200522__45_01_01.xml')) > 0 AND
          ingest_feed_document('jma', pg_temp.doc('VFVO50_sample_200522__45_02_01.xml')) > 0, '浅間山 and 箱根山');
SELECT results_eq(format('SELECT sites FROM pg_temp.asked(%s)', :a_volc5), $$VALUES ('HKN')$$,
    'a volcano rule at レベル5 asks the site in 箱根町 only');
-- a 2026 level-named weather warning (a name JMA may give a new code) compares with today's
SELECT ok(ingest_feed_document('jma', regexp_replace(pg_temp.derive(pg_temp.doc('VPWW54_sample_161226__15_13_01.xml'),
          '<Status>通常</Status>', '<Status>訓練</Status>'),
          '<Name>大雨特別警報</Name>(\s*)<Code>33</Code>', '<Name>レベル５大雨特別警報</Name>\1<Code>93</Code>', 'g')) > 0,
    '東京都: レベル５大雨特別警報 with a code of its own');
SELECT is((SELECT max(level) FROM hazard_warning WHERE kind = 'レベル５大雨特別警報' AND hazard = 'rain'), 5,
    'レベル５大雨特別警報 is a rain warning at level 5');
-- the operator names a kind JMA introduces
SET LOCAL ROLE status_checker_operator;
INSERT INTO warning_kind (family, kind_name, kind_code, hazard, level) VALUES ('weather', '線状降水帯警報', '94', 'rain', 4);
RESET ROLE;
SELECT ok(ingest_feed_document('jma', regexp_replace(pg_temp.derive(:'special', '2016-02-12T15:44:00+09:00', '2016-02-13T15:44:00+09:00',
          '2016-02-12T06:44:00Z', '2016-02-13T06:44:00Z', '<Status>通常</Status>', '<Status>訓練</Status>'),
          '<Name>大雨特別警報</Name>(\s*)<Code>33</Code>', '<Name>線状降水帯警報</Name>\1<Code>94</Code>', 'g')) > 0,
    'a telegram with a kind the operator added');
SELECT is((SELECT level FROM hazard_warning WHERE kind = '線状降水帯警報' AND municipality = '3220200'), 4,
    'the operator''s kind is known by its level');

-- the operator's kinds are its own: the built-in ones stay as installed
SET LOCAL ROLE status_checker_operator;
UPDATE warning_kind SET level = 5 WHERE family = 'weather' AND kind_name = '雷注意報';
RESET ROLE;
SELECT is((SELECT level FROM warning_kind WHERE family = 'weather' AND kind_name = '雷注意報'), 2, 'the operator cannot change a built-in kind');
-- … nor take a built-in kind's place for a telegram that gives only its code
SET LOCAL ROLE status_checker_operator;
INSERT INTO warning_kind (family, kind_name, kind_code, hazard, level) VALUES ('weather', 'AAA', '33', 'other', 1);
RESET ROLE;
SELECT is((SELECT hazard || ' ' || level FROM _classify_warnings('{"kind": "weather", "warnings": [{"scope": "city", "code": "3220200", "kind_code": "33", "status": "発表"}]}')),
    'rain 5', 'a code alone is JMA''s kind (大雨特別警報, rain 5), not an operator''s kind with the same code');
SELECT throws_ok($$SET LOCAL ROLE status_checker_operator; INSERT INTO status_checker.warning_kind (family, kind_name, hazard, level, builtin) VALUES ('weather', 'x', 'rain', 5, true)$$,
    '42501', NULL, 'the operator cannot add a kind marked built-in (42501)');
RESET ROLE;
SELECT throws_ok($$SET LOCAL ROLE status_checker_operator; INSERT INTO status_checker.warning_kind (family, kind_name, hazard, level, label) VALUES ('weather', 'y', 'rain', 4, repeat('長', 101))$$,
    '23514', NULL, 'a kind''s label over 100 characters: 23514');
RESET ROLE;
SELECT throws_ok($$SET LOCAL ROLE status_checker_operator; INSERT INTO status_checker.warning_kind (family, kind_name, hazard, level) VALUES ('weather', 'z', 'tornado', 4)$$,
    '23514', NULL, 'a kind of an unknown hazard: 23514');
RESET ROLE;
-- a mapped viewer reads the decisions of its tenant (trigger_decision runs _decide as its reader)
CREATE ROLE sc_wx_viewer LOGIN;
SELECT add_user(:ta, 'miru', 'miru@a.example', 'viewer') IS NOT NULL AS viewer_added \gset
SELECT map_db_role(:ta, 'miru', 'sc_wx_viewer') IS NULL AS mapped \gset
SET SESSION AUTHORIZATION sc_wx_viewer;
SELECT ok((SELECT count(*) FROM status_checker.trigger_decision WHERE rule_name = 'A 大雨警報以上' AND site_code = 'HMD') > 0
          AND (SELECT count(*) FROM status_checker.trigger_decision WHERE rule_name = 'B 大雨警報以上') = 0,
    'a mapped viewer reads its tenant''s decisions in trigger_decision, and no other tenant''s');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
