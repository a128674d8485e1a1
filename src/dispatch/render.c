/*-------------------------------------------------------------------------
 *
 * render.c
 *	  Message templates: _fill(template, VARIADIC name, value, ...).
 *
 * One pass over the template: each {{name}} (spaces inside the braces
 * allowed) is replaced by its value; an unknown name is left as written
 * (set_message_template refuses unknown names, so only a built-in template
 * could have one).  A line that held placeholders and is left blank by
 * empty values is dropped, so that optional parts (the event summary of a
 * request made by hand, an empty message) leave no holes, and runs of
 * blank lines become one.  This runs for
 * every message the dispatcher claims, hence C.
 *
 * Since 0.9.0 the per-message part of rendering is here too
 * (_render_message): the site's variables filled into the subject and text
 * the claim prepared per request, then the mail's headers or the webhook's
 * body around them.  In SQL that projection cost ~45 µs of the
 * dispatcher's ~195 µs a message (docs/benchmarks.md).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "dispatch/dispatch.h"

/*
 * Fill template s[0..len) with npairs variables (names[i] of namelens[i]
 * bytes; values[i] a NUL-terminated string, or NULL: nothing) into out.
 */
static void
fill_template(const char *s, int len, int npairs, const char *const *names, const int *namelens,
			  const char *const *values, StringInfo out)
{
	int			line_start_out = out->len;
	bool		line_had_var = false;
	int			start = out->len;

	for (int i = 0; i < len;)
	{
		if (s[i] == '{' && i + 1 < len && s[i + 1] == '{')
		{
			const char *close = NULL;
			int			a = i + 2,
						b;

			for (int j = a; j + 1 < len; j++)
				if (s[j] == '}' && s[j + 1] == '}')
				{
					close = s + j;
					break;
				}
			if (close != NULL)
			{
				int			k;

				b = close - s;
				while (a < b && s[a] == ' ')
					a++;
				while (b > a && s[b - 1] == ' ')
					b--;
				for (k = 0; k < npairs; k++)
					if (namelens[k] == b - a && memcmp(names[k], s + a, b - a) == 0)
						break;
				if (k < npairs)
				{
					if (values[k])
						appendStringInfoString(out, values[k]);
					line_had_var = true;
					i = (close - s) + 2;
					continue;
				}
			}
		}
		if (s[i] == '\n')
		{
			bool		blank = true;

			for (int j = line_start_out; j < out->len; j++)
				if (out->data[j] != ' ' && out->data[j] != '\t' && out->data[j] != '\r')
					blank = false;
			if (line_had_var && blank)
			{
				/* drop the line the values left empty */
				out->len = line_start_out;
				out->data[out->len] = '\0';
				line_had_var = false;
				i++;
				continue;
			}
			appendStringInfoChar(out, '\n');
			line_start_out = out->len;
			line_had_var = false;
			i++;
			continue;
		}
		appendStringInfoChar(out, s[i]);
		i++;
	}
	/* runs of blank lines (around dropped lines) become one blank line */
	{
		int			w = start;

		for (int r = start; r < out->len; r++)
		{
			if (out->data[r] == '\n' && w - start >= 2 && out->data[w - 1] == '\n' && out->data[w - 2] == '\n')
				continue;
			out->data[w++] = out->data[r];
		}
		out->len = w;
		out->data[w] = '\0';
	}
}

PG_FUNCTION_INFO_V1(sc_fill_template);
Datum
sc_fill_template(PG_FUNCTION_ARGS)
{
	text	   *tpl = PG_GETARG_TEXT_PP(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	StringInfoData out;
	int			npairs;
	const char **names;
	int		   *namelens;
	const char **values;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("_fill takes a one-dimensional list of names and values")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	if (nelems % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("_fill takes pairs of names and values, not %d items", nelems)));
	npairs = nelems / 2;
	names = palloc(sizeof(char *) * (npairs + 1));
	namelens = palloc(sizeof(int) * (npairs + 1));
	values = palloc(sizeof(char *) * (npairs + 1));
	for (int i = 0; i < npairs; i++)
	{
		if (nulls[2 * i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("_fill: a variable name is NULL")));
		names[i] = TextDatumGetCString(elems[2 * i]);
		namelens[i] = strlen(names[i]);
		values[i] = nulls[2 * i + 1] ? NULL : TextDatumGetCString(elems[2 * i + 1]);
	}
	initStringInfo(&out);
	fill_template(VARDATA_ANY(tpl), VARSIZE_ANY_EXHDR(tpl), npairs, names, namelens, values, &out);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}

