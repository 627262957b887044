/* relu, maxpool2d and max over time: shapes (floor mode), ties and NaN,
 * accumulation, finite-difference gradients away from the kinks, and the
 * PyTorch fixture tests/ref/nn-pool.bin (relu -> max_pool2d with indices, x.max(dim=2)). */
#include "nn-test.h"

static void test_shapes(void)
{
    struct cmr_pool2d_dims a = {1, 1, 23, 12, 4, 4}, b = {1, 1, 5, 3, 5, 3}, c = {1, 1, 3, 3, 4, 1};
    ok(cmr_pool2d_check(&a) == CMR_OK && cmr_pool2d_oh(&a) == 5 && cmr_pool2d_ow(&a) == 3,
       "23x12 pooled by 4 -> 5x3 (floor)");
    ok(cmr_pool2d_check(&b) == CMR_OK && cmr_pool2d_oh(&b) == 1 && cmr_pool2d_ow(&b) == 1,
       "5x3 pooled by (5,3) -> 1x1");
    ok(cmr_pool2d_check(&c) == CMR_EINVAL, "3x3 pooled by (4,1) is refused (empty output)");
    c.KH = 0;
    ok(cmr_pool2d_check(&c) == CMR_EINVAL && cmr_pool2d_check(NULL) == CMR_EINVAL,
       "kernel 0 and NULL are refused");
}

static void test_relu(void)
{
    float x[5] = {-1, 0, 2, NAN, -0.0f}, y[5], dy[5] = {1, 1, 1, 1, 1}, dx[5] = {10, 10, 10, 10, 10};
    cmr_relu_forward(y, x, 5);
    ok(y[0] == 0 && y[1] == 0 && y[2] == 2 && isnan(y[3]) && y[4] == 0, "relu forward (NaN stays NaN)");
    cmr_relu_backward(dx, dy, y, 5);
    ok(dx[0] == 10 && dx[1] == 10 && dx[2] == 11 && dx[3] == 10 && dx[4] == 10,
       "relu backward accumulates, gradient 0 at 0 and where out is 0");
    cmr_relu_forward(x, x, 5);
    ok(x[0] == 0 && x[2] == 2, "relu in place");
}

static void test_ties(void)
{
    /* one 2x2 window of equal values: the first wins; a NaN anywhere wins */
    float x[4] = {1, 1, 1, 1}, y;
    int32_t am;
    struct cmr_pool2d_dims d = {1, 1, 2, 2, 2, 2};
    cmr_maxpool2d_forward(&y, &am, x, &d);
    ok(y == 1 && am == 0, "maxpool tie: first in window wins (index %d)", am);
    x[2] = NAN;
    cmr_maxpool2d_forward(&y, &am, x, &d);
    ok(isnan(y) && am == 2, "maxpool NaN wins (index %d)", am);
    float t[6] = {2, 5, 2, 5, 1, 1}, ty[2];   /* (T=3, F=2) */
    int32_t ta[2];
    cmr_maxtime_forward(ty, ta, t, 1, 1, 3, 2);
    ok(ty[0] == 2 && ta[0] == 0 && ty[1] == 5 && ta[1] == 0, "max over time tie: first step wins");
}

/* values that are all distinct by at least 0.01 and at least 0.05 away from 0,
 * so a 1e-3 perturbation never changes a relu sign or an argmax (ggml grad_expect) */
static void fill_distinct(struct cmr_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.05 + 0.01 * (double)i);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)cmr_rng_below(r, i + 1);
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        if (cmr_rng_uniform(r) < 0.4)
            x[i] = -x[i];
}

/* PyTorch's scan (MaxPoolKernel.cpp): window in row-major order, replace when
 * val > max or val is NaN */
