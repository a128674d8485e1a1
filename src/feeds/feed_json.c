/*-------------------------------------------------------------------------
 *
 * feed_json.c
 *	  P2PQuake JSON API v2 (codes 551, 552, 556) and USGS GeoJSON.
 *
 * jansson parses (JSON_REJECT_DUPLICATES, no NUL bytes in strings); the
 * code below checks every value's type before it uses it, so a document of
 * the wrong shape gets a message naming the field, never a crash.  Format
 * notes: ../shared/docs/feeds.md §4 and §5.
 *
 * Server-independent (see feed_parse.h).
 *
 *-------------------------------------------------------------------------
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feeds/feed_parse.h"
#include "shindo/shindo.h"

static json_t *
json_read(const char *body, size_t len, FeedResult *res)
{
	json_error_t jerr;
	json_t	   *root;
	size_t		bad;

	if (!feed_utf8_valid(body, len, &bad))
	{
		feed_fail(res, FEED_ERR_ENCODING,
				  "document is not valid UTF-8 (first bad byte at offset %zu)", bad);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		feed_fail(res, FEED_ERR_SYNTAX, "malformed JSON at line %d, column %d: %s",
				  jerr.line, jerr.column, jerr.text);
	return root;
}

/* typed getters: absent or JSON null → default; wrong type → error */
static const char *
get_str(json_t *obj, const char *key, const char *where, FeedResult *res)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v))
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s.%s must be a string", where, key);
		return NULL;
	}
	return json_string_value(v);
}

static double
get_num(json_t *obj, const char *key, const char *where, FeedResult *res)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return NAN;
	if (!json_is_number(v))
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s.%s must be a number", where, key);
		return NAN;
	}
	return json_number_value(v);
}

static json_t *
get_obj(json_t *obj, const char *key, const char *where, FeedResult *res)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_object(v))
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s.%s must be an object", where, key);
		return NULL;
	}
	return v;
}

static json_t *
get_arr(json_t *obj, const char *key, const char *where, FeedResult *res)
{
	json_t	   *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_array(v))
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s.%s must be an array", where, key);
		return NULL;
	}
	return v;
}

/* a P2PQuake JST time into obj[key]; absent → null; malformed → error */
static void
set_jst(json_t *obj, const char *key, const char *val, const char *what, FeedResult *res)
{
	char		iso[64];

	if (val == NULL || *val == '\0')
	{
		feed_set_str(obj, key, NULL);
		return;
	}
	if (!feed_jst_to_iso(val, iso, sizeof(iso)))
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s \"%.40s\" is not a time YYYY/MM/DD hh:mm:ss", what, val);
		return;
	}
	feed_set_str(obj, key, iso);
}

/* P2PQuake scale code → shindo ordinal; 46 → -1 with *incomplete; -1 → -1 */
static int
p2p_scale(double code, int *incomplete, FeedResult *res)
{
	int			c;

	*incomplete = 0;
	if (isnan(code) || code == -1)
		return -1;
	/* only whole numbers in range are codes (and may be cast) */
	c = (code >= -2 && code <= 100 && code == floor(code)) ? (int) code : -2;
	switch (c)
	{
		case 10:
			return 1;
		case 20:
			return 2;
		case 30:
			return 3;
		case 40:
			return 4;
		case 45:
			return 5;
		case 46:
			*incomplete = 1;
			return -1;
		case 50:
			return 6;
		case 55:
			return 7;
		case 60:
			return 8;
		case 70:
			return 9;
		case 0:
			return 0;
		case 99:
			return -1;			/* EEW "or more" upper bound */
	}
	feed_fail(res, FEED_ERR_CONTENT, "scale %g is not a P2PQuake intensity code", code);
	return -1;
}

/* event ids: JST wall clock → 14 digits (YYYYMMDDhhmmss), like JMA's */
static int
p2p_event_id(const char *time, char *out)
{
	int			j = 0;

	if (time == NULL)
		return 0;
	for (const char *p = time; *p && j < 14; p++)
		if (*p >= '0' && *p <= '9')
			out[j++] = *p;
		else if (*p == '.')
			break;
	while (j < 14 && j >= 12)
		out[j++] = '0';
	out[j] = '\0';
	return j == 14;
}

