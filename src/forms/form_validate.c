/*-------------------------------------------------------------------------
 *
 * form_validate.c
 *	  validate_form_definition(jsonb): the rules of a report form.
 *
 * Every problem is reported as SQLSTATE 22023 with the JSON path of the
 * offending element, e.g.
 *	 invalid form definition at $.questions[2].choices[0].level: level 7 is not defined in $.levels
 *
 * The rules (docs/sql-reference.md repeats them for users):
 *	 - the definition is an object with "levels" and "questions", and
 *	   optionally "title" and "description" (labels); no other keys;
 *	 - a label is an object of language → non-empty string with "ja" or
 *	   "en" (language tags like "ja", "en", "zh-Hant"), at most 500 chars;
 *	 - levels: 1..16 objects {level 0..15 unique, label, color "#rgb" or
 *	   "#rrggbb", icon?}; icons are [a-z0-9-], 1..40 chars;
 *	 - questions: 1..200 objects {key ^[a-z][a-z0-9_]{0,62}$ unique, type,
 *	   label, required?, help?, show_if?} plus per type:
 *		 single/multi: choices (1..100 of {value unique non-empty string
 *		   ≤ 200, label, level?, color?, icon?});
 *		 number: min?, max? (min ≤ max), integer?, unit?, levels? (array of
 *		   {min?, max?, level} with min or max);
 *		 boolean: levels? (array of {value true/false, level});
 *		 text: max_length? (1..100000);
 *		 location, photo: nothing more;
 *	 - every level a choice or rule names exists in "levels";
 *	 - show_if {question, in}: question is an EARLIER single, multi or
 *	   boolean question; "in" is a non-empty array of its choice values
 *	   (booleans for a boolean question).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "forms/form.h"
#include "forms/jsonb_util.h"

#define MAX_LEVELS 16
#define MAX_QUESTIONS 200
#define MAX_CHOICES 100
#define MAX_LABEL_CHARS 500
#define MAX_TEXT_LENGTH 100000

typedef struct FormCheck
{
	JPath		path;
	bool		level_defined[MAX_LEVELS];
} FormCheck;

static void fail(FormCheck *fc, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();

static void
fail(FormCheck *fc, const char *fmt,...)
{
	va_list		args;
	char	   *msg;

	va_start(args, fmt);
	msg = vformat_message(fmt, args);
	va_end(args);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid form definition at %s: %s", fc->path.buf.data, msg),
			 errhint("See \"Forms\" in docs/sql-reference.md for the definition rules.")));
}

/* Check that the object has only keys from `allowed` (NULL-terminated). */
static void
check_keys(FormCheck *fc, JsonbContainer *obj, const char *const *allowed)
{
	List	   *keys = jb_object_keys(obj);
	ListCell   *lc;

	foreach(lc, keys)
	{
		const char *k = lfirst(lc);
		const char *const *a;
		bool		ok = false;

		for (a = allowed; *a; a++)
			if (strcmp(*a, k) == 0)
				ok = true;
		if (!ok)
		{
			StringInfoData list;

			initStringInfo(&list);
			for (a = allowed; *a; a++)
				appendStringInfo(&list, "%s%s", a == allowed ? "" : ", ", *a);
			jpath_push_key(&fc->path, k);
			fail(fc, "unknown key \"%s\" (allowed here: %s)", k, list.data);
		}
	}
}

static JsonbContainer *
want_object(FormCheck *fc, JsonbValue *v)
{
	if (!jb_is_object(v))
		fail(fc, "expected an object, found %s", jb_type_name(v));
	return jb_container(v);
}

static JsonbContainer *
want_array(FormCheck *fc, JsonbValue *v, int min, int max)
{
	JsonbContainer *c;
	int			n;

	if (!jb_is_array(v))
		fail(fc, "expected an array, found %s", jb_type_name(v));
	c = jb_container(v);
	n = jb_array_size(c);
	if (n < min || n > max)
		fail(fc, "expected %d to %d elements, found %d", min, max, n);
	return c;
}

static bool
valid_lang_tag(const char *s)
{
	int			n = 0;

	while (islower((unsigned char) s[n]))
		n++;
	if (n != 2 && n != 3)
		return false;
	if (s[n] == '\0')
		return true;
	if (s[n] != '-')
		return false;
	s += n + 1;
	for (n = 0; isalnum((unsigned char) s[n]); n++)
		;
	return n >= 2 && n <= 8 && s[n] == '\0';
}

