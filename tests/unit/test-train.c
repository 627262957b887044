/* lib/train: configuration checks, the plateau schedule against PyTorch's
 * ReduceLROnPlateau (tests/ref/train-plateau.tsv), batching (pairs reordered
 * to anchors then positives, short batches dropped), epoch accounting, the
 * divergence checks (the parameters stay as they were), learning on
 * synthetic pairs, and checkpoints: a trainer restored from a file continues
 * bit for bit as the one that wrote it. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "tap.h"
#include "train.h"
#include "util/rng.h"


static char tmpdir[] = "/tmp/cmr-test-train-XXXXXX";

static struct cmr_model *tiny(enum cmr_model_kind kind, uint64_t seed)
{
    struct cmr_model_cfg c;
    struct cmr_error err = {0};
    c = cmr_model_cfg_default(kind, 0.0625);
    if (kind == CMR_MODEL_CPC) {
        c.hidden = 16;
        c.context = 2;
        c.k = 1;
    }
    struct cmr_model *m = cmr_model_new(&c, &err);
    if (!m) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    cmr_model_init(m, seed);
    return m;
}

/* n examples of `rows` rows: example i is track (i % tracks)'s profile plus noise */
static float *examples(int n, int rows, int tracks, uint64_t seed)
{
    float *x = malloc((size_t)n * rows * CMR_MODEL_SEG * sizeof *x);
    struct cmr_rng r;
    cmr_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int t = i % tracks;
        for (int row = 0; row < rows; row++) {
            float *d = x + ((size_t)i * rows + row) * CMR_MODEL_SEG;
            for (size_t k = 0; k < CMR_MODEL_SEG; k++) {
                int f = (int)(k % CMR_MODEL_F);
                d[k] = (float)(0.5 + 0.3 * sin(0.2 * f * (t + 1) + t) + 0.1 * cmr_rng_normal(&r));
            }
        }
    }
    return x;
}

static void test_cfg(void)
{
    struct cmr_train_cfg c;
    struct cmr_error err = {0};
    c = cmr_train_cfg_default();
    ok(c.batch == 16 && c.tau == 1 && c.lr == 1e-3 && c.patience == 5 && c.factor == 0.2 && c.threshold == 1e-4 &&
           c.max_loss == 1e4,
       "defaults: batch 16, temperature 1, lr 1e-3, patience 5, factor 0.2, threshold 1e-4, max loss 1e4");
    ok(cmr_train_cfg_check(&c, &err) == CMR_OK, "defaults pass");
    c.batch = 1;
    ok(cmr_train_cfg_check(&c, &err) == CMR_EINVAL, "batch 1 refused: %s", err.msg);
    c = cmr_train_cfg_default();
    c.tau = 0;
    ok(cmr_train_cfg_check(&c, &err) == CMR_EINVAL, "temperature 0 refused: %s", err.msg);
    c = cmr_train_cfg_default();
    c.lr = NAN;
    ok(cmr_train_cfg_check(&c, &err) == CMR_EINVAL, "lr NaN refused: %s", err.msg);
    c = cmr_train_cfg_default();
    c.factor = 1.5;
    ok(cmr_train_cfg_check(&c, &err) == CMR_EINVAL, "factor 1.5 refused: %s", err.msg);
    c = cmr_train_cfg_default();
    c.patience = -1;
    ok(cmr_train_cfg_check(&c, &err) == CMR_EINVAL, "patience -1 refused: %s", err.msg);

    struct cmr_model *m = tiny(CMR_MODEL_ENCODER, 1);
    c = cmr_train_cfg_default();
    ok(cmr_train_new(m, &c, 3, &err) == NULL && err.code == CMR_EINVAL, "encoder with 3-row examples refused: %s",
       err.msg);
    c.batch = 0;
    ok(cmr_train_new(m, &c, 2, &err) == NULL && err.code == CMR_EINVAL, "trainer with batch 0 refused");
    cmr_model_free(m);
    m = tiny(CMR_MODEL_CPC, 1);
    c = cmr_train_cfg_default();
    ok(cmr_train_new(m, &c, 2, &err) == NULL, "cpc (context 2, K 1) with 2-row examples refused: %s", err.msg);
    struct cmr_train *t = cmr_train_new(m, &c, 3, &err);
    ok(t && t->levels == 1 && m->train.lr == 1e-3, "cpc with 3-row examples accepted");
    cmr_train_free(t);
    cmr_train_free(NULL);
    cmr_model_free(m);
}

