-- src/upgrades/0.10.1-data.sql — what only the upgrade from 0.10.0 does
-- with the functions of 0.10.1: runs in status_checker--0.10.0--0.10.1.sql
-- after the replayed files (whose functions it calls), before
-- src/security/privileges.sql.  A fresh install has no data to put right.

-- tenants created before 0.5.0 that never sent a link (src/security/link_keys.sql)
SELECT status_checker._link_key(t.tenant_id)
FROM status_checker.tenant t
WHERE NOT EXISTS (SELECT 1 FROM status_checker.link_key k WHERE k.tenant_id = t.tenant_id)
ORDER BY t.tenant_id;

-- A mapped login that holds another of the four group roles than its
-- user's (granted by hand, or left by 0.10.0's delete_tenant and mapped
-- again since) is put right when the extension is updated:
-- it then holds exactly its user's role in this database, and a WARNING
-- names it.  Logins mapped in no user of this database are left alone (the
-- group roles are the cluster's: a login mapped in another database holds
-- its role for that one, and here it has no tenant and sees nothing).
DO $$
DECLARE
    l record;
BEGIN
    FOR l IN
        SELECT u.db_role, u.role FROM status_checker.app_user u
        WHERE u.db_role IS NOT NULL
          AND EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
                      JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
                      JOIN pg_catalog.pg_roles r ON r.oid = m.member
                      WHERE r.rolname = u.db_role
                        AND g.rolname IN ('status_checker_admin', 'status_checker_manager', 'status_checker_reporter', 'status_checker_viewer')
                        AND g.rolname <> 'status_checker_' || u.role)
        ORDER BY u.db_role
    LOOP
        RAISE WARNING 'login % held group roles its mapping does not give it: now it holds status_checker_% only',
            quote_ident(l.db_role), l.role;
        PERFORM status_checker._set_login_group_role(l.db_role, l.role);
    END LOOP;
END
$$;
