/*
 * Table-driven configuration: each program declares one table of options
 * (name, type, range, default, reloadable, field offset) and gets values
 * from, in rising precedence: the default, a JSON file (--config FILE or
 * DROVER_CONFIG), the environment (DROVER_<NAME>, dashes as underscores)
 * and command-line flags (--name VALUE, --name=VALUE, --name for a true
 * boolean). Unknown flags and unknown file keys are errors.
 */
#ifndef DV_CONFIG_H
#define DV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/mem.h"

enum dv_conf_type {
    DV_CONF_STRING,   /* char * (owned by the config; freed by cleanup) */
    DV_CONF_INT,      /* int64_t */
    DV_CONF_BOOL,     /* int */
    DV_CONF_DURATION, /* double seconds; "30", "30s", "5m", "1h", "250ms" */
    DV_CONF_SIZE,     /* int64_t bytes; "1048576", "64kb", "1mb", "2gb" */
};

struct dv_conf_opt {
    const char *name; /* "listen-addr": flag --listen-addr, env
                         DROVER_LISTEN_ADDR, file key "listen-addr" */
    enum dv_conf_type type;
    const char *def; /* default as text; NULL: unset (NULL string, 0) */
    int64_t min;     /* bounds for INT, SIZE; DURATION in milliseconds */
    int64_t max;
    int reloadable; /* SIGHUP may change it */
    size_t offset;  /* offsetof(struct program_config, field) */
    const char *help;
};

/* What the loader found besides option values. */
struct dv_conf_args {
    const char *config_path; /* borrowed from argv or the environment */
    int check_config;        /* --check-config */
    int print_config;        /* --print-config */
    int help;                /* --help or -h */
    char **args;             /* positional arguments, in order; owned */
    int nargs;
};

/* Loads the table's values into cfg (which must start zeroed). Returns 0,
 * or -1 with err set. On success args->args is a new array (free with
 * dv_conf_args_cleanup). */
int dv_conf_load(const struct dv_conf_opt *opts, size_t nopts, void *cfg,
                 int argc, char **argv, struct dv_conf_args *args,
                 struct dv_err *err);
/* Re-reads the file and environment, applying only reloadable options;
 * flags given at start keep winning. Returns -1 with err set and cfg
 * unchanged when the file is bad. On success every string field of cfg is
 * a new allocation: pointers saved from cfg before the call dangle. */
int dv_conf_reload(const struct dv_conf_opt *opts, size_t nopts, void *cfg,
                   const char *path, int argc, char **argv,
                   struct dv_err *err);
/* Appends "name = value" lines for every option to out. */
void dv_conf_format(const struct dv_conf_opt *opts, size_t nopts,
                    const void *cfg, struct dv_buf *out);
/* Appends a usage listing of the options to out. */
void dv_conf_usage(const struct dv_conf_opt *opts, size_t nopts,
                   struct dv_buf *out);
void dv_conf_cleanup(const struct dv_conf_opt *opts, size_t nopts, void *cfg);
void dv_conf_args_cleanup(struct dv_conf_args *args);

/* Parses a duration ("90", "90s", "1.5m", "2h", "250ms", "1d") into
 * seconds. Returns 0 or -1. */
int dv_parse_duration(const char *s, double *out);

#endif
