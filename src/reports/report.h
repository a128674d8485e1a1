/* report.h — the report path shared by answers.c and submit.c. */
#ifndef STATUS_CHECKER_REPORT_H
#define STATUS_CHECKER_REPORT_H

#include "storage/itemptr.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* a report's target as found by its token or key, with its request */
typedef struct FoundTarget
{
	int64		tenant_id;
	int64		request_id;
	int64		site_id;
	char	   *state;			/* the request's */
	char	   *title;
	char	   *cancel_reason;	/* or NULL */
	int64		form_id;
	ItemPointerData tid;		/* the row version read */
	text	   *submit_key;		/* the latest idempotency key, or NULL */
	bool		has_latest;
	int64		latest_report_id;
} FoundTarget;

/* one report to write (store.c) */
typedef struct ReportWrite
{
	int64		tenant_id;
	int64		request_id;
	int64		site_id;
	ItemPointerData tid;		/* the target row version the caller read */
	const uint8 *token_hash;	/* by token: the hash the row must still carry */
	text	   *idem;			/* idempotency key, or NULL */
	int32		level;
	const char *color;			/* or NULL */
	const char *icon;			/* or NULL */
	TimestampTz now;
	Jsonb	   *answers;
	const char *via;
	const char *submitted_by;	/* or NULL */
	bool		count_inline;	/* move the counters now (first report of the transaction) */
	int16		slot;			/* this backend's counter slot */
	/* set by report_write */
	int64		report_id;
	bool		had_level;		/* false: the site's first report */
	int32		old_level;
} ReportWrite;

typedef enum ReportWriteResult
{
	REPORT_WRITTEN,
	REPORT_WRITE_LOST_RACE,		/* closed, token replaced, replayed or deleted meanwhile */
	REPORT_WRITE_UNSUPPORTED	/* the tables have foreign triggers: use the statement */
} ReportWriteResult;

extern ReportWriteResult report_write(ReportWrite *rw);
extern int	report_find_by_token(const uint8 *hash, FoundTarget *ft);

extern int16 counter_slot(void);
extern void counters_add(int64 tenant_id, int64 request_id, int old_level, int new_level);
extern void counters_init(void);
extern bool counters_inline_begin(void);
extern void counters_inline_end(void);
extern void answers_check(Jsonb *def, Jsonb *answers, int *level, char **color, char **icon);

#endif
