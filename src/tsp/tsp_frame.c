/*
 * The TSP framer and the pure decisions of the line phase (RFC 5572 §4,
 * seed 001 C §4.1, DESIGN §3.1): lines until authentication ends, then
 * "Content-length: N" frames; status lines and their texts; the VERSION,
 * AUTHENTICATE and CAPABILITY lines. No I/O here: bytes in, decisions
 * out, so that tests and fuzzers drive every edge.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/wire.h"
#include "tsp/tsp_int.h"

const char *
tsp_status_text(int code)
{
	switch (code) {
	case TSP_OK:
		return "Success";
	case TSP_AUTH_FAILED:
		return "Authentication failed";
	case TSP_NO_MORE_TUNNELS:
		return "No more tunnels";
	case TSP_UNSUPPORTED_VERSION:
		return "Unsupported client version";
	case TSP_UNSUPPORTED_TUNNEL:
		return "Unsupported tunnel type";
	case TSP_POOL_EXHAUSTED:
		return "Address pool exhausted";
	case TSP_TEP_CONFIG_ERROR:
		return "Configuration error at TEP";
	case TSP_ADDRESS_UNAVAILABLE:
		return "Requested address unavailable";
	case TSP_INVALID_IPV6:
		return "Invalid IPv6 address";
	case TSP_INVALID_IPV4:
		return "Invalid IPv4 address";
	case TSP_INVALID_REQUEST:
		return "Invalid request";
	case TSP_BUSY:
		return "Server busy";
	default:
		if (code >= TSP_REDIRECT)
			return "Redirect";
		return "Error";
	}
}

void
tsp_limits_fill(struct tsp_limits *out, const struct tsp_limits *in)
{
	struct tsp_limits l = {0};

	if (in)
		l = *in;
	if (l.line_max == 0)
		l.line_max = TSP_LINE_MAX_DEFAULT;
	if (l.content_max == 0)
		l.content_max = TSP_CONTENT_MAX_DEFAULT;
	if (l.xml_depth == 0)
		l.xml_depth = TSP_XML_DEPTH_DEFAULT;
	*out = l;
}

size_t
tsp_frame_window(const struct tsp_limits *lim)
{
	/* Skipped bytes, the header or line with its CRLF, the body. */
	return 2 * lim->line_max + 4 + lim->content_max;
}

static void
frame_error(struct tsp_frame *out, size_t *consumed, const char *why)
{
	out->kind = TSP_FRAME_ERROR;
	out->data = NULL;
	out->len = 0;
	out->error = why;
	*consumed = 0;
}

/*
 * Bytes skipped before a frame: NULs that deployed clients send after
 * the AUTHENTICATE line (DESIGN §3.1) and, between content frames, the
 * stray CR/LF some peers add after the XML. Bounded by line_max so that
 * a peer cannot feed us padding for ever.
 */
static size_t
skip_padding(const char *buf, size_t len, bool content_phase)
{
	size_t i = 0;

	while (i < len && (buf[i] == '\0' || (content_phase && (buf[i] == '\r' || buf[i] == '\n'))))
		i++;
	return i;
}

/*
 * The start of both frame readers: past the padding, the first line's
 * newline. NULL when there is none yet (OUT says need more) or when the
 * padding or the line is already too long (OUT says the error); *START is
 * where the line begins.
 */
static const char *
first_line(const struct tsp_limits *lim, bool content_phase, const char *buf, size_t len,
           struct tsp_frame *out, size_t *consumed, size_t *start)
{
	const char *nl;

	out->kind = TSP_FRAME_NEED_MORE;
	out->data = NULL;
	out->len = 0;
	out->error = NULL;
	*consumed = 0;
	*start = skip_padding(buf, len, content_phase);
	if (*start > lim->line_max) {
		frame_error(out, consumed, "too many padding bytes");
		return NULL;
	}
	nl = *start < len ? memchr(buf + *start, '\n', len - *start) : NULL;
	if (nl == NULL) {
		/* line_max bytes, maybe a CR: anything longer cannot end well. */
		if (len - *start > lim->line_max + 1)
			frame_error(out, consumed,
			            content_phase ? "header line too long" : "line too long");
		return NULL;
	}
	return nl;
}

