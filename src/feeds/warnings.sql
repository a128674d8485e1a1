-- src/feeds/warnings.sql — weather, landslide, record-rain, flood and
-- volcano warnings (1.1.0, issue 21).
--
-- A warning telegram (VPWW53/54 気象警報・注意報, VXWW50 土砂災害警戒情報,
-- VPOA50 記録的短時間大雨情報, VFVO50 噴火警報・予報, VXKO 指定河川洪水予報)
-- is parsed in C (src/feeds/feed_jma_weather.c) into one model per
-- telegram: its product family (weather, landslide, record_rain, volcano,
-- flood), its scope (the 府県予報区, the volcano, the river forecast area,
-- or for record_rain JMA's EventID) and a list of warnings per area, each
-- with JMA's kind (code and name) and status (発表, 継続, 解除, …).
--
-- Here each warning is given a hazard (rain, landslide, flood, storm_surge,
-- wind, snow, wave, volcano, other) and a level (the 警戒レベル it
-- corresponds to, 1–5, or the 噴火警戒レベル) from the table warning_kind,
-- which the operator can extend: a name JMA starts with レベルN (the 2026
-- level-named warnings, レベル５大雨特別警報, レベル４土砂災害危険警報)
-- carries its level itself.  The warnings of one hazard in one scope form
-- an episode: an event (kind = the hazard) opened by the first warning in
-- force and ended when none is in force any more; each telegram is a
-- revision of it (event_product, as for earthquakes), and event_warning
-- keeps, per area and kind, since when and until when it was in force.
-- Trigger rules then ask sites by the highest level their area reached in
-- the episode (src/triggers/triggers.sql, _decide_all).

CREATE TABLE status_checker.warning_kind (
    family     text NOT NULL CHECK (family IN ('weather', 'landslide', 'record_rain', 'volcano', 'flood')),
    kind_name  text NOT NULL,
    kind_code  text,
    hazard     text NOT NULL CHECK (hazard IN ('rain', 'landslide', 'flood', 'storm_surge', 'wind', 'snow',
                                               'wave', 'volcano', 'other')),
    level      integer CHECK (level BETWEEN 1 AND 5),   -- NULL: not a warning (なし, 解除)
    label      text,                                    -- the name shown, when JMA's is not enough (警戒 → 土砂災害警戒情報)
    builtin    boolean NOT NULL DEFAULT false,          -- written by the install script (pg_dump keeps the others)
    PRIMARY KEY (family, kind_name),
    CHECK (length(kind_name) BETWEEN 1 AND 100 AND length(label) <= 100 AND length(kind_code) <= 10)
);
CREATE INDEX ON status_checker.warning_kind (family, kind_code);
COMMENT ON TABLE status_checker.warning_kind IS
'JMA warning kinds per product family with the hazard they belong to and the 警戒レベル (1-5) they correspond to '
'(噴火警戒レベル for volcanoes); matched by name first, then by code; the operator may add rows (new JMA names; '
'builtin marks the rows the extension installs)';
GRANT SELECT ON status_checker.warning_kind TO status_checker_viewer, status_checker_operator;
GRANT INSERT, UPDATE, DELETE ON status_checker.warning_kind TO status_checker_operator;
-- the operator adds and changes kinds of its own; the built-in ones stay as
-- installed (and pg_dump, which keeps the rows not built in, loses nothing)
ALTER TABLE status_checker.warning_kind ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON status_checker.warning_kind FOR SELECT USING (true);
CREATE POLICY operator_kinds ON status_checker.warning_kind TO status_checker_operator
    USING (NOT builtin) WITH CHECK (NOT builtin);

-- JMA's kinds (気象警報・注意報 code table; 土砂災害警戒情報; 記録的短時間大雨
-- 情報, issued since 2021 only where キキクル shows 危険, i.e. 警戒レベル4
-- 相当; 噴火警報・予報; 指定河川洪水予報) and the 2026 level-named names.
INSERT INTO status_checker.warning_kind (family, kind_name, kind_code, hazard, level, label) VALUES
    ('weather', '大雨特別警報', '33', 'rain', 5, NULL),
    ('weather', '大雨警報', '03', 'rain', 3, NULL),
    ('weather', '大雨注意報', '10', 'rain', 2, NULL),
    ('weather', '洪水警報', '04', 'flood', 3, NULL),
    ('weather', '洪水注意報', '18', 'flood', 2, NULL),
    ('weather', '暴風特別警報', '35', 'wind', 5, NULL),
    ('weather', '暴風警報', '05', 'wind', 3, NULL),
    ('weather', '強風注意報', '15', 'wind', 2, NULL),
    ('weather', '暴風雪特別警報', '32', 'snow', 5, NULL),
    ('weather', '暴風雪警報', '02', 'snow', 3, NULL),
    ('weather', '風雪注意報', '13', 'snow', 2, NULL),
    ('weather', '大雪特別警報', '36', 'snow', 5, NULL),
    ('weather', '大雪警報', '06', 'snow', 3, NULL),
    ('weather', '大雪注意報', '12', 'snow', 2, NULL),
    ('weather', '波浪特別警報', '37', 'wave', 5, NULL),
    ('weather', '波浪警報', '07', 'wave', 3, NULL),
    ('weather', '波浪注意報', '16', 'wave', 2, NULL),
    -- 高潮警報 is 警戒レベル4相当 in JMA's own table (高潮注意報 2, or 3 where it may become a warning)
    ('weather', '高潮特別警報', '38', 'storm_surge', 5, NULL),
    ('weather', '高潮警報', '08', 'storm_surge', 4, NULL),
    ('weather', '高潮注意報', '19', 'storm_surge', 2, NULL),
    ('weather', 'なだれ注意報', '22', 'snow', 2, NULL),
    ('weather', '着雪注意報', '26', 'snow', 2, NULL),
    ('weather', '着氷注意報', '25', 'snow', 2, NULL),
    ('weather', '融雪注意報', '17', 'flood', 2, NULL),
    ('weather', '雷注意報', '14', 'other', 2, NULL),
    ('weather', '濃霧注意報', '20', 'other', 2, NULL),
    ('weather', '乾燥注意報', '21', 'other', 2, NULL),
    ('weather', '低温注意報', '23', 'other', 2, NULL),
    ('weather', '霜注意報', '24', 'other', 2, NULL),
    -- 2026: JMA's level-named warnings (the level is in the name as well)
    ('weather', 'レベル５大雨特別警報', NULL, 'rain', 5, NULL),
    ('weather', 'レベル４大雨危険警報', NULL, 'rain', 4, NULL),
    ('weather', 'レベル３大雨警報', NULL, 'rain', 3, NULL),
    ('weather', 'レベル２大雨注意報', NULL, 'rain', 2, NULL),
    ('weather', 'レベル５土砂災害特別警報', NULL, 'landslide', 5, NULL),
    ('weather', 'レベル４土砂災害危険警報', NULL, 'landslide', 4, NULL),
    ('weather', 'レベル３土砂災害警報', NULL, 'landslide', 3, NULL),
    ('weather', 'レベル２土砂災害注意報', NULL, 'landslide', 2, NULL),
    ('weather', 'レベル５高潮特別警報', NULL, 'storm_surge', 5, NULL),
    ('weather', 'レベル４高潮危険警報', NULL, 'storm_surge', 4, NULL),
    ('weather', 'レベル３高潮警報', NULL, 'storm_surge', 3, NULL),
    ('weather', 'レベル２高潮注意報', NULL, 'storm_surge', 2, NULL),
    ('weather', 'レベル５氾濫特別警報', NULL, 'flood', 5, NULL),
    ('weather', 'レベル４氾濫危険警報', NULL, 'flood', 4, NULL),
    ('weather', 'レベル３氾濫警報', NULL, 'flood', 3, NULL),
    ('weather', 'レベル２氾濫注意報', NULL, 'flood', 2, NULL),
    ('landslide', '警戒', '3', 'landslide', 4, '土砂災害警戒情報'),
    ('landslide', 'レベル４土砂災害危険警報', NULL, 'landslide', 4, NULL),
    ('landslide', 'レベル５土砂災害特別警報', NULL, 'landslide', 5, NULL),
    ('landslide', '解除', '1', 'landslide', NULL, '土砂災害警戒情報解除'),
    ('landslide', 'なし', '0', 'landslide', NULL, NULL),
    ('record_rain', '記録的短時間大雨情報', '1', 'rain', 4, NULL),
    ('record_rain', 'なし', '0', 'rain', NULL, NULL),
    ('volcano', '噴火警報（居住地域）', '31', 'volcano', 4, NULL),
    ('volcano', '噴火警報', '01', 'volcano', 4, '噴火警報（居住地域）'),
    ('volcano', '火口周辺警報', '02', 'volcano', 3, '噴火警報（火口周辺）'),
    ('volcano', '噴火警報（火口周辺）', '32', 'volcano', 3, NULL),
    ('volcano', '噴火警報（周辺海域）', '33', 'volcano', 3, NULL),
    ('volcano', '噴火予報', '05', 'volcano', 1, NULL),
    ('volcano', '噴火警報解除', '06', 'volcano', NULL, NULL),
    ('volcano', 'レベル５（避難）', '15', 'volcano', 5, NULL),
    ('volcano', 'レベル４（高齢者等避難）', '14', 'volcano', 4, NULL),
    ('volcano', 'レベル３（入山規制）', '13', 'volcano', 3, NULL),
    ('volcano', 'レベル２（火口周辺規制）', '12', 'volcano', 2, NULL),
    ('volcano', 'レベル１（活火山であることに留意）', '11', 'volcano', 1, NULL),
    ('flood', '氾濫発生情報', '50', 'flood', 5, NULL),
    ('flood', '氾濫危険情報', '40', 'flood', 4, NULL),
    ('flood', '氾濫警戒情報', '30', 'flood', 3, NULL),
    ('flood', '氾濫注意情報', '20', 'flood', 2, NULL),
    ('flood', '氾濫注意情報解除', '10', 'flood', NULL, NULL),
    ('flood', 'レベル５氾濫特別警報', NULL, 'flood', 5, NULL),
    ('flood', 'レベル４氾濫危険警報', NULL, 'flood', 4, NULL),
    ('flood', 'レベル３氾濫警報', NULL, 'flood', 3, NULL),
    ('flood', 'レベル２氾濫注意報', NULL, 'flood', 2, NULL);
