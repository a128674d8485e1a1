#!/usr/bin/env bash
# demo/stop-demo.sh [DEMO_DIR] — `make demo-stop`: stop everything `make demo`
# started in DEMO_DIR (/tmp/status_checker-demo by default): the PostgreSQL
# cluster (with its workers and the HTTP worker inside it), the local SMTP
# server, the webhook receiver and the feed server.  run-demo.sh writes their
# process ids to DEMO_DIR/demo.pids; a process is stopped only when its
# command line still names DEMO_DIR (a pid the system has given to another
# program since is left alone).  Leaves the files (mails, logs) in place.
set -uo pipefail
source "$(dirname "$0")/../test/lib.sh"

DEMO_DIR=${1:-${DEMO_DIR:-/tmp/status_checker-demo}}
pids=$DEMO_DIR/demo.pids

if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
    sc_cluster_stop "$DEMO_DIR"
    echo "stopped the PostgreSQL cluster in $DEMO_DIR/data"
fi
if [ -f "$pids" ]; then
    while read -r pid name; do
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$DEMO_DIR" || continue
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        echo "stopped the $name (pid $pid)"
    done < "$pids"
    rm -f "$pids"
fi
exit 0
