/*-------------------------------------------------------------------------
 *
 * watcher.c
 *	  The feed watcher background worker.
 *
 * Loop: wait on the latch until the next feed is due; for each due feed,
 * do a conditional GET (ETag / If-Modified-Since) with libcurl, then hand
 * the outcome to SQL in a short transaction (_feed_polled); fetch each
 * telegram the SQL side lists, and hand each to SQL (_feed_document_fetched)
 * in its own transaction.  No transaction is open during network I/O.  All
 * decisions (what is due, what is new, backoff) are in
 * src/feeds/watcher.sql, so the worker holds no state of its own and
 * resumes from the tables after a crash, a restart or a failover.
 *
 * A telegram is fetched only from the feed's own host (0.10.1): the same
 * scheme, host and port as the feed's URL, as libcurl reads them.  A link
 * to another host is not fetched, and a redirect is followed only on the
 * feed's host (so never from https to http); either is recorded as a
 * failed document of its feed (_feed_document_refused) and logged.  The
 * feed itself may be redirected (its URL is the operator's), but an https
 * feed only to https.
 *
 * Runs only on a primary: during recovery it waits.  SIGTERM ends it at
 * once (also in the middle of a transfer, through curl's progress
 * callback); SIGHUP re-reads the configuration.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "common/sc_guc.h"
#include "dispatch/destinations.h"
#include "common/worker.h"
#include "feeds/watcher.h"

PGDLLEXPORT void sc_feed_watcher_main(Datum main_arg);

bool		sc_feed_watcher_enabled = true;
int			sc_feed_timeout_ms = 30000;

typedef struct FetchResult
{
	long		status;			/* HTTP status, 0 if no response */
	char	   *body;			/* malloc'd */
	size_t		len;
	bool		too_large;
	bool		refused;		/* on another host than the feed's: not fetched */
	bool		dest_refused;	/* an address libcurl was to connect to is
								 * not an allowed destination */
	DestRefusal why;			/* the last address refused */
	char		etag[512];		/* fixed buffers: curl callbacks must not palloc */
	char		last_modified[128];
	char		error[CURL_ERROR_SIZE + 64];
} FetchResult;

/* scheme, host and port of a URL, as libcurl reads it */
typedef struct Origin
{
	char		scheme[16];
	char		host[256];
	char		port[8];
} Origin;

static CURL *curl;
static MemoryContext loop_cxt;

static bool
origin_of(const char *url, Origin *o)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *host = NULL,
			   *port = NULL;
	bool		ok;

	ok = u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		strlen(scheme) < sizeof(o->scheme) && strlen(host) < sizeof(o->host) && strlen(port) < sizeof(o->port);
	if (ok)
	{
		strlcpy(o->scheme, scheme, sizeof(o->scheme));
		strlcpy(o->host, host, sizeof(o->host));
		strlcpy(o->port, port, sizeof(o->port));
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

/* is the URL on this origin (host names compared without case)? */
static bool
on_origin(const char *url, const Origin *origin)
{
	Origin		o;

	return origin_of(url, &o) && strcmp(o.scheme, origin->scheme) == 0 &&
		pg_strcasecmp(o.host, origin->host) == 0 && strcmp(o.port, origin->port) == 0;
}

/* ------------------------------------------------------------ HTTP */

static size_t
fetch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	FetchResult *fr = (FetchResult *) userdata;
	size_t		n = size * nmemb;
	char	   *grown;

	if (fr->len + n > (size_t) sc_max_feed_bytes)
	{
		fr->too_large = true;
		return 0;				/* aborts the transfer */
	}
	grown = realloc(fr->body, fr->len + n + 1);
	if (grown == NULL)
		return 0;
	fr->body = grown;
	memcpy(fr->body + fr->len, ptr, n);
	fr->len += n;
	fr->body[fr->len] = '\0';
	return n;
}

/* ETag and Last-Modified, for the next conditional GET */
static size_t
fetch_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
	FetchResult *fr = (FetchResult *) userdata;
	size_t		n = size * nitems;
	char		line[1024];
	char	   *v;

	if (n >= sizeof(line))
		return n;
	memcpy(line, buffer, n);
	line[n] = '\0';
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		line[--n] = '\0';
	v = strchr(line, ':');
	if (v == NULL)
		return size * nitems;
	*v++ = '\0';
	while (*v == ' ' || *v == '\t')
		v++;
	/* header callbacks run inside curl_easy_perform: never ereport here */
	if (pg_strcasecmp(line, "ETag") == 0)
		strlcpy(fr->etag, v, sizeof(fr->etag));
	else if (pg_strcasecmp(line, "Last-Modified") == 0)
		strlcpy(fr->last_modified, v, sizeof(fr->last_modified));
	return size * nitems;
}

