/*
 * Unit tests of the TUN offload helpers (src/dataplane/tun.c) that
 * dstm-client and dstm-tep call: what one read of an offload TUN yields
 * (a super-packet cut into segments with full checksums, a partial
 * checksum completed, an offload we cannot honour dropped and counted)
 * and what the coalescer writes (one GSO_TCPV4 packet for a train, a GSO
 * write for what GRO merged). A pipe stands in for the device: one
 * write() is one read(), as on a TUN descriptor. One test opens a real
 * device, in a network namespace of its own: a restart waits while an
 * exiting predecessor still holds the name.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dataplane/tun.h"

#define SRC 0xc6336402u /* 198.51.100.2 */
#define DST 0xc000020au /* 192.0.2.10 */

static uint16_t
tcp_check(const uint8_t *p)
{
	unsigned ihl = (p[0] & 15) * 4, tot = pkt_ld16(p + 2);

	return pkt_csum_fold(
	    pkt_csum_add(pkt_pseudo4(pkt_ld32(p + 12), pkt_ld32(p + 16), PKT_PROTO_TCP, tot - ihl),
	                 p + ihl, tot - ihl));
}

/* A TCP/IPv4 packet; `partial`: the checksum field holds the pseudo-header sum. */
static size_t
mk_tcp(uint8_t *b, uint32_t seq, size_t payload, bool partial)
{
	size_t tot = 40 + payload;

	memset(b, 0, 40);
	b[0] = 0x45;
	pkt_st16(b + 2, (uint16_t)tot);
	b[6] = 0x40;
	b[8] = 64;
	b[9] = PKT_PROTO_TCP;
	pkt_st32(b + 12, SRC);
	pkt_st32(b + 16, DST);
	pkt_st16(b + 20, 80);
	pkt_st16(b + 22, 40000);
	pkt_st32(b + 24, seq);
	b[32] = 5 << 4;
	b[33] = 0x10;
	pkt_st16(b + 34, 1000);
	for (size_t i = 0; i < payload; i++)
		b[40 + i] = (uint8_t)(seq + i);
	pkt_st16(b + 10, pkt_csum_fold(pkt_csum_add(0, b, 20)));
	if (partial)
		pkt_st16(b + 36, (uint16_t)~pkt_csum_fold(
		                     pkt_pseudo4(SRC, DST, PKT_PROTO_TCP, (uint32_t)(tot - 20))));
	else
		pkt_st16(b + 36, tcp_check(b));
	return tot;
}

static void
put(int fd, const struct pkt_vnet *v, const uint8_t *p, size_t n)
{
	uint8_t b[PKT_VNET_HLEN + 8192];

	pkt_vnet_write(b, v);
	memcpy(b + PKT_VNET_HLEN, p, n);
	assert_int_equal(write(fd, b, PKT_VNET_HLEN + n), (ssize_t)(PKT_VNET_HLEN + n));
}

static void
test_rx(void **state)
{
	struct tun_rx *rx = calloc(1, sizeof(*rx));
	struct pkt_vnet v = {.flags = PKT_VNET_F_NEEDS_CSUM,
	                     .gso_type = PKT_VNET_GSO_TCPV4,
	                     .hdr_len = 40,
	                     .gso_size = 1000,
	                     .csum_start = 20,
	                     .csum_offset = 16};
	uint8_t p[4096];
	int fds[2];
	size_t n;

	assert_non_null(rx);
	assert_int_equal(pipe(fds), 0);
	/* A super-packet of 2,500 bytes at gso_size 1,000: three segments. */
	n = mk_tcp(p, 7000, 2500, true);
	put(fds[1], &v, p, n);
	assert_int_equal(tun_rx_read(rx, fds[0], true), 3);
	assert_int_equal(rx->gso_packets, 1);
	for (unsigned i = 0; i < 3; i++) {
		uint8_t want[2048];
		size_t wn = mk_tcp(want, 7000 + 1000 * i, i < 2 ? 1000 : 500, false);

		pkt_st16(want + 4, (uint16_t)i); /* ids count up from the first's */
		pkt_st16(want + 10, 0);
		pkt_st16(want + 10, pkt_csum_fold(pkt_csum_add(0, want, 20)));
		assert_int_equal(rx->len[i], wn);
		assert_memory_equal(rx->pkt[i], want, wn);
		assert_int_equal(tcp_check(rx->pkt[i]), 0);
	}
	/* No GSO, a partial checksum: completed. */
	v.gso_type = PKT_VNET_GSO_NONE;
	n = mk_tcp(p, 1, 100, true);
	put(fds[1], &v, p, n);
	assert_int_equal(tun_rx_read(rx, fds[0], true), 1);
	assert_int_equal(tcp_check(rx->pkt[0]), 0);
	/* UDP segmentation was never asked for: dropped, counted. */
	v.gso_type = PKT_VNET_GSO_UDP;
	put(fds[1], &v, p, n);
	assert_int_equal(tun_rx_read(rx, fds[0], true), 0);
	assert_int_equal(rx->bad_offload, 1);
	close(fds[0]);
	close(fds[1]);
	free(rx);
}

