/*
 * The pure packet functions of dstm-client's data path (client.h): the
 * translation of the flows that were opened on the
 * placeholder address before an on-demand lease existed, and the ICMP
 * "fragmentation needed" the client owes a sender whose packet no longer
 * fits the tunnel. No I/O: buffers in, buffers out, so that unit tests
 * and fuzzers drive them directly. Parsing, checksums and header writers
 * are the packet library's (src/packet), shared with the TEP.
 */
#include <string.h>

#include "client/client.h"
#include "packet/pkt.h"

/*
 * Replace the address at byte `at` (12 = source, 16 = destination) and
 * fix the header checksum and, in a first fragment, the TCP or UDP
 * checksum (the pseudo-header holds the addresses; ICMP has none).
 */
static void
rewrite_addr(uint8_t *buf, const struct pkt4 *p, size_t at, uint32_t to)
{
	uint32_t from = pkt_ld32(buf + at);
	const uint8_t *l4_end = buf + p->total;
	uint8_t *l4 = buf + p->ihl;

	pkt_st32(buf + at, to);
	pkt_st16(buf + 10, pkt_csum_replace32(pkt_ld16(buf + 10), from, to));
	if (p->fragment)
		return;
	if (p->proto == IPPROTO_TCP && l4 + 18 <= l4_end) {
		pkt_st16(l4 + 16, pkt_csum_replace32(pkt_ld16(l4 + 16), from, to));
	} else if (p->proto == IPPROTO_UDP && l4 + 8 <= l4_end) {
		uint16_t ck = pkt_ld16(l4 + 6);

		/* RFC 768: 0 means "no checksum"; a computed 0 is sent as 0xffff */
		if (ck != 0) {
			ck = pkt_csum_replace32(ck, from, to);
			pkt_st16(l4 + 6, ck ? ck : 0xffff);
		}
	}
}

/*
 * The flow key of a packet as seen from the host: `out` says whether the
 * host sent it. False when the packet carries no ports we can key on.
 */
static bool
flow_key(const uint8_t *buf, const struct pkt4 *p, bool out, uint32_t *remote, uint16_t *lport,
         uint16_t *rport, uint8_t *tcpflags)
{
	const uint8_t *l4 = buf + p->ihl;
	size_t l4len = (size_t)(p->total - p->ihl);

	*remote = out ? p->dst : p->src;
	*tcpflags = 0;
	if (p->fragment)
		return false;
	switch (p->proto) {
	case IPPROTO_TCP:
		if (l4len < 20)
			return false;
		*tcpflags = l4[13];
		/* fall through */
	case IPPROTO_UDP:
		if (l4len < 8)
			return false;
		*lport = pkt_ld16(out ? l4 : l4 + 2);
		*rport = pkt_ld16(out ? l4 + 2 : l4);
		return true;
	case IPPROTO_ICMP:
		if (l4len < 8)
			return false;
		/* echo request out (8), echo reply in (0): the identifier */
		if ((out && l4[0] != 8) || (!out && l4[0] != 0))
			return false;
		*lport = pkt_ld16(l4 + 4);
		*rport = 0;
		return true;
	default:
		return false;
	}
}

static struct early_flow *
flow_find(struct early_table *t, uint8_t proto, uint32_t remote, uint16_t lport, uint16_t rport)
{
	for (unsigned i = 0; i < EARLY_MAX_FLOWS; i++) {
		struct early_flow *f = &t->f[i];

		if (f->used && f->proto == proto && f->remote == remote && f->lport == lport &&
		    f->rport == rport)
			return f;
	}
	return NULL;
}

static void
flow_note_tcp(struct early_flow *f, uint8_t flags, bool out)
{
	if (flags & 0x04) { /* RST */
		f->fin_out = f->fin_in = true;
	} else if (flags & 0x01) { /* FIN */
		if (out)
			f->fin_out = true;
		else
			f->fin_in = true;
	}
}

