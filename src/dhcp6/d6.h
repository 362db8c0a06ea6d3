/*
 * DHCPv6 for DSTM (RFC 8415; seed 001 appendices A and B; seed 002 §6):
 * the codec, the server engine, delayed and reconfigure-key
 * authentication, the server DUID and the client engine. Everything here
 * is a pure function of its inputs (bytes, configuration, the caller's
 * clock, the lease calls of `struct d6_lease_ops`): the sockets, the
 * lease store and the TEP control live in the programs (src/dstmd/dhcp.c,
 * src/client). A parser never trusts a length: every read goes through
 * the bounded cursor of common/wire.h, every drop has a named reason.
 *
 * The DSTM options never received codes (DESIGN §3.2): every code of
 * `struct d6_codes` is configurable and defaults to the table there.
 */
#ifndef DSTM_D6_H
#define DSTM_D6_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cfg.h"

#include "common/wire.h"

/* RFC 8415 §7.3: message types. */
enum d6_msg_type {
	D6_SOLICIT = 1,
	D6_ADVERTISE = 2,
	D6_REQUEST = 3,
	D6_CONFIRM = 4,
	D6_RENEW = 5,
	D6_REBIND = 6,
	D6_REPLY = 7,
	D6_RELEASE = 8,
	D6_DECLINE = 9,
	D6_RECONFIGURE = 10,
	D6_INFORMATION_REQUEST = 11,
	D6_RELAY_FORW = 12,
	D6_RELAY_REPL = 13,
};

/* RFC 8415 §21: the options this code reads or writes. */
enum d6_opt {
	D6_OPT_CLIENTID = 1,
	D6_OPT_SERVERID = 2,
	D6_OPT_IA_NA = 3,
	D6_OPT_IA_TA = 4,
	D6_OPT_IAADDR = 5,
	D6_OPT_ORO = 6,
	D6_OPT_PREFERENCE = 7,
	D6_OPT_ELAPSED_TIME = 8,
	D6_OPT_RELAY_MSG = 9,
	D6_OPT_AUTH = 11,
	D6_OPT_UNICAST = 12,
	D6_OPT_STATUS_CODE = 13,
	D6_OPT_RAPID_COMMIT = 14,
	D6_OPT_INTERFACE_ID = 18,
	D6_OPT_RECONF_MSG = 19,
	D6_OPT_RECONF_ACCEPT = 20,
	D6_OPT_IA_PD = 25,
};

/* RFC 7598 §4, §5: the softwire options of lw4o6 (IANA-assigned, not configurable). */
enum d6_s46_opt {
	D6_OPT_S46_BR = 90,
	D6_OPT_S46_V4V6BIND = 92,
	D6_OPT_S46_PORTPARAMS = 93,
	D6_OPT_S46_CONT_LW = 96,
};

/* RFC 8415 §21.13: status codes. */
enum d6_status {
	D6_ST_SUCCESS = 0,
	D6_ST_UNSPEC_FAIL = 1,
	D6_ST_NO_ADDRS_AVAIL = 2,
	D6_ST_NO_BINDING = 3,
	D6_ST_NOT_ON_LINK = 4,
	D6_ST_USE_MULTICAST = 5,
};

#define D6_SERVER_PORT    547
#define D6_CLIENT_PORT    546
#define D6_MAX_MSG        4096 /* the largest message read or built */
#define D6_MAX_IA         8    /* IAs served in one message (more: dropped) */
#define D6_MAX_ORO        32   /* options requested in one ORO */
#define D6_MAX_OPTIONS    64   /* options at one level of one message */
#define D6_LW_SRC_MAX     96   /* acquire_lw's sender key: 2 addresses, an Interface-Id */
#define D6_HOP_LIMIT      8    /* RFC 8415 §7.6 HOP_COUNT_LIMIT: relay nesting */
#define D6_DUID_MAX       128  /* RFC 8415 §11.1 */
#define D6_IDENTITY_MAX   (8 + 2 * (D6_DUID_MAX + 2) + 12)
#define D6_REALM_MAX      64
#define D6_DOTS_ADDRS_MAX 8

