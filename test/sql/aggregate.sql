-- aggregation: the five views and the GeoJSON, in the form's colours and icons
SET search_path = status_checker, public;
\set SHOW_CONTEXT never

-- tenant 2 gets a request and a report too; nothing of it may show in tenant 1's rows
SELECT create_request(2, 3, '東京商事 安否', now() + interval '3 hours') AS t2_request \gset
SELECT submit_report_for(:t2_request, 'T001', '{"building": "severe", "detail": "火災", "injured": 5, "operation": "stopped"}');

SELECT request_id, tenant_id, title, state, drill, targets, responded, response_rate, level_counts,
       worst_level, worst_color, worst_icon, event_id, rule_id
FROM request_summary ORDER BY request_id;

SELECT site_code, site_name, group_path, level, level_label, level_label_en, color, icon,
       answers ->> 'building' AS building, report_count, lat, lon
FROM site_status WHERE request_id = 1 ORDER BY site_code;

SELECT group_path, depth, targets, responded, response_rate, worst_level, color
FROM group_rollup WHERE request_id = 1 ORDER BY group_path;

SELECT question_key, choice_value, choice_label, count
FROM answer_counts WHERE request_id = 1 ORDER BY question_order, choice_order;

SELECT count(*) AS timeline_rows, max(responded) AS responded_at_end,
       bool_and(minute = date_trunc('minute', minute)) AS whole_minutes
FROM response_timeline WHERE request_id = 1;

-- the counters agree with the targets for every request
SELECT s.request_id, s.responded = x.responded AS responded_ok, s.level_counts = x.level_counts AS counts_ok
FROM request_summary s
JOIN (SELECT t.request_id, count(t.level)::integer AS responded,
             (SELECT jsonb_object_agg(l.level::text, (SELECT count(*) FROM request_target u
                                                     WHERE u.request_id = t.request_id AND u.level = l.level))
              FROM request r2 JOIN form f ON f.form_id = r2.form_id, _form_levels(f.definition) l
              WHERE r2.request_id = t.request_id)
             || jsonb_build_object('none', count(*) - count(t.level)) AS level_counts
      FROM request_target t GROUP BY t.request_id) x USING (request_id)
ORDER BY 1;

-- tenants never mix
SELECT DISTINCT tenant_id FROM site_status WHERE request_id = :t2_request;
SELECT count(*) AS foreign_rows FROM site_status s JOIN request r USING (request_id) WHERE s.tenant_id <> r.tenant_id;
SELECT count(*) AS foreign_rollup_rows FROM group_rollup g JOIN site_group sg USING (group_id) WHERE g.tenant_id <> sg.tenant_id;

-- GeoJSON: only sites with coordinates, each with status, colour and icon
SELECT request_geojson(1) -> 'type' AS type,
       jsonb_array_length(request_geojson(1) -> 'features') AS features,
       request_geojson(1) -> 'request' -> 'level_counts' AS level_counts;
SELECT f -> 'id' AS id, f -> 'geometry' AS geometry,
       f -> 'properties' ->> 'level' AS level, f -> 'properties' ->> 'color' AS color,
       f -> 'properties' ->> 'icon' AS icon, f -> 'properties' ->> 'responded' AS responded
FROM jsonb_array_elements(request_geojson(1) -> 'features') f ORDER BY 1;
SELECT request_geojson(999);
-- a site without coordinates is counted but not drawn
SELECT upsert_site(1, 'NOMAP', '座標なし', '1310100', NULL, NULL) > 0 AS added;
SELECT create_request(1, 1, '地図', now() + interval '1 hour', '{"sites": ["NOMAP", "KNZ01"]}') AS map_request \gset
SELECT (SELECT targets FROM request_summary WHERE request_id = :map_request) AS targets,
       jsonb_array_length(request_geojson(:map_request) -> 'features') AS drawn;
