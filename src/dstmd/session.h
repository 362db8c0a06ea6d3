/*
 * TSP sessions of dstmd's access module (access.c): what one client
 * connection holds, the open sessions by activity for eviction (DESIGN §4:
 * state a stranger creates is bounded and evicted), and the identity →
 * session map through which "delete" reaches a client at expiry. Private
 * to src/dstmd: access.c is its only user.
 */
#ifndef DSTMD_SESSION_H
#define DSTMD_SESSION_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "tsp/tsp.h"

struct dstmd;
struct tsp_conn;
struct tsp_tunnel;

#define SESSION_BUCKETS   (1u << 16)
#define SESSION_MAX_QUEUE 4
#define IDENTITY_MAX      (5 + TSP_DN_MAX) /* "cert:" or "tsp:" and a name */

struct session {
	struct dstmd *d;
	struct tsp_conn *conn; /* NULL once closed */
	SSL *ssl;              /* a TLS session's, owned by its bufferevent */
	uint64_t netkey;       /* the peer's /64 (or IPv4 address) in d->conns64 */
	struct session *hnext; /* identity hash chain */
	bool bound;            /* in the identity hash */
	bool busy;             /* a command is being answered */
	int refs;              /* the connection + requests in progress */
	char identity[IDENTITY_MAX];
	struct tsp_tunnel *queue[SESSION_MAX_QUEUE];
	unsigned nqueue;
	struct session *lprev, *lnext; /* the activity list, least recent first */
	int64_t last_ms;               /* accepted, or its last command */
	bool listed;                   /* in the activity list (its connection is open) */
	bool evicted;                  /* closing to make room: no longer counted */
	bool dgram;                    /* TSP over UDP: its source address is not proven */
};

/*
 * Open sessions by activity, least recent first. A session that holds no
 * lease and answers nothing is idle: at the global cap (limits.connections)
 * or its /64's (limits.connections_per_64) a new connection takes the place
 * of the oldest idle one, and an idle session is closed after
 * limits.unbound_timeout seconds. A session that holds a lease is never
 * evicted: it is the client's channel for "delete".
 */
struct session_activity {
	struct session *head, *tail;
	struct event *sweep;
	unsigned nofile_cap; /* connections the descriptor limit allows */
	uint64_t evicted, idle_closed;
};
extern struct session_activity session_act;

void session_unlist(struct session *s);
void session_touch(struct session *s);
bool session_idle(const struct session *s);
bool session_evict_idle(struct dstmd *d, uint64_t key, bool any);
void session_sweep_cb(evutil_socket_t fd, short ev, void *arg);
unsigned session_cap(const struct dstmd *d);

struct session *session_find(struct dstmd *d, const char *identity);
void session_unbind(struct session *s);
void session_bind(struct session *s, const char *identity);
void session_unref(struct session *s);

#endif
