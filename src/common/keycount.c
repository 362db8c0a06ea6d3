/*
 * Counters keyed by 64-bit values: see keycount.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/keycount.h"

uint64_t
keycount_prefix64(const struct in6_addr *a)
{
	uint64_t k;

	memcpy(&k, a->s6_addr, sizeof(k));
	return k;
}

/*
 * Keys are /64 prefixes read little-endian: the bits that differ between
 * the /64s of one site are the key's top bits, which a multiplicative
 * hash masked to the table's low bits never sees. SipHash mixes them all.
 */
static size_t
home(uint64_t key, size_t cap)
{
	return (size_t)hash_u64(key) & (cap - 1);
}

static size_t
slot_of(const struct keycount *kc, uint64_t key)
{
	size_t i = home(key, kc->cap);

	while (kc->t[i].n && kc->t[i].key != key)
		i = (i + 1) & (kc->cap - 1);
	return i;
}

static int
grow(struct keycount *kc)
{
	size_t cap = kc->cap ? kc->cap * 2 : 1024, oldcap = kc->cap;
	struct keycount_slot *old = kc->t, *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	kc->t = t;
	kc->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].n)
			kc->t[slot_of(kc, old[i].key)] = old[i];
	free(old);
	return 0;
}

int
keycount_add(struct keycount *kc, uint64_t key, int delta)
{
	size_t i, j;

	if (delta > 0 && (kc->used + 1) * 4 >= kc->cap * 3 && grow(kc) < 0 &&
	    kc->used + 1 >= kc->cap)
		return -ENOMEM;
	if (!kc->cap)
		return 0;
	i = slot_of(kc, key);
	if (delta > 0) {
		if (!kc->t[i].n) {
			kc->t[i].key = key;
			kc->used++;
		}
		kc->t[i].n += (uint32_t)delta;
		return 0;
	}
	if (!kc->t[i].n)
		return 0;
	if (kc->t[i].n > (uint32_t)-delta) {
		kc->t[i].n -= (uint32_t)-delta;
		return 0;
	}
	/* The key leaves: shift back every follower whose home allows it. */
	kc->t[i].n = 0;
	kc->used--;
	for (j = (i + 1) & (kc->cap - 1); kc->t[j].n; j = (j + 1) & (kc->cap - 1)) {
		size_t h = home(kc->t[j].key, kc->cap);

		/* j may move to i unless its home lies cyclically in (i, j]. */
		if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
			kc->t[i] = kc->t[j];
			kc->t[j].n = 0;
			i = j;
		}
	}
	return 0;
}

uint32_t
keycount_get(const struct keycount *kc, uint64_t key)
{
	return kc->cap ? kc->t[slot_of(kc, key)].n : 0;
}

void
keycount_free(struct keycount *kc)
{
	free(kc->t);
	kc->t = NULL;
	kc->cap = kc->used = 0;
}
