/*
 * The native JSON job format (docs/jobspec.md): task groups with counts,
 * tasks, resources, constraints, affinities, spread, restart and
 * reschedule policies, for batch, service and system jobs. Decoded
 * strictly (unknown keys, wrong types and values over their limits are
 * errors whose message starts with the JSON path, e.g.
 * "groups[1].resources.cores: must be an integer >= 1"), normalised
 * (defaults by job type, merged rules, totals) and encoded back.
 *
 * Also derives the "placement" object of lib/job.h's contract, for native
 * specs and for PBS ones (from their parsed select), and the Resource_List
 * summary qstat shows for native jobs. lib/job.c holds the struct
 * dv_jobspec of a native job in struct dv_job_spec and calls these.
 */
#ifndef DV_JOBSPEC_H
#define DV_JOBSPEC_H

#include <jansson.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/resources.h"

#define DV_JOBSPEC_MAX_GROUPS 64
#define DV_JOBSPEC_MAX_TASKS 64      /* per group */
#define DV_JOBSPEC_MAX_COUNT 100000  /* instances of one group */
#define DV_JOBSPEC_MAX_TOTAL 1000000 /* instances of one job */
#define DV_JOBSPEC_MAX_RULES 64      /* constraints or affinities per list */
#define DV_JOBSPEC_MAX_SPREAD 16     /* spread blocks per list */
#define DV_JOBSPEC_MAX_TARGETS 64    /* targets per spread block */
#define DV_JOBSPEC_MAX_META 256      /* meta entries */
#define DV_JOBSPEC_MAX_DCS 64        /* datacenters */
#define DV_JOBSPEC_MAX_GPUS 1024     /* per instance */
#define DV_JOBSPEC_MAX_DURATION (1LL << 31) /* seconds (68 years) */

enum dv_op {
    DV_OP_EQ = 0,
    DV_OP_NE,
    DV_OP_LT,
    DV_OP_LE,
    DV_OP_GT,
    DV_OP_GE,
    DV_OP_REGEXP,
    DV_OP_VERSION,
    DV_OP_SET_CONTAINS,
    DV_OP_DISTINCT_HOSTS,
    DV_OP_IS_SET,
    DV_OP_IS_NOT_SET,
};

/* "=" ... "is_not_set"; -1 when unknown. */
int dv_op_parse(const char *s);
const char *dv_op_name(enum dv_op op);

/* A constraint, or an affinity (weight -100..100, not 0). */
struct dv_rule {
    char *attribute; /* "${attr.kernel.name}"; NULL for distinct_hosts */
    enum dv_op op;
    char *value; /* NULL for distinct_hosts, is_set, is_not_set */
    int weight;  /* affinities only */
};

struct dv_spread_target {
    char *value;
    int percent; /* 0..100 */
};

struct dv_spread {
    char *attribute;
    int weight; /* 0..100 */
    struct dv_spread_target *targets;
    int ntargets;
};

struct dv_task {
    char *name;
    char *command;
    char **args;
    int nargs;
    struct dv_kv *env; /* name -> value, in the order given */
    int nenv;
    char *user; /* normalised: the job's owner when not given */
};

enum dv_restart_mode {
    DV_RESTART_FAIL = 0, /* attempts used up: the allocation fails */
    DV_RESTART_DELAY,    /* attempts used up: wait for the next interval */
};

/* Tasks restarted in place by the node. */
struct dv_restart {
    int attempts;     /* within interval */
    int64_t interval; /* seconds */
    int64_t delay;    /* seconds before each restart */
    enum dv_restart_mode mode;
};

/* Failed allocations replaced by the servers. */
struct dv_reschedule {
    int attempts;     /* within interval; ignored when unlimited */
    int64_t interval; /* seconds */
    int64_t delay;    /* seconds before the replacement is placed */
    int unlimited;
};

enum dv_numa {
    DV_NUMA_NONE = 0, /* cores from anywhere on the node */
    DV_NUMA_PREFER,   /* one NUMA node when the instance fits in one */
    DV_NUMA_REQUIRE,  /* one NUMA node, or not this node */
};

const char *dv_numa_name(enum dv_numa n);

/* Which policy fields the submitter gave (the rest take the type's
 * defaults in dv_jobspec_normalize). */
#define DV_GIVEN_ATTEMPTS 0x1u
#define DV_GIVEN_INTERVAL 0x2u
#define DV_GIVEN_DELAY 0x4u
#define DV_GIVEN_MODE 0x8u
#define DV_GIVEN_UNLIMITED 0x10u

