/* Option tables: defaults, JSON file, environment and flags, in that order. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/config.h"
#include "lib/resources.h"
#include "lib/strutil.h"

#define CONF_FIELD(cfg, opt, type) ((type *)((char *)(cfg) + (opt)->offset))

int
dv_parse_duration(const char *s, double *out)
{
    char *end = NULL;
    double v, mult = 1.0;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) {
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0) {
        return -1;
    }
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0) {
        mult = 1.0;
    } else if (strcmp(end, "ms") == 0) {
        mult = 0.001;
    } else if (strcmp(end, "m") == 0) {
        mult = 60.0;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600.0;
    } else if (strcmp(end, "d") == 0) {
        mult = 86400.0;
    } else {
        return -1;
    }
    *out = v * mult;
    return 0;
}

static const struct dv_conf_opt *
find_opt(const struct dv_conf_opt *opts, size_t nopts, const char *name,
         size_t namelen)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == namelen &&
            strncmp(opts[i].name, name, namelen) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

/* Stores text value v into opt's field, checking type and range. */
static int
set_value(const struct dv_conf_opt *opt, void *cfg, const char *v,
          const char *source, struct dv_err *err)
{
    int64_t i64;
    double d;
    int b;

    switch (opt->type) {
    case DV_CONF_STRING: {
        char **p = CONF_FIELD(cfg, opt, char *);
        free(*p);
        *p = v != NULL ? dv_xstrdup(v) : NULL;
        return 0;
    }
    case DV_CONF_INT:
        if (v == NULL) {
            *CONF_FIELD(cfg, opt, int64_t) = 0;
            return 0;
        }
        if (dv_parse_i64(v, opt->min, opt->max, &i64) < 0) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "invalid value \"%s\" for %s (%s): expected an "
                       "integer from %lld to %lld",
                       v, opt->name, source, (long long)opt->min,
                       (long long)opt->max);
            return -1;
        }
        *CONF_FIELD(cfg, opt, int64_t) = i64;
        return 0;
    case DV_CONF_BOOL:
        if (v == NULL) {
            *CONF_FIELD(cfg, opt, int) = 0;
            return 0;
        }
        if (dv_parse_bool(v, &b) < 0) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "invalid value \"%s\" for %s (%s): expected true or "
                       "false",
                       v, opt->name, source);
            return -1;
        }
        *CONF_FIELD(cfg, opt, int) = b;
        return 0;
    case DV_CONF_DURATION:
        if (v == NULL) {
            *CONF_FIELD(cfg, opt, double) = 0;
            return 0;
        }
        if (dv_parse_duration(v, &d) < 0 || d * 1000.0 < (double)opt->min ||
            d * 1000.0 > (double)opt->max) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "invalid value \"%s\" for %s (%s): expected a "
                       "duration from %gs to %gs",
                       v, opt->name, source, (double)opt->min / 1000.0,
                       (double)opt->max / 1000.0);
            return -1;
        }
        *CONF_FIELD(cfg, opt, double) = d;
        return 0;
    case DV_CONF_SIZE:
        if (v == NULL) {
            *CONF_FIELD(cfg, opt, int64_t) = 0;
            return 0;
        }
        if (dv_parse_size(v, &i64) < 0 || i64 < opt->min || i64 > opt->max) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "invalid value \"%s\" for %s (%s): expected a size "
                       "from %lld to %lld bytes",
                       v, opt->name, source, (long long)opt->min,
                       (long long)opt->max);
            return -1;
        }
        *CONF_FIELD(cfg, opt, int64_t) = i64;
        return 0;
    }
    return -1;
}

static void
env_name(const char *name, char *out, size_t size)
{
    size_t j = 0;

    j += dv_strlcpy(out, "DROVER_", size);
    for (const char *p = name; *p != '\0' && j + 1 < size; p++, j++) {
        out[j] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    }
    out[j < size ? j : size - 1] = '\0';
}

