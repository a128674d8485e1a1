-- src/security/gateway.sql — a gateway acts for an application user.
-- Written with CREATE OR REPLACE: an upgrade script can replay the same text.
--
-- set_app_user is written in C (src/security/tenancy.c) and runs with the
-- caller's privileges: it checks that the session's login is a gateway,
-- looks the user up and sets the context, all in one function.  Until
-- 0.10.1 it was a SECURITY DEFINER function calling a helper,
-- _set_context, that anything running as status_checker_api could call too:
-- code a tenant's manager planted (a trigger on a temporary table that a
-- SECURITY DEFINER function reused) switched the session to another tenant.
-- No SQL function sets a context for another function any more.

CREATE OR REPLACE FUNCTION status_checker.set_app_user(tenant_id bigint, login text)
    RETURNS text
    LANGUAGE c VOLATILE CALLED ON NULL INPUT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_set_app_user';
COMMENT ON FUNCTION status_checker.set_app_user(bigint, text) IS
'For gateways: act for this application user until the end of the transaction; returns the group role to SET LOCAL ROLE to '
'(the context holds only under exactly that role)';
GRANT EXECUTE ON FUNCTION status_checker.set_app_user(bigint, text) TO status_checker_api, status_checker_gateway;
