-- src/security/privileges.sql — status_checker_api's privileges and the
-- schema's.  Runs last in the install script (before finish.sql), so that
-- it covers every table and function that exists.  (No upgrade runs it:
-- an upgrade script grants what it creates itself.)
--
-- Each definition declares its privileges next to it: a function how it
-- runs (SECURITY DEFINER SET search_path = ..., ALTER FUNCTION ... OWNER
-- TO status_checker_api) and who may call it (GRANT EXECUTE); a table its
-- row-level security (a tenant table: ENABLE and FORCE ROW LEVEL SECURITY
-- and the policy tenant_isolation, USING and WITH CHECK
-- status_checker._may_see(tenant_id)) and who may read it; a view who may
-- read it.  What stays here cannot be said per object:
--   - status_checker_api's privileges are a policy over the whole schema
--     (GRANT ... ON ALL TABLES / SEQUENCES / FUNCTIONS, so that no new
--     object is forgotten) followed by the exceptions taken back from it
--     (the key tables and the key readers); an exception written next to
--     its definition would come before the GRANT ... ON ALL and be undone
--     by it.  Where a function grants EXECUTE to a role it names
--     status_checker_api first, which keeps the order of its privileges
--     what it has always been.
--   - USAGE on the schema, for every role, once every object exists.

-- ------------------------------------------------------------ API functions
--
-- The tenant API runs as status_checker_api (SECURITY DEFINER): callers need
-- no table privileges, and row-level security still confines every
-- statement to the caller's tenant, so another tenant's request, site or
-- form simply does not exist for them.  A few functions must look across
-- tenants (a report link names its tenant itself; the audit chain is sealed
-- for all tenants at once): they run as the extension's owner and check
-- the tenant themselves (_require_tenant).  Each such function says so in
-- its definition (SECURITY DEFINER SET search_path = ..., and ALTER
-- FUNCTION ... OWNER TO status_checker_api after it, for the tenant API).

-- status_checker_api: everything the API functions touch, nothing they do not
GRANT USAGE ON SCHEMA status_checker TO status_checker_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA status_checker TO status_checker_api;
REVOKE ALL ON status_checker.signing_key, status_checker.deletion_certificate, status_checker.data_key,
              status_checker.audit_sealer, status_checker.audit_gap FROM status_checker_api;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA status_checker TO status_checker_api;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA status_checker TO status_checker_api;
-- ... but nothing that reads a key or works across tenants.  The API
-- functions take input from callers; if a caller ever got code of its own
-- to run inside one (0.10.0: a trigger on a temporary table that a
-- function reused), that code would hold status_checker_api's privileges.
-- So they are only what the tenant API needs under row-level security:
-- links come from _target_token (C, the key stays there), and the key
-- readers, the master key's functions and the dispatcher's claim are for
-- the extension's owner alone.  (Since 0.10.1; test/pgtap/14_attacks.sql.)
REVOKE ALL ON status_checker.link_key FROM status_checker_api;
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'status_checker'::regnamespace
          AND p.proname IN ('_link_key', '_first_link_valid', '_encrypt_bytes', '_decrypt_bytes', '_decrypt_secrets',
                            '_master_wrap', '_master_unwrap', '_rewrap', '_new_data_key', '_forget_keys',
                            '_claim_messages')
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM status_checker_api, PUBLIC', f);
    END LOOP;
END
$$;

-- ------------------------------------------------------------ tenant roles

-- The tables and views each role may read are granted next to their
-- definitions, as the functions each role may call are.  What stays here
-- is the schema itself: USAGE is granted after every object exists.
GRANT USAGE ON SCHEMA status_checker TO status_checker_viewer, status_checker_gateway;

-- ------------------------------------------------------------ the operator
--
-- The service operator runs the installation for every tenant (superusers
-- are operators too): tenants and their first administrator, mapping
-- logins, deleting a tenant, feeds and area codes, keys, jobs, retention,
-- monitoring.  These functions run as the extension's owner (they reach
-- every tenant and the key tables) and are the operator's alone.  Until
-- 0.10.1 nothing was granted to status_checker_operator, so only a
-- superuser could do any of this.  The operator reads what a viewer reads,
-- for every tenant (row-level security lets an operator see all), and the
-- encryption status, the data keys (wrapped) and the audit log; not
-- contacts or users in clear.  Each table and view grants that next to its
-- definition (TO status_checker_viewer, status_checker_operator).
GRANT USAGE ON SCHEMA status_checker TO status_checker_operator;
