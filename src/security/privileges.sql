-- src/security/privileges.sql — row-level security on every tenant table,
-- who owns the API functions, and who may call and read what.  Runs last
-- (before finish.sql), in the install script and in every upgrade, so that
-- it covers every table and function that exists.

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
                            '_claim_messages', '_set_context')
        ORDER BY 1
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM status_checker_api, PUBLIC', f);
    END LOOP;
END
$$;

-- ------------------------------------------------------------ tenant roles

-- every function the tenant roles and the gateway may call is granted
-- below: start from none, so that an upgraded installation ends with
-- exactly a fresh one's privileges (0.10.1 took some back from viewers)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA status_checker
    FROM status_checker_viewer, status_checker_reporter, status_checker_manager, status_checker_admin, status_checker_gateway;
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
-- (views: see below; contacts, users and channels in clear are for managers, key status for the operator)
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
GRANT EXECUTE ON FUNCTION
    status_checker.current_tenant(), status_checker.request_geojson(bigint), status_checker.check_answers(bigint, jsonb),
    status_checker.request_dashboard(bigint), status_checker.status_matrix_csv(bigint),
    status_checker._event_title(status_checker.event), status_checker._require_request(bigint, boolean),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb),
    -- what the row-level security policies call
    status_checker._tenant(), status_checker._is_operator(), status_checker._may_see(bigint)
    TO status_checker_viewer;
-- what the views call (the views run with their reader's privileges): a
-- viewer's views, for viewers; the views of decrypted data, for managers.
-- Decrypting is never a viewer's: until 0.10.1 this loop also granted
-- viewers _decrypt (contact_list and delivery_status used it), and a viewer
-- decrypted every contact and user address with it directly.
DO $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT DISTINCT p.oid::regprocedure AS fn,
               CASE WHEN v.relname IN ('contact_list', 'user_list', 'channel_list') THEN 'status_checker_manager'
                    ELSE 'status_checker_viewer' END AS grantee
        FROM pg_rewrite rw
        JOIN pg_class v ON v.oid = rw.ev_class
        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_proc'::regclass
        JOIN pg_proc p ON p.oid = d.refobjid
        WHERE v.relnamespace = 'status_checker'::regnamespace AND p.pronamespace = 'status_checker'::regnamespace
          AND v.relname <> 'encryption_status'
        ORDER BY 1, 2
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', f.fn, f.grantee);
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION status_checker._decrypt(bigint, text, text), status_checker._decrypt_bytes(bigint, text, bytea),
    status_checker._decrypt_secrets(bigint, jsonb)
    FROM status_checker_viewer, status_checker_reporter;

REVOKE SELECT ON status_checker.contact_list, status_checker.user_list, status_checker.channel_list,
    status_checker.encryption_status
    FROM status_checker_viewer;
GRANT SELECT ON status_checker.contact_list, status_checker.user_list, status_checker.channel_list TO status_checker_manager;

-- reporter: report on a site's behalf
GRANT EXECUTE ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb), status_checker.submit_report(text, jsonb),
    status_checker.submit_report(text, jsonb, text), status_checker.report_form(text)
    TO status_checker_reporter;

-- manager: requests and their delivery
GRANT SELECT (tenant_id, channel_id, kind, name, config, enabled, created_at) ON status_checker.channel TO status_checker_manager;
GRANT EXECUTE ON FUNCTION
    status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text),
    status_checker.close_request(bigint), status_checker.cancel_request(bigint, text),
    status_checker.set_request_reminders(bigint, interval[], interval),
    status_checker.issue_token(bigint, text), status_checker.issue_tokens(bigint), status_checker.retry_message(bigint)
    TO status_checker_manager;

-- admin: the tenant's configuration, its users and its audit log
GRANT SELECT ON status_checker.audit_log, status_checker.audit_chain, status_checker.audit_head, status_checker.audit_checkpoint
    TO status_checker_admin;