/* abort a transfer as soon as the server asks us to stop */
static int
fetch_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			   curl_off_t ultotal, curl_off_t ulnow)
{
	return ShutdownRequestPending ? 1 : 0;
}

/*
 * libcurl is about to connect to an address (each one it tries, redirects
 * included): a socket only for an allowed destination (destinations.c), as
 * for the dispatcher: a feed's server, or anyone on the path of an http
 * feed, could otherwise redirect the watcher to loopback, a private network
 * or the cloud metadata address.  No palloc: curl calls this.
 */
static curl_socket_t
fetch_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	FetchResult *fr = (FetchResult *) clientp;
	const unsigned char *ip = NULL;

	if (address->family == AF_INET)
		ip = (const unsigned char *) &((struct sockaddr_in *) &address->addr)->sin_addr;
	else if (address->family == AF_INET6)
		ip = (const unsigned char *) &((struct sockaddr_in6 *) &address->addr)->sin6_addr;
	if (purpose == CURLSOCKTYPE_IPCXN && ip != NULL && sc_destination_allowed(address->family, ip, &fr->why))
		return socket(address->family, address->socktype, address->protocol);
	if (ip == NULL)
		sc_destination_text_allowed(NULL, &fr->why);
	fr->dest_refused = true;
	return CURL_SOCKET_BAD;
}

/* a connection kept alive is about to be used: its address again */
static int
fetch_check_connection(void *clientp, char *conn_primary_ip, char *conn_local_ip,
					   int conn_primary_port, int conn_local_port)
{
	FetchResult *fr = (FetchResult *) clientp;

	if (sc_destination_text_allowed(conn_primary_ip, &fr->why))
		return CURL_PREREQFUNC_OK;
	fr->dest_refused = true;
	return CURL_PREREQFUNC_ABORT;
}

/*
 * GET a feed (stay_on NULL: redirects followed, an https feed's only to
 * https), or a telegram of a feed (stay_on: the feed's origin; the URL is
 * on it, and a redirect is followed only if it stays on it).
 */
