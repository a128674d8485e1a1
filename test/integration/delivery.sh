#!/usr/bin/env bash
# Integration: the dispatcher worker against real servers on 127.0.0.1 —
# an SMTP server (aiosmtpd, STARTTLS required, AUTH) and a webhook receiver
# with fault injection (test/integration/smtp_sink.py, webhook_sink.py).
# Checks the mails (decoded Japanese subject, headers, body, the personal
# link works), webhook signatures and idempotency keys, retries and
# permanent failures, cancellation, reminders and escalation, pg_cron jobs,
# destinations (status_checker.allowed_destinations: what is not public is
# refused where the connection is made, and no reply's text is stored),
# and crash safety: kill -9 of the dispatcher, then an immediate restart
# of the server, each in the middle of 5,000 messages.
# Runs its own cluster (the worker needs shared_preload_libraries).
# Never sleeps blindly: every wait polls a condition with a deadline.
# Prints TAP.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

work=$(mktemp -d /tmp/status_checker-delivery.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
smtp_pid=; hook_pid=
cleanup() {
    [ -n "$smtp_pid" ] && kill "$smtp_pid" 2>/dev/null || true
    [ -n "$hook_pid" ] && kill "$hook_pid" 2>/dev/null || true
    sc_cluster_stop "$work/cluster"
    rm -rf "$work"
}
trap cleanup EXIT

# servers: a certificate for STARTTLS, the SMTP server, the webhook receiver
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
chmod 644 "$work/key.pem" "$work/cert.pem"
"$SC_PYTHON" "$SC_ROOT/test/integration/smtp_sink.py" "$work/mail" "$work/smtp.port" \
    --cert "$work/cert.pem" --key "$work/key.pem" --auth sc:mailpass >"$work/smtp.log" 2>&1 &
smtp_pid=$!
"$SC_PYTHON" "$SC_ROOT/test/integration/webhook_sink.py" "$work/hooks.jsonl" "$work/hook.port" >"$work/hook.log" 2>&1 &
hook_pid=$!
for _ in $(seq 100); do [ -s "$work/smtp.port" ] && [ -s "$work/hook.port" ] && break; sleep 0.1; done
smtp_port=$(cat "$work/smtp.port"); hook_port=$(cat "$work/hook.port")
hook="http://127.0.0.1:$hook_port"
refused_port=$(sc_free_port)   # nobody listens there

db=sc_deliver
sc_cluster_start "$work/cluster" >/dev/null
sc_psql -c "CREATE DATABASE $db" >/dev/null
cat <<EOF | sc_as_pg tee -a "$work/cluster/data/postgresql.conf" >/dev/null
shared_preload_libraries = 'status_checker, pg_cron'
cron.database_name = '$db'
status_checker.database = '$db'
status_checker.feed_watcher = off
status_checker.dispatch_timeout = '1s'
status_checker.dispatch_retry_base = '100ms'
status_checker.dispatch_retry_max = '1s'
status_checker.dispatch_max_attempts = 4
status_checker.link_base_url = 'https://status.example.com/r/'
# the receivers are on 127.0.0.1: by default only public addresses are allowed
status_checker.allowed_destinations = '127.0.0.0/8'
EOF
restart() { sc_as_pg "$PG_BINDIR/pg_ctl" -D "$work/cluster/data" -l "$work/cluster/server.log" -w ${1:-} restart >/dev/null; }
restart

# q, qb, wait_for, ok, check: test/lib.sh
settled() { echo "NOT EXISTS (SELECT 1 FROM status_checker.outbox WHERE state IN ('queued', 'sending', 'retrying')${1:-})"; }

sc_psql -d $db >/dev/null <<SQL
CREATE EXTENSION status_checker;
CREATE EXTENSION pg_cron;
SET search_path = status_checker;
SELECT create_tenant('北陸電機', 'admin', 'admin@example.com');
SELECT add_user(1, 'noto-mgr', 'noto-manager@example.com', 'manager');
SELECT create_site_group(1, '北陸');
SELECT create_site_group(1, '能登', 1);
SELECT create_form(1, 'f', default_form_definition());
SELECT upsert_site(1, 'WJM01', '輪島営業所', '1720400', 37.39, 136.90, group_id => 2);
SELECT upsert_site(1, 'KNZ01', '金沢支店', '1720100', 36.56, 136.65, group_id => 1);
SELECT add_site_contact(1, 'WJM01', 'email', 'wajima@example.com', '輪島 太郎');
SELECT add_site_contact(1, 'KNZ01', 'email', 'kanazawa@example.com');
SELECT add_group_manager(1, 2, 'noto-mgr');
SELECT add_channel(1, 'email', 'mail', jsonb_build_object(
    'url', 'smtp://127.0.0.1:$smtp_port', 'from', '安否確認システム <noreply@example.com>',
    'username', 'sc', 'password', 'mailpass', 'ca_file', '$work/cert.pem'));
SELECT add_channel(1, 'webhook', 'ops', jsonb_build_object(
    'url', '$hook/ok', 'secret', 'whsec-0123456789abcdef', 'lang', 'ja+en'));
SQL

echo "1..62"
ok "two dispatcher workers run (status_checker.dispatch_workers), and system_health says so" \
    "wait_for 30 \"(SELECT count(*) FILTER (WHERE running) = 2 FROM status_checker.dispatcher_workers())
                   AND (SELECT status = 'ok' AND value LIKE '2 of 2 workers, heartbeat %' FROM status_checker.system_health() WHERE check_name = 'dispatcher')\""
# ------------------------------------------------------------ mail and webhook
q "SELECT status_checker.create_request(1, 1, '地震発生 被害報告', now() + interval '6 hours', message => '至急ご回答ください')" >/dev/null
ok "the request's mails and webhooks are sent (woken at commit)" "wait_for 30 \"$(settled) AND (SELECT count(*) = 4 FROM status_checker.outbox WHERE state = 'sent')\""
check "delivery_status shows them sent, recipients masked, with a latency" \
    "SELECT bool_and(state = 'sent' AND attempts = 1 AND latency IS NOT NULL) AND bool_or(recipient = 'w***@example.com')
     FROM status_checker.delivery_status WHERE request_id = 1" \
    "SELECT * FROM status_checker.delivery_status"

mailcheck=$("$SC_PYTHON" - "$work/mail" <<'PY'
import email, email.policy, glob, json, re, sys
d = sys.argv[1]
out = []
for path in sorted(glob.glob(d + '/*.eml')):
    msg = email.message_from_binary_file(open(path, 'rb'), policy=email.policy.default)
    env = json.load(open(path[:-4] + '.json'))
    if env['rcpt_tos'] != ['wajima@example.com']:
        continue
    body = msg.get_body(('plain',)).get_content()
    link = re.search(r'https://status\.example\.com/r/([A-Za-z0-9_-]{43}(?:\.[1-9][0-9]*){3})\b', body)
    ok = (str(msg['Subject']) == '【報告依頼】地震発生 被害報告 — 輪島営業所'
          and msg['From'].addresses[0].display_name == '安否確認システム'
          and msg['To'].addresses[0].display_name == '輪島 太郎'
          and re.fullmatch(r'<sc1-1-\d+@example\.com>', msg['Message-ID']) is not None
          and msg['Auto-Submitted'] == 'auto-generated' and msg['Date'] is not None
          and msg.get_body(('plain',)).get_content_charset() == 'utf-8'
          and '輪島営業所 ご担当者様' in body and '至急ご回答ください' in body and '回答期限' in body
          and env['tls'] and env['auth'] and link is not None)
    out.append(('ok' if ok else 'bad:' + str(msg['Subject'])) + ' ' + (link.group(1) if link else '-'))
print('\n'.join(out))
PY
)
token=$(echo "$mailcheck" | awk '{print $2}' | head -1)
ok "the mail: UTF-8 text, RFC 2047 Japanese subject and names, Message-ID, over STARTTLS with AUTH, with the link" \
    "[ \"\$(echo \"\$mailcheck\" | awk '{print \$1}')\" = ok ]"
check "the link names its target, and sending it issued no token (0.9.0: nothing written per message)" \
    "SELECT t.token_gen = 0 AND t.token_hash IS NULL FROM status_checker.request_target t
     WHERE (t.tenant_id, t.request_id, t.site_id) = (SELECT * FROM status_checker._first_link_target('$token'))"
check "the personal link in the mail works (submit_report with its token)" \
    "SELECT status_checker.submit_report('$token', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}') > 0"
check "... and that first report issued the link's token (generation 1, its hash stored)" \
    "SELECT t.token_gen = 1 AND t.token_hash = status_checker._token_hash('$token') FROM status_checker.request_target t
     WHERE (t.tenant_id, t.request_id, t.site_id) = (SELECT * FROM status_checker._token_locator('$token'))"

hookcheck=$("$SC_PYTHON" - "$work/hooks.jsonl" <<'PY'
import hashlib, hmac, json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
good = 0
for r in lines:
    h = {k.lower(): v for k, v in r['headers'].items()}
    mac = hmac.new(b'whsec-0123456789abcdef', (h['x-status-checker-timestamp'] + '.' + r['body']).encode(), hashlib.sha256).hexdigest()
    b = json.loads(r['body'])
    if (h['x-status-checker-signature'] == 'v1=' + mac and h['idempotency-key'] == b['idempotency_key']
            and b['version'] == 1 and b['type'] == 'request' and b['link'].startswith('https://status.example.com/r/')
            and '──────── English ────────' in b['text'] and b['site']['code'] in ('WJM01', 'KNZ01')):
        good += 1
print(good, len(lines))
PY
)
ok "webhooks: valid HMAC-SHA256 signature over timestamp.body, Idempotency-Key, versioned JSON with ja+en text ($hookcheck)" \
    "[ \"$hookcheck\" = '2 2' ]"
expected=$("$SC_PYTHON" -c "import hmac, hashlib; print('v1=' + hmac.new(b'k', b'1700000000.{}', hashlib.sha256).hexdigest())")
check "webhook_signature() in SQL gives what a receiver computes" \
    "SELECT status_checker.webhook_signature('k', 1700000000, '{}') = '$expected'"

# ------------------------------------------------------------ faults
sc_psql -d $db >/dev/null <<SQL
SET search_path = status_checker;
SELECT upsert_site(1, 'F' || p, 'fault ' || p, '1720100', 36.5, 136.6) FROM unnest(ARRAY['flaky','r429','hang','close','fail','gone','refused','permmail','tempmail']) p;
SELECT add_site_contact(1, 'Fflaky', 'webhook', '$hook/flaky');
SELECT add_site_contact(1, 'Fr429', 'webhook', '$hook/r429');
SELECT add_site_contact(1, 'Fhang', 'webhook', '$hook/hang');
SELECT add_site_contact(1, 'Fclose', 'webhook', '$hook/close');
SELECT add_site_contact(1, 'Ffail', 'webhook', '$hook/fail');
SELECT add_site_contact(1, 'Fgone', 'webhook', '$hook/gone');
SELECT add_site_contact(1, 'Frefused', 'webhook', 'http://127.0.0.1:$refused_port/hook');
SELECT add_site_contact(1, 'Fpermmail', 'email', 'perm-fail@example.com');
SELECT add_site_contact(1, 'Ftempmail', 'email', 'temp-fail@example.com');
-- from now on, only the sites' own webhooks: the contacts take their settings from this channel
SELECT set_channel_enabled(2, false);
SELECT add_channel(1, 'webhook', 'contacts', '{"url": "$hook/ok", "secret": "whsec-contacts-0123", "broadcast": false}');
SELECT create_request(1, 1, '障害注入', now() + interval '1 hour', '{"sites": ["Fflaky","Fr429","Fhang","Fclose","Ffail","Fgone","Frefused","Fpermmail","Ftempmail"]}');
SQL
ok "every fault-injected message ends sent or dead" "wait_for 60 \"$(settled ' AND request_id = 2')\""
st() { echo "(SELECT state || '/' || attempts FROM status_checker.delivery_status d WHERE request_id = 2 AND site_code = '$1')"; }
check "500 twice, then 200: sent at the 3rd attempt" "$(st Fflaky) = 'sent/3'" "SELECT * FROM status_checker.delivery_status WHERE request_id = 2"
check "429 with Retry-After: retried no earlier than it asked, then sent" \
    "$(st Fr429) = 'sent/2' AND (SELECT sent_at - a.at >= interval '0.9 s' FROM status_checker.outbox o JOIN status_checker.delivery_attempt a USING (tenant_id, message_id)
                                 JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id WHERE s.code = 'Fr429' AND a.status = 429)"
