/*
 * The DHCPv6 server engine for DSTM (RFC 8415 §18.3; seed 001 A, B;
 * seed 002 §6.2): a client message in, the lease calls of `d6_lease_ops`,
 * a reply out. No sockets and no clock of its own, so unit tests and the
 * fuzzer drive it directly. A client is its DUID; each of its IAs is one
 * lease, named "dhcp6:<duid hex>:<iaid hex>". This file decides;
 * d6_reply.c writes the Advertise or Reply.
 *
 * Decisions worth knowing:
 *  - Solicit without Rapid Commit takes the lease it advertises (staged in
 *    the caller's transaction, committed at the end of the loop turn) but
 *    pushes nothing to the TEP and waits for nothing: an Advertise grants
 *    nothing. The Request that follows renews that lease and its binding
 *    is pushed to the TEP before the Reply leaves. The per-DUID and
 *    per-/64 limits bound what Solicits alone can hold.
 *  - Unicast is refused with UseMulticast (we never send Server Unicast),
 *    whatever a direct message wraps: a Relay-forward is taken only from
 *    a relay the configuration trusts (`relays`), others are dropped.
 *  - Identity (DESIGN §4): a DUID and an IAID are what the client wrote.
 *    The lease calls get the verified address (source, or a trusted
 *    relay's innermost peer-address) and whether the message was signed,
 *    and refuse (-EPERM) to touch a lease bound to another address for an
 *    unsigned message: that IA gets NoBinding and nothing changes.
 *  - A reconfigure key is made with its lease and sent once, in the
 *    first Reply that grants the lease to its own address.
 *  - lw4o6 (RFC 7596, RFC 7598): an IA_NA in a message whose ORO asks for
 *    OPTION_S46_CONT_LW is an lwB4's, when the lease operations serve
 *    lw4o6. It gets an IPv6 address the server assigns (not the
 *    message's source: an lwB4 solicits from its link-local address) and
 *    the container with the TEP, the IPv4 address and the port set
 *    (d6_s46.c). The per-/64 limit does not apply: the IPv6 pool bounds it.
 *    Its lease is bound to that address, verified by construction (the
 *    server gave it to that DUID and IAID); a Release or Decline acts on
 *    it when it comes on-link (link-local source) or through a trusted
 *    relay and names that address in its IA_NA.
 *  - With `require_auth`, a message asking for DSTM options (any IA)
 *    without a valid delayed-authentication MAC is dropped and counted;
 *    a Solicit carrying an empty Authentication option (the client asks
 *    for it, RFC 3315 §21.4.4.1) gets a signed Advertise.
 */
#include <errno.h>
#include <stddef.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/hash.h"
#include "dhcp6/d6.h"
#include "dhcp6/d6_server_int.h"
#include "grant/grant.h"

#define CLIENT_BUCKETS      (1u << 16)
#define CLIENTS_MAX_DEFAULT 16384

/* DUIDs and /64s come from strangers: the tree's keyed hash (common/hash.h). */
static uint32_t
fnv(const uint8_t *p, size_t n)
{
	return (uint32_t)hash_bytes(p, n);
}

struct d6_server *
d6_server_new(const struct d6_server_config *cfg, const struct d6_lease_ops *ops, void *arg,
              int64_t now)
{
	struct d6_server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->ops = ops;
	s->arg = arg;
	/* RFC 3315 §21.3: a monotonically increasing counter; time-based survives restarts. */
	s->replay = (uint64_t)now << 32;
	if (!s->cfg.max_clients)
		s->cfg.max_clients = CLIENTS_MAX_DEFAULT;
	s->clients = calloc(CLIENT_BUCKETS, sizeof(*s->clients));
	if (!s->clients) {
		d6_server_free(s);
		return NULL;
	}
	return s;
}

