-- src/security/privileges.sql — row-level security on every tenant table,
-- status_checker_api's privileges, and who may read what.  Runs last
-- (before finish.sql), in the install script and in every upgrade, so that
-- it covers every table and function that exists.
--
-- Each function declares next to its definition how it runs (SECURITY
-- DEFINER SET search_path = ..., ALTER FUNCTION ... OWNER TO
-- status_checker_api) and who may call it (GRANT EXECUTE).  What stays
-- here is what must come after every definition: the rules for every
-- table (row-level security, one policy), status_checker_api's EXECUTE on
-- every function and the key readers taken back from it (a GRANT ... ON
-- ALL FUNCTIONS, so that no new function is forgotten; where a function
-- grants EXECUTE to a role it names status_checker_api first, which keeps
-- the order of its privileges what it has always been), and what each
-- role may read.

-- ------------------------------------------------------------ row-level security

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'status_checker' AND c.relkind = 'r'
        ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (status_checker._may_see(tenant_id)) '
                       'WITH CHECK (status_checker._may_see(tenant_id))', t);
    END LOOP;
END
$$;

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

-- The functions each role may call are granted next to their definitions.
GRANT USAGE ON SCHEMA status_checker TO status_checker_viewer, status_checker_gateway;

-- viewer: read the tenant's data (row-level security keeps it to the tenant)
GRANT SELECT ON
    status_checker.tenant, status_checker.app_user, status_checker.site_group, status_checker.site,
    status_checker.site_contact, status_checker.form, status_checker.request, status_checker.request_target,
    status_checker.report, status_checker.request_counter, status_checker.trigger_rule, status_checker.trigger_fire,
    status_checker.trigger_evaluation, status_checker.outbox, status_checker.delivery_attempt,
    status_checker.site_group_manager, status_checker.message_template, status_checker.default_template,
    -- shared reference data: areas, events, feeds
    status_checker.jma_area, status_checker.jma_municipality, status_checker.jma_station,
    status_checker.event, status_checker.event_product, status_checker.event_product_intensity,
    status_checker.event_product_tsunami, status_checker.feed
    TO status_checker_viewer;
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_viewer;
-- a channel's name and kind (delivery_status names the channel); its
-- configuration (the URL: a Slack webhook's is a credential) is for managers
GRANT SELECT (tenant_id, channel_id, kind, name, enabled, created_at) ON status_checker.channel TO status_checker_viewer;
-- (views: all but these four; contacts, users and channels in clear are for managers, key status for the operator)
DO $$
DECLARE
    v regclass;
BEGIN
    FOR v IN SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind = 'v'
             AND c.relname NOT IN ('contact_list', 'user_list', 'channel_list', 'encryption_status') LOOP
        EXECUTE format('GRANT SELECT ON %s TO status_checker_viewer', v);
    END LOOP;
END
$$;

REVOKE SELECT ON status_checker.contact_list, status_checker.user_list, status_checker.channel_list,
    status_checker.encryption_status
    FROM status_checker_viewer;
GRANT SELECT ON status_checker.contact_list, status_checker.user_list, status_checker.channel_list TO status_checker_manager;

-- manager: requests and their delivery
GRANT SELECT (tenant_id, channel_id, kind, name, config, enabled, created_at) ON status_checker.channel TO status_checker_manager;

-- admin: the tenant's configuration, its users and its audit log
GRANT SELECT ON status_checker.audit_log, status_checker.audit_chain, status_checker.audit_head, status_checker.audit_checkpoint
    TO status_checker_admin;

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
-- encryption status; not contacts or users in clear.
GRANT USAGE ON SCHEMA status_checker TO status_checker_operator;
DO $$
DECLARE
    rel regclass;
BEGIN
    -- what a viewer may read, for every tenant
    FOR rel IN
        SELECT c.oid::regclass FROM pg_class c
        WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('r', 'v')
          AND has_table_privilege('status_checker_viewer', c.oid, 'SELECT')
        ORDER BY 1
    LOOP
        EXECUTE format('GRANT SELECT ON %s TO status_checker_operator', rel);
    END LOOP;
END
$$;
GRANT SELECT (tenant_id, channel_id, kind, name, enabled, created_at) ON status_checker.channel TO status_checker_operator;
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_operator;
GRANT SELECT ON status_checker.encryption_status, status_checker.data_key, status_checker.audit_log, status_checker.audit_chain,
    status_checker.audit_head, status_checker.audit_checkpoint
    TO status_checker_operator;
