/*-------------------------------------------------------------------------
 *
 * html.c
 *	  The reporter page: the request's form rendered from its definition
 *	  (report_form(token)), in Japanese or English, and the posted fields
 *	  turned back into the answers document that submit_report checks.
 *
 * The page works without JavaScript: a plain HTML form, posted and
 * answered by the server.  Questions with a condition (show_if) are all
 * shown, each saying when it applies; the answers of those that do not
 * apply are left out before the report is submitted, as the form requires.
 * A small script (assets/report.js, served from /assets/report.js), where
 * it runs, hides them as the reporter answers.  No external assets: the
 * style sheet (assets/report.css) is inline, allowed by its hash in the
 * Content-Security-Policy (web_common.c), and the whole page stays far under
 * 30 KB.
 *
 * Every string that comes from a tenant (names, titles, labels, help,
 * answers) goes through html_escape.  The checking of answers is
 * submit_report's: this file only reads numbers and booleans off the form.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "forms/form.h"
#include "forms/jsonb_util.h"
#include "web/web.h"

typedef struct Words
{
	const char *ja;
	const char *en;
} Words;

#define W(lang, w) (strcmp((lang), "en") == 0 ? (w).en : (w).ja)

static const Words w_site = {"拠点", "Site"};
static const Words w_deadline = {"回答期限", "Please answer by"};
static const Words w_site_shindo = {"この拠点の震度", "Seismic intensity at this site"};
static const Words w_drill = {"【訓練】", "[DRILL]"};
static const Words w_required = {"必須", "required"};
static const Words w_send = {"送信する", "Send"};
static const Words w_update = {"報告を更新する", "Update the report"};
static const Words w_yes = {"はい", "Yes"};
static const Words w_no = {"いいえ", "No"};
static const Words w_lat = {"緯度", "Latitude"};
static const Words w_lon = {"経度", "Longitude"};
static const Words w_only_if = {"次の場合のみ回答", "Answer only if"};
static const Words w_is = {"が", "is"};
static const Words w_or = {"・", " or "};
static const Words w_current = {"現在の報告", "Current report"};
static const Words w_reports = {"回目の報告", "report(s) so far"};
static const Words w_received = {
	"報告を受け付けました。ありがとうございました。状況が変わったら、このページから報告を更新できます。",
	"Your report has been received. Thank you. If the situation changes, you can update it on this page."
};
static const Words w_invalid = {
	"送信できませんでした。印の付いた質問を確認してください。入力した内容はそのまま残っています。",
	"Not sent: please check the marked questions. What you entered has been kept."
};
static const Words w_closed = {
	"この依頼は締め切られました。報告はもう受け付けられません。急ぎの連絡は災害対策本部へ直接どうぞ。",
	"This request is closed and no longer takes reports. For anything urgent, contact the crisis team directly."
};
static const Words w_cancelled = {
	"この依頼は取り消されました。報告は不要です。",
	"This request was cancelled. No report is needed."
};
static const Words w_read_only = {
	"ただいま報告を受け付けられません(サーバーの切り替え中)。少し待ってからもう一度送信してください。入力した内容は残っています。",
	"Reports cannot be taken at this moment (the server is switching over). Please send again in a little while; what you entered has been kept."
};
static const Words w_need_number = {"数字で入力してください。", "Please enter a number."};
static const Words w_need_both = {"緯度と経度の両方を数字で入力してください。", "Please enter both latitude and longitude as numbers."};
static const Words w_need_choice = {"選択肢から選んでください。", "Please choose one of the options."};
static const Words w_is_required = {"この質問は必須です。", "This question is required."};
static const Words w_check = {"入力内容を確認してください: ", "Please check: "};
static const Words w_language = {"English", "日本語"};
static const Words w_other_lang = {"en", "ja"};



void
html_escape(StringInfo buf, const char *s)
{
	if (s == NULL)
		return;
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				appendStringInfoString(buf, "&amp;");
				break;
			case '<':
				appendStringInfoString(buf, "&lt;");
				break;
			case '>':
				appendStringInfoString(buf, "&gt;");
				break;
			case '"':
				appendStringInfoString(buf, "&quot;");
				break;
			case '\'':
				appendStringInfoString(buf, "&#39;");
				break;
			default:
				appendStringInfoChar(buf, *s);
		}
	}
}

/* a label: {"ja": …, "en": …} in the page's language (else the other), or a plain string */
static const char *
label_of(JsonbValue *v, const char *lang)
{
	char	   *s;

	if (v == NULL)
		return "";
	if (v->type == jbvString)
		return jb_cstring(v);
	if (!jb_is_object(v))
		return "";
	s = jb_cstring(jb_get(jb_container(v), lang));
	if (s == NULL || *s == '\0')
		s = jb_cstring(jb_get(jb_container(v), strcmp(lang, "en") == 0 ? "ja" : "en"));
	return s ? s : "";
}

