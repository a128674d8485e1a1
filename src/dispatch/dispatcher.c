/*-------------------------------------------------------------------------
 *
 * dispatcher.c
 *	  The dispatcher background worker: sends the outbox's mails (SMTP) and
 *	  webhooks (HTTP POST) with libcurl's multi interface.
 *
 * Loop:
 *	- claim a batch of due messages (status_checker._claim_messages: FOR
 *	  UPDATE SKIP LOCKED, a lease, the messages rendered) and commit;
 *	- hand them to curl (a per-channel rate limit may hold some back);
 *	- wait in one WaitEventSet on the latch, the postmaster and every socket
 *	  curl asked for (CURLMOPT_SOCKETFUNCTION), with curl's timer
 *	  (CURLMOPT_TIMERFUNCTION) as the timeout, and drive curl with
 *	  curl_multi_socket_action;
 *	- record finished transfers (status_checker._record_outcomes) in short
 *	  transactions of their own, a few at a time.
 * No transaction is open while waiting or sending.
 *
 * status_checker.dispatch_workers such workers (0.8.0) run side by side,
 * numbered from 0: the claim's SKIP LOCKED gives each its own messages, and
 * the outbox records which worker holds one (claimed_by).  They split the
 * concurrency evenly and take each channel's rate-limit tokens from one
 * bucket in shared memory.  Several are needed because one
 * process runs the claim's and the outcomes' SQL and curl in turn: alone,
 * it leaves the second core idle (docs/benchmarks.md, delivery).
 *
 * The workers are woken at commit by any transaction that enqueued messages
 * (the outbox trigger calls _outbox_wake, which sets their latches from an
 * XactCallback), and otherwise sleep until the next retry is due.  That,
 * the shared memory (a slot per worker, the channels' rate buckets) and the
 * status functions are the backend side, in dispatch_shared.c.  On
 * start, the messages a worker's previous incarnation left 'sending' become
 * due again (_dispatcher_startup): a message is sent at least once, and a
 * duplicate carries the same idempotency key.
 *
 * Destinations (0.10.1): every address libcurl is about to connect to is
 * checked first (CURLOPT_OPENSOCKETFUNCTION), and so is the address of a
 * connection kept alive before a transfer uses it (CURLOPT_PREREQFUNCTION,
 * which also covers a change of status_checker.allowed_destinations since
 * the connection was made): what is neither a public address nor in a
 * network the operator allows is never connected to, and the message is
 * dead at once with the reason (src/dispatch/destinations.c).  No proxy is used,
 * whatever the environment says (http_proxy, ALL_PROXY, ...): through a
 * proxy, the address connected to would be the proxy's.  A reply's body
 * and the server's text are not kept: last_error has the status (and a
 * 429's Retry-After) or libcurl's own error text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "common/sc_guc.h"
#include "common/worker.h"
#include "dispatch/destinations.h"
#include "dispatch/dispatch.h"
#include "dispatch/dispatch_shared.h"

PGDLLEXPORT void sc_dispatcher_main(Datum main_arg);

#define WHO "status_checker dispatcher"

bool		sc_dispatcher_enabled = true;
int			sc_dispatch_workers = 2;
int			sc_dispatch_concurrency = 64;
int			sc_dispatch_batch_size = 500;
int			sc_dispatch_timeout_ms = 30000;
int			sc_dispatch_rate_limit = 0;
int			sc_dispatch_max_attempts = 10;
int			sc_dispatch_retry_base_ms = 30000;
int			sc_dispatch_retry_max_ms = 3600000;
int			sc_dispatch_lease_ms = 300000;
char	   *sc_link_base_url = NULL;

static DispatchSlot *me = NULL; /* this worker's slot */
static int	my_worker = 0;

/* ------------------------------------------------------ messages */

enum
{
	C_ID, C_TENANT, C_ATTEMPTS, C_CHANNEL, C_KIND, C_URL, C_FROM, C_RCPT, C_HEADERS,
	C_BODY, C_SECRET, C_TLS, C_USER, C_PASSWORD, C_CAFILE, NCOLS
};

typedef struct Msg
{
	struct Msg *next;			/* waiting list */
	int64		id;
	int64		tenant_id;
	int32		attempts;		/* the claim's attempt number */
	int64		channel_id;
	bool		email;
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *rcpt;
	curl_mime  *mime;
	char	   *s[NCOLS];		/* the claimed row's strings (malloc'd) */
	int			tried;			/* allowed addresses it connected to */
	bool		refused;		/* an address was refused ... */
	bool		refused_reused; /* ... that of a connection kept alive */
	DestRefusal why;			/* the first address refused */
	char		errbuf[CURL_ERROR_SIZE];
} Msg;

typedef struct Outcome
{
	int64		tenant_id;
	int64		id;
	int32		attempts;
	const char *outcome;		/* sent, retry, dead */
	int32		code;
	int32		retry_after;
	char		error[300];
} Outcome;

