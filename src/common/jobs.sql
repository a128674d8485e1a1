-- src/common/jobs.sql — the extension's periodic jobs, registered with
-- pg_cron.  Written with CREATE OR REPLACE: each version that adds a job
-- redefines it, in its install script and in its upgrade script.

CREATE OR REPLACE FUNCTION status_checker.schedule_jobs() RETURNS SETOF text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
GRANT EXECUTE ON FUNCTION status_checker.schedule_jobs() TO status_checker_api, status_checker_operator;
