/*-------------------------------------------------------------------------
 *
 * signing.c
 *	  The installation's Ed25519 signatures (deletion certificates, audit
 *	  checkpoints and exported chain heads) and the audit log's hash chain
 *	  step, through OpenSSL.
 *
 * Keys are raw 32-byte Ed25519 keys (RFC 8032); signatures are 64 bytes.
 * The functions are internal (not granted to PUBLIC); the SQL side keeps
 * the private key in status_checker.signing_key, which only the
 * extension's owner can read.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "common/sc_guc.h"

#define ED25519_KEY_BYTES 32
#define ED25519_SIG_BYTES 64

static void openssl_error(const char *what) pg_attribute_noreturn();

static void
openssl_error(const char *what)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not %s", what),
			 e ? errdetail("OpenSSL: %s", ERR_reason_error_string(e)) : 0));
}

static bytea *
to_bytea(const unsigned char *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), data, len);
	return b;
}

/* a raw Ed25519 key of the right size from a bytea argument, or ERROR */
static void
check_key(bytea *key, const char *which)
{
	if (VARSIZE_ANY_EXHDR(key) != ED25519_KEY_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an Ed25519 %s key has %d bytes, not %zu",
						which, ED25519_KEY_BYTES, VARSIZE_ANY_EXHDR(key))));
}

/* _ed25519_keygen() -> (private_key bytea, public_key bytea) */
PG_FUNCTION_INFO_V1(sc_ed25519_keygen);
Datum
sc_ed25519_keygen(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY   *pkey = NULL;
	unsigned char priv[ED25519_KEY_BYTES];
	unsigned char pub[ED25519_KEY_BYTES];
	size_t		privlen = sizeof(priv);
	size_t		publen = sizeof(pub);
	bool		ok;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	ok = ctx != NULL &&
		EVP_PKEY_keygen_init(ctx) > 0 &&
		EVP_PKEY_keygen(ctx, &pkey) > 0 &&
		EVP_PKEY_get_raw_private_key(pkey, priv, &privlen) > 0 &&
		EVP_PKEY_get_raw_public_key(pkey, pub, &publen) > 0;
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	if (!ok || privlen != ED25519_KEY_BYTES || publen != ED25519_KEY_BYTES)
		openssl_error("generate an Ed25519 key");

	values[0] = PointerGetDatum(to_bytea(priv, privlen));
	values[1] = PointerGetDatum(to_bytea(pub, publen));
	explicit_bzero(priv, sizeof(priv));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* _ed25519_sign(private_key bytea, message bytea) -> 64-byte signature */
PG_FUNCTION_INFO_V1(sc_ed25519_sign);
Datum
sc_ed25519_sign(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *msg = PG_GETARG_BYTEA_PP(1);
	EVP_PKEY   *pkey;
	EVP_MD_CTX *md = NULL;
	unsigned char sig[ED25519_SIG_BYTES];
	size_t		siglen = sizeof(sig);
	bool		ok;

	check_key(key, "private");
	pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
										(unsigned char *) VARDATA_ANY(key), ED25519_KEY_BYTES);
	ok = pkey != NULL &&
		(md = EVP_MD_CTX_new()) != NULL &&
		EVP_DigestSignInit(md, NULL, NULL, NULL, pkey) > 0 &&
		EVP_DigestSign(md, sig, &siglen,
					   (unsigned char *) VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg)) > 0;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	if (!ok || siglen != ED25519_SIG_BYTES)
		openssl_error("sign with Ed25519");
	PG_RETURN_BYTEA_P(to_bytea(sig, siglen));
}

/*
 * _ed25519_verify(public_key bytea, message bytea, signature bytea) -> bool
 *
 * False for a signature that does not verify, including one of the wrong
 * length; ERROR only for a malformed key.
 */
