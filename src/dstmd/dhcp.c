/*
 * dstmd's DHCPv6 front end (DESIGN §2; seed 001 A and B; seed 002 §6):
 * the UDP socket on port 547 (ff02::1:2 joined on the configured
 * interfaces, unicast too), the lease calls of the engine in
 * src/dhcp6 mapped onto dstmd's lease manager and TEP selection, and the
 * rule of DESIGN §4: a Reply that grants, renews or ends a lease leaves
 * only after the commit, and for a new or moved binding (and for every
 * Request) only after the TEP accepted it. A TEP that refuses gives that
 * IA UnspecFail and the new lease is released again, as over TSP.
 *
 * The client's tunnel address is its verified address, the one
 * d6_client_v6() finds: the global source of the message, or the
 * innermost peer-address of a relay listed in dhcpv6.relays (the engine
 * drops the others). src/grant chooses the TEP by it (grant_acquire) and it is
 * what the TEP binds. A DUID is only a claim: the lease calls below apply
 * the identity rule of src/grant (an unsigned message acts on a lease
 * only from the lease's own address), so a stranger who writes another
 * client's DUID and IAID gets NoBinding and changes nothing. The per-client state
 * of the engine (replay counters, reconfigure keys, limit tracking) is
 * kept in memory only: after a restart a client's next counter is
 * accepted as new.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "dhcp6/d6.h"
#include "dstmd/dstmd.h"
#include "dstmd/lw4o6.h"
#include "grant/grant.h"

/*
 * Datagrams are read by one recvmmsg of up to RX_BATCH per wake-up (then
 * others' events get their turn), and replies leave by sendmmsg: those
 * decided in one loop turn (the Advertises of a read, the Replies a
 * commit released) are queued and sent together at the end of the turn
 * (flush_ev, lowest priority), TX_BATCH to a sendmmsg.
 *
 * Paced: at most TX_BURST at once, then TX_PER_RX for each datagram
 * received plus TX_RATE a second (a token bucket; what waits goes out on
 * pace_ev, every TX_PACE_MS). A commit releases the Replies of every
 * request that arrived while the disk was busy, hundreds when an
 * fdatasync takes tens of milliseconds, and sent back to back they
 * overflow the receive buffer of the relay or the client they go to
 * (about 200 datagrams by default): the replies are then lost after all
 * the work of making them durable. Replies leave twice as fast as
 * messages arrive, so a burst drains within about one commit's time and
 * the pacer never bounds the throughput; TX_RATE serves a quiet server at
 * once.
 */
#define RX_BATCH    64
#define TX_BATCH    64
#define TX_BURST    64
#define TX_PER_RX   2
#define TX_RATE     20000 /* replies a second, beside TX_PER_RX */
#define TX_PACE_MS  1
#define DHCP_RCVBUF (4 << 20) /* bytes of the socket's receive buffer (open_socket) */

