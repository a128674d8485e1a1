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

-- set_user_role and remove_user: src/security/login_roles.sql (they change
-- the group role of the user's database login too).

-- The same rule for changes made without these functions: checked at
-- commit, for every tenant that still exists (delete_tenant removes the
-- tenant itself in the same transaction).
CREATE FUNCTION status_checker._check_admin_left() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
ALTER FUNCTION status_checker._check_admin_left() OWNER TO status_checker_api;
CREATE CONSTRAINT TRIGGER app_user_admin_left
    AFTER UPDATE OF role OR DELETE ON status_checker.app_user
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION status_checker._check_admin_left();
