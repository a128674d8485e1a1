-- demo/links.sql — the personal links the site staff received by mail (run
-- by run-demo.sh, which reads them out of the mails the dispatcher sent).
-- Variable: links (a CSV file: recipient address, token).  The demo keeps
-- them in a scratch table to play the part of the site staff.
\set ON_ERROR_STOP on
\set QUIET on
SET search_path = status_checker, public;
CREATE TEMP TABLE mailed (address text, token text);
\set copy '\\copy mailed FROM ' :'links' ' WITH (FORMAT csv)'
:copy
-- contacts are stored encrypted: contact_list shows them in clear
CREATE TABLE public.demo_link AS
SELECT DISTINCT s.code AS site_code, m.token
FROM mailed m
JOIN contact_list c ON c.address = m.address
JOIN site s ON s.tenant_id = c.tenant_id AND s.code = c.site_code
JOIN request_target t ON t.tenant_id = s.tenant_id AND t.site_id = s.site_id
     AND t.request_id = (SELECT min(request_id) FROM request WHERE rule_id IS NOT NULL)
-- a link is found by its token's hash once a report used it, before that
-- by the target it names (a first link, checked by its MAC)
WHERE t.token_hash = _token_hash(m.token)
   OR (t.tenant_id, t.request_id, t.site_id) = (SELECT * FROM _first_link_target(m.token));
-- the demo is no demo without them
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM public.demo_link) THEN
        RAISE EXCEPTION 'no personal link from the mails matches a site''s contact and token';
    END IF;
END
$$;
\set QUIET off
