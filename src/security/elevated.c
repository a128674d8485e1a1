/*-------------------------------------------------------------------------
 *
 * elevated.c
 *	  Running one of the extension's own queries with the privileges of
 *	  the bootstrap superuser, for a caller who may not read the table
 *	  (the mapping of logins to tenants, the data keys).
 *
 * Switching the user id is not enough: the query's operators and functions
 * are resolved on the caller's search_path, and a caller who owns a schema
 * can put an operator there (CREATE OPERATOR evil.= (name, name)) that
 * would then run as the superuser.  So the query also runs with
 * search_path pinned to pg_catalog (pg_temp last, which is never searched
 * for operators or functions), as a SECURITY DEFINER function's SET clause
 * would do, and the queries name their operators with OPERATOR(pg_catalog.=)
 * besides.  The setting is restored when the query ends; after an error, by
 * the abort of the (sub)transaction, as for fmgr_security_definer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "security/security.h"

int
sc_spi_as_superuser(const char *sql, int nargs, Oid *types, Datum *values, bool readonly, long count)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, types, values, NULL, readonly, count);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, save_nestlevel);
	return rc;
}
