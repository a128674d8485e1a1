-- src/triggers/fire.sql — acting on trigger rules when an event changes.
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades (0.3.0 copies the rule's reminders to its
-- requests and enqueues the new targets' messages).

-- The title of a request a rule makes.
CREATE OR REPLACE FUNCTION status_checker._event_title(e status_checker.event) RETURNS text
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN left(concat_ws(' ',
        CASE WHEN e.status = 'training' THEN '【訓練】' END,
        CASE WHEN e.kind = 'tsunami' THEN '津波' WHEN e.max_shindo IS NOT NULL THEN status_checker.shindo_label(e.max_shindo, 'ja')
             WHEN e.max_level IS NOT NULL THEN e.extra ->> 'top_kind' END,
        coalesce(e.epicenter_name,
                 -- no hypocentre yet (震度速報): the most shaken area
                 (SELECT i.name FROM status_checker.event_product_intensity i
                  WHERE i.event_id = e.event_id AND i.product = e.best_product AND i.scope = 'area'
                  ORDER BY i.shindo DESC NULLS LAST, i.ord LIMIT 1),
                 e.source_event_id),
        CASE WHEN e.magnitude IS NOT NULL THEN 'M' || e.magnitude END,
        '(' || to_char(coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at)
                       AT TIME ZONE 'Asia/Tokyo', 'MM/DD HH24:MI') || ' JST)'), 200);
