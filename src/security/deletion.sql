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
