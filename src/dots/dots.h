/*
 * DOTS server discovery (seed 003, final form RFC 8973): the pure half.
 * Domain-name codecs (RFC 8415 §10), the DHCPv6 Information-request
 * builder and Reply parser for options 141/142/57, the DHCPv4 option
 * interpretation for 147/148/213/15, the client rules that turn DHCP
 * answers into servers, S-NAPTR (RFC 3958) selection, SRV ordering
 * (RFC 2782), a bounded DNS message parser for DNS-SD and mDNS, the
 * service names, the ordered server list and the retry back-off. Nothing
 * here does I/O: dots_io.h drives sockets and c-ares with these.
 *
 * The DHCPv6 pieces are deliberately small and self-contained so that they
 * can move into src/dhcp6 when the full DHCPv6 codec exists.
 */
#ifndef DSTM_DOTS_H
#define DSTM_DOTS_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dhcp4/dhcp4.h"

#define DOTS_NAME_MAX    256  /* dotted text of a name, NUL included (RFC 1035: 255 wire) */
#define DOTS_MAX_ADDRS   32   /* addresses kept from one DHCP option */
#define DOTS_SIGNAL_PORT 4646 /* RFC 9132 §4.1: DOTS signal channel, UDP and TCP */
#define DOTS_DATA_PORT   443  /* RFC 8783 §3: the data channel is RESTCONF over HTTPS */

/* DHCPv6 (RFC 8415, RFC 8973 §5.1, RFC 5986 §3.3). */
enum {
	DOTS_D6_SOLICIT = 1,
	DOTS_D6_REPLY = 7,
	DOTS_D6_INFO_REQUEST = 11,
	DOTS_D6_OPT_CLIENTID = 1,
	DOTS_D6_OPT_SERVERID = 2,
	DOTS_D6_OPT_ORO = 6,
	DOTS_D6_OPT_ELAPSED = 8,
	DOTS_D6_OPT_STATUS = 13,
	DOTS_D6_OPT_ACCESS_DOMAIN = 57,
	DOTS_D6_OPT_DOTS_RI = 141,
	DOTS_D6_OPT_DOTS_ADDRESS = 142,
	DOTS_D6_CLIENT_PORT = 546,
	DOTS_D6_SERVER_PORT = 547,
};

enum dots_transport {
	DOTS_SIGNAL_UDP,
	DOTS_SIGNAL_TCP,
	DOTS_DATA_TCP,
	DOTS_CALL_HOME_UDP, /* RFC 8973 §5: the Call Home direction */
	DOTS_CALL_HOME_TCP,
	DOTS_NTRANSPORT
};

/* In the order of preference of seed 003 §5 (RFC 8973 §4). */
enum dots_method {
	DOTS_M_EXPLICIT,
	DOTS_M_DHCP,
	DOTS_M_SNAPTR,
	DOTS_M_DNSSD,
	DOTS_M_MDNS,
	DOTS_M_ANYCAST,
	DOTS_NMETHOD
};