static const char *
str_of(JsonbContainer *c, const char *key)
{
	return c ? jb_cstring(jb_get(c, key)) : NULL;
}

static JsonbContainer *
obj_of(JsonbContainer *c, const char *key)
{
	JsonbValue *v = c ? jb_get(c, key) : NULL;

	return jb_is_object(v) ? jb_container(v) : NULL;
}

/* a scalar as text: strings as they are, numbers and booleans as JSON writes them */
static char *
scalar_text(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return jb_cstring(v);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/*
 * "2026-11-26T18:00:00+09:00" (how jsonb writes a timestamptz in the
 * worker's time zone) as "11月26日 18:00" or "2026-11-26 18:00", with the
 * zone: JST for +09:00, else the offset.
 */
static void
append_time(StringInfo buf, const char *iso, const char *lang)
{
	int			y,
				mo,
				d,
				h,
				mi;
	const char *zone;

	if (iso == NULL || sscanf(iso, "%4d-%2d-%2dT%2d:%2d", &y, &mo, &d, &h, &mi) != 5)
	{
		html_escape(buf, iso);
		return;
	}
	zone = strlen(iso) >= 6 ? iso + strlen(iso) - 6 : "";
	if (strcmp(lang, "en") == 0)
		appendStringInfo(buf, "%04d-%02d-%02d %02d:%02d", y, mo, d, h, mi);
	else
		appendStringInfo(buf, "%d月%d日 %02d:%02d", mo, d, h, mi);
	if (strcmp(zone, "+09:00") == 0)
		appendStringInfoString(buf, " (JST)");
	else if (zone[0] == '+' || zone[0] == '-')
		appendStringInfo(buf, " (UTC%s)", zone);
}

/* ---------------------------------------------------------------- fields */

static WebField *
field_new(const char *name, const char *value)
{
	WebField   *f = palloc0(sizeof(WebField));

	f->name = pstrdup(name);
	initStringInfo(&f->value);
	if (value)
		appendStringInfoString(&f->value, value);
	return f;
}

static const char *
field_value(List *fields, const char *name)
{
	ListCell   *lc;

	foreach(lc, fields)
	{
		WebField   *f = lfirst(lc);

		if (strcmp(f->name, name) == 0)
			return f->value.data;
	}
	return NULL;
}

static bool
field_has(List *fields, const char *name, const char *value)
{
	ListCell   *lc;

	foreach(lc, fields)
	{
		WebField   *f = lfirst(lc);

		if (strcmp(f->name, name) == 0 && strcmp(f->value.data, value) == 0)
			return true;
	}
	return false;
}

/* the site's latest answers as the fields that would post them */
static List *
fields_of_answers(JsonbContainer *answers)
{
	List	   *out = NIL;
	List	   *keys = answers ? jb_object_keys(answers) : NIL;
	ListCell   *lc;

	foreach(lc, keys)
	{
		const char *k = lfirst(lc);
		JsonbValue *v = jb_get(answers, k);
		char	   *name = psprintf("q.%s", k);

		if (jb_is_array(v))
		{
			JsonbContainer *a = jb_container(v);

			for (int i = 0; i < jb_array_size(a); i++)
			{
				char	   *s = scalar_text(jb_elem(a, i));

				if (s)
					out = lappend(out, field_new(name, s));
			}
		}
		else if (jb_is_object(v))
		{
			/* a location */
			char	   *lat = scalar_text(jb_get(jb_container(v), "lat"));
			char	   *lon = scalar_text(jb_get(jb_container(v), "lon"));

			if (lat && lon)
			{
				out = lappend(out, field_new(psprintf("%s.lat", name), lat));
				out = lappend(out, field_new(psprintf("%s.lon", name), lon));
			}
		}
		else
		{
			char	   *s = scalar_text(v);

			if (s)
				out = lappend(out, field_new(name, s));
		}
	}
	return out;
}

/* -------------------------------------------------------------- the page */

static void
page_start(StringInfo buf, const char *lang, const char *title)
{
	appendStringInfo(buf,
					 "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
					 "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
					 "<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">"
					 "<title>", strcmp(lang, "en") == 0 ? "en" : "ja");
	html_escape(buf, title);
	appendStringInfo(buf, "</title><style>%s</style></head><body><main>", sc_asset_report_css);
}

static void
page_end(StringInfo buf, bool with_script)
{
	appendStringInfoString(buf, "<footer>status_checker</footer></main>");
	if (with_script)
		appendStringInfoString(buf, "<script src=\"/assets/report.js\" defer></script>");
	appendStringInfoString(buf, "</body></html>\n");
}

void
message_page_html(StringInfo buf, const char *lang, const char *title, const char *text)
{
	page_start(buf, lang, title);
	appendStringInfoString(buf, "<header><h1>");
	html_escape(buf, title);
	appendStringInfoString(buf, "</h1></header><div class=\"banner info\">");
	html_escape(buf, text);
	appendStringInfoString(buf, "</div>");
	page_end(buf, false);
}

static const char *
error_for(List *errors, const char *key)
{
	ListCell   *lc;

	foreach(lc, errors)
	{
		WebError   *e = lfirst(lc);

		if (e->question && key && strcmp(e->question, key) == 0)
			return e->message;
		if (e->question == NULL && key == NULL)
			return e->message;
	}
	return NULL;
}

/* "Answer only if <question> is <a> or <b>" */
static void
append_condition(StringInfo buf, JsonbContainer *questions, JsonbContainer *cond, const char *lang)
{
	const char *ref = str_of(cond, "question");
	JsonbValue *inv = jb_get(cond, "in");
	JsonbContainer *in = jb_is_array(inv) ? jb_container(inv) : NULL;
	JsonbContainer *refq = NULL;
	int			n = in ? jb_array_size(in) : 0;

	for (int i = 0; i < jb_array_size(questions); i++)
	{
		JsonbContainer *q = jb_container(jb_elem(questions, i));
		const char *k = str_of(q, "key");

		if (k && ref && strcmp(k, ref) == 0)
			refq = q;
	}
	appendStringInfo(buf, "<p class=\"cond\">%s: ", W(lang, w_only_if));
	appendStringInfoString(buf, "「");
	html_escape(buf, refq ? label_of(jb_get(refq, "label"), lang) : ref);
	appendStringInfo(buf, "」%s ", W(lang, w_is));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = jb_elem(in, i);
		const char *shown = NULL;

		if (i > 0)
			appendStringInfoString(buf, W(lang, w_or));
		if (v->type == jbvBool)
			shown = v->val.boolean ? W(lang, w_yes) : W(lang, w_no);
		else if (refq)
		{
			JsonbContainer *ch = form_find_choice(refq, jb_cstring(v));

			if (ch)
				shown = label_of(jb_get(ch, "label"), lang);
		}
		appendStringInfoString(buf, "「");
		html_escape(buf, shown ? shown : scalar_text(v));
		appendStringInfoString(buf, "」");
	}
	appendStringInfoString(buf, "</p>");
}

