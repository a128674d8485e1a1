#!/usr/bin/env bash
# test/pgtap.sh [FILE...] — run pgTAP files (test/pgtap/*.sql; all of them
# when none is named) with pg_prove against a throwaway cluster of their own
# (sc_cluster_start: a master key, 127.0.0.1 and a socket in a temporary
# directory), in a database with pgtap and status_checker, as the server's
# user.  The extension must be installed (`make && sudo make install`; under
# the install lock).  Each file runs in one transaction and includes what it
# needs (fixtures.psql), so any one of them can run alone:
#   flock -o /tmp/sc-install.lock bash test/pgtap.sh test/pgtap/05_feeds.sql
# `make test` (test/run-all.sh) runs them all this way.  Exits non-zero when
# a test fails.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

sc_apt_install postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
# the files, as paths pg_prove reads from test/pgtap (where it runs); a
# name alone (05_feeds.sql) is one of test/pgtap's
files=()
for f in "$@"; do
    [ -f "$f" ] || f=$SC_ROOT/test/pgtap/$f
    [ -f "$f" ] || sc_die "no such pgTAP file: $f"
    f="$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"
    [ "$(dirname "$f")" = "$(cd "$SC_ROOT/test/pgtap" && pwd)" ] && f=./$(basename "$f")
    files+=("$f")
done
if [ ${#files[@]} = 0 ]; then
    for f in "$SC_ROOT"/test/pgtap/[0-9]*.sql; do files+=("./$(basename "$f")"); done
fi

work=$(mktemp -d /tmp/status_checker-pgtap.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
trap 'sc_cluster_stop "$work/cluster"; rm -rf "$work"' EXIT
sc_cluster_start "$work/cluster"
sc_psql -c "CREATE DATABASE sc_tap" >/dev/null &&
sc_psql -d sc_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION status_checker" >/dev/null \
    || sc_die "could not create the test database"
cd "$SC_ROOT/test/pgtap" &&
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" SC_FIXTURES="$SC_FIXTURES" \
    pg_prove --ext .sql -U postgres -d sc_tap "${files[@]}"
