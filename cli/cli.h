/* drover CLI internals, grouped by file. */
#ifndef DV_CLI_H
#define DV_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/array.h"
#include "lib/err.h"
#include "lib/http-server.h" /* struct dv_http_header */
#include "lib/job.h"
#include "lib/mem.h"
#include "lib/version.h"

/* Seconds one API request may take. */
#define CLI_REQUEST_TIMEOUT 30.0

/* getopt.c: a reentrant getopt with glibc's permutation and messages. */
struct cli_getopt {
    int argc;
    char **argv; /* borrowed */
    const char *optstring;
    const char *prog;      /* for messages: "qsub" */
    struct dv_buf *errors; /* messages appended here; NULL: dropped */
    int idx;               /* next argv index */
    int sub;               /* position inside a cluster of options */
    char *optarg;          /* the current option's argument, borrowed */
    int optopt;
    char **operands;  /* non-options in order (borrowed strings) */
    int *operand_idx; /* their argv indexes */
    int noperands;
    int ddash; /* argv index of "--", or -1 */
};

void cli_getopt_init(struct cli_getopt *g, int argc, char **argv,
                     const char *optstring, const char *prog);
void cli_getopt_cleanup(struct cli_getopt *g);
/* Returns the next option character, '?' for an unknown option or a
 * missing argument (a glibc-worded message goes to g->errors), or -1 when
 * every argument has been seen (operands are then in g->operands). */
int cli_getopt_next(struct cli_getopt *g);

/* directives.c: job script directive scanning (pbs-cli.md 1.2). */
struct dir_scan {
    const char *p; /* next line; borrowed script text */
    int stopped;   /* an executable line was seen */
    int line;      /* lines consumed */
};

void dir_scan_init(struct dir_scan *s, const char *script);
/* Finds the next directive with the given prefix (which may change
 * between calls, as -C in a directive does). Returns 1 with *argv a new
 * vector {"qsub", tokens..., NULL} (free with cli_strv_free), 0 when no
 * directive is left (end of script or first executable line), -1 on an
 * unmatched quote (*bad_quote says which). */
int dir_scan_next(struct dir_scan *s, const char *prefix, char ***argv,
                  int *argc, char *bad_quote);
/* Shell-like split of a directive's text into {"qsub", words..., NULL}:
 * blanks separate words, '...' and "..." quote, '\' takes the next
 * character. Returns 0, or -1 on an unmatched quote. */
int dir_split(const char *text, char ***argv, int *argc, char *bad_quote);
/* True when the line (len bytes, newline included or not) is executable:
 * its first non-blank character is not '#', and it does not start with
 * "#!" or ':' in column 1. */
int dir_is_executable(const char *line, size_t len);
/* The text after the prefix when the line is a directive, else NULL. */
const char *dir_match(const char *line, size_t len, const char *prefix);
int script_has_crlf(const char *script);
void cli_strv_free(char **v, int n);

/* pbs-common.c: PBS conventions: --version, API error codes as PBS texts
 * and exit statuses. */
/* Prints "pbs_version = <version>" when argv is exactly "<cmd> --version"
 * and returns 1; returns 0 otherwise. */
int cli_print_version_if_asked(int argc, char **argv);

/* qmgr-parse.c: qmgr's directives (pbs-cli.md section 6). */
struct qmgr_attr {
    char *name;  /* "resources_max.walltime" */
    int op;      /* '=', '+' (+=), '-' (-=), 0 (none: unset, list) */
    char *value; /* quotes removed; NULL without op */
};

struct qmgr_directive {
    int empty;     /* nothing but blanks */
    char cmd[16];  /* the full command: "create", "set", "list", ... */
    char obj[16];  /* "queue", "server", ... ("" for help, quit, exit) */
    char **names;  /* object names, "@server" parts dropped */
    int nnames;
    int all; /* "@default" (or any "@server") was named */
    struct qmgr_attr *attrs;
    int nattrs;
};

/* Parses one directive. Returns 0, or the exit status of PBS's parse
 * errors with its message appended to msg: 1 illegal operation, 2 no or
 * illegal object type, 3 syntax error. */
int qmgr_parse(const char *text, struct qmgr_directive *d,
               struct dv_buf *msg);
void qmgr_directive_cleanup(struct qmgr_directive *d);
/* Splits input into directives (";", newlines, "#" comments, "\"
 * continuations). Returns a new array of new strings. */