/* data-in: the condition's values as a JSON array of strings, for the script */
static void
append_condition_data(StringInfo buf, JsonbContainer *cond)
{
	JsonbValue *inv = jb_get(cond, "in");
	JsonbContainer *in = jb_is_array(inv) ? jb_container(inv) : NULL;
	StringInfoData json;

	initStringInfo(&json);
	appendStringInfoChar(&json, '[');
	for (int i = 0; in && i < jb_array_size(in); i++)
	{
		char	   *s = scalar_text(jb_elem(in, i));

		if (i > 0)
			appendStringInfoChar(&json, ',');
		escape_json(&json, s ? s : "");
	}
	appendStringInfoChar(&json, ']');
	appendStringInfoString(buf, " data-if=\"");
	html_escape(buf, str_of(cond, "question"));
	appendStringInfoString(buf, "\" data-in=\"");
	html_escape(buf, json.data);
	appendStringInfoChar(buf, '"');
}

static void
append_choice(StringInfo buf, const char *type, const char *name, const char *value,
			  const char *label, bool checked, bool required)
{
	appendStringInfo(buf, "<label class=\"c\"><input type=\"%s\" name=\"", type);
	html_escape(buf, name);
	appendStringInfoString(buf, "\" value=\"");
	html_escape(buf, value);
	appendStringInfo(buf, "\"%s%s>", checked ? " checked" : "", required ? " required" : "");
	html_escape(buf, label);
	appendStringInfoString(buf, "</label>");
}

