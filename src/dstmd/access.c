/*
 * Client access over TSP (seed 001 appendix C; DESIGN §2 and §3.1): one
 * session per client connection, kept open for the lease so that the
 * server can send "delete" on it (appendix C §4). A create is answered
 * only after its lease is durable and, for a new or moved binding, after
 * the TEP accepted it (appendix C §2.1: "TEP information MUST be the same
 * that the TEP provided"; a TEP that refuses or cannot be reached gives
 * the client 307 and no lease).
 *
 * A session answers its commands one at a time, in order; a client that
 * pipelines gets its later commands queued (a few at most).
 *
 * Identity (DESIGN §4, src/grant): an anonymous client is its source
 * address, and its tunnel ends there; a `<client>` IPv6 address that
 * differs is refused (309). An authenticated one (SASL user, TLS
 * certificate) is its name; its tunnel ends at its source address too,
 * or inside the prefixes its auth.endpoints entry allows, and its lease
 * follows it to a new address. A peer listed in auth.relays speaks for
 * clients and may name their address. Quotas and rate limits count the
 * address so verified, never one a client merely wrote.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/keycount.h"
#include "common/log.h"
#include "dstmd/dstmd.h"
#include "dstmd/session.h"
#include "grant/grant.h"

enum req_kind { REQ_CREATE, REQ_RELEASE };

struct request {
	struct deferred df;
	struct session *s;
	enum req_kind kind;
	char identity[IDENTITY_MAX];
	const struct dstmd_tep *tep;
	struct tepctl_binding b;
	unsigned flags;
	struct grant_push_item push;
};

static struct log_rl access_rl;

static void session_next(struct session *s);

/* ---- Replies ---- */

static unsigned
status_slot(int status)
{
	switch (status) {
	case TSP_OK:
		return 0;
	case TSP_POOL_EXHAUSTED:
		return 1;
	case TSP_TEP_CONFIG_ERROR:
		return 2;
	case TSP_ADDRESS_UNAVAILABLE:
		return 3;
	case TSP_INVALID_IPV6:
	case TSP_INVALID_IPV4:
		return 4;
	case TSP_UNSUPPORTED_TUNNEL:
	case TSP_INVALID_REQUEST:
	case TSP_NO_MORE_TUNNELS:
	case TSP_BUSY:
		return 5;
	default:
		return status >= TSP_REDIRECT ? 6 : 7;
	}
}

static const char *const status_names[8] = {
    "reply_200_success",         "reply_306_pool_exhausted",
    "reply_307_tep_error",       "reply_308_unavailable",
    "reply_309_310_bad_address", "reply_301_303_500_530_refused",
    "reply_1000_redirect",       "reply_other",
};

static void
fill_tunnel(struct tsp_tunnel *t, enum tsp_action action, const struct dstmd_tep *tep,
            const struct tepctl_binding *b, uint32_t keepalive)
{
	memset(t, 0, sizeof(*t));
	t->action = action;
	snprintf(t->type, sizeof(t->type), "v4v6");
	t->lifetime = b->lifetime;
	t->client.present = true;
	t->client.has_v4 = true;
	t->client.v4 = b->v4;
	t->client.has_v6 = true;
	t->client.v6 = b->v6;
	if (b->port_lo || b->port_hi) {
		t->client.has_ports = true;
		t->client.port_lo = b->port_lo;
		t->client.port_hi = b->port_hi;
	}
	if (tep) {
		t->server.present = true;
		t->server.has_v4 = true;
		t->server.v4 = tep->v4;
		t->server.has_v6 = true;
		t->server.v6 = tep->v6;
	}
	/* RFC 5572 §4.3: the keepalive the TEP answers (an ICMP echo in the tunnel). */
	if (tep && action == TSP_ACTION_INFO && keepalive) {
		t->has_keepalive = true;
		t->keepalive_interval = keepalive;
		t->has_keepalive_v4 = true;
		t->keepalive_v4 = tep->keepalive_v4;
	}
}

