-- src/dispatch/upgrade-0.7.0--0.8.0.sql — what only the upgrade from 0.7.0
-- does: the outbox records which dispatcher worker holds a message, and
-- the claim and the start-up take the worker's number (the new functions
-- follow in the upgrade script: Makefile, UPGRADE_0_8_0_PARTS).  Until
-- this runs, a 0.8.0 library works with 0.7.0's functions through its
-- first worker only.

ALTER TABLE status_checker.outbox ADD COLUMN claimed_by smallint;
DROP FUNCTION status_checker._claim_messages(integer, integer);
DROP FUNCTION status_checker._dispatcher_startup();
