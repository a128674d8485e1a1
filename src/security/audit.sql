-- src/security/audit.sql — the tamper-evident audit log.
--
-- What is recorded:
--   * every administrative change: a row inserted, updated or deleted in a
--     tenant's configuration tables (tenant, users, groups, sites, contacts,
--     forms, requests, rules, channels, templates, managers, link keys,
--     revoked tokens), by statement-level triggers into audit_log — who
--     (database user, and the application user the session acts for:
--     set_app_user or a mapped login), when, which table, the row's key and the
--     names of the columns that changed.  Values are not copied: the log
--     must not become a second, unencrypted copy of personal data;
--   * every report: the report table is append-only and is itself the
--     record.
--
-- How it is chained: seal_audit_log() (pg_cron, every minute; also called
-- by audit_chain_head) appends new records to one hash chain per tenant,
-- audit_chain: entry n holds the SHA-256 of the record's canonical content
-- and chain_hash(n) = SHA-256(chain_hash(n-1) || entry_hash(n)), starting
-- from a per-tenant genesis hash.  Sealing afterwards, rather than in the
-- writer's transaction, keeps the report path free of a per-tenant hot
-- row: in a disaster thousands of reports a second would otherwise queue
-- on one chain head.  Records are found by id past a mark; ids that were
-- not yet visible (a transaction still running) are kept as gaps and
-- sealed when they appear, or forgotten an hour after no transaction can
-- still commit them (aborted).
--
-- verify_audit_log(tenant) recomputes every entry from its record and
-- every link, checks the head, and names the first broken entry;
-- audit_chain_head(tenant) exports the head, signed with the installation
-- key, for the customer to keep outside the database and to check later
-- with verify_audit_log(tenant, head).  prune_audit_log() drops entries
-- older than a year behind a signed checkpoint, from which verification
-- starts.

CREATE TABLE status_checker.audit_log (
    tenant_id   bigint NOT NULL,        -- no foreign key: the log outlives the rows it describes
    audit_id    bigint GENERATED ALWAYS AS IDENTITY,
    at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    actor       text NOT NULL,          -- database user (session user)
    app_user    text,                   -- application user named by a gateway, if any
    action      text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    object      text NOT NULL,          -- table name
    detail      jsonb NOT NULL,         -- {"key": {...}} and, for updates, {"changed": [columns]}
    PRIMARY KEY (tenant_id, audit_id)
);
-- ids grow with time: a BRIN index lets the sealer find new records at
-- almost no cost per insert
CREATE INDEX audit_log_id_brin ON status_checker.audit_log USING brin (audit_id);
COMMENT ON TABLE status_checker.audit_log IS
'Every administrative change of a tenant''s configuration: who, when, which table and row, which columns; chained by seal_audit_log';
ALTER TABLE status_checker.audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_log
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_log TO status_checker_admin, status_checker_operator;

-- the same for reports (the report table is the record of reports)
CREATE INDEX report_id_brin ON status_checker.report USING brin (report_id);

CREATE TABLE status_checker.audit_chain (
    tenant_id   bigint NOT NULL,
    entry_no    bigint NOT NULL,
    source      text NOT NULL CHECK (source IN ('change', 'report')),
    source_id   bigint NOT NULL,        -- audit_log.audit_id or report.report_id
    entry_hash  bytea NOT NULL,
    chain_hash  bytea NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, entry_no),
    UNIQUE (tenant_id, source, source_id)
);
COMMENT ON TABLE status_checker.audit_chain IS
'Per tenant, the hash chain over its audit records and reports: entry n''s chain_hash = SHA-256(chain_hash of n-1 || entry_hash)';
ALTER TABLE status_checker.audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_chain
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_chain TO status_checker_admin, status_checker_operator;

