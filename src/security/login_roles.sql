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
