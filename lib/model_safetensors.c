/* safetensors interchange with PyTorch (tests/ref/cmr_models.py):
 * tensor names are the state_dict() keys of Encoder, MultiEncoder and
 * MelCPC; the configuration travels in __metadata__ (docs/models.md). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "safetensors.h"

void cmr_import_opts_init(struct cmr_import_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kind = -1;
}

/* shortest %g that reads back as the same double */
static void fmt_double(char *buf, size_t n, double v)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void fmt_float(char *buf, size_t n, float v)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v)
            return;
    }
}

int cmr_model_export(const struct cmr_model *m, const char *path, struct cmr_error *err)
{
    const struct cmr_model_cfg *c = &m->cfg;
    int nt = m->n_tensors;
    struct cmr_safetensors_out *out = calloc((size_t)nt, sizeof *out);
    char (*names)[80] = calloc((size_t)nt, sizeof *names);
    float *counts = calloc(CMR_MODEL_BLOCKS, sizeof *counts);
    struct cmr_safetensors_kv meta[16 + CMR_MODEL_MAX_META];
    char vals[16][160];
    int nm = 0, rc;
    if (!out || !names || !counts) {
        free(out);
        free(names);
        free(counts);
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < nt; i++) {
        const struct cmr_tensor *t = &m->tensors[i];
        cmr_model_tensor_name(m, i, names[i], sizeof names[i]);
        out[i].name = names[i];
        out[i].ndim = t->ndim;
        out[i].shape = t->shape;
        if (t->role == CMR_TENSOR_PARAM) {
            out[i].data = m->params + t->offset;
        } else if (t->role == CMR_TENSOR_STAT) {
            out[i].data = m->stats + t->offset;
        } else {
            counts[t->offset] = (float)m->bn_count[t->offset];
            out[i].data = &counts[t->offset];
        }
    }
#define META(k, ...)                                                                             \
    do {                                                                                         \
        snprintf(vals[nm], sizeof vals[nm], __VA_ARGS__);                                        \
        meta[nm].key = (char *)(k);                                                              \
        meta[nm].val = vals[nm];                                                                 \
        nm++;                                                                                    \
    } while (0)
    META("cmr.format", "%d", CMR_MODEL_VERSION);
    META("cmr.kind", "%s", cmr_model_kind_name(c->kind));
    fmt_double(vals[nm], sizeof vals[nm], c->width);
    meta[nm].key = "cmr.width";
    meta[nm].val = vals[nm];
    nm++;
    fmt_float(vals[nm], sizeof vals[nm], c->mel_mean);
    meta[nm].key = "cmr.mel_mean";
    meta[nm].val = vals[nm];
    nm++;
    fmt_float(vals[nm], sizeof vals[nm], c->mel_std);
    meta[nm].key = "cmr.mel_std";
    meta[nm].val = vals[nm];
    nm++;
    META("cmr.emb", "%d", c->emb);
    META("cmr.widths", "%d,%d,%d,%d,%d", c->widths[0], c->widths[1], c->widths[2], c->widths[3],
         c->widths[4]);
    if (c->kind == CMR_MODEL_CPC) {
        META("cmr.hidden", "%d", c->hidden);
        META("cmr.k", "%d", c->k);
        META("cmr.context", "%d", c->context);
    }
    META("cmr.step", "%" PRId64, m->train.step);
    META("cmr.epoch", "%" PRId64, m->train.epoch);
#undef META
    for (int i = 0; i < m->n_meta; i++) {
        meta[nm].key = m->meta[i].key;
        meta[nm].val = m->meta[i].val;
        nm++;
    }
    rc = cmr_safetensors_write(path, out, nt, meta, nm, err);
    free(out);
    free(names);
    free(counts);
    return rc;
}

/* ---- import ---- */

static int parse_num(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return !errno && end != s && !*end && isfinite(*v) ? 0 : -1;
}

static int parse_int(const char *s, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(s, &end, 10);
    return !errno && end != s && !*end && *v >= lo && *v <= hi ? 0 : -1;
}

/* known __metadata__ keys, consumed by import (others are kept as model metadata) */
static const char *const known_keys[] = {"cmr.format", "cmr.kind", "cmr.width", "cmr.mel_mean",
                                         "cmr.mel_std", "cmr.emb", "cmr.widths", "cmr.hidden",
                                         "cmr.k", "cmr.context", "cmr.step", "cmr.epoch"};

