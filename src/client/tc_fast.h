/*
 * The client's kernel fast path (tc_fast.bpf.c), shared by the BPF
 * programs and their loader (tc_fast.c): the one binding the programs
 * act on and the counters they keep. Both sides include this file, so it
 * holds only fixed-size kernel types.
 *
 * The binding is one entry of an array map, written whole by the loader
 * when a lease is installed, renewed, its path MTU changes or it is
 * removed; `active` 0 sends every packet the userspace way. Addresses are
 * in network order (compared with packet bytes), ports and the MTU in
 * host order.
 */
#ifndef DSTM_CLIENT_TC_FAST_H
#define DSTM_CLIENT_TC_FAST_H

#include <linux/types.h>

struct tc_fast_binding {
	__u32 active;           /* a lease is installed: encapsulate */
	__u32 rx;               /* decapsulate too (off while early flows need translating) */
	__u32 v4;               /* the leased address */
	__u16 port_lo, port_hi; /* 0, 0: the whole address */
	__u8 v6[16];            /* the client's IPv6 address: outer source */
	__u8 tep6[16];          /* the TEP's: outer destination */
	__u32 out_ifindex;      /* the interface of v6: where 4in6 leaves and arrives */
	__u32 dti_ifindex;      /* the DTI: where decapsulated packets arrive */
	__u32 mtu;              /* the IPv6 path MTU toward the TEP */
	__u32 hop_limit;
};

/*
 * Per CPU. "pass" is a packet left to the userspace path (not ours, or
 * not a plain case); "errors" one the kernel refused to resize (left to
 * the userspace path, unchanged) or, resized, to write headers into
 * (dropped: it can no longer go either way).
 */
#define TC_FAST_COUNTERS(X) \
	X(fast_tx_packets)  \
	X(fast_tx_bytes)    \
	X(fast_tx_gso)      \
	X(fast_tx_passed)   \
	X(fast_tx_errors)   \
	X(fast_rx_packets)  \
	X(fast_rx_bytes)    \
	X(fast_rx_passed)   \
	X(fast_rx_errors)

struct tc_fast_counters {
#define TCF_X(n) __u64 n;
	TC_FAST_COUNTERS(TCF_X)
#undef TCF_X
};

#endif
