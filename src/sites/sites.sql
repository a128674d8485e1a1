-- src/sites/sites.sql — tenants, users, site groups, sites, contacts, and
-- JMA's area code tables (station → municipality → 細分区域).
--
-- Tenant first: every table holding a company's data has tenant_id as the
-- first column of its primary key, and every foreign key between such
-- tables includes tenant_id.  Ids come from one sequence per table, so an
-- id alone is also unique (functions that take only a request_id use that).

-- ---------------------------------------------------------------- tenants

CREATE TABLE status_checker.tenant (
    tenant_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.tenant IS 'A company using status_checker; owns everything else';
ALTER TABLE status_checker.tenant ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.tenant FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.tenant
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.tenant TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.app_user (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    user_id     bigint GENERATED ALWAYS AS IDENTITY,
    login       text NOT NULL,
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('admin', 'manager', 'reporter', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    db_role     name UNIQUE,
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, login)
);
COMMENT ON TABLE status_checker.app_user IS 'People of a tenant who use status_checker, with their role';
COMMENT ON COLUMN status_checker.app_user.db_role IS
'The database login of this user, if the user connects directly (map_db_role); NULL for users who come through a gateway';
ALTER TABLE status_checker.app_user ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.app_user FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.app_user
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.app_user TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.site_group (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    group_id    bigint GENERATED ALWAYS AS IDENTITY,
    parent_id   bigint,
    name        text NOT NULL,
    depth       integer NOT NULL,
    path        text NOT NULL,              -- 関東/東京支店
    ancestors   bigint[] NOT NULL,          -- ids from the root down to this group
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, group_id),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES status_checker.site_group (tenant_id, group_id),
    UNIQUE NULLS NOT DISTINCT (tenant_id, parent_id, name)
);
COMMENT ON TABLE status_checker.site_group IS
'Hierarchy of site groups (region → branch → …) of any depth; path and ancestors are kept for roll-ups';
ALTER TABLE status_checker.site_group ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.site_group FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.site_group
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.site_group TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.site (
    tenant_id          bigint NOT NULL REFERENCES status_checker.tenant,
    site_id            bigint GENERATED ALWAYS AS IDENTITY,
    code               text NOT NULL,
    name               text NOT NULL,
    municipality_code  text CHECK (municipality_code ~ '^[0-9]{7}$'),
    lat                double precision CHECK (lat BETWEEN -90 AND 90),
    lon                double precision CHECK (lon BETWEEN -180 AND 180),
    group_id           bigint,
    address            text,
    attributes         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    created_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, site_id),
    UNIQUE (tenant_id, code),
    FOREIGN KEY (tenant_id, group_id) REFERENCES status_checker.site_group (tenant_id, group_id),
    CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE INDEX ON status_checker.site (tenant_id, group_id);
CREATE INDEX ON status_checker.site (municipality_code);
COMMENT ON TABLE status_checker.site IS
'A facility (拠点・施設) of a tenant: code unique per tenant, JMA municipality code, coordinates, group';
ALTER TABLE status_checker.site ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.site FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.site
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.site TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.site_contact (
    tenant_id   bigint NOT NULL,
    contact_id  bigint GENERATED ALWAYS AS IDENTITY,
    site_id     bigint NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'webhook')),
    address     text NOT NULL,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    address_key bytea NOT NULL,             -- set by the trigger encrypt_contact (src/security/encryption.sql)
    PRIMARY KEY (tenant_id, contact_id),
    FOREIGN KEY (tenant_id, site_id) REFERENCES status_checker.site (tenant_id, site_id) ON DELETE CASCADE,
    -- the address is stored encrypted: the same address is found again by its blind index
    CONSTRAINT site_contact_address_key UNIQUE (tenant_id, site_id, channel, address_key)
);
COMMENT ON TABLE status_checker.site_contact IS 'Who receives a site''s report requests: an email address or a webhook URL';
COMMENT ON COLUMN status_checker.site_contact.address_key IS
'Blind index of the address (HMAC-SHA256 under the tenant''s index key): finds the same address again without storing it in clear';
ALTER TABLE status_checker.site_contact ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.site_contact FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.site_contact
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.site_contact TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------ JMA code tables
-- Global (no tenant).  Loaded from JMA's published table with
-- load_jma_area_codes(); the project does not ship the table itself.

