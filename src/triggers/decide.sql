-- src/triggers/decide.sql — the one place that decides, for an event and
-- its rules, which sites are asked and why (earthquakes and tsunamis:
-- _decide_all; warning episodes: _decide_warning).
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades.

-- Whether an event is for a rule at all, and if not why (the first reason
-- of every decision table in docs/feeds.md).
CREATE OR REPLACE FUNCTION status_checker._rule_gate(r status_checker.trigger_rule, e status_checker.event) RETURNS text
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN CASE
               WHEN NOT r.enabled THEN 'rule disabled'
               WHEN NOT status_checker._rule_watches(r.hazard, e.kind) THEN format('event is a %s; the rule watches %s', e.kind, r.hazard)
               WHEN NOT e.source = ANY (r.sources) THEN format('event from %s; the rule watches %s', e.source, array_to_string(r.sources, ', '))
               WHEN e.status = 'cancelled' THEN 'event cancelled (取消)'
               WHEN e.status = 'test' THEN 'test telegram (試験): never triggers'
               WHEN e.status = 'training' AND NOT r.drill THEN 'training telegram (訓練): only drill rules fire'
               WHEN e.status = 'actual' AND r.drill THEN 'drill rule: fires on training telegrams (訓練) only'
           END;
COMMENT ON FUNCTION status_checker._rule_gate(status_checker.trigger_rule, status_checker.event) IS
'Internal: why an event is not for a rule (disabled, other hazard or source, cancelled, test, training or drill), or NULL';
GRANT EXECUTE ON FUNCTION status_checker._rule_gate(status_checker.trigger_rule, status_checker.event) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- For an event and a set of rules: every site of each rule's tenant with
-- its intensity, whether it is asked, and why.  decision: ask (would be
-- asked now), asked (already asked for this event), skip.  One statement
-- for all rules, so that an event that concerns a hundred tenants costs one
-- pass over their sites (docs/benchmarks.md); _decide, backtest_rule and
-- the trigger_decision view are this function for one rule.
CREATE OR REPLACE FUNCTION status_checker._decide_all(p_event bigint, p_rules bigint[])
    RETURNS TABLE (rule_id bigint, tenant_id bigint, site_id bigint, site_code text,
                   shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    -- the plan's cost estimate invites JIT compilation, which costs more
    -- than it saves: 0.23 s of start-up for one event asking 100,000 sites
    SET jit = off AS $$
#variable_conflict use_column
DECLARE
    e status_checker.event;
    observed jsonb;     -- code → [shindo, incomplete, name] at the level that counts
    warned jsonb;       -- 津波予報区 code → [kind code, kind name, area name]
    e_time timestamptz;
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % does not exist', coalesce(p_event::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    e_time := coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at);
    -- a jsonb map built once: each site then costs one probe, not a join
    -- whose estimates (fresh rows, no statistics yet) mislead the planner
    SELECT jsonb_object_agg(i.code, jsonb_build_array(i.shindo::text, i.incomplete, i.name))
    INTO observed
    FROM (SELECT x.code, status_checker.max(x.shindo) AS shindo, bool_or(x.incomplete) AS incomplete, min(x.name) AS name
          FROM status_checker.event_product_intensity x
          WHERE x.event_id = e.event_id AND x.product = e.best_product AND x.code IS NOT NULL
            AND x.scope = CASE WHEN e.detail_level >= 2 THEN 'city' ELSE 'area' END
          GROUP BY x.code) i;
    IF e.kind NOT IN ('earthquake', 'tsunami', 'eew') THEN
        RETURN QUERY SELECT * FROM status_checker._decide_warning(e, p_rules);
        RETURN;
    END IF;
    IF e.kind = 'tsunami' THEN
        SELECT jsonb_object_agg(t.code, jsonb_build_array(t.kind_code, t.kind_name, t.name)) INTO warned
        FROM (SELECT DISTINCT ON (x.code) x.code, x.kind_code, x.kind_name, x.name
              FROM status_checker.event_tsunami x WHERE x.event_id = e.event_id AND x.code IS NOT NULL
              ORDER BY x.code, x.kind_code IN ('50', '60') OR x.kind_code LIKE '7%', x.kind_code DESC) t;
    END IF;

    RETURN QUERY
    WITH rules AS (
        SELECT r.*, r.target = '{"all": true}'::jsonb AS all_sites,
               status_checker._rule_gate(r, e) AS gate
        FROM status_checker.trigger_rule r WHERE r.rule_id = ANY (p_rules)
    ), tgt AS (
        SELECT r.rule_id, t.site_id FROM rules r
        CROSS JOIN LATERAL status_checker._resolve_targets(r.tenant_id, r.target) t
        WHERE NOT r.all_sites
    ), obs AS (
        -- the event's observed intensity at each site of the tenants concerned
        SELECT s.tenant_id, s.site_id, s.code, s.municipality_code, s.lat, s.lon, s.attributes,
               m.name AS muni_name, a.name AS area_name,
               h.hit ->> 0 AS hit_shindo, coalesce((h.hit ->> 1)::boolean, false) AS hit_incomplete, h.hit ->> 2 AS hit_name
        FROM status_checker.site s
        LEFT JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
        LEFT JOIN status_checker.jma_area a ON a.code = m.area_code
        CROSS JOIN LATERAL (SELECT CASE WHEN e.detail_level >= 2 THEN observed -> s.municipality_code
                                        ELSE observed -> m.area_code END AS hit) h
        WHERE s.tenant_id IN (SELECT DISTINCT r.tenant_id FROM rules r)
    ), earlier AS (
        -- aftershocks: the hardest each rule asked each site within its window
        SELECT f.rule_id, t.site_id, status_checker.max(t.asked_shindo) AS shindo, min(f.event_id) AS event_id
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id
        JOIN status_checker.event pe ON pe.event_id = f.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
        WHERE r.repeat_within IS NOT NULL AND f.event_id <> e.event_id
          AND coalesce(pe.origin_time, (pe.extra ->> 'target_time')::timestamptz, pe.created_at)
              BETWEEN e_time - r.repeat_within AND e_time
        GROUP BY f.rule_id, t.site_id
    ), asked AS (
        SELECT f.rule_id, t.site_id, t.asked_reason AS reason
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id AND f.event_id = e.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
    ), eff AS (
        SELECT r.rule_id, r.tenant_id, r.hazard, r.min_shindo, r.tsunami_kinds, r.repeat_within, r.gate, r.use_estimate,
               r.all_sites, o.site_id, o.code, o.municipality_code, o.muni_name, o.attributes,
               o.hit_incomplete AS incomplete,
               o.hit_shindo IS NULL AND NOT o.hit_incomplete AS estimated,
               s.basis, s.sh,
               tw.w ->> 0 AS tsunami_kind, tw.w ->> 1 AS tsunami_name, tw.w ->> 2 AS tsunami_area,
               (NOT r.all_sites AND g.site_id IS NULL) AS outside,
               p.shindo AS prev_shindo, p.event_id AS prev_event, p.site_id IS NOT NULL AS was_asked,
               asked.reason AS asked_reason
        FROM rules r
        JOIN obs o ON o.tenant_id = r.tenant_id
        LEFT JOIN tgt g ON g.rule_id = r.rule_id AND g.site_id = o.site_id
        LEFT JOIN earlier p ON p.rule_id = r.rule_id AND p.site_id = o.site_id
        LEFT JOIN asked ON asked.rule_id = r.rule_id AND asked.site_id = o.site_id
        CROSS JOIN LATERAL (SELECT CASE WHEN r.hazard = 'tsunami' THEN warned -> (o.attributes ->> 'tsunami_area') END AS w) tw
        -- OFFSET 0 keeps each of these subqueries a node of its own, so that
        -- its value is computed once per row, not once per reference to it
        -- (a pulled-up subquery repeats its expression wherever it is used)
        CROSS JOIN LATERAL (SELECT
                   CASE
                       WHEN o.hit_incomplete
                       THEN greatest(coalesce(o.hit_shindo::status_checker.shindo, '0'), '5-'::status_checker.shindo)
                       WHEN o.hit_shindo IS NOT NULL THEN o.hit_shindo::status_checker.shindo
                       WHEN r.use_estimate AND (e.detail_level = 0 OR o.municipality_code IS NULL)
                            AND e.magnitude IS NOT NULL AND e.lat IS NOT NULL AND o.lat IS NOT NULL
                       THEN status_checker.estimate_shindo(e.magnitude, coalesce(e.depth_km, 10), e.lat, e.lon, o.lat, o.lon)
                   END AS sh,
                   CASE WHEN e.detail_level >= 2 THEN 'municipality ' || coalesce(o.hit_name, o.muni_name, o.municipality_code)
                        ELSE 'area ' || coalesce(o.hit_name, o.area_name, '?') END AS basis
            OFFSET 0) s
    ), why AS (
        SELECT q.*, y.why
        FROM eff q
        CROSS JOIN LATERAL (SELECT
               CASE
                   WHEN q.gate IS NOT NULL THEN q.gate
                   WHEN q.outside THEN 'outside the rule''s target'
                   WHEN q.hazard = 'tsunami' AND q.attributes ->> 'tsunami_area' IS NULL THEN 'no tsunami forecast area (attribute tsunami_area)'
                   WHEN q.hazard = 'tsunami' AND q.tsunami_kind IS NULL THEN 'no tsunami warning for ' || (q.attributes ->> 'tsunami_area')
                   WHEN q.hazard = 'tsunami' AND NOT q.tsunami_kind = ANY (q.tsunami_kinds)
                       THEN format('%s for %s is not a kind the rule asks for', q.tsunami_name, q.tsunami_area)
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL AND q.municipality_code IS NULL
                       THEN 'no area code (the site has no municipality code)' ||
                            CASE WHEN q.use_estimate THEN ' and no coordinates or hypocentre for an estimate' ELSE '' END
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL AND q.muni_name IS NULL AND e.source <> 'usgs'
                       THEN format('no area code (municipality %s is not in JMA''s table)', q.municipality_code)
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL THEN 'no intensity observed in ' || q.basis
                   WHEN q.hazard = 'earthquake' AND q.sh < q.min_shindo
                       THEN 'below threshold: ' || status_checker.shindo_label(q.sh, 'ja') || ' '
                            || CASE WHEN q.estimated THEN 'estimated from M' || e.magnitude ELSE 'in ' || q.basis END
                            || ' < ' || status_checker.shindo_label(q.min_shindo, 'ja')
                   WHEN q.was_asked AND (q.hazard = 'tsunami' OR q.prev_shindo >= q.sh)
                       THEN format('suppressed as aftershock: asked at %s for event %s within %s',
                                   coalesce(status_checker.shindo_label(q.prev_shindo, 'ja'), 'tsunami'), q.prev_event, q.repeat_within)
               END AS why
            OFFSET 0) y
    )
    SELECT w.rule_id, w.tenant_id, w.site_id, w.code, w.sh,
           CASE WHEN w.asked_reason IS NOT NULL THEN 'asked' WHEN w.why IS NULL THEN 'ask' ELSE 'skip' END,
           CASE WHEN w.asked_reason IS NOT NULL THEN w.asked_reason
                WHEN w.why IS NOT NULL THEN w.why
                WHEN w.hazard = 'tsunami' THEN 'tsunami: ' || w.tsunami_name || ' for ' || w.tsunami_area
                ELSE status_checker.shindo_label(w.sh, 'ja')
                     || CASE WHEN w.incomplete THEN ' or more (震度５弱以上未入電)' ELSE '' END
                     || CASE WHEN w.estimated THEN ' estimated from M' || e.magnitude ELSE ' in ' || w.basis END
                     || ' ≥ ' || status_checker.shindo_label(w.min_shindo, 'ja')
           END
    FROM why w;
END
$$;
COMMENT ON FUNCTION status_checker._decide_all(bigint, bigint[]) IS
'Internal: for an event and a set of rules, each site of each rule''s tenant with its intensity and the decision (ask, asked, skip) and reason';
-- run by trigger_decision's readers through _decide (1.1.0: before, a viewer's SELECT failed)
GRANT EXECUTE ON FUNCTION status_checker._decide_all(bigint, bigint[]) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- _decide_all for a warning episode: each site is asked by the highest
-- level its area reached in the episode (a 解除 later does not undo that:
-- the site was in danger and is still asked to report).  A site's area is
-- its attribute warning_area, else its municipality code; a warning for a
-- part of a municipality JMA divides (横浜市北部, 1410011) also covers a
-- site coded with the whole municipality (1410000), and a warning for a
-- designated city (北九州市, or a part of one) the sites in its wards.
CREATE OR REPLACE FUNCTION status_checker._decide_warning(e status_checker.event, p_rules bigint[])
    RETURNS TABLE (rule_id bigint, tenant_id bigint, site_id bigint, site_code text,
                   shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    SET jit = off AS $$
#variable_conflict use_column
DECLARE
    warned jsonb;       -- area code → [level, kind, area name, in force, since, until]
BEGIN
    -- a jsonb map built once: each site then costs one probe
    SELECT jsonb_object_agg(x.code, jsonb_build_array(x.level, x.label, x.name, x.until IS NULL,
                                                      to_char(x.since AT TIME ZONE 'Asia/Tokyo', 'MM/DD HH24:MI'),
                                                      to_char(x.until AT TIME ZONE 'Asia/Tokyo', 'MM/DD HH24:MI')))
    INTO warned
    FROM (SELECT DISTINCT ON (a.code) a.code, w.level, w.label, w.name, w.since, w.until
          FROM status_checker.event_warning w
          CROSS JOIN LATERAL (
              VALUES (w.code, 0),
                     -- a part of a municipality (横浜市北部 1410011) covers a site coded with the whole (1410000)
                     (CASE WHEN right(w.code, 2) <> '00' THEN left(w.code, 5) || '00' END, 1)
              UNION ALL
              -- a designated city warned as a whole (北九州市 4010000) covers the sites in its wards, whose
              -- codes JMA's table names after the city (北九州門司区 4010100); a part (横浜市北部) covers
              -- every ward: a site that must be precise sets its attribute warning_area
              SELECT m.code, 2 FROM status_checker.jma_municipality m
              CROSS JOIN LATERAL (SELECT substring(w.name FROM '^(.+?)市') AS stem) c
              WHERE c.stem IS NOT NULL AND left(m.code, 2) = left(w.code, 2) AND m.code <> w.code
                AND left(m.name, length(c.stem)) = c.stem AND length(m.name) > length(c.stem) + 1
                AND right(m.name, 1) = '区') a(code, how)
          WHERE w.event_id = e.event_id AND w.scope = 'city' AND w.level IS NOT NULL AND a.code IS NOT NULL
          ORDER BY a.code, w.level DESC, a.how, w.until IS NULL DESC, w.since) x;

    RETURN QUERY
    WITH rules AS (
        SELECT r.*, r.target = '{"all": true}'::jsonb AS all_sites,
               status_checker._rule_gate(r, e) AS gate
        FROM status_checker.trigger_rule r WHERE r.rule_id = ANY (p_rules)
    ), tgt AS (
        SELECT r.rule_id, t.site_id FROM rules r
        CROSS JOIN LATERAL status_checker._resolve_targets(r.tenant_id, r.target) t
        WHERE NOT r.all_sites
    ), asked AS (
        SELECT f.rule_id, t.site_id, t.asked_reason AS reason
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id AND f.event_id = e.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
    ), eff AS (
        SELECT r.rule_id, r.tenant_id, r.min_level, r.gate, s.site_id, s.code,
               coalesce(s.attributes ->> 'warning_area', s.municipality_code) AS area, m.name AS area_name,
               (NOT r.all_sites AND g.site_id IS NULL) AS outside,
               asked.reason AS asked_reason, h.w
        FROM rules r
        JOIN status_checker.site s ON s.tenant_id = r.tenant_id
        LEFT JOIN status_checker.jma_municipality m ON m.code = coalesce(s.attributes ->> 'warning_area', s.municipality_code)
        LEFT JOIN tgt g ON g.rule_id = r.rule_id AND g.site_id = s.site_id
        LEFT JOIN asked ON asked.rule_id = r.rule_id AND asked.site_id = s.site_id
        CROSS JOIN LATERAL (SELECT warned -> coalesce(s.attributes ->> 'warning_area', s.municipality_code) AS w OFFSET 0) h
    ), why AS (
        SELECT q.*, (q.w ->> 0)::integer AS lvl,
               format('%s (レベル%s) for %s', q.w ->> 1, q.w ->> 0, coalesce(q.w ->> 2, q.area))
               || CASE WHEN NOT (q.w ->> 3)::boolean THEN format(', 解除 %s JST', q.w ->> 5) ELSE '' END AS what,
               CASE
                   WHEN q.gate IS NOT NULL THEN q.gate
                   WHEN q.outside THEN 'outside the rule''s target'
                   WHEN q.area IS NULL THEN 'no area code (the site has no municipality code)'
                   WHEN q.w IS NULL THEN format('no %s warning for %s in this episode',
                                                e.kind, coalesce(q.area_name || ' (' || q.area || ')', 'municipality ' || q.area))
                   WHEN (q.w ->> 0)::integer < q.min_level
                       THEN format('below threshold: %s (レベル%s) for %s < レベル%s', q.w ->> 1, q.w ->> 0,
                                   coalesce(q.w ->> 2, q.area), q.min_level)
               END AS why
        FROM eff q
    )
    SELECT w.rule_id, w.tenant_id, w.site_id, w.code, NULL::status_checker.shindo,
           CASE WHEN w.asked_reason IS NOT NULL THEN 'asked' WHEN w.why IS NULL THEN 'ask' ELSE 'skip' END,
           CASE WHEN w.asked_reason IS NOT NULL THEN w.asked_reason
                WHEN w.why IS NOT NULL THEN w.why
                ELSE w.what || ' ≥ レベル' || w.min_level
           END
    FROM why w;
END
$$;
COMMENT ON FUNCTION status_checker._decide_warning(status_checker.event, bigint[]) IS
'Internal: _decide_all for a warning episode: each site of each rule''s tenant, asked when the highest level its area '
'(attribute warning_area, else municipality) reached in the episode is at least the rule''s min_level';
GRANT EXECUTE ON FUNCTION status_checker._decide_warning(status_checker.event, bigint[]) TO status_checker_api, status_checker_viewer, status_checker_operator;