typedef struct SockWatch
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_* */
	int			pos;			/* position in the wait set, -1: not yet in it */
} SockWatch;

static int	my_concurrency(void);

static MemoryContext loop_cxt;
static CURLM *multi;
static long curl_timeout_ms = -1;	/* from CURLMOPT_TIMERFUNCTION */
static SockWatch *socks;
static int	nsocks,
			maxsocks;
static bool socks_removed = true;	/* the wait set must be built again */
static bool socks_added = false;	/* sockets to add to the wait set */
static WaitEventSet *wes = NULL;
static int	wes_capacity = 0;
static Msg *waiting_head = NULL,
		   *waiting_tail = NULL;
static int	nwaiting = 0;
static int	ninflight = 0;
static Outcome *outcomes;
static int	noutcomes,
			maxoutcomes;
static TimestampTz first_outcome_at;
/*
 * A failed transaction (a deadlock, a serialization failure, a restart of
 * a lock holder) is retried after a pause that doubles up to 10 s; the
 * messages in flight stay this process's own.  Only when the extension is
 * gone, or recording keeps failing for about a minute, does the dispatcher
 * start over (_dispatcher_startup makes the messages left 'sending' due).
 */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS 10000
#define FLUSH_GIVE_UP 12
static TimestampTz flush_retry_at = 0;
static long flush_backoff_ms = 0;
static int	flush_failures = 0;
static long claim_backoff_ms = 0;
/*
 * Easy handles of finished transfers, reset and kept for the next messages,
 * at most one per transfer this worker may have in flight: a reset handle
 * keeps its buffers, where a new one per message cost ~6 µs more of CPU
 * (the raw client's two modes, docs/benchmarks.md).  Reset clears every
 * option, so nothing of one message reaches the next; connections belong
 * to the multi handle either way.
 */
static CURL **spare;
static int	nspare,
			maxspare;

static CURL *
handle_get(void)
{
	return nspare > 0 ? spare[--nspare] : curl_easy_init();
}

static void
handle_put(CURL *e)
{
	if (nspare < maxspare && nspare < my_concurrency())
	{
		curl_easy_reset(e);
		spare[nspare++] = e;
	}
	else
		curl_easy_cleanup(e);
}

static void
msg_free(Msg *m)
{
	/* the handle first: it may point to the lists and the MIME structure */
	if (m->easy)
		handle_put(m->easy);
	curl_slist_free_all(m->headers);
	curl_slist_free_all(m->rcpt);
	if (m->mime)
		curl_mime_free(m->mime);
	for (int i = 0; i < NCOLS; i++)
		free(m->s[i]);
	free(m);
}

/*
 * A reply's body is read and dropped: what a receiver says is not kept
 * (last_error, which viewers read, has the status).
 */
static size_t
reply_drop(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

static void
note_refusal(Msg *m, const DestRefusal *why)
{
	if (!m->refused)
		m->why = *why;
	m->refused = true;
}

/*
 * libcurl is about to connect to an address (each one it tries): a socket
 * only for an allowed one.  No transaction, no palloc: curl calls this.
 */
static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	Msg		   *m = (Msg *) clientp;
	DestRefusal why;
	const unsigned char *ip = NULL;

	if (address->family == AF_INET)
		ip = (const unsigned char *) &((struct sockaddr_in *) &address->addr)->sin_addr;
	else if (address->family == AF_INET6)
		ip = (const unsigned char *) &((struct sockaddr_in6 *) &address->addr)->sin6_addr;
	if (purpose == CURLSOCKTYPE_IPCXN && ip != NULL && sc_destination_allowed(address->family, ip, &why))
	{
		m->tried++;
		return socket(address->family, address->socktype, address->protocol);
	}
	if (ip == NULL)
		sc_destination_text_allowed(NULL, &why);
	note_refusal(m, &why);
	return CURL_SOCKET_BAD;
}

/*
 * A transfer is about to use a connection, new or kept alive: its address
 * again, as the setting may have changed since the connection was made.
 */
static int
check_connection(void *clientp, char *conn_primary_ip, char *conn_local_ip,
				 int conn_primary_port, int conn_local_port)
{
	Msg		   *m = (Msg *) clientp;
	DestRefusal why;

	if (sc_destination_text_allowed(conn_primary_ip, &why))
		return CURL_PREREQFUNC_OK;
	note_refusal(m, &why);
	m->refused_reused = true;
	return CURL_PREREQFUNC_ABORT;
}

static int
abort_on_shutdown(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
				  curl_off_t ultotal, curl_off_t ulnow)
{
	return ShutdownRequestPending ? 1 : 0;
}

