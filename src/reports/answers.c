/*-------------------------------------------------------------------------
 *
 * answers.c
 *	  Validate a report's answers against its form version and compute the
 *	  report's status level, colour and icon.
 *
 * _check_answers(definition jsonb, answers jsonb)
 *	   RETURNS (level int, color text, icon text)
 *
 * The definition was validated when the form was created, so it is trusted
 * here.  The answers are not: every problem raises SQLSTATE 22023 naming the
 * JSON path of the answer (e.g. $.injured), and an answers document over
 * status_checker.max_answers_bytes raises 54000.
 *
 * Rules:
 *	 - answers is an object whose keys are question keys (no others);
 *	 - questions are visited in form order; a question applies unless its
 *	   show_if condition is unmet (a condition on a question that does not
 *	   apply, or was not answered, is unmet);
 *	 - an answer to a question that does not apply is an error; so is a
 *	   missing answer to a required question that applies; JSON null
 *	   counts as no answer;
 *	 - single: a choice value; multi: an array of distinct choice values
 *	   (non-empty when required); number: within min/max, integral when
 *	   "integer"; boolean; text: a string of at most max_length characters
 *	   (default 10000), not blank when required; location: {"lat", "lon"}
 *	   within range; photo: an https:// URL of at most 2048 bytes;
 *	 - the level is the highest reached by any answer (choice levels,
 *	   number level rules, boolean level rules), else the form's lowest
 *	   level; the colour and icon are those of the first answer that
 *	   reached it when a choice overrides them, else the level's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "common/sc_guc.h"
#include "forms/form.h"
#include "forms/jsonb_util.h"
#include "reports/report.h"

#define DEFAULT_TEXT_LENGTH 10000
#define MAX_PHOTO_URL 2048

typedef struct AnswerCheck
{
	JPath		path;
	int			level;			/* highest so far, -1 = none */
	JsonbContainer *style;		/* choice overriding colour/icon, or NULL */
} AnswerCheck;

static void afail(AnswerCheck *ac, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();
static void afail_required(AnswerCheck *ac, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();
static void afail_as(AnswerCheck *ac, const char *kind, const char *msg) pg_attribute_noreturn();

/*
 * The question an error is about, from the path ("$.detail", "$.site.lat",
 * "$.kinds[1]"): frontends find it in the error's column_name field
 * (PG_DIAG_COLUMN_NAME) and show the message next to that question.
 * NULL for an error about the whole document.
 */
static char *
question_key(AnswerCheck *ac)
{
	const char *p = ac->path.buf.data;
	size_t		n;

	if (strncmp(p, "$.", 2) != 0 || p[2] == '"')
		return NULL;
	p += 2;
	n = strcspn(p, ".[");
	return n > 0 ? pnstrdup(p, n) : NULL;
}

static void
afail(AnswerCheck *ac, const char *fmt,...)
{
	va_list		args;
	char	   *msg;

	va_start(args, fmt);
	msg = vformat_message(fmt, args);
	va_end(args);
	afail_as(ac, "answer_check", msg);
}

/* the same for an answer a required question lacks */
static void
afail_required(AnswerCheck *ac, const char *fmt,...)
{
	va_list		args;
	char	   *msg;

	va_start(args, fmt);
	msg = vformat_message(fmt, args);
	va_end(args);
	afail_as(ac, "answer_required", msg);
}

/*
 * 22023 with the question's key in COLUMN and the kind of problem in
 * CONSTRAINT (answer_required, answer_check), so that callers (the reporter
 * page) decide by fields, not by the message's words.
 */
static void
afail_as(AnswerCheck *ac, const char *kind, const char *msg)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid answer at %s: %s", ac->path.buf.data, msg),
			 errdetail("The report was not stored."),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, kind),
			 question_key(ac) ? err_generic_string(PG_DIAG_COLUMN_NAME, question_key(ac)) : 0));
}

static int
numeric_to_int(Numeric n)
{
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(n)));
}

static bool
num_lt(Numeric a, Numeric b)
{
	return DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(a), NumericGetDatum(b)));
}

static char *
num_text(Numeric n)
{
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)));
}

