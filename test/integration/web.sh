#!/usr/bin/env bash
# Integration: the HTTP worker (src/web/http.c) on 127.0.0.1, two workers
# sharing the port, with curl: the reporter page and its JSON API.
#   - the page: escaped tenant strings (XSS payloads stay inert), security
#     headers, size with no external assets, ja/en;
#   - a GET (and a HEAD) changes nothing in any table;
#   - a POST stores one report; a replayed or double-tapped POST stores one;
#     a conditional answer that does not apply is left out; bad input is
#     shown next to its question and kept; a closed request says so;
#   - unknown and replaced links; 1,000 wrong tokens from one address are
#     refused (429) while another address still gets in;
#   - the client's address: X-Forwarded-For read as a list from the right,
#     past the trusted proxies; IPv6 clients counted by their /64;
#   - the JSON API: form, keyed submit, errors with their question, sizes;
#   - the dashboard: sign-in (every failure answered alike, the device
#     cookie, no account locked), sessions, CSRF, a user deleted while
#     the worker reads the session;
#   - the TLS proxy path: nginx with deploy/nginx/status_checker.conf in
#     front (TLS 1.2+ only, X-Forwarded-For trusted from nginx, a client's
#     own X-Forwarded-For ignored);
#   - slow clients: connections per address, the header deadline;
#   - a worker killed is replaced and the port keeps answering;
#   - blocks of an address that grow, are capped and are forgiven;
#   - the worker's login: sc_http (status_checker.http_role), as an operator
#     sets it up; the warnings for a superuser and for missing memberships.
# Runs its own cluster (the workers need shared_preload_libraries).  Never
# sleeps blindly: every wait polls a condition with a deadline.  Prints TAP.
# Client addresses: 127.0.0.1 is the trusted proxy (and nginx's peer); other
# loopback addresses (127.0.0.2–5) stand for clients that are not.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
# (never "curl | grep -q": grep -q may stop reading before curl has written
# everything, and with pipefail curl's SIGPIPE fails the pipeline)

work=$(mktemp -d /tmp/status_checker-web.XXXXXX)
chmod 755 "$work"; [ "$(id -u)" = 0 ] && chown postgres "$work"
cleanup() {
    sc_nginx_stop "$work"
    sc_cluster_stop "$work/cluster"
    rm -rf "$work"
}
trap cleanup EXIT
[ -n "${SC_KEEP:-}" ] && trap - EXIT     # SC_KEEP=1: keep the cluster and files to look into

db=sc_web
hport=$(sc_free_port)
base="http://127.0.0.1:$hport"
sc_worker_cluster "$work/cluster" $db "status_checker.http_listen = '127.0.0.1:$hport'" "status_checker.http_workers = 2" \
    "status_checker.http_trusted_proxies = '127.0.0.1, 192.0.2.250'" "status_checker.http_max_body = '64kB'"

# a tenant whose strings are XSS payloads, and a form with a condition
sc_psql -d $db >/dev/null <<'SQL'
CREATE EXTENSION status_checker;
SET search_path = status_checker;
SELECT create_tenant('北陸電機 <b>"&', 'admin', 'admin@example.com');
SELECT upsert_site(1, 'NOTO1', '輪島工場<script>alert(1)</script>', '1720400', 37.39, 136.90);
SELECT upsert_site(1, 'KAGA1', '金沢支店" onmouseover="alert(2)', '1720100', 36.56, 136.65);
SELECT upsert_site(1, 'KAGA2', '小松営業所', '1720100', 36.40, 136.45);
SELECT create_form(1, 'f', default_form_definition('all'));
SELECT upsert_site(1, 'CSV1', '=HYPERLINK("http://evil.example")', '1720100', 36.40, 136.45);
SELECT create_request(1, 1, '能登地震 <img src=x onerror=alert(3)>', now() + interval '3 hours');
SELECT create_request(1, 1, '締切済み', now() + interval '3 hours', '{"sites": ["KAGA2"]}');
SELECT add_user(1, 'kanri', 'kanri@example.com', 'manager');
SELECT set_user_password(1, 'kanri', 'correct horse battery');
SELECT add_user(1, 'locked', 'locked@example.com', 'viewer');
SELECT set_user_password(1, 'locked', 'correct horse battery');
SELECT add_user(1, 'gone', 'gone@example.com', 'viewer');
SELECT set_user_password(1, 'gone', 'correct horse battery');
SELECT add_user(1, 'chef', 'chef@example.com', 'admin');
SELECT set_user_password(1, 'chef', 'correct horse battery');
SELECT create_tenant('他社', 'admin', 'admin@other.example');
SELECT upsert_site(2, 'O1', '他社の拠点', '1310100', 35.68, 139.76);
SELECT create_form(2, 'f', default_form_definition());
SELECT create_request(2, (SELECT max(form_id) FROM form WHERE tenant_id = 2), '他社の依頼', now() + interval '3 hours');
SQL
# the workers so far ran as the bootstrap superuser (http_role empty); from
# here on as sc_http, a login an operator makes for them (restarts)
sc_http_login "$work/cluster" $db
# q, qb, wait_for, ok, check: test/lib.sh
tok=$(q "SELECT status_checker.issue_token(1, 'NOTO1')")
tok2=$(q "SELECT status_checker.issue_token(1, 'KAGA1')")
tok_closed=$(q "SELECT status_checker.issue_token(2, 'KAGA2')")
q "SELECT status_checker.close_request(2)" >/dev/null
old=$(q "SELECT status_checker.issue_token(1, 'KAGA2')")
new=$(q "SELECT status_checker.issue_token(1, 'KAGA2')")

