#!/usr/bin/env bash
# test/tap/report_client.sh CONNINFO TOKENFILE ACKFILE ANSWERS
# One reporter client of the resilience tests: submits one report per
# personal link in TOKENFILE, each in its own connection (as a web
# frontend would).  A report counts as acknowledged when the server
# returned its id: "TOKEN ID" is then appended to ACKFILE.  When the
# connection is lost (psql exit status 2: the server crashed or restarts),
# the client waits for the server, with a deadline, and submits that link
# again; an error from the function itself is written as "TOKEN ERROR".
set -u
conninfo=$1 tokens=$2 ack=$3 answers=$4
: > "$ack"
while read -r token; do
    deadline=$((SECONDS + 120))
    while :; do
        id=$(PGAPPNAME=sc_report_client psql -X -At -d "$conninfo" -v ON_ERROR_STOP=1 \
                 -c "SELECT status_checker.submit_report('$token', '$answers')" 2>>"$ack.err")
        rc=$?
        if [ $rc = 0 ]; then echo "$token $id" >> "$ack"; break; fi
        if [ $rc != 2 ] || [ $SECONDS -ge $deadline ]; then echo "$token ERROR" >> "$ack"; break; fi
        pg_isready -q -d "$conninfo" -t 5; sleep 0.1   # poll: the server, or a promoted standby
    done
done < "$tokens"
