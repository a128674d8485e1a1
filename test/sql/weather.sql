-- weather: the JMA parser on weather warnings (VPWW53/54), 土砂災害警戒情報
-- (VXWW50), 記録的短時間大雨情報 (VPOA50), 噴火警報・予報 (VFVO50) and
-- 指定河川洪水予報 (VXKO): every sample telegram, exact values, and bad
-- documents.
--
-- The telegrams are JMA's published samples, read from SC_FIXTURES
-- (../shared/fixtures/feeds/jma/weather) at run time (public data of others:
-- never copied into this repository).  Bad documents and 取消 copies are
-- derived from them with replace().
SET search_path = status_checker, public;
SET timezone = 'Asia/Tokyo';
\set SHOW_CONTEXT never
\getenv fixtures SC_FIXTURES
\set wx :fixtures '/jma/weather/'
SELECT set_config('sc.wx', :'wx', false) IS NOT NULL AS fixtures_dir_set;
-- a sample as text, its event, and a refusal as SQLSTATE and message
CREATE FUNCTION pg_temp.src(f text) RETURNS text
    LANGUAGE sql AS $$ SELECT convert_from(pg_read_binary_file(current_setting('sc.wx') || f), 'UTF8') $$;
CREATE FUNCTION pg_temp.ev(doc text) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT parse_feed_document('jma', doc) -> 'events' -> 0 $$;
CREATE FUNCTION pg_temp.refusal(doc bytea) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM _parse_feed_document('jma', doc);
    RETURN 'parsed';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION pg_temp.refusal(doc text) RETURNS text
    LANGUAGE sql AS $$ SELECT pg_temp.refusal(convert_to(doc, 'UTF8')) $$;
CREATE TEMP TABLE sample AS
    SELECT f, pg_temp.ev(pg_temp.src(f)) AS e
    FROM pg_ls_dir(current_setting('sc.wx')) f WHERE f LIKE '%.xml';
-- the warnings of a sample, in document order
CREATE FUNCTION pg_temp.warnings(f text) RETURNS TABLE (n bigint, scope text, code text, name text, kind_code text,
        kind_name text, status text, last_kind text, condition text, level int)
    LANGUAGE sql AS $$
    SELECT n, w ->> 'scope', w ->> 'code', w ->> 'name', w ->> 'kind_code', w ->> 'kind_name', w ->> 'status',
           w ->> 'last_kind_code', w ->> 'condition', (w ->> 'level')::int
    FROM jsonb_array_elements(pg_temp.ev(pg_temp.src(f)) -> 'warnings') WITH ORDINALITY x(w, n) $$;

-- ------------------------------------------------------------ every sample
SELECT count(*) AS samples FROM sample;
SELECT left(f, 13) AS sample, e ->> 'kind' AS kind, e ->> 'product' AS product, e ->> 'source_event_id' AS event_id,
       e ->> 'scope_name' AS scope_name, e ->> 'status' AS status, e ->> 'info_type' AS info_type, e -> 'serial' AS serial,
       e ->> 'issued_at' AS issued_at
FROM sample ORDER BY f;
-- warnings per scope
SELECT left(f, 13) AS sample,
       (SELECT string_agg(scope || ' ' || n, ', ' ORDER BY first)
        FROM (SELECT w ->> 'scope' AS scope, count(*) AS n, min(o) AS first
              FROM jsonb_array_elements(e -> 'warnings') WITH ORDINALITY x(w, o) GROUP BY 1) s) AS warnings
FROM sample ORDER BY f;
-- the other fields of the event
SELECT left(f, 13) AS sample, e ->> 'office' AS office, e ->> 'title' AS title, e ->> 'target_time' AS target_time,
       left(e ->> 'headline', 24) AS headline, e -> 'volcano_level' AS volcano_level, e -> 'places' AS places
FROM sample ORDER BY f;

-- ------------------------------------------------------------ VPWW53/54
-- 松江市 (3220100) in the 2025 sample: four kinds, all 継続
SELECT * FROM pg_temp.warnings('VPWW54_sample_250123__15_17_01.xml') WHERE code = '3220100';
-- the 府県予報区 entries of the 2016 島根県 sample: 大雨特別警報 from 大雨警報
SELECT * FROM pg_temp.warnings('VPWW54_sample_161130__15_12_01.xml') WHERE scope = 'pref';
-- 隠岐: 発表警報・注意報はなし, a Kind without Name or Code
SELECT * FROM pg_temp.warnings('VPWW54_sample_161130__15_12_01.xml') WHERE kind_code IS NULL;
-- VPWW53: 奈良県 (the older product), its 特別警報 and the municipalities of 奈良市
SELECT * FROM pg_temp.warnings('VPWW53_sample_130412__15_08_01.xml') WHERE scope = 'pref' OR code = '2920100';
-- statuses over all VPWW samples
SELECT w ->> 'status' AS status, count(*) AS entries
FROM sample, jsonb_array_elements(e -> 'warnings') w WHERE e ->> 'kind' = 'weather' GROUP BY 1 ORDER BY 1;

