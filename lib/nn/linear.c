/* linear: out = inp W^T + b, PyTorch's weight layout (OUT, IN). See nn.h. */
#include "nn/nn.h"

void cmr_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                        int N, int IN, int OUT)
{
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++)
                out[(size_t)n * OUT + o] = bias[o];
    /* out (N,OUT) (+)= inp (N,IN) . W^T (IN,OUT) */
    cmr_sgemm(0, 1, N, OUT, IN, 1.0f, inp, IN, weight, IN, bias ? 1.0f : 0.0f, out, OUT);
}

size_t cmr_linear_fixed_scratch_floats(int IN, int OUT) { return cmr_gemm_fixed_pack_floats(OUT, IN); }

void cmr_linear_forward_fixed(float *out, float *scratch, const float *inp, const float *weight,
                              const float *bias, int N, int IN, int OUT)
{
    cmr_gemm_fixed_pack(scratch, weight, IN, OUT, IN);
    cmr_gemm_fixed(N, OUT, IN, inp, IN, scratch, out, OUT);
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++)
                out[(size_t)n * OUT + o] += bias[o];
}

void cmr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int N, int IN, int OUT)
{
    if (dbias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++)
                dbias[o] += dout[(size_t)n * OUT + o];
    /* dW (OUT,IN) += dout^T (OUT,N) . inp (N,IN) */
    if (dweight)
        cmr_sgemm(1, 0, OUT, IN, N, 1.0f, dout, OUT, inp, IN, 1.0f, dweight, IN);
    /* dinp (N,IN) += dout (N,OUT) . W (OUT,IN) */
    if (dinp)
        cmr_sgemm(0, 0, N, IN, OUT, 1.0f, dout, OUT, weight, IN, 1.0f, dinp, IN);
}

void cmr_linear_forward_naive(float *out, const float *inp, const float *weight,
                              const float *bias, int N, int IN, int OUT)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < IN; i++)
                s += (double)inp[(size_t)n * IN + i] * weight[(size_t)o * IN + i];
            out[(size_t)n * OUT + o] = (float)s;
        }
}

void cmr_linear_backward_naive(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int N, int IN, int OUT)
{
    for (int o = 0; o < OUT; o++) {
        if (dbias) {
            double s = 0;
            for (int n = 0; n < N; n++)
                s += dout[(size_t)n * OUT + o];
            dbias[o] += (float)s;
        }
        if (dweight)
            for (int i = 0; i < IN; i++) {
                double s = 0;
                for (int n = 0; n < N; n++)
                    s += (double)dout[(size_t)n * OUT + o] * inp[(size_t)n * IN + i];
                dweight[(size_t)o * IN + i] += (float)s;
            }
    }
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IN; i++) {
                double s = 0;
                for (int o = 0; o < OUT; o++)
                    s += (double)dout[(size_t)n * OUT + o] * weight[(size_t)o * IN + i];
                dinp[(size_t)n * IN + i] += (float)s;
            }
}
