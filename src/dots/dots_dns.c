/*
 * A bounded DNS message reader and query writer for DNS-SD (RFC 6763)
 * and mDNS (RFC 6762). c-ares' ares_parse_*_reply functions read one
 * record type from the answer section only, while an mDNS response
 * carries the PTR in the answers and the SRV, TXT and addresses in the
 * additional section: so DNS-SD and mDNS answers are read here, and the
 * unicast S-NAPTR/SRV/A/AAAA answers by c-ares (dots_resolve.c).
 *
 *   header: id(2) flags(2) qdcount(2) ancount(2) nscount(2) arcount(2)
 *   RR:     name  type(2) class(2) ttl(4) rdlength(2) rdata
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dhcp6/d6.h"
#include "dots/dots.h"

#define DNS_MAX_HOPS 64 /* compression pointers followed for one name */

/*
 * Read a possibly compressed name at `*off` into dotted text; *off moves
 * past the name as it appears in place. Pointers must point strictly
 * backwards of the place they are read from, so no loop is possible, and
 * the hop count bounds the work anyway.
 */
static int
read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t cap)
{
	size_t pos = *off, o = 0, wire = 0, end = 0;
	unsigned hops = 0;
	bool jumped = false;

	out[0] = '\0';
	for (;;) {
		uint8_t ll;

		if (pos >= len)
			return -EBADMSG;
		ll = msg[pos];
		if ((ll & 0xc0) == 0xc0) {
			size_t ptr;

			if (pos + 1 >= len || ++hops > DNS_MAX_HOPS)
				return -EBADMSG;
			ptr = (size_t)(ll & 0x3f) << 8 | msg[pos + 1];
			if (ptr >= pos)
				return -EBADMSG;
			if (!jumped)
				end = pos + 2;
			jumped = true;
			pos = ptr;
			continue;
		}
		if (ll & 0xc0)
			return -EBADMSG; /* 0x40 and 0x80 label types are obsolete */
		wire += 1 + (size_t)ll;
		if (wire > 255)
			return -EBADMSG;
		if (ll == 0) {
			pos++;
			break;
		}
		if (pos + 1 + ll > len)
			return -EBADMSG;
		if (o + (o ? 1 : 0) + ll + 1 > cap)
			return -EBADMSG;
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < ll; i++) {
			uint8_t ch = msg[pos + 1 + i];

			/* Instance names are UTF-8 (RFC 6763 §4.1.1): keep them, but no dots, NULs or controls. */
			if (ch < 0x20 || ch == '.' || ch == 0x7f)
				ch = '?';
			out[o++] = (char)ch;
		}
		out[o] = '\0';
		pos += 1 + ll;
	}
	*off = jumped ? end : pos;
	return 0;
}

int
dots_dns_parse(const void *msgp, size_t len, struct dots_dns_msg *hdr, struct dots_rr *rr,
               size_t cap, struct dots_dns_stats *st)
{
	const uint8_t *msg = msgp;
	struct cur c = cur_make(msg, len);
	uint16_t qd, an, ns, ar;
	size_t off, total;
	char tmp[DOTS_NAME_MAX];

	memset(hdr, 0, sizeof(*hdr));
	hdr->id = cur_u16(&c);
	hdr->flags = cur_u16(&c);
	qd = cur_u16(&c);
	an = cur_u16(&c);
	ns = cur_u16(&c);
	ar = cur_u16(&c);
	if (c.err) {
		st->bad_message++;
		return -EBADMSG;
	}
	hdr->response = hdr->flags & 0x8000;
	hdr->rcode = hdr->flags & 0xf;
	off = 12;
	/* Each question takes at least 5 bytes: a count beyond the message fails fast. */
	for (unsigned i = 0; i < qd; i++) {
		if (read_name(msg, len, &off, tmp, sizeof(tmp)) < 0 || off + 4 > len) {
			st->bad_message++;
			return -EBADMSG;
		}
		off += 4;
	}
	total = (size_t)an + ns + ar;
	for (size_t i = 0; i < total; i++) {
		struct dots_rr r;
		uint16_t type, klass, rdlen;
		size_t rd;

		memset(&r, 0, sizeof(r));
		if (read_name(msg, len, &off, r.name, sizeof(r.name)) < 0) {
			st->bad_name++;
			return -EBADMSG;
		}
		if (off + 10 > len) {
			st->bad_record++;
			return -EBADMSG;
		}
		c = cur_make(msg + off, 10);
		type = cur_u16(&c);
		klass = cur_u16(&c) & 0x7fff; /* RFC 6762 §10.2: cache-flush bit */
		r.ttl = cur_u32(&c);
		rdlen = cur_u16(&c);
		off += 10;
		if (off + rdlen > len) {
			st->bad_record++;
			return -EBADMSG;
		}
		rd = off;
		off += rdlen;
		r.type = type;
		if (klass != 1) {
			st->skipped++;
			continue;
		}
		switch (type) {
		case DOTS_T_A:
			if (rdlen != 4) {
				st->bad_record++;
				return -EBADMSG;
			}
			r.addr.family = AF_INET;
			memcpy(&r.addr.v4, msg + rd, 4);
			break;
		case DOTS_T_AAAA:
			if (rdlen != 16) {
				st->bad_record++;
				return -EBADMSG;
			}
			r.addr.family = AF_INET6;
			memcpy(&r.addr.v6, msg + rd, 16);
			break;
		case DOTS_T_PTR: {
			size_t p = rd;

			/* The name may be compressed but must end inside its rdata. */
			if (read_name(msg, rd + rdlen, &p, r.ptr, sizeof(r.ptr)) < 0 ||
			    p != rd + rdlen) {
				st->bad_name++;
				return -EBADMSG;
			}
			break;
		}
		case DOTS_T_SRV: {
			size_t p = rd + 6;

			if (rdlen < 7) {
				st->bad_record++;
				return -EBADMSG;
			}
			c = cur_make(msg + rd, 6);
			r.srv.prio = cur_u16(&c);
			r.srv.weight = cur_u16(&c);
			r.srv.port = cur_u16(&c);
			/* RFC 2782: the target is not compressed, but mDNS responders do (RFC 6762 §18.14). */
			if (read_name(msg, rd + rdlen, &p, r.srv.target, sizeof(r.srv.target)) <
			        0 ||
			    p != rd + rdlen) {
				st->bad_name++;
				return -EBADMSG;
			}
			if (r.srv.target[0] == '\0')
				strcpy(r.srv.target, ".");
			break;
		}
		default:
			st->skipped++;
			continue;
		}
		if (hdr->nrr >= cap) {
			st->truncated++;
			continue;
		}
		rr[hdr->nrr++] = r;
	}
	return 0;
}

