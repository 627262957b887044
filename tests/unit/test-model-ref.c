/* The three models against PyTorch (tests/ref/cmr_models.py) on fixed
 * weights: fixtures from tests/ref/make_refs_models.py.
 *
 * Small models (width 1/32, emb 16), per kind:
 *   - the PyTorch-written weights import (kind and width inferred from shapes
 *     for the encoder, read from __metadata__ for the others);
 *   - inference outputs (eval batch norm, input standardisation): normwise
 *     max relative error <= 1e-4 (also with 2 threads);
 *   - the training loss, within a bound from float32 rounding (emb_rel_error)
 *     and the loss's sensitivity to its logits (logit_scale); every parameter
 *     gradient (normwise per tensor <= 1e-4) and the running statistics after
 *     the training forward (<= 1e-5), num_batches_tracked exactly;
 *   - Adam: step 1 against cmr's Adam on PyTorch's gradient, within a bound
 *     from the measured gradient agreement; three steps: step 1's loss, and,
 *     for the encoder, the parameters within a bound from the learning rate,
 *     the number of steps and the measured gradient agreement (a parameter
 *     whose gradient is within round-off of zero, such as a conv bias before
 *     a training-mode batch norm, may step either way: up to 2 lr a step).
 * No bound is tuned to a machine: each says where it comes from, and they
 * hold under every OpenBLAS kernel family.
 * Full width (the paper's channels), per kind: cmr's seeded initialisation
 * with running statistics set by a formula; outputs from PyTorch on the
 * same weights (models-full.ref.safetensors): normwise <= 1e-4.
 *
 *   test-model-ref --write-full DIR   writes DIR/full-<kind>.safetensors for
 *                                     make_refs_models.py full DIR */
#include "model-test.h"

static const char *const kinds[] = {"encoder", "multi", "cpc"};
#define EVAL_SEED 11
#define TRAIN_SEED 12
#define FULL_SEED 5
#define FULL_INPUT_SEED 21

static struct cmr_model *import_small(const char *kind)
{
    char path[4096], name[128];
    struct cmr_import_opts o;
    struct cmr_error err = {0};
    snprintf(name, sizeof name, "models-%s.weights.safetensors", kind);
    mt_path(path, sizeof path, name);
    cmr_import_opts_init(&o);
    struct cmr_model *m = cmr_model_import(path, &o, &err);
    if (!m) {
        printf("Bail out! import %s: %s\n", path, err.msg);
        exit(99);
    }
    return m;
}


/* ---- tolerances from the arithmetic ---- */

#define U32 5.9604644775390625e-8 /* float32 unit roundoff, 2^-24 */

/* Relative error of an embedding from float32 rounding: each of the 5
 * blocks and the linear layer adds a K-term dot product whose rounding
 * error is, root-sum-square, sqrt(K) u relative to the sum of the absolute
 * terms (Higham, Accuracy and Stability, 3.1 and 3.5); K = C * 25 for a
 * 5x5 convolution over C channels. */
static double emb_rel_error(const struct cmr_model_cfg *c)
{
    double e = 0;
    int cin = 1;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        e += sqrt(25.0 * cin) * U32;
        cin = c->widths[l];
    }
    return e + sqrt((double)(c->kind == CMR_MODEL_MULTI ? c->widths[0] * 48 : c->widths[4])) * U32;
}

/* The largest ||a|| ||p|| / tau over a loss's pairs, from the training
 * forward of a fresh copy (rows of every level; MelCPC: the encoder's z and
 * the predictors' outputs, whose norm is at most ||W_k||_F sqrt(H) + ||b_k||
 * as the GRU's state lies in (-1, 1)). */
