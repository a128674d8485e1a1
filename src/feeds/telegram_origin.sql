-- src/feeds/telegram_origin.sql — a telegram is fetched only from its
-- feed's own origin.  Written with CREATE OR REPLACE: an upgrade script
-- can replay the same text.

-- A telegram on another host than its feed's, or redirected to one, is not
-- fetched (src/feeds/watcher.c, 0.10.1): failed at once, counted as a bad
-- document of its feed, and the feed says why; the feed is not failing.
CREATE OR REPLACE FUNCTION status_checker._feed_document_refused(p_url text, p_reason text, p_fetched boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_feed bigint;
BEGIN
    UPDATE status_checker.feed_document x
    SET state = 'failed', attempts = x.attempts + p_fetched::integer, error = left(p_reason, 1000),
        fetched_at = CASE WHEN p_fetched THEN pg_catalog.now() ELSE x.fetched_at END
    WHERE x.url = p_url AND x.state = 'pending'
    RETURNING x.feed_id INTO v_feed;
    IF FOUND THEN
        PERFORM status_checker._feed_note_error(v_feed, p_url || ': ' || p_reason, true, false);
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker._feed_document_refused(text, text, boolean) IS
'Internal (feed watcher): a telegram not fetched because it is on another host than its feed''s, or redirected to one (p_fetched: the redirect was fetched); failed at once and counted';
