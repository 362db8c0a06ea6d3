/*
 * rtnetlink requests through libmnl: links, IPv4 addresses and routes,
 * IPv6 address and route look-ups (see nl.h). Every request is sent
 * with NLM_F_ACK and its answer read to the end before returning, so a
 * caller sees the kernel's errno and the socket never holds stale
 * replies. Reply attributes are type- and length-checked with
 * mnl_attr_validate() before they are read.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "netlink/nl.h"

/* A dump of a busy host fits in far fewer reads; this bounds the loop. */
#define NL_MAX_READS 4096

struct nl {
	struct mnl_socket *sock;
	unsigned portid;
	unsigned seq;
};

struct nl *
nl_open(void)
{
	struct nl *nl;
	int err;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return NULL;
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		goto fail;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned)time(NULL);
	return nl;
fail:
	err = errno;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl);
	errno = err;
	return NULL;
}

void
nl_close(struct nl *nl)
{
	if (!nl)
		return;
	mnl_socket_close(nl->sock);
	free(nl);
}

int
nl_ifindex(const char *name)
{
	unsigned idx;

	if (!name || !*name || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	idx = if_nametoindex(name);
	if (idx == 0)
		return -ENODEV;
	return (int)idx;
}

/*
 * Send the request in `nlh` and read until its ack (or the end of a
 * dump), handing every data message to `cb`. Returns 0 or -errno from
 * the kernel's error message.
 */
static int
nl_talk(struct nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	char buf[32768]; /* MNL_SOCKET_DUMP_SIZE of newer libmnl */
	unsigned seq;
	int ret, i;

	/* A dump ends with NLMSG_DONE; anything else is acked. NLM_F_DUMP's
	 * bits mean REPLACE/EXCL in a NEW request, so look at the type too:
	 * RTM_GET* are the types whose low two bits are 2. */
	if ((nlh->nlmsg_type & 3) != 2 || (nlh->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		nlh->nlmsg_flags |= NLM_F_ACK;
	seq = nlh->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (i = 0; i < NL_MAX_READS; i++) {
		ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));

		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, (size_t)n, seq, nl->portid, cb, arg);
		if (ret < 0)
			return -errno;
		if (ret == MNL_CB_STOP)
			return 0;
	}
	return -EIO;
}

static struct nlmsghdr *
nl_msg(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	return nlh;
}

/* ---- Links ---- */

int
nl_link_set(struct nl *nl, const char *ifname, bool up, unsigned mtu, unsigned txqueuelen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int idx = nl_ifindex(ifname);

	if (idx < 0)
		return idx;
	nlh = nl_msg(buf, RTM_NEWLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = idx;
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	if (mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	if (txqueuelen)
		mnl_attr_put_u32(nlh, IFLA_TXQLEN, txqueuelen);
	return nl_talk(nl, nlh, NULL, NULL);
}

struct link_reply {
	unsigned mtu;
	bool found;
};

static int
link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_reply *r = data;

	if (mnl_attr_get_type(attr) == IFLA_MTU) {
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		r->mtu = mnl_attr_get_u32(attr);
		r->found = true;
	}
	return MNL_CB_OK;
}

static int
link_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	return mnl_attr_parse(nlh, sizeof(struct ifinfomsg), link_attr_cb, data);
}

static int
link_mtu_index(struct nl *nl, int idx, unsigned *mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct link_reply r = {0};
	int ret;

	nlh = nl_msg(buf, RTM_GETLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = idx;
	ret = nl_talk(nl, nlh, link_cb, &r);
	if (ret < 0)
		return ret;
	if (!r.found)
		return -ENODATA;
	*mtu = r.mtu;
	return 0;
}

int
nl_link_mtu(struct nl *nl, const char *ifname, unsigned *mtu)
{
	int idx = nl_ifindex(ifname);

	if (idx < 0)
		return idx;
	return link_mtu_index(nl, idx, mtu);
}

/* ---- IPv4 addresses ---- */

static int
addr4_req(struct nl *nl, uint16_t type, uint16_t flags, const char *ifname, uint32_t v4,
          unsigned plen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	uint32_t be = htonl(v4);
	int idx = nl_ifindex(ifname);

	if (idx < 0)
		return idx;
	if (plen > 32)
		return -EINVAL;
	nlh = nl_msg(buf, type, flags);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = (unsigned char)plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)idx;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(be), &be);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(be), &be);
	return nl_talk(nl, nlh, NULL, NULL);
}

int
nl_addr4_add(struct nl *nl, const char *ifname, uint32_t v4, unsigned plen)
{
	int ret = addr4_req(nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifname, v4, plen);

	return ret == -EEXIST ? 0 : ret;
}

int
nl_addr4_del(struct nl *nl, const char *ifname, uint32_t v4, unsigned plen)
{
	int ret = addr4_req(nl, RTM_DELADDR, 0, ifname, v4, plen);

	return ret == -EADDRNOTAVAIL ? 0 : ret;
}

