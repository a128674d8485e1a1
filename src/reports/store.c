/*-------------------------------------------------------------------------
 *
 * store.c
 *	  Writing a report through the table access method: the status row,
 *	  the report row and the counter slot, without a planned statement.
 *
 * In the disaster burst, a report's own work (a heap update, a heap
 * insert, a few index entries) was a quarter of its write statement's
 * cost; the rest was starting and ending the executor for a plan of a
 * dozen nodes (docs/benchmarks.md).  This file does the three writes the
 * way logical replication's apply worker does its changes: an EState with
 * one ResultRelInfo per table, table_tuple_update/ExecSimpleRelationInsert,
 * index entries through ExecInsertIndexTuples, and the AFTER triggers of
 * report (report_counters) queued as usual.
 *
 * What the statement did and this code keeps:
 *	- the target row is updated in the version the caller read; if another
 *	  transaction updated it first, READ COMMITTED locks the newest version
 *	  and re-checks it (token still the same, idempotency key not already
 *	  used), as EvalPlanQual did; REPEATABLE READ and SERIALIZABLE raise a
 *	  serialization failure, as the executor does;
 *	- the request must still be open, seen with the statement's snapshot;
 *	- the level the report replaces is read from the row version it
 *	  replaces, so the counters stay exact;
 *	- constraints and index entries as for any INSERT or UPDATE, and the
 *	  report table's row triggers (BEFORE and AFTER).
 *
 * This path is taken only where it cannot differ from the statement: the
 * current user may write the three tables and row-level security does not
 * apply to them (submit_report runs as the extension's owner), and
 * request_target and request_counter have no triggers but those of their
 * foreign keys (which these writes never need: no key column changes).
 * Otherwise (submit_report_for, which runs as status_checker_api under
 * row-level security, or tables that someone gave triggers) report_write
 * returns REPORT_WRITE_UNSUPPORTED and the planned statement writes, with
 * every check and trigger as before.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "reports/report.h"
#include "requests/token.h"

/* one table written here */
typedef struct WriteRel
{
	Relation	rel;
	ResultRelInfo *rri;
	TupleTableSlot *slot;		/* a version read from the table */
	TupleTableSlot *newslot;	/* the version to write */
} WriteRel;

static Oid
relation_oid(Oid nsp, const char *name)
{
	Oid			oid = get_relname_relid(name, nsp);

	if (!OidIsValid(oid))
		elog(ERROR, "relation status_checker.%s does not exist", name);
	return oid;
}

/* attribute number of a column, or error */
static AttrNumber
att(Relation rel, const char *name)
{
	AttrNumber	n = attnameAttNum(rel, name, false);

	if (n <= 0)
		elog(ERROR, "column \"%s\" of %s does not exist", name, RelationGetRelationName(rel));
	return n;
}

static Datum
get(TupleTableSlot *slot, AttrNumber n, bool *isnull)
{
	return slot_getattr(slot, n, isnull);
}

/* a copy of slot's values in newslot (virtual), to be changed and written */
static void
copy_for_update(WriteRel *w)
{
	int			natts = w->slot->tts_tupleDescriptor->natts;

	ExecClearTuple(w->newslot);
	slot_getallattrs(w->slot);
	memcpy(w->newslot->tts_values, w->slot->tts_values, natts * sizeof(Datum));
	memcpy(w->newslot->tts_isnull, w->slot->tts_isnull, natts * sizeof(bool));
}

static void
set(WriteRel *w, AttrNumber n, Datum value, bool isnull)
{
	w->newslot->tts_values[n - 1] = value;
	w->newslot->tts_isnull[n - 1] = isnull;
}

/*
 * Read the row of `rel` whose key in index `indexoid` is `keys` (int8
 * columns but the last, compared with `last_eq`) with `snapshot` into
 * `slot`.
 */
