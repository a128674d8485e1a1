-- Security (0.4.0): the audit log and its hash chain (tampered with in
-- every way we can think of), signed heads and checkpoints, the
-- installation's signing key, the accounts rule, and tenant deletion with
-- its certificate.
BEGIN;
\ir fixtures.psql
SELECT plan(91);

-- ------------------------------------------------------------ recording

SELECT is((SELECT count(*)::int FROM audit_log WHERE tenant_id = :ta AND object = 'tenant' AND action = 'insert'), 1,
          'creating a tenant is recorded');
SELECT is((SELECT count(*)::int FROM audit_log WHERE tenant_id = :ta AND object = 'site' AND action = 'insert'), 3,
          'an import of three sites writes one record per site');
SELECT is((SELECT detail FROM audit_log WHERE tenant_id = :ta AND object = 'app_user' AND action = 'insert'),
          jsonb_build_object('key', jsonb_build_object('tenant_id', :ta, 'user_id', (SELECT user_id FROM app_user WHERE tenant_id = :ta))),
          'a record names the row by its key');
SELECT is((SELECT actor FROM audit_log WHERE tenant_id = :ta ORDER BY audit_id LIMIT 1), session_user::text,
          'a record names the database user');

SELECT add_user(:ta, 'yamada', 'yamada@a.example', 'admin');
-- a gateway acting for yamada
SELECT set_app_user(:ta, 'yamada') AS grp \gset
SET LOCAL ROLE :grp;
SELECT add_user(:ta, 'viewer_a', 'viewer@a.example', 'viewer') AS ua \gset
SELECT set_user_role(:ta, 'viewer_a', 'manager');
RESET ROLE;
SELECT reset_app_user();
SELECT is((SELECT app_user FROM audit_log WHERE tenant_id = :ta AND object = 'app_user' ORDER BY audit_id DESC LIMIT 1),
          'yamada', 'a record names the application user a gateway acted for');
SELECT is((SELECT detail -> 'changed' FROM audit_log WHERE tenant_id = :ta AND object = 'app_user' AND action = 'update'),
          '["role"]'::jsonb, 'an update names the columns that changed');
SELECT set_user_role(:ta, 'viewer_a', 'manager');
SELECT is((SELECT count(*)::int FROM audit_log WHERE tenant_id = :ta AND object = 'app_user' AND action = 'update'), 1,
          'an update that changes nothing is not recorded');
SELECT is((SELECT count(*)::int FROM audit_log WHERE detail::text LIKE '%a01@a.example%'), 0,
          'no record copies a value (here: a contact''s address)');

-- ------------------------------------------------------------ sealing and verifying

SELECT submit_report_for(:ra, 'A01', :'ok_answers') AS r1 \gset
SELECT submit_report_for(:ra, 'A02', :'ok_answers') AS r2 \gset
SELECT submit_report_for(:rb, 'B01', :'ok_answers') AS r3 \gset
SELECT cmp_ok(seal_audit_log(), '>=', 3::bigint, 'seal_audit_log chains the pending records and reports');
SELECT is(seal_audit_log(), 0::bigint, 'sealing again finds nothing new');
SELECT is((SELECT count(*)::int FROM audit_chain WHERE tenant_id = :ta AND source = 'report'), 2,
          'each tenant''s chain holds its own reports');
SELECT is((SELECT array_agg(entry_no ORDER BY entry_no) = array_agg(g ORDER BY g)
           FROM (SELECT entry_no, row_number() OVER (ORDER BY entry_no) AS g FROM audit_chain WHERE tenant_id = :ta) x),
          true, 'entries are numbered 1, 2, 3, … per tenant');
SELECT results_eq($$SELECT ok, first_bad_entry, reason FROM verify_audit_log($$ || :ta || $$)$$,
                  $$VALUES (true, NULL::bigint, NULL::text)$$, 'an untouched chain verifies');
SELECT is((SELECT entries FROM verify_audit_log(:ta)), (SELECT count(*) FROM audit_chain WHERE tenant_id = :ta),
          'verification counts the entries it checked');
SELECT is((SELECT ok FROM verify_audit_log(:tb)), true, 'so does the other tenant''s');

SELECT audit_chain_head(:ta) AS head \gset
SELECT is((:'head'::jsonb ->> 'entry')::bigint, (SELECT entry_no FROM audit_head WHERE tenant_id = :ta),
          'audit_chain_head names the last entry');
SELECT is(:'head'::jsonb ->> 'hash', (SELECT encode(chain_hash, 'hex') FROM audit_head WHERE tenant_id = :ta),
          'and its hash');
