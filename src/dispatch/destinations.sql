-- src/dispatch/destinations.sql — where a channel or a contact may send:
-- a URL whose host is an address the dispatcher may not connect to is
-- refused when it is added (the dispatcher checks every address it
-- connects to: src/dispatch/destinations.c); a channel's ca_file is an
-- operator's.  Written with CREATE OR REPLACE: an upgrade script can replay the same text.

CREATE OR REPLACE FUNCTION status_checker._destination_problem(url text) RETURNS text
    LANGUAGE c STABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_destination_problem';
COMMENT ON FUNCTION status_checker._destination_problem(text) IS
'Internal: why the dispatcher would refuse the URL''s host, if it is an IP address that is neither public nor in '
'status_checker.allowed_destinations (or the URL is not one libcurl reads); NULL otherwise, and for a host name';

-- a URL the dispatcher would refuse to connect to, refused now (p_what: how
-- the error names it)
CREATE OR REPLACE FUNCTION status_checker._require_destination(p_what text, p_url text) RETURNS void
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    problem text := status_checker._destination_problem(p_url);
BEGIN
    IF problem LIKE 'destination %' THEN
        RAISE EXCEPTION '% refused: %', p_what, problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only public addresses are allowed, and the networks an operator lists in status_checker.allowed_destinations '
                         '(postgresql.conf); a host name is checked when a message is sent.';
    ELSIF problem IS NOT NULL THEN
        RAISE EXCEPTION '% refused: %', p_what, problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._require_destination(text, text) IS
'Internal: refuse (22023) a URL whose host is an IP address the dispatcher may not connect to (status_checker.allowed_destinations)';

-- ---------------------------------------------------------- public functions

CREATE OR REPLACE FUNCTION status_checker.add_channel(tenant_id bigint, kind text, name text, config jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    probs text[];
    v_id bigint;
    secret_keys text[] := ARRAY['password', 'secret'];
BEGIN
    PERFORM status_checker._no_nulls('add_channel', ARRAY['tenant_id', 'kind', 'name', 'config'],
        ARRAY[add_channel.tenant_id::text, add_channel.kind, add_channel.name, add_channel.config::text]);
    PERFORM status_checker._require_tenant(add_channel.tenant_id);
    -- a path on the database server: the operator's (0.10.1)
    IF add_channel.config ? 'ca_file' AND NOT status_checker._is_operator() THEN
        RAISE EXCEPTION 'only an operator may set "ca_file" (a path on the database server)'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An operator (a superuser or a member of status_checker_operator) adds a channel that needs its own CA bundle.';
    END IF;
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
    PERFORM status_checker._require_destination('channel "url"', add_channel.config ->> 'url');
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
'or webhook {"url", "format": json|slack, "secret", "lang", "broadcast", "ca_file"}; returns the channel id. Secrets are never shown again. '
'A URL whose host is an address that is neither public nor in status_checker.allowed_destinations is refused; ca_file is for operators';
ALTER FUNCTION status_checker.add_channel(bigint, text, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.add_channel(bigint, text, text, jsonb) TO status_checker_admin, status_checker_operator;

