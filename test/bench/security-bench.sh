#!/usr/bin/env bash
# test/bench/security-bench.sh — `make bench-security`: what the security
# domain (0.4.0: audit triggers, encryption triggers, row-level security)
# costs, against 0.3.0 installed from its frozen script in another database
# of the same cluster, in the same run:
#
#   1. import_sites of 100,000 sites, each with a contact mail address
#      (0.4.0 writes 200,000 audit records and encrypts 100,000 addresses);
#   2. create_request for those 100,000 sites (enqueues 100,000 messages;
#      0.4.0 copies the encrypted recipients);
#   3. submit_report_for, 8 clients (0.4.0: the API runs under row-level
#      security as status_checker_api);
#   4. seal_audit_log of the records and reports of the above (0.4.0 only).
#
# Each figure is the median of RUNS runs (default 3), the two versions
# alternating.  A benchmark, not a test: it asserts nothing and prints a
# Markdown report (also saved under test/bench/results/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

RUNS=${RUNS:-3}
SITES=${SITES:-100000}
DURATION=${DURATION:-6}
DIR=${BENCH_DIR:-/tmp/status_checker-bench-security}
out="$SC_ROOT/test/bench/results/security-$(date -u +%Y%m%dT%H%M%SZ).md"
mkdir -p "$(dirname "$out")"

sc_apt_install $SC_BUILD_PACKAGES
sc_build_install
sc_cluster_stop "$DIR" 2>/dev/null || true; rm -rf "$DIR"
sc_cluster_start "$DIR" >/dev/null
trap 'sc_cluster_stop "$DIR"' EXIT
sc_psql -q -c "ALTER SYSTEM SET max_wal_size = '16GB'" -c "SELECT pg_reload_conf()" >/dev/null
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
pgb() { sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -U postgres "$@"; }
ms() { sc_psql -d "$1" -At -c '\timing on' -c "$2" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }

csv=$DIR/sites.csv
python3 - "$SITES" > "$csv" <<'PY'
import sys
n = int(sys.argv[1])
print("code,name,group_path,municipality_code,lat,lon,contact_email")
for i in range(1, n + 1):
    print(f"S{i},拠点{i},全国/G{i % 47},1310100,{30 + (i % 1000) / 100.0},{130 + (i % 997) / 100.0},site{i}@example.co.jp")
PY
chmod 644 "$csv"

declare -A import create submit seal
for v in 0.3.0 0.4.0; do
    db=sc_sec_${v//./_}
    sc_psql -c "CREATE DATABASE $db" >/dev/null
    sc_psql -d $db -c "CREATE EXTENSION status_checker VERSION '$v'" >/dev/null
done

for run in $(seq 1 "$RUNS"); do
    for v in 0.3.0 0.4.0; do
        db=sc_sec_${v//./_}
        sc_log "run $run, $v"
        t=$(sc_psql -d $db -At -c "SELECT status_checker.create_tenant('ベンチ$run', 'admin', 'admin@example.com')")
        f=$(sc_psql -d $db -At -c "SELECT status_checker.create_form($t, 'f', status_checker.default_form_definition())")
        sc_psql -d $db -q -c "SELECT status_checker.add_channel($t, 'email', 'mail', '{\"url\": \"smtp://127.0.0.1:9\", \"from\": \"a@example.com\", \"starttls\": \"off\"}')" >/dev/null
        sc_psql -d $db -q -c "CHECKPOINT" >/dev/null
        import[$v]+="$(ms $db "SELECT status_checker.import_sites($t, pg_read_file('$csv'))") "
        sc_psql -d $db -q -c "CHECKPOINT" >/dev/null
        create[$v]+="$(ms $db "SELECT status_checker.create_request($t, $f, 'bench', now() + interval '1 day')") "
        r=$(sc_psql -d $db -At -c "SELECT max(request_id) FROM status_checker.request")
        script=$DIR/submit.sql
        cat > "$script" <<SQL
\set site random(1, $SITES)
SELECT status_checker.submit_report_for($r, 'S' || :site, '{"building": "none", "injured": 0, "operation": "normal"}');
SQL
        chmod 644 "$script"
        tps=$(pgb -n -M prepared -c 8 -j 2 -T "$DURATION" -f "$script" $db 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
        submit[$v]+="$tps "
        if [ "$v" = 0.4.0 ]; then
            n=$(sc_psql -d $db -At -c "SELECT (SELECT count(*) FROM status_checker.audit_log) + (SELECT count(*) FROM status_checker.report)
                                          - (SELECT count(*) FROM status_checker.audit_chain)")
            t_seal=$(ms $db "SELECT status_checker.seal_audit_log(1000000)")
            seal[$v]+="$(python3 -c "print(round($n / ($t_seal / 1000.0)))") "
        fi
        # the next run starts with the server in the same state
        sc_psql -d $db -q -c "TRUNCATE status_checker.outbox" -c "VACUUM ANALYZE" >/dev/null
    done
done

row() {  # row "label" "0.3.0 values" "0.4.0 values" unit
    local a b ma mb
    a=$2; b=$3
    ma=$(echo $a | tr ' ' '\n' | median); mb=$(echo $b | tr ' ' '\n' | median)
    printf '| %s | %s | **%s** | %s | **%s** | %s |\n' "$1" "$a" "$ma" "$b" "$mb" \
        "$(python3 -c "print(f'{($mb / $ma - 1) * 100:+.0f} %')")"
}
{
    echo "### Security (0.4.0) vs 0.3.0, same cluster, same run — $(date -u +%Y-%m-%d)"
    echo
    echo "Command: \`make bench-security\` (RUNS=$RUNS, SITES=$SITES, DURATION=$DURATION s; $(nproc) CPUs)."
    echo
    echo "| workload | 0.3.0 runs | 0.3.0 median | 0.4.0 runs | 0.4.0 median | change |"
    echo "|---|---|---|---|---|---|"
    row "import_sites, $SITES sites with a contact each (ms)" "${import[0.3.0]}" "${import[0.4.0]}"
    row "create_request for $SITES sites, one message each (ms)" "${create[0.3.0]}" "${create[0.4.0]}"
    row "submit_report_for, 8 clients (tps)" "${submit[0.3.0]}" "${submit[0.4.0]}"
    echo
    echo "seal_audit_log (0.4.0), records and reports chained per second: ${seal[0.4.0]}→ median **$(echo ${seal[0.4.0]} | tr ' ' '\n' | median)**"
} | tee "$out"
