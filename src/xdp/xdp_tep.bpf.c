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
 * tc_tep_v6 and tc_tep_v4 make the same decisions at tc ingress of the
 * same interfaces (the "tc" data plane): they see the kernel's skb, so a
 * GSO or GRO packet of up to 64 KB is judged once and keeps its
 * segmentation across the tunnel (bpf_skb_adjust_room with the L3
 * encapsulation flags), where XDP handles every wire frame on its own and
 * a veth with an XDP program takes no GSO packets at all.
 *
 * Whatever is not a plain case is XDP_PASS (TC_ACT_OK), unchanged, so the kernel hands
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
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdp/xdp_tep.h"

#define AF_INET  2
#define AF_INET6 10
/* Linux 6.3 (uapi newer than Debian 12's headers): the decapsulated packet
 * is IPv4 and skb->protocol follows (as in client/tc_fast.bpf.c). */
#define ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)

/* What a program does with a packet, whichever hook it runs at. */
enum verdict { V_PASS, V_DROP, V_FWD };

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

/*
 * A 4in6 packet to the TEP: ip6 its IPv6 header, ip the IPv4 header after
 * it (end: past at least the 24 bytes plain4 reads, or the packet's end),
 * whole: the lengths of both headers agree with the packet. V_FWD with
 * *f the binding and *ports the inner ports; V_DROP counted (the core's
 * names); V_PASS counted as passed, for the userspace path.
 */
static __always_inline int
decap_verdict(const __u8 *ip6, const __u8 *ip, const void *end, int whole, struct found *f,
              __u32 *ports)
{
	__u32 plen = (__u32)ip6[4] << 8 | ip6[5], src, dst, idx;
	struct xtep_counters *x;
	int has_ports, rc;

	/* Padding or a short frame: the core trims and judges it. */
	if (!whole || !plain4(ip, end, ports, &has_ports))
		return count(XC_xdp_pass_v6, V_PASS);
	src = *(__u32 *)(ip + 12);
	dst = *(__u32 *)(ip + 16);
	if (martian(dst) || pool_index(dst, &idx))
		return count(XC_xdp_pass_v6, V_PASS);

	/* The TEP binds only pool addresses: any other source is unknown. */
	rc = pool_index(src, &idx) ? lookup(idx, bpf_ntohs((__u16)*ports), has_ports, f) : 0;
	if (!(x = ctrs()))
		return V_PASS;
	if (rc == 0 && xtep_cfg.learn)
		return count(XC_xdp_pass_v6, V_PASS);
	if (rc == -2 || rc == -3)
		return count(XC_xdp_pass_v6, V_PASS); /* the core counts drop_v4_no_port */
	if (rc <= 0 || !eq6(f->v6, ip6 + 8)) {
		x->c[XC_rx_v6_pkts]++;
		x->c[XC_rx_v6_bytes] += 40 + plen;
		if (rc == 0)
			x->c[XC_drop_no_binding_src]++;
		else if (rc == -1)
			x->c[XC_drop_port_outside_range]++;
		else
			x->c[XC_drop_spoofed_v6_src]++;
		return V_DROP;
	}
	return V_FWD;
}

/* Count a decapsulated packet of IPv4 length tot. */
static __always_inline void
count_decap(const struct found *f, __u32 tot)
{
	struct xtep_counters *x = ctrs();

	if (x) {
		x->c[XC_rx_v6_pkts]++;
		x->c[XC_rx_v6_bytes] += 40 + tot;
		x->c[XC_decap_pkts]++;
		x->c[XC_xdp_decap_pkts]++;
		x->c[XC_decap_bytes] += tot;
	}
	__sync_fetch_and_add(&f->ctr->pkts_in, 1);
	__sync_fetch_and_add(&f->ctr->bytes_in, tot);
}

/*
 * An IPv4 packet toward the pools (idx: the addrs index of its
 * destination), ip its header (end as above), seg the largest packet it
 * leaves as (itself, or a segment of a GSO packet; 0: unknown). V_FWD
 * with *f the binding, else V_PASS counted: the core answers misses with
 * ICMP and what is too big with "fragmentation needed".
 */
