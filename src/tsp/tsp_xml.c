/*
 * The <tunnel> document of TSP (RFC 5572 §4.3, seed 001 C §3, DESIGN
 * §3.1) parsed with expat into struct tsp_tunnel, and formatted back.
 * The parser is defensive: no DTD, no entity declarations (so no billion
 * laughs and no external entities), bounded depth and text, every address
 * validated; elements and attributes it does not know are ignored.
 */
#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/addr.h"
#include "tsp/tsp_int.h"

enum xml_ctx {
	CTX_NONE, /* inside something we ignore */
	CTX_TUNNEL,
	CTX_CLIENT,
	CTX_SERVER,
	CTX_BROKER,
	CTX_ROUTER,
	CTX_KEEPALIVE,
	CTX_ADDRESS, /* text collected */
};

enum addr_kind { AK_NONE, AK_V4, AK_V6, AK_DN };

#define XML_STACK_MAX 64

struct xml_state {
	XML_Parser p;
	struct tsp_tunnel *t;
	unsigned depth, max_depth;
	enum xml_ctx stack[XML_STACK_MAX];
	bool seen_tunnel;
	/* the <address> being read */
	enum addr_kind ak;
	enum xml_ctx owner; /* CLIENT, SERVER or BROKER */
	char text[TSP_DN_MAX];
	size_t textlen;
	/* first error wins */
	const char *err;
	enum tsp_xml_errclass cls;
};

static void
fail(struct xml_state *st, enum tsp_xml_errclass cls, const char *why)
{
	if (st->err == NULL) {
		st->err = why;
		st->cls = cls;
	}
	XML_StopParser(st->p, XML_FALSE);
}

static const char *
attr(const XML_Char **atts, const char *name)
{
	for (unsigned i = 0; atts[i] != NULL && atts[i + 1] != NULL && i < 2 * 64; i += 2)
		if (strcmp(atts[i], name) == 0)
			return atts[i + 1];
	return NULL;
}

static bool
parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0;
	unsigned n = 0;

	while (*s == ' ')
		s++;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned)(*s - '0');
		if (++n > 10 || v > max)
			return false;
	}
	while (*s == ' ')
		s++;
	if (n == 0 || *s != '\0')
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool
parse_action(const char *s, enum tsp_action *a)
{
	static const struct {
		const char *name;
		enum tsp_action a;
	} names[] = {
	    {"create", TSP_ACTION_CREATE}, {"delete", TSP_ACTION_DELETE}, {"info", TSP_ACTION_INFO},
	    {"accept", TSP_ACTION_ACCEPT}, {"reject", TSP_ACTION_REJECT},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0) {
			*a = names[i].a;
			return true;
		}
	return false;
}

static struct tsp_endpoint *
endpoint_of(struct xml_state *st, enum xml_ctx c)
{
	return c == CTX_CLIENT ? &st->t->client : c == CTX_SERVER ? &st->t->server : NULL;
}

static enum xml_ctx
start_tunnel(struct xml_state *st, const XML_Char **atts)
{
	const char *a = attr(atts, "action"), *type = attr(atts, "type"), *lt;
	uint32_t v;

	if (st->seen_tunnel) {
		fail(st, TSP_XML_ERR_SYNTAX, "nested <tunnel>");
		return CTX_NONE;
	}
	st->seen_tunnel = true;
	if (a == NULL || !parse_action(a, &st->t->action)) {
		fail(st, TSP_XML_ERR_SYNTAX, "<tunnel> without a known action");
		return CTX_NONE;
	}
	if (type != NULL) {
		if (strlen(type) >= sizeof(st->t->type)) {
			fail(st, TSP_XML_ERR_SYNTAX, "tunnel type too long");
			return CTX_NONE;
		}
		strcpy(st->t->type, type);
	}
	lt = attr(atts, "lifetime");
	if (lt != NULL) {
		if (!parse_u32(lt, UINT32_MAX, &v)) {
			fail(st, TSP_XML_ERR_SYNTAX, "bad lifetime");
			return CTX_NONE;
		}
		st->t->lifetime = v;
	}
	return CTX_TUNNEL;
}

