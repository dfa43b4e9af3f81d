/*
 * Job arrays (PBS `qsub -J X-Y[:Z][%max]`): the index range, its text
 * forms, and the ids of arrays and subjobs ("124[]", "124[7]"). A range
 * is validated as PBS's chk_Jrange does: X >= 0, Y > X, Z >= 1; %max >= 1.
 */
#ifndef DV_ARRAY_H
#define DV_ARRAY_H

#include <stddef.h>
#include <stdint.h>

struct dv_buf;

/* Stands for the subjob's index in output and error paths (PBS). */
#define DV_ARRAY_INDEX_TOKEN "^array_index^"

/* The most subjobs one array may have, and the highest index. */
#define DV_ARRAY_MAX_SIZE 1000000
#define DV_ARRAY_MAX_INDEX 2147483000

struct dv_array {
    int first;
    int last; /* the last index of the range as given (Y) */
    int step;
    int max_run; /* %max; 0: no cap */
};

/* Parses "X-Y[:Z][%max]". Returns 0, or -1 when it is not a valid range
 * (PBS: "qsub: illegal -J value"). */
int dv_array_parse(const char *s, struct dv_array *a);
/* How many indexes the range holds. */
int dv_array_count(const struct dv_array *a);
/* Is i one of the range's indexes? */
int dv_array_has(const struct dv_array *a, int64_t i);
/* "X-Y[:Z]" (no %max): PBS's array_indices_submitted. Appends to out. */
void dv_array_format(const struct dv_array *a, struct dv_buf *out);
/* Which part of an array an id names. */
enum dv_array_part {
    DV_ARRAY_NONE = 0, /* "124": a plain job (or the array as a whole) */
    DV_ARRAY_WHOLE,    /* "124[]" */
    DV_ARRAY_ONE,      /* "124[7]" */
    DV_ARRAY_RANGE,    /* "124[1-5]" */
};

/* Splits the bracket of a job id "124[7].server": *part and the indexes
 * (lo = hi for one). p points just after the digits of the sequence
 * number; *end is set past the closing bracket. Returns 0, or -1 when the
 * bracket is malformed. */
int dv_array_id_bracket(const char *p, enum dv_array_part *part, int *lo,
                        int *hi, const char **end);
/* "124[]" / "124[7]" / "124[1-5]" (+ ".server" when server is not empty)
 * into buf. */
void dv_array_id_format(long long seq, enum dv_array_part part, int lo, int hi,
                        const char *server, char *buf, size_t size);

#endif
