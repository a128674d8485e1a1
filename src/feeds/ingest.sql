-- src/feeds/ingest.sql — storing a feed document: its events (earthquake,
-- tsunami) or, for a warning telegram, the episodes of the hazards it
-- concerns (src/feeds/warnings.sql); then the trigger rules.
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades (1.1.0 adds the warning telegrams).

CREATE OR REPLACE FUNCTION status_checker.ingest_feed_document(source text, body bytea) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    model jsonb;
    ev jsonb;
    changed integer := 0;
    v_event bigint;
    touched bigint[] := '{}';
BEGIN
    -- the body is only tested for NULL (as import_sites does): no text copy of a large document
    PERFORM status_checker._no_nulls('ingest_feed_document', ARRAY['source', 'body'],
                                     ARRAY[ingest_feed_document.source, nullif((ingest_feed_document.body IS NOT NULL)::text, 'false')]);
    IF ingest_feed_document.source = 'jma_atom' THEN
        RAISE EXCEPTION 'an Atom feed lists telegrams but holds no event'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Ingest each telegram with source jma, or let the feed watcher follow the feed (add_feed).';
    END IF;
    model := status_checker._parse_feed_document(ingest_feed_document.source, ingest_feed_document.body);
    FOR ev IN SELECT x FROM jsonb_array_elements(model -> 'events') x LOOP
        IF ev ? 'warnings' THEN
            -- a warning telegram: the episodes of the hazards it concerns
            touched := touched || status_checker._ingest_warnings(ev);
            CONTINUE;
        END IF;
        v_event := status_checker._ingest_event(ev);
        IF v_event IS NOT NULL THEN
            touched := touched || v_event;
        END IF;
    END LOOP;
    changed := cardinality(touched);
    -- rules see each changed event once, after all of the document is stored
    PERFORM status_checker._fire_rules(t) FROM (SELECT DISTINCT unnest(touched) t ORDER BY 1) s;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION status_checker.ingest_feed_document(text, bytea) IS
'Parse one feed document (jma: a JMA XML telegram, earthquake, tsunami or warning; p2pquake: a /v2/history array or '
'one object; usgs: a GeoJSON FeatureCollection or Feature), store its events (warning telegrams: the episodes of the '
'hazards they concern) idempotently and run the trigger rules; returns events created or changed';
GRANT EXECUTE ON FUNCTION status_checker.ingest_feed_document(text, bytea) TO status_checker_api, status_checker_operator;

CREATE OR REPLACE FUNCTION status_checker.ingest_feed_document(source text, body text) RETURNS integer
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN status_checker.ingest_feed_document(source, convert_to(body, 'UTF8'));
COMMENT ON FUNCTION status_checker.ingest_feed_document(text, text) IS
'Parse one feed document given as text (jma, p2pquake or usgs), store its events idempotently and run the trigger '
'rules; returns events created or changed';
GRANT EXECUTE ON FUNCTION status_checker.ingest_feed_document(text, text) TO status_checker_api, status_checker_operator;
