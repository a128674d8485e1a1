#!/usr/bin/env bash
# test/citus/build-citus.sh SRC — build Citus from the source tree SRC
# (tag v13.2.2, which supports PostgreSQL 15) and install it into the
# system PostgreSQL 15 (Debian's postgresql-server-dev-15).
#
# Debian 12 does not package Citus; the Citus suite (test/citus/) needs it.
# SRC is left untouched: the build runs in a copy (CITUS_BUILD, default
# tmp_check/citus-build in the checkout), where one compatibility fix is applied — Citus
# 13.2.2's src/include/pg_version_compat.h defines have_createdb_privilege()
# as a static function, which Debian's PostgreSQL 15.20 now exports from
# commands/dbcommands.h ("static declaration follows non-static"); the copy
# drops its definition when the server headers declare it.
#
# Build dependencies (Debian packages), kept to what the build needs:
#   libkrb5-dev   the server headers (libpq/libpq-be.h) include
#                 <gssapi/gssapi.h>: Debian's PostgreSQL is built with GSSAPI
#   libzstd-dev   citus_columnar's compression includes <zstd.h> whenever
#                 the server's pg_config.h says HAVE_LIBZSTD (Debian's
#                 does), whatever configure was told
#   (postgresql-server-dev-15, build-essential: already the project's own
#   build packages, test/lib.sh)
# and configure runs --without-libcurl (libcurl only serves Citus's
# anonymous statistics collection, which calls home: nothing here may reach
# outside 127.0.0.1) and --without-lz4 (lz4 only serves the compression of
# citus_columnar tables, which status_checker does not use; columnar keeps
# zstd and pglz), so neither liblz4-dev nor a curl library is needed.
#
# Installing writes into the system PostgreSQL: run it under the install
# lock, as everything that installs there (docs: `flock -o /tmp/sc-install.lock`).
# The compile itself (make -j2) takes minutes on two cores and needs no
# lock: run alone, set CITUS_INSTALL_LOCK=/tmp/sc-install.lock and the
# script takes that lock (flock -o) for the install step only.  Under
# `make test` (already run under the lock) leave it unset.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

src=${1:?usage: test/citus/build-citus.sh CITUS_SOURCE_TREE}
[ -f "$src/configure" ] && [ -f "$src/src/include/pg_version_compat.h" ] \
    || sc_die "$src is not a Citus source tree (no configure or src/include/pg_version_compat.h)"
src=$(cd "$src" && pwd)
# the build tree: in the checkout (tmp_check/, ignored by git), never a
# fixed name in a world-writable folder, and reused only when it is ours
# and no one else may write to it (its Makefile runs as root at install)
umask 022
build=${CITUS_BUILD:-$SC_ROOT/tmp_check/citus-build}
if [ -e "$build" ] || [ -L "$build" ]; then
    [ ! -L "$build" ] && [ -d "$build" ] && [ -O "$build" ] \
        && [ -z "$(find "$build" -maxdepth 0 -perm /022)" ] \
        || sc_die "$build is not a folder of $(id -un)'s that only it can write to: refusing to build there"
fi
PG_CONFIG=${PG_CONFIG:-pg_config}

sc_apt_install build-essential postgresql-server-dev-15 libkrb5-dev libzstd-dev

version=$(sed -n "s/^AC_INIT(\[Citus\], \[\([^]]*\)\].*/\1/p" "$src/configure.ac")
sc_log "building Citus $version from $src in $build"
[ "$version" = 13.2.2 ] || printf 'warning: Citus %s, not the 13.2.2 the suite is written for\n' "$version" >&2

# a fresh copy when SRC or its version changed; a rebuild of the same
# source reuses the objects
stamp="$src $version"
if [ ! -f "$build/.sc-source" ] || [ "$(cat "$build/.sc-source")" != "$stamp" ]; then
    rm -rf "$build"
    mkdir -p "$build"
    cp -a "$src/." "$build/"
    echo "$stamp" > "$build/.sc-source"
fi
cd "$build"

# The compatibility fix (in the copy only).  PostgreSQL 15.20 declares
# `extern bool have_createdb_privilege(void);` in commands/dbcommands.h;
# Citus's static inline definition of the same name (its PostgreSQL 15
# branch) is replaced by that header, so every caller gets the server's.
hdr=src/include/pg_version_compat.h
server_inc=$("$PG_CONFIG" --includedir-server)
if grep -q 'have_createdb_privilege' "$server_inc/commands/dbcommands.h" \
   && grep -q '^have_createdb_privilege(void)$' "$hdr"; then
    sc_log "patching $hdr: PostgreSQL $("$PG_CONFIG" --version | awk '{print $2}') exports have_createdb_privilege"
    # from "static inline bool" + "have_createdb_privilege(void)" to the
    # function's closing brace at the start of a line
    sed -i -e '/^static inline bool$/{N;/\nhave_createdb_privilege(void)$/{:a;N;/\n}$/!ba;s/.*/#include "commands\/dbcommands.h"/}}' "$hdr"
    ! grep -q '^have_createdb_privilege(void)$' "$hdr" || sc_die "the patch of $hdr did not apply"
fi

if [ ! -f Makefile.global ] || [ ! -f .sc-configured ]; then
    ./configure PG_CONFIG="$PG_CONFIG" --without-libcurl --without-lz4 >configure.log 2>&1 \
        || { tail -30 configure.log >&2; sc_die "Citus's configure failed (see $build/configure.log)"; }
    touch .sc-configured
fi
start=$SECONDS
make -j2 -s >make.log 2>&1 || { grep -E 'error|Error' make.log | head -30 >&2; sc_die "the Citus build failed (see $build/make.log)"; }
sc_log "Citus compiled in $((SECONDS - start)) s"

if [ -n "${CITUS_INSTALL_LOCK:-}" ]; then
    sc_sudo flock -o "$CITUS_INSTALL_LOCK" make -s install >install.log 2>&1
else
    sc_sudo make -s install >install.log 2>&1
fi || { tail -30 install.log >&2; sc_die "make install of Citus failed (see $build/install.log)"; }
sc_log "Citus $version installed into $("$PG_CONFIG" --pkglibdir)"