static __always_inline int
encap_verdict(const __u8 *ip, const void *end, __u32 idx, __u32 seg, struct found *f)
{
	__u32 ports = 0, mtu;
	int has_ports;

	if (!plain4(ip, end, &ports, &has_ports))
		return count(XC_xdp_pass_v4, V_PASS);
	if (lookup(idx, bpf_ntohs((__u16)(ports >> 16)), has_ports, f) != 1)
		return count(XC_xdp_pass_v4, V_PASS);
	mtu = f->mtu ? f->mtu : xtep_cfg.mtu;
	if (!seg || seg + 40 > mtu)
		return count(XC_xdp_pass_v4, V_PASS);
	return V_FWD;
}

/* Count an encapsulated packet of IPv4 length tot. */
static __always_inline void
count_encap(const struct found *f, __u32 tot)
{
	struct xtep_counters *x = ctrs();

	if (x) {
		x->c[XC_rx_v4_pkts]++;
		x->c[XC_rx_v4_bytes] += tot;
		x->c[XC_encap_pkts]++;
		x->c[XC_xdp_encap_pkts]++;
		x->c[XC_encap_bytes] += tot;
	}
	__sync_fetch_and_add(&f->ctr->pkts_out, 1);
	__sync_fetch_and_add(&f->ctr->bytes_out, tot);
}

/* The IPv6 header pushed in front of an IPv4 packet of length tot (dp_push_v6). */
static __always_inline void
fill_ip6(__u8 *ip6, __u32 tot, __u32 tclass, const __u8 *dst)
{
	/* RFC 2473 §6.6: the traffic class follows the inner packet's. */
	*(__u32 *)ip6 = bpf_htonl(6u << 28 | tclass << 20);
	ip6[4] = (__u8)(tot >> 8);
	ip6[5] = (__u8)tot;
	ip6[6] = IPPROTO_IPIP;
	ip6[7] = xtep_cfg.hop_limit;
	__builtin_memcpy(ip6 + 8, xtep_cfg.tep6, 16);
	__builtin_memcpy(ip6 + 24, dst, 16);
}

/*
 * The kernel's route toward the IPv4 header ip's destination (ports: its
 * TCP/UDP ports), for a packet of len bytes that came in on ifindex
 * (bpf_fib_lookup checks len against the route's MTU). 1 with fib's
 * ifindex and MACs when the route and the neighbour are known.
 */
static __always_inline int
route4(void *ctx, struct bpf_fib_lookup *fib, const __u8 *ip, __u32 ports, __u32 len,
       __u32 ifindex)
{
	fib->family = AF_INET;
	fib->tos = ip[1];
	fib->l4_protocol = ip[9];
	fib->sport = (__u16)ports;
	fib->dport = (__u16)(ports >> 16);
	fib->tot_len = (__u16)len;
	fib->ipv4_src = *(__u32 *)(ip + 12);
	fib->ipv4_dst = *(__u32 *)(ip + 16);
	fib->ifindex = ifindex;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0) == BPF_FIB_LKUP_RET_SUCCESS;
}

/* The same toward client dst6 for 4in6 from the TEP's address, len bytes of it. */
static __always_inline int
route6(void *ctx, struct bpf_fib_lookup *fib, const __u8 *dst6, __u32 len, __u32 ifindex)
{
	fib->family = AF_INET6;
	fib->l4_protocol = IPPROTO_IPIP;
	fib->tot_len = (__u16)len;
	__builtin_memcpy(fib->ipv6_src, xtep_cfg.tep6, 16);
	__builtin_memcpy(fib->ipv6_dst, dst6, 16);
	fib->ifindex = ifindex;
	return bpf_fib_lookup(ctx, fib, sizeof(*fib), 0) == BPF_FIB_LKUP_RET_SUCCESS;
}

