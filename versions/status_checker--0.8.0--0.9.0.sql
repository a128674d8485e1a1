-- status_checker 0.8.0 → 0.9.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/requests/tokens.sql
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

-- The target a first link names, if its token was never issued and the
-- link's token is the target's first (generation 1); else NULLs.
-- Read-only: what report_form may call.
CREATE OR REPLACE FUNCTION status_checker._first_link_target(token text,
                                                             OUT tenant_id bigint, OUT request_id bigint, OUT site_id bigint)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    l record;
    k bytea;
BEGIN
    l := status_checker._token_locator(token);
    IF l.tenant_id IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM status_checker.request_target t
    WHERE t.tenant_id = l.tenant_id AND t.request_id = l.request_id AND t.site_id = l.site_id AND t.token_gen = 0;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- the key as _link_key reads it, without making one: a link was made with it
    SELECT lk.key INTO k FROM status_checker.link_key lk WHERE lk.tenant_id = l.tenant_id;
    IF NOT FOUND OR NOT status_checker._link_token_matches(status_checker._decrypt_bytes(l.tenant_id, 'link_key', k),
                                                           l.tenant_id, l.request_id, l.site_id, 1, token) THEN
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
    -- (their new token is of generation 2)
    IF to_regclass('pg_temp._sc_first_out') IS NULL THEN
        CREATE TEMP TABLE _sc_first_out (site_id bigint PRIMARY KEY) ON COMMIT DROP;
    END IF;
    TRUNCATE pg_temp._sc_first_out;
    INSERT INTO pg_temp._sc_first_out
    SELECT DISTINCT o.site_id FROM status_checker.outbox o
    JOIN status_checker.request_target t ON t.tenant_id = o.tenant_id AND t.request_id = o.request_id AND t.site_id = o.site_id
    WHERE o.tenant_id = r.tenant_id AND o.request_id = r.request_id AND o.purpose IN ('request', 'reminder')
      AND o.attempts > 0 AND t.token_gen = 0;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT status_checker._token_hash(status_checker._link_token(k, r.tenant_id, r.request_id, f.site_id, 1)),
           r.tenant_id, r.request_id, f.site_id
    FROM pg_temp._sc_first_out f
    ON CONFLICT DO NOTHING;
    UPDATE status_checker.request_target t SET token_gen = 1
    FROM pg_temp._sc_first_out f
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = f.site_id;

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

-- ---- src/dispatch/claim.sql
-- src/dispatch/claim.sql — the dispatcher's claim: due messages, rendered.
--
-- Since 0.4.0 recipients, contact names, channel secrets and link keys are
-- stored encrypted; the claim decrypts what the messages being sent need
-- (link keys once per tenant, secrets once per channel) and nothing else.
-- Written with CREATE OR REPLACE: one text for the install and the upgrade.

-- One claimed message rendered: text[] {headers, body} (src/dispatch/render.c)
CREATE OR REPLACE FUNCTION status_checker._render_message(
    kind text, format text, purpose text, seq integer, message_id bigint, idempotency_key text,
    subject_tpl text, body_tpl text, base_json text,
    site_id bigint, site_code text, site_name text, group_path text, shindo text, site_shindo text, site_shindo_en text,
    link text, unanswered_sites_json jsonb, unanswered_count text, unanswered_sites text, recipient_name text,
    from_name text, from_addr text, rcpt_addr text, langs text)
    RETURNS text[]
    LANGUAGE c STABLE CALLED ON NULL INPUT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_render_message';
COMMENT ON FUNCTION status_checker._render_message(text, text, text, integer, bigint, text, text, text, text, bigint, text, text, text,
                                                  text, text, text, text, jsonb, text, text, text, text, text, text, text) IS
'Internal (_claim_messages): one message rendered, {headers, body}: the site''s variables filled into the subject and text, '
'then the mail''s header lines and text, or the webhook''s header lines and JSON (ours or Slack''s)';