static void
check_label(FormCheck *fc, JsonbContainer *parent, const char *key, bool required)
{
	JsonbValue *v = jb_get(parent, key);
	int			mark;
	JsonbContainer *c;
	List	   *langs;
	ListCell   *lc;

	if (v == NULL)
	{
		if (required)
		{
			jpath_push_key(&fc->path, key);
			fail(fc, "a label is required");
		}
		return;
	}
	mark = jpath_push_key(&fc->path, key);
	c = want_object(fc, v);
	if (jb_get(c, "ja") == NULL && jb_get(c, "en") == NULL)
		fail(fc, "a label needs at least a \"ja\" or an \"en\" text");
	langs = jb_object_keys(c);
	foreach(lc, langs)
	{
		const char *lang = lfirst(lc);
		char	   *text = jb_cstring(jb_get(c, lang));
		int			m2 = jpath_push_key(&fc->path, lang);

		if (!valid_lang_tag(lang))
			fail(fc, "\"%s\" is not a language tag such as \"ja\" or \"en\"", lang);
		if (text == NULL)
			fail(fc, "expected a string, found %s", jb_type_name(jb_get(c, lang)));
		if (text[0] == '\0')
			fail(fc, "a label must not be empty");
		if (pg_mbstrlen(text) > MAX_LABEL_CHARS)
			fail(fc, "a label has at most %d characters", MAX_LABEL_CHARS);
		jpath_pop(&fc->path, m2);
	}
	jpath_pop(&fc->path, mark);
}

static void
check_color(FormCheck *fc, JsonbContainer *parent, bool required)
{
	JsonbValue *v = jb_get(parent, "color");
	int			mark;
	char	   *s;
	size_t		n,
				i;

	if (v == NULL)
	{
		if (required)
		{
			jpath_push_key(&fc->path, "color");
			fail(fc, "a colour is required");
		}
		return;
	}
	mark = jpath_push_key(&fc->path, "color");
	s = jb_cstring(v);
	if (s == NULL)
		fail(fc, "expected a string, found %s", jb_type_name(v));
	n = strlen(s);
	if (s[0] != '#' || (n != 4 && n != 7))
		fail(fc, "\"%s\" is not a colour like \"#c62828\" or \"#c22\"", s);
	for (i = 1; i < n; i++)
		if (!isxdigit((unsigned char) s[i]))
			fail(fc, "\"%s\" is not a colour like \"#c62828\" or \"#c22\"", s);
	jpath_pop(&fc->path, mark);
}

static void
check_icon(FormCheck *fc, JsonbContainer *parent)
{
	JsonbValue *v = jb_get(parent, "icon");
	int			mark;
	char	   *s;
	size_t		n,
				i;

	if (v == NULL)
		return;
	mark = jpath_push_key(&fc->path, "icon");
	s = jb_cstring(v);
	if (s == NULL)
		fail(fc, "expected a string, found %s", jb_type_name(v));
	n = strlen(s);
	if (n < 1 || n > 40)
		fail(fc, "an icon name has 1 to 40 characters");
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) || s[i] == '-'))
			fail(fc, "icon \"%s\" may contain only a-z, 0-9 and \"-\"", s);
	jpath_pop(&fc->path, mark);
}

/* An integer in [lo, hi] from a jsonb number, or fail. */
static int
want_int(FormCheck *fc, JsonbValue *v, int lo, int hi)
{
	Numeric		num;
	char	   *txt;
	char	   *end;
	long		l;

	if (v == NULL || v->type != jbvNumeric)
		fail(fc, "expected an integer, found %s", jb_type_name(v));
	num = v->val.numeric;
	txt = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	l = strtol(txt, &end, 10);
	if (*end != '\0' || l < lo || l > hi)
		fail(fc, "expected an integer from %d to %d, found %s", lo, hi, txt);
	return (int) l;
}

static bool
want_bool(FormCheck *fc, JsonbValue *v)
{
	if (v == NULL || v->type != jbvBool)
		fail(fc, "expected true or false, found %s", jb_type_name(v));
	return v->val.boolean;
}