/* The option codes, all configurable (DESIGN §3.2). */
struct d6_codes {
	uint16_t ia_dstm;       /* 65001 */
	uint16_t tep;           /* 65002 */
	uint16_t ports;         /* 65003 */
	uint16_t global_v4;     /* 65004, seed 002 §6.1 */
	uint16_t dots_ri;       /* 141, RFC 8973 */
	uint16_t dots_address;  /* 142, RFC 8973 */
	uint16_t access_domain; /* 57, RFC 5986 */
};
void d6_codes_default(struct d6_codes *c);
/*
 * Read the "codes" object at `ptr` of a configuration (dstmd's and
 * dstm-client's "/dhcpv6/codes"): each code by its name above, 1-65535,
 * absent ones at their default, unknown names recorded as errors.
 */
void d6_codes_load(struct cfg *c, const char *ptr, struct d6_codes *out);
/* The codes as a JSON object of the same names (a configuration printed normalized). */
json_t *d6_codes_json(const struct d6_codes *c);

/* ---- Codec ---- */

/* Why a message was dropped: one counter each (STYLE.md). */
enum d6_drop {
	D6_OK = 0,
	D6_DROP_SHORT,         /* shorter than a header */
	D6_DROP_OPT_LEN,       /* an option runs past its container */
	D6_DROP_TOO_MANY_OPTS, /* more than D6_MAX_OPTIONS at one level */
	D6_DROP_BAD_TYPE,      /* not a message a server (client) takes */
	D6_DROP_DUP_OPTION,    /* a singleton option twice */
	D6_DROP_MISPLACED,     /* an option where it may not appear */
	D6_DROP_BAD_OPTION,    /* an option of the wrong length or content */
	D6_DROP_NO_CLIENTID,   /* a Client Identifier required but missing */
	D6_DROP_SERVERID,      /* Server Identifier missing, present, or not ours (RFC 8415 §16) */
	D6_DROP_TOO_MANY_IA,   /* more than D6_MAX_IA IAs */
	D6_DROP_DUP_IAID,      /* two IAs of one kind with one IAID */
	D6_DROP_RELAY_DEPTH,   /* relays nested deeper than D6_HOP_LIMIT */
	D6_DROP_RELAY_NO_MSG,  /* a Relay-forward without exactly one Relay Message */
	D6_DROP_AUTH_MISSING,  /* authentication required (seed 000) and absent */
	D6_DROP_AUTH_BAD,      /* unknown key, bad MAC, malformed option */
	D6_DROP_AUTH_REPLAY,   /* replay detection counter not increasing */
	D6_DROP_RATE,          /* per-DUID or per-/64 limit reached */
	D6_DROP_NO_ADDRESS,    /* no usable client IPv6 address (see d6_client_v6) */
	D6_DROP_TOO_BIG,       /* the reply would not fit */
	D6_DROP_XID,           /* client: not the transaction we wait for */
	D6_DROP_RELAY_UNTRUSTED, /* a Relay-forward from an address not in dhcpv6.relays */
	D6_DROP__COUNT
};
const char *d6_drop_name(enum d6_drop r);

/* One identity association: IA_NA (seed 002 form) or IA_DSTM (seed 001 A). */
struct d6_ia {
	uint16_t code;  /* D6_OPT_IA_NA, D6_OPT_IA_TA or codes.ia_dstm */
	bool global_v4; /* an IA_NA right after a Global IPv4 Address option */
	uint32_t iaid, t1, t2;
	unsigned naddrs;
	struct in6_addr addr; /* the first IA Address */
	uint32_t preferred, valid;
	bool has_tep;
	struct in6_addr tep;
	bool has_ports;
	uint16_t port_lo, port_hi;
	bool has_status;
	uint16_t status;
};

/* RFC 8415 §21.11 / RFC 3315 §21: the Authentication option. */
struct d6_auth {
	uint8_t protocol, algorithm, rdm;
	uint64_t replay;
	const uint8_t *info; /* authentication information */
	size_t info_len;
	size_t mac_off; /* offset of the 16-octet MAC in the message, 0 if none */
	/* delayed authentication (protocol 2) with information */
	char realm[D6_REALM_MAX + 1];
	size_t realm_len;
	uint32_t key_id;
};

