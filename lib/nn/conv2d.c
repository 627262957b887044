/* conv2d, stride 1, zero padding, NCHW: im2col + one GEMM per column tile,
 * or Winograd F(4x4,5x5) (winograd.c) for the 5x5 padding 2 layers where it
 * pays (cmr_conv2d_algo: a cost model, forward and backward separately). See nn.h for the contract and docs/nn.md for the
 * measurements.
 *
 * Columns ("col", llm.c/darknet/ggml im2col): for output position p = oh*OW + ow
 * and kernel row k = (c*KH + kh)*KW + kw,
 *   col[k][p] = inp[c][oh + kh - PH][ow + kw - PW]   (0 outside the image)
 * so that out (OC, OH*OW) = weight (OC, C*KH*KW) . col (C*KH*KW, OH*OW) + bias.
 *
 * Two schedules, chosen from the dims alone (so scratch size is a pure
 * function of the dims):
 *  - large maps (OH*OW >= CONV_GROUP_MIN): per image, the output positions are
 *    cut into tiles of at most CONV_TILE columns; each tile's columns are
 *    built and multiplied while they are still in cache, and the GEMM writes
 *    straight into out (ldc = OH*OW).
 *  - small maps: g images are put side by side (g*OH*OW positions, at least
 *    CONV_GROUP_MIN) so that the GEMM is large enough to run at full speed:
 *    forward, their positions are the rows of one cmr_gemm_fixed (im2row,
 *    so that an image's outputs do not depend on the images beside it),
 *    through a (g*OH*OW, OC) staging buffer; backward, their columns.
 * Backward mirrors this: dW += dout . col^T, then dcol = W^T . dout into the
 * same buffer, then col2im adds dcol into dinp.
 */
#include <string.h>

#include "err.h"
#include "nn/nn.h"
#include "nn/vec.h"
#include "nn/winograd.h"

#define CONV_TILE 1024      /* columns per tile on large maps */
#define CONV_GROUP_MIN 512  /* below this many positions per image, group images */

int cmr_conv2d_oh(const struct cmr_conv2d_dims *d) { return d->H + 2 * d->PH - d->KH + 1; }
int cmr_conv2d_ow(const struct cmr_conv2d_dims *d) { return d->W + 2 * d->PW - d->KW + 1; }

int cmr_conv2d_check(const struct cmr_conv2d_dims *d)
{
    if (!d || d->B < 1 || d->C < 1 || d->H < 1 || d->W < 1 || d->OC < 1 || d->KH < 1 ||
        d->KW < 1 || d->PH < 0 || d->PW < 0 || d->PH >= d->KH || d->PW >= d->KW)
        return CMR_EINVAL;
    if (cmr_conv2d_oh(d) < 1 || cmr_conv2d_ow(d) < 1)
        return CMR_EINVAL;
    return CMR_OK;
}

/* the schedule: images per group g (1 on large maps) and columns per tile */
struct conv_plan {
    int K;      /* C*KH*KW */
    int P;      /* OH*OW positions per image */
    int g;      /* images per group (>1 only on small maps) */
    int tile;   /* columns per GEMM */
};

static struct conv_plan conv_plan(const struct cmr_conv2d_dims *d)
{
    struct conv_plan pl;
    pl.K = d->C * d->KH * d->KW;
    pl.P = cmr_conv2d_oh(d) * cmr_conv2d_ow(d);
    if (pl.P >= CONV_GROUP_MIN) {
        pl.g = 1;
        pl.tile = pl.P < CONV_TILE ? pl.P : CONV_TILE;
    } else {
        pl.g = (CONV_GROUP_MIN + pl.P - 1) / pl.P;
        if (pl.g > d->B)
            pl.g = d->B;
        pl.tile = pl.g * pl.P;
    }
    return pl;
}

static int wino_fits(const struct cmr_conv2d_dims *d)
{
    return d->KH == 5 && d->KW == 5 && d->PH == 2 && d->PW == 2;
}

