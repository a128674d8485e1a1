/*-------------------------------------------------------------------------
 *
 * submit.c
 *	  The report hot path: submit_report(token, answers) and
 *	  _record_report(tenant_id, request_id, site_id, answers, via).
 *
 * In a disaster every site reports at once, so this path is in C.  Per
 * report it:
 *
 *	 1. finds the site's target row (by token hash, or by key) with its
 *		request's state and form version: through the token's index
 *		(store.c), or with a kept plan (SPI_keepplan);
 *	 2. checks the answers against the form version (answers.c), in memory;
 *		form versions are immutable, so each backend caches them;
 *	 3. writes the status row (usually a HOT update, whose row lock
 *		serialises the reports of one site and which yields the level it
 *		replaced, so the counters stay exact), the report row and, for the
 *		transaction's first report, this backend's counter slot — through
 *		the table access method (store.c), or with one kept statement;
 *	 4. otherwise notes the change of the request's counters; they are
 *		written at commit, once per request, into this backend's slot
 *		(counters.c) — no row is shared by all reporters.
 *
 * Steps 1 and 3 use the table access method wherever that cannot differ
 * from the statements: when row-level security does not apply to the
 * caller, the caller holds the privileges, and request_target and
 * request_counter have no triggers of anyone else's.  Starting and ending
 * the executor for the statements cost more than the report's own work
 * (docs/benchmarks.md).  Otherwise (submit_report_for, which runs as
 * status_checker_api under row-level security) the kept plans run.
 *
 * The report table has no foreign key to request_target: this function is
 * its only writer and has just updated (and locked) that very row; the
 * RI trigger's extra query cost a fifth of the whole path (docs/benchmarks.md).
 *
 * Errors keep the messages and SQLSTATEs of the SQL contract; a token is
 * never put into a message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "common/kept_plan.h"
#include "reports/report.h"
#include "requests/token.h"


#define FIND_COLUMNS \
	"SELECT t.tenant_id, t.request_id, t.site_id, r.state, r.title, r.cancel_reason, r.form_id, t.ctid"
#define FIND_FROM \
	"  FROM status_checker.request_target t" \
	"  JOIN status_checker.request r ON r.tenant_id = t.tenant_id AND r.request_id = t.request_id"
#define FIND_SELECT FIND_COLUMNS FIND_FROM

static KeptPlan plan_find_by_token = {
	NULL, FIND_SELECT " WHERE t.token_hash = $1", 1, {BYTEAOID}
};

/* with an idempotency key (0.6.0): also the site's latest key and report */
static KeptPlan plan_find_by_token_key = {
	NULL, FIND_COLUMNS ", t.submit_key, t.latest_report_id" FIND_FROM " WHERE t.token_hash = $1", 1, {BYTEAOID}
};

static KeptPlan plan_find_by_site = {
	NULL, FIND_SELECT " WHERE t.tenant_id = $1 AND t.request_id = $2 AND t.site_id = $3",
	3, {INT8OID, INT8OID, INT8OID}
};

static KeptPlan plan_form = {
	NULL,
	"SELECT definition FROM status_checker.form WHERE tenant_id = $1 AND form_id = $2",
	2, {INT8OID, INT8OID}
};

/* a first link's token, issued on its first report (0.9.0, src/requests/tokens.sql) */
static KeptPlan plan_issue_first_link = {
	NULL, "SELECT status_checker._issue_first_link($1)", 1, {TEXTOID}
};

static KeptPlan plan_revoked = {
	NULL,
	"SELECT 1 FROM status_checker.request_token_revoked WHERE token_hash = $1",
	1, {BYTEAOID}
};

