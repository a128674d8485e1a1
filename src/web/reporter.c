/*-------------------------------------------------------------------------
 *
 * reporter.c
 *	  The reporter's app: the page of a personal report link (/r/<token>)
 *	  and its JSON API (/api/v1/r/<token>).
 *
 * A GET shows report_form(token) in a read-only transaction; a POST checks
 * the posted fields against the form (html.c) and calls
 * submit_report(token, answers, idempotency_key).  Errors are answered by
 * their SQLSTATE (web_status_for): an unknown token counts towards the
 * client address's limit (ratelimit.c), which blocks every token URL of an
 * address that tried too many.
 *
 * Called by the server loop (http.c); calls the shared web helpers
 * (web_common.c, ratelimit.c) and the page builder (html.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "common/kept_plan.h"
#include "web/web.h"

#define MAX_TOKEN_LENGTH 200

typedef WebRequest Req;

/* what each reporter transaction passes in and out */
typedef struct Call
{
	Req		   *req;
	const char *token;
	Jsonb	   *answers;
	const char *key;
	Jsonb	   *doc;			/* out: report_form(token) */
	int64		report_id;		/* out: submit_report */
} Call;

static KeptPlan plan_form = {NULL, "SELECT status_checker.report_form($1)", 1, {TEXTOID}};
static KeptPlan plan_submit = {
	NULL, "SELECT status_checker.submit_report($1, $2, $3)", 3, {TEXTOID, JSONBOID, TEXTOID}
};

/* the one value of a statement's one row; a NULL is an error (not the caller's: logged, 500) */
static Datum
run_plan(KeptPlan *kp, Datum *values, const char *nulls, bool read_only)
{
	bool		isnull;
	SPITupleTable *tt = kept_plan_run(kp, values, nulls, read_only, 1);
	Datum		d = SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("\"%s\" returned NULL", kp->sql)));
	return d;
}

static void
call_form(void *arg)
{
	Call	   *c = arg;
	Datum		v[1];
	Jsonb	   *doc;
	MemoryContext old;

	v[0] = CStringGetTextDatum(c->token);
	doc = DatumGetJsonbP(run_plan(&plan_form, v, NULL, true));
	old = MemoryContextSwitchTo(c->req->cxt);
	c->doc = palloc(VARSIZE(doc));
	memcpy(c->doc, doc, VARSIZE(doc));
	MemoryContextSwitchTo(old);
}

static void
call_submit(void *arg)
{
	Call	   *c = arg;
	Datum		v[3];
	char		n[3] = {' ', ' ', ' '};

	v[0] = CStringGetTextDatum(c->token);
	v[1] = JsonbPGetDatum(c->answers);
	if (c->key)
		v[2] = CStringGetTextDatum(c->key);
	else
		n[2] = 'n';
	c->report_id = DatumGetInt64(run_plan(&plan_submit, v, n, false));
}

static bool
valid_token(const char *t)
{
	size_t		n = strlen(t);

	return n > 0 && n <= MAX_TOKEN_LENGTH &&
		strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~") == n;
}

/*
 * The token is known, but was replaced by a newer link (410, not 404):
 * report_form and submit_report raise 28000 for both, and say which in
 * CONSTRAINT (report_token_replaced).
 */
static bool
token_replaced(ErrorData *e)
{
	return e->constraint_name != NULL && strcmp(e->constraint_name, "report_token_replaced") == 0;
}

/* -------------------------------------------------------- the reporter page */