CREATE TABLE status_checker.audit_head (
    tenant_id   bigint PRIMARY KEY,
    entry_no    bigint NOT NULL,
    chain_hash  bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE status_checker.audit_head IS
'Per tenant, the last entry of its audit chain (a shortened chain no longer matches it)';
ALTER TABLE status_checker.audit_head ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_head FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_head
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_head TO status_checker_admin, status_checker_operator;

CREATE TABLE status_checker.audit_sealer (
    source      text PRIMARY KEY CHECK (source IN ('change', 'report')),
    mark        bigint NOT NULL DEFAULT 0,   -- every id up to here is chained, or listed in audit_gap
    sealed_at   timestamptz
);
COMMENT ON TABLE status_checker.audit_sealer IS
'Where seal_audit_log has got to in each kind of record (its row locks also keep two sealers apart)';

CREATE TABLE status_checker.audit_gap (
    source      text NOT NULL CHECK (source IN ('change', 'report')),
    id          bigint NOT NULL,
    noted_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    noted_xid   xid8 NOT NULL,
    PRIMARY KEY (source, id)
);
COMMENT ON TABLE status_checker.audit_gap IS
'Record ids below the sealer''s mark not yet seen (their transaction was still running, or aborted): sealed when they appear';

CREATE TABLE status_checker.audit_checkpoint (
    tenant_id   bigint NOT NULL,
    entry_no    bigint NOT NULL,
    chain_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    report_max  bigint,                 -- the highest report id among the removed entries
    key_id      text NOT NULL,
    signature   text NOT NULL,          -- Ed25519 over _audit_checkpoint_text(...)
    PRIMARY KEY (tenant_id, entry_no)
);
COMMENT ON TABLE status_checker.audit_checkpoint IS
'Signed checkpoints left by prune_audit_log: the chain up to entry_no was removed by retention and ended in chain_hash';
ALTER TABLE status_checker.audit_checkpoint ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.audit_checkpoint FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.audit_checkpoint
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.audit_checkpoint TO status_checker_admin, status_checker_operator;

-- ------------------------------------------------------------ recording

-- Statement-level triggers with transition tables: one INSERT into the log
-- per statement, however many rows it touched (import_sites).  The trigger
-- function, _audit_changes, is in src/security/audit_record.sql.

DO $$
DECLARE
    t record;
    op text;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('tenant', ARRAY['tenant_id']),
        ('app_user', ARRAY['tenant_id', 'user_id']),
        ('site_group', ARRAY['tenant_id', 'group_id']),
        ('site', ARRAY['tenant_id', 'site_id']),
        ('site_contact', ARRAY['tenant_id', 'contact_id']),
        ('form', ARRAY['tenant_id', 'form_id']),
        ('request', ARRAY['tenant_id', 'request_id']),
        ('request_token_revoked', ARRAY['tenant_id', 'request_id', 'site_id']),
        ('trigger_rule', ARRAY['tenant_id', 'rule_id']),
        ('channel', ARRAY['tenant_id', 'channel_id']),
        ('message_template', ARRAY['tenant_id', 'purpose', 'lang']),
        ('site_group_manager', ARRAY['tenant_id', 'group_id', 'user_id']),
        ('link_key', ARRAY['tenant_id'])) v(tab, keys)
    LOOP
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            EXECUTE format('CREATE TRIGGER audit_%2$s AFTER %3$s ON status_checker.%1$I '
                           'REFERENCING %4$s FOR EACH STATEMENT '
                           'EXECUTE FUNCTION status_checker._audit_changes(%5$s)',
                           t.tab, op, upper(op),
                           CASE op WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                                   WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                                   ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END,
                           (SELECT string_agg(quote_literal(k), ', ') FROM unnest(t.keys) k));
        END LOOP;
    END LOOP;
END
$$;

-- ------------------------------------------------------------ hashing

-- The canonical content of a record is a JSON array (jsonb's text form is
-- deterministic); times are epoch seconds, independent of TimeZone and
-- DateStyle.  Documented in docs/security.md so that anyone can recompute it.
CREATE FUNCTION status_checker._change_entry_hash(a status_checker.audit_log) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        'change', a.tenant_id, a.audit_id, extract(epoch FROM a.at), a.actor, a.app_user,
        a.action, a.object, a.detail)::text, 'UTF8'))
$$;

CREATE FUNCTION status_checker._report_entry_hash(r status_checker.report) RETURNS bytea
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array(
        'report', r.tenant_id, r.report_id, r.request_id, r.site_id, r.level, r.previous_level,
        r.color, r.icon, r.late, r.via, r.submitted_by, extract(epoch FROM r.submitted_at), r.answers)::text, 'UTF8'))
$$;

CREATE FUNCTION status_checker._audit_genesis(tenant_id bigint) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to('status_checker audit chain v1 tenant ' || tenant_id, 'UTF8'))
$$;

