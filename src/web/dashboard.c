/*-------------------------------------------------------------------------
 *
 * dashboard.c
 *	  The crisis dashboard for a tenant's users, under /d/: sign-in with a
 *	  password (argon2id, web_login), a session cookie, and pages that a
 *	  script (assets/dashboard.js) fills from JSON endpoints.
 *
 *	  GET  /d/login              the sign-in form
 *	  POST /d/login              sign in: sets the session cookie, 303 → /d/
 *	  POST /d/logout             sign out (CSRF token required)
 *	  GET  /d/                   the tenant's requests
 *	  GET  /d/r/<id>             one request: tiles, map, timeline, roll-up, matrix
 *	  GET  /d/r/<id>/status.csv  the status matrix as CSV
 *	  GET  /d/api/requests       JSON: the tenant's requests (request_summary)
 *	  GET  /d/api/r/<id>         JSON: request_dashboard(id), with an ETag
 *	  GET  /d/api/r/<id>/geojson GeoJSON: request_geojson(id)
 *
 * Each data request runs in one transaction: the session's user is found
 * (web_session_user, as the gateway), the worker acts for that user
 * (set_app_user) and takes the user's own group role, and the query runs
 * under row-level security like any other client's.  So a viewer sees what
 * a viewer may see, and another tenant's request does not exist.
 *
 * The session cookie is HttpOnly, Secure and SameSite=Strict, scoped to
 * /d; the sign-in form carries a token matched with a cookie of its own
 * (no sign-in from another site); sign-out carries the session's CSRF
 * token.  Both tokens are compared in constant time.
 *
 * Sign-in never locks an account (web_login throttles it instead), and
 * every failure is answered alike: 401 and the same page, whether the
 * login exists or not, the password was wrong or the account throttled.
 * A browser that signed in before keeps a device cookie (sc_device, scoped
 * to /d/login) that web_login recognises, so that other people's failures
 * do not throttle it.  Wrong passwords count towards the client address's
 * limit, as wrong report links do (429 while the address is blocked).
 *
 * Whatever a statement returns is checked before it is used: a session
 * whose user is gone (deleted between two statements) is no session, and
 * no NULL reaches a C string function or SET ROLE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "common/kept_plan.h"
#include "web/web.h"

#define SESSION_COOKIE "sc_session"
#define LOGIN_COOKIE "sc_login"
#define DEVICE_COOKIE "sc_device"
#define SESSION_MAX_AGE "43200"
#define DEVICE_MAX_AGE "15552000"	/* 180 days */

typedef enum DashQuery
{
	DQ_NONE,					/* only the session */
	DQ_REQUESTS,
	DQ_DASHBOARD,
	DQ_GEOJSON,
	DQ_CSV,
	DQ_LOGOUT
} DashQuery;

typedef struct DashCall
{
	WebRequest *req;
	const char *session;
	DashQuery	query;
	int64		request_id;
	/* out */
	int64		tenant_id;
	char	   *login;
	char	   *role;
	char	   *csrf;
	char	   *result;
} DashCall;

typedef struct LoginCall
{
	WebRequest *req;
	int64		tenant_id;
	const char *login;
	const char *password;
	const char *device;			/* the device cookie, or NULL */
	/* out */
	bool		ok;
	char	   *session;
	char	   *device_token;	/* the device cookie to keep, or NULL */
} LoginCall;

