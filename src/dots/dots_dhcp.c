/*
 * DHCP for DOTS discovery: the DHCPv6 Information-request and Reply
 * (RFC 8415 §18.2.6, §16.12) reduced to the DOTS options, the reading of
 * the DHCPv4 options 147/148/213/15, and the client rules of RFC 8973
 * §5.1.3 and §5.2.3 (seed 003 §9.1.3, §9.2.3) that turn either into
 * servers. A malformed option is counted and skipped, never trusted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dhcp6/d6.h"
#include "dots/dots.h"

const uint8_t dots_d4_prl[4] = {D4_OPT_DOTS_RI, D4_OPT_DOTS_ADDRESS, D4_OPT_ACCESS_DOMAIN,
                                D4_OPT_DOMAIN_NAME};

int
dots_d6_build_inforeq(uint32_t xid, const uint8_t *duid, size_t duidlen, uint16_t elapsed_cs,
                      void *buf, size_t cap, size_t *len)
{
	struct wcur w = wcur_make(buf, cap);
	uint8_t oro[6], el[2];
	struct wcur o = wcur_make(oro, sizeof(oro));

	*len = 0;
	if (duidlen == 0 || duidlen > 130)
		return -EINVAL;
	/* RFC 8415 §8: msg-type(1) transaction-id(3). */
	w_u8(&w, D6_INFORMATION_REQUEST);
	w_u8(&w, (uint8_t)(xid >> 16));
	w_u8(&w, (uint8_t)(xid >> 8));
	w_u8(&w, (uint8_t)xid);
	d6_opt_put(&w, D6_OPT_CLIENTID, duid, duidlen);
	/* RFC 8973 §5.1.3 and RFC 5986 §3.3: ask for 141, 142 and 57 in the ORO. */
	w_u16(&o, DOTS_D6_OPT_DOTS_RI);
	w_u16(&o, DOTS_D6_OPT_DOTS_ADDRESS);
	w_u16(&o, DOTS_D6_OPT_ACCESS_DOMAIN);
	d6_opt_put(&w, D6_OPT_ORO, oro, w_len(&o));
	w_put16_at(el, elapsed_cs);
	d6_opt_put(&w, D6_OPT_ELAPSED_TIME, el, sizeof(el));
	if (w.err)
		return -EMSGSIZE;
	*len = w_len(&w);
	return 0;
}

/* The first name of an RI option; later names are counted, not used. */
static void
take_ri(const uint8_t *v, size_t n, struct dots_dhcp_info *info)
{
	size_t used;

	if (d6_name_decode_n(v, n, info->ri, sizeof(info->ri), &used) < 0) {
		info->st.bad_ri++;
		info->ri[0] = '\0';
		return;
	}
	/* RFC 8973 §5.1.3: several root labels mean several names; use the first. */
	if (used < n)
		info->st.extra_name++;
	info->have_ri = true;
}

static void
add_addr(struct dots_dhcp_info *info, const struct dots_addr *a, uint8_t group)
{
	if (dots_addr_discard(a)) {
		info->st.discarded_address++;
		return;
	}
	if (info->naddr >= DOTS_MAX_ADDRS) {
		info->st.truncated_addrs++;
		return;
	}
	info->group[info->naddr] = group;
	info->addr[info->naddr++] = *a;
}

static void
take_domain(const uint8_t *v, size_t n, bool access, struct dots_dhcp_info *info)
{
	char name[DOTS_NAME_MAX];

	if (d6_name_decode_n(v, n, name, sizeof(name), NULL) < 0) {
		info->st.bad_domain++;
		return;
	}
	/* RFC 8973 §4.1 (seed 003 §7.1.1): the access domain is preferred. */
	if (info->have_domain && (info->domain_is_access || !access))
		return;
	strcpy(info->domain, name);
	info->have_domain = true;
	info->domain_is_access = access;
}

int
dots_d6_parse_reply(const void *pkt, size_t len, uint32_t xid, struct dots_dhcp_info *info)
{
	struct cur c = cur_make(pkt, len);
	uint8_t type = cur_u8(&c);
	uint32_t rxid;
	bool seen_ri = false, seen_addr = false;

	memset(info, 0, sizeof(*info));
	rxid = (uint32_t)cur_u8(&c) << 16;
	rxid |= (uint32_t)cur_u8(&c) << 8;
	rxid |= cur_u8(&c);
	if (c.err)
		return -EBADMSG;
	if (type != D6_REPLY || rxid != (xid & 0xffffff))
		return -EPROTO;
	/* Each option consumes at least 4 bytes: the message length bounds the loop. */
	while (c.left > 0) {
		uint16_t code, olen;
		struct cur body;
		const uint8_t *v;

		if (!d6_opt_next(&c, &code, &body))
			return -EBADMSG;
		olen = (uint16_t)body.left;
		v = body.p;
		switch (code) {
		case DOTS_D6_OPT_DOTS_RI:
			/* RFC 8973 §5.1.3: only the first instance is used. */
			if (seen_ri) {
				info->st.extra_instance++;
				break;
			}
			seen_ri = true;
			take_ri(v, olen, info);
			break;
		case DOTS_D6_OPT_DOTS_ADDRESS:
			if (seen_addr) {
				info->st.extra_instance++;
				break;
			}
			seen_addr = true;
			/* RFC 8973 §5.1.2: a non-empty multiple of 16. */
			if (olen == 0 || olen % 16) {
				info->st.bad_address++;
				break;
			}
			info->have_address_option = true;
			for (size_t i = 0; i < olen; i += 16) {
				struct dots_addr a = {.family = AF_INET6};

				memcpy(&a.v6, v + i, 16);
				add_addr(info, &a, 0);
			}
			break;
		case DOTS_D6_OPT_ACCESS_DOMAIN:
			take_domain(v, olen, true, info);
			break;
		default:
			break;
		}
	}
	return 0;
}

