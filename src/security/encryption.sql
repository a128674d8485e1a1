-- src/security/encryption.sql — envelope encryption of personal and secret
-- data (src/security/keys.c does the cryptography).
--
-- Encrypted, with the tenant's data key (AES-256-GCM), as they are written:
--   site_contact.address, site_contact.name   (a contact's mail address or webhook URL, and name)
--   app_user.email                            (a user's mail address)
--   outbox.recipient                          (copied from the two above, still encrypted)
--   channel.secrets                           (SMTP password, webhook secret: each value)
--   link_key.key                              (the key personal links are derived from)
-- and the installation's signing key, wrapped by the master key itself.
-- Data keys are wrapped by the master key, which the server reads from
-- status_checker.master_key_file or .master_key_command and holds in memory
-- only.  Triggers encrypt whatever is written in clear, so no writer can
-- forget; a value already encrypted ("sc1:…") is left alone, which is what
-- makes pg_dump/restore and the upgrade work.

CREATE TABLE status_checker.data_key (
    tenant_id   bigint NOT NULL,
    version     integer NOT NULL CHECK (version >= 0),   -- 0: the index key (blind indexes); 1, 2, …: data keys
    wrapped     bytea NOT NULL,                          -- master key id || nonce || tag || key
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at  timestamptz,                             -- no longer used to encrypt
    PRIMARY KEY (tenant_id, version)
);
COMMENT ON TABLE status_checker.data_key IS
'Per tenant, its data keys wrapped by the master key (AES-256-GCM); deleting a tenant''s rows here makes its encrypted data unreadable, backups included';
ALTER TABLE status_checker.data_key ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_checker.data_key FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON status_checker.data_key
    USING (status_checker._may_see(tenant_id)) WITH CHECK (status_checker._may_see(tenant_id));
GRANT SELECT ON status_checker.data_key TO status_checker_operator;

CREATE FUNCTION status_checker._encrypt(tenant_id bigint, context text, value text) RETURNS text
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt';
CREATE FUNCTION status_checker._decrypt(tenant_id bigint, context text, value text) RETURNS text
    LANGUAGE c STABLE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_decrypt';
GRANT EXECUTE ON FUNCTION status_checker._decrypt(bigint, text, text) TO status_checker_api, status_checker_manager;
CREATE FUNCTION status_checker._encrypt_bytes(tenant_id bigint, context text, value bytea) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt_bytes';
CREATE FUNCTION status_checker._decrypt_bytes(tenant_id bigint, context text, value bytea) RETURNS bytea
    LANGUAGE c STABLE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_decrypt_bytes';
CREATE FUNCTION status_checker._key_version(value text) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_key_version';
CREATE FUNCTION status_checker._key_version(value bytea) RETURNS integer
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_key_version';
CREATE FUNCTION status_checker._blind_index(tenant_id bigint, context text, value text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_blind_index';
CREATE FUNCTION status_checker._new_data_key(tenant_id bigint) RETURNS integer
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_new_data_key';
CREATE FUNCTION status_checker._rewrap(wrapped bytea, aad text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_rewrap';
CREATE FUNCTION status_checker._master_wrap(key bytea, aad text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_master_wrap';
CREATE FUNCTION status_checker._master_unwrap(wrapped bytea, aad text) RETURNS bytea
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_master_unwrap';
CREATE FUNCTION status_checker._wrapped_by(wrapped bytea) RETURNS text
    LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_wrapped_by';
CREATE FUNCTION status_checker._forget_keys() RETURNS void
    LANGUAGE c VOLATILE SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_forget_keys';
CREATE FUNCTION status_checker.master_key_id() RETURNS text
    LANGUAGE c VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS 'MODULE_PATHNAME', 'sc_master_key_id';
COMMENT ON FUNCTION status_checker.master_key_id() IS
'The id of the current master key (the first 8 bytes of its SHA-256, in hex) — never the key';
GRANT EXECUTE ON FUNCTION status_checker.master_key_id() TO status_checker_api, status_checker_operator;

-- channel secrets: {"password": {"enc": "sc1:…"}} — the names stay readable (has_password)
CREATE FUNCTION status_checker._decrypt_secrets(p_tenant_id bigint, p_secrets jsonb) RETURNS jsonb
    LANGUAGE sql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'object' AND e.value ? 'enc'
                                                 THEN to_jsonb(status_checker._decrypt(p_tenant_id, 'channel_secret', e.value ->> 'enc'))
                                                 ELSE e.value END), '{}')
    FROM jsonb_each(p_secrets) e
$$;

-- ------------------------------------------------------------ encrypting what is written

-- a contact's address and name, and the address's blind index (equal
-- addresses, mail in any case, give equal indexes); in C (src/security/keys.c)
CREATE FUNCTION status_checker._encrypt_contact() RETURNS trigger
    LANGUAGE c SECURITY INVOKER AS 'MODULE_PATHNAME', 'sc_encrypt_contact';

CREATE FUNCTION status_checker._encrypt_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.email NOT LIKE 'sc1:%' THEN
        NEW.email := status_checker._encrypt(NEW.tenant_id, 'recipient', NEW.email);
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION status_checker._encrypt_channel() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.secrets := coalesce((SELECT jsonb_object_agg(e.key,
                                CASE WHEN jsonb_typeof(e.value) = 'string'
                                     THEN jsonb_build_object('enc', status_checker._encrypt(NEW.tenant_id, 'channel_secret', e.value #>> '{}'))
                                     ELSE e.value END)
                             FROM jsonb_each(NEW.secrets) e), '{}');
    RETURN NEW;
END
$$;

CREATE FUNCTION status_checker._encrypt_link_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF status_checker._key_version(NEW.key) IS NULL THEN
        NEW.key := status_checker._encrypt_bytes(NEW.tenant_id, 'link_key', NEW.key);
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION status_checker._wrap_signing_key() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.private_key IS NOT NULL AND length(NEW.private_key) = 32 THEN
        NEW.private_key := status_checker._master_wrap(NEW.private_key, 'status_checker signing key|' || NEW.key_id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER encrypt_contact BEFORE INSERT OR UPDATE OF address, name ON status_checker.site_contact
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_contact();
CREATE TRIGGER encrypt_user BEFORE INSERT OR UPDATE OF email ON status_checker.app_user
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_user();
CREATE TRIGGER encrypt_channel BEFORE INSERT OR UPDATE OF secrets ON status_checker.channel
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_channel();
CREATE TRIGGER encrypt_link_key BEFORE INSERT OR UPDATE OF key ON status_checker.link_key
    FOR EACH ROW EXECUTE FUNCTION status_checker._encrypt_link_key();
CREATE TRIGGER wrap_signing_key BEFORE INSERT OR UPDATE OF private_key ON status_checker.signing_key
    FOR EACH ROW EXECUTE FUNCTION status_checker._wrap_signing_key();

-- ------------------------------------------------------------ reading

CREATE FUNCTION status_checker._link_key(p_tenant_id bigint) RETURNS bytea
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k bytea;
BEGIN
    SELECT l.key INTO k FROM status_checker.link_key l WHERE l.tenant_id = p_tenant_id;
    IF NOT FOUND THEN
        INSERT INTO status_checker.link_key (tenant_id, key)
        VALUES (p_tenant_id, status_checker._random_bytes(32))
        ON CONFLICT (tenant_id) DO NOTHING;
        SELECT l.key INTO k FROM status_checker.link_key l WHERE l.tenant_id = p_tenant_id;
    END IF;
    RETURN status_checker._decrypt_bytes(p_tenant_id, 'link_key', k);
END
$$;
COMMENT ON FUNCTION status_checker._link_key(bigint) IS
'Internal: a tenants link key (decrypted), made on first use';

-- delivery_status: src/dispatch/delivery_status.sql (recipients masked without decrypting for the reader, 0.10.1).

CREATE VIEW status_checker.contact_list WITH (security_invoker = true) AS
SELECT c.tenant_id, c.contact_id, s.code AS site_code, s.name AS site_name, c.channel,
       status_checker._decrypt(c.tenant_id, 'recipient', c.address) AS address,
       status_checker._decrypt(c.tenant_id, 'contact_name', c.name) AS name,
       c.created_at
FROM status_checker.site_contact c
JOIN status_checker.site s ON s.tenant_id = c.tenant_id AND s.site_id = c.site_id;
COMMENT ON VIEW status_checker.contact_list IS
'The contacts of the sites, decrypted: who receives each site''s report requests';
-- in clear: for managers
GRANT SELECT ON status_checker.contact_list TO status_checker_manager;

CREATE VIEW status_checker.user_list WITH (security_invoker = true) AS
SELECT u.tenant_id, u.user_id, u.login, status_checker._decrypt(u.tenant_id, 'recipient', u.email) AS email,
       u.role, u.db_role, u.created_at
FROM status_checker.app_user u;
COMMENT ON VIEW status_checker.user_list IS
'The users of each tenant, with their role and mail address (decrypted)';
-- in clear: for managers
GRANT SELECT ON status_checker.user_list TO status_checker_manager;

-- ------------------------------------------------------------ rotation

CREATE FUNCTION status_checker.rotate_master_key() RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    current_id text := status_checker.master_key_id();
    n integer;
    m integer;
BEGIN
    UPDATE status_checker.data_key d
    SET wrapped = status_checker._rewrap(d.wrapped, format('status_checker data key|%s|%s', d.tenant_id, d.version))
    WHERE status_checker._wrapped_by(d.wrapped) <> current_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE status_checker.signing_key k
    SET private_key = status_checker._rewrap(k.private_key, 'status_checker signing key|' || k.key_id)
    WHERE k.private_key IS NOT NULL AND status_checker._wrapped_by(k.private_key) <> current_id;
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_master_key() IS
'After putting a new master key first in master_key_file (the old one second) and reloading: re-wrap every data key '
'and the signing key under the new key; then the old one can be removed. Returns the number of keys re-wrapped';
GRANT EXECUTE ON FUNCTION status_checker.rotate_master_key() TO status_checker_api, status_checker_operator;

CREATE FUNCTION status_checker.rotate_data_key(tenant_id bigint) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v integer;
BEGIN
    PERFORM status_checker._no_nulls('rotate_data_key', ARRAY['tenant_id'], ARRAY[rotate_data_key.tenant_id::text]);
    PERFORM status_checker._require_tenant(rotate_data_key.tenant_id);
    -- one rotation at a time per tenant
    PERFORM 1 FROM status_checker.tenant t WHERE t.tenant_id = rotate_data_key.tenant_id FOR UPDATE;
    v := status_checker._new_data_key(rotate_data_key.tenant_id);
    UPDATE status_checker.data_key d SET retired_at = pg_catalog.now()
    WHERE d.tenant_id = rotate_data_key.tenant_id AND d.version > 0 AND d.version < v AND d.retired_at IS NULL;
    RETURN v;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_data_key(bigint) IS
'Give a tenant a new data key: new values are encrypted with it at once; CALL reencrypt_tenant(tenant_id) re-encrypts '
'the stored ones in small batches and destroys the old key. Returns the new key version';
GRANT EXECUTE ON FUNCTION status_checker.rotate_data_key(bigint) TO status_checker_api, status_checker_operator;

-- Re-encrypt up to batch_size values of a tenant that an older data key
-- encrypted; returns how many.  When none is left, older data keys are
-- destroyed (their rows deleted).
CREATE FUNCTION status_checker.reencrypt_batch(tenant_id bigint, batch_size integer DEFAULT 500) RETURNS integer
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    t bigint := reencrypt_batch.tenant_id;
    cur integer;
    n integer := 0;
    k integer;
BEGIN
    PERFORM status_checker._no_nulls('reencrypt_batch', ARRAY['tenant_id', 'batch_size'],
                                     ARRAY[reencrypt_batch.tenant_id::text, reencrypt_batch.batch_size::text]);
    IF batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be positive, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM status_checker._require_tenant(t);
    SELECT max(d.version) INTO cur FROM status_checker.data_key d
    WHERE d.tenant_id = t AND d.version > 0 AND d.retired_at IS NULL;
    IF cur IS NULL THEN
        RETURN 0;
    END IF;
    -- rows under an older key, locked (others wait a moment, never fail)
    WITH x AS (SELECT c.contact_id FROM status_checker.site_contact c
               WHERE c.tenant_id = t AND (status_checker._key_version(c.address) < cur
                                          OR status_checker._key_version(c.name) < cur)
               LIMIT batch_size FOR UPDATE)
    UPDATE status_checker.site_contact c
    SET address = status_checker._encrypt(t, 'recipient', status_checker._decrypt(t, 'recipient', c.address)),
        name = status_checker._encrypt(t, 'contact_name', status_checker._decrypt(t, 'contact_name', c.name))
    FROM x WHERE c.tenant_id = t AND c.contact_id = x.contact_id;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    WITH x AS (SELECT u.user_id FROM status_checker.app_user u
               WHERE u.tenant_id = t AND status_checker._key_version(u.email) < cur LIMIT batch_size FOR UPDATE)
    UPDATE status_checker.app_user u
    SET email = status_checker._encrypt(t, 'recipient', status_checker._decrypt(t, 'recipient', u.email))
    FROM x WHERE u.tenant_id = t AND u.user_id = x.user_id;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    WITH x AS (SELECT o.message_id FROM status_checker.outbox o
               WHERE o.tenant_id = t AND o.channel_id IS NULL AND status_checker._key_version(o.recipient) < cur
               LIMIT batch_size FOR UPDATE)
    UPDATE status_checker.outbox o
    SET recipient = status_checker._encrypt(t, 'recipient', status_checker._decrypt(t, 'recipient', o.recipient))
    FROM x WHERE o.tenant_id = t AND o.message_id = x.message_id;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    -- secrets and the link key: decrypted into clear values, which the triggers encrypt again
    UPDATE status_checker.channel ch
    SET secrets = (SELECT coalesce(jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'object' AND e.value ? 'enc'
                                                               THEN to_jsonb(status_checker._decrypt(t, 'channel_secret', e.value ->> 'enc'))
                                                               ELSE e.value END), '{}')
                   FROM jsonb_each(ch.secrets) e)
    WHERE ch.tenant_id = t AND EXISTS (SELECT 1 FROM jsonb_each(ch.secrets) e
                                        WHERE status_checker._key_version(e.value ->> 'enc') < cur);
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    UPDATE status_checker.link_key l SET key = status_checker._decrypt_bytes(t, 'link_key', l.key)
    WHERE l.tenant_id = t AND status_checker._key_version(l.key) < cur;
    GET DIAGNOSTICS k = ROW_COUNT; n := n + k;
    IF n = 0 AND EXISTS (SELECT 1 FROM status_checker.data_key d WHERE d.tenant_id = t AND d.version > 0 AND d.version < cur) THEN
        -- Nothing seemed left under the older keys.  Wait for the writers
        -- of these tables to finish (a value they encrypted with an older
        -- key is then visible), look again, and destroy the older keys.
        LOCK TABLE status_checker.site_contact, status_checker.app_user, status_checker.outbox,
                   status_checker.channel, status_checker.link_key IN SHARE MODE;
        IF NOT EXISTS (SELECT 1 FROM status_checker.site_contact c WHERE c.tenant_id = t
                       AND (status_checker._key_version(c.address) < cur OR status_checker._key_version(c.name) < cur))
           AND NOT EXISTS (SELECT 1 FROM status_checker.app_user u WHERE u.tenant_id = t AND status_checker._key_version(u.email) < cur)
           AND NOT EXISTS (SELECT 1 FROM status_checker.outbox o WHERE o.tenant_id = t AND o.channel_id IS NULL
                           AND status_checker._key_version(o.recipient) < cur)
           AND NOT EXISTS (SELECT 1 FROM status_checker.channel ch, jsonb_each(ch.secrets) e
                           WHERE ch.tenant_id = t AND status_checker._key_version(e.value ->> 'enc') < cur)
           AND NOT EXISTS (SELECT 1 FROM status_checker.link_key l WHERE l.tenant_id = t AND status_checker._key_version(l.key) < cur) THEN
            DELETE FROM status_checker.data_key d WHERE d.tenant_id = t AND d.version > 0 AND d.version < cur;
        ELSE
            n := 1;   -- one more round
        END IF;
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION status_checker.reencrypt_batch(bigint, integer) IS
'Re-encrypt up to batch_size of a tenant''s values still under an older data key; when none is left, destroy the older keys. '
'Returns the number re-encrypted (0: done)';
GRANT EXECUTE ON FUNCTION status_checker.reencrypt_batch(bigint, integer) TO status_checker_api, status_checker_operator;

-- (no SET search_path: a procedure with SET options cannot COMMIT; every name here is qualified)
CREATE PROCEDURE status_checker.reencrypt_tenant(tenant_id bigint, batch_size integer DEFAULT 500)
    LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
    n integer;
BEGIN
    LOOP
        n := status_checker.reencrypt_batch(tenant_id, batch_size);
        COMMIT;   -- small transactions: the system stays in use
        EXIT WHEN n = 0;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE status_checker.reencrypt_tenant(bigint, integer) IS
'After rotate_data_key: re-encrypt all of a tenant''s values in batches of batch_size, one transaction each, then destroy the old data key';
GRANT EXECUTE ON PROCEDURE status_checker.reencrypt_tenant(bigint, integer) TO status_checker_operator;

CREATE VIEW status_checker.encryption_status WITH (security_invoker = true) AS
SELECT d.tenant_id,
       max(d.version) FILTER (WHERE d.version > 0) AS current_version,
       array_agg(d.version ORDER BY d.version) FILTER (WHERE d.version > 0) AS data_key_versions,
       array_agg(DISTINCT status_checker._wrapped_by(d.wrapped)) AS wrapped_by_master_keys,
       max(d.created_at) FILTER (WHERE d.version > 0) AS rotated_at
FROM status_checker.data_key d
GROUP BY d.tenant_id;
COMMENT ON VIEW status_checker.encryption_status IS
'Per tenant: its data key versions (more than one while a re-encryption runs), which master keys wrap them, when last rotated';
-- for the operator
GRANT SELECT ON status_checker.encryption_status TO status_checker_operator;
