/*
 * libFuzzer harness for the DOTS DHCP option parsers: the input is read
 * as a DHCPv6 Reply (options 141/142/57) and as a DHCPv4 message (147/148/
 * 213/15, both address formats), and every result goes through the client
 * rules that build servers. Whatever the bytes, a result must be sane.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dots/dots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct dots_dhcp_info *info)
{
	struct dots_list l;
	bool resolve;

	if (info->naddr > DOTS_MAX_ADDRS || strlen(info->ri) >= DOTS_NAME_MAX)
		__builtin_trap();
	if (info->have_ri && !dots_name_valid(info->ri))
		__builtin_trap();
	for (size_t i = 0; i < info->naddr; i++)
		if (dots_addr_discard(&info->addr[i]))
			__builtin_trap(); /* RFC 8973: never kept */
	dots_list_init(&l);
	dots_dhcp_servers(info, "fuzz0", AF_INET6, &l, &resolve);
	if (resolve && info->naddr)
		__builtin_trap(); /* a name is never resolved when addresses came */
	dots_list_finish(&l);
	dots_list_free(&l);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dots_dhcp_info info;
	struct d4_msg m;
	uint32_t xid;

	if (size >= 4) {
		xid = (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
		if (dots_d6_parse_reply(data, size, xid, &info) == 0)
			check(&info);
	}
	if (d4_parse(data, size, &m) == 0) {
		dots_d4_info(&m, DOTS_D4_RFC8973, &info);
		check(&info);
		dots_d4_info(&m, DOTS_D4_DRAFT, &info);
		check(&info);
	}
	return 0;
}
