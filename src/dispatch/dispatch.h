/* dispatch.h — the delivery domain: dispatcher worker, wake-up, crypto. */
#ifndef STATUS_CHECKER_DISPATCH_H
#define STATUS_CHECKER_DISPATCH_H

#include "postgres.h"

#include "lib/stringinfo.h"

/* GUCs (src/common/module.c defines them) */
extern bool sc_dispatcher_enabled;
extern int	sc_dispatch_workers;
extern int	sc_dispatch_concurrency;
extern int	sc_dispatch_batch_size;
extern int	sc_dispatch_timeout_ms;
extern int	sc_dispatch_rate_limit;
extern int	sc_dispatch_max_attempts;
extern int	sc_dispatch_retry_base_ms;
extern int	sc_dispatch_retry_max_ms;
extern int	sc_dispatch_lease_ms;
extern char *sc_link_base_url;

/* dispatcher.c: the workers */
extern void sc_dispatcher_register(void);
/* dispatch_shared.c: their shared memory (slots, rate buckets), set up from _PG_init */
extern void sc_dispatch_shmem_init(void);

/* crypto.c */
extern void sc_hmac_sha256(const void *key, int keylen, const void *data, size_t len, uint8 *out);
extern void sc_hex32(const uint8 *raw, char *out);
/* the MAC of a request target's token at a generation (a link key of at least 32 bytes) */
extern void sc_link_mac(const uint8 *key, int keylen, int64 tenant_id, int64 request_id, int64 site_id,
						int32 gen, uint8 *out);
/* the token of a request target at a generation, as text */
extern text *sc_link_token_text(const uint8 *key, int keylen, int64 tenant_id, int64 request_id,
								int64 site_id, int32 gen);
/* whether a token's first 43 characters are that MAC's (constant time) */
extern bool sc_link_token_equals(const uint8 *key, int keylen, int64 tenant_id, int64 request_id,
								 int64 site_id, int32 gen, const char *token, int len);
/* a mail header value, RFC 2047 encoded where it is not printable ASCII */
extern void sc_mime_header_append(StringInfo out, const char *s, int len);
extern void sc_webhook_sign(const char *secret, int secretlen, int64 ts,
							const char *body, size_t bodylen, char *hex);

#endif