/* The automatic choice: a cost model of both algorithms, in milliseconds of
 * one core, whose coefficients were fitted (non-negative least squares on the
 * relative error) to 157 shapes timed forward and backward on the
 * development machine (AMD EPYC Zen 4, OpenBLAS 0.3.21, one thread): every
 * 5x5 map of the encoder (94x48, 47x24, 23x12, 5x3), 8 to 512 channels,
 * batch 1 to 32. On those shapes it picks the faster algorithm but for 9 of
 * the 314 choices, all near-ties, losing 0.3 % (forward) and 0.9 % (backward)
 * of the time against always picking the faster one. Winograd pays a fixed
 * weight transform (C*OC, twice in backward), transforms per tile and
 * channel, and 64 GEMMs of tiles x C x OC; im2col one GEMM of
 * B*P x C*25 x OC and the column copies.
 * Pure function of the dims: the same layer always takes the same path (so
 * training is reproducible), whatever the load. */
static double wino_cost(const struct cmr_conv2d_dims *d, int bwd)
{
    const double c4 = (d->C + 3) / 4 * 4, oc4 = (d->OC + 3) / 4 * 4;
    const double t = (double)cmr_wino_tiles(d->B, d->H, d->W);
    static const double k[2][4] = {{1.495e-4, 1.585e-5, 3.382e-8, 3.646e-4},
                                   {2.619e-4, 1.880e-5, 7.368e-8, 8.001e-4}};
    return k[bwd][0] * c4 * oc4 + k[bwd][1] * t * (c4 + oc4) + k[bwd][2] * 64 * t * c4 * oc4 +
           k[bwd][3] * t;
}

static double im2col_cost(const struct cmr_conv2d_dims *d, int bwd)
{
    const double p = (double)d->B * cmr_conv2d_oh(d) * cmr_conv2d_ow(d);
    const double kk = (double)d->C * d->KH * d->KW;
    static const double k[2][3] = {{2.309e-8, 4.546e-7, 7.975e-3}, {4.482e-8, 1.062e-6, 8.774e-3}};
    return k[bwd][0] * p * kk * d->OC + k[bwd][1] * p * kk + k[bwd][2] * d->B;
}

static int auto_algo(const struct cmr_conv2d_dims *d, int bwd)
{
    /* Not below 16 channels, nor on maps that fill less than half of their
     * tiles (the 5x3 maps of block 5): Winograd is often faster there still,
     * but these layers are cheap either way and its rounding (~1e-6 relative
     * instead of ~1e-7) is not wanted where it buys little: the narrow
     * models' Adam steps are checked against PyTorch within 1e-5
     * (test-model-ref) and their finite differences (test-model) need a
     * quiet forward. */
    size_t tiles = cmr_wino_tiles(d->B, d->H, d->W);
    if (!wino_fits(d) || d->C < 16 || d->OC < 16 || (size_t)d->B * d->H * d->W * 2 < tiles * 16)
        return CMR_CONV2D_IM2COL;
    return wino_cost(d, bwd) < im2col_cost(d, bwd) ? CMR_CONV2D_WINOGRAD : CMR_CONV2D_IM2COL;
}

/* The forward choice ignores the batch size (it is made as for a batch of
 * 16): a segment's embedding must not depend on which other segments share
 * its batch (cmr-encode batches across tracks, cmrencode per segment, the
 * threads take chunks of a batch). */
int cmr_conv2d_algo(const struct cmr_conv2d_dims *d)
{
    struct cmr_conv2d_dims ref = *d;
    ref.B = 16;
    return auto_algo(&ref, 0);
}
int cmr_conv2d_algo_backward(const struct cmr_conv2d_dims *d) { return auto_algo(d, 1); }

