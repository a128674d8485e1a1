-- status_checker 0.9.0 → 0.10.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

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
