-- src/reports/reports.sql — reports: the hot path of a disaster.
--
-- Every report is kept (append-only history); the latest one is the site's
-- status, kept on request_target.  A report is acknowledged only when its
-- transaction commits.  Answers are checked against the request's form
-- version in C (src/reports/answers.c).
--
-- Per report (src/reports/submit.c): one read by token hash, then one
-- statement that updates the site's own target row, inserts the report and,
-- for a transaction's first report, moves this backend's counter slot row
-- (src/reports/counters.c): no row is shared by all reporters.

CREATE TABLE status_checker.report (
    tenant_id     bigint NOT NULL,
    report_id     bigint GENERATED ALWAYS AS IDENTITY,
    request_id    bigint NOT NULL,
    site_id       bigint NOT NULL,
    answers       jsonb NOT NULL,
    level         integer NOT NULL,
    previous_level integer,                         -- the site's level before this report (NULL: first)
    color         text,
    icon          text,
    late          boolean NOT NULL DEFAULT false,   -- submitted after the deadline
    via           text NOT NULL CHECK (via IN ('link', 'user')),
    submitted_by  text,                             -- database user, for reports made on a site's behalf
    submitted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, report_id)
    -- No foreign key to request_target: the report path (submit.c) is the
    -- only writer and updates that very target row in the same transaction.
);
-- Reports arrive in time order, so the reports of a request lie together on
-- disk: a BRIN index finds them (history, retention, tenant deletion) at
-- almost no cost per insert, where a btree would be updated by every report.
CREATE INDEX report_request_brin ON status_checker.report USING brin (tenant_id, request_id, submitted_at);
COMMENT ON TABLE status_checker.report IS
'Every report ever submitted (append-only), with its computed status level, colour and icon';
ALTER TABLE status_checker.report ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.report FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.report
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.report TO status_checker_viewer, status_checker_operator;

CREATE TYPE status_checker._answer_check AS (level integer, color text, icon text);

CREATE FUNCTION status_checker._check_answers(definition jsonb, answers jsonb)
    RETURNS status_checker._answer_check
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_check_answers';

CREATE FUNCTION status_checker.check_answers(form_id bigint, answers jsonb)
    RETURNS TABLE (level integer, color text, icon text)
    LANGUAGE plpgsql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
ALTER FUNCTION status_checker.check_answers(bigint, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.check_answers(bigint, jsonb) TO status_checker_viewer, status_checker_operator;

-- Counter upkeep (src/reports/counters.c): the report path notes each
-- change in backend memory; this deferred trigger writes the net change of
-- each request once, at commit.  ENABLE ALWAYS: it must fire whatever the
-- session_replication_role, or the counters would drift.
CREATE FUNCTION status_checker._flush_counters() RETURNS trigger
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sc_flush_counters';
ALTER FUNCTION status_checker._flush_counters() OWNER TO status_checker_api;
-- One trigger event per transaction is enough: the WHEN condition is true
-- only for the first report of a transaction that has no event waiting.
CREATE FUNCTION status_checker._counters_need_flush() RETURNS boolean
    LANGUAGE c VOLATILE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_counters_need_flush';
CREATE CONSTRAINT TRIGGER report_counters
    AFTER INSERT ON status_checker.report
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (status_checker._counters_need_flush())
    EXECUTE FUNCTION status_checker._flush_counters();
ALTER TABLE status_checker.report ENABLE ALWAYS TRIGGER report_counters;

-- This backend's not yet written counter change of a request (int[17]:
-- responded, then levels 0..15), so that a transaction sees its own reports.
CREATE FUNCTION status_checker._pending_counts(tenant_id bigint, request_id bigint) RETURNS integer[]
    LANGUAGE c VOLATILE STRICT PARALLEL RESTRICTED SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_pending_counts';
GRANT EXECUTE ON FUNCTION status_checker._pending_counts(bigint, bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- The report path in C (src/reports/submit.c): lock the site's target row,
-- check the answers, insert the report, update the latest status and this
-- backend's counter slot.  via is 'link' (personal token) or 'user'.
CREATE FUNCTION status_checker._record_report(
    tenant_id bigint, request_id bigint, site_id bigint, answers jsonb, via text)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_record_report';

CREATE FUNCTION status_checker.submit_report(token text, answers jsonb)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sc_submit_report';
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb) IS
'Submit a site''s report with its personal token; answers are validated against the request''s form version. Returns the report id';
GRANT EXECUTE ON FUNCTION status_checker.submit_report(text, jsonb) TO status_checker_api, status_checker_reporter, status_checker_gateway;

CREATE FUNCTION status_checker.submit_report_for(request_id bigint, site_code text, answers jsonb)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    v_site bigint;
BEGIN
    r := status_checker._require_request(submit_report_for.request_id);
    v_site := status_checker._require_site(r.tenant_id, submit_report_for.site_code);
    IF NOT EXISTS (SELECT 1 FROM status_checker.request_target t
                   WHERE t.tenant_id = r.tenant_id AND t.request_id = r.request_id AND t.site_id = v_site) THEN
        RAISE EXCEPTION 'site % is not a target of request %', quote_literal(submit_report_for.site_code), r.request_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN status_checker._record_report(r.tenant_id, r.request_id, v_site, submit_report_for.answers, 'user');
END
$$;
COMMENT ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb) IS
'Submit a report on a site''s behalf (an authenticated user, e.g. after a phone call); recorded with the database user. Returns the report id';
ALTER FUNCTION status_checker.submit_report_for(bigint, text, jsonb) OWNER TO status_checker_api;
GRANT EXECUTE ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb) TO status_checker_reporter;

CREATE VIEW status_checker.report_history WITH (security_invoker = true) AS
SELECT p.report_id, p.tenant_id, p.request_id, p.site_id, s.code AS site_code, s.name AS site_name,
       p.level, p.previous_level, p.color, p.icon, p.answers, p.late, p.via, p.submitted_by, p.submitted_at,
       p.report_id = t.latest_report_id AS is_latest
FROM status_checker.report p
JOIN status_checker.site s ON s.tenant_id = p.tenant_id AND s.site_id = p.site_id
JOIN status_checker.request_target t ON t.tenant_id = p.tenant_id AND t.request_id = p.request_id AND t.site_id = p.site_id;
COMMENT ON VIEW status_checker.report_history IS
'Every report of every site: its level and the level it replaced (previous_level, NULL for a first report), newest marked is_latest';
GRANT SELECT ON status_checker.report_history TO status_checker_viewer, status_checker_operator;