CREATE FUNCTION status_checker._chain_step(state bytea, seed bytea, entry_hash bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE PARALLEL SAFE SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_chain_step';
-- _chain(seed, entry_hash) OVER (ORDER BY entry_no): the running chain hash
CREATE AGGREGATE status_checker._chain(seed bytea, entry_hash bytea) (
    SFUNC = status_checker._chain_step,
    STYPE = bytea
);

-- ------------------------------------------------------------ sealing

-- the records of one kind past the mark (at most lim), and those listed as gaps
CREATE FUNCTION status_checker._audit_candidates(p_source text, p_mark bigint, p_lim integer)
    RETURNS TABLE (tenant_id bigint, id bigint, entry_hash bytea, past_mark boolean)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_source = 'change' THEN
        RETURN QUERY
        (SELECT a.tenant_id, a.audit_id, status_checker._change_entry_hash(a), true
         FROM status_checker.audit_log a WHERE a.audit_id > p_mark ORDER BY a.audit_id LIMIT p_lim)
        UNION ALL
        SELECT a.tenant_id, a.audit_id, status_checker._change_entry_hash(a), false
        FROM status_checker.audit_log a
        WHERE a.audit_id = ANY (ARRAY(SELECT g.id FROM status_checker.audit_gap g WHERE g.source = 'change'));
    ELSE
        RETURN QUERY
        (SELECT r.tenant_id, r.report_id, status_checker._report_entry_hash(r), true
         FROM status_checker.report r WHERE r.report_id > p_mark ORDER BY r.report_id LIMIT p_lim)
        UNION ALL
        SELECT r.tenant_id, r.report_id, status_checker._report_entry_hash(r), false
        FROM status_checker.report r
        WHERE r.report_id = ANY (ARRAY(SELECT g.id FROM status_checker.audit_gap g WHERE g.source = 'report'));
    END IF;
END
$$;

CREATE FUNCTION status_checker.seal_audit_log(max_entries integer DEFAULT 100000)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src text;
    v_mark bigint;
    n bigint;
    total bigint := 0;
BEGIN
    PERFORM status_checker._no_nulls('seal_audit_log', ARRAY['max_entries'], ARRAY[seal_audit_log.max_entries::text]);
    IF max_entries < 1 THEN
        RAISE EXCEPTION 'max_entries must be a positive number, not %', max_entries
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO status_checker.audit_sealer (source) VALUES ('change'), ('report') ON CONFLICT DO NOTHING;
    -- one sealer at a time (pg_cron and audit_chain_head may overlap)
    PERFORM 1 FROM status_checker.audit_sealer FOR UPDATE;
    -- gaps no transaction can still fill (it aborted): forget them
    DELETE FROM status_checker.audit_gap g
    WHERE g.noted_at < pg_catalog.now() - interval '1 hour'
      AND g.noted_xid < pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot());
    FOR src IN SELECT s.source FROM status_checker.audit_sealer s ORDER BY s.source LOOP
        SELECT s.mark INTO v_mark FROM status_checker.audit_sealer s WHERE s.source = src;
        -- one statement, so that the records chained, the new gaps and the
        -- new mark all come from one snapshot
        WITH c AS MATERIALIZED (
            SELECT * FROM status_checker._audit_candidates(src, v_mark, max_entries)
        ), numbered AS (
            SELECT c.tenant_id, c.id, c.entry_hash,
                   coalesce(h.entry_no, 0) + row_number() OVER w AS entry_no,
                   status_checker._chain(coalesce(h.chain_hash, status_checker._audit_genesis(c.tenant_id)), c.entry_hash) OVER w AS chain_hash
            FROM c LEFT JOIN status_checker.audit_head h ON h.tenant_id = c.tenant_id
            WINDOW w AS (PARTITION BY c.tenant_id ORDER BY c.id)
        ), ins AS (
            INSERT INTO status_checker.audit_chain (tenant_id, entry_no, source, source_id, entry_hash, chain_hash)
            SELECT x.tenant_id, x.entry_no, src, x.id, x.entry_hash, x.chain_hash FROM numbered x
            RETURNING audit_chain.tenant_id, audit_chain.entry_no, audit_chain.chain_hash
        ), head AS (
            INSERT INTO status_checker.audit_head AS h (tenant_id, entry_no, chain_hash)
            SELECT DISTINCT ON (i.tenant_id) i.tenant_id, i.entry_no, i.chain_hash FROM ins i
            ORDER BY i.tenant_id, i.entry_no DESC
            ON CONFLICT (tenant_id) DO UPDATE
            SET entry_no = excluded.entry_no, chain_hash = excluded.chain_hash, updated_at = pg_catalog.now()
        ), newmark AS (
            SELECT max(c.id) AS m FROM c WHERE c.past_mark
        ), gaps_new AS (
            INSERT INTO status_checker.audit_gap (source, id, noted_xid)
            SELECT src, g, pg_catalog.pg_current_xact_id()
            FROM newmark, generate_series(v_mark + 1, newmark.m - 1) g
            WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.id = g)
        ), gaps_done AS (
            DELETE FROM status_checker.audit_gap x USING c
            WHERE x.source = src AND x.id = c.id AND NOT c.past_mark
        ), moved AS (
            UPDATE status_checker.audit_sealer s
            SET mark = coalesce(newmark.m, s.mark), sealed_at = pg_catalog.now()
            FROM newmark WHERE s.source = src
        )
        SELECT count(*) INTO n FROM ins;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION status_checker.seal_audit_log(integer) IS
