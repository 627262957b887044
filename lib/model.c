/* cmr models: configuration, parameter layout, initialisation, tensor access
 * and the optimizer step. Forward and backward are in model_forward.c, files in
 * model_file.c, safetensors in model_safetensors.c. See model.h. */
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

static const int paper_widths[CMR_MODEL_BLOCKS] = {128, 256, 256, 512, 512};
const int cmr_model_pools[CMR_MODEL_BLOCKS][2] = {{2, 2}, {2, 2}, {2, 2}, {4, 4}, {5, 3}};

static const char *const kind_names[] = {"encoder", "multi", "cpc"};

const char *cmr_model_kind_name(enum cmr_model_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "?";
}

int cmr_model_kind_parse(const char *s, enum cmr_model_kind *kind)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, kind_names[i])) {
            *kind = (enum cmr_model_kind)i;
            return CMR_OK;
        }
    return CMR_EINVAL;
}

struct cmr_model_cfg cmr_model_cfg_default(enum cmr_model_kind kind, double width)
{
    struct cmr_model_cfg cfg = {.kind = kind, .width = width, .emb = 128, .n_time = CMR_MODEL_T,
                                .n_freq = CMR_MODEL_F, .mel_mean = 0, .mel_std = 1};
    if (!(width > 0 && width <= 4) || (unsigned)kind > CMR_MODEL_CPC)
        return cfg; /* cmr_model_cfg_check refuses it: the width (or kind), and no channels */
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        /* cmr_models.py scaled_widths: max(1, int(round(c * width))); Python's
         * round() is half-to-even, which is rint() in the default rounding mode */
        double c = rint(paper_widths[l] * width);
        cfg.widths[l] = c < 1 ? 1 : (int)c;
    }
    if (kind == CMR_MODEL_MULTI)
        cfg.widths[4] = cfg.emb;
    if (kind == CMR_MODEL_CPC) {
        cfg.hidden = 256;
        cfg.k = 2;
        cfg.context = 4;
    }
    return cfg;
}

int cmr_model_cfg_check(const struct cmr_model_cfg *cfg, struct cmr_error *err)
{
    if ((unsigned)cfg->kind > CMR_MODEL_CPC)
        return cmr_error_set(err, CMR_EMODEL, "model: kind should be encoder, multi or cpc, got %d",
                             (int)cfg->kind);
    if (!(cfg->width > 0 && cfg->width <= 4))
        return cmr_error_set(err, CMR_EMODEL, "model: width should be in (0, 4], got %g", cfg->width);
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++)
        if (cfg->widths[l] < 1 || cfg->widths[l] > 8192)
            return cmr_error_set(err, CMR_EMODEL,
                                 "model: block %d channels should be in [1, 8192], got %d", l + 1,
                                 cfg->widths[l]);
    if (cfg->emb < 1 || cfg->emb > 8192)
        return cmr_error_set(err, CMR_EMODEL, "model: emb should be in [1, 8192], got %d", cfg->emb);
    if (cfg->kind == CMR_MODEL_MULTI && cfg->widths[4] != cfg->emb)
        return cmr_error_set(err, CMR_EMODEL,
                             "model: multi-level block 5 should have emb = %d channels, got %d",
                             cfg->emb, cfg->widths[4]);
    if (cfg->kind == CMR_MODEL_CPC) {
        if (cfg->hidden < 1 || cfg->hidden > 8192)
            return cmr_error_set(err, CMR_EMODEL, "model: hidden should be in [1, 8192], got %d",
                                 cfg->hidden);
        if (cfg->k < 1 || cfg->k > CMR_MODEL_MAX_K)
            return cmr_error_set(err, CMR_EMODEL, "model: K should be in [1, %d], got %d",
                                 CMR_MODEL_MAX_K, cfg->k);
        if (cfg->context < 1 || cfg->context > 1024)
            return cmr_error_set(err, CMR_EMODEL, "model: context should be in [1, 1024], got %d",
                                 cfg->context);
    } else if (cfg->hidden || cfg->k || cfg->context) {
        return cmr_error_set(err, CMR_EMODEL, "model: hidden, K and context are for cpc models only");
    }
    if (cfg->n_time != CMR_MODEL_T || cfg->n_freq != CMR_MODEL_F)
        return cmr_error_set(err, CMR_EMODEL, "model: segments should be %d x %d, got %d x %d",
                             CMR_MODEL_T, CMR_MODEL_F, cfg->n_time, cfg->n_freq);
    if (!isfinite(cfg->mel_mean) || !isfinite(cfg->mel_std) || !(cfg->mel_std > 0))
        return cmr_error_set(err, CMR_EMODEL,
                             "model: input standardisation should be finite with std > 0, got mean %g std %g",
                             cfg->mel_mean, cfg->mel_std);
    return CMR_OK;
}

