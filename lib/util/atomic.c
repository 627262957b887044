/* Output files written whole or not at all (see atomic.h). */
#include "util/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

#define MAX_HOPS 40       /* symbolic links followed, as the kernel's limit */
#define BASE_MAX 120      /* bytes of the output's name kept in a temporary's name */
#define HOST_MAX 32

enum kind { K_ATOMIC, K_STREAM, K_REFUSE };

/* dir and base of a path: "a/b" -> "a", "b"; "b" -> ".", "b"; "/b" -> "/", "b" */
static int split(const char *p, char **dir, char **base)
{
    const char *s = strrchr(p, '/');
    *dir = s ? strndup(p, s == p ? 1 : (size_t)(s - p)) : strdup(".");
    *base = strdup(s ? s + 1 : p);
    if (!*dir || !*base) {
        free(*dir);
        free(*base);
        *dir = *base = NULL;
        return -1;
    }
    return 0;
}

static int on_proc(const char *dir)
{
    struct statfs sf;
    return statfs(dir, &sf) == 0 && (unsigned long)sf.f_type == PROC_SUPER_MAGIC;
}

/* Follows path's symbolic links. *out is the file finally named (malloc'ed),
 * what it is in *kind, and in why a refusal's reason. CMR_ENOMEM or CMR_EIO
 * (a loop, an unreadable link) with err filled. */
static int resolve(const char *path, char **out, enum kind *kind, const char **why,
                   struct cmr_error *err)
{
    char *p = strdup(path);
    *out = NULL;
    *why = NULL;
    if (!p)
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    for (int hop = 0;; hop++) {
        struct stat sb;
        if (lstat(p, &sb) != 0) {
            int e = errno;
            if (e == ENOENT) { /* a new file (perhaps a dangling link's target) */
                *kind = K_ATOMIC;
                *out = p;
                return CMR_OK;
            }
            free(p);
            return cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(e));
        }
        if (S_ISREG(sb.st_mode)) {
            *kind = K_ATOMIC;
            *out = p;
            return CMR_OK;
        }
        if (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode)) {
            *kind = K_STREAM;
            *why = S_ISFIFO(sb.st_mode) ? "a FIFO" : "a character device";
            *out = p;
            return CMR_OK;
        }
        if (!S_ISLNK(sb.st_mode)) {
            *kind = K_REFUSE;
            *why = S_ISDIR(sb.st_mode) ? "a directory" : S_ISBLK(sb.st_mode) ? "a block device" : "a socket";
            *out = p;
            return CMR_OK;
        }
        char *dir, *base;
        if (split(p, &dir, &base)) {
            free(p);
            return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
        }
        free(base);
        if (on_proc(dir)) {
            /* /proc/self/fd/N and the like: the link's text is no path to
             * rename over (a pipe reads "pipe:[123]"); write through it */
            free(dir);
            *kind = K_STREAM;
            *why = "a file descriptor (a link in /proc)";
            *out = p;
            return CMR_OK;
        }
        if (hop == MAX_HOPS) {
            free(dir);
            free(p);
            return cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(ELOOP));
        }
        char link[PATH_MAX];
        ssize_t n = readlink(p, link, sizeof link - 1);
        if (n < 0) {
            int e = errno;
            free(dir);
            free(p);
            return cmr_error_set(err, CMR_EIO, "%s: cannot read the symbolic link: %s", path, strerror(e));
        }
        link[n] = 0;
        char *next;
        if (link[0] == '/' || !strcmp(dir, "."))
            next = strdup(link);
        else if ((next = malloc(strlen(dir) + (size_t)n + 2)))
            sprintf(next, "%s/%s", dir, link);
        free(dir);
        free(p);
        if (!(p = next))
            return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    }
}

static void host_name(char *h, size_t n)
{
    if (gethostname(h, n) != 0)
        snprintf(h, n, "localhost");
    h[n - 1] = 0;
    for (char *c = h; *c; c++)
        if (*c == '/' || *c == '.')
            *c = '_';
}

/* ".BASE.cmr-HOST-" (BASE cut at BASE_MAX bytes): a temporary's name up to the PID */
static void tmp_prefix(char *buf, size_t n, const char *base)
{
    char host[HOST_MAX + 1];
    host_name(host, sizeof host);
    snprintf(buf, n, ".%.*s.cmr-%s-", BASE_MAX, base, host);
}

/* a temporary of ours (any output when prefix is NULL: ".*.cmr-HOST-") whose
 * writer is gone; returns its PID, or 0 */
