-- src/upgrades/0.10.1-grants.sql — the functions the tenant roles, the
-- gateway and the operator may call, for the upgrade from 0.10.0: runs in
-- status_checker--0.10.0--0.10.1.sql after src/security/privileges.sql.
-- A fresh install grants each function's EXECUTE next to its definition;
-- an upgraded database must end with exactly those privileges, whatever
-- 0.10.0 had granted (0.10.1 took some back from viewers, and gave the
-- operator its functions), so all are taken back and granted again here,
-- by role.  (These lists were src/security/privileges.sql until the
-- definitions held their grants.)

-- every function the tenant roles and the gateway may call is granted
-- below: start from none, so that an upgraded installation ends with
-- exactly a fresh one's privileges (0.10.1 took some back from viewers)
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA status_checker
    FROM status_checker_viewer, status_checker_reporter, status_checker_manager, status_checker_admin, status_checker_gateway;

-- viewer
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

-- reporter: report on a site's behalf
GRANT EXECUTE ON FUNCTION status_checker.submit_report_for(bigint, text, jsonb), status_checker.submit_report(text, jsonb),
    status_checker.submit_report(text, jsonb, text), status_checker.report_form(text)
    TO status_checker_reporter;

-- manager
GRANT EXECUTE ON FUNCTION
    status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text),
    status_checker.close_request(bigint), status_checker.cancel_request(bigint, text),
    status_checker.set_request_reminders(bigint, interval[], interval),
    status_checker.issue_token(bigint, text), status_checker.issue_tokens(bigint), status_checker.retry_message(bigint)
    TO status_checker_manager;

-- admin
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

-- operator
GRANT EXECUTE ON FUNCTION
    status_checker.create_tenant(text, text, text),
    status_checker.delete_tenant(bigint),
    status_checker.map_db_role(bigint, text, name),
    status_checker.load_jma_area_codes(text),
    status_checker.add_feed(text, text, interval),
    status_checker.remove_feed(bigint),
    status_checker.ingest_feed_document(text, bytea),
    status_checker.ingest_feed_document(text, text),
    status_checker.seal_audit_log(integer),
    status_checker.prune_audit_log(interval),
    status_checker.rotate_signing_key(),
    status_checker.master_key_id(),
    status_checker.rotate_master_key(),
    status_checker.rotate_data_key(bigint),
    status_checker.reencrypt_batch(bigint, integer),
    status_checker.run_reminders(),
    status_checker.purge_outbox(interval),
    status_checker.purge_web_sessions(),
    status_checker.health_probe(),
    status_checker.schedule_jobs(),
    status_checker.dispatcher_status(),
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
-- and the functions the viewers' views call
DO $$
DECLARE
    fn regprocedure;
BEGIN
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
