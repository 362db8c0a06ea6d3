/*
 * The far end of bench/xdp_lab_bench.py's paths: it drops the benchmark's
 * own frames (UDP to port 9, over IPv4 or over IPv4 in IPv6) in XDP and
 * passes everything else (ARP, neighbour discovery, pings) to the kernel.
 * The interface still counts every frame it received, so the receiver is
 * measured at its interface, as a traffic generator's port would count
 * it, without the cost of a host stack that answers each frame with an
 * ICMP port unreachable; that cost is the receiving host's, not the path's.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int
xdp_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u8 *eth = data, *ip = eth + 14;

	if ((void *)(ip + 40) > end)
		return XDP_PASS;
	if (*(__u16 *)(eth + 12) == bpf_htons(ETH_P_IPV6)) {
		if (ip[6] != 4) /* next header: IPv4 */
			return XDP_PASS;
		ip += 40;
	} else if (*(__u16 *)(eth + 12) != bpf_htons(ETH_P_IP)) {
		return XDP_PASS;
	}
	if ((void *)(ip + 28) > end || ip[0] != 0x45 || ip[9] != 17 ||
	    *(__u16 *)(ip + 22) != bpf_htons(9))
		return XDP_PASS;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
