-- demo/show.sql — what the crisis team sees.
\set ON_ERROR_STOP on
\pset footer off
SET search_path = status_checker, public;
SELECT min(request_id) AS request FROM request WHERE rule_id IS NOT NULL \gset
\echo
\echo '── request_summary ───────────────────────────────────────────────'
SELECT request_id, title, state, targets, responded, response_rate, level_counts, worst_level, worst_color
FROM request_summary WHERE request_id = :request;
\echo '── group_rollup (worst status per group) ───────────────────────────'
SELECT repeat('  ', depth) || split_part(group_path, '/', depth + 1) AS "group", targets, responded,
       response_rate, worst_level, color
FROM group_rollup WHERE request_id = :request ORDER BY group_path;
\echo '── site_status (worst first, then those that have not answered) ────'
SELECT site_code, site_name, group_path, coalesce(level_label, '未回答 / no answer') AS status, color, icon,
       answers ->> 'operation' AS operation, report_count AS reports
FROM site_status WHERE request_id = :request
ORDER BY level DESC NULLS LAST, site_code LIMIT 12;
\echo '── answer_counts (building damage) ──────────────────────────────────'
SELECT choice_label, count FROM answer_counts
WHERE request_id = :request AND question_key = 'building' ORDER BY choice_order;
