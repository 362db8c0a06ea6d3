/*
 * The DHCPv6 server access module of dstm-client (seed 001 appendix A,
 * seed 002 §6, shell.h). The engine of src/dhcp6 decides (Solicit,
 * Request, Renew, Rebind, Release, Decline, with T1/T2 and the expiry of
 * its own); this shell holds the socket and the clock and turns the
 * engine's events into the lease machine's (lease.c). The socket is bound
 * to the host's global address (port 546), because dstmd takes the
 * client's tunnel address from the source of a message when it is global
 * (d6_client_v6), and sends to All_DHCP_Relay_Agents_and_Servers on the
 * link of that address.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/shell.h"
#include "common/addr.h"
#include "common/clock.h"

static const char *const d6_state_names[] = {
    "init",      "soliciting", "requesting", "bound",   "renewing",
    "rebinding", "releasing",  "declining",  "stopped",
};

static uint32_t
d6_random(void *arg)
{
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)clock_mono_ms() * 2654435761u;
	return r;
}

static void
d6_flush(struct client_dhcp6_access *a)
{
	struct sockaddr_in6 to = {
	    .sin6_family = AF_INET6,
	    .sin6_port = htons(a->cfg->dhcp6.port),
	    .sin6_scope_id = a->ifindex,
	};
	uint8_t buf[D6_MAX_MSG];
	size_t len;

	/* RFC 8415 §7.1: All_DHCP_Relay_Agents_and_Servers. */
	inet_pton(AF_INET6, "ff02::1:2", &to.sin6_addr);
	while (d6_client_output(a->d6, buf, sizeof(buf), &len)) {
		if (sendto(a->fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) ==
		    (ssize_t)len) {
			a->n.dhcp6_tx++;
		} else {
			a->n.dhcp6_tx_errors++;
			log_warnx_rl(&a->rl, "DHCPv6: send: %s", strerror(errno));
		}
	}
}

static void
d6_schedule(struct client_dhcp6_access *a)
{
	int64_t next = d6_client_next(a->d6), now = clock_mono_ms();
	struct timeval tv;

	evtimer_del(a->ev_timer);
	if (next == INT64_MAX)
		return;
	next = next > now ? next - now : 0;
	tv.tv_sec = (time_t)(next / 1000);
	tv.tv_usec = (suseconds_t)(next % 1000) * 1000;
	evtimer_add(a->ev_timer, &tv);
}

/* The address proves unusable: give it back (RFC 8415 §18.2.8). */
static void
d6_decline(struct client_dhcp6_access *a, uint32_t v4, const char *why)
{
	char s[ADDR_STRLEN];

	log_warnx("DHCPv6: declining %s: %s", addr_fmt_v4(v4, s), why);
	a->n.declines++;
	lease_drop(a->lease, why);
	a->lease->state = LEASE_ACQUIRING;
	d6_client_decline(a->d6, clock_mono_ms());
}

static void
d6_bound(struct client_dhcp6_access *a)
{
	const struct d6_lease_info *l = d6_client_lease(a->d6);
	struct lease_grant g = {0};
	char s[ADDR_STRLEN];

	if (!l)
		return;
	g.v4 = l->v4;
	g.port_lo = l->port_lo;
	g.port_hi = l->port_hi;
	g.has_tep6 = l->has_tep;
	g.tep6 = l->tep;
	g.lifetime = l->valid;
	g.obtained_ms = l->obtained;
	g.timers = false; /* the engine keeps T1, T2 and the expiry */
	g.lw = l->lw;
	g.lw_v6 = l->v6;
	g.psid_offset = l->psid_offset;
	g.psid_len = l->psid_len;
	g.psid = l->psid;
	switch (lease_grant(a->lease, &g, clock_mono_ms())) {
	case LEASE_GRANTED:
		log_info("DHCPv6 lease of %s for %u s (T1 %u, T2 %u)", addr_fmt_v4(l->v4, s),
		         l->valid, l->t1, l->t2);
		break;
	case LEASE_RENEWED:
		break;
	case LEASE_NO_TEP:
		/* Without a TEP the address cannot carry one packet. */
		d6_decline(a, l->v4, "the server named no TEP");
		break;
	case LEASE_NO_INTERFACE:
		d6_decline(a, l->v4, "cannot configure the interface");
		break;
	}
}

static void
d6_event(struct client_dhcp6_access *a, enum d6_client_event ev)
{
	switch (ev) {
	case D6C_EV_BOUND:
		d6_bound(a);
		break;
	case D6C_EV_RENEWED:
		if (a->lease->state == LEASE_BOUND) {
			const struct d6_lease_info *l = d6_client_lease(a->d6);

			lease_extend(a->lease, l->valid, l->obtained + (int64_t)l->valid * 1000);
		} else {
			d6_bound(a);
		}
		break;
	case D6C_EV_LOST:
		/* Expired, or refused at renewal (seed 002 §6.3): the address goes. */
		lease_lost(a->lease, clock_mono_ms());
		break;
	case D6C_EV_RELEASED:
		event_active(a->ev_release, 0, 0);
		break;
	case D6C_EV_NONE:
		break;
	}
}

