/*
 * The DHCPv6 codec: relay envelopes (RFC 8415 §9), client and server
 * messages (§8, §21) with the DSTM options (seed 001 appendices A and B,
 * seed 002 §6.1), the placement rules of RFC 8415 Appendix B, and the
 * domain-name encoding of §10. Every length is checked by the bounded
 * cursor; every loop is bounded (options per level, relay depth, labels).
 * A message that breaks a rule is dropped whole with a named reason:
 * half-trusting a malformed request is how servers get confused.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dhcp6/d6.h"

void
d6_codes_default(struct d6_codes *c)
{
	/* DESIGN §3.2: far above the assigned range, every one configurable. */
	c->ia_dstm = 65001;
	c->tep = 65002;
	c->ports = 65003;
	c->global_v4 = 65004;
	c->dots_ri = 141;
	c->dots_address = 142;
	c->access_domain = 57;
}

/* The names configurations give the codes (DESIGN §3.2), in struct order. */
static const struct {
	const char *name;
	size_t off;
} code_names[] = {
    {"ia_dstm", offsetof(struct d6_codes, ia_dstm)},
    {"tep", offsetof(struct d6_codes, tep)},
    {"ports", offsetof(struct d6_codes, ports)},
    {"global_v4", offsetof(struct d6_codes, global_v4)},
    {"dots_ri", offsetof(struct d6_codes, dots_ri)},
    {"dots_address", offsetof(struct d6_codes, dots_address)},
    {"access_domain", offsetof(struct d6_codes, access_domain)},
};
#define NCODES (sizeof(code_names) / sizeof(code_names[0]))

void
d6_codes_load(struct cfg *c, const char *ptr, struct d6_codes *out)
{
	const char *keys[NCODES + 1];
	char p[128];
	long long v;

	d6_codes_default(out);
	for (size_t i = 0; i < NCODES; i++)
		keys[i] = code_names[i].name;
	keys[NCODES] = NULL;
	cfg_check_keys(c, ptr, keys);
	for (size_t i = 0; i < NCODES; i++) {
		uint16_t *code = (uint16_t *)((char *)out + code_names[i].off);

		snprintf(p, sizeof(p), "%s/%s", ptr, code_names[i].name);
		if (cfg_int(c, p, false, *code, 1, 65535, &v))
			*code = (uint16_t)v;
	}
}

json_t *
d6_codes_json(const struct d6_codes *c)
{
	json_t *o = json_object();

	for (size_t i = 0; i < NCODES; i++)
		json_object_set_new(
		    o, code_names[i].name,
		    json_integer(*(const uint16_t *)((const char *)c + code_names[i].off)));
	return o;
}

static const char *const drop_names[D6_DROP__COUNT] = {
    [D6_OK] = "ok",
    [D6_DROP_SHORT] = "drop_short",
    [D6_DROP_OPT_LEN] = "drop_option_length",
    [D6_DROP_TOO_MANY_OPTS] = "drop_too_many_options",
    [D6_DROP_BAD_TYPE] = "drop_bad_type",
    [D6_DROP_DUP_OPTION] = "drop_duplicate_option",
    [D6_DROP_MISPLACED] = "drop_misplaced_option",
    [D6_DROP_BAD_OPTION] = "drop_bad_option",
    [D6_DROP_NO_CLIENTID] = "drop_no_clientid",
    [D6_DROP_SERVERID] = "drop_serverid",
    [D6_DROP_TOO_MANY_IA] = "drop_too_many_ia",
    [D6_DROP_DUP_IAID] = "drop_duplicate_iaid",
    [D6_DROP_RELAY_DEPTH] = "drop_relay_depth",
    [D6_DROP_RELAY_NO_MSG] = "drop_relay_no_message",
    [D6_DROP_AUTH_MISSING] = "drop_auth_missing",
    [D6_DROP_AUTH_BAD] = "drop_auth_bad",
    [D6_DROP_AUTH_REPLAY] = "drop_auth_replay",
    [D6_DROP_RATE] = "drop_limit",
    [D6_DROP_NO_ADDRESS] = "drop_no_client_address",
    [D6_DROP_TOO_BIG] = "drop_reply_too_big",
    [D6_DROP_XID] = "drop_transaction_id",
    [D6_DROP_RELAY_UNTRUSTED] = "drop_relay_untrusted",
};

