/*
 * libFuzzer harness for the DNS-SD/mDNS message reader: dots_dns_parse()
 * on arbitrary bytes (compression loops, forward pointers, bad lengths),
 * then DNS-SD collection over what it kept for every service name, and the
 * RFC 8415 name decoder on the raw input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dhcp6/d6.h"
#include "dots/dots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t
rnd(void *ctx)
{
	uint32_t *s = ctx;

	*s = *s * 1103515245u + 12345u;
	return *s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dots_rr rr[64];
	struct dots_dns_stats st = {0};
	struct dots_dns_msg h;
	char name[DOTS_NAME_MAX];
	size_t used, inc;
	uint32_t seed = 1;

	if (d6_name_decode_n(data, size, name, sizeof(name), &used) == 0 &&
	    (used > size || !dots_name_valid(name)))
		__builtin_trap();
	if (dots_dns_parse(data, size, &h, rr, 64, &st) < 0)
		return 0;
	if (h.nrr > 64)
		__builtin_trap();
	for (unsigned t = 0; t < DOTS_NTRANSPORT; t++) {
		for (unsigned sp = 0; dots_dnssd_service((enum dots_transport)t, sp); sp++) {
			struct dots_list l;

			snprintf(name, sizeof(name), "%s.local",
			         dots_dnssd_service((enum dots_transport)t, sp));
			dots_list_init(&l);
			dots_dnssd_collect(rr, h.nrr, name, (enum dots_transport)t, DOTS_M_MDNS,
			                   "f", AF_UNSPEC, rnd, &seed, &l, &inc);
			dots_list_finish(&l);
			dots_list_free(&l);
		}
	}
	return 0;
}