/* a text argument as a C string, or NULL */
static const char *
arg_cstring(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : TextDatumGetCString(PG_GETARG_DATUM(n));
}

/* a text argument as a C string, "" for NULL (a template variable's coalesce) */
static const char *
arg_or_empty(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? "" : TextDatumGetCString(PG_GETARG_DATUM(n));
}

/* "name": value, with a JSON string or null, as json_build_object writes it */
static void
json_member(StringInfo out, bool first, const char *name, const char *value)
{
	if (!first)
		appendStringInfoString(out, ", ");
	escape_json(out, name);
	appendStringInfoString(out, " : ");
	if (value)
		escape_json(out, value);
	else
		appendStringInfoString(out, "null");
}

/* "Field: =?UTF-8?B?…?= <addr>", the name left out when there is none */
static void
mailbox_header(StringInfo out, const char *field, const char *name, const char *addr)
{
	appendStringInfo(out, "%s: ", field);
	if (name && name[0] != '\0')
	{
		sc_mime_header_append(out, name, strlen(name));
		appendStringInfoChar(out, ' ');
	}
	appendStringInfo(out, "<%s>", addr);
}

enum
{
	A_KIND, A_FORMAT, A_PURPOSE, A_SEQ, A_MESSAGE_ID, A_IDEM,
	A_SUBJECT_TPL, A_BODY_TPL, A_BASE_JSON,
	A_SITE_ID, A_SITE_CODE, A_SITE_NAME, A_GROUP_PATH, A_SHINDO, A_SITE_SHINDO, A_SITE_SHINDO_EN,
	A_LINK, A_SITES, A_UNANSWERED_COUNT, A_UNANSWERED_SITES, A_RECIPIENT_NAME,
	A_FROM_NAME, A_FROM_ADDR, A_RCPT_ADDR, A_LANGS,
	A_NARGS
};

/*
 * _render_message(kind, format, purpose, seq, message_id, idempotency_key,
 *				   subject_tpl, body_tpl, base_json, site_id, site_code,
 *				   site_name, group_path, shindo, site_shindo, site_shindo_en,
 *				   link, unanswered_sites_json, unanswered_count,
 *				   unanswered_sites, recipient_name, from_name, from_addr,
 *				   rcpt_addr, langs) → text[] {headers, body}
 *
 * One claimed message, rendered (src/dispatch/claim.sql prepares the
 * arguments): the site's variables filled into the subject and text
 * templates, then for a mail its header lines (RFC 2047 names and subject,
 * Date, a Message-ID from the idempotency key) and the text as body; for
 * a webhook its header lines and the body: our JSON (the request's part,
 * rendered once per request, and this message's part, as json_build_object
 * wrote them) or Slack's {"text": ...}.  Any argument may be NULL where
 * the SQL it replaces allowed it: a NULL part is left out as concat_ws
 * left it out, and a JSON value is null.
 */
