/*-------------------------------------------------------------------------
 *
 * feed_common.c
 *	  Helpers shared by the feed parsers: failures, JSON setters, time
 *	  stamps and UTF-8.  The parsers call these; these call no parser
 *	  (picking the parser for a source is feed_parse.c's).
 *
 * Server-independent (see feed_parse.h).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "feeds/feed_parse.h"
#include "shindo/shindo.h"

void
feed_fail(FeedResult *res, FeedError code, const char *fmt,...)
{
	va_list		ap;

	if (res->code != FEED_OK)
		return;					/* keep the first problem */
	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
}

/* set obj[key] = val as a string, or null when val is NULL or not UTF-8 */
int
feed_set_strn(json_t *obj, const char *key, const char *val, size_t n)
{
	json_t	   *v = val ? json_stringn(val, n) : NULL;

	return json_object_set_new(obj, key, v ? v : json_null());
}

int
feed_set_str(json_t *obj, const char *key, const char *val)
{
	return feed_set_strn(obj, key, val, val ? strlen(val) : 0);
}

int
feed_set_real(json_t *obj, const char *key, double val)
{
	json_t	   *v = isfinite(val) ? json_real(val) : NULL;

	return json_object_set_new(obj, key, v ? v : json_null());
}

int
feed_set_int(json_t *obj, const char *key, long long val)
{
	return json_object_set_new(obj, key, json_integer(val));
}

int
feed_set_shindo(json_t *obj, const char *key, int ordinal)
{
	if (ordinal < 0 || ordinal >= SHINDO_NCLASSES)
		return json_object_set_new(obj, key, json_null());
	return json_object_set_new(obj, key, json_string(shindo_to_cstring((int16_t) ordinal)));
}

/*
 * An ISO 8601 timestamp with an explicit zone, as PostgreSQL's timestamptz
 * input accepts it: YYYY-MM-DDThh:mm[:ss[.f…]](Z|±hh:mm).  Returns 1 if so.
 */
int
feed_valid_timestamp(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd";
	size_t		i;

	if (s == NULL)
		return 0;
	for (i = 0; pat[i]; i++)
	{
		if (pat[i] == 'd' ? !isdigit((unsigned char) s[i]) : s[i] != pat[i])
			return 0;
	}
	s += i;
	if (s[0] == ':' && isdigit((unsigned char) s[1]) && isdigit((unsigned char) s[2]))
	{
		s += 3;
		if (*s == '.')
		{
			s++;
			if (!isdigit((unsigned char) *s))
				return 0;
			while (isdigit((unsigned char) *s))
				s++;
		}
	}
	if (strcmp(s, "Z") == 0)
		return 1;
	return (s[0] == '+' || s[0] == '-') &&
		isdigit((unsigned char) s[1]) && isdigit((unsigned char) s[2]) &&
		s[3] == ':' && isdigit((unsigned char) s[4]) && isdigit((unsigned char) s[5]) &&
		s[6] == '\0';
}

/* USGS: milliseconds since the epoch (UTC) → "YYYY-MM-DDThh:mm:ss.fffZ" */
int
feed_epoch_ms_to_iso(double ms, char *buf, size_t buflen)
{
	time_t		secs;
	struct tm	tm;
	long		frac;

	if (!isfinite(ms) || ms < 0 || ms > 32503680000000.0)	/* year 3000 */
		return 0;
	secs = (time_t) (ms / 1000.0);
	frac = (long) (ms - (double) secs * 1000.0);
	if (gmtime_r(&secs, &tm) == NULL)
		return 0;
	snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
	return 1;
}

/*
 * P2PQuake: JST wall clock "YYYY/MM/DD HH:MM[:SS[.f…]]" → ISO 8601 with
 * +09:00.  Returns 1 on success.
 */
int
feed_jst_to_iso(const char *in, char *buf, size_t buflen)
{
	static const char pat[] = "dddd/dd/dd dd:dd";
	char		tmp[40];
	size_t		i;

	if (in == NULL || strlen(in) >= 30)
		return 0;
	for (i = 0; pat[i]; i++)
	{
		if (pat[i] == 'd' ? !isdigit((unsigned char) in[i]) : in[i] != pat[i])
			return 0;
		tmp[i] = (pat[i] == '/') ? '-' : (pat[i] == ' ' ? 'T' : in[i]);
	}
	strcpy(tmp + i, in + i);
	if ((size_t) snprintf(buf, buflen, "%s+09:00", tmp) >= buflen)
		return 0;
	return feed_valid_timestamp(buf);
}

/* RFC 3629 UTF-8 (no overlongs, no surrogates); offset of the first bad byte */
int
feed_utf8_valid(const char *s, size_t len, size_t *bad_offset)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = p[i];
		size_t		n;
		unsigned int cp;

		if (c < 0x80)
		{
			if (c == 0)
				goto bad;
			i++;
			continue;
		}
		else if (c >= 0xC2 && c <= 0xDF)
		{
			n = 1;
			cp = c & 0x1F;
		}
		else if (c >= 0xE0 && c <= 0xEF)
		{
			n = 2;
			cp = c & 0x0F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			n = 3;
			cp = c & 0x07;
		}
		else
			goto bad;
		for (size_t k = 1; k <= n; k++)
		{
			if (i + k >= len || (p[i + k] & 0xC0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
			(cp >= 0xD800 && cp <= 0xDFFF))
			goto bad;
		i += n + 1;
	}
	return 1;
bad:
	if (bad_offset)
		*bad_offset = i;
	return 0;
}
