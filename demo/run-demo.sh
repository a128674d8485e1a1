#!/usr/bin/env bash
# demo/run-demo.sh — `make demo`: install, build, start a throwaway cluster
# with the feed watcher, load demo sites with real JMA municipality codes and
# trigger rules, replay the recorded Noto earthquake (2024-01-01) from a local
# feed server so that the requests appear by themselves; the dispatcher mails
# every site (a local SMTP server, STARTTLS) and posts to a local webhook
# receiver (Slack format); the site staff open the links in their mails and
# answer in waves, the first of them on the reporter page served by the HTTP
# worker.  Then a second scenario: JMA's recorded 大雨特別警報 for 東京都
# arrives by the warning feed (extra.xml) and a warning rule asks the sites
# on the 小笠原諸島.  Leaves the cluster, the reporter page and the mail sink running;
# `make demo-stop` (demo/stop-demo.sh) stops everything it started, from the
# process ids it writes to $DEMO_DIR/demo.pids.
set -euo pipefail
source "$(dirname "$0")/../test/lib.sh"

DEMO_DIR=${DEMO_DIR:-/tmp/status_checker-demo}
DB=status_checker_demo
codes=$SC_FIXTURES/codes

sc_apt_install $SC_BUILD_PACKAGES python3 python3-aiosmtpd openssl curl
[ -f "$codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv" ] \
    || sc_die "JMA code tables not found under $codes (../shared must sit beside the repository)"
sc_build_install

sc_log "starting a throwaway PostgreSQL 15 cluster in $DEMO_DIR, with the feed watcher"
# an earlier demo's cluster and receivers first
bash "$SC_ROOT/demo/stop-demo.sh" "$DEMO_DIR" >/dev/null
sc_cluster_stop "$DEMO_DIR"
rm -rf "$DEMO_DIR"
sc_cluster_start "$DEMO_DIR"
sc_psql -c "CREATE DATABASE $DB" >/dev/null
# the reporter pages: on 8080 when it is free
hport=8080
python3 -c 'import socket; socket.socket().bind(("127.0.0.1", 8080))' 2>/dev/null || hport=$(sc_free_port)
web="http://127.0.0.1:$hport"
printf '%s\n' "shared_preload_libraries = 'status_checker'" "status_checker.database = '$DB'" \
    "status_checker.link_base_url = '$web/r/'" "status_checker.http_listen = '127.0.0.1:$hport'" \
    "# the demo's mail server and webhook receiver are on 127.0.0.1 (by default only public addresses are)" \
    "status_checker.allowed_destinations = '127.0.0.0/8'" \
    | sc_as_pg tee -a "$DEMO_DIR/data/postgresql.conf" >/dev/null
sc_as_pg "$PG_BINDIR/pg_ctl" -D "$DEMO_DIR/data" -l "$DEMO_DIR/server.log" -w restart >/dev/null

# the local mail server (STARTTLS with a certificate made here) and webhook
# receiver; they stay up after the demo so that you can read the mails
sc_log "starting a local SMTP server and webhook receiver (127.0.0.1)"
pkill -f "smtp_sink.py $DEMO_DIR/mail" 2>/dev/null || true
pkill -f "webhook_sink.py $DEMO_DIR/webhooks.jsonl" 2>/dev/null || true
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DEMO_DIR/smtp-key.pem" -out "$DEMO_DIR/smtp-cert.pem" -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
chmod 644 "$DEMO_DIR/smtp-key.pem" "$DEMO_DIR/smtp-cert.pem"
nohup "$SC_PYTHON" "$SC_ROOT/test/integration/smtp_sink.py" "$DEMO_DIR/mail" "$DEMO_DIR/smtp-port" \
    --cert "$DEMO_DIR/smtp-cert.pem" --key "$DEMO_DIR/smtp-key.pem" >"$DEMO_DIR/smtp.log" 2>&1 &
echo "$! SMTP server" >> "$DEMO_DIR/demo.pids"
nohup "$SC_PYTHON" "$SC_ROOT/test/integration/webhook_sink.py" "$DEMO_DIR/webhooks.jsonl" "$DEMO_DIR/webhook-port" \
    >"$DEMO_DIR/webhook.log" 2>&1 &
