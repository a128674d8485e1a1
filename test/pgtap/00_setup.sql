-- no tests here: pg_prove runs the files in order; this one only checks that
-- the extension and pgTAP are installed in the database under test.
BEGIN;
SELECT plan(2);
SELECT has_extension('status_checker');
SELECT has_extension('pgtap');
SELECT * FROM finish();
ROLLBACK;
