/*-------------------------------------------------------------------------
 *
 * dispatch_shared.c
 *	  The backend side of the dispatcher: its shared memory (a slot per
 *	  worker, a token bucket per channel), the wake-up of the workers when
 *	  a transaction that enqueued messages commits (_outbox_wake,
 *	  _wake_dispatcher), and the SQL-callable status functions
 *	  (dispatcher_status, dispatcher_workers).
 *
 * These run in any backend; the workers themselves (dispatcher.c) write
 * their slot and take tokens from the buckets (dispatch_shared.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "dispatch/dispatch.h"
#include "dispatch/dispatch_shared.h"

/* ------------------------------------------------------ shared memory */

/*
 * A token bucket per channel (status_checker.dispatch_rate_limit), shared
 * by the workers so that together they keep the limit, whichever of them
 * claimed a channel's messages.  A fixed table: when it is full, the
 * bucket refilled longest ago (a channel idle for a while: full anyway) is
 * given to the new channel.
 */
#define SHARED_BUCKETS 256

typedef struct Bucket
{
	int64		channel_id;		/* 0: free */
	double		tokens;
	TimestampTz refilled;
} Bucket;

typedef struct DispatchShared
{
	slock_t		bucket_lock;
	Bucket		buckets[SHARED_BUCKETS];
	int			nslots;			/* status_checker.dispatch_workers */
	DispatchSlot slot[FLEXIBLE_ARRAY_MEMBER];
} DispatchShared;

static DispatchShared *dshared = NULL;

static Size
dispatch_shmem_size(void)
{
	return add_size(offsetof(DispatchShared, slot),
					mul_size(sizeof(DispatchSlot), Max(sc_dispatch_workers, 1)));
}

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
dispatch_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(dispatch_shmem_size()));
}