/*
 * Store a report in one statement: the status UPDATE and the report INSERT.
 * The UPDATE's row lock serialises reports of one site; "prev_level =
 * t.level" reads the level of the row version it replaces (after
 * EvalPlanQual, the newest), so the counters move exactly.  It re-checks
 * that the request is still open (a close committed meanwhile makes it find
 * nothing) and, by token, that the token was not replaced meanwhile.  The
 * report id is drawn here so that the report row can follow in the same
 * statement.
 *
 * The first report of a transaction also moves the request's counters in
 * this statement ($11, into this backend's slot $12); later reports of the
 * same transaction leave that to counters.c (noted, written at commit), so
 * that a transaction of many reports never updates one row many times.
 *
 * $1 key (token hash or site id), $2 tenant, $3 request, $4 level,
 * $5 color, $6 icon, $7 now, $8 answers, $9 via, $10 submitted_by,
 * $11 count inline, $12 counter slot
 */
#define STORE_SQL(WHERE, SET) \
	"WITH u AS (" \
	"  UPDATE status_checker.request_target t" \
	"     SET prev_level = t.level, level = $4, color = $5, icon = $6," \
	"         latest_report_id = nextval('status_checker.report_report_id_seq')," \
	"         first_reported_at = coalesce(t.first_reported_at, $7), last_reported_at = $7," \
	"         report_count = t.report_count + 1" SET \
	"    FROM status_checker.request r" \
	"   WHERE " WHERE " AND t.tenant_id = $2 AND t.request_id = $3" \
	"     AND r.tenant_id = t.tenant_id AND r.request_id = t.request_id AND r.state = 'open'" \
	"  RETURNING t.latest_report_id, t.site_id, t.prev_level, r.deadline)," \
	" i AS (" \
	"  INSERT INTO status_checker.report" \
	"    (report_id, tenant_id, request_id, site_id, answers, level, previous_level, color, icon," \
	"     late, via, submitted_by, submitted_at)" \
	"  OVERRIDING SYSTEM VALUE" \
	"  SELECT u.latest_report_id, $2, $3, u.site_id, $8, $4, u.prev_level, $5, $6," \
	"         $7 > u.deadline, $9, $10, $7 FROM u" \
	"  RETURNING report_id, previous_level)," \
	/* the transaction's first report counts itself ($11): a first answer... */ \
	" c1 AS (" \
	"  UPDATE status_checker.request_counter c" \
	"     SET responded = c.responded + 1, counts[$4 + 1] = c.counts[$4 + 1] + 1" \
	"    FROM i WHERE $11 AND i.previous_level IS NULL" \
	"     AND c.tenant_id = $2 AND c.request_id = $3 AND c.slot = $12)," \
	/* ...or a change of level */ \
	" c2 AS (" \
	"  UPDATE status_checker.request_counter c" \
	"     SET counts[$4 + 1] = c.counts[$4 + 1] + 1," \
	"         counts[i.previous_level + 1] = c.counts[i.previous_level + 1] - 1" \
	"    FROM i WHERE $11 AND i.previous_level <> $4" \
	"     AND c.tenant_id = $2 AND c.request_id = $3 AND c.slot = $12)" \
	" SELECT report_id, previous_level FROM i"

static KeptPlan plan_store_by_token = {
	NULL, STORE_SQL("t.token_hash = $1", ""), 12,
	{BYTEAOID, INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID, TEXTOID, TEXTOID,
	BOOLOID, INT2OID}
};

/*
 * With an idempotency key ($13): the key is kept with the status, and a
 * concurrent replay that committed first makes the UPDATE find nothing
 * (EvalPlanQual re-checks the condition on the newest row version).  A
 * plan of its own: the plans above leave the key as it is.
 */
static KeptPlan plan_store_by_token_key = {
	NULL, STORE_SQL("t.token_hash = $1 AND t.submit_key IS DISTINCT FROM $13", ", submit_key = $13"), 13,
	{BYTEAOID, INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID, TEXTOID, TEXTOID,
	BOOLOID, INT2OID, TEXTOID}
};

static KeptPlan plan_store_by_site = {
	NULL, STORE_SQL("t.site_id = $1", ""), 12,
	{INT8OID, INT8OID, INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, JSONBOID, TEXTOID, TEXTOID,
	BOOLOID, INT2OID}
};