static bool
fetch_row(Relation rel, Oid indexoid, Snapshot snapshot, TupleTableSlot *slot,
		  Datum *keys, int nkeys, RegProcedure last_eq)
{
	Relation	index = index_open(indexoid, AccessShareLock);
	IndexScanDesc scan;
	ScanKeyData skey[3];
	bool		found;

	for (int i = 0; i < nkeys; i++)
		ScanKeyInit(&skey[i], i + 1, BTEqualStrategyNumber,
					i == nkeys - 1 ? last_eq : F_INT8EQ, keys[i]);
	scan = index_beginscan(rel, index, snapshot, nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(index, NoLock);
	return found;
}

static bool
fetch_by_pkey(Relation rel, Snapshot snapshot, TupleTableSlot *slot, Datum *keys, int nkeys,
			  RegProcedure last_eq)
{
	return fetch_row(rel, RelationGetPrimaryKeyIndex(rel), snapshot, slot, keys, nkeys, last_eq);
}

/*
 * Update the row version in w->slot to w->newslot (built by `build` from
 * w->slot).  If another transaction updated the row first: under READ
 * COMMITTED lock its newest version, rebuild and try again (`build` returns
 * false when the newest version no longer qualifies: then false here);
 * under REPEATABLE READ or SERIALIZABLE a serialization failure, as for an
 * UPDATE statement.
 */
static bool
update_row(WriteRel *w, EState *estate, bool (*build) (WriteRel *, void *), void *arg)
{
	ItemPointerData tid = w->slot->tts_tid;

	if (!build(w, arg))
		return false;
	for (;;)
	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		bool		update_indexes;
		TM_Result	res;

		ExecStoreVirtualTuple(w->newslot);
		if (w->rel->rd_att->constr)
			ExecConstraints(w->rri, w->newslot, estate);
		res = table_tuple_update(w->rel, &tid, w->newslot, estate->es_output_cid,
								 estate->es_snapshot, InvalidSnapshot, true,
								 &tmfd, &lockmode, &update_indexes);
		if (res == TM_Ok)
		{
			if (update_indexes && w->rri->ri_NumIndices > 0)
				list_free(ExecInsertIndexTuples(w->rri, w->newslot, estate, true, false, NULL, NIL));
			return true;
		}
		if (res == TM_Deleted && !IsolationUsesXactSnapshot())
			return false;
		if (res != TM_Updated && res != TM_Deleted)
			elog(ERROR, "unexpected result %d updating a row of %s", (int) res,
				 RelationGetRelationName(w->rel));
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));
		res = table_tuple_lock(w->rel, &tid, estate->es_snapshot, w->slot, estate->es_output_cid,
							   lockmode, LockWaitBlock, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		if (res == TM_Deleted)
			return false;
		if (res != TM_Ok)
			elog(ERROR, "unexpected result %d locking a row of %s", (int) res,
				 RelationGetRelationName(w->rel));
		tid = w->slot->tts_tid;
		if (!build(w, arg))
			return false;
	}
}

/* ---------------------------------------------------------------- target */

typedef struct TargetBuild
{
	ReportWrite *rw;
	AttrNumber	a_token_hash,
				a_submit_key,
				a_level,
				a_prev_level,
				a_color,
				a_icon,
				a_latest,
				a_first,
				a_last,
				a_count;
} TargetBuild;

static bool
build_target(WriteRel *w, void *arg)
{
	TargetBuild *b = arg;
	ReportWrite *rw = b->rw;
	bool		isnull;
	Datum		d;

	/* the newest version must still carry the token... */
	if (rw->token_hash != NULL)
	{
		bytea	   *h;

		d = get(w->slot, b->a_token_hash, &isnull);
		if (isnull)
			return false;
		h = DatumGetByteaPP(d);
		if (VARSIZE_ANY_EXHDR(h) != TOKEN_HASH_BYTES ||
			memcmp(VARDATA_ANY(h), rw->token_hash, TOKEN_HASH_BYTES) != 0)
			return false;
	}
	/* ...and not be this very submission already (a replay) */
	if (rw->idem != NULL)
	{
		d = get(w->slot, b->a_submit_key, &isnull);
		if (!isnull)
		{
			text	   *k = DatumGetTextPP(d);

			if (VARSIZE_ANY_EXHDR(k) == VARSIZE_ANY_EXHDR(rw->idem) &&
				memcmp(VARDATA_ANY(k), VARDATA_ANY(rw->idem), VARSIZE_ANY_EXHDR(k)) == 0)
				return false;
		}
	}

	copy_for_update(w);
	d = get(w->slot, b->a_level, &isnull);
	rw->had_level = !isnull;
	rw->old_level = isnull ? 0 : DatumGetInt32(d);
	set(w, b->a_prev_level, d, isnull);
	set(w, b->a_level, Int32GetDatum(rw->level), false);
	set(w, b->a_color, rw->color ? CStringGetTextDatum(rw->color) : (Datum) 0, rw->color == NULL);
	set(w, b->a_icon, rw->icon ? CStringGetTextDatum(rw->icon) : (Datum) 0, rw->icon == NULL);
	set(w, b->a_latest, Int64GetDatum(rw->report_id), false);
	get(w->slot, b->a_first, &isnull);
	if (isnull)
		set(w, b->a_first, TimestampTzGetDatum(rw->now), false);
	set(w, b->a_last, TimestampTzGetDatum(rw->now), false);
	d = get(w->slot, b->a_count, &isnull);
	set(w, b->a_count, Int32GetDatum(DatumGetInt32(d) + 1), false);
	if (rw->idem != NULL)
		set(w, b->a_submit_key, PointerGetDatum(rw->idem), false);
	return true;
}

