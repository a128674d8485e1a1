/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The optional HTTP worker: the reporter page (/r/<token>) and its JSON
 *	  API (/api/v1/r/<token>), served by libmicrohttpd inside background
 *	  workers.
 *
 * Enabled by status_checker.http_listen ('127.0.0.1:8080');
 * status_checker.http_workers workers share the port (SO_REUSEPORT: the
 * kernel spreads the connections).  Each worker runs libmicrohttpd in
 * "external polling" mode with epoll: the daemon's one epoll descriptor
 * sits in the worker's WaitEventSet beside its latch and the postmaster,
 * so the worker sleeps in one place, answers SIGTERM and reloads at once,
 * and never blocks the server.  Requests are handled one at a time per
 * worker, each in short transactions of its own.
 *
 * The worker is a client of the SQL API like any other frontend: it calls
 * report_form(token) and submit_report(token, answers, idempotency_key),
 * with the privileges of status_checker_gateway (the role is switched for
 * each transaction).  It logs in as status_checker.http_role, a login that
 * is a member of status_checker_gateway and of the four group roles (so
 * that it may act for dashboard users with set_app_user and take their
 * role); left empty, as the bootstrap superuser, which the log warns of.
 * A GET runs in a read-only transaction: opening a link (a mail scanner
 * does it first) changes nothing.
 *
 * Unknown tokens and wrong passwords are counted per client address in
 * shared memory (all workers see one count): http_token_failures of them
 * within a minute block the address (429 on every token URL and sign-in)
 * for a time that doubles with each block in a row.  Behind a reverse
 * proxy the client address comes from X-Forwarded-For, read from the right
 * past the proxies in status_checker.http_trusted_proxies
 * (web_client_address).  Connections per address and the deadlines of
 * slow requests: connections.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "common/kept_plan.h"
#include "common/sc_guc.h"
#include "common/worker.h"
#include "web/web.h"

#define WHO "status_checker http"

PGDLLEXPORT void sc_http_main(Datum main_arg);

char	   *sc_http_listen = NULL;
int			sc_http_workers = 2;
char	   *sc_http_role = NULL;
char	   *sc_http_trusted_proxies = NULL;
int			sc_http_token_failures = 30;
int			sc_http_block_time = 60;	/* seconds */
int			sc_http_block_max = 3600;	/* seconds */
int			sc_http_max_body = 256 * 1024;
char	   *sc_http_timezone = NULL;
char	   *sc_http_map_tiles = NULL;
char	   *sc_http_map_attribution = NULL;

#define MAX_TOKEN_LENGTH 200

/* ------------------------------------------------------------ shared memory */

/*
 * Failures per client address (an IPv6 client by its /64): unknown report
 * links and wrong passwords.  status_checker.http_token_failures of them
 * within a minute of the first earn the address a block: every token URL
 * and every sign-in from it is refused (429) until the block ends.  Each
 * block lasts twice the one before (status_checker.http_block_time, 1
 * minute, then 2, 4 … up to status_checker.http_block_max, an hour); an
 * address quiet for http_block_max after its last block starts at the
 * first length again.  An open-addressed table; under a flood of
 * addresses the least recently failed unblocked ones give way, which only
 * ever forgives.
 */
#define RATE_SLOTS 4096
#define RATE_PROBES 8
#define RATE_WINDOW (60 * USECS_PER_SEC)

typedef struct RateSlot
{
	uint8		key[16];		/* web_addr_key */
	TimestampTz last_failure;	/* 0 = free */
	TimestampTz window;			/* when the failures being counted began; 0 = none yet */
	int32		failures;
	int32		blocks;			/* blocks earned in a row */
	TimestampTz blocked_until;
} RateSlot;

typedef struct HttpShared
{
	slock_t		mutex;
	pg_atomic_uint64 requests;
	pg_atomic_uint64 reports;
	pg_atomic_uint64 limited;
	RateSlot	slots[RATE_SLOTS];
} HttpShared;

static HttpShared *hshared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
http_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(HttpShared)) + web_connections_shmem_size());
	web_connections_shmem_request();
}