static SPITupleTable *
run(KeptPlan *kp, Datum *values, const char *nulls, int expected)
{
	return kept_plan_run(kp, values, nulls, false, expected);
}

static Datum
col(SPITupleTable *tt, int c, bool *isnull)
{
	return SPI_getbinval(tt->vals[0], tt->tupdesc, c, isnull);
}

/*
 * The row of a find plan in `tt` as a FoundTarget; `keyed`: a row of
 * plan_find_by_token_key (with the latest key and report).
 */
static void
found_from_row(SPITupleTable *tt, FoundTarget *ft, bool keyed)
{
	bool		isnull;
	Datum		d;

	memset(ft, 0, sizeof(*ft));
	ft->tenant_id = DatumGetInt64(col(tt, 1, &isnull));
	ft->request_id = DatumGetInt64(col(tt, 2, &isnull));
	ft->site_id = DatumGetInt64(col(tt, 3, &isnull));
	ft->state = TextDatumGetCString(col(tt, 4, &isnull));
	ft->title = TextDatumGetCString(col(tt, 5, &isnull));
	d = col(tt, 6, &isnull);
	ft->cancel_reason = isnull ? NULL : TextDatumGetCString(d);
	ft->form_id = DatumGetInt64(col(tt, 7, &isnull));
	ft->tid = *(ItemPointer) DatumGetPointer(col(tt, 8, &isnull));
	if (keyed)
	{
		d = col(tt, 9, &isnull);
		ft->submit_key = isnull ? NULL : DatumGetTextPCopy(d);
		d = col(tt, 10, &isnull);
		ft->has_latest = !isnull;
		ft->latest_report_id = isnull ? 0 : DatumGetInt64(d);
	}
}

static void
unknown_token(const uint8 *hash) pg_attribute_noreturn();

static void
unknown_token(const uint8 *hash)
{
	if (hash != NULL)
	{
		bytea	   *h = palloc(VARHDRSZ + TOKEN_HASH_BYTES);
		Datum		v[1];

		SET_VARSIZE(h, VARHDRSZ + TOKEN_HASH_BYTES);
		memcpy(VARDATA(h), hash, TOKEN_HASH_BYTES);
		v[0] = PointerGetDatum(h);
		run(&plan_revoked, v, NULL, -1);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("this report link has been replaced by a newer one"),
					 errhint("Use the link in the most recent message."),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "report_token_replaced")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("unknown report token"),
			 errdetail("The link is wrong or incomplete."),
			 errhint("Open the link exactly as it appears in the message.")));
}

/*
 * Form versions are immutable (a trigger refuses updates, ids are never
 * reused), so each backend keeps the definitions it has used, detoasted,
 * for the life of the backend.  Bounded: past FORM_CACHE_MAX entries the
 * cache starts afresh.
 */
#define FORM_CACHE_MAX 256

typedef struct FormCacheEntry
{
	int64		form_id;		/* hash key */
	Jsonb	   *definition;
} FormCacheEntry;

static HTAB *form_cache = NULL;
static MemoryContext form_cache_cxt = NULL;

