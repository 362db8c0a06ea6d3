/*
 * The pool allocator. Configured ranges minus exclusions become a sorted
 * list of disjoint ranges; an address's index is its offset in that list
 * and a slot is index * slots_per_addr + port block (or PSID). Each slot lives in
 * exactly one of three states; free and quarantined slots are threaded on
 * two intrusive doubly-linked lists (uint32 prev/next arrays): the free
 * queue (alloc at the head, freed slots appended at the tail) and the
 * quarantine list kept sorted by end time, so that ending quarantines is
 * a walk from its head. With a constant quarantine and a clock that does
 * not go back, a release appends at the tail: O(1). Quarantine ends are
 * kept as uint32 seconds (good until 2106) to hold 13 bytes per slot.
 */
#include <errno.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "pool/pool.h"

#define NIL UINT32_MAX

struct pool {
	char *name;
	struct pool_range *ranges; /* sorted, disjoint, after exclusions */
	uint32_t *base;            /* address index of ranges[i].first */
	size_t nranges;
	uint32_t naddr;
	unsigned port_range_size;       /* N, 0: whole addresses */
	unsigned per_addr;              /* slots per address */
	unsigned psid_offset, psid_len; /* a PSID pool when psid_len > 0 */
	uint32_t size;

	uint32_t *next, *prev;
	uint32_t *until; /* quarantine end, seconds */
	uint8_t *state;  /* enum pool_slot_state */
	uint32_t free_head, free_tail;
	uint32_t q_head, q_tail;
	uint32_t nused, nquar, nfree;
};

static int
range_cmp(const void *a, const void *b)
{
	const struct pool_range *x = a, *y = b;

	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->last < y->last ? -1 : x->last > y->last;
}

bool
pool_range_parse(const char *s, struct pool_range *out, char *err, size_t errlen)
{
	char buf[ADDR_STRLEN];
	const char *dash;
	uint32_t a, b;
	unsigned plen;

	if (strchr(s, '/') != NULL) {
		if (!addr_parse_prefix4(s, &a, &plen)) {
			snprintf(err, errlen,
			         "%s is not an IPv4 prefix (a.b.c.d/len, no host bits)", s);
			return false;
		}
		b = a | ~addr_mask4(plen);
		/* A /31 (RFC 3021) and a /32 have no network or broadcast address. */
		if (plen < 31) {
			a++;
			b--;
		}
		out->first = a;
		out->last = b;
		return true;
	}
	if ((dash = strchr(s, '-')) != NULL) {
		size_t n = (size_t)(dash - s);

		if (n >= sizeof(buf)) {
			snprintf(err, errlen, "%.64s… is not an IPv4 range", s);
			return false;
		}
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (!addr_parse_v4(buf, &a) || !addr_parse_v4(dash + 1, &b)) {
			snprintf(err, errlen, "%s is not an IPv4 range (a.b.c.d-e.f.g.h)", s);
			return false;
		}
		if (a > b) {
			snprintf(err, errlen, "%s: the range ends before it starts", s);
			return false;
		}
		out->first = a;
		out->last = b;
		return true;
	}
	if (!addr_parse_v4(s, &a)) {
		snprintf(err, errlen, "%s is not an IPv4 address, prefix or range", s);
		return false;
	}
	out->first = out->last = a;
	return true;
}

/* Sorted `in` minus sorted, merged `ex` into `out` (room for nin + nex ranges). */
static size_t
ranges_subtract(const struct pool_range *in, size_t nin, const struct pool_range *ex, size_t nex,
                struct pool_range *out)
{
	size_t n = 0, j = 0;

	for (size_t i = 0; i < nin; i++) {
		uint64_t cur = in[i].first, last = in[i].last;

		while (j < nex && ex[j].last < cur)
			j++;
		for (size_t e = j; e < nex && ex[e].first <= last && cur <= last; e++) {
			if (ex[e].first > cur)
				out[n++] = (struct pool_range){(uint32_t)cur, ex[e].first - 1};
			if ((uint64_t)ex[e].last + 1 > cur)
				cur = (uint64_t)ex[e].last + 1;
		}
		if (cur <= last)
			out[n++] = (struct pool_range){(uint32_t)cur, (uint32_t)last};
	}
	return n;
}