struct rxq {
	struct mmsghdr m[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_in6 from[RX_BATCH];
	union {
		struct cmsghdr align;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} cbuf[RX_BATCH];
	uint8_t buf[RX_BATCH][D6_MAX_MSG + 1];
};

struct txq {
	unsigned n;
	struct mmsghdr m[TX_BATCH];
	struct iovec iov[TX_BATCH];
	struct sockaddr_in6 to[TX_BATCH];
	uint8_t buf[TX_BATCH][D6_MAX_MSG + 512];
};

struct dhcp {
	struct dstmd *d;
	int fd;
	struct event *ev, *flush_ev;
	struct rxq *rx;
	struct txq *tx;
	struct d6_server *srv;
	uint8_t duid[D6_DUID_MAX + 2];
	size_t duid_len;
	struct d6_key *keys;
	uint8_t dots_ri[256], access_domain[256];
	uint64_t rx_errors, tx_errors, pending_now, reconf_sent, reconf_unreachable;
	uint64_t rx_batches, tx_batches; /* recvmmsg / sendmmsg calls that moved datagrams */
	uint64_t tx_paced;               /* times replies waited for the pacer */
	struct event *pace_ev;
	struct dtx *out, **out_tail; /* replies decided, waiting to be sent (paced) */
	double tokens;               /* replies that may leave now (the token bucket) */
	bool out_waited;             /* replies were left waiting by the last drain */
	struct timespec tokens_at;   /* when `tokens` was last refilled */
	struct dtx *spare;           /* exchanges' records kept for the next messages */
	unsigned nspare;
};

/* One exchange waiting for its commit and its TEP pushes, then for the pacer. */
struct dtx {
	struct deferred df;
	struct dtx *next_out;
	struct sockaddr_in6 peer;
	struct grant_push_item push[D6_MAX_IA]; /* the IAs whose binding goes to a TEP */
	struct tepctl_binding b[D6_MAX_IA];
	struct d6_txn t;
};

static struct dhcp *dh;
static struct log_rl dhcp_rl;

/*
 * An exchange's record is about 10 KB (the parsed message, the reply's
 * IAs): up to DTX_SPARE of them are kept for the next messages rather
 * than given back to malloc, which every message paid twice.
 */
#define DTX_SPARE 256

static struct dtx *
dtx_get(struct dhcp *h)
{
	struct dtx *x = h->spare;

	if (!x)
		return malloc(sizeof(*x));
	h->spare = x->next_out;
	h->nspare--;
	return x;
}

static void
dtx_put(struct dhcp *h, struct dtx *x)
{
	if (h->nspare >= DTX_SPARE) {
		free(x);
		return;
	}
	x->next_out = h->spare;
	h->spare = x;
	h->nspare++;
}

/* ---- The lease calls of the engine ---- */

static void
grant_of(struct dstmd *d, const struct lease *l, const struct dstmd_tep *tep, int64_t now,
         struct d6_grant *g)
{
	memset(g, 0, sizeof(*g));
	g->v4 = l->v4;
	g->port_lo = l->port_lo;
	g->port_hi = l->port_hi;
	g->v6 = l->v6;
	if (tep)
		g->tep = tep->v6;
	g->tep_ref = tep;
	g->expiry = l->expiry;
	g->psid_offset = l->psid_offset;
	g->psid_len = l->psid_len;
	g->psid = l->psid;
	if (l->offer)
		g->flags |= D6_GRANT_OFFER;
	/* valid_lifetime may announce less than the lease holds, never more. */
	if (d->cfg->dhcp6.valid && g->expiry > now + d->cfg->dhcp6.valid)
		g->expiry = now + d->cfg->dhcp6.valid;
}

/*
 * A lease just taken or renewed, DSTM's or an lwB4's: its grant, with
 * whether it is new or moved, and the expiry timer set for it.
 */
static void
grant_granted(struct dstmd *d, const struct lease *l, const struct dstmd_tep *tep, int64_t now,
              unsigned flags, struct d6_grant *g)
{
	grant_of(d, l, tep, now, g);
	if (flags & LEASE_NEW)
		g->flags |= D6_GRANT_NEW;
	if (flags & LEASE_MOVED)
		g->flags |= D6_GRANT_MOVED;
	dstmd_rearm_expiry(d);
}

/* The message's sender, as far as it was verified (DESIGN §4). */
static struct grant_client
sender(const struct in6_addr *v6, bool authed)
{
	struct grant_client c = {.kind = GRANT_DUID, .authenticated = authed, .v6 = *v6};

	return c;
}

static void offer_taken(struct dstmd *d, int64_t expiry, int64_t now);

static int
op_acquire(void *arg, const char *identity, const struct in6_addr *v6, bool authed, uint32_t want,
           int64_t now, struct d6_grant *g)
{
	struct dstmd *d = arg;
	const struct dstmd_tep *tep;
	struct grant_client who = sender(v6, authed);
	struct grant_req req;
	struct grant_policy pol;
	struct grant_result res;
	const struct lease *l;
	int64_t held;
	unsigned flags;
	char a[ADDR_STRLEN];

	if (dstmd_check_v6(d, v6) != GRANT_ADDR_OK)
		return -EACCES; /* counted by the engine and by dstmd_check_v6 */
	if ((l = lease_find_identity(d->leases, identity)) &&
	    grant_may_act(&who, &l->v6) == GRANT_FOREIGN) {
		char b[ADDR_STRLEN];

		/* Counted by the engine (dhcp6_refused_foreign). */
		log_warnx_rl(&dhcp_rl, "%s names the lease of %s from %s: refused", identity,
		             addr_fmt_v6(&l->v6, a), addr_fmt_v6(v6, b));
		return -EPERM;
	}
	/* A held offer that this grant turns into a lease (or offers again): its expiry. */
	held = l && l->offer && l->expiry > now ? l->expiry : 0;
	/* The one decision (src/grant): TEP and pool, per-/64 quota and rate, the slot. */
	req = (struct grant_req){
	    .who = who, .identity = identity, .v6 = *v6, .want_v4 = want, .now = now};
	pol = dstmd_policy(d, d->cfg->dhcp6.per_64_set ? d->cfg->dhcp6.per_64 : d->per_64);
	switch (dstmd_grant(d, &req, &pol, &res)) {
	case GRANT_GRANTED:
		break;
	case GRANT_NO_TEP:
		log_warnx_rl(&dhcp_rl, "no TEP serves %s; add its prefix to a TEP's \"clients\"",
		             addr_fmt_v6(v6, a));
		return -ENETUNREACH;
	case GRANT_QUOTA:
	case GRANT_RATE:
		return -EDQUOT;
	case GRANT_TEP_DOWN:
		return -ENETUNREACH; /* nothing could be bound: take no address for nothing */
	case GRANT_FAILED:
		return res.err; /* -EIO: the store cannot commit: NoAddrsAvail, like any refusal */
	}
	if (held)
		offer_taken(d, held, now);
	tep = res.tep->ref;
	l = res.lease;
	flags = res.flags;
	grant_granted(d, l, tep, now, flags, g);
	return 0;
}

static int
op_find(void *arg, const char *identity, struct d6_grant *g)
{
	struct dstmd *d = arg;
	const struct lease *l = lease_find_identity(d->leases, identity);

	if (!l)
		return -ENOENT;
	grant_of(d, l, dstmd_tep_named(d, l->tep), clock_wall_s(), g);
	g->lw = lw4o6_holds(d, &l->v6); /* d6_server: whose address a Release may name */
	return 0;
}

static int
op_release(void *arg, const char *identity, const struct in6_addr *v6, bool authed, bool declined,
           int64_t now)
{
	struct dstmd *d = arg;
	const struct lease *l = lease_find_identity(d->leases, identity);
	struct grant_client who = sender(v6, authed);
	char a[ADDR_STRLEN];

	if (!l)
		return -ENOENT;
	if (grant_may_act(&who, &l->v6) == GRANT_FOREIGN)
		return -EPERM; /* counted by the engine (dhcp6_refused_foreign) */
	if (declined)
		/* RFC 8415 §18.3.8: the address rests in quarantine, as after any end. */
		log_info("%s declined %s", identity, addr_fmt_v4(l->v4, a));
	if (dstmd_end_lease(d, l, false, !declined) == -EIO)
		return -EIO; /* the store cannot commit: NoBinding, the client tries again */
	return 0;
}

static bool
op_in_pool(void *arg, uint32_t v4)
{
	struct dstmd *d = arg;

	for (size_t i = 0; i < d->cfg->npools; i++)
		if (pool_contains(d->pools[i], v4))
			return true;
	return false;
}

/* An lwB4's lease (lw4o6.c): the address it will use is the one dstmd assigns. */
static int
op_acquire_lw(void *arg, const char *identity, const uint8_t *src, size_t src_len, uint32_t want,
              int64_t now, struct d6_grant *g)
{
	struct dstmd *d = arg;
	const struct dstmd_tep *tep = NULL;
	const struct lease *l;
	unsigned flags = 0;
	int rc;

	rc = lw4o6_acquire(d, identity, src, src_len, want, now, &l, &flags, &tep);
	if (rc != 0) /* -EIO: the store cannot commit: NoAddrsAvail, like any refusal */
		return rc;
	grant_granted(d, l, tep, now, flags, g);
	g->lw = true;
	return 0;
}

/* The per-/64 limit counts the lease manager's leases: the one count TSP uses too. */
static unsigned
op_count_64(void *arg, const struct in6_addr *v6)
{
	struct dstmd *d = arg;

	return lease_count_64(d->leases, v6);
}

/*
 * Offers made in the last seconds and not yet taken by a request, one
 * bucket a second (the window is the offer hold, at most OFFER_WINDOW
 * seconds): what Solicits hold now.
 */
#define OFFER_WINDOW 64
static struct {
	int64_t sec[OFFER_WINDOW];
	unsigned n[OFFER_WINDOW];
	uint64_t unheld; /* Advertises that reserved nothing (the offers held half the pools) */
} offers;

static unsigned
offers_recent(int64_t now, uint32_t hold)
{
	unsigned sum = 0, w = hold < OFFER_WINDOW ? hold : OFFER_WINDOW;

	for (unsigned i = 0; i < OFFER_WINDOW; i++)
		if (offers.sec[i] > now - (int64_t)w)
			sum += offers.n[i];
	return sum;
}

/*
 * Bare Solicits from many /64s may together ask for more than the pools
 * hold, each within its /64's quota. Offers therefore hold at most half of
 * the pools: beyond that an Advertise still names an address but reserves
 * nothing (RFC 8415 §18.3.9 lets a server offer without reserving); the
 * Request that follows takes it, or any other free one if it went. So a
 * client that completes its exchange is served while the flood's offers
 * can only ever hold half of the addresses.
 */
static uint32_t
offer_hold_now(struct dstmd *d, uint32_t seconds, int64_t now)
{
	uint64_t size = 0;
	struct pool_stats st;
	unsigned b = (unsigned)(now % OFFER_WINDOW);

	for (size_t i = 0; i < d->cfg->npools; i++) {
		pool_stats(d->pools[i], &st);
		size += st.size;
	}
	if (offers_recent(now, seconds) >= size / 2) {
		offers.unheld++;
		return 0;
	}
	if (offers.sec[b] != now) {
		offers.sec[b] = now;
		offers.n[b] = 0;
	}
	offers.n[b]++;
	return seconds;
}

/*
 * The grant of a lease that held an offer: the offer holds nothing any
 * more, and leaves the count of its second (a Solicit that offers it again
 * counts it again, in op_hold). Only offers that still held when the grant
 * came are counted, and they are told by their expiry: a held offer made
 * at t expires at t + offer_hold, later than now; an unheld one (hold 0)
 * expired when it was made, and never counted.
 */
static void
offer_taken(struct dstmd *d, int64_t expiry, int64_t now)
{
	int64_t t0 = expiry - (int64_t)d->cfg->dhcp6.offer_hold;
	unsigned b = (unsigned)(t0 % OFFER_WINDOW);

	if (t0 > now - OFFER_WINDOW && t0 <= now && offers.sec[b] == t0 && offers.n[b] > 0)
		offers.n[b]--;
}

/* An Advertise's lease lasts the offer hold until a request confirms it. */
static int
op_hold(void *arg, const char *identity, uint32_t seconds, int64_t now)
{
	struct dstmd *d = arg;
	const struct lease *l = lease_find_identity(d->leases, identity);
	int rc;

	if (!l)
		return -ENOENT;
	seconds = offer_hold_now(d, seconds, now);
	if ((rc = lease_offer(d->leases, l, now, seconds)) == 0)
		dstmd_rearm_expiry(d);
	return rc;
}

/*
 * lw4o6 is always offered to the engine: without a "lw4o6" section
 * op_acquire_lw finds no IPv6 pool and an lwB4's IA_NA gets NoAddrsAvail,
 * as any IA_NA without the DSTM forms.
 */
static const struct d6_lease_ops lease_ops = {op_acquire,    op_find,     op_release, op_in_pool,
                                              op_acquire_lw, op_count_64, op_hold};

/* ---- Replies ---- */

/* Send every queued reply: one sendmmsg, another after each refused datagram. */
static void
tx_flush(struct dhcp *h)
{
	struct txq *q = h->tx;
	unsigned i = 0;
	char a[ADDR_STRLEN];

	while (i < q->n) {
		int n = sendmmsg(h->fd, &q->m[i], q->n - i, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Datagram i is lost (a full socket buffer, an unreachable peer). */
			h->tx_errors++;
			log_warnx_rl(&dhcp_rl, "sendmmsg %s: %s",
			             addr_fmt_v6(&q->to[i].sin6_addr, a),
			             n < 0 ? strerror(errno) : "nothing sent");
			i++;
			continue;
		}
		h->tx_batches++;
		i += (unsigned)n;
	}
	q->n = 0;
}

/* Build x's reply into the send queue. */
static void
send_reply(struct dhcp *h, struct dtx *x)
{
	struct txq *q = h->tx;
	size_t len;

	if (q->n == TX_BATCH)
		tx_flush(h);
	if (d6_server_build(h->srv, &x->t, q->buf[q->n], sizeof(q->buf[q->n]), &len) != 0)
		return;
	q->to[q->n] = x->peer;
	q->iov[q->n].iov_base = q->buf[q->n];
	q->iov[q->n].iov_len = len;
	memset(&q->m[q->n], 0, sizeof(q->m[q->n]));
	q->m[q->n].msg_hdr.msg_name = &q->to[q->n];
	q->m[q->n].msg_hdr.msg_namelen = sizeof(q->to[q->n]);
	q->m[q->n].msg_hdr.msg_iov = &q->iov[q->n];
	q->m[q->n].msg_hdr.msg_iovlen = 1;
	q->n++;
}

/*
 * The token bucket: TX_RATE a second since the last refill (read_cb adds
 * TX_PER_RX a datagram), at most TX_BURST after the queue ran empty.
 * While replies wait, what accrued since the last drain is all spent even
 * if the pacer woke late (a loaded machine): late wake-ups must not lower
 * the rate.
 */
static void
tokens_refill(struct dhcp *h)
{
	struct timespec now;
	double dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - h->tokens_at.tv_sec) +
	     (double)(now.tv_nsec - h->tokens_at.tv_nsec) / 1e9;
	h->tokens_at = now;
	if (dt > 0)
		h->tokens += dt * TX_RATE;
	if (!h->out_waited && h->tokens > TX_BURST)
		h->tokens = TX_BURST;
}

