/*
 * The binding table: see binding.h for the layout. Linear probing with
 * backward-shift deletion (no tombstones, so probe sequences stay as short
 * as the load allows); the hash is kept at most half full, which keeps the
 * expected probe within the first cache line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dataplane/bt_internal.h"

#define BT_HUGE (2u << 20)

/*
 * Zeroed memory in 2 MiB-aligned 2 MiB units, marked for transparent huge
 * pages: a million bindings spread over 64 MiB, and with 4 KiB pages every
 * lookup would also miss the TLB (the prefetches then wait on page walks).
 */
static void *
big_alloc(size_t size)
{
	size_t n = (size + BT_HUGE - 1) / BT_HUGE * BT_HUGE;
	void *p = aligned_alloc(BT_HUGE, n);

	if (!p)
		return NULL;
	madvise(p, n, MADV_HUGEPAGE);
	memset(p, 0, size);
	return p;
}

/* murmur3's finalizer: pool addresses are consecutive, the slots must not be. */

static inline bool
is_whole(uint16_t lo, uint16_t hi)
{
	return lo == 0 && hi == 65535;
}

static int
slots_alloc(struct bt *bt, uint32_t nslots)
{
	bt->slots = calloc(nslots, sizeof(*bt->slots));
	if (!bt->slots)
		return -ENOMEM;
	bt->mask = nslots - 1;
	return 0;
}

struct bt *
bt_new(size_t addresses)
{
	struct bt *bt = calloc(1, sizeof(*bt));
	uint32_t n = 64;

	if (!bt)
		return NULL;
	while (n < 0x80000000u && (size_t)n < addresses * 2)
		n <<= 1;
	if (slots_alloc(bt, n) < 0) {
		free(bt);
		return NULL;
	}
	return bt;
}

struct bt *
bt_new_pools(const uint32_t *base, const unsigned *plen, unsigned n)
{
	uint64_t total = 0;
	struct bt *bt;

	for (unsigned i = 0; i < n; i++)
		total += 1ull << (32 - plen[i]);
	if (n > BT_DIRECT_POOLS || total > BT_DIRECT_MAX)
		/* Wide pools: a hash presized for a million addresses, grown past that. */
		return bt_new((size_t)(total < (1u << 20) ? total : (1u << 20)));
	if (!(bt = bt_new(64)))
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		struct bt_direct *d = &bt->direct[i];

		d->base = base[i];
		d->size = (uint32_t)(1ull << (32 - plen[i]));
		d->ref = big_alloc((size_t)d->size * sizeof(uint32_t));
		if (!d->ref) {
			bt_free(bt);
			return NULL;
		}
		bt->ndirect = i + 1;
	}
	return bt;
}

void
bt_free(struct bt *bt)
{
	if (!bt)
		return;
	for (unsigned i = 0; i < bt->ndirect; i++)
		free(bt->direct[i].ref);
	for (uint32_t i = 0; i < bt->nchunks; i++)
		free(bt->chunks[i]);
	for (uint32_t i = 0; i < bt->ngroups; i++)
		free(bt->groups[i]);
	free(bt->chunks);
	free(bt->groups);
	free(bt->free);
	free(bt->slots);
	free(bt);
}

/* Index of v4's slot, or of the empty slot where it would go. */
static uint32_t
slot_find(const struct bt *bt, uint32_t v4)
{
	uint32_t i = bt_hash(v4) & bt->mask;

	/* At most half full: an empty slot always ends the probe. */
	for (uint32_t n = 0; n <= bt->mask; n++) {
		if (bt->slots[i].ref == 0 || bt->slots[i].v4 == v4)
			return i;
		i = (i + 1) & bt->mask;
	}
	return i; /* unreachable while the load stays at most 1/2 */
}

static int
slots_grow(struct bt *bt)
{
	struct bt_slot *old = bt->slots;
	uint32_t oldn = bt->mask + 1;

	if (oldn >= 0x80000000u)
		return -ENOMEM;
	if (slots_alloc(bt, oldn * 2) < 0) {
		bt->slots = old;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < oldn; i++)
		if (old[i].ref)
			bt->slots[slot_find(bt, old[i].v4)] = old[i];
	free(old);
	return 0;
}