static void
append_input(StringInfo buf, const char *type, const char *name, const char *value,
			 const char *extra, const char *aria_label)
{
	appendStringInfo(buf, "<input type=\"%s\" name=\"", type);
	html_escape(buf, name);
	appendStringInfoString(buf, "\" value=\"");
	html_escape(buf, value ? value : "");
	appendStringInfoChar(buf, '"');
	if (aria_label)
	{
		appendStringInfoString(buf, " aria-label=\"");
		html_escape(buf, aria_label);
		appendStringInfoChar(buf, '"');
	}
	appendStringInfo(buf, "%s>", extra ? extra : "");
}

static void
append_question(StringInfo buf, JsonbContainer *questions, JsonbContainer *q, List *fields,
				List *errors, const char *lang)
{
	const char *key = str_of(q, "key");
	const char *type = str_of(q, "type");
	JsonbValue *req = jb_get(q, "required");
	bool		required = req && req->type == jbvBool && req->val.boolean;
	JsonbContainer *cond = obj_of(q, "show_if");
	const char *help = str_of(q, "help") ? str_of(q, "help") : label_of(jb_get(q, "help"), lang);
	const char *err = error_for(errors, key);
	char	   *name = psprintf("q.%s", key);
	const char *value = field_value(fields, name);

	/* a native "required" only where the question always applies */
	bool		native_required = required && cond == NULL;

	appendStringInfoString(buf, "<fieldset class=\"q");
	if (err)
		appendStringInfoString(buf, " error");
	appendStringInfoString(buf, "\" id=\"q-");
	html_escape(buf, key);
	appendStringInfoChar(buf, '"');
	if (cond)
		append_condition_data(buf, cond);
	appendStringInfoString(buf, "><legend>");
	html_escape(buf, label_of(jb_get(q, "label"), lang));
	if (required)
		appendStringInfo(buf, "<span class=\"req\">%s</span>", W(lang, w_required));
	appendStringInfoString(buf, "</legend>");
	if (help && *help)
	{
		appendStringInfoString(buf, "<p class=\"help\">");
		html_escape(buf, help);
		appendStringInfoString(buf, "</p>");
	}
	if (cond)
		append_condition(buf, questions, cond, lang);
	if (err)
	{
		appendStringInfoString(buf, "<p class=\"err\" role=\"alert\">");
		html_escape(buf, err);
		appendStringInfoString(buf, "</p>");
	}

	switch (form_question_type(type))
	{
		case QT_SINGLE:
		case QT_MULTI:
			{
				bool		multi = form_question_type(type) == QT_MULTI;
				JsonbValue *chv = jb_get(q, "choices");
				JsonbContainer *choices = jb_is_array(chv) ? jb_container(chv) : NULL;

				for (int i = 0; choices && i < jb_array_size(choices); i++)
				{
					JsonbContainer *c = jb_container(jb_elem(choices, i));
					const char *v = str_of(c, "value");

					append_choice(buf, multi ? "checkbox" : "radio", name, v,
								  label_of(jb_get(c, "label"), lang),
								  v && field_has(fields, name, v), native_required && !multi);
				}
			}
			break;
		case QT_BOOLEAN:
			append_choice(buf, "radio", name, "true", W(lang, w_yes),
						  field_has(fields, name, "true"), native_required);
			append_choice(buf, "radio", name, "false", W(lang, w_no),
						  field_has(fields, name, "false"), native_required);
			break;
		case QT_NUMBER:
			{
				StringInfoData extra;
				char	   *min = scalar_text(jb_get(q, "min"));
				char	   *max = scalar_text(jb_get(q, "max"));
				JsonbValue *integer = jb_get(q, "integer");
				const char *unit = str_of(q, "unit") ? str_of(q, "unit") : label_of(jb_get(q, "unit"), lang);

				initStringInfo(&extra);
				appendStringInfoString(&extra, " inputmode=\"decimal\"");
				if (min)
					appendStringInfo(&extra, " min=\"%s\"", min);
				if (max)
					appendStringInfo(&extra, " max=\"%s\"", max);
				appendStringInfoString(&extra, integer && integer->type == jbvBool && integer->val.boolean
									   ? " step=\"1\"" : " step=\"any\"");
				if (native_required)
					appendStringInfoString(&extra, " required");
				append_input(buf, "number", name, value, extra.data, NULL);
				if (unit && *unit)
				{
					appendStringInfoString(buf, " <span class=\"unit\">");
					html_escape(buf, unit);
					appendStringInfoString(buf, "</span>");
				}
			}
			break;
		case QT_TEXT:
			{
				char	   *max = scalar_text(jb_get(q, "max_length"));

				appendStringInfoString(buf, "<textarea rows=\"3\" name=\"");
				html_escape(buf, name);
				appendStringInfoChar(buf, '"');
				if (max)
					appendStringInfo(buf, " maxlength=\"%s\"", max);
				if (native_required)
					appendStringInfoString(buf, " required");
				appendStringInfoChar(buf, '>');
				html_escape(buf, value);
				appendStringInfoString(buf, "</textarea>");
			}
			break;
		case QT_LOCATION:
			{
				char	   *lat = psprintf("%s.lat", name);
				char	   *lon = psprintf("%s.lon", name);

				appendStringInfo(buf, "<p class=\"help\">%s</p>", W(lang, w_lat));
				append_input(buf, "text", lat, field_value(fields, lat), " inputmode=\"decimal\"", W(lang, w_lat));
				appendStringInfo(buf, "<p class=\"help\">%s</p>", W(lang, w_lon));
				append_input(buf, "text", lon, field_value(fields, lon), " inputmode=\"decimal\"", W(lang, w_lon));
			}
			break;
		case QT_PHOTO:
			append_input(buf, "url", name, value, " placeholder=\"https://\"", NULL);
			break;
		default:
			break;
	}
	appendStringInfoString(buf, "</fieldset>");
}

