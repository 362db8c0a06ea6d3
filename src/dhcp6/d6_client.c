/*
 * The DHCPv6 client engine of a DSTM host (RFC 8415 §18.2; seed 001 A;
 * seed 002 §6.1.1, §6.3): Solicit -> Request -> Bound -> Renew at T1 ->
 * Rebind at T2 -> lost at the end of the valid lifetime; Release on
 * shutdown, Decline when the address proves unusable, Reconfigure from
 * the server. Packets and time in, packets and events out: dstm-client
 * holds the socket and the DTI. With a key configured, every Advertise,
 * Reply and Reconfigure that is not authenticated with it is dropped
 * (seed 001 A §7: "a DHCPv6 client MUST use authenticated DHCPv6").
 * As an lwB4 (cfg.lw4o6, RFC 7596 §5.1) it asks with an IA_NA and an ORO
 * holding OPTION_S46_CONT_LW, and its lease is the IA_NA address plus the
 * IPv4 address, TEP and port set of the RFC 7598 container.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "dhcp6/d6.h"

/* RFC 8415 §7.6: transmission parameters, in ms. */
#define SOL_TIMEOUT 1000
#define SOL_MAX_RT  3600000
#define REQ_TIMEOUT 1000
#define REQ_MAX_RT  30000
#define REQ_MAX_RC  10
#define REN_TIMEOUT 10000
#define REN_MAX_RT  600000
#define REB_TIMEOUT 10000
#define REB_MAX_RT  600000
#define REL_TIMEOUT 1000
#define REL_MAX_RC  4
#define DEC_TIMEOUT 1000
#define DEC_MAX_RC  4

struct d6_client {
	struct d6_client_config cfg;
	enum d6_client_state state;
	uint32_t xid;
	int64_t started, next_tx, rt;
	unsigned rc;
	uint8_t server[D6_DUID_MAX + 2];
	size_t server_len;
	struct d6_lease_info lease;
	bool bound;
	int64_t t1_at, t2_at, expire_at;
	uint8_t out[D6_MAX_MSG];
	size_t outlen;
	bool has_out;
	uint64_t replay_out, replay_in;
	bool has_replay_in;
	bool has_reconf_key;
	uint8_t reconf_key[16];
	uint64_t drops[D6_DROP__COUNT];
};

static uint32_t
rnd(struct d6_client *c)
{
	return c->cfg.random ? c->cfg.random(c->cfg.random_arg) : (uint32_t)random();
}

/* RFC 8415 §15: RAND is uniform in [-0.1, +0.1] of the timeout. */
static int64_t
jitter(struct d6_client *c, int64_t t)
{
	int64_t span = t / 5;

	return span ? t - t / 10 + (int64_t)(rnd(c) % (uint64_t)(span + 1)) : t;
}

struct d6_client *
d6_client_new(const struct d6_client_config *cfg)
{
	struct d6_client *c;

	if (!cfg->duid || cfg->duid_len < 3 || cfg->duid_len > D6_DUID_MAX + 2)
		return NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return NULL;
	c->cfg = *cfg;
	c->state = D6C_INIT;
	return c;
}

void
d6_client_free(struct d6_client *c)
{
	free(c);
}

enum d6_client_state
d6_client_state(const struct d6_client *c)
{
	return c->state;
}

const struct d6_lease_info *
d6_client_lease(const struct d6_client *c)
{
	return c->bound ? &c->lease : NULL;
}

uint64_t
d6_client_drops(const struct d6_client *c, enum d6_drop r)
{
	return (unsigned)r < D6_DROP__COUNT ? c->drops[r] : 0;
}

/* ---- Building messages ---- */