static long stale_pid(const char *name, const char *prefix, const char *host)
{
    size_t len = strlen(name);
    if (name[0] != '.' || len < 8 || name[len - 7] != '.')
        return 0;
    for (size_t i = len - 6; i < len; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9')))
            return 0;
    size_t d = len - 7; /* digits of the PID end here */
    size_t s = d;
    while (s > 0 && name[s - 1] >= '0' && name[s - 1] <= '9')
        s--;
    if (s == d || d - s > 9 || s == 0 || name[s - 1] != '-')
        return 0;
    size_t hl = strlen(host);
    if (prefix) {
        if (s != strlen(prefix) || strncmp(name, prefix, s))
            return 0;
    } else {
        /* ... ".cmr-" HOST "-" */
        if (s < hl + 7 || strncmp(name + s - 1 - hl, host, hl) || strncmp(name + s - 6 - hl, ".cmr-", 5))
            return 0;
    }
    long pid = strtol(name + s, NULL, 10);
    if (pid <= 0 || pid == (long)getpid())
        return 0;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return 0; /* alive (or not ours to signal: alive) */
    return pid;
}

int cmr_atomic_clean(const char *dir, const char *base)
{
    char prefix[BASE_MAX + HOST_MAX + 16], host[HOST_MAX + 1];
    int removed = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    host_name(host, sizeof host);
    if (base)
        tmp_prefix(prefix, sizeof prefix, base);
    int dfd = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!stale_pid(e->d_name, base ? prefix : NULL, host))
            continue;
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat sb;
        /* ours, a regular file, and no writer holds its lock */
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
            flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(dfd, e->d_name, 0) == 0)
            removed++;
        close(fd);
    }
    closedir(d);
    return removed;
}

/* splitmix64 (Steele, Lea, Flood 2014), for temporary names */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* creates the temporary beside a->path, locked; fills a->tmp, returns the fd.
 * Not mkstemp: open(O_EXCL, 0666) lets the kernel apply the umask, where
 * mkstemp's 0600 would need umask() (process-wide, not thread-safe) to fix. */
static int make_tmp(struct cmr_atomic *a, const char *shown, struct cmr_error *err)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static unsigned counter;
    char *dir, *base;
    if (split(a->path, &dir, &base))
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", shown);
    char prefix[BASE_MAX + HOST_MAX + 16];
    tmp_prefix(prefix, sizeof prefix, base);
    size_t n = strlen(dir) + strlen(prefix) + 32;
    a->tmp = malloc(n);
    if (a->tmp)
        snprintf(a->tmp, n, "%s/%s%ld.XXXXXX", dir, prefix, (long)getpid());
    free(dir);
    free(base);
    if (!a->tmp)
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", shown);
    char *x = a->tmp + strlen(a->tmp) - 6;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t r = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 40) ^
                     __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    int fd = -1;
    for (int tries = 0; tries < 100; tries++) {
        r = mix(r);
        for (int i = 0; i < 6; i++)
            x[i] = abc[(r >> (8 * i)) % (sizeof abc - 1)];
        if ((fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)) >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        free(a->tmp);
        a->tmp = NULL;
        return cmr_error_set(err, CMR_EIO, "%s: cannot create a temporary file beside it: %s", shown,
                             strerror(e));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* not fatal (a file system without locks): the PID still guards it */
    }
    return fd;
}

static void free_atomic(struct cmr_atomic *a)
{
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

/* the checks open and check share: fills a->path and *kind */
static int prepare(struct cmr_atomic *a, const char *path, int flags, enum kind *kind,
                   struct cmr_error *err)
{
    const char *why;
    memset(a, 0, sizeof *a);
    if (!path || !*path)
        return cmr_error_set(err, CMR_EINVAL, "an output file name is empty");
    if (path[strlen(path) - 1] == '/')
        return cmr_error_set(err, CMR_EINVAL, "%s: names a directory, not a file", path);
    int rc = resolve(path, &a->path, kind, &why, err);
    if (rc)
        return rc;
    if (*kind == K_REFUSE || (*kind == K_STREAM && !(flags & CMR_ATOMIC_STREAM))) {
        if (*kind == K_REFUSE)
            cmr_error_set(err, CMR_EINVAL, "%s: %s, not a file to write", path, why);
        else
            cmr_error_set(err, CMR_EINVAL, "%s: %s, not a regular file: this output must be a regular file",
                          path, why);
        free_atomic(a);
        return CMR_EINVAL;
    }
    return CMR_OK;
}

int cmr_atomic_open(struct cmr_atomic *a, const char *path, int flags, struct cmr_error *err)
{
    enum kind kind;
    int rc = prepare(a, path, flags, &kind, err);
    if (rc)
        return rc;
    int fd;
    if (kind == K_STREAM) {
        /* written directly, through the name as given (a /proc link included) */
        fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            free_atomic(a);
            return cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(e));
        }
    } else {
        if ((fd = make_tmp(a, path, err)) < 0) {
            free_atomic(a);
            return fd;
        }
        /* a new file has the usual bits (0666 less the umask); a replaced one keeps its own */
        struct stat sb;
        if (stat(a->path, &sb) == 0 && fchmod(fd, sb.st_mode & 07777) != 0) {
            /* not fatal */
        }
    }
    a->flags = flags;
    if (!(a->f = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        if (a->tmp)
            unlink(a->tmp);
        free_atomic(a);
        return cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(e));
    }
    return CMR_OK;
}

