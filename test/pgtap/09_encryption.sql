-- Envelope encryption: what is stored is ciphertext, bound to its tenant and
-- field; the decrypted views and the delivery path read it back; the blind
-- index keeps contacts unique; a data-key rotation re-encrypts everything
-- and destroys the old key.  (Master keys, files and pages on disk:
-- test/integration/encryption.sh.)
BEGIN;
\ir fixtures.psql
SELECT plan(39);

SELECT add_site_contact(:ta, 'A01', 'webhook', 'https://hooks.example.com/a01', '輪島 太郎') AS hook \gset
SELECT add_channel(:ta, 'email', 'mail-a', '{"url": "smtps://mail.a.example:465", "from": "crisis@a.example", "username": "u", "password": "p@ss-w0rd"}') AS ch \gset
SELECT issue_token(:ra, 'A01') IS NOT NULL AS issued \gset

-- ------------------------------------------------------------ at rest

SELECT ok(bool_and(address LIKE 'sc1:%'), 'contact addresses are stored encrypted') FROM site_contact;
SELECT ok((SELECT name LIKE 'sc1:%' FROM site_contact WHERE contact_id = :hook), 'and contact names');
SELECT ok(bool_and(email LIKE 'sc1:%'), 'user mail addresses too') FROM app_user;
SELECT ok(bool_and(recipient LIKE 'sc1:%'), 'and the recipients of queued messages') FROM outbox WHERE channel_id IS NULL;
SELECT is((SELECT secrets -> 'password' ->> 'enc' LIKE 'sc1:%' FROM channel WHERE channel_id = :ch), true,
          'a channel''s password is stored encrypted, under its name');
SELECT is((SELECT secrets::text LIKE '%p@ss-w0rd%' FROM channel WHERE channel_id = :ch), false, 'and nowhere in clear');
SELECT ok((SELECT _key_version(key) = 1 FROM link_key WHERE tenant_id = :ta), 'the link key is encrypted with data key 1');
SELECT is((SELECT length(private_key) FROM signing_key WHERE retired_at IS NULL), NULL::integer,
          'no signing key yet (made on first use)');
SELECT _sign('x') IS NOT NULL AS signed \gset
SELECT is((SELECT length(private_key) FROM signing_key WHERE retired_at IS NULL), 68,
          'the signing key is stored wrapped by the master key (id, nonce, tag, key)');
SELECT is((SELECT array_agg(version ORDER BY version) FROM data_key WHERE tenant_id = :ta), '{0,1}'::int[],
          'a tenant gets an index key (0) and data key 1 on first use');
SELECT ok((SELECT bool_and(_wrapped_by(wrapped) = master_key_id()) FROM data_key), 'wrapped by the current master key');

-- ------------------------------------------------------------ reading back

SELECT is((SELECT array_agg(address ORDER BY contact_id) FROM contact_list WHERE tenant_id = :ta),
          '{a01@a.example,a02@a.example,https://hooks.example.com/a01}', 'contact_list shows the addresses in clear');
SELECT is((SELECT name FROM contact_list WHERE contact_id = :hook), '輪島 太郎', 'and names, Japanese included');
SELECT is((SELECT email FROM user_list WHERE login = 'admin_a'), 'admin@a.example', 'user_list shows mail addresses');
SELECT is(_decrypt(:ta, 'x', _encrypt(:ta, 'x', '')), '', 'an empty string survives encryption');
SELECT is(_encrypt(:ta, 'x', NULL), NULL, 'NULL stays NULL');
SELECT is((SELECT name FROM site_contact WHERE address = (SELECT address FROM site_contact WHERE tenant_id = :ta ORDER BY contact_id LIMIT 1)),
          NULL, 'a contact without a name keeps NULL');
SELECT isnt(_encrypt(:ta, 'x', 'same'), _encrypt(:ta, 'x', 'same'), 'the same value encrypts differently each time (random nonce)');
SELECT is(_decrypt_secrets(:ta, (SELECT secrets FROM channel WHERE channel_id = :ch)) ->> 'password', 'p@ss-w0rd',
          'the dispatcher''s claim gets the secret back');
SELECT is((SELECT recipient FROM delivery_status WHERE request_id = :ra ORDER BY message_id LIMIT 1), 'a***@a.example',
          'delivery_status masks the decrypted recipient');

-- ------------------------------------------------------------ tampering

SELECT throws_ok(format('SELECT _decrypt(%s, %L, %L)', :tb, 'recipient', (SELECT address FROM site_contact WHERE tenant_id = :ta LIMIT 1)),
                 'XX001', NULL, 'a value moved to another tenant does not decrypt (bound to its tenant)');
