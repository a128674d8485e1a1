-- src/requests/targets.sql — who may insert request targets, and the guard
-- that keeps an asked site from being deleted.
--
-- request_target has no foreign key to site (its per-row check was the
-- largest single cost of asking 100,000 sites at once).  Instead, a site
-- that a request asked cannot be deleted: the BEFORE DELETE trigger below
-- looks for targets of the site.  A tenant-level advisory lock closes the
-- race a foreign key's row lock would have closed: functions that insert
-- targets hold it shared (_lock_targets), deleting a site takes it
-- exclusively, so a deletion waits for concurrent insertions to commit and
-- then sees their targets.  Written as CREATE OR REPLACE so that the same
-- text serves the install script and the upgrade from 0.1.0.

CREATE OR REPLACE FUNCTION status_checker._targets_lock_key(p_tenant_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (p_tenant_id % 2147483647)::integer;
COMMENT ON FUNCTION status_checker._targets_lock_key(bigint) IS
'Internal: the advisory lock key (with class 1400000001) of a tenant''s request targets';

CREATE OR REPLACE FUNCTION status_checker._lock_targets(p_tenant_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.pg_advisory_xact_lock_shared(1400000001, status_checker._targets_lock_key(p_tenant_id));
COMMENT ON FUNCTION status_checker._lock_targets(bigint) IS
'Internal: taken (shared, until commit) by every function that inserts request targets of a tenant';

CREATE OR REPLACE FUNCTION status_checker._site_delete_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_req bigint;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(1400000001, status_checker._targets_lock_key(OLD.tenant_id));
    SELECT t.request_id INTO v_req FROM status_checker.request_target t
    WHERE t.tenant_id = OLD.tenant_id AND t.site_id = OLD.site_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'site % is a target of request % and cannot be deleted', quote_literal(OLD.code), v_req
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Requests keep the sites they asked, with their reports.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION status_checker._site_delete_guard() IS
'Internal: refuses to delete a site that a request asked (instead of a foreign key from request_target)';

CREATE TRIGGER site_delete_guard BEFORE DELETE ON status_checker.site
    FOR EACH ROW EXECUTE FUNCTION status_checker._site_delete_guard();

CREATE OR REPLACE FUNCTION status_checker.create_request(
    tenant_id bigint, form_id bigint, title text, deadline timestamptz,
    target jsonb DEFAULT '{"all": true}', drill boolean DEFAULT false, message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_n integer;
BEGIN
    PERFORM status_checker._require_tenant(create_request.tenant_id);
    IF create_request.form_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM status_checker.form f
        WHERE f.tenant_id = create_request.tenant_id AND f.form_id = create_request.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', coalesce(create_request.form_id::text, 'NULL'), create_request.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF create_request.title IS NULL OR btrim(create_request.title) = '' OR length(create_request.title) > 200 THEN
        RAISE EXCEPTION 'invalid request title %', coalesce(quote_literal(create_request.title), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A title has 1 to 200 characters and is not blank.';
    END IF;
    IF create_request.deadline IS NULL OR create_request.deadline <= pg_catalog.now() THEN
        RAISE EXCEPTION 'the deadline % is not in the future', coalesce(create_request.deadline::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(create_request.message) > 5000 THEN
        RAISE EXCEPTION 'the message has % characters; at most 5000 are allowed', length(create_request.message)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM status_checker._lock_targets(create_request.tenant_id);
    INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec)
    VALUES (create_request.tenant_id, create_request.form_id, create_request.title, create_request.message,
            create_request.deadline, coalesce(create_request.drill, false),
            coalesce(create_request.target, '{"all": true}'))
    RETURNING request_id INTO v_id;

    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id)
    SELECT DISTINCT create_request.tenant_id, v_id, t.site_id
    FROM status_checker._resolve_targets(create_request.tenant_id, coalesce(create_request.target, '{"all": true}')) t
    ORDER BY 3;   -- in key order: index insertions stay on hot pages
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'the target % selects no sites', coalesce(create_request.target, '{"all": true}')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Check the target: sites need a municipality code for municipality and area targets.';
    END IF;
    UPDATE status_checker.request r SET targets = v_n WHERE r.tenant_id = create_request.tenant_id AND r.request_id = v_id;
    -- the targets' contacts get the request, in this transaction
    IF status_checker._tenant_delivers(create_request.tenant_id) THEN
        PERFORM status_checker._enqueue_site_messages(create_request.tenant_id, v_id, 'request', 0,
            ARRAY(SELECT t.site_id FROM status_checker.request_target t
                  WHERE t.tenant_id = create_request.tenant_id AND t.request_id = v_id ORDER BY t.site_id), true);
    END IF;
    INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
    SELECT create_request.tenant_id, v_id, g FROM generate_series(0, 63) g;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) IS
'Create a report request for the sites the target selects ({"all":true}, {"groups":[ids]} with descendants, '
'{"sites":[codes]}, {"municipalities":[codes]}, {"areas":[JMA area codes]}); targets are resolved now. Returns the request id';
ALTER FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) TO status_checker_manager;

