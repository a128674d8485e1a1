/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Library entry point of status_checker: module magic, _PG_init and the
 *	  GUCs shared by every domain.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "common/sc_guc.h"
#include "feeds/watcher.h"
#include "reports/report.h"

PG_MODULE_MAGIC;

int			sc_max_import_bytes = 16 * 1024 * 1024;
int			sc_max_answers_bytes = 64 * 1024;
int			sc_max_feed_bytes = 32 * 1024 * 1024;

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomIntVariable("status_checker.max_import_bytes",
							"Largest CSV accepted by import_sites and load_jma_area_codes.",
							NULL,
							&sc_max_import_bytes,
							16 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.max_answers_bytes",
							"Largest answers document accepted by submit_report.",
							NULL,
							&sc_max_answers_bytes,
							64 * 1024, 256, 16 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.max_feed_bytes",
							"Largest feed document accepted by ingest_feed_document and fetched by the feed watcher.",
							NULL,
							&sc_max_feed_bytes,
							32 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.feed_timeout",
							"Time limit of one feed or telegram download.",
							NULL,
							&sc_feed_timeout_ms,
							30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* the workers' settings need shared_preload_libraries (the postmaster) */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("status_checker.database",
								   "Database in which the background workers run (the one with the extension).",
								   NULL,
								   &sc_database,
								   "postgres",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
		DefineCustomBoolVariable("status_checker.feed_watcher",
								 "Start the feed watcher background worker (needs shared_preload_libraries).",
								 NULL,
								 &sc_feed_watcher_enabled,
								 true,
								 PGC_POSTMASTER, 0,
								 NULL, NULL, NULL);
	}
	MarkGUCPrefixReserved("status_checker");

	if (process_shared_preload_libraries_in_progress)
		sc_feed_watcher_register();

	counters_init();
}