-- Claim up to p_limit due messages for dispatcher worker p_worker (lease
-- p_lease_ms) and return them rendered, ready to send.  Messages that need
-- not go out any more are settled here (cancelled), and messages whose
-- tenant has no enabled channel of their kind wait.
CREATE OR REPLACE FUNCTION status_checker._claim_messages(p_limit integer, p_lease_ms integer, p_worker integer DEFAULT 0)
    RETURNS TABLE (message_id bigint, tenant_id bigint, attempts integer, channel_id bigint, kind text, url text,
                   mail_from text, rcpt text, headers text, body text, secret text, tls text,
                   username text, password text, ca_file text)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    -- its statements' joins are written in the order they should run (from
    -- the batch out to its request, site, target, ...): the planner keeps
    -- that order instead of searching, since every claim is planned afresh
    -- (below): 16–20 → 10–11 ms for a claim of one message, the workers'
    -- CPU ~175 → ~160 µs a message in batches of 1,000 (docs/benchmarks.md)
    SET join_collapse_limit = 1 SET from_collapse_limit = 1 AS $$
#variable_conflict use_column
BEGIN
    -- The batch's table keeps its primary key also for a side effect: at
    -- each commit it is truncated and the index rebuilt, which invalidates
    -- this function's plans, so every claim is planned with current sizes.
    -- Without it (measured in 0.8.0: a claim of one message 21 → 6 ms),
    -- plans made while the outbox looked empty were kept for the session:
    -- a sequential scan and a sort of the outbox per claim, 40 % slower
    -- (docs/benchmarks.md, delivery).
    IF to_regclass('pg_temp._sc_claim') IS NULL THEN
        CREATE TEMP TABLE _sc_claim (
            tenant_id bigint, message_id bigint, request_id bigint, site_id bigint, contact_id bigint,
            user_id bigint, channel_kind text, recipient text, purpose text, seq integer,
            detail jsonb, attempts integer, via bigint, PRIMARY KEY (tenant_id, message_id)) ON COMMIT DELETE ROWS;
    ELSE
        DELETE FROM pg_temp._sc_claim;   -- a second claim in one transaction
    END IF;

    -- claim: the due messages, oldest first, skipping those another
    -- transaction holds; each goes through the channel it names
    -- (broadcast) or the tenant's first enabled channel of its kind
    WITH c AS (
        SELECT o.ctid AS tid FROM status_checker.outbox o
        WHERE o.sent_at IS NULL AND o.next_attempt_at <= pg_catalog.now() AND o.state IN ('queued', 'retrying')
        ORDER BY o.next_attempt_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), u AS (
        UPDATE status_checker.outbox o
        SET state = 'sending', attempts = o.attempts + 1, claimed_by = p_worker::smallint,
            lease_until = pg_catalog.now() + p_lease_ms * interval '1 millisecond',
            via_channel_id = CASE WHEN o.channel_id IS NOT NULL THEN
                                 (SELECT ch.channel_id FROM status_checker.channel ch
                                  WHERE ch.tenant_id = o.tenant_id AND ch.channel_id = o.channel_id AND ch.enabled)
                             ELSE (SELECT ch.channel_id FROM status_checker.channel ch
                                   WHERE ch.tenant_id = o.tenant_id AND ch.kind = o.channel_kind AND ch.enabled
                                   ORDER BY ch.channel_id LIMIT 1) END
        WHERE o.ctid = ANY (ARRAY(SELECT c.tid FROM c))   -- a TID scan
        RETURNING o.tenant_id, o.message_id, o.request_id, o.site_id, o.contact_id, o.user_id,
                  o.channel_kind, o.recipient, o.purpose, o.seq, o.detail, o.attempts, o.via_channel_id
    )
    INSERT INTO pg_temp._sc_claim SELECT * FROM u;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- settled without sending: the request is no longer open (its
    -- cancellation notice excepted), or the site answered before its reminder
    WITH gone AS (
        SELECT c.tenant_id, c.message_id,
               CASE WHEN q.state <> 'open' THEN format('not sent: the request is %s', q.state)
                    ELSE 'not sent: the site answered before the reminder went out' END AS why
        FROM pg_temp._sc_claim c
        JOIN status_checker.request q ON q.tenant_id = c.tenant_id AND q.request_id = c.request_id
        WHERE (c.purpose <> 'cancellation' AND q.state <> 'open')
           OR (c.purpose = 'reminder' AND EXISTS (
                   SELECT 1 FROM status_checker.request_target rt
                   WHERE rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
                     AND rt.report_count > 0))
    ), upd AS (
        UPDATE status_checker.outbox o SET state = 'cancelled', lease_until = NULL, last_error = g.why, next_attempt_at = 'infinity'
        FROM gone g WHERE o.tenant_id = g.tenant_id AND o.message_id = g.message_id
        RETURNING o.tenant_id, o.message_id
    )
    DELETE FROM pg_temp._sc_claim c USING upd WHERE c.tenant_id = upd.tenant_id AND c.message_id = upd.message_id;

    -- no enabled channel: wait (without spending an attempt) until add_channel
    WITH w AS (
        UPDATE status_checker.outbox o
        SET state = 'queued', attempts = o.attempts - 1, lease_until = NULL,
            next_attempt_at = pg_catalog.now() + interval '5 minutes',
            last_error = format('waiting: tenant %s has no enabled %s channel (add_channel)', o.tenant_id, o.channel_kind)
        FROM pg_temp._sc_claim c
        WHERE c.via IS NULL AND o.tenant_id = c.tenant_id AND o.message_id = c.message_id
        RETURNING o.tenant_id, o.message_id
    )
    DELETE FROM pg_temp._sc_claim c USING w WHERE c.tenant_id = w.tenant_id AND c.message_id = w.message_id;

    -- the link keys of the tenants concerned, decrypted once.  A link is
    -- rendered from the target's token generation and names its target
    -- (_link): a target whose token was never issued gets the token of
    -- generation 1, checked by recomputation when it is first used
    -- (src/requests/tokens.sql), so sending it writes nothing (0.9.0)
    IF to_regclass('pg_temp._sc_link_keys') IS NULL THEN
        CREATE TEMP TABLE _sc_link_keys (tenant_id bigint PRIMARY KEY, key bytea) ON COMMIT DELETE ROWS;
    ELSE
        DELETE FROM pg_temp._sc_link_keys;
    END IF;
    INSERT INTO pg_temp._sc_link_keys
    SELECT x.tenant_id, status_checker._link_key(x.tenant_id) FROM (SELECT DISTINCT c.tenant_id FROM pg_temp._sc_claim c) x;

    RETURN QUERY
    WITH ctx AS MATERIALIZED (
        -- what the messages of one request, purpose and channel share,
        -- rendered once: the templates with the request's variables filled
        -- in (the site's are filled in per message below), the channel's
        -- settings, the mail sender, the JSON common to every webhook
        SELECT k.tenant_id, k.request_id, k.purpose, k.via, ch.kind, ch.config,
               status_checker._decrypt_secrets(ch.tenant_id, ch.secrets) AS secrets,
               coalesce(ch.config ->> 'format', 'json') AS format,
               coalesce(ch.config ->> 'lang', 'ja') AS langs,
               (status_checker._mailbox(ch.config ->> 'from')).name AS from_name,
               (status_checker._mailbox(ch.config ->> 'from')).addr AS from_addr,
               t.subject_tpl, t.body_tpl,
               pg_catalog.current_setting('status_checker.link_base_url', true) AS link_base,
               jsonb_build_object(
                   'version', 1, 'type', k.purpose,
                   'tenant', jsonb_build_object('id', k.tenant_id, 'name', tn.name),
                   'request', jsonb_build_object('id', q.request_id, 'title', q.title, 'deadline', q.deadline,
                                                 'drill', q.drill, 'state', q.state, 'message', q.message,
                                                 'cancel_reason', q.cancel_reason),
                   'event', CASE WHEN e.event_id IS NOT NULL THEN jsonb_build_object(
                                 'id', e.event_id, 'source', e.source, 'summary', ev.title,
                                 'max_shindo', e.max_shindo::text, 'origin_time', e.origin_time) END)::text AS base_json
        FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.purpose, c.via FROM pg_temp._sc_claim c) k
        JOIN status_checker.channel ch ON ch.tenant_id = k.tenant_id AND ch.channel_id = k.via
        JOIN status_checker.request q ON q.tenant_id = k.tenant_id AND q.request_id = k.request_id
        JOIN status_checker.tenant tn ON tn.tenant_id = k.tenant_id
        LEFT JOIN status_checker.event e ON e.event_id = q.event_id
        CROSS JOIN LATERAL (SELECT CASE WHEN e.event_id IS NOT NULL THEN status_checker._event_title(e) END AS title) ev
        CROSS JOIN LATERAL (SELECT coalesce(ch.config ->> 'timezone', 'Asia/Tokyo') AS tz) z
        CROSS JOIN LATERAL (
            SELECT (array_agg(f.subject ORDER BY l.i))[1] AS subject_tpl,
                   string_agg(f.body, E'\n\n──────── English ────────\n\n' ORDER BY l.i) AS body_tpl
            FROM unnest(CASE coalesce(ch.config ->> 'lang', 'ja') WHEN 'ja+en' THEN ARRAY['ja', 'en']
                        ELSE ARRAY[coalesce(ch.config ->> 'lang', 'ja')] END) WITH ORDINALITY l(lang, i)
            JOIN status_checker.default_template dt ON dt.purpose = k.purpose AND dt.lang = l.lang
            LEFT JOIN status_checker.message_template mt
                   ON mt.tenant_id = k.tenant_id AND mt.purpose = dt.purpose AND mt.lang = dt.lang
            CROSS JOIN LATERAL (SELECT ARRAY[
                'request_title', q.title, 'event_summary', coalesce(ev.title, ''),
                'deadline', CASE WHEN l.lang = 'ja' THEN to_char(q.deadline AT TIME ZONE z.tz, 'FMMM月FMDD日 HH24:MI')
                                 ELSE to_char(q.deadline AT TIME ZONE z.tz, 'YYYY-MM-DD HH24:MI') END
                            || CASE WHEN z.tz = 'Asia/Tokyo' THEN ' (JST)' ELSE ' (' || z.tz || ')' END,
                'message', coalesce(q.message, ''), 'tenant_name', tn.name,
                'cancel_reason', coalesce(q.cancel_reason, ''),
                -- the site's intensity is worded per language: the English part asks for its own variable
                'site_shindo', CASE WHEN l.lang = 'ja' THEN '{{site_shindo}}' ELSE '{{site_shindo_en}}' END] AS v) rv
            CROSS JOIN LATERAL (SELECT
                CASE WHEN q.drill AND coalesce(mt.subject, dt.subject) NOT LIKE '%訓練%' THEN
                     CASE l.lang WHEN 'ja' THEN '【訓練】' ELSE '[DRILL] ' END ELSE '' END
                    || status_checker._fill(coalesce(mt.subject, dt.subject), VARIADIC rv.v) AS subject,
                status_checker._fill(coalesce(mt.body, dt.body), VARIADIC rv.v) AS body) f
        ) t
    ), m AS (
        SELECT c.message_id, c.tenant_id, c.attempts, c.via, c.channel_kind,
               -- a contact's or user's address is encrypted; a broadcast channel's URL is configuration
               CASE WHEN c.recipient LIKE 'sc1:%' THEN status_checker._decrypt(c.tenant_id, 'recipient', c.recipient)
                    ELSE c.recipient END AS recipient,
               c.purpose, c.seq, c.detail,
               c.site_id, x.kind, x.config, x.secrets, x.format, x.langs, x.from_name, x.from_addr,
               x.subject_tpl, x.body_tpl, x.base_json, s.code AS site_code, s.name AS site_name,
               'sc1-' || c.tenant_id || '-' || c.message_id AS idem,
               CASE WHEN rt.site_id IS NOT NULL AND c.purpose IN ('request', 'reminder') THEN
                   x.link_base || status_checker._link(lk.key, c.tenant_id, c.request_id, c.site_id,
                                                       greatest(rt.token_gen, 1)) END AS link,
               rt.asked_shindo, g.path AS group_path,
               coalesce(status_checker._decrypt(sc.tenant_id, 'contact_name', sc.name), au.login) AS recipient_name
        FROM pg_temp._sc_claim c
        JOIN ctx x ON x.tenant_id = c.tenant_id AND x.request_id = c.request_id AND x.purpose = c.purpose AND x.via = c.via
        LEFT JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        LEFT JOIN status_checker.request_target rt
               ON rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
        LEFT JOIN pg_temp._sc_link_keys lk ON lk.tenant_id = c.tenant_id
        LEFT JOIN status_checker.site_contact sc ON sc.tenant_id = c.tenant_id AND sc.contact_id = c.contact_id
        LEFT JOIN status_checker.app_user au ON au.tenant_id = c.tenant_id AND au.user_id = c.user_id
    ), r AS MATERIALIZED (
        -- each message rendered once, in C (src/dispatch/render.c): the
        -- site's variables, then the mail's headers or the webhook's body
        SELECT m.message_id, m.tenant_id, m.attempts, m.via, m.channel_kind, m.recipient, m.config, m.secrets,
               m.from_addr, x.rcpt_addr,
               status_checker._render_message(
                   m.channel_kind, m.format, m.purpose, m.seq, m.message_id, m.idem,
                   m.subject_tpl, m.body_tpl, m.base_json,
                   m.site_id, m.site_code, m.site_name, m.group_path, m.asked_shindo::text,
                   -- the site's intensity is worded per language: the English part asks for its own variable
                   CASE WHEN m.asked_shindo IS NOT NULL THEN 'この拠点の震度: ' || status_checker.shindo_label(m.asked_shindo, 'ja') END,
                   CASE WHEN m.asked_shindo IS NOT NULL THEN 'Seismic intensity at this site: ' || status_checker.shindo_label(m.asked_shindo, 'en') END,
                   m.link, m.detail -> 'sites',
                   CASE WHEN m.detail IS NULL THEN '0' ELSE jsonb_array_length(m.detail -> 'sites')::text END,
                   CASE WHEN m.detail IS NULL THEN '' ELSE
                       (SELECT string_agg('・' || (y ->> 'code') || ' ' || (y ->> 'name'), E'\n') FROM jsonb_array_elements(m.detail -> 'sites') y) END,
                   m.recipient_name, m.from_name, m.from_addr, x.rcpt_addr, m.langs) AS hb
        FROM m
        CROSS JOIN LATERAL (SELECT CASE WHEN m.channel_kind = 'email' THEN
                                coalesce((status_checker._mailbox(m.recipient)).addr, m.recipient) END AS rcpt_addr) x
    )
    SELECT r.message_id, r.tenant_id, r.attempts, r.via, r.channel_kind,
           CASE WHEN r.channel_kind = 'email' THEN r.config ->> 'url' ELSE r.recipient END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || r.from_addr || '>' END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || r.rcpt_addr || '>' END,
           r.hb[1], r.hb[2],
           r.secrets ->> 'secret',
           CASE WHEN r.channel_kind = 'email' THEN coalesce(r.config ->> 'starttls', 'require') END,
           r.config ->> 'username', r.secrets ->> 'password', r.config ->> 'ca_file'
    FROM r
    ORDER BY r.message_id;
