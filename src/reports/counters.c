/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  Upkeep of the per-request counters (request_counter) behind
 *	  request_summary.
 *
 * A request has 64 counter rows ("slots"); a backend writes only the slot
 * MyBackendId % 64, so up to 64 concurrent reporters never wait on one
 * another's counter row.  counts[level + 1] is how many sites stand at a
 * level; a slot may go negative, the sums over the slots are exact.
 *
 * The report path does not update the row at once: it adds the change to a
 * backend-local table of pending deltas, and a deferred constraint trigger
 * on report (report_counters, fired at commit) writes each request's net
 * change with ONE update.  The trigger's WHEN condition queues a single
 * event per transaction, however many reports it stores.  Updating the slot row once per report would, in
 * a transaction that stores many reports (a bulk load, a loop of
 * submit_report_for), build a HOT chain that no one can prune until commit
 * and that every further update must walk: quadratic time.
 *
 * Pending deltas follow the transaction: a subtransaction's deltas are
 * dropped when it aborts and handed to its parent when it commits; all are
 * dropped on abort.  With no trigger event waiting (the trigger set
 * IMMEDIATE, or disabled) a change is written at once, so the counters are
 * right whatever the trigger's state; a commit that still finds deltas
 * unwritten fails rather than leave the counters wrong.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/backendid.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "reports/report.h"

#define COUNTER_SLOTS 64
#define COUNTER_LEVELS 16

typedef struct PendingKey
{
	int64		tenant_id;
	int64		request_id;
	int			nest_level;		/* subtransaction that made the change */
} PendingKey;

typedef struct PendingDelta
{
	PendingKey	key;
	int32		responded;
	int32		counts[COUNTER_LEVELS];
} PendingDelta;

static HTAB *pending = NULL;
static MemoryContext pending_cxt = NULL;
static SPIPlanPtr flush_plan = NULL;	/* any number of levels changed */
static SPIPlanPtr flush_plan1 = NULL;	/* one level changed */
static SPIPlanPtr flush_plan2 = NULL;	/* two levels changed */

/*
 * Nesting level of the (sub)transaction whose INSERT queued a trigger
 * event that has not fired yet; 0 = none.  The trigger's WHEN condition
 * (_counters_need_flush) queues one event per transaction, not one per
 * report.
 */
static int	queued_level = 0;

/*
 * Whether this transaction has stored a report yet, and whether the report
 * being stored now counts itself in its own statement (see submit.c): the
 * first report of a transaction does, the WHEN condition then queues no
 * event.  Conservative across subtransactions: once set, later reports of
 * the transaction take the deferred path, which is always right.
 */
static bool xact_has_report = false;
static bool inline_now = false;

/* Called before storing a report: true if it should count itself. */
bool
counters_inline_begin(void)
{
	inline_now = !xact_has_report;
	xact_has_report = true;
	return inline_now;
}

void
counters_inline_end(void)
{
	inline_now = false;
}

int16
counter_slot(void)
{
	return (int16) ((MyBackendId > 0 ? MyBackendId : MyProcPid) % COUNTER_SLOTS);
}

/* A table of counter changes keyed by (tenant, request, nesting level). */
static HTAB *
delta_table_create(const char *name, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PendingKey);
	ctl.entrysize = sizeof(PendingDelta);
	ctl.hcxt = cxt;
	return hash_create(name, 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
pending_create(void)
{
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext, "status_checker pending counters",
											ALLOCSET_SMALL_SIZES);
	pending = delta_table_create("status_checker pending counters", pending_cxt);
}

static void
pending_clear(void)
{
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
	pending = NULL;
}

/* Add src's change into the entry of `key` in `table`, creating it. */
static void
delta_merge(HTAB *table, const PendingKey *key, const PendingDelta *src)
{
	PendingDelta *d;
	bool		found;
	int			i;

	d = hash_search(table, key, HASH_ENTER, &found);
	if (!found)
	{
		d->responded = 0;
		memset(d->counts, 0, sizeof(d->counts));
	}
	d->responded += src->responded;
	for (i = 0; i < COUNTER_LEVELS; i++)
		d->counts[i] += src->counts[i];
}

static void counters_flush(void);

/*
 * A site of (tenant, request) went from old_level (-1: no answer yet) to
 * new_level.  The caller is connected to SPI and has just inserted the
 * report: if that queued no trigger event (the trigger fired already,
 * being IMMEDIATE, or is disabled), the change is written at once.
 */