SELECT ok(_signature_ok(:'head'::jsonb ->> 'key_id', :'head'::jsonb ->> 'signed', :'head'::jsonb ->> 'signature'),
          'the head is signed with the installation key');
SELECT is((SELECT ok FROM verify_audit_log(:ta, :'head')), true, 'a chain verifies against the head kept from it');
SELECT throws_ok(format('SELECT * FROM verify_audit_log(%s, %L)', :ta, jsonb_set(:'head'::jsonb, '{entry}', '1')),
                 '22023', NULL, 'a kept head that was edited is refused');
SELECT throws_ok(format('SELECT * FROM verify_audit_log(%s, %L)', :tb, :'head'), '22023', NULL,
                 'a head of another tenant is refused');
SELECT throws_ok(format('SELECT * FROM verify_audit_log(%s, %L)', :ta, jsonb_set(:'head'::jsonb, '{at}', '"yesterday"')), '22023', NULL,
                 'a head with a malformed time is refused with the same error');

-- ------------------------------------------------------------ tampering, each in a savepoint

SAVEPOINT t;
UPDATE audit_log SET actor = 'mallory'
WHERE audit_id = (SELECT source_id FROM audit_chain WHERE tenant_id = :ta AND source = 'change' AND entry_no = 3);
SELECT results_eq(format('SELECT ok, first_bad_entry, reason FROM verify_audit_log(%s)', :ta),
                  format($$VALUES (false, 3::bigint, 'entry 3: audit record %s was altered')$$,
                         (SELECT source_id FROM audit_chain WHERE tenant_id = :ta AND entry_no = 3)),
                  'editing a record in the middle is named');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
UPDATE report SET answers = jsonb_set(answers, '{building}', '"severe"') WHERE report_id = :r1;
SELECT results_eq(format('SELECT ok, first_bad_entry FROM verify_audit_log(%s)', :ta),
                  format('VALUES (false, %s::bigint)', (SELECT entry_no FROM audit_chain WHERE source = 'report' AND source_id = :r1)),
                  'editing a report is named');
SELECT matches((SELECT reason FROM verify_audit_log(:ta)), 'report ' || :r1 || ' was altered', 'as an altered report');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
DELETE FROM audit_log
WHERE audit_id = (SELECT source_id FROM audit_chain WHERE tenant_id = :ta AND source = 'change' AND entry_no = 2);
SELECT results_eq(format('SELECT ok, first_bad_entry FROM verify_audit_log(%s)', :ta), 'VALUES (false, 2::bigint)',
                  'deleting a record is named');
SELECT matches((SELECT reason FROM verify_audit_log(:ta)), 'entry 2: audit record \d+ was deleted', 'as a deleted record');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
DELETE FROM audit_chain WHERE tenant_id = :ta AND entry_no = 4;
SELECT results_eq(format('SELECT ok, first_bad_entry, reason FROM verify_audit_log(%s)', :ta),
                  $$VALUES (false, 4::bigint, 'entry 4 is missing (the next entry is 5): entries were deleted')$$,
                  'deleting a chain entry is named');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
-- swap two entries (their positions, and so their order in the chain)
UPDATE audit_chain SET entry_no = -entry_no WHERE tenant_id = :ta AND entry_no IN (5, 6);
UPDATE audit_chain SET entry_no = CASE entry_no WHEN -5 THEN 6 ELSE 5 END WHERE tenant_id = :ta AND entry_no IN (-5, -6);
SELECT results_eq(format('SELECT ok, first_bad_entry, reason FROM verify_audit_log(%s)', :ta),
                  $$VALUES (false, 5::bigint, 'entry 5 does not follow from the entry before it: the chain was edited or reordered')$$,
                  'reordering entries is named');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
INSERT INTO audit_log (tenant_id, actor, action, object, detail)
VALUES (:ta, 'mallory', 'delete', 'site', '{"key": {"site_id": 1}}')
RETURNING audit_id AS forged \gset
SELECT is((SELECT ok FROM verify_audit_log(:ta)), true, 'a record newer than the last seal is simply pending');
-- as if it had been slipped in below the sealer's mark
UPDATE audit_sealer SET mark = :forged WHERE source = 'change';
SELECT results_eq(format('SELECT ok, first_bad_entry, reason FROM verify_audit_log(%s)', :ta),
                  format($$VALUES (false, NULL::bigint, 'audit record %s is not in the chain: it was added afterwards')$$, :forged),
                  'a record inserted behind the sealer''s back is named');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
