-- demo/links.sql — personal links for the request the 震度 rule made (run by
-- run-demo.sh).  Only the tokens' hashes are stored; the demo keeps the
-- plain tokens in a scratch table to play the part of the site staff.
\set ON_ERROR_STOP on
\set QUIET on
SET search_path = status_checker, public;
SELECT min(request_id) AS request FROM request WHERE rule_id IS NOT NULL \gset
CREATE TABLE public.demo_link AS SELECT * FROM issue_tokens(:request);
\set QUIET off
