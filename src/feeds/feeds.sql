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
    kind             text NOT NULL,   -- earthquake, tsunami, eew; a warning episode's hazard (rain, landslide, …)
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
    max_level        integer CHECK (max_level BETWEEN 1 AND 5),   -- warning episodes: the highest level reached
    ended_at         timestamptz,                                  -- warning episodes: when nothing was in force any more
    UNIQUE (source, kind, source_event_id)
);
CREATE INDEX ON status_checker.event USING gin (aliases) WHERE source = 'usgs';
CREATE INDEX ON status_checker.event (origin_time);
COMMENT ON TABLE status_checker.event IS
'A disaster event (earthquake, tsunami, EEW, or an episode of weather, landslide, rain, flood or volcano warnings) as '
'its feed reported it; one row per (source, kind, source event id)';
GRANT SELECT ON status_checker.event TO status_checker_viewer, status_checker_operator;

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
GRANT SELECT ON status_checker.event_product TO status_checker_viewer, status_checker_operator;

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
GRANT SELECT ON status_checker.event_product_intensity TO status_checker_viewer, status_checker_operator;

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
GRANT SELECT ON status_checker.event_product_tsunami TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.disaster_event WITH (security_invoker = true) AS
SELECT e.event_id, e.source, e.source_event_id, e.kind, e.status, e.origin_time,
       e.epicenter_name, e.lat, e.lon, e.depth_km, e.magnitude, e.max_shindo, e.headline,
       e.revision, e.updated_at,
       e.best_product, e.detail_level, e.foreign_quake, e.aliases, e.extra,
       e.max_level, e.ended_at
FROM status_checker.event e;
COMMENT ON VIEW status_checker.disaster_event IS
'Disaster events from the feeds: source and its event id, kind (earthquake, tsunami, or a warning episode''s hazard: '
'rain, landslide, flood, storm_surge, wind, snow, wave, volcano, other), status (actual, training, test, cancelled), '
'origin time (an episode: its first warning), epicentre (an episode: its prefecture, volcano or river), depth, '
'magnitude (NULL when unknown), maximum shindo, headline, revision; for an episode the highest level reached '
'(max_level) and when it ended (ended_at, NULL while a warning is in force)';
GRANT SELECT ON status_checker.disaster_event TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.event_intensity WITH (security_invoker = true) AS
SELECT i.event_id, i.scope, i.code, i.name, i.shindo, i.incomplete, i.product
FROM status_checker.event e
JOIN status_checker.event_product_intensity i ON i.event_id = e.event_id AND i.product = e.best_product;
COMMENT ON VIEW status_checker.event_intensity IS
'Observed intensities of each event per prefecture, area, municipality (city) and station, from its most detailed '
'current product; incomplete = JMA says 震度5弱 or more may have been observed but not received';
GRANT SELECT ON status_checker.event_intensity TO status_checker_viewer, status_checker_operator;

CREATE VIEW status_checker.event_tsunami WITH (security_invoker = true) AS
SELECT t.event_id, t.code, t.name, t.kind_code, t.kind_name, t.last_kind_code,
       t.max_height_m, t.max_height_text, t.first_arrival, t.condition, t.product
FROM status_checker.event e
JOIN status_checker.event_product p ON p.event_id = e.event_id AND p.info_type <> 'cancelled'
JOIN status_checker.event_product_tsunami t ON t.event_id = p.event_id AND t.product = p.product
WHERE e.kind = 'tsunami';
COMMENT ON VIEW status_checker.event_tsunami IS
'Tsunami warning kinds per 津波予報区 (52/53 大津波警報, 51 津波警報, 62 津波注意報, 7x 津波予報, 50/60 解除)';
GRANT SELECT ON status_checker.event_tsunami TO status_checker_viewer, status_checker_operator;

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
GRANT EXECUTE ON FUNCTION status_checker.parse_feed_document(text, text) TO status_checker_api, status_checker_operator;

-- ---------------------------------------------------------------- storing

-- _ingest_event: src/feeds/ingest.sql (with _store_product, which warning
-- telegrams share)

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

-- ingest_feed_document: src/feeds/ingest.sql (after the warnings it also stores)
