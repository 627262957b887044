/* relu, elementwise. See nn.h. */
#include "nn/nn.h"

void cmr_relu_forward(float *out, const float *inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : (inp[i] != inp[i] ? inp[i] : 0.0f);
}

void cmr_relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}
