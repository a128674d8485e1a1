# test/lib.sh — shared shell helpers for the test runner, the demo and the
# benchmarks.  Source it; it defines functions only.
#
# PostgreSQL's server programs refuse to run as root: when we are root, the
# server and its clients run as the `postgres` user (runuser); otherwise as
# the current user, with sudo only for installing packages and the build.

SC_ROOT=${SC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
SC_SHARED=${SC_SHARED:-$(cd "$SC_ROOT/.." && pwd)/shared}
# the recorded feeds and JMA code tables every suite, benchmark and the demo
# read (public data of others, never copied into the repository)
SC_FIXTURES=${SC_FIXTURES:-$SC_SHARED/fixtures/feeds}
export SC_SHARED SC_FIXTURES
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}

sc_log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
sc_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# run as root: directly when root, else via sudo
sc_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# run as the database server's user
sc_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Install Debian packages that are missing (apt-get update first, once).
sc_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    sc_log "installing Debian packages: ${missing[*]}"
    sc_sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sc_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

SC_BUILD_PACKAGES="build-essential postgresql-15 postgresql-server-dev-15 postgresql-client-15 libjansson-dev libcurl4-openssl-dev libxml2-dev libssl-dev libmicrohttpd-dev libargon2-dev"
SC_TEST_PACKAGES="postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl curl clang libclang-rt-14-dev python3 python3-aiosmtpd postgresql-15-cron nginx-light openssl libipc-run-perl pgbackrest postgresql-15-auto-failover chromium fonts-ipafont-gothic wrk"
# Debian's python (with python3-aiosmtpd), whatever python3 comes first on PATH
SC_PYTHON=${SC_PYTHON:-/usr/bin/python3}

# Build and install the extension into the system PostgreSQL 15.
sc_build_install() {
    sc_log "building status_checker"
    make -C "$SC_ROOT" -s >/dev/null || sc_die "the build failed"
    sc_sudo make -C "$SC_ROOT" -s install >/dev/null || sc_die "make install failed"
}

# sc_bench_dir DIR — a fresh working directory for a benchmark (the cluster
# and nginx of an earlier run in it stopped), writable by the server's user.
sc_bench_dir() {
    local dir=$1
    sc_cluster_stop "$dir/cluster" 2>/dev/null || true
    sc_nginx_stop "$dir"
    rm -rf "$dir"; mkdir -p "$dir/nginx/tmp"; chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    return 0
}

# sc_nginx_sink DIR [LOG] — the loopback nginx of ../shared/bench (answers
# every POST with 200) on a free port, its files under DIR/nginx; with LOG,
# it writes each request's Idempotency-Key there.  Prints the port.
sc_nginx_sink() {
    local dir=$1 log=${2:-} port
    port=$(sc_free_port)
    mkdir -p "$dir/nginx/tmp"
    sed -e "s|/tmp/nginx-perf|$dir/nginx|g" -e "s|127.0.0.1:58080|127.0.0.1:$port|" \
        ${log:+-e "s|access_log off;|log_format keys '\$http_idempotency_key'; access_log $log keys buffer=256k flush=1s;|"} \
        "$SC_SHARED/bench/nginx-sink.conf" > "$dir/nginx/nginx.conf"
    nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" -e "$dir/nginx/error.log" || return 1
    echo "$port"
}
sc_nginx_stop() { [ -f "$1/nginx/nginx.pid" ] && kill "$(cat "$1/nginx/nginx.pid")" 2>/dev/null; return 0; }

# A free TCP port on 127.0.0.1.
sc_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# sc_new_master_key FILE [OLD_FILE] — a new random master key (256 bits, hex)
# in FILE, mode 600, owned by the server's user; with OLD_FILE, its keys
# follow the new one (they still unwrap during a rotation).
sc_new_master_key() {
    local file=$1 old=${2:-}
    ( umask 077; { head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n'; echo
                   if [ -n "$old" ]; then grep -v '^#' "$old"; fi; } > "$file.tmp" ) && mv "$file.tmp" "$file"
    [ "$(id -u)" = 0 ] && chown postgres "$file"
    chmod 600 "$file"
}

# sc_cluster_start DIR [PORT] — initdb (if needed) and start a throwaway
# cluster listening on 127.0.0.1 and a socket in DIR.  Sets PGHOST, PGPORT.
sc_cluster_start() {
    local dir=$1 port=${2:-$(sc_free_port)}
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        sc_as_pg "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 -A trust >/dev/null
        # the master key that wraps the tenants' data keys: outside the data
        # directory, readable by the server only (docs/security.md)
        sc_new_master_key "$dir/master.key"
        cat <<EOF | sc_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
shared_buffers = 256MB
fsync = on
synchronous_commit = on
log_min_messages = warning
log_min_error_statement = error
status_checker.master_key_file = '$dir/master.key'
EOF
    else
        port=$(sed -n 's/^port = //p' "$dir/data/postgresql.conf" | tail -1)
    fi
    sc_as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; sc_die "the server did not start"; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
}

