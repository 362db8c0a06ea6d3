/*
 * The XDP data plane's loader (xdp.h): the skeleton of xdp_tep.bpf.c,
 * sized maps, native attach, and the queue that turns binding changes
 * into batched map updates. A binding written again (dstmd re-pushes
 * them, a path MTU changes) keeps its counters: the old value's counters
 * are read and carried into the new one.
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

struct xtep {
	struct xtep_skel *skel;
	int link6, link4; /* bpf_link fds: closing them (or exiting) detaches */
	int fd_addrs, fd_ranges, fd_ctr;
	unsigned ncpus;
	/* Queued updates, one array per map. */
	uint32_t naddrs, nranges;
	uint32_t akeys[QUEUE];
	struct xtep_addr avals[QUEUE];
	struct xtep_range_key rkeys[QUEUE];
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
	struct xtep_cfg *k;
	int rc;

	if (!x)
		return -ENOMEM;
	x->link6 = x->link4 = -1;
	if (!getenv("DSTM_XDP_DEBUG"))
		libbpf_set_print(silent);
	x->skel = xtep_skel__open();
	if (!x->skel) {
		rc = -errno;
		goto fail;
	}
	bpf_map__set_max_entries(x->skel->maps.addrs, c->max_addrs ? c->max_addrs : 1);
	bpf_map__set_max_entries(x->skel->maps.ranges, c->max_ranges ? c->max_ranges : 1);
	k = &x->skel->bss->xtep_cfg;
	memcpy(k->tep6, &c->tep6, 16);
	k->npools = c->npools < XTEP_MAX_POOLS ? c->npools : XTEP_MAX_POOLS;
	for (unsigned i = 0; i < k->npools; i++) {
		uint32_t m = c->pool_plen[i] ? ~0u << (32 - c->pool_plen[i]) : 0;

		k->pools[i].addr = htonl(c->pool_addr[i] & m);
		k->pools[i].mask = htonl(m);
	}
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

int
xtep_attach(struct xtep *x, int ifindex6, int ifindex4)
{
	int rc;

	if ((rc = link_xdp(bpf_program__fd(x->skel->progs.xdp_tep_v6), ifindex6)) < 0)
		return rc;
	x->link6 = rc;
	if ((rc = link_xdp(bpf_program__fd(x->skel->progs.xdp_tep_v4), ifindex4)) < 0)
		return rc;
	x->link4 = rc;
	return 0;
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

/* Ranges of one address are aligned on their size: any base works that
 * keeps them aligned, and lo mod size is one. */
static uint16_t
range_base(uint32_t size, uint16_t lo)
{
	return (uint16_t)(lo % size);
}

int
xtep_set(struct xtep *x, uint32_t v4, uint16_t lo, uint16_t hi, const struct in6_addr *v6,
         uint16_t mtu)
{
	struct xtep_addr *a;
	int rc;

	if (hi < lo)
		return -EINVAL;
	if ((x->naddrs == QUEUE || x->nranges == QUEUE) && (rc = xtep_flush(x)) < 0)
		return rc;
	a = &x->avals[x->naddrs];
	memset(a, 0, sizeof(*a));
	x->akeys[x->naddrs++] = htonl(v4);
	if (lo == 0 && hi == 65535) {
		memcpy(a->v6, v6, 16);
		a->mtu = mtu;
	} else {
		struct xtep_range *r = &x->rvals[x->nranges];
		struct xtep_range_key *k = &x->rkeys[x->nranges++];

		a->size = (uint32_t)hi - lo + 1;
		a->base = range_base(a->size, lo);
		memset(r, 0, sizeof(*r));
		memset(k, 0, sizeof(*k));
		k->v4 = htonl(v4);
		k->k = (uint32_t)(lo - a->base) / a->size;
		memcpy(r->v6, v6, 16);
		r->lo = lo;
		r->hi = hi;
		r->mtu = mtu;
	}
	return 0;
}

int
xtep_set_core(struct xtep *x, uint32_t v4)
{
	struct xtep_addr *a;
	int rc;

	if ((x->naddrs == QUEUE || x->nranges == QUEUE) && (rc = xtep_flush(x)) < 0)
		return rc;
	a = &x->avals[x->naddrs];
	memset(a, 0, sizeof(*a));
	x->akeys[x->naddrs++] = htonl(v4);
	a->size = XTEP_SIZE_CORE;
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

int
xtep_flush(struct xtep *x)
{
	int rc;

	/* Carry the counters of what is already there. */
	for (uint32_t i = 0; i < x->naddrs; i++) {
		struct xtep_addr old;

		if (x->avals[i].size == 0 &&
		    bpf_map_lookup_elem(x->fd_addrs, &x->akeys[i], &old) == 0 && old.size == 0)
			x->avals[i].ctr = old.ctr;
	}
	for (uint32_t i = 0; i < x->nranges; i++) {
		struct xtep_range old;

		if (bpf_map_lookup_elem(x->fd_ranges, &x->rkeys[i], &old) == 0 &&
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
	return rc;
}

/*
 * The entry of the address KEY (network order) once the pending batch is
 * in the maps, so that a delete sees what was added before it; 0, -ENOENT
 * or the flush's -errno.
 */
static int
flushed_addr(struct xtep *x, uint32_t key, struct xtep_addr *a)
{
	int rc;

	if ((rc = xtep_flush(x)) < 0)
		return rc;
	return bpf_map_lookup_elem(x->fd_addrs, &key, a) < 0 ? -ENOENT : 0;
}

int
xtep_del_range(struct xtep *x, uint32_t v4, uint16_t lo)
{
	uint32_t key = htonl(v4);
	struct xtep_range_key k = {.v4 = key};
	struct xtep_addr a;
	int rc;

	if ((rc = flushed_addr(x, key, &a)) < 0)
		return rc;
	if (a.size == 0 || lo < a.base)
		return -ENOENT;
	k.k = (uint32_t)(lo - a.base) / a.size;
	return bpf_map_delete_elem(x->fd_ranges, &k) < 0 ? -errno : 0;
}

int
xtep_del_addr(struct xtep *x, uint32_t v4)
{
	uint32_t key = htonl(v4);
	struct xtep_range_key k = {.v4 = key};
	struct xtep_addr a;
	int rc;

	if ((rc = flushed_addr(x, key, &a)) < 0)
		return rc;
	/* The address first, so that no packet looks for its ranges. */
	bpf_map_delete_elem(x->fd_addrs, &key);
	if (a.size != 0 && a.size != XTEP_SIZE_CORE)
		for (k.k = 0; k.k <= (65535u - a.base) / a.size; k.k++)
			bpf_map_delete_elem(x->fd_ranges, &k);
	return 0;
}

void
xtep_binding_ctr(const struct xtep *x, uint32_t v4, uint16_t lo, uint16_t hi, struct xtep_bctr *out)
{
	uint32_t key = htonl(v4);
	struct xtep_range_key k = {.v4 = key};
	struct xtep_addr a;
	struct xtep_range r;

	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(x->fd_addrs, &key, &a) < 0)
		return;
	if (a.size == 0) {
		if (lo == 0 && hi == 65535)
			*out = a.ctr;
		return;
	}
	if (lo < a.base)
		return;
	k.k = (uint32_t)(lo - a.base) / a.size;
	if (bpf_map_lookup_elem(x->fd_ranges, &k, &r) == 0 && r.lo == lo)
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
