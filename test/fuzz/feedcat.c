/*
 * feedcat.c — parse feed documents with the extension's parsers, outside the
 * server.  `feedcat SOURCE FILE...` prints each document's event model as
 * JSON; `feedcat -b SECONDS SOURCE FILE...` parses the files round-robin for
 * the given time and prints documents per second (test/bench/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
				rc = 0;

	if (argc > 2 && strcmp(argv[1], "-b") == 0)
	{
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
				json_t	   *out = feed_parse(argv[first], bufs[i], lens[i], &res);

				if (out == NULL)
				{
					fprintf(stderr, "%s: %s\n", argv[first + 1 + i], res.message);
					return 1;
				}
				json_decref(out);
				docs++;
				bytes += lens[i];
			}
		} while ((t = now() - t0) < bench);
		printf("%s\t%d files\t%.0f docs/s\t%.1f MB/s\n", argv[first], nfiles, docs / t, bytes / t / 1e6);
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
			char	   *s = json_dumps(out, JSON_INDENT(1) | JSON_ENSURE_ASCII * 0);

			printf("%s\n", s);
			free(s);
			json_decref(out);
		}
		free(buf);
	}
	return rc;
}
