-- status_checker 0.3.0 → 0.4.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/security/upgrade-0.3.0--0.4.0.sql
-- src/security/upgrade-0.3.0--0.4.0.sql — what only the upgrade from 0.3.0 does.
--
-- 0.4.0 adds objects (src/security/*.sql) and moves schedule_jobs() to
-- src/common/jobs.sql (CREATE OR REPLACE); no existing table changes.
-- Reports stored before the upgrade are chained by the first
-- seal_audit_log(); administrative changes are recorded from now on.

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
-- The tenant context (src/security/tenancy.c) comes from set_app_user (gateways) or
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

ALTER TABLE status_checker.app_user ADD COLUMN db_role name UNIQUE;
COMMENT ON COLUMN status_checker.app_user.db_role IS
'The database login of this user, if the user connects directly (map_db_role); NULL for users who come through a gateway';

CREATE FUNCTION status_checker._tenant() RETURNS bigint
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_tenant';
CREATE FUNCTION status_checker._is_operator() RETURNS boolean
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_is_operator';
CREATE FUNCTION status_checker._may_see(tenant_id bigint) RETURNS boolean
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_may_see';
CREATE FUNCTION status_checker._app_login() RETURNS text
    LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_app_login';
CREATE FUNCTION status_checker._set_context(tenant_id bigint, login text, role text) RETURNS void
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_set_context';

CREATE FUNCTION status_checker.reset_app_user() RETURNS void
    LANGUAGE c VOLATILE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_clear_context';
COMMENT ON FUNCTION status_checker.reset_app_user() IS
'For gateways: stop acting for the application user set by set_app_user (the end of the transaction does the same)';

CREATE FUNCTION status_checker.current_tenant() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY INVOKER AS $$
    SELECT status_checker._tenant()
$$;
COMMENT ON FUNCTION status_checker.current_tenant() IS
'The tenant this session acts for (set_app_user in this transaction, or the mapped database login), or NULL';

-- Replaces 0.1.0's version: a tenant the caller may not see does not exist
-- for it (the same error as a tenant that does not exist at all).
CREATE OR REPLACE FUNCTION status_checker._require_tenant(p_tenant_id bigint) RETURNS void
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

CREATE FUNCTION status_checker.set_app_user(tenant_id bigint, login text)
    RETURNS text
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('set_app_user', ARRAY['tenant_id', 'login'], ARRAY[set_app_user.tenant_id::text, set_app_user.login]);
    IF NOT (pg_has_role(session_user, 'status_checker_gateway', 'MEMBER')
            OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)) THEN
        RAISE EXCEPTION 'only a gateway may act for application users'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'GRANT status_checker_gateway TO the application server''s login.';
    END IF;
    SELECT * INTO u FROM status_checker.app_user x WHERE x.tenant_id = set_app_user.tenant_id AND x.login = set_app_user.login;
    IF NOT FOUND THEN
        -- the same answer for an unknown tenant and an unknown login
        RAISE EXCEPTION 'unknown user % of tenant %', quote_literal(set_app_user.login), set_app_user.tenant_id
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    PERFORM status_checker._set_context(u.tenant_id, u.login, u.role);
    RETURN 'status_checker_' || u.role;
END
$$;
COMMENT ON FUNCTION status_checker.set_app_user(bigint, text) IS
'For gateways: act for this application user until the end of the transaction; returns the group role to SET LOCAL ROLE to '
'(the context holds only under exactly that role)';

CREATE FUNCTION status_checker.map_db_role(tenant_id bigint, login text, db_role name)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
    r pg_roles;
BEGIN
    PERFORM status_checker._no_nulls('map_db_role', ARRAY['tenant_id', 'login'], ARRAY[map_db_role.tenant_id::text, map_db_role.login]);
    u := status_checker._require_user(map_db_role.tenant_id, map_db_role.login);
    IF u.db_role IS NOT NULL THEN
        EXECUTE format('REVOKE %I FROM %I', 'status_checker_' || u.role, u.db_role);
    END IF;
    IF map_db_role.db_role IS NOT NULL THEN
        SELECT * INTO r FROM pg_roles x WHERE x.rolname = map_db_role.db_role;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'role % does not exist', quote_ident(map_db_role.db_role) USING ERRCODE = 'undefined_object';
        END IF;
        IF r.rolsuper OR r.rolbypassrls OR r.rolname LIKE 'status\_checker\_%'
           OR pg_has_role(r.oid, 'status_checker_operator', 'USAGE') THEN
            RAISE EXCEPTION 'role % cannot be mapped to a tenant''s user', quote_ident(map_db_role.db_role)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Superusers, operators, roles that bypass row-level security and status_checker''s own roles see every tenant or none.';
        END IF;
        IF EXISTS (SELECT 1 FROM status_checker.app_user x WHERE x.db_role = map_db_role.db_role AND x.user_id <> u.user_id) THEN
            RAISE EXCEPTION 'role % is already mapped to another user', quote_ident(map_db_role.db_role)
                USING ERRCODE = 'unique_violation';
        END IF;
        EXECUTE format('GRANT %I TO %I', 'status_checker_' || u.role, map_db_role.db_role);
    END IF;
    UPDATE status_checker.app_user x SET db_role = map_db_role.db_role
    WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id;
END
$$;
COMMENT ON FUNCTION status_checker.map_db_role(bigint, text, name) IS
'For operators: let a database login act directly as a tenant''s user (granting it the group role of the user''s role); NULL removes the mapping';

-- Row-level security and the grants: src/security/privileges.sql (the last part, once every table exists).

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
CREATE OR REPLACE VIEW status_checker.channel_list WITH (security_invoker = true) AS
SELECT c.channel_id, c.tenant_id, c.kind, c.name, c.config,
       h.has_password, h.has_secret,
       c.enabled, c.created_at
FROM status_checker.channel c
LEFT JOIN LATERAL status_checker._channel_has_secrets(c.tenant_id, c.channel_id) h ON true;

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
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION status_checker.rotate_signing_key() RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- serialise with concurrent first use
    LOCK TABLE status_checker.signing_key IN SHARE ROW EXCLUSIVE MODE;
    UPDATE status_checker.signing_key SET retired_at = pg_catalog.now(), private_key = NULL WHERE retired_at IS NULL;
    RETURN (status_checker._current_signing_key()).key_id;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_signing_key() IS
'Make a new installation signing key and destroy the old private key (its public key stays, so what it signed still verifies); returns the new key id';

CREATE VIEW status_checker.signing_keys WITH (security_invoker = true) AS
SELECT key_id, status_checker._ed25519_public_pem(public_key) AS public_key_pem, created_at, retired_at
FROM status_checker.signing_key;
COMMENT ON VIEW status_checker.signing_keys IS
'The installation''s signing keys (public halves only): the current one and the retired ones';

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

CREATE TABLE status_checker.audit_head (
    tenant_id   bigint PRIMARY KEY,
    entry_no    bigint NOT NULL,
    chain_hash  bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.audit_head IS
'Per tenant, the last entry of its audit chain (a shortened chain no longer matches it)';

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

-- ------------------------------------------------------------ recording

-- Statement-level triggers with transition tables: one INSERT into the log
-- per statement, however many rows it touched (import_sites).  Trigger
-- arguments: the table's key columns.  Sessions with row_security = off
-- (pg_dump scripts and pg_restore set it) are restoring rows, not changing
-- them, and are not recorded (the restored log already holds the history).
CREATE FUNCTION status_checker._audit_changes() RETURNS trigger
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
    IF current_setting('row_security') = 'off' THEN
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
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION status_checker.verify_audit_log(tenant_id bigint, head jsonb)
    RETURNS TABLE (ok boolean, entries bigint, first_bad_entry bigint, reason text)
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION status_checker.prune_audit_log(keep interval DEFAULT '1 year')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION status_checker.set_user_role(tenant_id bigint, login text, role text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
    IF u.db_role IS NOT NULL AND u.role <> set_user_role.role THEN
        EXECUTE format('REVOKE %I FROM %I', 'status_checker_' || u.role, u.db_role);
        EXECUTE format('GRANT %I TO %I', 'status_checker_' || set_user_role.role, u.db_role);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_user_role(bigint, text, text) IS
'Change a user''s role (admin, manager, reporter, viewer), and the group role of its database login if it has one; '
'the last administrator of a tenant keeps the role';

CREATE FUNCTION status_checker.remove_user(tenant_id bigint, login text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
        EXECUTE format('REVOKE %I FROM %I', 'status_checker_' || u.role, u.db_role);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.remove_user(bigint, text) IS
'Remove a user from a tenant (and from the groups it manages, and its database login from the group role); '
'the last administrator cannot be removed';

-- The same rule for changes made without these functions: checked at
-- commit, for every tenant that still exists (delete_tenant removes the
-- tenant itself in the same transaction).
CREATE FUNCTION status_checker._check_admin_left() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
CREATE CONSTRAINT TRIGGER app_user_admin_left
    AFTER UPDATE OF role OR DELETE ON status_checker.app_user
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION status_checker._check_admin_left();

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

CREATE FUNCTION status_checker.delete_tenant(tenant_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t status_checker.tenant;
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

CREATE FUNCTION status_checker.verify_deletion_certificate(certificate jsonb)
    RETURNS boolean
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION status_checker._encrypt(tenant_id bigint, context text, value text) RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt';
CREATE FUNCTION status_checker._decrypt(tenant_id bigint, context text, value text) RETURNS text
    LANGUAGE c STABLE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_decrypt';
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
    LANGUAGE c VOLATILE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_master_key_id';
COMMENT ON FUNCTION status_checker.master_key_id() IS
'The id of the current master key (the first 8 bytes of its SHA-256, in hex) — never the key';

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

ALTER TABLE status_checker.site_contact ADD COLUMN address_key bytea;
COMMENT ON COLUMN status_checker.site_contact.address_key IS
'Blind index of the address (HMAC-SHA256 under the tenant''s index key): finds the same address again without storing it in clear';
ALTER TABLE status_checker.site_contact DROP CONSTRAINT site_contact_tenant_id_site_id_channel_address_key;
ALTER TABLE status_checker.link_key DROP CONSTRAINT link_key_key_check;

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

-- data stored by 0.3.0 (the upgrade): encrypted now, all or nothing; without a
-- master key the upgrade stops with the error that says how to configure one
UPDATE status_checker.site_contact SET address = address, name = name WHERE address NOT LIKE 'sc1:%';
UPDATE status_checker.app_user SET email = email WHERE email NOT LIKE 'sc1:%';
UPDATE status_checker.channel SET secrets = secrets WHERE secrets <> '{}';
UPDATE status_checker.link_key SET key = key WHERE status_checker._key_version(key) IS NULL;
UPDATE status_checker.outbox SET recipient = status_checker._encrypt(tenant_id, 'recipient', recipient)
WHERE channel_id IS NULL AND recipient NOT LIKE 'sc1:%';
ALTER TABLE status_checker.site_contact ALTER COLUMN address_key SET NOT NULL;
ALTER TABLE status_checker.site_contact
    ADD CONSTRAINT site_contact_address_key UNIQUE (tenant_id, site_id, channel, address_key);

-- ------------------------------------------------------------ reading

CREATE OR REPLACE FUNCTION status_checker._link_key(p_tenant_id bigint) RETURNS bytea
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

CREATE OR REPLACE VIEW status_checker.delivery_status WITH (security_invoker = true) AS
SELECT o.message_id, o.tenant_id, o.request_id, s.code AS site_code, o.channel_kind,
       status_checker._mask_recipient(o.channel_kind,
           CASE WHEN o.recipient LIKE 'sc1:%' THEN status_checker._decrypt(o.tenant_id, 'recipient', o.recipient)
                ELSE o.recipient END) AS recipient,
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

CREATE VIEW status_checker.contact_list WITH (security_invoker = true) AS
SELECT c.tenant_id, c.contact_id, s.code AS site_code, s.name AS site_name, c.channel,
       status_checker._decrypt(c.tenant_id, 'recipient', c.address) AS address,
       status_checker._decrypt(c.tenant_id, 'contact_name', c.name) AS name,
       c.created_at
FROM status_checker.site_contact c
JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id;
COMMENT ON VIEW status_checker.contact_list IS
'The contacts of the sites, decrypted: who receives each site''s report requests';

CREATE VIEW status_checker.user_list WITH (security_invoker = true) AS
SELECT u.tenant_id, u.user_id, u.login, status_checker._decrypt(u.tenant_id, 'recipient', u.email) AS email,
       u.role, u.db_role, u.created_at
FROM status_checker.app_user u;
COMMENT ON VIEW status_checker.user_list IS
'The users of each tenant, with their role and mail address (decrypted)';

-- ------------------------------------------------------------ rotation

CREATE FUNCTION status_checker.rotate_master_key() RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

CREATE FUNCTION status_checker.rotate_data_key(tenant_id bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

-- Re-encrypt up to batch_size values of a tenant that an older data key
-- encrypted; returns how many.  When none is left, older data keys are
-- destroyed (their rows deleted).
CREATE FUNCTION status_checker.reencrypt_batch(tenant_id bigint, batch_size integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
    INSERT INTO status_checker.site_contact AS c (tenant_id, site_id, channel, address, name)
    VALUES (add_site_contact.tenant_id, v_site, add_site_contact.channel, add_site_contact.address, add_site_contact.name)
    ON CONFLICT (tenant_id, site_id, channel, address_key) DO UPDATE
        SET name = coalesce(excluded.name, c.name)
    RETURNING c.contact_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.add_site_contact(bigint, text, text, text, text) IS
'Add (or rename) a contact of a site: channel email (an address) or webhook (a URL); returns the contact id; adding the same address again is a no-op';

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

-- ---- src/dispatch/claim.sql
-- src/dispatch/claim.sql — the dispatcher's claim: due messages, rendered.
--
-- Since 0.4.0 recipients, contact names, channel secrets and link keys are
-- stored encrypted; the claim decrypts what the messages being sent need
-- (link keys once per tenant, secrets once per channel) and nothing else.
-- Written with CREATE OR REPLACE: one text for the install and the upgrade.

-- Claim up to p_limit due messages (lease p_lease_ms) and return them
-- rendered, ready to send.  Messages that need not go out any more are
-- settled here (cancelled), and messages whose tenant has no enabled
-- channel of their kind wait.
CREATE OR REPLACE FUNCTION status_checker._claim_messages(p_limit integer, p_lease_ms integer)
    RETURNS TABLE (message_id bigint, tenant_id bigint, attempts integer, channel_id bigint, kind text, url text,
                   mail_from text, rcpt text, headers text, body text, secret text, tls text,
                   username text, password text, ca_file text)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF to_regclass('pg_temp._sc_claim') IS NULL THEN
        CREATE TEMP TABLE _sc_claim (
            tenant_id bigint, message_id bigint, request_id bigint, site_id bigint, contact_id bigint,
            user_id bigint, channel_kind text, recipient text, purpose text, seq integer,
            detail jsonb, attempts integer, via bigint, PRIMARY KEY (tenant_id, message_id)) ON COMMIT DELETE ROWS;
    ELSE
        DELETE FROM pg_temp._sc_claim;   -- a second claim in one transaction
    END IF;

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
        SET state = 'sending', attempts = o.attempts + 1,
            lease_until = pg_catalog.now() + p_lease_ms * interval '1 millisecond',
            via_channel_id = CASE WHEN o.channel_id IS NOT NULL THEN
                                 (SELECT ch.channel_id FROM status_checker.channel ch
                                  WHERE ch.tenant_id = o.tenant_id AND ch.channel_id = o.channel_id AND ch.enabled)
                             ELSE (SELECT ch.channel_id FROM status_checker.channel ch
                                   WHERE ch.tenant_id = o.tenant_id AND ch.kind = o.channel_kind AND ch.enabled
                                   ORDER BY ch.channel_id LIMIT 1) END
        WHERE o.ctid = ANY (ARRAY(SELECT c.tid FROM c))   -- a TID scan
        RETURNING o.tenant_id, o.message_id, o.request_id, o.site_id, o.contact_id, o.user_id,
                  o.channel_kind, o.recipient, o.purpose, o.seq, o.detail, o.attempts, o.via_channel_id
    )
    INSERT INTO pg_temp._sc_claim SELECT * FROM u;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- settled without sending: the request is no longer open (its
    -- cancellation notice excepted), or the site answered before its reminder
    WITH gone AS (
        SELECT c.tenant_id, c.message_id,
               CASE WHEN q.state <> 'open' THEN format('not sent: the request is %s', q.state)
                    ELSE 'not sent: the site answered before the reminder went out' END AS why
        FROM pg_temp._sc_claim c
        JOIN status_checker.request q ON q.tenant_id = c.tenant_id AND q.request_id = c.request_id
        WHERE (c.purpose <> 'cancellation' AND q.state <> 'open')
           OR (c.purpose = 'reminder' AND EXISTS (
                   SELECT 1 FROM status_checker.request_target rt
                   WHERE rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
                     AND rt.report_count > 0))
    ), upd AS (
        UPDATE status_checker.outbox o SET state = 'cancelled', lease_until = NULL, last_error = g.why, next_attempt_at = 'infinity'
        FROM gone g WHERE o.tenant_id = g.tenant_id AND o.message_id = g.message_id
        RETURNING o.tenant_id, o.message_id
    )
    DELETE FROM pg_temp._sc_claim c USING upd WHERE c.tenant_id = upd.tenant_id AND c.message_id = upd.message_id;

    -- no enabled channel: wait (without spending an attempt) until add_channel
    WITH w AS (
        UPDATE status_checker.outbox o
        SET state = 'queued', attempts = o.attempts - 1, lease_until = NULL,
            next_attempt_at = pg_catalog.now() + interval '5 minutes',
            last_error = format('waiting: tenant %s has no enabled %s channel (add_channel)', o.tenant_id, o.channel_kind)
        FROM pg_temp._sc_claim c
        WHERE c.via IS NULL AND o.tenant_id = c.tenant_id AND o.message_id = c.message_id
        RETURNING o.tenant_id, o.message_id
    )
    DELETE FROM pg_temp._sc_claim c USING w WHERE c.tenant_id = w.tenant_id AND c.message_id = w.message_id;

    -- the targets whose link goes out for the first time get their token
    -- (a random token of 0.2.0 is revoked and replaced)
    -- the link keys of the tenants concerned, decrypted once
    IF to_regclass('pg_temp._sc_link_keys') IS NULL THEN
        CREATE TEMP TABLE _sc_link_keys (tenant_id bigint PRIMARY KEY, key bytea) ON COMMIT DELETE ROWS;
    ELSE
        DELETE FROM pg_temp._sc_link_keys;
    END IF;
    INSERT INTO pg_temp._sc_link_keys
    SELECT x.tenant_id, status_checker._link_key(x.tenant_id) FROM (SELECT DISTINCT c.tenant_id FROM pg_temp._sc_claim c) x;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id
    FROM pg_temp._sc_claim c
    JOIN status_checker.request_target t ON t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id
    WHERE c.purpose IN ('request', 'reminder') AND t.token_gen = 0 AND t.token_hash IS NOT NULL
    ON CONFLICT DO NOTHING;
    UPDATE status_checker.request_target t
    SET token_gen = 1, token_issued_at = pg_catalog.now(),
        token_hash = status_checker._token_hash(status_checker._link_token(k.key, t.tenant_id, t.request_id, t.site_id, 1))
    FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.site_id FROM pg_temp._sc_claim c
          WHERE c.purpose IN ('request', 'reminder')) c
    JOIN pg_temp._sc_link_keys k ON k.tenant_id = c.tenant_id
    WHERE t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id AND t.token_gen = 0;

    RETURN QUERY
    WITH ctx AS MATERIALIZED (
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
        FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.purpose, c.via FROM pg_temp._sc_claim c) k
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
               CASE WHEN rt.token_gen > 0 AND c.purpose IN ('request', 'reminder') THEN
                   x.link_base || status_checker._link_token(lk.key, c.tenant_id, c.request_id, c.site_id, rt.token_gen) END AS link,
               rt.asked_shindo, g.path AS group_path,
               coalesce(status_checker._decrypt(sc.tenant_id, 'contact_name', sc.name), au.login) AS recipient_name
        FROM pg_temp._sc_claim c
        JOIN ctx x ON x.tenant_id = c.tenant_id AND x.request_id = c.request_id AND x.purpose = c.purpose AND x.via = c.via
        LEFT JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        LEFT JOIN status_checker.request_target rt
               ON rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
        LEFT JOIN pg_temp._sc_link_keys lk ON lk.tenant_id = c.tenant_id
        LEFT JOIN status_checker.site_contact sc ON sc.tenant_id = c.tenant_id AND sc.contact_id = c.contact_id
        LEFT JOIN status_checker.app_user au ON au.tenant_id = c.tenant_id AND au.user_id = c.user_id
    ), r AS (
        SELECT m.*, status_checker._fill(m.subject_tpl, VARIADIC sv.v) AS subject,
               status_checker._fill(m.body_tpl, VARIADIC sv.v) AS text_body
        FROM m
        CROSS JOIN LATERAL (SELECT ARRAY[
            'site_name', coalesce(m.site_name, ''), 'site_code', coalesce(m.site_code, ''),
            'group_name', coalesce(m.group_path, ''),
            'site_shindo', CASE WHEN m.asked_shindo IS NOT NULL THEN 'この拠点の震度: ' || status_checker.shindo_label(m.asked_shindo, 'ja') ELSE '' END,
            'site_shindo_en', CASE WHEN m.asked_shindo IS NOT NULL THEN 'Seismic intensity at this site: ' || status_checker.shindo_label(m.asked_shindo, 'en') ELSE '' END,
            'link', coalesce(m.link, ''), 'reminder_number', m.seq::text,
            'unanswered_count', CASE WHEN m.detail IS NULL THEN '0' ELSE jsonb_array_length(m.detail -> 'sites')::text END,
            'unanswered_sites', CASE WHEN m.detail IS NULL THEN '' ELSE
                (SELECT string_agg('・' || (y ->> 'code') || ' ' || (y ->> 'name'), E'\n') FROM jsonb_array_elements(m.detail -> 'sites') y) END,
            'recipient_name', coalesce(m.recipient_name, '')] AS v) sv
    )
    SELECT r.message_id, r.tenant_id, r.attempts, r.via, r.channel_kind,
           CASE WHEN r.channel_kind = 'email' THEN r.config ->> 'url' ELSE r.recipient END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || r.from_addr || '>' END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || coalesce((status_checker._mailbox(r.recipient)).addr, r.recipient) || '>' END,
           CASE WHEN r.channel_kind = 'email' THEN concat_ws(E'\n',
                    'From: ' || coalesce(status_checker._mime_header(r.from_name) || ' ', '') || '<' || r.from_addr || '>',
                    'To: ' || coalesce(status_checker._mime_header(nullif(r.recipient_name, '')) || ' ', '')
                           || '<' || coalesce((status_checker._mailbox(r.recipient)).addr, r.recipient) || '>',
                    'Subject: ' || status_checker._mime_header(r.subject),
                    'Date: ' || to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS "+0000"'),
                    'Message-ID: <' || r.idem || '@' || split_part(r.from_addr, '@', 2) || '>',
                    'Content-Language: ' || replace(r.langs, '+', ', '),
                    'Auto-Submitted: auto-generated',
                    'X-Auto-Response-Suppress: All',
                    'X-Status-Checker-Purpose: ' || r.purpose,
                    'X-Status-Checker-Idempotency-Key: ' || r.idem)
                ELSE 'Content-Type: application/json; charset=utf-8' || E'\nIdempotency-Key: ' || r.idem
                     || E'\nX-Status-Checker-Message-Id: ' || r.message_id || E'\nX-Status-Checker-Purpose: ' || r.purpose END,
           CASE WHEN r.channel_kind = 'email' THEN r.text_body
                WHEN r.format = 'slack' THEN jsonb_build_object('text', '*' || r.subject || '*' || E'\n' || r.text_body)::text
                -- the shared part (rendered once per context) and this message's part, both
                -- JSON objects, joined into one (json_build_object writes text directly)
                ELSE left(r.base_json, -1) || ', ' || substr(json_build_object(
                    'idempotency_key', r.idem, 'message_id', r.message_id,
                    'site', CASE WHEN r.site_id IS NOT NULL THEN json_build_object(
                                 'code', r.site_code, 'name', r.site_name, 'group', r.group_path,
                                 'shindo', r.asked_shindo::text) END,
                    'link', r.link,
                    'reminder_number', CASE WHEN r.purpose = 'reminder' THEN r.seq END,
                    'unanswered_sites', r.detail -> 'sites',
                    'subject', r.subject, 'text', r.text_body)::text, 2) END,
           r.secrets ->> 'secret',
           CASE WHEN r.channel_kind = 'email' THEN coalesce(r.config ->> 'starttls', 'require') END,
           r.config ->> 'username', r.secrets ->> 'password', r.config ->> 'ca_file'
    FROM r
    ORDER BY r.message_id;
END
$$;
COMMENT ON FUNCTION status_checker._claim_messages(integer, integer) IS
'Internal (dispatcher): claim due messages with FOR UPDATE SKIP LOCKED and a lease, and return them rendered '
'(mail headers and text, or webhook JSON) with their channel''s settings';

-- ---- src/common/jobs.sql
-- src/common/jobs.sql — the extension's periodic jobs, registered with
-- pg_cron.  Written with CREATE OR REPLACE: each version that adds a job
-- redefines it, in its install script and in its upgrade script.

CREATE OR REPLACE FUNCTION status_checker.schedule_jobs() RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
    has_in_db boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'status_checker''s periodic jobs (reminders, health probe and audit sealing every minute, outbox and audit retention daily) are run by pg_cron.',
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
        ('status_checker-audit-retention', '37 3 * * *', 'SELECT status_checker.prune_audit_log()')) v(name, sched, cmd)
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

-- ---- src/security/privileges.sql
-- src/security/privileges.sql — row-level security on every tenant table,
-- who owns the API functions, and who may call and read what.  Runs last
-- (before finish.sql), in the install script and in every upgrade, so that
-- it covers every table and function that exists.

-- ------------------------------------------------------------ row-level security

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'status_checker' AND c.relkind = 'r'
        ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (status_checker._may_see(tenant_id)) '
                       'WITH CHECK (status_checker._may_see(tenant_id))', t);
    END LOOP;
END
$$;

-- ------------------------------------------------------------ API functions
--
-- The tenant API runs as status_checker_api (SECURITY DEFINER): callers need
-- no table privileges, and row-level security still confines every
-- statement to the caller's tenant, so another tenant's request, site or
-- form simply does not exist for them.  A few functions must look across
-- tenants (a report link names its tenant itself; the audit chain is sealed
-- for all tenants at once): they run as the extension's owner and check
-- the tenant themselves (_require_tenant).

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'add_channel(bigint,text,text,jsonb)', 'add_group_manager(bigint,bigint,text)',
        'add_site_contact(bigint,text,text,text,text)', 'add_user(bigint,text,text,text)',
        'backtest_rule(bigint,bigint)', 'cancel_request(bigint,text)', 'check_answers(bigint,jsonb)',
        'close_request(bigint)', 'create_form(bigint,text,jsonb)',
        'create_request(bigint,bigint,text,timestamptz,jsonb,boolean,text)',
        'create_site_group(bigint,text,bigint)',
        'create_trigger_rule(bigint,text,bigint,status_checker.shindo,jsonb,interval,boolean,interval,boolean,text[],text,text[],text)',
        'import_sites(bigint,bytea)', 'import_sites(bigint,text)', 'issue_token(bigint,text)', 'issue_tokens(bigint)',
        'remove_user(bigint,text)', 'request_geojson(bigint)', 'retry_message(bigint)',
        'set_channel_enabled(bigint,boolean)', 'set_message_template(bigint,text,text,text,text)',
        'set_request_reminders(bigint,interval[],interval)', 'set_rule_reminders(bigint,interval[],interval)',
        'set_trigger_rule_enabled(bigint,boolean)', 'set_user_role(bigint,text,text)',
        'submit_report_for(bigint,text,jsonb)',
        'upsert_site(bigint,text,text,text,double precision,double precision,bigint,text,jsonb)',
        -- triggers that may fire at commit, under whatever role the session has then
        '_flush_counters()', '_check_admin_left()']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        EXECUTE format('ALTER FUNCTION status_checker.%s OWNER TO status_checker_api', f);
        -- pinned search_path (the functions that have one keep theirs)
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY ARRAY[
        'submit_report(text,jsonb)', 'audit_chain_head(bigint)', 'verify_audit_log(bigint)',
        'verify_audit_log(bigint,jsonb)', 'installation_public_key(text)', 'verify_deletion_certificate(jsonb)']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
END
$$;

-- status_checker_api: everything the API functions touch, nothing they do not
GRANT USAGE ON SCHEMA status_checker TO status_checker_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA status_checker TO status_checker_api;
REVOKE ALL ON status_checker.signing_key, status_checker.deletion_certificate, status_checker.data_key,
              status_checker.audit_sealer, status_checker.audit_gap FROM status_checker_api;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA status_checker TO status_checker_api;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA status_checker TO status_checker_api;

-- ------------------------------------------------------------ tenant roles

GRANT USAGE ON SCHEMA status_checker TO status_checker_viewer, status_checker_gateway;

-- viewer: read the tenant's data (row-level security keeps it to the tenant)
GRANT SELECT ON
    status_checker.tenant, status_checker.app_user, status_checker.site_group, status_checker.site,
    status_checker.site_contact, status_checker.form, status_checker.request, status_checker.request_target,
    status_checker.report, status_checker.request_counter, status_checker.trigger_rule, status_checker.trigger_fire,
    status_checker.trigger_evaluation, status_checker.outbox, status_checker.delivery_attempt,
    status_checker.site_group_manager, status_checker.message_template, status_checker.default_template,
    -- shared reference data: areas, events, feeds
    status_checker.jma_area, status_checker.jma_municipality, status_checker.jma_station,
    status_checker.event, status_checker.event_product, status_checker.event_product_intensity,
    status_checker.event_product_tsunami, status_checker.feed
    TO status_checker_viewer;
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_viewer;
-- (views: see below; contacts and users in clear are for managers, key status for the operator)
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind = 'v' LOOP
        EXECUTE format('GRANT SELECT ON %s TO status_checker_viewer', v);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION
    status_checker.current_tenant(), status_checker.request_geojson(bigint), status_checker.check_answers(bigint, jsonb),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb),
    -- what the row-level security policies call
    status_checker._tenant(), status_checker._is_operator(), status_checker._may_see(bigint)
    TO status_checker_viewer;
-- what the views call (the views run with their reader's privileges)
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT DISTINCT p.oid::regprocedure FROM pg_rewrite rw
        JOIN pg_class v ON v.oid = rw.ev_class
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_proc'::regclass
        JOIN pg_proc p ON p.oid = d.refobjid
        WHERE v.relnamespace = 'status_checker'::regnamespace AND p.pronamespace = 'status_checker'::regnamespace
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO status_checker_viewer', f);
    END LOOP;
END
$$;

REVOKE SELECT ON status_checker.contact_list, status_checker.user_list, status_checker.encryption_status
    FROM status_checker_viewer;
GRANT SELECT ON status_checker.contact_list, status_checker.user_list TO status_checker_manager;

-- reporter: report on a site's behalf
GRANT EXECUTE ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb), status_checker.submit_report(text, jsonb)
    TO status_checker_reporter;

-- manager: requests and their delivery
GRANT SELECT (tenant_id, channel_id, kind, name, config, enabled, created_at) ON status_checker.channel TO status_checker_manager;
GRANT EXECUTE ON FUNCTION
    status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text),
    status_checker.close_request(bigint), status_checker.cancel_request(bigint, text),
    status_checker.set_request_reminders(bigint, interval[], interval),
    status_checker.issue_token(bigint, text), status_checker.issue_tokens(bigint), status_checker.retry_message(bigint)
    TO status_checker_manager;

-- admin: the tenant's configuration, its users and its audit log
GRANT SELECT ON status_checker.audit_log, status_checker.audit_chain, status_checker.audit_head, status_checker.audit_checkpoint
    TO status_checker_admin;
GRANT EXECUTE ON FUNCTION
    status_checker.add_user(bigint, text, text, text), status_checker.set_user_role(bigint, text, text),
    status_checker.remove_user(bigint, text),
    status_checker.create_site_group(bigint, text, bigint),
    status_checker.upsert_site(bigint, text, text, text, double precision, double precision, bigint, text, jsonb),
    status_checker.add_site_contact(bigint, text, text, text, text),
    status_checker.import_sites(bigint, bytea), status_checker.import_sites(bigint, text),
    status_checker.create_form(bigint, text, jsonb),
    status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text),
    status_checker.set_trigger_rule_enabled(bigint, boolean), status_checker.set_rule_reminders(bigint, interval[], interval),
    status_checker.backtest_rule(bigint, bigint),
    status_checker.add_channel(bigint, text, text, jsonb), status_checker.set_channel_enabled(bigint, boolean),
    status_checker.set_message_template(bigint, text, text, text, text),
    status_checker.add_group_manager(bigint, bigint, text),
    status_checker.audit_chain_head(bigint), status_checker.verify_audit_log(bigint), status_checker.verify_audit_log(bigint, jsonb)
    TO status_checker_admin;

-- gateway: act for a user, and take reports by link
GRANT EXECUTE ON FUNCTION
    status_checker.set_app_user(bigint, text), status_checker.reset_app_user(),
    status_checker.submit_report(text, jsonb), status_checker.current_tenant(),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb)
    TO status_checker_gateway;

-- ---- src/common/finish.sql
-- src/common/finish.sql — last part of the install script: privileges.
--
-- Internal helpers (names starting with "_") are not for PUBLIC.  The
-- role model (admin/manager/reporter/viewer, gateway) and row-level
-- security arrive with the security domain; until then the extension's
-- objects are usable by their owner and by roles the DBA grants.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA status_checker FROM PUBLIC;
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
