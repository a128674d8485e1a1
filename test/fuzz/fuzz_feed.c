/*
 * fuzz_feed.c — libFuzzer harness for the server-independent feed parsers.
 *
 * Built once per parser with -DFUZZ_SOURCE='"jma"' (or jma_atom, p2pquake,
 * usgs) by test/fuzz/run-fuzz.sh; the seed corpus is the recorded fixtures
 * in ../shared/fixtures/feeds/.  Each input is parsed and, when it parses,
 * serialised (so every output value is visited); leaks are caught by
 * LeakSanitizer, memory errors by AddressSanitizer.
 */
#include <stdint.h>
#include <stdlib.h>

#include "feeds/feed_parse.h"

#ifndef FUZZ_SOURCE
#error "define FUZZ_SOURCE"
#endif

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FeedResult	res;
	json_t	   *out = feed_parse(FUZZ_SOURCE, (const char *) data, size, &res);

	if (out)
	{
		char	   *s = json_dumps(out, JSON_COMPACT);

		if (s == NULL)
			abort();			/* the model must always serialise */
		free(s);
		json_decref(out);
	}
	else if (res.code == FEED_OK || res.message[0] == '\0')
		abort();				/* a failure must say why */
	return 0;
}