const char *
d6_drop_name(enum d6_drop r)
{
	return (unsigned)r < D6_DROP__COUNT ? drop_names[r] : "drop_unknown";
}

/* ---- Relays ---- */

/*
 * RFC 8415 §9.1: msg-type(1) hop-count(1) link-address(16)
 * peer-address(16) options; the client's message is in the Relay Message
 * option. Nesting is bounded by D6_HOP_LIMIT (§7.6 HOP_COUNT_LIMIT).
 */
enum d6_drop
d6_unwrap(const uint8_t *p, size_t n, struct d6_envelope *env)
{
	memset(env, 0, sizeof(*env));
	for (unsigned depth = 0;; depth++) {
		struct cur c = cur_make(p, n);
		struct d6_relay *r;
		const uint8_t *msg = NULL;
		size_t msglen = 0;
		unsigned nopt = 0;
		uint8_t type;

		if (n < 4)
			return D6_DROP_SHORT;
		type = p[0];
		if (type != D6_RELAY_FORW && type != D6_RELAY_REPL) {
			env->inner = p;
			env->inner_len = n;
			return D6_OK;
		}
		if (depth >= D6_HOP_LIMIT)
			return D6_DROP_RELAY_DEPTH;
		if (n < 34)
			return D6_DROP_SHORT;
		r = &env->relay[env->nrelays++];
		cur_u8(&c);
		r->hop_count = cur_u8(&c);
		cur_copy(&c, &r->link, 16);
		cur_copy(&c, &r->peer, 16);
		if (r->hop_count >= D6_HOP_LIMIT)
			return D6_DROP_RELAY_DEPTH;
		while (c.left > 0) {
			uint16_t code, len;
			const uint8_t *body;

			if (++nopt > D6_MAX_OPTIONS)
				return D6_DROP_TOO_MANY_OPTS;
			code = cur_u16(&c);
			len = cur_u16(&c);
			body = cur_bytes(&c, len);
			if (c.err || (!body && len))
				return D6_DROP_OPT_LEN;
			if (code == D6_OPT_RELAY_MSG) {
				if (msg)
					return D6_DROP_DUP_OPTION;
				msg = body;
				msglen = len;
			} else if (code == D6_OPT_INTERFACE_ID) {
				if (r->ifid)
					return D6_DROP_DUP_OPTION;
				r->ifid = body;
				r->ifid_len = len;
			}
		}
		if (c.err)
			return D6_DROP_OPT_LEN;
		if (!msg)
			return D6_DROP_RELAY_NO_MSG;
		p = msg;
		n = msglen;
	}
}

/* ---- Messages ---- */

/* Options that may only appear inside something else, or only in relays. */
static bool
top_misplaced(uint16_t code, const struct d6_codes *codes)
{
	return code == D6_OPT_IAADDR || code == D6_OPT_RELAY_MSG || code == D6_OPT_INTERFACE_ID ||
	       code == codes->tep || code == codes->ports;
}

