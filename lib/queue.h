/*
 * Queues as PBS describes them (pbs_queue_attributes(7B)): the attribute
 * names and values qmgr and the API take, their canonical text, and what
 * a queue does to a job at submission (resource defaults, per-job limits,
 * user and group ACLs). Pure: qmgr stores queues (sql/0006-queues.sql),
 * the CLI only prints what qmgr answers. docs/api.md, "Queues".
 *
 * Attributes (names match case-insensitively; values as qmgr takes them):
 *   queue_type        Execution (E); Route is refused
 *   Priority          -1024..1023
 *   enabled, started  boolean: True|T|Y|1|False|F|N|0
 *   max_running       jobs running in the queue (PBS's old form)
 *   max_user_run      jobs running per user in the queue (old form)
 *   max_run           "[o:PBS_ALL=N]", "[u:PBS_GENERIC=N]" or both,
 *                     comma-separated: the new form of the two above
 *   resources_default.R, resources_max.R, resources_min.R
 *                     R among walltime, ncpus, mem, ngpus, nodect
 *   acl_user_enable, acl_group_enable   boolean
 *   acl_users, acl_groups               comma-separated names (user@host
 *                                       allowed; the host is ignored)
 *   preemption        boolean (Drover's): jobs of the queue may preempt
 *                     lower-priority work
 */
#ifndef DV_QUEUE_H
#define DV_QUEUE_H

#include <jansson.h>

#include "lib/err.h"
#include "lib/job.h"
#include "lib/resources.h"

#define DV_QUEUE_NAME_MAX 15 /* PBS_MAXQUEUENAME */
#define DV_QUEUE_MAX_ACL 1024

struct dv_queue {
    char name[DV_QUEUE_NAME_MAX + 1];
    int is_default;
    int priority;
    int enabled;
    int started;
    int preemption;
    int max_running; /* -1: unset (all four) */
    int max_user_run;
    int max_run_all;  /* max_run [o:PBS_ALL=N] */
    int max_run_user; /* max_run [u:PBS_GENERIC=N] */
    int acl_user_enable;
    int acl_group_enable;
    char **acl_users; /* owned */
    int nacl_users;
    char **acl_groups;
    int nacl_groups;
    /* resources_default/max/min: name -> canonical PBS text, owned. */
    struct dv_kv *rdefault;
    int nrdefault;
    struct dv_kv *rmax;
    int nrmax;
    struct dv_kv *rmin;
    int nrmin;
};

enum dv_queue_op {
    DV_QUEUE_SET,    /* = */
    DV_QUEUE_ADD,    /* += (lists: add names; numbers: add) */
    DV_QUEUE_REMOVE, /* -= (lists: remove names) */
};

/* A new queue's attributes: PBS's defaults (Execution, priority 0, not
 * enabled, not started, nothing limited). */
void dv_queue_init(struct dv_queue *q);
void dv_queue_cleanup(struct dv_queue *q);

/* 1 when s is a valid queue name: 1 to 15 of A-Z a-z 0-9 _ -, starting
 * with a letter or digit. */
int dv_queue_name_valid(const char *s);

/* Changes one attribute. Errors (err->code, PBS's text + the attribute):
 * "unknown_attribute" (Undefined attribute), "unknown_resource",
 * "bad_attribute_value" (Illegal attribute or resource value),
 * "attribute_read_only" (total_jobs, state_count, ...). Returns 0 or -1;
 * q is unchanged on error. */
int dv_queue_set(struct dv_queue *q, const char *attr, enum dv_queue_op op,
                 const char *value, struct dv_err *err);
/* Back to the default; the same errors. */
int dv_queue_unset(struct dv_queue *q, const char *attr, struct dv_err *err);

/* The set attributes as PBS lists them, in PBS's order (queue_type,
 * Priority, max_running..., resources_max.*, resources_min.*,
 * resources_default.*, acl_*, enabled, started, max_run): a new array of
 * [name, text] pairs (caller decrefs). Booleans print True/False. */
json_t *dv_queue_attrs_json(const struct dv_queue *q);

/* jsonb storage of a resource list: {"walltime": "01:00:00", ...}. */
json_t *dv_queue_resources_json(const struct dv_kv *r, int n);
/* Parses stored text into r (replacing it). Returns 0 or -1. */
int dv_queue_resources_parse(const char *text, struct dv_kv **r, int *n);
/* A PostgreSQL text[] literal of names ({"a","b"}) into a list, and back. */
int dv_queue_list_parse(const char *text, char ***out, int *n);
char *dv_queue_list_text(char *const *v, int n);
/* The max_run value ("[o:PBS_ALL=4],[u:PBS_GENERIC=2]"), or NULL when
 * neither part is set; caller frees. */
char *dv_queue_max_run_text(const struct dv_queue *q);

/* Submission: 1 when user (and group, may be NULL) may submit to q. */
int dv_queue_acl_allows(const struct dv_queue *q, const char *user,
                        const char *group);
/* Adds q's resources_default values the PBS job s does not request
 * (walltime always; ncpus, mem, ngpus only to a job without select or
 * nodes, where they are job-wide resources) and normalises s again. Sets
 * *changed. Returns 0 or -1 (the normaliser's error). */
int dv_queue_apply_defaults(const struct dv_queue *q, struct dv_job_spec *s,
                            int *changed, struct dv_err *err);
/* Checks a normalised request against resources_max and resources_min
 * (only what the job requests is compared; walltime 0 is "none").
 * Returns 0, or -1 with code "over_limits" and PBS's text. */
int dv_queue_check_limits(const struct dv_queue *q, const struct dv_resreq *rr,
                          struct dv_err *err);

#endif
