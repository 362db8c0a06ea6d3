/*
 * bpf-send: the lab benchmarks' fast sender (bench/xdp_lab_bench.py), so
 * that the sender is not what limits a forwarding measurement: pkt-send's
 * AF_PACKET socket offered 0.8-1.4 Mpps on this machine where this offers
 * 1.9-3.1 (into a veth whose peer drops in XDP). It loads
 * bench/bpf_send.bpf.c, a tc program that clones the frame it is given
 * COPIES times to IFNAME's transmit path (bpf_clone_redirect), and runs it
 * with BPF_PROG_TEST_RUN on one prebuilt Ethernet frame, repeated, for
 * SECONDS: the frames really leave through IFNAME (a veth hands them to its
 * peer like any other), with no system call or copy per frame (a clone
 * shares the frame's data).
 * (XDP's live-frames mode of BPF_PROG_TEST_RUN, xdp-trafficgen's way,
 * would send XDP frames instead; this machine's kernel refuses it with
 * EPERM, the tc program's test run it allows.) With -p N the frames of
 * consecutive calls carry N UDP source ports in turn (one per call of
 * about a millisecond), the checksum kept valid. Prints the number of
 * frames IFNAME took and the number it refused (a full queue: on a veth,
 * its peer's NAPI ring); what arrived is for the receivers' counters to say.
 * Run it in IFNAME's network namespace (the redirect's ifindex is looked up
 * there); only ever used inside the lab's namespaces.
 *
 * Usage: bpf-send IFNAME HEXFRAME SECONDS [-p N] [-c COPIES]
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/clock.h"
#include "common/wire.h"
#include "bsend.skel.h"

#define MAXF       2048
#define MAX_COPIES 64 /* as in bpf_send.bpf.c */
#define MAX_FLOWS  1024
#define BASE_PORT  10000

/*
 * The offset of the UDP header in the frame if it is UDP over IPv4, over
 * IPv6, or over IPv4 in IPv6 (the lab's decapsulation frames); else 0.
 */
static size_t
udp_offset(const uint8_t *f, size_t n)
{
	struct cur c = cur_make(f, n);
	uint16_t type;
	uint8_t proto, vihl;
	size_t ihl;

	cur_bytes(&c, 12);
	type = cur_u16(&c);
	if (type == 0x86dd) {
		cur_bytes(&c, 6);
		proto = cur_u8(&c);
		cur_bytes(&c, 33);
		if (proto == 17)
			goto udp;
		if (proto != 4)
			return 0;
		type = 0x0800;
	}
	if (type != 0x0800)
		return 0;
	vihl = cur_u8(&c);
	ihl = (size_t)(vihl & 0xf) * 4;
	if (vihl >> 4 != 4 || ihl < 20)
		return 0;
	cur_bytes(&c, 8);
	proto = cur_u8(&c);
	cur_bytes(&c, ihl - 10);
	if (proto != 17)
		return 0;
udp:
	if (c.err || c.left < 8)
		return 0;
	return (size_t)(c.p - f);
}

/* The UDP source port set to `port`; a checksum kept valid (RFC 1624 eqn. 3). */
static void
set_sport(uint8_t *udp, uint16_t port)
{
	uint16_t old = (uint16_t)(udp[0] << 8 | udp[1]), check = (uint16_t)(udp[6] << 8 | udp[7]);
	uint32_t sum;

	udp[0] = (uint8_t)(port >> 8);
	udp[1] = (uint8_t)port;
	if (check == 0)
		return; /* UDP over IPv4 without a checksum */
	sum = (uint16_t)~check + (uint32_t)(uint16_t)~old + port;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	check = (uint16_t)~sum ? (uint16_t)~sum : 0xffff; /* RFC 768: 0 means none */
	udp[6] = (uint8_t)(check >> 8);
	udp[7] = (uint8_t)check;
}

static int
parse_hex(const char *s, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(s);

	if (len % 2 || len / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < len / 2; i++) {
		char b[3] = {s[2 * i], s[2 * i + 1], 0}, *e;

		out[i] = (uint8_t)strtoul(b, &e, 16);
		if (*e)
			return -EINVAL;
	}
	*n = len / 2;
	return 0;
}

int
main(int argc, char **argv)
{
	static uint8_t frames[MAX_FLOWS][MAXF];
	struct bsend_skel *skel;
	unsigned long flows = 1, copies = 16;
	unsigned ifindex, k = 0;
	double secs, t, end, call;
	size_t n, udp;
	__u32 repeat = 256;
	int o, err, prog, rc = 1;

	while ((o = getopt(argc, argv, "p:c:")) != -1) {
		if (o == 'p')
			flows = strtoul(optarg, NULL, 10);
		else if (o == 'c')
			copies = strtoul(optarg, NULL, 10);
		else
			goto usage;
	}
	if (argc - optind != 3)
		goto usage;
	secs = strtod(argv[optind + 2], NULL);
	if (parse_hex(argv[optind + 1], frames[0], MAXF, &n) < 0 || n < 14 || flows == 0 ||
	    flows > MAX_FLOWS || copies == 0 || copies > MAX_COPIES) {
		fprintf(stderr,
		        "bpf-send: a frame of 14 to %d bytes in hex, 0 < N <= %d, "
		        "0 < COPIES <= %d\n",
		        MAXF, MAX_FLOWS, MAX_COPIES);
		return 2;
	}
	if ((ifindex = if_nametoindex(argv[optind])) == 0) {
		fprintf(stderr, "bpf-send: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	udp = udp_offset(frames[0], n);
	if (flows > 1 && udp == 0) {
		fprintf(stderr, "bpf-send: not a UDP frame, -p ignored\n");
		flows = 1;
	}
	for (unsigned long i = 0; i < flows && udp; i++) {
		memcpy(frames[i], frames[0], n);
		set_sport(frames[i] + udp, (uint16_t)(BASE_PORT + i));
	}
	/* Calls of about 1 ms with several flows, so they take turns often. */
	call = flows > 1 ? 0.001 : 0.01;

	if ((skel = bsend_skel__open()) == NULL) {
		fprintf(stderr, "bpf-send: open: %s\n", strerror(errno));
		return 1;
	}
	skel->rodata->out_ifindex = ifindex;
	skel->rodata->copies = (__u32)copies;
	if ((err = bsend_skel__load(skel)) < 0) {
		fprintf(stderr, "bpf-send: load: %s\n", strerror(-err));
		goto out;
	}
	prog = bpf_program__fd(skel->progs.bpf_send);

	t = clock_mono_sec();
	end = t + secs;
	while (t < end) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frames[k++ % flows],
		            .data_size_in = (__u32)n, .repeat = repeat);
		double t1, r;

		if (bpf_prog_test_run_opts(prog, &run) < 0 && errno != EINTR) {
			fprintf(stderr, "bpf-send: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
			goto out;
		}
		/* Calls of about `call` seconds: the last one overruns SECONDS little. */
		t1 = clock_mono_sec();
		if (t1 > t) {
			r = repeat * call / (t1 - t);
			repeat = r < 16 ? 16 : r > 1 << 22 ? 1 << 22 : (__u32)r;
		}
		t = t1;
	}
	printf("%llu %llu\n", (unsigned long long)skel->bss->sent,
	       (unsigned long long)skel->bss->refused);
	rc = 0;
out:
	bsend_skel__destroy(skel);
	return rc;
usage:
	fprintf(stderr, "usage: bpf-send IFNAME HEXFRAME SECONDS [-p N] [-c COPIES]\n");
	return 2;
}