END
$$;
COMMENT ON FUNCTION status_checker._claim_messages(integer, integer, integer) IS
'Internal (dispatcher worker p_worker): claim due messages with FOR UPDATE SKIP LOCKED and a lease, and return them rendered '
'(mail headers and text, or webhook JSON) with their channel''s settings';

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
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification', HINT = 'Use the link in the most recent message.';
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


-- ---- src/security/privileges.sql
-- src/security/privileges.sql — row-level security on every tenant table,
-- who owns the API functions, and who may call and read what.  Runs last
-- (before finish.sql), in the install script and in every upgrade, so that
-- it covers every table and function that exists.

-- ------------------------------------------------------------ row-level security

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'status_checker' AND c.relkind = 'r'
        ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (status_checker._may_see(tenant_id)) '
                       'WITH CHECK (status_checker._may_see(tenant_id))', t);
    END LOOP;
END
$$;

-- ------------------------------------------------------------ API functions
--
-- The tenant API runs as status_checker_api (SECURITY DEFINER): callers need
-- no table privileges, and row-level security still confines every
-- statement to the caller's tenant, so another tenant's request, site or
-- form simply does not exist for them.  A few functions must look across
-- tenants (a report link names its tenant itself; the audit chain is sealed
-- for all tenants at once): they run as the extension's owner and check
-- the tenant themselves (_require_tenant).

DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'add_channel(bigint,text,text,jsonb)', 'add_group_manager(bigint,bigint,text)',
        'add_site_contact(bigint,text,text,text,text)', 'add_user(bigint,text,text,text)',
        'backtest_rule(bigint,bigint)', 'cancel_request(bigint,text)', 'check_answers(bigint,jsonb)',
        'close_request(bigint)', 'create_form(bigint,text,jsonb)',
        'create_request(bigint,bigint,text,timestamptz,jsonb,boolean,text)',
        'create_site_group(bigint,text,bigint)',
        'create_trigger_rule(bigint,text,bigint,status_checker.shindo,jsonb,interval,boolean,interval,boolean,text[],text,text[],text)',
        'import_sites(bigint,bytea)', 'import_sites(bigint,text)', 'issue_token(bigint,text)', 'issue_tokens(bigint)',
        'remove_user(bigint,text)', 'request_geojson(bigint)', 'retry_message(bigint)',
        'set_channel_enabled(bigint,boolean)', 'set_message_template(bigint,text,text,text,text)',
        'set_request_reminders(bigint,interval[],interval)', 'set_rule_reminders(bigint,interval[],interval)',
        'set_trigger_rule_enabled(bigint,boolean)', 'set_user_role(bigint,text,text)',
        'submit_report_for(bigint,text,jsonb)', 'set_user_password(bigint,text,text)',
        'upsert_site(bigint,text,text,text,double precision,double precision,bigint,text,jsonb)',
        -- triggers that may fire at commit, under whatever role the session has then
        '_flush_counters()', '_check_admin_left()']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        EXECUTE format('ALTER FUNCTION status_checker.%s OWNER TO status_checker_api', f);
        -- pinned search_path (the functions that have one keep theirs)
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY ARRAY[
        'submit_report(text,jsonb)', 'submit_report(text,jsonb,text)', 'audit_chain_head(bigint)', 'verify_audit_log(bigint)',
        'verify_audit_log(bigint,jsonb)', 'installation_public_key(text)', 'verify_deletion_certificate(jsonb)',
        'report_form(text)', 'web_login(bigint,text,text)', 'web_session_user(text)', 'web_logout(text)']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