static void
check_level_ref(FormCheck *fc, JsonbContainer *parent, const char *key, bool required)
{
	JsonbValue *v = jb_get(parent, key);
	int			mark;
	int			level;

	if (v == NULL)
	{
		if (required)
		{
			jpath_push_key(&fc->path, key);
			fail(fc, "a level is required");
		}
		return;
	}
	mark = jpath_push_key(&fc->path, key);
	level = want_int(fc, v, 0, MAX_LEVELS - 1);
	if (!fc->level_defined[level])
		fail(fc, "level %d is not defined in $.levels", level);
	jpath_pop(&fc->path, mark);
}

static void
check_levels(FormCheck *fc, JsonbContainer *root)
{
	static const char *const allowed[] = {"level", "label", "color", "icon", NULL};
	int			mark = jpath_push_key(&fc->path, "levels");
	JsonbValue *v = jb_get(root, "levels");
	JsonbContainer *arr;
	int			i,
				n;

	if (v == NULL)
		fail(fc, "\"levels\" is required");
	arr = want_array(fc, v, 1, MAX_LEVELS);
	n = jb_array_size(arr);
	for (i = 0; i < n; i++)
	{
		int			m2 = jpath_push_index(&fc->path, i);
		JsonbContainer *lv = want_object(fc, jb_elem(arr, i));
		int			m3;
		int			level;

		check_keys(fc, lv, allowed);
		m3 = jpath_push_key(&fc->path, "level");
		if (jb_get(lv, "level") == NULL)
			fail(fc, "\"level\" is required");
		level = want_int(fc, jb_get(lv, "level"), 0, MAX_LEVELS - 1);
		if (fc->level_defined[level])
			fail(fc, "level %d is defined twice", level);
		fc->level_defined[level] = true;
		jpath_pop(&fc->path, m3);
		check_label(fc, lv, "label", true);
		check_color(fc, lv, true);
		check_icon(fc, lv);
		jpath_pop(&fc->path, m2);
	}
	jpath_pop(&fc->path, mark);
}

static bool
valid_key(const char *k)
{
	size_t		n = strlen(k),
				i;

	if (n < 1 || n > 63 || !islower((unsigned char) k[0]))
		return false;
	for (i = 1; i < n; i++)
		if (!(islower((unsigned char) k[i]) || isdigit((unsigned char) k[i]) || k[i] == '_'))
			return false;
	return true;
}

static void
check_choices(FormCheck *fc, JsonbContainer *q)
{
	static const char *const allowed[] = {"value", "label", "level", "color", "icon", NULL};
	int			mark = jpath_push_key(&fc->path, "choices");
	JsonbValue *v = jb_get(q, "choices");
	JsonbContainer *arr;
	int			i,
				j,
				n;

	if (v == NULL)
		fail(fc, "\"choices\" is required for single and multi questions");
	arr = want_array(fc, v, 1, MAX_CHOICES);
	n = jb_array_size(arr);
	for (i = 0; i < n; i++)
	{
		int			m2 = jpath_push_index(&fc->path, i);
		JsonbContainer *ch = want_object(fc, jb_elem(arr, i));
		char	   *value;
		int			m3;

		check_keys(fc, ch, allowed);
		m3 = jpath_push_key(&fc->path, "value");
		value = jb_cstring(jb_get(ch, "value"));
		if (value == NULL)
			fail(fc, "expected a string, found %s", jb_type_name(jb_get(ch, "value")));
		if (value[0] == '\0' || pg_mbstrlen(value) > 200)
			fail(fc, "a choice value has 1 to 200 characters");
		for (j = 0; j < i; j++)
		{
			char	   *other = jb_cstring(jb_get(jb_container(jb_elem(arr, j)), "value"));

			if (other && strcmp(other, value) == 0)
				fail(fc, "choice value \"%s\" appears twice", value);
		}
		jpath_pop(&fc->path, m3);
		check_label(fc, ch, "label", true);
		check_level_ref(fc, ch, "level", false);
		check_color(fc, ch, false);
		check_icon(fc, ch);
		jpath_pop(&fc->path, m2);
	}
	jpath_pop(&fc->path, mark);
}

static Numeric
want_number(FormCheck *fc, JsonbValue *v)
{
	if (v == NULL || v->type != jbvNumeric)
		fail(fc, "expected a number, found %s", jb_type_name(v));
	return v->val.numeric;
}

