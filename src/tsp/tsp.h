/*
 * TSP, the Tunnel Setup Protocol (RFC 5572 framing) with the DSTM profile
 * (seed 001 appendix C; DESIGN §3.1). This header is the contract between
 * the TSP module and its three users: dstmd (server toward clients, client
 * toward TEPs), dstm-tep (server toward dstmd) and dstm-client (client).
 *
 * Three layers:
 *  - the message model and its XML codec (pure: bytes in, struct out);
 *  - the framer (pure: the line phase, then "Content-length: N" frames);
 *  - sessions over libevent bufferevents, server side and client side,
 *    with SASL through GNU SASL. The caller creates the bufferevent, so a
 *    TLS bufferevent (bufferevent_openssl) works the same as a plain one.
 */
#ifndef DSTM_TSP_H
#define DSTM_TSP_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TSP_PORT     3653
#define TSP_PORT_TLS 3654

/* Status codes (DESIGN §3.1). */
enum {
	TSP_OK = 200,
	TSP_AUTH_FAILED = 300,
	TSP_NO_MORE_TUNNELS = 301,
	TSP_UNSUPPORTED_VERSION = 302,
	TSP_UNSUPPORTED_TUNNEL = 303,
	TSP_POOL_EXHAUSTED = 306,
	TSP_TEP_CONFIG_ERROR = 307,
	TSP_ADDRESS_UNAVAILABLE = 308,
	TSP_INVALID_IPV6 = 309,
	TSP_INVALID_IPV4 = 310, /* also "server error" */
	TSP_INVALID_REQUEST = 500,
	TSP_BUSY = 530,
	TSP_REDIRECT = 1000, /* and above: a <broker> list follows */
};

/* The text that goes with a status code in a status line. */
const char *tsp_status_text(int code);

/* ---- The message model: <tunnel> and its children ---- */

enum tsp_action {
	TSP_ACTION_CREATE,
	TSP_ACTION_DELETE,
	TSP_ACTION_INFO,
	TSP_ACTION_ACCEPT,
	TSP_ACTION_REJECT,
};

#define TSP_DN_MAX      256
#define TSP_MAX_BROKERS 8

/* One side of a tunnel: <client> or <server>. */
struct tsp_endpoint {
	bool present;
	bool has_v4, has_v6, has_v6ll, has_dn, has_ports;
	uint32_t v4;          /* host byte order */
	struct in6_addr v6;   /* global IPv6 address */
	struct in6_addr v6ll; /* link-local address (fe80::/10), seed 001 C §3.2 */
	char dn[TSP_DN_MAX];
	/* Port range of a shared IPv4 address, our extension:
	 * <ports start="1024" end="2047"/> inside <client>. With psid_len >
	 * 0, a PSID port set (RFC 7597 §5.1) whose first and last ports are
	 * start and end: <ports start= end= psid-offset="6" psid-length="6"
	 * psid="5"/> (dstmd to its TEPs). */
	uint16_t port_lo, port_hi;
	uint8_t psid_offset, psid_len;
	uint16_t psid;
};

struct tsp_tunnel {
	enum tsp_action action;
	char type[16];     /* "v4v6" for DSTM; kept verbatim otherwise */
	uint32_t lifetime; /* seconds; 0 when absent */
	struct tsp_endpoint client, server;
	bool has_keepalive;
	uint32_t keepalive_interval;
	bool has_keepalive_v4; /* <keepalive><address type="ipv4">: what the client pings */
	uint32_t keepalive_v4;
	bool has_router;
	unsigned router_prefix_len;
	/* <broker><address …/>…</broker> of a redirect (status >= 1000). */
	unsigned nbrokers;
	char brokers[TSP_MAX_BROKERS][TSP_DN_MAX];
};

/*
 * Parse one XML document holding a <tunnel>. Unknown elements and
 * attributes are ignored; depth is bounded by `max_depth`. Returns 0, or
 * -EINVAL with a short reason in `err` (safe to log).
 */