/* Backward-shift deletion: pull later members of the cluster into the hole. */
static void
slot_remove(struct bt *bt, uint32_t i)
{
	for (uint32_t n = 0; n <= bt->mask; n++) {
		uint32_t j = (i + 1) & bt->mask, home;

		for (;;) {
			if (bt->slots[j].ref == 0)
				goto out;
			home = bt_hash(bt->slots[j].v4) & bt->mask;
			/* j may move to i when i lies cyclically in [home, j). */
			if (((j - home) & bt->mask) >= ((j - i) & bt->mask))
				break;
			j = (j + 1) & bt->mask;
			if (j == i)
				goto out;
		}
		bt->slots[i] = bt->slots[j];
		i = j;
	}
out:
	bt->slots[i].ref = 0;
	bt->slots[i].v4 = 0;
	bt->slots_used--;
}

/* The ref word of v4 (0 when unbound); *hidx its hash slot, or UINT32_MAX. */
static uint32_t *
ref_find(const struct bt *bt, uint32_t v4, uint32_t *hidx)
{
	uint32_t *r = bt_direct_ref(bt, v4);

	if (r) {
		*hidx = UINT32_MAX;
		return r;
	}
	*hidx = slot_find(bt, v4);
	return &bt->slots[*hidx].ref;
}

static void
ref_clear(struct bt *bt, uint32_t *refp, uint32_t hidx)
{
	if (hidx == UINT32_MAX)
		*refp = 0;
	else
		slot_remove(bt, hidx);
}

static int
rec_alloc(struct bt *bt, uint32_t *idx)
{
	if (bt->nfree) {
		*idx = bt->free[--bt->nfree];
		return 0;
	}
	if (bt->nrecords >= BT_MAX_RECORDS)
		return -ENOMEM;
	if (bt->free_cap <= bt->nrecords) {
		uint32_t cap = bt->free_cap ? bt->free_cap * 2 : 64;
		uint32_t *f = realloc(bt->free, cap * sizeof(*f));
		if (!f)
			return -ENOMEM;
		bt->free = f;
		bt->free_cap = cap;
	}
	if ((bt->nrecords >> BT_CHUNK_SHIFT) >= bt->nchunks) {
		if (bt->nchunks == bt->chunks_cap) {
			uint32_t cap = bt->chunks_cap ? bt->chunks_cap * 2 : 16;
			struct bt_binding **c = realloc(bt->chunks, cap * sizeof(*c));
			if (!c)
				return -ENOMEM;
			bt->chunks = c;
			bt->chunks_cap = cap;
		}
		bt->chunks[bt->nchunks] = big_alloc((size_t)BT_CHUNK * sizeof(struct bt_binding));
		if (!bt->chunks[bt->nchunks])
			return -ENOMEM;
		bt->nchunks++;
	}
	*idx = bt->nrecords++;
	return 0;
}

/* Never fails: rec_alloc() keeps the free stack as large as the records. */
static void
rec_release(struct bt *bt, uint32_t idx)
{
	memset(bt_rec(bt, idx), 0, sizeof(struct bt_binding));
	bt->free[bt->nfree++] = idx;
	bt->count--;
}

static void
rec_fill(struct bt_binding *b, uint32_t v4, uint16_t lo, uint16_t hi, const struct in6_addr *v6,
         uint8_t flags)
{
	memset(b, 0, sizeof(*b));
	b->v6 = *v6;
	b->v4 = v4;
	b->port_lo = lo;
	b->port_hi = hi;
	b->flags = BT_F_USED | flags;
}

/* A re-added binding keeps its counters unless it now names another client. */
static void
rec_update(struct bt_binding *b, const struct in6_addr *v6, uint8_t flags)
{
	if (memcmp(&b->v6, v6, sizeof(*v6)) != 0) {
		b->v6 = *v6;
		b->mtu = 0;
		b->pkts_in = b->bytes_in = b->pkts_out = b->bytes_out = 0;
	}
	b->flags = BT_F_USED | flags;
}

/*
 * A new address: room in the hash, kept at most half full (*refp and
 * *hidx found again when it grew), and a record in *idx; 0 or -errno.
 */
static int
new_addr_room(struct bt *bt, uint32_t v4, uint32_t **refp, uint32_t *hidx, uint32_t *idx)
{
	int rc;

	if (*hidx != UINT32_MAX && (bt->slots_used + 1) * 2 > bt->mask + 1) {
		if ((rc = slots_grow(bt)) < 0)
			return rc;
		*refp = ref_find(bt, v4, hidx);
	}
	return rec_alloc(bt, idx);
}

