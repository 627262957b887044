/* Adam: three steps against torch.optim.Adam (tests/ref/nn-adam.bin), with the
 * defaults and with lr 0.05 / weight_decay 0.01, plus the first step by hand. */
#include "nn-test.h"

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-adam.bin");
    const size_t n = 37;
    char name[32], label[96];
    for (int k = 0; k < 2; k++) {
        const char *t = k ? "w" : "d";
        struct cmr_adam_cfg cfg = cmr_adam_cfg_default();
        if (k) {
            cfg.lr = 0.05;
            cfg.weight_decay = 0.01;
        }
#define REF(s_) (snprintf(name, sizeof name, "%s.%s", t, s_), ref_get(&rf, name, n))
        float *p = fdup(REF("p0"), n), *m = fbuf(n), *v = fbuf(n);
        for (int step = 0; step < 3; step++) {
            char g[8], want[8];
            snprintf(g, sizeof g, "g%d", step);
            snprintf(want, sizeof want, "p%d", step + 1);
            cmr_adam_update(p, REF(g), m, v, n, &cfg, step + 1);
            snprintf(label, sizeof label, "torch Adam(lr %g, weight_decay %g) step %d params", cfg.lr,
                     cfg.weight_decay, step + 1);
            check_close(label, p, REF(want), n, 1e-7, 1e-6);
        }
        snprintf(label, sizeof label, "torch Adam %s exp_avg after 3 steps", t);
        check_close(label, m, REF("m"), n, 1e-8, 1e-6);
        snprintf(label, sizeof label, "torch Adam %s exp_avg_sq after 3 steps", t);
        check_close(label, v, REF("v"), n, 1e-10, 1e-6);
        free(p); free(m); free(v);
#undef REF
    }
    ref_free(&rf);
}

static void test_first_step(void)
{
    /* step 1: m_hat = g, v_hat = g^2, so the update is -lr * g / (|g| + eps) ~ -lr * sign(g) */
    struct cmr_adam_cfg cfg = cmr_adam_cfg_default();
    float p[3] = {1, 1, 1}, g[3] = {2, -0.5f, 0}, m[3] = {0}, v[3] = {0};
    cmr_adam_update(p, g, m, v, 3, &cfg, 1);
    ok(fabsf(p[0] - 0.999f) < 1e-6f && fabsf(p[1] - 1.001f) < 1e-6f && p[2] == 1,
       "first step moves each parameter by lr against its gradient's sign (%.7f %.7f %.7f)", p[0],
       p[1], p[2]);
}

int main(void)
{
    tap_plan_none();
    struct cmr_adam_cfg c = cmr_adam_cfg_default();
    ok(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.weight_decay == 0,
       "defaults: lr 1e-3, betas 0.9/0.999, eps 1e-8, no weight decay (PAPER.md section 6)");
    test_first_step();
    test_torch();
    return tap_done();
}