void
reporter_page_html(StringInfo buf, ReporterPage *page)
{
	JsonbContainer *root = &page->doc->root;
	JsonbContainer *request = obj_of(root, "request");
	JsonbContainer *site = obj_of(root, "site");
	JsonbContainer *event = obj_of(request, "event");
	JsonbContainer *form = obj_of(root, "form");
	JsonbContainer *latest = obj_of(root, "latest");
	JsonbValue *qv = form ? jb_get(form, "questions") : NULL;
	JsonbContainer *questions = jb_is_array(qv) ? jb_container(qv) : NULL;
	const char *lang = page->lang;
	const char *state = str_of(request, "state");
	JsonbValue *drill = request ? jb_get(request, "drill") : NULL;
	bool		open = state && strcmp(state, "open") == 0;
	List	   *fields = page->posted;

	if (fields == NIL && latest)
		fields = fields_of_answers(obj_of(latest, "answers"));

	page_start(buf, lang, str_of(request, "title"));

	/* what is asked, of which site, by when */
	appendStringInfo(buf, "<header><a class=\"lang\" href=\"?lang=%s\" lang=\"%s\">%s</a>",
					 W(lang, w_other_lang), W(lang, w_other_lang), W(lang, w_language));
	appendStringInfoString(buf, "<p class=\"tenant\">");
	html_escape(buf, str_of(root, "tenant"));
	appendStringInfoString(buf, "</p><h1>");
	if (drill && drill->type == jbvBool && drill->val.boolean)
		appendStringInfoString(buf, W(lang, w_drill));
	html_escape(buf, str_of(request, "title"));
	appendStringInfoString(buf, "</h1>");
	if (event && str_of(event, "summary"))
	{
		appendStringInfoString(buf, "<p class=\"event\">");
		html_escape(buf, str_of(event, "summary"));
		appendStringInfoString(buf, "</p>");
	}
	appendStringInfo(buf, "<p class=\"meta\">%s: ", W(lang, w_site));
	html_escape(buf, str_of(site, "name"));
	appendStringInfoString(buf, " (");
	html_escape(buf, str_of(site, "code"));
	appendStringInfoString(buf, ")</p>");
	if (obj_of(site, "shindo_label"))
	{
		appendStringInfo(buf, "<p class=\"meta\">%s: ", W(lang, w_site_shindo));
		html_escape(buf, label_of(jb_get(site, "shindo_label"), lang));
		appendStringInfoString(buf, "</p>");
	}
	appendStringInfo(buf, "<p class=\"meta\">%s: ", W(lang, w_deadline));
	append_time(buf, str_of(request, "deadline"), lang);
	appendStringInfoString(buf, "</p>");
	if (str_of(request, "message"))
	{
		appendStringInfoString(buf, "<p>");
		html_escape(buf, str_of(request, "message"));
		appendStringInfoString(buf, "</p>");
	}
	appendStringInfoString(buf, "</header>");

	/* the outcome of what was just done, or why nothing can be done */
	if (!open && page->banner != BANNER_RECEIVED)
		page->banner = BANNER_CLOSED;
	switch (page->banner)
	{
		case BANNER_RECEIVED:
			appendStringInfo(buf, "<div class=\"banner ok\" role=\"status\" id=\"received\">%s</div>",
							 W(lang, w_received));
			break;
		case BANNER_INVALID:
			appendStringInfo(buf, "<div class=\"banner bad\" role=\"alert\">%s", W(lang, w_invalid));
			if (error_for(page->errors, NULL))
			{
				appendStringInfoString(buf, "<br>");
				html_escape(buf, error_for(page->errors, NULL));
			}
			appendStringInfoString(buf, "</div>");
			break;
		case BANNER_CLOSED:
			if (state && strcmp(state, "cancelled") == 0)
			{
				appendStringInfo(buf, "<div class=\"banner info\" role=\"alert\">%s", W(lang, w_cancelled));
				if (str_of(request, "cancel_reason"))
				{
					appendStringInfoString(buf, "<br>");
					html_escape(buf, str_of(request, "cancel_reason"));
				}
				appendStringInfoString(buf, "</div>");
			}
			else
				appendStringInfo(buf, "<div class=\"banner info\" role=\"alert\">%s</div>", W(lang, w_closed));
			break;
		case BANNER_READ_ONLY:
			appendStringInfo(buf, "<div class=\"banner info\" role=\"alert\">%s</div>", W(lang, w_read_only));
			break;
		case BANNER_NONE:
			break;
	}

	/* the site's current status */
	if (latest)
	{
		JsonbValue *lv = jb_get(latest, "level");
		JsonbContainer *level = NULL;
		char	   *count = scalar_text(jb_get(latest, "report_count"));

		if (lv && lv->type == jbvNumeric)
			level = form_find_level(form, DatumGetInt32(DirectFunctionCall1(numeric_int4,
																			NumericGetDatum(lv->val.numeric))));
		appendStringInfo(buf, "<div class=\"current\" id=\"current\">%s: <strong>", W(lang, w_current));
		html_escape(buf, level ? label_of(jb_get(level, "label"), lang) : "");
		appendStringInfoString(buf, "</strong><br><span class=\"meta\">");
		append_time(buf, str_of(latest, "submitted_at"), lang);
		if (count)
			appendStringInfo(buf, strcmp(lang, "en") == 0 ? " · %s %s" : "・%s%s", count, W(lang, w_reports));
		appendStringInfoString(buf, "</span></div>");
	}

	if (open && questions)
	{
		appendStringInfoString(buf, "<form class=\"report\" method=\"post\" action=\"/r/");
		html_escape(buf, page->token);
		appendStringInfoString(buf, "\" accept-charset=\"utf-8\"><input type=\"hidden\" name=\"_key\" value=\"");
		html_escape(buf, page->key);
		appendStringInfo(buf, "\"><input type=\"hidden\" name=\"_lang\" value=\"%s\">", lang);
		for (int i = 0; i < jb_array_size(questions); i++)
			append_question(buf, questions, jb_container(jb_elem(questions, i)), fields, page->errors, lang);
		appendStringInfo(buf, "<button type=\"submit\">%s</button></form>",
						 latest ? W(lang, w_update) : W(lang, w_send));
	}
	page_end(buf, open && questions);
}

