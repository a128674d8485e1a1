#!/usr/bin/env bash
# test/catalog_fingerprint.sh DB — a fingerprint of the catalog the
# extension installs in DB, one sorted line per fact: the fingerprint of
# test/integration/upgrade.sh (member objects, columns with type, not-null
# and default, functions' md5(pg_get_functiondef), owners and ACLs,
# relations' ACLs and RLS flags, constraints, indexes) and besides: column
# order, policies, triggers, comments, view definitions, types, default
# privileges, schema ACL.  Two installs are the same catalog when their
# fingerprints are equal (diff).  Uses the running server (PGHOST/PGPORT).
#
# The ACLs of relations and columns are compared sorted only: the order of
# the entries of an ACL has no meaning (a privilege is held or not), and it
# follows the order of the GRANTs, which differs between a fresh install
# (each table and view grants next to its definition) and an installation
# updated from 0.10.1 (granted at the end, by privileges.sql).  Functions'
# ACLs are compared raw as well (rawacl): their order is the same both ways.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
db=${1:?usage: catalog_fingerprint.sh DB}
sc_psql -d "$db" -At <<'SQL'
SELECT x FROM (
    SELECT 'member ' || pg_describe_object(classid, objid, objsubid) AS x FROM pg_depend
    WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'status_checker')
    UNION ALL
    SELECT format('column %s.%s #%s %s %s %s', c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'status_checker' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('column-order %s: %s', c.relname, string_agg(a.attname, ',' ORDER BY a.attnum))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'status_checker'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    GROUP BY c.relname
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text || md5(pg_get_functiondef(p.oid)) || ' owner ' || p.proowner::regrole::text
           || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '-')
           || ' rawacl ' || coalesce(p.proacl::text, '-')
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'status_checker' AND p.prokind <> 'a'
    UNION ALL
    SELECT 'aggregate ' || p.oid::regprocedure::text || ' owner ' || p.proowner::regrole::text || ' acl ' || coalesce(p.proacl::text, '-')
    FROM pg_proc p WHERE p.pronamespace = 'status_checker'::regnamespace AND p.prokind = 'a'
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text || ' kind ' || c.relkind::text || ' owner ' || c.relowner::regrole::text
           || ' acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '-')
           || ' rls ' || c.relrowsecurity || c.relforcerowsecurity || ' options ' || coalesce(c.reloptions::text, '-')
    FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace
    UNION ALL
    SELECT format('column-acl %s.%s %s', c.relname, a.attname,
                  (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = 'status_checker'::regnamespace AND a.attacl IS NOT NULL
    UNION ALL
    SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'status_checker'::regnamespace
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relnamespace = 'status_checker'::regnamespace
    UNION ALL
    SELECT format('policy %s.%s %s %s roles %s using %s check %s', schemaname, tablename, policyname, permissive || ' ' || cmd,
                  roles::text, qual, with_check)
    FROM pg_policies WHERE schemaname = 'status_checker'
    UNION ALL
    SELECT 'trigger ' || tgrelid::regclass::text || ' ' || pg_get_triggerdef(t.oid) || ' enabled ' || tgenabled::text
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE NOT tgisinternal AND c.relnamespace = 'status_checker'::regnamespace
    UNION ALL
    SELECT 'view ' || c.oid::regclass::text || ' ' || replace(pg_get_viewdef(c.oid), E'\n', ' ')
    FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
    FROM pg_description d
    WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM pg_class WHERE relnamespace = 'status_checker'::regnamespace))
       OR (d.classoid = 'pg_proc'::regclass AND d.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'status_checker'::regnamespace))
       OR (d.classoid = 'pg_type'::regclass AND d.objoid IN (SELECT oid FROM pg_type WHERE typnamespace = 'status_checker'::regnamespace))
       OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = 'status_checker'::regnamespace)
       OR d.objoid IN (SELECT objid FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'status_checker'))
       OR (d.classoid = 'pg_extension'::regclass AND d.objoid = (SELECT oid FROM pg_extension WHERE extname = 'status_checker'))
    UNION ALL
    SELECT 'type ' || t.oid::regtype::text || ' ' || t.typtype::text || ' owner ' || t.typowner::regrole::text
           || ' acl ' || coalesce(t.typacl::text, '-')
           || coalesce(' labels ' || (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '')
           || coalesce(' domain ' || format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull || ' '
                       || coalesce(t.typdefault, '-'), '')
           || coalesce(' checks ' || (SELECT string_agg(pg_get_constraintdef(oid), ' ' ORDER BY conname) FROM pg_constraint WHERE contypid = t.oid), '')
    FROM pg_type t WHERE t.typnamespace = 'status_checker'::regnamespace AND t.typtype IN ('e', 'd', 'c', 'r', 'm')
    UNION ALL
    SELECT format('composite %s %s %s', t.oid::regtype, a.attnum, a.attname || ' ' || format_type(a.atttypid, a.atttypmod))
    FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
    WHERE t.typnamespace = 'status_checker'::regnamespace AND t.typtype = 'c' AND a.attnum > 0
    UNION ALL
    SELECT 'default-acl ' || coalesce(defaclrole::regrole::text, '-') || ' ' || coalesce(defaclnamespace::regnamespace::text, '-')
           || ' ' || defaclobjtype::text || ' ' || defaclacl::text
    FROM pg_default_acl
    UNION ALL
    SELECT 'schema ' || nspname || ' owner ' || nspowner::regrole::text || ' acl ' || coalesce(nspacl::text, '-')
    FROM pg_namespace WHERE nspname = 'status_checker'
    UNION ALL
    SELECT 'sequence ' || seqrelid::regclass::text || ' ' || format_type(seqtypid, NULL) || ' ' || seqstart || ' ' || seqincrement
           || ' ' || seqmax || ' ' || seqmin || ' ' || seqcache || ' ' || seqcycle
    FROM pg_sequence WHERE seqrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'status_checker'::regnamespace)
    UNION ALL
    SELECT 'role ' || rolname || ' ' || rolsuper || rolinherit || rolcreaterole || rolcreatedb || rolcanlogin || rolbypassrls
    FROM pg_roles WHERE rolname LIKE 'status_checker%'
    UNION ALL
    SELECT 'membership ' || roleid::regrole::text || ' -> ' || member::regrole::text || ' admin ' || admin_option
    FROM pg_auth_members WHERE roleid::regrole::text LIKE 'status_checker%' OR member::regrole::text LIKE 'status_checker%'
    UNION ALL
    -- the tables pg_dump dumps and their conditions, as a set (an update
    -- that creates tables appends them: the order has no meaning)
    SELECT 'extension ' || extname || ' ' || extversion || ' config ' ||
           coalesce((SELECT string_agg(c.t::regclass::text || ' ' || quote_literal(c.w), ', ' ORDER BY c.t::regclass::text)
                     FROM unnest(extconfig, extcondition) c(t, w)), '-')
    FROM pg_extension WHERE extname = 'status_checker'
    UNION ALL
    SELECT 'rows ' || c.oid::regclass::text || ' ' || (xpath('/row/c/text()', query_to_xml(
               format('SELECT count(*) || '' '' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), ''-'') AS c FROM %s t', c.oid::regclass),
               false, true, '')))[1]::text
    FROM pg_class c WHERE c.relnamespace = 'status_checker'::regnamespace AND c.relkind = 'r'
) s
ORDER BY x;
SQL
