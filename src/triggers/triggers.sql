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
GRANT EXECUTE ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) TO status_checker_api, status_checker_operator, status_checker_viewer;

-- ---------------------------------------------------------- rule management

-- create_trigger_rule (earthquake and tsunami; warnings): src/triggers/rules.sql


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

-- _decide_all and _decide_warning: src/triggers/decide.sql

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
-- _decide runs as its caller (trigger_decision is security_invoker): the
-- readers of the view need the NULL check it starts with (1.1.0; before,
-- a mapped viewer's SELECT on trigger_decision failed)
GRANT EXECUTE ON FUNCTION status_checker._no_nulls(text, text[], text[]) TO status_checker_api, status_checker_viewer, status_checker_operator;

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


-- _fire_rules: src/triggers/fire.sql