/* ------------------------------------------------- fields back to answers */

/*
 * A number as typed on a phone: full-width digits, point and minus (a
 * Japanese input method's) become ASCII; then it must be a plain decimal
 * number.  NULL if it is not one.
 */
static char *
normalize_number(const char *s)
{
	StringInfoData out;
	const unsigned char *p = (const unsigned char *) s;
	int			digits = 0;
	int			points = 0;

	initStringInfo(&out);
	while (*p == ' ')
		p++;
	while (*p)
	{
		/* U+FF10..U+FF19 ０-９: EF BC 90..99; U+FF0E ．: EF BC 8E; U+FF0D －: EF BC 8D */
		if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99)
		{
			appendStringInfoChar(&out, '0' + (p[2] - 0x90));
			p += 3;
		}
		else if (p[0] == 0xEF && p[1] == 0xBC && (p[2] == 0x8E || p[2] == 0x8D))
		{
			appendStringInfoChar(&out, p[2] == 0x8E ? '.' : '-');
			p += 3;
		}
		else if (*p == ' ')
			p++;
		else
			appendStringInfoChar(&out, (char) *p++);
	}
	for (int i = 0; i < out.len; i++)
	{
		char		c = out.data[i];

		if (c >= '0' && c <= '9')
			digits++;
		else if (c == '.' && points == 0 && i > (out.data[0] == '-' ? 1 : 0) && i < out.len - 1)
			points++;
		else if (!(c == '-' && i == 0))
			return NULL;
	}
	if (digits == 0 || digits > 30)
		return NULL;
	/* JSON has no leading zeros: let numeric tidy "007" and "-0.50" */
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   DirectFunctionCall3(numeric_in, CStringGetDatum(out.data),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1))));
}

