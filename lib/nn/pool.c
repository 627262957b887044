/* maxpool2d (kernel = stride, floor mode) and max over the time axis. See nn.h.
 * Tie and NaN rule as PyTorch's CPU kernels (aten/src/ATen/native/cpu/MaxPoolKernel.cpp:
 * `if ((val > maxval) || std::isnan(val))`): the first maximum in scan order wins,
 * and a NaN wins over any number (the last NaN of a window, as there). max over
 * time keeps the first maximum and the first NaN, as torch.max(dim). */
#include <math.h>
#include <string.h>

#include "err.h"
#include "nn/nn.h"
#include "nn/vec.h"

int cmr_pool2d_oh(const struct cmr_pool2d_dims *d) { return d->KH > 0 ? d->H / d->KH : 0; }
int cmr_pool2d_ow(const struct cmr_pool2d_dims *d) { return d->KW > 0 ? d->W / d->KW : 0; }

int cmr_pool2d_check(const struct cmr_pool2d_dims *d)
{
    if (!d || d->B < 1 || d->C < 1 || d->H < 1 || d->W < 1 || d->KH < 1 || d->KW < 1)
        return CMR_EINVAL;
    if (cmr_pool2d_oh(d) < 1 || cmr_pool2d_ow(d) < 1)
        return CMR_EINVAL;
    return CMR_OK;
}

/* m, b = v, i if v wins (v > m, or v is NaN), without a branch: the compare
 * result becomes a bit mask (a mispredicted branch per element costs more
 * than the whole update) */
static inline void take_if_greater(float v, int32_t i, float *m, int32_t *b)
{
    uint32_t c = -(uint32_t)((v > *m) | (v != v));
    uint32_t vb, mb;
    memcpy(&vb, &v, 4);
    memcpy(&mb, m, 4);
    mb = (vb & c) | (mb & ~c);
    memcpy(m, &mb, 4);
    *b = (int32_t)(((uint32_t)i & c) | ((uint32_t)*b & ~c));
}

/* (2,2) windows, four at a time: each row's pair first (left wins ties), then
 * the two rows (top wins ties); a NaN wins at each step. That is the scan
 * order's result: the first maximum, or the last NaN. */
static void maxpool22_plane(float *y, int32_t *am, const float *x, int W, int OH, int OW)
{
    for (int oh = 0; oh < OH; oh++) {
        const float *r0 = x + (size_t)2 * oh * W, *r1 = r0 + W;
        float *yo = y + (size_t)oh * OW;
        int32_t *ao = am + (size_t)oh * OW;
        const int32_t base = 2 * oh * W;
        int ow = 0;
        for (; ow + 4 <= OW; ow += 4) {
            const int32_t c0 = base + 2 * ow;
            const v4i ie = {c0, c0 + 2, c0 + 4, c0 + 6}, io = ie + 1, down = {W, W, W, W};
            v4f a0 = v4f_load(r0 + 2 * ow), a1 = v4f_load(r0 + 2 * ow + 4);
            v4f b0 = v4f_load(r1 + 2 * ow), b1 = v4f_load(r1 + 2 * ow + 4);
            v4f le = V4F_SHUF(a0, a1, 0, 2, 4, 6), lo = V4F_SHUF(a0, a1, 1, 3, 5, 7);
            v4f ue = V4F_SHUF(b0, b1, 0, 2, 4, 6), uo = V4F_SHUF(b0, b1, 1, 3, 5, 7);
            v4i c = (lo > le) | (lo != lo);
            v4f m0 = v4f_select(c, lo, le);
            v4i i0 = (c & io) | (~c & ie);
            c = (uo > ue) | (uo != uo);
            v4f m1 = v4f_select(c, uo, ue);
            v4i i1 = ((c & io) | (~c & ie)) + down;
            c = (m1 > m0) | (m1 != m1);
            v4f_store(yo + ow, v4f_select(c, m1, m0));
            v4i idx = (c & i1) | (~c & i0);
            memcpy(ao + ow, &idx, sizeof idx);
        }
        for (; ow < OW; ow++) {
            const int32_t i = base + 2 * ow;
            int32_t best = i;
            float m = x[i];
            take_if_greater(x[i + 1], i + 1, &m, &best);
            take_if_greater(x[i + W], i + W, &m, &best);
            take_if_greater(x[i + W + 1], i + W + 1, &m, &best);
            yo[ow] = m;
            ao[ow] = best;
        }
    }
}

