/*
 * Reads a job's derived "placement" object (lib/job.h) into the
 * scheduler's own structures: groups with their per-instance resources,
 * constraints (regexps compiled once), affinities, spread and reschedule
 * limits. A stored spec that does not parse is a bug upstream: the
 * evaluation fails with the reason rather than being retried forever.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/resources.h"
#include "lib/strutil.h"
#include "sched/sched.h"

char *
sched_attr_key(const char *text)
{
    size_t n;

    if (text == NULL) {
        return NULL;
    }
    n = strlen(text);
    if (n > 3 && text[0] == '$' && text[1] == '{' && text[n - 1] == '}') {
        return dv_xstrndup(text + 2, n - 3);
    }
    return NULL;
}

static void
rule_cleanup(struct sched_rule *r)
{
    free(r->attr);
    free(r->value);
    if (r->have_re) {
        regfree(&r->re);
    }
}

void
sched_job_cleanup(struct sched_job *job)
{
    free(job->name);
    free(job->type);
    free(job->state);
    free(job->alter_time);
    for (int i = 0; i < job->ndatacenters; i++) {
        free(job->datacenters[i]);
    }
    free(job->datacenters);
    free(job->pool);
    sched_array_free(job->array);
    job->array = NULL;
    for (int g = 0; g < job->ngroups; g++) {
        struct sched_group *gr = &job->groups[g];
        free(gr->name);
        for (int i = 0; i < gr->nconstraints; i++) {
            rule_cleanup(&gr->constraints[i]);
        }
        free(gr->constraints);
        for (int i = 0; i < gr->naffinities; i++) {
            rule_cleanup(&gr->affinities[i]);
        }
        free(gr->affinities);
        for (int i = 0; i < gr->nspreads; i++) {
            free(gr->spreads[i].attr);
            for (int t = 0; t < gr->spreads[i].ntargets; t++) {
                free(gr->spreads[i].targets[t].value);
            }
            free(gr->spreads[i].targets);
        }
        free(gr->spreads);
    }
    free(job->groups);
    memset(job, 0, sizeof(*job));
}

static int
parse_op(const char *s, enum sched_op *op)
{
    static const struct {
        const char *name;
        enum sched_op op;
    } ops[] = {
        {"=", OP_EQ},
        {"==", OP_EQ},
        {"is", OP_EQ},
        {"!=", OP_NE},
        {"not", OP_NE},
        {"<", OP_LT},
        {"<=", OP_LE},
        {">", OP_GT},
        {">=", OP_GE},
        {"regexp", OP_REGEXP},
        {"version", OP_VERSION},
        {"set_contains", OP_SET_CONTAINS},
        {"distinct_hosts", OP_DISTINCT_HOSTS},
        {"is_set", OP_IS_SET},
        {"is_not_set", OP_IS_NOT_SET},
    };

    if (s == NULL) {
        *op = OP_EQ;
        return 0;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(s, ops[i].name) == 0) {
            *op = ops[i].op;
            return 0;
        }
    }
    return -1;
}

static int
parse_rule(json_t *o, struct sched_rule *r, int with_weight, struct dv_err *err)
{
    const char *attr = json_string_value(json_object_get(o, "attribute"));
    const char *op = json_string_value(json_object_get(o, "operator"));
    json_t *value = json_object_get(o, "value");

    memset(r, 0, sizeof(*r));
    if (parse_op(op, &r->op) < 0) {
        dv_err_set(err, DV_EINVAL, "bad_spec", "unknown operator \"%s\"", op);
        return -1;
    }
    if (r->op != OP_DISTINCT_HOSTS) {
        r->attr = sched_attr_key(attr);
        if (r->attr == NULL) {
            dv_err_set(err, DV_EINVAL, "bad_spec",
                       "attribute \"%s\" is not ${...}",
                       attr != NULL ? attr : "");
            return -1;
        }
    }
    if (json_is_string(value)) {
        r->value = dv_xstrdup(json_string_value(value));
    } else if (json_is_integer(value)) {
        r->value = dv_xasprintf("%lld", (long long)json_integer_value(value));
    } else if (json_is_boolean(value)) {
        r->value = dv_xstrdup(json_is_true(value) ? "true" : "false");
    }
    if (r->op == OP_REGEXP) {
        if (r->value == NULL ||
            regcomp(&r->re, r->value, REG_EXTENDED | REG_NOSUB) != 0) {
            dv_err_set(err, DV_EINVAL, "bad_spec", "bad regexp \"%s\"",
                       r->value != NULL ? r->value : "");
            return -1;
        }
        r->have_re = 1;
    }
    if (with_weight) {
        json_t *w = json_object_get(o, "weight");
        r->weight = json_is_integer(w) ? (int)json_integer_value(w) : 50;
    }
    return 0;
}

static int
parse_rules(json_t *a, struct sched_rule **out, int *n, int with_weight,
            struct sched_group *g, struct dv_err *err)
{
    size_t i;
    json_t *o;

    *out = NULL;
    *n = 0;
    if (!json_is_array(a)) {
        return 0;
    }
    *out = dv_xcalloc(json_array_size(a) + 1, sizeof(**out));
    json_array_foreach(a, i, o)
    {
        struct sched_rule *r = &(*out)[*n];
        if (parse_rule(o, r, with_weight, err) < 0) {
            rule_cleanup(r);
            return -1;
        }
        if (g != NULL && r->op == OP_DISTINCT_HOSTS) {
            g->distinct_hosts = r->value == NULL || strcmp(r->value, "false");
            rule_cleanup(r);
            continue;
        }
        (*n)++;
    }
    return 0;
}

static int
parse_spreads(json_t *a, struct sched_group *g, struct dv_err *err)
{
    size_t i, j;
    json_t *o, *t;

    if (!json_is_array(a)) {
        return 0;
    }
    g->spreads = dv_xcalloc(json_array_size(a) + 1, sizeof(*g->spreads));
    json_array_foreach(a, i, o)
    {
        struct sched_spread *sp = &g->spreads[g->nspreads];
        json_t *targets = json_object_get(o, "targets");
        json_t *w = json_object_get(o, "weight");

        sp->attr =
            sched_attr_key(json_string_value(json_object_get(o, "attribute")));
        if (sp->attr == NULL) {
            dv_err_set(err, DV_EINVAL, "bad_spec",
                       "spread attribute is not ${...}");
            return -1;
        }
        sp->weight = json_is_integer(w) ? (int)json_integer_value(w) : 50;
        g->nspreads++;
        if (!json_is_array(targets)) {
            continue;
        }
        sp->targets = dv_xcalloc(json_array_size(targets) + 1,
                                 sizeof(*sp->targets));
        json_array_foreach(targets, j, t)
        {
            const char *v = json_string_value(json_object_get(t, "value"));
            json_t *pc = json_object_get(t, "percent");
            if (v == NULL) {
                continue;
            }
            sp->targets[sp->ntargets].value = dv_xstrdup(v);
            sp->targets[sp->ntargets].percent =
                json_is_integer(pc) ? (int)json_integer_value(pc) : 0;
            sp->ntargets++;
        }
    }
    return 0;
}

static int64_t
get_i64(json_t *o, const char *key, int64_t def)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static int
parse_group(json_t *o, struct sched_group *g, const char *type,
            struct dv_err *err)
{
    const char *numa = json_string_value(json_object_get(o, "numa"));
    json_t *resched = json_object_get(o, "reschedule");
    const char *name = json_string_value(json_object_get(o, "name"));

    g->name = dv_xstrdup(name != NULL ? name : "group");
    g->count = (int)get_i64(o, "count", 1);
    g->cores = (int)get_i64(o, "cores", 1);
    g->mem = get_i64(o, "memory", 0);
    g->gpus = (int)get_i64(o, "gpus", 0);
    g->disk = get_i64(o, "disk", 0);
    if (g->count < 0 || g->count > 1000000 || g->cores < 0 ||
        g->cores > DV_MAX_NCPUS || g->mem < 0 || g->mem > DV_MAX_MEM ||
        g->gpus < 0 || g->gpus > 1024 || g->disk < 0) {
        dv_err_set(err, DV_EINVAL, "bad_spec",
                   "group \"%s\" has out-of-range resources", g->name);
        return -1;
    }
    g->numa = numa == NULL || strcmp(numa, "prefer") == 0 ? NUMA_PREFER
              : strcmp(numa, "require") == 0           ? NUMA_REQUIRE
                                                       : NUMA_NONE;
    /* Defaults as Nomad's: batch one attempt, service and system
     * unlimited. */
    g->resched_unlimited = strcmp(type, "batch") != 0;
    g->resched_attempts = strcmp(type, "batch") == 0 ? 1 : 0;
    if (json_is_object(resched)) {
        json_t *u = json_object_get(resched, "unlimited");
        g->resched_attempts =
            (int)get_i64(resched, "attempts", g->resched_attempts);
        if (json_is_boolean(u)) {
            g->resched_unlimited = json_is_true(u);
        }
    }
    if (parse_rules(json_object_get(o, "constraints"), &g->constraints,
                    &g->nconstraints, 0, g, err) < 0 ||
        parse_rules(json_object_get(o, "affinities"), &g->affinities,
                    &g->naffinities, 1, NULL, err) < 0 ||
        parse_spreads(json_object_get(o, "spread"), g, err) < 0) {
        return -1;
    }
    return 0;
}

