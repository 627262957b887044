/* relu, elementwise. See nn.h. Branch-free selects: a branch on the sign of
 * activations is mispredicted half the time. */
#include "nn/nn.h"
#include "nn/vec.h"

void cmr_relu_forward(float *out, const float *inp, size_t n)
{
    /* out = x < 0 ? 0 : x, so a NaN stays NaN (torch.relu) */
    const v4f zero = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f x = v4f_load(inp + i);
        v4f_store(out + i, v4f_select(x < zero, zero, x));
    }
    for (; i < n; i++)
        out[i] = inp[i] < 0.0f ? 0.0f : inp[i];
}

void cmr_relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    /* dinp += out > 0 ? dout : 0 */
    const v4f zero = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f o = v4f_load(out + i), g = v4f_load(dout + i);
        v4f_store(dinp + i, v4f_load(dinp + i) + v4f_select(o > zero, g, zero));
    }
    for (; i < n; i++)
        dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}