echo "$! webhook receiver" >> "$DEMO_DIR/demo.pids"
for _ in $(seq 100); do [ -s "$DEMO_DIR/smtp-port" ] && [ -s "$DEMO_DIR/webhook-port" ] && break; sleep 0.1; done

# the local stand-in for JMA's feed: the recorded Noto Atom feed and telegrams
server_pid=
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null || true' EXIT
python3 "$SC_ROOT/test/integration/feed_server.py" "$SC_FIXTURES" "$DEMO_DIR/feed-port" &
server_pid=$!
echo "$server_pid feed server" >> "$DEMO_DIR/demo.pids"
for _ in $(seq 100); do [ -s "$DEMO_DIR/feed-port" ] && break; sleep 0.1; done
feeds="http://127.0.0.1:$(cat "$DEMO_DIR/feed-port")"

sc_log "creating the demo tenant, its sites in 8 prefectures (real JMA municipality codes), and a request"
sc_psql -d $DB -c "CREATE EXTENSION status_checker" >/dev/null
# the HTTP worker logs in as sc_http, a login of its own (docs/web.md), not as the superuser (restarts)
sc_http_login "$DEMO_DIR" $DB
sc_psql -d $DB -v codes="$codes" -f "$SC_ROOT/demo/demo.sql" || sc_die "demo setup failed"
sc_psql -d $DB -v smtp="smtp://127.0.0.1:$(cat "$DEMO_DIR/smtp-port")" -v ca="$DEMO_DIR/smtp-cert.pem" \
    -v hook="http://127.0.0.1:$(cat "$DEMO_DIR/webhook-port")/ok" -f "$SC_ROOT/demo/channels.sql" || sc_die "demo channels failed"

sc_log "replaying the recorded JMA feed of 2024-01-01 (Noto, M7.6, 震度7) from $feeds"
sc_psql -d $DB -qAt -c "SELECT status_checker.add_feed('jma_atom', '$feeds/jma/eqvol.xml', '1 second')" >/dev/null
published=0
while :; do
    read -r now total < <(curl -s -X POST "$feeds/_control/advance" \
        | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["published"], d["of"])')
    [ "$now" = "$published" ] && break
    published=$now
    # wait (with a deadline) until the watcher has fetched the new telegram
    for _ in $(seq 150); do
        got=$(sc_psql -d $DB -At -c "SELECT count(*) FROM status_checker.feed_document WHERE state <> 'pending'")
        [ "$got" -ge "$published" ] && break
        sleep 0.2
    done
    sc_psql -d $DB -At -v n="$published" -v total="$total" <<'SQL'
SELECT format('   telegram %s/%s (%s, %s): %s', :'n', :'total', d.product, d.state,
              coalesce((SELECT string_agg(format('request %s "%s" for %s sites', q.request_id, q.title, q.targets), '; '
                                          ORDER BY q.request_id)
                        FROM status_checker.request q WHERE q.created_at = d.fetched_at),
                       'no new request'))
FROM status_checker.feed_document d WHERE d.state <> 'pending' ORDER BY d.fetched_at DESC LIMIT 1;
SQL
done
# the stand-in server stops with the demo: stop polling it
sc_psql -d $DB -q -c "UPDATE status_checker.feed SET enabled = false" >/dev/null
sc_psql -d $DB -f "$SC_ROOT/demo/events.sql"

sc_log "delivery: the dispatcher mails every asked site and posts to the crisis room's webhook"
rid=$(sc_psql -d $DB -At -c "SELECT min(request_id) FROM status_checker.request WHERE rule_id IS NOT NULL")
for _ in $(seq 300); do
    [ "$(sc_psql -d $DB -At -c "SELECT count(*) = 0 FROM status_checker.outbox WHERE state IN ('queued', 'sending', 'retrying')")" = t ] && break
    sleep 0.2