static void test_plateau(void)
{
    char path[1024], line[256];
    const char *src = getenv("CMR_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/ref/train-plateau.tsv", src ? src : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        ok(0, "cannot open %s (regenerate with tests/ref/make_refs_train.py)", path);
        return;
    }
    int cur = -1, rows = 0, bad = 0, first_bad = -1;
    struct cmr_train_state st;
    fgets(line, sizeof line, f);
    while (fgets(line, sizeof line, f)) {
        int c, patience, epoch;
        double factor, loss, want;
        if (sscanf(line, "%d %d %lf %d %lf %lf", &c, &patience, &factor, &epoch, &loss, &want) != 6)
            continue;
        if (c != cur) {
            memset(&st, 0, sizeof st);
            st.lr = 1e-3;
            st.best_loss = INFINITY;
            cur = c;
        }
        cmr_train_plateau_step(&st, loss, patience, factor, 1e-4);
        rows++;
        if (fabs(st.lr - want) > 1e-15 * want) {
            if (!bad++)
                first_bad = rows;
            diag("case %d epoch %d loss %g: lr %.17g, PyTorch %.17g", c, epoch, loss, st.lr, want);
        }
    }
    fclose(f);
    ok(rows == 120 && !bad, "plateau schedule = ReduceLROnPlateau on %d epochs of 3 cases (first mismatch %d)", rows,
       first_bad);
    /* patience 5: the rate drops at the 6th epoch in a row without improvement */
    memset(&st, 0, sizeof st);
    st.lr = 1;
    st.best_loss = INFINITY;
    int dropped_at = -1;
    double losses[] = {3, 2, 2, 2, 2, 2, 2, 2};
    for (int e = 0; e < 8; e++)
        if (cmr_train_plateau_step(&st, losses[e], 5, 0.2, 1e-4) && dropped_at < 0)
            dropped_at = e;
    ok(dropped_at == 7 && fabs(st.lr - 0.2) < 1e-15, "patience 5: lr x0.2 at the 6th flat epoch (epoch %d)",
       dropped_at);
}

static int same_params(const struct cmr_model *a, const struct cmr_model *b)
{
    return a->n_params == b->n_params && !memcmp(a->params, b->params, a->n_params * sizeof(float)) &&
           !memcmp(a->stats, b->stats, a->n_stats * sizeof(float));
}

