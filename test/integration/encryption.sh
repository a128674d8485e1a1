#!/usr/bin/env bash
# Integration: envelope encryption on a real cluster of its own —
#  * no plaintext in the pages of the encrypted tables (while the same
#    grep finds an unencrypted site name in the site table's pages);
#  * a data-key rotation with batched re-encryption while 4 clients keep
#    submitting reports: every report kept, the old key destroyed, every
#    value still readable;
#  * a master-key rotation (new key first, old key second, reload,
#    rotate_master_key, old key removed) loses nothing;
#  * a wrong master key and a missing one give clear errors and change
#    nothing; with the right key back, everything reads again;
#  * a master key file readable by others is refused;
#  * pg_dump and restore into another database: contacts read back.
# Prints TAP.  Starts and stops its own cluster.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

work=$(mktemp -d /tmp/status_checker-encryption.XXXXXX); chmod 755 "$work"
cleanup() { sc_cluster_stop "$work/cluster" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
sc_cluster_start "$work/cluster" >/dev/null
conf=$work/cluster/data/postgresql.conf
key=$work/cluster/master.key
# preloaded: the postmaster reads the master key at start
echo "shared_preload_libraries = 'status_checker'" | sc_as_pg tee -a "$conf" >/dev/null
sc_cluster_stop "$work/cluster"; sc_cluster_start "$work/cluster" >/dev/null
db=sc_encryption
reload() { sc_psql -c "SELECT pg_reload_conf()" >/dev/null; sleep 0.5; }
sc_psql -c "CREATE DATABASE $db" >/dev/null
sc_psql -d $db >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('暗号化テスト', 'admin', 'admin@crypt.example');
SELECT import_sites(1, 'code,name,municipality_code,lat,lon,contact_email' || E'\n' ||
       string_agg(format('S%s,七尾拠点%s,1720400,37.0,136.9,person%s@crypt.example', i, i, i), E'\n')) FROM generate_series(1, 200) i;
SELECT add_site_contact(1, 'S1', 'webhook', 'https://hooks.crypt.example/secret-path', '能登 花子');
SELECT add_channel(1, 'webhook', 'hook', '{"url": "https://hooks.crypt.example/x", "secret": "topsecret-0123456789"}');
SELECT create_form(1, 'f', default_form_definition());
SELECT create_request(1, 1, '暗号化', now() + interval '1 hour');
SELECT issue_tokens(1);
CHECKPOINT;
SQL
n=1; fail=0
echo "1..15"
ok "preloaded, the server reads the master key at start (the log names its id, never the key)" \
   "grep -Eq 'master key [0-9a-f]{16} loaded \(1 key\)' \"$work/cluster/server.log\" && ! grep -qf \"$key\" \"$work/cluster/server.log\""

# ---- pages on disk
files() {  # the data files (and TOAST) of the tables named
    q "SELECT string_agg(current_setting('data_directory') || '/' || pg_relation_filepath(c), ' ')
       FROM (SELECT oid FROM pg_class WHERE oid IN ($1)
             UNION SELECT reltoastrelid FROM pg_class WHERE oid IN ($1) AND reltoastrelid <> 0) x(c)"
}
enc_files=$(files "'status_checker.site_contact'::regclass, 'status_checker.app_user'::regclass, 'status_checker.outbox'::regclass,
                   'status_checker.channel'::regclass, 'status_checker.link_key'::regclass")
site_files=$(files "'status_checker.site'::regclass")
ok "no plaintext address, name or secret in the pages of the encrypted tables" \
   "! sc_as_pg grep -a -q -e 'person17@crypt.example' -e 'secret-path' -e 'topsecret-0123456789' -e '能登 花子' $enc_files"
ok "(the same search finds an unencrypted site name in the site table's pages)" "sc_as_pg grep -a -q '七尾拠点17' $site_files"

# ---- data-key rotation while reports keep coming
script=$work/report.sql
cat > "$script" <<'SQL'
\set site random(1, 200)
SELECT status_checker.submit_report_for(1, 'S' || :site, '{"building": "none", "injured": 0, "operation": "normal"}');
SQL
chmod 644 "$script"
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pgbench -n -U postgres -c 4 -j 2 -t 400 -f "$script" $db >/dev/null &
bench=$!
q "SELECT status_checker.rotate_data_key(1)" >/dev/null
sc_psql -d $db -c "CALL status_checker.reencrypt_tenant(1, 25)" >/dev/null
wait $bench
check "during the rotation every report was kept (1,600)" "SELECT count(*) = 1600 FROM status_checker.report"
check "the old data key is destroyed: only the index key and data key 2 remain" \
      "SELECT array_agg(version ORDER BY version) = '{0,2}' FROM status_checker.data_key WHERE tenant_id = 1"
check "every contact still reads back" \
      "SELECT count(*) = 201 AND bool_and(address LIKE '%@crypt.example' OR address LIKE 'https://%') FROM status_checker.contact_list"

# ---- master-key rotation
old_id=$(q "SELECT status_checker.master_key_id()")
cp "$key" "$work/old.key"
sc_new_master_key "$key" "$work/old.key"     # new key first, old key second
reload
rewrapped=$(q "SELECT status_checker.rotate_master_key()")
new_id=$(q "SELECT status_checker.master_key_id()")
check "rotate_master_key re-wraps every data key under the new master key ($rewrapped keys, $old_id → $new_id)" \
   "SELECT $rewrapped >= 2 AND '$old_id' <> '$new_id'
       AND bool_and(status_checker._wrapped_by(wrapped) = '$new_id') FROM status_checker.data_key"
head -1 "$key" > "$work/new.key"; cat "$work/new.key" > "$key"     # only the new key
reload
check "with the old master key gone, everything reads back" \
      "SELECT count(*) = 201 FROM status_checker.contact_list WHERE address IS NOT NULL"

# ---- a wrong master key, then none
cp "$key" "$work/right.key"
before=$(q "SELECT md5(string_agg(address || coalesce(name, ''), ',' ORDER BY contact_id)) FROM status_checker.site_contact")
sc_new_master_key "$key"; reload
wrong=$(sc_psql -d $db -At -c "SELECT count(address) FROM status_checker.contact_list" 2>&1 || true)
ok "a wrong master key: a clear error naming the key that is needed" \
   "echo \"\$wrong\" | grep -q 'is wrapped by master key $new_id, which is not configured'"
add=$(sc_psql -d $db -At -c "SELECT status_checker.add_site_contact(1, 'S2', 'email', 'x@crypt.example')" 2>&1 || true)
ok "and no new value can be written with it" "echo \"\$add\" | grep -q 'not configured'"
sc_as_pg sed -i "s|^status_checker.master_key_file = .*|status_checker.master_key_file = ''|" "$conf"; reload
none=$(sc_psql -d $db -At -c "SELECT count(address) FROM status_checker.contact_list" 2>&1 || true)
ok "no master key: 'no master key is configured', with what to do" \
   "echo \"\$none\" | grep -q 'no master key is configured' && echo \"\$none\" | grep -q 'master_key_file'"
cat "$work/right.key" > "$key"
sc_as_pg sed -i "s|^status_checker.master_key_file = .*|status_checker.master_key_file = '$key'|" "$conf"; reload
check "with the right key back, nothing was lost or changed" \
      "SELECT (SELECT md5(string_agg(address || coalesce(name, ''), ',' ORDER BY contact_id)) FROM status_checker.site_contact) = '$before'
          AND (SELECT count(address) FROM status_checker.contact_list) = 201"
chmod 644 "$key"
loose=$(sc_psql -d $db -At -c "SELECT status_checker._forget_keys(); SELECT count(address) FROM status_checker.contact_list" 2>&1 || true)
chmod 600 "$key"
ok "a master key file readable by others is refused" "echo \"\$loose\" | grep -q 'accessible to other users'"

# ---- a server that starts with a wrong key file still starts, and says why
cp "$key" "$work/good.key"
echo "not a key" > "$key"
sc_cluster_stop "$work/cluster"; sc_cluster_start "$work/cluster" >/dev/null
bad=$(sc_psql -d $db -At -c "SELECT count(address) FROM status_checker.contact_list" 2>&1 || true)
ok "a bad key file at start: the server starts, warns in its log, and access says what is wrong" \
   "grep -q 'could not read the master key at start: line 1 of status_checker.master_key_file is not a master key' \"$work/cluster/server.log\" && echo \"\$bad\" | grep -q 'is not a master key'"
cat "$work/good.key" > "$key"
sc_cluster_stop "$work/cluster"; sc_cluster_start "$work/cluster" >/dev/null

# ---- dump and restore
dump=$work/dump; touch "$dump"; chmod 666 "$dump"
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pg_dump -U postgres -Fc -f "$dump" $db 2>/dev/null
sc_psql -c "CREATE DATABASE ${db}_restored" >/dev/null
sc_as_pg env PGHOST="$PGHOST" PGPORT="$PGPORT" pg_restore -U postgres -d ${db}_restored "$dump"
a=$(q "SELECT md5(string_agg(address || coalesce(name, ''), ',' ORDER BY contact_id)) FROM status_checker.contact_list")
b=$(sc_psql -d ${db}_restored -At -c "SELECT md5(string_agg(address || coalesce(name, ''), ',' ORDER BY contact_id)) FROM status_checker.contact_list")
ok "after pg_dump and restore, every contact reads back the same" "[ -n \"$a\" ] && [ \"$a\" = \"$b\" ]"

exit $fail
