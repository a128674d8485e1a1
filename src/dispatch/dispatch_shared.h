/*-------------------------------------------------------------------------
 *
 * dispatch_shared.h
 *	  The dispatcher's shared memory (dispatch_shared.c), as its workers
 *	  (dispatcher.c) see it: one slot per worker, and the channels' rate
 *	  buckets.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_DISPATCH_SHARED_H
#define STATUS_CHECKER_DISPATCH_SHARED_H

#include "port/atomics.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

/* one dispatcher worker's */
typedef struct DispatchSlot
{
	Latch	   *latch;			/* the running worker's, or NULL */
	int			pid;
	TimestampTz started_at;
	pg_atomic_uint64 heartbeat; /* TimestampTz of the last loop */
	pg_atomic_uint64 in_flight;
	pg_atomic_uint64 waiting;	/* claimed, held back by the rate limit */
	pg_atomic_uint64 sent;
	pg_atomic_uint64 retried;
	pg_atomic_uint64 dead;
	pg_atomic_uint64 claimed;
} DispatchSlot;

/* the slots (status_checker.dispatch_workers of them); 0 when the library was not preloaded */
extern int	dispatch_nslots(void);
/* worker n's slot, or NULL when there is none */
extern DispatchSlot *dispatch_slot(int n);
/* may a message of this channel start now (status_checker.dispatch_rate_limit)? */
extern bool dispatch_rate_allows(int64 channel_id, TimestampTz now, long *wait_ms);

#endif