/* --------------------------------------------------------------- counter */

static bool
build_counter(WriteRel *w, void *arg)
{
	ReportWrite *rw = arg;
	AttrNumber	a_responded = att(w->rel, "responded");
	AttrNumber	a_counts = att(w->rel, "counts");
	bool		isnull;
	Datum		counts;
	int			i;

	copy_for_update(w);
	if (!rw->had_level)
		set(w, a_responded, Int32GetDatum(DatumGetInt32(get(w->slot, a_responded, &isnull)) + 1), false);
	counts = get(w->slot, a_counts, &isnull);
	/* counts[level + 1] += 1, and counts[old level + 1] -= 1: as the SQL did */
	for (int pass = 0; pass < 2; pass++)
	{
		int			delta = pass == 0 ? 1 : -1;
		Datum		elem;
		bool		elemnull;

		if (pass == 1 && !rw->had_level)
			break;
		i = (pass == 0 ? rw->level : rw->old_level) + 1;
		elem = array_get_element(counts, 1, &i, -1, sizeof(int32), true, TYPALIGN_INT, &elemnull);
		/* NULL + 1 is NULL, as in SQL */
		counts = array_set_element(counts, 1, &i,
								   elemnull ? (Datum) 0 : Int32GetDatum(DatumGetInt32(elem) + delta),
								   elemnull, -1, sizeof(int32), true, TYPALIGN_INT);
	}
	set(w, a_counts, counts, false);
	return true;
}

/* ------------------------------------------------------------ the writes */

/* `rel` (open) as result relation `rti` of `estate` */
static void
init_write_rel(WriteRel *w, Relation rel, Index rti, EState *estate)
{
	w->rel = rel;
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, rti, NULL, 0);
	ExecOpenIndices(w->rri, false);
	estate->es_opened_result_relations = lappend(estate->es_opened_result_relations, w->rri);
	w->slot = table_slot_create(w->rel, &estate->es_tupleTable);
	w->newslot = ExecInitExtraTupleSlot(estate, RelationGetDescr(w->rel), &TTSOpsVirtual);
}

static RangeTblEntry *
rte_for(Oid oid)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = oid;
	rte->relkind = RELKIND_RELATION;
	rte->rellockmode = RowExclusiveLock;
	return rte;
}

/*
 * May this table be written here?  A plain table, whose only triggers are
 * those of foreign keys (the writes here never change a key column, so the
 * executor would skip those triggers too), that the current user may
 * write (`mode`) without row-level security applying to them.  Otherwise
 * the planned statement writes, and checks, exactly as it always did.
 * `rel` is open and locked already: any DDL committed before is seen.
 */
static bool
direct_ok(Relation rel, AclMode mode, bool any_triggers)
{
	Oid			oid = RelationGetRelid(rel);
	TriggerDesc *td = rel->trigdesc;
	bool		ok = rel->rd_rel->relkind == RELKIND_RELATION &&
		pg_class_aclcheck(oid, GetUserId(), mode) == ACLCHECK_OK &&
		check_enable_rls(oid, InvalidOid, true) != RLS_ENABLED;

	for (int i = 0; ok && !any_triggers && td != NULL && i < td->numtriggers; i++)
		ok = RI_FKey_trigger_type(td->triggers[i].tgfoid) != RI_TRIGGER_NONE;
	return ok;
}