static void
p2p_hypocenter(json_t *eq, json_t *ev, FeedResult *res)
{
	json_t	   *h = get_obj(eq, "hypocenter", "earthquake", res);
	double		lat,
				lon,
				depth,
				mag;
	const char *name;

	if (h == NULL)
		return;
	name = get_str(h, "name", "hypocenter", res);
	feed_set_str(ev, "epicenter_name", (name && *name) ? name : NULL);
	lat = get_num(h, "latitude", "hypocenter", res);
	lon = get_num(h, "longitude", "hypocenter", res);
	depth = get_num(h, "depth", "hypocenter", res);
	mag = get_num(h, "magnitude", "hypocenter", res);
	/* P2PQuake's placeholders: −200 for unknown position, −1 otherwise */
	if (lat < -90 || lat > 90 || lon < -180 || lon > 180)
		lat = lon = NAN;
	feed_set_real(ev, "lat", lat);
	feed_set_real(ev, "lon", lon);
	feed_set_real(ev, "depth_km", depth >= 0 ? depth : NAN);
	feed_set_real(ev, "magnitude", mag >= 0 ? mag : NAN);
}

/* the fields every P2PQuake event starts with */
static void
p2p_head(json_t *ev, const char *id, const char *kind, const char *product,
		 const char *status, int cancelled)
{
	feed_set_str(ev, "source", "p2pquake");
	feed_set_str(ev, "source_event_id", id);
	feed_set_str(ev, "kind", kind);
	feed_set_str(ev, "product", product);
	feed_set_str(ev, "status", status);
	feed_set_str(ev, "info_type", cancelled ? "cancelled" : "issued");
	json_object_set_new(ev, "cancelled", json_boolean(cancelled));
}

/* attach the list under key, set the detail level; the event, or NULL on error */
static json_t *
p2p_done(json_t *ev, json_t *list, const char *key, int level, FeedResult *res)
{
	json_object_set_new(ev, key, list);
	if (json_object_get(ev, "intensities") == NULL)
		json_object_set_new(ev, "intensities", json_array());
	feed_set_int(ev, "detail_level", level);
	if (res->code == FEED_OK)
		return ev;
	json_decref(ev);
	return NULL;
}

static json_t *
p2p_551(json_t *o, FeedResult *res)
{
	json_t	   *ev = json_object();
	json_t	   *issue = get_obj(o, "issue", "551", res);
	json_t	   *eq = get_obj(o, "earthquake", "551", res);
	json_t	   *points = get_arr(o, "points", "551", res);
	json_t	   *list = json_array();
	const char *type = get_str(issue, "type", "issue", res);
	const char *etime = get_str(eq, "time", "earthquake", res);
	char		id[16];
	int			inc = 0,
				level = 0;
	size_t		i;
	json_t	   *p;

	if (res->code != FEED_OK || issue == NULL || eq == NULL || type == NULL)
	{
		feed_fail(res, FEED_ERR_CONTENT, "551 needs issue.type and earthquake");
		goto fail;
	}
	if (!p2p_event_id(etime, id))
	{
		feed_fail(res, FEED_ERR_CONTENT, "551 earthquake.time \"%.40s\" is not a time", etime ? etime : "");
		goto fail;
	}
	p2p_head(ev, id, "earthquake", type, "actual", 0);
	json_object_set_new(ev, "serial", json_null());
	json_object_set_new(ev, "foreign", json_boolean(strcmp(type, "Foreign") == 0));
	feed_set_str(ev, "message_id", get_str(o, "id", "551", res));
	set_jst(ev, "issued_at", get_str(issue, "time", "issue", res), "issue.time", res);
	set_jst(ev, "origin_time", etime, "earthquake.time", res);
	p2p_hypocenter(eq, ev, res);
	feed_set_shindo(ev, "max_shindo", p2p_scale(get_num(eq, "maxScale", "earthquake", res), &inc, res));
	feed_set_str(ev, "domestic_tsunami", get_str(eq, "domesticTsunami", "earthquake", res));
	json_array_foreach(points, i, p)
	{
		json_t	   *it;
		json_t	   *is_area;
		int			pinc = 0;
		int			s;

		if (!json_is_object(p))
		{
			feed_fail(res, FEED_ERR_CONTENT, "551 points[%zu] must be an object", i);
			break;
		}
		is_area = json_object_get(p, "isArea");
		if (is_area != NULL && !json_is_boolean(is_area))
		{
			feed_fail(res, FEED_ERR_CONTENT, "551 points[%zu].isArea must be a boolean", i);
			break;
		}
		s = p2p_scale(get_num(p, "scale", "points[]", res), &pinc, res);
		it = json_object();
		/* names, not codes: SQL maps them through JMA's tables */
		feed_set_str(it, "scope", json_is_true(is_area) ? "area" : "station");
		json_object_set_new(it, "code", json_null());
		feed_set_str(it, "name", get_str(p, "addr", "points[]", res));
		feed_set_str(it, "pref_name", get_str(p, "pref", "points[]", res));
		feed_set_shindo(it, "shindo", s);
		json_object_set_new(it, "incomplete", json_boolean(pinc));
		json_array_append_new(list, it);
		level = json_is_true(is_area) ? (level > 1 ? level : 1) : 2;
	}
	return p2p_done(ev, list, "intensities", level, res);
fail:
	json_decref(list);
	json_decref(ev);
	return NULL;
}

