/* One encoder block as the models compose it (PAPER.md section 4):
 * conv 5x5 pad 2 -> batchnorm2d (train) -> relu (in place) -> maxpool (2,2),
 * forward and backward against PyTorch (tests/ref/nn-block.bin), and a
 * finite-difference check of the input and conv weight gradients through the
 * whole block (elements whose perturbation flips a relu or a pooling winner
 * are skipped: ggml's grad_expect). */
#include "nn-test.h"

struct block {
    struct cmr_conv2d_dims cd;
    struct cmr_pool2d_dims pd;
    float *x, *w, *b, *gamma, *beta, *c, *a, *y, *mean, *rstd, *s, *R;
    int32_t *am;
    /* kink detection: the relu mask and argmax of the unperturbed forward */
    unsigned char *mask0;
    int32_t *am0;
};

static size_t nconv(const struct block *k) { return (size_t)k->cd.B * k->cd.OC * k->cd.H * k->cd.W; }
static size_t npool(const struct block *k)
{
    return (size_t)k->pd.B * k->pd.C * cmr_pool2d_oh(&k->pd) * cmr_pool2d_ow(&k->pd);
}

static void block_forward(struct block *k, float *rm, float *rv)
{
    const struct cmr_conv2d_dims *d = &k->cd;
    cmr_conv2d_forward(k->c, k->s, k->x, k->w, k->b, d);
    cmr_batchnorm2d_forward_train(k->a, k->mean, k->rstd, rm, rv, k->c, k->gamma, k->beta, d->B,
                                  d->OC, d->H * d->W, CMR_BN_MOMENTUM, CMR_BN_EPS);
    cmr_relu_forward(k->a, k->a, nconv(k));
    cmr_maxpool2d_forward(k->y, k->am, k->a, &k->pd);
}

/* dy -> dx, dw, db, dgamma, dbeta (all +=); da and dc are scratch of nconv floats */
static void block_backward(struct block *k, const float *dy, float *dx, float *dw, float *db,
                           float *dgamma, float *dbeta, float *da, float *dc)
{
    const struct cmr_conv2d_dims *d = &k->cd;
    size_t n = nconv(k);
    memset(da, 0, sizeof(float) * n);
    memset(dc, 0, sizeof(float) * n);
    cmr_maxpool2d_backward(da, dy, k->am, &k->pd);
    /* relu backward in place would need a second buffer: dc = da * (a > 0) */
    cmr_relu_backward(dc, da, k->a, n);
    memset(da, 0, sizeof(float) * n);
    cmr_batchnorm2d_backward(da, dgamma, dbeta, dc, k->c, k->gamma, k->mean, k->rstd, d->B, d->OC,
                             d->H * d->W);
    cmr_conv2d_backward(dx, dw, db, k->s, da, k->x, k->w, d);
}

/* sum(out * R) for the block evaluated in double throughout (the float
 * kernels equal it to 1e-5, see test_torch): the finite differences then
 * measure the maths rather than float rounding */
static double block_loss(void *p)
{
    struct block *k = p;
    const struct cmr_conv2d_dims *d = &k->cd;
    const int B = d->B, C = d->C, H = d->H, W = d->W, OC = d->OC, HW = H * W;
    double *c = calloc((size_t)B * OC * HW, sizeof *c);
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    double s = k->b[o];
                    for (int ci = 0; ci < C; ci++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = h + kh - d->PH, iw = w + kw - d->PW;
                                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                    s += (double)k->x[((b * C + ci) * H + ih) * W + iw] *
                                         k->w[((o * C + ci) * d->KH + kh) * d->KW + kw];
                            }
                    c[((b * OC + o) * H + h) * W + w] = s;
                }
    for (int o = 0; o < OC; o++) {
        double m = 0, v = 0, n = (double)B * HW;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++)
                m += c[(b * OC + o) * HW + j];
        m /= n;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++)
                v += (c[(b * OC + o) * HW + j] - m) * (c[(b * OC + o) * HW + j] - m);
        double rs = 1 / sqrt(v / n + CMR_BN_EPS);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++) {
                double *e = &c[(b * OC + o) * HW + j];
                *e = (*e - m) * rs * k->gamma[o] + k->beta[o];
                *e = *e > 0 ? *e : 0;
            }
    }
    const int OH = cmr_pool2d_oh(&k->pd), OW = cmr_pool2d_ow(&k->pd);
    double L = 0;
    for (int bo = 0; bo < B * OC; bo++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double mx = -INFINITY;
                for (int i = 0; i < k->pd.KH; i++)
                    for (int j = 0; j < k->pd.KW; j++) {
                        double e = c[(size_t)bo * HW + (oh * k->pd.KH + i) * W + ow * k->pd.KW + j];
                        mx = e > mx ? e : mx;
                    }
                L += mx * k->R[(bo * OH + oh) * OW + ow];
            }
    free(c);
    return L;
}

static int kink_changed(struct block *k)
{
    size_t n = nconv(k), np = npool(k);
    for (size_t i = 0; i < n; i++)
        if ((k->a[i] > 0) != k->mask0[i])
            return 1;
    for (size_t i = 0; i < np; i++)
        if (k->am[i] != k->am0[i])
            return 1;
    return 0;
}

static int block_skip(void *p, float *x, size_t i)
{
    struct block *k = p;
    float x0 = x[i];
    int flip = 0;
    for (int s = -1; s <= 1 && !flip; s += 2) {
        x[i] = x0 + s * GC_EPS;
        block_forward(k, NULL, NULL);
        flip = kink_changed(k);
    }
    x[i] = x0;
    return flip;
}

