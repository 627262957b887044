/* batchnorm2d: training (batch statistics) and evaluation (running statistics)
 * paths, and the backward of the training path. See nn.h.
 * ref: https://pytorch.org/docs/stable/generated/torch.nn.BatchNorm2d.html
 * ref: aten/src/ATen/native/Normalization.cpp (batch_norm_cpu_update_stats_template:
 *      running_var uses var_sum / (N - 1)) */
#include <math.h>

#include "nn/nn.h"

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
        channel_stats(inp, B, C, HW, c, &m, &var);
        float rs = (float)(1.0 / sqrt(var + eps));
        mean[c] = (float)m;
        rstd[c] = rs;
        update_running(running_mean, running_var, c, m, var, (double)B * HW, momentum);
        /* out = x * scale + shift, scale = rstd*gamma, shift = beta - mean*scale */
        float scale = rs * gamma[c], shift = (float)(beta[c] - m * rs * gamma[c]);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            float *y = out + ((size_t)b * C + c) * HW;
            for (int j = 0; j < HW; j++)
                y[j] = x[j] * scale + shift;
        }
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
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            float *y = out + ((size_t)b * C + c) * HW;
            for (int j = 0; j < HW; j++)
                y[j] = x[j] * scale + shift;
        }
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
            float s1 = 0, s2 = 0;
            for (int j = 0; j < HW; j++) {
                s1 += g[j];
                s2 += g[j] * ((x[j] - m) * rs);
            }
            sd += s1;
            sdx += s2;
        }
        if (dbeta)
            dbeta[c] += (float)sd;
        if (dgamma)
            dgamma[c] += (float)sdx;
        if (!dinp)
            continue;
        /* dinp = gamma*rstd * (dout - sum(dout)/n - xhat * sum(dout*xhat)/n) */
        const float k = gamma[c] * rs, a = (float)(sd / n), q = (float)(sdx / n);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *g = dout + ((size_t)b * C + c) * HW;
            float *dx = dinp + ((size_t)b * C + c) * HW;
            for (int j = 0; j < HW; j++)
                dx[j] += k * (g[j] - a - (x[j] - m) * rs * q);
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
