/*
 * The daemon's side of the identity rule (src/grant, DESIGN §4): the
 * addresses the network uses itself, which no lease may ever name (every
 * address of this host when it starts, the configured listeners and DHCPv6
 * address, every TEP's), and the one check both access methods call
 * before a lease is bound to an address, with a counter per reason; who
 * the client of a TSP command is; the one admission policy of new leases
 * (per-/64 quota and rate); and src/grant's TEP channel and store.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ---- The allocation engine's store, TEP channel and clock (src/grant) ---- */

static bool
eng_holds(void *env, const char *identity)
{
	struct dstmd *d = env;

	return lease_find_identity(d->leases, identity) != NULL;
}

static unsigned
eng_held_64(void *env, const struct in6_addr *v6)
{
	struct dstmd *d = env;

	return lease_count_64(d->leases, v6);
}

static bool
eng_tep_up(void *env, const void *tep)
{
	struct dstmd *d = env;

	return tepctl_up(d->tepctl, tep);
}

static int64_t
eng_now_ms(void *env)
{
	return clock_mono_ms();
}

static int
eng_acquire(void *env, const struct grant_req *req, const char *pool, const char *tep,
            const void **lease, unsigned *flags)
{
	struct dstmd *d = env;
	const struct lease *l = NULL;
	int rc = lease_acquire(d->leases, req->identity, &req->v6, req->want_v4, pool, tep,
	                       req->now, &l, flags);

	*lease = l;
	return rc;
}

static const struct grant_alloc_ops dstmd_alloc_ops = {
    .holds = eng_holds,
    .held_64 = eng_held_64,
    .tep_up = eng_tep_up,
    .now_ms = eng_now_ms,
    .acquire = eng_acquire,
};

struct grant_policy
dstmd_policy(const struct dstmd *d, unsigned per_64)
{
	return (struct grant_policy){.per_64 = per_64, .rate_64 = d->cfg->alloc_rate_64};
}

enum grant_outcome
dstmd_grant(struct dstmd *d, const struct grant_req *req, const struct grant_policy *policy,
            struct grant_result *res)
{
	static struct grant_rate rate; /* fixed size: GRANT_RATE_SLOTS buckets, for every method */
	struct grant_engine e = {.ops = &dstmd_alloc_ops,
	                         .env = d,
	                         .teps = failover_views(d),
	                         .nteps = d->cfg->nteps,
	                         .rate = &rate};

	enum grant_outcome o = grant_acquire(&e, policy, req, res);
	const struct lease *l;
	char a[ADDR_STRLEN];

	/*
	 * A lease that a reload left outside the pools is revoked at its
	 * renewal, never silently: the client is told (TSP delete or DHCPv6
	 * Reconfigure) and the TEP loses the binding; the client then asks
	 * again and gets an address of the pools as they are now.
	 */
	if (o == GRANT_FAILED && res->err == -EADDRNOTAVAIL &&
	    (l = lease_find_identity(d->leases, req->identity)) && l->orphan &&
	    l->state == LEASE_ACTIVE) {
		log_info("lease of %s on %s is outside the pools: revoked at its renewal",
		         l->identity, addr_fmt_v4(l->v4, a));
		d->ctr.revokes++;
		(void)dstmd_end_lease(d, l, true, false);
	}
	return o;
}

/* ---- TSP: who the client of a command is (access.c) ---- */

/* The common name of a client certificate that verified, into out. */
static bool
cert_name(SSL *ssl, char *out, size_t len)
{
	X509 *x;
	bool ok = false;

	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK ||
	    !(x = SSL_get1_peer_certificate(ssl)))
		return false;
	ok = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)len) > 0;
	X509_free(x);
	return ok;
}

/*
 * Who the client is (seed 001 C §2.1: an anonymous node is known by its
 * global address): the SASL user, the certificate's name, or the address.
 */