/* Parse "Content-length: N" (name case-insensitive); -1 when malformed. */
static long long
parse_content_length(const char *p, size_t n, size_t max)
{
	static const char name[] = "content-length:";
	size_t i, nl = sizeof(name) - 1;
	unsigned long long v = 0;
	unsigned digits = 0;

	if (n < nl || strncasecmp(p, name, nl) != 0)
		return -1;
	i = nl;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (i < n && p[i] >= '0' && p[i] <= '9') {
		v = v * 10 + (unsigned)(p[i] - '0');
		if (++digits > 9 || v > max)
			return -2;
		i++;
	}
	if (digits == 0)
		return -1;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i != n)
		return -1;
	return (long long)v;
}

void
tsp_frame_next(const struct tsp_limits *lim_in, bool content_phase, const char *buf, size_t len,
               struct tsp_frame *out, size_t *consumed)
{
	struct tsp_limits lim;
	const char *nl;
	size_t start, linelen, hdrlen;
	long long n;

	tsp_limits_fill(&lim, lim_in);
	if (!(nl = first_line(&lim, content_phase, buf, len, out, consumed, &start)))
		return;
	linelen = (size_t)(nl - (buf + start));
	hdrlen = start + linelen + 1;
	if (linelen > 0 && buf[start + linelen - 1] == '\r')
		linelen--;
	if (linelen > lim.line_max) {
		frame_error(out, consumed,
		            content_phase ? "header line too long" : "line too long");
		return;
	}
	if (memchr(buf + start, '\0', linelen) != NULL ||
	    memchr(buf + start, '\r', linelen) != NULL) {
		frame_error(out, consumed, "control byte inside a line");
		return;
	}
	if (!content_phase) {
		out->kind = TSP_FRAME_LINE;
		out->data = buf + start;
		out->len = linelen;
		*consumed = hdrlen;
		return;
	}
	/* RFC 5572 §4.2: "Content-length: N" CRLF then N bytes. */
	n = parse_content_length(buf + start, linelen, lim.content_max);
	if (n == -2) {
		frame_error(out, consumed, "Content-length over the limit");
		return;
	}
	if (n < 0) {
		frame_error(out, consumed, "expected a Content-length header");
		return;
	}
	if (len - hdrlen < (size_t)n)
		return;
	out->kind = TSP_FRAME_CONTENT;
	out->data = buf + hdrlen;
	out->len = (size_t)n;
	*consumed = hdrlen + (size_t)n;
}

int
tsp_split_status(const char *body, size_t len, int *code, const char **xml, size_t *xmllen)
{
	size_t i = 0, eol;
	int v = 0;
	const char *nl;

	while (i < len && i < 9 && body[i] >= '0' && body[i] <= '9')
		v = v * 10 + (body[i++] - '0');
	if (i == 0 || i >= 9 || (i < len && body[i] != ' ' && body[i] != '\r' && body[i] != '\n'))
		return -EINVAL;
	nl = memchr(body, '\n', len);
	eol = nl ? (size_t)(nl - body) + 1 : len;
	*code = v;
	*xml = body + eol;
	*xmllen = len - eol;
	return 0;
}

/* ---- line phase ---- */

int
tsp_parse_version(const char *line, size_t len, char *ver, size_t verlen)
{
	static const char kw[] = "VERSION=";
	size_t kl = sizeof(kw) - 1, n;

	if (len < kl || strncasecmp(line, kw, kl) != 0)
		return -EINVAL;
	n = len - kl;
	while (n > 0 && (line[kl + n - 1] == ' ' || line[kl + n - 1] == '\t'))
		n--;
	if (n == 0 || n >= verlen)
		return -EINVAL;
	memcpy(ver, line + kl, n);
	ver[n] = '\0';
	return 0;
}

bool
tsp_version_supported(const char *ver)
{
	/* DESIGN §3.1: the DSTM profile's 1.0 and deployed clients' 2.0.x. */
	static const char *const ok[] = {"1.0", "2.0.0", "2.0.1", "2.0.2"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(ver, ok[i]) == 0)
			return true;
	return false;
}

int
tsp_parse_authenticate(const char *line, size_t len, char *mech, size_t mechlen)
{
	static const char kw[] = "AUTHENTICATE ";
	size_t kl = sizeof(kw) - 1, i, n = 0;

	if (len <= kl || strncasecmp(line, kw, kl) != 0)
		return -EINVAL;
	i = kl;
	while (i < len && line[i] == ' ')
		i++;
	while (i < len && line[i] != ' ' && line[i] != '\t') {
		unsigned char ch = (unsigned char)line[i++];

		if (!(isalnum(ch) || ch == '-' || ch == '_') || n + 1 >= mechlen)
			return -EINVAL;
		mech[n++] = (char)toupper(ch);
	}
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (n == 0 || i != len)
		return -EINVAL;
	mech[n] = '\0';
	return 0;
}

