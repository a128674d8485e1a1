-- reports: validation against the form version, status levels, history
SET search_path = status_checker, public;
\set SHOW_CONTEXT never

-- request 1 (all sites of tenant 1, default form in ja+en); fresh tokens
CREATE TEMP TABLE tok AS SELECT * FROM issue_tokens(1);
SELECT site_code FROM tok ORDER BY site_code;
SELECT token AS knz FROM tok WHERE site_code = 'KNZ01' \gset
SELECT token AS wjm FROM tok WHERE site_code = 'WJM01' \gset
SELECT token AS tym FROM tok WHERE site_code = 'TYM01' \gset

-- the level is the highest any answer reaches; choices may override colour and icon
SELECT * FROM check_answers(1, '{"building": "none", "injured": 0, "operation": "normal"}');
SELECT * FROM check_answers(1, '{"building": "none", "injured": 0, "operation": "normal", "lifelines": ["water"]}');
SELECT * FROM check_answers(1, '{"building": "partial", "detail": "窓ガラス", "injured": 0, "operation": "normal"}');
SELECT * FROM check_answers(1, '{"building": "none", "injured": 2, "operation": "normal"}');
SELECT * FROM check_answers(1, '{"building": "severe", "detail": "倒壊", "injured": 0, "operation": "stopped"}');
SELECT * FROM check_answers(1, '{"building": "none", "injured": 0, "operation": "stopped", "comment": null}');

-- submit and update
SELECT submit_report(:'knz', '{"building": "partial", "detail": "外壁にひび", "injured": 0, "operation": "limited", "lifelines": ["power"]}') AS r1;
SELECT submit_report(:'wjm', '{"building": "severe", "detail": "倉庫が倒壊", "injured": 3, "operation": "stopped",
                               "lifelines": ["power", "water", "network"], "photo": "https://photos.example.com/wjm01.jpg",
                               "comment": "道路が寸断されています"}') AS r2;
SELECT submit_report(:'knz', '{"building": "none", "injured": 0, "operation": "normal"}') AS r3_update;
SELECT submit_report_for(1, 'TYM01', '{"building": "none", "injured": 0, "operation": "normal"}') AS r4_on_behalf;
SELECT report_id, s.code, level, color, icon, via, submitted_by IS NOT NULL AS has_user, late
FROM report r JOIN site s USING (tenant_id, site_id) ORDER BY report_id;
SELECT s.code, t.level, t.color, t.icon, t.report_count, t.latest_report_id,
       t.first_reported_at <= t.last_reported_at AS ordered_times
FROM request_target t JOIN site s USING (tenant_id, site_id) WHERE t.request_id = 1 ORDER BY s.code;
SELECT site_code, report_id, level, is_latest FROM report_history WHERE request_id = 1 ORDER BY report_id;

-- answers that break the form: a clear error naming the answer, nothing stored
SELECT count(*) AS reports_before FROM report;
SELECT submit_report(:'tym', '{"injured": 0, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "collapsed", "injured": 0, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": 1, "injured": 0, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "none", "detail": "何もない", "injured": 0, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "partial", "injured": 0, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "partial", "detail": "   ", "injured": 0, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": "0", "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0.5, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 100001, "operation": "normal"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "lifelines": "power"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "lifelines": ["power", "sewage"]}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "lifelines": ["gas", "gas"]}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "photo": "javascript:alert(1)"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "photo": "https://a b"}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "comment": 42}');
SELECT submit_report(:'tym', '{"building": "none", "injured": 0, "operation": "normal", "weather": "晴れ"}');
SELECT submit_report(:'tym', '["building"]');
SELECT submit_report(:'tym', '"none"');
SELECT count(*) AS reports_after, (SELECT report_count FROM request_target t JOIN site s USING (tenant_id, site_id)
                                    WHERE t.request_id = 1 AND s.code = 'TYM01') AS tym_reports
FROM report;

-- a text longer than max_length, and an oversize document
SELECT submit_report(:'tym', jsonb_build_object('building', 'partial', 'detail', repeat('あ', 2001), 'injured', 0, 'operation', 'normal'));
SET status_checker.max_answers_bytes = 256;
SELECT submit_report(:'tym', jsonb_build_object('building', 'none', 'injured', 0, 'operation', 'normal', 'comment', repeat('x', 300)));
RESET status_checker.max_answers_bytes;

