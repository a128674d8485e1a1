-- src/web/web.sql — what a reporter page needs from the SQL API: the page's
-- content for a personal link (report_form), and a report submission that a
-- double tap, a browser retry or a lost answer cannot store twice
-- (submit_report with an idempotency key).  The HTTP worker (src/web/http.c)
-- is one client of these functions; any other frontend can be another.

-- The idempotency key of the site's latest submission by link.  A request
-- with the same key is a replay: it returns that report's id and stores
-- nothing.  One key per site is enough for the cases that occur (a double
-- tap, a retry after a lost answer: both repeat the site's newest
-- submission); an update of the site's status carries a new key.
ALTER TABLE status_checker.request_target ADD COLUMN IF NOT EXISTS submit_key text;
COMMENT ON COLUMN status_checker.request_target.submit_key IS
'Idempotency key of the latest report submitted by link with one (submit_report(token, answers, idempotency_key)); a replay with the same key stores nothing';

CREATE OR REPLACE FUNCTION status_checker.submit_report(token text, answers jsonb, idempotency_key text)
    RETURNS bigint
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_submit_report_key';
COMMENT ON FUNCTION status_checker.submit_report(text, jsonb, text) IS
'Submit a site''s report with its personal token, at most once per idempotency key (1 to 128 printable ASCII characters, '
'e.g. a UUID made when the form was shown): a replay of the site''s latest submission returns its report id and stores nothing';

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
    failures       integer NOT NULL DEFAULT 0,   -- failed sign-ins since the last success
    locked_until   timestamptz,
    changed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES status_checker.app_user (tenant_id, user_id) ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.web_login IS
'Dashboard passwords of a tenant''s users (argon2id hashes), failed sign-ins and lockouts; read only by the API functions';

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

-- password changes and failed sign-ins (the failures column) are audited
DO $$
DECLARE
    op text;
BEGIN
    FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit_%1$s ON status_checker.web_login', op);
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

