/* Internal: four-wide float vectors (GCC/clang vector extensions) for the
 * memory-bound loops of lib/nn/ (batch-norm statistics, relu, bias sums,
 * col2im). At -O2 GCC neither vectorizes float reductions (that needs
 * reassociation) nor if-converts the relu/pool selects, so these loops say
 * what they mean. SSE2 is the x86-64 baseline; other targets lower the same
 * code to scalars. Not part of the API. */
#ifndef CMR_NN_VEC_H
#define CMR_NN_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4f_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4f_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4f_set1(float x) { return (v4f){x, x, x, x}; }
/* lanes of a where mask is all ones, else lanes of b */
static inline v4f v4f_select(v4i mask, v4f a, v4f b)
{
    return (v4f)((mask & (v4i)a) | (~mask & (v4i)b));
}
/* lanes picked from a (0-3) and b (4-7) */
#if defined(__clang__)
#define V4F_SHUF(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#else
#define V4F_SHUF(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, (v4i){i0, i1, i2, i3})
#endif

/* 4x4 transpose: r[i][j] <- r[j][i] */
static inline void v4f_transpose(v4f *r0, v4f *r1, v4f *r2, v4f *r3)
{
    v4f t0 = V4F_SHUF(*r0, *r1, 0, 4, 1, 5), t1 = V4F_SHUF(*r0, *r1, 2, 6, 3, 7);
    v4f t2 = V4F_SHUF(*r2, *r3, 0, 4, 1, 5), t3 = V4F_SHUF(*r2, *r3, 2, 6, 3, 7);
    *r0 = V4F_SHUF(t0, t2, 0, 1, 4, 5);
    *r1 = V4F_SHUF(t0, t2, 2, 3, 6, 7);
    *r2 = V4F_SHUF(t1, t3, 0, 1, 4, 5);
    *r3 = V4F_SHUF(t1, t3, 2, 3, 6, 7);
}

static inline double v4f_hsum(v4f v) { return ((double)v[0] + v[1]) + ((double)v[2] + v[3]); }

/* sum of x[0..n), 16 float lanes, the total in double */
static inline double vsum(const float *x, size_t n)
{
    v4f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 += v4f_load(x + i);
        a1 += v4f_load(x + i + 4);
        a2 += v4f_load(x + i + 8);
        a3 += v4f_load(x + i + 12);
    }
    double s = v4f_hsum((a0 + a1) + (a2 + a3));
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* sum of (x - m)^2 */
static inline double vsum_sqdev(const float *x, size_t n, float m)
{
    v4f a0 = {0}, a1 = {0}, vm = v4f_set1(m);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f t0 = v4f_load(x + i) - vm, t1 = v4f_load(x + i + 4) - vm;
        a0 += t0 * t0;
        a1 += t1 * t1;
    }
    double s = v4f_hsum(a0 + a1);
    for (; i < n; i++)
        s += ((double)x[i] - m) * ((double)x[i] - m);
    return s;
}

/* sum of g * (x - m) */
static inline double vsum_dev_dot(const float *g, const float *x, size_t n, float m)
{
    v4f a0 = {0}, a1 = {0}, vm = v4f_set1(m);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 += v4f_load(g + i) * (v4f_load(x + i) - vm);
        a1 += v4f_load(g + i + 4) * (v4f_load(x + i + 4) - vm);
    }
    double s = v4f_hsum(a0 + a1);
    for (; i < n; i++)
        s += (double)g[i] * ((double)x[i] - m);
    return s;
}

/* y = x * a + b */
static inline void vaffine(float *y, const float *x, size_t n, float a, float b)
{
    v4f va = v4f_set1(a), vb = v4f_set1(b);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        v4f_store(y + i, v4f_load(x + i) * va + vb);
    for (; i < n; i++)
        y[i] = x[i] * a + b;
}

/* y = v */
static inline void vfill(float *y, size_t n, float v)
{
    v4f vv = v4f_set1(v);
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        v4f_store(y + i, vv);
    for (; i < n; i++)
        y[i] = v;
}

/* y += x */
static inline void vadd(float *y, const float *x, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        v4f_store(y + i, v4f_load(y + i) + v4f_load(x + i));
    for (; i < n; i++)
        y[i] += x[i];
}

#endif
