/*-------------------------------------------------------------------------
 *
 * kept_plan.c
 *	  Statements prepared once per backend and run through SPI.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/kept_plan.h"

SPITupleTable *
kept_plan_run(KeptPlan *kp, Datum *values, const char *nulls, bool read_only, int expected)
{
	int			rc;

	if (kp->plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(kp->sql, kp->nargs, kp->argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", kp->sql, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		kp->plan = plan;
	}
	rc = SPI_execute_plan(kp->plan, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed for \"%s\": %s", kp->sql, SPI_result_code_string(rc));
	if (expected >= 0 && SPI_processed != (uint64) expected)
		elog(ERROR, "\"%s\" returned " UINT64_FORMAT " rows, expected %d", kp->sql, SPI_processed, expected);
	return SPI_tuptable;
}
