-- src/reports/reports.sql — reports: the hot path of a disaster.
--
-- Every report is kept (append-only history); the latest one is the site's
-- status, kept on request_target.  A report is acknowledged only when its
-- transaction commits.  Answers are checked against the request's form
-- version in C (src/reports/answers.c).
--
-- Per report: one token-hash index probe, one INSERT, one UPDATE of the
-- site's own target row, and one UPDATE of this backend's counter slot row
-- (src/reports/counter_slot.c): no row is shared by all reporters.

CREATE TABLE status_checker.report (
    tenant_id     bigint NOT NULL,
    report_id     bigint GENERATED ALWAYS AS IDENTITY,
    request_id    bigint NOT NULL,
    site_id       bigint NOT NULL,
    answers       jsonb NOT NULL,
    level         integer NOT NULL,
    color         text,
    icon          text,
    late          boolean NOT NULL DEFAULT false,   -- submitted after the deadline
    via           text NOT NULL CHECK (via IN ('link', 'user')),
    submitted_by  text,                             -- database user, for reports made on a site's behalf
    submitted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, report_id),
    FOREIGN KEY (tenant_id, request_id, site_id)
        REFERENCES status_checker.request_target (tenant_id, request_id, site_id)
);
CREATE INDEX ON status_checker.report (tenant_id, request_id, site_id);
COMMENT ON TABLE status_checker.report IS
'Every report ever submitted (append-only), with its computed status level, colour and icon';

CREATE TYPE status_checker._answer_check AS (level integer, color text, icon text);

CREATE FUNCTION status_checker._check_answers(definition jsonb, answers jsonb)
    RETURNS status_checker._answer_check
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_check_answers';

-- STABLE: constant for the life of a backend (so it can be an index key);
-- PARALLEL RESTRICTED: a parallel worker has another backend number.
CREATE FUNCTION status_checker._counter_slot() RETURNS smallint
    LANGUAGE c STABLE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_counter_slot';

CREATE FUNCTION status_checker.check_answers(form_id bigint, answers jsonb)
    RETURNS TABLE (level integer, color text, icon text)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    def jsonb;
BEGIN
    SELECT f.definition INTO def FROM status_checker.form f WHERE f.form_id = check_answers.form_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'form % does not exist', check_answers.form_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY SELECT c.level, c.color, c.icon FROM status_checker._check_answers(def, check_answers.answers) c;
END
$$;
COMMENT ON FUNCTION status_checker.check_answers(bigint, jsonb) IS
'Dry run: validate answers against a form version and return the status level, colour and icon they would get; stores nothing';

-- Store one report for a locked target row.  Callers resolve and lock the
-- target (FOR UPDATE) first, so that reports of one site are serialised.
CREATE FUNCTION status_checker._record_report(
    p_target status_checker.request_target, p_answers jsonb, p_via text)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    req status_checker.request;
    def jsonb;
    chk status_checker._answer_check;
    v_report bigint;
    v_now timestamptz := pg_catalog.now();