check "... the attempt's error is the status and the Retry-After, not the reply's body" \
    "(SELECT a.error FROM status_checker.delivery_attempt a JOIN status_checker.outbox o USING (tenant_id, message_id)
      JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id WHERE s.code = 'Fr429') = 'HTTP 429 (Retry-After: 1 s)'" \
    "SELECT a.error FROM status_checker.delivery_attempt a JOIN status_checker.outbox o USING (tenant_id, message_id) WHERE o.request_id = 2"
check "a receiver that hangs past the timeout: retried, then sent" "$(st Fhang) = 'sent/2'"
check "a connection closed mid-response: retried, then sent" "$(st Fclose) = 'sent/2'" "SELECT * FROM status_checker.delivery_attempt"
check "500 every time: dead after the 4 attempts allowed, every failure logged" \
    "$(st Ffail) = 'dead/4' AND (SELECT count(*) = 4 FROM status_checker.delivery_attempt a JOIN status_checker.outbox o USING (tenant_id, message_id)
                                 JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id WHERE s.code = 'Ffail')"
check "410 (a 4xx other than 408/429): dead at once" \
    "$(st Fgone) = 'dead/1' AND (SELECT last_error LIKE 'HTTP 410%' FROM status_checker.delivery_status WHERE site_code = 'Fgone')"