struct dots_addr {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

/* One line of the result. */
struct dots_server {
	unsigned order; /* 1-based, set by dots_list_finish */
	enum dots_method method;
	enum dots_transport transport;
	char ifname[IF_NAMESIZE]; /* "" when not tied to an interface */
	int family;               /* the address family the discovery ran for */
	struct dots_addr addr;
	uint16_t port;
	char ri[DOTS_NAME_MAX];  /* reference identifier (PKIX name), or the address */
	char via[DOTS_NAME_MAX]; /* what led here: option, NAPTR/SRV or instance name */
};

struct dots_list {
	struct dots_server *v;
	size_t n, cap;
};

/* ---- names ---- */

const char *dots_transport_name(enum dots_transport t); /* "signal.udp" */
const char *dots_method_name(enum dots_method m);       /* "dhcp" */
bool dots_transport_parse(const char *s, enum dots_transport *t);
bool dots_method_parse(const char *s, enum dots_method *m);
bool dots_transport_is_tcp(enum dots_transport t);
uint16_t dots_default_port(enum dots_transport t);

/*
 * DNS-SD service names for a transport (seed 003 §8.1 "_dots._signal._udp";
 * RFC 8973 §5.3 "_dots-signal._udp"). `i` picks the spelling: 0 the RFC's,
 * 1 the seed's; NULL past the last.
 */
const char *dots_dnssd_service(enum dots_transport t, unsigned i);

/* ---- domain names, RFC 8415 §10 / RFC 1035 §3.1 (no compression) ---- */

/*
 * The wire form of names is src/dhcp6's: d6_name_encode() and
 * d6_name_decode_n() (the first name of a buffer and its length; letters,
 * digits, '-' and '_' only, since a name is logged and used as a PKIX
 * reference identifier).
 */
/* Validate text, as a config file or option 15 gives it (trailing dot dropped). */
bool dots_name_valid(const char *name);
/* Case-insensitive name comparison, a trailing dot ignored. */
bool dots_name_eq(const char *a, const char *b);

/* ---- what DHCP told us ---- */

struct dots_dhcp_stats {
	uint64_t bad_ri;            /* RI option that is not a valid name */
	uint64_t bad_address;       /* address option with a bad length */
	uint64_t discarded_address; /* multicast or loopback address, RFC 8973 §5.1.3 */
	uint64_t extra_instance;    /* a second instance of 141/142, ignored */
	uint64_t extra_name;        /* names after the first in an RI option */
	uint64_t bad_domain;        /* option 57/213/15 that is not a valid name */
	uint64_t truncated_addrs;   /* addresses beyond DOTS_MAX_ADDRS */
};

struct dots_dhcp_info {
	bool have_ri;
	char ri[DOTS_NAME_MAX];
	size_t naddr;
	struct dots_addr addr[DOTS_MAX_ADDRS];
	uint8_t group[DOTS_MAX_ADDRS]; /* seed 003 §9.2.2: each list is one server */
	bool have_address_option;      /* even if every address was discarded */
	bool have_domain;
	char domain[DOTS_NAME_MAX];
	bool domain_is_access; /* option 57/213 rather than 15 */
	struct dots_dhcp_stats st;
};

/*
 * DHCPv6: an Information-request asking for 141, 142 and 57 (and the
 * domain search list is not asked: RFC 8973 §4 wants the access domain).
 * `xid` uses its low 24 bits; `duid` is the Client Identifier.
 */
int dots_d6_build_inforeq(uint32_t xid, const uint8_t *duid, size_t duidlen, uint16_t elapsed_cs,
                          void *buf, size_t cap, size_t *len);

/*
 * Parse a Reply: -EPROTO if not a Reply to `xid`, -EBADMSG if its option
 * framing is broken. Malformed DOTS options are counted in info->st and
 * skipped, never trusted.
 */
int dots_d6_parse_reply(const void *pkt, size_t len, uint32_t xid, struct dots_dhcp_info *info);

/* DHCPv4 address option formats: RFC 8973 §5.2.2, or the seed's list-length lists. */
enum dots_d4_addr_format { DOTS_D4_RFC8973, DOTS_D4_DRAFT };

/* Read 147/148/213/15 from a parsed DHCPv4 message (RFC 3396 applied). */
void dots_d4_info(const struct d4_msg *m, enum dots_d4_addr_format fmt,
                  struct dots_dhcp_info *info);

/* The parameter request list a DOTS client sends (RFC 8973 §5.2.3). */
extern const uint8_t dots_d4_prl[4];

/*
 * Apply the client rules (RFC 8973 §5.1.3, §5.2.3; seed 003 §9.1.3): with
 * both options, the name is the reference identifier and the addresses are
 * used; with addresses only, each address is its own identifier. Appends
 * one server per address and transport to `l`. With a name alone nothing
 * is appended and *resolve is true: the caller resolves info->ri.
 */
int dots_dhcp_servers(const struct dots_dhcp_info *info, const char *ifname, int family,
                      struct dots_list *l, bool *resolve);

/* True for the addresses a DOTS client must discard (multicast, loopback, unspecified). */
bool dots_addr_discard(const struct dots_addr *a);

/* ---- S-NAPTR (RFC 3958) ---- */

struct dots_naptr {
	uint16_t order, pref;
	char flags[16];
	char service[128];
	char regexp[128];
	char replacement[DOTS_NAME_MAX];
};

struct dots_naptr_pick {
	enum dots_transport transport;
	char flag; /* 'S' (SRV next), 'A' (address next) or 0 (NAPTR next) */
	uint16_t order, pref;
	char target[DOTS_NAME_MAX];
};

struct dots_naptr_stats {
	uint64_t other_service; /* not DOTS, or no tag we know */
	uint64_t bad_record;    /* regexp set, unknown flag, empty replacement */
};

/*
 * Select the records for application service "DOTS" (case-insensitive)
 * whose protocol tags name a wanted transport (`want` is a bit mask of
 * 1 << transport), one pick per tag, sorted by order then preference.
 * Returns the number of picks (at most `cap`).
 */
size_t dots_naptr_select(const struct dots_naptr *in, size_t n, unsigned want,
                         struct dots_naptr_pick *out, size_t cap, struct dots_naptr_stats *st);

/* ---- SRV (RFC 2782) ---- */

struct dots_srv {
	uint16_t prio, weight, port;
	char target[DOTS_NAME_MAX];
};

/*
 * Order SRV records in place the way RFC 2782 says: ascending priority,
 * and within one priority a weighted random order drawn with `rnd`
 * (any uniform 32-bit source; a test passes a fixed one). A lone record
 * whose target is "." means the service is not offered: 0 is returned.
 * Returns the number of usable records.
 */
size_t dots_srv_order(struct dots_srv *v, size_t n, uint32_t (*rnd)(void *), void *rctx);

/* ---- DNS messages (DNS-SD over unicast, mDNS) ---- */

enum { DOTS_T_A = 1, DOTS_T_PTR = 12, DOTS_T_TXT = 16, DOTS_T_AAAA = 28, DOTS_T_SRV = 33 };

struct dots_rr {
	char name[DOTS_NAME_MAX];
	uint16_t type;
	uint32_t ttl;
	union {
		char ptr[DOTS_NAME_MAX];
		struct dots_srv srv;
		struct dots_addr addr;
	};
};

struct dots_dns_stats {
	uint64_t bad_message; /* header or question malformed */
	uint64_t bad_record;  /* RR that does not parse: the rest of the message is dropped */
	uint64_t bad_name;    /* compression loop, forward pointer, overlong name */
	uint64_t skipped;     /* records of other types or classes */
	uint64_t truncated;   /* more records than the caller's array */
};

struct dots_dns_msg {
	uint16_t id, flags, rcode;
	bool response;
	size_t nrr;
};

/*
 * Parse every answer, authority and additional record of a DNS message,
 * keeping PTR, SRV, A and AAAA of class IN (the mDNS cache-flush bit is
 * ignored). Compression pointers must point backwards and at most 64 are
 * followed for one name. 0, or -EBADMSG (counted in st).
 */
int dots_dns_parse(const void *msg, size_t len, struct dots_dns_msg *hdr, struct dots_rr *rr,
                   size_t cap, struct dots_dns_stats *st);

/* A one-question query; `qu` sets the mDNS unicast-response bit (RFC 6762 §5.4). */
int dots_dns_build_query(uint16_t id, const char *name, uint16_t qtype, bool qu, bool rd, void *buf,
                         size_t cap, size_t *len);

/*
 * DNS-SD (RFC 6763 §4): for every PTR of `service` in `rr`, follow the
 * instance's SRV (ordered by dots_srv_order) and the target's addresses
 * of `family` (AF_UNSPEC for both) found in the same record set, and
 * append servers. Returns the number appended; instances whose SRV or
 * address is missing are left out and counted in *incomplete.
 */
size_t dots_dnssd_collect(const struct dots_rr *rr, size_t n, const char *service,
                          enum dots_transport t, enum dots_method method, const char *ifname,
                          int family, uint32_t (*rnd)(void *), void *rctx, struct dots_list *l,
                          size_t *incomplete);

/* ---- the list ---- */

void dots_list_init(struct dots_list *l);
void dots_list_free(struct dots_list *l);
int dots_list_add(struct dots_list *l, const struct dots_server *s);
/*
 * Put the list in its final order: by method (seed 003 §5: explicit, DHCP,
 * service resolution, DNS-SD/mDNS, anycast), keeping the order each method
 * produced inside it, drop the later duplicates of one (transport,
 * address, port), and number the lines from 1.
 */
void dots_list_finish(struct dots_list *l);

/* ---- back-off before a retry (seed 003 §6: "MUST wait a time period appropriate for the error") ---- */

enum dots_fail {
	DOTS_FAIL_NONE,
	DOTS_FAIL_TIMEOUT,
	DOTS_FAIL_NXDOMAIN,
	DOTS_FAIL_SERVFAIL,
	DOTS_FAIL_MALFORMED
};

struct dots_backoff {
	enum dots_fail last;
	unsigned attempts; /* consecutive failures of the same kind */
	int64_t not_before_ms;
};

/*
 * Record the outcome of an attempt made at `now_ms` and return the delay
 * before the next one may be made (0 after a success). Time-outs retry
 * soon and double (1 s .. 64 s); NXDOMAIN and NODATA are answers, retried
 * after 5 min doubling to 1 h (the order of a negative-cache TTL);
 * SERVFAIL and malformed answers sit in between (5 s .. 5 min).
 */
int64_t dots_backoff_fail(struct dots_backoff *b, enum dots_fail f, int64_t now_ms);
bool dots_backoff_ready(const struct dots_backoff *b, int64_t now_ms);

/* Format an address ("2001:db8::1", "192.0.2.1") into buf[INET6_ADDRSTRLEN]. */
const char *dots_addr_fmt(const struct dots_addr *a, char *buf);
bool dots_addr_parse(const char *s, struct dots_addr *a);

#endif
