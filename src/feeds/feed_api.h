/*-------------------------------------------------------------------------
 *
 * feed_api.h
 *	  The parsers' interface for callers that do not use jansson (the
 *	  server side: PostgreSQL's headers declare a json_object() of their
 *	  own).  See feed_parse.h for the model.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_FEED_API_H
#define STATUS_CHECKER_FEED_API_H

#include <stddef.h>

typedef enum FeedError
{
	FEED_OK = 0,
	FEED_ERR_SYNTAX,			/* not well-formed XML / JSON */
	FEED_ERR_CONTENT,			/* well-formed, but not a document we know,
								 * or a value of the wrong type / format */
	FEED_ERR_UNSUPPORTED,		/* a real product we do not parse (volcano…) */
	FEED_ERR_ENCODING,			/* not UTF-8 */
	FEED_ERR_FORBIDDEN			/* DTD / entity declarations */
} FeedError;

#define FEED_ERRLEN 256

typedef struct FeedResult
{
	FeedError	code;
	char		message[FEED_ERRLEN];
} FeedResult;

/*
 * Parse by source name ("jma", "jma_atom", "p2pquake", "usgs") and return
 * the model as compact JSON text (malloc'd: the caller frees it), or NULL
 * with res filled in.
 */
extern char *feed_parse_to_json(const char *source, const char *body, size_t len,
								FeedResult *res);
extern void feed_free(char *json);

/* the server loads the parser library with dlopen (src/feeds/feeds.c) */
typedef char *(*feed_parse_to_json_fn) (const char *source, const char *body,
										size_t len, FeedResult *res);
typedef void (*feed_free_fn) (char *json);

#endif