static void
http_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hshared = ShmemInitStruct("status_checker http", sizeof(HttpShared), &found);
	if (!found)
	{
		memset(hshared, 0, sizeof(HttpShared));
		SpinLockInit(&hshared->mutex);
		pg_atomic_init_u64(&hshared->requests, 0);
		pg_atomic_init_u64(&hshared->reports, 0);
		pg_atomic_init_u64(&hshared->limited, 0);
	}
	web_connections_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

void
sc_http_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = http_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = http_shmem_startup;
}

/* the key's slot (found, or taken over when `create`); under the mutex */
static RateSlot *
rate_slot(const uint8 *key, TimestampTz now, bool create)
{
	uint32		h = hash_bytes(key, 16);
	RateSlot   *victim = NULL;

	for (int i = 0; i < RATE_PROBES; i++)
	{
		RateSlot   *s = &hshared->slots[(h + i) % RATE_SLOTS];

		if (s->last_failure != 0 && memcmp(s->key, key, 16) == 0)
			return s;
		if (s->blocked_until <= now && (victim == NULL || s->last_failure < victim->last_failure))
			victim = s;
	}
	if (!create || victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(RateSlot));
	memcpy(victim->key, key, 16);
	return victim;
}

/* how long the nth block in a row lasts: http_block_time doubled n - 1 times, at most http_block_max */
static TimestampTz
block_length(int n)
{
	TimestampTz max = (TimestampTz) sc_http_block_max * USECS_PER_SEC;
	TimestampTz len = (TimestampTz) sc_http_block_time * USECS_PER_SEC;

	for (int i = 1; i < n && len < max; i++)
		len *= 2;
	return Min(len, max);
}

/* seconds until the client at `addr` may try tokens or passwords again, or 0 */
int
web_rate_limited(const uint8 *addr)
{
	TimestampTz now = GetCurrentTimestamp();
	uint8		key[16];
	RateSlot   *s;
	int			wait = 0;

	web_addr_key(addr, key);
	SpinLockAcquire(&hshared->mutex);
	s = rate_slot(key, now, false);
	if (s && s->blocked_until > now)
		wait = (int) ((s->blocked_until - now + USECS_PER_SEC - 1) / USECS_PER_SEC);
	SpinLockRelease(&hshared->mutex);
	if (wait > 0)
		pg_atomic_fetch_add_u64(&hshared->limited, 1);
	return wait;
}

/* a wrong link or password from the client at `addr` */
void
web_rate_note_failure(const uint8 *addr)
{
	TimestampTz now = GetCurrentTimestamp();
	uint8		key[16];
	RateSlot   *s;
	TimestampTz block = 0;
	int			blocks = 0;

	web_addr_key(addr, key);
	SpinLockAcquire(&hshared->mutex);
	s = rate_slot(key, now, true);
	if (s)
	{
		/* quiet long enough since its last block: forgiven */
		if (s->blocks > 0 && now - Max(s->blocked_until, s->last_failure) >= (TimestampTz) sc_http_block_max * USECS_PER_SEC)
			s->blocks = 0;
		if (now - s->window >= RATE_WINDOW)
		{
			s->window = now;
			s->failures = 0;
		}
		s->last_failure = now;
		if (++s->failures >= sc_http_token_failures)
		{
			if (s->blocks < 64)
				s->blocks++;
			blocks = s->blocks;
			block = block_length(blocks);
			s->blocked_until = now + block;
			/* the next block takes as many failures again, after this one */
			s->failures = 0;
			s->window = 0;
		}
	}
	SpinLockRelease(&hshared->mutex);
	if (block > 0)
	{
		char		text[WEB_ADDR_TEXT_LEN];

		ereport(LOG,
				(errmsg(WHO ": %s blocked for " INT64_FORMAT " s after %d wrong links or passwords (block %d in a row)",
						web_addr_text(key, text), block / USECS_PER_SEC, sc_http_token_failures, blocks)));
	}
}

