/*
 * The allocation directory <data_dir>/alloc/<id>/: created fresh for each
 * allocation (local/, tmp/ and secrets/ owned by the job owner), files
 * written without following links, and removed without following links
 * (jobs own what is inside and may have planted symbolic links).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "noded/noded.h"

#define ALLOCDIR_MAX_DEPTH 128

/* mkdir -p for a daemon-owned path; mode applies to created parts. */
static int
mkdir_p(const char *path, mode_t mode, struct dv_err *err)
{
    char *p = dv_xstrdup(path);
    int rc = -1;

    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;

            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) {
                dv_err_set(err, DV_EIO, "allocdir",
                           "could not create directory \"%s\": %s", p,
                           strerror(errno));
                goto out;
            }
            *s = c;
            if (c == '\0') {
                break;
            }
        }
    }
    rc = 0;
out:
    free(p);
    return rc;
}

static int
make_subdir(const char *dir, const char *name, mode_t mode, int chown_to,
            uid_t uid, gid_t gid, struct dv_err *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = -1;

    if (dfd < 0) {
        dv_err_set(err, DV_EIO, "allocdir", "could not open \"%s\": %s", dir,
                   strerror(errno));
        return -1;
    }
    if (mkdirat(dfd, name, mode) < 0 || fchmodat(dfd, name, mode, 0) < 0 ||
        (chown_to && fchownat(dfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)) {
        dv_err_set(err, DV_EIO, "allocdir",
                   "could not create directory \"%s/%s\": %s", dir, name,
                   strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(dfd);
    return rc;
}

int
allocdir_init(const char *data_dir, struct dv_err *err)
{
    char *base = dv_xasprintf("%s/alloc", data_dir);
    int rc = mkdir_p(base, 0755, err);

    if (rc == 0 && access(base, W_OK | X_OK) < 0) {
        dv_err_set(err, DV_EIO, "allocdir", "cannot write to \"%s\": %s", base,
                   strerror(errno));
        rc = -1;
    }
    free(base);
    return rc;
}

char *
allocdir_create(const char *data_dir, long long id, int chown_to, uid_t uid,
                gid_t gid, struct dv_err *err)
{
    char *base = dv_xasprintf("%s/alloc", data_dir);
    char *dir = dv_xasprintf("%s/%lld", base, id);
    static const char *const subdirs[] = {"local", "tmp", "secrets"};

    if (mkdir_p(base, 0755, err) < 0 || allocdir_remove(dir, err) < 0) {
        goto fail;
    }
    if (mkdir(dir, 0755) < 0 || chmod(dir, 0755) < 0) {
        dv_err_set(err, DV_EIO, "allocdir",
                   "could not create directory \"%s\": %s", dir,
                   strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if (make_subdir(dir, subdirs[i], 0700, chown_to, uid, gid, err) < 0) {
            goto fail;
        }
    }
    free(base);
    return dir;
fail:
    free(base);
    free(dir);
    return NULL;
}

int
allocdir_write(const char *path, const char *content, mode_t mode, int chown_to,
               uid_t uid, gid_t gid, struct dv_err *err)
{
    int fd =
        open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    size_t len = strlen(content), off = 0;
    int rc = -1;

    if (fd < 0) {
        dv_err_set(err, DV_EIO, "allocdir", "could not create \"%s\": %s", path,
                   strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t n = write(fd, content + off, len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            dv_err_set(err, DV_EIO, "allocdir", "could not write \"%s\": %s",
                       path, strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) < 0 || (chown_to && fchown(fd, uid, gid) < 0)) {
        dv_err_set(err, DV_EIO, "allocdir",
                   "could not set the owner of \"%s\": %s", path,
                   strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Removes name under dirfd; descends into directories by descriptor. */
static int
remove_at(int parent, const char *name, int depth, const char *top,
          struct dv_err *err)
{
    int fd;
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT) {
        return 0;
    }
    if (errno != EISDIR && errno != EPERM) {
        goto fail;
    }
    if (depth >= ALLOCDIR_MAX_DEPTH) {
        errno = ELOOP;
        goto fail;
    }
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        goto fail;
    }
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        goto fail;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (remove_at(dirfd(d), e->d_name, depth + 1, top, err) < 0) {
            rc = -1;
        }
    }
    closedir(d);
    if (rc < 0) {
        return -1;
    }
    if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
        return 0;
    }
fail:
    dv_err_set(err, DV_EIO, "allocdir", "could not remove \"%s\": %s", top,
               strerror(errno));
    return -1;
}

int
allocdir_remove(const char *path, struct dv_err *err)
{
    if (path == NULL) {
        return 0;
    }
    return remove_at(AT_FDCWD, path, 0, path, err);
}