size_t cmr_conv2d_scratch_floats(const struct cmr_conv2d_dims *d)
{
    struct conv_plan pl = conv_plan(d);
    size_t n = (size_t)pl.K * pl.tile;      /* columns (or their gradient) */
    if (pl.P < CONV_GROUP_MIN)              /* staging for (OC, g*P), the packed weight */
        n += (size_t)d->OC * pl.tile + cmr_gemm_fixed_pack_floats(d->OC, pl.K);
    if (wino_fits(d)) {
        size_t w = cmr_wino_scratch_floats(d->C, d->OC, d->B, d->H, d->W);
        n = w > n ? w : n;
    }
    return n;
}

/* col (K, ld) columns [0, np) <- positions [p0, p0+np) of one image inp (C,H,W) */
static void im2col(float *col, int ld, const float *inp, int p0, int np,
                   const struct cmr_conv2d_dims *d)
{
    const int H = d->H, W = d->W, OW = cmr_conv2d_ow(d);
    const int oh0 = p0 / OW, oh1 = (p0 + np - 1) / OW;
    for (int c = 0; c < d->C; c++) {
        const float *plane = inp + (size_t)c * H * W;
        for (int kh = 0; kh < d->KH; kh++) {
            for (int kw = 0; kw < d->KW; kw++) {
                float *row = col + (size_t)((c * d->KH + kh) * d->KW + kw) * ld;
                /* valid ow: 0 <= ow + kw - PW < W */
                int lo = d->PW - kw, hi = W + d->PW - kw;
                if (lo < 0)
                    lo = 0;
                if (hi > OW)
                    hi = OW;
                for (int oh = oh0; oh <= oh1; oh++) {
                    int a = oh == oh0 ? p0 - oh * OW : 0;                 /* ow range of this tile */
                    int b = oh == oh1 ? p0 + np - oh * OW : OW;
                    float *dst = row + (oh * OW - p0);                    /* indexed by ow */
                    int ih = oh + kh - d->PH;
                    if (ih < 0 || ih >= H) {
                        memset(dst + a, 0, sizeof(float) * (size_t)(b - a));
                        continue;
                    }
                    const float *src = plane + (size_t)ih * W + (kw - d->PW);  /* indexed by ow */
                    int l = lo > a ? lo : a, h = hi < b ? hi : b;
                    if (h <= l) {
                        memset(dst + a, 0, sizeof(float) * (size_t)(b - a));
                        continue;
                    }
                    if (l > a)
                        memset(dst + a, 0, sizeof(float) * (size_t)(l - a));
                    memcpy(dst + l, src + l, sizeof(float) * (size_t)(h - l));
                    if (b > h)
                        memset(dst + h, 0, sizeof(float) * (size_t)(b - h));
                }
            }
        }
    }
}

/* rows (P, ldr): row p holds the K = C*KH*KW inputs under output position p
 * of one image inp (C,H,W), in the order of a weight row (0 outside the
 * image): the transpose of im2col's columns */
static void im2row(float *rows, int ldr, const float *inp, const struct cmr_conv2d_dims *d)
{
    const int H = d->H, W = d->W, OH = cmr_conv2d_oh(d), OW = cmr_conv2d_ow(d);
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            float *r = rows + (size_t)(oh * OW + ow) * ldr;
            for (int c = 0; c < d->C; c++) {
                const float *plane = inp + (size_t)c * H * W;
                for (int kh = 0; kh < d->KH; kh++) {
                    const int ih = oh + kh - d->PH;
                    for (int kw = 0; kw < d->KW; kw++) {
                        const int iw = ow + kw - d->PW;
                        *r++ = ih < 0 || ih >= H || iw < 0 || iw >= W ? 0.0f : plane[(size_t)ih * W + iw];
                    }
                }
            }
        }
}

