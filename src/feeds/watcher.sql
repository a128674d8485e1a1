-- src/feeds/watcher.sql — the feeds the watcher polls, and its health.
--
-- The feed watcher background worker (src/feeds/watcher.c) does only the
-- network I/O; every decision is here, in short transactions it calls
-- between fetches: which feeds are due (_feed_due), what a poll brought
-- (_feed_polled: Atom entries to fetch, or a document to ingest), what a
-- telegram fetch brought (_feed_document_fetched).  One bad feed or
-- document is recorded and counted; nothing else is affected.

CREATE TABLE status_checker.feed (
    feed_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('jma_atom', 'p2pquake', 'usgs_geojson')),
    url                 text NOT NULL UNIQUE CHECK (url ~ '^https?://'),
    poll_interval       interval NOT NULL CHECK (poll_interval >= '1 second'),
    enabled             boolean NOT NULL DEFAULT true,
    etag                text,
    last_modified       text,
    next_poll_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_poll_at        timestamptz,
    last_success_at     timestamptz,
    last_error          text,
    last_error_at       timestamptz,
    consecutive_errors  integer NOT NULL DEFAULT 0,
    polls               bigint NOT NULL DEFAULT 0,
    not_modified        bigint NOT NULL DEFAULT 0,
    documents           bigint NOT NULL DEFAULT 0,
    bad_documents       bigint NOT NULL DEFAULT 0,
    events              bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.feed IS
'A feed the watcher polls (JMA Atom, P2PQuake history, USGS GeoJSON): conditional-GET state, schedule and health counters';
GRANT SELECT ON status_checker.feed TO status_checker_viewer, status_checker_operator;

CREATE TABLE status_checker.feed_document (
    url          text PRIMARY KEY,             -- a JMA telegram URL is fetched once
    feed_id      bigint NOT NULL REFERENCES status_checker.feed ON DELETE CASCADE,
    product      text,
    listed_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    entry_updated timestamptz,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ingested', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    fetched_at   timestamptz,
    bytes        integer,
    events       integer,
    error        text
);
CREATE INDEX ON status_checker.feed_document (feed_id, state);
COMMENT ON TABLE status_checker.feed_document IS
'Telegrams listed by a JMA Atom feed: fetched once each (pending, ingested, or failed after 3 attempts)';

CREATE FUNCTION status_checker.add_feed(kind text, url text, poll_interval interval DEFAULT '60 seconds')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('add_feed', ARRAY['kind', 'url', 'poll_interval'],
                                     ARRAY[add_feed.kind, add_feed.url, add_feed.poll_interval::text]);
    IF add_feed.kind NOT IN ('jma_atom', 'p2pquake', 'usgs_geojson') THEN
        RAISE EXCEPTION 'unknown feed kind %', quote_literal(add_feed.kind)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use jma_atom, p2pquake or usgs_geojson.';
    END IF;
    IF add_feed.url !~ '^https?://[^/\s]+' OR length(add_feed.url) > 2000 THEN
        RAISE EXCEPTION 'invalid feed URL %', quote_literal(add_feed.url)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A feed URL is http:// or https://.';
    END IF;
    IF add_feed.poll_interval < '1 second' THEN
        RAISE EXCEPTION 'poll interval % is shorter than one second', add_feed.poll_interval
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'JMA asks for at most one poll a minute; USGS caches for 60 seconds.';
    END IF;
    INSERT INTO status_checker.feed (kind, url, poll_interval)
    VALUES (add_feed.kind, add_feed.url, add_feed.poll_interval)
    RETURNING feed_id INTO v_id;
    RETURN v_id;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'feed % already exists', quote_literal(add_feed.url) USING ERRCODE = 'unique_violation';
