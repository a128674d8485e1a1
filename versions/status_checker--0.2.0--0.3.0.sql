-- status_checker 0.2.0 → 0.3.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/dispatch/upgrade-0.2.0--0.3.0.sql
-- src/dispatch/upgrade-0.2.0--0.3.0.sql — what only the upgrade from 0.2.0
-- does: the columns 0.3.0 adds to tables of earlier versions (a fresh
-- install has them in the CREATE TABLE statements).  The new domains and
-- the functions written with CREATE OR REPLACE follow in the upgrade
-- script (Makefile: UPGRADE_0_3_0_PARTS).

ALTER TABLE status_checker.request
    ADD COLUMN reminders interval[] NOT NULL DEFAULT '{}',
    ADD COLUMN escalate_after interval;
ALTER TABLE status_checker.trigger_rule
    ADD COLUMN reminders interval[] NOT NULL DEFAULT '{}',
    ADD COLUMN escalate_after interval;
-- 0.2.0's tokens were random: generation 0 with a hash marks them, and the
-- dispatcher replaces such a token by a derived one before it sends a link
ALTER TABLE status_checker.request_target
    ADD COLUMN token_gen integer NOT NULL DEFAULT 0;
-- issue_token and issue_tokens are replaced (src/requests/tokens.sql); the
-- random token generator they used is no longer needed
DROP FUNCTION status_checker._new_token();

-- ---- src/requests/targets.sql
-- src/requests/targets.sql — who may insert request targets, and the guard
-- that keeps an asked site from being deleted.
--
-- request_target has no foreign key to site (its per-row check was the
-- largest single cost of asking 100,000 sites at once).  Instead, a site
-- that a request asked cannot be deleted: the BEFORE DELETE trigger below
-- looks for targets of the site.  A tenant-level advisory lock closes the
-- race a foreign key's row lock would have closed: functions that insert
-- targets hold it shared (_lock_targets), deleting a site takes it
-- exclusively, so a deletion waits for concurrent insertions to commit and
-- then sees their targets.  Written as CREATE OR REPLACE so that the same
-- text serves the install script and the upgrade from 0.1.0.