/* dinp (C,H,W) of one image += col2im of dcol (K, ld) columns for positions [p0, p0+np) */
static void col2im_add(float *dinp, const float *dcol, int ld, int p0, int np,
                       const struct cmr_conv2d_dims *d)
{
    const int H = d->H, W = d->W, OW = cmr_conv2d_ow(d);
    const int oh0 = p0 / OW, oh1 = (p0 + np - 1) / OW;
    for (int c = 0; c < d->C; c++) {
        float *plane = dinp + (size_t)c * H * W;
        for (int kh = 0; kh < d->KH; kh++) {
            for (int kw = 0; kw < d->KW; kw++) {
                const float *row = dcol + (size_t)((c * d->KH + kh) * d->KW + kw) * ld;
                int lo = d->PW - kw, hi = W + d->PW - kw;
                if (lo < 0)
                    lo = 0;
                if (hi > OW)
                    hi = OW;
                for (int oh = oh0; oh <= oh1; oh++) {
                    int ih = oh + kh - d->PH;
                    if (ih < 0 || ih >= H)
                        continue;
                    int a = oh == oh0 ? p0 - oh * OW : 0;
                    int b = oh == oh1 ? p0 + np - oh * OW : OW;
                    int l = lo > a ? lo : a, h = hi < b ? hi : b;
                    const float *src = row + (oh * OW - p0);
                    float *dst = plane + (size_t)ih * W + (kw - d->PW);
                    if (h > l)
                        vadd(dst + l, src + l, (size_t)(h - l));
                }
            }
        }
    }
}

static void im2col_forward(float *out, float *scratch, const float *inp, const float *weight,
                           const float *bias, const struct cmr_conv2d_dims *d)
{
    const struct conv_plan pl = conv_plan(d);
    const int OC = d->OC, P = pl.P, K = pl.K;
    const size_t in_sz = (size_t)d->C * d->H * d->W, out_sz = (size_t)OC * P;
    float *col = scratch;

    if (pl.P >= CONV_GROUP_MIN) {   /* never on the batch size: see below */
        for (int b = 0; b < d->B; b++) {
            const float *x = inp + b * in_sz;
            float *y = out + b * out_sz;
            for (int p0 = 0; p0 < P; p0 += pl.tile) {
                int np = P - p0 < pl.tile ? P - p0 : pl.tile;
                im2col(col, np, x, p0, np, d);
                if (bias)
                    for (int oc = 0; oc < OC; oc++)
                        vfill(y + (size_t)oc * P + p0, (size_t)np, bias[oc]);
                cmr_sgemm(0, 0, OC, np, K, 1.0f, weight, K, col, np, bias ? 1.0f : 0.0f,
                          y + p0, P);
            }
        }
        return;
    }
    /* small maps: g images' positions as the rows of one fixed GEMM (a
     * position's outputs do not depend on the other rows, so an image's do
     * not depend on its batch), stage (g*P, OC) = rows (g*P, K) . W^T */
    float *stage = scratch + (size_t)K * pl.tile, *wp = stage + (size_t)OC * pl.tile;
    cmr_gemm_fixed_pack(wp, weight, K, OC, K);
    for (int b0 = 0; b0 < d->B; b0 += pl.g) {
        int g = d->B - b0 < pl.g ? d->B - b0 : pl.g, n = g * P;
        for (int i = 0; i < g; i++)
            im2row(col + (size_t)i * P * K, K, inp + (b0 + i) * in_sz, d);
        cmr_gemm_fixed(n, OC, K, col, K, wp, stage, OC);
        for (int i = 0; i < g; i++) {
            float *y = out + (b0 + i) * out_sz;
            for (int oc = 0; oc < OC; oc++) {
                const float bv = bias ? bias[oc] : 0.0f;
                const float *src = stage + (size_t)i * P * OC + oc;
                for (int p = 0; p < P; p++)
                    y[(size_t)oc * P + p] = src[(size_t)p * OC] + bv;
            }
        }
    }
}

static void bias_grad(float *dbias, const float *dout, int B, int OC, int P)
{
    for (int oc = 0; oc < OC; oc++) {
        double s = 0;
        for (int b = 0; b < B; b++)
            s += vsum(dout + ((size_t)b * OC + oc) * P, (size_t)P);
        dbias[oc] += (float)s;
    }
}

