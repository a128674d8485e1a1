-- src/requests/tokens.sql — personal tokens, derived from the tenant's link key.
--
-- The token of a request target is HMAC-SHA256(link key, tenant, request,
-- site, generation) in base64url (src/dispatch/crypto.c).  The database
-- stores its SHA-256 (request_target.token_hash) and the generation, never
-- the token: the dispatcher derives it again to put the link into a mail,
-- a retry or a reminder.  issue_token starts a new generation, so the
-- previous link stops working (its hash goes to request_token_revoked).
-- Written as CREATE OR REPLACE: the same text serves the install script and
-- the upgrade from 0.2.0 (whose tokens were random).

CREATE OR REPLACE FUNCTION status_checker._target_token(p_tenant_id bigint, p_request_id bigint, p_site_id bigint, p_gen integer)
    RETURNS text
    LANGUAGE sql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN status_checker._link_token(status_checker._link_key(p_tenant_id), p_tenant_id, p_request_id, p_site_id, p_gen);
COMMENT ON FUNCTION status_checker._target_token(bigint, bigint, bigint, integer) IS
'Internal: the personal token of a request target at a generation';

CREATE OR REPLACE FUNCTION status_checker.issue_token(request_id bigint, site_code text)
    RETURNS text
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    v_site bigint;
    v_old bytea;
    v_gen integer;
    v_token text;
BEGIN
    PERFORM status_checker._no_nulls('issue_token', ARRAY['request_id', 'site_code'], ARRAY[issue_token.request_id::text, issue_token.site_code::text]);
    r := status_checker._require_request(issue_token.request_id);
    v_site := status_checker._require_site(r.tenant_id, issue_token.site_code);
    IF r.state <> 'open' THEN
        RAISE EXCEPTION 'request % is %', r.request_id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Tokens are issued only for open requests.';
    END IF;
    SELECT t.token_hash, t.token_gen INTO v_old, v_gen FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'site % is not a target of request %', quote_literal(issue_token.site_code), r.request_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF v_old IS NOT NULL THEN
        INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
        VALUES (v_old, r.tenant_id, r.request_id, v_site);
    END IF;
    v_token := status_checker._target_token(r.tenant_id, r.request_id, v_site, v_gen + 1);
    UPDATE status_checker.request_target t
    SET token_hash = status_checker._token_hash(v_token), token_gen = v_gen + 1, token_issued_at = pg_catalog.now()
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site;
    RETURN v_token;
END
$$;
COMMENT ON FUNCTION status_checker.issue_token(bigint, text) IS
'Issue a new personal token (256 bits, base64url) for a site of an open request; the previous token stops working. Only the SHA-256 is stored';

CREATE OR REPLACE FUNCTION status_checker.issue_tokens(request_id bigint)
    RETURNS TABLE (site_code text, token text)
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    k bytea;
BEGIN
    PERFORM status_checker._no_nulls('issue_tokens', ARRAY['request_id'], ARRAY[issue_tokens.request_id::text]);
    r := status_checker._require_request(issue_tokens.request_id, true);
    IF r.state <> 'open' THEN
        RAISE EXCEPTION 'request % is %', r.request_id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Tokens are issued only for open requests.';
    END IF;
    k := status_checker._link_key(r.tenant_id);
    -- the targets first, locked in key order, as the dispatcher locks those
    -- whose first link it sends (_claim_messages): the two queue instead of
    -- deadlocking, and the hashes revoked below are the current ones
    PERFORM 1 FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id
    ORDER BY t.tenant_id, t.request_id, t.site_id
    FOR UPDATE;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.token_hash IS NOT NULL;

    IF to_regclass('pg_temp._sc_new_tokens') IS NULL THEN   -- (no notice on a second call)
        CREATE TEMP TABLE _sc_new_tokens (site_id bigint PRIMARY KEY, token text) ON COMMIT DROP;
    END IF;
    TRUNCATE pg_temp._sc_new_tokens;
    WITH u AS (
        UPDATE status_checker.request_target t
        SET token_gen = t.token_gen + 1,
            token_hash = status_checker._token_hash(status_checker._link_token(k, t.tenant_id, t.request_id, t.site_id, t.token_gen + 1)),
            token_issued_at = pg_catalog.now()
        WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id
        RETURNING t.site_id, t.token_gen
    )
    INSERT INTO pg_temp._sc_new_tokens
    SELECT u.site_id, status_checker._link_token(k, r.tenant_id, r.request_id, u.site_id, u.token_gen) FROM u;
    RETURN QUERY
        SELECT s.code, n.token FROM pg_temp._sc_new_tokens n
        JOIN status_checker.site s ON s.tenant_id = r.tenant_id AND s.site_id = n.site_id
        ORDER BY s.code;
    TRUNCATE pg_temp._sc_new_tokens;
END
$$;
COMMENT ON FUNCTION status_checker.issue_tokens(bigint) IS
'Issue new personal tokens for every target of an open request (previous tokens stop working); returns site code and token';
