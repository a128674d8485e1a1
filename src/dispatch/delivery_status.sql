-- src/dispatch/delivery_status.sql — every message as its readers see it,
-- the recipient masked.  Written with CREATE OR REPLACE: an upgrade script can replay the same text.

-- A recipient as views show it: w***@example.com, https://hooks.example.com/…
-- Whatever the kind it is told, it shows no more than that: an address that
-- is not a plain mailbox (a URL, whose path may be its credential) masked
-- as email is ***, and a URL shows its scheme, host and port only, never a
-- user name or password before the host, and *** when what follows the
-- scheme is not a plain host name or address (0.10.1: the caller names the kind, and
-- a webhook URL masked as email came back whole).
CREATE OR REPLACE FUNCTION status_checker._mask_recipient(kind text, recipient text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN CASE
        WHEN kind = 'email' THEN
            coalesce((SELECT m[1] || '***@' || m[2]
                      FROM regexp_match(recipient, '^([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)$') m), '***')
        ELSE
            -- scheme, host (a name, or an IPv6 address in brackets) and port,
            -- then the end or the start of a path, query or fragment
            coalesce((SELECT m[1] || m[2] || coalesce(m[3], '') || '/…'
                      FROM regexp_match(recipient, '^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^/?#@\s]*@)?'
                                                   '([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(?:[/?#]|$)') m), '***')
        END;
COMMENT ON FUNCTION status_checker._mask_recipient(text, text) IS
'Internal: a recipient as views show it: w***@example.com, https://hooks.example.com/…; *** for anything that is not of that shape';

-- A recipient masked (w***@example.com, https://hooks.example.com/…): the
-- only form of it a viewer may see.  It runs as status_checker_api, which
-- may decrypt (row-level security and the session's tenant still confine
-- it): until 0.10.1 the view decrypted with its reader's own privileges, so
-- viewers held _decrypt and decrypted contacts and users with it directly.
CREATE OR REPLACE FUNCTION status_checker._masked_recipient(p_tenant_id bigint, p_kind text, p_recipient text)
    RETURNS text
    LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    RETURN status_checker._mask_recipient(p_kind,
               CASE WHEN p_recipient LIKE 'sc1:%' THEN status_checker._decrypt(p_tenant_id, 'recipient', p_recipient)
                    ELSE p_recipient END);
ALTER FUNCTION status_checker._masked_recipient(bigint, text, text) OWNER TO status_checker_api;
COMMENT ON FUNCTION status_checker._masked_recipient(bigint, text, text) IS
'Internal (delivery_status): a message''s recipient, decrypted and masked (w***@example.com, https://hooks.example.com/…)';
GRANT EXECUTE ON FUNCTION status_checker._masked_recipient(bigint, text, text) TO status_checker_viewer, status_checker_operator;

CREATE OR REPLACE VIEW status_checker.delivery_status WITH (security_invoker = true) AS
SELECT o.message_id, o.tenant_id, o.request_id, s.code AS site_code, o.channel_kind,
       status_checker._masked_recipient(o.tenant_id, o.channel_kind, o.recipient) AS recipient,
       o.purpose, o.state, o.attempts, o.last_error, o.enqueued_at, o.sent_at,
       o.seq AS reminder_number, o.last_status,
       CASE WHEN o.state IN ('queued', 'retrying') THEN o.next_attempt_at END AS next_attempt_at,
       o.sent_at - o.enqueued_at AS latency,
       format('sc1-%s-%s', o.tenant_id, o.message_id) AS idempotency_key,
       ch.name AS channel_name
FROM status_checker.outbox o
LEFT JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id
LEFT JOIN status_checker.channel ch ON ch.tenant_id = o.tenant_id AND ch.channel_id = coalesce(o.via_channel_id, o.channel_id);
COMMENT ON VIEW status_checker.delivery_status IS
'Every message: site, channel kind, masked recipient, purpose, state (queued, sending, sent, retrying, dead, cancelled), '
'attempts, last error, enqueue and send times, latency, idempotency key';
GRANT SELECT ON status_checker.delivery_status TO status_checker_viewer, status_checker_operator;

