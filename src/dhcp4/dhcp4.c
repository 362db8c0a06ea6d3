/*
 * The DHCPv4 codec for DOTS discovery: see dhcp4.h. The three option
 * areas (options field, and the `file` and `sname` fields when option 52
 * overloads them) are walked with one bounded function; RFC 3396
 * concatenation is a second walk that appends every instance of a code.
 */
#include <errno.h>
#include <string.h>

#include "dhcp4/dhcp4.h"

/*
 * Call `fn` for every option of one area, stop at END. Returns false when
 * an option's length runs past the area. Every turn consumes at least
 * one byte, so the loop is bounded by the area's length.
 */
typedef void (*d4_visit_fn)(uint8_t code, const uint8_t *val, uint8_t len, void *arg);

static bool
d4_walk(const uint8_t *p, size_t n, d4_visit_fn fn, void *arg)
{
	struct cur c = cur_make(p, n);

	while (c.left > 0) {
		uint8_t code = cur_u8(&c), len;
		const uint8_t *val;

		if (code == D4_OPT_PAD)
			continue;
		if (code == D4_OPT_END)
			return true;
		len = cur_u8(&c);
		val = cur_bytes(&c, len);
		if (c.err)
			return false;
		if (fn)
			fn(code, val, len, arg);
	}
	/* RFC 2131 §4.1 wants END; servers that omit it in a full area are tolerated. */
	return true;
}

struct d4_scan {
	uint8_t msgtype;
	uint8_t overload;
	bool seen_type, seen_overload;
};

static void
d4_scan_fn(uint8_t code, const uint8_t *val, uint8_t len, void *arg)
{
	struct d4_scan *s = arg;

	/* The first instance wins; 53 and 52 are one byte and never split. */
	if (code == D4_OPT_MSG_TYPE && len == 1 && !s->seen_type) {
		s->msgtype = val[0];
		s->seen_type = true;
	} else if (code == D4_OPT_OVERLOAD && len == 1 && !s->seen_overload) {
		s->overload = val[0];
		s->seen_overload = true;
	}
}

int
d4_parse(const void *pkt, size_t len, struct d4_msg *m)
{
	struct cur c = cur_make(pkt, len);
	struct d4_scan s = {0};

	memset(m, 0, sizeof(*m));
	m->op = cur_u8(&c);
	(void)cur_u8(&c); /* htype */
	m->hlen = cur_u8(&c);
	(void)cur_u8(&c); /* hops */
	m->xid = cur_u32(&c);
	(void)cur_u16(&c); /* secs */
	m->flags = cur_u16(&c);
	m->ciaddr = cur_u32(&c);
	m->yiaddr = cur_u32(&c);
	m->siaddr = cur_u32(&c);
	m->giaddr = cur_u32(&c);
	cur_copy(&c, m->chaddr, sizeof(m->chaddr));
	m->sname = cur_bytes(&c, 64);
	m->file = cur_bytes(&c, 128);
	if (c.err)
		return -EBADMSG;
	if (m->op != 1 && m->op != 2)
		return -EPROTO;
	if (cur_u32(&c) != D4_COOKIE || c.err)
		return -EPROTO;
	m->opts = c.p;
	m->optslen = c.left;
	if (!d4_walk(m->opts, m->optslen, d4_scan_fn, &s))
		return -EBADMSG;
	/* RFC 2132 §9.3: option 52 lives in the options field only. */
	m->msgtype = s.msgtype;
	if (s.seen_overload) {
		if (s.overload < 1 || s.overload > 3)
			return -EBADMSG;
		m->overload = s.overload;
	}
	if ((m->overload & 1) && !d4_walk(m->file, 128, NULL, NULL))
		return -EBADMSG;
	if ((m->overload & 2) && !d4_walk(m->sname, 64, NULL, NULL))
		return -EBADMSG;
	/* A message type hidden in an overloaded field still counts. */
	if (!s.seen_type && m->overload) {
		if (m->overload & 1)
			d4_walk(m->file, 128, d4_scan_fn, &s);
		if (!s.seen_type && (m->overload & 2))
			d4_walk(m->sname, 64, d4_scan_fn, &s);
		m->msgtype = s.msgtype;
	}
	return 0;
}

struct d4_gather {
	uint8_t code;
	uint8_t *out;
	size_t cap, len;
	unsigned count;
	bool overflow;
};