/* Known top-level (or relay) options: out of place inside an IA or an IA Address. */
static bool
top_only(uint16_t code, const struct d6_codes *codes)
{
	switch (code) {
	case D6_OPT_CLIENTID:
	case D6_OPT_SERVERID:
	case D6_OPT_IA_NA:
	case D6_OPT_IA_TA:
	case D6_OPT_IA_PD:
	case D6_OPT_ORO:
	case D6_OPT_PREFERENCE:
	case D6_OPT_ELAPSED_TIME:
	case D6_OPT_RELAY_MSG:
	case D6_OPT_AUTH:
	case D6_OPT_UNICAST:
	case D6_OPT_RAPID_COMMIT:
	case D6_OPT_INTERFACE_ID:
	case D6_OPT_RECONF_MSG:
	case D6_OPT_RECONF_ACCEPT:
		return true;
	default:
		return code == codes->ia_dstm || code == codes->global_v4 ||
		       (code && (code == codes->dots_ri || code == codes->dots_address ||
		                 code == codes->access_domain));
	}
}

/* RFC 8415 §21.6: IA Address: address(16) preferred(4) valid(4) options (Status only). */
static enum d6_drop
parse_iaaddr(struct cur *c, struct d6_ia *ia, const struct d6_codes *codes)
{
	struct in6_addr a;
	uint32_t pref, valid;
	unsigned nopt = 0;
	bool status = false;

	cur_copy(c, &a, 16);
	pref = cur_u32(c);
	valid = cur_u32(c);
	if (c->err)
		return D6_DROP_BAD_OPTION;
	while (c->left > 0) {
		uint16_t code, len;
		struct cur s;

		if (++nopt > D6_MAX_OPTIONS)
			return D6_DROP_TOO_MANY_OPTS;
		code = cur_u16(c);
		len = cur_u16(c);
		s = cur_sub(c, len);
		if (c->err)
			return D6_DROP_OPT_LEN;
		if (code == D6_OPT_STATUS_CODE) {
			if (status)
				return D6_DROP_DUP_OPTION;
			if (len < 2)
				return D6_DROP_BAD_OPTION;
			status = true;
		} else if (top_only(code, codes) || code == D6_OPT_IAADDR || code == codes->tep ||
		           code == codes->ports) {
			return D6_DROP_MISPLACED;
		}
		(void)s;
	}
	if (ia->naddrs++ == 0) {
		ia->addr = a;
		ia->preferred = pref;
		ia->valid = valid;
	}
	return D6_OK;
}

/*
 * RFC 8415 §21.4 (IA_NA), seed 001 A §4 (IA_DSTM, same layout): IAID(4)
 * T1(4) T2(4) options. The TEP (seed 001 A §5) and Ports (seed 001 B §5)
 * options may appear only inside IA_DSTM. IA_TA has no T1/T2.
 */
static enum d6_drop
parse_ia(struct cur *c, uint16_t code, struct d6_ia *ia, const struct d6_codes *codes)
{
	unsigned nopt = 0;
	bool dstm = code == codes->ia_dstm;
	enum d6_drop r;

	memset(ia, 0, sizeof(*ia));
	ia->code = code;
	ia->iaid = cur_u32(c);
	if (code != D6_OPT_IA_TA) {
		ia->t1 = cur_u32(c);
		ia->t2 = cur_u32(c);
	}
	if (c->err)
		return D6_DROP_BAD_OPTION;
	while (c->left > 0) {
		uint16_t oc, len;
		struct cur s;

		if (++nopt > D6_MAX_OPTIONS)
			return D6_DROP_TOO_MANY_OPTS;
		oc = cur_u16(c);
		len = cur_u16(c);
		s = cur_sub(c, len);
		if (c->err)
			return D6_DROP_OPT_LEN;
		if (oc == D6_OPT_IAADDR && code != D6_OPT_IA_PD) {
			if ((r = parse_iaaddr(&s, ia, codes)) != D6_OK)
				return r;
		} else if (oc == D6_OPT_STATUS_CODE) {
			if (ia->has_status)
				return D6_DROP_DUP_OPTION;
			ia->has_status = true;
			ia->status = cur_u16(&s);
			if (s.err)
				return D6_DROP_BAD_OPTION;
		} else if (oc == codes->tep) {
			if (!dstm)
				return D6_DROP_MISPLACED;
			if (ia->has_tep)
				return D6_DROP_DUP_OPTION;
			if (len != 16)
				return D6_DROP_BAD_OPTION;
			cur_copy(&s, &ia->tep, 16);
			ia->has_tep = true;
		} else if (oc == codes->ports) {
			if (!dstm)
				return D6_DROP_MISPLACED;
			if (ia->has_ports)
				return D6_DROP_DUP_OPTION;
			if (len != 4)
				return D6_DROP_BAD_OPTION;
			ia->port_lo = cur_u16(&s);
			ia->port_hi = cur_u16(&s);
			if (ia->port_hi < ia->port_lo)
				return D6_DROP_BAD_OPTION;
			ia->has_ports = true;
		} else if (top_only(oc, codes)) {
			return D6_DROP_MISPLACED;
		}
	}
	return D6_OK;
}