-- ------------------------------------------------------------ VXWW50
-- 神奈川県 (2026 scheme sample): the municipalities that are not なし
SELECT * FROM pg_temp.warnings('VXWW50_sample_250630__17_04_01.xml') WHERE kind_name <> 'なし';
-- 福岡県: kinds and statuses
SELECT kind_code, kind_name, status, count(*) AS cities, min(name) AS first_name
FROM pg_temp.warnings('VXWW50_sample_190529__17_01_01.xml') GROUP BY 1, 2, 3 ORDER BY 1, 3;
-- 岡山県: the first issue and its update (高梁市 発表 → 解除)
SELECT f, e -> 'serial' AS serial, w ->> 'name' AS name, w ->> 'kind_code' AS kind_code, w ->> 'kind_name' AS kind_name,
       w ->> 'status' AS status
FROM sample, jsonb_array_elements(e -> 'warnings') w
WHERE f LIKE 'VXWW50_sample_190529__17_03%' AND w ->> 'code' = '3320900' ORDER BY f;
-- 渡島・檜山地方: 八雲町's two parts have codes of their own
SELECT * FROM pg_temp.warnings('VXWW50_sample_190529__17_02_01.xml') WHERE kind_code = '3' OR name LIKE '八雲町%';

-- ------------------------------------------------------------ VPOA50
SELECT f, w.* FROM unnest(ARRAY['VPOA50_sample_100806__18_01_01.xml', 'VPOA50_sample_190412__18_03_01.xml']) f,
       pg_temp.warnings(f) w;
SELECT f, p ->> 'name' AS place, p -> 'amount_mm' AS amount_mm, p -> 'approximate' AS approximate
FROM sample, jsonb_array_elements(e -> 'places') p ORDER BY f;
-- half-width digits, 以上, and lines that are not places
SELECT pg_temp.ev(replace(pg_temp.src('VPOA50_sample_190412__18_03_01.xml'), '小樽市付近で約９０ミリ',
                          '小樽市で120ミリ以上' || chr(10) || '小樽市で雨' || chr(10) || 'でミリ')) -> 'places' AS places;

-- ------------------------------------------------------------ VFVO50
SELECT f, w.* FROM unnest(ARRAY['VFVO50_sample_200522__45_01_01.xml', 'VFVO50_sample_200522__45_02_01.xml']) f,
       pg_temp.warnings(f) w;
SELECT left(f, 30) AS sample, e -> 'warnings' -> 0 ->> 'last_kind_name' AS last_kind_name, e ->> 'headline' AS headline
FROM sample WHERE f LIKE 'VFVO50%' ORDER BY f;
-- an empty Head/Headline/Text: the Body's VolcanoHeadline
SELECT left(pg_temp.ev(replace(regexp_replace(pg_temp.src('VFVO50_sample_200522__45_02_01.xml'), '<Text>[^<]*</Text>', '<Text/>'),
                               '<VolcanoHeadline>', '<VolcanoHeadline>（本文）')) ->> 'headline', 30) AS headline;

-- ------------------------------------------------------------ VXKO
SELECT * FROM pg_temp.warnings('VXKO_sample_220728__16_01_01.xml');