static KeptPlan plan_session = {
	NULL, "SELECT tenant_id, login, role, csrf_token FROM status_checker.web_session_user($1)", 1, {TEXTOID}
};
static KeptPlan plan_act = {NULL, "SELECT status_checker.set_app_user($1, $2)", 2, {INT8OID, TEXTOID}};
static KeptPlan plan_requests = {
	NULL,
	"SELECT coalesce(jsonb_agg(jsonb_build_object('id', request_id, 'title', title, 'state', state, 'drill', drill,"
	"       'created_at', created_at, 'deadline', deadline, 'targets', targets, 'responded', responded,"
	"       'response_rate', response_rate, 'worst_level', worst_level, 'worst_color', worst_color)"
	"       ORDER BY created_at DESC, request_id DESC), '[]')::text"
	"  FROM (SELECT * FROM status_checker.request_summary ORDER BY created_at DESC, request_id DESC LIMIT 500) s",
	0, {0}
};
static KeptPlan plan_dashboard = {NULL, "SELECT status_checker.request_dashboard($1)::text", 1, {INT8OID}};
static KeptPlan plan_geojson = {NULL, "SELECT status_checker.request_geojson($1)::text", 1, {INT8OID}};
static KeptPlan plan_csv = {NULL, "SELECT status_checker.status_matrix_csv($1)", 1, {INT8OID}};
static KeptPlan plan_logout = {NULL, "SELECT status_checker.web_logout($1)", 1, {TEXTOID}};
static KeptPlan plan_login = {
	NULL,
	"SELECT ok, session_token, device_token FROM status_checker.web_login($1, $2, $3, $4)",
	4, {INT8OID, TEXTOID, TEXTOID, TEXTOID}
};

/* the group roles set_app_user may name */
static const char *const group_roles[] = {
	"status_checker_viewer", "status_checker_reporter", "status_checker_manager", "status_checker_admin"
};

/* column c of the one row, as text in the request's context (NULL for NULL) */
static char *
value(WebRequest *req, SPITupleTable *tt, int c)
{
	char	   *v = SPI_getvalue(tt->vals[0], tt->tupdesc, c);

	return v ? MemoryContextStrdup(req->cxt, v) : NULL;
}

/* column c of the one row, which must not be NULL: else an error with `sqlstate` */
static char *
required(WebRequest *req, SPITupleTable *tt, int c, int sqlstate, const char *what)
{
	char	   *v = value(req, tt, c);

	if (v == NULL)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("%s", what)));
	return v;
}

/* a value of the session's user: a row of NULLs (the user deleted meanwhile) is no session (28000) */
static char *
user_value(WebRequest *req, SPITupleTable *tt, int c)
{
	return required(req, tt, c, ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "the session's user no longer exists");
}

/* a cookie's value of 43 characters of base64url (256 bits), as the worker's tokens are */
static bool
token_shaped(const char *t)
{
	return t != NULL && strlen(t) == 43 &&
		strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43;
}

static void
call_dashboard(void *arg)
{
	DashCall   *c = arg;
	Datum		v[2];
	SPITupleTable *tt;
	KeptPlan   *q = NULL;
	const char *role;
	bool		known = false;

	v[0] = CStringGetTextDatum(c->session);
	tt = kept_plan_run(&plan_session, v, NULL, false, 1);
	c->tenant_id = pg_strtoint64(user_value(c->req, tt, 1));
	c->login = user_value(c->req, tt, 2);
	c->role = user_value(c->req, tt, 3);
	c->csrf = user_value(c->req, tt, 4);
	switch (c->query)
	{
		case DQ_NONE:
			return;
		case DQ_LOGOUT:
			kept_plan_run(&plan_logout, v, NULL, false, 1);
			return;
		case DQ_REQUESTS:
			q = &plan_requests;
			break;
		case DQ_DASHBOARD:
			q = &plan_dashboard;
			break;
		case DQ_GEOJSON:
			q = &plan_geojson;
			break;
		case DQ_CSV:
			q = &plan_csv;
			break;
	}

	/* act for the user, with the user's own role, until the end of the transaction */
	v[0] = Int64GetDatum(c->tenant_id);
	v[1] = CStringGetTextDatum(c->login);
	tt = kept_plan_run(&plan_act, v, NULL, false, 1);
	role = user_value(c->req, tt, 1);
	/* only ever one of the four group roles */
	for (int i = 0; i < lengthof(group_roles); i++)
		known |= strcmp(role, group_roles[i]) == 0;
	if (!known)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("set_app_user named \"%s\", which is not a group role", role)));
	web_set_local_role(role);
	v[0] = Int64GetDatum(c->request_id);
	tt = kept_plan_run(q, v, NULL, true, 1);
	c->result = required(c->req, tt, 1, ERRCODE_NO_DATA_FOUND, "there is no such request");
}