static void im2col_backward(float *dinp, float *dweight, float *scratch, const float *dout,
                            const float *inp, const float *weight, const struct cmr_conv2d_dims *d)
{
    const struct conv_plan pl = conv_plan(d);
    const int OC = d->OC, P = pl.P, K = pl.K;
    const size_t in_sz = (size_t)d->C * d->H * d->W, out_sz = (size_t)OC * P;
    float *col = scratch;

    if (pl.g == 1) {
        for (int b = 0; b < d->B; b++) {
            const float *x = inp + b * in_sz;
            const float *dy = dout + b * out_sz;
            for (int p0 = 0; p0 < P; p0 += pl.tile) {
                int np = P - p0 < pl.tile ? P - p0 : pl.tile;
                if (dweight) {
                    im2col(col, np, x, p0, np, d);
                    /* dW (OC,K) += dy (OC,np) . col^T (np,K) */
                    cmr_sgemm(0, 1, OC, K, np, 1.0f, dy + p0, P, col, np, 1.0f, dweight, K);
                }
                if (dinp) {
                    /* dcol (K,np) = W^T (K,OC) . dy (OC,np) */
                    cmr_sgemm(1, 0, K, np, OC, 1.0f, weight, K, dy + p0, P, 0.0f, col, np);
                    col2im_add(dinp + b * in_sz, col, np, p0, np, d);
                }
            }
        }
        return;
    }
    float *stage = scratch + (size_t)K * pl.tile;
    for (int b0 = 0; b0 < d->B; b0 += pl.g) {
        int g = d->B - b0 < pl.g ? d->B - b0 : pl.g, n = g * P;
        /* stage (OC, g*P) <- dout of the group, images side by side */
        for (int i = 0; i < g; i++)
            for (int oc = 0; oc < OC; oc++)
                memcpy(stage + (size_t)oc * n + (size_t)i * P,
                       dout + (b0 + i) * out_sz + (size_t)oc * P, sizeof(float) * (size_t)P);
        if (dweight) {
            for (int i = 0; i < g; i++)
                im2col(col + (size_t)i * P, n, inp + (b0 + i) * in_sz, 0, P, d);
            cmr_sgemm(0, 1, OC, K, n, 1.0f, stage, n, col, n, 1.0f, dweight, K);
        }
        if (dinp) {
            cmr_sgemm(1, 0, K, n, OC, 1.0f, weight, K, stage, n, 0.0f, col, n);
            for (int i = 0; i < g; i++)
                col2im_add(dinp + (b0 + i) * in_sz, col + (size_t)i * P, n, 0, P, d);
        }
    }
}

int cmr_conv2d_forward_algo(float *out, float *scratch, const float *inp, const float *weight,
                            const float *bias, const struct cmr_conv2d_dims *d, int algo)
{
    if (algo == CMR_CONV2D_AUTO)
        algo = cmr_conv2d_algo(d);
    if (algo == CMR_CONV2D_WINOGRAD) {
        if (!wino_fits(d))
            return CMR_EINVAL;
        cmr_wino_forward(out, scratch, inp, weight, bias, d->B, d->C, d->OC, d->H, d->W);
    } else if (algo == CMR_CONV2D_IM2COL) {
        im2col_forward(out, scratch, inp, weight, bias, d);
    } else {
        return CMR_EINVAL;
    }
    return CMR_OK;
}

int cmr_conv2d_backward_algo(float *dinp, float *dweight, float *dbias, float *scratch,
                             const float *dout, const float *inp, const float *weight,
                             const struct cmr_conv2d_dims *d, int algo)
{
    if (algo == CMR_CONV2D_AUTO)
        algo = cmr_conv2d_algo_backward(d);
    if ((algo == CMR_CONV2D_WINOGRAD && !wino_fits(d)) ||
        (algo != CMR_CONV2D_WINOGRAD && algo != CMR_CONV2D_IM2COL))
        return CMR_EINVAL;
    if (dbias)
        bias_grad(dbias, dout, d->B, d->OC, cmr_conv2d_oh(d) * cmr_conv2d_ow(d));
    if (!dinp && !dweight)
        return CMR_OK;
    if (algo == CMR_CONV2D_WINOGRAD)
        cmr_wino_backward(dinp, dweight, scratch, dout, inp, weight, d->B, d->C, d->OC, d->H, d->W);
    else
        im2col_backward(dinp, dweight, scratch, dout, inp, weight, d);
    return CMR_OK;
}

