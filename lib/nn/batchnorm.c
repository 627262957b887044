/* batchnorm2d: training (batch statistics) and evaluation (running statistics)
 * paths, and the backward of the training path. See nn.h.
 * ref: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
 * ref: aten/src/ATen/native/Normalization.cpp (batch_norm_cpu_update_stats_template:
 *      running_var uses var_sum / (N - 1)) */
#include <math.h>

#include "nn/nn.h"
#include "nn/vec.h"

/* statistics of channel c over (B, HW), in double; two passes for accuracy */
static void channel_stats(const float *inp, int B, int C, int HW, int c, double *mean,
                          double *var)
{
    double s = 0, n = (double)B * HW;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * HW;
        for (int j = 0; j < HW; j++)
            s += x[j];
    }
    double m = s / n, q = 0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((size_t)b * C + c) * HW;
        for (int j = 0; j < HW; j++) {
            double t = x[j] - m;
            q += t * t;
        }
    }
    *mean = m;
    *var = q / n;
}

/* the same statistics with 16 float lanes per row, rows summed in double */
static void channel_stats_fast(const float *inp, int B, int C, int HW, int c, double *mean,
                               double *var)
{
    double s = 0, q = 0, n = (double)B * HW;
    for (int b = 0; b < B; b++)
        s += vsum(inp + ((size_t)b * C + c) * HW, (size_t)HW);
    double m = s / n;
    for (int b = 0; b < B; b++)
        q += vsum_sqdev(inp + ((size_t)b * C + c) * HW, (size_t)HW, (float)m);
    *mean = m;
    *var = q / n;
}

static void update_running(float *running_mean, float *running_var, int c, double m,
                           double var, double n, float momentum)
{
    if (running_mean)
        running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
    if (running_var) {
        double unbiased = n > 1 ? var * n / (n - 1) : 0.0;
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
}

void cmr_batchnorm2d_forward_train(float *out, float *mean, float *rstd,
                                   float *running_mean, float *running_var,
                                   const float *inp, const float *gamma, const float *beta,
                                   int B, int C, int HW, float momentum, float eps)
{
    for (int c = 0; c < C; c++) {
        double m, var;
        channel_stats_fast(inp, B, C, HW, c, &m, &var);
        float rs = (float)(1.0 / sqrt(var + eps));
        mean[c] = (float)m;
        rstd[c] = rs;
        update_running(running_mean, running_var, c, m, var, (double)B * HW, momentum);
        /* out = x * scale + shift, scale = rstd*gamma, shift = beta - mean*scale */
        float scale = rs * gamma[c], shift = (float)(beta[c] - m * rs * gamma[c]);
        for (int b = 0; b < B; b++)
            vaffine(out + ((size_t)b * C + c) * HW, inp + ((size_t)b * C + c) * HW, (size_t)HW,
                    scale, shift);
    }
}

void cmr_batchnorm2d_forward_eval(float *out, const float *inp, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var, int B, int C, int HW, float eps)
{
    for (int c = 0; c < C; c++) {
        double rs = 1.0 / sqrt((double)running_var[c] + eps);
        float scale = (float)(rs * gamma[c]);
        float shift = (float)(beta[c] - running_mean[c] * rs * gamma[c]);
        for (int b = 0; b < B; b++)
            vaffine(out + ((size_t)b * C + c) * HW, inp + ((size_t)b * C + c) * HW, (size_t)HW,
                    scale, shift);
    }
}

void cmr_batchnorm2d_backward(float *dinp, float *dgamma, float *dbeta,
                              const float *dout, const float *inp, const float *gamma,
                              const float *mean, const float *rstd, int B, int C, int HW)
{
    const double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        const float m = mean[c], rs = rstd[c];
        /* sum(dout) and sum(dout * xhat) over the channel */
        double sd = 0, sdx = 0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *g = dout + ((size_t)b * C + c) * HW;
            sd += vsum(g, (size_t)HW);
            sdx += vsum_dev_dot(g, x, (size_t)HW, m);
        }
        sdx *= rs;
        if (dbeta)
            dbeta[c] += (float)sd;
        if (dgamma)
            dgamma[c] += (float)sdx;
        if (!dinp)
            continue;
        /* dinp += gamma*rstd * (dout - sum(dout)/n - xhat * sum(dout*xhat)/n)
         *       = k*dout + (x - m) * kq + ka,  k = gamma*rstd, kq = -k*rstd*q, ka = -k*a */
        const float k = gamma[c] * rs;
        const float ka = (float)(-k * (sd / n)), kq = (float)(-k * rs * (sdx / n));
        const v4f vk = v4f_set1(k), vka = v4f_set1(ka), vkq = v4f_set1(kq), vm = v4f_set1(m);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *g = dout + ((size_t)b * C + c) * HW;
            float *dx = dinp + ((size_t)b * C + c) * HW;
            int j = 0;
            for (; j + 4 <= HW; j += 4)
                v4f_store(dx + j, v4f_load(dx + j) + vk * v4f_load(g + j) +
                                      (v4f_load(x + j) - vm) * vkq + vka);
            for (; j < HW; j++)
                dx[j] += k * g[j] + (x[j] - m) * kq + ka;
        }
    }
}

void cmr_batchnorm2d_forward_train_naive(float *out, float *mean, float *rstd,
                                         float *running_mean, float *running_var,
                                         const float *inp, const float *gamma,
                                         const float *beta, int B, int C, int HW,
                                         float momentum, float eps)
{
    for (int c = 0; c < C; c++) {
        double m, var;
        channel_stats(inp, B, C, HW, c, &m, &var);
        double rs = 1.0 / sqrt(var + eps);
        mean[c] = (float)m;
        rstd[c] = (float)rs;
        update_running(running_mean, running_var, c, m, var, (double)B * HW, momentum);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++) {
                size_t i = ((size_t)b * C + c) * HW + j;
                out[i] = (float)((inp[i] - m) * rs * gamma[c] + beta[c]);
            }
    }
}

void cmr_batchnorm2d_backward_naive(float *dinp, float *dgamma, float *dbeta,
                                    const float *dout, const float *inp, const float *gamma,
                                    const float *mean, const float *rstd, int B, int C, int HW)
{
    const double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double sd = 0, sdx = 0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < HW; j++) {
                size_t i = ((size_t)b * C + c) * HW + j;
                double xh = ((double)inp[i] - mean[c]) * rstd[c];
                sd += dout[i];
                sdx += dout[i] * xh;
            }
        if (dbeta)
            dbeta[c] += (float)sd;
        if (dgamma)
            dgamma[c] += (float)sdx;
        if (dinp)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < HW; j++) {
                    size_t i = ((size_t)b * C + c) * HW + j;
                    double xh = ((double)inp[i] - mean[c]) * rstd[c];
                    double dxh = (double)dout[i] * gamma[c];
                    dinp[i] += (float)(rstd[c] / n * (n * dxh - sd * gamma[c] - xh * sdx * gamma[c]));
                }
    }
}