static void
dispatch_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	dshared = ShmemInitStruct("status_checker dispatcher", dispatch_shmem_size(), &found);
	if (!found)
	{
		memset(dshared, 0, dispatch_shmem_size());
		SpinLockInit(&dshared->bucket_lock);
		dshared->nslots = Max(sc_dispatch_workers, 1);
		for (int i = 0; i < dshared->nslots; i++)
		{
			DispatchSlot *sl = &dshared->slot[i];

			pg_atomic_init_u64(&sl->heartbeat, 0);
			pg_atomic_init_u64(&sl->in_flight, 0);
			pg_atomic_init_u64(&sl->waiting, 0);
			pg_atomic_init_u64(&sl->sent, 0);
			pg_atomic_init_u64(&sl->retried, 0);
			pg_atomic_init_u64(&sl->dead, 0);
			pg_atomic_init_u64(&sl->claimed, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* called from _PG_init under shared_preload_libraries */
void
sc_dispatch_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = dispatch_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = dispatch_shmem_startup;
}

/* ------------------------------------------------------ wake at commit */

static bool wake_pending = false;
static bool xact_callback_registered = false;

static void
dispatch_xact_callback(XactEvent event, void *arg)
{
	if (!wake_pending)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			wake_pending = false;
			if (dshared != NULL)
			{
				/* every worker: each claims what the others leave */
				for (int i = 0; i < dshared->nslots; i++)
				{
					Latch	   *latch = dshared->slot[i].latch;

					if (latch != NULL)
						SetLatch(latch);
				}
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's messages wait for the next retry scan */
			wake_pending = false;
			break;
		default:
			break;
	}
}

static void
wake_at_commit(void)
{
	if (dshared == NULL)
		return;					/* not preloaded: there is no dispatcher */
	if (!xact_callback_registered)
	{
		RegisterXactCallback(dispatch_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_pending = true;
}

/* _outbox_wake(): statement trigger on the outbox */
PG_FUNCTION_INFO_V1(sc_outbox_wake);
Datum
sc_outbox_wake(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_outbox_wake() is a trigger function")));
	wake_at_commit();
	return PointerGetDatum(NULL);
}

/* _wake_dispatcher(): wake the dispatcher when this transaction commits */
PG_FUNCTION_INFO_V1(sc_wake_dispatcher);
Datum
sc_wake_dispatcher(PG_FUNCTION_ARGS)
{
	wake_at_commit();
	PG_RETURN_VOID();
}

/*
 * dispatcher_status(): the workers in one row (running: any; pid: the
 * first running one's; the earliest start; the oldest heartbeat, so that a
 * stuck worker shows; counters summed)
 */
PG_FUNCTION_INFO_V1(sc_dispatcher_status);
Datum
sc_dispatcher_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[9];
	bool		nulls[9] = {0};
	bool		running = false;
	TimestampTz started = 0,
				heartbeat = 0;
	int			pid = 0;
	uint64		sums[5] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	if (dshared == NULL)
	{
		for (int i = 0; i < 9; i++)
			nulls[i] = true;
		values[0] = BoolGetDatum(false);
		nulls[0] = false;
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}
	for (int i = 0; i < dshared->nslots; i++)
	{
		DispatchSlot *sl = &dshared->slot[i];
		TimestampTz hb = (TimestampTz) pg_atomic_read_u64(&sl->heartbeat);

		if (sl->latch != NULL)
		{
			if (!running)
				pid = sl->pid;
			running = true;
			if (hb != 0 && (heartbeat == 0 || hb < heartbeat))
				heartbeat = hb;
		}
		if (sl->started_at != 0 && (started == 0 || sl->started_at < started))
			started = sl->started_at;
		sums[0] += pg_atomic_read_u64(&sl->in_flight);
		sums[1] += pg_atomic_read_u64(&sl->waiting);
		sums[2] += pg_atomic_read_u64(&sl->sent);
		sums[3] += pg_atomic_read_u64(&sl->retried);
		sums[4] += pg_atomic_read_u64(&sl->dead);
	}
	if (heartbeat == 0)			/* none runs: the last one seen */
		for (int i = 0; i < dshared->nslots; i++)
			heartbeat = Max(heartbeat, (TimestampTz) pg_atomic_read_u64(&dshared->slot[i].heartbeat));
	values[0] = BoolGetDatum(running);
	values[1] = Int32GetDatum(pid);
	nulls[1] = !running;
	values[2] = TimestampTzGetDatum(started);
	nulls[2] = started == 0;
	values[3] = TimestampTzGetDatum(heartbeat);
	nulls[3] = heartbeat == 0;
	for (int i = 0; i < 5; i++)
		values[4 + i] = Int64GetDatum((int64) sums[i]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* dispatcher_workers(): one row per worker */
PG_FUNCTION_INFO_V1(sc_dispatcher_workers);
Datum
sc_dispatcher_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (dshared == NULL)
		return (Datum) 0;
	for (int i = 0; i < dshared->nslots; i++)
	{
		DispatchSlot *sl = &dshared->slot[i];
		Datum		values[10];
		bool		nulls[10] = {0};
		bool		running = sl->latch != NULL;
		TimestampTz hb = (TimestampTz) pg_atomic_read_u64(&sl->heartbeat);

		values[0] = Int32GetDatum(i);
		values[1] = BoolGetDatum(running);
		values[2] = Int32GetDatum(sl->pid);
		nulls[2] = !running;
		values[3] = TimestampTzGetDatum(sl->started_at);
		nulls[3] = sl->started_at == 0;
		values[4] = TimestampTzGetDatum(hb);
		nulls[4] = hb == 0;
		values[5] = Int64GetDatum((int64) pg_atomic_read_u64(&sl->in_flight));
		values[6] = Int64GetDatum((int64) pg_atomic_read_u64(&sl->waiting));
		values[7] = Int64GetDatum((int64) pg_atomic_read_u64(&sl->sent));
		values[8] = Int64GetDatum((int64) pg_atomic_read_u64(&sl->retried));
		values[9] = Int64GetDatum((int64) pg_atomic_read_u64(&sl->dead));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------ for the workers */

int
dispatch_nslots(void)
{
	return dshared ? dshared->nslots : 0;
}

DispatchSlot *
dispatch_slot(int n)
{
	if (dshared == NULL || n < 0 || n >= dshared->nslots)
		return NULL;
	return &dshared->slot[n];
}

/*
 * May a message of this channel start now?  Takes a token from the
 * channel's shared bucket if so; else lowers *wait_ms to when one will be
 * there.  The bucket holds at most a second's worth.
 */
bool
dispatch_rate_allows(int64 channel_id, TimestampTz now, long *wait_ms)
{
	double		rate = sc_dispatch_rate_limit;
	Bucket	   *b = NULL;
	bool		allowed;

	if (rate <= 0)
		return true;
	SpinLockAcquire(&dshared->bucket_lock);
	for (int i = 0; i < SHARED_BUCKETS && b == NULL; i++)
		if (dshared->buckets[i].channel_id == channel_id)
			b = &dshared->buckets[i];
	if (b == NULL)
	{
		/* a free bucket, else the one refilled longest ago */
		b = &dshared->buckets[0];
		for (int i = 0; i < SHARED_BUCKETS && b->channel_id != 0; i++)
			if (dshared->buckets[i].channel_id == 0 ||
				dshared->buckets[i].refilled < b->refilled)
				b = &dshared->buckets[i];
		b->channel_id = channel_id;
		b->tokens = rate;
		b->refilled = now;
	}
	if (now > b->refilled)
	{
		b->tokens = Min(rate, b->tokens + rate * (double) (now - b->refilled) / 1000000.0);
		b->refilled = now;
	}
	allowed = b->tokens >= 1.0;
	if (allowed)
		b->tokens -= 1.0;
	else
		*wait_ms = Min(*wait_ms, (long) ((1.0 - b->tokens) * 1000.0 / rate) + 1);
	SpinLockRelease(&dshared->bucket_lock);
	return allowed;
}
