/*-------------------------------------------------------------------------
 *
 * destinations.c
 *	  Where the dispatcher may connect (0.10.1): public addresses, and the
 *	  networks an operator lists in status_checker.allowed_destinations.
 *
 * A tenant's administrator chooses the URLs of webhooks and SMTP servers;
 * the dispatcher connects to them from inside the operator's network.
 * Without a limit that is a server-side request forgery: a webhook to the
 * cloud metadata address (169.254.169.254), to a database port on
 * 127.0.0.1, to a service on 10.x.  So an address that is not public —
 * loopback, private, link-local, unique-local, shared (CGNAT), unspecified,
 * multicast, reserved, broadcast, documentation — is refused unless the
 * operator lists its network.  An IPv6 address that carries an IPv4 one
 * (IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16) is
 * judged by the IPv4 address it carries.
 *
 * The dispatcher checks the address it actually connects to
 * (src/dispatch/dispatcher.c: every address libcurl tries, before the
 * connection is made, and a connection kept alive before a transfer uses
 * it), so a host name that resolves to 127.0.0.1, or that changes between
 * a check and the connection, is refused too.  add_channel and
 * add_site_contact refuse a URL whose host is an address early
 * (_destination_problem); host names are checked only where the dispatcher
 * connects, since DNS may change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <curl/curl.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "dispatch/destinations.h"

char	   *sc_allowed_destinations = NULL;

typedef struct DestNet
{
	int			family;			/* AF_INET or AF_INET6 */
	int			bits;			/* prefix length */
	unsigned char addr[16];
} DestNet;

/* status_checker.allowed_destinations, parsed (the GUC's "extra") */
typedef struct DestList
{
	int			n;
	DestNet		net[FLEXIBLE_ARRAY_MEMBER];
} DestList;

static const DestList *allowed = NULL;

/* IPv4 networks that are not public (IANA special-purpose registry) */
static const struct
{
	unsigned char addr[4];
	int			bits;
}			v4_not_public[] =
{
	{{0, 0, 0, 0}, 8},			/* "this network", 0.0.0.0 */
	{{10, 0, 0, 0}, 8},			/* private */
	{{100, 64, 0, 0}, 10},		/* shared address space (CGNAT) */
	{{127, 0, 0, 0}, 8},		/* loopback */
	{{169, 254, 0, 0}, 16},		/* link-local, with the cloud metadata address */
	{{172, 16, 0, 0}, 12},		/* private */
	{{192, 0, 0, 0}, 24},		/* IETF protocol assignments */
	{{192, 0, 2, 0}, 24},		/* documentation */
	{{192, 88, 99, 0}, 24},		/* 6to4 relays (deprecated) */
	{{192, 168, 0, 0}, 16},		/* private */
	{{198, 18, 0, 0}, 15},		/* benchmarking */
	{{198, 51, 100, 0}, 24},	/* documentation */
	{{203, 0, 113, 0}, 24},		/* documentation */
	{{224, 0, 0, 0}, 4},		/* multicast */
	{{240, 0, 0, 0}, 4},		/* reserved, and the broadcast address */
};

/*
 * IPv6: public is global unicast (2000::/3) but for these; everything
 * outside 2000::/3 (::, ::1, fc00::/7, fe80::/10, ff00::/8, ...) is not.
 */
static const struct
{
	unsigned char addr[16];
	int			bits;
}			v6_global_not_public[] =
{
	{{0x20, 0x01, 0x00, 0x00}, 23},	/* IETF protocol assignments, Teredo */
	{{0x20, 0x01, 0x0d, 0xb8}, 32},	/* documentation */
	{{0x3f, 0xff, 0x00, 0x00}, 20},	/* documentation */
};

static bool
prefix_match(const unsigned char *a, const unsigned char *net, int bits)
{
	int			whole = bits / 8;
	int			rest = bits % 8;

	if (memcmp(a, net, whole) != 0)
		return false;
	return rest == 0 || ((a[whole] ^ net[whole]) & (0xFF << (8 - rest)) & 0xFF) == 0;
}

