/*
 * The lwB4's port translation (lw4o6.h): host ports into the port set of
 * RFC 7597 §5.1 and back. Lookups are direct: per protocol, one table
 * indexed by host port and one by mapped port, each holding a flow index
 * (+1), so a packet costs two loads whatever the number of flows. Port
 * checksums are updated incrementally (RFC 1624), never recomputed.
 *
 *   a port of the set:  | i (a bits, 1..2^a-1) | PSID (k bits) | j (m bits) |
 *   its index in the set: (i - 1) << m | j   (i << m | j when a = 0)
 */
#include <stdlib.h>
#include <string.h>

#include "client/lw4o6.h"

#define P_TCP  6
#define P_UDP  17
#define P_ICMP 1

#define IDLE_UDP_MS    (300 * 1000)
#define IDLE_ICMP_MS   (60 * 1000)
#define IDLE_TCP_MS    (7440 * 1000)
#define IDLE_CLOSED_MS (10 * 1000)
#define IDLE_RST_IN_MS (240 * 1000) /* RFC 7857 §2.2: after an RST from outside */
#define SWEEP_MS       (10 * 1000)

struct flow {
	bool used, fin_out, fin_in, rst, rst_in;
	uint8_t pi; /* protocol index: 0 TCP, 1 UDP, 2 ICMP */
	uint16_t hport, mport;
	int64_t last_ms;
};

