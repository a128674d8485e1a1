#!/bin/sh
# deploy/pgbackrest/backup.sh — run by status-checker-backup.service every
# 6 hours as the postgres user: a full backup at the 00:00 run, else a
# differential one (pgBackRest makes it a full one if none exists yet).
# Old generations expire after each backup (pgbackrest.conf: 7 days).
set -eu
stanza=${STANZA:-status_checker}
if [ "$(date -u +%H)" = "00" ]; then type=full; else type=diff; fi
exec pgbackrest --stanza="$stanza" --type="$type" backup
