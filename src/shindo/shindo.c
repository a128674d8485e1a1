/*-------------------------------------------------------------------------
 *
 * shindo.c
 *	  The `shindo` base type: the JMA seismic intensity scale (震度階級).
 *
 * Owns: text and binary I/O, comparison and hashing support, the helper
 * conversions from P2PQuake scale codes and from instrumental intensity,
 * and the ja/en labels.
 *
 * Internally a shindo is its ordinal 0..9 stored in an int16 (pass by
 * value), so ordering is plain integer ordering:
 *
 *	 ordinal  0  1  2  3  4  5   6   7   8   9
 *	 class    0  1  2  3  4  5-  5+  6-  6+  7
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "access/hash.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "shindo/shindo.h"

#define DatumGetShindo(d)	((int16) DatumGetInt16(d))
#define ShindoGetDatum(s)	Int16GetDatum(s)
#define PG_GETARG_SHINDO(n) DatumGetShindo(PG_GETARG_DATUM(n))
#define PG_RETURN_SHINDO(s) return ShindoGetDatum(s)

static const char *const shindo_label_ja[SHINDO_NCLASSES] = {
	"震度0", "震度1", "震度2", "震度3", "震度4",
	"震度5弱", "震度5強", "震度6弱", "震度6強", "震度7"
};

static const char *const shindo_label_en[SHINDO_NCLASSES] = {
	"Shindo 0", "Shindo 1", "Shindo 2", "Shindo 3", "Shindo 4",
	"Shindo 5 Lower", "Shindo 5 Upper", "Shindo 6 Lower", "Shindo 6 Upper",
	"Shindo 7"
};


PG_FUNCTION_INFO_V1(shindo_in);
Datum
shindo_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int16		s = shindo_parse(str);

	if (s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type shindo: \"%s\"", str),
				 errdetail("A shindo is one of 0, 1, 2, 3, 4, 5-, 5+, 6-, 6+, 7."),
				 errhint("Also accepted: 5弱/5強/6弱/6強, full-width digits, a 震度 prefix, \"5 lower\"/\"5 upper\", or an instrumental intensity such as 5.3. A bare 5 or 6 is ambiguous.")));
	PG_RETURN_SHINDO(s);
}

PG_FUNCTION_INFO_V1(shindo_out);
Datum
shindo_out(PG_FUNCTION_ARGS)
{
	int16		s = PG_GETARG_SHINDO(0);

	PG_RETURN_CSTRING(pstrdup(shindo_to_cstring(s)));
}

PG_FUNCTION_INFO_V1(shindo_recv);
Datum
shindo_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int16		s = (int16) pq_getmsgint(buf, sizeof(int16));

	if (s < 0 || s >= SHINDO_NCLASSES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary value for type shindo: %d", s)));
	PG_RETURN_SHINDO(s);
}

PG_FUNCTION_INFO_V1(shindo_send);
Datum
shindo_send(PG_FUNCTION_ARGS)
{
	int16		s = PG_GETARG_SHINDO(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, s);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* comparison support */
#define SHINDO_CMP_FN(name, op) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(PG_GETARG_SHINDO(0) op PG_GETARG_SHINDO(1)); \
}

SHINDO_CMP_FN(shindo_eq, ==)
SHINDO_CMP_FN(shindo_ne, !=)
SHINDO_CMP_FN(shindo_lt, <)
SHINDO_CMP_FN(shindo_le, <=)
SHINDO_CMP_FN(shindo_gt, >)
SHINDO_CMP_FN(shindo_ge, >=)

PG_FUNCTION_INFO_V1(shindo_cmp);
Datum
shindo_cmp(PG_FUNCTION_ARGS)
{
	int16		a = PG_GETARG_SHINDO(0);
	int16		b = PG_GETARG_SHINDO(1);

	PG_RETURN_INT32((a > b) - (a < b));
}

PG_FUNCTION_INFO_V1(shindo_hash);
Datum
shindo_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32((uint32) PG_GETARG_SHINDO(0));
}

PG_FUNCTION_INFO_V1(shindo_hash_extended);
Datum
shindo_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_uint32_extended((uint32) PG_GETARG_SHINDO(0),
								PG_GETARG_INT64(1));
}

