/*
 * The link-local methods of DOTS discovery: the DHCPv6 Information-request
 * (RFC 8415 §18.2.6, to All_DHCP_Relay_Agents_and_Servers), the DHCPv4
 * INFORM, or DISCOVER when the interface has no IPv4 address (RFC 2131
 * §4.4), and mDNS PTR queries (RFC 6762 §5.1, sent from an ephemeral port
 * so that responders answer by unicast, §6.7). Every socket is bound to
 * its interface; every wait ends at a deadline; retransmissions double
 * their interval (RFC 8415 §15 with IRT 1 s; RFC 2131 §4.1 likewise).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "dots/dots_int.h"

#define MDNS_PORT    5353
#define MDNS_MAX_RR  128
#define LINK_MAX_MSG 4096

int
dots_if_list(const struct dots_opts *o, struct dots_if *out, size_t cap, size_t *n)
{
	struct ifaddrs *ifa, *p;

	*n = 0;
	if (getifaddrs(&ifa) < 0)
		return -errno;
	/* Interfaces in the order the kernel lists them (AF_PACKET entries carry the MAC). */
	for (p = ifa; p; p = p->ifa_next) {
		struct dots_if *d = NULL;
		bool wanted = o->nif == 0;

		if (!p->ifa_addr || !(p->ifa_flags & IFF_UP))
			continue;
		if (o->nif == 0 && (p->ifa_flags & IFF_LOOPBACK))
			continue;
		for (size_t i = 0; i < o->nif; i++)
			if (strcmp(o->ifnames[i], p->ifa_name) == 0)
				wanted = true;
		if (!wanted)
			continue;
		for (size_t i = 0; i < *n; i++)
			if (strcmp(out[i].name, p->ifa_name) == 0)
				d = &out[i];
		if (!d) {
			if (*n == cap)
				continue;
			d = &out[(*n)++];
			memset(d, 0, sizeof(*d));
			snprintf(d->name, sizeof(d->name), "%s", p->ifa_name);
			d->index = if_nametoindex(p->ifa_name);
		}
		if (p->ifa_addr->sa_family == AF_PACKET) {
			const struct sockaddr_ll *ll = (const struct sockaddr_ll *)p->ifa_addr;

			if (ll->sll_halen == 6)
				memcpy(d->mac, ll->sll_addr, 6);
		} else if (p->ifa_addr->sa_family == AF_INET && !d->has_v4) {
			d->has_v4 = true;
			d->v4 = ((const struct sockaddr_in *)p->ifa_addr)->sin_addr;
		}
	}
	freeifaddrs(ifa);
	for (size_t i = 0; i < o->nif; i++) {
		bool seen = false;

		for (size_t j = 0; j < *n; j++)
			seen |= strcmp(out[j].name, o->ifnames[i]) == 0;
		if (!seen)
			return -ENODEV;
	}
	return 0;
}

static int
link_socket(int family, const char *ifname, uint16_t port)
{
	int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_storage ss = {0};
	socklen_t sl;

	if (s < 0)
		return -errno;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ifname[0] &&
	    setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0)
		goto fail;
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		sl = sizeof(*s4);
	}
	if (bind(s, (struct sockaddr *)&ss, sl) < 0)
		goto fail;
	return s;
fail:
	one = -errno;
	close(s);
	return one;
}

/*
 * Wait for one datagram until `deadline`: its length, 0 at the deadline,
 * or -errno.
 */
