/*
 * dstm-client's internal interfaces: its configuration (config.c), the
 * pure packet functions of its data path (packet.c: checks, the early
 * flow translation of on-demand mode, ICMP errors), the reconnection
 * back-off (config.c) and the program's shell (dstm-client.c) that ties
 * the TUN device, the raw IPv6 socket and the TSP session together.
 * Everything here is internal to src/client; the tests include it.
 */
#ifndef DSTM_CLIENT_H
#define DSTM_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cfg.h"
#include "dhcp6/d6.h"

#define CLIENT_MAX_ROUTES  32
#define CLIENT_MAX_SERVERS 9 /* the configured one + TSP_MAX_BROKERS */

enum client_mode { CLIENT_ALWAYS_ON, CLIENT_ON_DEMAND };
enum client_access { CLIENT_ACCESS_TSP, CLIENT_ACCESS_DHCPV6 };

/*
 * The "dhcpv6" section: how the DHCPv6 access module asks (seed 001
 * appendix A IA_DSTM, or the seed 002 §6.1 Global IPv4 Address option +
 * IA_NA), with the option codes named as in dstmd's section (DESIGN
 * §3.2) and an optional delayed-authentication key (RFC 3315 §21.4).
 */
struct client_dhcp6 {
	bool global_v4_form;
	bool rapid_commit;
	uint16_t port; /* the servers' port (547) */
	struct d6_codes codes;
	bool has_key;
	char realm[65];
	uint32_t key_id;
	char secret[256];
};

/* The "tls" section: TSP over TLS, the server checked by a CA or an SPKI pin. */
struct client_tls {
	bool enable;
	char ca[256]; /* a PEM file of trusted CAs, or "" */
	bool has_pin; /* "sha256//BASE64" of the server's SubjectPublicKeyInfo */
	uint8_t pin[32];
	char name[256]; /* the name or address to verify; default: the server's */
};

struct client_route {
	uint32_t dst;
	unsigned plen;
};

struct client_config {
	enum client_access access;
	char server[256]; /* as written, for logs and status */
	struct sockaddr_storage server_sa;
	socklen_t server_salen;
	bool has_ipv6; /* else: the host's address toward the server */
	struct in6_addr ipv6;
	char interface[16];
	enum client_mode mode;
	char mechanism[32];
	char user[128];
	char secret[256];
	unsigned nroutes;
	struct client_route routes[CLIENT_MAX_ROUTES];
	bool has_tep6, has_tep4; /* a TEP configured by hand */
	struct in6_addr tep6;
	uint32_t tep4;
	char control[108];    /* sun_path */
	unsigned queue;       /* packets held while acquiring */
	uint32_t placeholder; /* on-demand source before the lease */
	unsigned timeout;     /* seconds for TSP handshake and replies */
	unsigned backoff_max; /* seconds, cap of the reconnection delay */
	struct client_dhcp6 dhcp6;
	bool lw4o6; /* act as an lwB4 (RFC 7596): client/lw4o6.h */
	struct client_tls tls;
	char run_as[64]; /* "user": who the client becomes after start-up; "" stays root */
};

/*
 * Validate the whole configuration in `c` into `out`; errors are
 * recorded in `c` (file:line). Returns the number of errors.
 */
int client_config_parse(struct cfg *c, struct client_config *out);
/* The effective configuration, defaults filled in (for -n). */
char *client_config_dump(const struct client_config *cc);

/*
 * Reconnection delay: exponential from 1 s, capped at `max_s`, with
 * jitter in [d/2, d] so that clients cut off together do not come back
 * together. `attempt` counts from 0; `rnd` is a uniform random 32-bit
 * value (passed in so that the function is pure). Milliseconds.
 */
unsigned client_backoff_ms(unsigned attempt, unsigned max_s, uint32_t rnd);

/* ---- Packets (packet.c, pure) ---- */

/* Minimal view of an IPv4 packet, filled by pkt_ipv4_parse(). */
struct pkt4 {
	uint8_t proto;
	uint8_t ihl;       /* header length in bytes */
	uint16_t total;    /* total length */
	uint32_t src, dst; /* host order */
	bool df, fragment; /* DF set; not the first fragment */
};

/*
 * Check that buf[0..len) is one IPv4 packet: version 4, header length
 * >= 20 and within the packet, total length within len. Returns false
 * for anything else (the caller counts it as malformed).
 */
bool pkt_ipv4_parse(const uint8_t *buf, size_t len, struct pkt4 *p);

/*
 * On-demand mode: the connections an application opened before the
 * lease use the placeholder address as source (the kernel picked it at
 * connect() time and never changes it). Their packets are rewritten to
 * the leased address on the way out and back to the placeholder on the
 * way in, for those flows only; every connection opened after the lease
 * uses the leased address and is never touched.
 *
 * A flow: protocol, remote address, local port, remote port (ICMP echo:
 * identifier as local port, 0 as remote port).
 */
#define EARLY_MAX_FLOWS 256

struct early_flow {
	bool used;
	uint8_t proto;
	uint32_t remote;
	uint16_t lport, rport;
	int64_t last_ms;
	bool fin_out, fin_in;
};

struct early_table {
	struct early_flow f[EARLY_MAX_FLOWS];
	uint64_t translated_out, translated_in, table_full, expired;
};

/* Idle time after which a flow is forgotten (TCP after both FINs: 10 s). */
#define EARLY_IDLE_MS   (300 * 1000)
#define EARLY_CLOSED_MS (10 * 1000)

/*
 * Outbound: the packet's source is `from` (the placeholder); rewrite it
 * to `to` (the leased address), fixing the IPv4 and TCP/UDP checksums,
 * and remember the flow. Returns false when the table is full (the
 * packet is dropped and counted) or the packet cannot be translated.
 */
bool early_out(struct early_table *t, uint8_t *buf, size_t len, uint32_t from, uint32_t to,
               int64_t now_ms);
/*
 * Inbound: when the packet (destination `leased`) belongs to an early
 * flow, rewrite its destination to `placeholder` and return true; else
 * leave it alone and return false.
 */
bool early_in(struct early_table *t, uint8_t *buf, size_t len, uint32_t leased,
              uint32_t placeholder, int64_t now_ms);
/* Forget flows idle for too long; returns how many remain. */
unsigned early_expire(struct early_table *t, int64_t now_ms);
void early_clear(struct early_table *t);

/*
 * Build an ICMP "fragmentation needed" (type 3 code 4, RFC 1191) toward
 * the source of `orig`, from `from`, carrying `mtu`; returns its length
 * or 0 when `orig` does not deserve one (an ICMP error itself, a
 * fragment). `out` needs 576 bytes.
 */
size_t pkt_icmp_frag_needed(const uint8_t *orig, size_t len, uint32_t from, unsigned mtu,
                            uint8_t *out, size_t outlen);

/* The Internet checksum over buf, folded, not inverted (helper for tests). */
uint16_t pkt_csum(const void *buf, size_t len, uint32_t sum);

#endif
