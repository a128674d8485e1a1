/* token.h — personal report tokens (see token.c). */
#ifndef STATUS_CHECKER_TOKEN_H
#define STATUS_CHECKER_TOKEN_H

#include "postgres.h"

#define TOKEN_BYTES 32
#define TOKEN_CHARS 43
#define TOKEN_HASH_BYTES 32

/* SHA-256 of a well-formed token into out; false if it cannot be a token */
/* 32 raw bytes as 43 characters of unpadded base64url into out[44] */
extern void token_encode(const uint8 *raw, char *out);
extern bool token_hash(const char *s, int len, uint8 *out);

#endif
