/* The SQL migrations embedded at build time from sql/ (scripts/embed-sql.sh). */
#ifndef DV_MIGRATIONS_H
#define DV_MIGRATIONS_H

struct dv_migration {
    int version;      /* NNNN from the file name */
    const char *name; /* file name without .sql */
    const char *sql;
};

extern const struct dv_migration dv_migrations[];
extern const int dv_migrations_count;

#endif