static const struct cmr_safetensors_tensor *find(const struct cmr_safetensors *st, const char *prefix,
                                        const char *fmt, int idx)
{
    char name[128], tail[96];
    snprintf(tail, sizeof tail, fmt, idx);
    snprintf(name, sizeof name, "%s%s", prefix, tail);
    return cmr_safetensors_find(st, name);
}

/* the kind: option, metadata, tensor names */
static int import_kind(const struct cmr_safetensors *st, const char *path, const struct cmr_import_opts *o,
                       struct cmr_model_cfg *c, struct cmr_error *err)
{
    int kind = -1;
    const char *v;
    if ((v = cmr_safetensors_meta(st, "cmr.kind"))) {
        enum cmr_model_kind k;
        if (cmr_model_kind_parse(v, &k))
            return cmr_error_set(err, CMR_EMODEL, "%s: cmr.kind '%s' is not encoder, multi or cpc", path, v);
        kind = (int)k;
        if (o->kind >= 0 && o->kind != kind)
            return cmr_error_set(err, CMR_EMODEL, "%s: --kind %s, but the file says cmr.kind=%s", path,
                                 cmr_model_kind_name((enum cmr_model_kind)o->kind), v);
    }
    if (o->kind >= 0)
        kind = o->kind;
    if (kind < 0) {
        if (cmr_safetensors_find(st, "gru.weight_ih_l0"))
            kind = CMR_MODEL_CPC;
        else if (cmr_safetensors_find(st, "heads.0.weight"))
            kind = CMR_MODEL_MULTI;
        else if (cmr_safetensors_find(st, "fc.weight"))
            kind = CMR_MODEL_ENCODER;
        else
            return cmr_error_set(err, CMR_EMODEL,
                                 "%s: cannot tell the model kind (no cmr.kind metadata and none of fc.weight, "
                                 "heads.0.weight, gru.weight_ih_l0): give --kind encoder|multi|cpc",
                                 path);
    }
    c->kind = (enum cmr_model_kind)kind;
    return CMR_OK;
}

/* MelCPC's hidden size, K and context */
static int import_cpc(const struct cmr_safetensors *st, const char *path, const struct cmr_import_opts *o,
                      struct cmr_model_cfg *c, struct cmr_error *err)
{
    const struct cmr_safetensors_tensor *t;
    const char *v;
    long n;
    if (!(t = cmr_safetensors_find(st, "gru.weight_hh_l0")) || t->ndim != 2 || t->shape[1] < 1 ||
        t->shape[1] > 8192)
        return cmr_error_set(err, CMR_EMODEL, "%s: no 2-d tensor gru.weight_hh_l0", path);
    c->hidden = (int)t->shape[1];
    while (c->k < CMR_MODEL_MAX_K && find(st, "", "predictors.%d.weight", c->k))
        c->k++;
    if (!c->k)
        return cmr_error_set(err, CMR_EMODEL, "%s: no tensor predictors.0.weight", path);
    c->context = 4;
    if ((v = cmr_safetensors_meta(st, "cmr.context"))) {
        if (parse_int(v, 1, 1024, &n))
            return cmr_error_set(err, CMR_EMODEL, "%s: cmr.context '%s' is not an integer in [1, 1024]", path,
                                 v);
        c->context = (int)n;
    }
    if (o->context > 0)
        c->context = o->context;
    return CMR_OK;
}

/* channels and sizes from the tensor shapes */
static int import_shapes(const struct cmr_safetensors *st, const char *path, const struct cmr_import_opts *o,
                         struct cmr_model_cfg *c, struct cmr_error *err)
{
    const char *pre = c->kind == CMR_MODEL_CPC ? "encoder." : "";
    const struct cmr_safetensors_tensor *t;
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
        if (!(t = find(st, pre, "blocks.%d.conv.weight", l)) || t->ndim != 4)
            return cmr_error_set(err, CMR_EMODEL,
                                 "%s: no 4-d tensor %sblocks.%d.conv.weight: not a %s model of cmr_models.py%s",
                                 path, pre, l, cmr_model_kind_name(c->kind),
                                 o->kind < 0 ? " (give --kind if the kind was guessed wrong)" : "");
        if (t->shape[0] < 1 || t->shape[0] > 8192)
            return cmr_error_set(err, CMR_EMODEL, "%s: %sblocks.%d.conv.weight has %" PRId64 " channels", path,
                                 pre, l, t->shape[0]);
        c->widths[l] = (int)t->shape[0];
    }
    if (c->kind == CMR_MODEL_MULTI)
        t = find(st, "", "heads.%d.weight", 0);
    else
        t = find(st, pre, "fc.weight", 0);
    if (!t || t->ndim != 2 || t->shape[0] < 1 || t->shape[0] > 8192)
        return cmr_error_set(err, CMR_EMODEL, "%s: no 2-d tensor %s%s", path, pre,
                             c->kind == CMR_MODEL_MULTI ? "heads.0.weight" : "fc.weight");
    c->emb = (int)t->shape[0];
    return c->kind == CMR_MODEL_CPC ? import_cpc(st, path, o, c, err) : CMR_OK;
}

