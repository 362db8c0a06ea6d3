/*
 * The DHCPv6 server's replies (RFC 8415 §18.3, §21): the Advertise or
 * Reply that d6_server_handle() decided, its IAs with their addresses or
 * status codes, the options the client asked for in its ORO, the
 * delayed-authentication MAC, and one Relay-reply per Relay-forward
 * (§19.3). The decisions are d6_server.c's; this file only writes them.
 */
#include <errno.h>
#include <string.h>

#include "common/addr.h"
#include "dhcp6/d6.h"
#include "dhcp6/d6_server_int.h"

static void
put_status(struct wcur *w, uint16_t st, const char *text)
{
	size_t n = text ? strlen(text) : 0;

	w_u16(w, D6_OPT_STATUS_CODE);
	w_u16(w, (uint16_t)(2 + n));
	w_u16(w, st);
	w_bytes(w, text, n);
}

static void
count_status(struct d6_server *s, uint16_t st)
{
	switch (st) {
	case D6_ST_NO_ADDRS_AVAIL:
		s->ctr.st_no_addrs++;
		break;
	case D6_ST_NO_BINDING:
		s->ctr.st_no_binding++;
		break;
	case D6_ST_NOT_ON_LINK:
		s->ctr.st_not_on_link++;
		break;
	case D6_ST_USE_MULTICAST:
		s->ctr.st_use_multicast++;
		break;
	case D6_ST_UNSPEC_FAIL:
		s->ctr.st_unspec_fail++;
		break;
	default:
		break;
	}
}

static const char *
status_text(uint16_t st)
{
	switch (st) {
	case D6_ST_NO_ADDRS_AVAIL:
		return "no IPv4 address available";
	case D6_ST_NO_BINDING:
		return "no binding for this IA";
	case D6_ST_NOT_ON_LINK:
		return "address not in a DSTM pool";
	case D6_ST_USE_MULTICAST:
		return "use multicast";
	case D6_ST_UNSPEC_FAIL:
		return "the tunnel end point refused the binding";
	default:
		return NULL;
	}
}

static void
put_ia(struct d6_server *s, struct wcur *w, const struct d6_txn *t, unsigned i)
{
	const struct d6_ia *ia = &t->m.ia[i];
	const struct d6_ia_out *o = &t->out[i];
	bool dstm = ia->code == s->cfg.codes.ia_dstm;
	bool granted = o->granted && !o->refused;
	uint32_t valid = 0, pref = 0, t1 = 0, t2 = 0;
	uint16_t st = o->refused ? D6_ST_UNSPEC_FAIL : o->status;
	uint8_t *lenp;
	struct in6_addr mapped;

	if (granted) {
		valid = o->g.expiry > t->now ? (uint32_t)(o->g.expiry - t->now) : 0;
		pref = s->cfg.preferred && s->cfg.preferred < valid ? s->cfg.preferred : valid;
		/* seed 001 A §4, RFC 8415 §21.4: .5 and .8 of the preferred lifetime. */
		t1 = s->cfg.t1 ? s->cfg.t1 : pref / 2;
		t2 = s->cfg.t2 ? s->cfg.t2 : (uint32_t)((uint64_t)pref * 4 / 5);
		if (t1 > t2)
			t1 = t2;
	}
	if (!dstm && ia->global_v4 && d6_srv_form_served(s, ia)) {
		/* seed 002 §6.1.2: the Global IPv4 Address option, naming the TEP, then the IA. */
		w_u16(w, s->cfg.codes.global_v4);
		w_u16(w, granted ? 16 : 0);
		if (granted)
			w_bytes(w, &o->g.tep, 16);
	}
	w_u16(w, ia->code);
	lenp = w_reserve(w, 2);
	w_u32(w, ia->iaid);
	w_u32(w, t1);
	w_u32(w, t2);
	if (granted || o->zero_lifetimes) {
		if (granted && o->g.lw)
			mapped = o->g.v6; /* lw4o6: the address the server assigned */
		else if (granted)
			addr_v4_mapped(&mapped, o->g.v4);
		else
			mapped = ia->addr;
		w_u16(w, D6_OPT_IAADDR);
		w_u16(w, 24);
		w_bytes(w, &mapped, 16);
		w_u32(w, pref);
		w_u32(w, valid);
	}
	if (granted && dstm) {
		/* seed 001 A §5: the TEP; seed 001 B §4: the ports of a shared address. */
		w_u16(w, s->cfg.codes.tep);
		w_u16(w, 16);
		w_bytes(w, &o->g.tep, 16);
		if (o->g.port_lo || o->g.port_hi) {
			w_u16(w, s->cfg.codes.ports);
			w_u16(w, 4);
			w_u16(w, o->g.port_lo);
			w_u16(w, o->g.port_hi);
		}
	}
	if (st != D6_ST_SUCCESS) {
		put_status(w, st, status_text(st));
		count_status(s, st);
	}
	if (lenp)
		w_put16_at(lenp, (uint16_t)(w->p - lenp - 2));
}

static bool
requested(const struct d6_msg *m, uint16_t code)
{
	for (unsigned i = 0; code && i < m->noro; i++)
		if (m->oro[i] == code)
			return true;
	return false;
}

