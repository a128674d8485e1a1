/*-------------------------------------------------------------------------
 *
 * web.h
 *	  The optional HTTP worker: its server loop (http.c), its apps (the
 *	  reporter page and API, reporter.c; the dashboard, dashboard.c), the
 *	  helpers they share (web_common.c, ratelimit.c, connections.c) and the
 *	  pages' HTML (html.c).  Calls run in that order, never back.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_WEB_H
#define STATUS_CHECKER_WEB_H

#include <sys/socket.h>
#include <microhttpd.h>

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/jsonb.h"

/* GUCs (registered by module.c), each defined in the file that uses it */
/* http.c */
extern char *sc_http_listen;
extern int	sc_http_workers;
extern char *sc_http_role;
/* ratelimit.c */
extern char *sc_http_trusted_proxies;
extern int	sc_http_token_failures;
extern int	sc_http_block_time;
extern int	sc_http_block_max;
/* connections.c */
extern int	sc_http_max_connections_per_address;
extern int	sc_http_header_timeout;
/* web_common.c */
extern int	sc_http_max_body;
extern char *sc_http_timezone;
extern char *sc_http_map_tiles;
extern char *sc_http_map_attribution;

/* connections one worker holds at most, and how long one may stay idle (seconds) */
#define HTTP_MAX_CONNECTIONS 1000
#define HTTP_IDLE_TIMEOUT 30

/* room for an address or key as text (web_addr_text): an IPv6 address and "/64" */
#define WEB_ADDR_TEXT_LEN (46 + 3)

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

/* one HTTP request being handled (libmicrohttpd's per-connection state) */
typedef struct WebRequest
{
	MemoryContext cxt;			/* everything of the request; deleted at its end */
	struct MHD_PostProcessor *pp;
	StringInfoData body;		/* the raw body (JSON API) */
	size_t		received;		/* bytes of body so far */
	List	   *fields;			/* WebField: the posted form */
	bool		too_big;
	bool		bad_form;
	ErrorData  *error;			/* of the last transaction, if it failed */
} WebRequest;

/* web_common.c: one transaction per call, replies, errors by SQLSTATE, the page's language and fields */
extern bool web_in_transaction(WebRequest *req, void (*fn) (void *), void *arg, bool read_only,
							   const char *activity);
extern void web_set_local_role(const char *role);
extern void web_check_login(void);
extern void web_recheck_login(void);
extern void web_refresh_csp(void);
extern const char *web_tile_origin(void);
extern enum MHD_Result web_reply_ex(struct MHD_Connection *conn, unsigned int status, const char *type,
									const char *body, size_t len, int retry_after, const char *location,
									bool cacheable, const char *const *extra);
extern enum MHD_Result web_reply(struct MHD_Connection *conn, unsigned int status, const char *type,
								 const char *body, size_t len, int retry_after, const char *location,
								 bool cacheable);
extern enum MHD_Result web_reply_html(struct MHD_Connection *conn, unsigned int status, StringInfo html,
									  int retry_after);
extern enum MHD_Result web_reply_message(struct MHD_Connection *conn, unsigned int status, const char *lang,
										 const char *title, const char *text, int retry_after);
extern enum MHD_Result web_reply_json_error(struct MHD_Connection *conn, unsigned int status,
											const char *sqlstate, const char *message, ErrorData *e,
											int retry_after);
extern const char *web_sqlstate_of(ErrorData *e);
extern int	web_status_for(ErrorData *e);
extern void web_log_failure(ErrorData *e, const char *what);
extern const char *web_wait_text(const char *lang, int seconds);
extern bool web_secret_equal(const char *given, const char *expected);
extern const char *web_lang(struct MHD_Connection *conn, WebRequest *req);
extern const char *web_field(WebRequest *req, const char *name);
extern char *web_new_key(void);

/* ratelimit.c: client addresses, the per-address limiter and the counters in shared memory */
extern Size web_rate_shmem_size(void);
extern void web_rate_shmem_init(void);
extern void web_count_request(void);
extern void web_count_report(void);
extern int	web_rate_limited(const uint8 *addr);
extern void web_rate_note_failure(const uint8 *addr);
extern void web_load_trusted_proxies(void);
extern void web_client_address(struct MHD_Connection *conn, uint8 *addr);
extern void web_addr_of(const struct sockaddr *sa, uint8 *addr);
extern void web_addr_key(const uint8 *addr, uint8 *key);
extern const char *web_addr_text(const uint8 *key, char *buf);
extern bool web_trusted_proxy(const uint8 *addr);

/* connections.c: connections per address, and the deadlines of slow requests */
typedef enum WebStage
{
	WEB_STAGE_HEADERS_IN,		/* the body, if any, is due within HTTP_IDLE_TIMEOUT */
	WEB_STAGE_ANSWERING,		/* no deadline */
	WEB_STAGE_ANSWERED			/* the next request is due within HTTP_IDLE_TIMEOUT */
} WebStage;

extern Size web_connections_shmem_size(void);
extern void web_connections_shmem_request(void);
extern void web_connections_shmem_init(void);
extern void web_connections_start(void);
extern enum MHD_Result web_accept_policy(void *cls, const struct sockaddr *sa, socklen_t len);
extern void web_connection_notice(void *cls, struct MHD_Connection *conn, void **socket_context,
								  enum MHD_ConnectionNotificationCode code);
extern void web_connection_stage(struct MHD_Connection *conn, WebStage stage);
extern long web_connection_deadlines(long timeout);

/* reporter.c: /r/<token> and /api/v1/r/<token> */
extern enum MHD_Result reporter_dispatch(struct MHD_Connection *conn, WebRequest *req, const char *token,
										 bool api, bool post);

/* dashboard.c: /d/… */
extern enum MHD_Result dashboard_dispatch(struct MHD_Connection *conn, WebRequest *req, const char *url,
										  bool get, bool post, const uint8 *addr);

/* html.c */
extern void html_escape(StringInfo buf, const char *s);
extern void reporter_page_html(StringInfo buf, ReporterPage *page);
extern void message_page_html(StringInfo buf, const char *lang, const char *title, const char *text);
extern Jsonb *answers_from_fields(Jsonb *doc, List *posted, const char *lang, List **errors);
extern const char *web_error_text(const char *lang, const ErrorData *e);

/* the assets (src/web/assets/, compiled in by src/web/embed.sh) */
extern const char sc_asset_report_css[];
extern const size_t sc_asset_report_css_len;
extern const char sc_asset_report_js[];
extern const size_t sc_asset_report_js_len;
extern const char sc_asset_dashboard_css[];
extern const size_t sc_asset_dashboard_css_len;
extern const char sc_asset_dashboard_js[];
extern const size_t sc_asset_dashboard_js_len;

/* http.c: called from _PG_init */
extern void sc_http_register(void);
extern void sc_http_shmem_init(void);

#endif