static void
check_number(FormCheck *fc, JsonbContainer *q)
{
	static const char *const rule_allowed[] = {"min", "max", "level", NULL};
	JsonbValue *vmin = jb_get(q, "min");
	JsonbValue *vmax = jb_get(q, "max");
	JsonbValue *v;
	int			mark;

	if (vmin)
	{
		mark = jpath_push_key(&fc->path, "min");
		want_number(fc, vmin);
		jpath_pop(&fc->path, mark);
	}
	if (vmax)
	{
		mark = jpath_push_key(&fc->path, "max");
		want_number(fc, vmax);
		if (vmin && DatumGetBool(DirectFunctionCall2(numeric_gt,
													 NumericGetDatum(vmin->val.numeric),
													 NumericGetDatum(vmax->val.numeric))))
			fail(fc, "\"max\" is smaller than \"min\"");
		jpath_pop(&fc->path, mark);
	}
	if ((v = jb_get(q, "integer")) != NULL)
	{
		mark = jpath_push_key(&fc->path, "integer");
		want_bool(fc, v);
		jpath_pop(&fc->path, mark);
	}
	check_label(fc, q, "unit", false);
	if ((v = jb_get(q, "levels")) != NULL)
	{
		JsonbContainer *arr;
		int			i,
					n;

		mark = jpath_push_key(&fc->path, "levels");
		arr = want_array(fc, v, 1, 32);
		n = jb_array_size(arr);
		for (i = 0; i < n; i++)
		{
			int			m2 = jpath_push_index(&fc->path, i);
			JsonbContainer *r = want_object(fc, jb_elem(arr, i));
			JsonbValue *rmin = jb_get(r, "min");
			JsonbValue *rmax = jb_get(r, "max");
			int			m3;

			check_keys(fc, r, rule_allowed);
			if (rmin == NULL && rmax == NULL)
				fail(fc, "a level rule needs \"min\", \"max\" or both");
			if (rmin)
			{
				m3 = jpath_push_key(&fc->path, "min");
				want_number(fc, rmin);
				jpath_pop(&fc->path, m3);
			}
			if (rmax)
			{
				m3 = jpath_push_key(&fc->path, "max");
				want_number(fc, rmax);
				jpath_pop(&fc->path, m3);
			}
			check_level_ref(fc, r, "level", true);
			jpath_pop(&fc->path, m2);
		}
		jpath_pop(&fc->path, mark);
	}
}

static void
check_boolean(FormCheck *fc, JsonbContainer *q)
{
	static const char *const rule_allowed[] = {"value", "level", NULL};
	JsonbValue *v = jb_get(q, "levels");
	JsonbContainer *arr;
	int			i,
				n,
				mark;

	if (v == NULL)
		return;
	mark = jpath_push_key(&fc->path, "levels");
	arr = want_array(fc, v, 1, 2);
	n = jb_array_size(arr);
	for (i = 0; i < n; i++)
	{
		int			m2 = jpath_push_index(&fc->path, i);
		JsonbContainer *r = want_object(fc, jb_elem(arr, i));
		int			m3;

		check_keys(fc, r, rule_allowed);
		m3 = jpath_push_key(&fc->path, "value");
		want_bool(fc, jb_get(r, "value"));
		jpath_pop(&fc->path, m3);
		check_level_ref(fc, r, "level", true);
		jpath_pop(&fc->path, m2);
	}
	jpath_pop(&fc->path, mark);
}

