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