check "connection refused: retried, then dead" "$(st Frefused) = 'dead/4'"
check "SMTP 550 at RCPT: dead at once" \
    "$(st Fpermmail) = 'dead/1' AND (SELECT last_error LIKE 'SMTP 550%' FROM status_checker.delivery_status WHERE site_code = 'Fpermmail')"
check "... its error has the reply code, not the server's text ('No such mailbox here')" \
    "(SELECT last_error NOT LIKE '%mailbox%' FROM status_checker.delivery_status WHERE site_code = 'Fpermmail')" \
    "SELECT last_error FROM status_checker.delivery_status WHERE site_code = 'Fpermmail'"
check "SMTP 451 twice: sent at the 3rd attempt" "$(st Ftempmail) = 'sent/3'"
check "retry_message sends a dead message again" \
    "(SELECT count(*) = 1 FROM (SELECT status_checker.retry_message(message_id) FROM status_checker.delivery_status WHERE site_code = 'Fgone') x)"
ok "... and it is dead again (the receiver still says 410)" \
    "wait_for 20 \"(SELECT state = 'dead' AND attempts = 1 FROM status_checker.delivery_status WHERE site_code = 'Fgone')\""
q "SELECT status_checker.set_channel_enabled(2, true)" >/dev/null

# ------------------------------------------------------------ cancellation, reminders, escalation
q "SELECT status_checker.cancel_request(2, '誤配信のため')" >/dev/null
check "cancelling a request tells the sites that were asked" \
    "(SELECT count(*) FROM status_checker.outbox WHERE request_id = 2 AND purpose = 'cancellation' AND contact_id IS NOT NULL) =
     (SELECT count(DISTINCT site_id) FROM status_checker.outbox WHERE request_id = 2 AND purpose = 'request' AND state = 'sent')" \
    "SELECT message_id, site_id, purpose, state FROM status_checker.outbox WHERE request_id = 2"