static void
put_ia(struct d6_client *c, struct wcur *w, bool with_addr)
{
	uint16_t code = c->cfg.global_v4_form || c->cfg.lw4o6 ? D6_OPT_IA_NA : c->cfg.codes.ia_dstm;
	uint8_t *lenp;

	if (c->cfg.global_v4_form && !c->cfg.lw4o6) {
		/* seed 002 §6.1.1: the request carries the option without a TEP. */
		w_u16(w, c->cfg.codes.global_v4);
		w_u16(w, 0);
	}
	w_u16(w, code);
	lenp = w_reserve(w, 2);
	w_u32(w, c->cfg.iaid);
	w_u32(w, 0); /* seed 001 A §4: no preference for T1 and T2 */
	w_u32(w, 0);
	if (with_addr && c->bound) {
		struct in6_addr mapped;

		if (c->cfg.lw4o6)
			mapped = c->lease.v6;
		else
			addr_v4_mapped(&mapped, c->lease.v4);
		w_u16(w, D6_OPT_IAADDR);
		w_u16(w, 24);
		w_bytes(w, &mapped, 16);
		w_u32(w, 0);
		w_u32(w, 0);
	}
	if (lenp)
		w_put16_at(lenp, (uint16_t)(w->p - lenp - 2));
}

static void
build(struct d6_client *c, uint8_t type, int64_t now)
{
	struct wcur w = wcur_make(c->out, sizeof(c->out));
	int64_t el = (now - c->started) / 10;
	uint8_t *mac = NULL;

	w_u8(&w, type);
	w_u8(&w, (uint8_t)(c->xid >> 16));
	w_u16(&w, (uint16_t)c->xid);
	w_u16(&w, D6_OPT_CLIENTID);
	w_u16(&w, (uint16_t)c->cfg.duid_len);
	w_bytes(&w, c->cfg.duid, c->cfg.duid_len);
	if (type != D6_SOLICIT && type != D6_REBIND && c->server_len) {
		w_u16(&w, D6_OPT_SERVERID);
		w_u16(&w, (uint16_t)c->server_len);
		w_bytes(&w, c->server, c->server_len);
	}
	/* RFC 8415 §21.9: hundredths of a second since the exchange began. */
	w_u16(&w, D6_OPT_ELAPSED_TIME);
	w_u16(&w, 2);
	w_u16(&w, c->rc == 0 ? 0 : (uint16_t)(el > 0xffff ? 0xffff : el));
	if (type == D6_SOLICIT && c->cfg.rapid_commit) {
		w_u16(&w, D6_OPT_RAPID_COMMIT);
		w_u16(&w, 0);
	}
	if (type == D6_SOLICIT || type == D6_REQUEST || type == D6_RENEW || type == D6_REBIND) {
		w_u16(&w, D6_OPT_RECONF_ACCEPT);
		w_u16(&w, 0);
	}
	put_ia(c, &w, type != D6_SOLICIT);
	if (c->cfg.lw4o6 && type != D6_RELEASE && type != D6_DECLINE) {
		/* RFC 7598 §5: the container comes only when the ORO asks for it. */
		w_u16(&w, D6_OPT_ORO);
		w_u16(&w, 2);
		w_u16(&w, D6_OPT_S46_CONT_LW);
	}
	if (c->cfg.key) {
		if (type == D6_SOLICIT) {
			/* RFC 3315 §21.4.4.1: ask for delayed authentication, no information. */
			w_u16(&w, D6_OPT_AUTH);
			w_u16(&w, 11);
			w_u8(&w, D6_AUTH_PROTO_DELAYED);
			w_u8(&w, D6_AUTH_ALG_HMAC_MD5);
			w_u8(&w, D6_AUTH_RDM_COUNTER);
			w_u32(&w, (uint32_t)(++c->replay_out >> 32));
			w_u32(&w, (uint32_t)c->replay_out);
		} else {
			d6_auth_put_delayed(&w, c->cfg.key, ++c->replay_out, &mac);
		}
	}
	if (w.err)
		return;
	c->outlen = w_len(&w);
	if (mac)
		d6_auth_sign(c->out, c->outlen, c->cfg.key->secret, c->cfg.key->secret_len, mac);
	c->has_out = true;
}

static uint8_t state_msg(enum d6_client_state s);

