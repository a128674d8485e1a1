-- status_checker 0.1.0 → 0.2.0 — generated from src/*/*.sql by the Makefile; do not edit.
\echo Use "ALTER EXTENSION status_checker UPDATE" to load this file. \quit

-- ---- src/requests/upgrade-0.1.0--0.2.0.sql
-- src/requests/upgrade-0.1.0--0.2.0.sql — the changes 0.2.0 makes to
-- objects of 0.1.0 (upgrade script only; a fresh install creates them so).
-- request_target loses its foreign key to site: src/requests/targets.sql
-- guards deletions instead.
ALTER TABLE status_checker.request_target DROP CONSTRAINT IF EXISTS request_target_tenant_id_site_id_fkey;
-- requests made by a rule record why each site was asked
ALTER TABLE status_checker.request_target ADD COLUMN asked_shindo status_checker.shindo, ADD COLUMN asked_reason text;

-- ---- src/requests/targets.sql
-- src/requests/targets.sql — who may insert request targets, and the guard
-- that keeps an asked site from being deleted.
--
-- request_target has no foreign key to site (its per-row check was the
-- largest single cost of asking 100,000 sites at once).  Instead, a site
-- that a request asked cannot be deleted: the BEFORE DELETE trigger below
-- looks for targets of the site.  A tenant-level advisory lock closes the
-- race a foreign key's row lock would have closed: functions that insert
-- targets hold it shared (_lock_targets), deleting a site takes it
-- exclusively, so a deletion waits for concurrent insertions to commit and
-- then sees their targets.  Written as CREATE OR REPLACE so that the same
-- text serves the install script and the upgrade from 0.1.0.

CREATE OR REPLACE FUNCTION status_checker._targets_lock_key(p_tenant_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN (p_tenant_id % 2147483647)::integer;
COMMENT ON FUNCTION status_checker._targets_lock_key(bigint) IS
'Internal: the advisory lock key (with class 1400000001) of a tenant''s request targets';

CREATE OR REPLACE FUNCTION status_checker._lock_targets(p_tenant_id bigint) RETURNS void
    LANGUAGE sql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN pg_catalog.pg_advisory_xact_lock_shared(1400000001, status_checker._targets_lock_key(p_tenant_id));
COMMENT ON FUNCTION status_checker._lock_targets(bigint) IS
'Internal: taken (shared, until commit) by every function that inserts request targets of a tenant';

CREATE OR REPLACE FUNCTION status_checker._site_delete_guard() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_req bigint;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(1400000001, status_checker._targets_lock_key(OLD.tenant_id));
    SELECT t.request_id INTO v_req FROM status_checker.request_target t
    WHERE t.tenant_id = OLD.tenant_id AND t.site_id = OLD.site_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'site % is a target of request % and cannot be deleted', quote_literal(OLD.code), v_req
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = 'Requests keep the sites they asked, with their reports.';
    END IF;
    RETURN OLD;
END
$$;
COMMENT ON FUNCTION status_checker._site_delete_guard() IS
'Internal: refuses to delete a site that a request asked (instead of a foreign key from request_target)';

DROP TRIGGER IF EXISTS site_delete_guard ON status_checker.site;
CREATE TRIGGER site_delete_guard BEFORE DELETE ON status_checker.site
    FOR EACH ROW EXECUTE FUNCTION status_checker._site_delete_guard();

CREATE OR REPLACE FUNCTION status_checker.create_request(
    tenant_id bigint, form_id bigint, title text, deadline timestamptz,
    target jsonb DEFAULT '{"all": true}', drill boolean DEFAULT false, message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_n integer;
BEGIN
    PERFORM status_checker._require_tenant(create_request.tenant_id);
    IF create_request.form_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM status_checker.form f
        WHERE f.tenant_id = create_request.tenant_id AND f.form_id = create_request.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', coalesce(create_request.form_id::text, 'NULL'), create_request.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF create_request.title IS NULL OR btrim(create_request.title) = '' OR length(create_request.title) > 200 THEN
        RAISE EXCEPTION 'invalid request title %', coalesce(quote_literal(create_request.title), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A title has 1 to 200 characters and is not blank.';
    END IF;
    IF create_request.deadline IS NULL OR create_request.deadline <= pg_catalog.now() THEN
        RAISE EXCEPTION 'the deadline % is not in the future', coalesce(create_request.deadline::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(create_request.message) > 5000 THEN
        RAISE EXCEPTION 'the message has % characters; at most 5000 are allowed', length(create_request.message)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM status_checker._lock_targets(create_request.tenant_id);
    INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec)
    VALUES (create_request.tenant_id, create_request.form_id, create_request.title, create_request.message,
            create_request.deadline, coalesce(create_request.drill, false),
            coalesce(create_request.target, '{"all": true}'))
    RETURNING request_id INTO v_id;

    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id)
    SELECT DISTINCT create_request.tenant_id, v_id, t.site_id
    FROM status_checker._resolve_targets(create_request.tenant_id, coalesce(create_request.target, '{"all": true}')) t
    ORDER BY 3;   -- in key order: index insertions stay on hot pages
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'the target % selects no sites', coalesce(create_request.target, '{"all": true}')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Check the target: sites need a municipality code for municipality and area targets.';
    END IF;
    UPDATE status_checker.request r SET targets = v_n WHERE r.tenant_id = create_request.tenant_id AND r.request_id = v_id;
    INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
    SELECT create_request.tenant_id, v_id, g FROM generate_series(0, 63) g;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_request(bigint, bigint, text, timestamptz, jsonb, boolean, text) IS
'Create a report request for the sites the target selects ({"all":true}, {"groups":[ids]} with descendants, '
'{"sites":[codes]}, {"municipalities":[codes]}, {"areas":[JMA area codes]}); targets are resolved now. Returns the request id';


-- ---- src/feeds/feeds.sql
-- src/feeds/feeds.sql — disaster events from JMA, P2PQuake and USGS feeds.
--
-- Global data (no tenant): an event, the latest document of each of its
-- products (VXSE51, VXSE52, VXSE53, VTSE41 … for JMA; ScalePrompt,
-- DetailScale … for P2PQuake; summary/detail for USGS), and the
-- intensities and tsunami warnings each product reported.  One quake's
-- telegrams share an event through (source, kind, source_event_id); a
-- product's newer revision replaces its older one; the event's own fields
-- are recomputed from its products after every change.  The parsers are C
-- (src/feeds/feed_*.c); _parse_feed_document returns their event model as
-- jsonb and ingest_feed_document stores it.

CREATE TABLE status_checker.event (
    event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source           text NOT NULL CHECK (source IN ('jma', 'p2pquake', 'usgs')),
    kind             text NOT NULL,
    source_event_id  text NOT NULL,
    aliases          text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL CHECK (status IN ('actual', 'training', 'test', 'cancelled')),
    origin_time      timestamptz,
    epicenter_name   text,
    epicenter_code   text,
    lat              double precision,
    lon              double precision,
    depth_km         double precision,
    magnitude        numeric(3,1),
    max_shindo       status_checker.shindo,
    headline         text,
    foreign_quake    boolean NOT NULL DEFAULT false,
    best_product     text,                 -- the product whose intensities count
    detail_level     integer NOT NULL DEFAULT 0,   -- 0 none, 1 areas, 2 municipalities
    extra            jsonb NOT NULL DEFAULT '{}',
    revision         integer NOT NULL DEFAULT 0,   -- 1 after the first document
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (source, kind, source_event_id)
);
CREATE INDEX ON status_checker.event USING gin (aliases) WHERE source = 'usgs';
CREATE INDEX ON status_checker.event (origin_time);
COMMENT ON TABLE status_checker.event IS
'A disaster event (earthquake, tsunami, EEW) as its feed reported it; one row per (source, kind, source event id)';

CREATE TABLE status_checker.event_product (
    event_id      bigint NOT NULL REFERENCES status_checker.event ON DELETE CASCADE,
    product       text NOT NULL,
    serial        integer,
    issued_at     timestamptz NOT NULL,
    info_type     text NOT NULL CHECK (info_type IN ('issued', 'corrected', 'cancelled')),
    status        text NOT NULL CHECK (status IN ('actual', 'training', 'test')),
    detail_level  integer NOT NULL DEFAULT 0,
    message_id    text,
    document      jsonb NOT NULL,          -- the parsed model, without intensities
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (event_id, product)
);
COMMENT ON TABLE status_checker.event_product IS
'The latest document of each product of an event (highest serial, then latest issue time); older revisions are replaced';

CREATE TABLE status_checker.event_product_intensity (
    event_id    bigint NOT NULL,
    product     text NOT NULL,
    ord         integer NOT NULL,
    scope       text NOT NULL CHECK (scope IN ('pref', 'area', 'city', 'station')),
    code        text,
    name        text,
    shindo      status_checker.shindo,
    incomplete  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, product, ord),
    FOREIGN KEY (event_id, product) REFERENCES status_checker.event_product ON DELETE CASCADE
);
CREATE INDEX ON status_checker.event_product_intensity (event_id, product, scope, code);
COMMENT ON TABLE status_checker.event_product_intensity IS
'Intensities per prefecture, area, municipality and station as one product of an event reported them';

CREATE TABLE status_checker.event_product_tsunami (
    event_id        bigint NOT NULL,
    product         text NOT NULL,
    ord             integer NOT NULL,
    code            text,
    name            text,
    kind_code       text,
    kind_name       text,
    last_kind_code  text,
    max_height_m    numeric,
    max_height_text text,
    first_arrival   timestamptz,
    condition       text,
    PRIMARY KEY (event_id, product, ord),
    FOREIGN KEY (event_id, product) REFERENCES status_checker.event_product ON DELETE CASCADE
);
COMMENT ON TABLE status_checker.event_product_tsunami IS
'Tsunami warnings, advisories and forecasts per 津波予報区 as one product reported them';

CREATE VIEW status_checker.disaster_event WITH (security_invoker = true) AS
SELECT e.event_id, e.source, e.source_event_id, e.kind, e.status, e.origin_time,
       e.epicenter_name, e.lat, e.lon, e.depth_km, e.magnitude, e.max_shindo, e.headline,
       e.revision, e.updated_at,
       e.best_product, e.detail_level, e.foreign_quake, e.aliases, e.extra
FROM status_checker.event e;
COMMENT ON VIEW status_checker.disaster_event IS
'Disaster events from the feeds: source and its event id, kind, status (actual, training, test, cancelled), '
'origin time, epicentre, depth, magnitude (NULL when unknown), maximum shindo, headline, revision';

CREATE VIEW status_checker.event_intensity WITH (security_invoker = true) AS
SELECT i.event_id, i.scope, i.code, i.name, i.shindo, i.incomplete, i.product
FROM status_checker.event e
JOIN status_checker.event_product_intensity i ON i.event_id = e.event_id AND i.product = e.best_product;
COMMENT ON VIEW status_checker.event_intensity IS
'Observed intensities of each event per prefecture, area, municipality (city) and station, from its most detailed '
'current product; incomplete = JMA says 震度5弱 or more may have been observed but not received';

CREATE VIEW status_checker.event_tsunami WITH (security_invoker = true) AS
SELECT t.event_id, t.code, t.name, t.kind_code, t.kind_name, t.last_kind_code,
       t.max_height_m, t.max_height_text, t.first_arrival, t.condition, t.product
FROM status_checker.event e
JOIN status_checker.event_product p ON p.event_id = e.event_id AND p.info_type <> 'cancelled'
JOIN status_checker.event_product_tsunami t ON t.event_id = p.event_id AND t.product = p.product
WHERE e.kind = 'tsunami';
COMMENT ON VIEW status_checker.event_tsunami IS
'Tsunami warning kinds per 津波予報区 (52/53 大津波警報, 51 津波警報, 62 津波注意報, 7x 津波予報, 50/60 解除)';

-- --------------------------------------------------------------- parsing

CREATE FUNCTION status_checker._parse_feed_document(source text, body bytea) RETURNS jsonb
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_parse_feed_document';
COMMENT ON FUNCTION status_checker._parse_feed_document(text, bytea) IS
'Internal: parse one feed document into the event model (jsonb) without storing anything';

CREATE FUNCTION status_checker.parse_feed_document(source text, body text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN status_checker._parse_feed_document(source, convert_to(body, 'UTF8'));
COMMENT ON FUNCTION status_checker.parse_feed_document(text, text) IS
'Parse one feed document (source jma, jma_atom, p2pquake or usgs) and return its event model as jsonb; stores nothing';

-- ---------------------------------------------------------------- storing

-- Store one event of the model.  Returns the event's id if anything
-- changed, else NULL.
CREATE FUNCTION status_checker._ingest_event(ev jsonb) RETURNS bigint
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
    old status_checker.event_product;
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

    SELECT * INTO old FROM status_checker.event_product p
    WHERE p.event_id = v_event AND p.product = v_product FOR UPDATE;
    IF FOUND THEN
        -- same or older revision of this product: nothing to do.  A 取消
        -- repeats the serial it withdraws, so it wins a tie.
        IF (coalesce(v_serial, 0), v_issued, v_info = 'cancelled')
           <= (coalesce(old.serial, 0), old.issued_at, old.info_type = 'cancelled') THEN
            RETURN NULL;
        END IF;
        DELETE FROM status_checker.event_product p WHERE p.event_id = v_event AND p.product = v_product;
    END IF;

    INSERT INTO status_checker.event_product
        (event_id, product, serial, issued_at, info_type, status, detail_level, message_id, document)
    VALUES (v_event, v_product, v_serial, v_issued, v_info, ev ->> 'status',
            coalesce((ev ->> 'detail_level')::integer, 0), ev ->> 'message_id',
            ev - 'intensities' - 'tsunami');

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

-- Recompute an event's fields from its current products.
CREATE FUNCTION status_checker._recompute_event(p_event bigint, p_aliases text[]) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    live integer;
    base text;
    hypo jsonb;
    best status_checker.event_product;
    latest jsonb;
BEGIN
    SELECT count(*) FILTER (WHERE p.info_type <> 'cancelled'),
           (array_agg(p.status ORDER BY p.issued_at DESC))[1]
    INTO live, base
    FROM status_checker.event_product p WHERE p.event_id = p_event;
    -- the hypocentre from the latest live product that has one
    SELECT p.document INTO hypo FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.info_type <> 'cancelled'
      AND (p.document ? 'lat' OR p.document ? 'epicenter_name' OR p.document ? 'origin_time')
    ORDER BY (p.document -> 'lat') IS NOT NULL AND p.document -> 'lat' <> 'null' DESC, p.issued_at DESC LIMIT 1;
    -- the intensities from the most detailed live product, then the latest
    SELECT * INTO best FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.info_type <> 'cancelled' AND p.detail_level > 0
    ORDER BY p.detail_level DESC, coalesce(p.serial, 0) DESC, p.issued_at DESC LIMIT 1;
    SELECT p.document INTO latest FROM status_checker.event_product p
    WHERE p.event_id = p_event AND p.info_type <> 'cancelled' ORDER BY p.issued_at DESC LIMIT 1;

    UPDATE status_checker.event e SET
        status = CASE WHEN live = 0 THEN 'cancelled' ELSE base END,
        origin_time = coalesce((hypo ->> 'origin_time')::timestamptz, e.origin_time),
        epicenter_name = coalesce(hypo ->> 'epicenter_name', e.epicenter_name),
        epicenter_code = coalesce(hypo ->> 'epicenter_code', e.epicenter_code),
        lat = coalesce((hypo ->> 'lat')::double precision, e.lat),
        lon = coalesce((hypo ->> 'lon')::double precision, e.lon),
        depth_km = coalesce((hypo ->> 'depth_km')::double precision, e.depth_km),
        magnitude = CASE WHEN hypo IS NULL THEN e.magnitude
                         ELSE round((hypo ->> 'magnitude')::numeric, 1) END,
        max_shindo = coalesce((best.document ->> 'max_shindo')::status_checker.shindo,
                              (latest ->> 'max_shindo')::status_checker.shindo, e.max_shindo),
        headline = coalesce(latest ->> 'headline', e.headline),
        foreign_quake = coalesce((latest ->> 'foreign')::boolean, e.foreign_quake),
        best_product = best.product,
        detail_level = coalesce(best.detail_level, 0),
        aliases = ARRAY(SELECT DISTINCT a FROM unnest(e.aliases || p_aliases) a ORDER BY a),
        extra = e.extra || jsonb_strip_nulls(jsonb_build_object(
                    'magnitude_text', hypo ->> 'magnitude_text', 'depth_text', hypo ->> 'depth_text',
                    'mmi', latest -> 'mmi', 'alert', latest -> 'alert', 'url', latest -> 'url',
                    'shakemap_max_mmi', latest -> 'shakemap_max_mmi', 'lifted', latest -> 'lifted',
                    'related_event_ids', latest -> 'related_event_ids', 'office', latest -> 'office',
                    'target_time', latest -> 'target_time')),
        revision = e.revision + 1,
        updated_at = pg_catalog.now()
    WHERE e.event_id = p_event;
END
$$;
COMMENT ON FUNCTION status_checker._recompute_event(bigint, text[]) IS
'Internal: recompute an event''s status, hypocentre, maximum intensity and best product from its products';

CREATE FUNCTION status_checker.ingest_feed_document(source text, body bytea) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
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
        v_event := status_checker._ingest_event(ev);
        IF v_event IS NOT NULL THEN
            changed := changed + 1;
            touched := touched || v_event;
        END IF;
    END LOOP;
    -- rules see each changed event once, after all of the document is stored
    PERFORM status_checker._fire_rules(t) FROM (SELECT DISTINCT unnest(touched) t ORDER BY 1) s;
    RETURN changed;
END
$$;
COMMENT ON FUNCTION status_checker.ingest_feed_document(text, bytea) IS
'Parse one feed document (jma: a JMA XML telegram; p2pquake: a /v2/history array or one object; usgs: a GeoJSON '
'FeatureCollection or Feature), store its events idempotently and run the trigger rules; returns events created or changed';

CREATE FUNCTION status_checker.ingest_feed_document(source text, body text) RETURNS integer
    LANGUAGE sql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN status_checker.ingest_feed_document(source, convert_to(body, 'UTF8'));
COMMENT ON FUNCTION status_checker.ingest_feed_document(text, text) IS
'Parse one feed document given as text (jma, p2pquake or usgs), store its events idempotently and run the trigger '
'rules; returns events created or changed';

-- ---- src/feeds/watcher.sql
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
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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
'Add a feed for the watcher to poll: jma_atom (eqvol.xml), p2pquake (/v2/history) or usgs_geojson (summary feed); returns the feed id';

CREATE FUNCTION status_checker.remove_feed(feed_id bigint) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
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

-- Record a successful poll (HTTP 200 or 304).  For an Atom feed, list its
-- new telegrams; for P2PQuake and USGS, ingest the body.  Returns the
-- telegram URLs the watcher should fetch now.
CREATE FUNCTION status_checker._feed_polled(p_feed bigint, p_status integer, p_etag text, p_last_modified text, p_body bytea)
    RETURNS TABLE (url text)
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    f status_checker.feed;
    model jsonb;
    n integer;
    err text;
BEGIN
    SELECT * INTO f FROM status_checker.feed x WHERE x.feed_id = p_feed FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE status_checker.feed x
    SET polls = x.polls + 1, last_poll_at = pg_catalog.now(), last_success_at = pg_catalog.now(),
        consecutive_errors = 0,
        not_modified = x.not_modified + (p_status = 304)::integer,
        etag = CASE WHEN p_status = 200 THEN p_etag ELSE coalesce(p_etag, x.etag) END,
        last_modified = CASE WHEN p_status = 200 THEN p_last_modified ELSE coalesce(p_last_modified, x.last_modified) END,
        next_poll_at = pg_catalog.clock_timestamp() + x.poll_interval
    WHERE x.feed_id = p_feed;

    IF p_status = 200 THEN
        BEGIN
            IF f.kind = 'jma_atom' THEN
                model := status_checker._parse_feed_document('jma_atom', p_body);
                INSERT INTO status_checker.feed_document (url, feed_id, product, entry_updated)
                SELECT e ->> 'url', p_feed, e ->> 'product', (e ->> 'updated')::timestamptz
                FROM jsonb_array_elements(model -> 'entries') e
                WHERE e ->> 'product' IN ('VXSE51', 'VXSE52', 'VXSE53', 'VXSE61', 'VTSE41')
                ON CONFLICT (url) DO NOTHING;
            ELSE
                n := status_checker.ingest_feed_document(CASE f.kind WHEN 'usgs_geojson' THEN 'usgs' ELSE f.kind END, p_body);
                UPDATE status_checker.feed x SET documents = x.documents + 1, events = x.events + n WHERE x.feed_id = p_feed;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            -- the feed's own document is bad: the feed counts as failing
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            PERFORM status_checker._feed_note_error(p_feed, err, true, true);
        END;
    END IF;
    -- oldest first, so that a quake's telegrams are ingested in issue order
    RETURN QUERY SELECT d.url FROM status_checker.feed_document d
                 WHERE d.feed_id = p_feed AND d.state = 'pending'
                 ORDER BY d.entry_updated, d.url;
END
$$;
COMMENT ON FUNCTION status_checker._feed_polled(bigint, integer, text, text, bytea) IS
'Internal (feed watcher): record a successful poll; list new Atom telegrams or ingest the body; returns the URLs to fetch';

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

-- ---- src/triggers/triggers.sql
-- src/triggers/triggers.sql — trigger rules: events make requests by themselves.
--
-- A rule of a tenant says which hazard (earthquake, tsunami), from which
-- sources, from which intensity and for which sites a request is created.
-- _decide_all() is the one place that says, for an event, its rules and
-- each site of their tenants, whether the site is asked and why;
-- _fire_rules() acts on it when an event is stored or changes (all rules in
-- one pass), backtest_rule() shows it for one rule without acting, and the
-- view trigger_decision explains every evaluation.
--
-- Exactly one effect per cause: trigger_fire has one row per (rule, event)
-- and points to the one request; later telegrams of the same event only
-- add newly affected sites to it (request_target, with the intensity the
-- site was asked at and why).

CREATE TABLE status_checker.trigger_rule (
    tenant_id      bigint NOT NULL REFERENCES status_checker.tenant,
    rule_id        bigint GENERATED ALWAYS AS IDENTITY,
    name           text NOT NULL,
    form_id        bigint NOT NULL,
    hazard         text NOT NULL DEFAULT 'earthquake' CHECK (hazard IN ('earthquake', 'tsunami')),
    min_shindo     status_checker.shindo,
    tsunami_kinds  text[] NOT NULL DEFAULT '{51,52,53}',
    target         jsonb NOT NULL DEFAULT '{"all": true}',
    deadline       interval NOT NULL DEFAULT '6 hours' CHECK (deadline > '0'),
    drill          boolean NOT NULL DEFAULT false,
    repeat_within  interval CHECK (repeat_within > '0'),
    use_estimate   boolean NOT NULL DEFAULT false,
    sources        text[] NOT NULL DEFAULT '{jma}' CHECK (sources <@ '{jma,p2pquake,usgs}' AND cardinality(sources) > 0),
    message        text,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id),
    UNIQUE (rule_id),
    FOREIGN KEY (tenant_id, form_id) REFERENCES status_checker.form (tenant_id, form_id),
    CHECK (hazard <> 'earthquake' OR min_shindo IS NOT NULL)
);
COMMENT ON TABLE status_checker.trigger_rule IS
'A tenant''s rule: when an event of its hazard reaches min_shindo (or a listed tsunami warning kind) at a targeted site, ask those sites';

CREATE TABLE status_checker.trigger_fire (
    tenant_id   bigint NOT NULL,
    rule_id     bigint NOT NULL,
    event_id    bigint NOT NULL REFERENCES status_checker.event,
    request_id  bigint NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES status_checker.trigger_rule,
    FOREIGN KEY (tenant_id, request_id) REFERENCES status_checker.request (tenant_id, request_id)
);
CREATE INDEX ON status_checker.trigger_fire (event_id);
COMMENT ON TABLE status_checker.trigger_fire IS
'The one request a rule created for an event (natural key: rule, event)';

CREATE TABLE status_checker.trigger_evaluation (
    tenant_id     bigint NOT NULL,
    rule_id       bigint NOT NULL,
    event_id      bigint NOT NULL REFERENCES status_checker.event,
    evaluations   integer NOT NULL DEFAULT 1,
    last_revision integer NOT NULL,
    evaluated_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, rule_id, event_id),
    FOREIGN KEY (tenant_id, rule_id) REFERENCES status_checker.trigger_rule
);
COMMENT ON TABLE status_checker.trigger_evaluation IS
'Which rules looked at which events (hazard and source matched), for the trigger_decision view';

-- ------------------------------------------------------ estimated intensity

CREATE FUNCTION status_checker.estimate_shindo(
    magnitude numeric, depth_km double precision,
    epi_lat double precision, epi_lon double precision,
    site_lat double precision, site_lon double precision)
    RETURNS status_checker.shindo
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    -- Si & Midorikawa (1999) peak ground velocity on Vs 600 m/s rock for a
    -- crustal event, amplified to an average site (AVS30 = 400 m/s,
    -- Fujimoto & Midorikawa 2006: ×1.41), converted to JMA instrumental
    -- intensity by Midorikawa et al. (1999): I = 2.68 + 1.72 log10 PGV.
    -- The fault distance X is approximated from the hypocentral distance
    -- minus half the fault length of Utsu (1977), log10 L = 0.5 M - 1.8,
    -- but not below the depth (nor 3 km).  Mw is taken as the given
    -- magnitude, capped at 8.3 (the relation's range).  See docs/feeds.md.
    SELECT status_checker.shindo_from_instrumental(round(greatest(-3.0, least(8.0,
               2.68 + 1.72 * (lpgv + 0.150)))::numeric, 1))
    FROM (SELECT 0.58 * mw + 0.0038 * d - 1.29
                 - log(x + 0.0028 * power(10, 0.5 * mw)) - 0.002 * x AS lpgv
          FROM (SELECT mw, d, greatest(3.0, d, hypo - power(10, 0.5 * m - 1.8) / 2) AS x
                FROM (SELECT least(magnitude::double precision, 8.3) AS mw,
                             magnitude::double precision AS m,
                             greatest(depth_km, 0) AS d,
                             sqrt(power(2 * 6371.0 * asin(least(1.0, sqrt(
                                 power(sin(radians(site_lat - epi_lat) / 2), 2)
                                 + cos(radians(epi_lat)) * cos(radians(site_lat))
                                   * power(sin(radians(site_lon - epi_lon) / 2), 2)))), 2)
                                 + power(greatest(depth_km, 0), 2)) AS hypo) a) b) c;
END;
COMMENT ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) IS
'Estimated JMA seismic intensity at a site from magnitude, depth and epicentre (Si & Midorikawa 1999 attenuation, '
'average site amplification, Midorikawa et al. 1999 PGV to intensity, Utsu 1977 fault length); a rough estimate for sites without observations';

-- ---------------------------------------------------------- rule management

CREATE FUNCTION status_checker.create_trigger_rule(
    tenant_id bigint, name text, form_id bigint, min_shindo status_checker.shindo,
    target jsonb DEFAULT '{"all": true}', deadline interval DEFAULT '6 hours', drill boolean DEFAULT false,
    repeat_within interval DEFAULT NULL, use_estimate boolean DEFAULT false,
    sources text[] DEFAULT '{jma}', hazard text DEFAULT 'earthquake',
    tsunami_kinds text[] DEFAULT '{51,52,53}', message text DEFAULT NULL)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
BEGIN
    PERFORM status_checker._no_nulls('create_trigger_rule', ARRAY['tenant_id', 'name', 'form_id', 'target', 'deadline', 'drill', 'sources', 'hazard'],
        ARRAY[create_trigger_rule.tenant_id::text, create_trigger_rule.name, create_trigger_rule.form_id::text,
              create_trigger_rule.target::text, create_trigger_rule.deadline::text, create_trigger_rule.drill::text,
              create_trigger_rule.sources::text, create_trigger_rule.hazard]);
    PERFORM status_checker._require_tenant(create_trigger_rule.tenant_id);
    IF NOT EXISTS (SELECT 1 FROM status_checker.form f
                   WHERE f.tenant_id = create_trigger_rule.tenant_id AND f.form_id = create_trigger_rule.form_id) THEN
        RAISE EXCEPTION 'form % does not exist in tenant %', create_trigger_rule.form_id, create_trigger_rule.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF btrim(create_trigger_rule.name) = '' OR length(create_trigger_rule.name) > 200 THEN
        RAISE EXCEPTION 'invalid rule name %', quote_literal(create_trigger_rule.name)
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A name has 1 to 200 characters and is not blank.';
    END IF;
    IF create_trigger_rule.hazard NOT IN ('earthquake', 'tsunami') THEN
        RAISE EXCEPTION 'unknown hazard %', quote_literal(create_trigger_rule.hazard)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use earthquake or tsunami.';
    END IF;
    IF create_trigger_rule.hazard = 'earthquake' AND create_trigger_rule.min_shindo IS NULL THEN
        RAISE EXCEPTION 'an earthquake rule needs min_shindo' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'For example ''5-'' (震度5弱).';
    END IF;
    IF create_trigger_rule.deadline <= '0' THEN
        RAISE EXCEPTION 'the deadline interval % is not positive', create_trigger_rule.deadline
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF create_trigger_rule.repeat_within <= '0' THEN
        RAISE EXCEPTION 'repeat_within % is not positive', create_trigger_rule.repeat_within
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(create_trigger_rule.sources) = 0 OR NOT create_trigger_rule.sources <@ '{jma,p2pquake,usgs}' THEN
        RAISE EXCEPTION 'invalid sources %', create_trigger_rule.sources
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use one or more of jma, p2pquake, usgs.';
    END IF;
    IF create_trigger_rule.tsunami_kinds IS NULL OR cardinality(create_trigger_rule.tsunami_kinds) = 0
       OR NOT create_trigger_rule.tsunami_kinds <@ '{50,51,52,53,60,62,71,72,73}' THEN
        RAISE EXCEPTION 'invalid tsunami kinds %', create_trigger_rule.tsunami_kinds
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'JMA kind codes: 52/53 大津波警報, 51 津波警報, 62 津波注意報, 71-73 津波予報, 50/60 解除.';
    END IF;
    -- the target is checked now, as create_request checks it
    PERFORM count(*) FROM status_checker._resolve_targets(create_trigger_rule.tenant_id, create_trigger_rule.target);

    INSERT INTO status_checker.trigger_rule
        (tenant_id, name, form_id, hazard, min_shindo, tsunami_kinds, target, deadline, drill,
         repeat_within, use_estimate, sources, message)
    VALUES (create_trigger_rule.tenant_id, create_trigger_rule.name, create_trigger_rule.form_id,
            create_trigger_rule.hazard, create_trigger_rule.min_shindo, create_trigger_rule.tsunami_kinds,
            create_trigger_rule.target, create_trigger_rule.deadline, create_trigger_rule.drill,
            create_trigger_rule.repeat_within, coalesce(create_trigger_rule.use_estimate, false),
            create_trigger_rule.sources, create_trigger_rule.message)
    RETURNING rule_id INTO v_id;
    RETURN v_id;
END
$$;
COMMENT ON FUNCTION status_checker.create_trigger_rule(bigint, text, bigint, status_checker.shindo, jsonb, interval, boolean, interval, boolean, text[], text, text[], text) IS
'Create a trigger rule: when an event reaches min_shindo at targeted sites, one request asks them (drill rules fire on '
'training telegrams only; repeat_within suppresses aftershocks that shake no harder; use_estimate estimates intensity '
'where none is observed); returns the rule id';

CREATE FUNCTION status_checker.set_trigger_rule_enabled(rule_id bigint, enabled boolean) RETURNS void
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
#variable_conflict use_column
BEGIN
    PERFORM status_checker._no_nulls('set_trigger_rule_enabled', ARRAY['rule_id', 'enabled'],
                                     ARRAY[set_trigger_rule_enabled.rule_id::text, set_trigger_rule_enabled.enabled::text]);
    UPDATE status_checker.trigger_rule r SET enabled = set_trigger_rule_enabled.enabled
    WHERE r.rule_id = set_trigger_rule_enabled.rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trigger rule % does not exist', set_trigger_rule_enabled.rule_id USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.set_trigger_rule_enabled(bigint, boolean) IS
'Enable or disable a trigger rule; a disabled rule creates no requests';

-- ------------------------------------------------------------- decisions

-- For an event and a set of rules: every site of each rule's tenant with
-- its intensity, whether it is asked, and why.  decision: ask (would be
-- asked now), asked (already asked for this event), skip.  One statement
-- for all rules, so that an event that concerns a hundred tenants costs one
-- pass over their sites (docs/benchmarks.md); _decide, backtest_rule and
-- the trigger_decision view are this function for one rule.
CREATE FUNCTION status_checker._decide_all(p_event bigint, p_rules bigint[])
    RETURNS TABLE (rule_id bigint, tenant_id bigint, site_id bigint, site_code text,
                   shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    -- the plan's cost estimate invites JIT compilation, which costs more
    -- than it saves: 0.23 s of start-up for one event asking 100,000 sites
    SET jit = off AS $$
#variable_conflict use_column
DECLARE
    e status_checker.event;
    observed jsonb;     -- code → [shindo, incomplete, name] at the level that counts
    warned jsonb;       -- 津波予報区 code → [kind code, kind name, area name]
    e_time timestamptz;
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event % does not exist', coalesce(p_event::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    e_time := coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at);
    -- a jsonb map built once: each site then costs one probe, not a join
    -- whose estimates (fresh rows, no statistics yet) mislead the planner
    SELECT jsonb_object_agg(i.code, jsonb_build_array(i.shindo::text, i.incomplete, i.name))
    INTO observed
    FROM (SELECT x.code, status_checker.max(x.shindo) AS shindo, bool_or(x.incomplete) AS incomplete, min(x.name) AS name
          FROM status_checker.event_product_intensity x
          WHERE x.event_id = e.event_id AND x.product = e.best_product AND x.code IS NOT NULL
            AND x.scope = CASE WHEN e.detail_level >= 2 THEN 'city' ELSE 'area' END
          GROUP BY x.code) i;
    IF e.kind = 'tsunami' THEN
        SELECT jsonb_object_agg(t.code, jsonb_build_array(t.kind_code, t.kind_name, t.name)) INTO warned
        FROM (SELECT DISTINCT ON (x.code) x.code, x.kind_code, x.kind_name, x.name
              FROM status_checker.event_tsunami x WHERE x.event_id = e.event_id AND x.code IS NOT NULL
              ORDER BY x.code, x.kind_code IN ('50', '60') OR x.kind_code LIKE '7%', x.kind_code DESC) t;
    END IF;

    RETURN QUERY
    WITH rules AS (
        SELECT r.*, r.target = '{"all": true}'::jsonb AS all_sites,
               CASE
                   WHEN NOT r.enabled THEN 'rule disabled'
                   WHEN e.kind <> r.hazard THEN format('event is a %s; the rule watches %s', e.kind, r.hazard)
                   WHEN NOT e.source = ANY (r.sources) THEN format('event from %s; the rule watches %s', e.source, array_to_string(r.sources, ', '))
                   WHEN e.status = 'cancelled' THEN 'event cancelled (取消)'
                   WHEN e.status = 'test' THEN 'test telegram (試験): never triggers'
                   WHEN e.status = 'training' AND NOT r.drill THEN 'training telegram (訓練): only drill rules fire'
                   WHEN e.status = 'actual' AND r.drill THEN 'drill rule: fires on training telegrams (訓練) only'
               END AS gate
        FROM status_checker.trigger_rule r WHERE r.rule_id = ANY (p_rules)
    ), tgt AS (
        SELECT r.rule_id, t.site_id FROM rules r
        CROSS JOIN LATERAL status_checker._resolve_targets(r.tenant_id, r.target) t
        WHERE NOT r.all_sites
    ), obs AS (
        -- the event's observed intensity at each site of the tenants concerned
        SELECT s.tenant_id, s.site_id, s.code, s.municipality_code, s.lat, s.lon, s.attributes,
               m.name AS muni_name, a.name AS area_name,
               h.hit ->> 0 AS hit_shindo, coalesce((h.hit ->> 1)::boolean, false) AS hit_incomplete, h.hit ->> 2 AS hit_name
        FROM status_checker.site s
        LEFT JOIN status_checker.jma_municipality m ON m.code = s.municipality_code
        LEFT JOIN status_checker.jma_area a ON a.code = m.area_code
        CROSS JOIN LATERAL (SELECT CASE WHEN e.detail_level >= 2 THEN observed -> s.municipality_code
                                        ELSE observed -> m.area_code END AS hit) h
        WHERE s.tenant_id IN (SELECT DISTINCT r.tenant_id FROM rules r)
    ), earlier AS (
        -- aftershocks: the hardest each rule asked each site within its window
        SELECT f.rule_id, t.site_id, status_checker.max(t.asked_shindo) AS shindo, min(f.event_id) AS event_id
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id
        JOIN status_checker.event pe ON pe.event_id = f.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
        WHERE r.repeat_within IS NOT NULL AND f.event_id <> e.event_id
          AND coalesce(pe.origin_time, (pe.extra ->> 'target_time')::timestamptz, pe.created_at)
              BETWEEN e_time - r.repeat_within AND e_time
        GROUP BY f.rule_id, t.site_id
    ), asked AS (
        SELECT f.rule_id, t.site_id, t.asked_reason AS reason
        FROM rules r
        JOIN status_checker.trigger_fire f ON f.tenant_id = r.tenant_id AND f.rule_id = r.rule_id AND f.event_id = e.event_id
        JOIN status_checker.request_target t ON t.tenant_id = f.tenant_id AND t.request_id = f.request_id
    ), eff AS (
        SELECT r.rule_id, r.tenant_id, r.hazard, r.min_shindo, r.tsunami_kinds, r.repeat_within, r.gate, r.use_estimate,
               r.all_sites, o.site_id, o.code, o.municipality_code, o.muni_name, o.attributes,
               o.hit_incomplete AS incomplete,
               o.hit_shindo IS NULL AND NOT o.hit_incomplete AS estimated,
               s.basis, s.sh,
               tw.w ->> 0 AS tsunami_kind, tw.w ->> 1 AS tsunami_name, tw.w ->> 2 AS tsunami_area,
               (NOT r.all_sites AND g.site_id IS NULL) AS outside,
               p.shindo AS prev_shindo, p.event_id AS prev_event, p.site_id IS NOT NULL AS was_asked,
               asked.reason AS asked_reason
        FROM rules r
        JOIN obs o ON o.tenant_id = r.tenant_id
        LEFT JOIN tgt g ON g.rule_id = r.rule_id AND g.site_id = o.site_id
        LEFT JOIN earlier p ON p.rule_id = r.rule_id AND p.site_id = o.site_id
        LEFT JOIN asked ON asked.rule_id = r.rule_id AND asked.site_id = o.site_id
        CROSS JOIN LATERAL (SELECT CASE WHEN r.hazard = 'tsunami' THEN warned -> (o.attributes ->> 'tsunami_area') END AS w) tw
        -- OFFSET 0 keeps each of these subqueries a node of its own, so that
        -- its value is computed once per row, not once per reference to it
        -- (a pulled-up subquery repeats its expression wherever it is used)
        CROSS JOIN LATERAL (SELECT
                   CASE
                       WHEN o.hit_incomplete
                       THEN greatest(coalesce(o.hit_shindo::status_checker.shindo, '0'), '5-'::status_checker.shindo)
                       WHEN o.hit_shindo IS NOT NULL THEN o.hit_shindo::status_checker.shindo
                       WHEN r.use_estimate AND (e.detail_level = 0 OR o.municipality_code IS NULL)
                            AND e.magnitude IS NOT NULL AND e.lat IS NOT NULL AND o.lat IS NOT NULL
                       THEN status_checker.estimate_shindo(e.magnitude, coalesce(e.depth_km, 10), e.lat, e.lon, o.lat, o.lon)
                   END AS sh,
                   CASE WHEN e.detail_level >= 2 THEN 'municipality ' || coalesce(o.hit_name, o.muni_name, o.municipality_code)
                        ELSE 'area ' || coalesce(o.hit_name, o.area_name, '?') END AS basis
            OFFSET 0) s
    ), why AS (
        SELECT q.*, y.why
        FROM eff q
        CROSS JOIN LATERAL (SELECT
               CASE
                   WHEN q.gate IS NOT NULL THEN q.gate
                   WHEN q.outside THEN 'outside the rule''s target'
                   WHEN q.hazard = 'tsunami' AND q.attributes ->> 'tsunami_area' IS NULL THEN 'no tsunami forecast area (attribute tsunami_area)'
                   WHEN q.hazard = 'tsunami' AND q.tsunami_kind IS NULL THEN 'no tsunami warning for ' || (q.attributes ->> 'tsunami_area')
                   WHEN q.hazard = 'tsunami' AND NOT q.tsunami_kind = ANY (q.tsunami_kinds)
                       THEN format('%s for %s is not a kind the rule asks for', q.tsunami_name, q.tsunami_area)
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL AND q.municipality_code IS NULL
                       THEN 'no area code (the site has no municipality code)' ||
                            CASE WHEN q.use_estimate THEN ' and no coordinates or hypocentre for an estimate' ELSE '' END
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL AND q.muni_name IS NULL AND e.source <> 'usgs'
                       THEN format('no area code (municipality %s is not in JMA''s table)', q.municipality_code)
                   WHEN q.hazard = 'earthquake' AND q.sh IS NULL THEN 'no intensity observed in ' || q.basis
                   WHEN q.hazard = 'earthquake' AND q.sh < q.min_shindo
                       THEN 'below threshold: ' || status_checker.shindo_label(q.sh, 'ja') || ' '
                            || CASE WHEN q.estimated THEN 'estimated from M' || e.magnitude ELSE 'in ' || q.basis END
                            || ' < ' || status_checker.shindo_label(q.min_shindo, 'ja')
                   WHEN q.was_asked AND (q.hazard = 'tsunami' OR q.prev_shindo >= q.sh)
                       THEN format('suppressed as aftershock: asked at %s for event %s within %s',
                                   coalesce(status_checker.shindo_label(q.prev_shindo, 'ja'), 'tsunami'), q.prev_event, q.repeat_within)
               END AS why
            OFFSET 0) y
    )
    SELECT w.rule_id, w.tenant_id, w.site_id, w.code, w.sh,
           CASE WHEN w.asked_reason IS NOT NULL THEN 'asked' WHEN w.why IS NULL THEN 'ask' ELSE 'skip' END,
           CASE WHEN w.asked_reason IS NOT NULL THEN w.asked_reason
                WHEN w.why IS NOT NULL THEN w.why
                WHEN w.hazard = 'tsunami' THEN 'tsunami: ' || w.tsunami_name || ' for ' || w.tsunami_area
                ELSE status_checker.shindo_label(w.sh, 'ja')
                     || CASE WHEN w.incomplete THEN ' or more (震度５弱以上未入電)' ELSE '' END
                     || CASE WHEN w.estimated THEN ' estimated from M' || e.magnitude ELSE ' in ' || w.basis END
                     || ' ≥ ' || status_checker.shindo_label(w.min_shindo, 'ja')
           END
    FROM why w;
END
$$;
COMMENT ON FUNCTION status_checker._decide_all(bigint, bigint[]) IS
'Internal: for an event and a set of rules, each site of each rule''s tenant with its intensity and the decision (ask, asked, skip) and reason';

CREATE FUNCTION status_checker._decide(p_rule bigint, p_event bigint)
    RETURNS TABLE (site_id bigint, site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM status_checker._no_nulls('backtest_rule', ARRAY['rule_id', 'event_id'], ARRAY[p_rule::text, p_event::text]);
    IF NOT EXISTS (SELECT 1 FROM status_checker.trigger_rule x WHERE x.rule_id = p_rule) THEN
        RAISE EXCEPTION 'trigger rule % does not exist', coalesce(p_rule::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN QUERY SELECT d.site_id, d.site_code, d.shindo, d.decision, d.reason
                 FROM status_checker._decide_all(p_event, ARRAY[p_rule]) d;
END
$$;
COMMENT ON FUNCTION status_checker._decide(bigint, bigint) IS
'Internal: for a rule and an event, each site of the tenant with its intensity and the decision (ask, asked, skip) and reason';

CREATE FUNCTION status_checker.backtest_rule(rule_id bigint, event_id bigint)
    RETURNS TABLE (site_code text, shindo status_checker.shindo, decision text, reason text)
    LANGUAGE sql STABLE CALLED ON NULL INPUT SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
BEGIN ATOMIC
    SELECT d.site_code, d.shindo, d.decision, d.reason
    FROM status_checker._decide(backtest_rule.rule_id, backtest_rule.event_id) d
    ORDER BY d.decision <> 'ask', d.decision <> 'asked', d.shindo DESC NULLS LAST, d.site_code;
END;
COMMENT ON FUNCTION status_checker.backtest_rule(bigint, bigint) IS
'What the rule would do for an event, site by site, without doing it: decision ask (would be asked), asked (already '
'asked for this event) or skip, with the reason';

CREATE VIEW status_checker.trigger_decision WITH (security_invoker = true) AS
SELECT v.tenant_id, v.rule_id, r.name AS rule_name, v.event_id, f.request_id,
       d.site_code, d.shindo, d.decision, d.reason, v.evaluated_at
FROM status_checker.trigger_evaluation v
JOIN status_checker.trigger_rule r ON r.tenant_id = v.tenant_id AND r.rule_id = v.rule_id
LEFT JOIN status_checker.trigger_fire f ON f.tenant_id = v.tenant_id AND f.rule_id = v.rule_id AND f.event_id = v.event_id
CROSS JOIN LATERAL status_checker._decide(v.rule_id, v.event_id) d;
COMMENT ON VIEW status_checker.trigger_decision IS
'For each rule and each event it looked at: every site of the tenant, asked or not, and why (intensity and threshold, '
'outside target, no area code, not observed, suppressed as aftershock, training/test telegram, cancelled)';

-- ------------------------------------------------------------------ firing

CREATE FUNCTION status_checker._event_title(e status_checker.event) RETURNS text
    LANGUAGE sql STABLE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp
    RETURN left(concat_ws(' ',
        CASE WHEN e.status = 'training' THEN '【訓練】' END,
        CASE WHEN e.kind = 'tsunami' THEN '津波' WHEN e.max_shindo IS NOT NULL THEN status_checker.shindo_label(e.max_shindo, 'ja') END,
        coalesce(e.epicenter_name,
                 -- no hypocentre yet (震度速報): the most shaken area
                 (SELECT i.name FROM status_checker.event_product_intensity i
                  WHERE i.event_id = e.event_id AND i.product = e.best_product AND i.scope = 'area'
                  ORDER BY i.shindo DESC NULLS LAST, i.ord LIMIT 1),
                 e.source_event_id),
        CASE WHEN e.magnitude IS NOT NULL THEN 'M' || e.magnitude END,
        '(' || to_char(coalesce(e.origin_time, (e.extra ->> 'target_time')::timestamptz, e.created_at)
                       AT TIME ZONE 'Asia/Tokyo', 'MM/DD HH24:MI') || ' JST)'), 200);
COMMENT ON FUNCTION status_checker._event_title(status_checker.event) IS
'Internal: a short title for a request made by a rule, e.g. 震度6強 石川県能登地方 M7.6 (01/01 16:10 JST)';

-- Run every matching rule for one event (called by ingest_feed_document).
CREATE FUNCTION status_checker._fire_rules(p_event bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, status_checker, pg_temp AS $$
DECLARE
    e status_checker.event;
    rules bigint[];
    n integer;
BEGIN
    SELECT * INTO e FROM status_checker.event x WHERE x.event_id = p_event FOR UPDATE;
    IF e.status = 'cancelled' THEN
        -- a withdrawn event withdraws what it asked
        UPDATE status_checker.request q
        SET state = 'cancelled', cancelled_at = pg_catalog.now(),
            cancel_reason = format('The %s event %s was withdrawn by its source (取消).', e.source, e.source_event_id)
        FROM status_checker.trigger_fire f
        WHERE f.event_id = p_event AND q.tenant_id = f.tenant_id AND q.request_id = f.request_id AND q.state <> 'cancelled';
    END IF;

    -- the rules that look at this event (for the trigger_decision view) ...
    INSERT INTO status_checker.trigger_evaluation AS v (tenant_id, rule_id, event_id, last_revision)
    SELECT r.tenant_id, r.rule_id, e.event_id, e.revision FROM status_checker.trigger_rule r
    WHERE r.hazard = e.kind AND e.source = ANY (r.sources)
    ON CONFLICT (tenant_id, rule_id, event_id)
    DO UPDATE SET evaluations = v.evaluations + 1, last_revision = excluded.last_revision, evaluated_at = pg_catalog.now();
    -- ... and those that may act on it
    SELECT array_agg(r.rule_id ORDER BY r.rule_id) INTO rules FROM status_checker.trigger_rule r
    WHERE r.hazard = e.kind AND e.source = ANY (r.sources) AND r.enabled
      AND e.status IN ('actual', 'training') AND (e.status = 'training') = r.drill;
    IF rules IS NULL THEN
        RETURN 0;
    END IF;

    PERFORM status_checker._lock_targets(t) FROM (SELECT DISTINCT r.tenant_id FROM status_checker.trigger_rule r
                                                  WHERE r.rule_id = ANY (rules) ORDER BY 1) x(t);
    -- the sites to ask, all rules at once
    IF to_regclass('pg_temp._sc_ask') IS NULL THEN
        CREATE TEMP TABLE _sc_ask (tenant_id bigint, rule_id bigint, site_id bigint,
                                   shindo status_checker.shindo, reason text) ON COMMIT DROP;
    ELSE
        TRUNCATE pg_temp._sc_ask;
    END IF;
    INSERT INTO pg_temp._sc_ask
    SELECT d.tenant_id, d.rule_id, d.site_id, d.shindo, d.reason
    FROM status_checker._decide_all(e.event_id, rules) d WHERE d.decision = 'ask';
    ANALYZE pg_temp._sc_ask;   -- so that the joins below are planned for its size

    -- one request per rule and event: created on the first telegram that asks anyone
    WITH needed AS (
        SELECT a.tenant_id, a.rule_id FROM (SELECT DISTINCT x.tenant_id, x.rule_id FROM pg_temp._sc_ask x) a
        WHERE NOT EXISTS (SELECT 1 FROM status_checker.trigger_fire f
                          WHERE f.tenant_id = a.tenant_id AND f.rule_id = a.rule_id AND f.event_id = e.event_id)
    ), made AS (
        INSERT INTO status_checker.request (tenant_id, form_id, title, message, deadline, drill, target_spec, event_id, rule_id)
        SELECT r.tenant_id, r.form_id, status_checker._event_title(e), coalesce(r.message, e.headline),
               pg_catalog.now() + r.deadline, r.drill, jsonb_build_object('rule', r.rule_id, 'event', e.event_id),
               e.event_id, r.rule_id
        FROM needed x JOIN status_checker.trigger_rule r ON r.tenant_id = x.tenant_id AND r.rule_id = x.rule_id
        ORDER BY r.tenant_id, r.rule_id
        RETURNING tenant_id, request_id, rule_id
    ), counters AS (
        INSERT INTO status_checker.request_counter (tenant_id, request_id, slot)
        SELECT m.tenant_id, m.request_id, g FROM made m CROSS JOIN generate_series(0, 63) g
    )
    INSERT INTO status_checker.trigger_fire (tenant_id, rule_id, event_id, request_id)
    SELECT m.tenant_id, m.rule_id, e.event_id, m.request_id FROM made m;

    -- later telegrams add newly affected sites to that request, while it is
    -- open (a request a person closed or cancelled is left so)
    -- (_decide_all never asks a site twice for an event: no conflict handling)
    IF to_regclass('pg_temp._sc_open') IS NULL THEN
        CREATE TEMP TABLE _sc_open (tenant_id bigint, rule_id bigint, request_id bigint) ON COMMIT DROP;
    ELSE
        TRUNCATE pg_temp._sc_open;
    END IF;
    INSERT INTO pg_temp._sc_open
    SELECT f.tenant_id, f.rule_id, f.request_id
    FROM status_checker.trigger_fire f
    JOIN status_checker.request q ON q.tenant_id = f.tenant_id AND q.request_id = f.request_id
    WHERE f.event_id = e.event_id AND q.state = 'open';
    ANALYZE pg_temp._sc_open;
    INSERT INTO status_checker.request_target (tenant_id, request_id, site_id, asked_shindo, asked_reason)
    SELECT a.tenant_id, o.request_id, a.site_id, a.shindo, a.reason
    FROM pg_temp._sc_ask a JOIN pg_temp._sc_open o ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id
    ORDER BY a.tenant_id, o.request_id, a.site_id;   -- in key order: index insertions stay on hot pages
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE status_checker.request q SET targets = q.targets + c.n
    FROM (SELECT a.tenant_id, o.request_id, count(*) AS n
          FROM pg_temp._sc_ask a JOIN pg_temp._sc_open o ON o.tenant_id = a.tenant_id AND o.rule_id = a.rule_id
          GROUP BY 1, 2) c
    WHERE q.tenant_id = c.tenant_id AND q.request_id = c.request_id;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker._fire_rules(bigint) IS
'Internal: run the trigger rules for one event: create the one request per rule and event, add newly affected sites, '
'cancel requests of a cancelled event; returns the number of sites added';

-- ---- src/common/finish.sql
-- src/common/finish.sql — last part of the install script: privileges.
--
-- Internal helpers (names starting with "_") are not for PUBLIC.  The
-- role model (admin/manager/reporter/viewer, gateway) and row-level
-- security arrive with the security domain; until then the extension's
-- objects are usable by their owner and by roles the DBA grants.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA status_checker FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    status_checker.shindo_in(cstring), status_checker.shindo_out(status_checker.shindo),
    status_checker.shindo_recv(internal), status_checker.shindo_send(status_checker.shindo),
    status_checker.shindo_eq(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_ne(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_lt(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_le(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_gt(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_ge(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_cmp(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_hash(status_checker.shindo),
    status_checker.shindo_hash_extended(status_checker.shindo, bigint),
    status_checker.shindo_larger(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_smaller(status_checker.shindo, status_checker.shindo),
    status_checker.shindo_label(status_checker.shindo, text),
    status_checker.shindo_from_p2pquake(integer),
    status_checker.shindo_from_instrumental(numeric),
    status_checker.shindo_ordinal(status_checker.shindo),
    status_checker.normalize_municipality_code(text),
    status_checker.default_form_definition(text),
    status_checker.validate_form_definition(jsonb),
    status_checker.min(status_checker.shindo),
    status_checker.max(status_checker.shindo)
    TO PUBLIC;
GRANT USAGE ON SCHEMA status_checker TO PUBLIC;
GRANT USAGE ON TYPE status_checker.shindo TO PUBLIC;

-- pg_dump must dump the data of every table (they are extension members,
-- which pg_dump otherwise skips) and the state of their identity sequences.
DO $$
DECLARE
    rel regclass;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'status_checker' AND c.relkind IN ('r', 'S')
        ORDER BY c.relkind, c.relname
    LOOP
        PERFORM pg_catalog.pg_extension_config_dump(rel, '');
    END LOOP;
END
$$;