int cmr_model_out_dim(const struct cmr_model_cfg *cfg)
{
    switch (cfg->kind) {
    case CMR_MODEL_MULTI: return CMR_MODEL_BLOCKS * cfg->emb;
    case CMR_MODEL_CPC: return cfg->hidden;
    default: return cfg->emb;
    }
}

void cmr_model_block_out(const struct cmr_model_cfg *cfg, int l, int *oh, int *ow)
{
    int h = cfg->n_time, w = cfg->n_freq;
    for (int i = 0; i <= l; i++) {
        h /= cmr_model_pools[i][0];
        w /= cmr_model_pools[i][1];
    }
    *oh = h;
    *ow = w;
}

/* ---- the tensor table ---- */

struct layout {
    struct cmr_tensor *t;
    int n, cap;
    size_t n_params, n_stats;
    int oom;
};

static void add(struct layout *L, enum cmr_tensor_role role, int ndim, const int64_t *shape,
                const char *fmt, int idx)
{
    if (L->oom)
        return;
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 64;
        struct cmr_tensor *nt = realloc(L->t, sizeof *nt * (size_t)cap);
        if (!nt) {
            L->oom = 1;
            return;
        }
        L->t = nt;
        L->cap = cap;
    }
    struct cmr_tensor *t = &L->t[L->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, fmt, idx);
    t->role = role;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    if (role == CMR_TENSOR_PARAM) {
        t->offset = L->n_params;
        L->n_params += t->numel;
    } else if (role == CMR_TENSOR_STAT) {
        t->offset = L->n_stats;
        L->n_stats += t->numel;
    } else {
        t->offset = (size_t)idx;
    }
}

/* the state_dict() of cmr_models.py's Encoder / MultiEncoder / MelCPC, in order */
static int build_layout(const struct cmr_model_cfg *cfg, struct layout *L)
{
    const int *w = cfg->widths;
    memset(L, 0, sizeof *L);
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        int cin = l ? w[l - 1] : 1;
        int64_t cw[4] = {w[l], cin, 5, 5}, c[1] = {w[l]};
        add(L, CMR_TENSOR_PARAM, 4, cw, "blocks.%d.conv.weight", l);
        add(L, CMR_TENSOR_PARAM, 1, c, "blocks.%d.conv.bias", l);
        add(L, CMR_TENSOR_PARAM, 1, c, "blocks.%d.bn.weight", l);
        add(L, CMR_TENSOR_PARAM, 1, c, "blocks.%d.bn.bias", l);
        add(L, CMR_TENSOR_STAT, 1, c, "blocks.%d.bn.running_mean", l);
        add(L, CMR_TENSOR_STAT, 1, c, "blocks.%d.bn.running_var", l);
        add(L, CMR_TENSOR_COUNT, 0, NULL, "blocks.%d.bn.num_batches_tracked", l);
    }
    if (cfg->kind == CMR_MODEL_MULTI) {
        for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
            int oh, ow;
            cmr_model_block_out(cfg, l, &oh, &ow);
            int64_t hw[2] = {cfg->emb, (int64_t)w[l] * ow}, hb[1] = {cfg->emb};
            add(L, CMR_TENSOR_PARAM, 2, hw, "heads.%d.weight", l);
            add(L, CMR_TENSOR_PARAM, 1, hb, "heads.%d.bias", l);
        }
    } else {
        int64_t fw[2] = {cfg->emb, w[4]}, fb[1] = {cfg->emb};
        add(L, CMR_TENSOR_PARAM, 2, fw, "fc.weight", 0);
        add(L, CMR_TENSOR_PARAM, 1, fb, "fc.bias", 0);
    }
    if (cfg->kind == CMR_MODEL_CPC) {
        int64_t H3 = 3 * (int64_t)cfg->hidden;
        int64_t wih[2] = {H3, cfg->emb}, whh[2] = {H3, cfg->hidden}, b[1] = {H3};
        add(L, CMR_TENSOR_PARAM, 2, wih, "gru.weight_ih_l0", 0);
        add(L, CMR_TENSOR_PARAM, 2, whh, "gru.weight_hh_l0", 0);
        add(L, CMR_TENSOR_PARAM, 1, b, "gru.bias_ih_l0", 0);
        add(L, CMR_TENSOR_PARAM, 1, b, "gru.bias_hh_l0", 0);
        for (int k = 0; k < cfg->k; k++) {
            int64_t pw[2] = {cfg->emb, cfg->hidden}, pb[1] = {cfg->emb};
            add(L, CMR_TENSOR_PARAM, 2, pw, "predictors.%d.weight", k);
            add(L, CMR_TENSOR_PARAM, 1, pb, "predictors.%d.bias", k);
        }
    }
    return L->oom ? CMR_ENOMEM : CMR_OK;
}