static void
add_outcome(Msg *m, const char *outcome, int32 code, int32 retry_after, const char *error)
{
	Outcome    *o;

	if (noutcomes == maxoutcomes)
	{
		maxoutcomes = Max(64, maxoutcomes * 2);
		outcomes = repalloc_huge(outcomes, sizeof(Outcome) * maxoutcomes);
	}
	if (noutcomes == 0)
		first_outcome_at = GetCurrentTimestamp();
	o = &outcomes[noutcomes++];
	o->tenant_id = m->tenant_id;
	o->id = m->id;
	o->attempts = m->attempts;
	o->outcome = outcome;
	o->code = code;
	o->retry_after = retry_after;
	strlcpy(o->error, error ? error : "", sizeof(o->error));
	/* printable ASCII only: libcurl's text may quote a certificate's name */
	for (unsigned char *c = (unsigned char *) o->error; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
}

/*
 * Header lines of the claimed row into a curl list.  Lines are separated by
 * "\n"; a "\r\n " inside a line is the folding of a long encoded header
 * (_mime_header) and stays in it.
 */
static struct curl_slist *
header_list(const char *lines, struct curl_slist *list)
{
	const char *p = lines;

	while (p && *p)
	{
		const char *nl = p;
		char	   *buf;
		size_t		n;

		while ((nl = strchr(nl, '\n')) != NULL && nl > p && nl[-1] == '\r')
			nl++;
		n = nl ? (size_t) (nl - p) : strlen(p);
		if (n > 0 && (buf = strndup(p, n)) != NULL)
		{
			list = curl_slist_append(list, buf);
			free(buf);
		}
		p = nl ? nl + 1 : NULL;
	}
	return list;
}

/* set up the curl handle of one message; false (and an outcome) on failure */
static bool
msg_prepare(Msg *m)
{
	CURL	   *e = handle_get();

	if (e == NULL)
		return false;
	m->easy = e;
	curl_easy_setopt(e, CURLOPT_PRIVATE, m);
	curl_easy_setopt(e, CURLOPT_URL, m->s[C_URL]);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) sc_dispatch_timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(sc_dispatch_timeout_ms, 10000));
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, m->errbuf);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, abort_on_shutdown);
	/* where it connects: checked, and never through a proxy */
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, m);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, check_connection);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, m);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	if (m->s[C_CAFILE])
		curl_easy_setopt(e, CURLOPT_CAINFO, m->s[C_CAFILE]);

	if (m->email)
	{
		curl_mimepart *part;
		const char *tls = m->s[C_TLS] ? m->s[C_TLS] : "require";

		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
		curl_easy_setopt(e, CURLOPT_MAIL_FROM, m->s[C_FROM]);
		m->rcpt = curl_slist_append(NULL, m->s[C_RCPT]);
		curl_easy_setopt(e, CURLOPT_MAIL_RCPT, m->rcpt);
		if (strcmp(tls, "off") == 0)
			curl_easy_setopt(e, CURLOPT_USE_SSL, (long) CURLUSESSL_NONE);
		else if (strcmp(tls, "try") == 0)
			curl_easy_setopt(e, CURLOPT_USE_SSL, (long) CURLUSESSL_TRY);
		else
			curl_easy_setopt(e, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
		if (m->s[C_USER])
			curl_easy_setopt(e, CURLOPT_USERNAME, m->s[C_USER]);
		if (m->s[C_PASSWORD])
			curl_easy_setopt(e, CURLOPT_PASSWORD, m->s[C_PASSWORD]);
		m->headers = header_list(m->s[C_HEADERS], NULL);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->headers);
		/* one text/plain part, UTF-8, base64: curl writes the MIME structure */
		m->mime = curl_mime_init(e);
		part = curl_mime_addpart(m->mime);
		curl_mime_data(part, m->s[C_BODY], CURL_ZERO_TERMINATED);
		curl_mime_type(part, "text/plain; charset=UTF-8");
		curl_mime_encoder(part, "base64");
		curl_easy_setopt(e, CURLOPT_MIMEPOST, m->mime);
	}
	else
	{
		int64		ts = (int64) time(NULL);
		char		hdr[160];
		const char *body = m->s[C_BODY] ? m->s[C_BODY] : "";

		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
		curl_easy_setopt(e, CURLOPT_USERAGENT,
						 "status_checker/" STATUS_CHECKER_VERSION " (PostgreSQL extension; dispatcher)");
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, reply_drop);
		m->headers = header_list(m->s[C_HEADERS], NULL);
		m->headers = curl_slist_append(m->headers, "Expect:");
		if (m->s[C_SECRET])
		{
			char		hex[65];

			snprintf(hdr, sizeof(hdr), "X-Status-Checker-Timestamp: " INT64_FORMAT, ts);
			m->headers = curl_slist_append(m->headers, hdr);
			sc_webhook_sign(m->s[C_SECRET], strlen(m->s[C_SECRET]), ts, body, strlen(body), hex);
			snprintf(hdr, sizeof(hdr), "X-Status-Checker-Signature: v1=%s", hex);
			m->headers = curl_slist_append(m->headers, hdr);
		}
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->headers);
	}
	return true;
}

/* ------------------------------------------------------ curl callbacks */

static uint32
wait_events_of(int what)
{
	uint32		ev = 0;

	if (what & CURL_POLL_IN)
		ev |= WL_SOCKET_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= WL_SOCKET_WRITEABLE;
	return ev;
}

