/*
 * dstm-client's internal interfaces. The program is split like src/tep,
 * one file per part and one state struct per part, passed explicitly:
 *   config.c        the configuration and the reconnection back-off
 *   packet.c        pure packet functions (checks, early flow translation, ICMP)
 *   lease.c         the lease state machine (acquire, grant, renewal, expiry,
 *                   deletion); pure: its actions and timers are callbacks
 *   ondemand.c      packets held until the lease exists and the flows opened
 *                   on the placeholder address (seed 002 §5.1); pure
 *   tunnel.c        the Dynamic Tunnel Interface: TUN device, raw IPv6 socket,
 *                   the data path both ways, the path MTU
 *   access_tsp.c    the TSP server access module (plain or over TLS)
 *   access_dhcp6.c  the DHCPv6 server access module (the engine of src/dhcp6)
 *   dstm-client.c   main: start-up, the wiring of the parts, signals, control
 * Everything here is internal to src/client; the tests include it.
 */
#ifndef DSTM_CLIENT_H
#define DSTM_CLIENT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cfg.h"
#include "dhcp6/d6.h"
#include "packet/pkt.h"

#define CLIENT_MAX_ROUTES  32
#define CLIENT_MAX_SERVERS 9 /* the configured one + TSP_MAX_BROKERS */

enum client_mode { CLIENT_ALWAYS_ON, CLIENT_ON_DEMAND };
enum client_access { CLIENT_ACCESS_TSP, CLIENT_ACCESS_DHCPV6 };
/* "fast_path": the kernel fast path (tc_fast.bpf.c) if it loads, always, never. */
enum client_fast { CLIENT_FAST_AUTO, CLIENT_FAST_BPF, CLIENT_FAST_OFF };

/*
 * The "dhcpv6" section: how the DHCPv6 access module asks (seed 001
 * appendix A IA_DSTM, or the seed 002 §6.1 Global IPv4 Address option +
 * IA_NA), with the option codes named as in dstmd's section (DESIGN
 * §3.2) and an optional delayed-authentication key (RFC 3315 §21.4).
 */
struct client_dhcp6 {
	bool global_v4_form;
	bool rapid_commit;
	uint16_t port; /* the servers' port (547) */
	struct d6_codes codes;
	bool has_key;
	char realm[65];
	uint32_t key_id;
	char secret[256];
};

/* The "tls" section: TSP over TLS, the server checked by a CA or an SPKI pin. */
struct client_tls {
	bool enable;
	char ca[256]; /* a PEM file of trusted CAs, or "" */
	bool has_pin; /* "sha256//BASE64" of the server's SubjectPublicKeyInfo */
	uint8_t pin[32];
	char name[256]; /* the name or address to verify; default: the server's */
};

struct client_route {
	uint32_t dst;
	unsigned plen;
};

struct client_config {
	enum client_access access;
	char server[256]; /* as written, for logs and status */
	struct sockaddr_storage server_sa;
	socklen_t server_salen;
	bool has_ipv6; /* else: the host's address toward the server */
	struct in6_addr ipv6;
	char interface[16];
	enum client_mode mode;
	char mechanism[32];
	char user[128];
	char secret[256];
	unsigned nroutes;
	struct client_route routes[CLIENT_MAX_ROUTES];
	bool has_tep6, has_tep4; /* a TEP configured by hand */
	struct in6_addr tep6;
	uint32_t tep4;
	char control[108];    /* sun_path */
	unsigned queue;       /* packets held while acquiring */
	uint32_t placeholder; /* on-demand source before the lease */
	unsigned timeout;     /* seconds for TSP handshake and replies */
	unsigned backoff_max; /* seconds, cap of the reconnection delay */
	struct client_dhcp6 dhcp6;
	bool lw4o6; /* act as an lwB4 (RFC 7596): client/lw4o6.h */
	enum client_fast fast_path;
	int log_level; /* "log_level": 0 info, 1 debug, 2 trace (at least -v's) */
	struct client_tls tls;
	char run_as[64]; /* "user": who the client becomes after start-up; "" stays root */
};

/*
 * Validate the whole configuration in `c` into `out`; errors are
 * recorded in `c` (file:line). Returns the number of errors.
 */
int client_config_parse(struct cfg *c, struct client_config *out);
/* The effective configuration, defaults filled in (for -n). */
char *client_config_dump(const struct client_config *cc);

/*
 * Reconnection delay: exponential from 1 s, capped at `max_s`, with
 * jitter in [d/2, d] so that clients cut off together do not come back
 * together. `attempt` counts from 0; `rnd` is a uniform random 32-bit
 * value (passed in so that the function is pure). Milliseconds.
 */
unsigned client_backoff_ms(unsigned attempt, unsigned max_s, uint32_t rnd);

