-- status_checker 0.5.0 → 0.6.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/common/jobs.sql
-- src/common/jobs.sql — the extension's periodic jobs, registered with
-- pg_cron.  Written with CREATE OR REPLACE: each version that adds a job
-- redefines it, in its install script and in its upgrade script.

CREATE OR REPLACE FUNCTION status_checker.schedule_jobs() RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j record;
    has_in_db boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'status_checker''s periodic jobs (reminders, health probe and audit sealing every minute, ended dashboard sessions hourly, outbox and audit retention daily) are run by pg_cron.',
                  HINT = format('Install postgresql-15-cron, add pg_cron to shared_preload_libraries, set cron.database_name = %L, '
                                'restart, run CREATE EXTENSION pg_cron here, then call schedule_jobs() again. '
                                'Without pg_cron, have any scheduler run SELECT status_checker.run_reminders() every minute, '
                                'SELECT status_checker.health_probe() and SELECT status_checker.seal_audit_log() every minute, '
                                'and SELECT status_checker.purge_outbox() and SELECT status_checker.prune_audit_log() daily.',
                                pg_catalog.current_database());
    END IF;
    has_in_db := to_regproc('cron.schedule_in_database') IS NOT NULL;
    FOR j IN SELECT * FROM (VALUES
        ('status_checker-reminders', '* * * * *', 'SELECT status_checker.run_reminders()'),
        ('status_checker-health',    '* * * * *', 'SELECT status_checker.health_probe()'),
        ('status_checker-retention', '17 3 * * *', 'SELECT status_checker.purge_outbox()'),
        ('status_checker-audit-seal', '* * * * *', 'SELECT status_checker.seal_audit_log()'),
        ('status_checker-audit-retention', '37 3 * * *', 'SELECT status_checker.prune_audit_log()'),
        ('status_checker-web-sessions', '7 * * * *', 'SELECT status_checker.purge_web_sessions()')) v(name, sched, cmd)
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
'Register status_checker''s periodic jobs with pg_cron (reminders, health probe and audit sealing every minute; outbox and audit retention daily); '
'returns the job names. Without pg_cron, raises an error that says what to do';

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
        acc := acc || jsonb_build_array(to_jsonb(ARRAY[
             'dispatcher',
             CASE WHEN pg_catalog.current_setting('status_checker.dispatcher') = 'off' THEN 'warning'
                  WHEN NOT coalesce(d.running, false) THEN 'critical'
                  WHEN v_age > 120 THEN 'critical'
                  ELSE 'ok' END,
             CASE WHEN coalesce(d.running, false) THEN format('pid %s, heartbeat %s s ago', d.pid, round(v_age::numeric, 1))
                  ELSE 'not running' END,
             CASE WHEN pg_catalog.current_setting('status_checker.dispatcher') = 'off'
                      THEN 'status_checker.dispatcher = off: nothing is sent from this node'
                  WHEN NOT coalesce(d.running, false)
                      THEN 'the dispatcher is not running (the postmaster restarts it within seconds; see the server log)'
                  WHEN v_age > 120 THEN 'the dispatcher has not looked at its work for over 2 minutes: it hangs'
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

-- ---- src/web/web.sql
-- src/web/web.sql — what a reporter page needs from the SQL API: the page's
-- content for a personal link (report_form), and a report submission that a
-- double tap, a browser retry or a lost answer cannot store twice
-- (submit_report with an idempotency key).  The HTTP worker (src/web/http.c)
-- is one client of these functions; any other frontend can be another.

-- The idempotency key of the site's latest submission by link.  A request
-- with the same key is a replay: it returns that report's id and stores
-- nothing.  One key per site is enough for the cases that occur (a double
-- tap, a retry after a lost answer: both repeat the site's newest
-- submission); an update of the site's status carries a new key.
ALTER TABLE status_checker.request_target ADD COLUMN IF NOT EXISTS submit_key text;
COMMENT ON COLUMN status_checker.request_target.submit_key IS
'Idempotency key of the latest report submitted by link with one (submit_report(token, answers, idempotency_key)); a replay with the same key stores nothing';

CREATE OR REPLACE FUNCTION status_checker.submit_report(token text, answers jsonb, idempotency_key text)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_submit_report_key';
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb, text) IS
'Submit a site''s report with its personal token, at most once per idempotency key (1 to 128 printable ASCII characters, '
'e.g. a UUID made when the form was shown): a replay of the site''s latest submission returns its report id and stores nothing';

-- The reporter page's content for a personal link.  Read-only: opening a
-- link (a mail scanner does it first) uses up and changes nothing.
CREATE OR REPLACE FUNCTION status_checker.report_form(token text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    h bytea := CASE WHEN token IS NOT NULL THEN status_checker._token_hash(token) END;
    result jsonb;
BEGIN
    SELECT jsonb_build_object(
               'request', jsonb_build_object(
                   'id', r.request_id, 'title', r.title, 'message', r.message, 'state', r.state,
                   'drill', r.drill, 'deadline', r.deadline, 'cancel_reason', r.cancel_reason,
                   'event', CASE WHEN e.event_id IS NOT NULL THEN jsonb_build_object(
                                'summary', status_checker._event_title(e),
                                'max_shindo', e.max_shindo::text,
                                'origin_time', e.origin_time) END),
               'tenant', tn.name,
               'site', jsonb_build_object(
                   'code', s.code, 'name', s.name,
                   'shindo', t.asked_shindo::text,
                   'shindo_label', CASE WHEN t.asked_shindo IS NOT NULL THEN jsonb_build_object(
                                       'ja', status_checker.shindo_label(t.asked_shindo, 'ja'),
                                       'en', status_checker.shindo_label(t.asked_shindo, 'en')) END),
               'form', f.definition,
               'latest', CASE WHEN p.report_id IS NOT NULL THEN jsonb_build_object(
                             'report_id', p.report_id, 'answers', p.answers, 'level', p.level,
                             'color', p.color, 'icon', p.icon, 'submitted_at', p.submitted_at,
                             'report_count', t.report_count) END)
      INTO result
      FROM status_checker.request_target t
      JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
      JOIN status_checker.tenant tn ON tn.tenant_id = t.tenant_id
      JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
      JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
      LEFT JOIN status_checker.event e ON e.event_id = r.event_id
      LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id
     WHERE t.token_hash = h;
    IF result IS NULL THEN
        IF h IS NOT NULL AND EXISTS (SELECT 1 FROM status_checker.request_token_revoked v WHERE v.token_hash = h) THEN
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification', HINT = 'Use the link in the most recent message.';
        END IF;
        RAISE EXCEPTION 'unknown report token'
            USING ERRCODE = 'invalid_authorization_specification', DETAIL = 'The link is wrong or incomplete.',
                  HINT = 'Open the link exactly as it appears in the message.';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.report_form(text) IS
'What a reporter page shows for a personal link: the request (title, state, deadline, event), the site (and the intensity it was asked at), '
'the form version to answer and the site''s latest report. Read-only: opening a link changes nothing';

-- ---------------------------------------------------------------- dashboard
--
-- Tenant users sign in to the dashboard with a password (argon2id, from
-- libargon2: src/web/password.c).  The gateway (the HTTP worker) checks it
-- with web_login and then acts for the user with set_app_user, so that the
-- dashboard reads the views with the user's own role under row-level
-- security.  Passwords and sessions are in tables nobody but the API
-- functions may read.

CREATE FUNCTION status_checker._password_hash(password text) RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_password_hash';
CREATE FUNCTION status_checker._password_verify(hash text, password text) RETURNS boolean
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_password_verify';

CREATE TABLE status_checker.web_login (
    tenant_id      bigint NOT NULL,
    user_id        bigint NOT NULL,
    password_hash  text NOT NULL,            -- argon2id, PHC string format
    failures       integer NOT NULL DEFAULT 0,   -- failed sign-ins since the last success
    locked_until   timestamptz,
    changed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_login IS
'Dashboard passwords of a tenant''s users (argon2id hashes), failed sign-ins and lockouts; read only by the API functions';

CREATE TABLE status_checker.web_session (
    tenant_id     bigint NOT NULL,
    session_hash  bytea NOT NULL,            -- SHA-256 of the cookie's value
    user_id       bigint NOT NULL,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    seen_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, session_hash),
    UNIQUE (session_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_session IS
'Dashboard sessions: the hash of each session cookie, its user and CSRF token; a session ends after 2 hours idle or 12 hours';

-- password changes and failed sign-ins (the failures column) are audited
DO $$
DECLARE
    op text;
BEGIN
    FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_%1$s ON status_checker.web_login', op);
        EXECUTE format('CREATE TRIGGER audit_%1$s AFTER %2$s ON status_checker.web_login '
                       'REFERENCING %3$s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION status_checker._audit_changes(''tenant_id'', ''user_id'')',
                       op, upper(op),
                       CASE op WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                               WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                               ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION status_checker.set_user_password(tenant_id bigint, login text, password text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('set_user_password', ARRAY['tenant_id', 'login', 'password'],
                                     ARRAY[set_user_password.tenant_id::text, set_user_password.login,
                                           CASE WHEN set_user_password.password IS NOT NULL THEN '' END]);
    IF char_length(set_user_password.password) < 10 OR char_length(set_user_password.password) > 200 THEN
        RAISE EXCEPTION 'a password has 10 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A long passphrase is best; any characters may be used.';
    END IF;
    u := status_checker._require_user(set_user_password.tenant_id, set_user_password.login);
    INSERT INTO status_checker.web_login AS w (tenant_id, user_id, password_hash)
    VALUES (u.tenant_id, u.user_id, status_checker._password_hash(set_user_password.password))
    ON CONFLICT (tenant_id, user_id)
    DO UPDATE SET password_hash = EXCLUDED.password_hash, failures = 0, locked_until = NULL, changed_at = now();
    -- a new password ends the user's sessions
    DELETE FROM status_checker.web_session s WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_user_password(bigint, text, text) IS
'Set a user''s dashboard password (10 to 200 characters, stored as an argon2id hash); ends the user''s sessions and lifts a lockout. Admins only';

CREATE TYPE status_checker.web_login_result AS (
    ok            boolean,
    reason        text,        -- NULL, 'wrong' (unknown user or wrong password) or 'locked'
    session_token text,
    csrf_token    text,
    role          text,
    locked_until  timestamptz
);
COMMENT ON TYPE status_checker.web_login_result IS 'The outcome of web_login';

-- Sign in: not an error when it fails, so that the failure is counted (an
-- exception would roll the count back).  An unknown login costs as much as
-- a wrong password, and says the same.
CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text)
    RETURNS status_checker.web_login_result
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
    w status_checker.web_login;
    r status_checker.web_login_result;
    tok text;
BEGIN
    SELECT * INTO u FROM status_checker.app_user x
     WHERE x.tenant_id = web_login.tenant_id AND x.login = web_login.login;
    IF FOUND THEN
        SELECT * INTO w FROM status_checker.web_login x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id FOR UPDATE;
    END IF;
    IF w.user_id IS NULL THEN
        -- the same work as a real check (a hash of a password nobody uses, with the same cost)
        PERFORM status_checker._password_verify(
            '$argon2id$v=19$m=19456,t=2,p=1$vECpmqnf2MSab0kxsEBRHA$YYX7Ha0Zee6PEwWwQlKSVPNYQvtxdd6W8ImXJUr8SAg',
            coalesce(web_login.password, ''));
        r.ok := false;
        r.reason := 'wrong';
        RETURN r;
    END IF;
    IF w.locked_until > now() THEN
        r.ok := false;
        r.reason := 'locked';
        r.locked_until := w.locked_until;
        RETURN r;
    END IF;
    IF web_login.password IS NULL OR NOT status_checker._password_verify(w.password_hash, web_login.password) THEN
        -- five failures in a row lock the account for 15 minutes
        UPDATE status_checker.web_login x
           SET failures = x.failures + 1,
               locked_until = CASE WHEN x.failures + 1 >= 5 THEN now() + interval '15 minutes' END
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id
        RETURNING x.locked_until INTO r.locked_until;
        r.ok := false;
        r.reason := CASE WHEN r.locked_until IS NOT NULL THEN 'locked' ELSE 'wrong' END;
        RETURN r;
    END IF;
    IF w.failures > 0 OR w.locked_until IS NOT NULL THEN
        UPDATE status_checker.web_login x SET failures = 0, locked_until = NULL
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
    END IF;
    tok := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
    r.ok := true;
    r.session_token := tok;
    r.csrf_token := translate(encode(status_checker._random_bytes(24), 'base64'), E'+/=\n', '-_');
    r.role := u.role;
    INSERT INTO status_checker.web_session (tenant_id, session_hash, user_id, csrf_token)
    VALUES (u.tenant_id, sha256(convert_to(tok, 'UTF8')), u.user_id, r.csrf_token);
    -- sessions that ended long ago go
    DELETE FROM status_checker.web_session s
     WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id
       AND (s.seen_at < now() - interval '2 hours' OR s.created_at < now() - interval '12 hours');
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_login(bigint, text, text) IS
'For gateways: check a user''s dashboard password; on success a new session (its cookie value and CSRF token, returned once). '
'Five failures in a row lock the account for 15 minutes; failures are not errors (they are counted and audited)';

CREATE TYPE status_checker.web_session_user AS (tenant_id bigint, login text, role text, csrf_token text);
COMMENT ON TYPE status_checker.web_session_user IS 'The user of a dashboard session (web_session_user)';

CREATE OR REPLACE FUNCTION status_checker.web_session_user(session_token text)
    RETURNS status_checker.web_session_user
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    s status_checker.web_session;
    r status_checker.web_session_user;
BEGIN
    SELECT * INTO s FROM status_checker.web_session x
     WHERE x.session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
       AND x.seen_at > now() - interval '2 hours' AND x.created_at > now() - interval '12 hours';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such session, or it has ended'
            USING ERRCODE = 'invalid_authorization_specification', HINT = 'Sign in again.';
    END IF;
    -- idle time counts from the last request (written at most once a minute)
    IF s.seen_at < now() - interval '1 minute' AND NOT pg_is_in_recovery() THEN
        UPDATE status_checker.web_session x SET seen_at = now()
         WHERE x.tenant_id = s.tenant_id AND x.session_hash = s.session_hash;
    END IF;
    SELECT u.tenant_id, u.login, u.role, s.csrf_token INTO r
      FROM status_checker.app_user u WHERE u.tenant_id = s.tenant_id AND u.user_id = s.user_id;
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_session_user(text) IS
'For gateways: the user of a dashboard session (tenant, login, role, CSRF token); 28000 for an unknown or ended session '
'(2 hours idle, 12 hours in all)';

CREATE OR REPLACE FUNCTION status_checker.web_logout(session_token text)
    RETURNS void
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM status_checker.web_session WHERE session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
$$;
COMMENT ON FUNCTION status_checker.web_logout(text) IS 'For gateways: end a dashboard session';

CREATE OR REPLACE FUNCTION status_checker.purge_web_sessions()
    RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM status_checker.web_session
         WHERE seen_at < now() - interval '2 hours' OR created_at < now() - interval '12 hours'
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION status_checker.purge_web_sessions() IS
'Delete the dashboard sessions that have ended (2 hours idle, 12 hours in all); returns how many. Run hourly by schedule_jobs()';

-- Everything the dashboard shows for one request, in one document; read
-- with the caller's privileges (row-level security: another tenant's
-- request does not exist).
CREATE OR REPLACE FUNCTION status_checker.request_dashboard(request_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    result jsonb;
BEGIN
    -- under the caller's row-level security: another tenant's request does not exist (23503)
    r := status_checker._require_request(request_dashboard.request_id);
    SELECT jsonb_build_object(
        'request', (SELECT jsonb_build_object(
                        'id', q.request_id, 'title', q.title, 'state', q.state, 'drill', q.drill,
                        'created_at', q.created_at, 'deadline', q.deadline,
                        'event', (SELECT jsonb_build_object('summary', status_checker._event_title(e), 'max_shindo', e.max_shindo::text,
                                                            'origin_time', e.origin_time)
                                  FROM status_checker.event e WHERE e.event_id = q.event_id),
                        'targets', q.targets, 'responded', q.responded, 'response_rate', q.response_rate,
                        'level_counts', q.level_counts, 'worst_level', q.worst_level, 'worst_color', q.worst_color)
                    FROM status_checker.request_summary q WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id),
        'levels', (SELECT jsonb_agg(jsonb_build_object('level', fl.level, 'label', jsonb_build_object('ja', fl.label_ja, 'en', fl.label_en),
                                                       'color', fl.color, 'icon', fl.icon) ORDER BY fl.level)
                   FROM status_checker.form f, status_checker._form_levels(f.definition) fl
                   WHERE f.tenant_id = r.tenant_id AND f.form_id = r.form_id),
        'no_answer', (SELECT jsonb_build_object('color', n.color, 'icon', n.icon) FROM status_checker._no_answer_style() n),
        'groups', coalesce((SELECT jsonb_agg(jsonb_build_object('id', g.group_id, 'path', g.group_path, 'depth', g.depth,
                                                                'targets', g.targets, 'responded', g.responded,
                                                                'worst_level', g.worst_level, 'color', g.color) ORDER BY g.group_path)
                            FROM status_checker.group_rollup g WHERE g.tenant_id = r.tenant_id AND g.request_id = r.request_id), '[]'),
        'sites', coalesce((SELECT jsonb_agg(jsonb_build_object('code', s.site_code, 'name', s.site_name, 'group', s.group_path,
                                                               'level', s.level, 'label', jsonb_build_object('ja', s.level_label, 'en', s.level_label_en),
                                                               'color', s.color, 'icon', s.icon, 'lat', s.lat, 'lon', s.lon,
                                                               'reported_at', s.last_reported_at, 'reports', s.report_count,
                                                               'late', s.late, 'shindo', t.asked_shindo::text,
                                                               'shindo_rank', status_checker.shindo_ordinal(t.asked_shindo))
                                             ORDER BY s.level DESC NULLS FIRST, t.asked_shindo DESC NULLS LAST, s.site_code)
                           FROM status_checker.site_status s
                           JOIN status_checker.request_target t ON t.tenant_id = s.tenant_id AND t.request_id = s.request_id
                                                               AND t.site_id = s.site_id
                           WHERE s.tenant_id = r.tenant_id AND s.request_id = r.request_id), '[]'),
        'timeline', coalesce((SELECT jsonb_agg(jsonb_build_object('minute', m.minute, 'responded', m.responded) ORDER BY m.minute)
                              FROM status_checker.response_timeline m WHERE m.tenant_id = r.tenant_id AND m.request_id = r.request_id), '[]'))
      INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.request_dashboard(bigint) IS
'Everything a dashboard shows for one request, as one document: the request and its counts, the form''s levels (labels, colours, icons), '
'the group roll-up, every site (status, position, intensity it was asked at; unanswered first, the most shaken first) and the response timeline';

-- The status matrix as CSV (UTF-8 with a byte order mark, so that Excel
-- opens Japanese correctly).  A cell that starts with = + - @ is prefixed
-- with ' so that a spreadsheet does not run it as a formula.
CREATE OR REPLACE FUNCTION status_checker.status_matrix_csv(request_id bigint)
    RETURNS text
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    result text;
BEGIN
    PERFORM status_checker._require_request(status_matrix_csv.request_id);
    WITH cells AS (
        SELECT s.site_code, ARRAY[s.site_code, s.site_name, coalesce(s.group_path, ''), coalesce(s.level::text, ''),
                     coalesce(s.level_label, ''), coalesce(s.level_label_en, ''), coalesce(t.asked_shindo::text, ''),
                     coalesce(to_char(s.last_reported_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS'), ''),
                     s.report_count::text, coalesce(s.lat::text, ''), coalesce(s.lon::text, ''),
                     coalesce(s.answers::text, '')] AS v
        FROM status_checker.site_status s
        JOIN status_checker.request_target t ON t.tenant_id = s.tenant_id AND t.request_id = s.request_id AND t.site_id = s.site_id
        WHERE s.request_id = status_matrix_csv.request_id
    )
    SELECT U&'\FEFF' || 'site_code,site_name,group,level,label_ja,label_en,asked_shindo,last_reported_at_jst,reports,lat,lon,answers' || E'\r\n'
           || coalesce(string_agg((SELECT string_agg('"' || replace(CASE WHEN left(x, 1) IN ('=', '+', '-', '@') THEN '''' || x ELSE x END,
                                                              '"', '""') || '"', ',' ORDER BY i)
                                   FROM unnest(c.v) WITH ORDINALITY u(x, i)), E'\r\n' ORDER BY c.site_code) || E'\r\n', '')
      INTO result
      FROM cells c;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.status_matrix_csv(bigint) IS
'The status matrix of a request as CSV (UTF-8 with BOM, CRLF, every cell quoted; formula-like cells prefixed with '')';

-- What the HTTP workers have done since the server started (shared memory;
-- NULLs when the library is not preloaded).  system_health() shows it.
CREATE OR REPLACE FUNCTION status_checker.http_counters(OUT requests bigint, OUT reports bigint, OUT refused bigint)
    RETURNS record
    LANGUAGE c VOLATILE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_http_counters';
COMMENT ON FUNCTION status_checker.http_counters() IS
'The HTTP workers since the server started, all together: requests answered, reports stored through them, requests refused (429) '
'for too many wrong links or passwords from one address';
GRANT EXECUTE ON FUNCTION status_checker.http_counters() TO status_checker_operator, pg_monitor;

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