static void
on_d6(evutil_socket_t fd, short what, void *arg)
{
	struct client_dhcp6_access *a = arg;
	uint8_t buf[D6_MAX_MSG];

	for (int i = 0; i < CLIENT_BURST; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0)
			break;
		a->n.dhcp6_rx++;
		d6_event(a, d6_client_input(a->d6, buf, (size_t)n, clock_mono_ms()));
	}
	d6_flush(a);
	d6_schedule(a);
}

static void
on_d6_timer(evutil_socket_t fd, short what, void *arg)
{
	struct client_dhcp6_access *a = arg;

	d6_event(a, d6_client_tick(a->d6, clock_mono_ms()));
	d6_flush(a);
	d6_schedule(a);
}

void
d6_access_request(struct client_dhcp6_access *a)
{
	enum d6_client_state st = d6_client_state(a->d6);

	if (st != D6C_INIT && st != D6C_STOPPED)
		return; /* already soliciting or renewing */
	d6_client_start(a->d6, clock_mono_ms());
	d6_flush(a);
	d6_schedule(a);
}

/* SIGTERM: Release (RFC 8415 §18.2.7), wait a moment for the Reply. */
void
d6_access_release(struct client_dhcp6_access *a)
{
	struct timeval tv = {RELEASE_WAIT_MS / 1000, (RELEASE_WAIT_MS % 1000) * 1000};

	if (a->lease->state != LEASE_BOUND) {
		event_active(a->ev_release, 0, 0);
		return;
	}
	d6_client_release(a->d6, clock_mono_ms());
	a->releases++;
	d6_flush(a);
	d6_schedule(a);
	evtimer_add(a->ev_release, &tv);
}

const char *
d6_access_session(const struct client_dhcp6_access *a)
{
	return d6_state_names[d6_client_state(a->d6)];
}

/*
 * RFC 8415 §11.4: a DUID-LL from the hardware address of the interface
 * holding our global address, stable across restarts; a random DUID-UUID
 * (RFC 6355) when that interface has none.
 */
static void
d6_make_duid(struct client_dhcp6_access *a, const char *ifname)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	static const uint8_t zero[6];

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 &&
	    memcmp(ifr.ifr_hwaddr.sa_data, zero, 6) != 0) {
		a->duid[0] = 0;
		a->duid[1] = 3; /* DUID-LL */
		a->duid[2] = 0;
		a->duid[3] = 1; /* Ethernet */
		memcpy(a->duid + 4, ifr.ifr_hwaddr.sa_data, 6);
		a->duid_len = 10;
	} else {
		a->duid[0] = 0;
		a->duid[1] = 4; /* DUID-UUID */
		for (int i = 0; i < 16; i += 4) {
			uint32_t r = d6_random(NULL);

			memcpy(a->duid + 2 + i, &r, 4);
		}
		a->duid_len = 18;
	}
	if (fd >= 0)
		close(fd);
}

int
d6_access_open(struct client_dhcp6_access *a)
{
	const struct client_dhcp6 *h = &a->cfg->dhcp6;
	struct sockaddr_in6 sa = {
	    .sin6_family = AF_INET6,
	    .sin6_port = htons(D6_CLIENT_PORT),
	    .sin6_addr = a->v6,
	};
	struct d6_client_config dc = {0};
	char ifn[IFNAMSIZ];
	int idx, fd, zero = 0, one = 1;

	a->fd = -1;
	idx = nl_addr6_ifindex(a->nl, &a->v6);
	if (idx <= 0 || !if_indextoname((unsigned)idx, ifn))
		return -EADDRNOTAVAIL;
	a->ifindex = (unsigned)idx;
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0 ||
	    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof(zero)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	a->fd = fd;

	d6_make_duid(a, ifn);
	dc.codes = h->codes;
	dc.duid = a->duid;
	dc.duid_len = a->duid_len;
	dc.iaid = (uint32_t)idx;
	dc.global_v4_form = h->global_v4_form;
	dc.lw4o6 = a->cfg->lw4o6; /* an lwB4: ORO 96, the IA_NA address (client/lw4o6.h) */
	dc.rapid_commit = h->rapid_commit;
	if (h->has_key) {
		a->key.realm = h->realm;
		a->key.key_id = h->key_id;
		a->key.secret = (const uint8_t *)h->secret;
		a->key.secret_len = strlen(h->secret);
		dc.key = &a->key;
	}
	dc.random = d6_random;
	a->d6 = d6_client_new(&dc);
	if (!a->d6)
		return -ENOMEM;
	a->ev_rx = event_new(a->base, fd, EV_READ | EV_PERSIST, on_d6, a);
	a->ev_timer = evtimer_new(a->base, on_d6_timer, a);
	if (!a->ev_rx || !a->ev_timer)
		return -ENOMEM;
	event_add(a->ev_rx, NULL);
	log_info("DHCPv6 from [%s]:%u on %s (%s form%s)",
	         addr_fmt_v6(&a->v6, (char[ADDR_STRLEN]){0}), D6_CLIENT_PORT, ifn,
	         h->global_v4_form ? "seed 002 Global IPv4 Address" : "IA_DSTM",
	         h->has_key ? ", authenticated" : "");
	return 0;
}

void
d6_access_close(struct client_dhcp6_access *a)
{
	if (!a->d6)
		return;
	event_free(a->ev_rx);
	event_free(a->ev_timer);
	d6_client_free(a->d6);
	close(a->fd);
	a->d6 = NULL;
}
