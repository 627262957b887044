/* Helpers shared by the NN kernel tests (tests/unit/test-nn-*.c):
 * random buffers, the reference-fixture reader (tests/ref/make_refs_nn.py),
 * and the finite-difference gradient check (ggml test-backend-ops "grad" mode). */
#ifndef CMR_NN_TEST_H
#define CMR_NN_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "nn/nn.h"
#include "../tap.h"
#include "util/rng.h"

/* ---- buffers ---- */

static inline void *xmalloc_or_die(size_t n, int line)
{
    void *p = calloc(n ? n : 1, 1);
    if (!p) {
        printf("Bail out! out of memory at line %d\n", line);
        exit(99);
    }
    return p;
}
#define fbuf(n) ((float *)xmalloc_or_die(sizeof(float) * (size_t)(n), __LINE__))
#define ibuf(n) ((int32_t *)xmalloc_or_die(sizeof(int32_t) * (size_t)(n), __LINE__))

static inline void fill_normal(struct cmr_rng *r, float *x, size_t n, double scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * cmr_rng_normal(r));
}

static inline void fill_uniform(struct cmr_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * cmr_rng_uniform(r));
}

static inline float *fdup(const float *x, size_t n)
{
    float *y = fbuf(n);
    memcpy(y, x, sizeof(float) * n);
    return y;
}

static inline double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static inline float maxabs(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* ||got - want|| / ||want|| (2-norms) below tol */
static inline int check_normwise(const char *label, const float *got, const float *want, size_t n,
                                 double tol)
{
    double se = 0, sw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        se += d * d;
        sw += (double)want[i] * want[i];
    }
    double rel = sw > 0 ? sqrt(se / sw) : sqrt(se);
    return ok(rel <= tol, "%s: %zu values, |got - want| / |want| = %.2e (<= %.0e)", label, n, rel, tol);
}

/* ---- reference fixtures: "CMRT", version 1, named f32 tensors ---- */

#define REF_MAX 96
struct ref_tensor {
    char name[64];
    int ndim;
    uint32_t dims[6];
    size_t n;
    float *data;
};
struct ref_file {
    int count;
    struct ref_tensor t[REF_MAX];
};

static inline uint32_t rd_u32(FILE *f, int *bad)
{
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) {
        *bad = 1;
        return 0;
    }
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* loads $CMR_SRCDIR/tests/ref/<name> (or ./tests/ref/<name>); bails out on any error */
static inline void ref_load(struct ref_file *rf, const char *name)
{
    char path[4096];
    const char *src = getenv("CMR_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/ref/%s", src ? src : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("Bail out! cannot open %s (set CMR_SRCDIR to the source tree)\n", path);
        exit(99);
    }
    char magic[4];
    int bad = fread(magic, 1, 4, f) != 4 || memcmp(magic, "CMRT", 4) != 0;
    uint32_t version = rd_u32(f, &bad), count = rd_u32(f, &bad);
    if (bad || version != 1 || count > REF_MAX) {
        printf("Bail out! %s: bad magic, version %u or count %u"
               " (regenerate with tests/ref/make_refs_nn.py)\n", path, version, count);
        exit(99);
    }
    rf->count = (int)count;
    for (uint32_t k = 0; k < count && !bad; k++) {
        struct ref_tensor *t = &rf->t[k];
        uint32_t len = rd_u32(f, &bad);
        if (bad || len >= sizeof t->name || fread(t->name, 1, len, f) != len) {
            bad = 1;
            break;
        }
        t->name[len] = 0;
        t->ndim = (int)rd_u32(f, &bad);
        if (t->ndim > 6) {
            bad = 1;
            break;
        }
        t->n = 1;
        for (int i = 0; i < t->ndim; i++) {
            t->dims[i] = rd_u32(f, &bad);
            t->n *= t->dims[i];
        }
        if (bad || t->n > (1u << 24)) {
            bad = 1;
            break;
        }
        t->data = fbuf(t->n);
        for (size_t i = 0; i < t->n && !bad; i++) {
            uint32_t u = rd_u32(f, &bad);
            memcpy(&t->data[i], &u, 4);
        }
    }
    fclose(f);
    if (bad) {
        printf("Bail out! %s is truncated or malformed\n", path);
        exit(99);
    }
}

/* the tensor `name`, which must hold n values */
static inline float *ref_get(struct ref_file *rf, const char *name, size_t n)
{
    for (int k = 0; k < rf->count; k++)
        if (strcmp(rf->t[k].name, name) == 0) {
            if (rf->t[k].n != n) {
                printf("Bail out! fixture tensor %s has %zu values, the test expects %zu\n", name,
                       rf->t[k].n, n);
                exit(99);
            }
            return rf->t[k].data;
        }
    printf("Bail out! fixture tensor %s missing\n", name);
    exit(99);
}

