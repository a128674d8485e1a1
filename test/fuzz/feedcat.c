/*
 * feedcat.c — parse feed documents with the extension's parsers, outside the
 * server.  `feedcat SOURCE FILE...` prints each document's event model as
 * JSON; `feedcat -b SECONDS SOURCE FILE...` parses the files round-robin for
 * the given time and prints documents per second (test/bench/);
 * `feedcat -r SECONDS SOURCE FILE...` does the same with the bare library
 * parse (libxml2 or jansson, no event model): the baseline of the bench.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

#include "feeds/feed_parse.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0)
	{
		perror(path);
		exit(2);
	}
	rewind(f);
	buf = malloc((size_t) n + 1);
	if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n)
	{
		perror(path);
		exit(2);
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t) n;
	return buf;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	double		bench = 0;
	int			first = 1,
				rc = 0,
				raw = 0;

	if (argc > 2 && (strcmp(argv[1], "-b") == 0 || strcmp(argv[1], "-r") == 0))
	{
		raw = argv[1][1] == 'r';
		bench = atof(argv[2]);
		first = 3;
	}
	if (argc - first < 2)
	{
		fprintf(stderr, "usage: feedcat [-b seconds] jma|jma_atom|p2pquake|usgs FILE...\n");
		return 2;
	}
	if (bench > 0)
	{
		int			nfiles = argc - first - 1;
		char	  **bufs = calloc(nfiles, sizeof(char *));
		size_t	   *lens = calloc(nfiles, sizeof(size_t));
		long		docs = 0;
		size_t		bytes = 0;
		double		t0,
					t;

		for (int i = 0; i < nfiles; i++)
			bufs[i] = slurp(argv[first + 1 + i], &lens[i]);
		t0 = now();
		do
		{
			for (int i = 0; i < nfiles; i++)
			{
				FeedResult	res;
				json_t	   *out;

				if (raw && strncmp(argv[first], "jma", 3) == 0)
				{
					xmlDocPtr	doc = xmlReadMemory(bufs[i], (int) lens[i], NULL, NULL,
													XML_PARSE_NONET | XML_PARSE_NOBLANKS);

					if (doc == NULL)
						return 1;
					xmlFreeDoc(doc);
				}
				else if (raw)
				{
					json_error_t err;

					out = json_loadb(bufs[i], lens[i], JSON_REJECT_DUPLICATES, &err);
					if (out == NULL)
						return 1;
					json_decref(out);
				}
				else
				{
					out = feed_parse(argv[first], bufs[i], lens[i], &res);
					if (out == NULL)
					{
						fprintf(stderr, "%s: %s\n", argv[first + 1 + i], res.message);
						return 1;
					}
					json_decref(out);
				}
				docs++;
				bytes += lens[i];
			}
		} while ((t = now() - t0) < bench);
		printf("%.0f\t%.1f\n", docs / t, bytes / t / 1e6);
		return 0;
	}
	for (int i = first + 1; i < argc; i++)
	{
		size_t		len;
		char	   *buf = slurp(argv[i], &len);
		FeedResult	res;
		json_t	   *out = feed_parse(argv[first], buf, len, &res);

		if (out == NULL)
		{
			fprintf(stderr, "%s: error %d: %s\n", argv[i], (int) res.code, res.message);
			rc = 1;
		}
		else
		{
			char	   *s = json_dumps(out, JSON_INDENT(1) | JSON_REAL_PRECISION(12));

			printf("%s\n", s);
			free(s);
			json_decref(out);
		}
		free(buf);
	}
	return rc;
}
