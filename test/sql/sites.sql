-- tenants, users, site groups, sites, contacts, JMA area codes
SET search_path = status_checker, public;
\set SHOW_CONTEXT never

-- JMA's code table: a small inline sample, then errors
SELECT load_jma_area_codes(E'350,東京都２３区,とうきょうとにじゅうさんく,1310100,東京千代田区,とうきょうちよだく,1310100,東京千代田区大手町,とうきょうちよだくおおてまち\n'
    '350,東京都２３区,とうきょうとにじゅうさんく,1310100,東京千代田区,とうきょうちよだく,1310134,東京千代田区富士見,とうきょうちよだくふじみ\n'
    '390,石川県能登,いしかわけんのと,1720400,輪島市,わじまし,1720420,輪島市門前町走出,わじましもんぜんまちはしりで\n'
    '391,石川県加賀,いしかわけんかが,1720100,金沢市,かなざわし,1720120,金沢市西念,かなざわしさいねん\n');
SELECT code, name, area_code FROM jma_municipality ORDER BY code;
SELECT load_jma_area_codes(E'350,x,y,131010,z,w,1310100,a,b\n390,石川県能登,,1720400,輪島市,,1720420,輪島,\n391,石川県加賀,k,1720400,輪島市,w,1720421,s,t\n12,short\n');
SELECT load_jma_area_codes('');
SELECT count(*) AS still_loaded FROM jma_station;
-- the real table, read from SC_FIXTURES at run time (the project does not ship it)
\getenv fixtures SC_FIXTURES
\set jma_csv `cat :'fixtures'/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv`
SELECT load_jma_area_codes(:'jma_csv') AS rows_loaded;
SELECT (SELECT count(*) FROM jma_area) AS areas, (SELECT count(*) FROM jma_municipality) AS municipalities,
       (SELECT count(*) FROM jma_station) AS stations;
SELECT m.code, m.name, a.code AS area, a.name AS area_name FROM jma_municipality m JOIN jma_area a ON a.code = m.area_code
WHERE m.code IN ('1310100', '1720400', '4220201', '4220202', '0110100') ORDER BY m.code;

-- municipality codes
SELECT normalize_municipality_code('1310100'), normalize_municipality_code('131016'), normalize_municipality_code('011002');
SELECT normalize_municipality_code('131017');
SELECT normalize_municipality_code('13101');
SELECT normalize_municipality_code('4810100');
SELECT normalize_municipality_code('13-1010');

-- tenants and users
SELECT create_tenant('株式会社北陸製作所', 'admin', 'admin@hokuriku.example') AS t1;
SELECT create_tenant('東京商事', 'root', 'root@tokyo.example') AS t2;
SELECT tenant_id, login, email, role FROM user_list ORDER BY user_id;
SELECT add_user(1, 'manager1', 'm1@hokuriku.example', 'manager');
SELECT add_user(1, 'viewer1', 'v1@hokuriku.example', 'viewer');
SELECT add_user(1, 'x', 'x@hokuriku.example', 'owner');
SELECT add_user(1, 'manager1', 'other@hokuriku.example', 'manager');
SELECT add_user(1, 'bad login', 'b@hokuriku.example', 'viewer');
SELECT add_user(1, 'nomail', 'not-an-email', 'viewer');
SELECT add_user(99, 'ghost', 'g@example.com', 'viewer');
SELECT create_tenant('  ', 'a', 'a@example.com');
SELECT create_tenant('no admin mail', 'a', 'nope');
SELECT count(*) AS tenants_after_failures FROM tenant;

-- groups: any depth, paths kept
SELECT create_site_group(1, '北陸') AS hokuriku;
SELECT create_site_group(1, '石川', 1) AS ishikawa;
SELECT create_site_group(1, '能登営業所', 2) AS noto;
SELECT group_id, parent_id, depth, path, ancestors FROM site_group ORDER BY group_id;
SELECT create_site_group(1, '石川', 1);
SELECT create_site_group(1, 'a/b');
SELECT create_site_group(1, 'x', 999);
SELECT create_site_group(2, 'x', 1);

-- sites
SELECT upsert_site(1, 'WJM01', '輪島営業所', '1720400', 37.39, 136.90, 3, '輪島市河井町', '{"floors": 2}');
SELECT upsert_site(1, 'KNZ01', '金沢工場', '172014', 36.56, 136.65, 2);
SELECT upsert_site(1, 'KNZ01', '金沢第一工場', '1720100', 36.57, 136.66, 2);   -- update by code
SELECT code, name, municipality_code, lat, lon, group_id, attributes FROM site ORDER BY code;
SELECT upsert_site(1, 'BAD1', '不明', '1234567', 35, 135);
SELECT upsert_site(1, 'BAD2', '不明', '9999999', 35, 135);
SELECT upsert_site(1, 'BAD3', '北極', '1310100', 91, 135);
SELECT upsert_site(1, 'BAD4', '片方', '1310100', 35, NULL);
SELECT upsert_site(1, 'bad code', '名前', '1310100', 35, 139);
SELECT upsert_site(1, 'BAD5', '', '1310100', 35, 139);
SELECT upsert_site(1, 'BAD6', '他社グループ', '1310100', 35, 139, 999);
SELECT upsert_site(1, 'BAD7', '属性', '1310100', 35, 139, NULL, NULL, '[1]');
SELECT upsert_site(99, 'BAD8', 'ghost', '1310100', 35, 139);
SELECT count(*) AS sites_after_failures FROM site;