static Jsonb *
form_definition(int64 tenant_id, int64 form_id)
{
	FormCacheEntry *e;
	bool		found;
	Datum		v[2];
	SPITupleTable *tt;
	bool		isnull;
	Jsonb	   *def;

	if (form_cache == NULL || hash_get_num_entries(form_cache) >= FORM_CACHE_MAX)
	{
		HASHCTL		ctl;

		if (form_cache_cxt == NULL)
			form_cache_cxt = AllocSetContextCreate(TopMemoryContext, "status_checker form cache",
												   ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(form_cache_cxt);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(FormCacheEntry);
		ctl.hcxt = form_cache_cxt;
		form_cache = hash_create("status_checker form cache", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(form_cache, &form_id, HASH_FIND, NULL);
	if (e != NULL)
		return e->definition;

	v[0] = Int64GetDatum(tenant_id);
	v[1] = Int64GetDatum(form_id);
	tt = run(&plan_form, v, NULL, 1);
	def = DatumGetJsonbP(col(tt, 1, &isnull));
	e = hash_search(form_cache, &form_id, HASH_ENTER, &found);
	e->definition = MemoryContextAlloc(form_cache_cxt, VARSIZE(def));
	memcpy(e->definition, def, VARSIZE(def));
	return e->definition;
}

/* Raise the error for a closed or cancelled request. */
static void
refuse_unless_open(const FoundTarget *ft)
{
	if (strcmp(ft->state, "closed") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request " INT64_FORMAT " is closed", ft->request_id),
				 errdetail("\"%s\" was closed; reports are no longer accepted.", ft->title),
				 errhint("Contact the crisis team directly.")));
	if (strcmp(ft->state, "cancelled") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("request " INT64_FORMAT " was cancelled", ft->request_id),
				 errdetail("\"%s\" was cancelled: %s", ft->title,
						   ft->cancel_reason ? ft->cancel_reason : ""),
				 errhint("No report is needed for this request.")));
}

/*
 * The store found nothing although the read found the target open: the
 * request was closed or cancelled, or the token replaced, in between.
 */
static void
explain_lost_race(Datum key, bool by_token, int64 tenant_id, int64 request_id)
{
	Datum		v[3];
	SPITupleTable *tt;
	FoundTarget ft;

	if (by_token)
	{
		v[0] = key;
		tt = run(&plan_find_by_token, v, NULL, -1);
		if (SPI_processed > 0)
		{
			found_from_row(tt, &ft, false);
			refuse_unless_open(&ft);
		}
		unknown_token((uint8 *) VARDATA_ANY(DatumGetByteaPP(key)));
	}
	v[0] = Int64GetDatum(tenant_id);
	v[1] = Int64GetDatum(request_id);
	v[2] = key;
	tt = run(&plan_find_by_site, v, NULL, -1);
	if (SPI_processed > 0)
	{
		found_from_row(tt, &ft, false);
		refuse_unless_open(&ft);
	}
	elog(ERROR, "the report target changed during the report; try again");
}

/* Is the target's latest submission the one with idempotency key `idem`? */
static bool
key_matches(const FoundTarget *ft, text *idem, int64 *report_id)
{
	if (ft->submit_key == NULL || !ft->has_latest ||
		VARSIZE_ANY_EXHDR(ft->submit_key) != VARSIZE_ANY_EXHDR(idem) ||
		memcmp(VARDATA_ANY(ft->submit_key), VARDATA_ANY(idem), VARSIZE_ANY_EXHDR(idem)) != 0)
		return false;
	*report_id = ft->latest_report_id;
	return true;
}

/*
 * The keyed store found nothing: is that because a replay with the same key
 * committed meanwhile?  (A new snapshot sees it.)
 */
static bool
replay_of(Datum key, text *idem, int64 *report_id)
{
	Datum		v[1];
	SPITupleTable *tt;
	FoundTarget ft;

	v[0] = key;
	tt = run(&plan_find_by_token_key, v, NULL, -1);
	if (SPI_processed == 0)
		return false;
	found_from_row(tt, &ft, true);
	return key_matches(&ft, idem, report_id);
}

/*
 * Store one report with a planned statement (plan_store_*), for tables that
 * have triggers of someone else's: sets rw->report_id (0 if the statement
 * found nothing: a lost race), had_level and old_level.
 */
static void
store_with_statement(ReportWrite *rw, Datum key, bool by_token)
{
	Datum		v[13];
	char		n[13];
	SPITupleTable *tt;
	bool		isnull;

	memset(n, ' ', sizeof(n));
	v[0] = key;
	v[1] = Int64GetDatum(rw->tenant_id);
	v[2] = Int64GetDatum(rw->request_id);
	v[3] = Int32GetDatum(rw->level);
	v[4] = rw->color ? CStringGetTextDatum(rw->color) : (Datum) 0;
	n[4] = rw->color ? ' ' : 'n';
	v[5] = rw->icon ? CStringGetTextDatum(rw->icon) : (Datum) 0;
	n[5] = rw->icon ? ' ' : 'n';
	v[6] = TimestampTzGetDatum(rw->now);
	v[7] = JsonbPGetDatum(rw->answers);
	v[8] = CStringGetTextDatum(rw->via);
	v[9] = rw->submitted_by ? CStringGetTextDatum(rw->submitted_by) : (Datum) 0;
	n[9] = rw->submitted_by ? ' ' : 'n';
	v[10] = BoolGetDatum(rw->count_inline);
	v[11] = Int16GetDatum(rw->slot);
	v[12] = PointerGetDatum(rw->idem);
	tt = run(rw->idem ? &plan_store_by_token_key : by_token ? &plan_store_by_token : &plan_store_by_site,
			 v, n, -1);
	rw->report_id = 0;
	if (SPI_processed == 0)
		return;
	rw->report_id = DatumGetInt64(col(tt, 1, &isnull));
	rw->old_level = DatumGetInt32(col(tt, 2, &isnull));
	rw->had_level = !isnull;
}

/*
 * Store one report; the caller is connected to SPI and has run one of the
 * find plans, whose single row is in `tt`.  `key` is the token hash
 * (by_token) or the site id.  `idem` is the idempotency key, or NULL.
 */
static int64
record_report(const FoundTarget *ft, Jsonb *answers, const char *via, Datum key, bool by_token,
			  text *idem)
{
	ReportWrite rw;
	ReportWriteResult written;
	bool		inline_count;
	char	   *submitted_by;
	Jsonb	   *def;
	int			level;
	char	   *color;
	char	   *icon;
	int64		tenant_id = ft->tenant_id;
	int64		request_id = ft->request_id;

	refuse_unless_open(ft);
	if (answers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("answers must not be NULL")));
	def = form_definition(tenant_id, ft->form_id);

	answers_check(def, answers, &level, &color, &icon);
	submitted_by = strcmp(via, "user") == 0 ? GetUserNameFromId(GetSessionUserId(), false) : NULL;
	inline_count = counters_inline_begin();

	/* the usual way: through the table access method (store.c) */
	memset(&rw, 0, sizeof(rw));
	rw.tenant_id = tenant_id;
	rw.request_id = request_id;
	rw.site_id = ft->site_id;
	rw.tid = ft->tid;
	rw.token_hash = by_token ? (const uint8 *) VARDATA_ANY(DatumGetByteaPP(key)) : NULL;
	rw.idem = idem;
	rw.level = level;
	rw.color = color;
	rw.icon = icon;
	rw.now = GetCurrentTransactionStartTimestamp();
	rw.answers = answers;
	rw.via = via;
	rw.submitted_by = submitted_by;
	rw.count_inline = inline_count;
	rw.slot = counter_slot();
	written = report_write(&rw);
	if (written == REPORT_WRITE_UNSUPPORTED)
	{
		/* someone gave the tables triggers: the statement fires them */
		store_with_statement(&rw, key, by_token);
		written = rw.report_id == 0 ? REPORT_WRITE_LOST_RACE : REPORT_WRITTEN;
	}
	counters_inline_end();
	if (written == REPORT_WRITE_LOST_RACE)
	{
		int64		replayed;

		if (idem && replay_of(key, idem, &replayed))
			return replayed;
		explain_lost_race(key, by_token, tenant_id, request_id);
	}

	/*
	 * Unless the write counted it, the request's counters: noted in
	 * memory, written at commit by the report_counters trigger (counters.c),
	 * or at once when no trigger event is waiting (IMMEDIATE or disabled).
	 */
	if (!inline_count)
		counters_add(tenant_id, request_id, rw.had_level ? rw.old_level : -1, level);
	return rw.report_id;
}