/* Answer the session's current command and move on to the next one. */
static void
session_reply(struct session *s, int status, const struct tsp_tunnel *t)
{
	s->d->ctr.status[status_slot(status)]++;
	if (s->conn)
		tsp_conn_reply(s->conn, status, t);
	s->busy = false;
	session_next(s);
}

static void
reply_redirect(struct session *s)
{
	const struct dstmd_config *cfg = s->d->cfg;
	struct tsp_tunnel *t = calloc(1, sizeof(*t));

	if (!t) {
		session_reply(s, TSP_POOL_EXHAUSTED, NULL);
		return;
	}
	t->action = TSP_ACTION_INFO;
	snprintf(t->type, sizeof(t->type), "v4v6");
	for (size_t i = 0; i < cfg->nredirect && i < TSP_MAX_BROKERS; i++)
		snprintf(t->brokers[t->nbrokers++], TSP_DN_MAX, "%s", cfg->redirect[i]);
	session_reply(s, TSP_REDIRECT, t);
	free(t);
}

static void
request_free(struct request *r)
{
	session_unref(r->s);
	free(r);
}

static void
request_reply_info(struct request *r)
{
	struct tsp_tunnel t;

	fill_tunnel(&t, TSP_ACTION_INFO, r->tep, &r->b, r->s->d->cfg->keepalive);
	session_reply(r->s, TSP_OK, &t);
	request_free(r);
}

/* The TEP answered the create of a new (or moved) binding (src/grant rolled back a refused one). */
static void
request_pushed(void *arg)
{
	struct request *r = arg;

	if (!r->push.refused) {
		request_reply_info(r);
		return;
	}
	/* No lease without a binding at the TEP (seed 001 C §2.1: error 307). */
	r->s->d->ctr.tep_refused++;
	session_reply(r->s, TSP_TEP_CONFIG_ERROR, NULL);
	request_free(r);
}

/* After the commit: push to the TEP when the binding is new or moved, else answer. */
static void
request_committed(struct dstmd *d, struct deferred *df)
{
	struct request *r = (struct request *)df;

	if (dstmd_commit_failed(d)) {
		/* The lease did not reach the disk: 530, the client may try again later. */
		session_reply(r->s, TSP_BUSY, NULL);
		request_free(r);
		return;
	}
	if (r->kind == REQ_CREATE && (r->flags & (LEASE_NEW | LEASE_MOVED))) {
		r->push = (struct grant_push_item){.tep = r->tep,
		                                   .binding = &r->b,
		                                   .identity = r->identity,
		                                   .v4 = r->b.v4,
		                                   .port_lo = r->b.port_lo,
		                                   .is_new = r->flags & LEASE_NEW};
		grant_push(&dstmd_push_ops, d, &r->push, 1, request_pushed, r);
		return;
	}
	if (r->kind == REQ_RELEASE) {
		session_reply(r->s, TSP_OK, NULL);
		request_free(r);
		return;
	}
	request_reply_info(r);
}

static struct request *
request_new(struct session *s, enum req_kind kind, const char *identity)
{
	struct request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->df.run = request_committed;
	r->s = s;
	r->kind = kind;
	snprintf(r->identity, sizeof(r->identity), "%s", identity);
	s->refs++;
	return r;
}

static void
binding_of(const struct lease *l, int64_t now, struct tepctl_binding *b)
{
	memset(b, 0, sizeof(*b));
	TEPCTL_BINDING_LIVE(b, l, now);
}

/* ---- Commands ---- */

static bool
usable_v4(uint32_t a)
{
	return a != 0 && (a >> 24) != 127 && (a >> 28) != 14 && a != 0xffffffffu;
}