char **qmgr_split(const char *input, int *n);

/* queue-format.c: queues as qmgr and qstat -Q print them, from the API's
 * queue objects (docs/api.md, "Queues"). */
void queue_list_text(struct dv_buf *out, const json_t *q);
void queue_print_text(struct dv_buf *out, const json_t *q);
void qstat_queue_header(struct dv_buf *out);
void qstat_queue_row(struct dv_buf *out, const json_t *q);
void qstat_queue_full(struct dv_buf *out, const json_t *q);
void qstat_queue_dsv(struct dv_buf *out, const json_t *q, const char *delim);
json_t *qstat_queue_json(const json_t *q);

int cmd_queue(int argc, char **argv);
int cmd_qmgr(int argc, char **argv);

struct pbs_error {
    const char *code; /* API code: "job_not_found" */
    const char *text; /* PBS server text: "Unknown Job Id" */
    int pbs_errno;    /* 15001 */
    int exit_status;  /* pbs_errno mod 256: 153 */
};

/* The entry for an API code, or NULL. */
const struct pbs_error *pbs_error_lookup(const char *code);
/* The exit status for an API code; 1 for codes PBS has no number for. */
int pbs_error_exit_status(const char *code);

/* jobid.c: job identifiers on the command line. */
int jobid_is_jobid(const char *s);
/* Parses "seq[.server][@server]". Returns 0 with *seq and *server (a new
 * string naming the server given, or NULL), or -1 when ill-formed. */
int jobid_parse(const char *s, long long *seq, char **server);
/* A job id with its array part ("124[]", "124[7]", "124[1-5]"; enum
 * dv_array_part of lib/array.h). */
struct jobid {
    long long seq;
    char *server; /* new string or NULL */
    enum dv_array_part part;
    int lo;
    int hi;
};
/* Like jobid_parse, with subjobs and ranges; id->server is the caller's.
 * jobid_parse itself takes plain jobs and whole arrays only ("124[]"), as
 * qhold, qrls and qalter do. Returns 0 or -1. */
int jobid_parse_array(const char *s, struct jobid *id);
/* The id as PBS shows it, "seq.server"; returns a new string. */
char *jobid_expand(const char *s, const char *default_server);
/* The id cut after the first label of the server name ("1.a.b" -> "1.a");
 * returns a new string. */
char *jobid_short(const char *id);

/* client.c: talking to drover-qmgr. */
struct cli_client {
    const char *prog;  /* borrowed: "qsub" */
    char *base;        /* the server address */
    char *host;        /* what "cannot connect to server <host>" names */
    char *user;        /* X-Drover-User */
    char *server_name; /* learned from the server, or NULL */
    struct dv_http_client *http;
};

struct cli_reply {
    long status;
    json_t *body;      /* parsed 2xx body, or NULL; owned */
    char code[64];     /* API error code ("" on success) */
    char message[256]; /* API error message */
};

/* Returns a new client for DROVER_ADDR (caller frees), or NULL with err. */
struct cli_client *cli_client_new(const char *prog, struct dv_err *err);
void cli_client_free(struct cli_client *c);
/* Sends a request (body borrowed; may be NULL). Returns 0 when an answer
 * arrived (r filled; caller cleans it up), -1 when none did (err). */
int cli_client_call(struct cli_client *c, const char *method, const char *path,
                    const json_t *body, const struct dv_http_header *extra,
                    int nextra, struct cli_reply *r, struct dv_err *err);
void cli_reply_cleanup(struct cli_reply *r);
/* Fills r->code and r->message from an API error body. */
void cli_reply_set_error(struct cli_reply *r, const char *body);
/* The errno PBS would print for a transport failure. */
int cli_transport_errno(const struct dv_err *err);
/* Prints "<prog>: cannot connect to server <host> (errno=N)" and returns
 * the exit status (N). */
int cli_client_report_transport(const struct cli_client *c,
                                const struct dv_err *err);
/* One call whose failure is printed as "<prog>: <message>" (transport
 * failures as cli_client_report_transport does). Returns 0 with a 2xx
 * answer and r->body set, or the exit status (pbs_error_exit_status). */
int cli_client_call_ok(struct cli_client *c, const char *method,
                       const char *path, const json_t *body,
                       struct cli_reply *r);
