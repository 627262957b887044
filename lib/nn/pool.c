/* maxpool2d (kernel = stride, floor mode) and max over the time axis. See nn.h.
 * Tie and NaN rule as PyTorch's CPU kernels (aten/src/ATen/native/cpu/MaxPoolKernel.cpp:
 * `if ((val > maxval) || std::isnan(val))`): the first maximum in scan order wins,
 * and a NaN wins over any number (the last NaN of a window, as there). max over
 * time keeps the first maximum and the first NaN, as torch.max(dim). */
#include <math.h>

#include "err.h"
#include "nn/nn.h"

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

void cmr_maxpool2d_forward(float *out, int32_t *argmax, const float *inp,
                           const struct cmr_pool2d_dims *d)
{
    const int H = d->H, W = d->W, OH = cmr_pool2d_oh(d), OW = cmr_pool2d_ow(d);
    const size_t planes = (size_t)d->B * d->C;
    for (size_t pc = 0; pc < planes; pc++) {
        const float *x = inp + pc * H * W;
        float *y = out + pc * OH * OW;
        int32_t *am = argmax + pc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int best = oh * d->KH * W + ow * d->KW;
                float m = x[best];
                for (int kh = 0; kh < d->KH; kh++)
                    for (int kw = 0; kw < d->KW; kw++) {
                        int i = (oh * d->KH + kh) * W + ow * d->KW + kw;
                        float v = x[i];
                        if (v > m || isnan(v)) {
                            m = v;
                            best = i;
                        }
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
        for (int f = 0; f < F; f++) {
            y[f] = x[f];
            am[f] = 0;
        }
        for (int t = 1; t < T; t++) {
            const float *row = x + (size_t)t * F;
            for (int f = 0; f < F; f++)
                if (row[f] > y[f] || (isnan(row[f]) && !isnan(y[f]))) {
                    y[f] = row[f];
                    am[f] = t;
                }
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
