/*-------------------------------------------------------------------------
 *
 * token.c
 *	  Personal report tokens.
 *
 * A token is 32 bytes (256 bits) written as 43 characters of unpadded
 * base64url: since 0.3.0 an HMAC (src/dispatch/crypto.c), before that
 * random.  Only its SHA-256 is stored.  No function here ever puts a token
 * into an error message.
 *
 * Since 0.9.0 the link a target's first message carries names the target
 * after the token ("<token>.<tenant>.<request>.<site>", token.h): the
 * dispatcher no longer stores the token's hash when it sends the link, and
 * the first report checks the token against its target by recomputing it
 * (src/requests/tokens.sql, _first_link_target).  The names are not a
 * secret and grant nothing; the 43 characters before them are the token.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "requests/token.h"

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 32 raw bytes as 43 characters of unpadded base64url into out[44] */
void
token_encode(const uint8 *raw, char *out)
{
	int			i,
				o = 0;

	/* 32 bytes = 10 groups of 3 + 2 bytes: 40 + 3 characters */
	for (i = 0; i < TOKEN_BYTES; i += 3)
	{
		uint32		v = ((uint32) raw[i] << 16) |
			((uint32) (i + 1 < TOKEN_BYTES ? raw[i + 1] : 0) << 8) |
			(uint32) (i + 2 < TOKEN_BYTES ? raw[i + 2] : 0);

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < TOKEN_BYTES)
			out[o++] = b64url[(v >> 6) & 63];
		if (i + 2 < TOKEN_BYTES)
			out[o++] = b64url[v & 63];
	}
	out[o] = '\0';
	Assert(o == TOKEN_CHARS);
}

/*
 * One id of a locator: canonical decimal (no sign, no leading zero) of a
 * positive int64, from s up to the next '.' or end; advances *pos.
 */
static bool
locator_id(const char *s, int len, int *pos, int64 *out)
{
	int			i = *pos;
	uint64		v = 0;

	if (i >= len || s[i] < '1' || s[i] > '9')
		return false;
	for (; i < len && s[i] != '.'; i++)
	{
		if (s[i] < '0' || s[i] > '9' || v > (PG_INT64_MAX - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*pos = i;
	*out = (int64) v;
	return true;
}

/*
 * The target a first link names after its 43 characters (token.h);
 * false if the text has no such part, or anything else after the token.
 */
bool
token_locator(const char *s, int len, TokenLocator *loc)
{
	int			pos = TOKEN_CHARS;

	if (len <= TOKEN_CHARS || len > TOKEN_MAX_CHARS || s[pos] != '.')
		return false;
	pos++;
	if (!locator_id(s, len, &pos, &loc->tenant_id) || pos >= len || s[pos++] != '.' ||
		!locator_id(s, len, &pos, &loc->request_id) || pos >= len || s[pos++] != '.' ||
		!locator_id(s, len, &pos, &loc->site_id))
		return false;
	return pos == len;
}

/*
 * SHA-256 of a token into out[TOKEN_HASH_BYTES]: of its 43 characters,
 * without the target a first link names.  Returns false for text that
 * cannot be a token (wrong length or alphabet, a malformed locator).
 */
bool
token_hash(const char *s, int len, uint8 *out)
{
	pg_cryptohash_ctx *ctx;
	TokenLocator loc;
	int			i;

	if (len != TOKEN_CHARS && !token_locator(s, len, &loc))
		return false;
	len = TOKEN_CHARS;
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) s, len) < 0 ||
		pg_cryptohash_final(ctx, out, TOKEN_HASH_BYTES) < 0)
	{
		pg_cryptohash_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute SHA-256 of a token")));
	}
	pg_cryptohash_free(ctx);
	return true;
}

/* _token_hash(text): SQL access to token_hash(); NULL for a malformed token */
PG_FUNCTION_INFO_V1(sc_token_hash);
Datum
sc_token_hash(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	bytea	   *result = palloc(VARHDRSZ + TOKEN_HASH_BYTES);

	SET_VARSIZE(result, VARHDRSZ + TOKEN_HASH_BYTES);
	if (!token_hash(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), (uint8 *) VARDATA(result)))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(result);
}

/*
 * _token_locator(token) → (tenant_id, request_id, site_id): the target a
 * first link names; NULLs if the text is not a first link.
 */
PG_FUNCTION_INFO_V1(sc_token_locator);
Datum
sc_token_locator(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {true, true, true};
	TokenLocator loc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (token_locator(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &loc))
	{
		values[0] = Int64GetDatum(loc.tenant_id);
		values[1] = Int64GetDatum(loc.request_id);
		values[2] = Int64GetDatum(loc.site_id);
		nulls[0] = nulls[1] = nulls[2] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
