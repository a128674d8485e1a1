-- src/triggers/triggers.sql — trigger rules: events make requests by themselves.
--
-- A rule of a tenant says which hazard (earthquake, tsunami), from which
-- sources, from which intensity and for which sites a request is created.
-- _decide() is the one place that says, for a rule, an event and each site
-- of the tenant, whether the site is asked and why; _fire_rules() acts on
-- it when an event is stored or changes, backtest_rule() shows it without
-- acting, and the view trigger_decision explains every evaluation.
--
-- Exactly one effect per cause: trigger_fire has one row per (rule, event)
-- and points to the one request; later telegrams of the same event only
-- add newly affected sites to it (trigger_target, one row per site).

CREATE TABLE status_checker.trigger_rule (
    tenant_id      bigint NOT NULL REFERENCES status_checker.tenant,
    rule_id        bigint GENERATED ALWAYS AS IDENTITY,
    name           text NOT NULL,
    form_id        bigint NOT NULL,
    hazard         text NOT NULL DEFAULT 'earthquake' CHECK (hazard IN ('earthquake', 'tsunami')),
    min_shindo     status_checker.shindo,
    tsunami_kinds  text[] NOT NULL DEFAULT '{51,52,53}',
    target         jsonb NOT NULL DEFAULT '{"all": true}',
    deadline       interval NOT NULL DEFAULT '6 hours' CHECK (deadline > '0'),
    drill          boolean NOT NULL DEFAULT false,
    repeat_within  interval CHECK (repeat_within > '0'),
    use_estimate   boolean NOT NULL DEFAULT false,
    sources        text[] NOT NULL DEFAULT '{jma}' CHECK (sources <@ '{jma,p2pquake,usgs}' AND cardinality(sources) > 0),
    message        text,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id),
    UNIQUE (rule_id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES status_checker.form (tenant_id, form_id),
    CHECK (hazard <> 'earthquake' OR min_shindo IS NOT NULL)
);
COMMENT ON TABLE status_checker.trigger_rule IS
'A tenant''s rule: when an event of its hazard reaches min_shindo (or a listed tsunami warning kind) at a targeted site, ask those sites';

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

CREATE TABLE status_checker.trigger_target (
    tenant_id   bigint NOT NULL,
    rule_id     bigint NOT NULL,
    event_id    bigint NOT NULL,
    site_id     bigint NOT NULL,
    request_id  bigint NOT NULL,
    shindo      status_checker.shindo,
    reason      text NOT NULL,
    asked_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id, site_id),
    FOREIGN KEY (tenant_id, rule_id, event_id) REFERENCES status_checker.trigger_fire,
    FOREIGN KEY (tenant_id, site_id) REFERENCES status_checker.site (tenant_id, site_id)
);
CREATE INDEX ON status_checker.trigger_target (tenant_id, rule_id, site_id);
COMMENT ON TABLE status_checker.trigger_target IS
'Each site a rule asked for an event, the intensity it was asked at and why';

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
    SELECT status_checker.shindo_from_instrumental(round(greatest(-3.0, least(8.0,
               2.68 + 1.72 * (lpgv + 0.150)))::numeric, 1))
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

-- ---------------------------------------------------------- rule management