'Append the audit records and reports not yet chained to their tenants'' hash chains (at most max_entries of each kind per call); '
'run every minute by schedule_jobs. Returns the number of entries chained';
GRANT EXECUTE ON FUNCTION status_checker.seal_audit_log(integer) TO status_checker_api, status_checker_operator;

-- ------------------------------------------------------------ exporting and checking

CREATE FUNCTION status_checker._audit_head_text(tenant_id bigint, entry_no bigint, chain_hash bytea, at timestamptz)
    RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT format('status_checker audit head v1|tenant=%s|entry=%s|hash=%s|at=%s',
                  tenant_id, entry_no, encode(chain_hash, 'hex'), extract(epoch FROM at))
$$;

CREATE FUNCTION status_checker._audit_checkpoint_text(cp status_checker.audit_checkpoint)
    RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT format('status_checker audit checkpoint v1|tenant=%s|entry=%s|hash=%s|report_max=%s',
                  cp.tenant_id, cp.entry_no, encode(cp.chain_hash, 'hex'), coalesce(cp.report_max, 0))
$$;

CREATE FUNCTION status_checker.audit_chain_head(tenant_id bigint)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    h status_checker.audit_head;
    v_at timestamptz := pg_catalog.now();
    msg text;
BEGIN
    PERFORM status_checker._no_nulls('audit_chain_head', ARRAY['tenant_id'], ARRAY[audit_chain_head.tenant_id::text]);
    PERFORM status_checker._require_tenant(audit_chain_head.tenant_id);
    PERFORM status_checker.seal_audit_log();
    SELECT * INTO h FROM status_checker.audit_head x WHERE x.tenant_id = audit_chain_head.tenant_id;
    IF NOT FOUND THEN
        h := ROW(audit_chain_head.tenant_id, 0, status_checker._audit_genesis(audit_chain_head.tenant_id), v_at);
    END IF;
    msg := status_checker._audit_head_text(h.tenant_id, h.entry_no, h.chain_hash, v_at);
    RETURN jsonb_build_object('tenant_id', h.tenant_id, 'entry', h.entry_no,
                              'hash', encode(h.chain_hash, 'hex'), 'at', extract(epoch FROM v_at),
                              'at_text', status_checker._utc_text(v_at),
                              'signed', msg)
           || status_checker._sign(msg);
END
$$;
COMMENT ON FUNCTION status_checker.audit_chain_head(bigint) IS
'Seal what is pending and return the tenant''s audit chain head (last entry number and hash), signed with the installation key: '
'keep it outside the database and check later with verify_audit_log(tenant_id, head)';
GRANT EXECUTE ON FUNCTION status_checker.audit_chain_head(bigint) TO status_checker_api, status_checker_admin, status_checker_operator;

-- Every problem of a tenant's chain, by entry number (NULL: a record that
-- is not in the chain at all).
CREATE FUNCTION status_checker._audit_problems(p_tenant bigint)
    RETURNS TABLE (entry_no bigint, reason text, entries bigint)
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cp status_checker.audit_checkpoint;
    base_no bigint := 0;
    base_hash bytea := status_checker._audit_genesis(p_tenant);
    h status_checker.audit_head;
    last_no bigint;
    last_hash bytea;
    n bigint;
