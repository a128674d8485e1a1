/*-------------------------------------------------------------------------
 *
 * tenancy.c
 *	  Who is asking, for which tenant: the tenant context that row-level
 *	  security policies and the API functions rely on.
 *
 * A session acts for a tenant in one of two ways:
 *
 *	 - a gateway (an application server or the HTTP worker, member of
 *	   status_checker_gateway) authenticates its user and calls
 *	   set_app_user(tenant_id, login) in the transaction, then
 *	   SET LOCAL ROLE status_checker_<that user's role>.  The context lasts
 *	   until the end of the transaction (so it is safe behind a
 *	   transaction-pooling connection pool) and holds only while the
 *	   current role is exactly the group role of the user's role: a
 *	   gateway that takes a higher role than its user's gets no tenant;
 *	 - a person with a database login mapped to an app_user
 *	   (app_user.db_role, set by map_db_role): the tenant is looked up
 *	   once per transaction.
 *
 * Operators (superusers, members of status_checker_operator) without a
 * context see every tenant; so do the extension's background workers.
 * Nothing here reads a setting a user could change with SET.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "security/security.h"

/* the context set by set_app_user, for this transaction */
static bool ctx_set = false;
static int64 ctx_tenant;
static char ctx_role[NAMEDATALEN];	/* group role, e.g. status_checker_viewer */
static char ctx_login[256];

/* the mapping of a database login, looked up once per transaction */
static bool map_valid = false;
static Oid	map_role = InvalidOid;
static bool map_found = false;
static int64 map_tenant;
static char map_login[256];

/* whether the session user is an operator, looked up once per transaction */
static bool op_valid = false;
static Oid	op_role = InvalidOid;
static bool op_result = false;

static void
tenancy_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ctx_set = false;
			map_valid = false;
			op_valid = false;
			break;
		default:
			break;
	}
}

void
tenancy_init(void)
{
	RegisterXactCallback(tenancy_xact_callback, NULL);
}

static bool
is_operator(void)
{
	Oid			session = GetSessionUserId();
	Oid			operator_role;

	if (ctx_set)
		return false;
	if (op_valid && op_role == session)
		return op_result;
	if (superuser_arg(session))
		op_result = true;
	else
	{
		operator_role = get_role_oid("status_checker_operator", true);
		op_result = OidIsValid(operator_role) && has_privs_of_role(session, operator_role);
	}
	op_role = session;
	op_valid = true;
	return op_result;
}

/*
 * Look up the app_user mapped to the outer role (the login, or the role it
 * SET ROLE to), as the bootstrap superuser so that row-level security on
 * app_user does not call back into us.
 *
 * The mapping names the role, and a role dropped and created again under
 * the same name would inherit it: so it holds only while the role is what
 * map_db_role made of it — a member of its user's group role, and no
 * gateway (a gateway acts for users through set_app_user, never as one).
 */
static void
lookup_mapping(Oid role)
{
	Datum		arg[1];
	Oid			argtype[1] = {NAMEOID};
	char	   *rolname = GetUserNameFromId(role, true);

	map_valid = true;
	map_role = role;
	map_found = false;
	if (rolname == NULL)
		return;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg[0] = DirectFunctionCall1(namein, CStringGetDatum(rolname));
	if (sc_spi_as_superuser("SELECT tenant_id, login, role FROM status_checker.app_user "
							"WHERE db_role OPERATOR(pg_catalog.=) $1",
							1, argtype, arg, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		char	   *login;
		char	   *user_role;
		Oid			group = InvalidOid;
		Oid			gateway = get_role_oid("status_checker_gateway", true);

		map_tenant = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		login = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		user_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
		if (user_role != NULL)
			group = get_role_oid(psprintf("status_checker_%s", user_role), true);
		strlcpy(map_login, login ? login : "", sizeof(map_login));
		map_found = OidIsValid(group) && is_member_of_role(role, group) &&
			!(OidIsValid(gateway) && is_member_of_role(role, gateway));
	}
	SPI_finish();
}

/* the current tenant, or false when there is none */
static bool
current_tenant(int64 *tenant, const char **login)
{
	Oid			outer = GetOuterUserId();

	if (ctx_set)
	{
		Oid			group = get_role_oid(ctx_role, true);

		if (!OidIsValid(group) || outer != group)
			return false;
		*tenant = ctx_tenant;
		if (login)
			*login = ctx_login;
		return true;
	}
	if (!map_valid || map_role != outer)
		lookup_mapping(outer);
	if (!map_found)
		return false;
	*tenant = map_tenant;
	if (login)
		*login = map_login;
	return true;
}

/* _tenant() -> bigint: the tenant this session acts for, or NULL */
PG_FUNCTION_INFO_V1(sc_tenant);
Datum
sc_tenant(PG_FUNCTION_ARGS)
{
	int64		tenant;

	if (!current_tenant(&tenant, NULL))
		PG_RETURN_NULL();
	PG_RETURN_INT64(tenant);
}

/* _is_operator() -> boolean: acting for every tenant (no context) */
PG_FUNCTION_INFO_V1(sc_is_operator);
Datum
sc_is_operator(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(is_operator());
}

bool
tenancy_may_see(int64 tenant_id)
{
	int64		tenant;

	/* an operator (never mapped to a tenant) needs no lookup */
	if (is_operator())
		return true;
	if (current_tenant(&tenant, NULL))
		return tenant == tenant_id;
	return false;
}

/* _may_see(tenant_id) -> boolean: the row-level security test */
PG_FUNCTION_INFO_V1(sc_may_see);
Datum
sc_may_see(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(is_operator());
	PG_RETURN_BOOL(tenancy_may_see(PG_GETARG_INT64(0)));
}

/* _app_login() -> text: the application user this session acts for, or NULL */
PG_FUNCTION_INFO_V1(sc_app_login);
Datum
sc_app_login(PG_FUNCTION_ARGS)
{
	int64		tenant;
	const char *login;

	if (!current_tenant(&tenant, &login))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(login));
}

