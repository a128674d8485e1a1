-- status_checker 0.7.0 → 0.8.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/dispatch/upgrade-0.7.0--0.8.0.sql
-- src/dispatch/upgrade-0.7.0--0.8.0.sql — what only the upgrade from 0.7.0
-- does: the outbox records which dispatcher worker holds a message, and
-- the claim and the start-up take the worker's number (the new functions
-- follow in the upgrade script: Makefile, UPGRADE_0_8_0_PARTS).  Until
-- this runs, a 0.8.0 library works with 0.7.0's functions through its
-- first worker only.

ALTER TABLE status_checker.outbox ADD COLUMN claimed_by smallint;
DROP FUNCTION status_checker._claim_messages(integer, integer);
DROP FUNCTION status_checker._dispatcher_startup();

-- ---- src/dispatch/claim.sql
-- src/dispatch/claim.sql — the dispatcher's claim: due messages, rendered.
--
-- Since 0.4.0 recipients, contact names, channel secrets and link keys are
-- stored encrypted; the claim decrypts what the messages being sent need
-- (link keys once per tenant, secrets once per channel) and nothing else.
-- Written with CREATE OR REPLACE: one text for the install and the upgrade.

-- Claim up to p_limit due messages for dispatcher worker p_worker (lease
-- p_lease_ms) and return them rendered, ready to send.  Messages that need
-- not go out any more are settled here (cancelled), and messages whose
-- tenant has no enabled channel of their kind wait.
CREATE OR REPLACE FUNCTION status_checker._claim_messages(p_limit integer, p_lease_ms integer, p_worker integer DEFAULT 0)
    RETURNS TABLE (message_id bigint, tenant_id bigint, attempts integer, channel_id bigint, kind text, url text,
                   mail_from text, rcpt text, headers text, body text, secret text, tls text,
                   username text, password text, ca_file text)
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
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

    -- the targets whose link goes out for the first time get their token
    -- (a random token of 0.2.0 is revoked and replaced)
    -- the link keys of the tenants concerned, decrypted once
    IF to_regclass('pg_temp._sc_link_keys') IS NULL THEN
        CREATE TEMP TABLE _sc_link_keys (tenant_id bigint PRIMARY KEY, key bytea) ON COMMIT DELETE ROWS;
    ELSE
        DELETE FROM pg_temp._sc_link_keys;
    END IF;
    INSERT INTO pg_temp._sc_link_keys
    SELECT x.tenant_id, status_checker._link_key(x.tenant_id) FROM (SELECT DISTINCT c.tenant_id FROM pg_temp._sc_claim c) x;
    -- those targets locked first, in key order, as issue_tokens locks them:
    -- the two queue instead of deadlocking
    PERFORM 1 FROM status_checker.request_target t
    JOIN (SELECT DISTINCT c.tenant_id, c.request_id, c.site_id FROM pg_temp._sc_claim c
          WHERE c.purpose IN ('request', 'reminder')) c
      ON t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id
    WHERE t.token_gen = 0
    ORDER BY t.tenant_id, t.request_id, t.site_id
    FOR UPDATE OF t;
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id
    FROM pg_temp._sc_claim c
    JOIN status_checker.request_target t ON t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id
    WHERE c.purpose IN ('request', 'reminder') AND t.token_gen = 0 AND t.token_hash IS NOT NULL
    ON CONFLICT DO NOTHING;
    -- the key by a subquery, not a join: joined, the planner (right after a
    -- large request was created, request_target's statistics stale) could
    -- take the keys first and probe request_target by tenant alone, 1.3 s
    -- for a batch of 1,000 instead of 38 ms (docs/benchmarks.md, delivery)
    UPDATE status_checker.request_target t
    SET token_gen = 1, token_issued_at = pg_catalog.now(),
        token_hash = status_checker._token_hash(status_checker._link_token(
            (SELECT k.key FROM pg_temp._sc_link_keys k WHERE k.tenant_id = t.tenant_id),
            t.tenant_id, t.request_id, t.site_id, 1))
    FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.site_id FROM pg_temp._sc_claim c
          WHERE c.purpose IN ('request', 'reminder')) c
    WHERE t.tenant_id = c.tenant_id AND t.request_id = c.request_id AND t.site_id = c.site_id AND t.token_gen = 0;

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
               CASE WHEN rt.token_gen > 0 AND c.purpose IN ('request', 'reminder') THEN
                   x.link_base || status_checker._link_token(lk.key, c.tenant_id, c.request_id, c.site_id, rt.token_gen) END AS link,
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
COMMENT ON FUNCTION status_checker._claim_messages(integer, integer, integer) IS
'Internal (dispatcher worker p_worker): claim due messages with FOR UPDATE SKIP LOCKED and a lease, and return them rendered '
'(mail headers and text, or webhook JSON) with their channel''s settings';