static void
handle_create(struct session *s, const struct tsp_tunnel *t)
{
	struct dstmd *d = s->d;
	const struct dstmd_tep *tep;
	const struct lease *l;
	struct grant_client who;
	struct in6_addr v6;
	char identity[IDENTITY_MAX], a6[ADDR_STRLEN];
	uint32_t want = 0;
	unsigned flags = 0;
	int64_t now = clock_wall_s();
	struct grant_req req;
	struct grant_policy pol;
	struct grant_result res;
	struct request *r;
	int rc;

	d->ctr.creates++;
	if (strcasecmp(t->type, "v4v6") != 0) {
		d->ctr.bad_type++;
		session_reply(s, TSP_UNSUPPORTED_TUNNEL, NULL);
		return;
	}
	if ((rc = tsp_identity_verify(s->d, s->conn, s->ssl, t, &who, &v6, identity,
	                              sizeof(identity))) != 0 ||
	    (rc = tsp_identity_owner(d, &who, identity)) != 0) {
		session_reply(s, rc, NULL);
		return;
	}
	if (t->client.has_v4) {
		if (!usable_v4(t->client.v4)) {
			d->ctr.bad_address++;
			session_reply(s, TSP_INVALID_IPV4, NULL);
			return;
		}
		want = t->client.v4;
	}
	req = (struct grant_req){
	    .who = who, .identity = identity, .v6 = v6, .want_v4 = want, .now = now};
	pol = dstmd_policy(d, d->per_64);
	switch (dstmd_grant(d, &req, &pol, &res)) {
	case GRANT_GRANTED:
		break;
	case GRANT_NO_TEP:
		log_warnx_rl(&access_rl, "no TEP serves %s; add its prefix to a TEP's \"clients\"",
		             addr_fmt_v6(&v6, a6));
		d->ctr.bad_address++;
		session_reply(s, TSP_INVALID_IPV6, NULL);
		return;
	/*
	 * Pool exhaustion (seed 000): a new lease for a /64 that already holds
	 * its share is refused with 301 "no more tunnels", one that asks too
	 * fast with 530 (src/grant: the policy DHCPv6 applies too).
	 */
	case GRANT_QUOTA:
		d->ctr.quota_64++;
		log_warnx_rl(&access_rl, "%s: its /64 holds %u leases, the most one /64 may",
		             addr_fmt_v6(&v6, a6), d->per_64);
		session_reply(s, TSP_NO_MORE_TUNNELS, NULL);
		return;
	case GRANT_RATE:
		d->ctr.rate_64++;
		session_reply(s, TSP_BUSY, NULL);
		return;
	case GRANT_TEP_DOWN:
		/* Nothing could be bound: do not take an address for nothing. */
		session_reply(s, TSP_TEP_CONFIG_ERROR, NULL);
		return;
	case GRANT_FAILED:
		break;
	}
	tep = res.tep ? res.tep->ref : NULL;
	l = res.lease;
	flags = res.flags;
	switch (res.err) {
	case 0:
		break;
	case -ENOSPC:
		if (d->cfg->nredirect)
			reply_redirect(s);
		else
			session_reply(s, TSP_POOL_EXHAUSTED, NULL);
		return;
	case -EADDRNOTAVAIL:
		session_reply(s, TSP_ADDRESS_UNAVAILABLE, NULL);
		return;
	case -EIO:
		/* The lease store cannot commit (dstmd.c, store_failed): try again later. */
		session_reply(s, TSP_BUSY, NULL);
		return;
	default:
		log_warnx("lease for %s: %s", identity, strerror(-res.err));
		session_reply(s, TSP_INVALID_IPV4, NULL);
		return;
	}
	if (!(r = request_new(s, REQ_CREATE, identity))) {
		session_reply(s, TSP_INVALID_IPV4, NULL);
		return;
	}
	session_bind(s, identity);
	r->tep = tep;
	r->flags = flags;
	binding_of(l, now, &r->b);
	dstmd_defer(d, &r->df);
	dstmd_rearm_expiry(d);
}