/* A message, parsed; pointers refer into the caller's bytes. */
struct d6_msg {
	uint8_t type;
	uint32_t xid;
	const uint8_t *raw; /* the message itself (without relay headers) */
	size_t len;
	const uint8_t *clientid, *serverid;
	size_t clientid_len, serverid_len;
	struct d6_ia ia[D6_MAX_IA];
	unsigned nia;
	unsigned n_ia_other; /* IA_TA / IA_PD seen (not served) */
	uint16_t oro[D6_MAX_ORO];
	unsigned noro;
	bool rapid_commit, reconf_accept, has_elapsed, has_preference, has_unicast;
	uint16_t elapsed;
	uint8_t preference;
	bool has_auth;
	struct d6_auth auth;
	bool has_status;
	uint16_t status;
	bool has_reconf_msg;
	uint8_t reconf_msg;
	/* a Global IPv4 Address option not followed by an IA_NA (client side) */
	bool has_global_v4;
	bool global_v4_has_tep;
	struct in6_addr global_v4_tep;
	/* the DOTS and domain options, for the client side */
	const uint8_t *dots_ri, *access_domain;
	size_t dots_ri_len, access_domain_len;
	struct in6_addr dots_addr[D6_DOTS_ADDRS_MAX];
	unsigned ndots_addr;
	/* OPTION_S46_CONT_LW (RFC 7598 §5), its body */
	const uint8_t *s46_lw;
	size_t s46_lw_len;
};

/* One Relay-forward (or -reply) header. */
struct d6_relay {
	uint8_t hop_count;
	struct in6_addr link, peer;
	const uint8_t *ifid;
	size_t ifid_len;
};

/* A message with the relays it came through, outermost first. */
struct d6_envelope {
	struct d6_relay relay[D6_HOP_LIMIT];
	unsigned nrelays;
	const uint8_t *inner;
	size_t inner_len;
};

/* Peel relay headers (RFC 8415 §9, §19) down to the client's message. */
enum d6_drop d6_unwrap(const uint8_t *p, size_t n, struct d6_envelope *env);
/*
 * Parse and validate a client or server message: every option where it
 * may appear (RFC 8415 Appendix B; seed 001 A §5, B §5; seed 002 §6.1),
 * singletons once, IAIDs unique per kind, nesting IA > IA Address > Status.
 */
enum d6_drop d6_parse(const uint8_t *p, size_t n, const struct d6_codes *codes, struct d6_msg *m);
/* The server-side checks of RFC 8415 §16 for a parsed client message. */
enum d6_drop d6_validate_server(const struct d6_msg *m, const uint8_t *our_duid,
                                size_t our_duid_len);

/*
 * RFC 8415 §21.1: the next option at `c`, its code and its body as a
 * cursor of its own. False at the end of `c`, or when the option runs
 * past it (then c->err is set).
 */
bool d6_opt_next(struct cur *c, uint16_t *code, struct cur *body);
/* Write one option: code, length, body. */
void d6_opt_put(struct wcur *w, uint16_t code, const void *body, size_t len);

/* RFC 8415 §10: a dotted name to wire form. -EINVAL or the length. */
int d6_name_encode(const char *name, uint8_t *out, size_t cap);
/* Wire form to dotted text (at most cap-1 characters); false if malformed. */
bool d6_name_decode(const uint8_t *p, size_t n, char *out, size_t cap);
/*
 * The same, for a buffer that may hold several names (RFC 8973 §5.1.3):
 * 0 with *used the wire length of the first, or -EBADMSG / -EINVAL.
 * Labels are letters, digits, '-' and '_' only (names are printed).
 */
int d6_name_decode_n(const uint8_t *p, size_t n, char *out, size_t cap, size_t *used);

/* ---- Authentication (RFC 3315 §21.4 delayed, RFC 8415 §20.4 reconfigure key) ---- */

#define D6_AUTH_PROTO_DELAYED 2
#define D6_AUTH_PROTO_RECONF  3
#define D6_AUTH_ALG_HMAC_MD5  1
#define D6_AUTH_RDM_COUNTER   0

struct d6_key {
	const char *realm;
	uint32_t key_id;
	const uint8_t *secret;
	size_t secret_len;
};

