/* conv2d: bad dims, fast against naive on many shapes (both schedules, tiles
 * crossing rows, batch 1, odd kernels and paddings), accumulation (+=),
 * finite-difference gradients, and the PyTorch fixture tests/ref/nn-conv2d.bin. */
#include "nn-test.h"

static size_t in_n(const struct cmr_conv2d_dims *d) { return (size_t)d->B * d->C * d->H * d->W; }
static size_t out_n(const struct cmr_conv2d_dims *d)
{
    return (size_t)d->B * d->OC * cmr_conv2d_oh(d) * cmr_conv2d_ow(d);
}
static size_t w_n(const struct cmr_conv2d_dims *d) { return (size_t)d->OC * d->C * d->KH * d->KW; }

static void test_check(void)
{
    struct cmr_conv2d_dims ok_ = {2, 3, 5, 5, 4, 5, 5, 2, 2};
    ok(cmr_conv2d_check(&ok_) == CMR_OK, "check accepts 5x5 padding 2");
    struct cmr_conv2d_dims d = ok_;
    d.B = 0;
    ok(cmr_conv2d_check(&d) == CMR_EINVAL, "check refuses B = 0");
    d = ok_;
    d.PH = 5;
    ok(cmr_conv2d_check(&d) == CMR_EINVAL, "check refuses padding >= kernel");
    d = ok_;
    d.H = 2;
    d.PH = 0;
    ok(cmr_conv2d_check(&d) == CMR_EINVAL, "check refuses an empty output (H 2, kernel 5, pad 0)");
    ok(cmr_conv2d_check(NULL) == CMR_EINVAL, "check refuses NULL");
    ok(cmr_conv2d_oh(&ok_) == 5 && cmr_conv2d_ow(&ok_) == 5, "5x5 padding 2 keeps the size");
}

/* fast and naive from the same random state: forward equal, backward adds
 * the same amounts to the same random starting gradients */
static const char *algo_name[3] = {"auto", "im2col", "winograd"};

static void test_against_naive(struct cmr_rng *r, struct cmr_conv2d_dims d, int with_bias,
                               int with_dinp, int algo)
{
    char pre[96], label[160];
    size_t ni = in_n(&d), no = out_n(&d), nw = w_n(&d);
    float *x = fbuf(ni), *w = fbuf(nw), *b = fbuf(d.OC), *s = fbuf(cmr_conv2d_scratch_floats(&d));
    float *y1 = fbuf(no), *y2 = fbuf(no), *dy = fbuf(no);
    float *dx1 = fbuf(ni), *dw1 = fbuf(nw), *db1 = fbuf(d.OC);
    fill_normal(r, x, ni, 1);
    fill_normal(r, w, nw, 0.2);
    fill_normal(r, b, d.OC, 1);
    fill_normal(r, dy, no, 1);
    fill_normal(r, dx1, ni, 1);
    fill_normal(r, dw1, nw, 1);
    fill_normal(r, db1, d.OC, 1);
    float *dx2 = fdup(dx1, ni), *dw2 = fdup(dw1, nw), *db2 = fdup(db1, d.OC);
    for (size_t i = 0; i < no; i++)
        y1[i] = NAN;   /* forward must overwrite */

    int rc = cmr_conv2d_forward_algo(y1, s, x, w, with_bias ? b : NULL, &d, algo);
    cmr_conv2d_forward_naive(y2, x, w, with_bias ? b : NULL, &d);
    snprintf(pre, sizeof pre, "conv %s B%d C%d %dx%d OC%d k%dx%d p%d,%d%s", algo_name[algo], d.B,
             d.C, d.H, d.W, d.OC, d.KH, d.KW, d.PH, d.PW, with_bias ? "" : " (no bias)");
    /* Winograd's transforms round more: ~1e-6 of the output scale instead of 1e-7 */
    double atol = algo == CMR_CONV2D_WINOGRAD ? 2e-5 * maxabs(y2, no) + 1e-6 : 1e-4;
    snprintf(label, sizeof label, "%s forward = naive", pre);
    ok(rc == CMR_OK, "%s forward returns CMR_OK", pre);
    check_close(label, y1, y2, no, atol, 1e-4);

    rc = cmr_conv2d_backward_algo(with_dinp ? dx1 : NULL, dw1, with_bias ? db1 : NULL, s, dy, x, w,
                                  &d, algo);
    ok(rc == CMR_OK, "%s backward returns CMR_OK", pre);
    cmr_conv2d_backward_naive(with_dinp ? dx2 : NULL, dw2, with_bias ? db2 : NULL, dy, x, w, &d);
    snprintf(label, sizeof label, "%s backward dinp += naive%s", pre,
             with_dinp ? "" : " (NULL: untouched)");
    double atol_dx = algo == CMR_CONV2D_WINOGRAD ? 2e-5 * maxabs(dx2, ni) + 1e-6 : 1e-4;
    double atol_dw = algo == CMR_CONV2D_WINOGRAD ? 2e-5 * maxabs(dw2, nw) + 1e-6 : 2e-4;
    check_close(label, dx1, dx2, ni, atol_dx, 1e-4);
    snprintf(label, sizeof label, "%s backward dweight += naive", pre);
    check_close(label, dw1, dw2, nw, atol_dw, 1e-4);
    snprintf(label, sizeof label, "%s backward dbias += naive%s", pre,
             with_bias ? "" : " (NULL: untouched)");
    check_close(label, db1, db2, d.OC, 2e-4, 1e-4);
    free(x); free(w); free(b); free(s); free(y1); free(y2); free(dy);
    free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2);
}

