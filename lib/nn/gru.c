/* GRU, one layer, batch_first, PyTorch's equations and weight layout. See nn.h.
 * ref: https://pytorch.org/docs/stable/generated/torch.nn.GRU.html
 *
 * Forward, per step t (x = inp[:, t], h = the previous hidden state):
 *   gi = W_ih x + b_ih (all steps at once, one GEMM), gh = W_hh h + b_hh (one GEMM per step)
 *   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), hn = gh_n
 *   n = tanh(gi_n + r * hn),  h' = (1 - z) * n + z * h
 * cache (B,T,4H) keeps (r, z, n, hn) per step.
 *
 * Backward (BPTT), t = T-1 .. 0, with dh = dout[:, t] + the carry from t+1:
 *   dn = dh (1 - z)            dz = dh (h - n)            carry = dh z
 *   dn_pre = dn (1 - n^2)      dr = dn_pre hn
 *   dr_pre = dr r (1 - r)      dz_pre = dz z (1 - z)
 *   dgi = (dr_pre, dz_pre, dn_pre),  dgh = (dr_pre, dz_pre, dn_pre r)
 *   carry += dgh W_hh
 * then the weight gradients as GEMMs over all steps:
 *   dW_ih += dgi^T x, dW_hh += dgh^T h, db_ih += sum dgi, db_hh += sum dgh, dinp += dgi W_ih.
 */
#include <math.h>
#include <string.h>

#include "nn/nn.h"

size_t cmr_gru_cache_floats(const struct cmr_gru_dims *d)
{
    return (size_t)d->B * d->T * 4 * d->H;
}