static double logit_scale(const char *kind, const float *x, int n, float tau)
{
    struct cmr_error err = {0};
    struct cmr_model *m = import_small(kind);
    const struct cmr_model_cfg *c = &m->cfg;
    int D = c->kind == CMR_MODEL_CPC ? c->emb : cmr_model_out_dim(c), E = c->emb;
    float *y = FBUF((size_t)n * D);
    double amax = 0, pmax = 0;
    if (cmr_model_forward(m, x, n, 1, y, &err) != CMR_OK) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    for (size_t r = 0; r < (size_t)n * D / E; r++) {
        double s2 = 0;
        for (int j = 0; j < E; j++)
            s2 += (double)y[r * E + j] * y[r * E + j];
        amax = fmax(amax, sqrt(s2));
    }
    pmax = amax;
    if (c->kind == CMR_MODEL_CPC)
        for (int k = 0; k < c->k; k++) {
            double f2 = 0, b2 = 0;
            for (size_t i = 0; i < (size_t)E * c->hidden; i++)
                f2 += (double)m->p.pred_w[k][i] * m->p.pred_w[k][i];
            for (int i = 0; i < E; i++)
                b2 += (double)m->p.pred_b[k][i] * m->p.pred_b[k][i];
            pmax = fmax(pmax, sqrt(f2) * sqrt((double)c->hidden) + sqrt(b2));
        }
    free(y);
    cmr_model_free(m);
    return amax * pmax / tau;
}

/* Adam's step is lr m_hat / (sqrt(v_hat) + eps); by Cauchy-Schwarz
 * |m_hat / sqrt(v_hat)| <= R_t = sqrt(sum_s w_s^2 / q_s), w_s and q_s the
 * bias-corrected averaging weights of g_s in m_hat and v_hat at step t
 * (R_1 = 1, R_2 ~ R_3 ~ 1.001): no step moves a parameter by more than R_t lr. */
static double adam_ratio_bound(const struct cmr_adam_cfg *a, int t)
{
    double r = 0;
    for (int s = 1; s <= t; s++) {
        double w = (1 - a->beta1) * pow(a->beta1, t - s) / (1 - pow(a->beta1, t));
        double q = (1 - a->beta2) * pow(a->beta2, t - s) / (1 - pow(a->beta2, t));
        r += w * w / q;
    }
    return sqrt(r);
}