/*
 * Send the waiting replies the pacer allows (all of them when `all`, at
 * the end); the others wait for pace_ev.
 */
static void
tx_drain(struct dhcp *h, bool all)
{
	struct dtx *x;

	tokens_refill(h);
	while ((x = h->out) && (all || h->tokens >= 1)) {
		h->out = x->next_out;
		if (!h->out)
			h->out_tail = &h->out;
		send_reply(h, x);
		dtx_put(h, x);
		h->tokens -= 1;
	}
	tx_flush(h);
	h->out_waited = h->out != NULL;
	if (h->out && !evtimer_pending(h->pace_ev, NULL)) {
		struct timeval tv = {0, TX_PACE_MS * 1000};

		h->tx_paced++;
		evtimer_add(h->pace_ev, &tv);
	}
}

static void
flush_cb(evutil_socket_t fd, short ev, void *arg)
{
	tx_drain(arg, false);
}

static void
dtx_done(struct dtx *x)
{
	if (!dh) {
		free(x);
		return;
	}
	dh->pending_now--;
	x->next_out = NULL;
	*dh->out_tail = x;
	dh->out_tail = &x->next_out;
	/* Sent at the end of the turn, unless the pacer holds the queue already. */
	if (dh->out == x && !evtimer_pending(dh->pace_ev, NULL))
		event_active(dh->flush_ev, 0, 0);
}

