-- status_checker 1.0.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "CREATE EXTENSION status_checker" to load this file. \quit

-- ---- src/common/schema.sql
-- src/common/schema.sql — preconditions and shared helpers.
--
-- Everything lives in schema status_checker (created by CREATE EXTENSION,
-- see status_checker.control).  Japanese text is first-class, so the
-- database must use UTF-8.

DO $$
BEGIN
    IF pg_catalog.current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'status_checker needs a UTF8 database, this one is %',
            pg_catalog.current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'CREATE DATABASE ... ENCODING ''UTF8'' TEMPLATE template0';
    END IF;
END
$$;

-- RFC 4180 CSV reader (src/common/csv.c).  One row per record; a bad record
-- (bad UTF-8, NUL byte, unterminated quote) comes back with fields NULL and
-- the reason in error, so that callers can list every bad line at once.
CREATE FUNCTION status_checker._csv_records(data bytea,
    OUT line integer, OUT fields text[], OUT error text)
    RETURNS SETOF record
    LANGUAGE c STRICT VOLATILE SECURITY INVOKER PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'sc_csv_records';

-- Raise 22004 naming the first NULL argument.  Functions that change data
-- call it instead of being STRICT, which would silently do nothing.
CREATE FUNCTION status_checker._no_nulls(fn text, names text[], vals text[]) RETURNS void
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    FOR i IN 1 .. cardinality(names) LOOP
        IF vals[i] IS NULL THEN
            RAISE EXCEPTION '%: % must not be NULL', fn, names[i]
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
    END LOOP;
END
$$;

-- ---- src/security/tenancy.sql
-- src/security/tenancy.sql — tenant isolation: roles, the tenant context,
-- row-level security on every tenant table, and who may call what.
--
-- Roles (cluster-wide; created once, kept when the extension is dropped):
--   status_checker_viewer    reads its tenant's sites, requests, status and views
--   status_checker_reporter  + reports on a site's behalf
--   status_checker_manager   + creates, closes and cancels requests, issues links, retries messages
--   status_checker_admin     + users, groups, sites, contacts, forms, rules, channels, templates, audit
--   status_checker_gateway   an application server or the HTTP worker: may set the tenant
--                            context (set_app_user) and submit reports by token, nothing else
--   status_checker_operator  the service operator: every tenant (superusers are operators too)
--   status_checker_api       owns the API functions (SECURITY DEFINER): it holds the table
--                            privileges nobody else has, and is itself confined by row-level
--                            security to the caller's tenant.  Not a login.
-- The tenant context (src/security/tenancy.c) comes from set_app_user (gateways, in C) or
-- from app_user.db_role (people with their own database login, see map_db_role).

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['status_checker_viewer', 'status_checker_reporter', 'status_checker_manager',
                             'status_checker_admin', 'status_checker_gateway', 'status_checker_operator',
                             'status_checker_api'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
        END IF;
    END LOOP;
    -- each role has what the one below it has
    ALTER ROLE status_checker_reporter INHERIT;
    ALTER ROLE status_checker_manager INHERIT;
    ALTER ROLE status_checker_admin INHERIT;
    GRANT status_checker_viewer TO status_checker_reporter;
    GRANT status_checker_reporter TO status_checker_manager;
    GRANT status_checker_manager TO status_checker_admin;
    -- the API functions change a user's group role when they change the user's role
    GRANT status_checker_viewer, status_checker_reporter, status_checker_manager, status_checker_admin
        TO status_checker_api WITH ADMIN OPTION;
END
$$;

CREATE FUNCTION status_checker._tenant() RETURNS bigint
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_tenant';
GRANT EXECUTE ON FUNCTION status_checker._tenant() TO status_checker_api, status_checker_viewer, status_checker_operator;
CREATE FUNCTION status_checker._is_operator() RETURNS boolean
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_is_operator';
GRANT EXECUTE ON FUNCTION status_checker._is_operator() TO status_checker_api, status_checker_viewer, status_checker_operator;
CREATE FUNCTION status_checker._may_see(tenant_id bigint) RETURNS boolean
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_may_see';
GRANT EXECUTE ON FUNCTION status_checker._may_see(bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;
CREATE FUNCTION status_checker._app_login() RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_app_login';

CREATE FUNCTION status_checker.reset_app_user() RETURNS void
    LANGUAGE c VOLATILE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_clear_context';
COMMENT ON FUNCTION status_checker.reset_app_user() IS
'For gateways: stop acting for the application user set by set_app_user (the end of the transaction does the same)';
GRANT EXECUTE ON FUNCTION status_checker.reset_app_user() TO status_checker_api, status_checker_gateway;

CREATE FUNCTION status_checker.current_tenant() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY INVOKER AS $$
    SELECT status_checker._tenant()
$$;
COMMENT ON FUNCTION status_checker.current_tenant() IS
'The tenant this session acts for (set_app_user in this transaction, or the mapped database login), or NULL';
GRANT EXECUTE ON FUNCTION status_checker.current_tenant() TO status_checker_api, status_checker_viewer, status_checker_gateway, status_checker_operator;

-- A tenant the caller may not see does not exist for it (the same error as
-- a tenant that does not exist at all).
CREATE FUNCTION status_checker._require_tenant(p_tenant_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF p_tenant_id IS NULL OR NOT status_checker._may_see(p_tenant_id)
       OR NOT EXISTS (SELECT 1 FROM status_checker.tenant WHERE tenant_id = p_tenant_id) THEN
        RAISE EXCEPTION 'tenant % does not exist', coalesce(p_tenant_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;

-- set_app_user: src/security/gateway.sql (in C since 0.10.1).
-- map_db_role: src/security/login_roles.sql.

-- Who may call a function is granted next to its definition; a table's
-- row-level security (ENABLE, FORCE, the policy tenant_isolation USING and
-- WITH CHECK _may_see(tenant_id)) and who may read a table or a view, next
-- to theirs; status_checker_api's privileges: src/security/privileges.sql
-- (the last part, once every table exists).

-- ---- src/shindo/shindo.sql
-- src/shindo/shindo.sql — the shindo type: JMA seismic intensity (震度階級).
-- C implementation: src/shindo/shindo.c.

CREATE TYPE status_checker.shindo;

CREATE FUNCTION status_checker.shindo_in(cstring) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_out(status_checker.shindo) RETURNS cstring
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_recv(internal) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_send(status_checker.shindo) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';

CREATE TYPE status_checker.shindo (
    INPUT = status_checker.shindo_in,
    OUTPUT = status_checker.shindo_out,
    RECEIVE = status_checker.shindo_recv,
    SEND = status_checker.shindo_send,
    INTERNALLENGTH = 2,
    PASSEDBYVALUE,
    ALIGNMENT = int2,
    STORAGE = plain
);
COMMENT ON TYPE status_checker.shindo IS
'JMA seismic intensity class (震度階級): 0 < 1 < 2 < 3 < 4 < 5- < 5+ < 6- < 6+ < 7. '
'Input also accepts 5弱/5強/6弱/6強, full-width digits, a 震度 prefix, "5 lower"/"5 upper" and an '
'instrumental intensity such as 5.3; output is canonical (5-, 5+, ...).';

-- comparison
CREATE FUNCTION status_checker.shindo_eq(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_ne(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_lt(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_le(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_gt(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_ge(status_checker.shindo, status_checker.shindo) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_hash(status_checker.shindo) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_hash_extended(status_checker.shindo, bigint) RETURNS bigint
    LANGUAGE c IMMUTABLE STRICT LEAKPROOF PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';

COMMENT ON FUNCTION status_checker.shindo_eq(status_checker.shindo, status_checker.shindo) IS 'Support for shindo =';
COMMENT ON FUNCTION status_checker.shindo_ne(status_checker.shindo, status_checker.shindo) IS 'Support for shindo <>';
COMMENT ON FUNCTION status_checker.shindo_lt(status_checker.shindo, status_checker.shindo) IS 'Support for shindo <';
COMMENT ON FUNCTION status_checker.shindo_le(status_checker.shindo, status_checker.shindo) IS 'Support for shindo <=';
COMMENT ON FUNCTION status_checker.shindo_gt(status_checker.shindo, status_checker.shindo) IS 'Support for shindo >';
COMMENT ON FUNCTION status_checker.shindo_ge(status_checker.shindo, status_checker.shindo) IS 'Support for shindo >=';
COMMENT ON FUNCTION status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo) IS 'btree support: -1, 0 or 1';
COMMENT ON FUNCTION status_checker.shindo_hash(status_checker.shindo) IS 'hash support';
COMMENT ON FUNCTION status_checker.shindo_hash_extended(status_checker.shindo, bigint) IS 'hash support (extended, seeded)';
COMMENT ON FUNCTION status_checker.shindo_in(cstring) IS 'Input function of shindo';
COMMENT ON FUNCTION status_checker.shindo_out(status_checker.shindo) IS 'Output function of shindo';
COMMENT ON FUNCTION status_checker.shindo_recv(internal) IS 'Binary input function of shindo';
COMMENT ON FUNCTION status_checker.shindo_send(status_checker.shindo) IS 'Binary output function of shindo';

CREATE OPERATOR status_checker.= (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_eq,
    COMMUTATOR = OPERATOR(status_checker.=), NEGATOR = OPERATOR(status_checker.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR status_checker.<> (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_ne,
    COMMUTATOR = OPERATOR(status_checker.<>), NEGATOR = OPERATOR(status_checker.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR status_checker.< (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_lt,
    COMMUTATOR = OPERATOR(status_checker.>), NEGATOR = OPERATOR(status_checker.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR status_checker.<= (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_le,
    COMMUTATOR = OPERATOR(status_checker.>=), NEGATOR = OPERATOR(status_checker.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR status_checker.> (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_gt,
    COMMUTATOR = OPERATOR(status_checker.<), NEGATOR = OPERATOR(status_checker.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR status_checker.>= (
    LEFTARG = status_checker.shindo, RIGHTARG = status_checker.shindo,
    FUNCTION = status_checker.shindo_ge,
    COMMUTATOR = OPERATOR(status_checker.<=), NEGATOR = OPERATOR(status_checker.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS status_checker.shindo_ops
    DEFAULT FOR TYPE status_checker.shindo USING btree AS
        OPERATOR 1 status_checker.<,
        OPERATOR 2 status_checker.<=,
        OPERATOR 3 status_checker.=,
        OPERATOR 4 status_checker.>=,
        OPERATOR 5 status_checker.>,
        FUNCTION 1 status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo);

CREATE OPERATOR CLASS status_checker.shindo_hash_ops
    DEFAULT FOR TYPE status_checker.shindo USING hash AS
        OPERATOR 1 status_checker.=,
        FUNCTION 1 status_checker.shindo_hash(status_checker.shindo),
        FUNCTION 2 status_checker.shindo_hash_extended(status_checker.shindo, bigint);

-- min / max
CREATE FUNCTION status_checker.shindo_larger(status_checker.shindo, status_checker.shindo) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
CREATE FUNCTION status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_larger(status_checker.shindo, status_checker.shindo) IS 'The larger of two intensities';
COMMENT ON FUNCTION status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo) IS 'The smaller of two intensities';

CREATE AGGREGATE status_checker.max(status_checker.shindo) (
    SFUNC = status_checker.shindo_larger, STYPE = status_checker.shindo,
    COMBINEFUNC = status_checker.shindo_larger,
    SORTOP = OPERATOR(status_checker.>), PARALLEL = SAFE);
CREATE AGGREGATE status_checker.min(status_checker.shindo) (
    SFUNC = status_checker.shindo_smaller, STYPE = status_checker.shindo,
    COMBINEFUNC = status_checker.shindo_smaller,
    SORTOP = OPERATOR(status_checker.<), PARALLEL = SAFE);
COMMENT ON AGGREGATE status_checker.max(status_checker.shindo) IS 'Strongest intensity';
COMMENT ON AGGREGATE status_checker.min(status_checker.shindo) IS 'Weakest intensity';

-- helpers
CREATE FUNCTION status_checker.shindo_label(s status_checker.shindo, lang text DEFAULT 'ja') RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_label(status_checker.shindo, text) IS
'Label as people know it: 震度5弱 (lang ja, default) or Shindo 5 Lower (lang en)';
GRANT EXECUTE ON FUNCTION status_checker.shindo_label(status_checker.shindo, text) TO status_checker_api, status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker.shindo_from_p2pquake(scale integer) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_from_p2pquake(integer) IS
'Shindo from a P2PQuake scale code (10,20,30,40,45,50,55,60,70; 46 = "5弱 or more, not received" → 5-; -1 → NULL)';

CREATE FUNCTION status_checker.shindo_from_instrumental(i numeric) RETURNS status_checker.shindo
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_from_instrumental(numeric) IS
'Shindo class of a JMA instrumental intensity (計測震度) by JMA''s definition: the value is rounded at the third decimal and truncated at the second (4.49 and 4.494 → 4, 4.495 → 5-); then 4.5 → 5-, 5.0 → 5+, 5.5 → 6-, 6.0 → 6+, 6.5 → 7';

CREATE FUNCTION status_checker.shindo_ordinal(s status_checker.shindo) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME';
COMMENT ON FUNCTION status_checker.shindo_ordinal(status_checker.shindo) IS
'Position of the class on the scale, 0 (震度0) to 9 (震度7)';

CREATE CAST (numeric AS status_checker.shindo)
    WITH FUNCTION status_checker.shindo_from_instrumental(numeric);
COMMENT ON CAST (numeric AS status_checker.shindo) IS
'Explicit: instrumental intensity to its shindo class';

-- ---- src/sites/sites.sql
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

-- ---- src/sites/jma_codes.sql
-- src/sites/jma_codes.sql — loading JMA's station → municipality → area
-- table.  Written with CREATE OR REPLACE: an upgrade script can replay the same
-- text.  (0.10.1 replaced a temporary table with a function that each
-- statement reads: no function of the extension makes, reuses or names a
-- temporary object.)

-- The lines of JMA's table with what is wrong with each (NULL: nothing).
CREATE OR REPLACE FUNCTION status_checker._jma_rows(csv text)
    RETURNS TABLE (line integer, fields text[], problem text)
    LANGUAGE sql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT r.line, r.fields,
           CASE WHEN r.error IS NOT NULL THEN r.error
                WHEN cardinality(r.fields) <> 9 THEN format('has %s fields, expected 9', cardinality(r.fields))
                WHEN r.fields[1] !~ '^[0-9]{3}$' THEN format('area code %L is not 3 digits', r.fields[1])
                WHEN r.fields[4] !~ '^[0-9]{7}$' THEN format('municipality code %L is not 7 digits', r.fields[4])
                WHEN r.fields[7] !~ '^[0-9]{7}$' THEN format('station code %L is not 7 digits', r.fields[7])
                WHEN r.fields[2] = '' OR r.fields[5] = '' OR r.fields[8] = '' THEN 'has an empty name'
           END
    FROM status_checker._csv_records(convert_to(csv, 'UTF8')) r
$$;
COMMENT ON FUNCTION status_checker._jma_rows(text) IS
'Internal (load_jma_area_codes): the lines of JMA''s area table, each with its problem or NULL';

CREATE OR REPLACE FUNCTION status_checker.load_jma_area_codes(csv text)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    problems text[];
    n integer;
BEGIN
    PERFORM status_checker._no_nulls('load_jma_area_codes', ARRAY['csv'], ARRAY[load_jma_area_codes.csv::text]);
    -- a municipality belongs to exactly one area
    WITH j AS MATERIALIZED (SELECT * FROM status_checker._jma_rows(load_jma_area_codes.csv))
    SELECT ARRAY(
        SELECT format('line %s: %s', j.line, j.problem) FROM j WHERE j.problem IS NOT NULL
        UNION ALL
        SELECT format('municipality %s is listed under areas %s', m.code, m.areas)
        FROM (SELECT fields[4] AS code, string_agg(DISTINCT fields[1], ', ') AS areas
              FROM j WHERE problem IS NULL GROUP BY 1 HAVING count(DISTINCT fields[1]) > 1) m
        UNION ALL
        SELECT format('station %s is listed %s times', s.code, s.n)
        FROM (SELECT fields[7] AS code, count(*) AS n
              FROM j WHERE problem IS NULL GROUP BY 1 HAVING count(*) > 1) s
        LIMIT 1000),
        (SELECT count(*) FROM j)
    INTO problems, n;
    IF cardinality(problems) > 0 THEN
        RAISE EXCEPTION 'load_jma_area_codes: % problem(s); nothing was loaded', cardinality(problems)
            USING ERRCODE = 'invalid_text_representation',
                  DETAIL = array_to_string(problems, E'\n'),
                  HINT = 'Expected JMA''s table without header: area code, area name, kana, municipality code, name, kana, station code, name, kana.';
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'load_jma_area_codes: the input has no rows'
            USING ERRCODE = 'invalid_text_representation';
    END IF;

    -- the new table replaces the old one
    DELETE FROM status_checker.jma_station;
    DELETE FROM status_checker.jma_municipality;
    DELETE FROM status_checker.jma_area;
    INSERT INTO status_checker.jma_area (code, name, kana)
    SELECT DISTINCT ON (fields[1]) fields[1], fields[2], fields[3]
    FROM status_checker._jma_rows(load_jma_area_codes.csv) ORDER BY fields[1], line;
    INSERT INTO status_checker.jma_municipality (code, name, kana, area_code)
    SELECT DISTINCT ON (fields[4]) fields[4], fields[5], fields[6], fields[1]
    FROM status_checker._jma_rows(load_jma_area_codes.csv) ORDER BY fields[4], line;
    INSERT INTO status_checker.jma_station (code, name, kana, municipality_code)
    SELECT fields[7], fields[8], fields[9], fields[4] FROM status_checker._jma_rows(load_jma_area_codes.csv);
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.load_jma_area_codes(text) IS
'Load (replace) JMA''s station → municipality → area table (AreaForecastLocalE / AreaInformationCity / PointSeismicIntensity CSV); returns the rows loaded. All or nothing';
GRANT EXECUTE ON FUNCTION status_checker.load_jma_area_codes(text) TO status_checker_api, status_checker_operator;

-- ---- src/forms/forms.sql
-- src/forms/forms.sql — report forms: immutable, versioned definitions.
-- The definition rules are enforced in C (src/forms/form_validate.c).

CREATE TABLE status_checker.form (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    form_id     bigint GENERATED ALWAYS AS IDENTITY,
    name        text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    version     integer NOT NULL CHECK (version >= 1),
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, form_id),
    UNIQUE (tenant_id, name, version)
);
CREATE INDEX ON status_checker.form (form_id);
COMMENT ON TABLE status_checker.form IS
'Report forms; each row is one immutable version (a new definition under the same name is a new version)';
ALTER TABLE status_checker.form ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.form FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.form
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.form TO status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker._form_immutable() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RAISE EXCEPTION 'form versions are immutable'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = format('Form %s version %s cannot be changed.', OLD.name, OLD.version),
              HINT = 'Call create_form with the same name to make a new version.';
END
$$;
CREATE TRIGGER form_immutable BEFORE UPDATE ON status_checker.form
    FOR EACH ROW EXECUTE FUNCTION status_checker._form_immutable();

CREATE FUNCTION status_checker.validate_form_definition(definition jsonb) RETURNS void
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_validate_form_definition';
COMMENT ON FUNCTION status_checker.validate_form_definition(jsonb) IS
'Check a form definition; raises 22023 naming the JSON path of the first problem (e.g. $.questions[2].choices[0].level)';

CREATE FUNCTION status_checker.create_form(tenant_id bigint, name text, definition jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_latest status_checker.form;
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_form', ARRAY['tenant_id', 'name', 'definition'], ARRAY[create_form.tenant_id::text, create_form.name::text, nullif((create_form.definition IS NOT NULL)::text, 'false')]);
    PERFORM status_checker._require_tenant(create_form.tenant_id);
    IF btrim(create_form.name) = '' OR length(create_form.name) > 200 THEN
        RAISE EXCEPTION 'invalid form name %', quote_literal(create_form.name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A form name has 1 to 200 characters and is not blank.';
    END IF;
    PERFORM status_checker.validate_form_definition(create_form.definition);
    -- versions of one name are numbered in order; serialise their creation
    PERFORM pg_advisory_xact_lock(hashtext('status_checker.form'), hashtext(create_form.tenant_id || '/' || create_form.name));
    SELECT * INTO v_latest FROM status_checker.form f
    WHERE f.tenant_id = create_form.tenant_id AND f.name = create_form.name
    ORDER BY f.version DESC LIMIT 1;
    IF FOUND AND v_latest.definition = create_form.definition THEN
        RETURN v_latest.form_id;        -- same definition: no new version
    END IF;
    INSERT INTO status_checker.form (tenant_id, name, version, definition)
    VALUES (create_form.tenant_id, create_form.name, coalesce(v_latest.version, 0) + 1, create_form.definition)
    RETURNING form_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_form(bigint, text, jsonb) IS
'Create a form, or a new version when the name exists (the same definition again returns the latest version); returns the form id';
ALTER FUNCTION status_checker.create_form(bigint, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_form(bigint, text, jsonb) TO status_checker_admin;

-- A label in the requested language(s): lang 'ja', 'en' or 'all' (both).
CREATE FUNCTION status_checker._label(ja text, en text, lang text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    RETURN CASE lang WHEN 'ja' THEN jsonb_build_object('ja', ja)
                     WHEN 'en' THEN jsonb_build_object('en', en)
                     ELSE jsonb_build_object('ja', ja, 'en', en) END;

CREATE FUNCTION status_checker.default_form_definition(lang text DEFAULT 'ja') RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    l text := lang;
BEGIN
    IF l NOT IN ('ja', 'en', 'all') THEN
        RAISE EXCEPTION 'unsupported form language %', quote_literal(l)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''ja'', ''en'' or ''all'' (labels in both).';
    END IF;
    RETURN jsonb_build_object(
        'title', status_checker._label('被害状況報告', 'Damage report', l),
        'levels', jsonb_build_array(
            jsonb_build_object('level', 0, 'label', status_checker._label('被害なし', 'No damage', l), 'color', '#2e7d32', 'icon', 'check'),
            jsonb_build_object('level', 1, 'label', status_checker._label('一部被害', 'Partial damage', l), 'color', '#f9a825', 'icon', 'alert'),
            jsonb_build_object('level', 2, 'label', status_checker._label('重大被害', 'Severe damage', l), 'color', '#c62828', 'icon', 'stop')),
        'questions', jsonb_build_array(
            jsonb_build_object('key', 'building', 'type', 'single', 'required', true,
                'label', status_checker._label('建物の被害', 'Damage to buildings', l),
                'choices', jsonb_build_array(
                    jsonb_build_object('value', 'none', 'label', status_checker._label('なし', 'None', l), 'level', 0),
                    jsonb_build_object('value', 'partial', 'label', status_checker._label('一部損壊', 'Partly damaged', l), 'level', 1),
                    jsonb_build_object('value', 'severe', 'label', status_checker._label('使用不能', 'Unusable', l), 'level', 2,
                                       'color', '#b71c1c', 'icon', 'home-x'))),
            jsonb_build_object('key', 'detail', 'type', 'text', 'required', true, 'max_length', 2000,
                'label', status_checker._label('建物の被害の状況', 'What is damaged', l),
                'show_if', jsonb_build_object('question', 'building', 'in', jsonb_build_array('partial', 'severe'))),
            jsonb_build_object('key', 'injured', 'type', 'number', 'required', true, 'integer', true,
                'min', 0, 'max', 100000,
                'label', status_checker._label('負傷者数', 'People injured', l),
                'unit', status_checker._label('人', 'people', l),
                'levels', jsonb_build_array(jsonb_build_object('min', 1, 'level', 2))),
            jsonb_build_object('key', 'operation', 'type', 'single', 'required', true,
                'label', status_checker._label('業務の状況', 'Operations', l),
                'choices', jsonb_build_array(
                    jsonb_build_object('value', 'normal', 'label', status_checker._label('通常どおり', 'Normal', l), 'level', 0),
                    jsonb_build_object('value', 'limited', 'label', status_checker._label('一部停止', 'Limited', l), 'level', 1),
                    jsonb_build_object('value', 'stopped', 'label', status_checker._label('停止', 'Stopped', l), 'level', 2))),
            jsonb_build_object('key', 'lifelines', 'type', 'multi', 'required', false,
                'label', status_checker._label('止まっているライフライン', 'Utilities that are out', l),
                'choices', jsonb_build_array(
                    jsonb_build_object('value', 'power', 'label', status_checker._label('電気', 'Power', l), 'level', 1),
                    jsonb_build_object('value', 'water', 'label', status_checker._label('水道', 'Water', l), 'level', 1),
                    jsonb_build_object('value', 'gas', 'label', status_checker._label('ガス', 'Gas', l), 'level', 1),
                    jsonb_build_object('value', 'network', 'label', status_checker._label('通信', 'Network', l), 'level', 1))),
            jsonb_build_object('key', 'photo', 'type', 'photo', 'required', false,
                'label', status_checker._label('写真のリンク', 'Link to a photo', l)),
            jsonb_build_object('key', 'comment', 'type', 'text', 'required', false, 'max_length', 2000,
                'label', status_checker._label('連絡事項', 'Comments', l))));
END
$$;
COMMENT ON FUNCTION status_checker.default_form_definition(text) IS
'A ready damage-report form (buildings, people, operations, utilities, photo, comment) with labels in ja (default), en, or all (both)';

-- ---- src/requests/requests.sql
-- src/requests/requests.sql — report requests, their targets and tokens.
--
-- A request asks a set of sites (resolved once, at creation) to answer one
-- form version.  Each target can hold one personal token; only its SHA-256
-- is stored (src/requests/token.c).  Maintained counters per request are
-- spread over COUNTER_SLOTS rows so that no single row is updated by every
-- report (see src/reports/reports.sql).

CREATE TABLE status_checker.request (
    tenant_id      bigint NOT NULL REFERENCES status_checker.tenant,
    request_id     bigint GENERATED ALWAYS AS IDENTITY,
    form_id        bigint NOT NULL,
    title          text NOT NULL,
    message        text,
    deadline       timestamptz NOT NULL,
    drill          boolean NOT NULL DEFAULT false,
    state          text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'cancelled')),
    cancel_reason  text,
    target_spec    jsonb NOT NULL,
    targets        integer NOT NULL DEFAULT 0,
    event_id       bigint,                  -- set for requests made by a trigger rule
    rule_id        bigint,
    reminders      interval[] NOT NULL DEFAULT '{}',   -- after creation: when to remind sites that have not answered
    escalate_after interval,                           -- ... and when to tell their managers
    created_by     text NOT NULL DEFAULT session_user,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    closed_at      timestamptz,
    cancelled_at   timestamptz,
    PRIMARY KEY (tenant_id, request_id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES status_checker.form (tenant_id, form_id),
    CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX ON status_checker.request (request_id);
COMMENT ON TABLE status_checker.request IS
'A report request (報告依頼): asks its target sites to answer a form version by a deadline; open, closed or cancelled';
ALTER TABLE status_checker.request ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.request TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.request_target (
    tenant_id          bigint NOT NULL,
    request_id         bigint NOT NULL,
    site_id            bigint NOT NULL,
    token_hash         bytea,               -- SHA-256 of the current personal token
    token_issued_at    timestamptz,
    token_gen          integer NOT NULL DEFAULT 0,  -- generation of the derived token (src/requests/tokens.sql)
    level              integer,             -- latest report's status level; NULL = no answer
    prev_level         integer,             -- the level the latest report replaced (counter upkeep)
    color              text,
    icon               text,
    latest_report_id   bigint,
    first_reported_at  timestamptz,
    last_reported_at   timestamptz,
    report_count       integer NOT NULL DEFAULT 0,
    asked_shindo       status_checker.shindo,   -- requests made by a rule: the intensity the site was asked at
    asked_reason       text,                    -- ... and why (trigger_decision)
    submit_key         text,                    -- idempotency key of the latest submission by link (src/web/web.sql)
    PRIMARY KEY (tenant_id, request_id, site_id)
    -- No foreign keys.  To request: targets are inserted only by the
    -- functions that create their request, in the same transaction, and
    -- requests are removed only with their tenant; the per-row check cost
    -- 0.6 s for a request of 100,000 sites.  To site: a trigger on site
    -- refuses to delete an asked site instead (src/requests/targets.sql),
    -- which moves the cost from every target inserted at disaster time to
    -- the rare deletion of a site; the per-row check cost 1.1 s for 100,000
    -- targets (docs/benchmarks.md).
) WITH (fillfactor = 80);
-- partial: targets get their token later, so most rows of a new request have none
CREATE UNIQUE INDEX request_target_token_hash_key ON status_checker.request_target (token_hash)
    WHERE token_hash IS NOT NULL;
CREATE INDEX ON status_checker.request_target (tenant_id, site_id);
COMMENT ON TABLE status_checker.request_target IS
'One row per site asked by a request: personal token hash and the site''s latest status for that request';
COMMENT ON COLUMN status_checker.request_target.submit_key IS
'Idempotency key of the latest report submitted by link with one (submit_report(token, answers, idempotency_key)); a replay with the same key stores nothing';
ALTER TABLE status_checker.request_target ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request_target FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request_target
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.request_target TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.request_token_revoked (
    tenant_id   bigint NOT NULL,
    token_hash  bytea NOT NULL,
    request_id  bigint NOT NULL,
    site_id     bigint NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, request_id, site_id) REFERENCES status_checker.request_target (tenant_id, request_id, site_id)
);
CREATE UNIQUE INDEX request_token_revoked_token_hash_key ON status_checker.request_token_revoked (token_hash);
COMMENT ON TABLE status_checker.request_token_revoked IS
'Hashes of tokens replaced by issue_token, so that an old link gets a clear "replaced" error';
ALTER TABLE status_checker.request_token_revoked ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request_token_revoked FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request_token_revoked
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

-- Per-request counters, split over slots (slot = backend number mod 64):
-- counts[level + 1] is how many sites currently stand at that level,
-- responded how many have answered at least once.  A request's totals are
-- the sums over its slots (a slot may hold negative counts).
CREATE TABLE status_checker.request_counter (
    tenant_id   bigint NOT NULL,
    request_id  bigint NOT NULL,
    slot        smallint NOT NULL CHECK (slot BETWEEN 0 AND 63),
    responded   integer NOT NULL DEFAULT 0,
    counts      integer[] NOT NULL DEFAULT array_fill(0, ARRAY[16]),
    PRIMARY KEY (tenant_id, request_id, slot),
    FOREIGN KEY (tenant_id, request_id) REFERENCES status_checker.request (tenant_id, request_id)
) WITH (fillfactor = 50);
COMMENT ON TABLE status_checker.request_counter IS
'Maintained per-request counters, spread over 64 slot rows so that concurrent reports do not contend on one row';
ALTER TABLE status_checker.request_counter ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request_counter FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request_counter
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.request_counter TO status_checker_viewer, status_checker_operator;

-- ---------------------------------------------------------- C helpers

CREATE FUNCTION status_checker._token_hash(token text) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_token_hash';

-- ------------------------------------------------------------- helpers

CREATE FUNCTION status_checker._require_request(p_request_id bigint, p_lock boolean DEFAULT false)
    RETURNS status_checker.request
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
BEGIN
    IF p_lock THEN
        SELECT * INTO r FROM status_checker.request WHERE request_id = p_request_id FOR UPDATE;
    ELSE
        SELECT * INTO r FROM status_checker.request WHERE request_id = p_request_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(p_request_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN r;
END
$$;
GRANT EXECUTE ON FUNCTION status_checker._require_request(bigint, boolean) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- Resolve a target spec to site ids of the tenant; raises on a bad spec.
CREATE FUNCTION status_checker._resolve_targets(p_tenant_id bigint, p_target jsonb)
    RETURNS TABLE (site_id bigint)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k text;
    v jsonb;
    bad text[];
BEGIN
    IF p_target IS NULL OR jsonb_typeof(p_target) <> 'object' OR (SELECT count(*) FROM jsonb_object_keys(p_target)) <> 1 THEN
        RAISE EXCEPTION 'invalid target %', coalesce(p_target::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A target is an object with exactly one key.',
                  HINT = 'Use {"all": true}, {"groups": [ids]}, {"sites": [codes]}, {"municipalities": [codes]} or {"areas": [JMA area codes]}.';
    END IF;
    SELECT key, value INTO k, v FROM jsonb_each(p_target);
    IF k = 'all' THEN
        IF v <> 'true'::jsonb THEN
            RAISE EXCEPTION 'invalid target %: "all" must be true', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s WHERE s.tenant_id = p_tenant_id;
        RETURN;
    END IF;
    IF k NOT IN ('groups', 'sites', 'municipalities', 'areas') THEN
        RAISE EXCEPTION 'invalid target %: unknown key "%"', p_target, k
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use all, groups, sites, municipalities or areas.';
    END IF;
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
        RAISE EXCEPTION 'invalid target %: "%" must be a non-empty array', p_target, k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF k = 'groups' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'number' OR e::text !~ '^[0-9]+$') THEN
            RAISE EXCEPTION 'invalid target %: group ids are integers', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        bad := ARRAY(SELECT e::text FROM jsonb_array_elements(v) e
                     WHERE NOT EXISTS (SELECT 1 FROM status_checker.site_group g
                                       WHERE g.tenant_id = p_tenant_id AND g.group_id = e::text::bigint));
        IF cardinality(bad) > 0 THEN
            RAISE EXCEPTION 'unknown site group(s) % in tenant %', array_to_string(bad, ', '), p_tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN QUERY
            SELECT s.site_id FROM status_checker.site s
            JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
            WHERE s.tenant_id = p_tenant_id
              AND g.ancestors && ARRAY(SELECT e::text::bigint FROM jsonb_array_elements(v) e);
    ELSIF k = 'sites' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION 'invalid target %: site codes are strings', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        bad := ARRAY(SELECT e FROM jsonb_array_elements_text(v) e
                     WHERE NOT EXISTS (SELECT 1 FROM status_checker.site s WHERE s.tenant_id = p_tenant_id AND s.code = e));
        IF cardinality(bad) > 0 THEN
            RAISE EXCEPTION 'unknown site code(s) % in tenant %', array_to_string(bad, ', '), p_tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s
            WHERE s.tenant_id = p_tenant_id AND s.code IN (SELECT jsonb_array_elements_text(v));
    ELSIF k = 'municipalities' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION 'invalid target %: municipality codes are strings', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s
            WHERE s.tenant_id = p_tenant_id
              AND s.municipality_code IN (SELECT status_checker.normalize_municipality_code(e)
                                          FROM jsonb_array_elements_text(v) e);
    ELSE  -- areas
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' !~ '^[0-9]{3}$') THEN
            RAISE EXCEPTION 'invalid target %: JMA area codes are 3-digit strings such as "390"', p_target
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s
            JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
            WHERE s.tenant_id = p_tenant_id AND m.area_code IN (SELECT jsonb_array_elements_text(v));
    END IF;
END
$$;

-- ------------------------------------------------------ public functions

-- issue_token and issue_tokens: src/requests/tokens.sql (tokens derived from the tenant's link key)

CREATE FUNCTION status_checker.close_request(request_id bigint)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
BEGIN
    PERFORM status_checker._no_nulls('close_request', ARRAY['request_id'], ARRAY[close_request.request_id::text]);
    r := status_checker._require_request(close_request.request_id, true);
    IF r.state = 'cancelled' THEN
        RAISE EXCEPTION 'request % was cancelled and cannot be closed', r.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE status_checker.request q SET state = 'closed', closed_at = pg_catalog.now()
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id AND q.state = 'open';
END
$$;
COMMENT ON FUNCTION status_checker.close_request(bigint) IS
'Close a request: no further reports are accepted; closing a closed request does nothing';
ALTER FUNCTION status_checker.close_request(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.close_request(bigint) TO status_checker_manager;

CREATE FUNCTION status_checker.cancel_request(request_id bigint, reason text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
BEGIN
    r := status_checker._require_request(cancel_request.request_id, true);
    IF cancel_request.reason IS NULL OR btrim(cancel_request.reason) = '' OR length(cancel_request.reason) > 1000 THEN
        RAISE EXCEPTION 'a reason (1 to 1000 characters) is required to cancel request %', r.request_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.request q
    SET state = 'cancelled', cancel_reason = cancel_request.reason, cancelled_at = pg_catalog.now()
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id AND q.state <> 'cancelled';
END
$$;
COMMENT ON FUNCTION status_checker.cancel_request(bigint, text) IS
'Cancel a request (e.g. sent by mistake, or its event was withdrawn) with a reason; reports are refused from then on';
ALTER FUNCTION status_checker.cancel_request(bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.cancel_request(bigint, text) TO status_checker_manager;

-- ---- src/requests/targets.sql
-- src/requests/targets.sql — who may insert request targets, and the guard
-- that keeps an asked site from being deleted.
--
-- request_target has no foreign key to site (its per-row check was the
-- largest single cost of asking 100,000 sites at once).  Instead, a site
-- that a request asked cannot be deleted: the BEFORE DELETE trigger below
-- looks for targets of the site.  A tenant-level advisory lock closes the
-- race a foreign key's row lock would have closed: functions that insert
-- targets hold it shared (_lock_targets), deleting a site takes it
-- exclusively, so a deletion waits for concurrent insertions to commit and
-- then sees their targets.  Written as CREATE OR REPLACE so that the same
-- text serves the install script and the upgrade from 0.1.0.

CREATE OR REPLACE FUNCTION status_checker._targets_lock_key(p_tenant_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (p_tenant_id % 2147483647)::integer;
COMMENT ON FUNCTION status_checker._targets_lock_key(bigint) IS
'Internal: the advisory lock key (with class 1400000001) of a tenant''s request targets';

CREATE OR REPLACE FUNCTION status_checker._lock_targets(p_tenant_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.pg_advisory_xact_lock_shared(1400000001, status_checker._targets_lock_key(p_tenant_id));
COMMENT ON FUNCTION status_checker._lock_targets(bigint) IS
'Internal: taken (shared, until commit) by every function that inserts request targets of a tenant';

CREATE OR REPLACE FUNCTION status_checker._site_delete_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_req bigint;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(1400000001, status_checker._targets_lock_key(OLD.tenant_id));
    SELECT t.request_id INTO v_req FROM status_checker.request_target t
    WHERE t.tenant_id = OLD.tenant_id AND t.site_id = OLD.site_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'site % is a target of request % and cannot be deleted', quote_literal(OLD.code), v_req
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Requests keep the sites they asked, with their reports.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION status_checker._site_delete_guard() IS
'Internal: refuses to delete a site that a request asked (instead of a foreign key from request_target)';

CREATE TRIGGER site_delete_guard BEFORE DELETE ON status_checker.site
    FOR EACH ROW EXECUTE FUNCTION status_checker._site_delete_guard();

CREATE OR REPLACE FUNCTION status_checker.create_request(
    tenant_id bigint, form_id bigint, title text, deadline timestamptz,
    target jsonb DEFAULT '{"all": true}', drill boolean DEFAULT false, message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_n integer;
BEGIN
    PERFORM status_checker._require_tenant(create_request.tenant_id);
    IF create_request.form_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM status_checker.form f
        WHERE f.tenant_id = create_request.tenant_id AND f.form_id = create_request.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', coalesce(create_request.form_id::text, 'NULL'), create_request.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF create_request.title IS NULL OR btrim(create_request.title) = '' OR length(create_request.title) > 200 THEN
        RAISE EXCEPTION 'invalid request title %', coalesce(quote_literal(create_request.title), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A title has 1 to 200 characters and is not blank.';
    END IF;
    IF create_request.deadline IS NULL OR create_request.deadline <= pg_catalog.now() THEN
        RAISE EXCEPTION 'the deadline % is not in the future', coalesce(create_request.deadline::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(create_request.message) > 5000 THEN
        RAISE EXCEPTION 'the message has % characters; at most 5000 are allowed', length(create_request.message)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM status_checker._lock_targets(create_request.tenant_id);
    INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec)
    VALUES (create_request.tenant_id, create_request.form_id, create_request.title, create_request.message,
            create_request.deadline, coalesce(create_request.drill, false),
            coalesce(create_request.target, '{"all": true}'))
    RETURNING request_id INTO v_id;

    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id)
    SELECT DISTINCT create_request.tenant_id, v_id, t.site_id
    FROM status_checker._resolve_targets(create_request.tenant_id, coalesce(create_request.target, '{"all": true}')) t
    ORDER BY 3;   -- in key order: index insertions stay on hot pages
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'the target % selects no sites', coalesce(create_request.target, '{"all": true}')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Check the target: sites need a municipality code for municipality and area targets.';
    END IF;
    UPDATE status_checker.request r SET targets = v_n WHERE r.tenant_id = create_request.tenant_id AND r.request_id = v_id;
    -- the targets' contacts get the request, in this transaction
    IF status_checker._tenant_delivers(create_request.tenant_id) THEN
        PERFORM status_checker._enqueue_site_messages(create_request.tenant_id, v_id, 'request', 0,
            ARRAY(SELECT t.site_id FROM status_checker.request_target t
                  WHERE t.tenant_id = create_request.tenant_id AND t.request_id = v_id ORDER BY t.site_id), true);
    END IF;
    INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
    SELECT create_request.tenant_id, v_id, g FROM generate_series(0, 63) g;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) IS
'Create a report request for the sites the target selects ({"all":true}, {"groups":[ids]} with descendants, '
'{"sites":[codes]}, {"municipalities":[codes]}, {"areas":[JMA area codes]}); targets are resolved now. Returns the request id';
ALTER FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) TO status_checker_manager;


-- ---- src/reports/reports.sql
-- src/reports/reports.sql — reports: the hot path of a disaster.
--
-- Every report is kept (append-only history); the latest one is the site's
-- status, kept on request_target.  A report is acknowledged only when its
-- transaction commits.  Answers are checked against the request's form
-- version in C (src/reports/answers.c).
--
-- Per report (src/reports/submit.c): one read by token hash, then one
-- statement that updates the site's own target row, inserts the report and,
-- for a transaction's first report, moves this backend's counter slot row
-- (src/reports/counters.c): no row is shared by all reporters.

CREATE TABLE status_checker.report (
    tenant_id     bigint NOT NULL,
    report_id     bigint GENERATED ALWAYS AS IDENTITY,
    request_id    bigint NOT NULL,
    site_id       bigint NOT NULL,
    answers       jsonb NOT NULL,
    level         integer NOT NULL,
    previous_level integer,                         -- the site's level before this report (NULL: first)
    color         text,
    icon          text,
    late          boolean NOT NULL DEFAULT false,   -- submitted after the deadline
    via           text NOT NULL CHECK (via IN ('link', 'user')),
    submitted_by  text,                             -- database user, for reports made on a site's behalf
    submitted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, report_id)
    -- No foreign key to request_target: the report path (submit.c) is the
    -- only writer and updates that very target row in the same transaction.
);
-- Reports arrive in time order, so the reports of a request lie together on
-- disk: a BRIN index finds them (history, retention, tenant deletion) at
-- almost no cost per insert, where a btree would be updated by every report.
CREATE INDEX report_request_brin ON status_checker.report USING brin (tenant_id, request_id, submitted_at);
COMMENT ON TABLE status_checker.report IS
'Every report ever submitted (append-only), with its computed status level, colour and icon';
ALTER TABLE status_checker.report ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.report FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.report
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.report TO status_checker_viewer, status_checker_operator;

CREATE TYPE status_checker._answer_check AS (level integer, color text, icon text);

CREATE FUNCTION status_checker._check_answers(definition jsonb, answers jsonb)
    RETURNS status_checker._answer_check
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_check_answers';

CREATE FUNCTION status_checker.check_answers(form_id bigint, answers jsonb)
    RETURNS TABLE (level integer, color text, icon text)
    LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    def jsonb;
BEGIN
    SELECT f.definition INTO def FROM status_checker.form f WHERE f.form_id = check_answers.form_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'form % does not exist', check_answers.form_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY SELECT c.level, c.color, c.icon FROM status_checker._check_answers(def, check_answers.answers) c;
END
$$;
COMMENT ON FUNCTION status_checker.check_answers(bigint, jsonb) IS
'Dry run: validate answers against a form version and return the status level, colour and icon they would get; stores nothing';
ALTER FUNCTION status_checker.check_answers(bigint, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.check_answers(bigint, jsonb) TO status_checker_viewer, status_checker_operator;

-- Counter upkeep (src/reports/counters.c): the report path notes each
-- change in backend memory; this deferred trigger writes the net change of
-- each request once, at commit.  ENABLE ALWAYS: it must fire whatever the
-- session_replication_role, or the counters would drift.
CREATE FUNCTION status_checker._flush_counters() RETURNS trigger
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sc_flush_counters';
ALTER FUNCTION status_checker._flush_counters() OWNER TO status_checker_api;
-- One trigger event per transaction is enough: the WHEN condition is true
-- only for the first report of a transaction that has no event waiting.
CREATE FUNCTION status_checker._counters_need_flush() RETURNS boolean
    LANGUAGE c VOLATILE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_counters_need_flush';
CREATE CONSTRAINT TRIGGER report_counters
    AFTER INSERT ON status_checker.report
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (status_checker._counters_need_flush())
    EXECUTE FUNCTION status_checker._flush_counters();
ALTER TABLE status_checker.report ENABLE ALWAYS TRIGGER report_counters;

-- This backend's not yet written counter change of a request (int[17]:
-- responded, then levels 0..15), so that a transaction sees its own reports.
CREATE FUNCTION status_checker._pending_counts(tenant_id bigint, request_id bigint) RETURNS integer[]
    LANGUAGE c VOLATILE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_pending_counts';
GRANT EXECUTE ON FUNCTION status_checker._pending_counts(bigint, bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- The report path in C (src/reports/submit.c): lock the site's target row,
-- check the answers, insert the report, update the latest status and this
-- backend's counter slot.  via is 'link' (personal token) or 'user'.
CREATE FUNCTION status_checker._record_report(
    tenant_id bigint, request_id bigint, site_id bigint, answers jsonb, via text)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_record_report';

CREATE FUNCTION status_checker.submit_report(token text, answers jsonb)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sc_submit_report';
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb) IS
'Submit a site''s report with its personal token; answers are validated against the request''s form version. Returns the report id';
GRANT EXECUTE ON FUNCTION status_checker.submit_report(text, jsonb) TO status_checker_api, status_checker_reporter, status_checker_gateway;

CREATE FUNCTION status_checker.submit_report_for(request_id bigint, site_code text, answers jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    v_site bigint;
BEGIN
    r := status_checker._require_request(submit_report_for.request_id);
    v_site := status_checker._require_site(r.tenant_id, submit_report_for.site_code);
    IF NOT EXISTS (SELECT 1 FROM status_checker.request_target t
                   WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site) THEN
        RAISE EXCEPTION 'site % is not a target of request %', quote_literal(submit_report_for.site_code), r.request_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN status_checker._record_report(r.tenant_id, r.request_id, v_site, submit_report_for.answers, 'user');
END
$$;
COMMENT ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb) IS
'Submit a report on a site''s behalf (an authenticated user, e.g. after a phone call); recorded with the database user. Returns the report id';
ALTER FUNCTION status_checker.submit_report_for(bigint, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb) TO status_checker_reporter;

CREATE VIEW status_checker.report_history WITH (security_invoker = true) AS
SELECT p.report_id, p.tenant_id, p.request_id, p.site_id, s.code AS site_code, s.name AS site_name,
       p.level, p.previous_level, p.color, p.icon, p.answers, p.late, p.via, p.submitted_by, p.submitted_at,
       p.report_id = t.latest_report_id AS is_latest
FROM status_checker.report p
JOIN status_checker.site s ON s.tenant_id = p.tenant_id AND s.site_id = p.site_id
JOIN status_checker.request_target t ON t.tenant_id = p.tenant_id AND t.request_id = p.request_id AND t.site_id = p.site_id;
COMMENT ON VIEW status_checker.report_history IS
'Every report of every site: its level and the level it replaced (previous_level, NULL for a first report), newest marked is_latest';
GRANT SELECT ON status_checker.report_history TO status_checker_viewer, status_checker_operator;

-- ---- src/aggregate/aggregate.sql
-- src/aggregate/aggregate.sql — what the crisis team looks at.
--
-- Five views and request_geojson(), all carrying the form's own level
-- labels, colours and icons.  Views are security_invoker so that the
-- caller's privileges (and, with the security domain, row-level security)
-- apply.  request_summary reads the maintained counters (64 slot rows per
-- request), never the targets, so it stays fast for 100,000 targets.

-- Colour and icon for "no answer yet", used by the views and the GeoJSON.
CREATE FUNCTION status_checker._no_answer_style(OUT color text, OUT icon text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
    RETURN ROW('#9e9e9e'::text, 'help'::text);
GRANT EXECUTE ON FUNCTION status_checker._no_answer_style() TO status_checker_api, status_checker_viewer, status_checker_operator;

-- The levels of a form definition.
CREATE FUNCTION status_checker._form_levels(definition jsonb)
    RETURNS TABLE (level integer, label_ja text, label_en text, color text, icon text)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    BEGIN ATOMIC
        SELECT (l ->> 'level')::integer,
               coalesce(l -> 'label' ->> 'ja', l -> 'label' ->> 'en'),
               coalesce(l -> 'label' ->> 'en', l -> 'label' ->> 'ja'),
               l ->> 'color', l ->> 'icon'
        FROM jsonb_array_elements(definition -> 'levels') AS l
        ORDER BY 1;
    END;
GRANT EXECUTE ON FUNCTION status_checker._form_levels(jsonb) TO status_checker_api, status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.request_summary WITH (security_invoker = true) AS
SELECT r.request_id, r.tenant_id, r.title, r.state, r.drill, r.created_at, r.deadline,
       r.targets, c.responded,
       round(c.responded::numeric / nullif(r.targets, 0), 4) AS response_rate,
       lc.level_counts || jsonb_build_object('none', r.targets - c.responded) AS level_counts,
       lc.worst_level, lc.worst_color, lc.worst_icon,
       r.form_id, r.event_id, r.rule_id, r.closed_at, r.cancelled_at, r.cancel_reason
FROM status_checker.request r
JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
CROSS JOIN LATERAL (
    -- committed counters (64 slots) plus this transaction's own pending change
    SELECT coalesce(sum(x.responded), 0)::integer + coalesce(p.delta[1], 0) AS responded,
           ARRAY(SELECT sum(u.v)::integer + coalesce(p.delta[u.i + 1], 0)
                 FROM status_checker.request_counter y
                 CROSS JOIN LATERAL unnest(y.counts) WITH ORDINALITY AS u(v, i)
                 WHERE y.tenant_id = r.tenant_id AND y.request_id = r.request_id
                 GROUP BY u.i ORDER BY u.i) AS counts
    FROM status_checker.request_counter x,
         (SELECT status_checker._pending_counts(r.tenant_id, r.request_id) AS delta) p
    WHERE x.tenant_id = r.tenant_id AND x.request_id = r.request_id
    GROUP BY p.delta
) c
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(fl.level::text, c.counts[fl.level + 1] ORDER BY fl.level) AS level_counts,
           max(fl.level) FILTER (WHERE c.counts[fl.level + 1] > 0) AS worst_level,
           (array_agg(fl.color ORDER BY fl.level DESC) FILTER (WHERE c.counts[fl.level + 1] > 0))[1] AS worst_color,
           (array_agg(fl.icon ORDER BY fl.level DESC) FILTER (WHERE c.counts[fl.level + 1] > 0))[1] AS worst_icon
    FROM status_checker._form_levels(f.definition) fl
) lc;
COMMENT ON VIEW status_checker.request_summary IS
'Per request: targets, responded, response rate (0-1), counts per level plus "none" (no answer), the worst level and its colour';
GRANT SELECT ON status_checker.request_summary TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.site_status WITH (security_invoker = true) AS
SELECT t.request_id, t.tenant_id, t.site_id, s.code AS site_code, s.name AS site_name,
       g.path AS group_path, t.level,
       fl.label_ja AS level_label, fl.label_en AS level_label_en,
       coalesce(t.color, (status_checker._no_answer_style()).color) AS color,
       coalesce(t.icon, (status_checker._no_answer_style()).icon) AS icon,
       p.answers, t.first_reported_at, t.last_reported_at, t.report_count,
       s.lat, s.lon, s.municipality_code, t.token_issued_at, p.late
FROM status_checker.request_target t
JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id
LEFT JOIN LATERAL (
    SELECT x.label_ja, x.label_en FROM status_checker.form f, status_checker._form_levels(f.definition) x
    WHERE f.tenant_id = r.tenant_id AND f.form_id = r.form_id AND x.level = t.level
) fl ON true;
COMMENT ON VIEW status_checker.site_status IS
'The status matrix: each target site of each request with its latest level, label, colour, icon and answers (level NULL = no answer)';
GRANT SELECT ON status_checker.site_status TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.group_rollup WITH (security_invoker = true) AS
SELECT x.request_id, x.tenant_id, g.group_id, g.path AS group_path, g.depth,
       x.targets, x.responded, round(x.responded::numeric / x.targets, 4) AS response_rate,
       x.worst_level,
       coalesce((SELECT fl.color FROM status_checker._form_levels(f.definition) fl WHERE fl.level = x.worst_level),
                (status_checker._no_answer_style()).color) AS color
FROM (
    SELECT t.request_id, t.tenant_id, a.group_id,
           count(*)::integer AS targets, count(t.level)::integer AS responded, max(t.level) AS worst_level
    FROM status_checker.request_target t
    JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
    JOIN status_checker.site_group sg ON sg.tenant_id = s.tenant_id AND sg.group_id = s.group_id
    CROSS JOIN LATERAL unnest(sg.ancestors) AS a(group_id)
    GROUP BY t.request_id, t.tenant_id, a.group_id
) x
JOIN status_checker.site_group g ON g.tenant_id = x.tenant_id AND g.group_id = x.group_id
JOIN status_checker.request r ON r.tenant_id = x.tenant_id AND r.request_id = x.request_id
JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id;
COMMENT ON VIEW status_checker.group_rollup IS
'Per request and site group (including all sites of its sub-groups): targets, responded, response rate, worst level and its colour';
GRANT SELECT ON status_checker.group_rollup TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.answer_counts WITH (security_invoker = true) AS
WITH latest AS (
    -- each target's latest answer to each question, arrays expanded
    SELECT t.tenant_id, t.request_id, a.key AS question_key,
           CASE WHEN jsonb_typeof(e.value) = 'string' THEN e.value #>> '{}' ELSE e.value::text END AS choice_value
    FROM status_checker.request_target t
    JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id
    CROSS JOIN LATERAL jsonb_each(p.answers) AS a(key, value)
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(a.value) = 'array' THEN a.value
                                                 ELSE jsonb_build_array(a.value) END) AS e(value)
    WHERE jsonb_typeof(e.value) IN ('string', 'boolean')
), tally AS (
    SELECT tenant_id, request_id, question_key, choice_value, count(*)::integer AS n
    FROM latest GROUP BY 1, 2, 3, 4
), choices AS (
    SELECT r.tenant_id, r.request_id, q.ord AS q_ord, q.value ->> 'key' AS question_key,
           c.ord AS c_ord, c.value ->> 'value' AS choice_value,
           coalesce(c.value -> 'label' ->> 'ja', c.value -> 'label' ->> 'en') AS choice_label
    FROM status_checker.request r
    JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
    CROSS JOIN LATERAL jsonb_array_elements(f.definition -> 'questions') WITH ORDINALITY AS q(value, ord)
    CROSS JOIN LATERAL jsonb_array_elements(CASE q.value ->> 'type'
            WHEN 'boolean' THEN '[{"value": "true", "label": {"ja": "はい", "en": "Yes"}},
                                  {"value": "false", "label": {"ja": "いいえ", "en": "No"}}]'::jsonb
            ELSE coalesce(q.value -> 'choices', '[]') END) WITH ORDINALITY AS c(value, ord)
    WHERE q.value ->> 'type' IN ('single', 'multi', 'boolean')
)
SELECT c.request_id, c.tenant_id, c.question_key, c.choice_value, c.choice_label,
       coalesce(t.n, 0) AS count, c.q_ord AS question_order, c.c_ord AS choice_order
FROM choices c
LEFT JOIN tally t ON t.tenant_id = c.tenant_id AND t.request_id = c.request_id
                 AND t.question_key = c.question_key AND t.choice_value = c.choice_value;
COMMENT ON VIEW status_checker.answer_counts IS
'Per request, choice question and choice: how many sites currently give that answer (latest reports; every choice listed, zeros included)';
GRANT SELECT ON status_checker.answer_counts TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.response_timeline WITH (security_invoker = true) AS
SELECT m.request_id, m.tenant_id, m.minute,
       (sum(m.n) OVER (PARTITION BY m.tenant_id, m.request_id ORDER BY m.minute))::integer AS responded
FROM (
    SELECT t.request_id, t.tenant_id, date_trunc('minute', t.first_reported_at) AS minute, count(*) AS n
    FROM status_checker.request_target t
    WHERE t.first_reported_at IS NOT NULL
    GROUP BY 1, 2, 3
) m;
COMMENT ON VIEW status_checker.response_timeline IS
'Per request and minute in which a site first answered: sites that had answered by the end of that minute (cumulative)';
GRANT SELECT ON status_checker.response_timeline TO status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker.request_geojson(request_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    result jsonb;
BEGIN
    SELECT * INTO r FROM status_checker.request q WHERE q.request_id = request_geojson.request_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist', request_geojson.request_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT jsonb_build_object(
        'type', 'FeatureCollection',
        'request', (SELECT jsonb_build_object('request_id', s.request_id, 'title', s.title, 'state', s.state,
                                              'drill', s.drill, 'targets', s.targets, 'responded', s.responded,
                                              'response_rate', s.response_rate, 'level_counts', s.level_counts,
                                              'worst_level', s.worst_level, 'worst_color', s.worst_color)
                    FROM status_checker.request_summary s
                    WHERE s.tenant_id = r.tenant_id AND s.request_id = r.request_id),
        'features', coalesce(jsonb_agg(jsonb_build_object(
            'type', 'Feature',
            'id', st.site_code,
            'geometry', jsonb_build_object('type', 'Point', 'coordinates', jsonb_build_array(st.lon, st.lat)),
            'properties', jsonb_build_object(
                'site_code', st.site_code, 'site_name', st.site_name, 'group_path', st.group_path,
                'responded', st.level IS NOT NULL, 'level', st.level,
                'level_label', st.level_label, 'level_label_en', st.level_label_en,
                'color', st.color, 'icon', st.icon,
                'report_count', st.report_count, 'last_reported_at', st.last_reported_at))
            ORDER BY st.site_code), '[]'::jsonb))
    INTO result
    FROM status_checker.site_status st
    WHERE st.tenant_id = r.tenant_id AND st.request_id = r.request_id AND st.lat IS NOT NULL;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.request_geojson(bigint) IS
'GeoJSON FeatureCollection of a request''s sites (those with coordinates) with level, label, colour and icon in each feature''s properties; '
'sites without an answer have level null and a grey help icon. The foreign member "request" holds the summary';
ALTER FUNCTION status_checker.request_geojson(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.request_geojson(bigint) TO status_checker_viewer, status_checker_operator;

-- ---- src/feeds/feeds.sql
-- src/feeds/feeds.sql — disaster events from JMA, P2PQuake and USGS feeds.
--
-- Global data (no tenant): an event, the latest document of each of its
-- products (VXSE51, VXSE52, VXSE53, VTSE41 … for JMA; ScalePrompt,
-- DetailScale … for P2PQuake; summary/detail for USGS), and the
-- intensities and tsunami warnings each product reported.  One quake's
-- telegrams share an event through (source, kind, source_event_id); a
-- product's newer revision replaces its older one; the event's own fields
-- are recomputed from its products after every change.  The parsers are C
-- (src/feeds/feed_*.c); _parse_feed_document returns their event model as
-- jsonb and ingest_feed_document stores it.

CREATE TABLE status_checker.event (
    event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL CHECK (source IN ('jma', 'p2pquake', 'usgs')),
    kind             text NOT NULL,
    source_event_id  text NOT NULL,
    aliases          text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL CHECK (status IN ('actual', 'training', 'test', 'cancelled')),
    origin_time      timestamptz,
    epicenter_name   text,
    epicenter_code   text,
    lat              double precision,
    lon              double precision,
    depth_km         double precision,
    magnitude        numeric(3,1),
    max_shindo       status_checker.shindo,
    headline         text,
    foreign_quake    boolean NOT NULL DEFAULT false,
    best_product     text,                 -- the product whose intensities count
    detail_level     integer NOT NULL DEFAULT 0,   -- 0 none, 1 areas, 2 municipalities
    extra            jsonb NOT NULL DEFAULT '{}',
    revision         integer NOT NULL DEFAULT 0,   -- 1 after the first document
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (source, kind, source_event_id)
);
CREATE INDEX ON status_checker.event USING gin (aliases) WHERE source = 'usgs';
CREATE INDEX ON status_checker.event (origin_time);
COMMENT ON TABLE status_checker.event IS
'A disaster event (earthquake, tsunami, EEW) as its feed reported it; one row per (source, kind, source event id)';
GRANT SELECT ON status_checker.event TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.event_product (
    event_id      bigint NOT NULL REFERENCES status_checker.event ON DELETE CASCADE,
    product       text NOT NULL,
    serial        integer,
    issued_at     timestamptz NOT NULL,
    info_type     text NOT NULL CHECK (info_type IN ('issued', 'corrected', 'cancelled')),
    status        text NOT NULL CHECK (status IN ('actual', 'training', 'test')),
    detail_level  integer NOT NULL DEFAULT 0,
    message_id    text,
    document      jsonb NOT NULL,          -- the parsed model, without intensities
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (event_id, product)
);
COMMENT ON TABLE status_checker.event_product IS
'The latest document of each product of an event (highest serial, then latest issue time); older revisions are replaced';
GRANT SELECT ON status_checker.event_product TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.event_product_intensity (
    event_id    bigint NOT NULL,
    product     text NOT NULL,
    ord         integer NOT NULL,
    scope       text NOT NULL CHECK (scope IN ('pref', 'area', 'city', 'station')),
    code        text,
    name        text,
    shindo      status_checker.shindo,
    incomplete  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, product, ord),
    FOREIGN KEY (event_id, product) REFERENCES status_checker.event_product ON DELETE CASCADE
);
CREATE INDEX ON status_checker.event_product_intensity (event_id, product, scope, code);
COMMENT ON TABLE status_checker.event_product_intensity IS
'Intensities per prefecture, area, municipality and station as one product of an event reported them';
GRANT SELECT ON status_checker.event_product_intensity TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.event_product_tsunami (
    event_id        bigint NOT NULL,
    product         text NOT NULL,
    ord             integer NOT NULL,
    code            text,
    name            text,
    kind_code       text,
    kind_name       text,
    last_kind_code  text,
    max_height_m    numeric,
    max_height_text text,
    first_arrival   timestamptz,
    condition       text,
    PRIMARY KEY (event_id, product, ord),
    FOREIGN KEY (event_id, product) REFERENCES status_checker.event_product ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.event_product_tsunami IS
'Tsunami warnings, advisories and forecasts per 津波予報区 as one product reported them';
GRANT SELECT ON status_checker.event_product_tsunami TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.disaster_event WITH (security_invoker = true) AS
SELECT e.event_id, e.source, e.source_event_id, e.kind, e.status, e.origin_time,
       e.epicenter_name, e.lat, e.lon, e.depth_km, e.magnitude, e.max_shindo, e.headline,
       e.revision, e.updated_at,
       e.best_product, e.detail_level, e.foreign_quake, e.aliases, e.extra
FROM status_checker.event e;
COMMENT ON VIEW status_checker.disaster_event IS
'Disaster events from the feeds: source and its event id, kind, status (actual, training, test, cancelled), '
'origin time, epicentre, depth, magnitude (NULL when unknown), maximum shindo, headline, revision';
GRANT SELECT ON status_checker.disaster_event TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.event_intensity WITH (security_invoker = true) AS
SELECT i.event_id, i.scope, i.code, i.name, i.shindo, i.incomplete, i.product
FROM status_checker.event e
JOIN status_checker.event_product_intensity i ON i.event_id = e.event_id AND i.product = e.best_product;
COMMENT ON VIEW status_checker.event_intensity IS
'Observed intensities of each event per prefecture, area, municipality (city) and station, from its most detailed '
'current product; incomplete = JMA says 震度5弱 or more may have been observed but not received';
GRANT SELECT ON status_checker.event_intensity TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.event_tsunami WITH (security_invoker = true) AS
SELECT t.event_id, t.code, t.name, t.kind_code, t.kind_name, t.last_kind_code,
       t.max_height_m, t.max_height_text, t.first_arrival, t.condition, t.product
FROM status_checker.event e
JOIN status_checker.event_product p ON p.event_id = e.event_id AND p.info_type <> 'cancelled'
JOIN status_checker.event_product_tsunami t ON t.event_id = p.event_id AND t.product = p.product
WHERE e.kind = 'tsunami';
COMMENT ON VIEW status_checker.event_tsunami IS
'Tsunami warning kinds per 津波予報区 (52/53 大津波警報, 51 津波警報, 62 津波注意報, 7x 津波予報, 50/60 解除)';
GRANT SELECT ON status_checker.event_tsunami TO status_checker_viewer, status_checker_operator;

-- --------------------------------------------------------------- parsing

CREATE FUNCTION status_checker._parse_feed_document(source text, body bytea) RETURNS jsonb
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_parse_feed_document';
COMMENT ON FUNCTION status_checker._parse_feed_document(text, bytea) IS
'Internal: parse one feed document into the event model (jsonb) without storing anything';

CREATE FUNCTION status_checker.parse_feed_document(source text, body text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN status_checker._parse_feed_document(source, convert_to(body, 'UTF8'));
COMMENT ON FUNCTION status_checker.parse_feed_document(text, text) IS
'Parse one feed document (source jma, jma_atom, p2pquake or usgs) and return its event model as jsonb; stores nothing';
GRANT EXECUTE ON FUNCTION status_checker.parse_feed_document(text, text) TO status_checker_api, status_checker_operator;

-- ---------------------------------------------------------------- storing

-- Store one event of the model.  Returns the event's id if anything
-- changed, else NULL.
CREATE FUNCTION status_checker._ingest_event(ev jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    v_source text := ev ->> 'source';
    v_kind text := ev ->> 'kind';
    v_id text := ev ->> 'source_event_id';
    v_product text := ev ->> 'product';
    v_serial integer := (ev ->> 'serial')::integer;
    v_issued timestamptz := (ev ->> 'issued_at')::timestamptz;
    v_info text := ev ->> 'info_type';
    v_aliases text[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(ev -> 'aliases', '[]')));
    v_event bigint;
    old status_checker.event_product;
BEGIN
    IF v_source IS NULL OR v_kind IS NULL OR v_id IS NULL OR v_product IS NULL OR v_issued IS NULL THEN
        RAISE EXCEPTION 'incomplete event model: %', left(ev::text, 200) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- USGS: an event may come back under another preferred id; match any alias
    IF v_source = 'usgs' THEN
        SELECT e.event_id INTO v_event FROM status_checker.event e
        WHERE e.source = 'usgs' AND e.kind = v_kind
          AND (e.source_event_id = v_id OR e.aliases && v_aliases)
        ORDER BY e.event_id LIMIT 1 FOR UPDATE;
    ELSE
        SELECT e.event_id INTO v_event FROM status_checker.event e
        WHERE e.source = v_source AND e.kind = v_kind AND e.source_event_id = v_id FOR UPDATE;
    END IF;
    IF v_event IS NULL THEN
        INSERT INTO status_checker.event (source, kind, source_event_id, aliases, status)
        VALUES (v_source, v_kind, v_id, v_aliases, 'actual')
        ON CONFLICT (source, kind, source_event_id) DO NOTHING
        RETURNING event_id INTO v_event;
        IF v_event IS NULL THEN   -- a concurrent ingest created it
            SELECT e.event_id INTO v_event FROM status_checker.event e
            WHERE e.source = v_source AND e.kind = v_kind AND e.source_event_id = v_id FOR UPDATE;
        END IF;
    END IF;

    SELECT * INTO old FROM status_checker.event_product p
    WHERE p.event_id = v_event AND p.product = v_product FOR UPDATE;
    IF FOUND THEN
        -- same or older revision of this product: nothing to do.  A 取消
        -- repeats the serial it withdraws, so it wins a tie.
        IF (coalesce(v_serial, 0), v_issued, v_info = 'cancelled')
           <= (coalesce(old.serial, 0), old.issued_at, old.info_type = 'cancelled') THEN
            RETURN NULL;
        END IF;
        DELETE FROM status_checker.event_product p WHERE p.event_id = v_event AND p.product = v_product;
    END IF;

    INSERT INTO status_checker.event_product
        (event_id, product, serial, issued_at, info_type, status, detail_level, message_id, document)
    VALUES (v_event, v_product, v_serial, v_issued, v_info, ev ->> 'status',
            coalesce((ev ->> 'detail_level')::integer, 0), ev ->> 'message_id',
            ev - 'intensities' - 'tsunami');

    IF v_info <> 'cancelled' THEN
        INSERT INTO status_checker.event_product_intensity
            (event_id, product, ord, scope, code, name, shindo, incomplete)
        SELECT v_event, v_product, i.ord, i.x ->> 'scope',
               coalesce(i.x ->> 'code', CASE i.x ->> 'scope'
                   -- P2PQuake gives names: map them through JMA's tables
                   WHEN 'area' THEN (SELECT a.code FROM status_checker.jma_area a WHERE a.name = i.x ->> 'name' LIMIT 1)
                   WHEN 'station' THEN (SELECT s.code FROM status_checker.jma_station s WHERE s.name = i.x ->> 'name' LIMIT 1)
               END),
               i.x ->> 'name', (i.x ->> 'shindo')::status_checker.shindo, coalesce((i.x ->> 'incomplete')::boolean, false)
        FROM jsonb_array_elements(coalesce(ev -> 'intensities', '[]')) WITH ORDINALITY AS i(x, ord);
        -- P2PQuake DetailScale lists stations only: derive their municipalities
        IF v_source = 'p2pquake' AND NOT EXISTS (
            SELECT 1 FROM status_checker.event_product_intensity i
            WHERE i.event_id = v_event AND i.product = v_product AND i.scope IN ('city', 'area')) THEN
            INSERT INTO status_checker.event_product_intensity
                (event_id, product, ord, scope, code, name, shindo, incomplete)
            SELECT v_event, v_product, 100000 + row_number() OVER (ORDER BY m.code), 'city', m.code, min(m.name),
                   status_checker.max(i.shindo), bool_or(i.incomplete)
            FROM status_checker.event_product_intensity i
            JOIN status_checker.jma_station s ON s.code = i.code
            JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
            WHERE i.event_id = v_event AND i.product = v_product AND i.scope = 'station'
            GROUP BY m.code;
        END IF;
        INSERT INTO status_checker.event_product_tsunami
            (event_id, product, ord, code, name, kind_code, kind_name, last_kind_code,
             max_height_m, max_height_text, first_arrival, condition)
        SELECT v_event, v_product, t.ord, t.x ->> 'code', t.x ->> 'name', t.x ->> 'kind_code', t.x ->> 'kind_name',
               t.x ->> 'last_kind_code', (t.x ->> 'max_height_m')::numeric, t.x ->> 'max_height_text',
               (t.x ->> 'first_arrival')::timestamptz, coalesce(t.x ->> 'first_condition', t.x ->> 'max_condition')
        FROM jsonb_array_elements(coalesce(ev -> 'tsunami', '[]')) WITH ORDINALITY AS t(x, ord);
    END IF;

    PERFORM status_checker._recompute_event(v_event, v_aliases);
    RETURN v_event;
END
$$;
COMMENT ON FUNCTION status_checker._ingest_event(jsonb) IS
'Internal: store one event of the parsed model (idempotent per product revision); returns the event id if anything changed, else NULL';

-- Recompute an event's fields from its current products.
CREATE FUNCTION status_checker._recompute_event(p_event bigint, p_aliases text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    live integer;
    base text;
    hypo jsonb;
    best status_checker.event_product;
    latest jsonb;
BEGIN
    SELECT count(*) FILTER (WHERE p.info_type <> 'cancelled'),
           (array_agg(p.status ORDER BY p.issued_at DESC))[1]
    INTO live, base
    FROM status_checker.event_product p WHERE p.event_id = p_event;
    -- the hypocentre from the latest live product that has one
    SELECT p.document INTO hypo FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.info_type <> 'cancelled'
      AND (p.document ? 'lat' OR p.document ? 'epicenter_name' OR p.document ? 'origin_time')
    ORDER BY (p.document -> 'lat') IS NOT NULL AND p.document -> 'lat' <> 'null' DESC, p.issued_at DESC LIMIT 1;
    -- the intensities from the most detailed live product, then the latest
    SELECT * INTO best FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.info_type <> 'cancelled' AND p.detail_level > 0
    ORDER BY p.detail_level DESC, coalesce(p.serial, 0) DESC, p.issued_at DESC LIMIT 1;
    SELECT p.document INTO latest FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.info_type <> 'cancelled' ORDER BY p.issued_at DESC LIMIT 1;

    UPDATE status_checker.event e SET
        status = CASE WHEN live = 0 THEN 'cancelled' ELSE base END,
        origin_time = coalesce((hypo ->> 'origin_time')::timestamptz, e.origin_time),
        epicenter_name = coalesce(hypo ->> 'epicenter_name', e.epicenter_name),
        epicenter_code = coalesce(hypo ->> 'epicenter_code', e.epicenter_code),
        lat = coalesce((hypo ->> 'lat')::double precision, e.lat),
        lon = coalesce((hypo ->> 'lon')::double precision, e.lon),
        depth_km = coalesce((hypo ->> 'depth_km')::double precision, e.depth_km),
        magnitude = CASE WHEN hypo IS NULL THEN e.magnitude
                         ELSE round((hypo ->> 'magnitude')::numeric, 1) END,
        max_shindo = coalesce((best.document ->> 'max_shindo')::status_checker.shindo,
                              (latest ->> 'max_shindo')::status_checker.shindo, e.max_shindo),
        headline = coalesce(latest ->> 'headline', e.headline),
        foreign_quake = coalesce((latest ->> 'foreign')::boolean, e.foreign_quake),
        best_product = best.product,
        detail_level = coalesce(best.detail_level, 0),
        aliases = ARRAY(SELECT DISTINCT a FROM unnest(e.aliases || p_aliases) a ORDER BY a),
        extra = e.extra || jsonb_strip_nulls(jsonb_build_object(
                    'magnitude_text', hypo ->> 'magnitude_text', 'depth_text', hypo ->> 'depth_text',
                    'mmi', latest -> 'mmi', 'alert', latest -> 'alert', 'url', latest -> 'url',
                    'shakemap_max_mmi', latest -> 'shakemap_max_mmi', 'lifted', latest -> 'lifted',
                    'related_event_ids', latest -> 'related_event_ids', 'office', latest -> 'office',
                    'target_time', latest -> 'target_time')),
        revision = e.revision + 1,
        updated_at = pg_catalog.now()
    WHERE e.event_id = p_event;
END
$$;
COMMENT ON FUNCTION status_checker._recompute_event(bigint, text[]) IS
'Internal: recompute an event''s status, hypocentre, maximum intensity and best product from its products';

CREATE FUNCTION status_checker.ingest_feed_document(source text, body bytea) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    model jsonb;
    ev jsonb;
    changed integer := 0;
    v_event bigint;
    touched bigint[] := '{}';
BEGIN
    -- the body is only tested for NULL (as import_sites does): no text copy of a large document
    PERFORM status_checker._no_nulls('ingest_feed_document', ARRAY['source', 'body'],
                                     ARRAY[ingest_feed_document.source, nullif((ingest_feed_document.body IS NOT NULL)::text, 'false')]);
    IF ingest_feed_document.source = 'jma_atom' THEN
        RAISE EXCEPTION 'an Atom feed lists telegrams but holds no event'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ingest each telegram with source jma, or let the feed watcher follow the feed (add_feed).';
    END IF;
    model := status_checker._parse_feed_document(ingest_feed_document.source, ingest_feed_document.body);
    FOR ev IN SELECT x FROM jsonb_array_elements(model -> 'events') x LOOP
        v_event := status_checker._ingest_event(ev);
        IF v_event IS NOT NULL THEN
            changed := changed + 1;
            touched := touched || v_event;
        END IF;
    END LOOP;
    -- rules see each changed event once, after all of the document is stored
    PERFORM status_checker._fire_rules(t) FROM (SELECT DISTINCT unnest(touched) t ORDER BY 1) s;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION status_checker.ingest_feed_document(text, bytea) IS
'Parse one feed document (jma: a JMA XML telegram; p2pquake: a /v2/history array or one object; usgs: a GeoJSON '
'FeatureCollection or Feature), store its events idempotently and run the trigger rules; returns events created or changed';
GRANT EXECUTE ON FUNCTION status_checker.ingest_feed_document(text, bytea) TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.ingest_feed_document(source text, body text) RETURNS integer
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN status_checker.ingest_feed_document(source, convert_to(body, 'UTF8'));
COMMENT ON FUNCTION status_checker.ingest_feed_document(text, text) IS
'Parse one feed document given as text (jma, p2pquake or usgs), store its events idempotently and run the trigger '
'rules; returns events created or changed';
GRANT EXECUTE ON FUNCTION status_checker.ingest_feed_document(text, text) TO status_checker_api, status_checker_operator;

-- ---- src/feeds/watcher.sql
-- src/feeds/watcher.sql — the feeds the watcher polls, and its health.
--
-- The feed watcher background worker (src/feeds/watcher.c) does only the
-- network I/O; every decision is here, in short transactions it calls
-- between fetches: which feeds are due (_feed_due), what a poll brought
-- (_feed_polled: Atom entries to fetch, or a document to ingest), what a
-- telegram fetch brought (_feed_document_fetched).  One bad feed or
-- document is recorded and counted; nothing else is affected.

CREATE TABLE status_checker.feed (
    feed_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('jma_atom', 'p2pquake', 'usgs_geojson')),
    url                 text NOT NULL UNIQUE CHECK (url ~ '^https?://'),
    poll_interval       interval NOT NULL CHECK (poll_interval >= '1 second'),
    enabled             boolean NOT NULL DEFAULT true,
    etag                text,
    last_modified       text,
    next_poll_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_poll_at        timestamptz,
    last_success_at     timestamptz,
    last_error          text,
    last_error_at       timestamptz,
    consecutive_errors  integer NOT NULL DEFAULT 0,
    polls               bigint NOT NULL DEFAULT 0,
    not_modified        bigint NOT NULL DEFAULT 0,
    documents           bigint NOT NULL DEFAULT 0,
    bad_documents       bigint NOT NULL DEFAULT 0,
    events              bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.feed IS
'A feed the watcher polls (JMA Atom, P2PQuake history, USGS GeoJSON): conditional-GET state, schedule and health counters';
GRANT SELECT ON status_checker.feed TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.feed_document (
    url          text PRIMARY KEY,             -- a JMA telegram URL is fetched once
    feed_id      bigint NOT NULL REFERENCES status_checker.feed ON DELETE CASCADE,
    product      text,
    listed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    entry_updated timestamptz,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ingested', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    fetched_at   timestamptz,
    bytes        integer,
    events       integer,
    error        text
);
CREATE INDEX ON status_checker.feed_document (feed_id, state);
COMMENT ON TABLE status_checker.feed_document IS
'Telegrams listed by a JMA Atom feed: fetched once each (pending, ingested, or failed after 3 attempts)';

CREATE FUNCTION status_checker.add_feed(kind text, url text, poll_interval interval DEFAULT '60 seconds')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('add_feed', ARRAY['kind', 'url', 'poll_interval'],
                                     ARRAY[add_feed.kind, add_feed.url, add_feed.poll_interval::text]);
    IF add_feed.kind NOT IN ('jma_atom', 'p2pquake', 'usgs_geojson') THEN
        RAISE EXCEPTION 'unknown feed kind %', quote_literal(add_feed.kind)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use jma_atom, p2pquake or usgs_geojson.';
    END IF;
    IF add_feed.url !~ '^https?://[^/\s]+' OR length(add_feed.url) > 2000 THEN
        RAISE EXCEPTION 'invalid feed URL %', quote_literal(add_feed.url)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A feed URL is http:// or https://.';
    END IF;
    IF add_feed.poll_interval < '1 second' THEN
        RAISE EXCEPTION 'poll interval % is shorter than one second', add_feed.poll_interval
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'JMA asks for at most one poll a minute; USGS caches for 60 seconds.';
    END IF;
    INSERT INTO status_checker.feed (kind, url, poll_interval)
    VALUES (add_feed.kind, add_feed.url, add_feed.poll_interval)
    RETURNING feed_id INTO v_id;
    RETURN v_id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'feed % already exists', quote_literal(add_feed.url) USING ERRCODE = 'unique_violation';
END
$$;
COMMENT ON FUNCTION status_checker.add_feed(text, text, interval) IS
'Add a feed for the watcher to poll: jma_atom (eqvol.xml), p2pquake (/v2/history) or usgs_geojson (summary feed); returns the feed id';
GRANT EXECUTE ON FUNCTION status_checker.add_feed(text, text, interval) TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.remove_feed(feed_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('remove_feed', ARRAY['feed_id'], ARRAY[remove_feed.feed_id::text]);
    DELETE FROM status_checker.feed f WHERE f.feed_id = remove_feed.feed_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feed % does not exist', remove_feed.feed_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.remove_feed(bigint) IS 'Stop polling a feed and forget its documents (events stay)';
GRANT EXECUTE ON FUNCTION status_checker.remove_feed(bigint) TO status_checker_api, status_checker_operator;

CREATE VIEW status_checker.feed_health WITH (security_invoker = true) AS
SELECT f.feed_id, f.kind, f.url, f.enabled, f.poll_interval,
       f.last_poll_at, f.last_success_at, f.last_error, f.last_error_at, f.consecutive_errors,
       f.next_poll_at, f.polls, f.not_modified, f.documents, f.bad_documents, f.events,
       (SELECT count(*) FROM status_checker.feed_document d WHERE d.feed_id = f.feed_id AND d.state = 'pending') AS pending_documents,
       w.pid AS watcher_pid, w.backend_start AS watcher_started, w.state_change AS watcher_last_active,
       CASE WHEN NOT f.enabled THEN 'disabled'
            WHEN w.pid IS NULL THEN 'no watcher'
            WHEN f.consecutive_errors > 0 THEN 'failing'
            WHEN f.last_success_at IS NULL THEN 'starting'
            ELSE 'ok' END AS health
FROM status_checker.feed f
LEFT JOIN LATERAL (
    SELECT a.pid, a.backend_start, a.state_change FROM pg_catalog.pg_stat_activity a
    WHERE a.backend_type = 'status_checker feed watcher' AND a.datname = current_database()
    LIMIT 1) w ON true;
COMMENT ON VIEW status_checker.feed_health IS
'Per feed: last poll, last success, last error, consecutive errors, documents and events ingested, and whether the watcher runs';
GRANT SELECT ON status_checker.feed_health TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------ called by the watcher

CREATE FUNCTION status_checker._feed_due()
    RETURNS TABLE (feed_id bigint, kind text, url text, etag text, last_modified text)
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT f.feed_id, f.kind, f.url, f.etag, f.last_modified FROM status_checker.feed f
    WHERE f.enabled AND f.next_poll_at <= pg_catalog.clock_timestamp()
    ORDER BY f.next_poll_at;
END;
COMMENT ON FUNCTION status_checker._feed_due() IS 'Internal (feed watcher): the feeds due for a poll';

CREATE FUNCTION status_checker._feed_next_wait() RETURNS double precision
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT coalesce(extract(epoch FROM min(f.next_poll_at) - pg_catalog.clock_timestamp())::double precision, 3600)
    FROM status_checker.feed f WHERE f.enabled;
END;
COMMENT ON FUNCTION status_checker._feed_next_wait() IS 'Internal (feed watcher): seconds until the next feed is due';

CREATE FUNCTION status_checker._feed_failed(p_feed bigint, p_error text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- exponential backoff with jitter: interval × 2^errors, at most one hour
    UPDATE status_checker.feed f
    SET polls = f.polls + 1, last_poll_at = pg_catalog.now(),
        last_error = left(p_error, 1000), last_error_at = pg_catalog.now(),
        consecutive_errors = f.consecutive_errors + 1,
        next_poll_at = pg_catalog.clock_timestamp()
            + least(f.poll_interval * power(2, least(f.consecutive_errors + 1, 12)), interval '1 hour')
              * (0.75 + random() * 0.5)
    WHERE f.feed_id = p_feed;
END;
COMMENT ON FUNCTION status_checker._feed_failed(bigint, text) IS
'Internal (feed watcher): record a failed poll and back off exponentially (with jitter, at most an hour)';

-- Record a problem with a feed's document: the message, whether it counts
-- as a bad document, and whether the feed itself is failing (its own body
-- is bad) rather than one telegram it listed.
CREATE FUNCTION status_checker._feed_note_error(p_feed bigint, p_error text, p_bad boolean, p_failing boolean)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE status_checker.feed x
    SET last_error = left(p_error, 1000), last_error_at = pg_catalog.now(),
        bad_documents = x.bad_documents + p_bad::integer,
        consecutive_errors = CASE WHEN p_failing THEN 1 ELSE x.consecutive_errors END
    WHERE x.feed_id = p_feed;
END;
COMMENT ON FUNCTION status_checker._feed_note_error(bigint, text, boolean, boolean) IS
'Internal (feed watcher): record a bad document of a feed';

-- Record a successful poll (HTTP 200 or 304).  For an Atom feed, list its
-- new telegrams; for P2PQuake and USGS, ingest the body.  Returns the
-- telegram URLs the watcher should fetch now.
CREATE FUNCTION status_checker._feed_polled(p_feed bigint, p_status integer, p_etag text, p_last_modified text, p_body bytea)
    RETURNS TABLE (url text)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f status_checker.feed;
    model jsonb;
    n integer;
    err text;
BEGIN
    SELECT * INTO f FROM status_checker.feed x WHERE x.feed_id = p_feed FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE status_checker.feed x
    SET polls = x.polls + 1, last_poll_at = pg_catalog.now(), last_success_at = pg_catalog.now(),
        consecutive_errors = 0,
        not_modified = x.not_modified + (p_status = 304)::integer,
        etag = CASE WHEN p_status = 200 THEN p_etag ELSE coalesce(p_etag, x.etag) END,
        last_modified = CASE WHEN p_status = 200 THEN p_last_modified ELSE coalesce(p_last_modified, x.last_modified) END,
        next_poll_at = pg_catalog.clock_timestamp() + x.poll_interval
    WHERE x.feed_id = p_feed;

    IF p_status = 200 THEN
        BEGIN
            IF f.kind = 'jma_atom' THEN
                model := status_checker._parse_feed_document('jma_atom', p_body);
                INSERT INTO status_checker.feed_document (url, feed_id, product, entry_updated)
                SELECT e ->> 'url', p_feed, e ->> 'product', (e ->> 'updated')::timestamptz
                FROM jsonb_array_elements(model -> 'entries') e
                WHERE e ->> 'product' IN ('VXSE51', 'VXSE52', 'VXSE53', 'VXSE61', 'VTSE41')
                ON CONFLICT (url) DO NOTHING;
            ELSE
                n := status_checker.ingest_feed_document(CASE f.kind WHEN 'usgs_geojson' THEN 'usgs' ELSE f.kind END, p_body);
                UPDATE status_checker.feed x SET documents = x.documents + 1, events = x.events + n WHERE x.feed_id = p_feed;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- the feed's own document is bad: the feed counts as failing
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM status_checker._feed_note_error(p_feed, err, true, true);
        END;
    END IF;
    -- oldest first, so that a quake's telegrams are ingested in issue order
    RETURN QUERY SELECT d.url FROM status_checker.feed_document d
                 WHERE d.feed_id = p_feed AND d.state = 'pending'
                 ORDER BY d.entry_updated, d.url;
END
$$;
COMMENT ON FUNCTION status_checker._feed_polled(bigint, integer, text, text, bytea) IS
'Internal (feed watcher): record a successful poll; list new Atom telegrams or ingest the body; returns the URLs to fetch';

CREATE FUNCTION status_checker._feed_document_fetched(p_url text, p_status integer, p_body bytea, p_error text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d status_checker.feed_document;
    n integer;
    err text;
BEGIN
    SELECT * INTO d FROM status_checker.feed_document x WHERE x.url = p_url FOR UPDATE;
    IF NOT FOUND OR d.state <> 'pending' THEN
        RETURN;
    END IF;
    IF p_status <> 200 OR p_body IS NULL THEN
        err := coalesce(p_error, 'HTTP ' || p_status);
        UPDATE status_checker.feed_document x
        SET attempts = x.attempts + 1, error = left(err, 1000), fetched_at = pg_catalog.now(),
            state = CASE WHEN x.attempts + 1 >= 3 THEN 'failed' ELSE 'pending' END
        WHERE x.url = p_url;
        PERFORM status_checker._feed_note_error(d.feed_id, p_url || ': ' || err, d.attempts + 1 >= 3, false);
        RETURN;
    END IF;
    BEGIN
        n := status_checker.ingest_feed_document('jma', p_body);
        UPDATE status_checker.feed_document x
        SET state = 'ingested', attempts = x.attempts + 1, fetched_at = pg_catalog.now(),
            bytes = octet_length(p_body), events = n, error = NULL
        WHERE x.url = p_url;
        UPDATE status_checker.feed x SET documents = x.documents + 1, events = x.events + n WHERE x.feed_id = d.feed_id;
    EXCEPTION WHEN OTHERS THEN
        -- a bad telegram is not fetched again: it would be just as bad
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        UPDATE status_checker.feed_document x
        SET state = 'failed', attempts = x.attempts + 1, fetched_at = pg_catalog.now(),
            bytes = octet_length(p_body), error = left(err, 1000)
        WHERE x.url = p_url;
        PERFORM status_checker._feed_note_error(d.feed_id, p_url || ': ' || err, true, false);
    END;
END
$$;
COMMENT ON FUNCTION status_checker._feed_document_fetched(text, integer, bytea, text) IS
'Internal (feed watcher): ingest a fetched telegram, or count a failed fetch (failed for good after 3 attempts)';

-- _feed_document_refused: src/feeds/telegram_origin.sql (0.10.1).

-- ---- src/feeds/telegram_origin.sql
-- src/feeds/telegram_origin.sql — a telegram is fetched only from its
-- feed's own origin.  Written with CREATE OR REPLACE: an upgrade script
-- can replay the same text.

-- A telegram on another host than its feed's, or redirected to one, is not
-- fetched (src/feeds/watcher.c, 0.10.1): failed at once, counted as a bad
-- document of its feed, and the feed says why; the feed is not failing.
CREATE OR REPLACE FUNCTION status_checker._feed_document_refused(p_url text, p_reason text, p_fetched boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_feed bigint;
BEGIN
    UPDATE status_checker.feed_document x
    SET state = 'failed', attempts = x.attempts + p_fetched::integer, error = left(p_reason, 1000),
        fetched_at = CASE WHEN p_fetched THEN pg_catalog.now() ELSE x.fetched_at END
    WHERE x.url = p_url AND x.state = 'pending'
    RETURNING x.feed_id INTO v_feed;
    IF FOUND THEN
        PERFORM status_checker._feed_note_error(v_feed, p_url || ': ' || p_reason, true, false);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._feed_document_refused(text, text, boolean) IS
'Internal (feed watcher): a telegram not fetched because it is on another host than its feed''s, or redirected to one (p_fetched: the redirect was fetched); failed at once and counted';

-- ---- src/triggers/triggers.sql
-- src/triggers/triggers.sql — trigger rules: events make requests by themselves.
--
-- A rule of a tenant says which hazard (earthquake, tsunami), from which
-- sources, from which intensity and for which sites a request is created.
-- _decide_all() is the one place that says, for an event, its rules and
-- each site of their tenants, whether the site is asked and why;
-- _fire_rules() acts on it when an event is stored or changes (all rules in
-- one pass), backtest_rule() shows it for one rule without acting, and the
-- view trigger_decision explains every evaluation.
--
-- Exactly one effect per cause: trigger_fire has one row per (rule, event)
-- and points to the one request; later telegrams of the same event only
-- add newly affected sites to it (request_target, with the intensity the
-- site was asked at and why).

CREATE TABLE status_checker.trigger_rule (
    tenant_id      bigint NOT NULL REFERENCES status_checker.tenant,
    rule_id        bigint GENERATED ALWAYS AS IDENTITY,
    name           text NOT NULL,
    form_id        bigint NOT NULL,
    hazard         text NOT NULL DEFAULT 'earthquake' CHECK (hazard IN ('earthquake', 'tsunami')),
    min_shindo     status_checker.shindo,
    tsunami_kinds  text[] NOT NULL DEFAULT '{51,52,53}',
    target         jsonb NOT NULL DEFAULT '{"all": true}',
    deadline       interval NOT NULL DEFAULT '6 hours' CHECK (deadline > '0'),
    drill          boolean NOT NULL DEFAULT false,
    repeat_within  interval CHECK (repeat_within > '0'),
    use_estimate   boolean NOT NULL DEFAULT false,
    sources        text[] NOT NULL DEFAULT '{jma}' CHECK (sources <@ '{jma,p2pquake,usgs}' AND cardinality(sources) > 0),
    message        text,
    reminders      interval[] NOT NULL DEFAULT '{}',   -- copied to the requests the rule creates
    escalate_after interval,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id),
    UNIQUE (rule_id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES status_checker.form (tenant_id, form_id),
    CHECK (hazard <> 'earthquake' OR min_shindo IS NOT NULL)
);
COMMENT ON TABLE status_checker.trigger_rule IS
'A tenant''s rule: when an event of its hazard reaches min_shindo (or a listed tsunami warning kind) at a targeted site, ask those sites';
ALTER TABLE status_checker.trigger_rule ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.trigger_rule FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.trigger_rule
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.trigger_rule TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.trigger_fire (
    tenant_id   bigint NOT NULL,
    rule_id     bigint NOT NULL,
    event_id    bigint NOT NULL REFERENCES status_checker.event,
    request_id  bigint NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES status_checker.trigger_rule,
    FOREIGN KEY (tenant_id, request_id) REFERENCES status_checker.request (tenant_id, request_id)
);
CREATE INDEX ON status_checker.trigger_fire (event_id);
COMMENT ON TABLE status_checker.trigger_fire IS
'The one request a rule created for an event (natural key: rule, event)';
ALTER TABLE status_checker.trigger_fire ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.trigger_fire FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.trigger_fire
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.trigger_fire TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.trigger_evaluation (
    tenant_id     bigint NOT NULL,
    rule_id       bigint NOT NULL,
    event_id      bigint NOT NULL REFERENCES status_checker.event,
    evaluations   integer NOT NULL DEFAULT 1,
    last_revision integer NOT NULL,
    evaluated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES status_checker.trigger_rule
);
COMMENT ON TABLE status_checker.trigger_evaluation IS
'Which rules looked at which events (hazard and source matched), for the trigger_decision view';
ALTER TABLE status_checker.trigger_evaluation ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.trigger_evaluation FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.trigger_evaluation
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.trigger_evaluation TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------ estimated intensity

CREATE FUNCTION status_checker.estimate_shindo(
    magnitude numeric, depth_km double precision,
    epi_lat double precision, epi_lon double precision,
    site_lat double precision, site_lon double precision)
    RETURNS status_checker.shindo
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    -- Si & Midorikawa (1999) peak ground velocity on Vs 600 m/s rock for a
    -- crustal event, amplified to an average site (AVS30 = 400 m/s,
    -- Fujimoto & Midorikawa 2006: ×1.41), converted to JMA instrumental
    -- intensity by Midorikawa et al. (1999): I = 2.68 + 1.72 log10 PGV.
    -- The fault distance X is approximated from the hypocentral distance
    -- minus half the fault length of Utsu (1977), log10 L = 0.5 M - 1.8,
    -- but not below the depth (nor 3 km).  Mw is taken as the given
    -- magnitude, capped at 8.3 (the relation's range).  See docs/feeds.md.
    -- The class follows JMA's rule for 計測震度 (shindo_from_instrumental:
    -- rounded at the third decimal, truncated at the second), on the value
    -- as computed.
    SELECT status_checker.shindo_from_instrumental(greatest(-3.0, least(8.0,
               2.68 + 1.72 * (lpgv + 0.150)))::numeric)
    FROM (SELECT 0.58 * mw + 0.0038 * d - 1.29
                 - log(x + 0.0028 * power(10, 0.5 * mw)) - 0.002 * x AS lpgv
          FROM (SELECT mw, d, greatest(3.0, d, hypo - power(10, 0.5 * m - 1.8) / 2) AS x
                FROM (SELECT least(magnitude::double precision, 8.3) AS mw,
                             magnitude::double precision AS m,
                             greatest(depth_km, 0) AS d,
                             sqrt(power(2 * 6371.0 * asin(least(1.0, sqrt(
                                 power(sin(radians(site_lat - epi_lat) / 2), 2)
                                 + cos(radians(epi_lat)) * cos(radians(site_lat))
                                   * power(sin(radians(site_lon - epi_lon) / 2), 2)))), 2)
                                 + power(greatest(depth_km, 0), 2)) AS hypo) a) b) c;
END;
COMMENT ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) IS
'Estimated JMA seismic intensity at a site from magnitude, depth and epicentre (Si & Midorikawa 1999 attenuation, '
'average site amplification, Midorikawa et al. 1999 PGV to intensity, Utsu 1977 fault length); a rough estimate for sites without observations';
GRANT EXECUTE ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) TO status_checker_api, status_checker_operator;

-- ---------------------------------------------------------- rule management

CREATE FUNCTION status_checker.create_trigger_rule(
    tenant_id bigint, name text, form_id bigint, min_shindo status_checker.shindo,
    target jsonb DEFAULT '{"all": true}', deadline interval DEFAULT '6 hours', drill boolean DEFAULT false,
    repeat_within interval DEFAULT NULL, use_estimate boolean DEFAULT false,
    sources text[] DEFAULT '{jma}', hazard text DEFAULT 'earthquake',
    tsunami_kinds text[] DEFAULT '{51,52,53}', message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_trigger_rule', ARRAY['tenant_id', 'name', 'form_id', 'target', 'deadline', 'drill', 'sources', 'hazard'],
        ARRAY[create_trigger_rule.tenant_id::text, create_trigger_rule.name, create_trigger_rule.form_id::text,
              create_trigger_rule.target::text, create_trigger_rule.deadline::text, create_trigger_rule.drill::text,
              create_trigger_rule.sources::text, create_trigger_rule.hazard]);
    PERFORM status_checker._require_tenant(create_trigger_rule.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.form f
                   WHERE f.tenant_id = create_trigger_rule.tenant_id AND f.form_id = create_trigger_rule.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', create_trigger_rule.form_id, create_trigger_rule.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF btrim(create_trigger_rule.name) = '' OR length(create_trigger_rule.name) > 200 THEN
        RAISE EXCEPTION 'invalid rule name %', quote_literal(create_trigger_rule.name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 200 characters and is not blank.';
    END IF;
    IF create_trigger_rule.hazard NOT IN ('earthquake', 'tsunami') THEN
        RAISE EXCEPTION 'unknown hazard %', quote_literal(create_trigger_rule.hazard)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use earthquake or tsunami.';
    END IF;
    IF create_trigger_rule.hazard = 'earthquake' AND create_trigger_rule.min_shindo IS NULL THEN
        RAISE EXCEPTION 'an earthquake rule needs min_shindo' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'For example ''5-'' (震度5弱).';
    END IF;
    IF create_trigger_rule.deadline <= '0' THEN
        RAISE EXCEPTION 'the deadline interval % is not positive', create_trigger_rule.deadline
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF create_trigger_rule.repeat_within <= '0' THEN
        RAISE EXCEPTION 'repeat_within % is not positive', create_trigger_rule.repeat_within
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(create_trigger_rule.sources) = 0 OR NOT create_trigger_rule.sources <@ '{jma,p2pquake,usgs}' THEN
        RAISE EXCEPTION 'invalid sources %', create_trigger_rule.sources
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one or more of jma, p2pquake, usgs.';
    END IF;
    IF create_trigger_rule.tsunami_kinds IS NULL OR cardinality(create_trigger_rule.tsunami_kinds) = 0
       OR NOT create_trigger_rule.tsunami_kinds <@ '{50,51,52,53,60,62,71,72,73}' THEN
        RAISE EXCEPTION 'invalid tsunami kinds %', create_trigger_rule.tsunami_kinds
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'JMA kind codes: 52/53 大津波警報, 51 津波警報, 62 津波注意報, 71-73 津波予報, 50/60 解除.';
    END IF;
    -- the target is checked now, as create_request checks it
    PERFORM count(*) FROM status_checker._resolve_targets(create_trigger_rule.tenant_id, create_trigger_rule.target);

    INSERT INTO status_checker.trigger_rule
        (tenant_id, name, form_id, hazard, min_shindo, tsunami_kinds, target, deadline, drill,
         repeat_within, use_estimate, sources, message)
    VALUES (create_trigger_rule.tenant_id, create_trigger_rule.name, create_trigger_rule.form_id,
            create_trigger_rule.hazard, create_trigger_rule.min_shindo, create_trigger_rule.tsunami_kinds,
            create_trigger_rule.target, create_trigger_rule.deadline, create_trigger_rule.drill,
            create_trigger_rule.repeat_within, coalesce(create_trigger_rule.use_estimate, false),
            create_trigger_rule.sources, create_trigger_rule.message)
    RETURNING rule_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) IS
'Create a trigger rule: when an event reaches min_shindo at targeted sites, one request asks them (drill rules fire on '
'training telegrams only; repeat_within suppresses aftershocks that shake no harder; use_estimate estimates intensity '
'where none is observed); returns the rule id';
ALTER FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) TO status_checker_admin;

CREATE FUNCTION status_checker.set_trigger_rule_enabled(rule_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('set_trigger_rule_enabled', ARRAY['rule_id', 'enabled'],
                                     ARRAY[set_trigger_rule_enabled.rule_id::text, set_trigger_rule_enabled.enabled::text]);
    UPDATE status_checker.trigger_rule r SET enabled = set_trigger_rule_enabled.enabled
    WHERE r.rule_id = set_trigger_rule_enabled.rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', set_trigger_rule_enabled.rule_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) IS
'Enable or disable a trigger rule; a disabled rule creates no requests';
ALTER FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) TO status_checker_admin;

-- ------------------------------------------------------------- decisions

-- For an event and a set of rules: every site of each rule's tenant with
-- its intensity, whether it is asked, and why.  decision: ask (would be
-- asked now), asked (already asked for this event), skip.  One statement
-- for all rules, so that an event that concerns a hundred tenants costs one
-- pass over their sites (docs/benchmarks.md); _decide, backtest_rule and
-- the trigger_decision view are this function for one rule.
CREATE FUNCTION status_checker._decide_all(p_event bigint, p_rules bigint[])
    RETURNS TABLE (rule_id bigint, tenant_id bigint, site_id bigint, site_code text,
                   shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    -- the plan's cost estimate invites JIT compilation, which costs more
    -- than it saves: 0.23 s of start-up for one event asking 100,000 sites
    SET jit = off AS $$
#variable_conflict use_column
DECLARE
    e status_checker.event;
    observed jsonb;     -- code → [shindo, incomplete, name] at the level that counts
    warned jsonb;       -- 津波予報区 code → [kind code, kind name, area name]
    e_time timestamptz;
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % does not exist', coalesce(p_event::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    e_time := coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at);
    -- a jsonb map built once: each site then costs one probe, not a join
    -- whose estimates (fresh rows, no statistics yet) mislead the planner
    SELECT jsonb_object_agg(i.code, jsonb_build_array(i.shindo::text, i.incomplete, i.name))
    INTO observed
    FROM (SELECT x.code, status_checker.max(x.shindo) AS shindo, bool_or(x.incomplete) AS incomplete, min(x.name) AS name
          FROM status_checker.event_product_intensity x
          WHERE x.event_id = e.event_id AND x.product = e.best_product AND x.code IS NOT NULL
            AND x.scope = CASE WHEN e.detail_level >= 2 THEN 'city' ELSE 'area' END
          GROUP BY x.code) i;
    IF e.kind = 'tsunami' THEN
        SELECT jsonb_object_agg(t.code, jsonb_build_array(t.kind_code, t.kind_name, t.name)) INTO warned
        FROM (SELECT DISTINCT ON (x.code) x.code, x.kind_code, x.kind_name, x.name
              FROM status_checker.event_tsunami x WHERE x.event_id = e.event_id AND x.code IS NOT NULL
              ORDER BY x.code, x.kind_code IN ('50', '60') OR x.kind_code LIKE '7%', x.kind_code DESC) t;
    END IF;

    RETURN QUERY
    WITH rules AS (
        SELECT r.*, r.target = '{"all": true}'::jsonb AS all_sites,
               CASE
                   WHEN NOT r.enabled THEN 'rule disabled'
                   WHEN e.kind <> r.hazard THEN format('event is a %s; the rule watches %s', e.kind, r.hazard)
                   WHEN NOT e.source = ANY (r.sources) THEN format('event from %s; the rule watches %s', e.source, array_to_string(r.sources, ', '))
                   WHEN e.status = 'cancelled' THEN 'event cancelled (取消)'
                   WHEN e.status = 'test' THEN 'test telegram (試験): never triggers'
                   WHEN e.status = 'training' AND NOT r.drill THEN 'training telegram (訓練): only drill rules fire'
                   WHEN e.status = 'actual' AND r.drill THEN 'drill rule: fires on training telegrams (訓練) only'
               END AS gate
        FROM status_checker.trigger_rule r WHERE r.rule_id = ANY (p_rules)
    ), tgt AS (
        SELECT r.rule_id, t.site_id FROM rules r
        CROSS JOIN LATERAL status_checker._resolve_targets(r.tenant_id, r.target) t
        WHERE NOT r.all_sites
    ), obs AS (
        -- the event's observed intensity at each site of the tenants concerned
        SELECT s.tenant_id, s.site_id, s.code, s.municipality_code, s.lat, s.lon, s.attributes,
               m.name AS muni_name, a.name AS area_name,
               h.hit ->> 0 AS hit_shindo, coalesce((h.hit ->> 1)::boolean, false) AS hit_incomplete, h.hit ->> 2 AS hit_name
        FROM status_checker.site s
        LEFT JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
        LEFT JOIN status_checker.jma_area a ON a.code = m.area_code
        CROSS JOIN LATERAL (SELECT CASE WHEN e.detail_level >= 2 THEN observed -> s.municipality_code
                                        ELSE observed -> m.area_code END AS hit) h
        WHERE s.tenant_id IN (SELECT DISTINCT r.tenant_id FROM rules r)
    ), earlier AS (
        -- aftershocks: the hardest each rule asked each site within its window
        SELECT f.rule_id, t.site_id, status_checker.max(t.asked_shindo) AS shindo, min(f.event_id) AS event_id
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id
        JOIN status_checker.event pe ON pe.event_id = f.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
        WHERE r.repeat_within IS NOT NULL AND f.event_id <> e.event_id
          AND coalesce(pe.origin_time, (pe.extra ->> 'target_time')::timestamptz, pe.created_at)
              BETWEEN e_time - r.repeat_within AND e_time
        GROUP BY f.rule_id, t.site_id
    ), asked AS (
        SELECT f.rule_id, t.site_id, t.asked_reason AS reason
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id AND f.event_id = e.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
    ), eff AS (
        SELECT r.rule_id, r.tenant_id, r.hazard, r.min_shindo, r.tsunami_kinds, r.repeat_within, r.gate, r.use_estimate,
               r.all_sites, o.site_id, o.code, o.municipality_code, o.muni_name, o.attributes,
               o.hit_incomplete AS incomplete,
               o.hit_shindo IS NULL AND NOT o.hit_incomplete AS estimated,
               s.basis, s.sh,
               tw.w ->> 0 AS tsunami_kind, tw.w ->> 1 AS tsunami_name, tw.w ->> 2 AS tsunami_area,
               (NOT r.all_sites AND g.site_id IS NULL) AS outside,
               p.shindo AS prev_shindo, p.event_id AS prev_event, p.site_id IS NOT NULL AS was_asked,
               asked.reason AS asked_reason
        FROM rules r
        JOIN obs o ON o.tenant_id = r.tenant_id
        LEFT JOIN tgt g ON g.rule_id = r.rule_id AND g.site_id = o.site_id
        LEFT JOIN earlier p ON p.rule_id = r.rule_id AND p.site_id = o.site_id
        LEFT JOIN asked ON asked.rule_id = r.rule_id AND asked.site_id = o.site_id
        CROSS JOIN LATERAL (SELECT CASE WHEN r.hazard = 'tsunami' THEN warned -> (o.attributes ->> 'tsunami_area') END AS w) tw
        -- OFFSET 0 keeps each of these subqueries a node of its own, so that
        -- its value is computed once per row, not once per reference to it
        -- (a pulled-up subquery repeats its expression wherever it is used)
        CROSS JOIN LATERAL (SELECT
                   CASE
                       WHEN o.hit_incomplete
                       THEN greatest(coalesce(o.hit_shindo::status_checker.shindo, '0'), '5-'::status_checker.shindo)
                       WHEN o.hit_shindo IS NOT NULL THEN o.hit_shindo::status_checker.shindo
                       WHEN r.use_estimate AND (e.detail_level = 0 OR o.municipality_code IS NULL)
                            AND e.magnitude IS NOT NULL AND e.lat IS NOT NULL AND o.lat IS NOT NULL
                       THEN status_checker.estimate_shindo(e.magnitude, coalesce(e.depth_km, 10), e.lat, e.lon, o.lat, o.lon)
                   END AS sh,
                   CASE WHEN e.detail_level >= 2 THEN 'municipality ' || coalesce(o.hit_name, o.muni_name, o.municipality_code)
                        ELSE 'area ' || coalesce(o.hit_name, o.area_name, '?') END AS basis
            OFFSET 0) s
    ), why AS (
        SELECT q.*, y.why
        FROM eff q
        CROSS JOIN LATERAL (SELECT
               CASE
                   WHEN q.gate IS NOT NULL THEN q.gate
                   WHEN q.outside THEN 'outside the rule''s target'
                   WHEN q.hazard = 'tsunami' AND q.attributes ->> 'tsunami_area' IS NULL THEN 'no tsunami forecast area (attribute tsunami_area)'
                   WHEN q.hazard = 'tsunami' AND q.tsunami_kind IS NULL THEN 'no tsunami warning for ' || (q.attributes ->> 'tsunami_area')
                   WHEN q.hazard = 'tsunami' AND NOT q.tsunami_kind = ANY (q.tsunami_kinds)
                       THEN format('%s for %s is not a kind the rule asks for', q.tsunami_name, q.tsunami_area)
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL AND q.municipality_code IS NULL
                       THEN 'no area code (the site has no municipality code)' ||
                            CASE WHEN q.use_estimate THEN ' and no coordinates or hypocentre for an estimate' ELSE '' END
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL AND q.muni_name IS NULL AND e.source <> 'usgs'
                       THEN format('no area code (municipality %s is not in JMA''s table)', q.municipality_code)
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL THEN 'no intensity observed in ' || q.basis
                   WHEN q.hazard = 'earthquake' AND q.sh < q.min_shindo
                       THEN 'below threshold: ' || status_checker.shindo_label(q.sh, 'ja') || ' '
                            || CASE WHEN q.estimated THEN 'estimated from M' || e.magnitude ELSE 'in ' || q.basis END
                            || ' < ' || status_checker.shindo_label(q.min_shindo, 'ja')
                   WHEN q.was_asked AND (q.hazard = 'tsunami' OR q.prev_shindo >= q.sh)
                       THEN format('suppressed as aftershock: asked at %s for event %s within %s',
                                   coalesce(status_checker.shindo_label(q.prev_shindo, 'ja'), 'tsunami'), q.prev_event, q.repeat_within)
               END AS why
            OFFSET 0) y
    )
    SELECT w.rule_id, w.tenant_id, w.site_id, w.code, w.sh,
           CASE WHEN w.asked_reason IS NOT NULL THEN 'asked' WHEN w.why IS NULL THEN 'ask' ELSE 'skip' END,
           CASE WHEN w.asked_reason IS NOT NULL THEN w.asked_reason
                WHEN w.why IS NOT NULL THEN w.why
                WHEN w.hazard = 'tsunami' THEN 'tsunami: ' || w.tsunami_name || ' for ' || w.tsunami_area
                ELSE status_checker.shindo_label(w.sh, 'ja')
                     || CASE WHEN w.incomplete THEN ' or more (震度５弱以上未入電)' ELSE '' END
                     || CASE WHEN w.estimated THEN ' estimated from M' || e.magnitude ELSE ' in ' || w.basis END
                     || ' ≥ ' || status_checker.shindo_label(w.min_shindo, 'ja')
           END
    FROM why w;
END
$$;
COMMENT ON FUNCTION status_checker._decide_all(bigint, bigint[]) IS
'Internal: for an event and a set of rules, each site of each rule''s tenant with its intensity and the decision (ask, asked, skip) and reason';

CREATE FUNCTION status_checker._decide(p_rule bigint, p_event bigint)
    RETURNS TABLE (site_id bigint, site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM status_checker._no_nulls('backtest_rule', ARRAY['rule_id', 'event_id'], ARRAY[p_rule::text, p_event::text]);
    IF NOT EXISTS (SELECT 1 FROM status_checker.trigger_rule x WHERE x.rule_id = p_rule) THEN
        RAISE EXCEPTION 'trigger rule % does not exist', coalesce(p_rule::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY SELECT d.site_id, d.site_code, d.shindo, d.decision, d.reason
                 FROM status_checker._decide_all(p_event, ARRAY[p_rule]) d;
END
$$;
COMMENT ON FUNCTION status_checker._decide(bigint, bigint) IS
'Internal: for a rule and an event, each site of the tenant with its intensity and the decision (ask, asked, skip) and reason';
GRANT EXECUTE ON FUNCTION status_checker._decide(bigint, bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker.backtest_rule(rule_id bigint, event_id bigint)
    RETURNS TABLE (site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE sql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    SELECT d.site_code, d.shindo, d.decision, d.reason
    FROM status_checker._decide(backtest_rule.rule_id, backtest_rule.event_id) d
    ORDER BY d.decision <> 'ask', d.decision <> 'asked', d.shindo DESC NULLS LAST, d.site_code;
END;
COMMENT ON FUNCTION status_checker.backtest_rule(bigint, bigint) IS
'What the rule would do for an event, site by site, without doing it: decision ask (would be asked), asked (already '
'asked for this event) or skip, with the reason';
ALTER FUNCTION status_checker.backtest_rule(bigint, bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.backtest_rule(bigint, bigint) TO status_checker_admin;

CREATE VIEW status_checker.trigger_decision WITH (security_invoker = true) AS
SELECT v.tenant_id, v.rule_id, r.name AS rule_name, v.event_id, f.request_id,
       d.site_code, d.shindo, d.decision, d.reason, v.evaluated_at
FROM status_checker.trigger_evaluation v
JOIN status_checker.trigger_rule r ON r.tenant_id = v.tenant_id AND r.rule_id = v.rule_id
LEFT JOIN status_checker.trigger_fire f ON f.tenant_id = v.tenant_id AND f.rule_id = v.rule_id AND f.event_id = v.event_id
CROSS JOIN LATERAL status_checker._decide(v.rule_id, v.event_id) d;
COMMENT ON VIEW status_checker.trigger_decision IS
'For each rule and each event it looked at: every site of the tenant, asked or not, and why (intensity and threshold, '
'outside target, no area code, not observed, suppressed as aftershock, training/test telegram, cancelled)';
GRANT SELECT ON status_checker.trigger_decision TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------------------ firing

CREATE FUNCTION status_checker._event_title(e status_checker.event) RETURNS text
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN left(concat_ws(' ',
        CASE WHEN e.status = 'training' THEN '【訓練】' END,
        CASE WHEN e.kind = 'tsunami' THEN '津波' WHEN e.max_shindo IS NOT NULL THEN status_checker.shindo_label(e.max_shindo, 'ja') END,
        coalesce(e.epicenter_name,
                 -- no hypocentre yet (震度速報): the most shaken area
                 (SELECT i.name FROM status_checker.event_product_intensity i
                  WHERE i.event_id = e.event_id AND i.product = e.best_product AND i.scope = 'area'
                  ORDER BY i.shindo DESC NULLS LAST, i.ord LIMIT 1),
                 e.source_event_id),
        CASE WHEN e.magnitude IS NOT NULL THEN 'M' || e.magnitude END,
        '(' || to_char(coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at)
                       AT TIME ZONE 'Asia/Tokyo', 'MM/DD HH24:MI') || ' JST)'), 200);
COMMENT ON FUNCTION status_checker._event_title(status_checker.event) IS
'Internal: a short title for a request made by a rule, e.g. 震度6強 石川県能登地方 M7.6 (01/01 16:10 JST)';
GRANT EXECUTE ON FUNCTION status_checker._event_title(status_checker.event) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- _fire_rules: src/triggers/fire.sql

-- ---- src/triggers/fire.sql
-- src/triggers/fire.sql — acting on trigger rules when an event changes.
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades (0.3.0 copies the rule's reminders to its
-- requests and enqueues the new targets' messages).

-- Run every matching rule for one event (called by ingest_feed_document).
CREATE OR REPLACE FUNCTION status_checker._fire_rules(p_event bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    e status_checker.event;
    rules bigint[];
    n integer;
    -- the sites to ask (parallel arrays: tenant, rule, site, intensity, reason) ...
    a_tenant bigint[];
    a_rule bigint[];
    a_site bigint[];
    a_shindo status_checker.shindo[];
    a_reason text[];
    -- ... the open request of each rule for this event ...
    o_tenant bigint[];
    o_rule bigint[];
    o_request bigint[];
    -- ... and the request each site to ask goes to
    t_request bigint[];
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event FOR UPDATE;
    IF e.status = 'cancelled' THEN
        -- a withdrawn event withdraws what it asked
        UPDATE status_checker.request q
        SET state = 'cancelled', cancelled_at = pg_catalog.now(),
            cancel_reason = format('The %s event %s was withdrawn by its source (取消).', e.source, e.source_event_id)
        FROM status_checker.trigger_fire f
        WHERE f.event_id = p_event AND q.tenant_id = f.tenant_id AND q.request_id = f.request_id AND q.state <> 'cancelled';
    END IF;

    -- the rules that look at this event (for the trigger_decision view) ...
    INSERT INTO status_checker.trigger_evaluation AS v (tenant_id, rule_id, event_id, last_revision)
    SELECT r.tenant_id, r.rule_id, e.event_id, e.revision FROM status_checker.trigger_rule r
    WHERE r.hazard = e.kind AND e.source = ANY (r.sources)
    ON CONFLICT (tenant_id, rule_id, event_id)
    DO UPDATE SET evaluations = v.evaluations + 1, last_revision = excluded.last_revision, evaluated_at = pg_catalog.now();
    -- ... and those that may act on it
    SELECT array_agg(r.rule_id ORDER BY r.rule_id) INTO rules FROM status_checker.trigger_rule r
    WHERE r.hazard = e.kind AND e.source = ANY (r.sources) AND r.enabled
      AND e.status IN ('actual', 'training') AND (e.status = 'training') = r.drill;
    IF rules IS NULL THEN
        RETURN 0;
    END IF;

    PERFORM status_checker._lock_targets(t) FROM (SELECT DISTINCT r.tenant_id FROM status_checker.trigger_rule r
                                                  WHERE r.rule_id = ANY (rules) ORDER BY 1) x(t);
    -- the sites to ask, all rules at once, kept in arrays (0.10.1: no
    -- function of the extension makes a temporary object)
    SELECT coalesce(array_agg(d.tenant_id ORDER BY d.tenant_id, d.rule_id, d.site_id), '{}'),
           coalesce(array_agg(d.rule_id ORDER BY d.tenant_id, d.rule_id, d.site_id), '{}'),
           coalesce(array_agg(d.site_id ORDER BY d.tenant_id, d.rule_id, d.site_id), '{}'),
           coalesce(array_agg(d.shindo ORDER BY d.tenant_id, d.rule_id, d.site_id), '{}'),
           coalesce(array_agg(d.reason ORDER BY d.tenant_id, d.rule_id, d.site_id), '{}')
      INTO a_tenant, a_rule, a_site, a_shindo, a_reason
      FROM status_checker._decide_all(e.event_id, rules) d WHERE d.decision = 'ask';

    -- one request per rule and event: created on the first telegram that asks anyone
    WITH needed AS (
        SELECT a.tenant_id, a.rule_id FROM (SELECT DISTINCT x.tenant_id, x.rule_id FROM unnest(a_tenant, a_rule) x(tenant_id, rule_id)) a
        WHERE NOT EXISTS (SELECT 1 FROM status_checker.trigger_fire f
                          WHERE f.tenant_id = a.tenant_id AND f.rule_id = a.rule_id AND f.event_id = e.event_id)
    ), made AS (
        INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec, event_id, rule_id,
                                            reminders, escalate_after)
        SELECT r.tenant_id, r.form_id, status_checker._event_title(e), coalesce(r.message, e.headline),
               pg_catalog.now() + r.deadline, r.drill, jsonb_build_object('rule', r.rule_id, 'event', e.event_id),
               e.event_id, r.rule_id, r.reminders, r.escalate_after
        FROM needed x JOIN status_checker.trigger_rule r ON r.tenant_id = x.tenant_id AND r.rule_id = x.rule_id
        ORDER BY r.tenant_id, r.rule_id
        RETURNING tenant_id, request_id, rule_id
    ), counters AS (
        INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
        SELECT m.tenant_id, m.request_id, g FROM made m CROSS JOIN generate_series(0, 63) g
    )
    INSERT INTO status_checker.trigger_fire (tenant_id, rule_id, event_id, request_id)
    SELECT m.tenant_id, m.rule_id, e.event_id, m.request_id FROM made m;

    -- later telegrams add newly affected sites to that request, while it is
    -- open (a request a person closed or cancelled is left so)
    -- (_decide_all never asks a site twice for an event: no conflict handling)
    SELECT coalesce(array_agg(f.tenant_id ORDER BY f.tenant_id, f.rule_id), '{}'),
           coalesce(array_agg(f.rule_id ORDER BY f.tenant_id, f.rule_id), '{}'),
           coalesce(array_agg(f.request_id ORDER BY f.tenant_id, f.rule_id), '{}')
      INTO o_tenant, o_rule, o_request
      FROM status_checker.trigger_fire f
      JOIN status_checker.request q ON q.tenant_id = f.tenant_id AND q.request_id = f.request_id
     WHERE f.event_id = e.event_id AND q.state = 'open';
    -- the rule's open request of each site to ask: a hash join of the two
    -- arrays (a rule has one request per event)
    SELECT coalesce(array_agg(o.request_id ORDER BY a.tenant_id, o.request_id, a.site_id), '{}'),
           coalesce(array_agg(a.tenant_id ORDER BY a.tenant_id, o.request_id, a.site_id), '{}'),
           coalesce(array_agg(a.site_id ORDER BY a.tenant_id, o.request_id, a.site_id), '{}'),
           coalesce(array_agg(a.shindo ORDER BY a.tenant_id, o.request_id, a.site_id), '{}'),
           coalesce(array_agg(a.reason ORDER BY a.tenant_id, o.request_id, a.site_id), '{}')
      INTO t_request, a_tenant, a_site, a_shindo, a_reason
      FROM unnest(a_tenant, a_rule, a_site, a_shindo, a_reason) a(tenant_id, rule_id, site_id, shindo, reason)
      JOIN unnest(o_tenant, o_rule, o_request) o(tenant_id, rule_id, request_id)
        ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id;
    -- in key order: index insertions stay on hot pages
    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id, asked_shindo, asked_reason)
    SELECT a.tenant_id, a.request_id, a.site_id, a.shindo, a.reason
    FROM unnest(a_tenant, t_request, a_site, a_shindo, a_reason) a(tenant_id, request_id, site_id, shindo, reason);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE status_checker.request q SET targets = q.targets + c.n
    FROM (SELECT a.tenant_id, a.request_id, count(*) AS n
          FROM unnest(a_tenant, t_request) a(tenant_id, request_id) GROUP BY 1, 2) c
    WHERE q.tenant_id = c.tenant_id AND q.request_id = c.request_id;
    -- the new targets' contacts get the request, in this transaction (only
    -- for tenants that have someone to send to: the others cost nothing)
    PERFORM status_checker._enqueue_site_messages(x.tenant_id, x.request_id, 'request', 0, x.sites, true)
    FROM (SELECT a.tenant_id, a.request_id, array_agg(a.site_id ORDER BY a.site_id) AS sites
          FROM unnest(a_tenant, t_request, a_site) a(tenant_id, request_id, site_id)
          WHERE a.tenant_id IN (SELECT t.tenant_id FROM (SELECT DISTINCT u.tenant_id FROM unnest(o_tenant) u(tenant_id)) t
                                WHERE status_checker._tenant_delivers(t.tenant_id))
          GROUP BY 1, 2 ORDER BY 1, 2) x;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._fire_rules(bigint) IS
'Internal: run the trigger rules for one event: create the one request per rule and event, add newly affected sites, '
'cancel requests of a cancelled event; returns the number of sites added';

-- ---- src/dispatch/channels.sql
-- src/dispatch/channels.sql — delivery channels, link keys and message templates.
--
-- A channel is how a tenant's messages leave the database:
--   email   — an SMTP server (smtp:// with STARTTLS, or smtps://) that
--             relays the mails to the sites' email contacts and to the
--             managers an escalation reaches;
--   webhook — an HTTP(S) endpoint that receives every message of the
--             tenant (one POST per site and purpose), in our JSON format or
--             Slack's; its format, secret and language also apply to the
--             sites' own webhook contacts.
-- When a tenant has several enabled channels of a kind, contacts use the
-- one with the lowest id.  Secrets (SMTP password, webhook secret) are kept
-- apart from the rest of the configuration and no view shows them.
-- Destinations (0.10.1): the dispatcher connects only to public addresses
-- and to the networks the operator lists in status_checker.allowed_destinations
-- (src/dispatch/destinations.c); a URL whose host is an address that is not
-- allowed is refused when it is added (_require_destination).  ca_file
-- names a file on the database server: only an operator sets it.

CREATE TABLE status_checker.channel (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    channel_id  bigint GENERATED ALWAYS AS IDENTITY,
    kind        text NOT NULL CHECK (kind IN ('email', 'webhook')),
    name        text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 100),
    config      jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),   -- without secrets
    secrets     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secrets) = 'object'),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, channel_id),
    UNIQUE (tenant_id, name)
);
COMMENT ON TABLE status_checker.channel IS
'A tenant''s delivery channel: an SMTP server for mail or a webhook endpoint; secrets are kept in a column no view shows';
ALTER TABLE status_checker.channel ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.channel FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.channel
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
-- a channel's name and kind for everyone who reads (delivery_status names the
-- channel); its configuration (the URL: a Slack webhook's is a credential) for managers
GRANT SELECT (tenant_id, channel_id, kind, name, enabled, created_at) ON status_checker.channel TO status_checker_viewer, status_checker_operator;
GRANT SELECT (tenant_id, channel_id, kind, name, config, enabled, created_at) ON status_checker.channel TO status_checker_manager;

-- The key personal link tokens are derived from (src/dispatch/crypto.c):
-- a message is rendered with its site's token without the token being
-- stored anywhere; request_target keeps only the token's SHA-256.
CREATE TABLE status_checker.link_key (
    tenant_id   bigint PRIMARY KEY REFERENCES status_checker.tenant,
    key         bytea NOT NULL,             -- encrypted (src/security/encryption.sql)
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.link_key IS
'Per tenant: the 256-bit key personal link tokens are derived from (HMAC-SHA256); whoever reads it can forge links';
ALTER TABLE status_checker.link_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.link_key FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.link_key
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

CREATE TABLE status_checker.default_template (
    purpose  text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    lang     text NOT NULL CHECK (lang IN ('ja', 'en')),
    subject  text NOT NULL,
    body     text NOT NULL,
    PRIMARY KEY (purpose, lang)
);
COMMENT ON TABLE status_checker.default_template IS
'The built-in message templates (ja, en) for each purpose; a tenant overrides them with set_message_template';
GRANT SELECT ON status_checker.default_template TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.message_template (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    purpose     text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    lang        text NOT NULL CHECK (lang IN ('ja', 'en')),
    subject     text NOT NULL,
    body        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, purpose, lang)
);
COMMENT ON TABLE status_checker.message_template IS
'A tenant''s own message templates, in place of the built-in ones';
ALTER TABLE status_checker.message_template ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.message_template FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.message_template
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.message_template TO status_checker_viewer, status_checker_operator;

INSERT INTO status_checker.default_template (purpose, lang, subject, body) VALUES
('request', 'ja', '【報告依頼】{{request_title}} — {{site_name}}',
$t${{site_name}} ご担当者様

{{request_title}}
{{site_shindo}}

拠点の被害状況と稼働可否を、次のリンクからご報告ください。
{{link}}

回答期限: {{deadline}}
{{message}}

このメールは {{tenant_name}} の拠点状況確認システム（status_checker）から自動送信されています。$t$),
('request', 'en', '[Report request] {{request_title}} — {{site_name}}',
$t$To the person in charge of {{site_name}},

{{request_title}}
{{site_shindo}}

Please report your site's damage and whether it can operate, using this link:
{{link}}

Deadline: {{deadline}}
{{message}}

This message was sent automatically by the site status system (status_checker) of {{tenant_name}}.$t$),
('reminder', 'ja', '【再送・未回答】{{request_title}} — {{site_name}}',
$t${{site_name}} ご担当者様

まだご報告をいただいていません（{{reminder_number}} 回目のお知らせ）。
{{request_title}}

次のリンクからご報告ください。
{{link}}

回答期限: {{deadline}}$t$),
('reminder', 'en', '[Reminder] {{request_title}} — {{site_name}}',
$t$To the person in charge of {{site_name}},

We have not received your report yet (reminder {{reminder_number}}).
{{request_title}}

Please report using this link:
{{link}}

Deadline: {{deadline}}$t$),
('escalation', 'ja', '【未回答拠点 {{unanswered_count}} 件】{{request_title}}',
$t${{recipient_name}} 様

次の拠点から、まだ報告がありません。
{{request_title}}

{{unanswered_sites}}

回答期限: {{deadline}}
拠点への連絡をお願いします。$t$),
('escalation', 'en', '[{{unanswered_count}} sites not answered] {{request_title}}',
$t$Dear {{recipient_name}},

These sites have not reported yet.
{{request_title}}

{{unanswered_sites}}

Deadline: {{deadline}}
Please contact them.$t$),
('cancellation', 'ja', '【取消】{{request_title}}',
$t${{site_name}} ご担当者様

次の報告依頼は取り消されました。報告は不要です。
{{request_title}}

理由: {{cancel_reason}}$t$),
('cancellation', 'en', '[Cancelled] {{request_title}}',
$t$To the person in charge of {{site_name}},

This report request was cancelled; no report is needed.
{{request_title}}

Reason: {{cancel_reason}}$t$);

-- ---------------------------------------------------------- C helpers

CREATE FUNCTION status_checker._link_token(key bytea, tenant_id bigint, request_id bigint, site_id bigint, generation integer)
    RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_link_token';
COMMENT ON FUNCTION status_checker._link_token(bytea, bigint, bigint, bigint, integer) IS
'Internal: the personal token of a request target, derived from the tenant''s link key (HMAC-SHA256, base64url)';

CREATE FUNCTION status_checker._random_bytes(n integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_random_bytes';
COMMENT ON FUNCTION status_checker._random_bytes(integer) IS
'Internal: n bytes from the server''s strong random source';

CREATE FUNCTION status_checker._mime_header(value text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_mime_header';
COMMENT ON FUNCTION status_checker._mime_header(text) IS
'Internal: a mail header value as RFC 2047 encoded-words (UTF-8, base64); printable ASCII as it is';

CREATE FUNCTION status_checker._fill(template text, VARIADIC vars text[]) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_fill_template';
COMMENT ON FUNCTION status_checker._fill(text, text[]) IS
'Internal: replace each {{name}} of a template by its value (vars: name, value, name, value, ...); lines left empty by an empty value are dropped';

CREATE FUNCTION status_checker.webhook_signature(secret text, "timestamp" bigint, body text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_webhook_signature';
COMMENT ON FUNCTION status_checker.webhook_signature(text, bigint, text) IS
'The X-Status-Checker-Signature of a webhook: v1= and the hex HMAC-SHA256 of "<timestamp>.<body>" under the channel''s secret';
GRANT EXECUTE ON FUNCTION status_checker.webhook_signature(text, bigint, text) TO status_checker_api, status_checker_operator;

-- ---------------------------------------------------------- helpers

-- _link_key(tenant_id), a tenant's link key (decrypted), made on first use: src/security/encryption.sql

-- "Name <addr>" or "addr" → (name, addr); NULL addr when malformed
CREATE FUNCTION status_checker._mailbox(p text, OUT name text, OUT addr text)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE
        WHEN m IS NOT NULL THEN ROW(nullif(btrim(m[1], ' "'), ''), m[2])
        ELSE ROW(NULL::text, CASE WHEN p ~ '^[^@<>\s]+@[^@<>\s]+$' THEN p END) END
        FROM (SELECT regexp_match(btrim(p), '^(.*)<([^@<>\s]+@[^@<>\s]+)>$') AS m) x);
COMMENT ON FUNCTION status_checker._mailbox(text) IS
'Internal: split a mailbox written "Name <addr>" or "addr" into its display name and address';

CREATE FUNCTION status_checker._channel_problems(p_kind text, p_config jsonb) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    probs text[] := '{}';
    allowed text[];
    k text;
    url text := p_config ->> 'url';
    host text;
BEGIN
    IF jsonb_typeof(p_config) IS DISTINCT FROM 'object' THEN
        RETURN ARRAY['config must be a JSON object'];
    END IF;
    allowed := CASE p_kind
        WHEN 'email' THEN ARRAY['url', 'from', 'starttls', 'username', 'password', 'lang', 'timezone', 'ca_file']
        ELSE ARRAY['url', 'format', 'secret', 'lang', 'timezone', 'ca_file', 'broadcast'] END;
    FOR k IN SELECT jsonb_object_keys(p_config) LOOP
        IF NOT k = ANY (allowed) THEN
            probs := probs || format('unknown key "%s" (allowed: %s)', k, array_to_string(allowed, ', '));
        ELSIF jsonb_typeof(p_config -> k) <> (CASE WHEN k = 'broadcast' THEN 'boolean' ELSE 'string' END) THEN
            probs := probs || format('"%s" must be a %s', k, CASE WHEN k = 'broadcast' THEN 'boolean' ELSE 'string' END);
        END IF;
    END LOOP;
    IF url IS NULL THEN
        probs := probs || '"url" is required'::text;
    END IF;
    host := substring(url FROM '^[a-z]+://(?:[^@/]*@)?(\[[^]]*\]|[^:/?#]+)');
    IF p_kind = 'email' THEN
        IF url IS NOT NULL AND url !~ '^smtps?://[^/?#@\s]+(:[0-9]{1,5})?(/[A-Za-z0-9.-]*)?$' THEN
            probs := probs || format('"url" must be smtp://host[:port] or smtps://host[:port], not %s', url);
        END IF;
        IF p_config ->> 'from' IS NULL THEN
            probs := probs || '"from" is required (the sender address)'::text;
        ELSIF (status_checker._mailbox(p_config ->> 'from')).addr IS NULL THEN
            probs := probs || format('"from" is not a mail address: %s', p_config ->> 'from');
        END IF;
        IF coalesce(p_config ->> 'starttls', 'require') NOT IN ('require', 'try', 'off') THEN
            probs := probs || format('"starttls" is require, try or off, not %s', p_config ->> 'starttls');
        END IF;
        IF (p_config ? 'username') <> (p_config ? 'password') THEN
            probs := probs || '"username" and "password" go together'::text;
        END IF;
        IF p_config ? 'password' AND url LIKE 'smtp://%' AND coalesce(p_config ->> 'starttls', 'require') <> 'require'
           AND host NOT IN ('127.0.0.1', 'localhost', '[::1]') THEN
            probs := probs || '"password" needs "starttls": "require" or smtps:// (it would cross the network in clear)'::text;
        END IF;
    ELSE
        IF url IS NOT NULL AND url !~ '^https?://[^/?#@\s]+(:[0-9]{1,5})?([/?][^\s]*)?$' THEN
            probs := probs || format('"url" must be an http:// or https:// URL, not %s', url);
        END IF;
        IF coalesce(p_config ->> 'format', 'json') NOT IN ('json', 'slack') THEN
            probs := probs || format('"format" is json or slack, not %s', p_config ->> 'format');
        END IF;
        IF coalesce(p_config ->> 'format', 'json') = 'json' AND length(coalesce(p_config ->> 'secret', '')) < 16 THEN
            probs := probs || '"secret" of at least 16 characters is required for the json format (receivers check the signature)'::text;
        END IF;
    END IF;
    IF coalesce(p_config ->> 'lang', 'ja') NOT IN ('ja', 'en', 'ja+en') THEN
        probs := probs || format('"lang" is ja, en or ja+en, not %s', p_config ->> 'lang');
    END IF;
    IF p_config ? 'timezone' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = p_config ->> 'timezone') THEN
        probs := probs || format('unknown "timezone" %s', p_config ->> 'timezone');
    END IF;
    RETURN probs;
END
$$;
COMMENT ON FUNCTION status_checker._channel_problems(text, jsonb) IS
'Internal: what is wrong with a channel configuration (empty when nothing)';

-- _destination_problem, _require_destination and add_channel: src/dispatch/destinations.sql
--.

CREATE FUNCTION status_checker.set_channel_enabled(channel_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('set_channel_enabled', ARRAY['channel_id', 'enabled'],
        ARRAY[set_channel_enabled.channel_id::text, set_channel_enabled.enabled::text]);
    UPDATE status_checker.channel c SET enabled = set_channel_enabled.enabled
    WHERE c.channel_id = set_channel_enabled.channel_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'channel % does not exist', set_channel_enabled.channel_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM status_checker._wake_dispatcher();
END
$$;
COMMENT ON FUNCTION status_checker.set_channel_enabled(bigint, boolean) IS
'Enable or disable a channel; messages wait (queued) while their tenant has no enabled channel of their kind';
ALTER FUNCTION status_checker.set_channel_enabled(bigint, boolean) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_channel_enabled(bigint, boolean) TO status_checker_admin;

CREATE FUNCTION status_checker.set_message_template(tenant_id bigint, purpose text, lang text, subject text, body text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    known text[] := ARRAY['site_name', 'site_code', 'group_name', 'request_title', 'event_summary', 'site_shindo',
                          'deadline', 'link', 'message', 'tenant_name', 'reminder_number', 'cancel_reason',
                          'unanswered_count', 'unanswered_sites', 'recipient_name'];
    bad text[];
BEGIN
    PERFORM status_checker._no_nulls('set_message_template', ARRAY['tenant_id', 'purpose', 'lang', 'subject', 'body'],
        ARRAY[set_message_template.tenant_id::text, set_message_template.purpose, set_message_template.lang,
              set_message_template.subject, set_message_template.body]);
    PERFORM status_checker._require_tenant(set_message_template.tenant_id);
    IF set_message_template.purpose NOT IN ('request', 'reminder', 'escalation', 'cancellation') THEN
        RAISE EXCEPTION 'unknown purpose %', quote_literal(set_message_template.purpose)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Purposes: request, reminder, escalation, cancellation.';
    END IF;
    IF set_message_template.lang NOT IN ('ja', 'en') THEN
        RAISE EXCEPTION 'unknown language %', quote_literal(set_message_template.lang)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Templates are written in ja or en.';
    END IF;
    IF btrim(set_message_template.subject) = '' OR length(set_message_template.subject) > 300
       OR set_message_template.subject ~ '[\r\n]' THEN
        RAISE EXCEPTION 'invalid subject template'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A subject has 1 to 300 characters on one line.';
    END IF;
    IF btrim(set_message_template.body) = '' OR length(set_message_template.body) > 20000 THEN
        RAISE EXCEPTION 'invalid body template'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A body has 1 to 20000 characters.';
    END IF;
    SELECT array_agg(DISTINCT m[1] ORDER BY m[1]) INTO bad
    FROM regexp_matches(set_message_template.subject || ' ' || set_message_template.body, '\{\{\s*([^}]*?)\s*\}\}', 'g') m
    WHERE NOT m[1] = ANY (known);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown template variable(s): %', array_to_string(bad, ', ')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Variables: ' || array_to_string(known, ', ');
    END IF;
    INSERT INTO status_checker.message_template AS t (tenant_id, purpose, lang, subject, body)
    VALUES (set_message_template.tenant_id, set_message_template.purpose, set_message_template.lang,
            set_message_template.subject, set_message_template.body)
    ON CONFLICT (tenant_id, purpose, lang)
    DO UPDATE SET subject = excluded.subject, body = excluded.body, updated_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION status_checker.set_message_template(bigint, text, text, text, text) IS
'Set a tenant''s template for a purpose (request, reminder, escalation, cancellation) and language (ja, en); '
'{{variables}}: site_name, site_code, group_name, request_title, event_summary, site_shindo, deadline, link, message, tenant_name, '
'reminder_number, cancel_reason, unanswered_count, unanswered_sites, recipient_name';
ALTER FUNCTION status_checker.set_message_template(bigint, text, text, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_message_template(bigint, text, text, text, text) TO status_checker_admin;

-- channel_list shows whether a channel has a password or secret; its
-- readers may not read the secrets column, so a function that runs as
-- status_checker_api (itself confined to the caller's tenant) answers that.
CREATE FUNCTION status_checker._channel_has_secrets(p_tenant_id bigint, p_channel_id bigint,
                                                    OUT has_password boolean, OUT has_secret boolean)
    LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.secrets ? 'password', c.secrets ? 'secret' FROM status_checker.channel c
    WHERE c.tenant_id = p_tenant_id AND c.channel_id = p_channel_id
$$;
ALTER FUNCTION status_checker._channel_has_secrets(bigint, bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker._channel_has_secrets(bigint, bigint) TO status_checker_manager;

CREATE VIEW status_checker.channel_list WITH (security_invoker = true) AS
SELECT c.channel_id, c.tenant_id, c.kind, c.name, c.config,
       h.has_password, h.has_secret,
       c.enabled, c.created_at
FROM status_checker.channel c
LEFT JOIN LATERAL status_checker._channel_has_secrets(c.tenant_id, c.channel_id) h ON true;
COMMENT ON VIEW status_checker.channel_list IS
'Delivery channels with their configuration; secrets are shown only as has_password / has_secret';
-- the configuration: for managers
GRANT SELECT ON status_checker.channel_list TO status_checker_manager;

-- ---- src/dispatch/destinations.sql
-- src/dispatch/destinations.sql — where a channel or a contact may send:
-- a URL whose host is an address the dispatcher may not connect to is
-- refused when it is added (the dispatcher checks every address it
-- connects to: src/dispatch/destinations.c); a channel's ca_file is an
-- operator's.  Written with CREATE OR REPLACE: an upgrade script can replay the same text.

CREATE OR REPLACE FUNCTION status_checker._destination_problem(url text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_destination_problem';
COMMENT ON FUNCTION status_checker._destination_problem(text) IS
'Internal: why the dispatcher would refuse the URL''s host, if it is an IP address that is neither public nor in '
'status_checker.allowed_destinations (or the URL is not one libcurl reads); NULL otherwise, and for a host name';

-- a URL the dispatcher would refuse to connect to, refused now (p_what: how
-- the error names it)
CREATE OR REPLACE FUNCTION status_checker._require_destination(p_what text, p_url text) RETURNS void
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := status_checker._destination_problem(p_url);
BEGIN
    IF problem LIKE 'destination %' THEN
        RAISE EXCEPTION '% refused: %', p_what, problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only public addresses are allowed, and the networks an operator lists in status_checker.allowed_destinations '
                         '(postgresql.conf); a host name is checked when a message is sent.';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION '% refused: %', p_what, problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._require_destination(text, text) IS
'Internal: refuse (22023) a URL whose host is an IP address the dispatcher may not connect to (status_checker.allowed_destinations)';

-- ---------------------------------------------------------- public functions

CREATE OR REPLACE FUNCTION status_checker.add_channel(tenant_id bigint, kind text, name text, config jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    probs text[];
    v_id bigint;
    secret_keys text[] := ARRAY['password', 'secret'];
BEGIN
    PERFORM status_checker._no_nulls('add_channel', ARRAY['tenant_id', 'kind', 'name', 'config'],
        ARRAY[add_channel.tenant_id::text, add_channel.kind, add_channel.name, add_channel.config::text]);
    PERFORM status_checker._require_tenant(add_channel.tenant_id);
    -- a path on the database server: the operator's (0.10.1)
    IF add_channel.config ? 'ca_file' AND NOT status_checker._is_operator() THEN
        RAISE EXCEPTION 'only an operator may set "ca_file" (a path on the database server)'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An operator (a superuser or a member of status_checker_operator) adds a channel that needs its own CA bundle.';
    END IF;
    IF add_channel.kind NOT IN ('email', 'webhook') THEN
        RAISE EXCEPTION 'unknown channel kind %', quote_literal(add_channel.kind)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A channel is email or webhook.';
    END IF;
    IF btrim(add_channel.name) = '' OR length(add_channel.name) > 100 THEN
        RAISE EXCEPTION 'invalid channel name %', quote_literal(add_channel.name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 100 characters and is not blank.';
    END IF;
    probs := status_checker._channel_problems(add_channel.kind, add_channel.config);
    IF cardinality(probs) > 0 THEN
        RAISE EXCEPTION 'invalid % channel configuration', add_channel.kind
            USING ERRCODE = 'invalid_parameter_value', DETAIL = array_to_string(probs, E'\n');
    END IF;
    PERFORM status_checker._require_destination('channel "url"', add_channel.config ->> 'url');
    IF EXISTS (SELECT 1 FROM status_checker.channel c WHERE c.tenant_id = add_channel.tenant_id AND c.name = add_channel.name) THEN
        RAISE EXCEPTION 'tenant % already has a channel named %', add_channel.tenant_id, quote_literal(add_channel.name)
            USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO status_checker.channel (tenant_id, kind, name, config, secrets)
    VALUES (add_channel.tenant_id, add_channel.kind, add_channel.name,
            add_channel.config - secret_keys,
            jsonb_strip_nulls(jsonb_build_object('password', add_channel.config -> 'password',
                                                 'secret', add_channel.config -> 'secret')))
    RETURNING channel_id INTO v_id;
    -- messages that waited for a channel of this kind are due now
    UPDATE status_checker.outbox o SET next_attempt_at = pg_catalog.now()
    WHERE o.tenant_id = add_channel.tenant_id AND o.state IN ('queued', 'retrying') AND o.channel_kind = add_channel.kind
      AND o.next_attempt_at > pg_catalog.now();
    PERFORM status_checker._wake_dispatcher();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.add_channel(bigint, text, text, jsonb) IS
'Add a delivery channel: email {"url": "smtp://host:port" | "smtps://…", "from", "starttls": require|try|off, "username", "password", "lang", "timezone", "ca_file"} '
'or webhook {"url", "format": json|slack, "secret", "lang", "broadcast", "ca_file"}; returns the channel id. Secrets are never shown again. '
'A URL whose host is an address that is neither public nor in status_checker.allowed_destinations is refused; ca_file is for operators';
ALTER FUNCTION status_checker.add_channel(bigint, text, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.add_channel(bigint, text, text, jsonb) TO status_checker_admin, status_checker_operator;


-- ---- src/requests/tokens.sql
-- src/requests/tokens.sql — personal tokens, derived from the tenant's link key.
--
-- The token of a request target is HMAC-SHA256(link key, tenant, request,
-- site, generation) in base64url (src/dispatch/crypto.c).  The database
-- stores its SHA-256 (request_target.token_hash) and the generation, never
-- the token: the dispatcher derives it again to put the link into a mail,
-- a retry or a reminder.  issue_token starts a new generation, so the
-- previous link stops working (its hash goes to request_token_revoked).
--
-- First links (0.9.0).  The link a message carries names its target after
-- the token: "<token>.<tenant>.<request>.<site>" (_link).  A target whose
-- token was never issued (token_gen 0) has no stored hash, and its first
-- link is checked by recomputing the token of generation 1 for the target
-- it names (_first_link_target); the first report by that link issues the
-- token (_issue_first_link: hash stored, generation 1).  So the dispatcher
-- sends a first link without writing anything (before 0.9.0 it stored the
-- hash for each message: a non-HOT update of request_target, three index
-- entries; the workers' CPU ~240 → ~195 µs a message without it), and a
-- link that nobody opens costs nothing.  Opening a link still changes
-- nothing (report_form).
-- Written as CREATE OR REPLACE: the same text serves the install script and
-- the upgrades from 0.2.0 (whose tokens were random) and from 0.8.0.

CREATE OR REPLACE FUNCTION status_checker._link(key bytea, tenant_id bigint, request_id bigint, site_id bigint, generation integer)
    RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_link';
COMMENT ON FUNCTION status_checker._link(bytea, bigint, bigint, bigint, integer) IS
'Internal: what a message''s personal link carries: the target''s token at a generation, then the target it names (tenant, request, site)';

CREATE OR REPLACE FUNCTION status_checker._link_token_matches(key bytea, tenant_id bigint, request_id bigint, site_id bigint,
                                                              generation integer, token text)
    RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_link_token_matches';
COMMENT ON FUNCTION status_checker._link_token_matches(bytea, bigint, bigint, bigint, integer, text) IS
'Internal: whether a token (a link''s first 43 characters) is the target''s at a generation; compared in constant time';

CREATE OR REPLACE FUNCTION status_checker._token_locator(token text, OUT tenant_id bigint, OUT request_id bigint, OUT site_id bigint)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_token_locator';
COMMENT ON FUNCTION status_checker._token_locator(text) IS
'Internal: the target a first link names after its token (NULLs if the text is not such a link); not a proof of anything';

-- Whether a first link's token is its target's of generation 1 (C, under
-- the tenant's link key, in constant time).  The link is the credential:
-- no session tenant is asked, so that any gateway login can check it.  Only
-- the extension's own functions (report_form, submit_report) call it.
CREATE OR REPLACE FUNCTION status_checker._first_link_valid(tenant_id bigint, request_id bigint, site_id bigint, token text)
    RETURNS boolean
    LANGUAGE c STABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_first_link_valid';
COMMENT ON FUNCTION status_checker._first_link_valid(bigint, bigint, bigint, text) IS
'Internal (report_form, submit_report): whether a token is the first (generation 1) of the target a first link names; no tenant check, the MAC is the proof';

-- The target a first link names, if its token was never issued and the
-- link's token is the target's first (generation 1); else NULLs.  The MAC
-- is checked first, so that a wrong link learns nothing of the target it
-- names: whatever it names, the answer is the same (0.10.1; until then a
-- link naming an existing target failed differently through a gateway).
-- Read-only: what report_form may call.
CREATE OR REPLACE FUNCTION status_checker._first_link_target(token text,
                                                             OUT tenant_id bigint, OUT request_id bigint, OUT site_id bigint)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    l record;
BEGIN
    l := status_checker._token_locator(token);
    IF l.tenant_id IS NULL OR NOT status_checker._first_link_valid(l.tenant_id, l.request_id, l.site_id, token) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM status_checker.request_target t
    WHERE t.tenant_id = l.tenant_id AND t.request_id = l.request_id AND t.site_id = l.site_id AND t.token_gen = 0;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    tenant_id := l.tenant_id;
    request_id := l.request_id;
    site_id := l.site_id;
END
$$;
COMMENT ON FUNCTION status_checker._first_link_target(text) IS
'Internal: the request target a first link names, if no token was issued for it yet and the link''s token is its first (else NULLs); read-only';

-- Issue the token of a first link (generation 1) when a report uses it:
-- its hash is stored, and from then on the token is found by its hash like
-- any other.  False if the link is not a valid first link (any more).
CREATE OR REPLACE FUNCTION status_checker._issue_first_link(token text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f record;
    v_old bytea;
BEGIN
    f := status_checker._first_link_target(token);
    IF f.tenant_id IS NULL THEN
        RETURN false;
    END IF;
    -- locked, and checked again: a concurrent report or issue_token may have issued one
    SELECT t.token_hash INTO v_old FROM status_checker.request_target t
    WHERE t.tenant_id = f.tenant_id AND t.request_id = f.request_id AND t.site_id = f.site_id AND t.token_gen = 0
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_old IS NOT NULL THEN   -- a random token of 0.2.0, replaced by the link sent since
        INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
        VALUES (v_old, f.tenant_id, f.request_id, f.site_id)
        ON CONFLICT DO NOTHING;
    END IF;
    UPDATE status_checker.request_target t
    SET token_gen = 1, token_hash = status_checker._token_hash(token), token_issued_at = pg_catalog.now()
    WHERE t.tenant_id = f.tenant_id AND t.request_id = f.request_id AND t.site_id = f.site_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION status_checker._issue_first_link(text) IS
'Internal (submit_report): issue the token of a valid first link (its hash stored, generation 1); false if the link is not one';

-- Whether a first link may have gone out to a target: a message that
-- carries it was sent or is being sent.
CREATE OR REPLACE FUNCTION status_checker._first_link_sent(p_tenant_id bigint, p_request_id bigint, p_site_id bigint)
    RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (plpgsql: the outbox is made after this file)
    RETURN EXISTS (SELECT 1 FROM status_checker.outbox o
                   WHERE o.tenant_id = p_tenant_id AND o.request_id = p_request_id AND o.site_id = p_site_id
                     AND o.purpose IN ('request', 'reminder') AND o.attempts > 0);
END
$$;
COMMENT ON FUNCTION status_checker._first_link_sent(bigint, bigint, bigint) IS
'Internal: whether a message with the target''s link was sent or is being sent (its first link may be out)';

-- The personal token of a request target at a generation, for a session
-- acting for the tenant (C: the link key is read, decrypted and used there,
-- and never handed to SQL; since 0.10.1).
CREATE OR REPLACE FUNCTION status_checker._target_token(p_tenant_id bigint, p_request_id bigint, p_site_id bigint, p_gen integer)
    RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_target_token';
COMMENT ON FUNCTION status_checker._target_token(bigint, bigint, bigint, integer) IS
'Internal: the personal token of a request target at a generation (the link key stays in C)';

CREATE OR REPLACE FUNCTION status_checker.issue_token(request_id bigint, site_code text)
    RETURNS text
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    v_site bigint;
    v_old bytea;
    v_gen integer;
    v_token text;
BEGIN
    PERFORM status_checker._no_nulls('issue_token', ARRAY['request_id', 'site_code'], ARRAY[issue_token.request_id::text, issue_token.site_code::text]);
    r := status_checker._require_request(issue_token.request_id);
    v_site := status_checker._require_site(r.tenant_id, issue_token.site_code);
    IF r.state <> 'open' THEN
        RAISE EXCEPTION 'request % is %', r.request_id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Tokens are issued only for open requests.';
    END IF;
    SELECT t.token_hash, t.token_gen INTO v_old, v_gen FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'site % is not a target of request %', quote_literal(issue_token.site_code), r.request_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF v_old IS NOT NULL THEN
        INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
        VALUES (v_old, r.tenant_id, r.request_id, v_site);
    END IF;
    -- never issued, but its first link may be out: that link stops working too
    IF v_gen = 0 AND status_checker._first_link_sent(r.tenant_id, r.request_id, v_site) THEN
        INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
        VALUES (status_checker._token_hash(status_checker._target_token(r.tenant_id, r.request_id, v_site, 1)),
                r.tenant_id, r.request_id, v_site)
        ON CONFLICT DO NOTHING;
        v_gen := 1;
    END IF;
    v_token := status_checker._target_token(r.tenant_id, r.request_id, v_site, v_gen + 1);
    UPDATE status_checker.request_target t
    SET token_hash = status_checker._token_hash(v_token), token_gen = v_gen + 1, token_issued_at = pg_catalog.now()
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site;
    RETURN v_token;
END
$$;
COMMENT ON FUNCTION status_checker.issue_token(bigint, text) IS
'Issue a new personal token (256 bits, base64url) for a site of an open request; the previous token stops working. Only the SHA-256 is stored';
ALTER FUNCTION status_checker.issue_token(bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.issue_token(bigint, text) TO status_checker_manager;

CREATE OR REPLACE FUNCTION status_checker.issue_tokens(request_id bigint)
    RETURNS TABLE (site_code text, token text)
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    first_out bigint[];
BEGIN
    PERFORM status_checker._no_nulls('issue_tokens', ARRAY['request_id'], ARRAY[issue_tokens.request_id::text]);
    r := status_checker._require_request(issue_tokens.request_id, true);
    IF r.state <> 'open' THEN
        RAISE EXCEPTION 'request % is %', r.request_id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Tokens are issued only for open requests.';
    END IF;
    -- the targets first, locked in key order (as a report's first use of a
    -- link locks its one target): the hashes revoked below are the current ones
    PERFORM 1 FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id
    ORDER BY t.tenant_id, t.request_id, t.site_id
    FOR UPDATE;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.token_hash IS NOT NULL;
    -- never issued, but their first link may be out: those links stop working too
    -- (their new token is of generation 2).  Kept in a variable: a SECURITY
    -- DEFINER function makes, reuses or names no temporary object (0.10.1).
    first_out := ARRAY(
        SELECT DISTINCT o.site_id FROM status_checker.outbox o
        JOIN status_checker.request_target t ON t.tenant_id = o.tenant_id AND t.request_id = o.request_id AND t.site_id = o.site_id
        WHERE o.tenant_id = r.tenant_id AND o.request_id = r.request_id AND o.purpose IN ('request', 'reminder')
          AND o.attempts > 0 AND t.token_gen = 0
        ORDER BY 1);
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT status_checker._token_hash(status_checker._target_token(r.tenant_id, r.request_id, f.site_id, 1)),
           r.tenant_id, r.request_id, f.site_id
    FROM unnest(first_out) f(site_id)
    ON CONFLICT DO NOTHING;
    UPDATE status_checker.request_target t SET token_gen = 1
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = ANY (first_out);

    RETURN QUERY
        WITH u AS (
            UPDATE status_checker.request_target t
            SET token_gen = t.token_gen + 1,
                token_hash = status_checker._token_hash(status_checker._target_token(t.tenant_id, t.request_id, t.site_id, t.token_gen + 1)),
                token_issued_at = pg_catalog.now()
            WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id
            RETURNING t.site_id, t.token_gen
        )
        SELECT s.code, status_checker._target_token(r.tenant_id, r.request_id, u.site_id, u.token_gen) FROM u
        JOIN status_checker.site s ON s.tenant_id = r.tenant_id AND s.site_id = u.site_id
        ORDER BY s.code;
END
$$;
COMMENT ON FUNCTION status_checker.issue_tokens(bigint) IS
'Issue new personal tokens for every target of an open request (previous tokens stop working); returns site code and token';
ALTER FUNCTION status_checker.issue_tokens(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.issue_tokens(bigint) TO status_checker_manager;

-- ---- src/dispatch/outbox.sql
-- src/dispatch/outbox.sql — the outbox: messages to send, claimed and
-- recorded by the dispatcher worker (src/dispatch/dispatcher.c).
--
-- Exactly one effect per cause: a message's natural key is (request, site,
-- purpose, number, contact | manager | channel); enqueueing twice is a
-- no-op.  Messages are enqueued in the transaction that causes them (a new
-- request target, a cancellation, a reminder round) and the dispatcher is
-- woken when that transaction commits.  Sending is at least once: a
-- message whose outcome was not recorded (crash) is sent again with the
-- same idempotency key (webhooks: Idempotency-Key header; mails: the
-- Message-ID), so that receivers can recognise the duplicate.
--
-- States: queued → sending → sent | retrying → sending … | dead; and
-- cancelled (not sent because its request was closed or cancelled, or the
-- site answered before a reminder went out).

CREATE TABLE status_checker.outbox (
    tenant_id        bigint NOT NULL,
    message_id       bigint GENERATED ALWAYS AS IDENTITY,
    request_id       bigint NOT NULL,
    site_id          bigint,              -- NULL: an escalation (about several sites)
    contact_id       bigint,              -- a site contact, or ...
    user_id          bigint,              -- ... a manager (escalation), or ...
    channel_id       bigint,              -- ... a webhook channel that receives everything (broadcast)
    channel_kind     text NOT NULL CHECK (channel_kind IN ('email', 'webhook')),
    recipient        text NOT NULL,       -- address or URL when enqueued
    purpose          text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    seq              integer NOT NULL DEFAULT 0,   -- reminder number
    detail           jsonb,               -- escalation: the sites that have not answered
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'sending', 'sent', 'retrying', 'dead', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    lease_until      timestamptz,
    last_status      integer,             -- HTTP status or SMTP reply code of the last attempt
    last_error       text,
    via_channel_id   bigint,              -- the channel the last attempt went through
    enqueued_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at          timestamptz,
    claimed_by       smallint,            -- the dispatcher worker (0, 1, …) that holds or last held it (0.8.0)
    PRIMARY KEY (tenant_id, message_id),
    CHECK (num_nonnulls(contact_id, user_id, channel_id) = 1),
    CHECK ((state = 'sending') = (lease_until IS NOT NULL))
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX outbox_natural_key ON status_checker.outbox
    (tenant_id, request_id, site_id, purpose, seq, contact_id, user_id, channel_id) NULLS NOT DISTINCT;
-- The dispatcher's queue.  Its predicate and key are columns a claim does
-- not change, so that a claim is a HOT update (no index entries); a dead or
-- cancelled message is parked at next_attempt_at = infinity.
CREATE INDEX outbox_due ON status_checker.outbox (next_attempt_at) WHERE sent_at IS NULL;
COMMENT ON TABLE status_checker.outbox IS
'Messages to send (mail, webhook): one per request, site, purpose, reminder number and recipient; state, attempts, lease, last error';
ALTER TABLE status_checker.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.outbox
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.outbox TO status_checker_viewer, status_checker_operator;

-- failed attempts only (a sent message's record is the outbox row itself)
CREATE TABLE status_checker.delivery_attempt (
    tenant_id    bigint NOT NULL,
    message_id   bigint NOT NULL,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    outcome      text NOT NULL CHECK (outcome IN ('retry', 'dead')),
    status       integer,
    error        text,
    PRIMARY KEY (tenant_id, message_id, attempt)
);
COMMENT ON TABLE status_checker.delivery_attempt IS
'Delivery log: every failed attempt of a message, with the server''s status and the error';
ALTER TABLE status_checker.delivery_attempt ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.delivery_attempt FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.delivery_attempt
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.delivery_attempt TO status_checker_viewer, status_checker_operator;

-- ---------------------------------------------------------- C helpers

CREATE FUNCTION status_checker._outbox_wake() RETURNS trigger
    LANGUAGE c SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_outbox_wake';
COMMENT ON FUNCTION status_checker._outbox_wake() IS
'Internal: statement trigger on the outbox: wakes the dispatcher when the transaction commits';

CREATE FUNCTION status_checker._wake_dispatcher() RETURNS void
    LANGUAGE c VOLATILE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_wake_dispatcher';
COMMENT ON FUNCTION status_checker._wake_dispatcher() IS
'Internal: wake the dispatcher when the current transaction commits';

CREATE FUNCTION status_checker.dispatcher_status(
    OUT running boolean, OUT pid integer, OUT started_at timestamptz, OUT heartbeat timestamptz,
    OUT in_flight bigint, OUT waiting bigint, OUT sent bigint, OUT retried bigint, OUT dead bigint)
    LANGUAGE c VOLATILE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'sc_dispatcher_status';
COMMENT ON FUNCTION status_checker.dispatcher_status() IS
'The dispatcher workers in one row: running (any of them), pid (the first running one''s), earliest start, oldest heartbeat, '
'transfers in flight, claimed messages waiting for the rate limit, and outcomes since the server started (sent, retried, dead), '
'summed over the workers; running is false without shared_preload_libraries.  dispatcher_workers() shows each worker';
GRANT EXECUTE ON FUNCTION status_checker.dispatcher_status() TO status_checker_api, status_checker_operator;

CREATE TRIGGER outbox_wake AFTER INSERT ON status_checker.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION status_checker._outbox_wake();

-- ---------------------------------------------------------- enqueueing

-- _enqueue_site_messages: src/dispatch/enqueue.sql.

CREATE FUNCTION status_checker._tenant_delivers(p_tenant_id bigint) RETURNS boolean
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN EXISTS (SELECT 1 FROM status_checker.site_contact c WHERE c.tenant_id = p_tenant_id)
        OR EXISTS (SELECT 1 FROM status_checker.channel ch
                   WHERE ch.tenant_id = p_tenant_id AND ch.kind = 'webhook' AND ch.enabled
                     AND coalesce((ch.config ->> 'broadcast')::boolean, true));
COMMENT ON FUNCTION status_checker._tenant_delivers(bigint) IS
'Internal: whether asking a site of the tenant can make a message (the tenant has contacts or a broadcasting webhook)';

-- The functions that insert request targets (create_request, _fire_rules:
-- src/requests/targets.sql, src/triggers/fire.sql) enqueue the new targets'
-- first messages in the same statement's transaction by calling
-- _enqueue_site_messages(..., 'request', 0, sites, true).  (A statement
-- trigger with a transition table did the same for any insert, but kept
-- every new target row in a tuplestore: a fifth of the time of asking
-- 100,000 sites, even for tenants that have nobody to send to.)

CREATE FUNCTION status_checker._enqueue_cancellation() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sites bigint[];
BEGIN
    -- what has not gone out yet is not sent at all
    UPDATE status_checker.outbox o
    SET state = 'cancelled', last_error = 'not sent: the request was cancelled', next_attempt_at = 'infinity'
    WHERE o.tenant_id = NEW.tenant_id AND o.request_id = NEW.request_id
      AND o.purpose <> 'cancellation' AND o.state IN ('queued', 'retrying');
    -- the sites that were (or may have been) asked are told
    SELECT array_agg(DISTINCT o.site_id ORDER BY o.site_id) INTO sites FROM status_checker.outbox o
    WHERE o.tenant_id = NEW.tenant_id AND o.request_id = NEW.request_id
      AND o.purpose IN ('request', 'reminder') AND o.state IN ('sent', 'sending');
    IF sites IS NOT NULL THEN
        PERFORM status_checker._enqueue_site_messages(NEW.tenant_id, NEW.request_id, 'cancellation', 0, sites);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_cancellation() IS
'Internal: when a request is cancelled, its unsent messages are dropped and the sites already asked are told';

CREATE TRIGGER request_cancel_enqueue AFTER UPDATE OF state ON status_checker.request
    FOR EACH ROW WHEN (NEW.state = 'cancelled' AND OLD.state <> 'cancelled')
    EXECUTE FUNCTION status_checker._enqueue_cancellation();

-- ---------------------------------------------------------- the dispatcher's side

-- On start, each dispatcher worker makes the messages it left 'sending'
-- due again: _dispatcher_startup, src/dispatch/workers.sql.

CREATE FUNCTION status_checker._outbox_next_wait() RETURNS double precision
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (SELECT extract(epoch FROM min(o.next_attempt_at) - pg_catalog.clock_timestamp())
            FROM status_checker.outbox o WHERE o.sent_at IS NULL AND o.state IN ('queued', 'retrying'));
COMMENT ON FUNCTION status_checker._outbox_next_wait() IS
'Internal: seconds until the next message is due (NULL when none waits)';

-- _mask_recipient: src/dispatch/delivery_status.sql.


-- _claim_messages is in src/dispatch/claim.sql; the delivery_status view in
-- src/security/encryption.sql (recipients are encrypted, 0.4.0).

-- Record the outcomes of attempts.  An attempt is matched by its message
-- and attempt number, so that a late outcome of a superseded attempt
-- changes nothing.
CREATE FUNCTION status_checker._record_outcomes(p_tenants bigint[], p_ids bigint[], p_attempts integer[], p_outcomes text[],
                                               p_codes integer[], p_errors text[], p_retry_after integer[],
                                               p_max_attempts integer, p_base_ms integer, p_max_ms integer)
    RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    -- a batch is a few hundred rows of a large table: look each up by its key
    SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off AS $$
BEGIN
    WITH x AS (
        SELECT * FROM unnest(p_tenants, p_ids, p_attempts, p_outcomes, p_codes, p_errors, p_retry_after)
                      AS x(tenant_id, message_id, attempt, outcome, code, error, retry_after)
    ), u AS (
        UPDATE status_checker.outbox o
        SET state = CASE WHEN x.outcome = 'sent' THEN 'sent'
                         WHEN x.outcome = 'dead' OR o.attempts >= p_max_attempts THEN 'dead'
                         ELSE 'retrying' END,
            sent_at = CASE WHEN x.outcome = 'sent' THEN pg_catalog.now() END,
            lease_until = NULL,
            last_status = nullif(x.code, 0),
            last_error = CASE WHEN x.outcome = 'sent' THEN NULL
                              WHEN x.outcome = 'retry' AND o.attempts >= p_max_attempts
                                  THEN format('gave up after %s attempts: %s', o.attempts, x.error)
                              ELSE x.error END,
            -- exponential backoff with jitter (50-100 %), or the server's Retry-After
            next_attempt_at = CASE WHEN x.outcome = 'retry' AND o.attempts < p_max_attempts THEN pg_catalog.now() + greatest(
                x.retry_after * interval '1 second',
                least(p_max_ms::double precision, p_base_ms * power(2::double precision, least(o.attempts - 1, 30)))
                    * (0.5 + random() * 0.5) * interval '1 millisecond')
                                   WHEN x.outcome = 'sent' THEN o.next_attempt_at
                                   ELSE 'infinity' END
        FROM x
        WHERE o.tenant_id = x.tenant_id AND o.message_id = x.message_id AND o.state = 'sending' AND o.attempts = x.attempt
        RETURNING o.tenant_id, o.message_id, o.attempts, o.state, x.code, o.last_error
    )
    INSERT INTO status_checker.delivery_attempt (tenant_id, message_id, attempt, outcome, status, error)
    SELECT u.tenant_id, u.message_id, u.attempts, CASE WHEN u.state = 'dead' THEN 'dead' ELSE 'retry' END,
           nullif(u.code, 0), u.last_error
    FROM u WHERE u.state <> 'sent'
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION status_checker._record_outcomes(bigint[], bigint[], integer[], text[], integer[], text[], integer[], integer, integer, integer) IS
'Internal (dispatcher): record attempts'' outcomes (sent, retry, dead) in one short transaction; retries back off exponentially with jitter';

-- ---------------------------------------------------------- public functions and views

CREATE FUNCTION status_checker.retry_message(message_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    st text;
BEGIN
    PERFORM status_checker._no_nulls('retry_message', ARRAY['message_id'], ARRAY[retry_message.message_id::text]);
    SELECT o.state INTO st FROM status_checker.outbox o WHERE o.message_id = retry_message.message_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'message % does not exist', retry_message.message_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF st <> 'dead' THEN
        RAISE EXCEPTION 'message % is %, not dead', retry_message.message_id, st
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only dead messages are sent again by hand.';
    END IF;
    UPDATE status_checker.outbox o SET state = 'queued', attempts = 0, next_attempt_at = pg_catalog.now()
    WHERE o.message_id = retry_message.message_id;
    PERFORM status_checker._wake_dispatcher();
END
$$;
COMMENT ON FUNCTION status_checker.retry_message(bigint) IS
'Send a dead message again (after its cause, e.g. a wrong webhook URL or SMTP password, was fixed); attempts start again';
ALTER FUNCTION status_checker.retry_message(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.retry_message(bigint) TO status_checker_manager;


CREATE VIEW status_checker.request_delivery WITH (security_invoker = true) AS
SELECT o.tenant_id, o.request_id,
       count(*) AS messages,
       count(*) FILTER (WHERE o.state = 'queued') AS queued,
       count(*) FILTER (WHERE o.state = 'sending') AS sending,
       count(*) FILTER (WHERE o.state = 'sent') AS sent,
       count(*) FILTER (WHERE o.state = 'retrying') AS retrying,
       count(*) FILTER (WHERE o.state = 'dead') AS dead,
       count(*) FILTER (WHERE o.state = 'cancelled') AS cancelled,
       min(o.enqueued_at) AS first_enqueued_at,
       max(o.sent_at) AS last_sent_at,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.sent_at - o.enqueued_at))
           FILTER (WHERE o.state = 'sent') AS latency_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM o.sent_at - o.enqueued_at))
           FILTER (WHERE o.state = 'sent') AS latency_p95_s,
       max(extract(epoch FROM o.sent_at - o.enqueued_at)) AS latency_max_s
FROM status_checker.outbox o
GROUP BY o.tenant_id, o.request_id;
COMMENT ON VIEW status_checker.request_delivery IS
'Delivery per request: messages by state, and the latency from enqueue to sent (median, 95th percentile, max, in seconds)';
GRANT SELECT ON status_checker.request_delivery TO status_checker_viewer, status_checker_operator;

-- ---- src/dispatch/reminders.sql
-- src/dispatch/reminders.sql — reminders, escalation, and the periodic jobs.
--
-- A request (or the rule that makes it) can carry reminder intervals and an
-- escalation delay.  run_reminders(), run every minute by pg_cron
-- (schedule_jobs), enqueues the due reminder to every site that has not
-- answered, and once the escalation delay has passed, one message to each
-- manager of those sites' groups (or, where a group has none up to its
-- root, the tenant's admins) listing the sites that have not answered.
-- The outbox's natural key makes each of these happen once.

CREATE TABLE status_checker.site_group_manager (
    tenant_id   bigint NOT NULL,
    group_id    bigint NOT NULL,
    user_id     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES status_checker.site_group (tenant_id, group_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.site_group_manager IS
'Managers of a site group: escalations about the group''s sites (and its subgroups'') reach them';
ALTER TABLE status_checker.site_group_manager ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.site_group_manager FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.site_group_manager
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.site_group_manager TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.health_sample (
    taken_at   timestamptz PRIMARY KEY DEFAULT pg_catalog.clock_timestamp(),
    sample     jsonb NOT NULL
);
COMMENT ON TABLE status_checker.health_sample IS
'What health_probe() saw each time it ran (every minute with schedule_jobs): dispatcher, outbox backlog, feeds';

CREATE FUNCTION status_checker.add_group_manager(tenant_id bigint, group_id bigint, login text) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('add_group_manager', ARRAY['tenant_id', 'group_id', 'login'],
        ARRAY[add_group_manager.tenant_id::text, add_group_manager.group_id::text, add_group_manager.login]);
    PERFORM status_checker._require_tenant(add_group_manager.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.site_group g
                   WHERE g.tenant_id = add_group_manager.tenant_id AND g.group_id = add_group_manager.group_id) THEN
        RAISE EXCEPTION 'site group % does not exist in tenant %', add_group_manager.group_id, add_group_manager.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT * INTO u FROM status_checker.app_user a
    WHERE a.tenant_id = add_group_manager.tenant_id AND a.login = add_group_manager.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist in tenant %', quote_literal(add_group_manager.login), add_group_manager.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF u.role NOT IN ('admin', 'manager') THEN
        RAISE EXCEPTION 'user % is a %, not a manager or admin', quote_literal(u.login), u.role
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO status_checker.site_group_manager (tenant_id, group_id, user_id)
    VALUES (u.tenant_id, add_group_manager.group_id, u.user_id)
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION status_checker.add_group_manager(bigint, bigint, text) IS
'Make a manager (or admin) user responsible for a site group: escalations about its sites and subgroups'' sites reach them';
ALTER FUNCTION status_checker.add_group_manager(bigint, bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.add_group_manager(bigint, bigint, text) TO status_checker_admin;

CREATE FUNCTION status_checker._reminder_problem(p_reminders interval[], p_escalate_after interval) RETURNS text
    LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE
        WHEN p_reminders IS NULL THEN 'reminders is NULL (use an empty array for none)'
        WHEN cardinality(p_reminders) > 20 THEN 'at most 20 reminders'
        WHEN array_position(p_reminders, NULL) IS NOT NULL THEN 'a reminder interval is NULL'
        WHEN EXISTS (SELECT 1 FROM unnest(p_reminders) WITH ORDINALITY a(iv, i)
                     WHERE a.iv < interval '1 minute'
                        OR a.iv <= coalesce(p_reminders[a.i - 1], interval '0')) THEN
            'reminder intervals are at least 1 minute and increase'
        WHEN p_escalate_after < interval '1 minute' THEN 'escalate_after is at least 1 minute'
    END;
COMMENT ON FUNCTION status_checker._reminder_problem(interval[], interval) IS
'Internal: what is wrong with a reminder schedule (NULL when nothing)';

CREATE FUNCTION status_checker.set_request_reminders(request_id bigint, reminders interval[], escalate_after interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    prob text := status_checker._reminder_problem(set_request_reminders.reminders, set_request_reminders.escalate_after);
BEGIN
    PERFORM status_checker._no_nulls('set_request_reminders', ARRAY['request_id'], ARRAY[set_request_reminders.request_id::text]);
    r := status_checker._require_request(set_request_reminders.request_id, true);
    IF prob IS NOT NULL THEN
        RAISE EXCEPTION 'invalid reminder schedule: %', prob USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Intervals count from the request''s creation, e.g. ARRAY[''30 minutes'', ''2 hours'']::interval[].';
    END IF;
    UPDATE status_checker.request q
    SET reminders = set_request_reminders.reminders, escalate_after = set_request_reminders.escalate_after
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) IS
'Remind the sites of a request that have not answered, at these intervals after its creation, and escalate to their group''s managers after escalate_after';
ALTER FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) TO status_checker_manager;

CREATE FUNCTION status_checker.set_rule_reminders(rule_id bigint, reminders interval[], escalate_after interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    prob text := status_checker._reminder_problem(set_rule_reminders.reminders, set_rule_reminders.escalate_after);
BEGIN
    PERFORM status_checker._no_nulls('set_rule_reminders', ARRAY['rule_id'], ARRAY[set_rule_reminders.rule_id::text]);
    IF prob IS NOT NULL THEN
        RAISE EXCEPTION 'invalid reminder schedule: %', prob USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.trigger_rule r
    SET reminders = set_rule_reminders.reminders, escalate_after = set_rule_reminders.escalate_after
    WHERE r.rule_id = set_rule_reminders.rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', set_rule_reminders.rule_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) IS
'The reminder schedule and escalation delay of the requests a trigger rule creates from now on';
ALTER FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) TO status_checker_admin;

CREATE FUNCTION status_checker.run_reminders() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q record;
    n bigint := 0;
    k integer;
    sites bigint[];
BEGIN
    FOR q IN SELECT r.tenant_id, r.request_id, r.reminders, r.escalate_after, r.created_at
             FROM status_checker.request r
             WHERE r.state = 'open' AND r.deadline > pg_catalog.now()
               AND (cardinality(r.reminders) > 0 OR r.escalate_after IS NOT NULL)
             ORDER BY r.tenant_id, r.request_id LOOP
        -- the latest reminder that is due (earlier ones missed are not sent late)
        SELECT max(a.i) INTO k FROM unnest(q.reminders) WITH ORDINALITY a(iv, i)
        WHERE q.created_at + a.iv <= pg_catalog.now();
        IF k IS NOT NULL THEN
            -- sites that have not answered, were asked at least that long ago,
            -- and have not had this reminder (or a later one)
            SELECT array_agg(t.site_id ORDER BY t.site_id) INTO sites
            FROM status_checker.request_target t
            WHERE t.tenant_id = q.tenant_id AND t.request_id = q.request_id AND t.report_count = 0
              AND NOT EXISTS (SELECT 1 FROM status_checker.outbox o
                              WHERE o.tenant_id = t.tenant_id AND o.request_id = t.request_id AND o.site_id = t.site_id
                                AND o.purpose = 'reminder' AND o.seq >= k)
              AND EXISTS (SELECT 1 FROM status_checker.outbox o
                          WHERE o.tenant_id = t.tenant_id AND o.request_id = t.request_id AND o.site_id = t.site_id
                            AND o.purpose = 'request' AND o.enqueued_at + q.reminders[1] <= pg_catalog.now());
            IF sites IS NOT NULL THEN
                n := n + status_checker._enqueue_site_messages(q.tenant_id, q.request_id, 'reminder', k, sites);
            END IF;
        END IF;
        IF q.escalate_after IS NOT NULL AND q.created_at + q.escalate_after <= pg_catalog.now() THEN
            n := n + status_checker._enqueue_escalation(q.tenant_id, q.request_id);
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.run_reminders() IS
'Enqueue the reminders and escalations that are due (run every minute by the pg_cron job status_checker-reminders); returns the number of messages enqueued';
GRANT EXECUTE ON FUNCTION status_checker.run_reminders() TO status_checker_api, status_checker_operator;

-- _enqueue_escalation: src/dispatch/enqueue.sql.

CREATE FUNCTION status_checker.purge_outbox(older_than interval DEFAULT '90 days') RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n bigint;
BEGIN
    IF purge_outbox.older_than IS NULL OR purge_outbox.older_than < interval '1 day' THEN
        RAISE EXCEPTION 'purge_outbox keeps at least 1 day, not %', coalesce(purge_outbox.older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH d AS (
        DELETE FROM status_checker.outbox o
        WHERE o.state IN ('sent', 'dead', 'cancelled')
          AND coalesce(o.sent_at, o.enqueued_at) < pg_catalog.now() - purge_outbox.older_than
        RETURNING o.tenant_id, o.message_id
    ), a AS (
        DELETE FROM status_checker.delivery_attempt x USING d
        WHERE x.tenant_id = d.tenant_id AND x.message_id = d.message_id
    )
    SELECT count(*) INTO n FROM d;
    DELETE FROM status_checker.health_sample h WHERE h.taken_at < pg_catalog.now() - purge_outbox.older_than;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.purge_outbox(interval) IS
'Retention: delete settled messages (sent, dead, cancelled), their delivery log and health samples older than the given age (default 90 days); returns the number of messages deleted';
GRANT EXECUTE ON FUNCTION status_checker.purge_outbox(interval) TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.health_probe() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d record;
    s jsonb;
BEGIN
    d := status_checker.dispatcher_status();
    s := jsonb_build_object(
        'dispatcher', jsonb_build_object(
            'running', d.running, 'pid', d.pid,
            'heartbeat_age_s', round(extract(epoch FROM pg_catalog.clock_timestamp() - d.heartbeat)::numeric, 3),
            'in_flight', d.in_flight, 'sent', d.sent, 'retried', d.retried, 'dead', d.dead),
        'outbox', (SELECT jsonb_build_object(
            'queued', count(*) FILTER (WHERE o.state = 'queued'),
            'retrying', count(*) FILTER (WHERE o.state = 'retrying'),
            'sending', count(*) FILTER (WHERE o.state = 'sending'),
            'oldest_waiting_s', round(extract(epoch FROM pg_catalog.now() - min(o.enqueued_at)
                                      FILTER (WHERE o.state IN ('queued', 'retrying', 'sending')))::numeric, 3))
            FROM status_checker.outbox o WHERE o.state IN ('queued', 'retrying', 'sending')),
        'dead_last_hour', (SELECT count(*) FROM status_checker.delivery_attempt a
                           WHERE a.outcome = 'dead' AND a.at > pg_catalog.now() - interval '1 hour'),
        'feeds', (SELECT jsonb_build_object('total', count(*), 'failing', count(*) FILTER (WHERE f.consecutive_errors > 0))
                  FROM status_checker.feed f));
    INSERT INTO status_checker.health_sample (sample) VALUES (s);
    RETURN s;
END
$$;
COMMENT ON FUNCTION status_checker.health_probe() IS
'Health probe (every minute with schedule_jobs): the dispatcher''s heartbeat and counters, the outbox backlog and its oldest message, '
'dead messages of the last hour, failing feeds; stored in health_sample and returned';
GRANT EXECUTE ON FUNCTION status_checker.health_probe() TO status_checker_api, status_checker_operator;

-- schedule_jobs() is in src/common/jobs.sql: it registers the jobs of every domain.

-- ---- src/dispatch/enqueue.sql
-- src/dispatch/enqueue.sql — putting messages into the outbox.  Written
-- with CREATE OR REPLACE: an upgrade script can replay the same text.

-- One message of a purpose for each contact of the listed sites of a
-- request, and one for each broadcasting webhook channel of the tenant.
-- Every recipient is stored encrypted: a contact's address is so already;
-- a broadcast channel's URL (a Slack incoming-webhook URL is itself a
-- credential) is encrypted here, since 0.10.1 (viewers read the outbox).
CREATE OR REPLACE FUNCTION status_checker._enqueue_site_messages(p_tenant_id bigint, p_request_id bigint, p_purpose text,
                                                      p_seq integer, p_sites bigint[], p_first boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- the first messages of new targets cannot exist yet: a plain insert
    -- (ON CONFLICT's speculative insertion cost a third more)
    EXECUTE format($q$
        WITH broadcast AS MATERIALIZED (   -- each channel's URL encrypted once, not once per site
            SELECT ch.channel_id, status_checker._encrypt(ch.tenant_id, 'recipient', ch.config ->> 'url') AS recipient
            FROM status_checker.channel ch
            WHERE ch.tenant_id = $1 AND ch.kind = 'webhook' AND ch.enabled
              AND coalesce((ch.config ->> 'broadcast')::boolean, true))
        INSERT INTO status_checker.outbox (tenant_id, request_id, site_id, contact_id, channel_id, channel_kind, recipient, purpose, seq)
        SELECT $1, $2, x.site_id, x.contact_id, x.channel_id, x.kind, x.recipient, $3, $4
        FROM (SELECT s.site_id, c.contact_id, NULL::bigint AS channel_id, c.channel AS kind, c.address AS recipient
              FROM unnest($5) s(site_id)
              JOIN status_checker.site_contact c ON c.tenant_id = $1 AND c.site_id = s.site_id
              UNION ALL
              SELECT s.site_id, NULL, b.channel_id, 'webhook', b.recipient
              FROM unnest($5) s(site_id)
              CROSS JOIN broadcast b) x
        ORDER BY x.site_id %s$q$, CASE WHEN p_first THEN '' ELSE 'ON CONFLICT DO NOTHING' END)
    USING p_tenant_id, p_request_id, p_purpose, p_seq, p_sites;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_site_messages(bigint, bigint, text, integer, bigint[], boolean) IS
'Internal: enqueue a message of a purpose to every contact of the given sites of a request and to the broadcasting webhook channels';

-- One escalation per manager (and per broadcasting webhook channel) of a
-- request, listing the sites they cover that have not answered.
CREATE OR REPLACE FUNCTION status_checker._enqueue_escalation(p_tenant_id bigint, p_request_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH silent AS (
        SELECT s.site_id, s.code, s.name, g.ancestors
        FROM status_checker.request_target t
        JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        WHERE t.tenant_id = p_tenant_id AND t.request_id = p_request_id AND t.report_count = 0
    ), covered AS (
        SELECT DISTINCT m.user_id, x.site_id, x.code, x.name
        FROM silent x
        JOIN status_checker.site_group_manager m ON m.tenant_id = p_tenant_id AND m.group_id = ANY (x.ancestors)
    ), orphan AS (   -- no manager up to the root: the tenant's admins
        SELECT a.user_id, x.site_id, x.code, x.name
        FROM silent x CROSS JOIN status_checker.app_user a
        WHERE a.tenant_id = p_tenant_id AND a.role = 'admin'
          AND NOT EXISTS (SELECT 1 FROM covered c WHERE c.site_id = x.site_id)
    ), per_user AS (
        SELECT y.user_id, jsonb_agg(jsonb_build_object('code', y.code, 'name', y.name) ORDER BY y.code) AS sites
        FROM (SELECT * FROM covered UNION SELECT * FROM orphan) y GROUP BY y.user_id
    ), msgs AS (
        SELECT p.user_id, NULL::bigint AS channel_id, 'email' AS kind, u.email AS recipient, p.sites
        FROM per_user p JOIN status_checker.app_user u ON u.tenant_id = p_tenant_id AND u.user_id = p.user_id
        UNION ALL
        SELECT NULL, ch.channel_id, 'webhook', status_checker._encrypt(ch.tenant_id, 'recipient', ch.config ->> 'url'),
               (SELECT jsonb_agg(jsonb_build_object('code', x.code, 'name', x.name) ORDER BY x.code) FROM silent x)
        FROM status_checker.channel ch
        WHERE ch.tenant_id = p_tenant_id AND ch.kind = 'webhook' AND ch.enabled
          AND coalesce((ch.config ->> 'broadcast')::boolean, true) AND EXISTS (SELECT 1 FROM silent)
    )
    INSERT INTO status_checker.outbox (tenant_id, request_id, site_id, user_id, channel_id, channel_kind, recipient, purpose, seq, detail)
    SELECT p_tenant_id, p_request_id, NULL, m.user_id, m.channel_id, m.kind, m.recipient, 'escalation', 0,
           jsonb_build_object('sites', m.sites)
    FROM msgs m
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_escalation(bigint, bigint) IS
'Internal: enqueue the escalation of a request to the managers of its silent sites (admins where no group has one)';


-- ---- src/dispatch/claim.sql
-- src/dispatch/claim.sql — the dispatcher's claim: due messages, rendered.
--
-- Since 0.4.0 recipients, contact names, channel secrets and link keys are
-- stored encrypted; the claim decrypts what the messages being sent need
-- (link keys once per tenant, secrets once per channel) and nothing else.
-- Written with CREATE OR REPLACE: one text for the install and the upgrade.

-- One claimed message rendered: text[] {headers, body} (src/dispatch/render.c)
CREATE OR REPLACE FUNCTION status_checker._render_message(
    kind text, format text, purpose text, seq integer, message_id bigint, idempotency_key text,
    subject_tpl text, body_tpl text, base_json text,
    site_id bigint, site_code text, site_name text, group_path text, shindo text, site_shindo text, site_shindo_en text,
    link text, unanswered_sites_json jsonb, unanswered_count text, unanswered_sites text, recipient_name text,
    from_name text, from_addr text, rcpt_addr text, langs text)
    RETURNS text[]
    LANGUAGE c STABLE CALLED ON NULL INPUT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_render_message';
COMMENT ON FUNCTION status_checker._render_message(text, text, text, integer, bigint, text, text, text, text, bigint, text, text, text,
                                                  text, text, text, text, jsonb, text, text, text, text, text, text, text) IS
'Internal (_claim_messages): one message rendered, {headers, body}: the site''s variables filled into the subject and text, '
'then the mail''s header lines and text, or the webhook''s header lines and JSON (ours or Slack''s)';

-- Claim up to p_limit due messages for dispatcher worker p_worker (lease
-- p_lease_ms) and return them rendered, ready to send.  Messages that need
-- not go out any more are settled here (cancelled), and messages whose
-- tenant has no enabled channel of their kind wait.
CREATE OR REPLACE FUNCTION status_checker._claim_messages(p_limit integer, p_lease_ms integer, p_worker integer DEFAULT 0)
    RETURNS TABLE (message_id bigint, tenant_id bigint, attempts integer, channel_id bigint, kind text, url text,
                   mail_from text, rcpt text, headers text, body text, secret text, tls text,
                   username text, password text, ca_file text)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    -- Its plans are made once a session and kept (0.10.0), so they must
    -- not depend on how large the tables looked when they were made (an
    -- outbox that looked empty after a quiet hour, sites not yet analysed):
    -- each statement's joins are written in the order they should run, from
    -- the batch out to its request, site, target, ... (join_collapse_limit
    -- = 1), each by its key (no hash or merge joins), and the outbox is
    -- read through its index of due messages (no sequential scans).  These
    -- are the plans the planner chose anyway for batches of any size.
    SET join_collapse_limit = 1 SET from_collapse_limit = 1
    SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    -- the claimed rows.  Until 0.9.0 a temporary table, truncated at each
    -- commit: its index was rebuilt and every plan of this function made
    -- again at each claim (~4 ms, and the rebuild), see docs/benchmarks.md
    v_batch status_checker.outbox[];
    v_settled bigint[];
BEGIN
    -- claim: the due messages, oldest first, skipping those another
    -- transaction holds; each goes through the channel it names
    -- (broadcast) or the tenant's first enabled channel of its kind
    WITH c AS (
        SELECT o.ctid AS tid FROM status_checker.outbox o
        WHERE o.sent_at IS NULL AND o.next_attempt_at <= pg_catalog.now() AND o.state IN ('queued', 'retrying')
        ORDER BY o.next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), u AS (
        UPDATE status_checker.outbox o
        SET state = 'sending', attempts = o.attempts + 1, claimed_by = p_worker::smallint,
            lease_until = pg_catalog.now() + p_lease_ms * interval '1 millisecond',
            via_channel_id = CASE WHEN o.channel_id IS NOT NULL THEN
                                 (SELECT ch.channel_id FROM status_checker.channel ch
                                  WHERE ch.tenant_id = o.tenant_id AND ch.channel_id = o.channel_id AND ch.enabled)
                             ELSE (SELECT ch.channel_id FROM status_checker.channel ch
                                   WHERE ch.tenant_id = o.tenant_id AND ch.kind = o.channel_kind AND ch.enabled
                                   ORDER BY ch.channel_id LIMIT 1) END
        WHERE o.ctid = ANY (ARRAY(SELECT c.tid FROM c))   -- a TID scan
        RETURNING o
    )
    SELECT pg_catalog.array_agg(u.o) INTO v_batch FROM u;
    IF v_batch IS NULL THEN
        RETURN;
    END IF;

    -- settled without sending: the request is no longer open (its
    -- cancellation notice excepted), or the site answered before its
    -- reminder; and waiting (without spending an attempt, until
    -- add_channel): the tenant has no enabled channel of the kind
    WITH q AS MATERIALIZED (
        -- the batch's requests (a few), each looked up once
        SELECT q.tenant_id, q.request_id, q.state
        FROM (SELECT DISTINCT c.tenant_id, c.request_id FROM unnest(v_batch) c) k
        JOIN status_checker.request q ON q.tenant_id = k.tenant_id AND q.request_id = k.request_id
    ), gone AS (
        SELECT c.tenant_id, c.message_id,
               CASE WHEN q.state <> 'open' THEN format('not sent: the request is %s', q.state)
                    ELSE 'not sent: the site answered before the reminder went out' END AS why
        FROM unnest(v_batch) c
        JOIN q ON q.tenant_id = c.tenant_id AND q.request_id = c.request_id
        WHERE (c.purpose <> 'cancellation' AND q.state <> 'open')
           OR (c.purpose = 'reminder' AND EXISTS (
                   SELECT 1 FROM status_checker.request_target rt
                   WHERE rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
                     AND rt.report_count > 0))
    ), cancelled AS (
        UPDATE status_checker.outbox o SET state = 'cancelled', lease_until = NULL, last_error = g.why, next_attempt_at = 'infinity'
        FROM gone g WHERE o.tenant_id = g.tenant_id AND o.message_id = g.message_id
        RETURNING o.message_id
    ), waiting AS (
        UPDATE status_checker.outbox o
        SET state = 'queued', attempts = o.attempts - 1, lease_until = NULL,
            next_attempt_at = pg_catalog.now() + interval '5 minutes',
            last_error = format('waiting: tenant %s has no enabled %s channel (add_channel)', o.tenant_id, o.channel_kind)
        FROM unnest(v_batch) c
        WHERE c.via_channel_id IS NULL AND o.tenant_id = c.tenant_id AND o.message_id = c.message_id
          AND NOT EXISTS (SELECT 1 FROM gone g WHERE g.message_id = c.message_id)
        RETURNING o.message_id
    )
    SELECT pg_catalog.array_agg(x.message_id) INTO v_settled
    FROM (SELECT message_id FROM cancelled UNION ALL SELECT message_id FROM waiting) x;

    -- The link keys of the tenants concerned are decrypted once (lk,
    -- below).  A link is rendered from the target's token generation and
    -- names its target (_link): a target whose token was never issued gets
    -- the token of generation 1, checked by recomputation when it is first
    -- used (src/requests/tokens.sql), so sending it writes nothing (0.9.0)
    RETURN QUERY
    WITH b AS MATERIALIZED (
        -- the batch, but for what was settled above
        SELECT c.tenant_id, c.message_id, c.request_id, c.site_id, c.contact_id, c.user_id, c.channel_kind,
               c.recipient, c.purpose, c.seq, c.detail, c.attempts, c.via_channel_id AS via
        FROM unnest(v_batch) c
        WHERE v_settled IS NULL OR c.message_id <> ALL (v_settled)
    ), lk AS MATERIALIZED (
        SELECT x.tenant_id, status_checker._link_key(x.tenant_id) AS key FROM (SELECT DISTINCT b.tenant_id FROM b) x
    ), ctx AS MATERIALIZED (
        -- what the messages of one request, purpose and channel share,
        -- rendered once: the templates with the request's variables filled
        -- in (the site's are filled in per message below), the channel's
        -- settings, the mail sender, the JSON common to every webhook
        SELECT k.tenant_id, k.request_id, k.purpose, k.via, ch.kind, ch.config,
               status_checker._decrypt_secrets(ch.tenant_id, ch.secrets) AS secrets,
               coalesce(ch.config ->> 'format', 'json') AS format,
               coalesce(ch.config ->> 'lang', 'ja') AS langs,
               (status_checker._mailbox(ch.config ->> 'from')).name AS from_name,
               (status_checker._mailbox(ch.config ->> 'from')).addr AS from_addr,
               t.subject_tpl, t.body_tpl,
               pg_catalog.current_setting('status_checker.link_base_url', true) AS link_base,
               jsonb_build_object(
                   'version', 1, 'type', k.purpose,
                   'tenant', jsonb_build_object('id', k.tenant_id, 'name', tn.name),
                   'request', jsonb_build_object('id', q.request_id, 'title', q.title, 'deadline', q.deadline,
                                                 'drill', q.drill, 'state', q.state, 'message', q.message,
                                                 'cancel_reason', q.cancel_reason),
                   'event', CASE WHEN e.event_id IS NOT NULL THEN jsonb_build_object(
                                 'id', e.event_id, 'source', e.source, 'summary', ev.title,
                                 'max_shindo', e.max_shindo::text, 'origin_time', e.origin_time) END)::text AS base_json
        FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.purpose, c.via FROM b c) k
        JOIN status_checker.channel ch ON ch.tenant_id = k.tenant_id AND ch.channel_id = k.via
        JOIN status_checker.request q ON q.tenant_id = k.tenant_id AND q.request_id = k.request_id
        JOIN status_checker.tenant tn ON tn.tenant_id = k.tenant_id
        LEFT JOIN status_checker.event e ON e.event_id = q.event_id
        CROSS JOIN LATERAL (SELECT CASE WHEN e.event_id IS NOT NULL THEN status_checker._event_title(e) END AS title) ev
        CROSS JOIN LATERAL (SELECT coalesce(ch.config ->> 'timezone', 'Asia/Tokyo') AS tz) z
        CROSS JOIN LATERAL (
            SELECT (array_agg(f.subject ORDER BY l.i))[1] AS subject_tpl,
                   string_agg(f.body, E'\n\n──────── English ────────\n\n' ORDER BY l.i) AS body_tpl
            FROM unnest(CASE coalesce(ch.config ->> 'lang', 'ja') WHEN 'ja+en' THEN ARRAY['ja', 'en']
                        ELSE ARRAY[coalesce(ch.config ->> 'lang', 'ja')] END) WITH ORDINALITY l(lang, i)
            JOIN status_checker.default_template dt ON dt.purpose = k.purpose AND dt.lang = l.lang
            LEFT JOIN status_checker.message_template mt
                   ON mt.tenant_id = k.tenant_id AND mt.purpose = dt.purpose AND mt.lang = dt.lang
            CROSS JOIN LATERAL (SELECT ARRAY[
                'request_title', q.title, 'event_summary', coalesce(ev.title, ''),
                'deadline', CASE WHEN l.lang = 'ja' THEN to_char(q.deadline AT TIME ZONE z.tz, 'FMMM月FMDD日 HH24:MI')
                                 ELSE to_char(q.deadline AT TIME ZONE z.tz, 'YYYY-MM-DD HH24:MI') END
                            || CASE WHEN z.tz = 'Asia/Tokyo' THEN ' (JST)' ELSE ' (' || z.tz || ')' END,
                'message', coalesce(q.message, ''), 'tenant_name', tn.name,
                'cancel_reason', coalesce(q.cancel_reason, ''),
                -- the site's intensity is worded per language: the English part asks for its own variable
                'site_shindo', CASE WHEN l.lang = 'ja' THEN '{{site_shindo}}' ELSE '{{site_shindo_en}}' END] AS v) rv
            CROSS JOIN LATERAL (SELECT
                CASE WHEN q.drill AND coalesce(mt.subject, dt.subject) NOT LIKE '%訓練%' THEN
                     CASE l.lang WHEN 'ja' THEN '【訓練】' ELSE '[DRILL] ' END ELSE '' END
                    || status_checker._fill(coalesce(mt.subject, dt.subject), VARIADIC rv.v) AS subject,
                status_checker._fill(coalesce(mt.body, dt.body), VARIADIC rv.v) AS body) f
        ) t
    ), m AS (
        SELECT c.message_id, c.tenant_id, c.attempts, c.via, c.channel_kind,
               -- a contact's or user's address is encrypted; a broadcast channel's URL is configuration
               CASE WHEN c.recipient LIKE 'sc1:%' THEN status_checker._decrypt(c.tenant_id, 'recipient', c.recipient)
                    ELSE c.recipient END AS recipient,
               c.purpose, c.seq, c.detail,
               c.site_id, x.kind, x.config, x.secrets, x.format, x.langs, x.from_name, x.from_addr,
               x.subject_tpl, x.body_tpl, x.base_json, s.code AS site_code, s.name AS site_name,
               'sc1-' || c.tenant_id || '-' || c.message_id AS idem,
               CASE WHEN rt.site_id IS NOT NULL AND c.purpose IN ('request', 'reminder') THEN
                   x.link_base || status_checker._link(lk.key, c.tenant_id, c.request_id, c.site_id,
                                                       greatest(rt.token_gen, 1)) END AS link,
               rt.asked_shindo, g.path AS group_path,
               coalesce(status_checker._decrypt(sc.tenant_id, 'contact_name', sc.name), au.login) AS recipient_name
        FROM b c
        JOIN ctx x ON x.tenant_id = c.tenant_id AND x.request_id = c.request_id AND x.purpose = c.purpose AND x.via = c.via
        LEFT JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        LEFT JOIN status_checker.request_target rt
               ON rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
        LEFT JOIN lk ON lk.tenant_id = c.tenant_id
        LEFT JOIN status_checker.site_contact sc ON sc.tenant_id = c.tenant_id AND sc.contact_id = c.contact_id
        LEFT JOIN status_checker.app_user au ON au.tenant_id = c.tenant_id AND au.user_id = c.user_id
    ), r AS MATERIALIZED (
        -- each message rendered once, in C (src/dispatch/render.c): the
        -- site's variables, then the mail's headers or the webhook's body
        SELECT m.message_id, m.tenant_id, m.attempts, m.via, m.channel_kind, m.recipient, m.config, m.secrets,
               m.from_addr, x.rcpt_addr,
               status_checker._render_message(
                   m.channel_kind, m.format, m.purpose, m.seq, m.message_id, m.idem,
                   m.subject_tpl, m.body_tpl, m.base_json,
                   m.site_id, m.site_code, m.site_name, m.group_path, m.asked_shindo::text,
                   -- the site's intensity is worded per language: the English part asks for its own variable
                   CASE WHEN m.asked_shindo IS NOT NULL THEN 'この拠点の震度: ' || status_checker.shindo_label(m.asked_shindo, 'ja') END,
                   CASE WHEN m.asked_shindo IS NOT NULL THEN 'Seismic intensity at this site: ' || status_checker.shindo_label(m.asked_shindo, 'en') END,
                   m.link, m.detail -> 'sites',
                   CASE WHEN m.detail IS NULL THEN '0' ELSE jsonb_array_length(m.detail -> 'sites')::text END,
                   CASE WHEN m.detail IS NULL THEN '' ELSE
                       (SELECT string_agg('・' || (y ->> 'code') || ' ' || (y ->> 'name'), E'\n') FROM jsonb_array_elements(m.detail -> 'sites') y) END,
                   m.recipient_name, m.from_name, m.from_addr, x.rcpt_addr, m.langs) AS hb
        FROM m
        CROSS JOIN LATERAL (SELECT CASE WHEN m.channel_kind = 'email' THEN
                                coalesce((status_checker._mailbox(m.recipient)).addr, m.recipient) END AS rcpt_addr) x
    )
    SELECT r.message_id, r.tenant_id, r.attempts, r.via, r.channel_kind,
           CASE WHEN r.channel_kind = 'email' THEN r.config ->> 'url' ELSE r.recipient END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || r.from_addr || '>' END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || r.rcpt_addr || '>' END,
           r.hb[1], r.hb[2],
           r.secrets ->> 'secret',
           CASE WHEN r.channel_kind = 'email' THEN coalesce(r.config ->> 'starttls', 'require') END,
           r.config ->> 'username', r.secrets ->> 'password', r.config ->> 'ca_file'
    FROM r
    ORDER BY r.message_id;
END
$$;
COMMENT ON FUNCTION status_checker._claim_messages(integer, integer, integer) IS
'Internal (dispatcher worker p_worker): claim due messages with FOR UPDATE SKIP LOCKED and a lease, and return them rendered '
'(mail headers and text, or webhook JSON) with their channel''s settings';

-- ---- src/dispatch/workers.sql
-- src/dispatch/workers.sql — the dispatcher workers (0.8.0): several
-- processes claim from the one outbox (FOR UPDATE SKIP LOCKED), each
-- holding the messages it claimed (outbox.claimed_by).  Written with
-- CREATE OR REPLACE: one text for the install and the upgrade.

-- dispatcher_status(), their summary: src/dispatch/outbox.sql

CREATE OR REPLACE FUNCTION status_checker.dispatcher_workers(
    OUT worker integer, OUT running boolean, OUT pid integer, OUT started_at timestamptz, OUT heartbeat timestamptz,
    OUT in_flight bigint, OUT waiting bigint, OUT sent bigint, OUT retried bigint, OUT dead bigint)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'sc_dispatcher_workers';
COMMENT ON FUNCTION status_checker.dispatcher_workers() IS
'Each dispatcher worker (status_checker.dispatch_workers of them, numbered from 0): running, pid, start, last heartbeat, '
'transfers in flight, claimed messages waiting for the rate limit, outcomes since the server started; no row without '
'shared_preload_libraries';
GRANT EXECUTE ON FUNCTION status_checker.dispatcher_workers() TO status_checker_api, status_checker_operator;

-- On start, a worker makes the messages it left 'sending' (it stopped or
-- crashed before recording their outcome) due again; their receivers may
-- see them twice, with the same idempotency key.  Messages another running
-- worker holds are left alone, except when their lease has run out.
-- Worker 0 also takes back what no running worker can own: messages
-- claimed before 0.8.0 (no worker recorded) and those of workers beyond
-- p_workers (after status_checker.dispatch_workers was lowered).
CREATE OR REPLACE FUNCTION status_checker._dispatcher_startup(p_worker integer, p_workers integer) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF p_worker < 0 OR p_worker >= p_workers THEN
        RAISE EXCEPTION 'dispatcher worker % does not exist (there are %)', p_worker, p_workers
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.outbox o
    SET state = 'retrying', lease_until = NULL, next_attempt_at = pg_catalog.now(),
        last_error = 'interrupted: the dispatcher stopped before the outcome was recorded'
    WHERE o.state = 'sending'
      AND (o.claimed_by = p_worker
           OR o.lease_until < pg_catalog.now()
           OR (p_worker = 0 AND (o.claimed_by IS NULL OR o.claimed_by >= p_workers)));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._dispatcher_startup(integer, integer) IS
'Internal: called by dispatcher worker p_worker (of p_workers) when it starts: the messages it left sending, and those whose '
'lease ran out, become due again (at-least-once delivery)';

-- ---- src/security/gateway.sql
-- src/security/gateway.sql — a gateway acts for an application user.
-- Written with CREATE OR REPLACE: an upgrade script can replay the same text.
--
-- set_app_user is written in C (src/security/tenancy.c) and runs with the
-- caller's privileges: it checks that the session's login is a gateway,
-- looks the user up and sets the context, all in one function.  Until
-- 0.10.1 it was a SECURITY DEFINER function calling a helper,
-- _set_context, that anything running as status_checker_api could call too:
-- code a tenant's manager planted (a trigger on a temporary table that a
-- SECURITY DEFINER function reused) switched the session to another tenant.
-- No SQL function sets a context for another function any more.

CREATE OR REPLACE FUNCTION status_checker.set_app_user(tenant_id bigint, login text)
    RETURNS text
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_set_app_user';
COMMENT ON FUNCTION status_checker.set_app_user(bigint, text) IS
'For gateways: act for this application user until the end of the transaction; returns the group role to SET LOCAL ROLE to '
'(the context holds only under exactly that role)';
GRANT EXECUTE ON FUNCTION status_checker.set_app_user(bigint, text) TO status_checker_api, status_checker_gateway;

-- ---- src/security/signing.sql
-- src/security/signing.sql — the installation's signing key (Ed25519).
--
-- Deletion certificates, audit checkpoints and exported audit chain heads
-- are signed with a key of the installation, so that a customer can check
-- them with the public key alone — in SQL, or outside the database with
-- OpenSSL (docs/security.md).  The key is made on first use; a rotated-out
-- key stays, retired, so that what it signed still verifies.  Only the
-- extension's owner can read this table.

CREATE TABLE status_checker.signing_key (
    key_id       text PRIMARY KEY,             -- first 16 bytes of SHA-256(public key), hex
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    private_key  bytea,                    -- wrapped by the master key (src/security/encryption.sql); NULL once retired
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at   timestamptz
);
CREATE UNIQUE INDEX signing_key_one_current ON status_checker.signing_key ((true)) WHERE retired_at IS NULL;
COMMENT ON TABLE status_checker.signing_key IS
'The installation''s Ed25519 keys for certificates and checkpoints: one current, older ones kept (retired) so that what they signed still verifies';
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker._ed25519_keygen(OUT private_key bytea, OUT public_key bytea)
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_keygen';
CREATE FUNCTION status_checker._ed25519_sign(private_key bytea, message bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_sign';
CREATE FUNCTION status_checker._ed25519_verify(public_key bytea, message bytea, signature bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_verify';
CREATE FUNCTION status_checker._ed25519_public_pem(public_key bytea) RETURNS text
    LANGUAGE c IMMUTABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_public_pem';
GRANT EXECUTE ON FUNCTION status_checker._ed25519_public_pem(bytea) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- A time as certificates and exported heads show it: ISO 8601 in UTC.
CREATE FUNCTION status_checker._utc_text(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The current key, made on first use.
CREATE FUNCTION status_checker._current_signing_key() RETURNS status_checker.signing_key
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k status_checker.signing_key;
BEGIN
    SELECT * INTO k FROM status_checker.signing_key WHERE retired_at IS NULL;
    IF NOT FOUND THEN
        INSERT INTO status_checker.signing_key (key_id, public_key, private_key)
        SELECT encode(substr(sha256(g.public_key), 1, 16), 'hex'), g.public_key, g.private_key
        FROM status_checker._ed25519_keygen() g
        ON CONFLICT DO NOTHING;
        SELECT * INTO STRICT k FROM status_checker.signing_key WHERE retired_at IS NULL;
    END IF;
    RETURN k;
END
$$;

-- Sign a text (its UTF-8 bytes): the key id and the base64 signature.
CREATE FUNCTION status_checker._sign(message text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k status_checker.signing_key := status_checker._current_signing_key();
BEGIN
    RETURN jsonb_build_object(
        'algorithm', 'Ed25519',
        'key_id', k.key_id,
        'signature', translate(encode(status_checker._ed25519_sign(
                         status_checker._master_unwrap(k.private_key, 'status_checker signing key|' || k.key_id),
                         convert_to(message, 'UTF8')), 'base64'), E'\n', ''));
END
$$;

-- Does signature (base64) by key key_id verify over message?  False for an
-- unknown key or a malformed signature.
CREATE FUNCTION status_checker._signature_ok(key_id text, message text, signature text) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pub bytea;
    sig bytea;
BEGIN
    SELECT k.public_key INTO pub FROM status_checker.signing_key k WHERE k.key_id = _signature_ok.key_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    BEGIN
        sig := decode(signature, 'base64');
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN false;
    END;
    RETURN status_checker._ed25519_verify(pub, convert_to(message, 'UTF8'), sig);
END
$$;

CREATE FUNCTION status_checker.installation_public_key(key_id text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pub bytea;
BEGIN
    IF installation_public_key.key_id IS NULL THEN
        pub := (status_checker._current_signing_key()).public_key;
    ELSE
        SELECT k.public_key INTO pub FROM status_checker.signing_key k WHERE k.key_id = installation_public_key.key_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'signing key % does not exist', quote_literal(installation_public_key.key_id)
                USING ERRCODE = 'no_data_found',
                      HINT = 'SELECT key_id, created_at, retired_at FROM status_checker.signing_keys lists the keys.';
        END IF;
    END IF;
    RETURN status_checker._ed25519_public_pem(pub);
END
$$;
COMMENT ON FUNCTION status_checker.installation_public_key(text) IS
'The public key (PEM) that checks this installation''s deletion certificates, audit checkpoints and chain heads — the current key, or the one named';
GRANT EXECUTE ON FUNCTION status_checker.installation_public_key(text) TO status_checker_api, status_checker_viewer, status_checker_gateway, status_checker_operator;

CREATE FUNCTION status_checker.rotate_signing_key() RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- serialise with concurrent first use
    LOCK TABLE status_checker.signing_key IN SHARE ROW EXCLUSIVE MODE;
    UPDATE status_checker.signing_key SET retired_at = pg_catalog.now(), private_key = NULL WHERE retired_at IS NULL;
    RETURN (status_checker._current_signing_key()).key_id;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_signing_key() IS
'Make a new installation signing key and destroy the old private key (its public key stays, so what it signed still verifies); returns the new key id';
GRANT EXECUTE ON FUNCTION status_checker.rotate_signing_key() TO status_checker_api, status_checker_operator;

CREATE VIEW status_checker.signing_keys WITH (security_invoker = true) AS
SELECT key_id, status_checker._ed25519_public_pem(public_key) AS public_key_pem, created_at, retired_at
FROM status_checker.signing_key;
COMMENT ON VIEW status_checker.signing_keys IS
'The installation''s signing keys (public halves only): the current one and the retired ones';
GRANT SELECT ON status_checker.signing_keys TO status_checker_viewer, status_checker_operator;

-- ---- src/security/audit_record.sql
-- src/security/audit_record.sql — what writes the audit log's records of
-- changes.  Written with CREATE OR REPLACE: an upgrade script can replay the same text.

-- Whether this session restores a dump: row_security is off (pg_dump's
-- scripts and pg_restore set it) and the session's login may bypass
-- row-level security at all (a superuser or a role with BYPASSRLS), which a
-- restore of these tables needs.  A restore's rows are not changes.  Until
-- 0.10.1 row_security = off alone was enough, and it is a setting any caller
-- can make: a gateway that set it before web_login (which runs as the
-- extension's owner) kept its failed sign-ins out of the audit log.
CREATE OR REPLACE FUNCTION status_checker._restoring() RETURNS boolean
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.current_setting('row_security') = 'off'
       AND coalesce((SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname = session_user), false);
COMMENT ON FUNCTION status_checker._restoring() IS
'Internal: whether the session restores a dump (row_security off, and a login that may bypass row-level security); its rows are not audited';

-- The statement-level trigger of every audited table, with transition
-- tables: one INSERT into the log per statement, however many rows it
-- touched (import_sites).  Trigger arguments: the table's key columns.  A
-- restore's rows (see _restoring) are not recorded: the restored log
-- already holds their history.
CREATE OR REPLACE FUNCTION status_checker._audit_changes() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    -- the key as a jsonb object, built from the columns themselves (cheaper
    -- than converting whole rows: an import writes a record per site)
    key_n text := (SELECT format('jsonb_build_object(%s)', string_agg(format('%L, n.%I', k, k), ', '))
                   FROM unnest(TG_ARGV) k);
    key_o text := (SELECT format('jsonb_build_object(%s)', string_agg(format('%L, o.%I', k, k), ', '))
                   FROM unnest(TG_ARGV) k);
    rows_of text := CASE TG_OP WHEN 'DELETE' THEN 'old_rows' ELSE 'new_rows' END;
BEGIN
    IF current_setting('row_security') = 'off' AND status_checker._restoring() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('INSERT', 'DELETE') THEN
        EXECUTE format('INSERT INTO status_checker.audit_log (tenant_id, actor, app_user, action, object, detail) '
                       'SELECT n.tenant_id, $1, $2, $3, $4, jsonb_build_object(''key'', %s) FROM %s n',
                       key_n, rows_of)
        USING session_user::text, status_checker._app_login(),
              lower(TG_OP), TG_TABLE_NAME::text;
    ELSE
        EXECUTE format('INSERT INTO status_checker.audit_log (tenant_id, actor, app_user, action, object, detail) '
                       'SELECT n.tenant_id, $1, $2, ''update'', $3, jsonb_build_object(''key'', %1$s, ''changed'', '
                       '       (SELECT jsonb_agg(e.key ORDER BY e.key) FROM jsonb_each(to_jsonb(n)) e '
                       '         WHERE e.value IS DISTINCT FROM to_jsonb(o) -> e.key)) '
                       'FROM new_rows n LEFT JOIN old_rows o ON %2$s = %1$s '
                       'WHERE to_jsonb(o) IS DISTINCT FROM to_jsonb(n)',
                       key_n, key_o)
        USING session_user::text, status_checker._app_login(), TG_TABLE_NAME::text;
    END IF;
    RETURN NULL;
END
$$;

-- ---- src/security/audit.sql
-- src/security/audit.sql — the tamper-evident audit log.
--
-- What is recorded:
--   * every administrative change: a row inserted, updated or deleted in a
--     tenant's configuration tables (tenant, users, groups, sites, contacts,
--     forms, requests, rules, channels, templates, managers, link keys,
--     revoked tokens), by statement-level triggers into audit_log — who
--     (database user, and the application user the session acts for:
--     set_app_user or a mapped login), when, which table, the row's key and the
--     names of the columns that changed.  Values are not copied: the log
--     must not become a second, unencrypted copy of personal data;
--   * every report: the report table is append-only and is itself the
--     record.
--
-- How it is chained: seal_audit_log() (pg_cron, every minute; also called
-- by audit_chain_head) appends new records to one hash chain per tenant,
-- audit_chain: entry n holds the SHA-256 of the record's canonical content
-- and chain_hash(n) = SHA-256(chain_hash(n-1) || entry_hash(n)), starting
-- from a per-tenant genesis hash.  Sealing afterwards, rather than in the
-- writer's transaction, keeps the report path free of a per-tenant hot
-- row: in a disaster thousands of reports a second would otherwise queue
-- on one chain head.  Records are found by id past a mark; ids that were
-- not yet visible (a transaction still running) are kept as gaps and
-- sealed when they appear, or forgotten an hour after no transaction can
-- still commit them (aborted).
--
-- verify_audit_log(tenant) recomputes every entry from its record and
-- every link, checks the head, and names the first broken entry;
-- audit_chain_head(tenant) exports the head, signed with the installation
-- key, for the customer to keep outside the database and to check later
-- with verify_audit_log(tenant, head).  prune_audit_log() drops entries
-- older than a year behind a signed checkpoint, from which verification
-- starts.

CREATE TABLE status_checker.audit_log (
    tenant_id   bigint NOT NULL,        -- no foreign key: the log outlives the rows it describes
    audit_id    bigint GENERATED ALWAYS AS IDENTITY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    actor       text NOT NULL,          -- database user (session user)
    app_user    text,                   -- application user named by a gateway, if any
    action      text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    object      text NOT NULL,          -- table name
    detail      jsonb NOT NULL,         -- {"key": {...}} and, for updates, {"changed": [columns]}
    PRIMARY KEY (tenant_id, audit_id)
);
-- ids grow with time: a BRIN index lets the sealer find new records at
-- almost no cost per insert
CREATE INDEX audit_log_id_brin ON status_checker.audit_log USING brin (audit_id);
COMMENT ON TABLE status_checker.audit_log IS
'Every administrative change of a tenant''s configuration: who, when, which table and row, which columns; chained by seal_audit_log';
ALTER TABLE status_checker.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_log
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_log TO status_checker_admin, status_checker_operator;

-- the same for reports (the report table is the record of reports)
CREATE INDEX report_id_brin ON status_checker.report USING brin (report_id);

CREATE TABLE status_checker.audit_chain (
    tenant_id   bigint NOT NULL,
    entry_no    bigint NOT NULL,
    source      text NOT NULL CHECK (source IN ('change', 'report')),
    source_id   bigint NOT NULL,        -- audit_log.audit_id or report.report_id
    entry_hash  bytea NOT NULL,
    chain_hash  bytea NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, entry_no),
    UNIQUE (tenant_id, source, source_id)
);
COMMENT ON TABLE status_checker.audit_chain IS
'Per tenant, the hash chain over its audit records and reports: entry n''s chain_hash = SHA-256(chain_hash of n-1 || entry_hash)';
ALTER TABLE status_checker.audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_chain
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_chain TO status_checker_admin, status_checker_operator;

CREATE TABLE status_checker.audit_head (
    tenant_id   bigint PRIMARY KEY,
    entry_no    bigint NOT NULL,
    chain_hash  bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.audit_head IS
'Per tenant, the last entry of its audit chain (a shortened chain no longer matches it)';
ALTER TABLE status_checker.audit_head ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_head FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_head
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_head TO status_checker_admin, status_checker_operator;

CREATE TABLE status_checker.audit_sealer (
    source      text PRIMARY KEY CHECK (source IN ('change', 'report')),
    mark        bigint NOT NULL DEFAULT 0,   -- every id up to here is chained, or listed in audit_gap
    sealed_at   timestamptz
);
COMMENT ON TABLE status_checker.audit_sealer IS
'Where seal_audit_log has got to in each kind of record (its row locks also keep two sealers apart)';

CREATE TABLE status_checker.audit_gap (
    source      text NOT NULL CHECK (source IN ('change', 'report')),
    id          bigint NOT NULL,
    noted_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    noted_xid   xid8 NOT NULL,
    PRIMARY KEY (source, id)
);
COMMENT ON TABLE status_checker.audit_gap IS
'Record ids below the sealer''s mark not yet seen (their transaction was still running, or aborted): sealed when they appear';

CREATE TABLE status_checker.audit_checkpoint (
    tenant_id   bigint NOT NULL,
    entry_no    bigint NOT NULL,
    chain_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    report_max  bigint,                 -- the highest report id among the removed entries
    key_id      text NOT NULL,
    signature   text NOT NULL,          -- Ed25519 over _audit_checkpoint_text(...)
    PRIMARY KEY (tenant_id, entry_no)
);
COMMENT ON TABLE status_checker.audit_checkpoint IS
'Signed checkpoints left by prune_audit_log: the chain up to entry_no was removed by retention and ended in chain_hash';
ALTER TABLE status_checker.audit_checkpoint ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_checkpoint FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_checkpoint
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_checkpoint TO status_checker_admin, status_checker_operator;

-- ------------------------------------------------------------ recording

-- Statement-level triggers with transition tables: one INSERT into the log
-- per statement, however many rows it touched (import_sites).  The trigger
-- function, _audit_changes, is in src/security/audit_record.sql.

DO $$
DECLARE
    t record;
    op text;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('tenant', ARRAY['tenant_id']),
        ('app_user', ARRAY['tenant_id', 'user_id']),
        ('site_group', ARRAY['tenant_id', 'group_id']),
        ('site', ARRAY['tenant_id', 'site_id']),
        ('site_contact', ARRAY['tenant_id', 'contact_id']),
        ('form', ARRAY['tenant_id', 'form_id']),
        ('request', ARRAY['tenant_id', 'request_id']),
        ('request_token_revoked', ARRAY['tenant_id', 'request_id', 'site_id']),
        ('trigger_rule', ARRAY['tenant_id', 'rule_id']),
        ('channel', ARRAY['tenant_id', 'channel_id']),
        ('message_template', ARRAY['tenant_id', 'purpose', 'lang']),
        ('site_group_manager', ARRAY['tenant_id', 'group_id', 'user_id']),
        ('link_key', ARRAY['tenant_id'])) v(tab, keys)
    LOOP
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format('CREATE TRIGGER audit_%2$s AFTER %3$s ON status_checker.%1$I '
                           'REFERENCING %4$s FOR EACH STATEMENT '
                           'EXECUTE FUNCTION status_checker._audit_changes(%5$s)',
                           t.tab, op, upper(op),
                           CASE op WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                                   WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                                   ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END,
                           (SELECT string_agg(quote_literal(k), ', ') FROM unnest(t.keys) k));
        END LOOP;
    END LOOP;
END
$$;

-- ------------------------------------------------------------ hashing

-- The canonical content of a record is a JSON array (jsonb's text form is
-- deterministic); times are epoch seconds, independent of TimeZone and
-- DateStyle.  Documented in docs/security.md so that anyone can recompute it.
CREATE FUNCTION status_checker._change_entry_hash(a status_checker.audit_log) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        'change', a.tenant_id, a.audit_id, extract(epoch FROM a.at), a.actor, a.app_user,
        a.action, a.object, a.detail)::text, 'UTF8'))
$$;

CREATE FUNCTION status_checker._report_entry_hash(r status_checker.report) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        'report', r.tenant_id, r.report_id, r.request_id, r.site_id, r.level, r.previous_level,
        r.color, r.icon, r.late, r.via, r.submitted_by, extract(epoch FROM r.submitted_at), r.answers)::text, 'UTF8'))
$$;

CREATE FUNCTION status_checker._audit_genesis(tenant_id bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to('status_checker audit chain v1 tenant ' || tenant_id, 'UTF8'))
$$;

CREATE FUNCTION status_checker._chain_step(state bytea, seed bytea, entry_hash bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_chain_step';
-- _chain(seed, entry_hash) OVER (ORDER BY entry_no): the running chain hash
CREATE AGGREGATE status_checker._chain(seed bytea, entry_hash bytea) (
    SFUNC = status_checker._chain_step,
    STYPE = bytea
);

-- ------------------------------------------------------------ sealing

-- the records of one kind past the mark (at most lim), and those listed as gaps
CREATE FUNCTION status_checker._audit_candidates(p_source text, p_mark bigint, p_lim integer)
    RETURNS TABLE (tenant_id bigint, id bigint, entry_hash bytea, past_mark boolean)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_source = 'change' THEN
        RETURN QUERY
        (SELECT a.tenant_id, a.audit_id, status_checker._change_entry_hash(a), true
         FROM status_checker.audit_log a WHERE a.audit_id > p_mark ORDER BY a.audit_id LIMIT p_lim)
        UNION ALL
        SELECT a.tenant_id, a.audit_id, status_checker._change_entry_hash(a), false
        FROM status_checker.audit_log a
        WHERE a.audit_id = ANY (ARRAY(SELECT g.id FROM status_checker.audit_gap g WHERE g.source = 'change'));
    ELSE
        RETURN QUERY
        (SELECT r.tenant_id, r.report_id, status_checker._report_entry_hash(r), true
         FROM status_checker.report r WHERE r.report_id > p_mark ORDER BY r.report_id LIMIT p_lim)
        UNION ALL
        SELECT r.tenant_id, r.report_id, status_checker._report_entry_hash(r), false
        FROM status_checker.report r
        WHERE r.report_id = ANY (ARRAY(SELECT g.id FROM status_checker.audit_gap g WHERE g.source = 'report'));
    END IF;
END
$$;

CREATE FUNCTION status_checker.seal_audit_log(max_entries integer DEFAULT 100000)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text;
    v_mark bigint;
    n bigint;
    total bigint := 0;
BEGIN
    PERFORM status_checker._no_nulls('seal_audit_log', ARRAY['max_entries'], ARRAY[seal_audit_log.max_entries::text]);
    IF max_entries < 1 THEN
        RAISE EXCEPTION 'max_entries must be a positive number, not %', max_entries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO status_checker.audit_sealer (source) VALUES ('change'), ('report') ON CONFLICT DO NOTHING;
    -- one sealer at a time (pg_cron and audit_chain_head may overlap)
    PERFORM 1 FROM status_checker.audit_sealer FOR UPDATE;
    -- gaps no transaction can still fill (it aborted): forget them
    DELETE FROM status_checker.audit_gap g
    WHERE g.noted_at < pg_catalog.now() - interval '1 hour'
      AND g.noted_xid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
    FOR src IN SELECT s.source FROM status_checker.audit_sealer s ORDER BY s.source LOOP
        SELECT s.mark INTO v_mark FROM status_checker.audit_sealer s WHERE s.source = src;
        -- one statement, so that the records chained, the new gaps and the
        -- new mark all come from one snapshot
        WITH c AS MATERIALIZED (
            SELECT * FROM status_checker._audit_candidates(src, v_mark, max_entries)
        ), numbered AS (
            SELECT c.tenant_id, c.id, c.entry_hash,
                   coalesce(h.entry_no, 0) + row_number() OVER w AS entry_no,
                   status_checker._chain(coalesce(h.chain_hash, status_checker._audit_genesis(c.tenant_id)), c.entry_hash) OVER w AS chain_hash
            FROM c LEFT JOIN status_checker.audit_head h ON h.tenant_id = c.tenant_id
            WINDOW w AS (PARTITION BY c.tenant_id ORDER BY c.id)
        ), ins AS (
            INSERT INTO status_checker.audit_chain (tenant_id, entry_no, source, source_id, entry_hash, chain_hash)
            SELECT x.tenant_id, x.entry_no, src, x.id, x.entry_hash, x.chain_hash FROM numbered x
            RETURNING audit_chain.tenant_id, audit_chain.entry_no, audit_chain.chain_hash
        ), head AS (
            INSERT INTO status_checker.audit_head AS h (tenant_id, entry_no, chain_hash)
            SELECT DISTINCT ON (i.tenant_id) i.tenant_id, i.entry_no, i.chain_hash FROM ins i
            ORDER BY i.tenant_id, i.entry_no DESC
            ON CONFLICT (tenant_id) DO UPDATE
            SET entry_no = excluded.entry_no, chain_hash = excluded.chain_hash, updated_at = pg_catalog.now()
        ), newmark AS (
            SELECT max(c.id) AS m FROM c WHERE c.past_mark
        ), gaps_new AS (
            INSERT INTO status_checker.audit_gap (source, id, noted_xid)
            SELECT src, g, pg_catalog.pg_current_xact_id()
            FROM newmark, generate_series(v_mark + 1, newmark.m - 1) g
            WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.id = g)
        ), gaps_done AS (
            DELETE FROM status_checker.audit_gap x USING c
            WHERE x.source = src AND x.id = c.id AND NOT c.past_mark
        ), moved AS (
            UPDATE status_checker.audit_sealer s
            SET mark = coalesce(newmark.m, s.mark), sealed_at = pg_catalog.now()
            FROM newmark WHERE s.source = src
        )
        SELECT count(*) INTO n FROM ins;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION status_checker.seal_audit_log(integer) IS
'Append the audit records and reports not yet chained to their tenants'' hash chains (at most max_entries of each kind per call); '
'run every minute by schedule_jobs. Returns the number of entries chained';
GRANT EXECUTE ON FUNCTION status_checker.seal_audit_log(integer) TO status_checker_api, status_checker_operator;

-- ------------------------------------------------------------ exporting and checking

CREATE FUNCTION status_checker._audit_head_text(tenant_id bigint, entry_no bigint, chain_hash bytea, at timestamptz)
    RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT format('status_checker audit head v1|tenant=%s|entry=%s|hash=%s|at=%s',
                  tenant_id, entry_no, encode(chain_hash, 'hex'), extract(epoch FROM at))
$$;

CREATE FUNCTION status_checker._audit_checkpoint_text(cp status_checker.audit_checkpoint)
    RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT format('status_checker audit checkpoint v1|tenant=%s|entry=%s|hash=%s|report_max=%s',
                  cp.tenant_id, cp.entry_no, encode(cp.chain_hash, 'hex'), coalesce(cp.report_max, 0))
$$;

CREATE FUNCTION status_checker.audit_chain_head(tenant_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h status_checker.audit_head;
    v_at timestamptz := pg_catalog.now();
    msg text;
BEGIN
    PERFORM status_checker._no_nulls('audit_chain_head', ARRAY['tenant_id'], ARRAY[audit_chain_head.tenant_id::text]);
    PERFORM status_checker._require_tenant(audit_chain_head.tenant_id);
    PERFORM status_checker.seal_audit_log();
    SELECT * INTO h FROM status_checker.audit_head x WHERE x.tenant_id = audit_chain_head.tenant_id;
    IF NOT FOUND THEN
        h := ROW(audit_chain_head.tenant_id, 0, status_checker._audit_genesis(audit_chain_head.tenant_id), v_at);
    END IF;
    msg := status_checker._audit_head_text(h.tenant_id, h.entry_no, h.chain_hash, v_at);
    RETURN jsonb_build_object('tenant_id', h.tenant_id, 'entry', h.entry_no,
                              'hash', encode(h.chain_hash, 'hex'), 'at', extract(epoch FROM v_at),
                              'at_text', status_checker._utc_text(v_at),
                              'signed', msg)
           || status_checker._sign(msg);
END
$$;
COMMENT ON FUNCTION status_checker.audit_chain_head(bigint) IS
'Seal what is pending and return the tenant''s audit chain head (last entry number and hash), signed with the installation key: '
'keep it outside the database and check later with verify_audit_log(tenant_id, head)';
GRANT EXECUTE ON FUNCTION status_checker.audit_chain_head(bigint) TO status_checker_api, status_checker_admin, status_checker_operator;

-- Every problem of a tenant's chain, by entry number (NULL: a record that
-- is not in the chain at all).
CREATE FUNCTION status_checker._audit_problems(p_tenant bigint)
    RETURNS TABLE (entry_no bigint, reason text, entries bigint)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cp status_checker.audit_checkpoint;
    base_no bigint := 0;
    base_hash bytea := status_checker._audit_genesis(p_tenant);
    h status_checker.audit_head;
    last_no bigint;
    last_hash bytea;
    n bigint;
BEGIN
    SELECT * INTO cp FROM status_checker.audit_checkpoint c WHERE c.tenant_id = p_tenant ORDER BY c.entry_no DESC LIMIT 1;
    IF FOUND THEN
        base_no := cp.entry_no;
        base_hash := cp.chain_hash;
        IF NOT status_checker._signature_ok(cp.key_id, status_checker._audit_checkpoint_text(cp), cp.signature) THEN
            RETURN QUERY SELECT cp.entry_no, format('the checkpoint at entry %s does not carry a valid signature of this installation', cp.entry_no), 0::bigint;
        END IF;
    END IF;

    SELECT count(*), max(c.entry_no) INTO n, last_no FROM status_checker.audit_chain c
    WHERE c.tenant_id = p_tenant AND c.entry_no > base_no;

    RETURN QUERY
    WITH c AS (
        SELECT c.*, base_no + row_number() OVER (ORDER BY c.entry_no) AS expected,
               status_checker._chain(base_hash, c.entry_hash) OVER (ORDER BY c.entry_no) AS recomputed
        FROM status_checker.audit_chain c WHERE c.tenant_id = p_tenant AND c.entry_no > base_no
    ), checked AS (
        SELECT c.entry_no, c.expected, c.source, c.source_id, c.chain_hash, c.recomputed, c.entry_hash,
               CASE c.source
                   WHEN 'change' THEN (SELECT status_checker._change_entry_hash(a) FROM status_checker.audit_log a
                                       WHERE a.tenant_id = p_tenant AND a.audit_id = c.source_id)
                   ELSE (SELECT status_checker._report_entry_hash(r) FROM status_checker.report r
                         WHERE r.tenant_id = p_tenant AND r.report_id = c.source_id)
               END AS actual
        FROM c
    )
    SELECT x.expected,
           CASE
               WHEN x.entry_no <> x.expected THEN format('entry %s is missing (the next entry is %s): entries were deleted', x.expected, x.entry_no)
               WHEN x.actual IS NULL THEN format('entry %s: %s %s was deleted', x.entry_no,
                                                 CASE x.source WHEN 'change' THEN 'audit record' ELSE 'report' END, x.source_id)
               WHEN x.actual <> x.entry_hash THEN format('entry %s: %s %s was altered', x.entry_no,
                                                         CASE x.source WHEN 'change' THEN 'audit record' ELSE 'report' END, x.source_id)
               ELSE format('entry %s does not follow from the entry before it: the chain was edited or reordered', x.entry_no)
           END,
           n
    FROM checked x
    WHERE x.entry_no <> x.expected OR x.actual IS NULL OR x.actual <> x.entry_hash OR x.recomputed <> x.chain_hash;

    -- the end of the chain against its head
    SELECT * INTO h FROM status_checker.audit_head x WHERE x.tenant_id = p_tenant;
    SELECT c.chain_hash INTO last_hash FROM status_checker.audit_chain c WHERE c.tenant_id = p_tenant AND c.entry_no = last_no;
    IF h.tenant_id IS NOT NULL AND coalesce(last_no, base_no) <> h.entry_no THEN
        RETURN QUERY SELECT least(coalesce(last_no, base_no), h.entry_no) + 1,
            format('the chain ends at entry %s but its head is at entry %s: entries were removed from the end', coalesce(last_no, base_no), h.entry_no), n;
    ELSIF h.tenant_id IS NOT NULL AND coalesce(last_hash, base_hash) <> h.chain_hash THEN
        RETURN QUERY SELECT h.entry_no, format('the last entry %s does not match the chain head', h.entry_no), n;
    ELSIF h.tenant_id IS NULL AND last_no IS NOT NULL THEN
        RETURN QUERY SELECT base_no + 1, 'the chain has entries but no head: the head was deleted'::text, n;
    END IF;

    -- records that should be chained but are not: added to the log afterwards
    RETURN QUERY
    SELECT NULL::bigint, format('audit record %s is not in the chain: it was added afterwards', a.audit_id), n
    FROM status_checker.audit_log a
    WHERE a.tenant_id = p_tenant
      AND a.audit_id <= (SELECT s.mark FROM status_checker.audit_sealer s WHERE s.source = 'change')
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_chain c
                      WHERE c.tenant_id = p_tenant AND c.source = 'change' AND c.source_id = a.audit_id)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_gap g WHERE g.source = 'change' AND g.id = a.audit_id);
    RETURN QUERY
    SELECT NULL::bigint, format('report %s is not in the chain: it was added afterwards', r.report_id), n
    FROM status_checker.report r
    WHERE r.tenant_id = p_tenant
      AND r.report_id <= (SELECT s.mark FROM status_checker.audit_sealer s WHERE s.source = 'report')
      AND r.report_id > coalesce((SELECT max(c.report_max) FROM status_checker.audit_checkpoint c
                                  WHERE c.tenant_id = p_tenant), 0)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_chain c
                      WHERE c.tenant_id = p_tenant AND c.source = 'report' AND c.source_id = r.report_id)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_gap g WHERE g.source = 'report' AND g.id = r.report_id);
END
$$;

CREATE FUNCTION status_checker.verify_audit_log(tenant_id bigint)
    RETURNS TABLE (ok boolean, entries bigint, first_bad_entry bigint, reason text)
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    v_entries bigint;
BEGIN
    PERFORM status_checker._no_nulls('verify_audit_log', ARRAY['tenant_id'], ARRAY[verify_audit_log.tenant_id::text]);
    PERFORM status_checker._require_tenant(verify_audit_log.tenant_id);
    SELECT x.entry_no, x.reason INTO p FROM status_checker._audit_problems(verify_audit_log.tenant_id) x
    ORDER BY x.entry_no NULLS LAST LIMIT 1;
    SELECT count(*) INTO v_entries FROM status_checker.audit_chain c WHERE c.tenant_id = verify_audit_log.tenant_id;
    IF p.reason IS NULL THEN
        RETURN QUERY SELECT true, v_entries, NULL::bigint, NULL::text;
    ELSE
        RETURN QUERY SELECT false, v_entries, p.entry_no, p.reason;
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.verify_audit_log(bigint) IS
'Check every entry of a tenant''s audit chain against its record and the entry before it, the chain''s end against its head, '
'and that no record was added outside the chain; names the first broken entry';
GRANT EXECUTE ON FUNCTION status_checker.verify_audit_log(bigint) TO status_checker_api, status_checker_admin, status_checker_operator;

CREATE FUNCTION status_checker.verify_audit_log(tenant_id bigint, head jsonb)
    RETURNS TABLE (ok boolean, entries bigint, first_bad_entry bigint, reason text)
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_entry bigint;
    v_hash bytea;
    v_at timestamptz;
    v_stored bytea;
    cp status_checker.audit_checkpoint;
    r record;
BEGIN
    PERFORM status_checker._no_nulls('verify_audit_log', ARRAY['tenant_id', 'head'], ARRAY[verify_audit_log.tenant_id::text, verify_audit_log.head::text]);
    -- every field parsed here, so that a malformed head gets the one error below
    BEGIN
        v_entry := (head ->> 'entry')::bigint;
        v_hash := decode(head ->> 'hash', 'hex');
        v_at := to_timestamp((head ->> 'at')::double precision);
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value OR numeric_value_out_of_range
                   OR datetime_field_overflow THEN
        v_entry := NULL;
    END;
    IF v_entry IS NULL OR v_hash IS NULL OR v_at IS NULL OR (head ->> 'tenant_id') IS DISTINCT FROM verify_audit_log.tenant_id::text
       OR NOT coalesce(status_checker._signature_ok(head ->> 'key_id', head ->> 'signed', head ->> 'signature'), false)
       OR head ->> 'signed' IS DISTINCT FROM status_checker._audit_head_text(verify_audit_log.tenant_id, v_entry, v_hash, v_at) THEN
        RAISE EXCEPTION 'this is not a chain head of tenant % signed by this installation', verify_audit_log.tenant_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the jsonb that audit_chain_head returned, unchanged.';
    END IF;
    SELECT * INTO r FROM status_checker.verify_audit_log(verify_audit_log.tenant_id);
    IF NOT r.ok THEN
        RETURN QUERY SELECT r.ok, r.entries, r.first_bad_entry, r.reason;
        RETURN;
    END IF;
    SELECT c.chain_hash INTO v_stored FROM status_checker.audit_chain c
    WHERE c.tenant_id = verify_audit_log.tenant_id AND c.entry_no = v_entry;
    IF NOT FOUND THEN
        SELECT * INTO cp FROM status_checker.audit_checkpoint c
        WHERE c.tenant_id = verify_audit_log.tenant_id AND c.entry_no >= v_entry ORDER BY c.entry_no LIMIT 1;
        IF v_entry = 0 THEN
            v_stored := status_checker._audit_genesis(verify_audit_log.tenant_id);
        ELSIF cp.entry_no = v_entry THEN
            v_stored := cp.chain_hash;
        ELSIF cp.entry_no IS NOT NULL THEN
            -- pruned by retention: the signed checkpoint after it is what remains
            RETURN QUERY SELECT true, r.entries, NULL::bigint,
                format('entry %s was removed by retention; the signed checkpoint at entry %s stands for it', v_entry, cp.entry_no);
            RETURN;
        ELSE
            RETURN QUERY SELECT false, r.entries, v_entry,
                format('the chain no longer has entry %s that your head names: the log was shortened and rebuilt', v_entry);
            RETURN;
        END IF;
    END IF;
    IF v_stored <> v_hash THEN
        RETURN QUERY SELECT false, r.entries, v_entry,
            format('entry %s no longer has the hash your head names: the log was rewritten', v_entry);
        RETURN;
    END IF;
    RETURN QUERY SELECT true, r.entries, NULL::bigint, NULL::text;
END
$$;
COMMENT ON FUNCTION status_checker.verify_audit_log(bigint, jsonb) IS
'verify_audit_log(tenant_id), and also that the chain still holds the head you kept from audit_chain_head: '
'proves the log was not rewritten since';
GRANT EXECUTE ON FUNCTION status_checker.verify_audit_log(bigint, jsonb) TO status_checker_api, status_checker_admin, status_checker_operator;

CREATE FUNCTION status_checker.prune_audit_log(keep interval DEFAULT '1 year')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    cp status_checker.audit_checkpoint;
    sig jsonb;
    n bigint;
    total bigint := 0;
BEGIN
    PERFORM status_checker._no_nulls('prune_audit_log', ARRAY['keep'], ARRAY[prune_audit_log.keep::text]);
    IF keep < interval '1 day' THEN
        RAISE EXCEPTION 'the audit log is kept at least one day, not %', keep
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The promise is one year: prune_audit_log() with no argument.';
    END IF;
    PERFORM status_checker.seal_audit_log();   -- also takes the sealer's lock
    FOR t IN
        SELECT c.tenant_id, max(c.entry_no) AS entry_no FROM status_checker.audit_chain c
        WHERE c.sealed_at < pg_catalog.now() - keep
        GROUP BY c.tenant_id
    LOOP
        cp := ROW(t.tenant_id, t.entry_no,
                  (SELECT c.chain_hash FROM status_checker.audit_chain c WHERE c.tenant_id = t.tenant_id AND c.entry_no = t.entry_no),
                  pg_catalog.now(),
                  (SELECT max(x.source_id) FROM status_checker.audit_chain x
                   WHERE x.tenant_id = t.tenant_id AND x.entry_no <= t.entry_no AND x.source = 'report'),
                  NULL, NULL);
        sig := status_checker._sign(status_checker._audit_checkpoint_text(cp));
        cp.key_id := sig ->> 'key_id';
        cp.signature := sig ->> 'signature';
        INSERT INTO status_checker.audit_checkpoint SELECT cp.*;
        DELETE FROM status_checker.audit_log a USING status_checker.audit_chain c
        WHERE c.tenant_id = t.tenant_id AND c.entry_no <= t.entry_no AND c.source = 'change'
          AND a.tenant_id = c.tenant_id AND a.audit_id = c.source_id;
        DELETE FROM status_checker.audit_chain c WHERE c.tenant_id = t.tenant_id AND c.entry_no <= t.entry_no;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION status_checker.prune_audit_log(interval) IS
'Retention: remove audit chain entries (and the administrative records they chain) sealed longer ago than keep (one year), '
'leaving a checkpoint signed with the installation key from which verify_audit_log starts; reports themselves are kept. '
'Run daily by schedule_jobs. Returns the number of entries removed';
GRANT EXECUTE ON FUNCTION status_checker.prune_audit_log(interval) TO status_checker_api, status_checker_operator;

-- ---- src/security/accounts.sql
-- src/security/accounts.sql — a tenant's accounts: it starts with exactly
-- one administrator (create_tenant) and can never be left without one.

CREATE FUNCTION status_checker._require_user(p_tenant_id bigint, p_login text) RETURNS status_checker.app_user
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._require_tenant(p_tenant_id);
    SELECT * INTO u FROM status_checker.app_user x WHERE x.tenant_id = p_tenant_id AND x.login = p_login FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist in tenant %', quote_literal(p_login), p_tenant_id
            USING ERRCODE = 'no_data_found';
    END IF;
    RETURN u;
END
$$;

-- Would this tenant keep an administrator without the given user?
CREATE FUNCTION status_checker._refuse_last_admin(p_tenant_id bigint, p_user_id bigint, what text) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- lock the tenant's admins, so that two sessions cannot each remove one of the last two
    PERFORM 1 FROM status_checker.app_user u WHERE u.tenant_id = p_tenant_id AND u.role = 'admin' FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM status_checker.app_user u
                   WHERE u.tenant_id = p_tenant_id AND u.role = 'admin' AND u.user_id <> p_user_id) THEN
        RAISE EXCEPTION 'cannot %: it is the last administrator of tenant %', what, p_tenant_id
            USING ERRCODE = 'check_violation',
                  HINT = 'Make another user an administrator first (add_user or set_user_role).';
    END IF;
END
$$;

-- set_user_role and remove_user: src/security/login_roles.sql (they change
-- the group role of the user's database login too).

-- The same rule for changes made without these functions: checked at
-- commit, for every tenant that still exists (delete_tenant removes the
-- tenant itself in the same transaction).
CREATE FUNCTION status_checker._check_admin_left() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.role = 'admin'
       AND EXISTS (SELECT 1 FROM status_checker.tenant t WHERE t.tenant_id = OLD.tenant_id)
       AND NOT EXISTS (SELECT 1 FROM status_checker.app_user u WHERE u.tenant_id = OLD.tenant_id AND u.role = 'admin') THEN
        RAISE EXCEPTION 'tenant % would be left without an administrator', OLD.tenant_id
            USING ERRCODE = 'check_violation',
                  HINT = 'Make another user an administrator first (add_user or set_user_role).';
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION status_checker._check_admin_left() OWNER TO status_checker_api;
CREATE CONSTRAINT TRIGGER app_user_admin_left
    AFTER UPDATE OF role OR DELETE ON status_checker.app_user
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION status_checker._check_admin_left();

-- ---- src/security/login_roles.sql
-- src/security/login_roles.sql — the group role of a tenant user's own
-- database login (map_db_role): a mapped login holds the group role of its
-- user's role, and no other of the four, whatever it held before; a login
-- no longer mapped holds none.  Written with CREATE OR REPLACE: an upgrade script can replay the same text.
--
-- Until 0.10.1 each function revoked only the role it had granted, so a
-- membership granted some other way (by hand, or left by a deletion before
-- delete_tenant revoked them) survived a new mapping: a login mapped as a
-- viewer in a new tenant could still act as an administrator there.

-- Make the login's membership in the four group roles exactly the one of
-- p_role (admin, manager, reporter, viewer), or none for NULL: a plain
-- grant (an ADMIN OPTION would let the login grant the role to others, of
-- any tenant).  A role that may not be mapped (superuser, BYPASSRLS, the
-- extension's own roles, operators, gateways: a mapping whose login was
-- dropped and whose name was reused) is never changed: refused (22023)
-- when a role is to be granted, left alone when the mapping goes.  So is a
-- role that would still hold a higher group role through another role it
-- belongs to (no revocation here could take that away).
CREATE OR REPLACE FUNCTION status_checker._set_login_group_role(p_db_role name, p_role text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r pg_catalog.pg_roles;
    g name;
    groups constant name[] := ARRAY['status_checker_admin', 'status_checker_manager',
                                    'status_checker_reporter', 'status_checker_viewer'];
BEGIN
    SELECT * INTO r FROM pg_catalog.pg_roles x WHERE x.rolname = p_db_role;
    IF NOT FOUND THEN
        RETURN;             -- the login was dropped: nothing to hold
    END IF;
    IF r.rolsuper OR r.rolbypassrls OR r.rolname LIKE 'status\_checker\_%'
       OR pg_catalog.pg_has_role(r.oid, 'status_checker_operator', 'MEMBER')
       OR pg_catalog.pg_has_role(r.oid, 'status_checker_gateway', 'MEMBER') THEN
        IF p_role IS NULL THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'role % cannot be mapped to a tenant''s user', quote_ident(p_db_role)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Superusers, operators, gateways, roles that bypass row-level security and status_checker''s own roles '
                           'see every tenant or act for many users.',
                  HINT = 'A login of this name was mapped before; if it was dropped and made again for another purpose, unmap it: map_db_role(tenant_id, login, NULL).';
    END IF;
    -- direct memberships: every other group role goes, and so does an ADMIN OPTION
    FOR g IN SELECT gr.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles gr ON gr.oid = m.roleid
             WHERE m.member = r.oid AND gr.rolname = ANY (groups)
               AND (gr.rolname IS DISTINCT FROM 'status_checker_' || p_role OR m.admin_option)
             ORDER BY 1 LOOP
        EXECUTE format('REVOKE %I FROM %I', g, p_db_role);
    END LOOP;
    IF p_role IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_auth_members m
           WHERE m.member = r.oid AND m.roleid = ('status_checker_' || p_role)::regrole) THEN
        EXECUTE format('GRANT %I TO %I', 'status_checker_' || p_role, p_db_role);
    END IF;
    -- what is left must be what the role implies (admin ⊃ manager ⊃ reporter
    -- ⊃ viewer): a higher group role held through another role the login
    -- belongs to is not the mapping's to take away
    FOR g IN SELECT x FROM unnest(groups) x
             WHERE p_role IS NOT NULL                -- (an unmapped login has no tenant: nothing to check)
               AND pg_catalog.pg_has_role(r.oid, x, 'MEMBER')
               AND array_position(ARRAY['viewer', 'reporter', 'manager', 'admin'], substr(x, 16))
                   > array_position(ARRAY['viewer', 'reporter', 'manager', 'admin'], p_role)
             ORDER BY 1 LOOP
        RAISE EXCEPTION 'role % holds % through another role it belongs to', quote_ident(p_db_role), g
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Map a login that belongs to no other role, or revoke that role from it first.';
    END LOOP;
END
$$;
COMMENT ON FUNCTION status_checker._set_login_group_role(name, text) IS
'Internal: a mapped login''s membership in the four group roles made exactly its user''s role, a plain grant (none for NULL); '
'roles that may not be mapped, or that hold a group role through another role, are refused';

CREATE OR REPLACE FUNCTION status_checker.map_db_role(tenant_id bigint, login text, db_role name)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('map_db_role', ARRAY['tenant_id', 'login'], ARRAY[map_db_role.tenant_id::text, map_db_role.login]);
    u := status_checker._require_user(map_db_role.tenant_id, map_db_role.login);
    IF map_db_role.db_role IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM pg_roles x WHERE x.rolname = map_db_role.db_role) THEN
            RAISE EXCEPTION 'role % does not exist', quote_ident(map_db_role.db_role) USING ERRCODE = 'undefined_object';
        END IF;
        -- roles that may not be mapped (superusers, operators, gateways, …)
        -- are refused by _set_login_group_role below, with its reasons
        IF EXISTS (SELECT 1 FROM status_checker.app_user x WHERE x.db_role = map_db_role.db_role AND x.user_id <> u.user_id) THEN
            RAISE EXCEPTION 'role % is already mapped to another user', quote_ident(map_db_role.db_role)
                USING ERRCODE = 'unique_violation';
        END IF;
    END IF;
    IF u.db_role IS NOT NULL AND u.db_role IS DISTINCT FROM map_db_role.db_role THEN
        PERFORM status_checker._set_login_group_role(u.db_role, NULL);
    END IF;
    IF map_db_role.db_role IS NOT NULL THEN
        PERFORM status_checker._set_login_group_role(map_db_role.db_role, u.role);
    END IF;
    UPDATE status_checker.app_user x SET db_role = map_db_role.db_role
    WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id;
END
$$;
COMMENT ON FUNCTION status_checker.map_db_role(bigint, text, name) IS
'For operators: let a database login act directly as a tenant''s user (it then holds the group role of the user''s role, '
'and no other of the four); NULL removes the mapping and the group role';
GRANT EXECUTE ON FUNCTION status_checker.map_db_role(bigint, text, name) TO status_checker_api, status_checker_operator;

CREATE OR REPLACE FUNCTION status_checker.set_user_role(tenant_id bigint, login text, role text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('set_user_role', ARRAY['tenant_id', 'login', 'role'],
                                     ARRAY[set_user_role.tenant_id::text, set_user_role.login, set_user_role.role]);
    IF set_user_role.role NOT IN ('admin', 'manager', 'reporter', 'viewer') THEN
        RAISE EXCEPTION 'unknown role %', quote_literal(set_user_role.role)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A role is one of admin, manager, reporter, viewer.';
    END IF;
    u := status_checker._require_user(set_user_role.tenant_id, set_user_role.login);
    IF u.role = 'admin' AND set_user_role.role <> 'admin' THEN
        PERFORM status_checker._refuse_last_admin(u.tenant_id, u.user_id, format('make %s a %s', quote_literal(u.login), set_user_role.role));
    END IF;
    UPDATE status_checker.app_user x SET role = set_user_role.role
    WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id AND x.role <> set_user_role.role;
    -- a user with a database login (map_db_role) holds the group role of its role, and only that one
    IF u.db_role IS NOT NULL THEN
        PERFORM status_checker._set_login_group_role(u.db_role, set_user_role.role);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_user_role(bigint, text, text) IS
'Change a user''s role (admin, manager, reporter, viewer), and the group role of its database login if it has one; '
'the last administrator of a tenant keeps the role';
ALTER FUNCTION status_checker.set_user_role(bigint, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_user_role(bigint, text, text) TO status_checker_admin;

CREATE OR REPLACE FUNCTION status_checker.remove_user(tenant_id bigint, login text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('remove_user', ARRAY['tenant_id', 'login'],
                                     ARRAY[remove_user.tenant_id::text, remove_user.login]);
    u := status_checker._require_user(remove_user.tenant_id, remove_user.login);
    IF u.role = 'admin' THEN
        PERFORM status_checker._refuse_last_admin(u.tenant_id, u.user_id, format('remove %s', quote_literal(u.login)));
    END IF;
    DELETE FROM status_checker.site_group_manager m WHERE m.tenant_id = u.tenant_id AND m.user_id = u.user_id;
    DELETE FROM status_checker.app_user x WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id;
    IF u.db_role IS NOT NULL THEN
        PERFORM status_checker._set_login_group_role(u.db_role, NULL);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.remove_user(bigint, text) IS
'Remove a user from a tenant (and from the groups it manages, and its database login from the group role); '
'the last administrator cannot be removed';
ALTER FUNCTION status_checker.remove_user(bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.remove_user(bigint, text) TO status_checker_admin;

-- ---- src/security/deletion.sql
-- src/security/deletion.sql — deleting a tenant at contract end, with a
-- certificate the customer can check.
--
-- delete_tenant removes every row of the tenant from every table that has
-- a tenant_id column (found in the catalog, so a table added later is not
-- forgotten), destroys its keys, and returns a certificate signed with the
-- installation's Ed25519 key: what was deleted (rows per table), when,
-- which keys were destroyed, the last audit chain head, and until when
-- backups may still hold the tenant's data (status_checker.backup_retention
-- after the deletion).  The certificates issued are kept in
-- deletion_certificate (an installation record: it holds no row of the
-- tenant, only the certificate).

CREATE TABLE status_checker.deletion_certificate (
    deleted_tenant  bigint PRIMARY KEY,
    issued_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    certificate     jsonb NOT NULL
);
COMMENT ON TABLE status_checker.deletion_certificate IS
'The deletion certificates this installation issued, one per deleted tenant';

CREATE FUNCTION status_checker._backup_retention() RETURNS interval
    LANGUAGE c STABLE PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_backup_retention';

-- The tables holding tenant rows, children before parents (foreign keys),
-- the audit tables last (deleting rows writes audit records).
CREATE FUNCTION status_checker._tenant_tables() RETURNS SETOF regclass
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    remaining oid[];
    ready oid[];
BEGIN
    SELECT array_agg(c.oid) INTO remaining
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE n.nspname = 'status_checker' AND c.relkind IN ('r', 'p')
      AND c.relname NOT IN ('audit_log', 'audit_chain', 'audit_head', 'audit_checkpoint');
    WHILE cardinality(remaining) > 0 LOOP
        -- the tables no other remaining table refers to
        SELECT array_agg(t) INTO ready FROM unnest(remaining) t
        WHERE NOT EXISTS (SELECT 1 FROM pg_constraint k
                          WHERE k.contype = 'f' AND k.confrelid = t AND k.conrelid <> t
                            AND k.conrelid = ANY (remaining));
        IF ready IS NULL THEN
            RAISE EXCEPTION 'the foreign keys between tenant tables form a cycle' USING ERRCODE = 'internal_error';
        END IF;
        RETURN QUERY SELECT t::regclass FROM unnest(ready) t ORDER BY t::regclass::text;
        remaining := ARRAY(SELECT t FROM unnest(remaining) t WHERE t <> ALL (ready));
    END LOOP;
    RETURN QUERY SELECT x::regclass FROM unnest(ARRAY['status_checker.audit_checkpoint', 'status_checker.audit_head',
                                                      'status_checker.audit_chain', 'status_checker.audit_log']) x;
END
$$;

-- delete_tenant: src/security/delete_tenant.sql.

CREATE FUNCTION status_checker.verify_deletion_certificate(certificate jsonb)
    RETURNS boolean
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    body jsonb;
BEGIN
    PERFORM status_checker._no_nulls('verify_deletion_certificate', ARRAY['certificate'], ARRAY[verify_deletion_certificate.certificate::text]);
    IF jsonb_typeof(certificate) <> 'object' OR jsonb_typeof(certificate -> 'signed') IS DISTINCT FROM 'string'
       OR jsonb_typeof(certificate -> 'certificate') IS DISTINCT FROM 'object'
       OR certificate ->> 'algorithm' IS DISTINCT FROM 'Ed25519' THEN
        RETURN false;
    END IF;
    BEGIN
        body := (certificate ->> 'signed')::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN false;
    END;
    -- the readable copy must say exactly what was signed
    IF body IS DISTINCT FROM certificate -> 'certificate'
       OR body ->> 'type' IS DISTINCT FROM 'status_checker deletion certificate' THEN
        RETURN false;
    END IF;
    RETURN coalesce(status_checker._signature_ok(certificate ->> 'key_id', certificate ->> 'signed', certificate ->> 'signature'), false);
END
$$;
COMMENT ON FUNCTION status_checker.verify_deletion_certificate(jsonb) IS
'True if a deletion certificate was signed by this installation and not changed since (outside the database: '
'openssl pkeyutl -verify with installation_public_key(), see docs/security.md)';
GRANT EXECUTE ON FUNCTION status_checker.verify_deletion_certificate(jsonb) TO status_checker_api, status_checker_viewer, status_checker_gateway, status_checker_operator;

-- ---- src/security/delete_tenant.sql
-- src/security/delete_tenant.sql — contract end: a tenant's rows deleted
-- from every table, its keys destroyed, its logins' grants revoked, and a
-- signed certificate.  Written with CREATE OR REPLACE: an upgrade script
-- can replay the same text.

CREATE OR REPLACE FUNCTION status_checker.delete_tenant(tenant_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t status_checker.tenant;
    u record;
    rel regclass;
    n bigint;
    counts jsonb := '{}';
    total bigint := 0;
    keys text[] := '{}';
    head status_checker.audit_head;
    v_at timestamptz := pg_catalog.clock_timestamp();
    payload jsonb;
    sig jsonb;
    cert jsonb;
BEGIN
    PERFORM status_checker._no_nulls('delete_tenant', ARRAY['tenant_id'], ARRAY[delete_tenant.tenant_id::text]);
    -- chain what is pending, and keep the sealer out until we commit
    PERFORM status_checker.seal_audit_log();
    SELECT * INTO t FROM status_checker.tenant x WHERE x.tenant_id = delete_tenant.tenant_id FOR UPDATE;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM status_checker.deletion_certificate d WHERE d.deleted_tenant = delete_tenant.tenant_id) THEN
            RAISE EXCEPTION 'tenant % was already deleted', delete_tenant.tenant_id
                USING ERRCODE = 'no_data_found',
                      HINT = 'Its certificate is in status_checker.deletion_certificate.';
        END IF;
        PERFORM status_checker._require_tenant(delete_tenant.tenant_id);
    END IF;
    SELECT * INTO head FROM status_checker.audit_head h WHERE h.tenant_id = delete_tenant.tenant_id;
    IF EXISTS (SELECT 1 FROM status_checker.data_key k WHERE k.tenant_id = delete_tenant.tenant_id) THEN
        keys := keys || 'data_keys'::text;
    END IF;
    IF EXISTS (SELECT 1 FROM status_checker.link_key k WHERE k.tenant_id = delete_tenant.tenant_id) THEN
        keys := keys || 'link_key'::text;
    END IF;

    -- a login mapped to one of the tenant's users loses the group role the
    -- mapping granted it, as remove_user does for one user (0.10.1: until
    -- then it kept it, and kept it when mapped in another tenant later)
    FOR u IN SELECT x.role, x.db_role FROM status_checker.app_user x
             JOIN pg_catalog.pg_roles r ON r.rolname = x.db_role
             WHERE x.tenant_id = delete_tenant.tenant_id ORDER BY x.user_id LOOP
        PERFORM status_checker._set_login_group_role(u.db_role, NULL);
    END LOOP;

    FOR rel IN SELECT * FROM status_checker._tenant_tables() LOOP
        EXECUTE format('DELETE FROM %s WHERE tenant_id = $1', rel) USING delete_tenant.tenant_id;
        GET DIAGNOSTICS n = ROW_COUNT;
        counts := counts || jsonb_build_object(replace(rel::text, 'status_checker.', ''), n);
        total := total + n;
    END LOOP;

    payload := jsonb_build_object(
        'type', 'status_checker deletion certificate',
        'version', 1,
        'installation', jsonb_build_object(
            'system_identifier', (SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() s),
            'database', pg_catalog.current_database()),
        'tenant_id', t.tenant_id,
        'tenant_name', t.name,
        'tenant_created_at', status_checker._utc_text(t.created_at),
        'deleted_at', status_checker._utc_text(v_at),
        'deleted_by', session_user,
        'rows_deleted', counts,
        'rows_total', total,
        'keys_destroyed', to_jsonb(keys),
        'audit_chain_head', CASE WHEN head.tenant_id IS NULL THEN NULL
                                 ELSE jsonb_build_object('entry', head.entry_no, 'hash', encode(head.chain_hash, 'hex')) END,
        'backup_retention', status_checker._backup_retention()::text,
        'backups_may_hold_data_until', status_checker._utc_text(v_at + status_checker._backup_retention()));
    sig := status_checker._sign(payload::text);
    cert := jsonb_build_object('certificate', payload, 'signed', payload::text) || sig;
    INSERT INTO status_checker.deletion_certificate (deleted_tenant, issued_at, certificate)
    VALUES (t.tenant_id, v_at, cert);
    RETURN cert;
END
$$;
COMMENT ON FUNCTION status_checker.delete_tenant(bigint) IS
'Contract end: delete every row of a tenant from every table and destroy its keys; returns a deletion certificate '
'(rows deleted per table, keys destroyed, until when backups may hold the data) signed with the installation''s Ed25519 key';
GRANT EXECUTE ON FUNCTION status_checker.delete_tenant(bigint) TO status_checker_api, status_checker_operator;


-- ---- src/security/encryption.sql
-- src/security/encryption.sql — envelope encryption of personal and secret
-- data (src/security/keys.c does the cryptography).
--
-- Encrypted, with the tenant's data key (AES-256-GCM), as they are written:
--   site_contact.address, site_contact.name   (a contact's mail address or webhook URL, and name)
--   app_user.email                            (a user's mail address)
--   outbox.recipient                          (copied from the two above, still encrypted)
--   channel.secrets                           (SMTP password, webhook secret: each value)
--   link_key.key                              (the key personal links are derived from)
-- and the installation's signing key, wrapped by the master key itself.
-- Data keys are wrapped by the master key, which the server reads from
-- status_checker.master_key_file or .master_key_command and holds in memory
-- only.  Triggers encrypt whatever is written in clear, so no writer can
-- forget; a value already encrypted ("sc1:…") is left alone, which is what
-- makes pg_dump/restore and the upgrade work.

CREATE TABLE status_checker.data_key (
    tenant_id   bigint NOT NULL,
    version     integer NOT NULL CHECK (version >= 0),   -- 0: the index key (blind indexes); 1, 2, …: data keys
    wrapped     bytea NOT NULL,                          -- master key id || nonce || tag || key
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at  timestamptz,                             -- no longer used to encrypt
    PRIMARY KEY (tenant_id, version)
);
COMMENT ON TABLE status_checker.data_key IS
'Per tenant, its data keys wrapped by the master key (AES-256-GCM); deleting a tenant''s rows here makes its encrypted data unreadable, backups included';
ALTER TABLE status_checker.data_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.data_key FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.data_key
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.data_key TO status_checker_operator;

CREATE FUNCTION status_checker._encrypt(tenant_id bigint, context text, value text) RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt';
CREATE FUNCTION status_checker._decrypt(tenant_id bigint, context text, value text) RETURNS text
    LANGUAGE c STABLE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_decrypt';
GRANT EXECUTE ON FUNCTION status_checker._decrypt(bigint, text, text) TO status_checker_api, status_checker_manager;
CREATE FUNCTION status_checker._encrypt_bytes(tenant_id bigint, context text, value bytea) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt_bytes';
CREATE FUNCTION status_checker._decrypt_bytes(tenant_id bigint, context text, value bytea) RETURNS bytea
    LANGUAGE c STABLE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_decrypt_bytes';
CREATE FUNCTION status_checker._key_version(value text) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_key_version';
CREATE FUNCTION status_checker._key_version(value bytea) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_key_version';
CREATE FUNCTION status_checker._blind_index(tenant_id bigint, context text, value text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_blind_index';
CREATE FUNCTION status_checker._new_data_key(tenant_id bigint) RETURNS integer
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_new_data_key';
CREATE FUNCTION status_checker._rewrap(wrapped bytea, aad text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_rewrap';
CREATE FUNCTION status_checker._master_wrap(key bytea, aad text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_master_wrap';
CREATE FUNCTION status_checker._master_unwrap(wrapped bytea, aad text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_master_unwrap';
CREATE FUNCTION status_checker._wrapped_by(wrapped bytea) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_wrapped_by';
CREATE FUNCTION status_checker._forget_keys() RETURNS void
    LANGUAGE c VOLATILE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_forget_keys';
CREATE FUNCTION status_checker.master_key_id() RETURNS text
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'sc_master_key_id';
COMMENT ON FUNCTION status_checker.master_key_id() IS
'The id of the current master key (the first 8 bytes of its SHA-256, in hex) — never the key';
GRANT EXECUTE ON FUNCTION status_checker.master_key_id() TO status_checker_api, status_checker_operator;

-- channel secrets: {"password": {"enc": "sc1:…"}} — the names stay readable (has_password)
CREATE FUNCTION status_checker._decrypt_secrets(p_tenant_id bigint, p_secrets jsonb) RETURNS jsonb
    LANGUAGE sql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'object' AND e.value ? 'enc'
                                                 THEN to_jsonb(status_checker._decrypt(p_tenant_id, 'channel_secret', e.value ->> 'enc'))
                                                 ELSE e.value END), '{}')
    FROM jsonb_each(p_secrets) e
$$;

-- ------------------------------------------------------------ encrypting what is written

-- a contact's address and name, and the address's blind index (equal
-- addresses, mail in any case, give equal indexes); in C (src/security/keys.c)
CREATE FUNCTION status_checker._encrypt_contact() RETURNS trigger
    LANGUAGE c SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt_contact';

CREATE FUNCTION status_checker._encrypt_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.email NOT LIKE 'sc1:%' THEN
        NEW.email := status_checker._encrypt(NEW.tenant_id, 'recipient', NEW.email);
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION status_checker._encrypt_channel() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.secrets := coalesce((SELECT jsonb_object_agg(e.key,
                                CASE WHEN jsonb_typeof(e.value) = 'string'
                                     THEN jsonb_build_object('enc', status_checker._encrypt(NEW.tenant_id, 'channel_secret', e.value #>> '{}'))
                                     ELSE e.value END)
                             FROM jsonb_each(NEW.secrets) e), '{}');
    RETURN NEW;
END
$$;

CREATE FUNCTION status_checker._encrypt_link_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF status_checker._key_version(NEW.key) IS NULL THEN
        NEW.key := status_checker._encrypt_bytes(NEW.tenant_id, 'link_key', NEW.key);
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION status_checker._wrap_signing_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.private_key IS NOT NULL AND length(NEW.private_key) = 32 THEN
        NEW.private_key := status_checker._master_wrap(NEW.private_key, 'status_checker signing key|' || NEW.key_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER encrypt_contact BEFORE INSERT OR UPDATE OF address, name ON status_checker.site_contact
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_contact();
CREATE TRIGGER encrypt_user BEFORE INSERT OR UPDATE OF email ON status_checker.app_user
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_user();
CREATE TRIGGER encrypt_channel BEFORE INSERT OR UPDATE OF secrets ON status_checker.channel
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_channel();
CREATE TRIGGER encrypt_link_key BEFORE INSERT OR UPDATE OF key ON status_checker.link_key
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_link_key();
CREATE TRIGGER wrap_signing_key BEFORE INSERT OR UPDATE OF private_key ON status_checker.signing_key
    FOR EACH ROW EXECUTE FUNCTION status_checker._wrap_signing_key();

-- ------------------------------------------------------------ reading

CREATE FUNCTION status_checker._link_key(p_tenant_id bigint) RETURNS bytea
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea;
BEGIN
    SELECT l.key INTO k FROM status_checker.link_key l WHERE l.tenant_id = p_tenant_id;
    IF NOT FOUND THEN
        INSERT INTO status_checker.link_key (tenant_id, key)
        VALUES (p_tenant_id, status_checker._random_bytes(32))
        ON CONFLICT (tenant_id) DO NOTHING;
        SELECT l.key INTO k FROM status_checker.link_key l WHERE l.tenant_id = p_tenant_id;
    END IF;
    RETURN status_checker._decrypt_bytes(p_tenant_id, 'link_key', k);
END
$$;
COMMENT ON FUNCTION status_checker._link_key(bigint) IS
'Internal: a tenants link key (decrypted), made on first use';

-- delivery_status: src/dispatch/delivery_status.sql (recipients masked without decrypting for the reader, 0.10.1).

CREATE VIEW status_checker.contact_list WITH (security_invoker = true) AS
SELECT c.tenant_id, c.contact_id, s.code AS site_code, s.name AS site_name, c.channel,
       status_checker._decrypt(c.tenant_id, 'recipient', c.address) AS address,
       status_checker._decrypt(c.tenant_id, 'contact_name', c.name) AS name,
       c.created_at
FROM status_checker.site_contact c
JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id;
COMMENT ON VIEW status_checker.contact_list IS
'The contacts of the sites, decrypted: who receives each site''s report requests';
-- in clear: for managers
GRANT SELECT ON status_checker.contact_list TO status_checker_manager;

CREATE VIEW status_checker.user_list WITH (security_invoker = true) AS
SELECT u.tenant_id, u.user_id, u.login, status_checker._decrypt(u.tenant_id, 'recipient', u.email) AS email,
       u.role, u.db_role, u.created_at
FROM status_checker.app_user u;
COMMENT ON VIEW status_checker.user_list IS
'The users of each tenant, with their role and mail address (decrypted)';
-- in clear: for managers
GRANT SELECT ON status_checker.user_list TO status_checker_manager;

-- ------------------------------------------------------------ rotation

CREATE FUNCTION status_checker.rotate_master_key() RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    current_id text := status_checker.master_key_id();
    n integer;
    m integer;
BEGIN
    UPDATE status_checker.data_key d
    SET wrapped = status_checker._rewrap(d.wrapped, format('status_checker data key|%s|%s', d.tenant_id, d.version))
    WHERE status_checker._wrapped_by(d.wrapped) <> current_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE status_checker.signing_key k
    SET private_key = status_checker._rewrap(k.private_key, 'status_checker signing key|' || k.key_id)
    WHERE k.private_key IS NOT NULL AND status_checker._wrapped_by(k.private_key) <> current_id;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_master_key() IS
'After putting a new master key first in master_key_file (the old one second) and reloading: re-wrap every data key '
'and the signing key under the new key; then the old one can be removed. Returns the number of keys re-wrapped';
GRANT EXECUTE ON FUNCTION status_checker.rotate_master_key() TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.rotate_data_key(tenant_id bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v integer;
BEGIN
    PERFORM status_checker._no_nulls('rotate_data_key', ARRAY['tenant_id'], ARRAY[rotate_data_key.tenant_id::text]);
    PERFORM status_checker._require_tenant(rotate_data_key.tenant_id);
    -- one rotation at a time per tenant
    PERFORM 1 FROM status_checker.tenant t WHERE t.tenant_id = rotate_data_key.tenant_id FOR UPDATE;
    v := status_checker._new_data_key(rotate_data_key.tenant_id);
    UPDATE status_checker.data_key d SET retired_at = pg_catalog.now()
    WHERE d.tenant_id = rotate_data_key.tenant_id AND d.version > 0 AND d.version < v AND d.retired_at IS NULL;
    RETURN v;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_data_key(bigint) IS
'Give a tenant a new data key: new values are encrypted with it at once; CALL reencrypt_tenant(tenant_id) re-encrypts '
'the stored ones in small batches and destroys the old key. Returns the new key version';
GRANT EXECUTE ON FUNCTION status_checker.rotate_data_key(bigint) TO status_checker_api, status_checker_operator;

-- Re-encrypt up to batch_size values of a tenant that an older data key
-- encrypted; returns how many.  When none is left, older data keys are
-- destroyed (their rows deleted).
CREATE FUNCTION status_checker.reencrypt_batch(tenant_id bigint, batch_size integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    t bigint := reencrypt_batch.tenant_id;
    cur integer;
    n integer := 0;
    k integer;
BEGIN
    PERFORM status_checker._no_nulls('reencrypt_batch', ARRAY['tenant_id', 'batch_size'],
                                     ARRAY[reencrypt_batch.tenant_id::text, reencrypt_batch.batch_size::text]);
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM status_checker._require_tenant(t);
    SELECT max(d.version) INTO cur FROM status_checker.data_key d
    WHERE d.tenant_id = t AND d.version > 0 AND d.retired_at IS NULL;
    IF cur IS NULL THEN
        RETURN 0;
    END IF;
    -- rows under an older key, locked (others wait a moment, never fail)
    WITH x AS (SELECT c.contact_id FROM status_checker.site_contact c
               WHERE c.tenant_id = t AND (status_checker._key_version(c.address) < cur
                                          OR status_checker._key_version(c.name) < cur)
               LIMIT batch_size FOR UPDATE)
    UPDATE status_checker.site_contact c
    SET address = status_checker._encrypt(t, 'recipient', status_checker._decrypt(t, 'recipient', c.address)),
        name = status_checker._encrypt(t, 'contact_name', status_checker._decrypt(t, 'contact_name', c.name))
    FROM x WHERE c.tenant_id = t AND c.contact_id = x.contact_id;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    WITH x AS (SELECT u.user_id FROM status_checker.app_user u
               WHERE u.tenant_id = t AND status_checker._key_version(u.email) < cur LIMIT batch_size FOR UPDATE)
    UPDATE status_checker.app_user u
    SET email = status_checker._encrypt(t, 'recipient', status_checker._decrypt(t, 'recipient', u.email))
    FROM x WHERE u.tenant_id = t AND u.user_id = x.user_id;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    WITH x AS (SELECT o.message_id FROM status_checker.outbox o
               WHERE o.tenant_id = t AND o.channel_id IS NULL AND status_checker._key_version(o.recipient) < cur
               LIMIT batch_size FOR UPDATE)
    UPDATE status_checker.outbox o
    SET recipient = status_checker._encrypt(t, 'recipient', status_checker._decrypt(t, 'recipient', o.recipient))
    FROM x WHERE o.tenant_id = t AND o.message_id = x.message_id;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    -- secrets and the link key: decrypted into clear values, which the triggers encrypt again
    UPDATE status_checker.channel ch
    SET secrets = (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'object' AND e.value ? 'enc'
                                                               THEN to_jsonb(status_checker._decrypt(t, 'channel_secret', e.value ->> 'enc'))
                                                               ELSE e.value END), '{}')
                   FROM jsonb_each(ch.secrets) e)
    WHERE ch.tenant_id = t AND EXISTS (SELECT 1 FROM jsonb_each(ch.secrets) e
                                        WHERE status_checker._key_version(e.value ->> 'enc') < cur);
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    UPDATE status_checker.link_key l SET key = status_checker._decrypt_bytes(t, 'link_key', l.key)
    WHERE l.tenant_id = t AND status_checker._key_version(l.key) < cur;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    IF n = 0 AND EXISTS (SELECT 1 FROM status_checker.data_key d WHERE d.tenant_id = t AND d.version > 0 AND d.version < cur) THEN
        -- Nothing seemed left under the older keys.  Wait for the writers
        -- of these tables to finish (a value they encrypted with an older
        -- key is then visible), look again, and destroy the older keys.
        LOCK TABLE status_checker.site_contact, status_checker.app_user, status_checker.outbox,
                   status_checker.channel, status_checker.link_key IN SHARE MODE;
        IF NOT EXISTS (SELECT 1 FROM status_checker.site_contact c WHERE c.tenant_id = t
                       AND (status_checker._key_version(c.address) < cur OR status_checker._key_version(c.name) < cur))
           AND NOT EXISTS (SELECT 1 FROM status_checker.app_user u WHERE u.tenant_id = t AND status_checker._key_version(u.email) < cur)
           AND NOT EXISTS (SELECT 1 FROM status_checker.outbox o WHERE o.tenant_id = t AND o.channel_id IS NULL
                           AND status_checker._key_version(o.recipient) < cur)
           AND NOT EXISTS (SELECT 1 FROM status_checker.channel ch, jsonb_each(ch.secrets) e
                           WHERE ch.tenant_id = t AND status_checker._key_version(e.value ->> 'enc') < cur)
           AND NOT EXISTS (SELECT 1 FROM status_checker.link_key l WHERE l.tenant_id = t AND status_checker._key_version(l.key) < cur) THEN
            DELETE FROM status_checker.data_key d WHERE d.tenant_id = t AND d.version > 0 AND d.version < cur;
        ELSE
            n := 1;   -- one more round
        END IF;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.reencrypt_batch(bigint, integer) IS
'Re-encrypt up to batch_size of a tenant''s values still under an older data key; when none is left, destroy the older keys. '
'Returns the number re-encrypted (0: done)';
GRANT EXECUTE ON FUNCTION status_checker.reencrypt_batch(bigint, integer) TO status_checker_api, status_checker_operator;

-- (no SET search_path: a procedure with SET options cannot COMMIT; every name here is qualified)
CREATE PROCEDURE status_checker.reencrypt_tenant(tenant_id bigint, batch_size integer DEFAULT 500)
    LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    n integer;
BEGIN
    LOOP
        n := status_checker.reencrypt_batch(tenant_id, batch_size);
        COMMIT;   -- small transactions: the system stays in use
        EXIT WHEN n = 0;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE status_checker.reencrypt_tenant(bigint, integer) IS
'After rotate_data_key: re-encrypt all of a tenant''s values in batches of batch_size, one transaction each, then destroy the old data key';
GRANT EXECUTE ON PROCEDURE status_checker.reencrypt_tenant(bigint, integer) TO status_checker_operator;

CREATE VIEW status_checker.encryption_status WITH (security_invoker = true) AS
SELECT d.tenant_id,
       max(d.version) FILTER (WHERE d.version > 0) AS current_version,
       array_agg(d.version ORDER BY d.version) FILTER (WHERE d.version > 0) AS data_key_versions,
       array_agg(DISTINCT status_checker._wrapped_by(d.wrapped)) AS wrapped_by_master_keys,
       max(d.created_at) FILTER (WHERE d.version > 0) AS rotated_at
FROM status_checker.data_key d
GROUP BY d.tenant_id;
COMMENT ON VIEW status_checker.encryption_status IS
'Per tenant: its data key versions (more than one while a re-encryption runs), which master keys wrap them, when last rotated';
-- for the operator
GRANT SELECT ON status_checker.encryption_status TO status_checker_operator;

-- ---- src/security/link_keys.sql
-- src/security/link_keys.sql — every tenant gets its link key when it is
-- created, not on the first link sent.
--
-- Made on first use, the key was inserted by whichever transaction needed
-- it first: the dispatcher's claim (the first link of a tenant) or
-- issue_tokens.  After an earthquake both ran at once for hundreds of new
-- tenants, in different orders, and deadlocked on the link_key unique
-- index (found by the burst benchmark, test/bench/burst-bench.sh; kept
-- from coming back by test/tap/004_contention.pl).  _link_key still makes
-- a missing key, but no tenant lacks one any more.

CREATE OR REPLACE FUNCTION status_checker._tenant_link_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a restore brings the tenant's own key with it (_restoring: row_security
    -- off is not enough, any caller can set it)
    IF status_checker._restoring() THEN
        RETURN NULL;
    END IF;
    PERFORM status_checker._link_key(NEW.tenant_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION status_checker._tenant_link_key() IS
'Internal (trigger): make a new tenant''s link key at once, so that concurrent first links never race to create it';
CREATE TRIGGER tenant_link_key AFTER INSERT ON status_checker.tenant
    FOR EACH ROW EXECUTE FUNCTION status_checker._tenant_link_key();

-- ---- src/dispatch/delivery_status.sql
-- src/dispatch/delivery_status.sql — every message as its readers see it,
-- the recipient masked.  Written with CREATE OR REPLACE: an upgrade script can replay the same text.

-- A recipient as views show it: w***@example.com, https://hooks.example.com/…
-- Whatever the kind it is told, it shows no more than that: an address that
-- is not a plain mailbox (a URL, whose path may be its credential) masked
-- as email is ***, and a URL shows its scheme, host and port only, never a
-- user name or password before the host, and *** when what follows the
-- scheme is not a plain host name or address (0.10.1: the caller names the kind, and
-- a webhook URL masked as email came back whole).
CREATE OR REPLACE FUNCTION status_checker._mask_recipient(kind text, recipient text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE
        WHEN kind = 'email' THEN
            coalesce((SELECT m[1] || '***@' || m[2]
                      FROM regexp_match(recipient, '^([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)$') m), '***')
        ELSE
            -- scheme, host (a name, or an IPv6 address in brackets) and port,
            -- then the end or the start of a path, query or fragment
            coalesce((SELECT m[1] || m[2] || coalesce(m[3], '') || '/…'
                      FROM regexp_match(recipient, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/?#@\s]*@)?'
                                                   '([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(?:[/?#]|$)') m), '***')
        END;
COMMENT ON FUNCTION status_checker._mask_recipient(text, text) IS
'Internal: a recipient as views show it: w***@example.com, https://hooks.example.com/…; *** for anything that is not of that shape';

-- A recipient masked (w***@example.com, https://hooks.example.com/…): the
-- only form of it a viewer may see.  It runs as status_checker_api, which
-- may decrypt (row-level security and the session's tenant still confine
-- it): until 0.10.1 the view decrypted with its reader's own privileges, so
-- viewers held _decrypt and decrypted contacts and users with it directly.
CREATE OR REPLACE FUNCTION status_checker._masked_recipient(p_tenant_id bigint, p_kind text, p_recipient text)
    RETURNS text
    LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN status_checker._mask_recipient(p_kind,
               CASE WHEN p_recipient LIKE 'sc1:%' THEN status_checker._decrypt(p_tenant_id, 'recipient', p_recipient)
                    ELSE p_recipient END);
ALTER FUNCTION status_checker._masked_recipient(bigint, text, text) OWNER TO status_checker_api;
COMMENT ON FUNCTION status_checker._masked_recipient(bigint, text, text) IS
'Internal (delivery_status): a message''s recipient, decrypted and masked (w***@example.com, https://hooks.example.com/…)';
GRANT EXECUTE ON FUNCTION status_checker._masked_recipient(bigint, text, text) TO status_checker_viewer, status_checker_operator;

CREATE OR REPLACE VIEW status_checker.delivery_status WITH (security_invoker = true) AS
SELECT o.message_id, o.tenant_id, o.request_id, s.code AS site_code, o.channel_kind,
       status_checker._masked_recipient(o.tenant_id, o.channel_kind, o.recipient) AS recipient,
       o.purpose, o.state, o.attempts, o.last_error, o.enqueued_at, o.sent_at,
       o.seq AS reminder_number, o.last_status,
       CASE WHEN o.state IN ('queued', 'retrying') THEN o.next_attempt_at END AS next_attempt_at,
       o.sent_at - o.enqueued_at AS latency,
       format('sc1-%s-%s', o.tenant_id, o.message_id) AS idempotency_key,
       ch.name AS channel_name
FROM status_checker.outbox o
LEFT JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id
LEFT JOIN status_checker.channel ch ON ch.tenant_id = o.tenant_id AND ch.channel_id = coalesce(o.via_channel_id, o.channel_id);
COMMENT ON VIEW status_checker.delivery_status IS
'Every message: site, channel kind, masked recipient, purpose, state (queued, sending, sent, retrying, dead, cancelled), '
'attempts, last error, enqueue and send times, latency, idempotency key';
GRANT SELECT ON status_checker.delivery_status TO status_checker_viewer, status_checker_operator;


-- ---- src/sites/contacts.sql
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

-- ---- src/common/jobs.sql
-- src/common/jobs.sql — the extension's periodic jobs, registered with
-- pg_cron.  Written with CREATE OR REPLACE: each version that adds a job
-- redefines it, in its install script and in its upgrade script.

CREATE OR REPLACE FUNCTION status_checker.schedule_jobs() RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
    has_in_db boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'status_checker''s periodic jobs (reminders, health probe and audit sealing every minute, ended dashboard sessions hourly, outbox and audit retention daily) are run by pg_cron.',
                  HINT = format('Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name = %L, '
                                'restart, run CREATE EXTENSION pg_cron here, then call schedule_jobs() again. '
                                'Without pg_cron, have any scheduler run SELECT status_checker.run_reminders() every minute, '
                                'SELECT status_checker.health_probe() and SELECT status_checker.seal_audit_log() every minute, '
                                'and SELECT status_checker.purge_outbox() and SELECT status_checker.prune_audit_log() daily.',
                                pg_catalog.current_database());
    END IF;
    has_in_db := to_regproc('cron.schedule_in_database') IS NOT NULL;
    FOR j IN SELECT * FROM (VALUES
        ('status_checker-reminders', '* * * * *', 'SELECT status_checker.run_reminders()'),
        ('status_checker-health',    '* * * * *', 'SELECT status_checker.health_probe()'),
        ('status_checker-retention', '17 3 * * *', 'SELECT status_checker.purge_outbox()'),
        ('status_checker-audit-seal', '* * * * *', 'SELECT status_checker.seal_audit_log()'),
        ('status_checker-audit-retention', '37 3 * * *', 'SELECT status_checker.prune_audit_log()'),
        ('status_checker-web-sessions', '7 * * * *', 'SELECT status_checker.purge_web_sessions()')) v(name, sched, cmd)
    LOOP
        -- scheduling a job name again replaces it: calling this twice is harmless
        IF has_in_db THEN
            EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
                USING j.name, j.sched, j.cmd, pg_catalog.current_database();
        ELSE
            EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING j.name, j.sched, j.cmd;
        END IF;
        RETURN NEXT j.name;
    END LOOP;
END
$$;
COMMENT ON FUNCTION status_checker.schedule_jobs() IS
'Register status_checker''s periodic jobs with pg_cron (reminders, health probe and audit sealing every minute; outbox and audit retention daily); '
'returns the job names. Without pg_cron, raises an error that says what to do';
GRANT EXECUTE ON FUNCTION status_checker.schedule_jobs() TO status_checker_api, status_checker_operator;

-- ---- src/common/health.sql
-- src/common/health.sql — system_health(): one call that tells a monitoring
-- system (or an operator at 3 a.m.) whether this node keeps the service's
-- promises, check by check, each with ok / warning / critical and the
-- figure it judged.  It reads only (it works on a standby too, where it
-- says what a standby should be doing), so it may be polled as often as
-- wished; the every-minute health_probe() keeps the history.
-- docs/operations.md, "Monitoring", lists the checks and what to do.

CREATE OR REPLACE FUNCTION status_checker.system_health()
    RETURNS TABLE (check_name text, status text, value text, detail text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    standby boolean := pg_catalog.pg_is_in_recovery();
    preloaded boolean := pg_catalog.current_setting('status_checker.database', true) IS NOT NULL;
    here boolean := pg_catalog.current_setting('status_checker.database', true) = pg_catalog.current_database();
    d record;                   -- dispatcher_status()
    v_age double precision;
    v_n bigint;
    v_text text;
    v_sync bigint;
    v_running bigint;           -- dispatcher workers running, of v_workers
    v_workers bigint;
    v_refused bigint;           -- dead messages whose destination was refused
    rows_ record;
    -- the checks, in order: [[check, status, value, detail], ...] (not a
    -- temporary table: a standby cannot create one)
    acc jsonb := '[]';
BEGIN
    -- the node's role
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'role', 'ok', CASE WHEN standby THEN 'standby' ELSE 'primary' END,
         CASE WHEN standby THEN 'a standby: the workers wait for a promotion and send nothing'
              ELSE 'the primary: the workers poll feeds and send messages' END]));

    -- the workers
    IF NOT preloaded THEN
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'workers', 'critical', 'not loaded',
             'status_checker is not in shared_preload_libraries: no feed is polled, no message is sent']));
    ELSIF NOT here THEN
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'workers', 'warning', pg_catalog.current_setting('status_checker.database'),
             format('the workers run in database %s (status_checker.database), not in this one',
                    pg_catalog.current_setting('status_checker.database'))]));
    ELSE
        d := status_checker.dispatcher_status();
        v_age := extract(epoch FROM pg_catalog.clock_timestamp() - d.heartbeat);
        -- the workers running, of those configured (0.8.0: several)
        SELECT count(*) FILTER (WHERE w.running), count(*) INTO v_running, v_workers FROM status_checker.dispatcher_workers() w;
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'dispatcher',
             CASE WHEN pg_catalog.current_setting('status_checker.dispatcher') = 'off' THEN 'warning'
                  WHEN NOT coalesce(d.running, false) THEN 'critical'
                  WHEN v_age > 120 THEN 'critical'
                  WHEN v_running < v_workers THEN 'warning'
                  ELSE 'ok' END,
             CASE WHEN coalesce(d.running, false) THEN format('%s of %s workers, heartbeat %s s ago', v_running, v_workers, round(v_age::numeric, 1))
                  ELSE 'not running' END,
             CASE WHEN pg_catalog.current_setting('status_checker.dispatcher') = 'off'
                      THEN 'status_checker.dispatcher = off: nothing is sent from this node'
                  WHEN NOT coalesce(d.running, false)
                      THEN 'the dispatcher is not running (the postmaster restarts it within seconds; see the server log)'
                  WHEN v_age > 120 THEN 'a dispatcher worker has not looked at its work for over 2 minutes: it hangs'
                  WHEN v_running < v_workers THEN format('only %s of %s dispatcher workers run: messages still go out, more slowly '
                                                '(the postmaster restarts the others within seconds; see the server log)', v_running, v_workers)
                  ELSE format('%s in flight, %s sent, %s retried, %s dead since it started',
                              d.in_flight, d.sent, d.retried, d.dead) END]));
        SELECT count(*) INTO v_n FROM pg_catalog.pg_stat_activity a
        WHERE a.backend_type = 'status_checker feed watcher' AND a.datname = pg_catalog.current_database();
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'feed_watcher',
             CASE WHEN pg_catalog.current_setting('status_checker.feed_watcher') = 'off' THEN 'warning'
                  WHEN v_n = 0 THEN 'critical' ELSE 'ok' END,
             CASE WHEN v_n = 0 THEN 'not running' ELSE 'running' END,
             CASE WHEN pg_catalog.current_setting('status_checker.feed_watcher') = 'off'
                      THEN 'status_checker.feed_watcher = off: no disaster feed is polled from this node'
                  WHEN v_n = 0 THEN 'the feed watcher is not running (the postmaster restarts it within seconds)'
                  ELSE 'the feed watcher runs' END]));
        -- the HTTP workers (reporter pages, dashboard), when configured (0.6.0)
        IF coalesce(pg_catalog.current_setting('status_checker.http_listen', true), '') <> '' THEN
            SELECT count(*) INTO v_n FROM pg_catalog.pg_stat_activity a
            WHERE a.backend_type = 'status_checker http' AND a.datname = pg_catalog.current_database();
            v_text := pg_catalog.current_setting('status_checker.http_workers');
            acc := acc || jsonb_build_array(to_jsonb(ARRAY[
                 'http',
                 CASE WHEN v_n = 0 THEN 'critical' WHEN v_n < v_text::integer THEN 'warning' ELSE 'ok' END,
                 format('%s of %s workers', v_n, v_text),
                 CASE WHEN v_n = 0 THEN format('no HTTP worker serves %s: reporter pages and the dashboard are down (see the server log)',
                                               pg_catalog.current_setting('status_checker.http_listen'))
                      WHEN v_n < v_text::integer THEN 'an HTTP worker is missing (the postmaster restarts it within seconds)'
                      ELSE (SELECT format('reporter pages and the dashboard on %s: %s requests, %s reports, %s refused (429) since the server started',
                                          pg_catalog.current_setting('status_checker.http_listen'), c.requests, c.reports, c.refused)
                            FROM status_checker.http_counters() c) END]));
        END IF;
    END IF;

    -- the feeds: each enabled feed polled and answering, no later than a few intervals
    IF NOT standby THEN
        FOR rows_ IN
            SELECT f.feed_id, f.url, f.consecutive_errors, f.last_error,
                   extract(epoch FROM pg_catalog.now() - coalesce(f.last_success_at, f.created_at)) AS lag,
                   extract(epoch FROM f.poll_interval) AS every
            FROM status_checker.feed f WHERE f.enabled ORDER BY f.feed_id
        LOOP
            acc := acc || jsonb_build_array(to_jsonb(ARRAY[
                 'feed ' || rows_.feed_id,
                 CASE WHEN rows_.lag > greatest(600, 10 * rows_.every) THEN 'critical'
                      WHEN rows_.consecutive_errors > 0 OR rows_.lag > greatest(120, 3 * rows_.every) THEN 'warning'
                      ELSE 'ok' END,
                 format('last success %s s ago', round(rows_.lag::numeric)),
                 CASE WHEN rows_.consecutive_errors > 0
                          THEN format('%s: %s consecutive errors, the last: %s', rows_.url, rows_.consecutive_errors, rows_.last_error)
                      ELSE format('%s, polled every %s s', rows_.url, rows_.every) END]));
        END LOOP;
    END IF;

    -- the outbox: how much waits, and since when
    SELECT count(*), extract(epoch FROM pg_catalog.now() - min(o.enqueued_at))
      INTO v_n, v_age
      FROM status_checker.outbox o WHERE o.state IN ('queued', 'retrying', 'sending') AND o.next_attempt_at <= pg_catalog.now();
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'outbox_backlog',
         CASE WHEN standby THEN 'ok'
              WHEN coalesce(v_age, 0) > 900 THEN 'critical'
              WHEN coalesce(v_age, 0) > 300 THEN 'warning' ELSE 'ok' END,
         format('%s due, the oldest enqueued %s s ago', v_n, coalesce(round(v_age::numeric), 0)),
         CASE WHEN standby THEN 'sent by the primary'
              WHEN coalesce(v_age, 0) > 300 THEN 'messages wait for more than 5 minutes: is the dispatcher running, a channel slow or rate-limited?'
              ELSE 'messages go out' END]));
    -- (0.10.1: and how many of them were to a destination that is not allowed)
    SELECT count(*), count(*) FILTER (WHERE a.error LIKE 'destination % refused: %') INTO v_n, v_refused
    FROM status_checker.delivery_attempt a
    WHERE a.outcome = 'dead' AND a.at > pg_catalog.now() - interval '1 hour';
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'dead_messages', CASE WHEN v_n > 0 THEN 'warning' ELSE 'ok' END, v_n::text || ' in the last hour',
         CASE WHEN v_n > 0 THEN 'messages gave up: see delivery_status (last_error) and retry_message()'
                  || CASE WHEN v_refused > 0 THEN format('; %s of them to a destination that status_checker.allowed_destinations '
                                                         'does not allow', v_refused) ELSE '' END
              ELSE 'no message gave up in the last hour' END]));

    -- the periodic jobs (pg_cron): the health probe runs every minute
    IF NOT standby THEN
        SELECT extract(epoch FROM pg_catalog.clock_timestamp() - max(h.taken_at)) INTO v_age FROM status_checker.health_sample h;
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'periodic_jobs', CASE WHEN v_age IS NULL OR v_age > 300 THEN 'warning' ELSE 'ok' END,
             CASE WHEN v_age IS NULL THEN 'never ran' ELSE format('health probe %s s ago', round(v_age::numeric)) END,
             CASE WHEN v_age IS NULL OR v_age > 300
                      THEN 'reminders, the audit seal and the health probe are not running: SELECT status_checker.schedule_jobs() (pg_cron)'
                  ELSE 'reminders, audit sealing and the health probe run' END]));
    END IF;

    -- replication: a standby to fail over to, synchronous if so configured
    IF standby THEN
        SELECT w.status INTO v_text FROM pg_catalog.pg_stat_wal_receiver w;
        v_age := extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp());
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'replication', CASE WHEN v_text IS DISTINCT FROM 'streaming' THEN 'critical' ELSE 'ok' END,
             coalesce(v_text, 'no WAL receiver')
                 || CASE WHEN v_age IS NULL THEN '' ELSE format(', last replayed commit %s s ago', round(v_age::numeric)) END,
             CASE WHEN v_text IS DISTINCT FROM 'streaming' THEN 'this standby does not receive WAL from the primary'
                  ELSE 'this standby follows the primary' END]));
    ELSE
        SELECT count(*), count(*) FILTER (WHERE r.sync_state IN ('sync', 'quorum')),
               max(extract(epoch FROM r.replay_lag))
          INTO v_n, v_sync, v_age
          FROM pg_catalog.pg_stat_replication r WHERE r.state = 'streaming';
        v_text := pg_catalog.current_setting('synchronous_standby_names');
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'replication',
             CASE WHEN v_text <> '' AND v_sync = 0 THEN 'critical'
                  WHEN v_n = 0 THEN 'warning'
                  WHEN coalesce(v_age, 0) > 60 THEN 'warning' ELSE 'ok' END,
             format('%s streaming standby(s), %s synchronous, replay lag %s s', v_n, v_sync, coalesce(round(v_age::numeric, 1), 0)),
             CASE WHEN v_text <> '' AND v_sync = 0
                      THEN 'synchronous_standby_names is set and no synchronous standby is connected: commits wait'
                  WHEN v_n = 0 THEN 'no standby: the loss of this server loses the service (requirements Q5)'
                  WHEN v_text = '' THEN 'asynchronous: a failover may lose the last acknowledged reports (docs/operations.md)'
                  ELSE 'a synchronous standby has every acknowledged report' END]));
    END IF;

    -- the WAL archive (point-in-time recovery)
    SELECT a.archived_count, a.failed_count,
           coalesce(a.last_failed_time > coalesce(a.last_archived_time, '-infinity'), false) AS failing
      INTO rows_
      FROM pg_catalog.pg_stat_archiver a;
    v_text := pg_catalog.current_setting('archive_mode');
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'wal_archive',
         CASE WHEN v_text = 'off' THEN 'warning'
              WHEN rows_.failing THEN 'critical' ELSE 'ok' END,
         CASE WHEN v_text = 'off' THEN 'archive_mode = off'
              ELSE format('%s archived, %s failed', rows_.archived_count, rows_.failed_count) END,
         CASE WHEN v_text = 'off' THEN 'no WAL archive: backups cannot be restored to a point in time (docs/operations.md, Backups)'
              WHEN rows_.failing THEN 'the last attempt to archive WAL failed: see the server log and pgbackrest check'
              ELSE 'WAL is archived' END]));

    RETURN QUERY
        WITH h AS (
            SELECT e ->> 0 AS check_name, e ->> 1 AS status, e ->> 2 AS value, e ->> 3 AS detail, i
            FROM jsonb_array_elements(acc) WITH ORDINALITY x(e, i))
        SELECT 'overall',
               CASE max(CASE h.status WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END)
                   WHEN 2 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'ok' END,
               count(*) FILTER (WHERE h.status <> 'ok')::text || ' of ' || count(*) || ' checks not ok',
               coalesce(string_agg(h.check_name, ', ' ORDER BY h.i) FILTER (WHERE h.status <> 'ok'), 'every check is ok')
        FROM h
        UNION ALL
        (SELECT h.check_name, h.status, h.value, h.detail FROM h ORDER BY h.i);
END
$$;
COMMENT ON FUNCTION status_checker.system_health() IS
'The health of this node, check by check (role, workers, feeds, outbox backlog, dead messages, periodic jobs, replication, '
'WAL archive), each ok, warning or critical with the figure it judged; the first row, "overall", is the worst. Read-only: '
'poll it from monitoring, on the primary and on standbys';

-- for monitoring: the operator role and PostgreSQL's pg_monitor
GRANT USAGE ON SCHEMA status_checker TO status_checker_operator, pg_monitor;
GRANT EXECUTE ON FUNCTION status_checker.system_health() TO status_checker_operator, pg_monitor;

-- ---- src/web/web.sql
-- src/web/web.sql — what a reporter page needs from the SQL API: the page's
-- content for a personal link (report_form), and a report submission that a
-- double tap, a browser retry or a lost answer cannot store twice
-- (submit_report with an idempotency key).  The HTTP worker (src/web/http.c)
-- is one client of these functions; any other frontend can be another.

-- The idempotency key of the site's latest submission by link
-- (request_target.submit_key, src/requests/requests.sql).  A request
-- with the same key is a replay: it returns that report's id and stores
-- nothing.  One key per site is enough for the cases that occur (a double
-- tap, a retry after a lost answer: both repeat the site's newest
-- submission); an update of the site's status carries a new key.
CREATE FUNCTION status_checker.submit_report(token text, answers jsonb, idempotency_key text)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sc_submit_report_key';
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb, text) IS
'Submit a site''s report with its personal token, at most once per idempotency key (1 to 128 printable ASCII characters, '
'e.g. a UUID made when the form was shown): a replay of the site''s latest submission returns its report id and stores nothing';
GRANT EXECUTE ON FUNCTION status_checker.submit_report(text, jsonb, text) TO status_checker_api, status_checker_reporter, status_checker_gateway;

-- report_form: src/web/report_form.sql (replaced by upgrades)

-- ---------------------------------------------------------------- dashboard
--
-- Tenant users sign in to the dashboard with a password (argon2id, from
-- libargon2: src/web/password.c).  The gateway (the HTTP worker) checks it
-- with web_login and then acts for the user with set_app_user, so that the
-- dashboard reads the views with the user's own role under row-level
-- security.  Passwords and sessions are in tables nobody but the API
-- functions may read.

CREATE FUNCTION status_checker._password_hash(password text) RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_password_hash';
CREATE FUNCTION status_checker._password_verify(hash text, password text) RETURNS boolean
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_password_verify';

CREATE TABLE status_checker.web_login (
    tenant_id      bigint NOT NULL,
    user_id        bigint NOT NULL,
    password_hash  text NOT NULL,            -- argon2id, PHC string format
    failures       integer NOT NULL DEFAULT 0,   -- failed sign-ins (not from a trusted device) since the last success
    throttled_until timestamptz,             -- until then, sign-ins not from a trusted device are not checked (0.10.1)
    changed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    throttled      integer NOT NULL DEFAULT 0,   -- sign-ins refused unchecked while throttled, since the last success (0.10.1)
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_login IS
'Dashboard passwords of a tenant''s users (argon2id hashes), failed sign-ins and how long sign-ins are slowed; read only by the API functions';
ALTER TABLE status_checker.web_login ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.web_login FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.web_login
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

CREATE TABLE status_checker.web_session (
    tenant_id     bigint NOT NULL,
    session_hash  bytea NOT NULL,            -- SHA-256 of the cookie's value
    user_id       bigint NOT NULL,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    seen_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, session_hash),
    UNIQUE (session_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_session IS
'Dashboard sessions: the hash of each session cookie, its user and CSRF token; a session ends after 2 hours idle or 12 hours';
ALTER TABLE status_checker.web_session ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.web_session FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.web_session
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

-- password changes and failed sign-ins (the failures column) are audited
DO $$
DECLARE
    op text;
BEGIN
    FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('CREATE TRIGGER audit_%1$s AFTER %2$s ON status_checker.web_login '
                       'REFERENCING %3$s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION status_checker._audit_changes(''tenant_id'', ''user_id'')',
                       op, upper(op),
                       CASE op WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                               WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                               ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END);
    END LOOP;
END
$$;

CREATE TYPE status_checker.web_login_result AS (
    ok            boolean,
    reason        text,        -- NULL, or 'wrong' for every failure (unknown user, wrong password, throttled)
    session_token text,
    csrf_token    text,
    role          text,
    locked_until  timestamptz, -- always NULL since 0.10.1: no account is locked (kept for gateways that read it)
    device_token  text         -- on success: the value of the browser's device cookie (0.10.1)
);
COMMENT ON TYPE status_checker.web_login_result IS 'The outcome of web_login';

CREATE TYPE status_checker.web_session_user AS (tenant_id bigint, login text, role text, csrf_token text);
COMMENT ON TYPE status_checker.web_session_user IS 'The user of a dashboard session (web_session_user)';

-- set_user_password, web_login and web_session_user: src/web/sign_in.sql
-- (sign-ins slowed, never locked, and trusted devices, 0.10.1).

CREATE OR REPLACE FUNCTION status_checker.web_logout(session_token text)
    RETURNS void
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM status_checker.web_session WHERE session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
$$;
COMMENT ON FUNCTION status_checker.web_logout(text) IS 'For gateways: end a dashboard session';
GRANT EXECUTE ON FUNCTION status_checker.web_logout(text) TO status_checker_api, status_checker_gateway;

CREATE OR REPLACE FUNCTION status_checker.purge_web_sessions()
    RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM status_checker.web_session
         WHERE seen_at < now() - interval '2 hours' OR created_at < now() - interval '12 hours'
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION status_checker.purge_web_sessions() IS
'Delete the dashboard sessions that have ended (2 hours idle, 12 hours in all); returns how many. Run hourly by schedule_jobs()';
GRANT EXECUTE ON FUNCTION status_checker.purge_web_sessions() TO status_checker_api, status_checker_operator;

-- Everything the dashboard shows for one request, in one document; read
-- with the caller's privileges (row-level security: another tenant's
-- request does not exist).
CREATE OR REPLACE FUNCTION status_checker.request_dashboard(request_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    result jsonb;
BEGIN
    -- under the caller's row-level security: another tenant's request does not exist (23503)
    r := status_checker._require_request(request_dashboard.request_id);
    SELECT jsonb_build_object(
        'request', (SELECT jsonb_build_object(
                        'id', q.request_id, 'title', q.title, 'state', q.state, 'drill', q.drill,
                        'created_at', q.created_at, 'deadline', q.deadline,
                        'event', (SELECT jsonb_build_object('summary', status_checker._event_title(e), 'max_shindo', e.max_shindo::text,
                                                            'origin_time', e.origin_time)
                                  FROM status_checker.event e WHERE e.event_id = q.event_id),
                        'targets', q.targets, 'responded', q.responded, 'response_rate', q.response_rate,
                        'level_counts', q.level_counts, 'worst_level', q.worst_level, 'worst_color', q.worst_color)
                    FROM status_checker.request_summary q WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id),
        'levels', (SELECT jsonb_agg(jsonb_build_object('level', fl.level, 'label', jsonb_build_object('ja', fl.label_ja, 'en', fl.label_en),
                                                       'color', fl.color, 'icon', fl.icon) ORDER BY fl.level)
                   FROM status_checker.form f, status_checker._form_levels(f.definition) fl
                   WHERE f.tenant_id = r.tenant_id AND f.form_id = r.form_id),
        'no_answer', (SELECT jsonb_build_object('color', n.color, 'icon', n.icon) FROM status_checker._no_answer_style() n),
        'groups', coalesce((SELECT jsonb_agg(jsonb_build_object('id', g.group_id, 'path', g.group_path, 'depth', g.depth,
                                                                'targets', g.targets, 'responded', g.responded,
                                                                'worst_level', g.worst_level, 'color', g.color) ORDER BY g.group_path)
                            FROM status_checker.group_rollup g WHERE g.tenant_id = r.tenant_id AND g.request_id = r.request_id), '[]'),
        'sites', coalesce((SELECT jsonb_agg(jsonb_build_object('code', s.site_code, 'name', s.site_name, 'group', s.group_path,
                                                               'level', s.level, 'label', jsonb_build_object('ja', s.level_label, 'en', s.level_label_en),
                                                               'color', s.color, 'icon', s.icon, 'lat', s.lat, 'lon', s.lon,
                                                               'reported_at', s.last_reported_at, 'reports', s.report_count,
                                                               'late', s.late, 'shindo', t.asked_shindo::text,
                                                               'shindo_rank', status_checker.shindo_ordinal(t.asked_shindo))
                                             ORDER BY s.level DESC NULLS FIRST, t.asked_shindo DESC NULLS LAST, s.site_code)
                           FROM status_checker.site_status s
                           JOIN status_checker.request_target t ON t.tenant_id = s.tenant_id AND t.request_id = s.request_id
                                                               AND t.site_id = s.site_id
                           WHERE s.tenant_id = r.tenant_id AND s.request_id = r.request_id), '[]'),
        'timeline', coalesce((SELECT jsonb_agg(jsonb_build_object('minute', m.minute, 'responded', m.responded) ORDER BY m.minute)
                              FROM status_checker.response_timeline m WHERE m.tenant_id = r.tenant_id AND m.request_id = r.request_id), '[]'))
      INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.request_dashboard(bigint) IS
'Everything a dashboard shows for one request, as one document: the request and its counts, the form''s levels (labels, colours, icons), '
'the group roll-up, every site (status, position, intensity it was asked at; unanswered first, the most shaken first) and the response timeline';
GRANT EXECUTE ON FUNCTION status_checker.request_dashboard(bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- status_matrix_csv: src/web/csv_export.sql.

-- What the HTTP workers have done since the server started (shared memory;
-- NULLs when the library is not preloaded).  system_health() shows it.
CREATE OR REPLACE FUNCTION status_checker.http_counters(OUT requests bigint, OUT reports bigint, OUT refused bigint)
    RETURNS record
    LANGUAGE c VOLATILE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_http_counters';
COMMENT ON FUNCTION status_checker.http_counters() IS
'The HTTP workers since the server started, all together: requests answered, reports stored through them, requests refused (429) '
'for too many wrong links or passwords from one address';
GRANT EXECUTE ON FUNCTION status_checker.http_counters() TO status_checker_operator, pg_monitor;

-- ---- src/web/sign_in.sql
-- src/web/sign_in.sql — dashboard passwords, sign-in and sessions.
-- Written to be replayed (CREATE OR REPLACE, CREATE TABLE IF NOT EXISTS):
-- an upgrade script can replay the same text.
--
-- Sign-ins are slowed, never locked (0.10.1).  Until then five wrong
-- passwords locked an account for 15 minutes and the lock was checked
-- before the password: anyone who knew a login could keep its owner out
-- for good, and a locked login answered differently from an unknown one.
-- Now:
--   - a browser that signed in before holds a device token (a cookie the
--     gateway keeps, OWASP's "device cookie"): its sign-ins are always
--     checked, whatever others try (after five wrong passwords of its own
--     it is trusted no more);
--   - sign-ins from anywhere else are slowed once they fail: after five
--     failures in a row, a sign-in is checked only 15 seconds after the
--     last failure, then 30, 60 … up to 15 minutes; one that comes earlier
--     is refused unchecked (and counted);
--   - every failure gives the same answer ('wrong') and costs the same
--     (an argon2id hash is computed in every case);
--   - the gateway slows each client address as well (the HTTP worker:
--     src/web/http.c).

CREATE TABLE IF NOT EXISTS status_checker.web_device (
    tenant_id    bigint NOT NULL,
    user_id      bigint NOT NULL,
    device_hash  bytea NOT NULL,             -- SHA-256 of the device cookie's value
    failures     integer NOT NULL DEFAULT 0, -- wrong passwords from this device since its last success
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    used_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, user_id, device_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_device IS
'Browsers a dashboard user signed in from (hashes of their device cookies): their sign-ins are not slowed by other people''s failures; '
'read only by the API functions';
ALTER TABLE status_checker.web_device ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.web_device FORCE ROW LEVEL SECURITY;
-- (dropped first: this file is written to be replayed)
DROP POLICY IF EXISTS tenant_isolation ON status_checker.web_device;
CREATE POLICY tenant_isolation ON status_checker.web_device
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

CREATE OR REPLACE FUNCTION status_checker.set_user_password(tenant_id bigint, login text, password text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('set_user_password', ARRAY['tenant_id', 'login', 'password'],
                                     ARRAY[set_user_password.tenant_id::text, set_user_password.login,
                                           CASE WHEN set_user_password.password IS NOT NULL THEN '' END]);
    IF char_length(set_user_password.password) < 10 OR char_length(set_user_password.password) > 200 THEN
        RAISE EXCEPTION 'a password has 10 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A long passphrase is best; any characters may be used.';
    END IF;
    u := status_checker._require_user(set_user_password.tenant_id, set_user_password.login);
    INSERT INTO status_checker.web_login AS w (tenant_id, user_id, password_hash)
    VALUES (u.tenant_id, u.user_id, status_checker._password_hash(set_user_password.password))
    ON CONFLICT (tenant_id, user_id)
    DO UPDATE SET password_hash = EXCLUDED.password_hash, failures = 0, throttled_until = NULL, throttled = 0, changed_at = now();
    -- a new password ends the user's sessions, and no browser is trusted with it yet
    DELETE FROM status_checker.web_session s WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id;
    DELETE FROM status_checker.web_device d WHERE d.tenant_id = u.tenant_id AND d.user_id = u.user_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_user_password(bigint, text, text) IS
'Set a user''s dashboard password (10 to 200 characters, stored as an argon2id hash); ends the user''s sessions, forgets its trusted browsers '
'and lifts any slowing of its sign-ins. Admins only';
ALTER FUNCTION status_checker.set_user_password(bigint, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_user_password(bigint, text, text) TO status_checker_admin;

-- Sign in: not an error when it fails, so that the failure is counted (an
-- exception would roll the count back).
CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text, device_token text)
    RETURNS status_checker.web_login_result
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    -- the hash of a password nobody uses, with the real ones' cost: checked
    -- instead when there is nothing to check, so that every failure takes as long
    decoy constant text := '$argon2id$v=19$m=19456,t=2,p=1$vECpmqnf2MSab0kxsEBRHA$YYX7Ha0Zee6PEwWwQlKSVPNYQvtxdd6W8ImXJUr8SAg';
    u status_checker.app_user;
    w status_checker.web_login;
    d status_checker.web_device;
    r status_checker.web_login_result;
    trusted boolean := false;
    tok text;
BEGIN
    r.ok := false;
    r.reason := 'wrong';
    -- one attempt at a time per tenant and login name, known or not: the
    -- row lock below would otherwise make a second concurrent attempt wait
    -- for a known login only, and the wait would tell that it exists
    PERFORM pg_catalog.pg_advisory_xact_lock(1396925233,   -- 'SCWL'
                                             pg_catalog.hashtext(coalesce(web_login.tenant_id::text, '') || '/' || coalesce(web_login.login, '')));
    SELECT * INTO u FROM status_checker.app_user x
     WHERE x.tenant_id = web_login.tenant_id AND x.login = web_login.login;
    IF FOUND THEN
        SELECT * INTO w FROM status_checker.web_login x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id FOR UPDATE;
    END IF;
    IF w.user_id IS NOT NULL AND web_login.device_token IS NOT NULL THEN
        SELECT * INTO d FROM status_checker.web_device x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id
           AND x.device_hash = sha256(convert_to(web_login.device_token, 'UTF8'))
        FOR UPDATE;
        trusted := FOUND AND d.failures < 5 AND d.created_at > now() - interval '180 days';
    END IF;

    IF w.user_id IS NULL THEN
        -- an unknown login, or a user without a password
        PERFORM status_checker._password_verify(decoy, coalesce(web_login.password, ''));
        RETURN r;
    END IF;
    IF NOT trusted AND w.throttled_until > now() THEN
        -- slowed: refused unchecked (but at the same cost), and counted
        PERFORM status_checker._password_verify(decoy, coalesce(web_login.password, ''));
        UPDATE status_checker.web_login x SET throttled = x.throttled + 1
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        RETURN r;
    END IF;
    IF web_login.password IS NULL OR NOT status_checker._password_verify(w.password_hash, web_login.password) THEN
        IF trusted THEN
            UPDATE status_checker.web_device x SET failures = x.failures + 1
             WHERE x.tenant_id = d.tenant_id AND x.user_id = d.user_id AND x.device_hash = d.device_hash;
        END IF;
        -- from the fifth failure in a row on, the next check waits 15 s, 30 s, 1 min … 15 min
        UPDATE status_checker.web_login x
           SET failures = x.failures + 1,
               throttled_until = CASE WHEN x.failures + 1 >= 5
                                      THEN now() + least(interval '15 seconds' * power(2, least(x.failures + 1 - 5, 10)),
                                                         interval '15 minutes') END
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        RETURN r;
    END IF;

    -- the right password
    IF trusted THEN
        UPDATE status_checker.web_device x SET failures = 0, used_at = now()
         WHERE x.tenant_id = d.tenant_id AND x.user_id = d.user_id AND x.device_hash = d.device_hash;
        r.device_token := web_login.device_token;
    ELSE
        -- (a trusted browser's success leaves the slowing of the others as it is)
        IF w.failures > 0 OR w.throttled_until IS NOT NULL OR w.throttled > 0 THEN
            UPDATE status_checker.web_login x SET failures = 0, throttled_until = NULL, throttled = 0
             WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        END IF;
        r.device_token := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
        INSERT INTO status_checker.web_device (tenant_id, user_id, device_hash)
        VALUES (u.tenant_id, u.user_id, sha256(convert_to(r.device_token, 'UTF8')));
        -- a user's 20 browsers used last are remembered
        DELETE FROM status_checker.web_device x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id
           AND x.device_hash NOT IN (SELECT y.device_hash FROM status_checker.web_device y
                                     WHERE y.tenant_id = u.tenant_id AND y.user_id = u.user_id
                                     ORDER BY y.used_at DESC LIMIT 20);
    END IF;
    tok := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
    r.ok := true;
    r.reason := NULL;
    r.session_token := tok;
    r.csrf_token := translate(encode(status_checker._random_bytes(24), 'base64'), E'+/=\n', '-_');
    r.role := u.role;
    INSERT INTO status_checker.web_session (tenant_id, session_hash, user_id, csrf_token)
    VALUES (u.tenant_id, sha256(convert_to(tok, 'UTF8')), u.user_id, r.csrf_token);
    -- sessions that ended long ago go
    DELETE FROM status_checker.web_session s
     WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id
       AND (s.seen_at < now() - interval '2 hours' OR s.created_at < now() - interval '12 hours');
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_login(bigint, text, text, text) IS
'For gateways: check a user''s dashboard password, with the browser''s device token if it has one; on success a new session '
'(its cookie value and CSRF token, returned once) and the device token to keep. Failures are not errors (they are counted and audited) '
'and all say "wrong"; after five in a row, sign-ins not from a trusted browser are slowed (15 s, doubling, up to 15 min), never locked';
GRANT EXECUTE ON FUNCTION status_checker.web_login(bigint, text, text, text) TO status_checker_api, status_checker_gateway;

CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text)
    RETURNS status_checker.web_login_result
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN status_checker.web_login(tenant_id, login, password, NULL);
COMMENT ON FUNCTION status_checker.web_login(bigint, text, text) IS
'For gateways: web_login without a device token (a browser that has not signed in before)';
GRANT EXECUTE ON FUNCTION status_checker.web_login(bigint, text, text) TO status_checker_api, status_checker_gateway;

CREATE OR REPLACE FUNCTION status_checker.web_session_user(session_token text)
    RETURNS status_checker.web_session_user
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    s status_checker.web_session;
    r status_checker.web_session_user;
BEGIN
    SELECT * INTO s FROM status_checker.web_session x
     WHERE x.session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
       AND x.seen_at > now() - interval '2 hours' AND x.created_at > now() - interval '12 hours';
    IF FOUND THEN
        SELECT u.tenant_id, u.login, u.role, s.csrf_token INTO r
          FROM status_checker.app_user u WHERE u.tenant_id = s.tenant_id AND u.user_id = s.user_id;
    END IF;
    -- (a user deleted meanwhile has no session either: never a row of NULLs)
    IF r.tenant_id IS NULL OR r.login IS NULL OR r.role IS NULL OR r.csrf_token IS NULL THEN
        RAISE EXCEPTION 'no such session, or it has ended'
            USING ERRCODE = 'invalid_authorization_specification', HINT = 'Sign in again.';
    END IF;
    -- idle time counts from the last request (written at most once a minute)
    IF s.seen_at < now() - interval '1 minute' AND NOT pg_is_in_recovery() THEN
        UPDATE status_checker.web_session x SET seen_at = now()
         WHERE x.tenant_id = s.tenant_id AND x.session_hash = s.session_hash;
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_session_user(text) IS
'For gateways: the user of a dashboard session (tenant, login, role, CSRF token); 28000 for an unknown or ended session '
'(2 hours idle, 12 hours in all) or one whose user is gone';
GRANT EXECUTE ON FUNCTION status_checker.web_session_user(text) TO status_checker_api, status_checker_gateway;

-- ---- src/web/csv_export.sql
-- src/web/csv_export.sql — the status matrix as a spreadsheet file.
-- Written with CREATE OR REPLACE: an upgrade script can replay the same text.

-- The status matrix as CSV (UTF-8 with a byte order mark, so that Excel
-- opens Japanese correctly).  A cell that starts with = + - @, a tab or a
-- carriage return is prefixed with ' so that a spreadsheet does not run it
-- as a formula (OWASP's CSV injection; the tab and the carriage return
-- since 0.10.1).
CREATE OR REPLACE FUNCTION status_checker.status_matrix_csv(request_id bigint)
    RETURNS text
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    result text;
BEGIN
    PERFORM status_checker._require_request(status_matrix_csv.request_id);
    WITH cells AS (
        SELECT s.site_code, ARRAY[s.site_code, s.site_name, coalesce(s.group_path, ''), coalesce(s.level::text, ''),
                     coalesce(s.level_label, ''), coalesce(s.level_label_en, ''), coalesce(t.asked_shindo::text, ''),
                     coalesce(to_char(s.last_reported_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS'), ''),
                     s.report_count::text, coalesce(s.lat::text, ''), coalesce(s.lon::text, ''),
                     coalesce(s.answers::text, '')] AS v
        FROM status_checker.site_status s
        JOIN status_checker.request_target t ON t.tenant_id = s.tenant_id AND t.request_id = s.request_id AND t.site_id = s.site_id
        WHERE s.request_id = status_matrix_csv.request_id
    )
    SELECT U&'\FEFF' || 'site_code,site_name,group,level,label_ja,label_en,asked_shindo,last_reported_at_jst,reports,lat,lon,answers' || E'\r\n'
           || coalesce(string_agg((SELECT string_agg('"' || replace(CASE WHEN left(x, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' || x ELSE x END,
                                                              '"', '""') || '"', ',' ORDER BY i)
                                   FROM unnest(c.v) WITH ORDINALITY u(x, i)), E'\r\n' ORDER BY c.site_code) || E'\r\n', '')
      INTO result
      FROM cells c;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.status_matrix_csv(bigint) IS
'The status matrix of a request as CSV (UTF-8 with BOM, CRLF, every cell quoted; cells that a spreadsheet could run as a formula prefixed with '')';
GRANT EXECUTE ON FUNCTION status_checker.status_matrix_csv(bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;


-- ---- src/web/report_form.sql
-- src/web/report_form.sql — the reporter page's content for a personal link.
-- Written with CREATE OR REPLACE: one text for the install and the upgrades.

-- What the reporter page shows for a request target, by the target's key
-- or its token's hash (report_form picks the row).  Internal.
CREATE OR REPLACE VIEW status_checker._report_form_document WITH (security_invoker = true) AS
SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id,
       jsonb_build_object(
           'request', jsonb_build_object(
               'id', r.request_id, 'title', r.title, 'message', r.message, 'state', r.state,
               'drill', r.drill, 'deadline', r.deadline, 'cancel_reason', r.cancel_reason,
               'event', CASE WHEN e.event_id IS NOT NULL THEN jsonb_build_object(
                            'summary', status_checker._event_title(e),
                            'max_shindo', e.max_shindo::text,
                            'origin_time', e.origin_time) END),
           'tenant', tn.name,
           'site', jsonb_build_object(
               'code', s.code, 'name', s.name,
               'shindo', t.asked_shindo::text,
               'shindo_label', CASE WHEN t.asked_shindo IS NOT NULL THEN jsonb_build_object(
                                   'ja', status_checker.shindo_label(t.asked_shindo, 'ja'),
                                   'en', status_checker.shindo_label(t.asked_shindo, 'en')) END),
           'form', f.definition,
           'latest', CASE WHEN p.report_id IS NOT NULL THEN jsonb_build_object(
                         'report_id', p.report_id, 'answers', p.answers, 'level', p.level,
                         'color', p.color, 'icon', p.icon, 'submitted_at', p.submitted_at,
                         'report_count', t.report_count) END) AS document
  FROM status_checker.request_target t
  JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
  JOIN status_checker.tenant tn ON tn.tenant_id = t.tenant_id
  JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
  JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
  LEFT JOIN status_checker.event e ON e.event_id = r.event_id
  LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id;
COMMENT ON VIEW status_checker._report_form_document IS
'Internal (report_form): the reporter page''s document of each request target: request, event, tenant, site, form version, latest report';
GRANT SELECT ON status_checker._report_form_document TO status_checker_viewer, status_checker_operator;

-- The reporter page's content for a personal link.  Read-only: opening a
-- link (a mail scanner does it first) uses up and changes nothing.
CREATE OR REPLACE FUNCTION status_checker.report_form(token text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    h bytea := CASE WHEN token IS NOT NULL THEN status_checker._token_hash(token) END;
    result jsonb;
BEGIN
    -- the target by the token's hash; if none has it, the target a first
    -- link names (0.9.0), if the link's token is that target's first
    SELECT d.document INTO result FROM status_checker._report_form_document d WHERE d.token_hash = h;
    IF result IS NULL AND h IS NOT NULL THEN
        SELECT d.document INTO result
        FROM status_checker._first_link_target(token) k
        JOIN status_checker._report_form_document d
          ON d.tenant_id = k.tenant_id AND d.request_id = k.request_id AND d.site_id = k.site_id;
    END IF;
    IF result IS NULL THEN
        IF h IS NOT NULL AND EXISTS (SELECT 1 FROM status_checker.request_token_revoked v WHERE v.token_hash = h) THEN
            -- CONSTRAINT tells a replaced link from an unknown one (same SQLSTATE) to callers such as the reporter page
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification', HINT = 'Use the link in the most recent message.',
                      CONSTRAINT = 'report_token_replaced';
        END IF;
        RAISE EXCEPTION 'unknown report token'
            USING ERRCODE = 'invalid_authorization_specification', DETAIL = 'The link is wrong or incomplete.',
                  HINT = 'Open the link exactly as it appears in the message.';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.report_form(text) IS
'What a reporter page shows for a personal link: the request (title, state, deadline, event), the site (and the intensity it was asked at), '
'the form version to answer and the site''s latest report. Read-only: opening a link changes nothing';
GRANT EXECUTE ON FUNCTION status_checker.report_form(text) TO status_checker_api, status_checker_reporter, status_checker_gateway;


-- ---- src/security/privileges.sql
-- src/security/privileges.sql — status_checker_api's privileges and the
-- schema's.  Runs last in the install script (before finish.sql), so that
-- it covers every table and function that exists.  (No upgrade runs it:
-- an upgrade script grants what it creates itself.)
--
-- Each definition declares its privileges next to it: a function how it
-- runs (SECURITY DEFINER SET search_path = ..., ALTER FUNCTION ... OWNER
-- TO status_checker_api) and who may call it (GRANT EXECUTE); a table its
-- row-level security (a tenant table: ENABLE and FORCE ROW LEVEL SECURITY
-- and the policy tenant_isolation, USING and WITH CHECK
-- status_checker._may_see(tenant_id)) and who may read it; a view who may
-- read it.  What stays here cannot be said per object:
--   - status_checker_api's privileges are a policy over the whole schema
--     (GRANT ... ON ALL TABLES / SEQUENCES / FUNCTIONS, so that no new
--     object is forgotten) followed by the exceptions taken back from it
--     (the key tables and the key readers); an exception written next to
--     its definition would come before the GRANT ... ON ALL and be undone
--     by it.  Where a function grants EXECUTE to a role it names
--     status_checker_api first, which keeps the order of its privileges
--     what it has always been.
--   - USAGE on the schema, for every role, once every object exists.

-- ------------------------------------------------------------ API functions
--
-- The tenant API runs as status_checker_api (SECURITY DEFINER): callers need
-- no table privileges, and row-level security still confines every
-- statement to the caller's tenant, so another tenant's request, site or
-- form simply does not exist for them.  A few functions must look across
-- tenants (a report link names its tenant itself; the audit chain is sealed
-- for all tenants at once): they run as the extension's owner and check
-- the tenant themselves (_require_tenant).  Each such function says so in
-- its definition (SECURITY DEFINER SET search_path = ..., and ALTER
-- FUNCTION ... OWNER TO status_checker_api after it, for the tenant API).

-- status_checker_api: everything the API functions touch, nothing they do not
GRANT USAGE ON SCHEMA status_checker TO status_checker_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA status_checker TO status_checker_api;
REVOKE ALL ON status_checker.signing_key, status_checker.deletion_certificate, status_checker.data_key,
              status_checker.audit_sealer, status_checker.audit_gap FROM status_checker_api;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA status_checker TO status_checker_api;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA status_checker TO status_checker_api;
-- ... but nothing that reads a key or works across tenants.  The API
-- functions take input from callers; if a caller ever got code of its own
-- to run inside one (0.10.0: a trigger on a temporary table that a
-- function reused), that code would hold status_checker_api's privileges.
-- So they are only what the tenant API needs under row-level security:
-- links come from _target_token (C, the key stays there), and the key
-- readers, the master key's functions and the dispatcher's claim are for
-- the extension's owner alone.  (Since 0.10.1; test/pgtap/14_attacks.sql.)
REVOKE ALL ON status_checker.link_key FROM status_checker_api;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'status_checker'::regnamespace
          AND p.proname IN ('_link_key', '_first_link_valid', '_encrypt_bytes', '_decrypt_bytes', '_decrypt_secrets',
                            '_master_wrap', '_master_unwrap', '_rewrap', '_new_data_key', '_forget_keys',
                            '_claim_messages')
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM status_checker_api, PUBLIC', f);
    END LOOP;
END
$$;

-- ------------------------------------------------------------ tenant roles

-- The tables and views each role may read are granted next to their
-- definitions, as the functions each role may call are.  What stays here
-- is the schema itself: USAGE is granted after every object exists.
GRANT USAGE ON SCHEMA status_checker TO status_checker_viewer, status_checker_gateway;

-- ------------------------------------------------------------ the operator
--
-- The service operator runs the installation for every tenant (superusers
-- are operators too): tenants and their first administrator, mapping
-- logins, deleting a tenant, feeds and area codes, keys, jobs, retention,
-- monitoring.  These functions run as the extension's owner (they reach
-- every tenant and the key tables) and are the operator's alone.  Until
-- 0.10.1 nothing was granted to status_checker_operator, so only a
-- superuser could do any of this.  The operator reads what a viewer reads,
-- for every tenant (row-level security lets an operator see all), and the
-- encryption status, the data keys (wrapped) and the audit log; not
-- contacts or users in clear.  Each table and view grants that next to its
-- definition (TO status_checker_viewer, status_checker_operator).
GRANT USAGE ON SCHEMA status_checker TO status_checker_operator;

-- ---- src/common/finish.sql
-- src/common/finish.sql — last part of the install script: privileges.
--
-- Internal helpers (names starting with "_") are not for PUBLIC.  The
-- role model (admin/manager/reporter/viewer, gateway) and row-level
-- security arrive with the security domain; until then the extension's
-- objects are usable by their owner and by roles the DBA grants.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA status_checker FROM PUBLIC;
-- (procedures too: until 0.10.1 reencrypt_tenant kept PUBLIC's default EXECUTE)
REVOKE ALL ON ALL PROCEDURES IN SCHEMA status_checker FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    status_checker.shindo_in(cstring), status_checker.shindo_out(status_checker.shindo),
    status_checker.shindo_recv(internal), status_checker.shindo_send(status_checker.shindo),
    status_checker.shindo_eq(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_ne(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_lt(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_le(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_gt(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_ge(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_hash(status_checker.shindo),
    status_checker.shindo_hash_extended(status_checker.shindo, bigint),
    status_checker.shindo_larger(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_label(status_checker.shindo, text),
    status_checker.shindo_from_p2pquake(integer),
    status_checker.shindo_from_instrumental(numeric),
    status_checker.shindo_ordinal(status_checker.shindo),
    status_checker.normalize_municipality_code(text),
    status_checker.default_form_definition(text),
    status_checker.validate_form_definition(jsonb),
    status_checker.min(status_checker.shindo),
    status_checker.max(status_checker.shindo)
    TO PUBLIC;
GRANT USAGE ON SCHEMA status_checker TO PUBLIC;
GRANT USAGE ON TYPE status_checker.shindo TO PUBLIC;

-- pg_dump must dump the data of every table (they are extension members,
-- which pg_dump otherwise skips) and the state of their identity sequences
-- — except the tables whose rows the install script writes (the built-in
-- templates): CREATE EXTENSION in the restored database makes them.
DO $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'status_checker' AND c.relkind IN ('r', 'S')
          AND c.relname NOT IN ('default_template')
        ORDER BY c.relkind, c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(rel, '');
    END LOOP;
END
$$;