struct lw_nat {
	uint8_t a, k;
	uint16_t psid;
	unsigned m, nports; /* nports 0: no set, nothing translated */
	uint16_t by_host[3][65536], by_mapped[3][65536];
	struct flow flows[LW_NAT_MAX_FLOWS];
	uint16_t free[LW_NAT_MAX_FLOWS];
	unsigned nfree, nflows;
	unsigned cursor[3];
	int64_t last_sweep;
	struct lw_nat_counters c;
};

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static uint16_t
csum_replace16(uint16_t hc, uint16_t from, uint16_t to)
{
	uint32_t s = (uint32_t)(uint16_t)~hc + (uint16_t)~from + to;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void
reset(struct lw_nat *n)
{
	memset(n->by_host, 0, sizeof(n->by_host));
	memset(n->by_mapped, 0, sizeof(n->by_mapped));
	memset(n->flows, 0, sizeof(n->flows));
	for (unsigned i = 0; i < LW_NAT_MAX_FLOWS; i++)
		n->free[i] = (uint16_t)(LW_NAT_MAX_FLOWS - 1 - i);
	n->nfree = LW_NAT_MAX_FLOWS;
	n->nflows = 0;
	memset(n->cursor, 0, sizeof(n->cursor));
}

struct lw_nat *
lw_nat_new(void)
{
	struct lw_nat *n = calloc(1, sizeof(*n));

	if (n)
		reset(n);
	return n;
}

void
lw_nat_free(struct lw_nat *n)
{
	free(n);
}

void
lw_nat_set(struct lw_nat *n, uint8_t offset, uint8_t psid_len, uint16_t psid)
{
	unsigned nports = 0;

	if (psid_len && offset + psid_len <= 16 && offset < 16)
		nports = (offset ? (1u << offset) - 1 : 1u) << (16 - offset - psid_len);
	if (n->a == offset && n->k == psid_len && n->psid == psid && n->nports == nports)
		return;
	n->a = offset;
	n->k = psid_len;
	n->psid = psid;
	n->m = 16u - offset - psid_len;
	n->nports = nports;
	reset(n);
}

unsigned
lw_nat_size(const struct lw_nat *n)
{
	return n->nports ? n->nports : 65536;
}

bool
lw_nat_port_in(const struct lw_nat *n, uint16_t port)
{
	if (!n->nports)
		return true;
	if (n->a && (port >> (16 - n->a)) == 0)
		return false;
	return ((port >> n->m) & ((1u << n->k) - 1)) == n->psid;
}

static uint16_t
port_at(const struct lw_nat *n, unsigned idx)
{
	unsigned j = idx & ((1u << n->m) - 1), i = idx >> n->m;

	if (n->a)
		i += 1;
	return (uint16_t)((n->a ? i << (16 - n->a) : 0) | (unsigned)n->psid << n->m | j);
}

static int
proto_index(uint8_t proto)
{
	return proto == P_TCP ? 0 : proto == P_UDP ? 1 : proto == P_ICMP ? 2 : -1;
}

static void
flow_free(struct lw_nat *n, struct flow *f)
{
	n->by_host[f->pi][f->hport] = 0;
	n->by_mapped[f->pi][f->mport] = 0;
	f->used = false;
	n->free[n->nfree++] = (uint16_t)(f - n->flows);
	n->nflows--;
	n->c.expired++;
}

unsigned
lw_nat_expire(struct lw_nat *n, int64_t now_ms)
{
	for (unsigned i = 0; i < LW_NAT_MAX_FLOWS; i++) {
		struct flow *f = &n->flows[i];
		int64_t idle;

		if (!f->used)
			continue;
		if (f->pi == 0)
			idle = f->rst || (f->fin_out && f->fin_in) ? IDLE_CLOSED_MS
			       : f->rst_in                         ? IDLE_RST_IN_MS
			                                           : IDLE_TCP_MS;
		else
			idle = f->pi == 1 ? IDLE_UDP_MS : IDLE_ICMP_MS;
		if (now_ms - f->last_ms >= idle)
			flow_free(n, f);
	}
	n->last_sweep = now_ms;
	return n->nflows;
}

/* A free port of the set for protocol pi, the host's own when it can be. */
static bool
pick_port(struct lw_nat *n, int pi, uint16_t hport, uint16_t *mport)
{
	if (lw_nat_port_in(n, hport) && hport != 0 && !n->by_mapped[pi][hport]) {
		*mport = hport;
		return true;
	}
	for (unsigned k = 0; k < n->nports; k++) {
		unsigned idx = (n->cursor[pi] + k) % n->nports;
		uint16_t p = port_at(n, idx);

		if (p != 0 && !n->by_mapped[pi][p]) {
			n->cursor[pi] = (idx + 1) % n->nports;
			*mport = p;
			return true;
		}
	}
	return false;
}

static struct flow *
flow_new(struct lw_nat *n, int pi, uint16_t hport, int64_t now_ms)
{
	struct flow *f;
	uint16_t mport;

	if (now_ms - n->last_sweep >= SWEEP_MS)
		lw_nat_expire(n, now_ms);
	if ((!n->nfree || !pick_port(n, pi, hport, &mport)) &&
	    (lw_nat_expire(n, now_ms), !n->nfree || !pick_port(n, pi, hport, &mport))) {
		n->c.exhausted++;
		return NULL;
	}
	f = &n->flows[n->free[--n->nfree]];
	memset(f, 0, sizeof(*f));
	f->used = true;
	f->pi = (uint8_t)pi;
	f->hport = hport;
	f->mport = mport;
	n->by_host[pi][hport] = (uint16_t)(f - n->flows + 1);
	n->by_mapped[pi][mport] = (uint16_t)(f - n->flows + 1);
	n->nflows++;
	if (mport == hport)
		n->c.kept++;
	else
		n->c.mapped++;
	return f;
}

/* The transport part of a first fragment (or whole packet), or NULL. */
static uint8_t *
l4_of(uint8_t *buf, size_t len, size_t *l4len, uint8_t *proto)
{
	size_t ihl, total;

	if (len < 20 || (buf[0] >> 4) != 4)
		return NULL;
	ihl = (size_t)(buf[0] & 0x0f) * 4;
	total = get16(buf + 2);
	if (ihl < 20 || total > len || total < ihl || (get16(buf + 6) & 0x1fff) != 0)
		return NULL;
	*l4len = total - ihl;
	*proto = buf[9];
	return buf + ihl;
}

/* Rewrite the 16-bit field at `at`, keeping the checksum at `ck` right (UDP: 0 stays 0). */
static void
rewrite16(uint8_t *at, uint8_t *ck, bool udp, uint16_t to)
{
	uint16_t from = get16(at), c;

	put16(at, to);
	if (!ck)
		return;
	c = get16(ck);
	if (udp && c == 0)
		return; /* RFC 768: no checksum */
	c = csum_replace16(c, from, to);
	put16(ck, udp && c == 0 ? 0xffff : c);
}

static uint8_t *
csum_field(uint8_t *l4, size_t l4len, uint8_t proto)
{
	if (proto == P_TCP)
		return l4len >= 18 ? l4 + 16 : NULL;
	if (proto == P_UDP)
		return l4 + 6;
	return l4 + 2;
}

static void
note_tcp(struct flow *f, const uint8_t *l4, size_t l4len, bool out)
{
	uint8_t fl;

	if (l4len < 14)
		return;
	fl = l4[13];
	/*
	 * An RST from outside may be anyone's: the host's TCP drops one out
	 * of its window, and the flow must outlive it (or the next packet
	 * leaves from another port). It waits RFC 7857 §2.2's 4 minutes, and
	 * a packet the host sends after it shows the connection lives on.
	 */
	if (fl & 0x04) {
		if (out)
			f->rst = true;
		else
			f->rst_in = true;
	} else if (out) {
		f->rst_in = false;
	}
	if (fl & 0x01) {
		if (out)
			f->fin_out = true;
		else
			f->fin_in = true;
	}
}

/*
 * An ICMP error carries a packet: on the way out one the host received
 * (quoted destination = a host port), on the way in one it sent (quoted
 * source = a mapped port). The quoted port is translated like the
 * packet itself, and the ICMP checksum follows.
 */
static bool
icmp_quote(struct lw_nat *n, uint8_t *l4, size_t l4len, bool out)
{
	uint8_t *q = l4 + 8, *qp;
	size_t qihl;
	struct flow *f;
	uint16_t port, idx;
	int pi;

	if (l4len < 8 + 20 + 4 || (q[0] >> 4) != 4)
		return false;
	qihl = (size_t)(q[0] & 0x0f) * 4;
	if (qihl < 20 || l4len < 8 + qihl + 4 || (get16(q + 6) & 0x1fff) != 0 ||
	    (pi = proto_index(q[9])) < 0 || pi == 2)
		return false;
	qp = q + qihl + (out ? 2 : 0);
	port = get16(qp);
	idx = out ? n->by_host[pi][port] : n->by_mapped[pi][port];
	if (!idx)
		return false;
	f = &n->flows[idx - 1];
	rewrite16(qp, l4 + 2, false, out ? f->mport : f->hport);
	return true;
}

bool
lw_nat_out(struct lw_nat *n, uint8_t *buf, size_t len, int64_t now_ms)
{
	size_t l4len;
	uint8_t proto, *l4, *at;
	struct flow *f;
	uint16_t idx;
	int pi;

	if (!n->nports)
		return true;
	if (!(l4 = l4_of(buf, len, &l4len, &proto)) || (pi = proto_index(proto)) < 0 || l4len < 8) {
		n->c.passed++;
		return true;
	}
	if (pi == 2) {
		if (l4[0] != 8) { /* not an echo request: maybe an error about a flow */
			if (icmp_quote(n, l4, l4len, true))
				n->c.out++;
			else
				n->c.passed++;
			return true;
		}
		at = l4 + 4; /* the identifier */
	} else {
		at = l4;
	}
	idx = n->by_host[pi][get16(at)];
	if (idx) {
		f = &n->flows[idx - 1];
	} else if (!(f = flow_new(n, pi, get16(at), now_ms))) {
		return false;
	}
	f->last_ms = now_ms;
	if (pi == 0)
		note_tcp(f, l4, l4len, true);
	if (f->mport != f->hport)
		rewrite16(at, csum_field(l4, l4len, proto), pi == 1, f->mport);
	n->c.out++;
	return true;
}

void
lw_nat_in(struct lw_nat *n, uint8_t *buf, size_t len, int64_t now_ms)
{
	size_t l4len;
	uint8_t proto, *l4, *at;
	struct flow *f;
	uint16_t idx;
	int pi;

	if (!n->nports || !(l4 = l4_of(buf, len, &l4len, &proto)) ||
	    (pi = proto_index(proto)) < 0 || l4len < 8)
		return;
	if (pi == 2) {
		uint8_t t = l4[0];

		if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) {
			if (icmp_quote(n, l4, l4len, false))
				n->c.icmp_quotes++;
			return;
		}
		if (t != 0)
			return;
		at = l4 + 4;
	} else {
		at = l4 + 2;
	}
	if (!(idx = n->by_mapped[pi][get16(at)]))
		return;
	f = &n->flows[idx - 1];
	f->last_ms = now_ms;
	if (pi == 0)
		note_tcp(f, l4, l4len, false);
	if (f->mport != f->hport)
		rewrite16(at, csum_field(l4, l4len, proto), pi == 1, f->hport);
	n->c.in++;
}

const struct lw_nat_counters *
lw_nat_counters(const struct lw_nat *n)
{
	return &n->c;
}

void
lw_nat_counters_json(const struct lw_nat *n, json_t *o)
{
	const struct lw_nat_counters *k = &n->c;

	json_object_set_new(o, "lw4o6_translated_out", json_integer((json_int_t)k->out));
	json_object_set_new(o, "lw4o6_translated_in", json_integer((json_int_t)k->in));
	json_object_set_new(o, "lw4o6_flows_kept", json_integer((json_int_t)k->kept));
	json_object_set_new(o, "lw4o6_flows_mapped", json_integer((json_int_t)k->mapped));
	json_object_set_new(o, "lw4o6_flows_expired", json_integer((json_int_t)k->expired));
	json_object_set_new(o, "lw4o6_untranslated", json_integer((json_int_t)k->passed));
	json_object_set_new(o, "lw4o6_icmp_quotes", json_integer((json_int_t)k->icmp_quotes));
	/* The packet is dropped: no free port in the set. */
	json_object_set_new(o, "drop_port_set_full", json_integer((json_int_t)k->exhausted));
}
