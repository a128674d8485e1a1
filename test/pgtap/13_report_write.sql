-- The report's writes (src/reports/store.c): submit_report writes the
-- status row, the report row and the counter slot through the table access
-- method, not with a planned statement.  What a statement gave for free
-- must still hold: every column, the tables' constraints, the report
-- table's triggers (BEFORE and AFTER, someone else's too), and, when
-- someone gives request_target a trigger of their own, that trigger fires
-- (the statement writes then).
BEGIN;
\ir fixtures.psql
SELECT plan(20);
-- counters written at each statement's end, so that the tables can be altered below
SET CONSTRAINTS status_checker.report_counters IMMEDIATE;

CREATE TEMP TABLE tok AS SELECT * FROM issue_tokens(:ra);
SELECT token AS t1 FROM tok WHERE site_code = 'A01' \gset
SELECT token AS t2 FROM tok WHERE site_code = 'A02' \gset
SELECT token AS t3 FROM tok WHERE site_code = 'A03' \gset

-- the ordinary path: every column as the statement wrote it
SELECT submit_report(:'t1', '{"building": "partial", "detail": "ひび", "injured": 0, "operation": "limited"}') AS r1 \gset
SELECT results_eq(
    format($$SELECT level, previous_level, color IS NOT NULL, late, via, submitted_by, submitted_at = now(), answers->>'detail'
             FROM status_checker.report WHERE report_id = %s$$, :r1),
    $$VALUES (1, NULL::int, true, false, 'link', NULL::text, true, 'ひび')$$,
    'the report row holds the level, no previous level, colour, channel and time');
SELECT results_eq(
    format($$SELECT level, prev_level, latest_report_id, report_count, first_reported_at = now(), last_reported_at = now()
             FROM status_checker.request_target WHERE request_id = %s AND site_id = (SELECT site_id FROM site WHERE code = 'A01')$$, :ra),
    format('VALUES (1, NULL::int, %s::bigint, 1, true, true)', :r1),
    'the status row points at the report and counts it');
SELECT is((SELECT sum(responded)::int FROM request_counter WHERE request_id = :ra), 1,
          'the counter slot counts the first answer');

-- an update: the level it replaced, in both rows
SELECT submit_report(:'t1', :'ok_answers') AS r2 \gset
SELECT is((SELECT previous_level FROM report WHERE report_id = :r2), 1, 'the second report keeps the level it replaced');
SELECT results_eq(
    format($$SELECT level, prev_level, report_count, latest_report_id FROM request_target
             WHERE request_id = %s AND site_id = (SELECT site_id FROM site WHERE code = 'A01')$$, :ra),
    format('VALUES (0, 1, 2, %s::bigint)', :r2),
    'the status row moves to the new level');
SELECT is((SELECT level_counts FROM request_summary WHERE request_id = :ra),
          '{"0": 1, "1": 0, "2": 0, "none": 2}'::jsonb, 'the counters moved from level 1 to level 0');

-- a late report
UPDATE request SET deadline = now() - interval '1 minute' WHERE request_id = :ra;
SELECT submit_report(:'t2', :'ok_answers') AS r3 \gset
SELECT is((SELECT late FROM report WHERE report_id = :r3), true, 'a report after the deadline is marked late');
UPDATE request SET deadline = now() + interval '6 hours' WHERE request_id = :ra;

-- a read-only transaction (as on a standby): 25006, as for an UPDATE, and nothing stored
SAVEPOINT ro;
SET LOCAL transaction_read_only = on;
SELECT pg_temp.row_counts() AS before \gset
SELECT throws_ok(format('SELECT submit_report(%L, %L)', :'t3', :'ok_answers'), '25006', NULL,
                 'a report in a read-only transaction is refused with 25006');
SELECT is(pg_temp.row_counts(), :'before'::jsonb, '... and stores nothing');
ROLLBACK TO SAVEPOINT ro;