static json_t *
p2p_556(json_t *o, FeedResult *res)
{
	json_t	   *ev = json_object();
	json_t	   *issue = get_obj(o, "issue", "556", res);
	json_t	   *eq = get_obj(o, "earthquake", "556", res);
	json_t	   *areas = get_arr(o, "areas", "556", res);
	json_t	   *list = json_array();
	json_t	   *cancelled = json_object_get(o, "cancelled");
	json_t	   *test = json_object_get(o, "test");
	const char *eid = get_str(issue, "eventId", "issue", res);
	const char *serial = get_str(issue, "serial", "issue", res);
	size_t		i;
	json_t	   *a;
	int			max = -1;

	if (res->code != FEED_OK || eid == NULL || strlen(eid) != 14 || strspn(eid, "0123456789") != 14)
	{
		feed_fail(res, FEED_ERR_CONTENT, "556 issue.eventId must be 14 digits");
		goto fail;
	}
	if ((cancelled && !json_is_boolean(cancelled)) || (test && !json_is_boolean(test)))
	{
		feed_fail(res, FEED_ERR_CONTENT, "556 cancelled and test must be booleans");
		goto fail;
	}
	p2p_head(ev, eid, "eew", "EEW", json_is_true(test) ? "test" : "actual", json_is_true(cancelled));
	if (serial && strspn(serial, "0123456789") == strlen(serial) && *serial && strlen(serial) < 7)
		feed_set_int(ev, "serial", atol(serial));
	else
		json_object_set_new(ev, "serial", json_null());
	feed_set_str(ev, "message_id", get_str(o, "id", "556", res));
	set_jst(ev, "issued_at", get_str(issue, "time", "issue", res), "issue.time", res);
	if (eq)
	{
		set_jst(ev, "origin_time", get_str(eq, "originTime", "earthquake", res), "earthquake.originTime", res);
		p2p_hypocenter(eq, ev, res);
	}
	json_array_foreach(areas, i, a)
	{
		json_t	   *it;
		int			inc = 0,
					s;

		if (!json_is_object(a))
		{
			feed_fail(res, FEED_ERR_CONTENT, "556 areas[%zu] must be an object", i);
			break;
		}
		s = p2p_scale(get_num(a, "scaleFrom", "areas[]", res), &inc, res);
		it = json_object();
		feed_set_str(it, "scope", "area");
		json_object_set_new(it, "code", json_null());
		feed_set_str(it, "name", get_str(a, "name", "areas[]", res));
		feed_set_shindo(it, "shindo", s);
		json_object_set_new(it, "incomplete", json_false());
		json_array_append_new(list, it);
		if (s > max)
			max = s;
	}
	feed_set_shindo(ev, "max_shindo", max);
	return p2p_done(ev, list, "intensities", 1, res);
fail:
	json_decref(list);
	json_decref(ev);
	return NULL;
}

