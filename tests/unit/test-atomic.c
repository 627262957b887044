/* lib/util/atomic.c: how outputs are written (regular files replaced
 * atomically, links followed, FIFOs and devices written directly or refused),
 * stale temporaries, and the same-file check. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "util/atomic.h"

static char dir[] = "/tmp/cmr-test-atomic.XXXXXX";

/* DIR/name, in one of 8 rotating buffers */
static const char *in_dir(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int has_text(const char *path, const char *text)
{
    char buf[256] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return !strcmp(buf, text);
}

/* names in d that contain ".cmr-" (temporaries) */
static int temporaries(const char *d)
{
    int n = 0;
    DIR *dd = opendir(d);
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        n += strstr(e->d_name, ".cmr-") != NULL;
    if (dd)
        closedir(dd);
    return n;
}

static int put(const char *path, int flags, const char *text, struct cmr_error *err)
{
    struct cmr_atomic a;
    int rc = cmr_atomic_open(&a, path, flags, err);
    if (rc)
        return rc;
    fputs(text, a.f);
    return cmr_atomic_commit(&a, err);
}

static void test_regular(void)
{
    struct cmr_error err = {0};
    struct stat sb;
    const char *p = in_dir("a.txt");

    umask(027);
    ok(put(p, 0, "one", &err) == CMR_OK && has_text(p, "one"), "a new file is written");
    int st0 = stat(p, &sb);
    ok(st0 == 0 && (sb.st_mode & 07777) == 0640, "with 0666 less the umask 027 (%o)", (unsigned)(sb.st_mode & 07777));
    umask(022);
    ok(temporaries(dir) == 0, "no temporary left");
    chmod(p, 0640);
    ok(put(p, CMR_ATOMIC_NOSYNC, "two", &err) == CMR_OK && has_text(p, "two") && temporaries(dir) == 0,
       "CMR_ATOMIC_NOSYNC: replaced the same way, without fsync");
    ok(put(p, 0, "two", &err) == CMR_OK && has_text(p, "two"), "an existing file is replaced");
    int st = stat(p, &sb);
    ok(st == 0 && (sb.st_mode & 07777) == 0640, "its permission bits are kept (%o)", (unsigned)(sb.st_mode & 07777));

    struct cmr_atomic a;
    int rc = cmr_atomic_open(&a, p, 0, &err);
    ok(rc == CMR_OK && a.tmp && strstr(a.tmp, "/.a.txt.cmr-"), "the temporary is beside it: %s",
       a.tmp ? a.tmp : "(none)");
    fputs("half", a.f);
    fflush(a.f);
    ok(has_text(p, "two"), "while it is written, the old file is whole");
    cmr_atomic_abort(&a);
    ok(has_text(p, "two") && temporaries(dir) == 0, "abort: the old file stays, the temporary goes");
    ok(a.f == NULL && a.tmp == NULL && a.path == NULL, "abort empties the struct");
}

static void test_links(void)
{
    struct cmr_error err = {0};
    struct stat sb;
    char sub[512];

    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0755);
    write_file(in_dir("sub/target.txt"), "old");
    symlink("sub/target.txt", in_dir("link.txt"));        /* relative */
    symlink(in_dir("link.txt"), in_dir("link2.txt"));     /* absolute, to a link */
    ok(put(in_dir("link.txt"), 0, "new", &err) == CMR_OK, "write through a symbolic link");
    ok(lstat(in_dir("link.txt"), &sb) == 0 && S_ISLNK(sb.st_mode), "... the link stays a link");
    ok(has_text(in_dir("sub/target.txt"), "new"), "... its target has the new content");
    ok(temporaries(dir) == 0 && temporaries(sub) == 0, "... no temporary left");
    ok(put(in_dir("link2.txt"), 0, "newer", &err) == CMR_OK && lstat(in_dir("link2.txt"), &sb) == 0 &&
           S_ISLNK(sb.st_mode) && lstat(in_dir("link.txt"), &sb) == 0 && S_ISLNK(sb.st_mode) &&
           has_text(in_dir("sub/target.txt"), "newer"),
       "a link to a link: both stay, the final target is written");
    symlink("sub/absent.txt", in_dir("dangling.txt"));
    ok(put(in_dir("dangling.txt"), 0, "born", &err) == CMR_OK && has_text(in_dir("sub/absent.txt"), "born") &&
           lstat(in_dir("dangling.txt"), &sb) == 0 && S_ISLNK(sb.st_mode),
       "a dangling link: its target is created");
    symlink("loop1", in_dir("loop2"));
    symlink("loop2", in_dir("loop1"));
    ok(put(in_dir("loop1"), 0, "x", &err) == CMR_EIO, "a loop of links: %s", err.msg);
}