/*
 * curl says which sockets to watch for what.  A change of direction is
 * applied to the wait set at once (ModifyWaitEvent); a new socket is added
 * before the next wait; a wait set cannot drop a socket, so a removal makes
 * it be built again (rare: connections are kept alive).
 */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < nsocks; i++)
		if (socks[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < nsocks)
		{
			if (socks[i].pos >= 0)
				socks_removed = true;
			socks[i] = socks[--nsocks];
		}
		return 0;
	}
	if (i == nsocks)
	{
		if (nsocks == maxsocks)
		{
			SockWatch  *grown;

			maxsocks = Max(16, maxsocks * 2);
			grown = realloc(socks, sizeof(SockWatch) * maxsocks);
			if (grown == NULL)
				return -1;
			socks = grown;
		}
		socks[nsocks].fd = s;
		socks[nsocks].what = what;
		socks[nsocks].pos = -1;
		nsocks++;
		socks_added = true;
	}
	else if (socks[i].what != what)
	{
		socks[i].what = what;
		if (socks[i].pos >= 0 && wes != NULL && !socks_removed)
			ModifyWaitEvent(wes, socks[i].pos, wait_events_of(what), NULL);
	}
	return 0;
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	curl_timeout_ms = timeout_ms;
	return 0;
}

/* ------------------------------------------------------ outcomes */

static void
collect_finished(void)
{
	CURLMsg    *cm;
	int			left;

	while ((cm = curl_multi_info_read(multi, &left)) != NULL)
	{
		Msg		   *m = NULL;
		CURLcode	rc = cm->data.result;
		long		code = 0;
		curl_off_t	retry_after = 0;
		char		err[300];

		if (cm->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **) &m);
		curl_easy_getinfo(cm->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		curl_multi_remove_handle(multi, cm->easy_handle);
		ninflight--;

		if (rc != CURLE_OK && m->refused && (m->refused_reused || m->tried == 0))
		{
			/* nothing allowed to connect to: dead until the operator allows it */
			snprintf(err, sizeof(err), "destination %s refused: %s%s%snot a public address (status_checker.allowed_destinations)",
					 m->why.addr, m->why.embeds[0] ? "it embeds " : "", m->why.embeds, m->why.embeds[0] ? ", " : "");
			add_outcome(m, "dead", 0, 0, err);
		}
		else if (m->email)
		{
			/* libcurl's SMTP errors have the reply code, not the server's text */
			if (rc == CURLE_OK)
				add_outcome(m, "sent", (int32) code, 0, NULL);
			else
			{
				snprintf(err, sizeof(err), "SMTP %ld: %s", code,
						 m->errbuf[0] ? m->errbuf : curl_easy_strerror(rc));
				/* 5xx: the server refused for good; else try again */
				add_outcome(m, code >= 500 && code < 600 ? "dead" : "retry", (int32) code, 0, err);
			}
		}
		else if (rc != CURLE_OK)
		{
			snprintf(err, sizeof(err), "%s", m->errbuf[0] ? m->errbuf : curl_easy_strerror(rc));
			add_outcome(m, "retry", (int32) code, 0, err);
		}
		else if (code >= 200 && code < 300)
			add_outcome(m, "sent", (int32) code, 0, NULL);
		else
		{
			bool		again = code == 408 || code == 429 || code >= 500;

			/* the status, and what a 429 asked for; not the reply's body */
			curl_easy_getinfo(cm->easy_handle, CURLINFO_RETRY_AFTER, &retry_after);
			retry_after = Min(retry_after, (curl_off_t) 86400);
			if (code == 429 && retry_after > 0)
				snprintf(err, sizeof(err), "HTTP 429 (Retry-After: %d s)", (int) retry_after);
			else
				snprintf(err, sizeof(err), "HTTP %ld", code);
			add_outcome(m, again ? "retry" : "dead", (int32) code, (int32) retry_after, err);
		}
		msg_free(m);
	}
}

