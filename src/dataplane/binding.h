/*
 * The TEP's binding table: IPv4 address (or address + port range, when a
 * pool shares addresses) -> the IPv6 address of the DSTM client that holds
 * it (seed 001 §7: "the border router is required to maintain the IPv6
 * address of the DSTM clients"). Both directions of the data plane look
 * every packet up here, so the layout is built for lookups:
 *
 *   pool index (ref[v4 - pool base]), or for addresses outside the pools
 *   hash (open addressing, linear probing, 8-byte slots, load <= 1/2)
 *   +----------+----------+
 *   | v4 (u32) | ref (u32)|  ref 0: empty; ref & BT_REF_GROUP: a shared
 *   +----------+----------+  address (index into groups); else record+1
 *         |                                   |
 *         |            group: base, size, ref[(port - base) / size]
 *         v                                   v
 *   records: 64-byte cache lines, in 4 MiB chunks that never move
 *   +--------------------+----+-------+-------+------+-----+----------------+
 *   | client IPv6 (16)   | v4 | lo,hi | last  | mtu  |flags| 4 x u64 counters|
 *   +--------------------+----+-------+-------+------+-----+----------------+
 *
 * A lookup touches one hash line and one record line (plus the group of a
 * shared address); bt_prefetch() lets a caller issue the first miss (hash
 * line or direct ref) for a whole batch before bt_find_hashed() resolves
 * any, so the misses of 32 packets overlap
 * (after Snabb lwAFTR's batched lookups).
 * Records are reached by index through a small chunk directory, so the
 * table grows without moving a record and without stalling lookups.
 *
 * Port ranges: all bindings of one shared address have the same size and
 * are aligned on it (port_lo = base + k * size); that is how dstmd shares
 * ports out (doc/internals.md, port_range_size) and it makes the range of
 * a port one division away. A binding with ports 0-65535 is a whole
 * address. Single writer: the daemon is single-threaded, so updates need
 * no locking; they never reallocate the record chunks.
 */
#ifndef DSTM_BINDING_H
#define DSTM_BINDING_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	BT_F_USED = 1 << 0,    /* record holds a binding */
	BT_F_LEARNED = 1 << 1, /* learned from traffic (learn mode), may expire */
	BT_F_STATIC = 1 << 2,  /* added by the operator (binding-add) */
};

struct bt_binding {
	struct in6_addr v6; /* the client's IPv6 address: the tunnel's far end */
	uint32_t v4;        /* host byte order */
	uint16_t port_lo, port_hi;
	uint32_t last_seen; /* seconds (caller's clock) of the last packet, learn mode */
	uint16_t mtu;       /* IPv6 path MTU toward the client; 0: the configured one */
	uint8_t flags;
	uint8_t pad_;
	/* "in": from the client (decapsulated); "out": toward it. */
	uint64_t pkts_in, bytes_in, pkts_out, bytes_out;
} __attribute__((aligned(64)));

struct bt;

/*
 * A table sized for `addresses` distinct IPv4 addresses (the pools'
 * size); it grows past that when needed. NULL on allocation failure.
 */
struct bt *bt_new(size_t addresses);
/*
 * A table for the pools base[i]/plen[i] (host byte order): the pools'
 * addresses are indexed directly (a 4-byte ref per pool address instead
 * of a hash slot, so a lookup is one load with no probing), as long as
 * they number at most 4,194,304; beyond that, a hash sized for them.
 * Addresses outside the pools still work, through the hash. More than
 * BT_DIRECT_POOLS pools are hashed too.
 */
#define BT_DIRECT_POOLS 16
struct bt *bt_new_pools(const uint32_t *base, const unsigned *plen, unsigned n);
void bt_free(struct bt *bt);

/*
 * Add the binding v4[port_lo..port_hi] -> v6. Adding a binding that exists
 * with the same range updates its IPv6 address and flags and keeps its
 * counters (dstmd re-pushes bindings after a restart). Returns 0, or
 * -EINVAL (empty range, or a range that does not fit the address's
 * existing size and alignment, or a whole address over a shared one or the
 * reverse), -EEXIST (an overlapping range of another size), -ENOMEM.
 */
int bt_add(struct bt *bt, uint32_t v4, uint16_t port_lo, uint16_t port_hi,
           const struct in6_addr *v6, uint8_t flags, struct bt_binding **out);

/*
 * Remove the binding of v4 whose range starts at port_lo; `all` removes
 * every range of v4 (port_lo ignored). Returns 0 or -ENOENT.
 */
int bt_del(struct bt *bt, uint32_t v4, uint16_t port_lo, bool all);

/* The binding covering v4:port, or NULL. */
struct bt_binding *bt_lookup(const struct bt *bt, uint32_t v4, uint16_t port);

/* True when v4 is split into port ranges (lookups need a port). */
bool bt_is_shared(const struct bt *bt, uint32_t v4);

/*
 * Batched lookups, in two steps: bt_prefetch() hashes v4, prefetches its
 * hash line and returns the hash; bt_find_hashed() then resolves it. The
 * caller does the first for a whole batch before the second.
 */
uint32_t bt_prefetch(const struct bt *bt, uint32_t v4);
struct bt_binding *bt_find_hashed(const struct bt *bt, uint32_t hash, uint32_t v4, uint16_t port);
/* Both steps over n keys: out[i] is the binding or NULL. */
void bt_lookup_batch(const struct bt *bt, const uint32_t *v4, const uint16_t *port, unsigned n,
                     struct bt_binding **out);

size_t bt_count(const struct bt *bt);
/* Bytes held by the table (hash, groups, records, directories). */
size_t bt_memory(const struct bt *bt);

/*
 * Walk the bindings: start with *cursor = 0; returns the next binding or
 * NULL at the end. Deleting the binding just returned is allowed.
 */
struct bt_binding *bt_next(const struct bt *bt, uint32_t *cursor);

/*
 * Learn mode: remove learned bindings idle since before `older_than`,
 * visiting at most `budget` records from where the last call stopped (so a
 * sweep of a large table is spread over timer ticks). Returns how many
 * were removed.
 */
unsigned bt_expire_learned(struct bt *bt, uint32_t older_than, unsigned budget);

#endif