#define MAX_IDEMPOTENCY_KEY 128

/*
 * The target of a token's hash `h`: through the token's index where that is
 * the same (store.c), else a statement.  False if no target has it.
 */
static bool
find_by_token(bytea *h, FoundTarget *ft, bool with_key)
{
	int			found = report_find_by_token((const uint8 *) VARDATA(h), ft);

	if (found < 0)
	{
		Datum		v[1];
		SPITupleTable *tt;

		v[0] = PointerGetDatum(h);
		tt = run(with_key ? &plan_find_by_token_key : &plan_find_by_token, v, NULL, -1);
		found = SPI_processed > 0;
		if (found)
			found_from_row(tt, ft, with_key);
	}
	return found > 0;
}

/* a report by token, with an idempotency key or without (NULL) */
static int64
submit_by_token(text *token, Jsonb *answers, text *idem)
{
	bytea	   *h = palloc(VARHDRSZ + TOKEN_HASH_BYTES);
	uint8	   *hash = (uint8 *) VARDATA(h);
	Datum		v[1];
	FoundTarget ft;
	TokenLocator loc;
	bool		found;
	int64		report_id;

	if (idem != NULL)
	{
		const char *k = VARDATA_ANY(idem);
		int			len = VARSIZE_ANY_EXHDR(idem);
		bool		printable = len >= 1 && len <= MAX_IDEMPOTENCY_KEY;

		for (int i = 0; i < len && printable; i++)
			printable = k[i] > 0x20 && k[i] < 0x7f;
		if (!printable)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an idempotency key is 1 to %d printable ASCII characters without spaces",
							MAX_IDEMPOTENCY_KEY),
					 errdetail("The report was not stored.")));
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	SET_VARSIZE(h, VARHDRSZ + TOKEN_HASH_BYTES);
	if (token == NULL || !token_hash(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), hash))
		unknown_token(NULL);

	found = find_by_token(h, &ft, idem != NULL);
	if (!found && token_locator(VARDATA_ANY(token), VARSIZE_ANY_EXHDR(token), &loc))
	{
		/*
		 * A first link: its token is issued now, if it is the target's.
		 * Looked up again whatever the answer: a concurrent first report
		 * by the same link (a double tap) may have issued it meanwhile.
		 */
		v[0] = PointerGetDatum(token);
		run(&plan_issue_first_link, v, NULL, 1);
		found = find_by_token(h, &ft, idem != NULL);
	}
	if (!found)
		unknown_token(hash);
	/* a replay: the report is stored already */
	if (idem == NULL || !key_matches(&ft, idem, &report_id))
		report_id = record_report(&ft, answers, "link", PointerGetDatum(h), true, idem);
	SPI_finish();
	return report_id;
}