END
$$;

-- status_checker_api: everything the API functions touch, nothing they do not
GRANT USAGE ON SCHEMA status_checker TO status_checker_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA status_checker TO status_checker_api;
REVOKE ALL ON status_checker.signing_key, status_checker.deletion_certificate, status_checker.data_key,
              status_checker.audit_sealer, status_checker.audit_gap FROM status_checker_api;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA status_checker TO status_checker_api;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA status_checker TO status_checker_api;

-- ------------------------------------------------------------ tenant roles

GRANT USAGE ON SCHEMA status_checker TO status_checker_viewer, status_checker_gateway;

-- viewer: read the tenant's data (row-level security keeps it to the tenant)
GRANT SELECT ON
    status_checker.tenant, status_checker.app_user, status_checker.site_group, status_checker.site,
    status_checker.site_contact, status_checker.form, status_checker.request, status_checker.request_target,
    status_checker.report, status_checker.request_counter, status_checker.trigger_rule, status_checker.trigger_fire,
    status_checker.trigger_evaluation, status_checker.outbox, status_checker.delivery_attempt,
    status_checker.site_group_manager, status_checker.message_template, status_checker.default_template,
    -- shared reference data: areas, events, feeds
    status_checker.jma_area, status_checker.jma_municipality, status_checker.jma_station,
    status_checker.event, status_checker.event_product, status_checker.event_product_intensity,
    status_checker.event_product_tsunami, status_checker.feed
    TO status_checker_viewer;
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_viewer;
-- (views: see below; contacts and users in clear are for managers, key status for the operator)
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind = 'v' LOOP
        EXECUTE format('GRANT SELECT ON %s TO status_checker_viewer', v);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION
    status_checker.current_tenant(), status_checker.request_geojson(bigint), status_checker.check_answers(bigint, jsonb),
    status_checker.request_dashboard(bigint), status_checker.status_matrix_csv(bigint),
    status_checker._event_title(status_checker.event), status_checker._require_request(bigint, boolean),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb),
    -- what the row-level security policies call
    status_checker._tenant(), status_checker._is_operator(), status_checker._may_see(bigint)
    TO status_checker_viewer;
