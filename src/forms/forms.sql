-- src/forms/forms.sql — report forms: immutable, versioned definitions.
-- The definition rules are enforced in C (src/forms/form_validate.c).

CREATE TABLE status_checker.form (
    tenant_id   bigint NOT NULL REFERENCES status_checker.tenant,
    form_id     bigint GENERATED ALWAYS AS IDENTITY,
    name        text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    version     integer NOT NULL CHECK (version >= 1),
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, form_id),
    UNIQUE (tenant_id, name, version)
);
CREATE INDEX ON status_checker.form (form_id);
COMMENT ON TABLE status_checker.form IS
'Report forms; each row is one immutable version (a new definition under the same name is a new version)';
ALTER TABLE status_checker.form ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.form FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.form
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.form TO status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker._form_immutable() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RAISE EXCEPTION 'form versions are immutable'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              DETAIL = format('Form %s version %s cannot be changed.', OLD.name, OLD.version),
              HINT = 'Call create_form with the same name to make a new version.';
END
$$;
CREATE TRIGGER form_immutable BEFORE UPDATE ON status_checker.form
    FOR EACH ROW EXECUTE FUNCTION status_checker._form_immutable();

CREATE FUNCTION status_checker.validate_form_definition(definition jsonb) RETURNS void
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_validate_form_definition';
COMMENT ON FUNCTION status_checker.validate_form_definition(jsonb) IS
'Check a form definition; raises 22023 naming the JSON path of the first problem (e.g. $.questions[2].choices[0].level)';

CREATE FUNCTION status_checker.create_form(tenant_id bigint, name text, definition jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_latest status_checker.form;
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_form', ARRAY['tenant_id', 'name', 'definition'], ARRAY[create_form.tenant_id::text, create_form.name::text, nullif((create_form.definition IS NOT NULL)::text, 'false')]);
    PERFORM status_checker._require_tenant(create_form.tenant_id);
    IF btrim(create_form.name) = '' OR length(create_form.name) > 200 THEN
        RAISE EXCEPTION 'invalid form name %', quote_literal(create_form.name)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A form name has 1 to 200 characters and is not blank.';
    END IF;
    PERFORM status_checker.validate_form_definition(create_form.definition);
    -- versions of one name are numbered in order; serialise their creation
    PERFORM pg_advisory_xact_lock(hashtext('status_checker.form'), hashtext(create_form.tenant_id || '/' || create_form.name));
    SELECT * INTO v_latest FROM status_checker.form f
    WHERE f.tenant_id = create_form.tenant_id AND f.name = create_form.name
    ORDER BY f.version DESC LIMIT 1;
    IF FOUND AND v_latest.definition = create_form.definition THEN
        RETURN v_latest.form_id;        -- same definition: no new version
    END IF;
    INSERT INTO status_checker.form (tenant_id, name, version, definition)
    VALUES (create_form.tenant_id, create_form.name, coalesce(v_latest.version, 0) + 1, create_form.definition)
    RETURNING form_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_form(bigint, text, jsonb) IS
'Create a form, or a new version when the name exists (the same definition again returns the latest version); returns the form id';
ALTER FUNCTION status_checker.create_form(bigint, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_form(bigint, text, jsonb) TO status_checker_admin;

-- A label in the requested language(s): lang 'ja', 'en' or 'all' (both).
CREATE FUNCTION status_checker._label(ja text, en text, lang text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    RETURN CASE lang WHEN 'ja' THEN jsonb_build_object('ja', ja)
                     WHEN 'en' THEN jsonb_build_object('en', en)
                     ELSE jsonb_build_object('ja', ja, 'en', en) END;

CREATE FUNCTION status_checker.default_form_definition(lang text DEFAULT 'ja') RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    l text := lang;
BEGIN
    IF l NOT IN ('ja', 'en', 'all') THEN
        RAISE EXCEPTION 'unsupported form language %', quote_literal(l)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''ja'', ''en'' or ''all'' (labels in both).';
    END IF;
    RETURN jsonb_build_object(
        'title', status_checker._label('被害状況報告', 'Damage report', l),
        'levels', jsonb_build_array(
            jsonb_build_object('level', 0, 'label', status_checker._label('被害なし', 'No damage', l), 'color', '#2e7d32', 'icon', 'check'),
            jsonb_build_object('level', 1, 'label', status_checker._label('一部被害', 'Partial damage', l), 'color', '#f9a825', 'icon', 'alert'),
            jsonb_build_object('level', 2, 'label', status_checker._label('重大被害', 'Severe damage', l), 'color', '#c62828', 'icon', 'stop')),
        'questions', jsonb_build_array(
            jsonb_build_object('key', 'building', 'type', 'single', 'required', true,
                'label', status_checker._label('建物の被害', 'Damage to buildings', l),
                'choices', jsonb_build_array(
                    jsonb_build_object('value', 'none', 'label', status_checker._label('なし', 'None', l), 'level', 0),
                    jsonb_build_object('value', 'partial', 'label', status_checker._label('一部損壊', 'Partly damaged', l), 'level', 1),
                    jsonb_build_object('value', 'severe', 'label', status_checker._label('使用不能', 'Unusable', l), 'level', 2,
                                       'color', '#b71c1c', 'icon', 'home-x'))),
            jsonb_build_object('key', 'detail', 'type', 'text', 'required', true, 'max_length', 2000,
                'label', status_checker._label('建物の被害の状況', 'What is damaged', l),
                'show_if', jsonb_build_object('question', 'building', 'in', jsonb_build_array('partial', 'severe'))),
            jsonb_build_object('key', 'injured', 'type', 'number', 'required', true, 'integer', true,
                'min', 0, 'max', 100000,
                'label', status_checker._label('負傷者数', 'People injured', l),
                'unit', status_checker._label('人', 'people', l),
                'levels', jsonb_build_array(jsonb_build_object('min', 1, 'level', 2))),
            jsonb_build_object('key', 'operation', 'type', 'single', 'required', true,
                'label', status_checker._label('業務の状況', 'Operations', l),
                'choices', jsonb_build_array(
                    jsonb_build_object('value', 'normal', 'label', status_checker._label('通常どおり', 'Normal', l), 'level', 0),
                    jsonb_build_object('value', 'limited', 'label', status_checker._label('一部停止', 'Limited', l), 'level', 1),
                    jsonb_build_object('value', 'stopped', 'label', status_checker._label('停止', 'Stopped', l), 'level', 2))),
            jsonb_build_object('key', 'lifelines', 'type', 'multi', 'required', false,
                'label', status_checker._label('止まっているライフライン', 'Utilities that are out', l),
                'choices', jsonb_build_array(
                    jsonb_build_object('value', 'power', 'label', status_checker._label('電気', 'Power', l), 'level', 1),
                    jsonb_build_object('value', 'water', 'label', status_checker._label('水道', 'Water', l), 'level', 1),
                    jsonb_build_object('value', 'gas', 'label', status_checker._label('ガス', 'Gas', l), 'level', 1),
                    jsonb_build_object('value', 'network', 'label', status_checker._label('通信', 'Network', l), 'level', 1))),
            jsonb_build_object('key', 'photo', 'type', 'photo', 'required', false,
                'label', status_checker._label('写真のリンク', 'Link to a photo', l)),
            jsonb_build_object('key', 'comment', 'type', 'text', 'required', false, 'max_length', 2000,
                'label', status_checker._label('連絡事項', 'Comments', l))));
END
$$;
COMMENT ON FUNCTION status_checker.default_form_definition(text) IS
'A ready damage-report form (buildings, people, operations, utilities, photo, comment) with labels in ja (default), en, or all (both)';
