/*
 * fork/exec of a job's process. The parent prepares everything (paths,
 * argv, environment, groups, PU set); the child only makes system calls:
 * reset signal handlers and mask, setsid, bind to the granted PUs, switch
 * identity, open stdin/stdout/stderr as the owner, chdir, mark every other
 * descriptor close-on-exec, then execve. A failure before exec is written
 * to a close-on-exec pipe as a fixed-size record, so the parent learns why
 * (end of file on the pipe means exec succeeded or the child died).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "noded/noded.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void
child_report(int fd, int stage, int errnum, int fatal)
{
    struct spawn_report r;
    ssize_t n;

    memset(&r, 0, sizeof(r));
    r.stage = stage;
    r.errnum = errnum;
    r.fatal = fatal;
    do {
        n = write(fd, &r, sizeof(r));
    } while (n < 0 && errno == EINTR);
}

static void __attribute__((noreturn)) child_fail(int fd, int stage, int errnum)
{
    child_report(fd, stage, errnum, 1);
    _exit(127);
}

/* Moves fd to a number >= 3 (close-on-exec) so that dup2 onto 0-2 cannot
 * clobber it. */
static int
child_high_fd(int fd)
{
    int nfd;

    if (fd < 0 || fd >= 3) {
        return fd;
    }
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

static int
child_open_output(const char *path, int append)
{
    return child_high_fd(open(path,
                              O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY |
                                  (append ? O_APPEND : O_TRUNC),
                              0644));
}

/* Every descriptor from 3 up becomes close-on-exec. */
static void
child_cloexec_rest(void)
{
    long max;

    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
        return;
    }
    max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) {
        max = 65536;
    }
    for (int fd = 3; fd < max; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC)) {
            fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }
}

static void __attribute__((noreturn))
child_run(const struct spawn_req *req, int rfd)
{
    struct sigaction sa;
    sigset_t none;
    int in = -1, out = -1, errfd = -1, eno = 0;

    rfd = child_high_fd(rfd);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            sigaction(sig, &sa, NULL); /* fails harmlessly for RT gaps */
        }
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setsid() < 0) {
        child_fail(rfd, SPAWN_STAGE_SETSID, errno);
    }
    umask(req->umask);
    if (req->topo != NULL && req->cpuset != NULL &&
        hwloc_set_cpubind(req->topo, req->cpuset, HWLOC_CPUBIND_PROCESS) < 0) {
        child_report(rfd, SPAWN_STAGE_BIND, errno, 0);
    }
    if (req->set_identity) {
        if (setgroups((size_t)req->ngroups, req->groups) < 0) {
            child_fail(rfd, SPAWN_STAGE_GROUPS, errno);
        }
        if (setgid(req->gid) < 0) {
            child_fail(rfd, SPAWN_STAGE_SETGID, errno);
        }
        if (setuid(req->uid) < 0) {
            child_fail(rfd, SPAWN_STAGE_SETUID, errno);
        }
    }

    /* Files are opened as the owner, so the owner's permissions apply. */
    in = child_high_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (in < 0) {
        child_fail(rfd, SPAWN_STAGE_STDIN, errno);
    }
    if (req->join != SPAWN_JOIN_EO) {
        out = child_open_output(req->stdout_path, req->append);
        if (out < 0) {
            child_fail(rfd, SPAWN_STAGE_STDOUT, errno);
        }
    }
    if (req->join != SPAWN_JOIN_OE) {
        errfd = child_open_output(req->stderr_path, req->append);
        if (errfd < 0) {
            child_fail(rfd, SPAWN_STAGE_STDERR, errno);
        }
    }
    if (req->join == SPAWN_JOIN_OE) {
        errfd = out;
    } else if (req->join == SPAWN_JOIN_EO) {
        out = errfd;
    }
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) {
        child_fail(rfd, SPAWN_STAGE_STDOUT, errno);
    }

    if (req->cwd == NULL || chdir(req->cwd) < 0) {
        child_report(rfd, SPAWN_STAGE_CHDIR, errno, 0);
        if (req->cwd_fallback != NULL && chdir(req->cwd_fallback) < 0) {
            child_report(rfd, SPAWN_STAGE_CHDIR, errno, 0);
        }
    }
    child_cloexec_rest();

    eno = ENOENT;
    for (char **c = req->candidates; c != NULL && *c != NULL; c++) {
        int e;

        execve(*c, req->argv, req->envp);
        e = errno;
        /* As execvp: keep searching past missing entries, remember a
         * permission problem, stop at anything else. */
        if (e == EACCES) {
            eno = EACCES;
        } else if (e != ENOENT && e != ENOTDIR && e != ELOOP &&
                   e != ENAMETOOLONG) {
            eno = e;
            break;
        }
    }
    child_fail(rfd, SPAWN_STAGE_EXEC, eno);
}