/* The client's message part of the reply, at w. */
static void
build_inner(struct d6_server *s, struct d6_txn *t, struct wcur *w)
{
	const struct d6_msg *m = &t->m;
	uint8_t *start = w->p, *mac = NULL;

	w_u8(w, t->reply_type);
	w_u8(w, (uint8_t)(m->xid >> 16));
	w_u16(w, (uint16_t)m->xid);
	w_u16(w, D6_OPT_SERVERID);
	w_u16(w, (uint16_t)s->cfg.duid_len);
	w_bytes(w, s->cfg.duid, s->cfg.duid_len);
	if (m->clientid) {
		w_u16(w, D6_OPT_CLIENTID);
		w_u16(w, (uint16_t)m->clientid_len);
		w_bytes(w, m->clientid, m->clientid_len);
	}
	if (t->top_status != 0xffff) {
		put_status(w, t->top_status, t->top_msg ? t->top_msg : status_text(t->top_status));
		count_status(s, t->top_status);
	}
	if (m->rapid_commit) {
		w_u16(w, D6_OPT_RAPID_COMMIT);
		w_u16(w, 0);
	}
	for (unsigned i = 0; i < m->nia; i++)
		put_ia(s, w, t, i);
	/* RFC 7598 §5: one container, for the (first) lw4o6 lease of the message. */
	for (unsigned i = 0; t->lw && i < m->nia; i++)
		if (t->out[i].granted && !t->out[i].refused && t->out[i].g.lw) {
			d6_s46_put_cont(w, &t->out[i].g);
			break;
		}
	/* RFC 8973 §5.1, RFC 5986 §3: only what the ORO asked for. */
	if (s->cfg.dots_ri && requested(m, s->cfg.codes.dots_ri)) {
		w_u16(w, s->cfg.codes.dots_ri);
		w_u16(w, (uint16_t)s->cfg.dots_ri_len);
		w_bytes(w, s->cfg.dots_ri, s->cfg.dots_ri_len);
	}
	if (s->cfg.ndots_addr && requested(m, s->cfg.codes.dots_address)) {
		w_u16(w, s->cfg.codes.dots_address);
		w_u16(w, (uint16_t)(16 * s->cfg.ndots_addr));
		for (size_t i = 0; i < s->cfg.ndots_addr; i++)
			w_bytes(w, &s->cfg.dots_addr[i], 16);
	}
	if (s->cfg.access_domain && requested(m, s->cfg.codes.access_domain)) {
		w_u16(w, s->cfg.codes.access_domain);
		w_u16(w, (uint16_t)s->cfg.access_domain_len);
		w_bytes(w, s->cfg.access_domain, s->cfg.access_domain_len);
	}
	if (t->give_reconf_key) {
		uint8_t *val;
		/* RFC 8415 §20.4.2: the key goes in the Reply, with Reconfigure Accept. */
		w_u16(w, D6_OPT_RECONF_ACCEPT);
		w_u16(w, 0);
		d6_auth_put_reconf(w, 1, t->reconf_key, ++s->replay, &val);
	}
	if (t->key)
		d6_auth_put_delayed(w, t->key, ++s->replay, &mac);
	if (!w->err && mac)
		d6_auth_sign(start, (size_t)(w->p - start), t->key->secret, t->key->secret_len,
		             mac);
}

int
d6_server_build(struct d6_server *s, struct d6_txn *t, uint8_t *out, size_t cap, size_t *len)
{
	size_t over = 0, pos, inner_len;
	struct wcur w;

	*len = 0;
	/* RFC 8415 §19.3: one Relay-reply per Relay-forward, interface-id echoed. */
	for (unsigned i = 0; i < t->env.nrelays; i++)
		over += 34 + 4 + (t->env.relay[i].ifid ? 4 + t->env.relay[i].ifid_len : 0);
	if (over >= cap) {
		s->ctr.drop[D6_DROP_TOO_BIG]++;
		return -EMSGSIZE;
	}
	w = wcur_make(out + over, cap - over);
	build_inner(s, t, &w);
	if (w.err) {
		s->ctr.drop[D6_DROP_TOO_BIG]++;
		return -EMSGSIZE;
	}
	inner_len = w_len(&w);
	pos = over;
	for (unsigned k = t->env.nrelays; k-- > 0;) {
		const struct d6_relay *r = &t->env.relay[k];
		size_t hl = 34 + 4 + (r->ifid ? 4 + r->ifid_len : 0);
		size_t body = *len ? *len : inner_len;
		struct wcur h;

		if (body > 0xffff) {
			s->ctr.drop[D6_DROP_TOO_BIG]++;
			return -EMSGSIZE;
		}
		pos -= hl;
		h = wcur_make(out + pos, hl);
		w_u8(&h, D6_RELAY_REPL);
		w_u8(&h, r->hop_count);
		w_bytes(&h, &r->link, 16);
		w_bytes(&h, &r->peer, 16);
		if (r->ifid) {
			w_u16(&h, D6_OPT_INTERFACE_ID);
			w_u16(&h, (uint16_t)r->ifid_len);
			w_bytes(&h, r->ifid, r->ifid_len);
		}
		w_u16(&h, D6_OPT_RELAY_MSG);
		w_u16(&h, (uint16_t)body);
		*len = hl + body;
	}
	if (!t->env.nrelays)
		*len = inner_len;
	if (t->reply_type == D6_ADVERTISE)
		s->ctr.tx_advertise++;
	else
		s->ctr.tx_reply++;
	return 0;
}