static void test_small(int ki)
{
    const char *kind = kinds[ki];
    char name[128];
    struct cmr_error err = {0};
    struct cmr_model *m = import_small(kind);
    const struct cmr_model_cfg *c = &m->cfg;
    snprintf(name, sizeof name, "models-%s.ref.safetensors", kind);
    struct cmr_safetensors *ref = mt_fixture(name);
    int E = c->emb, D = cmr_model_out_dim(c);

    diag("---- %s (width %g, channels %d %d %d %d %d, emb %d) ----", kind, c->width, c->widths[0],
         c->widths[1], c->widths[2], c->widths[3], c->widths[4], E);
    ok(c->kind == (enum cmr_model_kind)ki && c->widths[0] == 4 && c->widths[1] == 8 && c->widths[3] == 16 &&
           c->widths[4] == 16 && E == 16 && fabs(c->width - 1.0 / 32) < 1e-12,
       "%s: import infers kind, width and channels", kind);
    ok(fabsf(c->mel_mean - 0.8f) < 1e-7f && fabsf(c->mel_std - 0.6f) < 1e-7f,
       "%s: import reads cmr.mel_mean/cmr.mel_std", kind);
    if (ki == CMR_MODEL_CPC)
        ok(c->hidden == 16 && c->k == 2 && c->context == 4 && cmr_model_meta_get(m, "note") != NULL,
           "cpc: hidden 16, K 2, context 4, free-form metadata kept");

    /* inference */
    for (int threads = 1; threads <= 2; threads++) {
        cmr_model_set_threads(m, threads);
        if (ki == CMR_MODEL_CPC) {
            float *x = mt_segments(EVAL_SEED, 5), *z = FBUF(5 * E), *cs = FBUF(5 * c->hidden);
            float *wz = mt_get(ref, "eval.z", 5 * (size_t)E), *wc = mt_get(ref, "eval.out", 5 * (size_t)c->hidden);
            ok(cmr_model_forward(m, x, 5, 0, z, &err) == CMR_OK, "cpc: eval forward (%d threads)", threads);
            mt_close("cpc eval z", z, wz, 5 * (size_t)E, 1e-4);
            /* the GRU in two pieces, the state carried: the same as one pass */
            ok(cmr_model_gru_forward(m, z, NULL, 1, 2, 0, cs, &err) == CMR_OK &&
                   cmr_model_gru_forward(m, z + 2 * E, cs + c->hidden, 1, 3, 0, cs + 2 * c->hidden, &err) == CMR_OK,
               "cpc: GRU over the sequence in two pieces");
            mt_close("cpc eval GRU outputs", cs, wc, 5 * (size_t)c->hidden, 1e-4);
            free(x);
            free(z);
            free(cs);
            free(wz);
            free(wc);
        } else {
            float *x = mt_segments(EVAL_SEED, 3), *y = FBUF(3 * D), *w = mt_get(ref, "eval.out", 3 * (size_t)D);
            ok(cmr_model_forward(m, x, 3, 0, y, &err) == CMR_OK, "%s: eval forward (%d threads)", kind, threads);
            snprintf(name, sizeof name, "%s eval output (%d threads)", kind, threads);
            mt_close(name, y, w, 3 * (size_t)D, 1e-4);
            free(x);
            free(y);
            free(w);
        }
    }
    cmr_model_set_threads(m, 1);

    /* training: loss, gradients, running statistics */
    const struct cmr_safetensors_tensor *tt = cmr_safetensors_find(ref, "train.loss");
    float tau = (float)atof(cmr_safetensors_meta(ref, "tau") ? cmr_safetensors_meta(ref, "tau") : "1");
    int B = 3, n = ki == CMR_MODEL_CPC ? B * (c->context + c->k) : 2 * B;
    float *x = mt_segments(TRAIN_SEED, n), want_loss;
    double loss = 0;
    cmr_safetensors_get(ref, tt, &want_loss);
    ok(cmr_model_zero_grad(m) == CMR_OK && cmr_model_loss(m, x, B, tau, 1, &loss, NULL, &err) == CMR_OK,
       "%s: training loss and backward", kind);
    /* InfoNCE has sum_ij |dL/ds_ij| <= 2 per loss term (a softmax row and its
     * target, over B rows / B), and |ds_ij| <= 2 eps ||a|| ||p|| / tau for
     * embeddings with relative error eps (emb_rel_error): |dL| <= 4 eps S */
    double eps_emb = emb_rel_error(c), S = logit_scale(kind, x, n, tau), ltol = 4 * eps_emb * S;
    ok(fabs(loss - want_loss) <= ltol, "%s: loss %.7f, PyTorch %.7f (|diff| %.2e, bound 4 eps S = %.2e, eps %.2e, S %.3g)",
       kind, loss, (double)want_loss, fabs(loss - want_loss), ltol, eps_emb, S);
    double worst = 0, wscale = 1;
    int bad = 0, nbad_stats = 0;
    float *tgrad[256] = {0};   /* PyTorch's gradient per parameter tensor */
    double delta[256] = {0};   /* max |cmr - PyTorch| of each gradient */
    if (m->n_tensors > 256) {
        printf("Bail out! %d tensors\n", m->n_tensors);
        exit(99);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *t = &m->tensors[i];
        char full[96], rn[128];
        cmr_model_tensor_name(m, i, full, sizeof full);
        if (t->role == CMR_TENSOR_PARAM) {
            snprintf(rn, sizeof rn, "grad.%s", full);
            float *w = mt_get(ref, rn, t->numel), *g = m->grads + t->offset;
            double scale = mt_maxabs(w, t->numel), md = 0;
            for (size_t k = 0; k < t->numel; k++)
                md = fmax(md, fabs((double)g[k] - w[k]));
            double rel = md / (scale > 0 ? scale : 1);
            delta[i] = md;
            /* a conv bias before a training-mode batch norm has a zero true
             * gradient: both sides hold round-off, judged against the scale of
             * its conv weight's gradient */
            if (strstr(full, "conv.bias"))
                rel = md / wscale;
            else
                wscale = scale > 0 ? scale : 1;
            /* backward is a few more dot products per element than the
             * forward (emb_rel_error ~ 1e-5 here): 1e-4 normwise leaves 10x */
            if (!(rel <= 1e-4)) {
                bad++;
                diag("%s: normwise relative error %.3e (max |grad| %.3e)", rn, rel, scale);
            }
            worst = fmax(worst, rel);
            tgrad[i] = w;
        } else {
            snprintf(rn, sizeof rn, "stat.%s", full);
            float *w = mt_get(ref, rn, t->numel), *g = FBUF(t->numel);
            cmr_model_tensor_get(m, i, g);
            for (size_t k = 0; k < t->numel; k++)
                if (!(fabs((double)g[k] - w[k]) <= 1e-5 * (1 + fabs(w[k]))))
                    nbad_stats++;
            free(w);
            free(g);
        }
    }
    ok(!bad, "%s: every parameter gradient within 1e-4 (normwise per tensor; worst %.3e)", kind, worst);
    ok(!nbad_stats, "%s: running statistics and num_batches_tracked after the training forward", kind);

    /* Adam, step 1: from the same weights, cmr's step on cmr's gradient
     * against cmr's Adam (checked against torch.optim.Adam on the same
     * gradients in test-nn-adam) on PyTorch's gradient. The step is
     * lr g / (|g| + eps): two gradients within delta (the tensor's measured
     * max difference above) give steps within 2 lr min(1, delta / |g|),
     * plus the rounding of theta - step on both sides. */
    const struct cmr_adam_cfg acfg = cmr_adam_cfg_default();
    cmr_model_free(m);
    m = import_small(kind);
    double l1 = 0;
    int s1_ok = cmr_model_zero_grad(m) == CMR_OK && cmr_model_loss(m, x, B, tau, 1, &l1, NULL, &err) == CMR_OK;
    float *theta0 = FBUF(m->n_params);
    memcpy(theta0, m->params, sizeof(float) * m->n_params);
    s1_ok &= cmr_model_update(m, &err) == CMR_OK;
    int s1_bad = 0;
    double s1_worst = 0;
    for (int i = 0; i < m->n_tensors && s1_ok; i++) {
        const struct cmr_tensor *t = &m->tensors[i];
        if (t->role != CMR_TENSOR_PARAM)
            continue;
        float *p = FBUF(t->numel), *am = FBUF(t->numel), *av = FBUF(t->numel);
        memcpy(p, theta0 + t->offset, sizeof(float) * t->numel);
        cmr_adam_update(p, tgrad[i], am, av, t->numel, &acfg, 1);
        for (size_t k = 0; k < t->numel; k++) {
            double g = fabs((double)tgrad[i][k]);
            double tol = 2 * acfg.lr * fmin(1, delta[i] / (g > 0 ? g : 1e-300)) + 4 * U32 * (fabs((double)p[k]) + acfg.lr);
            double d = fabs((double)m->params[t->offset + k] - p[k]);
            s1_worst = fmax(s1_worst, d / tol);
            s1_bad += !(d <= tol);
        }
        free(p);
        free(am);
        free(av);
    }
    ok(s1_ok && !s1_bad, "%s: Adam step 1 within 2 lr min(1, delta/|g|) of the step on PyTorch's gradient (worst %.2f of the bound)",
       kind, s1_worst);

    /* three Adam steps from the initial weights */
    cmr_model_free(m);
    m = import_small(kind);
    float *wl = mt_get(ref, "adam.loss", 3);
    int adam_ok = 1;
    for (int s = 0; s < 3; s++) {
        double l = 0;
        adam_ok &= cmr_model_zero_grad(m) == CMR_OK && cmr_model_loss(m, x, B, tau, 1, &l, NULL, &err) == CMR_OK &&
                   cmr_model_update(m, &err) == CMR_OK;
        diag("%s: Adam step %d loss %.6f, PyTorch %.6f", kind, s + 1, l, (double)wl[s]);
        /* step 1's loss is the loss checked above; the later ones depend on
         * weights that may already differ by up to 2 R_t lr (a sign flip of
         * a gradient within delta of zero), which at lr 1e-3 can move the
         * loss by whole units (this fixture's goes 2 -> 24): compared
         * through the parameters below, not here */
        if (s == 0)
            adam_ok &= fabs(l - wl[s]) <= ltol;
    }
    ok(adam_ok && m->train.step == 3 && m->train.adam_t == 3, "%s: three Adam steps, step 1's loss within the bound", kind);
    if (ki == CMR_MODEL_ENCODER) {
        int pbad = 0;
        const double r2 = adam_ratio_bound(&acfg, 2), r3 = adam_ratio_bound(&acfg, 3);
        for (int i = 0; i < m->n_tensors; i++) {
            const struct cmr_tensor *t = &m->tensors[i];
            char rn[128];
            if (t->role != CMR_TENSOR_PARAM)
                continue;
            snprintf(rn, sizeof rn, "adam.%s", t->name);
            float *w = mt_get(ref, rn, t->numel);
            int nb = 0;
            double worst3 = 0;
            for (size_t k = 0; k < t->numel; k++) {
                /* step 1 as above, then steps 2 and 3 each within 2 R_t lr
                 * (adam_ratio_bound; their gradients are not measured) */
                double g = fabs((double)tgrad[i][k]);
                double tol = 2 * acfg.lr * fmin(1, delta[i] / (g > 0 ? g : 1e-300)) +
                             2 * acfg.lr * (r2 + r3) + 6 * U32 * fabs((double)w[k]);
                double d = fabs((double)m->params[t->offset + k] - w[k]);
                worst3 = fmax(worst3, d / tol);
                nb += !(d <= tol);
            }
            if (nb)
                diag("adam.%s: %d of %zu values outside the bound (worst %.2f of it)", t->name, nb, t->numel, worst3);
            pbad += nb > 0;
            free(w);
        }
        ok(!pbad, "encoder: parameters after three Adam steps within the lr/steps/gradient bound");
    }
    for (int i = 0; i < m->n_tensors; i++)
        free(tgrad[i]);
    free(theta0);
    free(wl);
    free(x);
    cmr_safetensors_free(ref);
    cmr_model_free(m);
}