int
spawn_child(const struct spawn_req *req, pid_t *pid, int *report_fd,
            struct dv_err *err)
{
    sigset_t all, old;
    int p[2];
    pid_t child;
    int eno;

    if (pipe2(p, O_CLOEXEC) < 0) {
        dv_err_set(err, DV_EIO, "spawn", "could not create a pipe: %s",
                   strerror(errno));
        return -1;
    }
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    child = fork();
    if (child == 0) {
        close(p[0]);
        child_run(req, p[1]);
    }
    eno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
    if (child < 0) {
        close(p[0]);
        dv_err_set(err, DV_EIO, "spawn", "could not fork: %s", strerror(eno));
        return -1;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *pid = child;
    *report_fd = p[0];
    return 0;
}

int
spawn_read_reports(int fd, struct spawn_report *out, int max, int *eof)
{
    int n = 0;

    *eof = 0;
    while (n < max) {
        ssize_t r = read(fd, &out[n], sizeof(out[n]));

        if (r == (ssize_t)sizeof(out[n])) {
            n++;
            continue;
        }
        if (r == 0) {
            *eof = 1;
            break;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (r < 0) {
            return n > 0 ? n : -1;
        }
        /* A short record cannot happen (writes under PIPE_BUF are atomic);
         * treat it as the end. */
        *eof = 1;
        break;
    }
    return n;
}

const char *
spawn_stage_text(int stage)
{
    switch (stage) {
    case SPAWN_STAGE_SETSID:
        return "could not create a session";
    case SPAWN_STAGE_BIND:
        return "could not bind to the granted cores";
    case SPAWN_STAGE_GROUPS:
        return "could not set the supplementary groups";
    case SPAWN_STAGE_SETGID:
        return "could not set the group id";
    case SPAWN_STAGE_SETUID:
        return "could not set the user id";
    case SPAWN_STAGE_STDIN:
        return "could not open /dev/null";
    case SPAWN_STAGE_STDOUT:
        return "could not open the output file";
    case SPAWN_STAGE_STDERR:
        return "could not open the error file";
    case SPAWN_STAGE_CHDIR:
        return "could not change to the home directory";
    case SPAWN_STAGE_EXEC:
        return "could not execute the job";
    }
    return "could not start the job";
}

int
spawn_proc_starttime(pid_t pid, unsigned long long *start)
{
    char path[64], buf[1024], *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    /* The command name may hold anything: fields resume after the last
     * ')'. starttime is field 22; the state after ')' is field 3. */
    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    p++;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (p == NULL) {
            return -1;
        }
    }
    errno = 0;
    *start = strtoull(p + 1, NULL, 10);
    return errno == 0 ? 0 : -1;
}

int
spawn_wait_status(int wstatus)
{
    if (WIFEXITED(wstatus)) {
        return WEXITSTATUS(wstatus);
    }
    if (WIFSIGNALED(wstatus)) {
        return 256 + WTERMSIG(wstatus);
    }
    return -1;
}