void cmr_maxpool2d_forward(float *out, int32_t *argmax, const float *inp,
                           const struct cmr_pool2d_dims *d)
{
    const int H = d->H, W = d->W, OH = cmr_pool2d_oh(d), OW = cmr_pool2d_ow(d);
    const size_t planes = (size_t)d->B * d->C;
    if (d->KH == 2 && d->KW == 2) {
        for (size_t pc = 0; pc < planes; pc++)
            maxpool22_plane(out + pc * OH * OW, argmax + pc * OH * OW, inp + pc * H * W, W, OH, OW);
        return;
    }
    for (size_t pc = 0; pc < planes; pc++) {
        const float *x = inp + pc * H * W;
        float *y = out + pc * OH * OW;
        int32_t *am = argmax + pc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int32_t best = oh * d->KH * W + ow * d->KW;
                float m = x[best];
                for (int kh = 0; kh < d->KH; kh++)
                    for (int kw = 0; kw < d->KW; kw++) {
                        int32_t i = (oh * d->KH + kh) * W + ow * d->KW + kw;
                        take_if_greater(x[i], i, &m, &best);
                    }
                y[oh * OW + ow] = m;
                am[oh * OW + ow] = best;
            }
    }
}

void cmr_maxpool2d_backward(float *dinp, const float *dout, const int32_t *argmax,
                            const struct cmr_pool2d_dims *d)
{
    const size_t in_plane = (size_t)d->H * d->W,
                 out_plane = (size_t)cmr_pool2d_oh(d) * cmr_pool2d_ow(d),
                 planes = (size_t)d->B * d->C;
    for (size_t pc = 0; pc < planes; pc++) {
        float *dx = dinp + pc * in_plane;
        const float *dy = dout + pc * out_plane;
        const int32_t *am = argmax + pc * out_plane;
        for (size_t j = 0; j < out_plane; j++)
            dx[am[j]] += dy[j];
    }
}

void cmr_maxtime_forward(float *out, int32_t *argmax, const float *inp,
                         int B, int C, int T, int F)
{
    const size_t planes = (size_t)B * C;
    for (size_t pc = 0; pc < planes; pc++) {
        const float *x = inp + pc * T * F;
        float *y = out + pc * F;
        int32_t *am = argmax + pc * F;
        int f = 0;
        /* four frequencies at a time: v wins if v > m, or v is NaN and m is not */
        for (; f + 4 <= F; f += 4) {
            v4f m = v4f_load(x + f);
            v4i b = {0, 0, 0, 0};
            for (int t = 1; t < T; t++) {
                v4f v = v4f_load(x + (size_t)t * F + f);
                v4i c = (v > m) | ((v != v) & (m == m));
                m = v4f_select(c, v, m);
                b = (c & (v4i){t, t, t, t}) | (~c & b);
            }
            v4f_store(y + f, m);
            memcpy(am + f, &b, sizeof b);
        }
        for (; f < F; f++) {
            float m = x[f];
            int32_t b = 0;
            for (int t = 1; t < T; t++) {
                float v = x[(size_t)t * F + f];
                if (v > m || (isnan(v) && !isnan(m))) {
                    m = v;
                    b = t;
                }
            }
            y[f] = m;
            am[f] = b;
        }
    }
}

void cmr_maxtime_backward(float *dinp, const float *dout, const int32_t *argmax,
                          int B, int C, int T, int F)
{
    const size_t planes = (size_t)B * C;
    for (size_t pc = 0; pc < planes; pc++) {
        float *dx = dinp + pc * T * F;
        const float *dy = dout + pc * F;
        const int32_t *am = argmax + pc * F;
        for (int f = 0; f < F; f++)
            dx[(size_t)am[f] * F + f] += dy[f];
    }
}
