/*
 * The RFC 7598 softwire options of lightweight 4over6 (RFC 7596), the
 * configuration that standard lwB4s (OpenWrt's odhcp6c among them) ask
 * for with OPTION_S46_CONT_LW in their ORO. DSTM with a shared address is
 * the same model: the server hands out an IPv4 address and a port set,
 * and the TEP (the lwAFTR) binds them to the lwB4's IPv6 address. The
 * server writes the container, the client side (and the tests) read it.
 *
 *   OPTION_S46_CONT_LW (96)
 *   +- OPTION_S46_BR (90): br-ipv6-address (16)                 RFC 7598 §4.1
 *   +- OPTION_S46_V4V6BIND (92): ipv4-address (4),              RFC 7598 §4.4
 *      |  bindprefix6-len (1), bind-ipv6-prefix (ceil(len/8))
 *      +- OPTION_S46_PORTPARAMS (93): offset (1), PSID-len (1), RFC 7598 §4.5
 *            PSID (2, left-aligned: PSID << (16 - PSID-len))
 */
#include <string.h>

#include "dhcp6/d6.h"

#define S46_MAX_OPTS 16 /* options read inside one container or binding */

bool
d6_s46_requested(const struct d6_msg *m)
{
	for (unsigned i = 0; i < m->noro; i++)
		if (m->oro[i] == D6_OPT_S46_CONT_LW)
			return true;
	return false;
}

void
d6_s46_put_cont(struct wcur *w, const struct d6_grant *g)
{
	uint8_t *cont, *bind;

	w_u16(w, D6_OPT_S46_CONT_LW);
	cont = w_reserve(w, 2);
	w_u16(w, D6_OPT_S46_BR);
	w_u16(w, 16);
	w_bytes(w, &g->tep, 16);
	w_u16(w, D6_OPT_S46_V4V6BIND);
	bind = w_reserve(w, 2);
	w_u32(w, g->v4);
	/* RFC 7596 §5.1: the binding names the lwB4's address itself (/128),
	 * the IA_NA address of the same Reply. */
	w_u8(w, 128);
	w_bytes(w, &g->v6, 16);
	if (g->psid_len) {
		/* RFC 7598 §4.5: without it the lwB4 holds the whole address. */
		w_u16(w, D6_OPT_S46_PORTPARAMS);
		w_u16(w, 4);
		w_u8(w, g->psid_offset);
		w_u8(w, g->psid_len);
		w_u16(w, (uint16_t)(g->psid << (16 - g->psid_len)));
	}
	if (bind)
		w_put16_at(bind, (uint16_t)(w->p - bind - 2));
	if (cont)
		w_put16_at(cont, (uint16_t)(w->p - cont - 2));
}

static bool
parse_bind(struct cur c, struct d6_s46_lw *out)
{
	uint8_t plen;

	out->v4 = cur_u32(&c);
	plen = cur_u8(&c);
	if (plen > 128)
		return false;
	out->prefix6_len = plen;
	memset(&out->prefix6, 0, sizeof(out->prefix6));
	cur_copy(&c, &out->prefix6, (plen + 7u) / 8);
	for (unsigned k = 0; !c.err && c.left && k < S46_MAX_OPTS; k++) {
		uint16_t code = cur_u16(&c), len = cur_u16(&c);
		struct cur o = cur_sub(&c, len);

		if (code != D6_OPT_S46_PORTPARAMS || out->has_portparams)
			continue;
		out->psid_offset = cur_u8(&o);
		out->psid_len = cur_u8(&o);
		out->psid = cur_u16(&o);
		/* RFC 7597 §5.1: a + k <= 16; the bits past the PSID are zero. */
		if (o.err || o.left || out->psid_offset > 15 ||
		    out->psid_offset + out->psid_len > 16)
			return false;
		if (out->psid_len == 0) {
			out->psid = 0;
		} else {
			if ((uint16_t)(out->psid << out->psid_len) != 0)
				return false;
			out->psid = (uint16_t)(out->psid >> (16 - out->psid_len));
		}
		out->has_portparams = true;
	}
	return !c.err && c.left == 0;
}

bool
d6_s46_parse_cont(const uint8_t *p, size_t n, struct d6_s46_lw *out)
{
	struct cur c = cur_make(p, n);

	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; !c.err && c.left && k < S46_MAX_OPTS; k++) {
		uint16_t code = cur_u16(&c), len = cur_u16(&c);
		struct cur o = cur_sub(&c, len);

		if (c.err)
			break;
		if (code == D6_OPT_S46_BR && !out->has_br) {
			cur_copy(&o, &out->br, 16);
			if (o.err || o.left)
				return false;
			out->has_br = true;
		} else if (code == D6_OPT_S46_V4V6BIND && !out->has_bind) {
			if (!parse_bind(o, out))
				return false;
			out->has_bind = true;
		}
	}
	return !c.err && c.left == 0;
}
