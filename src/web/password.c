/*-------------------------------------------------------------------------
 *
 * password.c
 *	  Dashboard passwords: argon2id (libargon2, the reference
 *	  implementation), stored in the PHC string format
 *	  "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>".
 *
 * The cost is OWASP's recommended minimum for argon2id (19 MiB, 2
 * iterations, 1 lane): about 20 ms per check on one core, and 19 MiB of
 * memory for that time — dear for whoever tries passwords by the million,
 * cheap for one sign-in.  The salt is 16 bytes from pg_strong_random.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <argon2.h>

#include "fmgr.h"
#include "utils/builtins.h"

#define PW_T_COST 2
#define PW_M_COST 19456			/* KiB */
#define PW_LANES 1
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32

PG_FUNCTION_INFO_V1(sc_password_hash);
Datum
sc_password_hash(PG_FUNCTION_ARGS)
{
	text	   *pw = PG_GETARG_TEXT_PP(0);
	uint8		salt[PW_SALT_LEN];
	size_t		enclen = argon2_encodedlen(PW_T_COST, PW_M_COST, PW_LANES, PW_SALT_LEN, PW_HASH_LEN, Argon2_id);
	char	   *encoded = palloc(enclen);
	int			rc;

	if (!pg_strong_random(salt, sizeof(salt)))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a random salt")));
	rc = argon2id_hash_encoded(PW_T_COST, PW_M_COST, PW_LANES,
							   VARDATA_ANY(pw), VARSIZE_ANY_EXHDR(pw), salt, sizeof(salt),
							   PW_HASH_LEN, encoded, enclen);
	explicit_bzero(salt, sizeof(salt));
	if (rc != ARGON2_OK)
		ereport(ERROR,
				(errcode(rc == ARGON2_MEMORY_ALLOCATION_ERROR ? ERRCODE_OUT_OF_MEMORY : ERRCODE_INTERNAL_ERROR),
				 errmsg("could not hash the password: %s", argon2_error_message(rc))));
	PG_RETURN_TEXT_P(cstring_to_text(encoded));
}

/* false for a wrong password and for a hash that is not argon2id's */
PG_FUNCTION_INFO_V1(sc_password_verify);
Datum
sc_password_verify(PG_FUNCTION_ARGS)
{
	char	   *encoded = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *pw = PG_GETARG_TEXT_PP(1);
	int			rc;

	rc = argon2id_verify(encoded, VARDATA_ANY(pw), VARSIZE_ANY_EXHDR(pw));
	if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory checking a password")));
	PG_RETURN_BOOL(rc == ARGON2_OK);
}
