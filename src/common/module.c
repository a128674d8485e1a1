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
#include "utils/guc.h"

#include "common/sc_guc.h"
#include "reports/report.h"

PG_MODULE_MAGIC;

int			sc_max_import_bytes = 16 * 1024 * 1024;
int			sc_max_answers_bytes = 64 * 1024;

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
	MarkGUCPrefixReserved("status_checker");

	counters_init();
}