/* Every TEP answered (src/grant rolled back the refused new leases). */
static void
dtx_pushed(void *arg)
{
	struct dtx *x = arg;

	for (unsigned i = 0; i < x->t.m.nia; i++)
		if (x->push[i].refused) {
			/* No lease without a binding at the TEP (seed 001 C §2.1): UnspecFail. */
			x->t.out[i].refused = true;
			if (dh)
				dh->d->ctr.tep_refused++;
		}
	dtx_done(x);
}

/* After the commit: push what must reach a TEP first, then answer. */
static void
dtx_committed(struct dstmd *d, struct deferred *df)
{
	struct dtx *x = (struct dtx *)df;
	unsigned n = x->t.m.nia;

	if (dstmd_commit_failed(d)) {
		/* Nothing of it reached the disk: no address, and say why. */
		bool ends = x->t.m.type == D6_RELEASE || x->t.m.type == D6_DECLINE;

		for (unsigned i = 0; i < n; i++) {
			x->t.out[i].granted = x->t.out[i].push = false;
			x->t.out[i].status = ends ? D6_ST_UNSPEC_FAIL : D6_ST_NO_ADDRS_AVAIL;
		}
		x->t.top_status = ends ? D6_ST_UNSPEC_FAIL : D6_ST_NO_ADDRS_AVAIL;
		x->t.top_msg = "the lease store cannot commit (disk full or read-only); try again "
		               "later";
		dtx_done(x);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		struct d6_ia_out *o = &x->t.out[i];
		struct tepctl_binding *b = &x->b[i];

		memset(&x->push[i], 0, sizeof(x->push[i]));
		if (!o->push || !o->granted || !o->g.tep_ref)
			continue;
		memset(b, 0, sizeof(*b));
		TEPCTL_BINDING_LIVE(b, &o->g, x->t.now);
		x->push[i] = (struct grant_push_item){.tep = o->g.tep_ref,
		                                      .binding = b,
		                                      .identity = o->identity,
		                                      .v4 = o->g.v4,
		                                      .port_lo = o->g.port_lo,
		                                      .is_new = o->g.flags & D6_GRANT_NEW};
	}
	grant_push(&dstmd_push_ops, d, x->push, n, dtx_pushed, x);
}