/* Append a delayed-authentication option (MAC zero) and remember where the MAC goes. */
void d6_auth_put_delayed(struct wcur *w, const struct d6_key *k, uint64_t replay, uint8_t **mac_at);
/* Append a reconfigure-key option: type 1 carries the key, type 2 a MAC (zero for now). */
void d6_auth_put_reconf(struct wcur *w, uint8_t type, const uint8_t key[16], uint64_t replay,
                        uint8_t **val_at);
/* HMAC-MD5 of msg[0..len) (the MAC field already zero) into mac_at. */
int d6_auth_sign(const uint8_t *msg, size_t len, const uint8_t *secret, size_t secret_len,
                 uint8_t *mac_at);
/* Verify the delayed-authentication MAC of a parsed message with `k`. */
bool d6_auth_verify(const struct d6_msg *m, const uint8_t *secret, size_t secret_len);
/* The configured key named by (realm, key id), or NULL. */
const struct d6_key *d6_key_find(const struct d6_key *keys, size_t n, const char *realm,
                                 size_t realm_len, uint32_t key_id);

/* ---- Server DUID (RFC 8415 §11) ---- */

/*
 * Load the DUID stored in `path`, or make a DUID-LLT from `mac` (6
 * octets; a DUID-EN with a random identifier when NULL) and `now`,
 * store it (written to a temporary file, fsync'd, renamed) and return it.
 */
int d6_duid_load_or_create(const char *path, const uint8_t *mac, int64_t now, uint8_t *duid,
                           size_t *len);

/* ---- Server engine ---- */

/* What the lease manager says about one identity (dstmd's lease_*). */
struct d6_grant {
	uint32_t v4; /* host byte order */
	uint16_t port_lo, port_hi;
	struct in6_addr v6;  /* the client's tunnel address */
	struct in6_addr tep; /* the TEP's IPv6 address */
	int64_t expiry;
	unsigned flags; /* D6_GRANT_NEW / D6_GRANT_MOVED */
	const void *tep_ref;
	/* lw4o6 (RFC 7596): v6 is the address the server assigned (IA_NA),
	 * and the port set is a PSID's (psid_len 0: the whole address). Set
	 * by find() too: a Release names the address of an lw4o6 lease only. */
	bool lw;
	uint8_t psid_offset, psid_len;
	uint16_t psid; /* right-aligned */
};
#define D6_GRANT_NEW   0x1u
#define D6_GRANT_MOVED 0x2u
#define D6_GRANT_OFFER 0x4u /* find(): an offer no request confirmed yet */

struct d6_lease_ops {
	/*
	 * Take or renew a lease for `identity` at `v6`, the verified address
	 * of the message (want_v4 0: any); `authed` when the message carried
	 * a valid delayed-authentication MAC: 0, -ENOSPC (pool exhausted),
	 * -EADDRNOTAVAIL (want_v4 not the client's or not free), -ENETUNREACH
	 * (no TEP serves v6), -EACCES (v6 may never hold a lease), -EPERM
	 * (the identity's lease is bound to another address and the message
	 * is not authenticated: nothing changed), -EDQUOT (a new lease its
	 * /64's quota or rate does not admit), -EIO.
	 */
	int (*acquire)(void *arg, const char *identity, const struct in6_addr *v6, bool authed,
	               uint32_t want_v4, int64_t now, struct d6_grant *g);
	/* (after acquire(), at the end of this struct: see count_64 and hold) */
	/* The identity's active lease: 0 or -ENOENT. */
	int (*find)(void *arg, const char *identity, struct d6_grant *g);
	/*
	 * End the identity's lease (Release, or Decline when `declined`)
	 * from verified address `v6`: 0, -ENOENT, or -EPERM (bound to
	 * another address, unauthenticated: nothing changed).
	 */
	int (*release)(void *arg, const char *identity, const struct in6_addr *v6, bool authed,
	               bool declined, int64_t now);
	/* Whether v4 belongs to a pool this server manages (Confirm). */
	bool (*in_pool)(void *arg, uint32_t v4);
	/*
	 * lw4o6 (RFC 7596 §5.1): take or renew the lease of `identity` with
	 * an IPv6 address the server assigns (g->v6, kept across renewals),
	 * an IPv4 address and a port set. `src` (src_len octets) names the
	 * sender on the link, the key of the per-sender limit of a new lease:
	 * its source address, or the trusted relay's address, the innermost
	 * peer-address and that relay's Interface-Id. Errors as acquire(),
	 * and -EDQUOT: that sender holds or asked for too many. NULL: no lw4o6.
	 */
	int (*acquire_lw)(void *arg, const char *identity, const uint8_t *src, size_t src_len,
	                  uint32_t want_v4, int64_t now, struct d6_grant *g);
	/*
	 * The active leases of the clients of the /64 of v6 (the per-/64
	 * limit; the engine keeps no state per /64 of its own). NULL: none.
	 */
	unsigned (*count_64)(void *arg, const struct in6_addr *v6);
	/*
	 * The lease of `identity`, just granted or renewed for an Advertise,
	 * is an offer that lasts `seconds` unless a request confirms it (a
	 * lease the client confirmed already is left alone). NULL: none.
	 */
	int (*hold)(void *arg, const char *identity, uint32_t seconds, int64_t now);
};

