-- status_checker 1.0.0 → 1.1.0: what the update does before it replays
-- the files that define the warnings (src/feeds/warnings.sql, new) and the
-- functions that changed (ingest.sql, watcher_poll.sql, rules.sql,
-- decide.sql, fire.sql, all CREATE OR REPLACE), and
-- src/upgrades/1.1.0-privileges.sql after them.
-- test/integration/upgrade.sh compares the updated database with a fresh
-- install of 1.1.0.
--
-- Issue 21: weather, landslide, record-rain, flood and volcano warnings as
-- triggers.  An event may now be a warning episode (its highest level and
-- when it ended); a rule may watch a warning hazard from a minimum level.

ALTER TABLE status_checker.event
    ADD COLUMN max_level integer CHECK (max_level BETWEEN 1 AND 5),
    ADD COLUMN ended_at timestamptz;
COMMENT ON TABLE status_checker.event IS
'A disaster event (earthquake, tsunami, EEW, or an episode of weather, landslide, rain, flood or volcano warnings) as '
'its feed reported it; one row per (source, kind, source event id)';
CREATE OR REPLACE VIEW status_checker.disaster_event WITH (security_invoker = true) AS
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

ALTER TABLE status_checker.trigger_rule
    DROP CONSTRAINT trigger_rule_hazard_check,
    ADD CONSTRAINT trigger_rule_hazard_check CHECK (hazard IN ('earthquake', 'tsunami', 'rain', 'landslide', 'flood',
                                                               'storm_surge', 'wind', 'snow', 'wave', 'volcano', 'any_warning')),
    ADD COLUMN min_level integer CHECK (min_level BETWEEN 1 AND 5),
    ADD CONSTRAINT trigger_rule_level_check CHECK (hazard IN ('earthquake', 'tsunami') OR min_level IS NOT NULL);
COMMENT ON TABLE status_checker.trigger_rule IS
'A tenant''s rule: when an event of its hazard reaches min_shindo (or a listed tsunami warning kind, or for a weather, '
'landslide, flood or volcano warning min_level) at a targeted site, ask those sites';

-- the watcher follows JMA's warning feeds as well (src/feeds/watcher_poll.sql)
COMMENT ON FUNCTION status_checker.add_feed(text, text, interval) IS
'Add a feed for the watcher to poll: jma_atom (JMA''s eqvol.xml for earthquakes, tsunamis and volcanoes, extra.xml for '
'weather, landslide, rain and flood warnings, or their long-term *_l.xml), p2pquake (/v2/history) or usgs_geojson '
'(summary feed); returns the feed id';

-- trigger_decision as a mapped viewer or the operator: the view runs _decide
-- as its reader, and _decide what its readers could not call (_no_nulls,
-- _decide_all and what that calls; decide.sql grants its own functions)
GRANT EXECUTE ON FUNCTION status_checker._no_nulls(text, text[], text[]) TO status_checker_api, status_checker_viewer, status_checker_operator;
COMMENT ON FUNCTION status_checker._resolve_targets(bigint, jsonb) IS
'Internal: the site ids of a target spec (all, groups, sites, municipalities, areas) in the tenant; raises on a bad spec';
GRANT EXECUTE ON FUNCTION status_checker._resolve_targets(bigint, jsonb) TO status_checker_api, status_checker_viewer, status_checker_operator;
GRANT EXECUTE ON FUNCTION status_checker.estimate_shindo(numeric, double precision, double precision, double precision, double precision, double precision) TO status_checker_api, status_checker_operator, status_checker_viewer;