static enum xml_ctx
start_keepalive(struct xml_state *st, const XML_Char **atts)
{
	const char *iv = attr(atts, "interval");
	uint32_t v;

	if (iv == NULL)
		return CTX_KEEPALIVE;
	if (!parse_u32(iv, UINT32_MAX, &v)) {
		fail(st, TSP_XML_ERR_SYNTAX, "bad keepalive interval");
		return CTX_NONE;
	}
	st->t->has_keepalive = true;
	st->t->keepalive_interval = v;
	return CTX_KEEPALIVE;
}

static enum xml_ctx
start_address(struct xml_state *st, enum xml_ctx parent, const XML_Char **atts)
{
	const char *type = attr(atts, "type");

	st->ak = AK_NONE;
	if (type == NULL)
		st->ak = AK_NONE;
	else if (strcasecmp(type, "ipv4") == 0)
		st->ak = AK_V4;
	else if (strcasecmp(type, "ipv6") == 0)
		st->ak = AK_V6;
	else if (strcasecmp(type, "dn") == 0)
		st->ak = AK_DN;
	if (st->ak == AK_NONE)
		return CTX_NONE; /* an address type we do not know: ignored */
	st->owner = parent;
	st->textlen = 0;
	return CTX_ADDRESS;
}

static void
start_ports(struct xml_state *st, const XML_Char **atts)
{
	const char *s = attr(atts, "start"), *e = attr(atts, "end");
	uint32_t lo, hi;

	if (s == NULL || e == NULL || !parse_u32(s, 65535, &lo) || !parse_u32(e, 65535, &hi) ||
	    lo == 0 || lo > hi) {
		fail(st, TSP_XML_ERR_IPV4, "bad <ports> range");
		return;
	}
	st->t->client.has_ports = true;
	st->t->client.port_lo = (uint16_t)lo;
	st->t->client.port_hi = (uint16_t)hi;
	s = attr(atts, "psid-length");
	if (s) {
		const char *o = attr(atts, "psid-offset"), *v = attr(atts, "psid");
		uint32_t off, len, psid;

		/* RFC 7597 §5.1: a + k <= 16, the PSID fits in k bits. */
		if (!o || !v || !parse_u32(o, 15, &off) || !parse_u32(s, 15, &len) ||
		    !parse_u32(v, 65535, &psid) || len == 0 || off + len > 16 || psid >> len) {
			fail(st, TSP_XML_ERR_IPV4, "bad <ports> port set");
			return;
		}
		st->t->client.psid_offset = (uint8_t)off;
		st->t->client.psid_len = (uint8_t)len;
		st->t->client.psid = (uint16_t)psid;
	}
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xml_state *st = ud;
	enum xml_ctx parent = st->depth ? st->stack[st->depth - 1] : CTX_NONE, c = CTX_NONE;

	if (st->depth >= st->max_depth || st->depth >= XML_STACK_MAX) {
		fail(st, TSP_XML_ERR_SYNTAX, "XML nested too deeply");
		return;
	}
	if (st->depth == 0) {
		if (strcmp(name, "tunnel") != 0) {
			fail(st, TSP_XML_ERR_SYNTAX, "document is not a <tunnel>");
			return;
		}
		c = start_tunnel(st, atts);
	} else if (parent == CTX_TUNNEL) {
		if (strcmp(name, "client") == 0) {
			c = CTX_CLIENT;
			st->t->client.present = true;
		} else if (strcmp(name, "server") == 0) {
			c = CTX_SERVER;
			st->t->server.present = true;
		} else if (strcmp(name, "broker") == 0) {
			c = CTX_BROKER;
		} else if (strcmp(name, "keepalive") == 0) {
			c = start_keepalive(st, atts);
		} else if (strcmp(name, "router") == 0) {
			c = CTX_ROUTER;
		}
	} else if (parent == CTX_CLIENT || parent == CTX_SERVER || parent == CTX_BROKER) {
		if (strcmp(name, "address") == 0)
			c = start_address(st, parent, atts);
		else if (parent == CTX_CLIENT && strcmp(name, "ports") == 0)
			start_ports(st, atts);
		/* RFC 5572 §4.3 places keepalive and router inside <client>. */
		else if (parent == CTX_CLIENT && strcmp(name, "keepalive") == 0)
			c = start_keepalive(st, atts);
		else if (parent == CTX_CLIENT && strcmp(name, "router") == 0)
			c = CTX_ROUTER;
	} else if (parent == CTX_KEEPALIVE && strcmp(name, "address") == 0) {
		/* RFC 5572 §4.3: where the client sends its keepalives */
		c = start_address(st, parent, atts);
	} else if (parent == CTX_ROUTER && strcmp(name, "prefix") == 0) {
		const char *l = attr(atts, "length");
		uint32_t v;

		if (l != NULL) {
			if (!parse_u32(l, 128, &v)) {
				fail(st, TSP_XML_ERR_SYNTAX, "bad prefix length");
				return;
			}
			st->t->has_router = true;
			st->t->router_prefix_len = v;
		}
	}
	st->stack[st->depth++] = c;
}

