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
    claimed_by       smallint,            -- the dispatcher worker (0, 1, …) that holds or last held it (0.8.0)
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
ALTER TABLE status_checker.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.outbox
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.outbox TO status_checker_viewer, status_checker_operator;

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
ALTER TABLE status_checker.delivery_attempt ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.delivery_attempt FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.delivery_attempt
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.delivery_attempt TO status_checker_viewer, status_checker_operator;

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
    LANGUAGE c VOLATILE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'sc_dispatcher_status';
COMMENT ON FUNCTION status_checker.dispatcher_status() IS
'The dispatcher workers in one row: running (any of them), pid (the first running one''s), earliest start, oldest heartbeat, '
'transfers in flight, claimed messages waiting for the rate limit, and outcomes since the server started (sent, retried, dead), '
'summed over the workers; running is false without shared_preload_libraries.  dispatcher_workers() shows each worker';
GRANT EXECUTE ON FUNCTION status_checker.dispatcher_status() TO status_checker_api, status_checker_operator;

CREATE TRIGGER outbox_wake AFTER INSERT ON status_checker.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION status_checker._outbox_wake();

-- ---------------------------------------------------------- enqueueing

-- _enqueue_site_messages: src/dispatch/enqueue.sql.

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

-- On start, each dispatcher worker makes the messages it left 'sending'
-- due again: _dispatcher_startup, src/dispatch/workers.sql.

CREATE FUNCTION status_checker._outbox_next_wait() RETURNS double precision
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (SELECT extract(epoch FROM min(o.next_attempt_at) - pg_catalog.clock_timestamp())
            FROM status_checker.outbox o WHERE o.sent_at IS NULL AND o.state IN ('queued', 'retrying'));
COMMENT ON FUNCTION status_checker._outbox_next_wait() IS
'Internal: seconds until the next message is due (NULL when none waits)';

-- _mask_recipient: src/dispatch/delivery_status.sql.


-- _claim_messages is in src/dispatch/claim.sql; the delivery_status view in
-- src/security/encryption.sql (recipients are encrypted, 0.4.0).

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
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
ALTER FUNCTION status_checker.retry_message(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.retry_message(bigint) TO status_checker_manager;


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
GRANT SELECT ON status_checker.request_delivery TO status_checker_viewer, status_checker_operator;