sc_psql -d $db >/dev/null <<'SQL'
SET search_path = status_checker;
SELECT set_request_reminders(1, ARRAY['10 minutes', '30 minutes']::interval[], '1 hour');
-- as if the request had been sent 70 minutes ago
UPDATE request SET created_at = created_at - interval '70 minutes' WHERE request_id = 1;
UPDATE outbox SET enqueued_at = enqueued_at - interval '70 minutes' WHERE request_id = 1;
SELECT run_reminders();
SELECT run_reminders();   -- again: nothing more
SQL
check "run_reminders: the latest due reminder (2nd) to the site that has not answered, once; none to the one that answered" \
    "(SELECT array_agg(DISTINCT s.code || ':' || o.seq) FROM status_checker.outbox o JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id
      WHERE o.request_id = 1 AND o.purpose = 'reminder') = '{KNZ01:2}'
     AND (SELECT count(*) FROM status_checker.outbox WHERE request_id = 1 AND purpose = 'reminder') = 2"
check "escalation: one message to the admin (KNZ01's group has no manager), listing the silent site" \
    "(SELECT array_agg(status_checker._decrypt(tenant_id, 'recipient', recipient) || ' ' || (detail -> 'sites' -> 0 ->> 'code'))
      FROM status_checker.outbox
      WHERE request_id = 1 AND purpose = 'escalation' AND channel_kind = 'email') = '{admin@example.com KNZ01}'"
ok "the reminder and escalation mails arrive" "wait_for 30 \"$(settled ' AND request_id = 1')\""
remind=$("$SC_PYTHON" - "$work/mail" <<'PY'
import email, email.policy, glob, sys
subjects = sorted(str(email.message_from_binary_file(open(p, 'rb'), policy=email.policy.default)['Subject'])
                  for p in glob.glob(sys.argv[1] + '/*.eml'))
print(sum(s.startswith('【再送・未回答】') for s in subjects), sum(s.startswith('【未回答拠点 1 件】') for s in subjects))
PY
)
ok "... with the reminder and escalation subjects ($remind)" "[ \"$remind\" = '1 1' ]"

# ------------------------------------------------------------ pg_cron
jobs=$(q "SELECT string_agg(j, ',') FROM status_checker.schedule_jobs() j"); jobs2=$(q "SELECT count(*) FROM status_checker.schedule_jobs()")
ok "schedule_jobs returns the six periodic jobs ($jobs), and again when called twice" \
    "[ \"$jobs\" = 'status_checker-reminders,status_checker-health,status_checker-retention,status_checker-audit-seal,status_checker-audit-retention,status_checker-web-sessions' ] && [ \"$jobs2\" = 6 ]"
check "... registered once each with pg_cron, in this database" \
    "(SELECT count(*) FROM cron.job WHERE jobname LIKE 'status_checker-%' AND database = '$db') = 6"
sc_psql -c "CREATE DATABASE sc_nocron" >/dev/null
sc_psql -d sc_nocron -c "CREATE EXTENSION status_checker" >/dev/null
nocron=$(sc_psql -d sc_nocron -At -c "SELECT status_checker.schedule_jobs()" 2>&1 || true)
ok "without pg_cron, schedule_jobs says what to do" \
    "echo \"\$nocron\" | grep -q 'pg_cron is not installed' && echo \"\$nocron\" | grep -q 'shared_preload_libraries'"