static void
add_error(List **errors, const char *key, const char *message)
{
	WebError   *e = palloc0(sizeof(WebError));

	e->question = key ? pstrdup(key) : NULL;
	e->message = pstrdup(message);
	*errors = lappend(*errors, e);
}

typedef struct Given
{
	const char *key;
	List	   *values;			/* the answer's values as text */
} Given;

static bool
condition_met(JsonbContainer *cond, Given *given, int ngiven)
{
	const char *ref = str_of(cond, "question");
	JsonbValue *inv = jb_get(cond, "in");
	JsonbContainer *in = jb_is_array(inv) ? jb_container(inv) : NULL;

	for (int g = 0; g < ngiven; g++)
	{
		ListCell   *lc;

		if (strcmp(given[g].key, ref) != 0)
			continue;
		foreach(lc, given[g].values)
		{
			for (int i = 0; in && i < jb_array_size(in); i++)
			{
				char	   *s = scalar_text(jb_elem(in, i));

				if (s && strcmp(s, lfirst(lc)) == 0)
					return true;
			}
		}
	}
	return false;
}

/*
 * The answers document for the posted fields, or NULL with *errors set when
 * a number or a yes/no cannot be read.  Empty fields are unanswered
 * questions; questions whose condition is not met are left out.
 */
Jsonb *
answers_from_fields(Jsonb *doc, List *posted, const char *lang, List **errors)
{
	JsonbContainer *form = obj_of(&doc->root, "form");
	JsonbValue *qv = form ? jb_get(form, "questions") : NULL;
	JsonbContainer *questions = jb_is_array(qv) ? jb_container(qv) : NULL;
	int			nq = questions ? jb_array_size(questions) : 0;
	Given	   *given = palloc0(sizeof(Given) * (nq + 1));
	StringInfoData json;
	bool		first = true;

	initStringInfo(&json);
	appendStringInfoChar(&json, '{');
	for (int i = 0; i < nq; i++)
	{
		JsonbContainer *q = jb_container(jb_elem(questions, i));
		const char *key = str_of(q, "key");
		QuestionType type = form_question_type(str_of(q, "type"));
		JsonbContainer *cond = obj_of(q, "show_if");
		char	   *name = psprintf("q.%s", key);
		const char *value = field_value(posted, name);
		StringInfoData item;
		ListCell   *lc;

		given[i].key = key;
		if (cond && !condition_met(cond, given, i))
			continue;
		initStringInfo(&item);
		switch (type)
		{
			case QT_SINGLE:
			case QT_TEXT:
			case QT_PHOTO:
				if (value && value[strspn(value, " \t\r\n")] != '\0')
				{
					escape_json(&item, value);
					given[i].values = list_make1(pstrdup(value));
				}
				break;
			case QT_MULTI:
				foreach(lc, posted)
				{
					WebField   *f = lfirst(lc);

					if (strcmp(f->name, name) != 0 || f->value.len == 0)
						continue;
					appendStringInfoChar(&item, item.len == 0 ? '[' : ',');
					escape_json(&item, f->value.data);
					given[i].values = lappend(given[i].values, f->value.data);
				}
				if (item.len > 0)
					appendStringInfoChar(&item, ']');
				break;
			case QT_BOOLEAN:
				if (value && (strcmp(value, "true") == 0 || strcmp(value, "false") == 0))
				{
					appendStringInfoString(&item, value);
					given[i].values = list_make1(pstrdup(value));
				}
				else if (value && *value)
					add_error(errors, key, W(lang, w_need_choice));
				break;
			case QT_NUMBER:
				if (value && value[strspn(value, " ")] != '\0')
				{
					char	   *n = normalize_number(value);

					if (n)
						appendStringInfoString(&item, n);
					else
						add_error(errors, key, W(lang, w_need_number));
				}
				break;
			case QT_LOCATION:
				{
					const char *lat = field_value(posted, psprintf("%s.lat", name));
					const char *lon = field_value(posted, psprintf("%s.lon", name));
					bool		no_lat = lat == NULL || lat[strspn(lat, " ")] == '\0';
					bool		no_lon = lon == NULL || lon[strspn(lon, " ")] == '\0';

					if (no_lat && no_lon)
						break;
					if (no_lat || no_lon || !normalize_number(lat) || !normalize_number(lon))
						add_error(errors, key, W(lang, w_need_both));
					else
						appendStringInfo(&item, "{\"lat\":%s,\"lon\":%s}",
										 normalize_number(lat), normalize_number(lon));
				}
				break;
			default:
				break;
		}
		if (item.len == 0)
			continue;
		if (!first)
			appendStringInfoChar(&json, ',');
		first = false;
		escape_json(&json, key);
		appendStringInfoChar(&json, ':');
		appendBinaryStringInfo(&json, item.data, item.len);
	}
	appendStringInfoChar(&json, '}');
	if (*errors != NIL)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data)));
}

/*
 * A submit_report error, in plain words for the page.  Which words is
 * decided by the error's fields: an answer a required question lacks
 * (CONSTRAINT answer_required, set by src/reports/answers.c) is said in the
 * page's language; another answer check (answer_check) shows the check's
 * message without the "invalid answer at <path>: " its SQL callers get (the
 * page names the question itself, from COLUMN); anything else its message.
 */
const char *
web_error_text(const char *lang, const ErrorData *e)
{
	const char *message = e->message;
	const char *colon;

	if (message == NULL)
		return "";
	if (e->constraint_name != NULL && strcmp(e->constraint_name, "answer_required") == 0)
		return W(lang, w_is_required);
	if (e->constraint_name != NULL && strcmp(e->constraint_name, "answer_check") == 0 &&
		(colon = strstr(message, ": ")) != NULL)
		return psprintf("%s%s", W(lang, w_check), colon + 2);
	return message;
}
