/*
 * The daemons' side of the service manager (systemd's sd_notify(3)
 * protocol, through libsystemd): readiness, reload and stop notices,
 * STATUS= lines and watchdog pings. Without a service manager
 * ($NOTIFY_SOCKET unset) every call does nothing, so the daemons run the
 * same in a lab namespace, under another supervisor or by hand.
 */
#ifndef DSTM_SERVICE_H
#define DSTM_SERVICE_H

#include <event2/event.h>

/* READY=1 with a STATUS= line (start-up done, or a reload finished). */
void svc_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1: a SIGHUP is being handled; svc_ready() ends it. */
void svc_reloading(void);
/* STOPPING=1: the daemon is going. */
void svc_stopping(void);
/* A STATUS= line alone. */
void svc_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * When the unit has WatchdogSec=, a timer on `base` that sends WATCHDOG=1
 * at half the interval; the loop not turning stops the pings and systemd
 * restarts the daemon. NULL (and nothing to free) without a watchdog.
 */
struct event *svc_watchdog_start(struct event_base *base);

#endif