enum d6_form_mask {
	D6_FORM_IA_DSTM = 1,   /* seed 001 appendix A */
	D6_FORM_GLOBAL_V4 = 2, /* seed 002 §6.1 */
};

struct d6_server_config {
	struct d6_codes codes;
	const uint8_t *duid;
	size_t duid_len;
	uint32_t preferred; /* preferred lifetime; 0: the lease's valid lifetime */
	uint32_t t1, t2;    /* 0: .5 and .8 of the preferred lifetime (seed 001 A §4) */
	unsigned forms;     /* D6_FORM_* served */
	bool rapid_commit;  /* honour Rapid Commit (RFC 8415 §18.3.1) */
	bool unicast;       /* accept unicast (else UseMulticast, RFC 8415 §18.3.2) */
	const struct d6_key *keys;
	size_t nkeys;
	bool require_auth;      /* seed 000, seed 001 A §7: DSTM options only when authenticated */
	bool reconfigure;       /* give reconfigure keys (RFC 8415 §20.4) */
	const uint8_t *dots_ri; /* wire-form name, or NULL */
	size_t dots_ri_len;
	const struct in6_addr *dots_addr;
	size_t ndots_addr;
	const uint8_t *access_domain; /* wire-form name, or NULL */
	size_t access_domain_len;
	const struct in6_addr *relays; /* the relays trusted (dhcpv6.relays); others are dropped */
	size_t nrelays;
	unsigned max_per_duid; /* leases one DUID may hold (0: no limit) */
	unsigned max_per_64;   /* leases the clients of one /64 may hold (0: no limit) */
	unsigned max_clients;  /* DUIDs remembered (replay, reconfigure key); 0: 16384 */
	uint32_t offer_hold;   /* seconds an Advertise holds its address (0: the lease's) */
};

struct d6_server_counters {
	uint64_t rx[14]; /* by message type; [0] unknown */
	uint64_t tx_advertise, tx_reply, tx_reconfigure;
	uint64_t drop[D6_DROP__COUNT];
	uint64_t st_no_addrs, st_no_binding, st_not_on_link, st_use_multicast, st_unspec_fail;
	uint64_t granted, renewed, released, declined, tep_refused;
	uint64_t auth_ok, auth_refused;
	uint64_t refused_foreign; /* an IA's lease is bound to another address (-EPERM) */
	uint64_t refused_address; /* the verified address may never hold a lease (-EACCES) */
	uint64_t evicted_clients; /* DUIDs forgotten, least recently heard first */
	uint64_t clients_now;     /* DUIDs remembered now */
};

struct d6_server;

struct d6_server *d6_server_new(const struct d6_server_config *cfg, const struct d6_lease_ops *ops,
                                void *ops_arg, int64_t now);
void d6_server_free(struct d6_server *s);
const struct d6_server_counters *d6_server_counters(const struct d6_server *s);

/* Where a message came from. */
struct d6_rx {
	struct in6_addr src;
	bool multicast; /* sent to All_DHCP_Relay_Agents_and_Servers (or relayed) */
};