static json_t *
p2p_552(json_t *o, FeedResult *res)
{
	json_t	   *ev = json_object();
	json_t	   *issue = get_obj(o, "issue", "552", res);
	json_t	   *areas = get_arr(o, "areas", "552", res);
	json_t	   *cancelled = json_object_get(o, "cancelled");
	json_t	   *list = json_array();
	const char *itime = get_str(issue, "time", "issue", res);
	char		id[16];
	size_t		i;
	json_t	   *a;

	if (res->code != FEED_OK || !p2p_event_id(itime, id) ||
		(cancelled && !json_is_boolean(cancelled)))
	{
		feed_fail(res, FEED_ERR_CONTENT, "552 needs issue.time and a boolean cancelled");
		goto fail;
	}
	/*
	 * 552 carries no event id: each message stands alone (docs: prefer JMA
	 * VTSE41 for tsunami rules).  "cancelled" true means lifted, not
	 * withdrawn.
	 */
	p2p_head(ev, id, "tsunami", "552", "actual", 0);
	json_object_set_new(ev, "lifted", json_boolean(json_is_true(cancelled)));
	json_object_set_new(ev, "serial", json_null());
	feed_set_str(ev, "message_id", get_str(o, "id", "552", res));
	set_jst(ev, "issued_at", itime, "issue.time", res);
	json_array_foreach(areas, i, a)
	{
		json_t	   *it;
		const char *grade;
		json_t	   *mh;

		if (!json_is_object(a))
		{
			feed_fail(res, FEED_ERR_CONTENT, "552 areas[%zu] must be an object", i);
			break;
		}
		grade = get_str(a, "grade", "areas[]", res);
		it = json_object();
		json_object_set_new(it, "code", json_null());
		feed_set_str(it, "name", get_str(a, "name", "areas[]", res));
		/* grades as JMA's kind codes, so rules treat both sources alike */
		feed_set_str(it, "kind_code",
					 grade == NULL ? NULL :
					 strcmp(grade, "MajorWarning") == 0 ? "52" :
					 strcmp(grade, "Warning") == 0 ? "51" :
					 strcmp(grade, "Watch") == 0 ? "62" : NULL);
		feed_set_str(it, "kind_name", grade);
		mh = get_obj(a, "maxHeight", "areas[]", res);
		feed_set_real(it, "max_height_m", get_num(mh, "value", "maxHeight", res));
		feed_set_str(it, "max_height_text", get_str(mh, "description", "maxHeight", res));
		json_array_append_new(list, it);
	}
	return p2p_done(ev, list, "tsunami", 0, res);
fail:
	json_decref(list);
	json_decref(ev);
	return NULL;
}

static json_t *
p2p_one(json_t *o, FeedResult *res)
{
	json_t	   *code = json_object_get(o, "code");
	long long	c;

	if (!json_is_object(o))
	{
		feed_fail(res, FEED_ERR_CONTENT, "a P2PQuake message must be a JSON object");
		return NULL;
	}
	if (code && !json_is_integer(code))
	{
		feed_fail(res, FEED_ERR_CONTENT, "code must be an integer");
		return NULL;
	}
	/* bodies converted without the envelope carry no code: infer it */
	if (code)
		c = json_integer_value(code);
	else if (json_object_get(o, "points"))
		c = 551;
	else if (json_object_get(json_object_get(o, "issue"), "eventId"))
		c = 556;
	else if (json_object_get(o, "areas"))
		c = 552;
	else
		c = 0;
	switch (c)
	{
		case 551:
			return p2p_551(o, res);
		case 552:
			return p2p_552(o, res);
		case 556:
			return p2p_556(o, res);
		default:
			return json_null();	/* other codes (peers, user reports): skipped */
	}
}

