/* safetensors: read and write the tensor container PyTorch users exchange.
 *
 * Format (https://huggingface.co/docs/safetensors, "Format"): an 8-byte
 * little-endian header length N, N bytes of UTF-8 JSON, then the raw tensor
 * bytes. The JSON is one object: per tensor
 *   "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
 * (offsets relative to the start of the data area) and an optional
 *   "__metadata__": {"key": "string value", ...}.
 * cmr writes F32 only (as tests/ref/cmr_models.py save_safetensors
 * does, which also casts the integer num_batches_tracked to F32) and reads
 * F32, F64, F16, BF16, I64 and I32, converting to float.
 *
 * The header is read with cmr's one strict JSON reader (util/json.h), for this
 * schema only: objects, strings with all JSON escapes, arrays of non-negative
 * integers. It bounds the header at CMR_SAFETENSORS_MAX_HEADER bytes, ranks at
 * CMR_SAFETENSORS_MAX_DIMS, and checks that every tensor's byte range matches its
 * dtype x shape and lies inside the data area, without overlaps.
 *
 * Files are written as util/atomic.h says (a temporary file beside the
 * output, fsync, rename; a FIFO or character device directly).
 * Nothing here prints or exits; errors come back as CMR_E* codes with
 * struct cmr_error filled. */
#ifndef CMR_SAFETENSORS_H
#define CMR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define CMR_SAFETENSORS_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* as the safetensors crate */
#define CMR_SAFETENSORS_MAX_DIMS 8
#define CMR_SAFETENSORS_MAX_NAME 1024

enum cmr_safetensors_dtype {
    CMR_SAFETENSORS_F32 = 0,
    CMR_SAFETENSORS_F64,
    CMR_SAFETENSORS_F16,
    CMR_SAFETENSORS_BF16,
    CMR_SAFETENSORS_I64,
    CMR_SAFETENSORS_I32
};

struct cmr_safetensors_tensor {
    char *name;
    enum cmr_safetensors_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[CMR_SAFETENSORS_MAX_DIMS];
    uint64_t begin, end;             /* byte range in the data area */
};

struct cmr_safetensors_kv {
    char *key, *val;
};

struct cmr_safetensors {
    struct cmr_safetensors_tensor *tensors;   /* in header order */
    int n_tensors;
    struct cmr_safetensors_kv *meta;        /* __metadata__ in header order */
    int n_meta;
    unsigned char *data;             /* the data area, owned */
    size_t data_len;
};

/* parses a whole safetensors file held in memory (copies what it keeps);
 * name is used in messages */
int cmr_safetensors_parse(const void *buf, size_t len, const char *name,
                          struct cmr_safetensors **out, struct cmr_error *err);
/* reads and parses a file */
int cmr_safetensors_read(const char *path, struct cmr_safetensors **out, struct cmr_error *err);
void cmr_safetensors_free(struct cmr_safetensors *st);

/* the tensor with that name, or NULL */
const struct cmr_safetensors_tensor *cmr_safetensors_find(const struct cmr_safetensors *st,
                                                          const char *name);
/* the metadata value for key, or NULL */
const char *cmr_safetensors_meta(const struct cmr_safetensors *st, const char *key);
size_t cmr_safetensors_numel(const struct cmr_safetensors_tensor *t);
const char *cmr_safetensors_dtype_name(enum cmr_safetensors_dtype d);
/* copies tensor t as float into dst (numel floats), converting its dtype */
void cmr_safetensors_get(const struct cmr_safetensors *st, const struct cmr_safetensors_tensor *t,
                         float *dst);

/* one tensor to write: F32, row-major */
struct cmr_safetensors_out {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
};

/* writes tensors (in the given order) and metadata to path atomically
 * (util/atomic.h, CMR_ATOMIC_STREAM) */
int cmr_safetensors_write(const char *path, const struct cmr_safetensors_out *tensors, int n_tensors,
                          const struct cmr_safetensors_kv *meta, int n_meta, struct cmr_error *err);

#endif