/* Begin the exchange of `state` with initial timeout irt (RFC 8415 §15). */
static void
begin(struct d6_client *c, enum d6_client_state state, int64_t irt, int64_t now)
{
	c->state = state;
	c->xid = rnd(c) & 0xffffff;
	c->started = now;
	c->rc = 0;
	c->rt = jitter(c, irt);
	build(c, state_msg(state), now);
	c->next_tx = now + c->rt;
}

static uint8_t
state_msg(enum d6_client_state s)
{
	switch (s) {
	case D6C_SOLICIT:
		return D6_SOLICIT;
	case D6C_REQUEST:
		return D6_REQUEST;
	case D6C_RENEW:
		return D6_RENEW;
	case D6C_REBIND:
		return D6_REBIND;
	case D6C_RELEASE:
		return D6_RELEASE;
	case D6C_DECLINE:
		return D6_DECLINE;
	default:
		return 0;
	}
}

void
d6_client_start(struct d6_client *c, int64_t now)
{
	c->bound = false;
	c->server_len = 0;
	begin(c, D6C_SOLICIT, SOL_TIMEOUT, now);
}

bool
d6_client_output(struct d6_client *c, uint8_t *buf, size_t cap, size_t *len)
{
	if (!c->has_out || c->outlen > cap)
		return false;
	memcpy(buf, c->out, c->outlen);
	*len = c->outlen;
	c->has_out = false;
	return true;
}

void
d6_client_release(struct d6_client *c, int64_t now)
{
	if (!c->bound) {
		c->state = D6C_STOPPED;
		return;
	}
	begin(c, D6C_RELEASE, REL_TIMEOUT, now);
}

void
d6_client_decline(struct d6_client *c, int64_t now)
{
	if (c->bound)
		begin(c, D6C_DECLINE, DEC_TIMEOUT, now);
}

int64_t
d6_client_next(const struct d6_client *c)
{
	int64_t n = INT64_MAX;

	switch (c->state) {
	case D6C_SOLICIT:
	case D6C_REQUEST:
	case D6C_RENEW:
	case D6C_REBIND:
	case D6C_RELEASE:
	case D6C_DECLINE:
		n = c->next_tx;
		break;
	default:
		break;
	}
	if (c->bound) {
		if (c->state == D6C_BOUND && c->t1_at < n)
			n = c->t1_at;
		if ((c->state == D6C_BOUND || c->state == D6C_RENEW) && c->t2_at < n)
			n = c->t2_at;
		if (c->expire_at < n)
			n = c->expire_at;
	}
	return n;
}

static enum d6_client_event
lose(struct d6_client *c, int64_t now)
{
	c->bound = false;
	d6_client_start(c, now);
	return D6C_EV_LOST;
}

enum d6_client_event
d6_client_tick(struct d6_client *c, int64_t now)
{
	if (c->bound && now >= c->expire_at && c->state != D6C_RELEASE && c->state != D6C_STOPPED) {
		/* seed 002 §6.3: at the end of the valid lifetime the address goes. */
		return lose(c, now);
	}
	if (c->bound && c->state == D6C_BOUND && now >= c->t2_at) {
		begin(c, D6C_REBIND, REB_TIMEOUT, now);
		return D6C_EV_NONE;
	}
	if (c->bound && c->state == D6C_BOUND && now >= c->t1_at) {
		begin(c, D6C_RENEW, REN_TIMEOUT, now);
		return D6C_EV_NONE;
	}
	if (c->bound && c->state == D6C_RENEW && now >= c->t2_at) {
		begin(c, D6C_REBIND, REB_TIMEOUT, now);
		return D6C_EV_NONE;
	}
	if (now < c->next_tx || !state_msg(c->state))
		return D6C_EV_NONE;
	c->rc++;
	switch (c->state) {
	case D6C_REQUEST:
		if (c->rc >= REQ_MAX_RC) {
			d6_client_start(c, now);
			return D6C_EV_NONE;
		}
		break;
	case D6C_RELEASE:
	case D6C_DECLINE:
		if (c->rc >= (c->state == D6C_RELEASE ? REL_MAX_RC : DEC_MAX_RC)) {
			bool rel = c->state == D6C_RELEASE;
			c->bound = false;
			if (rel) {
				c->state = D6C_STOPPED;
				return D6C_EV_RELEASED;
			}
			d6_client_start(c, now);
			return D6C_EV_LOST;
		}
		break;
	default:
		break;
	}
	/* RFC 8415 §15: RT = 2*RTprev + RAND*RTprev, capped by MRT. */
	{
		int64_t mrt = c->state == D6C_SOLICIT   ? SOL_MAX_RT
		              : c->state == D6C_REQUEST ? REQ_MAX_RT
		              : c->state == D6C_RENEW   ? REN_MAX_RT
		              : c->state == D6C_REBIND  ? REB_MAX_RT
		                                        : INT64_MAX;
		c->rt = jitter(c, 2 * c->rt);
		if (c->rt > mrt)
			c->rt = jitter(c, mrt);
	}
	build(c, state_msg(c->state), now);
	c->next_tx = now + c->rt;
	return D6C_EV_NONE;
}