bool
early_out(struct early_table *t, uint8_t *buf, size_t len, uint32_t from, uint32_t to,
          int64_t now_ms)
{
	struct pkt4 p;
	struct early_flow *f;
	uint32_t remote;
	uint16_t lport = 0, rport = 0;
	uint8_t flags;

	if (!pkt_ip4_parse(buf, len, &p) || p.src != from)
		return false;
	if (flow_key(buf, &p, true, &remote, &lport, &rport, &flags)) {
		f = flow_find(t, p.proto, remote, lport, rport);
		if (!f) {
			for (unsigned i = 0; i < EARLY_MAX_FLOWS && !f; i++)
				if (!t->f[i].used)
					f = &t->f[i];
			if (!f) {
				t->table_full++;
				return false;
			}
			memset(f, 0, sizeof(*f));
			f->used = true;
			f->proto = p.proto;
			f->remote = remote;
			f->lport = lport;
			f->rport = rport;
		}
		f->last_ms = now_ms;
		if (p.proto == IPPROTO_TCP)
			flow_note_tcp(f, flags, true);
	}
	/* Fragments and other protocols keep no state: their replies, if
	 * any, cannot be told apart and reach the leased address. */
	rewrite_addr(buf, &p, 12, to);
	t->translated_out++;
	return true;
}

bool
early_in(struct early_table *t, uint8_t *buf, size_t len, uint32_t leased, uint32_t placeholder,
         int64_t now_ms)
{
	struct pkt4 p;
	struct early_flow *f;
	uint32_t remote;
	uint16_t lport = 0, rport = 0;
	uint8_t flags;

	if (!pkt_ip4_parse(buf, len, &p) || p.dst != leased)
		return false;
	if (!flow_key(buf, &p, false, &remote, &lport, &rport, &flags))
		return false;
	f = flow_find(t, p.proto, remote, lport, rport);
	if (!f)
		return false;
	f->last_ms = now_ms;
	if (p.proto == IPPROTO_TCP)
		flow_note_tcp(f, flags, false);
	rewrite_addr(buf, &p, 16, placeholder);
	t->translated_in++;
	return true;
}

unsigned
early_expire(struct early_table *t, int64_t now_ms)
{
	unsigned left = 0;

	for (unsigned i = 0; i < EARLY_MAX_FLOWS; i++) {
		struct early_flow *f = &t->f[i];
		int64_t idle;

		if (!f->used)
			continue;
		idle = (f->fin_out && f->fin_in) ? EARLY_CLOSED_MS : EARLY_IDLE_MS;
		if (now_ms - f->last_ms >= idle) {
			f->used = false;
			t->expired++;
		} else {
			left++;
		}
	}
	return left;
}

void
early_clear(struct early_table *t)
{
	for (unsigned i = 0; i < EARLY_MAX_FLOWS; i++)
		t->f[i].used = false;
}

size_t
pkt_icmp_frag_needed(const uint8_t *orig, size_t len, uint32_t from, unsigned mtu, uint8_t *out,
                     size_t outlen)
{
	struct pkt4 p;
	size_t quote, total;

	if (!pkt_ip4_parse(orig, len, &p) || p.fragment)
		return 0;
	/* RFC 1122 §3.2.2: never an ICMP error about an ICMP error */
	if (p.proto == IPPROTO_ICMP && p.total >= p.ihl + 1u) {
		uint8_t type = orig[p.ihl];

		if (type != 0 && type != 8 && type != 13 && type != 14)
			return 0;
	}
	/* RFC 792: the header and 64 bits; RFC 1812 §4.3.2.3 allows up to 576 */
	quote = p.total;
	if (quote > 576 - 28)
		quote = 576 - 28;
	total = 28 + quote;
	if (outlen < total)
		return 0;
	memcpy(out + 28, orig, quote);
	/* RFC 1191 §4: the next-hop MTU in the low half of the field. */
	return pkt_icmp4_error_hdr(out, 3, 4, mtu & 0xffff, from, p.src, 0x4000, quote);
}
