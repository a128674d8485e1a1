-- src/upgrades/0.10.1.sql — what only the upgrade from 0.10.0 does; the
-- install script defines the same objects in their current form.  Runs
-- first in status_checker--0.10.0--0.10.1.sql, before the replayed files.

-- set_app_user no longer has a helper that sets a tenant context for others
-- (src/security/gateway.sql)
DROP FUNCTION IF EXISTS status_checker._set_context(bigint, text, text);

-- src/security/link_keys.sql (replayed) makes its trigger again
DROP TRIGGER IF EXISTS tenant_link_key ON status_checker.tenant;

-- sign-ins are slowed, never locked (src/web/sign_in.sql): the locks of
-- 0.10.0 are lifted, failures counted so far still count
ALTER TABLE status_checker.web_login RENAME COLUMN locked_until TO throttled_until;
ALTER TABLE status_checker.web_login ADD COLUMN throttled integer NOT NULL DEFAULT 0;
UPDATE status_checker.web_login SET throttled_until = NULL WHERE throttled_until IS NOT NULL;
ALTER TYPE status_checker.web_login_result ADD ATTRIBUTE device_token text;

-- a broadcast channel's URL was stored in clear in the outbox, which
-- viewers read: encrypted like every other recipient (src/dispatch/enqueue.sql)
UPDATE status_checker.outbox SET recipient = status_checker._encrypt(tenant_id, 'recipient', recipient)
WHERE recipient NOT LIKE 'sc1:%';

-- until 0.10.1 the first 200 bytes of a non-2xx reply went into last_error,
-- which viewers read: a host nobody vetted could put anything there.  Only
-- the status stays (src/dispatch/dispatcher.c stores nothing else now).
UPDATE status_checker.outbox SET last_error = regexp_replace(last_error, '^((gave up after [0-9]+ attempts: )?HTTP [0-9]+): .*$', '\1', 's')
WHERE last_error ~ '^(gave up after [0-9]+ attempts: )?HTTP [0-9]+: ';
UPDATE status_checker.delivery_attempt SET error = regexp_replace(error, '^((gave up after [0-9]+ attempts: )?HTTP [0-9]+): .*$', '\1', 's')
WHERE error ~ '^(gave up after [0-9]+ attempts: )?HTTP [0-9]+: ';

-- a channel's ca_file is a path on the server, the operator's since 0.10.1:
-- one a tenant's administrator set before is named in the log, to be checked
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT ch.tenant_id, ch.channel_id, ch.name, ch.config ->> 'ca_file' AS ca_file
             FROM status_checker.channel ch WHERE ch.config ? 'ca_file' ORDER BY 1, 2 LOOP
        RAISE WARNING 'channel % ("%") of tenant % has ca_file %: since 0.10.1 only an operator may set it; check that it is meant',
            c.channel_id, c.name, c.tenant_id, quote_literal(c.ca_file);
    END LOOP;
END
$$;