static Datum
text_array(const char **items, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * Record the collected outcomes in one short transaction.  Returns
 * FLUSH_RETRIES if some are to be retried (the next due time has changed),
 * FLUSH_FAILED if they could not be recorded.
 */
#define FLUSH_RETRIES 1
#define FLUSH_FAILED 2

static int
flush_outcomes(void)
{
	Datum	   *tenants,
			   *ids,
			   *att,
			   *codes,
			   *ra;
	const char **kinds,
			  **errs;
	Oid			types[10] = {INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	TEXTARRAYOID, INT4ARRAYOID, INT4OID, INT4OID, INT4OID};
	Datum		values[10];
	MemoryContext old;
	int			result = 0;

	if (noutcomes == 0)
		return 0;
	old = MemoryContextSwitchTo(loop_cxt);
	tenants = palloc(sizeof(Datum) * noutcomes);
	ids = palloc(sizeof(Datum) * noutcomes);
	att = palloc(sizeof(Datum) * noutcomes);
	codes = palloc(sizeof(Datum) * noutcomes);
	ra = palloc(sizeof(Datum) * noutcomes);
	kinds = palloc(sizeof(char *) * noutcomes);
	errs = palloc(sizeof(char *) * noutcomes);
	for (int i = 0; i < noutcomes; i++)
	{
		Outcome    *o = &outcomes[i];

		tenants[i] = Int64GetDatum(o->tenant_id);
		ids[i] = Int64GetDatum(o->id);
		att[i] = Int32GetDatum(o->attempts);
		codes[i] = Int32GetDatum(o->code);
		ra[i] = Int32GetDatum(o->retry_after);
		kinds[i] = o->outcome;
		errs[i] = o->error;
	}
	values[0] = PointerGetDatum(construct_array(tenants, noutcomes, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = PointerGetDatum(construct_array(ids, noutcomes, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(att, noutcomes, INT4OID, 4, true, TYPALIGN_INT));
	values[3] = text_array(kinds, noutcomes);
	values[4] = PointerGetDatum(construct_array(codes, noutcomes, INT4OID, 4, true, TYPALIGN_INT));
	values[5] = text_array(errs, noutcomes);
	values[6] = PointerGetDatum(construct_array(ra, noutcomes, INT4OID, 4, true, TYPALIGN_INT));
	values[7] = Int32GetDatum(sc_dispatch_max_attempts);
	values[8] = Int32GetDatum(sc_dispatch_retry_base_ms);
	values[9] = Int32GetDatum(sc_dispatch_retry_max_ms);
	/*
	 * If this fails, the outcomes are kept and recorded again later (the
	 * caller decides when); the messages stay 'sending' meanwhile.
	 */
	if (!sc_run_sql(WHO, loop_cxt,
					"SELECT status_checker._record_outcomes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
					10, types, values, NULL, NULL, 0))
	{
		MemoryContextSwitchTo(old);
		return FLUSH_FAILED;
	}
	for (int i = 0; i < noutcomes; i++)
	{
		const char *outcome = outcomes[i].outcome;

		if (strcmp(outcome, "sent") == 0)
			pg_atomic_fetch_add_u64(&me->sent, 1);
		else if (strcmp(outcome, "dead") == 0)
			pg_atomic_fetch_add_u64(&me->dead, 1);
		else
		{
			pg_atomic_fetch_add_u64(&me->retried, 1);
			result |= FLUSH_RETRIES;
		}
	}
	noutcomes = 0;
	MemoryContextSwitchTo(old);
	return result;
}

/* ------------------------------------------------------ claiming */

/*
 * This worker's share of the transfers in flight: the workers split them
 * evenly (rounding up, so that each has at least one).
 */
static int
my_concurrency(void)
{
	int			nslots = dispatch_nslots();

	return (sc_dispatch_concurrency + nslots - 1) / nslots;
}


/*
 * Re-read the configuration if a SIGHUP came: at the top of each loop, and
 * before transfers start, so that a message claimed after a change of
 * status_checker.allowed_destinations arrived is checked against it.
 */
static void
reload_if_pending(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) my_concurrency());
	}
}

/* forget the claimed messages that wait (their outbox is gone) */
static void
drop_waiting(void)
{
	while (waiting_head != NULL)
	{
		Msg		   *next = waiting_head->next;

		msg_free(waiting_head);
		waiting_head = next;
	}
	waiting_tail = NULL;
	nwaiting = 0;
}

/* start waiting messages while there is room; returns ms until one may */
static long
start_waiting(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = LONG_MAX;
	Msg		   *prev = NULL,
			   *m = waiting_head;

	reload_if_pending();
	while (m != NULL && ninflight < my_concurrency())
	{
		Msg		   *next = m->next;

		if (!dispatch_rate_allows(m->channel_id, now, &wait_ms))
		{
			prev = m;
			m = next;
			continue;
		}
		/* unlink */
		if (prev)
			prev->next = next;
		else
			waiting_head = next;
		if (waiting_tail == m)
			waiting_tail = prev;
		nwaiting--;
		m->next = NULL;
		if (!msg_prepare(m) || curl_multi_add_handle(multi, m->easy) != CURLM_OK)
		{
			add_outcome(m, "retry", 0, 0, "could not set up a transfer");
			msg_free(m);
		}
		else
			ninflight++;
		m = next;
	}
	return nwaiting > 0 && wait_ms != LONG_MAX ? wait_ms : -1;
}

static char *
dup_or_null(const char *s)
{
	char	   *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return d;
}

/* claim a batch; returns how many rows came back */
static int
claim(int limit, bool *failed)
{
	List	   *rows = NIL;
	ListCell   *lc;
	Oid			types[3] = {INT4OID, INT4OID, INT4OID};
	Datum		values[3] = {Int32GetDatum(limit), Int32GetDatum(sc_dispatch_lease_ms), Int32GetDatum(my_worker)};

	if (!sc_run_sql(WHO, loop_cxt,
					"SELECT message_id, tenant_id, attempts, channel_id, kind, url, mail_from, rcpt, headers, body, "
					"secret, tls, username, password, ca_file FROM status_checker._claim_messages($1, $2, $3)",
					3, types, values, NULL, &rows, NCOLS))
	{
		*failed = true;
		return 0;
	}
	foreach(lc, rows)
	{
		char	  **row = lfirst(lc);
		Msg		   *m = calloc(1, sizeof(Msg));

		if (m == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		for (int i = 0; i < NCOLS; i++)
			m->s[i] = dup_or_null(row[i]);
		m->id = strtoll(row[C_ID], NULL, 10);
		m->tenant_id = strtoll(row[C_TENANT], NULL, 10);
		m->attempts = (int32) strtol(row[C_ATTEMPTS], NULL, 10);
		m->channel_id = row[C_CHANNEL] ? strtoll(row[C_CHANNEL], NULL, 10) : 0;
		m->email = strcmp(row[C_KIND], "email") == 0;
		if (waiting_tail)
			waiting_tail->next = m;
		else
			waiting_head = m;
		waiting_tail = m;
		nwaiting++;
	}
	pg_atomic_fetch_add_u64(&me->claimed, list_length(rows));
	return list_length(rows);
}

/* seconds until the next message is due (NULL: none), capped */
static long
next_due_ms(void)
{
	List	   *rows = NIL;
	long		ms = 60000;

	if (sc_run_sql(WHO, loop_cxt, "SELECT status_checker._outbox_next_wait()",
				   0, NULL, NULL, NULL, &rows, 1) && rows != NIL)
	{
		char	  **row = linitial(rows);

		if (row[0])
			ms = (long) Max(0.0, Min(strtod(row[0], NULL) * 1000.0, 60000.0));
	}
	return ms;
}
/* ------------------------------------------------------ main */

/* what the main loop carries from one turn to the next */
typedef struct DispatchLoop
{
	bool		started;		/* _dispatcher_startup has run: claiming may begin */
	bool		more;			/* the outbox may have due messages */
	TimestampTz due_at;			/* when to look again if !more */
	MemoryContext wes_cxt;		/* the wait set's */
	WaitEvent  *events;			/* what one wait returns */
	int			maxevents;
} DispatchLoop;

static void
dispatcher_detach(int code, Datum arg)
{
	if (me)
	{
		me->latch = NULL;
		pg_atomic_write_u64(&me->in_flight, 0);
		pg_atomic_write_u64(&me->waiting, 0);
	}
}

/* a new wait set: the latch, the postmaster, and room for curl's sockets */
static void
build_wait_set(MemoryContext cxt)
{
	if (wes)
		FreeWaitEventSet(wes);
	MemoryContextReset(cxt);
	wes_capacity = Max(64, 2 * (nsocks + my_concurrency()));
	wes = CreateWaitEventSet(cxt, 2 + wes_capacity);
	AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nsocks; i++)
		socks[i].pos = -1;
	socks_removed = false;
	socks_added = true;
}

/* add the sockets curl announced since the last wait */
static void
add_new_sockets(MemoryContext cxt)
{
	int			pending = 0;

	for (int i = 0; i < nsocks; i++)
		if (socks[i].pos < 0)
			pending++;
	if (wes == NULL || socks_removed || wes_capacity < pending)
		build_wait_set(cxt);
	for (int i = 0; i < nsocks; i++)
		if (socks[i].pos < 0)
		{
			if (wes_capacity-- <= 0)
				elog(ERROR, "wait set full");
			socks[i].pos = AddWaitEventToSet(wes, wait_events_of(socks[i].what), socks[i].fd, NULL, NULL);
		}
	socks_added = false;
}

/*
 * Step 0: connect to the database, take this worker's slot in shared
 * memory, set up libcurl's multi handle, and show in the slot that the
 * worker runs.
 */
static void
dispatcher_start(int worker, DispatchLoop *lp)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(sc_database, NULL, 0);
	my_worker = worker;
	me = dispatch_slot(my_worker);
	if (me == NULL)
		ereport(FATAL, (errmsg(WHO ": no shared memory slot for worker %d", my_worker)));

	loop_cxt = AllocSetContextCreate(TopMemoryContext, WHO, ALLOCSET_DEFAULT_SIZES);
	lp->wes_cxt = AllocSetContextCreate(TopMemoryContext, WHO " wait set", ALLOCSET_SMALL_SIZES);
	outcomes = MemoryContextAlloc(TopMemoryContext, sizeof(Outcome) * 64);
	maxoutcomes = 64;
	/* room for a spare handle per transfer at the largest concurrency */
	maxspare = 4096;
	spare = MemoryContextAlloc(TopMemoryContext, sizeof(CURL *) * maxspare);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (multi = curl_multi_init()) == NULL)
		ereport(FATAL, (errmsg(WHO ": could not initialise libcurl")));
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) my_concurrency());
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) my_concurrency());

	me->pid = MyProcPid;
	me->started_at = GetCurrentTimestamp();
	me->latch = MyLatch;
	before_shmem_exit(dispatcher_detach, (Datum) 0);
	ereport(LOG, (errmsg(WHO " %d of %d started in database \"%s\"", my_worker, dispatch_nslots(), sc_database)));
}

