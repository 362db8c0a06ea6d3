/*
 * The XDP data plane's loader (xdp.h): the skeleton of xdp_tep.bpf.c,
 * sized maps, native attach, and the queue that turns binding changes
 * into batched map updates. A binding written again (dstmd re-pushes
 * them, a path MTU changes) keeps its counters: the old value's counters
 * are read and carried into the new one.
 *
 * Both maps are arrays (xdp_tep.h): an address's entry is found from its
 * pool, and each shared address gets a block of the ranges array, one
 * entry for every range its size allows, handed out here as binding.c
 * hands out its groups. Arrays have no delete: an entry is removed by
 * writing it absent (present 0), and a block let go is cleared only after
 * the batch that stops its address pointing at it, then reused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "xdp/xdp.h"
#include "xdp/xtep.skel.h"

#define QUEUE 4096 /* bindings per batch */
#define ZERO  1024 /* range entries cleared per batch */

/* What the loader knows of an address (the maps' authority between flushes). */
struct shadow {
	uint32_t rblock; /* its ranges block + 1; 0 none; CORE: the userspace core's */
	uint16_t size, base;
};
#define CORE UINT32_MAX

/* Free blocks of one length (the shared addresses of one range size). */
struct freelist {
	uint32_t n; /* entries a block */
	uint32_t *start, count, cap;
};

struct xtep {
	struct xtep_skel *skel;
	int link6, link4; /* bpf_link fds: closing them (or exiting) detaches */
	int fd_addrs, fd_ranges, fd_ctr;
	unsigned ncpus;
	unsigned npools;
	struct xtep_pool pools[XTEP_MAX_POOLS];
	struct shadow *sh; /* one an addrs index */
	/* The ranges array: blocks handed out below rnext, freed ones in lists. */
	uint32_t rnext, rcap;
	struct freelist *fl;
	unsigned nfl;
	/* Blocks let go in this batch: cleared and freed after it, so that no
	 * address still pointing at one finds another's ranges there. */
	struct limbo {
		uint32_t start, n;
	} * limbo;
	uint32_t nlimbo, limbo_cap;
	/* Queued updates, one array per map. */
	uint32_t naddrs, nranges;
	uint32_t akeys[QUEUE];
	struct xtep_addr avals[QUEUE];
	uint32_t rkeys[QUEUE];
	struct xtep_range rvals[QUEUE];
};

static const char *const names[XC__COUNT] = {
#define XTEP_X_NAME(n) #n,
    XTEP_DP_COUNTERS(XTEP_X_NAME) XTEP_OWN_COUNTERS(XTEP_X_NAME)
#undef XTEP_X_NAME
};

const char *
xtep_counter_name(enum xtep_counter c)
{
	return (unsigned)c < XC__COUNT ? names[c] : "?";
}

static int
silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* The verifier's log is long; a failed load is reported by its errno. */
	return 0;
}

