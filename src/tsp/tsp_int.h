/*
 * What the TSP module's files share and its users never see: the error
 * class of an XML parse (which status a server answers with), the SASL
 * steps over GNU SASL, and the pure decisions of the line phase, kept
 * here so that unit tests can drive them without sockets; and the server
 * session that tsp_server.c (transport, reply FIFO) and tsp_auth.c (line
 * phase) share.
 */
#ifndef DSTM_TSP_INT_H
#define DSTM_TSP_INT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gsasl.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/log.h"

#include "tsp/tsp.h"

#define TSP_LINE_MAX_DEFAULT    1024
#define TSP_CONTENT_MAX_DEFAULT 16384
#define TSP_XML_DEPTH_DEFAULT   16
#define TSP_AUTH_OK_LINE        "OK Authentication successful"

struct iovec;
/* One sendmsg() now (tsp_server.c): how many whole iovecs went; a partly
 * sent one is advanced. The caller queues the rest, in order. */
size_t tsp_sendv_now(evutil_socket_t fd, struct iovec *iov, size_t n);

/* Fill zero members of a tsp_limits with the defaults of tsp.h. */
void tsp_limits_fill(struct tsp_limits *out, const struct tsp_limits *in);
/* Bytes a session must look at to be sure tsp_frame_next() decides. */
size_t tsp_frame_window(const struct tsp_limits *lim);

/* Which reply a parse error deserves (RFC 5572 §… / DESIGN §3.1 codes). */
enum tsp_xml_errclass {
	TSP_XML_ERR_NONE = 0,
	TSP_XML_ERR_SYNTAX, /* 500: not a document we understand */
	TSP_XML_ERR_IPV6,   /* 309 */
	TSP_XML_ERR_IPV4,   /* 310 */
};

int tsp_xml_parse_ex(const char *xml, size_t len, unsigned max_depth, struct tsp_tunnel *out,
                     char *err, size_t errlen, enum tsp_xml_errclass *cls);

/* ---- Line phase decisions (pure) ---- */

/*
 * "VERSION=2.0.0": 0 and the version copied into `ver` when the line is a
 * VERSION line, -EINVAL when it is not. tsp_version_supported() says
 * whether we speak it (1.0, 2.0.0 to 2.0.2; DESIGN §3.1).
 */
int tsp_parse_version(const char *line, size_t len, char *ver, size_t verlen);
bool tsp_version_supported(const char *ver);
/* "AUTHENTICATE DIGEST-MD5": the mechanism, upper-cased. */
int tsp_parse_authenticate(const char *line, size_t len, char *mech, size_t mechlen);
/* Does "CAPABILITY TUNNEL=V4V6 AUTH=A AUTH=B" offer `mech`? */
bool tsp_capability_offers(const char *line, size_t len, const char *mech);
/*
 * During authentication a server line is either a status ("OK …", "300 …",
 * "302 …": it holds a space or is "OK") or a base64 SASL token.
 * Returns true for a status, with the code in *code (200 for "OK").
 */
bool tsp_line_is_status(const char *line, size_t len, int *code);

/* ---- SASL ---- */

struct tsp_sasl_server; /* one GNU SASL context and the server's policy */
struct tsp_sasl;        /* one exchange */

struct tsp_sasl_server *tsp_sasl_server_new(const char *realm, const char *service,
                                            const char *hostname, tsp_secret_fn secret,
                                            void *secret_arg);
void tsp_sasl_server_free(struct tsp_sasl_server *ss);
/* Does GNU SASL implement `mech` on the server side? */
bool tsp_sasl_server_supports(struct tsp_sasl_server *ss, const char *mech);

int tsp_sasl_server_start(struct tsp_sasl_server *ss, const char *mech, struct tsp_sasl **out);
int tsp_sasl_client_start(const char *mech, const char *user, const char *secret,
                          const char *service, const char *hostname, struct tsp_sasl **out);

enum tsp_sasl_result {
	TSP_SASL_CONTINUE, /* send *out (maybe empty) and wait */
	TSP_SASL_DONE,     /* finished; send *out when not NULL */
	TSP_SASL_FAIL,
};

/*
 * One step: `in` is the base64 token received (NULL for the first step),
 * *out the base64 token to send (malloc'd; NULL when nothing is to be
 * sent). `why` receives a short reason on failure.
 */
