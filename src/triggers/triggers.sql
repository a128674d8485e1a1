-- src/triggers/triggers.sql — trigger rules: events make requests by themselves.
--
-- A rule of a tenant says which hazard (earthquake, tsunami), from which
-- sources, from which intensity and for which sites a request is created.
-- _decide_all() is the one place that says, for an event, its rules and
-- each site of their tenants, whether the site is asked and why;
-- _fire_rules() acts on it when an event is stored or changes (all rules in
-- one pass), backtest_rule() shows it for one rule without acting, and the
-- view trigger_decision explains every evaluation.
--
-- Exactly one effect per cause: trigger_fire has one row per (rule, event)
-- and points to the one request; later telegrams of the same event only
-- add newly affected sites to it (request_target, with the intensity the
-- site was asked at and why).

CREATE TABLE status_checker.trigger_rule (
    tenant_id      bigint NOT NULL REFERENCES status_checker.tenant,
    rule_id        bigint GENERATED ALWAYS AS IDENTITY,
    name           text NOT NULL,
    form_id        bigint NOT NULL,
    hazard         text NOT NULL DEFAULT 'earthquake' CHECK (hazard IN ('earthquake', 'tsunami', 'rain', 'landslide', 'flood',
                                                                  'storm_surge', 'wind', 'snow', 'wave', 'volcano', 'any_warning')),
    min_shindo     status_checker.shindo,
    tsunami_kinds  text[] NOT NULL DEFAULT '{51,52,53}',
    target         jsonb NOT NULL DEFAULT '{"all": true}',
    deadline       interval NOT NULL DEFAULT '6 hours' CHECK (deadline > '0'),
    drill          boolean NOT NULL DEFAULT false,
    repeat_within  interval CHECK (repeat_within > '0'),
    use_estimate   boolean NOT NULL DEFAULT false,
    sources        text[] NOT NULL DEFAULT '{jma}' CHECK (sources <@ '{jma,p2pquake,usgs}' AND cardinality(sources) > 0),
    message        text,
    reminders      interval[] NOT NULL DEFAULT '{}',   -- copied to the requests the rule creates
    escalate_after interval,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    min_level      integer CHECK (min_level BETWEEN 1 AND 5),   -- warning rules: the lowest level that asks
    PRIMARY KEY (tenant_id, rule_id),
    UNIQUE (rule_id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES status_checker.form (tenant_id, form_id),
    CHECK (hazard <> 'earthquake' OR min_shindo IS NOT NULL),
    CONSTRAINT trigger_rule_level_check CHECK (hazard IN ('earthquake', 'tsunami') OR min_level IS NOT NULL)
);
COMMENT ON TABLE status_checker.trigger_rule IS
'A tenant''s rule: when an event of its hazard reaches min_shindo (or a listed tsunami warning kind, or for a weather, '
'landslide, flood or volcano warning min_level) at a targeted site, ask those sites';
ALTER TABLE status_checker.trigger_rule ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.trigger_rule FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.trigger_rule
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.trigger_rule TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.trigger_fire (
    tenant_id   bigint NOT NULL,
    rule_id     bigint NOT NULL,
    event_id    bigint NOT NULL REFERENCES status_checker.event,
    request_id  bigint NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES status_checker.trigger_rule,
    FOREIGN KEY (tenant_id, request_id) REFERENCES status_checker.request (tenant_id, request_id)
);
CREATE INDEX ON status_checker.trigger_fire (event_id);
COMMENT ON TABLE status_checker.trigger_fire IS
'The one request a rule created for an event (natural key: rule, event)';
ALTER TABLE status_checker.trigger_fire ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.trigger_fire FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.trigger_fire
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.trigger_fire TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.trigger_evaluation (
    tenant_id     bigint NOT NULL,
    rule_id       bigint NOT NULL,
    event_id      bigint NOT NULL REFERENCES status_checker.event,
    evaluations   integer NOT NULL DEFAULT 1,
    last_revision integer NOT NULL,
    evaluated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES status_checker.trigger_rule
);
COMMENT ON TABLE status_checker.trigger_evaluation IS
'Which rules looked at which events (hazard and source matched), for the trigger_decision view';
ALTER TABLE status_checker.trigger_evaluation ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.trigger_evaluation FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.trigger_evaluation
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.trigger_evaluation TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------ estimated intensity

CREATE FUNCTION status_checker.estimate_shindo(
    magnitude numeric, depth_km double precision,
    epi_lat double precision, epi_lon double precision,
    site_lat double precision, site_lon double precision)
    RETURNS status_checker.shindo
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    -- Si & Midorikawa (1999) peak ground velocity on Vs 600 m/s rock for a
    -- crustal event, amplified to an average site (AVS30 = 400 m/s,
    -- Fujimoto & Midorikawa 2006: ×1.41), converted to JMA instrumental
    -- intensity by Midorikawa et al. (1999): I = 2.68 + 1.72 log10 PGV.
    -- The fault distance X is approximated from the hypocentral distance
    -- minus half the fault length of Utsu (1977), log10 L = 0.5 M - 1.8,
    -- but not below the depth (nor 3 km).  Mw is taken as the given
    -- magnitude, capped at 8.3 (the relation's range).  See docs/feeds.md.
    -- The class follows JMA's rule for 計測震度 (shindo_from_instrumental:
    -- rounded at the third decimal, truncated at the second), on the value
    -- as computed.
    SELECT status_checker.shindo_from_instrumental(greatest(-3.0, least(8.0,
               2.68 + 1.72 * (lpgv + 0.150)))::numeric)
    FROM (SELECT 0.58 * mw + 0.0038 * d - 1.29
                 - log(x + 0.0028 * power(10, 0.5 * mw)) - 0.002 * x AS lpgv
          FROM (SELECT mw, d, greatest(3.0, d, hypo - power(10, 0.5 * m - 1.8) / 2) AS x
                FROM (SELECT least(magnitude::double precision, 8.3) AS mw,
                             magnitude::double precision AS m,
                             greatest(depth_km, 0) AS d,
                             sqrt(power(2 * 6371.0 * asin(least(1.0, sqrt(
                                 power(sin(radians(site_lat - epi_lat) / 2), 2)
                                 + cos(radians(epi_lat)) * cos(radians(site_lat))
                                   * power(sin(radians(site_lon - epi_lon) / 2), 2)))), 2)
                                 + power(greatest(depth_km, 0), 2)) AS hypo) a) b) c;
END;
COMMENT ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) IS
'Estimated JMA seismic intensity at a site from magnitude, depth and epicentre (Si & Midorikawa 1999 attenuation, '
'average site amplification, Midorikawa et al. 1999 PGV to intensity, Utsu 1977 fault length); a rough estimate for sites without observations';
GRANT EXECUTE ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) TO status_checker_api, status_checker_operator;

