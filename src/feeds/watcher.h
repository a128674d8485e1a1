/* watcher.h — the feed watcher background worker (src/feeds/watcher.c). */
#ifndef STATUS_CHECKER_WATCHER_H
#define STATUS_CHECKER_WATCHER_H

extern bool sc_feed_watcher_enabled;
extern int	sc_feed_timeout_ms;

extern void sc_feed_watcher_register(void);

#endif