/* ---- The socket ---- */

int
dhcp_reconfigure(struct dstmd *d, const char *identity)
{
	uint8_t duid[D6_DUID_MAX + 2], out[512];
	size_t n = 0, len;
	struct sockaddr_in6 to;
	char a[ADDR_STRLEN];
	int rc;

	if (!dh || !d6_identity_duid(identity, duid, sizeof(duid), &n))
		return -ENOENT;
	/*
	 * RFC 8415 §18.3.11: the client answers with a Renew, which learns the
	 * end. A client without a key, or heard only through a relay, is not
	 * reached.
	 */
	rc = d6_server_reconfigure(dh->srv, duid, n, D6_RENEW, out, sizeof(out), &len, &to);
	if (rc < 0) {
		dh->reconf_unreachable++;
		return rc;
	}
	if (sendto(dh->fd, out, len, 0, (const struct sockaddr *)&to, sizeof(to)) < 0) {
		dh->tx_errors++;
		log_warn("reconfigure to %s", addr_fmt_v6(&to.sin6_addr, a));
		return -errno;
	}
	dh->reconf_sent++;
	return 0;
}

static void
handle_one(struct dhcp *h, const uint8_t *buf, size_t n, const struct sockaddr_in6 *from,
           bool multicast)
{
	struct dtx *x = dtx_get(h);
	struct d6_rx rx = {.src = from->sin6_addr, .multicast = multicast};

	if (!x)
		return;
	memset(&x->df, 0, sizeof(x->df));
	x->peer = *from;
	if (d6_server_handle(h->srv, &x->t, buf, n, &rx, clock_wall_s()) != D6_ACT_REPLY) {
		dtx_put(h, x);
		return;
	}
	d6_server_note_peer(h->srv, &x->t, from);
	h->pending_now++;
	if (!x->t.wait_commit) {
		dtx_done(x);
		return;
	}
	x->df.run = dtx_committed;
	dstmd_defer(h->d, &x->df);
}

