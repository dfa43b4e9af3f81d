/* The scaled wall clock read by every component. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#include "lib/clock.h"

static double clock_scale = 1.0;
static double clock_epoch = 1700000000.0;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

static void
clock_init(void)
{
    const char *s = getenv("DROVER_TIME_SCALE");
    const char *e = getenv("DROVER_TIME_EPOCH");
    char *end = NULL;

    if (s != NULL && *s != '\0') {
        double v = strtod(s, &end);
        if (end != s && *end == '\0' && v >= 0.001 && v <= 1e6) {
            clock_scale = v;
        }
    }
    if (e != NULL && *e != '\0') {
        double v = strtod(e, &end);
        if (end != e && *end == '\0' && v > 0) {
            clock_epoch = v;
        }
    }
}

static double
real_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
dv_now(void)
{
    pthread_once(&clock_once, clock_init);
    if (clock_scale == 1.0) {
        return real_now();
    }
    return clock_epoch + (real_now() - clock_epoch) * clock_scale;
}

double
dv_clock_scale(void)
{
    pthread_once(&clock_once, clock_init);
    return clock_scale;
}

double
dv_clock_real_span(double drover_seconds)
{
    return drover_seconds / dv_clock_scale();
}

void
dv_clock_ctime(double t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    localtime_r(&tt, &tm);
    strftime(buf, size, "%a %b %e %H:%M:%S %Y", &tm);
}

void
dv_clock_iso(double t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