static void
trim(char *s, size_t *len)
{
	size_t b = 0, e = *len;

	while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n'))
		b++;
	while (e > b &&
	       (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
		e--;
	memmove(s, s + b, e - b);
	*len = e - b;
	s[*len] = '\0';
}

static void
end_address(struct xml_state *st)
{
	struct tsp_endpoint *ep = endpoint_of(st, st->owner);
	struct in6_addr a6;
	uint32_t a4;
	size_t n = st->textlen;
	char *s = st->text;

	trim(s, &n);
	if (st->ak == AK_V6) {
		if (!addr_parse_v6(s, &a6)) {
			fail(st, TSP_XML_ERR_IPV6, "invalid IPv6 address");
			return;
		}
		if (ep != NULL) {
			/* seed 001 C §3.2: link-local and global are both sent. */
			bool ll = a6.s6_addr[0] == 0xfe && (a6.s6_addr[1] & 0xc0) == 0x80;

			if (ll && !ep->has_v6ll) {
				ep->v6ll = a6;
				ep->has_v6ll = true;
			} else if (!ll && !ep->has_v6) {
				ep->v6 = a6;
				ep->has_v6 = true;
			}
		}
	} else if (st->ak == AK_V4) {
		if (!addr_parse_v4(s, &a4)) {
			fail(st, TSP_XML_ERR_IPV4, "invalid IPv4 address");
			return;
		}
		if (ep != NULL && !ep->has_v4) {
			ep->v4 = a4;
			ep->has_v4 = true;
		}
		if (st->owner == CTX_KEEPALIVE && !st->t->has_keepalive_v4) {
			st->t->keepalive_v4 = a4;
			st->t->has_keepalive_v4 = true;
		}
	} else if (st->ak == AK_DN) {
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
				fail(st, TSP_XML_ERR_SYNTAX, "control character in a name");
				return;
			}
		if (n == 0) {
			fail(st, TSP_XML_ERR_SYNTAX, "empty name");
			return;
		}
		if (ep != NULL && !ep->has_dn) {
			memcpy(ep->dn, s, n + 1);
			ep->has_dn = true;
		}
	}
	if (st->owner == CTX_BROKER && st->t->nbrokers < TSP_MAX_BROKERS)
		memcpy(st->t->brokers[st->t->nbrokers++], s, n + 1);
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	struct xml_state *st = ud;

	(void)name;
	if (st->depth == 0)
		return;
	st->depth--;
	if (st->stack[st->depth] == CTX_ADDRESS)
		end_address(st);
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
	struct xml_state *st = ud;

	if (st->depth == 0 || st->stack[st->depth - 1] != CTX_ADDRESS || len <= 0)
		return;
	if (st->textlen + (size_t)len >= sizeof(st->text)) {
		fail(st, TSP_XML_ERR_SYNTAX, "address text too long");
		return;
	}
	memcpy(st->text + st->textlen, s, (size_t)len);
	st->textlen += (size_t)len;
}

static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
           int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	fail(ud, TSP_XML_ERR_SYNTAX, "DOCTYPE refused");
}

static void XMLCALL
on_entity_decl(void *ud, const XML_Char *name, int is_param, const XML_Char *value, int vlen,
               const XML_Char *base, const XML_Char *sysid, const XML_Char *pubid,
               const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)vlen, (void)base, (void)sysid;
	(void)pubid, (void)notation;
	fail(ud, TSP_XML_ERR_SYNTAX, "entity declaration refused");
}

