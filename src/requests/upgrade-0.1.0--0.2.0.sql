-- src/requests/upgrade-0.1.0--0.2.0.sql — the changes 0.2.0 makes to
-- objects of 0.1.0 (upgrade script only; a fresh install creates them so).
-- request_target loses its foreign key to site: src/requests/targets.sql
-- guards deletions instead.
ALTER TABLE status_checker.request_target DROP CONSTRAINT IF EXISTS request_target_tenant_id_site_id_fkey;
-- requests made by a rule record why each site was asked
ALTER TABLE status_checker.request_target ADD COLUMN asked_shindo status_checker.shindo, ADD COLUMN asked_reason text;
