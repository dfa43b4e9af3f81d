/*
 * Waiting for jobs to finish (drover job wait, qsub -W block=true): one
 * blocking query on the job at a time (GET /v1/jobs/:id?index=N&wait=D,
 * docs/api.md "Blocking queries"), re-issued with the index of each answer
 * until the job is finished, so that a waiting client costs the server one
 * parked request and no polling. When qmgr cannot be reached or answers 503
 * (a restart, a database failover) the query is sent again after a short
 * backoff, from the last index seen, for up to CLI_WAIT_OUTAGE seconds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/mem.h"

/* Below the client's request timeout (CLI_REQUEST_TIMEOUT), so that a
 * blocking query always gets its answer. */
#define CLI_WAIT_QUERY "20s"

static void
backoff(double *delay)
{
    struct timespec ts;

    ts.tv_sec = (time_t)*delay;
    ts.tv_nsec = (long)((*delay - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    *delay = *delay * 2 > 2.0 ? 2.0 : *delay * 2;
}

int
cli_jobs_wait(struct cli_client *c, long long id, struct cli_job *out,
              struct cli_reply *r, struct dv_err *err)
{
    long long index = 0;
    double delay = 0.1, outage = 0;
    char path[128];

    memset(out, 0, sizeof(*out));
    memset(r, 0, sizeof(*r));
    for (;;) {
        int rc;

        snprintf(path, sizeof(path), "/v1/jobs/%lld?index=%lld&wait=%s", id,
                 index, CLI_WAIT_QUERY);
        dv_err_clear(err);
        cli_reply_cleanup(r);
        rc = cli_jobs_get_path(c, path, out, r, err);
        if (rc < 0 || (rc > 0 && (r->status == 502 || r->status == 503 ||
                                  r->status == 504))) {
            /* qmgr restarting, or its database away: ask again. */
            if (outage >= CLI_WAIT_OUTAGE) {
                return rc;
            }
            outage += delay;
            backoff(&delay);
            continue;
        }
        outage = 0;
        delay = 0.1;
        if (rc > 0) {
            return 1;
        }
        if (out->state != NULL && strcmp(out->state, "finished") == 0) {
            return 0;
        }
        if (out->modify_index > index) {
            index = out->modify_index;
        }
        cli_job_cleanup(out);
    }
}

int
cli_wait_exit_code(const struct cli_job *j)
{
    if (!j->has_exit_status) {
        return 3; /* ended without running (deleted), or without a status */
    }
    /* Exit_status mod 256, as the shell would see it (271 -> 15, -29 ->
     * 227). */
    return (int)((unsigned)j->exit_status & 0xffu);
}
