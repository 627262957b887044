/* batchnorm2d: fast against naive (train forward, running statistics,
 * backward accumulation), finite-difference gradients of the training path,
 * the eval path, and the PyTorch fixture tests/ref/nn-batchnorm.bin. */
#include "nn-test.h"

static void test_against_naive(struct cmr_rng *r, int B, int C, int HW)
{
    char pre[64], label[160];
    size_t n = (size_t)B * C * HW;
    float *x = fbuf(n), *g = fbuf(C), *be = fbuf(C), *dy = fbuf(n);
    float *y1 = fbuf(n), *y2 = fbuf(n), *m1 = fbuf(C), *m2 = fbuf(C), *s1 = fbuf(C), *s2 = fbuf(C);
    float *rm1 = fbuf(C), *rv1 = fbuf(C), *dx1 = fbuf(n), *dg1 = fbuf(C), *db1 = fbuf(C);
    fill_normal(r, x, n, 3);
    for (size_t i = 0; i < n; i++)
        x[i] += 5.0f;   /* a large mean: the two-pass variance must not cancel */
    fill_uniform(r, g, C, 0.5, 1.5);
    fill_normal(r, be, C, 1);
    fill_normal(r, dy, n, 1);
    fill_normal(r, rm1, C, 1);
    fill_uniform(r, rv1, C, 0.5, 2);
    fill_normal(r, dx1, n, 1);
    fill_normal(r, dg1, C, 1);
    fill_normal(r, db1, C, 1);
    float *rm2 = fdup(rm1, C), *rv2 = fdup(rv1, C), *dx2 = fdup(dx1, n), *dg2 = fdup(dg1, C),
          *db2 = fdup(db1, C);
    snprintf(pre, sizeof pre, "batchnorm B%d C%d HW%d", B, C, HW);
    cmr_batchnorm2d_forward_train(y1, m1, s1, rm1, rv1, x, g, be, B, C, HW, CMR_BN_MOMENTUM,
                                  CMR_BN_EPS);
    cmr_batchnorm2d_forward_train_naive(y2, m2, s2, rm2, rv2, x, g, be, B, C, HW, CMR_BN_MOMENTUM,
                                        CMR_BN_EPS);
    snprintf(label, sizeof label, "%s train forward = naive", pre);
    check_close(label, y1, y2, n, 1e-5, 1e-5);
    snprintf(label, sizeof label, "%s mean, rstd, running stats = naive", pre);
    int same = 1;
    for (int c = 0; c < C; c++)
        same &= fabsf(m1[c] - m2[c]) <= 1e-6f * (1 + fabsf(m2[c])) &&
                fabsf(s1[c] - s2[c]) <= 1e-6f * s2[c] && fabsf(rm1[c] - rm2[c]) <= 1e-6f &&
                fabsf(rv1[c] - rv2[c]) <= 1e-5f * rv2[c];
    ok(same, "%s (rel 1e-6, running var 1e-5)", label);
    cmr_batchnorm2d_backward(dx1, dg1, db1, dy, x, g, m1, s1, B, C, HW);
    cmr_batchnorm2d_backward_naive(dx2, dg2, db2, dy, x, g, m1, s1, B, C, HW);
    snprintf(label, sizeof label, "%s backward dinp += naive", pre);
    check_close(label, dx1, dx2, n, 1e-4, 1e-4);
    snprintf(label, sizeof label, "%s backward dgamma += naive", pre);
    check_close(label, dg1, dg2, C, 1e-4, 1e-4);
    snprintf(label, sizeof label, "%s backward dbeta += naive", pre);
    check_close(label, db1, db2, C, 1e-4, 1e-4);
    free(x); free(g); free(be); free(dy); free(y1); free(y2); free(m1); free(m2); free(s1);
    free(s2); free(rm1); free(rv1); free(dx1); free(dg1); free(db1); free(rm2); free(rv2);
    free(dx2); free(dg2); free(db2);
}

struct bn_ctx {
    int B, C, HW;
    float *x, *g, *be, *y, *R, *m, *s;
};

/* sum(out * R) with the normalisation in double (see test-nn-conv2d.c's conv_loss) */
static double bn_loss(void *p)
{
    struct bn_ctx *c = p;
    double L = 0, n = (double)c->B * c->HW;
    for (int ch = 0; ch < c->C; ch++) {
        double m = 0, v = 0;
        for (int b = 0; b < c->B; b++)
            for (int j = 0; j < c->HW; j++)
                m += c->x[(b * c->C + ch) * c->HW + j];
        m /= n;
        for (int b = 0; b < c->B; b++)
            for (int j = 0; j < c->HW; j++) {
                double t = c->x[(b * c->C + ch) * c->HW + j] - m;
                v += t * t;
            }
        double rs = 1 / sqrt(v / n + CMR_BN_EPS);
        for (int b = 0; b < c->B; b++)
            for (int j = 0; j < c->HW; j++) {
                int i = (b * c->C + ch) * c->HW + j;
                L += ((c->x[i] - m) * rs * c->g[ch] + c->be[ch]) * c->R[i];
            }
    }
    return L;
}