/* The Ethernet header toward fib's neighbour, for an EtherType proto packet. */
static __always_inline void
fill_eth(__u8 *eth, const struct bpf_fib_lookup *fib, __u16 proto)
{
	__builtin_memcpy(eth, fib->dmac, 6);
	__builtin_memcpy(eth + 6, fib->smac, 6);
	*(__u16 *)(eth + 12) = bpf_htons(proto);
}

SEC("xdp")
int
xdp_tep_v6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	__u8 *eth = data, *ip6 = eth + 14, *ip;
	__u32 plen, tot, ports = 0;
	struct found f;
	int v;

	if ((void *)(ip6 + 40 + 20) > end)
		return XDP_PASS;
	if (*(__u16 *)(eth + 12) != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	if ((ip6[0] >> 4) != 6 || ip6[6] != IPPROTO_IPIP || !eq6(ip6 + 24, xtep_cfg.tep6))
		return XDP_PASS;
	ip = ip6 + 40;
	plen = (__u32)ip6[4] << 8 | ip6[5];
	tot = (__u32)ip[2] << 8 | ip[3];
	v = decap_verdict(ip6, ip, end, tot == plen && (void *)(ip + tot) == end, &f, &ports);
	if (v != V_FWD)
		return v == V_DROP ? XDP_DROP : XDP_PASS;

	if (!route4(ctx, &fib, ip, ports, tot, ctx->ingress_ifindex))
		return count(XC_xdp_no_route, XDP_PASS);

	count_decap(&f, tot);
	dec_ttl(ip);
	if (bpf_xdp_adjust_head(ctx, 40))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 14) > end)
		return XDP_ABORTED;
	fill_eth(eth, &fib, ETH_P_IP);
	return bpf_redirect(fib.ifindex, 0);
}

SEC("xdp")
int
xdp_tep_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	__u8 *eth = data, *ip = eth + 14, *ip6;
	__u32 tot, len, tclass, idx;
	__u8 v6[16];
	struct found f;

	if ((void *)(ip + 20) > end)
		return XDP_PASS;
	if (*(__u16 *)(eth + 12) != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	tot = (__u32)ip[2] << 8 | ip[3];
	len = (__u32)((long)end - (long)ip);
	if (tot < 20 || tot > len)
		return XDP_PASS;
	if (!pool_index(*(__u32 *)(ip + 16), &idx))
		return XDP_PASS; /* not toward a client: the kernel's */
	if (encap_verdict(ip, end, idx, tot, &f) != V_FWD)
		return XDP_PASS;

	__builtin_memcpy(v6, f.v6, 16);
	if (!route6(ctx, &fib, v6, tot + 40, ctx->ingress_ifindex))
		return count(XC_xdp_no_route, XDP_PASS);

	count_encap(&f, tot);
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
	fill_eth(eth, &fib, ETH_P_IPV6);
	fill_ip6(ip6, tot, tclass, v6);
	return bpf_redirect(fib.ifindex, 0);
}

/*
 * The largest packet skb leaves as: itself (len bytes of IPv4), or one
 * segment of a GSO packet. Only TCP GSO is taken (the header lengths are
 * known); 0 otherwise.
 */
static __always_inline __u32
tc_seg_len(struct __sk_buff *skb, const __u8 *ip, __u32 l3, __u32 len)
{
	__u8 doff;

	if (!skb->gso_size)
		return len;
	if (ip[9] != IPPROTO_TCP || bpf_skb_load_bytes(skb, l3 + 20 + 12, &doff, 1) < 0)
		return 0;
	return 20 + (__u32)(doff >> 4) * 4 + skb->gso_size;
}

/*
 * TTL - 1 of the IPv4 header at offset l3, in the skb, with its checksum
 * (the header was checked and copied to `ip` by the caller). 0 or < 0.
 */
static __always_inline int
tc_dec_ttl(struct __sk_buff *skb, __u32 l3, __u8 *ip)
{
	dec_ttl(ip);
	return bpf_skb_store_bytes(skb, l3 + 8, ip + 8, 4, 0);
}

