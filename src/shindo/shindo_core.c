/*-------------------------------------------------------------------------
 *
 * shindo_core.c
 *	  Server-independent conversions of the JMA seismic intensity scale:
 *	  text → ordinal, instrumental intensity → class, ordinal → text.
 *
 * No PostgreSQL headers: the feed parsers and the fuzz harness link this
 * file directly.  The SQL type itself lives in shindo.c.
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "shindo/shindo.h"

static const char *const shindo_canonical[SHINDO_NCLASSES] = {
	"0", "1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"
};

const char *
shindo_to_cstring(int16_t s)
{
	if (s < 0 || s >= SHINDO_NCLASSES)
		return "?";
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
	int16_t		s;

	for (s = SHINDO_NCLASSES - 1; s > 0; s--)
		if (tenths >= lower[s])
			return s;
	return 0;
}

/*
 * Map an instrumental intensity rounded to hundredths (449 = 4.49) to its
 * class by JMA's definition of 計測震度: the computed value, rounded at the
 * third decimal, is truncated at the second, so 4.49 is 4.4 (震度4) and
 * never 4.5 (震度5弱).  Truncation goes toward minus infinity, which keeps
 * the negative values (all 震度0) on the same rule.
 */
int16_t
shindo_from_hundredths(long hundredths)
{
	long		tenths;

	tenths = hundredths >= 0 ? hundredths / 10 : -((-hundredths + 9) / 10);
	if (tenths < INT_MIN / 2)
		tenths = INT_MIN / 2;
	if (tenths > INT_MAX / 2)
		tenths = INT_MAX / 2;
	return shindo_from_tenths((int) tenths);
}

/*
 * The same from a computed value in millionths (4494000 = 4.494): first
 * rounded half up at the third decimal (4.494 → 4.49, 4.495 → 4.50).
 */
int16_t
shindo_from_micros(long micros)
{
	long		hundredths;

	if (micros >= 0)
		hundredths = (micros + 5000) / 10000;
	else
		hundredths = -((-micros - 5000 + 9999) / 10000);
	return shindo_from_hundredths(hundredths);
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
 * intensity such as "5.3" (one to six decimals, -3.0 .. 8.0, classed by
 * JMA's rule: shindo_from_micros).  A bare
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

	/* instrumental intensity: [-]d.d to [-]d.dddddd */
	if (strchr(s, '.') != NULL)
	{
		const char *p = s;
		bool		neg = false;
		long		whole = 0;
		long		micros = 0;
		long		scale = 100000;
		int			ndec = 0;

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
		while (isdigit((unsigned char) *p) && ndec < 6)
		{
			micros += (*p - '0') * scale;
			scale /= 10;
			ndec++;
			p++;
		}
		if (ndec == 0 || *p != '\0')
			return -1;
		micros += whole * 1000000;
		if (neg)
			micros = -micros;
		if (micros < -3000000 || micros > 8000000)
			return -1;
		return shindo_from_micros(micros);
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