/* The server's name (GET /v1/status once; "" when unknown); borrowed. */
const char *cli_client_server_name(struct cli_client *c);
void cli_client_set_server_name(struct cli_client *c, const char *name);
char *cli_current_user(void);
/* The host part of an address ("http://h:1" -> "h"); a new string. */
char *cli_addr_host(const char *base);
void cli_urlencode(struct dv_buf *b, const char *s);

/* jobs.c: job objects decoded at the edge, and fetching them. */
struct cli_job {
    long long id;
    char *job_id; /* "12.srv" */
    char *name;
    char *owner;
    char *queue;
    char *state; /* "queued", ... */
    char *hold_types;
    char *exec_host;
    char *exec_vnode;
    char *comment;
    int priority;
    int rerunnable;
    int has_exit_status;
    int exit_status;
    int run_count;
    long long modify_index;
    double ctime, qtime, stime, mtime, end_time; /* < 0: unset */
    double est_start; /* estimated.start_time; < 0: unset */
    int has_used;
    int64_t used_cput, used_walltime, used_mem; /* seconds, bytes */
    struct dv_kv *rlist;                        /* Resource_List as text */
    int nrlist;
    /* From the spec, when the answer has one: */
    int has_spec;
    char *submit_host;
    char *workdir;
    char *stdout_path;
    char *stderr_path;
    char *join;
    char *shell;
    char *depend;
    char *submit_args;
    char **env;
    int nenv;
    char **argv;
    int argc;
    int native; /* the spec is a native job's (docs/jobspec.md) */
    char *account;
    char *project;
    char *mail_points;
    char *mail_users;
    char *keep_files;
    char *shell_path_list;
    double execution_time; /* < 0: unset */
    /* Arrays (docs/api.md, "array"): */
    int array;       /* CLI_ARRAY_JOB ("124[]") or CLI_SUBJOB ("124[7]") */
    int array_index; /* a subjob's index */
    char *array_id;  /* a subjob's array, "124[].srv" */
    char *array_submitted; /* array_indices_submitted */
    char *array_remaining; /* array_indices_remaining, or NULL */
    char *array_state_count;
    struct cli_job *subjobs; /* an array's subjobs, when the answer had them */
    int nsubjobs;
};

#define CLI_ARRAY_JOB 1
#define CLI_SUBJOB 2

struct cli_joblist {
    struct cli_job *jobs;
    int n;
    size_t cap;
    char *server; /* the list's "server", or NULL */
};

/* Decodes a job object leniently (unknown keys ignored). Returns 0, or -1
 * when o is not an object. */
int cli_job_from_json(const json_t *o, struct cli_job *j);
void cli_job_cleanup(struct cli_job *j);
char cli_job_state_letter(const struct cli_job *j);
/* The server name for a job: list_server when known, else the part of
 * job_id after the first '.'; a new string. */
char *cli_job_server(const struct cli_job *j, const char *list_server);
void cli_joblist_cleanup(struct cli_joblist *l);
/* Fetches every page of GET /v1/jobs?<query>. Returns 0 (out filled), -1
 * on a transport failure (err), 1 on an API error (r says which; caller
 * cleans r up). */
int cli_jobs_list(struct cli_client *c, const char *query,
                  struct cli_joblist *out, struct cli_reply *r,
                  struct dv_err *err);
/* GET /v1/jobs/:id; same returns as cli_jobs_list. */
int cli_jobs_get(struct cli_client *c, long long id, struct cli_job *out,
                 struct cli_reply *r, struct dv_err *err);
/* The same with a query ("subjobs=true", "subjob=7"; NULL: none). */
int cli_jobs_get_query(struct cli_client *c, long long id, const char *query,
                       struct cli_job *out, struct cli_reply *r,
                       struct dv_err *err);
/* The same for a job path with a query ("/v1/jobs/12?index=5&wait=20s"). */
int cli_jobs_get_path(struct cli_client *c, const char *path,
                      struct cli_job *out, struct cli_reply *r,
                      struct dv_err *err);

/* jobwait.c: waiting for a job to finish through blocking queries. */

/* How long qmgr may stay unreachable during a wait (seconds). */
#define CLI_WAIT_OUTAGE 600.0