BEGIN
    SELECT * INTO cp FROM status_checker.audit_checkpoint c WHERE c.tenant_id = p_tenant ORDER BY c.entry_no DESC LIMIT 1;
    IF FOUND THEN
        base_no := cp.entry_no;
        base_hash := cp.chain_hash;
        IF NOT status_checker._signature_ok(cp.key_id, status_checker._audit_checkpoint_text(cp), cp.signature) THEN
            RETURN QUERY SELECT cp.entry_no, format('the checkpoint at entry %s does not carry a valid signature of this installation', cp.entry_no), 0::bigint;
        END IF;
    END IF;

    SELECT count(*), max(c.entry_no) INTO n, last_no FROM status_checker.audit_chain c
    WHERE c.tenant_id = p_tenant AND c.entry_no > base_no;

    RETURN QUERY
    WITH c AS (
        SELECT c.*, base_no + row_number() OVER (ORDER BY c.entry_no) AS expected,
               status_checker._chain(base_hash, c.entry_hash) OVER (ORDER BY c.entry_no) AS recomputed
        FROM status_checker.audit_chain c WHERE c.tenant_id = p_tenant AND c.entry_no > base_no
    ), checked AS (
        SELECT c.entry_no, c.expected, c.source, c.source_id, c.chain_hash, c.recomputed, c.entry_hash,
               CASE c.source
                   WHEN 'change' THEN (SELECT status_checker._change_entry_hash(a) FROM status_checker.audit_log a
                                       WHERE a.tenant_id = p_tenant AND a.audit_id = c.source_id)
                   ELSE (SELECT status_checker._report_entry_hash(r) FROM status_checker.report r
                         WHERE r.tenant_id = p_tenant AND r.report_id = c.source_id)
               END AS actual
        FROM c
    )
    SELECT x.expected,
           CASE
               WHEN x.entry_no <> x.expected THEN format('entry %s is missing (the next entry is %s): entries were deleted', x.expected, x.entry_no)
               WHEN x.actual IS NULL THEN format('entry %s: %s %s was deleted', x.entry_no,
                                                 CASE x.source WHEN 'change' THEN 'audit record' ELSE 'report' END, x.source_id)
               WHEN x.actual <> x.entry_hash THEN format('entry %s: %s %s was altered', x.entry_no,
                                                         CASE x.source WHEN 'change' THEN 'audit record' ELSE 'report' END, x.source_id)
               ELSE format('entry %s does not follow from the entry before it: the chain was edited or reordered', x.entry_no)
           END,
           n
    FROM checked x
    WHERE x.entry_no <> x.expected OR x.actual IS NULL OR x.actual <> x.entry_hash OR x.recomputed <> x.chain_hash;

    -- the end of the chain against its head
    SELECT * INTO h FROM status_checker.audit_head x WHERE x.tenant_id = p_tenant;
    SELECT c.chain_hash INTO last_hash FROM status_checker.audit_chain c WHERE c.tenant_id = p_tenant AND c.entry_no = last_no;
    IF h.tenant_id IS NOT NULL AND coalesce(last_no, base_no) <> h.entry_no THEN
        RETURN QUERY SELECT least(coalesce(last_no, base_no), h.entry_no) + 1,
            format('the chain ends at entry %s but its head is at entry %s: entries were removed from the end', coalesce(last_no, base_no), h.entry_no), n;
    ELSIF h.tenant_id IS NOT NULL AND coalesce(last_hash, base_hash) <> h.chain_hash THEN
        RETURN QUERY SELECT h.entry_no, format('the last entry %s does not match the chain head', h.entry_no), n;
    ELSIF h.tenant_id IS NULL AND last_no IS NOT NULL THEN
        RETURN QUERY SELECT base_no + 1, 'the chain has entries but no head: the head was deleted'::text, n;
    END IF;

    -- records that should be chained but are not: added to the log afterwards
    RETURN QUERY
    SELECT NULL::bigint, format('audit record %s is not in the chain: it was added afterwards', a.audit_id), n
    FROM status_checker.audit_log a
    WHERE a.tenant_id = p_tenant
      AND a.audit_id <= (SELECT s.mark FROM status_checker.audit_sealer s WHERE s.source = 'change')
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_chain c
                      WHERE c.tenant_id = p_tenant AND c.source = 'change' AND c.source_id = a.audit_id)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_gap g WHERE g.source = 'change' AND g.id = a.audit_id);
    RETURN QUERY
    SELECT NULL::bigint, format('report %s is not in the chain: it was added afterwards', r.report_id), n
    FROM status_checker.report r
    WHERE r.tenant_id = p_tenant
      AND r.report_id <= (SELECT s.mark FROM status_checker.audit_sealer s WHERE s.source = 'report')
      AND r.report_id > coalesce((SELECT max(c.report_max) FROM status_checker.audit_checkpoint c
                                  WHERE c.tenant_id = p_tenant), 0)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_chain c
                      WHERE c.tenant_id = p_tenant AND c.source = 'report' AND c.source_id = r.report_id)
      AND NOT EXISTS (SELECT 1 FROM status_checker.audit_gap g WHERE g.source = 'report' AND g.id = r.report_id);
