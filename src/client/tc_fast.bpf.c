/*
 * dstm-client's kernel fast path, the client-side analogue of the TEP's
 * XDP plane: two tc programs that do the plain cases of tunnel.c in the
 * kernel, so that a TCP stack's 64 KB TSO packets cross the tunnel whole
 * (the kernel segments them at the device, as for plain IPv6) instead of
 * being cut into 1448-byte segments and sent one system call each.
 *
 *  - tc_fast_out, tc egress of the DTI: an IPv4 packet whose source is the
 *    leased address (inside the port range, if the lease has one) gets the
 *    outer IPv6 header (next header 4, source the client, destination the
 *    TEP) with bpf_skb_adjust_room(BPF_F_ADJ_ROOM_ENCAP_L3_IPV6), which
 *    keeps GSO (SKB_GSO_IPXIP6) and makes the skb IPv6, and leaves by
 *    bpf_redirect_neigh() on the interface of the client's address (the
 *    kernel routes, resolves the neighbour and writes the Ethernet header).
 *  - tc_fast_in, tc ingress of that interface: 4in6 from the TEP to the
 *    client's address, inner destination the leased address, loses its
 *    outer header (BPF_F_ADJ_ROOM_DECAP_L3_IPV4) and is redirected to the
 *    DTI's ingress, where it arrives as tunnel.c's TUN writes do.
 *
 * Whatever is not such a plain case is TC_ACT_OK, unchanged, and takes the
 * userspace path exactly as without these programs: no binding yet (the
 * on-demand first packet), another source (the placeholder's early flows),
 * a packet too big for the path (tunnel.c answers ICMP), extension
 * headers, fragments of the outer header, anything from elsewhere than
 * the TEP or for another inner destination (tunnel.c checks and counts
 * it). Nothing is dropped here.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "client/tc_fast.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_fast_binding);
} binding SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tc_fast_counters);
} counters SEC(".maps");

#define IP4_MIN 20
/* Linux 6.3 (uapi newer than Debian's headers): the decapsulated packet is
 * IPv4, skb->protocol follows. Older kernels refuse the flag (-EINVAL) and
 * the packet takes the userspace path. */
#define ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define IP6_LEN                40
#define TCP_MIN                20

/* The first bytes of an IPv4 header, read field by field below. */
struct ip4_head {
	__u8 vihl, tos;
	__u16 total, id, frag;
	__u8 ttl, proto;
	__u16 csum;
	__u32 src, dst;
};

struct ip6_head {
	__u32 vtcfl;
	__u16 plen;
	__u8 next, hops;
	__u8 src[16], dst[16];
};

static __always_inline struct tc_fast_counters *
ctr(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&counters, &k);
}

