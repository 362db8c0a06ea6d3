/*
 * XDP_PASS and nothing else: for the far end of a veth that the TEP's XDP
 * programs redirect into (DESIGN §7: a veth accepts redirected frames only
 * when its peer runs an XDP program). scripts/lab attaches it there.
 */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

SEC("xdp")
int
xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
