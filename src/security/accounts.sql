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