CREATE OR REPLACE FUNCTION status_checker._targets_lock_key(p_tenant_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (p_tenant_id % 2147483647)::integer;
COMMENT ON FUNCTION status_checker._targets_lock_key(bigint) IS
'Internal: the advisory lock key (with class 1400000001) of a tenant''s request targets';

CREATE OR REPLACE FUNCTION status_checker._lock_targets(p_tenant_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.pg_advisory_xact_lock_shared(1400000001, status_checker._targets_lock_key(p_tenant_id));
COMMENT ON FUNCTION status_checker._lock_targets(bigint) IS
'Internal: taken (shared, until commit) by every function that inserts request targets of a tenant';

CREATE OR REPLACE FUNCTION status_checker._site_delete_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_req bigint;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(1400000001, status_checker._targets_lock_key(OLD.tenant_id));
    SELECT t.request_id INTO v_req FROM status_checker.request_target t
    WHERE t.tenant_id = OLD.tenant_id AND t.site_id = OLD.site_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'site % is a target of request % and cannot be deleted', quote_literal(OLD.code), v_req
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Requests keep the sites they asked, with their reports.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION status_checker._site_delete_guard() IS
'Internal: refuses to delete a site that a request asked (instead of a foreign key from request_target)';

DROP TRIGGER IF EXISTS site_delete_guard ON status_checker.site;
CREATE TRIGGER site_delete_guard BEFORE DELETE ON status_checker.site
    FOR EACH ROW EXECUTE FUNCTION status_checker._site_delete_guard();

CREATE OR REPLACE FUNCTION status_checker.create_request(
    tenant_id bigint, form_id bigint, title text, deadline timestamptz,
    target jsonb DEFAULT '{"all": true}', drill boolean DEFAULT false, message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_n integer;
BEGIN
    PERFORM status_checker._require_tenant(create_request.tenant_id);
    IF create_request.form_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM status_checker.form f
        WHERE f.tenant_id = create_request.tenant_id AND f.form_id = create_request.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', coalesce(create_request.form_id::text, 'NULL'), create_request.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF create_request.title IS NULL OR btrim(create_request.title) = '' OR length(create_request.title) > 200 THEN
        RAISE EXCEPTION 'invalid request title %', coalesce(quote_literal(create_request.title), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A title has 1 to 200 characters and is not blank.';
    END IF;
    IF create_request.deadline IS NULL OR create_request.deadline <= pg_catalog.now() THEN
        RAISE EXCEPTION 'the deadline % is not in the future', coalesce(create_request.deadline::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(create_request.message) > 5000 THEN
        RAISE EXCEPTION 'the message has % characters; at most 5000 are allowed', length(create_request.message)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM status_checker._lock_targets(create_request.tenant_id);
    INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec)
    VALUES (create_request.tenant_id, create_request.form_id, create_request.title, create_request.message,
            create_request.deadline, coalesce(create_request.drill, false),
            coalesce(create_request.target, '{"all": true}'))
    RETURNING request_id INTO v_id;

    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id)
    SELECT DISTINCT create_request.tenant_id, v_id, t.site_id
    FROM status_checker._resolve_targets(create_request.tenant_id, coalesce(create_request.target, '{"all": true}')) t
    ORDER BY 3;   -- in key order: index insertions stay on hot pages
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'the target % selects no sites', coalesce(create_request.target, '{"all": true}')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Check the target: sites need a municipality code for municipality and area targets.';
    END IF;
    UPDATE status_checker.request r SET targets = v_n WHERE r.tenant_id = create_request.tenant_id AND r.request_id = v_id;
    -- the targets' contacts get the request, in this transaction
    IF status_checker._tenant_delivers(create_request.tenant_id) THEN
        PERFORM status_checker._enqueue_site_messages(create_request.tenant_id, v_id, 'request', 0,
            ARRAY(SELECT t.site_id FROM status_checker.request_target t
                  WHERE t.tenant_id = create_request.tenant_id AND t.request_id = v_id ORDER BY t.site_id), true);
    END IF;
    INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
    SELECT create_request.tenant_id, v_id, g FROM generate_series(0, 63) g;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) IS
'Create a report request for the sites the target selects ({"all":true}, {"groups":[ids]} with descendants, '
'{"sites":[codes]}, {"municipalities":[codes]}, {"areas":[JMA area codes]}); targets are resolved now. Returns the request id';


-- ---- src/triggers/fire.sql
-- src/triggers/fire.sql — acting on trigger rules when an event changes.
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades (0.3.0 copies the rule's reminders to its
-- requests and enqueues the new targets' messages).

-- Run every matching rule for one event (called by ingest_feed_document).
CREATE OR REPLACE FUNCTION status_checker._fire_rules(p_event bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    e status_checker.event;
    rules bigint[];
    n integer;
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event FOR UPDATE;
    IF e.status = 'cancelled' THEN
        -- a withdrawn event withdraws what it asked
        UPDATE status_checker.request q
        SET state = 'cancelled', cancelled_at = pg_catalog.now(),
            cancel_reason = format('The %s event %s was withdrawn by its source (取消).', e.source, e.source_event_id)
        FROM status_checker.trigger_fire f
        WHERE f.event_id = p_event AND q.tenant_id = f.tenant_id AND q.request_id = f.request_id AND q.state <> 'cancelled';
    END IF;

    -- the rules that look at this event (for the trigger_decision view) ...
    INSERT INTO status_checker.trigger_evaluation AS v (tenant_id, rule_id, event_id, last_revision)
    SELECT r.tenant_id, r.rule_id, e.event_id, e.revision FROM status_checker.trigger_rule r
    WHERE r.hazard = e.kind AND e.source = ANY (r.sources)
    ON CONFLICT (tenant_id, rule_id, event_id)
    DO UPDATE SET evaluations = v.evaluations + 1, last_revision = excluded.last_revision, evaluated_at = pg_catalog.now();
    -- ... and those that may act on it
    SELECT array_agg(r.rule_id ORDER BY r.rule_id) INTO rules FROM status_checker.trigger_rule r
    WHERE r.hazard = e.kind AND e.source = ANY (r.sources) AND r.enabled
      AND e.status IN ('actual', 'training') AND (e.status = 'training') = r.drill;
    IF rules IS NULL THEN
        RETURN 0;
    END IF;

    PERFORM status_checker._lock_targets(t) FROM (SELECT DISTINCT r.tenant_id FROM status_checker.trigger_rule r
                                                  WHERE r.rule_id = ANY (rules) ORDER BY 1) x(t);
    -- the sites to ask, all rules at once
    IF to_regclass('pg_temp._sc_ask') IS NULL THEN
        CREATE TEMP TABLE _sc_ask (tenant_id bigint, rule_id bigint, site_id bigint,
                                   shindo status_checker.shindo, reason text) ON COMMIT DROP;
    ELSE
        TRUNCATE pg_temp._sc_ask;
    END IF;
    INSERT INTO pg_temp._sc_ask
    SELECT d.tenant_id, d.rule_id, d.site_id, d.shindo, d.reason
    FROM status_checker._decide_all(e.event_id, rules) d WHERE d.decision = 'ask';
    ANALYZE pg_temp._sc_ask;   -- so that the joins below are planned for its size

    -- one request per rule and event: created on the first telegram that asks anyone
    WITH needed AS (
        SELECT a.tenant_id, a.rule_id FROM (SELECT DISTINCT x.tenant_id, x.rule_id FROM pg_temp._sc_ask x) a
        WHERE NOT EXISTS (SELECT 1 FROM status_checker.trigger_fire f
                          WHERE f.tenant_id = a.tenant_id AND f.rule_id = a.rule_id AND f.event_id = e.event_id)
    ), made AS (
        INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec, event_id, rule_id,
                                            reminders, escalate_after)
        SELECT r.tenant_id, r.form_id, status_checker._event_title(e), coalesce(r.message, e.headline),
               pg_catalog.now() + r.deadline, r.drill, jsonb_build_object('rule', r.rule_id, 'event', e.event_id),
               e.event_id, r.rule_id, r.reminders, r.escalate_after
        FROM needed x JOIN status_checker.trigger_rule r ON r.tenant_id = x.tenant_id AND r.rule_id = x.rule_id
        ORDER BY r.tenant_id, r.rule_id
        RETURNING tenant_id, request_id, rule_id
    ), counters AS (
        INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
        SELECT m.tenant_id, m.request_id, g FROM made m CROSS JOIN generate_series(0, 63) g
    )
    INSERT INTO status_checker.trigger_fire (tenant_id, rule_id, event_id, request_id)
    SELECT m.tenant_id, m.rule_id, e.event_id, m.request_id FROM made m;

    -- later telegrams add newly affected sites to that request, while it is
    -- open (a request a person closed or cancelled is left so)
    -- (_decide_all never asks a site twice for an event: no conflict handling)
    IF to_regclass('pg_temp._sc_open') IS NULL THEN
        CREATE TEMP TABLE _sc_open (tenant_id bigint, rule_id bigint, request_id bigint) ON COMMIT DROP;
    ELSE
        TRUNCATE pg_temp._sc_open;
    END IF;
    INSERT INTO pg_temp._sc_open
    SELECT f.tenant_id, f.rule_id, f.request_id
    FROM status_checker.trigger_fire f
    JOIN status_checker.request q ON q.tenant_id = f.tenant_id AND q.request_id = f.request_id
    WHERE f.event_id = e.event_id AND q.state = 'open';
    ANALYZE pg_temp._sc_open;
    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id, asked_shindo, asked_reason)
    SELECT a.tenant_id, o.request_id, a.site_id, a.shindo, a.reason
    FROM pg_temp._sc_ask a JOIN pg_temp._sc_open o ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id
    ORDER BY a.tenant_id, o.request_id, a.site_id;   -- in key order: index insertions stay on hot pages
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE status_checker.request q SET targets = q.targets + c.n
    FROM (SELECT a.tenant_id, o.request_id, count(*) AS n
          FROM pg_temp._sc_ask a JOIN pg_temp._sc_open o ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id
          GROUP BY 1, 2) c
    WHERE q.tenant_id = c.tenant_id AND q.request_id = c.request_id;
    -- the new targets' contacts get the request, in this transaction (only
    -- for tenants that have someone to send to: the others cost nothing)
    PERFORM status_checker._enqueue_site_messages(x.tenant_id, x.request_id, 'request', 0, x.sites, true)
    FROM (SELECT a.tenant_id, o.request_id, array_agg(a.site_id ORDER BY a.site_id) AS sites
          FROM pg_temp._sc_ask a JOIN pg_temp._sc_open o ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id
          WHERE a.tenant_id IN (SELECT t.tenant_id FROM (SELECT DISTINCT o2.tenant_id FROM pg_temp._sc_open o2) t
                                WHERE status_checker._tenant_delivers(t.tenant_id))
          GROUP BY 1, 2 ORDER BY 1, 2) x;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._fire_rules(bigint) IS
'Internal: run the trigger rules for one event: create the one request per rule and event, add newly affected sites, '
'cancel requests of a cancelled event; returns the number of sites added';

-- ---- src/dispatch/channels.sql
-- src/dispatch/channels.sql — delivery channels, link keys and message templates.
--
-- A channel is how a tenant's messages leave the database:
--   email   — an SMTP server (smtp:// with STARTTLS, or smtps://) that
--             relays the mails to the sites' email contacts and to the
--             managers an escalation reaches;
--   webhook — an HTTP(S) endpoint that receives every message of the
--             tenant (one POST per site and purpose), in our JSON format or
--             Slack's; its format, secret and language also apply to the
--             sites' own webhook contacts.
-- When a tenant has several enabled channels of a kind, contacts use the
-- one with the lowest id.  Secrets (SMTP password, webhook secret) are kept
-- apart from the rest of the configuration and no view shows them.

CREATE TABLE status_checker.channel (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    channel_id  bigint GENERATED ALWAYS AS IDENTITY,
    kind        text NOT NULL CHECK (kind IN ('email', 'webhook')),
    name        text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 100),
    config      jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),   -- without secrets
    secrets     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secrets) = 'object'),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, channel_id),
    UNIQUE (tenant_id, name)
);
COMMENT ON TABLE status_checker.channel IS
'A tenant''s delivery channel: an SMTP server for mail or a webhook endpoint; secrets are kept in a column no view shows';