INSERT INTO report (tenant_id, request_id, site_id, answers, level, via, report_id)
OVERRIDING SYSTEM VALUE
VALUES (:ta, :ra, (SELECT site_id FROM site WHERE code = 'A03'), :'ok_answers', 0, 'link', :r3);
SELECT is((SELECT reason FROM verify_audit_log(:ta)), 'report ' || :r3 || ' is not in the chain: it was added afterwards',
               'a report inserted with an old id is named');
ROLLBACK TO SAVEPOINT t;

SELECT (SELECT entry_no FROM audit_head WHERE tenant_id = :ta) AS head_no \gset
SAVEPOINT t;
DELETE FROM audit_chain WHERE tenant_id = :ta AND entry_no >= :head_no - 1;
SELECT results_eq(format('SELECT ok, first_bad_entry, reason FROM verify_audit_log(%s)', :ta),
                  format($$VALUES (false, %s::bigint, 'the chain ends at entry %s but its head is at entry %s: entries were removed from the end')$$,
                         :head_no - 1, :head_no - 2, :head_no),
                  'truncating the tail is named');
SELECT matches((SELECT string_agg(reason, '; ') FROM _audit_problems(:ta) WHERE entry_no IS NULL),
               'is not in the chain', 'and the records of the removed entries show up as records outside the chain');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
-- the thorough forger also deletes those records and moves the head back
DELETE FROM audit_log a USING audit_chain c
WHERE c.tenant_id = :ta AND c.entry_no >= :head_no - 1 AND c.source = 'change' AND a.audit_id = c.source_id;
DELETE FROM report r USING audit_chain c
WHERE c.tenant_id = :ta AND c.entry_no >= :head_no - 1 AND c.source = 'report' AND r.report_id = c.source_id;
DELETE FROM audit_chain WHERE tenant_id = :ta AND entry_no >= :head_no - 1;
UPDATE audit_head h SET entry_no = c.entry_no, chain_hash = c.chain_hash
FROM audit_chain c WHERE h.tenant_id = :ta AND c.tenant_id = :ta AND c.entry_no = :head_no - 2;
SELECT is((SELECT ok FROM verify_audit_log(:ta)), true, 'a tail removed with its records and its head moved back looks whole from inside…');
SELECT results_eq(format('SELECT ok, first_bad_entry FROM verify_audit_log(%s, %L)', :ta, :'head'),
                  format('VALUES (false, %s::bigint)', (:'head'::jsonb ->> 'entry')),
                  '…but not against the head the customer kept');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
-- rewrite an entry and every link after it (the head too): only a kept head shows it
UPDATE audit_log SET actor = 'mallory'
WHERE audit_id = (SELECT source_id FROM audit_chain WHERE tenant_id = :ta AND entry_no = 2);
UPDATE audit_chain c SET entry_hash = _change_entry_hash(a) FROM audit_log a
WHERE c.tenant_id = :ta AND c.entry_no = 2 AND a.audit_id = c.source_id;
UPDATE audit_chain c SET chain_hash = x.h
FROM (SELECT entry_no, _chain(_audit_genesis(:ta), entry_hash) OVER (ORDER BY entry_no) AS h
      FROM audit_chain WHERE tenant_id = :ta) x
WHERE c.tenant_id = :ta AND c.entry_no = x.entry_no;
UPDATE audit_head h SET chain_hash = c.chain_hash FROM audit_chain c
WHERE h.tenant_id = :ta AND c.tenant_id = :ta AND c.entry_no = h.entry_no;
SELECT is((SELECT ok FROM verify_audit_log(:ta)), true, 'a fully rebuilt chain is consistent in itself…');
SELECT results_eq(format('SELECT ok, reason FROM verify_audit_log(%s, %L)', :ta, :'head'),
                  format($$VALUES (false, 'entry %s no longer has the hash your head names: the log was rewritten')$$, :'head'::jsonb ->> 'entry'),
                  '…and the kept head proves it was rewritten');
ROLLBACK TO SAVEPOINT t;

SAVEPOINT t;
DELETE FROM audit_head WHERE tenant_id = :ta;
SELECT matches((SELECT reason FROM verify_audit_log(:ta)), 'no head', 'deleting the head is named');
ROLLBACK TO SAVEPOINT t;

-- ------------------------------------------------------------ retention

SAVEPOINT t;
-- age the first entries by two years, then prune with the default (one year)
UPDATE audit_chain SET sealed_at = sealed_at - interval '2 years' WHERE tenant_id = :ta AND entry_no <= 5;
SELECT (SELECT source_id FROM audit_chain WHERE tenant_id = :ta AND entry_no = 5) AS pruned_record \gset
SELECT is(prune_audit_log(), 5::bigint, 'prune_audit_log removes the entries older than a year');
SELECT is((SELECT count(*)::int FROM audit_log WHERE audit_id = :pruned_record), 0,
          'and the administrative records they chained');
