/*-------------------------------------------------------------------------
 *
 * shindo.h
 *	  The JMA seismic intensity scale as ordinals 0..9 (0,1,2,3,4,5-,5+,6-,6+,7).
 *
 * Server-independent: no PostgreSQL headers needed, so the feed parsers
 * (and a fuzz harness) can use the same conversion.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATUS_CHECKER_SHINDO_H
#define STATUS_CHECKER_SHINDO_H

#include <stdint.h>

#define SHINDO_NCLASSES 10

/* ordinal from text ("5弱", "５強", "震度4", "5 lower", "5.3"…), or -1 */
extern int16_t shindo_parse(const char *text);
/* ordinal from an instrumental intensity in tenths (45 = 4.5) */
extern int16_t shindo_from_tenths(int tenths);
/* ordinal by JMA's rule (truncated at the second decimal) from hundredths (449 = 4.49) */
extern int16_t shindo_from_hundredths(long hundredths);
/* the same from a computed value in millionths, rounded at the third decimal first */
extern int16_t shindo_from_micros(long micros);
/* canonical text of an ordinal: "0".."4", "5-", "5+", "6-", "6+", "7" */
extern const char *shindo_to_cstring(int16_t s);

#endif
