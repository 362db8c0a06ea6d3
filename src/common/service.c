/*
 * sd_notify(3) for the daemons: see service.h. The messages are sent from
 * the event loop's thread; libsystemd's sd_notify() opens a datagram
 * socket to $NOTIFY_SOCKET per call, which is cheap next to how rarely
 * these happen (start, reload, stop, every few seconds for the watchdog).
 */
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "common/service.h"

static void
notify(const char *head, const char *fmt, va_list ap)
{
	char status[512], msg[600];

	vsnprintf(status, sizeof(status), fmt, ap);
	/* STATUS= ends at the newline: keep the line one line. */
	for (char *p = status; *p; p++)
		if (*p == '\n')
			*p = ' ';
	snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", head, *head ? "\n" : "", status);
	(void)sd_notify(0, msg);
}

void
svc_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify("READY=1", fmt, ap);
	va_end(ap);
}

void
svc_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify("", fmt, ap);
	va_end(ap);
}

void
svc_reloading(void)
{
	(void)sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
}

void
svc_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

static void
watchdog_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)sd_notify(0, "WATCHDOG=1");
}

struct event *
svc_watchdog_start(struct event_base *base)
{
	uint64_t usec = 0;
	struct event *ev;
	struct timeval tv;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return NULL;
	/* sd_watchdog_enabled(3): ping at half the interval. */
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	if (!(ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL))) {
		log_warnx("out of memory: no watchdog pings");
		return NULL;
	}
	event_add(ev, &tv);
	(void)sd_notify(0, "WATCHDOG=1");
	log_debug("watchdog: a ping every %lld ms", (long long)(usec / 1000));
	return ev;
}