int tsp_xml_parse(const char *xml, size_t len, unsigned max_depth, struct tsp_tunnel *out,
                  char *err, size_t errlen);
/* Format a <tunnel> document; returns its length, or -ENOSPC. */
int tsp_xml_format(const struct tsp_tunnel *t, char *buf, size_t len);

/* ---- Framing (pure) ---- */

/*
 * Before authentication ends, TSP is line-oriented (CRLF, or a bare LF
 * from sloppy peers); afterwards every message is "Content-length: N"
 * CRLF followed by N bytes. NUL bytes that some deployed clients send
 * after a line are skipped (DESIGN §3.1).
 */
struct tsp_limits {
	size_t line_max;    /* longest line accepted (default 1024) */
	size_t content_max; /* largest Content-length accepted (default 16384) */
	unsigned xml_depth; /* deepest XML nesting accepted (default 16) */
};

enum tsp_frame_kind {
	TSP_FRAME_NEED_MORE, /* not enough bytes yet */
	TSP_FRAME_LINE,      /* a line, without its CRLF */
	TSP_FRAME_CONTENT,   /* the N bytes of a Content-length frame */
	TSP_FRAME_ERROR,     /* malformed or over a limit: close the session */
};

struct tsp_frame {
	enum tsp_frame_kind kind;
	const char *data; /* points into the caller's buffer */
	size_t len;
	const char *error; /* for TSP_FRAME_ERROR: why */
};

/*
 * Find the next frame in buf[0..len). `content_phase` selects the phase.
 * *consumed is how many bytes the frame (with its delimiters) used; it is
 * 0 when more bytes are needed.
 */
void tsp_frame_next(const struct tsp_limits *lim, bool content_phase, const char *buf, size_t len,
                    struct tsp_frame *out, size_t *consumed);

/*
 * A line in which NUL bytes are data, not the end of a line: PLAIN's raw
 * initial response ("\0user\0password" CRLF). Leading NULs are skipped
 * as tsp_frame_next() skips them; the same limits apply.
 */
void tsp_frame_raw_line(const struct tsp_limits *lim, const char *buf, size_t len,
                        struct tsp_frame *out, size_t *consumed);

/* ---- TSP over UDP (RFC 5572 §3): the header in front of each message ---- */

#define TSP_UDP_HDR_LEN 8

struct tsp_udp_hdr {
	uint32_t seq;       /* 28 bits; the top nibble on the wire is 0xF */
	uint32_t timestamp; /* the client's, echoed back */
};

/* 0, -EMSGSIZE (shorter than the header) or -EPROTO (no 0xF nibble). */
int tsp_udp_parse(const void *dgram, size_t len, struct tsp_udp_hdr *h, const char **msg,
                  size_t *msglen);
void tsp_udp_header(const struct tsp_udp_hdr *h, uint8_t out[TSP_UDP_HDR_LEN]);

/*
 * A server's frame body is a status line then the XML:
 * "200 Success\r\n<tunnel …>…". Split it; xml may be empty.
 */
int tsp_split_status(const char *body, size_t len, int *code, const char **xml, size_t *xmllen);

/* ---- Credentials ---- */

/*
 * Server side: the password of `user` in `realm`, or NULL if unknown.
 * Used by PLAIN, DIGEST-MD5 and SCRAM-SHA-256 (which derives its salted
 * password from it).
 */
typedef const char *(*tsp_secret_fn)(void *arg, const char *user, const char *realm);

/* ---- Server sessions ---- */

struct tsp_server;
struct tsp_conn;

struct tsp_server_config {
	struct tsp_limits limits;
	/* Mechanisms offered, in order, e.g. "SCRAM-SHA-256 DIGEST-MD5 ANONYMOUS". */
	const char *mechanisms;
	bool plain_without_tls; /* offer PLAIN on a plain TCP session */
	const char *realm;      /* DIGEST-MD5 realm and SCRAM user realm */
	const char *service;    /* SASL service name, "tsp" */
	const char *hostname;   /* SASL server host name */
	tsp_secret_fn secret;
	void *secret_arg;
	unsigned handshake_timeout; /* seconds to finish VERSION..auth; 0 = 10 */
	unsigned idle_timeout;      /* seconds without a byte in command phase; 0 = none */
};

