#!/usr/bin/env bash
# test/citus/run.sh — the Citus suite (issue 20): the TAP files of
# test/citus against a local Citus cluster (test/citus/CitusTest.pm: a
# coordinator and two Citus workers on 127.0.0.1), run by prove through
# `make installcheck` like test/tap.  Uses the installed status_checker.
#
# It runs when Citus is installed in the PostgreSQL that pg_config names, or
# when CITUS_SRC names a Citus source tree: then test/citus/build-citus.sh
# builds and installs it first (run under the install lock, as `make test`).
# Where neither, it prints one line saying the suite was skipped and why,
# and exits 0.  `run.sh --available` only answers (exit 0: it would run).
# Prints TAP; exits non-zero on a failure.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"

citus_control="$(${PG_CONFIG:-pg_config} --sharedir)/extension/citus.control"
available() { [ -n "${CITUS_SRC:-}" ] || [ -f "$citus_control" ]; }
if [ "${1:-}" = --available ]; then available; exit; fi
if ! available; then
    echo "suite citus: skipped (Citus is not installed, no $citus_control, and CITUS_SRC names no source tree to build it from with test/citus/build-citus.sh)"
    exit 0
fi
if [ -n "${CITUS_SRC:-}" ]; then
    bash "$SC_ROOT/test/citus/build-citus.sh" "$CITUS_SRC" || exit 1
fi

work=$(mktemp -d /tmp/status_checker-citus.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres "$work"
sc_as_pg env SC_SHARED="$SC_SHARED" SC_FIXTURES="$SC_FIXTURES" SC_PYTHON="$SC_PYTHON" \
    make -C "$SC_ROOT" -s installcheck REGRESS= TAP_OUT="$work" \
    PROVE_TESTS='test/citus/*.pl' PROVE_FLAGS='-I test/tap -I test/citus --timer'
rc=$?
if [ $rc != 0 ]; then
    mkdir -p "$SC_ROOT/artifacts/citus"
    cp -r "$work/tmp_check/log" "$SC_ROOT/artifacts/citus/" 2>/dev/null || true
else
    rm -rf "$work"
fi
exit $rc