/* "N minutes" or "N seconds" (rounded up), to say how long a block lasts */
const char *
web_wait_text(const char *lang, int seconds)
{
	bool		en = strcmp(lang, "en") == 0;

	if (seconds > 60)
		return psprintf(en ? "%d minutes" : "%d分", (seconds + 59) / 60);
	return psprintf(en ? "%d seconds" : "%d秒", seconds);
}

/*
 * http_counters(): what the workers have done since the server started
 * (all workers together); NULLs when the library is not preloaded.
 */
PG_FUNCTION_INFO_V1(sc_http_counters);
Datum
sc_http_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "http_counters must return a record");
	if (hshared == NULL)
		nulls[0] = nulls[1] = nulls[2] = true;
	else
	{
		values[0] = Int64GetDatum((int64) pg_atomic_read_u64(&hshared->requests));
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&hshared->reports));
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&hshared->limited));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* ----------------------------------------------------------- per request */

typedef enum Route
{
	ROUTE_NONE,
	ROUTE_PAGE,					/* /r/<token> */
	ROUTE_API,					/* /api/v1/r/<token> */
} Route;

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

static char *csp_header = NULL;
static uint8 *trusted = NULL;	/* 16 bytes per trusted proxy address */
static int	ntrusted = 0;

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

/* ----------------------------------------------------------- the login */

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
static void
check_login(void)
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

/*
 * Run fn(arg) in a transaction of its own, as status_checker_gateway,
 * connected to SPI.  On an error: false, with the error in req->error; the
 * transaction is rolled back and nothing of it remains.
 */
bool
web_in_transaction(Req *req, void (*fn) (void *), void *arg, bool read_only, const char *activity)
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
			check_login();
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

/* --------------------------------------------------------------- replies */

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

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned int status, const char *type, const char *body, size_t len,
	  int retry_after, const char *location, bool cacheable)
{
	return web_reply_ex(conn, status, type, body, len, retry_after, location, cacheable, NULL);
}

enum MHD_Result
web_reply_html(struct MHD_Connection *conn, unsigned int status, StringInfo html, int retry_after)
{
	return reply(conn, status, "text/html; charset=utf-8", html->data, html->len, retry_after, NULL, false);
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
	return reply(conn, status, "application/json", j.data, j.len, retry_after, NULL, false);
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

/* ------------------------------------------------------------- the client */

/* a socket address as 16 bytes: IPv6, or IPv4 mapped into it (::ffff:a.b.c.d) */
void
web_addr_of(const struct sockaddr *sa, uint8 *out)
{
	memset(out, 0, 16);
	if (sa && sa->sa_family == AF_INET)
	{
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *) sa)->sin_addr, 4);
	}
	else if (sa && sa->sa_family == AF_INET6)
		memcpy(out, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
}

static bool
is_v4(const uint8 *addr)
{
	static const uint8 mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return memcmp(addr, mapped, 12) == 0;
}

/*
 * What the per-address limits count a client by: an IPv4 address as it
 * is, an IPv6 address by its /64 (one subscriber, one site or one machine
 * has a whole /64 to pick addresses from).
 */
void
web_addr_key(const uint8 *addr, uint8 *key)
{
	memcpy(key, addr, 16);
	if (!is_v4(addr))
		memset(key + 8, 0, 8);
}

/* an address or key as text, for the log: "192.0.2.1", "2001:db8::/64" */
const char *
web_addr_text(const uint8 *key, char *buf)
{
	if (is_v4(key))
		inet_ntop(AF_INET, key + 12, buf, WEB_ADDR_TEXT_LEN);
	else
	{
		inet_ntop(AF_INET6, key, buf, WEB_ADDR_TEXT_LEN - 3);
		strcat(buf, "/64");
	}
	return buf;
}

static bool
parse_addr(const char *s, uint8 *out)
{
	struct in_addr a4;

	memset(out, 0, 16);
	if (inet_pton(AF_INET, s, &a4) == 1)
	{
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return true;
	}
	return inet_pton(AF_INET6, s, out) == 1;
}

