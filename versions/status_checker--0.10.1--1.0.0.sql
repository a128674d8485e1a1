-- status_checker 0.10.1 → 1.0.0 — generated from src/upgrades/1.0.0.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/upgrades/1.0.0.sql
-- status_checker 0.10.1 → 1.0.0: what the update does.  The schema of
-- 1.0.0 is 0.10.1's but for what follows (test/integration/upgrade.sh
-- compares an updated database with a fresh install).
--
-- 計測震度 by JMA's definition (issue 22, item 9): the library's
-- shindo_from_instrumental and the text form of shindo round the value at
-- the third decimal and truncate it at the second (4.49 → 4, not 5-;
-- 4.495 → 5-); estimate_shindo no longer rounds to one decimal before
-- classing (its body as in src/triggers/triggers.sql).  CREATE OR REPLACE
-- keeps the function's owner, privileges and settings.

CREATE OR REPLACE FUNCTION status_checker.estimate_shindo(
    magnitude numeric, depth_km double precision,
    epi_lat double precision, epi_lon double precision,
    site_lat double precision, site_lon double precision)
    RETURNS status_checker.shindo
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    -- Si & Midorikawa (1999) peak ground velocity on Vs 600 m/s rock for a
    -- crustal event, amplified to an average site (AVS30 = 400 m/s,
    -- Fujimoto & Midorikawa 2006: ×1.41), converted to JMA instrumental
    -- intensity by Midorikawa et al. (1999): I = 2.68 + 1.72 log10 PGV.
    -- The fault distance X is approximated from the hypocentral distance
    -- minus half the fault length of Utsu (1977), log10 L = 0.5 M - 1.8,
    -- but not below the depth (nor 3 km).  Mw is taken as the given
    -- magnitude, capped at 8.3 (the relation's range).  See docs/feeds.md.
    -- The class follows JMA's rule for 計測震度 (shindo_from_instrumental:
    -- rounded at the third decimal, truncated at the second), on the value
    -- as computed.
    SELECT status_checker.shindo_from_instrumental(greatest(-3.0, least(8.0,
               2.68 + 1.72 * (lpgv + 0.150)))::numeric)
    FROM (SELECT 0.58 * mw + 0.0038 * d - 1.29
                 - log(x + 0.0028 * power(10, 0.5 * mw)) - 0.002 * x AS lpgv
          FROM (SELECT mw, d, greatest(3.0, d, hypo - power(10, 0.5 * m - 1.8) / 2) AS x
                FROM (SELECT least(magnitude::double precision, 8.3) AS mw,
                             magnitude::double precision AS m,
                             greatest(depth_km, 0) AS d,
                             sqrt(power(2 * 6371.0 * asin(least(1.0, sqrt(
                                 power(sin(radians(site_lat - epi_lat) / 2), 2)
                                 + cos(radians(epi_lat)) * cos(radians(site_lat))
                                   * power(sin(radians(site_lon - epi_lon) / 2), 2)))), 2)
                                 + power(greatest(depth_km, 0), 2)) AS hypo) a) b) c;
END;

COMMENT ON FUNCTION status_checker.shindo_from_instrumental(numeric) IS
'Shindo class of a JMA instrumental intensity (計測震度) by JMA''s definition: the value is rounded at the third decimal and truncated at the second (4.49 and 4.494 → 4, 4.495 → 5-); then 4.5 → 5-, 5.0 → 5+, 5.5 → 6-, 6.0 → 6+, 6.5 → 7';

-- ---- src/web/report_form.sql
-- src/web/report_form.sql — the reporter page's content for a personal link.
-- Written with CREATE OR REPLACE: one text for the install and the upgrades.

-- What the reporter page shows for a request target, by the target's key
-- or its token's hash (report_form picks the row).  Internal.
CREATE OR REPLACE VIEW status_checker._report_form_document WITH (security_invoker = true) AS
SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id,
       jsonb_build_object(
           'request', jsonb_build_object(
               'id', r.request_id, 'title', r.title, 'message', r.message, 'state', r.state,
               'drill', r.drill, 'deadline', r.deadline, 'cancel_reason', r.cancel_reason,
               'event', CASE WHEN e.event_id IS NOT NULL THEN jsonb_build_object(
                            'summary', status_checker._event_title(e),
                            'max_shindo', e.max_shindo::text,
                            'origin_time', e.origin_time) END),
           'tenant', tn.name,
           'site', jsonb_build_object(
               'code', s.code, 'name', s.name,
               'shindo', t.asked_shindo::text,
               'shindo_label', CASE WHEN t.asked_shindo IS NOT NULL THEN jsonb_build_object(
                                   'ja', status_checker.shindo_label(t.asked_shindo, 'ja'),
                                   'en', status_checker.shindo_label(t.asked_shindo, 'en')) END),
           'form', f.definition,
           'latest', CASE WHEN p.report_id IS NOT NULL THEN jsonb_build_object(
                         'report_id', p.report_id, 'answers', p.answers, 'level', p.level,
                         'color', p.color, 'icon', p.icon, 'submitted_at', p.submitted_at,
                         'report_count', t.report_count) END) AS document
  FROM status_checker.request_target t
  JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
  JOIN status_checker.tenant tn ON tn.tenant_id = t.tenant_id
  JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
  JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
  LEFT JOIN status_checker.event e ON e.event_id = r.event_id
  LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id;
COMMENT ON VIEW status_checker._report_form_document IS
'Internal (report_form): the reporter page''s document of each request target: request, event, tenant, site, form version, latest report';
GRANT SELECT ON status_checker._report_form_document TO status_checker_viewer, status_checker_operator;

-- The reporter page's content for a personal link.  Read-only: opening a
-- link (a mail scanner does it first) uses up and changes nothing.
CREATE OR REPLACE FUNCTION status_checker.report_form(token text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    h bytea := CASE WHEN token IS NOT NULL THEN status_checker._token_hash(token) END;
    result jsonb;
BEGIN
    -- the target by the token's hash; if none has it, the target a first
    -- link names (0.9.0), if the link's token is that target's first
    SELECT d.document INTO result FROM status_checker._report_form_document d WHERE d.token_hash = h;
    IF result IS NULL AND h IS NOT NULL THEN
        SELECT d.document INTO result
        FROM status_checker._first_link_target(token) k
        JOIN status_checker._report_form_document d
          ON d.tenant_id = k.tenant_id AND d.request_id = k.request_id AND d.site_id = k.site_id;
    END IF;
    IF result IS NULL THEN
        IF h IS NOT NULL AND EXISTS (SELECT 1 FROM status_checker.request_token_revoked v WHERE v.token_hash = h) THEN
            -- CONSTRAINT tells a replaced link from an unknown one (same SQLSTATE) to callers such as the reporter page
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification', HINT = 'Use the link in the most recent message.',
                      CONSTRAINT = 'report_token_replaced';
        END IF;
        RAISE EXCEPTION 'unknown report token'
            USING ERRCODE = 'invalid_authorization_specification', DETAIL = 'The link is wrong or incomplete.',
                  HINT = 'Open the link exactly as it appears in the message.';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.report_form(text) IS
'What a reporter page shows for a personal link: the request (title, state, deadline, event), the site (and the intensity it was asked at), '
'the form version to answer and the site''s latest report. Read-only: opening a link changes nothing';
GRANT EXECUTE ON FUNCTION status_checker.report_form(text) TO status_checker_api, status_checker_reporter, status_checker_gateway;


-- ---- src/security/login_roles.sql
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