SEC("tc")
int
tc_tep_v6(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	/* The Ethernet header at 2: the IP headers' words aligned, as the verifier wants. */
	__u8 b[2 + 14 + 40 + 24] __attribute__((aligned(8))), *h = b + 2, *ip6 = h + 14,
	                                                      *ip = ip6 + 40;
	__u32 plen, tot, seg, ports = 0;
	struct found f;
	int v;

	if (skb->protocol != bpf_htons(ETH_P_IPV6) ||
	    bpf_skb_load_bytes(skb, 0, h, 14 + 40 + 24) < 0)
		return TC_ACT_OK;
	if ((ip6[0] >> 4) != 6 || ip6[6] != IPPROTO_IPIP || !eq6(ip6 + 24, xtep_cfg.tep6))
		return TC_ACT_OK;
	plen = (__u32)ip6[4] << 8 | ip6[5];
	tot = (__u32)ip[2] << 8 | ip[3];
	v = decap_verdict(ip6, ip, b + sizeof(b), tot == plen && skb->len == 14 + 40 + tot, &f,
	                  &ports);
	if (v != V_FWD)
		return v == V_DROP ? TC_ACT_SHOT : TC_ACT_OK;

	/* The route's MTU is checked against what will leave: the packet, or one
	 * segment of a GSO packet (XDP's frames are always the former). */
	if (!(seg = tc_seg_len(skb, ip, 14 + 40, tot)))
		return count(XC_xdp_pass_v6, TC_ACT_OK);
	if (!route4(skb, &fib, ip, ports, seg, skb->ingress_ifindex))
		return count(XC_xdp_no_route, TC_ACT_OK);

	count_decap(&f, tot);
	/* FIXED_GSO: the segments keep the size the client's TCP gave them. */
	if (tc_dec_ttl(skb, 14 + 40, ip) < 0 ||
	    bpf_skb_adjust_room(skb, -40, BPF_ADJ_ROOM_MAC,
	                        ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return TC_ACT_SHOT;
	fill_eth(h, &fib, ETH_P_IP);
	if (bpf_skb_store_bytes(skb, 0, h, 14, 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(fib.ifindex, 0);
}

SEC("tc")
int
tc_tep_v4(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib = {};
	/* Both with the Ethernet header at 2, as in tc_tep_v6. */
	__u8 b[2 + 14 + 40] __attribute__((aligned(8))), *h = b + 2, *ip6 = h + 14;
	__u8 c[2 + 14 + 24] __attribute__((aligned(8))), *ip4 = c + 2 + 14;
	__u32 tot, len, seg, tclass, idx;
	struct found f;

	if (skb->protocol != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, 0, c + 2, 14 + 24) < 0)
		return TC_ACT_OK;
	tot = (__u32)ip4[2] << 8 | ip4[3];
	len = skb->len - 14;
	if (tot < 20 || tot > len || (skb->gso_size && tot != len))
		return TC_ACT_OK;
	if (!pool_index(*(__u32 *)(ip4 + 16), &idx))
		return TC_ACT_OK; /* not toward a client: the kernel's */
	seg = tc_seg_len(skb, ip4, 14, tot);
	if (encap_verdict(ip4, c + sizeof(c), idx, seg, &f) != V_FWD)
		return TC_ACT_OK;

	if (!route6(skb, &fib, f.v6, seg + 40, skb->ingress_ifindex))
		return count(XC_xdp_no_route, TC_ACT_OK);

	count_encap(&f, tot);
	tclass = ip4[1];
	/* Ethernet padding after a short packet does not go into the tunnel. */
	if (len > tot && bpf_skb_change_tail(skb, 14 + tot, 0) < 0)
		return TC_ACT_SHOT;
	if (tc_dec_ttl(skb, 14, ip4) < 0 ||
	    bpf_skb_adjust_room(skb, 40, BPF_ADJ_ROOM_MAC,
	                        BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return TC_ACT_SHOT;
	fill_eth(h, &fib, ETH_P_IPV6);
	fill_ip6(ip6, tot, tclass, f.v6);
	if (bpf_skb_store_bytes(skb, 0, h, 14 + 40, 0) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
