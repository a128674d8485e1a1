-- test/integration/web_login_standin.sql — a stand-in for the 0.10.1 sign-in
-- contract (issue 19, finding 6), for web.sh until the SQL that implements
-- it is merged: web.sh loads this file only when
-- status_checker.web_login(bigint, text, text, text) does not exist, and says
-- so in its output.  Delete the file once the real function is in.
--
-- The contract the HTTP worker is built against:
--   web_login(tenant_id, login, password, device_token) → web_login_result
--   (ok, reason, session_token, csrf_token, role, locked_until, device_token);
--   every failure has reason 'wrong' (unknown login, wrong password,
--   throttled) and locked_until NULL; no account is ever locked; on success
--   device_token is the value the browser keeps in its device cookie, and a
--   browser that presents it is not throttled by other people's failures.
-- The stand-in throttles an account after five failures in a row for 1, 2,
-- 4 … minutes (at most an hour), except for its users' own browsers.

ALTER TYPE status_checker.web_login_result ADD ATTRIBUTE device_token text;

CREATE TABLE status_checker.web_device_standin (
    token_hash bytea PRIMARY KEY,
    tenant_id  bigint NOT NULL,
    user_id    bigint NOT NULL
);

CREATE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text, device_token text)
    RETURNS status_checker.web_login_result
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
    w status_checker.web_login;
    r status_checker.web_login_result;
    known_browser boolean;
    tok text;
BEGIN
    r.ok := false;
    r.reason := 'wrong';
    SELECT * INTO u FROM status_checker.app_user x
     WHERE x.tenant_id = web_login.tenant_id AND x.login = web_login.login;
    IF FOUND THEN
        SELECT * INTO w FROM status_checker.web_login x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id FOR UPDATE;
    END IF;
    IF w.user_id IS NULL THEN
        PERFORM status_checker._password_verify(
            '$argon2id$v=19$m=19456,t=2,p=1$vECpmqnf2MSab0kxsEBRHA$YYX7Ha0Zee6PEwWwQlKSVPNYQvtxdd6W8ImXJUr8SAg',
            coalesce(web_login.password, ''));
        RETURN r;
    END IF;
    known_browser := EXISTS (SELECT 1 FROM status_checker.web_device_standin d
                             WHERE d.token_hash = sha256(convert_to(coalesce(web_login.device_token, ''), 'UTF8'))
                               AND d.tenant_id = u.tenant_id AND d.user_id = u.user_id);
    IF NOT known_browser AND w.locked_until > now() THEN
        PERFORM status_checker._password_verify(w.password_hash, coalesce(web_login.password, ''));
        RETURN r;
    END IF;
    IF web_login.password IS NULL OR NOT status_checker._password_verify(w.password_hash, web_login.password) THEN
        UPDATE status_checker.web_login x
           SET failures = x.failures + 1,
               locked_until = CASE WHEN x.failures + 1 >= 5
                                   THEN now() + least(interval '1 minute' * 2 ^ least(x.failures + 1 - 5, 6), interval '1 hour') END
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
        RETURN r;
    END IF;
    UPDATE status_checker.web_login x SET failures = 0, locked_until = NULL
     WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id AND (x.failures > 0 OR x.locked_until IS NOT NULL);
    tok := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
    r.ok := true;
    r.reason := NULL;
    r.session_token := tok;
    r.csrf_token := translate(encode(status_checker._random_bytes(24), 'base64'), E'+/=\n', '-_');
    r.role := u.role;
    INSERT INTO status_checker.web_session (tenant_id, session_hash, user_id, csrf_token)
    VALUES (u.tenant_id, sha256(convert_to(tok, 'UTF8')), u.user_id, r.csrf_token);
    r.device_token := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
    INSERT INTO status_checker.web_device_standin VALUES (sha256(convert_to(r.device_token, 'UTF8')), u.tenant_id, u.user_id);
    RETURN r;
END
$$;

CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text)
    RETURNS status_checker.web_login_result
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM status_checker.web_login($1, $2, $3, NULL)
$$;

REVOKE ALL ON FUNCTION status_checker.web_login(bigint, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION status_checker.web_login(bigint, text, text, text) TO status_checker_gateway;
