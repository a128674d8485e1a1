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

