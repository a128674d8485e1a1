-- src/requests/requests.sql — report requests, their targets and tokens.
--
-- A request asks a set of sites (resolved once, at creation) to answer one
-- form version.  Each target can hold one personal token; only its SHA-256
-- is stored (src/requests/token.c).  Maintained counters per request are
-- spread over COUNTER_SLOTS rows so that no single row is updated by every
-- report (see src/reports/reports.sql).

CREATE TABLE status_checker.request (
    tenant_id      bigint NOT NULL REFERENCES status_checker.tenant,
    request_id     bigint GENERATED ALWAYS AS IDENTITY,
    form_id        bigint NOT NULL,
    title          text NOT NULL,
    message        text,
    deadline       timestamptz NOT NULL,
    drill          boolean NOT NULL DEFAULT false,
    state          text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'cancelled')),
    cancel_reason  text,
    target_spec    jsonb NOT NULL,
    targets        integer NOT NULL DEFAULT 0,
    event_id       bigint,                  -- set for requests made by a trigger rule
    rule_id        bigint,
    reminders      interval[] NOT NULL DEFAULT '{}',   -- after creation: when to remind sites that have not answered
    escalate_after interval,                           -- ... and when to tell their managers
    created_by     text NOT NULL DEFAULT session_user,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    closed_at      timestamptz,
    cancelled_at   timestamptz,
    PRIMARY KEY (tenant_id, request_id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES status_checker.form (tenant_id, form_id),
    CHECK ((state = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX ON status_checker.request (request_id);
COMMENT ON TABLE status_checker.request IS
'A report request (報告依頼): asks its target sites to answer a form version by a deadline; open, closed or cancelled';
ALTER TABLE status_checker.request ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.request TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.request_target (
    tenant_id          bigint NOT NULL,
    request_id         bigint NOT NULL,
    site_id            bigint NOT NULL,
    token_hash         bytea,               -- SHA-256 of the current personal token
    token_issued_at    timestamptz,
    token_gen          integer NOT NULL DEFAULT 0,  -- generation of the derived token (src/requests/tokens.sql)
    level              integer,             -- latest report's status level; NULL = no answer
    prev_level         integer,             -- the level the latest report replaced (counter upkeep)
    color              text,
    icon               text,
    latest_report_id   bigint,
    first_reported_at  timestamptz,
    last_reported_at   timestamptz,
    report_count       integer NOT NULL DEFAULT 0,
    asked_shindo       status_checker.shindo,   -- requests made by a rule: the intensity the site was asked at
    asked_reason       text,                    -- ... and why (trigger_decision)
    submit_key         text,                    -- idempotency key of the latest submission by link (src/web/web.sql)
    PRIMARY KEY (tenant_id, request_id, site_id)
    -- No foreign keys.  To request: targets are inserted only by the
    -- functions that create their request, in the same transaction, and
    -- requests are removed only with their tenant; the per-row check cost
    -- 0.6 s for a request of 100,000 sites.  To site: a trigger on site
    -- refuses to delete an asked site instead (src/requests/targets.sql),
    -- which moves the cost from every target inserted at disaster time to
    -- the rare deletion of a site; the per-row check cost 1.1 s for 100,000
    -- targets (docs/benchmarks.md).
) WITH (fillfactor = 80);
-- partial: targets get their token later, so most rows of a new request have none
CREATE UNIQUE INDEX request_target_token_hash_key ON status_checker.request_target (token_hash)
    WHERE token_hash IS NOT NULL;
CREATE INDEX ON status_checker.request_target (tenant_id, site_id);
COMMENT ON TABLE status_checker.request_target IS
'One row per site asked by a request: personal token hash and the site''s latest status for that request';
COMMENT ON COLUMN status_checker.request_target.submit_key IS
'Idempotency key of the latest report submitted by link with one (submit_report(token, answers, idempotency_key)); a replay with the same key stores nothing';
ALTER TABLE status_checker.request_target ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request_target FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request_target
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.request_target TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.request_token_revoked (
    tenant_id   bigint NOT NULL,
    token_hash  bytea NOT NULL,
    request_id  bigint NOT NULL,
    site_id     bigint NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, request_id, site_id) REFERENCES status_checker.request_target (tenant_id, request_id, site_id)
);
CREATE UNIQUE INDEX request_token_revoked_token_hash_key ON status_checker.request_token_revoked (token_hash);
COMMENT ON TABLE status_checker.request_token_revoked IS
'Hashes of tokens replaced by issue_token, so that an old link gets a clear "replaced" error';
ALTER TABLE status_checker.request_token_revoked ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request_token_revoked FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request_token_revoked
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

-- Per-request counters, split over slots (slot = backend number mod 64):
-- counts[level + 1] is how many sites currently stand at that level,
-- responded how many have answered at least once.  A request's totals are
-- the sums over its slots (a slot may hold negative counts).
CREATE TABLE status_checker.request_counter (
    tenant_id   bigint NOT NULL,
    request_id  bigint NOT NULL,
    slot        smallint NOT NULL CHECK (slot BETWEEN 0 AND 63),
    responded   integer NOT NULL DEFAULT 0,
    counts      integer[] NOT NULL DEFAULT array_fill(0, ARRAY[16]),
    PRIMARY KEY (tenant_id, request_id, slot),
    FOREIGN KEY (tenant_id, request_id) REFERENCES status_checker.request (tenant_id, request_id)
) WITH (fillfactor = 50);
COMMENT ON TABLE status_checker.request_counter IS
'Maintained per-request counters, spread over 64 slot rows so that concurrent reports do not contend on one row';
ALTER TABLE status_checker.request_counter ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.request_counter FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.request_counter
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.request_counter TO status_checker_viewer, status_checker_operator;

-- ---------------------------------------------------------- C helpers

CREATE FUNCTION status_checker._token_hash(token text) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_token_hash';

-- ------------------------------------------------------------- helpers

CREATE FUNCTION status_checker._require_request(p_request_id bigint, p_lock boolean DEFAULT false)
    RETURNS status_checker.request
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
BEGIN
    IF p_lock THEN
        SELECT * INTO r FROM status_checker.request WHERE request_id = p_request_id FOR UPDATE;
    ELSE
        SELECT * INTO r FROM status_checker.request WHERE request_id = p_request_id;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request % does not exist', coalesce(p_request_id::text, 'NULL')
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN r;
END
$$;
GRANT EXECUTE ON FUNCTION status_checker._require_request(bigint, boolean) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- Resolve a target spec to site ids of the tenant; raises on a bad spec.
CREATE FUNCTION status_checker._resolve_targets(p_tenant_id bigint, p_target jsonb)
    RETURNS TABLE (site_id bigint)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    k text;
    v jsonb;
    bad text[];
BEGIN
    IF p_target IS NULL OR jsonb_typeof(p_target) <> 'object' OR (SELECT count(*) FROM jsonb_object_keys(p_target)) <> 1 THEN
        RAISE EXCEPTION 'invalid target %', coalesce(p_target::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A target is an object with exactly one key.',
                  HINT = 'Use {"all": true}, {"groups": [ids]}, {"sites": [codes]}, {"municipalities": [codes]} or {"areas": [JMA area codes]}.';
    END IF;
    SELECT key, value INTO k, v FROM jsonb_each(p_target);
    IF k = 'all' THEN
        IF v <> 'true'::jsonb THEN
            RAISE EXCEPTION 'invalid target %: "all" must be true', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s WHERE s.tenant_id = p_tenant_id;
        RETURN;
    END IF;
    IF k NOT IN ('groups', 'sites', 'municipalities', 'areas') THEN
        RAISE EXCEPTION 'invalid target %: unknown key "%"', p_target, k
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use all, groups, sites, municipalities or areas.';
    END IF;
    IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
        RAISE EXCEPTION 'invalid target %: "%" must be a non-empty array', p_target, k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF k = 'groups' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'number' OR e::text !~ '^[0-9]+$') THEN
            RAISE EXCEPTION 'invalid target %: group ids are integers', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        bad := ARRAY(SELECT e::text FROM jsonb_array_elements(v) e
                     WHERE NOT EXISTS (SELECT 1 FROM status_checker.site_group g
                                       WHERE g.tenant_id = p_tenant_id AND g.group_id = e::text::bigint));
        IF cardinality(bad) > 0 THEN
            RAISE EXCEPTION 'unknown site group(s) % in tenant %', array_to_string(bad, ', '), p_tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN QUERY
            SELECT s.site_id FROM status_checker.site s
            JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
            WHERE s.tenant_id = p_tenant_id
              AND g.ancestors && ARRAY(SELECT e::text::bigint FROM jsonb_array_elements(v) e);
    ELSIF k = 'sites' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION 'invalid target %: site codes are strings', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        bad := ARRAY(SELECT e FROM jsonb_array_elements_text(v) e
                     WHERE NOT EXISTS (SELECT 1 FROM status_checker.site s WHERE s.tenant_id = p_tenant_id AND s.code = e));
        IF cardinality(bad) > 0 THEN
            RAISE EXCEPTION 'unknown site code(s) % in tenant %', array_to_string(bad, ', '), p_tenant_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s
            WHERE s.tenant_id = p_tenant_id AND s.code IN (SELECT jsonb_array_elements_text(v));
    ELSIF k = 'municipalities' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
            RAISE EXCEPTION 'invalid target %: municipality codes are strings', p_target USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s
            WHERE s.tenant_id = p_tenant_id
              AND s.municipality_code IN (SELECT status_checker.normalize_municipality_code(e)
                                          FROM jsonb_array_elements_text(v) e);
    ELSE  -- areas
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string' OR e #>> '{}' !~ '^[0-9]{3}$') THEN
            RAISE EXCEPTION 'invalid target %: JMA area codes are 3-digit strings such as "390"', p_target
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        RETURN QUERY SELECT s.site_id FROM status_checker.site s
            JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
            WHERE s.tenant_id = p_tenant_id AND m.area_code IN (SELECT jsonb_array_elements_text(v));
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._resolve_targets(bigint, jsonb) IS
'Internal: the site ids of a target spec (all, groups, sites, municipalities, areas) in the tenant; raises on a bad spec';
-- trigger_decision's readers run it (the view is security_invoker: rows under their row-level security)
GRANT EXECUTE ON FUNCTION status_checker._resolve_targets(bigint, jsonb) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- ------------------------------------------------------ public functions

-- issue_token and issue_tokens: src/requests/tokens.sql (tokens derived from the tenant's link key)

CREATE FUNCTION status_checker.close_request(request_id bigint)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
BEGIN
    PERFORM status_checker._no_nulls('close_request', ARRAY['request_id'], ARRAY[close_request.request_id::text]);
    r := status_checker._require_request(close_request.request_id, true);
    IF r.state = 'cancelled' THEN
        RAISE EXCEPTION 'request % was cancelled and cannot be closed', r.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE status_checker.request q SET state = 'closed', closed_at = pg_catalog.now()
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id AND q.state = 'open';
END
$$;
COMMENT ON FUNCTION status_checker.close_request(bigint) IS
'Close a request: no further reports are accepted; closing a closed request does nothing';
ALTER FUNCTION status_checker.close_request(bigint) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.close_request(bigint) TO status_checker_manager;

CREATE FUNCTION status_checker.cancel_request(request_id bigint, reason text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
BEGIN
    r := status_checker._require_request(cancel_request.request_id, true);
    IF cancel_request.reason IS NULL OR btrim(cancel_request.reason) = '' OR length(cancel_request.reason) > 1000 THEN
        RAISE EXCEPTION 'a reason (1 to 1000 characters) is required to cancel request %', r.request_id
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE status_checker.request q
    SET state = 'cancelled', cancel_reason = cancel_request.reason, cancelled_at = pg_catalog.now()
    WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id AND q.state <> 'cancelled';
END
$$;
COMMENT ON FUNCTION status_checker.cancel_request(bigint, text) IS
'Cancel a request (e.g. sent by mistake, or its event was withdrawn) with a reason; reports are refused from then on';
ALTER FUNCTION status_checker.cancel_request(bigint, text) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.cancel_request(bigint, text) TO status_checker_manager;
