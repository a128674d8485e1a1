-- src/sites/contacts.sql — adding contacts (one by one, or with an import).
--
-- Since 0.4.0 a contact's address and name are stored encrypted
-- (src/security/encryption.sql encrypts them as they are written), and
-- "the same address again" is recognised by a blind index (address_key),
-- not by the address itself.  Written with CREATE OR REPLACE: the same
-- text serves the install script and the upgrade from 0.3.0.

CREATE OR REPLACE FUNCTION status_checker.add_site_contact(tenant_id bigint, site_code text, channel text, address text, name text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_site bigint;
    v_problem text;
    v_id bigint;
BEGIN
    PERFORM status_checker._require_tenant(add_site_contact.tenant_id);
    v_site := status_checker._require_site(add_site_contact.tenant_id, add_site_contact.site_code);
    v_problem := status_checker._contact_problem(add_site_contact.channel, add_site_contact.address);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION '%', v_problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- an address the dispatcher may not connect to is refused now (0.10.1)
    IF add_site_contact.channel = 'webhook' THEN
        PERFORM status_checker._require_destination('webhook URL', add_site_contact.address);
    END IF;
    INSERT INTO status_checker.site_contact AS c (tenant_id, site_id, channel, address, name)
    VALUES (add_site_contact.tenant_id, v_site, add_site_contact.channel, add_site_contact.address, add_site_contact.name)
    ON CONFLICT (tenant_id, site_id, channel, address_key) DO UPDATE
        SET name = coalesce(excluded.name, c.name)
    RETURNING c.contact_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.add_site_contact(bigint, text, text, text, text) IS
'Add (or rename) a contact of a site: channel email (an address) or webhook (a URL); returns the contact id; adding the same address again is a no-op. '
'A webhook URL whose host is an address that is neither public nor in status_checker.allowed_destinations is refused';

-- import_sites: all or nothing; every bad line is listed in one error.
CREATE OR REPLACE FUNCTION status_checker.import_sites(tenant_id bigint, csv bytea)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    required_cols constant text[] := ARRAY['code', 'name', 'municipality_code', 'lat', 'lon'];
    known_cols constant text[] := ARRAY['code', 'name', 'group_path', 'municipality_code', 'lat', 'lon', 'address', 'contact_email'];
    header text[];
    missing text[];
    dup text;
    v_problems text[];
    n integer;
    gp text;
BEGIN
    PERFORM status_checker._no_nulls('import_sites', ARRAY['tenant_id', 'csv'], ARRAY[import_sites.tenant_id::text, nullif((import_sites.csv IS NOT NULL)::text, 'false')]);
    PERFORM status_checker._require_tenant(import_sites.tenant_id);

    IF to_regclass('pg_temp._sc_import_raw') IS NOT NULL THEN DROP TABLE pg_temp._sc_import_raw; END IF;
    CREATE TEMP TABLE _sc_import_raw ON COMMIT DROP AS
        SELECT r.line, r.fields, r.error FROM status_checker._csv_records(import_sites.csv) r;

    SELECT r.fields INTO header FROM pg_temp._sc_import_raw r ORDER BY r.line LIMIT 1;
    IF header IS NULL THEN
        SELECT r.error INTO dup FROM pg_temp._sc_import_raw r ORDER BY r.line LIMIT 1;
        RAISE EXCEPTION 'import_sites: no header row'
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = CASE WHEN dup IS NULL THEN 'The input is empty.' ELSE 'line 1: ' || dup END,
                  HINT = 'The first line names the columns: ' || array_to_string(known_cols, ',');
    END IF;
    header := ARRAY(SELECT lower(btrim(h)) FROM unnest(header) h);
    missing := ARRAY(SELECT c FROM unnest(required_cols) c WHERE c <> ALL (header));
    IF cardinality(missing) > 0 THEN
        RAISE EXCEPTION 'import_sites: the header lacks column(s) %', array_to_string(missing, ', ')
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = format('Header found: %s', array_to_string(header, ',')),
                  HINT = 'Required: code,name,municipality_code,lat,lon; optional: group_path,address,contact_email; other columns become site attributes.';
    END IF;
    SELECT h INTO dup FROM unnest(header) h GROUP BY h HAVING count(*) > 1 LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'import_sites: column % appears twice in the header', dup
            USING ERRCODE = 'invalid_text_representation';
    END IF;

    IF to_regclass('pg_temp._sc_import') IS NOT NULL THEN DROP TABLE pg_temp._sc_import; END IF;
    CREATE TEMP TABLE _sc_import ON COMMIT DROP AS
    SELECT r.line, r.error, cardinality(r.fields) AS nfields,
           nullif(btrim(f.code), '') AS code, nullif(btrim(f.name), '') AS name,
           nullif(btrim(f.group_path, ' /'), '') AS group_path,
           nullif(btrim(f.municipality_code), '') AS municipality_code,
           nullif(btrim(f.lat), '') AS lat_text, nullif(btrim(f.lon), '') AS lon_text,
           nullif(btrim(f.address), '') AS address, nullif(btrim(f.contact_email), '') AS contact_email,
           f.attributes,
           NULL::double precision AS lat, NULL::double precision AS lon, NULL::text[] AS problems
    FROM pg_temp._sc_import_raw r
    CROSS JOIN LATERAL (
        SELECT r.fields[array_position(header, 'code')] AS code,
               r.fields[array_position(header, 'name')] AS name,
               r.fields[array_position(header, 'group_path')] AS group_path,
               r.fields[array_position(header, 'municipality_code')] AS municipality_code,
               r.fields[array_position(header, 'lat')] AS lat,
               r.fields[array_position(header, 'lon')] AS lon,
               r.fields[array_position(header, 'address')] AS address,
               r.fields[array_position(header, 'contact_email')] AS contact_email,
               coalesce((SELECT jsonb_object_agg(h.col, r.fields[h.i])
                         FROM unnest(header) WITH ORDINALITY AS h(col, i)
                         WHERE h.col <> ALL (known_cols) AND coalesce(r.fields[h.i], '') <> ''), '{}') AS attributes
    ) f
    WHERE r.line > (SELECT min(line) FROM pg_temp._sc_import_raw);

    -- per-line checks
    UPDATE pg_temp._sc_import i SET
        lat = CASE WHEN i.lat_text ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN i.lat_text::double precision END,
        lon = CASE WHEN i.lon_text ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN i.lon_text::double precision END
    WHERE i.error IS NULL;
    UPDATE pg_temp._sc_import i SET problems =
        CASE
            WHEN i.error IS NOT NULL THEN ARRAY[i.error]
            WHEN i.nfields <> cardinality(header) THEN
                ARRAY[format('has %s fields, the header has %s', i.nfields, cardinality(header))]
            ELSE nullif(
                coalesce(status_checker._site_problems(i.code, i.name, i.municipality_code, i.lat, i.lon), '{}')
                || CASE WHEN i.lat_text IS NOT NULL AND i.lat IS NULL THEN ARRAY[format('latitude %L is not a number', i.lat_text)] ELSE '{}' END
                || CASE WHEN i.lon_text IS NOT NULL AND i.lon IS NULL THEN ARRAY[format('longitude %L is not a number', i.lon_text)] ELSE '{}' END
                || CASE WHEN i.municipality_code IS NULL THEN ARRAY['municipality code is empty'] ELSE '{}' END
                || CASE WHEN i.contact_email IS NOT NULL AND NOT status_checker._email_ok(i.contact_email)
                        THEN ARRAY[format('invalid contact email %L', i.contact_email)] ELSE '{}' END
                || CASE WHEN i.group_path IS NOT NULL AND (i.group_path ~ '//' OR length(i.group_path) > 1000)
                        THEN ARRAY[format('invalid group path %L', i.group_path)] ELSE '{}' END,
                '{}')
        END;
    -- the lat/lon "both or neither" check must not double-report unparsable numbers
    UPDATE pg_temp._sc_import i SET problems = array_remove(i.problems, 'give both lat and lon, or neither')
    WHERE (i.lat_text IS NOT NULL AND i.lat IS NULL) OR (i.lon_text IS NOT NULL AND i.lon IS NULL);
    UPDATE pg_temp._sc_import i SET problems = i.problems || format('duplicate site code %L (also on line %s)', i.code, d.first_line)
    FROM (SELECT code, min(line) AS first_line FROM pg_temp._sc_import WHERE code IS NOT NULL GROUP BY code HAVING count(*) > 1) d
    WHERE i.code = d.code AND i.line > d.first_line;

    v_problems := ARRAY(SELECT format('line %s: %s', i.line, array_to_string(i.problems, '; '))
                      FROM pg_temp._sc_import i WHERE cardinality(i.problems) > 0 ORDER BY i.line);
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'import_sites: % bad line(s); nothing was imported', cardinality(v_problems)
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = array_to_string(v_problems, E'\n');
    END IF;

    -- groups, then sites, then contacts
    FOR gp IN SELECT DISTINCT i.group_path FROM pg_temp._sc_import i WHERE i.group_path IS NOT NULL ORDER BY 1 LOOP
        PERFORM status_checker._ensure_group_path(import_sites.tenant_id, gp);
    END LOOP;

    INSERT INTO status_checker.site AS s
        (tenant_id, code, name, municipality_code, lat, lon, group_id, address, attributes)
    SELECT import_sites.tenant_id, i.code, i.name,
           status_checker.normalize_municipality_code(i.municipality_code), i.lat, i.lon,
           g.group_id, i.address, i.attributes
    FROM pg_temp._sc_import i
    LEFT JOIN status_checker.site_group g
           ON g.tenant_id = import_sites.tenant_id
          AND g.path = (SELECT string_agg(btrim(p), '/') FROM unnest(string_to_array(i.group_path, '/')) p)
    ORDER BY i.line
    ON CONFLICT ON CONSTRAINT site_tenant_id_code_key DO UPDATE
        SET name = excluded.name, municipality_code = excluded.municipality_code,
            lat = excluded.lat, lon = excluded.lon, group_id = excluded.group_id,
            address = excluded.address, attributes = s.attributes || excluded.attributes,
            updated_at = pg_catalog.now();
    GET DIAGNOSTICS n = ROW_COUNT;

    INSERT INTO status_checker.site_contact (tenant_id, site_id, channel, address)
    SELECT import_sites.tenant_id, s.site_id, 'email', i.contact_email
    FROM pg_temp._sc_import i
    JOIN status_checker.site s ON s.tenant_id = import_sites.tenant_id AND s.code = i.code
    WHERE i.contact_email IS NOT NULL
    ON CONFLICT (tenant_id, site_id, channel, address_key) DO NOTHING;

    DROP TABLE pg_temp._sc_import;
    DROP TABLE pg_temp._sc_import_raw;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.import_sites(bigint, bytea) IS
'Import sites from CSV bytes (UTF-8; lines with invalid UTF-8 are reported by number). Same rules as import_sites(bigint, text)';

CREATE OR REPLACE FUNCTION status_checker.import_sites(tenant_id bigint, csv text)
    RETURNS integer
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN status_checker.import_sites(tenant_id, convert_to(csv, 'UTF8'));
COMMENT ON FUNCTION status_checker.import_sites(bigint, text) IS
'Import sites from CSV with header code,name,group_path,municipality_code,lat,lon,address,contact_email '
'(code, name, municipality_code, lat, lon required; other columns become attributes); groups in group_path '
'(関東/東京支店) are created as needed. All or nothing: the error lists every bad line. Returns sites created or updated';