-- constraints someone adds are enforced, and a refused report changes nothing
ALTER TABLE report ADD CONSTRAINT test_no_severe CHECK (level < 2);
SELECT pg_temp.row_counts() AS before \gset
SELECT throws_ok(
    format($$SELECT submit_report(%L, '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}')$$, :'t3'),
    '23514', NULL, 'a CHECK constraint on report is enforced');
SELECT is(pg_temp.row_counts(), :'before'::jsonb, '... and the refused report left no row behind');
SELECT is((SELECT level FROM request_target WHERE request_id = :ra AND site_id = (SELECT site_id FROM site WHERE code = 'A03')),
          NULL, '... nor a status');
ALTER TABLE report DROP CONSTRAINT test_no_severe;
ALTER TABLE request_target ADD CONSTRAINT test_three CHECK (report_count < 3);
SELECT throws_ok(
    format($$SELECT submit_report(%L, %L)$$, :'t1', :'ok_answers'),
    '23514', NULL, 'a CHECK constraint on request_target is enforced');
ALTER TABLE request_target DROP CONSTRAINT test_three;

-- the report table's row triggers fire, BEFORE and AFTER
CREATE TABLE pg_temp.fired (what text, report_id bigint);
GRANT ALL ON pg_temp.fired TO PUBLIC;
CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.fired VALUES (TG_TABLE_NAME || ' ' || TG_WHEN, NEW.report_id);
    IF TG_WHEN = 'BEFORE' THEN NEW.icon := 'from-trigger'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_before BEFORE INSERT ON report FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
CREATE TRIGGER test_after AFTER INSERT ON report FOR EACH ROW EXECUTE FUNCTION pg_temp.note();
SELECT submit_report(:'t2', :'ok_answers') AS r4 \gset
SELECT results_eq($$SELECT what FROM pg_temp.fired ORDER BY what$$,
                  $$VALUES ('report AFTER'), ('report BEFORE')$$, 'a BEFORE and an AFTER row trigger on report fire');
SELECT is((SELECT icon FROM report WHERE report_id = :r4), 'from-trigger', 'the BEFORE trigger''s change is stored');
DROP TRIGGER test_before ON report;
DROP TRIGGER test_after ON report;
TRUNCATE pg_temp.fired;

-- a trigger of someone's own on request_target: the statement writes, and it fires
-- (submit_report_for always writes with the statement: it runs as
-- status_checker_api, under row-level security)
CREATE FUNCTION pg_temp.note_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.fired VALUES ('request_target ' || TG_OP, NEW.latest_report_id);
    RETURN NEW;
END $$;
CREATE TRIGGER test_target AFTER UPDATE ON request_target FOR EACH ROW EXECUTE FUNCTION pg_temp.note_target();
SELECT submit_report(:'t3', '{"building": "severe", "detail": "倒壊", "injured": 1, "operation": "stopped"}') AS r5 \gset
SELECT results_eq($$SELECT what, report_id FROM pg_temp.fired$$,
                  format($$VALUES ('request_target UPDATE', %s::bigint)$$, :r5),
                  'a trigger on request_target fires once, with the new report');
SELECT is((SELECT level_counts FROM request_summary WHERE request_id = :ra),
          '{"0": 2, "1": 0, "2": 1, "none": 0}'::jsonb, '... and the counters are right on that path too');
SELECT submit_report_for(:ra, 'A03', :'ok_answers') AS r6 \gset
SELECT is((SELECT via FROM report WHERE report_id = :r6), 'user', 'a report on the site''s behalf works on that path');
DROP TRIGGER test_target ON request_target;
SELECT is((SELECT level_counts FROM request_summary WHERE request_id = :ra),
          '{"0": 3, "1": 0, "2": 0, "none": 0}'::jsonb, 'A03 moved from 2 to 0');

SELECT is((SELECT count(*)::int FROM report WHERE request_id = :ra), 6, 'six reports kept');

SELECT * FROM finish();
ROLLBACK;