static void
fetch(const char *url, const char *etag, const char *last_modified, const Origin *stay_on, FetchResult *fr)
{
	struct curl_slist *headers = NULL;
	char		hdr[1024];
	char		next[2048];
	int			redirects = 0;
	bool		said = false;	/* the error is ours, from a redirect */
	CURLcode	rc;

	memset(fr, 0, sizeof(*fr));
	curl_easy_reset(curl);
	if (stay_on)
	{
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, stay_on->scheme);
		curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	}
	else
	{
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR,
						 pg_strncasecmp(url, "https:", 6) == 0 ? "https" : "http,https");
		curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
	}
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) sc_feed_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(sc_feed_timeout_ms, 10000));
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "status_checker/" STATUS_CHECKER_VERSION " (PostgreSQL extension; feed watcher)");
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) sc_max_feed_bytes);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, fr);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, fetch_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, fr);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, fetch_progress);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, fr->error);
	/* only allowed destinations, and no proxy from the environment */
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, fetch_open_socket);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, fr);
	curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, fetch_check_connection);
	curl_easy_setopt(curl, CURLOPT_PREREQDATA, fr);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	if (etag)
	{
		snprintf(hdr, sizeof(hdr), "If-None-Match: %s", etag);
		headers = curl_slist_append(headers, hdr);
	}
	if (last_modified)
	{
		snprintf(hdr, sizeof(hdr), "If-Modified-Since: %s", last_modified);
		headers = curl_slist_append(headers, hdr);
	}
	if (headers)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);

	for (;;)
	{
		char	   *location = NULL;
		Origin		o;

		curl_easy_setopt(curl, CURLOPT_URL, url);
		rc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &fr->status);
		if (stay_on == NULL || rc != CURLE_OK || fr->status < 300 || fr->status >= 400 ||
			curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || location == NULL)
			break;
		/* a telegram's redirect: followed on the feed's own host only */
		said = true;
		if (!on_origin(location, stay_on))
		{
			fr->refused = true;
			if (origin_of(location, &o))
				snprintf(fr->error, sizeof(fr->error), "not fetched: redirected to another host (%s://%s:%s)",
						 o.scheme, o.host, o.port);
			else
				strlcpy(fr->error, "not fetched: redirected to a URL libcurl cannot read", sizeof(fr->error));
			break;
		}
		if (++redirects > 3 || strlen(location) >= sizeof(next))
		{
			strlcpy(fr->error, "more than 3 redirects, or a redirect URL too long", sizeof(fr->error));
			break;
		}
		said = false;
		strlcpy(next, location, sizeof(next));
		url = next;
		free(fr->body);
		fr->body = NULL;
		fr->len = 0;
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (!said)					/* (a redirect's error is said above) */
	{
		if (fr->too_large || rc == CURLE_FILESIZE_EXCEEDED)
			snprintf(fr->error, sizeof(fr->error),
					 "document larger than status_checker.max_feed_bytes (%d bytes)", sc_max_feed_bytes);
		else if (rc != CURLE_OK && fr->dest_refused)
		{
			snprintf(fr->error, sizeof(fr->error),
					 "not fetched: destination %s refused: %s%s%snot a public address (status_checker.allowed_destinations)",
					 fr->why.addr, fr->why.embeds[0] ? "it embeds " : "", fr->why.embeds, fr->why.embeds[0] ? ", " : "");
			fr->status = 0;
		}
		else if (rc != CURLE_OK)
		{
			if (fr->error[0] == '\0')
				strlcpy(fr->error, curl_easy_strerror(rc), sizeof(fr->error));
			fr->status = 0;
		}
		else if (fr->status != 200 && fr->status != 304)
			snprintf(fr->error, sizeof(fr->error), "HTTP %ld", fr->status);
	}
	if (fr->error[0] != '\0' && fr->body)
	{
		free(fr->body);
		fr->body = NULL;
		fr->len = 0;
	}
}

/* ------------------------------------------------------------ SQL */

/* one SQL statement in its own transaction, errors contained (common/worker.c) */
static bool
run_sql(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		List **rows, int ncols)
{
	return sc_run_sql("status_checker feed watcher", loop_cxt, sql, nargs, types, values, nulls, rows, ncols);
}

static Datum
text_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

static Datum
bytea_of(FetchResult *fr, char *null)
{
	bytea	   *b;

	if (fr->body == NULL)
	{
		*null = 'n';
		return (Datum) 0;
	}
	b = palloc(VARHDRSZ + fr->len);
	SET_VARSIZE(b, VARHDRSZ + fr->len);
	memcpy(VARDATA(b), fr->body, fr->len);
	*null = ' ';
	return PointerGetDatum(b);
}

