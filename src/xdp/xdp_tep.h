/*
 * What the TEP's XDP programs (xdp_tep.bpf.c) and their loader (xdp.c)
 * share: the layout of the BPF maps, the configuration the programs read,
 * and the counters they keep. Included by BPF C and by ordinary C, so it
 * uses only the kernel's fixed-width types.
 *
 * The binding table in BPF maps (kept in step with the userspace table by
 * dstm-tep, which stays the authority), both arrays indexed directly, as
 * the userspace table indexes its pools (dataplane/bt_internal.h): one
 * cold lookup of a cache line, where a hash map of a million entries cost
 * several (about 450 ns a packet in dp-bench):
 *
 *   addrs:  one struct xtep_addr for every address of the pools, pool i's
 *           address a at pools[i].index + (a - pools[i].first); sized by
 *           the loader to the pools' total (at most XTEP_DIRECT_MAX, 64
 *           bytes each: 64 MiB for a million addresses). present == 0: no
 *           binding. size == 0: a whole-address binding, v6 and counters
 *           here; size != 0: a shared address whose ranges are aligned on
 *           size from base: the range of port p is k = (p - base) / size,
 *           its entry ranges[rbase + k].
 *   ranges: blocks of (65535 - base) / size + 1 entries, one block for
 *           every shared address (as binding.c's groups), handed out by
 *           the loader; present == 0: no range there.
 *
 * The TEP binds only addresses of its pools, so nothing needs a hash map.
 * Learned bindings (learn mode) are not in the maps: their packets go to
 * the userspace path, which keeps their idle times and replaces them.
 * Neither are the port sets of an address shared by PSID (RFC 7597 §5.1,
 * binding.h): its addrs entry has size XTEP_SIZE_CORE, and its packets go
 * to the userspace core, which checks them against the set. The loader
 * does the same with a shared address when the ranges array is full.
 */
#ifndef DSTM_XDP_TEP_H
#define DSTM_XDP_TEP_H

#include <linux/types.h>

#define XTEP_MAX_POOLS  64
#define XTEP_DIRECT_MAX (1u << 22) /* pool addresses: as the userspace table's BT_DIRECT_MAX */

struct xtep_pool {
	__u32 first; /* the pool's first address, host byte order */
	__u32 size;  /* its number of addresses */
	__u32 index; /* the addrs index of its first address */
};

/* Read by both programs; written by the loader before attaching. */
struct xtep_cfg {
	__u8 tep6[16];
	__u32 npools;
	__u16 mtu;      /* IPv6 path MTU toward a client whose own is unknown */
	__u8 hop_limit; /* of the IPv6 headers pushed */
	__u8 learn;     /* learn mode: a miss goes to the userspace path */
	struct xtep_pool pools[XTEP_MAX_POOLS];
};

/* Per-binding counters, as struct bt_binding has them. */
struct xtep_bctr {
	__u64 pkts_in, bytes_in, pkts_out, bytes_out;
};

#define XTEP_SIZE_CORE 0xffffffffu /* the address is the userspace core's (PSID sets) */

/* 64 bytes: one cache line a lookup. */
struct xtep_addr {
	__u8 v6[16];
	__u32 size; /* 0: whole address; else the size of its port ranges */
	__u16 base;
	__u16 mtu;   /* the client's IPv6 path MTU; 0: cfg.mtu */
	__u32 rbase; /* a shared address: the ranges index of its block */
	__u8 present;
	__u8 pad_[3];
	struct xtep_bctr ctr;
};

struct xtep_range {
	__u8 v6[16];
	__u16 lo, hi;
	__u16 mtu;
	__u8 present;
	__u8 pad_;
	struct xtep_bctr ctr;
};

/*
 * The counters the programs keep (a per-CPU array of one struct). The
 * first ones carry the names of the forwarding core's counters (dp.h) and
 * count the same events for the packets XDP finishes; the userspace path
 * counts those it passes on, so the sums are the TEP's counters.
 */
#define XTEP_DP_COUNTERS(X)    \
	X(rx_v6_pkts)          \
	X(rx_v6_bytes)         \
	X(rx_v4_pkts)          \
	X(rx_v4_bytes)         \
	X(decap_pkts)          \
	X(decap_bytes)         \
	X(encap_pkts)          \
	X(encap_bytes)         \
	X(drop_no_binding_src) \
	X(drop_spoofed_v6_src) \
	X(drop_port_outside_range)
/*
 * XDP's own: the packets it forwarded (also in decap_pkts, encap_pkts) and
 * those it handed to the kernel, so to the userspace path: not a plain
 * case (xdp_pass_*), or no route or neighbour known yet (xdp_no_route).
 */
#define XTEP_OWN_COUNTERS(X) \
	X(xdp_decap_pkts)    \
	X(xdp_encap_pkts)    \
	X(xdp_pass_v6)       \
	X(xdp_pass_v4)       \
	X(xdp_no_route)

enum xtep_counter {
#define XTEP_X_ENUM(n) XC_##n,
	XTEP_DP_COUNTERS(XTEP_X_ENUM) XTEP_OWN_COUNTERS(XTEP_X_ENUM)
#undef XTEP_X_ENUM
	    XC__COUNT
};

struct xtep_counters {
	__u64 c[XC__COUNT];
};

#endif