enum tsp_sasl_result tsp_sasl_step(struct tsp_sasl *s, const char *in, size_t inlen, char **out,
                                   const char **why);
/* The same step with the raw (decoded) token. */
enum tsp_sasl_result tsp_sasl_step_raw(struct tsp_sasl *s, const char *raw, size_t rawlen,
                                       char **out, const char **why);
/*
 * A DIGEST-MD5 directive list with the blanks next to its commas removed
 * (outside quoted strings), written to `out` (which may be `in`); returns
 * the new length, never more than inlen.
 */
size_t tsp_digest_tidy(const char *in, size_t inlen, char *out);
/*
 * PLAIN's unasked initial response, raw ("user NUL password" after the
 * framer skipped the leading NULs, or "authzid NUL user NUL password") or
 * base64: the raw message into raw[0..rawmax). 0, -EINVAL or -EMSGSIZE.
 */
int tsp_plain_initial(const char *line, size_t len, char *raw, size_t rawmax, size_t *rawlen);
/* The authenticated identity on the server side (NULL if none). */
const char *tsp_sasl_user(const struct tsp_sasl *s);
void tsp_sasl_free(struct tsp_sasl *s);

/* ---- The server's session, shared by tsp_server.c and tsp_auth.c ---- */

#define MAX_PENDING     64           /* unanswered commands before we stop reading */
#define OUT_HIGH        (256 * 1024) /* queued output before we stop reading */
#define FRAMES_PER_TURN 64           /* then yield to the loop */
#define CLOSE_FLUSH_SEC 5            /* longest wait for queued output at close */
#define MAX_MECHS       8
#define OUT_IOV         16 /* ready replies gathered into one sendmsg */

enum srv_state {
	S_VERSION,
	S_AUTHENTICATE,
	S_PLAIN, /* PLAIN: the client's unasked initial response comes next */
	S_SASL,
	S_SASL_FINAL, /* server's last token queued: the status line follows once it left */
	S_COMMAND,
	S_CLOSING,
	S_DEAD,
};

struct slot {
	struct slot *next;
	bool ready;
	char *frame;
	size_t len;
};

struct tsp_conn {
	struct tsp_server *srv;
	struct tsp_conn *prev, *next;
	struct bufferevent *bev;     /* NULL for a datagram session */
	struct evbuffer *din, *dout; /* a datagram session's input and output */
	const struct tsp_dgram_ops *dops;
	void *darg;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peername[ADDR_STRLEN];
	bool tls, eof, read_paused;
	bool v1; /* VERSION=1.0: the DSTM profile's "OK" status line */
	enum srv_state state;
	struct event *deadline; /* handshake, then the flush at close */
	struct event *kick;     /* resume reading input */
	struct event *done;     /* deferred end of the session */
	struct event *gap;      /* DIGEST-MD5: the pause between rspauth and the status */
	struct tsp_sasl *sasl;
	char mech[32];
	char *user;
	void *data;
	struct slot *head, *tail;
	unsigned nslots; /* queued replies, answered or not */
};

struct tsp_server {
	struct event_base *base;
	struct tsp_limits lim;
	char *mechs[MAX_MECHS];
	unsigned nmechs;
	bool plain_without_tls;
	unsigned handshake_timeout, idle_timeout;
	struct tsp_server_callbacks cb;
	void *arg;
	struct tsp_sasl_server *sasl;
	struct tsp_server_stats st;
	struct tsp_conn *conns;
	struct log_rl rl;
};

/* tsp_server.c: the session's output and end, for the line phase. */
void tsp_srv_log(struct tsp_conn *c, const char *what, const void *bytes, size_t n);
struct evbuffer *tsp_srv_out(const struct tsp_conn *c);
void tsp_srv_send_line(struct tsp_conn *c, const char *line);
void tsp_srv_send_status(struct tsp_conn *c, int code);
void tsp_srv_resume(struct tsp_conn *c);
void tsp_srv_close(struct tsp_conn *c, bool flush);
void tsp_srv_on_write(struct bufferevent *bev, void *arg);

/* tsp_auth.c: the line phase (VERSION, CAPABILITY, AUTHENTICATE, SASL). */
void tsp_auth_line(struct tsp_conn *c, const char *line, size_t len);
void tsp_auth_final_sent(struct tsp_conn *c);
void tsp_auth_failed(struct tsp_conn *c, const char *why);

#endif
