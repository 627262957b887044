/* InfoNCE: against a direct double-precision evaluation, finite-difference
 * gradients (anchors and positives, two temperatures), accuracy helper, and the
 * PyTorch fixture tests/ref/nn-infonce.bin (F.cross_entropy(a @ p.t() / tau, arange)). */
#include "nn-test.h"

/* -mean_i log softmax(a_i . p_j / tau)[i], all in double */
static double infonce_ref(const float *a, const float *p, int N, int D, double tau)
{
    double loss = 0;
    for (int i = 0; i < N; i++) {
        double s[64], mx = -INFINITY, sum = 0;
        for (int j = 0; j < N; j++) {
            s[j] = 0;
            for (int c = 0; c < D; c++)
                s[j] += (double)a[i * D + c] * p[j * D + c];
            s[j] /= tau;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < N; j++)
            sum += exp(s[j] - mx);
        loss += log(sum) + mx - s[i];
    }
    return loss / N;
}

struct nce_ctx {
    int N, D;
    float tau;
    float *a, *p, *probs;
};

/* the finite differences use the double evaluation (checked equal to the
 * float forward above): the float loss's rounding would be most of the signal */
static double nce_loss(void *q)
{
    struct nce_ctx *c = q;
    return infonce_ref(c->a, c->p, c->N, c->D, c->tau);
}

static void test_gradcheck(struct cmr_rng *r, int N, int D, float tau)
{
    char label[96];
    struct nce_ctx c = {N, D, tau, fbuf(N * D), fbuf(N * D), fbuf(N * N)};
    fill_normal(r, c.a, (size_t)N * D, 1);
    fill_normal(r, c.p, (size_t)N * D, 1);
    for (int i = 0; i < N * D; i++)
        c.p[i] += 0.5f * c.a[i];
    float loss = cmr_infonce_forward(c.probs, c.a, c.p, N, D, tau);
    double want = infonce_ref(c.a, c.p, N, D, tau);
    ok(fabs(loss - want) <= 1e-5 * (1 + fabs(want)),
       "infonce N%d D%d tau %g: loss %.7f = double reference %.7f (rel 1e-5)", N, D, tau, loss, want);
    float *da = fbuf(N * D), *dp = fbuf(N * D);
    cmr_infonce_backward(da, dp, c.probs, c.a, c.p, N, D, tau, 1.0f);
    snprintf(label, sizeof label, "infonce N%d D%d tau %g da", N, D, tau);
    gradcheck(label, nce_loss, &c, c.a, da, (size_t)N * D, NULL);
    snprintf(label, sizeof label, "infonce N%d D%d tau %g dp", N, D, tau);
    gradcheck(label, nce_loss, &c, c.p, dp, (size_t)N * D, NULL);
    /* dloss scales, and backward accumulates */
    float *da2 = fdup(da, N * D);
    cmr_infonce_forward(c.probs, c.a, c.p, N, D, tau);
    cmr_infonce_backward(da2, NULL, c.probs, c.a, c.p, N, D, tau, 0.5f);
    for (int i = 0; i < N * D; i++)
        da[i] *= 1.5f;
    snprintf(label, sizeof label, "infonce N%d backward accumulates, scaled by dloss", N);
    check_close(label, da2, da, (size_t)N * D, 1e-6, 1e-5);
    free(c.a); free(c.p); free(c.probs); free(da); free(dp); free(da2);
}

static void test_torch(void)
{
    struct ref_file rf;
    ref_load(&rf, "nn-infonce.bin");
    static const struct { const char *tag; int N, D; } cases[] = {{"a", 6, 8}, {"b", 5, 3}};
    char name[32], label[96];
    for (int k = 0; k < 2; k++) {
        const char *t = cases[k].tag;
        int N = cases[k].N, D = cases[k].D;
#define REF(s_, cnt) (snprintf(name, sizeof name, "%s.%s", t, s_), ref_get(&rf, name, cnt))
        float *a = REF("a", N * D), *p = REF("p", N * D), tau = REF("tau", 1)[0];
        float *probs = fbuf(N * N), *da = fbuf(N * D), *dp = fbuf(N * D);
        float loss = cmr_infonce_forward(probs, a, p, N, D, tau);
        snprintf(label, sizeof label, "torch info_nce N%d D%d tau %g loss", N, D, tau);
        check_close(label, &loss, REF("loss", 1), 1, 1e-6, 1e-6);
        snprintf(label, sizeof label, "torch info_nce N%d softmax probs", N);
        check_close(label, probs, REF("probs", N * N), N * N, 1e-6, 1e-5);
        int correct = cmr_infonce_correct(probs, N);
        ok(correct == (int)REF("correct", 1)[0], "contrastive accuracy %d/%d as torch", correct, N);
        cmr_infonce_backward(da, dp, probs, a, p, N, D, tau, 1.0f);
        snprintf(label, sizeof label, "torch info_nce N%d backward da", N);
        check_close(label, da, REF("da", N * D), N * D, 1e-6, 1e-5);
        snprintf(label, sizeof label, "torch info_nce N%d backward dp", N);
        check_close(label, dp, REF("dp", N * D), N * D, 1e-6, 1e-5);
        free(probs); free(da); free(dp);
#undef REF
    }
    ref_free(&rf);
}

static void test_accuracy(void)
{
    float probs[9] = {0.5f, 0.3f, 0.2f, 0.6f, 0.2f, 0.2f, 0.1f, 0.1f, 0.8f};
    ok(cmr_infonce_correct(probs, 3) == 2, "accuracy: rows 0 and 2 right, row 1 wrong");
    /* a batch of one: loss 0, gradient 0 */
    float a[2] = {1, 2}, p[2] = {3, 4}, pr, da[2] = {0}, dp[2] = {0};
    float l = cmr_infonce_forward(&pr, a, p, 1, 2, 1.0f);
    cmr_infonce_backward(da, dp, &pr, a, p, 1, 2, 1.0f, 1.0f);
    ok(l == 0 && pr == 1 && da[0] == 0 && dp[1] == 0, "N = 1: loss 0, probs 1, no gradient");
    /* huge logits do not overflow (max subtracted) */
    float big_a[4] = {100, 0, 0, 100}, big_p[4] = {100, 0, 0, 100}, pb[4];
    l = cmr_infonce_forward(pb, big_a, big_p, 2, 2, 0.1f);
    ok(isfinite(l) && l >= 0 && l < 1e-6f, "logits of 1e5: finite loss %g", l);
}

int main(void)
{
    tap_plan_none();
    struct cmr_rng r;
    cmr_rng_seed(&r, 13);
    test_gradcheck(&r, 4, 5, 1.0f);
    test_gradcheck(&r, 16, 8, 0.5f);
    test_gradcheck(&r, 3, 2, 0.1f);
    test_torch();
    test_accuracy();
    gc_summary();
    return tap_done();
}
