/*-------------------------------------------------------------------------
 *
 * feed_jma_weather.c
 *	  JMA 防災情報XML: weather warnings (VPWW53, VPWW54), 土砂災害警戒情報
 *	  (VXWW50), 記録的短時間大雨情報 (VPOA50), 噴火警報・予報 (VFVO50) and
 *	  指定河川洪水予報 (VXKO).
 *
 * Each telegram is one event whose source_event_id is the scope of the
 * episode it belongs to (the 府県予報区, the volcano, the river's forecast
 * area, ...), with the warnings it states as a flat list, one entry per
 * area and kind (see feed_parse.h and docs/feeds.md, "Weather, landslide,
 * rain, flood and volcano telegrams").  The document is read and walked
 * with feed_jma.c's helpers (feed_jma.h); Control/Status, Head/InfoType
 * and Head/Serial are read as for every JMA telegram.
 *
 * Server-independent (see feed_parse.h).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <string.h>

#include <libxml/tree.h>

#include "feeds/feed_jma.h"

/* a telegram lists a prefecture's ~100 areas with a few kinds each */
#define WX_MAX_WARNINGS 10000

#define LEVEL_PREFIX "レベル"
#define RECORD_RAIN_TITLE "記録的短時間大雨情報"

typedef enum WxProduct
{
	WX_WEATHER,
	WX_LANDSLIDE,
	WX_RECORD_RAIN,
	WX_VOLCANO,
	WX_FLOOD
} WxProduct;

typedef struct WxProductInfo
{
	const char *title;			/* Control/Title */
	int			prefix;			/* also any title that starts with it */
	const char *code;
	const char *kind;
	WxProduct	product;
	const char *items;			/* what a 発表 must have, for the message */
} WxProductInfo;

static const WxProductInfo wx_products[] = {
	{"気象特別警報・警報・注意報", 0, "VPWW53", "weather", WX_WEATHER, "Body/Warning/Item/Kind"},
	{"気象警報・注意報", 1, "VPWW54", "weather", WX_WEATHER, "Body/Warning/Item/Kind"},
	{"土砂災害警戒情報", 0, "VXWW50", "landslide", WX_LANDSLIDE, "Body/Warning/Item"},
	{RECORD_RAIN_TITLE, 0, "VPOA50", "record_rain", WX_RECORD_RAIN, "Body/Warning/Item"},
	{"噴火警報・予報", 0, "VFVO50", "volcano", WX_VOLCANO, "Body/VolcanoInfo/Item/Areas/Area"},
	{"指定河川洪水予報", 0, "VXKO", "flood", WX_FLOOD, "Head/Headline/Information/Item/Areas/Area"},
	{NULL, 0, NULL, NULL, WX_WEATHER, NULL}
};

/*
 * An element type (@type) whose items are read: the scope of their
 * entries, and their area codes (digits: 0 for one to sixteen digits, and
 * the field a message names).  Tables end with a NULL type.
 */
typedef struct TypedScope
{
	const char *type;
	const char *scope;
	int			digits;
	const char *field;
} TypedScope;

/* VPWW53/54: the four Body/Warning types; the first is the episode's */
static const TypedScope vpww_types[] = {
	{"気象警報・注意報（府県予報区等）", "pref", 6, "Warning/Item/Area/Code"},
	{"気象警報・注意報（一次細分区域等）", "area1", 6, "Warning/Item/Area/Code"},
	{"気象警報・注意報（市町村等をまとめた地域等）", "area_group", 6, "Warning/Item/Area/Code"},
	{"気象警報・注意報（市町村等）", "city", 7, "Warning/Item/Area/Code"},
	{NULL, NULL, 0, NULL}
};

/* VFVO50: Body/VolcanoInfo (not the 防災対応等 one) */
static const TypedScope vfvo_types[] = {
	{"噴火警報・予報（対象火山）", "volcano", 0, "VolcanoInfo/Item/Areas/Area/Code"},
	{"噴火警報・予報（対象市町村等）", "city", 7, "VolcanoInfo/Item/Areas/Area/Code"},
	{NULL, NULL, 0, NULL}
};