int
xtep_open(const struct xtep_config *c, struct xtep **out)
{
	struct xtep *x = calloc(1, sizeof(*x));
	uint64_t total = 0;
	struct xtep_cfg *k;
	int rc;

	if (!x)
		return -ENOMEM;
	x->link6 = x->link4 = -1;
	if (c->npools == 0 || c->npools > XTEP_MAX_POOLS) {
		rc = -EINVAL;
		goto fail;
	}
	for (unsigned i = 0; i < c->npools; i++) {
		uint32_t m = c->pool_plen[i] ? ~0u << (32 - c->pool_plen[i]) : 0;
		struct xtep_pool *p = &x->pools[i];

		if (c->pool_plen[i] == 0 || c->pool_plen[i] > 32) {
			rc = -EINVAL;
			goto fail;
		}
		p->first = c->pool_addr[i] & m;
		p->size = (uint32_t)(UINT64_C(1) << (32 - c->pool_plen[i]));
		p->index = (uint32_t)total;
		total += p->size;
		if (total > XTEP_DIRECT_MAX) {
			rc = -E2BIG;
			goto fail;
		}
	}
	x->npools = c->npools;
	x->rcap = c->max_ranges ? c->max_ranges : 1;
	if (!(x->sh = calloc(total, sizeof(*x->sh)))) {
		rc = -ENOMEM;
		goto fail;
	}
	if (!getenv("DSTM_XDP_DEBUG"))
		libbpf_set_print(silent);
	x->skel = xtep_skel__open();
	if (!x->skel) {
		rc = -errno;
		goto fail;
	}
	bpf_map__set_max_entries(x->skel->maps.addrs, (uint32_t)total);
	bpf_map__set_max_entries(x->skel->maps.ranges, x->rcap);
	k = &x->skel->bss->xtep_cfg;
	memcpy(k->tep6, &c->tep6, 16);
	k->npools = x->npools;
	memcpy(k->pools, x->pools, sizeof(k->pools));
	k->mtu = c->mtu;
	k->hop_limit = c->hop_limit ? c->hop_limit : 64;
	k->learn = c->learn;
	if ((rc = xtep_skel__load(x->skel)) < 0)
		goto fail;
	x->fd_addrs = bpf_map__fd(x->skel->maps.addrs);
	x->fd_ranges = bpf_map__fd(x->skel->maps.ranges);
	x->fd_ctr = bpf_map__fd(x->skel->maps.counters);
	rc = libbpf_num_possible_cpus();
	if (rc <= 0)
		goto fail;
	x->ncpus = (unsigned)rc;
	*out = x;
	return 0;
fail:
	if (rc >= 0)
		rc = -EINVAL;
	xtep_close(x);
	return rc;
}

void
xtep_close(struct xtep *x)
{
	if (!x)
		return;
	if (x->link6 >= 0)
		close(x->link6);
	if (x->link4 >= 0)
		close(x->link4);
	xtep_skel__destroy(x->skel);
	for (unsigned i = 0; i < x->nfl; i++)
		free(x->fl[i].start);
	free(x->fl);
	free(x->limbo);
	free(x->sh);
	free(x);
}

/* A link, not a netlink attach: the programs go when the process does. */
static int
link_xdp(int prog, int ifindex)
{
	LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_DRV_MODE);
	int fd = bpf_link_create(prog, ifindex, BPF_XDP, &o);

	return fd < 0 ? -errno : fd;
}

/* A tcx link (Linux 6.6): tc ingress without a qdisc, gone with the process as XDP's. */
#define TCX_INGRESS 46 /* BPF_TCX_INGRESS, newer than Debian 12's uapi headers */

static int
link_tc(int prog, int ifindex)
{
	int fd = bpf_link_create(prog, ifindex, (enum bpf_attach_type)TCX_INGRESS, NULL);

	return fd < 0 ? -errno : fd;
}

/* prog6 on ifindex6, prog4 on ifindex4, by `link`; the links are x's. */
static int
attach_pair(struct xtep *x, int (*link)(int, int), const struct bpf_program *prog6,
            const struct bpf_program *prog4, int ifindex6, int ifindex4)
{
	int rc;

	if ((rc = link(bpf_program__fd(prog6), ifindex6)) < 0)
		return rc;
	x->link6 = rc;
	if ((rc = link(bpf_program__fd(prog4), ifindex4)) < 0)
		return rc;
	x->link4 = rc;
	return 0;
}

int
xtep_attach(struct xtep *x, int ifindex6, int ifindex4)
{
	return attach_pair(x, link_xdp, x->skel->progs.xdp_tep_v6, x->skel->progs.xdp_tep_v4,
	                   ifindex6, ifindex4);
}

int
xtep_attach_tc(struct xtep *x, int ifindex6, int ifindex4)
{
	return attach_pair(x, link_tc, x->skel->progs.tc_tep_v6, x->skel->progs.tc_tep_v4,
	                   ifindex6, ifindex4);
}

int
xtep_prog_v6(const struct xtep *x)
{
	return bpf_program__fd(x->skel->progs.xdp_tep_v6);
}