static void test_batching(void)
{
    struct cmr_error err = {0};
    struct cmr_train_cfg c;
    c = cmr_train_cfg_default();
    c.batch = 4;
    float *x = examples(4, 2, 4, 7);

    /* the trainer's step = cmr_model_loss on anchors then positives + one Adam step */
    struct cmr_model *m = tiny(CMR_MODEL_ENCODER, 2), *ref = tiny(CMR_MODEL_ENCODER, 2);
    struct cmr_train *t = cmr_train_new(m, &c, 2, &err);
    int full = 0;
    for (int i = 0; i < 4; i++)
        full = cmr_train_add(t, x + (size_t)i * 2 * CMR_MODEL_SEG);
    ok(full == 1 && t->n == 4, "the 4th example fills a batch of 4");
    struct cmr_train_result s;
    int rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_OK && s.trained && s.n == 4 && s.total == 4 && t->n == 0 && t->consumed == 4 && m->train.step == 1,
       "step: trained on 4, consumed 4, step 1 (%s)", rc ? err.msg : "ok");
    float *xr = malloc(8 * CMR_MODEL_SEG * sizeof *xr);
    for (int i = 0; i < 4; i++) {
        memcpy(xr + i * CMR_MODEL_SEG, x + (size_t)(2 * i) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
        memcpy(xr + (4 + i) * CMR_MODEL_SEG, x + (size_t)(2 * i + 1) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
    }
    double loss;
    int correct;
    cmr_model_zero_grad(ref);
    cmr_model_loss(ref, xr, 4, 1.0f, 1, &loss, &correct, &err);
    cmr_model_update(ref, &err);
    ok(loss == s.loss && correct == s.correct && same_params(m, ref),
       "same loss (%g), accuracy and parameters as cmr_model_loss on anchors then positives", s.loss);

    /* a short batch: 3 trained, 1 dropped */
    for (int i = 0; i < 3; i++)
        cmr_train_add(t, x + (size_t)i * 2 * CMR_MODEL_SEG);
    rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_OK && s.trained && s.n == 3 && t->consumed == 7, "a short batch of 3 is trained on");
    cmr_train_add(t, x);
    struct cmr_model *before = tiny(CMR_MODEL_ENCODER, 2);
    memcpy(before->params, m->params, m->n_params * sizeof(float));
    memcpy(before->stats, m->stats, m->n_stats * sizeof(float));
    rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_OK && !s.trained && s.n == 1 && t->consumed == 8 && t->ep_dropped == 1 && m->train.step == 2 &&
           same_params(m, before),
       "a batch of 1 is dropped and counted, nothing trained");
    rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_OK && s.n == 0 && !s.trained, "an empty batch is a no-op");

    /* epochs */
    ok(!cmr_train_epoch_changes(t, 5), "no epoch in progress: no change");
    cmr_train_begin_epoch(t, 0);
    ok(!cmr_train_epoch_changes(t, 0) && cmr_train_epoch_changes(t, 1), "epoch 0 in progress: 1 is a change");
    t->ep_loss = 10;
    t->ep_examples = 4;
    t->ep_correct = 3;
    t->ep_total = 4;
    t->ep_steps = 1;
    struct cmr_train_epoch e;
    ok(cmr_train_end_epoch(t, &e) == 1 && e.loss == 2.5 && e.acc == 0.75 && e.dropped == 1 &&
           m->train.epoch == 1 && m->train.best_loss == 2.5 && !t->in_epoch && t->ep_examples == 0,
       "end of epoch: loss 2.5 (mean per example), acc 0.75, 1 dropped, epoch count 1, best 2.5");
    ok(cmr_train_end_epoch(t, &e) == 0, "ending with no epoch in progress is a no-op");
    cmr_train_begin_epoch(t, 1);
    ok(cmr_train_end_epoch(t, &e) == 1 && isnan(e.loss) && m->train.bad_epochs == 0 && m->train.epoch == 2,
       "an epoch with nothing trained: NaN loss, schedule untouched");

    /* divergence: the parameters and Adam state stay as before the step */
    memcpy(before->params, m->params, m->n_params * sizeof(float));
    float *m_before = malloc(m->n_params * sizeof(float));
    memcpy(m_before, m->adam_m, m->n_params * sizeof(float));
    t->cfg.max_loss = 1e-6;
    for (int i = 0; i < 4; i++)
        cmr_train_add(t, x + (size_t)i * 2 * CMR_MODEL_SEG);
    rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_ENUMERIC && strstr(err.msg, "exploding") && m->train.step == 2 &&
           !memcmp(before->params, m->params, m->n_params * sizeof(float)) &&
           !memcmp(m_before, m->adam_m, m->n_params * sizeof(float)),
       "loss above max_loss: CMR_ENUMERIC, parameters and Adam untouched: %s", err.msg);
    t->n = 0;
    t->cfg.max_loss = 1e4;
    m->p.fc_w[0] = INFINITY; /* infinite embeddings -> NaN logits */
    for (int i = 0; i < 4; i++)
        cmr_train_add(t, x + (size_t)i * 2 * CMR_MODEL_SEG);
    rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_ENUMERIC && m->train.step == 2, "a non-finite loss: CMR_ENUMERIC: %s", err.msg);
    t->n = 0;
    m->p.fc_w[0] = before->p.fc_w[0];
    x[100] = NAN;
    for (int i = 0; i < 4; i++)
        cmr_train_add(t, x + (size_t)i * 2 * CMR_MODEL_SEG);
    rc = cmr_train_step(t, &s, &err);
    ok(rc == CMR_ENAN, "NaN input: CMR_ENAN: %s", err.msg);

    free(m_before);
    free(xr);
    free(x);
    cmr_train_free(t);
    cmr_model_free(m);
    cmr_model_free(ref);
    cmr_model_free(before);
}