struct tsp_server_callbacks {
	/*
	 * An authenticated peer sent a <tunnel>. The application answers
	 * later (or at once) with tsp_conn_reply(); replies go out in the
	 * order of the commands. `info` from a client acknowledges a delete
	 * the server sent and needs no reply.
	 */
	void (*command)(struct tsp_conn *c, const struct tsp_tunnel *t, void *arg);
	/* The session ended (peer closed, error, timeout, tsp_conn_close). */
	void (*closed)(struct tsp_conn *c, void *arg);
	/* Optional: the session authenticated. */
	void (*authenticated)(struct tsp_conn *c, void *arg);
};

/* Named counters of a server (every drop reason has one). */
struct tsp_server_stats {
	uint64_t sessions, sessions_open, auth_ok, auth_failed, bad_version, bad_line, bad_frame,
	    bad_xml, too_long, timeouts, commands, replies, plain_raw, plain_b64;
};

struct tsp_server *tsp_server_new(struct event_base *base, const struct tsp_server_config *cfg,
                                  const struct tsp_server_callbacks *cb, void *arg);
void tsp_server_free(struct tsp_server *s);
/*
 * Hand an accepted connection to the server; it owns `bev` from now on.
 * `tls` says whether the transport is TLS (PLAIN is offered then).
 */
struct tsp_conn *tsp_server_accept(struct tsp_server *s, struct bufferevent *bev,
                                   const struct sockaddr *peer, socklen_t peerlen, bool tls);
const struct tsp_server_stats *tsp_server_stats(const struct tsp_server *s);

/*
 * Sessions over datagrams (TSP over UDP, RFC 5572 §3). The transport owns
 * the socket, the RFC 5572 header and the retransmissions; the session is
 * the same machine as over TCP, fed one message at a time. What the
 * server writes collects in tsp_conn_output(); the transport takes it as
 * one datagram and says so with tsp_conn_output_taken(), which is where a
 * write that must travel on its own (the status line after DIGEST-MD5's
 * rspauth) goes out.
 */
struct evbuffer;
struct tsp_dgram_ops {
	/* Output appeared outside tsp_conn_input() (the application answered). */
	void (*output)(struct tsp_conn *c, void *arg);
	/* The session is being freed (after the closed callback): forget it. */
	void (*gone)(struct tsp_conn *c, void *arg);
};

struct tsp_conn *tsp_server_accept_dgram(struct tsp_server *s, const struct sockaddr *peer,
                                         socklen_t peerlen, const struct tsp_dgram_ops *ops,
                                         void *arg);
/*
 * One datagram's message (without the RFC 5572 header); processed at once.
 * -EMSGSIZE (and the session closes) when it would hold more than one frame.
 */
int tsp_conn_input(struct tsp_conn *c, const void *msg, size_t len);
struct evbuffer *tsp_conn_output(struct tsp_conn *c);
/* The transport sent all of tsp_conn_output() as one message. */
void tsp_conn_output_taken(struct tsp_conn *c);
/* The argument of the tsp_dgram_ops callbacks (NULL: the transport is gone). */
void tsp_conn_set_dgram_arg(struct tsp_conn *c, void *arg);
/* A command waits for the application's answer. */
bool tsp_conn_awaiting(const struct tsp_conn *c);
/* The session ended (its answers may still be in tsp_conn_output()). */
bool tsp_conn_closing(const struct tsp_conn *c);

