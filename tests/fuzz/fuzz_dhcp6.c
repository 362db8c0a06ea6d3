/*
 * libFuzzer harness of the DHCPv6 parsers: relay unwrapping, message
 * parsing with the DSTM options, and the whole server engine (parse,
 * validate, authenticate, serve, build) over a small in-memory lease
 * manager, so that any crash or sanitizer report in what a client can
 * send shows up. The client engine's input path is driven too, as an
 * lwB4 (RFC 7598 options) every other input, and the bytes are read as
 * the body of an OPTION_S46_CONT_LW.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "dhcp6/d6.h"

static int
fz_acquire(void *arg, const char *id, const struct in6_addr *v6, bool authed, uint32_t want,
           int64_t now, struct d6_grant *g)
{
	memset(g, 0, sizeof(*g));
	if (want && want != 0xc000020a)
		return -EADDRNOTAVAIL;
	g->v4 = 0xc000020a;
	g->v6 = *v6;
	g->expiry = now + 60;
	g->flags = D6_GRANT_NEW;
	g->port_lo = 1024;
	g->port_hi = 2047;
	return 0;
}

static int
fz_find(void *arg, const char *id, struct d6_grant *g)
{
	return id[6] & 1 ? fz_acquire(arg, id, &(struct in6_addr){0}, false, 0, 0, g) : -ENOENT;
}

static int
fz_release(void *arg, const char *id, const struct in6_addr *v6, bool authed, bool declined,
           int64_t now)
{
	if (!authed && (id[7] & 1))
		return -EPERM; /* another address's lease */
	return id[6] & 1 ? 0 : -ENOENT;
}

static bool
fz_in_pool(void *arg, uint32_t v4)
{
	return v4 == 0xc000020a;
}

static const struct d6_lease_ops ops = {fz_acquire, fz_find, fz_release, fz_in_pool,
                                        NULL,       NULL,    NULL};
static const uint8_t duid[] = {0, 2, 0, 0, 0x7e, 0xd9, 1, 2, 3, 4};
static const uint8_t secret[] = "fuzz";
static const struct in6_addr relay = IN6ADDR_ANY_INIT;
static const struct d6_key keys[] = {{"dstm", 1, secret, 4}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct d6_server *s;
	static struct d6_txn t;
	static uint8_t out[D6_MAX_MSG];
	struct d6_rx rx = {.multicast = size & 1};
	struct d6_server_config cfg = {0};
	struct d6_client_config cc = {0};
	struct d6_client *c;
	size_t len;

	if (!s) {
		d6_codes_default(&cfg.codes);
		cfg.duid = duid;
		cfg.duid_len = sizeof(duid);
		cfg.forms = D6_FORM_IA_DSTM | D6_FORM_GLOBAL_V4;
		cfg.rapid_commit = true;
		cfg.reconfigure = true;
		cfg.keys = keys;
		cfg.nkeys = 1;
		cfg.max_per_duid = 4;
		cfg.max_per_64 = 8;
		/* rx.src is ::, trusted as a relay so that relayed messages reach the engine. */
		cfg.relays = &relay;
		cfg.nrelays = 1;
		s = d6_server_new(&cfg, &ops, NULL, 0);
	}
	rx.src.s6_addr[0] = 0xfd;
	rx.src.s6_addr[15] = 0x11;
	if (d6_server_handle(s, &t, data, size, &rx, 1000) == D6_ACT_REPLY)
		d6_server_build(s, &t, out, sizeof(out), &len);

	d6_codes_default(&cc.codes);
	cc.duid = duid;
	cc.duid_len = sizeof(duid);
	cc.lw4o6 = size & 2;
	{
		struct d6_s46_lw lw;

		d6_s46_parse_cont(data, size, &lw);
	}
	if ((c = d6_client_new(&cc))) {
		d6_client_start(c, 0);
		d6_client_input(c, data, size, 1);
		d6_client_free(c);
	}
	return 0;
}
