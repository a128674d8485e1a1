-- Counters: a transaction's first report counts itself in its own
-- statement; later reports of the same transaction are noted and written
-- once per request at commit (deferred trigger), yet the transaction sees
-- them; savepoints roll their share back.
BEGIN;
\ir fixtures.psql
SELECT plan(9);

SELECT submit_report_for(:ra, 'A01', :'ok_answers') AS r \gset
SELECT is((SELECT responded FROM status_checker.request_summary WHERE request_id = :ra), 1,
          'the transaction sees its own report in request_summary');
SELECT is((SELECT sum(responded)::int FROM status_checker.request_counter WHERE request_id = :ra), 1,
          'the first report of a transaction counts itself at once');

SAVEPOINT s1;
SELECT submit_report_for(:ra, 'A02', '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}') AS r \gset
SELECT is((SELECT level_counts FROM status_checker.request_summary WHERE request_id = :ra),
          '{"0": 1, "1": 0, "2": 1, "none": 1}'::jsonb, 'a report in a savepoint counts');
ROLLBACK TO SAVEPOINT s1;
SELECT is((SELECT level_counts FROM status_checker.request_summary WHERE request_id = :ra),
          '{"0": 1, "1": 0, "2": 0, "none": 2}'::jsonb, 'rolling back the savepoint takes its report out again');

SAVEPOINT s2;
SELECT submit_report_for(:ra, 'A01', '{"building": "partial", "detail": "ひび", "injured": 0, "operation": "limited"}') AS r \gset
RELEASE SAVEPOINT s2;
SELECT is((SELECT level_counts FROM status_checker.request_summary WHERE request_id = :ra),
          '{"0": 0, "1": 1, "2": 0, "none": 2}'::jsonb, 'a released savepoint''s change moves A01 from level 0 to 1');
SELECT is((SELECT sum(counts[2])::int FROM status_checker.request_counter WHERE request_id = :ra), 0,
          'a later report of the transaction waits for commit to be written');

-- write them as a commit would (fire the deferred trigger now)
SET CONSTRAINTS status_checker.report_counters IMMEDIATE;
SELECT submit_report_for(:ra, 'A03', :'ok_answers') AS r \gset
SELECT is((SELECT sum(responded)::int FROM status_checker.request_counter WHERE request_id = :ra), 2,
          'with the trigger immediate, the counter rows hold the changes');
SELECT is((SELECT level_counts FROM status_checker.request_summary WHERE request_id = :ra),
          '{"0": 1, "1": 1, "2": 0, "none": 1}'::jsonb, 'and nothing is counted twice');
SET CONSTRAINTS status_checker.report_counters DEFERRED;

SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgname = 'report_counters' AND tgenabled = 'A'), 1,
          'report_counters fires whatever the replication role');

SELECT * FROM finish();
ROLLBACK;