/* VXKO: Head/Headline/Information (not the 府県予報区等 one) */
static const TypedScope vxko_types[] = {
	{"指定河川洪水予報（予報区域）", "river_area", 0, "Headline/Information/Item/Areas/Area/Code"},
	{"指定河川洪水予報（河川）", "river", 0, "Headline/Information/Item/Areas/Area/Code"},
	{NULL, NULL, 0, NULL}
};

/* what one telegram's parse carries along */
typedef struct WxState
{
	FeedResult *res;
	json_t	   *warnings;
	int			n;
	char		key[256];		/* source_event_id */
	char		key_name[512];	/* scope_name */
} WxState;

static const WxProductInfo *
find_product(const char *title)
{
	const WxProductInfo *p;

	for (p = wx_products; p->title; p++)
		if (p->prefix ? strncmp(title, p->title, strlen(p->title)) == 0
			: strcmp(title, p->title) == 0)
			return p;
	return NULL;
}

int
jma_weather_title(const char *title)
{
	return find_product(title) != NULL;
}

static int
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * A code of `digits` ASCII digits (0: one to sixteen).  Returns 0 and
 * fails naming `field` otherwise.
 */
static int
check_code(const char *code, int digits, const char *field, FeedResult *res)
{
	size_t		i;

	for (i = 0; code[i]; i++)
		if (!isdigit((unsigned char) code[i]))
			break;
	if (code[i] == '\0' && (digits > 0 ? i == (size_t) digits : (i >= 1 && i <= 16)))
		return 1;
	if (code[0] == '\0')
		feed_fail(res, FEED_ERR_CONTENT, "%s is missing", field);
	else if (digits > 0)
		feed_fail(res, FEED_ERR_CONTENT, "%s \"%.40s\" is not a %d-digit code", field, code, digits);
	else
		feed_fail(res, FEED_ERR_CONTENT, "%s \"%.40s\" is not a numeric code", field, code);
	return 0;
}

/*
 * レベルN… (N 1 to 5, half- or full-width): JMA's level-named warnings and
 * 噴火警戒レベル.  0 if the name is not of that form.
 */
static int
level_of(const char *name)
{
	const unsigned char *p;

	if (!starts_with(name, LEVEL_PREFIX))
		return 0;
	p = (const unsigned char *) name + strlen(LEVEL_PREFIX);
	if (p[0] >= '1' && p[0] <= '5')
		return p[0] - '0';
	/* U+FF11 … U+FF15 */
	if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x91 && p[2] <= 0x95)
		return p[2] - 0x90;
	return 0;
}

/* obj[key] = the element's text; nothing when it is absent or empty */
static void
set_present(json_t *obj, const char *key, xmlNodePtr n)
{
	char		buf[1024];

	if (n && *jma_text_of(n, buf, sizeof(buf)) != '\0')
		feed_set_str(obj, key, buf);
}

/*
 * One entry of "warnings": the area (its code checked), the kind and the
 * last kind (elements with Code and Name), the status and condition
 * (elements whose text they are).  Any of the last four may be NULL.
 * Returns 0 (res set) on a bad code or too many entries.
 */
static int
add_warning(WxState *st, const char *scope, xmlNodePtr code, xmlNodePtr name,
			int digits, const char *code_field, xmlNodePtr kind, xmlNodePtr status,
			xmlNodePtr last_kind, xmlNodePtr condition)
{
	json_t	   *o;
	const char *kind_name;
	char		buf[256];
	int			level;

	if (st->res->code != FEED_OK)
		return 0;
	if (!check_code(jma_text_of(code, buf, sizeof(buf)), digits, code_field, st->res))
		return 0;
	if (++st->n > WX_MAX_WARNINGS)
	{
		feed_fail(st->res, FEED_ERR_CONTENT, "more than %d warning entries in one telegram", WX_MAX_WARNINGS);
		return 0;
	}
	o = json_object();
	feed_set_str(o, "scope", scope);
	feed_set_str(o, "code", buf);
	set_present(o, "name", name);
	if (jma_child(kind, "Code") &&
		*jma_text_of(jma_child(kind, "Code"), buf, sizeof(buf)) != '\0' &&
		!check_code(buf, 0, "Kind/Code", st->res))
	{
		json_decref(o);
		return 0;
	}
	set_present(o, "kind_code", jma_child(kind, "Code"));
	set_present(o, "kind_name", jma_child(kind, "Name"));
	set_present(o, "status", status);
	set_present(o, "last_kind_code", jma_child(last_kind, "Code"));
	set_present(o, "last_kind_name", jma_child(last_kind, "Name"));
	set_present(o, "condition", condition);
	kind_name = json_string_value(json_object_get(o, "kind_name"));
	level = kind_name ? level_of(kind_name) : 0;
	if (level > 0)
		feed_set_int(o, "level", level);
	json_array_append_new(st->warnings, o);
	return 1;
}

