-- demo/demo.sql — the demo tenant, its sites and its trigger rules (run by run-demo.sh).
-- Variable: codes (the folder with JMA's code tables, in ../shared).
\set ON_ERROR_STOP on
\set jma_csv `cat :'codes'/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv`
\set centroids `cat :'codes'/seis_saibun_area_centroids.json`
\set QUIET on
SET search_path = status_checker, public;

SELECT load_jma_area_codes(:'jma_csv') AS rows \gset
\echo '   JMA code table loaded:' :rows 'stations'

SELECT create_tenant('北陸ものづくり株式会社', 'admin', 'bousai@hokuriku-monozukuri.example') AS tenant \gset
SELECT add_user(:tenant, 'crisis.lead', 'crisis@hokuriku-monozukuri.example', 'manager') AS u \gset

-- 150-odd sites: municipalities of eight prefectures, placed near their JMA area's centroid
CREATE TEMP TABLE centroid AS
SELECT c ->> 'code' AS area_code, (c -> 'centroid' ->> 0)::float8 AS lon, (c -> 'centroid' ->> 1)::float8 AS lat
FROM jsonb_array_elements(:'centroids'::jsonb) c;

CREATE TEMP TABLE pick AS
WITH pref(code, region, branch, prefix, n) AS (VALUES
    ('17', '北陸', '石川', 'ISK', 40), ('16', '北陸', '富山', 'TYM', 18), ('15', '北陸', '新潟', 'NGT', 30),
    ('18', '北陸', '福井', 'FKI', 12), ('13', '関東', '東京', 'TKY', 16), ('27', '関西', '大阪', 'OSK', 16),
    ('23', '中部', '愛知', 'AIC', 16), ('04', '東北', '宮城', 'MYG', 12)),
ranked AS (
    SELECT m.*, p.region, p.branch, p.prefix, p.n,
           row_number() OVER (PARTITION BY p.code ORDER BY hashtext(m.code)) AS k
    FROM jma_municipality m JOIN pref p ON p.code = left(m.code, 2))
SELECT r.code AS municipality_code, r.name AS municipality, r.area_code, r.region, r.branch, r.k,
       r.prefix || lpad(r.k::text, 3, '0') AS site_code,
       row_number() OVER (ORDER BY r.region, r.branch, r.code) AS seq
FROM ranked r WHERE r.k <= r.n;

SELECT import_sites(:tenant, 'code,name,group_path,municipality_code,lat,lon,address,contact_email,kind' || E'\n' ||
    string_agg(format('%s,%s,%s,%s,%s,%s,%s,%s,%s',
        p.site_code,
        p.municipality || (ARRAY['工場', '営業所', '倉庫', '店舗'])[1 + p.seq % 4],
        p.region || '/' || p.branch || '支店',
        p.municipality_code,
        round((c.lat + ((hashtext(p.municipality_code) % 1000) / 20000.0))::numeric, 5),
        round((c.lon + ((hashtext(p.municipality_code || 'x') % 1000) / 20000.0))::numeric, 5),
        p.municipality,
        'site' || p.seq || '@hokuriku-monozukuri.example',
        (ARRAY['factory', 'office', 'warehouse', 'shop'])[1 + p.seq % 4]), E'\n' ORDER BY p.seq)) AS imported
FROM pick p JOIN centroid c ON c.area_code = p.area_code \gset
\echo '   sites imported:' :imported
-- two sites on the Ogasawara islands (小笠原村, JMA code 1342100): where
-- the recorded 大雨特別警報 of 東京都 (the second scenario) falls
SELECT import_sites(:tenant, 'code,name,group_path,municipality_code,lat,lon,address,contact_email,kind' || E'\n' ||
    'TKY901,小笠原村父島出張所,関東/東京支店,1342100,27.09450,142.19170,小笠原村父島,ogasawara1@hokuriku-monozukuri.example,office' || E'\n' ||
    'TKY902,小笠原村母島倉庫,関東/東京支店,1342100,26.64110,142.16140,小笠原村母島,ogasawara2@hokuriku-monozukuri.example,warehouse')
    AS imported \gset
\echo '   sites on the Ogasawara islands (小笠原村):' :imported

SELECT create_form(:tenant, '被害状況報告', default_form_definition('all')) AS form \gset
-- coastal sites on the Noto peninsula lie in the 津波予報区 石川県能登 (360)
UPDATE site SET attributes = attributes || '{"tsunami_area": "360"}'
WHERE tenant_id = :tenant AND municipality_code IN (SELECT code FROM jma_municipality WHERE area_code = '390');

-- nobody creates the request: the rules do, when the feed reports the quake
SELECT create_trigger_rule(:tenant, '震度5弱以上の拠点に被害報告を依頼', :form, '5-',
                           message => '強い揺れを観測しました。各拠点の被害状況を報告してください。') AS rule \gset
SELECT create_trigger_rule(:tenant, '津波警報の沿岸拠点に安否確認', :form, NULL, hazard => 'tsunami') AS tsunami_rule \gset
-- a warning rule: 大雨特別警報 (警戒レベル5) where a site is
SELECT create_trigger_rule(:tenant, '大雨特別警報の拠点に安否確認', :form, hazard => 'rain', min_level => 5,
                           message => '大雨特別警報が発表されました。各拠点の状況を報告してください。') AS rain_rule \gset
\echo '   trigger rules created: 震度5弱 or more (rule' :rule '), tsunami warnings (rule' :tsunami_rule '),'
\echo '   大雨特別警報 (rule' :rain_rule ')'
\set QUIET off