/* RFC 3315 §21 / RFC 8415 §21.11: protocol(1) algorithm(1) RDM(1) replay(8) info. */
static enum d6_drop
parse_auth(struct cur *s, size_t len, const uint8_t *msg, struct d6_auth *a)
{
	memset(a, 0, sizeof(*a));
	if (len < 11)
		return D6_DROP_BAD_OPTION;
	a->protocol = cur_u8(s);
	a->algorithm = cur_u8(s);
	a->rdm = cur_u8(s);
	a->replay = (uint64_t)cur_u32(s) << 32;
	a->replay |= cur_u32(s);
	a->info_len = len - 11;
	a->info = cur_bytes(s, a->info_len);
	if (s->err)
		return D6_DROP_BAD_OPTION;
	if (a->protocol == D6_AUTH_PROTO_DELAYED && a->info_len > 0) {
		/* RFC 3315 §21.4.1: realm, key ID(4), HMAC-MD5(16). */
		if (a->info_len < 20 || a->info_len - 20 > D6_REALM_MAX)
			return D6_DROP_BAD_OPTION;
		a->realm_len = a->info_len - 20;
		memcpy(a->realm, a->info, a->realm_len);
		a->realm[a->realm_len] = '\0';
		a->key_id = (uint32_t)a->info[a->realm_len] << 24 |
		            (uint32_t)a->info[a->realm_len + 1] << 16 |
		            (uint32_t)a->info[a->realm_len + 2] << 8 | a->info[a->realm_len + 3];
		a->mac_off = (size_t)(a->info + a->realm_len + 4 - msg);
	} else if (a->protocol == D6_AUTH_PROTO_RECONF) {
		/* RFC 8415 §20.4.1: type(1) value(16). */
		if (a->info_len != 17)
			return D6_DROP_BAD_OPTION;
		if (a->info[0] == 2)
			a->mac_off = (size_t)(a->info + 1 - msg);
	}
	return D6_OK;
}

