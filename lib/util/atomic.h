/* Output files: written whole or not at all, and never replacing a file that
 * is not the output.
 *
 *   struct cmr_atomic a;
 *   if (cmr_atomic_open(&a, "out/model.cmr", CMR_ATOMIC_STREAM, &err)) return err.code;
 *   fwrite(buf, 1, n, a.f);                  // into out/.model.cmr.cmr-HOST-PID.XXXXXX
 *   return cmr_atomic_commit(&a, &err);      // fsync, rename over out/model.cmr, fsync out/
 *
 * What an output path names decides how it is written (docs/filters.md,
 * "Output files"):
 *   - nothing yet, or a regular file: atomic replace. A temporary file beside
 *     it (same directory, so rename is atomic), flushed, fsync'ed, renamed
 *     over the name, then the directory fsync'ed. A reader sees the old file
 *     or the new one, never half of one, and an error or a kill leaves the old
 *     one as it was. An existing file's permission bits are kept.
 *   - a symbolic link: followed, hop by hop; the file it finally names is
 *     written as above, in that file's directory. The link stays a link.
 *   - a FIFO, a character device (/dev/null, a terminal), or a name that goes
 *     through /proc (/dev/stdout, /dev/fd/N, /proc/self/fd/N): written
 *     directly (opened for appending, nothing renamed or removed) when the
 *     caller passes CMR_ATOMIC_STREAM, else refused. Such an output can hold
 *     a partial write after an error.
 *   - a directory, a block device or a socket: refused.
 * Refusals are CMR_EINVAL; files that cannot be created or written are
 * CMR_EIO.
 *
 * Temporary files are named ".BASE.cmr-HOST-PID.XXXXXX" and locked (flock)
 * while they are written. One that a killed process left behind is removed by
 * cmr_atomic_check and cmr_atomic_clean: only when its host is this host, its
 * PID is not alive, and its lock can be taken, so that a concurrent writer's
 * temporary is never touched.
 *
 * Nothing here prints or exits. Example and tests: tests/unit/test-atomic.c */
#ifndef CMR_UTIL_ATOMIC_H
#define CMR_UTIL_ATOMIC_H

#include <stdio.h>

#include "err.h"

/* flags */
enum {
    CMR_ATOMIC_STREAM = 1, /* write a FIFO, character device or /proc name directly (else refuse it) */
    CMR_ATOMIC_NOSYNC = 2  /* no fsync: still whole or absent for readers and after a kill, but a
                              crash of the machine may leave it empty (many small files: cmr-dump) */
};

struct cmr_atomic {
    FILE *f;    /* write here */
    char *path; /* the file written: the output with its symbolic links followed */
    char *tmp;  /* the temporary file; NULL when the output is written directly */
    int flags;  /* as given to cmr_atomic_open */
};

/* opens an output as the rules above say; on error *a is empty and err filled */
int cmr_atomic_open(struct cmr_atomic *a, const char *path, int flags, struct cmr_error *err);
/* flushes and fsyncs the temporary, renames it over the output, fsyncs the
 * directory (a direct output is flushed and closed); frees *a, also on error,
 * after removing the temporary */
int cmr_atomic_commit(struct cmr_atomic *a, struct cmr_error *err);
/* closes and removes the temporary (the output keeps what it had); frees *a;
 * tolerates an empty *a */
void cmr_atomic_abort(struct cmr_atomic *a);

/* Everything cmr_atomic_open would refuse, found before long work: refuses
 * what the rules refuse, removes stale temporaries of this output, and
 * creates and removes a temporary to learn that the directory is writable. A
 * direct output is not opened (a FIFO would block): only its write permission
 * is checked. */
int cmr_atomic_check(const char *path, int flags, struct cmr_error *err);

/* removes the stale temporaries in dir (see above): of the output named base,
 * or of every output when base is NULL. Returns how many were removed. */
int cmr_atomic_clean(const char *dir, const char *base);

/* 1 when out and in name the same regular file (same device and inode, so
 * also through symbolic and hard links), or when neither exists yet and both
 * paths lead to the same name; in "-" is standard input; NULL is never the
 * same. */
int cmr_same_file(const char *out, const char *in);

/* The check every program runs on an output before its work: CMR_EINVAL when
 * out is the same file as one of the n inputs (NULL entries are skipped,
 * "-" is standard input), then cmr_atomic_check(out, flags). opt names the
 * option in messages ("--out"); NULL for none. */
int cmr_output_check(const char *opt, const char *out, const char *const *inputs, int n, int flags,
                     struct cmr_error *err);

#endif
