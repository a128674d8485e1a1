-- system_health(): the checks a monitoring system polls (docs/operations.md,
-- "Monitoring").  This database has no workers (the extension is not
-- preloaded here), no standby and no WAL archive: each must show as such,
-- and each check must turn when what it watches goes wrong.  The workers,
-- replication and a standby's view are checked on real nodes in
-- test/tap/002_failover.pl.
BEGIN;
\ir fixtures.psql
SELECT plan(18);

CREATE TEMP TABLE h0 AS SELECT * FROM system_health();
SELECT is((SELECT check_name FROM system_health() LIMIT 1), 'overall', 'the first row is the overall verdict');
SELECT is((SELECT count(*) FROM h0 WHERE status NOT IN ('ok', 'warning', 'critical')), 0::bigint,
    'every status is ok, warning or critical');
SELECT is((SELECT status FROM h0 WHERE check_name = 'overall'),
          (SELECT CASE WHEN bool_or(status = 'critical') THEN 'critical' WHEN bool_or(status = 'warning') THEN 'warning' ELSE 'ok' END
           FROM h0 WHERE check_name <> 'overall'),
    'overall is the worst of the checks');
SELECT is((SELECT value FROM h0 WHERE check_name = 'role'), 'primary', 'role: primary');
SELECT results_eq($$SELECT status, value FROM h0 WHERE check_name = 'workers'$$,
    $$VALUES ('critical', 'not loaded')$$, 'workers: critical when the extension is not preloaded');
SELECT is((SELECT status FROM h0 WHERE check_name = 'replication'), 'warning', 'replication: warning without a standby');
SELECT matches((SELECT detail FROM h0 WHERE check_name = 'replication'), 'no standby', '... saying so');
SELECT is((SELECT status FROM h0 WHERE check_name = 'wal_archive'), 'warning', 'WAL archive: warning with archive_mode off');
SELECT results_eq($$SELECT status, value FROM h0 WHERE check_name = 'periodic_jobs'$$,
    $$VALUES ('warning', 'never ran')$$, 'periodic jobs: warning when the probe never ran, saying so');
SELECT is((SELECT count(*) FROM h0 WHERE value IS NULL OR value ~ '  '), 0::bigint, 'no value is empty or has a hole');

-- the health probe ran a minute ago: ok
INSERT INTO health_sample (taken_at, sample) VALUES (clock_timestamp() - interval '1 minute', '{}');
SELECT is((SELECT status FROM system_health() WHERE check_name = 'periodic_jobs'), 'ok', 'periodic jobs: ok after a recent probe');

-- the outbox: a due message waiting for 10 minutes, then 20
SELECT is((SELECT status FROM system_health() WHERE check_name = 'outbox_backlog'), 'ok', 'outbox backlog: ok');
SELECT add_channel(:ta, 'webhook', 'w', '{"url": "https://hooks.example.com/x", "secret": "0123456789abcdef"}') AS ch \gset
SELECT create_request(:ta, :fa, 'backlog', now() + interval '1 hour') AS rq \gset
UPDATE outbox SET enqueued_at = now() - interval '10 minutes' WHERE request_id = :rq;
SELECT is((SELECT status FROM system_health() WHERE check_name = 'outbox_backlog'), 'warning',
    'outbox backlog: warning when a due message waits over 5 minutes');
UPDATE outbox SET enqueued_at = now() - interval '20 minutes' WHERE request_id = :rq;
SELECT is((SELECT status FROM system_health() WHERE check_name = 'outbox_backlog'), 'critical',
    '... critical over 15 minutes');

-- a feed that fails, then one not polled for an hour
SELECT add_feed('jma_atom', 'http://127.0.0.1:9/feed.xml', '1 minute') AS feed \gset
UPDATE feed SET last_success_at = now() - interval '30 seconds', consecutive_errors = 2, last_error = 'connection refused'
WHERE feed_id = :feed;
SELECT results_eq(format($$SELECT status FROM system_health() WHERE check_name = 'feed %s'$$, :feed),
    $$VALUES ('warning')$$, 'a failing feed: warning');
UPDATE feed SET last_success_at = now() - interval '1 hour' WHERE feed_id = :feed;
SELECT results_eq(format($$SELECT status FROM system_health() WHERE check_name = 'feed %s'$$, :feed),
    $$VALUES ('critical')$$, 'a feed without success for an hour: critical');

-- who may call it: pg_monitor and the operator, not a tenant role
CREATE ROLE sc_health_watcher LOGIN IN ROLE pg_monitor;
SET LOCAL ROLE sc_health_watcher;
SELECT lives_ok('SELECT * FROM status_checker.system_health()', 'a member of pg_monitor may call it');
RESET ROLE;
SET LOCAL ROLE status_checker_viewer;
SELECT throws_ok('SELECT * FROM status_checker.system_health()', '42501', NULL, 'a tenant viewer may not: 42501');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