/* the episode key and its name, unless one is already known */
static void
set_key(WxState *st, xmlNodePtr code, xmlNodePtr name)
{
	if (st->key[0] != '\0' || code == NULL)
		return;
	jma_text_of(code, st->key, sizeof(st->key));
	jma_text_of(name, st->key_name, sizeof(st->key_name));
}

/* the first element child named `name` with @type = type (prefix: starts with) */
static xmlNodePtr
typed_child(xmlNodePtr parent, const char *name, const char *type, int prefix)
{
	xmlNodePtr	n;
	char		buf[256];

	JMA_FOREACH_CHILD(n, parent, name)
	{
		jma_attr_of(n, "type", buf, sizeof(buf));
		if (prefix ? starts_with(buf, type) : strcmp(buf, type) == 0)
			return n;
	}
	return NULL;
}

/* the entry of table naming the element's @type, or NULL */
static const TypedScope *
type_of(xmlNodePtr n, const TypedScope *table)
{
	char		type[256];

	jma_attr_of(n, "type", type, sizeof(type));
	for (; table->type; table++)
		if (strcmp(type, table->type) == 0)
			return table;
	return NULL;
}

/*
 * The Items of each `element` child of parent whose type the table names
 * (VolcanoInfo, Headline/Information): an entry per Item/Areas/Area with
 * the Item's Kind, its Condition as the status, and the Item's LastKind.
 * *first_kind: the Kind of the first entry of the table's first type,
 * whose area is the episode's.  Returns 0 (res set) on a bad entry.
 */
static int
add_area_items(WxState *st, xmlNodePtr parent, const char *element, const TypedScope *table,
			   xmlNodePtr *first_kind)
{
	xmlNodePtr	n,
				item,
				area;
	const TypedScope *ts;

	JMA_FOREACH_CHILD(n, parent, element)
	{
		if ((ts = type_of(n, table)) == NULL)
			continue;
		JMA_FOREACH_CHILD(item, n, "Item")
		{
			xmlNodePtr	kind = jma_child(item, "Kind");

			JMA_FOREACH_CHILD(area, jma_child(item, "Areas"), "Area")
			{
				if (!add_warning(st, ts->scope, jma_child(area, "Code"), jma_child(area, "Name"),
								 ts->digits, ts->field, kind, jma_child(kind, "Condition"),
								 jma_child(item, "LastKind"), NULL))
					return 0;
				if (ts == table && *first_kind == NULL)
				{
					*first_kind = kind;
					set_key(st, jma_child(area, "Code"), jma_child(area, "Name"));
				}
			}
		}
	}
	return 1;
}

/* ------------------------------------------------------------ products */

