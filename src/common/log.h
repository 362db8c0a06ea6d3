/*
 * One logging interface for the whole suite (after OpenBSD's log.h):
 * to stderr in the foreground or when debugging, to syslog otherwise.
 * log_warn() appends strerror(errno); the x variants do not. fatal()
 * and fatalx() log and exit(1): only for broken invariants and start-up.
 * Levels: warnings and information always; log_debug() with -v;
 * log_trace() (every control request, every scrape: per-message detail)
 * with -vv. When stderr is systemd's journal each line carries its
 * syslog priority as a "<N>" prefix.
 */
#ifndef DSTM_LOG_H
#define DSTM_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

void log_init(int to_stderr, int verbose, const char *ident);
void log_setverbose(int verbose);
int log_getverbose(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog(int pri, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
__attribute__((noreturn)) void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Rate limit for messages caused by network input: at most `burst`
 * messages per second from one limiter; the number suppressed is
 * reported with the next message that gets through.
 */
struct log_rl {
	int64_t window;      /* second of the current window */
	unsigned n;          /* messages logged in it */
	unsigned suppressed; /* messages dropped since the last logged */
	unsigned burst;      /* 0 means 10 */
};

bool log_rl_allow(struct log_rl *rl);

#define log_warnx_rl(rl, ...)                   \
	do {                                    \
		if (log_rl_allow(rl))           \
			log_warnx(__VA_ARGS__); \
	} while (0)

/* Copy `in` into `out` with every byte outside printable ASCII as \xNN. */
const char *log_sanitize(char *out, size_t outlen, const void *in, size_t inlen);

#endif
