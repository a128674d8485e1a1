-- status_checker 1.0.0 → 1.1.0, last: what the install script's
-- finish.sql and privileges.sql give every object, for the objects this
-- update created (those files are policies over the whole schema and run
-- only at install; an update grants what it creates itself).

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'status_checker._rule_watches(text, text)',
        'status_checker._level_in_name(text)',
        'status_checker._classify_warnings(jsonb)',
        'status_checker._ingest_warnings(jsonb)',
        'status_checker._recompute_episode(bigint, timestamptz)',
        'status_checker._store_product(bigint, jsonb, integer, jsonb)',
        'status_checker._check_rule(bigint, text, bigint)',
        'status_checker._rule_gate(status_checker.trigger_rule, status_checker.event)',
        'status_checker._decide_warning(status_checker.event, bigint[])',
        'status_checker._feed_product_wanted(text)',
        'status_checker.create_trigger_rule(bigint, text, bigint, text, integer, jsonb, interval, boolean, text)']::regprocedure[]
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO status_checker_api', f);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON status_checker.warning_kind, status_checker.event_warning,
    status_checker.hazard_warning TO status_checker_api;
-- pg_dump keeps the warnings and the kinds an operator added (the built-in
-- kinds come with CREATE EXTENSION)
SELECT pg_catalog.pg_extension_config_dump('status_checker.event_warning', '');
SELECT pg_catalog.pg_extension_config_dump('status_checker.warning_kind', 'WHERE NOT builtin');