static void
d4_gather_fn(uint8_t code, const uint8_t *val, uint8_t len, void *arg)
{
	struct d4_gather *g = arg;

	if (code != g->code)
		return;
	g->count++;
	if (g->overflow || g->len + len > g->cap) {
		g->overflow = true;
		return;
	}
	if (g->out && len)
		memcpy(g->out + g->len, val, len);
	g->len += len;
}

static void
d4_gather_all(const struct d4_msg *m, struct d4_gather *g)
{
	/* RFC 3396 §6: options field, then file, then sname. */
	d4_walk(m->opts, m->optslen, d4_gather_fn, g);
	if (m->overload & 1)
		d4_walk(m->file, 128, d4_gather_fn, g);
	if (m->overload & 2)
		d4_walk(m->sname, 64, d4_gather_fn, g);
}

int
d4_opt_get(const struct d4_msg *m, uint8_t code, uint8_t *out, size_t cap, size_t *outlen)
{
	struct d4_gather g = {.code = code, .out = out, .cap = cap};

	*outlen = 0;
	if (code == D4_OPT_PAD || code == D4_OPT_END)
		return -EINVAL;
	d4_gather_all(m, &g);
	if (g.count == 0)
		return -ENOENT;
	if (g.overflow)
		return -EMSGSIZE;
	*outlen = g.len;
	return 0;
}

unsigned
d4_opt_count(const struct d4_msg *m, uint8_t code)
{
	struct d4_gather g = {.code = code, .cap = SIZE_MAX};

	d4_gather_all(m, &g);
	return g.count;
}

void
d4_opt_put(struct wcur *w, uint8_t code, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i, piece;

	/* RFC 3396 §5: split into consecutive instances of at most 255 bytes. */
	for (i = 0; i == 0 || len > 0; i++) {
		piece = len > 255 ? 255 : len;
		w_u8(w, code);
		w_u8(w, (uint8_t)piece);
		w_bytes(w, p, piece);
		p += piece;
		len -= piece;
	}
}

int
d4_build(const struct d4_req *r, void *buf, size_t cap, size_t *len)
{
	struct wcur w = wcur_make(buf, cap);
	uint8_t zero[192] = {0};
	uint8_t cid[7];

	*len = 0;
	if (r->type != D4_INFORM && r->type != D4_DISCOVER)
		return -EINVAL;
	w_u8(&w, 1); /* BOOTREQUEST */
	w_u8(&w, 1); /* Ethernet */
	w_u8(&w, 6);
	w_u8(&w, 0);
	w_u32(&w, r->xid);
	w_u16(&w, r->secs);
	w_u16(&w, r->broadcast ? 0x8000 : 0);
	/* RFC 2131 §4.4.3: INFORM carries the client's address in ciaddr. */
	w_u32(&w, r->type == D4_INFORM ? r->ciaddr : 0);
	w_u32(&w, 0);
	w_u32(&w, 0);
	w_u32(&w, 0);
	w_bytes(&w, r->chaddr, 6);
	w_bytes(&w, zero, 10);
	w_bytes(&w, zero, 64 + 128);
	w_u32(&w, D4_COOKIE);
	w_u8(&w, D4_OPT_MSG_TYPE);
	w_u8(&w, 1);
	w_u8(&w, (uint8_t)r->type);
	/* RFC 2132 §9.14: type 1 (Ethernet) followed by the hardware address. */
	cid[0] = 1;
	memcpy(cid + 1, r->chaddr, 6);
	d4_opt_put(&w, D4_OPT_CLIENT_ID, cid, sizeof(cid));
	if (r->max_size) {
		w_u8(&w, D4_OPT_MAX_SIZE);
		w_u8(&w, 2);
		w_u16(&w, r->max_size);
	}
	if (r->nprl)
		d4_opt_put(&w, D4_OPT_PRL, r->prl, r->nprl);
	w_u8(&w, D4_OPT_END);
	/* RFC 2131 §2 / RFC 1542: some relays drop BOOTP messages under 300 bytes. */
	while (!w.err && w_len(&w) < 300)
		w_u8(&w, D4_OPT_PAD);
	if (w.err)
		return -EMSGSIZE;
	*len = w_len(&w);
	return 0;
}
