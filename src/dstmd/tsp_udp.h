/*
 * TSP over UDP for dstmd (RFC 5572 §3): a datagram socket beside each
 * plain TCP listener, feeding the same TSP machine and the same client
 * access as TCP (tsp_udp.c says how requests map onto answers).
 */
#ifndef DSTMD_TSP_UDP_H
#define DSTMD_TSP_UDP_H

#include <jansson.h>
#include <stdint.h>

struct dstmd;

/* Named counters; every drop reason has one (dstmctl counters: udp_*). */
struct tsp_udp_counters {
	uint64_t datagrams, sessions, answers, retransmits, retransmits_open, drop_header,
	    drop_too_long, drop_no_session, drop_stale, refused, evicted, expired, queue_drops,
	    send_errors;
};

int tsp_udp_init(struct dstmd *d);
void tsp_udp_fini(struct dstmd *d);
void tsp_udp_counters(const struct dstmd *d, json_t *o);

#endif
