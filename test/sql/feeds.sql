-- feeds: the parsers on every product and source, exact values, storing
-- events idempotently, and every kind of bad document.
--
-- The recorded documents are read from SC_FIXTURES (../shared/fixtures/feeds) at run time
-- (public data of others: never copied into this repository).  Where a case
-- has no recording (震度５弱以上未入電 in a small telegram, a DTD, Shift_JIS),
-- the test derives it from a recorded document with replace().
SET search_path = status_checker, public;
SET timezone = 'Asia/Tokyo';
\set SHOW_CONTEXT never
\getenv fixtures SC_FIXTURES
\set feeds :fixtures '/'
CREATE FUNCTION pg_temp.doc(path text) RETURNS bytea
    LANGUAGE sql AS $$ SELECT pg_read_binary_file(current_setting('sc.feeds') || path) $$;
SELECT set_config('sc.feeds', :'feeds', false) IS NOT NULL AS fixtures_dir_set;

SELECT load_jma_area_codes(convert_from(pg_temp.doc('codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'), 'UTF8')) AS jma_rows;

-- every recorded document parses (the source is chosen by folder and name)
CREATE FUNCTION pg_temp.parse_all() RETURNS TABLE (folder text, documents bigint, parsed bigint, events bigint, failures text)
LANGUAGE plpgsql AS $$
DECLARE
    f record;
    model jsonb;
    bad text[] := '{}';
BEGIN
    CREATE TEMP TABLE parsed_doc (folder text, ok boolean, events integer);
    FOR f IN
        SELECT d.folder, d.folder || '/' || n AS path,
               CASE WHEN n LIKE 'atom%' THEN 'jma_atom' WHEN d.folder LIKE 'jma%' THEN 'jma'
                    WHEN d.folder LIKE 'p2pquake%' THEN 'p2pquake' ELSE 'usgs' END AS source
        FROM unnest(ARRAY['jma', 'jma/official_samples', 'p2pquake', 'p2pquake/epsp_converted_from_jmaxml', 'usgs']) d(folder),
             pg_ls_dir(current_setting('sc.feeds') || d.folder) n
        WHERE n ~ '\.(xml|json|geojson)$'
        ORDER BY 1, 2
    LOOP
        BEGIN
            model := _parse_feed_document(f.source, pg_temp.doc(f.path));
            INSERT INTO parsed_doc VALUES (f.folder, true,
                coalesce(jsonb_array_length(model -> 'events'), jsonb_array_length(model -> 'entries')));
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO parsed_doc VALUES (f.folder, false, 0);
            bad := bad || (f.path || ': ' || SQLERRM);
        END;
    END LOOP;
    RETURN QUERY SELECT p.folder, count(*), count(*) FILTER (WHERE p.ok), sum(p.events)::bigint,
                        (SELECT string_agg(b, '; ') FROM unnest(bad) b WHERE b LIKE p.folder || '/%')
                 FROM parsed_doc p GROUP BY p.folder ORDER BY p.folder;
END $$;
SELECT * FROM pg_temp.parse_all();

-- ------------------------------------------------------------ JMA telegrams
-- 震度速報 (VXSE51): area level only
WITH m AS (SELECT _parse_feed_document('jma', pg_temp.doc('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')) -> 'events' -> 0 AS e)
SELECT e ->> 'source_event_id' AS event_id, e ->> 'product' AS product, e ->> 'kind' AS kind, e ->> 'status' AS status,
       e ->> 'info_type' AS info_type, e -> 'serial' AS serial, e ->> 'issued_at' AS issued_at,
       e ->> 'max_shindo' AS max_shindo, e ->> 'detail_level' AS detail, jsonb_array_length(e -> 'intensities') AS n
FROM m;
SELECT x ->> 'scope' AS scope, x ->> 'code' AS code, x ->> 'name' AS name, x ->> 'shindo' AS shindo
FROM jsonb_array_elements(_parse_feed_document('jma', pg_temp.doc('jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')) -> 'events' -> 0 -> 'intensities') x
WHERE x ->> 'scope' = 'area' AND (x ->> 'shindo')::shindo >= '5-';