UPDATE status_checker.warning_kind SET builtin = true;

CREATE TABLE status_checker.event_warning (
    event_id    bigint NOT NULL REFERENCES status_checker.event ON DELETE CASCADE,
    scope       text NOT NULL CHECK (scope IN ('pref', 'area1', 'area_group', 'city', 'volcano', 'river', 'river_area')),
    code        text NOT NULL,
    kind_name   text NOT NULL,
    name        text,
    kind_code   text,
    label       text NOT NULL,
    level       integer CHECK (level BETWEEN 1 AND 5),
    status      text NOT NULL,
    since       timestamptz NOT NULL,
    until       timestamptz,
    product     text NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (event_id, scope, code, kind_name)
);
CREATE INDEX ON status_checker.event_warning (event_id, code) WHERE scope = 'city';
COMMENT ON TABLE status_checker.event_warning IS
'Each warning of a weather, landslide, rain, flood or volcano episode per area and kind: level, JMA''s latest status, '
'since when it is in force and until when (NULL while in force)';
GRANT SELECT ON status_checker.event_warning TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.hazard_warning WITH (security_invoker = true) AS
SELECT w.code AS municipality, w.name AS municipality_name, w.label AS kind, w.level, w.status, w.since, w.until,
       w.event_id, e.kind AS hazard, e.status AS event_status, e.source_event_id, e.extra ->> 'scope_name' AS scope_name,
       w.kind_code, w.kind_name, w.product, w.updated_at