-- ---- src/dispatch/workers.sql
-- src/dispatch/workers.sql — the dispatcher workers (0.8.0): several
-- processes claim from the one outbox (FOR UPDATE SKIP LOCKED), each
-- holding the messages it claimed (outbox.claimed_by).  Written with
-- CREATE OR REPLACE: one text for the install and the upgrade.

COMMENT ON FUNCTION status_checker.dispatcher_status() IS
'The dispatcher workers in one row: running (any of them), pid (the first running one''s), earliest start, oldest heartbeat, '
'transfers in flight, claimed messages waiting for the rate limit, and outcomes since the server started (sent, retried, dead), '
'summed over the workers; running is false without shared_preload_libraries.  dispatcher_workers() shows each worker';

CREATE OR REPLACE FUNCTION status_checker.dispatcher_workers(
    OUT worker integer, OUT running boolean, OUT pid integer, OUT started_at timestamptz, OUT heartbeat timestamptz,
    OUT in_flight bigint, OUT waiting bigint, OUT sent bigint, OUT retried bigint, OUT dead bigint)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_dispatcher_workers';
COMMENT ON FUNCTION status_checker.dispatcher_workers() IS
'Each dispatcher worker (status_checker.dispatch_workers of them, numbered from 0): running, pid, start, last heartbeat, '
'transfers in flight, claimed messages waiting for the rate limit, outcomes since the server started; no row without '
'shared_preload_libraries';

-- On start, a worker makes the messages it left 'sending' (it stopped or
-- crashed before recording their outcome) due again; their receivers may
-- see them twice, with the same idempotency key.  Messages another running
-- worker holds are left alone, except when their lease has run out.
-- Worker 0 also takes back what no running worker can own: messages
-- claimed before 0.8.0 (no worker recorded) and those of workers beyond
-- p_workers (after status_checker.dispatch_workers was lowered).
CREATE OR REPLACE FUNCTION status_checker._dispatcher_startup(p_worker integer, p_workers integer) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF p_worker < 0 OR p_worker >= p_workers THEN
        RAISE EXCEPTION 'dispatcher worker % does not exist (there are %)', p_worker, p_workers
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.outbox o
    SET state = 'retrying', lease_until = NULL, next_attempt_at = pg_catalog.now(),
        last_error = 'interrupted: the dispatcher stopped before the outcome was recorded'
    WHERE o.state = 'sending'
      AND (o.claimed_by = p_worker
           OR o.lease_until < pg_catalog.now()
           OR (p_worker = 0 AND (o.claimed_by IS NULL OR o.claimed_by >= p_workers)));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._dispatcher_startup(integer, integer) IS
'Internal: called by dispatcher worker p_worker (of p_workers) when it starts: the messages it left sending, and those whose '
'lease ran out, become due again (at-least-once delivery)';

-- ---- src/common/health.sql
-- src/common/health.sql — system_health(): one call that tells a monitoring
-- system (or an operator at 3 a.m.) whether this node keeps the service's
-- promises, check by check, each with ok / warning / critical and the
-- figure it judged.  It reads only (it works on a standby too, where it
-- says what a standby should be doing), so it may be polled as often as
-- wished; the every-minute health_probe() keeps the history.
-- docs/operations.md, "Monitoring", lists the checks and what to do.

CREATE OR REPLACE FUNCTION status_checker.system_health()
    RETURNS TABLE (check_name text, status text, value text, detail text)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    standby boolean := pg_catalog.pg_is_in_recovery();
    preloaded boolean := pg_catalog.current_setting('status_checker.database', true) IS NOT NULL;
    here boolean := pg_catalog.current_setting('status_checker.database', true) = pg_catalog.current_database();
    d record;                   -- dispatcher_status()
    v_age double precision;
    v_n bigint;
    v_text text;
    v_sync bigint;
    v_running bigint;           -- dispatcher workers running, of v_workers
    v_workers bigint;
    rows_ record;
    -- the checks, in order: [[check, status, value, detail], ...] (not a
    -- temporary table: a standby cannot create one)
    acc jsonb := '[]';
