/*
 * Leveled logging to stderr or a file. The level and destination are the
 * one piece of process-wide state in lib/: a program sets them once at start
 * (dv_log_setup) and on SIGHUP. Thread-safe: each line is written whole.
 */
#ifndef DV_LOG_H
#define DV_LOG_H

#include <stdlib.h>

enum dv_log_level {
    DV_LOG_DEBUG = 0, /* for us */
    DV_LOG_INFO,      /* one line per request or unit of work */
    DV_LOG_NOTICE,    /* state changes of jobs and nodes */
    DV_LOG_WARN,
    DV_LOG_ERROR,
    DV_LOG_FATAL,
};

extern enum dv_log_level dv_log_threshold;

/* Sets the program name shown in each line, the threshold and, when path
 * is not NULL, a file to append to (stderr otherwise). Returns -1 if the
 * file cannot be opened (logging stays on stderr). */
int dv_log_setup(const char *progname, enum dv_log_level level,
                 const char *path);
/* Parses "debug|info|notice|warn|error"; -1 when unknown. */
int dv_log_level_parse(const char *s, enum dv_log_level *out);
const char *dv_log_level_name(enum dv_log_level level);
void dv_log_write(enum dv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define DV_LOG_AT(lvl, ...)                                                    \
    do {                                                                       \
        if ((lvl) >= dv_log_threshold) {                                       \
            dv_log_write((lvl), __VA_ARGS__);                                  \
        }                                                                      \
    } while (0)
#define log_debug(...) DV_LOG_AT(DV_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) DV_LOG_AT(DV_LOG_INFO, __VA_ARGS__)
#define log_notice(...) DV_LOG_AT(DV_LOG_NOTICE, __VA_ARGS__)
#define log_warn(...) DV_LOG_AT(DV_LOG_WARN, __VA_ARGS__)
#define log_error(...) DV_LOG_AT(DV_LOG_ERROR, __VA_ARGS__)
/* Programs only (lib/ never exits): logs and exits with status 1. */
#define fatal(...)                                                             \
    do {                                                                       \
        dv_log_write(DV_LOG_FATAL, __VA_ARGS__);                               \
        exit(1);                                                               \
    } while (0)

#endif
