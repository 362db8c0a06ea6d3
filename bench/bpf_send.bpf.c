/*
 * The program behind bpf-send (bench/bpf_send.c), a sender inside the
 * kernel: run by BPF_PROG_TEST_RUN on one crafted frame (a socket buffer
 * the kernel builds from it once a call), it hands `copies` clones of it
 * to an interface with bpf_clone_redirect, once a repetition, so the
 * frames really leave through the interface's transmit path with no
 * system call, socket or allocation of a buffer per frame. The original
 * is dropped (TC_ACT_SHOT): only the clones are sent.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#define MAX_COPIES 64

/* Set by bpf-send before the load (.rodata, constants to the verifier). */
const volatile __u32 out_ifindex;
const volatile __u32 copies = 16;

/*
 * Clones the interface took, and those refused. Plain increments, not
 * atomics: a test run executes on the calling CPU only, and each bpf-send
 * process loads its own copy of the program.
 */
__u64 sent, refused;

SEC("tc")
int
bpf_send(struct __sk_buff *skb)
{
	for (__u32 i = 0; i < MAX_COPIES && i < copies; i++) {
		if (bpf_clone_redirect(skb, out_ifindex, 0) == 0)
			sent++;
		else
			refused++;
	}
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
