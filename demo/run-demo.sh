#!/usr/bin/env bash
# demo/run-demo.sh — `make demo`: install, build, start a throwaway cluster,
# load demo sites with real JMA municipality codes, create a request and
# replay site staff answering it in waves.  Leaves the cluster running.
set -euo pipefail
source "$(dirname "$0")/../test/lib.sh"

DEMO_DIR=${DEMO_DIR:-/tmp/status_checker-demo}
DB=status_checker_demo
codes=$SC_SHARED/fixtures/feeds/codes

sc_apt_install $SC_BUILD_PACKAGES python3
[ -f "$codes/jma_AreaForecastLocalE_AreaInformationCity_PointSeismicIntensity.csv" ] \
    || sc_die "JMA code tables not found under $codes (../shared must sit beside the repository)"
sc_build_install

sc_log "starting a throwaway PostgreSQL 15 cluster in $DEMO_DIR"
sc_cluster_stop "$DEMO_DIR"
rm -rf "$DEMO_DIR"
sc_cluster_start "$DEMO_DIR"
sc_psql -c "CREATE DATABASE $DB" >/dev/null

sc_log "creating the demo tenant, its sites in 8 prefectures (real JMA municipality codes), and a request"
sc_psql -d $DB -c "CREATE EXTENSION status_checker" >/dev/null
sc_psql -d $DB -v codes="$codes" -f "$SC_ROOT/demo/demo.sql" || sc_die "demo setup failed"

for wave in 1 2 3 4; do
    label=("" "the first reports arrive" "most sites answer" "late answers" "some sites update their status")
    sc_log "wave $wave: ${label[$wave]}"
    sc_psql -d $DB -v wave=$wave -f "$SC_ROOT/demo/simulate.sql"
    sc_psql -d $DB -At -c "SELECT format('   %s of %s sites have answered (%s %%), %s reports in all, worst level %s (%s)',
                                         responded, targets, round(response_rate * 100),
                                         (SELECT count(*) FROM status_checker.report), coalesce(worst_level::text, '-'),
                                         coalesce(worst_color, '-'))
                           FROM status_checker.request_summary ORDER BY request_id DESC LIMIT 1"
    sleep 1
done

sc_psql -d $DB -f "$SC_ROOT/demo/show.sql"

cat <<MSG

The cluster is still running. Look around:
  psql -h $PGHOST -p $PGPORT -U postgres $DB
  SET search_path = status_checker;
  SELECT * FROM site_status WHERE level IS NULL;           -- who has not answered
  SELECT * FROM response_timeline;                         -- answers per minute
  SELECT request_geojson(1);                               -- for a web map
  SELECT * FROM report_history WHERE site_code = 'ISK001'; -- every report of a site
Docs: README.md (tour) and docs/sql-reference.md.
Stop it with:
  $( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- " )$PG_BINDIR/pg_ctl -D $DEMO_DIR/data stop
MSG