static void
load_trusted_proxies(void)
{
	char	   *list = pstrdup(sc_http_trusted_proxies ? sc_http_trusted_proxies : "");
	char	   *save = NULL;

	if (trusted)
		pfree(trusted);
	trusted = MemoryContextAlloc(TopMemoryContext, 16 * (strlen(list) / 2 + 1));
	ntrusted = 0;
	for (char *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
	{
		if (parse_addr(tok, trusted + 16 * ntrusted))
			ntrusted++;
		else
			ereport(WARNING,
					(errmsg(WHO ": status_checker.http_trusted_proxies: \"%s\" is not an IP address; ignored", tok)));
	}
	pfree(list);
}

/* one of status_checker.http_trusted_proxies */
bool
web_trusted_proxy(const uint8 *addr)
{
	for (int i = 0; i < ntrusted; i++)
		if (memcmp(trusted + 16 * i, addr, 16) == 0)
			return true;
	return false;
}

/* every X-Forwarded-For line of the request, in order, as one list */
static enum MHD_Result
gather_forwarded_for(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	StringInfo	list = cls;

	if (key && value && pg_strcasecmp(key, "X-Forwarded-For") == 0)
	{
		if (list->len > 0)
			appendStringInfoChar(list, ',');
		appendStringInfoString(list, value);
	}
	return MHD_YES;
}

/*
 * The client's address.  Without a trusted proxy, the peer's.  Behind one,
 * X-Forwarded-For names the hops before it, each proxy appending the
 * address it was reached from, so the list is read from the right: a
 * trusted proxy's entry is believed and the walk goes on to the entry
 * before it; the first entry that is not a trusted proxy is the client.
 * An entry that is not an address stops the walk: the client is then the
 * last trusted hop reached, never a value the client may have written.
 */
void
web_client_address(struct MHD_Connection *conn, uint8 *addr)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	StringInfoData list;
	char	   *end;

	web_addr_of(ci ? ci->client_addr : NULL, addr);
	if (!web_trusted_proxy(addr))
		return;
	initStringInfo(&list);
	MHD_get_connection_values(conn, MHD_HEADER_KIND, gather_forwarded_for, &list);
	end = list.data + list.len;
	for (;;)
	{
		char	   *start = end;
		char		entry[INET6_ADDRSTRLEN];
		uint8		hop[16];

		while (start > list.data && start[-1] != ',')
			start--;
		/* the entry between start and end, without the spaces around it */
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end == start || end - start >= (ptrdiff_t) sizeof(entry))
			break;
		memcpy(entry, start, end - start);
		entry[end - start] = '\0';
		if (!parse_addr(entry, hop))
			break;
		memcpy(addr, hop, 16);
		if (!web_trusted_proxy(hop))
			break;
		/* the entry before this one */
		while (start > list.data && start[-1] != ',')
			start--;
		if (start == list.data)
			break;
		end = start - 1;
	}
	pfree(list.data);
}

/* the page's language: ?lang=, the posted _lang, Accept-Language, else ja */
const char *
web_lang(struct MHD_Connection *conn, Req *req)
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

