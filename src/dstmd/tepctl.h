/*
 * dstmd as a TSP client of its TEPs (seed 001 appendix C §2: "the server
 * configures the TEP using another 'Tunnel Create' message"). One link per
 * TEP that has a control endpoint: a session kept open and re-established
 * quickly (100 ms doubling to 1 s) so that a restarted TEP gets every live
 * binding back within about a second; a full re-push on every (re)connect.
 *
 * Two queues feed a link: commands a client is waiting for (their result
 * comes back through a callback, and they fail with 307 at once when the
 * TEP is down), and bulk commands (re-push, deletes at expiry) that wait
 * for the TEP and survive reconnections. At most TEPCTL_WINDOW commands
 * are in flight, so a re-push of a million bindings does not flood memory.
 */
#ifndef DSTMD_TEPCTL_H
#define DSTMD_TEPCTL_H

#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>

#include "dstmd/config.h"

#define TEPCTL_WINDOW 128
/* Health check: a silent link is down after TEPCTL_PROBES probes TEPCTL_PROBE_S apart. */
#define TEPCTL_PROBE_S 1
#define TEPCTL_PROBES  3

struct tepctl;

/* What one command says about one binding. */
struct tepctl_binding {
	uint32_t v4;
	uint16_t port_lo, port_hi;
	/* A PSID port set (RFC 7597 §5.1) when psid_len > 0: port_lo/port_hi
	 * are then its first and last port (lease.h). */
	uint8_t psid_offset, psid_len;
	uint16_t psid;
	struct in6_addr v6;
	uint32_t lifetime;
};

/*
 * The binding of a lease (or of anything with a lease's fields: a DHCPv6
 * grant); its lifetime is left as it was (0 in a delete).
 */
#define TEPCTL_BINDING_OF(b, l)                      \
	do {                                         \
		(b)->v4 = (l)->v4;                   \
		(b)->port_lo = (l)->port_lo;         \
		(b)->port_hi = (l)->port_hi;         \
		(b)->psid_offset = (l)->psid_offset; \
		(b)->psid_len = (l)->psid_len;       \
		(b)->psid = (l)->psid;               \
		(b)->v6 = (l)->v6;                   \
	} while (0)

/* The binding of a live lease for a create: what is left of the lease at `now` is its lifetime. */
#define TEPCTL_BINDING_LIVE(b, l, now)                                                     \
	do {                                                                               \
		TEPCTL_BINDING_OF(b, l);                                                   \
		(b)->lifetime = (l)->expiry > (now) ? (uint32_t)((l)->expiry - (now)) : 0; \
	} while (0)

/* Result of a waited-for command: 200, or the TSP error code (307 when unreachable). */
typedef void (*tepctl_done_fn)(void *arg, int status);
/* Called on every (re)connect of `tep`: push each live binding with tepctl_create(…, NULL, NULL). */
typedef void (*tepctl_repush_fn)(void *arg, struct tepctl *tc, const struct dstmd_tep *tep);

struct tepctl *tepctl_new(struct event_base *base, const struct dstmd_config *cfg,
                          tepctl_repush_fn repush, void *arg);
void tepctl_free(struct tepctl *tc);
/*
 * A reloaded configuration: links of TEPs that stay keep their session
 * (reconnecting only when their control endpoint or credentials changed),
 * TEPs added get a link. `cfg` must outlive the tepctl. 0 or -ENOMEM
 * (nothing changed).
 */
int tepctl_reload(struct tepctl *tc, const struct dstmd_config *cfg);

/*
 * Tell `tep` to create (or delete) a binding. With `done`, the command
 * is one a client waits for: `done` is called exactly once. Without, it
 * is queued in bulk. A TEP without a control endpoint needs no command:
 * `done` is called at once with 200 (it learns from traffic).
 */
void tepctl_create(struct tepctl *tc, const struct dstmd_tep *tep, const struct tepctl_binding *b,
                   tepctl_done_fn done, void *arg);
void tepctl_delete(struct tepctl *tc, const struct dstmd_tep *tep, const struct tepctl_binding *b);

/* Whether the link to `tep` is up (always true for a TEP without control). */
bool tepctl_up(const struct tepctl *tc, const struct dstmd_tep *tep);
/*
 * How long (ms) the link to `tep` has been down: since the session was
 * lost, or since start when it never came up; 0 while up (or learning).
 * A TEP killed or restarted closes the TCP session at once; one that
 * vanishes (its host, its network) within about 4 s: TCP keepalive
 * probes every TEPCTL_PROBE_S second of silence, TEPCTL_PROBES of them
 * unanswered (or data unacknowledged as long) close the session. A TEP
 * process that hangs is noticed when a command's reply times out (5 s).
 */
int64_t tepctl_down_ms(const struct tepctl *tc, const struct dstmd_tep *tep);
/* An array of per-TEP state and counters for the control socket. */
json_t *tepctl_status(const struct tepctl *tc);

#endif