-- ---------------------------------------------------------- rule management

CREATE FUNCTION status_checker.create_trigger_rule(
    tenant_id bigint, name text, form_id bigint, min_shindo status_checker.shindo,
    target jsonb DEFAULT '{"all": true}', deadline interval DEFAULT '6 hours', drill boolean DEFAULT false,
    repeat_within interval DEFAULT NULL, use_estimate boolean DEFAULT false,
    sources text[] DEFAULT '{jma}', hazard text DEFAULT 'earthquake',
    tsunami_kinds text[] DEFAULT '{51,52,53}', message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_trigger_rule', ARRAY['tenant_id', 'name', 'form_id', 'target', 'deadline', 'drill', 'sources', 'hazard'],
        ARRAY[create_trigger_rule.tenant_id::text, create_trigger_rule.name, create_trigger_rule.form_id::text,
              create_trigger_rule.target::text, create_trigger_rule.deadline::text, create_trigger_rule.drill::text,
              create_trigger_rule.sources::text, create_trigger_rule.hazard]);
    PERFORM status_checker._require_tenant(create_trigger_rule.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.form f
                   WHERE f.tenant_id = create_trigger_rule.tenant_id AND f.form_id = create_trigger_rule.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', create_trigger_rule.form_id, create_trigger_rule.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF btrim(create_trigger_rule.name) = '' OR length(create_trigger_rule.name) > 200 THEN
        RAISE EXCEPTION 'invalid rule name %', quote_literal(create_trigger_rule.name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 200 characters and is not blank.';
    END IF;
    IF create_trigger_rule.hazard NOT IN ('earthquake', 'tsunami') THEN
        RAISE EXCEPTION 'unknown hazard % for a rule with min_shindo', quote_literal(create_trigger_rule.hazard)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use earthquake or tsunami; a warning rule takes a hazard and min_level: '
                         'create_trigger_rule(tenant_id, name, form_id, hazard => ''rain'', min_level => 4).';
    END IF;
    IF create_trigger_rule.hazard = 'earthquake' AND create_trigger_rule.min_shindo IS NULL THEN
        RAISE EXCEPTION 'an earthquake rule needs min_shindo' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'For example ''5-'' (震度5弱).';
    END IF;
    IF create_trigger_rule.deadline <= '0' THEN
        RAISE EXCEPTION 'the deadline interval % is not positive', create_trigger_rule.deadline
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF create_trigger_rule.repeat_within <= '0' THEN
        RAISE EXCEPTION 'repeat_within % is not positive', create_trigger_rule.repeat_within
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(create_trigger_rule.sources) = 0 OR NOT create_trigger_rule.sources <@ '{jma,p2pquake,usgs}' THEN
        RAISE EXCEPTION 'invalid sources %', create_trigger_rule.sources
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one or more of jma, p2pquake, usgs.';
    END IF;
    IF create_trigger_rule.tsunami_kinds IS NULL OR cardinality(create_trigger_rule.tsunami_kinds) = 0
       OR NOT create_trigger_rule.tsunami_kinds <@ '{50,51,52,53,60,62,71,72,73}' THEN
        RAISE EXCEPTION 'invalid tsunami kinds %', create_trigger_rule.tsunami_kinds
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'JMA kind codes: 52/53 大津波警報, 51 津波警報, 62 津波注意報, 71-73 津波予報, 50/60 解除.';
    END IF;
    -- the target is checked now, as create_request checks it
    PERFORM count(*) FROM status_checker._resolve_targets(create_trigger_rule.tenant_id, create_trigger_rule.target);

    INSERT INTO status_checker.trigger_rule
        (tenant_id, name, form_id, hazard, min_shindo, tsunami_kinds, target, deadline, drill,
         repeat_within, use_estimate, sources, message)
    VALUES (create_trigger_rule.tenant_id, create_trigger_rule.name, create_trigger_rule.form_id,
            create_trigger_rule.hazard, create_trigger_rule.min_shindo, create_trigger_rule.tsunami_kinds,
            create_trigger_rule.target, create_trigger_rule.deadline, create_trigger_rule.drill,
            create_trigger_rule.repeat_within, coalesce(create_trigger_rule.use_estimate, false),
            create_trigger_rule.sources, create_trigger_rule.message)
    RETURNING rule_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) IS
'Create a trigger rule: when an event reaches min_shindo at targeted sites, one request asks them (drill rules fire on '
'training telegrams only; repeat_within suppresses aftershocks that shake no harder; use_estimate estimates intensity '
'where none is observed); returns the rule id';
ALTER FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) TO status_checker_admin;

