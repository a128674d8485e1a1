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
