/*
 * DOTS server discovery: the I/O half. It runs the methods of seed 003 §5
 * (RFC 8973 §4) per interface and address family with real sockets: DHCPv6
 * Information-request, DHCPv4 INFORM/DISCOVER, S-NAPTR/SRV/A/AAAA and
 * DNS-SD through c-ares, mDNS on the link; every wait has a deadline and
 * failed look-ups back off (dots_backoff) before they are retried. The
 * pure rules it applies are in dots.h.
 */
#ifndef DSTM_DOTS_IO_H
#define DSTM_DOTS_IO_H

#include <stdio.h>

#include "dots/dots.h"

/* A server given by the operator (seed 003 §5, item 1). */
struct dots_explicit {
	bool has_addr;
	struct dots_addr addr;    /* when has_addr */
	char name[DOTS_NAME_MAX]; /* resolved when !has_addr */
	char ri[DOTS_NAME_MAX];   /* required with an address */
	int family;               /* AF_INET, AF_INET6, or AF_UNSPEC for both */
	int transports;           /* bit mask; 0 means every wanted transport */
	uint16_t port;            /* 0: the transport's default */
	char ifname[IF_NAMESIZE]; /* "" for every interface */
};

struct dots_anycast {
	struct dots_addr addr;
	char ri[DOTS_NAME_MAX]; /* "" : the address identifies it */
};

#define DOTS_MAX_IFS 16

struct dots_opts {
	unsigned methods;    /* 1 << enum dots_method */
	unsigned transports; /* 1 << enum dots_transport */
	bool v4, v6;         /* address families to run */
	char ifnames[DOTS_MAX_IFS][IF_NAMESIZE];
	size_t nif;                      /* 0: every interface that is up, loopback excepted */
	char domain[DOTS_NAME_MAX];      /* --domain, overrides DHCP */
	char dflt_domain[DOTS_NAME_MAX]; /* config: used when DHCP gives none */
	char dns_server[128];            /* ADDR[@PORT]; "" for the system's */
	int timeout_ms;                  /* bound of one method's wait */
	bool first_only;                 /* stop at the first method that finds servers */
	enum dots_d4_addr_format d4fmt;
	const struct dots_explicit *ex;
	size_t nex;
	const struct dots_anycast *any;
	size_t nany;
};

/* Everything counted while discovering: the drop reasons of every parser. */
struct dots_counters {
	struct dots_dhcp_stats dhcp;
	struct dots_naptr_stats naptr;
	struct dots_dns_stats dns;
	uint64_t d6_sent, d6_replies, d6_bad_reply, d6_timeouts;
	uint64_t d4_sent, d4_replies, d4_bad_reply, d4_timeouts;
	uint64_t dns_queries, dns_timeouts, dns_nxdomain, dns_nodata, dns_servfail, dns_bad_answer;
	uint64_t dns_backoff_skipped, dns_retries;
	uint64_t mdns_sent, mdns_responses, mdns_bad;
	uint64_t dnssd_incomplete;
};

/* What happened, one line per event, for people (stderr) and --json. */
struct dots_event {
	char ifname[IF_NAMESIZE];
	int family;
	enum dots_method method;
	char text[300];
};

struct dots_run {
	struct dots_list list;
	struct dots_counters c;
	struct dots_event *ev;
	size_t nev, capev;
};

void dots_run_init(struct dots_run *r);
void dots_run_free(struct dots_run *r);

/*
 * Run discovery; fills r->list (finished: ordered and numbered). 0, or a
 * negative errno for a setup failure (no such interface, bad DNS server).
 */
int dots_discover(const struct dots_opts *o, struct dots_run *r);

/* Parse "ADDR[@PORT]" into the form c-ares takes ("1.2.3.4:53", "[::1]:53"). */
int dots_dns_server_csv(const char *in, char *out, size_t cap);

#endif