-- tokens: unknown, malformed, replaced, NULL
SELECT submit_report('AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '{}');
SELECT submit_report('not a token', '{}');
SELECT submit_report(NULL, '{}');
SELECT submit_report(:'knz', NULL);
SELECT issue_token(1, 'KNZ01') AS knz_new \gset
SELECT submit_report(:'knz', '{"building": "none", "injured": 0, "operation": "normal"}');
SELECT submit_report(:'knz_new', '{"building": "none", "injured": 0, "operation": "normal"}') > 0 AS new_token_works;

-- on behalf of a site: unknown site, not a target, unknown request
SELECT submit_report_for(1, 'NOPE', '{}');
SELECT submit_report_for(1, 'T001', '{}');
SELECT submit_report_for(5, 'KNZ01', '{"building": "none", "injured": 0, "operation": "normal"}');
SELECT submit_report_for(999, 'KNZ01', '{}');

-- closed and cancelled requests refuse reports
SELECT submit_report_for(2, 'KNZ01', '{"building": "none", "injured": 0, "operation": "normal"}');
SELECT submit_report_for(3, 'WJM01', '{"building": "none", "injured": 0, "operation": "normal"}');
SELECT count(*) AS reports_at_end FROM report;

-- a late report is accepted and marked
UPDATE request SET deadline = now() - interval '1 minute' WHERE request_id = 4;
SELECT submit_report_for(4, 'OSK01', '{"building": "none", "injured": 0, "operation": "normal"}') AS late_report;
SELECT late FROM report WHERE request_id = 4;

-- a form with every question type, conditions on conditions
SELECT create_form(1, '全種類', '{
  "levels": [{"level": 0, "label": {"en": "OK"}, "color": "#0a0"}, {"level": 1, "label": {"en": "Watch"}, "color": "#fa0"},
             {"level": 3, "label": {"en": "Bad"}, "color": "#a00", "icon": "flame"}],
  "questions": [
    {"key": "fire", "type": "boolean", "required": true, "label": {"en": "Fire?"}, "levels": [{"value": true, "level": 3}]},
    {"key": "spread", "type": "single", "required": true, "label": {"en": "Spreading?"}, "show_if": {"question": "fire", "in": [true]},
     "choices": [{"value": "no", "label": {"en": "No"}}, {"value": "yes", "label": {"en": "Yes"}, "level": 3}]},
    {"key": "where", "type": "location", "required": true, "label": {"en": "Where?"}, "show_if": {"question": "spread", "in": ["yes"]}},
    {"key": "staff", "type": "number", "label": {"en": "Staff present"}, "min": 0, "levels": [{"max": 0, "level": 1}]},
    {"key": "note", "type": "text", "label": {"en": "Note"}, "max_length": 5}]}') AS all_types_form \gset
SELECT * FROM check_answers(:all_types_form, '{"fire": false}');
SELECT * FROM check_answers(:all_types_form, '{"fire": false, "staff": 0}');
SELECT * FROM check_answers(:all_types_form, '{"fire": true, "spread": "no"}');
SELECT * FROM check_answers(:all_types_form, '{"fire": true, "spread": "yes", "where": {"lat": 37.39, "lon": 136.9}}');
SELECT * FROM check_answers(:all_types_form, '{"fire": false, "spread": "no"}');
SELECT * FROM check_answers(:all_types_form, '{"fire": true, "spread": "yes"}');
SELECT * FROM check_answers(:all_types_form, '{"fire": true, "spread": "no", "where": {"lat": 37.39, "lon": 136.9}}');
SELECT * FROM check_answers(:all_types_form, '{"fire": true, "spread": "yes", "where": {"lat": 91, "lon": 136.9}}');
SELECT * FROM check_answers(:all_types_form, '{"fire": true, "spread": "yes", "where": {"lat": 37, "lng": 136.9}}');
SELECT * FROM check_answers(:all_types_form, '{"fire": "no"}');
SELECT * FROM check_answers(:all_types_form, '{"fire": false, "note": "123456"}');
SELECT * FROM check_answers(:all_types_form, '{"fire": false, "note": "日本語五字"}');
SELECT * FROM check_answers(999, '{}');
