-- src/web/report_form.sql — the reporter page's content for a personal link.
-- Written with CREATE OR REPLACE: one text for the install and the upgrades.

-- What the reporter page shows for a request target, by the target's key
-- or its token's hash (report_form picks the row).  Internal.
CREATE OR REPLACE VIEW status_checker._report_form_document WITH (security_invoker = true) AS
SELECT t.token_hash, t.tenant_id, t.request_id, t.site_id,
       jsonb_build_object(
           'request', jsonb_build_object(
               'id', r.request_id, 'title', r.title, 'message', r.message, 'state', r.state,
               'drill', r.drill, 'deadline', r.deadline, 'cancel_reason', r.cancel_reason,
               'event', CASE WHEN e.event_id IS NOT NULL THEN jsonb_build_object(
                            'summary', status_checker._event_title(e),
                            'max_shindo', e.max_shindo::text,
                            'origin_time', e.origin_time) END),
           'tenant', tn.name,
           'site', jsonb_build_object(
               'code', s.code, 'name', s.name,
               'shindo', t.asked_shindo::text,
               'shindo_label', CASE WHEN t.asked_shindo IS NOT NULL THEN jsonb_build_object(
                                   'ja', status_checker.shindo_label(t.asked_shindo, 'ja'),
                                   'en', status_checker.shindo_label(t.asked_shindo, 'en')) END),
           'form', f.definition,
           'latest', CASE WHEN p.report_id IS NOT NULL THEN jsonb_build_object(
                         'report_id', p.report_id, 'answers', p.answers, 'level', p.level,
                         'color', p.color, 'icon', p.icon, 'submitted_at', p.submitted_at,
                         'report_count', t.report_count) END) AS document
  FROM status_checker.request_target t
  JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
  JOIN status_checker.tenant tn ON tn.tenant_id = t.tenant_id
  JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
  JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
  LEFT JOIN status_checker.event e ON e.event_id = r.event_id
  LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id;
COMMENT ON VIEW status_checker._report_form_document IS
'Internal (report_form): the reporter page''s document of each request target: request, event, tenant, site, form version, latest report';
GRANT SELECT ON status_checker._report_form_document TO status_checker_viewer, status_checker_operator;

-- The reporter page's content for a personal link.  Read-only: opening a
-- link (a mail scanner does it first) uses up and changes nothing.
CREATE OR REPLACE FUNCTION status_checker.report_form(token text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    h bytea := CASE WHEN token IS NOT NULL THEN status_checker._token_hash(token) END;
    result jsonb;
BEGIN
    -- the target by the token's hash; if none has it, the target a first
    -- link names (0.9.0), if the link's token is that target's first
    SELECT d.document INTO result FROM status_checker._report_form_document d WHERE d.token_hash = h;
    IF result IS NULL AND h IS NOT NULL THEN
        SELECT d.document INTO result
        FROM status_checker._first_link_target(token) k
        JOIN status_checker._report_form_document d
          ON d.tenant_id = k.tenant_id AND d.request_id = k.request_id AND d.site_id = k.site_id;
    END IF;
    IF result IS NULL THEN
        IF h IS NOT NULL AND EXISTS (SELECT 1 FROM status_checker.request_token_revoked v WHERE v.token_hash = h) THEN
            -- CONSTRAINT tells a replaced link from an unknown one (same SQLSTATE) to callers such as the reporter page
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification', HINT = 'Use the link in the most recent message.',
                      CONSTRAINT = 'report_token_replaced';
        END IF;
        RAISE EXCEPTION 'unknown report token'
            USING ERRCODE = 'invalid_authorization_specification', DETAIL = 'The link is wrong or incomplete.',
                  HINT = 'Open the link exactly as it appears in the message.';
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.report_form(text) IS
'What a reporter page shows for a personal link: the request (title, state, deadline, event), the site (and the intensity it was asked at), '
'the form version to answer and the site''s latest report. Read-only: opening a link changes nothing';
GRANT EXECUTE ON FUNCTION status_checker.report_form(text) TO status_checker_api, status_checker_reporter, status_checker_gateway;

