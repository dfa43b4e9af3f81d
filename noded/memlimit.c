/*
 * Memory enforcement for a PBS job's script (docs/internals/noded.md
 * "Memory"): the allocation's requested memory is the limit. Where the
 * cgroup memory controller works, the task goes into its own cgroup below
 * the daemon's (v1: memory.limit_in_bytes; v2: memory.max) and the
 * kernel's OOM killer enforces the limit; an OOM kill in the cgroup stops
 * the whole job. Elsewhere (v2 without the controller delegated, no
 * cgroups) the daemon warns once and samples the RSS of the task's session
 * instead. Either way the job ends with JOB_EXEC_KILL_MEM (-27), as PBS's
 * MOM reports it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "noded/noded.h"

#define MEM_SAMPLE_INTERVAL 0.5 /* real seconds */

static int warned_fallback;

/* Reads a small file into buf; returns its length or -1. */
static ssize_t
read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        return -1;
    }
    do {
        n = read(fd, buf, size - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    return n;
}

static int
write_small(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    size_t len = strlen(text);
    ssize_t n;

    if (fd < 0) {
        return -1;
    }
    do {
        n = write(fd, text, len);
    } while (n < 0 && errno == EINTR);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

/* The daemon's own cgroup path for the v1 "memory" hierarchy (v1 = 1) or
 * the v2 one, from /proc/self/cgroup. Returns 0 or -1. */
static int
own_cgroup(int v1, char *out, size_t size)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[4096];
    int found = -1;

    if (f == NULL) {
        return -1;
    }
    while (found < 0 && fgets(line, sizeof(line), f) != NULL) {
        char *c1 = strchr(line, ':'), *c2;

        if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL) {
            continue;
        }
        *c2 = '\0';
        c2[strcspn(c2 + 1, "\n") + 1] = '\0';
        if (v1 ? strcmp(c1 + 1, "memory") == 0
               : (strncmp(line, "0:", 2) == 0 && c1[1] == '\0')) {
            dv_strlcpy(out, c2 + 1, size);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

/* Makes the cgroup of a and sets its limit; returns 0, or -1 when the
 * controller is not usable here. */
static int
cgroup_make(struct alloc *a)
{
    static const char *const roots[] = {"/sys/fs/cgroup/unified",
                                        "/sys/fs/cgroup"};
    char own[2048], limit[32];
    char *dir = NULL, *file = NULL;
    struct stat st;

    snprintf(limit, sizeof(limit), "%lld", (long long)a->mem);
    /* v1: the memory hierarchy. */
    if (own_cgroup(1, own, sizeof(own)) == 0) {
        dir = dv_xasprintf("/sys/fs/cgroup/memory%s/drover.%d.%lld",
                           strcmp(own, "/") == 0 ? "" : own, (int)getpid(),
                           a->id);
        file = dv_xasprintf("%s/memory.limit_in_bytes", dir);
        if ((mkdir(dir, 0755) == 0 || errno == EEXIST) &&
            write_small(file, limit) == 0) {
            free(file);
            /* No swap to hide in where swap accounting exists. */
            file = dv_xasprintf("%s/memory.memsw.limit_in_bytes", dir);
            (void)write_small(file, limit);
            free(file);
            a->cgroup = dir;
            a->cgroup_v2 = 0;
            return 0;
        }
        rmdir(dir);
        free(dir);
        free(file);
        dir = file = NULL;
    }
    /* v2: only where the controller is delegated to our subtree. */
    if (own_cgroup(0, own, sizeof(own)) == 0) {
        for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
            char *probe = dv_xasprintf("%s/cgroup.controllers", roots[i]);
            int ok = stat(probe, &st) == 0;

            free(probe);
            if (!ok) {
                continue;
            }
            dir = dv_xasprintf("%s%s/drover.%d.%lld", roots[i],
                               strcmp(own, "/") == 0 ? "" : own, (int)getpid(),
                               a->id);
            file = dv_xasprintf("%s/memory.max", dir);
            if ((mkdir(dir, 0755) == 0 || errno == EEXIST) &&
                write_small(file, limit) == 0) {
                free(file);
                file = dv_xasprintf("%s/memory.swap.max", dir);
                (void)write_small(file, "0");
                free(file);
                a->cgroup = dir;
                a->cgroup_v2 = 1;
                return 0;
            }
            rmdir(dir);
            free(dir);
            free(file);
            dir = file = NULL;
            break;
        }
    }
    return -1;
}

/* How many OOM kills the cgroup saw; 0 when unknown. */
static long long
cgroup_oom_kills(const struct alloc *a)
{
    char buf[1024];
    char *path, *p;
    long long n = 0;

    if (a->cgroup == NULL) {
        return 0;
    }
    path = dv_xasprintf("%s/%s", a->cgroup,
                        a->cgroup_v2 ? "memory.events" : "memory.oom_control");
    if (read_small(path, buf, sizeof(buf)) > 0 &&
        (p = strstr(buf, "oom_kill ")) != NULL) {
        n = strtoll(p + strlen("oom_kill "), NULL, 10);
    }
    free(path);
    return n;
}

/* RSS in bytes of every process whose session is sid (the task's: it
 * called setsid). */
long long
memlimit_session_rss(pid_t sid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long long total = 0;
    long page = sysconf(_SC_PAGESIZE);

    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[1024];
        const char *p;
        long long session = -1, rss = 0;
        int field;

        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        if (read_small(path, buf, sizeof(buf)) <= 0) {
            continue;
        }
        /* Fields after the command (which may hold blanks and ')'). */
        p = strrchr(buf, ')');
        if (p == NULL) {
            continue;
        }
        p++;
        for (field = 3; *p != '\0' && field <= 24; field++) {
            while (*p == ' ') {
                p++;
            }
            if (field == 6) {
                session = strtoll(p, NULL, 10);
            } else if (field == 24) {
                rss = strtoll(p, NULL, 10);
            }
            p += strcspn(p, " ");
        }
        if (session == (long long)sid && rss > 0) {
            total += rss * page;
        }
    }
    closedir(d);
    return total;
}

static void
mem_sample_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct alloc *a =
        (struct alloc *)((char *)w - offsetof(struct alloc, mem_w));
    long long rss = 0;

    (void)loop;
    (void)revents;
    if (a->state != ALLOC_RUNNING || a->ntasks < 1 || a->tasks[0].pid <= 0) {
        return;
    }
    if (a->cgroup != NULL) {
        if (cgroup_oom_kills(a) == 0) {
            return;
        }
        log_notice("allocation %lld of job %s exceeded its memory of %lld "
                   "bytes (an OOM kill in its cgroup)",
                   a->id, a->job_id_str, (long long)a->mem);
    } else {
        rss = memlimit_session_rss(a->tasks[0].pid);
        if (rss <= a->mem) {
            return;
        }
        log_notice("allocation %lld of job %s exceeded its memory: RSS %lld "
                   "bytes over %lld",
                   a->id, a->job_id_str, rss, (long long)a->mem);
    }
    a->mem_exceeded = 1;
    alloc_stop_mem(a);
}