int
xtep_prog_v4(const struct xtep *x)
{
	return bpf_program__fd(x->skel->progs.xdp_tep_v4);
}

int
xtep_prog_tc_v6(const struct xtep *x)
{
	return bpf_program__fd(x->skel->progs.tc_tep_v6);
}

int
xtep_prog_tc_v4(const struct xtep *x)
{
	return bpf_program__fd(x->skel->progs.tc_tep_v4);
}

/* The addrs index of v4 (host byte order): 0, or -EINVAL outside the pools. */
static int
addr_index(const struct xtep *x, uint32_t v4, uint32_t *idx)
{
	for (unsigned i = 0; i < x->npools; i++)
		if (v4 - x->pools[i].first < x->pools[i].size) {
			*idx = x->pools[i].index + (v4 - x->pools[i].first);
			return 0;
		}
	return -EINVAL;
}

/* Entries of the block of an address whose ranges have this size and base. */
static uint32_t
block_len(uint16_t size, uint16_t base)
{
	return (65535u - base) / size + 1;
}

static struct freelist *
freelist(struct xtep *x, uint32_t n, bool create)
{
	struct freelist *f;

	for (unsigned i = 0; i < x->nfl; i++)
		if (x->fl[i].n == n)
			return &x->fl[i];
	if (!create || !(f = realloc(x->fl, (x->nfl + 1) * sizeof(*f))))
		return NULL;
	x->fl = f;
	f = &x->fl[x->nfl++];
	memset(f, 0, sizeof(*f));
	f->n = n;
	return f;
}

/* A block of n range entries, all absent: 0, or -ENOSPC when the array is full. */
static int
block_alloc(struct xtep *x, uint32_t n, uint32_t *start)
{
	struct freelist *f = freelist(x, n, false);

	if (f && f->count > 0) {
		*start = f->start[--f->count];
		return 0;
	}
	if (n > x->rcap - x->rnext)
		return -ENOSPC;
	*start = x->rnext;
	x->rnext += n;
	return 0;
}

/* Let go of v4's block (shadow sh): it is cleared and reused after the next flush. */
static int
block_release(struct xtep *x, struct shadow *sh)
{
	struct limbo *l;

	if (sh->rblock == 0 || sh->rblock == CORE)
		return 0;
	if (x->nlimbo == x->limbo_cap) {
		uint32_t cap = x->limbo_cap ? x->limbo_cap * 2 : 16;

		if (!(l = realloc(x->limbo, cap * sizeof(*l))))
			return -ENOMEM;
		x->limbo = l;
		x->limbo_cap = cap;
	}
	x->limbo[x->nlimbo++] = (struct limbo){sh->rblock - 1, block_len(sh->size, sh->base)};
	sh->rblock = 0;
	return 0;
}

/* Room for one more update in each queue. */
static int
room(struct xtep *x)
{
	return x->naddrs == QUEUE || x->nranges == QUEUE ? xtep_flush(x) : 0;
}

static struct xtep_addr *
queue_addr(struct xtep *x, uint32_t idx)
{
	struct xtep_addr *a = &x->avals[x->naddrs];

	memset(a, 0, sizeof(*a));
	x->akeys[x->naddrs++] = idx;
	a->present = 1;
	return a;
}