/* ---- Packets (packet.c, pure) ---- */

/*
 * On-demand mode: the connections an application opened before the
 * lease use the placeholder address as source (the kernel picked it at
 * connect() time and never changes it). Their packets are rewritten to
 * the leased address on the way out and back to the placeholder on the
 * way in, for those flows only; every connection opened after the lease
 * uses the leased address and is never touched.
 *
 * A flow: protocol, remote address, local port, remote port (ICMP echo:
 * identifier as local port, 0 as remote port).
 */
#define EARLY_MAX_FLOWS 256

struct early_flow {
	bool used;
	uint8_t proto;
	uint32_t remote;
	uint16_t lport, rport;
	int64_t last_ms;
	bool fin_out, fin_in;
};

struct early_table {
	struct early_flow f[EARLY_MAX_FLOWS];
	uint64_t translated_out, translated_in, table_full, expired;
};

/* Idle time after which a flow is forgotten (TCP after both FINs: 10 s). */
#define EARLY_IDLE_MS   (300 * 1000)
#define EARLY_CLOSED_MS (10 * 1000)

/*
 * Outbound: the packet's source is `from` (the placeholder); rewrite it
 * to `to` (the leased address), fixing the IPv4 and TCP/UDP checksums,
 * and remember the flow. Returns false when the table is full (the
 * packet is dropped and counted) or the packet cannot be translated.
 */
bool early_out(struct early_table *t, uint8_t *buf, size_t len, uint32_t from, uint32_t to,
               int64_t now_ms);
/*
 * Inbound: when the packet (destination `leased`) belongs to an early
 * flow, rewrite its destination to `placeholder` and return true; else
 * leave it alone and return false.
 */
bool early_in(struct early_table *t, uint8_t *buf, size_t len, uint32_t leased,
              uint32_t placeholder, int64_t now_ms);
/* Forget flows idle for too long; returns how many remain. */
unsigned early_expire(struct early_table *t, int64_t now_ms);
void early_clear(struct early_table *t);

/*
 * Build an ICMP "fragmentation needed" (type 3 code 4, RFC 1191) toward
 * the source of `orig`, from `from`, carrying `mtu`; returns its length
 * or 0 when `orig` does not deserve one (an ICMP error itself, a
 * fragment). `out` needs 576 bytes.
 */
size_t pkt_icmp_frag_needed(const uint8_t *orig, size_t len, uint32_t from, unsigned mtu,
                            uint8_t *out, size_t outlen);

/* ---- The lease (lease.c, pure) ---- */

enum lease_state { LEASE_IDLE, LEASE_ACQUIRING, LEASE_BOUND, LEASE_EXPIRED };
enum lease_timer { LEASE_T_RENEW, LEASE_T_EXPIRE };
enum lease_ask { LEASE_ASK_ACQUIRE, LEASE_ASK_RENEW };

/*
 * What the state machine asks of the rest of the program. The access
 * module answers `request` later through lease_grant(), lease_refused()
 * and friends; `arm` sets (ms >= 0, relative) or cancels (ms < 0) one of
 * the two lease timers, whose expiry the caller reports with
 * lease_timer_fired().
 */
struct lease_ops {
	void (*request)(void *arg, enum lease_ask ask);
	int (*install)(void *arg); /* the address and routes onto the DTI; 0 or -errno */
	void (*uninstall)(void *arg);
	void (*arm)(void *arg, enum lease_timer t, int64_t ms);
	void (*bound)(void *arg);   /* the packets held for the lease may go */
	void (*dropped)(void *arg); /* the lease is gone: held packets are lost */
};

#define LEASE_COUNTERS(X)   \
	X(acquisitions)     \
	X(acquire_failures) \
	X(renewals)         \
	X(renewal_failures) \
	X(server_deletes)   \
	X(expiries)         \
	X(address_changes)

struct lease_counters {
#define LEASE_X(n) uint64_t n;
	LEASE_COUNTERS(LEASE_X)
#undef LEASE_X
};

/* What an access module obtained, in one form for TSP and DHCPv6. */
struct lease_grant {
	uint32_t v4;
	uint16_t port_lo, port_hi; /* 0, 0: the whole address */
	bool has_tep6, has_tep4;
	struct in6_addr tep6;
	uint32_t tep4;
	uint32_t lifetime;   /* seconds; 0: no expiry known */
	int64_t obtained_ms; /* monotonic */
	bool timers;         /* renew at half the lifetime and expire here (TSP); the
	                      * DHCPv6 engine keeps T1/T2 and the expiry itself */
	/* lw4o6 (RFC 7596): the softwire's IPv6 address (the IA_NA's) and
	 * the port set (RFC 7597 §5.1; psid_len 0: the whole address) */
	bool lw;
	struct in6_addr lw_v6;
	uint8_t psid_offset, psid_len;
	uint16_t psid;
};