SELECT throws_ok(format('SELECT _decrypt(%s, %L, %L)', :ta, 'contact_name', (SELECT address FROM site_contact WHERE tenant_id = :ta LIMIT 1)),
                 'XX001', NULL, 'nor one moved to another field');
SELECT throws_ok(format('SELECT _decrypt(%s, %L, %L)', :ta, 'recipient',
                        -- one character changed for another (never for itself)
                        (SELECT overlay(address placing CASE WHEN substr(address, 30, 1) = 'A' THEN 'B' ELSE 'A' END from 30 for 1)
                         FROM site_contact WHERE tenant_id = :ta LIMIT 1)),
                 'XX001', NULL, 'an altered value does not decrypt');
SELECT throws_ok(format('SELECT _decrypt(%s, %L, %L)', :ta, 'recipient', 'a01@a.example'), 'XX001', NULL,
                 'a value in clear where ciphertext belongs is named');
SAVEPOINT t;
-- one bit of the wrapped key flipped (setting a byte could leave it as it was)
UPDATE data_key SET wrapped = set_byte(wrapped, 39, get_byte(wrapped, 39) # 1) WHERE tenant_id = :ta AND version = 1;
SELECT _forget_keys();
SELECT throws_ok('SELECT array_agg(address) FROM contact_list', 'XX001', NULL, 'a damaged wrapped data key is named, not used');
ROLLBACK TO SAVEPOINT t;
SELECT _forget_keys();

-- ------------------------------------------------------------ blind index

SELECT is(add_site_contact(:ta, 'A01', 'email', 'A01@A.Example'),
          (SELECT contact_id FROM contact_list WHERE address = 'a01@a.example'),
          'the same mail address again (any case) is the same contact, found by its blind index');
SELECT is(import_sites(:ta, E'code,name,municipality_code,lat,lon,contact_email\nA01,A輪島,1720400,37.39,136.90,a01@a.example\n'), 1,
          'an import naming an existing contact…');
SELECT is((SELECT count(*)::int FROM site_contact WHERE tenant_id = :ta), 3, '…adds no second copy');
SELECT isnt((SELECT address_key FROM site_contact WHERE tenant_id = :ta ORDER BY contact_id LIMIT 1),
            (SELECT address_key FROM site_contact WHERE tenant_id = :tb LIMIT 1),
            'blind indexes differ between tenants (each has its own index key)');

-- ------------------------------------------------------------ data key rotation

SELECT is(rotate_data_key(:ta), 2, 'rotate_data_key makes data key 2');
SELECT ok(_key_version(_encrypt(:ta, 'x', 'new')) = 2, 'new values are encrypted with it at once');
SELECT cmp_ok(reencrypt_batch(:ta, 2), '>', 0, 'reencrypt_batch re-encrypts a small batch');
SELECT set_config('sc.ta', :'ta', true) AS ignored \gset
DO $$ BEGIN WHILE status_checker.reencrypt_batch(current_setting('sc.ta')::bigint, 2) > 0 LOOP END LOOP; END $$;
SELECT is((SELECT array_agg(version ORDER BY version) FROM data_key WHERE tenant_id = :ta), '{0,2}'::int[],
          'when everything is re-encrypted, data key 1 is destroyed');
SELECT is((SELECT array_agg(address ORDER BY contact_id) FROM contact_list WHERE tenant_id = :ta),
          '{a01@a.example,a02@a.example,https://hooks.example.com/a01}', 'and every value still reads back');
SELECT is(_decrypt_secrets(:ta, (SELECT secrets FROM channel WHERE channel_id = :ch)) ->> 'password', 'p@ss-w0rd',
          'secrets too');
SELECT throws_ok('SELECT rotate_data_key(NULL)', '22004', NULL, 'rotate_data_key refuses NULL');
SELECT throws_ok(format('SELECT reencrypt_batch(%s, 0)', :ta), '22023', NULL, 'reencrypt_batch wants a positive batch size');
SELECT throws_ok('SELECT rotate_data_key(-1)', '23503', NULL, 'rotating the key of a tenant that does not exist');
-- a user of tenant B cannot decrypt tenant A's values, even holding the ciphertext
SELECT add_user(:tb, 'viewer_b', 'v@b.example', 'viewer') AS vb \gset
CREATE ROLE enc_viewer_b LOGIN;
SELECT map_db_role(:tb, 'viewer_b', 'enc_viewer_b') AS mapped \gset
SELECT (SELECT address FROM site_contact WHERE tenant_id = :ta LIMIT 1) AS a_cipher \gset
SET SESSION AUTHORIZATION enc_viewer_b;
SELECT throws_ok(format('SELECT status_checker._decrypt(%s, %L, %L)', :ta, 'recipient', :'a_cipher'), '42501', NULL,
                 'decrypting another tenant''s value is refused before any key is touched');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
