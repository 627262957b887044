#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic.h"

struct cmr_npy {
    struct cmr_atomic a;              /* a regular file: the header is rewritten at the end */
    FILE *f;                          /* a.f while open */
    int ndim;                         /* including the rows dimension */
    int64_t shape[CMR_NPY_MAX_DIMS];  /* shape[0] = rows so far */
    size_t row_floats;
};

int cmr_npy_header(char *buf, int ndim, const int64_t *shape)
{
    char dict[CMR_NPY_HEADER_LEN];
    size_t n, hl = CMR_NPY_HEADER_LEN - 10;
    int k;

    if (ndim < 0 || ndim > CMR_NPY_MAX_DIMS)
        return CMR_EINVAL;
    k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return CMR_EINVAL;
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld%s", (long long)shape[i],
                      (ndim == 1 || i + 1 < ndim) ? "," : "");
        if ((size_t)k >= sizeof dict)
            return CMR_EINVAL;
        if (i + 1 < ndim)
            k += snprintf(dict + k, sizeof dict - (size_t)k, " ");
    }
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    n = (size_t)k;
    if (n + 1 > hl)
        return CMR_EINVAL;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hl & 0xff);
    buf[9] = (char)(hl >> 8);
    memcpy(buf + 10, dict, n);
    memset(buf + 10 + n, ' ', hl - n - 1);
    buf[CMR_NPY_HEADER_LEN - 1] = '\n';
    return CMR_OK;
}

static int is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

struct cmr_npy *cmr_npy_create(const char *path, int tail_ndim, const int64_t *tail,
                               struct cmr_error *err)
{
    struct cmr_npy *w;
    char hdr[CMR_NPY_HEADER_LEN];

    if (tail_ndim < 0 || tail_ndim > CMR_NPY_MAX_DIMS - 1) {
        cmr_error_set(err, CMR_EINVAL, "npy: %d trailing dims, at most %d", tail_ndim,
                      CMR_NPY_MAX_DIMS - 1);
        return NULL;
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        cmr_error_set(err, CMR_ENOMEM, "npy: out of memory");
        return NULL;
    }
    w->ndim = tail_ndim + 1;
    w->row_floats = 1;
    for (int i = 0; i < tail_ndim; i++) {
        if (tail[i] < 0) {
            cmr_error_set(err, CMR_EINVAL, "npy: negative dimension");
            free(w);
            return NULL;
        }
        w->shape[i + 1] = tail[i];
        w->row_floats *= (size_t)tail[i];
    }
    /* no fsync: thousands of .npy files would take seconds more (regenerable output) */
    if (cmr_atomic_open(&w->a, path, CMR_ATOMIC_NOSYNC, err) != CMR_OK) {
        free(w);
        return NULL;
    }
    w->f = w->a.f;
    cmr_npy_header(hdr, w->ndim, w->shape);
    if (fwrite(hdr, 1, sizeof hdr, w->f) != sizeof hdr) {
        cmr_error_set(err, CMR_EIO, "%s: write failed: %s", w->a.path, strerror(errno));
        goto fail;
    }
    return w;
fail:
    cmr_npy_abort(w);
    return NULL;
}

int cmr_npy_append(struct cmr_npy *w, const float *data, size_t rows, struct cmr_error *err)
{
    size_t n;
    if (!w || !w->f)
        return cmr_error_set(err, CMR_ESTATE, "npy: append to a closed writer");
    n = rows * w->row_floats;
    if (is_little_endian()) {
        if (fwrite(data, sizeof *data, n, w->f) != n)
            return cmr_error_set(err, CMR_EIO, "%s: write failed: %s", w->a.path, strerror(errno));
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char b[4], s[4];
            memcpy(b, &data[i], 4);
            s[0] = b[3], s[1] = b[2], s[2] = b[1], s[3] = b[0];
            if (fwrite(s, 1, 4, w->f) != 4)
                return cmr_error_set(err, CMR_EIO, "%s: write failed: %s", w->a.path, strerror(errno));
        }
    }
    w->shape[0] += (int64_t)rows;
    return CMR_OK;
}

int64_t cmr_npy_rows(const struct cmr_npy *w)
{
    return w ? w->shape[0] : 0;
}

int cmr_npy_finish(struct cmr_npy *w, struct cmr_error *err)
{
    char hdr[CMR_NPY_HEADER_LEN];
    int rc = CMR_OK;
    FILE *f;

    if (!w || !w->f) {
        cmr_npy_abort(w);
        return cmr_error_set(err, CMR_ESTATE, "npy: finish on a closed writer");
    }
    f = w->f;
    if (cmr_npy_header(hdr, w->ndim, w->shape) != CMR_OK)
        rc = cmr_error_set(err, CMR_EINVAL, "%s: shape does not fit the header", w->a.path);
    else if (fflush(f) != 0 || fseek(f, 0, SEEK_SET) != 0 ||
             fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr)
        rc = cmr_error_set(err, CMR_EIO, "%s: write failed: %s", w->a.path, strerror(errno));
    w->f = NULL;
    if (rc == CMR_OK)
        rc = cmr_atomic_commit(&w->a, err); /* fsync, rename into place */
    else
        cmr_atomic_abort(&w->a);
    free(w);
    return rc;
}

void cmr_npy_abort(struct cmr_npy *w)
{
    if (!w)
        return;
    cmr_atomic_abort(&w->a);
    free(w);
}