/* ---- Input ---- */

static bool
authenticated(struct d6_client *c, const struct d6_msg *m)
{
	const struct d6_auth *a = &m->auth;

	if (!c->cfg.key)
		return true;
	if (!m->has_auth || a->protocol != D6_AUTH_PROTO_DELAYED || a->info_len == 0 ||
	    a->key_id != c->cfg.key->key_id || a->realm_len != strlen(c->cfg.key->realm) ||
	    memcmp(a->realm, c->cfg.key->realm, a->realm_len) != 0 ||
	    !d6_auth_verify(m, c->cfg.key->secret, c->cfg.key->secret_len)) {
		c->drops[D6_DROP_AUTH_BAD]++;
		return false;
	}
	if (c->has_replay_in && a->replay <= c->replay_in) {
		c->drops[D6_DROP_AUTH_REPLAY]++;
		return false;
	}
	c->has_replay_in = true;
	c->replay_in = a->replay;
	return true;
}

/* Our IA in a server message, or NULL. */
static const struct d6_ia *
our_ia(const struct d6_client *c, const struct d6_msg *m)
{
	uint16_t code = c->cfg.global_v4_form || c->cfg.lw4o6 ? D6_OPT_IA_NA : c->cfg.codes.ia_dstm;

	for (unsigned i = 0; i < m->nia; i++)
		if (m->ia[i].code == code && m->ia[i].iaid == c->cfg.iaid)
			return &m->ia[i];
	return NULL;
}

/* An IA that grants an IPv4-mapped address with a non-zero valid lifetime. */
static bool
ia_grants(const struct d6_ia *ia, uint32_t *v4)
{
	return ia && (!ia->has_status || ia->status == D6_ST_SUCCESS) && ia->naddrs &&
	       ia->valid > 0 && addr_is_v4_mapped(&ia->addr, v4);
}

/*
 * lw4o6: an IA_NA with a (non-mapped) address and a container binding an
 * IPv4 address to that address (RFC 7596 §5.1: the bind prefix names
 * the address the softwire is built on) and naming a BR.
 */
static bool
lw_grants(const struct d6_ia *ia, const struct d6_msg *m, struct d6_s46_lw *lw)
{
	uint32_t v4;
	unsigned plen;

	if (!ia || (ia->has_status && ia->status != D6_ST_SUCCESS) || !ia->naddrs ||
	    ia->valid == 0 || addr_is_v4_mapped(&ia->addr, &v4) || !m->s46_lw ||
	    !d6_s46_parse_cont(m->s46_lw, m->s46_lw_len, lw) || !lw->has_br || !lw->has_bind)
		return false;
	plen = lw->prefix6_len;
	return addr_v6_in_prefix(&ia->addr, &lw->prefix6, plen);
}

