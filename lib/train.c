/* cmr training loop pieces: batching, one checked step, epochs, the plateau
 * schedule, resumable state. See train.h. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"


struct cmr_train_cfg cmr_train_cfg_default(void)
{
    return (struct cmr_train_cfg){
        .batch = 16,
        .tau = 1.0,
        .lr = 1e-3,
        .patience = 5,
        .factor = 0.2,
        .threshold = 1e-4,
        .max_loss = 1e4,
        .seed = 0,
    };
}

int cmr_train_cfg_check(const struct cmr_train_cfg *c, struct cmr_error *err)
{
    if (c->batch < CMR_TRAIN_MIN_BATCH || c->batch > 65536)
        return cmr_error_set(err, CMR_EINVAL, "train: batch should be in [2, 65536], got %d", c->batch);
    if (!(c->tau > 0) || !isfinite(c->tau))
        return cmr_error_set(err, CMR_EINVAL, "train: temperature should be > 0, got %g", c->tau);
    if (!(c->lr > 0) || !isfinite(c->lr))
        return cmr_error_set(err, CMR_EINVAL, "train: learning rate should be > 0, got %g", c->lr);
    if (c->patience < 0)
        return cmr_error_set(err, CMR_EINVAL, "train: patience should be >= 0, got %d", c->patience);
    if (!(c->factor > 0 && c->factor <= 1))
        return cmr_error_set(err, CMR_EINVAL, "train: factor should be in (0, 1], got %g", c->factor);
    if (!(c->threshold >= 0 && c->threshold < 1))
        return cmr_error_set(err, CMR_EINVAL, "train: threshold should be in [0, 1), got %g", c->threshold);
    if (!(c->max_loss > 0))
        return cmr_error_set(err, CMR_EINVAL, "train: max loss should be > 0, got %g", c->max_loss);
    return CMR_OK;
}

struct cmr_train *cmr_train_new(struct cmr_model *m, const struct cmr_train_cfg *cfg, int rows,
                                    struct cmr_error *err)
{
    if (cmr_train_cfg_check(cfg, err))
        return NULL;
    const struct cmr_model_cfg *mc = &m->cfg;
    int want = mc->kind == CMR_MODEL_CPC ? mc->context + mc->k : 2;
    if (rows != want) {
        cmr_error_set(err, CMR_EINVAL, "train: a %s model trains on examples of %d segments, got %d",
                      cmr_model_kind_name(mc->kind), want, rows);
        return NULL;
    }
    if (mc->n_time != CMR_MODEL_T || mc->n_freq != CMR_MODEL_F) {
        cmr_error_set(err, CMR_EINVAL, "train: the model takes %d x %d segments, not %d x %d", mc->n_time,
                      mc->n_freq, CMR_MODEL_T, CMR_MODEL_F);
        return NULL;
    }
    struct cmr_train *t = calloc(1, sizeof *t);
    if (!t) {
        cmr_error_set(err, CMR_ENOMEM, "train: out of memory");
        return NULL;
    }
    t->m = m;
    t->cfg = *cfg;
    t->rows = rows;
    t->levels = mc->kind == CMR_MODEL_MULTI ? CMR_MODEL_BLOCKS : mc->kind == CMR_MODEL_CPC ? mc->k : 1;
    size_t n = (size_t)cfg->batch * rows * CMR_MODEL_SEG;
    t->buf = malloc(n * sizeof(float));
    t->x = mc->kind == CMR_MODEL_CPC ? NULL : malloc(n * sizeof(float));
    if (!t->buf || (mc->kind != CMR_MODEL_CPC && !t->x)) {
        cmr_error_set(err, CMR_ENOMEM, "train: out of memory for a batch of %d examples (%.1f MB)", cfg->batch,
                      2.0 * n * sizeof(float) / 1e6);
        cmr_train_free(t);
        return NULL;
    }
    if (m->train.step == 0)
        m->train.lr = cfg->lr;
    return t;
}

void cmr_train_free(struct cmr_train *t)
{
    if (!t)
        return;
    free(t->buf);
    free(t->x);
    free(t->ebuf);
    free(t);
}

int cmr_train_add(struct cmr_train *t, const float *example)
{
    size_t ex = (size_t)t->rows * CMR_MODEL_SEG;
    memcpy(t->buf + (size_t)t->n * ex, example, ex * sizeof(float));
    t->n++;
    return t->n >= t->cfg.batch;
}

/* the name of the parameter tensor holding element i of the parameter block */
static void param_name(const struct cmr_model *m, size_t i, char *buf, size_t len)
{
    snprintf(buf, len, "parameter %zu", i);
    for (int k = 0; k < m->n_tensors; k++) {
        const struct cmr_tensor *tn = &m->tensors[k];
        if (tn->role == CMR_TENSOR_PARAM && i >= tn->offset && i < tn->offset + tn->numel) {
            cmr_model_tensor_name(m, k, buf, len);
            return;
        }
    }
}