done
sc_psql -d $DB -f "$SC_ROOT/demo/delivery.sql"
# the site staff open the links in their mails: the tokens come from the mails themselves
"$SC_PYTHON" - "$DEMO_DIR/mail" > "$DEMO_DIR/links.csv" <<'PY'
import email, email.policy, glob, re, sys
for path in sorted(glob.glob(sys.argv[1] + '/*.eml')):
    msg = email.message_from_binary_file(open(path, 'rb'), policy=email.policy.default)
    m = re.search(r'/r/([A-Za-z0-9_-]{43}(?:\.[0-9]+){3})', msg.get_body(('plain',)).get_content())
    if m:
        print('%s,%s' % (msg['To'].addresses[0].addr_spec, m.group(1)))
PY
printf '   %s personal links read from the mails\n' "$(wc -l < "$DEMO_DIR/links.csv")"
sc_psql -d $DB -v links="$DEMO_DIR/links.csv" -f "$SC_ROOT/demo/links.sql" || sc_die "demo links failed"
sc_log "the reporter page ($web/r/<token>, the HTTP worker): five sites answer on it"
for _ in $(seq 100); do [ "$(curl -s "$web/healthz")" = ok ] && break; sleep 0.1; done
n_web=0
while IFS=, read -r site token; do
    curl -s -o /dev/null "$web/r/$token"        # open the link (changes nothing)
    got=$(curl -s -o /dev/null -w '%{http_code}' --data-urlencode "_key=$(head -c 16 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" \
          --data-urlencode q.building=none --data-urlencode q.injured=0 --data-urlencode q.operation=normal \
          --data-urlencode "q.comment=$site: 異常なし" "$web/r/$token")
    [ "$got" = 303 ] && n_web=$((n_web + 1))
done < <(sc_psql -d $DB -At -F, -c "SELECT site_code, token FROM public.demo_link
                                    WHERE abs(hashtext(site_code)) % 4 IN (1, 2) AND abs(hashtext(site_code)) % 5 <> 0
                                    ORDER BY site_code LIMIT 5")
printf '   %s reports posted on the reporter page (each POST answered 303 → the confirmation)\n' "$n_web"
for wave in 1 2 3 4; do
    label=("" "the first reports arrive" "most sites answer" "late answers" "some sites update their status")
    sc_log "wave $wave: ${label[$wave]}"
    sc_psql -d $DB -v wave=$wave -f "$SC_ROOT/demo/simulate.sql"
    sc_psql -d $DB -At -c "SELECT format('   %s of %s sites have answered (%s %%), %s reports in all, worst level %s (%s)',
                                         responded, targets, round(response_rate * 100),
                                         (SELECT count(*) FROM status_checker.report), coalesce(worst_level::text, '-'),
                                         coalesce(worst_color, '-'))
                           FROM status_checker.request_summary
                           WHERE request_id = (SELECT min(request_id) FROM status_checker.request WHERE rule_id IS NOT NULL)"
    sleep 1
done

sc_psql -d $DB -f "$SC_ROOT/demo/show.sql"

# the second scenario: a warning.  JMA's extra.xml lists weather, landslide,
# rain and flood telegrams; the stand-in serves JMA's own sample of a
# 大雨特別警報 for 東京都 (2016-12-13: 大雨・暴風・波浪・高潮特別警報 for the
# 小笠原諸島, 暴風警報 for the 23 wards) and the watcher follows it
sc_log "scenario 2: a recorded 大雨特別警報 for 東京都 (JMA's sample telegram) arrives by the warning feed (extra.xml)"
wx_feed="$feeds/wx/extra.xml?only=VPWW54_sample_161226"
sc_psql -d $DB -qAt -c "SELECT status_checker.add_feed('jma_atom', '$wx_feed', '1 second')" >/dev/null
for _ in $(seq 150); do
    [ "$(sc_psql -d $DB -At -c "SELECT count(*) FROM status_checker.feed_document WHERE url LIKE '%/wx/data/%' AND state <> 'pending'")" -ge 1 ] && break
    sleep 0.2
done
sc_psql -d $DB -At <<'SQL'
SELECT format('   %s (%s, %s, %s bytes): %s', d.product, f.url, d.state, d.bytes,
              coalesce((SELECT string_agg(format('request %s "%s" for %s sites', q.request_id, q.title, q.targets), '; '
                                          ORDER BY q.request_id)
                        FROM status_checker.request q WHERE q.created_at = d.fetched_at),
                       'no new request'))