int
xtep_set(struct xtep *x, uint32_t v4, uint16_t lo, uint16_t hi, const struct in6_addr *v6,
         uint16_t mtu)
{
	struct xtep_addr *a;
	struct xtep_range *r;
	struct shadow *sh;
	uint32_t idx, start;
	uint16_t size, base;
	int rc;

	if (hi < lo)
		return -EINVAL;
	if ((rc = addr_index(x, v4, &idx)) < 0 || (rc = room(x)) < 0)
		return rc;
	sh = &x->sh[idx];
	if (lo == 0 && hi == 65535) {
		if ((rc = block_release(x, sh)) < 0)
			return rc;
		sh->rblock = 0;
		a = queue_addr(x, idx);
		memcpy(a->v6, v6, 16);
		a->mtu = mtu;
		return 0;
	}
	/* Ranges of one address are aligned on their size: any base works
	 * that keeps them aligned, and lo mod size is one. */
	size = (uint16_t)(hi - lo + 1);
	base = (uint16_t)(lo % size);
	if (sh->rblock == CORE)
		return 0; /* the core serves every range of this address */
	if (sh->rblock == 0 || sh->size != size || sh->base != base) {
		/* A new shared address, or one whose ranges changed size. */
		if ((rc = block_release(x, sh)) < 0)
			return rc;
		if (block_alloc(x, block_len(size, base), &start) < 0) {
			/* The ranges array is full: the userspace core serves it. */
			sh->rblock = CORE;
			queue_addr(x, idx)->size = XTEP_SIZE_CORE;
			return 0;
		}
		sh->rblock = start + 1;
		sh->size = size;
		sh->base = base;
	}
	a = queue_addr(x, idx);
	a->size = size;
	a->base = base;
	a->rbase = sh->rblock - 1;
	r = &x->rvals[x->nranges];
	memset(r, 0, sizeof(*r));
	x->rkeys[x->nranges++] = a->rbase + (uint32_t)(lo - base) / size;
	memcpy(r->v6, v6, 16);
	r->lo = lo;
	r->hi = hi;
	r->mtu = mtu;
	r->present = 1;
	return 0;
}

int
xtep_set_core(struct xtep *x, uint32_t v4)
{
	uint32_t idx;
	int rc;

	if ((rc = addr_index(x, v4, &idx)) < 0 || (rc = room(x)) < 0 ||
	    (rc = block_release(x, &x->sh[idx])) < 0)
		return rc;
	x->sh[idx].rblock = CORE;
	queue_addr(x, idx)->size = XTEP_SIZE_CORE;
	return 0;
}

/* Update n entries of map fd in one call (or in several, if it stops short). */
static int
update_batch(int fd, const void *keys, size_t ksz, const void *vals, size_t vsz, uint32_t n)
{
	const uint8_t *kp = keys, *vp = vals;

	while (n > 0) {
		uint32_t count = n;
		int rc = bpf_map_update_batch(fd, kp, vp, &count, NULL);

		if (rc < 0 && count == 0)
			return rc;
		kp += count * ksz;
		vp += count * vsz;
		n -= count;
	}
	return 0;
}

/* Clear the blocks let go of (no address points at them any more) and free them. */
static int
limbo_clear(struct xtep *x)
{
	static const struct xtep_range zero[ZERO];
	uint32_t keys[ZERO];
	int rc = 0;

	for (uint32_t i = 0; i < x->nlimbo; i++) {
		struct limbo *l = &x->limbo[i];
		struct freelist *f;

		for (uint32_t done = 0; done < l->n && rc == 0;) {
			uint32_t n = l->n - done < ZERO ? l->n - done : ZERO;

			for (uint32_t j = 0; j < n; j++)
				keys[j] = l->start + done + j;
			rc = update_batch(x->fd_ranges, keys, sizeof(keys[0]), zero,
			                  sizeof(zero[0]), n);
			done += n;
		}
		if (rc < 0)
			break; /* the block stays out of use: never reused uncleared */
		f = freelist(x, l->n, true);
		if (f && f->count == f->cap) {
			uint32_t cap = f->cap ? f->cap * 2 : 16,
			         *p = realloc(f->start, cap * sizeof(*p));

			if (p)
				f->start = p, f->cap = cap;
		}
		if (f && f->count < f->cap)
			f->start[f->count++] = l->start;
	}
	x->nlimbo = 0;
	return rc;
}