void
counters_add(int64 tenant_id, int64 request_id, int old_level, int new_level)
{
	PendingKey	key;
	PendingDelta *d;
	bool		found;

	if (old_level == new_level)
		return;			/* nothing to count; a waiting event still flushes the rest */
	if (new_level < 0 || new_level >= COUNTER_LEVELS || old_level >= COUNTER_LEVELS)
		elog(ERROR, "status level %d out of range", new_level);
	if (pending == NULL)
		pending_create();
	memset(&key, 0, sizeof(key));
	key.tenant_id = tenant_id;
	key.request_id = request_id;
	key.nest_level = GetCurrentTransactionNestLevel();
	d = hash_search(pending, &key, HASH_ENTER, &found);
	if (!found)
	{
		d->responded = 0;
		memset(d->counts, 0, sizeof(d->counts));
	}
	if (old_level < 0)
		d->responded++;
	else
		d->counts[old_level]--;
	d->counts[new_level]++;

	if (queued_level == 0)
		counters_flush();
}

/*
 * Prepare and keep a counter UPDATE.  nargs > 0: $1 int8, $2 int8, $3 int2,
 * then int4s; nargs < 0: the same with the last argument an int4[].
 */
static SPIPlanPtr
keep(const char *sql, int nargs)
{
	Oid			argtypes[8] = {INT8OID, INT8OID, INT2OID, INT4OID, INT4OID, INT4OID, INT4OID, INT4OID};
	SPIPlanPtr	plan;

	if (nargs < 0)
	{
		nargs = -nargs;
		argtypes[nargs - 1] = INT4ARRAYOID;
	}
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "could not prepare a counter update: %s", SPI_result_code_string(SPI_result));
	return plan;
}

/* Write every pending delta: one UPDATE per request.  Caller has SPI. */
static void
counters_flush(void)
{
	HASH_SEQ_STATUS seq;
	PendingDelta *d;
	HTAB	   *merged;

	if (pending == NULL || hash_get_num_entries(pending) == 0)
		return;

	/* sum over nesting levels: everything left here is being committed */
	merged = delta_table_create("status_checker counters to write", CurrentMemoryContext);
	hash_seq_init(&seq, pending);
	while ((d = hash_seq_search(&seq)) != NULL)
	{
		PendingKey	key = d->key;

		key.nest_level = 0;
		delta_merge(merged, &key, d);
	}
	pending_clear();

	hash_seq_init(&seq, merged);
	while ((d = hash_seq_search(&seq)) != NULL)
	{
		Datum		v[8];
		int			changed[COUNTER_LEVELS];
		int			nchanged = 0;
		int			i;
		int			rc;
		SPIPlanPtr	plan;

		for (i = 0; i < COUNTER_LEVELS; i++)
			if (d->counts[i] != 0)
				changed[nchanged++] = i;
		v[0] = Int64GetDatum(d->key.tenant_id);
		v[1] = Int64GetDatum(d->key.request_id);
		v[2] = Int16GetDatum(counter_slot());
		v[3] = Int32GetDatum(d->responded);
		if (nchanged == 0 && d->responded == 0)
			continue;
		if (nchanged <= 2)
		{
			/* the usual case: one report, one or two levels moved */
			if (nchanged == 0)
				changed[nchanged++] = 0;
			v[4] = Int32GetDatum(changed[0] + 1);
			v[5] = Int32GetDatum(d->counts[changed[0]]);
			if (nchanged == 1)
			{
				if (flush_plan1 == NULL)
					flush_plan1 = keep("UPDATE status_checker.request_counter"
									   "   SET responded = responded + $4, counts[$5] = counts[$5] + $6"
									   " WHERE tenant_id = $1 AND request_id = $2 AND slot = $3", 6);
				plan = flush_plan1;
			}
			else
			{
				v[6] = Int32GetDatum(changed[1] + 1);
				v[7] = Int32GetDatum(d->counts[changed[1]]);
				if (flush_plan2 == NULL)
					flush_plan2 = keep("UPDATE status_checker.request_counter"
									   "   SET responded = responded + $4, counts[$5] = counts[$5] + $6,"
									   "       counts[$7] = counts[$7] + $8"
									   " WHERE tenant_id = $1 AND request_id = $2 AND slot = $3", 8);
				plan = flush_plan2;
			}
		}
		else
		{
			Datum		elems[COUNTER_LEVELS];

			for (i = 0; i < COUNTER_LEVELS; i++)
				elems[i] = Int32GetDatum(d->counts[i]);
			v[4] = PointerGetDatum(construct_array(elems, COUNTER_LEVELS, INT4OID, 4, true, TYPALIGN_INT));
			if (flush_plan == NULL)
				flush_plan = keep("UPDATE status_checker.request_counter"
								  "   SET responded = responded + $4,"
								  "       counts = ARRAY(SELECT u.c + u.d FROM unnest(counts, $5) WITH ORDINALITY AS u(c, d, i)"
								  "                      ORDER BY u.i)"
								  " WHERE tenant_id = $1 AND request_id = $2 AND slot = $3", -5);
			plan = flush_plan;
		}
		rc = SPI_execute_plan(plan, v, NULL, false, 0);
		if (rc != SPI_OK_UPDATE || SPI_processed != 1)
			elog(ERROR, "could not update the counters of request " INT64_FORMAT " (slot %d): %s",
				 d->key.request_id, counter_slot(), SPI_result_code_string(rc));
	}
}

