/*
 * The binding table's layout (see binding.h) and its lookup, shared by
 * binding.c and the forwarding core, which inlines the lookup into its
 * per-packet loop instead of calling through binding.h for every packet.
 * Nothing outside src/dataplane includes this.
 */
#ifndef DSTM_BT_INTERNAL_H
#define DSTM_BT_INTERNAL_H

#include "dataplane/binding.h"

#define BT_CHUNK_SHIFT 15 /* 32768 records: one 2 MiB huge page */
#define BT_CHUNK       (1u << BT_CHUNK_SHIFT)
#define BT_REF_GROUP   0x80000000u
#define BT_MAX_RECORDS 0x7ffffff0u
#define BT_DIRECT_MAX  (1u << 22) /* pool addresses indexed directly: 16 MiB of refs */

struct bt_slot {
	uint32_t v4;
	uint32_t ref; /* 0 empty; BT_REF_GROUP | group index; else record index + 1 */
};

/*
 * The ranges of one shared address: ref[(port - base) / size]; or, when
 * size is 0, its PSID sets (binding.h): ref[psid], nslots = 2^psid_len.
 */
struct bt_group {
	uint32_t v4;
	uint16_t base, size;
	uint8_t psid_offset, psid_len;
	uint32_t nslots, used;
	uint32_t ref[]; /* record index + 1, or 0 */
};

struct bt {
	struct bt_slot *slots;
	uint32_t mask;       /* number of slots - 1 (a power of two minus one) */
	uint32_t slots_used; /* distinct addresses */
	struct bt_binding **chunks;
	uint32_t nchunks, chunks_cap;
	uint32_t nrecords; /* records ever handed out (high-water mark) */
	uint32_t count;    /* bindings */
	uint32_t *free;    /* stack of freed record indexes */
	uint32_t nfree, free_cap;
	struct bt_group **groups;
	uint32_t ngroups, groups_cap;
	size_t group_bytes;
	uint32_t expire_cursor;
	/* Pools indexed directly by address: ref[v4 - base]. */
	unsigned ndirect;
	struct bt_direct {
		uint32_t base, size;
		uint32_t *ref;
	} direct[BT_DIRECT_POOLS];
};

static inline uint32_t
bt_hash(uint32_t v4)
{
	v4 ^= v4 >> 16;
	v4 *= 0x85ebca6bu;
	v4 ^= v4 >> 13;
	v4 *= 0xc2b2ae35u;
	v4 ^= v4 >> 16;
	return v4;
}

static inline struct bt_binding *
bt_rec(const struct bt *bt, uint32_t idx)
{
	return &bt->chunks[idx >> BT_CHUNK_SHIFT][idx & (BT_CHUNK - 1)];
}

/* The directly indexed ref of v4, or NULL when v4 is in no such pool. */
static inline uint32_t *
bt_direct_ref(const struct bt *bt, uint32_t v4)
{
	for (unsigned i = 0; i < bt->ndirect; i++)
		if (v4 - bt->direct[i].base < bt->direct[i].size)
			return &bt->direct[i].ref[v4 - bt->direct[i].base];
	return NULL;
}

static inline struct bt_binding *
bt_resolve(const struct bt *bt, uint32_t ref, uint16_t port)
{
	const struct bt_group *g;
	uint32_t k;

	if (!(ref & BT_REF_GROUP))
		return bt_rec(bt, ref - 1);
	g = bt->groups[ref & ~BT_REF_GROUP];
	if (g->size == 0) {
		int psid = bt_psid_of(port, g->psid_offset, g->psid_len);

		if (psid < 0 || !g->ref[psid])
			return NULL;
		return bt_rec(bt, g->ref[psid] - 1);
	}
	if (port < g->base)
		return NULL;
	k = (uint32_t)(port - g->base) / g->size;
	if (k >= g->nslots || !g->ref[k])
		return NULL;
	return bt_rec(bt, g->ref[k] - 1);
}

static inline uint32_t
bt_prefetch_inline(const struct bt *bt, uint32_t v4)
{
	const uint32_t *r = bt_direct_ref(bt, v4);
	uint32_t h;

	if (r) {
		__builtin_prefetch(r);
		return 0;
	}
	h = bt_hash(v4);
	__builtin_prefetch(&bt->slots[h & bt->mask]);
	return h;
}

static inline struct bt_binding *
bt_find_inline(const struct bt *bt, uint32_t hash, uint32_t v4, uint16_t port)
{
	const uint32_t *r = bt_direct_ref(bt, v4);
	uint32_t i = hash & bt->mask;

	if (r)
		return *r ? bt_resolve(bt, *r, port) : NULL;
	for (uint32_t n = 0; n <= bt->mask; n++) {
		const struct bt_slot *s = &bt->slots[i];

		if (s->ref == 0)
			return NULL;
		if (s->v4 == v4)
			return bt_resolve(bt, s->ref, port);
		i = (i + 1) & bt->mask;
	}
	return NULL;
}

#endif
