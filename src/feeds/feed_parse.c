/*-------------------------------------------------------------------------
 *
 * feed_parse.c
 *	  Picks the parser for a source name and hands back its model, as a
 *	  jansson tree (feed_parse) or as compact JSON text (feed_parse_to_json,
 *	  the entry point the server loads from the parser library).
 *
 * Server-independent (see feed_parse.h).  It calls the parsers
 * (feed_jma.c, feed_json.c); they call only the helpers in feed_common.c.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "feeds/feed_parse.h"

json_t *
feed_parse(const char *source, const char *body, size_t len, FeedResult *res)
{
	res->code = FEED_OK;
	res->message[0] = '\0';
	if (strcmp(source, "jma") == 0)
		return feed_parse_jma(body, len, res);
	if (strcmp(source, "jma_atom") == 0)
		return feed_parse_jma_atom(body, len, res);
	if (strcmp(source, "p2pquake") == 0)
		return feed_parse_p2pquake(body, len, res);
	if (strcmp(source, "usgs") == 0)
		return feed_parse_usgs(body, len, res);
	feed_fail(res, FEED_ERR_UNSUPPORTED, "unknown source \"%.40s\"", source);
	return NULL;
}

char *
feed_parse_to_json(const char *source, const char *body, size_t len, FeedResult *res)
{
	json_t	   *tree = feed_parse(source, body, len, res);
	char	   *out;

	if (tree == NULL)
		return NULL;
	out = json_dumps(tree, JSON_COMPACT | JSON_REAL_PRECISION(12));
	json_decref(tree);
	if (out == NULL)
		feed_fail(res, FEED_ERR_CONTENT, "out of memory while serialising the model");
	return out;
}

void
feed_free(char *p)
{
	free(p);
}