-- The key personal link tokens are derived from (src/dispatch/crypto.c):
-- a message is rendered with its site's token without the token being
-- stored anywhere; request_target keeps only the token's SHA-256.
CREATE TABLE status_checker.link_key (
    tenant_id   bigint PRIMARY KEY REFERENCES status_checker.tenant,
    key         bytea NOT NULL CHECK (length(key) = 32),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.link_key IS
'Per tenant: the 256-bit key personal link tokens are derived from (HMAC-SHA256); whoever reads it can forge links';

CREATE TABLE status_checker.default_template (
    purpose  text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    lang     text NOT NULL CHECK (lang IN ('ja', 'en')),
    subject  text NOT NULL,
    body     text NOT NULL,
    PRIMARY KEY (purpose, lang)
);
COMMENT ON TABLE status_checker.default_template IS
'The built-in message templates (ja, en) for each purpose; a tenant overrides them with set_message_template';

CREATE TABLE status_checker.message_template (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    purpose     text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    lang        text NOT NULL CHECK (lang IN ('ja', 'en')),
    subject     text NOT NULL,
    body        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, purpose, lang)
);
COMMENT ON TABLE status_checker.message_template IS
'A tenant''s own message templates, in place of the built-in ones';

INSERT INTO status_checker.default_template (purpose, lang, subject, body) VALUES
('request', 'ja', '【報告依頼】{{request_title}} — {{site_name}}',
$t${{site_name}} ご担当者様

{{request_title}}
{{site_shindo}}

拠点の被害状況と稼働可否を、次のリンクからご報告ください。
{{link}}

回答期限: {{deadline}}
{{message}}

このメールは {{tenant_name}} の拠点状況確認システム（status_checker）から自動送信されています。$t$),
('request', 'en', '[Report request] {{request_title}} — {{site_name}}',
$t$To the person in charge of {{site_name}},

{{request_title}}
{{site_shindo}}

Please report your site's damage and whether it can operate, using this link:
{{link}}

Deadline: {{deadline}}
{{message}}

This message was sent automatically by the site status system (status_checker) of {{tenant_name}}.$t$),
('reminder', 'ja', '【再送・未回答】{{request_title}} — {{site_name}}',
$t${{site_name}} ご担当者様

まだご報告をいただいていません（{{reminder_number}} 回目のお知らせ）。
{{request_title}}

次のリンクからご報告ください。
{{link}}

回答期限: {{deadline}}$t$),
('reminder', 'en', '[Reminder] {{request_title}} — {{site_name}}',
$t$To the person in charge of {{site_name}},

We have not received your report yet (reminder {{reminder_number}}).
{{request_title}}

Please report using this link:
{{link}}

Deadline: {{deadline}}$t$),
('escalation', 'ja', '【未回答拠点 {{unanswered_count}} 件】{{request_title}}',
$t${{recipient_name}} 様

次の拠点から、まだ報告がありません。
{{request_title}}

{{unanswered_sites}}

回答期限: {{deadline}}
拠点への連絡をお願いします。$t$),
('escalation', 'en', '[{{unanswered_count}} sites not answered] {{request_title}}',
$t$Dear {{recipient_name}},

These sites have not reported yet.
{{request_title}}

{{unanswered_sites}}

Deadline: {{deadline}}
Please contact them.$t$),
('cancellation', 'ja', '【取消】{{request_title}}',
$t${{site_name}} ご担当者様

次の報告依頼は取り消されました。報告は不要です。
{{request_title}}

理由: {{cancel_reason}}$t$),
('cancellation', 'en', '[Cancelled] {{request_title}}',
$t$To the person in charge of {{site_name}},

This report request was cancelled; no report is needed.
{{request_title}}

Reason: {{cancel_reason}}$t$);

