-- src/dispatch/outbox.sql — the outbox: messages to send, claimed and
-- recorded by the dispatcher worker (src/dispatch/dispatcher.c).
--
-- Exactly one effect per cause: a message's natural key is (request, site,
-- purpose, number, contact | manager | channel); enqueueing twice is a
-- no-op.  Messages are enqueued in the transaction that causes them (a new
-- request target, a cancellation, a reminder round) and the dispatcher is
-- woken when that transaction commits.  Sending is at least once: a
-- message whose outcome was not recorded (crash) is sent again with the
-- same idempotency key (webhooks: Idempotency-Key header; mails: the
-- Message-ID), so that receivers can recognise the duplicate.
--
-- States: queued → sending → sent | retrying → sending … | dead; and
-- cancelled (not sent because its request was closed or cancelled, or the
-- site answered before a reminder went out).

CREATE TABLE status_checker.outbox (
    tenant_id        bigint NOT NULL,
    message_id       bigint GENERATED ALWAYS AS IDENTITY,
    request_id       bigint NOT NULL,
    site_id          bigint,              -- NULL: an escalation (about several sites)
    contact_id       bigint,              -- a site contact, or ...
    user_id          bigint,              -- ... a manager (escalation), or ...
    channel_id       bigint,              -- ... a webhook channel that receives everything (broadcast)
    channel_kind     text NOT NULL CHECK (channel_kind IN ('email', 'webhook')),
    recipient        text NOT NULL,       -- address or URL when enqueued
    purpose          text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    seq              integer NOT NULL DEFAULT 0,   -- reminder number
    detail           jsonb,               -- escalation: the sites that have not answered
    state            text NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'sending', 'sent', 'retrying', 'dead', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    lease_until      timestamptz,
    last_status      integer,             -- HTTP status or SMTP reply code of the last attempt
    last_error       text,
    via_channel_id   bigint,              -- the channel the last attempt went through
    enqueued_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    sent_at          timestamptz,
    PRIMARY KEY (tenant_id, message_id),
    CHECK (num_nonnulls(contact_id, user_id, channel_id) = 1),
    CHECK ((state = 'sending') = (lease_until IS NOT NULL))
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX outbox_natural_key ON status_checker.outbox
    (tenant_id, request_id, site_id, purpose, seq, contact_id, user_id, channel_id) NULLS NOT DISTINCT;
-- The dispatcher's queue.  Its predicate and key are columns a claim does
-- not change, so that a claim is a HOT update (no index entries); a dead or
-- cancelled message is parked at next_attempt_at = infinity.
CREATE INDEX outbox_due ON status_checker.outbox (next_attempt_at) WHERE sent_at IS NULL;
COMMENT ON TABLE status_checker.outbox IS
'Messages to send (mail, webhook): one per request, site, purpose, reminder number and recipient; state, attempts, lease, last error';

-- failed attempts only (a sent message's record is the outbox row itself)
CREATE TABLE status_checker.delivery_attempt (
    tenant_id    bigint NOT NULL,
    message_id   bigint NOT NULL,
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    outcome      text NOT NULL CHECK (outcome IN ('retry', 'dead')),
    status       integer,
    error        text,
    PRIMARY KEY (tenant_id, message_id, attempt)
);
COMMENT ON TABLE status_checker.delivery_attempt IS
'Delivery log: every failed attempt of a message, with the server''s status and the error';

-- ---------------------------------------------------------- C helpers

CREATE FUNCTION status_checker._outbox_wake() RETURNS trigger
    LANGUAGE c SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_outbox_wake';
COMMENT ON FUNCTION status_checker._outbox_wake() IS
'Internal: statement trigger on the outbox: wakes the dispatcher when the transaction commits';

CREATE FUNCTION status_checker._wake_dispatcher() RETURNS void
    LANGUAGE c VOLATILE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_wake_dispatcher';
COMMENT ON FUNCTION status_checker._wake_dispatcher() IS
'Internal: wake the dispatcher when the current transaction commits';

CREATE FUNCTION status_checker.dispatcher_status(
    OUT running boolean, OUT pid integer, OUT started_at timestamptz, OUT heartbeat timestamptz,
    OUT in_flight bigint, OUT waiting bigint, OUT sent bigint, OUT retried bigint, OUT dead bigint)
    LANGUAGE c VOLATILE PARALLEL RESTRICTED SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_dispatcher_status';
COMMENT ON FUNCTION status_checker.dispatcher_status() IS
'The dispatcher worker: running, pid, start, last heartbeat, transfers in flight, claimed messages waiting for the rate limit, '
'and outcomes since the server started (sent, retried, dead); running is false without shared_preload_libraries';

CREATE TRIGGER outbox_wake AFTER INSERT ON status_checker.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION status_checker._outbox_wake();

-- ---------------------------------------------------------- enqueueing

-- One message of a purpose for each contact of the listed sites of a
-- request, and one for each broadcasting webhook channel of the tenant.
CREATE FUNCTION status_checker._enqueue_site_messages(p_tenant_id bigint, p_request_id bigint, p_purpose text,
                                                      p_seq integer, p_sites bigint[], p_first boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- the first messages of new targets cannot exist yet: a plain insert
    -- (ON CONFLICT's speculative insertion cost a third more)
    EXECUTE format($q$
        INSERT INTO status_checker.outbox (tenant_id, request_id, site_id, contact_id, channel_id, channel_kind, recipient, purpose, seq)
        SELECT $1, $2, x.site_id, x.contact_id, x.channel_id, x.kind, x.recipient, $3, $4
        FROM (SELECT s.site_id, c.contact_id, NULL::bigint AS channel_id, c.channel AS kind, c.address AS recipient
              FROM unnest($5) s(site_id)
              JOIN status_checker.site_contact c ON c.tenant_id = $1 AND c.site_id = s.site_id
              UNION ALL
              SELECT s.site_id, NULL, ch.channel_id, 'webhook', ch.config ->> 'url'
              FROM unnest($5) s(site_id)
              CROSS JOIN status_checker.channel ch
              WHERE ch.tenant_id = $1 AND ch.kind = 'webhook' AND ch.enabled
                AND coalesce((ch.config ->> 'broadcast')::boolean, true)) x
        ORDER BY x.site_id %s$q$, CASE WHEN p_first THEN '' ELSE 'ON CONFLICT DO NOTHING' END)
    USING p_tenant_id, p_request_id, p_purpose, p_seq, p_sites;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_site_messages(bigint, bigint, text, integer, bigint[], boolean) IS
'Internal: enqueue a message of a purpose to every contact of the given sites of a request and to the broadcasting webhook channels';

CREATE FUNCTION status_checker._tenant_delivers(p_tenant_id bigint) RETURNS boolean
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN EXISTS (SELECT 1 FROM status_checker.site_contact c WHERE c.tenant_id = p_tenant_id)
        OR EXISTS (SELECT 1 FROM status_checker.channel ch
                   WHERE ch.tenant_id = p_tenant_id AND ch.kind = 'webhook' AND ch.enabled
                     AND coalesce((ch.config ->> 'broadcast')::boolean, true));
COMMENT ON FUNCTION status_checker._tenant_delivers(bigint) IS
'Internal: whether asking a site of the tenant can make a message (the tenant has contacts or a broadcasting webhook)';

-- The functions that insert request targets (create_request, _fire_rules:
-- src/requests/targets.sql, src/triggers/fire.sql) enqueue the new targets'
-- first messages in the same statement's transaction by calling
-- _enqueue_site_messages(..., 'request', 0, sites, true).  (A statement
-- trigger with a transition table did the same for any insert, but kept
-- every new target row in a tuplestore: a fifth of the time of asking
-- 100,000 sites, even for tenants that have nobody to send to.)

CREATE FUNCTION status_checker._enqueue_cancellation() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    sites bigint[];
BEGIN
    -- what has not gone out yet is not sent at all
    UPDATE status_checker.outbox o
    SET state = 'cancelled', last_error = 'not sent: the request was cancelled', next_attempt_at = 'infinity'
    WHERE o.tenant_id = NEW.tenant_id AND o.request_id = NEW.request_id
      AND o.purpose <> 'cancellation' AND o.state IN ('queued', 'retrying');
    -- the sites that were (or may have been) asked are told
    SELECT array_agg(DISTINCT o.site_id ORDER BY o.site_id) INTO sites FROM status_checker.outbox o
    WHERE o.tenant_id = NEW.tenant_id AND o.request_id = NEW.request_id
      AND o.purpose IN ('request', 'reminder') AND o.state IN ('sent', 'sending');
    IF sites IS NOT NULL THEN
        PERFORM status_checker._enqueue_site_messages(NEW.tenant_id, NEW.request_id, 'cancellation', 0, sites);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_cancellation() IS
'Internal: when a request is cancelled, its unsent messages are dropped and the sites already asked are told';

CREATE TRIGGER request_cancel_enqueue AFTER UPDATE OF state ON status_checker.request
    FOR EACH ROW WHEN (NEW.state = 'cancelled' AND OLD.state <> 'cancelled')
    EXECUTE FUNCTION status_checker._enqueue_cancellation();

-- ---------------------------------------------------------- the dispatcher's side

-- On start: messages left 'sending' (their dispatcher stopped or crashed
-- before recording the outcome) are due again; their receivers may see
-- them twice, with the same idempotency key.
CREATE FUNCTION status_checker._dispatcher_startup() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    UPDATE status_checker.outbox o
    SET state = 'retrying', lease_until = NULL, next_attempt_at = pg_catalog.now(),
        last_error = 'interrupted: the dispatcher stopped before the outcome was recorded'
    WHERE o.state = 'sending';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._dispatcher_startup() IS
'Internal: called by the dispatcher when it starts: messages left sending become due again (at-least-once delivery)';

CREATE FUNCTION status_checker._outbox_next_wait() RETURNS double precision
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (SELECT extract(epoch FROM min(o.next_attempt_at) - pg_catalog.clock_timestamp())
            FROM status_checker.outbox o WHERE o.sent_at IS NULL AND o.state IN ('queued', 'retrying'));
COMMENT ON FUNCTION status_checker._outbox_next_wait() IS
'Internal: seconds until the next message is due (NULL when none waits)';

CREATE FUNCTION status_checker._mask_recipient(kind text, recipient text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE kind
        WHEN 'email' THEN regexp_replace(recipient, '^(.)[^@]*@', '\1***@')
        ELSE coalesce(substring(recipient FROM '^[a-z]+://[^/?#]+'), '') || '/…' END;
COMMENT ON FUNCTION status_checker._mask_recipient(text, text) IS
'Internal: a recipient as views show it: w***@example.com, https://hooks.example.com/…';

-- Claim up to p_limit due messages (lease p_lease_ms) and return them
-- rendered, ready to send.  Messages that need not go out any more are
-- settled here (cancelled), and messages whose tenant has no enabled
-- channel of their kind wait.
CREATE FUNCTION status_checker._claim_messages(p_limit integer, p_lease_ms integer)
    RETURNS TABLE (message_id bigint, tenant_id bigint, attempts integer, channel_id bigint, kind text, url text,
                   mail_from text, rcpt text, headers text, body text, secret text, tls text,
                   username text, password text, ca_file text)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
BEGIN
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
        SET state = 'sending', attempts = o.attempts + 1,
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

    -- the targets whose link goes out for the first time get their token
    -- (a random token of 0.2.0 is revoked and replaced)
    PERFORM status_checker._link_key(x.tenant_id) FROM (SELECT DISTINCT c.tenant_id FROM pg_temp._sc_claim c) x;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id
    FROM pg_temp._sc_claim c
    JOIN status_checker.request_target t ON t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id
    WHERE c.purpose IN ('request', 'reminder') AND t.token_gen = 0 AND t.token_hash IS NOT NULL
    ON CONFLICT DO NOTHING;
    UPDATE status_checker.request_target t
    SET token_gen = 1, token_issued_at = pg_catalog.now(),
        token_hash = status_checker._token_hash(status_checker._link_token(k.key, t.tenant_id, t.request_id, t.site_id, 1))
    FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.site_id FROM pg_temp._sc_claim c
          WHERE c.purpose IN ('request', 'reminder')) c
    JOIN status_checker.link_key k ON k.tenant_id = c.tenant_id
    WHERE t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id AND t.token_gen = 0;

    RETURN QUERY
    WITH ctx AS MATERIALIZED (
        -- what the messages of one request, purpose and channel share,
        -- rendered once: the templates with the request's variables filled
        -- in (the site's are filled in per message below), the channel's
        -- settings, the mail sender, the JSON common to every webhook
        SELECT k.tenant_id, k.request_id, k.purpose, k.via, ch.kind, ch.config, ch.secrets,
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
        SELECT c.message_id, c.tenant_id, c.attempts, c.via, c.channel_kind, c.recipient, c.purpose, c.seq, c.detail,
               c.site_id, x.kind, x.config, x.secrets, x.format, x.langs, x.from_name, x.from_addr,
               x.subject_tpl, x.body_tpl, x.base_json, s.code AS site_code, s.name AS site_name,
               'sc1-' || c.tenant_id || '-' || c.message_id AS idem,
               CASE WHEN rt.token_gen > 0 AND c.purpose IN ('request', 'reminder') THEN
                   x.link_base || status_checker._link_token(lk.key, c.tenant_id, c.request_id, c.site_id, rt.token_gen) END AS link,
               rt.asked_shindo, g.path AS group_path,
               coalesce(sc.name, au.login) AS recipient_name
        FROM pg_temp._sc_claim c
        JOIN ctx x ON x.tenant_id = c.tenant_id AND x.request_id = c.request_id AND x.purpose = c.purpose AND x.via = c.via
        LEFT JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        LEFT JOIN status_checker.request_target rt
               ON rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
        LEFT JOIN status_checker.link_key lk ON lk.tenant_id = c.tenant_id
        LEFT JOIN status_checker.site_contact sc ON sc.tenant_id = c.tenant_id AND sc.contact_id = c.contact_id
        LEFT JOIN status_checker.app_user au ON au.tenant_id = c.tenant_id AND au.user_id = c.user_id
    ), r AS (
        SELECT m.*, status_checker._fill(m.subject_tpl, VARIADIC sv.v) AS subject,
               status_checker._fill(m.body_tpl, VARIADIC sv.v) AS text_body
        FROM m
        CROSS JOIN LATERAL (SELECT ARRAY[
            'site_name', coalesce(m.site_name, ''), 'site_code', coalesce(m.site_code, ''),
            'group_name', coalesce(m.group_path, ''),
            'site_shindo', CASE WHEN m.asked_shindo IS NOT NULL THEN 'この拠点の震度: ' || status_checker.shindo_label(m.asked_shindo, 'ja') ELSE '' END,
            'site_shindo_en', CASE WHEN m.asked_shindo IS NOT NULL THEN 'Seismic intensity at this site: ' || status_checker.shindo_label(m.asked_shindo, 'en') ELSE '' END,
            'link', coalesce(m.link, ''), 'reminder_number', m.seq::text,
            'unanswered_count', CASE WHEN m.detail IS NULL THEN '0' ELSE jsonb_array_length(m.detail -> 'sites')::text END,
            'unanswered_sites', CASE WHEN m.detail IS NULL THEN '' ELSE
                (SELECT string_agg('・' || (y ->> 'code') || ' ' || (y ->> 'name'), E'\n') FROM jsonb_array_elements(m.detail -> 'sites') y) END,
            'recipient_name', coalesce(m.recipient_name, '')] AS v) sv
    )
    SELECT r.message_id, r.tenant_id, r.attempts, r.via, r.channel_kind,
           CASE WHEN r.channel_kind = 'email' THEN r.config ->> 'url' ELSE r.recipient END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || r.from_addr || '>' END,
           CASE WHEN r.channel_kind = 'email' THEN '<' || coalesce((status_checker._mailbox(r.recipient)).addr, r.recipient) || '>' END,
           CASE WHEN r.channel_kind = 'email' THEN concat_ws(E'\n',
                    'From: ' || coalesce(status_checker._mime_header(r.from_name) || ' ', '') || '<' || r.from_addr || '>',
                    'To: ' || coalesce(status_checker._mime_header(nullif(r.recipient_name, '')) || ' ', '')
                           || '<' || coalesce((status_checker._mailbox(r.recipient)).addr, r.recipient) || '>',
                    'Subject: ' || status_checker._mime_header(r.subject),
                    'Date: ' || to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS "+0000"'),
                    'Message-ID: <' || r.idem || '@' || split_part(r.from_addr, '@', 2) || '>',
                    'Content-Language: ' || replace(r.langs, '+', ', '),
                    'Auto-Submitted: auto-generated',
                    'X-Auto-Response-Suppress: All',
                    'X-Status-Checker-Purpose: ' || r.purpose,
                    'X-Status-Checker-Idempotency-Key: ' || r.idem)
                ELSE 'Content-Type: application/json; charset=utf-8' || E'\nIdempotency-Key: ' || r.idem
                     || E'\nX-Status-Checker-Message-Id: ' || r.message_id || E'\nX-Status-Checker-Purpose: ' || r.purpose END,
           CASE WHEN r.channel_kind = 'email' THEN r.text_body
                WHEN r.format = 'slack' THEN jsonb_build_object('text', '*' || r.subject || '*' || E'\n' || r.text_body)::text
                -- the shared part (rendered once per context) and this message's part, both
                -- JSON objects, joined into one (json_build_object writes text directly)
                ELSE left(r.base_json, -1) || ', ' || substr(json_build_object(
                    'idempotency_key', r.idem, 'message_id', r.message_id,
                    'site', CASE WHEN r.site_id IS NOT NULL THEN json_build_object(
                                 'code', r.site_code, 'name', r.site_name, 'group', r.group_path,
                                 'shindo', r.asked_shindo::text) END,
                    'link', r.link,
                    'reminder_number', CASE WHEN r.purpose = 'reminder' THEN r.seq END,
                    'unanswered_sites', r.detail -> 'sites',
                    'subject', r.subject, 'text', r.text_body)::text, 2) END,
           r.secrets ->> 'secret',
           CASE WHEN r.channel_kind = 'email' THEN coalesce(r.config ->> 'starttls', 'require') END,
           r.config ->> 'username', r.secrets ->> 'password', r.config ->> 'ca_file'
    FROM r
    ORDER BY r.message_id;
END
$$;
COMMENT ON FUNCTION status_checker._claim_messages(integer, integer) IS
'Internal (dispatcher): claim due messages with FOR UPDATE SKIP LOCKED and a lease, and return them rendered '
'(mail headers and text, or webhook JSON) with their channel''s settings';

-- Record the outcomes of attempts.  An attempt is matched by its message
-- and attempt number, so that a late outcome of a superseded attempt
-- changes nothing.
CREATE FUNCTION status_checker._record_outcomes(p_tenants bigint[], p_ids bigint[], p_attempts integer[], p_outcomes text[],
                                               p_codes integer[], p_errors text[], p_retry_after integer[],
                                               p_max_attempts integer, p_base_ms integer, p_max_ms integer)
    RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    -- a batch is a few hundred rows of a large table: look each up by its key
    SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off AS $$
BEGIN
    WITH x AS (
        SELECT * FROM unnest(p_tenants, p_ids, p_attempts, p_outcomes, p_codes, p_errors, p_retry_after)
                      AS x(tenant_id, message_id, attempt, outcome, code, error, retry_after)
    ), u AS (
        UPDATE status_checker.outbox o
        SET state = CASE WHEN x.outcome = 'sent' THEN 'sent'
                         WHEN x.outcome = 'dead' OR o.attempts >= p_max_attempts THEN 'dead'
                         ELSE 'retrying' END,
            sent_at = CASE WHEN x.outcome = 'sent' THEN pg_catalog.now() END,
            lease_until = NULL,
            last_status = nullif(x.code, 0),
            last_error = CASE WHEN x.outcome = 'sent' THEN NULL
                              WHEN x.outcome = 'retry' AND o.attempts >= p_max_attempts
                                  THEN format('gave up after %s attempts: %s', o.attempts, x.error)
                              ELSE x.error END,
            -- exponential backoff with jitter (50-100 %), or the server's Retry-After
            next_attempt_at = CASE WHEN x.outcome = 'retry' AND o.attempts < p_max_attempts THEN pg_catalog.now() + greatest(
                x.retry_after * interval '1 second',
                least(p_max_ms::double precision, p_base_ms * power(2::double precision, least(o.attempts - 1, 30)))
                    * (0.5 + random() * 0.5) * interval '1 millisecond')
                                   WHEN x.outcome = 'sent' THEN o.next_attempt_at
                                   ELSE 'infinity' END
        FROM x
        WHERE o.tenant_id = x.tenant_id AND o.message_id = x.message_id AND o.state = 'sending' AND o.attempts = x.attempt
        RETURNING o.tenant_id, o.message_id, o.attempts, o.state, x.code, o.last_error
    )
    INSERT INTO status_checker.delivery_attempt (tenant_id, message_id, attempt, outcome, status, error)
    SELECT u.tenant_id, u.message_id, u.attempts, CASE WHEN u.state = 'dead' THEN 'dead' ELSE 'retry' END,
           nullif(u.code, 0), u.last_error
    FROM u WHERE u.state <> 'sent'
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION status_checker._record_outcomes(bigint[], bigint[], integer[], text[], integer[], text[], integer[], integer, integer, integer) IS
'Internal (dispatcher): record attempts'' outcomes (sent, retry, dead) in one short transaction; retries back off exponentially with jitter';

-- ---------------------------------------------------------- public functions and views

CREATE FUNCTION status_checker.retry_message(message_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    st text;
BEGIN
    PERFORM status_checker._no_nulls('retry_message', ARRAY['message_id'], ARRAY[retry_message.message_id::text]);
    SELECT o.state INTO st FROM status_checker.outbox o WHERE o.message_id = retry_message.message_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'message % does not exist', retry_message.message_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF st <> 'dead' THEN
        RAISE EXCEPTION 'message % is %, not dead', retry_message.message_id, st
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Only dead messages are sent again by hand.';
    END IF;
    UPDATE status_checker.outbox o SET state = 'queued', attempts = 0, next_attempt_at = pg_catalog.now()
    WHERE o.message_id = retry_message.message_id;
    PERFORM status_checker._wake_dispatcher();
END
$$;
COMMENT ON FUNCTION status_checker.retry_message(bigint) IS
'Send a dead message again (after its cause, e.g. a wrong webhook URL or SMTP password, was fixed); attempts start again';

CREATE VIEW status_checker.delivery_status WITH (security_invoker = true) AS
SELECT o.message_id, o.tenant_id, o.request_id, s.code AS site_code, o.channel_kind,
       status_checker._mask_recipient(o.channel_kind, o.recipient) AS recipient,
       o.purpose, o.state, o.attempts, o.last_error, o.enqueued_at, o.sent_at,
       o.seq AS reminder_number, o.last_status,
       CASE WHEN o.state IN ('queued', 'retrying') THEN o.next_attempt_at END AS next_attempt_at,
       o.sent_at - o.enqueued_at AS latency,
       format('sc1-%s-%s', o.tenant_id, o.message_id) AS idempotency_key,
       ch.name AS channel_name
FROM status_checker.outbox o
LEFT JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id
LEFT JOIN status_checker.channel ch ON ch.tenant_id = o.tenant_id AND ch.channel_id = coalesce(o.via_channel_id, o.channel_id);
COMMENT ON VIEW status_checker.delivery_status IS
'Every message: site, channel kind, masked recipient, purpose, state (queued, sending, sent, retrying, dead, cancelled), '
'attempts, last error, enqueue and send times, latency, idempotency key';

CREATE VIEW status_checker.request_delivery WITH (security_invoker = true) AS
SELECT o.tenant_id, o.request_id,
       count(*) AS messages,
       count(*) FILTER (WHERE o.state = 'queued') AS queued,
       count(*) FILTER (WHERE o.state = 'sending') AS sending,
       count(*) FILTER (WHERE o.state = 'sent') AS sent,
       count(*) FILTER (WHERE o.state = 'retrying') AS retrying,
       count(*) FILTER (WHERE o.state = 'dead') AS dead,
       count(*) FILTER (WHERE o.state = 'cancelled') AS cancelled,
       min(o.enqueued_at) AS first_enqueued_at,
       max(o.sent_at) AS last_sent_at,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.sent_at - o.enqueued_at))
           FILTER (WHERE o.state = 'sent') AS latency_p50_s,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM o.sent_at - o.enqueued_at))
           FILTER (WHERE o.state = 'sent') AS latency_p95_s,
       max(extract(epoch FROM o.sent_at - o.enqueued_at)) AS latency_max_s
FROM status_checker.outbox o
GROUP BY o.tenant_id, o.request_id;
COMMENT ON VIEW status_checker.request_delivery IS
'Delivery per request: messages by state, and the latency from enqueue to sent (median, 95th percentile, max, in seconds)';
