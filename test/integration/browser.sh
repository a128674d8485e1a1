#!/usr/bin/env bash
# Integration: the reporter page and the dashboard in a real browser —
# (the map drawn over the outline of Japan, then over tiles from a local
# stand-in tile server once status_checker.http_map_tiles is set) —
# Debian's headless chromium driven by playwright-core from npm (no browser
# download) — against the HTTP worker on 127.0.0.1.  The tests are in
# test/browser/browser.test.mjs; this script starts the cluster with the
# worker, loads a tenant with sites on the map, a manager with a password
# and a request, and passes them on.  Screenshots: artifacts/browser/.
# Prints TAP.  Never sleeps blindly.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

work=$(mktemp -d /tmp/status_checker-browser.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
tiles_pid=
cleanup() { [ -n "$tiles_pid" ] && kill "$tiles_pid" 2>/dev/null; sc_cluster_stop "$work/cluster"; rm -rf "$work"; }
trap cleanup EXIT

db=sc_browser
hport=$(sc_free_port)
sc_worker_cluster "$work/cluster" $db "status_checker.http_listen = '127.0.0.1:$hport'"

password='ishikawa-2024-noto'
sc_psql -d $db >/dev/null <<SQL
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('北陸電機', 'admin', 'admin@example.com');
SELECT add_user(1, 'kanri', 'kanri@example.com', 'manager');
SELECT set_user_password(1, 'kanri', '$password');
SELECT load_jma_area_codes(pg_read_file('$SC_FIXTURES/codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv'));
SELECT upsert_site(1, 'NOTO1', '輪島工場', '1720400', 37.39, 136.90);
SELECT upsert_site(1, 'XSS1', '<img src=x onerror="window.__xss=1">', '1720100', 36.56, 136.65);
SELECT import_sites(1, 'code,name,group_path,municipality_code,lat,lon' || E'\n' ||
       string_agg(format('S%s,拠点%s,%s,%s,%s,%s', lpad(i::text, 2, '0'), i,
                         (ARRAY['北陸/石川', '北陸/富山', '関東/東京', '東海/愛知'])[1 + i % 4],
                         (ARRAY['1720100', '1720400', '1310100', '1310100'])[1 + i % 4],
                         (ARRAY[36.56, 36.70, 35.68, 35.18])[1 + i % 4] + (i % 5) * 0.05,
                         (ARRAY[136.65, 137.21, 139.76, 136.91])[1 + i % 4] + (i % 7) * 0.05), E'\n'))
FROM generate_series(1, 40) i;
SELECT create_form(1, '被害状況報告', default_form_definition('all'));
SELECT create_request(1, 1, '能登地震 被害報告', now() + interval '3 hours');
SELECT count(submit_report_for(1, 'S' || lpad(i::text, 2, '0'), '{"building": "none", "injured": 0, "operation": "normal"}'))
FROM generate_series(1, 14) i;
SELECT count(submit_report_for(1, 'S' || lpad(i::text, 2, '0'), '{"building": "partial", "detail": "窓ガラス破損", "injured": 0, "operation": "limited"}'))
FROM generate_series(15, 20) i;
-- another company, whose request the manager must not see
SELECT create_tenant('他社', 'admin', 'admin@other.example');
SELECT upsert_site(2, 'O1', '他社の拠点', '1310100', 35.68, 139.76);
SELECT create_form(2, 'f', default_form_definition());
SELECT create_request(2, (SELECT max(form_id) FROM form WHERE tenant_id = 2), '他社の依頼', now() + interval '3 hours');
SQL
# the worker logs in as an operator sets it up (sc_http, docs/web.md), not as the superuser (restarts)
sc_http_login "$work/cluster" $db
token=$(q() { sc_psql -d $db -At -c "$1"; }; q "SELECT status_checker.issue_token(1, 'NOTO1')")
for _ in $(seq 100); do [ "$(curl -s "http://127.0.0.1:$hport/healthz")" = ok ] && break; sleep 0.1; done

# a stand-in tile server, for the map with tiles (status_checker.http_map_tiles)
python3 "$SC_ROOT/test/browser/tile_server.py" "$work/tile-port" "$work/tiles.log" &
tiles_pid=$!
for _ in $(seq 100); do [ -s "$work/tile-port" ] && break; sleep 0.1; done
touch "$work/tiles.log"; chmod 666 "$work/tiles.log"

# playwright-core from npm, at the version package-lock.json pins
if [ ! -d "$SC_ROOT/test/browser/node_modules/playwright-core" ]; then
    (cd "$SC_ROOT/test/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
mkdir -p "$SC_ROOT/artifacts/browser"
# psql in the test runs as the server's user (trust on the socket)
rc=0
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres SC_DB=$db SC_BASE="http://127.0.0.1:$hport" \
    SC_TOKEN="$token" SC_TENANT=1 SC_OTHER_REQUEST=2 SC_TILES="http://127.0.0.1:$(cat "$work/tile-port")/tiles/{z}/{x}/{y}.png" \
    SC_TILE_LOG="$work/tiles.log" SC_PASSWORD="$password" SC_ARTIFACTS="$work/shots" HOME="$work" \
    node "$SC_ROOT/test/browser/browser.test.mjs" || rc=$?
cp "$work"/shots/*.png "$SC_ROOT/artifacts/browser/" 2>/dev/null || true
exit $rc
