/*-------------------------------------------------------------------------
 *
 * municipality.c
 *	  JMA municipality codes (市町村等コード) for sites.
 *
 * A JMA municipality code has 7 digits: the 5-digit local government code
 * (JIS X 0402 without its check digit) and a 2-digit part, normally "00"
 * ("01"/"02" for municipalities split across forecast areas).  The 6-digit
 * JIS code with its check digit is accepted too and converted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

/*
 * Normalise `in` into out[8].  Returns NULL on success, else the reason.
 */
static const char *
municipality_normalise(const char *in, char *out)
{
	size_t		len = strlen(in);
	int			pref;
	size_t		i;

	for (i = 0; i < len; i++)
		if (in[i] < '0' || in[i] > '9')
			return "must consist of digits only";
	if (len != 7 && len != 6)
		return "must have 7 digits (JMA code) or 6 digits (JIS code with check digit)";
	pref = (in[0] - '0') * 10 + (in[1] - '0');
	if (pref < 1 || pref > 47)
		return "does not start with a prefecture number 01-47";
	if (len == 6)
	{
		static const int weight[5] = {6, 5, 4, 3, 2};
		int			sum = 0;
		int			check;

		for (i = 0; i < 5; i++)
			sum += (in[i] - '0') * weight[i];
		check = (11 - sum % 11) % 10;
		if (check != in[5] - '0')
			return "has a wrong JIS check digit";
		memcpy(out, in, 5);
		out[5] = '0';
		out[6] = '0';
	}
	else
		memcpy(out, in, 7);
	out[7] = '\0';
	return NULL;
}

PG_FUNCTION_INFO_V1(sc_normalize_municipality_code);
Datum
sc_normalize_municipality_code(PG_FUNCTION_ARGS)
{
	char	   *in = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char		out[8];
	const char *problem = municipality_normalise(in, out);

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid municipality code \"%s\"", in),
				 errdetail("A municipality code %s.", problem),
				 errhint("Use JMA's 7-digit code, e.g. 1310100 for 千代田区, or the 6-digit JIS code 131016.")));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

PG_FUNCTION_INFO_V1(sc_municipality_code_problem);
Datum
sc_municipality_code_problem(PG_FUNCTION_ARGS)
{
	char	   *in = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char		out[8];
	const char *problem = municipality_normalise(in, out);

	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}