void
d6_server_free(struct d6_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->clients && i < CLIENT_BUCKETS; i++)
		for (struct client_ent *e = s->clients[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	free(s->clients);
	free(s);
}

const struct d6_server_counters *
d6_server_counters(const struct d6_server *s)
{
	return &s->ctr;
}

static void
lru_unlink(struct d6_server *s, struct client_ent *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		s->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		s->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void
lru_push(struct d6_server *s, struct client_ent *e)
{
	e->lru_prev = NULL;
	e->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = e;
	else
		s->lru_tail = e;
	s->lru_head = e;
}

/* Forget the DUID heard least recently (the cap is reached). */
static void
client_evict(struct d6_server *s)
{
	struct client_ent *e = s->lru_tail, **pp;

	if (!e)
		return;
	lru_unlink(s, e);
	for (pp = &s->clients[fnv(e->duid, e->duid_len) & (CLIENT_BUCKETS - 1)]; *pp;
	     pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	free(e);
	s->ctr.clients_now = --s->nclients;
	s->ctr.evicted_clients++;
}

static struct client_ent *
client_get(struct d6_server *s, const uint8_t *duid, size_t len, bool create)
{
	uint32_t b = fnv(duid, len) & (CLIENT_BUCKETS - 1);
	struct client_ent *e;

	for (e = s->clients[b]; e; e = e->next)
		if (e->duid_len == len && !memcmp(e->duid, duid, len)) {
			lru_unlink(s, e);
			lru_push(s, e);
			return e;
		}
	if (!create || len > sizeof(e->duid))
		return NULL;
	if (s->nclients >= s->cfg.max_clients)
		client_evict(s);
	if (!(e = calloc(1, sizeof(*e))))
		return NULL;
	memcpy(e->duid, duid, len);
	e->duid_len = len;
	e->next = s->clients[b];
	s->clients[b] = e;
	lru_push(s, e);
	s->ctr.clients_now = ++s->nclients;
	return e;
}

/* The lease's key of one IA (src/grant spells it: "dhcp6:<duid hex>:<iaid hex>"). */
static void
identity_of(const struct d6_msg *m, uint32_t iaid, char *out, size_t cap)
{
	struct grant_identity id = {.kind = GRANT_ID_DUID, .iaid = iaid};

	/* d6_codec.c bounds a Client Identifier to GRANT_DUID_MAX octets (RFC 8415 §11.1). */
	id.duid_len = m->clientid_len < sizeof(id.duid) ? m->clientid_len : sizeof(id.duid);
	memcpy(id.duid, m->clientid, id.duid_len);
	(void)grant_identity_key(&id, out, cap);
}

bool
d6_identity_duid(const char *identity, uint8_t *duid, size_t cap, size_t *len)
{
	struct grant_identity id;

	if (!grant_identity_parse(identity, &id) || id.kind != GRANT_ID_DUID || id.duid_len > cap)
		return false;
	memcpy(duid, id.duid, id.duid_len);
	*len = id.duid_len;
	return true;
}

/* ---- Limits: leases per DUID and per client /64 (a flood cannot drain the pool) ---- */

static bool
duid_limit_ok(struct d6_server *s, const struct d6_msg *m, uint32_t iaid)
{
	struct client_ent *e;
	char id[D6_IDENTITY_MAX];
	struct d6_grant g;
	unsigned k = 0;

	if (!s->cfg.max_per_duid)
		return true;
	if (!(e = client_get(s, m->clientid, m->clientid_len, true)))
		return false;
	/* Forget the IAs whose lease ended (released, expired, revoked). */
	for (unsigned i = 0; i < e->niaid; i++) {
		identity_of(m, e->iaid[i], id, sizeof(id));
		if (e->iaid[i] != iaid && s->ops->find(s->arg, id, &g) == 0)
			e->iaid[k++] = e->iaid[i];
	}
	e->niaid = k;
	if (e->niaid >= s->cfg.max_per_duid || e->niaid >= DUID_TRACK_MAX)
		return false;
	e->iaid[e->niaid++] = iaid;
	return true;
}

/* The per-/64 limit, counted by the lease manager: nothing kept here per /64. */
static bool
net_limit_ok(struct d6_server *s, const struct in6_addr *v6)
{
	return !s->cfg.max_per_64 || !s->ops->count_64 ||
	       s->ops->count_64(s->arg, v6) < s->cfg.max_per_64;
}

/* ---- Serving IAs ---- */

bool
d6_srv_form_served(const struct d6_server *s, const struct d6_ia *ia)
{
	if (ia->code == s->cfg.codes.ia_dstm)
		return s->cfg.forms & D6_FORM_IA_DSTM;
	if (ia->code == D6_OPT_IA_NA && ia->global_v4)
		return s->cfg.forms & D6_FORM_GLOBAL_V4;
	return false; /* we hand out IPv4-mapped addresses only */
}

static uint32_t
hint_v4(const struct d6_ia *ia)
{
	uint32_t v4 = 0;

	if (ia->naddrs && addr_is_v4_mapped(&ia->addr, &v4))
		return v4;
	return 0;
}

static void
ia_status(struct d6_txn *t, unsigned i, uint16_t st)
{
	t->out[i].status = st;
	t->out[i].granted = false;
}

/*
 * Who sent an lw4o6 request, as the link saw it: the lwB4 speaks from its
 * link-local address, so its /64 (fe80::/64) is everyone's; the key is the
 * whole source address, or, through a trusted relay, the relay's address,
 * the innermost peer-address and that relay's Interface-Id (truncated to
 * what fits: two senders that then share a key share its limit).
 */
static size_t
lw_source(const struct d6_txn *t, uint8_t *k)
{
	const struct d6_relay *r;
	size_t n;

	memcpy(k, &t->rx.src, 16);
	if (!t->env.nrelays)
		return 16;
	r = &t->env.relay[t->env.nrelays - 1];
	memcpy(k + 16, &r->peer, 16);
	n = r->ifid_len < D6_LW_SRC_MAX - 32 ? r->ifid_len : D6_LW_SRC_MAX - 32;
	if (n)
		memcpy(k + 32, r->ifid, n);
	return 32 + n;
}

/* Take or renew the lease of IA i (Solicit, Request, Renew, Rebind). */
static void
serve_acquire(struct d6_server *s, struct d6_txn *t, unsigned i, bool must_exist)
{
	const struct d6_ia *ia = &t->m.ia[i];
	struct d6_ia_out *o = &t->out[i];
	struct d6_grant g;
	bool exists, was_offer;
	uint32_t want = hint_v4(ia);
	bool lw = t->lw && ia->code == D6_OPT_IA_NA && !ia->global_v4;
	int rc;

	if (!lw && !d6_srv_form_served(s, ia)) {
		ia_status(t, i, D6_ST_NO_ADDRS_AVAIL);
		return;
	}
	exists = s->ops->find(s->arg, o->identity, &g) == 0;
	if (!exists && must_exist) {
		if (t->m.type == D6_RENEW || !want) {
			/* RFC 8415 §18.3.4: no binding for this IA. */
			ia_status(t, i, D6_ST_NO_BINDING);
			return;
		}
		/* §18.3.5: a Rebind for an address we do not hold: it may no longer be used. */
		o->zero_lifetimes = true;
		o->status = D6_ST_SUCCESS;
		return;
	}
	if (!lw && !t->has_client_v6) {
		s->ctr.drop[D6_DROP_NO_ADDRESS]++;
		ia_status(t, i, D6_ST_NO_ADDRS_AVAIL);
		return;
	}
	if (!exists &&
	    (!duid_limit_ok(s, &t->m, ia->iaid) || (!lw && !net_limit_ok(s, &t->client_v6)))) {
		s->ctr.drop[D6_DROP_RATE]++;
		ia_status(t, i, D6_ST_NO_ADDRS_AVAIL);
		return;
	}
	was_offer = exists && (g.flags & D6_GRANT_OFFER);
	if (exists)
		want = g.v4;
	if (lw) {
		uint8_t k[D6_LW_SRC_MAX];
		size_t kn = lw_source(t, k);

		rc = s->ops->acquire_lw(s->arg, o->identity, k, kn, want, t->now, &g);
	} else
		rc = s->ops->acquire(s->arg, o->identity, &t->client_v6, t->authed, want, t->now,
		                     &g);
	if (rc == -EADDRNOTAVAIL && !exists && want && !lw) /* the hint is taken: any other */
		rc = s->ops->acquire(s->arg, o->identity, &t->client_v6, t->authed, 0, t->now, &g);
	if (rc == -EPERM) {
		/* Another host's lease, named by its DUID and IAID: not this sender's. */
		s->ctr.refused_foreign++;
		ia_status(t, i, D6_ST_NO_BINDING);
		return;
	}
	if (rc == -EACCES)
		s->ctr.refused_address++;
	if (rc == -EDQUOT)
		s->ctr.drop[D6_DROP_RATE]++; /* the caller's per-/64 (lw4o6: per-sender) limit */
	if (rc != 0) {
		ia_status(t, i, D6_ST_NO_ADDRS_AVAIL);
		return;
	}
	o->granted = true;
	o->status = D6_ST_SUCCESS;
	o->g = g;
	t->verified = true;
	if (g.flags & D6_GRANT_NEW) {
		s->ctr.granted++;
		t->fresh_lease = true;
	} else {
		s->ctr.renewed++;
	}
	if (t->reply_type == D6_ADVERTISE) {
		/* An Advertise grants nothing: a new lease (or an offer) is held briefly. */
		if (s->cfg.offer_hold && s->ops->hold && ((g.flags & D6_GRANT_NEW) || was_offer))
			s->ops->hold(s->arg, o->identity, s->cfg.offer_hold, t->now);
		return;
	}
	t->wait_commit = true;
	/* A new or moved binding, or the Request that completes a Solicit, goes to the TEP. */
	o->push = (g.flags & (D6_GRANT_NEW | D6_GRANT_MOVED)) || t->m.type == D6_REQUEST ||
	          t->m.type == D6_SOLICIT;
}

static void
serve_release(struct d6_server *s, struct d6_txn *t, unsigned i, bool declined)
{
	const struct d6_ia *ia = &t->m.ia[i];
	const struct in6_addr *who = &t->client_v6;
	uint32_t v4;
	int rc;

	/* lw4o6: the lwB4 speaks from its link-local address (or through a
	 * trusted relay that saw it so) and names in its IA_NA the address the
	 * server gave its DUID and IAID; the lease is bound to that address.
	 * Only then: a sender with a verified global address (its own source,
	 * a relay's peer-address) acts as that address, never as the one it
	 * names, or any host could release any lease by naming its address. */
	if (s->ops->acquire_lw && ia->code == D6_OPT_IA_NA && !ia->global_v4 && ia->naddrs &&
	    !addr_is_v4_mapped(&ia->addr, &v4) && !t->has_client_v6 &&
	    (t->env.nrelays || IN6_IS_ADDR_LINKLOCAL(&t->rx.src))) {
		struct d6_grant g;

		/* Only an lw4o6 lease: a DSTM lease is its client's own global address's. */
		if (s->ops->find(s->arg, t->out[i].identity, &g) == 0 && !g.lw) {
			s->ctr.refused_foreign++;
			ia_status(t, i, D6_ST_NO_BINDING);
			return;
		}
		who = &ia->addr;
	} else if (!t->has_client_v6) {
		/* Nothing verified to compare with the lease's address. */
		s->ctr.drop[D6_DROP_NO_ADDRESS]++;
		ia_status(t, i, D6_ST_NO_BINDING);
		return;
	}
	rc = s->ops->release(s->arg, t->out[i].identity, who, t->authed, declined, t->now);
	if (rc == -EPERM)
		s->ctr.refused_foreign++;
	if (rc != 0) {
		ia_status(t, i, D6_ST_NO_BINDING);
		return;
	}
	t->verified = true;
	t->out[i].status = D6_ST_SUCCESS;
	t->wait_commit = true;
	if (declined)
		s->ctr.declined++;
	else
		s->ctr.released++;
}

/* ---- Authentication of the request ---- */

/*
 * D6_OK with t->key set when the message carries a valid MAC (or asks
 * for authentication in a Solicit); `authed` says whether it was signed.
 */
static enum d6_drop
check_auth(struct d6_server *s, struct d6_txn *t, bool *authed)
{
	const struct d6_auth *a = &t->m.auth;
	const struct d6_key *k;
	struct client_ent *e;

	*authed = false;
	if (!t->m.has_auth || a->protocol != D6_AUTH_PROTO_DELAYED)
		return D6_OK;
	if (a->algorithm != D6_AUTH_ALG_HMAC_MD5 || a->rdm != D6_AUTH_RDM_COUNTER)
		return D6_DROP_AUTH_BAD;
	if (a->info_len == 0) {
		/* RFC 3315 §21.4.4.1: a Solicit asks; other messages must be signed. */
		if (t->m.type != D6_SOLICIT)
			return D6_DROP_AUTH_BAD;
		t->key = s->cfg.nkeys ? &s->cfg.keys[0] : NULL;
		return D6_OK;
	}
	k = d6_key_find(s->cfg.keys, s->cfg.nkeys, a->realm, a->realm_len, a->key_id);
	if (!k || !d6_auth_verify(&t->m, k->secret, k->secret_len))
		return D6_DROP_AUTH_BAD;
	/* RFC 3315 §21.3: the counter must grow from one message of a client to the next. */
	if (!(e = client_get(s, t->m.clientid, t->m.clientid_len, true)))
		return D6_DROP_AUTH_BAD;
	if (e->has_replay && a->replay <= e->last_replay)
		return D6_DROP_AUTH_REPLAY;
	e->has_replay = true;
	e->last_replay = a->replay;
	t->key = k;
	*authed = true;
	s->ctr.auth_ok++;
	return D6_OK;
}

/* ---- The reconfigure key (RFC 8415 §20.4) ---- */

/*
 * A new lease gets a new key; the key leaves once, in the first Reply
 * that grants a lease of the DUID to its own address (so never to a
 * stranger naming the DUID: its IAs are refused, nothing is granted).
 */
static void
reconf_key_give(struct d6_server *s, struct d6_txn *t)
{
	struct client_ent *e;
	bool granted = false;

	for (unsigned i = 0; i < t->m.nia; i++)
		granted |= t->out[i].granted;
	if (t->fresh_lease && (e = client_get(s, t->m.clientid, t->m.clientid_len, false)))
		e->has_reconf = e->reconf_sent = false;
	if (!granted || !t->m.reconf_accept || t->reply_type != D6_REPLY || t->key ||
	    !t->wait_commit)
		return;
	if (!(e = client_get(s, t->m.clientid, t->m.clientid_len, true)) || e->reconf_sent)
		return;
	if (!e->has_reconf && RAND_bytes(e->reconf_key, 16) == 1)
		e->has_reconf = true;
	if (!e->has_reconf)
		return;
	memcpy(t->reconf_key, e->reconf_key, 16);
	t->give_reconf_key = true;
	e->reconf_sent = true;
}

/* ---- The exchange ---- */

static enum d6_action
drop(struct d6_server *s, enum d6_drop r)
{
	s->ctr.drop[r]++;
	return D6_ACT_DROP;
}

/* RFC 8415 §19.1: a server may take Relay-forward from configured relays only. */
static bool
relay_trusted(const struct d6_server *s, const struct in6_addr *src)
{
	for (size_t i = 0; i < s->cfg.nrelays; i++)
		if (!memcmp(&s->cfg.relays[i], src, sizeof(*src)))
			return true;
	return false;
}

enum d6_action
d6_server_handle(struct d6_server *s, struct d6_txn *t, const void *msg, size_t len,
                 const struct d6_rx *rx, int64_t now)
{
	enum d6_drop r;
	bool authed, dstm, rapid = false;

	memset(&t->env, 0, sizeof(*t) - offsetof(struct d6_txn, env));
	t->inlen = 0;
	if (len > sizeof(t->in))
		return drop(s, D6_DROP_TOO_BIG);
	memcpy(t->in, msg, len);
	t->inlen = len;
	t->rx = *rx;
	t->now = now;
	t->top_status = 0xffff;
	if ((r = d6_unwrap(t->in, len, &t->env)) != D6_OK)
		return drop(s, r);
	/* Anyone can write a peer-address: only a trusted relay's counts (DESIGN §4). */
	if (t->env.nrelays && !relay_trusted(s, &rx->src))
		return drop(s, D6_DROP_RELAY_UNTRUSTED);
	s->ctr.rx[t->env.inner[0] <= 13 ? t->env.inner[0] : 0]++;
	if ((r = d6_parse(t->env.inner, t->env.inner_len, &s->cfg.codes, &t->m)) != D6_OK)
		return drop(s, r);
	if ((r = d6_validate_server(&t->m, s->cfg.duid, s->cfg.duid_len)) != D6_OK)
		return drop(s, r);
	if ((r = check_auth(s, t, &authed)) != D6_OK) {
		s->ctr.auth_refused++;
		return drop(s, r);
	}
	t->authed = authed;
	dstm = t->m.nia > 0;
	if (s->cfg.require_auth && dstm && !authed &&
	    !(t->m.type == D6_SOLICIT && t->key && !t->m.rapid_commit)) {
		/* seed 001 A §7, seed 000: DSTM options only to an authenticated client. */
		s->ctr.auth_refused++;
		return drop(s, D6_DROP_AUTH_MISSING);
	}
	for (unsigned i = 0; i < t->m.nia; i++)
		identity_of(&t->m, t->m.ia[i].iaid, t->out[i].identity, sizeof(t->out[i].identity));
	t->has_client_v6 = d6_client_v6(&t->env, &t->m, &rx->src, &t->client_v6);
	t->lw = s->ops->acquire_lw && d6_s46_requested(&t->m);
	t->reply_type = D6_REPLY;

	switch (t->m.type) {
	case D6_REQUEST:
	case D6_RENEW:
	case D6_RELEASE:
	case D6_DECLINE:
		if (!rx->multicast && t->env.nrelays == 0 && !s->cfg.unicast) {
			/* RFC 8415 §18.3.2 (and .4, .7, .8): no Server Unicast was given. */
			t->top_status = D6_ST_USE_MULTICAST;
			t->m.nia = 0;
			return D6_ACT_REPLY;
		}
		break;
	default:
		break;
	}

	switch (t->m.type) {
	case D6_SOLICIT:
		rapid = t->m.rapid_commit && s->cfg.rapid_commit;
		t->reply_type = rapid ? D6_REPLY : D6_ADVERTISE;
		for (unsigned i = 0; i < t->m.nia; i++)
			serve_acquire(s, t, i, false);
		if (!rapid) {
			bool any = false;
			for (unsigned i = 0; i < t->m.nia; i++)
				any |= t->out[i].granted;
			if (dstm && !any) {
				/* RFC 8415 §18.3.9: only a NoAddrsAvail status. */
				t->top_status = D6_ST_NO_ADDRS_AVAIL;
				t->m.nia = 0;
			}
		}
		break;
	case D6_REQUEST:
		for (unsigned i = 0; i < t->m.nia; i++)
			serve_acquire(s, t, i, false);
		break;
	case D6_RENEW:
	case D6_REBIND:
		for (unsigned i = 0; i < t->m.nia; i++)
			serve_acquire(s, t, i, true);
		break;
	case D6_RELEASE:
	case D6_DECLINE:
		for (unsigned i = 0; i < t->m.nia; i++)
			serve_release(s, t, i, t->m.type == D6_DECLINE);
		t->top_status = D6_ST_SUCCESS;
		t->top_msg = t->m.type == D6_RELEASE ? "released" : "declined";
		break;
	case D6_CONFIRM: {
		unsigned naddr = 0;
		bool onlink = true;

		for (unsigned i = 0; i < t->m.nia; i++) {
			struct d6_grant g;
			uint32_t v4;

			if (!t->m.ia[i].naddrs)
				continue;
			naddr++;
			if (addr_is_v4_mapped(&t->m.ia[i].addr, &v4)) {
				if (!s->ops->in_pool(s->arg, v4))
					onlink = false;
			} else if (!s->ops->acquire_lw ||
			           s->ops->find(s->arg, t->out[i].identity, &g) != 0 ||
			           memcmp(&g.v6, &t->m.ia[i].addr, 16) != 0) {
				/* lw4o6: only the address this server gave that IA. */
				onlink = false;
			}
		}
		/* RFC 8415 §18.3.3: no address, no reply. */
		if (naddr == 0)
			return drop(s, D6_DROP_BAD_OPTION);
		t->top_status = onlink ? D6_ST_SUCCESS : D6_ST_NOT_ON_LINK;
		t->m.nia = 0;
		break;
	}
	case D6_INFORMATION_REQUEST:
		break;
	default:
		return drop(s, D6_DROP_BAD_TYPE);
	}
	/* RFC 8415 §18.3.1: a Rapid Commit option in the Reply says the commit happened. */
	t->m.rapid_commit = rapid;
	if (s->cfg.reconfigure)
		reconf_key_give(s, t);
	return D6_ACT_REPLY;
}

void
d6_server_note_peer(struct d6_server *s, const struct d6_txn *t, const struct sockaddr_in6 *from)
{
	struct client_ent *e;

	if (t->env.nrelays || !t->verified || t->reply_type != D6_REPLY || !t->m.clientid ||
	    !(e = client_get(s, t->m.clientid, t->m.clientid_len, false)))
		return;
	e->peer = *from;
	e->has_peer = true;
}

int
d6_server_reconfigure(struct d6_server *s, const uint8_t *duid, size_t duid_len, uint8_t msg_type,
                      uint8_t *out, size_t cap, size_t *len, struct sockaddr_in6 *to)
{
	struct client_ent *e = client_get(s, duid, duid_len, false);
	struct wcur w = wcur_make(out, cap);
	uint8_t *val = NULL;

	*len = 0;
	if (!e || !e->has_reconf || !e->reconf_sent)
		return -ENOKEY;
	if (!e->has_peer)
		return -EHOSTUNREACH;
	if (msg_type != D6_RENEW && msg_type != D6_INFORMATION_REQUEST && msg_type != D6_REBIND)
		return -EINVAL;
	/* RFC 8415 §18.3.11: transaction-id 0, Server and Client Identifier, Reconfigure Message. */
	w_u8(&w, D6_RECONFIGURE);
	w_u8(&w, 0);
	w_u16(&w, 0);
	w_u16(&w, D6_OPT_SERVERID);
	w_u16(&w, (uint16_t)s->cfg.duid_len);
	w_bytes(&w, s->cfg.duid, s->cfg.duid_len);
	w_u16(&w, D6_OPT_CLIENTID);
	w_u16(&w, (uint16_t)duid_len);
	w_bytes(&w, duid, duid_len);
	w_u16(&w, D6_OPT_RECONF_MSG);
	w_u16(&w, 1);
	w_u8(&w, msg_type);
	/* §20.4.1: HMAC-MD5 with the reconfigure key, over the message with the digest zero. */
	d6_auth_put_reconf(&w, 2, e->reconf_key, ++s->replay, &val);
	if (w.err || !val)
		return -EMSGSIZE;
	*len = w_len(&w);
	d6_auth_sign(out, *len, e->reconf_key, 16, val);
	*to = e->peer;
	s->ctr.tx_reconfigure++;
	return 0;
}
