/*-------------------------------------------------------------------------
 *
 * feed_jma.c
 *	  JMA 防災情報XML: reading a telegram safely, seismic and tsunami
 *	  telegrams, and the Atom feeds (weather, landslide, rain, volcano and
 *	  flood telegrams: feed_jma_weather.c, with the helpers declared in
 *	  feed_jma.h).
 *
 * Parsing is done by libxml2 with the network off and any DTD refused
 * before it is read (so no external entity and no entity expansion can
 * happen).  Elements are matched by local name inside JMA's namespace
 * family (http://xml.kishou.go.jp/jmaxml1/...), so prefix and
 * default-namespace placement do not matter.  See ../shared/docs/feeds.md
 * §2 for the format notes each rule below follows.
 *
 * Server-independent (see feed_parse.h).
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "feeds/feed_jma.h"
#include "shindo/shindo.h"

#define ATOM_NS		"http://www.w3.org/2005/Atom"

/* state reachable from libxml2 callbacks through ctxt->_private */
typedef struct XmlState
{
	FeedResult *res;
	int			saw_dtd;
} XmlState;

/* ------------------------------------------------------------ parsing */

static void
xml_refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ExternalID,
			   const xmlChar *SystemID)
{
	xmlParserCtxtPtr ctxt = (xmlParserCtxtPtr) ctx;
	XmlState   *st = (XmlState *) ctxt->_private;

	(void) name;
	(void) ExternalID;
	(void) SystemID;
	st->saw_dtd = 1;
	xmlStopParser(ctxt);
}

static void
xml_error(void *ctx, xmlErrorPtr err)
{
	xmlParserCtxtPtr ctxt = (xmlParserCtxtPtr) ctx;
	XmlState   *st;
	size_t		n;
	char		msg[200];

	if (ctxt == NULL || err == NULL || err->level < XML_ERR_ERROR)
		return;
	st = (XmlState *) ctxt->_private;
	if (st == NULL)
		return;
	snprintf(msg, sizeof(msg), "%s", err->message ? err->message : "error");
	n = strlen(msg);
	while (n > 0 && isspace((unsigned char) msg[n - 1]))
		msg[--n] = '\0';
	feed_fail(st->res, FEED_ERR_SYNTAX, "malformed XML at line %d: %s", err->line, msg);
}

