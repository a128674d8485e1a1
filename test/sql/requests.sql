-- requests: targets resolved at creation, tokens, close and cancel
SET search_path = status_checker, public;
\set SHOW_CONTEXT never

SELECT upsert_site(1, 'TYM01', '富山支店', '1620100', 36.69, 137.21, 1);   -- group 北陸
SELECT upsert_site(1, 'NNO01', '七尾倉庫', '1720200', 37.04, 136.96, 3);   -- group 能登営業所
SELECT upsert_site(1, 'OSK01', '大阪出張所', '2712800', 34.69, 135.50);    -- no group
SELECT upsert_site(1, 'SEA01', 'Seattle office', NULL, 47.61, -122.33);   -- abroad: no municipality

-- each kind of target
CREATE TEMP TABLE made AS
SELECT label, create_request(1, 1, '被害報告: ' || label, now() + interval '6 hours', target) AS request_id
FROM (VALUES ('all', '{"all": true}'::jsonb),
             ('北陸 group with descendants', '{"groups": [1]}'),
             ('能登 group', '{"groups": [3]}'),
             ('two sites', '{"sites": ["KNZ01", "OSK01"]}'),
             ('municipality by JIS code', '{"municipalities": ["172049"]}'),
             ('area 石川県能登', '{"areas": ["390"]}')) v(label, target);
SELECT m.label, r.targets, array_agg(s.code ORDER BY s.code) AS sites
FROM made m
JOIN request r ON r.request_id = m.request_id
JOIN request_target t ON t.tenant_id = r.tenant_id AND t.request_id = r.request_id
JOIN site s ON s.tenant_id = t.tenant_id AND s.site_id = t.site_id
GROUP BY m.label, m.request_id, r.targets ORDER BY m.request_id;
SELECT request_id, state, drill, targets, target_spec FROM request ORDER BY request_id;
SELECT create_request(1, 1, '訓練', now() + interval '1 hour', drill => true, message => '訓練です') AS drill_request;
SELECT request_id, drill, message FROM request WHERE drill;
SELECT count(*) AS counter_slots FROM request_counter WHERE request_id = 1;

-- targets are resolved once: a site added later is not a target
SELECT upsert_site(1, 'NEW01', '新店舗', '1720400', 37.4, 136.9, 3);
SELECT targets, (SELECT count(*) FROM request_target t WHERE t.request_id = 3) AS rows FROM request WHERE request_id = 3;

-- bad requests change nothing
SELECT count(*) AS requests_before FROM request;
SELECT create_request(1, 1, '過去', '2020-01-01 09:00+09');
SELECT create_request(1, 1, '', now() + interval '1 hour');
SELECT create_request(1, 99, '書式', now() + interval '1 hour');
SELECT create_request(1, 3, '他社の書式', now() + interval '1 hour');
SELECT create_request(99, 1, 'ghost', now() + interval '1 hour');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"all": false}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"sites": ["KNZ01", "NOPE", "T001"]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"groups": [1, 999]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"groups": ["北陸"]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"areas": [390]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"areas": ["350"]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"municipalities": ["12345"]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"sites": []}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"prefectures": ["17"]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '{"all": true, "sites": ["KNZ01"]}');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', '[]');
SELECT create_request(1, 1, 'x', now() + interval '1 hour', message => repeat('あ', 5001));
SELECT count(*) AS requests_after FROM request;

-- tokens: 43 base64url characters (256 bits), only the SHA-256 is stored
SELECT issue_token(1, 'KNZ01') AS tok \gset
SELECT length(:'tok') AS token_length, :'tok' ~ '^[A-Za-z0-9_-]{43}$' AS base64url;
SELECT t.token_hash = sha256(convert_to(:'tok', 'UTF8')) AS stored_hash_is_sha256, length(t.token_hash) AS hash_bytes
FROM request_target t JOIN site s USING (tenant_id, site_id) WHERE t.request_id = 1 AND s.code = 'KNZ01';
SELECT count(*) AS plaintext_anywhere
FROM request_target t WHERE position(convert_to(:'tok', 'UTF8') IN t.token_hash) > 0 OR t.token_hash::text LIKE '%' || :'tok' || '%';
SELECT issue_token(1, 'KNZ01') <> :'tok' AS new_token_differs;
SELECT count(*) AS revoked FROM request_token_revoked;
SELECT count(*) AS tokens, count(DISTINCT token) AS distinct_tokens, bool_and(token ~ '^[A-Za-z0-9_-]{43}$') AS all_well_formed
FROM issue_tokens(1);
SELECT count(*) AS revoked_after_reissue FROM request_token_revoked;
SELECT issue_token(1, 'NOPE');
SELECT issue_token(3, 'KNZ01');
SELECT issue_token(999, 'KNZ01');

-- close and cancel
SELECT close_request(2);
SELECT close_request(2) AS closing_twice_is_fine;
SELECT request_id, state, closed_at IS NOT NULL AS closed FROM request WHERE request_id = 2;
SELECT issue_token(2, 'KNZ01');
SELECT cancel_request(3, '誤送信');
SELECT cancel_request(3, 'again') AS cancelling_twice_keeps_the_first_reason;
SELECT request_id, state, cancel_reason FROM request WHERE request_id = 3;
SELECT close_request(3);
SELECT cancel_request(4, '');
SELECT cancel_request(4, NULL);
SELECT cancel_request(999, 'x');
SELECT close_request(7);
SELECT cancel_request(7, '閉じた後の取り消し');
SELECT request_id, state, cancel_reason FROM request WHERE request_id IN (2, 3, 4, 7) ORDER BY 1;