json_t *
feed_parse_p2pquake(const char *body, size_t len, FeedResult *res)
{
	json_t	   *root,
			   *events,
			   *out;
	size_t		i;
	json_t	   *o;

	res->code = FEED_OK;
	root = json_read(body, len, res);
	if (root == NULL)
		return NULL;
	events = json_array();
	if (json_is_array(root))
	{
		json_array_foreach(root, i, o)
		{
			json_t	   *ev = p2p_one(o, res);

			if (ev == NULL)
			{
				char		msg[FEED_ERRLEN + 32];

				snprintf(msg, sizeof(msg), "item %zu: %s", i, res->message);
				snprintf(res->message, sizeof(res->message), "%.*s", (int) sizeof(res->message) - 1, msg);
				break;
			}
			if (!json_is_null(ev))
				json_array_append(events, ev);
			json_decref(ev);
		}
	}
	else if (json_is_object(root))
	{
		json_t	   *ev = p2p_one(root, res);

		if (ev && !json_is_null(ev))
			json_array_append(events, ev);
		json_decref(ev);
	}
	else
		feed_fail(res, FEED_ERR_CONTENT, "a P2PQuake document is a JSON object or an array of objects");
	json_decref(root);
	if (res->code != FEED_OK)
	{
		json_decref(events);
		return NULL;
	}
	out = json_object();
	json_object_set_new(out, "events", events);
	return out;
}

/* ------------------------------------------------------------ USGS */

