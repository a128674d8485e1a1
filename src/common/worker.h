/* worker.h — helpers shared by status_checker's background workers. */
#ifndef STATUS_CHECKER_WORKER_H
#define STATUS_CHECKER_WORKER_H

#include "postgres.h"

#include "nodes/pg_list.h"

/*
 * Run one SQL statement in its own transaction; errors are logged (prefixed
 * with who) and contained.  Rows, as arrays of ncols C strings (NULL for
 * SQL NULL), are appended to *rows, allocated in rows_cxt.
 */
extern bool sc_run_sql(const char *who, MemoryContext rows_cxt, const char *sql,
					   int nargs, Oid *types, Datum *values, const char *nulls,
					   List **rows, int ncols);

/* true when the extension is installed in the worker's database */
extern bool sc_extension_present(const char *who, MemoryContext cxt);

/*
 * register a worker of this library (from _PG_init, under
 * shared_preload_libraries): its name, its type in pg_stat_activity
 * (several workers of one kind share a type), its main function, and the
 * argument that function gets
 */
extern void sc_register_worker(const char *name, const char *type, const char *function, int restart_seconds,
							   Datum arg);

#endif
