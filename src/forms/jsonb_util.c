/*-------------------------------------------------------------------------
 *
 * jsonb_util.c
 *	  Helpers over the jsonb C API (see jsonb_util.h).
 *
 * We validate forms and answers on jsonb directly rather than with jansson:
 * both arrive as jsonb, so there is no re-parse, no second allocator to
 * guard with PG_TRY, object keys are already de-duplicated, and lookups in
 * the binary format are binary searches.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "utils/builtins.h"
#include "utils/numeric.h"

#include "forms/jsonb_util.h"

/* A message from a format and a va_list, in the current memory context. */
char *
vformat_message(const char *fmt, va_list args)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		copy;
		int			needed;

		va_copy(copy, args);
		needed = appendStringInfoVA(&buf, fmt, copy);
		va_end(copy);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	return buf.data;
}

void
jpath_init(JPath *p)
{
	initStringInfo(&p->buf);
	appendStringInfoChar(&p->buf, '$');
}

static bool
is_identifier(const char *s)
{
	if (!(isalpha((unsigned char) *s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char) *s) || *s == '_'))
			return false;
	return true;
}

int
jpath_push_key(JPath *p, const char *key)
{
	int			mark = p->buf.len;

	if (is_identifier(key))
		appendStringInfo(&p->buf, ".%s", key);
	else
	{
		appendStringInfoString(&p->buf, ".\"");
		for (; *key; key++)
		{
			if (*key == '"' || *key == '\\')
				appendStringInfoChar(&p->buf, '\\');
			appendStringInfoChar(&p->buf, *key);
		}
		appendStringInfoChar(&p->buf, '"');
	}
	return mark;
}

int
jpath_push_index(JPath *p, int i)
{
	int			mark = p->buf.len;

	appendStringInfo(&p->buf, "[%d]", i);
	return mark;
}

void
jpath_pop(JPath *p, int mark)
{
	p->buf.len = mark;
	p->buf.data[mark] = '\0';
}

JsonbValue *
jb_get(JsonbContainer *c, const char *key)
{
	if (c == NULL || !JsonContainerIsObject(c))
		return NULL;
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

JsonbValue *
jb_elem(JsonbContainer *c, int i)
{
	if (c == NULL || !JsonContainerIsArray(c))
		return NULL;
	return getIthJsonbValueFromContainer(c, i);
}

JsonbContainer *
jb_container(JsonbValue *v)
{
	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return v->val.binary.data;
}

bool
jb_is_object(JsonbValue *v)
{
	JsonbContainer *c = jb_container(v);

	return c != NULL && JsonContainerIsObject(c);
}

bool
jb_is_array(JsonbValue *v)
{
	JsonbContainer *c = jb_container(v);

	return c != NULL && JsonContainerIsArray(c) && !JsonContainerIsScalar(c);
}

int
jb_array_size(JsonbContainer *c)
{
	return (int) JsonContainerSize(c);
}

char *
jb_cstring(JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

const char *
jb_type_name(JsonbValue *v)
{
	if (v == NULL)
		return "nothing";
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return jb_is_object(v) ? "an object" : "an array";
		default:
			return "an unexpected value";
	}
}

bool
jb_equal_scalar(JsonbValue *a, JsonbValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvNull:
			return true;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		case jbvString:
			return a->val.string.len == b->val.string.len &&
				memcmp(a->val.string.val, b->val.string.val, a->val.string.len) == 0;
		case jbvNumeric:
			return DatumGetBool(DirectFunctionCall2(numeric_eq,
													NumericGetDatum(a->val.numeric),
													NumericGetDatum(b->val.numeric)));
		default:
			return false;
	}
}

List *
jb_object_keys(JsonbContainer *c)
{
	List	   *keys = NIL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (c == NULL || !JsonContainerIsObject(c))
		return NIL;
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			keys = lappend(keys, pnstrdup(v.val.string.val, v.val.string.len));
	}
	return keys;
}