-- 震源に関する情報 (VXSE52): hypocentre, magnitude, ISO 6709 coordinate
SELECT e ->> 'epicenter_name' AS epicenter, e ->> 'epicenter_code' AS code, e ->> 'lat' AS lat, e ->> 'lon' AS lon,
       e ->> 'depth_km' AS depth_km, e ->> 'magnitude' AS magnitude, e ->> 'origin_time' AS origin_time,
       e -> 'intensities' AS intensities
FROM (SELECT _parse_feed_document('jma', pg_temp.doc('jma/VXSE52_20210219_iwate.xml')) -> 'events' -> 0 AS e) m;

-- 震源・震度に関する情報 (VXSE53): municipalities and stations
WITH e AS (SELECT _parse_feed_document('jma', pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml')) -> 'events' -> 0 AS e)
SELECT e ->> 'source_event_id' AS event_id, e -> 'serial' AS serial, e ->> 'max_shindo' AS max_shindo,
       e ->> 'detail_level' AS detail,
       (SELECT count(*) FROM jsonb_array_elements(e -> 'intensities') x WHERE x ->> 'scope' = 'city') AS cities,
       (SELECT count(*) FROM jsonb_array_elements(e -> 'intensities') x WHERE x ->> 'scope' = 'station') AS stations
FROM e;
SELECT x ->> 'scope' AS scope, x ->> 'code' AS code, x ->> 'name' AS name, x ->> 'shindo' AS shindo
FROM jsonb_array_elements(_parse_feed_document('jma', pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml')) -> 'events' -> 0 -> 'intensities') x
WHERE (x ->> 'shindo')::shindo >= '3' ORDER BY 1, 2;
-- ごく浅い (+0) and deep (−120 km); OriginTime differs from ArrivalTime
SELECT e ->> 'epicenter_name' AS epicenter, e ->> 'depth_km' AS depth_km, e ->> 'depth_text' AS depth_text,
       e ->> 'origin_time' AS origin_time, e ->> 'arrival_time' AS arrival_time, e ->> 'magnitude' AS m
FROM (SELECT _parse_feed_document('jma', pg_temp.doc(f)) -> 'events' -> 0 AS e
      FROM unnest(ARRAY['jma/VXSE53_20260805_1724_kumamoto_very_shallow_maxint1.xml',
                        'jma/VXSE53_20260805_1806_tokyo23ku_deep120km_maxint1.xml']) f) m;
-- a foreign quake: no intensity, depth unknown, southern latitude
SELECT e ->> 'title' AS title, e -> 'foreign' AS foreign, e ->> 'lat' AS lat, e ->> 'lon' AS lon,
       e -> 'depth_km' AS depth_km, e ->> 'magnitude' AS m, e ->> 'detail_level' AS detail
FROM (SELECT _parse_feed_document('jma', pg_temp.doc('jma/VXSE53_20231120_foreign_new-guinea_serial1.xml')) -> 'events' -> 0 AS e) m;
-- VXSE61: the degree coordinate, not the degree-minute one
SELECT e ->> 'product' AS product, e ->> 'lat' AS lat, e ->> 'lon' AS lon, e ->> 'depth_km' AS depth_km, e ->> 'magnitude' AS m
FROM (SELECT _parse_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE61_sample_20080614_hypocenter_update__32-35_06_09.xml')) -> 'events' -> 0 AS e) m;
-- 取消, 訓練 and magnitude NaN
SELECT f, e ->> 'product' AS product, e ->> 'status' AS status, e ->> 'info_type' AS info_type, e -> 'serial' AS serial,
       e -> 'cancelled' AS cancelled, e -> 'magnitude' AS m, e ->> 'magnitude_text' AS m_text
FROM (SELECT f, _parse_feed_document('jma', pg_temp.doc('jma/' || f)) -> 'events' -> 0 AS e
      FROM unnest(ARRAY['official_samples/VXSE51_sample_20220509_CANCEL__32-35_10_01.xml',
                        'official_samples/VXSE53_sample_20080614_CANCEL_serial3__32-35_06_06.xml',
                        'official_samples/VTSE41_sample_20210805_CANCEL__38-39_03_01.xml',
                        'official_samples/VXSE52_sample_TRAINING_status__32-35_01_02.xml',
                        'VTSE41_20231009_torishima_tsunami_advisory_first.xml']) f) m;
-- 津波警報 (VTSE41): warned areas and kinds; two EventIDs in one telegram
SELECT x ->> 'code' AS code, x ->> 'name' AS name, x ->> 'kind_code' AS kind, x ->> 'kind_name' AS kind_name,
       x ->> 'last_kind_code' AS last, x ->> 'max_height_m' AS height_m, x ->> 'first_arrival' AS arrival
FROM jsonb_array_elements(_parse_feed_document('jma', pg_temp.doc('jma/VTSE41_20240101_noto_major_tsunami_warning.xml')) -> 'events' -> 0 -> 'tsunami') x
WHERE x ->> 'kind_code' IN ('52', '53') OR x ->> 'code' = '240';
SELECT e ->> 'source_event_id' AS event_id, e -> 'related_event_ids' AS related,
       (SELECT array_agg(DISTINCT x ->> 'kind_code') FROM jsonb_array_elements(e -> 'tsunami') x) AS kinds
FROM (SELECT _parse_feed_document('jma', pg_temp.doc('jma/official_samples/VTSE41_sample_20151114_two_eventids_lifted__38-39_02_04.xml')) -> 'events' -> 0 AS e) m;
-- 緊急地震速報 (VXSE43): forecast lower bounds per area
SELECT e ->> 'kind' AS kind, e -> 'serial' AS serial, e ->> 'max_shindo' AS max_from,
       (SELECT jsonb_agg(jsonb_build_array(x ->> 'code', x ->> 'shindo')) FROM jsonb_array_elements(e -> 'intensities') x) AS areas
FROM (SELECT _parse_feed_document('jma', pg_temp.doc('jma/VXSE43_20240116_noto-oki_eew_warning.xml')) -> 'events' -> 0 AS e) m;
-- 震度５弱以上未入電: a municipality whose stations did not all report
SELECT x ->> 'code' AS code, x ->> 'shindo' AS shindo, x -> 'incomplete' AS incomplete
FROM jsonb_array_elements(_parse_feed_document('jma', convert_to(replace(
         convert_from(pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml'), 'UTF8'),
         '<City><Name>八幡平市</Name><Code>0321400</Code><MaxInt>2</MaxInt>',
         '<City><Name>八幡平市</Name><Code>0321400</Code><MaxInt>2</MaxInt><Condition>震度５弱以上未入電</Condition>'), 'UTF8'))
     -> 'events' -> 0 -> 'intensities') x
WHERE x ->> 'scope' = 'city' AND x ->> 'code' IN ('0321300', '0321400');

-- ------------------------------------------------------------ Atom feeds
SELECT count(*) AS entries, count(*) FILTER (WHERE e ->> 'product' = 'VXSE53') AS vxse53,
       count(*) FILTER (WHERE e ->> 'product' = 'VXSE51') AS vxse51,
       count(*) FILTER (WHERE e ->> 'product' = 'VTSE41') AS vtse41,
       min(e ->> 'updated') AS oldest, max(e ->> 'updated') AS newest
FROM jsonb_array_elements(_parse_feed_document('jma_atom', pg_temp.doc('jma/atom_eqvol_20240101T2053_noto_capture.xml')) -> 'entries') e;
SELECT e ->> 'url' AS url, e ->> 'title' AS title, e ->> 'product' AS product, e ->> 'author' AS author
FROM jsonb_array_elements(_parse_feed_document('jma_atom', pg_temp.doc('jma/atom_eqvol_20211112T1049_capture.xml')) -> 'entries') e
WHERE e ->> 'product' LIKE 'VX%';

-- ------------------------------------------------------------ P2PQuake
SELECT count(*) AS events, count(DISTINCT e ->> 'source_event_id') AS quakes,
       string_agg(DISTINCT e ->> 'product', ',') AS products
FROM jsonb_array_elements(_parse_feed_document('p2pquake', pg_temp.doc('p2pquake/history_551_20260804-05.json')) -> 'events') e;
SELECT e ->> 'source_event_id' AS id, e ->> 'message_id' AS message, e ->> 'issued_at' AS issued_at,
       e ->> 'origin_time' AS origin_time, e ->> 'epicenter_name' AS epicenter, e ->> 'depth_km' AS depth,
       e ->> 'magnitude' AS m, e ->> 'max_shindo' AS max, e -> 'intensities' AS points
FROM (SELECT _parse_feed_document('p2pquake', pg_temp.doc('p2pquake/history_551_20260804-05.json')) -> 'events' -> 0 AS e) m;
SELECT e ->> 'product' AS product, e ->> 'max_shindo' AS max, e -> 'lat' AS lat, e -> 'magnitude' AS m,
       (SELECT jsonb_agg(jsonb_build_array(x ->> 'scope', x ->> 'name', x ->> 'shindo')) FROM jsonb_array_elements(e -> 'intensities') x) AS points
FROM (SELECT _parse_feed_document('p2pquake', pg_temp.doc('p2pquake/epsp_converted_from_jmaxml/551body_20210217_fukushima-oki_ScalePrompt__from_VXSE51.json')) -> 'events' -> 0 AS e) m;
SELECT e ->> 'kind' AS kind, e ->> 'source_event_id' AS event_id, e -> 'serial' AS serial, e ->> 'max_shindo' AS max,
       e -> 'cancelled' AS cancelled, e ->> 'status' AS status
FROM jsonb_array_elements(_parse_feed_document('p2pquake', pg_temp.doc('p2pquake/history_556_eew_20260728-29.json')) -> 'events') e;
SELECT e ->> 'kind' AS kind, e -> 'lifted' AS lifted,
       (SELECT jsonb_agg(jsonb_build_array(x ->> 'name', x ->> 'kind_code', x ->> 'max_height_m')) FROM jsonb_array_elements(e -> 'tsunami') x) AS areas
FROM jsonb_array_elements(_parse_feed_document('p2pquake', pg_temp.doc('p2pquake/epsp_converted_from_jmaxml/552body_20231009_torishima_advisory__from_VTSE41.json')) -> 'events') e;

-- ------------------------------------------------------------ USGS
SELECT e ->> 'source_event_id' AS id, e ->> 'origin_time' AS origin_time, e ->> 'issued_at' AS updated,
       e ->> 'lat' AS lat, e ->> 'lon' AS lon, e ->> 'depth_km' AS depth, e ->> 'magnitude' AS m,
       e ->> 'epicenter_name' AS place, e -> 'aliases' AS aliases
FROM jsonb_array_elements(_parse_feed_document('usgs', pg_temp.doc('usgs/summary_4.5_day_20240206.geojson')) -> 'events') WITH ORDINALITY x(e, n)
WHERE n <= 2;
SELECT e ->> 'source_event_id' AS id, e ->> 'magnitude' AS m, e ->> 'shakemap_max_mmi' AS max_mmi,
       e ->> 'product' AS product, jsonb_array_length(e -> 'aliases') AS aliases
FROM (SELECT _parse_feed_document('usgs', pg_temp.doc('usgs/detail_usp000hvnu_2011_tohoku_M9.geojson')) -> 'events' -> 0 AS e) m;

-- ------------------------------------------------------------ storing events
SELECT ingest_feed_document('jma', pg_temp.doc('jma/VXSE51_20210219_iwate_maxint4.xml')) AS vxse51,
       ingest_feed_document('jma', pg_temp.doc('jma/VXSE52_20210219_iwate.xml')) AS vxse52,
       ingest_feed_document('jma', pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml')) AS vxse53;
-- the same documents again change nothing
SELECT ingest_feed_document('jma', pg_temp.doc('jma/VXSE51_20210219_iwate_maxint4.xml'))
     + ingest_feed_document('jma', pg_temp.doc('jma/VXSE52_20210219_iwate.xml'))
     + ingest_feed_document('jma', pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml')) AS changed_on_replay;
SELECT source, source_event_id, kind, status, origin_time, epicenter_name, lat, lon, depth_km, magnitude, max_shindo,
       revision, best_product, detail_level
FROM disaster_event WHERE source_event_id = '20210219181113';
SELECT scope, count(*) AS n, max(shindo) AS max FROM event_intensity i JOIN disaster_event e USING (event_id)
WHERE e.source_event_id = '20210219181113' GROUP BY scope ORDER BY scope;
-- a re-issued 震度速報 replaces the first (宮崎県南部平野部 3 → 4); an older one arriving late is ignored
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE51_sample_20100125_1615_osumi_maxint4__32-35_04_02.xml')) AS first,
       ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE51_sample_20100125_1615_osumi_2nd_issue__32-35_04_05.xml')) AS reissue,
       ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE51_sample_20100125_1615_osumi_maxint4__32-35_04_02.xml')) AS late_old;
SELECT i.code, i.name, i.shindo FROM event_intensity i JOIN disaster_event e USING (event_id)
WHERE e.source_event_id = '20100125161517' AND i.scope = 'area' ORDER BY i.code;
-- the VXSE53 serial 1 is more detailed: its intensities take over
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE52_sample_20100125_1615_osumi__32-35_04_03.xml'))
     + ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE53_sample_20100125_1615_osumi_serial1__32-35_04_04.xml')) AS changed;
SELECT epicenter_name, magnitude, depth_km, max_shindo, best_product, detail_level, revision
FROM disaster_event WHERE source_event_id = '20100125161517';
-- 取消: the event is withdrawn
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE52_sample_20080614_iwate-miyagi__32-35_06_01.xml')) AS issued,
       ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE52_sample_20080614_CANCEL__32-35_06_02.xml')) AS cancelled;
SELECT source_event_id, status, magnitude, revision FROM disaster_event WHERE source_event_id = '20080614084350';
-- training and tsunami
SELECT ingest_feed_document('jma', pg_temp.doc('jma/official_samples/VXSE52_sample_TRAINING_status__32-35_01_02.xml')) AS training,
       ingest_feed_document('jma', pg_temp.doc('jma/VTSE41_20240101_noto_major_tsunami_warning.xml')) AS tsunami;
SELECT kind, status, epicenter_name, magnitude FROM disaster_event
WHERE status = 'training' OR kind = 'tsunami' ORDER BY kind;
SELECT code, name, kind_code, kind_name, max_height_m FROM event_tsunami WHERE kind_code IN ('52', '53');
-- P2PQuake: names mapped to JMA codes; a DetailScale's stations give their municipalities
SELECT ingest_feed_document('p2pquake', pg_temp.doc('p2pquake/history_551_20260804-05.json')) AS p2p_events;
SELECT ingest_feed_document('p2pquake', pg_temp.doc('p2pquake/history_551_20260804-05.json')) AS p2p_replay;
SELECT e.source_event_id, e.epicenter_name, e.max_shindo, i.scope, i.code, i.name, i.shindo
FROM disaster_event e JOIN event_intensity i USING (event_id)
WHERE e.source = 'p2pquake' AND e.source_event_id = '20260805180600' ORDER BY i.scope, i.code;
SELECT count(*) FILTER (WHERE i.code IS NULL) AS unmapped, count(*) AS points
FROM disaster_event e JOIN event_intensity i USING (event_id) WHERE e.source = 'p2pquake';
-- USGS: a summary feed and a detail document
SELECT ingest_feed_document('usgs', pg_temp.doc('usgs/summary_4.5_day_20240206.geojson')) AS usgs,
       ingest_feed_document('usgs', pg_temp.doc('usgs/summary_4.5_day_20240206.geojson')) AS usgs_replay,
       ingest_feed_document('usgs', pg_temp.doc('usgs/detail_usp000hvnu_2011_tohoku_M9.geojson')) AS tohoku;
SELECT source_event_id, magnitude, depth_km, extra ->> 'shakemap_max_mmi' AS max_mmi, cardinality(aliases) AS aliases
FROM disaster_event WHERE source = 'usgs' AND magnitude >= 5 ORDER BY magnitude DESC;

-- ------------------------------------------------------------ bad documents
CREATE TEMP TABLE counts AS SELECT (SELECT count(*) FROM event) AS events, (SELECT count(*) FROM event_product) AS products;
-- truncated XML
SELECT ingest_feed_document('jma', substring(pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml') FOR 3000));
-- not XML at all, empty, and a well-formed document that is not a telegram
SELECT ingest_feed_document('jma', 'hello');
SELECT ingest_feed_document('jma', ''::bytea);
SELECT ingest_feed_document('jma', '<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>');
-- external entities and entity expansion: any DTD is refused before it is read
SELECT ingest_feed_document('jma', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Report xmlns="http://xml.kishou.go.jp/jmaxml1/">&x;</Report>');
SELECT ingest_feed_document('jma', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><Report xmlns="http://xml.kishou.go.jp/jmaxml1/">&d;&d;&d;&d;</Report>');
-- Shift_JIS bytes, and a UTF-8 body that declares another encoding
SELECT ingest_feed_document('jma', convert_to(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), 'SJIS'));
SELECT ingest_feed_document('jma', '<?xml version="1.0" encoding="Shift_JIS"?><Report xmlns="http://xml.kishou.go.jp/jmaxml1/"/>');
-- a product we do not handle, a bad EventID, a bad intensity, a bad time
SELECT ingest_feed_document('jma', replace(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), '<Title>震源に関する情報</Title>', '<Title>降灰予報（定時）</Title>'));
SELECT ingest_feed_document('jma', replace(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), '<EventID>20210219181113</EventID>', '<EventID>2021-02-19</EventID>'));
SELECT ingest_feed_document('jma', replace(convert_from(pg_temp.doc('jma/VXSE51_20210219_iwate_maxint4.xml'), 'UTF8'), '<MaxInt>4</MaxInt>', '<MaxInt>8</MaxInt>'));
SELECT ingest_feed_document('jma', replace(convert_from(pg_temp.doc('jma/VXSE52_20210219_iwate.xml'), 'UTF8'), '2021-02-19T09:13:54Z', 'yesterday'));
-- JSON of the wrong shape and types
SELECT ingest_feed_document('p2pquake', '{"code": 551, "issue": {"type": "DetailScale", "time": "2026/08/05 18:08:58"}, "earthquake": {"time": 20260805}}');
SELECT ingest_feed_document('p2pquake', '[{"code": 551, "issue": {"type": "DetailScale", "time": "2026/08/05 18:08:58"}, "earthquake": {"time": "2026/08/05 18:06:00", "maxScale": 10}, "points": [{"addr": "x", "isArea": "no", "scale": 10}]}]');
SELECT ingest_feed_document('p2pquake', '{"code": 551, "issue": {"type": "DetailScale", "time": "2026/08/05 18:08:58"}, "earthquake": {"time": "2026/08/05 18:06:00", "maxScale": 35}, "points": []}');
SELECT ingest_feed_document('p2pquake', '"just a string"');
SELECT ingest_feed_document('p2pquake', '{"code": 551, "code": 552}');
SELECT ingest_feed_document('usgs', '{"type": "FeatureCollection", "features": [{"type": "Feature", "id": "x1", "properties": {"mag": "big", "updated": 1}}]}');
SELECT ingest_feed_document('usgs', '{"type": "Topology"}');
SELECT ingest_feed_document('usgs', left(convert_from(pg_temp.doc('usgs/summary_all_hour_20240727.geojson'), 'UTF8'), 500));
-- too large (the limit is a GUC), unknown source, NULLs, an Atom feed
SET status_checker.max_feed_bytes = '4kB';
SELECT ingest_feed_document('jma', pg_temp.doc('jma/VXSE53_20210219_iwate_maxint4.xml'));
RESET status_checker.max_feed_bytes;
SELECT ingest_feed_document('jma', convert_to(repeat(' ', 50 * 1024 * 1024), 'UTF8'));
SELECT ingest_feed_document('kml', 'x');
SELECT ingest_feed_document(NULL, 'x'::text);
SELECT ingest_feed_document('jma', NULL::bytea);
SELECT ingest_feed_document('jma_atom', pg_temp.doc('jma/atom_eqvol_20211112T1049_capture.xml'));
-- nothing was stored by any of them
SELECT (SELECT count(*) FROM event) - events AS new_events, (SELECT count(*) FROM event_product) - products AS new_products FROM counts;