void
memlimit_start(struct alloc *a, pid_t pid)
{
    char *procs, text[32];

    if (a->mem <= 0 || pid <= 0) {
        return;
    }
    if (a->cgroup == NULL && a->nd->cfg->memory_cgroup && cgroup_make(a) == 0) {
        procs = dv_xasprintf("%s/cgroup.procs", a->cgroup);
        snprintf(text, sizeof(text), "%d", (int)pid);
        if (write_small(procs, text) < 0) {
            log_warn("allocation %lld: could not move process %d into cgroup "
                     "%s (%s): sampling its memory instead",
                     a->id, (int)pid, a->cgroup, strerror(errno));
            rmdir(a->cgroup);
            free(a->cgroup);
            a->cgroup = NULL;
        }
        free(procs);
    }
    if (a->cgroup == NULL && !warned_fallback) {
        warned_fallback = 1;
        log_warn("%s: enforcing job memory by sampling each job's RSS "
                 "every %gs",
                 a->nd->cfg->memory_cgroup
                     ? "no usable cgroup memory controller (v1 memory "
                       "hierarchy, or v2 with memory delegated)"
                     : "memory-cgroup is off",
                 MEM_SAMPLE_INTERVAL);
    }
    if (a->cgroup != NULL) {
        log_debug("allocation %lld: memory limit %lld bytes in cgroup %s",
                  a->id, (long long)a->mem, a->cgroup);
    }
    ev_timer_init(&a->mem_w, mem_sample_cb, MEM_SAMPLE_INTERVAL,
                  MEM_SAMPLE_INTERVAL);
    ev_timer_start(a->nd->loop, &a->mem_w);
}

int
memlimit_exceeded(struct alloc *a)
{
    if (!a->mem_exceeded && cgroup_oom_kills(a) > 0) {
        a->mem_exceeded = 1;
    }
    return a->mem_exceeded;
}

void
memlimit_stop(struct alloc *a)
{
    ev_timer_stop(a->nd->loop, &a->mem_w);
}

void
memlimit_cleanup(struct alloc *a)
{
    ev_timer_stop(a->nd->loop, &a->mem_w);
    if (a->cgroup != NULL) {
        if (rmdir(a->cgroup) < 0 && errno != ENOENT) {
            log_debug("allocation %lld: could not remove cgroup %s: %s", a->id,
                      a->cgroup, strerror(errno));
        }
        free(a->cgroup);
        a->cgroup = NULL;
    }
}
