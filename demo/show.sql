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
\echo '── security: what is stored, and the audit chain ─────────────────────'
SELECT c.site_code, c.address AS "contact_list (managers)", left(s.address, 36) || '…' AS "site_contact (stored)"
FROM contact_list c JOIN site_contact s ON s.tenant_id = c.tenant_id AND s.contact_id = c.contact_id
ORDER BY c.contact_id LIMIT 3;
SELECT seal_audit_log() AS sealed_now \gset
SELECT ok, entries, first_bad_entry, reason FROM verify_audit_log(1);
SELECT (audit_chain_head(1) ->> 'signed') AS "signed audit head (keep it outside the database)";
\echo '── system_health() (what monitoring polls; a throwaway cluster has no standby and no WAL archive) ──'
SELECT check_name, status, value FROM system_health();
