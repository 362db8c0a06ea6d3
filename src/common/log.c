/*
 * Logging for every program of the suite: see log.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static int log_stderr = 1;
static int log_verbose;
static const char *log_ident = "dstm";
static int log_journal; /* stderr is systemd's journal: "<N>" prefixes, no time */

/*
 * systemd sets $JOURNAL_STREAM to "DEVICE:INODE" of the stream it gave
 * the service; stderr still being that stream means journald reads our
 * lines, and a "<N>" prefix (sd-daemon(3)) gives each its priority.
 */
static int
stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_init(int to_stderr, int verbose, const char *ident)
{
	log_stderr = to_stderr;
	log_verbose = verbose;
	log_ident = ident;
	log_journal = to_stderr && stderr_is_journal();
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return log_verbose;
}

/* Write one finished message: stderr with a timestamp, or syslog. */
static void
emit(int pri, const char *msg)
{
	if (pri == LOG_DEBUG && !log_verbose)
		return;
	if (log_journal) {
		/* journald adds the time, the program and the pid itself. */
		fprintf(stderr, "<%d>%s\n", pri, msg);
	} else if (log_stderr) {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s\n", when, ts.tv_nsec / 1000000, log_ident, msg);
	} else {
		syslog(pri, "%s", msg);
	}
}

void
vlog(int pri, const char *fmt, va_list ap)
{
	char buf[2048];

	if (pri == LOG_DEBUG && !log_verbose)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	emit(pri, buf);
}

/* Log `fmt` followed by ": strerror(saved)". */
static void
vlog_errno(int pri, int saved, const char *fmt, va_list ap)
{
	char buf[2048];
	int n;

	if (pri == LOG_DEBUG && !log_verbose)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n >= 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(saved));
	emit(pri, buf);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_WARNING, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
log_trace(const char *fmt, ...)
{
	va_list ap;

	if (log_verbose < 2)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

bool
log_rl_allow(struct log_rl *rl)
{
	struct timespec ts;
	unsigned burst = rl->burst ? rl->burst : 10;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != rl->window) {
		if (rl->suppressed)
			log_warnx("%u similar messages suppressed", rl->suppressed);
		rl->window = ts.tv_sec;
		rl->n = 0;
		rl->suppressed = 0;
	}
	if (rl->n >= burst) {
		rl->suppressed++;
		return false;
	}
	rl->n++;
	return true;
}

const char *
log_sanitize(char *out, size_t outlen, const void *in, size_t inlen)
{
	const unsigned char *s = in;
	size_t o = 0;

	if (outlen == 0)
		return out;
	for (size_t i = 0; i < inlen && o + 5 < outlen; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
			out[o++] = (char)s[i];
		} else {
			snprintf(out + o, outlen - o, "\\x%02x", s[i]);
			o += 4;
		}
	}
	out[o] = '\0';
	return out;
}