fingerprint() {  # every table's rows, hashed: a GET must leave it as it was
    q "SELECT string_agg(c.relname || '=' || (xpath('/row/c/text()',
              query_to_xml(format('SELECT md5(coalesce(string_agg(t::text, ''|'' ORDER BY t::text), '''')) AS c FROM status_checker.%I t', c.relname),
                           false, true, '')))[1]::text, ',' ORDER BY c.relname)
       FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
       WHERE s.nspname = 'status_checker' AND c.relkind = 'r'"
}
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
reports() { q "SELECT count(*) FROM status_checker.report WHERE request_id = 1 AND site_id = (SELECT site_id FROM status_checker.site WHERE code = '$1')"; }
form_post() {  # form_post TOKEN KEY FIELD=VALUE... → the response (headers and body) in $work/resp
    local t=$1 k=$2; shift 2
    local args=(--data-urlencode "_key=$k")
    for f in "$@"; do args+=(--data-urlencode "$f"); done
    curl -s -D "$work/resp.h" -o "$work/resp" "${args[@]}" "$base/r/$t"
}

wait_for 60 "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'status_checker http') = 2" || true
echo "1..101"

# ---- the workers
check "two HTTP workers run" "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'status_checker http') = 2"
check "... logged in as sc_http (status_checker.http_role), not as a superuser" \
  "(SELECT array_agg(DISTINCT usename) = '{sc_http}' FROM pg_stat_activity WHERE backend_type = 'status_checker http')" \
  "SELECT pid, usename FROM pg_stat_activity WHERE backend_type = 'status_checker http'"
log=$work/cluster/server.log
ok "the first start, as the bootstrap superuser (http_role empty), warned that the worker runs as a superuser" \
   'grep -q "WARNING: .*status_checker http: the HTTP worker logs in as the superuser \"postgres\"" "$log"'
ok "... and as sc_http nothing was said about its login (the two lines are the first start's)" \
   '[ "$(grep -c "WARNING: .*status_checker http: \(the HTTP worker logs in as\|status_checker.http_role\)" "$log")" = 2 ]'
check "system_health() has an http check: ok, 2 of 2 workers" \
  "(SELECT status = 'ok' AND value = '2 of 2 workers' FROM status_checker.system_health() WHERE check_name = 'http')"
for _ in $(seq 100); do [ "$(status "$base/healthz")" = 200 ] && break; sleep 0.1; done
ok "GET /healthz answers ok" '[ "$(curl -s "$base/healthz")" = ok ]'

# ---- the page
before=$(fingerprint)
curl -s -D "$work/page.h" -o "$work/page.html" "$base/r/$tok"
curl -s -I -o /dev/null "$base/r/$tok"
curl -s -o /dev/null "$base/api/v1/r/$tok"
ok "GET /r/<token>: 200, HTML in UTF-8" 'grep -q "^HTTP/1.1 200" "$work/page.h" && grep -qi "^Content-Type: text/html; charset=utf-8" "$work/page.h"'
ok "a GET, a HEAD and an API GET of a link change nothing in any table" '[ "$before" = "$(fingerprint)" ]'
ok "the tenant's strings are escaped: no markup of theirs survives" \
   '! grep -q "<script>alert\|<img src=x\|<b>\"&\|onmouseover=\"alert" "$work/page.html" &&
    grep -q "輪島工場&lt;script&gt;alert(1)&lt;/script&gt;" "$work/page.html" &&
    grep -q "能登地震 &lt;img src=x onerror=alert(3)&gt;" "$work/page.html" && grep -q "北陸電機 &lt;b&gt;&quot;&amp;" "$work/page.html"'
ok "an attribute payload stays inside its attribute" \
   '! curl -s "$base/r/$tok2" | grep "onmouseover=\"alert" >/dev/null'
ok "Content-Security-Policy: no inline script, the inline style by its hash, frame-ancestors none" \
   'grep -qi "^Content-Security-Policy: default-src '"'"'none'"'"'; style-src '"'"'self'"'"' '"'"'sha256-[A-Za-z0-9+/=]*'"'"'; script-src '"'"'self'"'"';.*frame-ancestors '"'"'none'"'"'" "$work/page.h" &&
    ! grep -i "^Content-Security-Policy" "$work/page.h" | grep unsafe >/dev/null'
inline_style_hash() { python3 -c 'import sys,re,hashlib,base64; s=re.search(r"<style>(.*?)</style>", open(sys.argv[1], encoding="utf-8").read(), re.S).group(1); print(base64.b64encode(hashlib.sha256(s.encode()).digest()).decode())' "$1"; }
ok "the style sheet's hash in the policy is the inline style's" \
   '[ "$(grep -i "^Content-Security-Policy" "$work/page.h" | sed -n "s/.*sha256-\([^'"'"']*\)'"'"'.*/\1/p")" = "$(inline_style_hash "$work/page.html")" ]'
ok "no-store, nosniff, no-referrer, DENY framing" \
   'grep -qi "^Cache-Control: no-store" "$work/page.h" && grep -qi "^X-Content-Type-Options: nosniff" "$work/page.h" &&
    grep -qi "^Referrer-Policy: no-referrer" "$work/page.h" && grep -qi "^X-Frame-Options: DENY" "$work/page.h"'
page_bytes=$(( $(wc -c < "$work/page.html") + $(curl -s "$base/assets/report.js" | wc -c) ))
ok "page and script together under 30 KB ($page_bytes bytes)" '[ "$page_bytes" -lt 30720 ]'
ok "no external assets (no src or href to another site)" '! grep -Eq "(src|href)=\"(https?:)?//" "$work/page.html"'
ok "usable without JavaScript: a plain form posting to the link" \
   'grep -q "<form class=\"report\" method=\"post\" action=\"/r/$tok\"" "$work/page.html" && grep -q "<button type=\"submit\">" "$work/page.html"'
ok "Japanese by default: labels, 必須, 回答期限 in JST" \
   'grep -q "建物の被害" "$work/page.html" && grep -q "必須" "$work/page.html" && grep -q "回答期限: [0-9]*月[0-9]*日 [0-9:]* (JST)" "$work/page.html"'
ok "?lang=en and Accept-Language: en give the English page" \
   'curl -s "$base/r/$tok?lang=en" | grep "Please answer by" >/dev/null &&
    curl -s -H "Accept-Language: en-US,en;q=0.9,ja;q=0.8" "$base/r/$tok" | grep "<html lang=\"en\">" >/dev/null'
ok "a conditional question says when it applies" 'grep -q "class=\"cond\">次の場合のみ回答" "$work/page.html"'

# ---- posting the form
form_post "$tok" 0123456789abcdef0123456789abcdef q.building=none q.detail=不要 q.injured=0 q.operation=normal q.lifelines=power
ok "a POST stores the report and redirects to the confirmation (303)" \
   'grep -q "^HTTP/1.1 303" "$work/resp.h" && grep -qi "^Location: /r/$tok?lang=ja&done=1" "$work/resp.h" && [ "$(reports NOTO1)" = 1 ]'
check "the answers are stored as posted, the non-applying conditional answer left out" \
  "(SELECT answers FROM status_checker.report WHERE request_id = 1 ORDER BY report_id DESC LIMIT 1)
     = '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\", \"lifelines\": [\"power\"]}'"
check "by link, as any report by token" "(SELECT via FROM status_checker.report WHERE request_id = 1 ORDER BY report_id DESC LIMIT 1) = 'link'"
form_post "$tok" 0123456789abcdef0123456789abcdef q.building=none q.injured=0 q.operation=normal
ok "the same POST again (a retry): 303, still one report" 'grep -q "^HTTP/1.1 303" "$work/resp.h" && [ "$(reports NOTO1)" = 1 ]'
# ---- a first link (0.9.0): what the dispatcher sends, the token then the
# target it names; no token was issued for CSV1, so it is checked by its MAC
first=$(q "SELECT status_checker._link(status_checker._link_key(1), 1, 1, site_id, 1) FROM status_checker.site WHERE code = 'CSV1'")
before=$(fingerprint)
ok "GET of a first link: the site's page (200) and its API document, and nothing changed" \
   '[ "$(status "$base/r/$first")" = 200 ] && curl -s "$base/api/v1/r/$first" | grep -q "\"code\": \"CSV1\"" && [ "$before" = "$(fingerprint)" ]'
bad=$(echo "$first" | sed 's/\.\([0-9]*\)$/.9\1/')
ok "the same link naming another site: 404, as any unknown link" '[ "$(status "$base/r/$bad")" = 404 ]'
# its first report a double tap: 8 identical POSTs at once, both workers
args=(--data-urlencode _key=fedcba9876543210fedcba9876543210 --data-urlencode q.building=none --data-urlencode q.injured=0 --data-urlencode q.operation=normal)
for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -w '%{http_code}\n' "${args[@]}" "$base/r/$first" > "$work/tap.$i" & done; wait
ok "the first report on a first link, double-tapped (8 POSTs at once): all 303, one report" \
   '[ "$(cat "$work"/tap.* | sort -u)" = 303 ] && [ "$(reports CSV1)" = 1 ]'
check "... and that first report issued the link's token (generation 1)" \
  "(SELECT token_gen = 1 AND token_hash IS NOT NULL FROM status_checker.request_target
    WHERE request_id = 1 AND site_id = (SELECT site_id FROM status_checker.site WHERE code = 'CSV1'))"
args=(--data-urlencode _key=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --data-urlencode q.building=none --data-urlencode q.injured=1 --data-urlencode q.operation=limited)
for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null "${args[@]}" "$base/r/$tok" & done; wait
ok "a double tap (8 identical POSTs at once, both workers): one more report" '[ "$(reports NOTO1)" = 2 ]'
curl -s "$base/r/$tok?done=1" > "$work/done.html"
ok "the confirmation page says it was received and shows the current status" \
   'grep -q "id=\"received\">報告を受け付けました" "$work/done.html" && grep -q "id=\"current\">現在の報告: <strong>" "$work/done.html"'
ok "... with the form filled with the latest answers, to update them" \
   'grep -q "value=\"limited\" checked" "$work/done.html" && grep -q "name=\"q.injured\" value=\"1\"" "$work/done.html"'

before=$(fingerprint)
form_post "$tok" bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb q.building=severe "q.detail=<img src=y onerror=alert(4)>" q.injured=abc q.operation=stopped
ok "a number that is not one: 422, stored nothing" 'grep -q "^HTTP/1.1 422" "$work/resp.h" && [ "$before" = "$(fingerprint)" ]'
ok "... the error is next to its question, in plain words" \
   'grep -q "<fieldset class=\"q error\" id=\"q-injured\">.*<p class=\"err\" role=\"alert\">数字で入力してください。</p>" "$work/resp"'
ok "... and the input is kept (escaped)" \
   'grep -q "value=\"severe\" checked" "$work/resp" && grep -q "name=\"q.injured\" value=\"abc\"" "$work/resp" &&
    grep -q "&lt;img src=y onerror=alert(4)&gt;</textarea>" "$work/resp" && ! grep -q "<img src=y" "$work/resp"'
form_post "$tok" cccccccccccccccccccccccccccccccc q.building=partial q.injured=１２ q.operation=limited
ok "a required conditional question left empty: 422 at that question" \
   'grep -q "^HTTP/1.1 422" "$work/resp.h" && grep -q "id=\"q-detail\"[^>]*>.*<p class=\"err\" role=\"alert\">この質問は必須です。" "$work/resp"'
form_post "$tok" cccccccccccccccccccccccccccccccc q.building=partial "q.detail=窓ガラス <破損>" q.injured=１２ q.operation=limited
check "corrected and sent again: stored; full-width digits read as a number" \
  "(SELECT answers->>'injured' = '12' AND answers->>'detail' = '窓ガラス <破損>' FROM status_checker.report
     WHERE request_id = 1 ORDER BY report_id DESC LIMIT 1)"
curl -s "$base/r/$tok?done=1" > "$work/done.html"
ok "an answer with markup comes back inert" \
   'grep -q "窓ガラス &lt;破損&gt;</textarea>" "$work/done.html" && ! grep -q "<破損>" "$work/done.html"'
form_post "$tok" dddddddddddddddddddddddddddddddd q.building=none q.injured=0 q.operation=normal q.unknown=1
ok "an unknown field is ignored (only the form's questions are read)" 'grep -q "^HTTP/1.1 303" "$work/resp.h"'
curl -s -D "$work/resp.h" -o "$work/resp" --data-binary $'_key=ffffffffffffffffffffffffffffffff&q.building=none&q.injured=0&q.operation=normal&q.comment=%FF%FE' "$base/r/$tok"
ok "a field that is not UTF-8: 400, stored nothing, and the page carries no invalid byte" \
   'grep "^HTTP/1.1 400" "$work/resp.h" >/dev/null && grep "送信できませんでした" "$work/resp" >/dev/null && [ "$(reports NOTO1)" = 4 ] &&
    iconv -f UTF-8 -t UTF-8 "$work/resp" >/dev/null'
many=$(printf 'x%d=1&' $(seq 1 1100))
ok "a form of over 1,000 fields: 400, stored nothing" \
   '[ "$(status --data-binary "_key=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee&${many}q.building=none" "$base/r/$tok")" = 400 ] && [ "$(reports NOTO1)" = 4 ]'
big=$(head -c 70000 /dev/zero | tr '\0' a)
form_post "$tok" eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee q.building=none "q.comment=$big"
ok "a body over status_checker.http_max_body: 413, stored nothing" 'grep -q "^HTTP/1.1 413" "$work/resp.h" && [ "$(reports NOTO1)" = 4 ]'

# ---- closed, unknown, replaced
curl -s -D "$work/c.h" -o "$work/c.html" "$base/r/$tok_closed"
ok "a closed request's link: the page says it is closed and shows no form" \
   'grep -q "この依頼は締め切られました" "$work/c.html" && ! grep -q "<form" "$work/c.html"'
form_post "$tok_closed" ffffffffffffffffffffffffffffffff q.building=none q.injured=0 q.operation=normal
ok "a POST to it: 409 with the same words" 'grep -q "^HTTP/1.1 409" "$work/resp.h" && grep -q "締め切られました" "$work/resp"'
ok "an unknown token: 404 in plain words" \
   '[ "$(status "$base/r/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")" = 404 ] && curl -s "$base/r/nonsense" | grep "このリンクは無効です" >/dev/null'
ok "a replaced token: 410, use the newest link" \
   '[ "$(status "$base/r/$old")" = 410 ] && curl -s "$base/r/$old?lang=en" | grep "most recent message" >/dev/null && [ "$(status "$base/r/$new")" = 200 ]'

# ---- rate limit on wrong tokens (per client address, shared by the workers)
codes=$(curl -s -o /dev/null -w '%{http_code}\n' -H 'X-Forwarded-For: 192.0.2.66' "$base/r/wrongtoken[1-1000]" | sort | uniq -c | tr '\n' ' ')
limited=$(echo "$codes" | grep -o '[0-9]* 429' | cut -d' ' -f1); limited=${limited:-0}
# (970 unless a new minute began during the burst: its count starts again)
ok "1,000 wrong tokens from one address: refused with 429 after the first 30 ($codes)" '[ "$limited" -ge 940 ] && [ "$limited" -le 970 ]'
curl -s -D "$work/rl.h" -o /dev/null -H 'X-Forwarded-For: 192.0.2.66' "$base/r/$tok"
ok "... for 60 seconds that address gets 429 with Retry-After, even for a good link" \
   'grep -q "^HTTP/1.1 429" "$work/rl.h" && grep -qi "^Retry-After: [0-9]" "$work/rl.h"'
ok "... while another address gets in" '[ "$(status -H "X-Forwarded-For: 192.0.2.77" "$base/r/$tok")" = 200 ]'

# ---- the client's address behind a trusted proxy (127.0.0.1 and 192.0.2.250):
# X-Forwarded-For is a list, read from the right past the trusted proxies
burst() {  # burst XFF...: 30 wrong links (the limit) with these X-Forwarded-For lines
    local h=() x
    for x in "$@"; do h+=(-H "X-Forwarded-For: $x"); done
    curl -s -o /dev/null "${h[@]}" "$base/r/wrongtoken[1-30]" || true
}
as_client() { status -H "X-Forwarded-For: $1" "$base/r/$tok"; }   # what a good link gets from that client
burst "192.0.2.101, 127.0.0.1"
ok "X-Forwarded-For \"192.0.2.101, 127.0.0.1\" (a proxy's list): 192.0.2.101 is the client and is limited, not the proxy" \
   '[ "$(as_client 192.0.2.101)" = 429 ] && [ "$(status "$base/r/$tok")" = 200 ]'
burst "198.51.100.7" "192.0.2.102 , 127.0.0.1 "
ok "several X-Forwarded-For lines are one list, in order (a proxy may add a line of its own), spaces around entries ignored" \
   '[ "$(as_client 192.0.2.102)" = 429 ] && [ "$(as_client 198.51.100.7)" = 200 ]'
burst "not-an-address, 192.0.2.103"
ok "the first entry from the right that is not a trusted proxy is the client, whatever stands left of it" \
   '[ "$(as_client 192.0.2.103)" = 429 ]'
burst "192.0.2.104, not-an-address, 192.0.2.250"
ok "an entry that is not an address stops the walk: the last trusted hop (192.0.2.250) is counted, never the value a client chose" \
   '[ "$(as_client 192.0.2.250)" = 429 ] && [ "$(as_client 192.0.2.104)" = 200 ]'
burst "2001:db8::1"
ok "IPv6 clients are counted by their /64: 2001:db8::2 shares 2001:db8::1's block, 2001:db8:0:1::1 does not" \
   '[ "$(as_client 2001:db8::2)" = 429 ] && [ "$(as_client 2001:db8:0:1::1)" = 200 ]'
ok "IPv4 clients are counted by their address: ::ffff:192.0.2.101 is 192.0.2.101, and 192.0.2.105 is not limited" \
   '[ "$(as_client ::ffff:192.0.2.101)" = 429 ] && [ "$(as_client 192.0.2.105)" = 200 ]'
check "http_counters() counts them all: requests, reports, the refusals" \
  "(SELECT requests > 1000 AND reports >= 4 AND refused >= $limited FROM status_checker.http_counters())" \
  "SELECT * FROM status_checker.http_counters()"

# ---- the JSON API
api="$base/api/v1/r/$tok"
ok "GET /api/v1/r/<token>: the report_form document" \
   '[ "$(curl -s "$api" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d[\"site\"][\"code\"], d[\"request\"][\"state\"])")" = "NOTO1 open" ]'
id1=$(curl -s -H 'Content-Type: application/json' -H 'Idempotency-Key: api-1' -d '{"building":"none","injured":0,"operation":"normal"}' "$api")
id2=$(curl -s -H 'Content-Type: application/json' -H 'Idempotency-Key: api-1' -d '{"building":"none","injured":0,"operation":"normal"}' "$api")
ok "POST with an Idempotency-Key twice: one report, the same id ($id1)" '[[ "$id1" =~ ^\{\"report_id\":[0-9]+\}$ ]] && [ "$id1" = "$id2" ] && [ "$(reports NOTO1)" = 5 ]'
resp=$(curl -s -w ' %{http_code}' -d '{"building":"none","injured":-1,"operation":"normal"}' "$api")
ok "an answer that breaks the form: 422, SQLSTATE 22023, the question named" \
   '[[ "$resp" == *"\"sqlstate\":\"22023\""*"\"question\":\"injured\""*" 422" ]]'
ok "a body that is not JSON: 400 (22P02); JSON that is not UTF-8: 400 (22021), stored nothing" \
   '[[ "$(curl -s -w " %{http_code}" -d "{bad" "$api")" == *"22P02"*" 400" ]] &&
    [[ "$(curl -s -w " %{http_code}" --data-binary $'"'"'{"building":"none","injured":0,"operation":"normal","comment":"\xff"}'"'"' "$api")" == *"22021"*" 400" ]] &&
    [ "$(reports NOTO1)" = 5 ]'
ok "an unknown token: 404 (28000); a closed request: 409 (55000)" \
   '[[ "$(curl -s -w " %{http_code}" -d "{}" "$base/api/v1/r/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")" == *"28000"*" 404" ]] &&
    [[ "$(curl -s -w " %{http_code}" -d "{\"building\":\"none\",\"injured\":0,\"operation\":\"normal\"}" "$base/api/v1/r/$tok_closed")" == *"55000"*" 409" ]]'
ok "other methods: 405; other paths: 404" '[ "$(status -X DELETE "$api")" = 405 ] && [ "$(status "$base/etc/passwd")" = 404 ]'

# ---- the dashboard over HTTP (the browser test drives it in chromium)
jar=$work/cookies
client=192.0.2.10   # the client's address (X-Forwarded-For from the trusted 127.0.0.1)
login_form() {  # login_form JAR → the sign-in form's token (and its cookie in JAR)
    curl -s -c "$1" -b "$1" -H "X-Forwarded-For: $client" "$base/d/login" | grep -o 'name="_pre" value="[0-9a-f]*' | cut -d'"' -f4
}
sign_in() {  # sign_in JAR LOGIN PASSWORD [PRE] → the HTTP status, headers in $work/login.h, the page in $work/login.html
    local pre=${4-$(login_form "$1")}
    curl -s -o "$work/login.html" -D "$work/login.h" -w '%{http_code}' -c "$1" -b "$1" -H "X-Forwarded-For: $client" \
         --data-urlencode "_pre=$pre" --data-urlencode tenant=1 --data-urlencode "login=$2" --data-urlencode "password=$3" "$base/d/login"
}
ok "without a session: the pages go to the sign-in form, the API answers 401" \
   '[ "$(curl -s -o /dev/null -w "%{http_code} %{redirect_url}" "$base/d/")" = "303 $base/d/login" ] &&
    [ "$(status "$base/d/api/requests")" = 401 ] && [ "$(status -b "sc_session=forged" "$base/d/api/r/1")" = 401 ]'
ok "a sign-in without the form's own cookie is refused (403: no sign-in from another site)" \
   '[ "$(sign_in "$work/nojar" kanri "correct horse battery" 0123)" = 403 ]'
ok "a wrong password: 401 with a message" '[ "$(sign_in "$jar" kanri "wrong password!")" = 401 ]'
ok "the right one: 303 to the dashboard, the session cookie HttpOnly, Secure, SameSite=Strict, Path=/d" \
   '[ "$(sign_in "$jar" kanri "correct horse battery")" = 303 ] &&
    grep -qi "^Set-Cookie: sc_session=[A-Za-z0-9_-]\{43\}; Path=/d; HttpOnly; Secure; SameSite=Strict" "$work/login.h"'
# curl keeps Secure cookies for 127.0.0.1 (a secure context, as for browsers)
titles=$(curl -s -b "$jar" "$base/d/api/requests" | python3 -c 'import json, sys; print("|".join(sorted(r["title"] for r in json.load(sys.stdin))))')
ok "the requests of the user's tenant, and only those" '[ "$titles" = "締切済み|能登地震 <img src=x onerror=alert(3)>" ]'
other=$(q "SELECT request_id FROM status_checker.request WHERE tenant_id = 2")
ok "another tenant's request does not exist (404), neither its CSV" \
   '[ "$(status -b "$jar" "$base/d/api/r/$other")" = 404 ] && [ "$(status -b "$jar" "$base/d/r/$other/status.csv")" = 404 ]'
etag=$(curl -s -D - -o /dev/null -b "$jar" "$base/d/api/r/1" | sed -n 's/^ETag: \(.*\)\r$/\1/Ip')
ok "polling: the dashboard document has an ETag; unchanged, it answers 304 without a body" \
   '[ -n "$etag" ] && [ "$(status -b "$jar" -H "If-None-Match: $etag" "$base/d/api/r/1")" = 304 ]'
q "SELECT status_checker.submit_report_for(1, 'KAGA1', '{\"building\": \"none\", \"injured\": 0, \"operation\": \"normal\"}')" >/dev/null
ok "... and 200 with a new ETag once a report arrives" '[ "$(status -b "$jar" -H "If-None-Match: $etag" "$base/d/api/r/1")" = 200 ]'
curl -s -D "$work/csv.h" -o "$work/status.csv" -b "$jar" "$base/d/r/1/status.csv"
ok "the status matrix as CSV: an attachment, UTF-8 with BOM, a formula-like cell defused" \
   'grep -qi "^Content-Disposition: attachment; filename=\"status-1.csv\"" "$work/csv.h" &&
    [ "$(head -c 3 "$work/status.csv" | od -An -tx1 | tr -d " ")" = efbbbf ] &&
    grep -q "^\"CSV1\",\"'"'"'=HYPERLINK(\"\"http://evil.example\"\")\"" "$work/status.csv"'
ok "GeoJSON of the request" '[ "$(curl -s -b "$jar" "$base/d/api/r/1/geojson" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"type\"])")" = FeatureCollection ]'
csrf=$(curl -s -b "$jar" "$base/d/" | grep -o 'name="_csrf" value="[^"]*' | cut -d'"' -f4)
ok "sign-out without the CSRF token is refused (403) and the session lives on" \
   '[ "$(status -b "$jar" --data-urlencode _csrf=wrong "$base/d/logout")" = 403 ] && [ "$(status -b "$jar" "$base/d/api/requests")" = 200 ]'
ok "... so is a token that differs in its last character, a prefix of it, or it with one more character (403 each)" \
   '[ "$(status -b "$jar" --data-urlencode "_csrf=${csrf%?}$([ "${csrf: -1}" = A ] && echo B || echo A)" "$base/d/logout")" = 403 ] &&
    [ "$(status -b "$jar" --data-urlencode "_csrf=${csrf%?}" "$base/d/logout")" = 403 ] &&
    [ "$(status -b "$jar" --data-urlencode "_csrf=${csrf}A" "$base/d/logout")" = 403 ] &&
    [ "$(status -b "$jar" -d _csrf= "$base/d/logout")" = 403 ] && [ "$(status -b "$jar" "$base/d/api/requests")" = 200 ]'
ok "with it: 303, and the session has ended" \
   '[ "$(status -b "$jar" --data-urlencode "_csrf=$csrf" "$base/d/logout")" = 303 ] && [ "$(status -b "$jar" "$base/d/api/requests")" = 401 ]'

# ---- sign-in failures: no account is locked, every failure is answered alike
code=$(client=192.0.2.20 sign_in "$work/jb" locked "correct horse battery")
ok "a sign-in sets the device cookie sc_device: 43 characters, Path=/d/login, HttpOnly, Secure, SameSite=Strict, 180 days" \
   '[ "$code" = 303 ] &&
    grep -qi "^Set-Cookie: sc_device=[A-Za-z0-9_-]\{43\}; Path=/d/login; HttpOnly; Secure; SameSite=Strict; Max-Age=15552000" "$work/login.h"'
codes=$(for i in $(seq 12); do client=192.0.2.21 sign_in "$work/ja" locked "wrong password $i"; echo; done | sort | uniq -c | xargs)
ok "twelve wrong passwords for one login from one address: twelve 401, never 423 ($codes)" '[ "$codes" = "12 401" ]'
pre=$(client=192.0.2.21 login_form "$work/ja")
client=192.0.2.21 sign_in "$work/ja" locked "wrong again" "$pre" > "$work/known.code"; cp "$work/login.html" "$work/known.html"
client=192.0.2.21 sign_in "$work/ja" nobody-here "wrong again" "$pre" > "$work/unknown.code"; cp "$work/login.html" "$work/unknown.html"
ok "that login, throttled by now, and a login that does not exist: the same status (401) and byte-identical pages" \
   '[ "$(cat "$work/known.code")" = 401 ] && [ "$(cat "$work/unknown.code")" = 401 ] && cmp -s "$work/known.html" "$work/unknown.html"'
ok "... the page names both causes alike (a wrong ID, login or password, or an account slowed for a few minutes), not a lock" \
   'grep -q "組織ID・ログインID・パスワードのいずれかが違うか" "$work/known.html" && grep -q "数分間制限されています" "$work/known.html" &&
    ! grep -qi "lock\|ロック" "$work/known.html"'
ok "the user's own browser (its device cookie), from another address, signs in with the right password meanwhile" \
   '[ "$(client=192.0.2.22 sign_in "$work/jb" locked "correct horse battery")" = 303 ]'
for i in $(seq 40); do
    code=$(client=192.0.2.21 sign_in "$work/ja" "nobody-$i" "wrong password"); [ "$code" = 429 ] && break
done
ok "wrong passwords count towards the address's limit: past it that address gets 429 with Retry-After" \
   '[ "$code" = 429 ] && grep -qi "^Retry-After: [0-9]" "$work/login.h"'
ok "... while a new browser at another address signs in with the right password (303)" \
   '[ "$(client=192.0.2.23 sign_in "$work/jc" chef "correct horse battery")" = 303 ]'
ok "through sc_http, an administrator's and a viewer's dashboards answer as a manager's does (200)" \
   '[ "$(status -b "$work/jc" "$base/d/api/requests")" = 200 ] && [ "$(status -b "$work/jb" "$base/d/api/r/1")" = 200 ]'

# ---- a session whose user is deleted while the worker reads it: the
# worker's UPDATE of seen_at waits for the deleting transaction, and the
# user's row is gone when it looks
code=$(client=192.0.2.24 sign_in "$work/jg" gone "correct horse battery")
q "UPDATE status_checker.web_session SET seen_at = now() - interval '5 minutes'
    WHERE user_id = (SELECT user_id FROM status_checker.app_user WHERE tenant_id = 1 AND login = 'gone')" >/dev/null
started=$(q "SELECT pg_postmaster_start_time()")
workers() { q "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'status_checker http'"; }
pids=$(workers)
# the deletion, held open until the worker waits for it (at most a minute)
sc_psql -d $db >/dev/null 2>&1 <<'SQL' &
BEGIN;
SELECT status_checker.remove_user(1, 'gone');
SET application_name = 'sc_web_deleted';
DO $$ BEGIN FOR i IN 1..1200 LOOP EXIT WHEN EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted); PERFORM pg_sleep(0.05); END LOOP; END $$;
COMMIT;
SQL
deleter=$!
wait_for 30 "EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'sc_web_deleted')" || true
curl -s -o /dev/null -w '%{http_code}' --max-time 60 -b "$work/jg" "$base/d/api/requests" > "$work/gone.code" || true
wait "$deleter" || true
ok "a session whose user is deleted while the worker reads it: answered as no session (401)" \
   '[ "$code" = 303 ] && [ "$(cat "$work/gone.code")" = 401 ]'
ok "... and the server did not restart: the same postmaster, the same two workers, no process ended by a signal" \
   '[ "$(q "SELECT pg_postmaster_start_time()")" = "$started" ] && [ "$(workers)" = "$pids" ] && ! grep -q "terminated by signal" "$log"'

# ---- behind nginx with TLS (deploy/nginx/status_checker.conf)
nport=$(sc_free_port)
mkdir -p "$work/nginx/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$work/nginx/key.pem" -out "$work/nginx/cert.pem" 2>/dev/null
sed -e "s|@UPSTREAM@|127.0.0.1:$hport|" -e "s|@LISTEN@|127.0.0.1:$nport|" -e "s|@SERVER_NAME@|127.0.0.1|" \
    -e "s|@CERT@|$work/nginx/cert.pem|" -e "s|@KEY@|$work/nginx/key.pem|" \
    "$SC_ROOT/deploy/nginx/status_checker.conf" > "$work/nginx/site.conf"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
    client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
    include $work/nginx/site.conf;
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log"
tls="https://127.0.0.1:$nport"
for _ in $(seq 100); do [ "$(status --cacert "$work/nginx/cert.pem" "$tls/healthz")" = 200 ] && break; sleep 0.1; done
ok "through nginx with TLS: the reporter page" \
   'curl -s --cacert "$work/nginx/cert.pem" "$tls/r/$tok" | grep "<form class=\"report\"" >/dev/null'
ok "TLS 1.1 is refused, TLS 1.2 and 1.3 are taken" \
   '! curl -s -o /dev/null --cacert "$work/nginx/cert.pem" --tlsv1.1 --tls-max 1.1 "$tls/healthz" 2>/dev/null &&
    [ "$(status --cacert "$work/nginx/cert.pem" --tlsv1.2 --tls-max 1.2 "$tls/healthz")" = 200 ] &&
    [ "$(status --cacert "$work/nginx/cert.pem" --tlsv1.3 "$tls/healthz")" = 200 ]'
form_post_tls() { curl -s -o /dev/null -w '%{http_code}' --cacert "$work/nginx/cert.pem" "$@"; }
ok "a report posted through the proxy is stored once (303, then the replay 303)" \
   '[ "$(form_post_tls --data-urlencode _key=99999999999999999999999999999999 --data-urlencode q.building=none --data-urlencode q.injured=0 --data-urlencode q.operation=normal "$tls/r/$tok")" = 303 ] &&
    [ "$(form_post_tls --data-urlencode _key=99999999999999999999999999999999 --data-urlencode q.building=none --data-urlencode q.injured=0 --data-urlencode q.operation=normal "$tls/r/$tok")" = 303 ] &&
    [ "$(reports NOTO1)" = 6 ]'
codes=$(curl -s -o /dev/null -w '%{http_code}\n' --cacert "$work/nginx/cert.pem" "$tls/r/wrong[1-40]" | sort | uniq -c | tr '\n' ' ')
limited=$(echo "$codes" | grep -o '[0-9]* 429' | cut -d' ' -f1); limited=${limited:-0}
ok "through the proxy the client is nginx's peer (127.0.0.1), limited after 30 failures ($codes), not 192.0.2.77" \
   '[ "$limited" -ge 10 ] && [ "$(status -H "X-Forwarded-For: 192.0.2.77" "$base/r/$tok")" = 200 ]'
# clients at 127.0.0.2 and 127.0.0.3 (not trusted) that send X-Forwarded-For
# of their own: nginx appends their address, the worker reads it from the right
tls_from() { local from=$1; shift; curl -s -o /dev/null -w '%{http_code}' --cacert "$work/nginx/cert.pem" --interface "$from" "$@"; }
codes=$(curl -s -o /dev/null -w '%{http_code}\n' --cacert "$work/nginx/cert.pem" --interface 127.0.0.2 \
             -H 'X-Forwarded-For: 1.2.3.4' "$tls/r/wrong[1-40]" | sort | uniq -c | xargs)
ok "through nginx, a client that sends X-Forwarded-For: 1.2.3.4 is counted as itself (127.0.0.2): 30 failures, then 429 ($codes)" \
   '[ "$codes" = "30 404 10 429" ]'
ok "... sending another X-Forwarded-For, or none, does not get it out of its block" \
   '[ "$(tls_from 127.0.0.2 -H "X-Forwarded-For: 5.6.7.8" "$tls/r/$tok")" = 429 ] && [ "$(tls_from 127.0.0.2 "$tls/r/$tok")" = 429 ]'
ok "... and another client behind the same proxy, with an X-Forwarded-For of its own, is not limited (200)" \
   '[ "$(tls_from 127.0.0.3 -H "X-Forwarded-For: 10.0.0.5" "$tls/r/$tok")" = 200 ]'

# ---- slow clients: connections per address and the deadline for headers
# (status_checker.http_max_connections_per_address 50, http_header_timeout 10 s)
slow() { "$SC_PYTHON" "$SC_ROOT/test/integration/slow_clients.py" 127.0.0.1 "$hport" "$@"; }
# kept-alive connections that turn slow: their next request's headers are due
# 30 seconds after the answer to the last one (run beside the others)
slow 127.0.0.2 5 - 0 60 after-request > "$work/slow.kept" &
kept_pid=$!
slow 127.0.0.1 60 - 0 45 > "$work/slow.trusted"
ok "the trusted proxy (127.0.0.1) may hold more connections than one address may (60 unfinished requests, none refused) ..." \
   'grep -qx opened=60 "$work/slow.trusted" && ! grep -q "127.0.0.1 has [0-9]* connections open" "$log"'
ok "... and the header deadline closes every one of them while they still trickle a byte a second" \
   'grep -qx open=0 "$work/slow.trusted"'
slow 127.0.0.4 2400 127.0.0.5 10 45 > "$work/slow.out"
ok "2,400 unfinished requests from one address (127.0.0.4): a GET from another address is answered meanwhile" \
   'grep -qx probe=answered "$work/slow.out"'
ok "... the worker refused that address's connections past 50 and said so in the log" \
   'grep -q "127.0.0.4 has 50 connections open" "$log"'
ok "... and the header deadline closed every one it had taken while they still trickled" 'grep -qx open=0 "$work/slow.out"'
wait "$kept_pid" || true
ok "a kept-alive connection whose next request trickles in is closed too (5 of 5)" \
   'grep -qx opened=5 "$work/slow.kept" && grep -qx open=0 "$work/slow.kept"'

# ---- a worker killed is replaced
victim=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'status_checker http' LIMIT 1")
kill -9 "$victim"
# a crashed worker makes the postmaster restart every backend; then the workers come back
wait_for 90 "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'status_checker http' AND pid <> $victim) = 2" || true
for _ in $(seq 300); do [ "$(status -H "X-Forwarded-For: 192.0.2.88" "$base/r/$tok")" = 200 ] && break; sleep 0.1; done
ok "after kill -9 of a worker, two workers serve the port again" \
   '[ "$(status -H "X-Forwarded-For: 192.0.2.88" "$base/r/$tok")" = 200 ] && [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = '"'"'status_checker http'"'"'")" = 2 ]'

restart() {  # restart SETTING...: the cluster again with these lines added, and wait for its workers
    printf '%s\n' "$@" | sc_as_pg tee -a "$work/cluster/data/postgresql.conf" >/dev/null
    sc_as_pg "$PG_BINDIR/pg_ctl" -D "$work/cluster/data" -l "$log" -w restart >/dev/null || echo "# the cluster did not restart"
    wait_for 60 "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'status_checker http') = 2" || true
    for _ in $(seq 100); do [ "$(status "$base/healthz")" = 200 ] && break; sleep 0.1; done
}

# ---- blocks that grow: 1-second blocks of at most 4 seconds for this test
restart "status_checker.http_block_time = '1s'" "status_checker.http_block_max = '4s'"
earn() { burst 192.0.2.40; }     # the 30 failures that earn a block
unblocked() {  # wait (at most 30 s) until 192.0.2.40 is let in again
    local deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do [ "$(as_client 192.0.2.40)" = 200 ] && return 0; sleep 0.1; done
    return 1
}
earn; unblocked || true; earn; unblocked || true; earn; unblocked || true; earn; unblocked || true
quiet_from=$(q "SELECT now()")
wait_for 30 "now() > '$quiet_from'::timestamptz + interval '5 seconds'" || true
earn
blocks=$(grep -o "192.0.2.40 blocked for [0-9]* s" "$log" | sed 's/.* for \([0-9]*\) s/\1/' | xargs || true)
ok "an address's blocks double (1, 2, 4 s) up to status_checker.http_block_max (4 s), and after a quiet period start at 1 s again ($blocks)" \
   '[ "$blocks" = "1 2 4 4 1" ]'

# ---- a login for the worker that lacks memberships, and has one too many
q "CREATE ROLE sc_partial LOGIN NOINHERIT; GRANT status_checker_gateway, status_checker_operator TO sc_partial" >/dev/null
restart "status_checker.http_role = 'sc_partial'"
ok "http_role naming a login that is not a member of the group roles: a warning names them" \
   'grep -q "WARNING: .*status_checker http: status_checker.http_role \"sc_partial\" is not a member of status_checker_viewer, status_checker_reporter, status_checker_manager, status_checker_admin" "$log"'
ok "... and one names the membership it does not need (status_checker_operator)" \
   'grep -q "WARNING: .*status_checker http: status_checker.http_role \"sc_partial\" is a member of status_checker_operator" "$log"'
ok "... reporters are still served (200), and the dashboard fails closed (503, no data)" \
   '[ "$(as_client 192.0.2.41)" = 200 ] && [ "$(status -b "$work/jc" "$base/d/api/requests")" = 503 ]'

exit $fail