size_t cmr_gru_scratch_floats(const struct cmr_gru_dims *d)
{
    return (size_t)2 * d->B * d->T * 3 * d->H + (size_t)d->B * d->H;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void cmr_gru_forward(float *out, float *cache, float *scratch, const float *inp,
                     const float *h0, const float *w_ih, const float *w_hh,
                     const float *b_ih, const float *b_hh, const struct cmr_gru_dims *d)
{
    const int B = d->B, T = d->T, IN = d->IN, H = d->H, G = 3 * H;
    float *gi = scratch;                        /* (B,T,3H) */
    float *gh = scratch + (size_t)B * T * G;    /* (B,3H) */

    for (size_t r = 0; r < (size_t)B * T; r++)
        memcpy(gi + r * G, b_ih, sizeof(float) * G);
    cmr_sgemm(0, 1, B * T, G, IN, 1.0f, inp, IN, w_ih, IN, 1.0f, gi, G);

    for (int t = 0; t < T; t++) {
        const float *hp = t > 0 ? out + (size_t)(t - 1) * H : h0;   /* rows b: ld T*H (or H) */
        const int ldh = t > 0 ? T * H : H;
        for (int b = 0; b < B; b++)
            memcpy(gh + (size_t)b * G, b_hh, sizeof(float) * G);
        if (hp)
            cmr_sgemm(0, 1, B, G, H, 1.0f, hp, ldh, w_hh, H, 1.0f, gh, G);
        for (int b = 0; b < B; b++) {
            const float *xi = gi + ((size_t)b * T + t) * G, *xh = gh + (size_t)b * G;
            const float *hb = hp ? hp + (size_t)b * ldh : NULL;
            float *c = cache + ((size_t)b * T + t) * 4 * H;
            float *h = out + ((size_t)b * T + t) * H;
            for (int j = 0; j < H; j++) {
                float r = sigmoidf(xi[j] + xh[j]);
                float z = sigmoidf(xi[H + j] + xh[H + j]);
                float hn = xh[2 * H + j];
                float n = tanhf(xi[2 * H + j] + r * hn);
                float prev = hb ? hb[j] : 0.0f;
                h[j] = (1.0f - z) * n + z * prev;
                c[j] = r;
                c[H + j] = z;
                c[2 * H + j] = n;
                c[3 * H + j] = hn;
            }
        }
    }
}

void cmr_gru_backward(float *dinp, float *dh0, float *dw_ih, float *dw_hh,
                      float *db_ih, float *db_hh, float *scratch, const float *dout,
                      const float *out, const float *cache, const float *inp,
                      const float *h0, const float *w_ih, const float *w_hh,
                      const struct cmr_gru_dims *d)
{
    const int B = d->B, T = d->T, IN = d->IN, H = d->H, G = 3 * H;
    float *dgi = scratch;                               /* (B,T,3H) */
    float *dgh = scratch + (size_t)B * T * G;           /* (B,T,3H) */
    float *carry = scratch + (size_t)2 * B * T * G;     /* (B,H) */

    memset(carry, 0, sizeof(float) * (size_t)B * H);
    for (int t = T - 1; t >= 0; t--) {
        for (int b = 0; b < B; b++) {
            const size_t bt = (size_t)b * T + t;
            const float *c = cache + bt * 4 * H, *dy = dout + bt * H;
            const float *hp = t > 0 ? out + (bt - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            float *gi = dgi + bt * G, *gh = dgh + bt * G, *cr = carry + (size_t)b * H;
            for (int j = 0; j < H; j++) {
                float r = c[j], z = c[H + j], n = c[2 * H + j], hn = c[3 * H + j];
                float prev = hp ? hp[j] : 0.0f;
                float dh = dy[j] + cr[j];
                float dn_pre = dh * (1.0f - z) * (1.0f - n * n);
                float dz_pre = dh * (prev - n) * z * (1.0f - z);
                float dr_pre = dn_pre * hn * r * (1.0f - r);
                gi[j] = dr_pre;
                gi[H + j] = dz_pre;
                gi[2 * H + j] = dn_pre;
                gh[j] = dr_pre;
                gh[H + j] = dz_pre;
                gh[2 * H + j] = dn_pre * r;
                cr[j] = dh * z;
            }
        }
        /* carry (B,H) += dgh[:, t] (B,3H) . W_hh (3H,H) */
        cmr_sgemm(0, 0, B, H, G, 1.0f, dgh + (size_t)t * G, T * G, w_hh, H, 1.0f, carry, H);
    }
    if (dh0)
        for (size_t i = 0; i < (size_t)B * H; i++)
            dh0[i] += carry[i];

    if (db_ih || db_hh)
        for (size_t bt = 0; bt < (size_t)B * T; bt++)
            for (int j = 0; j < G; j++) {
                if (db_ih)
                    db_ih[j] += dgi[bt * G + j];
                if (db_hh)
                    db_hh[j] += dgh[bt * G + j];
            }
    /* dW_ih (3H,IN) += dgi^T (3H,BT) . inp (BT,IN) */
    if (dw_ih)
        cmr_sgemm(1, 0, G, IN, B * T, 1.0f, dgi, G, inp, IN, 1.0f, dw_ih, IN);
    /* dW_hh (3H,H) += sum over steps of dgh[:, t]^T . h_{t-1} */
    if (dw_hh) {
        if (T > 1)
            for (int b = 0; b < B; b++)
                cmr_sgemm(1, 0, G, H, T - 1, 1.0f, dgh + ((size_t)b * T + 1) * G, G,
                          out + (size_t)b * T * H, H, 1.0f, dw_hh, H);
        if (h0)
            cmr_sgemm(1, 0, G, H, B, 1.0f, dgh, T * G, h0, H, 1.0f, dw_hh, H);
    }
    /* dinp (BT,IN) += dgi (BT,3H) . W_ih (3H,IN) */
    if (dinp)
        cmr_sgemm(0, 0, B * T, IN, G, 1.0f, dgi, G, w_ih, IN, 1.0f, dinp, IN);
}

/* ---- the reference: plain loops in double, step by step ---- */

void cmr_gru_forward_naive(float *out, float *cache, const float *inp, const float *h0,
                           const float *w_ih, const float *w_hh, const float *b_ih,
                           const float *b_hh, const struct cmr_gru_dims *d)
{
    const int B = d->B, T = d->T, IN = d->IN, H = d->H;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const size_t bt = (size_t)b * T + t;
            const float *x = inp + bt * IN;
            const float *hp = t > 0 ? out + (bt - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            for (int j = 0; j < H; j++) {
                double g[3], q[3];
                for (int k = 0; k < 3; k++) {
                    const int row = k * H + j;
                    double si = b_ih[row], sh = b_hh[row];
                    for (int i = 0; i < IN; i++)
                        si += (double)w_ih[(size_t)row * IN + i] * x[i];
                    if (hp)
                        for (int i = 0; i < H; i++)
                            sh += (double)w_hh[(size_t)row * H + i] * hp[i];
                    g[k] = si;
                    q[k] = sh;
                }
                double r = 1.0 / (1.0 + exp(-(g[0] + q[0])));
                double z = 1.0 / (1.0 + exp(-(g[1] + q[1])));
                double n = tanh(g[2] + r * q[2]);
                /* h' is written after the whole row (hp may be read for every j) */
                float *c = cache + bt * 4 * H;
                c[j] = (float)r;
                c[H + j] = (float)z;
                c[2 * H + j] = (float)n;
                c[3 * H + j] = (float)q[2];
            }
            for (int j = 0; j < H; j++) {
                const float *c = cache + bt * 4 * H;
                double prev = hp ? hp[j] : 0.0;
                out[bt * H + j] = (float)((1.0 - c[H + j]) * c[2 * H + j] + c[H + j] * prev);
            }
        }
}

void cmr_gru_backward_naive(float *dinp, float *dh0, float *dw_ih, float *dw_hh,
                            float *db_ih, float *db_hh, const float *dout,
                            const float *out, const float *cache, const float *inp,
                            const float *h0, const float *w_ih, const float *w_hh,
                            const struct cmr_gru_dims *d)
{
    const int B = d->B, T = d->T, IN = d->IN, H = d->H;
    for (int b = 0; b < B; b++) {
        double carry[H > 0 ? H : 1], next[H > 0 ? H : 1];
        for (int j = 0; j < H; j++)
            carry[j] = 0;
        for (int t = T - 1; t >= 0; t--) {
            const size_t bt = (size_t)b * T + t;
            const float *c = cache + bt * 4 * H, *x = inp + bt * IN;
            const float *hp = t > 0 ? out + (bt - 1) * H : (h0 ? h0 + (size_t)b * H : NULL);
            for (int j = 0; j < H; j++)
                next[j] = 0;
            for (int j = 0; j < H; j++) {
                double r = c[j], z = c[H + j], n = c[2 * H + j], hn = c[3 * H + j];
                double prev = hp ? hp[j] : 0.0;
                double dh = dout[bt * H + j] + carry[j];
                double dn_pre = dh * (1 - z) * (1 - n * n);
                double dz_pre = dh * (prev - n) * z * (1 - z);
                double dr_pre = dn_pre * hn * r * (1 - r);
                double gi[3] = {dr_pre, dz_pre, dn_pre}, gh[3] = {dr_pre, dz_pre, dn_pre * r};
                next[j] += dh * z;
                for (int k = 0; k < 3; k++) {
                    const int row = k * H + j;
                    if (db_ih)
                        db_ih[row] += (float)gi[k];
                    if (db_hh)
                        db_hh[row] += (float)gh[k];
                    for (int i = 0; i < IN; i++) {
                        if (dw_ih)
                            dw_ih[(size_t)row * IN + i] += (float)(gi[k] * x[i]);
                        if (dinp)
                            dinp[bt * IN + i] += (float)(gi[k] * w_ih[(size_t)row * IN + i]);
                    }
                    for (int i = 0; i < H; i++) {
                        if (dw_hh && hp)
                            dw_hh[(size_t)row * H + i] += (float)(gh[k] * hp[i]);
                        next[i] += gh[k] * w_hh[(size_t)row * H + i];
                    }
                }
            }
            for (int j = 0; j < H; j++)
                carry[j] = next[j];
        }
        if (dh0)
            for (int j = 0; j < H; j++)
                dh0[(size_t)b * H + j] += (float)carry[j];
    }
}