-- what the views call (the views run with their reader's privileges)
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT DISTINCT p.oid::regprocedure FROM pg_rewrite rw
        JOIN pg_class v ON v.oid = rw.ev_class
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_proc'::regclass
        JOIN pg_proc p ON p.oid = d.refobjid
        WHERE v.relnamespace = 'status_checker'::regnamespace AND p.pronamespace = 'status_checker'::regnamespace
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO status_checker_viewer', f);
    END LOOP;
END
$$;

REVOKE SELECT ON status_checker.contact_list, status_checker.user_list, status_checker.encryption_status
    FROM status_checker_viewer;
GRANT SELECT ON status_checker.contact_list, status_checker.user_list TO status_checker_manager;

-- reporter: report on a site's behalf
GRANT EXECUTE ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb), status_checker.submit_report(text, jsonb),
    status_checker.submit_report(text, jsonb, text), status_checker.report_form(text)
    TO status_checker_reporter;

-- manager: requests and their delivery
GRANT SELECT (tenant_id, channel_id, kind, name, config, enabled, created_at) ON status_checker.channel TO status_checker_manager;
GRANT EXECUTE ON FUNCTION
    status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text),
    status_checker.close_request(bigint), status_checker.cancel_request(bigint, text),
    status_checker.set_request_reminders(bigint, interval[], interval),
    status_checker.issue_token(bigint, text), status_checker.issue_tokens(bigint), status_checker.retry_message(bigint)
    TO status_checker_manager;

