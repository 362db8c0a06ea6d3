/*
 * The TEP's XDP data plane (DESIGN §7): the common cases of the forwarding
 * core (src/dataplane) done in the driver, before the kernel builds an skb.
 *
 *  - xdp_tep_v6, on the interface that holds the TEP's IPv6 address:
 *    4in6 to the TEP (next header 4 right after the IPv6 header), inner
 *    source looked up, outer source checked against the binding (port
 *    range included), outer header stripped, TTL decremented, sent with
 *    bpf_fib_lookup + bpf_redirect toward the IPv4 side.
 *  - xdp_tep_v4, on the IPv4 side: a destination bound to a client gets
 *    the IPv6 header pushed (TEP source, the client's address) and is
 *    redirected toward it.
 *
 * Whatever is not a plain case is XDP_PASS, unchanged, so the kernel hands
 * it to dstm-tep's userspace path (raw socket, TUN device) exactly as
 * without XDP: extension headers, fragments, IP options, ICMP (errors,
 * quotes, Packet Too Big), TTL about to expire, packets too big for the
 * client's path, hairpin (a pool destination), learn mode's unknown
 * sources, bad checksums or lengths, destinations without a route or
 * neighbour yet, and packets for the TEP itself. XDP drops only what the
 * userspace path would drop at the same point and counts it under the
 * same name: unknown source, spoofed IPv6 source, port outside the range.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdp/xdp_tep.h"

#define AF_INET  2
#define AF_INET6 10

/* Sized by the loader before the maps are created (xdp_tep.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xtep_addr);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xtep_range);
} ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xtep_counters);
} counters SEC(".maps");

struct xtep_cfg xtep_cfg;

/* What a lookup found: the client, its path MTU, where to count. */
struct found {
	const __u8 *v6;
	__u16 mtu;
	struct xtep_bctr *ctr;
};

static __always_inline struct xtep_counters *
ctrs(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline int
count(int c, int verdict)
{
	struct xtep_counters *x = ctrs();

	if (x)
		x->c[c]++;
	return verdict;
}

static __always_inline int
eq6(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3])) == 0;
}

