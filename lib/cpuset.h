/*
 * Sets of core indexes in hwloc's list syntax ("0-3,8,10-11"), as stored in
 * nodes.free_cpuset and allocations.cpuset. Thin wrappers over hwloc
 * bitmaps so that qmgr, the schedulers and noded agree on one syntax.
 * Functions returning char * return a new string (caller frees), or NULL
 * with err set when an input does not parse.
 */
#ifndef DV_CPUSET_H
#define DV_CPUSET_H

#include "lib/err.h"

/* "0-(n-1)", or "" for n <= 0. */
char *dv_cpuset_first_n(int n);
/* Number of indexes in s; -1 when s does not parse. */
int dv_cpuset_count(const char *s);
/* a | b. */
char *dv_cpuset_union(const char *a, const char *b, struct dv_err *err);
/* a & ~b. */
char *dv_cpuset_subtract(const char *a, const char *b, struct dv_err *err);
/* 1 when every index of sub is in set, 0 when not, -1 on a parse error. */
int dv_cpuset_contains(const char *set, const char *sub);
/* 1 when a and b share an index, 0 when not, -1 on a parse error. */
int dv_cpuset_intersects(const char *a, const char *b);
/* Takes n indexes from free, lowest first: *taken and *rest are new
 * strings. Returns 0, or -1 with err set when free has fewer than n. */
int dv_cpuset_take(const char *free, int n, char **taken, char **rest,
                   struct dv_err *err);
/* Fills idx (size max) with the indexes of s in rising order; returns how
 * many there are (may exceed max), -1 on a parse error. */
int dv_cpuset_list(const char *s, int *idx, int max);

#endif
