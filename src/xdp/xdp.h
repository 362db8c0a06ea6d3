/*
 * The loader of the TEP's XDP programs (xdp_tep.bpf.c, compiled in as a
 * libbpf skeleton): load them, attach them in native mode, keep their
 * binding maps in step with the caller's table (updates queued and
 * written in batches, bpf_map_update_batch) and read their counters.
 * dstm-tep uses it for its "xdp" and "tc" data planes; dp-bench runs the
 * same programs with BPF_PROG_TEST_RUN.
 */
#ifndef DSTM_XDP_H
#define DSTM_XDP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "xdp/xdp_tep.h"

struct xtep;

struct xtep_config {
	struct in6_addr tep6;
	unsigned npools;
	uint32_t pool_addr[XTEP_MAX_POOLS]; /* host byte order */
	unsigned pool_plen[XTEP_MAX_POOLS];
	uint16_t mtu;      /* IPv6 path MTU toward clients */
	uint8_t hop_limit; /* of the pushed IPv6 header */
	bool learn;
	uint32_t max_ranges; /* entries of the port-range array (56 bytes each) */
};

/*
 * Load the programs and create their maps (needs CAP_BPF/root): an array
 * of 64 bytes for every address of the pools (at most XTEP_DIRECT_MAX in
 * all: -E2BIG beyond) and one of max_ranges range entries, both allocated
 * whole by the kernel now. 0 or -errno.
 */
int xtep_open(const struct xtep_config *c, struct xtep **out);
/* Detach whatever was attached and free everything. */
void xtep_close(struct xtep *x);

/* Attach in native (driver) mode: xdp_tep_v6 on ifindex6, xdp_tep_v4 on ifindex4. */
int xtep_attach(struct xtep *x, int ifindex6, int ifindex4);
/* Or the tc programs, at tc ingress of the same interfaces (tcx links, Linux 6.6). */
int xtep_attach_tc(struct xtep *x, int ifindex6, int ifindex4);

/* The program file descriptors (dp-bench's and the unit tests' BPF_PROG_TEST_RUN). */
int xtep_prog_v6(const struct xtep *x);
int xtep_prog_v4(const struct xtep *x);
int xtep_prog_tc_v6(const struct xtep *x);
int xtep_prog_tc_v4(const struct xtep *x);

/*
 * Queue the binding v4[lo..hi] -> v6 (host byte order; lo 0 and hi 65535
 * is a whole address; ranges of one address share one size and are
 * aligned on it), or its new path MTU (0: the configured one). Queued
 * bindings reach the maps at xtep_flush(), or when the queue fills.
 * -EINVAL for an address outside the pools. A shared address that finds
 * no room left in the range array is handed to the userspace core, as
 * with xtep_set_core(), until it is removed or bound whole.
 */
int xtep_set(struct xtep *x, uint32_t v4, uint16_t lo, uint16_t hi, const struct in6_addr *v6,
             uint16_t mtu);
/* v4's packets go to the userspace core (an address shared by PSID sets). */
int xtep_set_core(struct xtep *x, uint32_t v4);
/* Write the queued bindings, in batches. 0 or -errno. */
int xtep_flush(struct xtep *x);
/* Remove one range of a shared address (the one starting at lo). */
int xtep_del_range(struct xtep *x, uint32_t v4, uint16_t lo);
/* Remove v4 whole: its binding, or every range of it. */
int xtep_del_addr(struct xtep *x, uint32_t v4);

/* The per-binding counters of v4[lo..hi] in the maps (zero when absent). */
void xtep_binding_ctr(const struct xtep *x, uint32_t v4, uint16_t lo, uint16_t hi,
                      struct xtep_bctr *out);
/* The programs' counters, summed over the CPUs. 0 or -errno. */
int xtep_counters(const struct xtep *x, uint64_t out[XC__COUNT]);
/* "drop_spoofed_v6_src" for XC_drop_spoofed_v6_src. */
const char *xtep_counter_name(enum xtep_counter c);

#endif
