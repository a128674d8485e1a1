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