static void test_gradcheck(struct cmr_rng *r)
{
    struct bn_ctx c = {.B = 2, .C = 3, .HW = 10};
    size_t n = (size_t)c.B * c.C * c.HW;
    c.x = fbuf(n), c.g = fbuf(c.C), c.be = fbuf(c.C), c.y = fbuf(n), c.R = fbuf(n);
    c.m = fbuf(c.C), c.s = fbuf(c.C);
    fill_normal(r, c.x, n, 1);
    fill_uniform(r, c.g, c.C, 0.5, 1.5);
    fill_normal(r, c.be, c.C, 1);
    fill_normal(r, c.R, n, 1);
    float *dx = fbuf(n), *dg = fbuf(c.C), *db = fbuf(c.C);
    cmr_batchnorm2d_forward_train(c.y, c.m, c.s, NULL, NULL, c.x, c.g, c.be, c.B, c.C, c.HW,
                                  CMR_BN_MOMENTUM, CMR_BN_EPS);
    cmr_batchnorm2d_backward(dx, dg, db, c.R, c.x, c.g, c.m, c.s, c.B, c.C, c.HW);
    gradcheck("batchnorm2d (train) dinp", bn_loss, &c, c.x, dx, n, NULL);
    gradcheck("batchnorm2d (train) dgamma", bn_loss, &c, c.g, dg, c.C, NULL);
    gradcheck("batchnorm2d (train) dbeta", bn_loss, &c, c.be, db, c.C, NULL);
    free(c.x); free(c.g); free(c.be); free(c.y); free(c.R); free(c.m); free(c.s);
    free(dx); free(dg); free(db);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-batchnorm.bin");
    const int B = 3, C = 4, HW = 15;
    const size_t n = (size_t)B * C * HW;
    float *x = ref_get(&rf, "x", n), *g = ref_get(&rf, "gamma", C), *be = ref_get(&rf, "beta", C);
    float *rm = fdup(ref_get(&rf, "rm0", C), C), *rv = fdup(ref_get(&rf, "rv0", C), C);
    float *y = fbuf(n), *m = fbuf(C), *s = fbuf(C), *dx = fbuf(n), *dg = fbuf(C), *db = fbuf(C);
    cmr_batchnorm2d_forward_train(y, m, s, rm, rv, x, g, be, B, C, HW, CMR_BN_MOMENTUM, CMR_BN_EPS);
    check_close("torch BatchNorm2d train forward", y, ref_get(&rf, "y", n), n, 1e-5, 1e-5);
    check_close("torch BatchNorm2d running_mean (momentum 0.1)", rm, ref_get(&rf, "rm1", C), C,
                1e-6, 1e-6);
    check_close("torch BatchNorm2d running_var (momentum 0.1, unbiased)", rv,
                ref_get(&rf, "rv1", C), C, 1e-6, 1e-6);
    cmr_batchnorm2d_backward(dx, dg, db, ref_get(&rf, "dy", n), x, g, m, s, B, C, HW);
    check_close("torch BatchNorm2d backward dinp", dx, ref_get(&rf, "dx", n), n, 1e-5, 1e-5);
    check_close("torch BatchNorm2d backward dgamma", dg, ref_get(&rf, "dgamma", C), C, 1e-5, 1e-5);
    check_close("torch BatchNorm2d backward dbeta", db, ref_get(&rf, "dbeta", C), C, 1e-5, 1e-5);
    cmr_batchnorm2d_forward_eval(y, x, g, be, rm, rv, B, C, HW, CMR_BN_EPS);
    check_close("torch BatchNorm2d eval forward (updated running stats)", y,
                ref_get(&rf, "y_eval", n), n, 1e-5, 1e-5);
    memcpy(dx, x, sizeof(float) * n);
    cmr_batchnorm2d_forward_eval(dx, dx, g, be, rm, rv, B, C, HW, CMR_BN_EPS);
    check_close("batchnorm eval in place (out aliases inp)", dx, y, n, 0, 0);
    free(rm); free(rv); free(y); free(m); free(s); free(dx); free(dg); free(db);
    ref_free(&rf);
}

/* N = B*HW = 1: PyTorch refuses to train; cmr normalises to beta and keeps the
 * running variance finite (var 0) */
static void test_single_value(void)
{
    float x = 3, g = 2, be = 0.5f, y, m, s, rm = 0, rv = 1;
    cmr_batchnorm2d_forward_train(&y, &m, &s, &rm, &rv, &x, &g, &be, 1, 1, 1, 0.1f, 1e-5f);
    ok(y == 0.5f && m == 3 && fabsf(rm - 0.3f) < 1e-7f && fabsf(rv - 0.9f) < 1e-7f,
       "N = 1: out = beta, running_mean 0.3, running_var 0.9 (got %g %g %g)", y, rm, rv);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 7);
    test_against_naive(&r, 1, 1, 2);
    test_against_naive(&r, 3, 5, 7);
    test_against_naive(&r, 16, 4, 15);
    test_against_naive(&r, 2, 3, 1131);
    test_gradcheck(&r);
    test_torch();
    test_single_value();
    gc_summary();
    return tap_done();
}