static void
test_gro(void **state)
{
	struct tun_gro *g = malloc(sizeof(*g));
	uint8_t p[8192], out[PKT_VNET_HLEN + 65536];
	struct pkt_vnet v;
	int fds[2];
	size_t n;
	ssize_t r;

	assert_non_null(g);
	assert_int_equal(pipe(fds), 0);
	tun_gro_init(g);
	/* Three in-order segments: one write, GSO_TCPV4, partial checksum. */
	for (unsigned i = 0; i < 3; i++) {
		n = mk_tcp(p, 100 + 1000 * i, 1000, false);
		tun_gro_add(g, fds[1], p, n);
	}
	tun_gro_flush(g, fds[1]);
	r = read(fds[0], out, sizeof(out));
	assert_int_equal(r, PKT_VNET_HLEN + 40 + 3000);
	assert_true(pkt_vnet_parse(out, (size_t)r, &v));
	assert_int_equal(v.gso_type, PKT_VNET_GSO_TCPV4);
	assert_int_equal(v.gso_size, 1000);
	assert_true(pkt_csum_complete(out + PKT_VNET_HLEN, (size_t)r - PKT_VNET_HLEN, &v));
	assert_int_equal(tcp_check(out + PKT_VNET_HLEN), 0);
	assert_int_equal(g->writes, 1);
	assert_int_equal(g->packets, 3);
	assert_int_equal(g->coalesced, 1);

	/* What GRO merged before the socket (longer than the MTU): its own GSO write. */
	g->mtu = 1500;
	n = mk_tcp(p, 1, 5000, true);
	tun_gro_add(g, fds[1], p, n);
	r = read(fds[0], out, sizeof(out));
	assert_int_equal(r, PKT_VNET_HLEN + n);
	assert_true(pkt_vnet_parse(out, (size_t)r, &v));
	assert_int_equal(v.gso_type, PKT_VNET_GSO_TCPV4);
	assert_int_equal(v.gso_size, 1500 - 40);
	assert_true(pkt_csum_complete(out + PKT_VNET_HLEN, n, &v));
	assert_int_equal(tcp_check(out + PKT_VNET_HLEN), 0);
	close(fds[0]);
	close(fds[1]);
	free(g);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* In a child of its own (the namespace must not outlive the test):
 * 0 when the second open waited for the holder and got the device. */
static int
busy_child(void)
{
	char ifname[IFNAMSIZ];
	double t0;
	pid_t holder;
	int fd, st;

	if (unshare(CLONE_NEWNET) < 0)
		return errno == EPERM ? 77 : 1;
	fd = tun_open("dstmbusy", ifname, false);
	if (fd < 0)
		return 2;
	holder = fork();
	if (holder == 0) {
		usleep(300 * 1000); /* the exiting predecessor's last thread */
		_exit(0);
	}
	close(fd);
	t0 = now_ms();
	fd = tun_open("dstmbusy", ifname, false);
	if (fd < 0 || now_ms() - t0 < 200)
		return 3;
	close(fd);
	waitpid(holder, &st, 0);
	return 0;
}

static void
test_busy_name_waited_for(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(busy_child());
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rx),
	    cmocka_unit_test(test_gro),
	    cmocka_unit_test(test_busy_name_waited_for),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