/* submit_report(token, answers) */
PG_FUNCTION_INFO_V1(sc_submit_report);
Datum
sc_submit_report(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(submit_by_token(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1), NULL));
}

/* submit_report(token, answers, idempotency_key) */
PG_FUNCTION_INFO_V1(sc_submit_report_key);
Datum
sc_submit_report_key(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(submit_by_token(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0),
									PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1),
									PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2)));
}

/* _record_report(tenant_id, request_id, site_id, answers, via) */
PG_FUNCTION_INFO_V1(sc_record_report);
Datum
sc_record_report(PG_FUNCTION_ARGS)
{
	Jsonb	   *answers = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	char	   *via = text_to_cstring(PG_GETARG_TEXT_PP(4));
	Datum		v[3];
	SPITupleTable *tt;
	FoundTarget ft;
	int64		report_id;

	if (strcmp(via, "link") != 0 && strcmp(via, "user") != 0)
		elog(ERROR, "invalid report channel \"%s\"", via);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	v[0] = PG_GETARG_DATUM(0);
	v[1] = PG_GETARG_DATUM(1);
	v[2] = PG_GETARG_DATUM(2);
	tt = run(&plan_find_by_site, v, NULL, -1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("site " INT64_FORMAT " is not a target of request " INT64_FORMAT,
						PG_GETARG_INT64(2), PG_GETARG_INT64(1))));
	found_from_row(tt, &ft, false);
	report_id = record_report(&ft, answers, via, v[2], false, NULL);
	SPI_finish();
	PG_RETURN_INT64(report_id);
}
