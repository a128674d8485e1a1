-- Inventory: the rules of architecture.md and style.md, checked on the
-- catalog, so that a new object that breaks them fails the build.
BEGIN;
SELECT plan(9);

SELECT has_schema('status_checker');
SELECT has_type('status_checker', 'shindo', 'the shindo type exists');

-- every public object has a comment
SELECT is_empty($$
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'status_checker' AND c.relkind IN ('r', 'v') AND c.relname NOT LIKE '\_%'
      AND obj_description(c.oid, 'pg_class') IS NULL
$$, 'every public table and view has COMMENT ON');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'status_checker' AND p.proname NOT LIKE '\_%'
      AND obj_description(p.oid, 'pg_proc') IS NULL
$$, 'every public function has COMMENT ON');

-- tenant first: tenant_id leads the primary key of every tenant table
SELECT is_empty($$
    SELECT c.conrelid::regclass::text FROM pg_constraint c
    JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
    WHERE n.nspname = 'status_checker' AND c.contype = 'p'
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attname = 'tenant_id')
      AND (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) <> 'tenant_id'
$$, 'tenant_id is the first column of every tenant table''s primary key');

-- ... and every foreign key between tenant tables includes tenant_id
SELECT is_empty($$
    SELECT c.conname FROM pg_constraint c
    JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
    WHERE n.nspname = 'status_checker' AND c.contype = 'f'
      AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.confrelid AND a.attname = 'tenant_id')
      AND NOT EXISTS (SELECT 1 FROM unnest(c.conkey) k JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k
                      WHERE a.attname = 'tenant_id')
$$, 'every foreign key to a tenant table includes tenant_id');

-- views for other roles are security_invoker
SELECT is_empty($$
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'status_checker' AND c.relkind = 'v'
      AND NOT coalesce(c.reloptions @> ARRAY['security_invoker=true'], false)
$$, 'every view is security_invoker');

-- functions pin their search_path or are plain C/SQL without lookups
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_language l ON l.oid = p.prolang
    WHERE n.nspname = 'status_checker' AND l.lanname = 'plpgsql'
      -- a procedure that commits cannot have SET options (it qualifies every name instead)
      AND p.prokind <> 'p'
      -- pg_temp last; the extension's own schema may come after pg_catalog
      -- where a function uses the shindo operators
      AND NOT coalesce(p.proconfig::text[] && ARRAY['search_path=pg_catalog, pg_temp',
                                                    'search_path=pg_catalog, status_checker, pg_temp'], false)
$$, 'every PL/pgSQL function pins search_path');

-- no security definer function without a pinned search_path
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'status_checker' AND p.prosecdef AND p.proconfig IS NULL
$$, 'SECURITY DEFINER functions pin search_path');

SELECT * FROM finish();
ROLLBACK;
