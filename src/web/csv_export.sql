-- src/web/csv_export.sql — the status matrix as a spreadsheet file.
-- Written with CREATE OR REPLACE: an upgrade script can replay the same text.

-- The status matrix as CSV (UTF-8 with a byte order mark, so that Excel
-- opens Japanese correctly).  A cell that starts with = + - @, a tab or a
-- carriage return is prefixed with ' so that a spreadsheet does not run it
-- as a formula (OWASP's CSV injection; the tab and the carriage return
-- since 0.10.1).
CREATE OR REPLACE FUNCTION status_checker.status_matrix_csv(request_id bigint)
    RETURNS text
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    result text;
BEGIN
    PERFORM status_checker._require_request(status_matrix_csv.request_id);
    WITH cells AS (
        SELECT s.site_code, ARRAY[s.site_code, s.site_name, coalesce(s.group_path, ''), coalesce(s.level::text, ''),
                     coalesce(s.level_label, ''), coalesce(s.level_label_en, ''), coalesce(t.asked_shindo::text, ''),
                     coalesce(to_char(s.last_reported_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS'), ''),
                     s.report_count::text, coalesce(s.lat::text, ''), coalesce(s.lon::text, ''),
                     coalesce(s.answers::text, '')] AS v
        FROM status_checker.site_status s
        JOIN status_checker.request_target t ON t.tenant_id = s.tenant_id AND t.request_id = s.request_id AND t.site_id = s.site_id
        WHERE s.request_id = status_matrix_csv.request_id
    )
    SELECT U&'\FEFF' || 'site_code,site_name,group,level,label_ja,label_en,asked_shindo,last_reported_at_jst,reports,lat,lon,answers' || E'\r\n'
           || coalesce(string_agg((SELECT string_agg('"' || replace(CASE WHEN left(x, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' || x ELSE x END,
                                                              '"', '""') || '"', ',' ORDER BY i)
                                   FROM unnest(c.v) WITH ORDINALITY u(x, i)), E'\r\n' ORDER BY c.site_code) || E'\r\n', '')
      INTO result
      FROM cells c;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.status_matrix_csv(bigint) IS
'The status matrix of a request as CSV (UTF-8 with BOM, CRLF, every cell quoted; cells that a spreadsheet could run as a formula prefixed with '')';
GRANT EXECUTE ON FUNCTION status_checker.status_matrix_csv(bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