static void block_alloc(struct block *k, struct cmr_conv2d_dims cd, int ph, int pw)
{
    k->cd = cd;
    struct cmr_pool2d_dims pd = {cd.B, cd.OC, cd.H, cd.W, ph, pw};
    k->pd = pd;
    size_t ni = (size_t)cd.B * cd.C * cd.H * cd.W, nw = (size_t)cd.OC * cd.C * cd.KH * cd.KW;
    k->x = fbuf(ni), k->w = fbuf(nw), k->b = fbuf(cd.OC), k->gamma = fbuf(cd.OC), k->beta = fbuf(cd.OC);
    k->c = fbuf(nconv(k)), k->a = fbuf(nconv(k)), k->y = fbuf(npool(k)), k->R = fbuf(npool(k));
    k->mean = fbuf(cd.OC), k->rstd = fbuf(cd.OC), k->s = fbuf(cmr_conv2d_scratch_floats(&cd));
    k->am = ibuf(npool(k)), k->am0 = ibuf(npool(k));
    k->mask0 = xmalloc_or_die(nconv(k), __LINE__);
}

static void block_free(struct block *k)
{
    free(k->x); free(k->w); free(k->b); free(k->gamma); free(k->beta); free(k->c); free(k->a);
    free(k->y); free(k->R); free(k->mean); free(k->rstd); free(k->s); free(k->am); free(k->am0);
    free(k->mask0);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-block.bin");
    struct block k;
    struct cmr_conv2d_dims cd = {2, 2, 12, 8, 3, 5, 5, 2, 2};
    block_alloc(&k, cd, 2, 2);
    size_t ni = 2 * 2 * 12 * 8, nw = 3 * 2 * 25, np = npool(&k), n = nconv(&k);
    memcpy(k.x, ref_get(&rf, "x", ni), sizeof(float) * ni);
    memcpy(k.w, ref_get(&rf, "w", nw), sizeof(float) * nw);
    memcpy(k.b, ref_get(&rf, "b", 3), sizeof(float) * 3);
    for (int c = 0; c < 3; c++)
        k.gamma[c] = 1, k.beta[c] = 0;   /* PyTorch's BatchNorm2d init */
    float rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1};
    block_forward(&k, rm, rv);
    check_close("torch block forward (conv, bn, relu, maxpool)", k.y, ref_get(&rf, "y", np), np,
                1e-5, 1e-5);
    check_close("torch block running_mean", rm, ref_get(&rf, "rm", 3), 3, 1e-6, 1e-5);
    check_close("torch block running_var", rv, ref_get(&rf, "rv", 3), 3, 1e-6, 1e-5);
    float *dx = fbuf(ni), *dw = fbuf(nw), db[3] = {0}, dg[3] = {0}, dbe[3] = {0};
    float *da = fbuf(n), *dc = fbuf(n);
    block_backward(&k, ref_get(&rf, "dy", np), dx, dw, db, dg, dbe, da, dc);
    check_close("torch block backward dinp", dx, ref_get(&rf, "dx", ni), ni, 1e-5, 1e-4);
    check_close("torch block backward dweight", dw, ref_get(&rf, "dw", nw), nw, 1e-5, 1e-4);
    /* the conv bias feeds batch norm, which removes it: its true gradient is 0 */
    check_close("torch block backward dbias (0 up to rounding)", db, ref_get(&rf, "db", 3), 3, 1e-5, 0);
    check_close("torch block backward dgamma", dg, ref_get(&rf, "dgamma", 3), 3, 1e-5, 1e-4);
    check_close("torch block backward dbeta", dbe, ref_get(&rf, "dbeta", 3), 3, 1e-5, 1e-4);
    free(dx); free(dw); free(da); free(dc);
    block_free(&k);
    ref_free(&rf);
}

static void test_gradcheck(struct cmr_rng *r)
{
    struct block k;
    struct cmr_conv2d_dims cd = {2, 2, 8, 6, 3, 5, 5, 2, 2};
    block_alloc(&k, cd, 2, 3);
    size_t ni = (size_t)2 * 2 * 8 * 6, nw = (size_t)3 * 2 * 25, n = nconv(&k);
    fill_normal(r, k.x, ni, 1);
    fill_normal(r, k.w, nw, 0.3);
    fill_normal(r, k.b, 3, 1);
    fill_uniform(r, k.gamma, 3, 0.5, 1.5);
    fill_normal(r, k.beta, 3, 0.5);
    fill_normal(r, k.R, npool(&k), 1);
    block_forward(&k, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        k.mask0[i] = k.a[i] > 0;
    memcpy(k.am0, k.am, sizeof(int32_t) * npool(&k));
    float *dx = fbuf(ni), *dw = fbuf(nw), db[3] = {0}, dg[3] = {0}, dbe[3] = {0};
    float *da = fbuf(n), *dc = fbuf(n);
    block_backward(&k, k.R, dx, dw, db, dg, dbe, da, dc);
    gradcheck("block (conv, bn, relu, pool) dinp", block_loss, &k, k.x, dx, ni, block_skip);
    gradcheck("block dweight (through bn, relu, pool)", block_loss, &k, k.w, dw, nw, block_skip);
    gradcheck("block dgamma", block_loss, &k, k.gamma, dg, 3, block_skip);
    gradcheck("block dbeta", block_loss, &k, k.beta, dbe, 3, block_skip);
    free(dx); free(dw); free(da); free(dc);
    block_free(&k);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 17);
    test_torch();
    test_gradcheck(&r);
    gc_summary();
    return tap_done();
}