struct dv_group {
    char *name;
    int count; /* instances 0..count-1; normalised to 1 for system jobs */
    int has_count;
    struct dv_rule *constraints;
    int nconstraints;
    struct dv_rule *affinities;
    int naffinities;
    struct dv_spread *spread;
    int nspread;
    struct dv_restart restart;
    unsigned restart_given;
    struct dv_reschedule reschedule;
    unsigned reschedule_given;
    int cores;      /* >= 1; default 1 */
    int64_t memory; /* bytes; 0: none asked */
    int gpus;
    int64_t disk; /* bytes */
    enum dv_numa numa;
    int64_t walltime; /* seconds; 0: no limit */
    struct dv_task *tasks;
    int ntasks;
};

/* The native part of a job spec (what PBS specs do not have). */
struct dv_jobspec {
    char **datacenters; /* empty: any */
    int ndatacenters;
    char *node_pool; /* normalised: "default" when not given; "all": any */
    struct dv_kv *meta;
    int nmeta;
    struct dv_rule *constraints;
    int nconstraints;
    struct dv_rule *affinities;
    int naffinities;
    struct dv_spread *spread;
    int nspread;
    struct dv_group *groups;
    int ngroups;
    int has_groups; /* "groups" was given */
};

/* Returns a new, empty native spec (caller frees). */
struct dv_jobspec *dv_jobspec_new(void);
/* Frees n and everything in it; NULL does nothing. */
void dv_jobspec_free(struct dv_jobspec *n);

/* True when key is a top-level key only native jobs have (datacenters,
 * node_pool, meta, constraints, affinities, spread, groups). */
int dv_jobspec_is_key(const char *key);
/* Decodes the value v of top-level key into n (replacing what it had).
 * Errors (DV_EINVAL "invalid_job", DV_ETOOLARGE "too_large") name the JSON
 * path. Returns 0 or -1. */
int dv_jobspec_decode_key(struct dv_jobspec *n, const char *key,
                          const json_t *v, struct dv_err *err);

/* Checks n for a job of type ("batch", "service", "system") owned by
 * owner and fills defaults: node_pool "default", group count 1 (1 for
 * system jobs whatever was given), cores 1, numa "prefer", task user =
 * owner, restart and reschedule policies by type (docs/jobspec.md). Sets
 * the job's totals in rr (ncpus, mem, ngpus, nodect, walltime; system
 * jobs: one instance of each group, nodect 0; rr->nkinds stays 0).
 * Returns 0 or -1 with err set (the path first). */
int dv_jobspec_normalize(struct dv_jobspec *n, const char *type,
                         const char *owner, struct dv_resreq *rr,
                         struct dv_err *err);
/* 0 when every task runs as owner; else -1 with err set (DV_EFORBIDDEN
 * "forbidden", naming the task). Only root may submit tasks that run as
 * someone else; the API layer calls this for other submitters. */
int dv_jobspec_check_users(const struct dv_jobspec *n, const char *owner,
                           struct dv_err *err);
/* Adds n's keys (normalised values written out in full) to o. */
void dv_jobspec_to_json(const struct dv_jobspec *n, json_t *o);

/* The placement object (lib/job.h) of a normalised native spec; a new
 * reference. */
json_t *dv_jobspec_placement_json(const struct dv_jobspec *n, const char *type);
/* The placement object of a PBS job from its parsed resources: one group
 * "chunk<i>" per select chunk kind, gang, place and exclusive from -l
 * place, any datacenter and pool. A new reference. */
json_t *dv_jobspec_pbs_placement_json(const struct dv_resreq *rr);
/* Resource_List of a native job (ncpus, nodect, and mem, ngpus, walltime
 * when not zero) as PBS texts; a new reference. */
json_t *dv_jobspec_resource_list_json(const struct dv_resreq *rr);

/* Durations: an integer number of seconds (JSON number or text), a
 * sequence of <integer><unit> with units d h m s ("1h30m", "90s"), or
 * PBS's [[HH:]MM:]SS. Returns 0 or -1 (garbage, or over
 * DV_JOBSPEC_MAX_DURATION). */
int dv_jobspec_parse_duration(const char *s, int64_t *seconds);
/* The canonical text: "0s", "45s", "1h30m", "24h". */
void dv_jobspec_format_duration(int64_t seconds, char *buf, size_t size);
/* Checks a version constraint such as ">= 1.2, < 2.0" (comma-separated
 * clauses of an optional operator = != > >= < <= ~> and a version
 * 1[.2[.3...]][-pre][+build]). Returns 0 or -1. */
int dv_version_constraint_check(const char *s);

#endif