static void
list_unlink(struct pool *p, uint32_t s, uint32_t *head, uint32_t *tail)
{
	uint32_t pv = p->prev[s], nx = p->next[s];

	if (pv == NIL)
		*head = nx;
	else
		p->next[pv] = nx;
	if (nx == NIL)
		*tail = pv;
	else
		p->prev[nx] = pv;
	p->prev[s] = p->next[s] = NIL;
}

static void
list_append(struct pool *p, uint32_t s, uint32_t *head, uint32_t *tail)
{
	p->next[s] = NIL;
	p->prev[s] = *tail;
	if (*tail == NIL)
		*head = s;
	else
		p->next[*tail] = s;
	*tail = s;
}

struct pool *
pool_new(const struct pool_config *cfg, char *err, size_t errlen)
{
	struct pool *p = NULL;
	struct pool_range *in = NULL, *ex = NULL;
	const char *name = cfg->name != NULL ? cfg->name : "";
	char b1[ADDR_STRLEN], b2[ADDR_STRLEN], b3[ADDR_STRLEN], b4[ADDR_STRLEN];
	uint64_t naddr = 0, size;
	size_t nex = 0;

	if (cfg->nranges == 0) {
		snprintf(err, errlen, "pool \"%s\": no prefixes or ranges", name);
		return NULL;
	}
	if (cfg->port_range_size > POOL_PORTS) {
		snprintf(err, errlen,
		         "pool \"%s\": port_range_size %u is above %u (ports 1024-65535); use 0 "
		         "for whole addresses",
		         name, cfg->port_range_size, POOL_PORTS);
		return NULL;
	}
	if (cfg->psid_len &&
	    (cfg->port_range_size || cfg->psid_len + cfg->psid_offset > 16 || cfg->psid_len > 15)) {
		snprintf(err, errlen, "pool \"%s\": psid_length %u with psid_offset %u: %s", name,
		         cfg->psid_len, cfg->psid_offset,
		         cfg->port_range_size
		             ? "a pool has port ranges or PSID sets, not both"
		             : "offset + length must stay within 16 bits, length 15 at most");
		return NULL;
	}
	in = calloc(cfg->nranges, sizeof(*in));
	ex = calloc(cfg->nexcludes + 1, sizeof(*ex));
	if (in == NULL || ex == NULL)
		goto nomem;
	memcpy(in, cfg->ranges, cfg->nranges * sizeof(*in));
	qsort(in, cfg->nranges, sizeof(*in), range_cmp);
	for (size_t i = 0; i < cfg->nranges; i++) {
		if (in[i].first > in[i].last) {
			snprintf(err, errlen, "pool \"%s\": range %s-%s ends before it starts",
			         name, addr_fmt_v4(in[i].first, b1), addr_fmt_v4(in[i].last, b2));
			goto fail;
		}
		if (i > 0 && in[i].first <= in[i - 1].last) {
			snprintf(err, errlen,
			         "pool \"%s\": %s-%s overlaps %s-%s; list each address once", name,
			         addr_fmt_v4(in[i - 1].first, b1), addr_fmt_v4(in[i - 1].last, b2),
			         addr_fmt_v4(in[i].first, b3), addr_fmt_v4(in[i].last, b4));
			goto fail;
		}
	}
	/* Exclusions may overlap each other: merge them. */
	if (cfg->nexcludes > 0) {
		struct pool_range *tmp = calloc(cfg->nexcludes, sizeof(*tmp));

		if (tmp == NULL)
			goto nomem;
		memcpy(tmp, cfg->excludes, cfg->nexcludes * sizeof(*tmp));
		qsort(tmp, cfg->nexcludes, sizeof(*tmp), range_cmp);
		for (size_t i = 0; i < cfg->nexcludes; i++) {
			if (tmp[i].first > tmp[i].last) {
				snprintf(err, errlen,
				         "pool \"%s\": exclusion %s-%s ends before it starts", name,
				         addr_fmt_v4(tmp[i].first, b1),
				         addr_fmt_v4(tmp[i].last, b2));
				free(tmp);
				goto fail;
			}
			if (nex > 0 && (uint64_t)tmp[i].first <= (uint64_t)ex[nex - 1].last + 1) {
				if (tmp[i].last > ex[nex - 1].last)
					ex[nex - 1].last = tmp[i].last;
			} else
				ex[nex++] = tmp[i];
		}
		free(tmp);
	}

	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto nomem;
	p->ranges = calloc(cfg->nranges + nex, sizeof(*p->ranges));
	p->name = strdup(name);
	if (p->ranges == NULL || p->name == NULL)
		goto nomem;
	p->nranges = ranges_subtract(in, cfg->nranges, ex, nex, p->ranges);
	p->base = calloc(p->nranges + 1, sizeof(*p->base));
	if (p->base == NULL)
		goto nomem;
	for (size_t i = 0; i < p->nranges; i++) {
		uint64_t n = (uint64_t)p->ranges[i].last - p->ranges[i].first + 1;

		p->base[i] = naddr > UINT32_MAX ? UINT32_MAX : (uint32_t)naddr;
		naddr += n;
	}
	if (naddr == 0) {
		snprintf(err, errlen, "pool \"%s\" is empty: its exclusions remove every address",
		         name);
		goto fail;
	}
	p->port_range_size = cfg->port_range_size;
	p->per_addr = cfg->port_range_size ? POOL_PORTS / cfg->port_range_size : 1;
	if (cfg->psid_len) {
		p->psid_offset = cfg->psid_offset;
		p->psid_len = cfg->psid_len;
		p->per_addr = 1u << cfg->psid_len;
	}
	size = naddr * p->per_addr;
	if (size > POOL_MAX_SLOTS) {
		snprintf(
		    err, errlen,
		    "pool \"%s\" has %llu slots (%llu addresses x %u port ranges); at most %u: "
		    "use fewer addresses or larger port ranges",
		    name, (unsigned long long)size, (unsigned long long)naddr, p->per_addr,
		    POOL_MAX_SLOTS);
		goto fail;
	}
	p->naddr = (uint32_t)naddr;
	p->size = (uint32_t)size;
	p->next = malloc(size * sizeof(*p->next));
	p->prev = malloc(size * sizeof(*p->prev));
	p->until = calloc(size, sizeof(*p->until));
	p->state = calloc(size, sizeof(*p->state));
	if (p->next == NULL || p->prev == NULL || p->until == NULL || p->state == NULL)
		goto nomem;
	for (uint32_t s = 0; s < p->size; s++) {
		p->prev[s] = s == 0 ? NIL : s - 1;
		p->next[s] = s + 1 == p->size ? NIL : s + 1;
		p->state[s] = POOL_SLOT_FREE;
	}
	p->free_head = 0;
	p->free_tail = p->size - 1;
	p->q_head = p->q_tail = NIL;
	p->nfree = p->size;
	free(in);
	free(ex);
	return p;
nomem:
	snprintf(err, errlen, "pool \"%s\": out of memory", name);
fail:
	free(in);
	free(ex);
	pool_free(p);
	return NULL;
}