int
xtep_flush(struct xtep *x)
{
	int rc;

	/* Carry the counters of what is already there. */
	for (uint32_t i = 0; i < x->naddrs; i++) {
		struct xtep_addr old;

		if (x->avals[i].size == 0 &&
		    bpf_map_lookup_elem(x->fd_addrs, &x->akeys[i], &old) == 0 && old.present &&
		    old.size == 0)
			x->avals[i].ctr = old.ctr;
	}
	for (uint32_t i = 0; i < x->nranges; i++) {
		struct xtep_range old;

		if (bpf_map_lookup_elem(x->fd_ranges, &x->rkeys[i], &old) == 0 && old.present &&
		    old.lo == x->rvals[i].lo)
			x->rvals[i].ctr = old.ctr;
	}
	/* Ranges first: a packet that finds the shared address finds its range. */
	rc = update_batch(x->fd_ranges, x->rkeys, sizeof(x->rkeys[0]), x->rvals,
	                  sizeof(x->rvals[0]), x->nranges);
	if (rc == 0)
		rc = update_batch(x->fd_addrs, x->akeys, sizeof(x->akeys[0]), x->avals,
		                  sizeof(x->avals[0]), x->naddrs);
	x->naddrs = x->nranges = 0;
	/* Blocks freed by this batch: no address entry points at them now. */
	if (rc == 0)
		rc = limbo_clear(x);
	return rc;
}

int
xtep_del_range(struct xtep *x, uint32_t v4, uint16_t lo)
{
	static const struct xtep_range zero;
	struct shadow *sh;
	uint32_t idx, k;
	int rc;

	if ((rc = addr_index(x, v4, &idx)) < 0)
		return -ENOENT;
	/* After the pending batch, so that a delete sees what was added before it. */
	if ((rc = xtep_flush(x)) < 0)
		return rc;
	sh = &x->sh[idx];
	if (sh->rblock == 0 || sh->rblock == CORE || lo < sh->base)
		return -ENOENT;
	k = sh->rblock - 1 + (uint32_t)(lo - sh->base) / sh->size;
	return bpf_map_update_elem(x->fd_ranges, &k, &zero, BPF_ANY) < 0 ? -errno : 0;
}

int
xtep_del_addr(struct xtep *x, uint32_t v4)
{
	static const struct xtep_addr zero;
	uint32_t idx;
	int rc;

	if ((rc = addr_index(x, v4, &idx)) < 0)
		return -ENOENT;
	if ((rc = xtep_flush(x)) < 0)
		return rc;
	/* The address first, so that no packet looks for its ranges. */
	if (bpf_map_update_elem(x->fd_addrs, &idx, &zero, BPF_ANY) < 0)
		return -errno;
	if ((rc = block_release(x, &x->sh[idx])) < 0)
		return rc;
	x->sh[idx].rblock = 0;
	return limbo_clear(x);
}

void
xtep_binding_ctr(const struct xtep *x, uint32_t v4, uint16_t lo, uint16_t hi, struct xtep_bctr *out)
{
	struct xtep_addr a;
	struct xtep_range r;
	uint32_t idx, k;

	memset(out, 0, sizeof(*out));
	if (addr_index(x, v4, &idx) < 0 || bpf_map_lookup_elem(x->fd_addrs, &idx, &a) < 0 ||
	    !a.present || a.size == XTEP_SIZE_CORE)
		return;
	if (a.size == 0) {
		if (lo == 0 && hi == 65535)
			*out = a.ctr;
		return;
	}
	if (lo < a.base)
		return;
	k = a.rbase + (uint32_t)(lo - a.base) / a.size;
	if (bpf_map_lookup_elem(x->fd_ranges, &k, &r) == 0 && r.present && r.lo == lo)
		*out = r.ctr;
}

int
xtep_counters(const struct xtep *x, uint64_t out[XC__COUNT])
{
	struct xtep_counters *per = calloc(x->ncpus, sizeof(*per));
	uint32_t zero = 0;

	if (!per)
		return -ENOMEM;
	memset(out, 0, sizeof(uint64_t) * XC__COUNT);
	if (bpf_map_lookup_elem(x->fd_ctr, &zero, per) < 0) {
		int e = -errno;
		free(per);
		return e;
	}
	for (unsigned cpu = 0; cpu < x->ncpus; cpu++)
		for (int i = 0; i < XC__COUNT; i++)
			out[i] += per[cpu].c[i];
	free(per);
	return 0;
}