/* show_if: {"question": earlier single/multi/boolean key, "in": [values]} */
static void
check_show_if(FormCheck *fc, JsonbContainer *questions, int qi, JsonbContainer *q)
{
	static const char *const allowed[] = {"question", "in", NULL};
	JsonbValue *v = jb_get(q, "show_if");
	JsonbContainer *cond;
	JsonbContainer *target = NULL;
	JsonbContainer *in;
	char	   *ref;
	char	   *ttype = NULL;
	int			i,
				n,
				mark,
				m2;

	if (v == NULL)
		return;
	mark = jpath_push_key(&fc->path, "show_if");
	cond = want_object(fc, v);
	check_keys(fc, cond, allowed);

	m2 = jpath_push_key(&fc->path, "question");
	ref = jb_cstring(jb_get(cond, "question"));
	if (ref == NULL)
		fail(fc, "expected the key of an earlier question, found %s",
			 jb_type_name(jb_get(cond, "question")));
	for (i = 0; i < qi; i++)
	{
		JsonbContainer *other = jb_container(jb_elem(questions, i));
		char	   *k = jb_cstring(jb_get(other, "key"));

		if (k && strcmp(k, ref) == 0)
		{
			target = other;
			ttype = jb_cstring(jb_get(other, "type"));
		}
	}
	if (target == NULL)
		fail(fc, "\"%s\" is not the key of an earlier question", ref);
	if (strcmp(ttype, "single") != 0 && strcmp(ttype, "multi") != 0 &&
		strcmp(ttype, "boolean") != 0)
		fail(fc, "a condition can only refer to a single, multi or boolean question; \"%s\" is %s",
			 ref, ttype);
	jpath_pop(&fc->path, m2);

	m2 = jpath_push_key(&fc->path, "in");
	if (jb_get(cond, "in") == NULL)
		fail(fc, "\"in\" is required");
	in = want_array(fc, jb_get(cond, "in"), 1, MAX_CHOICES);
	n = jb_array_size(in);
	for (i = 0; i < n; i++)
	{
		JsonbValue *val = jb_elem(in, i);
		int			m3 = jpath_push_index(&fc->path, i);

		if (strcmp(ttype, "boolean") == 0)
			want_bool(fc, val);
		else
		{
			char	   *s = jb_cstring(val);

			if (s == NULL)
				fail(fc, "expected a choice value of \"%s\", found %s", ref, jb_type_name(val));
			if (form_find_choice(target, s) == NULL)
				fail(fc, "\"%s\" is not a choice of question \"%s\"", s, ref);
		}
		jpath_pop(&fc->path, m3);
	}
	jpath_pop(&fc->path, m2);
	jpath_pop(&fc->path, mark);
}

static void
check_questions(FormCheck *fc, JsonbContainer *root)
{
	static const char *const common[] = {"key", "type", "label", "required", "help", "show_if", NULL};
	static const char *const k_choice[] = {"key", "type", "label", "required", "help", "show_if", "choices", NULL};
	static const char *const k_number[] = {"key", "type", "label", "required", "help", "show_if", "min", "max", "integer", "unit", "levels", NULL};
	static const char *const k_bool[] = {"key", "type", "label", "required", "help", "show_if", "levels", NULL};
	static const char *const k_text[] = {"key", "type", "label", "required", "help", "show_if", "max_length", NULL};
	int			mark = jpath_push_key(&fc->path, "questions");
	JsonbValue *v = jb_get(root, "questions");
	JsonbContainer *arr;
	int			i,
				j,
				n;

	if (v == NULL)
		fail(fc, "\"questions\" is required");
	arr = want_array(fc, v, 1, MAX_QUESTIONS);
	n = jb_array_size(arr);
	for (i = 0; i < n; i++)
	{
		int			m2 = jpath_push_index(&fc->path, i);
		JsonbContainer *q = want_object(fc, jb_elem(arr, i));
		char	   *key;
		char	   *type;
		int			m3;
		JsonbValue *req;

		m3 = jpath_push_key(&fc->path, "key");
		key = jb_cstring(jb_get(q, "key"));
		if (key == NULL)
			fail(fc, "expected a string, found %s", jb_type_name(jb_get(q, "key")));
		if (!valid_key(key))
			fail(fc, "\"%s\" is not a valid key (lower-case letter, then a-z, 0-9, _; at most 63)", key);
		for (j = 0; j < i; j++)
		{
			char	   *other = jb_cstring(jb_get(jb_container(jb_elem(arr, j)), "key"));

			if (other && strcmp(other, key) == 0)
				fail(fc, "question key \"%s\" appears twice", key);
		}
		jpath_pop(&fc->path, m3);

		m3 = jpath_push_key(&fc->path, "type");
		type = jb_cstring(jb_get(q, "type"));
		if (type == NULL)
			fail(fc, "expected a string, found %s", jb_type_name(jb_get(q, "type")));
		if (form_question_type(type) == QT_INVALID)
			fail(fc, "unknown question type \"%s\" (use single, multi, number, boolean, text, location or photo)", type);
		jpath_pop(&fc->path, m3);

		switch (form_question_type(type))
		{
			case QT_SINGLE:
			case QT_MULTI:
				check_keys(fc, q, k_choice);
				check_choices(fc, q);
				break;
			case QT_NUMBER:
				check_keys(fc, q, k_number);
				check_number(fc, q);
				break;
			case QT_BOOLEAN:
				check_keys(fc, q, k_bool);
				check_boolean(fc, q);
				break;
			case QT_TEXT:
				check_keys(fc, q, k_text);
				if (jb_get(q, "max_length"))
				{
					m3 = jpath_push_key(&fc->path, "max_length");
					want_int(fc, jb_get(q, "max_length"), 1, MAX_TEXT_LENGTH);
					jpath_pop(&fc->path, m3);
				}
				break;
			default:
				check_keys(fc, q, common);
				break;
		}
		check_label(fc, q, "label", true);
		check_label(fc, q, "help", false);
		if ((req = jb_get(q, "required")) != NULL)
		{
			m3 = jpath_push_key(&fc->path, "required");
			want_bool(fc, req);
			jpath_pop(&fc->path, m3);
		}
		check_show_if(fc, arr, i, q);
		jpath_pop(&fc->path, m2);
	}
	jpath_pop(&fc->path, mark);
}