void cmr_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                        const float *bias, const struct cmr_conv2d_dims *d)
{
    cmr_conv2d_forward_algo(out, scratch, inp, weight, bias, d, CMR_CONV2D_AUTO);
}

void cmr_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                         const float *dout, const float *inp, const float *weight,
                         const struct cmr_conv2d_dims *d)
{
    cmr_conv2d_backward_algo(dinp, dweight, dbias, scratch, dout, inp, weight, d,
                             CMR_CONV2D_AUTO);
}

/* ---- the reference: seven loops, double accumulation ---- */

void cmr_conv2d_forward_naive(float *out, const float *inp, const float *weight,
                              const float *bias, const struct cmr_conv2d_dims *d)
{
    const int OH = cmr_conv2d_oh(d), OW = cmr_conv2d_ow(d);
    for (int b = 0; b < d->B; b++)
        for (int oc = 0; oc < d->OC; oc++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int c = 0; c < d->C; c++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = oh + kh - d->PH, iw = ow + kw - d->PW;
                                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W)
                                    continue;
                                s += (double)inp[(((size_t)b * d->C + c) * d->H + ih) * d->W + iw] *
                                     weight[(((size_t)oc * d->C + c) * d->KH + kh) * d->KW + kw];
                            }
                    out[(((size_t)b * d->OC + oc) * OH + oh) * OW + ow] = (float)s;
                }
}

void cmr_conv2d_backward_naive(float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *weight,
                               const struct cmr_conv2d_dims *d)
{
    const int OH = cmr_conv2d_oh(d), OW = cmr_conv2d_ow(d);
    if (dbias)
        for (int oc = 0; oc < d->OC; oc++) {
            double s = 0;
            for (int b = 0; b < d->B; b++)
                for (int j = 0; j < OH * OW; j++)
                    s += dout[((size_t)b * d->OC + oc) * OH * OW + j];
            dbias[oc] += (float)s;
        }
    if (dweight)
        for (int oc = 0; oc < d->OC; oc++)
            for (int c = 0; c < d->C; c++)
                for (int kh = 0; kh < d->KH; kh++)
                    for (int kw = 0; kw < d->KW; kw++) {
                        double s = 0;
                        for (int b = 0; b < d->B; b++)
                            for (int oh = 0; oh < OH; oh++)
                                for (int ow = 0; ow < OW; ow++) {
                                    int ih = oh + kh - d->PH, iw = ow + kw - d->PW;
                                    if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W)
                                        continue;
                                    s += (double)dout[(((size_t)b * d->OC + oc) * OH + oh) * OW + ow] *
                                         inp[(((size_t)b * d->C + c) * d->H + ih) * d->W + iw];
                                }
                        dweight[(((size_t)oc * d->C + c) * d->KH + kh) * d->KW + kw] += (float)s;
                    }
    if (dinp)
        for (int b = 0; b < d->B; b++)
            for (int c = 0; c < d->C; c++)
                for (int ih = 0; ih < d->H; ih++)
                    for (int iw = 0; iw < d->W; iw++) {
                        double s = 0;
                        for (int oc = 0; oc < d->OC; oc++)
                            for (int kh = 0; kh < d->KH; kh++)
                                for (int kw = 0; kw < d->KW; kw++) {
                                    int oh = ih - kh + d->PH, ow = iw - kw + d->PW;
                                    if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                                        continue;
                                    s += (double)dout[(((size_t)b * d->OC + oc) * OH + oh) * OW + ow] *
                                         weight[(((size_t)oc * d->C + c) * d->KH + kh) * d->KW + kw];
                                }
                        dinp[(((size_t)b * d->C + c) * d->H + ih) * d->W + iw] += (float)s;
                    }
}