/* A group of ranges lo..hi (psid_len 0), or of PSID sets (size 0). */
static int
group_new(struct bt *bt, uint32_t v4, uint16_t lo, uint16_t hi, uint8_t psid_offset,
          uint8_t psid_len, uint32_t *gidx)
{
	uint32_t size = psid_len ? 0 : (uint32_t)hi - lo + 1, base = psid_len ? 0 : lo % size;
	uint32_t nslots = psid_len ? 1u << psid_len : (65536 - base + size - 1) / size;
	size_t bytes = sizeof(struct bt_group) + nslots * sizeof(uint32_t);
	struct bt_group *g;
	uint32_t i;

	for (i = 0; i < bt->ngroups; i++)
		if (!bt->groups[i])
			break;
	if (i == bt->ngroups) {
		if (bt->ngroups == bt->groups_cap) {
			uint32_t cap = bt->groups_cap ? bt->groups_cap * 2 : 16;
			struct bt_group **gs;

			if (cap >= BT_REF_GROUP)
				return -ENOMEM;
			gs = realloc(bt->groups, cap * sizeof(*gs));
			if (!gs)
				return -ENOMEM;
			bt->groups = gs;
			bt->groups_cap = cap;
		}
		bt->groups[bt->ngroups++] = NULL;
	}
	g = calloc(1, bytes);
	if (!g)
		return -ENOMEM;
	g->v4 = v4;
	g->base = (uint16_t)base;
	g->size = (uint16_t)size;
	g->psid_offset = psid_offset;
	g->psid_len = psid_len;
	g->nslots = nslots;
	bt->groups[i] = g;
	bt->group_bytes += bytes;
	*gidx = i;
	return 0;
}

static void
group_free(struct bt *bt, uint32_t gidx)
{
	struct bt_group *g = bt->groups[gidx];

	bt->group_bytes -= sizeof(*g) + g->nslots * sizeof(uint32_t);
	free(g);
	bt->groups[gidx] = NULL;
}

/*
 * The slot of `lo..hi` in group g, or -1 when the range does not fit the
 * group's size and alignment. The last range may be cut short by 65535.
 */
static long
group_index(const struct bt_group *g, uint16_t lo, uint16_t hi)
{
	uint32_t size = g->size;

	if (lo < g->base || (lo - g->base) % size != 0)
		return -1;
	if ((uint32_t)hi - lo + 1 != size && !(hi == 65535 && (uint32_t)lo + size - 1 > 65535))
		return -1;
	return (long)((lo - g->base) / size);
}

int
bt_add(struct bt *bt, uint32_t v4, uint16_t port_lo, uint16_t port_hi, const struct in6_addr *v6,
       uint8_t flags, struct bt_binding **out)
{
	struct bt_group *g;
	uint32_t hidx, idx, gidx = 0, *refp;
	long k;
	int rc;

	flags &= (uint8_t)~BT_F_USED;
	if (port_lo > port_hi)
		return -EINVAL;
	refp = ref_find(bt, v4, &hidx);
	if (*refp && !(*refp & BT_REF_GROUP)) {
		struct bt_binding *b = bt_rec(bt, *refp - 1);

		if (!is_whole(port_lo, port_hi))
			return -EEXIST;
		rec_update(b, v6, flags);
		if (out)
			*out = b;
		return 0;
	}
	if (*refp) {
		g = bt->groups[*refp & ~BT_REF_GROUP];
		if (is_whole(port_lo, port_hi))
			return -EEXIST;
		if (g->size == 0)
			return -EINVAL; /* shared by PSID */
		k = group_index(g, port_lo, port_hi);
		if (k < 0)
			return -EINVAL;
		if (g->ref[k]) {
			rec_update(bt_rec(bt, g->ref[k] - 1), v6, flags);
			if (out)
				*out = bt_rec(bt, g->ref[k] - 1);
			return 0;
		}
		if ((rc = rec_alloc(bt, &idx)) < 0)
			return rc;
		g->ref[k] = idx + 1;
		g->used++;
		goto fill;
	}

	if ((rc = new_addr_room(bt, v4, &refp, &hidx, &idx)) < 0)
		return rc;
	if (!is_whole(port_lo, port_hi)) {
		if ((rc = group_new(bt, v4, port_lo, port_hi, 0, 0, &gidx)) < 0) {
			bt->free[bt->nfree++] = idx;
			return rc;
		}
		g = bt->groups[gidx];
		k = group_index(g, port_lo, port_hi);
		g->ref[k] = idx + 1;
		g->used = 1;
		*refp = BT_REF_GROUP | gidx;
	} else {
		*refp = idx + 1;
	}
	if (hidx != UINT32_MAX) {
		bt->slots[hidx].v4 = v4;
		bt->slots_used++;
	}
fill:
	rec_fill(bt_rec(bt, idx), v4, port_lo, port_hi, v6, flags);
	bt->count++;
	if (out)
		*out = bt_rec(bt, idx);
	return 0;
}