/*
 * Step 1: record what finished: at once when nothing else is in flight,
 * else when 200 have gathered or the oldest waited 20 ms.  A retry changes
 * when the next message is due.  *now is read again after recording.
 */
static void
record_finished(DispatchLoop *lp, TimestampTz *now)
{
	int			flushed;

	if (!(noutcomes > 0 && *now >= flush_retry_at &&
		  (noutcomes >= 200 || ninflight == 0 ||
		   (*now - first_outcome_at) / 1000 >= 20)))
		return;
	flushed = flush_outcomes();
	if (flushed & FLUSH_RETRIES)
		lp->more = true;
	if (flushed & FLUSH_FAILED)
	{
		if (++flush_failures >= FLUSH_GIVE_UP || !sc_extension_present(WHO, loop_cxt))
		{
			/* start over: the unrecorded messages become due again */
			ereport(LOG,
					(errmsg(WHO ": %d outcome(s) could not be recorded; their messages will be sent again",
							noutcomes)));
			noutcomes = 0;
			flush_failures = 0;
			flush_backoff_ms = 0;
			lp->started = false;
		}
		else
		{
			flush_backoff_ms = flush_backoff_ms == 0 ? RETRY_FIRST_MS : Min(flush_backoff_ms * 2, RETRY_MAX_MS);
			flush_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), flush_backoff_ms);
		}
	}
	else
	{
		flush_failures = 0;
		flush_backoff_ms = 0;
	}
	*now = GetCurrentTimestamp();
}