void
pool_reset(struct pool *p)
{
	for (uint32_t s = 0; s < p->size; s++) {
		p->prev[s] = s == 0 ? NIL : s - 1;
		p->next[s] = s + 1 == p->size ? NIL : s + 1;
		p->state[s] = POOL_SLOT_FREE;
		p->until[s] = 0;
	}
	p->free_head = 0;
	p->free_tail = p->size - 1;
	p->q_head = p->q_tail = NIL;
	p->nfree = p->size;
	p->nused = p->nquar = 0;
}

void
pool_rotate(struct pool *p, uint32_t slot)
{
	uint32_t k, pv;

	if (p->free_head == NIL || slot >= p->size)
		return;
	/* The first free slot at or after `slot`, wrapping around. */
	for (k = slot; p->state[k] != POOL_SLOT_FREE;)
		k = k + 1 == p->size ? 0 : k + 1;
	if (k == p->free_head)
		return;
	/* The queue is a ring cut before k: head..prev(k) goes after the tail. */
	pv = p->prev[k];
	p->next[p->free_tail] = p->free_head;
	p->prev[p->free_head] = p->free_tail;
	p->prev[k] = NIL;
	p->next[pv] = NIL;
	p->free_head = k;
	p->free_tail = pv;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->ranges);
	free(p->base);
	free(p->next);
	free(p->prev);
	free(p->until);
	free(p->state);
	free(p);
}