-- A warning rule (1.1.0): a hazard and a minimum level instead of a
-- minimum 震度.  min_level is the 警戒レベル a warning corresponds to
-- (2 注意報, 3 警報, 4 危険警報 / 土砂災害警戒情報 / 氾濫危険情報, 5 特別警報),
-- or for volcano the 噴火警戒レベル (table warning_kind).
CREATE FUNCTION status_checker.create_trigger_rule(
    tenant_id bigint, name text, form_id bigint, hazard text, min_level integer,
    target jsonb DEFAULT '{"all": true}', deadline interval DEFAULT '6 hours', drill boolean DEFAULT false,
    message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_trigger_rule', ARRAY['tenant_id', 'name', 'form_id', 'hazard', 'min_level', 'target', 'deadline', 'drill'],
        ARRAY[create_trigger_rule.tenant_id::text, create_trigger_rule.name, create_trigger_rule.form_id::text,
              create_trigger_rule.hazard, create_trigger_rule.min_level::text, create_trigger_rule.target::text,
              create_trigger_rule.deadline::text, create_trigger_rule.drill::text]);
    PERFORM status_checker._require_tenant(create_trigger_rule.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.form f
                   WHERE f.tenant_id = create_trigger_rule.tenant_id AND f.form_id = create_trigger_rule.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', create_trigger_rule.form_id, create_trigger_rule.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF btrim(create_trigger_rule.name) = '' OR length(create_trigger_rule.name) > 200 THEN
        RAISE EXCEPTION 'invalid rule name %', quote_literal(create_trigger_rule.name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 200 characters and is not blank.';
    END IF;
    IF create_trigger_rule.hazard NOT IN ('rain', 'landslide', 'flood', 'storm_surge', 'wind', 'snow', 'wave', 'volcano', 'any_warning') THEN
        RAISE EXCEPTION 'unknown warning hazard %', quote_literal(create_trigger_rule.hazard)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use rain, landslide, flood, storm_surge, wind, snow, wave, volcano or any_warning; '
                         'earthquake and tsunami rules take min_shindo instead of a level.';
    END IF;
    IF create_trigger_rule.min_level NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'min_level % is not a level from 1 to 5', create_trigger_rule.min_level
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '2 注意報, 3 警報, 4 危険警報 / 土砂災害警戒情報 / 氾濫危険情報, 5 特別警報; for volcano the 噴火警戒レベル.';
    END IF;
    IF create_trigger_rule.deadline <= '0' THEN
        RAISE EXCEPTION 'the deadline interval % is not positive', create_trigger_rule.deadline
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM count(*) FROM status_checker._resolve_targets(create_trigger_rule.tenant_id, create_trigger_rule.target);

    INSERT INTO status_checker.trigger_rule
        (tenant_id, name, form_id, hazard, min_level, target, deadline, drill, sources, message)
    VALUES (create_trigger_rule.tenant_id, create_trigger_rule.name, create_trigger_rule.form_id,
            create_trigger_rule.hazard, create_trigger_rule.min_level, create_trigger_rule.target,
            create_trigger_rule.deadline, create_trigger_rule.drill, '{jma}', create_trigger_rule.message)
    RETURNING rule_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, text, integer, jsonb, interval, boolean, text) IS
'Create a warning rule: when a JMA warning of the hazard (rain, landslide, flood, storm_surge, wind, snow, wave, volcano '
'or any_warning) reaches min_level (警戒レベル 1-5, or the 噴火警戒レベル) at targeted sites, one request per episode '
'asks them; later telegrams add newly covered sites; drill rules fire on training telegrams only; returns the rule id';
ALTER FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, text, integer, jsonb, interval, boolean, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, text, integer, jsonb, interval, boolean, text) TO status_checker_admin;