FROM status_checker.feed_document d JOIN status_checker.feed f USING (feed_id) WHERE d.url LIKE '%/wx/data/%';
SQL
sc_psql -d $DB -q -c "UPDATE status_checker.feed SET enabled = false" >/dev/null
sc_psql -d $DB -f "$SC_ROOT/demo/weather.sql"
for _ in $(seq 300); do
    [ "$(sc_psql -d $DB -At -c "SELECT count(*) = 0 FROM status_checker.outbox WHERE state IN ('queued', 'sending', 'retrying')")" = t ] && break
    sleep 0.2
done
sc_psql -d $DB -At <<'SQL'
SELECT format('   delivery: %s messages for request %s, %s sent (%s)', count(*), d.request_id, count(*) FILTER (WHERE d.state = 'sent'),
              string_agg(DISTINCT coalesce(d.site_code, '-') || ' ' || d.channel_kind, ', '))
FROM status_checker.delivery_status d
WHERE d.request_id = (SELECT max(request_id) FROM status_checker.request WHERE rule_id IN
                      (SELECT rule_id FROM status_checker.trigger_rule WHERE hazard = 'rain'))
GROUP BY d.request_id;
SQL
# the crisis team's dashboard: a password for the demo's manager (argon2id)
demo_password='noto-2024-demo'
sc_psql -d $DB -q -c "SELECT status_checker.set_user_password(1, 'crisis.lead', '$demo_password')" >/dev/null
unanswered=$(sc_psql -d $DB -At -c "SELECT l.token FROM public.demo_link l JOIN status_checker.site_status s ON s.site_code = l.site_code
                                   WHERE s.request_id = (SELECT min(request_id) FROM status_checker.request WHERE rule_id IS NOT NULL)
                                     AND s.level IS NULL ORDER BY l.site_code LIMIT 1")
answered=$(sc_psql -d $DB -At -c "SELECT l.token FROM public.demo_link l JOIN status_checker.site_status s ON s.site_code = l.site_code
                                   WHERE s.request_id = (SELECT min(request_id) FROM status_checker.request WHERE rule_id IS NOT NULL)
                                     AND s.level = 2 ORDER BY l.site_code LIMIT 1")

cat <<MSG

Mails sent by the dispatcher are in $DEMO_DIR/mail/ (one .eml per mail; open one in
any mail client), the webhook posts in $DEMO_DIR/webhooks.jsonl.

The crisis dashboard (tiles, map, timeline, roll-up, status matrix; it refreshes by itself):
  $web/d/login     organisation ID 1, login crisis.lead, password $demo_password

Reporter pages (the HTTP worker; open them in a browser, on a phone-sized window):
  a site that has not answered yet:  $web/r/$unanswered
  a site that reported damage:       $web/r/$answered?lang=en
  the same as JSON:                  curl -s $web/api/v1/r/$unanswered

The cluster is still running. Look around:
  psql -h $PGHOST -p $PGPORT -U postgres $DB
  SET search_path = status_checker;
  SELECT * FROM site_status WHERE level IS NULL;           -- who has not answered
  SELECT * FROM response_timeline;                         -- answers per minute
  SELECT request_geojson(1);                               -- for a web map
  SELECT * FROM trigger_decision WHERE decision = 'skip';  -- why a site was not asked
  SELECT * FROM system_health();                           -- what monitoring polls
  SELECT * FROM feed_health;                               -- the feed watcher
  SELECT * FROM report_history WHERE site_code = 'ISK001'; -- every report of a site
  SELECT * FROM delivery_status ORDER BY message_id;      -- every mail and webhook
  SELECT * FROM request_delivery;                          -- delivery per request
Docs: README.md (getting started), docs/sql-reference.md and docs/web.md (the reporter page and the dashboard).
Stop everything the demo started (the cluster, the mail server, the webhook receiver,
the feed server) with:
  make -C $SC_ROOT demo-stop$( [ "$DEMO_DIR" != /tmp/status_checker-demo ] && echo " DEMO_DIR=$DEMO_DIR" )
MSG