static void
call_login(void *arg)
{
	LoginCall  *c = arg;
	Datum		v[4];
	char		n[4] = {' ', ' ', ' ', ' '};
	SPITupleTable *tt;
	char	   *ok;

	v[0] = Int64GetDatum(c->tenant_id);
	v[1] = CStringGetTextDatum(c->login);
	v[2] = CStringGetTextDatum(c->password);
	if (c->device)
		v[3] = CStringGetTextDatum(c->device);
	else
		n[3] = 'n';
	tt = kept_plan_run(&plan_login, v, n, false, 1);
	ok = value(c->req, tt, 1);
	c->ok = ok && strcmp(ok, "t") == 0;
	if (!c->ok)
		return;
	/* a success without a session is none (an error: nothing of it stays) */
	c->session = value(c->req, tt, 2);
	if (!token_shaped(c->session))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("web_login succeeded without a session token")));
	c->device_token = value(c->req, tt, 3);
}

/* ------------------------------------------------------------------ pages */

static bool
en(const char *lang)
{
	return strcmp(lang, "en") == 0;
}

static void
shell_start(StringInfo b, const char *lang, const char *title)
{
	appendStringInfo(b,
					 "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
					 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
					 "<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">"
					 "<title>", lang);
	html_escape(b, title);
	appendStringInfoString(b, "</title><link rel=\"stylesheet\" href=\"/assets/dashboard.css\"></head><body>");
}

/*
 * The sign-in form, with `message` above it.  `pre` is the form's token to
 * keep (a failed sign-in keeps the one it came with), or NULL for a new
 * one.  The organisation ID is filled in again, the login is not: every
 * failed sign-in with the same form and organisation ID gets the very same
 * page, whatever the login was.
 */
static enum MHD_Result
login_page(struct MHD_Connection *conn, WebRequest *req, unsigned int status, const char *message, const char *pre)
{
	const char *lang = web_lang(conn, req);
	char	   *cookie;
	const char *extra[] = {"Set-Cookie", NULL, NULL};
	const char *tenant = web_field(req, "tenant");
	StringInfoData b;

	if (pre == NULL)
		pre = web_new_key();
	extra[1] = cookie = psprintf(LOGIN_COOKIE "=%s; Path=/d; HttpOnly; Secure; SameSite=Strict; Max-Age=3600", pre);

	initStringInfo(&b);
	shell_start(&b, lang, en(lang) ? "Sign in — status_checker" : "ログイン — status_checker");
	appendStringInfo(&b, "<main class=\"login\"><h1>%s</h1>",
					 en(lang) ? "Crisis dashboard" : "災害対策ダッシュボード");
	if (message)
	{
		appendStringInfoString(&b, "<p class=\"banner bad\" role=\"alert\" id=\"login-error\">");
		html_escape(&b, message);
		appendStringInfoString(&b, "</p>");
	}
	appendStringInfo(&b, "<form method=\"post\" action=\"/d/login\"><input type=\"hidden\" name=\"_pre\" value=\"%s\">"
					 "<input type=\"hidden\" name=\"_lang\" value=\"%s\">", pre, lang);
	appendStringInfo(&b, "<label>%s<input name=\"tenant\" inputmode=\"numeric\" required autocomplete=\"organization\" value=\"",
					 en(lang) ? "Organisation ID" : "組織ID");
	html_escape(&b, tenant ? tenant : "");
	appendStringInfo(&b, "\"></label><label>%s<input name=\"login\" required autocomplete=\"username\"></label>",
					 en(lang) ? "Login" : "ログインID");
	appendStringInfo(&b, "<label>%s<input name=\"password\" type=\"password\" required "
					 "autocomplete=\"current-password\"></label><button type=\"submit\">%s</button></form>"
					 "<p class=\"lang\"><a href=\"/d/login?lang=%s\">%s</a></p></main></body></html>\n",
					 en(lang) ? "Password" : "パスワード", en(lang) ? "Sign in" : "ログイン",
					 en(lang) ? "ja" : "en", en(lang) ? "日本語" : "English");
	return web_reply_ex(conn, status, "text/html; charset=utf-8", b.data, b.len, 0, NULL, false, extra);
}

