/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *	  Who the HTTP worker's client is, and whether it may try again: client
 *	  addresses (behind trusted proxies, from X-Forwarded-For), the
 *	  per-address limit on wrong report links and passwords in shared
 *	  memory, and the workers' counters (http_counters()).
 *
 * The shared memory is requested and attached by http.c's hooks
 * (web_rate_shmem_size, web_rate_shmem_init).  The server loop, the apps
 * and connections.c call these; these call nothing else of the web layer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "web/web.h"

#define WHO "status_checker http"

char	   *sc_http_trusted_proxies = NULL;
int			sc_http_token_failures = 30;
int			sc_http_block_time = 60;	/* seconds */
int			sc_http_block_max = 3600;	/* seconds */

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
static uint8 *trusted = NULL;	/* 16 bytes per trusted proxy address */
static int	ntrusted = 0;

/* the shared memory the limiter and the counters take */
Size
web_rate_shmem_size(void)
{
	return MAXALIGN(sizeof(HttpShared));
}

/* attach (or first set up) the limiter and the counters; under AddinShmemInitLock */
void
web_rate_shmem_init(void)
{
	bool		found;

	hshared = ShmemInitStruct("status_checker http", sizeof(HttpShared), &found);
	if (!found)
	{
		memset(hshared, 0, sizeof(HttpShared));
		SpinLockInit(&hshared->mutex);
		pg_atomic_init_u64(&hshared->requests, 0);
		pg_atomic_init_u64(&hshared->reports, 0);
		pg_atomic_init_u64(&hshared->limited, 0);
	}
}

/* a request answered, a report stored (http_counters) */
void
web_count_request(void)
{
	pg_atomic_fetch_add_u64(&hshared->requests, 1);
}

void
web_count_report(void)
{
	pg_atomic_fetch_add_u64(&hshared->reports, 1);
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

/* --------------------------------------------------------------- the client */

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

/* status_checker.http_trusted_proxies, read again after a reload */
void
web_load_trusted_proxies(void)
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