END
$$;

CREATE FUNCTION status_checker.verify_audit_log(tenant_id bigint)
    RETURNS TABLE (ok boolean, entries bigint, first_bad_entry bigint, reason text)
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p record;
    v_entries bigint;
BEGIN
    PERFORM status_checker._no_nulls('verify_audit_log', ARRAY['tenant_id'], ARRAY[verify_audit_log.tenant_id::text]);
    PERFORM status_checker._require_tenant(verify_audit_log.tenant_id);
    SELECT x.entry_no, x.reason INTO p FROM status_checker._audit_problems(verify_audit_log.tenant_id) x
    ORDER BY x.entry_no NULLS LAST LIMIT 1;
    SELECT count(*) INTO v_entries FROM status_checker.audit_chain c WHERE c.tenant_id = verify_audit_log.tenant_id;
    IF p.reason IS NULL THEN
        RETURN QUERY SELECT true, v_entries, NULL::bigint, NULL::text;
    ELSE
        RETURN QUERY SELECT false, v_entries, p.entry_no, p.reason;
    END IF;
END
$$;
COMMENT ON FUNCTION status_checker.verify_audit_log(bigint) IS
'Check every entry of a tenant''s audit chain against its record and the entry before it, the chain''s end against its head, '
'and that no record was added outside the chain; names the first broken entry';
GRANT EXECUTE ON FUNCTION status_checker.verify_audit_log(bigint) TO status_checker_api, status_checker_admin, status_checker_operator;

CREATE FUNCTION status_checker.verify_audit_log(tenant_id bigint, head jsonb)
    RETURNS TABLE (ok boolean, entries bigint, first_bad_entry bigint, reason text)
    LANGUAGE plpgsql STABLE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_entry bigint;
    v_hash bytea;
    v_at timestamptz;
    v_stored bytea;
    cp status_checker.audit_checkpoint;
    r record;
BEGIN
    PERFORM status_checker._no_nulls('verify_audit_log', ARRAY['tenant_id', 'head'], ARRAY[verify_audit_log.tenant_id::text, verify_audit_log.head::text]);
    -- every field parsed here, so that a malformed head gets the one error below
    BEGIN
        v_entry := (head ->> 'entry')::bigint;
        v_hash := decode(head ->> 'hash', 'hex');
        v_at := to_timestamp((head ->> 'at')::double precision);
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value OR numeric_value_out_of_range
                   OR datetime_field_overflow THEN
        v_entry := NULL;
    END;
    IF v_entry IS NULL OR v_hash IS NULL OR v_at IS NULL OR (head ->> 'tenant_id') IS DISTINCT FROM verify_audit_log.tenant_id::text
       OR NOT coalesce(status_checker._signature_ok(head ->> 'key_id', head ->> 'signed', head ->> 'signature'), false)
       OR head ->> 'signed' IS DISTINCT FROM status_checker._audit_head_text(verify_audit_log.tenant_id, v_entry, v_hash, v_at) THEN
        RAISE EXCEPTION 'this is not a chain head of tenant % signed by this installation', verify_audit_log.tenant_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass the jsonb that audit_chain_head returned, unchanged.';
    END IF;
    SELECT * INTO r FROM status_checker.verify_audit_log(verify_audit_log.tenant_id);
    IF NOT r.ok THEN
        RETURN QUERY SELECT r.ok, r.entries, r.first_bad_entry, r.reason;
        RETURN;
    END IF;
    SELECT c.chain_hash INTO v_stored FROM status_checker.audit_chain c
    WHERE c.tenant_id = verify_audit_log.tenant_id AND c.entry_no = v_entry;
    IF NOT FOUND THEN
        SELECT * INTO cp FROM status_checker.audit_checkpoint c
        WHERE c.tenant_id = verify_audit_log.tenant_id AND c.entry_no >= v_entry ORDER BY c.entry_no LIMIT 1;
        IF v_entry = 0 THEN
            v_stored := status_checker._audit_genesis(verify_audit_log.tenant_id);
        ELSIF cp.entry_no = v_entry THEN
            v_stored := cp.chain_hash;
        ELSIF cp.entry_no IS NOT NULL THEN
            -- pruned by retention: the signed checkpoint after it is what remains
            RETURN QUERY SELECT true, r.entries, NULL::bigint,
                format('entry %s was removed by retention; the signed checkpoint at entry %s stands for it', v_entry, cp.entry_no);
            RETURN;
        ELSE
            RETURN QUERY SELECT false, r.entries, v_entry,
                format('the chain no longer has entry %s that your head names: the log was shortened and rebuilt', v_entry);
            RETURN;
        END IF;
    END IF;
    IF v_stored <> v_hash THEN
        RETURN QUERY SELECT false, r.entries, v_entry,
            format('entry %s no longer has the hash your head names: the log was rewritten', v_entry);
        RETURN;
    END IF;
    RETURN QUERY SELECT true, r.entries, NULL::bigint, NULL::text;
