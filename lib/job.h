/*
 * The job specification: what qsub and the JSON API submit, what qmgr
 * validates and stores (jobs.spec) and what noded runs. Decoded strictly
 * from JSON at the API edge (unknown keys, wrong types and oversized values
 * are errors), normalised (defaults, resources parsed), and encoded back.
 *
 * JSON form (docs/api.md has the full description):
 *   {"name": "job", "queue": "workq", "type": "batch", "owner": "alice",
 *    "group": "alice", "submit_host": "h1", "priority": 0, "hold": false,
 *    "rerunnable": true, "script": "...", "argv": ["cmd", "arg"],
 *    "shell": "/bin/bash", "workdir": "/home/alice",
 *    "env": ["PBS_O_HOME=/home/alice", ...], "stdout": "/p/job.o12",
 *    "stderr": "/p/job.e12", "join": "n|oe|eo",
 *    "resources": {"walltime": "1:00:00", "select": "1:ncpus=2", ...},
 *    "depend": "afterok:12.srv", "submit_args": "-N job job.sh",
 *    "account": "proj42", "project": "climate", "mail_points": "be",
 *    "mail_users": "alice@example.org,bob", "execution_time": 1767225600,
 *    "keep_files": "oe", "shell_path_list": "/bin/bash@n1,/bin/sh"}
 * Resources other than the built-in ones (walltime, select, place, ncpus,
 * mem, ngpus...) are custom resources: normalisation keeps them aside
 * (s->ncustom) for qmgr to check against the operator's declarations.
 * Encoded specs also carry "resource_list" (canonical PBS Resource_List
 * text values, sorted by name) and "placement" (below), which the decoder
 * accepts and ignores (they are recomputed), as it does "chunks" (the
 * parsed select that specs stored before "placement" carry).
 *
 * Every normalised spec, PBS or native (docs/jobspec.md), also carries the
 * derived "placement" object, the one thing the schedulers read:
 *   "placement": {
 *     "gang": true,            whole job or nothing (PBS jobs)
 *     "place": "free",         pack | scatter | free (PBS -l place)
 *     "exclusive": false,      place=...:excl: nodes used only by this job
 *     "datacenters": ["dc1"],  empty: any
 *     "pool": "default",       null: any pool
 *     "groups": [{
 *       "name": "web", "count": 3,          instances 0..count-1
 *       "cores": 2, "memory": 1073741824, "gpus": 0, "disk": 0,
 *       "numa": "prefer",                   none | prefer | require
 *       "walltime": 3600,                   seconds; 0: no limit
 *       "constraints": [{"attribute": "${attr.kernel.name}",
 *                        "operator": "=", "value": "linux"}],
 *       "affinities": [{"attribute": "${node.datacenter}", "operator": "=",
 *                       "value": "dc1", "weight": 50}],
 *       "spread": [{"attribute": "${node.datacenter}", "weight": 100,
 *                   "targets": [{"value": "dc1", "percent": 70}]}],
 *       "reschedule": {"attempts": 1, "interval": 86400, "delay": 5,
 *                      "unlimited": false}}]}     native groups only
 * Job-level constraints, affinities and spread are merged into each
 * group's. Operators: = != < <= > >= regexp version set_contains
 * distinct_hosts is_set is_not_set. Attributes: ${attr.<fingerprint key>},
 * ${meta.<key>}, ${node.name}, ${node.datacenter}, ${node.pool},
 * ${node.class}, ${node.id}.
 */
#ifndef DV_JOB_H
#define DV_JOB_H

#include <jansson.h>

#include "lib/err.h"
#include "lib/jobspec.h"
#include "lib/resources.h"

#define DV_JOB_MAX_SCRIPT (1024 * 1024)
#define DV_JOB_MAX_ARGS 4096
#define DV_JOB_MAX_ENV 4096
#define DV_JOB_MAX_STRING (64 * 1024)
#define DV_JOB_MAX_NAME 236
#define DV_JOB_MAX_RESOURCES 64

enum dv_job_state {
    DV_JOB_QUEUED = 0, /* Q: waiting for placement */
    DV_JOB_HELD,       /* H: held by a user (hold_types) */
    DV_JOB_RUNNING,    /* R: placed; its allocations run */
    DV_JOB_EXITING,    /* E: being stopped (qdel) or ending */
    DV_JOB_FINISHED,   /* F: done, kept as history */
    DV_JOB_WAITING,    /* W: waiting for its execution time (qsub -a) */
};
#define DV_JOB_NSTATES 6

/* "queued" <-> DV_JOB_QUEUED...; -1 when unknown. */
int dv_job_state_parse(const char *s);
const char *dv_job_state_name(enum dv_job_state st);
/* PBS's state letter: Q H R E F W. */
char dv_job_state_letter(enum dv_job_state st);