CREATE FUNCTION status_checker.create_trigger_rule(
    tenant_id bigint, name text, form_id bigint, min_shindo status_checker.shindo,
    target jsonb DEFAULT '{"all": true}', deadline interval DEFAULT '6 hours', drill boolean DEFAULT false,
    repeat_within interval DEFAULT NULL, use_estimate boolean DEFAULT false,
    sources text[] DEFAULT '{jma}', hazard text DEFAULT 'earthquake',
    tsunami_kinds text[] DEFAULT '{51,52,53}', message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
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
        RAISE EXCEPTION 'unknown hazard %', quote_literal(create_trigger_rule.hazard)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use earthquake or tsunami.';
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

CREATE FUNCTION status_checker.set_trigger_rule_enabled(rule_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
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

-- ------------------------------------------------------------- decisions

-- For a rule, an event and every site of the rule's tenant: the site's
-- intensity, whether it is asked, and why.  decision: ask (would be asked
-- now), asked (already asked for this event), skip.
CREATE FUNCTION status_checker._decide(p_rule bigint, p_event bigint)
    RETURNS TABLE (site_id bigint, site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.trigger_rule;
    e status_checker.event;
    gate text;
    all_sites boolean;
BEGIN
    SELECT * INTO r FROM status_checker.trigger_rule x WHERE x.rule_id = p_rule;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', coalesce(p_rule::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % does not exist', coalesce(p_event::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    gate := CASE
        WHEN NOT r.enabled THEN 'rule disabled'
        WHEN e.kind <> r.hazard THEN format('event is a %s; the rule watches %s', e.kind, r.hazard)
        WHEN NOT e.source = ANY (r.sources) THEN format('event from %s; the rule watches %s', e.source, array_to_string(r.sources, ', '))
        WHEN e.status = 'cancelled' THEN 'event cancelled (取消)'
        WHEN e.status = 'test' THEN 'test telegram (試験): never triggers'
        WHEN e.status = 'training' AND NOT r.drill THEN 'training telegram (訓練): only drill rules fire'
        WHEN e.status = 'actual' AND r.drill THEN 'drill rule: fires on training telegrams (訓練) only'
    END;
    all_sites := r.target = '{"all": true}'::jsonb;

    RETURN QUERY
    WITH tgt AS (
        SELECT t.site_id FROM status_checker._resolve_targets(r.tenant_id, r.target) t WHERE NOT all_sites
    ), obs AS (
        -- the event's observed intensity at each site of the tenant
        SELECT s.site_id, s.code, s.municipality_code, s.lat, s.lon, s.attributes,
               m.name AS muni_name, a.name AS area_name,
               CASE WHEN e.detail_level >= 2 THEN c.shindo ELSE ar.shindo END AS observed,
               CASE WHEN e.detail_level >= 2 THEN coalesce(c.incomplete, false) ELSE coalesce(ar.incomplete, false) END AS incomplete,
               CASE WHEN e.detail_level >= 2 THEN 'municipality ' || coalesce(c.name, m.name, s.municipality_code)
                    ELSE 'area ' || coalesce(ar.name, a.name, m.area_code) END AS basis
        FROM status_checker.site s
        LEFT JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
        LEFT JOIN status_checker.jma_area a ON a.code = m.area_code
        LEFT JOIN status_checker.event_product_intensity c
               ON e.detail_level >= 2 AND c.event_id = e.event_id AND c.product = e.best_product
              AND c.scope = 'city' AND c.code = s.municipality_code
        LEFT JOIN status_checker.event_product_intensity ar
               ON e.detail_level = 1 AND ar.event_id = e.event_id AND ar.product = e.best_product
              AND ar.scope = 'area' AND ar.code = m.area_code
        WHERE s.tenant_id = r.tenant_id
    ), eff AS (
        SELECT o.*,
               CASE
                   WHEN o.incomplete THEN greatest(coalesce(o.observed, '0'::status_checker.shindo), '5-'::status_checker.shindo)
                   WHEN o.observed IS NOT NULL THEN o.observed
                   WHEN r.use_estimate AND (e.detail_level = 0 OR o.municipality_code IS NULL)
                        AND e.magnitude IS NOT NULL AND e.lat IS NOT NULL AND o.lat IS NOT NULL
                   THEN status_checker.estimate_shindo(e.magnitude, coalesce(e.depth_km, 10), e.lat, e.lon, o.lat, o.lon)
               END AS sh,
               o.observed IS NULL AND NOT o.incomplete AS estimated,
               tw.kind_code AS tsunami_kind, tw.kind_name AS tsunami_name, tw.name AS tsunami_area
        FROM obs o
        LEFT JOIN LATERAL (
            SELECT t.kind_code, t.kind_name, t.name FROM status_checker.event_tsunami t
            WHERE r.hazard = 'tsunami' AND t.event_id = e.event_id AND t.code = o.attributes ->> 'tsunami_area'
            ORDER BY t.kind_code = ANY (r.tsunami_kinds) DESC, t.kind_code DESC LIMIT 1
        ) tw ON true
    ), prev AS (
        -- aftershocks: the hardest this rule asked each site within the window
        SELECT tt.site_id, status_checker.max(tt.shindo) AS shindo, min(tt.event_id) AS event_id
        FROM status_checker.trigger_target tt
        JOIN status_checker.event pe ON pe.event_id = tt.event_id
        WHERE r.repeat_within IS NOT NULL AND tt.tenant_id = r.tenant_id AND tt.rule_id = r.rule_id
          AND tt.event_id <> e.event_id
          AND coalesce(pe.origin_time, (pe.extra ->> 'target_time')::timestamptz, pe.created_at)
              BETWEEN coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at) - r.repeat_within
                  AND coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at)
        GROUP BY tt.site_id
    )
    SELECT x.site_id, x.code, x.sh,
           CASE WHEN asked.site_id IS NOT NULL THEN 'asked'
                WHEN x.why IS NULL THEN 'ask' ELSE 'skip' END,
           CASE WHEN asked.site_id IS NOT NULL THEN asked.reason ELSE coalesce(x.why, x.ok) END
    FROM (
        SELECT q.site_id, q.code, q.sh,
               CASE
                   WHEN gate IS NOT NULL THEN gate
                   WHEN NOT all_sites AND NOT EXISTS (SELECT 1 FROM tgt WHERE tgt.site_id = q.site_id) THEN 'outside the rule''s target'
                   WHEN r.hazard = 'tsunami' AND q.attributes ->> 'tsunami_area' IS NULL THEN 'no tsunami forecast area (attribute tsunami_area)'
                   WHEN r.hazard = 'tsunami' AND q.tsunami_kind IS NULL THEN 'no tsunami warning for ' || (q.attributes ->> 'tsunami_area')
                   WHEN r.hazard = 'tsunami' AND NOT q.tsunami_kind = ANY (r.tsunami_kinds)
                       THEN format('%s for %s is not a kind the rule asks for', q.tsunami_name, q.tsunami_area)
                   WHEN r.hazard = 'earthquake' AND q.sh IS NULL AND q.municipality_code IS NULL
                       THEN 'no area code (the site has no municipality code)' ||
                            CASE WHEN r.use_estimate THEN ' and no coordinates or hypocentre for an estimate' ELSE '' END
                   WHEN r.hazard = 'earthquake' AND q.sh IS NULL AND q.muni_name IS NULL AND e.source <> 'usgs'
                       THEN format('no area code (municipality %s is not in JMA''s table)', q.municipality_code)
                   WHEN r.hazard = 'earthquake' AND q.sh IS NULL THEN 'no intensity observed in ' || q.basis
                   WHEN r.hazard = 'earthquake' AND q.sh < r.min_shindo
                       THEN format('below threshold: %s %s < %s', status_checker.shindo_label(q.sh, 'ja'),
                                   CASE WHEN q.estimated THEN 'estimated from M' || e.magnitude ELSE 'in ' || q.basis END,
                                   status_checker.shindo_label(r.min_shindo, 'ja'))
                   WHEN p.site_id IS NOT NULL AND (r.hazard = 'tsunami' OR p.shindo >= q.sh)
                       THEN format('suppressed as aftershock: asked at %s for event %s within %s',
                                   coalesce(status_checker.shindo_label(p.shindo, 'ja'), 'tsunami'), p.event_id, r.repeat_within)
               END AS why,
               CASE WHEN r.hazard = 'tsunami'
                    THEN format('tsunami: %s for %s', q.tsunami_name, q.tsunami_area)
                    ELSE format('%s%s %s ≥ %s', status_checker.shindo_label(q.sh, 'ja'),
                                CASE WHEN q.incomplete THEN ' or more (震度５弱以上未入電)' ELSE '' END,
                                CASE WHEN q.estimated THEN 'estimated from M' || e.magnitude ELSE 'in ' || q.basis END,
                                status_checker.shindo_label(r.min_shindo, 'ja'))
               END AS ok
        FROM eff q
        LEFT JOIN prev p ON p.site_id = q.site_id
    ) x
    LEFT JOIN status_checker.trigger_target asked
           ON asked.tenant_id = r.tenant_id AND asked.rule_id = r.rule_id
          AND asked.event_id = e.event_id AND asked.site_id = x.site_id;
END
$$;
COMMENT ON FUNCTION status_checker._decide(bigint, bigint) IS
'Internal: for a rule and an event, each site of the tenant with its intensity and the decision (ask, asked, skip) and reason';

CREATE FUNCTION status_checker.backtest_rule(rule_id bigint, event_id bigint)
    RETURNS TABLE (site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE sql STABLE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    SELECT d.site_code, d.shindo, d.decision, d.reason
    FROM status_checker._decide(backtest_rule.rule_id, backtest_rule.event_id) d
    ORDER BY d.decision <> 'ask', d.decision <> 'asked', d.shindo DESC NULLS LAST, d.site_code;
END;
COMMENT ON FUNCTION status_checker.backtest_rule(bigint, bigint) IS
'What the rule would do for an event, site by site, without doing it: decision ask (would be asked), asked (already '
'asked for this event) or skip, with the reason';

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

-- ------------------------------------------------------------------ firing

CREATE FUNCTION status_checker._event_title(e status_checker.event) RETURNS text
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN left(concat_ws(' ',
        CASE WHEN e.status = 'training' THEN '【訓練】' END,
        CASE WHEN e.kind = 'tsunami' THEN '津波' WHEN e.max_shindo IS NOT NULL THEN status_checker.shindo_label(e.max_shindo, 'ja') END,
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
'Internal: a short title for a request made by a rule, e.g. 震度6強 石川県能登地方 M7.6 (01/01 16:10 JST)';

-- Run every matching rule for one event (called by ingest_feed_document).
CREATE FUNCTION status_checker._fire_rules(p_event bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    e status_checker.event;
    r status_checker.trigger_rule;
    f status_checker.trigger_fire;
    q status_checker.request;
    v_req bigint;
    n integer;
    total integer := 0;
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event FOR UPDATE;
    IF e.status = 'cancelled' THEN
        -- a withdrawn event withdraws what it asked
        FOR f IN SELECT * FROM status_checker.trigger_fire x WHERE x.event_id = p_event LOOP
            UPDATE status_checker.request x
            SET state = 'cancelled', cancelled_at = pg_catalog.now(),
                cancel_reason = format('The %s event %s was withdrawn by its source (取消).', e.source, e.source_event_id)
            WHERE x.tenant_id = f.tenant_id AND x.request_id = f.request_id AND x.state <> 'cancelled';
        END LOOP;
    END IF;
    FOR r IN SELECT * FROM status_checker.trigger_rule x
             WHERE x.hazard = e.kind AND e.source = ANY (x.sources)
             ORDER BY x.tenant_id, x.rule_id LOOP
        INSERT INTO status_checker.trigger_evaluation AS v (tenant_id, rule_id, event_id, last_revision)
        VALUES (r.tenant_id, r.rule_id, e.event_id, e.revision)
        ON CONFLICT (tenant_id, rule_id, event_id)
        DO UPDATE SET evaluations = v.evaluations + 1, last_revision = excluded.last_revision, evaluated_at = pg_catalog.now();
        IF NOT r.enabled OR e.status = 'cancelled' OR e.status = 'test'
           OR (e.status = 'training') <> r.drill THEN
            CONTINUE;
        END IF;

        IF to_regclass('pg_temp._sc_ask') IS NULL THEN
            CREATE TEMP TABLE _sc_ask (site_id bigint PRIMARY KEY, shindo status_checker.shindo, reason text)
                ON COMMIT DROP;
        END IF;
        TRUNCATE pg_temp._sc_ask;
        INSERT INTO pg_temp._sc_ask
        SELECT d.site_id, d.shindo, d.reason FROM status_checker._decide(r.rule_id, e.event_id) d WHERE d.decision = 'ask';
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n = 0 THEN
            CONTINUE;
        END IF;

        SELECT x.request_id INTO v_req FROM status_checker.trigger_fire x
        WHERE x.tenant_id = r.tenant_id AND x.rule_id = r.rule_id AND x.event_id = e.event_id;
        IF v_req IS NULL THEN
            INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec, event_id, rule_id)
            VALUES (r.tenant_id, r.form_id, status_checker._event_title(e), coalesce(r.message, e.headline),
                    pg_catalog.now() + r.deadline, r.drill,
                    jsonb_build_object('rule', r.rule_id, 'event', e.event_id), e.event_id, r.rule_id)
            RETURNING request_id INTO v_req;
            INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
            SELECT r.tenant_id, v_req, g FROM generate_series(0, 63) g;
            INSERT INTO status_checker.trigger_fire (tenant_id, rule_id, event_id, request_id)
            VALUES (r.tenant_id, r.rule_id, e.event_id, v_req);
        ELSE
            SELECT * INTO q FROM status_checker.request x WHERE x.tenant_id = r.tenant_id AND x.request_id = v_req FOR UPDATE;
            IF q.state <> 'open' THEN
                CONTINUE;   -- closed or cancelled by a person: leave it so
            END IF;
        END IF;

        INSERT INTO status_checker.request_target (tenant_id, request_id, site_id)
        SELECT r.tenant_id, v_req, a.site_id FROM pg_temp._sc_ask a
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE status_checker.request x SET targets = x.targets + n
        WHERE x.tenant_id = r.tenant_id AND x.request_id = v_req;
        INSERT INTO status_checker.trigger_target (tenant_id, rule_id, event_id, site_id, request_id, shindo, reason)
        SELECT r.tenant_id, r.rule_id, e.event_id, a.site_id, v_req, a.shindo, a.reason FROM pg_temp._sc_ask a;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION status_checker._fire_rules(bigint) IS
'Internal: run the trigger rules for one event: create the one request per rule and event, add newly affected sites, '
'cancel requests of a cancelled event; returns the number of sites added';