static void
reach(AnswerCheck *ac, JsonbValue *level, JsonbContainer *style)
{
	int			l;

	if (level == NULL || level->type != jbvNumeric)
		return;
	l = numeric_to_int(level->val.numeric);
	if (l > ac->level)
	{
		ac->level = l;
		ac->style = style;
	}
}

static bool
choice_styles(JsonbContainer *ch)
{
	return jb_get(ch, "color") != NULL || jb_get(ch, "icon") != NULL;
}

static void
check_choice_value(AnswerCheck *ac, JsonbContainer *q, JsonbValue *v)
{
	char	   *s = jb_cstring(v);
	JsonbContainer *ch;

	if (s == NULL)
		afail(ac, "expected a choice value (a string), found %s", jb_type_name(v));
	ch = form_find_choice(q, s);
	if (ch == NULL)
		afail(ac, "\"%s\" is not one of the choices", s);
	reach(ac, jb_get(ch, "level"), choice_styles(ch) ? ch : NULL);
}

static void
check_number(AnswerCheck *ac, JsonbContainer *q, JsonbValue *v)
{
	JsonbValue *min = jb_get(q, "min");
	JsonbValue *max = jb_get(q, "max");
	JsonbValue *integer = jb_get(q, "integer");
	JsonbContainer *rules = jb_container(jb_get(q, "levels"));
	Numeric		n;
	int			i,
				nr;

	if (v->type != jbvNumeric)
		afail(ac, "expected a number, found %s", jb_type_name(v));
	n = v->val.numeric;
	if (min && num_lt(n, min->val.numeric))
		afail(ac, "%s is below the minimum %s", num_text(n), num_text(min->val.numeric));
	if (max && num_lt(max->val.numeric, n))
		afail(ac, "%s is above the maximum %s", num_text(n), num_text(max->val.numeric));
	if (integer && integer->val.boolean)
	{
		Numeric		t = DatumGetNumeric(DirectFunctionCall2(numeric_trunc,
															NumericGetDatum(n),
															Int32GetDatum(0)));

		if (!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(t), NumericGetDatum(n))))
			afail(ac, "%s is not a whole number", num_text(n));
	}
	nr = rules ? jb_array_size(rules) : 0;
	for (i = 0; i < nr; i++)
	{
		JsonbContainer *r = jb_container(jb_elem(rules, i));
		JsonbValue *rmin = jb_get(r, "min");
		JsonbValue *rmax = jb_get(r, "max");

		if (rmin && num_lt(n, rmin->val.numeric))
			continue;
		if (rmax && num_lt(rmax->val.numeric, n))
			continue;
		reach(ac, jb_get(r, "level"), NULL);
	}
}

static void
check_boolean(AnswerCheck *ac, JsonbContainer *q, JsonbValue *v)
{
	JsonbContainer *rules = jb_container(jb_get(q, "levels"));
	int			i,
				nr;

	if (v->type != jbvBool)
		afail(ac, "expected true or false, found %s", jb_type_name(v));
	nr = rules ? jb_array_size(rules) : 0;
	for (i = 0; i < nr; i++)
	{
		JsonbContainer *r = jb_container(jb_elem(rules, i));
		JsonbValue *rv = jb_get(r, "value");

		if (rv && rv->type == jbvBool && rv->val.boolean == v->val.boolean)
			reach(ac, jb_get(r, "level"), NULL);
	}
}

static bool
is_blank(const char *s)
{
	for (; *s; s++)
		if (!(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
			return false;
	return true;
}

static void
check_text(AnswerCheck *ac, JsonbContainer *q, JsonbValue *v, bool required)
{
	JsonbValue *ml = jb_get(q, "max_length");
	int			max = ml ? numeric_to_int(ml->val.numeric) : DEFAULT_TEXT_LENGTH;
	int			len;

	if (v->type != jbvString)
		afail(ac, "expected text, found %s", jb_type_name(v));
	len = pg_mbstrlen_with_len(v->val.string.val, v->val.string.len);
	if (len > max)
		afail(ac, "the text has %d characters; at most %d are allowed", len, max);
	if (required && is_blank(pnstrdup(v->val.string.val, v->val.string.len)))
		afail_required(ac, "this question is required and the text is empty");
}

static void
check_location(AnswerCheck *ac, JsonbValue *v)
{
	JsonbContainer *c;
	JsonbValue *lat,
			   *lon;
	List	   *keys;
	double		dlat,
				dlon;

	if (!jb_is_object(v))
		afail(ac, "expected a location {\"lat\": …, \"lon\": …}, found %s", jb_type_name(v));
	c = jb_container(v);
	keys = jb_object_keys(c);
	lat = jb_get(c, "lat");
	lon = jb_get(c, "lon");
	if (list_length(keys) != 2 || lat == NULL || lon == NULL)
		afail(ac, "a location has exactly the keys \"lat\" and \"lon\"");
	if (lat->type != jbvNumeric || lon->type != jbvNumeric)
		afail(ac, "\"lat\" and \"lon\" must be numbers");
	dlat = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(lat->val.numeric)));
	dlon = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(lon->val.numeric)));
	if (dlat < -90 || dlat > 90 || dlon < -180 || dlon > 180)
		afail(ac, "latitude must lie in [-90, 90] and longitude in [-180, 180]");
}

