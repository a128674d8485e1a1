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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(sc_fill_template);
Datum
sc_fill_template(PG_FUNCTION_ARGS)
{
	text	   *tpl = PG_GETARG_TEXT_PP(0);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	const char *s = VARDATA_ANY(tpl);
	int			len = VARSIZE_ANY_EXHDR(tpl);
	StringInfoData out;
	int			line_start_out = 0;
	bool		line_had_var = false;
	int			npairs;
	char	  **names;
	int		   *namelens;
	text	  **values;

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
	values = palloc(sizeof(text *) * (npairs + 1));
	for (int i = 0; i < npairs; i++)
	{
		if (nulls[2 * i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("_fill: a variable name is NULL")));
		names[i] = text_to_cstring(DatumGetTextPP(elems[2 * i]));
		namelens[i] = strlen(names[i]);
		values[i] = nulls[2 * i + 1] ? NULL : DatumGetTextPP(elems[2 * i + 1]);
	}

	initStringInfo(&out);
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
						appendBinaryStringInfo(&out, VARDATA_ANY(values[k]), VARSIZE_ANY_EXHDR(values[k]));
					line_had_var = true;
					i = (close - s) + 2;
					continue;
				}
			}
		}
		if (s[i] == '\n')
		{
			bool		blank = true;

			for (int j = line_start_out; j < out.len; j++)
				if (out.data[j] != ' ' && out.data[j] != '\t' && out.data[j] != '\r')
					blank = false;
			if (line_had_var && blank)
			{
				/* drop the line the values left empty */
				out.len = line_start_out;
				out.data[out.len] = '\0';
				line_had_var = false;
				i++;
				continue;
			}
			appendStringInfoChar(&out, '\n');
			line_start_out = out.len;
			line_had_var = false;
			i++;
			continue;
		}
		appendStringInfoChar(&out, s[i]);
		i++;
	}
	/* runs of blank lines (around dropped lines) become one blank line */
	{
		int			w = 0;

		for (int r = 0; r < out.len; r++)
		{
			if (out.data[r] == '\n' && w >= 2 && out.data[w - 1] == '\n' && out.data[w - 2] == '\n')
				continue;
			out.data[w++] = out.data[r];
		}
		out.len = w;
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(out.data, out.len));
}