int
bt_add_psid(struct bt *bt, uint32_t v4, uint8_t offset, uint8_t psid_len, uint16_t psid,
            const struct in6_addr *v6, uint8_t flags, struct bt_binding **out)
{
	struct bt_binding *b;
	struct bt_group *g;
	uint32_t hidx, idx, gidx, *refp;
	int rc;

	if (psid_len == 0)
		return bt_add(bt, v4, 0, 65535, v6, flags, out);
	/* RFC 7597 §5.1: a + k <= 16; a whole port space split in one is 16. */
	if (offset + psid_len > 16 || offset > 15 || (psid >> psid_len) != 0)
		return -EINVAL;
	flags = (uint8_t)((flags & ~BT_F_USED) | BT_F_PSID);
	refp = ref_find(bt, v4, &hidx);
	if (*refp && !(*refp & BT_REF_GROUP))
		return -EEXIST; /* a whole address */
	if (*refp) {
		g = bt->groups[*refp & ~BT_REF_GROUP];
		if (g->size != 0 || g->psid_offset != offset || g->psid_len != psid_len)
			return -EINVAL;
		if (g->ref[psid]) {
			b = bt_rec(bt, g->ref[psid] - 1);
			rec_update(b, v6, flags);
			goto out;
		}
		if ((rc = rec_alloc(bt, &idx)) < 0)
			return rc;
		g->ref[psid] = idx + 1;
		g->used++;
	} else {
		if ((rc = new_addr_room(bt, v4, &refp, &hidx, &idx)) < 0)
			return rc;
		if ((rc = group_new(bt, v4, 0, 0, offset, psid_len, &gidx)) < 0) {
			bt->free[bt->nfree++] = idx;
			return rc;
		}
		g = bt->groups[gidx];
		g->ref[psid] = idx + 1;
		g->used = 1;
		*refp = BT_REF_GROUP | gidx;
		if (hidx != UINT32_MAX) {
			bt->slots[hidx].v4 = v4;
			bt->slots_used++;
		}
	}
	b = bt_rec(bt, idx);
	rec_fill(b, v4, 0, 0, v6, flags);
	b->psid = psid;
	b->psid_offset = offset;
	b->psid_len = psid_len;
	bt->count++;
out:
	if (out)
		*out = b;
	return 0;
}

int
bt_del_psid(struct bt *bt, uint32_t v4, uint16_t psid)
{
	uint32_t hidx, *refp = ref_find(bt, v4, &hidx);
	struct bt_group *g;
	uint16_t port;

	if (*refp == 0 || !(*refp & BT_REF_GROUP))
		return -ENOENT;
	g = bt->groups[*refp & ~BT_REF_GROUP];
	if (g->size != 0 || psid >= g->nslots)
		return -ENOENT;
	/* The set's first port: i = 1 (0 when a is 0), j = 0. */
	port = (uint16_t)((g->psid_offset ? 1u << (16 - g->psid_offset) : 0) |
	                  ((uint32_t)psid << (16 - g->psid_offset - g->psid_len)));
	return bt_del(bt, v4, port, false);
}