/* VPWW53/54: Body/Warning of the four area types, an entry per Item and Kind */
static void
parse_vpww(WxState *st, xmlNodePtr head, xmlNodePtr body)
{
	xmlNodePtr	w,
				item,
				kind;
	const TypedScope *ts;

	JMA_FOREACH_CHILD(w, body, "Warning")
	{
		if ((ts = type_of(w, vpww_types)) == NULL)
			continue;
		JMA_FOREACH_CHILD(item, w, "Item")
		{
			xmlNodePtr	area = jma_child(item, "Area");

			if (ts == vpww_types)
				set_key(st, jma_child(area, "Code"), jma_child(area, "Name"));
			JMA_FOREACH_CHILD(kind, item, "Kind")
			{
				if (!add_warning(st, ts->scope, jma_child(area, "Code"), jma_child(area, "Name"),
								 ts->digits, ts->field, kind, jma_child(kind, "Status"),
								 jma_child(kind, "LastKind"), jma_child(kind, "Condition")))
					return;
			}
		}
	}
	/* a 取消 may have an empty Body: the TargetArea, or the Head's 府県予報区 */
	set_key(st, jma_path(body, "TargetArea", "Code", NULL), jma_path(body, "TargetArea", "Name", NULL));
	{
		xmlNodePtr	info = typed_child(jma_child(head, "Headline"), "Information", vpww_types[0].type, 0);
		xmlNodePtr	area = jma_path(info, "Item", "Areas", "Area");

		set_key(st, jma_child(area, "Code"), jma_child(area, "Name"));
	}
	if (st->key[0] != '\0')
		check_code(st->key, 6, "the 府県予報区 code", st->res);
}

/* VXWW50: Body/Warning[@type='土砂災害警戒情報']/Item, one per municipality */
static void
parse_vxww(WxState *st, xmlNodePtr body)
{
	xmlNodePtr	w = typed_child(body, "Warning", "土砂災害警戒情報", 0);
	xmlNodePtr	item;

	set_key(st, jma_path(body, "TargetArea", "Code", NULL), jma_path(body, "TargetArea", "Name", NULL));
	if (st->key[0] != '\0' && !check_code(st->key, 6, "Body/TargetArea/Code", st->res))
		return;
	JMA_FOREACH_CHILD(item, w, "Item")
	{
		xmlNodePtr	kind = jma_child(item, "Kind");
		xmlNodePtr	area = jma_child(item, "Area");

		if (!add_warning(st, "city", jma_child(area, "Code"), jma_child(area, "Name"), 7,
						 "Warning/Item/Area/Code", kind, jma_child(kind, "Status"),
						 jma_child(kind, "LastKind"), jma_child(kind, "Condition")))
			return;
	}
}

/*
 * The digit (ASCII or full-width) that ends at `end`, not before `s`: its
 * value and *width in bytes, or -1.  The document is valid UTF-8, so a
 * byte below 0x80 is a character of its own.
 */
static int
digit_before(const char *s, const char *end, int *width)
{
	const unsigned char *e = (const unsigned char *) end;

	if (end - s >= 1 && e[-1] >= '0' && e[-1] <= '9')
	{
		*width = 1;
		return e[-1] - '0';
	}
	/* U+FF10 … U+FF19 */
	if (end - s >= 3 && e[-3] == 0xEF && e[-2] == 0xBC && e[-1] >= 0x90 && e[-1] <= 0x99)
	{
		*width = 3;
		return e[-1] - 0x90;
	}
	return -1;
}

/* does [s, *end) end with suffix?  If so, cut it off */
static int
cut_suffix(const char *s, const char **end, const char *suffix)
{
	size_t		n = strlen(suffix);

	if ((size_t) (*end - s) < n || memcmp(*end - n, suffix, n) != 0)
		return 0;
	*end -= n;
	return 1;
}

/*
 * One line of a VPOA50 headline, "<place>(付近)?で(約)?<digits>ミリ(以上)?":
 * appends {name, amount_mm, approximate} to places.  Other lines (the first,
 * "１９時４０分北海道で記録的短時間大雨") are not places.  Returns 0 (res
 * set) on an amount that is not a number.
 */