/* points the named views of a PARAM-layout block */
static void point_params(const struct cmr_model *m, float *base, struct cmr_params *p)
{
    memset(p, 0, sizeof *p);
    if (!base)
        return;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *t = &m->tensors[i];
        if (t->role != CMR_TENSOR_PARAM)
            continue;
        float *v = base + t->offset;
        int l;
        char what[32];
        if (sscanf(t->name, "blocks.%d.%31s", &l, what) == 2) {
            if (!strcmp(what, "conv.weight"))
                p->blk[l].conv_w = v;
            else if (!strcmp(what, "conv.bias"))
                p->blk[l].conv_b = v;
            else if (!strcmp(what, "bn.weight"))
                p->blk[l].bn_w = v;
            else if (!strcmp(what, "bn.bias"))
                p->blk[l].bn_b = v;
        } else if (sscanf(t->name, "heads.%d.%31s", &l, what) == 2) {
            if (!strcmp(what, "weight"))
                p->head_w[l] = v;
            else
                p->head_b[l] = v;
        } else if (sscanf(t->name, "predictors.%d.%31s", &l, what) == 2) {
            if (!strcmp(what, "weight"))
                p->pred_w[l] = v;
            else
                p->pred_b[l] = v;
        } else if (!strcmp(t->name, "fc.weight")) {
            p->fc_w = v;
        } else if (!strcmp(t->name, "fc.bias")) {
            p->fc_b = v;
        } else if (!strcmp(t->name, "gru.weight_ih_l0")) {
            p->gru_w_ih = v;
        } else if (!strcmp(t->name, "gru.weight_hh_l0")) {
            p->gru_w_hh = v;
        } else if (!strcmp(t->name, "gru.bias_ih_l0")) {
            p->gru_b_ih = v;
        } else if (!strcmp(t->name, "gru.bias_hh_l0")) {
            p->gru_b_hh = v;
        }
    }
}

void cmr_model_free(struct cmr_model *m)
{
    if (!m)
        return;
    cmr_model_acts_free(m);
    free(m->params);
    free(m->grads);
    free(m->adam_m);
    free(m->adam_v);
    free(m->stats);
    free(m->tensors);
    for (int i = 0; i < m->n_meta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].val);
    }
    free(m);
}

size_t cmr_model_cfg_floats(const struct cmr_model_cfg *cfg)
{
    struct layout L;
    int rc = build_layout(cfg, &L);
    free(L.t);
    return rc ? 0 : L.n_params + L.n_stats;
}

