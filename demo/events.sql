-- demo/events.sql — what the feed brought and what the rules did.
\set ON_ERROR_STOP on
\pset footer off
SET search_path = status_checker, public;
\echo
\echo '── disaster_event (from the feed) ───────────────────────────────────'
SELECT event_id, source, source_event_id, kind, status, epicenter_name, magnitude, max_shindo, best_product, revision
FROM disaster_event ORDER BY event_id;
\echo '── requests made by the rules: nobody pressed a button ──────────────'
SELECT request_id, title, targets, rule_id, event_id FROM request_summary ORDER BY request_id;
\echo '── trigger_decision: why sites were asked, or not (one per reason) ──'
SELECT DISTINCT ON (decision, reason) rule_name, site_code, shindo, decision, reason
FROM trigger_decision WHERE rule_id = (SELECT min(rule_id) FROM trigger_rule)
ORDER BY decision, reason, site_code LIMIT 14;
