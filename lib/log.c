/* Leveled, timestamped log lines, written whole under a lock. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

enum dv_log_level dv_log_threshold = DV_LOG_INFO;
static char log_progname[32] = "drover";
static FILE *log_file;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info",  "notice",
                                          "warn",  "error", "fatal"};

int
dv_log_setup(const char *progname, enum dv_log_level level, const char *path)
{
    FILE *f = NULL;
    int rc = 0;

    if (path != NULL && path[0] != '\0') {
        f = fopen(path, "ae"); /* close-on-exec: children never inherit it */
        if (f == NULL) {
            rc = -1;
        } else {
            setvbuf(f, NULL, _IOLBF, 0);
        }
    }
    pthread_mutex_lock(&log_lock);
    if (progname != NULL) {
        snprintf(log_progname, sizeof(log_progname), "%s", progname);
    }
    dv_log_threshold = level;
    if (log_file != NULL) {
        fclose(log_file);
    }
    log_file = f;
    pthread_mutex_unlock(&log_lock);
    return rc;
}

int
dv_log_level_parse(const char *s, enum dv_log_level *out)
{
    for (int i = 0; i <= DV_LOG_ERROR; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum dv_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = DV_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *
dv_log_level_name(enum dv_log_level level)
{
    if (level < DV_LOG_DEBUG || level > DV_LOG_FATAL) {
        return "unknown";
    }
    return level_names[level];
}

void
dv_log_write(enum dv_log_level level, const char *fmt, ...)
{
    char line[2048];
    char stamp[40];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s: ", stamp,
                 (long)(tv.tv_usec / 1000), log_progname, (long)getpid(),
                 dv_log_level_name(level));
    if (n < 0 || (size_t)n >= sizeof(line)) {
        n = 0;
    }
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    fprintf(log_file != NULL ? log_file : stderr, "%s\n", line);
    pthread_mutex_unlock(&log_lock);
}
