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
    -- Its plans are made once a session and kept (0.10.0), so they must
    -- not depend on how large the tables looked when they were made (an
    -- outbox that looked empty after a quiet hour, sites not yet analysed):
    -- each statement's joins are written in the order they should run, from
    -- the batch out to its request, site, target, ... (join_collapse_limit
    -- = 1), each by its key (no hash or merge joins), and the outbox is
    -- read through its index of due messages (no sequential scans).  These
    -- are the plans the planner chose anyway for batches of any size.
    SET join_collapse_limit = 1 SET from_collapse_limit = 1
    SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    -- the claimed rows.  Until 0.9.0 a temporary table, truncated at each
    -- commit: its index was rebuilt and every plan of this function made
    -- again at each claim (~4 ms, and the rebuild), see docs/benchmarks.md
    v_batch status_checker.outbox[];
    v_settled bigint[];
BEGIN
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
        RETURNING o
    )
    SELECT pg_catalog.array_agg(u.o) INTO v_batch FROM u;
    IF v_batch IS NULL THEN
        RETURN;
    END IF;

    -- settled without sending: the request is no longer open (its
    -- cancellation notice excepted), or the site answered before its
    -- reminder; and waiting (without spending an attempt, until
    -- add_channel): the tenant has no enabled channel of the kind
    WITH q AS MATERIALIZED (
        -- the batch's requests (a few), each looked up once
        SELECT q.tenant_id, q.request_id, q.state
        FROM (SELECT DISTINCT c.tenant_id, c.request_id FROM unnest(v_batch) c) k
        JOIN status_checker.request q ON q.tenant_id = k.tenant_id AND q.request_id = k.request_id
    ), gone AS (
        SELECT c.tenant_id, c.message_id,
               CASE WHEN q.state <> 'open' THEN format('not sent: the request is %s', q.state)
                    ELSE 'not sent: the site answered before the reminder went out' END AS why
        FROM unnest(v_batch) c
        JOIN q ON q.tenant_id = c.tenant_id AND q.request_id = c.request_id
        WHERE (c.purpose <> 'cancellation' AND q.state <> 'open')
           OR (c.purpose = 'reminder' AND EXISTS (
                   SELECT 1 FROM status_checker.request_target rt
                   WHERE rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
                     AND rt.report_count > 0))
    ), cancelled AS (
        UPDATE status_checker.outbox o SET state = 'cancelled', lease_until = NULL, last_error = g.why, next_attempt_at = 'infinity'
        FROM gone g WHERE o.tenant_id = g.tenant_id AND o.message_id = g.message_id
        RETURNING o.message_id
    ), waiting AS (
        UPDATE status_checker.outbox o
        SET state = 'queued', attempts = o.attempts - 1, lease_until = NULL,
            next_attempt_at = pg_catalog.now() + interval '5 minutes',
            last_error = format('waiting: tenant %s has no enabled %s channel (add_channel)', o.tenant_id, o.channel_kind)
        FROM unnest(v_batch) c
        WHERE c.via_channel_id IS NULL AND o.tenant_id = c.tenant_id AND o.message_id = c.message_id
          AND NOT EXISTS (SELECT 1 FROM gone g WHERE g.message_id = c.message_id)
        RETURNING o.message_id
    )
    SELECT pg_catalog.array_agg(x.message_id) INTO v_settled
    FROM (SELECT message_id FROM cancelled UNION ALL SELECT message_id FROM waiting) x;

    -- The link keys of the tenants concerned are decrypted once (lk,
    -- below).  A link is rendered from the target's token generation and
    -- names its target (_link): a target whose token was never issued gets
    -- the token of generation 1, checked by recomputation when it is first
    -- used (src/requests/tokens.sql), so sending it writes nothing (0.9.0)
    RETURN QUERY
    WITH b AS MATERIALIZED (
        -- the batch, but for what was settled above
        SELECT c.tenant_id, c.message_id, c.request_id, c.site_id, c.contact_id, c.user_id, c.channel_kind,
               c.recipient, c.purpose, c.seq, c.detail, c.attempts, c.via_channel_id AS via
        FROM unnest(v_batch) c
        WHERE v_settled IS NULL OR c.message_id <> ALL (v_settled)
    ), lk AS MATERIALIZED (
        SELECT x.tenant_id, status_checker._link_key(x.tenant_id) AS key FROM (SELECT DISTINCT b.tenant_id FROM b) x
    ), ctx AS MATERIALIZED (
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
        FROM (SELECT DISTINCT c.tenant_id, c.request_id, c.purpose, c.via FROM b c) k
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
        FROM b c
        JOIN ctx x ON x.tenant_id = c.tenant_id AND x.request_id = c.request_id AND x.purpose = c.purpose AND x.via = c.via
        LEFT JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        LEFT JOIN status_checker.request_target rt
               ON rt.tenant_id = c.tenant_id AND rt.request_id = c.request_id AND rt.site_id = c.site_id
        LEFT JOIN lk ON lk.tenant_id = c.tenant_id
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