/* RFC 1071 over the 20-byte IPv4 header: 0 when it is right. */
static __always_inline __u16
csum_ip4(const __u8 *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 s = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* TTL - 1 with the RFC 1624 checksum update (as Linux's ip_decrease_ttl). */
static __always_inline void
dec_ttl(__u8 *ip)
{
	__u32 check = ((__u32)ip[10] << 8 | ip[11]) + 0x0100;

	check += check >= 0xffff;
	ip[10] = (__u8)(check >> 8);
	ip[11] = (__u8)check;
	ip[8]--;
}

/* 1 and *idx the addrs index of a (network byte order) when a pool holds it. */
static __always_inline int
pool_index(__u32 a, __u32 *idx)
{
	__u32 h = bpf_ntohl(a), n = xtep_cfg.npools;

	for (__u32 i = 0; i < XTEP_MAX_POOLS; i++) {
		if (i >= n)
			break;
		if (h - xtep_cfg.pools[i].first < xtep_cfg.pools[i].size) {
			*idx = xtep_cfg.pools[i].index + (h - xtep_cfg.pools[i].first);
			return 1;
		}
	}
	return 0;
}

/* Same rule as v4_martian() in the core (a in network byte order). */
static __always_inline int
martian(__u32 a)
{
	__u32 h = bpf_ntohl(a);

	return (h >> 24) == 0 || (h >> 24) == 127 || (h >> 28) >= 14;
}

/*
 * The binding of the pool address at addrs index idx, at `port` (has_port:
 * the packet shows one). Returns 1 found, 0 no binding at all, -1 a shared
 * address whose ranges do not cover the port, -2 a shared address and no
 * port, -3 an address the userspace core serves (PSID port sets).
 */
static __always_inline int
lookup(__u32 idx, __u16 port, int has_port, struct found *f)
{
	struct xtep_addr *a = bpf_map_lookup_elem(&addrs, &idx);
	struct xtep_range *r;
	__u32 k;

	if (!a || !a->present)
		return 0;
	if (a->size == XTEP_SIZE_CORE)
		return -3;
	if (a->size == 0) {
		f->v6 = a->v6;
		f->mtu = a->mtu;
		f->ctr = &a->ctr;
		return 1;
	}
	if (!has_port)
		return -2;
	if (port < a->base)
		return -1;
	/* port <= 65535 keeps k inside the block (xdp_tep.h). */
	k = a->rbase + (__u32)(port - a->base) / a->size;
	r = bpf_map_lookup_elem(&ranges, &k);
	if (!r || !r->present || port < r->lo || port > r->hi)
		return -1;
	f->v6 = r->v6;
	f->mtu = r->mtu;
	f->ctr = &r->ctr;
	return 1;
}

/*
 * The IPv4 header at ip (20 bytes, checked by the caller) is a plain case
 * when: version 4 without options, a right checksum, no fragment, a
 * length that fits, TTL above 1. ICMP is never plain (errors carry
 * quotes the core filters). *ports gets TCP/UDP ports (sport, dport).
 */
static __always_inline int
plain4(const __u8 *ip, const void *end, __u32 *ports, int *has_ports)
{
	__u16 frag = (__u16)(ip[6] << 8 | ip[7]);

	if (ip[0] != 0x45 || ip[8] <= 1 || ip[9] == IPPROTO_ICMP)
		return 0;
	if (frag & 0x3fff) /* MF or an offset */
		return 0;
	if (csum_ip4(ip) != 0)
		return 0;
	*has_ports = 0;
	if (ip[9] == IPPROTO_TCP || ip[9] == IPPROTO_UDP) {
		if ((const void *)(ip + 24) > end)
			return 0;
		*ports = *(const __u32 *)(ip + 20);
		*has_ports = 1;
	}
	return 1;
}

SEC("xdp")
int
xdp_tep_v6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct xtep_counters *x;
	__u8 *eth = data, *ip6 = eth + 14, *ip;
	__u32 plen, tot, src, dst, ports = 0, idx;
	struct found f;
	int has_ports, rc;

	if ((void *)(ip6 + 40 + 20) > end)
		return XDP_PASS;
	if (*(__u16 *)(eth + 12) != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if ((ip6[0] >> 4) != 6 || ip6[6] != IPPROTO_IPIP || !eq6(ip6 + 24, xtep_cfg.tep6))
		return XDP_PASS;
	ip = ip6 + 40;
	plen = (__u32)ip6[4] << 8 | ip6[5];
	tot = (__u32)ip[2] << 8 | ip[3];
	/* Padding or a short frame: the core trims and judges it. */
	if (tot != plen || (void *)(ip + tot) != end)
		return count(XC_xdp_pass_v6, XDP_PASS);
	if (!plain4(ip, end, &ports, &has_ports))
		return count(XC_xdp_pass_v6, XDP_PASS);
	src = *(__u32 *)(ip + 12);
	dst = *(__u32 *)(ip + 16);
	if (martian(dst) || pool_index(dst, &idx))
		return count(XC_xdp_pass_v6, XDP_PASS);

	/* The TEP binds only pool addresses: any other source is unknown. */
	rc = pool_index(src, &idx) ? lookup(idx, bpf_ntohs((__u16)ports), has_ports, &f) : 0;
	x = ctrs();
	if (!x)
		return XDP_PASS;
	if (rc == 0 && xtep_cfg.learn)
		return count(XC_xdp_pass_v6, XDP_PASS);
	if (rc == -2 || rc == -3)
		return count(XC_xdp_pass_v6, XDP_PASS); /* the core counts drop_v4_no_port */
	if (rc <= 0 || !eq6(f.v6, ip6 + 8)) {
		x->c[XC_rx_v6_pkts]++;
		x->c[XC_rx_v6_bytes] += 40 + plen;
		if (rc == 0)
			x->c[XC_drop_no_binding_src]++;
		else if (rc == -1)
			x->c[XC_drop_port_outside_range]++;
		else
			x->c[XC_drop_spoofed_v6_src]++;
		return XDP_DROP;
	}

	fib.family = AF_INET;
	fib.tos = ip[1];
	fib.l4_protocol = ip[9];
	fib.sport = (__u16)ports;
	fib.dport = (__u16)(ports >> 16);
	fib.tot_len = (__u16)tot;
	fib.ipv4_src = src;
	fib.ipv4_dst = dst;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return count(XC_xdp_no_route, XDP_PASS);

	x->c[XC_rx_v6_pkts]++;
	x->c[XC_rx_v6_bytes] += 40 + plen;
	x->c[XC_decap_pkts]++;
	x->c[XC_xdp_decap_pkts]++;
	x->c[XC_decap_bytes] += tot;
	__sync_fetch_and_add(&f.ctr->pkts_in, 1);
	__sync_fetch_and_add(&f.ctr->bytes_in, tot);
	dec_ttl(ip);
	if (bpf_xdp_adjust_head(ctx, 40))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 14) > end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, fib.dmac, 6);
	__builtin_memcpy(eth + 6, fib.smac, 6);
	*(__u16 *)(eth + 12) = bpf_htons(ETH_P_IP);
	return bpf_redirect(fib.ifindex, 0);
}

