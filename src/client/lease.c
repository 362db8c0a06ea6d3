/*
 * The lease state machine of dstm-client (client.h): idle → acquiring →
 * bound → expired, whatever the access module (TSP or DHCPv6). It decides
 * when to ask for an address, what a grant, a refusal, a deletion or a
 * timer does to the address on the DTI, and counts; the program's shell
 * carries out its requests through `struct lease_ops`. No I/O and no
 * clock of its own (the time is an argument), so tests/unit drives it
 * with fake events and records what it asked for.
 *
 * Seed 001 C §4.2: renew at half the lifetime; seed 002 §6.3: once the
 * lifetime is over the address leaves the interface; seed 001 §5.1: a
 * TEP configured by hand overrides the server's.
 */
#include <string.h>

#include "client/client.h"
#include "common/addr.h"
#include "common/log.h"

const char *const lease_state_names[] = {"idle", "acquiring", "bound", "expired"};

void
lease_init(struct client_lease *l, const struct client_config *cfg, const struct lease_ops *ops,
           void *arg)
{
	memset(l, 0, sizeof(*l));
	l->mode = cfg->mode;
	l->has_tep6 = cfg->has_tep6;
	l->has_tep4 = cfg->has_tep4;
	l->cfg_tep6 = cfg->tep6;
	l->cfg_tep4 = cfg->tep4;
	l->ops = ops;
	l->arg = arg;
	l->state = LEASE_IDLE;
}

void
lease_acquire(struct client_lease *l)
{
	if (l->state == LEASE_BOUND)
		return;
	l->state = LEASE_ACQUIRING;
	l->ops->request(l->arg, LEASE_ASK_ACQUIRE);
}

void
lease_drop(struct client_lease *l, const char *why)
{
	char a[ADDR_STRLEN];

	if (l->state == LEASE_BOUND)
		log_info("lease of %s ends: %s", addr_fmt_v4(l->v4, a), why);
	l->ops->arm(l->arg, LEASE_T_RENEW, -1);
	l->ops->arm(l->arg, LEASE_T_EXPIRE, -1);
	if (l->installed) {
		l->ops->uninstall(l->arg);
		l->installed = false;
	}
	l->ops->dropped(l->arg);
	l->state = LEASE_EXPIRED;
	l->v4 = 0;
	l->port_lo = l->port_hi = 0;
}

static void
lease_arm(struct client_lease *l, int64_t now)
{
	l->ops->arm(l->arg, LEASE_T_RENEW, -1);
	l->ops->arm(l->arg, LEASE_T_EXPIRE, -1);
	if (l->lifetime == 0) {
		l->expires_ms = 0;
		return;
	}
	/* Seed 001 C §4.2: renew at half the lifetime. */
	l->expires_ms = now + (int64_t)l->lifetime * 1000;
	l->ops->arm(l->arg, LEASE_T_RENEW, (int64_t)l->lifetime * 500);
	l->ops->arm(l->arg, LEASE_T_EXPIRE, (int64_t)l->lifetime * 1000);
}

enum lease_result
lease_grant(struct client_lease *l, const struct lease_grant *g, int64_t now)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	bool renewal = l->state == LEASE_BOUND;

	if (!g->has_tep6 && !l->has_tep6) {
		/* Without a TEP the address cannot carry one packet. */
		l->n.acquire_failures++;
		return LEASE_NO_TEP;
	}
	if (renewal && g->v4 != l->v4) {
		log_warnx("server moved us from %s to %s", addr_fmt_v4(l->v4, a),
		          addr_fmt_v4(g->v4, b));
		l->n.address_changes++;
		if (l->installed) {
			l->ops->uninstall(l->arg);
			l->installed = false;
		}
		renewal = false;
	}
	l->v4 = g->v4;
	l->port_lo = g->port_lo;
	l->port_hi = g->port_hi;
	l->lw = g->lw;
	l->lw_v6 = g->lw_v6;
	l->psid_offset = g->psid_offset;
	l->psid_len = g->psid_len;
	l->psid = g->psid;
	l->tep6 = l->has_tep6 ? l->cfg_tep6 : g->tep6;
	l->tep4 = l->has_tep4 ? l->cfg_tep4 : (g->has_tep4 ? g->tep4 : 0);
	l->lifetime = g->lifetime;
	if (!g->timers)
		l->expires_ms = g->lifetime ? g->obtained_ms + (int64_t)g->lifetime * 1000 : 0;
	if (!l->installed) {
		if (l->ops->install(l->arg) < 0) {
			l->n.acquire_failures++;
			lease_drop(l, "cannot configure the interface");
			return LEASE_NO_INTERFACE;
		}
		l->installed = true;
	}
	l->state = LEASE_BOUND;
	if (g->timers)
		lease_arm(l, now);
	if (renewal) {
		l->n.renewals++;
		log_debug("lease of %s renewed for %u s", addr_fmt_v4(l->v4, a), l->lifetime);
	} else {
		l->n.acquisitions++;
		log_info("lease of %s for %u s", addr_fmt_v4(l->v4, a), l->lifetime);
	}
	l->ops->bound(l->arg);
	return renewal ? LEASE_RENEWED : LEASE_GRANTED;
}

void
lease_extend(struct client_lease *l, uint32_t lifetime, int64_t expires_ms)
{
	l->lifetime = lifetime;
	l->expires_ms = expires_ms;
	l->n.renewals++;
}

void
lease_refused(struct client_lease *l, bool give_up)
{
	if (l->state != LEASE_BOUND) {
		l->n.acquire_failures++;
		return;
	}
	l->n.renewal_failures++;
	if (give_up)
		lease_drop(l, "renewal refused");
}

bool
lease_deleted(struct client_lease *l, uint32_t v4)
{
	if (l->state != LEASE_BOUND || (v4 && v4 != l->v4))
		return false;
	/* Seed 001 C §4.3: the server ends the allocation; stop at once. */
	l->n.server_deletes++;
	lease_drop(l, "deleted by the server");
	return true;
}

void
lease_lost(struct client_lease *l, int64_t now)
{
	if (l->expires_ms && now >= l->expires_ms)
		l->n.expiries++;
	else
		l->n.renewal_failures++;
	lease_drop(l, "DHCPv6 lease lost");
	/* The engine solicits again at once. */
	l->state = LEASE_ACQUIRING;
}

void
lease_timer_fired(struct client_lease *l, enum lease_timer t, int64_t now)
{
	(void)now;
	if (t == LEASE_T_RENEW) {
		l->ops->request(l->arg, LEASE_ASK_RENEW);
		return;
	}
	l->n.expiries++;
	lease_drop(l, "lifetime expired");
	if (l->mode == CLIENT_ALWAYS_ON)
		lease_acquire(l);
}
