-- src/dispatch/workers.sql — the dispatcher workers (0.8.0): several
-- processes claim from the one outbox (FOR UPDATE SKIP LOCKED), each
-- holding the messages it claimed (outbox.claimed_by).  Written with
-- CREATE OR REPLACE: one text for the install and the upgrade.

-- dispatcher_status(), their summary: src/dispatch/outbox.sql

CREATE OR REPLACE FUNCTION status_checker.dispatcher_workers(
    OUT worker integer, OUT running boolean, OUT pid integer, OUT started_at timestamptz, OUT heartbeat timestamptz,
    OUT in_flight bigint, OUT waiting bigint, OUT sent bigint, OUT retried bigint, OUT dead bigint)
    RETURNS SETOF record
    LANGUAGE c VOLATILE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'sc_dispatcher_workers';
COMMENT ON FUNCTION status_checker.dispatcher_workers() IS
'Each dispatcher worker (status_checker.dispatch_workers of them, numbered from 0): running, pid, start, last heartbeat, '
'transfers in flight, claimed messages waiting for the rate limit, outcomes since the server started; no row without '
'shared_preload_libraries';
GRANT EXECUTE ON FUNCTION status_checker.dispatcher_workers() TO status_checker_api, status_checker_operator;

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