END
$$;
COMMENT ON FUNCTION status_checker.verify_audit_log(bigint, jsonb) IS
'verify_audit_log(tenant_id), and also that the chain still holds the head you kept from audit_chain_head: '
'proves the log was not rewritten since';
GRANT EXECUTE ON FUNCTION status_checker.verify_audit_log(bigint, jsonb) TO status_checker_api, status_checker_admin, status_checker_operator;

CREATE FUNCTION status_checker.prune_audit_log(keep interval DEFAULT '1 year')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    cp status_checker.audit_checkpoint;
    sig jsonb;
    n bigint;
    total bigint := 0;
BEGIN
    PERFORM status_checker._no_nulls('prune_audit_log', ARRAY['keep'], ARRAY[prune_audit_log.keep::text]);
    IF keep < interval '1 day' THEN
        RAISE EXCEPTION 'the audit log is kept at least one day, not %', keep
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The promise is one year: prune_audit_log() with no argument.';
    END IF;
    PERFORM status_checker.seal_audit_log();   -- also takes the sealer's lock
    FOR t IN
        SELECT c.tenant_id, max(c.entry_no) AS entry_no FROM status_checker.audit_chain c
        WHERE c.sealed_at < pg_catalog.now() - keep
        GROUP BY c.tenant_id
    LOOP
        cp := ROW(t.tenant_id, t.entry_no,
                  (SELECT c.chain_hash FROM status_checker.audit_chain c WHERE c.tenant_id = t.tenant_id AND c.entry_no = t.entry_no),
                  pg_catalog.now(),
                  (SELECT max(x.source_id) FROM status_checker.audit_chain x
                   WHERE x.tenant_id = t.tenant_id AND x.entry_no <= t.entry_no AND x.source = 'report'),
                  NULL, NULL);
        sig := status_checker._sign(status_checker._audit_checkpoint_text(cp));
        cp.key_id := sig ->> 'key_id';
        cp.signature := sig ->> 'signature';
        INSERT INTO status_checker.audit_checkpoint SELECT cp.*;
        DELETE FROM status_checker.audit_log a USING status_checker.audit_chain c
        WHERE c.tenant_id = t.tenant_id AND c.entry_no <= t.entry_no AND c.source = 'change'
          AND a.tenant_id = c.tenant_id AND a.audit_id = c.source_id;
        DELETE FROM status_checker.audit_chain c WHERE c.tenant_id = t.tenant_id AND c.entry_no <= t.entry_no;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION status_checker.prune_audit_log(interval) IS
'Retention: remove audit chain entries (and the administrative records they chain) sealed longer ago than keep (one year), '
'leaving a checkpoint signed with the installation key from which verify_audit_log starts; reports themselves are kept. '
'Run daily by schedule_jobs. Returns the number of entries removed';
GRANT EXECUTE ON FUNCTION status_checker.prune_audit_log(interval) TO status_checker_api, status_checker_operator;
