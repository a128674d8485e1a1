#!/usr/bin/env bash
# Integration: the feed watcher background worker against a local feed
# server (test/integration/feed_server.py on 127.0.0.1) that replays the
# recorded Noto Atom feed and its telegrams in order, with 304s, plus JMA's
# official 2010 sample sequence, P2PQuake, USGS, bad documents and a
# failing feed.  Checks: each telegram fetched once, the expected requests
# exist exactly once, replaying everything changes nothing, bad input is
# counted while the worker goes on, errors back off, telegrams are fetched
# only from the feed's own host (links and redirects elsewhere are refused),
# no address that status_checker.allowed_destinations does not allow is
# connected to (a feed's redirect included), SIGHUP and SIGTERM.
# Runs its own cluster (the worker needs shared_preload_libraries).
# Never sleeps blindly: every wait polls a condition with a deadline.
# Prints TAP.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

work=$(mktemp -d /tmp/status_checker-watcher.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    sc_cluster_stop "$work/cluster"
    rm -rf "$work"
}
trap cleanup EXIT

# the feed server
python3 "$SC_ROOT/test/integration/feed_server.py" "$SC_FIXTURES" "$work/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
feeds="http://127.0.0.1:$port"
control() { curl -s -X POST "$feeds/_control/$1" >/dev/null; }

# a cluster with the worker in database sc_watch
db=sc_watch
sc_cluster_start "$work/cluster" >/dev/null
sc_psql -c "CREATE DATABASE $db" >/dev/null
cat <<EOF | sc_as_pg tee -a "$work/cluster/data/postgresql.conf" >/dev/null
shared_preload_libraries = 'status_checker'
status_checker.database = '$db'
status_checker.feed_timeout = '10s'
status_checker.max_feed_bytes = '4MB'
status_checker.allowed_destinations = '127.0.0.0/8'
EOF
sc_as_pg "$PG_BINDIR/pg_ctl" -D "$work/cluster/data" -l "$work/cluster/server.log" -w restart >/dev/null

# q, qb, wait_for, ok, check: test/lib.sh
fetches() {  # fetches PATH-REGEX STATUS → how many responses the server gave
    curl -s "$feeds/_control/stats" | python3 -c "
import json, re, sys
s = json.load(sys.stdin)
print(sum(v.get('$2', 0) for k, v in s.items() if re.fullmatch(r'$1', k)))"
}

sc_psql -d $db >/dev/null <<SQL
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT load_jma_area_codes(pg_read_file('$SC_FIXTURES/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'));
SELECT create_tenant('北陸電機', 'admin', 'admin@example.com');
SELECT create_site_group(1, '九州');
SELECT upsert_site(1, 'NOTO1', '輪島工場', '1720400', 37.39, 136.90, attributes => '{"tsunami_area": "360"}');
SELECT upsert_site(1, 'KAGA1', '金沢支店', '1720100', 36.56, 136.65);
SELECT upsert_site(1, 'TKY1', '東京本社', '1310100', 35.68, 139.76);
SELECT upsert_site(1, 'MYZ1', '宮崎営業所', '4520100', 31.91, 131.42, 1);
SELECT upsert_site(1, 'KNY1', '鹿屋工場', '4620300', 31.38, 130.85, 1);
SELECT create_form(1, '安否', default_form_definition('ja'));
SELECT create_trigger_rule(1, '震度5弱以上', 1, '5-');
SELECT create_trigger_rule(1, '九州 震度4以上', 1, '4', target => '{"groups": [1]}');
SELECT create_trigger_rule(1, '津波警報', 1, NULL, hazard => 'tsunami');
SELECT add_feed('jma_atom', '$feeds/jma/eqvol.xml', '1 second');
SELECT add_feed('jma_atom', '$feeds/jma/osumi.xml', '1 second');
SQL

echo "1..42"
ok "the worker runs in $db" "wait_for 30 \"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher' AND datname = '$db'\""
pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher'")