static void maxpool_scan(float *y, int32_t *am, const float *x, int H, int W, int KH, int KW)
{
    for (int oh = 0; oh < H / KH; oh++)
        for (int ow = 0; ow < W / KW; ow++) {
            int32_t best = oh * KH * W + ow * KW;
            float m = -INFINITY;
            for (int i = 0; i < KH; i++)
                for (int j = 0; j < KW; j++) {
                    int32_t k = (oh * KH + i) * W + ow * KW + j;
                    if (x[k] > m || isnan(x[k])) {
                        m = x[k];
                        best = k;
                    }
                }
            y[oh * (W / KW) + ow] = m;
            am[oh * (W / KW) + ow] = best;
        }
}

/* ties and NaNs everywhere: values in {0, 1, 2, NaN}, (2,2) (the vector path
 * and its tail) and (3,2) (the general path) against the scan */
static void test_scan_order(struct cmr_rng *r)
{
    static const int shapes[][4] = {{6, 18, 2, 2}, {7, 9, 2, 2}, {2, 16, 2, 2}, {9, 8, 3, 2}};
    for (int s = 0; s < 4; s++) {
        int H = shapes[s][0], W = shapes[s][1], KH = shapes[s][2], KW = shapes[s][3];
        struct cmr_pool2d_dims d = {1, 3, H, W, KH, KW};
        int n = 3 * H * W, no = 3 * (H / KH) * (W / KW), same = 1;
        float *x = fbuf(n), *y = fbuf(no), *y2 = fbuf(no);
        int32_t *am = ibuf(no), *am2 = ibuf(no);
        for (int i = 0; i < n; i++) {
            double u = cmr_rng_uniform(r);
            x[i] = u < 0.1 ? NAN : (float)cmr_rng_below(r, 3);
        }
        cmr_maxpool2d_forward(y, am, x, &d);
        for (int c = 0; c < 3; c++)
            maxpool_scan(y2 + c * no / 3, am2 + c * no / 3, x + c * H * W, H, W, KH, KW);
        for (int i = 0; i < no; i++)
            same &= am[i] == am2[i] && (y[i] == y2[i] || (isnan(y[i]) && isnan(y2[i])));
        ok(same, "maxpool %dx%d by (%d,%d) with ties and NaNs = PyTorch's scan (first max, last NaN)",
           H, W, KH, KW);
        free(x); free(y); free(y2); free(am); free(am2);
    }
}

struct pool_ctx {
    struct cmr_pool2d_dims d;
    int T, F;   /* max over time on the pooled output: (B,C,OH,OW) -> (B,C,OW) */
    float *x, *a, *y, *z, *R;
    int32_t *am, *am2;
};

/* relu -> maxpool -> max over time, the multi-level head's path */
static double pool_loss(void *p)
{
    struct pool_ctx *c = p;
    size_t n = (size_t)c->d.B * c->d.C * c->d.H * c->d.W;
    cmr_relu_forward(c->a, c->x, n);
    cmr_maxpool2d_forward(c->y, c->am, c->a, &c->d);
    cmr_maxtime_forward(c->z, c->am2, c->y, c->d.B, c->d.C, c->T, c->F);
    return dot_d(c->z, c->R, (size_t)c->d.B * c->d.C * c->F);
}

