/*
 * Unit tests of src/netlink against the real kernel: the test moves
 * itself into a private network namespace (unshare, needs root) and
 * builds a veth pair there, so nothing outside it is touched. Without
 * the privilege the tests are skipped, never faked.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/addr.h"
#include "netlink/nl.h"

static bool in_netns;

static int
sh(const char *cmd)
{
	int rc = system(cmd);

	return rc == 0 ? 0 : -1;
}

/* Wait (bounded) until DAD is over: the netns sets accept_dad=0 anyway. */
static int
setup(void **state)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		return 0;
	if (sh("ip link set lo up && "
	       "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 && "
	       "ip link add nlt0 type veth peer name nlt1 && "
	       "ip link set nlt0 up && ip link set nlt1 up && "
	       "ip -6 addr add fd00:d57:aa::1/64 dev nlt0 nodad && "
	       "ip -6 addr add fd00:d57:aa::2/64 dev nlt1 nodad") < 0)
		return -1;
	in_netns = true;
	return 0;
}

#define NEED_NETNS()            \
	do {                    \
		if (!in_netns)  \
			skip(); \
	} while (0)

static void
test_ifindex(void **state)
{
	NEED_NETNS();
	assert_true(nl_ifindex("lo") > 0);
	assert_int_equal(nl_ifindex("nlt0"), nl_ifindex("nlt0"));
	assert_int_equal(nl_ifindex("nosuchif0"), -ENODEV);
	assert_int_equal(nl_ifindex(""), -EINVAL);
	assert_int_equal(nl_ifindex("a-name-far-too-long-for-linux"), -EINVAL);
}

static void
test_link(void **state)
{
	struct nl *nl;
	unsigned mtu = 0;

	NEED_NETNS();
	nl = nl_open();
	assert_non_null(nl);
	assert_int_equal(nl_link_set(nl, "nlt0", true, 1400, 1000), 0);
	assert_int_equal(nl_link_mtu(nl, "nlt0", &mtu), 0);
	assert_int_equal(mtu, 1400);
	/* 0 leaves the MTU alone */
	assert_int_equal(nl_link_set(nl, "nlt0", true, 0, 0), 0);
	assert_int_equal(nl_link_mtu(nl, "nlt0", &mtu), 0);
	assert_int_equal(mtu, 1400);
	assert_int_equal(nl_link_set(nl, "nlt0", true, 1500, 0), 0);
	/* the kernel's errno comes back */
	assert_int_equal(nl_link_set(nl, "nlt0", true, 10, 0), -EINVAL);
	assert_int_equal(nl_link_set(nl, "nosuchif0", true, 0, 0), -ENODEV);
	assert_int_equal(sh("ip link show nlt0 | grep -q 'qlen 1000'"), 0);
	nl_close(nl);
}

static void
test_addr4(void **state)
{
	struct nl *nl;
	uint32_t a;

	NEED_NETNS();
	assert_true(addr_parse_v4("192.0.2.10", &a));
	nl = nl_open();
	assert_non_null(nl);
	assert_int_equal(nl_addr4_has(nl, "nlt0", a), 0);
	assert_int_equal(nl_addr4_add(nl, "nlt0", a, 32), 0);
	assert_int_equal(nl_addr4_has(nl, "nlt0", a), 1);
	assert_int_equal(nl_addr4_has(nl, "nlt1", a), 0);
	/* idempotent both ways */
	assert_int_equal(nl_addr4_add(nl, "nlt0", a, 32), 0);
	assert_int_equal(sh("ip -4 addr show dev nlt0 | grep -q '192.0.2.10/32'"), 0);
	assert_int_equal(nl_addr4_del(nl, "nlt0", a, 32), 0);
	assert_int_equal(nl_addr4_has(nl, "nlt0", a), 0);
	assert_int_equal(nl_addr4_del(nl, "nlt0", a, 32), 0);
	assert_int_equal(nl_addr4_add(nl, "nlt0", a, 33), -EINVAL);
	nl_close(nl);
}

