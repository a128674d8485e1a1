/* token.h — personal report tokens (see token.c). */
#ifndef STATUS_CHECKER_TOKEN_H
#define STATUS_CHECKER_TOKEN_H

#include "postgres.h"

#define TOKEN_BYTES 32
#define TOKEN_CHARS 43
#define TOKEN_HASH_BYTES 32

/*
 * A first link (0.9.0) names its target after the MAC:
 * "<43 characters>.<tenant_id>.<request_id>.<site_id>", each id in canonical
 * decimal.  Only the 43 characters are the token (hashed, compared); the
 * rest says where to check them while no token was issued for the target.
 */
#define TOKEN_MAX_CHARS (TOKEN_CHARS + 3 * 20)

typedef struct TokenLocator
{
	int64		tenant_id;
	int64		request_id;
	int64		site_id;
} TokenLocator;

/* 32 raw bytes as 43 characters of unpadded base64url into out[44] */
extern void token_encode(const uint8 *raw, char *out);
/* SHA-256 of a well-formed token's 43 characters into out; false if it cannot be a token */
extern bool token_hash(const char *s, int len, uint8 *out);
/* the target a first link names; false if the text names none */
extern bool token_locator(const char *s, int len, TokenLocator *loc);

#endif