/* One IA's outcome, kept so that the reply can be built after the TEP answered. */
struct d6_ia_out {
	uint16_t status;
	bool granted, zero_lifetimes, push, refused;
	struct d6_grant g;
	char identity[D6_IDENTITY_MAX];
};

/*
 * One exchange in progress. The caller allocates it, copies the bytes in
 * with d6_server_handle() and must not move it until it is freed (the
 * parsed message points into `in`).
 */
struct d6_txn {
	uint8_t in[D6_MAX_MSG];
	size_t inlen;
	struct d6_envelope env;
	struct d6_msg m;
	struct d6_rx rx;
	struct in6_addr client_v6;
	bool has_client_v6;
	uint8_t reply_type;
	uint16_t top_status; /* top-level Status Code, 0xffff none */
	const char *top_msg;
	bool wait_commit;         /* a lease changed: reply only after the commit (DESIGN §4) */
	bool authed;              /* signed with a configured key (delayed authentication) */
	bool verified;            /* at least one IA acted on a lease from its own address */
	bool fresh_lease;         /* an IA got a new lease (a new reconfigure key is due) */
	bool lw;                  /* the ORO asks for OPTION_S46_CONT_LW and we serve lw4o6 */
	const struct d6_key *key; /* sign the reply with this key */
	bool give_reconf_key;
	uint8_t reconf_key[16];
	struct d6_ia_out out[D6_MAX_IA];
	int64_t now;
};

enum d6_action {
	D6_ACT_DROP,  /* nothing to send (counted) */
	D6_ACT_REPLY, /* build and send the reply (after the commit if wait_commit) */
};

/*
 * Handle one message from a client (possibly relayed). Calls the lease
 * operations; fills `t` for d6_server_build(). The IAs whose `push` is
 * set hold new or moved bindings: the caller pushes them to their TEP
 * and marks `refused` the ones the TEP refused before building.
 */
enum d6_action d6_server_handle(struct d6_server *s, struct d6_txn *t, const void *msg, size_t len,
                                const struct d6_rx *rx, int64_t now);
/*
 * The DUID of a lease identity this engine made ("dhcp6:<duid hex>:<iaid
 * hex>", at most `cap` octets) into duid and *len; false when it is none.
 */
bool d6_identity_duid(const char *identity, uint8_t *duid, size_t cap, size_t *len);
/* The reply bytes (relay-wrapped as it came); 0 or -EMSGSIZE. */
int d6_server_build(struct d6_server *s, struct d6_txn *t, uint8_t *out, size_t cap, size_t *len);
/*
 * A Reconfigure (RFC 8415 §18.3.11) asking the client `duid` to send
 * `msg_type` (Renew or Information-request), authenticated with its
 * reconfigure key, and in `to` where it goes (d6_server_note_peer).
 * -ENOKEY if the client has no key, -EHOSTUNREACH if it was never heard
 * directly (only through a relay).
 */
int d6_server_reconfigure(struct d6_server *s, const uint8_t *duid, size_t duid_len,
                          uint8_t msg_type, uint8_t *out, size_t cap, size_t *len,
                          struct sockaddr_in6 *to);
/*
 * The message of `t` (handled, answered with a Reply) came from `from`:
 * when it was not relayed and acted on its client's own lease, that is
 * where the client's Reconfigure goes. An Advertise grants nothing, so a
 * flood of Solicits moves nothing here; the address is kept with the
 * DUID's other state and forgotten with it (max_clients).
 */
void d6_server_note_peer(struct d6_server *s, const struct d6_txn *t,
                         const struct sockaddr_in6 *from);

/*
 * The client's verified address (DESIGN §4): the source of the message,
 * or for a relayed one (from a trusted relay) the innermost relay's
 * peer-address, when it is a global unicast address; else none. What the
 * message itself names (an IA_NA address) never counts.
 */
bool d6_client_v6(const struct d6_envelope *env, const struct d6_msg *m, const struct in6_addr *src,
                  struct in6_addr *out);

/* ---- lw4o6 softwire options (d6_s46.c, RFC 7598) ---- */