SELECT is((SELECT count(*)::int FROM report WHERE tenant_id = :ta), 2, 'but never reports');
SELECT is((SELECT entry_no FROM audit_checkpoint WHERE tenant_id = :ta), 5::bigint, 'it leaves a checkpoint at the cut');
SELECT is((SELECT ok FROM verify_audit_log(:ta)), true, 'the shortened chain verifies from the checkpoint');
SELECT results_eq(format('SELECT ok FROM verify_audit_log(%s, %L)', :ta, :'head'), 'VALUES (true)',
                  'and a head kept before the pruning still verifies');
UPDATE audit_checkpoint SET entry_no = 4 WHERE tenant_id = :ta;
SELECT matches((SELECT reason FROM verify_audit_log(:ta)), 'checkpoint at entry 4 does not carry a valid signature',
               'a checkpoint that was edited is named');
ROLLBACK TO SAVEPOINT t;
SELECT throws_ok('SELECT prune_audit_log(''1 hour'')', '22023', NULL, 'the log is kept at least a day');
SELECT throws_ok('SELECT seal_audit_log(0)', '22023', NULL, 'seal_audit_log wants a positive batch size');
SELECT throws_ok('SELECT seal_audit_log(NULL)', '22004', NULL, 'seal_audit_log refuses NULL');
SELECT throws_ok('SELECT prune_audit_log(NULL)', '22004', NULL, 'prune_audit_log refuses NULL');
SELECT throws_ok('SELECT * FROM verify_audit_log(NULL)', '22004', NULL, 'verify_audit_log refuses NULL');
SELECT throws_ok('SELECT * FROM verify_audit_log(-1)', '23503', 'tenant -1 does not exist', 'verify_audit_log of an unknown tenant');

-- ------------------------------------------------------------ signing key

SELECT matches(installation_public_key(), '^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$',
               'installation_public_key is a PEM public key');
SELECT _sign('hello') AS sig1 \gset
SELECT (:'sig1'::jsonb ->> 'key_id') AS old_key \gset
SELECT isnt(rotate_signing_key(), :'old_key', 'rotate_signing_key makes a new key');
SELECT ok(_signature_ok(:'old_key', 'hello', :'sig1'::jsonb ->> 'signature'),
          'what the old key signed still verifies');
SELECT ok(NOT _signature_ok(:'old_key', 'hellO', :'sig1'::jsonb ->> 'signature'), 'a changed message does not');
SELECT is((SELECT private_key FROM signing_key WHERE key_id = :'old_key'), NULL, 'the old private key is destroyed');
SELECT is((SELECT ok FROM verify_audit_log(:ta, :'head')), true, 'a head signed by the old key still verifies');

-- ------------------------------------------------------------ accounts

SELECT throws_ok(format('SELECT set_user_role(%s, %L, %L)', :tb, 'admin_b', 'viewer'), '23514', NULL,
                 'the last administrator cannot be demoted');
SELECT throws_ok(format('SELECT remove_user(%s, %L)', :tb, 'admin_b'), '23514', NULL,
                 'nor removed');
SELECT lives_ok(format('SELECT remove_user(%s, %L)', :ta, 'admin_a'), 'with a second administrator, the first can go');
SELECT throws_ok(format('SELECT remove_user(%s, %L)', :ta, 'yamada'), '23514', NULL,
                 'and then the second is the last');
SELECT throws_ok(format('SELECT remove_user(%s, %L)', :ta, 'nobody'), 'P0002', NULL, 'removing an unknown user');
SAVEPOINT t;
SET CONSTRAINTS status_checker.app_user_admin_left IMMEDIATE;
SELECT throws_ok(format('DELETE FROM app_user WHERE tenant_id = %s', :tb), '23514', NULL,
                 'deleting the last administrator by hand is refused too');
ROLLBACK TO SAVEPOINT t;