SEC("xdp")
int
xdp_tep_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	struct xtep_counters *x;
	__u8 *eth = data, *ip = eth + 14, *ip6;
	__u32 tot, dst, ports = 0, mtu, len, tclass, idx;
	__u8 v6[16];
	struct found f;
	int has_ports;

	if ((void *)(ip + 20) > end)
		return XDP_PASS;
	if (*(__u16 *)(eth + 12) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	tot = (__u32)ip[2] << 8 | ip[3];
	len = (__u32)((long)end - (long)ip);
	if (tot < 20 || tot > len)
		return XDP_PASS;
	dst = *(__u32 *)(ip + 16);
	if (!pool_index(dst, &idx))
		return XDP_PASS; /* not toward a client: the kernel's */
	if (!plain4(ip, end, &ports, &has_ports))
		return count(XC_xdp_pass_v4, XDP_PASS);
	/* A miss is host unreachable from the core (ICMP, rate-limited). */
	if (lookup(idx, bpf_ntohs((__u16)(ports >> 16)), has_ports, &f) != 1)
		return count(XC_xdp_pass_v4, XDP_PASS);
	mtu = f.mtu ? f.mtu : xtep_cfg.mtu;
	if (tot + 40 > mtu)
		return count(XC_xdp_pass_v4, XDP_PASS); /* fragmentation-needed, or fragments */

	__builtin_memcpy(v6, f.v6, 16);
	fib.family = AF_INET6;
	fib.l4_protocol = IPPROTO_IPIP;
	fib.tot_len = (__u16)(tot + 40);
	__builtin_memcpy(fib.ipv6_src, xtep_cfg.tep6, 16);
	__builtin_memcpy(fib.ipv6_dst, v6, 16);
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return count(XC_xdp_no_route, XDP_PASS);

	x = ctrs();
	if (x) {
		x->c[XC_rx_v4_pkts]++;
		x->c[XC_rx_v4_bytes] += tot;
		x->c[XC_encap_pkts]++;
		x->c[XC_xdp_encap_pkts]++;
		x->c[XC_encap_bytes] += tot;
	}
	__sync_fetch_and_add(&f.ctr->pkts_out, 1);
	__sync_fetch_and_add(&f.ctr->bytes_out, tot);
	dec_ttl(ip);
	tclass = ip[1];
	/* Ethernet padding after a short packet does not go into the tunnel. */
	if (len > tot && bpf_xdp_adjust_tail(ctx, -(int)(len - tot)))
		return XDP_ABORTED;
	if (bpf_xdp_adjust_head(ctx, -40))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip6 = eth + 14;
	if ((void *)(ip6 + 40) > end)
		return XDP_ABORTED;
	__builtin_memcpy(eth, fib.dmac, 6);
	__builtin_memcpy(eth + 6, fib.smac, 6);
	*(__u16 *)(eth + 12) = bpf_htons(ETH_P_IPV6);
	/* RFC 2473 §6.6: the traffic class follows the inner packet's (dp_push_v6). */
	*(__u32 *)ip6 = bpf_htonl(6u << 28 | tclass << 20);
	ip6[4] = (__u8)(tot >> 8);
	ip6[5] = (__u8)tot;
	ip6[6] = IPPROTO_IPIP;
	ip6[7] = xtep_cfg.hop_limit;
	__builtin_memcpy(ip6 + 8, xtep_cfg.tep6, 16);
	__builtin_memcpy(ip6 + 24, v6, 16);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