int
nl_addr6_add(struct nl *nl, int ifindex, const struct in6_addr *v6, unsigned plen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int ret;

	if (ifindex <= 0 || plen > 128)
		return -EINVAL;
	nlh = nl_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET6;
	ifa->ifa_prefixlen = (unsigned char)plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (unsigned)ifindex;
	/* The server assigned it (RFC 8415 §18.2.10.1 would have us run DAD;
	 * the lease is proof enough here, and the socket must bind at once). */
	ifa->ifa_flags = IFA_F_NODAD;
	mnl_attr_put(nlh, IFA_LOCAL, sizeof(*v6), v6);
	mnl_attr_put(nlh, IFA_ADDRESS, sizeof(*v6), v6);
	ret = nl_talk(nl, nlh, NULL, NULL);
	return ret == -EEXIST ? 0 : ret;
}

/* ---- Address dumps (both families) ---- */

struct addr_query {
	int family;
	int ifindex;       /* 0: any interface */
	int want;          /* 0 global, 1 link-local, 2 exact match */
	const void *match; /* for want == 2 (4 or 16 bytes, network order) */
	/* results */
	bool found, found_deprecated;
	int found_index;
	struct in6_addr v6, v6_deprecated;
};

struct addr_attrs {
	const struct nlattr *address, *local;
	uint32_t flags;
	bool has_flags;
};

static int
addr_attr_cb(const struct nlattr *attr, void *data)
{
	struct addr_attrs *a = data;

	switch (mnl_attr_get_type(attr)) {
	case IFA_ADDRESS:
		a->address = attr;
		break;
	case IFA_LOCAL:
		a->local = attr;
		break;
	case IFA_FLAGS:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		a->flags = mnl_attr_get_u32(attr);
		a->has_flags = true;
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static int
addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_query *q = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_attrs a = {0};
	const struct nlattr *at;
	size_t alen = q->family == AF_INET6 ? 16 : 4;
	uint32_t flags;

	if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != q->family)
		return MNL_CB_OK;
	if (q->ifindex && (int)ifa->ifa_index != q->ifindex)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), addr_attr_cb, &a) < 0)
		return MNL_CB_ERROR;
	/* IPv4 puts the host's own address in IFA_LOCAL; IPv6 in IFA_ADDRESS
	 * unless the address is point-to-point. */
	at = a.local ? a.local : a.address;
	if (!at || mnl_attr_get_payload_len(at) != alen)
		return MNL_CB_OK;
	flags = a.has_flags ? a.flags : ifa->ifa_flags;
	if (q->want == 2) {
		if (memcmp(mnl_attr_get_payload(at), q->match, alen) == 0 && !q->found) {
			q->found = true;
			q->found_index = (int)ifa->ifa_index;
		}
		return MNL_CB_OK;
	}
	if (flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))
		return MNL_CB_OK;
	if (q->want == 0 && ifa->ifa_scope != RT_SCOPE_UNIVERSE)
		return MNL_CB_OK;
	if (q->want == 1 && ifa->ifa_scope != RT_SCOPE_LINK)
		return MNL_CB_OK;
	if (flags & IFA_F_DEPRECATED) {
		if (!q->found_deprecated)
			memcpy(&q->v6_deprecated, mnl_attr_get_payload(at), 16);
		q->found_deprecated = true;
	} else if (!q->found) {
		memcpy(&q->v6, mnl_attr_get_payload(at), 16);
		q->found = true;
		q->found_index = (int)ifa->ifa_index;
	}
	return MNL_CB_OK;
}

static int
addr_dump(struct nl *nl, struct addr_query *q)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;

	nlh = nl_msg(buf, RTM_GETADDR, NLM_F_DUMP);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (unsigned char)q->family;
	return nl_talk(nl, nlh, addr_cb, q);
}

int
nl_addr4_has(struct nl *nl, const char *ifname, uint32_t v4)
{
	struct addr_query q = {.family = AF_INET, .want = 2};
	uint32_t be = htonl(v4);
	int ret;

	q.ifindex = nl_ifindex(ifname);
	if (q.ifindex < 0)
		return q.ifindex;
	q.match = &be;
	ret = addr_dump(nl, &q);
	if (ret < 0)
		return ret;
	return q.found ? 1 : 0;
}

static int
addr6_find(struct nl *nl, const char *ifname, int want, struct in6_addr *out)
{
	struct addr_query q = {.family = AF_INET6, .want = want};
	int ret;

	if (ifname) {
		q.ifindex = nl_ifindex(ifname);
		if (q.ifindex < 0)
			return q.ifindex;
	}
	ret = addr_dump(nl, &q);
	if (ret < 0)
		return ret;
	if (q.found)
		*out = q.v6;
	else if (q.found_deprecated)
		*out = q.v6_deprecated;
	else
		return -EADDRNOTAVAIL;
	return 0;
}

