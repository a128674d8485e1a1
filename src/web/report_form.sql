-- src/web/report_form.sql — the reporter page's content for a personal link.
-- Written with CREATE OR REPLACE: one text for the install and the upgrades.

-- The reporter page's content for a personal link.  Read-only: opening a
-- link (a mail scanner does it first) uses up and changes nothing.
CREATE OR REPLACE FUNCTION status_checker.report_form(token text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    h bytea := CASE WHEN token IS NOT NULL THEN status_checker._token_hash(token) END;
    k record;
    result jsonb;
BEGIN
    -- the target: by the token's hash, or (a first link, 0.9.0) by the
    -- target it names, if the token is that target's first
    SELECT t.tenant_id, t.request_id, t.site_id INTO k FROM status_checker.request_target t WHERE t.token_hash = h;
    IF NOT FOUND AND h IS NOT NULL THEN
        k := status_checker._first_link_target(token);
    END IF;
    SELECT jsonb_build_object(
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
                             'report_count', t.report_count) END)
      INTO result
      FROM status_checker.request_target t
      JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id
      JOIN status_checker.tenant tn ON tn.tenant_id = t.tenant_id
      JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
      JOIN status_checker.form f ON f.tenant_id = r.tenant_id AND f.form_id = r.form_id
      LEFT JOIN status_checker.event e ON e.event_id = r.event_id
      LEFT JOIN status_checker.report p ON p.tenant_id = t.tenant_id AND p.report_id = t.latest_report_id
     WHERE t.tenant_id = k.tenant_id AND t.request_id = k.request_id AND t.site_id = k.site_id;
    IF result IS NULL THEN
        IF h IS NOT NULL AND EXISTS (SELECT 1 FROM status_checker.request_token_revoked v WHERE v.token_hash = h) THEN
            RAISE EXCEPTION 'this report link has been replaced by a newer one'
                USING ERRCODE = 'invalid_authorization_specification', HINT = 'Use the link in the most recent message.';
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

