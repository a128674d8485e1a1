-- src/feeds/ingest.sql — storing a feed document: its events (earthquake,
-- tsunami) or, for a warning telegram, the episodes of the hazards it
-- concerns (src/feeds/warnings.sql); then the trigger rules.
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades (1.1.0 adds the warning telegrams and the one
-- rule for keeping a product's newest revision).

-- A product's revision of an event (the model's product, serial, issue
-- time, info type and status), kept if it is newer than the one stored:
-- the same or an older revision changes nothing (false); a 取消 repeats
-- the serial it withdraws, so it wins a tie.  Earthquake events and warning
-- episodes alike.
CREATE OR REPLACE FUNCTION status_checker._store_product(p_event bigint, ev jsonb, p_detail integer, p_document jsonb)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    v_product text := ev ->> 'product';
    v_serial integer := (ev ->> 'serial')::integer;
    v_issued timestamptz := (ev ->> 'issued_at')::timestamptz;
    v_info text := ev ->> 'info_type';
    old status_checker.event_product;
BEGIN
    SELECT * INTO old FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.product = v_product FOR UPDATE;
    IF FOUND THEN
        IF (coalesce(v_serial, 0), v_issued, v_info = 'cancelled')
           <= (coalesce(old.serial, 0), old.issued_at, old.info_type = 'cancelled') THEN
            RETURN false;
        END IF;
        DELETE FROM status_checker.event_product p WHERE p.event_id = p_event AND p.product = v_product;
    END IF;
    INSERT INTO status_checker.event_product
        (event_id, product, serial, issued_at, info_type, status, detail_level, message_id, document)
    VALUES (p_event, v_product, v_serial, v_issued, v_info, ev ->> 'status', p_detail, ev ->> 'message_id', p_document);
    RETURN true;
END
$$;
COMMENT ON FUNCTION status_checker._store_product(bigint, jsonb, integer, jsonb) IS
'Internal: keep a product''s revision of an event or warning episode if it is newer than the stored one; false if not';

-- Store one event of the model.  Returns the event's id if anything
-- changed, else NULL.
CREATE OR REPLACE FUNCTION status_checker._ingest_event(ev jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    v_source text := ev ->> 'source';
    v_kind text := ev ->> 'kind';
    v_id text := ev ->> 'source_event_id';
    v_product text := ev ->> 'product';
    v_serial integer := (ev ->> 'serial')::integer;
    v_issued timestamptz := (ev ->> 'issued_at')::timestamptz;
    v_info text := ev ->> 'info_type';
    v_aliases text[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(ev -> 'aliases', '[]')));
    v_event bigint;
BEGIN
    IF v_source IS NULL OR v_kind IS NULL OR v_id IS NULL OR v_product IS NULL OR v_issued IS NULL THEN
        RAISE EXCEPTION 'incomplete event model: %', left(ev::text, 200) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- USGS: an event may come back under another preferred id; match any alias
    IF v_source = 'usgs' THEN
        SELECT e.event_id INTO v_event FROM status_checker.event e
        WHERE e.source = 'usgs' AND e.kind = v_kind
          AND (e.source_event_id = v_id OR e.aliases && v_aliases)
        ORDER BY e.event_id LIMIT 1 FOR UPDATE;
    ELSE
        SELECT e.event_id INTO v_event FROM status_checker.event e
        WHERE e.source = v_source AND e.kind = v_kind AND e.source_event_id = v_id FOR UPDATE;
    END IF;
    IF v_event IS NULL THEN
        INSERT INTO status_checker.event (source, kind, source_event_id, aliases, status)
        VALUES (v_source, v_kind, v_id, v_aliases, 'actual')
        ON CONFLICT (source, kind, source_event_id) DO NOTHING
        RETURNING event_id INTO v_event;
        IF v_event IS NULL THEN   -- a concurrent ingest created it
            SELECT e.event_id INTO v_event FROM status_checker.event e
            WHERE e.source = v_source AND e.kind = v_kind AND e.source_event_id = v_id FOR UPDATE;
        END IF;
    END IF;

    IF NOT status_checker._store_product(v_event, ev, coalesce((ev ->> 'detail_level')::integer, 0),
                                         ev - 'intensities' - 'tsunami') THEN
        RETURN NULL;
    END IF;

    IF v_info <> 'cancelled' THEN
        INSERT INTO status_checker.event_product_intensity
            (event_id, product, ord, scope, code, name, shindo, incomplete)
        SELECT v_event, v_product, i.ord, i.x ->> 'scope',
               coalesce(i.x ->> 'code', CASE i.x ->> 'scope'
                   -- P2PQuake gives names: map them through JMA's tables
                   WHEN 'area' THEN (SELECT a.code FROM status_checker.jma_area a WHERE a.name = i.x ->> 'name' LIMIT 1)
                   WHEN 'station' THEN (SELECT s.code FROM status_checker.jma_station s WHERE s.name = i.x ->> 'name' LIMIT 1)
               END),
               i.x ->> 'name', (i.x ->> 'shindo')::status_checker.shindo, coalesce((i.x ->> 'incomplete')::boolean, false)
        FROM jsonb_array_elements(coalesce(ev -> 'intensities', '[]')) WITH ORDINALITY AS i(x, ord);
        -- P2PQuake DetailScale lists stations only: derive their municipalities
        IF v_source = 'p2pquake' AND NOT EXISTS (
            SELECT 1 FROM status_checker.event_product_intensity i
            WHERE i.event_id = v_event AND i.product = v_product AND i.scope IN ('city', 'area')) THEN
            INSERT INTO status_checker.event_product_intensity
                (event_id, product, ord, scope, code, name, shindo, incomplete)
            SELECT v_event, v_product, 100000 + row_number() OVER (ORDER BY m.code), 'city', m.code, min(m.name),
                   status_checker.max(i.shindo), bool_or(i.incomplete)
            FROM status_checker.event_product_intensity i
            JOIN status_checker.jma_station s ON s.code = i.code
            JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
            WHERE i.event_id = v_event AND i.product = v_product AND i.scope = 'station'
            GROUP BY m.code;
        END IF;
        INSERT INTO status_checker.event_product_tsunami
            (event_id, product, ord, code, name, kind_code, kind_name, last_kind_code,
             max_height_m, max_height_text, first_arrival, condition)
        SELECT v_event, v_product, t.ord, t.x ->> 'code', t.x ->> 'name', t.x ->> 'kind_code', t.x ->> 'kind_name',
               t.x ->> 'last_kind_code', (t.x ->> 'max_height_m')::numeric, t.x ->> 'max_height_text',
               (t.x ->> 'first_arrival')::timestamptz, coalesce(t.x ->> 'first_condition', t.x ->> 'max_condition')
        FROM jsonb_array_elements(coalesce(ev -> 'tsunami', '[]')) WITH ORDINALITY AS t(x, ord);
    END IF;

    PERFORM status_checker._recompute_event(v_event, v_aliases);
    RETURN v_event;
END
$$;
COMMENT ON FUNCTION status_checker._ingest_event(jsonb) IS
'Internal: store one event of the parsed model (idempotent per product revision); returns the event id if anything changed, else NULL';

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