static int XMLCALL
on_external_entity(XML_Parser p, const XML_Char *context, const XML_Char *base,
                   const XML_Char *sysid, const XML_Char *pubid)
{
	(void)p, (void)context, (void)base, (void)sysid, (void)pubid;
	return XML_STATUS_ERROR;
}

int
tsp_xml_parse_ex(const char *xml, size_t len, unsigned max_depth, struct tsp_tunnel *out, char *err,
                 size_t errlen, enum tsp_xml_errclass *cls)
{
	struct xml_state st;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	st.t = out;
	st.max_depth = max_depth ? max_depth : TSP_XML_DEPTH_DEFAULT;
	if (cls)
		*cls = TSP_XML_ERR_NONE;
	if (len > INT32_MAX) {
		snprintf(err, errlen, "document too large");
		if (cls)
			*cls = TSP_XML_ERR_SYNTAX;
		return -EINVAL;
	}
	st.p = XML_ParserCreate("UTF-8");
	if (st.p == NULL) {
		snprintf(err, errlen, "out of memory");
		if (cls)
			*cls = TSP_XML_ERR_SYNTAX;
		return -ENOMEM;
	}
	XML_SetUserData(st.p, &st);
	XML_SetElementHandler(st.p, on_start, on_end);
	XML_SetCharacterDataHandler(st.p, on_text);
	XML_SetStartDoctypeDeclHandler(st.p, on_doctype);
	XML_SetEntityDeclHandler(st.p, on_entity_decl);
	XML_SetExternalEntityRefHandler(st.p, on_external_entity);
	XML_SetParamEntityParsing(st.p, XML_PARAM_ENTITY_PARSING_NEVER);

	if (XML_Parse(st.p, xml, (int)len, XML_TRUE) == XML_STATUS_ERROR && st.err == NULL) {
		st.err = XML_ErrorString(XML_GetErrorCode(st.p));
		st.cls = TSP_XML_ERR_SYNTAX;
	}
	if (st.err == NULL && !st.seen_tunnel) {
		st.err = "no <tunnel>";
		st.cls = TSP_XML_ERR_SYNTAX;
	}
	if (st.err != NULL) {
		snprintf(err, errlen, "%s (line %lu)", st.err,
		         (unsigned long)XML_GetCurrentLineNumber(st.p));
		if (cls)
			*cls = st.cls;
		rc = -EINVAL;
	}
	XML_ParserFree(st.p);
	return rc;
}

int
tsp_xml_parse(const char *xml, size_t len, unsigned max_depth, struct tsp_tunnel *out, char *err,
              size_t errlen)
{
	return tsp_xml_parse_ex(xml, len, max_depth, out, err, errlen, NULL);
}

/* ---- formatting ---- */

struct xbuf {
	char *p;
	size_t len, cap;
	bool err;
};

static void
xb_put(struct xbuf *b, const char *s, size_t n)
{
	if (b->err || b->cap - b->len <= n) {
		b->err = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
xb_str(struct xbuf *b, const char *s)
{
	xb_put(b, s, strlen(s));
}

/* Text and attribute values are escaped: a dn comes from a peer. */
static void
xb_esc(struct xbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			xb_str(b, "&amp;");
			break;
		case '<':
			xb_str(b, "&lt;");
			break;
		case '>':
			xb_str(b, "&gt;");
			break;
		case '"':
			xb_str(b, "&quot;");
			break;
		case '\'':
			xb_str(b, "&apos;");
			break;
		default:
			xb_put(b, s, 1);
		}
	}
}

static void
xb_fmt(struct xbuf *b, const char *fmt, unsigned long v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), fmt, v);

	xb_put(b, tmp, (size_t)n);
}

static void
xb_addr(struct xbuf *b, const char *type, const char *text)
{
	xb_str(b, "<address type=\"");
	xb_str(b, type);
	xb_str(b, "\">");
	xb_esc(b, text);
	xb_str(b, "</address>");
}

/* RFC 5572 §4.3: <keepalive interval="30"><address type="ipv4">…</address></keepalive> */
static void
fmt_keepalive(struct xbuf *b, const struct tsp_tunnel *t)
{
	char a[ADDR_STRLEN];

	xb_fmt(b, "<keepalive interval=\"%lu\"", t->keepalive_interval);
	if (!t->has_keepalive_v4) {
		xb_str(b, "/>");
		return;
	}
	xb_str(b, ">");
	xb_addr(b, "ipv4", addr_fmt_v4(t->keepalive_v4, a));
	xb_str(b, "</keepalive>");
}