static json_t *
usgs_feature(json_t *f, FeedResult *res)
{
	json_t	   *ev;
	json_t	   *props = get_obj(f, "properties", "Feature", res);
	json_t	   *geom = get_obj(f, "geometry", "Feature", res);
	json_t	   *coords = geom ? get_arr(geom, "coordinates", "geometry", res) : NULL;
	json_t	   *products;
	json_t	   *aliases;
	const char *id = get_str(f, "id", "Feature", res);
	const char *status,
			   *ids,
			   *type;
	char		iso[64];
	double		t;

	if (!json_is_object(f) || res->code != FEED_OK)
	{
		feed_fail(res, FEED_ERR_CONTENT, "a feature must be a GeoJSON Feature object");
		return NULL;
	}
	if (id == NULL || *id == '\0' || props == NULL)
	{
		feed_fail(res, FEED_ERR_CONTENT, "a USGS Feature needs an id and properties");
		return NULL;
	}
	ev = json_object();
	feed_set_str(ev, "source", "usgs");
	feed_set_str(ev, "source_event_id", id);
	type = get_str(props, "type", "properties", res);
	feed_set_str(ev, "kind", type ? type : "earthquake");
	feed_set_str(ev, "product", json_object_get(props, "products") ? "detail" : "summary");
	status = get_str(props, "status", "properties", res);
	feed_set_str(ev, "status", "actual");
	feed_set_str(ev, "info_type", status && strcmp(status, "deleted") == 0 ? "cancelled" : "issued");
	json_object_set_new(ev, "cancelled", json_boolean(status && strcmp(status, "deleted") == 0));
	feed_set_str(ev, "review_status", status);
	json_object_set_new(ev, "serial", json_null());
	t = get_num(props, "time", "properties", res);
	feed_set_str(ev, "origin_time", feed_epoch_ms_to_iso(t, iso, sizeof(iso)) ? iso : NULL);
	t = get_num(props, "updated", "properties", res);
	if (!feed_epoch_ms_to_iso(t, iso, sizeof(iso)))
	{
		feed_fail(res, FEED_ERR_CONTENT, "Feature %.40s: properties.updated must be epoch milliseconds", id);
		json_decref(ev);
		return NULL;
	}
	feed_set_str(ev, "issued_at", iso);
	feed_set_str(ev, "epicenter_name", get_str(props, "place", "properties", res));
	feed_set_str(ev, "headline", get_str(props, "title", "properties", res));
	feed_set_real(ev, "magnitude", get_num(props, "mag", "properties", res));
	feed_set_str(ev, "magnitude_type", get_str(props, "magType", "properties", res));
	feed_set_real(ev, "mmi", get_num(props, "mmi", "properties", res));
	feed_set_str(ev, "alert", get_str(props, "alert", "properties", res));
	feed_set_str(ev, "url", get_str(props, "url", "properties", res));
	feed_set_str(ev, "detail_url", get_str(props, "detail", "properties", res));
	feed_set_real(ev, "tsunami_flag", get_num(props, "tsunami", "properties", res));
	if (coords && json_array_size(coords) >= 2)
	{
		double		lon = json_number_value(json_array_get(coords, 0));
		double		lat = json_number_value(json_array_get(coords, 1));
		json_t	   *d = json_array_get(coords, 2);

		if (!json_is_number(json_array_get(coords, 0)) || !json_is_number(json_array_get(coords, 1)) ||
			lat < -90 || lat > 90 || lon < -180 || lon > 180 || (d && !json_is_number(d) && !json_is_null(d)))
			feed_fail(res, FEED_ERR_CONTENT, "Feature %.40s: geometry.coordinates must be [lon, lat, depth]", id);
		feed_set_real(ev, "lat", lat);
		feed_set_real(ev, "lon", lon);
		feed_set_real(ev, "depth_km", d && json_is_number(d) ? json_number_value(d) : NAN);
	}
	/* ids: ",us7000kwg2,at00s6f6v0," — every alias of the event */
	aliases = json_array();
	ids = get_str(props, "ids", "properties", res);
	if (ids)
	{
		const char *p = ids;

		while (*p)
		{
			const char *e = strchr(p, ',');
			size_t		n = e ? (size_t) (e - p) : strlen(p);

			if (n > 0 && n < 64)
				json_array_append_new(aliases, json_stringn(p, n));
			p += n + (e ? 1 : 0);
		}
	}
	json_object_set_new(ev, "aliases", aliases);
	/* detail documents: ShakeMap's max MMI and PAGER's alert level */
	products = get_obj(props, "products", "properties", res);
	if (products)
	{
		json_t	   *sm = get_arr(products, "shakemap", "products", res);
		json_t	   *smp = json_object_get(json_array_get(sm, 0), "properties");
		const char *maxmmi = json_is_object(smp) ? json_string_value(json_object_get(smp, "maxmmi")) : NULL;

		if (maxmmi)
			feed_set_real(ev, "shakemap_max_mmi", strtod(maxmmi, NULL));
	}
	json_object_set_new(ev, "intensities", json_array());
	feed_set_int(ev, "detail_level", 0);
	if (res->code != FEED_OK)
	{
		json_decref(ev);
		return NULL;
	}
	return ev;
}

json_t *
feed_parse_usgs(const char *body, size_t len, FeedResult *res)
{
	json_t	   *root,
			   *events,
			   *out = NULL;
	const char *type;

	res->code = FEED_OK;
	root = json_read(body, len, res);
	if (root == NULL)
		return NULL;
	events = json_array();
	type = json_is_object(root) ? json_string_value(json_object_get(root, "type")) : NULL;
	if (type && strcmp(type, "FeatureCollection") == 0)
	{
		json_t	   *features = get_arr(root, "features", "FeatureCollection", res);
		size_t		i;
		json_t	   *f;

		if (features == NULL)
			feed_fail(res, FEED_ERR_CONTENT, "FeatureCollection without features");
		json_array_foreach(features, i, f)
		{
			json_t	   *ev = usgs_feature(f, res);

			if (ev == NULL)
				break;
			json_array_append_new(events, ev);
		}
	}
	else if (type && strcmp(type, "Feature") == 0)
	{
		json_t	   *ev = usgs_feature(root, res);

		if (ev)
			json_array_append_new(events, ev);
	}
	else
		feed_fail(res, FEED_ERR_CONTENT, "not USGS GeoJSON: \"type\" must be FeatureCollection or Feature");
	json_decref(root);
	if (res->code != FEED_OK)
		json_decref(events);
	else
	{
		out = json_object();
		json_object_set_new(out, "events", events);
	}
	return out;
}
