/*-------------------------------------------------------------------------
 *
 * feed_jma.h
 *	  What the JMA XML parsers share: reading a document safely (no DTD,
 *	  no network, UTF-8 only), walking it by local name inside JMA's
 *	  namespace family, and the Control/Head fields every telegram has.
 *	  feed_jma.c defines these; feed_jma_weather.c uses them.
 *
 * Server-independent (see feed_parse.h).  Internal to the parser library.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_FEED_JMA_H
#define STATUS_CHECKER_FEED_JMA_H

#include <libxml/tree.h>

#include "feeds/feed_parse.h"

#define JMA_NS		"http://xml.kishou.go.jp/jmaxml1/"

/* a parsed document (the caller frees it with xmlFreeDoc), or NULL and res */
extern xmlDocPtr jma_xml_read(const char *body, size_t len, FeedResult *res);

/* elements by local name in JMA's namespace family */
extern int	jma_in_ns(xmlNodePtr n, const char *ns_prefix);
extern xmlNodePtr jma_child(xmlNodePtr parent, const char *name);
extern xmlNodePtr jma_next_sibling(xmlNodePtr n, const char *name);
extern xmlNodePtr jma_path(xmlNodePtr n, const char *p1, const char *p2, const char *p3);

#define JMA_FOREACH_CHILD(var, parent, name) \
	for ((var) = jma_child((parent), (name)); (var); (var) = jma_next_sibling((var), (name)))

/* trimmed text (ASCII white space and U+3000) or attribute into buf; "" if absent */
extern char *jma_text_of(xmlNodePtr n, char *buf, size_t buflen);
extern char *jma_attr_of(xmlNodePtr n, const char *name, char *buf, size_t buflen);

/* obj[key] = the element's text (null if absent) / its checked timestamp */
extern void jma_set_text(json_t *obj, const char *key, xmlNodePtr n);
extern void jma_set_time(json_t *obj, const char *key, xmlNodePtr n, FeedResult *res);

/*
 * status (Control/Status), info_type (Head/InfoType) and serial
 * (Head/Serial) of every telegram; 0 and res on a value of the wrong shape.
 */
extern int	jma_set_common(json_t *ev, xmlNodePtr control, xmlNodePtr head, FeedResult *res);

/* feed_jma_weather.c: is Control/Title one of its products? */
extern int	jma_weather_title(const char *title);

/* the event of a weather, landslide, rain, volcano or flood telegram */
extern json_t *jma_weather_event(const char *title, xmlNodePtr control, xmlNodePtr head,
								 xmlNodePtr body, FeedResult *res);

#endif