# ------------------------------------------------------------ destinations (0.10.1)
# What is not a public address is refused where the connection is made
# (every address tried, and a connection kept alive), unless
# status_checker.allowed_destinations lists its network; this cluster lists
# 127.0.0.0/8, the receivers' network.  A change of the setting is awaited
# until the workers have it: the postmaster has it (a new session sees it),
# and each worker has looked at its work since (a worker re-reads the
# configuration before anything else).  One worker at first, so that the
# message after a change surely finds the connection to the receiver that
# the one before left open.
set_destinations() {  # set_destinations 'NETWORKS' | DEFAULT (this cluster's: 127.0.0.0/8)
    local v=$1 t
    if [ "$v" = DEFAULT ]; then
        q "ALTER SYSTEM RESET status_checker.allowed_destinations" >/dev/null || return 1; v=127.0.0.0/8
    else
        q "ALTER SYSTEM SET status_checker.allowed_destinations = '$v'" >/dev/null || return 1
    fi
    q "SELECT pg_reload_conf()" >/dev/null
    wait_for 30 "current_setting('status_checker.allowed_destinations') = '$v'" || return 1
    t=$(q "SELECT clock_timestamp()")
    q "SELECT status_checker._wake_dispatcher()" >/dev/null
    wait_for 30 "(SELECT bool_and(heartbeat > '$t') FROM status_checker.dispatcher_workers() WHERE running)"
}
hits() { grep -c -- "$1" "$work/hooks.jsonl" || true; }   # requests the webhook receiver logged with this text
conns() { curl -s "$hook/_stats" | "$SC_PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["connections"])'; }  # (this one's included)
dst() {  # dst REQUEST SITE → "state/attempts last_error" of the site contact's message
    echo "(SELECT o.state || '/' || o.attempts || ' ' || coalesce(o.last_error, '') FROM status_checker.outbox o
           JOIN status_checker.site s ON s.tenant_id = o.tenant_id AND s.site_id = o.site_id
           WHERE o.request_id = $1 AND s.code = '$2' AND o.contact_id IS NOT NULL)"
}
dest_request() {  # dest_request TITLE SITE... → the new request's id
    local sites; sites=$(printf '"%s",' "${@:2}")
    q "SELECT status_checker.create_request(1, 1, '$1', now() + interval '1 hour', '{\"sites\": [${sites%,}]}')"
}
refused="refused: not a public address (status_checker.allowed_destinations)"
sc_psql -d $db >/dev/null <<SQL
SET search_path = status_checker;
SELECT set_channel_enabled(2, false);   -- only the sites' own contacts in this part
SELECT upsert_site(1, 'D' || p, 'dest ' || p, '1720100', 36.5, 136.6) FROM unnest(ARRAY['live','name','mail','proxy','leak']) p;
SELECT add_site_contact(1, 'Dlive', 'webhook', '$hook/dest-live');
SELECT add_site_contact(1, 'Dname', 'webhook', 'http://localhost:$hook_port/dest-name');
SELECT add_site_contact(1, 'Dmail', 'email', 'dest-mail@example.com');
SELECT add_site_contact(1, 'Dproxy', 'webhook', 'http://127.0.0.2:$hook_port/dest-proxied');
SELECT add_site_contact(1, 'Dleak', 'webhook', '$hook/leak');
SQL
echo "status_checker.dispatch_workers = 1" | sc_as_pg tee -a "$work/cluster/data/postgresql.conf" >/dev/null
restart
wait_for 30 "(SELECT count(*) FILTER (WHERE running) = 1 FROM status_checker.dispatcher_workers())" || true
rid=$(dest_request 'dest allowed' Dlive)
ok "with 127.0.0.0/8 allowed, a webhook to 127.0.0.1 is sent" "wait_for 30 \"$(dst $rid Dlive) = 'sent/1 '\""
ok "allowed_destinations set to '' (the default: public addresses only) and re-read by the worker" "set_destinations ''"
live=$(hits /dest-live); mails=$(ls "$work/mail" | wc -l); connected=$(conns)
rid=$(dest_request 'dest refused' Dlive Dname Dmail)
ok "... the next messages to 127.0.0.1 are settled at once" "wait_for 30 \"$(settled " AND request_id = $rid")\""
check "a webhook to 127.0.0.1, where the worker has a connection open from before: dead at once, with why" \
    "$(dst $rid Dlive) = 'dead/1 destination 127.0.0.1 $refused'"
check "a webhook to http://localhost:port/ (a name that resolves to loopback): refused where it connects" \
    "$(dst $rid Dname) ~ '^dead/1 destination (127\.0\.0\.1|::1) refused: not a public address'" "SELECT $(dst $rid Dname)"
check "a mail through the SMTP server on 127.0.0.1: refused too" "$(dst $rid Dmail) = 'dead/1 destination 127.0.0.1 $refused'" \
    "SELECT $(dst $rid Dmail)"