# sc_worker_cluster DIR DB [SETTING...] — a throwaway cluster (sc_cluster_start)
# with status_checker preloaded for its workers in database DB (created
# here), the dispatcher and the feed watcher off unless a SETTING says
# otherwise, 127.0.0.0/8 an allowed destination (the tests' receivers are on
# 127.0.0.1), and each SETTING line ("name = value") added; restarted so that
# they hold.  Sets PGHOST, PGPORT.
sc_worker_cluster() {
    local dir=$1 db=$2; shift 2
    sc_cluster_start "$dir" >/dev/null
    sc_psql -c "CREATE DATABASE $db" >/dev/null
    printf '%s\n' "shared_preload_libraries = 'status_checker'" "status_checker.database = '$db'" \
        "status_checker.dispatcher = off" "status_checker.feed_watcher = off" \
        "status_checker.allowed_destinations = '127.0.0.0/8'" "$@" \
        | sc_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    sc_as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
}

# sc_http_login DIR DB [ROLE] — the HTTP workers of the cluster in DIR log
# in as ROLE (sc_http), set up as docs/web.md tells an operator: a login of
# its own that is no superuser, NOINHERIT, a member of status_checker_gateway
# and of the four group roles and of nothing else (the extension must be in
# DB: it creates those roles).  status_checker.http_role is read at start:
# the cluster is restarted.
sc_http_login() {
    local dir=$1 db=$2 role=${3:-sc_http}
    sc_psql -d "$db" >/dev/null <<SQL
CREATE ROLE $role LOGIN NOINHERIT;
GRANT status_checker_gateway, status_checker_viewer, status_checker_reporter, status_checker_manager,
      status_checker_admin TO $role;
SQL
    echo "status_checker.http_role = '$role'" | sc_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null
    sc_as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart >/dev/null
}

sc_cluster_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] && sc_as_pg "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
}

# psql with the settings tests want: stop on the first error, quiet.
sc_psql() { sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" psql -X -q -v ON_ERROR_STOP=1 -U postgres "$@"; }

# sc_wait_until DB SECONDS SQL [INTERVAL]: wait until the boolean SQL
# answers t, asking every INTERVAL (0.2) seconds in one session.  For
# benchmarks: a new psql for each question (a client process and a server
# backend started ~20 times a second) takes a share of the cores the
# measured workers need; one idle session does not.
sc_wait_until() {
    local db=$1 sql=$3 interval=${4:-0.2} ans='' deadline=$((SECONDS + $2))
    coproc SC_WAITER { sc_psql -d "$db" -At 2>&1; }
    while [ $SECONDS -lt $deadline ]; do
        printf '%s;\n' "$sql" >&"${SC_WAITER[1]}"
        IFS= read -r -t 60 ans <&"${SC_WAITER[0]}" || break
        case "$ans" in
            t) break ;;
            f) sleep "$interval" ;;
            *) printf 'sc_wait_until: %s\n' "$ans" >&2; break ;;
        esac
    done
    # psql quits when told; after an error (ON_ERROR_STOP) it has quit
    # already, and writing to it would raise SIGPIPE
    case "$ans" in
        t|f) { printf '\\q\n' >&"${SC_WAITER[1]}"; } 2>/dev/null ;;
        *) kill "$SC_WAITER_PID" 2>/dev/null ;;
    esac
    wait "$SC_WAITER_PID" 2>/dev/null
    [ "$ans" = t ]
}

# TAP helpers of the integration tests that run their own cluster: set db,
# then q (SQL → value), qb (SQL or a boolean expression), wait_for (poll a
# condition with a deadline, never a blind sleep), ok (shell test), check
# (SQL test, with SQL to show on failure).  The caller exits with $fail.
n=1; fail=0
q() { sc_psql -d "$db" -At -c "$1"; }
qb() { case "$1" in SELECT*|WITH*) q "$1" ;; *) q "SELECT $1" ;; esac; }
wait_for() {  # wait_for SECONDS "SQL or expression returning true"
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(qb "$2" 2>/dev/null)" = t ] && return 0
        sleep 0.2
    done
    return 1
}
ok() { if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi; n=$((n + 1)); }
check() {  # check "description" "SQL or expression returning true" ["SQL to show on failure"]
    local got; got=$(qb "$2" 2>&1) || true
    if [ "$got" = t ]; then echo "ok $n - $1"
    else
        echo "not ok $n - $1 (got: $got)"; fail=1
        if [ -n "${3:-}" ]; then q "$3" 2>&1 | sed 's/^/# /' || true; fi
    fi
    n=$((n + 1))
}