/*
 * Step 2: only a primary sends; a standby waits for its promotion, looking
 * each second (a check of shared memory), so that sending resumes within a
 * second of a failover.  A primary that has not started yet runs
 * _dispatcher_startup, which makes every message left 'sending' due again:
 * only once none of them is this process's own.  Lowers *timeout while
 * sending cannot start.
 */
static void
start_if_primary(DispatchLoop *lp, long *timeout)
{
	if (RecoveryInProgress())
	{
		lp->started = false;
		*timeout = 1000;
		return;
	}
	if (lp->started)
		return;
	if (ninflight == 0 && nwaiting == 0 && noutcomes == 0 &&
		sc_extension_present(WHO, loop_cxt))
	{
		List	   *rows = NIL;
		Oid			types[2] = {INT4OID, INT4OID};
		Datum		values[2] = {Int32GetDatum(my_worker), Int32GetDatum(dispatch_nslots())};

		if (sc_run_sql(WHO, loop_cxt,
					   "SELECT status_checker._dispatcher_startup($1, $2)",
					   2, types, values, NULL, &rows, 1))
		{
			lp->started = true;
			lp->more = true;
			if (rows != NIL && ((char **) linitial(rows))[0] &&
				strcmp(((char **) linitial(rows))[0], "0") != 0)
				ereport(LOG,
						(errmsg(WHO ": %s message(s) left sending by a previous run are due again",
								((char **) linitial(rows))[0])));
		}
	}
	if (!lp->started)
		*timeout = 10000;
}

/*
 * Step 3: claim while there is room, keeping one batch ready, and hand to
 * curl what the rate limit lets start.  Lowers *timeout to when the next
 * message is due or a rate-limit token will be there.
 */
static void
claim_and_send(DispatchLoop *lp, TimestampTz now, long *timeout)
{
	long		rate_wait;

	if (!lp->more && now >= lp->due_at)
		lp->more = true;
	if (lp->more && nwaiting < my_concurrency())
	{
		int			limit = sc_dispatch_batch_size;
		bool		failed = false;
		int			got = claim(limit, &failed);

		if (failed && sc_extension_present(WHO, loop_cxt))
		{
			/* e.g. a deadlock: claim again after a pause */
			claim_backoff_ms = claim_backoff_ms == 0 ? RETRY_FIRST_MS : Min(claim_backoff_ms * 2, RETRY_MAX_MS);
			lp->more = false;
			lp->due_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), claim_backoff_ms);
		}
		else if (failed)
		{
			/* the extension was dropped: what waits goes with it */
			drop_waiting();
			lp->started = false;
			lp->more = false;
			lp->due_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);
		}
		else
		{
			claim_backoff_ms = 0;
			if (got < limit)
			{
				long		ms = next_due_ms();

				lp->more = false;
				lp->due_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
			}
		}
	}
	rate_wait = start_waiting();
	if (rate_wait >= 0)
		*timeout = Min(*timeout, rate_wait);
	if (!lp->more)
		*timeout = Min(*timeout, Max(0, (long) ((lp->due_at - GetCurrentTimestamp()) / 1000)));
	else if (nwaiting < my_concurrency())
		*timeout = 0;
}