static void
read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dhcp *h = arg;
	struct rxq *q = h->rx;
	int n;

	for (unsigned k = 0; k < RX_BATCH; k++) {
		q->iov[k].iov_base = q->buf[k];
		q->iov[k].iov_len = sizeof(q->buf[k]);
		memset(&q->m[k], 0, sizeof(q->m[k]));
		q->m[k].msg_hdr.msg_name = &q->from[k];
		q->m[k].msg_hdr.msg_namelen = sizeof(q->from[k]);
		q->m[k].msg_hdr.msg_iov = &q->iov[k];
		q->m[k].msg_hdr.msg_iovlen = 1;
		q->m[k].msg_hdr.msg_control = q->cbuf[k].b;
		q->m[k].msg_hdr.msg_controllen = sizeof(q->cbuf[k].b);
	}
	n = recvmmsg(fd, q->m, RX_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			h->rx_errors++;
		return;
	}
	h->rx_batches++;
	h->tokens += (double)n * TX_PER_RX;
	for (int k = 0; k < n; k++) {
		struct msghdr *mh = &q->m[k].msg_hdr;
		struct sockaddr_in6 *from = &q->from[k];
		bool multicast = false;

		if (mh->msg_namelen < sizeof(*from) || from->sin6_family != AF_INET6)
			continue;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
			if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				multicast = IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr);
				if (!from->sin6_scope_id && IN6_IS_ADDR_LINKLOCAL(&from->sin6_addr))
					from->sin6_scope_id = pi.ipi6_ifindex;
			}
		/* An oversized datagram is cut by the kernel: the engine counts it too big. */
		handle_one(h, q->buf[k], q->m[k].msg_len, from, multicast);
	}
}

static int
open_socket(struct dhcp *h, const struct dstmd_dhcp6 *c)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(c->port)};
	int one = 1, rcvbuf = DHCP_RCVBUF, fd;
	char a[ADDR_STRLEN];

	sa.sin6_addr = c->address;
	if ((fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	/*
	 * Room for the requests that arrive while the loop is away: the default
	 * (about 200 datagrams) fills in a few milliseconds at 20,000 messages
	 * a second, and a loop turn that releases a large commit's replies or
	 * a scheduler that runs something else takes that long. Beyond
	 * net.core.rmem_max only with CAP_NET_ADMIN (SO_RCVBUFFORCE).
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		log_warn("DHCPv6: cannot bind [%s]:%u", addr_fmt_v6(&c->address, a), c->port);
		close(fd);
		return -e;
	}
	for (size_t i = 0; i < c->ninterfaces; i++) {
		/* RFC 8415 §7.1: All_DHCP_Relay_Agents_and_Servers. */
		struct ipv6_mreq mr = {.ipv6mr_interface = if_nametoindex(c->interfaces[i])};

		inet_pton(AF_INET6, "ff02::1:2", &mr.ipv6mr_multiaddr);
		if (!mr.ipv6mr_interface ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) != 0) {
			int e = mr.ipv6mr_interface ? errno : ENODEV;
			log_warnx("DHCPv6: cannot join ff02::1:2 on %s: %s", c->interfaces[i],
			          strerror(e));
			close(fd);
			return -e;
		}
	}
	h->fd = fd;
	return 0;
}

