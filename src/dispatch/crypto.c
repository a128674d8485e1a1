/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  The delivery domain's small pieces of cryptography and encoding, done
 *	  with OpenSSL and PostgreSQL's own encoders:
 *
 *	  - personal link tokens derived from a tenant's link key with
 *		HMAC-SHA256, so that a message can be rendered (and rendered again
 *		for a retry or a reminder) without the token ever being stored:
 *		the database keeps only the token's SHA-256 (request_target) and the
 *		key (link_key, readable by the extension's owner only);
 *	  - webhook signatures: HMAC-SHA256 over "<timestamp>.<body>";
 *	  - RFC 2047 encoded-words for mail headers (UTF-8, base64).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/base64.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "dispatch/dispatch.h"
#include "requests/token.h"

/*
 * HMAC-SHA256 of data under key into out[32]; ERROR if OpenSSL fails.
 *
 * The HMAC implementation is fetched once per process: OpenSSL 3's one-shot
 * HMAC() looks it up on every call, which cost more than the hashing (about
 * 5 of 7 µs for a short input; the dispatcher computes one to three per
 * message).  The context, which holds the key, is per call.
 */
void
sc_hmac_sha256(const void *key, int keylen, const void *data, size_t len, uint8 *out)
{
	static EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx;
	OSSL_PARAM	params[2];
	size_t		outlen = 0;
	bool		ok;

	if (hmac == NULL && (hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not load OpenSSL's HMAC")));
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ctx = EVP_MAC_CTX_new(hmac);
	ok = ctx != NULL &&
		EVP_MAC_init(ctx, key, (size_t) keylen, params) == 1 &&
		EVP_MAC_update(ctx, data, len) == 1 &&
		EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
	EVP_MAC_CTX_free(ctx);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute HMAC-SHA256")));
}

/* lower-case hex of 32 bytes into out[65] */
void
sc_hex32(const uint8 *raw, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++)
	{
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[64] = '\0';
}

/*
 * The MAC of a request target's personal token at a generation:
 * HMAC-SHA256(key, "sc-link-v1:tenant:request:site:generation") into out[32].
 * A new generation (issue_token) gives an unrelated token.
 */
void
sc_link_mac(const uint8 *key, int keylen, int64 tenant_id, int64 request_id, int64 site_id, int32 gen, uint8 *out)
{
	char		msg[128];
	int			n;

	if (keylen < 32)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a link key has at least 32 bytes")));
	n = snprintf(msg, sizeof(msg), "sc-link-v1:" INT64_FORMAT ":" INT64_FORMAT ":" INT64_FORMAT ":%d",
				 tenant_id, request_id, site_id, gen);
	sc_hmac_sha256(key, keylen, msg, n, out);
}

static void
link_mac(bytea *key, int64 tenant_id, int64 request_id, int64 site_id, int32 gen, uint8 *out)
{
	sc_link_mac((const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), tenant_id, request_id, site_id, gen, out);
}

/*
 * _link_token(key bytea, tenant_id, request_id, site_id, generation) → text
 *
 * The personal token of a request target: base64url of its MAC.
 */
PG_FUNCTION_INFO_V1(sc_link_token);
Datum
sc_link_token(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_TEXT_P(sc_link_token_text((const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
										PG_GETARG_INT64(1), PG_GETARG_INT64(2), PG_GETARG_INT64(3),
										PG_GETARG_INT32(4)));
}

/* the token of a request target at a generation under the key, as text (the MAC zeroed) */
text *
sc_link_token_text(const uint8 *key, int keylen, int64 tenant_id, int64 request_id, int64 site_id, int32 gen)
{
	uint8		mac[32];
	char		out[TOKEN_CHARS + 1];

	sc_link_mac(key, keylen, tenant_id, request_id, site_id, gen, mac);
	token_encode(mac, out);
	explicit_bzero(mac, sizeof(mac));
	return cstring_to_text(out);
}

/*
 * _link(key bytea, tenant_id, request_id, site_id, generation) → text
 *
 * What a message's link carries (0.9.0): the token, then the target it
 * names, "<token>.<tenant>.<request>.<site>" (src/requests/token.h), so
 * that a target's first link needs no stored hash to be checked.
 */
PG_FUNCTION_INFO_V1(sc_link);
Datum
sc_link(PG_FUNCTION_ARGS)
{
	int64		tenant_id = PG_GETARG_INT64(1);
	int64		request_id = PG_GETARG_INT64(2);
	int64		site_id = PG_GETARG_INT64(3);
	uint8		mac[32];
	char		out[TOKEN_MAX_CHARS + 1];

	if (tenant_id <= 0 || request_id <= 0 || site_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a link names a target by positive ids")));
	link_mac(PG_GETARG_BYTEA_PP(0), tenant_id, request_id, site_id, PG_GETARG_INT32(4), mac);
	token_encode(mac, out);
	explicit_bzero(mac, sizeof(mac));
	snprintf(out + TOKEN_CHARS, sizeof(out) - TOKEN_CHARS, "." INT64_FORMAT "." INT64_FORMAT "." INT64_FORMAT,
			 tenant_id, request_id, site_id);
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/*
 * _link_token_matches(key bytea, tenant_id, request_id, site_id, generation,
 * token text) → boolean
 *
 * Whether the token (its 43 characters; a first link's names after them are
 * ignored) is the target's at that generation.  Compared in constant time.
 */
PG_FUNCTION_INFO_V1(sc_link_token_matches);
Datum
sc_link_token_matches(PG_FUNCTION_ARGS)
{
	bytea	   *key = PG_GETARG_BYTEA_PP(0);
	text	   *token = PG_GETARG_TEXT_PP(5);
	const char *t = VARDATA_ANY(token);
	int			len = VARSIZE_ANY_EXHDR(token);
	TokenLocator loc;

	if (len != TOKEN_CHARS && !token_locator(t, len, &loc))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(sc_link_token_equals((const uint8 *) VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
										PG_GETARG_INT64(1), PG_GETARG_INT64(2), PG_GETARG_INT64(3),
										PG_GETARG_INT32(4), t, len));
}

/*
 * Whether a token (its first 43 characters) is the target's at a
 * generation under the key; compared in constant time, the MAC zeroed.
 */
bool
sc_link_token_equals(const uint8 *key, int keylen, int64 tenant_id, int64 request_id, int64 site_id,
					 int32 gen, const char *token, int len)
{
	uint8		mac[32];
	char		expected[TOKEN_CHARS + 1];
	bool		same;

	sc_link_mac(key, keylen, tenant_id, request_id, site_id, gen, mac);
	token_encode(mac, expected);
	same = len >= TOKEN_CHARS && CRYPTO_memcmp(expected, token, TOKEN_CHARS) == 0;
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(expected, sizeof(expected));
	return same;
}

/* _random_bytes(n) → bytea of n bytes from pg_strong_random */
PG_FUNCTION_INFO_V1(sc_random_bytes);
Datum
sc_random_bytes(PG_FUNCTION_ARGS)
{
	int32		n = PG_GETARG_INT32(0);
	bytea	   *b;

	if (n < 1 || n > 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_random_bytes takes 1 to 1024 bytes, not %d", n)));
	b = palloc(VARHDRSZ + n);
	SET_VARSIZE(b, VARHDRSZ + n);
	if (!pg_strong_random(VARDATA(b), n))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	PG_RETURN_BYTEA_P(b);
}

/*
 * webhook_signature(secret text, timestamp bigint, body text) → text
 *
 * "v1=" and the hex HMAC-SHA256 of "<timestamp>.<body>" under the channel's
 * secret: what the dispatcher sends in X-Status-Checker-Signature, public
 * so that receivers written in SQL (and our tests) can check it.
 */
PG_FUNCTION_INFO_V1(sc_webhook_signature);
Datum
sc_webhook_signature(PG_FUNCTION_ARGS)
{
	text	   *secret = PG_GETARG_TEXT_PP(0);
	int64		ts = PG_GETARG_INT64(1);
	text	   *body = PG_GETARG_TEXT_PP(2);
	char		hex[65];

	sc_webhook_sign(VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret), ts,
					VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body), hex);
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("v1=%s", hex)));
}

/* hex HMAC-SHA256 of "<ts>.<body>" under secret into hex[65] */
void
sc_webhook_sign(const char *secret, int secretlen, int64 ts,
				const char *body, size_t bodylen, char *hex)
{
	StringInfoData buf;
	uint8		mac[32];

	initStringInfo(&buf);
	appendStringInfo(&buf, INT64_FORMAT ".", ts);
	appendBinaryStringInfo(&buf, body, bodylen);
	sc_hmac_sha256(secret, secretlen, buf.data, buf.len, mac);
	sc_hex32(mac, hex);
	pfree(buf.data);
}

/*
 * sc_mime_header_append(out, value), and _mime_header(text) → text:
 *
 * A header value as RFC 2047 encoded-words ("=?UTF-8?B?...?="), each at
 * most 75 characters and never splitting a character, joined by folding
 * whitespace; pure printable ASCII is returned as it is.
 */
void
sc_mime_header_append(StringInfo out, const char *s, int len)
{
	bool		ascii = true;
	int			pos = 0;
	bool		first = true;

	for (int i = 0; i < len; i++)
		if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e)
			ascii = false;
	if (ascii && len <= 900)
	{
		appendBinaryStringInfo(out, s, len);
		return;
	}
	while (pos < len)
	{
		/* 45 bytes encode to 60 base64 characters: 12 + 60 <= 75 */
		int			chunk = 0;
		char		enc[64];
		int			n;

		while (pos + chunk < len)
		{
			int			cl = pg_utf_mblen((const unsigned char *) s + pos + chunk);

			if (chunk + cl > 45)
				break;
			chunk += cl;
		}
		if (chunk == 0)			/* cannot happen with valid UTF-8 */
			chunk = Min(len - pos, 45);
		n = pg_b64_encode(s + pos, chunk, enc, sizeof(enc));
		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not base64-encode a mail header")));
		if (!first)
			appendStringInfoString(out, "\r\n ");
		first = false;
		appendStringInfoString(out, "=?UTF-8?B?");
		appendBinaryStringInfo(out, enc, n);
		appendStringInfoString(out, "?=");
		pos += chunk;
	}
}

PG_FUNCTION_INFO_V1(sc_mime_header);
Datum
sc_mime_header(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	StringInfoData out;

	initStringInfo(&out);
	sc_mime_header_append(&out, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