const char *
pool_name(const struct pool *p)
{
	return p->name;
}

unsigned
pool_port_range_size(const struct pool *p)
{
	return p->port_range_size;
}

void
pool_psid(const struct pool *p, unsigned *offset, unsigned *psid_len)
{
	*offset = p->psid_offset;
	*psid_len = p->psid_len;
}

unsigned
pool_slots_per_addr(const struct pool *p)
{
	return p->per_addr;
}

void
pool_stats(const struct pool *p, struct pool_stats *st)
{
	st->size = p->size;
	st->used = p->nused;
	st->quarantined = p->nquar;
	st->free = p->nfree;
}

bool
pool_overlaps(const struct pool *a, const struct pool *b)
{
	size_t i = 0, j = 0;

	while (i < a->nranges && j < b->nranges) {
		if (a->ranges[i].last < b->ranges[j].first)
			i++;
		else if (b->ranges[j].last < a->ranges[i].first)
			j++;
		else
			return true;
	}
	return false;
}

unsigned
pool_tick(struct pool *p, int64_t now)
{
	unsigned n = 0;

	while (p->q_head != NIL && (int64_t)p->until[p->q_head] <= now) {
		uint32_t s = p->q_head;

		list_unlink(p, s, &p->q_head, &p->q_tail);
		list_append(p, s, &p->free_head, &p->free_tail);
		p->state[s] = POOL_SLOT_FREE;
		p->until[s] = 0;
		p->nquar--;
		p->nfree++;
		n++;
	}
	return n;
}

int
pool_alloc(struct pool *p, int64_t now, uint32_t *slot)
{
	uint32_t s;

	pool_tick(p, now);
	if ((s = p->free_head) == NIL)
		return -ENOSPC;
	list_unlink(p, s, &p->free_head, &p->free_tail);
	p->state[s] = POOL_SLOT_USED;
	p->nfree--;
	p->nused++;
	*slot = s;
	return 0;
}

int
pool_take(struct pool *p, uint32_t slot, int64_t now)
{
	if (slot >= p->size)
		return -ENOENT;
	pool_tick(p, now);
	if (p->state[slot] != POOL_SLOT_FREE)
		return -EBUSY;
	list_unlink(p, slot, &p->free_head, &p->free_tail);
	p->state[slot] = POOL_SLOT_USED;
	p->nfree--;
	p->nused++;
	return 0;
}

int
pool_reclaim(struct pool *p, uint32_t slot, int64_t now)
{
	if (slot >= p->size)
		return -ENOENT;
	pool_tick(p, now);
	if (p->state[slot] != POOL_SLOT_QUARANTINED)
		return pool_take(p, slot, now);
	list_unlink(p, slot, &p->q_head, &p->q_tail);
	p->state[slot] = POOL_SLOT_USED;
	p->until[slot] = 0;
	p->nquar--;
	p->nused++;
	return 0;
}

