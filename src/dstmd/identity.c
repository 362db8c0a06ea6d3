/*
 * The daemon's side of the identity rule (src/grant, DESIGN §4): the
 * addresses the network uses itself, which no lease may ever name (every
 * address of this host when it starts, the configured listeners and DHCPv6
 * address, every TEP's), and the one check both access methods call
 * before a lease is bound to an address, with a counter per reason; and
 * the one admission policy of new leases (per-/64 quota and rate).
 */
#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/log.h"
#include "dstmd/dstmd.h"

static struct log_rl identity_rl;

static void
own_add(struct dstmd *d, size_t cap, const struct in6_addr *a)
{
	if (IN6_IS_ADDR_UNSPECIFIED(a) || d->nown >= cap)
		return;
	for (size_t i = 0; i < d->nown; i++)
		if (!memcmp(&d->own[i], a, sizeof(*a)))
			return;
	d->own[d->nown++] = *a;
}

int
identity_init(struct dstmd *d)
{
	struct ifaddrs *ifa = NULL;
	size_t cap = d->cfg->nteps + d->cfg->nlistens + 1;

	/* The host's own addresses: a lease for one would tunnel to ourselves. */
	if (getifaddrs(&ifa) == 0)
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
			cap += i->ifa_addr && i->ifa_addr->sa_family == AF_INET6;
	if (!(d->own = calloc(cap, sizeof(*d->own)))) {
		freeifaddrs(ifa);
		return -ENOMEM;
	}
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET6)
			own_add(d, cap, &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr);
	freeifaddrs(ifa);
	for (size_t i = 0; i < d->cfg->nteps; i++)
		own_add(d, cap, &d->cfg->teps[i].v6);
	for (size_t i = 0; i < d->cfg->nlistens; i++)
		if (d->cfg->listens[i].addr.ss_family == AF_INET6)
			own_add(
			    d, cap,
			    &((const struct sockaddr_in6 *)&d->cfg->listens[i].addr)->sin6_addr);
	own_add(d, cap, &d->cfg->dhcp6.address);
	return 0;
}

void
identity_fini(struct dstmd *d)
{
	free(d->own);
	d->own = NULL;
	d->nown = 0;
}

enum grant_addr
dstmd_check_v6(struct dstmd *d, const struct in6_addr *v6)
{
	struct grant_net net = {d->own, d->nown};
	enum grant_addr r = grant_check_v6(&net, v6);
	char a[ADDR_STRLEN];

	if (r != GRANT_ADDR_OK) {
		d->refused_addr[r]++;
		log_warnx_rl(&identity_rl, "no lease for %s: %s", addr_fmt_v6(v6, a),
		             r == GRANT_ADDR_NETWORK ? "the server's or a TEP's own address"
		                                     : "not a unicast address of one host");
	}
	return r;
}

enum grant_admit
dstmd_admit(struct dstmd *d, const struct in6_addr *v6, unsigned per_64)
{
	static struct grant_rate rate; /* fixed size: GRANT_RATE_SLOTS buckets */
	struct grant_policy p = {.per_64 = per_64, .rate_64 = d->cfg->alloc_rate_64};

	return grant_admit(&rate, &p, v6, lease_count_64(d->leases, v6), clock_mono_ms());
}

/* ---- src/grant's injected TEP channel and store ---- */

struct tep_answer {
	void (*done)(void *cookie, bool ok);
	void *cookie;
};

static void
tep_answered(void *arg, int status)
{
	struct tep_answer a = *(struct tep_answer *)arg;

	free(arg);
	a.done(a.cookie, status == TSP_OK);
}

static void
env_push(void *env, const void *tep, const void *binding, void (*done)(void *cookie, bool ok),
         void *cookie)
{
	struct dstmd *d = env;
	struct tep_answer *a = malloc(sizeof(*a));

	if (!a) {
		done(cookie, false);
		return;
	}
	a->done = done;
	a->cookie = cookie;
	tepctl_create(d->tepctl, tep, binding, tep_answered, a);
}

static void
env_rollback(void *env, const char *identity, uint32_t v4, uint16_t port_lo)
{
	struct dstmd *d = env;
	const struct lease *l = lease_find_identity(d->leases, identity);

	if (!l || l->v4 != v4 || l->port_lo != port_lo)
		return;
	/* -EIO: the store is failing; the reload from disk ends this grant. */
	(void)lease_release(d->leases, l, clock_wall_s());
	dstmd_schedule_commit(d);
	dstmd_rearm_expiry(d);
}

const struct grant_push_ops dstmd_push_ops = {env_push, env_rollback};

void
identity_counters(const struct dstmd *d, json_t *o)
{
	char k[64];

	for (unsigned r = GRANT_ADDR_OK + 1; r < GRANT_ADDR__COUNT; r++) {
		snprintf(k, sizeof(k), "refused_%s", grant_addr_name((enum grant_addr)r));
		json_object_set_new(o, k, json_integer((json_int_t)d->refused_addr[r]));
	}
}
