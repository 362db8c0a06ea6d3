/*
 * A small DHCPv4 codec, enough for DOTS server discovery (RFC 8973 §5.2):
 * it builds DHCPINFORM and DHCPDISCOVER messages that ask for the DOTS,
 * access-domain and domain-name options, and reads a server's reply:
 * the BOOTP header, the magic cookie, option overload (RFC 2132 §9.3)
 * and the concatenation of split options (RFC 3396). Pure functions of
 * their bytes; the sockets live in the caller.
 */
#ifndef DSTM_DHCP4_H
#define DSTM_DHCP4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/wire.h"

#define D4_SERVER_PORT 67
#define D4_CLIENT_PORT 68
#define D4_HDR_LEN     236 /* op .. file, before the magic cookie */
#define D4_COOKIE      0x63825363u
#define D4_MAX_MSG     1500

/* Option codes (RFC 2132, RFC 5986 §3.2, RFC 8973 §5.2). */
enum {
	D4_OPT_PAD = 0,
	D4_OPT_DOMAIN_NAME = 15,
	D4_OPT_OVERLOAD = 52,
	D4_OPT_MSG_TYPE = 53,
	D4_OPT_SERVER_ID = 54,
	D4_OPT_PRL = 55,
	D4_OPT_MAX_SIZE = 57,
	D4_OPT_CLIENT_ID = 61,
	D4_OPT_DOTS_RI = 147,
	D4_OPT_DOTS_ADDRESS = 148,
	D4_OPT_ACCESS_DOMAIN = 213,
	D4_OPT_END = 255,
};

enum d4_msgtype {
	D4_DISCOVER = 1,
	D4_OFFER = 2,
	D4_REQUEST = 3,
	D4_DECLINE = 4,
	D4_ACK = 5,
	D4_NAK = 6,
	D4_RELEASE = 7,
	D4_INFORM = 8,
};

/*
 * A parsed message. The pointers point into the caller's buffer, which
 * must outlive the struct.
 */
struct d4_msg {
	uint8_t op; /* 1 request, 2 reply */
	uint32_t xid;
	uint16_t flags;
	uint32_t ciaddr, yiaddr, siaddr, giaddr; /* host byte order */
	uint8_t chaddr[16];
	uint8_t hlen;
	uint8_t msgtype;  /* option 53, 0 when absent */
	uint8_t overload; /* option 52: 1 file, 2 sname, 3 both */
	const uint8_t *opts;
	size_t optslen;
	const uint8_t *file;  /* 128 bytes */
	const uint8_t *sname; /* 64 bytes */
};

/*
 * Check the header, the cookie and the framing of every option area
 * (an option that runs past its area makes the message malformed).
 * 0, -EBADMSG (malformed) or -EPROTO (not BOOTP/DHCP: bad op or cookie).
 */
int d4_parse(const void *pkt, size_t len, struct d4_msg *m);

/*
 * The value of option `code`, all its instances concatenated in the order
 * RFC 3396 §6 gives: options field, then `file`, then `sname` when
 * overloaded. 0 with *outlen set, -ENOENT when absent, -EMSGSIZE when
 * longer than `cap`.
 */
int d4_opt_get(const struct d4_msg *m, uint8_t code, uint8_t *out, size_t cap, size_t *outlen);
/* Number of instances of `code` (how many pieces RFC 3396 joined). */
unsigned d4_opt_count(const struct d4_msg *m, uint8_t code);

/*
 * Append option `code` with `len` bytes, split into 255-byte instances
 * when longer (RFC 3396 §5). An empty value is one instance of length 0.
 */
void d4_opt_put(struct wcur *w, uint8_t code, const void *data, size_t len);

/* What a client request carries. */
struct d4_req {
	enum d4_msgtype type; /* D4_INFORM or D4_DISCOVER */
	uint32_t xid;
	uint32_t ciaddr; /* our address, for INFORM (host order) */
	uint8_t chaddr[6];
	bool broadcast; /* ask for a broadcast reply (no address yet) */
	uint16_t secs;
	const uint8_t *prl; /* Parameter Request List */
	size_t nprl;
	uint16_t max_size; /* option 57 when not 0 */
};

/* Build a request into buf: 0 with *len set, or -EMSGSIZE / -EINVAL. */
int d4_build(const struct d4_req *r, void *buf, size_t cap, size_t *len);

#endif