/* a few epochs on synthetic pairs: the loss falls, the accuracy rises */
static void test_learns(enum cmr_model_kind kind)
{
    struct cmr_error err = {0};
    struct cmr_train_cfg c;
    c = cmr_train_cfg_default();
    c.batch = 8;
    struct cmr_model *m = tiny(kind, 3);
    int rows = kind == CMR_MODEL_CPC ? m->cfg.context + m->cfg.k : 2, epochs = 8;
    struct cmr_train *t = cmr_train_new(m, &c, rows, &err);
    double first = 0, last = 0, acc_last = 0;
    for (int ep = 0; ep < epochs; ep++) {
        float *x = examples(8, rows, 8, 100 + ep);
        cmr_train_begin_epoch(t, ep);
        for (int i = 0; i < 8; i++)
            if (cmr_train_add(t, x + (size_t)i * rows * CMR_MODEL_SEG)) {
                struct cmr_train_result s;
                if (cmr_train_step(t, &s, &err)) {
                    ok(0, "%s: step failed: %s", cmr_model_kind_name(kind), err.msg);
                    return;
                }
            }
        struct cmr_train_epoch e;
        cmr_train_end_epoch(t, &e);
        if (ep == 0)
            first = e.loss;
        last = e.loss;
        acc_last = e.acc;
        free(x);
    }
    ok(last < 0.5 * first && acc_last > 0.5, "%s: epoch loss %.3f -> %.3f in %d epochs, accuracy %.2f (chance 0.125)",
       cmr_model_kind_name(kind), first, last, epochs, acc_last);
    cmr_train_free(t);
    cmr_model_free(m);
}

/* runs steps [from, to) of a fixed schedule: epoch e has 7 examples (one full
 * batch of 4, then a short one of 3) */
static int run_steps(struct cmr_train *t, const float *x, int64_t from_example, int64_t to_example)
{
    struct cmr_error err = {0};
    struct cmr_train_result s;
    for (int64_t k = from_example; k < to_example; k++) {
        int64_t ep = k / 7;
        if (cmr_train_epoch_changes(t, ep)) {
            if (cmr_train_step(t, &s, &err))
                return -1;
            cmr_train_end_epoch(t, NULL);
        }
        cmr_train_begin_epoch(t, ep);
        if (cmr_train_add(t, x + (size_t)(k % 7) * 2 * CMR_MODEL_SEG) && cmr_train_step(t, &s, &err))
            return -1;
    }
    return 0;
}

