/* Writing NumPy .npy files (format version 1.0), streaming, atomically.
 *
 *   int64_t tail[2] = {188, 96};
 *   struct cmr_npy *w = cmr_npy_create("out/a.npy", 2, tail, &err);  // writes a temporary beside out/a.npy
 *   cmr_npy_append(w, data, n_rows, &err);     // n_rows * 188 * 96 floats
 *   cmr_npy_finish(w, &err);                    // final shape (rows, 188, 96); renamed to out/a.npy
 *
 * The array is little-endian float32 ('<f4'), C order, of shape
 * (rows, tail...). The first dimension is only known at the end, so the header
 * is written with room to spare and rewritten by cmr_npy_finish, which then
 * renames the temporary file over the final name (util/atomic.h, without
 * fsync): a reader never sees a half-written .npy. cmr_npy_abort removes the temporary file.
 * The header is rewritten in place, so the output must be a regular file (or
 * a new one, or a symbolic link to one): a FIFO or a device is refused.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * (magic "\x93NUMPY", version 1.0, uint16 LE header length, a Python dict
 * literal padded with spaces and '\n' so the data starts at a multiple of 64).
 */
#ifndef CMR_NPY_H
#define CMR_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CMR_NPY_MAX_DIMS 8
#define CMR_NPY_HEADER_LEN 128   /* bytes before the data, magic included */

/* Writes the 128-byte header for shape[0..ndim) into buf (>= CMR_NPY_HEADER_LEN
 * bytes). ndim 0 is a scalar. CMR_EINVAL if it does not fit. */
int cmr_npy_header(char *buf, int ndim, const int64_t *shape);

struct cmr_npy;

/* tail: the shape of one row (tail_ndim in [0, CMR_NPY_MAX_DIMS - 1]);
 * NULL with err filled when the temporary file cannot be created (CMR_EIO)
 * or path is not a regular file (CMR_EINVAL). */
struct cmr_npy *cmr_npy_create(const char *path, int tail_ndim, const int64_t *tail,
                               struct cmr_error *err);
/* appends rows (rows * prod(tail) floats) */
int cmr_npy_append(struct cmr_npy *w, const float *data, size_t rows, struct cmr_error *err);
int64_t cmr_npy_rows(const struct cmr_npy *w);
/* completes the file and frees w (also on error, after removing the temporary) */
int cmr_npy_finish(struct cmr_npy *w, struct cmr_error *err);
/* removes the temporary file and frees w; tolerates NULL */
void cmr_npy_abort(struct cmr_npy *w);

#endif