BEGIN
    -- the node's role
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'role', 'ok', CASE WHEN standby THEN 'standby' ELSE 'primary' END,
         CASE WHEN standby THEN 'a standby: the workers wait for a promotion and send nothing'
              ELSE 'the primary: the workers poll feeds and send messages' END]));

    -- the workers
    IF NOT preloaded THEN
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'workers', 'critical', 'not loaded',
             'status_checker is not in shared_preload_libraries: no feed is polled, no message is sent']));
    ELSIF NOT here THEN
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'workers', 'warning', pg_catalog.current_setting('status_checker.database'),
             format('the workers run in database %s (status_checker.database), not in this one',
                    pg_catalog.current_setting('status_checker.database'))]));
    ELSE
        d := status_checker.dispatcher_status();
        v_age := extract(epoch FROM pg_catalog.clock_timestamp() - d.heartbeat);
        -- the workers running, of those configured (0.8.0: several)
        SELECT count(*) FILTER (WHERE w.running), count(*) INTO v_running, v_workers FROM status_checker.dispatcher_workers() w;
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'dispatcher',
             CASE WHEN pg_catalog.current_setting('status_checker.dispatcher') = 'off' THEN 'warning'
                  WHEN NOT coalesce(d.running, false) THEN 'critical'
                  WHEN v_age > 120 THEN 'critical'
                  WHEN v_running < v_workers THEN 'warning'
                  ELSE 'ok' END,
             CASE WHEN coalesce(d.running, false) THEN format('%s of %s workers, heartbeat %s s ago', v_running, v_workers, round(v_age::numeric, 1))
                  ELSE 'not running' END,
             CASE WHEN pg_catalog.current_setting('status_checker.dispatcher') = 'off'
                      THEN 'status_checker.dispatcher = off: nothing is sent from this node'
                  WHEN NOT coalesce(d.running, false)
                      THEN 'the dispatcher is not running (the postmaster restarts it within seconds; see the server log)'
                  WHEN v_age > 120 THEN 'a dispatcher worker has not looked at its work for over 2 minutes: it hangs'
                  WHEN v_running < v_workers THEN format('only %s of %s dispatcher workers run: messages still go out, more slowly '
                                                '(the postmaster restarts the others within seconds; see the server log)', v_running, v_workers)
                  ELSE format('%s in flight, %s sent, %s retried, %s dead since it started',
                              d.in_flight, d.sent, d.retried, d.dead) END]));
        SELECT count(*) INTO v_n FROM pg_catalog.pg_stat_activity a
        WHERE a.backend_type = 'status_checker feed watcher' AND a.datname = pg_catalog.current_database();
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'feed_watcher',
             CASE WHEN pg_catalog.current_setting('status_checker.feed_watcher') = 'off' THEN 'warning'
                  WHEN v_n = 0 THEN 'critical' ELSE 'ok' END,
             CASE WHEN v_n = 0 THEN 'not running' ELSE 'running' END,
             CASE WHEN pg_catalog.current_setting('status_checker.feed_watcher') = 'off'
                      THEN 'status_checker.feed_watcher = off: no disaster feed is polled from this node'
                  WHEN v_n = 0 THEN 'the feed watcher is not running (the postmaster restarts it within seconds)'
                  ELSE 'the feed watcher runs' END]));
        -- the HTTP workers (reporter pages, dashboard), when configured (0.6.0)
        IF coalesce(pg_catalog.current_setting('status_checker.http_listen', true), '') <> '' THEN
            SELECT count(*) INTO v_n FROM pg_catalog.pg_stat_activity a
            WHERE a.backend_type = 'status_checker http' AND a.datname = pg_catalog.current_database();
            v_text := pg_catalog.current_setting('status_checker.http_workers');
            acc := acc || jsonb_build_array(to_jsonb(ARRAY[
                 'http',
                 CASE WHEN v_n = 0 THEN 'critical' WHEN v_n < v_text::integer THEN 'warning' ELSE 'ok' END,
                 format('%s of %s workers', v_n, v_text),
                 CASE WHEN v_n = 0 THEN format('no HTTP worker serves %s: reporter pages and the dashboard are down (see the server log)',
                                               pg_catalog.current_setting('status_checker.http_listen'))
                      WHEN v_n < v_text::integer THEN 'an HTTP worker is missing (the postmaster restarts it within seconds)'
                      ELSE (SELECT format('reporter pages and the dashboard on %s: %s requests, %s reports, %s refused (429) since the server started',
                                          pg_catalog.current_setting('status_checker.http_listen'), c.requests, c.reports, c.refused)
                            FROM status_checker.http_counters() c) END]));
        END IF;
    END IF;

    -- the feeds: each enabled feed polled and answering, no later than a few intervals
    IF NOT standby THEN
        FOR rows_ IN
            SELECT f.feed_id, f.url, f.consecutive_errors, f.last_error,
                   extract(epoch FROM pg_catalog.now() - coalesce(f.last_success_at, f.created_at)) AS lag,
                   extract(epoch FROM f.poll_interval) AS every
            FROM status_checker.feed f WHERE f.enabled ORDER BY f.feed_id
        LOOP
            acc := acc || jsonb_build_array(to_jsonb(ARRAY[
                 'feed ' || rows_.feed_id,
                 CASE WHEN rows_.lag > greatest(600, 10 * rows_.every) THEN 'critical'
                      WHEN rows_.consecutive_errors > 0 OR rows_.lag > greatest(120, 3 * rows_.every) THEN 'warning'
                      ELSE 'ok' END,
                 format('last success %s s ago', round(rows_.lag::numeric)),
                 CASE WHEN rows_.consecutive_errors > 0
                          THEN format('%s: %s consecutive errors, the last: %s', rows_.url, rows_.consecutive_errors, rows_.last_error)
                      ELSE format('%s, polled every %s s', rows_.url, rows_.every) END]));
        END LOOP;
    END IF;

    -- the outbox: how much waits, and since when
    SELECT count(*), extract(epoch FROM pg_catalog.now() - min(o.enqueued_at))
      INTO v_n, v_age
      FROM status_checker.outbox o WHERE o.state IN ('queued', 'retrying', 'sending') AND o.next_attempt_at <= pg_catalog.now();
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'outbox_backlog',
         CASE WHEN standby THEN 'ok'
              WHEN coalesce(v_age, 0) > 900 THEN 'critical'
              WHEN coalesce(v_age, 0) > 300 THEN 'warning' ELSE 'ok' END,
         format('%s due, the oldest enqueued %s s ago', v_n, coalesce(round(v_age::numeric), 0)),
         CASE WHEN standby THEN 'sent by the primary'
              WHEN coalesce(v_age, 0) > 300 THEN 'messages wait for more than 5 minutes: is the dispatcher running, a channel slow or rate-limited?'
              ELSE 'messages go out' END]));
    SELECT count(*) INTO v_n FROM status_checker.delivery_attempt a
    WHERE a.outcome = 'dead' AND a.at > pg_catalog.now() - interval '1 hour';
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'dead_messages', CASE WHEN v_n > 0 THEN 'warning' ELSE 'ok' END, v_n::text || ' in the last hour',
         CASE WHEN v_n > 0 THEN 'messages gave up: see delivery_status (last_error) and retry_message()'
              ELSE 'no message gave up in the last hour' END]));

    -- the periodic jobs (pg_cron): the health probe runs every minute
    IF NOT standby THEN
        SELECT extract(epoch FROM pg_catalog.clock_timestamp() - max(h.taken_at)) INTO v_age FROM status_checker.health_sample h;
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'periodic_jobs', CASE WHEN v_age IS NULL OR v_age > 300 THEN 'warning' ELSE 'ok' END,
             CASE WHEN v_age IS NULL THEN 'never ran' ELSE format('health probe %s s ago', round(v_age::numeric)) END,
             CASE WHEN v_age IS NULL OR v_age > 300
                      THEN 'reminders, the audit seal and the health probe are not running: SELECT status_checker.schedule_jobs() (pg_cron)'
                  ELSE 'reminders, audit sealing and the health probe run' END]));
    END IF;

    -- replication: a standby to fail over to, synchronous if so configured
    IF standby THEN
        SELECT w.status INTO v_text FROM pg_catalog.pg_stat_wal_receiver w;
        v_age := extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp());
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'replication', CASE WHEN v_text IS DISTINCT FROM 'streaming' THEN 'critical' ELSE 'ok' END,
             coalesce(v_text, 'no WAL receiver')
                 || CASE WHEN v_age IS NULL THEN '' ELSE format(', last replayed commit %s s ago', round(v_age::numeric)) END,
             CASE WHEN v_text IS DISTINCT FROM 'streaming' THEN 'this standby does not receive WAL from the primary'
                  ELSE 'this standby follows the primary' END]));
    ELSE
        SELECT count(*), count(*) FILTER (WHERE r.sync_state IN ('sync', 'quorum')),
               max(extract(epoch FROM r.replay_lag))
          INTO v_n, v_sync, v_age
          FROM pg_catalog.pg_stat_replication r WHERE r.state = 'streaming';
        v_text := pg_catalog.current_setting('synchronous_standby_names');
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'replication',
             CASE WHEN v_text <> '' AND v_sync = 0 THEN 'critical'
                  WHEN v_n = 0 THEN 'warning'
                  WHEN coalesce(v_age, 0) > 60 THEN 'warning' ELSE 'ok' END,
             format('%s streaming standby(s), %s synchronous, replay lag %s s', v_n, v_sync, coalesce(round(v_age::numeric, 1), 0)),
             CASE WHEN v_text <> '' AND v_sync = 0
                      THEN 'synchronous_standby_names is set and no synchronous standby is connected: commits wait'
                  WHEN v_n = 0 THEN 'no standby: the loss of this server loses the service (requirements Q5)'
                  WHEN v_text = '' THEN 'asynchronous: a failover may lose the last acknowledged reports (docs/operations.md)'
                  ELSE 'a synchronous standby has every acknowledged report' END]));
    END IF;

    -- the WAL archive (point-in-time recovery)
    SELECT a.archived_count, a.failed_count,
           coalesce(a.last_failed_time > coalesce(a.last_archived_time, '-infinity'), false) AS failing
      INTO rows_
      FROM pg_catalog.pg_stat_archiver a;
    v_text := pg_catalog.current_setting('archive_mode');
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'wal_archive',
         CASE WHEN v_text = 'off' THEN 'warning'
              WHEN rows_.failing THEN 'critical' ELSE 'ok' END,
         CASE WHEN v_text = 'off' THEN 'archive_mode = off'
              ELSE format('%s archived, %s failed', rows_.archived_count, rows_.failed_count) END,
         CASE WHEN v_text = 'off' THEN 'no WAL archive: backups cannot be restored to a point in time (docs/operations.md, Backups)'
              WHEN rows_.failing THEN 'the last attempt to archive WAL failed: see the server log and pgbackrest check'
              ELSE 'WAL is archived' END]));

    RETURN QUERY
        WITH h AS (
            SELECT e ->> 0 AS check_name, e ->> 1 AS status, e ->> 2 AS value, e ->> 3 AS detail, i
            FROM jsonb_array_elements(acc) WITH ORDINALITY x(e, i))
        SELECT 'overall',
               CASE max(CASE h.status WHEN 'critical' THEN 2 WHEN 'warning' THEN 1 ELSE 0 END)
                   WHEN 2 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'ok' END,
               count(*) FILTER (WHERE h.status <> 'ok')::text || ' of ' || count(*) || ' checks not ok',
               coalesce(string_agg(h.check_name, ', ' ORDER BY h.i) FILTER (WHERE h.status <> 'ok'), 'every check is ok')
        FROM h
        UNION ALL
        (SELECT h.check_name, h.status, h.value, h.detail FROM h ORDER BY h.i);
END
$$;
COMMENT ON FUNCTION status_checker.system_health() IS
'The health of this node, check by check (role, workers, feeds, outbox backlog, dead messages, periodic jobs, replication, '
'WAL archive), each ok, warning or critical with the figure it judged; the first row, "overall", is the worst. Read-only: '
'poll it from monitoring, on the primary and on standbys';

-- for monitoring: the operator role and PostgreSQL's pg_monitor
GRANT USAGE ON SCHEMA status_checker TO status_checker_operator, pg_monitor;
GRANT EXECUTE ON FUNCTION status_checker.system_health() TO status_checker_operator, pg_monitor;

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
