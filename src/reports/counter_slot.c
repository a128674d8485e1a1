/*-------------------------------------------------------------------------
 *
 * counter_slot.c
 *	  _counter_slot(): which of a request's 64 counter rows this backend
 *	  updates.  Backend numbers are dense and unique among live backends,
 *	  so up to 64 concurrent submitters never contend on a counter row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/backendid.h"

#include "reports/report.h"

#define COUNTER_SLOTS 64

int16
counter_slot(void)
{
	return (int16) ((MyBackendId > 0 ? MyBackendId : MyProcPid) % COUNTER_SLOTS);
}

PG_FUNCTION_INFO_V1(sc_counter_slot);
Datum
sc_counter_slot(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16(counter_slot());
}