static int
parse_place(const char *line, const char *end, json_t *places, FeedResult *res)
{
	const char *p;
	long		amount = 0,
				scale = 1;
	int			ndigits = 0,
				approximate = 0,
				width,
				d;
	json_t	   *o;

	cut_suffix(line, &end, "以上");
	if (!cut_suffix(line, &end, "ミリ"))
		return 1;
	/* the amount, read from its last digit back */
	for (p = end; (d = digit_before(line, p, &width)) >= 0; p -= width)
	{
		if (++ndigits > 5)
		{
			/* the line up to ミリ, at most 120 bytes, not cut inside a character */
			int			n = (int) (end - line);

			while (n > 120 || (n > 0 && n < end - line && ((unsigned char) line[n] & 0xC0) == 0x80))
				n--;
			feed_fail(res, FEED_ERR_CONTENT, "Head/Headline/Text: \"%.*sミリ\" is not a rainfall in millimetres",
					  n, line);
			return 0;
		}
		amount += d * scale;
		scale *= 10;
	}
	if (ndigits == 0)
		return 1;
	end = p;
	if (cut_suffix(line, &end, "約"))
		approximate = 1;
	if (!cut_suffix(line, &end, "で"))
		return 1;
	if (cut_suffix(line, &end, "付近"))
		approximate = 1;
	if (end == line)
		return 1;
	o = json_object();
	feed_set_strn(o, "name", line, (size_t) (end - line));
	feed_set_int(o, "amount_mm", amount);
	json_object_set_new(o, "approximate", json_boolean(approximate));
	json_array_append_new(places, o);
	return 1;
}

/* VPOA50: the Body's Warning items; the places and amounts of the headline */
static void
parse_vpoa(WxState *st, json_t *ev, xmlNodePtr head, xmlNodePtr body)
{
	xmlNodePtr	w,
				item;
	json_t	   *places = json_array();
	char		text[4096];
	char	   *line;

	set_key(st, jma_child(head, "EventID"), NULL);
	jma_text_of(jma_child(head, "Title"), st->key_name, sizeof(st->key_name));
	{
		char	   *t = strstr(st->key_name, RECORD_RAIN_TITLE);

		if (t && t != st->key_name)
			*t = '\0';
	}

	JMA_FOREACH_CHILD(w, body, "Warning")
	{
		char		type[256];

		if (!starts_with(jma_attr_of(w, "type", type, sizeof(type)), RECORD_RAIN_TITLE))
			continue;
		JMA_FOREACH_CHILD(item, w, "Item")
		{
			xmlNodePtr	kind = jma_child(item, "Kind");
			xmlNodePtr	area = jma_child(item, "Area");
			char		code[64];
			size_t		n = strlen(jma_text_of(jma_child(area, "Code"), code, sizeof(code)));
			const char *scope = (n == 6 && strcmp(code + 2, "0000") == 0) ? "pref" : "area1";

			if (!add_warning(st, scope, jma_child(area, "Code"), jma_child(area, "Name"), 6,
							 "Warning/Item/Area/Code", kind, jma_child(kind, "Status"),
							 jma_child(kind, "LastKind"), jma_child(kind, "Condition")))
				break;
		}
	}

	jma_text_of(jma_path(head, "Headline", "Text", NULL), text, sizeof(text));
	for (line = text; line && *line;)
	{
		char	   *nl = strchr(line, '\n');
		const char *end = nl ? nl : line + strlen(line);

		while (end > line && (end[-1] == '\r' || end[-1] == ' '))
			end--;
		while (cut_suffix(line, &end, "\xE3\x80\x80"))	/* U+3000 */
			;
		if (!parse_place(line, end, places, st->res))
			break;
		line = nl ? nl + 1 : NULL;
	}
	json_object_set_new(ev, "places", places);
}

/* VFVO50: the 対象火山 and 対象市町村等 VolcanoInfo */
static void
parse_vfvo(WxState *st, json_t *ev, xmlNodePtr head, xmlNodePtr body)
{
	xmlNodePtr	volcano_kind = NULL;
	char		buf[256];

	if (!add_area_items(st, body, "VolcanoInfo", vfvo_types, &volcano_kind))
		return;
	if (volcano_kind && level_of(jma_text_of(jma_child(volcano_kind, "Name"), buf, sizeof(buf))) > 0)
		feed_set_int(ev, "volcano_level", level_of(buf));
	set_key(st, jma_child(head, "EventID"), NULL);
	if (st->key[0] != '\0')
		check_code(st->key, 0, "the volcano code (Head/EventID)", st->res);
}

/*
 * VXKO: the Head's 予報区域 and 河川 items; then the municipalities of the
 * Body's 浸水想定地区, which take the 予報区域's kind and condition.
 */
