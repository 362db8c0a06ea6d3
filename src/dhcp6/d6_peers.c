/*
 * Where each directly attached DHCPv6 client was last heard, by DUID (see
 * d6.h): a hash table for the look-up and a list ordered by when each
 * client was last heard, for the eviction. A client that sends again
 * moves to the front; a new client in a full table takes the place of the
 * one at the back. Without the eviction the table of a server that runs
 * for months fills with clients long gone, and every client after them
 * goes unreached. Pure: no I/O, no clock (the order is the order of notes).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "dhcp6/d6.h"

struct d6_peer {
	struct d6_peer *hnext;         /* the next in its bucket */
	struct d6_peer *newer, *older; /* the list by when last heard */
	struct sockaddr_in6 addr;
	size_t duid_len;
	uint8_t duid[D6_DUID_MAX + 2];
};

/* Memory: cap × about 200 bytes, plus a bucket pointer for every 4 clients. */
struct d6_peers {
	struct d6_peer **bucket;
	size_t mask; /* buckets - 1, a power of two */
	size_t n, cap;
	uint64_t evicted;
	struct d6_peer *newest, *oldest;
};

struct d6_peers *
d6_peers_new(size_t cap)
{
	struct d6_peers *ps;
	size_t nb = 16;

	if (cap == 0 || !(ps = calloc(1, sizeof(*ps))))
		return NULL;
	while (nb < cap / 4 && nb < ((size_t)1 << 20))
		nb *= 2;
	if (!(ps->bucket = calloc(nb, sizeof(*ps->bucket)))) {
		free(ps);
		return NULL;
	}
	ps->mask = nb - 1;
	ps->cap = cap;
	return ps;
}

void
d6_peers_free(struct d6_peers *ps)
{
	struct d6_peer *p, *next;

	if (!ps)
		return;
	for (p = ps->newest; p; p = next) {
		next = p->older;
		free(p);
	}
	free(ps->bucket);
	free(ps);
}

static struct d6_peer **
slot_of(const struct d6_peers *ps, const uint8_t *duid, size_t len)
{
	return &ps->bucket[hash_bytes(duid, len) & ps->mask];
}

static struct d6_peer *
lookup(const struct d6_peers *ps, const uint8_t *duid, size_t len)
{
	struct d6_peer *p;

	for (p = *slot_of(ps, duid, len); p; p = p->hnext)
		if (p->duid_len == len && !memcmp(p->duid, duid, len))
			return p;
	return NULL;
}

static void
list_unlink(struct d6_peers *ps, struct d6_peer *p)
{
	if (p->newer)
		p->newer->older = p->older;
	else
		ps->newest = p->older;
	if (p->older)
		p->older->newer = p->newer;
	else
		ps->oldest = p->newer;
	p->newer = p->older = NULL;
}

static void
list_push(struct d6_peers *ps, struct d6_peer *p)
{
	p->older = ps->newest;
	p->newer = NULL;
	if (ps->newest)
		ps->newest->newer = p;
	else
		ps->oldest = p;
	ps->newest = p;
}

/* Take `p` out of its bucket (it is there). */
static void
bucket_unlink(struct d6_peers *ps, struct d6_peer *p)
{
	struct d6_peer **pp = slot_of(ps, p->duid, p->duid_len);

	while (*pp != p)
		pp = &(*pp)->hnext;
	*pp = p->hnext;
}

int
d6_peers_note(struct d6_peers *ps, const uint8_t *duid, size_t len, const struct sockaddr_in6 *addr)
{
	struct d6_peer *p, **slot;

	if (!duid || len == 0 || len > sizeof(p->duid))
		return -EINVAL;
	if ((p = lookup(ps, duid, len))) {
		p->addr = *addr;
		list_unlink(ps, p);
		list_push(ps, p);
		return 0;
	}
	if (ps->n >= ps->cap) {
		/* The client heard longest ago gives its place (and its memory). */
		p = ps->oldest;
		list_unlink(ps, p);
		bucket_unlink(ps, p);
		ps->n--;
		ps->evicted++;
	} else if (!(p = malloc(sizeof(*p)))) {
		return -ENOMEM;
	}
	p->addr = *addr;
	p->duid_len = len;
	memcpy(p->duid, duid, len);
	slot = slot_of(ps, duid, len);
	p->hnext = *slot;
	*slot = p;
	list_push(ps, p);
	ps->n++;
	return 0;
}

const struct sockaddr_in6 *
d6_peers_find(const struct d6_peers *ps, const uint8_t *duid, size_t len)
{
	const struct d6_peer *p;

	if (!ps || !duid || len == 0 || len > sizeof(p->duid))
		return NULL;
	p = lookup(ps, duid, len);
	return p ? &p->addr : NULL;
}

size_t
d6_peers_count(const struct d6_peers *ps)
{
	return ps ? ps->n : 0;
}

uint64_t
d6_peers_evicted(const struct d6_peers *ps)
{
	return ps ? ps->evicted : 0;
}
