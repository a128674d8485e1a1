#!/usr/bin/env bash
# Integration: the audit chain while reports are committed concurrently
# with the sealer (an open transaction's report is sealed once it commits;
# a burst of reports with a sealer running all the while ends with every
# report chained exactly once; aborted reports leave gaps that are
# forgotten), and the installation's signatures — a deletion certificate
# and an exported chain head — checked outside the database with the
# openssl command line and nothing but the public key.  Prints TAP.
# Uses the running server (PGHOST/PGPORT).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

db=sc_security
work=$(mktemp -d /tmp/status_checker-security.XXXXXX); chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
sc_psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
sc_psql -d $db >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('監査テスト', 'admin', 'admin@example.com');
SELECT import_sites(1, 'code,name,municipality_code,lat,lon' || E'\n' ||
       string_agg(format('S%s,拠点%s,1310100,35.6,139.7', i, i), E'\n')) FROM generate_series(1, 200) i;
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '監査', now() + interval '1 hour');
SELECT create_tenant('解約テスト', 'admin', 'admin@example.org');
SQL
answers='{"building": "none", "injured": 0, "operation": "normal"}'
n=1; fail=0
echo "1..14"

# ---- a report whose transaction is still open while the sealer runs
coproc OPEN { sc_psql -d $db -At 2>&1; }
open_pid=$OPEN_PID      # bash unsets OPEN_PID as soon as the coprocess has exited
echo "BEGIN; SELECT status_checker.submit_report_for(1, 'S1', '$answers');" >&"${OPEN[1]}"
read -r -t 60 open_id <&"${OPEN[0]}"
later_id=$(q "SELECT status_checker.submit_report_for(1, 'S2', '$answers')")
q "SELECT status_checker.seal_audit_log()" >/dev/null
check "a report committed after an open one's is sealed; the open one is noted as a gap ($open_id < $later_id)" \
  "SELECT EXISTS (SELECT 1 FROM status_checker.audit_chain WHERE source = 'report' AND source_id = $later_id)
      AND EXISTS (SELECT 1 FROM status_checker.audit_gap WHERE source = 'report' AND id = $open_id)"
echo "COMMIT; SELECT 'committed';" >&"${OPEN[1]}"
read -r -t 60 _ <&"${OPEN[0]}"
echo '\q' >&"${OPEN[1]}"
wait "$open_pid" 2>/dev/null || true
q "SELECT status_checker.seal_audit_log()" >/dev/null
check "once it commits, the next seal chains it and forgets the gap" \
  "SELECT EXISTS (SELECT 1 FROM status_checker.audit_chain WHERE source = 'report' AND source_id = $open_id)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_gap)"
check "and the chain verifies" "SELECT ok FROM status_checker.verify_audit_log(1)"

# ---- a burst of reports with the sealer running all the while
script=$work/report.sql
cat > "$script" <<SQL
\set site random(1, 200)
SELECT status_checker.submit_report_for(1, 'S' || :site, '$answers');
SQL
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -n -U postgres -c 4 -j 2 -t 500 -f "$script" $db >/dev/null &
bench=$!
seals=0
while kill -0 $bench 2>/dev/null; do
    q "SELECT status_checker.seal_audit_log()" >/dev/null
    seals=$((seals + 1))
done
wait $bench
q "SELECT status_checker.seal_audit_log()" >/dev/null
# (ids drawn and thrown away when two reports of one site meet and one
# statement is re-evaluated stay as gaps: no report will ever have them)
check "after 2,000 reports sealed concurrently ($seals seals during the burst), every report is chained exactly once" \
  "SELECT (SELECT count(*) FROM status_checker.report) = 2002
      AND (SELECT count(*) FROM status_checker.audit_chain WHERE source = 'report') = 2002
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_gap g JOIN status_checker.report r ON r.report_id = g.id)"
check "and the chain verifies" "SELECT ok FROM status_checker.verify_audit_log(1)"

# ---- aborted reports leave gaps, forgotten once no transaction can fill them
gaps=$(q "SELECT count(*) FROM status_checker.audit_gap")
for i in 1 2 3; do
    sc_psql -d $db -c "BEGIN" -c "SELECT status_checker.submit_report_for(1, 'S$i', '$answers')" -c "ROLLBACK" >/dev/null
done
q "SELECT status_checker.submit_report_for(1, 'S9', '$answers')" >/dev/null
q "SELECT status_checker.seal_audit_log()" >/dev/null
check "three rolled-back reports leave three more gaps" "SELECT count(*) = $gaps + 3 FROM status_checker.audit_gap"
q "UPDATE status_checker.audit_gap SET noted_at = noted_at - interval '2 hours'" >/dev/null
q "SELECT status_checker.seal_audit_log()" >/dev/null
check "an hour later, with no transaction left that could fill them, they are forgotten" \
  "SELECT NOT EXISTS (SELECT 1 FROM status_checker.audit_gap)"
check "and the chain still verifies" "SELECT ok FROM status_checker.verify_audit_log(1)"

# ---- signatures checked outside the database
q "SELECT status_checker.installation_public_key()" > "$work/installation.pem"
q "SELECT status_checker.delete_tenant(2)" > "$work/certificate.json"
q "SELECT status_checker.audit_chain_head(1)" > "$work/head.json"
split() {  # split JSON-FILE PREFIX: the signed text and the raw signature
    "$SC_PYTHON" - "$1" "$2" <<'PY'
import base64, json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
open(sys.argv[2] + ".msg", "wb").write(doc["signed"].encode("utf-8"))
open(sys.argv[2] + ".sig", "wb").write(base64.b64decode(doc["signature"]))
PY
}
verify() { openssl pkeyutl -verify -pubin -inkey "$work/installation.pem" -rawin -in "$1.msg" -sigfile "$1.sig" >/dev/null 2>&1; }
split "$work/certificate.json" "$work/cert"
split "$work/head.json" "$work/head"
ok "openssl pkeyutl verifies the deletion certificate with the installation's public key" 'verify "$work/cert"'
ok "and the exported audit chain head" 'verify "$work/head"'
sed -i 's/"rows_total": [0-9]*/"rows_total": 0/' "$work/cert.msg"
ok "a certificate edited by one number does not verify" '! verify "$work/cert"'
ok "the signed text is the certificate shown" \
  "\"$SC_PYTHON\" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if json.loads(d[\"signed\"]) == d[\"certificate\"] else 1)' \"$work/certificate.json\""
check "a deleted tenant leaves no row in any table" \
  "SELECT sum((xpath('/table/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s WHERE tenant_id = 2', t), false, false, '')))[1]::text::int) = 0
   FROM status_checker._tenant_tables() t"

out=$(sc_psql -d $db -At -c "SELECT status_checker.set_app_user(1, 'admin')" 2>&1 || true)
ok "set_app_user outside a transaction block is refused (the context would end at once)" \
   "echo \"\$out\" | grep -q 'can only be used in a transaction block'"

sc_psql -c "DROP DATABASE $db" >/dev/null
exit $fail
