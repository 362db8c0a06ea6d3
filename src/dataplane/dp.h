/*
 * The TEP's forwarding core (DESIGN §2, seed 001 §7): pure functions over
 * packet buffers, no I/O, so that the daemon's shell, the unit tests, the
 * fuzzer and the benchmark all drive the same code.
 *
 *  - dp_decap(): packets from the IPv6 side, whole (IPv6 header first).
 *    4in6 (next header 4) is validated, its inner IPv4 source looked up and
 *    the outer source checked against the binding (ingress filtering,
 *    whitepaper 004: "filtering at the tunnel end-points regarding the
 *    source IPv4 and IPv6 address"), then stripped toward the IPv4 side,
 *    or re-tunnelled when it is addressed to another client (hairpin).
 *    ICMPv6 (next header 58) Packet Too Big about our tunnel updates the
 *    client's path MTU and reaches the IPv4 sender as fragmentation-needed.
 *  - dp_encap(): IPv4 packets from the IPv4 side toward a pool address:
 *    looked up by destination (and port on a shared address), checked
 *    against the client's path MTU, pushed into an IPv6 header.
 *  - A bound client's ICMP echo request to the keepalive address (RFC
 *    5572 §4.3, cfg.keepalive4) is answered by the TEP, back in the tunnel.
 *  - ICMPv4 errors the TEP generates (host unreachable, fragmentation
 *    needed, time exceeded) are built in place and rate-limited.
 *
 * Packets are processed in place: a struct dp_pkt points into a buffer
 * with at least DP_HEADROOM writable bytes before the packet, so that an
 * IPv6 header (40) or an ICMPv4 error (28, +40 toward a client) can be
 * pushed without copying. The verdict says where the result goes; a
 * TO_V6 packet always starts with its complete IPv6 header (a raw-socket
 * shell sends from data + 40 to dst6 and lets the kernel build it).
 * Every packet that is not forwarded increments exactly one drop counter.
 *
 * Injection (whitepaper 004: tunnels are "vulnerable to packet
 * injection"). Beyond the source filter:
 *  - ICMPv4 errors carry someone else's packet, so the quote is filtered
 *    too. One without a quoted IPv4 header is dropped
 *    (drop_icmp4_quote_bad). One a client sends must quote a packet sent
 *    TO that client: quoted destination = the error's (bound) source, and
 *    on a shared address the quoted destination port, which is what the
 *    lookup uses as the error's port, in the sender's range
 *    (drop_icmp4_forged_from_client). One toward a client (from the IPv4
 *    side or hairpinned) must quote a packet sent BY that client: quoted
 *    source = the error's destination, and the lookup by the quoted
 *    source port picks the client (drop_icmp4_forged_to_client).
 *  - Fragments: the TEP keeps no reassembly state at all, so fragments
 *    that never complete cost it nothing (the kernel reassembles outer
 *    IPv6 fragments before the raw socket sees them, within its own
 *    ip6frag limits). Each inner fragment is judged alone: a first
 *    fragment too short to hold its whole transport header
 *    (drop_v4_frag_tiny, RFC 1858 §3.1), a TCP fragment at offset 8 bytes
 *    that would overwrite the first one's header (drop_v4_frag_overlap,
 *    RFC 1858 §4, RFC 3128), bad flags or an end past 65535
 *    (drop_v4_fragment). A non-first fragment carries no ports: on a
 *    whole-address binding it passes the address filter like any packet;
 *    on a shared address it cannot be filtered and is dropped
 *    (drop_v4_frag_shared). Ports and the ICMP identifier lie in the first
 *    8 bytes of the transport header, which only offset-0 fragments can
 *    write, and every offset-0 fragment is filtered on its own ports, so
 *    no overlap can smuggle a port past the filter; the rest of an
 *    overlap is the receiver's to resolve when it reassembles.
 */
#ifndef DSTM_DP_H
#define DSTM_DP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "dataplane/binding.h"

#define DP_HEADROOM     128 /* bytes a buffer must leave free before the packet */
#define DP_BATCH        32  /* packets per batch: lookups of a batch overlap */
#define DP_MAX_POOLS    64
#define DP_IPV6_MIN_MTU 1280

