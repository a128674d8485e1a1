-- src/aggregate/aggregate.sql — what the crisis team looks at.
--
-- Five views and request_geojson(), all carrying the form's own level
-- labels, colours and icons.  Views are security_invoker so that the
-- caller's privileges (and, with the security domain, row-level security)
-- apply.  request_summary reads the maintained counters (64 slot rows per
-- request), never the targets, so it stays fast for 100,000 targets.

-- Colour and icon for "no answer yet", used by the views and the GeoJSON.
CREATE FUNCTION status_checker._no_answer_style(OUT color text, OUT icon text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SECURITY INVOKER
    RETURN ROW('#9e9e9e'::text, 'help'::text);
GRANT EXECUTE ON FUNCTION status_checker._no_answer_style() TO status_checker_api, status_checker_viewer, status_checker_operator;

-- The levels of a form definition.
CREATE FUNCTION status_checker._form_levels(definition jsonb)
    RETURNS TABLE (level integer, label_ja text, label_en text, color text, icon text)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    BEGIN ATOMIC
        SELECT (l ->> 'level')::integer,
               coalesce(l -> 'label' ->> 'ja', l -> 'label' ->> 'en'),
               coalesce(l -> 'label' ->> 'en', l -> 'label' ->> 'ja'),
               l ->> 'color', l ->> 'icon'
        FROM jsonb_array_elements(definition -> 'levels') AS l
        ORDER BY 1;
    END;
GRANT EXECUTE ON FUNCTION status_checker._form_levels(jsonb) TO status_checker_api, status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.request_summary WITH (security_invoker = true) AS
SELECT r.request_id, r.tenant_id, r.title, r.state, r.drill, r.created_at, r.deadline,
       r.targets, c.responded,
       round(c.responded::numeric / nullif(r.targets, 0), 4) AS response_rate,
       lc.level_counts || jsonb_build_object('none', r.targets - c.responded) AS level_counts,
       lc.worst_level, lc.worst_color, lc.worst_icon,
       r.form_id, r.event_id, r.rule_id, r.closed_at, r.cancelled_at, r.cancel_reason
FROM status_checker.request r
JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
CROSS JOIN LATERAL (
    -- committed counters (64 slots) plus this transaction's own pending change
    SELECT coalesce(sum(x.responded), 0)::integer + coalesce(p.delta[1], 0) AS responded,
           ARRAY(SELECT sum(u.v)::integer + coalesce(p.delta[u.i + 1], 0)
                 FROM status_checker.request_counter y
                 CROSS JOIN LATERAL unnest(y.counts) WITH ORDINALITY AS u(v, i)
                 WHERE y.tenant_id = r.tenant_id AND y.request_id = r.request_id
                 GROUP BY u.i ORDER BY u.i) AS counts
    FROM status_checker.request_counter x,
         (SELECT status_checker._pending_counts(r.tenant_id, r.request_id) AS delta) p
    WHERE x.tenant_id = r.tenant_id AND x.request_id = r.request_id
    GROUP BY p.delta
) c
CROSS JOIN LATERAL (
    SELECT jsonb_object_agg(fl.level::text, c.counts[fl.level + 1] ORDER BY fl.level) AS level_counts,
           max(fl.level) FILTER (WHERE c.counts[fl.level + 1] > 0) AS worst_level,
           (array_agg(fl.color ORDER BY fl.level DESC) FILTER (WHERE c.counts[fl.level + 1] > 0))[1] AS worst_color,
           (array_agg(fl.icon ORDER BY fl.level DESC) FILTER (WHERE c.counts[fl.level + 1] > 0))[1] AS worst_icon
    FROM status_checker._form_levels(f.definition) fl
) lc;
COMMENT ON VIEW status_checker.request_summary IS
'Per request: targets, responded, response rate (0-1), counts per level plus "none" (no answer), the worst level and its colour';
GRANT SELECT ON status_checker.request_summary TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.site_status WITH (security_invoker = true) AS
SELECT t.request_id, t.tenant_id, t.site_id, s.code AS site_code, s.name AS site_name,
       g.path AS group_path, t.level,
       fl.label_ja AS level_label, fl.label_en AS level_label_en,
       coalesce(t.color, (status_checker._no_answer_style()).color) AS color,
       coalesce(t.icon, (status_checker._no_answer_style()).icon) AS icon,
       p.answers, t.first_reported_at, t.last_reported_at, t.report_count,
       s.lat, s.lon, s.municipality_code, t.token_issued_at, p.late
FROM status_checker.request_target t
JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id
LEFT JOIN LATERAL (
    SELECT x.label_ja, x.label_en FROM status_checker.form f, status_checker._form_levels(f.definition) x
    WHERE f.tenant_id = r.tenant_id AND f.form_id = r.form_id AND x.level = t.level
) fl ON true;
COMMENT ON VIEW status_checker.site_status IS
'The status matrix: each target site of each request with its latest level, label, colour, icon and answers (level NULL = no answer)';
GRANT SELECT ON status_checker.site_status TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.group_rollup WITH (security_invoker = true) AS
SELECT x.request_id, x.tenant_id, g.group_id, g.path AS group_path, g.depth,
       x.targets, x.responded, round(x.responded::numeric / x.targets, 4) AS response_rate,
       x.worst_level,
       coalesce((SELECT fl.color FROM status_checker._form_levels(f.definition) fl WHERE fl.level = x.worst_level),
                (status_checker._no_answer_style()).color) AS color
FROM (
    SELECT t.request_id, t.tenant_id, a.group_id,
           count(*)::integer AS targets, count(t.level)::integer AS responded, max(t.level) AS worst_level
    FROM status_checker.request_target t
    JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
    JOIN status_checker.site_group sg ON sg.tenant_id = s.tenant_id AND sg.group_id = s.group_id
    CROSS JOIN LATERAL unnest(sg.ancestors) AS a(group_id)
    GROUP BY t.request_id, t.tenant_id, a.group_id
) x
JOIN status_checker.site_group g ON g.tenant_id = x.tenant_id AND g.group_id = x.group_id
JOIN status_checker.request r ON r.tenant_id = x.tenant_id AND r.request_id = x.request_id
JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id;
COMMENT ON VIEW status_checker.group_rollup IS
'Per request and site group (including all sites of its sub-groups): targets, responded, response rate, worst level and its colour';
GRANT SELECT ON status_checker.group_rollup TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.answer_counts WITH (security_invoker = true) AS
WITH latest AS (
    -- each target's latest answer to each question, arrays expanded
    SELECT t.tenant_id, t.request_id, a.key AS question_key,
           CASE WHEN jsonb_typeof(e.value) = 'string' THEN e.value #>> '{}' ELSE e.value::text END AS choice_value
    FROM status_checker.request_target t
    JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id
    CROSS JOIN LATERAL jsonb_each(p.answers) AS a(key, value)
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(a.value) = 'array' THEN a.value
                                                 ELSE jsonb_build_array(a.value) END) AS e(value)
    WHERE jsonb_typeof(e.value) IN ('string', 'boolean')
), tally AS (
    SELECT tenant_id, request_id, question_key, choice_value, count(*)::integer AS n
    FROM latest GROUP BY 1, 2, 3, 4
), choices AS (
    SELECT r.tenant_id, r.request_id, q.ord AS q_ord, q.value ->> 'key' AS question_key,
           c.ord AS c_ord, c.value ->> 'value' AS choice_value,
           coalesce(c.value -> 'label' ->> 'ja', c.value -> 'label' ->> 'en') AS choice_label
    FROM status_checker.request r
    JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
    CROSS JOIN LATERAL jsonb_array_elements(f.definition -> 'questions') WITH ORDINALITY AS q(value, ord)
    CROSS JOIN LATERAL jsonb_array_elements(CASE q.value ->> 'type'
            WHEN 'boolean' THEN '[{"value": "true", "label": {"ja": "はい", "en": "Yes"}},
                                  {"value": "false", "label": {"ja": "いいえ", "en": "No"}}]'::jsonb
            ELSE coalesce(q.value -> 'choices', '[]') END) WITH ORDINALITY AS c(value, ord)
    WHERE q.value ->> 'type' IN ('single', 'multi', 'boolean')
)
SELECT c.request_id, c.tenant_id, c.question_key, c.choice_value, c.choice_label,
       coalesce(t.n, 0) AS count, c.q_ord AS question_order, c.c_ord AS choice_order