-- ------------------------------------------------------------ levels (JMA's level-named warnings)
-- full-width and half-width digits; レベル without a digit 1–5 has no level
SELECT w ->> 'code' AS code, w ->> 'kind_name' AS kind_name, w -> 'level' AS level
FROM jsonb_array_elements(pg_temp.ev(replace(replace(pg_temp.src('VXWW50_sample_250630__17_04_01.xml'),
         '<Name>警戒</Name>', '<Name>レベル４土砂災害危険警報</Name>'),
         '<Name>なし</Name>', '<Name>レベル0</Name>')) -> 'warnings') w
WHERE w ->> 'code' IN ('1420600', '1410011');
SELECT w ->> 'scope' AS scope, w ->> 'kind_name' AS kind_name, w -> 'level' AS level
FROM jsonb_array_elements(pg_temp.ev(replace(replace(pg_temp.src('VPWW54_sample_161130__15_12_01.xml'),
         '<Name>大雨特別警報</Name>', '<Name>レベル5大雨特別警報</Name>'),
         '<Name>洪水警報</Name>', '<Name>レベル６洪水警報</Name>')) -> 'warnings') w
WHERE w ->> 'scope' = 'pref';

-- ------------------------------------------------------------ 取消
-- with an empty Body: no warnings but VXKO's, which are in the Head; the
-- episode key from the Head (VPWW54's 府県予報区, VFVO50's EventID is the
-- volcano code; VXWW50's EventID is a name)
SELECT e ->> 'product' AS product, e ->> 'info_type' AS info_type, e ->> 'source_event_id' AS event_id,
       e ->> 'scope_name' AS scope_name, jsonb_array_length(e -> 'warnings') AS warnings, e -> 'volcano_level' AS volcano_level
FROM (SELECT pg_temp.ev(regexp_replace(replace(pg_temp.src(f), '<InfoType>発表</InfoType>', '<InfoType>取消</InfoType>'),
                                       '<Body([^>]*)>.*</Body>', '<Body\1/>')) AS e
      FROM unnest(ARRAY['VPWW54_sample_250123__15_17_01.xml', 'VXWW50_sample_190529__17_03_02.xml',
                        'VFVO50_sample_200522__45_01_01.xml', 'VPOA50_sample_100806__18_01_01.xml',
                        'VXKO_sample_220728__16_01_01.xml']) f) m;
-- with its Body: the warnings as stated
SELECT e ->> 'info_type' AS info_type, e ->> 'source_event_id' AS event_id, jsonb_array_length(e -> 'warnings') AS warnings
FROM (SELECT pg_temp.ev(replace(pg_temp.src('VXWW50_sample_190529__17_03_02.xml'), '<InfoType>発表</InfoType>', '<InfoType>取消</InfoType>')) AS e) m;
-- 訓練 and 試験
SELECT pg_temp.ev(replace(pg_temp.src('VXKO_sample_220728__16_01_01.xml'), '<Status>通常</Status>', '<Status>訓練</Status>')) ->> 'status' AS training,
       pg_temp.ev(replace(pg_temp.src('VPOA50_sample_100806__18_01_01.xml'), '<Status>通常</Status>', '<Status>試験</Status>')) ->> 'status' AS test;

-- ------------------------------------------------------------ bad documents
-- each derived from a sample by replacing one text (a regular expression where noted)
SELECT c AS "case", pg_temp.refusal(CASE WHEN re THEN regexp_replace(pg_temp.src(f), old, new) ELSE replace(pg_temp.src(f), old, new) END) AS refusal
FROM (VALUES
    ('city code', 'VXWW50_sample_250630__17_04_01.xml', '<Code>1420600</Code>', '<Code>12x</Code>', false),
    ('VPWW city code', 'VPWW54_sample_250123__15_17_01.xml', '<Code>3220100</Code>', '<Code>322010</Code>', false),
    ('area code', 'VPWW54_sample_250123__15_17_01.xml', '<Code>320011</Code>', '<Code>32001</Code>', false),
    ('volcano code', 'VFVO50_sample_200522__45_01_01.xml', '<Code>306</Code>', '<Code>浅間</Code>', false),
    ('flood city code', 'VXKO_sample_220728__16_01_01.xml', '<CityCode>0000000</CityCode>', '<CityCode></CityCode>', false),
    ('target area', 'VXWW50_sample_190529__17_01_01.xml', '<Code>400000</Code>', '<Code>40</Code>', false),
    ('kind code', 'VPOA50_sample_100806__18_01_01.xml', '<Code>1</Code>', '<Code>一</Code>', false),
    ('rainfall', 'VPOA50_sample_190412__18_03_01.xml', '約１００ミリ', '約１２３４５６ミリ', false),
    ('no ReportDateTime', 'VXKO_sample_220728__16_01_01.xml', '<ReportDateTime>[^<]*</ReportDateTime>', '', true),
    ('bad ReportDateTime', 'VXKO_sample_220728__16_01_01.xml', '2019-05-09T20:40:00+09:00</ReportDateTime>', 'yesterday</ReportDateTime>', false),
    ('Control/Status', 'VPWW53_sample_130412__15_08_01.xml', '<Status>通常</Status>', '<Status>本番</Status>', false),
    ('serial', 'VFVO50_sample_200522__45_02_01.xml', '<Serial />', '<Serial>a</Serial>', false),
    ('a 発表 without warnings', 'VXWW50_sample_190529__17_03_01.xml', '<Body([^>]*)>.*</Body>', '<Body\1/>', true),
    ('a DTD', 'VPOA50_sample_100806__18_01_01.xml', '<Report ', '<!DOCTYPE Report [<!ENTITY x SYSTEM "file:///etc/passwd">]><Report ', false),
    ('declared EUC-JP', 'VPOA50_sample_100806__18_01_01.xml', 'encoding="UTF-8"', 'encoding="EUC-JP"', false),
    ('not handled', 'VPOA50_sample_100806__18_01_01.xml', '<Title>記録的短時間大雨情報</Title>', '<Title>府県天気予報</Title>', false)
) v(c, f, old, new, re);
-- too many entries: 10001 Kinds in one Item
SELECT pg_temp.refusal(regexp_replace(pg_temp.src('VPWW54_sample_250123__15_17_01.xml'), '(<Warning type="[^"]*">\s*<Item>\s*)<Kind>',
                                      '\1' || repeat('<Kind><Code>15</Code></Kind>', 10001) || '<Kind>')) AS too_many;
-- bytes that are not UTF-8
SELECT pg_temp.refusal(convert_to(pg_temp.src('VXWW50_sample_190529__17_03_01.xml'), 'SJIS')) AS shift_jis;