static bool
listed(int family, const unsigned char *ip)
{
	if (allowed == NULL)
		return false;
	for (int i = 0; i < allowed->n; i++)
		if (allowed->net[i].family == family && prefix_match(ip, allowed->net[i].addr, allowed->net[i].bits))
			return true;
	return false;
}

static bool
v4_allowed(const unsigned char *ip)
{
	if (listed(AF_INET, ip))
		return true;
	for (int i = 0; i < lengthof(v4_not_public); i++)
		if (prefix_match(ip, v4_not_public[i].addr, v4_not_public[i].bits))
			return false;
	return true;
}

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* the IPv4 address an IPv6 one carries (mapped, NAT64, 6to4), or NULL */
static const unsigned char *
embedded_v4(const unsigned char *ip6)
{
	static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};

	if (memcmp(ip6, v4_mapped, 12) == 0 || memcmp(ip6, nat64, 12) == 0)
		return ip6 + 12;
	if (ip6[0] == 0x20 && ip6[1] == 0x02)
		return ip6 + 2;
	return NULL;
}

bool
sc_destination_allowed(int family, const unsigned char *ip, DestRefusal *why)
{
	const unsigned char *v4;
	bool		ok;

	why->embeds[0] = '\0';
	if (family == AF_INET)
		ok = v4_allowed(ip);
	else if (family != AF_INET6)
		ok = false;
	else if (listed(AF_INET6, ip))
		ok = true;
	else if ((v4 = embedded_v4(ip)) != NULL)
	{
		ok = v4_allowed(v4);
		if (!ok)
			inet_ntop(AF_INET, v4, why->embeds, sizeof(why->embeds));
	}
	else
	{
		ok = (ip[0] & 0xE0) == 0x20;	/* 2000::/3 */
		for (int i = 0; ok && i < lengthof(v6_global_not_public); i++)
			if (prefix_match(ip, v6_global_not_public[i].addr, v6_global_not_public[i].bits))
				ok = false;
	}
	if (!ok && inet_ntop(family, ip, why->addr, sizeof(why->addr)) == NULL)
		strlcpy(why->addr, "(not an IP address)", sizeof(why->addr));
	return ok;
}

/* an address in text form (IPv6 without brackets) */
bool
sc_destination_text_allowed(const char *text, DestRefusal *why)
{
	unsigned char ip[16];

	if (text != NULL && inet_pton(AF_INET, text, ip) == 1)
		return sc_destination_allowed(AF_INET, ip, why);
	if (text != NULL && inet_pton(AF_INET6, text, ip) == 1)
		return sc_destination_allowed(AF_INET6, ip, why);
	why->embeds[0] = '\0';
	strlcpy(why->addr, text && *text ? text : "(no address)", sizeof(why->addr));
	return false;
}

/* ------------------------------------------------------------ the setting */

/*
 * One entry: an address and an optional prefix length (10.0.0.0/8,
 * fd00::/8, 192.0.2.7 alone); false with a detail when it is not that.
 */
static bool
parse_net(char *entry, DestNet *net)
{
	char	   *slash = strchr(entry, '/');
	int			max;
	unsigned char masked[16];

	net->family = 0;
	if (strpbrk(entry, " \t\r\n") == NULL)	/* (a space: a comma missing?) */
	{
		if (slash)
			*slash = '\0';
		if (inet_pton(AF_INET, entry, net->addr) == 1)
			net->family = AF_INET;
		else if (inet_pton(AF_INET6, entry, net->addr) == 1)
			net->family = AF_INET6;
		if (slash)
			*slash = '/';
	}
	if (net->family == 0)
	{
		GUC_check_errdetail("\"%s\" is not a network in CIDR form (such as 10.0.0.0/8 or fd00::/8); entries are separated by commas.",
							entry);
		return false;
	}
	max = net->family == AF_INET ? 32 : 128;
	net->bits = max;
	if (slash)
	{
		const char *digits = slash + 1;

		if (*digits == '\0' || strlen(digits) > 3 || strspn(digits, "0123456789") != strlen(digits) ||
			(net->bits = atoi(digits)) > max)
		{
			GUC_check_errdetail("\"%s\": the prefix length of an %s network is 0 to %d.",
								entry, net->family == AF_INET ? "IPv4" : "IPv6", max);
			return false;
		}
	}
	memset(masked, 0, sizeof(masked));
	memcpy(masked, net->addr, net->bits / 8);
	if (net->bits % 8)
		masked[net->bits / 8] = net->addr[net->bits / 8] & (0xFF << (8 - net->bits % 8));
	if (memcmp(masked, net->addr, max / 8) != 0)
	{
		char		text[INET6_ADDRSTRLEN];

		inet_ntop(net->family, masked, text, sizeof(text));
		GUC_check_errdetail("\"%s\" has bits set to the right of its prefix length (its network is %s/%d).",
							entry, text, net->bits);
		return false;
	}
	/* IPv4-mapped: the IPv4 network (addresses are judged by it) */
	if (net->family == AF_INET6 && net->bits >= 96 && memcmp(net->addr, v4_mapped, 12) == 0)
	{
		memmove(net->addr, net->addr + 12, 4);
		net->family = AF_INET;
		net->bits -= 96;
	}
	return true;
}

