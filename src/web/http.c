/*-------------------------------------------------------------------------
 *
 * http.c
 *	  The optional HTTP worker's server loop: libmicrohttpd inside background
 *	  workers, each request routed to its app (the reporter page and its
 *	  JSON API, reporter.c; the dashboard, dashboard.c) or answered here
 *	  (health check, assets).
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
 * report_form(token) and submit_report(token, answers, idempotency_key)
 * (reporter.c), with the privileges of status_checker_gateway (the role is switched for
 * each transaction).  It logs in as status_checker.http_role, a login that
 * is a member of status_checker_gateway and of the four group roles (so
 * that it may act for dashboard users with set_app_user and take their
 * role); left empty, as the bootstrap superuser, which the log warns of.
 * A GET runs in a read-only transaction: opening a link (a mail scanner
 * does it first) changes nothing.
 *
 * Unknown tokens and wrong passwords are counted per client address in
 * shared memory (ratelimit.c; all workers see one count):
 * http_token_failures of them within a minute block the address (429 on
 * every token URL and sign-in) for a time that doubles with each block in
 * a row.  Behind a reverse proxy the client address comes from
 * X-Forwarded-For, read from the right past the proxies in
 * status_checker.http_trusted_proxies (web_client_address).  Connections
 * per address and the deadlines of slow requests: connections.c.
 *
 * Calls run one way: this file -> the apps (reporter.c, dashboard.c) ->
 * the shared helpers (web_common.c: transactions, replies, errors by
 * SQLSTATE; ratelimit.c: client addresses and the limiter; connections.c)
 * -> html.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "common/sc_guc.h"
#include "common/worker.h"
#include "web/web.h"

#define WHO "status_checker http"

PGDLLEXPORT void sc_http_main(Datum main_arg);

char	   *sc_http_listen = NULL;
int			sc_http_workers = 2;
char	   *sc_http_role = NULL;

/* ------------------------------------------------------------ shared memory */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* the limiter and counters (ratelimit.c) and the connections per address (connections.c) */
static void
http_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(web_rate_shmem_size() + web_connections_shmem_size());
	web_connections_shmem_request();
}

static void
http_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	web_rate_shmem_init();
	web_connections_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* called from _PG_init when loaded by shared_preload_libraries */
void
sc_http_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = http_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = http_shmem_startup;
}

/* ------------------------------------------------------- libmicrohttpd glue */

typedef enum Route
{
	ROUTE_NONE,
	ROUTE_PAGE,					/* /r/<token> */
	ROUTE_API,					/* /api/v1/r/<token> */
} Route;

typedef WebRequest Req;

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

	web_count_request();
	if (strcmp(url, "/d") == 0 || strncmp(url, "/d/", 3) == 0)
	{
		web_client_address(conn, addr);
		return dashboard_dispatch(conn, req, url, get, post, addr);
	}
	if (route == ROUTE_NONE)
	{
		if (get && strcmp(url, "/healthz") == 0)
			return web_reply(conn, MHD_HTTP_OK, "text/plain; charset=utf-8",
							 RecoveryInProgress() ? "standby\n" : "ok\n", RecoveryInProgress() ? 8 : 3, 0, NULL, false);
		if (get && strcmp(url, "/assets/report.js") == 0)
			return web_reply(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8",
							 sc_asset_report_js, sc_asset_report_js_len, 0, NULL, true);
		if (get && strcmp(url, "/assets/dashboard.js") == 0)
			return web_reply(conn, MHD_HTTP_OK, "text/javascript; charset=utf-8",
							 sc_asset_dashboard_js, sc_asset_dashboard_js_len, 0, NULL, true);
		if (get && strcmp(url, "/assets/dashboard.css") == 0)
			return web_reply(conn, MHD_HTTP_OK, "text/css; charset=utf-8",
							 sc_asset_dashboard_css, sc_asset_dashboard_css_len, 0, NULL, true);
		return web_reply_message(conn, MHD_HTTP_NOT_FOUND, web_lang(conn, req),
							 "Not found", "There is nothing at this address.", 0);
	}
	if (!get && !post)
		return web_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
						 "method not allowed\n", 19, 0, NULL, false);
	return reporter_dispatch(conn, req, token, route == ROUTE_API, post);
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
	web_check_login();
	CommitTransactionCommand();

	/* times on pages and in the API in the users' zone */
	SetConfigOption("TimeZone", sc_http_timezone, PGC_USERSET, PGC_S_SESSION);
	web_refresh_csp();
	web_load_trusted_proxies();
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
			web_load_trusted_proxies();
			/* memberships may have changed too: the next request looks again */
			web_recheck_login();
			web_refresh_csp();
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
