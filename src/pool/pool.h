/*
 * The IPv4 address pool of dstmd (seed 001 §6.2, the address pool access
 * module): a pure allocator with no I/O. A pool is a set of IPv4 ranges,
 * optionally cut into port ranges (seed 001 appendix B, the DSTM Ports
 * option) so that several clients share one address. The unit handed out
 * is a *slot*: one address, or one address plus one port range. Slots are
 * numbered 0..size-1 in address order, then port order. Free slots leave
 * in FIFO order and a released slot sits in quarantine before it joins the
 * tail of the free queue, so an address is reused as late as possible.
 * Every state change is O(1); the pool keeps 13 bytes per slot.
 */
#ifndef DSTM_POOL_H
#define DSTM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest pool: slot numbers must stay far from UINT32_MAX. */
#define POOL_MAX_SLOTS (1u << 24)
/* seed 001 appendix B: ports 1024-65535 are shared out, 64512 of them. */
#define POOL_PORT_FIRST 1024u
#define POOL_PORTS      64512u

/* An inclusive range of IPv4 addresses, host byte order. */
struct pool_range {
	uint32_t first, last;
};

struct pool_config {
	const char *name; /* copied */
	const struct pool_range *ranges;
	size_t nranges;
	const struct pool_range *excludes; /* removed from ranges; may lie outside them */
	size_t nexcludes;
	/* 0: whole addresses; N: each address serves floor(64512/N) clients. */
	unsigned port_range_size;
	/*
	 * The other form (RFC 7597 §5.1), with port_range_size 0: psid_len k
	 * > 0 gives each address 2^k port sets, PSID 0..2^k-1, with offset
	 * psid_offset a (ports with i = 0 are nobody's when a > 0; RFC 7597
	 * §5.1.1 recommends 6, which leaves out 0-1023). a + k <= 16.
	 */
	unsigned psid_offset, psid_len;
};

struct pool_stats {
	uint64_t size, used, quarantined, free;
};

/*
 * Parse what an operator writes in a pool: "192.0.2.0/24" (a prefix
 * shorter than /31 loses its network and broadcast addresses),
 * "192.0.2.10-192.0.2.20" or a single "192.0.2.7". False with a message
 * in err ("192.0.2.0/33 is not a prefix").
 */
bool pool_range_parse(const char *s, struct pool_range *out, char *err, size_t errlen);

/*
 * NULL with a message for the operator in err: overlapping ranges, an
 * empty pool, a port range size above 64512, a pool above POOL_MAX_SLOTS.
 */
struct pool *pool_new(const struct pool_config *cfg, char *err, size_t errlen);
void pool_free(struct pool *p);

const char *pool_name(const struct pool *p);
unsigned pool_port_range_size(const struct pool *p);
void pool_stats(const struct pool *p, struct pool_stats *st);
/* Every slot free again, as pool_new() made it (the lease manager reloads from disk). */
void pool_reset(struct pool *p);

/*
 * Start the free queue at the first free slot at or after `slot` (the
 * order stays, the part before goes to the tail). dstmd instances sharing
 * a pool through PostgreSQL each start at a place of their own, so that
 * they seldom pick the same address at once.
 */
void pool_rotate(struct pool *p, uint32_t slot);

/* Any address in common: two pools of one dstmd must not overlap. */
bool pool_overlaps(const struct pool *a, const struct pool *b);

/*
 * Take the head of the free queue: 0 and *slot, or -ENOSPC. Quarantines
 * that ended by `now` (wall-clock seconds) are freed first.
 */
int pool_alloc(struct pool *p, int64_t now, uint32_t *slot);

/*
 * Take a given slot (a client asks for an address; leases reloaded):
 * 0, -EBUSY (in use, or quarantined beyond `now`), -ENOENT (no such slot).
 */
int pool_take(struct pool *p, uint32_t slot, int64_t now);

/*
 * Take back a slot in quarantine for the client that held it (lease
 * continuity): 0, -EBUSY (in use), -ENOENT (no such slot). A slot whose
 * quarantine ended is taken as pool_take() would.
 */
int pool_reclaim(struct pool *p, uint32_t slot, int64_t now);

/*
 * A used slot enters quarantine until `quarantine_until` (wall-clock
 * seconds); it becomes free lazily, in pool_alloc(), pool_take() or
 * pool_tick(). Releasing a slot that is not in use is a broken
 * invariant of the caller and aborts.
 */
void pool_release(struct pool *p, uint32_t slot, int64_t quarantine_until);

/* Free every slot whose quarantine ended by `now`; returns how many. */
unsigned pool_tick(struct pool *p, int64_t now);

/* The slot holding (v4, port); `port` is ignored when the pool has no port ranges. */
bool pool_find(const struct pool *p, uint32_t v4, uint16_t port, uint32_t *slot);
bool pool_contains(const struct pool *p, uint32_t v4);
/* Address and port range of a slot (ports 0, 0 without port ranges). */
void pool_slot(const struct pool *p, uint32_t slot, uint32_t *v4, uint16_t *port_lo,
               uint16_t *port_hi);
/*
 * A PSID pool's offset and length (both 0 for a pool of ranges or whole
 * addresses); the PSID of a slot is slot % pool_slots_per_addr(). Such a
 * slot's pool_slot() ports are the first and the last port of its set.
 */
void pool_psid(const struct pool *p, unsigned *offset, unsigned *psid_len);
/* Number of slots one address gives (1 without port ranges). */
unsigned pool_slots_per_addr(const struct pool *p);

enum pool_slot_state { POOL_SLOT_FREE, POOL_SLOT_USED, POOL_SLOT_QUARANTINED };
/* State of a slot as of `now` (a finished quarantine reads as free). */
enum pool_slot_state pool_slot_state(const struct pool *p, uint32_t slot, int64_t now);

#endif