struct cmr_model *cmr_model_new(const struct cmr_model_cfg *cfg, struct cmr_error *err)
{
    if (cmr_model_cfg_check(cfg, err))
        return NULL;
    struct cmr_model *m = calloc(1, sizeof *m);
    struct layout L;
    if (!m || build_layout(cfg, &L)) {
        if (m)
            free(L.t);
        free(m);
        cmr_error_set(err, CMR_ENOMEM, "model: out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    m->tensors = L.t;
    m->n_tensors = L.n;
    m->n_params = L.n_params;
    m->n_stats = L.n_stats;
    m->params = calloc(m->n_params, sizeof *m->params);
    m->stats = calloc(m->n_stats, sizeof *m->stats);
    if (!m->params || !m->stats) {
        cmr_error_set(err, CMR_ENOMEM, "model: out of memory for %zu parameters", m->n_params);
        cmr_model_free(m);
        return NULL;
    }
    point_params(m, m->params, &m->p);
    size_t off = 0;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        m->s.mean[l] = m->stats + off;
        off += (size_t)cfg->widths[l];
        m->s.var[l] = m->stats + off;
        off += (size_t)cfg->widths[l];
        for (int c = 0; c < cfg->widths[l]; c++)
            m->s.var[l][c] = 1;
    }
    m->train.lr = 1e-3;
    m->train.best_loss = INFINITY;
    m->train.beta1 = 0.9;
    m->train.beta2 = 0.999;
    m->train.eps = 1e-8;
    m->train.weight_decay = 0;
    m->threads = 1;
    return m;
}

static void fill_uniform(float *v, size_t n, double bound, struct cmr_rng *r)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)((2 * cmr_rng_uniform(r) - 1) * bound);
}

void cmr_model_init(struct cmr_model *m, uint64_t seed)
{
    struct cmr_rng r;
    cmr_rng_seed(&r, seed);
    const struct cmr_model_cfg *cfg = &m->cfg;
    double fan_in = 0, fan_out = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *t = &m->tensors[i];
        if (t->role == CMR_TENSOR_STAT) {
            float fill = strstr(t->name, "running_var") ? 1.0f : 0.0f;
            for (size_t j = 0; j < t->numel; j++)
                m->stats[t->offset + j] = fill;
            continue;
        }
        if (t->role == CMR_TENSOR_COUNT) {
            m->bn_count[t->offset] = 0;
            continue;
        }
        float *v = m->params + t->offset;
        const char *nm = t->name;
        if (strstr(nm, ".bn.weight")) {
            for (size_t j = 0; j < t->numel; j++)
                v[j] = 1;
        } else if (strstr(nm, ".bn.bias")) {
            memset(v, 0, t->numel * sizeof *v);
        } else if (!strncmp(nm, "gru.", 4)) {
            fill_uniform(v, t->numel, 1.0 / sqrt((double)cfg->hidden), &r);
        } else if (t->ndim >= 2) {
            /* a weight: fan_in = numel / out features (conv: Cin*5*5) */
            fan_out = (double)t->shape[0];
            fan_in = (double)t->numel / fan_out;
            if (!strncmp(nm, "fc.", 3) || !strncmp(nm, "heads.", 6))
                fill_uniform(v, t->numel, sqrt(6.0 / (fan_in + fan_out)), &r); /* xavier_uniform_ */
            else
                fill_uniform(v, t->numel, 1.0 / sqrt(fan_in), &r); /* kaiming_uniform_(a=sqrt(5)) */
        } else {
            /* the bias of the weight just before it: U(+-1/sqrt(fan_in)) */
            fill_uniform(v, t->numel, 1.0 / sqrt(fan_in), &r);
        }
    }
}

void cmr_model_tensor_name(const struct cmr_model *m, int i, char *buf, size_t n)
{
    const char *nm = m->tensors[i].name;
    int enc = !strncmp(nm, "blocks.", 7) || !strncmp(nm, "fc.", 3);
    snprintf(buf, n, "%s%s", m->cfg.kind == CMR_MODEL_CPC && enc ? "encoder." : "", nm);
}

int cmr_model_tensor_find(const struct cmr_model *m, const char *name)
{
    char buf[80];
    for (int i = 0; i < m->n_tensors; i++) {
        cmr_model_tensor_name(m, i, buf, sizeof buf);
        if (!strcmp(buf, name))
            return i;
    }
    return -1;
}

void cmr_model_tensor_get(const struct cmr_model *m, int i, float *dst)
{
    const struct cmr_tensor *t = &m->tensors[i];
    if (t->role == CMR_TENSOR_PARAM)
        memcpy(dst, m->params + t->offset, t->numel * sizeof *dst);
    else if (t->role == CMR_TENSOR_STAT)
        memcpy(dst, m->stats + t->offset, t->numel * sizeof *dst);
    else
        dst[0] = (float)m->bn_count[t->offset];
}