FROM status_checker.event_warning w
JOIN status_checker.event e ON e.event_id = w.event_id
WHERE w.scope = 'city';
COMMENT ON VIEW status_checker.hazard_warning IS
'One row per municipality and warning kind of a weather, landslide, rain, flood or volcano episode: municipality '
'(7-digit JMA code, as a site''s), kind (JMA''s name, e.g. 大雨特別警報, 土砂災害警戒情報, 噴火警報（居住地域）), level '
'(the 警戒レベル it corresponds to, 1-5, or the 噴火警戒レベル), status (発表, 継続, 解除, …), since, until (NULL while '
'in force), and the episode (event_id, hazard, event status, scope)';
GRANT SELECT ON status_checker.hazard_warning TO status_checker_viewer, status_checker_operator;

-- The hazards rules may name: each warning hazard, or any of them.
CREATE FUNCTION status_checker._rule_watches(rule_hazard text, event_kind text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN rule_hazard = event_kind
           OR (rule_hazard = 'any_warning'
               AND event_kind IN ('rain', 'landslide', 'flood', 'storm_surge', 'wind', 'snow', 'wave', 'volcano', 'other'));
COMMENT ON FUNCTION status_checker._rule_watches(text, text) IS
'Internal: whether a rule of the hazard looks at an event of the kind (any_warning: every weather, landslide, flood and volcano hazard)';
GRANT EXECUTE ON FUNCTION status_checker._rule_watches(text, text) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- The level of a レベルN name (full- or half-width digit), else NULL.
CREATE FUNCTION status_checker._level_in_name(kind_name text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN translate(substring(kind_name FROM '^レベル([1-5１-５])'), '１２３４５', '12345')::integer;
COMMENT ON FUNCTION status_checker._level_in_name(text) IS
'Internal: the level a JMA kind name carries (レベル５大雨特別警報 → 5, レベル３（入山規制） → 3), else NULL';

-- A warning of the model with its hazard, level, label and whether it is in
-- force.  Matched by name, then by code (JMA's own kind first: an
-- operator's kind with the same code does not take its place); a name that is in neither but
-- says its level (レベルN…) takes the hazard its words name.
CREATE FUNCTION status_checker._classify_warnings(ev jsonb)
    RETURNS TABLE (ord bigint, scope text, code text, name text, kind_code text, kind_name text, status text,
                   hazard text, level integer, label text, in_force boolean)
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    SELECT w.ord, w.x ->> 'scope', w.x ->> 'code', w.x ->> 'name', w.x ->> 'kind_code', k.kname, w.x ->> 'status',
           k.hazard, k.level, k.label,
           k.level IS NOT NULL
           AND coalesce(w.x ->> 'status', '') NOT LIKE '%解除%' AND coalesce(w.x ->> 'status', '') NOT IN ('なし', '発表警報・注意報はなし')
    FROM jsonb_array_elements(coalesce(ev -> 'warnings', '[]')) WITH ORDINALITY AS w(x, ord)
    CROSS JOIN LATERAL (
        SELECT coalesce(w.x ->> 'kind_name', kc.kind_name, w.x ->> 'kind_code') AS kname,
               coalesce(kn.hazard, kc.hazard,
                        CASE WHEN (w.x ->> 'kind_name') IS NULL THEN NULL
                             WHEN w.x ->> 'kind_name' ~ '土砂' THEN 'landslide'
                             WHEN w.x ->> 'kind_name' ~ '(洪水|氾濫|融雪)' THEN 'flood'
                             WHEN w.x ->> 'kind_name' ~ '高潮' THEN 'storm_surge'
                             WHEN w.x ->> 'kind_name' ~ '(暴風雪|大雪|風雪|着雪|着氷|なだれ)' THEN 'snow'
                             WHEN w.x ->> 'kind_name' ~ '(暴風|強風)' THEN 'wind'
                             WHEN w.x ->> 'kind_name' ~ '波浪' THEN 'wave'
                             WHEN w.x ->> 'kind_name' ~ '(大雨|雨)' THEN 'rain'
                             WHEN ev ->> 'kind' = 'volcano' THEN 'volcano'
                             WHEN status_checker._level_in_name(w.x ->> 'kind_name') IS NOT NULL THEN 'other'
                        END) AS hazard,
               -- the level: a name that says it; a volcano's municipalities take the 噴火警戒レベル; else the table's
               coalesce(status_checker._level_in_name(w.x ->> 'kind_name'),
                        CASE WHEN ev ->> 'kind' = 'volcano' AND w.x ->> 'scope' = 'city' AND coalesce(kn.level, kc.level) IS NOT NULL
                             THEN (ev ->> 'volcano_level')::integer END,
                        kn.level, kc.level) AS level,
               coalesce(kn.label, kc.label, w.x ->> 'kind_name', kc.kind_name, w.x ->> 'kind_code') AS label
        FROM (SELECT 1) one
        LEFT JOIN status_checker.warning_kind kn ON kn.family = ev ->> 'kind' AND kn.kind_name = w.x ->> 'kind_name'
        LEFT JOIN LATERAL (SELECT k.* FROM status_checker.warning_kind k
                           WHERE k.family = ev ->> 'kind' AND k.kind_code = w.x ->> 'kind_code'
                           ORDER BY k.builtin DESC, k.kind_name LIMIT 1) kc ON kn.kind_name IS NULL
    ) k
    WHERE w.x ->> 'code' IS NOT NULL AND k.kname IS NOT NULL;
END;
COMMENT ON FUNCTION status_checker._classify_warnings(jsonb) IS
'Internal: the warnings of a parsed warning telegram with their hazard, level (警戒レベル / 噴火警戒レベル), label and whether in force';

-- Store one warning telegram: per hazard it concerns, the episode it
-- revises (opened if needed), its product revision and its warnings per
-- area.  Returns the episodes that changed.
CREATE FUNCTION status_checker._ingest_warnings(ev jsonb) RETURNS bigint[]
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    v_family text := ev ->> 'kind';
    v_scope text := ev ->> 'source_event_id';
    v_product text := ev ->> 'product';
    v_status text := ev ->> 'status';
    v_info text := ev ->> 'info_type';
    v_issued timestamptz := (ev ->> 'issued_at')::timestamptz;
    v_prefix text;
    w jsonb;            -- the classified warnings, with the places of VPOA50 as municipalities
    hz text;
    v_event bigint;
    said jsonb;         -- scope|code|kind → JMA's status in this telegram
    live jsonb;         -- scope|code|kind in force (of the hazard at hand)
    replaced jsonb;     -- scope|code → the highest kind of the hazard in force there
    changed bigint[] := '{}';
BEGIN
    IF v_family IS NULL OR v_scope IS NULL OR v_product IS NULL OR v_issued IS NULL OR v_status IS NULL
       OR v_info IS NULL OR v_family NOT IN ('weather', 'landslide', 'record_rain', 'volcano', 'flood') THEN
        RAISE EXCEPTION 'incomplete warning model: %', left(ev::text, 200) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- episodes of a training or test telegram are kept apart from real ones;
    -- the status is part of every key (weather:320000:actual:…), and a
    -- scope cannot reach into the next part of it (JMA's EventIDs are text)
    v_prefix := v_family || ':' || replace(v_scope, ':', '_') || ':' || v_status || ':';

    SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.ord), '[]') INTO w FROM (
        SELECT c.ord, c.scope, c.code, c.name, c.kind_code, c.kind_name, c.status, c.hazard, c.level, c.label, c.in_force
        FROM status_checker._classify_warnings(ev) c WHERE c.hazard IS NOT NULL
        UNION ALL
        -- 記録的短時間大雨情報 names places (大阪市中央区, 札幌市中央区付近): their municipalities
        SELECT 100000 + p.ord, 'city', m.code, m.name, '1', '記録的短時間大雨情報', '発表', 'rain', k.level, '記録的短時間大雨情報', true
        FROM jsonb_array_elements(coalesce(ev -> 'places', '[]')) WITH ORDINALITY AS p(x, ord)
        JOIN status_checker.warning_kind k ON k.family = 'record_rain' AND k.kind_code = '1'
        CROSS JOIN LATERAL (SELECT j.code, j.name FROM status_checker.jma_municipality j
                            WHERE j.name IN (p.x ->> 'name', regexp_replace(p.x ->> 'name', '^(.+?)市(.+区)$', '\1\2'))
                            ORDER BY j.name = p.x ->> 'name' DESC, j.code LIMIT 1) m
        WHERE v_family = 'record_rain') c;

    -- scope|code|kind → JMA's word for it in this telegram (発表, 継続, 解除, …)
    SELECT coalesce(jsonb_object_agg(k.key, k.status), '{}') INTO said
    FROM (SELECT DISTINCT ON (key) concat_ws('|', c ->> 'scope', c ->> 'code', c ->> 'kind_name') AS key, c ->> 'status' AS status
          FROM jsonb_array_elements(w) c WHERE c ->> 'status' IS NOT NULL
          ORDER BY key, (c ->> 'in_force')::boolean DESC) k;

    -- a 取消 whose Body is empty may name its episode by JMA's EventID only
    -- (土砂災害警戒情報: 福岡県土砂災害警戒情報): the episode that EventID opened
    -- (only a telegram with nothing of its own: one with a Body names its
    -- scope, and withdraws nothing of another scope's)
    IF v_info = 'cancelled' AND nullif(ev ->> 'jma_event_id', '') IS NOT NULL
       AND jsonb_array_length(coalesce(ev -> 'warnings', '[]')) = 0
       AND NOT EXISTS (SELECT 1 FROM status_checker.event e
                       WHERE e.source = 'jma' AND left(e.source_event_id, length(v_prefix)) = v_prefix) THEN
        SELECT left(e.source_event_id, length(e.source_event_id) - strpos(reverse(e.source_event_id), ':') + 1)
        INTO v_scope
        FROM status_checker.event e
        WHERE e.source = 'jma' AND e.extra ->> 'family' = v_family AND e.extra ->> 'jma_event_id' = ev ->> 'jma_event_id'
          AND e.status = v_status AND e.ended_at IS NULL
        ORDER BY e.event_id DESC LIMIT 1;
        IF v_scope IS NOT NULL THEN
            v_prefix := v_scope;   -- family:scope:status: of that episode
        END IF;
    END IF;

    -- an episode no telegram has revised for three days has ended (JMA
    -- repeats warnings in force several times a day): a telegram after
    -- that opens a new one instead of reviving it
    UPDATE status_checker.event e SET ended_at = p.last_issued, updated_at = pg_catalog.now()
    FROM status_checker.event o
    CROSS JOIN LATERAL (SELECT max(x.issued_at) AS last_issued FROM status_checker.event_product x
                        WHERE x.event_id = o.event_id) p
    WHERE o.source = 'jma' AND left(o.source_event_id, length(v_prefix)) = v_prefix AND o.ended_at IS NULL
      AND e.event_id = o.event_id AND p.last_issued < v_issued - interval '3 days';

    -- the hazards concerned: those the telegram names, and those whose
    -- episode in this scope is still open (a telegram that no longer lists
    -- a hazard ends its episode)
    FOR hz IN
        SELECT DISTINCT h FROM (
            SELECT x ->> 'hazard' AS h FROM jsonb_array_elements(w) x
            UNION ALL
            SELECT e.kind FROM status_checker.event e
            WHERE e.source = 'jma' AND left(e.source_event_id, length(v_prefix)) = v_prefix AND e.ended_at IS NULL
              AND v_family <> 'record_rain') s
        ORDER BY 1
    LOOP
        -- the episode: the open one (for record_rain, JMA's EventID is the episode) …
        SELECT e.event_id INTO v_event FROM status_checker.event e
        WHERE e.source = 'jma' AND e.kind = hz AND left(e.source_event_id, length(v_prefix)) = v_prefix
          AND (e.ended_at IS NULL OR v_family = 'record_rain')
        ORDER BY e.event_id DESC LIMIT 1 FOR UPDATE;
        IF v_event IS NULL THEN
            -- … or a new one, opened only by a warning in force (a 解除 or
            -- なし alone opens nothing), never by a withdrawal, and never by
            -- a telegram older than one an episode of this scope already had
            -- (a late delivery does not reopen what has ended)
            IF v_info = 'cancelled' OR NOT EXISTS (SELECT 1 FROM jsonb_array_elements(w) x
                                                   WHERE x ->> 'hazard' = hz AND (x ->> 'in_force')::boolean)
               OR EXISTS (SELECT 1 FROM status_checker.event e
                          JOIN status_checker.event_product p ON p.event_id = e.event_id AND p.product = v_product
                          WHERE e.source = 'jma' AND e.kind = hz AND left(e.source_event_id, length(v_prefix)) = v_prefix
                            AND p.issued_at >= v_issued) THEN
                CONTINUE;
            END IF;
            INSERT INTO status_checker.event (source, kind, source_event_id, status, origin_time)
            VALUES ('jma', hz, v_prefix || to_char(v_issued AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"'), v_status, v_issued)
            ON CONFLICT (source, kind, source_event_id) DO NOTHING
            RETURNING event_id INTO v_event;
            IF v_event IS NULL THEN   -- the same telegram again, or a concurrent ingest
                SELECT e.event_id INTO v_event FROM status_checker.event e
                WHERE e.source = 'jma' AND e.kind = hz
                  AND e.source_event_id = v_prefix || to_char(v_issued AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"')
                FOR UPDATE;
            END IF;
        END IF;

        -- one revision per product: the same or an older telegram changes nothing
        IF NOT status_checker._store_product(v_event, ev, 2, ev - 'warnings' - 'places') THEN
            CONTINUE;
        END IF;

        IF v_info <> 'cancelled' THEN
            -- the kinds in force: new ones since now, known ones keep their since
            INSERT INTO status_checker.event_warning AS x
                (event_id, scope, code, kind_name, name, kind_code, label, level, status, since, until, product, updated_at)
            SELECT DISTINCT ON (c ->> 'scope', c ->> 'code', c ->> 'kind_name')
                   v_event, c ->> 'scope', c ->> 'code', c ->> 'kind_name', c ->> 'name', c ->> 'kind_code', c ->> 'label',
                   (c ->> 'level')::integer, coalesce(c ->> 'status', '発表'), v_issued,
                   CASE WHEN v_family = 'record_rain' THEN v_issued END,   -- information, not a lasting warning
                   v_product, v_issued
            FROM jsonb_array_elements(w) c
            WHERE c ->> 'hazard' = hz AND (c ->> 'in_force')::boolean
            ORDER BY c ->> 'scope', c ->> 'code', c ->> 'kind_name', (c ->> 'ord')::bigint
            ON CONFLICT (event_id, scope, code, kind_name) DO UPDATE
            SET status = excluded.status, level = excluded.level, label = excluded.label, name = excluded.name,
                until = excluded.until, product = excluded.product, updated_at = excluded.updated_at;
            -- the kinds in force before that this telegram lifts or no longer
            -- lists (a telegram lists everything in force in its scope)
            IF v_family <> 'record_rain' THEN
                -- maps built once (a prefecture's telegram lists thousands of
                -- entries): the kinds of the hazard in force, and scope|code →
                -- the highest of them there (said: built before the loop)
                SELECT coalesce(jsonb_object_agg(concat_ws('|', c ->> 'scope', c ->> 'code', c ->> 'kind_name'), true), '{}')
                INTO live
                FROM jsonb_array_elements(w) c
                WHERE c ->> 'hazard' = hz AND (c ->> 'in_force')::boolean;
                SELECT coalesce(jsonb_object_agg(t.key, t.label), '{}') INTO replaced
                FROM (SELECT DISTINCT ON (c ->> 'scope', c ->> 'code') concat_ws('|', c ->> 'scope', c ->> 'code') AS key, c ->> 'label' AS label
                      FROM jsonb_array_elements(w) c
                      WHERE c ->> 'hazard' = hz AND (c ->> 'in_force')::boolean
                      ORDER BY c ->> 'scope', c ->> 'code', (c ->> 'level')::integer DESC NULLS LAST) t;
                UPDATE status_checker.event_warning x
                SET until = v_issued, updated_at = v_issued,
                    -- JMA's word when it gives one; 切替 when another kind of
                    -- the hazard took its place there (警報 → 特別警報); else 解除
                    status = coalesce(said ->> concat_ws('|', x.scope, x.code, x.kind_name),
                                      '切替（' || (replaced ->> concat_ws('|', x.scope, x.code)) || '）',
                                      '解除')
                WHERE x.event_id = v_event AND x.until IS NULL
                  AND NOT live ? concat_ws('|', x.scope, x.code, x.kind_name);
            END IF;
        END IF;
        PERFORM status_checker._recompute_episode(v_event, v_issued);
        changed := changed || v_event;
    END LOOP;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION status_checker._ingest_warnings(jsonb) IS
'Internal: store one parsed warning telegram (VPWW53/54, VXWW50, VPOA50, VFVO50, VXKO) in the episodes of the hazards '
'it concerns (idempotent per product revision); returns the episodes that changed';

-- An episode's fields from its products and warnings.
CREATE FUNCTION status_checker._recompute_episode(p_event bigint, p_at timestamptz) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    live integer;
    base text;
    latest jsonb;
    top record;
BEGIN
    SELECT count(*) FILTER (WHERE p.info_type <> 'cancelled'),
           (array_agg(p.status ORDER BY p.issued_at DESC))[1]
    INTO live, base
    FROM status_checker.event_product p WHERE p.event_id = p_event;
    SELECT p.document INTO latest FROM status_checker.event_product p
    WHERE p.event_id = p_event ORDER BY p.info_type <> 'cancelled' DESC, p.issued_at DESC LIMIT 1;
    -- the highest level reached, and its kind (for titles)
    SELECT w.level, w.label INTO top FROM status_checker.event_warning w
    WHERE w.event_id = p_event AND w.level IS NOT NULL
    ORDER BY w.level DESC, w.until IS NULL DESC, w.since LIMIT 1;

    -- a 取消 withdraws the telegram it names: an episode that had no other
    -- is withdrawn (and its requests cancelled); a later one is recorded,
    -- and the warnings stay as they were until the next telegram restates
    -- what is in force (each lists everything in its scope)
    UPDATE status_checker.event e SET
        status = CASE WHEN live = 0 AND e.revision <= 1 THEN 'cancelled'
                      WHEN live = 0 THEN e.status ELSE base END,
        headline = coalesce(nullif(latest ->> 'headline', ''), latest ->> 'title', e.headline),
        epicenter_name = coalesce(latest ->> 'scope_name', e.epicenter_name),
        max_level = top.level,
        best_product = (SELECT p.product FROM status_checker.event_product p WHERE p.event_id = p_event
                        ORDER BY p.info_type <> 'cancelled' DESC, p.issued_at DESC LIMIT 1),
        detail_level = 2,
        ended_at = CASE WHEN live = 0 AND e.revision <= 1 THEN coalesce(e.ended_at, p_at)
                        WHEN EXISTS (SELECT 1 FROM status_checker.event_warning w
                                     WHERE w.event_id = p_event AND w.until IS NULL) THEN NULL
                        ELSE coalesce(e.ended_at, p_at) END,
        extra = e.extra || jsonb_strip_nulls(jsonb_build_object(
                    'family', latest ->> 'kind', 'scope_name', latest ->> 'scope_name', 'top_kind', top.label,
                    'office', latest ->> 'office', 'title', latest ->> 'title', 'target_time', latest -> 'target_time',
                    'jma_event_id', nullif(latest ->> 'jma_event_id', ''),
                    'volcano_level', latest -> 'volcano_level')),
        revision = e.revision + 1,
        updated_at = pg_catalog.now()
    WHERE e.event_id = p_event;
END
$$;
COMMENT ON FUNCTION status_checker._recompute_episode(bigint, timestamptz) IS
'Internal: recompute a warning episode''s status, highest level, headline and end (when no warning is in force any more)';