/* a paper-width layer (block 3, 256 -> 256 on 47x24, batch 2): Winograd, as
 * cmr_conv2d_forward picks it, against im2col; too big for the naive loops */
static void test_paper_width(struct cmr_rng *r)
{
    struct cmr_conv2d_dims d = {2, 256, 47, 24, 256, 5, 5, 2, 2};
    size_t ni = in_n(&d), no = out_n(&d), nw = w_n(&d);
    float *x = fbuf(ni), *w = fbuf(nw), *b = fbuf(d.OC), *s = fbuf(cmr_conv2d_scratch_floats(&d));
    float *y1 = fbuf(no), *y2 = fbuf(no), *dy = fbuf(no);
    float *dx1 = fbuf(ni), *dx2 = fbuf(ni), *dw1 = fbuf(nw), *dw2 = fbuf(nw);
    fill_normal(r, x, ni, 1);
    fill_uniform(r, w, nw, -0.0125, 0.0125);   /* kaiming-uniform bound 1/sqrt(C*25) */
    fill_normal(r, b, d.OC, 0.01);
    fill_normal(r, dy, no, 1);
    ok(cmr_conv2d_algo(&d) == CMR_CONV2D_WINOGRAD, "block 3 at batch 2 uses Winograd");
    cmr_conv2d_forward(y1, s, x, w, b, &d);
    cmr_conv2d_forward_algo(y2, s, x, w, b, &d, CMR_CONV2D_IM2COL);
    /* F(4x4,5x5) over 256 channels: ~1e-5 of the largest value per element,
     * ~2e-5 normwise */
    check_close("block 3 (256->256, 47x24) Winograd forward = im2col (atol 5e-5 of the largest)",
                y1, y2, no, 5e-5 * maxabs(y2, no), 0);
    check_normwise("block 3 Winograd forward, normwise", y1, y2, no, 1e-4);
    cmr_conv2d_backward(dx1, dw1, NULL, s, dy, x, w, &d);
    cmr_conv2d_backward_algo(dx2, dw2, NULL, s, dy, x, w, &d, CMR_CONV2D_IM2COL);
    check_close("block 3 Winograd backward dinp = im2col (atol 5e-5 of the largest)", dx1, dx2, ni,
                5e-5 * maxabs(dx2, ni), 0);
    check_normwise("block 3 Winograd backward dinp, normwise", dx1, dx2, ni, 1e-4);
    check_close("block 3 Winograd backward dweight = im2col (atol 5e-5 of the largest)", dw1, dw2,
                nw, 5e-5 * maxabs(dw2, nw), 0);
    check_normwise("block 3 Winograd backward dweight, normwise", dw1, dw2, nw, 1e-4);
    free(x); free(w); free(b); free(s); free(y1); free(y2); free(dy);
    free(dx1); free(dx2); free(dw1); free(dw2);
}

struct conv_ctx {
    struct cmr_conv2d_dims d;
    float *x, *w, *b, *y, *R, *s;
};

