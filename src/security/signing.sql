-- src/security/signing.sql — the installation's signing key (Ed25519).
--
-- Deletion certificates, audit checkpoints and exported audit chain heads
-- are signed with a key of the installation, so that a customer can check
-- them with the public key alone — in SQL, or outside the database with
-- OpenSSL (docs/security.md).  The key is made on first use; a rotated-out
-- key stays, retired, so that what it signed still verifies.  Only the
-- extension's owner can read this table.

CREATE TABLE status_checker.signing_key (
    key_id       text PRIMARY KEY,             -- first 16 bytes of SHA-256(public key), hex
    public_key   bytea NOT NULL CHECK (length(public_key) = 32),
    private_key  bytea,                    -- wrapped by the master key (src/security/encryption.sql); NULL once retired
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    retired_at   timestamptz
);
CREATE UNIQUE INDEX signing_key_one_current ON status_checker.signing_key ((true)) WHERE retired_at IS NULL;
COMMENT ON TABLE status_checker.signing_key IS
'The installation''s Ed25519 keys for certificates and checkpoints: one current, older ones kept (retired) so that what they signed still verifies';
GRANT SELECT (key_id, public_key, created_at, retired_at) ON status_checker.signing_key TO status_checker_viewer, status_checker_operator;

CREATE FUNCTION status_checker._ed25519_keygen(OUT private_key bytea, OUT public_key bytea)
    LANGUAGE c VOLATILE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_keygen';
CREATE FUNCTION status_checker._ed25519_sign(private_key bytea, message bytea) RETURNS bytea
    LANGUAGE c IMMUTABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_sign';
CREATE FUNCTION status_checker._ed25519_verify(public_key bytea, message bytea, signature bytea) RETURNS boolean
    LANGUAGE c IMMUTABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_verify';
CREATE FUNCTION status_checker._ed25519_public_pem(public_key bytea) RETURNS text
    LANGUAGE c IMMUTABLE STRICT SECURITY INVOKER
    AS 'MODULE_PATHNAME', 'sc_ed25519_public_pem';
GRANT EXECUTE ON FUNCTION status_checker._ed25519_public_pem(bytea) TO status_checker_api, status_checker_viewer, status_checker_operator;

-- A time as certificates and exported heads show it: ISO 8601 in UTC.
CREATE FUNCTION status_checker._utc_text(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SECURITY INVOKER AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- The current key, made on first use.
CREATE FUNCTION status_checker._current_signing_key() RETURNS status_checker.signing_key
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k status_checker.signing_key;
BEGIN
    SELECT * INTO k FROM status_checker.signing_key WHERE retired_at IS NULL;
    IF NOT FOUND THEN
        INSERT INTO status_checker.signing_key (key_id, public_key, private_key)
        SELECT encode(substr(sha256(g.public_key), 1, 16), 'hex'), g.public_key, g.private_key
        FROM status_checker._ed25519_keygen() g
        ON CONFLICT DO NOTHING;
        SELECT * INTO STRICT k FROM status_checker.signing_key WHERE retired_at IS NULL;
    END IF;
    RETURN k;
END
$$;

-- Sign a text (its UTF-8 bytes): the key id and the base64 signature.
CREATE FUNCTION status_checker._sign(message text) RETURNS jsonb
    LANGUAGE plpgsql VOLATILE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k status_checker.signing_key := status_checker._current_signing_key();
BEGIN
    RETURN jsonb_build_object(
        'algorithm', 'Ed25519',
        'key_id', k.key_id,
        'signature', translate(encode(status_checker._ed25519_sign(
                         status_checker._master_unwrap(k.private_key, 'status_checker signing key|' || k.key_id),
                         convert_to(message, 'UTF8')), 'base64'), E'\n', ''));
END
$$;

-- Does signature (base64) by key key_id verify over message?  False for an
-- unknown key or a malformed signature.
CREATE FUNCTION status_checker._signature_ok(key_id text, message text, signature text) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pub bytea;
    sig bytea;
BEGIN
    SELECT k.public_key INTO pub FROM status_checker.signing_key k WHERE k.key_id = _signature_ok.key_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    BEGIN
        sig := decode(signature, 'base64');
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN false;
    END;
    RETURN status_checker._ed25519_verify(pub, convert_to(message, 'UTF8'), sig);
END
$$;

CREATE FUNCTION status_checker.installation_public_key(key_id text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE CALLED ON NULL INPUT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    pub bytea;
BEGIN
    IF installation_public_key.key_id IS NULL THEN
        pub := (status_checker._current_signing_key()).public_key;
    ELSE
        SELECT k.public_key INTO pub FROM status_checker.signing_key k WHERE k.key_id = installation_public_key.key_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'signing key % does not exist', quote_literal(installation_public_key.key_id)
                USING ERRCODE = 'no_data_found',
                      HINT = 'SELECT key_id, created_at, retired_at FROM status_checker.signing_keys lists the keys.';
        END IF;
    END IF;
    RETURN status_checker._ed25519_public_pem(pub);
END
$$;
COMMENT ON FUNCTION status_checker.installation_public_key(text) IS
'The public key (PEM) that checks this installation''s deletion certificates, audit checkpoints and chain heads — the current key, or the one named';
GRANT EXECUTE ON FUNCTION status_checker.installation_public_key(text) TO status_checker_api, status_checker_viewer, status_checker_gateway, status_checker_operator;

CREATE FUNCTION status_checker.rotate_signing_key() RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- serialise with concurrent first use
    LOCK TABLE status_checker.signing_key IN SHARE ROW EXCLUSIVE MODE;
    UPDATE status_checker.signing_key SET retired_at = pg_catalog.now(), private_key = NULL WHERE retired_at IS NULL;
    RETURN (status_checker._current_signing_key()).key_id;
END
$$;
COMMENT ON FUNCTION status_checker.rotate_signing_key() IS
'Make a new installation signing key and destroy the old private key (its public key stays, so what it signed still verifies); returns the new key id';
GRANT EXECUTE ON FUNCTION status_checker.rotate_signing_key() TO status_checker_api, status_checker_operator;

CREATE VIEW status_checker.signing_keys WITH (security_invoker = true) AS
SELECT key_id, status_checker._ed25519_public_pem(public_key) AS public_key_pem, created_at, retired_at
FROM status_checker.signing_key;
COMMENT ON VIEW status_checker.signing_keys IS
'The installation''s signing keys (public halves only): the current one and the retired ones';
GRANT SELECT ON status_checker.signing_keys TO status_checker_viewer, status_checker_operator;