static void test_checkpoint(void)
{
    struct cmr_error err = {0};
    struct cmr_train_cfg c;
    char path[256];
    snprintf(path, sizeof path, "%s/ckpt.cmr", tmpdir);
    c = cmr_train_cfg_default();
    c.batch = 4;
    c.patience = 0; /* the rate moves too */
    c.seed = 42;
    float *x = examples(7, 2, 7, 9);

    /* uninterrupted: 4 epochs of 7 examples */
    struct cmr_model *a = tiny(CMR_MODEL_ENCODER, 5);
    struct cmr_train *ta = cmr_train_new(a, &c, 2, &err);
    run_steps(ta, x, 0, 18); /* stops inside epoch 2, after its first full batch */
    int rc = cmr_train_save(ta, path, &err);
    ok(rc == CMR_OK && ta->consumed == 18 && ta->n == 0 && ta->in_epoch && ta->epoch == 2, "saved mid-epoch: %lld consumed (%s)",
       (long long)ta->consumed, rc ? err.msg : "ok");
    int64_t saved_step = a->train.step;
    run_steps(ta, x, 18, 28);
    struct cmr_train_result s;
    cmr_train_step(ta, &s, &err);
    cmr_train_end_epoch(ta, NULL);

    /* restored from the file, fed the rest of the same stream */
    struct cmr_model *b = cmr_model_load(path, &err);
    struct cmr_train *tb = b ? cmr_train_new(b, &c, 2, &err) : NULL;
    rc = tb ? cmr_train_restore(tb, &err) : -1;
    ok(rc == CMR_OK && tb->consumed == 18 && tb->in_epoch && tb->epoch == 2 && tb->ep_examples == 4 &&
           b->train.step == saved_step && b->train.step == 5,
       "restored: 18 consumed, epoch 2 in progress with 4 examples, step 5 (%s)", rc ? err.msg : "ok");
    run_steps(tb, x, tb->consumed, 28);
    cmr_train_step(tb, &s, &err);
    cmr_train_end_epoch(tb, NULL);
    ok(same_params(a, b) && !memcmp(a->adam_m, b->adam_m, a->n_params * sizeof(float)) &&
           !memcmp(a->adam_v, b->adam_v, a->n_params * sizeof(float)) && a->train.step == b->train.step &&
           a->train.epoch == b->train.epoch && a->train.lr == b->train.lr && a->train.best_loss == b->train.best_loss &&
           a->train.bad_epochs == b->train.bad_epochs && !memcmp(a->bn_count, b->bn_count, sizeof a->bn_count),
       "resumed run = uninterrupted run, bit for bit (step %lld, epoch %lld, lr %g)", (long long)b->train.step,
       (long long)b->train.epoch, b->train.lr);

    /* the options that must not change */
    struct cmr_train_cfg c2 = c;
    c2.batch = 8;
    struct cmr_train *tc = cmr_train_new(b, &c2, 2, &err);
    ok(cmr_train_restore(tc, &err) == CMR_EINVAL && strstr(err.msg, "batch"), "other batch refused: %s", err.msg);
    cmr_train_free(tc);
    c2 = c;
    c2.tau = 0.5;
    tc = cmr_train_new(b, &c2, 2, &err);
    ok(cmr_train_restore(tc, &err) == CMR_EINVAL && strstr(err.msg, "temperature"), "other temperature refused: %s",
       err.msg);
    cmr_train_free(tc);
    struct cmr_model *fresh = tiny(CMR_MODEL_ENCODER, 5);
    tc = cmr_train_new(fresh, &c, 2, &err);
    ok(cmr_train_restore(tc, &err) == CMR_EFORMAT, "a model without training state: %s", err.msg);
    cmr_train_free(tc);
    cmr_model_free(fresh);

    unlink(path);
    free(x);
    cmr_train_free(ta);
    cmr_train_free(tb);
    cmr_model_free(a);
    cmr_model_free(b);
}

int main(void)
{
    tap_plan_none();
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp failed\n");
        return 99;
    }
    cmr_nn_set_threads(1);
    test_cfg();
    test_plateau();
    test_batching();
    test_learns(CMR_MODEL_ENCODER);
    test_learns(CMR_MODEL_MULTI);
    test_learns(CMR_MODEL_CPC);
    test_checkpoint();
    rmdir(tmpdir);
    return tap_done();
}