CREATE TABLE status_checker.jma_area (
    code  text PRIMARY KEY CHECK (code ~ '^[0-9]{3}$'),
    name  text NOT NULL,
    kana  text
);
COMMENT ON TABLE status_checker.jma_area IS 'JMA earthquake information areas (地震情報／細分区域), e.g. 390 石川県能登';
GRANT SELECT ON status_checker.jma_area TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.jma_municipality (
    code       text PRIMARY KEY CHECK (code ~ '^[0-9]{7}$'),
    name       text NOT NULL,
    kana       text,
    area_code  text NOT NULL REFERENCES status_checker.jma_area
);
CREATE INDEX ON status_checker.jma_municipality (area_code);
COMMENT ON TABLE status_checker.jma_municipality IS
'JMA municipalities (市町村等, 7-digit codes) and the area each belongs to; JMA''s names, e.g. 東京千代田区';
GRANT SELECT ON status_checker.jma_municipality TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.jma_station (
    code               text PRIMARY KEY CHECK (code ~ '^[0-9]{7}$'),
    name               text NOT NULL,
    kana               text,
    municipality_code  text NOT NULL REFERENCES status_checker.jma_municipality
);
COMMENT ON TABLE status_checker.jma_station IS 'JMA seismic intensity stations (震度観測点) and their municipality';
GRANT SELECT ON status_checker.jma_station TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------------- C helpers