PG_FUNCTION_INFO_V1(shindo_larger);
Datum
shindo_larger(PG_FUNCTION_ARGS)
{
	int16		a = PG_GETARG_SHINDO(0);
	int16		b = PG_GETARG_SHINDO(1);

	PG_RETURN_SHINDO(a > b ? a : b);
}

PG_FUNCTION_INFO_V1(shindo_smaller);
Datum
shindo_smaller(PG_FUNCTION_ARGS)
{
	int16		a = PG_GETARG_SHINDO(0);
	int16		b = PG_GETARG_SHINDO(1);

	PG_RETURN_SHINDO(a < b ? a : b);
}

PG_FUNCTION_INFO_V1(shindo_label);
Datum
shindo_label(PG_FUNCTION_ARGS)
{
	int16		s = PG_GETARG_SHINDO(0);
	char	   *lang = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (strcmp(lang, "ja") == 0)
		PG_RETURN_TEXT_P(cstring_to_text(shindo_label_ja[s]));
	if (strcmp(lang, "en") == 0)
		PG_RETURN_TEXT_P(cstring_to_text(shindo_label_en[s]));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported label language: \"%s\"", lang),
			 errhint("Use 'ja' or 'en'.")));
	PG_RETURN_NULL();			/* keep compiler quiet */
}

/*
 * P2PQuake scale codes: 10,20,30,40 → 1..4, 45 → 5-, 46 → 5- ("5弱以上と
 * 推定されるが震度情報を入手していない"), 50 → 5+, 55 → 6-, 60 → 6+,
 * 70 → 7; 0 → 0.  -1 ("no intensity data") gives NULL.
 */
PG_FUNCTION_INFO_V1(shindo_from_p2pquake);
Datum
shindo_from_p2pquake(PG_FUNCTION_ARGS)
{
	int32		scale = PG_GETARG_INT32(0);
	int16		s;

	switch (scale)
	{
		case -1:
			PG_RETURN_NULL();
		case 0:
			s = 0;
			break;
		case 10:
			s = 1;
			break;
		case 20:
			s = 2;
			break;
		case 30:
			s = 3;
			break;
		case 40:
			s = 4;
			break;
		case 45:
		case 46:
			s = 5;
			break;
		case 50:
			s = 6;
			break;
		case 55:
			s = 7;
			break;
		case 60:
			s = 8;
			break;
		case 70:
			s = 9;
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid P2PQuake scale: %d", scale),
					 errdetail("P2PQuake scales are 10, 20, 30, 40, 45, 46, 50, 55, 60, 70 (and -1 for unknown).")));
			s = 0;				/* keep compiler quiet */
	}
	PG_RETURN_SHINDO(s);
}

PG_FUNCTION_INFO_V1(shindo_from_instrumental);
Datum
shindo_from_instrumental(PG_FUNCTION_ARGS)
{
	Numeric		num = PG_GETARG_NUMERIC(0);
	float8		v;
	int64		hundredths;

	if (numeric_is_nan(num))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("instrumental intensity must be a number, not NaN")));
	v = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(num)));
	if (!(v >= -3.0 && v <= 8.0))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("instrumental intensity %s is out of range",
						DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(num)))),
				 errdetail("JMA instrumental intensities lie between -3.0 and 8.0.")));
	/*
	 * JMA's rule on the exact decimal (no binary fraction): rounded at the
	 * third decimal (numeric's round, half away from zero: half up for the
	 * positive values where the classes lie), then truncated at the second.
	 */
	hundredths = DatumGetInt64(DirectFunctionCall1(numeric_int8,
												   DirectFunctionCall2(numeric_mul,
																	   DirectFunctionCall2(numeric_round, NumericGetDatum(num),
																						   Int32GetDatum(2)),
																	   NumericGetDatum(int64_to_numeric(100)))));
	PG_RETURN_SHINDO(shindo_from_hundredths((long) hundredths));
}

PG_FUNCTION_INFO_V1(shindo_ordinal);
Datum
shindo_ordinal(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) PG_GETARG_SHINDO(0));
}
