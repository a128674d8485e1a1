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
-- Destinations (0.10.1): the dispatcher connects only to public addresses
-- and to the networks the operator lists in status_checker.allowed_destinations
-- (src/dispatch/destinations.c); a URL whose host is an address that is not
-- allowed is refused when it is added (_require_destination).  ca_file
-- names a file on the database server: only an operator sets it.

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
ALTER TABLE status_checker.channel ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.channel FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.channel
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
-- a channel's name and kind for everyone who reads (delivery_status names the
-- channel); its configuration (the URL: a Slack webhook's is a credential) for managers
GRANT SELECT (tenant_id, channel_id, kind, name, enabled, created_at) ON status_checker.channel TO status_checker_viewer, status_checker_operator;
GRANT SELECT (tenant_id, channel_id, kind, name, config, enabled, created_at) ON status_checker.channel TO status_checker_manager;

-- The key personal link tokens are derived from (src/dispatch/crypto.c):
-- a message is rendered with its site's token without the token being
-- stored anywhere; request_target keeps only the token's SHA-256.
CREATE TABLE status_checker.link_key (
    tenant_id   bigint PRIMARY KEY REFERENCES status_checker.tenant,
    key         bytea NOT NULL,             -- encrypted (src/security/encryption.sql)
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.link_key IS
'Per tenant: the 256-bit key personal link tokens are derived from (HMAC-SHA256); whoever reads it can forge links';
ALTER TABLE status_checker.link_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.link_key FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.link_key
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

CREATE TABLE status_checker.default_template (
    purpose  text NOT NULL CHECK (purpose IN ('request', 'reminder', 'escalation', 'cancellation')),
    lang     text NOT NULL CHECK (lang IN ('ja', 'en')),
    subject  text NOT NULL,
    body     text NOT NULL,
    PRIMARY KEY (purpose, lang)
);
COMMENT ON TABLE status_checker.default_template IS
'The built-in message templates (ja, en) for each purpose; a tenant overrides them with set_message_template';
GRANT SELECT ON status_checker.default_template TO status_checker_viewer, status_checker_operator;

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
ALTER TABLE status_checker.message_template ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.message_template FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.message_template
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.message_template TO status_checker_viewer, status_checker_operator;

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
GRANT EXECUTE ON FUNCTION status_checker.webhook_signature(text, bigint, text) TO status_checker_api, status_checker_operator;

-- ---------------------------------------------------------- helpers

-- _link_key(tenant_id), a tenant's link key (decrypted), made on first use: src/security/encryption.sql

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

-- _destination_problem, _require_destination and add_channel: src/dispatch/destinations.sql
--.

CREATE FUNCTION status_checker.set_channel_enabled(channel_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
ALTER FUNCTION status_checker.set_channel_enabled(bigint, boolean) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_channel_enabled(bigint, boolean) TO status_checker_admin;

CREATE FUNCTION status_checker.set_message_template(tenant_id bigint, purpose text, lang text, subject text, body text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
ALTER FUNCTION status_checker.set_message_template(bigint, text, text, text, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_message_template(bigint, text, text, text, text) TO status_checker_admin;

-- channel_list shows whether a channel has a password or secret; its
-- readers may not read the secrets column, so a function that runs as
-- status_checker_api (itself confined to the caller's tenant) answers that.
CREATE FUNCTION status_checker._channel_has_secrets(p_tenant_id bigint, p_channel_id bigint,
                                                    OUT has_password boolean, OUT has_secret boolean)
    LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT c.secrets ? 'password', c.secrets ? 'secret' FROM status_checker.channel c
    WHERE c.tenant_id = p_tenant_id AND c.channel_id = p_channel_id
$$;
ALTER FUNCTION status_checker._channel_has_secrets(bigint, bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker._channel_has_secrets(bigint, bigint) TO status_checker_manager;

CREATE VIEW status_checker.channel_list WITH (security_invoker = true) AS
SELECT c.channel_id, c.tenant_id, c.kind, c.name, c.config,
       h.has_password, h.has_secret,
       c.enabled, c.created_at
FROM status_checker.channel c
LEFT JOIN LATERAL status_checker._channel_has_secrets(c.tenant_id, c.channel_id) h ON true;
COMMENT ON VIEW status_checker.channel_list IS
'Delivery channels with their configuration; secrets are shown only as has_password / has_secret';
-- the configuration: for managers
GRANT SELECT ON status_checker.channel_list TO status_checker_manager;