void cmr_model_tensor_set(struct cmr_model *m, int i, const float *src)
{
    const struct cmr_tensor *t = &m->tensors[i];
    if (t->role == CMR_TENSOR_PARAM)
        memcpy(m->params + t->offset, src, t->numel * sizeof *src);
    else if (t->role == CMR_TENSOR_STAT)
        memcpy(m->stats + t->offset, src, t->numel * sizeof *src);
    else
        m->bn_count[t->offset] = src[0] >= 0 && src[0] < 9.2e18f ? (int64_t)src[0] : 0;
}

static int bad_value(const float *v, size_t n, int var, size_t *at)
{
    for (size_t k = 0; k < n; k++)
        if (!isfinite(v[k]) || (var && v[k] < 0)) {
            *at = k;
            return 1;
        }
    return 0;
}

static const char *what_value(float v)
{
    return isnan(v) ? "NaN" : isinf(v) ? "an infinity" : "a negative variance";
}

int cmr_model_check_values(const struct cmr_model *m, const char *name, struct cmr_error *err)
{
    size_t k;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *t = &m->tensors[i];
        if (t->role == CMR_TENSOR_COUNT)
            continue;
        const float *v = (t->role == CMR_TENSOR_PARAM ? m->params : m->stats) + t->offset;
        if (bad_value(v, t->numel, t->role == CMR_TENSOR_STAT && strstr(t->name, "running_var") != NULL, &k)) {
            char tn[80];
            cmr_model_tensor_name(m, i, tn, sizeof tn);
            return cmr_error_set(err, CMR_ENAN, "%s: tensor '%s' holds %s at element %zu", name, tn,
                                 what_value(v[k]), k);
        }
    }
    if (m->adam_m && bad_value(m->adam_m, m->n_params, 0, &k))
        return cmr_error_set(err, CMR_ENAN, "%s: Adam's first moment holds %s at parameter %zu", name,
                             what_value(m->adam_m[k]), k);
    if (m->adam_v && bad_value(m->adam_v, m->n_params, 1, &k))
        return cmr_error_set(err, CMR_ENAN, "%s: Adam's second moment holds %s at parameter %zu", name,
                             m->adam_v[k] < 0 ? "a negative value" : what_value(m->adam_v[k]), k);
    return CMR_OK;
}

const char *cmr_model_meta_get(const struct cmr_model *m, const char *key)
{
    for (int i = 0; i < m->n_meta; i++)
        if (!strcmp(m->meta[i].key, key))
            return m->meta[i].val;
    return NULL;
}

int cmr_model_meta_set(struct cmr_model *m, const char *key, const char *val)
{
    char *v = strdup(val);
    if (!v)
        return CMR_ENOMEM;
    for (int i = 0; i < m->n_meta; i++)
        if (!strcmp(m->meta[i].key, key)) {
            free(m->meta[i].val);
            m->meta[i].val = v;
            return CMR_OK;
        }
    if (m->n_meta == CMR_MODEL_MAX_META) {
        free(v);
        return CMR_ETOOBIG;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return CMR_ENOMEM;
    }
    m->meta[m->n_meta].key = k;
    m->meta[m->n_meta++].val = v;
    return CMR_OK;
}

int cmr_model_zero_grad(struct cmr_model *m)
{
    if (!m->grads) {
        m->grads = malloc(m->n_params * sizeof *m->grads);
        if (!m->grads)
            return CMR_ENOMEM;
        point_params(m, m->grads, &m->g);
    }
    memset(m->grads, 0, m->n_params * sizeof *m->grads);
    return CMR_OK;
}

int cmr_model_update(struct cmr_model *m, struct cmr_error *err)
{
    if (!m->grads)
        return cmr_error_set(err, CMR_ESTATE, "model: update before any gradient (cmr_model_zero_grad, backward)");
    if (!m->adam_m) {
        m->adam_m = calloc(m->n_params, sizeof *m->adam_m);
        m->adam_v = calloc(m->n_params, sizeof *m->adam_v);
        if (!m->adam_m || !m->adam_v) {
            free(m->adam_m);
            free(m->adam_v);
            m->adam_m = m->adam_v = NULL;
            return cmr_error_set(err, CMR_ENOMEM, "model: out of memory for Adam's state");
        }
    }
    struct cmr_adam_cfg a = {m->train.lr, m->train.beta1, m->train.beta2, m->train.eps,
                             m->train.weight_decay};
    m->train.adam_t++;
    cmr_adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->n_params, &a, (long)m->train.adam_t);
    m->train.step++;
    return CMR_OK;
}