void
dots_d4_info(const struct d4_msg *m, enum dots_d4_addr_format fmt, struct dots_dhcp_info *info)
{
	/* RFC 3396: one option may span many instances; 4 KB is far above any real one. */
	uint8_t v[4096];
	size_t n;
	int rc;

	memset(info, 0, sizeof(*info));
	/*
	 * RFC 8973 §5.2.3 says "the first instance"; in DHCPv4 the instances
	 * of one code are one option joined by RFC 3396, so the joined value
	 * is that instance and the name rule below picks its first name.
	 */
	rc = d4_opt_get(m, D4_OPT_DOTS_RI, v, sizeof(v), &n);
	if (rc == 0)
		take_ri(v, n, info);
	else if (rc == -EMSGSIZE)
		info->st.bad_ri++;

	rc = d4_opt_get(m, D4_OPT_DOTS_ADDRESS, v, sizeof(v), &n);
	if (rc == -EMSGSIZE)
		info->st.bad_address++;
	if (rc == 0 && fmt == DOTS_D4_RFC8973) {
		/* RFC 8973 §5.2.2: N/4 addresses, N at least 4. */
		if (n == 0 || n % 4) {
			info->st.bad_address++;
		} else {
			info->have_address_option = true;
			for (size_t i = 0; i < n; i += 4) {
				struct dots_addr a = {.family = AF_INET};

				memcpy(&a.v4, v + i, 4);
				add_addr(info, &a, 0);
			}
		}
	} else if (rc == 0) {
		/* Seed 003 §9.2.2: List-Length(1) + addresses, repeated; one list per server. */
		struct cur c = cur_make(v, n);
		struct dots_dhcp_info tmp = *info;
		uint8_t group = 0;
		bool ok = n >= 5;

		while (ok && c.left > 0) {
			uint8_t ll = cur_u8(&c);
			const uint8_t *p = cur_bytes(&c, ll);

			if (c.err || ll == 0 || ll % 4) {
				ok = false;
				break;
			}
			for (size_t i = 0; i < ll; i += 4) {
				struct dots_addr a = {.family = AF_INET};

				memcpy(&a.v4, p + i, 4);
				add_addr(&tmp, &a, group);
			}
			if (group < 255)
				group++;
		}
		if (ok) {
			*info = tmp;
			info->have_address_option = true;
		} else {
			info->st.bad_address++;
		}
	}

	rc = d4_opt_get(m, D4_OPT_ACCESS_DOMAIN, v, sizeof(v), &n);
	if (rc == 0)
		take_domain(v, n, true, info);
	else if (rc == -EMSGSIZE)
		info->st.bad_domain++;

	/* RFC 2132 §3.17: option 15 is text, not wire labels; NULs at the end are tolerated. */
	rc = d4_opt_get(m, D4_OPT_DOMAIN_NAME, v, sizeof(v) - 1, &n);
	if (rc == 0) {
		while (n > 0 && v[n - 1] == '\0')
			n--;
		v[n] = '\0';
		if (memchr(v, '\0', n) || !dots_name_valid((char *)v) || n >= DOTS_NAME_MAX) {
			info->st.bad_domain++;
		} else if (!info->have_domain) {
			if (n > 0 && v[n - 1] == '.')
				v[n - 1] = '\0';
			strcpy(info->domain, (char *)v);
			info->have_domain = true;
			info->domain_is_access = false;
		}
	} else if (rc == -EMSGSIZE) {
		info->st.bad_domain++;
	}
}

int
dots_dhcp_servers(const struct dots_dhcp_info *info, const char *ifname, int family,
                  struct dots_list *l, bool *resolve)
{
	static const enum dots_transport ts[] = {DOTS_SIGNAL_UDP, DOTS_SIGNAL_TCP, DOTS_DATA_TCP};
	int rc;

	*resolve = false;
	if (info->naddr == 0) {
		/* A name alone is resolved and is also the reference identifier. */
		*resolve = info->have_ri && !info->have_address_option;
		return 0;
	}
	for (size_t i = 0; i < info->naddr; i++) {
		for (size_t t = 0; t < sizeof(ts) / sizeof(ts[0]); t++) {
			struct dots_server s = {
			    .method = DOTS_M_DHCP,
			    .transport = ts[t],
			    .family = family,
			    .addr = info->addr[i],
			    .port = dots_default_port(ts[t]),
			};
			char ab[INET6_ADDRSTRLEN];

			snprintf(s.ifname, sizeof(s.ifname), "%s", ifname ? ifname : "");
			/*
			 * RFC 8973 §5.1.3: with both options the name is the
			 * reference identifier and MUST NOT be resolved; with
			 * addresses only, the address identifies the server.
			 */
			if (info->have_ri)
				snprintf(s.ri, sizeof(s.ri), "%s", info->ri);
			else
				snprintf(s.ri, sizeof(s.ri), "%s",
				         dots_addr_fmt(&info->addr[i], ab));
			snprintf(s.via, sizeof(s.via), "%s",
			         family == AF_INET6 ? "option 142" : "option 148");
			if (info->group[i])
				snprintf(s.via, sizeof(s.via), "option 148 list %u",
				         info->group[i] + 1u);
			rc = dots_list_add(l, &s);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