/* Waits until job id is finished: GET /v1/jobs/:id?index=N&wait=D again
 * after each change, and again after a backoff while qmgr cannot be
 * reached or answers 503 (for up to CLI_WAIT_OUTAGE seconds). Returns 0
 * with out filled (caller cleans it up), -1 on a lasting transport failure
 * (err), 1 on an API error (r says which; caller cleans r up). */
int cli_jobs_wait(struct cli_client *c, long long id, struct cli_job *out,
                  struct cli_reply *r, struct dv_err *err);
/* The exit status a waiter reports for a finished job, as qsub -W
 * block=true does: Exit_status mod 256, or 3 when it has none (it ended
 * without running). */
int cli_wait_exit_code(const struct cli_job *j);

/* qstat-format.c: qstat's layouts, appended to a buffer. */
#define QSTAT_ALT_G 0x1        /* -G: sizes in gb */
#define QSTAT_ALT_M 0x2        /* -M: sizes in mw */
#define QSTAT_ALT_NODES 0x4    /* -n */
#define QSTAT_ALT_COMMENT 0x8  /* -s */
#define QSTAT_ALT_ONELINE 0x10 /* -1 */
#define QSTAT_ALT_WIDE 0x20    /* -w */
#define QSTAT_ALT_EST 0x40     /* -T: Est Start instead of Elap Time */

struct qstat_attr {
    char *name; /* "Resource_List" */
    char *resc; /* "ncpus", or NULL */
    char *value;
};

struct qstat_attrs {
    struct qstat_attr *a;
    int n;
    size_t cap;
};

void qstat_default_header(struct dv_buf *out, int wide);
/* One row of the default format from raw values (truncation applied
 * here: id cut after the server's first label, '*' when too long). */
void qstat_default_row(struct dv_buf *out, const char *job_id, const char *name,
                       const char *owner, const char *time_use,
                       const char *state, const char *queue, int wide);
void qstat_job_default_row(struct dv_buf *out, const struct cli_job *j,
                           int wide);
void qstat_alt_header(struct dv_buf *out, const char *server, int wide);
/* The same with QSTAT_ALT_* options (QSTAT_ALT_EST: "Est Start"). */
void qstat_alt_header_opt(struct dv_buf *out, const char *server, int wide,
                          int opt);
/* The Est Start column (-T) for an estimated start t (< 0: unset, " -- "):
 * "HH:MM" today, "Dd HH" within a week ("Tu 15"), the month ("Jun") this
 * year, else the year, in local time. */
void qstat_est_start(double t, double now, char *buf, size_t size);
void qstat_alt_row(struct dv_buf *out, const struct cli_job *j, int opt);
/* Rescales a PBS size for the Memory column (cnv_size) into buf. */
const char *qstat_cnv_size(const char *value, int opt, char *buf, size_t size);
/* Appends an attribute (strings copied); value NULL adds nothing. */
void qstat_attrs_add(struct qstat_attrs *a, const char *name, const char *resc,
                     const char *value);
void qstat_attrs_cleanup(struct qstat_attrs *a);
/* PBS's substate number for j, or -1. */
int qstat_job_substate(const struct cli_job *j);
/* A job's -f attributes in PBS order. */
void qstat_job_attrs(const struct cli_job *j, const char *server,
                     struct qstat_attrs *a);
/* "    name[.resc] = value" with PBS's wrapping (no final newline). */
void qstat_prt_attr(struct dv_buf *out, const char *name, const char *resc,
                    const char *value, int one_line);
void qstat_full_text(struct dv_buf *out, const char *job_id,
                     const struct qstat_attrs *a, int one_line);
void qstat_full_dsv(struct dv_buf *out, const char *job_id,
                    const struct qstat_attrs *a, const char *delim);
/* The same line for another kind of object: "<label>: <id><delim>...". */
void qstat_full_dsv_as(struct dv_buf *out, const char *label, const char *id,
                       const struct qstat_attrs *a, const char *delim);
/* A job's attributes as a JSON object; returns a new reference. */
json_t *qstat_attrs_json(const struct qstat_attrs *a);
int cli_json_is_number(const char *s);
/* A number when s reads as one, else a string; a new reference. */
json_t *cli_json_auto(const char *s);
/* Prints v as cJSON's formatted printer does (no final newline). */
void cli_json_print(struct dv_buf *out, const json_t *v);

/* qsub-opts.c: qsub options, precedence and the job spec. */
#define QSUB_SRC_DIRECTIVE 2
#define QSUB_SRC_CMDLINE 3