int
bt_del(struct bt *bt, uint32_t v4, uint16_t port_lo, bool all)
{
	uint32_t hidx, gidx, *refp = ref_find(bt, v4, &hidx);
	struct bt_group *g;

	if (*refp == 0)
		return -ENOENT;
	if (!(*refp & BT_REF_GROUP)) {
		if (!all && port_lo != 0)
			return -ENOENT;
		rec_release(bt, *refp - 1);
		ref_clear(bt, refp, hidx);
		return 0;
	}
	gidx = *refp & ~BT_REF_GROUP;
	g = bt->groups[gidx];
	if (all) {
		for (uint32_t k = 0; k < g->nslots; k++)
			if (g->ref[k])
				rec_release(bt, g->ref[k] - 1);
		g->used = 0;
	} else if (g->size == 0) {
		int k = bt_psid_of(port_lo, g->psid_offset, g->psid_len);

		if (k < 0 || !g->ref[k])
			return -ENOENT;
		rec_release(bt, g->ref[k] - 1);
		g->ref[k] = 0;
		g->used--;
	} else {
		long k;

		if (port_lo < g->base || (port_lo - g->base) % g->size != 0)
			return -ENOENT;
		k = (port_lo - g->base) / g->size;
		if (!g->ref[k])
			return -ENOENT;
		rec_release(bt, g->ref[k] - 1);
		g->ref[k] = 0;
		g->used--;
	}
	if (g->used == 0) {
		group_free(bt, gidx);
		ref_clear(bt, refp, hidx);
	}
	return 0;
}

uint32_t
bt_prefetch(const struct bt *bt, uint32_t v4)
{
	return bt_prefetch_inline(bt, v4);
}

struct bt_binding *
bt_find_hashed(const struct bt *bt, uint32_t hash, uint32_t v4, uint16_t port)
{
	return bt_find_inline(bt, hash, v4, port);
}

struct bt_binding *
bt_lookup(const struct bt *bt, uint32_t v4, uint16_t port)
{
	return bt_find_hashed(bt, bt_hash(v4), v4, port);
}

void
bt_lookup_batch(const struct bt *bt, const uint32_t *v4, const uint16_t *port, unsigned n,
                struct bt_binding **out)
{
	uint32_t h[32];

	for (unsigned base = 0; base < n; base += 32) {
		unsigned m = n - base < 32 ? n - base : 32;

		for (unsigned i = 0; i < m; i++)
			h[i] = bt_prefetch(bt, v4[base + i]);
		for (unsigned i = 0; i < m; i++) {
			out[base + i] = bt_find_hashed(bt, h[i], v4[base + i], port[base + i]);
			if (out[base + i])
				__builtin_prefetch(out[base + i], 1);
		}
	}
}

bool
bt_is_shared(const struct bt *bt, uint32_t v4)
{
	uint32_t hidx, *r = ref_find(bt, v4, &hidx);

	return *r != 0 && (*r & BT_REF_GROUP);
}

bool
bt_is_psid(const struct bt *bt, uint32_t v4)
{
	uint32_t hidx, *r = ref_find(bt, v4, &hidx);

	return *r != 0 && (*r & BT_REF_GROUP) && bt->groups[*r & ~BT_REF_GROUP]->size == 0;
}

size_t
bt_count(const struct bt *bt)
{
	return bt->count;
}

static size_t
direct_bytes(const struct bt *bt)
{
	size_t n = 0;

	for (unsigned i = 0; i < bt->ndirect; i++)
		n += (size_t)bt->direct[i].size * sizeof(uint32_t);
	return n;
}

size_t
bt_memory(const struct bt *bt)
{
	return sizeof(*bt) + (size_t)(bt->mask + 1) * sizeof(struct bt_slot) +
	       (size_t)bt->nchunks * BT_CHUNK * sizeof(struct bt_binding) +
	       bt->chunks_cap * sizeof(*bt->chunks) + bt->free_cap * sizeof(*bt->free) +
	       bt->groups_cap * sizeof(*bt->groups) + bt->group_bytes + direct_bytes(bt);
}

struct bt_binding *
bt_next(const struct bt *bt, uint32_t *cursor)
{
	while (*cursor < bt->nrecords) {
		struct bt_binding *b = bt_rec(bt, (*cursor)++);

		if (b->flags & BT_F_USED)
			return b;
	}
	return NULL;
}

unsigned
bt_expire_learned(struct bt *bt, uint32_t older_than, unsigned budget)
{
	unsigned removed = 0;

	for (unsigned n = 0; n < budget && bt->nrecords; n++) {
		struct bt_binding *b;

		if (bt->expire_cursor >= bt->nrecords)
			bt->expire_cursor = 0;
		b = bt_rec(bt, bt->expire_cursor++);
		if ((b->flags & (BT_F_USED | BT_F_LEARNED)) == (BT_F_USED | BT_F_LEARNED) &&
		    (int32_t)(b->last_seen - older_than) < 0) {
			if (bt_del(bt, b->v4, b->port_lo, false) == 0)
				removed++;
		}
	}
	return removed;
}
