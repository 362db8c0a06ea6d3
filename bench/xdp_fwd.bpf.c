/*
 * The baseline of bench/xdp_lab_bench.py: plain IPv4 forwarding in XDP,
 * the least a forwarding XDP program does (bpf_fib_lookup, TTL, MAC
 * rewrite, bpf_redirect) and nothing of the TEP's work, so the TEP's XDP
 * figure can be read against what the same veths carry at best.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int
xdp_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup fib = {};
	__u8 *eth = data, *ip = eth + 14;
	__u32 check;

	if ((void *)(ip + 20) > end || *(__u16 *)(eth + 12) != bpf_htons(ETH_P_IP) ||
	    ip[0] != 0x45 || ip[8] <= 1)
		return XDP_PASS;
	fib.family = 2; /* AF_INET */
	fib.tos = ip[1];
	fib.l4_protocol = ip[9];
	fib.tot_len = (__u16)(ip[2] << 8 | ip[3]);
	fib.ipv4_src = *(__u32 *)(ip + 12);
	fib.ipv4_dst = *(__u32 *)(ip + 16);
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	check = ((__u32)ip[10] << 8 | ip[11]) + 0x0100;
	check += check >= 0xffff;
	ip[10] = (__u8)(check >> 8);
	ip[11] = (__u8)check;
	ip[8]--;
	__builtin_memcpy(eth, fib.dmac, 6);
	__builtin_memcpy(eth + 6, fib.smac, 6);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