/*
 * Step 4: how long the wait may last: outcomes wait at most 20 ms, or
 * until 200 have gathered (after a failure to record them, until the
 * retry), and curl's timer may be due sooner.
 */
static long
wait_timeout(long timeout)
{
	if (noutcomes > 0)
	{
		TimestampTz t = GetCurrentTimestamp();

		if (t < flush_retry_at)
			timeout = Min(timeout, (long) ((flush_retry_at - t) / 1000) + 1);
		else
			timeout = Min(timeout, Max(0, 20 - (long) ((t - first_outcome_at) / 1000)));
	}
	if (curl_timeout_ms >= 0)
		timeout = Min(timeout, curl_timeout_ms);
	return timeout;
}

/*
 * Step 5: wait in one WaitEventSet on the latch, the postmaster and curl's
 * sockets, then drive curl: the sockets that are ready, and its timer if it
 * ran out.  A set latch (a commit woke us) means there may be new messages.
 */
static void
wait_and_drive_curl(DispatchLoop *lp, long timeout)
{
	int			n;

	if (wes == NULL || socks_removed || socks_added)
		add_new_sockets(lp->wes_cxt);
	if (lp->maxevents < 2 + nsocks)
	{
		lp->maxevents = 2 + nsocks + 64;
		lp->events = lp->events ? repalloc(lp->events, sizeof(WaitEvent) * lp->maxevents)
			: MemoryContextAlloc(TopMemoryContext, sizeof(WaitEvent) * lp->maxevents);
	}
	n = WaitEventSetWait(wes, timeout, lp->events, lp->maxevents, PG_WAIT_EXTENSION);
	if (n == 0 && curl_timeout_ms >= 0)
	{
		int			running;

		curl_timeout_ms = -1;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	for (int i = 0; i < n; i++)
	{
		WaitEvent  *ev = &lp->events[i];

		if (ev->events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			lp->more = true;	/* woken at commit: there may be new messages */
		}
		else if (ev->events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			flags = 0;
			int			running;

			if (ev->events & WL_SOCKET_READABLE)
				flags |= CURL_CSELECT_IN;
			if (ev->events & WL_SOCKET_WRITEABLE)
				flags |= CURL_CSELECT_OUT;
			curl_multi_socket_action(multi, ev->fd, flags, &running);
		}
	}
	/* curl's timer may have run out while we were busy */
	if (curl_timeout_ms == 0)
	{
		int			running;

		curl_timeout_ms = -1;
		curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
}

/*
 * The worker's main function: set up, then turn the loop until SIGTERM.
 * Each turn: record what finished, make sure this is a primary that has
 * started, claim and send, wait for curl's sockets or the latch, and
 * collect the finished transfers.  No transaction is open while waiting.
 */
void
sc_dispatcher_main(Datum main_arg)
{
	DispatchLoop lp = {0};

	lp.more = true;				/* the outbox may have due messages */
	dispatcher_start(DatumGetInt32(main_arg), &lp);

	while (!ShutdownRequestPending)
	{
		long		timeout = 60000;
		TimestampTz now;

		/* a fresh memory context for this turn; the configuration if a SIGHUP came */
		MemoryContextSwitchTo(loop_cxt);
		MemoryContextReset(loop_cxt);
		reload_if_pending();
		now = GetCurrentTimestamp();
		pg_atomic_write_u64(&me->heartbeat, (uint64) now);

		/* 1: the outcomes of finished transfers, in a transaction of their own */
		record_finished(&lp, &now);

		/* 2: a standby only waits; a primary starts once (_dispatcher_startup) */
		start_if_primary(&lp, &timeout);

		/* 3: claim due messages and start their transfers */
		if (lp.started)
			claim_and_send(&lp, now, &timeout);

		/* what dispatcher_status() and dispatcher_workers() show */
		pg_atomic_write_u64(&me->in_flight, (uint64) ninflight);
		pg_atomic_write_u64(&me->waiting, (uint64) nwaiting);

		/* 4 and 5: sleep until a socket, the latch or a timer, then drive curl */
		wait_and_drive_curl(&lp, wait_timeout(timeout));

		/* 6: the transfers curl finished become outcomes to record */
		collect_finished();
		CHECK_FOR_INTERRUPTS();
	}

	/* shutting down: what is in flight stays 'sending' and is sent again later */
	(void) flush_outcomes();
	ereport(LOG, (errmsg(WHO " stopped (%d in flight, %d waiting left to the next start)",
						 ninflight, nwaiting)));
	proc_exit(1);
}

/* called from _PG_init when loaded by shared_preload_libraries */
void
sc_dispatcher_register(void)
{
	if (!sc_dispatcher_enabled)
		return;
	/* the first keeps the plain name it had before there were several */
	for (int i = 0; i < Max(sc_dispatch_workers, 1); i++)
		sc_register_worker(i == 0 ? WHO : psprintf(WHO " %d", i), WHO, "sc_dispatcher_main", 5, Int32GetDatum(i));
}