/* Either form: the IPv4 address the IA grants. */
static bool
grants(const struct d6_client *c, const struct d6_ia *ia, const struct d6_msg *m, uint32_t *v4)
{
	struct d6_s46_lw lw;

	if (!c->cfg.lw4o6)
		return ia_grants(ia, v4);
	if (!lw_grants(ia, m, &lw))
		return false;
	*v4 = lw.v4;
	return true;
}

static enum d6_client_event
take_lease(struct d6_client *c, const struct d6_msg *m, const struct d6_ia *ia, int64_t now)
{
	struct d6_lease_info l = {0};
	struct d6_s46_lw lw;
	bool changed;

	if (c->cfg.lw4o6 && lw_grants(ia, m, &lw)) {
		l.lw = true;
		l.v4 = lw.v4;
		l.v6 = ia->addr;
		l.has_tep = true;
		l.tep = lw.br;
		if (lw.has_portparams && lw.psid_len) {
			l.psid_offset = lw.psid_offset;
			l.psid_len = lw.psid_len;
			l.psid = lw.psid;
		}
	} else {
		addr_is_v4_mapped(&ia->addr, &l.v4);
	}
	if (ia->has_ports) {
		l.port_lo = ia->port_lo;
		l.port_hi = ia->port_hi;
	}
	if (ia->has_tep) {
		l.has_tep = true;
		l.tep = ia->tep;
	} else if (ia->global_v4 && m->global_v4_has_tep) {
		l.has_tep = true;
		l.tep = m->global_v4_tep;
	}
	l.preferred = ia->preferred;
	l.valid = ia->valid;
	/* RFC 8415 §18.2.4: T1/T2 of 0 leave the choice to the client (.5/.8). */
	l.t1 = ia->t1 ? ia->t1 : ia->preferred / 2;
	l.t2 = ia->t2 ? ia->t2 : (uint32_t)((uint64_t)ia->preferred * 4 / 5);
	l.obtained = now;
	changed = !c->bound || c->lease.v4 != l.v4 || c->lease.port_lo != l.port_lo ||
	          c->lease.has_tep != l.has_tep || memcmp(&c->lease.v6, &l.v6, 16) != 0 ||
	          c->lease.psid != l.psid || c->lease.psid_len != l.psid_len ||
	          (l.has_tep && memcmp(&c->lease.tep, &l.tep, 16) != 0);
	c->lease = l;
	c->bound = true;
	c->state = D6C_BOUND;
	c->t1_at = now + (int64_t)l.t1 * 1000;
	c->t2_at = now + (int64_t)l.t2 * 1000;
	c->expire_at = now + (int64_t)l.valid * 1000;
	c->has_out = false;
	if (m->serverid && m->serverid_len <= sizeof(c->server)) {
		memcpy(c->server, m->serverid, m->serverid_len);
		c->server_len = m->serverid_len;
	}
	return changed ? D6C_EV_BOUND : D6C_EV_RENEWED;
}

static void
keep_reconf_key(struct d6_client *c, const struct d6_msg *m)
{
	/* RFC 8415 §20.4.2: the key arrives in a Reply, type 1. */
	if (m->has_auth && m->auth.protocol == D6_AUTH_PROTO_RECONF && m->auth.info_len == 17 &&
	    m->auth.info[0] == 1) {
		memcpy(c->reconf_key, m->auth.info + 1, 16);
		c->has_reconf_key = true;
	}
}

static enum d6_client_event
on_reconfigure(struct d6_client *c, const struct d6_msg *m, int64_t now)
{
	bool ok;

	/* RFC 8415 §18.2.11: only when bound, authenticated, asking for a known message. */
	if (!c->bound || c->state != D6C_BOUND || !m->has_reconf_msg) {
		c->drops[D6_DROP_BAD_TYPE]++;
		return D6C_EV_NONE;
	}
	if (c->cfg.key)
		ok = authenticated(c, m);
	else
		ok = c->has_reconf_key && m->has_auth && m->auth.protocol == D6_AUTH_PROTO_RECONF &&
		     m->auth.mac_off && d6_auth_verify(m, c->reconf_key, 16);
	if (!ok) {
		if (!c->cfg.key)
			c->drops[D6_DROP_AUTH_BAD]++;
		return D6C_EV_NONE;
	}
	if (m->reconf_msg == D6_RENEW)
		begin(c, D6C_RENEW, REN_TIMEOUT, now);
	else if (m->reconf_msg == D6_REBIND)
		begin(c, D6C_REBIND, REB_TIMEOUT, now);
	return D6C_EV_NONE;
}