# the Noto feed publishes its telegrams one by one
ok "an empty feed is polled" "wait_for 30 \"SELECT polls > 0 FROM status_checker.feed WHERE url LIKE '%/jma/eqvol.xml'\""
total=$(curl -s -X POST "$feeds/_control/advance" | python3 -c 'import json,sys; print(json.load(sys.stdin)["of"])')
ok "telegram 1 of $total is ingested" "wait_for 30 \"SELECT count(*) = 1 FROM status_checker.feed_document WHERE state = 'ingested' AND url LIKE '%/jma/data/2024%'\""
for i in $(seq 2 "$total"); do control advance; done
ok "all $total Noto telegrams are ingested" "wait_for 30 \"SELECT count(*) = $total FROM status_checker.feed_document WHERE state = 'ingested' AND url LIKE '%/jma/data/2024%'\""
ok "the 2010 sample sequence is ingested (4 telegrams)" "wait_for 30 \"SELECT count(*) = 4 FROM status_checker.feed_document WHERE state = 'ingested' AND url LIKE '%/jma/data/2010%'\""
# let the unchanged feeds be polled a few more times
polls=$(q "SELECT sum(polls) FROM status_checker.feed")
ok "unchanged feeds keep being polled" "wait_for 30 \"SELECT sum(polls) >= $polls + 4 FROM status_checker.feed\""
ok "each telegram was fetched exactly once" "[ \"\$(fetches '/jma/data/.*' 200)\" = $((total + 4)) ]"
check "unchanged feeds got 304 Not Modified" "SELECT bool_and(not_modified > 0) FROM status_checker.feed"
ok "the server saw conditional requests answered 304" "[ \"\$(fetches '/jma/(eqvol|osumi)\\.xml' 304)\" -gt 0 ]"

check "Noto: one request for 震度5弱以上 with NOTO1 and KAGA1" \
  "SELECT count(*) = 1 AND min(targets) = 2 FROM status_checker.request WHERE rule_id = 1"
check "Noto: one request for the tsunami warning with NOTO1" \
  "SELECT count(*) = 1 AND min(targets) = 1 FROM status_checker.request WHERE rule_id = 3"
# in feed order the VXSE53 (municipalities) precedes the re-issued 震度速報:
# 宮崎市 itself had 震度3, so the area's later 4 does not ask MYZ1
check "2010: one request for 九州 with KNY1 (鹿屋市 4); MYZ1 not asked (宮崎市 3)" \
  "SELECT count(*) = 1 AND min(targets) = 1
          AND (SELECT d.reason FROM status_checker.trigger_decision d JOIN status_checker.request r USING (rule_id, event_id)
               WHERE d.rule_id = 2 AND d.site_code = 'MYZ1')
              = 'below threshold: 震度3 in municipality 宮崎市 < 震度4'
   FROM status_checker.request WHERE rule_id = 2" \
  "SELECT site_code || ': ' || reason FROM status_checker.trigger_decision WHERE rule_id = 2"

# replay: the same telegrams under other URLs change nothing
before=$(q "SELECT string_agg(event_id || ':' || revision, ',' ORDER BY event_id) FROM status_checker.event")
targets=$(q "SELECT count(*) FROM status_checker.request_target")
q "SELECT status_checker.add_feed('jma_atom', '$feeds/mirror/eqvol.xml', '1 second'), status_checker.add_feed('jma_atom', '$feeds/mirror/osumi.xml', '1 second')" >/dev/null
ok "replayed telegrams are ingested" "wait_for 30 \"SELECT count(*) = $((total + 4)) FROM status_checker.feed_document WHERE state = 'ingested' AND url LIKE '%/mirror/%'\""
check "replaying everything changed no event, request or target" \
  "SELECT string_agg(event_id || ':' || revision, ',' ORDER BY event_id) = '$before'
          AND (SELECT count(*) FROM status_checker.request) = 3
          AND (SELECT count(*) FROM status_checker.request_target) = $targets
   FROM status_checker.event"

# bad documents and a failing feed: counted, nothing stored, the worker goes on
events=$(q "SELECT count(*) FROM status_checker.event")
q "SELECT status_checker.add_feed('jma_atom', '$feeds/bad/eqvol.xml', '1 second'), status_checker.add_feed('jma_atom', '$feeds/error/eqvol.xml', '1 second')" >/dev/null
ok "4 bad telegrams (truncated, entity expansion, 50 MB, Shift_JIS) fail" \
  "wait_for 60 \"SELECT count(*) = 4 FROM status_checker.feed_document WHERE state = 'failed' AND url LIKE '%/bad/%'\""
check "their errors name the problem; no event was stored" \
  "SELECT bool_and(error ~ '(malformed XML|DTD|max_feed_bytes|UTF-8)') AND (SELECT count(*) FROM status_checker.event) = $events
   FROM status_checker.feed_document WHERE url LIKE '%/bad/%'" \
  "SELECT url || ': ' || error FROM status_checker.feed_document WHERE url LIKE '%/bad/%'"
ok "a failing feed backs off exponentially" \
  "wait_for 30 \"SELECT consecutive_errors >= 2 AND next_poll_at - last_poll_at > interval '2 seconds' AND last_error = 'HTTP 500' FROM status_checker.feed WHERE url LIKE '%/error/%'\""

