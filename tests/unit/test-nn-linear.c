/* linear: fast against naive (with and without bias, batch 1), accumulation,
 * finite-difference gradients, and the PyTorch fixture tests/ref/nn-linear.bin. */
#include "nn-test.h"

static void test_against_naive(struct cmr_rng *r, int N, int IN, int OUT, int with_bias)
{
    char pre[64], label[128];
    size_t nx = (size_t)N * IN, ny = (size_t)N * OUT, nw = (size_t)OUT * IN;
    float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(OUT), *dy = fbuf(ny), *y1 = fbuf(ny), *y2 = fbuf(ny);
    float *dx1 = fbuf(nx), *dw1 = fbuf(nw), *db1 = fbuf(OUT);
    fill_normal(r, x, nx, 1);
    fill_normal(r, w, nw, 0.3);
    fill_normal(r, b, OUT, 1);
    fill_normal(r, dy, ny, 1);
    fill_normal(r, dx1, nx, 1);
    fill_normal(r, dw1, nw, 1);
    fill_normal(r, db1, OUT, 1);
    float *dx2 = fdup(dx1, nx), *dw2 = fdup(dw1, nw), *db2 = fdup(db1, OUT);
    snprintf(pre, sizeof pre, "linear N%d %d->%d%s", N, IN, OUT, with_bias ? "" : " (no bias)");
    cmr_linear_forward(y1, x, w, with_bias ? b : NULL, N, IN, OUT);
    cmr_linear_forward_naive(y2, x, w, with_bias ? b : NULL, N, IN, OUT);
    /* float GEMM against double sums: error grows like sqrt(IN) */
    double atol = 2e-6 * sqrt(IN > OUT ? IN : OUT) + 1e-6;
    snprintf(label, sizeof label, "%s forward = naive", pre);
    check_close(label, y1, y2, ny, atol, 1e-5);
    cmr_linear_backward(dx1, dw1, with_bias ? db1 : NULL, dy, x, w, N, IN, OUT);
    cmr_linear_backward_naive(dx2, dw2, with_bias ? db2 : NULL, dy, x, w, N, IN, OUT);
    snprintf(label, sizeof label, "%s backward dinp += naive", pre);
    check_close(label, dx1, dx2, nx, atol, 1e-5);
    snprintf(label, sizeof label, "%s backward dweight += naive", pre);
    check_close(label, dw1, dw2, nw, atol, 1e-5);
    snprintf(label, sizeof label, "%s backward dbias += naive", pre);
    check_close(label, db1, db2, OUT, atol, 1e-5);
    free(x); free(w); free(b); free(dy); free(y1); free(y2); free(dx1); free(dw1); free(db1);
    free(dx2); free(dw2); free(db2);
}

struct lin_ctx {
    int N, IN, OUT;
    float *x, *w, *b, *y, *R;
};

/* sum(out * R) in double (see test-nn-conv2d.c's conv_loss) */
static double lin_loss(void *p)
{
    struct lin_ctx *c = p;
    double L = 0;
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->OUT; o++) {
            double s = c->b[o];
            for (int i = 0; i < c->IN; i++)
                s += (double)c->x[n * c->IN + i] * c->w[o * c->IN + i];
            L += s * c->R[n * c->OUT + o];
        }
    return L;
}

static void test_gradcheck(struct cmr_rng *r)
{
    struct lin_ctx c = {.N = 3, .IN = 7, .OUT = 4};
    size_t nx = (size_t)c.N * c.IN, ny = (size_t)c.N * c.OUT, nw = (size_t)c.OUT * c.IN;
    c.x = fbuf(nx), c.w = fbuf(nw), c.b = fbuf(c.OUT), c.y = fbuf(ny), c.R = fbuf(ny);
    fill_normal(r, c.x, nx, 1);
    fill_normal(r, c.w, nw, 0.5);
    fill_normal(r, c.b, c.OUT, 1);
    fill_normal(r, c.R, ny, 1);
    float *dx = fbuf(nx), *dw = fbuf(nw), *db = fbuf(c.OUT);
    cmr_linear_backward(dx, dw, db, c.R, c.x, c.w, c.N, c.IN, c.OUT);
    gradcheck("linear dinp", lin_loss, &c, c.x, dx, nx, NULL);
    gradcheck("linear dweight", lin_loss, &c, c.w, dw, nw, NULL);
    gradcheck("linear dbias", lin_loss, &c, c.b, db, c.OUT, NULL);
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.R); free(dx); free(dw); free(db);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-linear.bin");
    const int N = 5, IN = 7, OUT = 3;
    float *x = ref_get(&rf, "x", N * IN), *w = ref_get(&rf, "w", OUT * IN), *b = ref_get(&rf, "b", OUT);
    float y[5 * 3], dx[5 * 7] = {0}, dw[3 * 7] = {0}, db[3] = {0};
    cmr_linear_forward(y, x, w, b, N, IN, OUT);
    check_close("torch Linear(7,3) forward", y, ref_get(&rf, "y", N * OUT), N * OUT, 1e-6, 1e-5);
    cmr_linear_backward(dx, dw, db, ref_get(&rf, "dy", N * OUT), x, w, N, IN, OUT);
    check_close("torch Linear backward dinp", dx, ref_get(&rf, "dx", N * IN), N * IN, 1e-6, 1e-5);
    check_close("torch Linear backward dweight", dw, ref_get(&rf, "dw", OUT * IN), OUT * IN, 1e-6, 1e-5);
    check_close("torch Linear backward dbias", db, ref_get(&rf, "db", OUT), OUT, 1e-6, 1e-5);
    ref_free(&rf);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 3);
    test_against_naive(&r, 1, 1, 1, 1);
    test_against_naive(&r, 1, 512, 128, 1);
    test_against_naive(&r, 16, 6144, 128, 1);
    test_against_naive(&r, 7, 13, 5, 0);
    test_gradcheck(&r);
    test_torch();
    gc_summary();
    return tap_done();
}