static void test_special(void)
{
    struct cmr_error err = {0};
    struct stat sb;
    const char *fifo = in_dir("f.fifo");

    /* a FIFO: refused, or written directly with CMR_ATOMIC_STREAM */
    mkfifo(fifo, 0644);
    ok(put(fifo, 0, "x", &err) == CMR_EINVAL && strstr(err.msg, "a FIFO"), "a FIFO is refused: %s", err.msg);
    ok(cmr_atomic_check(fifo, 0, &err) == CMR_EINVAL, "... by the check too");
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    ok(put(fifo, CMR_ATOMIC_STREAM, "through", &err) == CMR_OK, "CMR_ATOMIC_STREAM: written into the FIFO");
    char buf[64] = "";
    ssize_t n = read(rfd, buf, sizeof buf - 1);
    ok(n == 7 && !memcmp(buf, "through", 7), "... a reader gets the bytes");
    close(rfd);
    ok(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "... and the FIFO is still a FIFO");
    ok(cmr_atomic_check(fifo, CMR_ATOMIC_STREAM, &err) == CMR_OK, "the check does not open it (no block)");

    /* a character device */
    ok(put("/dev/null", 0, "x", &err) == CMR_EINVAL && strstr(err.msg, "character device"),
       "/dev/null is refused: %s", err.msg);
    ok(put("/dev/null", CMR_ATOMIC_STREAM, "x", &err) == CMR_OK, "... or written into");
    ok(lstat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode), "... and stays a character device");

    /* /proc/self/fd/N and /dev/fd/N of a pipe: what /dev/stdout is in a pipeline */
    int pfd[2];
    if (pipe(pfd) == 0) {
        char p1[64], p2[64];
        snprintf(p1, sizeof p1, "/proc/self/fd/%d", pfd[1]);
        snprintf(p2, sizeof p2, "/dev/fd/%d", pfd[1]);
        ok(put(p1, 0, "x", &err) == CMR_EINVAL && strstr(err.msg, "/proc"), "%s is refused: %s", p1, err.msg);
        ok(put(p1, CMR_ATOMIC_STREAM, "pi", &err) == CMR_OK, "... or written into: %s", err.msg);
        ok(put(p2, CMR_ATOMIC_STREAM, "pe", &err) == CMR_OK, "%s is written into: %s", p2, err.msg);
        memset(buf, 0, sizeof buf);
        n = read(pfd[0], buf, sizeof buf - 1);
        ok(n == 4 && !memcmp(buf, "pipe", 4), "... the pipe carries the bytes");
        ok(lstat("/dev/fd", &sb) == 0 && S_ISLNK(sb.st_mode), "/dev/fd is still a link");
        close(pfd[0]);
        close(pfd[1]);
    }
    /* a regular file behind /proc/self/fd/N (as '> file' makes /dev/stdout): written
     * through the descriptor, appending, never renamed over */
    const char *reg = in_dir("fd.txt");
    write_file(reg, "kept ");
    int fd = open(reg, O_WRONLY | O_APPEND);
    char p3[64];
    snprintf(p3, sizeof p3, "/proc/self/fd/%d", fd);
    ok(put(p3, CMR_ATOMIC_STREAM, "appended", &err) == CMR_OK && has_text(reg, "kept appended"),
       "a regular file behind /proc/self/fd is appended to");
    close(fd);

    mkdir(in_dir("d"), 0755);
    ok(put(in_dir("d"), CMR_ATOMIC_STREAM, "x", &err) == CMR_EINVAL && strstr(err.msg, "a directory"),
       "a directory is refused: %s", err.msg);
    ok(put(in_dir("d/"), 0, "x", &err) == CMR_EINVAL, "a name ending in / is refused: %s", err.msg);
    ok(put("", 0, "x", &err) == CMR_EINVAL, "an empty name is refused");
    ok(put(in_dir("none/x.txt"), 0, "x", &err) == CMR_EIO, "a missing directory: %s", err.msg);
}

static void host(char *h, size_t n)
{
    if (gethostname(h, n) != 0)
        snprintf(h, n, "localhost");
    h[n - 1] = 0;
    for (char *c = h; *c; c++)
        if (*c == '/' || *c == '.')
            *c = '_';
}

static pid_t dead_pid(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    waitpid(p, NULL, 0);
    return p;
}