void
pool_release(struct pool *p, uint32_t slot, int64_t quarantine_until)
{
	uint32_t u, at;

	if (slot >= p->size || p->state[slot] != POOL_SLOT_USED)
		fatalx("pool %s: release of slot %u which is not in use", p->name, slot);
	u = quarantine_until < 0            ? 0
	    : quarantine_until > UINT32_MAX ? UINT32_MAX
	                                    : (uint32_t)quarantine_until;
	/* Keep the list sorted by end; the usual release goes to the tail. */
	at = p->q_tail;
	while (at != NIL && p->until[at] > u)
		at = p->prev[at];
	p->until[slot] = u;
	p->state[slot] = POOL_SLOT_QUARANTINED;
	p->prev[slot] = at;
	if (at == NIL) {
		p->next[slot] = p->q_head;
		if (p->q_head != NIL)
			p->prev[p->q_head] = slot;
		p->q_head = slot;
	} else {
		p->next[slot] = p->next[at];
		if (p->next[at] != NIL)
			p->prev[p->next[at]] = slot;
		p->next[at] = slot;
	}
	if (p->next[slot] == NIL)
		p->q_tail = slot;
	p->nused--;
	p->nquar++;
}

/* Index of the range holding v4, or -1. */
static ssize_t
range_of(const struct pool *p, uint32_t v4)
{
	size_t lo = 0, hi = p->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->ranges[mid].last < v4)
			lo = mid + 1;
		else if (p->ranges[mid].first > v4)
			hi = mid;
		else
			return (ssize_t)mid;
	}
	return -1;
}

bool
pool_contains(const struct pool *p, uint32_t v4)
{
	return range_of(p, v4) >= 0;
}

bool
pool_find(const struct pool *p, uint32_t v4, uint16_t port, uint32_t *slot)
{
	ssize_t r = range_of(p, v4);
	uint32_t idx, block = 0;

	if (r < 0)
		return false;
	idx = p->base[r] + (v4 - p->ranges[r].first);
	if (p->psid_len != 0) {
		/* RFC 7597 §5.1: i (the first a bits) is never 0 when a > 0. */
		if (p->psid_offset && (port >> (16 - p->psid_offset)) == 0)
			return false;
		block = (port >> (16 - p->psid_offset - p->psid_len)) & (p->per_addr - 1);
	} else if (p->port_range_size != 0) {
		if (port < POOL_PORT_FIRST)
			return false;
		block = (port - POOL_PORT_FIRST) / p->port_range_size;
		if (block >= p->per_addr)
			return false;
	}
	*slot = idx * p->per_addr + block;
	return true;
}

void
pool_slot(const struct pool *p, uint32_t slot, uint32_t *v4, uint16_t *port_lo, uint16_t *port_hi)
{
	uint32_t idx = slot / p->per_addr, block = slot % p->per_addr;
	size_t lo = 0, hi = p->nranges;

	/* The last range whose base is <= idx. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->base[mid] <= idx)
			lo = mid;
		else
			hi = mid;
	}
	*v4 = p->ranges[lo].first + (idx - p->base[lo]);
	if (p->psid_len != 0) {
		unsigned a = p->psid_offset, m = 16 - a - p->psid_len;

		*port_lo = (uint16_t)((a ? 1u << (16 - a) : 0) | block << m);
		*port_hi = (uint16_t)((0xffffu << (16 - a)) | block << m | ((1u << m) - 1));
	} else if (p->port_range_size == 0) {
		*port_lo = *port_hi = 0;
	} else {
		*port_lo = (uint16_t)(POOL_PORT_FIRST + block * p->port_range_size);
		*port_hi = (uint16_t)(*port_lo + p->port_range_size - 1);
	}
}

enum pool_slot_state
pool_slot_state(const struct pool *p, uint32_t slot, int64_t now)
{
	if (slot >= p->size)
		return POOL_SLOT_USED;
	if (p->state[slot] == POOL_SLOT_QUARANTINED && (int64_t)p->until[slot] <= now)
		return POOL_SLOT_FREE;
	return (enum pool_slot_state)p->state[slot];
}
