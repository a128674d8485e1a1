-- forms: definitions, validation with JSON paths, immutable versions
SET search_path = status_checker, public;
\set SHOW_CONTEXT never

-- the default form is valid in every language
SELECT validate_form_definition(default_form_definition()) ::text = '' AS ja_ok,
       validate_form_definition(default_form_definition('en')) ::text = '' AS en_ok,
       validate_form_definition(default_form_definition('all')) ::text = '' AS all_ok;
SELECT q ->> 'key' AS key, q ->> 'type' AS type, q -> 'label' ->> 'ja' AS ja, q ->> 'required' AS required
FROM jsonb_array_elements(default_form_definition() -> 'questions') q;
SELECT default_form_definition('en') -> 'levels' -> 2;
SELECT default_form_definition('de');

-- versions: same name → next version; same definition → same version
SELECT create_form(1, '被害報告', default_form_definition('all')) AS v1;
SELECT create_form(1, '被害報告', default_form_definition('all')) AS same_again;
SELECT create_form(1, '被害報告', default_form_definition('ja')) AS v2;
SELECT create_form(2, '被害報告', default_form_definition('all')) AS other_tenant;
SELECT tenant_id, form_id, name, version FROM form ORDER BY form_id;
UPDATE form SET name = 'changed' WHERE form_id = 1;
SELECT create_form(1, '', default_form_definition());
SELECT create_form(99, 'x', default_form_definition());

-- every rule, with the JSON path of the problem
CREATE TEMP TABLE base AS SELECT jsonb_build_object(
  'levels', '[{"level": 0, "label": {"ja": "なし"}, "color": "#2e7d32"},
              {"level": 2, "label": {"ja": "重大", "en": "Severe"}, "color": "#c62828", "icon": "stop"}]'::jsonb,
  'questions', '[{"key": "building", "type": "single", "required": true, "label": {"ja": "建物"},
                  "choices": [{"value": "ok", "label": {"ja": "無事"}, "level": 0},
                              {"value": "broken", "label": {"ja": "損壊"}, "level": 2}]}]'::jsonb) AS d;