/* Every counter, in the order dstmctl shows them. */
#define DP_COUNTERS(X)                   \
	X(rx_v6_pkts)                    \
	X(rx_v6_bytes)                   \
	X(rx_v4_pkts)                    \
	X(rx_v4_bytes)                   \
	X(decap_pkts)                    \
	X(decap_bytes)                   \
	X(encap_pkts)                    \
	X(encap_bytes)                   \
	X(hairpin_pkts)                  \
	X(keepalive_replies)             \
	X(encap_v6_fragmented)           \
	X(drop_v6_truncated)             \
	X(drop_v6_version)               \
	X(drop_v6_not_for_us)            \
	X(drop_v6_ext_headers)           \
	X(drop_v6_fragment)              \
	X(drop_v6_not_ipip)              \
	X(drop_v4_truncated)             \
	X(drop_v4_version)               \
	X(drop_v4_ihl)                   \
	X(drop_v4_length)                \
	X(drop_v4_checksum)              \
	X(drop_v4_fragment)              \
	X(drop_v4_frag_tiny)             \
	X(drop_v4_frag_overlap)          \
	X(drop_v4_frag_shared)           \
	X(drop_v4_martian)               \
	X(drop_v4_no_port)               \
	X(drop_no_binding_src)           \
	X(drop_spoofed_v6_src)           \
	X(drop_port_outside_range)       \
	X(drop_port_outside_set)         \
	X(drop_ttl_expired)              \
	X(drop_hairpin_no_binding)       \
	X(drop_no_binding_dst)           \
	X(drop_not_in_pool)              \
	X(drop_too_big_df)               \
	X(drop_learn_bad_src)            \
	X(drop_learn_failed)             \
	X(drop_icmp4_quote_bad)          \
	X(drop_icmp4_forged_from_client) \
	X(drop_icmp4_forged_to_client)   \
	X(icmp6_rx)                      \
	X(drop_icmp6_truncated)          \
	X(drop_icmp6_checksum)           \
	X(drop_icmp6_ignored)            \
	X(drop_icmp6_not_ours)           \
	X(pmtu_updates)                  \
	X(icmp4_sent_unreach)            \
	X(icmp4_sent_frag_needed)        \
	X(icmp4_sent_time_exceeded)      \
	X(icmp4_rate_limited)            \
	X(icmp4_suppressed)              \
	X(learned)                       \
	X(learn_replaced)                \
	X(learn_expired)                 \
	X(tx_v6_emsgsize)                \
	X(tx_v6_errors)                  \
	X(tx_v4_errors)                  \
	X(tx_enobufs_waits)              \
	X(rx_errors)

enum dp_counter {
#define DP_X_ENUM(n) DPC_##n,
	DP_COUNTERS(DP_X_ENUM)
#undef DP_X_ENUM
	    DPC__COUNT
};

/* "drop_spoofed_v6_src" for DPC_drop_spoofed_v6_src. */
const char *dp_counter_name(enum dp_counter c);

struct dp_pool {
	uint32_t addr, mask; /* host byte order */
};

struct dp_config {
	struct in6_addr tep6; /* our tunnel address: outer destination / source */
	uint32_t tep4;        /* our IPv4 address: source of the ICMPv4 we send */
	unsigned npools;
	struct dp_pool pools[DP_MAX_POOLS];
	uint16_t mtu;        /* IPv6 path MTU toward clients unless a client's is known */
	uint8_t hop_limit;   /* of the IPv6 headers we push; 0 means 64 */
	bool learn;          /* learn mode (seed 002 §5.2) */
	uint32_t learn_idle; /* seconds after which a learned binding may be replaced */
	bool decrement_ttl;  /* do the IPv4 router's TTL work (false when the kernel does) */
	uint32_t icmp_rate;  /* ICMPv4 errors per second we may send; 0: none */
	uint32_t keepalive4; /* echo requests of clients to it are answered here; 0: none */
};

enum dp_verdict {
	DP_DROP,
	DP_TO_V4, /* data..len is an IPv4 packet for the IPv4 side */
	DP_TO_V6, /* data..len is an IPv6 packet (header included) to dst6 */
};

struct dp_pkt {
	uint8_t *data;
	uint32_t len;
	uint32_t headroom; /* writable bytes before data */
	/* Results. */
	enum dp_verdict verdict;
	bool dontfrag;         /* TO_V6: the outer packet must not be fragmented */
	struct in6_addr dst6;  /* TO_V6: outer destination */
	struct bt_binding *bd; /* the binding the packet was accounted to, or NULL */
};

struct dp {
	struct dp_config cfg;
	struct bt *bt;
	uint64_t ctr[DPC__COUNT];
	int64_t now_ms;
	uint32_t now_s;
	/* ICMPv4 token bucket, in thousandths of a token. */
	int64_t icmp_tokens;
	int64_t icmp_last_ms;
};

/* Set up `dp` over binding table `bt` (not owned). Returns 0 or -EINVAL. */
int dp_init(struct dp *dp, const struct dp_config *cfg, struct bt *bt);
/* The caller's monotonic clock, once per batch (rate limits, learn mode). */
void dp_set_time(struct dp *dp, int64_t now_ms);

bool dp_in_pool(const struct dp *dp, uint32_t v4);

/* Packets from the IPv6 side, each starting with its IPv6 header; n <= DP_BATCH. */
void dp_decap(struct dp *dp, struct dp_pkt *pkts, unsigned n);
/* IPv4 packets from the IPv4 side; n <= DP_BATCH. */
void dp_encap(struct dp *dp, struct dp_pkt *pkts, unsigned n);

/*
 * The shell could not send a TO_V6 packet: it is bigger than the path
 * toward the client allows (EMSGSIZE), whose MTU is `mtu` (0: unknown,
 * the minimum is assumed). The client's path MTU is recorded; the packet
 * becomes fragmentation-needed toward its IPv4 sender when it had DF
 * (TO_V4), else it is to be sent again fragmented (TO_V6, dontfrag false,
 * RFC 2473 §7.1), or it is dropped.
 */
void dp_too_big(struct dp *dp, struct dp_pkt *pkt, uint32_t mtu);

/* Learn mode: forget learned bindings idle for learn_idle (bounded work). */
unsigned dp_expire(struct dp *dp, unsigned budget);

#endif