PG_FUNCTION_INFO_V1(sc_ed25519_verify);
Datum
sc_ed25519_verify(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	bytea	   *msg = PG_GETARG_BYTEA_PP(1);
	bytea	   *sig = PG_GETARG_BYTEA_PP(2);
	EVP_PKEY   *pkey;
	EVP_MD_CTX *md = NULL;
	int			rc = 0;

	check_key(key, "public");
	if (VARSIZE_ANY_EXHDR(sig) != ED25519_SIG_BYTES)
		PG_RETURN_BOOL(false);
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
									   (unsigned char *) VARDATA_ANY(key), ED25519_KEY_BYTES);
	if (pkey == NULL)
		openssl_error("read an Ed25519 public key");
	md = EVP_MD_CTX_new();
	if (md != NULL && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) > 0)
		rc = EVP_DigestVerify(md, (unsigned char *) VARDATA_ANY(sig), ED25519_SIG_BYTES,
							  (unsigned char *) VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg));
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	PG_RETURN_BOOL(rc == 1);
}

/* _ed25519_public_pem(public_key bytea) -> text: SubjectPublicKeyInfo PEM */
PG_FUNCTION_INFO_V1(sc_ed25519_public_pem);
Datum
sc_ed25519_public_pem(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	EVP_PKEY   *pkey;
	BIO		   *bio = NULL;
	char	   *data;
	long		len;
	text	   *result = NULL;

	check_key(key, "public");
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
									   (unsigned char *) VARDATA_ANY(key), ED25519_KEY_BYTES);
	if (pkey != NULL && (bio = BIO_new(BIO_s_mem())) != NULL &&
		PEM_write_bio_PUBKEY(bio, pkey) > 0 &&
		(len = BIO_get_mem_data(bio, &data)) > 0)
		result = cstring_to_text_with_len(data, (int) len);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	if (result == NULL)
		openssl_error("write an Ed25519 public key as PEM");
	PG_RETURN_TEXT_P(result);
}

/*
 * _chain_step(state bytea, seed bytea, entry_hash bytea) -> bytea
 *
 * The state transition of the aggregate _chain(seed, entry_hash):
 * SHA-256(previous link || entry hash), where the first row's previous
 * link is the seed (the tenant's genesis hash or a checkpoint's hash).
 * Used as a running (window) aggregate by the sealer and the verifier.
 */
PG_FUNCTION_INFO_V1(sc_chain_step);
Datum
sc_chain_step(PG_FUNCTION_ARGS)
{
	bytea	   *prev;
	bytea	   *entry;
	unsigned char out[SHA256_DIGEST_LENGTH];
	EVP_MD_CTX *md;
	bool		ok;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an audit chain entry has no hash")));
	if (!PG_ARGISNULL(0))
		prev = PG_GETARG_BYTEA_PP(0);
	else if (!PG_ARGISNULL(1))
		prev = PG_GETARG_BYTEA_PP(1);
	else
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an audit chain has no seed")));
	entry = PG_GETARG_BYTEA_PP(2);

	md = EVP_MD_CTX_new();
	ok = md != NULL &&
		EVP_DigestInit_ex(md, EVP_sha256(), NULL) > 0 &&
		EVP_DigestUpdate(md, VARDATA_ANY(prev), VARSIZE_ANY_EXHDR(prev)) > 0 &&
		EVP_DigestUpdate(md, VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry)) > 0 &&
		EVP_DigestFinal_ex(md, out, NULL) > 0;
	EVP_MD_CTX_free(md);
	if (!ok)
		openssl_error("compute SHA-256");
	PG_RETURN_BYTEA_P(to_bytea(out, sizeof(out)));
}

/* _backup_retention() -> interval: the GUC status_checker.backup_retention */
PG_FUNCTION_INFO_V1(sc_backup_retention);
Datum
sc_backup_retention(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));

	result->day = sc_backup_retention_min / (MINS_PER_HOUR * HOURS_PER_DAY);
	result->time = (int64) (sc_backup_retention_min % (MINS_PER_HOUR * HOURS_PER_DAY)) * USECS_PER_MINUTE;
	PG_RETURN_INTERVAL_P(result);
}
