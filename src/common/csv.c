/*-------------------------------------------------------------------------
 *
 * csv.c
 *	  RFC 4180 CSV reader used by import_sites and load_jma_area_codes.
 *
 * _csv_records(data) returns one row per record: the 1-based line number
 * where the record starts, its fields as text[], and an error text (NULL
 * when the record is good).  A record with bad UTF-8, a NUL byte or an
 * unterminated quote is returned with fields NULL and the reason, instead
 * of raising an error, so that callers can list every bad line in one
 * message ("all or nothing, every problem at once").
 *
 * Accepts LF and CRLF line ends, a leading UTF-8 byte-order mark, quoted
 * fields containing commas, quotes ("") and line breaks.  Blank lines are
 * skipped.  The whole input is bounded by status_checker.max_import_bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "common/sc_guc.h"

typedef struct CsvState
{
	const char *p;
	const char *end;
	int			line;			/* current physical line, 1-based */
} CsvState;

/*
 * Read one record.  Fields go to *fields (palloc'd strings); returns false
 * at end of input.  On a malformed record, *error is set and the reader
 * skips to the end of the physical line.
 */
static bool
csv_read_record(CsvState *st, List **fields, int *startline, const char **error)
{
	StringInfoData field;
	bool		in_quotes = false;
	bool		field_was_quoted = false;

	*fields = NIL;
	*error = NULL;

	/* skip blank lines */
	while (st->p < st->end && (*st->p == '\n' || *st->p == '\r'))
	{
		if (*st->p == '\n')
			st->line++;
		st->p++;
	}
	if (st->p >= st->end)
		return false;

	*startline = st->line;
	initStringInfo(&field);

	while (st->p < st->end)
	{
		char		c = *st->p;

		if (c == '\0')
		{
			*error = "contains a NUL byte";
			break;
		}
		if (in_quotes)
		{
			if (c == '"')
			{
				if (st->p + 1 < st->end && st->p[1] == '"')
				{
					appendStringInfoChar(&field, '"');
					st->p += 2;
					continue;
				}
				in_quotes = false;
				st->p++;
				continue;
			}
			if (c == '\n')
				st->line++;
			appendStringInfoChar(&field, c);
			st->p++;
			continue;
		}
		if (c == '"')
		{
			if (field.len > 0 || field_was_quoted)
			{
				*error = "has a quote in the middle of an unquoted field";
				break;
			}
			in_quotes = true;
			field_was_quoted = true;
			st->p++;
			continue;
		}
		if (c == ',')
		{
			*fields = lappend(*fields, pstrdup(field.data));
			resetStringInfo(&field);
			field_was_quoted = false;
			st->p++;
			continue;
		}
		if (c == '\r' && st->p + 1 < st->end && st->p[1] == '\n')
		{
			st->p++;
			continue;
		}
		if (c == '\n' || c == '\r')
		{
			st->p++;
			st->line++;
			*fields = lappend(*fields, pstrdup(field.data));
			pfree(field.data);
			return true;
		}
		if (field_was_quoted)
		{
			*error = "has text after a closing quote";
			break;
		}
		appendStringInfoChar(&field, c);
		st->p++;
	}

	if (*error == NULL && in_quotes)
		*error = "has an unterminated quoted field";

	if (*error != NULL)
	{
		/* resynchronise at the next physical line */
		while (st->p < st->end && *st->p != '\n')
			st->p++;
		if (st->p < st->end)
		{
			st->p++;
			st->line++;
		}
		list_free_deep(*fields);
		*fields = NIL;
		pfree(field.data);
		return true;
	}

	*fields = lappend(*fields, pstrdup(field.data));
	pfree(field.data);
	return true;
}

/* Find the end of the physical line that starts at `p`. */
static const char *
line_end(const char *p, const char *end)
{
	while (p < end && *p != '\n')
		p++;
	return p;
}

PG_FUNCTION_INFO_V1(sc_csv_records);
Datum
sc_csv_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	const char *buf = VARDATA_ANY(data);
	Size		len = VARSIZE_ANY_EXHDR(data);
	CsvState	st;
	MemoryContext rowcxt;

	if (len > (Size) sc_max_import_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("CSV input of %zu bytes exceeds the limit of %d bytes", len, sc_max_import_bytes),
				 errhint("Split the file, or raise status_checker.max_import_bytes.")));

	InitMaterializedSRF(fcinfo, 0);

	/* UTF-8 byte-order mark */
	if (len >= 3 && (unsigned char) buf[0] == 0xEF &&
		(unsigned char) buf[1] == 0xBB && (unsigned char) buf[2] == 0xBF)
	{
		buf += 3;
		len -= 3;
	}

	st.p = buf;
	st.end = buf + len;
	st.line = 1;

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "csv record",
								   ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		List	   *fields;
		int			startline = st.line;
		const char *error;
		const char *recstart;
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		/* validate the encoding of every line the record will cover */
		recstart = st.p;
		if (!csv_read_record(&st, &fields, &startline, &error))
		{
			MemoryContextSwitchTo(old);
			break;
		}
		if (error == NULL)
		{
			const char *q = recstart;

			while (q < st.p)
			{
				const char *e = line_end(q, st.p);

				if (pg_verify_mbstr_len(PG_UTF8, q, e - q, true) < 0)
				{
					error = "is not valid UTF-8";
					break;
				}
				q = e + 1;
			}
		}

		values[0] = Int32GetDatum(startline);
		if (error != NULL)
		{
			nulls[1] = true;
			values[2] = CStringGetTextDatum(error);
		}
		else
		{
			int			n = list_length(fields);
			Datum	   *elems = palloc(sizeof(Datum) * n);
			ListCell   *lc;
			int			i = 0;

			foreach(lc, fields)
			{
				char	   *f = (char *) lfirst(lc);

				elems[i++] = CStringGetTextDatum(f);
			}
			values[1] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
			nulls[2] = true;
		}
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextReset(rowcxt);
	}
	MemoryContextDelete(rowcxt);
	return (Datum) 0;
}
