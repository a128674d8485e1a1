-- src/dispatch/reminders.sql — reminders, escalation, and the periodic jobs.
--
-- A request (or the rule that makes it) can carry reminder intervals and an
-- escalation delay.  run_reminders(), run every minute by pg_cron
-- (schedule_jobs), enqueues the due reminder to every site that has not
-- answered, and once the escalation delay has passed, one message to each
-- manager of those sites' groups (or, where a group has none up to its
-- root, the tenant's admins) listing the sites that have not answered.
-- The outbox's natural key makes each of these happen once.

CREATE TABLE status_checker.site_group_manager (
    tenant_id   bigint NOT NULL,
    group_id    bigint NOT NULL,
    user_id     bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES status_checker.site_group (tenant_id, group_id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.site_group_manager IS
'Managers of a site group: escalations about the group''s sites (and its subgroups'') reach them';
ALTER TABLE status_checker.site_group_manager ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.site_group_manager FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.site_group_manager
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.site_group_manager TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.health_sample (
    taken_at   timestamptz PRIMARY KEY DEFAULT pg_catalog.clock_timestamp(),
    sample     jsonb NOT NULL
);
COMMENT ON TABLE status_checker.health_sample IS
'What health_probe() saw each time it ran (every minute with schedule_jobs): dispatcher, outbox backlog, feeds';

CREATE FUNCTION status_checker.add_group_manager(tenant_id bigint, group_id bigint, login text) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('add_group_manager', ARRAY['tenant_id', 'group_id', 'login'],
        ARRAY[add_group_manager.tenant_id::text, add_group_manager.group_id::text, add_group_manager.login]);
    PERFORM status_checker._require_tenant(add_group_manager.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.site_group g
                   WHERE g.tenant_id = add_group_manager.tenant_id AND g.group_id = add_group_manager.group_id) THEN
        RAISE EXCEPTION 'site group % does not exist in tenant %', add_group_manager.group_id, add_group_manager.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT * INTO u FROM status_checker.app_user a
    WHERE a.tenant_id = add_group_manager.tenant_id AND a.login = add_group_manager.login;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % does not exist in tenant %', quote_literal(add_group_manager.login), add_group_manager.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF u.role NOT IN ('admin', 'manager') THEN
        RAISE EXCEPTION 'user % is a %, not a manager or admin', quote_literal(u.login), u.role
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO status_checker.site_group_manager (tenant_id, group_id, user_id)
    VALUES (u.tenant_id, add_group_manager.group_id, u.user_id)
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION status_checker.add_group_manager(bigint, bigint, text) IS
'Make a manager (or admin) user responsible for a site group: escalations about its sites and subgroups'' sites reach them';
ALTER FUNCTION status_checker.add_group_manager(bigint, bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.add_group_manager(bigint, bigint, text) TO status_checker_admin;

CREATE FUNCTION status_checker._reminder_problem(p_reminders interval[], p_escalate_after interval) RETURNS text
    LANGUAGE sql IMMUTABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE
        WHEN p_reminders IS NULL THEN 'reminders is NULL (use an empty array for none)'
        WHEN cardinality(p_reminders) > 20 THEN 'at most 20 reminders'
        WHEN array_position(p_reminders, NULL) IS NOT NULL THEN 'a reminder interval is NULL'
        WHEN EXISTS (SELECT 1 FROM unnest(p_reminders) WITH ORDINALITY a(iv, i)
                     WHERE a.iv < interval '1 minute'
                        OR a.iv <= coalesce(p_reminders[a.i - 1], interval '0')) THEN
            'reminder intervals are at least 1 minute and increase'
        WHEN p_escalate_after < interval '1 minute' THEN 'escalate_after is at least 1 minute'
    END;
COMMENT ON FUNCTION status_checker._reminder_problem(interval[], interval) IS
'Internal: what is wrong with a reminder schedule (NULL when nothing)';

CREATE FUNCTION status_checker.set_request_reminders(request_id bigint, reminders interval[], escalate_after interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    prob text := status_checker._reminder_problem(set_request_reminders.reminders, set_request_reminders.escalate_after);
BEGIN
    PERFORM status_checker._no_nulls('set_request_reminders', ARRAY['request_id'], ARRAY[set_request_reminders.request_id::text]);
    r := status_checker._require_request(set_request_reminders.request_id, true);
    IF prob IS NOT NULL THEN
        RAISE EXCEPTION 'invalid reminder schedule: %', prob USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Intervals count from the request''s creation, e.g. ARRAY[''30 minutes'', ''2 hours'']::interval[].';
    END IF;
    UPDATE status_checker.request q
    SET reminders = set_request_reminders.reminders, escalate_after = set_request_reminders.escalate_after
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) IS
'Remind the sites of a request that have not answered, at these intervals after its creation, and escalate to their group''s managers after escalate_after';
ALTER FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_request_reminders(bigint, interval[], interval) TO status_checker_manager;

CREATE FUNCTION status_checker.set_rule_reminders(rule_id bigint, reminders interval[], escalate_after interval DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    prob text := status_checker._reminder_problem(set_rule_reminders.reminders, set_rule_reminders.escalate_after);
BEGIN
    PERFORM status_checker._no_nulls('set_rule_reminders', ARRAY['rule_id'], ARRAY[set_rule_reminders.rule_id::text]);
    IF prob IS NOT NULL THEN
        RAISE EXCEPTION 'invalid reminder schedule: %', prob USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.trigger_rule r
    SET reminders = set_rule_reminders.reminders, escalate_after = set_rule_reminders.escalate_after
    WHERE r.rule_id = set_rule_reminders.rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', set_rule_reminders.rule_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) IS
'The reminder schedule and escalation delay of the requests a trigger rule creates from now on';
ALTER FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_rule_reminders(bigint, interval[], interval) TO status_checker_admin;

CREATE FUNCTION status_checker.run_reminders() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    q record;
    n bigint := 0;
    k integer;
    sites bigint[];
BEGIN
    FOR q IN SELECT r.tenant_id, r.request_id, r.reminders, r.escalate_after, r.created_at
             FROM status_checker.request r
             WHERE r.state = 'open' AND r.deadline > pg_catalog.now()
               AND (cardinality(r.reminders) > 0 OR r.escalate_after IS NOT NULL)
             ORDER BY r.tenant_id, r.request_id LOOP
        -- the latest reminder that is due (earlier ones missed are not sent late)
        SELECT max(a.i) INTO k FROM unnest(q.reminders) WITH ORDINALITY a(iv, i)
        WHERE q.created_at + a.iv <= pg_catalog.now();
        IF k IS NOT NULL THEN
            -- sites that have not answered, were asked at least that long ago,
            -- and have not had this reminder (or a later one)
            SELECT array_agg(t.site_id ORDER BY t.site_id) INTO sites
            FROM status_checker.request_target t
            WHERE t.tenant_id = q.tenant_id AND t.request_id = q.request_id AND t.report_count = 0
              AND NOT EXISTS (SELECT 1 FROM status_checker.outbox o
                              WHERE o.tenant_id = t.tenant_id AND o.request_id = t.request_id AND o.site_id = t.site_id
                                AND o.purpose = 'reminder' AND o.seq >= k)
              AND EXISTS (SELECT 1 FROM status_checker.outbox o
                          WHERE o.tenant_id = t.tenant_id AND o.request_id = t.request_id AND o.site_id = t.site_id
                            AND o.purpose = 'request' AND o.enqueued_at + q.reminders[1] <= pg_catalog.now());
            IF sites IS NOT NULL THEN
                n := n + status_checker._enqueue_site_messages(q.tenant_id, q.request_id, 'reminder', k, sites);
            END IF;
        END IF;
        IF q.escalate_after IS NOT NULL AND q.created_at + q.escalate_after <= pg_catalog.now() THEN
            n := n + status_checker._enqueue_escalation(q.tenant_id, q.request_id);
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.run_reminders() IS
'Enqueue the reminders and escalations that are due (run every minute by the pg_cron job status_checker-reminders); returns the number of messages enqueued';
GRANT EXECUTE ON FUNCTION status_checker.run_reminders() TO status_checker_api, status_checker_operator;

-- _enqueue_escalation: src/dispatch/enqueue.sql.

CREATE FUNCTION status_checker.purge_outbox(older_than interval DEFAULT '90 days') RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n bigint;
BEGIN
    IF purge_outbox.older_than IS NULL OR purge_outbox.older_than < interval '1 day' THEN
        RAISE EXCEPTION 'purge_outbox keeps at least 1 day, not %', coalesce(purge_outbox.older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH d AS (
        DELETE FROM status_checker.outbox o
        WHERE o.state IN ('sent', 'dead', 'cancelled')
          AND coalesce(o.sent_at, o.enqueued_at) < pg_catalog.now() - purge_outbox.older_than
        RETURNING o.tenant_id, o.message_id
    ), a AS (
        DELETE FROM status_checker.delivery_attempt x USING d
        WHERE x.tenant_id = d.tenant_id AND x.message_id = d.message_id
    )
    SELECT count(*) INTO n FROM d;
    DELETE FROM status_checker.health_sample h WHERE h.taken_at < pg_catalog.now() - purge_outbox.older_than;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.purge_outbox(interval) IS
'Retention: delete settled messages (sent, dead, cancelled), their delivery log and health samples older than the given age (default 90 days); returns the number of messages deleted';
GRANT EXECUTE ON FUNCTION status_checker.purge_outbox(interval) TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.health_probe() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d record;
    s jsonb;
BEGIN
    d := status_checker.dispatcher_status();
    s := jsonb_build_object(
        'dispatcher', jsonb_build_object(
            'running', d.running, 'pid', d.pid,
            'heartbeat_age_s', round(extract(epoch FROM pg_catalog.clock_timestamp() - d.heartbeat)::numeric, 3),
            'in_flight', d.in_flight, 'sent', d.sent, 'retried', d.retried, 'dead', d.dead),
        'outbox', (SELECT jsonb_build_object(
            'queued', count(*) FILTER (WHERE o.state = 'queued'),
            'retrying', count(*) FILTER (WHERE o.state = 'retrying'),
            'sending', count(*) FILTER (WHERE o.state = 'sending'),
            'oldest_waiting_s', round(extract(epoch FROM pg_catalog.now() - min(o.enqueued_at)
                                      FILTER (WHERE o.state IN ('queued', 'retrying', 'sending')))::numeric, 3))
            FROM status_checker.outbox o WHERE o.state IN ('queued', 'retrying', 'sending')),
        'dead_last_hour', (SELECT count(*) FROM status_checker.delivery_attempt a
                           WHERE a.outcome = 'dead' AND a.at > pg_catalog.now() - interval '1 hour'),
        'feeds', (SELECT jsonb_build_object('total', count(*), 'failing', count(*) FILTER (WHERE f.consecutive_errors > 0))
                  FROM status_checker.feed f));
    INSERT INTO status_checker.health_sample (sample) VALUES (s);
    RETURN s;
END
$$;
COMMENT ON FUNCTION status_checker.health_probe() IS
'Health probe (every minute with schedule_jobs): the dispatcher''s heartbeat and counters, the outbox backlog and its oldest message, '
'dead messages of the last hour, failing feeds; stored in health_sample and returned';
GRANT EXECUTE ON FUNCTION status_checker.health_probe() TO status_checker_api, status_checker_operator;

-- schedule_jobs() is in src/common/jobs.sql: it registers the jobs of every domain.