static void
test_route4(void **state)
{
	struct nl *nl;
	uint32_t a, net;

	NEED_NETNS();
	assert_true(addr_parse_v4("192.0.2.10", &a));
	assert_true(addr_parse_v4("198.51.100.0", &net));
	nl = nl_open();
	assert_non_null(nl);
	/* a device route works without any IPv4 address (on-demand DTI) */
	assert_int_equal(nl_route4_add(nl, "nlt0", 0, 0, 0), 0);
	assert_int_equal(sh("ip -4 route show default | grep -q 'dev nlt0'"), 0);
	assert_int_equal(nl_route4_add(nl, "nlt0", 0, 0, 0), 0);
	assert_int_equal(nl_route4_del(nl, "nlt0", 0, 0), 0);
	assert_int_equal(sh("ip -4 route show default | grep -q ."), -1);
	assert_int_equal(nl_route4_del(nl, "nlt0", 0, 0), 0);
	/* with a source hint, which must be a local address */
	assert_int_equal(nl_route4_add(nl, "nlt0", net, 24, a), -EINVAL);
	assert_int_equal(nl_addr4_add(nl, "nlt0", a, 32), 0);
	assert_int_equal(nl_route4_add(nl, "nlt0", net, 24, a), 0);
	assert_int_equal(
	    sh("ip -4 route show 198.51.100.0/24 | grep -q 'dev nlt0 .*src 192.0.2.10'"), 0);
	/* replace changes the source hint in place */
	assert_int_equal(nl_route4_replace(nl, "nlt0", net, 24, 0), 0);
	assert_int_equal(sh("ip -4 route show 198.51.100.0/24 | grep -q src"), -1);
	assert_int_equal(nl_route4_replace(nl, "nlt0", net, 24, a), 0);
	assert_int_equal(
	    sh("ip -4 route show 198.51.100.0/24 | grep -q 'dev nlt0 .*src 192.0.2.10'"), 0);
	/* host bits of dst are ignored */
	assert_int_equal(nl_route4_del(nl, "nlt0", net | 7, 24), 0);
	assert_int_equal(sh("ip -4 route show 198.51.100.0/24 | grep -q ."), -1);
	assert_int_equal(nl_addr4_del(nl, "nlt0", a, 32), 0);
	nl_close(nl);
}

static void
test_addr6(void **state)
{
	struct nl *nl;
	struct in6_addr a, want, ll;
	char buf[ADDR_STRLEN];

	NEED_NETNS();
	nl = nl_open();
	assert_non_null(nl);
	assert_int_equal(nl_addr6_global(nl, "nlt1", &a), 0);
	assert_true(addr_parse_v6("fd00:d57:aa::2", &want));
	assert_string_equal(addr_fmt_v6(&a, buf), "fd00:d57:aa::2");
	assert_int_equal(nl_addr6_global(nl, "lo", &a), -EADDRNOTAVAIL);
	assert_int_equal(nl_addr6_global(nl, NULL, &a), 0);
	assert_int_equal(nl_addr6_ifindex(nl, &want), nl_ifindex("nlt1"));
	assert_true(addr_parse_v6("fd00:d57:aa::99", &a));
	assert_int_equal(nl_addr6_ifindex(nl, &a), -EADDRNOTAVAIL);
	/* the link-local address appears when the link is up (no DAD here) */
	assert_int_equal(nl_addr6_linklocal(nl, "nlt0", &ll), 0);
	assert_int_equal(ll.s6_addr[0], 0xfe);
	assert_int_equal(ll.s6_addr[1] & 0xc0, 0x80);
	nl_close(nl);
}

static void
test_route6(void **state)
{
	struct nl *nl;
	struct in6_addr dst, src;
	char buf[ADDR_STRLEN];
	unsigned mtu = 0;
	int oif = 0;

	NEED_NETNS();
	nl = nl_open();
	assert_non_null(nl);
	assert_true(addr_parse_v6("fd00:d57:aa::77", &dst));
	assert_int_equal(nl_link_set(nl, "nlt0", true, 1500, 0), 0);
	assert_int_equal(nl_link_set(nl, "nlt1", true, 1500, 0), 0);
	assert_int_equal(nl_route6_get(nl, &dst, &src, &oif, &mtu), 0);
	assert_true(oif == nl_ifindex("nlt0") || oif == nl_ifindex("nlt1"));
	assert_int_equal(mtu, 1500);
	assert_true(strncmp(addr_fmt_v6(&src, buf), "fd00:d57:aa::", 13) == 0);
	/* an MTU metric on the route is the path MTU */
	assert_int_equal(sh("ip -6 route add fd00:d57:bb::/64 dev nlt0 mtu 1300"), 0);
	assert_true(addr_parse_v6("fd00:d57:bb::1", &dst));
	assert_int_equal(nl_route6_get(nl, &dst, NULL, &oif, &mtu), 0);
	assert_int_equal(oif, nl_ifindex("nlt0"));
	assert_int_equal(mtu, 1300);
	/* and so is the link MTU when it is lower */
	assert_true(addr_parse_v6("fd00:d57:aa::77", &dst));
	assert_int_equal(sh("ip -6 route del fd00:d57:aa::/64 dev nlt1"), 0);
	assert_int_equal(nl_link_set(nl, "nlt0", true, 1280, 0), 0);
	assert_int_equal(nl_route6_get(nl, &dst, NULL, NULL, &mtu), 0);
	assert_int_equal(mtu, 1280);
	assert_int_equal(nl_link_set(nl, "nlt0", true, 1500, 0), 0);
	/* no route */
	assert_true(addr_parse_v6("2001:db8::1", &dst));
	assert_int_equal(nl_route6_get(nl, &dst, NULL, NULL, NULL), -ENETUNREACH);
	nl_close(nl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ifindex), cmocka_unit_test(test_link),
	    cmocka_unit_test(test_addr4),   cmocka_unit_test(test_route4),
	    cmocka_unit_test(test_addr6),   cmocka_unit_test(test_route6),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
