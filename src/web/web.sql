-- src/web/web.sql — what a reporter page needs from the SQL API: the page's
-- content for a personal link (report_form), and a report submission that a
-- double tap, a browser retry or a lost answer cannot store twice
-- (submit_report with an idempotency key).  The HTTP worker (src/web/http.c)
-- is one client of these functions; any other frontend can be another.

-- The idempotency key of the site's latest submission by link
-- (request_target.submit_key, src/requests/requests.sql).  A request
-- with the same key is a replay: it returns that report's id and stores
-- nothing.  One key per site is enough for the cases that occur (a double
-- tap, a retry after a lost answer: both repeat the site's newest
-- submission); an update of the site's status carries a new key.
CREATE FUNCTION status_checker.submit_report(token text, answers jsonb, idempotency_key text)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'sc_submit_report_key';
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb, text) IS
'Submit a site''s report with its personal token, at most once per idempotency key (1 to 128 printable ASCII characters, '
'e.g. a UUID made when the form was shown): a replay of the site''s latest submission returns its report id and stores nothing';
GRANT EXECUTE ON FUNCTION status_checker.submit_report(text, jsonb, text) TO status_checker_api, status_checker_reporter, status_checker_gateway;

-- report_form: src/web/report_form.sql (replaced by upgrades)

-- ---------------------------------------------------------------- dashboard
--
-- Tenant users sign in to the dashboard with a password (argon2id, from
-- libargon2: src/web/password.c).  The gateway (the HTTP worker) checks it
-- with web_login and then acts for the user with set_app_user, so that the
-- dashboard reads the views with the user's own role under row-level
-- security.  Passwords and sessions are in tables nobody but the API
-- functions may read.

CREATE FUNCTION status_checker._password_hash(password text) RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_password_hash';
CREATE FUNCTION status_checker._password_verify(hash text, password text) RETURNS boolean
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_password_verify';

CREATE TABLE status_checker.web_login (
    tenant_id      bigint NOT NULL,
    user_id        bigint NOT NULL,
    password_hash  text NOT NULL,            -- argon2id, PHC string format
    failures       integer NOT NULL DEFAULT 0,   -- failed sign-ins (not from a trusted device) since the last success
    throttled_until timestamptz,             -- until then, sign-ins not from a trusted device are not checked (0.10.1)
    changed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    throttled      integer NOT NULL DEFAULT 0,   -- sign-ins refused unchecked while throttled, since the last success (0.10.1)
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_login IS
'Dashboard passwords of a tenant''s users (argon2id hashes), failed sign-ins and how long sign-ins are slowed; read only by the API functions';
ALTER TABLE status_checker.web_login ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.web_login FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.web_login
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

CREATE TABLE status_checker.web_session (
    tenant_id     bigint NOT NULL,
    session_hash  bytea NOT NULL,            -- SHA-256 of the cookie's value
    user_id       bigint NOT NULL,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    seen_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, session_hash),
    UNIQUE (session_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_session IS
'Dashboard sessions: the hash of each session cookie, its user and CSRF token; a session ends after 2 hours idle or 12 hours';
ALTER TABLE status_checker.web_session ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.web_session FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.web_session
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));

-- password changes and failed sign-ins (the failures column) are audited
DO $$
DECLARE
    op text;
BEGIN
    FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('CREATE TRIGGER audit_%1$s AFTER %2$s ON status_checker.web_login '
                       'REFERENCING %3$s FOR EACH STATEMENT '
                       'EXECUTE FUNCTION status_checker._audit_changes(''tenant_id'', ''user_id'')',
                       op, upper(op),
                       CASE op WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                               WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                               ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END);
    END LOOP;
END
$$;

CREATE TYPE status_checker.web_login_result AS (
    ok            boolean,
    reason        text,        -- NULL, or 'wrong' for every failure (unknown user, wrong password, throttled)
    session_token text,
    csrf_token    text,
    role          text,
    locked_until  timestamptz, -- always NULL since 0.10.1: no account is locked (kept for gateways that read it)
    device_token  text         -- on success: the value of the browser's device cookie (0.10.1)
);
COMMENT ON TYPE status_checker.web_login_result IS 'The outcome of web_login';

CREATE TYPE status_checker.web_session_user AS (tenant_id bigint, login text, role text, csrf_token text);
COMMENT ON TYPE status_checker.web_session_user IS 'The user of a dashboard session (web_session_user)';

-- set_user_password, web_login and web_session_user: src/web/sign_in.sql
-- (sign-ins slowed, never locked, and trusted devices, 0.10.1).

CREATE OR REPLACE FUNCTION status_checker.web_logout(session_token text)
    RETURNS void
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM status_checker.web_session WHERE session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
$$;
COMMENT ON FUNCTION status_checker.web_logout(text) IS 'For gateways: end a dashboard session';
GRANT EXECUTE ON FUNCTION status_checker.web_logout(text) TO status_checker_api, status_checker_gateway;

