-- demo/delivery.sql — what the dispatcher did (run by run-demo.sh).
\set ON_ERROR_STOP on
SET search_path = status_checker, public;
\echo '   delivery per request (latency from enqueue to sent, seconds):'
SELECT request_id, messages, sent, retrying, dead, round(latency_p50_s::numeric, 2) AS p50_s,
       round(latency_p95_s::numeric, 2) AS p95_s
FROM request_delivery ORDER BY request_id;
\echo '   a few of the messages:'
SELECT message_id, site_code, channel_kind, recipient, purpose, state, attempts, round(extract(epoch FROM latency)::numeric, 2) AS latency_s
FROM delivery_status ORDER BY message_id LIMIT 6;
