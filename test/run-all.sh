#!/usr/bin/env bash
# test/run-all.sh — `make test`: install what the tests need, build and
# install the extension, then run every suite:
#   1. pg_regress (make installcheck, with its own temporary server)
#   2. pgTAP (test/pgtap.sh: pg_prove against a throwaway cluster)
#   3. integration tests against a throwaway cluster (and clusters of their own:
#      the workers, the HTTP worker with curl and in headless chromium)
#   4. TAP tests (test/tap: crash, failover, backups; PostgreSQL::Test::Cluster
#      makes their own nodes)
#   5. the Citus suite (test/citus/run.sh: a coordinator and two Citus
#      workers), when Citus is installed or CITUS_SRC names its source tree
#      (built and installed first); else one line says it was skipped
# Ends with the line "N passed, N failed" (suites) and exits non-zero on failure.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

sc_apt_install $SC_BUILD_PACKAGES $SC_TEST_PACKAGES python3
# the browser tests drive chromium with playwright-core 1.61 (npm, pinned in
# test/browser/package-lock.json), which runs on Debian 12's Node.js 18
command -v node >/dev/null 2>&1 || sc_apt_install nodejs npm
[ -d "$SC_FIXTURES" ] || sc_die "the recorded feeds (SC_FIXTURES) not found at $SC_FIXTURES: ../shared must sit beside the checkout"
sc_build_install

work=$(mktemp -d /tmp/status_checker-test.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
mkdir -p "$SC_ROOT/artifacts" 2>/dev/null || true
cleanup() { sc_cluster_stop "$work/cluster"; }
trap cleanup EXIT

passed=0; failed=0
suite() {  # suite NAME COMMAND...
    local name=$1; shift
    sc_log "suite: $name"
    if "$@"; then passed=$((passed + 1)); echo "suite $name: ok"
    else failed=$((failed + 1)); echo "suite $name: FAILED"; fi
}

run_regress() {
    mkdir -p "$work/regress"; [ "$(id -u)" = 0 ] && chown postgres "$work/regress"
    sc_as_pg make -C "$SC_ROOT" -s installcheck REGRESS_OUT="$work/regress" TAP_TESTS= || {
        cat "$work/regress/regression.diffs" 2>/dev/null | head -200
        cp "$work/regress/regression.diffs" "$SC_ROOT/artifacts/" 2>/dev/null || true
        return 1; }
}

# every pgTAP file, against a throwaway cluster of its own: test/pgtap.sh,
# the same script that runs one file alone
run_pgtap() { bash "$SC_ROOT/test/pgtap.sh"; }

run_tap() {
    mkdir -p "$work/tap"; [ "$(id -u)" = 0 ] && chown postgres "$work/tap"
    sc_as_pg env SC_SHARED="$SC_SHARED" SC_FIXTURES="$SC_FIXTURES" SC_PYTHON="$SC_PYTHON" \
        make -C "$SC_ROOT" -s installcheck REGRESS= TAP_OUT="$work/tap" || {
        mkdir -p "$SC_ROOT/artifacts/tap"
        cp -r "$work/tap/tmp_check/log" "$SC_ROOT/artifacts/tap/" 2>/dev/null || true
        return 1; }
}

run_integration() {
    local t rc=0
    for t in "$SC_ROOT"/test/integration/*.sh; do
        echo "# $(basename "$t")"
        bash "$t" || rc=1
    done
    return $rc
}

suite pg_regress run_regress
sc_cluster_start "$work/cluster"
suite pgtap run_pgtap
suite integration run_integration
suite tap run_tap
suite fuzz bash "$SC_ROOT/test/fuzz/run-fuzz.sh"
# skipped, not failed, where there is no Citus (run.sh says so in one line)
if bash "$SC_ROOT/test/citus/run.sh" --available; then suite citus bash "$SC_ROOT/test/citus/run.sh"
else bash "$SC_ROOT/test/citus/run.sh"; fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
