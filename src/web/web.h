/*-------------------------------------------------------------------------
 *
 * web.h
 *	  The optional HTTP worker (http.c) and the reporter page it serves
 *	  (html.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_WEB_H
#define STATUS_CHECKER_WEB_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* GUCs (module.c) */
extern char *sc_http_listen;
extern int	sc_http_workers;
extern char *sc_http_trusted_proxies;
extern int	sc_http_token_failures;
extern int	sc_http_max_body;
extern char *sc_http_timezone;

/* a posted form field (a multi-choice question posts one per choice) */
typedef struct WebField
{
	char	   *name;
	StringInfoData value;
} WebField;

/* a problem with one answer, shown next to its question */
typedef struct WebError
{
	char	   *question;		/* question key, or NULL for the whole form */
	char	   *message;
} WebError;

/* what the reporter page shows above the form */
typedef enum WebBanner
{
	BANNER_NONE,
	BANNER_RECEIVED,			/* the report just submitted is stored */
	BANNER_INVALID,				/* answers to correct, see the questions */
	BANNER_CLOSED,				/* the request no longer takes reports */
	BANNER_READ_ONLY			/* this server is a standby; try again */
} WebBanner;

typedef struct ReporterPage
{
	Jsonb	   *doc;			/* report_form(token) */
	const char *token;
	const char *lang;			/* "ja" or "en" */
	const char *key;			/* idempotency key of the form shown */
	List	   *posted;			/* WebField list: the input to keep, or NIL */
	List	   *errors;			/* WebError list */
	WebBanner	banner;
	const char *banner_detail;	/* e.g. the reason of a cancellation */
} ReporterPage;

extern void html_escape(StringInfo buf, const char *s);
extern void reporter_page_html(StringInfo buf, ReporterPage *page);
extern void message_page_html(StringInfo buf, const char *lang, const char *title, const char *text);
extern Jsonb *answers_from_fields(Jsonb *doc, List *posted, const char *lang, List **errors);
extern const char *web_error_text(const char *lang, const char *sqlstate, const char *message);

extern const char sc_web_css[];
extern const char sc_web_js[];

/* called from _PG_init */
extern void sc_http_register(void);
extern void sc_http_shmem_init(void);

#endif