-- contacts
SELECT add_site_contact(1, 'WJM01', 'email', 'wajima@hokuriku.example', '輪島 太郎');
SELECT add_site_contact(1, 'WJM01', 'webhook', 'https://hooks.example.com/wajima');
SELECT add_site_contact(1, 'WJM01', 'email', 'wajima@hokuriku.example') AS same_contact_again;
SELECT add_site_contact(1, 'WJM01', 'fax', '0768-00-0000');
SELECT add_site_contact(1, 'WJM01', 'email', 'no-at-sign');
SELECT add_site_contact(1, 'WJM01', 'webhook', 'ftp://example.com');
SELECT add_site_contact(1, 'NOPE', 'email', 'a@example.com');
SELECT add_site_contact(2, 'WJM01', 'email', 'a@example.com');
SELECT site_code, channel, address, name FROM contact_list ORDER BY contact_id;

-- import_sites: groups created from paths, extra columns become attributes
SELECT import_sites(2, E'code,name,group_path,municipality_code,lat,lon,address,contact_email,floor\n'
    'T001,本社,関東/東京,1310100,35.681,139.767,千代田区丸の内1-1,honsha@tokyo.example,12F\n'
    'T002,"輪島店, 朝市通り",北陸/石川/能登,1720400,37.39,136.90,"輪島市河井町",wajima@tokyo.example,\n'
    'T003,金沢店,北陸/石川,172014,36.56,136.65,,,1F\n');
SELECT code, name, group_path, municipality_code, area_code, area_name, attributes, contacts
FROM site_directory WHERE tenant_id = 2 ORDER BY code;
SELECT path, depth FROM site_group WHERE tenant_id = 2 ORDER BY path;
-- importing again updates, and keeps the attributes
SELECT import_sites(2, E'code,name,municipality_code,lat,lon\nT003,金沢駅前店,1720100,36.578,136.648\n');
SELECT code, name, attributes FROM site WHERE tenant_id = 2 AND code = 'T003';

-- all or nothing: every bad line is listed, nothing changes
SELECT import_sites(2, E'code,name,group_path,municipality_code,lat,lon,address,contact_email\n'
    'N001,新店,関東,1310100,35.6,139.7,,\n'
    'N002,緯度,関東,1310100,95,139.7,,\n'
    'N001,重複,関東,1310100,35.6,139.7,,\n'
    'N003,市町村,関東,1234567,35.6,139.7,,\n'
    'N004,未知,関東,0199999,35.6,139.7,,\n'
    'N005,経度,関東,1310100,35.6,east,,\n'
    'N006,列不足,関東,1310100\n'
    'N007,メール,関東,1310100,35.6,139.7,,a@@b\n'
    ',名前だけ,,1310100,35,139,,\n');
SELECT import_sites(2, E'code,name,lat,lon\nX,y,1,2\n');
SELECT import_sites(2, E'code,name,municipality_code,lat,lon,code\nX,y,1310100,1,2,X\n');
SELECT import_sites(2, '');
SELECT import_sites(2, E'code,name,municipality_code,lat,lon\n"N1,unterminated,1310100,1,2\n');
SELECT import_sites(2, E'code,name,municipality_code,lat,lon\nN1,a"b,1310100,1,2\n');
-- bytes that are not UTF-8 (Shift_JIS 東京) are reported by line
SELECT import_sites(2, convert_to(E'code,name,municipality_code,lat,lon\nN1,ok,1310100,35,139\n', 'UTF8')
                       || '\x4e322c938c8b9e2c313331303130302c33352c3133390a'::bytea);
SELECT import_sites(99, E'code,name,municipality_code,lat,lon\n');
SELECT count(*) AS tenant2_sites, (SELECT count(*) FROM site_group WHERE tenant_id = 2) AS tenant2_groups
FROM site WHERE tenant_id = 2;

-- CRLF line ends and a byte-order mark are fine
SELECT import_sites(2, convert_to(E'\uFEFFcode,name,municipality_code,lat,lon\r\nT004,横浜店,1310100,35.45,139.63\r\n', 'UTF8'));

-- oversize input is refused
SET status_checker.max_import_bytes = 1024;
SELECT import_sites(2, E'code,name,municipality_code,lat,lon\n' || repeat(E'Z,z,1310100,35,139\n', 100));
RESET status_checker.max_import_bytes;
