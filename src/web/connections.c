/*-------------------------------------------------------------------------
 *
 * connections.c
 *	  The HTTP worker against slow clients: how many connections one
 *	  client address may hold, and how long a request may take to arrive.
 *
 * Connections per address.  Every worker counts the connections it holds
 * in one table in shared memory, keyed by the client's address (an IPv6
 * client by its /64, web_addr_key); past
 * status_checker.http_max_connections_per_address, libmicrohttpd's accept
 * policy refuses the connection (closed at once, before it is read).  A
 * trusted proxy (status_checker.http_trusted_proxies) is exempt: all its
 * clients come from its address, and it keeps connections open to reuse.
 * The connection is counted when it is accepted and released when
 * libmicrohttpd reports it closed; one that is accepted but never started
 * (libmicrohttpd failed to set it up) is released at the next accept or
 * the next turn of the loop, and all of a worker's connections when the
 * worker exits.
 *
 * Deadlines.  libmicrohttpd's own timeout (30 s) is reset by each byte
 * that arrives, so a client that trickles its headers a byte at a time
 * holds its connection for ever.  Here every connection has an absolute
 * deadline instead, not moved by what arrives: its first request's
 * headers within status_checker.http_header_timeout of the accept, each
 * request's body within 30 s of its headers, and the next request on a
 * kept-alive connection within 30 s of the last answer.  A connection
 * past its deadline is shut down (as MHD_stop_daemon does); libmicrohttpd
 * then sees it end and closes it.  No deadline runs while a request is
 * being answered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "lib/ilist.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "web/web.h"

#define WHO "status_checker http"

int			sc_http_max_connections_per_address = 50;
int			sc_http_header_timeout = 10;	/* seconds */

/* one address's connections, all workers together */
typedef struct AddressCount
{
	uint8		key[16];		/* web_addr_key */
	int32		connections;
	bool		logged;			/* its refusal is in the log */
} AddressCount;

/* a connection of this worker (libmicrohttpd's socket context) */
typedef struct HttpConn
{
	dlist_node	node;
	bool		counted;		/* in its address's count */
	uint8		key[16];
	int			fd;
	TimestampTz deadline;		/* its request must be in by then; 0: none */
} HttpConn;

static HTAB *counts = NULL;
static LWLock *counts_lock = NULL;

static dlist_head conns = DLIST_STATIC_INIT(conns);
static TimestampTz next_deadline = 0;	/* the earliest deadline, or 0 */

/* what the accept policy did for the connection libmicrohttpd sets up next */
static bool pending = false;
static bool pending_counted = false;
static uint8 pending_key[16];

static int
max_counted(void)
{
	/* each worker holds at most HTTP_MAX_CONNECTIONS, and one accepted that has not started */
	return sc_http_workers * (HTTP_MAX_CONNECTIONS + 1);
}

Size
web_connections_shmem_size(void)
{
	return hash_estimate_size(max_counted(), sizeof(AddressCount));
}

void
web_connections_shmem_request(void)
{
	RequestNamedLWLockTranche(WHO " connections", 1);
}