static ssize_t
link_recv(int s, void *buf, size_t cap, int64_t deadline, struct sockaddr_storage *from)
{
	for (;;) {
		struct pollfd pfd = {.fd = s, .events = POLLIN};
		int64_t left = deadline - clock_mono_ms();
		socklen_t fl = sizeof(*from);
		ssize_t n;

		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		n = recvfrom(s, buf, cap, 0, (struct sockaddr *)from, &fl);
		if (n >= 0)
			return n == 0 ? -EAGAIN : n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

int
dots_dhcp6_run(struct dots_ctx *x, const struct dots_if *ifp, struct dots_dhcp_info *info)
{
	struct sockaddr_in6 to = {.sin6_family = AF_INET6, .sin6_port = htons(DOTS_D6_SERVER_PORT)};
	uint8_t duid[10] = {0, 3, 0, 1}, msg[256], buf[LINK_MAX_MSG];
	uint32_t xid = dots_rand(NULL) & 0xffffff;
	int64_t start = clock_mono_ms(), deadline = start + x->o->timeout_ms, next = start;
	int64_t rt = 1000; /* RFC 8415 §18.2.6: INF_TIMEOUT 1 s */
	int s, rc = -ETIMEDOUT;

	/* RFC 8415 §11.4: DUID-LL from the interface's hardware address. */
	memcpy(duid + 4, ifp->mac, 6);
	inet_pton(AF_INET6, "ff02::1:2", &to.sin6_addr);
	to.sin6_scope_id = ifp->index;
	s = link_socket(AF_INET6, ifp->name, DOTS_D6_CLIENT_PORT);
	if (s < 0) {
		dots_event(x, "DHCPv6 socket: %s", strerror(-s));
		return s;
	}
	while (clock_mono_ms() < deadline) {
		struct sockaddr_storage from;
		ssize_t n;

		if (clock_mono_ms() >= next) {
			size_t len;
			int64_t el = (clock_mono_ms() - start) / 10;

			dots_d6_build_inforeq(xid, duid, sizeof(duid),
			                      (uint16_t)(el > 0xffff ? 0xffff : el), msg,
			                      sizeof(msg), &len);
			if (sendto(s, msg, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
				rc = -errno;
				dots_event(x, "DHCPv6 send: %s", strerror(errno));
				break;
			}
			x->r->c.d6_sent++;
			next = clock_mono_ms() + rt;
			rt *= 2;
		}
		n = link_recv(s, buf, sizeof(buf), next < deadline ? next : deadline, &from);
		if (n < 0 && n != -EAGAIN) {
			rc = (int)n;
			break;
		}
		if (n <= 0)
			continue;
		rc = dots_d6_parse_reply(buf, (size_t)n, xid, info);
		if (rc == -EPROTO)
			continue; /* someone else's transaction */
		x->r->c.d6_replies++;
		if (rc < 0) {
			x->r->c.d6_bad_reply++;
			dots_event(x, "DHCPv6 Reply malformed (%zd bytes): skipped", n);
			continue;
		}
		break;
	}
	if (rc == -ETIMEDOUT) {
		x->r->c.d6_timeouts++;
		dots_event(x, "DHCPv6: no Reply in %d ms", x->o->timeout_ms);
	}
	close(s);
	return rc;
}

int
dots_dhcp4_run(struct dots_ctx *x, const struct dots_if *ifp, struct dots_dhcp_info *info)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(D4_SERVER_PORT)};
	struct d4_req req = {.xid = dots_rand(NULL),
	                     .prl = dots_d4_prl,
	                     .nprl = sizeof(dots_d4_prl),
	                     .max_size = 1500};
	uint8_t msg[600], buf[LINK_MAX_MSG];
	int64_t start = clock_mono_ms(), deadline = start + x->o->timeout_ms, next = start;
	int64_t rt = 1000;
	int s, rc = -ETIMEDOUT;

	memcpy(req.chaddr, ifp->mac, 6);
	/* RFC 2131 §4.4.3: INFORM when configured; without an address, DISCOVER. */
	if (ifp->has_v4) {
		req.type = D4_INFORM;
		req.ciaddr = ntohl(ifp->v4.s_addr);
	} else {
		req.type = D4_DISCOVER;
		req.broadcast = true;
	}
	to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
	s = link_socket(AF_INET, ifp->name, D4_CLIENT_PORT);
	if (s < 0) {
		dots_event(x, "DHCPv4 socket: %s", strerror(-s));
		return s;
	}
	while (clock_mono_ms() < deadline) {
		struct sockaddr_storage from;
		struct d4_msg m;
		ssize_t n;

		if (clock_mono_ms() >= next) {
			size_t len;

			req.secs = (uint16_t)((clock_mono_ms() - start) / 1000);
			d4_build(&req, msg, sizeof(msg), &len);
			if (sendto(s, msg, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
				rc = -errno;
				dots_event(x, "DHCPv4 send: %s", strerror(errno));
				break;
			}
			x->r->c.d4_sent++;
			next = clock_mono_ms() + rt;
			rt *= 2;
		}
		n = link_recv(s, buf, sizeof(buf), next < deadline ? next : deadline, &from);
		if (n < 0 && n != -EAGAIN) {
			rc = (int)n;
			break;
		}
		if (n <= 0)
			continue;
		rc = d4_parse(buf, (size_t)n, &m);
		if (rc == 0 && (m.op != 2 || m.xid != req.xid))
			continue;
		x->r->c.d4_replies++;
		if (rc < 0) {
			x->r->c.d4_bad_reply++;
			dots_event(x, "DHCPv4 reply malformed (%zd bytes): skipped", n);
			rc = -ETIMEDOUT;
			continue;
		}
		if (m.msgtype != D4_ACK && m.msgtype != D4_OFFER) {
			dots_event(x, "DHCPv4 message type %u ignored", m.msgtype);
			rc = -ETIMEDOUT;
			continue;
		}
		dots_d4_info(&m, x->o->d4fmt, info);
		dots_event(x, "DHCPv4 %s from the server answered our %s",
		           m.msgtype == D4_ACK ? "DHCPACK" : "DHCPOFFER",
		           req.type == D4_INFORM ? "DHCPINFORM" : "DHCPDISCOVER");
		break;
	}
	if (rc == -ETIMEDOUT) {
		x->r->c.d4_timeouts++;
		dots_event(x, "DHCPv4: no answer in %d ms", x->o->timeout_ms);
	}
	close(s);
	return rc;
}

/* Send one query per name in `names`, gather responses until the deadline. */
static size_t
mdns_ask(struct dots_ctx *x, int s, char names[][DOTS_NAME_MAX], const uint16_t *types, size_t nq,
         struct dots_rr *rr, size_t have)
{
	struct sockaddr_storage to = {0};
	socklen_t tl;
	uint8_t buf[LINK_MAX_MSG];
	uint16_t id = (uint16_t)dots_rand(NULL);
	int64_t deadline = clock_mono_ms() + x->o->timeout_ms / 2;

	if (x->family == AF_INET6) {
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&to;

		d->sin6_family = AF_INET6;
		d->sin6_port = htons(MDNS_PORT);
		d->sin6_scope_id = x->ifindex;
		inet_pton(AF_INET6, "ff02::fb", &d->sin6_addr);
		tl = sizeof(*d);
	} else {
		struct sockaddr_in *d = (struct sockaddr_in *)&to;

		d->sin_family = AF_INET;
		d->sin_port = htons(MDNS_PORT);
		inet_pton(AF_INET, "224.0.0.251", &d->sin_addr);
		tl = sizeof(*d);
	}
	for (size_t i = 0; i < nq; i++) {
		size_t len;

		/* RFC 6762 §6.7: a legacy unicast query (ephemeral port) with an ID. */
		if (dots_dns_build_query(id, names[i], types[i], false, false, buf, sizeof(buf),
		                         &len) < 0)
			continue;
		if (sendto(s, buf, len, 0, (struct sockaddr *)&to, tl) < 0) {
			dots_event(x, "mDNS send: %s", strerror(errno));
			return have;
		}
		x->r->c.mdns_sent++;
	}
	for (;;) {
		struct sockaddr_storage from;
		struct dots_dns_msg h;
		ssize_t n = link_recv(s, buf, sizeof(buf), deadline, &from);

		if (n == -EAGAIN)
			continue;
		if (n <= 0)
			break;
		x->r->c.mdns_responses++;
		if (have >= MDNS_MAX_RR)
			continue;
		if (dots_dns_parse(buf, (size_t)n, &h, rr + have, MDNS_MAX_RR - have,
		                   &x->r->c.dns) < 0 ||
		    !h.response) {
			x->r->c.mdns_bad++;
			dots_event(x, "mDNS response malformed (%zd bytes): skipped", n);
			continue;
		}
		have += h.nrr;
	}
	return have;
}

int
dots_mdns_run(struct dots_ctx *x)
{
	struct dots_rr *rr = calloc(MDNS_MAX_RR, sizeof(*rr));
	char(*names)[DOTS_NAME_MAX] = calloc(2 * DOTS_NTRANSPORT, DOTS_NAME_MAX);
	uint16_t types[2 * DOTS_NTRANSPORT];
	enum dots_transport tr[2 * DOTS_NTRANSPORT];
	size_t nq = 0, have, found = 0, inc;
	int s, one = 1, idx = (int)x->ifindex;

	if (!rr || !names) {
		free(rr);
		free(names);
		return -ENOMEM;
	}
	s = link_socket(x->family, x->ifname, 0);
	if (s < 0) {
		dots_event(x, "mDNS socket: %s", strerror(-s));
		free(rr);
		free(names);
		return s;
	}
	if (x->family == AF_INET6) {
		setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx));
		setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &(int){255}, sizeof(int));
	} else {
		struct ip_mreqn mr = {.imr_ifindex = idx};

		setsockopt(s, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr));
		setsockopt(s, IPPROTO_IP, IP_MULTICAST_TTL, &(int){255}, sizeof(int));
	}
	(void)one;
	/* Seed 003 §8.2 and RFC 8973 §5.3: both spellings of every wanted service. */
	for (unsigned t = 0; t < DOTS_NTRANSPORT; t++) {
		if (!(x->o->transports & (1u << t)))
			continue;
		for (unsigned sp = 0; dots_dnssd_service((enum dots_transport)t, sp); sp++) {
			snprintf(names[nq], DOTS_NAME_MAX, "%s.local",
			         dots_dnssd_service((enum dots_transport)t, sp));
			types[nq] = DOTS_T_PTR;
			tr[nq] = (enum dots_transport)t;
			nq++;
		}
	}
	have = mdns_ask(x, s, names, types, nq, rr, 0);
	for (size_t q = 0; q < nq; q++) {
		size_t got = dots_dnssd_collect(rr, have, names[q], tr[q], DOTS_M_MDNS, x->ifname,
		                                x->family, dots_rand, NULL, &x->r->list, &inc);

		/* Responders may leave out the additional records: ask for them. */
		if (inc) {
			char(*more)[DOTS_NAME_MAX] = calloc(2 * 8, DOTS_NAME_MAX);
			uint16_t mt[16];
			size_t nm = 0;

			for (size_t i = 0; more && i < have && nm + 2 <= 16; i++) {
				if (rr[i].type != DOTS_T_PTR || !dots_name_eq(rr[i].name, names[q]))
					continue;
				snprintf(more[nm], DOTS_NAME_MAX, "%s", rr[i].ptr);
				mt[nm++] = DOTS_T_SRV;
			}
			if (more && nm) {
				have = mdns_ask(x, s, more, mt, nm, rr, have);
				nm = 0;
				for (size_t i = 0; i < have && nm < 16; i++)
					if (rr[i].type == DOTS_T_SRV) {
						snprintf(more[nm], DOTS_NAME_MAX, "%s",
						         rr[i].srv.target);
						mt[nm++] =
						    x->family == AF_INET6 ? DOTS_T_AAAA : DOTS_T_A;
					}
				have = mdns_ask(x, s, more, mt, nm, rr, have);
				got = dots_dnssd_collect(rr, have, names[q], tr[q], DOTS_M_MDNS,
				                         x->ifname, x->family, dots_rand, NULL,
				                         &x->r->list, &inc);
			}
			free(more);
			x->r->c.dnssd_incomplete += inc;
		}
		if (got)
			dots_event(x, "mDNS %s: %zu server(s)", names[q], got);
		found += got;
	}
	close(s);
	free(rr);
	free(names);
	return found ? 0 : -ENOENT;
}