bool
tsp_capability_offers(const char *line, size_t len, const char *mech)
{
	static const char kw[] = "CAPABILITY";
	size_t kl = sizeof(kw) - 1, i, ml = strlen(mech);

	if (len < kl || strncasecmp(line, kw, kl) != 0)
		return false;
	i = kl;
	while (i < len) {
		size_t s, e;

		while (i < len && line[i] == ' ')
			i++;
		s = i;
		while (i < len && line[i] != ' ')
			i++;
		e = i;
		if (e - s == 5 + ml && strncasecmp(line + s, "AUTH=", 5) == 0 &&
		    strncasecmp(line + s + 5, mech, ml) == 0)
			return true;
	}
	return false;
}

bool
tsp_line_is_status(const char *line, size_t len, int *code)
{
	size_t i = 0;
	int v = 0;

	if ((len == 2 || (len > 2 && line[2] == ' ')) && strncasecmp(line, "OK", 2) == 0) {
		*code = TSP_OK;
		return true;
	}
	/* base64 holds no space: "NNN text" is a status. */
	while (i < len && i < 9 && line[i] >= '0' && line[i] <= '9')
		v = v * 10 + (line[i++] - '0');
	if ((i == 3 && len == 3) || (i > 0 && i < 9 && i < len && line[i] == ' ')) {
		*code = v;
		return true;
	}
	return false;
}

void
tsp_frame_raw_line(const struct tsp_limits *lim_in, const char *buf, size_t len,
                   struct tsp_frame *out, size_t *consumed)
{
	struct tsp_limits lim;
	const char *nl;
	size_t start, linelen;

	tsp_limits_fill(&lim, lim_in);
	if (!(nl = first_line(&lim, false, buf, len, out, consumed, &start)))
		return;
	linelen = (size_t)(nl - (buf + start));
	*consumed = start + linelen + 1;
	if (linelen > 0 && buf[start + linelen - 1] == '\r')
		linelen--;
	if (linelen > lim.line_max || memchr(buf + start, '\r', linelen) != NULL) {
		frame_error(out, consumed,
		            linelen > lim.line_max ? "line too long"
		                                   : "control byte inside a line");
		return;
	}
	out->kind = TSP_FRAME_LINE;
	out->data = buf + start;
	out->len = linelen;
}

/*
 * RFC 5572 §3 (TSP over UDP): every message rides behind
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  0xF  |                Sequence Number (28 bits)              |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                          Timestamp                            |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                     Message (0 or more bytes)                 |
 *
 * The 0xF nibble tells a signalling datagram from tunnelled data. The
 * server's answer repeats the request's sequence number and timestamp:
 * the client matches on the first and measures its RTT with the second.
 */
int
tsp_udp_parse(const void *dgram, size_t len, struct tsp_udp_hdr *h, const char **msg,
              size_t *msglen)
{
	struct cur c = cur_make(dgram, len);
	uint32_t w0 = cur_u32(&c);
	uint32_t ts = cur_u32(&c);

	if (c.err)
		return -EMSGSIZE;
	if ((w0 >> 28) != 0xf)
		return -EPROTO;
	h->seq = w0 & 0x0fffffffu;
	h->timestamp = ts;
	*msg = (const char *)c.p;
	*msglen = c.left;
	return 0;
}

void
tsp_udp_header(const struct tsp_udp_hdr *h, uint8_t out[TSP_UDP_HDR_LEN])
{
	uint32_t w0 = 0xf0000000u | (h->seq & 0x0fffffffu);

	out[0] = (uint8_t)(w0 >> 24);
	out[1] = (uint8_t)(w0 >> 16);
	out[2] = (uint8_t)(w0 >> 8);
	out[3] = (uint8_t)w0;
	out[4] = (uint8_t)(h->timestamp >> 24);
	out[5] = (uint8_t)(h->timestamp >> 16);
	out[6] = (uint8_t)(h->timestamp >> 8);
	out[7] = (uint8_t)h->timestamp;
}