struct dv_job_spec {
    char *name;
    char *queue; /* NULL: the default queue */
    char *type;  /* "batch" */
    char *owner;
    char *group;
    char *submit_host;
    int priority; /* -1024..1023 */
    int hold;
    int rerunnable;
    char *script;
    char **argv;
    int argc;
    char *shell;
    char *workdir;
    char **env; /* "NAME=value" */
    int nenv;
    char *stdout_path;
    char *stderr_path;
    char *join; /* "n", "oe", "eo" */
    struct dv_kv *resources; /* as requested: name -> PBS text */
    int nresources;
    char *depend;
    char *array; /* "X-Y[:Z][%max]" (lib/array.h): an array job */
    char *submit_args;
    /* Sites' attributes (PBS -A -P -m -M -a -k -S list); NULL/0: unset. */
    char *account;
    char *project;
    char *mail_points; /* "n" or letters of "abe" */
    char *mail_users;  /* user[@host][,...] */
    int64_t execution_time; /* epoch seconds; 0: none */
    char *keep_files;       /* "n", "d", or letters of "oe" with "d" */
    char *shell_path_list;  /* -S as given when it names hosts */
    /* A native job (docs/jobspec.md): its groups, rules and policies;
     * NULL for a PBS-style job. A spec is one or the other, never both. */
    struct dv_jobspec *native;
    const char *pbs_key; /* the first PBS-only key decoded (static) */
    /* Filled by dv_job_spec_normalize (native jobs: the totals only): */
    struct dv_resreq req;
    int ncustom; /* resources not built in, first in s->resources order */
    int *custom; /* their indexes in s->resources */
    int normalized;
};

void dv_job_spec_init(struct dv_job_spec *s);
void dv_job_spec_cleanup(struct dv_job_spec *s);

/* Decodes j into s (initialised by the caller; previous contents freed).
 * Strict: unknown keys, wrong types, strings over DV_JOB_MAX_STRING (the
 * script over DV_JOB_MAX_SCRIPT), too many args, env entries or resources
 * are errors (DV_EINVAL / DV_ETOOLARGE with a message naming the field).
 * A spec with any native key (groups, datacenters, node_pool, meta,
 * constraints, affinities, spread) is native (s->native set; errors name
 * the JSON path, lib/jobspec.h) and may not have PBS-only keys (script,
 * argv, resources, env, ...). Returns 0 or -1. */
int dv_job_spec_from_json(const json_t *j, struct dv_job_spec *s,
                          struct dv_err *err);
/* Checks the spec and fills defaults: type "batch", join "n", rerunnable
 * as given, name "STDIN" when absent; parses resources into s->req (PBS
 * errors, see lib/resources.h). Requires owner, and exactly one of script
 * and argv. Native specs: a name, type batch, service or system, and
 * dv_jobspec_normalize (defaults, totals into s->req). Returns 0 or -1
 * with err set (code "invalid_job" unless a more precise one applies). */
int dv_job_spec_normalize(struct dv_job_spec *s, struct dv_err *err);
/* Encodes s; returns a new reference (caller decrefs). When s is
 * normalised, adds "placement" and "resource_list". */
json_t *dv_job_spec_to_json(const struct dv_job_spec *s);
/* Sets (replacing) resource name to value in s->resources. */
void dv_job_spec_set_resource(struct dv_job_spec *s, const char *name,
                              const char *value);
/* Appends "NAME=value" to s->env, replacing an entry of the same name. */
void dv_job_spec_setenv(struct dv_job_spec *s, const char *name,
                        const char *value);
/* PBS's Mail_Points (n, or letters of abe, each at most once), and
 * Keep_Files (n, or letters of o e d, each at most once, n alone). Return
 * 1 when valid, else 0. */
int dv_job_mail_points_valid(const char *s);
int dv_job_keep_files_valid(const char *s);
/* Mail_Users: user[@host][,user[@host]...]: no blanks, quotes or empty
 * items, and no item starting with '-' (never an option to sendmail). */
int dv_job_mail_users_valid(const char *s);
/* The shell a PBS job runs with on host (qsub -S path[@host],...): the
 * entry of shell_path_list naming host (its full or short name), else
 * s->shell (the entry without a host, or the first). Returns a new string
 * (caller frees), NULL when the job names no shell. */
char *dv_job_shell_for_host(const struct dv_job_spec *s, const char *host);
/* Checks a -W depend value's syntax: type:jobid[:jobid...][,type:...]
 * with PBS's types. Returns 0 or -1 (code "bad_depend", "Invalid Job
 * Dependency"). */
int dv_job_depend_check(const char *depend, struct dv_err *err);

/* Job id text: "123.<server>" and the parse back to the number ("123",
 * "123.srv", "123.srv.domain" all give 123). Returns 0 or -1. */
void dv_job_id_format(long long id, const char *server, char *buf,
                      size_t size);
int dv_job_id_parse(const char *s, long long *id);

#endif
