/*-------------------------------------------------------------------------
 *
 * web_common.c
 *	  What every page of the HTTP worker uses: one transaction per call (as
 *	  status_checker_gateway, with the worker's login checked), errors of
 *	  the SQL API mapped to HTTP statuses by their SQLSTATE, replies with the
 *	  security headers (the Content-Security-Policy), the page's language
 *	  and posted fields.
 *
 * The server loop (http.c) and the apps (reporter.c, dashboard.c) call
 * these; these call only html.c (the message page).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "access/xact.h"
#include "common/base64.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "common/sc_guc.h"
#include "web/web.h"

#define WHO "status_checker http"

int			sc_http_max_body = 256 * 1024;
char	   *sc_http_timezone = NULL;
char	   *sc_http_map_tiles = NULL;
char	   *sc_http_map_attribution = NULL;

static char *csp_header = NULL;

/* SET LOCAL ROLE: the role (and the outer role that row-level security and set_app_user look at) until the end of the transaction */
void
web_set_local_role(const char *role)
{
	/* a NULL would RESET the role: back to the worker's own login */
	if (role == NULL || role[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("no role to take")));
	(void) set_config_option("role", role, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
}

/* ---------------------------------------------------------------- the login */

/* the roles the worker's login must be a member of (SET LOCAL ROLE takes them) */
static const char *const needed_roles[] = {
	"status_checker_gateway", "status_checker_viewer", "status_checker_reporter",
	"status_checker_manager", "status_checker_admin"
};

/* roles that would give it more than it needs */
static const char *const needless_roles[] = {"status_checker_operator", "status_checker_api"};

static bool login_check_pending = true;

/*
 * Say in the log what is wrong with the worker's login
 * (status_checker.http_role, or the bootstrap superuser): that it is a
 * superuser, lacks a membership it needs or holds one it does not.  These
 * are warnings, and the worker serves on: what a missing membership
 * breaks fails closed (SET ROLE is refused, the request answered 503),
 * the memberships can be granted while it runs, and a worker that quit
 * would take the reporter pages down with it.  In a transaction; looked at
 * again after a reload, and at the next request when the extension's
 * roles do not exist yet.
 */
void
web_check_login(void)
{
	Oid			me = GetSessionUserId();
	char	   *name = GetUserNameFromId(me, false);
	StringInfoData missing;
	StringInfoData needless;

	login_check_pending = false;
	if (superuser_arg(me))
	{
		ereport(WARNING,
				(errmsg(WHO ": the HTTP worker logs in as the superuser \"%s\"", name),
				 errdetail("Its transactions take the role status_checker_gateway, but a mistake in the worker or in a "
						   "function it calls would act with every privilege."),
				 errhint("Set status_checker.http_role to a login that is a member of status_checker_gateway and of "
						 "the four group roles only (docs/web.md).")));
		return;
	}
	initStringInfo(&missing);
	initStringInfo(&needless);
	for (int i = 0; i < lengthof(needed_roles); i++)
	{
		Oid			role = get_role_oid(needed_roles[i], true);

		if (!OidIsValid(role))
		{
			/* the extension is not installed yet */
			login_check_pending = true;
			return;
		}
		if (!is_member_of_role(me, role))
			appendStringInfo(&missing, "%s%s", missing.len > 0 ? ", " : "", needed_roles[i]);
	}
	for (int i = 0; i < lengthof(needless_roles); i++)
	{
		Oid			role = get_role_oid(needless_roles[i], true);

		if (OidIsValid(role) && is_member_of_role(me, role))
			appendStringInfo(&needless, "%s%s", needless.len > 0 ? ", " : "", needless_roles[i]);
	}
	if (missing.len > 0)
		ereport(WARNING,
				(errmsg(WHO ": status_checker.http_role \"%s\" is not a member of %s", name, missing.data),
				 errdetail("Without status_checker_gateway every request fails; without a group role, the dashboard "
						   "refuses that role's users (503)."),
				 errhint("GRANT %s TO %s;", missing.data, quote_identifier(name))));
	if (needless.len > 0)
		ereport(WARNING,
				(errmsg(WHO ": status_checker.http_role \"%s\" is a member of %s, which it does not need",
						name, needless.data),
				 errdetail("The worker needs status_checker_gateway and the four group roles, nothing more."),
				 errhint("REVOKE %s FROM %s;", needless.data, quote_identifier(name))));
}

/* the worker's memberships may have changed (a reload): look again at the next request */
void
web_recheck_login(void)
{
	login_check_pending = true;
}

/*
 * Run fn(arg) in a transaction of its own, as status_checker_gateway,
 * connected to SPI.  On an error: false, with the error in req->error; the
 * transaction is rolled back and nothing of it remains.
 */
bool
web_in_transaction(WebRequest *req, void (*fn) (void *), void *arg, bool read_only, const char *activity)
{
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, activity);
	PG_TRY();
	{
		if (!OidIsValid(get_role_oid("status_checker_gateway", true)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("the status_checker extension is not installed in database \"%s\"", sc_database)));
		if (login_check_pending)
			web_check_login();
		if (read_only)
			XactReadOnly = true;
		/* SET LOCAL ROLE status_checker_gateway: undone at the end of the transaction */
		web_set_local_role("status_checker_gateway");
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		fn(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(req->cxt);
		req->error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(req->cxt);
	return ok;
}

const char *
web_sqlstate_of(ErrorData *e)
{
	return e ? unpack_sql_state(e->sqlerrcode) : "00000";
}

/*
 * The HTTP status for an error of the SQL API; 0 for one that is not the
 * caller's fault (logged, and answered 500 without details).
 */
int
web_status_for(ErrorData *e)
{
	switch (e->sqlerrcode)
	{
		case ERRCODE_INVALID_PARAMETER_VALUE:
		case ERRCODE_NULL_VALUE_NOT_ALLOWED:
			return MHD_HTTP_UNPROCESSABLE_CONTENT;
		case ERRCODE_INVALID_TEXT_REPRESENTATION:
		case ERRCODE_CHARACTER_NOT_IN_REPERTOIRE:
		case ERRCODE_UNTRANSLATABLE_CHARACTER:
			return MHD_HTTP_BAD_REQUEST;
		case ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION:
			return MHD_HTTP_NOT_FOUND;
		case ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE:
			return MHD_HTTP_CONFLICT;
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:
			return MHD_HTTP_CONTENT_TOO_LARGE;
		case ERRCODE_READ_ONLY_SQL_TRANSACTION:
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_UNDEFINED_OBJECT:
		case ERRCODE_UNDEFINED_FUNCTION:
		case ERRCODE_ADMIN_SHUTDOWN:
		case ERRCODE_CANNOT_CONNECT_NOW:
			return MHD_HTTP_SERVICE_UNAVAILABLE;
		default:
			return 0;
	}
}

/* ------------------------------------------------------------------ replies */

/*
 * Queue an answer with the security headers every answer carries.  `extra`
 * is NULL or a NULL-terminated list of header name, value, name, value …
 */
enum MHD_Result
web_reply_ex(struct MHD_Connection *conn, unsigned int status, const char *type, const char *body, size_t len,
			 int retry_after, const char *location, bool cacheable, const char *const *extra)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *) body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", csp_header);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(r, "Cache-Control", cacheable ? "public, max-age=86400" : "no-store");
	if (retry_after > 0)
	{
		char		s[16];

		snprintf(s, sizeof(s), "%d", retry_after);
		MHD_add_response_header(r, "Retry-After", s);
	}
	if (location)
		MHD_add_response_header(r, "Location", location);
	for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2)
		MHD_add_response_header(r, extra[i], extra[i + 1]);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* an answer without extra headers */