-- ---------------------------------------------------------- C helpers

CREATE FUNCTION status_checker._link_token(key bytea, tenant_id bigint, request_id bigint, site_id bigint, generation integer)
    RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_link_token';
COMMENT ON FUNCTION status_checker._link_token(bytea, bigint, bigint, bigint, integer) IS
'Internal: the personal token of a request target, derived from the tenant''s link key (HMAC-SHA256, base64url)';

CREATE FUNCTION status_checker._random_bytes(n integer) RETURNS bytea
    LANGUAGE c VOLATILE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_random_bytes';
COMMENT ON FUNCTION status_checker._random_bytes(integer) IS
'Internal: n bytes from the server''s strong random source';

CREATE FUNCTION status_checker._mime_header(value text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_mime_header';
COMMENT ON FUNCTION status_checker._mime_header(text) IS
'Internal: a mail header value as RFC 2047 encoded-words (UTF-8, base64); printable ASCII as it is';

CREATE FUNCTION status_checker._fill(template text, VARIADIC vars text[]) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_fill_template';
COMMENT ON FUNCTION status_checker._fill(text, text[]) IS
'Internal: replace each {{name}} of a template by its value (vars: name, value, name, value, ...); lines left empty by an empty value are dropped';

CREATE FUNCTION status_checker.webhook_signature(secret text, "timestamp" bigint, body text) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_webhook_signature';
COMMENT ON FUNCTION status_checker.webhook_signature(text, bigint, text) IS
'The X-Status-Checker-Signature of a webhook: v1= and the hex HMAC-SHA256 of "<timestamp>.<body>" under the channel''s secret';

-- ---------------------------------------------------------- helpers

CREATE FUNCTION status_checker._link_key(p_tenant_id bigint) RETURNS bytea
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea;
BEGIN
    SELECT l.key INTO k FROM status_checker.link_key l WHERE l.tenant_id = p_tenant_id;
    IF NOT FOUND THEN
        INSERT INTO status_checker.link_key (tenant_id, key)
        VALUES (p_tenant_id, status_checker._random_bytes(32))
        ON CONFLICT (tenant_id) DO NOTHING;
        SELECT l.key INTO k FROM status_checker.link_key l WHERE l.tenant_id = p_tenant_id;
    END IF;
    RETURN k;
END
$$;
COMMENT ON FUNCTION status_checker._link_key(bigint) IS
'Internal: a tenant''s link key, made on first use';

-- "Name <addr>" or "addr" → (name, addr); NULL addr when malformed
CREATE FUNCTION status_checker._mailbox(p text, OUT name text, OUT addr text)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (SELECT CASE
        WHEN m IS NOT NULL THEN ROW(nullif(btrim(m[1], ' "'), ''), m[2])
        ELSE ROW(NULL::text, CASE WHEN p ~ '^[^@<>\s]+@[^@<>\s]+$' THEN p END) END
        FROM (SELECT regexp_match(btrim(p), '^(.*)<([^@<>\s]+@[^@<>\s]+)>$') AS m) x);
COMMENT ON FUNCTION status_checker._mailbox(text) IS
'Internal: split a mailbox written "Name <addr>" or "addr" into its display name and address';

CREATE FUNCTION status_checker._channel_problems(p_kind text, p_config jsonb) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    probs text[] := '{}';
    allowed text[];
    k text;
    url text := p_config ->> 'url';
    host text;
BEGIN
    IF jsonb_typeof(p_config) IS DISTINCT FROM 'object' THEN
        RETURN ARRAY['config must be a JSON object'];
    END IF;
    allowed := CASE p_kind
        WHEN 'email' THEN ARRAY['url', 'from', 'starttls', 'username', 'password', 'lang', 'timezone', 'ca_file']
        ELSE ARRAY['url', 'format', 'secret', 'lang', 'timezone', 'ca_file', 'broadcast'] END;
    FOR k IN SELECT jsonb_object_keys(p_config) LOOP
        IF NOT k = ANY (allowed) THEN
            probs := probs || format('unknown key "%s" (allowed: %s)', k, array_to_string(allowed, ', '));
        ELSIF jsonb_typeof(p_config -> k) <> (CASE WHEN k = 'broadcast' THEN 'boolean' ELSE 'string' END) THEN
            probs := probs || format('"%s" must be a %s', k, CASE WHEN k = 'broadcast' THEN 'boolean' ELSE 'string' END);
        END IF;
    END LOOP;
    IF url IS NULL THEN
        probs := probs || '"url" is required'::text;
    END IF;
    host := substring(url FROM '^[a-z]+://(?:[^@/]*@)?(\[[^]]*\]|[^:/?#]+)');
    IF p_kind = 'email' THEN
        IF url IS NOT NULL AND url !~ '^smtps?://[^/?#@\s]+(:[0-9]{1,5})?(/[A-Za-z0-9.-]*)?$' THEN
            probs := probs || format('"url" must be smtp://host[:port] or smtps://host[:port], not %s', url);
        END IF;
        IF p_config ->> 'from' IS NULL THEN
            probs := probs || '"from" is required (the sender address)'::text;
        ELSIF (status_checker._mailbox(p_config ->> 'from')).addr IS NULL THEN
            probs := probs || format('"from" is not a mail address: %s', p_config ->> 'from');
        END IF;
        IF coalesce(p_config ->> 'starttls', 'require') NOT IN ('require', 'try', 'off') THEN
            probs := probs || format('"starttls" is require, try or off, not %s', p_config ->> 'starttls');
        END IF;
        IF (p_config ? 'username') <> (p_config ? 'password') THEN
            probs := probs || '"username" and "password" go together'::text;
        END IF;
        IF p_config ? 'password' AND url LIKE 'smtp://%' AND coalesce(p_config ->> 'starttls', 'require') <> 'require'
           AND host NOT IN ('127.0.0.1', 'localhost', '[::1]') THEN
            probs := probs || '"password" needs "starttls": "require" or smtps:// (it would cross the network in clear)'::text;
        END IF;
    ELSE
        IF url IS NOT NULL AND url !~ '^https?://[^/?#@\s]+(:[0-9]{1,5})?([/?][^\s]*)?$' THEN
            probs := probs || format('"url" must be an http:// or https:// URL, not %s', url);
        END IF;
        IF coalesce(p_config ->> 'format', 'json') NOT IN ('json', 'slack') THEN
            probs := probs || format('"format" is json or slack, not %s', p_config ->> 'format');
        END IF;
        IF coalesce(p_config ->> 'format', 'json') = 'json' AND length(coalesce(p_config ->> 'secret', '')) < 16 THEN
            probs := probs || '"secret" of at least 16 characters is required for the json format (receivers check the signature)'::text;
        END IF;
    END IF;
    IF coalesce(p_config ->> 'lang', 'ja') NOT IN ('ja', 'en', 'ja+en') THEN
        probs := probs || format('"lang" is ja, en or ja+en, not %s', p_config ->> 'lang');
    END IF;
    IF p_config ? 'timezone' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = p_config ->> 'timezone') THEN
        probs := probs || format('unknown "timezone" %s', p_config ->> 'timezone');
    END IF;
    RETURN probs;