static bool
valid_token(const char *t)
{
	size_t		n = strlen(t);

	return n > 0 && n <= MAX_TOKEN_LENGTH &&
		strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~") == n;
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
web_field(Req *req, const char *name)
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

/* ------------------------------------------------------ the reporter page */

static enum MHD_Result
page_for_error(struct MHD_Connection *conn, Req *req, const char *lang, const uint8 *addr)
{
	ErrorData  *e = req->error;
	int			status = web_status_for(e);
	bool		en = strcmp(lang, "en") == 0;

	if (e->sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
	{
		web_rate_note_failure(addr);
		if (strstr(e->message, "replaced"))
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
						 status ? web_error_text(lang, web_sqlstate_of(e), e->message)
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

			pg_atomic_fetch_add_u64(&hshared->reports, 1);
			/* Post/Redirect/Get: reloading the confirmation sends nothing again */
			return reply(conn, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "", 0, 0, location, false);
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
					we->message = (char *) web_error_text(lang, web_sqlstate_of(e), e->message);
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

/* ------------------------------------------------------------ the JSON API */

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
		return reply(conn, MHD_HTTP_OK, "application/json", json, strlen(json), 0, NULL, false);
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
	pg_atomic_fetch_add_u64(&hshared->reports, 1);
	{
		char	   *json = psprintf("{\"report_id\":" INT64_FORMAT "}\n", c.report_id);

		return reply(conn, MHD_HTTP_OK, "application/json", json, strlen(json), 0, NULL, false);
	}
}

/* ------------------------------------------------------- libmicrohttpd glue */

static enum MHD_Result
post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
		   const char *content_type, const char *transfer_encoding, const char *data,
		   uint64_t off, size_t size)
{
	Req		   *req = cls;
	WebField   *f = NULL;

	if (off > 0 && req->fields != NIL)
	{
		f = llast(req->fields);
		if (strcmp(f->name, key) != 0)
			f = NULL;
	}
	if (f == NULL)
	{
		if (list_length(req->fields) >= 1000)
		{
			req->bad_form = true;
			return MHD_NO;
		}
		f = palloc0(sizeof(WebField));
		f->name = pstrdup(key);
		initStringInfo(&f->value);
		req->fields = lappend(req->fields, f);
	}
	appendBinaryStringInfo(&f->value, data, size);
	return MHD_YES;
}

static Route
route_of(const char *url, const char **token)
{
	if (strncmp(url, "/r/", 3) == 0)
	{
		*token = url + 3;
		return ROUTE_PAGE;
	}
	if (strncmp(url, "/api/v1/r/", 10) == 0)
	{
		*token = url + 10;
		return ROUTE_API;
	}
	return ROUTE_NONE;
}

static enum MHD_Result
dispatch(struct MHD_Connection *conn, Req *req, const char *url, const char *method)
{
	bool		get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool		post = strcmp(method, "POST") == 0;
	const char *token = NULL;
	Route		route = route_of(url, &token);
	uint8		addr[16];
	int			wait;

	pg_atomic_fetch_add_u64(&hshared->requests, 1);
	if (strcmp(url, "/d") == 0 || strncmp(url, "/d/", 3) == 0)
	{
		web_client_address(conn, addr);
		return dashboard_dispatch(conn, req, url, get, post, addr);
	}
	if (route == ROUTE_NONE)
	{
		if (get && strcmp(url, "/healthz") == 0)
			return reply(conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
						 RecoveryInProgress() ? "standby\n" : "ok\n", RecoveryInProgress() ? 8 : 3, 0, NULL, false);
		if (get && strcmp(url, "/assets/report.js") == 0)
			return reply(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8",
						 sc_asset_report_js, sc_asset_report_js_len, 0, NULL, true);
		if (get && strcmp(url, "/assets/dashboard.js") == 0)
			return reply(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8",
						 sc_asset_dashboard_js, sc_asset_dashboard_js_len, 0, NULL, true);
		if (get && strcmp(url, "/assets/dashboard.css") == 0)
			return reply(conn, MHD_HTTP_OK, "text/css; charset=utf-8",
						 sc_asset_dashboard_css, sc_asset_dashboard_css_len, 0, NULL, true);
		return web_reply_message(conn, MHD_HTTP_NOT_FOUND, web_lang(conn, req),
							 "Not found", "There is nothing at this address.", 0);
	}
	if (!get && !post)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
					 "method not allowed\n", 19, 0, NULL, false);
	web_client_address(conn, addr);
	if ((wait = web_rate_limited(addr)) > 0)
	{
		const char *lang = web_lang(conn, req);

		if (route == ROUTE_API)
			return web_reply_json_error(conn, MHD_HTTP_TOO_MANY_REQUESTS, "53400",
									"too many unknown tokens from this address; try again later", NULL, wait);
		return web_reply_message(conn, MHD_HTTP_TOO_MANY_REQUESTS, lang,
							 strcmp(lang, "en") == 0 ? "Too many attempts" : "試行回数が多すぎます",
							 psprintf(strcmp(lang, "en") == 0
									  ? "Too many wrong links were opened from this address. Please try again in %s."
									  : "このアドレスから無効なリンクが多数開かれました。%s後にもう一度お試しください。",
									  web_wait_text(lang, wait)), wait);
	}
	if (route == ROUTE_API)
		return serve_api(conn, req, token, post, addr);
	return serve_page(conn, req, token, post, addr);
}

/*
 * Posted fields must be in the database's encoding (UTF-8): a field that is
 * not is emptied and the form marked bad (400), so that no invalid byte
 * reaches a page or the database.  The JSON API's body is checked where it
 * is read (serve_api).
 */
static void
check_encoding(Req *req)
{
	ListCell   *lc;

	foreach(lc, req->fields)
	{
		WebField   *f = lfirst(lc);

		if (!pg_verifymbstr(f->value.data, f->value.len, true) ||
			!pg_verifymbstr(f->name, strlen(f->name), true))
		{
			resetStringInfo(&f->value);
			f->name = "";
			req->bad_form = true;
		}
	}
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	Req		   *req = *con_cls;
	volatile enum MHD_Result ret = MHD_NO;
	MemoryContext old;

	if (req == NULL)
	{
		MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, WHO " request", ALLOCSET_DEFAULT_SIZES);

		req = MemoryContextAllocZero(cxt, sizeof(Req));
		req->cxt = cxt;
		old = MemoryContextSwitchTo(cxt);
		initStringInfo(&req->body);
		if (strcmp(method, "POST") == 0)
		{
			const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");

			/* the pages post forms; the API takes the body as it is */
			if (type && strncmp(type, "application/x-www-form-urlencoded", 33) == 0 &&
				(strncmp(url, "/r/", 3) == 0 || strncmp(url, "/d/", 3) == 0))
				req->pp = MHD_create_post_processor(conn, 16 * 1024, post_field, req);
		}
		MemoryContextSwitchTo(old);
		*con_cls = req;
		/* the headers are in; the body, if any, has its own deadline */
		web_connection_stage(conn, WEB_STAGE_HEADERS_IN);
		return MHD_YES;
	}
	old = MemoryContextSwitchTo(req->cxt);
	if (*upload_data_size > 0)
	{
		req->received += *upload_data_size;
		if (req->received > (size_t) sc_http_max_body)
			req->too_big = true;
		else if (req->pp)
		{
			if (MHD_post_process(req->pp, upload_data, *upload_data_size) != MHD_YES)
				req->bad_form = true;
		}
		else
			appendBinaryStringInfo(&req->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		MemoryContextSwitchTo(old);
		return MHD_YES;
	}
	web_connection_stage(conn, WEB_STAGE_ANSWERING);
	PG_TRY();
	{
		check_encoding(req);
		ret = dispatch(conn, req, url, method);
	}
	PG_CATCH();
	{
		/* a bug of ours: log it, and close the connection */
		MemoryContextSwitchTo(req->cxt);
		EmitErrorReport();
		FlushErrorState();
		ret = MHD_NO;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return ret;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	Req		   *req = *con_cls;

	/* a kept-alive connection's next request has its deadline */
	web_connection_stage(conn, WEB_STAGE_ANSWERED);
	if (req == NULL)
		return;
	if (req->pp)
		MHD_destroy_post_processor(req->pp);
	MemoryContextDelete(req->cxt);
	*con_cls = NULL;
}

/*
 * libmicrohttpd's messages, in the server log.  That a connection ended
 * while its request was being read ("… when reading request") is about one
 * client, not the server: a client that went away, or one the header
 * deadline shut out; at LOG level a flood of slow clients would flood the
 * log, so those are DEBUG1.
 */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	ereport(strstr(msg, "when reading request") ? DEBUG1 : LOG, (errmsg(WHO ": %s", msg)));
}

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

/* a listening socket on status_checker.http_listen, shared with the other workers */
static int
listen_socket(void)
{
	char	   *spec = pstrdup(sc_http_listen);
	char	   *colon = strrchr(spec, ':');
	char	   *host = spec;
	int			port;
	int			fd;
	int			one = 1;
	struct sockaddr_storage ss;
	socklen_t	len;

	if (colon == NULL || (port = atoi(colon + 1)) <= 0 || port > 65535)
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(WHO ": status_checker.http_listen must be host:port, not \"%s\"", sc_http_listen)));
	*colon = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']')
	{
		host[strlen(host) - 1] = '\0';
		host++;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, *host ? host : "0.0.0.0", &((struct sockaddr_in *) &ss)->sin_addr) == 1)
	{
		((struct sockaddr_in *) &ss)->sin_family = AF_INET;
		((struct sockaddr_in *) &ss)->sin_port = htons(port);
		len = sizeof(struct sockaddr_in);
	}
	else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) &ss)->sin6_addr) == 1)
	{
		((struct sockaddr_in6 *) &ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *) &ss)->sin6_port = htons(port);
		len = sizeof(struct sockaddr_in6);
	}
	else
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(WHO ": \"%s\" in status_checker.http_listen is not an IP address", host)));
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
		bind(fd, (struct sockaddr *) &ss, len) < 0 ||
		listen(fd, 1024) < 0)
		ereport(FATAL,
				(errcode_for_socket_access(),
				 errmsg(WHO ": could not listen on %s: %m", sc_http_listen)));
	return fd;
}

