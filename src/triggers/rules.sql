-- src/triggers/rules.sql — creating trigger rules: an earthquake or
-- tsunami rule (a minimum 震度, tsunami kinds) and, since 1.1.0, a warning
-- rule (a hazard and a minimum level).
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades.

-- What every rule needs: the caller's tenant, a form of that tenant, a name.
CREATE OR REPLACE FUNCTION status_checker._check_rule(p_tenant bigint, p_name text, p_form bigint) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
BEGIN
    PERFORM status_checker._require_tenant(p_tenant);
    IF NOT EXISTS (SELECT 1 FROM status_checker.form f WHERE f.tenant_id = p_tenant AND f.form_id = p_form) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', p_form, p_tenant
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF btrim(p_name) = '' OR length(p_name) > 200 THEN
        RAISE EXCEPTION 'invalid rule name %', quote_literal(p_name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 200 characters and is not blank.';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._check_rule(bigint, text, bigint) IS
'Internal: refuses a rule of another tenant, with another tenant''s (or no) form, or with a blank or overlong name';

CREATE OR REPLACE FUNCTION status_checker.create_trigger_rule(
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
    PERFORM status_checker._check_rule(create_trigger_rule.tenant_id, create_trigger_rule.name, create_trigger_rule.form_id);
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
CREATE OR REPLACE FUNCTION status_checker.create_trigger_rule(
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
    PERFORM status_checker._check_rule(create_trigger_rule.tenant_id, create_trigger_rule.name, create_trigger_rule.form_id);
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