enum lease_result {
	LEASE_GRANTED,      /* a new address, installed */
	LEASE_RENEWED,      /* the same address, extended */
	LEASE_NO_TEP,       /* neither the server nor the configuration names a TEP */
	LEASE_NO_INTERFACE, /* the DTI refused the address: dropped */
};

struct client_lease {
	enum client_mode mode;
	bool has_tep6, has_tep4; /* a TEP configured by hand overrides the server's */
	struct in6_addr cfg_tep6;
	uint32_t cfg_tep4;
	const struct lease_ops *ops;
	void *arg;

	enum lease_state state;
	uint32_t v4;
	uint16_t port_lo, port_hi;
	struct in6_addr tep6;
	uint32_t tep4;
	uint32_t lifetime;
	int64_t expires_ms; /* 0: unknown */
	bool lw;            /* lw4o6: as in struct lease_grant */
	struct in6_addr lw_v6;
	uint8_t psid_offset, psid_len;
	uint16_t psid;
	bool installed;
	struct lease_counters n;
};

extern const char *const lease_state_names[];

void lease_init(struct client_lease *l, const struct client_config *cfg,
                const struct lease_ops *ops, void *arg);
/* Ask for an address unless one is held (always-on start, first packet). */
void lease_acquire(struct client_lease *l);
/* The access module obtained `g` at `now`: install, arm, count. */
enum lease_result lease_grant(struct client_lease *l, const struct lease_grant *g, int64_t now);
/* A DHCPv6 Renew/Rebind extended the lease in place. */
void lease_extend(struct client_lease *l, uint32_t lifetime, int64_t expires_ms);
/*
 * The server refused; during a renewal `give_up` says the address is
 * gone (the server will not extend it: drop it rather than keep an
 * address it may hand to someone else).
 */
void lease_refused(struct client_lease *l, bool give_up);
/* The server deletes our allocation (`v4` 0: whatever we hold). False: not ours. */
bool lease_deleted(struct client_lease *l, uint32_t v4);
/* The DHCPv6 engine lost the lease (expired or refused at renewal). */
void lease_lost(struct client_lease *l, int64_t now);
void lease_timer_fired(struct client_lease *l, enum lease_timer t, int64_t now);
/* The address leaves the interface; state EXPIRED. */
void lease_drop(struct client_lease *l, const char *why);

/* ---- On-demand (ondemand.c, pure) ---- */

#define ONDEMAND_COUNTERS(X)     \
	X(queued)                \
	X(drop_queue_full)       \
	X(drop_queue_flushed)    \
	X(drop_early_table_full) \
	X(early_translated_out)  \
	X(early_translated_in)

struct ondemand_counters {
#define OD_X(n) uint64_t n;
	ONDEMAND_COUNTERS(OD_X)
#undef OD_X
};

struct ondemand_pkt {
	uint16_t len;
	uint8_t *data;
};

/*
 * The packets read before the lease (a ring of `cap`, each malloc'd: the
 * queue is short and empty most of the time) and the early flow table.
 */
struct client_ondemand {
	bool enabled; /* on-demand mode */
	uint32_t placeholder;
	unsigned cap, head, len;
	struct ondemand_pkt *q;
	struct early_table early;
	struct ondemand_counters n;
};

enum ondemand_verdict {
	OD_SEND,       /* into the tunnel (translated when it was an early flow) */
	OD_HOLD,       /* held (or dropped for a full queue) until the lease: acquire */
	OD_BAD_SOURCE, /* a source that is neither the lease nor the placeholder */
	OD_DROP,       /* counted here (early table full) */
};

int ondemand_init(struct client_ondemand *od, const struct client_config *cfg);
void ondemand_free(struct client_ondemand *od);
/* One packet from the application side; may rewrite its source. */
enum ondemand_verdict ondemand_out(struct client_ondemand *od, const struct client_lease *l,
                                   uint8_t *p, size_t len, const struct pkt4 *h, int64_t now);
/* One packet from the tunnel, for us: back to the placeholder when it is an early flow. */
void ondemand_in(struct client_ondemand *od, const struct client_lease *l, uint8_t *p, size_t len,
                 int64_t now);
/* The oldest held packet (the caller frees it), false when none. */
bool ondemand_pop(struct client_ondemand *od, struct ondemand_pkt *out);
void ondemand_drop_all(struct client_ondemand *od);

/*
 * SIGHUP (reload.c): re-read `path` and apply to `cur` what may change at
 * run time (auth, timeout, backoff_max); 0, or -EINVAL with `cur`
 * unchanged and the reasons logged with file:line.
 */
int client_config_reload(const char *path, struct client_config *cur);

#endif
