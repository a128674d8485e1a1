/*-------------------------------------------------------------------------
 *
 * module.c
 *	  Library entry point of status_checker: module magic, _PG_init and the
 *	  GUCs shared by every domain.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "common/sc_guc.h"
#include "dispatch/destinations.h"
#include "dispatch/dispatch.h"
#include "feeds/watcher.h"
#include "reports/report.h"
#include "security/security.h"
#include "web/web.h"

PG_MODULE_MAGIC;

int			sc_max_import_bytes = 16 * 1024 * 1024;
int			sc_max_answers_bytes = 64 * 1024;
int			sc_max_feed_bytes = 32 * 1024 * 1024;
int			sc_backup_retention_min = 7 * 24 * 60;
char	   *sc_database = NULL;

void		_PG_init(void);

static void
master_key_assign(const char *newval, void *extra)
{
	keys_config_changed();
}

void
_PG_init(void)
{
	DefineCustomIntVariable("status_checker.max_import_bytes",
							"Largest CSV accepted by import_sites and load_jma_area_codes.",
							NULL,
							&sc_max_import_bytes,
							16 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.max_answers_bytes",
							"Largest answers document accepted by submit_report.",
							NULL,
							&sc_max_answers_bytes,
							64 * 1024, 256, 16 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.max_feed_bytes",
							"Largest feed document accepted by ingest_feed_document and fetched by the feed watcher.",
							NULL,
							&sc_max_feed_bytes,
							32 * 1024 * 1024, 1024, 1024 * 1024 * 1024,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.feed_timeout",
							"Time limit of one feed or telegram download.",
							NULL,
							&sc_feed_timeout_ms,
							30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.backup_retention",
							"How long the oldest backup is kept (28 generations every 6 hours: 7 days); "
							"deletion certificates say until when backups may still hold a deleted tenant's data.",
							NULL,
							&sc_backup_retention_min,
							7 * 24 * 60, 0, 100 * 365 * 24 * 60,
							PGC_SIGHUP, GUC_UNIT_MIN,
							NULL, NULL, NULL);
	DefineCustomStringVariable("status_checker.master_key_file",
							   "File holding the master key(s) that wrap the tenants' data keys: 64 hexadecimal digits per line, "
							   "the current key first; readable only by the server.",
							   NULL,
							   &sc_master_key_file,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, master_key_assign, NULL);
	DefineCustomStringVariable("status_checker.master_key_command",
							   "Command that prints the master key(s), as master_key_file holds them (takes precedence over it).",
							   NULL,
							   &sc_master_key_command,
							   "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, master_key_assign, NULL);
	DefineCustomStringVariable("status_checker.link_base_url",
							   "Base of the personal report links in messages; the token is appended.",
							   NULL,
							   &sc_link_base_url,
							   "http://localhost:8080/r/",
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);
	/*
	 * checked by the dispatcher where it connects, and by add_channel and
	 * add_site_contact in any backend: defined in every process
	 */
	DefineCustomStringVariable("status_checker.allowed_destinations",
							   "Networks the dispatcher may send to besides public addresses (CIDR, comma-separated), "
							   "e.g. 10.20.0.0/16 for a mail relay inside your network; empty: public addresses only.",
							   NULL,
							   &sc_allowed_destinations,
							   "",
							   PGC_SIGHUP, 0,
							   sc_allowed_destinations_check, sc_allowed_destinations_assign, NULL);
	DefineCustomIntVariable("status_checker.dispatch_concurrency",
							"Most transfers (mails and webhooks) in flight at once, shared by the dispatcher workers.",
							NULL,
							&sc_dispatch_concurrency,
							64, 1, 4096,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_batch_size",
							"Messages the dispatcher claims from the outbox in one transaction.",
							NULL,
							&sc_dispatch_batch_size,
							500, 1, 100000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_timeout",
							"Time limit of one delivery attempt (connection, TLS, SMTP dialogue or HTTP exchange).",
							NULL,
							&sc_dispatch_timeout_ms,
							30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_rate_limit",
							"Most messages per second sent through one channel, all dispatcher workers together (0: no limit).",
							NULL,
							&sc_dispatch_rate_limit,
							0, 0, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_max_attempts",
							"Delivery attempts after which a message is dead.",
							NULL,
							&sc_dispatch_max_attempts,
							10, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_retry_base",
							"Wait before the first retry; it doubles with each attempt (with jitter).",
							NULL,
							&sc_dispatch_retry_base_ms,
							30000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_retry_max",
							"Longest wait between two attempts.",
							NULL,
							&sc_dispatch_retry_max_ms,
							3600000, 10, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("status_checker.dispatch_lease",
							"How long a claimed message belongs to the dispatcher before it may be claimed again.",
							NULL,
							&sc_dispatch_lease_ms,
							300000, 1000, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	/* the workers' settings need shared_preload_libraries (the postmaster) */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("status_checker.database",
								   "Database in which the background workers run (the one with the extension).",
								   NULL,
								   &sc_database,
								   "postgres",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
		DefineCustomBoolVariable("status_checker.feed_watcher",
								 "Start the feed watcher background worker (needs shared_preload_libraries).",
								 NULL,
								 &sc_feed_watcher_enabled,
								 true,
								 PGC_POSTMASTER, 0,
								 NULL, NULL, NULL);
		DefineCustomStringVariable("status_checker.http_listen",
								   "Address and port of the HTTP worker (reporter pages and their API), e.g. 127.0.0.1:8080; "
								   "empty: no HTTP worker.",
								   NULL,
								   &sc_http_listen,
								   "",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_workers",
								"Number of HTTP workers sharing the port (SO_REUSEPORT).",
								NULL,
								&sc_http_workers,
								2, 1, 64,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		DefineCustomStringVariable("status_checker.http_role",
								   "Login the HTTP workers connect as: a member of status_checker_gateway and of the four group roles; "
								   "empty: the bootstrap superuser (not recommended).",
								   NULL,
								   &sc_http_role,
								   "",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("status_checker.http_trusted_proxies",
								   "Addresses of reverse proxies whose X-Forwarded-For names the client (comma-separated IPs).",
								   NULL,
								   &sc_http_trusted_proxies,
								   "",
								   PGC_SIGHUP, 0,
								   NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_token_failures",
								"Unknown report links and wrong passwords from one client address within a minute that earn it a block (429).",
								NULL,
								&sc_http_token_failures,
								30, 1, 1000000,
								PGC_SIGHUP, 0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_block_time",
								"How long an address's first block lasts; each further block in a row lasts twice the one before.",
								NULL,
								&sc_http_block_time,
								60, 1, 7 * 24 * 3600,
								PGC_SIGHUP, GUC_UNIT_S,
								NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_block_max",
								"The longest block of an address; quiet for that long after its last block, an address starts again at http_block_time.",
								NULL,
								&sc_http_block_max,
								3600, 1, 7 * 24 * 3600,
								PGC_SIGHUP, GUC_UNIT_S,
								NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_max_connections_per_address",
								"Connections one client address may hold open to the HTTP workers, all together (IPv6: per /64; "
								"the trusted proxies are exempt; 0: no limit).",
								NULL,
								&sc_http_max_connections_per_address,
								50, 0, 64 * 1000,
								PGC_SIGHUP, 0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_header_timeout",
								"Time from a connection's accept within which its first request's headers must have arrived, "
								"however slowly they trickle in.",
								NULL,
								&sc_http_header_timeout,
								10, 1, 300,
								PGC_SIGHUP, GUC_UNIT_S,
								NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.http_max_body",
								"Largest request body the HTTP worker accepts.",
								NULL,
								&sc_http_max_body,
								256 * 1024, 1024, 16 * 1024 * 1024,
								PGC_SIGHUP, GUC_UNIT_BYTE,
								NULL, NULL, NULL);
		DefineCustomStringVariable("status_checker.http_map_tiles",
								   "Map tiles under the dashboard's map, an http(s) URL template with {z}, {x} and {y}, "
								   "e.g. a tile server of your own; empty: an outline of Japan, no tile server needed.",
								   NULL,
								   &sc_http_map_tiles,
								   "",
								   PGC_SIGHUP, 0,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("status_checker.http_map_attribution",
								   "The attribution the map tiles' licence asks for, shown under the map.",
								   NULL,
								   &sc_http_map_attribution,
								   "",
								   PGC_SIGHUP, 0,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("status_checker.http_timezone",
								   "Time zone of the times on reporter pages.",
								   NULL,
								   &sc_http_timezone,
								   "Asia/Tokyo",
								   PGC_SIGHUP, 0,
								   NULL, NULL, NULL);
		DefineCustomBoolVariable("status_checker.dispatcher",
								 "Start the dispatcher background workers (needs shared_preload_libraries).",
								 NULL,
								 &sc_dispatcher_enabled,
								 true,
								 PGC_POSTMASTER, 0,
								 NULL, NULL, NULL);
		DefineCustomIntVariable("status_checker.dispatch_workers",
								"Number of dispatcher workers; they share dispatch_concurrency and the rate limits.",
								NULL,
								&sc_dispatch_workers,
								2, 1, 32,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
	}
	MarkGUCPrefixReserved("status_checker");

	if (process_shared_preload_libraries_in_progress)
	{
		sc_dispatch_shmem_init();
		sc_feed_watcher_register();
		sc_dispatcher_register();
		sc_http_shmem_init();
		sc_http_register();
	}

	counters_init();
	tenancy_init();
	keys_init();

	/*
	 * Preloaded: read the master key now, in the postmaster, so that every
	 * server process starts with it (and a bad key file shows in the log at
	 * start).  A failure does not stop the server: each process tries again
	 * when it first needs the key, and says then what is wrong.
	 */
	if (process_shared_preload_libraries_in_progress)
		keys_load_at_start();
}