void cmr_atomic_abort(struct cmr_atomic *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    free_atomic(a);
}

int cmr_atomic_commit(struct cmr_atomic *a, struct cmr_error *err)
{
    int e = 0;
    if (!a->f) {
        free_atomic(a);
        return cmr_error_set(err, CMR_ESTATE, "atomic: commit of a file not open");
    }
    errno = 0;
    if (fflush(a->f) || ferror(a->f))
        e = errno ? errno : EIO;
    int sync = a->tmp && !(a->flags & CMR_ATOMIC_NOSYNC);
    if (!e && sync && fsync(fileno(a->f)))
        e = errno;
    if (fclose(a->f) && !e)
        e = errno ? errno : EIO;
    a->f = NULL;
    if (!e && a->tmp && rename(a->tmp, a->path))
        e = errno;
    if (e) {
        cmr_error_set(err, CMR_EIO, "%s: write failed: %s", a->path, strerror(e));
        cmr_atomic_abort(a);
        return CMR_EIO;
    }
    if (sync) {
        /* make the rename durable */
        char *dir, *base;
        if (!split(a->path, &dir, &base)) {
            int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dir);
            free(base);
        }
    }
    free_atomic(a);
    return CMR_OK;
}

int cmr_atomic_check(const char *path, int flags, struct cmr_error *err)
{
    struct cmr_atomic a;
    enum kind kind;
    int rc = prepare(&a, path, flags, &kind, err);
    if (rc)
        return rc;
    if (kind == K_STREAM) {
        rc = access(path, W_OK) == 0 ? CMR_OK
                                     : cmr_error_set(err, CMR_EIO, "%s: cannot write: %s", path, strerror(errno));
        free_atomic(&a);
        return rc;
    }
    char *dir, *base;
    if (split(a.path, &dir, &base)) {
        free_atomic(&a);
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    }
    cmr_atomic_clean(dir, base);
    free(dir);
    free(base);
    int fd = make_tmp(&a, path, err);
    if (fd < 0) {
        free_atomic(&a);
        return fd;
    }
    close(fd);
    unlink(a.tmp);
    free_atomic(&a);
    return CMR_OK;
}

/* the name a path finally leads to, with its directory made absolute (for
 * outputs that do not exist yet); NULL if it cannot be known */
static char *canon(const char *path)
{
    char *p, *dir, *base, *out = NULL;
    enum kind kind;
    const char *why;
    if (resolve(path, &p, &kind, &why, NULL))
        return NULL;
    if (!split(p, &dir, &base)) {
        char *rd = realpath(dir, NULL);
        if (rd && (out = malloc(strlen(rd) + strlen(base) + 2)))
            sprintf(out, "%s/%s", rd, base);
        free(rd);
        free(dir);
        free(base);
    }
    free(p);
    return out;
}

int cmr_same_file(const char *out, const char *in)
{
    struct stat so, si;
    if (!out || !in)
        return 0;
    int ho = stat(out, &so) == 0;
    int hi = !strcmp(in, "-") ? fstat(STDIN_FILENO, &si) == 0 : stat(in, &si) == 0;
    if (ho && hi)
        /* a terminal or /dev/null may well be both */
        return so.st_dev == si.st_dev && so.st_ino == si.st_ino && !S_ISCHR(so.st_mode);
    if (ho || hi || !strcmp(in, "-"))
        return 0;
    char *a = canon(out), *b = canon(in);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

int cmr_output_check(const char *opt, const char *out, const char *const *inputs, int n, int flags,
                     struct cmr_error *err)
{
    if (!out)
        return cmr_error_set(err, CMR_EINVAL, "%s%sno output file name", opt ? opt : "", opt ? ": " : "");
    for (int i = 0; i < n; i++)
        if (inputs[i] && cmr_same_file(out, inputs[i])) {
            const char *what = !strcmp(inputs[i], "-")             ? "the standard input"
                               : !strcmp(inputs[i], "/dev/stdout") ? "the standard output"
                                                                   : inputs[i];
            return cmr_error_set(err, CMR_EINVAL, "%s%s%s is %s%s: refusing to write over it", opt ? opt : "",
                                 opt ? " " : "", out, what == inputs[i] ? "the same file as " : "", what);
        }
    int rc = cmr_atomic_check(out, flags, err);
    if (rc && opt) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        cmr_error_set(err, rc, "%s %s", opt, msg);
    }
    return rc;
}
