-- demo/simulate.sql — one wave of reports from site staff (run repeatedly).
-- Variables: wave (1..4).  Sites near the epicentre report heavier damage;
-- about a fifth never answer; some update their status in later waves.
\set ON_ERROR_STOP on
\set QUIET on
SET search_path = status_checker, public;
SELECT setseed(0.42 + :wave / 100.0) AS seeded \gset
CREATE TEMP TABLE wave AS
SELECT l.token, d.area_code, s.code,
       CASE WHEN d.area_code = '390' THEN (ARRAY['severe', 'severe', 'partial'])[1 + floor(random() * 3)::int]
            WHEN d.area_code IN ('391', '380', '370', '371') THEN (ARRAY['none', 'partial', 'partial'])[1 + floor(random() * 3)::int]
            ELSE 'none' END AS building,
       random() AS r
FROM public.demo_link l
JOIN site s ON s.code = l.site_code
JOIN site_directory d ON d.site_id = s.site_id
JOIN request_target t ON t.site_id = s.site_id
WHERE t.request_id = (SELECT min(request_id) FROM request WHERE rule_id IS NOT NULL)
  AND abs(hashtext(s.code)) % 5 <> 0                      -- a fifth of the sites never answer
  AND CASE :wave WHEN 1 THEN abs(hashtext(s.code)) % 4 = 0
                 WHEN 2 THEN abs(hashtext(s.code)) % 4 IN (1, 2)
                 WHEN 3 THEN abs(hashtext(s.code)) % 4 = 3
                 ELSE t.level IS NOT NULL AND abs(hashtext(s.code)) % 7 = 0 END;   -- wave 4: updates
SELECT count(submit_report(w.token, jsonb_strip_nulls(jsonb_build_object(
           'building', w.building,
           'detail', CASE w.building WHEN 'severe' THEN '建物の一部が倒壊、立入禁止' WHEN 'partial' THEN '壁にひび、窓ガラス破損' END,
           'injured', CASE WHEN w.building = 'severe' AND w.r < 0.5 THEN 1 + floor(w.r * 6)::int ELSE 0 END,
           'operation', CASE w.building WHEN 'severe' THEN 'stopped' WHEN 'partial' THEN 'limited' ELSE 'normal' END,
           'lifelines', CASE WHEN w.area_code = '390' THEN '["power", "water"]'::jsonb WHEN w.building = 'partial' THEN '["water"]' END,
           'comment', CASE WHEN w.r > 0.9 THEN '余震が続いています' END))))
       AS submitted
FROM wave w \gset
\set QUIET off