BEGIN
    SELECT * INTO STRICT req FROM status_checker.request r
    WHERE r.tenant_id = p_target.tenant_id AND r.request_id = p_target.request_id;
    IF req.state = 'closed' THEN
        RAISE EXCEPTION 'request % is closed', req.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('"%s" was closed; reports are no longer accepted.', req.title),
                  HINT = 'Contact the crisis team directly.';
    ELSIF req.state = 'cancelled' THEN
        RAISE EXCEPTION 'request % was cancelled', req.request_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('"%s" was cancelled: %s', req.title, req.cancel_reason),
                  HINT = 'No report is needed for this request.';
    END IF;
    IF p_answers IS NULL THEN
        RAISE EXCEPTION 'answers must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT f.definition INTO STRICT def FROM status_checker.form f
    WHERE f.tenant_id = req.tenant_id AND f.form_id = req.form_id;
    chk := status_checker._check_answers(def, p_answers);

    INSERT INTO status_checker.report
        (tenant_id, request_id, site_id, answers, level, color, icon, late, via, submitted_by)
    VALUES (req.tenant_id, req.request_id, p_target.site_id, p_answers, chk.level, chk.color, chk.icon,
            v_now > req.deadline, p_via, CASE WHEN p_via = 'user' THEN session_user END)
    RETURNING report_id INTO v_report;

    UPDATE status_checker.request_target t
    SET level = chk.level, color = chk.color, icon = chk.icon, latest_report_id = v_report,
        first_reported_at = coalesce(t.first_reported_at, v_now), last_reported_at = v_now,
        report_count = t.report_count + 1
    WHERE t.tenant_id = p_target.tenant_id AND t.request_id = p_target.request_id AND t.site_id = p_target.site_id;

    IF p_target.level IS NULL THEN
        UPDATE status_checker.request_counter c
        SET responded = c.responded + 1, counts[chk.level + 1] = c.counts[chk.level + 1] + 1
        WHERE c.tenant_id = req.tenant_id AND c.request_id = req.request_id AND c.slot = status_checker._counter_slot();
    ELSIF p_target.level <> chk.level THEN
        UPDATE status_checker.request_counter c
        SET counts[chk.level + 1] = c.counts[chk.level + 1] + 1,
            counts[p_target.level + 1] = c.counts[p_target.level + 1] - 1
        WHERE c.tenant_id = req.tenant_id AND c.request_id = req.request_id AND c.slot = status_checker._counter_slot();
    END IF;
    RETURN v_report;
END
$$;

CREATE FUNCTION status_checker.submit_report(token text, answers jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_hash bytea := status_checker._token_hash(submit_report.token);
    tgt status_checker.request_target;
BEGIN
    IF v_hash IS NOT NULL THEN
        SELECT * INTO tgt FROM status_checker.request_target t WHERE t.token_hash = v_hash FOR UPDATE;
    END IF;
    IF tgt.site_id IS NULL THEN
        IF v_hash IS NOT NULL AND EXISTS (SELECT 1 FROM status_checker.request_token_revoked r WHERE r.token_hash = v_hash) THEN
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification',
                      HINT = 'Use the link in the most recent message.';
        END IF;
        RAISE EXCEPTION 'unknown report token'
            USING ERRCODE = 'invalid_authorization_specification',
                  DETAIL = 'The link is wrong or incomplete.',
                  HINT = 'Open the link exactly as it appears in the message.';
    END IF;
    RETURN status_checker._record_report(tgt, submit_report.answers, 'link');
END
$$;
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb) IS
'Submit a site''s report with its personal token; answers are validated against the request''s form version. Returns the report id';

CREATE FUNCTION status_checker.submit_report_for(request_id bigint, site_code text, answers jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    v_site bigint;
    tgt status_checker.request_target;
BEGIN
    r := status_checker._require_request(submit_report_for.request_id);
    v_site := status_checker._require_site(r.tenant_id, submit_report_for.site_code);
    SELECT * INTO tgt FROM status_checker.request_target t
    WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'site % is not a target of request %', quote_literal(submit_report_for.site_code), r.request_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN status_checker._record_report(tgt, submit_report_for.answers, 'user');
END
$$;
COMMENT ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb) IS
'Submit a report on a site''s behalf (an authenticated user, e.g. after a phone call); recorded with the database user. Returns the report id';

CREATE VIEW status_checker.report_history WITH (security_invoker = true) AS
SELECT p.report_id, p.tenant_id, p.request_id, p.site_id, s.code AS site_code, s.name AS site_name,
       p.level, p.color, p.icon, p.answers, p.late, p.via, p.submitted_by, p.submitted_at,
       p.report_id = t.latest_report_id AS is_latest
FROM status_checker.report p
JOIN status_checker.site s ON s.tenant_id = p.tenant_id AND s.site_id = p.site_id
JOIN status_checker.request_target t ON t.tenant_id = p.tenant_id AND t.request_id = p.request_id AND t.site_id = p.site_id;
COMMENT ON VIEW status_checker.report_history IS 'Every report of every site, newest marked is_latest';