/* Applies a JSON file; only_reloadable limits it to reloadable options. */
static int
apply_file(const struct dv_conf_opt *opts, size_t nopts, void *cfg,
           const char *path, int only_reloadable, struct dv_err *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    const char *key;
    json_t *val;
    int rc = -1;

    if (root == NULL) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "could not read configuration file \"%s\": %s (line %d)",
                   path, jerr.text, jerr.line);
        return -1;
    }
    if (!json_is_object(root)) {
        dv_err_set(err, DV_EINVAL, "invalid_config",
                   "configuration file \"%s\" must hold a JSON object", path);
        goto out;
    }
    json_object_foreach(root, key, val)
    {
        const struct dv_conf_opt *opt =
            find_opt(opts, nopts, key, strlen(key));
        char num[64];
        const char *text = NULL;

        if (opt == NULL) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "unknown key \"%s\" in configuration file \"%s\"", key,
                       path);
            goto out;
        }
        if (only_reloadable && !opt->reloadable) {
            continue;
        }
        if (json_is_string(val)) {
            text = json_string_value(val);
        } else if (json_is_integer(val)) {
            snprintf(num, sizeof(num), "%lld",
                     (long long)json_integer_value(val));
            text = num;
        } else if (json_is_real(val)) {
            snprintf(num, sizeof(num), "%g", json_real_value(val));
            text = num;
        } else if (json_is_boolean(val)) {
            text = json_is_true(val) ? "true" : "false";
        } else if (!json_is_null(val)) {
            dv_err_set(err, DV_EINVAL, "invalid_config",
                       "key \"%s\" in configuration file \"%s\" must be a "
                       "string, number or boolean",
                       key, path);
            goto out;
        }
        if (set_value(opt, cfg, text, path, err) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int
apply_env(const struct dv_conf_opt *opts, size_t nopts, void *cfg,
          int only_reloadable, struct dv_err *err)
{
    char name[128];

    for (size_t i = 0; i < nopts; i++) {
        const char *v;

        if (only_reloadable && !opts[i].reloadable) {
            continue;
        }
        env_name(opts[i].name, name, sizeof(name));
        v = getenv(name);
        if (v != NULL && set_value(&opts[i], cfg, v, name, err) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Walks argv. With cfg NULL it only finds --config; with args NULL it skips
 * positionals. only_reloadable limits which flags are applied. */
static int
apply_flags(const struct dv_conf_opt *opts, size_t nopts, void *cfg, int argc,
            char **argv, struct dv_conf_args *args, int only_reloadable,
            struct dv_err *err)
{
    int positional_only = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name, *eq, *val = NULL;
        const struct dv_conf_opt *opt;
        size_t namelen;

        if (positional_only || a[0] != '-' || strcmp(a, "-") == 0) {
            if (args != NULL) {
                args->args[args->nargs++] = dv_xstrdup(a);
            }
            continue;
        }
        if (strcmp(a, "--") == 0) {
            positional_only = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            if (args != NULL) {
                args->help = 1;
            }
            continue;
        }
        if (a[1] != '-') {
            dv_err_set(err, DV_EINVAL, "invalid_config", "unknown option %s",
                       a);
            return -1;
        }
        name = a + 2;
        eq = strchr(name, '=');
        namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (eq != NULL) {
            val = eq + 1;
        }
        if (namelen == 6 && strncmp(name, "config", 6) == 0) {
            if (val == NULL) {
                if (i + 1 >= argc) {
                    dv_err_set(err, DV_EINVAL, "invalid_config",
                               "option --config needs a value");
                    return -1;
                }
                val = argv[++i];
            }
            if (args != NULL) {
                args->config_path = val;
            }
            continue;
        }
        if (eq == NULL && strcmp(name, "check-config") == 0) {
            if (args != NULL) {
                args->check_config = 1;
            }
            continue;
        }
        if (eq == NULL && strcmp(name, "print-config") == 0) {
            if (args != NULL) {
                args->print_config = 1;
            }
            continue;
        }
        opt = find_opt(opts, nopts, name, namelen);
        if (opt == NULL) {
            dv_err_set(err, DV_EINVAL, "invalid_config", "unknown option --%.*s",
                       (int)namelen, name);
            return -1;
        }
        if (val == NULL) {
            if (opt->type == DV_CONF_BOOL) {
                val = "true";
            } else if (i + 1 >= argc) {
                dv_err_set(err, DV_EINVAL, "invalid_config",
                           "option --%s needs a value", opt->name);
                return -1;
            } else {
                val = argv[++i];
            }
        }
        if (cfg != NULL && (!only_reloadable || opt->reloadable) &&
            set_value(opt, cfg, val, "command line", err) < 0) {
            return -1;
        }
    }
    return 0;
}

int
dv_conf_load(const struct dv_conf_opt *opts, size_t nopts, void *cfg,
             int argc, char **argv, struct dv_conf_args *args,
             struct dv_err *err)
{
    memset(args, 0, sizeof(*args));
    args->args = dv_xcalloc((size_t)argc + 1, sizeof(char *));
    for (size_t i = 0; i < nopts; i++) {
        if (set_value(&opts[i], cfg, opts[i].def, "default", err) < 0) {
            goto fail;
        }
    }
    /* First pass finds --config and the positionals; values come later so
     * that flags win over the file. */
    if (apply_flags(opts, nopts, NULL, argc, argv, args, 0, err) < 0) {
        goto fail;
    }
    if (args->config_path == NULL) {
        const char *p = getenv("DROVER_CONFIG");
        if (p != NULL && *p != '\0') {
            args->config_path = p;
        }
    }
    if (args->config_path != NULL &&
        apply_file(opts, nopts, cfg, args->config_path, 0, err) < 0) {
        goto fail;
    }
    if (apply_env(opts, nopts, cfg, 0, err) < 0) {
        goto fail;
    }
    if (apply_flags(opts, nopts, cfg, argc, argv, NULL, 0, err) < 0) {
        goto fail;
    }
    return 0;
fail:
    dv_conf_args_cleanup(args);
    return -1;
}

int
dv_conf_reload(const struct dv_conf_opt *opts, size_t nopts, void *cfg,
               const char *path, int argc, char **argv, struct dv_err *err)
{
    /* Work on a scratch copy so a bad file leaves cfg as it was. Strings
     * are shared until replaced, so copy them first. */
    size_t size = 0;
    char *scratch;
    int rc = -1;

    for (size_t i = 0; i < nopts; i++) {
        size_t end = opts[i].offset + (opts[i].type == DV_CONF_STRING
                                           ? sizeof(char *)
                                       : opts[i].type == DV_CONF_BOOL
                                           ? sizeof(int)
                                           : sizeof(int64_t));
        if (end > size) {
            size = end;
        }
    }
    scratch = dv_xcalloc(1, size);
    memcpy(scratch, cfg, size);
    for (size_t i = 0; i < nopts; i++) {
        if (opts[i].type == DV_CONF_STRING) {
            char **p = CONF_FIELD(scratch, &opts[i], char *);
            *p = dv_xstrdup(*p);
        }
    }
    if (path != NULL && apply_file(opts, nopts, scratch, path, 1, err) < 0) {
        goto out;
    }
    if (apply_env(opts, nopts, scratch, 1, err) < 0 ||
        apply_flags(opts, nopts, scratch, argc, argv, NULL, 1, err) < 0) {
        goto out;
    }
    dv_conf_cleanup(opts, nopts, cfg);
    memcpy(cfg, scratch, size);
    free(scratch);
    return 0;
out:
    dv_conf_cleanup(opts, nopts, scratch);
    free(scratch);
    return rc;
}

void
dv_conf_format(const struct dv_conf_opt *opts, size_t nopts, const void *cfg,
               struct dv_buf *out)
{
    for (size_t i = 0; i < nopts; i++) {
        const struct dv_conf_opt *o = &opts[i];
        const char *base = cfg;

        dv_buf_printf(out, "%s = ", o->name);
        switch (o->type) {
        case DV_CONF_STRING: {
            const char *s = *(char *const *)(base + o->offset);
            dv_buf_printf(out, "%s", s != NULL ? s : "");
            break;
        }
        case DV_CONF_INT:
        case DV_CONF_SIZE:
            dv_buf_printf(out, "%lld",
                          (long long)*(const int64_t *)(base + o->offset));
            break;
        case DV_CONF_BOOL:
            dv_buf_puts(out,
                        *(const int *)(base + o->offset) ? "true" : "false");
            break;
        case DV_CONF_DURATION:
            dv_buf_printf(out, "%gs", *(const double *)(base + o->offset));
            break;
        }
        dv_buf_putc(out, '\n');
    }
}

void
dv_conf_usage(const struct dv_conf_opt *opts, size_t nopts,
              struct dv_buf *out)
{
    char env[128];

    for (size_t i = 0; i < nopts; i++) {
        env_name(opts[i].name, env, sizeof(env));
        dv_buf_printf(out, "  --%-22s %s (default %s; env %s%s)\n",
                      opts[i].name, opts[i].help != NULL ? opts[i].help : "",
                      opts[i].def != NULL ? opts[i].def : "unset", env,
                      opts[i].reloadable ? "; reloadable" : "");
    }
    dv_buf_puts(out, "  --config FILE            JSON file of the options "
                     "above (env DROVER_CONFIG)\n"
                     "  --check-config           check the configuration "
                     "and exit\n"
                     "  --print-config           print the configuration "
                     "and exit\n");
}

void
dv_conf_cleanup(const struct dv_conf_opt *opts, size_t nopts, void *cfg)
{
    for (size_t i = 0; i < nopts; i++) {
        if (opts[i].type == DV_CONF_STRING) {
            char **p = CONF_FIELD(cfg, &opts[i], char *);
            free(*p);
            *p = NULL;
        }
    }
}

void
dv_conf_args_cleanup(struct dv_conf_args *args)
{
    if (args->args != NULL) {
        for (int i = 0; i < args->nargs; i++) {
            free(args->args[i]);
        }
        free(args->args);
    }
    args->args = NULL;
    args->nargs = 0;
}
