-- src/upgrades/0.10.1.sql — what only the upgrade from 0.10.0 does; the
-- install script defines the same objects in their current form.  Runs
-- first in status_checker--0.10.0--0.10.1.sql, before the replayed files.

-- set_app_user no longer has a helper that sets a tenant context for others
-- (src/security/gateway.sql)
DROP FUNCTION IF EXISTS status_checker._set_context(bigint, text, text);

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