enum d6_drop
d6_parse(const uint8_t *p, size_t n, const struct d6_codes *codes, struct d6_msg *m)
{
	struct cur c = cur_make(p, n);
	unsigned nopt = 0;
	int pending_global = -1; /* index of the IA_NA a Global IPv4 option waits for */
	bool global_seen = false, global_used = false;
	enum d6_drop r;

	memset(m, 0, sizeof(*m));
	if (n < 4)
		return D6_DROP_SHORT;
	m->raw = p;
	m->len = n;
	m->type = cur_u8(&c);
	m->xid = (uint32_t)cur_u8(&c) << 16;
	m->xid |= cur_u16(&c);
	if (m->type == 0 || m->type == D6_RELAY_FORW || m->type == D6_RELAY_REPL ||
	    m->type > D6_INFORMATION_REQUEST)
		return D6_DROP_BAD_TYPE;
	while (c.left > 0) {
		uint16_t code, len;
		const uint8_t *body;
		struct cur s;

		if (++nopt > D6_MAX_OPTIONS)
			return D6_DROP_TOO_MANY_OPTS;
		if (!d6_opt_next(&c, &code, &s))
			return D6_DROP_OPT_LEN;
		body = s.p;
		len = (uint16_t)s.left;
		if (top_misplaced(code, codes))
			return D6_DROP_MISPLACED;
		if (pending_global >= 0 && code != D6_OPT_IA_NA)
			pending_global = -1;
		if (code == D6_OPT_CLIENTID || code == D6_OPT_SERVERID) {
			const uint8_t **dst = code == D6_OPT_CLIENTID ? &m->clientid : &m->serverid;
			size_t *dlen =
			    code == D6_OPT_CLIENTID ? &m->clientid_len : &m->serverid_len;

			if (*dst)
				return D6_DROP_DUP_OPTION;
			/* RFC 8415 §11.1: a type code and at most 128 octets. */
			if (len < 3 || len > D6_DUID_MAX + 2)
				return D6_DROP_BAD_OPTION;
			*dst = body;
			*dlen = len;
		} else if (code == codes->ia_dstm || code == D6_OPT_IA_NA || code == D6_OPT_IA_TA ||
		           code == D6_OPT_IA_PD) {
			struct d6_ia ia;

			if ((r = parse_ia(&s, code, &ia, codes)) != D6_OK)
				return r;
			if (code == D6_OPT_IA_TA || code == D6_OPT_IA_PD) {
				m->n_ia_other++;
				continue;
			}
			if (m->nia == D6_MAX_IA)
				return D6_DROP_TOO_MANY_IA;
			for (unsigned i = 0; i < m->nia; i++)
				if (m->ia[i].code == code && m->ia[i].iaid == ia.iaid)
					return D6_DROP_DUP_IAID;
			if (code == D6_OPT_IA_NA && pending_global >= 0) {
				ia.global_v4 = true;
				global_used = true;
				pending_global = -1;
			}
			m->ia[m->nia++] = ia;
		} else if (code == codes->global_v4) {
			/* seed 002 §6.1: empty, or the TEP; it applies to the IA_NA that follows. */
			if (len != 0 && len != 16)
				return D6_DROP_BAD_OPTION;
			global_seen = true;
			pending_global = 0;
			if (len == 16) {
				m->global_v4_has_tep = true;
				cur_copy(&s, &m->global_v4_tep, 16);
			}
		} else if (code == D6_OPT_ORO) {
			if (m->noro || (len & 1))
				return len & 1 ? D6_DROP_BAD_OPTION : D6_DROP_DUP_OPTION;
			while (s.left >= 2 && m->noro < D6_MAX_ORO)
				m->oro[m->noro++] = cur_u16(&s);
			if (m->noro == 0)
				m->oro[m->noro++] = 0; /* an empty ORO is still an ORO */
		} else if (code == D6_OPT_ELAPSED_TIME) {
			if (m->has_elapsed)
				return D6_DROP_DUP_OPTION;
			if (len != 2)
				return D6_DROP_BAD_OPTION;
			m->has_elapsed = true;
			m->elapsed = cur_u16(&s);
		} else if (code == D6_OPT_RAPID_COMMIT || code == D6_OPT_RECONF_ACCEPT) {
			bool *f =
			    code == D6_OPT_RAPID_COMMIT ? &m->rapid_commit : &m->reconf_accept;

			if (*f)
				return D6_DROP_DUP_OPTION;
			if (len != 0)
				return D6_DROP_BAD_OPTION;
			*f = true;
		} else if (code == D6_OPT_AUTH) {
			if (m->has_auth)
				return D6_DROP_DUP_OPTION;
			if ((r = parse_auth(&s, len, p, &m->auth)) != D6_OK)
				return r;
			m->has_auth = true;
		} else if (code == D6_OPT_PREFERENCE) {
			if (m->has_preference)
				return D6_DROP_DUP_OPTION;
			if (len != 1)
				return D6_DROP_BAD_OPTION;
			m->has_preference = true;
			m->preference = cur_u8(&s);
		} else if (code == D6_OPT_UNICAST) {
			if (m->has_unicast)
				return D6_DROP_DUP_OPTION;
			if (len != 16)
				return D6_DROP_BAD_OPTION;
			m->has_unicast = true;
		} else if (code == D6_OPT_STATUS_CODE) {
			if (m->has_status)
				return D6_DROP_DUP_OPTION;
			if (len < 2)
				return D6_DROP_BAD_OPTION;
			m->has_status = true;
			m->status = cur_u16(&s);
		} else if (code == D6_OPT_RECONF_MSG) {
			if (m->has_reconf_msg)
				return D6_DROP_DUP_OPTION;
			if (len != 1)
				return D6_DROP_BAD_OPTION;
			m->has_reconf_msg = true;
			m->reconf_msg = cur_u8(&s);
		} else if (code && code == codes->dots_ri) {
			if (m->dots_ri)
				return D6_DROP_DUP_OPTION;
			m->dots_ri = body;
			m->dots_ri_len = len;
		} else if (code && code == codes->access_domain) {
			if (m->access_domain)
				return D6_DROP_DUP_OPTION;
			m->access_domain = body;
			m->access_domain_len = len;
		} else if (code == D6_OPT_S46_CONT_LW) {
			/* RFC 7598 §5: the lw4o6 container, read by d6_s46_parse_cont(). */
			if (m->s46_lw)
				return D6_DROP_DUP_OPTION;
			m->s46_lw = body;
			m->s46_lw_len = len;
		} else if (code && code == codes->dots_address) {
			if (len == 0 || len % 16)
				return D6_DROP_BAD_OPTION;
			while (s.left >= 16 && m->ndots_addr < D6_DOTS_ADDRS_MAX)
				cur_copy(&s, &m->dots_addr[m->ndots_addr++], 16);
		}
		/* Any other option is not ours to judge: ignored (RFC 8415 §16). */
	}
	if (c.err)
		return D6_DROP_OPT_LEN;
	/*
	 * A Global IPv4 option with no IA_NA right after it (some clients,
	 * perfdhcp's -o among them, append extra options last): it then
	 * speaks for every IA_NA of the message.
	 */
	if (global_seen && !global_used)
		for (unsigned i = 0; i < m->nia; i++)
			if (m->ia[i].code == D6_OPT_IA_NA)
				m->ia[i].global_v4 = true;
	m->has_global_v4 = global_seen;
	return D6_OK;
}