/*
 * The deferred constraint trigger report_counters (AFTER INSERT ON report,
 * INITIALLY DEFERRED, ENABLE ALWAYS): the first firing at commit writes all
 * pending deltas; the rest find nothing to do.
 */
PG_FUNCTION_INFO_V1(sc_flush_counters);
Datum
sc_flush_counters(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "_flush_counters() must be called as a trigger");
	queued_level = 0;
	if (pending != NULL && hash_get_num_entries(pending) > 0)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		counters_flush();
		SPI_finish();
	}
	return PointerGetDatum(NULL);
}

/*
 * _counters_need_flush(): the WHEN condition of report_counters.  True for
 * the first report of a (sub)transaction chain that has no trigger event
 * waiting, so that one event per transaction writes all its counters.
 */
PG_FUNCTION_INFO_V1(sc_counters_need_flush);
Datum
sc_counters_need_flush(PG_FUNCTION_ARGS)
{
	if (inline_now || queued_level != 0)
		PG_RETURN_BOOL(false);
	queued_level = GetCurrentTransactionNestLevel();
	PG_RETURN_BOOL(true);
}

static void
counters_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (pending != NULL && hash_get_num_entries(pending) > 0)
				ereport(ERROR,
						(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
						 errmsg("report counters were not written"),
						 errdetail("The deferred trigger report_counters on status_checker.report did not run."),
						 errhint("Do not disable that trigger.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			pending_clear();
			queued_level = 0;
			xact_has_report = false;
			inline_now = false;
			break;
		default:
			break;
	}
}

static void
counters_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS seq;
	PendingDelta *d;
	List	   *mine = NIL;
	ListCell   *lc;
	int			level = GetCurrentTransactionNestLevel();

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;

	/* a trigger event queued in this subtransaction dies or moves up with it */
	if (queued_level >= level)
		queued_level = (event == SUBXACT_EVENT_ABORT_SUB) ? 0 : level - 1;

	if (pending == NULL)
		return;

	/* collect first: the table must not grow during a scan */
	hash_seq_init(&seq, pending);
	while ((d = hash_seq_search(&seq)) != NULL)
	{
		if (d->key.nest_level >= level)
		{
			PendingDelta *copy = MemoryContextAlloc(pending_cxt, sizeof(PendingDelta));

			memcpy(copy, d, sizeof(PendingDelta));
			mine = lappend(mine, copy);
		}
	}
	foreach(lc, mine)
	{
		PendingDelta *c = lfirst(lc);

		hash_search(pending, &c->key, HASH_REMOVE, NULL);
		if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			PendingKey	key = c->key;

			key.nest_level = level - 1;
			delta_merge(pending, &key, c);
		}
	}
}

/*
 * _pending_counts(tenant_id, request_id): this backend's not yet written
 * change to a request's counters, as int[17] (responded, then counts of
 * levels 0..15), or NULL.  request_summary adds it, so a transaction sees
 * its own reports.
 */
PG_FUNCTION_INFO_V1(sc_pending_counts);
Datum
sc_pending_counts(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(0);
	int64		request_id = PG_GETARG_INT64(1);
	HASH_SEQ_STATUS seq;
	PendingDelta *d;
	Datum		elems[COUNTER_LEVELS + 1];
	int32		sum[COUNTER_LEVELS + 1];
	bool		any = false;
	int			i;

	if (pending == NULL || hash_get_num_entries(pending) == 0)
		PG_RETURN_NULL();
	memset(sum, 0, sizeof(sum));
	hash_seq_init(&seq, pending);
	while ((d = hash_seq_search(&seq)) != NULL)
	{
		if (d->key.tenant_id != tenant_id || d->key.request_id != request_id)
			continue;
		any = true;
		sum[0] += d->responded;
		for (i = 0; i < COUNTER_LEVELS; i++)
			sum[i + 1] += d->counts[i];
	}
	if (!any)
		PG_RETURN_NULL();
	for (i = 0; i <= COUNTER_LEVELS; i++)
		elems[i] = Int32GetDatum(sum[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, COUNTER_LEVELS + 1, INT4OID, 4, true, TYPALIGN_INT));
}

void
counters_init(void)
{
	RegisterXactCallback(counters_xact_callback, NULL);
	RegisterSubXactCallback(counters_subxact_callback, NULL);
}