static void
parse_vxko(WxState *st, xmlNodePtr head, xmlNodePtr body)
{
	xmlNodePtr	item,
				area,
				area_kind = NULL;
	char		buf[256];

	if (!add_area_items(st, jma_child(head, "Headline"), "Information", vxko_types, &area_kind))
		return;
	JMA_FOREACH_CHILD(item, typed_child(body, "Warning", "指定河川洪水予報", 0), "Item")
	{
		if (strcmp(jma_text_of(jma_path(item, "Kind", "Name", NULL), buf, sizeof(buf)), "浸水想定地区") != 0)
			continue;
		JMA_FOREACH_CHILD(area, jma_child(item, "Areas"), "Area")
		{
			if (!add_warning(st, "city", jma_child(area, "CityCode"), jma_child(area, "City"), 7,
							 "Warning/Item/Areas/Area/CityCode", area_kind,
							 jma_child(area_kind, "Condition"), NULL, NULL))
				return;
		}
	}
}

json_t *
jma_weather_event(const char *title, xmlNodePtr control, xmlNodePtr head, xmlNodePtr body,
				  FeedResult *res)
{
	const WxProductInfo *prod = find_product(title);
	WxState		st;
	json_t	   *ev;
	xmlNodePtr	n;
	char		buf[4096];

	memset(&st, 0, sizeof(st));
	st.res = res;
	ev = json_object();
	if (prod == NULL)
	{
		feed_fail(res, FEED_ERR_UNSUPPORTED, "JMA product \"%.100s\" is not a weather telegram", title);
		return ev;
	}
	feed_set_str(ev, "source", "jma");
	feed_set_str(ev, "kind", prod->kind);
	feed_set_str(ev, "product", prod->code);
	if (!jma_set_common(ev, control, head, res))
		return ev;

	jma_set_time(ev, "issued_at", jma_child(head, "ReportDateTime"), res);
	if (json_is_null(json_object_get(ev, "issued_at")))
	{
		feed_fail(res, FEED_ERR_CONTENT, "Head/ReportDateTime is missing");
		return ev;
	}
	n = jma_child(head, "TargetDateTime");
	if (n && *jma_text_of(n, buf, sizeof(buf)) != '\0')
		jma_set_time(ev, "target_time", n, res);
	jma_set_text(ev, "office", jma_child(control, "EditorialOffice"));
	jma_set_text(ev, "title", jma_child(head, "Title"));
	/* JMA's own EventID: what a 取消 with an empty Body names its episode by */
	jma_set_text(ev, "jma_event_id", jma_child(head, "EventID"));
	jma_text_of(jma_path(head, "Headline", "Text", NULL), buf, sizeof(buf));
	if (buf[0] == '\0' && prod->product == WX_VOLCANO)
		jma_text_of(jma_path(body, "VolcanoInfoContent", "VolcanoHeadline", NULL), buf, sizeof(buf));
	feed_set_str(ev, "headline", buf[0] ? buf : NULL);

	st.warnings = json_array();
	json_object_set_new(ev, "warnings", st.warnings);
	switch (prod->product)
	{
		case WX_WEATHER:
			parse_vpww(&st, head, body);
			break;
		case WX_LANDSLIDE:
			parse_vxww(&st, body);
			break;
		case WX_RECORD_RAIN:
			parse_vpoa(&st, ev, head, body);
			break;
		case WX_VOLCANO:
			parse_vfvo(&st, ev, head, body);
			break;
		case WX_FLOOD:
			parse_vxko(&st, head, body);
			break;
	}
	/* the last resort for a 取消 whose Body is empty */
	set_key(&st, jma_child(head, "EventID"), NULL);
	if (res->code != FEED_OK)
		return ev;
	/* a 取消 may have an empty Body; a 発表 or 訂正 states its warnings */
	if (json_array_size(st.warnings) == 0 &&
		strcmp(json_string_value(json_object_get(ev, "info_type")), "cancelled") != 0)
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s telegram without %s", prod->code, prod->items);
		return ev;
	}
	if (st.key[0] == '\0')
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s telegram without the code of its area, volcano or river, nor a Head/EventID",
				  prod->code);
		return ev;
	}
	feed_set_str(ev, "source_event_id", st.key);
	if (st.key_name[0] != '\0')
		feed_set_str(ev, "scope_name", st.key_name);
	return ev;
}