/* set the context, in a transaction block (or a background worker's transaction) */
static void
set_context(int64 tenant_id, const char *login, const char *role)
{
	/*
	 * Outside a block the context would end with the statement: a mistake,
	 * refused.  A background worker (the HTTP worker) runs its statements
	 * in transactions of its own making, which are not "blocks"; the
	 * context still ends with them.
	 */
	if (!IsTransactionBlock() && !IsBackgroundWorker)
		ereport(ERROR,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("set_app_user can only be used in a transaction block"),
				 errdetail("The context lasts until the end of the transaction."),
				 errhint("BEGIN; SELECT status_checker.set_app_user(…); SET LOCAL ROLE …; …; COMMIT;")));
	if (strlen(login) >= sizeof(ctx_login))
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("login is too long")));
	ctx_tenant = tenant_id;
	strlcpy(ctx_login, login, sizeof(ctx_login));
	snprintf(ctx_role, sizeof(ctx_role), "status_checker_%s", role);
	ctx_set = true;
}

/* whether the session's login may act for application users: a gateway, or a superuser */
static bool
session_is_gateway(void)
{
	Oid			session = GetSessionUserId();
	Oid			gateway = get_role_oid("status_checker_gateway", true);

	return superuser_arg(session) || (OidIsValid(gateway) && is_member_of_role(session, gateway));
}

/*
 * set_app_user(tenant_id, login) -> text: for gateways, act for an
 * application user until the end of the transaction; returns the group
 * role to SET LOCAL ROLE to.
 *
 * In C, and SECURITY INVOKER: there is no SQL function that sets a context
 * for another to call (0.10.0's _set_context was one, and code a caller
 * planted could run it as status_checker_api).  The session's login must be
 * a gateway; the user is looked up as the bootstrap superuser, as the
 * mapping of a login is.
 */
PG_FUNCTION_INFO_V1(sc_set_app_user);
Datum
sc_set_app_user(PG_FUNCTION_ARGS)
{
	int64		tenant_id;
	char	   *login;
	char	   *role = NULL;
	Datum		arg[2];
	Oid			argtype[2] = {INT8OID, TEXTOID};
	MemoryContext caller_cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("set_app_user: %s must not be NULL", PG_ARGISNULL(0) ? "tenant_id" : "login")));
	tenant_id = PG_GETARG_INT64(0);
	login = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (!session_is_gateway())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a gateway may act for application users"),
				 errhint("GRANT status_checker_gateway TO the application server's login.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg[0] = Int64GetDatum(tenant_id);
	arg[1] = CStringGetTextDatum(login);
	if (sc_spi_as_superuser("SELECT role FROM status_checker.app_user "
							"WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND login OPERATOR(pg_catalog.=) $2",
							2, argtype, arg, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		char	   *r = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (r != NULL)
			role = MemoryContextStrdup(caller_cxt, r);
	}
	SPI_finish();

	/* the same answer for an unknown tenant and an unknown login */
	if (role == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("unknown user %s of tenant %lld", quote_literal_cstr(login), (long long) tenant_id)));
	set_context(tenant_id, login, role);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("status_checker_%s", role)));
}

/* _clear_context(): end the context set by set_app_user before the transaction ends */
PG_FUNCTION_INFO_V1(sc_clear_context);
Datum
sc_clear_context(PG_FUNCTION_ARGS)
{
	ctx_set = false;
	PG_RETURN_VOID();
}
