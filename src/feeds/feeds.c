/*-------------------------------------------------------------------------
 *
 * feeds.c
 *	  SQL entry point of the feed parsers: _parse_feed_document().
 *
 * The parsers (feed_jma.c, feed_json.c) are server-independent and return
 * a jansson tree; this file checks the size limit, calls them inside
 * them (they allocate with malloc and never longjmp; the JSON text they
 * return is freed in PG_FINALLY), and hands the model to SQL as jsonb,
 * where ingest_feed_document() stores it (src/feeds/feeds.sql).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "common/sc_guc.h"
#include "feeds/feed_api.h"

PG_FUNCTION_INFO_V1(sc_parse_feed_document);

static feed_parse_to_json_fn parse_fn;
static feed_free_fn free_fn;

/*
 * Load status_checker_parsers.so once per backend.  RTLD_DEEPBIND makes
 * the library and its dependencies (jansson, libxml2) resolve their own
 * symbols first: the postgres binary exports a json_object() that would
 * otherwise replace jansson's.
 */
static void
load_parsers(void)
{
	char		pkglib[MAXPGPATH];
	char		path[MAXPGPATH + 64];
	void	   *h;

	if (parse_fn)
		return;
	get_pkglib_path(my_exec_path, pkglib);
	snprintf(path, sizeof(path), "%s/status_checker_parsers%s", pkglib, DLSUFFIX);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load the feed parsers \"%s\": %s", path, dlerror()),
				 errhint("Install status_checker completely (make install puts the library next to status_checker%s).", DLSUFFIX)));
	free_fn = (feed_free_fn) dlsym(h, "feed_free");
	parse_fn = (feed_parse_to_json_fn) dlsym(h, "feed_parse_to_json");
	if (parse_fn == NULL || free_fn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the feed parser library \"%s\" is incomplete", path)));
}

static int
feed_sqlstate(FeedError code)
{
	switch (code)
	{
		case FEED_ERR_SYNTAX:
			return ERRCODE_INVALID_TEXT_REPRESENTATION;
		case FEED_ERR_ENCODING:
			return ERRCODE_CHARACTER_NOT_IN_REPERTOIRE;
		case FEED_ERR_UNSUPPORTED:
			return ERRCODE_FEATURE_NOT_SUPPORTED;
		case FEED_ERR_FORBIDDEN:
			return ERRCODE_INSUFFICIENT_PRIVILEGE;
		case FEED_ERR_CONTENT:
		default:
			return ERRCODE_INVALID_PARAMETER_VALUE;
	}
}

/*
 * _parse_feed_document(source text, body bytea) RETURNS jsonb
 *
 * The event model of one document (see feed_parse.h), or an error naming
 * the problem.  Stores nothing.
 */
Datum
sc_parse_feed_document(PG_FUNCTION_ARGS)
{
	char	   *source = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea	   *body = PG_GETARG_BYTEA_PP(1);
	size_t		len = VARSIZE_ANY_EXHDR(body);
	const char *data = VARDATA_ANY(body);
	FeedResult	res;
	char	   *volatile dumped = NULL;
	Datum		result;

	if (strcmp(source, "jma") != 0 && strcmp(source, "jma_atom") != 0 &&
		strcmp(source, "p2pquake") != 0 && strcmp(source, "usgs") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown feed source \"%s\"", source),
				 errhint("Use jma (one JMA XML telegram), p2pquake (P2PQuake JSON API v2) or usgs (USGS GeoJSON).")));
	if (len > (size_t) sc_max_feed_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s document of %zu bytes is larger than status_checker.max_feed_bytes (%d bytes)",
						source, len, sc_max_feed_bytes),
				 errdetail("Nothing was stored.")));
	/* a UTF-8 byte order mark is allowed and skipped */
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
	{
		data += 3;
		len -= 3;
	}
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("%s document is empty", source)));

	/* the parsers never longjmp and free what they allocate on failure */
	load_parsers();
	dumped = parse_fn(source, data, len, &res);

	if (dumped == NULL)
		ereport(ERROR,
				(errcode(feed_sqlstate(res.code)),
				 errmsg("invalid %s document: %s", source, res.message),
				 errdetail("Nothing was stored."),
				 res.code == FEED_ERR_ENCODING ?
				 errhint("Feeds are UTF-8 (JMA XML, P2PQuake and USGS all are); convert the document first.") : 0));
	PG_TRY();
	{
		result = DirectFunctionCall1(jsonb_in, CStringGetDatum(dumped));
	}
	PG_FINALLY();
	{
		free_fn(dumped);
	}
	PG_END_TRY();
	PG_RETURN_DATUM(result);
}
