-- src/dispatch/upgrade-0.2.0--0.3.0.sql — what only the upgrade from 0.2.0
-- does: the columns 0.3.0 adds to tables of earlier versions (a fresh
-- install has them in the CREATE TABLE statements).  The new domains and
-- the functions written with CREATE OR REPLACE follow in the upgrade
-- script (Makefile: UPGRADE_0_3_0_PARTS).

ALTER TABLE status_checker.request
    ADD COLUMN reminders interval[] NOT NULL DEFAULT '{}',
    ADD COLUMN escalate_after interval;
ALTER TABLE status_checker.trigger_rule
    ADD COLUMN reminders interval[] NOT NULL DEFAULT '{}',
    ADD COLUMN escalate_after interval;
-- 0.2.0's tokens were random: generation 0 with a hash marks them, and the
-- dispatcher replaces such a token by a derived one before it sends a link
ALTER TABLE status_checker.request_target
    ADD COLUMN token_gen integer NOT NULL DEFAULT 0;
-- issue_token and issue_tokens are replaced (src/requests/tokens.sql); the
-- random token generator they used is no longer needed
DROP FUNCTION status_checker._new_token();