/* A client's own "delete": it gives its address back (a release). */
static void
handle_release(struct session *s, const struct tsp_tunnel *t)
{
	struct dstmd *d = s->d;
	struct grant_client who;
	struct in6_addr v6;
	char identity[IDENTITY_MAX];
	const struct lease *l;
	struct request *r;
	int rc;

	if ((rc = tsp_identity_verify(s->d, s->conn, s->ssl, t, &who, &v6, identity,
	                              sizeof(identity))) != 0 ||
	    (rc = tsp_identity_owner(d, &who, identity)) != 0) {
		session_reply(s, rc, NULL);
		return;
	}
	/*
	 * Over UDP nothing proves the source: a host on the link can send
	 * VERSION, AUTHENTICATE ANONYMOUS and a delete under another host's
	 * address without reading a single answer. Ending a lease takes a
	 * secret there (or TCP, whose handshake proves the address); an
	 * anonymous UDP client's lease simply expires, as deployed clients,
	 * which never send delete, expect.
	 */
	if (s->dgram && !who.authenticated) {
		d->ctr.udp_anon_delete++;
		session_reply(s, TSP_INVALID_REQUEST, NULL);
		return;
	}
	l = lease_find_identity(d->leases, identity);
	if (!l || (t->client.has_v4 && t->client.v4 != l->v4)) {
		session_reply(s, TSP_ADDRESS_UNAVAILABLE, NULL);
		return;
	}
	d->ctr.releases++;
	session_unbind(s);
	if (dstmd_end_lease(d, l, false, true) == -EIO) {
		session_reply(s, TSP_BUSY, NULL); /* the store cannot commit: try again later */
		return;
	}
	if (!(r = request_new(s, REQ_RELEASE, identity))) {
		session_reply(s, TSP_OK, NULL);
		return;
	}
	dstmd_defer(d, &r->df);
}

static void
session_dispatch(struct session *s, const struct tsp_tunnel *t)
{
	s->busy = true;
	switch (t->action) {
	case TSP_ACTION_CREATE:
		handle_create(s, t);
		break;
	case TSP_ACTION_DELETE:
		handle_release(s, t);
		break;
	case TSP_ACTION_INFO:
	case TSP_ACTION_ACCEPT:
		/* The client acknowledges our delete (seed 001 C §2.3): nothing to answer. */
		s->busy = false;
		session_next(s);
		break;
	default:
		session_reply(s, TSP_INVALID_REQUEST, NULL);
		break;
	}
}

static void
session_next(struct session *s)
{
	struct tsp_tunnel *t;

	if (s->busy || s->nqueue == 0 || !s->conn)
		return;
	t = s->queue[0];
	memmove(&s->queue[0], &s->queue[1], --s->nqueue * sizeof(s->queue[0]));
	session_dispatch(s, t);
	free(t);
}

static void
on_command(struct tsp_conn *c, const struct tsp_tunnel *t, void *arg)
{
	struct session *s = tsp_conn_data(c);

	if (!s)
		return;
	if (s->listed)
		session_touch(s);
	if (!s->busy) {
		session_dispatch(s, t);
		return;
	}
	if (s->nqueue == SESSION_MAX_QUEUE) {
		log_warnx_rl(&access_rl, "a client pipelines more than %d commands: closing it",
		             SESSION_MAX_QUEUE);
		tsp_conn_close(c);
		return;
	}
	if (!(s->queue[s->nqueue] = malloc(sizeof(*t)))) {
		tsp_conn_close(c);
		return;
	}
	memcpy(s->queue[s->nqueue++], t, sizeof(*t));
}

static void
on_closed(struct tsp_conn *c, void *arg)
{
	struct dstmd *d = arg;
	struct session *s = tsp_conn_data(c);

	if (!s || !s->evicted)
		d->nconns--;
	access_conn_closed(d);
	if (!s)
		return;
	if (!s->evicted)
		(void)keycount_add(&d->conns64, s->netkey, -1);
	session_unlist(s);
	tsp_conn_set_data(c, NULL);
	s->conn = NULL;
	s->ssl = NULL;
	session_unbind(s);
	session_unref(s);
}

/* What a listener's callback knows: the daemon and which listener it is. */
struct listener_ctx {
	struct dstmd *d;
	const struct dstmd_listen *ln;
};