static void
fmt_endpoint(struct xbuf *b, const char *name, const struct tsp_endpoint *ep,
             const struct tsp_tunnel *t, bool extras)
{
	char a[ADDR_STRLEN];

	xb_str(b, "<");
	xb_str(b, name);
	xb_str(b, ">");
	if (ep->has_v4)
		xb_addr(b, "ipv4", addr_fmt_v4(ep->v4, a));
	if (ep->has_v6)
		xb_addr(b, "ipv6", addr_fmt_v6(&ep->v6, a));
	if (ep->has_v6ll)
		xb_addr(b, "ipv6", addr_fmt_v6(&ep->v6ll, a));
	if (ep->has_dn)
		xb_addr(b, "dn", ep->dn);
	if (ep->has_ports) {
		xb_fmt(b, "<ports start=\"%lu\"", ep->port_lo);
		xb_fmt(b, " end=\"%lu\"", ep->port_hi);
		if (ep->psid_len) {
			xb_fmt(b, " psid-offset=\"%lu\"", ep->psid_offset);
			xb_fmt(b, " psid-length=\"%lu\"", ep->psid_len);
			xb_fmt(b, " psid=\"%lu\"", ep->psid);
		}
		xb_str(b, "/>");
	}
	if (extras && t->has_keepalive)
		fmt_keepalive(b, t);
	if (extras && t->has_router)
		xb_fmt(b, "<router><prefix length=\"%lu\"/></router>", t->router_prefix_len);
	xb_str(b, "</");
	xb_str(b, name);
	xb_str(b, ">");
}

int
tsp_xml_format(const struct tsp_tunnel *t, char *buf, size_t len)
{
	static const char *const actions[] = {
	    [TSP_ACTION_CREATE] = "create", [TSP_ACTION_DELETE] = "delete",
	    [TSP_ACTION_INFO] = "info",     [TSP_ACTION_ACCEPT] = "accept",
	    [TSP_ACTION_REJECT] = "reject",
	};
	struct xbuf b = {.p = buf, .len = 0, .cap = len, .err = len == 0};
	char type[sizeof(t->type) + 1];
	bool extras_in_client = t->client.present;

	if ((unsigned)t->action >= sizeof(actions) / sizeof(actions[0]))
		return -EINVAL;
	memcpy(type, t->type, sizeof(t->type));
	type[sizeof(t->type)] = '\0';
	xb_str(&b, "<tunnel action=\"");
	xb_str(&b, actions[t->action]);
	xb_str(&b, "\" type=\"");
	xb_esc(&b, type[0] ? type : "v4v6");
	xb_str(&b, "\"");
	if (t->lifetime)
		xb_fmt(&b, " lifetime=\"%lu\"", t->lifetime);
	xb_str(&b, ">");
	/* DESIGN §3.1 reply layout: <server> then <client>. */
	if (t->server.present)
		fmt_endpoint(&b, "server", &t->server, t, false);
	if (t->client.present)
		fmt_endpoint(&b, "client", &t->client, t, true);
	if (!extras_in_client && t->has_keepalive)
		fmt_keepalive(&b, t);
	if (!extras_in_client && t->has_router)
		xb_fmt(&b, "<router><prefix length=\"%lu\"/></router>", t->router_prefix_len);
	if (t->nbrokers) {
		xb_str(&b, "<broker>");
		for (unsigned i = 0; i < t->nbrokers && i < TSP_MAX_BROKERS; i++) {
			char name[TSP_DN_MAX];
			struct in6_addr a6;
			uint32_t a4;

			memcpy(name, t->brokers[i], TSP_DN_MAX);
			name[TSP_DN_MAX - 1] = '\0';
			xb_addr(&b,
			        addr_parse_v4(name, &a4)   ? "ipv4"
			        : addr_parse_v6(name, &a6) ? "ipv6"
			                                   : "dn",
			        name);
		}
		xb_str(&b, "</broker>");
	}
	xb_str(&b, "</tunnel>\r\n");
	if (b.err)
		return -ENOSPC;
	return (int)b.len;
}
