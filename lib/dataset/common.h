/* What the data-set readers of lib/dataset/ (one file a set) share: the reader's state,
 * files read whole, the audio root, the row check and output, a string map,
 * a growable string. Internal to lib/dataset; see dataset.h for the API. */
#ifndef CMR_DATASET_COMMON_H
#define CMR_DATASET_COMMON_H

#include <stddef.h>

#include "dataset/dataset.h"
#include "util/csv.h"

/* one reader's run */
struct cmr_ds {
    const struct cmr_dataset_cfg *cfg;
    const struct cmr_dataset_sink *out;
    struct cmr_error *err;
    char *root;   /* the audio root: absolute when it exists, no trailing '/' */
    long missing; /* rows left out: audio missing or unreadable */
};

void cmr_ds_init(struct cmr_ds *d, const struct cmr_dataset_cfg *cfg, const struct cmr_dataset_sink *out,
                 struct cmr_error *err);
void cmr_ds_free(struct cmr_ds *d);

/* messages through the sink */
void cmr_ds_info(struct cmr_ds *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cmr_ds_warn(struct cmr_ds *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* CMR_EFORMAT with the message (a malformed file) */
int cmr_ds_fail(struct cmr_ds *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* CMR_EIO: "PATH: strerror(errno)" */
int cmr_ds_fail_io(struct cmr_ds *d, const char *path);

/* reads a whole file, NUL-terminated (*len without the NUL) */
int cmr_ds_read_file(struct cmr_ds *d, const char *path, char **text, size_t *len);
/* the audio root: dir (made absolute when it exists) */
int cmr_ds_set_root(struct cmr_ds *d, const char *dir);
/* the audio root: cfg.audio when set, else the folder that holds file */
int cmr_ds_set_root_beside(struct cmr_ds *d, const char *file);
/* the path of an audio file given relative to the root (or absolute); NULL: out of memory */
char *cmr_ds_path(struct cmr_ds *d, const char *rel);

/* the header line (column names, tab-separated) */
int cmr_ds_header(struct cmr_ds *d, const char *columns);
/* One row. check: leave it out (count it, say so with -v) when its audio is
 * not readable. Every field must fit a TSV (where names the input for the
 * message). 1 when written, 0 when left out, or an error. */
int cmr_ds_emit(struct cmr_ds *d, const char *path, const char *track, const char *const *values, int n,
                const char *where, int check);
/* the warning that counts the rows left out, if any */
void cmr_ds_report_missing(struct cmr_ds *d);
/* a field must fit in the list's plain TSV */
int cmr_ds_check_field(struct cmr_ds *d, const char *what, const char *v, const char *where);

/* cmr_csv_next: 1 a record, 0 the end, or an error */
int cmr_ds_csv_next(struct cmr_ds *d, struct cmr_csv *c);

/* string -> string map (open addressing) */
struct cmr_ds_map {
    char **key, **val;
    size_t n, cap;
};
const char *cmr_ds_map_get(const struct cmr_ds_map *m, const char *k);
/* 0 when added, 1 when the key was there (value kept), or CMR_ENOMEM */
int cmr_ds_map_put(struct cmr_ds *d, struct cmr_ds_map *m, const char *k, const char *v);
void cmr_ds_map_free(struct cmr_ds_map *m);
/* a two-column TSV without header: id<TAB>path; '#' lines and blank lines skipped */
int cmr_ds_read_id_paths(struct cmr_ds *d, const char *path, struct cmr_ds_map *m);

/* a growable NUL-terminated string */
struct cmr_ds_buf {
    char *p;
    size_t n, cap;
};
int cmr_ds_buf_put(struct cmr_ds *d, struct cmr_ds_buf *b, const char *s, size_t n);
/* empties b, keeping a valid (empty) string in b->p */
int cmr_ds_buf_clear(struct cmr_ds *d, struct cmr_ds_buf *b);
/* appends s, after sep when b is not empty */
int cmr_ds_buf_item(struct cmr_ds *d, struct cmr_ds_buf *b, char sep, const char *s);

/* qsort comparison of char * */
int cmr_ds_cmp_str(const void *a, const void *b);

#endif