enum MHD_Result
web_reply(struct MHD_Connection *conn, unsigned int status, const char *type, const char *body, size_t len,
		  int retry_after, const char *location, bool cacheable)
{
	return web_reply_ex(conn, status, type, body, len, retry_after, location, cacheable, NULL);
}

enum MHD_Result
web_reply_html(struct MHD_Connection *conn, unsigned int status, StringInfo html, int retry_after)
{
	return web_reply(conn, status, "text/html; charset=utf-8", html->data, html->len, retry_after, NULL, false);
}

enum MHD_Result
web_reply_message(struct MHD_Connection *conn, unsigned int status, const char *lang,
			  const char *title, const char *text, int retry_after)
{
	StringInfoData html;

	initStringInfo(&html);
	message_page_html(&html, lang, title, text);
	return web_reply_html(conn, status, &html, retry_after);
}

/* {"error": {"sqlstate", "message", "detail", "hint", "question"}} */
enum MHD_Result
web_reply_json_error(struct MHD_Connection *conn, unsigned int status, const char *sqlstate,
				 const char *message, ErrorData *e, int retry_after)
{
	StringInfoData j;

	initStringInfo(&j);
	appendStringInfoString(&j, "{\"error\":{\"sqlstate\":");
	escape_json(&j, sqlstate);
	appendStringInfoString(&j, ",\"message\":");
	escape_json(&j, message);
	if (e && e->detail)
	{
		appendStringInfoString(&j, ",\"detail\":");
		escape_json(&j, e->detail);
	}
	if (e && e->hint)
	{
		appendStringInfoString(&j, ",\"hint\":");
		escape_json(&j, e->hint);
	}
	if (e && e->column_name)
	{
		appendStringInfoString(&j, ",\"question\":");
		escape_json(&j, e->column_name);
	}
	appendStringInfoString(&j, "}}\n");
	return web_reply(conn, status, "application/json", j.data, j.len, retry_after, NULL, false);
}

/* an error that is not the caller's fault: logged, answered without details */
void
web_log_failure(ErrorData *e, const char *what)
{
	ereport(LOG,
			(errmsg(WHO ": %s failed: %s", what, e->message),
			 e->detail ? errdetail_internal("%s", e->detail) : 0,
			 errcontext_msg("SQLSTATE %s", web_sqlstate_of(e))));
}

