/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Helpers shared by status_checker's background workers (the feed
 *	  watcher and the dispatcher): run one SQL statement in a short
 *	  transaction of its own, with any error logged and contained.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "common/worker.h"

bool
sc_run_sql(const char *who, MemoryContext rows_cxt, const char *sql,
		   int nargs, Oid *types, Datum *values, const char *nulls,
		   List **rows, int ncols)
{
	MemoryContext old = CurrentMemoryContext;
	bool		ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, sql);
	PG_TRY();
	{
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
		if (rc < 0)
			elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
		if (rows)
		{
			MemoryContext spi = MemoryContextSwitchTo(rows_cxt);

			for (uint64 i = 0; i < SPI_processed; i++)
			{
				char	  **row = palloc0(sizeof(char *) * ncols);

				for (int c = 0; c < ncols; c++)
				{
					char	   *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1);

					row[c] = v ? pstrdup(v) : NULL;
				}
				*rows = lappend(*rows, row);
			}
			MemoryContextSwitchTo(spi);
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(rows_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		/* the log's detail when there is one (a deadlock names the statements) */
		ereport(LOG,
				(errmsg("%s: %s", who, edata->message),
				 edata->detail_log ? errdetail_internal("%s", edata->detail_log) :
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 edata->context ? errcontext("%s", edata->context) : 0));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

bool
sc_extension_present(const char *who, MemoryContext cxt)
{
	List	   *rows = NIL;

	return sc_run_sql(who, cxt,
					  "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'status_checker'",
					  0, NULL, NULL, NULL, &rows, 1) && rows != NIL;
}

void
sc_register_worker(const char *name, const char *type, const char *function, int restart_seconds, Datum arg)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = restart_seconds;
	strlcpy(worker.bgw_library_name, "status_checker", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, type, BGW_MAXLEN);
	worker.bgw_main_arg = arg;
	RegisterBackgroundWorker(&worker);
}