END
$$;
COMMENT ON FUNCTION status_checker.add_feed(text, text, interval) IS
'Add a feed for the watcher to poll: jma_atom (JMA''s eqvol.xml for earthquakes, tsunamis and volcanoes, extra.xml for '
'weather, landslide, rain and flood warnings, or their long-term *_l.xml), p2pquake (/v2/history) or usgs_geojson '
'(summary feed); returns the feed id';
GRANT EXECUTE ON FUNCTION status_checker.add_feed(text, text, interval) TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.remove_feed(feed_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('remove_feed', ARRAY['feed_id'], ARRAY[remove_feed.feed_id::text]);
    DELETE FROM status_checker.feed f WHERE f.feed_id = remove_feed.feed_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feed % does not exist', remove_feed.feed_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.remove_feed(bigint) IS 'Stop polling a feed and forget its documents (events stay)';
GRANT EXECUTE ON FUNCTION status_checker.remove_feed(bigint) TO status_checker_api, status_checker_operator;

CREATE VIEW status_checker.feed_health WITH (security_invoker = true) AS
SELECT f.feed_id, f.kind, f.url, f.enabled, f.poll_interval,
       f.last_poll_at, f.last_success_at, f.last_error, f.last_error_at, f.consecutive_errors,
       f.next_poll_at, f.polls, f.not_modified, f.documents, f.bad_documents, f.events,
       (SELECT count(*) FROM status_checker.feed_document d WHERE d.feed_id = f.feed_id AND d.state = 'pending') AS pending_documents,
       w.pid AS watcher_pid, w.backend_start AS watcher_started, w.state_change AS watcher_last_active,
       CASE WHEN NOT f.enabled THEN 'disabled'
            WHEN w.pid IS NULL THEN 'no watcher'
            WHEN f.consecutive_errors > 0 THEN 'failing'
            WHEN f.last_success_at IS NULL THEN 'starting'
            ELSE 'ok' END AS health
FROM status_checker.feed f
LEFT JOIN LATERAL (
    SELECT a.pid, a.backend_start, a.state_change FROM pg_catalog.pg_stat_activity a
    WHERE a.backend_type = 'status_checker feed watcher' AND a.datname = current_database()
    LIMIT 1) w ON true;
COMMENT ON VIEW status_checker.feed_health IS
'Per feed: last poll, last success, last error, consecutive errors, documents and events ingested, and whether the watcher runs';
GRANT SELECT ON status_checker.feed_health TO status_checker_viewer, status_checker_operator;

-- ------------------------------------------------ called by the watcher

CREATE FUNCTION status_checker._feed_due()
    RETURNS TABLE (feed_id bigint, kind text, url text, etag text, last_modified text)
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT f.feed_id, f.kind, f.url, f.etag, f.last_modified FROM status_checker.feed f
    WHERE f.enabled AND f.next_poll_at <= pg_catalog.clock_timestamp()
    ORDER BY f.next_poll_at;
END;
COMMENT ON FUNCTION status_checker._feed_due() IS 'Internal (feed watcher): the feeds due for a poll';

CREATE FUNCTION status_checker._feed_next_wait() RETURNS double precision
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT coalesce(extract(epoch FROM min(f.next_poll_at) - pg_catalog.clock_timestamp())::double precision, 3600)
    FROM status_checker.feed f WHERE f.enabled;
END;
COMMENT ON FUNCTION status_checker._feed_next_wait() IS 'Internal (feed watcher): seconds until the next feed is due';

CREATE FUNCTION status_checker._feed_failed(p_feed bigint, p_error text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    -- exponential backoff with jitter: interval × 2^errors, at most one hour
    UPDATE status_checker.feed f
    SET polls = f.polls + 1, last_poll_at = pg_catalog.now(),
        last_error = left(p_error, 1000), last_error_at = pg_catalog.now(),
        consecutive_errors = f.consecutive_errors + 1,
        next_poll_at = pg_catalog.clock_timestamp()
            + least(f.poll_interval * power(2, least(f.consecutive_errors + 1, 12)), interval '1 hour')
              * (0.75 + random() * 0.5)
    WHERE f.feed_id = p_feed;
END;
COMMENT ON FUNCTION status_checker._feed_failed(bigint, text) IS
'Internal (feed watcher): record a failed poll and back off exponentially (with jitter, at most an hour)';

-- Record a problem with a feed's document: the message, whether it counts
-- as a bad document, and whether the feed itself is failing (its own body
-- is bad) rather than one telegram it listed.
CREATE FUNCTION status_checker._feed_note_error(p_feed bigint, p_error text, p_bad boolean, p_failing boolean)
    RETURNS void
    LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    UPDATE status_checker.feed x
    SET last_error = left(p_error, 1000), last_error_at = pg_catalog.now(),
        bad_documents = x.bad_documents + p_bad::integer,
        consecutive_errors = CASE WHEN p_failing THEN 1 ELSE x.consecutive_errors END
    WHERE x.feed_id = p_feed;
END;
COMMENT ON FUNCTION status_checker._feed_note_error(bigint, text, boolean, boolean) IS
'Internal (feed watcher): record a bad document of a feed';

-- _feed_polled (what a poll brought) and _feed_product_wanted (the JMA
-- products the watcher fetches): src/feeds/watcher_poll.sql (1.1.0).

CREATE FUNCTION status_checker._feed_document_fetched(p_url text, p_status integer, p_body bytea, p_error text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d status_checker.feed_document;
    n integer;
    err text;
BEGIN
    SELECT * INTO d FROM status_checker.feed_document x WHERE x.url = p_url FOR UPDATE;
    IF NOT FOUND OR d.state <> 'pending' THEN
        RETURN;
    END IF;
    IF p_status <> 200 OR p_body IS NULL THEN
        err := coalesce(p_error, 'HTTP ' || p_status);
        UPDATE status_checker.feed_document x
        SET attempts = x.attempts + 1, error = left(err, 1000), fetched_at = pg_catalog.now(),
            state = CASE WHEN x.attempts + 1 >= 3 THEN 'failed' ELSE 'pending' END
        WHERE x.url = p_url;
        PERFORM status_checker._feed_note_error(d.feed_id, p_url || ': ' || err, d.attempts + 1 >= 3, false);
        RETURN;
    END IF;
    BEGIN
        n := status_checker.ingest_feed_document('jma', p_body);
        UPDATE status_checker.feed_document x
        SET state = 'ingested', attempts = x.attempts + 1, fetched_at = pg_catalog.now(),
            bytes = octet_length(p_body), events = n, error = NULL
        WHERE x.url = p_url;
        UPDATE status_checker.feed x SET documents = x.documents + 1, events = x.events + n WHERE x.feed_id = d.feed_id;
    EXCEPTION WHEN OTHERS THEN
        -- a bad telegram is not fetched again: it would be just as bad
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        UPDATE status_checker.feed_document x
        SET state = 'failed', attempts = x.attempts + 1, fetched_at = pg_catalog.now(),
            bytes = octet_length(p_body), error = left(err, 1000)
        WHERE x.url = p_url;
        PERFORM status_checker._feed_note_error(d.feed_id, p_url || ': ' || err, true, false);
    END;
END
$$;
COMMENT ON FUNCTION status_checker._feed_document_fetched(text, integer, bytea, text) IS
'Internal (feed watcher): ingest a fetched telegram, or count a failed fetch (failed for good after 3 attempts)';

-- _feed_document_refused: src/feeds/telegram_origin.sql (0.10.1).
