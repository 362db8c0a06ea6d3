/*
 * The loader of dstm-client's kernel fast path (tc_fast.bpf.c, whose
 * skeleton is compiled in): it attaches tc_fast_out to the egress of the
 * DTI and tc_fast_in to the ingress of the interface that holds the
 * client's IPv6 address (clsact hooks), keeps the one-entry binding map
 * in step with the lease (tunnel.c calls tc_fast_set), sums the per-CPU
 * counters, and takes the programs off again at exit.
 *
 * A run that was killed leaves its filter on the IPv6 interface, acting
 * on a binding nobody updates any more: the filters live at a fixed
 * handle and priority, so the next run replaces them (or removes them,
 * tc_fast_clear_stale, when it runs without the fast path).
 *
 * A veth never computes a checksum: a TCP packet whose checksum the stack
 * left to the device (CHECKSUM_PARTIAL, what TSO always makes) reaches
 * the far namespace still partial, which that kernel's own TCP accepts
 * but a TEP reading 4in6 from a raw socket or in XDP forwards as is, and
 * the IPv4 host drops it. So on a veth the fast path turns the device's
 * transmit checksumming off (tc_fast_veth_csum): the kernel then
 * segments our GSO packets and computes their checksums itself, at the
 * device, still without a system call per segment. At exit it is turned
 * on again (tc_fast_veth_csum_restore) when this run turned it off.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "client/shell.h"
#include "client/tc_fast.skel.h"

/* Ours among the filters others may hang on the same hooks. */
#define TCF_HANDLE   0xd57
#define TCF_PRIORITY 1

struct tc_fast {
	struct tc_fast_skel *skel;
	int fd_binding, fd_ctr;
	unsigned ncpus;
	struct tc_fast_counters *percpu; /* ncpus slots, for reading */
	struct bpf_tc_hook hook_out, hook_in;
	bool made_out, made_in; /* the clsact qdisc is ours: remove it at exit */
	bool att_out, att_in;
};

static int
silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* The verifier's log is long; a failed load is reported by its errno. */
	return 0;
}

static int
attach(struct bpf_tc_hook *hook, bool *made, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TCF_HANDLE, .priority = TCF_PRIORITY,
	            .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int rc = bpf_tc_hook_create(hook);

	/* EEXIST: someone's clsact (perhaps a killed run's): share it. */
	if (rc < 0 && rc != -EEXIST)
		return rc;
	*made = rc == 0;
	return bpf_tc_attach(hook, &o);
}

static void
detach(struct bpf_tc_hook *hook, bool made)
{
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TCF_HANDLE, .priority = TCF_PRIORITY);

	(void)bpf_tc_detach(hook, &o);
	if (made) {
		/* Destroying a clsact hook takes both directions with it. */
		hook->attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		(void)bpf_tc_hook_destroy(hook);
	}
}

int
tc_fast_open(struct tc_fast **out, unsigned dti_ifindex, unsigned out_ifindex)
{
	struct tc_fast *f = calloc(1, sizeof(*f));
	int rc, n;

	if (!f)
		return -ENOMEM;
	libbpf_set_print(silent);
	n = libbpf_num_possible_cpus();
	if (n <= 0) {
		rc = n < 0 ? n : -EINVAL;
		goto fail;
	}
	f->ncpus = (unsigned)n;
	f->percpu = calloc(f->ncpus, sizeof(*f->percpu));
	f->skel = tc_fast_skel__open();
	if (!f->percpu || !f->skel) {
		rc = f->percpu ? -errno : -ENOMEM;
		goto fail;
	}
	if ((rc = tc_fast_skel__load(f->skel)) < 0)
		goto fail;
	f->fd_binding = bpf_map__fd(f->skel->maps.binding);
	f->fd_ctr = bpf_map__fd(f->skel->maps.counters);

	f->hook_out.sz = sizeof(f->hook_out);
	f->hook_out.ifindex = (int)dti_ifindex;
	f->hook_out.attach_point = BPF_TC_EGRESS;
	f->hook_in.sz = sizeof(f->hook_in);
	f->hook_in.ifindex = (int)out_ifindex;
	f->hook_in.attach_point = BPF_TC_INGRESS;
	/* The binding is inactive until tc_fast_set: attaching changes nothing yet. */
	rc = attach(&f->hook_out, &f->made_out, bpf_program__fd(f->skel->progs.tc_fast_out));
	if (rc < 0)
		goto fail;
	f->att_out = true;
	rc = attach(&f->hook_in, &f->made_in, bpf_program__fd(f->skel->progs.tc_fast_in));
	if (rc < 0)
		goto fail;
	f->att_in = true;
	*out = f;
	return 0;
fail:
	tc_fast_close(f);
	return rc;
}

void
tc_fast_close(struct tc_fast *f)
{
	if (!f)
		return;
	if (f->att_in)
		detach(&f->hook_in, f->made_in);
	if (f->att_out)
		detach(&f->hook_out, f->made_out);
	tc_fast_skel__destroy(f->skel);
	free(f->percpu);
	free(f);
}

void
tc_fast_clear_stale(unsigned out_ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)out_ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TCF_HANDLE, .priority = TCF_PRIORITY);

	libbpf_set_print(silent);
	if (bpf_tc_detach(&hook, &o) == 0)
		log_info("removed the fast path a previous run left on ifindex %u", out_ifindex);
}

int
tc_fast_set(struct tc_fast *f, const struct tc_fast_binding *b)
{
	uint32_t k = 0;

	return bpf_map_update_elem(f->fd_binding, &k, b, BPF_ANY) < 0 ? -errno : 0;
}

void
tc_fast_read(struct tc_fast *f, struct tc_fast_counters *sum)
{
	uint32_t k = 0;

	memset(sum, 0, sizeof(*sum));
	if (!f || bpf_map_lookup_elem(f->fd_ctr, &k, f->percpu) < 0)
		return;
	for (unsigned i = 0; i < f->ncpus; i++) {
#define TCF_SUM(n) sum->n += f->percpu[i].n;
		TC_FAST_COUNTERS(TCF_SUM)
#undef TCF_SUM
	}
}

/* One SIOCETHTOOL request (`cmd` is its struct, its first field the command); -errno. */
static int
ethtool(int fd, const char *ifname, void *cmd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = cmd;
	return ioctl(fd, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
}

int
tc_fast_veth_csum(const char *ifname)
{
	struct ethtool_drvinfo di = {.cmd = ETHTOOL_GDRVINFO};
	struct ethtool_value ev = {.cmd = ETHTOOL_GTXCSUM};
	int fd, rc;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ethtool(fd, ifname, &di) < 0 || strcmp(di.driver, "veth") != 0)
		rc = 0; /* a real device finalises checksums itself */
	else if ((rc = ethtool(fd, ifname, &ev)) == 0 && ev.data) {
		ev.cmd = ETHTOOL_STXCSUM;
		ev.data = 0;
		if ((rc = ethtool(fd, ifname, &ev)) == 0)
			rc = 1;
	}
	close(fd);
	return rc;
}

int
tc_fast_veth_csum_restore(const char *ifname)
{
	struct ethtool_value ev = {.cmd = ETHTOOL_STXCSUM, .data = 1};
	int fd, rc;

	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = ethtool(fd, ifname, &ev);
	close(fd);
	return rc;
}