static enum MHD_Result
page_for_error(struct MHD_Connection *conn, Req *req, const char *lang, const uint8 *addr)
{
	ErrorData  *e = req->error;
	int			status = web_status_for(e);
	bool		en = strcmp(lang, "en") == 0;

	if (e->sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
	{
		web_rate_note_failure(addr);
		if (token_replaced(e))
			return web_reply_message(conn, MHD_HTTP_GONE, lang,
								 en ? "This link has been replaced" : "このリンクは新しいリンクに置き換えられました",
								 en ? "Please use the link in the most recent message."
								 : "最新のメッセージにあるリンクを開いてください。", 0);
		return web_reply_message(conn, MHD_HTTP_NOT_FOUND, lang,
							 en ? "This link is not valid" : "このリンクは無効です",
							 en ? "The link is wrong or incomplete. Open it exactly as it appears in the message."
							 : "リンクが正しくないか、途中で切れています。メッセージにあるリンクをそのまま開いてください。", 0);
	}
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
	{
		web_log_failure(e, "a reporter page");
		return web_reply_message(conn, status, lang,
							 en ? "Please try again shortly" : "しばらくしてからもう一度お試しください",
							 en ? "Reports cannot be taken at this moment." : "ただいま報告を受け付けられません。", 5);
	}
	if (status == 0)
		web_log_failure(e, "a reporter page");
	return web_reply_message(conn, status ? status : MHD_HTTP_INTERNAL_SERVER_ERROR, lang,
						 en ? "Something went wrong" : "エラーが発生しました",
						 status ? web_error_text(lang, e)
						 : (en ? "Please try again shortly." : "しばらくしてからもう一度お試しください。"), 0);
}

static enum MHD_Result
serve_page(struct MHD_Connection *conn, Req *req, const char *token, bool post, const uint8 *addr)
{
	const char *lang = web_lang(conn, req);
	Call		c = {0};
	ReporterPage page = {0};
	StringInfoData html;
	unsigned int status = MHD_HTTP_OK;

	c.req = req;
	c.token = token;
	if (!valid_token(token) || !web_in_transaction(req, call_form, &c, true, "status_checker: reporter page"))
	{
		if (req->error == NULL)
		{
			/* not even the shape of a token */
			web_rate_note_failure(addr);
			req->error = palloc0(sizeof(ErrorData));
			req->error->sqlerrcode = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
			req->error->message = "unknown report token";
		}
		return page_for_error(conn, req, lang, addr);
	}
	page.doc = c.doc;
	page.token = token;
	page.lang = lang;
	page.key = web_new_key();

	if (!post)
	{
		const char *done = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "done");

		if (done && strcmp(done, "1") == 0)
			page.banner = BANNER_RECEIVED;
	}
	else if (req->too_big || req->bad_form)
	{
		page.posted = req->fields;
		page.banner = BANNER_INVALID;
		status = req->too_big ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST;
	}
	else
	{
		List	   *errors = NIL;
		const char *key = web_field(req, "_key");

		page.posted = req->fields;
		if (key && strlen(key) == 32 && strspn(key, "0123456789abcdef") == 32)
			page.key = key;
		c.key = page.key;
		PG_TRY();
		{
			c.answers = answers_from_fields(c.doc, req->fields, lang, &errors);
		}
		PG_CATCH();
		{
			/* a safety net: the fields were checked (check_encoding) */
			MemoryContextSwitchTo(req->cxt);
			FlushErrorState();
			errors = list_make1(palloc0(sizeof(WebError)));
			((WebError *) linitial(errors))->message = strcmp(lang, "en") == 0
				? "The form could not be read." : "フォームを読み取れませんでした。";
			c.answers = NULL;
		}
		PG_END_TRY();
		if (c.answers == NULL)
		{
			page.errors = errors;
			page.banner = BANNER_INVALID;
			status = MHD_HTTP_UNPROCESSABLE_CONTENT;
		}
		else if (web_in_transaction(req, call_submit, &c, false, "status_checker: report by link"))
		{
			char	   *location = psprintf("/r/%s?lang=%s&done=1", token, lang);

			web_count_report();
			/* Post/Redirect/Get: reloading the confirmation sends nothing again */
			return web_reply(conn, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "", 0, 0, location, false);
		}
		else
		{
			ErrorData  *e = req->error;
			WebError   *we = palloc0(sizeof(WebError));

			switch (web_status_for(e))
			{
				case MHD_HTTP_UNPROCESSABLE_CONTENT:
				case MHD_HTTP_BAD_REQUEST:
				case MHD_HTTP_CONTENT_TOO_LARGE:
					we->question = e->column_name;
					we->message = (char *) web_error_text(lang, e);
					page.errors = list_make1(we);
					page.banner = BANNER_INVALID;
					status = web_status_for(e);
					break;
				case MHD_HTTP_CONFLICT:
					/* closed or cancelled meanwhile: show it as it is now */
					if (web_in_transaction(req, call_form, &c, true, "status_checker: reporter page"))
						page.doc = c.doc;
					page.banner = BANNER_CLOSED;
					status = MHD_HTTP_CONFLICT;
					break;
				case MHD_HTTP_SERVICE_UNAVAILABLE:
					web_log_failure(e, "a report by link");
					page.banner = BANNER_READ_ONLY;
					status = MHD_HTTP_SERVICE_UNAVAILABLE;
					break;
				default:
					return page_for_error(conn, req, lang, addr);
			}
		}
	}
	initStringInfo(&html);
	reporter_page_html(&html, &page);
	return web_reply_html(conn, status, &html, status == MHD_HTTP_SERVICE_UNAVAILABLE ? 5 : 0);
}