static __always_inline int
same16(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/*
 * The largest packet the kernel will send for this skb: itself, or one
 * segment of a GSO packet (headers + gso_size). Only TCP is segmented
 * here (the DTI offers TSO, nothing else); 0: cannot tell.
 */
static __always_inline __u32
wire_len(struct __sk_buff *skb, const struct ip4_head *ip, __u32 ihl)
{
	__u8 doff;

	if (!skb->gso_size)
		return skb->len;
	if (ip->proto != IPPROTO_TCP || bpf_skb_load_bytes(skb, ihl + 12, &doff, 1) < 0)
		return 0;
	return ihl + (__u32)(doff >> 4) * 4 + skb->gso_size;
}

/* A port-restricted lease: the source port must be in the range. */
static __always_inline int
port_ok(struct __sk_buff *skb, const struct tc_fast_binding *b, const struct ip4_head *ip,
        __u32 ihl)
{
	__u16 sport;

	if (!b->port_hi)
		return 1;
	if ((ip->proto != IPPROTO_TCP && ip->proto != IPPROTO_UDP) ||
	    (ip->frag & bpf_htons(0x3fff)) || bpf_skb_load_bytes(skb, ihl, &sport, 2) < 0)
		return 0;
	sport = bpf_ntohs(sport);
	return sport >= b->port_lo && sport <= b->port_hi;
}

SEC("tc")
int
tc_fast_out(struct __sk_buff *skb)
{
	struct tc_fast_counters *n = ctr();
	struct tc_fast_binding *b;
	struct ip4_head ip;
	struct ip6_head ip6;
	__u16 ethertype = bpf_htons(ETH_P_IPV6);
	__u32 k = 0, ihl, len, wire;

	b = bpf_map_lookup_elem(&binding, &k);
	if (!n || !b || !b->active)
		return TC_ACT_OK;
	/* The DTI is a TUN device: no link header, the IPv4 header at 0. */
	if (skb->protocol != bpf_htons(ETH_P_IP) || bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		goto pass;
	ihl = (__u32)(ip.vihl & 0xf) * 4;
	if ((ip.vihl >> 4) != 4 || ihl < IP4_MIN || ip.src != b->v4 || !port_ok(skb, b, &ip, ihl))
		goto pass;
	/* Too big for the path: tunnel.c sends the ICMP "fragmentation needed". */
	wire = wire_len(skb, &ip, ihl);
	if (!wire || wire + IP6_LEN > b->mtu)
		goto pass;
	len = skb->len;
	/* FIXED_GSO: the DTI's MTU already leaves room for the outer header,
	 * so the segments TCP sized stay as they are. */
	if (bpf_skb_adjust_room(skb, IP6_LEN, BPF_ADJ_ROOM_MAC,
	                        BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0) {
		n->fast_tx_errors++;
		return TC_ACT_OK;
	}
	/* RFC 2473 §6: a fresh header, traffic class 0 as the raw socket
	 * sends; the flow label from the flow's hash, as the kernel's
	 * auto flow labels (RFC 6437) do for the userspace path. */
	ip6.vtcfl = bpf_htonl(6u << 28 | (bpf_get_hash_recalc(skb) & 0xfffff));
	ip6.plen = bpf_htons((__u16)len);
	ip6.next = IPPROTO_IPIP;
	ip6.hops = (__u8)b->hop_limit;
	__builtin_memcpy(ip6.src, b->v6, 16);
	__builtin_memcpy(ip6.dst, b->tep6, 16);
	/*
	 * bpf_redirect_neigh() pulls an Ethernet header before its route and
	 * neighbour look-up, and drops a packet without one (in
	 * __bpf_redirect_neigh: mac_header >= network_header), which is what
	 * a TUN device's packets are: push a blank one (unicast zero address,
	 * never looked at) for it to pull.
	 */
	if (bpf_skb_change_head(skb, ETH_HLEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 12, &ethertype, 2, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6), 0) < 0) {
		/* The room is there but the header is not: the packet is lost. */
		n->fast_tx_errors++;
		return TC_ACT_SHOT;
	}
	n->fast_tx_packets++;
	n->fast_tx_bytes += len;
	if (skb->gso_size)
		n->fast_tx_gso++;
	return bpf_redirect_neigh(b->out_ifindex, NULL, 0, 0);
pass:
	n->fast_tx_passed++;
	return TC_ACT_OK;
}

SEC("tc")
int
tc_fast_in(struct __sk_buff *skb)
{
	struct tc_fast_counters *n = ctr();
	struct tc_fast_binding *b;
	struct ip6_head ip6;
	struct ip4_head ip;
	__u32 k = 0;

	b = bpf_map_lookup_elem(&binding, &k);
	if (!n || !b || !b->active || !b->rx)
		return TC_ACT_OK;
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) < 0 || ip6.next != IPPROTO_IPIP ||
	    !same16(ip6.dst, b->v6))
		return TC_ACT_OK; /* not ours at all: no counter */
	/* Seed 004: only the TEP may inject into the tunnel; tunnel.c counts
	 * the others (drop_not_tep, drop_bad_destination). */
	if (!same16(ip6.src, b->tep6) ||
	    bpf_skb_load_bytes(skb, ETH_HLEN + IP6_LEN, &ip, sizeof(ip)) < 0 ||
	    (ip.vihl >> 4) != 4 || (ip.vihl & 0xf) < 5 || ip.dst != b->v4)
		goto pass;
	/* FIXED_GSO: a packet GRO merged keeps its segments' size (TCP
	 * measures the peer's MSS from it). */
	if (bpf_skb_adjust_room(skb, -IP6_LEN, BPF_ADJ_ROOM_MAC,
	                        ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO) < 0) {
		n->fast_rx_errors++;
		return TC_ACT_OK;
	}
	n->fast_rx_packets++;
	n->fast_rx_bytes += skb->len - ETH_HLEN;
	return bpf_redirect(b->dti_ifindex, BPF_F_INGRESS);
pass:
	n->fast_rx_passed++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
