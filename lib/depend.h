/*
 * Job dependencies (qsub -W depend=...): the parsed form of a dependency
 * list, PBS's text for it, and the rule that decides what a target job's
 * start or end means for a job that depends on it. The database applies
 * the same rule when a target ends (sql/0005-depend.sql,
 * drover_depend_resolve); qmgr applies it here to targets that have
 * already started or finished when a dependent is submitted.
 */
#ifndef DV_DEPEND_H
#define DV_DEPEND_H

#include "lib/err.h"

/* PBS's types. The after types wait on the target; the before types are
 * registered on the target, which then waits on this job with the
 * matching after type (dv_depend_reverse). */
enum dv_depend_type {
    DV_DEPEND_AFTER,       /* the target started */
    DV_DEPEND_AFTEROK,     /* the target ended with exit status 0 */
    DV_DEPEND_AFTERNOTOK,  /* the target ended with a non-zero status */
    DV_DEPEND_AFTERANY,    /* the target ended */
    DV_DEPEND_BEFORE,      /* the target waits for this job's start */
    DV_DEPEND_BEFOREOK,    /* ... for this job's success */
    DV_DEPEND_BEFORENOTOK, /* ... for this job's failure */
    DV_DEPEND_BEFOREANY,   /* ... for this job's end */
};

/* One job of a dependency list: "12", "12.srv", "124[]" (a whole array),
 * "124[7]" (one subjob). */
struct dv_depend_edge {
    enum dv_depend_type type;
    long long id;
    int array; /* the id used array syntax */
    int index; /* subjob index, -1 for a job or a whole array */
};

struct dv_depend {
    struct dv_depend_edge *edges;
    int nedges;
    int on; /* on:<count>: before-registrations this job waits for, or 0 */
};

/* What a target's event means for one dependency of after type. */
enum dv_depend_event {
    DV_DEPEND_STARTED, /* the target started running */
    DV_DEPEND_ENDED,   /* the target ended after it had run */
    DV_DEPEND_DELETED, /* the target ended without ever running (qdel) */
};

enum dv_depend_outcome {
    DV_DEPEND_WAIT,  /* not decided yet */
    DV_DEPEND_MET,   /* satisfied: the edge goes away */
    DV_DEPEND_UNMET, /* can never be met: the dependent is deleted */
};

/* The most jobs one dependency list may name. */
#define DV_DEPEND_MAX_EDGES 10000

/* Parses "type:id[:id...][,type:...]" (types after afterok afternotok
 * afterany before beforeok beforenotok beforeany, and on:<count>) into
 * out, which the caller cleans up with dv_depend_cleanup (also on error).
 * Returns 0, or -1 with code "bad_depend" ("Invalid Job Dependency"). */
int dv_depend_parse(const char *text, struct dv_depend *out,
                    struct dv_err *err);
void dv_depend_cleanup(struct dv_depend *d);

/* "afterok", ...: the type's name (static). */
const char *dv_depend_type_name(enum dv_depend_type type);
/* Parses a type name; returns the type or -1. */
int dv_depend_type_parse(const char *name);
/* The after type a before type registers on its target (before ->
 * after, beforeok -> afterok, ...); an after type is returned as is. */
enum dv_depend_type dv_depend_reverse(enum dv_depend_type type);
/* True for the before types. */
int dv_depend_is_before(enum dv_depend_type type);

/* The rule: what event (with the target's exit status when has_exit)
 * means for a dependency of after type. */
enum dv_depend_outcome dv_depend_outcome(enum dv_depend_type type,
                                         enum dv_depend_event event,
                                         int has_exit, int exit_status);

/* PBS's text of a parsed list, ids expanded with the server as qstat -f
 * prints the depend attribute: "afterok:12.srv@srv:13.srv@srv,on:1". One
 * group per type, in the order the types first appear. Returns a new
 * string; caller frees. */
char *dv_depend_format(const struct dv_depend *d, const char *server);

#endif
