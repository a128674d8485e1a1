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

static const char *const shindo_canonical[SHINDO_NCLASSES] = {
	"0", "1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"
};

static const char *const shindo_label_ja[SHINDO_NCLASSES] = {
	"震度0", "震度1", "震度2", "震度3", "震度4",
	"震度5弱", "震度5強", "震度6弱", "震度6強", "震度7"
};

static const char *const shindo_label_en[SHINDO_NCLASSES] = {
	"Shindo 0", "Shindo 1", "Shindo 2", "Shindo 3", "Shindo 4",
	"Shindo 5 Lower", "Shindo 5 Upper", "Shindo 6 Lower", "Shindo 6 Upper",
	"Shindo 7"
};

const char *
shindo_to_cstring(int16_t s)
{
	Assert(s >= 0 && s < SHINDO_NCLASSES);
	return shindo_canonical[s];
}

/*
 * Map an instrumental intensity (計測震度), already rounded to one decimal
 * as JMA publishes it, to its class.  Boundaries are inclusive below:
 * 0.5 → 1, 1.5 → 2, 2.5 → 3, 3.5 → 4, 4.5 → 5-, 5.0 → 5+, 5.5 → 6-,
 * 6.0 → 6+, 6.5 → 7.  The value is compared in tenths to stay exact.
 */
int16_t
shindo_from_tenths(int tenths)
{
	static const int lower[SHINDO_NCLASSES] = {
		INT_MIN, 5, 15, 25, 35, 45, 50, 55, 60, 65
	};
	int16		s;

	for (s = SHINDO_NCLASSES - 1; s > 0; s--)
		if (tenths >= lower[s])
			return s;
	return 0;
}

/*
 * Copy `in` to a normalised ASCII-ish buffer: full-width digits and signs
 * become ASCII, "弱"/"強" become "-"/"+", ASCII letters are lower-cased,
 * white space (ASCII and the ideographic space) is dropped.  Returns false
 * if the buffer would overflow (the input is then certainly invalid).
 */
static bool
shindo_normalise(const char *in, char *out, size_t outlen)
{
	const unsigned char *p = (const unsigned char *) in;
	size_t		n = 0;

#define EMIT(c) do { if (n + 1 >= outlen) return false; out[n++] = (c); } while (0)
	while (*p)
	{
		/* full-width digits U+FF10..U+FF19: EF BC 90..99 */
		if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99)
		{
			EMIT('0' + (p[2] - 0x90));
			p += 3;
		}
		/* full-width plus U+FF0B (EF BC 8B), hyphen-minus U+FF0D (EF BC 8D), full stop U+FF0E */
		else if (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8B)
		{
			EMIT('+');
			p += 3;
		}
		else if (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8D)
		{
			EMIT('-');
			p += 3;
		}
		else if (p[0] == 0xEF && p[1] == 0xBC && p[2] == 0x8E)
		{
			EMIT('.');
			p += 3;
		}
		/* minus sign U+2212: E2 88 92 */
		else if (p[0] == 0xE2 && p[1] == 0x88 && p[2] == 0x92)
		{
			EMIT('-');
			p += 3;
		}
		/* 弱 U+5F31: E5 BC B1 */
		else if (p[0] == 0xE5 && p[1] == 0xBC && p[2] == 0xB1)
		{
			EMIT('-');
			p += 3;
		}
		/* 強 U+5F37: E5 BC B7 */
		else if (p[0] == 0xE5 && p[1] == 0xBC && p[2] == 0xB7)
		{
			EMIT('+');
			p += 3;
		}
		/* 震度 U+9707 U+5EA6: E9 9C 87 E5 BA A6 — only as a prefix */
		else if (n == 0 && p[0] == 0xE9 && p[1] == 0x9C && p[2] == 0x87 &&
				 p[3] == 0xE5 && p[4] == 0xBA && p[5] == 0xA6)
			p += 6;
		/* ideographic space U+3000: E3 80 80 */
		else if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
			p += 3;
		else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		else
		{
			EMIT((char) (*p < 0x80 ? tolower(*p) : *p));
			p++;
		}
	}
	out[n] = '\0';
#undef EMIT
	return true;
}

/*
 * Parse a shindo from text.  Returns the ordinal, or -1 if the text is not
 * a shindo.  Accepted (after normalisation): "0".."4", "7", "5-", "5+",
 * "6-", "6+" (also from 5弱/５強 …), "5lower"/"5upper" (any case and
 * spacing), an optional "shindo" prefix, and a decimal instrumental
 * intensity such as "5.3" (one or two decimals, -3.0 .. 8.0).  A bare
 * "5" or "6" is rejected: it is ambiguous between 弱 and 強.
 */
int16_t
shindo_parse(const char *text)
{
	char		buf[64];
	char	   *s = buf;

	if (!shindo_normalise(text, buf, sizeof(buf)))
		return -1;
	if (strncmp(s, "shindo", 6) == 0)
		s += 6;
	if (*s == '\0')
		return -1;

	/* instrumental intensity: [-]d.d or [-]d.dd */
	if (strchr(s, '.') != NULL)
	{
		const char *p = s;
		bool		neg = false;
		int			whole = 0;
		int			hundredths = 0;
		int			ndec = 0;
		int			tenths;

		if (*p == '-')
		{
			neg = true;
			p++;
		}
		if (!isdigit((unsigned char) *p))
			return -1;
		while (isdigit((unsigned char) *p))
		{
			whole = whole * 10 + (*p - '0');
			if (whole > 100)
				return -1;
			p++;
		}
		if (*p++ != '.')
			return -1;
		while (isdigit((unsigned char) *p) && ndec < 2)
		{
			hundredths += (*p - '0') * (ndec == 0 ? 10 : 1);
			ndec++;
			p++;
		}
		if (ndec == 0 || *p != '\0')
			return -1;
		hundredths += whole * 100;
		if (neg)
			hundredths = -hundredths;
		if (hundredths < -300 || hundredths > 800)
			return -1;
		/* JMA rounds the computed value to one decimal (half up) */
		tenths = (int) floor((hundredths + 5) / 10.0);
		return shindo_from_tenths(tenths);
	}

	if (s[0] >= '0' && s[0] <= '7')
	{
		int			d = s[0] - '0';
		const char *rest = s + 1;

		if (*rest == '\0')
		{
			if (d == 5 || d == 6)
				return -1;		/* ambiguous: 5弱 or 5強? */
			return d == 7 ? 9 : d;
		}
		if (d != 5 && d != 6)
			return -1;
		if (strcmp(rest, "-") == 0 || strcmp(rest, "lower") == 0)
			return d == 5 ? 5 : 7;
		if (strcmp(rest, "+") == 0 || strcmp(rest, "upper") == 0)
			return d == 5 ? 6 : 8;
	}
	return -1;
}

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
	/* JMA publishes the value rounded to one decimal (half up) */
	PG_RETURN_SHINDO(shindo_from_tenths((int) floor(v * 10.0 + 0.5 + 1e-9)));
}

PG_FUNCTION_INFO_V1(shindo_ordinal);
Datum
shindo_ordinal(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) PG_GETARG_SHINDO(0));
}
