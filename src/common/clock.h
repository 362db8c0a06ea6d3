/*
 * Time as the suite uses it: monotonic milliseconds for timers and
 * deadlines, wall-clock seconds for what is stored (lease expiry) and
 * must survive a restart; fractional monotonic seconds for benchmarks.
 */
#ifndef DSTM_CLOCK_H
#define DSTM_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic seconds with their fraction: what benchmarks time with. */
static inline double
clock_mono_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int64_t
clock_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

#endif
