-- src/upgrades/0.10.1-after.sql — what only the upgrade from 0.10.0 does
-- once the replayed files are in: runs in status_checker--0.10.0--0.10.1.sql
-- after them (it calls their functions), before src/security/privileges.sql.
-- A fresh install has no data to put right, and its functions are defined
-- with these attributes.

-- The API and the operator's functions run as their owner, with a pinned
-- search_path, and the tenant API belongs to status_checker_api: each
-- definition says so (SECURITY DEFINER SET search_path = ..., ALTER
-- FUNCTION ... OWNER TO status_checker_api).  The functions this upgrade
-- does not replace get it here (0.10.0's operator functions ran as their
-- caller).  src/security/privileges.sql used to do this by these lists
-- for the install script too.
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'add_channel(bigint,text,text,jsonb)', 'add_group_manager(bigint,bigint,text)',
        'add_site_contact(bigint,text,text,text,text)', 'add_user(bigint,text,text,text)',
        'backtest_rule(bigint,bigint)', 'cancel_request(bigint,text)', 'check_answers(bigint,jsonb)',
        'close_request(bigint)', 'create_form(bigint,text,jsonb)',
        'create_request(bigint,bigint,text,timestamptz,jsonb,boolean,text)',
        'create_site_group(bigint,text,bigint)',
        'create_trigger_rule(bigint,text,bigint,status_checker.shindo,jsonb,interval,boolean,interval,boolean,text[],text,text[],text)',
        'import_sites(bigint,bytea)', 'import_sites(bigint,text)', 'issue_token(bigint,text)', 'issue_tokens(bigint)',
        'remove_user(bigint,text)', 'request_geojson(bigint)', 'retry_message(bigint)',
        'set_channel_enabled(bigint,boolean)', 'set_message_template(bigint,text,text,text,text)',
        'set_request_reminders(bigint,interval[],interval)', 'set_rule_reminders(bigint,interval[],interval)',
        'set_trigger_rule_enabled(bigint,boolean)', 'set_user_role(bigint,text,text)',
        'submit_report_for(bigint,text,jsonb)', 'set_user_password(bigint,text,text)',
        'upsert_site(bigint,text,text,text,double precision,double precision,bigint,text,jsonb)',
        -- triggers that may fire at commit, under whatever role the session has then
        '_flush_counters()', '_check_admin_left()']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        EXECUTE format('ALTER FUNCTION status_checker.%s OWNER TO status_checker_api', f);
        -- pinned search_path (the functions that have one keep theirs)
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
    FOREACH f IN ARRAY ARRAY[
        'submit_report(text,jsonb)', 'submit_report(text,jsonb,text)', 'audit_chain_head(bigint)', 'verify_audit_log(bigint)',
        'verify_audit_log(bigint,jsonb)', 'installation_public_key(text)', 'verify_deletion_certificate(jsonb)',
        'report_form(text)', 'web_login(bigint,text,text)', 'web_login(bigint,text,text,text)', 'web_session_user(text)', 'web_logout(text)']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
END
$$;
DO $$
DECLARE
    f text;
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'create_tenant(text,text,text)', 'delete_tenant(bigint)', 'map_db_role(bigint,text,name)',
        'load_jma_area_codes(text)', 'add_feed(text,text,interval)', 'remove_feed(bigint)',
        'ingest_feed_document(text,bytea)', 'ingest_feed_document(text,text)',
        'seal_audit_log(integer)', 'prune_audit_log(interval)', 'rotate_signing_key()',
        'master_key_id()', 'rotate_master_key()', 'rotate_data_key(bigint)', 'reencrypt_batch(bigint,integer)',
        'run_reminders()', 'purge_outbox(interval)', 'purge_web_sessions()', 'health_probe()', 'schedule_jobs()',
        'dispatcher_status()', 'dispatcher_workers()']
    LOOP
        EXECUTE format('ALTER FUNCTION status_checker.%s SECURITY DEFINER', f);
        IF (SELECT proconfig IS NULL FROM pg_proc WHERE oid = ('status_checker.' || f)::regprocedure) THEN
            EXECUTE format('ALTER FUNCTION status_checker.%s SET search_path = pg_catalog, pg_temp', f);
        END IF;
    END LOOP;
END
$$;


-- tenants created before 0.5.0 that never sent a link (src/security/link_keys.sql)
SELECT status_checker._link_key(t.tenant_id)
FROM status_checker.tenant t
WHERE NOT EXISTS (SELECT 1 FROM status_checker.link_key k WHERE k.tenant_id = t.tenant_id)
ORDER BY t.tenant_id;

-- A mapped login that holds another of the four group roles than its
-- user's, or its own with ADMIN OPTION (granted by hand, or left by
-- 0.10.0's delete_tenant and mapped again since), is put right by the
-- update: it then holds exactly its user's
-- role in this database, and a WARNING names it.  A mapping whose login
-- may not be mapped any more (a name dropped and made again as a gateway,
-- say) or holds a group role through another role is named in a WARNING
-- and left for the operator.  Logins mapped to no user of this database
-- are left alone (the group roles are the cluster's: a login mapped in
-- another database holds its role for that one, and here it has no
-- tenant and sees nothing).
DO $$
DECLARE
    l record;
BEGIN
    FOR l IN
        SELECT u.db_role, u.role, r.oid FROM status_checker.app_user u
        JOIN pg_catalog.pg_roles r ON r.rolname = u.db_role
        WHERE EXISTS (SELECT 1 FROM unnest(ARRAY['viewer', 'reporter', 'manager', 'admin']) WITH ORDINALITY g(name, rank)
                      WHERE pg_catalog.pg_has_role(r.oid, 'status_checker_' || g.name, 'MEMBER')
                        AND g.rank > array_position(ARRAY['viewer', 'reporter', 'manager', 'admin'], u.role))
           OR EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles gr ON gr.oid = m.roleid
                      WHERE m.member = r.oid
                        AND gr.rolname IN ('status_checker_admin', 'status_checker_manager', 'status_checker_reporter', 'status_checker_viewer')
                        AND (gr.rolname <> 'status_checker_' || u.role OR m.admin_option))
        ORDER BY u.db_role
    LOOP
        BEGIN
            PERFORM status_checker._set_login_group_role(l.db_role, l.role);
            RAISE WARNING 'login % held group roles its mapping does not give it: now it holds status_checker_% only',
                quote_ident(l.db_role), l.role;
        EXCEPTION WHEN invalid_parameter_value THEN
            RAISE WARNING 'login % is mapped to a user of role % but %; it acts for no tenant until an operator maps it again or unmaps it',
                quote_ident(l.db_role), l.role, SQLERRM;
        END;
    END LOOP;
END
$$;