int
dots_dns_build_query(uint16_t id, const char *name, uint16_t qtype, bool qu, bool rd, void *buf,
                     size_t cap, size_t *len)
{
	struct wcur w = wcur_make(buf, cap);
	int rc;

	*len = 0;
	w_u16(&w, id);
	w_u16(&w, rd ? 0x0100 : 0);
	w_u16(&w, 1);
	w_u16(&w, 0);
	w_u16(&w, 0);
	w_u16(&w, 0);
	if (w.err)
		return -EMSGSIZE;
	if (!dots_name_valid(name))
		return -EINVAL;
	/* A valid name fails to encode only for want of room. */
	rc = d6_name_encode(name, w.p, w.left);
	if (rc < 0)
		return -EMSGSIZE;
	(void)w_reserve(&w, (size_t)rc);
	w_u16(&w, qtype);
	w_u16(&w, (uint16_t)(1 | (qu ? 0x8000 : 0)));
	if (w.err)
		return -EMSGSIZE;
	*len = w_len(&w);
	return 0;
}

/* Append one server for each address of `target` of the wanted family. */
static size_t
add_target(const struct dots_rr *rr, size_t n, const struct dots_srv *srv, const char *instance,
           enum dots_transport t, enum dots_method method, const char *ifname, int family,
           struct dots_list *l)
{
	size_t added = 0;

	for (size_t i = 0; i < n; i++) {
		struct dots_server s = {.method = method, .transport = t, .family = family};

		if ((rr[i].type != DOTS_T_A && rr[i].type != DOTS_T_AAAA) ||
		    !dots_name_eq(rr[i].name, srv->target))
			continue;
		if (family != AF_UNSPEC && rr[i].addr.family != family)
			continue;
		if (dots_addr_discard(&rr[i].addr))
			continue;
		s.addr = rr[i].addr;
		s.port = srv->port;
		if (family == AF_UNSPEC)
			s.family = rr[i].addr.family;
		snprintf(s.ifname, sizeof(s.ifname), "%s", ifname ? ifname : "");
		snprintf(s.ri, sizeof(s.ri), "%s", srv->target);
		snprintf(s.via, sizeof(s.via), "%s", instance);
		if (dots_list_add(l, &s) == 0)
			added++;
	}
	return added;
}

size_t
dots_dnssd_collect(const struct dots_rr *rr, size_t n, const char *service, enum dots_transport t,
                   enum dots_method method, const char *ifname, int family, uint32_t (*rnd)(void *),
                   void *rctx, struct dots_list *l, size_t *incomplete)
{
	size_t added = 0;

	*incomplete = 0;
	for (size_t i = 0; i < n; i++) {
		struct dots_srv srv[16];
		size_t ns = 0, got = 0;

		if (rr[i].type != DOTS_T_PTR || !dots_name_eq(rr[i].name, service))
			continue;
		/* The instance's SRV records (RFC 6763 §5). */
		for (size_t j = 0; j < n && ns < 16; j++)
			if (rr[j].type == DOTS_T_SRV && dots_name_eq(rr[j].name, rr[i].ptr))
				srv[ns++] = rr[j].srv;
		ns = dots_srv_order(srv, ns, rnd, rctx);
		for (size_t k = 0; k < ns; k++)
			got += add_target(rr, n, &srv[k], rr[i].ptr, t, method, ifname, family, l);
		if (got == 0)
			(*incomplete)++;
		added += got;
	}
	return added;
}