/* the page the script fills: the user, sign-out, and where the data comes from */
static enum MHD_Result
app_page(struct MHD_Connection *conn, WebRequest *req, DashCall *c, const char *page, int64 request_id)
{
	const char *lang = web_lang(conn, req);
	StringInfoData b;

	initStringInfo(&b);
	shell_start(&b, lang, en(lang) ? "Crisis dashboard — status_checker" : "災害対策ダッシュボード — status_checker");
	appendStringInfo(&b, "<header class=\"top\"><a href=\"/d/?lang=%s\" class=\"home\">%s</a><span class=\"user\">",
					 lang, en(lang) ? "Crisis dashboard" : "災害対策ダッシュボード");
	html_escape(&b, c->login);
	appendStringInfoString(&b, " (");
	html_escape(&b, c->role);
	appendStringInfoString(&b, ")</span><form method=\"post\" action=\"/d/logout\" class=\"logout\">"
						   "<input type=\"hidden\" name=\"_csrf\" value=\"");
	html_escape(&b, c->csrf);
	appendStringInfo(&b, "\"><button type=\"submit\">%s</button></form></header>"
					 "<main id=\"app\" data-page=\"%s\" data-lang=\"%s\" data-request=\"" INT64_FORMAT "\"",
					 en(lang) ? "Sign out" : "ログアウト", page, lang, request_id);
	/* map tiles, when configured (the policy allows their origin) */
	if (web_tile_origin())
	{
		appendStringInfoString(&b, " data-tiles=\"");
		html_escape(&b, sc_http_map_tiles);
		appendStringInfoString(&b, "\" data-attribution=\"");
		html_escape(&b, sc_http_map_attribution);
		appendStringInfoChar(&b, '"');
	}
	appendStringInfo(&b, "><p class=\"loading\">%s</p></main>"
					 "<noscript><p class=\"banner bad\">%s</p></noscript>"
					 "<script src=\"/assets/dashboard.js\" defer></script></body></html>\n",
					 en(lang) ? "Loading…" : "読み込み中…",
					 en(lang) ? "The dashboard needs JavaScript." : "ダッシュボードには JavaScript が必要です。");
	return web_reply_ex(conn, MHD_HTTP_OK, "text/html; charset=utf-8", b.data, b.len, 0, NULL, false, NULL);
}

static enum MHD_Result
to_login(struct MHD_Connection *conn, bool api)
{
	if (api)
		return web_reply_json_error(conn, MHD_HTTP_UNAUTHORIZED, "28000", "sign in first", NULL, 0);
	return web_reply_ex(conn, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "", 0, 0, "/d/login", false, NULL);
}

/* a weak validator of a JSON document: its SHA-256 */
static char *
etag_of(const char *body)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	StringInfoData s;

	if (EVP_Digest(body, strlen(body), d, &n, EVP_sha256(), NULL) != 1)
		return NULL;
	initStringInfo(&s);
	appendStringInfoString(&s, "W/\"");
	for (unsigned int i = 0; i < 16 && i < n; i++)
		appendStringInfo(&s, "%02x", d[i]);
	appendStringInfoChar(&s, '"');
	return s.data;
}