# telegrams only from the feed's own host (scheme, host, port): a link to
# another host, and a redirect to one, are refused and counted, not fetched
q "SELECT status_checker.add_feed('jma_atom', '$feeds/foreign/eqvol.xml', '1 second'),
          status_checker.add_feed('jma_atom', '$feeds/redirect/eqvol.xml', '1 second'),
          status_checker.add_feed('jma_atom', '$feeds/sameredir/eqvol.xml', '1 second')" >/dev/null
ok "telegrams linked on other hosts than the feed's (localhost, another port, https) are refused at once" \
  "wait_for 30 \"SELECT count(*) = 4 AND bool_and(state = 'failed' AND attempts = 0 AND error LIKE 'not fetched: not on the feed''s host %')
                 FROM status_checker.feed_document WHERE url LIKE '%/foreign/data/%'\""
ok "... not one request for them reached the server" "[ \"\$(fetches '/foreign/data/.*' 200)\" = 0 ]"
check "... each counts as a bad document of its feed, which says why and is not failing" \
  "SELECT bad_documents = 4 AND last_error LIKE '%not on the feed''s host%' AND consecutive_errors = 0
   FROM status_checker.feed WHERE url LIKE '%/foreign/eqvol.xml'" \
  "SELECT url, bad_documents, consecutive_errors, last_error FROM status_checker.feed WHERE url LIKE '%/foreign/eqvol.xml'"
ok "a telegram redirected to another host is not followed: failed at once, with why" \
  "wait_for 30 \"SELECT count(*) = 4 AND bool_and(state = 'failed' AND error LIKE 'not fetched: redirected to another host %')
                 FROM status_checker.feed_document WHERE url LIKE '%/redirect/data/%'\""
ok "... the other host got no request" \
  "[ \"\$(fetches '/elsewhere/data/.*' 200)\" = 0 ] && [ \"\$(fetches '/redirect/data/.*' 302)\" = 4 ]"
ok "a redirect on the feed's own host is followed: its 4 telegrams are ingested" \
  "wait_for 30 \"SELECT count(*) = 4 AND bool_and(state = 'ingested') FROM status_checker.feed_document WHERE url LIKE '%/sameredir/data/%'\""
check "... once each" "SELECT $(fetches '/sameredir/moved/.*' 200) = 4"

# destinations: with only 127.0.0.1 allowed, a feed on 127.0.0.2 and a feed
# that redirects there are not fetched, and say why (the address is refused
# before a connection is made: nothing listens on 127.0.0.2 to tell)
q "ALTER SYSTEM SET status_checker.allowed_destinations = '127.0.0.1/32'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "SELECT status_checker.add_feed('p2pquake', 'http://127.0.0.2:$port/p2p/history', '1 second'),
          status_checker.add_feed('p2pquake', '$feeds/inward/p2p', '1 second')" >/dev/null
refused="not fetched: destination 127.0.0.2 refused: not a public address (status_checker.allowed_destinations)"
ok "a feed on an address allowed_destinations does not list is not fetched: its error says why" \
  "wait_for 30 \"SELECT last_error = '$refused' FROM status_checker.feed WHERE url = 'http://127.0.0.2:$port/p2p/history'\""
ok "a feed that redirects to such an address: the redirect is not followed, with the same error" \
  "wait_for 30 \"SELECT last_error = '$refused' FROM status_checker.feed WHERE url LIKE '%/inward/p2p'\""
q "SELECT status_checker.remove_feed(feed_id) FROM status_checker.feed WHERE url LIKE '%127.0.0.2%' OR url LIKE '%/inward/p2p'" >/dev/null
q "ALTER SYSTEM RESET status_checker.allowed_destinations" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null

# P2PQuake and USGS feeds
q "SELECT status_checker.add_feed('p2pquake', '$feeds/p2p/history?codes=551&limit=100', '1 second'), status_checker.add_feed('usgs_geojson', '$feeds/usgs/summary.geojson', '1 second')" >/dev/null
ok "P2PQuake and USGS feeds are ingested" \
  "wait_for 30 \"SELECT (SELECT count(*) FROM status_checker.event WHERE source = 'p2pquake') = 28 AND (SELECT count(*) FROM status_checker.event WHERE source = 'usgs') = 13\""
