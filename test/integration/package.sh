#!/usr/bin/env bash
# Integration: the Debian package (debian/, issue 22).  Builds
# postgresql-15-status-checker from the committed tree (git archive HEAD) with
# dpkg-buildpackage -us -uc -b in /tmp/debbuild, and the source package;
# lintian runs clean on both (every tag left is overridden, with its reason,
# in debian/*.lintian-overrides, debian/source/lintian-overrides, or
# explained in LINTIAN_EXPLAINED below); then the files `make install` put
# into the system PostgreSQL are removed, the .deb is installed with apt-get
# (its dependencies resolved), and a throwaway cluster with the workers
# preloaded runs CREATE EXTENSION and a short scenario (debian/tests/
# scenario.sql, as the autopkgtest does), an ALTER EXTENSION UPDATE from
# 0.10.1 (versions/) with the packaged upgrade script, the dispatcher and the HTTP worker
# (with the compiled-in web assets); and the autopkgtest, debian/tests/
# create-extension (the same scenario in pg_virtualenv).  Finally the
# package is removed and the build's `make install` restored (also on any
# early exit: the later suites need it).  Prints TAP.  Run under the install lock, with the tree built:
#   flock -o /tmp/sc-install.lock bash -c 'make -s && make -s install && bash test/integration/package.sh'
set -uo pipefail
source "$(dirname "$0")/../lib.sh"

# Lintian tags that may stay without an override in debian/ (tag → why).
# Any other tag lintian reports fails the test, whatever its level (error,
# warning, info, pedantic).  Empty: debian/ overrides each tag, with its reason.
declare -A LINTIAN_EXPLAINED=(
)

pkg=postgresql-15-status-checker
pg_config=$PG_BINDIR/pg_config
libdir=$($pg_config --pkglibdir)
extdir=$($pg_config --sharedir)/extension
out=/tmp/debbuild
extversion=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$SC_ROOT/status_checker.control")
version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$SC_ROOT/debian/changelog")   # the package's: 0.10.1-1
deb=$out/${pkg}_${version}_$(dpkg --print-architecture).deb

sc_apt_install debhelper postgresql-server-dev-all dpkg-dev fakeroot lintian $SC_BUILD_PACKAGES curl

work=$(mktemp -d /tmp/status_checker-package.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"

# the files of the extension in the system PostgreSQL, whoever put them there
installed_files() {
    ls -d "$libdir"/status_checker* "$libdir"/bitcode/status_checker* "$extdir"/status_checker* 2>/dev/null
}
is_installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; }
# the build's make install again (the later suites use it)
restore() {
    sc_build_install
    [ -f "$libdir/status_checker.so" ] && [ -f "$libdir/status_checker_parsers.so" ] \
        && [ -f "$extdir/status_checker--$extversion.sql" ]
}
restored=0
cleanup() {
    sc_cluster_stop "$work/cluster"
    if is_installed; then sc_sudo env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$pkg" >/dev/null 2>&1; fi
    if [ $restored = 0 ]; then restore >/dev/null 2>&1 || echo "# could not restore make install" >&2; fi
    rm -rf "$work"
}
trap cleanup EXIT
bail() { echo "Bail out! $*"; exit 1; }

echo "1..20"

# the build, from what is committed
git -C "$SC_ROOT" rev-parse -q --verify HEAD >/dev/null || bail "$SC_ROOT is not a git checkout (the package is built from git archive HEAD)"
rm -rf "$out"; mkdir -p "$out/src"
git -C "$SC_ROOT" archive HEAD | tar -x -C "$out/src"
ok "the package builds from git archive HEAD with dpkg-buildpackage -us -uc -b" \
   '(cd "$out/src" && dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1 && [ -f "$deb" ]'
[ -f "$deb" ] || { tail -40 "$out/build.log" | sed 's/^/# /'; bail "no package"; }

