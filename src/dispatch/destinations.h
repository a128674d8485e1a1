/* destinations.h — where the dispatcher may connect (src/dispatch/destinations.c). */
#ifndef STATUS_CHECKER_DESTINATIONS_H
#define STATUS_CHECKER_DESTINATIONS_H

#include <arpa/inet.h>

#include "utils/guc.h"

extern char *sc_allowed_destinations;

/* why an address was refused, printable */
typedef struct DestRefusal
{
	char		addr[INET6_ADDRSTRLEN];
	char		embeds[INET_ADDRSTRLEN];	/* the IPv4 address in an IPv6 one
											 * that decided, or "" */
} DestRefusal;

extern bool sc_allowed_destinations_check(char **newval, void **extra, GucSource source);
extern void sc_allowed_destinations_assign(const char *newval, void *extra);

/* address bytes (4 or 16) of AF_INET or AF_INET6: may they be connected to? */
extern bool sc_destination_allowed(int family, const unsigned char *ip, DestRefusal *why);
/* the same for an address in text form; anything else is refused */
extern bool sc_destination_text_allowed(const char *text, DestRefusal *why);

#endif