struct qsub_res {
    char *name;
    char *value;
    int src;
};

/* Each value with the source that set it (0: unset). */
struct qsub_opts {
    char *name;
    int name_src;
    char *queue;
    int queue_src;
    char *out_path;
    int out_src;
    char *err_path;
    int err_src;
    char *join;
    int join_src;
    int hold;
    int hold_src;
    int priority;
    int priority_src;
    int rerunnable;
    int rerun_src;
    char *shell;
    int shell_src;
    char *depend;
    int depend_src;
    char *array; /* -J X-Y[:Z][%max], validated */
    int array_src;
    int max_run; /* -W max_run_subjobs=N */
    int max_run_src;
    int block; /* -W block=true: wait for the job, exit with its status */
    int block_src;
    char *prefix;
    int prefix_src;
    int z;
    int z_src;
    int V;
    int V_src;
    char *vlist;
    int v_src;
    struct qsub_res *res;
    int nres;
    /* Sites' options (-A -P -m -M -a -k, -S with hosts). */
    char *account;
    int account_src;
    char *project;
    int project_src;
    char *mail_points;
    int mail_points_src;
    char *mail_users;
    int mail_users_src;
    char *exec_time; /* -a as given, checked */
    int exec_time_src;
    char *keep;
    int keep_src;
    char *shell_list; /* -S when it names hosts or several shells */
};

/* What qsub knows about where it runs (all borrowed). */
struct qsub_ctx {
    const char *user;
    const char *group;
    const char *host; /* gethostname */
    const char *fqdn; /* PBS_O_HOST */
    const char *cwd;  /* PBS_O_WORKDIR */
    const char *system;
    char **envp;
    const char *script; /* NULL with cmd_argv */
    char **cmd_argv;
    int cmd_argc;
    const char *default_name; /* script basename or "STDIN" */
    const char *submit_args;
    time_t now; /* for -a; 0: time(NULL) */
};

extern const char qsub_usage_text[];
void qsub_opts_init(struct qsub_opts *o);
void qsub_opts_cleanup(struct qsub_opts *o);
/* Parses argv (argv[0] is the program) as source src. Messages go to errs
 * as PBS words them; returns the number of errors. g is initialised here
 * and holds the operands afterwards (caller cleans it up). */
int qsub_opts_parse(struct qsub_opts *o, int argc, char **argv, int src,
                    struct dv_buf *errs, struct cli_getopt *g);
/* Adds "-l" text "name=value[,...]" as source src. Returns 0 or -1. */
int qsub_parse_resources(struct qsub_opts *o, const char *list, int src);
void qsub_opts_set_resource(struct qsub_opts *o, const char *name,
                            const char *value, int src);
/* The directive prefix now: -C, else PBS_DPREFIX (env_dprefix, may be
 * NULL), else "#PBS"; "" means do not scan. */
const char *qsub_dir_prefix(const struct qsub_opts *o, const char *env_dprefix);
/* "qsub: directive error: <each token followed by a space>\n". */
void qsub_directive_error(struct dv_buf *errs, int argc, char **argv);
/* "[host:]path" made absolute against cwd; a new string. */
char *qsub_abs_path(const char *path, const char *cwd);
/* qsub -a: [[[[CC]YY]MM]DD]hhmm[.SS] in local time, as OpenPBS reads it:
 * a part left out is the current one, and when the time that gives is
 * not after now the next such part is taken (hhmm alone: tomorrow; DDhhmm:
 * next month; MMDDhhmm: next year). A year given is kept even when past
 * (the job may run at once). YY without CC: 69-99 are 19YY, else 20YY.
 * Returns 0 with *out (epoch seconds), or -1 when s is malformed. */
int qsub_parse_exec_time(const char *s, time_t now, int64_t *out);
/* -S path_list: path[@host][,path[@host]...]. Returns the path qsub runs
 * the job with (the one without a host, else the first; a new string),
 * or NULL when the list is malformed (a path must be absolute). */
char *qsub_shell_from_list(const char *list);
/* Fills s (initialised by the caller) from o and ctx. Returns 0, or -1
 * with a message in errs. */
int qsub_build_spec(const struct qsub_opts *o, const struct qsub_ctx *ctx,
                    struct dv_job_spec *s, struct dv_buf *errs);

/* cmd-qsub.c */
int cmd_qsub(int argc, char **argv);