/* The network a peer belongs to: its /64, or its IPv4 address. */
static uint64_t
net_key(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return keycount_prefix64(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0xffff00000000ull | ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
}

static void
on_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct listener_ctx *lc = arg;
	struct dstmd *d = lc->d;
	struct bufferevent *bev;
	struct session *s;
	SSL *ssl = NULL;

	if (d->nconns >= session_cap(d) && !session_evict_idle(d, 0, true)) {
		/* Nothing idle to let go: stop accepting until a session ends. */
		evutil_closesocket(fd);
		d->ctr.accept_paused++;
		d->accept_paused = true;
		for (size_t i = 0; i < d->nlisteners; i++)
			evconnlistener_disable(d->listeners[i]);
		return;
	}
	/* One network may not hold every session: its oldest idle one makes room, or no. */
	if (keycount_get(&d->conns64, net_key(sa)) >= d->cfg->conns_per_64 &&
	    !session_evict_idle(d, net_key(sa), false)) {
		evutil_closesocket(fd);
		d->ctr.conn_quota_64++;
		return;
	}
	if (lc->ln->tls) {
		if ((ssl = SSL_new(lc->ln->tls)))
			bev = bufferevent_openssl_socket_new(
			    d->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		else
			bev = NULL;
	} else {
		bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	s = calloc(1, sizeof(*s));
	if (!bev || !s) {
		if (bev) {
			bufferevent_free(bev);
		} else {
			SSL_free(ssl);
			evutil_closesocket(fd);
		}
		free(s);
		return;
	}
	s->d = d;
	s->refs = 1;
	s->ssl = ssl;
	s->netkey = net_key(sa);
	(void)keycount_add(&d->conns64, s->netkey, 1);
	d->nconns++;
	s->conn = tsp_server_accept(d->tsp, bev, sa, (socklen_t)salen, ssl != NULL);
	if (!s->conn) {
		d->nconns--;
		(void)keycount_add(&d->conns64, s->netkey, -1);
		free(s);
		return;
	}
	tsp_conn_set_data(s->conn, s);
	session_touch(s);
}

int
access_admit(struct dstmd *d, const struct sockaddr *sa)
{
	if (d->nconns >= session_cap(d) && !session_evict_idle(d, 0, true)) {
		d->ctr.accept_paused++;
		return -EBUSY;
	}
	if (keycount_get(&d->conns64, net_key(sa)) >= d->cfg->conns_per_64 &&
	    !session_evict_idle(d, net_key(sa), false)) {
		d->ctr.conn_quota_64++;
		return -EBUSY;
	}
	return 0;
}

int
access_attach(struct dstmd *d, struct tsp_conn *c, const struct sockaddr *sa)
{
	struct session *s = calloc(1, sizeof(*s));

	d->nconns++; /* on_closed gives it back, with or without a session */
	if (!s) {
		tsp_conn_close(c);
		return -ENOMEM;
	}
	s->d = d;
	s->refs = 1;
	s->netkey = net_key(sa);
	(void)keycount_add(&d->conns64, s->netkey, 1);
	s->conn = c;
	s->dgram = true;
	tsp_conn_set_data(c, s);
	session_touch(s);
	return 0;
}

static void
on_accept_error(struct evconnlistener *lst, void *arg)
{
	struct dstmd *d = ((struct listener_ctx *)arg)->d;
	int e = EVUTIL_SOCKET_ERROR();

	/*
	 * EMFILE and friends: no more sessions fit. Learn that cap, let the
	 * oldest idle session go, and pause until a session ends (no busy loop).
	 */
	if ((e == EMFILE || e == ENFILE) && d->nconns > 0) {
		session_act.nofile_cap = d->nconns;
		(void)session_evict_idle(d, 0, true);
	}
	log_warn("accept");
	if (!d->accept_paused) {
		d->accept_paused = true;
		d->ctr.accept_paused++;
		for (size_t i = 0; i < d->nlisteners; i++)
			evconnlistener_disable(d->listeners[i]);
	}
}

void
access_conn_closed(struct dstmd *d)
{
	if (d->accept_paused && d->nconns < session_cap(d)) {
		d->accept_paused = false;
		for (size_t i = 0; i < d->nlisteners; i++)
			evconnlistener_enable(d->listeners[i]);
	}
}

void
access_notify_delete(struct dstmd *d, const struct lease *l)
{
	struct session *s = session_find(d, l->identity);
	const struct dstmd_tep *tep = dstmd_tep_named(d, l->tep);
	struct tepctl_binding b;
	struct tsp_tunnel t;

	if (!s || !s->conn)
		return;
	binding_of(l, clock_wall_s(), &b);
	b.lifetime = 0;
	fill_tunnel(&t, TSP_ACTION_DELETE, tep, &b, 0);
	if (tsp_conn_send(s->conn, &t) == 0)
		d->ctr.deletes_sent++;
	session_unbind(s);
}

static const char *
secret_of(void *arg, const char *user, const char *realm)
{
	struct dstmd *d = arg;

	return dstmd_config_secret(d->cfg, user);
}

int
access_init(struct dstmd *d)
{
	static const struct tsp_server_callbacks cb = {
	    .command = on_command,
	    .closed = on_closed,
	};
	struct tsp_server_config sc = {
	    .limits = d->cfg->limits,
	    .mechanisms = d->cfg->mechanisms,
	    .plain_without_tls = d->cfg->plain_without_tls,
	    .realm = d->cfg->realm,
	    .service = "tsp",
	    .hostname = NULL,
	    .secret = secret_of,
	    .secret_arg = d,
	    .handshake_timeout = d->cfg->handshake_timeout,
	    .idle_timeout = d->cfg->idle_timeout,
	};
	char a[ADDR_STRLEN];

	/*
	 * Every session is a descriptor: take what the hard limit allows, and
	 * never accept more than fits (an EMFILE pauses accepting for all).
	 */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
			if (rl.rlim_cur < rl.rlim_max) {
				rl.rlim_cur = rl.rlim_max;
				(void)setrlimit(RLIMIT_NOFILE, &rl);
				(void)getrlimit(RLIMIT_NOFILE, &rl);
			}
			/*
			 * Room for what is open now (the lowest free descriptor tells)
			 * and what comes later: the TEPs, DHCPv6, the store's files.
			 */
			int probe = fcntl(0, F_DUPFD_CLOEXEC, 0);
			rlim_t spare = (rl.rlim_cur / 4 < 256 ? rl.rlim_cur / 4 : 256) +
			               (rlim_t)(probe > 0 ? probe : 0);

			if (probe >= 0)
				close(probe);
			if (spare + 16 > rl.rlim_cur)
				spare = rl.rlim_cur - 16;

			session_act.nofile_cap = (unsigned)(rl.rlim_cur - spare);
			if (session_act.nofile_cap < d->cfg->max_connections)
				log_warnx("only %u sessions fit the descriptor limit (%llu), not "
				          "limits.connections (%u): raise LimitNOFILE",
				          session_act.nofile_cap, (unsigned long long)rl.rlim_cur,
				          d->cfg->max_connections);
		}
	}
	if (!(session_act.sweep = event_new(d->base, -1, EV_PERSIST, session_sweep_cb, d)))
		return -ENOMEM;
	event_add(session_act.sweep, &(struct timeval){1, 0});
	d->sessions = calloc(SESSION_BUCKETS, sizeof(*d->sessions));
	if (!d->sessions)
		return -ENOMEM;
	d->tsp = tsp_server_new(d->base, &sc, &cb, d);
	if (!d->tsp)
		return -ENOMEM;
	d->listeners = calloc(d->cfg->nlistens, sizeof(*d->listeners));
	d->listener_ctx = calloc(d->cfg->nlistens, sizeof(struct listener_ctx));
	if (!d->listeners || !d->listener_ctx)
		return -ENOMEM;
	for (size_t i = 0; i < d->cfg->nlistens; i++) {
		const struct dstmd_listen *ln = &d->cfg->listens[i];
		struct listener_ctx *lc = &((struct listener_ctx *)d->listener_ctx)[i];
		struct evconnlistener *lst;

		lc->d = d;
		lc->ln = ln;
		lst = evconnlistener_new_bind(
		    d->base, on_accept, lc,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024,
		    (const struct sockaddr *)&ln->addr, (int)ln->len);
		if (!lst) {
			int e = errno;
			log_warn("cannot listen on %s",
			         addr_fmt_sockaddr((const struct sockaddr *)&ln->addr, a));
			return -(e ? e : EADDRNOTAVAIL);
		}
		evconnlistener_set_error_cb(lst, on_accept_error);
		d->listeners[d->nlisteners++] = lst;
		log_info("TSP%s on %s", ln->tls ? " over TLS" : "",
		         addr_fmt_sockaddr((const struct sockaddr *)&ln->addr, a));
	}
	return 0;
}

