-- src/security/link_keys.sql — every tenant gets its link key when it is
-- created, not on the first link sent.
--
-- Made on first use, the key was inserted by whichever transaction needed
-- it first: the dispatcher's claim (the first link of a tenant) or
-- issue_tokens.  After an earthquake both ran at once for hundreds of new
-- tenants, in different orders, and deadlocked on the link_key unique
-- index (found by the burst benchmark, test/bench/burst-bench.sh; kept
-- from coming back by test/tap/004_contention.pl).  _link_key still makes
-- a missing key, but no tenant lacks one any more.

CREATE OR REPLACE FUNCTION status_checker._tenant_link_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- a restore brings the tenant's own key with it (_restoring: row_security
    -- off is not enough, any caller can set it)
    IF status_checker._restoring() THEN
        RETURN NULL;
    END IF;
    PERFORM status_checker._link_key(NEW.tenant_id);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION status_checker._tenant_link_key() IS
'Internal (trigger): make a new tenant''s link key at once, so that concurrent first links never race to create it';
CREATE TRIGGER tenant_link_key AFTER INSERT ON status_checker.tenant
    FOR EACH ROW EXECUTE FUNCTION status_checker._tenant_link_key();
