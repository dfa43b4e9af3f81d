/*
 * Drover's one clock. Every component reads time here, never from the
 * database's now(). With DROVER_TIME_SCALE=k the clock runs k times faster
 * than the wall clock around DROVER_TIME_EPOCH (Unix seconds, the instant
 * where both agree; default 1700000000), so that every process of a cluster
 * started with the same two variables agrees on the time.
 */
#ifndef DV_CLOCK_H
#define DV_CLOCK_H

#include <time.h>

/* Seconds since the Unix epoch on Drover's clock. */
double dv_now(void);
/* The scale factor (1 unless DROVER_TIME_SCALE says otherwise). */
double dv_clock_scale(void);
/* Converts a span of Drover seconds into real seconds (for ev timers). */
double dv_clock_real_span(double drover_seconds);
/* Formats t as ctime(3) does, without the newline ("Mon Jan  4 10:00:00
 * 2021"), in local time, into buf. */
void dv_clock_ctime(double t, char *buf, size_t size);
/* Formats t as ISO 8601 UTC ("2021-01-04T10:00:00Z"). */
void dv_clock_iso(double t, char *buf, size_t size);

#endif
