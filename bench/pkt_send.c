/*
 * pkt-send: a fast sender for the lab benchmarks (bench/xdp_lab_bench.py),
 * so that the sender is not what limits a forwarding measurement: one
 * prebuilt Ethernet frame, given in hex, written again and again to an
 * interface through an AF_PACKET socket with sendmmsg() batches of 64,
 * bypassing the qdisc, for a number of seconds. With -p it walks the UDP
 * source port of an IPv4 (or 4in6) frame through N values, so the
 * receiver's queues see several flows (the checksum stays valid: UDP over
 * IPv4 carries none here). Prints the number of frames sent. Only ever
 * used inside the lab's namespaces.
 *
 * Usage: pkt-send IFNAME HEXFRAME SECONDS [-p N]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define BATCH 64
#define MAXF  2048

/* Where the UDP source port of the frame lies, or 0. */
static size_t
sport_offset(const uint8_t *f, size_t n)
{
	size_t ip = 14;

	if (n < 14 + 20)
		return 0;
	if (f[12] == 0x86 && f[13] == 0xdd && n >= 14 + 40 + 20 && f[14 + 6] == 4)
		ip = 14 + 40;
	else if (!(f[12] == 0x08 && f[13] == 0x00))
		return 0;
	if (f[ip] != 0x45 || f[ip + 9] != 17 || n < ip + 28)
		return 0;
	return ip + 20;
}

int
main(int argc, char **argv)
{
	static uint8_t frames[BATCH][MAXF];
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_ll sa = {.sll_family = AF_PACKET};
	size_t n, off;
	unsigned flows = 1, k = 0;
	unsigned long long sent = 0;
	double secs, end;
	int fd, one = 1;

	if (argc == 6 && strcmp(argv[4], "-p") == 0)
		flows = (unsigned)strtoul(argv[5], NULL, 10);
	else if (argc != 4) {
		fprintf(stderr, "usage: pkt-send IFNAME HEXFRAME SECONDS [-p N]\n");
		return 2;
	}
	n = strlen(argv[2]) / 2;
	secs = strtod(argv[3], NULL);
	if (n < 14 || n > MAXF || flows == 0) {
		fprintf(stderr, "pkt-send: a frame of 14 to %d bytes, N > 0\n", MAXF);
		return 2;
	}
	for (size_t i = 0; i < n; i++)
		sscanf(argv[2] + 2 * i, "%2hhx", &frames[0][i]);
	off = sport_offset(frames[0], n);
	if ((fd = socket(AF_PACKET, SOCK_RAW, 0)) < 0) {
		perror("pkt-send: socket");
		return 1;
	}
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	sa.sll_ifindex = (int)if_nametoindex(argv[1]);
	sa.sll_halen = 6;
	memcpy(sa.sll_addr, frames[0], 6);
	if (sa.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("pkt-send: bind");
		return 1;
	}
	for (int i = 0; i < BATCH; i++) {
		memcpy(frames[i], frames[0], n);
		iov[i].iov_base = frames[i];
		iov[i].iov_len = n;
		memset(&msg[i], 0, sizeof(msg[i]));
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	end = clock_mono_sec() + secs;
	while (clock_mono_sec() < end) {
		int r;

		if (flows > 1 && off)
			for (int i = 0; i < BATCH; i++, k++) {
				frames[i][off] = (uint8_t)((10000 + k % flows) >> 8);
				frames[i][off + 1] = (uint8_t)(10000 + k % flows);
			}
		r = sendmmsg(fd, msg, BATCH, 0);
		if (r > 0)
			sent += (unsigned)r;
		else if (errno != ENOBUFS && errno != EAGAIN) {
			perror("pkt-send: sendmmsg");
			return 1;
		}
	}
	printf("%llu\n", sent);
	return 0;
}