COMMENT ON FUNCTION status_checker._event_title(status_checker.event) IS
'Internal: a short title for a request made by a rule, e.g. 震度6強 石川県能登地方 M7.6 (01/01 16:10 JST), 大雨特別警報 島根県 (11/02 13:05 JST)';
GRANT EXECUTE ON FUNCTION status_checker._event_title(status_checker.event) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- Run every matching rule for one event (called by ingest_feed_document).
CREATE OR REPLACE FUNCTION status_checker._fire_rules(p_event bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    e status_checker.event;
    rules bigint[];
    n integer;
    -- the sites to ask (parallel arrays: tenant, rule, site, intensity, reason) ...
    a_tenant bigint[];
    a_rule bigint[];
    a_site bigint[];
    a_shindo status_checker.shindo[];
    a_reason text[];
    -- ... the open request of each rule for this event ...
    o_tenant bigint[];
    o_rule bigint[];
    o_request bigint[];
    -- ... and the request each site to ask goes to
    t_request bigint[];
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event FOR UPDATE;
    IF e.status = 'cancelled' THEN
        -- a withdrawn event withdraws what it asked
        UPDATE status_checker.request q
        SET state = 'cancelled', cancelled_at = pg_catalog.now(),
            cancel_reason = format('The %s event %s was withdrawn by its source (取消).', e.source, e.source_event_id)
        FROM status_checker.trigger_fire f
        WHERE f.event_id = p_event AND q.tenant_id = f.tenant_id AND q.request_id = f.request_id AND q.state <> 'cancelled';
    END IF;

    -- the rules that look at this event (for the trigger_decision view) ...
    INSERT INTO status_checker.trigger_evaluation AS v (tenant_id, rule_id, event_id, last_revision)
    SELECT r.tenant_id, r.rule_id, e.event_id, e.revision FROM status_checker.trigger_rule r
    WHERE status_checker._rule_watches(r.hazard, e.kind) AND e.source = ANY (r.sources)
    ON CONFLICT (tenant_id, rule_id, event_id)
    DO UPDATE SET evaluations = v.evaluations + 1, last_revision = excluded.last_revision, evaluated_at = pg_catalog.now();
    -- ... and those that may act on it
    SELECT array_agg(r.rule_id ORDER BY r.rule_id) INTO rules FROM status_checker.trigger_rule r
    WHERE status_checker._rule_watches(r.hazard, e.kind) AND e.source = ANY (r.sources) AND r.enabled
      AND e.status IN ('actual', 'training') AND (e.status = 'training') = r.drill
      -- a warning rule above the episode's highest level asks nobody: no decision to compute
      AND (r.min_level IS NULL OR r.min_level <= e.max_level);
    IF rules IS NULL THEN
        RETURN 0;
    END IF;

    PERFORM status_checker._lock_targets(t) FROM (SELECT DISTINCT r.tenant_id FROM status_checker.trigger_rule r
                                                  WHERE r.rule_id = ANY (rules) ORDER BY 1) x(t);
    -- the sites to ask, all rules at once, kept in arrays (0.10.1: no
    -- function of the extension makes a temporary object)
    -- (the arrays of one aggregation are aligned: every aggregate sees the
    -- rows in the same order; one sort below puts them in key order, where
    -- five ORDER BY clauses cost five sorts: 1 s of 1.4 for 100,000 sites)
    SELECT coalesce(array_agg(d.tenant_id), '{}'), coalesce(array_agg(d.rule_id), '{}'),
           coalesce(array_agg(d.site_id), '{}'), coalesce(array_agg(d.shindo), '{}'), coalesce(array_agg(d.reason), '{}')
      INTO a_tenant, a_rule, a_site, a_shindo, a_reason
      FROM (SELECT x.tenant_id, x.rule_id, x.site_id, x.shindo, x.reason
            FROM status_checker._decide_all(e.event_id, rules) x WHERE x.decision = 'ask'
            ORDER BY x.tenant_id, x.rule_id, x.site_id) d;

    -- one request per rule and event: created on the first telegram that asks anyone
    WITH needed AS (
        SELECT a.tenant_id, a.rule_id FROM (SELECT DISTINCT x.tenant_id, x.rule_id FROM unnest(a_tenant, a_rule) x(tenant_id, rule_id)) a
        WHERE NOT EXISTS (SELECT 1 FROM status_checker.trigger_fire f
                          WHERE f.tenant_id = a.tenant_id AND f.rule_id = a.rule_id AND f.event_id = e.event_id)
    ), made AS (
        INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec, event_id, rule_id,
                                            reminders, escalate_after)
        SELECT r.tenant_id, r.form_id, status_checker._event_title(e), coalesce(r.message, e.headline),
               pg_catalog.now() + r.deadline, r.drill, jsonb_build_object('rule', r.rule_id, 'event', e.event_id),
               e.event_id, r.rule_id, r.reminders, r.escalate_after
        FROM needed x JOIN status_checker.trigger_rule r ON r.tenant_id = x.tenant_id AND r.rule_id = x.rule_id
        ORDER BY r.tenant_id, r.rule_id
        RETURNING tenant_id, request_id, rule_id
    ), counters AS (
        INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
        SELECT m.tenant_id, m.request_id, g FROM made m CROSS JOIN generate_series(0, 63) g
    )
    INSERT INTO status_checker.trigger_fire (tenant_id, rule_id, event_id, request_id)
    SELECT m.tenant_id, m.rule_id, e.event_id, m.request_id FROM made m;

    -- later telegrams add newly affected sites to that request, while it is
    -- open (a request a person closed or cancelled is left so)
    -- (_decide_all never asks a site twice for an event: no conflict handling)
    SELECT coalesce(array_agg(f.tenant_id), '{}'), coalesce(array_agg(f.rule_id), '{}'), coalesce(array_agg(f.request_id), '{}')
      INTO o_tenant, o_rule, o_request
      FROM (SELECT x.tenant_id, x.rule_id, x.request_id
            FROM status_checker.trigger_fire x
            JOIN status_checker.request q ON q.tenant_id = x.tenant_id AND q.request_id = x.request_id
            WHERE x.event_id = e.event_id AND q.state = 'open'
            ORDER BY x.tenant_id, x.rule_id) f;
    -- the rule's open request of each site to ask: a hash join of the two
    -- arrays (a rule has one request per event)
    SELECT coalesce(array_agg(j.request_id), '{}'), coalesce(array_agg(j.tenant_id), '{}'), coalesce(array_agg(j.site_id), '{}'),
           coalesce(array_agg(j.shindo), '{}'), coalesce(array_agg(j.reason), '{}')
      INTO t_request, a_tenant, a_site, a_shindo, a_reason
      FROM (SELECT o.request_id, a.tenant_id, a.site_id, a.shindo, a.reason
            FROM unnest(a_tenant, a_rule, a_site, a_shindo, a_reason) a(tenant_id, rule_id, site_id, shindo, reason)
            JOIN unnest(o_tenant, o_rule, o_request) o(tenant_id, rule_id, request_id)
              ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id
            ORDER BY a.tenant_id, o.request_id, a.site_id) j;
    -- in key order: index insertions stay on hot pages
    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id, asked_shindo, asked_reason)
    SELECT a.tenant_id, a.request_id, a.site_id, a.shindo, a.reason
    FROM unnest(a_tenant, t_request, a_site, a_shindo, a_reason) a(tenant_id, request_id, site_id, shindo, reason);
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE status_checker.request q SET targets = q.targets + c.n
    FROM (SELECT a.tenant_id, a.request_id, count(*) AS n
          FROM unnest(a_tenant, t_request) a(tenant_id, request_id) GROUP BY 1, 2) c
    WHERE q.tenant_id = c.tenant_id AND q.request_id = c.request_id;
    -- the new targets' contacts get the request, in this transaction (only
    -- for tenants that have someone to send to: the others cost nothing)
    PERFORM status_checker._enqueue_site_messages(x.tenant_id, x.request_id, 'request', 0, x.sites, true)
    FROM (SELECT a.tenant_id, a.request_id, array_agg(a.site_id ORDER BY a.site_id) AS sites
          FROM unnest(a_tenant, t_request, a_site) a(tenant_id, request_id, site_id)
          WHERE a.tenant_id IN (SELECT t.tenant_id FROM (SELECT DISTINCT u.tenant_id FROM unnest(o_tenant) u(tenant_id)) t
                                WHERE status_checker._tenant_delivers(t.tenant_id))
          GROUP BY 1, 2 ORDER BY 1, 2) x;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._fire_rules(bigint) IS
'Internal: run the trigger rules for one event: create the one request per rule and event, add newly affected sites, '
'cancel requests of a cancelled event; returns the number of sites added';
