-- src/security/login_roles.sql — the group role of a tenant user's own
-- database login (map_db_role): a mapped login holds the group role of its
-- user's role, and no other of the four, whatever it held before; a login
-- no longer mapped holds none.  Written with CREATE OR REPLACE: the same
-- text serves the install script and the upgrade to 0.10.1.
--
-- Until 0.10.1 each function revoked only the role it had granted, so a
-- membership granted some other way (by hand, or left by a deletion before
-- delete_tenant revoked them) survived a new mapping: a login mapped as a
-- viewer in a new tenant could still act as an administrator there.

-- Make the login's membership in the four group roles exactly the one of
-- p_role (admin, manager, reporter, viewer), or none for NULL.
CREATE OR REPLACE FUNCTION status_checker._set_login_group_role(p_db_role name, p_role text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_member oid;
    g name;
BEGIN
    SELECT r.oid INTO v_member FROM pg_catalog.pg_roles r WHERE r.rolname = p_db_role;
    IF NOT FOUND THEN
        RETURN;             -- the login was dropped: nothing to hold
    END IF;
    FOR g IN SELECT r.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
             WHERE m.member = v_member
               AND r.rolname IN ('status_checker_admin', 'status_checker_manager', 'status_checker_reporter', 'status_checker_viewer')
               AND r.rolname IS DISTINCT FROM 'status_checker_' || p_role
             ORDER BY 1 LOOP
        EXECUTE format('REVOKE %I FROM %I', g, p_db_role);
    END LOOP;
    IF p_role IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_auth_members m
           WHERE m.member = v_member AND m.roleid = ('status_checker_' || p_role)::regrole) THEN
        EXECUTE format('GRANT %I TO %I', 'status_checker_' || p_role, p_db_role);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._set_login_group_role(name, text) IS
'Internal: a mapped login''s membership in the four group roles made exactly its user''s role (none for NULL)';

CREATE OR REPLACE FUNCTION status_checker.map_db_role(tenant_id bigint, login text, db_role name)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
    r pg_roles;
BEGIN
    PERFORM status_checker._no_nulls('map_db_role', ARRAY['tenant_id', 'login'], ARRAY[map_db_role.tenant_id::text, map_db_role.login]);
    u := status_checker._require_user(map_db_role.tenant_id, map_db_role.login);
    IF map_db_role.db_role IS NOT NULL THEN
        SELECT * INTO r FROM pg_roles x WHERE x.rolname = map_db_role.db_role;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'role % does not exist', quote_ident(map_db_role.db_role) USING ERRCODE = 'undefined_object';
        END IF;
        IF r.rolsuper OR r.rolbypassrls OR r.rolname LIKE 'status\_checker\_%'
           OR pg_has_role(r.oid, 'status_checker_operator', 'USAGE')
           OR pg_has_role(r.oid, 'status_checker_gateway', 'MEMBER') THEN
            RAISE EXCEPTION 'role % cannot be mapped to a tenant''s user', quote_ident(map_db_role.db_role)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Superusers, operators, gateways, roles that bypass row-level security and status_checker''s own roles '
                               'see every tenant or act for many users.';
        END IF;
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