static bool
duid_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

/* RFC 8415 §16.2-§16.12: what a server accepts of each client message. */
enum d6_drop
d6_validate_server(const struct d6_msg *m, const uint8_t *our_duid, size_t our_duid_len)
{
	bool ours = duid_eq(m->serverid, m->serverid_len, our_duid, our_duid_len);

	switch (m->type) {
	case D6_SOLICIT:
	case D6_CONFIRM:
	case D6_REBIND:
		/* §16.2, §16.5, §16.7: Client Identifier, no Server Identifier. */
		if (!m->clientid)
			return D6_DROP_NO_CLIENTID;
		if (m->serverid)
			return D6_DROP_SERVERID;
		return D6_OK;
	case D6_REQUEST:
	case D6_RENEW:
	case D6_RELEASE:
	case D6_DECLINE:
		/* §16.4, §16.6, §16.8, §16.9: both, and the server's must be ours. */
		if (!m->clientid)
			return D6_DROP_NO_CLIENTID;
		if (!ours)
			return D6_DROP_SERVERID;
		return D6_OK;
	case D6_INFORMATION_REQUEST:
		/* §16.12: a Server Identifier, if any, is ours; no IA option. */
		if (m->serverid && !ours)
			return D6_DROP_SERVERID;
		if (m->nia || m->n_ia_other)
			return D6_DROP_MISPLACED;
		return D6_OK;
	default:
		return D6_DROP_BAD_TYPE;
	}
}