static inline void ref_free(struct ref_file *rf)
{
    for (int k = 0; k < rf->count; k++)
        free(rf->t[k].data);
    rf->count = 0;
}

/* ---- finite-difference gradient check ----
 * loss(ctx) runs the forward pass on the current buffers and returns
 * L = sum(out * R) in double. The tests evaluate it in double throughout where
 * the float forward rounds (conv, bn, linear, GRU, InfoNCE, the block): the
 * float kernels are checked equal to that maths separately, and a float loss
 * would make the central difference of small gradients mostly rounding noise. For up to nmax elements i of x (evenly spread),
 * the central difference (L(x_i + eps) - L(x_i - eps)) / 2eps is compared with
 * the analytic grad[i]:
 *   rel_i = |a - n| / max(|a|, |n|, 1e-2 * max_j |n_j|)  must stay below GC_MAXREL
 *   (elements under 1 % of the largest gradient are judged against that 1 %:
 *   float rounding of the loss makes their central difference mostly noise),
 *   nmse  = sum (a - n)^2 / sum n^2 (ggml)            must stay below GC_NMSE.
 * skip(ctx, i), if given, excludes elements sitting on a kink (ggml grad_expect). */
#define GC_EPS 1e-3f
#define GC_MAXREL 1e-2
#define GC_NMSE 1e-4
#define GC_NMAX 64

typedef double (*gc_loss_fn)(void *ctx);
typedef int (*gc_skip_fn)(void *ctx, float *x, size_t i);

struct gc_result {
    double maxrel, nmse;
    int checked;
};

static struct gc_result gc_worst __attribute__((unused));   /* the worst figures over a test program, for the summary */

static inline int gradcheck(const char *label, gc_loss_fn loss, void *ctx, float *x, const float *grad,
                     size_t n, gc_skip_fn skip)
{
    size_t m = n < GC_NMAX ? n : GC_NMAX;
    double *num = calloc(m, sizeof *num), *ana = calloc(m, sizeof *ana);
    size_t cnt = 0;
    for (size_t k = 0; k < m; k++) {
        size_t i = m == n ? k : (size_t)((double)k * n / m);
        if (skip && skip(ctx, x, i))
            continue;
        float x0 = x[i];
        x[i] = x0 + GC_EPS;
        double lp = loss(ctx);
        x[i] = x0 - GC_EPS;
        double lm = loss(ctx);
        x[i] = x0;
        /* divide by the perturbation actually applied (float rounding of x0 +- eps) */
        double h = (double)(x0 + GC_EPS) - (double)(x0 - GC_EPS);
        num[cnt] = (lp - lm) / h;
        ana[cnt] = grad[i];
        cnt++;
    }
    double ss = 0, se = 0, maxrel = 0;
    for (size_t k = 0; k < cnt; k++) {
        ss += num[k] * num[k];
        se += (ana[k] - num[k]) * (ana[k] - num[k]);
    }
    double nmax = 0;
    for (size_t k = 0; k < cnt; k++)
        nmax = fabs(num[k]) > nmax ? fabs(num[k]) : nmax;
    double floor_ = 1e-2 * nmax + 1e-12;
    size_t worst = 0;
    for (size_t k = 0; k < cnt; k++) {
        double den = fabs(ana[k]) > fabs(num[k]) ? fabs(ana[k]) : fabs(num[k]);
        if (den < floor_)
            den = floor_;
        double rel = fabs(ana[k] - num[k]) / den;
        if (rel > maxrel || rel != rel) {
            maxrel = rel != rel ? INFINITY : rel;
            worst = k;
        }
    }
    if (cnt)
        diag("%s: worst element analytic %.6g numeric %.6g (largest numeric %.3g)", label,
             ana[worst], num[worst], nmax);
    double nmse = ss > 0 ? se / ss : (se > 0 ? INFINITY : 0);
    free(num);
    free(ana);
    if (maxrel > gc_worst.maxrel)
        gc_worst.maxrel = maxrel;
    if (nmse > gc_worst.nmse)
        gc_worst.nmse = nmse;
    gc_worst.checked += (int)cnt;
    return ok(cnt > 0 && maxrel < GC_MAXREL && nmse < GC_NMSE,
              "gradcheck %s: %zu of %zu elements, max rel err %.2e (< %.0e), nmse %.2e (< %.0e),"
              " eps %.0e", label, cnt, n, maxrel, GC_MAXREL, nmse, GC_NMSE, (double)GC_EPS);
}

static inline void gc_summary(void)
{
    diag("gradient checks: %d elements, worst max rel err %.2e, worst nmse %.2e", gc_worst.checked,
         gc_worst.maxrel, gc_worst.nmse);
}

#endif