# every file make install installs, and the documentation (paths in the .deb)
expected=$(
    cd "$SC_ROOT"
    printf '%s\n' "$libdir/status_checker.so" "$libdir/status_checker_parsers.so" \
        "$libdir/bitcode/status_checker.index.bc" "$extdir/status_checker.control" \
        "$extdir/status_checker--$extversion.sql"
    sed -n 's/^DATA_built *= *//p' Makefile | tr ' ' '\n' | grep . \
        | sed -e 's/\$(EXTENSION)/status_checker/g' -e "s/\$(EXTVERSION)/$extversion/g" -e "s|^|$extdir/|"
    for f in versions/*.sql; do echo "$extdir/${f#versions/}"; done
    for f in README.md docs/*.md docs/images/*; do echo "/usr/share/doc/$pkg/${f}"; done
    echo "/usr/share/doc/$pkg/copyright"
)
dpkg-deb -c "$deb" | awk '{print substr($6, 2)}' | grep -v '/$' | sort > "$work/contents"
missing=$(comm -23 <(sort -u <<<"$expected") "$work/contents")
[ -z "$missing" ] || sed 's/^/# missing: /' <<<"$missing"
ok "the .deb holds both libraries, the bitcode, the control file, the install script, every upgrade and frozen script, the docs and images ($(wc -l <"$work/contents") files)" \
   '[ -z "$missing" ]'
ok "nothing from the test tree, the fixtures (../shared), the regression tests or the sources in the .deb" \
   '! grep -E "/(test|shared|fixtures|expected|sql|src/[a-z]+/[a-z_]+\.(c|h|sql))(/|$)" "$work/contents" | grep -v "/bitcode/" | grep -q .'
fields=$(dpkg-deb -f "$deb" Depends Recommends)
sed 's/^/# /' <<<"$fields"
ok "Depends on postgresql-15 and the libraries (libcurl, jansson, libxml2, libmicrohttpd, libargon2, OpenSSL); Recommends postgresql-15-cron" \
   '(for d in "postgresql-15 " libcurl4 libjansson4 libxml2 libmicrohttpd12 libargon2-1 libssl3; do grep -q "^Depends:.*$d" <<<"$fields" || exit 1; done) && grep -q "^Recommends: postgresql-15-cron" <<<"$fields"'

# lintian on the binary package: nothing left but what debian/ overrides (O:) with its reason
lintian --fail-on none --display-info --show-overrides --pedantic "$out"/*_"$version"_*.changes > "$work/lintian" 2>&1
sed 's/^/# lintian: /' "$work/lintian"
unexplained=$(grep -E '^[EWIPX]: ' "$work/lintian" | while read -r _ _ tag _; do
    [ -n "${LINTIAN_EXPLAINED[$tag]:-}" ] || echo "$tag"; done)
ok "lintian: no error, warning, info or pedantic tag that is not overridden in debian/ with its reason" \
   '[ -z "$unexplained" ] && ! grep -q "^internal error" "$work/lintian"'

# the source package too (3.0 (quilt): the .orig.tar.gz from the same tree,
# without debian/), and lintian on its .dsc
mkdir -p "$out/source" && git -C "$SC_ROOT" archive --prefix="status-checker-$extversion/" HEAD | tar -x -C "$out/source"
tar -C "$out/source" --exclude="status-checker-$extversion/debian" -czf "$out/source/status-checker_$extversion.orig.tar.gz" "status-checker-$extversion"
(cd "$out/source/status-checker-$extversion" && dpkg-source -b .) > "$out/source/dpkg-source.log" 2>&1
lintian --fail-on none --display-info --show-overrides --pedantic "$out/source/status-checker_$version.dsc" > "$work/lintian-source" 2>&1
sed 's/^/# lintian (source): /' "$work/lintian-source"
unexplained=$(grep -E '^[EWIPX]: ' "$work/lintian-source" | while read -r _ _ _ tag _; do
    [ -n "${LINTIAN_EXPLAINED[$tag]:-}" ] || echo "$tag"; done)
ok "the source package (3.0 (quilt)) builds, and lintian leaves no tag on it that debian/source does not override" \
   '[ -f "$out/source/status-checker_$version.dsc" ] && [ -z "$unexplained" ] && ! grep -q "^internal error" "$work/lintian-source"'

# a PostgreSQL that has never seen the build tree: make install's files gone
sc_cluster_stop "$work/cluster"
make -C "$SC_ROOT" -s uninstall >/dev/null 2>&1
rm -rf "$libdir/status_checker_parsers.so" "$libdir/bitcode/status_checker" "$libdir/bitcode/status_checker.index.bc"
# and what installs of other trees left that this one does not install (the
# frozen scripts of releases before 0.10.1): restore() puts back this tree's
rm -rf $(installed_files)
ok "the make-installed status_checker removed from the system PostgreSQL" '[ -z "$(installed_files)" ]'
ok "apt-get installs the .deb, its dependencies resolved" \
   'sc_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" > "$work/apt.log" 2>&1 && is_installed'
is_installed || { sed 's/^/# /' "$work/apt.log"; bail "the package did not install"; }
dpkg -L "$pkg" | sort > "$work/listed"
ok "dpkg -L lists every file the .deb holds, all on disk" \
   '[ -z "$(comm -23 "$work/contents" "$work/listed")" ] && (while read -r f; do [ -e "$f" ] || exit 1; done < "$work/contents")'
ok "every status_checker file in the system PostgreSQL belongs to the package" \
   '(for f in $(installed_files); do dpkg -S "$f" 2>/dev/null | grep -q "^$pkg:" || exit 1; done)'

# a throwaway cluster: the workers preloaded, the scenario
db=sc_package
hport=$(sc_free_port)
sc_worker_cluster "$work/cluster" $db "status_checker.dispatcher = on" \
    "status_checker.http_listen = '127.0.0.1:$hport'" "status_checker.http_workers = 1"
scenario=$(sc_psql -d $db -At < "$SC_ROOT/debian/tests/scenario.sql" 2>&1)
sed 's/^/# /' <<<"$scenario"
ok "CREATE EXTENSION status_checker and the scenario: a tenant, sites (upsert_site, import_sites with encrypted contacts), a form, a request, a token, submit_report, request_summary" \
   'grep -qx "scenario: ok" <<<"$scenario" && grep -qx "$extversion|3 1 .*" <<<"$scenario"'
sc_psql -c "CREATE DATABASE sc_package_upgrade" >/dev/null
ok "ALTER EXTENSION UPDATE from 0.10.1 with the packaged scripts reaches $extversion" \
   '[ "$(sc_psql -d sc_package_upgrade -At -c "CREATE EXTENSION status_checker VERSION '"'0.10.1'"'" \
         -c "ALTER EXTENSION status_checker UPDATE" -c "SELECT extversion FROM pg_extension WHERE extname = '"'status_checker'"'")" = "$extversion" ]'
sc_http_login "$work/cluster" $db
workers_up="SELECT count(*) FILTER (WHERE backend_type = 'status_checker dispatcher') >= 1
            AND count(*) FILTER (WHERE backend_type = 'status_checker http' AND usename = 'sc_http') >= 1
            FROM pg_stat_activity"
wait_for 30 "$workers_up"
q "SELECT backend_type || coalesce(' in ' || datname, '') || coalesce(' as ' || usename, '') FROM pg_stat_activity
   WHERE backend_type LIKE 'status_checker%' ORDER BY 1" | sed 's/^/# /'
ok "shared_preload_libraries = 'status_checker' starts the dispatcher and the HTTP worker (logged in as sc_http)" \
   '[ "$(qb "$workers_up")" = t ]'
health=$(q "SELECT string_agg(check_name || ' ' || status, ', ' ORDER BY check_name) FROM status_checker.system_health() WHERE check_name IN ('dispatcher', 'role')")
echo "# system_health: $health"
ok "system_health() sees the dispatcher running" '[[ "$health" == *"dispatcher ok"* ]]'
ok "the HTTP worker serves the web assets compiled into the library" \
   'cmp -s <(curl -s --max-time 10 "http://127.0.0.1:$hport/assets/report.js") "$SC_ROOT/src/web/assets/report.js"'
token=$(q "SELECT status_checker.issue_token(1, 'S1')")
ok "the reporter page answers for a new link (200, the request's title)" \
   '[ "$(curl -s --max-time 10 -o "$work/page.html" -w "%{http_code}" "http://127.0.0.1:$hport/r/$token")" = 200 ] && grep -q "パッケージ試験" "$work/page.html"'
sc_cluster_stop "$work/cluster"
(cd "$SC_ROOT" && debian/tests/create-extension) > "$work/autopkgtest.log" 2>&1; rc=$?
grep -E "scenario|ERROR|FATAL" "$work/autopkgtest.log" | sed 's/^/# autopkgtest: /'
ok "the autopkgtest (debian/tests/create-extension: pg_virtualenv, the same scenario) passes" '[ $rc = 0 ]'

# removed, then the build's make install again
ok "apt-get remove takes the package and its files away" \
   'sc_sudo env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$pkg" >/dev/null 2>&1 && ! is_installed && [ -z "$(installed_files)" ]'
restore > "$work/restore.log" 2>&1 && restored=1
[ $restored = 1 ] || sed 's/^/# /' "$work/restore.log"
ok "make install restores the build into the system PostgreSQL" '[ $restored = 1 ]'
ok "the restored files are the build's, owned by no package" \
   'cmp -s "$SC_ROOT/status_checker.so" "$libdir/status_checker.so" && ! dpkg -S "$libdir/status_checker.so" >/dev/null 2>&1'
exit $fail
