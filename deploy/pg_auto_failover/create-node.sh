#!/bin/sh
# deploy/pg_auto_failover/create-node.sh PGDATA PORT HOSTNAME NAME MONITOR_URI
# Creates a Postgres node of the formation (run as the postgres user).  The
# first node becomes the primary: it gets status_checker.conf (settings
# from the environment: DATABASE, MASTER_KEY, LINK_BASE_URL); the next
# ones are built by pg_auto_failover from a base backup of the primary and
# so get the same file.  Start the node afterwards with
# `pg_autoctl run --pgdata PGDATA` (systemd: `pg_autoctl show systemd`).
set -eu
pgdata=$1 port=$2 host=$3 name=$4 monitor=$5
here=$(cd "$(dirname "$0")" && pwd)
pg_autoctl create postgres --pgdata "$pgdata" --pgport "$port" --hostname "$host" \
    --listen "${LISTEN:-$host}" --name "$name" --monitor "$monitor" \
    --auth "${AUTH:-scram-sha-256}" ${SSL:---ssl-self-signed}
if [ ! -f "$pgdata/status_checker.conf" ]; then
    sed -e "s|@DATABASE@|${DATABASE:-postgres}|g" \
        -e "s|@MASTER_KEY@|${MASTER_KEY:?the master key file (same path on every node)}|g" \
        -e "s|@LINK_BASE_URL@|${LINK_BASE_URL:-https://status.example.com/r/}|g" \
        "$here/status_checker.conf" > "$pgdata/status_checker.conf"
    # after pg_auto_failover's include, so that these settings win
    echo "include_if_exists = 'status_checker.conf'	# status_checker (deploy/pg_auto_failover)" \
        >> "$pgdata/postgresql.conf"
fi
