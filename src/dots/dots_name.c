/*
 * Names for DOTS discovery: domain names in the uncompressed wire form
 * DHCP options carry (RFC 8415 §10, RFC 1035 §3.1), the transports,
 * methods and DNS-SD service names of seed 003 and RFC 8973, and the
 * address helpers the rest of the module shares.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "dots/dots.h"

static const char *const transport_names[DOTS_NTRANSPORT] = {
    [DOTS_SIGNAL_UDP] = "signal.udp",       [DOTS_SIGNAL_TCP] = "signal.tcp",
    [DOTS_DATA_TCP] = "data.tcp",           [DOTS_CALL_HOME_UDP] = "call-home.udp",
    [DOTS_CALL_HOME_TCP] = "call-home.tcp",
};

static const char *const method_names[DOTS_NMETHOD] = {
    [DOTS_M_EXPLICIT] = "explicit", [DOTS_M_DHCP] = "dhcp", [DOTS_M_SNAPTR] = "s-naptr",
    [DOTS_M_DNSSD] = "dns-sd",      [DOTS_M_MDNS] = "mdns", [DOTS_M_ANYCAST] = "anycast",
};

/* RFC 8973 §5.3 names first, then seed 003 §8.1. */
static const char *const dnssd_names[DOTS_NTRANSPORT][2] = {
    [DOTS_SIGNAL_UDP] = {"_dots-signal._udp", "_dots._signal._udp"},
    [DOTS_SIGNAL_TCP] = {"_dots-signal._tcp", "_dots._signal._tcp"},
    [DOTS_DATA_TCP] = {"_dots-data._tcp", "_dots._data._tcp"},
    [DOTS_CALL_HOME_UDP] = {"_dots-call-home._udp", NULL},
    [DOTS_CALL_HOME_TCP] = {"_dots-call-home._tcp", NULL},
};

const char *
dots_transport_name(enum dots_transport t)
{
	return (unsigned)t < DOTS_NTRANSPORT ? transport_names[t] : "?";
}

const char *
dots_method_name(enum dots_method m)
{
	return (unsigned)m < DOTS_NMETHOD ? method_names[m] : "?";
}

bool
dots_transport_parse(const char *s, enum dots_transport *t)
{
	for (unsigned i = 0; i < DOTS_NTRANSPORT; i++)
		if (strcasecmp(s, transport_names[i]) == 0) {
			*t = (enum dots_transport)i;
			return true;
		}
	return false;
}

bool
dots_method_parse(const char *s, enum dots_method *m)
{
	for (unsigned i = 0; i < DOTS_NMETHOD; i++)
		if (strcasecmp(s, method_names[i]) == 0) {
			*m = (enum dots_method)i;
			return true;
		}
	if (strcasecmp(s, "snaptr") == 0 || strcasecmp(s, "naptr") == 0) {
		*m = DOTS_M_SNAPTR;
		return true;
	}
	if (strcasecmp(s, "dnssd") == 0) {
		*m = DOTS_M_DNSSD;
		return true;
	}
	return false;
}

bool
dots_transport_is_tcp(enum dots_transport t)
{
	return t == DOTS_SIGNAL_TCP || t == DOTS_DATA_TCP || t == DOTS_CALL_HOME_TCP;
}

uint16_t
dots_default_port(enum dots_transport t)
{
	/* RFC 8973 §5.2.3 and §5.1.3 give no port: the protocols' defaults apply. */
	if (t == DOTS_DATA_TCP)
		return DOTS_DATA_PORT;
	if (t == DOTS_CALL_HOME_UDP || t == DOTS_CALL_HOME_TCP)
		return 4647; /* RFC 8973 / RFC 9066 §5.1: DOTS Call Home */
	return DOTS_SIGNAL_PORT;
}

const char *
dots_dnssd_service(enum dots_transport t, unsigned i)
{
	if ((unsigned)t >= DOTS_NTRANSPORT || i >= 2)
		return NULL;
	return dnssd_names[t][i];
}

/* LDH, plus '_' for service labels (RFC 6763 §7), as d6_name_decode_n() takes. */
static bool
label_char_ok(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_';
}

bool
dots_name_valid(const char *name)
{
	size_t len = strlen(name), ll = 0, wire = 1;

	if (len == 0 || len >= DOTS_NAME_MAX)
		return false;
	if (name[len - 1] == '.')
		len--;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch == '.') {
			if (ll == 0)
				return false;
			wire += ll + 1;
			ll = 0;
			continue;
		}
		if (!label_char_ok(ch) || ++ll > 63)
			return false;
	}
	if (ll == 0)
		return false;
	wire += ll + 1;
	return wire <= 255;
}

bool
dots_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

const char *
dots_addr_fmt(const struct dots_addr *a, char *buf)
{
	if (!inet_ntop(a->family,
	               a->family == AF_INET ? (const void *)&a->v4 : (const void *)&a->v6, buf,
	               INET6_ADDRSTRLEN))
		strcpy(buf, "?");
	return buf;
}

bool
dots_addr_parse(const char *s, struct dots_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->v4) == 1) {
		a->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &a->v6) == 1) {
		a->family = AF_INET6;
		return true;
	}
	return false;
}

bool
dots_addr_discard(const struct dots_addr *a)
{
	if (a->family == AF_INET) {
		uint32_t v = ntohl(a->v4.s_addr);

		/* RFC 8973 §5.2.3: multicast and host loopback (RFC 6890) are discarded. */
		return (v >> 28) == 0xe || (v >> 24) == 127 || v == 0 || v == 0xffffffffu;
	}
	if (IN6_IS_ADDR_MULTICAST(&a->v6) || IN6_IS_ADDR_LOOPBACK(&a->v6) ||
	    IN6_IS_ADDR_UNSPECIFIED(&a->v6))
		return true;
	/* An IPv4-mapped address (allowed by RFC 8973 §5.1.2) is judged as IPv4. */
	if (IN6_IS_ADDR_V4MAPPED(&a->v6)) {
		struct dots_addr v4 = {.family = AF_INET};

		memcpy(&v4.v4, &a->v6.s6_addr[12], 4);
		return dots_addr_discard(&v4);
	}
	return false;
}
