/*
 * dstm-client as an lwB4 (RFC 7596 §5.2): its host's IPv4 connections
 * leave through the softwire with source ports inside the port set the
 * server gave (a PSID, RFC 7597 §5.1), or the TEP drops them
 * (drop_port_outside_set). The host's kernel picks ports freely, so the
 * client translates them on its own path, between the TUN device and the
 * tunnel: a NAPT of ports only (the address is already the leased one),
 * with endpoint-independent mappings (RFC 4787 REQ-1: one mapped port
 * per host port and protocol, whatever the remote). A host port that is
 * already in the set and free is kept as it is.
 *
 * Pure functions over packet bytes and the caller's clock, for the unit
 * tests. State: at most one flow per port of the set and protocol (TCP,
 * UDP, ICMP echo identifiers), LW_NAT_MAX_FLOWS in all, each forgotten
 * when idle (UDP 300 s, RFC 4787 REQ-5; ICMP 60 s; TCP 7440 s, RFC 5382
 * REQ-5, or 10 s once both sides sent FIN or the host sent RST, 4 min after
 * an RST from outside, RFC 7857 §2.2). Inbound ICMP
 * errors about a translated packet get their quoted source port back.
 */
#ifndef DSTM_CLIENT_LW4O6_H
#define DSTM_CLIENT_LW4O6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LW_NAT_MAX_FLOWS 16384

struct lw_nat_counters {
	uint64_t out, in;     /* packets translated */
	uint64_t kept;        /* new flows whose host port was already in the set */
	uint64_t mapped;      /* new flows given another port */
	uint64_t exhausted;   /* no free port in the set: the packet is dropped */
	uint64_t expired;     /* flows forgotten */
	uint64_t passed;      /* not translatable (a later fragment, other protocols) */
	uint64_t icmp_quotes; /* inbound ICMP errors whose quote was translated back */
};

struct lw_nat;

struct lw_nat *lw_nat_new(void);
void lw_nat_free(struct lw_nat *n);
/*
 * The set (offset a, PSID length k, PSID), or psid_len 0 for a whole
 * address (nothing to translate). A change forgets every flow.
 */
void lw_nat_set(struct lw_nat *n, uint8_t offset, uint8_t psid_len, uint16_t psid);
/* How many ports the set holds (65536 without a set). */
unsigned lw_nat_size(const struct lw_nat *n);
bool lw_nat_port_in(const struct lw_nat *n, uint16_t port);
/*
 * A packet from the host (a whole IPv4 packet, checked by the caller):
 * its TCP/UDP source port or ICMP echo identifier is mapped into the set
 * and the checksums fixed. False when it must be dropped (no free port).
 */
bool lw_nat_out(struct lw_nat *n, uint8_t *buf, size_t len, int64_t now_ms);
/* A packet to the host: a mapped destination port (identifier) goes back. */
void lw_nat_in(struct lw_nat *n, uint8_t *buf, size_t len, int64_t now_ms);
/* Forget idle flows; returns how many remain. */
unsigned lw_nat_expire(struct lw_nat *n, int64_t now_ms);
const struct lw_nat_counters *lw_nat_counters(const struct lw_nat *n);
/* Add the counters to a JSON object (dstm-client's "counters"): lw4o6_*, drop_port_set_full. */
void lw_nat_counters_json(const struct lw_nat *n, json_t *o);

#endif