/* the width multiplier: option, metadata, or channels of block 1 / 128 */
static int import_width(const struct cmr_safetensors *st, const char *path, const struct cmr_import_opts *o,
                        struct cmr_model_cfg *c, struct cmr_error *err)
{
    const char *v;
    double wmeta = 0;
    if ((v = cmr_safetensors_meta(st, "cmr.width")) && (parse_num(v, &wmeta) || !(wmeta > 0)))
        return cmr_error_set(err, CMR_EMODEL, "%s: cmr.width '%s' is not a positive number", path, v);
    c->width = o->width > 0 ? o->width : wmeta > 0 ? wmeta : c->widths[0] / 128.0;
    struct cmr_model_cfg ref = cmr_model_cfg_default(c->kind, c->width);
    if (cmr_model_cfg_check(&ref, NULL))
        return cmr_error_set(err, CMR_EMODEL, "%s: width %g outside (0, 4]", path, c->width);
    ref.widths[4] = c->kind == CMR_MODEL_MULTI ? c->emb : ref.widths[4];
    if (memcmp(ref.widths, c->widths, sizeof c->widths) && (o->width > 0 || wmeta > 0))
        return cmr_error_set(err, CMR_EMODEL,
                             "%s: %s %g gives channels %d,%d,%d,%d,%d but the tensors have "
                             "%d,%d,%d,%d,%d",
                             path, o->width > 0 ? "--width" : "cmr.width", c->width, ref.widths[0],
                             ref.widths[1], ref.widths[2], ref.widths[3], ref.widths[4],
                             c->widths[0], c->widths[1], c->widths[2], c->widths[3], c->widths[4]);
    /* channels that no width multiplier gives (without --width or cmr.width): kept as they are */
    return CMR_OK;
}

/* the input standardisation cannot be read from shapes */
static int import_mel(const struct cmr_safetensors *st, const char *path, const struct cmr_import_opts *o,
                      struct cmr_model_cfg *c, struct cmr_error *err)
{
    c->mel_mean = 0;
    c->mel_std = 1;
    if (o->have_mel) {
        c->mel_mean = o->mel_mean;
        c->mel_std = o->mel_std;
        return CMR_OK;
    }
    const char *mm = cmr_safetensors_meta(st, "cmr.mel_mean");
    const char *ms = cmr_safetensors_meta(st, "cmr.mel_std");
    double a, b;
    if (!mm || !ms)
        return cmr_error_set(err, CMR_EMODEL,
                             "%s: no cmr.mel_mean/cmr.mel_std metadata: give --mel-mean M --mel-std S "
                             "(--mel-mean 0 --mel-std 1 for a model trained without standardisation)",
                             path);
    if (parse_num(mm, &a) || parse_num(ms, &b) || !(b > 0))
        return cmr_error_set(err, CMR_EMODEL,
                             "%s: cmr.mel_mean '%s' / cmr.mel_std '%s' are not numbers with std > 0", path, mm,
                             ms);
    c->mel_mean = (float)a;
    c->mel_std = (float)b;
    return CMR_OK;
}

/* the configuration, from the options, the metadata and the tensor shapes */
static int import_cfg(const struct cmr_safetensors *st, const char *path, const struct cmr_import_opts *o,
                      struct cmr_model_cfg *c, struct cmr_error *err)
{
    int rc;
    memset(c, 0, sizeof *c);
    if ((rc = import_kind(st, path, o, c, err)) || (rc = import_shapes(st, path, o, c, err)) ||
        (rc = import_width(st, path, o, c, err)) || (rc = import_mel(st, path, o, c, err)))
        return rc;
    c->n_time = CMR_MODEL_T;
    c->n_freq = CMR_MODEL_F;
    struct cmr_error cerr = {0};
    if (cmr_model_cfg_check(c, &cerr))
        return cmr_error_set(err, CMR_EMODEL, "%s: %s", path, cerr.msg);
    return CMR_OK;
}