/* -------------------------------------------------- the page and its fields */


/* "N minutes" or "N seconds" (rounded up), to say how long a block lasts */
const char *
web_wait_text(const char *lang, int seconds)
{
	bool		en = strcmp(lang, "en") == 0;

	if (seconds > 60)
		return psprintf(en ? "%d minutes" : "%d分", (seconds + 59) / 60);
	return psprintf(en ? "%d seconds" : "%d秒", seconds);
}

/* the page's language: ?lang=, the posted _lang, Accept-Language, else ja */
const char *
web_lang(struct MHD_Connection *conn, WebRequest *req)
{
	const char *l = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "lang");
	const char *al;
	ListCell   *lc;

	if (l == NULL)
		foreach(lc, req->fields)
			if (strcmp(((WebField *) lfirst(lc))->name, "_lang") == 0)
			l = ((WebField *) lfirst(lc))->value.data;
	if (l && (strcmp(l, "en") == 0 || strcmp(l, "ja") == 0))
		return strcmp(l, "en") == 0 ? "en" : "ja";
	al = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Language");
	for (const char *p = al; p && *p; p++)
	{
		/* the first of ja or en among the listed languages */
		if ((p == al || p[-1] == ',' || p[-1] == ' ') && (p[0] == 'j' || p[0] == 'e'))
		{
			if (strncmp(p, "ja", 2) == 0)
				return "ja";
			if (strncmp(p, "en", 2) == 0)
				return "en";
		}
	}
	return "ja";
}

char *
web_new_key(void)
{
	uint8		b[16];
	char	   *hex = palloc(33);

	if (!pg_strong_random(b, sizeof(b)))
		elog(ERROR, "could not generate random bytes");
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", b[i]);
	return hex;
}

/*
 * A secret the client sends back (a CSRF token, the sign-in form's token)
 * is the one expected: the same length, and the same bytes compared in
 * constant time, so that the time taken says nothing of how much of it
 * was right.
 */
bool
web_secret_equal(const char *given, const char *expected)
{
	size_t		n;

	if (given == NULL || expected == NULL)
		return false;
	n = strlen(expected);
	return n > 0 && strlen(given) == n && CRYPTO_memcmp(given, expected, n) == 0;
}

const char *
web_field(WebRequest *req, const char *name)
{
	ListCell   *lc;

	foreach(lc, req->fields)
	{
		WebField   *f = lfirst(lc);

		if (strcmp(f->name, name) == 0)
			return f->value.data;
	}
	return NULL;
}

/* ---------------------------------------------- the Content-Security-Policy */

/* the Content-Security-Policy: no inline script, the inline style by its hash */
static char *
make_csp(void)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char		b64[64];
	int			n;

	/* OpenSSL itself: pg_cryptohash needs a resource owner, and this runs outside a transaction */
	if (EVP_Digest(sc_asset_report_css, sc_asset_report_css_len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
		elog(ERROR, "could not hash the style sheet");
	n = pg_b64_encode((const char *) digest, (int) dlen, b64, sizeof(b64));
	if (n < 0)
		elog(ERROR, "could not encode the style sheet's hash");
	b64[n] = '\0';
	return MemoryContextStrdup(TopMemoryContext,
							   psprintf("default-src 'none'; style-src 'self' 'sha256-%s'; script-src 'self'; "
										"img-src 'self' data:%s%s; connect-src 'self'; form-action 'self'; "
										"frame-ancestors 'none'; base-uri 'none'", b64,
										web_tile_origin() ? " " : "", web_tile_origin() ? web_tile_origin() : ""));
}

/*
 * The origin (scheme://host[:port]) of status_checker.http_map_tiles, which
 * the policy must allow images from; NULL without tiles, or for a template
 * that is not an http(s) URL (then the dashboard draws no tiles).
 */
const char *
web_tile_origin(void)
{
	static char *origin = NULL;
	static char *of = NULL;
	const char *t = sc_http_map_tiles;
	const char *host;
	size_t		n;

	if (t == NULL || (strncmp(t, "https://", 8) != 0 && strncmp(t, "http://", 7) != 0))
		return NULL;
	if (of != NULL && strcmp(of, t) == 0)
		return origin;
	host = strstr(t, "://") + 3;
	n = strcspn(host, "/?#");
	if (n == 0 || strcspn(host, " ;,'\"") < n)
		return NULL;
	if (of)
		pfree(of);
	if (origin)
		pfree(origin);
	of = MemoryContextStrdup(TopMemoryContext, t);
	origin = MemoryContextStrdup(TopMemoryContext, psprintf("%.*s", (int) (host - t + n), t));
	return origin;
}

/* (re)compute the Content-Security-Policy every answer carries: at start and after a reload */
void
web_refresh_csp(void)
{
	if (csp_header)
		pfree(csp_header);
	csp_header = make_csp();
}