CREATE FUNCTION status_checker.set_trigger_rule_enabled(rule_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('set_trigger_rule_enabled', ARRAY['rule_id', 'enabled'],
                                     ARRAY[set_trigger_rule_enabled.rule_id::text, set_trigger_rule_enabled.enabled::text]);
    UPDATE status_checker.trigger_rule r SET enabled = set_trigger_rule_enabled.enabled
    WHERE r.rule_id = set_trigger_rule_enabled.rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', set_trigger_rule_enabled.rule_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) IS
'Enable or disable a trigger rule; a disabled rule creates no requests';
ALTER FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) TO status_checker_admin;

-- ------------------------------------------------------------- decisions

-- For an event and a set of rules: every site of each rule's tenant with
-- its intensity, whether it is asked, and why.  decision: ask (would be
-- asked now), asked (already asked for this event), skip.  One statement
-- for all rules, so that an event that concerns a hundred tenants costs one
-- pass over their sites (docs/benchmarks.md); _decide, backtest_rule and
-- the trigger_decision view are this function for one rule.
CREATE FUNCTION status_checker._decide_all(p_event bigint, p_rules bigint[])
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
               CASE
                   WHEN NOT r.enabled THEN 'rule disabled'
                   WHEN NOT status_checker._rule_watches(r.hazard, e.kind) THEN format('event is a %s; the rule watches %s', e.kind, r.hazard)
                   WHEN NOT e.source = ANY (r.sources) THEN format('event from %s; the rule watches %s', e.source, array_to_string(r.sources, ', '))
                   WHEN e.status = 'cancelled' THEN 'event cancelled (取消)'
                   WHEN e.status = 'test' THEN 'test telegram (試験): never triggers'
                   WHEN e.status = 'training' AND NOT r.drill THEN 'training telegram (訓練): only drill rules fire'
                   WHEN e.status = 'actual' AND r.drill THEN 'drill rule: fires on training telegrams (訓練) only'
               END AS gate
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

