-- src/web/sign_in.sql — dashboard passwords, sign-in and sessions.
-- Written to be replayed (CREATE OR REPLACE, CREATE TABLE IF NOT EXISTS):
-- an upgrade script can replay the same text.
--
-- Sign-ins are slowed, never locked (0.10.1).  Until then five wrong
-- passwords locked an account for 15 minutes and the lock was checked
-- before the password: anyone who knew a login could keep its owner out
-- for good, and a locked login answered differently from an unknown one.
-- Now:
--   - a browser that signed in before holds a device token (a cookie the
--     gateway keeps, OWASP's "device cookie"): its sign-ins are always
--     checked, whatever others try (after five wrong passwords of its own
--     it is trusted no more);
--   - sign-ins from anywhere else are slowed once they fail: after five
--     failures in a row, a sign-in is checked only 15 seconds after the
--     last failure, then 30, 60 … up to 15 minutes; one that comes earlier
--     is refused unchecked (and counted);
--   - every failure gives the same answer ('wrong') and costs the same
--     (an argon2id hash is computed in every case);
--   - the gateway slows each client address as well (the HTTP worker:
--     src/web/http.c).

CREATE TABLE IF NOT EXISTS status_checker.web_device (
    tenant_id    bigint NOT NULL,
    user_id      bigint NOT NULL,
    device_hash  bytea NOT NULL,             -- SHA-256 of the device cookie's value
    failures     integer NOT NULL DEFAULT 0, -- wrong passwords from this device since its last success
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    used_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, user_id, device_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_device IS
'Browsers a dashboard user signed in from (hashes of their device cookies): their sign-ins are not slowed by other people''s failures; '
'read only by the API functions';
ALTER TABLE status_checker.web_device ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.web_device FORCE ROW LEVEL SECURITY;
-- (dropped first: this file is written to be replayed)
DROP POLICY IF EXISTS tenant_isolation ON status_checker.web_device;
CREATE POLICY tenant_isolation ON status_checker.web_device
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

CREATE OR REPLACE FUNCTION status_checker.set_user_password(tenant_id bigint, login text, password text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('set_user_password', ARRAY['tenant_id', 'login', 'password'],
                                     ARRAY[set_user_password.tenant_id::text, set_user_password.login,
                                           CASE WHEN set_user_password.password IS NOT NULL THEN '' END]);
    IF char_length(set_user_password.password) < 10 OR char_length(set_user_password.password) > 200 THEN
        RAISE EXCEPTION 'a password has 10 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A long passphrase is best; any characters may be used.';
    END IF;
    u := status_checker._require_user(set_user_password.tenant_id, set_user_password.login);
    INSERT INTO status_checker.web_login AS w (tenant_id, user_id, password_hash)
    VALUES (u.tenant_id, u.user_id, status_checker._password_hash(set_user_password.password))
    ON CONFLICT (tenant_id, user_id)
    DO UPDATE SET password_hash = EXCLUDED.password_hash, failures = 0, throttled_until = NULL, throttled = 0, changed_at = now();
    -- a new password ends the user's sessions, and no browser is trusted with it yet
    DELETE FROM status_checker.web_session s WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id;
    DELETE FROM status_checker.web_device d WHERE d.tenant_id = u.tenant_id AND d.user_id = u.user_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_user_password(bigint, text, text) IS
'Set a user''s dashboard password (10 to 200 characters, stored as an argon2id hash); ends the user''s sessions, forgets its trusted browsers '
'and lifts any slowing of its sign-ins. Admins only';
ALTER FUNCTION status_checker.set_user_password(bigint, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_user_password(bigint, text, text) TO status_checker_admin;

-- Sign in: not an error when it fails, so that the failure is counted (an
-- exception would roll the count back).
CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text, device_token text)
    RETURNS status_checker.web_login_result
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    -- the hash of a password nobody uses, with the real ones' cost: checked
    -- instead when there is nothing to check, so that every failure takes as long
    decoy constant text := '$argon2id$v=19$m=19456,t=2,p=1$vECpmqnf2MSab0kxsEBRHA$YYX7Ha0Zee6PEwWwQlKSVPNYQvtxdd6W8ImXJUr8SAg';
    u status_checker.app_user;
    w status_checker.web_login;
    d status_checker.web_device;
    r status_checker.web_login_result;
    trusted boolean := false;
    tok text;
BEGIN
    r.ok := false;
    r.reason := 'wrong';
    -- one attempt at a time per tenant and login name, known or not: the
    -- row lock below would otherwise make a second concurrent attempt wait
    -- for a known login only, and the wait would tell that it exists
    PERFORM pg_catalog.pg_advisory_xact_lock(1396925233,   -- 'SCWL'
                                             pg_catalog.hashtext(coalesce(web_login.tenant_id::text, '') || '/' || coalesce(web_login.login, '')));
    SELECT * INTO u FROM status_checker.app_user x
     WHERE x.tenant_id = web_login.tenant_id AND x.login = web_login.login;
    IF FOUND THEN
        SELECT * INTO w FROM status_checker.web_login x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id FOR UPDATE;
    END IF;
    IF w.user_id IS NOT NULL AND web_login.device_token IS NOT NULL THEN
        SELECT * INTO d FROM status_checker.web_device x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id
           AND x.device_hash = sha256(convert_to(web_login.device_token, 'UTF8'))
        FOR UPDATE;
        trusted := FOUND AND d.failures < 5 AND d.created_at > now() - interval '180 days';
    END IF;

    IF w.user_id IS NULL THEN
        -- an unknown login, or a user without a password
        PERFORM status_checker._password_verify(decoy, coalesce(web_login.password, ''));
        RETURN r;
    END IF;
    IF NOT trusted AND w.throttled_until > now() THEN
        -- slowed: refused unchecked (but at the same cost), and counted
        PERFORM status_checker._password_verify(decoy, coalesce(web_login.password, ''));
        UPDATE status_checker.web_login x SET throttled = x.throttled + 1
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        RETURN r;
    END IF;
    IF web_login.password IS NULL OR NOT status_checker._password_verify(w.password_hash, web_login.password) THEN
        IF trusted THEN
            UPDATE status_checker.web_device x SET failures = x.failures + 1
             WHERE x.tenant_id = d.tenant_id AND x.user_id = d.user_id AND x.device_hash = d.device_hash;
        END IF;
        -- from the fifth failure in a row on, the next check waits 15 s, 30 s, 1 min … 15 min
        UPDATE status_checker.web_login x
           SET failures = x.failures + 1,
               throttled_until = CASE WHEN x.failures + 1 >= 5
                                      THEN now() + least(interval '15 seconds' * power(2, least(x.failures + 1 - 5, 10)),
                                                         interval '15 minutes') END
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        RETURN r;
    END IF;

    -- the right password
    IF trusted THEN
        UPDATE status_checker.web_device x SET failures = 0, used_at = now()
         WHERE x.tenant_id = d.tenant_id AND x.user_id = d.user_id AND x.device_hash = d.device_hash;
        r.device_token := web_login.device_token;
    ELSE
        -- (a trusted browser's success leaves the slowing of the others as it is)
        IF w.failures > 0 OR w.throttled_until IS NOT NULL OR w.throttled > 0 THEN
            UPDATE status_checker.web_login x SET failures = 0, throttled_until = NULL, throttled = 0
             WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        END IF;
        r.device_token := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
        INSERT INTO status_checker.web_device (tenant_id, user_id, device_hash)
        VALUES (u.tenant_id, u.user_id, sha256(convert_to(r.device_token, 'UTF8')));
        -- a user's 20 browsers used last are remembered
        DELETE FROM status_checker.web_device x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id
           AND x.device_hash NOT IN (SELECT y.device_hash FROM status_checker.web_device y
                                     WHERE y.tenant_id = u.tenant_id AND y.user_id = u.user_id
                                     ORDER BY y.used_at DESC LIMIT 20);
    END IF;
    tok := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
    r.ok := true;
    r.reason := NULL;
    r.session_token := tok;
    r.csrf_token := translate(encode(status_checker._random_bytes(24), 'base64'), E'+/=\n', '-_');
    r.role := u.role;
    INSERT INTO status_checker.web_session (tenant_id, session_hash, user_id, csrf_token)
    VALUES (u.tenant_id, sha256(convert_to(tok, 'UTF8')), u.user_id, r.csrf_token);
    -- sessions that ended long ago go
    DELETE FROM status_checker.web_session s
     WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id
       AND (s.seen_at < now() - interval '2 hours' OR s.created_at < now() - interval '12 hours');
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_login(bigint, text, text, text) IS
'For gateways: check a user''s dashboard password, with the browser''s device token if it has one; on success a new session '
'(its cookie value and CSRF token, returned once) and the device token to keep. Failures are not errors (they are counted and audited) '
'and all say "wrong"; after five in a row, sign-ins not from a trusted browser are slowed (15 s, doubling, up to 15 min), never locked';
GRANT EXECUTE ON FUNCTION status_checker.web_login(bigint, text, text, text) TO status_checker_api, status_checker_gateway;

CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text)
    RETURNS status_checker.web_login_result
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN status_checker.web_login(tenant_id, login, password, NULL);
COMMENT ON FUNCTION status_checker.web_login(bigint, text, text) IS
'For gateways: web_login without a device token (a browser that has not signed in before)';
GRANT EXECUTE ON FUNCTION status_checker.web_login(bigint, text, text) TO status_checker_api, status_checker_gateway;

CREATE OR REPLACE FUNCTION status_checker.web_session_user(session_token text)
    RETURNS status_checker.web_session_user
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    s status_checker.web_session;
    r status_checker.web_session_user;
BEGIN
    SELECT * INTO s FROM status_checker.web_session x
     WHERE x.session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
       AND x.seen_at > now() - interval '2 hours' AND x.created_at > now() - interval '12 hours';
    IF FOUND THEN
        SELECT u.tenant_id, u.login, u.role, s.csrf_token INTO r
          FROM status_checker.app_user u WHERE u.tenant_id = s.tenant_id AND u.user_id = s.user_id;
    END IF;
    -- (a user deleted meanwhile has no session either: never a row of NULLs)
    IF r.tenant_id IS NULL OR r.login IS NULL OR r.role IS NULL OR r.csrf_token IS NULL THEN
        RAISE EXCEPTION 'no such session, or it has ended'
            USING ERRCODE = 'invalid_authorization_specification', HINT = 'Sign in again.';
    END IF;
    -- idle time counts from the last request (written at most once a minute)
    IF s.seen_at < now() - interval '1 minute' AND NOT pg_is_in_recovery() THEN
        UPDATE status_checker.web_session x SET seen_at = now()
         WHERE x.tenant_id = s.tenant_id AND x.session_hash = s.session_hash;
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_session_user(text) IS
'For gateways: the user of a dashboard session (tenant, login, role, CSRF token); 28000 for an unknown or ended session '
'(2 hours idle, 12 hours in all) or one whose user is gone';
GRANT EXECUTE ON FUNCTION status_checker.web_session_user(text) TO status_checker_api, status_checker_gateway;
