/*
 * libFuzzer harness of dstm-client's lwB4 port translation
 * (src/client/lw4o6.c) on hostile packets: the host's packets going out
 * and, above all, what arrives from the tunnel, which anyone on the IPv4
 * side can aim at the shared address. The first four bytes are the port
 * set (offset, PSID length, PSID); the rest is a train of records, each
 * a direction byte (bit 0: in; bits 1..7: milliseconds advanced x 1024,
 * so flows expire within a run), a 16-bit length and that many packet
 * bytes. Beyond the sanitizers, the harness checks what the translation
 * promises: a packet it lets out whose port it handles leaves with its
 * port (or echo identifier) inside the set; a checksum that held before
 * the rewrite still holds after it (RFC 1624), out and in, ICMP errors'
 * quotes included; the flows never exceed LW_NAT_MAX_FLOWS.
 */
#include <stdlib.h>
#include <string.h>

#include "client/lw4o6.h"
#include "packet/pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t pkt[65536];

/* The L4 checksum of a whole, unfragmented IPv4 packet; -1 when there is none to check. */
static int
l4_csum_ok(const uint8_t *p, size_t len)
{
	size_t ihl, total, l4len;
	uint8_t proto;
	uint32_t src, dst;
	uint16_t s;

	if (len < 20 || (p[0] >> 4) != 4)
		return -1;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	total = pkt_ld16(p + 2);
	if (ihl < 20 || total > len || total < ihl || (pkt_ld16(p + 6) & 0x3fff) != 0)
		return -1;
	l4len = total - ihl;
	proto = p[9];
	src = pkt_ld32(p + 12);
	dst = pkt_ld32(p + 16);
	if (proto == 6 && l4len >= 20)
		s = pkt_csum(p + ihl, l4len,
		             (uint32_t)pkt_csum_fold(pkt_pseudo4(src, dst, 6, (uint32_t)l4len)));
	else if (proto == 17 && l4len >= 8 && pkt_ld16(p + ihl + 6) != 0)
		s = pkt_csum(p + ihl, l4len,
		             (uint32_t)pkt_csum_fold(pkt_pseudo4(src, dst, 17, (uint32_t)l4len)));
	else if (proto == 1 && l4len >= 8)
		s = pkt_csum(p + ihl, l4len, 0);
	else
		return -1;
	/* 0: every byte zero, the one-complement zero written the other way. */
	return s == 0xffff || s == 0;
}

/* The port (identifier) the set must hold after a translated packet went out, or -1. */
static int
out_port(const uint8_t *p, size_t len)
{
	size_t ihl, total;

	if (len < 20 || (p[0] >> 4) != 4)
		return -1;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	total = pkt_ld16(p + 2);
	if (ihl < 20 || total > len || total < ihl || total - ihl < 8 ||
	    (pkt_ld16(p + 6) & 0x1fff) != 0)
		return -1;
	if (p[9] == 6 || p[9] == 17)
		return pkt_ld16(p + ihl);
	if (p[9] == 1 && p[ihl] == 8)
		return pkt_ld16(p + ihl + 4);
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lw_nat *n;
	int64_t now = 1000000;
	unsigned a, k;
	uint16_t psid;

	if (size < 4)
		return 0;
	if (!n && !(n = lw_nat_new()))
		abort();
	/* A change of set forgets every flow: each input starts empty. */
	lw_nat_set(n, 0, 0, 0);
	/* As the parsers give it (d6_s46.c, tsp_xml.c): a < 16, a + k <= 16, PSID in k bits. */
	a = data[0] % 16;
	k = data[1] % 17;
	if (a + k > 16)
		k = 16 - a;
	psid = (uint16_t)((data[2] << 8 | data[3]) & ((1u << k) - 1));
	lw_nat_set(n, (uint8_t)a, (uint8_t)k, psid);
	data += 4;
	size -= 4;
	while (size >= 3) {
		bool in = data[0] & 1;
		size_t len = (size_t)(data[1] << 8 | data[2]);
		int ok_before, ok_after, port;

		now += (int64_t)(data[0] >> 1) * 1024;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		memcpy(pkt, data, len);
		data += len;
		size -= len;
		ok_before = l4_csum_ok(pkt, len);
		if (in) {
			lw_nat_in(n, pkt, len, now);
		} else {
			if (!lw_nat_out(n, pkt, len, now))
				continue; /* dropped: no free port in the set */
			port = out_port(pkt, len);
			if (port >= 0 && lw_nat_size(n) < 65536 &&
			    !lw_nat_port_in(n, (uint16_t)port))
				abort();
		}
		ok_after = l4_csum_ok(pkt, len);
		if (ok_before == 1 && ok_after != 1)
			abort();
	}
	if (lw_nat_expire(n, now) > LW_NAT_MAX_FLOWS)
		abort();
	return 0;
}
