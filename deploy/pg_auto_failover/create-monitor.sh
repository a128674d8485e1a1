#!/bin/sh
# deploy/pg_auto_failover/create-monitor.sh PGDATA PORT HOSTNAME
# Creates the pg_auto_failover monitor (run as the postgres user, on a
# third machine).  It is then run by `pg_autoctl run` (systemd: see
# `pg_autoctl show systemd`).  docs/operations.md, "High availability".
set -eu
pgdata=$1 port=$2 host=$3
pg_autoctl create monitor --pgdata "$pgdata" --pgport "$port" --hostname "$host" \
    --listen "${LISTEN:-$host}" --auth "${AUTH:-scram-sha-256}" ${SSL:---ssl-self-signed}