/* cmd-qstat.c */
int cmd_qstat(int argc, char **argv);

/* cmd-qdel.c: qdel, qhold, qrls. */
int cmd_qdel(int argc, char **argv);
/* cmd-pbsdsh.c */
int cmd_pbsdsh(int argc, char **argv);
int cmd_qhold(int argc, char **argv);
int cmd_qrls(int argc, char **argv);
/* "<cmd>: <text> <id>" for a per-job API error; returns the exit status. */
/* cmd-qadmin.c: qsig, qrerun, qmove, qalter. */
int cmd_qsig(int argc, char **argv);
int cmd_qrerun(int argc, char **argv);
int cmd_qmove(int argc, char **argv);
int cmd_qalter(int argc, char **argv);
/* qalter's options into body (the POST /v1/jobs/:id/alter object); g is
 * initialised here (the caller cleans it up) and holds the operands.
 * Messages go to errs. Returns 0, or -1 for a usage error. */
int qalter_opts_parse(int argc, char **argv, json_t *body, struct dv_buf *errs,
                      struct cli_getopt *g);
/* cmd-pbsnodes.c: pbsnodes over the node admin API. */
int cmd_pbsnodes(int argc, char **argv);
/* A node's PBS state: "free", "job-busy", "offline", "down", "down,offline". */
void pbsnodes_state(const json_t *node, char *buf, size_t size);
/* pbsnodes -a: one node (GET /v1/nodes/:id's object). */
void pbsnodes_format_node(struct dv_buf *out, const json_t *node);
/* pbsnodes -a -F json: one node's object; a new reference. */
json_t *pbsnodes_node_json(const json_t *node);
/* pbsnodes -l: "%-20s %s %s\n". */
void pbsnodes_format_list_line(struct dv_buf *out, const json_t *node);
/* One request (method, /v1/jobs/<id><suffix>, body or NULL) per job id
 * operand, silent on success, PBS's per-job errors; returns the exit
 * status of the last failure (0: none). */
int cli_each_job(const char *prog, const char *method, const char *suffix,
                 const json_t *body, int n, char **operands);
int cli_report_job_error(const char *prog, const struct cli_reply *r,
                         const char *display_id);

/* cmd-dev.c */
int cmd_dev(int argc, char **argv);

/* cmd-job.c: drover job run|status|stop (docs/jobspec.md). */
int cmd_job(int argc, char **argv);

/* node-format.c: drover node's arguments and output (pure). */
#define NODE_OPT_FLAGS 0x1  /* -enable, -disable, -comment are allowed */
#define NODE_OPT_ONE_OF 0x2 /* one of -enable and -disable is required */
#define NODE_OPT_NODE 0x4   /* the node operand is required */

struct node_opts {
    const char *node; /* the operand, or NULL; borrowed from argv */
    int enable;
    int disable;
    int has_comment;
    const char *comment; /* -comment's text; borrowed from argv */
};

/* Parses a subcommand's arguments (argv[0] is the first argument, not the
 * subcommand): "-x", "--x", "-x=v" and "-x v" forms, options before or
 * after the node, "--" ends options. Returns 0, or -1 with a message
 * ("<prog>: ...\n") appended to errs. */
int node_opts_parse(const char *prog, int argc, char **argv, int flags,
                    struct node_opts *o, struct dv_buf *errs);
/* Bytes for people, in PBS's units with at most one decimal: 512 ->
 * "512b", 1610612736 -> "1.5gb", 8589934592 -> "8gb". */
void node_fmt_bytes(int64_t bytes, char *buf, size_t size);
/* The table of drover node status from GET /v1/nodes's "nodes". */
void node_format_table(struct dv_buf *out, const json_t *nodes);
/* One node's details (GET /v1/nodes/:id) with its allocations. */
void node_format_details(struct dv_buf *out, const json_t *node);
/* The line printed after a change; drain_cmd: drain, else eligibility. */
void node_format_change(struct dv_buf *out, const json_t *node, int drain_cmd);

/* cmd-node.c: drover node status|drain|eligibility. */
int cmd_node(int argc, char **argv);
/* cmd-resource.c: drover resource create|list|delete. */
int cmd_resource(int argc, char **argv);
/* The table of `drover resource list` (an array of resource objects). */
void resource_format_list(struct dv_buf *out, const json_t *list);

#endif
