/* Helpers shared by the model tests (tests/unit/test-model*.c): synthetic
 * segments drawn exactly as tests/ref/make_refs_models.py draws them, the
 * fixture loader, and a normwise comparison. */
#ifndef CMR_MODEL_TEST_H
#define CMR_MODEL_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "model.h"
#include "safetensors.h"
#include "util/rng.h"

#define SEGF (CMR_MODEL_T * CMR_MODEL_F)

static inline void *mt_alloc(size_t n, int line)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        printf("Bail out! out of memory at line %d\n", line);
        exit(99);
    }
    return p;
}
#define FBUF(n) ((float *)mt_alloc(sizeof(float) * (size_t)(n), __LINE__))

/* n segments of 2 * uniform in [0, 2) from cmr_rng(seed): make_refs_models.py segments() */
static inline float *mt_segments(uint64_t seed, int n)
{
    struct cmr_rng r;
    float *x = FBUF((size_t)n * SEGF);
    cmr_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * SEGF; i++)
        x[i] = (float)(2 * cmr_rng_uniform(&r));
    return x;
}

static inline void mt_path(char *buf, size_t n, const char *name)
{
    const char *src = getenv("CMR_SRCDIR");
    snprintf(buf, n, "%s/tests/ref/%s", src ? src : ".", name);
}

/* a fixture file (safetensors with cmr.fixture = models, version 1); bails out if absent */
static inline struct cmr_safetensors *mt_fixture(const char *name)
{
    char path[4096];
    struct cmr_safetensors *st;
    struct cmr_error err = {0};
    mt_path(path, sizeof path, name);
    if (cmr_safetensors_read(path, &st, &err)) {
        printf("Bail out! %s (set CMR_SRCDIR to the source tree)\n", err.msg);
        exit(99);
    }
    const char *f = cmr_safetensors_meta(st, "cmr.fixture"), *v = cmr_safetensors_meta(st, "cmr.fixture_version");
    if (!f || strcmp(f, "models") || !v || strcmp(v, "1")) {
        printf("Bail out! %s: not a models fixture of version 1 (regenerate with tests/ref/make_refs_models.py)\n",
               path);
        exit(99);
    }
    return st;
}

/* the fixture tensor `name` as floats (n values expected); bails out if absent */
static inline float *mt_get(const struct cmr_safetensors *st, const char *name, size_t n)
{
    const struct cmr_safetensors_tensor *t = cmr_safetensors_find(st, name);
    if (!t || cmr_safetensors_numel(t) != n) {
        printf("Bail out! fixture tensor %s %s (expected %zu values)\n", name, t ? "has the wrong size" : "missing", n);
        exit(99);
    }
    float *v = FBUF(n);
    cmr_safetensors_get(st, t, v);
    return v;
}

static inline double mt_maxabs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* max |got - want| / max |want| <= tol, element by element within tol * max|want| + tol * |want| */
static inline int mt_close(const char *label, const float *got, const float *want, size_t n, double tol)
{
    double scale = mt_maxabs(want, n), md = 0;
    for (size_t i = 0; i < n; i++)
        md = fmax(md, fabs((double)got[i] - want[i]));
    diag("%s: normwise max relative error %.2e (max |diff| / max |PyTorch|)", label, md / (scale > 0 ? scale : 1));
    return check_close(label, got, want, n, tol * (scale > 0 ? scale : 1), tol);
}

#endif