/* What an OPTION_S46_CONT_LW says (the first V4V6BIND; the first BR). */
struct d6_s46_lw {
	bool has_br, has_bind, has_portparams;
	struct in6_addr br;
	uint32_t v4; /* host byte order */
	uint8_t prefix6_len;
	struct in6_addr prefix6; /* bind-ipv6-prefix, zero-padded */
	uint8_t psid_offset, psid_len;
	uint16_t psid; /* right-aligned (the wire has it left-aligned) */
};

/* True when the client's ORO asks for OPTION_S46_CONT_LW. */
bool d6_s46_requested(const struct d6_msg *m);
/*
 * Append OPTION_S46_CONT_LW for a granted lw4o6 lease: S46_BR (the TEP),
 * S46_V4V6BIND (IPv4 address, bind prefix = g->v6/128) holding
 * S46_PORTPARAMS when the address is shared (psid_len > 0).
 */
void d6_s46_put_cont(struct wcur *w, const struct d6_grant *g);
/* Parse the body of an OPTION_S46_CONT_LW: true when it is well formed. */
bool d6_s46_parse_cont(const uint8_t *p, size_t n, struct d6_s46_lw *out);

/* ---- Client engine ---- */

enum d6_client_state {
	D6C_INIT,
	D6C_SOLICIT,
	D6C_REQUEST,
	D6C_BOUND,
	D6C_RENEW,
	D6C_REBIND,
	D6C_RELEASE,
	D6C_DECLINE,
	D6C_STOPPED,
};

enum d6_client_event {
	D6C_EV_NONE,
	D6C_EV_BOUND,   /* a lease (first one, or a changed one) */
	D6C_EV_RENEWED, /* the same lease, extended */
	D6C_EV_LOST,    /* the lease expired or was refused: unconfigure */
	D6C_EV_RELEASED,
};

struct d6_client_config {
	struct d6_codes codes;
	const uint8_t *duid;
	size_t duid_len;
	uint32_t iaid;
	bool global_v4_form; /* ask in the seed 002 form instead of IA_DSTM */
	/* ask as an lwB4 (RFC 7596): an IA_NA and an ORO with OPTION_S46_CONT_LW;
	 * the lease is the IA_NA address + the container's IPv4 address and PSID */
	bool lw4o6;
	bool rapid_commit;
	const struct d6_key *key; /* with a key: drop every reply not authenticated with it */
	uint32_t (*random)(void *arg);
	void *random_arg;
};

struct d6_lease_info {
	uint32_t v4;
	uint16_t port_lo, port_hi;
	bool lw;            /* an lw4o6 lease: v6 and the PSID below are set */
	struct in6_addr v6; /* the IA_NA address the softwire is built on */
	uint8_t psid_offset, psid_len;
	uint16_t psid;
	bool has_tep;
	struct in6_addr tep;
	uint32_t t1, t2, preferred, valid;
	int64_t obtained; /* ms */
};

struct d6_client;

struct d6_client *d6_client_new(const struct d6_client_config *cfg);
void d6_client_free(struct d6_client *c);
/* Start soliciting now (ms, monotonic). */
void d6_client_start(struct d6_client *c, int64_t now_ms);
/* A packet from a server. The event it caused (D6C_EV_NONE if none). */
enum d6_client_event d6_client_input(struct d6_client *c, const uint8_t *p, size_t n,
                                     int64_t now_ms);
/* Time passed: retransmissions, T1, T2, expiry. */
enum d6_client_event d6_client_tick(struct d6_client *c, int64_t now_ms);
/* When d6_client_tick() wants to run next (ms), INT64_MAX when never. */
int64_t d6_client_next(const struct d6_client *c);
/* The packet to send now (to ff02::1:2 port 547), if any; cleared by the call. */
bool d6_client_output(struct d6_client *c, uint8_t *buf, size_t cap, size_t *len);
void d6_client_release(struct d6_client *c, int64_t now_ms);
void d6_client_decline(struct d6_client *c, int64_t now_ms);
enum d6_client_state d6_client_state(const struct d6_client *c);
const struct d6_lease_info *d6_client_lease(const struct d6_client *c);
uint64_t d6_client_drops(const struct d6_client *c, enum d6_drop r);

#endif