GRANT EXECUTE ON FUNCTION
    status_checker.add_user(bigint, text, text, text), status_checker.set_user_role(bigint, text, text),
    status_checker.remove_user(bigint, text), status_checker.set_user_password(bigint, text, text),
    status_checker.create_site_group(bigint, text, bigint),
    status_checker.upsert_site(bigint, text, text, text, double precision, double precision, bigint, text, jsonb),
    status_checker.add_site_contact(bigint, text, text, text, text),
    status_checker.import_sites(bigint, bytea), status_checker.import_sites(bigint, text),
    status_checker.create_form(bigint, text, jsonb),
    status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text),
    status_checker.set_trigger_rule_enabled(bigint, boolean), status_checker.set_rule_reminders(bigint, interval[], interval),
    status_checker.backtest_rule(bigint, bigint),
    status_checker.add_channel(bigint, text, text, jsonb), status_checker.set_channel_enabled(bigint, boolean),
    status_checker.set_message_template(bigint, text, text, text, text),
    status_checker.add_group_manager(bigint, bigint, text),
    status_checker.audit_chain_head(bigint), status_checker.verify_audit_log(bigint), status_checker.verify_audit_log(bigint, jsonb)
    TO status_checker_admin;

-- gateway: act for a user, and take reports by link
GRANT EXECUTE ON FUNCTION
    status_checker.set_app_user(bigint, text), status_checker.reset_app_user(),
    status_checker.submit_report(text, jsonb), status_checker.submit_report(text, jsonb, text),
    status_checker.report_form(text), status_checker.current_tenant(),
    status_checker.web_login(bigint, text, text), status_checker.web_login(bigint, text, text, text),
    status_checker.web_session_user(text), status_checker.web_logout(text),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb)
    TO status_checker_gateway;

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
-- (they run as the extension's owner: SECURITY DEFINER in their definitions)
GRANT EXECUTE ON FUNCTION
    status_checker.create_tenant(text, text, text), status_checker.delete_tenant(bigint),
    status_checker.map_db_role(bigint, text, name), status_checker.load_jma_area_codes(text),
    status_checker.add_feed(text, text, interval), status_checker.remove_feed(bigint),
    status_checker.ingest_feed_document(text, bytea), status_checker.ingest_feed_document(text, text),
    status_checker.seal_audit_log(integer), status_checker.prune_audit_log(interval),
    status_checker.rotate_signing_key(), status_checker.master_key_id(), status_checker.rotate_master_key(),
    status_checker.rotate_data_key(bigint), status_checker.reencrypt_batch(bigint, integer),
    status_checker.run_reminders(), status_checker.purge_outbox(interval), status_checker.purge_web_sessions(),
    status_checker.health_probe(), status_checker.schedule_jobs(), status_checker.dispatcher_status(),
    status_checker.dispatcher_workers()
    TO status_checker_operator;
GRANT EXECUTE ON FUNCTION
    status_checker.parse_feed_document(text, text), status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision),
    status_checker.webhook_signature(text, bigint, text),
    status_checker.audit_chain_head(bigint), status_checker.verify_audit_log(bigint), status_checker.verify_audit_log(bigint, jsonb),
    status_checker.request_geojson(bigint), status_checker.request_dashboard(bigint), status_checker.status_matrix_csv(bigint),
    status_checker.check_answers(bigint, jsonb), status_checker.current_tenant(),
    status_checker.installation_public_key(text), status_checker.verify_deletion_certificate(jsonb)
    TO status_checker_operator;
-- a channel that needs a CA bundle of its own (ca_file, a path on the server) is added by an operator
GRANT EXECUTE ON FUNCTION status_checker.add_channel(bigint, text, text, jsonb) TO status_checker_operator;
GRANT EXECUTE ON PROCEDURE status_checker.reencrypt_tenant(bigint, integer) TO status_checker_operator;
GRANT USAGE ON SCHEMA status_checker TO status_checker_operator;
DO $$
DECLARE
    rel regclass;
    fn regprocedure;
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
    -- and the functions the viewers' views call
    FOR fn IN
        SELECT p.oid::regprocedure FROM pg_proc p
        WHERE p.pronamespace = 'status_checker'::regnamespace
          AND EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                      WHERE a.grantee = 'status_checker_viewer'::regrole AND a.privilege_type = 'EXECUTE')
        ORDER BY 1
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO status_checker_operator', fn);
    END LOOP;
END
$$;
GRANT SELECT (tenant_id, channel_id, kind, name, enabled, created_at) ON status_checker.channel TO status_checker_operator;
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_operator;
GRANT SELECT ON status_checker.encryption_status, status_checker.data_key, status_checker.audit_log, status_checker.audit_chain,
    status_checker.audit_head, status_checker.audit_checkpoint
    TO status_checker_operator;