int
nl_addr6_global(struct nl *nl, const char *ifname, struct in6_addr *out)
{
	return addr6_find(nl, ifname, 0, out);
}

int
nl_addr6_linklocal(struct nl *nl, const char *ifname, struct in6_addr *out)
{
	return addr6_find(nl, ifname, 1, out);
}

int
nl_addr6_ifindex(struct nl *nl, const struct in6_addr *a)
{
	struct addr_query q = {.family = AF_INET6, .want = 2, .match = a};
	int ret = addr_dump(nl, &q);

	if (ret < 0)
		return ret;
	return q.found ? q.found_index : -EADDRNOTAVAIL;
}

/* ---- IPv4 routes ---- */

static int
route4_req(struct nl *nl, uint16_t type, uint16_t flags, const char *ifname, uint32_t dst,
           unsigned plen, uint32_t src_hint)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	uint32_t be = htonl(dst & (plen ? ~0u << (32 - plen) : 0));
	int idx = nl_ifindex(ifname);

	if (idx < 0)
		return idx;
	if (plen > 32)
		return -EINVAL;
	nlh = nl_msg(buf, type, flags);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = (unsigned char)plen;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	if (plen)
		mnl_attr_put(nlh, RTA_DST, sizeof(be), &be);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)idx);
	if (src_hint) {
		uint32_t src = htonl(src_hint);

		mnl_attr_put(nlh, RTA_PREFSRC, sizeof(src), &src);
	}
	return nl_talk(nl, nlh, NULL, NULL);
}

int
nl_route4_add(struct nl *nl, const char *ifname, uint32_t dst, unsigned plen, uint32_t src_hint)
{
	int ret =
	    route4_req(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, ifname, dst, plen, src_hint);

	return ret == -EEXIST ? 0 : ret;
}

int
nl_route4_replace(struct nl *nl, const char *ifname, uint32_t dst, unsigned plen, uint32_t src_hint)
{
	return route4_req(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifname, dst, plen,
	                  src_hint);
}

int
nl_route4_del(struct nl *nl, const char *ifname, uint32_t dst, unsigned plen)
{
	int ret = route4_req(nl, RTM_DELROUTE, 0, ifname, dst, plen, 0);

	return ret == -ESRCH ? 0 : ret;
}

/* ---- IPv6 route look-up ---- */

struct route6_reply {
	bool found, has_src, has_oif;
	struct in6_addr src;
	int oif;
	unsigned mtu;
};

static int
metrics_cb(const struct nlattr *attr, void *data)
{
	struct route6_reply *r = data;

	if (mnl_attr_get_type(attr) == RTAX_MTU) {
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		r->mtu = mnl_attr_get_u32(attr);
	}
	return MNL_CB_OK;
}

static int
route6_attr_cb(const struct nlattr *attr, void *data)
{
	struct route6_reply *r = data;

	switch (mnl_attr_get_type(attr)) {
	case RTA_PREFSRC:
		if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, 16) < 0)
			return MNL_CB_ERROR;
		memcpy(&r->src, mnl_attr_get_payload(attr), 16);
		r->has_src = true;
		break;
	case RTA_OIF:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		r->oif = (int)mnl_attr_get_u32(attr);
		r->has_oif = true;
		break;
	case RTA_METRICS:
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0)
			return MNL_CB_ERROR;
		if (mnl_attr_parse_nested(attr, metrics_cb, r) < 0)
			return MNL_CB_ERROR;
		break;
	default:
		break;
	}
	return MNL_CB_OK;
}

static int
route6_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route6_reply *r = data;

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	r->found = true;
	return mnl_attr_parse(nlh, sizeof(struct rtmsg), route6_attr_cb, data);
}

int
nl_route6_get(struct nl *nl, const struct in6_addr *dst, struct in6_addr *src, int *oif,
              unsigned *mtu)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	struct route6_reply r = {0};
	int ret;

	nlh = nl_msg(buf, RTM_GETROUTE, 0);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET6;
	rtm->rtm_dst_len = 128;
	mnl_attr_put(nlh, RTA_DST, 16, dst);
	ret = nl_talk(nl, nlh, route6_cb, &r);
	if (ret < 0)
		return ret;
	if (!r.found || !r.has_oif)
		return -ENETUNREACH;
	if (src) {
		if (!r.has_src)
			return -EADDRNOTAVAIL;
		*src = r.src;
	}
	if (oif)
		*oif = r.oif;
	if (mtu) {
		if (r.mtu == 0) {
			ret = link_mtu_index(nl, r.oif, &r.mtu);
			if (ret < 0)
				return ret;
		}
		*mtu = r.mtu;
	}
	return 0;
}