CREATE OR REPLACE FUNCTION status_checker.purge_web_sessions()
    RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH gone AS (
        DELETE FROM status_checker.web_session
         WHERE seen_at < now() - interval '2 hours' OR created_at < now() - interval '12 hours'
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION status_checker.purge_web_sessions() IS
'Delete the dashboard sessions that have ended (2 hours idle, 12 hours in all); returns how many. Run hourly by schedule_jobs()';
GRANT EXECUTE ON FUNCTION status_checker.purge_web_sessions() TO status_checker_api, status_checker_operator;

-- Everything the dashboard shows for one request, in one document; read
-- with the caller's privileges (row-level security: another tenant's
-- request does not exist).
CREATE OR REPLACE FUNCTION status_checker.request_dashboard(request_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r status_checker.request;
    result jsonb;
BEGIN
    -- under the caller's row-level security: another tenant's request does not exist (23503)
    r := status_checker._require_request(request_dashboard.request_id);
    SELECT jsonb_build_object(
        'request', (SELECT jsonb_build_object(
                        'id', q.request_id, 'title', q.title, 'state', q.state, 'drill', q.drill,
                        'created_at', q.created_at, 'deadline', q.deadline,
                        'event', (SELECT jsonb_build_object('summary', status_checker._event_title(e), 'max_shindo', e.max_shindo::text,
                                                            'origin_time', e.origin_time)
                                  FROM status_checker.event e WHERE e.event_id = q.event_id),
                        'targets', q.targets, 'responded', q.responded, 'response_rate', q.response_rate,
                        'level_counts', q.level_counts, 'worst_level', q.worst_level, 'worst_color', q.worst_color)
                    FROM status_checker.request_summary q WHERE q.tenant_id = r.tenant_id AND q.request_id = r.request_id),
        'levels', (SELECT jsonb_agg(jsonb_build_object('level', fl.level, 'label', jsonb_build_object('ja', fl.label_ja, 'en', fl.label_en),
                                                       'color', fl.color, 'icon', fl.icon) ORDER BY fl.level)
                   FROM status_checker.form f, status_checker._form_levels(f.definition) fl
                   WHERE f.tenant_id = r.tenant_id AND f.form_id = r.form_id),
        'no_answer', (SELECT jsonb_build_object('color', n.color, 'icon', n.icon) FROM status_checker._no_answer_style() n),
        'groups', coalesce((SELECT jsonb_agg(jsonb_build_object('id', g.group_id, 'path', g.group_path, 'depth', g.depth,
                                                                'targets', g.targets, 'responded', g.responded,
                                                                'worst_level', g.worst_level, 'color', g.color) ORDER BY g.group_path)
                            FROM status_checker.group_rollup g WHERE g.tenant_id = r.tenant_id AND g.request_id = r.request_id), '[]'),
        'sites', coalesce((SELECT jsonb_agg(jsonb_build_object('code', s.site_code, 'name', s.site_name, 'group', s.group_path,
                                                               'level', s.level, 'label', jsonb_build_object('ja', s.level_label, 'en', s.level_label_en),
                                                               'color', s.color, 'icon', s.icon, 'lat', s.lat, 'lon', s.lon,
                                                               'reported_at', s.last_reported_at, 'reports', s.report_count,
                                                               'late', s.late, 'shindo', t.asked_shindo::text,
                                                               'shindo_rank', status_checker.shindo_ordinal(t.asked_shindo))
                                             ORDER BY s.level DESC NULLS FIRST, t.asked_shindo DESC NULLS LAST, s.site_code)
                           FROM status_checker.site_status s
                           JOIN status_checker.request_target t ON t.tenant_id = s.tenant_id AND t.request_id = s.request_id
                                                               AND t.site_id = s.site_id
                           WHERE s.tenant_id = r.tenant_id AND s.request_id = r.request_id), '[]'),
        'timeline', coalesce((SELECT jsonb_agg(jsonb_build_object('minute', m.minute, 'responded', m.responded) ORDER BY m.minute)
                              FROM status_checker.response_timeline m WHERE m.tenant_id = r.tenant_id AND m.request_id = r.request_id), '[]'))
      INTO result;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.request_dashboard(bigint) IS
'Everything a dashboard shows for one request, as one document: the request and its counts, the form''s levels (labels, colours, icons), '
'the group roll-up, every site (status, position, intensity it was asked at; unanswered first, the most shaken first) and the response timeline';
GRANT EXECUTE ON FUNCTION status_checker.request_dashboard(bigint) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- status_matrix_csv: src/web/csv_export.sql.

-- What the HTTP workers have done since the server started (shared memory;
-- NULLs when the library is not preloaded).  system_health() shows it.
CREATE OR REPLACE FUNCTION status_checker.http_counters(OUT requests bigint, OUT reports bigint, OUT refused bigint)
    RETURNS record
    LANGUAGE c VOLATILE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_http_counters';
COMMENT ON FUNCTION status_checker.http_counters() IS
'The HTTP workers since the server started, all together: requests answered, reports stored through them, requests refused (429) '
'for too many wrong links or passwords from one address';
GRANT EXECUTE ON FUNCTION status_checker.http_counters() TO status_checker_operator, pg_monitor;
