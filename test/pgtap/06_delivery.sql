-- Delivery: channels, the outbox and its natural key, rendering, the
-- dispatcher's claim and record steps (called here directly: this database
-- has no dispatcher), retries, cancellation, tokens, templates, reminders,
-- escalation, retention; destinations (what is not a public address is
-- refused when a channel or a contact is added; ca_file is an operator's);
-- the SQLSTATE of every bad input, and that a failed call stores nothing.  The worker itself is tested against real
-- servers in test/integration/delivery.sh.
BEGIN;
\ir fixtures.psql
SELECT plan(120);
SELECT set_config('status_checker.link_base_url', 'https://status.example.com/r/', true) IS NOT NULL AS set \gset
CREATE TEMP TABLE before AS SELECT pg_temp.row_counts() AS counts;

-- ------------------------------------------------------------ channels: bad input
SELECT throws_ok(format($$SELECT add_channel(%s, 'fax', 'f', '{}')$$, :ta), '22023', NULL, 'unknown channel kind: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'm', '{"url": "http://mail.example.com", "from": "a@b.example"}')$$, :ta),
    '22023', NULL, 'email channel with an http URL: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'm', '{"url": "smtp://mail.example.com:587"}')$$, :ta),
    '22023', NULL, 'email channel without from: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'm', '{"url": "smtp://mail.example.com:587", "from": "a@b.example", "starttls": "maybe"}')$$, :ta),
    '22023', NULL, 'starttls other than require/try/off: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'm', '{"url": "smtp://mail.example.com:25", "from": "a@b.example", "starttls": "off", "username": "u", "password": "p"}')$$, :ta),
    '22023', NULL, 'a password sent in clear to a remote server: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'm', '{"url": "smtp://mail.example.com:587", "from": "a@b.example", "username": "u"}')$$, :ta),
    '22023', NULL, 'username without password: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'webhook', 'w', '{"url": "https://hooks.example.com/x"}')$$, :ta),
    '22023', NULL, 'json webhook without a secret: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'webhook', 'w', '{"url": "https://hooks.example.com/x", "format": "xml", "secret": "0123456789abcdef"}')$$, :ta),
    '22023', NULL, 'unknown webhook format: 22023');
SELECT throws_like(format($$SELECT add_channel(%s, 'webhook', 'w', '{"url": "https://hooks.example.com/x", "secret": "0123456789abcdef", "colour": "red"}')$$, :ta),
    '%invalid webhook channel configuration%', 'an unknown key is refused');
SELECT throws_ok($$SELECT add_channel(999999, 'webhook', 'w', '{"url": "https://hooks.example.com/x", "secret": "0123456789abcdef"}')$$,
    '23503', NULL, 'unknown tenant: 23503');
SELECT throws_ok(format($$SELECT add_channel(%s, 'webhook', NULL, '{}')$$, :ta), '22004', NULL, 'NULL name: 22004');
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'm', '{"url": "smtp://mail.example.com:587", "from": "a@b.example", "timezone": "Mars/Olympus"}')$$, :ta),
    '22023', NULL, 'an unknown time zone: 22023');
SELECT throws_ok(format($$SELECT add_channel(%s, 'webhook', 'w', '{"url": "https://hooks.example.com/x", "secret": "0123456789abcdef", "broadcast": "yes"}')$$, :ta),
    '22023', NULL, 'broadcast that is not a boolean: 22023');
SELECT is(pg_temp.row_counts(), (SELECT counts FROM before), 'the failed calls stored nothing');

-- ------------------------------------------------------------ channels
SELECT add_channel(:ta, 'email', 'メール', '{"url": "smtp://mail.example.com:587", "from": "安否確認 <noreply@a.example>", "username": "u", "password": "s3cret"}') AS ch_mail \gset
SELECT throws_ok(format($$SELECT add_channel(%s, 'email', 'メール', '{"url": "smtps://mail.example.com", "from": "x@a.example"}')$$, :ta),
    '23505', NULL, 'a second channel of the same name: 23505');
SELECT ok((SELECT NOT (config ? 'password') AND has_password FROM channel_list WHERE channel_id = :ch_mail),
    'channel_list shows that there is a password, never the password');