/* ------------------------------------------------------------- the JSON API */

static enum MHD_Result
api_error(struct MHD_Connection *conn, Req *req, const uint8 *addr)
{
	ErrorData  *e = req->error;
	int			status = web_status_for(e);

	if (e->sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
		web_rate_note_failure(addr);
	if (status == 0 || status == MHD_HTTP_SERVICE_UNAVAILABLE)
		web_log_failure(e, "an API call");
	if (status == 0)
		return web_reply_json_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "XX000", "internal error", NULL, 0);
	return web_reply_json_error(conn, status, web_sqlstate_of(e), e->message, e,
							status == MHD_HTTP_SERVICE_UNAVAILABLE ? 5 : 0);
}

static enum MHD_Result
serve_api(struct MHD_Connection *conn, Req *req, const char *token, bool post, const uint8 *addr)
{
	Call		c = {0};

	c.req = req;
	c.token = token;
	if (!valid_token(token))
	{
		web_rate_note_failure(addr);
		return web_reply_json_error(conn, MHD_HTTP_NOT_FOUND, "28000", "unknown report token", NULL, 0);
	}
	if (!post)
	{
		char	   *json;

		if (!web_in_transaction(req, call_form, &c, true, "status_checker: report form API"))
			return api_error(conn, req, addr);
		json = JsonbToCString(NULL, &c.doc->root, VARSIZE(c.doc));
		return web_reply(conn, MHD_HTTP_OK, "application/json", json, strlen(json), 0, NULL, false);
	}
	if (req->too_big)
		return web_reply_json_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "54000",
								psprintf("the body exceeds %d bytes", sc_http_max_body), NULL, 0);
	PG_TRY();
	{
		/* UTF-8 (no NUL either) before JSON: jsonb_in does not check the encoding */
		pg_verifymbstr(req->body.data, req->body.len, false);
		c.answers = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(req->body.data)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(req->cxt);
		req->error = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	if (c.answers == NULL && req->error && req->error->sqlerrcode == ERRCODE_CHARACTER_NOT_IN_REPERTOIRE)
		return web_reply_json_error(conn, MHD_HTTP_BAD_REQUEST, "22021", req->error->message, NULL, 0);
	if (c.answers == NULL)
		return web_reply_json_error(conn, MHD_HTTP_BAD_REQUEST, "22P02", "the body is not JSON", req->error, 0);
	c.key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
	if (!web_in_transaction(req, call_submit, &c, false, "status_checker: report API"))
		return api_error(conn, req, addr);
	web_count_report();
	{
		char	   *json = psprintf("{\"report_id\":" INT64_FORMAT "}\n", c.report_id);

		return web_reply(conn, MHD_HTTP_OK, "application/json", json, strlen(json), 0, NULL, false);
	}
}

/*
 * /r/<token> (api false) and /api/v1/r/<token> (api true), by GET or
 * POST: refused (429) while the client's address is blocked.
 */
enum MHD_Result
reporter_dispatch(struct MHD_Connection *conn, WebRequest *req, const char *token, bool api, bool post)
{
	uint8		addr[16];
	int			wait;

	web_client_address(conn, addr);
	if ((wait = web_rate_limited(addr)) > 0)
	{
		const char *lang = web_lang(conn, req);

		if (api)
			return web_reply_json_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "53400",
									"too many unknown tokens from this address; try again later", NULL, wait);
		return web_reply_message(conn, MHD_HTTP_TOO_MANY_REQUESTS, lang,
							 strcmp(lang, "en") == 0 ? "Too many attempts" : "試行回数が多すぎます",
							 psprintf(strcmp(lang, "en") == 0
									  ? "Too many wrong links were opened from this address. Please try again in %s."
									  : "このアドレスから無効なリンクが多数開かれました。%s後にもう一度お試しください。",
									  web_wait_text(lang, wait)), wait);
	}
	if (api)
		return serve_api(conn, req, token, post, addr);
	return serve_page(conn, req, token, post, addr);
}