SELECT validate_form_definition(d) ::text = '' AS base_ok FROM base;
SELECT validate_form_definition('[]');
SELECT validate_form_definition('"form"');
SELECT validate_form_definition(d || '{"extra": 1}') FROM base;
SELECT validate_form_definition(d - 'levels') FROM base;
SELECT validate_form_definition(d - 'questions') FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels}', '[]')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels}', '{}')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,level}', '0')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,level}', '16')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,level}', '1.5')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,color}', '"#12345"')) FROM base;
SELECT validate_form_definition(d #- '{levels,1,color}') FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,icon}', '"Stop Sign"')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,label}', '{}')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,label}', '{"ja": ""}')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,label}', '{"ja": 5}')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,label}', '{"ja": "x", "Japanese": "x"}')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{levels,1,label}', '"重大"')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions}', '[]')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,key}', '"Building"')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,type}', '"radio"')) FROM base;
SELECT validate_form_definition(d #- '{questions,0,label}') FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,required}', '"yes"')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,max}', '5')) FROM base;
SELECT validate_form_definition(d #- '{questions,0,choices}') FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,choices}', '[]')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,choices,1,value}', '"ok"')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,choices,1,value}', '3')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,choices,1,level}', '1')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,choices,1,color}', '"red"')) FROM base;
SELECT validate_form_definition(jsonb_set(d, '{questions,0,choices,1,weight}', '1')) FROM base;
-- a second question of each kind (SQLSTATE and message of each)
DO $$
DECLARE
    q jsonb;
    d jsonb := (SELECT d FROM base);
BEGIN
    FOR q IN SELECT v.q FROM (VALUES
  ('{"key": "building", "type": "text", "label": {"ja": "x"}, "note": "duplicate key"}'::jsonb),
  ('{"key": "n", "type": "number", "label": {"ja": "x"}, "min": 5, "max": 1}'),
  ('{"key": "n", "type": "number", "label": {"ja": "x"}, "min": "0"}'),
  ('{"key": "n", "type": "number", "label": {"ja": "x"}, "integer": 1}'),
  ('{"key": "n", "type": "number", "label": {"ja": "x"}, "levels": [{"level": 2}]}'),
  ('{"key": "n", "type": "number", "label": {"ja": "x"}, "levels": [{"min": 1, "level": 7}]}'),
  ('{"key": "n", "type": "number", "label": {"ja": "x"}, "choices": []}'),
  ('{"key": "b", "type": "boolean", "label": {"ja": "x"}, "levels": [{"value": "yes", "level": 2}]}'),
  ('{"key": "t", "type": "text", "label": {"ja": "x"}, "max_length": 0}'),
  ('{"key": "t", "type": "text", "label": {"ja": "x"}, "max_length": 100001}'),
  ('{"key": "l", "type": "location", "label": {"ja": "x"}, "max_length": 10}'),
  ('{"key": "p", "type": "photo", "label": {"ja": "x"}, "help": {"ja": ""}}'),
  ('{"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "nope", "in": ["ok"]}}'),
  ('{"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "building", "in": ["maybe"]}}'),
  ('{"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "building", "in": []}}'),
  ('{"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "building"}}'),
  ('{"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "building", "in": ["ok"], "not": true}}'),
  ('{"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "s", "in": ["ok"]}}')
) AS v(q) LOOP
        BEGIN
            PERFORM status_checker.validate_form_definition(jsonb_insert(d, '{questions,1}', q));
            RAISE NOTICE 'accepted %', q;
        EXCEPTION WHEN others THEN
            RAISE NOTICE '% %', SQLSTATE, SQLERRM;
        END;
    END LOOP;
END
$$;
-- conditions must refer to an earlier choice or boolean question
SELECT validate_form_definition(jsonb_build_object('levels', d -> 'levels', 'questions',
    '[{"key": "n", "type": "number", "label": {"ja": "人数"}},
      {"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "n", "in": [1]}}]'::jsonb)) FROM base;
SELECT validate_form_definition(jsonb_build_object('levels', d -> 'levels', 'questions',
    '[{"key": "b", "type": "boolean", "label": {"ja": "停電?"}, "levels": [{"value": true, "level": 2}]},
      {"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "b", "in": ["true"]}}]'::jsonb)) FROM base;
SELECT validate_form_definition(jsonb_build_object('levels', d -> 'levels', 'questions',
    '[{"key": "b", "type": "boolean", "label": {"ja": "停電?"}, "levels": [{"value": true, "level": 2}]},
      {"key": "s", "type": "text", "label": {"ja": "x"}, "show_if": {"question": "b", "in": [true]}}]'::jsonb)) ::text = '' AS boolean_condition_ok
FROM base;
-- the contract's own example is valid
SELECT validate_form_definition('{
  "levels": [
    {"level": 0, "label": {"ja": "被害なし", "en": "No damage"}, "color": "#2e7d32", "icon": "check"},
    {"level": 1, "label": {"ja": "一部被害", "en": "Partial"},   "color": "#f9a825", "icon": "alert"},
    {"level": 2, "label": {"ja": "重大被害", "en": "Severe"},    "color": "#c62828", "icon": "stop"}
  ],
  "questions": [
    {"key": "building", "type": "single", "required": true,
     "label": {"ja": "建物の被害", "en": "Building damage"},
     "choices": [
       {"value": "none",    "label": {"ja": "なし", "en": "None"},    "level": 0},
       {"value": "partial", "label": {"ja": "一部", "en": "Partial"}, "level": 1},
       {"value": "severe",  "label": {"ja": "大きい", "en": "Severe"}, "level": 2,
        "color": "#b71c1c", "icon": "home-x"}]},
    {"key": "injured", "type": "number", "min": 0, "max": 100000, "required": true,
     "label": {"ja": "負傷者数", "en": "Injured"}, "levels": [{"min": 1, "level": 2}]},
    {"key": "detail", "type": "text", "max_length": 2000,
     "show_if": {"question": "building", "in": ["partial", "severe"]}, "required": true,
     "label": {"ja": "被害の状況", "en": "Details"}}
  ]
}') ::text = '' AS contract_example_ok;
SELECT create_form(1, '壊れた', '{"levels": []}');
SELECT count(*) AS forms_after_failures FROM form;