END
$$;
COMMENT ON FUNCTION status_checker._channel_problems(text, jsonb) IS
'Internal: what is wrong with a channel configuration (empty when nothing)';

-- ---------------------------------------------------------- public functions

CREATE FUNCTION status_checker.add_channel(tenant_id bigint, kind text, name text, config jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    probs text[];
    v_id bigint;
    secret_keys text[] := ARRAY['password', 'secret'];
BEGIN
    PERFORM status_checker._no_nulls('add_channel', ARRAY['tenant_id', 'kind', 'name', 'config'],
        ARRAY[add_channel.tenant_id::text, add_channel.kind, add_channel.name, add_channel.config::text]);
    PERFORM status_checker._require_tenant(add_channel.tenant_id);
    IF add_channel.kind NOT IN ('email', 'webhook') THEN
        RAISE EXCEPTION 'unknown channel kind %', quote_literal(add_channel.kind)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A channel is email or webhook.';
    END IF;
    IF btrim(add_channel.name) = '' OR length(add_channel.name) > 100 THEN
        RAISE EXCEPTION 'invalid channel name %', quote_literal(add_channel.name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 100 characters and is not blank.';
    END IF;
    probs := status_checker._channel_problems(add_channel.kind, add_channel.config);
    IF cardinality(probs) > 0 THEN
        RAISE EXCEPTION 'invalid % channel configuration', add_channel.kind
            USING ERRCODE = 'invalid_parameter_value', DETAIL = array_to_string(probs, E'\n');
    END IF;
    IF EXISTS (SELECT 1 FROM status_checker.channel c WHERE c.tenant_id = add_channel.tenant_id AND c.name = add_channel.name) THEN
        RAISE EXCEPTION 'tenant % already has a channel named %', add_channel.tenant_id, quote_literal(add_channel.name)
            USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO status_checker.channel (tenant_id, kind, name, config, secrets)
    VALUES (add_channel.tenant_id, add_channel.kind, add_channel.name,
            add_channel.config - secret_keys,
            jsonb_strip_nulls(jsonb_build_object('password', add_channel.config -> 'password',
                                                 'secret', add_channel.config -> 'secret')))
    RETURNING channel_id INTO v_id;
    -- messages that waited for a channel of this kind are due now
    UPDATE status_checker.outbox o SET next_attempt_at = pg_catalog.now()
    WHERE o.tenant_id = add_channel.tenant_id AND o.state IN ('queued', 'retrying') AND o.channel_kind = add_channel.kind
      AND o.next_attempt_at > pg_catalog.now();
    PERFORM status_checker._wake_dispatcher();
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.add_channel(bigint, text, text, jsonb) IS
'Add a delivery channel: email {"url": "smtp://host:port" | "smtps://…", "from", "starttls": require|try|off, "username", "password", "lang", "timezone", "ca_file"} '
'or webhook {"url", "format": json|slack, "secret", "lang", "broadcast"}; returns the channel id. Secrets are never shown again';

CREATE FUNCTION status_checker.set_channel_enabled(channel_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('set_channel_enabled', ARRAY['channel_id', 'enabled'],
        ARRAY[set_channel_enabled.channel_id::text, set_channel_enabled.enabled::text]);
    UPDATE status_checker.channel c SET enabled = set_channel_enabled.enabled
    WHERE c.channel_id = set_channel_enabled.channel_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'channel % does not exist', set_channel_enabled.channel_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    PERFORM status_checker._wake_dispatcher();
END
$$;
COMMENT ON FUNCTION status_checker.set_channel_enabled(bigint, boolean) IS
'Enable or disable a channel; messages wait (queued) while their tenant has no enabled channel of their kind';

CREATE FUNCTION status_checker.set_message_template(tenant_id bigint, purpose text, lang text, subject text, body text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    known text[] := ARRAY['site_name', 'site_code', 'group_name', 'request_title', 'event_summary', 'site_shindo',
                          'deadline', 'link', 'message', 'tenant_name', 'reminder_number', 'cancel_reason',
                          'unanswered_count', 'unanswered_sites', 'recipient_name'];
    bad text[];
BEGIN
    PERFORM status_checker._no_nulls('set_message_template', ARRAY['tenant_id', 'purpose', 'lang', 'subject', 'body'],
        ARRAY[set_message_template.tenant_id::text, set_message_template.purpose, set_message_template.lang,
              set_message_template.subject, set_message_template.body]);
    PERFORM status_checker._require_tenant(set_message_template.tenant_id);
    IF set_message_template.purpose NOT IN ('request', 'reminder', 'escalation', 'cancellation') THEN
        RAISE EXCEPTION 'unknown purpose %', quote_literal(set_message_template.purpose)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Purposes: request, reminder, escalation, cancellation.';
    END IF;
    IF set_message_template.lang NOT IN ('ja', 'en') THEN
        RAISE EXCEPTION 'unknown language %', quote_literal(set_message_template.lang)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Templates are written in ja or en.';
    END IF;
    IF btrim(set_message_template.subject) = '' OR length(set_message_template.subject) > 300
       OR set_message_template.subject ~ '[\r\n]' THEN
        RAISE EXCEPTION 'invalid subject template'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A subject has 1 to 300 characters on one line.';
    END IF;
    IF btrim(set_message_template.body) = '' OR length(set_message_template.body) > 20000 THEN
        RAISE EXCEPTION 'invalid body template'
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A body has 1 to 20000 characters.';
    END IF;
    SELECT array_agg(DISTINCT m[1] ORDER BY m[1]) INTO bad
    FROM regexp_matches(set_message_template.subject || ' ' || set_message_template.body, '\{\{\s*([^}]*?)\s*\}\}', 'g') m
    WHERE NOT m[1] = ANY (known);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown template variable(s): %', array_to_string(bad, ', ')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Variables: ' || array_to_string(known, ', ');
    END IF;
    INSERT INTO status_checker.message_template AS t (tenant_id, purpose, lang, subject, body)
    VALUES (set_message_template.tenant_id, set_message_template.purpose, set_message_template.lang,
            set_message_template.subject, set_message_template.body)
    ON CONFLICT (tenant_id, purpose, lang)
    DO UPDATE SET subject = excluded.subject, body = excluded.body, updated_at = pg_catalog.now();
END
$$;
COMMENT ON FUNCTION status_checker.set_message_template(bigint, text, text, text, text) IS
'Set a tenant''s template for a purpose (request, reminder, escalation, cancellation) and language (ja, en); '
'{{variables}}: site_name, site_code, group_name, request_title, event_summary, site_shindo, deadline, link, message, tenant_name, '
'reminder_number, cancel_reason, unanswered_count, unanswered_sites, recipient_name';

CREATE VIEW status_checker.channel_list WITH (security_invoker = true) AS
SELECT c.channel_id, c.tenant_id, c.kind, c.name, c.config,
       c.secrets ? 'password' AS has_password, c.secrets ? 'secret' AS has_secret,
       c.enabled, c.created_at
FROM status_checker.channel c;
COMMENT ON VIEW status_checker.channel_list IS
'Delivery channels with their configuration; secrets are shown only as has_password / has_secret';

-- ---- src/requests/tokens.sql
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
    INSERT INTO status_checker.request_token_revoked (token_hash, tenant_id, request_id, site_id)
    SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.token_hash IS NOT NULL;

    CREATE TEMP TABLE IF NOT EXISTS _sc_new_tokens (site_id bigint PRIMARY KEY, token text) ON COMMIT DROP;
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

-- ---- src/dispatch/outbox.sql
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

-- ---- src/dispatch/reminders.sql
-- src/dispatch/reminders.sql — reminders, escalation, and the periodic jobs.
--
-- A request (or the rule that makes it) can carry reminder intervals and an
-- escalation delay.  run_reminders(), run every minute by pg_cron
-- (schedule_jobs), enqueues the due reminder to every site that has not
-- answered, and once the escalation delay has passed, one message to each
-- manager of those sites' groups (or, where a group has none up to its
-- root, the tenant's admins) listing the sites that have not answered.
-- The outbox's natural key makes each of these happen once.

CREATE TABLE status_checker.site_group_manager (
    tenant_id   bigint NOT NULL,
    group_id    bigint NOT NULL,
    user_id     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES status_checker.site_group (tenant_id, group_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.site_group_manager IS
'Managers of a site group: escalations about the group''s sites (and its subgroups'') reach them';

CREATE TABLE status_checker.health_sample (
    taken_at   timestamptz PRIMARY KEY DEFAULT pg_catalog.clock_timestamp(),
    sample     jsonb NOT NULL
);
COMMENT ON TABLE status_checker.health_sample IS
'What health_probe() saw each time it ran (every minute with schedule_jobs): dispatcher, outbox backlog, feeds';

CREATE FUNCTION status_checker.add_group_manager(tenant_id bigint, group_id bigint, login text) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('add_group_manager', ARRAY['tenant_id', 'group_id', 'login'],
        ARRAY[add_group_manager.tenant_id::text, add_group_manager.group_id::text, add_group_manager.login]);
    PERFORM status_checker._require_tenant(add_group_manager.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.site_group g
                   WHERE g.tenant_id = add_group_manager.tenant_id AND g.group_id = add_group_manager.group_id) THEN
        RAISE EXCEPTION 'site group % does not exist in tenant %', add_group_manager.group_id, add_group_manager.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT * INTO u FROM status_checker.app_user a
    WHERE a.tenant_id = add_group_manager.tenant_id AND a.login = add_group_manager.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist in tenant %', quote_literal(add_group_manager.login), add_group_manager.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF u.role NOT IN ('admin', 'manager') THEN
        RAISE EXCEPTION 'user % is a %, not a manager or admin', quote_literal(u.login), u.role
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO status_checker.site_group_manager (tenant_id, group_id, user_id)
    VALUES (u.tenant_id, add_group_manager.group_id, u.user_id)
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION status_checker.add_group_manager(bigint, bigint, text) IS
'Make a manager (or admin) user responsible for a site group: escalations about its sites and subgroups'' sites reach them';

CREATE FUNCTION status_checker._reminder_problem(p_reminders interval[], p_escalate_after interval) RETURNS text
    LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE
        WHEN p_reminders IS NULL THEN 'reminders is NULL (use an empty array for none)'
        WHEN cardinality(p_reminders) > 20 THEN 'at most 20 reminders'
        WHEN array_position(p_reminders, NULL) IS NOT NULL THEN 'a reminder interval is NULL'
        WHEN EXISTS (SELECT 1 FROM unnest(p_reminders) WITH ORDINALITY a(iv, i)
                     WHERE a.iv < interval '1 minute'
                        OR a.iv <= coalesce(p_reminders[a.i - 1], interval '0')) THEN
            'reminder intervals are at least 1 minute and increase'
        WHEN p_escalate_after < interval '1 minute' THEN 'escalate_after is at least 1 minute'
    END;
COMMENT ON FUNCTION status_checker._reminder_problem(interval[], interval) IS
'Internal: what is wrong with a reminder schedule (NULL when nothing)';

CREATE FUNCTION status_checker.set_request_reminders(request_id bigint, reminders interval[], escalate_after interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    prob text := status_checker._reminder_problem(set_request_reminders.reminders, set_request_reminders.escalate_after);
BEGIN
    PERFORM status_checker._no_nulls('set_request_reminders', ARRAY['request_id'], ARRAY[set_request_reminders.request_id::text]);
    r := status_checker._require_request(set_request_reminders.request_id, true);
    IF prob IS NOT NULL THEN
        RAISE EXCEPTION 'invalid reminder schedule: %', prob USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Intervals count from the request''s creation, e.g. ARRAY[''30 minutes'', ''2 hours'']::interval[].';
    END IF;
    UPDATE status_checker.request q
    SET reminders = set_request_reminders.reminders, escalate_after = set_request_reminders.escalate_after
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) IS
'Remind the sites of a request that have not answered, at these intervals after its creation, and escalate to their group''s managers after escalate_after';

CREATE FUNCTION status_checker.set_rule_reminders(rule_id bigint, reminders interval[], escalate_after interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    prob text := status_checker._reminder_problem(set_rule_reminders.reminders, set_rule_reminders.escalate_after);
BEGIN
    PERFORM status_checker._no_nulls('set_rule_reminders', ARRAY['rule_id'], ARRAY[set_rule_reminders.rule_id::text]);
    IF prob IS NOT NULL THEN
        RAISE EXCEPTION 'invalid reminder schedule: %', prob USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.trigger_rule r
    SET reminders = set_rule_reminders.reminders, escalate_after = set_rule_reminders.escalate_after
    WHERE r.rule_id = set_rule_reminders.rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', set_rule_reminders.rule_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) IS
'The reminder schedule and escalation delay of the requests a trigger rule creates from now on';

CREATE FUNCTION status_checker.run_reminders() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q record;
    n bigint := 0;
    k integer;
    sites bigint[];
BEGIN
    FOR q IN SELECT r.tenant_id, r.request_id, r.reminders, r.escalate_after, r.created_at
             FROM status_checker.request r
             WHERE r.state = 'open' AND r.deadline > pg_catalog.now()
               AND (cardinality(r.reminders) > 0 OR r.escalate_after IS NOT NULL)
             ORDER BY r.tenant_id, r.request_id LOOP
        -- the latest reminder that is due (earlier ones missed are not sent late)
        SELECT max(a.i) INTO k FROM unnest(q.reminders) WITH ORDINALITY a(iv, i)
        WHERE q.created_at + a.iv <= pg_catalog.now();
        IF k IS NOT NULL THEN
            -- sites that have not answered, were asked at least that long ago,
            -- and have not had this reminder (or a later one)
            SELECT array_agg(t.site_id ORDER BY t.site_id) INTO sites
            FROM status_checker.request_target t
            WHERE t.tenant_id = q.tenant_id AND t.request_id = q.request_id AND t.report_count = 0
              AND NOT EXISTS (SELECT 1 FROM status_checker.outbox o
                              WHERE o.tenant_id = t.tenant_id AND o.request_id = t.request_id AND o.site_id = t.site_id
                                AND o.purpose = 'reminder' AND o.seq >= k)
              AND EXISTS (SELECT 1 FROM status_checker.outbox o
                          WHERE o.tenant_id = t.tenant_id AND o.request_id = t.request_id AND o.site_id = t.site_id
                            AND o.purpose = 'request' AND o.enqueued_at + q.reminders[1] <= pg_catalog.now());
            IF sites IS NOT NULL THEN
                n := n + status_checker._enqueue_site_messages(q.tenant_id, q.request_id, 'reminder', k, sites);
            END IF;
        END IF;
        IF q.escalate_after IS NOT NULL AND q.created_at + q.escalate_after <= pg_catalog.now() THEN
            n := n + status_checker._enqueue_escalation(q.tenant_id, q.request_id);
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.run_reminders() IS
'Enqueue the reminders and escalations that are due (run every minute by the pg_cron job status_checker-reminders); returns the number of messages enqueued';

-- One escalation per manager (and per broadcasting webhook channel) of a
-- request, listing the sites they cover that have not answered.
CREATE FUNCTION status_checker._enqueue_escalation(p_tenant_id bigint, p_request_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH silent AS (
        SELECT s.site_id, s.code, s.name, g.ancestors
        FROM status_checker.request_target t
        JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        WHERE t.tenant_id = p_tenant_id AND t.request_id = p_request_id AND t.report_count = 0
    ), covered AS (
        SELECT DISTINCT m.user_id, x.site_id, x.code, x.name
        FROM silent x
        JOIN status_checker.site_group_manager m ON m.tenant_id = p_tenant_id AND m.group_id = ANY (x.ancestors)
    ), orphan AS (   -- no manager up to the root: the tenant's admins
        SELECT a.user_id, x.site_id, x.code, x.name
        FROM silent x CROSS JOIN status_checker.app_user a
        WHERE a.tenant_id = p_tenant_id AND a.role = 'admin'
          AND NOT EXISTS (SELECT 1 FROM covered c WHERE c.site_id = x.site_id)
    ), per_user AS (
        SELECT y.user_id, jsonb_agg(jsonb_build_object('code', y.code, 'name', y.name) ORDER BY y.code) AS sites
        FROM (SELECT * FROM covered UNION SELECT * FROM orphan) y GROUP BY y.user_id
    ), msgs AS (
        SELECT p.user_id, NULL::bigint AS channel_id, 'email' AS kind, u.email AS recipient, p.sites
        FROM per_user p JOIN status_checker.app_user u ON u.tenant_id = p_tenant_id AND u.user_id = p.user_id
        UNION ALL
        SELECT NULL, ch.channel_id, 'webhook', ch.config ->> 'url',
               (SELECT jsonb_agg(jsonb_build_object('code', x.code, 'name', x.name) ORDER BY x.code) FROM silent x)
        FROM status_checker.channel ch
        WHERE ch.tenant_id = p_tenant_id AND ch.kind = 'webhook' AND ch.enabled
          AND coalesce((ch.config ->> 'broadcast')::boolean, true) AND EXISTS (SELECT 1 FROM silent)
    )
    INSERT INTO status_checker.outbox (tenant_id, request_id, site_id, user_id, channel_id, channel_kind, recipient, purpose, seq, detail)
    SELECT p_tenant_id, p_request_id, NULL, m.user_id, m.channel_id, m.kind, m.recipient, 'escalation', 0,
           jsonb_build_object('sites', m.sites)
    FROM msgs m
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_escalation(bigint, bigint) IS
'Internal: enqueue the escalation of a request to the managers of its silent sites (admins where no group has one)';

CREATE FUNCTION status_checker.purge_outbox(older_than interval DEFAULT '90 days') RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n bigint;
BEGIN
    IF purge_outbox.older_than IS NULL OR purge_outbox.older_than < interval '1 day' THEN
        RAISE EXCEPTION 'purge_outbox keeps at least 1 day, not %', coalesce(purge_outbox.older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH d AS (
        DELETE FROM status_checker.outbox o
        WHERE o.state IN ('sent', 'dead', 'cancelled')
          AND coalesce(o.sent_at, o.enqueued_at) < pg_catalog.now() - purge_outbox.older_than
        RETURNING o.tenant_id, o.message_id
    ), a AS (
        DELETE FROM status_checker.delivery_attempt x USING d
        WHERE x.tenant_id = d.tenant_id AND x.message_id = d.message_id
    )
    SELECT count(*) INTO n FROM d;
    DELETE FROM status_checker.health_sample h WHERE h.taken_at < pg_catalog.now() - purge_outbox.older_than;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.purge_outbox(interval) IS
'Retention: delete settled messages (sent, dead, cancelled), their delivery log and health samples older than the given age (default 90 days); returns the number of messages deleted';

CREATE FUNCTION status_checker.health_probe() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d record;
    s jsonb;
BEGIN
    d := status_checker.dispatcher_status();
    s := jsonb_build_object(
        'dispatcher', jsonb_build_object(
            'running', d.running, 'pid', d.pid,
            'heartbeat_age_s', round(extract(epoch FROM pg_catalog.clock_timestamp() - d.heartbeat)::numeric, 3),
            'in_flight', d.in_flight, 'sent', d.sent, 'retried', d.retried, 'dead', d.dead),
        'outbox', (SELECT jsonb_build_object(
            'queued', count(*) FILTER (WHERE o.state = 'queued'),
            'retrying', count(*) FILTER (WHERE o.state = 'retrying'),
            'sending', count(*) FILTER (WHERE o.state = 'sending'),
            'oldest_waiting_s', round(extract(epoch FROM pg_catalog.now() - min(o.enqueued_at)
                                      FILTER (WHERE o.state IN ('queued', 'retrying', 'sending')))::numeric, 3))
            FROM status_checker.outbox o WHERE o.state IN ('queued', 'retrying', 'sending')),
        'dead_last_hour', (SELECT count(*) FROM status_checker.delivery_attempt a
                           WHERE a.outcome = 'dead' AND a.at > pg_catalog.now() - interval '1 hour'),
        'feeds', (SELECT jsonb_build_object('total', count(*), 'failing', count(*) FILTER (WHERE f.consecutive_errors > 0))
                  FROM status_checker.feed f));
    INSERT INTO status_checker.health_sample (sample) VALUES (s);
    RETURN s;
END
$$;
COMMENT ON FUNCTION status_checker.health_probe() IS
'Health probe (every minute with schedule_jobs): the dispatcher''s heartbeat and counters, the outbox backlog and its oldest message, '
'dead messages of the last hour, failing feeds; stored in health_sample and returned';

CREATE FUNCTION status_checker.schedule_jobs() RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
    has_in_db boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'status_checker''s periodic jobs (reminders every minute, outbox retention, health probe) are run by pg_cron.',
                  HINT = format('Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name = %L, '
                                'restart, run CREATE EXTENSION pg_cron here, then call schedule_jobs() again. '
                                'Without pg_cron, have any scheduler run SELECT status_checker.run_reminders() every minute, '
                                'SELECT status_checker.health_probe() every minute and SELECT status_checker.purge_outbox() daily.',
                                pg_catalog.current_database());
    END IF;
    has_in_db := to_regproc('cron.schedule_in_database') IS NOT NULL;
    FOR j IN SELECT * FROM (VALUES
        ('status_checker-reminders', '* * * * *', 'SELECT status_checker.run_reminders()'),
        ('status_checker-health',    '* * * * *', 'SELECT status_checker.health_probe()'),
        ('status_checker-retention', '17 3 * * *', 'SELECT status_checker.purge_outbox()')) v(name, sched, cmd)
    LOOP
        -- scheduling a job name again replaces it: calling this twice is harmless
        IF has_in_db THEN
            EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
                USING j.name, j.sched, j.cmd, pg_catalog.current_database();
        ELSE
            EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING j.name, j.sched, j.cmd;
        END IF;
        RETURN NEXT j.name;
    END LOOP;
END
$$;
COMMENT ON FUNCTION status_checker.schedule_jobs() IS
'Register status_checker''s periodic jobs with pg_cron (reminders and health probe every minute, outbox retention daily); '
'returns the job names. Without pg_cron, raises an error that says what to do';

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