/* ---- full width ---- */

static struct cmr_model *full_model(int ki)
{
    struct cmr_model_cfg cfg;
    struct cmr_error err = {0};
    cfg = cmr_model_cfg_default((enum cmr_model_kind)ki, 1.0);
    cfg.mel_mean = 0.25f;
    cfg.mel_std = 0.75f;
    struct cmr_model *m = cmr_model_new(&cfg, &err);
    if (!m) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    cmr_model_init(m, FULL_SEED + (uint64_t)ki);
    /* running statistics and batch-norm affine parameters away from (0, 1, 1, 0) */
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++)
        for (int ch = 0; ch < cfg.widths[l]; ch++) {
            m->s.mean[l][ch] = 0.02f * (float)(ch % 7 - 3);
            m->s.var[l][ch] = 0.6f + 0.1f * (float)(ch % 5);
            m->p.blk[l].bn_w[ch] = 0.9f + 0.05f * (float)(ch % 4);
            m->p.blk[l].bn_b[ch] = 0.01f * (float)(ch % 3);
        }
    return m;
}

static int write_full(const char *dir)
{
    for (int ki = 0; ki < 3; ki++) {
        char path[4096];
        struct cmr_error err = {0};
        struct cmr_model *m = full_model(ki);
        snprintf(path, sizeof path, "%s/full-%s.safetensors", dir, kinds[ki]);
        if (cmr_model_export(m, path, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        fprintf(stderr, "wrote %s\n", path);
        cmr_model_free(m);
    }
    return 0;
}

static void test_full(void)
{
    struct cmr_safetensors *ref = mt_fixture("models-full.ref.safetensors");
    for (int ki = 0; ki < 3; ki++) {
        struct cmr_error err = {0};
        struct cmr_model *m = full_model(ki);
        const struct cmr_model_cfg *c = &m->cfg;
        char name[64];
        snprintf(name, sizeof name, "%s.out", kinds[ki]);
        if (ki == CMR_MODEL_CPC) {
            float *x = mt_segments(FULL_INPUT_SEED, 3), *z = FBUF(3 * c->emb), *cs = FBUF(3 * c->hidden);
            float *w = mt_get(ref, name, 3 * (size_t)c->hidden);
            ok(cmr_model_forward(m, x, 3, 0, z, &err) == CMR_OK &&
                   cmr_model_gru_forward(m, z, NULL, 1, 3, 0, cs, &err) == CMR_OK,
               "cpc, full width: forward and GRU");
            mt_close("cpc full-width GRU outputs", cs, w, 3 * (size_t)c->hidden, 1e-4);
            free(x);
            free(z);
            free(cs);
            free(w);
        } else {
            int D = cmr_model_out_dim(c);
            float *x = mt_segments(FULL_INPUT_SEED, 2), *y = FBUF(2 * D), *w = mt_get(ref, name, 2 * (size_t)D);
            ok(cmr_model_forward(m, x, 2, 0, y, &err) == CMR_OK, "%s, full width: forward", kinds[ki]);
            snprintf(name, sizeof name, "%s full-width output", kinds[ki]);
            mt_close(name, y, w, 2 * (size_t)D, 1e-4);
            free(x);
            free(y);
            free(w);
        }
        cmr_model_free(m);
    }
    cmr_safetensors_free(ref);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-full"))
        return write_full(argv[2]);
    tap_plan_none();
    cmr_nn_set_threads(1);
    for (int ki = 0; ki < 3; ki++)
        test_small(ki);
    test_full();
    return tap_done();
}
