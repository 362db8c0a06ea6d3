/*
 * The discovery procedure of seed 003 §5 (RFC 8973 §4): for each
 * interface and address family asked for, explicit configuration, then
 * DHCP, then service resolution in the domain DHCP gave (or the one
 * configured), then DNS-SD in that domain and mDNS on the link, then
 * the anycast addresses. The list comes out in that order of preference.
 */
#include <ares.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dots/dots_int.h"

static bool
want(const struct dots_opts *o, enum dots_method m)
{
	return o->methods & (1u << m);
}

static void
run_explicit(struct dots_ctx *x)
{
	for (size_t i = 0; i < x->o->nex; i++) {
		const struct dots_explicit *e = &x->o->ex[i];
		unsigned ts = (e->transports ? (unsigned)e->transports : ~0u) & x->o->transports;

		if (e->family != AF_UNSPEC && e->family != x->family)
			continue;
		if (e->ifname[0] && strcmp(e->ifname, x->ifname) != 0)
			continue;
		if (!e->has_addr) {
			/* A name is resolved and is its own reference identifier. */
			if (dots_res_name(x, e->name, e->ri[0] ? e->ri : e->name, "configured name",
			                  ts, e->port) < 0)
				dots_event(x, "configured %s: no address of this family", e->name);
			continue;
		}
		if (e->addr.family != x->family)
			continue;
		for (unsigned t = 0; t < DOTS_NTRANSPORT; t++) {
			struct dots_server s = {.method = DOTS_M_EXPLICIT,
			                        .transport = (enum dots_transport)t,
			                        .family = x->family,
			                        .addr = e->addr};

			if (!(ts & (1u << t)))
				continue;
			s.port = e->port ? e->port : dots_default_port((enum dots_transport)t);
			snprintf(s.ifname, sizeof(s.ifname), "%s", x->ifname);
			snprintf(s.ri, sizeof(s.ri), "%s", e->ri);
			snprintf(s.via, sizeof(s.via), "configured address");
			dots_list_add(&x->r->list, &s);
		}
	}
}

static void
report_dhcp_stats(struct dots_ctx *x, const struct dots_dhcp_info *info)
{
	const struct dots_dhcp_stats *s = &info->st;
	struct dots_dhcp_stats *t = &x->r->c.dhcp;

	t->bad_ri += s->bad_ri;
	t->bad_address += s->bad_address;
	t->discarded_address += s->discarded_address;
	t->extra_instance += s->extra_instance;
	t->extra_name += s->extra_name;
	t->bad_domain += s->bad_domain;
	t->truncated_addrs += s->truncated_addrs;
	if (s->bad_ri)
		dots_event(x, "DOTS reference identifier option malformed: skipped");
	if (s->bad_address)
		dots_event(x, "DOTS address option malformed: skipped");
	if (s->discarded_address)
		dots_event(x, "%llu multicast or loopback address(es) discarded",
		           (unsigned long long)s->discarded_address);
	if (s->extra_instance)
		dots_event(x, "%llu later instance(s) of a DOTS option ignored",
		           (unsigned long long)s->extra_instance);
	if (s->extra_name)
		dots_event(x, "names after the first in the reference identifier option ignored");
	if (s->bad_domain)
		dots_event(x, "domain option malformed: skipped");
}

