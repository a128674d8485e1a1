-- src/feeds/watcher_poll.sql — what the feed watcher keeps of a poll: the
-- JMA products whose telegrams it fetches (_feed_product_wanted, the one
-- list of them) and _feed_polled, which records a poll and lists an Atom
-- feed's new telegrams (src/feeds/watcher.sql has the feeds, the telegram
-- fetches and the watcher's health).
--
-- Written as CREATE OR REPLACE so that the same text serves the install
-- script and the upgrades (1.1.0 adds the warning products).

-- The products of JMA's Atom feeds (the code in a telegram's file name,
-- …/20240101071010_0_VXSE53_010000.xml, as feed_parse_jma_atom reads it)
-- whose telegrams the watcher fetches: those the parser turns into events
-- or warning episodes.  Everything else those feeds list (VXSE62, VTSE51,
-- 降灰予報 VFVO53, 府県天気予報, 気象情報, …) is never downloaded.
--   eqvol.xml:  VXSE51 震度速報, VXSE52 震源に関する情報, VXSE53 震源・震度に関する
--               情報, VXSE61 顕著な地震の震源要素更新のお知らせ, VTSE41 津波警報・
--               注意報・予報a; VFVO50 噴火警報・予報
--   extra.xml:  VPWW53 気象特別警報・警報・注意報, VPWW54 気象警報・注意報（Ｈ２７）,
--               VXWW50 土砂災害警戒情報, VPOA50 記録的短時間大雨情報,
--               VXKO50 … VXKO89 指定河川洪水予報 (the number says the river
--               and office, e.g. 20240826060605_0_VXKO54_130000.xml)
-- (and the long-term eqvol_l.xml and extra_l.xml, which hold the same
-- products for longer).
CREATE OR REPLACE FUNCTION status_checker._feed_product_wanted(product text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
    RETURN product IN ('VXSE51', 'VXSE52', 'VXSE53', 'VXSE61', 'VTSE41',
                       'VPWW53', 'VPWW54', 'VXWW50', 'VPOA50', 'VFVO50')
           OR product ~ '^VXKO[5-8][0-9]$';
COMMENT ON FUNCTION status_checker._feed_product_wanted(text) IS
'Internal (feed watcher): whether the telegrams of a JMA product are fetched (earthquake and tsunami: VXSE51/52/53/61, '
'VTSE41; warnings: VPWW53/54, VXWW50, VPOA50, VFVO50, VXKO50-89)';

-- Record a successful poll (HTTP 200 or 304).  For an Atom feed, list its
-- new telegrams; for P2PQuake and USGS, ingest the body.  Returns the
-- telegram URLs the watcher should fetch now.
CREATE OR REPLACE FUNCTION status_checker._feed_polled(p_feed bigint, p_status integer, p_etag text, p_last_modified text, p_body bytea)
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
                WHERE status_checker._feed_product_wanted(e ->> 'product')
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