/* Reply to the oldest unanswered command: status, plus XML when t != NULL. */
int tsp_conn_reply(struct tsp_conn *c, int status, const struct tsp_tunnel *t);
/* Send a server-initiated command (a "delete") with status 200. */
int tsp_conn_send(struct tsp_conn *c, const struct tsp_tunnel *t);
/* Close now (queued output is flushed first when possible). */
void tsp_conn_close(struct tsp_conn *c);
void tsp_conn_set_data(struct tsp_conn *c, void *data);
void *tsp_conn_data(const struct tsp_conn *c);
const char *tsp_conn_user(const struct tsp_conn *c); /* NULL for ANONYMOUS */
const char *tsp_conn_mechanism(const struct tsp_conn *c);
const struct sockaddr *tsp_conn_peer(const struct tsp_conn *c);
bool tsp_conn_tls(const struct tsp_conn *c);

/* ---- Client sessions ---- */

struct tsp_client;

struct tsp_client_config {
	struct tsp_limits limits;
	const char *version;   /* announced, default "2.0.0" */
	const char *mechanism; /* e.g. "SCRAM-SHA-256"; must be in the server's offer */
	const char *user;
	const char *secret;
	const char *service;  /* "tsp" */
	const char *hostname; /* server name for DIGEST-MD5's digest-uri */
	unsigned timeout;     /* seconds for the handshake and each reply; 0 = 10 */
	/*
	 * The bufferevent is a plain socket one (no TLS, no filter): once the
	 * server has spoken, lines and commands go to the socket with one
	 * sendmsg while nothing waits in the output buffer, instead of an
	 * EPOLLOUT round of the loop each (two epoll_ctl, one epoll_wait).
	 */
	bool plain_socket;
};

struct tsp_client_callbacks {
	/* Authenticated: commands may be sent. */
	void (*ready)(struct tsp_client *c, void *arg);
	/*
	 * The reply to the oldest command sent: status and, when the body
	 * held XML, the tunnel (else NULL). For a redirect (>= 1000) the
	 * tunnel holds the brokers.
	 */
	void (*reply)(struct tsp_client *c, int status, const struct tsp_tunnel *t, void *arg);
	/* The server sent a command of its own (a "delete"). */
	void (*command)(struct tsp_client *c, const struct tsp_tunnel *t, void *arg);
	/*
	 * The session ended. `status` is the TSP code that ended it (300,
	 * 302, …) or 0 for a transport failure or time-out; `why` says it.
	 */
	void (*closed)(struct tsp_client *c, int status, const char *why, void *arg);
};

/*
 * Start a session on a connected (or connecting) bufferevent, which the
 * client owns from now on. The caller makes the bufferevent (plain or
 * TLS) and connects it; tsp_client_connect() below does both for plain
 * TCP.
 */
struct tsp_client *tsp_client_new(struct event_base *base, struct bufferevent *bev,
                                  const struct tsp_client_config *cfg,
                                  const struct tsp_client_callbacks *cb, void *arg);
struct tsp_client *tsp_client_connect(struct event_base *base, const struct sockaddr *sa,
                                      socklen_t salen, const struct sockaddr *bind_to,
                                      socklen_t bindlen, const struct tsp_client_config *cfg,
                                      const struct tsp_client_callbacks *cb, void *arg);
/* Send a command (XML only, as clients do); its reply comes to cb->reply. */
int tsp_client_send(struct tsp_client *c, const struct tsp_tunnel *t);
/* Close and free; no callback is called after this. */
void tsp_client_free(struct tsp_client *c);
/* The local address of the session (the source the server sees). */
int tsp_client_local(const struct tsp_client *c, struct sockaddr_storage *ss);
/*
 * Bound the time a silent peer goes unnoticed (a host gone, a cable cut):
 * TCP keepalive probes every `interval_s` seconds of silence, the session
 * closed (cb->closed) after `count` unanswered ones, and as long at most
 * for sent data to be acknowledged (TCP_USER_TIMEOUT). A peer that exits
 * or restarts closes the session at once anyway. 0 or -errno.
 */
int tsp_client_keepalive(struct tsp_client *c, unsigned interval_s, unsigned count);

#endif