# JMA's warning feed (extra.xml): weather, landslide, rain, volcano and flood
# telegrams (JMA's official samples) become episodes; warning rules ask the
# sites of the municipalities concerned, once per episode however often the
# feeds are polled, also listed again by the long-term feed and replayed
# under other URLs.  Products the watcher does not follow are not fetched.
wx_n=$(ls "$SC_FIXTURES"/jma/weather/*.xml | wc -l)
q "SELECT status_checker.upsert_site(1, 'OGA1', '小笠原出張所', '1342100', 27.09, 142.19),
          status_checker.upsert_site(1, 'HMD1', '浜田工場', '3220200', 34.90, 132.08),
          status_checker.upsert_site(1, 'KKR1', '小倉営業所', '4010600', 33.88, 130.88),
          status_checker.create_trigger_rule(1, '大雨特別警報', 1, hazard => 'rain', min_level => 5),
          status_checker.create_trigger_rule(1, '土砂災害警戒情報', 1, hazard => 'landslide', min_level => 4)" >/dev/null
rain_rule=$(q "SELECT rule_id FROM status_checker.trigger_rule WHERE name = '大雨特別警報'")
slide_rule=$(q "SELECT rule_id FROM status_checker.trigger_rule WHERE name = '土砂災害警戒情報'")
q "SELECT status_checker.add_feed('jma_atom', '$feeds/wx/extra.xml', '1 second')" >/dev/null
ok "extra.xml: its $wx_n warning telegrams are ingested" \
  "wait_for 60 \"SELECT count(*) = $wx_n AND bool_and(state = 'ingested') FROM status_checker.feed_document WHERE url LIKE '%/wx/data/%'\""
check "... with their products read from the file names (VXKO51 for the 指定河川洪水予報)" \
  "SELECT string_agg(DISTINCT product, ',' ORDER BY product) = 'VFVO50,VPOA50,VPWW53,VPWW54,VXKO51,VXWW50'
   FROM status_checker.feed_document WHERE url LIKE '%/wx/data/%'" \
  "SELECT product, count(*) FROM status_checker.feed_document WHERE url LIKE '%/wx/data/%' GROUP BY 1"
check "products the watcher does not follow (府県気象情報 VPFJ50, 府県天気予報 VPFD50) are neither listed nor fetched" \
  "SELECT count(*) = 0 AND $(fetches '/wx/data/.*_VPF[JD]50_.*' 404) = 0
   FROM status_checker.feed_document WHERE product IN ('VPFJ50', 'VPFD50')"
check "episodes: rain, landslide, flood, wind, wave, storm_surge and volcano" \
  "SELECT array_agg(DISTINCT kind ORDER BY kind) @> '{flood,landslide,rain,storm_surge,volcano,wave,wind}'
   FROM status_checker.disaster_event WHERE source = 'jma' AND max_level IS NOT NULL" \
  "SELECT kind, source_event_id, max_level, ended_at FROM status_checker.disaster_event WHERE max_level IS NOT NULL ORDER BY event_id"
check "hazard_warning: 小笠原村 大雨特別警報 (5), 浜田市 大雨特別警報 (5), 千代田区 暴風警報 (3), 小倉北区's 北九州市 土砂災害警戒情報 (4)" \
  "SELECT count(*) = 4 FROM status_checker.hazard_warning
   WHERE (municipality, kind, level) IN (('1342100', '大雨特別警報', 5), ('3220200', '大雨特別警報', 5),
                                         ('1310100', '暴風警報', 3), ('4010000', '土砂災害警戒情報', 4))"
check "the 岡山県 landslide episode ended with its 全警戒解除" \
  "SELECT count(*) = 1 AND bool_and(ended_at IS NOT NULL) FROM status_checker.disaster_event
   WHERE kind = 'landslide' AND source_event_id LIKE 'landslide:330000:%'"
# each request of the warning rules: rule, episode and the sites it asks
wx_requests="SELECT string_agg(x, ' ' ORDER BY x) FROM (
                 SELECT q.rule_id || ':' || q.event_id || ':' || string_agg(s.code, '+' ORDER BY s.code) AS x
                 FROM status_checker.request q
                 JOIN status_checker.request_target t ON t.tenant_id = q.tenant_id AND t.request_id = q.request_id
                 JOIN status_checker.site s ON s.site_id = t.site_id
                 WHERE q.rule_id IN ($rain_rule, $slide_rule) GROUP BY q.request_id, q.rule_id, q.event_id) r"
check "大雨特別警報: one request for 東京都's episode (OGA1), one for 島根県's (HMD1); 土砂災害警戒情報: one for 福岡県's (KKR1)" \
  "SELECT regexp_replace(($wx_requests), ':[0-9]+:', ':', 'g') = '$rain_rule:HMD1 $rain_rule:OGA1 $slide_rule:KKR1'
          AND (SELECT count(DISTINCT q.event_id) FROM status_checker.request q WHERE q.rule_id = $rain_rule) = 2" \
  "$wx_requests"
wx_before=$(q "$wx_requests")
revisions=$(q "SELECT string_agg(event_id || ':' || revision, ',' ORDER BY event_id) FROM status_checker.event WHERE max_level IS NOT NULL")
# the long-term feed lists the same telegrams; the mirror lists them under other URLs
q "SELECT status_checker.add_feed('jma_atom', '$feeds/wx/extra_l.xml', '1 second'),
          status_checker.add_feed('jma_atom', '$feeds/wxmirror/extra.xml', '1 second')" >/dev/null
ok "the mirrored warning telegrams are ingested" \
  "wait_for 60 \"SELECT count(*) = $wx_n AND bool_and(state = 'ingested') FROM status_checker.feed_document WHERE url LIKE '%/wxmirror/data/%'\""
polls=$(q "SELECT sum(polls) FROM status_checker.feed WHERE url LIKE '%/wx%'")
ok "the warning feeds keep being polled (304 Not Modified)" \
  "wait_for 30 \"SELECT sum(polls) >= $polls + 9 AND bool_and(not_modified > 0) FROM status_checker.feed WHERE url LIKE '%/wx%'\""
check "... the long-term feed listed nothing new, and each warning telegram was fetched exactly once" \
  "SELECT (SELECT count(*) FROM status_checker.feed_document d JOIN status_checker.feed f USING (feed_id)
           WHERE f.url LIKE '%/wx/extra_l.xml') = 0
          AND $(fetches '/wx/data/.*' 200) = $wx_n AND $(fetches '/wxmirror/data/.*' 200) = $wx_n"
check "... and every rule still fired once per episode: no request, target or episode revision more" \
  "SELECT ($wx_requests) = '$wx_before'
          AND (SELECT string_agg(event_id || ':' || revision, ',' ORDER BY event_id) FROM status_checker.event
               WHERE max_level IS NOT NULL) = '$revisions'" \
  "$wx_requests"

# no memory kept across loops: the worker's total stays flat while it polls
# (pg_log_backend_memory_contexts writes the totals to the server log)
mem_total() {
    local before; before=$(grep -c "Grand total" "$work/cluster/server.log" || true)
    q "SELECT pg_log_backend_memory_contexts(pid) FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher'" >/dev/null
    for _ in $(seq 50); do
        [ "$(grep -c "Grand total" "$work/cluster/server.log" || true)" -gt "$before" ] && break
        sleep 0.1
    done
    grep "Grand total" "$work/cluster/server.log" | tail -1 | sed -n 's/.*Grand total: \([0-9]*\) bytes.*/\1/p'
}
# the smallest of five readings: a reading taken while the worker parses a
# telegram counts that telegram's memory too (250 KB for a VPWW54), which it
# frees right after; what a leak keeps is in every reading
mem_min() {
    local m min=
    for _ in 1 2 3 4 5; do
        m=$(mem_total)
        [ -n "$m" ] && { [ -z "$min" ] || [ "$m" -lt "$min" ]; } && min=$m
        sleep 0.2
    done
    echo "$min"
}
polls=$(q "SELECT sum(polls) FROM status_checker.feed")
wait_for 30 "SELECT sum(polls) >= $polls + 10 FROM status_checker.feed" || true
m1=$(mem_min)
polls=$(q "SELECT sum(polls) FROM status_checker.feed")
wait_for 60 "SELECT sum(polls) >= $polls + 30 FROM status_checker.feed" || true
m2=$(mem_min)
ok "the worker's memory stays flat over 30 more polls ($m1 → $m2 bytes)" "[ -n \"$m1\" ] && [ -n \"$m2\" ] && [ $m2 -le $((m1 + 65536)) ]"
check "the worker is the same process and every feed is healthy but the failing one" \
  "SELECT (SELECT pid FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher') = $pid
          AND bool_and(health IN ('ok', 'starting') OR url LIKE '%/error/%') FROM status_checker.feed_health"

# SIGHUP re-reads the configuration; SIGTERM stops it at once, and it comes back
q "SELECT pg_reload_conf()" >/dev/null
q "SELECT pg_terminate_backend($pid)" >/dev/null
ok "after SIGHUP and SIGTERM the worker exits at once and is restarted" \
  "wait_for 30 \"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'status_checker feed watcher' AND pid <> $pid\""
if grep -q "terminated by signal\|PANIC" "$work/cluster/server.log"; then
    grep "terminated by signal\|PANIC" "$work/cluster/server.log" | head -5 >&2
    echo "not ok $n - the server log shows no crash"; fail=1
else
    echo "ok $n - the server log shows no crash"
fi
exit $fail