static enum MHD_Result
sign_in(struct MHD_Connection *conn, WebRequest *req, const uint8 *addr)
{
	const char *lang = web_lang(conn, req);
	const char *pre = web_field(req, "_pre");
	const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, LOGIN_COOKIE);
	const char *tenant = web_field(req, "tenant");
	const char *device = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, DEVICE_COOKIE);
	LoginCall	c = {0};
	char	   *end = NULL;

	/* the form's token: the one its cookie holds, of the shape web_new_key makes */
	if (pre == NULL || strlen(pre) != 32 || strspn(pre, "0123456789abcdef") != 32 || !web_secret_equal(pre, cookie))
		return login_page(conn, req, MHD_HTTP_FORBIDDEN,
						  en(lang) ? "The sign-in form has expired. Please try again."
						  : "ログイン画面の有効期限が切れました。もう一度お試しください。", NULL);
	c.req = req;
	c.login = web_field(req, "login");
	c.password = web_field(req, "password");
	c.device = token_shaped(device) ? device : NULL;
	c.tenant_id = tenant ? strtoll(tenant, &end, 10) : 0;
	if (tenant != NULL && *tenant != '\0' && *end == '\0' && c.login != NULL && c.password != NULL &&
		!web_in_transaction(req, call_login, &c, false, "status_checker: dashboard sign-in"))
	{
		web_log_failure(req->error, "a sign-in");
		return login_page(conn, req, MHD_HTTP_SERVICE_UNAVAILABLE,
						  en(lang) ? "Signing in is not possible at this moment. Please try again shortly."
						  : "ただいまログインできません。しばらくしてからお試しください。", pre);
	}
	if (c.ok)
	{
		char	   *set = psprintf(SESSION_COOKIE "=%s; Path=/d; HttpOnly; Secure; SameSite=Strict; Max-Age="
								   SESSION_MAX_AGE, c.session);
		const char *extra[] = {"Set-Cookie", set,
			"Set-Cookie", LOGIN_COOKIE "=; Path=/d; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
			/* the browser's device cookie: web_login knows it at the next sign-in */
			token_shaped(c.device_token) ? "Set-Cookie" : NULL,
			token_shaped(c.device_token)
			? psprintf(DEVICE_COOKIE "=%s; Path=/d/login; HttpOnly; Secure; SameSite=Strict; Max-Age=" DEVICE_MAX_AGE,
					   c.device_token) : NULL,
		NULL};

		return web_reply_ex(conn, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "", 0, 0,
							psprintf("/d/?lang=%s", lang), false, extra);
	}
	/*
	 * every failure alike: an unknown login, a wrong password, a throttled
	 * account.  So the page names both causes: a user whose right password
	 * is refused on a new browser while the account is slowed must not be
	 * told that the password is wrong.
	 */
	web_rate_note_failure(addr);
	return login_page(conn, req, MHD_HTTP_UNAUTHORIZED,
					  en(lang) ? "Sign-in failed: the organisation ID, login or password is wrong, "
					  "or this account had many failed sign-ins and is slowed for a few minutes "
					  "(a browser you signed in with before is not). Please check and try again later."
					  : "サインインできませんでした。組織ID・ログインID・パスワードのいずれかが違うか、"
					  "このアカウントへのサインインの失敗が続いたため数分間制限されています"
					  "（以前サインインしたブラウザーは制限されません）。確認のうえ、しばらくしてからお試しください。", pre);
}

static bool
parse_id(const char *s, int64 *id, const char **rest)
{
	char	   *end;
	long long	v;

	if (*s < '0' || *s > '9')
		return false;
	v = strtoll(s, &end, 10);
	if (v <= 0)
		return false;
	*id = v;
	*rest = end;
	return true;
}