PG_FUNCTION_INFO_V1(sc_render_message);
Datum
sc_render_message(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {
		"site_name", "site_code", "group_name", "site_shindo", "site_shindo_en", "link",
		"reminder_number", "unanswered_count", "unanswered_sites", "recipient_name"
	};
	int			namelens[lengthof(names)];
	const char *values[lengthof(names)];
	const char *kind = arg_cstring(fcinfo, A_KIND);
	const char *purpose = arg_cstring(fcinfo, A_PURPOSE);
	const char *idem = arg_cstring(fcinfo, A_IDEM);
	const char *link = arg_cstring(fcinfo, A_LINK);
	const char *recipient_name = arg_cstring(fcinfo, A_RECIPIENT_NAME);
	char		seqbuf[16];
	StringInfoData subj,
				txt,
				headers,
				body;
	bool		has_subject = !PG_ARGISNULL(A_SUBJECT_TPL);
	bool		has_text = !PG_ARGISNULL(A_BODY_TPL);
	bool		has_body = true;
	Datum		result[2];
	bool		rnulls[2] = {false, false};
	int			dims[1] = {2};
	int			lbs[1] = {1};

	if (PG_NARGS() != A_NARGS)
		elog(ERROR, "_render_message takes %d arguments, not %d", A_NARGS, PG_NARGS());
	for (int i = 0; i < lengthof(names); i++)
		namelens[i] = strlen(names[i]);
	values[0] = arg_or_empty(fcinfo, A_SITE_NAME);
	values[1] = arg_or_empty(fcinfo, A_SITE_CODE);
	values[2] = arg_or_empty(fcinfo, A_GROUP_PATH);
	values[3] = arg_or_empty(fcinfo, A_SITE_SHINDO);
	values[4] = arg_or_empty(fcinfo, A_SITE_SHINDO_EN);
	values[5] = link ? link : "";
	if (PG_ARGISNULL(A_SEQ))
		values[6] = NULL;
	else
	{
		snprintf(seqbuf, sizeof(seqbuf), "%d", PG_GETARG_INT32(A_SEQ));
		values[6] = seqbuf;
	}
	values[7] = arg_cstring(fcinfo, A_UNANSWERED_COUNT);
	values[8] = arg_cstring(fcinfo, A_UNANSWERED_SITES);
	values[9] = recipient_name ? recipient_name : "";

	initStringInfo(&subj);
	initStringInfo(&txt);
	if (has_subject)
	{
		text	   *t = PG_GETARG_TEXT_PP(A_SUBJECT_TPL);

		fill_template(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), lengthof(names), names, namelens, values, &subj);
	}
	if (has_text)
	{
		text	   *t = PG_GETARG_TEXT_PP(A_BODY_TPL);

		fill_template(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), lengthof(names), names, namelens, values, &txt);
	}

	initStringInfo(&headers);
	initStringInfo(&body);
	if (kind != NULL && strcmp(kind, "email") == 0)
	{
		const char *from_name = arg_cstring(fcinfo, A_FROM_NAME);
		const char *from_addr = arg_cstring(fcinfo, A_FROM_ADDR);
		const char *rcpt_addr = arg_cstring(fcinfo, A_RCPT_ADDR);
		const char *langs = arg_cstring(fcinfo, A_LANGS);
		struct pg_tm tm;
		fsec_t		fsec;
		static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
		static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
		bool		first = true;

#define LINE() do { if (!first) appendStringInfoChar(&headers, '\n'); first = false; } while (0)
		if (from_addr)
		{
			LINE();
			mailbox_header(&headers, "From", from_name, from_addr);
		}
		if (rcpt_addr)
		{
			LINE();
			mailbox_header(&headers, "To", recipient_name, rcpt_addr);
		}
		if (has_subject)
		{
			LINE();
			appendStringInfoString(&headers, "Subject: ");
			sc_mime_header_append(&headers, subj.data, subj.len);
		}
		if (timestamp2tm(GetCurrentTransactionStartTimestamp(), NULL, &tm, &fsec, NULL, NULL) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("timestamp out of range")));
		LINE();
		appendStringInfo(&headers, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000",
						 days[j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday))], tm.tm_mday,
						 months[tm.tm_mon - 1], tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec);
		if (idem && from_addr)
		{
			const char *at = strchr(from_addr, '@');
			const char *domain = "";

			/* split_part(from_addr, '@', 2): what follows the first @, up to a second */
			if (at)
			{
				const char *end = strchr(at + 1, '@');

				domain = end ? pnstrdup(at + 1, end - at - 1) : at + 1;
			}
			LINE();
			appendStringInfo(&headers, "Message-ID: <%s@%s>", idem, domain);
		}
		if (langs)
		{
			LINE();
			appendStringInfoString(&headers, "Content-Language: ");
			for (const char *c = langs; *c; c++)
			{
				if (*c == '+')
					appendStringInfoString(&headers, ", ");
				else
					appendStringInfoChar(&headers, *c);
			}
		}
		LINE();
		appendStringInfoString(&headers, "Auto-Submitted: auto-generated");
		LINE();
		appendStringInfoString(&headers, "X-Auto-Response-Suppress: All");
		if (purpose)
		{
			LINE();
			appendStringInfo(&headers, "X-Status-Checker-Purpose: %s", purpose);
		}
		if (idem)
		{
			LINE();
			appendStringInfo(&headers, "X-Status-Checker-Idempotency-Key: %s", idem);
		}
