/*
 * What the DHCPv6 server's files share and its users never see: the
 * server and its per-DUID memory. d6_server.c decides (limits, leases,
 * authentication), d6_reply.c writes the reply.
 */
#ifndef DSTM_D6_SERVER_INT_H
#define DSTM_D6_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dhcp6/d6.h"

#define DUID_TRACK_MAX 16

/*
 * What the server remembers of one client DUID (not durable: see
 * dstmd(8)). Anyone can make one with a Solicit of a new DUID, so there
 * are at most cfg.max_clients of them: a new one takes the place of the
 * one heard least recently (the LRU list). Forgetting a DUID loses its
 * replay counter, its reconfigure key and the address a Reconfigure would
 * go to (no Reconfigure then: it learns at its next Renew) and the IAIDs
 * of the per-DUID limit; the per-/64 limit,
 * which the lease manager counts, still bounds what one host holds.
 */
struct client_ent {
	struct client_ent *next;
	struct client_ent *lru_prev, *lru_next; /* head: heard most recently */
	uint8_t duid[D6_DUID_MAX + 2];
	size_t duid_len;
	bool has_replay, has_reconf;
	bool reconf_sent; /* the key went out once: never again (DESIGN §4) */
	uint64_t last_replay;
	uint8_t reconf_key[16];
	bool has_peer;
	struct sockaddr_in6 peer; /* where it last sent from, unrelayed: a Reconfigure's way */
	unsigned niaid;
	uint32_t iaid[DUID_TRACK_MAX];
};

struct d6_server {
	struct d6_server_config cfg;
	const struct d6_lease_ops *ops;
	void *arg;
	struct d6_server_counters ctr;
	uint64_t replay;
	struct client_ent **clients;
	struct client_ent *lru_head, *lru_tail;
	size_t nclients;
};

/* Whether the server serves this IA's form (IA_NA, IA_TA, lw4o6). */
bool d6_srv_form_served(const struct d6_server *s, const struct d6_ia *ia);

#endif