static void test_gradcheck(struct cmr_rng *r)
{
    struct pool_ctx c = {.d = {2, 3, 9, 7, 2, 3}};
    c.T = cmr_pool2d_oh(&c.d), c.F = cmr_pool2d_ow(&c.d);
    size_t n = (size_t)c.d.B * c.d.C * c.d.H * c.d.W, np = (size_t)c.d.B * c.d.C * c.T * c.F,
           nz = (size_t)c.d.B * c.d.C * c.F;
    c.x = fbuf(n), c.a = fbuf(n), c.y = fbuf(np), c.z = fbuf(nz), c.R = fbuf(nz);
    c.am = ibuf(np), c.am2 = ibuf(nz);
    fill_distinct(r, c.x, n);
    fill_normal(r, c.R, nz, 1);
    pool_loss(&c);
    float *dz = c.R, *dy = fbuf(np), *da = fbuf(n), *dx = fbuf(n);
    cmr_maxtime_backward(dy, dz, c.am2, c.d.B, c.d.C, c.T, c.F);
    cmr_maxpool2d_backward(da, dy, c.am, &c.d);
    cmr_relu_backward(dx, da, c.a, n);
    gradcheck("relu -> maxpool2d (2,3) -> max over time, dinp", pool_loss, &c, c.x, dx, n, NULL);
    /* with every element: the winners are few, so check all of them */
    int nz_grad = 0;
    for (size_t i = 0; i < n; i++)
        nz_grad += dx[i] != 0;
    ok(nz_grad > 0 && nz_grad <= (int)nz, "only winners get a gradient (%d of %zu inputs)", nz_grad, n);
    free(c.x); free(c.a); free(c.y); free(c.z); free(c.R); free(c.am); free(c.am2);
    free(dy); free(da); free(dx);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-pool.bin");
    static const struct { const char *tag; struct cmr_pool2d_dims d; } cases[] = {
        {"a", {1, 2, 23, 12, 4, 4}}, {"b", {2, 3, 5, 3, 5, 3}}, {"c", {1, 2, 9, 7, 2, 2}},
        {"d", {1, 2, 12, 17, 2, 2}}};
    char name[32], label[128];
    for (int k = 0; k < 4; k++) {
        const struct cmr_pool2d_dims *d = &cases[k].d;
        const char *t = cases[k].tag;
        size_t n = (size_t)d->B * d->C * d->H * d->W,
               no = (size_t)d->B * d->C * cmr_pool2d_oh(d) * cmr_pool2d_ow(d);
#define REF(s, cnt) (snprintf(name, sizeof name, "%s.%s", t, s), ref_get(&rf, name, cnt))
        float *x = REF("x", n), *a = fbuf(n), *y = fbuf(no), *idx = fbuf(no), *dx = fbuf(n),
              *da = fbuf(n);
        int32_t *am = ibuf(no);
        cmr_relu_forward(a, x, n);
        snprintf(label, sizeof label, "torch relu (%dx%d)", d->H, d->W);
        check_close(label, a, REF("relu", n), n, 0, 0);
        cmr_maxpool2d_forward(y, am, a, d);
        snprintf(label, sizeof label, "torch max_pool2d %dx%d by (%d,%d) forward", d->H, d->W,
                 d->KH, d->KW);
        check_close(label, y, REF("y", no), no, 0, 0);
        for (size_t i = 0; i < no; i++)
            idx[i] = (float)am[i];
        snprintf(label, sizeof label, "torch max_pool2d %dx%d indices", d->H, d->W);
        check_close(label, idx, REF("idx", no), no, 0, 0);
        cmr_maxpool2d_backward(da, REF("dy", no), am, d);
        cmr_relu_backward(dx, da, a, n);
        snprintf(label, sizeof label, "torch relu -> max_pool2d %dx%d backward dinp", d->H, d->W);
        check_close(label, dx, REF("dx", n), n, 0, 0);
        free(a); free(y); free(idx); free(dx); free(da); free(am);
#undef REF
    }
    const int B = 2, C = 3, T = 7, F = 5;
    size_t n = (size_t)B * C * T * F, no = (size_t)B * C * F;
    float *y = fbuf(no), *idx = fbuf(no), *dx = fbuf(n);
    int32_t *am = ibuf(no);
    cmr_maxtime_forward(y, am, ref_get(&rf, "t.x", n), B, C, T, F);
    check_close("torch x.max(dim=2) values", y, ref_get(&rf, "t.y", no), no, 0, 0);
    for (size_t i = 0; i < no; i++)
        idx[i] = (float)am[i];
    check_close("torch x.max(dim=2) indices", idx, ref_get(&rf, "t.idx", no), no, 0, 0);
    cmr_maxtime_backward(dx, ref_get(&rf, "t.dy", no), am, B, C, T, F);
    check_close("torch x.max(dim=2) backward", dx, ref_get(&rf, "t.dx", n), n, 0, 0);
    free(y); free(idx); free(dx); free(am);
    ref_free(&rf);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 5);
    test_shapes();
    test_relu();
    test_ties();
    test_scan_order(&r);
    test_gradcheck(&r);
    test_torch();
    gc_summary();
    return tap_done();
}