static void
check_photo(AnswerCheck *ac, JsonbValue *v)
{
	int			i;

	if (v->type != jbvString)
		afail(ac, "expected an https:// link to a photo, found %s", jb_type_name(v));
	if (v->val.string.len > MAX_PHOTO_URL)
		afail(ac, "a photo link has at most %d bytes", MAX_PHOTO_URL);
	if (v->val.string.len <= 8 || strncmp(v->val.string.val, "https://", 8) != 0)
		afail(ac, "a photo link must start with https://");
	for (i = 0; i < v->val.string.len; i++)
	{
		unsigned char c = (unsigned char) v->val.string.val[i];

		if (c <= 0x20 || c == 0x7f)
			afail(ac, "a photo link must not contain spaces or control characters");
	}
}

/* Does `ans` (the answer of the condition's question) satisfy show_if? */
static bool
condition_holds(JsonbContainer *cond, JsonbValue *ans)
{
	JsonbContainer *in = jb_container(jb_get(cond, "in"));
	int			i,
				n = jb_array_size(in);

	if (ans == NULL || ans->type == jbvNull)
		return false;
	if (jb_is_array(ans))
	{
		JsonbContainer *sel = jb_container(ans);
		int			j,
					m = jb_array_size(sel);

		for (j = 0; j < m; j++)
			if (condition_holds(cond, jb_elem(sel, j)))
				return true;
		return false;
	}
	for (i = 0; i < n; i++)
		if (jb_equal_scalar(jb_elem(in, i), ans))
			return true;
	return false;
}

/*
 * Check `answers` against the form definition `def`; on success set the
 * report's level, colour and icon (either may be NULL).  Raises on any
 * problem.  Used by _check_answers() and by the report path (submit.c).
 */