/* One (interface, family) pass; `domain` gets what DHCP said. */
static void
run_pass(struct dots_ctx *x, const struct dots_if *ifp)
{
	const struct dots_opts *o = x->o;
	char domain[DOTS_NAME_MAX] = "";
	size_t before;

	if (want(o, DOTS_M_EXPLICIT)) {
		x->method = DOTS_M_EXPLICIT;
		before = x->r->list.n;
		run_explicit(x);
		if (o->first_only && x->r->list.n > before)
			return;
	}
	if (want(o, DOTS_M_DHCP) && ifp) {
		struct dots_dhcp_info info;
		bool resolve = false;
		int rc;

		x->method = DOTS_M_DHCP;
		before = x->r->list.n;
		rc = x->family == AF_INET6 ? dots_dhcp6_run(x, ifp, &info)
		                           : dots_dhcp4_run(x, ifp, &info);
		if (rc == 0) {
			report_dhcp_stats(x, &info);
			dots_dhcp_servers(&info, x->ifname, x->family, &x->r->list, &resolve);
			if (resolve &&
			    dots_res_name(x, info.ri, info.ri,
			                  x->family == AF_INET6 ? "option 141" : "option 147", ~0u,
			                  0) < 0)
				dots_event(x, "DHCP name %s did not resolve", info.ri);
			if (info.have_domain)
				snprintf(domain, sizeof(domain), "%s", info.domain);
			dots_event(x, "DHCP: %s%s%s%s%zu address(es)%s%s",
			           info.have_ri ? "name " : "", info.have_ri ? info.ri : "",
			           info.have_ri ? ", " : "", "", info.naddr,
			           info.have_domain ? ", domain " : "",
			           info.have_domain ? info.domain : "");
		}
		if (o->first_only && x->r->list.n > before)
			return;
	}
	/* --domain overrides DHCP; a configured default applies when DHCP gave none. */
	if (o->domain[0])
		snprintf(domain, sizeof(domain), "%s", o->domain);
	else if (!domain[0] && o->dflt_domain[0])
		snprintf(domain, sizeof(domain), "%s", o->dflt_domain);
	if (want(o, DOTS_M_SNAPTR)) {
		x->method = DOTS_M_SNAPTR;
		before = x->r->list.n;
		if (!domain[0])
			dots_event(x, "no domain: service resolution skipped (RFC 8973 §4.1)");
		else
			dots_res_snaptr(x, domain);
		if (o->first_only && x->r->list.n > before)
			return;
	}
	if (want(o, DOTS_M_DNSSD) && domain[0]) {
		x->method = DOTS_M_DNSSD;
		before = x->r->list.n;
		dots_res_dnssd(x, domain);
		if (o->first_only && x->r->list.n > before)
			return;
	}
	if (want(o, DOTS_M_MDNS) && ifp) {
		x->method = DOTS_M_MDNS;
		before = x->r->list.n;
		dots_mdns_run(x);
		if (o->first_only && x->r->list.n > before)
			return;
	}
	if (want(o, DOTS_M_ANYCAST)) {
		x->method = DOTS_M_ANYCAST;
		for (size_t i = 0; i < o->nany; i++) {
			const struct dots_anycast *a = &o->any[i];
			char ab[INET6_ADDRSTRLEN];

			if (a->addr.family != x->family)
				continue;
			/* Seed 003 §10: a signal channel session goes to the anycast address. */
			for (unsigned t = DOTS_SIGNAL_UDP; t <= DOTS_SIGNAL_TCP; t++) {
				struct dots_server s = {.method = DOTS_M_ANYCAST,
				                        .transport = (enum dots_transport)t,
				                        .family = x->family,
				                        .addr = a->addr,
				                        .port = DOTS_SIGNAL_PORT};

				if (!(o->transports & (1u << t)))
					continue;
				snprintf(s.ifname, sizeof(s.ifname), "%s", x->ifname);
				snprintf(s.ri, sizeof(s.ri), "%s",
				         a->ri[0] ? a->ri : dots_addr_fmt(&a->addr, ab));
				snprintf(s.via, sizeof(s.via), "configured anycast");
				dots_list_add(&x->r->list, &s);
			}
		}
	}
}

int
dots_discover(const struct dots_opts *o, struct dots_run *r)
{
	struct dots_if ifs[DOTS_MAX_IFS];
	struct dots_resolver *res = NULL;
	bool link = want(o, DOTS_M_DHCP) || want(o, DOTS_M_MDNS) || o->nif > 0;
	size_t nif = 0;
	int rc;

	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return -ENOMEM;
	rc = dots_res_new(o, &res);
	if (rc < 0)
		goto out;
	rc = dots_if_list(o, ifs, DOTS_MAX_IFS, &nif);
	if (rc < 0)
		goto out;
	/*
	 * Seed 003 §5: per interface and address family. Without any
	 * interface (or when only non-link methods run) one pass per family
	 * still runs the explicit, DNS and anycast methods.
	 */
	if (!link)
		nif = 0; /* nothing depends on the link: one pass per family is enough */
	for (size_t i = 0; i < (nif ? nif : 1); i++) {
		for (int f = 0; f < 2; f++) {
			struct dots_ctx x = {.o = o, .r = r, .res = res};

			x.family = f == 0 ? AF_INET6 : AF_INET;
			if ((x.family == AF_INET6 && !o->v6) || (x.family == AF_INET && !o->v4))
				continue;
			x.ifname = nif ? ifs[i].name : "";
			x.ifindex = nif ? ifs[i].index : 0;
			run_pass(&x, nif ? &ifs[i] : NULL);
		}
	}
	dots_list_finish(&r->list);
	rc = 0;
out:
	dots_res_free(res);
	ares_library_cleanup();
	return rc;
}
