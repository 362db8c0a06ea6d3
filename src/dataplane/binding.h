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
 *                               or psid,offset,len (BT_F_PSID)
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
 * address.
 *
 * Port sets (RFC 7597 §5.1, lw4o6 and MAP): an address may instead be
 * shared by PSID. With offset a, PSID length k and m = 16 - a - k, a port
 * is read as
 *
 *     0                   1
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
 *    +-----------+-----------+-------+
 *    |     i     |    PSID   |   j   |    i: a bits, never 0 when a > 0
 *    +-----------+-----------+-------+       (ports 0 .. 2^(16-a)-1 belong
 *    |<--- a --->|<--- k --->|<- m ->|        to nobody)
 *
 * and the group's ref[] is indexed by the PSID: ref[(port >> m) & (2^k-1)].
 * All bindings of one address have the same offset and length. Such a
 * record carries BT_F_PSID and, in place of port_lo/port_hi, psid (the
 * value, right-aligned), psid_offset (a) and psid_len (k); bt_port_in()
 * says whether a port is in a record's set, whatever its form. A PSID
 * length of 0 is a whole address (address-only lw4o6), stored as one. Single writer: the daemon is single-threaded, so updates need
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
	BT_F_PSID = 1 << 3,    /* a PSID port set: psid/psid_offset/psid_len are valid */
};

struct bt_binding {
	struct in6_addr v6; /* the client's IPv6 address: the tunnel's far end */
	uint32_t v4;        /* host byte order */
	union {
		struct {
			uint16_t port_lo, port_hi; /* a range: without BT_F_PSID */
		};
		struct {
			uint16_t psid;       /* with BT_F_PSID: the PSID, right-aligned */
			uint8_t psid_offset; /* a: 0..15 */
			uint8_t psid_len;    /* k: 1..16 - a */
		};
	};
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
 * Add the port set (RFC 7597 §5.1) of v4 with the given offset, PSID length
 * and PSID -> v6. psid_len 0 adds a whole address (bt_add(v4, 0, 65535)).
 * Returns what bt_add() does; -EINVAL also for offset + length > 16, a
 * PSID that does not fit its length, or an address already shared by
 * ranges or by another offset or length.
 */
int bt_add_psid(struct bt *bt, uint32_t v4, uint8_t offset, uint8_t psid_len, uint16_t psid,
                const struct in6_addr *v6, uint8_t flags, struct bt_binding **out);
/* Remove v4's binding with that PSID: 0 or -ENOENT. */
int bt_del_psid(struct bt *bt, uint32_t v4, uint16_t psid);

/* The PSID of `port` under offset a and length k (RFC 7597 §5.1); -1 for the excluded ports. */
static inline int
bt_psid_of(uint16_t port, uint8_t a, uint8_t k)
{
	if (a && (port >> (16 - a)) == 0)
		return -1;
	return (port >> (16 - a - k)) & ((1u << k) - 1);
}

/* Is `port` in the record's range or port set. */
static inline bool
bt_port_in(const struct bt_binding *b, uint16_t port)
{
	if (b->flags & BT_F_PSID)
		return bt_psid_of(port, b->psid_offset, b->psid_len) == (int)b->psid;
	return port >= b->port_lo && port <= b->port_hi;
}

/*
 * Remove the binding of v4 whose range starts at port_lo (for an address
 * shared by PSID, the binding whose set holds the port port_lo); `all` removes
 * every range of v4 (port_lo ignored). Returns 0 or -ENOENT.
 */
int bt_del(struct bt *bt, uint32_t v4, uint16_t port_lo, bool all);

/* The binding covering v4:port, or NULL. */
struct bt_binding *bt_lookup(const struct bt *bt, uint32_t v4, uint16_t port);

/* True when v4 is split into port ranges (lookups need a port). */
bool bt_is_shared(const struct bt *bt, uint32_t v4);
/* True when v4 is shared by PSID port sets. */
bool bt_is_psid(const struct bt *bt, uint32_t v4);

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