-- ------------------------------------------------------------ destinations (0.10.1)
-- This cluster has the default status_checker.allowed_destinations (empty:
-- public addresses only).  A URL whose host is an address is checked when
-- it is added; a host name only when a message is sent (the dispatcher
-- checks the address it connects to: test/integration/delivery.sh).
CREATE FUNCTION pg_temp.err_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; hint text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN st || ': ' || msg || coalesce(' | ' || nullif(hint, ''), '');
END
$$;
-- the same, but what a call that works did is undone
CREATE FUNCTION pg_temp.err_of_undone(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    BEGIN
        v := pg_temp.err_of(q);
        RAISE EXCEPTION USING ERRCODE = 'SCUND';
    EXCEPTION WHEN SQLSTATE 'SCUND' THEN
        NULL;
    END;
    RETURN v;
END
$$;
CREATE TEMP TABLE before_dest AS SELECT pg_temp.row_counts() AS counts;
\set dest_hint 'Only public addresses are allowed, and the networks an operator lists in status_checker.allowed_destinations (postgresql.conf); a host name is checked when a message is sent.'
SELECT is(pg_temp.err_of(format($$SELECT add_channel(%s, 'webhook', 'meta', '{"url": "http://169.254.169.254/latest/meta-data/", "secret": "0123456789abcdef"}')$$, :ta)),
    '22023: channel "url" refused: destination 169.254.169.254 is not a public address | ' || :'dest_hint',
    'a webhook channel to the cloud metadata address: 22023, the address named, the setting in the hint');
SELECT is(pg_temp.err_of(format($$SELECT add_channel(%s, 'email', 'loop', '{"url": "smtp://[::1]:25", "from": "a@a.example"}')$$, :ta)),
    '22023: channel "url" refused: destination ::1 is not a public address | ' || :'dest_hint',
    'a mail channel to [::1]: 22023');
SELECT is(pg_temp.err_of(format($$SELECT add_site_contact(%s, 'A01', 'webhook', 'http://[::ffff:127.0.0.1]:8080/x')$$, :ta)),
    '22023: webhook URL refused: destination ::ffff:127.0.0.1 embeds 127.0.0.1, not a public address | ' || :'dest_hint',
    'a contact''s webhook to [::ffff:127.0.0.1] (IPv4 in IPv6): 22023, the embedded address named');
SELECT is(pg_temp.err_of(format($$SELECT add_site_contact(%s, 'A01', 'webhook', 'http://127.0.0.1:8080/x')$$, :ta)),
    '22023: webhook URL refused: destination 127.0.0.1 is not a public address | ' || :'dest_hint',
    'a contact''s webhook to 127.0.0.1: 22023');
SELECT is(pg_temp.err_of(format($$SELECT add_site_contact(%s, 'A01', 'webhook', 'http://0x7f.1/x')$$, :ta)),
    '22023: webhook URL refused: destination 127.0.0.1 is not a public address | ' || :'dest_hint',
    'an address written another way (0x7f.1): read as libcurl reads it, refused');
SELECT is(pg_temp.row_counts(), (SELECT counts FROM before_dest), '... and the refused calls stored nothing');
SELECT is(ARRAY(SELECT u FROM unnest(ARRAY[
        'http://10.1.2.3/', 'http://172.16.0.1/', 'http://172.31.255.255/', 'http://192.168.1.1/', 'http://100.64.0.1/',
        'http://0.0.0.0/', 'http://127.255.255.254/', 'http://169.254.0.1/', 'http://224.0.0.1/', 'http://239.255.255.250/',
        'http://240.0.0.1/', 'http://255.255.255.255/', 'http://192.0.2.1/', 'http://198.18.0.1/',
        'http://[::]/', 'http://[::1]/', 'http://[fe80::1]/', 'http://[fe80::1%25eth0]/', 'http://[fc00::1]/', 'http://[fd12:3456::1]/',
        'http://[ff02::1]/', 'http://[::ffff:10.0.0.1]/', 'http://[::ffff:a9fe:a9fe]/', 'http://[64:ff9b::a00:1]/',
        'http://[2002:c0a8:101::1]/', 'http://[2001:db8::1]/', 'http://[2001::1]/', 'http://[::127.0.0.1]/']) u
        WHERE pg_temp.err_of_undone(format('SELECT add_site_contact(%s, %L, %L, %L)', :ta, 'A03', 'webhook', u))
              NOT LIKE '22023: webhook URL refused: destination %'), '{}'::text[],
    'loopback, private, link-local, unique-local, CGNAT, unspecified, multicast, reserved, broadcast, documentation, '
    'and IPv4 in IPv6 (mapped, NAT64, 6to4) of such: every one refused');
SELECT is(ARRAY(SELECT pg_temp.err_of_undone(format('SELECT add_site_contact(%s, %L, %L, %L)', :ta, 'A03', 'webhook', u)) FROM unnest(ARRAY[
        'https://93.184.216.34/hook', 'http://[2606:4700::6810:84e5]:8443/x', 'http://[64:ff9b::5db8:d822]/',
        'http://[2002:5db8:d822::1]/', 'https://hooks.example.com/x', 'http://localhost:8080/x']) u),
    '{"no error","no error","no error","no error","no error","no error"}'::text[],
    'public addresses, IPv4 in IPv6 of a public one, and host names (checked when a message is sent) are accepted');
SELECT is(pg_temp.err_of(format($$SELECT add_site_contact(%s, 'A03', 'webhook', 'http://a@b:c@127.0.0.1/')$$, :ta)),
    '22023: webhook URL refused: not a URL libcurl can read (Port number was not a decimal number between 0 and 65535)',
    'a URL libcurl cannot read is refused as such');

-- ca_file names a file on the database server: an operator's to set
CREATE ROLE dl_admin LOGIN;
CREATE ROLE dl_gateway LOGIN IN ROLE status_checker_gateway;
GRANT status_checker_admin TO dl_gateway;
CREATE ROLE dl_operator LOGIN IN ROLE status_checker_operator, status_checker_admin;
SELECT map_db_role(:ta, 'admin_a', 'dl_admin') AS mapped \gset
CREATE TEMP TABLE before_ca AS SELECT pg_temp.row_counts() AS counts;
\set ca_channel '{"url": "https://hooks.example.com/ca", "secret": "0123456789abcdef", "ca_file": "/etc/ssl/private/server.key"}'
SET SESSION AUTHORIZATION dl_admin;
SELECT throws_ok(format('SELECT status_checker.add_channel(%s, %L, %L, %L)', :ta, 'webhook', 'ca', :'ca_channel'), '42501',
    'only an operator may set "ca_file" (a path on the database server)', 'ca_file by a tenant''s administrator (a mapped login): 42501');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION dl_gateway;
SELECT set_app_user(:ta, 'admin_a') AS grp \gset
SET LOCAL ROLE :grp;
SELECT throws_ok(format('SELECT status_checker.add_channel(%s, %L, %L, %L)', :ta, 'webhook', 'ca', :'ca_channel'), '42501', NULL,
    '... and through a gateway acting for that administrator: 42501');
RESET ROLE;
SELECT reset_app_user();
RESET SESSION AUTHORIZATION;
SELECT is(pg_temp.row_counts(), (SELECT counts FROM before_ca), '... which stored nothing');
SET SESSION AUTHORIZATION dl_operator;
SELECT lives_ok(format('SELECT status_checker.add_channel(%s, %L, %L, %L)', :ta, 'webhook', 'ca-operator', :'ca_channel'),
    'ca_file by an operator (a member of status_checker_operator)');
RESET SESSION AUTHORIZATION;
SELECT lives_ok(format('SELECT add_channel(%s, %L, %L, %L)', :ta, 'webhook', 'ca-superuser', :'ca_channel'), '... and by a superuser');
SELECT is((SELECT array_agg(config ->> 'ca_file') FROM channel WHERE tenant_id = :ta AND name LIKE 'ca-%'),
    '{/etc/ssl/private/server.key,/etc/ssl/private/server.key}', '... both stored');
SELECT set_channel_enabled(channel_id, false) FROM channel WHERE tenant_id = :ta AND name LIKE 'ca-%';

-- ------------------------------------------------------------ enqueue
SELECT is((SELECT array_agg(r || ':' || purpose || ':' || state ORDER BY r) FROM (SELECT pg_temp.rcpt(o) AS r, o.* FROM outbox o) x WHERE request_id = :ra),
    '{a01@a.example:request:queued,a02@a.example:request:queued}', 'creating a request enqueued one message per contact, in the same transaction');
SELECT is((SELECT count(*)::int FROM outbox WHERE request_id = :rb), 0, 'a tenant whose sites have no contacts gets no messages');
SELECT is(_enqueue_site_messages(:ta, :ra, 'request', 0, (SELECT array_agg(site_id) FROM request_target WHERE request_id = :ra)), 0::bigint,
    'enqueueing the same messages again does nothing (natural key)');
SELECT is((SELECT recipient FROM delivery_status WHERE request_id = :ra ORDER BY message_id LIMIT 1), 'a***@a.example',
    'delivery_status masks the recipient');

-- ------------------------------------------------------------ claim and render
CREATE TEMP TABLE claimed AS SELECT * FROM _claim_messages(100, 60000);
SELECT is((SELECT count(*)::int FROM claimed WHERE tenant_id = :ta), 2, 'the dispatcher''s claim returns the due messages');
SELECT is((SELECT array_agg(DISTINCT state) FROM outbox WHERE request_id = :ra), '{sending}', '... now sending, with a lease');
SELECT is((SELECT count(*)::int FROM _claim_messages(100, 60000)), 0, 'a leased message is not claimed twice');
SELECT is((SELECT array_agg(DISTINCT claimed_by) FROM outbox WHERE request_id = :ra), '{0}'::smallint[],
    '... held by the worker that claimed them (worker 0 unless the dispatcher names another)');
SELECT ok((SELECT bool_and(kind = 'email' AND url = 'smtp://mail.example.com:587' AND mail_from = '<noreply@a.example>'
                           AND rcpt IN ('<a01@a.example>', '<a02@a.example>') AND username = 'u' AND password = 's3cret'
                           AND tls = 'require') FROM claimed WHERE tenant_id = :ta),
    'an email comes with its SMTP server, envelope, STARTTLS required and credentials');
SELECT ok((SELECT bool_and(headers ~ E'(^|\\n)Subject: =\\?UTF-8\\?B\\?' AND headers ~ E'\\nMessage-ID: <sc1-\\d+-\\d+@a\\.example>'
                           AND headers ~ E'From: =\\?UTF-8\\?B\\?[^\\n]*<noreply@a\\.example>' AND headers ~ E'\\nDate: ')
           FROM claimed WHERE tenant_id = :ta),
    'mail headers: RFC 2047 subject and sender name, Message-ID from the message, Date');
SELECT ok((SELECT bool_and(body LIKE '%A request%' AND body ~ 'https://status\.example\.com/r/[A-Za-z0-9_-]{43}\.[1-9][0-9]*\.[1-9][0-9]*\.[1-9][0-9]*'
                           AND body LIKE '%回答期限%')
           FROM claimed WHERE tenant_id = :ta),
    'the text has the request, the personal link (the token, then the target it names) and the deadline');
SELECT substring(body FROM 'https://status\.example\.com/r/([A-Za-z0-9_-]{43}\.[0-9]+\.[0-9]+\.[0-9]+)') AS link_token
FROM claimed WHERE rcpt = '<a01@a.example>' \gset
SELECT site_id AS a01 FROM site WHERE tenant_id = :ta AND code = 'A01' \gset
SELECT site_id AS a02 FROM site WHERE tenant_id = :ta AND code = 'A02' \gset
SELECT is(substring(:'link_token' FROM 45), format('%s.%s.%s', :ta, :ra, :a01), 'the link names its target: tenant, request, site');
SELECT is((SELECT token_gen::text || '/' || coalesce(encode(token_hash, 'hex'), 'none') FROM request_target
           WHERE tenant_id = :ta AND request_id = :ra AND site_id = :a01), '0/none',
    'sending a first link wrote nothing: no generation, no hash (0.9.0)');
-- first links that are not: another site's, a changed character, names that are not canonical
CREATE TEMP TABLE before_links AS SELECT pg_temp.row_counts() AS counts;
SELECT throws_ok(format('SELECT submit_report(%L, %L)', left(:'link_token', 44) || format('%s.%s.%s', :ta, :ra, :a02), :'ok_answers'),
    '28000', 'unknown report token', 'a first link with another site''s name: unknown report token (28000)');
SELECT throws_ok(format('SELECT submit_report(%L, %L)',
                        CASE WHEN left(:'link_token', 1) = 'A' THEN 'B' ELSE 'A' END || substring(:'link_token' FROM 2), :'ok_answers'),
    '28000', 'unknown report token', 'a first link with one character changed: 28000');
SELECT throws_ok(format('SELECT report_form(%L)', left(:'link_token', 44) || format('0%s.%s.%s', :ta, :ra, :a01)),
    '28000', 'unknown report token', 'a first link whose names are not canonical (a leading zero): 28000');
SELECT throws_ok(format('SELECT report_form(%L)', :'link_token' || '.1'), '28000', 'unknown report token',
    'a first link with more after its names: 28000');
SELECT throws_ok(format('SELECT report_form(%L)', left(:'link_token', 44) || format('%s.%s.9223372036854775808', :ta, :ra)),
    '28000', 'unknown report token', 'a first link naming an id beyond bigint: 28000');
SELECT throws_ok(format('SELECT _link(_link_key(%s), %s, %s, 0, 1)', :ta, :ta, :ra), '22023', NULL,
    'a link naming a site id that cannot be one (0): 22023');
SELECT is(pg_temp.row_counts(), (SELECT counts FROM before_links), '... and nothing was stored');
SELECT is(report_form(:'link_token') #>> '{site,code}', 'A01', 'opening a first link shows its site''s form');
SELECT is((SELECT token_gen FROM request_target WHERE tenant_id = :ta AND request_id = :ra AND site_id = :a01), 0,
    '... and changes nothing (a mail scanner opens links first)');
SELECT ok(submit_report(:'link_token', :'ok_answers') > 0, 'the token in the link is the site''s personal token');
SELECT is((SELECT token_gen::text || '/' || (token_hash = _token_hash(left(:'link_token', 43)))::text FROM request_target
           WHERE tenant_id = :ta AND request_id = :ra AND site_id = :a01), '1/true',
    'the first report issued it: generation 1, only its hash stored');
SELECT ok(submit_report(:'link_token', :'ok_answers') > 0 AND submit_report(left(:'link_token', 43), :'ok_answers') > 0,
    'from then on the link, and the token alone, are found by the hash');

-- ------------------------------------------------------------ record outcomes
SELECT message_id AS m1 FROM claimed WHERE rcpt = '<a01@a.example>' \gset
SELECT message_id AS m2 FROM claimed WHERE rcpt = '<a02@a.example>' \gset
SELECT _record_outcomes(ARRAY[:ta, :ta]::bigint[], ARRAY[:m1, :m2]::bigint[], ARRAY[1, 1], ARRAY['sent', 'retry'],
                        ARRAY[250, 451], ARRAY['', 'SMTP 451: try later'], ARRAY[0, 0], 3, 1000, 60000);
SELECT is((SELECT state || '/' || attempts FROM outbox WHERE message_id = :m1), 'sent/1', 'sent: recorded with its time');
SELECT ok((SELECT state = 'retrying' AND next_attempt_at > now() + interval '0.4 s' AND next_attempt_at <= now() + interval '1 s'
           FROM outbox WHERE message_id = :m2), 'a retry waits base × 2^(attempt-1) with jitter (50-100 %)');
SELECT is((SELECT outcome || ' ' || status || ' ' || error FROM delivery_attempt WHERE message_id = :m2), 'retry 451 SMTP 451: try later',
    'the failed attempt is in the delivery log');
SELECT _record_outcomes(ARRAY[:ta]::bigint[], ARRAY[:m2]::bigint[], ARRAY[1], ARRAY['sent'], ARRAY[250], ARRAY[''], ARRAY[0], 3, 1000, 60000);
SELECT is((SELECT state FROM outbox WHERE message_id = :m2), 'retrying', 'a late outcome of an attempt no longer sending changes nothing');
UPDATE outbox SET next_attempt_at = now() WHERE message_id = :m2;
SELECT is((SELECT count(*)::int FROM _claim_messages(10, 60000)), 1, 'a due retry is claimed again');
SELECT _record_outcomes(ARRAY[:ta]::bigint[], ARRAY[:m2]::bigint[], ARRAY[2], ARRAY['retry'], ARRAY[0], ARRAY['timeout'], ARRAY[120], 3, 1000, 60000);
SELECT ok((SELECT next_attempt_at >= now() + interval '120 s' FROM outbox WHERE message_id = :m2), 'Retry-After is honoured');
UPDATE outbox SET next_attempt_at = now() WHERE message_id = :m2;
SELECT count(*) AS n FROM _claim_messages(10, 60000) \gset
SELECT _record_outcomes(ARRAY[:ta]::bigint[], ARRAY[:m2]::bigint[], ARRAY[3], ARRAY['retry'], ARRAY[451], ARRAY['SMTP 451'], ARRAY[0], 3, 1000, 60000);
SELECT is((SELECT state || ' ' || last_error FROM outbox WHERE message_id = :m2), 'dead gave up after 3 attempts: SMTP 451',
    'after the last attempt allowed, a message is dead and says why');
SELECT throws_ok(format('SELECT retry_message(%s)', :m1), '55000', NULL, 'retry_message of a sent message: 55000');
SELECT throws_ok('SELECT retry_message(99999999)', '23503', NULL, 'retry_message of an unknown message: 23503');
SELECT lives_ok(format('SELECT retry_message(%s)', :m2), 'retry_message of a dead message');
SELECT is((SELECT state || '/' || attempts FROM outbox WHERE message_id = :m2), 'queued/0', '... queues it again with fresh attempts');
SELECT is((SELECT sent || '/' || dead || '/' || messages FROM request_delivery WHERE request_id = :ra), '1/0/2', 'request_delivery counts by state');

-- ------------------------------------------------------------ no channel, cancellation
SELECT set_channel_enabled(:ch_mail, false);
SELECT is((SELECT count(*)::int FROM _claim_messages(10, 60000)), 0, 'without an enabled channel nothing goes out ...');
SELECT ok((SELECT state = 'queued' AND attempts = 0 AND last_error LIKE 'waiting: tenant % has no enabled email channel%' FROM outbox WHERE message_id = :m2),
    '... the message waits, says why, and spends no attempt');
SELECT set_channel_enabled(:ch_mail, true);
SELECT cancel_request(:ra, '誤配信');
SELECT is((SELECT state FROM outbox WHERE message_id = :m2), 'cancelled', 'cancelling a request drops its unsent messages');
SELECT is((SELECT array_agg(pg_temp.rcpt(o)) FROM outbox o WHERE request_id = :ra AND purpose = 'cancellation'), '{a01@a.example}',
    '... and tells the sites that were sent the request');

-- ------------------------------------------------------------ tokens
SELECT create_request(:ta, :fa, 'Token test', now() + interval '1 hour', '{"sites": ["A02"]}') AS rt \gset
SELECT issue_token(:rt, 'A02') AS tok1 \gset
SELECT issue_token(:rt, 'A02') AS tok2 \gset
SELECT isnt(:'tok1'::text, :'tok2'::text, 'issue_token starts a new generation: a new token');
SELECT throws_ok(format($$SELECT submit_report(%L, %L)$$, :'tok1', :'ok_answers'), '28000', NULL, 'the replaced token is refused');
SELECT is(_target_token(:ta, :rt, (SELECT site_id FROM site WHERE tenant_id = :ta AND code = 'A02'), 2), :'tok2'::text,
    'the token is derived (link key, request, site, generation): the dispatcher renders it without storing it');

-- ------------------------------------------------------------ templates and encoding
SELECT throws_ok(format($$SELECT set_message_template(%s, 'request', 'ja', '{{site_nmae}}', 'x')$$, :ta), '22023', NULL, 'unknown template variable: 22023');
SELECT throws_ok(format($$SELECT set_message_template(%s, 'party', 'ja', 's', 'b')$$, :ta), '22023', NULL, 'unknown purpose: 22023');
SELECT throws_ok(format($$SELECT set_message_template(%s, 'request', 'fr', 's', 'b')$$, :ta), '22023', NULL, 'unknown language: 22023');
SELECT throws_ok(format($$SELECT set_message_template(%s, 'request', 'ja', E'two\nlines', 'b')$$, :ta), '22023', NULL,
    'a subject of two lines (header injection): 22023');
SELECT set_message_template(:ta, 'request', 'ja', '【至急】{{site_name}}', E'{{site_name}} 様\n{{event_summary}}\n{{link}}');
SELECT create_request(:ta, :fa, 'Custom', now() + interval '1 hour', '{"sites": ["A02"]}') AS rc \gset
SELECT ok((SELECT c.body ~ E'^A金沢 様\\nhttps://status\\.example\\.com/r/' FROM _claim_messages(10, 60000) c
           JOIN outbox o ON o.message_id = c.message_id WHERE o.request_id = :rc),
    'a tenant''s own template is used; a line left empty by a variable is dropped');
SELECT is(_fill(E'a {{x}}\n{{y}}\n\n\n{{ x }} b', 'x', 'X', 'y', ''), E'a X\n\nX b', '_fill: variables, dropped lines, one blank line at most');
SELECT is(_mime_header('Hello'), 'Hello', 'ASCII headers are left as they are');
SELECT ok((SELECT bool_and(length(w) <= 75) AND string_agg(convert_from(decode(substring(w FROM 11 FOR length(w) - 12), 'base64'), 'UTF8'), '' ORDER BY i)
                  = '【報告依頼】震度6強 石川県能登地方 M7.6 (01/01 16:10 JST) — 輪島営業所'
           FROM regexp_split_to_table(_mime_header('【報告依頼】震度6強 石川県能登地方 M7.6 (01/01 16:10 JST) — 輪島営業所'), E'\r\n ') WITH ORDINALITY s(w, i)),
    'a Japanese subject: encoded-words of at most 75 characters that decode to the subject');
-- one message rendered in C (_render_message): a Slack body, an escalation's
-- JSON, a mail's headers; NULL parts left out as the SQL it replaced did
SELECT is((_render_message('webhook', 'slack', 'request', 0, 7, 'sc1-1-7', '件名 "{{site_name}}"', E'本文\n{{link}}', NULL,
                           1, 'S1', '工場', NULL, NULL, NULL, NULL, 'https://x.example/r/t.1.2.3', NULL, '0', '', NULL,
                           NULL, NULL, NULL, NULL))[2],
          E'{"text": "*件名 \\"工場\\"*\\n本文\\nhttps://x.example/r/t.1.2.3"}', 'a Slack body: {"text": "*subject*\\ntext"}, escaped');
SELECT is((_render_message('webhook', 'json', 'escalation', 1, 8, 'sc1-1-8', '{{unanswered_count}} 拠点', '{{unanswered_sites}}',
                           '{"version": 1, "type": "escalation"}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                           '[{"code": "S2", "name": "支店"}]', '1', '・S2 支店', NULL, NULL, NULL, NULL, NULL))[2]::jsonb,
          '{"version": 1, "type": "escalation", "idempotency_key": "sc1-1-8", "message_id": 8, "site": null, "link": null,
            "reminder_number": null, "unanswered_sites": [{"code": "S2", "name": "支店"}], "subject": "1 拠点", "text": "・S2 支店"}'::jsonb,
    'an escalation''s JSON: the request''s part and the message''s, the silent sites as a list');
SELECT ok((_render_message('email', NULL, 'reminder', 2, 9, 'sc1-1-9', '催促', 'x', NULL, 1, 'S1', '工場', NULL, NULL, NULL, NULL,
                           NULL, NULL, '0', '', '輪島 太郎', NULL, 'noreply@a.example', 'wajima@a.example', 'ja+en'))[1]
          ~ E'^From: <noreply@a\\.example>\nTo: =\\?UTF-8\\?B\\?[^\n]+ <wajima@a\\.example>\nSubject: =\\?UTF-8\\?B\\?[^\n]+\nDate: [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} \\+0000\nMessage-ID: <sc1-1-9@a\\.example>\nContent-Language: ja, en\nAuto-Submitted: auto-generated\nX-Auto-Response-Suppress: All\nX-Status-Checker-Purpose: reminder\nX-Status-Checker-Idempotency-Key: sc1-1-9$',
    'a mail''s headers: no sender name (none given), the recipient''s name encoded, Date in UTC, Message-ID from the key and the sender''s domain');
SELECT ok(webhook_signature('secret', 1700000000, '{"a":1}') ~ '^v1=[0-9a-f]{64}$'
          AND webhook_signature('secret', 1700000000, '{"a":1}') <> webhook_signature('secret', 1700000001, '{"a":1}'),
    'webhook_signature covers the timestamp');

-- ------------------------------------------------------------ reminders, escalation, retention
SELECT throws_ok(format($$SELECT set_request_reminders(%s, ARRAY['1 hour', '30 minutes']::interval[])$$, :rc), '22023', NULL,
    'reminder intervals must increase: 22023');
SELECT throws_ok($$SELECT set_request_reminders(NULL, '{}')$$, '22004', NULL, 'NULL request: 22004');
SELECT throws_ok(format($$SELECT set_request_reminders(%s, '{}', '10 seconds')$$, :rc), '22023', NULL,
    'an escalation sooner than a minute: 22023');
SELECT add_user(:ta, 'noto', 'noto@a.example', 'manager') AS u1 \gset
SELECT add_user(:ta, 'view', 'view@a.example', 'viewer') AS u2 \gset
SELECT throws_ok(format($$SELECT add_group_manager(%s, (SELECT group_id FROM site_group WHERE tenant_id = %s AND path = '北陸'), 'view')$$, :ta, :ta),
    '22023', NULL, 'a viewer cannot manage a group: 22023');
SELECT throws_ok(format($$SELECT add_group_manager(%s, (SELECT group_id FROM site_group WHERE tenant_id = %s AND path = '北陸'), 'nobody')$$, :ta, :ta),
    '23503', NULL, 'an unknown login: 23503');
SELECT throws_ok('SELECT set_channel_enabled(99999999, true)', '23503', NULL, 'set_channel_enabled of an unknown channel: 23503');
SELECT throws_ok($$SELECT set_rule_reminders(99999999, '{}')$$, '23503', NULL, 'set_rule_reminders of an unknown rule: 23503');
SELECT add_group_manager(:ta, (SELECT group_id FROM site_group WHERE tenant_id = :ta AND path = '北陸'), 'noto');
SELECT create_request(:ta, :fa, 'Remind', now() + interval '6 hours', '{"sites": ["A01", "A02"]}') AS rr \gset
SELECT set_request_reminders(:rr, ARRAY['10 minutes', '1 hour']::interval[], '30 minutes');
UPDATE request SET created_at = created_at - interval '20 minutes' WHERE request_id = :rr;
UPDATE outbox SET enqueued_at = enqueued_at - interval '20 minutes' WHERE request_id = :rr;
SELECT submit_report_for(:rr, 'A01', :'ok_answers');
SELECT run_reminders() AS n \gset
SELECT is((SELECT array_agg(pg_temp.rcpt(o) || ':' || seq) FROM outbox o WHERE request_id = :rr AND purpose = 'reminder'), '{a02@a.example:1}',
    'the first reminder goes to the site that has not answered');
SELECT is((SELECT count(*)::int FROM outbox WHERE request_id = :rr AND purpose = 'escalation'), 0, 'no escalation before its time');
UPDATE request SET created_at = created_at - interval '20 minutes' WHERE request_id = :rr;
SELECT run_reminders() AS n \gset
SELECT is((SELECT array_agg(pg_temp.rcpt(o) || ' ' || (detail -> 'sites' -> 0 ->> 'code')) FROM outbox o WHERE request_id = :rr AND purpose = 'escalation'),
    '{"noto@a.example A02"}', 'escalation: the manager of the site''s group (北陸 ⊃ 北陸/加賀) hears of the silent site');
SELECT is(run_reminders(), 0::bigint, 'running the job again enqueues nothing');
-- the claim settles what must not go out any more and sends the rest of its
-- batch: a reminder to a site that answered meanwhile, a request closed
-- while its message waited
SELECT submit_report_for(:rr, 'A02', :'ok_answers');
SELECT create_request(:ta, :fa, 'Closed early', now() + interval '6 hours', '{"sites": ["A01"]}') AS rq \gset
SELECT close_request(:rq);
CREATE TEMP TABLE claimed2 AS SELECT * FROM _claim_messages(100, 60000);
SELECT is((SELECT state || ': ' || last_error FROM outbox WHERE request_id = :rr AND purpose = 'reminder'),
    'cancelled: not sent: the site answered before the reminder went out', 'a reminder to a site that answered meanwhile is settled, not sent');
SELECT is((SELECT state || ': ' || last_error FROM outbox WHERE request_id = :rq),
    'cancelled: not sent: the request is closed', 'a message of a request closed meanwhile is settled, not sent');
SELECT is((SELECT array_agg(o.purpose || ':' || o.state ORDER BY o.message_id) FROM claimed2 c JOIN outbox o USING (message_id)
           WHERE o.request_id IN (:rr, :rq) AND o.purpose <> 'request'),
    '{escalation:sending}', '... and the rest of its batch goes out: the escalation');
SELECT _record_outcomes(array_agg(tenant_id), array_agg(message_id), array_agg(attempts), array_agg('sent'::text), array_agg(200),
                        array_agg(''::text), array_agg(0), 3, 1000, 60000) FROM claimed2;
SELECT throws_ok('SELECT purge_outbox(''1 hour'')', '22023', NULL, 'retention shorter than a day: 22023');
UPDATE outbox SET sent_at = now() - interval '100 days' WHERE message_id = :m1;
SELECT is(purge_outbox(), 1::bigint, 'purge_outbox deletes settled messages older than 90 days');
SELECT throws_ok('SELECT schedule_jobs()', '55000', NULL, 'schedule_jobs without pg_cron: 55000, with what to do');

-- ------------------------------------------------------------ requests made by rules
\getenv fixtures SC_FIXTURES
SELECT create_trigger_rule(:ta, '震度5弱以上', :fa, '5-') AS rule \gset
SELECT ingest_feed_document('jma', pg_read_binary_file(:'fixtures' || '/jma/VXSE51_20240101_noto_M7.6_maxint6+.xml')) AS events \gset
SELECT is((SELECT array_agg(pg_temp.rcpt(o) ORDER BY pg_temp.rcpt(o)) FROM outbox o
           JOIN trigger_fire f ON f.tenant_id = o.tenant_id AND f.request_id = o.request_id WHERE f.rule_id = :rule),
    '{a01@a.example,a02@a.example}', 'a rule''s request enqueues its sites'' messages in the transaction that ingests the telegram');
SELECT is((SELECT count(*)::int FROM outbox o JOIN request q ON q.tenant_id = o.tenant_id AND q.request_id = o.request_id
           WHERE q.tenant_id = :tb AND q.rule_id IS NOT NULL), 0, 'tenant B (no rule, no contacts) got nothing');

-- ------------------------------------------------------------ dispatcher workers (0.8.0)
-- five messages left 'sending': by worker 0, by worker 1, before 0.8.0 (no
-- worker), by a worker beyond the configured ones, and by worker 0 with a
-- lease run out
CREATE TEMP TABLE held AS
SELECT o.message_id, (ARRAY['w0', 'w1', 'old', 'w5', 'expired'])[row_number() OVER (ORDER BY o.message_id)] AS who
FROM outbox o WHERE o.tenant_id = :ta ORDER BY o.message_id LIMIT 5;
UPDATE outbox o SET state = 'sending',
    claimed_by = CASE h.who WHEN 'w1' THEN 1 WHEN 'old' THEN NULL WHEN 'w5' THEN 5 ELSE 0 END,
    lease_until = CASE h.who WHEN 'expired' THEN now() - interval '1 second' ELSE now() + interval '5 minutes' END
FROM held h WHERE o.tenant_id = :ta AND o.message_id = h.message_id;
SELECT throws_ok('SELECT _dispatcher_startup(2, 2)', '22023', NULL, 'a worker number beyond the workers: 22023');
SELECT is(_dispatcher_startup(1, 2), 2::bigint, 'worker 1 starting takes back its own message and the one whose lease ran out ...');
SELECT is((SELECT array_agg(h.who ORDER BY h.who) FROM held h JOIN outbox o ON o.tenant_id = :ta AND o.message_id = h.message_id
           WHERE o.state = 'sending'), '{old,w0,w5}', '... and leaves those of worker 0, and the ones worker 0 takes back, alone');
SELECT is(_dispatcher_startup(0, 2), 3::bigint, 'worker 0 takes back its own, those claimed before 0.8.0, and those of workers no longer configured');
SELECT is((SELECT array_agg(DISTINCT o.state) FROM held h JOIN outbox o ON o.tenant_id = :ta AND o.message_id = h.message_id
           WHERE o.lease_until IS NULL AND o.next_attempt_at <= now()), '{retrying}', '... so that all five are due again');
SELECT is((SELECT count(*)::int FROM dispatcher_workers()),
          CASE WHEN current_setting('status_checker.dispatch_workers', true) IS NULL THEN 0
               ELSE current_setting('status_checker.dispatch_workers')::int END,
    'dispatcher_workers(): a row per configured worker (none when the library is not preloaded)');

-- a new tenant has its link key at once (no first-link race, test/tap/004_contention.pl)
SELECT create_tenant('鍵テスト', 'admin_k', 'admin@k.example') AS tk \gset
SELECT is((SELECT count(*) FROM link_key WHERE tenant_id = :tk), 1::bigint, 'a new tenant has its link key at once');

-- ------------------------------------------------------------ first links and issue_token
-- tenant B had nobody to send to when its request was made; given a
-- contact and a mail channel later, its first link goes out
SELECT add_channel(:tb, 'email', 'mail-b', '{"url": "smtp://mail.example.com:587", "from": "noreply@b.example"}') AS ch_b \gset
SELECT add_site_contact(:tb, 'B01', 'email', 'b01@b.example') AS contact_b \gset
SELECT _enqueue_site_messages(:tb, :rb, 'request', 0, ARRAY(SELECT site_id FROM site WHERE tenant_id = :tb AND code = 'B01')) AS n \gset
SELECT substring(body FROM 'https://status\.example\.com/r/([A-Za-z0-9_-]{43}\.[0-9.]+[0-9])') AS b_token
FROM _claim_messages(100, 60000) WHERE tenant_id = :tb \gset
SELECT is((SELECT token_gen FROM request_target t JOIN site s USING (tenant_id, site_id) WHERE t.request_id = :rb AND s.code = 'B01'), 0,
    'a target''s first link goes out with no token issued');
-- issue_token now: the link that went out stops working, with the clear error
SELECT issue_token(:rb, 'B01') AS b_new \gset
SELECT is((SELECT token_gen FROM request_target t JOIN site s USING (tenant_id, site_id) WHERE t.request_id = :rb AND s.code = 'B01'), 2,
    'issue_token after a first link went out: generation 2');
SELECT throws_ok(format('SELECT submit_report(%L, %L)', :'b_token', :'ok_answers'), '28000', 'this report link has been replaced by a newer one',
    '... and the first link is replaced (28000, "replaced")');
SELECT throws_ok(format('SELECT report_form(%L)', :'b_token'), '28000', 'this report link has been replaced by a newer one',
    '... for the reporter page too');
SELECT ok(submit_report(:'b_new', :'ok_answers') > 0, '... and the new token works');
-- a site whose link never went out: issue_token gives generation 1, the
-- token that its first link will carry
SELECT upsert_site(:tb, 'B09', '未送信', '1310100', 35.68, 139.76) AS b09 \gset
INSERT INTO request_target (tenant_id, request_id, site_id) VALUES (:tb, :rb, :b09);
SELECT issue_token(:rb, 'B09') AS b09_token \gset
SELECT is(_link(_link_key(:tb), :tb, :rb, :b09, 1), :'b09_token' || format('.%s.%s.%s', :tb, :rb, :b09),
    'issue_token before any link went out: generation 1, the token a later first link carries');
SELECT ok(submit_report(_link(_link_key(:tb), :tb, :rb, :b09, 1), :'ok_answers') > 0, '... and that link works');

SELECT * FROM finish();
ROLLBACK;
