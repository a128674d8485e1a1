-- demo/weather.sql — the second scenario: what a recorded 大雨特別警報 brought
-- and what the warning rule did (run by run-demo.sh).
\set ON_ERROR_STOP on
\pset footer off
SET search_path = status_checker, public;
SET TimeZone = 'Asia/Tokyo';
SELECT rule_id AS rain_rule FROM trigger_rule WHERE hazard = 'rain' ORDER BY rule_id LIMIT 1 \gset
SELECT coalesce(max(event_id), 0) AS rain_event FROM request WHERE rule_id = :rain_rule \gset
\echo
\echo '── disaster_event: the telegram''s episodes (one per hazard in the 府県予報区 東京都) ──'
SELECT event_id, kind, source_event_id, status, epicenter_name AS scope, max_level, extra ->> 'top_kind' AS top_kind,
       revision, ended_at
FROM disaster_event WHERE max_level IS NOT NULL ORDER BY max_level DESC, kind;
\echo '── hazard_warning in the municipalities of the demo''s sites ──────────'
SELECT w.municipality, w.municipality_name, w.kind, w.level, w.status, w.hazard, w.since, w.until,
       (SELECT count(*) FROM site s WHERE s.municipality_code = w.municipality) AS sites
FROM hazard_warning w
WHERE w.municipality IN (SELECT s.municipality_code FROM site s)
ORDER BY w.level DESC, w.municipality, w.kind LIMIT 16;
\echo '── the request made by the warning rule ────────────────────────────'
SELECT request_id, title, state, targets, rule_id, event_id, deadline FROM request_summary WHERE rule_id = :rain_rule;
\echo '── trigger_decision of the rule for the rain episode: the sites asked, and the other 東京都 sites ──'
SELECT d.rule_name, d.site_code, m.name AS municipality, d.decision, d.reason
FROM trigger_decision d
JOIN site s ON s.tenant_id = d.tenant_id AND s.code = d.site_code
LEFT JOIN jma_municipality m ON m.code = s.municipality_code
WHERE d.rule_id = :rain_rule AND d.event_id = :rain_event AND left(s.municipality_code, 2) = '13'
ORDER BY d.decision, d.site_code LIMIT 8;
SELECT count(*) AS "sites in the other prefectures: skip (no rain warning there)"
FROM trigger_decision d JOIN site s ON s.tenant_id = d.tenant_id AND s.code = d.site_code
WHERE d.rule_id = :rain_rule AND d.event_id = :rain_event AND left(s.municipality_code, 2) <> '13' AND d.decision = 'skip';