ok "... nothing reached the receivers: no request, not even a connection to the webhook receiver; no mail" \
    "[ \"\$(hits /dest-live)\" = $live ] && [ \"\$(hits /dest-name)\" = 0 ] && [ \"\$(conns)\" = $((connected + 1)) ] &&
     [ \"\$(ls $work/mail | wc -l)\" = $mails ]"
check "system_health: dead_messages says how many were refused destinations" \
    "SELECT detail LIKE '%3 of them to a destination that status_checker.allowed_destinations does not allow%'
     FROM status_checker.system_health() WHERE check_name = 'dead_messages'" \
    "SELECT * FROM status_checker.system_health() WHERE check_name = 'dead_messages'"
ok "127.0.0.0/8 allowed again" "set_destinations DEFAULT"
q "SELECT status_checker.retry_message(message_id) FROM status_checker.outbox WHERE request_id = $rid" >/dev/null 2>&1 || true
ok "retry_message sends them now" \
    "wait_for 30 \"(SELECT count(*) = 3 FROM status_checker.outbox WHERE request_id = $rid AND state = 'sent')\""
# environment proxies do not route around the check: the server started with
# http_proxy and ALL_PROXY naming the webhook receiver (127.0.0.1, allowed),
# a webhook to 127.0.0.2 (not allowed) is refused, not sent through the proxy
ok "allowed_destinations = 127.0.0.1/32" "set_destinations 127.0.0.1/32"
sc_as_pg env http_proxy="$hook" HTTPS_PROXY="$hook" ALL_PROXY="$hook" \
    "$PG_BINDIR/pg_ctl" -D "$work/cluster/data" -l "$work/cluster/server.log" -w restart >/dev/null
wait_for 30 "(SELECT count(*) FILTER (WHERE running) = 2 FROM status_checker.dispatcher_workers())" || true
rid=$(dest_request 'dest proxy' Dproxy)
ok "with http_proxy set in the server's environment, a webhook to 127.0.0.2 is refused, not proxied" \
    "wait_for 30 \"$(dst $rid Dproxy) = 'dead/1 destination 127.0.0.2 $refused'\""
ok "... the proxy got nothing" "[ \"\$(hits dest-proxied)\" = 0 ]"
sed -i '/^status_checker.dispatch_workers = 1$/d' "$work/cluster/data/postgresql.conf"
restart
wait_for 30 "(SELECT count(*) FILTER (WHERE running) = 2 FROM status_checker.dispatcher_workers())" || true
ok "127.0.0.0/8 allowed again (and no proxy)" "set_destinations DEFAULT"
# a bad network: ALTER SYSTEM refuses it and says why; in the file, a reload
# keeps the value the workers have and the server log says why
bad=$(q "ALTER SYSTEM SET status_checker.allowed_destinations = '127.0.0.0/8, 10.1.2.3/8'" 2>&1 || true)
ok "ALTER SYSTEM with a network that has host bits set: refused, and the error says which and why" \
    "echo \"\$bad\" | grep -q 'invalid value for parameter \"status_checker.allowed_destinations\"' &&
     echo \"\$bad\" | grep -q '\"10.1.2.3/8\" has bits set to the right of its prefix length (its network is 10.0.0.0/8)'"
echo "status_checker.allowed_destinations = '127.0.0.0/8, 10.0.0.0/8 192.168.0.0/16'" | sc_as_pg tee -a "$work/cluster/data/postgresql.conf" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
logged() { local deadline=$((SECONDS + 30)); while [ $SECONDS -lt $deadline ]; do grep -q -- "$1" "$work/cluster/server.log" && return 0; sleep 0.2; done; return 1; }
ok "in postgresql.conf, a bad entry: the reload keeps the old value and the server log says why" \
    "logged '\"10.0.0.0/8 192.168.0.0/16\" is not a network in CIDR form' &&
     [ \"\$(q \"SELECT current_setting('status_checker.allowed_destinations')\")\" = 127.0.0.0/8 ]"
sed -i '/10.0.0.0\/8 192.168/d' "$work/cluster/data/postgresql.conf"
q "SELECT pg_reload_conf()" >/dev/null
# the forms an entry takes: an IPv4-mapped network is its IPv4 network, a
# lone address is one host
ok "allowed_destinations = '::ffff:10.0.0.0/104, fd00::/8, 192.0.2.7': 10/8, fd00::/8, 192.0.2.7 allowed, nothing else" \
    "set_destinations '::ffff:10.0.0.0/104, fd00::/8, 192.0.2.7' &&
     [ \"\$(q \"SELECT array_agg(coalesce(status_checker._destination_problem(u), 'ok') ORDER BY i)
                FROM unnest(ARRAY['http://10.9.9.9/', 'http://[::ffff:10.1.1.1]/', 'http://[fd12::1]/', 'http://192.0.2.7/',
                                  'http://192.0.2.8/', 'http://127.0.0.1/']) WITH ORDINALITY x(u, i)\")\" = \
       '{ok,ok,ok,ok,\"destination 192.0.2.8 is not a public address\",\"destination 127.0.0.1 is not a public address\"}' ]"
set_destinations DEFAULT || true
# a reply's body is not stored: its status is
rid=$(dest_request 'dest leak' Dleak)
ok "500 with a body every time: dead after 4 attempts" "wait_for 30 \"$(settled " AND request_id = $rid")\""
check "... last_error has the status only" "$(dst $rid Dleak) = 'dead/4 gave up after 4 attempts: HTTP 500'" "SELECT $(dst $rid Dleak)"
check "the reply's body, reason phrase and header (a marker) are nowhere in outbox, delivery_attempt and delivery_status" \
    "NOT EXISTS (SELECT 1 FROM status_checker.outbox o WHERE o::text LIKE '%SC-LEAK-MARKER%')
     AND NOT EXISTS (SELECT 1 FROM status_checker.delivery_attempt a WHERE a::text LIKE '%SC-LEAK-MARKER%')
     AND NOT EXISTS (SELECT 1 FROM status_checker.delivery_status d WHERE d::text LIKE '%SC-LEAK-MARKER%')
     AND (SELECT count(*) = 4 FROM status_checker.delivery_attempt a JOIN status_checker.outbox o USING (tenant_id, message_id)
          WHERE o.request_id = $rid)" \
    "SELECT a.error FROM status_checker.delivery_attempt a JOIN status_checker.outbox o USING (tenant_id, message_id) WHERE o.request_id = $rid"
check "... nor the bodies of the fault tests' replies ('injected')" \
    "NOT EXISTS (SELECT 1 FROM status_checker.delivery_attempt a WHERE a.error LIKE '%injected%')
     AND NOT EXISTS (SELECT 1 FROM status_checker.outbox o WHERE o.last_error LIKE '%injected%')"
q "SELECT status_checker.set_channel_enabled(2, true)" >/dev/null

# ------------------------------------------------------------ crash safety
if [ -n "${SC_SKIP_CRASH:-}" ]; then exit $fail; fi
sc_psql -d $db >/dev/null <<SQL
SET search_path = status_checker;
SELECT create_tenant('負荷', 'admin', 'load@example.com');
SELECT create_form(2, 'f', default_form_definition());
INSERT INTO site (tenant_id, code, name) SELECT 2, 'L' || g, 'load ' || g FROM generate_series(1, 5000) g;
SELECT add_channel(2, 'webhook', 'sink', '{"url": "$hook/slow", "secret": "whsec-crash-test-000"}');
SQL
crash_round() {  # crash_round REQUEST-TITLE "how to crash"
    q "SELECT status_checker.create_request(2, 2, '$1', now() + interval '1 hour')" >/dev/null
    local rid; rid=$(q "SELECT max(request_id) FROM status_checker.request WHERE tenant_id = 2")
    wait_for 60 "(SELECT count(*) >= 1000 FROM status_checker.outbox WHERE request_id = $rid AND state = 'sent')" || true
    eval "$2"
    if wait_for 180 "$(settled " AND request_id = $rid") AND (SELECT count(*) = 5000 FROM status_checker.outbox WHERE request_id = $rid AND state = 'sent')"; then
        echo "$rid"
    else
        echo "-$rid"
        q "SELECT state || ' ' || count(*) || ' ' || coalesce(min(last_error), '') FROM status_checker.outbox WHERE request_id = $rid GROUP BY state" | sed 's/^/# /' >&2
        q "SELECT * FROM status_checker.dispatcher_status()" | sed 's/^/# /' >&2
        tail -20 "$work/cluster/server.log" | sed 's/^/# /' >&2
    fi
}
dup_report() {  # dup_report RID → "received unique duplicates"
    curl -s "$hook/_stats" | "$SC_PYTHON" -c "
import json, sys
k = {key: c for key, c in json.load(sys.stdin)['keys'].items() if key.startswith('sc1-2-')}
print(sum(k.values()), len(k), sum(c - 1 for c in k.values()))"
}
rid=$(crash_round "crash 1" 'kill -9 $(q "SELECT pid FROM status_checker.dispatcher_status()")')
ok "kill -9 of the dispatcher while sending 5,000 webhooks: afterwards all 5,000 are sent" "[ \"$rid\" -gt 0 ]"
read total unique dups <<<"$(dup_report)"
ok "... none lost: the receiver saw all 5,000 idempotency keys ($total requests, $dups duplicates, recognisable by key)" \
    "[ \"$unique\" = 5000 ]"
echo "# crash 1 (kill -9 dispatcher): $total webhooks received for 5000 messages, $dups duplicates"
rid=$(crash_round "crash 2" 'restart "-m immediate"')
ok "immediate restart of the server while sending 5,000 webhooks: afterwards all are sent" "[ \"$rid\" -gt 0 ]"
read total unique dups <<<"$(dup_report)"
ok "... none lost: 10,000 distinct idempotency keys in all ($total requests, $dups duplicates)" "[ \"$unique\" = 10000 ]"
echo "# crash 2 (immediate restart): cumulative $total webhooks received for 10000 messages, $dups duplicates"

# no crash: the two workers share 5,000 messages and send none twice
before_total=$total; before_dups=$dups
rid=$(crash_round "no crash" true)
ok "no crash: two workers send 5,000 webhooks" "[ \"$rid\" -gt 0 ]"
read total unique dups <<<"$(dup_report)"
ok "... each exactly once: 5,000 more requests, 5,000 more keys, no new duplicate ($((total - before_total)) requests)" \
    "[ $((total - before_total)) = 5000 ] && [ \"$unique\" = 15000 ] && [ \"$dups\" = \"$before_dups\" ]"
check "... and both workers took part (claimed_by)" \
    "(SELECT count(DISTINCT claimed_by) = 2 FROM status_checker.outbox WHERE request_id = ${rid#-})" \
    "SELECT claimed_by, count(*) FROM status_checker.outbox WHERE request_id = ${rid#-} GROUP BY 1"
# ------------------------------------------------------------ rate limit, both workers together
# small batches, so that both workers claim; one token bucket per channel
# in shared memory: the limit holds for the two together, and a limit of 1
# a second (which two private buckets of half a token each never reached)
# still sends
printf '%s\n' 'status_checker.dispatch_rate_limit = 40' 'status_checker.dispatch_batch_size = 20' \
    | sc_as_pg tee -a "$work/cluster/data/postgresql.conf" >/dev/null
restart
wait_for 30 "(SELECT count(*) FILTER (WHERE running) = 2 FROM status_checker.dispatcher_workers())" || true
span() {  # span RID → seconds between the first and the last webhook of the request that the receiver got
    local keys; keys=$(q "SELECT string_agg('sc1-' || tenant_id || '-' || message_id, ',') FROM status_checker.outbox WHERE request_id = $1")
    "$SC_PYTHON" - "$work/hooks.jsonl" "$keys" <<'PY'
import json, sys
keys = set(sys.argv[2].split(','))
t = [r['time'] for r in map(json.loads, open(sys.argv[1], encoding='utf-8'))
     if {k.lower(): v for k, v in r['headers'].items()}.get('idempotency-key') in keys]
print('%.2f' % (max(t) - min(t)) if t else 0)
PY
}
at_least() { awk -v s="$1" -v m="$2" 'BEGIN { exit !(s >= m) }'; }
q "SELECT status_checker.create_request(2, 2, 'rate 40', now() + interval '1 hour',
       (SELECT jsonb_build_object('sites', jsonb_agg('L' || g)) FROM generate_series(1, 160) g))" >/dev/null
rid=$(q "SELECT max(request_id) FROM status_checker.outbox WHERE tenant_id = 2")
ok "rate limit 40/s, 160 webhooks: all sent" \
    "wait_for 60 \"$(settled " AND request_id = $rid") AND (SELECT count(*) = 160 FROM status_checker.outbox WHERE request_id = $rid AND state = 'sent')\""
s40=$(span "$rid")
echo "# rate 40/s: 160 webhooks over $s40 s; messages per worker: $(q "SELECT string_agg(claimed_by || ':' || n, ' ') FROM (SELECT claimed_by, count(*) n FROM status_checker.outbox WHERE request_id = $rid GROUP BY 1 ORDER BY 1) x")"
ok "... no faster than the limit for both workers together: 40 at once, then 120 at 40/s, 3 s ($s40 s; 2 workers with a limit each would take 1 s)" \
    'at_least "$s40" 2.5'
sed -i 's/^status_checker.dispatch_rate_limit = 40$/status_checker.dispatch_rate_limit = 1/' "$work/cluster/data/postgresql.conf"
restart
wait_for 30 "(SELECT count(*) FILTER (WHERE running) = 2 FROM status_checker.dispatcher_workers())" || true
q "SELECT status_checker.create_request(2, 2, 'rate 1', now() + interval '1 hour', '{\"sites\": [\"L1\", \"L2\", \"L3\", \"L4\"]}')" >/dev/null
rid=$(q "SELECT max(request_id) FROM status_checker.outbox WHERE tenant_id = 2")
wait_for 60 "(SELECT count(*) = 4 FROM status_checker.outbox WHERE request_id = $rid AND state = 'sent')" || true
s1=$(span "$rid")
ok "rate limit 1/s with two workers: the 4 webhooks are sent, one a second (first to last: $s1 s)" \
    '[ "$(q "SELECT count(*) FROM status_checker.outbox WHERE request_id = $rid AND state = '"'sent'"'")" = 4 ] && at_least "$s1" 2.5'
exit $fail