static int
client_identity(struct tsp_conn *conn, SSL *ssl, const struct grant_client *who, char *out,
                size_t len)
{
	const char *user = conn ? tsp_conn_user(conn) : NULL;
	const char *mech = conn ? tsp_conn_mechanism(conn) : NULL;
	struct grant_identity id = {.kind = GRANT_ID_ADDRESS, .v6 = who->v6};
	char cn[128];

	if (user && *user && !(mech && !strcasecmp(mech, "ANONYMOUS")))
		id = (struct grant_identity){.kind = GRANT_ID_USER, .name = user};
	else if (cert_name(ssl, cn, sizeof(cn)))
		id = (struct grant_identity){.kind = GRANT_ID_CERT, .name = cn};
	return grant_identity_key(&id, out, len);
}

static bool
tsp_relay(const struct dstmd *d, const struct in6_addr *src)
{
	for (size_t i = 0; i < d->cfg->ntsp_relays; i++)
		if (!memcmp(&d->cfg->tsp_relays[i], src, sizeof(*src)))
			return true;
	return false;
}

int
tsp_identity_verify(struct dstmd *d, struct tsp_conn *conn, SSL *ssl, const struct tsp_tunnel *t,
                    struct grant_client *who, struct in6_addr *v6, char *identity, size_t idlen)
{
	const struct sockaddr *peer = conn ? tsp_conn_peer(conn) : NULL;
	const char *user = conn ? tsp_conn_user(conn) : NULL;
	const char *mech = conn ? tsp_conn_mechanism(conn) : NULL;
	const struct grant_prefix *allowed;
	char cn[128], a[ADDR_STRLEN], b[ADDR_STRLEN];
	struct in6_addr src = IN6ADDR_ANY_INIT;
	size_t nallowed;

	memset(who, 0, sizeof(*who));
	who->kind = GRANT_ANONYMOUS;
	if ((user && *user && !(mech && !strcasecmp(mech, "ANONYMOUS"))) ||
	    cert_name(ssl, cn, sizeof(cn))) {
		who->kind = GRANT_USER;
		who->authenticated = true;
	}
	if (peer && peer->sa_family == AF_INET6)
		src = ((const struct sockaddr_in6 *)peer)->sin6_addr;
	else if (peer && peer->sa_family == AF_INET)
		addr_v4_mapped(&src, ntohl(((const struct sockaddr_in *)peer)->sin_addr.s_addr));
	if (t->client.has_v6 && tsp_relay(d, &src)) {
		who->v6 = t->client.v6; /* a trusted relay speaks for its client */
	} else if (peer && peer->sa_family == AF_INET6) {
		who->v6 = src;
	} else {
		/* Over IPv4 there is no IPv6 source to know the client by. */
		d->ctr.bad_address++;
		return TSP_INVALID_IPV6;
	}
	*v6 = who->v6;
	if (t->client.has_v6 && memcmp(&t->client.v6, &who->v6, sizeof(who->v6)) != 0) {
		allowed = dstmd_config_endpoints(d->cfg, user, &nallowed);
		if (!grant_endpoint_ok(who, &t->client.v6, allowed, nallowed)) {
			d->ctr.foreign_client_v6++;
			log_warnx_rl(&identity_rl, "%s names %s as its address: refused",
			             addr_fmt_v6(&who->v6, a), addr_fmt_v6(&t->client.v6, b));
			return TSP_INVALID_IPV6;
		}
		*v6 = t->client.v6;
	}
	if (dstmd_check_v6(d, v6) != GRANT_ADDR_OK) {
		d->ctr.bad_address++;
		return TSP_INVALID_IPV6;
	}
	/* Never a truncated name: two users would share a lease. */
	if (client_identity(conn, ssl, who, identity, idlen) != 0) {
		d->ctr.long_identity++;
		log_warnx_rl(&identity_rl, "%s: its name is too long to key a lease: refused",
		             addr_fmt_v6(&who->v6, a));
		return TSP_AUTH_FAILED;
	}
	return 0;
}

int
tsp_identity_owner(struct dstmd *d, const struct grant_client *who, const char *identity)
{
	const struct lease *l = lease_find_identity(d->leases, identity);

	if (!l || grant_may_act(who, &l->v6) != GRANT_FOREIGN)
		return 0;
	d->ctr.not_owner++;
	return TSP_ADDRESS_UNAVAILABLE;
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