/* Parse a document, refusing DTDs and the network.  NULL on error. */
xmlDocPtr
jma_xml_read(const char *body, size_t len, FeedResult *res)
{
	xmlParserCtxtPtr ctxt;
	XmlState	st = {res, 0};
	xmlDocPtr	doc = NULL;
	size_t		bad;

	if (len > (size_t) 0x7fffffff)
	{
		feed_fail(res, FEED_ERR_CONTENT, "document too large");
		return NULL;
	}
	if (!feed_utf8_valid(body, len, &bad))
	{
		feed_fail(res, FEED_ERR_ENCODING,
				  "document is not valid UTF-8 (first bad byte at offset %zu)", bad);
		return NULL;
	}

	xmlInitParser();
	ctxt = xmlCreateMemoryParserCtxt(body, (int) len);
	if (ctxt == NULL)
	{
		feed_fail(res, FEED_ERR_SYNTAX, "could not create an XML parser (empty document?)");
		return NULL;
	}
	ctxt->_private = &st;
	ctxt->sax->internalSubset = xml_refuse_dtd;
	ctxt->sax->externalSubset = xml_refuse_dtd;
	ctxt->sax->serror = xml_error;
	ctxt->sax->error = NULL;
	ctxt->sax->warning = NULL;
	ctxt->vctxt.error = NULL;
	ctxt->vctxt.warning = NULL;
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOCDATA |
					  XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	/* an encoding declaration other than UTF-8 is refused below */
	xmlParseDocument(ctxt);
	doc = ctxt->myDoc;
	ctxt->myDoc = NULL;

	if (st.saw_dtd)
	{
		res->code = FEED_OK;	/* the stop itself raised an error: replace it */
		feed_fail(res, FEED_ERR_FORBIDDEN,
				  "document has a DTD (<!DOCTYPE>); JMA XML has none, and DTDs and entities are refused");
	}
	else if (!ctxt->wellFormed || doc == NULL || xmlDocGetRootElement(doc) == NULL)
		feed_fail(res, FEED_ERR_SYNTAX, "malformed XML (truncated or not XML)");
	else if (ctxt->input && ctxt->input->encoding &&
			 xmlStrcasecmp(ctxt->input->encoding, BAD_CAST "UTF-8") != 0)
		feed_fail(res, FEED_ERR_ENCODING, "document declares encoding %.40s; only UTF-8 is accepted",
				  (const char *) ctxt->input->encoding);
	else if (doc->encoding && xmlStrcasecmp(doc->encoding, BAD_CAST "UTF-8") != 0)
		feed_fail(res, FEED_ERR_ENCODING, "document declares encoding %.40s; only UTF-8 is accepted",
				  (const char *) doc->encoding);
	xmlFreeParserCtxt(ctxt);
	if (res->code != FEED_OK)
	{
		if (doc)
			xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

/* ------------------------------------------------------------ tree access */

int
jma_in_ns(xmlNodePtr n, const char *ns_prefix)
{
	return n->ns && n->ns->href &&
		strncmp((const char *) n->ns->href, ns_prefix, strlen(ns_prefix)) == 0;
}

/* first element child named `name` in JMA's namespace family */
xmlNodePtr
jma_child(xmlNodePtr parent, const char *name)
{
	xmlNodePtr	c;

	if (parent == NULL)
		return NULL;
	for (c = parent->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0 &&
			jma_in_ns(c, JMA_NS))
			return c;
	return NULL;
}

xmlNodePtr
jma_next_sibling(xmlNodePtr n, const char *name)
{
	for (n = n ? n->next : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST name) == 0 &&
			jma_in_ns(n, JMA_NS))
			return n;
	return NULL;
}

xmlNodePtr
jma_path(xmlNodePtr n, const char *p1, const char *p2, const char *p3)
{
	n = jma_child(n, p1);
	if (p2)
		n = jma_child(n, p2);
	if (p3)
		n = jma_child(n, p3);
	return n;
}

/*
 * Text of an element with leading/trailing white space (ASCII and U+3000)
 * removed, into buf; "" if absent.  Returns buf.
 */
char *
jma_text_of(xmlNodePtr n, char *buf, size_t buflen)
{
	xmlChar    *t;
	const char *s;
	size_t		len;

	buf[0] = '\0';
	if (n == NULL)
		return buf;
	t = xmlNodeGetContent(n);
	if (t == NULL)
		return buf;
	s = (const char *) t;
	for (;;)
	{
		if (isspace((unsigned char) *s))
			s++;
		else if ((unsigned char) s[0] == 0xE3 && (unsigned char) s[1] == 0x80 && (unsigned char) s[2] == 0x80)
			s += 3;
		else
			break;
	}
	len = strlen(s);
	for (;;)
	{
		if (len > 0 && isspace((unsigned char) s[len - 1]))
			len--;
		else if (len >= 3 && (unsigned char) s[len - 3] == 0xE3 &&
				 (unsigned char) s[len - 2] == 0x80 && (unsigned char) s[len - 1] == 0x80)
			len -= 3;
		else
			break;
	}
	if (len >= buflen)
	{
		len = buflen - 1;
		/* do not cut a UTF-8 sequence */
		while (len > 0 && ((unsigned char) s[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	xmlFree(t);
	return buf;
}

char *
jma_attr_of(xmlNodePtr n, const char *name, char *buf, size_t buflen)
{
	xmlChar    *v;

	buf[0] = '\0';
	if (n == NULL)
		return buf;
	v = xmlGetProp(n, BAD_CAST name);
	if (v)
	{
		snprintf(buf, buflen, "%s", (const char *) v);
		xmlFree(v);
	}
	return buf;
}

void
jma_set_text(json_t *obj, const char *key, xmlNodePtr n)
{
	char		buf[4096];

	if (n == NULL)
		feed_set_str(obj, key, NULL);
	else
		feed_set_str(obj, key, jma_text_of(n, buf, sizeof(buf)));
}

/* a timestamp element; absent → null, malformed → error */
void
jma_set_time(json_t *obj, const char *key, xmlNodePtr n, FeedResult *res)
{
	char		buf[64];

	if (n == NULL || *jma_text_of(n, buf, sizeof(buf)) == '\0')
	{
		feed_set_str(obj, key, NULL);
		return;
	}
	if (!feed_valid_timestamp(buf))
	{
		feed_fail(res, FEED_ERR_CONTENT, "%s: \"%.40s\" is not an ISO 8601 time with a zone",
				  (const char *) n->name, buf);
		return;
	}
	feed_set_str(obj, key, buf);
}

/* ------------------------------------------------------------ JMA telegrams */

#define INCOMPLETE_TEXT "震度５弱以上未入電"

typedef struct ProductInfo
{
	const char *title;			/* Control/Title */
	const char *code;
	const char *kind;
} ProductInfo;

static const ProductInfo products[] = {
	{"震度速報", "VXSE51", "earthquake"},
	{"震源に関する情報", "VXSE52", "earthquake"},
	{"震源・震度に関する情報", "VXSE53", "earthquake"},
	{"顕著な地震の震源要素更新のお知らせ", "VXSE61", "earthquake"},
	{"緊急地震速報（警報）", "VXSE43", "eew"},
	{"津波警報・注意報・予報a", "VTSE41", "tsunami"},
	{NULL, NULL, NULL}
};

/*
 * ISO 6709 "+35.7+139.7-120000/": latitude, longitude, optional height in
 * metres (negative = depth).  Returns 1 and sets *lat, *lon, *depth_km
 * (NAN when absent).
 */
static int
parse_coordinate(const char *s, double *lat, double *lon, double *depth_km)
{
	double		v[3];
	int			n = 0;
	const char *p = s;

	*lat = *lon = *depth_km = NAN;
	while (*p && *p != '/' && n < 3)
	{
		char	   *end;

		if (*p != '+' && *p != '-')
			return 0;
		v[n] = strtod(p, &end);
		if (end == p || !isfinite(v[n]))
			return 0;
		n++;
		p = end;
	}
	if (*p != '/' || p[1] != '\0')
		return 0;
	if (n < 2)
		return n == 0;			/* "" or "/" : unknown position */
	if (v[0] < -90 || v[0] > 90 || v[1] < -180 || v[1] > 180)
		return 0;
	*lat = v[0];
	*lon = v[1];
	if (n == 3)
		*depth_km = v[2] < 0 ? -v[2] / 1000.0 : 0.0;
	return 1;
}

static void
parse_earthquake(xmlNodePtr eq, json_t *ev, FeedResult *res)
{
	xmlNodePtr	area,
				c,
				mag;
	char		buf[256];
	char		desc[256];

	jma_set_time(ev, "origin_time", jma_child(eq, "OriginTime"), res);
	jma_set_time(ev, "arrival_time", jma_child(eq, "ArrivalTime"), res);
	area = jma_path(eq, "Hypocenter", "Area", NULL);
	jma_set_text(ev, "epicenter_name", jma_child(area, "Name"));
	jma_set_text(ev, "epicenter_code", jma_child(area, "Code"));
	/* the Coordinate without @type is in degrees; 震源位置（度分） is not */
	for (c = jma_child(area, "Coordinate"); c; c = jma_next_sibling(c, "Coordinate"))
	{
		double		lat,
					lon,
					depth;

		if (*jma_attr_of(c, "type", buf, sizeof(buf)) != '\0')
			continue;
		if (!parse_coordinate(jma_text_of(c, buf, sizeof(buf)), &lat, &lon, &depth))
		{
			feed_fail(res, FEED_ERR_CONTENT, "Hypocenter Coordinate \"%.60s\" is not ISO 6709", buf);
			return;
		}
		feed_set_real(ev, "lat", lat);
		feed_set_real(ev, "lon", lon);
		feed_set_real(ev, "depth_km", depth);
		feed_set_str(ev, "depth_text", jma_attr_of(c, "description", desc, sizeof(desc)));
		break;
	}
	mag = jma_child(eq, "Magnitude");
	if (mag)
	{
		char	   *end;
		double		m;

		jma_text_of(mag, buf, sizeof(buf));
		m = strtod(buf, &end);
		if (strcmp(buf, "NaN") == 0)
			feed_set_real(ev, "magnitude", NAN);
		else if (end == buf || *end != '\0' || m < -3 || m > 10)
		{
			feed_fail(res, FEED_ERR_CONTENT, "Magnitude \"%.40s\" is not a number", buf);
			return;
		}
		else
			feed_set_real(ev, "magnitude", m);
		feed_set_str(ev, "magnitude_text", jma_attr_of(mag, "description", desc, sizeof(desc)));
	}
}

/* shindo of a MaxInt/Int element; -1 if absent; sets *incomplete for 未入電 */
static int
intensity_of(xmlNodePtr n, int *incomplete, FeedResult *res)
{
	char		buf[128];
	int			s;

	if (n == NULL || *jma_text_of(n, buf, sizeof(buf)) == '\0')
		return -1;
	if (strcmp(buf, INCOMPLETE_TEXT) == 0)
	{
		*incomplete = 1;
		return -1;
	}
	s = shindo_parse(buf);
	if (s < 1 && strcmp(buf, "0") != 0)
		feed_fail(res, FEED_ERR_CONTENT, "%s \"%.40s\" is not a seismic intensity",
				  (const char *) n->name, buf);
	return s;
}

static void
add_intensity(json_t *list, const char *scope, xmlNodePtr n, int shindo, int incomplete,
			  const char *pref_code)
{
	json_t	   *o = json_object();
	char		buf[512];

	feed_set_str(o, "scope", scope);
	jma_set_text(o, "code", jma_child(n, "Code"));
	jma_set_text(o, "name", jma_child(n, "Name"));
	feed_set_shindo(o, "shindo", shindo);
	json_object_set_new(o, "incomplete", json_boolean(incomplete));
	if (pref_code)
		feed_set_str(o, "pref_code", pref_code);
	if (jma_child(n, "Revise"))
		feed_set_str(o, "revise", jma_text_of(jma_child(n, "Revise"), buf, sizeof(buf)));
	json_array_append_new(list, o);
}

/* Body/Intensity/Observation (VXSE51, VXSE53) */
static int
parse_observation(xmlNodePtr obs, json_t *ev, FeedResult *res)
{
	json_t	   *list = json_array();
	xmlNodePtr	pref,
				area,
				city,
				st;
	int			inc = 0;
	int			max = intensity_of(jma_child(obs, "MaxInt"), &inc, res);
	int			level = 1;
	char		pcode[16];

	feed_set_shindo(ev, "max_shindo", max);
	JMA_FOREACH_CHILD(pref, obs, "Pref")
	{
		int			pinc = 0;
		int			ps = intensity_of(jma_child(pref, "MaxInt"), &pinc, res);

		jma_text_of(jma_child(pref, "Code"), pcode, sizeof(pcode));
		add_intensity(list, "pref", pref, ps, pinc, NULL);
		JMA_FOREACH_CHILD(area, pref, "Area")
		{
			int			ainc = 0;
			int			as = intensity_of(jma_child(area, "MaxInt"), &ainc, res);

			add_intensity(list, "area", area, as, ainc, pcode);
			JMA_FOREACH_CHILD(city, area, "City")
			{
				int			cinc = 0;
				int			cs = intensity_of(jma_child(city, "MaxInt"), &cinc, res);
				char		cond[128];

				if (strcmp(jma_text_of(jma_child(city, "Condition"), cond, sizeof(cond)), INCOMPLETE_TEXT) == 0)
					cinc = 1;
				level = 2;
				add_intensity(list, "city", city, cs, cinc, pcode);
				JMA_FOREACH_CHILD(st, city, "IntensityStation")
				{
					int			sinc = 0;
					int			ss = intensity_of(jma_child(st, "Int"), &sinc, res);

					add_intensity(list, "station", st, ss, sinc, pcode);
				}
			}
		}
	}
	json_object_set_new(ev, "intensities", list);
	return level;
}

/* Body/Intensity/Forecast of an EEW (VXSE43): lower bounds per area */
static void
parse_eew_forecast(xmlNodePtr fc, json_t *ev, FeedResult *res)
{
	json_t	   *list = json_array();
	xmlNodePtr	pref,
				area;
	int			inc = 0;
	char		pcode[16];

	feed_set_shindo(ev, "max_shindo", intensity_of(jma_path(fc, "ForecastInt", "From", NULL), &inc, res));
	JMA_FOREACH_CHILD(pref, fc, "Pref")
	{
		jma_text_of(jma_child(pref, "Code"), pcode, sizeof(pcode));
		JMA_FOREACH_CHILD(area, pref, "Area")
		{
			int			ainc = 0;
			int			s = intensity_of(jma_path(area, "ForecastInt", "From", NULL), &ainc, res);

			add_intensity(list, "area", area, s, ainc, pcode);
		}
	}
	json_object_set_new(ev, "intensities", list);
}

/* Body/Tsunami/Forecast/Item (VTSE41) */
static void
parse_tsunami(xmlNodePtr fc, json_t *ev, FeedResult *res)
{
	json_t	   *list = json_array();
	xmlNodePtr	item;
	char		buf[256];

	JMA_FOREACH_CHILD(item, fc, "Item")
	{
		json_t	   *o = json_object();
		xmlNodePtr	area = jma_child(item, "Area");
		xmlNodePtr	cat = jma_child(item, "Category");
		xmlNodePtr	h = jma_path(item, "MaxHeight", "TsunamiHeight", NULL);

		jma_set_text(o, "code", jma_child(area, "Code"));
		jma_set_text(o, "name", jma_child(area, "Name"));
		jma_set_text(o, "kind_code", jma_path(cat, "Kind", "Code", NULL));
		jma_set_text(o, "kind_name", jma_path(cat, "Kind", "Name", NULL));
		jma_set_text(o, "last_kind_code", jma_path(cat, "LastKind", "Code", NULL));
		jma_set_time(o, "first_arrival", jma_path(item, "FirstHeight", "ArrivalTime", NULL), res);
		jma_set_text(o, "first_condition", jma_path(item, "FirstHeight", "Condition", NULL));
		if (h)
		{
			char	   *end;
			double		m;

			jma_text_of(h, buf, sizeof(buf));
			m = strtod(buf, &end);
			feed_set_real(o, "max_height_m", (end != buf && *end == '\0') ? m : NAN);
			feed_set_str(o, "max_height_text", jma_attr_of(h, "description", buf, sizeof(buf)));
		}
		jma_set_text(o, "max_condition", jma_path(item, "MaxHeight", "Condition", NULL));
		if (json_string_value(json_object_get(o, "kind_code")) == NULL)
			feed_fail(res, FEED_ERR_CONTENT, "tsunami forecast item without Category/Kind/Code");
		json_array_append_new(list, o);
	}
	json_object_set_new(ev, "tsunami", list);
}

/*
 * status, info_type and serial: the Control/Head fields every telegram has,
 * whatever its product.  Returns 0 (res set) on a value of the wrong shape.
 */
int
jma_set_common(json_t *ev, xmlNodePtr control, xmlNodePtr head, FeedResult *res)
{
	char		status[64],
				info_type[64],
				buf[64];

	jma_text_of(jma_child(control, "Status"), status, sizeof(status));
	if (strcmp(status, "通常") == 0)
		feed_set_str(ev, "status", "actual");
	else if (strcmp(status, "訓練") == 0)
		feed_set_str(ev, "status", "training");
	else if (strcmp(status, "試験") == 0)
		feed_set_str(ev, "status", "test");
	else
	{
		feed_fail(res, FEED_ERR_CONTENT, "Control/Status \"%.40s\" is not 通常, 訓練 or 試験", status);
		return 0;
	}

	jma_text_of(jma_child(head, "InfoType"), info_type, sizeof(info_type));
	if (strcmp(info_type, "発表") == 0)
		feed_set_str(ev, "info_type", "issued");
	else if (strcmp(info_type, "訂正") == 0)
		feed_set_str(ev, "info_type", "corrected");
	else if (strcmp(info_type, "取消") == 0)
		feed_set_str(ev, "info_type", "cancelled");
	else
	{
		feed_fail(res, FEED_ERR_CONTENT, "Head/InfoType \"%.40s\" is not 発表, 訂正 or 取消", info_type);
		return 0;
	}

	jma_text_of(jma_child(head, "Serial"), buf, sizeof(buf));
	if (buf[0] == '\0')
		json_object_set_new(ev, "serial", json_null());
	else
	{
		char	   *end;
		long		serial = strtol(buf, &end, 10);

		if (*end != '\0' || serial < 0 || serial > 100000)
		{
			feed_fail(res, FEED_ERR_CONTENT, "Head/Serial \"%.40s\" is not a number", buf);
			return 0;
		}
		feed_set_int(ev, "serial", serial);
	}
	return 1;
}

/* the event of a seismic or tsunami telegram */
static json_t *
seismic_event(const ProductInfo *prod, xmlNodePtr control, xmlNodePtr head, xmlNodePtr bdy,
			  FeedResult *res)
{
	json_t	   *ev;
	char		ids[256],
				buf[4096];
	char	   *tok,
			   *save;
	int			cancelled;
	int			level = 0;

	ev = json_object();
	feed_set_str(ev, "source", "jma");
	feed_set_str(ev, "product", prod->code);
	feed_set_str(ev, "kind", prod->kind);
	if (!jma_set_common(ev, control, head, res))
		return ev;
	cancelled = strcmp(json_string_value(json_object_get(ev, "info_type")), "cancelled") == 0;

	/* EventID: 14 digits; VTSE41 may list several, separated by spaces */
	jma_text_of(jma_child(head, "EventID"), ids, sizeof(ids));
	{
		json_t	   *all = json_array();

		for (tok = strtok_r(ids, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save))
		{
			size_t		i;

			for (i = 0; tok[i]; i++)
				if (!isdigit((unsigned char) tok[i]))
					break;
			if (tok[i] != '\0' || i != 14)
			{
				feed_fail(res, FEED_ERR_CONTENT, "Head/EventID \"%.40s\" is not 14 digits", tok);
				json_decref(all);
				return ev;
			}
			json_array_append_new(all, json_string(tok));
		}
		if (json_array_size(all) == 0)
		{
			feed_fail(res, FEED_ERR_CONTENT, "Head/EventID is empty");
			json_decref(all);
			return ev;
		}
		json_object_set(ev, "source_event_id", json_array_get(all, 0));
		json_object_set_new(ev, "related_event_ids", all);
	}

	jma_set_time(ev, "issued_at", jma_child(control, "DateTime"), res);
	jma_set_time(ev, "report_time", jma_child(head, "ReportDateTime"), res);
	jma_set_time(ev, "target_time", jma_child(head, "TargetDateTime"), res);
	if (json_is_null(json_object_get(ev, "issued_at")))
	{
		feed_fail(res, FEED_ERR_CONTENT, "Control/DateTime is missing");
		return ev;
	}
	jma_set_text(ev, "office", jma_child(control, "EditorialOffice"));
	jma_set_text(ev, "title", jma_child(head, "Title"));
	jma_set_text(ev, "headline", jma_path(head, "Headline", "Text", NULL));
	json_object_set_new(ev, "foreign", json_boolean(strcmp(jma_text_of(jma_child(head, "Title"), buf, sizeof(buf)), "遠地地震に関する情報") == 0));
	json_object_set_new(ev, "cancelled", json_boolean(cancelled));

	if (cancelled)
		jma_set_text(ev, "cancel_text", jma_child(bdy, "Text"));
	else if (bdy)
	{
		xmlNodePtr	eq = jma_child(bdy, "Earthquake");
		xmlNodePtr	in = jma_child(bdy, "Intensity");

		if (eq)
			parse_earthquake(eq, ev, res);
		if (strcmp(prod->code, "VXSE43") == 0)
		{
			if (jma_child(in, "Forecast"))
			{
				parse_eew_forecast(jma_child(in, "Forecast"), ev, res);
				level = 1;
			}
		}
		else if (jma_child(in, "Observation"))
			level = parse_observation(jma_child(in, "Observation"), ev, res);
		if (strcmp(prod->code, "VTSE41") == 0)
		{
			xmlNodePtr	fc = jma_path(bdy, "Tsunami", "Forecast", NULL);

			if (fc == NULL)
				feed_fail(res, FEED_ERR_CONTENT, "VTSE41 without Body/Tsunami/Forecast");
			else
				parse_tsunami(fc, ev, res);
		}
		if ((strcmp(prod->code, "VXSE51") == 0) && jma_child(in, "Observation") == NULL)
			feed_fail(res, FEED_ERR_CONTENT, "VXSE51 without Body/Intensity/Observation");
		if ((strcmp(prod->code, "VXSE52") == 0 || strcmp(prod->code, "VXSE61") == 0) && eq == NULL)
			feed_fail(res, FEED_ERR_CONTENT, "%s without Body/Earthquake", prod->code);
	}
	/* how detailed the intensities are: 0 none, 1 areas, 2 municipalities */
	feed_set_int(ev, "detail_level", level);
	return ev;
}

json_t *
feed_parse_jma(const char *body, size_t len, FeedResult *res)
{
	xmlDocPtr	doc;
	xmlNodePtr	root,
				control,
				head,
				bdy;
	const ProductInfo *prod;
	json_t	   *ev = NULL;
	json_t	   *out = NULL;
	char		title[256];

	res->code = FEED_OK;
	doc = jma_xml_read(body, len, res);
	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (xmlStrcmp(root->name, BAD_CAST "Report") != 0 || !jma_in_ns(root, JMA_NS))
	{
		feed_fail(res, FEED_ERR_CONTENT, "not a JMA XML telegram (root element is <%.40s>, expected <Report>)",
				  (const char *) root->name);
		goto done;
	}
	control = jma_child(root, "Control");
	head = jma_child(root, "Head");
	bdy = jma_child(root, "Body");
	if (control == NULL || head == NULL)
	{
		feed_fail(res, FEED_ERR_CONTENT, "JMA telegram without Control or Head");
		goto done;
	}
	jma_text_of(jma_child(control, "Title"), title, sizeof(title));
	for (prod = products; prod->title; prod++)
		if (strcmp(prod->title, title) == 0)
			break;
	if (prod->title != NULL)
		ev = seismic_event(prod, control, head, bdy, res);
	else if (jma_weather_title(title))
		ev = jma_weather_event(title, control, head, bdy, res);
	else
	{
		feed_fail(res, FEED_ERR_UNSUPPORTED, "JMA product \"%.100s\" is not a telegram this parser handles (earthquake, tsunami, weather, landslide, rain, volcano, flood)", title);
		goto done;
	}

	if (res->code == FEED_OK)
	{
		json_t	   *events = json_array();

		json_array_append_new(events, ev);
		ev = NULL;
		out = json_object();
		json_object_set_new(out, "events", events);
	}
done:
	if (ev)
		json_decref(ev);
	xmlFreeDoc(doc);
	return out;
}

/* ------------------------------------------------------------ Atom feeds */

static xmlNodePtr
atom_child(xmlNodePtr parent, const char *name)
{
	xmlNodePtr	c;

	for (c = parent ? parent->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0 &&
			c->ns && xmlStrcmp(c->ns->href, BAD_CAST ATOM_NS) == 0)
			return c;
	return NULL;
}

/* product code from a telegram URL: …/YYYYMMDDhhmmss_0_VXSE53_010000.xml */
static void
product_from_url(const char *url, char *out, size_t outlen)
{
	const char *p = strrchr(url, '/');

	out[0] = '\0';
	p = p ? p + 1 : url;
	for (; (p = strchr(p, '_')) != NULL; p++)
	{
		if (p[1] == 'V' && strlen(p + 1) > 6 && p[7] == '_')
		{
			int			ok = 1;

			for (int i = 1; i <= 6; i++)
				if (!isupper((unsigned char) p[i]) && !isdigit((unsigned char) p[i]))
					ok = 0;
			if (ok && outlen > 6)
			{
				memcpy(out, p + 1, 6);
				out[6] = '\0';
				return;
			}
		}
	}
}

json_t *
feed_parse_jma_atom(const char *body, size_t len, FeedResult *res)
{
	xmlDocPtr	doc;
	xmlNodePtr	root,
				e;
	json_t	   *entries,
			   *out = NULL;
	char		buf[4096];

	res->code = FEED_OK;
	doc = jma_xml_read(body, len, res);
	if (doc == NULL)
		return NULL;
	root = xmlDocGetRootElement(doc);
	if (xmlStrcmp(root->name, BAD_CAST "feed") != 0 || root->ns == NULL ||
		xmlStrcmp(root->ns->href, BAD_CAST ATOM_NS) != 0)
	{
		feed_fail(res, FEED_ERR_CONTENT, "not an Atom feed (root element is <%.40s>)", (const char *) root->name);
		xmlFreeDoc(doc);
		return NULL;
	}
	entries = json_array();
	for (e = root->children; e; e = e->next)
	{
		json_t	   *o;
		xmlNodePtr	link,
					l;
		char		url[2048],
					product[16];

		if (e->type != XML_ELEMENT_NODE || xmlStrcmp(e->name, BAD_CAST "entry") != 0)
			continue;
		o = json_object();
		jma_text_of(atom_child(e, "id"), url, sizeof(url));
		/* prefer link[@type='application/xml']/@href; the id is the same URL */
		link = NULL;
		for (l = e->children; l; l = l->next)
			if (l->type == XML_ELEMENT_NODE && xmlStrcmp(l->name, BAD_CAST "link") == 0 &&
				strcmp(jma_attr_of(l, "type", buf, sizeof(buf)), "application/xml") == 0)
				link = l;
		feed_set_str(o, "id", url);
		if (link && *jma_attr_of(link, "href", buf, sizeof(buf)))
			snprintf(url, sizeof(url), "%s", buf);
		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		{
			feed_fail(res, FEED_ERR_CONTENT, "Atom entry without an http(s) link (\"%.80s\")", url);
			json_decref(o);
			break;
		}
		feed_set_str(o, "url", url);
		product_from_url(url, product, sizeof(product));
		feed_set_str(o, "product", product[0] ? product : NULL);
		feed_set_str(o, "title", jma_text_of(atom_child(e, "title"), buf, sizeof(buf)));
		feed_set_str(o, "author", jma_text_of(atom_child(atom_child(e, "author"), "name"), buf, sizeof(buf)));
		feed_set_str(o, "content", jma_text_of(atom_child(e, "content"), buf, sizeof(buf)));
		jma_text_of(atom_child(e, "updated"), buf, sizeof(buf));
		if (!feed_valid_timestamp(buf))
		{
			feed_fail(res, FEED_ERR_CONTENT, "Atom entry updated \"%.40s\" is not an ISO 8601 time", buf);
			json_decref(o);
			break;
		}
		feed_set_str(o, "updated", buf);
		json_array_append_new(entries, o);
	}
	if (res->code != FEED_OK)
		json_decref(entries);
	else
	{
		out = json_object();
		json_object_set_new(out, "entries", entries);
		jma_text_of(atom_child(root, "updated"), buf, sizeof(buf));
		feed_set_str(out, "updated", feed_valid_timestamp(buf) ? buf : NULL);
	}
	xmlFreeDoc(doc);
	return out;
}