static void
poll_feed(char **feed)
{
	FetchResult fr;
	List	   *urls = NIL;
	ListCell   *lc;
	Oid			types[5] = {INT8OID, INT4OID, TEXTOID, TEXTOID, BYTEAOID};
	Datum		values[5];
	char		nulls[6] = "     ";
	Origin		origin;
	bool		have_origin = origin_of(feed[2], &origin);

	fetch(feed[2], feed[3], feed[4], NULL, &fr);
	values[0] = Int64GetDatum(pg_strtoint64(feed[0]));
	if (fr.error[0] != '\0')
	{
		Oid			t2[2] = {INT8OID, TEXTOID};
		Datum		v2[2] = {values[0], CStringGetTextDatum(fr.error)};

		if (!ShutdownRequestPending)
			run_sql("SELECT status_checker._feed_failed($1, $2)", 2, t2, v2, NULL, NULL, 0);
		free(fr.body);
		return;
	}
	values[1] = Int32GetDatum((int32) fr.status);
	values[2] = text_or_null(fr.etag[0] ? fr.etag : NULL, &nulls[2]);
	values[3] = text_or_null(fr.last_modified[0] ? fr.last_modified : NULL, &nulls[3]);
	values[4] = bytea_of(&fr, &nulls[4]);
	free(fr.body);
	run_sql("SELECT url FROM status_checker._feed_polled($1, $2, $3, $4, $5)",
			5, types, values, nulls, &urls, 1);

	foreach(lc, urls)
	{
		char	  **row = lfirst(lc);
		Oid			t4[4] = {TEXTOID, INT4OID, BYTEAOID, TEXTOID};
		Datum		v4[4];
		char		n4[5] = "    ";
		bool		fetched = have_origin && on_origin(row[0], &origin);

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			return;
		if (fetched)
			fetch(row[0], NULL, NULL, &origin, &fr);
		else
		{
			/* a link to another host than the feed's: not fetched */
			memset(&fr, 0, sizeof(fr));
			fr.refused = true;
			if (have_origin)
				snprintf(fr.error, sizeof(fr.error), "not fetched: not on the feed's host (%s://%s:%s)",
						 origin.scheme, origin.host, origin.port);
			else
				strlcpy(fr.error, "not fetched: the feed's URL is not one libcurl can read", sizeof(fr.error));
		}
		v4[0] = CStringGetTextDatum(row[0]);
		if (fr.refused)
		{
			Oid			t3[3] = {TEXTOID, TEXTOID, BOOLOID};
			Datum		v3[3] = {v4[0], CStringGetTextDatum(fr.error), BoolGetDatum(fetched)};

			ereport(LOG, (errmsg("status_checker feed watcher: telegram %s of feed %s: %s", row[0], feed[2], fr.error)));
			free(fr.body);
			run_sql("SELECT status_checker._feed_document_refused($1, $2, $3)", 3, t3, v3, NULL, NULL, 0);
			continue;
		}
		v4[1] = Int32GetDatum((int32) fr.status);
		v4[2] = bytea_of(&fr, &n4[2]);
		v4[3] = text_or_null(fr.error[0] ? fr.error : NULL, &n4[3]);
		free(fr.body);
		run_sql("SELECT status_checker._feed_document_fetched($1, $2, $3, $4)", 4, t4, v4, n4, NULL, 0);
	}
}

/* ------------------------------------------------------------ main */

void
sc_feed_watcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sc_database, NULL, 0);

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "status_checker feed watcher",
									 ALLOCSET_DEFAULT_SIZES);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (curl = curl_easy_init()) == NULL)
		ereport(FATAL, (errmsg("status_checker feed watcher: could not initialise libcurl")));
	ereport(LOG, (errmsg("status_checker feed watcher started in database \"%s\"", sc_database)));

	while (!ShutdownRequestPending)
	{
		long		wait_ms = 5000;
		List	   *rows = NIL;

		/*
		 * Everything an iteration allocates outside a transaction (rows,
		 * downloaded bodies and their bytea copies) lives in loop_cxt and is
		 * freed here; run_sql returns to this context after each commit.
		 */
		MemoryContextSwitchTo(loop_cxt);
		MemoryContextReset(loop_cxt);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* only a primary polls; a standby looks each second for its promotion */
		if (RecoveryInProgress())
			wait_ms = 1000;
		else if (sc_extension_present("status_checker feed watcher", loop_cxt))
		{
			if (run_sql("SELECT feed_id, kind, url, etag, last_modified FROM status_checker._feed_due()",
						0, NULL, NULL, NULL, &rows, 5))
			{
				ListCell   *lc;

				foreach(lc, rows)
				{
					if (ShutdownRequestPending)
						break;
					poll_feed((char **) lfirst(lc));
				}
			}
			rows = NIL;
			if (!ShutdownRequestPending &&
				run_sql("SELECT status_checker._feed_next_wait()",
						0, NULL, NULL, NULL, &rows, 1) && rows != NIL)
			{
				char	  **row = linitial(rows);
				double		secs = row[0] ? strtod(row[0], NULL) : 5.0;

				/* at most 5 s, so that new feeds are seen soon */
				wait_ms = (long) Max(50.0, Min(secs * 1000.0, 5000.0));
			}
		}
		if (ShutdownRequestPending)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	curl_easy_cleanup(curl);
	curl_global_cleanup();
	ereport(LOG, (errmsg("status_checker feed watcher stopped")));
	/* exit code 1: the postmaster starts it again (after
	 * pg_terminate_backend); at shutdown nothing is restarted anyway */
	proc_exit(1);
}

/* called from _PG_init when loaded by shared_preload_libraries */
void
sc_feed_watcher_register(void)
{
	if (!sc_feed_watcher_enabled)
		return;
	sc_register_worker("status_checker feed watcher", "status_checker feed watcher", "sc_feed_watcher_main", 10, (Datum) 0);
}
