-- src/dispatch/enqueue.sql — putting messages into the outbox.  Written
-- with CREATE OR REPLACE: an upgrade script can replay the same text.

-- One message of a purpose for each contact of the listed sites of a
-- request, and one for each broadcasting webhook channel of the tenant.
-- Every recipient is stored encrypted: a contact's address is so already;
-- a broadcast channel's URL (a Slack incoming-webhook URL is itself a
-- credential) is encrypted here, since 0.10.1 (viewers read the outbox).
CREATE OR REPLACE FUNCTION status_checker._enqueue_site_messages(p_tenant_id bigint, p_request_id bigint, p_purpose text,
                                                      p_seq integer, p_sites bigint[], p_first boolean DEFAULT false)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- the first messages of new targets cannot exist yet: a plain insert
    -- (ON CONFLICT's speculative insertion cost a third more)
    EXECUTE format($q$
        WITH broadcast AS MATERIALIZED (   -- each channel's URL encrypted once, not once per site
            SELECT ch.channel_id, status_checker._encrypt(ch.tenant_id, 'recipient', ch.config ->> 'url') AS recipient
            FROM status_checker.channel ch
            WHERE ch.tenant_id = $1 AND ch.kind = 'webhook' AND ch.enabled
              AND coalesce((ch.config ->> 'broadcast')::boolean, true))
        INSERT INTO status_checker.outbox (tenant_id, request_id, site_id, contact_id, channel_id, channel_kind, recipient, purpose, seq)
        SELECT $1, $2, x.site_id, x.contact_id, x.channel_id, x.kind, x.recipient, $3, $4
        FROM (SELECT s.site_id, c.contact_id, NULL::bigint AS channel_id, c.channel AS kind, c.address AS recipient
              FROM unnest($5) s(site_id)
              JOIN status_checker.site_contact c ON c.tenant_id = $1 AND c.site_id = s.site_id
              UNION ALL
              SELECT s.site_id, NULL, b.channel_id, 'webhook', b.recipient
              FROM unnest($5) s(site_id)
              CROSS JOIN broadcast b) x
        ORDER BY x.site_id %s$q$, CASE WHEN p_first THEN '' ELSE 'ON CONFLICT DO NOTHING' END)
    USING p_tenant_id, p_request_id, p_purpose, p_seq, p_sites;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_site_messages(bigint, bigint, text, integer, bigint[], boolean) IS
'Internal: enqueue a message of a purpose to every contact of the given sites of a request and to the broadcasting webhook channels';

-- One escalation per manager (and per broadcasting webhook channel) of a
-- request, listing the sites they cover that have not answered.
CREATE OR REPLACE FUNCTION status_checker._enqueue_escalation(p_tenant_id bigint, p_request_id bigint) RETURNS bigint
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    WITH silent AS (
        SELECT s.site_id, s.code, s.name, g.ancestors
        FROM status_checker.request_target t
        JOIN status_checker.site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
        LEFT JOIN status_checker.site_group g ON g.tenant_id = s.tenant_id AND g.group_id = s.group_id
        WHERE t.tenant_id = p_tenant_id AND t.request_id = p_request_id AND t.report_count = 0
    ), covered AS (
        SELECT DISTINCT m.user_id, x.site_id, x.code, x.name
        FROM silent x
        JOIN status_checker.site_group_manager m ON m.tenant_id = p_tenant_id AND m.group_id = ANY (x.ancestors)
    ), orphan AS (   -- no manager up to the root: the tenant's admins
        SELECT a.user_id, x.site_id, x.code, x.name
        FROM silent x CROSS JOIN status_checker.app_user a
        WHERE a.tenant_id = p_tenant_id AND a.role = 'admin'
          AND NOT EXISTS (SELECT 1 FROM covered c WHERE c.site_id = x.site_id)
    ), per_user AS (
        SELECT y.user_id, jsonb_agg(jsonb_build_object('code', y.code, 'name', y.name) ORDER BY y.code) AS sites
        FROM (SELECT * FROM covered UNION SELECT * FROM orphan) y GROUP BY y.user_id
    ), msgs AS (
        SELECT p.user_id, NULL::bigint AS channel_id, 'email' AS kind, u.email AS recipient, p.sites
        FROM per_user p JOIN status_checker.app_user u ON u.tenant_id = p_tenant_id AND u.user_id = p.user_id
        UNION ALL
        SELECT NULL, ch.channel_id, 'webhook', status_checker._encrypt(ch.tenant_id, 'recipient', ch.config ->> 'url'),
               (SELECT jsonb_agg(jsonb_build_object('code', x.code, 'name', x.name) ORDER BY x.code) FROM silent x)
        FROM status_checker.channel ch
        WHERE ch.tenant_id = p_tenant_id AND ch.kind = 'webhook' AND ch.enabled
          AND coalesce((ch.config ->> 'broadcast')::boolean, true) AND EXISTS (SELECT 1 FROM silent)
    )
    INSERT INTO status_checker.outbox (tenant_id, request_id, site_id, user_id, channel_id, channel_kind, recipient, purpose, seq, detail)
    SELECT p_tenant_id, p_request_id, NULL, m.user_id, m.channel_id, m.kind, m.recipient, 'escalation', 0,
           jsonb_build_object('sites', m.sites)
    FROM msgs m
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._enqueue_escalation(bigint, bigint) IS
'Internal: enqueue the escalation of a request to the managers of its silent sites (admins where no group has one)';