FROM choices c
LEFT JOIN tally t ON t.tenant_id = c.tenant_id AND t.request_id = c.request_id
                 AND t.question_key = c.question_key AND t.choice_value = c.choice_value;
COMMENT ON VIEW status_checker.answer_counts IS
'Per request, choice question and choice: how many sites currently give that answer (latest reports; every choice listed, zeros included)';
GRANT SELECT ON status_checker.answer_counts TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.response_timeline WITH (security_invoker = true) AS
SELECT m.request_id, m.tenant_id, m.minute,
       (sum(m.n) OVER (PARTITION BY m.tenant_id, m.request_id ORDER BY m.minute))::integer AS responded
FROM (
    SELECT t.request_id, t.tenant_id, date_trunc('minute', t.first_reported_at) AS minute, count(*) AS n
    FROM status_checker.request_target t
    WHERE t.first_reported_at IS NOT NULL
    GROUP BY 1, 2, 3
) m;
COMMENT ON VIEW status_checker.response_timeline IS
'Per request and minute in which a site first answered: sites that had answered by the end of that minute (cumulative)';
GRANT SELECT ON status_checker.response_timeline TO status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker.request_geojson(request_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    result jsonb;
BEGIN
    SELECT * INTO r FROM status_checker.request q WHERE q.request_id = request_geojson.request_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist', request_geojson.request_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT jsonb_build_object(
        'type', 'FeatureCollection',
        'request', (SELECT jsonb_build_object('request_id', s.request_id, 'title', s.title, 'state', s.state,
                                              'drill', s.drill, 'targets', s.targets, 'responded', s.responded,
                                              'response_rate', s.response_rate, 'level_counts', s.level_counts,
                                              'worst_level', s.worst_level, 'worst_color', s.worst_color)
                    FROM status_checker.request_summary s
                    WHERE s.tenant_id = r.tenant_id AND s.request_id = r.request_id),
        'features', coalesce(jsonb_agg(jsonb_build_object(
            'type', 'Feature',
            'id', st.site_code,
            'geometry', jsonb_build_object('type', 'Point', 'coordinates', jsonb_build_array(st.lon, st.lat)),
            'properties', jsonb_build_object(
                'site_code', st.site_code, 'site_name', st.site_name, 'group_path', st.group_path,
                'responded', st.level IS NOT NULL, 'level', st.level,
                'level_label', st.level_label, 'level_label_en', st.level_label_en,
                'color', st.color, 'icon', st.icon,
                'report_count', st.report_count, 'last_reported_at', st.last_reported_at))
            ORDER BY st.site_code), '[]'::jsonb))
    INTO result
    FROM status_checker.site_status st
    WHERE st.tenant_id = r.tenant_id AND st.request_id = r.request_id AND st.lat IS NOT NULL;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.request_geojson(bigint) IS
'GeoJSON FeatureCollection of a request''s sites (those with coordinates) with level, label, colour and icon in each feature''s properties; '
'sites without an answer have level null and a grey help icon. The foreign member "request" holds the summary';
ALTER FUNCTION status_checker.request_geojson(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.request_geojson(bigint) TO status_checker_viewer, status_checker_operator;
