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
    v_refused bigint;           -- dead messages whose destination was refused
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
    -- (0.10.1: and how many of them were to a destination that is not allowed)
    SELECT count(*), count(*) FILTER (WHERE a.error LIKE 'destination % refused: %') INTO v_n, v_refused
    FROM status_checker.delivery_attempt a
    WHERE a.outcome = 'dead' AND a.at > pg_catalog.now() - interval '1 hour';
    acc := acc || jsonb_build_array(to_jsonb(ARRAY[
         'dead_messages', CASE WHEN v_n > 0 THEN 'warning' ELSE 'ok' END, v_n::text || ' in the last hour',
         CASE WHEN v_n > 0 THEN 'messages gave up: see delivery_status (last_error) and retry_message()'
                  || CASE WHEN v_refused > 0 THEN format('; %s of them to a destination that status_checker.allowed_destinations '
                                                         'does not allow', v_refused) ELSE '' END
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