enum d6_client_event
d6_client_input(struct d6_client *c, const uint8_t *p, size_t n, int64_t now)
{
	struct d6_msg m;
	const struct d6_ia *ia;
	enum d6_drop r;
	uint32_t v4;

	if ((r = d6_parse(p, n, &c->cfg.codes, &m)) != D6_OK) {
		c->drops[r]++;
		return D6C_EV_NONE;
	}
	/* RFC 8415 §16.3, §16.10, §16.11: our Client Identifier, a Server Identifier. */
	if (!m.clientid || m.clientid_len != c->cfg.duid_len ||
	    memcmp(m.clientid, c->cfg.duid, m.clientid_len) != 0) {
		c->drops[D6_DROP_NO_CLIENTID]++;
		return D6C_EV_NONE;
	}
	if (!m.serverid) {
		c->drops[D6_DROP_SERVERID]++;
		return D6C_EV_NONE;
	}
	if (m.type == D6_RECONFIGURE)
		return on_reconfigure(c, &m, now);
	if ((m.type != D6_ADVERTISE && m.type != D6_REPLY) || !state_msg(c->state)) {
		c->drops[D6_DROP_BAD_TYPE]++;
		return D6C_EV_NONE;
	}
	if (m.xid != c->xid) {
		c->drops[D6_DROP_XID]++;
		return D6C_EV_NONE;
	}
	if (!authenticated(c, &m))
		return D6C_EV_NONE;
	ia = our_ia(c, &m);

	switch (c->state) {
	case D6C_SOLICIT:
		if (m.type == D6_REPLY && m.rapid_commit && grants(c, ia, &m, &v4)) {
			keep_reconf_key(c, &m);
			return take_lease(c, &m, ia, now);
		}
		if (m.type != D6_ADVERTISE || !grants(c, ia, &m, &v4))
			return D6C_EV_NONE; /* NoAddrsAvail: keep soliciting (§18.2.9) */
		memcpy(c->server, m.serverid, m.serverid_len);
		c->server_len = m.serverid_len;
		/* Ask for the advertised address. */
		c->lease.v4 = v4;
		c->lease.v6 = ia->addr;
		c->bound = true;
		begin(c, D6C_REQUEST, REQ_TIMEOUT, now);
		c->bound = false;
		return D6C_EV_NONE;
	case D6C_REQUEST:
	case D6C_RENEW:
	case D6C_REBIND:
		if (m.type != D6_REPLY)
			return D6C_EV_NONE;
		if (m.has_status && m.status == D6_ST_USE_MULTICAST)
			return D6C_EV_NONE; /* we do multicast: the retransmission will do */
		if (grants(c, ia, &m, &v4)) {
			keep_reconf_key(c, &m);
			return take_lease(c, &m, ia, now);
		}
		if (ia && ia->has_status && ia->status == D6_ST_NO_BINDING && c->bound) {
			/* §18.2.10.1: the server lost us: Request the same address. */
			begin(c, D6C_REQUEST, REQ_TIMEOUT, now);
			return D6C_EV_NONE;
		}
		if (c->state == D6C_REQUEST || (ia && ia->naddrs && ia->valid == 0))
			return c->bound ? lose(c, now) : (d6_client_start(c, now), D6C_EV_NONE);
		return D6C_EV_NONE;
	case D6C_RELEASE:
		c->bound = false;
		c->state = D6C_STOPPED;
		c->has_out = false;
		return D6C_EV_RELEASED;
	case D6C_DECLINE:
		return lose(c, now);
	default:
		return D6C_EV_NONE;
	}
}