/*
 * check hook: a comma-separated list of networks.  A bad entry fails the
 * whole value, with a detail naming it: ALTER SYSTEM refuses it, and a
 * reload keeps the value in force and logs why.
 */
bool
sc_allowed_destinations_check(char **newval, void **extra, GucSource source)
{
	const char *p = *newval ? *newval : "";
	int			count = 1;
	DestList   *list;

	for (const char *c = p; *c; c++)
		if (*c == ',')
			count++;
	/* "extra" is freed by guc.c with free() */
	list = malloc(offsetof(DestList, net) + sizeof(DestNet) * count);
	if (list == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	list->n = 0;
	while (*p)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		char		entry[64];

		while (len > 0 && isspace((unsigned char) *p))
			p++, len--;
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len >= sizeof(entry))
		{
			GUC_check_errdetail("\"%.*s\" is not a network in CIDR form (such as 10.0.0.0/8 or fd00::/8).", (int) len, p);
			free(list);
			return false;
		}
		memcpy(entry, p, len);
		entry[len] = '\0';
		if (len > 0 && !parse_net(entry, &list->net[list->n++]))
		{
			free(list);
			return false;
		}
		p = end ? end + 1 : p + len;
		while (end == NULL && *p)	/* trailing spaces */
			p++;
	}
	*extra = list;
	return true;
}

void
sc_allowed_destinations_assign(const char *newval, void *extra)
{
	allowed = (const DestList *) extra;
}

/* ------------------------------------------------------------ SQL */

/*
 * _destination_problem(url) -> text: why the dispatcher would refuse the
 * URL's host if it is an address (NULL if it would not, and for a host
 * name, which is checked where the dispatcher connects).  The URL is read
 * by libcurl, as the dispatcher reads it (127.1 and 0x7f.1 are 127.0.0.1).
 */
PG_FUNCTION_INFO_V1(sc_destination_problem);
Datum
sc_destination_problem(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));
	CURLU	   *u = curl_url();
	CURLUcode	rc;
	char	   *curl_host = NULL;
	char		host[256] = "";
	unsigned char ip[16];
	DestRefusal why;
	bool		ok;

	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_HOST, &curl_host, 0);
	if (rc == CURLUE_OK)
	{
		/* an IPv6 address without its brackets */
		const char *h = curl_host[0] == '[' ? curl_host + 1 : curl_host;

		strlcpy(host, h, sizeof(host));
		if (curl_host[0] == '[' && strchr(host, ']'))
			*strchr(host, ']') = '\0';
	}
	curl_free(curl_host);
	curl_url_cleanup(u);

	if (rc != CURLUE_OK)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("not a URL libcurl can read (%s)", curl_url_strerror(rc))));
	if (inet_pton(AF_INET, host, ip) == 1)
		ok = sc_destination_allowed(AF_INET, ip, &why);
	else if (inet_pton(AF_INET6, host, ip) == 1)
		ok = sc_destination_allowed(AF_INET6, ip, &why);
	else
		PG_RETURN_NULL();		/* a name */
	if (ok)
		PG_RETURN_NULL();
	if (why.embeds[0])
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("destination %s embeds %s, not a public address", why.addr, why.embeds)));
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("destination %s is not a public address", why.addr)));
}