-- _decide_all for a warning episode: each site is asked by the highest
-- level its area reached in the episode (a 解除 later does not undo that:
-- the site was in danger and is still asked to report).  A site's area is
-- its attribute warning_area, else its municipality code; a warning for a
-- part of a municipality JMA divides (横浜市北部, 1410011) also covers a
-- site coded with the whole municipality (1410000).
CREATE FUNCTION status_checker._decide_warning(e status_checker.event, p_rules bigint[])
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
          CROSS JOIN LATERAL (VALUES (w.code), (CASE WHEN right(w.code, 2) <> '00' THEN left(w.code, 5) || '00' END)) a(code)
          WHERE w.event_id = e.event_id AND w.scope = 'city' AND w.level IS NOT NULL AND a.code IS NOT NULL
          ORDER BY a.code, w.level DESC, a.code = w.code DESC, w.until IS NULL DESC, w.since) x;

    RETURN QUERY
    WITH rules AS (
        SELECT r.*, r.target = '{"all": true}'::jsonb AS all_sites,
               CASE
                   WHEN NOT r.enabled THEN 'rule disabled'
                   WHEN NOT status_checker._rule_watches(r.hazard, e.kind) THEN format('event is a %s; the rule watches %s', e.kind, r.hazard)
                   WHEN NOT e.source = ANY (r.sources) THEN format('event from %s; the rule watches %s', e.source, array_to_string(r.sources, ', '))
                   WHEN e.status = 'cancelled' THEN 'warning withdrawn (取消)'
                   WHEN e.status = 'test' THEN 'test telegram (試験): never triggers'
                   WHEN e.status = 'training' AND NOT r.drill THEN 'training telegram (訓練): only drill rules fire'
                   WHEN e.status = 'actual' AND r.drill THEN 'drill rule: fires on training telegrams (訓練) only'
               END AS gate
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
               coalesce(s.attributes ->> 'warning_area', s.municipality_code) AS area,
               (NOT r.all_sites AND g.site_id IS NULL) AS outside,
               asked.reason AS asked_reason, h.w
        FROM rules r
        JOIN status_checker.site s ON s.tenant_id = r.tenant_id
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
                   WHEN q.w IS NULL THEN format('no %s warning for municipality %s in this episode', e.kind, q.area)
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

CREATE FUNCTION status_checker._decide(p_rule bigint, p_event bigint)
    RETURNS TABLE (site_id bigint, site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM status_checker._no_nulls('backtest_rule', ARRAY['rule_id', 'event_id'], ARRAY[p_rule::text, p_event::text]);
    IF NOT EXISTS (SELECT 1 FROM status_checker.trigger_rule x WHERE x.rule_id = p_rule) THEN
        RAISE EXCEPTION 'trigger rule % does not exist', coalesce(p_rule::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY SELECT d.site_id, d.site_code, d.shindo, d.decision, d.reason
                 FROM status_checker._decide_all(p_event, ARRAY[p_rule]) d;
END
$$;
COMMENT ON FUNCTION status_checker._decide(bigint, bigint) IS
'Internal: for a rule and an event, each site of the tenant with its intensity and the decision (ask, asked, skip) and reason';
GRANT EXECUTE ON FUNCTION status_checker._decide(bigint, bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker.backtest_rule(rule_id bigint, event_id bigint)
    RETURNS TABLE (site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE sql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    SELECT d.site_code, d.shindo, d.decision, d.reason
    FROM status_checker._decide(backtest_rule.rule_id, backtest_rule.event_id) d
    ORDER BY d.decision <> 'ask', d.decision <> 'asked', d.shindo DESC NULLS LAST, d.site_code;
END;
COMMENT ON FUNCTION status_checker.backtest_rule(bigint, bigint) IS
'What the rule would do for an event, site by site, without doing it: decision ask (would be asked), asked (already '
'asked for this event) or skip, with the reason';
ALTER FUNCTION status_checker.backtest_rule(bigint, bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.backtest_rule(bigint, bigint) TO status_checker_admin;

CREATE VIEW status_checker.trigger_decision WITH (security_invoker = true) AS
SELECT v.tenant_id, v.rule_id, r.name AS rule_name, v.event_id, f.request_id,
       d.site_code, d.shindo, d.decision, d.reason, v.evaluated_at
FROM status_checker.trigger_evaluation v
JOIN status_checker.trigger_rule r ON r.tenant_id = v.tenant_id AND r.rule_id = v.rule_id
LEFT JOIN status_checker.trigger_fire f ON f.tenant_id = v.tenant_id AND f.rule_id = v.rule_id AND f.event_id = v.event_id
CROSS JOIN LATERAL status_checker._decide(v.rule_id, v.event_id) d;
COMMENT ON VIEW status_checker.trigger_decision IS
'For each rule and each event it looked at: every site of the tenant, asked or not, and why (intensity and threshold, '
'outside target, no area code, not observed, suppressed as aftershock, training/test telegram, cancelled)';
GRANT SELECT ON status_checker.trigger_decision TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------------------ firing

CREATE FUNCTION status_checker._event_title(e status_checker.event) RETURNS text
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

-- _fire_rules: src/triggers/fire.sql