/* The link-layer address of the first configured interface, for a DUID-LLT. */
static bool
first_mac(const struct dstmd_dhcp6 *c, uint8_t mac[6])
{
	struct ifreq ifr = {0};
	int fd;
	bool ok = false;

	if (!c->ninterfaces || (fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->interfaces[0]);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0) {
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
		ok = memcmp(mac, "\0\0\0\0\0\0", 6) != 0;
	}
	close(fd);
	return ok;
}

static int
load_duid(struct dhcp *h, const struct dstmd_config *cfg)
{
	char path[4096];
	uint8_t mac[6];
	const char *slash;
	int rc;

	if (cfg->dhcp6.duid_file) {
		snprintf(path, sizeof(path), "%s", cfg->dhcp6.duid_file);
	} else if ((slash = strrchr(cfg->database, '/'))) {
		snprintf(path, sizeof(path), "%.*s/dhcp6-duid", (int)(slash - cfg->database),
		         cfg->database);
	} else {
		snprintf(path, sizeof(path), "dhcp6-duid");
	}
	rc = d6_duid_load_or_create(path, first_mac(&cfg->dhcp6, mac) ? mac : NULL, clock_wall_s(),
	                            h->duid, &h->duid_len);
	if (rc != 0)
		log_warnx("DHCPv6: server DUID file %s: %s (a DUID is hex on one line)", path,
		          strerror(-rc));
	return rc;
}

int
dhcp_init(struct dstmd *d)
{
	const struct dstmd_dhcp6 *c = &d->cfg->dhcp6;
	struct d6_server_config sc = {0};
	struct dhcp *h;
	int rc;

	if (!c->enable)
		return 0;
	if (!(h = calloc(1, sizeof(*h))))
		return -ENOMEM;
	h->d = d;
	h->fd = -1;
	dh = h;
	if (!(h->rx = calloc(1, sizeof(*h->rx))) || !(h->tx = calloc(1, sizeof(*h->tx))))
		return -ENOMEM;
	if ((rc = load_duid(h, d->cfg)) != 0)
		return rc;
	sc.codes = c->codes;
	sc.duid = h->duid;
	sc.duid_len = h->duid_len;
	sc.preferred = c->preferred;
	sc.t1 = c->t1;
	sc.t2 = c->t2;
	sc.forms = c->form == 1   ? D6_FORM_IA_DSTM
	           : c->form == 2 ? D6_FORM_GLOBAL_V4
	                          : D6_FORM_IA_DSTM | D6_FORM_GLOBAL_V4;
	sc.rapid_commit = c->rapid_commit;
	sc.unicast = c->unicast;
	sc.require_auth = c->require_auth;
	sc.reconfigure = c->reconfigure;
	if (c->nkeys) {
		if (!(h->keys = calloc(c->nkeys, sizeof(*h->keys))))
			return -ENOMEM;
		for (size_t i = 0; i < c->nkeys; i++) {
			h->keys[i].realm = c->keys[i].realm;
			h->keys[i].key_id = c->keys[i].key_id;
			h->keys[i].secret = (const uint8_t *)c->keys[i].secret;
			h->keys[i].secret_len = strlen(c->keys[i].secret);
		}
		sc.keys = h->keys;
		sc.nkeys = c->nkeys;
	}
	if (c->dots_ri) {
		if ((rc = d6_name_encode(c->dots_ri, h->dots_ri, sizeof(h->dots_ri))) < 0) {
			log_warnx("DHCPv6: dots_ri \"%s\" is not a domain name", c->dots_ri);
			return rc;
		}
		sc.dots_ri = h->dots_ri;
		sc.dots_ri_len = (size_t)rc;
	}
	if (c->access_domain) {
		rc = d6_name_encode(c->access_domain, h->access_domain, sizeof(h->access_domain));
		if (rc < 0) {
			log_warnx("DHCPv6: access_domain \"%s\" is not a domain name",
			          c->access_domain);
			return rc;
		}
		sc.access_domain = h->access_domain;
		sc.access_domain_len = (size_t)rc;
	}
	sc.dots_addr = c->dots_address;
	sc.ndots_addr = c->ndots_address;
	sc.relays = c->relays;
	sc.nrelays = c->nrelays;
	sc.max_per_duid = c->per_duid;
	/* The per-/64 quota and rate are src/grant's, in op_acquire: the engine's is off. */
	sc.max_per_64 = 0;
	sc.max_clients = c->clients;
	sc.offer_hold = c->offer_hold;
	if (!(h->srv = d6_server_new(&sc, &lease_ops, d, clock_wall_s())))
		return -ENOMEM;
	if ((rc = open_socket(h, c)) != 0)
		return rc;
	if (!(h->ev = event_new(d->base, h->fd, EV_READ | EV_PERSIST, read_cb, h)))
		return -ENOMEM;
	if (!(h->flush_ev = event_new(d->base, -1, 0, flush_cb, h)) ||
	    !(h->pace_ev = evtimer_new(d->base, flush_cb, h)))
		return -ENOMEM;
	h->out_tail = &h->out;
	h->tokens = TX_BURST;
	clock_gettime(CLOCK_MONOTONIC, &h->tokens_at);
	event_priority_set(h->flush_ev, 1);
	event_add(h->ev, NULL);
	log_info("DHCPv6 on port %u (%zu interface%s)", c->port, c->ninterfaces,
	         c->ninterfaces == 1 ? "" : "s");
	return 0;
}