/* under AddinShmemInitLock */
void
web_connections_shmem_init(void)
{
	HASHCTL		info;

	memset(&info, 0, sizeof(info));
	info.keysize = 16;
	info.entrysize = sizeof(AddressCount);
	counts = ShmemInitHash(WHO " connections", max_counted(), max_counted(), &info,
						   HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	counts_lock = &(GetNamedLWLockTranche(WHO " connections"))->lock;
}

/* one more connection for the address, unless it has its share */
static bool
count_connection(const uint8 *key)
{
	AddressCount *a;
	bool		found;
	bool		log = false;
	bool		taken = false;
	int			limit = sc_http_max_connections_per_address;

	LWLockAcquire(counts_lock, LW_EXCLUSIVE);
	a = hash_search(counts, key, HASH_ENTER_NULL, &found);
	if (a != NULL)
	{
		if (!found)
		{
			a->connections = 0;
			a->logged = false;
		}
		if (a->connections < limit)
		{
			a->connections++;
			taken = true;
		}
		else if (!a->logged)
			log = a->logged = true;
	}
	LWLockRelease(counts_lock);
	if (log)
	{
		char		text[WEB_ADDR_TEXT_LEN];

		ereport(LOG,
				(errmsg(WHO ": %s has %d connections open, the most one address may have; refusing more",
						web_addr_text(key, text), limit),
				 errhint("status_checker.http_max_connections_per_address sets the limit; a proxy's address "
						 "belongs in status_checker.http_trusted_proxies.")));
	}
	return taken;
}

static void
release_connection(const uint8 *key)
{
	AddressCount *a;

	LWLockAcquire(counts_lock, LW_EXCLUSIVE);
	a = hash_search(counts, key, HASH_FIND, NULL);
	if (a != NULL && --a->connections <= 0)
		hash_search(counts, key, HASH_REMOVE, NULL);
	LWLockRelease(counts_lock);
}

/* a connection the accept policy counted and libmicrohttpd never started */
static void
release_pending(void)
{
	if (pending && pending_counted)
		release_connection(pending_key);
	pending = false;
}

/* libmicrohttpd's accept policy: MHD_NO closes the connection at once */
enum MHD_Result
web_accept_policy(void *cls, const struct sockaddr *sa, socklen_t len)
{
	uint8		addr[16];

	release_pending();
	web_addr_of(sa, addr);
	pending = true;
	pending_counted = false;
	if (web_trusted_proxy(addr) || sc_http_max_connections_per_address == 0)
		return MHD_YES;
	web_addr_key(addr, pending_key);
	if (!count_connection(pending_key))
	{
		pending = false;
		return MHD_NO;
	}
	pending_counted = true;
	return MHD_YES;
}

static void
set_deadline(HttpConn *c, TimestampTz deadline)
{
	c->deadline = deadline;
	if (deadline != 0 && (next_deadline == 0 || deadline < next_deadline))
		next_deadline = deadline;
}

/* libmicrohttpd's notice of a connection started or closed */
void
web_connection_notice(void *cls, struct MHD_Connection *conn, void **socket_context,
					  enum MHD_ConnectionNotificationCode code)
{
	HttpConn   *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
	{
		const union MHD_ConnectionInfo *fd = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		/* no error may leave a libmicrohttpd callback: without memory, the connection goes unwatched */
		c = MemoryContextAllocExtended(TopMemoryContext, sizeof(HttpConn), MCXT_ALLOC_NO_OOM | MCXT_ALLOC_ZERO);
		if (c == NULL || fd == NULL)
		{
			if (c)
				pfree(c);
			release_pending();
			return;
		}
		c->counted = pending && pending_counted;
		memcpy(c->key, pending_key, 16);
		pending = false;
		c->fd = fd->connect_fd;
		set_deadline(c, GetCurrentTimestamp() + (TimestampTz) sc_http_header_timeout * USECS_PER_SEC);
		dlist_push_tail(&conns, &c->node);
		*socket_context = c;
	}
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED && c != NULL)
	{
		if (c->counted)
			release_connection(c->key);
		dlist_delete(&c->node);
		pfree(c);
		*socket_context = NULL;
	}
}

/*
 * Where a connection's request stands: its headers are in (the body, if
 * any, is due within 30 s), it is being answered (no deadline), or it was
 * answered (the next request is due within 30 s).
 */
void
web_connection_stage(struct MHD_Connection *conn, WebStage stage)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	HttpConn   *c = info ? info->socket_context : NULL;

	if (c == NULL)
		return;
	if (stage == WEB_STAGE_ANSWERING)
		set_deadline(c, 0);
	else
		set_deadline(c, GetCurrentTimestamp() + (TimestampTz) HTTP_IDLE_TIMEOUT * USECS_PER_SEC);
}

/*
 * Shut down the connections past their deadline; the milliseconds until
 * the next deadline (at most `timeout`).
 */
long
web_connection_deadlines(long timeout)
{
	TimestampTz now = GetCurrentTimestamp();
	dlist_iter	it;
	long		wait;

	release_pending();
	if (next_deadline != 0 && now >= next_deadline)
	{
		next_deadline = 0;
		dlist_foreach(it, &conns)
		{
			HttpConn   *c = dlist_container(HttpConn, node, it.cur);

			if (c->deadline != 0 && c->deadline <= now)
			{
				(void) shutdown(c->fd, SHUT_RDWR);
				c->deadline = 0;
			}
			else if (c->deadline != 0)
				set_deadline(c, c->deadline);
		}
	}
	if (next_deadline == 0)
		return timeout;
	wait = (long) ((next_deadline - now) / 1000) + 1;
	return Min(wait, timeout);
}

/* at the worker's exit: its connections no longer count */
static void
release_all(int code, Datum arg)
{
	dlist_mutable_iter it;

	release_pending();
	dlist_foreach_modify(it, &conns)
	{
		HttpConn   *c = dlist_container(HttpConn, node, it.cur);

		if (c->counted)
			release_connection(c->key);
		c->counted = false;
	}
}

void
web_connections_start(void)
{
	before_shmem_exit(release_all, (Datum) 0);
}