static void test_stale(void)
{
    struct cmr_error err = {0};
    char h[33], name[512];
    host(h, sizeof h);
    pid_t dead = dead_pid();
    char out[512];
    snprintf(out, sizeof out, "%s", in_dir("m.bin"));

    snprintf(name, sizeof name, ".m.bin.cmr-%s-%ld.AbC123", h, (long)dead);
    write_file(in_dir(name), "stale");
    char live[512], locked[512], other[512], foreign[512];
    snprintf(live, sizeof live, ".m.bin.cmr-%s-%ld.XyZ789", h, (long)getppid());
    write_file(in_dir(live), "a live writer's");
    snprintf(locked, sizeof locked, ".m.bin.cmr-%s-%ld.LoCk00", h, (long)dead);
    write_file(in_dir(locked), "locked");
    int lfd = open(in_dir(locked), O_RDONLY);
    flock(lfd, LOCK_EX);
    snprintf(other, sizeof other, ".n.bin.cmr-%s-%ld.OtHeR1", h, (long)dead);
    write_file(in_dir(other), "another output's");
    snprintf(foreign, sizeof foreign, ".m.bin.cmr-%sX-%ld.FoReI1", h, (long)dead);
    write_file(in_dir(foreign), "another host's");

    ok(cmr_atomic_check(out, 0, &err) == CMR_OK, "check: the directory is writable");
    ok(access(in_dir(name), F_OK) != 0, "a dead writer's temporary is removed");
    ok(access(in_dir(live), F_OK) == 0, "a live PID's temporary stays");
    ok(access(in_dir(locked), F_OK) == 0, "a locked temporary stays (its writer is alive elsewhere)");
    ok(access(in_dir(other), F_OK) == 0, "another output's temporary stays");
    ok(access(in_dir(foreign), F_OK) == 0, "another host's temporary stays");
    ok(access(out, F_OK) != 0, "the check writes nothing");
    ok(cmr_atomic_clean(dir, NULL) == 1 && access(in_dir(other), F_OK) != 0,
       "cmr_atomic_clean(dir, NULL) removes the other output's stale one");
    close(lfd);
    ok(cmr_atomic_clean(dir, "m.bin") == 1 && access(in_dir(locked), F_OK) != 0,
       "once its lock is free, the locked one goes");
    unlink(in_dir(live));
    unlink(in_dir(foreign));

    /* a writer in progress is never touched by a check of the same output */
    struct cmr_atomic a;
    ok(cmr_atomic_open(&a, out, 0, &err) == CMR_OK, "a writer opens");
    ok(cmr_atomic_check(out, 0, &err) == CMR_OK && access(a.tmp, F_OK) == 0, "a check leaves its temporary");
    ok(cmr_atomic_commit(&a, &err) == CMR_OK && access(out, F_OK) == 0, "and it commits");
    unlink(out);

    ok(cmr_atomic_check(in_dir("none/m.bin"), 0, &err) == CMR_EIO && strstr(err.msg, "temporary"),
       "check: a missing directory: %s", err.msg);
}

static void test_same(void)
{
    struct cmr_error err = {0};
    char a[512], b[512];
    snprintf(a, sizeof a, "%s", in_dir("s1"));
    snprintf(b, sizeof b, "%s", in_dir("s2"));
    write_file(a, "data");
    write_file(b, "data");
    link(a, in_dir("s1-hard"));
    symlink("s1", in_dir("s1-soft"));
    ok(cmr_same_file(a, a), "a file is itself");
    ok(cmr_same_file(in_dir("s1-hard"), a) && cmr_same_file(in_dir("s1-soft"), a), "through hard and soft links");
    ok(!cmr_same_file(a, b), "two files with the same content are not");
    ok(!cmr_same_file(a, NULL) && !cmr_same_file(in_dir("new"), a), "NULL, or one file new, are not");
    ok(cmr_same_file(in_dir("new"), in_dir("./new")) && cmr_same_file(in_dir("new"), in_dir("sub/../new")),
       "two names of one new file are");
    ok(!cmr_same_file(in_dir("new"), in_dir("new2")), "two new files are not");
    ok(!cmr_same_file("/dev/null", "/dev/null"), "a character device may be both");

    int saved = dup(0), fd = open(a, O_RDONLY);
    dup2(fd, 0);
    ok(cmr_same_file(a, "-") && !cmr_same_file(b, "-"), "\"-\" is standard input");
    dup2(saved, 0);
    close(fd);
    close(saved);

    const char *ins[] = {NULL, b, in_dir("s1-hard")};
    ok(cmr_output_check("--out", in_dir("s1-soft"), ins, 3, 0, &err) == CMR_EINVAL && strstr(err.msg, "--out ") &&
           strstr(err.msg, "s1-hard"),
       "cmr_output_check names the option and the input: %s", err.msg);
    ok(has_text(a, "data"), "... and the input is untouched");
    ok(cmr_output_check("--out", in_dir("fresh"), ins, 3, 0, &err) == CMR_OK, "a fresh output passes");
    ok(cmr_output_check("--out", in_dir("none/x"), ins, 3, 0, &err) == CMR_EIO && !strncmp(err.msg, "--out ", 6),
       "an unwritable one fails: %s", err.msg);
}

static void rm_rf(const char *d)
{
    DIR *dd = opendir(d);
    struct dirent *e;
    char p[1024];
    while (dd && (e = readdir(dd))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", d, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    if (dd)
        closedir(dd);
    rmdir(d);
}

int main(void)
{
    tap_plan_none();
    if (!mkdtemp(dir))
        skip_all("cannot create a temporary directory");
    test_regular();
    test_links();
    test_special();
    test_stale();
    test_same();
    rm_rf(dir);
    return tap_done();
}