ReportWriteResult
report_write(ReportWrite *rw)
{
	Oid			nsp = get_namespace_oid("status_checker", false);
	Oid			target_oid = relation_oid(nsp, "request_target");
	Oid			report_oid = relation_oid(nsp, "report");
	Oid			counter_oid = relation_oid(nsp, "request_counter");
	Oid			request_oid = relation_oid(nsp, "request");
	EState	   *estate;
	WriteRel	target,
				report,
				counter;
	Relation	target_rel,
				report_rel,
				counter_rel,
				request;
	TupleTableSlot *reqslot;
	Datum		keys[3];
	bool		isnull;
	bool		open;
	TimestampTz deadline;
	TargetBuild tb;
	ReportWriteResult result = REPORT_WRITE_LOST_RACE;

	/* as the statement would: 25006 in a read-only transaction (a standby) */
	PreventCommandIfReadOnly("submit_report()");

	target_rel = table_open(target_oid, RowExclusiveLock);
	report_rel = table_open(report_oid, RowExclusiveLock);
	counter_rel = table_open(counter_oid, RowExclusiveLock);
	request = table_open(request_oid, AccessShareLock);
	/* the report table's row triggers fire here (ExecSimpleRelationInsert) */
	if (!direct_ok(target_rel, ACL_SELECT | ACL_UPDATE, false) ||
		!direct_ok(counter_rel, ACL_SELECT | ACL_UPDATE, false) ||
		!direct_ok(report_rel, ACL_INSERT, true) ||
		!direct_ok(request, ACL_SELECT, true))
	{
		table_close(target_rel, NoLock);
		table_close(report_rel, NoLock);
		table_close(counter_rel, NoLock);
		table_close(request, NoLock);
		return REPORT_WRITE_UNSUPPORTED;
	}

	/* a snapshot as a statement of this function would have */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();

	estate = CreateExecutorState();
	ExecInitRangeTable(estate, list_make3(rte_for(target_oid), rte_for(report_oid), rte_for(counter_oid)));
	estate->es_output_cid = GetCurrentCommandId(true);
	estate->es_snapshot = GetActiveSnapshot();
	init_write_rel(&target, target_rel, 1, estate);
	init_write_rel(&report, report_rel, 2, estate);
	init_write_rel(&counter, counter_rel, 3, estate);
	AfterTriggerBeginQuery();

	/* 1. the request must still be open (the caller saw it open) */
	reqslot = table_slot_create(request, &estate->es_tupleTable);
	keys[0] = Int64GetDatum(rw->tenant_id);
	keys[1] = Int64GetDatum(rw->request_id);
	if (!fetch_by_pkey(request, estate->es_snapshot, reqslot, keys, 2, F_INT8EQ))
		goto done;
	open = strcmp(TextDatumGetCString(get(reqslot, att(request, "state"), &isnull)), "open") == 0;
	deadline = DatumGetTimestampTz(get(reqslot, att(request, "deadline"), &isnull));
	if (isnull)
		deadline = DT_NOEND;
	if (!open)
		goto done;

	/* 2. the status: the version the caller read, or its newest */
	if (!table_tuple_fetch_row_version(target.rel, &rw->tid, SnapshotAny, target.slot))
		goto done;
	tb.rw = rw;
	tb.a_token_hash = att(target.rel, "token_hash");
	tb.a_submit_key = rw->idem ? att(target.rel, "submit_key") : InvalidAttrNumber;
	tb.a_level = att(target.rel, "level");
	tb.a_prev_level = att(target.rel, "prev_level");
	tb.a_color = att(target.rel, "color");
	tb.a_icon = att(target.rel, "icon");
	tb.a_latest = att(target.rel, "latest_report_id");
	tb.a_first = att(target.rel, "first_reported_at");
	tb.a_last = att(target.rel, "last_reported_at");
	tb.a_count = att(target.rel, "report_count");
	rw->report_id = nextval_internal(relation_oid(nsp, "report_report_id_seq"), true);
	if (!update_row(&target, estate, build_target, &tb))
		goto done;

	/* 3. the report */
	{
		TupleTableSlot *s = report.newslot;
		TupleDesc	desc = RelationGetDescr(report.rel);

		ExecClearTuple(s);
		memset(s->tts_isnull, true, desc->natts * sizeof(bool));
#define PUT(name, value) \
		do { AttrNumber n_ = att(report.rel, name); \
			 s->tts_values[n_ - 1] = (value); s->tts_isnull[n_ - 1] = false; } while (0)
		PUT("report_id", Int64GetDatum(rw->report_id));
		PUT("tenant_id", Int64GetDatum(rw->tenant_id));
		PUT("request_id", Int64GetDatum(rw->request_id));
		PUT("site_id", Int64GetDatum(rw->site_id));
		PUT("answers", JsonbPGetDatum(rw->answers));
		PUT("level", Int32GetDatum(rw->level));
		if (rw->had_level)
			PUT("previous_level", Int32GetDatum(rw->old_level));
		if (rw->color)
			PUT("color", CStringGetTextDatum(rw->color));
		if (rw->icon)
			PUT("icon", CStringGetTextDatum(rw->icon));
		PUT("late", BoolGetDatum(rw->now > deadline));
		PUT("via", CStringGetTextDatum(rw->via));
		if (rw->submitted_by)
			PUT("submitted_by", CStringGetTextDatum(rw->submitted_by));
		PUT("submitted_at", TimestampTzGetDatum(rw->now));
#undef PUT
		ExecStoreVirtualTuple(s);
		ExecSimpleRelationInsert(report.rri, estate, s);
	}

	/* 4. the first report of a transaction moves the counters itself */
	if (rw->count_inline && (!rw->had_level || rw->old_level != rw->level))
	{
		keys[0] = Int64GetDatum(rw->tenant_id);
		keys[1] = Int64GetDatum(rw->request_id);
		keys[2] = Int16GetDatum(rw->slot);
		if (!fetch_by_pkey(counter.rel, estate->es_snapshot, counter.slot, keys, 3, F_INT2EQ) ||
			!update_row(&counter, estate, build_counter, rw))
			elog(ERROR, "could not update the counters of request " INT64_FORMAT " (slot %d)",
				 rw->request_id, rw->slot);
	}
	result = REPORT_WRITTEN;

done:
	table_close(request, NoLock);
	ExecCloseIndices(target.rri);
	ExecCloseIndices(report.rri);
	ExecCloseIndices(counter.rri);
	AfterTriggerEndQuery(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(target.rel, NoLock);
	table_close(report.rel, NoLock);
	table_close(counter.rel, NoLock);
	PopActiveSnapshot();
	CommandCounterIncrement();
	return result;
}

/*
 * Find a report's target by the SHA-256 of its token, with its request:
 * through the token's unique index, as plan_find_by_token in submit.c does
 * with a statement.  1: found, 0: no such token, -1: not here (row-level
 * security applies to the caller, or a privilege is missing; the caller
 * then runs the statement, which applies and checks them).
 */
int
report_find_by_token(const uint8 *hash, FoundTarget *ft)
{
	Oid			nsp = get_namespace_oid("status_checker", false);
	Oid			target_oid = relation_oid(nsp, "request_target");
	Oid			request_oid = relation_oid(nsp, "request");
	Oid			index_oid = get_relname_relid("request_target_token_hash_key", nsp);
	Relation	target,
				request;
	TupleTableSlot *tslot,
			   *rslot;
	bytea	   *h;
	Datum		keys[2];
	Datum		d;
	bool		isnull;
	int			found = 0;

	if (!OidIsValid(index_oid))
		return -1;
	target = table_open(target_oid, AccessShareLock);
	request = table_open(request_oid, AccessShareLock);
	if (!direct_ok(target, ACL_SELECT, true) || !direct_ok(request, ACL_SELECT, true))
	{
		table_close(target, NoLock);
		table_close(request, NoLock);
		return -1;
	}

	/* a snapshot as a statement of this function would have */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	tslot = table_slot_create(target, NULL);
	rslot = table_slot_create(request, NULL);
	h = palloc(VARHDRSZ + TOKEN_HASH_BYTES);
	SET_VARSIZE(h, VARHDRSZ + TOKEN_HASH_BYTES);
	memcpy(VARDATA(h), hash, TOKEN_HASH_BYTES);
	keys[0] = PointerGetDatum(h);
	if (!fetch_row(target, index_oid, GetActiveSnapshot(), tslot, keys, 1, F_BYTEAEQ))
		goto done;

	memset(ft, 0, sizeof(*ft));
	ft->tenant_id = DatumGetInt64(get(tslot, att(target, "tenant_id"), &isnull));
	ft->request_id = DatumGetInt64(get(tslot, att(target, "request_id"), &isnull));
	ft->site_id = DatumGetInt64(get(tslot, att(target, "site_id"), &isnull));
	ft->tid = tslot->tts_tid;
	d = get(tslot, att(target, "submit_key"), &isnull);
	ft->submit_key = isnull ? NULL : DatumGetTextPCopy(d);
	d = get(tslot, att(target, "latest_report_id"), &isnull);
	ft->has_latest = !isnull;
	ft->latest_report_id = isnull ? 0 : DatumGetInt64(d);

	keys[0] = Int64GetDatum(ft->tenant_id);
	keys[1] = Int64GetDatum(ft->request_id);
	if (!fetch_by_pkey(request, GetActiveSnapshot(), rslot, keys, 2, F_INT8EQ))
		elog(ERROR, "request " INT64_FORMAT " of a report target does not exist", ft->request_id);
	ft->state = TextDatumGetCString(get(rslot, att(request, "state"), &isnull));
	ft->title = TextDatumGetCString(get(rslot, att(request, "title"), &isnull));
	d = get(rslot, att(request, "cancel_reason"), &isnull);
	ft->cancel_reason = isnull ? NULL : TextDatumGetCString(d);
	ft->form_id = DatumGetInt64(get(rslot, att(request, "form_id"), &isnull));
	found = 1;

done:
	ExecDropSingleTupleTableSlot(tslot);
	ExecDropSingleTupleTableSlot(rslot);
	table_close(target, NoLock);
	table_close(request, NoLock);
	PopActiveSnapshot();
	return found;
}