enum MHD_Result
dashboard_dispatch(struct MHD_Connection *conn, WebRequest *req, const char *url, bool get, bool post,
				   const uint8 *addr)
{
	const char *session = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, SESSION_COOKIE);
	const char *path = url + 2;		/* after "/d" */
	bool		api = strncmp(path, "/api/", 5) == 0;
	DashCall	c = {0};
	const char *rest = "";
	int			wait;

	if (!get && !post)
		return web_reply_ex(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
							"method not allowed\n", 19, 0, NULL, false, NULL);
	if (strcmp(path, "/login") == 0)
	{
		const char *lang = web_lang(conn, req);

		if (get)
			return login_page(conn, req, MHD_HTTP_OK, NULL, NULL);
		/* about the address, not the account: it says nothing of any login */
		if ((wait = web_rate_limited(addr)) > 0)
			return web_reply_message(conn, MHD_HTTP_TOO_MANY_REQUESTS, lang,
									 en(lang) ? "Too many attempts" : "試行回数が多すぎます",
									 psprintf(en(lang) ? "Too many failed attempts from this address. Please try again in %s."
											  : "このアドレスからの失敗が続きました。%s後にもう一度お試しください。",
											  web_wait_text(lang, wait)), wait);
		return sign_in(conn, req, addr);
	}

	/* everything else needs a session */
	c.req = req;
	c.session = session;
	/* a session cookie is 43 characters of base64url; anything else is no session */
	if (!token_shaped(session))
		return to_login(conn, api);

	if (strcmp(path, "/logout") == 0 && post)
	{
		const char *extra[] = {"Set-Cookie", SESSION_COOKIE "=; Path=/d; HttpOnly; Secure; SameSite=Strict; Max-Age=0",
		NULL};

		if (!web_in_transaction(req, call_dashboard, &c, false, "status_checker: dashboard"))
			return to_login(conn, false);
		if (!web_secret_equal(web_field(req, "_csrf"), c.csrf))
			return web_reply_message(conn, MHD_HTTP_FORBIDDEN, web_lang(conn, req), "Forbidden",
									 "The form's security token is missing or wrong.", 0);
		c.query = DQ_LOGOUT;
		if (!web_in_transaction(req, call_dashboard, &c, false, "status_checker: dashboard"))
			web_log_failure(req->error, "a sign-out");
		return web_reply_ex(conn, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "", 0, 0, "/d/login", false, extra);
	}
	if (!get)
		return web_reply_ex(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
							"method not allowed\n", 19, 0, NULL, false, NULL);

	if (strcmp(path, "") == 0 || strcmp(path, "/") == 0)
		c.query = DQ_NONE;
	else if (strcmp(path, "/api/requests") == 0)
		c.query = DQ_REQUESTS;
	else if (strncmp(path, "/r/", 3) == 0 && parse_id(path + 3, &c.request_id, &rest) &&
			 (*rest == '\0' || strcmp(rest, "/status.csv") == 0))
		c.query = *rest == '\0' ? DQ_NONE : DQ_CSV;
	else if (strncmp(path, "/api/r/", 7) == 0 && parse_id(path + 7, &c.request_id, &rest) &&
			 (*rest == '\0' || strcmp(rest, "/geojson") == 0))
		c.query = *rest == '\0' ? DQ_DASHBOARD : DQ_GEOJSON;
	else
		return web_reply_message(conn, MHD_HTTP_NOT_FOUND, web_lang(conn, req), "Not found",
								 "There is nothing at this address.", 0);

	if (!web_in_transaction(req, call_dashboard, &c, false, "status_checker: dashboard"))
	{
		ErrorData  *e = req->error;

		if (e->sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
			return to_login(conn, api || c.query == DQ_CSV);
		if (e->sqlerrcode == ERRCODE_FOREIGN_KEY_VIOLATION || e->sqlerrcode == ERRCODE_NO_DATA_FOUND)
			return api ? web_reply_json_error(conn, MHD_HTTP_NOT_FOUND, web_sqlstate_of(e), e->message, NULL, 0)
				: web_reply_message(conn, MHD_HTTP_NOT_FOUND, web_lang(conn, req), "Not found", e->message, 0);
		web_log_failure(e, "a dashboard request");
		return api ? web_reply_json_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "XX000", "try again shortly", NULL, 5)
			: web_reply_message(conn, MHD_HTTP_SERVICE_UNAVAILABLE, web_lang(conn, req), "Try again shortly",
								"The dashboard cannot answer at this moment.", 5);
	}

	switch (c.query)
	{
		case DQ_NONE:
			return app_page(conn, req, &c, c.request_id ? "request" : "list", c.request_id);
		case DQ_CSV:
			{
				const char *extra[] = {"Content-Disposition",
					psprintf("attachment; filename=\"status-" INT64_FORMAT ".csv\"", c.request_id), NULL};

				return web_reply_ex(conn, MHD_HTTP_OK, "text/csv; charset=utf-8", c.result, strlen(c.result),
									0, NULL, false, extra);
			}
		case DQ_GEOJSON:
			return web_reply_ex(conn, MHD_HTTP_OK, "application/geo+json", c.result, strlen(c.result),
								0, NULL, false, NULL);
		default:
			{
				/* polling: an unchanged document is answered 304, without a body */
				char	   *etag = etag_of(c.result);
				const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
				const char *extra[] = {"ETag", etag, NULL};

				if (etag && inm && strcmp(inm, etag) == 0)
					return web_reply_ex(conn, MHD_HTTP_NOT_MODIFIED, "application/json", "", 0, 0, NULL, false, extra);
				return web_reply_ex(conn, MHD_HTTP_OK, "application/json", c.result, strlen(c.result),
									0, NULL, false, etag ? extra : NULL);
			}
	}
}