/* ---- Domain names (RFC 8415 §10, RFC 1035 §3.1 without compression) ---- */

bool
d6_opt_next(struct cur *c, uint16_t *code, struct cur *body)
{
	uint16_t len;

	if (c->err || c->left == 0)
		return false;
	*code = cur_u16(c);
	len = cur_u16(c);
	*body = cur_sub(c, len);
	return !c->err;
}

void
d6_opt_put(struct wcur *w, uint16_t code, const void *body, size_t len)
{
	if (len > UINT16_MAX) {
		w->err = true;
		return;
	}
	w_u16(w, code);
	w_u16(w, (uint16_t)len);
	w_bytes(w, body, len);
}

int
d6_name_encode(const char *name, uint8_t *out, size_t cap)
{
	size_t o = 0, nlen = strlen(name);
	const char *p = name;

	if (nlen == 0 || nlen > 253 + 1)
		return -EINVAL;
	for (unsigned labels = 0; *p && labels < 128; labels++) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (l == 0 || l > 63 || o + 1 + l + 1 > cap)
			return -EINVAL;
		out[o++] = (uint8_t)l;
		memcpy(out + o, p, l);
		o += l;
		p += l;
		if (*p == '.')
			p++;
	}
	if (*p || o + 1 > cap || o + 1 > 255)
		return -EINVAL;
	out[o++] = 0;
	return (int)o;
}

int
d6_name_decode_n(const uint8_t *p, size_t n, char *out, size_t cap, size_t *used)
{
	struct cur c = cur_make(p, n);
	size_t o = 0, wire = 0;

	if (cap == 0)
		return -EINVAL;
	out[0] = '\0';
	/* At most 128 labels fit in 255 bytes: the wire length bounds the loop. */
	for (;;) {
		uint8_t ll = cur_u8(&c);
		const uint8_t *lab;

		if (c.err)
			return -EBADMSG;
		wire += 1 + (size_t)ll;
		if (wire > 255)
			return -EBADMSG;
		if (ll == 0)
			break;
		/* RFC 8415 §10: no compression in DHCP options; 0x40/0x80 are not lengths. */
		if (ll > 63)
			return -EBADMSG;
		lab = cur_bytes(&c, ll);
		if (!lab || o + (o ? 1 : 0) + ll + 1 > cap)
			return -EBADMSG;
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < ll; i++) {
			uint8_t ch = lab[i];

			/* A name we print or log: LDH, plus '_' for service labels (RFC 6763 §7). */
			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
				return -EBADMSG;
			out[o++] = (char)ch;
		}
		out[o] = '\0';
	}
	if (o == 0)
		return -EBADMSG; /* the root alone names nothing */
	if (used)
		*used = n - c.left;
	return 0;
}

bool
d6_name_decode(const uint8_t *p, size_t n, char *out, size_t cap)
{
	return d6_name_decode_n(p, n, out, cap, NULL) == 0;
}

/* ---- The client's tunnel address ---- */

static bool
global_unicast(const struct in6_addr *a)
{
	return !IN6_IS_ADDR_UNSPECIFIED(a) && !IN6_IS_ADDR_LOOPBACK(a) &&
	       !IN6_IS_ADDR_MULTICAST(a) && !IN6_IS_ADDR_LINKLOCAL(a) &&
	       !IN6_IS_ADDR_SITELOCAL(a) && !IN6_IS_ADDR_V4MAPPED(a) && !IN6_IS_ADDR_V4COMPAT(a);
}

bool
d6_client_v6(const struct d6_envelope *env, const struct d6_msg *m, const struct in6_addr *src,
             struct in6_addr *out)
{
	/* RFC 8415 §9.1: the innermost relay's peer-address is the client's source. */
	const struct in6_addr *from = env->nrelays ? &env->relay[env->nrelays - 1].peer : src;

	if (from && global_unicast(from)) {
		*out = *from;
		return true;
	}
	return false;
}