/* tensor t has the shape of the model's mt (a count may be any scalar) */
static int check_shape(const struct cmr_safetensors_tensor *t, const struct cmr_tensor *mt, const char *path,
                       const char *name, struct cmr_error *err)
{
    int same = t->ndim == mt->ndim || (mt->role == CMR_TENSOR_COUNT && cmr_safetensors_numel(t) == 1);
    for (int k = 0; same && k < mt->ndim; k++)
        same = t->shape[k] == mt->shape[k];
    if (same)
        return CMR_OK;
    char got[160] = "", want[160] = "";
    for (int k = 0; k < t->ndim; k++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, k ? "," : "", t->shape[k]);
    for (int k = 0; k < mt->ndim; k++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%" PRId64, k ? "," : "", mt->shape[k]);
    return cmr_error_set(err, CMR_EMODEL, "%s: tensor '%s' has shape [%s], the model expects [%s]", path, name,
                         got, want);
}

/* every tensor of the model, with its exact shape; nothing else */
static int import_tensors(struct cmr_model *m, const struct cmr_safetensors *st, const char *path,
                          struct cmr_error *err)
{
    size_t maxn = 1;
    int rc = CMR_OK;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].numel > maxn)
            maxn = m->tensors[i].numel;
    float *tmp = malloc(maxn * sizeof *tmp);
    if (!tmp)
        return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const struct cmr_tensor *mt = &m->tensors[i];
        const struct cmr_safetensors_tensor *t;
        char name[80];
        cmr_model_tensor_name(m, i, name, sizeof name);
        if (!(t = cmr_safetensors_find(st, name))) {
            if (mt->role != CMR_TENSOR_COUNT) /* num_batches_tracked has no effect: 0 when absent */
                rc = cmr_error_set(err, CMR_EMODEL, "%s: tensor '%s' missing (a %s model needs %d tensors)",
                                   path, name, cmr_model_kind_name(m->cfg.kind), m->n_tensors);
            continue;
        }
        if ((rc = check_shape(t, mt, path, name, err)))
            break;
        cmr_safetensors_get(st, t, tmp);
        if (mt->role == CMR_TENSOR_COUNT && !isfinite(tmp[0])) {
            /* the model keeps it as an integer: cmr_model_check_values cannot see it */
            rc = cmr_error_set(err, CMR_ENAN, "%s: tensor '%s' holds %s at element 0", path, name,
                               isnan(tmp[0]) ? "NaN" : "an infinity");
            break;
        }
        cmr_model_tensor_set(m, i, tmp);
    }
    free(tmp);
    if (rc || (rc = cmr_model_check_values(m, path, err)))
        return rc;
    for (int i = 0; i < st->n_tensors; i++)
        if (cmr_model_tensor_find(m, st->tensors[i].name) < 0)
            return cmr_error_set(err, CMR_EMODEL, "%s: unexpected tensor '%s' (not part of a %s model)", path,
                                 st->tensors[i].name, cmr_model_kind_name(m->cfg.kind));
    return CMR_OK;
}

/* training position and free-form metadata */
static int import_meta(struct cmr_model *m, const struct cmr_safetensors *st, const char *path,
                       struct cmr_error *err)
{
    const char *v;
    long n;
    if ((v = cmr_safetensors_meta(st, "cmr.step")) && !parse_int(v, 0, LONG_MAX, &n))
        m->train.step = n;
    if ((v = cmr_safetensors_meta(st, "cmr.epoch")) && !parse_int(v, 0, LONG_MAX, &n))
        m->train.epoch = n;
    for (int i = 0; i < st->n_meta; i++) {
        int known = 0;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            known |= !strcmp(st->meta[i].key, known_keys[k]);
        if (!known && strlen(st->meta[i].key) <= 4096 && strlen(st->meta[i].val) <= 4096 &&
            cmr_model_meta_set(m, st->meta[i].key, st->meta[i].val) == CMR_ENOMEM)
            return cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
    }
    return CMR_OK;
}

struct cmr_model *cmr_model_import(const char *path, const struct cmr_import_opts *o,
                                   struct cmr_error *err)
{
    struct cmr_safetensors *st = NULL;
    struct cmr_model *m = NULL;
    struct cmr_model_cfg c;

    if (cmr_safetensors_read(path, &st, err))
        return NULL;
    if (import_cfg(st, path, o, &c, err) || !(m = cmr_model_new(&c, err)) || import_tensors(m, st, path, err) ||
        import_meta(m, st, path, err)) {
        cmr_model_free(m);
        m = NULL;
    }
    cmr_safetensors_free(st);
    return m;
}