void
answers_check(Jsonb *def, Jsonb *answers, int *level, char **color_out, char **icon_out)
{
	JsonbContainer *root = &def->root;
	JsonbContainer *ans = &answers->root;
	JsonbContainer *questions = jb_container(jb_get(root, "questions"));
	int			nq = jb_array_size(questions);
	char	  **keys = palloc0(sizeof(char *) * nq);
	bool	   *applies = palloc0(sizeof(bool) * nq);
	JsonbValue **values = palloc0(sizeof(JsonbValue *) * nq);
	AnswerCheck ac;
	List	   *akeys;
	ListCell   *lc;
	int			i;
	JsonbContainer *lv;
	JsonbValue *color,
			   *icon;

	memset(&ac, 0, sizeof(ac));
	jpath_init(&ac.path);
	ac.level = -1;

	if (VARSIZE(answers) > (Size) sc_max_answers_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("answers of %u bytes exceed the limit of %d bytes",
						(unsigned) VARSIZE(answers), sc_max_answers_bytes),
				 errdetail("The report was not stored."),
				 errhint("Shorten the texts, or raise status_checker.max_answers_bytes.")));
	if (!JsonContainerIsObject(ans))
		afail(&ac, "answers must be a JSON object of question key → answer");

	for (i = 0; i < nq; i++)
		keys[i] = jb_cstring(jb_get(jb_container(jb_elem(questions, i)), "key"));

	/* unknown keys */
	akeys = jb_object_keys(ans);
	foreach(lc, akeys)
	{
		const char *k = lfirst(lc);
		bool		found = false;

		for (i = 0; i < nq && !found; i++)
			found = strcmp(keys[i], k) == 0;
		if (!found)
		{
			jpath_push_key(&ac.path, k);
			afail(&ac, "the form has no question \"%s\"", k);
		}
	}

	for (i = 0; i < nq; i++)
	{
		JsonbContainer *q = jb_container(jb_elem(questions, i));
		JsonbContainer *cond = jb_container(jb_get(q, "show_if"));
		JsonbValue *req = jb_get(q, "required");
		bool		required = req && req->type == jbvBool && req->val.boolean;
		JsonbValue *v = jb_get(ans, keys[i]);
		int			mark;

		if (v && v->type == jbvNull)
			v = NULL;
		values[i] = v;
		applies[i] = true;
		if (cond)
		{
			char	   *ref = jb_cstring(jb_get(cond, "question"));
			int			j;

			applies[i] = false;
			for (j = 0; j < i; j++)
				if (strcmp(keys[j], ref) == 0)
					applies[i] = applies[j] && condition_holds(cond, values[j]);
		}

		mark = jpath_push_key(&ac.path, keys[i]);
		if (!applies[i])
		{
			if (v != NULL)
				afail(&ac, "question \"%s\" does not apply (its condition on \"%s\" is not met) and must be left out",
					  keys[i], jb_cstring(jb_get(cond, "question")));
			jpath_pop(&ac.path, mark);
			continue;
		}
		if (v == NULL)
		{
			if (required)
				afail_required(&ac, "question \"%s\" is required", keys[i]);
			jpath_pop(&ac.path, mark);
			continue;
		}

		switch (form_question_type(jb_cstring(jb_get(q, "type"))))
		{
			case QT_SINGLE:
				check_choice_value(&ac, q, v);
				break;
			case QT_MULTI:
				{
					JsonbContainer *sel;
					int			j,
								k,
								m;

					if (!jb_is_array(v))
						afail(&ac, "expected an array of choice values, found %s", jb_type_name(v));
					sel = jb_container(v);
					m = jb_array_size(sel);
					if (m == 0 && required)
						afail_required(&ac, "question \"%s\" is required: choose at least one", keys[i]);
					for (j = 0; j < m; j++)
					{
						int			m2 = jpath_push_index(&ac.path, j);
						JsonbValue *e = jb_elem(sel, j);

						check_choice_value(&ac, q, e);
						for (k = 0; k < j; k++)
							if (jb_equal_scalar(jb_elem(sel, k), e))
								afail(&ac, "\"%s\" is chosen twice", jb_cstring(e));
						jpath_pop(&ac.path, m2);
					}
				}
				break;
			case QT_NUMBER:
				check_number(&ac, q, v);
				break;
			case QT_BOOLEAN:
				check_boolean(&ac, q, v);
				break;
			case QT_TEXT:
				check_text(&ac, q, v, required);
				break;
			case QT_LOCATION:
				check_location(&ac, v);
				break;
			case QT_PHOTO:
				check_photo(&ac, v);
				break;
			case QT_INVALID:
				elog(ERROR, "form definition has an invalid question type");
		}
		jpath_pop(&ac.path, mark);
	}

	if (ac.level < 0)
		ac.level = form_lowest_level(root);
	lv = form_find_level(root, ac.level);
	color = ac.style ? jb_get(ac.style, "color") : NULL;
	icon = ac.style ? jb_get(ac.style, "icon") : NULL;
	if (color == NULL && lv)
		color = jb_get(lv, "color");
	if (icon == NULL && lv)
		icon = jb_get(lv, "icon");

	*level = ac.level;
	*color_out = color ? jb_cstring(color) : NULL;
	*icon_out = icon ? jb_cstring(icon) : NULL;
}

PG_FUNCTION_INFO_V1(sc_check_answers);
Datum
sc_check_answers(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		out[3];
	bool		nulls[3] = {false, false, false};
	int			level;
	char	   *color;
	char	   *icon;

	answers_check(PG_GETARG_JSONB_P(0), PG_GETARG_JSONB_P(1), &level, &color, &icon);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	out[0] = Int32GetDatum(level);
	if (color)
		out[1] = CStringGetTextDatum(color);
	else
		nulls[1] = true;
	if (icon)
		out[2] = CStringGetTextDatum(icon);
	else
		nulls[2] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), out, nulls)));
}
