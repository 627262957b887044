/* Adam, torch.optim.Adam's single-tensor path (torch/optim/adam.py,
 * _single_tensor_adam, amsgrad=False). See nn.h. */
#include <math.h>

#include "nn/nn.h"

struct cmr_adam_cfg cmr_adam_cfg_default(void)
{
    struct cmr_adam_cfg c = {1e-3, 0.9, 0.999, 1e-8, 0.0};
    return c;
}

void cmr_adam_update(float *param, const float *grad, float *m, float *v, size_t n,
                     const struct cmr_adam_cfg *cfg, long t)
{
    /* the scalars are Python floats (double) in PyTorch, rounded to float
     * when they meet a float32 tensor */
    const double bc1 = 1.0 - pow(cfg->beta1, (double)t);
    const double bc2 = 1.0 - pow(cfg->beta2, (double)t);
    const float step = (float)(cfg->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float w1 = (float)(1.0 - cfg->beta1), b2 = (float)cfg->beta2;
    const float w2 = (float)(1.0 - cfg->beta2);
    const float eps = (float)cfg->eps, wd = (float)cfg->weight_decay;
    for (size_t i = 0; i < n; i++) {
        float g = wd != 0.0f ? grad[i] + wd * param[i] : grad[i];
        m[i] += w1 * (g - m[i]);
        v[i] = v[i] * b2 + w2 * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        param[i] -= step * (m[i] / denom);
    }
}