CREATE OR REPLACE FUNCTION status_checker.set_user_password(tenant_id bigint, login text, password text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
BEGIN
    PERFORM status_checker._no_nulls('set_user_password', ARRAY['tenant_id', 'login', 'password'],
                                     ARRAY[set_user_password.tenant_id::text, set_user_password.login,
                                           CASE WHEN set_user_password.password IS NOT NULL THEN '' END]);
    IF char_length(set_user_password.password) < 10 OR char_length(set_user_password.password) > 200 THEN
        RAISE EXCEPTION 'a password has 10 to 200 characters'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A long passphrase is best; any characters may be used.';
    END IF;
    u := status_checker._require_user(set_user_password.tenant_id, set_user_password.login);
    INSERT INTO status_checker.web_login AS w (tenant_id, user_id, password_hash)
    VALUES (u.tenant_id, u.user_id, status_checker._password_hash(set_user_password.password))
    ON CONFLICT (tenant_id, user_id)
    DO UPDATE SET password_hash = EXCLUDED.password_hash, failures = 0, locked_until = NULL, changed_at = now();
    -- a new password ends the user's sessions
    DELETE FROM status_checker.web_session s WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id;
END
$$;
COMMENT ON FUNCTION status_checker.set_user_password(bigint, text, text) IS
'Set a user''s dashboard password (10 to 200 characters, stored as an argon2id hash); ends the user''s sessions and lifts a lockout. Admins only';

CREATE TYPE status_checker.web_login_result AS (
    ok            boolean,
    reason        text,        -- NULL, 'wrong' (unknown user or wrong password) or 'locked'
    session_token text,
    csrf_token    text,
    role          text,
    locked_until  timestamptz
);
COMMENT ON TYPE status_checker.web_login_result IS 'The outcome of web_login';

-- Sign in: not an error when it fails, so that the failure is counted (an
-- exception would roll the count back).  An unknown login costs as much as
-- a wrong password, and says the same.
CREATE OR REPLACE FUNCTION status_checker.web_login(tenant_id bigint, login text, password text)
    RETURNS status_checker.web_login_result
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    u status_checker.app_user;
    w status_checker.web_login;
    r status_checker.web_login_result;
    tok text;
BEGIN
    SELECT * INTO u FROM status_checker.app_user x
     WHERE x.tenant_id = web_login.tenant_id AND x.login = web_login.login;
    IF FOUND THEN
        SELECT * INTO w FROM status_checker.web_login x
         WHERE x.tenant_id = u.tenant_id AND x.user_id = u.user_id FOR UPDATE;
    END IF;
    IF w.user_id IS NULL THEN
        -- the same work as a real check (a hash of a password nobody uses, with the same cost)
        PERFORM status_checker._password_verify(
            '$argon2id$v=19$m=19456,t=2,p=1$vECpmqnf2MSab0kxsEBRHA$YYX7Ha0Zee6PEwWwQlKSVPNYQvtxdd6W8ImXJUr8SAg',
            coalesce(web_login.password, ''));
        r.ok := false;
        r.reason := 'wrong';
        RETURN r;
    END IF;
    IF w.locked_until > now() THEN
        r.ok := false;
        r.reason := 'locked';
        r.locked_until := w.locked_until;
        RETURN r;
    END IF;
    IF web_login.password IS NULL OR NOT status_checker._password_verify(w.password_hash, web_login.password) THEN
        -- five failures in a row lock the account for 15 minutes
        UPDATE status_checker.web_login x
           SET failures = x.failures + 1,
               locked_until = CASE WHEN x.failures + 1 >= 5 THEN now() + interval '15 minutes' END
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id
        RETURNING x.locked_until INTO r.locked_until;
        r.ok := false;
        r.reason := CASE WHEN r.locked_until IS NOT NULL THEN 'locked' ELSE 'wrong' END;
        RETURN r;
    END IF;
    IF w.failures > 0 OR w.locked_until IS NOT NULL THEN
        UPDATE status_checker.web_login x SET failures = 0, locked_until = NULL
         WHERE x.tenant_id = w.tenant_id AND x.user_id = w.user_id;
    END IF;
    tok := translate(encode(status_checker._random_bytes(32), 'base64'), E'+/=\n', '-_');
    r.ok := true;
    r.session_token := tok;
    r.csrf_token := translate(encode(status_checker._random_bytes(24), 'base64'), E'+/=\n', '-_');
    r.role := u.role;
    INSERT INTO status_checker.web_session (tenant_id, session_hash, user_id, csrf_token)
    VALUES (u.tenant_id, sha256(convert_to(tok, 'UTF8')), u.user_id, r.csrf_token);
    -- sessions that ended long ago go
    DELETE FROM status_checker.web_session s
     WHERE s.tenant_id = u.tenant_id AND s.user_id = u.user_id
       AND (s.seen_at < now() - interval '2 hours' OR s.created_at < now() - interval '12 hours');
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_login(bigint, text, text) IS
'For gateways: check a user''s dashboard password; on success a new session (its cookie value and CSRF token, returned once). '
'Five failures in a row lock the account for 15 minutes; failures are not errors (they are counted and audited)';

CREATE TYPE status_checker.web_session_user AS (tenant_id bigint, login text, role text, csrf_token text);
COMMENT ON TYPE status_checker.web_session_user IS 'The user of a dashboard session (web_session_user)';

CREATE OR REPLACE FUNCTION status_checker.web_session_user(session_token text)
    RETURNS status_checker.web_session_user
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    s status_checker.web_session;
    r status_checker.web_session_user;
BEGIN
    SELECT * INTO s FROM status_checker.web_session x
     WHERE x.session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
       AND x.seen_at > now() - interval '2 hours' AND x.created_at > now() - interval '12 hours';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such session, or it has ended'
            USING ERRCODE = 'invalid_authorization_specification', HINT = 'Sign in again.';
    END IF;
    -- idle time counts from the last request (written at most once a minute)
    IF s.seen_at < now() - interval '1 minute' AND NOT pg_is_in_recovery() THEN
        UPDATE status_checker.web_session x SET seen_at = now()
         WHERE x.tenant_id = s.tenant_id AND x.session_hash = s.session_hash;
    END IF;
    SELECT u.tenant_id, u.login, u.role, s.csrf_token INTO r
      FROM status_checker.app_user u WHERE u.tenant_id = s.tenant_id AND u.user_id = s.user_id;
    RETURN r;
END
$$;
COMMENT ON FUNCTION status_checker.web_session_user(text) IS
'For gateways: the user of a dashboard session (tenant, login, role, CSRF token); 28000 for an unknown or ended session '
'(2 hours idle, 12 hours in all)';

CREATE OR REPLACE FUNCTION status_checker.web_logout(session_token text)
    RETURNS void
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    DELETE FROM status_checker.web_session WHERE session_hash = sha256(convert_to(coalesce(session_token, ''), 'UTF8'))
$$;
COMMENT ON FUNCTION status_checker.web_logout(text) IS 'For gateways: end a dashboard session';

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

-- The status matrix as CSV (UTF-8 with a byte order mark, so that Excel
-- opens Japanese correctly).  A cell that starts with = + - @ is prefixed
-- with ' so that a spreadsheet does not run it as a formula.
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
           || coalesce(string_agg((SELECT string_agg('"' || replace(CASE WHEN left(x, 1) IN ('=', '+', '-', '@') THEN '''' || x ELSE x END,
                                                              '"', '""') || '"', ',' ORDER BY i)
                                   FROM unnest(c.v) WITH ORDINALITY u(x, i)), E'\r\n' ORDER BY c.site_code) || E'\r\n', '')
      INTO result
      FROM cells c;
    RETURN result;
END
$$;
COMMENT ON FUNCTION status_checker.status_matrix_csv(bigint) IS
'The status matrix of a request as CSV (UTF-8 with BOM, CRLF, every cell quoted; formula-like cells prefixed with '')';

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
