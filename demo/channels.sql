-- demo/channels.sql — how the demo tenant's requests leave the database (run by run-demo.sh).
-- Variables: smtp (the local SMTP server's URL), ca (its certificate), hook (the webhook receiver).
\set ON_ERROR_STOP on
\set QUIET on
SET search_path = status_checker, public;
SELECT tenant_id AS tenant FROM tenant ORDER BY tenant_id LIMIT 1 \gset
-- mail through the company's relay: STARTTLS required (the default)
SELECT add_channel(:tenant, 'email', '社内メールリレー', jsonb_build_object(
    'url', :'smtp', 'from', '安否確認システム <anpi@hokuriku-monozukuri.example>', 'ca_file', :'ca',
    'lang', 'ja+en')) AS mail \gset
-- the crisis room's chat (Slack-compatible incoming webhook): every message, for the record
SELECT add_channel(:tenant, 'webhook', '災害対策本部チャット', jsonb_build_object(
    'url', :'hook', 'format', 'slack')) AS chat \gset
-- remind the sites that have not answered after 30 minutes and 2 hours; tell the managers after 3 hours
SELECT set_rule_reminders(rule_id, ARRAY['30 minutes', '2 hours']::interval[], '3 hours')
FROM trigger_rule WHERE tenant_id = :tenant;
\echo '   channels: mail (STARTTLS, ja+en) and the crisis room webhook (Slack format); reminders after 30 min and 2 h, escalation after 3 h'
\set QUIET off