-- admin: the tenant's configuration, its users and its audit log
GRANT SELECT ON status_checker.audit_log, status_checker.audit_chain, status_checker.audit_head, status_checker.audit_checkpoint
    TO status_checker_admin;
GRANT EXECUTE ON FUNCTION
    status_checker.add_user(bigint, text, text, text), status_checker.set_user_role(bigint, text, text),
    status_checker.remove_user(bigint, text), status_checker.set_user_password(bigint, text, text),
    status_checker.create_site_group(bigint, text, bigint),
    status_checker.upsert_site(bigint, text, text, text, double precision, double precision, bigint, text, jsonb),
    status_checker.add_site_contact(bigint, text, text, text, text),
    status_checker.import_sites(bigint, bytea), status_checker.import_sites(bigint, text),
    status_checker.create_form(bigint, text, jsonb),
    status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text),
    status_checker.set_trigger_rule_enabled(bigint, boolean), status_checker.set_rule_reminders(bigint, interval[], interval),
    status_checker.backtest_rule(bigint, bigint),
    status_checker.add_channel(bigint, text, text, jsonb), status_checker.set_channel_enabled(bigint, boolean),
    status_checker.set_message_template(bigint, text, text, text, text),
    status_checker.add_group_manager(bigint, bigint, text),
    status_checker.audit_chain_head(bigint), status_checker.verify_audit_log(bigint), status_checker.verify_audit_log(bigint, jsonb)
    TO status_checker_admin;

-- gateway: act for a user, and take reports by link
GRANT EXECUTE ON FUNCTION
    status_checker.set_app_user(bigint, text), status_checker.reset_app_user(),
    status_checker.submit_report(text, jsonb), status_checker.submit_report(text, jsonb, text),
    status_checker.report_form(text), status_checker.current_tenant(),
    status_checker.web_login(bigint, text, text), status_checker.web_session_user(text), status_checker.web_logout(text),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb)
    TO status_checker_gateway;

-- ---- src/common/finish.sql
-- src/common/finish.sql — last part of the install script: privileges.
--
-- Internal helpers (names starting with "_") are not for PUBLIC.  The
-- role model (admin/manager/reporter/viewer, gateway) and row-level
-- security arrive with the security domain; until then the extension's
-- objects are usable by their owner and by roles the DBA grants.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA status_checker FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    status_checker.shindo_in(cstring), status_checker.shindo_out(status_checker.shindo),
    status_checker.shindo_recv(internal), status_checker.shindo_send(status_checker.shindo),
    status_checker.shindo_eq(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_ne(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_lt(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_le(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_gt(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_ge(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_hash(status_checker.shindo),
    status_checker.shindo_hash_extended(status_checker.shindo, bigint),
    status_checker.shindo_larger(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_label(status_checker.shindo, text),
    status_checker.shindo_from_p2pquake(integer),
    status_checker.shindo_from_instrumental(numeric),
    status_checker.shindo_ordinal(status_checker.shindo),
    status_checker.normalize_municipality_code(text),
    status_checker.default_form_definition(text),
    status_checker.validate_form_definition(jsonb),
    status_checker.min(status_checker.shindo),
    status_checker.max(status_checker.shindo)
    TO PUBLIC;
GRANT USAGE ON SCHEMA status_checker TO PUBLIC;
GRANT USAGE ON TYPE status_checker.shindo TO PUBLIC;

-- pg_dump must dump the data of every table (they are extension members,
-- which pg_dump otherwise skips) and the state of their identity sequences
-- — except the tables whose rows the install script writes (the built-in
-- templates): CREATE EXTENSION in the restored database makes them.
DO $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'status_checker' AND c.relkind IN ('r', 'S')
          AND c.relname NOT IN ('default_template')
        ORDER BY c.relkind, c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(rel, '');
    END LOOP;
END
$$;