void
sc_http_main(Datum main_arg)
{
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	WaitEventSet *wes;
	WaitEvent	events[3];
	int			fd;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	/* status_checker.http_role, or (empty) the bootstrap superuser */
	BackgroundWorkerInitializeConnection(sc_database, sc_http_role && sc_http_role[0] ? sc_http_role : NULL, 0);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	check_login();
	CommitTransactionCommand();

	/* times on pages and in the API in the users' zone */
	SetConfigOption("TimeZone", sc_http_timezone, PGC_USERSET, PGC_S_SESSION);
	csp_header = make_csp();
	load_trusted_proxies();
	fd = listen_socket();
	daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, web_accept_policy, NULL, handle, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
							  MHD_OPTION_LISTEN_SOCKET, fd,
							  MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
							  MHD_OPTION_NOTIFY_CONNECTION, web_connection_notice, NULL,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) HTTP_IDLE_TIMEOUT,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) HTTP_MAX_CONNECTIONS,
							  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 64 * 1024,
							  MHD_OPTION_END);
	if (daemon == NULL)
		ereport(FATAL, (errmsg(WHO ": could not start the HTTP server on %s", sc_http_listen)));
	web_connections_start();
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL)
		ereport(FATAL, (errmsg(WHO ": libmicrohttpd has no epoll descriptor")));

	wes = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wes, WL_SOCKET_READABLE, info->epoll_fd, NULL, NULL);
	ereport(LOG, (errmsg(WHO " %d listening on %s (database \"%s\")",
						 DatumGetInt32(main_arg), sc_http_listen, sc_database)));

	while (!ShutdownRequestPending)
	{
		MHD_UNSIGNED_LONG_LONG mhd_timeout;
		long		timeout = 1000;
		int			n;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			load_trusted_proxies();
			/* memberships may have changed too: the next request looks again */
			login_check_pending = true;
			pfree(csp_header);
			csp_header = make_csp();
			SetConfigOption("TimeZone", sc_http_timezone, PGC_USERSET, PGC_S_SESSION);
		}
		if (MHD_get_timeout(daemon, &mhd_timeout) == MHD_YES && mhd_timeout < (MHD_UNSIGNED_LONG_LONG) timeout)
			timeout = (long) mhd_timeout;
		/* connections past their deadline are shut down (libmicrohttpd then closes them) */
		timeout = web_connection_deadlines(timeout);
		n = WaitEventSetWait(wes, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		for (int i = 0; i < n; i++)
			if (events[i].events & WL_LATCH_SET)
				ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		MHD_run(daemon);
	}
	MHD_stop_daemon(daemon);
	close(fd);
	ereport(LOG, (errmsg(WHO " %d stopped", DatumGetInt32(main_arg))));
	proc_exit(1);
}

/* called from _PG_init when loaded by shared_preload_libraries */
void
sc_http_register(void)
{
	if (sc_http_listen == NULL || sc_http_listen[0] == '\0')
		return;
	for (int i = 1; i <= sc_http_workers; i++)
		sc_register_worker(psprintf(WHO " %d", i), WHO, "sc_http_main", 5, Int32GetDatum(i));
}
