/*
 * libFuzzer harness of what dstm-client parses (src/client/packet.c and
 * the packet library it uses): a packet read from the DTI with its
 * virtio_net_hdr (the offload path: partial checksum completed, TCP
 * super-packet segmented), a packet from the tunnel (coalescing, the
 * early flow translation back to the placeholder) and the ICMP error the
 * client builds about it, and the GSO write of what the kernel's GRO
 * merged. The first byte picks the direction; the rest is the input (from
 * the tunnel, a train of packets). Beyond the sanitizers, the harness
 * checks what the shell relies on: every segment is a valid IPv4 packet
 * that fits its slot, with correct checksums; a coalesced packet is no
 * longer than its buffer; an ICMP error fits 576 bytes; a GSO write's
 * checksum, completed, holds.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

#define PH     0xc0000008u
#define LEASED 0xc000020au
#define SLOT   2048
#define SEGS   48

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t buf[65536 + 64], segs[SEGS * SLOT], gbuf[PKT_VNET_HLEN + 65535];
static struct early_table early;

static void
check_ip4(const uint8_t *p, size_t len)
{
	struct pkt4 h;

	if (!pkt_ip4_parse(p, len, &h) || h.total != len)
		abort();
	if (pkt_csum(p, h.ihl, 0) != 0xffff)
		abort();
}

static void
from_dti(const uint8_t *data, size_t size)
{
	struct pkt_vnet v;
	uint16_t lens[SEGS];
	unsigned n;
	size_t len;

	if (!pkt_vnet_parse(data, size, &v))
		return;
	len = size - PKT_VNET_HLEN;
	memcpy(buf, data + PKT_VNET_HLEN, len);
	if (!pkt_csum_complete(buf, len, &v))
		return;
	if (v.gso_type == PKT_VNET_GSO_NONE) {
		early_out(&early, buf, len, PH, LEASED, 0);
		return;
	}
	n = pkt_tso4(buf, len, v.gso_size, segs, SLOT, SEGS, lens);
	for (unsigned i = 0; i < n; i++) {
		if (lens[i] > SLOT)
			abort();
		check_ip4(segs + (size_t)i * SLOT, lens[i]);
	}
}

static void
from_tunnel(const uint8_t *data, size_t size)
{
	struct pkt_gro g = {.buf = gbuf, .max_len = 65535};
	uint8_t icmp[576];
	size_t off = 0, n;

	/* The input is a train of packets, each behind a 2-byte length. */
	while (off + 2 <= size) {
		size_t len = (size_t)(data[off] << 8 | data[off + 1]);
		struct pkt4 h;

		off += 2;
		if (len > size - off)
			len = size - off;
		memcpy(buf, data + off, len);
		off += len;
		if (!pkt_ip4_parse(buf, len, &h))
			continue;
		early_in(&early, buf, h.total, LEASED, PH, 0);
		n = pkt_icmp_frag_needed(buf, h.total, LEASED, 1280, icmp, sizeof(icmp));
		if (n) {
			if (n > sizeof(icmp))
				abort();
			check_ip4(icmp, n);
		}
		{
			/* What GRO merged before the socket: a GSO write whose
			 * checksum, completed as the kernel would, holds. */
			static uint8_t big[65536];
			struct pkt_vnet v;

			memcpy(big, buf, h.total);
			if (pkt_gso4_prepare(big, h.total, 576, &v)) {
				if (v.gso_size == 0 || v.hdr_len >= h.total ||
				    !pkt_csum_complete(big, h.total, &v) ||
				    pkt_csum(big + v.csum_start, h.total - v.csum_start,
				             (uint32_t)pkt_pseudo4(h.src, h.dst, PKT_PROTO_TCP,
				                                   h.total - v.csum_start)) !=
				        0xffff)
					abort();
			}
		}
		if (!pkt_gro_add(&g, buf, h.total)) {
			if (pkt_gro_finish(&g) > sizeof(gbuf))
				abort();
			if (!pkt_gro_add(&g, buf, h.total) && h.total <= g.max_len)
				abort(); /* an empty train takes any packet that fits */
		}
	}
	if (pkt_gro_finish(&g) > sizeof(gbuf))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] & 1)
		from_dti(data + 1, size - 1);
	else
		from_tunnel(data + 1, size - 1);
	early_expire(&early, (int64_t)1 << 40);
	return 0;
}
