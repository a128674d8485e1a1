/*-------------------------------------------------------------------------
 *
 * kept_plan.h
 *	  A statement prepared once per backend (SPI_keepplan) and run through
 *	  SPI: the report path (submit.c) and the HTTP worker's apps
 *	  (reporter.c, dashboard.c) use them for the statements they run on
 *	  every call.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_KEPT_PLAN_H
#define STATUS_CHECKER_KEPT_PLAN_H

#include "executor/spi.h"

#define KEPT_PLAN_MAX_ARGS 13

typedef struct KeptPlan
{
	SPIPlanPtr	plan;			/* NULL until first run */
	const char *sql;
	int			nargs;
	Oid			argtypes[KEPT_PLAN_MAX_ARGS];
} KeptPlan;

/*
 * Run `kp` (preparing and keeping it on first use); the caller is connected
 * to SPI.  With expected >= 0, any other number of rows is an error.
 * Returns SPI_tuptable.
 */
extern SPITupleTable *kept_plan_run(KeptPlan *kp, Datum *values, const char *nulls,
									bool read_only, int expected);

#endif