/* sum(out * R) with the convolution summed in double (finite differences of
 * the float forward would mostly measure its rounding; the float forward equals
 * this to 1e-5, checked above) */
static double conv_loss(void *p)
{
    struct conv_ctx *c = p;
    const struct cmr_conv2d_dims *d = &c->d;
    const int OH = cmr_conv2d_oh(d), OW = cmr_conv2d_ow(d);
    double L = 0;
    for (int b = 0; b < d->B; b++)
        for (int o = 0; o < d->OC; o++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = c->b[o];
                    for (int ci = 0; ci < d->C; ci++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = oh + kh - d->PH, iw = ow + kw - d->PW;
                                if (ih >= 0 && ih < d->H && iw >= 0 && iw < d->W)
                                    s += (double)c->x[((b * d->C + ci) * d->H + ih) * d->W + iw] *
                                         c->w[((o * d->C + ci) * d->KH + kh) * d->KW + kw];
                            }
                    L += s * c->R[((b * d->OC + o) * OH + oh) * OW + ow];
                }
    return L;
}

static void test_gradcheck(struct cmr_rng *r, int algo)
{
    struct conv_ctx c = {.d = {2, 3, 6, 5, 2, 5, 5, 2, 2}};
    char label[64];
    size_t ni = in_n(&c.d), no = out_n(&c.d), nw = w_n(&c.d);
    c.x = fbuf(ni), c.w = fbuf(nw), c.b = fbuf(c.d.OC), c.y = fbuf(no), c.R = fbuf(no);
    c.s = fbuf(cmr_conv2d_scratch_floats(&c.d));
    fill_normal(r, c.x, ni, 1);
    fill_normal(r, c.w, nw, 0.3);
    fill_normal(r, c.b, c.d.OC, 1);
    fill_normal(r, c.R, no, 1);
    float *dx = fbuf(ni), *dw = fbuf(nw), *db = fbuf(c.d.OC);
    cmr_conv2d_backward_algo(dx, dw, db, c.s, c.R, c.x, c.w, &c.d, algo);
    snprintf(label, sizeof label, "conv2d (%s) dinp", algo_name[algo]);
    gradcheck(label, conv_loss, &c, c.x, dx, ni, NULL);
    snprintf(label, sizeof label, "conv2d (%s) dweight", algo_name[algo]);
    gradcheck(label, conv_loss, &c, c.w, dw, nw, NULL);
    snprintf(label, sizeof label, "conv2d (%s) dbias", algo_name[algo]);
    gradcheck(label, conv_loss, &c, c.b, db, c.d.OC, NULL);
    free(c.x); free(c.w); free(c.b); free(c.y); free(c.R); free(c.s); free(dx); free(dw); free(db);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-conv2d.bin");
    struct cmr_conv2d_dims d = {2, 3, 7, 6, 4, 5, 5, 2, 2};
    size_t ni = in_n(&d), no = out_n(&d), nw = w_n(&d);
    float *x = ref_get(&rf, "x", ni), *w = ref_get(&rf, "w", nw), *b = ref_get(&rf, "b", d.OC);
    float *y = fbuf(no), *s = fbuf(cmr_conv2d_scratch_floats(&d));
    float *dx = fbuf(ni), *dw = fbuf(nw), *db = fbuf(d.OC);
    cmr_conv2d_forward(y, s, x, w, b, &d);
    check_close("torch Conv2d(3,4,5,padding=2) forward", y, ref_get(&rf, "y", no), no, 1e-5, 1e-5);
    cmr_conv2d_backward(dx, dw, db, s, ref_get(&rf, "dy", no), x, w, &d);
    check_close("torch Conv2d backward dinp", dx, ref_get(&rf, "dx", ni), ni, 1e-5, 1e-5);
    check_close("torch Conv2d backward dweight", dw, ref_get(&rf, "dw", nw), nw, 1e-5, 1e-5);
    check_close("torch Conv2d backward dbias", db, ref_get(&rf, "db", d.OC), d.OC, 1e-5, 1e-5);
    free(y); free(s); free(dx); free(dw); free(db);
    ref_free(&rf);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 2024);
    test_check();
    static const struct cmr_conv2d_dims shapes[] = {
        {1, 1, 1, 1, 1, 1, 1, 0, 0},        /* 1x1 everything */
        {1, 1, 9, 7, 3, 5, 5, 2, 2},        /* batch 1, C = 1 (the first block) */
        {2, 3, 7, 6, 4, 5, 5, 2, 2},        /* the fixture's shape */
        {3, 2, 5, 3, 5, 5, 5, 2, 2},        /* a 5x3 map, smaller than the kernel */
        {5, 4, 4, 3, 3, 3, 3, 1, 1},        /* small maps: images grouped, 5 not a multiple */
        {2, 3, 8, 9, 2, 3, 5, 0, 4},        /* rectangular kernel, asymmetric padding */
        {1, 2, 6, 6, 3, 4, 2, 3, 1},        /* even kernel */
        {2, 2, 37, 41, 3, 5, 5, 2, 2},      /* large map: tiles of 1024 cross rows */
        {1, 3, 23, 45, 2, 5, 5, 2, 2},      /* 1035 positions: a 11-column last tile */
        {3, 5, 23, 12, 4, 5, 5, 2, 2},      /* block 4's map, small channels */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        test_against_naive(&r, shapes[i], i % 3 != 1, i % 4 != 3, CMR_CONV2D_IM2COL);
    /* Winograd F(4x4,5x5): maps not a multiple of 4 and smaller than a tile,
     * channels not a multiple of 4, batch 1, 300 tiles (two chunks, the second
     * not a multiple of 4) */
    static const struct cmr_conv2d_dims wshapes[] = {
        {1, 1, 1, 1, 1, 5, 5, 2, 2},
        {2, 3, 7, 6, 4, 5, 5, 2, 2},
        {1, 5, 4, 4, 7, 5, 5, 2, 2},
        {3, 2, 5, 3, 5, 5, 5, 2, 2},
        {2, 17, 13, 10, 18, 5, 5, 2, 2},
        {3, 5, 40, 37, 6, 5, 5, 2, 2},
        {16, 16, 9, 12, 16, 5, 5, 2, 2},
    };
    for (size_t i = 0; i < sizeof wshapes / sizeof wshapes[0]; i++)
        test_against_naive(&r, wshapes[i], i % 3 != 1, i % 4 != 3, CMR_CONV2D_WINOGRAD);
    struct cmr_conv2d_dims k3 = {1, 2, 6, 6, 2, 3, 3, 1, 1};
    float z[72] = {0}, zs[4096];
    ok(cmr_conv2d_forward_algo(z, zs, z, z, NULL, &k3, CMR_CONV2D_WINOGRAD) == CMR_EINVAL &&
       cmr_conv2d_backward_algo(z, z, NULL, zs, z, z, z, &k3, CMR_CONV2D_WINOGRAD) == CMR_EINVAL &&
       cmr_conv2d_forward_algo(z, zs, z, z, NULL, &k3, 7) == CMR_EINVAL,
       "Winograd on a 3x3 kernel and an unknown algorithm are refused");
    struct cmr_conv2d_dims b2 = {16, 128, 94, 48, 256, 5, 5, 2, 2}, b5 = {16, 512, 5, 3, 512, 5, 5, 2, 2},
                           b1 = {16, 1, 188, 96, 128, 5, 5, 2, 2}, b4 = {1, 256, 23, 12, 512, 5, 5, 2, 2};
    struct cmr_conv2d_dims b4x16 = b4;
    b4x16.B = 16;
    ok(cmr_conv2d_algo(&b2) == CMR_CONV2D_WINOGRAD && cmr_conv2d_algo(&b5) == CMR_CONV2D_IM2COL &&
       cmr_conv2d_algo(&b1) == CMR_CONV2D_IM2COL && cmr_conv2d_algo_backward(&b4) == CMR_CONV2D_IM2COL,
       "auto: Winograd for block 2 at batch 16; im2col for blocks 1 and 5, and block 4's backward at batch 1");
    ok(cmr_conv2d_algo(&b4) == cmr_conv2d_algo(&b4x16),
       "auto: the forward choice does not depend on the batch (a segment's embedding does not depend on its batch)");
    test_paper_width(&r);
    test_gradcheck(&r, CMR_CONV2D_IM2COL);
    test_gradcheck(&r, CMR_CONV2D_WINOGRAD);
    test_torch();
    gc_summary();
    return tap_done();
}
