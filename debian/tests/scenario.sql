-- A short scenario against an installed status_checker, in a new database
-- whose server has a master key (status_checker.master_key_file or _command):
-- run by debian/tests/create-extension (autopkgtest) and by
-- test/integration/package.sh.  Prints "scenario: ok" and the summary, or
-- fails (ON_ERROR_STOP).
\set ON_ERROR_STOP 1
\pset footer off
CREATE EXTENSION status_checker;
SET search_path = status_checker, public;
SELECT create_tenant('パッケージ試験', 'admin', 'admin@example.com') AS tenant \gset
SELECT upsert_site(:tenant, 'S1', '本社', '1310100', 35.68, 139.76) IS NOT NULL AS site_made \gset
SELECT import_sites(:tenant, $csv$code,name,group_path,municipality_code,lat,lon,contact_email
S2,輪島営業所,北陸/石川/能登,1720400,37.39,136.90,wajima@example.com
S3,金沢支店,北陸/石川/加賀,1720100,36.56,136.65,kanazawa@example.com
$csv$) AS imported \gset
SELECT create_form(:tenant, 'f', default_form_definition()) AS form \gset
SELECT create_request(:tenant, :form, 'パッケージ試験', now() + interval '1 hour') AS request \gset
SELECT issue_token(:request, 'S2') AS token \gset
SELECT submit_report(:'token', '{"building": "partial", "detail": "外壁にひび", "injured": 0, "operation": "limited"}') AS report \gset
SELECT set_config('sc.request', :'request', false) AS request_set \gset
DO $$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM status_checker.request_summary WHERE request_id = current_setting('sc.request')::bigint;
    IF s.targets <> 3 OR s.responded <> 1 OR (s.level_counts ->> '1')::int <> 1 THEN
        RAISE EXCEPTION 'unexpected request_summary: targets %, responded %, level_counts %',
            s.targets, s.responded, s.level_counts;
    END IF;
    IF '震度５弱'::status_checker.shindo::text <> '5-' THEN
        RAISE EXCEPTION 'shindo: %', '震度５弱'::status_checker.shindo;
    END IF;
    IF (SELECT address FROM status_checker.contact_list WHERE site_code = 'S2') <> 'wajima@example.com'
       OR (SELECT count(*) FROM status_checker.site_contact WHERE address NOT LIKE 'sc1:%') <> 0 THEN
        RAISE EXCEPTION 'contacts are not encrypted, or do not read back';
    END IF;
END
$$ LANGUAGE plpgsql;
\echo scenario: ok
SELECT extversion, (SELECT concat_ws(' ', targets, responded, level_counts) FROM request_summary WHERE request_id = :request) AS summary
FROM pg_extension WHERE extname = 'status_checker';
