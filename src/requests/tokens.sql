-- src/requests/tokens.sql — personal tokens, derived from the tenant's link key.
--
-- The token of a request target is HMAC-SHA256(link key, tenant, request,
-- site, generation) in base64url (src/dispatch/crypto.c).  The database
-- stores its SHA-256 (request_target.token_hash) and the generation, never
-- the token: the dispatcher derives it again to put the link into a mail,
-- a retry or a reminder.  issue_token starts a new generation, so the
-- previous link stops working (its hash goes to request_token_revoked).
--
-- First links (0.9.0).  The link a message carries names its target after
-- the token: "<token>.<tenant>.<request>.<site>" (_link).  A target whose
-- token was never issued (token_gen 0) has no stored hash, and its first
-- link is checked by recomputing the token of generation 1 for the target
-- it names (_first_link_target); the first report by that link issues the
-- token (_issue_first_link: hash stored, generation 1).  So the dispatcher
-- sends a first link without writing anything (before 0.9.0 it stored the
-- hash for each message: a non-HOT update of request_target, three index
-- entries; the workers' CPU ~240 → ~195 µs a message without it), and a
-- link that nobody opens costs nothing.  Opening a link still changes
-- nothing (report_form).
-- Written as CREATE OR REPLACE: the same text serves the install script and
-- the upgrades from 0.2.0 (whose tokens were random) and from 0.8.0.

CREATE OR REPLACE FUNCTION status_checker._link(key bytea, tenant_id bigint, request_id bigint, site_id bigint, generation integer)
    RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_link';
COMMENT ON FUNCTION status_checker._link(bytea, bigint, bigint, bigint, integer) IS
'Internal: what a message''s personal link carries: the target''s token at a generation, then the target it names (tenant, request, site)';

CREATE OR REPLACE FUNCTION status_checker._link_token_matches(key bytea, tenant_id bigint, request_id bigint, site_id bigint,
                                                              generation integer, token text)
    RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_link_token_matches';
COMMENT ON FUNCTION status_checker._link_token_matches(bytea, bigint, bigint, bigint, integer, text) IS
'Internal: whether a token (a link''s first 43 characters) is the target''s at a generation; compared in constant time';

CREATE OR REPLACE FUNCTION status_checker._token_locator(token text, OUT tenant_id bigint, OUT request_id bigint, OUT site_id bigint)
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_token_locator';
COMMENT ON FUNCTION status_checker._token_locator(text) IS
'Internal: the target a first link names after its token (NULLs if the text is not such a link); not a proof of anything';

-- Whether a first link's token is its target's of generation 1 (C, under
-- the tenant's link key, in constant time).  The link is the credential:
-- no session tenant is asked, so that any gateway login can check it.  Only
-- the extension's own functions (report_form, submit_report) call it.
CREATE OR REPLACE FUNCTION status_checker._first_link_valid(tenant_id bigint, request_id bigint, site_id bigint, token text)
    RETURNS boolean
    LANGUAGE c STABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_first_link_valid';
COMMENT ON FUNCTION status_checker._first_link_valid(bigint, bigint, bigint, text) IS
'Internal (report_form, submit_report): whether a token is the first (generation 1) of the target a first link names; no tenant check, the MAC is the proof';

-- The target a first link names, if its token was never issued and the
-- link's token is the target's first (generation 1); else NULLs.  The MAC
-- is checked first, so that a wrong link learns nothing of the target it
-- names: whatever it names, the answer is the same (0.10.1; until then a
-- link naming an existing target failed differently through a gateway).
-- Read-only: what report_form may call.
CREATE OR REPLACE FUNCTION status_checker._first_link_target(token text,
                                                             OUT tenant_id bigint, OUT request_id bigint, OUT site_id bigint)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    l record;
BEGIN
    l := status_checker._token_locator(token);
    IF l.tenant_id IS NULL OR NOT status_checker._first_link_valid(l.tenant_id, l.request_id, l.site_id, token) THEN
        RETURN;
    END IF;
    PERFORM 1 FROM status_checker.request_target t
    WHERE t.tenant_id = l.tenant_id AND t.request_id = l.request_id AND t.site_id = l.site_id AND t.token_gen = 0;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    tenant_id := l.tenant_id;
    request_id := l.request_id;
    site_id := l.site_id;
END
$$;
COMMENT ON FUNCTION status_checker._first_link_target(text) IS
'Internal: the request target a first link names, if no token was issued for it yet and the link''s token is its first (else NULLs); read-only';

-- Issue the token of a first link (generation 1) when a report uses it:
-- its hash is stored, and from then on the token is found by its hash like
-- any other.  False if the link is not a valid first link (any more).
CREATE OR REPLACE FUNCTION status_checker._issue_first_link(token text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f record;
    v_old bytea;
BEGIN
    f := status_checker._first_link_target(token);
    IF f.tenant_id IS NULL THEN
        RETURN false;
    END IF;
    -- locked, and checked again: a concurrent report or issue_token may have issued one
    SELECT t.token_hash INTO v_old FROM status_checker.request_target t
    WHERE t.tenant_id = f.tenant_id AND t.request_id = f.request_id AND t.site_id = f.site_id AND t.token_gen = 0
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF v_old IS NOT NULL THEN   -- a random token of 0.2.0, replaced by the link sent since
        INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
        VALUES (v_old, f.tenant_id, f.request_id, f.site_id)
        ON CONFLICT DO NOTHING;
    END IF;
    UPDATE status_checker.request_target t
    SET token_gen = 1, token_hash = status_checker._token_hash(token), token_issued_at = pg_catalog.now()
    WHERE t.tenant_id = f.tenant_id AND t.request_id = f.request_id AND t.site_id = f.site_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION status_checker._issue_first_link(text) IS
'Internal (submit_report): issue the token of a valid first link (its hash stored, generation 1); false if the link is not one';

-- Whether a first link may have gone out to a target: a message that
-- carries it was sent or is being sent.
CREATE OR REPLACE FUNCTION status_checker._first_link_sent(p_tenant_id bigint, p_request_id bigint, p_site_id bigint)
    RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (plpgsql: the outbox is made after this file)
    RETURN EXISTS (SELECT 1 FROM status_checker.outbox o
                   WHERE o.tenant_id = p_tenant_id AND o.request_id = p_request_id AND o.site_id = p_site_id
                     AND o.purpose IN ('request', 'reminder') AND o.attempts > 0);
END
$$;
COMMENT ON FUNCTION status_checker._first_link_sent(bigint, bigint, bigint) IS
'Internal: whether a message with the target''s link was sent or is being sent (its first link may be out)';

-- The personal token of a request target at a generation, for a session
-- acting for the tenant (C: the link key is read, decrypted and used there,
-- and never handed to SQL; since 0.10.1).
CREATE OR REPLACE FUNCTION status_checker._target_token(p_tenant_id bigint, p_request_id bigint, p_site_id bigint, p_gen integer)
    RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_target_token';
COMMENT ON FUNCTION status_checker._target_token(bigint, bigint, bigint, integer) IS
'Internal: the personal token of a request target at a generation (the link key stays in C)';

CREATE OR REPLACE FUNCTION status_checker.issue_token(request_id bigint, site_code text)
    RETURNS text
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    -- never issued, but its first link may be out: that link stops working too
    IF v_gen = 0 AND status_checker._first_link_sent(r.tenant_id, r.request_id, v_site) THEN
        INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
        VALUES (status_checker._token_hash(status_checker._target_token(r.tenant_id, r.request_id, v_site, 1)),
                r.tenant_id, r.request_id, v_site)
        ON CONFLICT DO NOTHING;
        v_gen := 1;
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
ALTER FUNCTION status_checker.issue_token(bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.issue_token(bigint, text) TO status_checker_manager;

CREATE OR REPLACE FUNCTION status_checker.issue_tokens(request_id bigint)
    RETURNS TABLE (site_code text, token text)
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    first_out bigint[];
BEGIN
    PERFORM status_checker._no_nulls('issue_tokens', ARRAY['request_id'], ARRAY[issue_tokens.request_id::text]);
    r := status_checker._require_request(issue_tokens.request_id, true);
    IF r.state <> 'open' THEN
        RAISE EXCEPTION 'request % is %', r.request_id, r.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Tokens are issued only for open requests.';
    END IF;
    -- the targets first, locked in key order (as a report's first use of a
    -- link locks its one target): the hashes revoked below are the current ones
    PERFORM 1 FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id
    ORDER BY t.tenant_id, t.request_id, t.site_id
    FOR UPDATE;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.token_hash IS NOT NULL;
    -- never issued, but their first link may be out: those links stop working too
    -- (their new token is of generation 2).  Kept in a variable: a SECURITY
    -- DEFINER function makes, reuses or names no temporary object (0.10.1).
    first_out := ARRAY(
        SELECT DISTINCT o.site_id FROM status_checker.outbox o
        JOIN status_checker.request_target t ON t.tenant_id = o.tenant_id AND t.request_id = o.request_id AND t.site_id = o.site_id
        WHERE o.tenant_id = r.tenant_id AND o.request_id = r.request_id AND o.purpose IN ('request', 'reminder')
          AND o.attempts > 0 AND t.token_gen = 0
        ORDER BY 1);
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT status_checker._token_hash(status_checker._target_token(r.tenant_id, r.request_id, f.site_id, 1)),
           r.tenant_id, r.request_id, f.site_id
    FROM unnest(first_out) f(site_id)
    ON CONFLICT DO NOTHING;
    UPDATE status_checker.request_target t SET token_gen = 1
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = ANY (first_out);

    RETURN QUERY
        WITH u AS (
            UPDATE status_checker.request_target t
            SET token_gen = t.token_gen + 1,
                token_hash = status_checker._token_hash(status_checker._target_token(t.tenant_id, t.request_id, t.site_id, t.token_gen + 1)),
                token_issued_at = pg_catalog.now()
            WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id
            RETURNING t.site_id, t.token_gen
        )
        SELECT s.code, status_checker._target_token(r.tenant_id, r.request_id, u.site_id, u.token_gen) FROM u
        JOIN status_checker.site s ON s.tenant_id = r.tenant_id AND s.site_id = u.site_id
        ORDER BY s.code;
END
$$;
COMMENT ON FUNCTION status_checker.issue_tokens(bigint) IS
'Issue new personal tokens for every target of an open request (previous tokens stop working); returns site code and token';
ALTER FUNCTION status_checker.issue_tokens(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.issue_tokens(bigint) TO status_checker_manager;
