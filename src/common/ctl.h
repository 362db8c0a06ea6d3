/*
 * The control socket every daemon of the suite answers on, and the
 * blocking client dstmctl and the tests use (doc/internals.md, "Control
 * protocol"). A Unix stream socket; one JSON object per line each way:
 * request {"version":1,"command":"NAME","args":{...}}, reply
 * {"version":1,"ok":true,"result":...} or {"version":1,"ok":false,
 * "error":"text"}. The server is a libevent listener that hands each
 * well-formed request to one handler function; everything malformed
 * (bad JSON, wrong version, an oversized line) gets an error reply and
 * never reaches the handler.
 */
#ifndef DSTM_CTL_H
#define DSTM_CTL_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

#define CTL_VERSION      1
#define CTL_MAX_REQUEST  (64 * 1024)        /* bytes of one request line */
#define CTL_MAX_REPLY    (64 * 1024 * 1024) /* bytes of one reply line (large lease tables) */
#define CTL_MAX_CLIENTS  64                 /* connections served at once */
#define CTL_IDLE_TIMEOUT 60                 /* seconds a connection may stay silent */

/*
 * Answer one request. `args` is always an object (borrowed). Return a
 * new reference that the server sends as "result" and then releases, or
 * NULL with `err` filled (it is sent as "error"; an empty `err` becomes
 * "command failed").
 */
typedef json_t *(*ctl_handler_fn)(void *arg, const char *command, json_t *args, char *err,
                                  size_t errlen);

struct ctl_server;

/*
 * Listen on `path` (mode 0660). A stale socket file (nobody answers on
 * it) is removed first; a live one makes this fail with EADDRINUSE.
 * SIGPIPE is set to SIG_IGN if it still has its default action, so that
 * a client hanging up early cannot kill the daemon.
 * NULL with errno set on failure.
 */
struct ctl_server *ctl_server_new(struct event_base *base, const char *path, ctl_handler_fn fn,
                                  void *arg);
/* Close every connection, stop listening and remove the socket file. */
void ctl_server_free(struct ctl_server *srv);

/* Outcome of ctl_request() other than a transport failure (-errno). */
#define CTL_OK     0
#define CTL_EREPLY 1 /* the daemon answered {"ok": false}: its text is in err */

/*
 * Send one request and wait at most `timeout_ms` for its reply. `args`
 * is borrowed and may be NULL (sent as {}). Returns CTL_OK with
 * *result a new reference (json null when the reply had no result),
 * CTL_EREPLY with the daemon's error in `err`, or -errno when the socket
 * cannot be reached or the reply is not a valid one (`err` says why).
 */
int ctl_request(const char *path, const char *command, json_t *args, unsigned timeout_ms,
                json_t **result, char *err, size_t errlen);

/* ctl_request() for callers that need no distinction: result or NULL with err. */
json_t *ctl_call(const char *path, const char *command, json_t *args, unsigned timeout_ms,
                 char *err, size_t errlen);

#endif
