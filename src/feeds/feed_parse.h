/*-------------------------------------------------------------------------
 *
 * feed_parse.h
 *	  Disaster feed parsers: one document in, the common event model out.
 *
 * Server-independent (no PostgreSQL headers): the extension calls these
 * from src/feeds/feeds.c, and the libFuzzer harness in test/fuzz/ calls
 * them directly.  Every function returns a jansson value that the caller
 * owns (json_decref), or NULL with a message in err; none of them longjmps,
 * prints, or keeps state between calls.
 *
 * Output (documented for users in docs/feeds.md, "The event model"):
 *
 *	 {"events": [ { "source", "source_event_id", "kind", "product",
 *					"status", "info_type", "serial", "issued_at", ... ,
 *					"intensities": [ {scope, code, name, shindo, incomplete} ],
 *					"tsunami": [ {code, name, kind_code, kind_name, ...} ] } ]}
 *
 * and for JMA's weather, landslide, rain, volcano and flood telegrams
 * (feed_jma_weather.c; docs/feeds.md, "Weather, landslide, rain, flood and
 * volcano telegrams"), one event each:
 *
 *	 {"events": [ { "source": "jma", "kind" (weather, landslide,
 *					record_rain, volcano, flood), "product" (VPWW53, VPWW54,
 *					VXWW50, VPOA50, VFVO50, VXKO), "source_event_id" (the
 *					episode's scope: 府県予報区, TargetArea, EventID, volcano or
 *					river forecast area code), "scope_name", "status",
 *					"info_type", "serial", "issued_at" (Head/ReportDateTime),
 *					"target_time", "office", "title", "headline",
 *					"volcano_level" (VFVO50),
 *					"warnings": [ {scope, code, name, kind_code, kind_name,
 *								   status, last_kind_code, last_kind_name,
 *								   condition, level} ],
 *					"places": [ {name, amount_mm, approximate} ] (VPOA50) } ]}
 *
 * where a warning's keys are left out when the document has no value for
 * them.
 *
 * or, for a JMA Atom feed, {"entries": [ {id, url, title, product, updated,
 * author, content} ]}.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_FEED_PARSE_H
#define STATUS_CHECKER_FEED_PARSE_H

#include <stddef.h>

#include <jansson.h>

#include "feeds/feed_api.h"

/*
 * One JMA XML telegram (VXSE51/52/53/61, VXSE43, VTSE41; VPWW53/54, VXWW50,
 * VPOA50, VFVO50, VXKO).
 */
extern json_t *feed_parse_jma(const char *body, size_t len, FeedResult *res);

/* A JMA Atom feed (eqvol.xml, eqvol_l.xml). */
extern json_t *feed_parse_jma_atom(const char *body, size_t len, FeedResult *res);

/* P2PQuake JSON API v2: one object (551, 552, 556) or an array of them. */
extern json_t *feed_parse_p2pquake(const char *body, size_t len, FeedResult *res);

/* USGS GeoJSON: a FeatureCollection (summary feed) or one Feature (detail). */
extern json_t *feed_parse_usgs(const char *body, size_t len, FeedResult *res);

/* By source name: "jma", "jma_atom", "p2pquake", "usgs". */
extern json_t *feed_parse(const char *source, const char *body, size_t len,
						  FeedResult *res);

/* helpers shared by the parsers (feed_common.c); feed_parse() is feed_parse.c's */
extern void feed_fail(FeedResult *res, FeedError code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern int	feed_set_str(json_t *obj, const char *key, const char *val);
extern int	feed_set_strn(json_t *obj, const char *key, const char *val, size_t n);
extern int	feed_set_real(json_t *obj, const char *key, double val);
extern int	feed_set_int(json_t *obj, const char *key, long long val);
extern int	feed_set_shindo(json_t *obj, const char *key, int ordinal);
extern int	feed_valid_timestamp(const char *s);
extern int	feed_epoch_ms_to_iso(double ms, char *buf, size_t buflen);
extern int	feed_jst_to_iso(const char *in, char *buf, size_t buflen);
extern int	feed_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#endif