#undef LINE
		if (has_text)
			appendBinaryStringInfo(&body, txt.data, txt.len);
		else
			has_body = false;
	}
	else
	{
		const char *format = arg_cstring(fcinfo, A_FORMAT);

		/* the webhook's headers: NULL if a part is (as the concatenation was) */
		if (idem && purpose && !PG_ARGISNULL(A_MESSAGE_ID))
			appendStringInfo(&headers,
							 "Content-Type: application/json; charset=utf-8\nIdempotency-Key: %s"
							 "\nX-Status-Checker-Message-Id: " INT64_FORMAT "\nX-Status-Checker-Purpose: %s",
							 idem, PG_GETARG_INT64(A_MESSAGE_ID), purpose);
		else
			rnulls[0] = true;
		if (format != NULL && strcmp(format, "slack") == 0)
		{
			/* {"text": "*subject*\ntext"}, as jsonb writes it */
			appendStringInfoString(&body, "{\"text\": ");
			if (has_subject && has_text)
			{
				StringInfoData s;

				initStringInfo(&s);
				appendStringInfo(&s, "*%s*\n%s", subj.data, txt.data);
				escape_json(&body, s.data);
			}
			else
				appendStringInfoString(&body, "null");
			appendStringInfoChar(&body, '}');
		}
		else if (PG_ARGISNULL(A_BASE_JSON))
			has_body = false;
		else
		{
			/* the request's part without its closing brace, then this message's */
			text	   *base = PG_GETARG_TEXT_PP(A_BASE_JSON);
			int			blen = VARSIZE_ANY_EXHDR(base);

			appendBinaryStringInfo(&body, VARDATA_ANY(base), blen > 0 ? blen - 1 : 0);
			appendStringInfoString(&body, ", ");
			json_member(&body, true, "idempotency_key", idem);
			appendStringInfoString(&body, ", \"message_id\" : ");
			if (PG_ARGISNULL(A_MESSAGE_ID))
				appendStringInfoString(&body, "null");
			else
				appendStringInfo(&body, INT64_FORMAT, PG_GETARG_INT64(A_MESSAGE_ID));
			appendStringInfoString(&body, ", \"site\" : ");
			if (PG_ARGISNULL(A_SITE_ID))
				appendStringInfoString(&body, "null");
			else
			{
				appendStringInfoChar(&body, '{');
				json_member(&body, true, "code", arg_cstring(fcinfo, A_SITE_CODE));
				json_member(&body, false, "name", arg_cstring(fcinfo, A_SITE_NAME));
				json_member(&body, false, "group", arg_cstring(fcinfo, A_GROUP_PATH));
				json_member(&body, false, "shindo", arg_cstring(fcinfo, A_SHINDO));
				appendStringInfoChar(&body, '}');
			}
			json_member(&body, false, "link", link);
			appendStringInfoString(&body, ", \"reminder_number\" : ");
			if (purpose && strcmp(purpose, "reminder") == 0 && !PG_ARGISNULL(A_SEQ))
				appendStringInfo(&body, "%d", PG_GETARG_INT32(A_SEQ));
			else
				appendStringInfoString(&body, "null");
			appendStringInfoString(&body, ", \"unanswered_sites\" : ");
			if (PG_ARGISNULL(A_SITES))
				appendStringInfoString(&body, "null");
			else
			{
				Jsonb	   *sites = PG_GETARG_JSONB_P(A_SITES);

				(void) JsonbToCString(&body, &sites->root, VARSIZE(sites));
			}
			json_member(&body, false, "subject", has_subject ? subj.data : NULL);
			json_member(&body, false, "text", has_text ? txt.data : NULL);
			appendStringInfoChar(&body, '}');
		}
	}

	result[0] = rnulls[0] ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(headers.data, headers.len));
	result[1] = has_body ? PointerGetDatum(cstring_to_text_with_len(body.data, body.len)) : (Datum) 0;
	rnulls[1] = !has_body;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(result, rnulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}