int cmr_train_step(struct cmr_train *t, struct cmr_train_result *s, struct cmr_error *err)
{
    struct cmr_model *m = t->m;
    int n = t->n, rc;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->lr = m->train.lr;
    if (n == 0)
        return CMR_OK;
    if (n < CMR_TRAIN_MIN_BATCH) {
        t->consumed += n;
        t->ep_dropped += n;
        t->n = 0;
        return CMR_OK;
    }
    const float *x = t->buf;
    if (m->cfg.kind != CMR_MODEL_CPC) {
        /* (n, 2, T, F) anchor/positive pairs -> n anchors, then their n positives */
        for (int i = 0; i < n; i++) {
            memcpy(t->x + (size_t)i * CMR_MODEL_SEG, t->buf + (size_t)(2 * i) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
            memcpy(t->x + (size_t)(n + i) * CMR_MODEL_SEG, t->buf + (size_t)(2 * i + 1) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
        }
        x = t->x;
    }
    if ((rc = cmr_model_zero_grad(m)))
        return cmr_error_set(err, rc, "train: out of memory for the gradients");
    double loss = 0;
    int correct = 0;
    if (t->loss_hook)
        rc = t->loss_hook(t->hook_ctx, x, n, (float)t->cfg.tau, &loss, &correct, err);
    else
        rc = cmr_model_loss(m, x, n, (float)t->cfg.tau, 1, &loss, &correct, err);
    if (t->grads_hook && (rc == CMR_OK || rc == CMR_ENUMERIC)) {
        int rc2 = t->grads_hook(t->hook_ctx, err);
        if (rc2)
            return rc2;
    }
    if (rc == CMR_ENUMERIC)
        return cmr_error_set(err, CMR_ENUMERIC, "train: step %" PRId64 ": the loss is not finite (diverged)",
                             m->train.step + 1);
    if (rc)
        return rc;
    if (loss > t->cfg.max_loss)
        return cmr_error_set(err, CMR_ENUMERIC, "train: step %" PRId64 ": loss %g is above %g (exploding)",
                             m->train.step + 1, loss, t->cfg.max_loss);
    for (size_t i = 0; i < m->n_params; i++)
        if (!isfinite(m->grads[i])) {
            char name[96];
            param_name(m, i, name, sizeof name);
            return cmr_error_set(err, CMR_ENUMERIC, "train: step %" PRId64 ": the gradient of %s is %s",
                                 m->train.step + 1, name, isnan(m->grads[i]) ? "NaN" : "infinite");
        }
    if ((rc = cmr_model_update(m, err)))
        return rc;
    s->trained = 1;
    s->loss = loss;
    s->correct = correct;
    s->total = n * t->levels;
    t->consumed += n;
    t->ep_loss += loss * n;
    t->ep_examples += n;
    t->ep_correct += correct;
    t->ep_total += s->total;
    t->ep_steps++;
    t->n = 0;
    return CMR_OK;
}

int cmr_train_eval(struct cmr_train *t, struct cmr_train_result *s, struct cmr_error *err)
{
    struct cmr_model *m = t->m;
    const struct cmr_model_cfg *c = &m->cfg;
    int n = t->n, rc, E = c->emb;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->lr = m->train.lr;
    t->n = 0;
    if (n < CMR_TRAIN_MIN_BATCH)
        return CMR_OK;
    int B = t->cfg.batch, S = t->rows, D = c->kind == CMR_MODEL_MULTI ? CMR_MODEL_BLOCKS * E : E;
    int ctx = c->context, H = c->hidden;
    /* emb (B*S, D), a and p (B, E), probs (B, B); cpc: zc (B, ctx, E), cs (B, ctx, H), ct (B, H) */
    size_t ne = (size_t)B * S * D + 2 * (size_t)B * E + (size_t)B * B;
    if (c->kind == CMR_MODEL_CPC)
        ne += (size_t)B * ctx * E + (size_t)B * ctx * H + (size_t)B * H;
    if (!t->ebuf && !(t->ebuf = malloc(ne * sizeof(float))))
        return cmr_error_set(err, CMR_ENOMEM, "train: out of memory");
    float *emb = t->ebuf, *fa = emb + (size_t)B * S * D, *fp = fa + (size_t)B * E, *probs = fp + (size_t)B * E;
    double loss = 0;
    int correct = 0;
    if (c->kind != CMR_MODEL_CPC) {
        for (int i = 0; i < n; i++) {
            memcpy(t->x + (size_t)i * CMR_MODEL_SEG, t->buf + (size_t)(2 * i) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
            memcpy(t->x + (size_t)(n + i) * CMR_MODEL_SEG, t->buf + (size_t)(2 * i + 1) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
        }
        if ((rc = cmr_model_forward(m, t->x, 2 * n, 0, emb, err)))
            return rc;
        int nl = c->kind == CMR_MODEL_MULTI ? CMR_MODEL_BLOCKS : 1;
        for (int l = 0; l < nl; l++) {
            for (int i = 0; i < n; i++) {
                memcpy(fa + (size_t)i * E, emb + (size_t)i * D + (size_t)l * E, (size_t)E * sizeof(float));
                memcpy(fp + (size_t)i * E, emb + (size_t)(n + i) * D + (size_t)l * E, (size_t)E * sizeof(float));
            }
            loss += cmr_infonce_forward(probs, fa, fp, n, E, (float)t->cfg.tau) / nl;
            correct += cmr_infonce_correct(probs, n);
        }
    } else {
        float *zc = probs + (size_t)B * B, *cs = zc + (size_t)B * ctx * E, *ct = cs + (size_t)B * ctx * H;
        if ((rc = cmr_model_forward(m, t->buf, n * S, 0, emb, err)))
            return rc;
        for (int b = 0; b < n; b++)
            memcpy(zc + (size_t)b * ctx * E, emb + (size_t)b * S * E, (size_t)ctx * E * sizeof(float));
        if ((rc = cmr_model_gru_forward(m, zc, NULL, n, ctx, 0, cs, err)))
            return rc;
        for (int b = 0; b < n; b++)
            memcpy(ct + (size_t)b * H, cs + ((size_t)b * ctx + ctx - 1) * H, (size_t)H * sizeof(float));
        for (int k = 0; k < c->k; k++) {
            cmr_linear_forward(fa, ct, m->p.pred_w[k], m->p.pred_b[k], n, H, E);
            for (int b = 0; b < n; b++)
                memcpy(fp + (size_t)b * E, emb + ((size_t)b * S + ctx + k) * E, (size_t)E * sizeof(float));
            loss += cmr_infonce_forward(probs, fa, fp, n, E, (float)t->cfg.tau);
            correct += cmr_infonce_correct(probs, n);
        }
    }
    s->loss = loss;
    s->correct = correct;
    s->total = n * t->levels;
    if (!isfinite(loss))
        return cmr_error_set(err, CMR_ENUMERIC, "train: the evaluation loss is not finite");
    return CMR_OK;
}

int cmr_train_plateau_step(struct cmr_train_state *st, double loss, int patience, double factor,
                     double threshold)
{
    if (loss < st->best_loss * (1 - threshold)) { /* best = +inf at first: any finite loss improves */
        st->best_loss = loss;
        st->bad_epochs = 0;
        return 0;
    }
    st->bad_epochs++;
    if (st->bad_epochs > patience) {
        st->bad_epochs = 0;
        double lr = st->lr * factor;
        if (st->lr - lr > 1e-8) {  /* PyTorch's eps: changes smaller than this are ignored */
            st->lr = lr;
            return 1;
        }
    }
    return 0;
}

int cmr_train_epoch_changes(const struct cmr_train *t, int64_t epoch)
{
    return t->in_epoch && epoch != t->epoch;
}

void cmr_train_begin_epoch(struct cmr_train *t, int64_t epoch)
{
    t->in_epoch = 1;
    t->epoch = epoch;
}

int cmr_train_end_epoch(struct cmr_train *t, struct cmr_train_epoch *e)
{
    struct cmr_train_epoch tmp;
    if (!e)
        e = &tmp;
    memset(e, 0, sizeof *e);
    if (!t->in_epoch)
        return 0;
    struct cmr_train_state *st = &t->m->train;
    e->epoch = t->epoch;
    e->examples = t->ep_examples;
    e->dropped = t->ep_dropped;
    e->steps = t->ep_steps;
    e->loss = t->ep_examples ? t->ep_loss / (double)t->ep_examples : NAN;
    e->acc = t->ep_total ? (double)t->ep_correct / (double)t->ep_total : NAN;
    if (t->ep_examples)
        e->lr_dropped = cmr_train_plateau_step(st, e->loss, t->cfg.patience, t->cfg.factor, t->cfg.threshold);
    e->lr = st->lr;
    st->epoch++;
    t->in_epoch = 0;
    t->epoch = 0;
    t->ep_loss = 0;
    t->ep_examples = t->ep_correct = t->ep_total = t->ep_dropped = t->ep_steps = 0;
    return 1;
}

/* ---- checkpoints ---- */

static int meta_i64(struct cmr_model *m, const char *key, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    return cmr_model_meta_set(m, key, b);
}

static int meta_f64(struct cmr_model *m, const char *key, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    return cmr_model_meta_set(m, key, b);
}

int cmr_train_save(struct cmr_train *t, const char *path, struct cmr_error *err)
{
    struct cmr_model *m = t->m;
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, t->cfg.seed);
    int rc = cmr_model_meta_set(m, "train.seed", seed);
    rc = rc ? rc : meta_i64(m, "train.batch", t->cfg.batch);
    rc = rc ? rc : meta_f64(m, "train.temperature", t->cfg.tau);
    rc = rc ? rc : meta_f64(m, "train.lr0", t->cfg.lr);
    rc = rc ? rc : meta_i64(m, "train.patience", t->cfg.patience);
    rc = rc ? rc : meta_f64(m, "train.factor", t->cfg.factor);
    rc = rc ? rc : meta_f64(m, "train.threshold", t->cfg.threshold);
    rc = rc ? rc : meta_i64(m, "train.consumed", t->consumed);
    rc = rc ? rc : meta_i64(m, "train.in_epoch", t->in_epoch);
    rc = rc ? rc : meta_i64(m, "train.epoch_label", t->epoch);
    rc = rc ? rc : meta_f64(m, "train.epoch_loss_sum", t->ep_loss);
    rc = rc ? rc : meta_i64(m, "train.epoch_examples", t->ep_examples);
    rc = rc ? rc : meta_i64(m, "train.epoch_correct", t->ep_correct);
    rc = rc ? rc : meta_i64(m, "train.epoch_total", t->ep_total);
    rc = rc ? rc : meta_i64(m, "train.epoch_dropped", t->ep_dropped);
    rc = rc ? rc : meta_i64(m, "train.epoch_steps", t->ep_steps);
    if (rc)
        return cmr_error_set(err, rc, "train: cannot store the training state in the model's metadata (%s)",
                             cmr_strerror(rc));
    return cmr_model_save(m, path, 1, err);
}

static int get_i64(const struct cmr_model *m, const char *key, int64_t *v, struct cmr_error *err)
{
    const char *s = cmr_model_meta_get(m, key);
    char *end;
    if (!s)
        return cmr_error_set(err, CMR_EFORMAT, "train: the model has no training state (%s missing): "
                             "not a cmr-train checkpoint", key);
    long long x = strtoll(s, &end, 10);
    if (end == s || *end)
        return cmr_error_set(err, CMR_EFORMAT, "train: bad %s in the model's metadata: '%.40s'", key, s);
    *v = x;
    return CMR_OK;
}

static int get_f64(const struct cmr_model *m, const char *key, double *v, struct cmr_error *err)
{
    const char *s = cmr_model_meta_get(m, key);
    char *end;
    if (!s)
        return cmr_error_set(err, CMR_EFORMAT, "train: the model has no training state (%s missing): "
                             "not a cmr-train checkpoint", key);
    *v = strtod(s, &end);
    if (end == s || *end)
        return cmr_error_set(err, CMR_EFORMAT, "train: bad %s in the model's metadata: '%.40s'", key, s);
    return CMR_OK;
}

int cmr_train_restore(struct cmr_train *t, struct cmr_error *err)
{
    const struct cmr_model *m = t->m;
    int64_t batch, patience, in_epoch;
    double tau, factor, threshold;
    int rc;
    if ((rc = get_i64(m, "train.batch", &batch, err)) || (rc = get_f64(m, "train.temperature", &tau, err)) ||
        (rc = get_i64(m, "train.patience", &patience, err)) || (rc = get_f64(m, "train.factor", &factor, err)) ||
        (rc = get_f64(m, "train.threshold", &threshold, err)))
        return rc;
    if (batch != t->cfg.batch)
        return cmr_error_set(err, CMR_EINVAL, "train: the checkpoint was trained with batch %" PRId64
                             ", not %d", batch, t->cfg.batch);
    if (tau != t->cfg.tau)
        return cmr_error_set(err, CMR_EINVAL, "train: the checkpoint was trained with temperature %g, not %g",
                             tau, t->cfg.tau);
    if (patience != t->cfg.patience)
        return cmr_error_set(err, CMR_EINVAL, "train: the checkpoint was trained with patience %" PRId64
                             ", not %d", patience, t->cfg.patience);
    if (factor != t->cfg.factor)
        return cmr_error_set(err, CMR_EINVAL, "train: the checkpoint was trained with factor %g, not %g",
                             factor, t->cfg.factor);
    if (threshold != t->cfg.threshold)
        return cmr_error_set(err, CMR_EINVAL, "train: the checkpoint was trained with threshold %g, not %g",
                             threshold, t->cfg.threshold);
    if ((rc = get_i64(m, "train.consumed", &t->consumed, err)) ||
        (rc = get_i64(m, "train.in_epoch", &in_epoch, err)) ||
        (rc = get_i64(m, "train.epoch_label", &t->epoch, err)) ||
        (rc = get_f64(m, "train.epoch_loss_sum", &t->ep_loss, err)) ||
        (rc = get_i64(m, "train.epoch_examples", &t->ep_examples, err)) ||
        (rc = get_i64(m, "train.epoch_correct", &t->ep_correct, err)) ||
        (rc = get_i64(m, "train.epoch_total", &t->ep_total, err)) ||
        (rc = get_i64(m, "train.epoch_dropped", &t->ep_dropped, err)) ||
        (rc = get_i64(m, "train.epoch_steps", &t->ep_steps, err)))
        return rc;
    if (t->consumed < 0)
        return cmr_error_set(err, CMR_EFORMAT, "train: bad train.consumed %" PRId64, t->consumed);
    t->in_epoch = in_epoch != 0;
    t->n = 0;
    return CMR_OK;
}