int
sched_job_parse_placement(struct sched_job *job, const char *text,
                          struct dv_err *err)
{
    json_error_t jerr;
    json_t *root = json_loads(text != NULL ? text : "", 0, &jerr);
    json_t *groups = json_object_get(root, "groups");
    json_t *dcs = json_object_get(root, "datacenters");
    const char *place = json_string_value(json_object_get(root, "place"));
    const char *pool = json_string_value(json_object_get(root, "pool"));
    json_t *v;
    size_t i;
    int rc = -1;

    if (!json_is_object(root) || !json_is_array(groups) ||
        json_array_size(groups) == 0 || json_array_size(groups) > 4096) {
        dv_err_set(err, DV_EINVAL, "bad_spec",
                   "job %lld: stored spec has no valid placement",
                   (long long)job->id);
        goto out;
    }
    job->gang = json_is_true(json_object_get(root, "gang"));
    job->exclusive = json_is_true(json_object_get(root, "exclusive"));
    job->place = place == NULL                    ? PLACE_FREE
                 : strcmp(place, "pack") == 0    ? PLACE_PACK
                 : strcmp(place, "scatter") == 0 ? PLACE_SCATTER
                                                 : PLACE_FREE;
    job->pool = dv_xstrdup(pool);
    if (json_is_array(dcs) && json_array_size(dcs) > 0) {
        job->datacenters = dv_xcalloc(json_array_size(dcs), sizeof(char *));
        json_array_foreach(dcs, i, v)
        {
            if (json_is_string(v)) {
                job->datacenters[job->ndatacenters++] =
                    dv_xstrdup(json_string_value(v));
            }
        }
    }
    job->groups = dv_xcalloc(json_array_size(groups), sizeof(*job->groups));
    json_array_foreach(groups, i, v)
    {
        job->ngroups++;
        if (parse_group(v, &job->groups[i], job->type != NULL ? job->type
                                                              : "batch",
                        err) < 0) {
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