SELECT throws_ok(format('SELECT set_user_role(%s, %L, %L)', :ta, 'yamada', 'owner'), '22023', NULL, 'an unknown role is refused');
SELECT throws_ok(format('SELECT set_user_role(%s, %L, NULL)', :ta, 'yamada'), '22004', NULL, 'set_user_role refuses NULL');
SELECT throws_ok(format('SELECT map_db_role(%s, %L, %L)', :ta, 'yamada', 'no_such_role'), '42704', NULL, 'mapping a role that does not exist');
SELECT throws_ok(format('SELECT map_db_role(%s, %L, %L)', :ta, 'yamada', 'postgres'), '22023', NULL, 'a superuser cannot be mapped to a tenant''s user');
CREATE ROLE sec_login LOGIN;
SELECT lives_ok(format('SELECT map_db_role(%s, %L, %L)', :ta, 'yamada', 'sec_login'), 'a login is mapped to a user');
SELECT ok(pg_has_role('sec_login', 'status_checker_admin', 'MEMBER'), 'and gets the group role of the user''s role');
SELECT throws_ok(format('SELECT map_db_role(%s, %L, %L)', :tb, 'admin_b', 'sec_login'), '23505', NULL, 'a login maps to one user only');
SELECT add_user(:ta, 'second_admin', 's@a.example', 'admin') AS second \gset
SELECT set_user_role(:ta, 'yamada', 'viewer');
SELECT ok(NOT pg_has_role('sec_login', 'status_checker_admin', 'MEMBER') AND pg_has_role('sec_login', 'status_checker_viewer', 'MEMBER'),
          'demoting a mapped user moves its login to the new group role');
SELECT set_user_role(:ta, 'yamada', 'admin');
SELECT lives_ok(format('SELECT map_db_role(%s, %L, NULL)', :ta, 'yamada'), 'NULL removes the mapping');
SELECT ok(NOT pg_has_role('sec_login', 'status_checker_admin', 'MEMBER'), 'and the group role');
SELECT map_db_role(:ta, 'second_admin', 'sec_login') AS remapped \gset
SELECT remove_user(:ta, 'second_admin');
SELECT ok(NOT pg_has_role('sec_login', 'status_checker_admin', 'MEMBER'), 'removing a mapped user takes its login out of the group role');

-- ------------------------------------------------------------ deletion

SELECT issue_token(:rb, 'B01') IS NOT NULL AS has_link_key \gset
SELECT delete_tenant(:tb) AS cert \gset
SELECT is((SELECT sum(n)::int FROM (
              SELECT (xpath('/table/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s WHERE tenant_id = %s', t, :tb), false, false, '')))[1]::text::int AS n
              FROM _tenant_tables() t) x), 0,
          'after delete_tenant no table holds a row of the tenant');
SELECT is((SELECT count(*)::int FROM report WHERE tenant_id = :ta), 2, 'the other tenant keeps its data');
SELECT is((SELECT ok FROM verify_audit_log(:ta)), true, 'and its audit chain still verifies');
SELECT ok(verify_deletion_certificate(:'cert'), 'the certificate verifies');
SELECT is((:'cert'::jsonb #>> '{certificate,rows_deleted,site}')::int, 2, 'it counts the rows deleted per table');
SELECT is(:'cert'::jsonb #> '{certificate,keys_destroyed}', '["data_keys", "link_key"]', 'and names the keys destroyed');
SELECT ok((:'cert'::jsonb #>> '{certificate,backups_may_hold_data_until}')::timestamptz > now() + interval '6 days',
          'and says until when backups may hold the data');
SELECT ok(NOT verify_deletion_certificate(jsonb_set(:'cert'::jsonb, '{certificate,rows_total}', '1')),
          'a certificate whose readable part was changed does not verify');
SELECT ok(NOT verify_deletion_certificate(jsonb_set(:'cert'::jsonb, '{signed}',
              to_jsonb(replace(:'cert'::jsonb ->> 'signed', '"rows_total": ', '"rows_total": 1')))),
          'nor one whose signed text was changed');
SELECT ok(NOT verify_deletion_certificate(jsonb_set(:'cert'::jsonb, '{signature}', to_jsonb(:'sig1'::jsonb ->> 'signature'))),
          'nor one with another signature');
SELECT ok(NOT verify_deletion_certificate('[1, 2]'), 'nor something that is not a certificate');
SELECT throws_ok(format('SELECT delete_tenant(%s)', :tb), 'P0002', 'tenant ' || :tb || ' was already deleted',
                 'a tenant is deleted once');
SELECT throws_ok('SELECT delete_tenant(-1)', '23503', 'tenant -1 does not exist', 'deleting a tenant that never existed');
SELECT throws_ok('SELECT delete_tenant(NULL)', '22004', NULL, 'delete_tenant refuses NULL');
SELECT throws_ok('SELECT verify_deletion_certificate(NULL)', '22004', NULL, 'verify_deletion_certificate refuses NULL');
SELECT throws_ok('SELECT installation_public_key(''0000'')', 'P0002', NULL, 'the public key of an unknown key id');

SELECT * FROM finish();
ROLLBACK;
