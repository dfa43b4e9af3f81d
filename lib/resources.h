/*
 * PBS resource arithmetic: sizes ("1gb"), durations ("1:30:00"), chunk
 * selections ("2:ncpus=4:mem=1gb+1:ncpus=1") and the conversion of a job's
 * Resource_List (name=value pairs from -l) into a placement request, with
 * PBS's error texts for unknown resources and illegal values.
 */
#ifndef DV_RESOURCES_H
#define DV_RESOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/mem.h"

/* A name=value pair; strings borrowed or owned as the owner says. */
struct dv_kv {
    char *key;
    char *value;
};

/* PBS size: integer, optional k m g t p (any case), optional b or w (8-byte
 * word); bytes by default. Returns 0 or -1 (garbage or overflow). */
int dv_parse_size(const char *s, int64_t *bytes);
/* Formats bytes PBS-style in the largest unit that divides it exactly:
 * 1073741824 -> "1gb", 3072 -> "3kb", 1536 -> "1536b", 0 -> "0b". */
void dv_format_size(int64_t bytes, char *buf, size_t size);
/* PBS duration: seconds, or [[HH:]MM:]SS[.fraction] (fraction dropped).
 * Returns 0 or -1. */
int dv_parse_walltime(const char *s, int64_t *seconds);
/* "%02d:%02d:%02d" (hours may grow past two digits). */
void dv_format_hms(int64_t seconds, char *buf, size_t size);

#define DV_MAX_CHUNK_KINDS 32
#define DV_MAX_NCPUS 65536
#define DV_MAX_CHUNKS 4096
/* 1 PiB: with at most DV_MAX_CHUNKS chunks every sum fits an int64_t. */
#define DV_MAX_MEM (1LL << 50)

/* One kind of chunk: count identical chunks. */
struct dv_chunk {
    int count;
    int ncpus;
    int64_t mem; /* bytes; 0: none requested */
    int ngpus;
    int mpiprocs;   /* PBS_NODEFILE lines of each chunk; 0: ncpus */
    int ompthreads; /* OMP_NUM_THREADS of each chunk; 0: ncpus */
    char host[64];  /* host=: only on the node of that name; "": any */
};

enum dv_place {
    DV_PLACE_FREE = 0, /* PBS default for select */
    DV_PLACE_PACK,     /* all chunks on one host */
    DV_PLACE_SCATTER,  /* one chunk per host */
};

/* What a job asks for, normalised. */
struct dv_resreq {
    int nkinds;
    struct dv_chunk kinds[DV_MAX_CHUNK_KINDS];
    int64_t walltime; /* seconds; 0: no limit */
    enum dv_place place;
    int excl; /* place=...:excl */
    /* Derived by dv_resreq_finish: */
    int ncpus;    /* sum of count * ncpus */
    int64_t mem;  /* sum of count * mem */
    int ngpus;    /* sum of count * ngpus */
    int nodect;   /* sum of count */
};

/* Parses a select specification into rr->kinds (replacing them). Returns 0,
 * or -1 with err set (code "bad_resource_value"). */
int dv_select_parse(const char *s, struct dv_resreq *rr, struct dv_err *err);
/* Appends the canonical select text ("1:ncpus=2:mem=1gb") to out. */
void dv_select_format(const struct dv_resreq *rr, struct dv_buf *out);
/* Converts a Torque/old PBS node specification ("2:ppn=16", "3",
 * "2:ppn=4+1:ppn=2", "host1+host2:ppn=2") into chunks as PBS does: each
 * part N[:ppn=C] becomes N chunks of ncpus=C:mpiprocs=C (C default 1), a
 * part naming a host one such chunk with host=name; the caller sets
 * place=scatter. Returns 0, or -1 with err set (code "bad_resource_value"
 * naming Resource_List.nodes). */
int dv_nodes_parse(const char *s, struct dv_resreq *rr, struct dv_err *err);
/* Builds rr from Resource_List pairs: walltime, select, place, nodes (as
 * dv_nodes_parse, place=scatter unless place says otherwise), and the old
 * job-wide ncpus, mem, ngpus (which become one chunk, place=pack).
 * Missing: one chunk of one cpu. Errors (err->msg exactly as PBS words
 * them): "Unknown resource Resource_List.foo" (code "unknown_resource"),
 * "Illegal attribute or resource value Resource_List.walltime" (code
 * "bad_resource_value"). Returns 0 or -1. */
int dv_resreq_from_list(const struct dv_kv *list, int n, struct dv_resreq *rr,
                        struct dv_err *err);
/* 1 when dv_resreq_from_list knows name (a built-in resource), 0 when it
 * would refuse it as unknown (a custom resource, or a mistake). */
int dv_resource_is_builtin(const char *name);
/* Custom resource types (PBS's: string long float size boolean
 * string_array) and flags (letters of "fhimnqr", each once). Return 1 when
 * valid, else 0. */
int dv_resource_type_valid(const char *type);
int dv_resource_flags_valid(const char *flags);
/* Checks value against a custom resource type and, when canon is not NULL,
 * writes the value as PBS shows it (booleans True/False, sizes like
 * dv_format_size, other types as given) into canon (size bytes). Returns
 * 0, or -1 when value is not of the type. */
int dv_resource_value_check(const char *type, const char *value, char *canon,
                            size_t size);
/* The kind of chunk number index (0-based, in select order), or NULL when
 * there are fewer chunks; borrowed. */
const struct dv_chunk *dv_resreq_chunk(const struct dv_resreq *rr, int index);
/* Recomputes the derived totals. */
void dv_resreq_finish(struct dv_resreq *rr);
const char *dv_place_name(enum dv_place p);

#endif