void
access_fini(struct dstmd *d)
{
	if (session_act.sweep)
		event_free(session_act.sweep);
	session_act.sweep = NULL;
	for (size_t i = 0; i < d->nlisteners; i++)
		evconnlistener_free(d->listeners[i]);
	free(d->listeners);
	d->listeners = NULL;
	free(d->listener_ctx);
	d->listener_ctx = NULL;
	d->nlisteners = 0;
	if (d->tsp)
		tsp_server_free(d->tsp);
	d->tsp = NULL;
	free(d->sessions);
	d->sessions = NULL;
	keycount_free(&d->conns64);
}

json_t *
access_counters(const struct dstmd *d)
{
	const struct tsp_server_stats *ts = tsp_server_stats(d->tsp);
	json_t *o = json_object();

	for (unsigned i = 0; i < 8; i++)
		json_object_set_new(o, status_names[i], json_integer((json_int_t)d->ctr.status[i]));
	json_object_set_new(o, "creates", json_integer((json_int_t)d->ctr.creates));
	json_object_set_new(o, "releases", json_integer((json_int_t)d->ctr.releases));
	json_object_set_new(o, "revokes", json_integer((json_int_t)d->ctr.revokes));
	json_object_set_new(o, "deletes_sent", json_integer((json_int_t)d->ctr.deletes_sent));
	json_object_set_new(o, "tep_refused", json_integer((json_int_t)d->ctr.tep_refused));
	json_object_set_new(o, "drop_bad_address", json_integer((json_int_t)d->ctr.bad_address));
	json_object_set_new(o, "drop_bad_type", json_integer((json_int_t)d->ctr.bad_type));
	json_object_set_new(o, "drop_foreign_client_v6",
	                    json_integer((json_int_t)d->ctr.foreign_client_v6));
	json_object_set_new(o, "drop_not_owner", json_integer((json_int_t)d->ctr.not_owner));
	json_object_set_new(o, "drop_long_identity",
	                    json_integer((json_int_t)d->ctr.long_identity));
	json_object_set_new(o, "drop_udp_anonymous_delete",
	                    json_integer((json_int_t)d->ctr.udp_anon_delete));
	json_object_set_new(o, "sessions_evicted_idle",
	                    json_integer((json_int_t)session_act.evicted));
	json_object_set_new(o, "sessions_idle_closed",
	                    json_integer((json_int_t)session_act.idle_closed));
	json_object_set_new(o, "drop_quota_64", json_integer((json_int_t)d->ctr.quota_64));
	json_object_set_new(o, "drop_rate_64", json_integer((json_int_t)d->ctr.rate_64));
	json_object_set_new(o, "drop_conn_quota_64",
	                    json_integer((json_int_t)d->ctr.conn_quota_64));
	json_object_set_new(o, "per_64", json_integer(d->per_64));
	json_object_set_new(o, "accept_paused", json_integer((json_int_t)d->ctr.accept_paused));
	json_object_set_new(o, "commit_joined", json_integer((json_int_t)d->ctr.commit_joined));
	json_object_set_new(o, "commit_inline",
	                    json_integer((json_int_t)store_inline_commits(d->store)));
	json_object_set_new(o, "sessions_now", json_integer(d->nconns));
	json_object_set_new(o, "sessions_bound", json_integer((json_int_t)d->nsessions_bound));
	if (ts) {
#define TS(f) json_object_set_new(o, "tsp_" #f, json_integer((json_int_t)ts->f))
		TS(sessions);
		TS(auth_ok);
		TS(auth_failed);
		TS(bad_version);
		TS(bad_line);
		TS(bad_frame);
		TS(bad_xml);
		TS(too_long);
		TS(timeouts);
		TS(commands);
		TS(replies);
		TS(plain_raw);
		TS(plain_b64);
#undef TS
	}
	return o;
}