void
dhcp_fini(struct dstmd *d)
{
	struct dhcp *h = dh;

	if (!h)
		return;
	dh = NULL; /* pushes still in flight find no server and free themselves */
	if (h->ev)
		event_free(h->ev);
	if (h->flush_ev)
		event_free(h->flush_ev);
	if (h->pace_ev)
		event_free(h->pace_ev);
	if (h->fd >= 0) {
		tx_drain(h, true); /* replies a last commit released */
		close(h->fd);
	}
	for (struct dtx *x = h->out, *next; x; x = next) {
		next = x->next_out;
		free(x);
	}
	for (struct dtx *x = h->spare, *next; x; x = next) {
		next = x->next_out;
		free(x);
	}
	free(h->rx);
	free(h->tx);
	d6_server_free(h->srv);
	lw4o6_fini();
	free(h->keys);
	free(h);
}

void
dhcp_counters(const struct dstmd *d, json_t *o)
{
	const struct d6_server_counters *c;
	static const char *const rx_names[14] = {
	    "unknown",       "solicit",    "advertise",   "request",
	    "confirm",       "renew",      "rebind",      "reply",
	    "release",       "decline",    "reconfigure", "information_request",
	    "relay_forward", "relay_reply"};
	char k[64];

	if (!dh)
		return;
	c = d6_server_counters(dh->srv);
	json_object_set_new(o, "dhcp6_offers_unheld", json_integer((json_int_t)offers.unheld));
	for (unsigned i = 0; i < 14; i++) {
		snprintf(k, sizeof(k), "dhcp6_rx_%s", rx_names[i]);
		json_object_set_new(o, k, json_integer((json_int_t)c->rx[i]));
	}
	for (unsigned i = 1; i < D6_DROP__COUNT; i++) {
		snprintf(k, sizeof(k), "dhcp6_%s", d6_drop_name((enum d6_drop)i));
		json_object_set_new(o, k, json_integer((json_int_t)c->drop[i]));
	}
	json_object_set_new(o, "dhcp6_reconfigure_sent", json_integer((json_int_t)dh->reconf_sent));
	json_object_set_new(o, "dhcp6_reconfigure_unreachable",
	                    json_integer((json_int_t)dh->reconf_unreachable));
#define C(f) json_object_set_new(o, "dhcp6_" #f, json_integer((json_int_t)c->f))
	C(tx_advertise);
	C(tx_reply);
	C(tx_reconfigure);
	C(st_no_addrs);
	C(st_no_binding);
	C(st_not_on_link);
	C(st_use_multicast);
	C(st_unspec_fail);
	C(granted);
	C(renewed);
	C(released);
	C(declined);
	C(auth_ok);
	C(auth_refused);
	C(refused_foreign);
	C(refused_address);
	C(evicted_clients);
	C(clients_now);
#undef C
	json_object_set_new(o, "dhcp6_rx_errors", json_integer((json_int_t)dh->rx_errors));
	json_object_set_new(o, "dhcp6_tx_errors", json_integer((json_int_t)dh->tx_errors));
	json_object_set_new(o, "dhcp6_rx_batches", json_integer((json_int_t)dh->rx_batches));
	json_object_set_new(o, "dhcp6_tx_batches", json_integer((json_int_t)dh->tx_batches));
	json_object_set_new(o, "dhcp6_tx_paced", json_integer((json_int_t)dh->tx_paced));
	json_object_set_new(o, "dhcp6_waiting", json_integer((json_int_t)dh->pending_now));
	lw4o6_counters_json(o);
}