void
form_validate_definition(Jsonb *def)
{
	static const char *const allowed[] = {"levels", "questions", "title", "description", NULL};
	FormCheck	fc;
	JsonbContainer *root = &def->root;

	memset(&fc, 0, sizeof(fc));
	jpath_init(&fc.path);

	if (!JsonContainerIsObject(root))
		fail(&fc, "a form definition must be a JSON object");
	check_keys(&fc, root, allowed);
	check_label(&fc, root, "title", false);
	check_label(&fc, root, "description", false);
	check_levels(&fc, root);
	check_questions(&fc, root);
}

PG_FUNCTION_INFO_V1(sc_validate_form_definition);
Datum
sc_validate_form_definition(PG_FUNCTION_ARGS)
{
	form_validate_definition(PG_GETARG_JSONB_P(0));
	PG_RETURN_VOID();
}

/* ---- the form model shared with the answer validator ---- */

QuestionType
form_question_type(const char *type)
{
	if (strcmp(type, "single") == 0)
		return QT_SINGLE;
	if (strcmp(type, "multi") == 0)
		return QT_MULTI;
	if (strcmp(type, "number") == 0)
		return QT_NUMBER;
	if (strcmp(type, "boolean") == 0)
		return QT_BOOLEAN;
	if (strcmp(type, "text") == 0)
		return QT_TEXT;
	if (strcmp(type, "location") == 0)
		return QT_LOCATION;
	if (strcmp(type, "photo") == 0)
		return QT_PHOTO;
	return QT_INVALID;
}

JsonbContainer *
form_find_choice(JsonbContainer *question, const char *value)
{
	JsonbContainer *arr = jb_container(jb_get(question, "choices"));
	int			i,
				n;

	if (arr == NULL)
		return NULL;
	n = jb_array_size(arr);
	for (i = 0; i < n; i++)
	{
		JsonbContainer *ch = jb_container(jb_elem(arr, i));
		JsonbValue *v = jb_get(ch, "value");

		if (v && v->type == jbvString &&
			(size_t) v->val.string.len == strlen(value) &&
			memcmp(v->val.string.val, value, v->val.string.len) == 0)
			return ch;
	}
	return NULL;
}

/* The level entry of `level` in the definition's "levels", or NULL. */
JsonbContainer *
form_find_level(JsonbContainer *root, int level)
{
	JsonbContainer *arr = jb_container(jb_get(root, "levels"));
	int			i,
				n;

	if (arr == NULL)
		return NULL;
	n = jb_array_size(arr);
	for (i = 0; i < n; i++)
	{
		JsonbContainer *lv = jb_container(jb_elem(arr, i));
		JsonbValue *v = jb_get(lv, "level");

		if (v && v->type == jbvNumeric &&
			DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric))) == level)
			return lv;
	}
	return NULL;
}

int
form_lowest_level(JsonbContainer *root)
{
	JsonbContainer *arr = jb_container(jb_get(root, "levels"));
	int			i,
				n,
				lowest = MAX_LEVELS;

	n = arr ? jb_array_size(arr) : 0;
	for (i = 0; i < n; i++)
	{
		JsonbValue *v = jb_get(jb_container(jb_elem(arr, i)), "level");
		int			l = DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));

		if (l < lowest)
			lowest = l;
	}
	return lowest == MAX_LEVELS ? 0 : lowest;
}
