-- src/sites/contacts.sql — adding contacts (one by one, or with an import).
--
-- Since 0.4.0 a contact's address and name are stored encrypted
-- (src/security/encryption.sql encrypts them as they are written), and
-- "the same address again" is recognised by a blind index (address_key),
-- not by the address itself.  Written with CREATE OR REPLACE: the same
-- text serves the install script and the upgrade from 0.3.0.

CREATE OR REPLACE FUNCTION status_checker.add_site_contact(tenant_id bigint, site_code text, channel text, address text, name text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
ALTER FUNCTION status_checker.add_site_contact(bigint, text, text, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.add_site_contact(bigint, text, text, text, text) TO status_checker_admin;

-- The data lines of a sites CSV (after its header line), parsed by the header (lower-cased, trimmed):
-- fields by column, the other columns as attributes, and the coordinates
-- where they are numbers.  Read by each statement of import_sites that
-- needs them (the CSV is parsed in C, quickly), instead of a temporary table
-- (0.10.1: a SECURITY DEFINER function makes no temporary object).
CREATE OR REPLACE FUNCTION status_checker._import_rows(csv bytea, header text[], header_line integer)
    RETURNS TABLE (line integer, error text, nfields integer, code text, name text, group_path text,
                   municipality_code text, lat_text text, lon_text text, address text, contact_email text,
                   attributes jsonb, lat double precision, lon double precision)
    LANGUAGE sql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT i.line, i.error, i.nfields, i.code, i.name, i.group_path, i.municipality_code, i.lat_text, i.lon_text,
           i.address, i.contact_email, i.attributes,
           CASE WHEN i.error IS NULL AND i.lat_text ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN i.lat_text::double precision END,
           CASE WHEN i.error IS NULL AND i.lon_text ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$' THEN i.lon_text::double precision END
    FROM (
        SELECT r.line, r.error, cardinality(r.fields) AS nfields,
               nullif(btrim(r.fields[array_position(header, 'code')]), '') AS code,
               nullif(btrim(r.fields[array_position(header, 'name')]), '') AS name,
               nullif(btrim(r.fields[array_position(header, 'group_path')], ' /'), '') AS group_path,
               nullif(btrim(r.fields[array_position(header, 'municipality_code')]), '') AS municipality_code,
               nullif(btrim(r.fields[array_position(header, 'lat')]), '') AS lat_text,
               nullif(btrim(r.fields[array_position(header, 'lon')]), '') AS lon_text,
               nullif(btrim(r.fields[array_position(header, 'address')]), '') AS address,
               nullif(btrim(r.fields[array_position(header, 'contact_email')]), '') AS contact_email,
               coalesce((SELECT jsonb_object_agg(h.col, r.fields[h.i])
                         FROM unnest(header) WITH ORDINALITY AS h(col, i)
                         WHERE h.col <> ALL (ARRAY['code', 'name', 'group_path', 'municipality_code', 'lat', 'lon',
                                                   'address', 'contact_email'])
                           AND coalesce(r.fields[h.i], '') <> ''), '{}') AS attributes
        FROM status_checker._csv_records(csv) r
        WHERE r.line > header_line
    ) i
$$;
COMMENT ON FUNCTION status_checker._import_rows(bytea, text[], integer) IS
'Internal (import_sites): the data lines of a sites CSV by the header''s columns, with the coordinates that are numbers';

-- import_sites: all or nothing; every bad line is listed in one error.
CREATE OR REPLACE FUNCTION status_checker.import_sites(tenant_id bigint, csv bytea)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    required_cols constant text[] := ARRAY['code', 'name', 'municipality_code', 'lat', 'lon'];
    known_cols constant text[] := ARRAY['code', 'name', 'group_path', 'municipality_code', 'lat', 'lon', 'address', 'contact_email'];
    header text[];
    header_line integer;
    missing text[];
    dup text;
    v_problems text[];
    n integer;
    gp text;
BEGIN
    PERFORM status_checker._no_nulls('import_sites', ARRAY['tenant_id', 'csv'], ARRAY[import_sites.tenant_id::text, nullif((import_sites.csv IS NOT NULL)::text, 'false')]);
    PERFORM status_checker._require_tenant(import_sites.tenant_id);

    SELECT r.line, r.fields, r.error INTO header_line, header, dup FROM status_checker._csv_records(import_sites.csv) r ORDER BY r.line LIMIT 1;
    IF header IS NULL THEN
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
    dup := NULL;
    SELECT h INTO dup FROM unnest(header) h GROUP BY h HAVING count(*) > 1 LIMIT 1;
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'import_sites: column % appears twice in the header', dup
            USING ERRCODE = 'invalid_text_representation';
    END IF;

    -- per-line checks, and codes that appear twice (every line after the first)
    v_problems := ARRAY(
        SELECT format('line %s: %s', x.line, array_to_string(x.problems, '; '))
        FROM (
            SELECT i.line,
                   coalesce(CASE
                       WHEN i.error IS NOT NULL THEN ARRAY[i.error]
                       WHEN i.nfields <> cardinality(header) THEN
                           ARRAY[format('has %s fields, the header has %s', i.nfields, cardinality(header))]
                       ELSE
                           -- "both or neither" is not said again of a coordinate that is not a number
                           array_remove(coalesce(status_checker._site_problems(i.code, i.name, i.municipality_code, i.lat, i.lon), '{}'),
                                        CASE WHEN (i.lat_text IS NOT NULL AND i.lat IS NULL) OR (i.lon_text IS NOT NULL AND i.lon IS NULL)
                                             THEN 'give both lat and lon, or neither' END)
                           || CASE WHEN i.lat_text IS NOT NULL AND i.lat IS NULL THEN ARRAY[format('latitude %L is not a number', i.lat_text)] ELSE '{}' END
                           || CASE WHEN i.lon_text IS NOT NULL AND i.lon IS NULL THEN ARRAY[format('longitude %L is not a number', i.lon_text)] ELSE '{}' END
                           || CASE WHEN i.municipality_code IS NULL THEN ARRAY['municipality code is empty'] ELSE '{}' END
                           || CASE WHEN i.contact_email IS NOT NULL AND NOT status_checker._email_ok(i.contact_email)
                                   THEN ARRAY[format('invalid contact email %L', i.contact_email)] ELSE '{}' END
                           || CASE WHEN i.group_path IS NOT NULL AND (i.group_path ~ '//' OR length(i.group_path) > 1000)
                                   THEN ARRAY[format('invalid group path %L', i.group_path)] ELSE '{}' END
                   END, '{}')
                   || CASE WHEN i.code IS NOT NULL AND i.line > min(i.line) OVER (PARTITION BY i.code)
                           THEN ARRAY[format('duplicate site code %L (also on line %s)', i.code, min(i.line) OVER (PARTITION BY i.code))]
                           ELSE '{}' END AS problems
            FROM status_checker._import_rows(import_sites.csv, header, header_line) i
        ) x
        WHERE cardinality(x.problems) > 0
        ORDER BY x.line);
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'import_sites: % bad line(s); nothing was imported', cardinality(v_problems)
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = array_to_string(v_problems, E'\n');
    END IF;

    -- groups, then sites, then contacts
    FOR gp IN SELECT DISTINCT i.group_path FROM status_checker._import_rows(import_sites.csv, header, header_line) i
              WHERE i.group_path IS NOT NULL ORDER BY 1 LOOP
        PERFORM status_checker._ensure_group_path(import_sites.tenant_id, gp);
    END LOOP;

    INSERT INTO status_checker.site AS s
        (tenant_id, code, name, municipality_code, lat, lon, group_id, address, attributes)
    SELECT import_sites.tenant_id, i.code, i.name,
           status_checker.normalize_municipality_code(i.municipality_code), i.lat, i.lon,
           g.group_id, i.address, i.attributes
    FROM status_checker._import_rows(import_sites.csv, header, header_line) i
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
    FROM status_checker._import_rows(import_sites.csv, header, header_line) i
    JOIN status_checker.site s ON s.tenant_id = import_sites.tenant_id AND s.code = i.code
    WHERE i.contact_email IS NOT NULL
    ON CONFLICT (tenant_id, site_id, channel, address_key) DO NOTHING;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.import_sites(bigint, bytea) IS
'Import sites from CSV bytes (UTF-8; lines with invalid UTF-8 are reported by number). Same rules as import_sites(bigint, text)';
ALTER FUNCTION status_checker.import_sites(bigint, bytea) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.import_sites(bigint, bytea) TO status_checker_admin;

CREATE OR REPLACE FUNCTION status_checker.import_sites(tenant_id bigint, csv text)
    RETURNS integer
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN status_checker.import_sites(tenant_id, convert_to(csv, 'UTF8'));
COMMENT ON FUNCTION status_checker.import_sites(bigint, text) IS
'Import sites from CSV with header code,name,group_path,municipality_code,lat,lon,address,contact_email '
'(code, name, municipality_code, lat, lon required; other columns become attributes); groups in group_path '
'(関東/東京支店) are created as needed. All or nothing: the error lists every bad line. Returns sites created or updated';
ALTER FUNCTION status_checker.import_sites(bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.import_sites(bigint, text) TO status_checker_admin;