CREATE FUNCTION status_checker.normalize_municipality_code(code text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_normalize_municipality_code';
COMMENT ON FUNCTION status_checker.normalize_municipality_code(text) IS
'JMA 7-digit municipality code from a 7-digit code or a 6-digit JIS code with check digit (131016 → 1310100); raises 22023 when malformed';

CREATE FUNCTION status_checker._municipality_code_problem(code text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_municipality_code_problem';

-- --------------------------------------------------------- checks (SQL)

-- _require_tenant(tenant_id) is in src/security/tenancy.sql (a tenant the caller may not see does not exist).

CREATE FUNCTION status_checker._email_ok(addr text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    RETURN length(addr) <= 254
       AND addr ~ '^[^@[:space:][:cntrl:]<>(),;:"]+@[^@[:space:][:cntrl:]<>(),;:"]+\.[^@[:space:][:cntrl:]<>(),;:".]+$';

-- Problems of one site's fields as text (NULL when fine).  Shared by
-- upsert_site (raises the first) and import_sites (lists them per line).
CREATE FUNCTION status_checker._site_problems(
    p_code text, p_name text, p_municipality_code text, p_lat double precision, p_lon double precision)
    RETURNS text[]
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    problems text[] := '{}';
    mproblem text;
BEGIN
    IF p_code IS NULL OR p_code = '' THEN
        problems := problems || 'site code is empty'::text;
    ELSIF length(p_code) > 64 OR p_code ~ '[[:space:][:cntrl:]/]' THEN
        problems := problems || format('site code %L must have at most 64 characters and no spaces, control characters or "/"', p_code);
    END IF;
    IF p_name IS NULL OR btrim(p_name) = '' THEN
        problems := problems || 'site name is empty'::text;
    ELSIF length(p_name) > 200 THEN
        problems := problems || 'site name is longer than 200 characters'::text;
    END IF;
    IF p_municipality_code IS NOT NULL THEN
        mproblem := status_checker._municipality_code_problem(p_municipality_code);
        IF mproblem IS NOT NULL THEN
            problems := problems || format('municipality code %L %s', p_municipality_code, mproblem);
        ELSIF EXISTS (SELECT 1 FROM status_checker.jma_municipality)
              AND NOT EXISTS (SELECT 1 FROM status_checker.jma_municipality
                              WHERE code = status_checker.normalize_municipality_code(p_municipality_code)) THEN
            problems := problems || format('municipality code %L is unknown to JMA''s table', p_municipality_code);
        END IF;
    END IF;
    IF (p_lat IS NULL) <> (p_lon IS NULL) THEN
        problems := problems || 'give both lat and lon, or neither'::text;
    ELSIF p_lat IS NOT NULL AND (p_lat = 'NaN' OR p_lat NOT BETWEEN -90 AND 90) THEN
        problems := problems || format('latitude %s is outside [-90, 90]', p_lat);
    ELSIF p_lon IS NOT NULL AND (p_lon = 'NaN' OR p_lon NOT BETWEEN -180 AND 180) THEN
        problems := problems || format('longitude %s is outside [-180, 180]', p_lon);
    END IF;
    RETURN CASE WHEN cardinality(problems) = 0 THEN NULL ELSE problems END;
END
$$;

-- ------------------------------------------------------ public functions

CREATE FUNCTION status_checker.add_user(tenant_id bigint, login text, email text, role text)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('add_user', ARRAY['tenant_id', 'login', 'email', 'role'], ARRAY[add_user.tenant_id::text, add_user.login::text, add_user.email::text, add_user.role::text]);
    PERFORM status_checker._require_tenant(add_user.tenant_id);
    IF add_user.role NOT IN ('admin', 'manager', 'reporter', 'viewer') THEN
        RAISE EXCEPTION 'unknown role %', quote_literal(add_user.role)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A role is one of admin, manager, reporter, viewer.';
    END IF;
    IF add_user.login !~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$' THEN
        RAISE EXCEPTION 'invalid login %', quote_literal(add_user.login)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A login has 1 to 100 characters: letters, digits, ".", "_", "@" and "-", starting with a letter or digit.';
    END IF;
    IF NOT status_checker._email_ok(add_user.email) THEN
        RAISE EXCEPTION 'invalid email address %', quote_literal(add_user.email)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM status_checker.app_user u
               WHERE u.tenant_id = add_user.tenant_id AND u.login = add_user.login) THEN
        RAISE EXCEPTION 'login % already exists in tenant %', quote_literal(add_user.login), add_user.tenant_id
            USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO status_checker.app_user (tenant_id, login, email, role)
    VALUES (add_user.tenant_id, add_user.login, add_user.email, add_user.role)
    RETURNING user_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.add_user(bigint, text, text, text) IS
'Add a user to a tenant with role admin, manager, reporter or viewer; returns the user id';
ALTER FUNCTION status_checker.add_user(bigint, text, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.add_user(bigint, text, text, text) TO status_checker_admin;

CREATE FUNCTION status_checker.create_tenant(name text, admin_login text, admin_email text)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_tenant bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_tenant', ARRAY['name', 'admin_login', 'admin_email'], ARRAY[create_tenant.name::text, create_tenant.admin_login::text, create_tenant.admin_email::text]);
    IF btrim(create_tenant.name) = '' OR length(create_tenant.name) > 200 THEN
        RAISE EXCEPTION 'invalid tenant name %', quote_literal(create_tenant.name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A tenant name has 1 to 200 characters and is not blank.';
    END IF;
    INSERT INTO status_checker.tenant (name) VALUES (create_tenant.name)
    RETURNING tenant_id INTO v_tenant;
    PERFORM status_checker.add_user(v_tenant, admin_login, admin_email, 'admin');
    RETURN v_tenant;
END
$$;
COMMENT ON FUNCTION status_checker.create_tenant(text, text, text) IS
'Create a tenant (a company) with its one initial administrator; returns the tenant id';
GRANT EXECUTE ON FUNCTION status_checker.create_tenant(text, text, text) TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.create_site_group(tenant_id bigint, name text, parent_id bigint DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_parent status_checker.site_group;
    v_id bigint;
BEGIN
    PERFORM status_checker._require_tenant(create_site_group.tenant_id);
    IF create_site_group.name IS NULL OR btrim(create_site_group.name) = ''
       OR length(create_site_group.name) > 100 OR strpos(create_site_group.name, '/') > 0 THEN
        RAISE EXCEPTION 'invalid group name %', coalesce(quote_literal(create_site_group.name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A group name has 1 to 100 characters and no "/" (it separates levels in group paths).';
    END IF;
    IF create_site_group.parent_id IS NOT NULL THEN
        SELECT * INTO v_parent FROM status_checker.site_group g
        WHERE g.tenant_id = create_site_group.tenant_id AND g.group_id = create_site_group.parent_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'site group % does not exist in tenant %', create_site_group.parent_id, create_site_group.tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM status_checker.site_group g
               WHERE g.tenant_id = create_site_group.tenant_id
                 AND g.parent_id IS NOT DISTINCT FROM create_site_group.parent_id
                 AND g.name = create_site_group.name) THEN
        RAISE EXCEPTION 'group % already exists', quote_literal(coalesce(v_parent.path || '/', '') || create_site_group.name)
            USING ERRCODE = 'unique_violation';
    END IF;
    v_id := nextval(pg_get_serial_sequence('status_checker.site_group', 'group_id'));
    INSERT INTO status_checker.site_group (tenant_id, group_id, parent_id, name, depth, path, ancestors)
    OVERRIDING SYSTEM VALUE
    VALUES (create_site_group.tenant_id, v_id, create_site_group.parent_id, create_site_group.name,
            coalesce(v_parent.depth + 1, 0),
            coalesce(v_parent.path || '/', '') || create_site_group.name,
            coalesce(v_parent.ancestors, '{}') || v_id);
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_site_group(bigint, text, bigint) IS
'Create a site group, optionally under a parent group (any depth); returns the group id';
ALTER FUNCTION status_checker.create_site_group(bigint, text, bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_site_group(bigint, text, bigint) TO status_checker_admin;

-- The group at a path like 関東/東京支店, created level by level as needed.
CREATE FUNCTION status_checker._ensure_group_path(p_tenant_id bigint, p_path text)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    part text;
    v_parent bigint := NULL;
    v_id bigint;
BEGIN
    FOREACH part IN ARRAY string_to_array(btrim(p_path, '/'), '/') LOOP
        part := btrim(part);
        SELECT g.group_id INTO v_id FROM status_checker.site_group g
        WHERE g.tenant_id = p_tenant_id AND g.parent_id IS NOT DISTINCT FROM v_parent AND g.name = part;
        IF NOT FOUND THEN
            v_id := status_checker.create_site_group(p_tenant_id, part, v_parent);
        END IF;
        v_parent := v_id;
    END LOOP;
    RETURN v_parent;
END
$$;

CREATE FUNCTION status_checker.upsert_site(
    tenant_id bigint, code text, name text, municipality_code text,
    lat double precision, lon double precision,
    group_id bigint DEFAULT NULL, address text DEFAULT NULL, attributes jsonb DEFAULT '{}')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    problems text[];
    v_id bigint;
BEGIN
    PERFORM status_checker._require_tenant(upsert_site.tenant_id);
    problems := status_checker._site_problems(upsert_site.code, upsert_site.name,
                                              upsert_site.municipality_code, upsert_site.lat, upsert_site.lon);
    IF problems IS NOT NULL THEN
        RAISE EXCEPTION 'invalid site %: %', coalesce(quote_literal(upsert_site.code), 'NULL'), problems[1]
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('%s problem(s): %s.', cardinality(problems), array_to_string(problems, '; ')),
                  HINT = CASE WHEN problems[1] LIKE 'municipality code%unknown%'
                              THEN 'Check the code against JMA''s table (load_jma_area_codes).'
                              ELSE 'See upsert_site in docs/sql-reference.md for the rules.' END;
    END IF;
    IF upsert_site.attributes IS NOT NULL AND jsonb_typeof(upsert_site.attributes) <> 'object' THEN
        RAISE EXCEPTION 'site attributes must be a JSON object, not %', jsonb_typeof(upsert_site.attributes)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF upsert_site.group_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM status_checker.site_group g
        WHERE g.tenant_id = upsert_site.tenant_id AND g.group_id = upsert_site.group_id) THEN
        RAISE EXCEPTION 'site group % does not exist in tenant %', upsert_site.group_id, upsert_site.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    INSERT INTO status_checker.site AS s
        (tenant_id, code, name, municipality_code, lat, lon, group_id, address, attributes)
    VALUES (upsert_site.tenant_id, upsert_site.code, upsert_site.name,
            status_checker.normalize_municipality_code(upsert_site.municipality_code),
            upsert_site.lat, upsert_site.lon, upsert_site.group_id, upsert_site.address,
            coalesce(upsert_site.attributes, '{}'))
    ON CONFLICT ON CONSTRAINT site_tenant_id_code_key DO UPDATE
        SET name = excluded.name, municipality_code = excluded.municipality_code,
            lat = excluded.lat, lon = excluded.lon, group_id = excluded.group_id,
            address = excluded.address, attributes = excluded.attributes,
            updated_at = pg_catalog.now()
    RETURNING s.site_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.upsert_site(bigint, text, text, text, double precision, double precision, bigint, text, jsonb) IS
'Create or update (by code) a site of a tenant; returns the site id. The municipality code is JMA''s 7-digit code or the 6-digit JIS code';
ALTER FUNCTION status_checker.upsert_site(bigint, text, text, text, double precision, double precision, bigint, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.upsert_site(bigint, text, text, text, double precision, double precision, bigint, text, jsonb) TO status_checker_admin;

CREATE FUNCTION status_checker._require_site(p_tenant_id bigint, p_code text) RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    SELECT s.site_id INTO v_id FROM status_checker.site s WHERE s.tenant_id = p_tenant_id AND s.code = p_code;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'site % does not exist in tenant %', coalesce(quote_literal(p_code), 'NULL'), p_tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION status_checker._contact_problem(p_channel text, p_address text) RETURNS text
    LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE
        WHEN p_channel IS NULL OR p_channel NOT IN ('email', 'webhook')
            THEN format('unknown channel %s (use email or webhook)', coalesce(quote_literal(p_channel), 'NULL'))
        WHEN p_channel = 'email' AND (p_address IS NULL OR NOT status_checker._email_ok(p_address))
            THEN format('invalid email address %s', coalesce(quote_literal(p_address), 'NULL'))
        WHEN p_channel = 'webhook' AND (p_address IS NULL OR p_address !~ '^https?://[^[:space:][:cntrl:]]+$' OR length(p_address) > 2048)
            THEN format('invalid webhook URL %s (an http:// or https:// URL)', coalesce(quote_literal(p_address), 'NULL'))
    END;



-- add_site_contact and import_sites are in src/sites/contacts.sql (contacts are encrypted, 0.4.0).

-- ---------------------------------------------------------- JMA tables

-- load_jma_area_codes is in src/sites/jma_codes.sql (rewritten without a temporary table, 0.10.1).

-- -------------------------------------------------------------- views

CREATE VIEW status_checker.site_directory WITH (security_invoker = true) AS
SELECT s.tenant_id, s.site_id, s.code, s.name, g.path AS group_path, s.group_id,
       s.municipality_code, m.name AS municipality_name,
       m.area_code, a.name AS area_name, left(s.municipality_code, 2) AS pref_code,
       s.lat, s.lon, s.address, s.attributes,
       (SELECT count(*) FROM status_checker.site_contact c
        WHERE c.tenant_id = s.tenant_id AND c.site_id = s.site_id) AS contacts,
       s.created_at, s.updated_at
FROM status_checker.site s
LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
LEFT JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
LEFT JOIN status_checker.jma_area a ON a.code = m.area_code;
COMMENT ON VIEW status_checker.site_directory IS
'Sites with their group path and the JMA municipality and earthquake area derived from the municipality code';
GRANT SELECT ON status_checker.site_directory TO status_checker_viewer, status_checker_operator;
