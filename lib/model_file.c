/* cmr model files: magic, version, configuration, training state, metadata,
 * every tensor by name (batch-norm running statistics included), optional
 * Adam state, CRC-32. docs/models.md has the byte layout. Little-endian. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "model.h"
#include "util/atomic.h"

#define FLAG_ADAM 1u
#define MAX_STR 4096

/* CRC-32 (IEEE 802.3): zlib's, over any length */
static uint32_t crc_update(uint32_t crc, const void *buf, size_t n)
{
    return (uint32_t)crc32_z(crc, buf, n);
}

/* ---- writing ---- */

struct w {
    FILE *f;
    uint32_t crc;
    int bad;
};

static void put(struct w *w, const void *p, size_t n)
{
    if (w->bad || !n)
        return;
    w->crc = crc_update(w->crc, p, n);
    if (fwrite(p, 1, n, w->f) != n)
        w->bad = 1;
}
static void put_u32(struct w *w, uint32_t v) { put(w, &v, 4); }
static void put_i32(struct w *w, int32_t v) { put(w, &v, 4); }
static void put_i64(struct w *w, int64_t v) { put(w, &v, 8); }
static void put_f32(struct w *w, float v) { put(w, &v, 4); }
static void put_f64(struct w *w, double v) { put(w, &v, 8); }
static void put_str(struct w *w, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    put_u32(w, n);
    put(w, s, n);
}

int cmr_model_save(const struct cmr_model *m, const char *path, int with_adam,
                   struct cmr_error *err)
{
    const struct cmr_model_cfg *c = &m->cfg;
    const struct cmr_train_state *t = &m->train;
    uint32_t flags = with_adam && m->adam_m ? FLAG_ADAM : 0;
    for (int i = 0; i < m->n_meta; i++)
        if (strlen(m->meta[i].key) > MAX_STR || strlen(m->meta[i].val) > MAX_STR)
            return cmr_error_set(err, CMR_EINVAL, "%s: metadata '%.40s' longer than %d bytes", path,
                                 m->meta[i].key, MAX_STR);
    struct cmr_atomic a;
    int rc = cmr_atomic_open(&a, path, CMR_ATOMIC_STREAM, err);
    if (rc)
        return rc;
    struct w w = {a.f, 0, 0};
    put(&w, CMR_MODEL_MAGIC, 8);
    put_u32(&w, CMR_MODEL_VERSION);
    put_u32(&w, (uint32_t)c->kind);
    put_f64(&w, c->width);
    for (int l = 0; l < CMR_MODEL_BLOCKS; l++)
        put_i32(&w, c->widths[l]);
    put_i32(&w, c->emb);
    put_i32(&w, c->hidden);
    put_i32(&w, c->k);
    put_i32(&w, c->context);
    put_i32(&w, c->n_time);
    put_i32(&w, c->n_freq);
    put_f32(&w, c->mel_mean);
    put_f32(&w, c->mel_std);
    put_i64(&w, t->step);
    put_i64(&w, t->epoch);
    put_f64(&w, t->lr);
    put_f64(&w, t->best_loss);
    put_i32(&w, t->bad_epochs);
    put_i64(&w, t->adam_t);
    put_f64(&w, t->beta1);
    put_f64(&w, t->beta2);
    put_f64(&w, t->eps);
    put_f64(&w, t->weight_decay);
    put_u32(&w, flags);
    put_u32(&w, (uint32_t)m->n_meta);
    for (int i = 0; i < m->n_meta; i++) {
        put_str(&w, m->meta[i].key);
        put_str(&w, m->meta[i].val);
    }
    put_u32(&w, (uint32_t)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *tn = &m->tensors[i];
        char name[80];
        cmr_model_tensor_name(m, i, name, sizeof name);
        put_str(&w, name);
        put_u32(&w, (uint32_t)tn->ndim);
        for (int d = 0; d < tn->ndim; d++)
            put_i64(&w, tn->shape[d]);
        if (tn->role == CMR_TENSOR_COUNT) {
            put_u32(&w, 1); /* i64 */
            put_i64(&w, m->bn_count[tn->offset]);
        } else {
            put_u32(&w, 0); /* f32 */
            put(&w, (tn->role == CMR_TENSOR_PARAM ? m->params : m->stats) + tn->offset,
                tn->numel * sizeof(float));
        }
    }
    if (flags & FLAG_ADAM) {
        put_i64(&w, (int64_t)m->n_params);
        put(&w, m->adam_m, m->n_params * sizeof(float));
        put(&w, m->adam_v, m->n_params * sizeof(float));
    }
    uint32_t crc = w.crc;
    put(&w, &crc, 4);
    if (w.bad) {
        cmr_error_set(err, CMR_EIO, "%s: write failed: %s", path, strerror(errno));
        cmr_atomic_abort(&a);
        return CMR_EIO;
    }
    return cmr_atomic_commit(&a, err);
}

/* ---- reading ---- */

struct r {
    const unsigned char *p;
    size_t n, i;
    const char *name;
    struct cmr_error *err;
    const char *what; /* what is being read, for the truncation message */
};

static int get(struct r *r, void *dst, size_t n)
{
    if (r->n - r->i < n)
        return cmr_error_set(r->err, CMR_ETRUNCATED,
                             "%s: truncated model file: ends at byte %zu while reading %s", r->name,
                             r->n, r->what);
    memcpy(dst, r->p + r->i, n);
    r->i += n;
    return CMR_OK;
}

static int get_str(struct r *r, char **out)
{
    uint32_t n;
    int rc = get(r, &n, 4);
    if (rc)
        return rc;
    if (n > MAX_STR)
        return cmr_error_set(r->err, CMR_EFORMAT, "%s: string of %" PRIu32 " bytes at byte %zu (limit %d)",
                             r->name, n, r->i - 4, MAX_STR);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return cmr_error_set(r->err, CMR_ENOMEM, "%s: out of memory", r->name);
    if ((rc = get(r, s, n))) {
        free(s);
        return rc;
    }
    s[n] = 0;
    if (strlen(s) != n) {
        free(s);
        return cmr_error_set(r->err, CMR_EFORMAT, "%s: NUL byte inside a string at byte %zu", r->name,
                             r->i - n);
    }
    *out = s;
    return CMR_OK;
}

/* magic, version, configuration and training state, with every check that
 * can be made before the model is allocated */
static int load_header(struct r *r, struct cmr_model_cfg *c, struct cmr_train_state *t, uint32_t *flags,
                       uint32_t *n_meta)
{
    const char *name = r->name;
    struct cmr_error *err = r->err;
    char magic[8];
    uint32_t version, kind;
    int rc;
    if (r->n < 8 || memcmp(r->p, CMR_MODEL_MAGIC, 8)) {
        if (r->n >= 9 && r->p[8] == '{')
            return cmr_error_set(err, CMR_EMAGIC,
                                 "%s: not a cmr model file (bad magic); it looks like safetensors: "
                                 "convert it with 'cmr-model import %s OUT'",
                                 name, name);
        return cmr_error_set(err, CMR_EMAGIC, "%s: not a cmr model file (bad magic)", name);
    }
    get(r, magic, 8);
    if ((rc = get(r, &version, 4)))
        return rc;
    if (version != CMR_MODEL_VERSION)
        return cmr_error_set(err, CMR_EVERSION, "%s: model format version %" PRIu32 ", this cmr reads version %d%s",
                             name, version, CMR_MODEL_VERSION,
                             version > CMR_MODEL_VERSION ? " ---> HINT: upgrade cmr" : "");
    int32_t i32;
    rc = get(r, &kind, 4) || get(r, &c->width, 8);
    for (int l = 0; l < CMR_MODEL_BLOCKS && !rc; l++)
        rc = get(r, &c->widths[l], 4);
    rc = rc || get(r, &c->emb, 4) || get(r, &c->hidden, 4) || get(r, &c->k, 4) ||
         get(r, &c->context, 4) || get(r, &c->n_time, 4) || get(r, &c->n_freq, 4) ||
         get(r, &c->mel_mean, 4) || get(r, &c->mel_std, 4) || get(r, &t->step, 8) ||
         get(r, &t->epoch, 8) || get(r, &t->lr, 8) || get(r, &t->best_loss, 8) ||
         get(r, &i32, 4) || get(r, &t->adam_t, 8) || get(r, &t->beta1, 8) ||
         get(r, &t->beta2, 8) || get(r, &t->eps, 8) || get(r, &t->weight_decay, 8) ||
         get(r, flags, 4) || get(r, n_meta, 4);
    if (rc)
        return CMR_ETRUNCATED; /* err says truncated */
    t->bad_epochs = i32;
    if (kind > CMR_MODEL_CPC)
        return cmr_error_set(err, CMR_EMODEL, "%s: unknown model kind %" PRIu32, name, kind);
    c->kind = (enum cmr_model_kind)kind;
    struct cmr_error cerr = {0};
    if (cmr_model_cfg_check(c, &cerr))
        return cmr_error_set(err, CMR_EMODEL, "%s: %s", name, cerr.msg);
    if (*n_meta > CMR_MODEL_MAX_META)
        return cmr_error_set(err, CMR_EFORMAT, "%s: %" PRIu32 " metadata entries (limit %d)", name, *n_meta,
                             CMR_MODEL_MAX_META);
    if (*flags & ~FLAG_ADAM)
        return cmr_error_set(err, CMR_EFORMAT, "%s: unknown flags 0x%" PRIx32, name, *flags);
    /* the tensors must be in the file before they are allocated: a header of
     * a few bytes must not make the loader take gigabytes (fuzz-model) */
    size_t floats = cmr_model_cfg_floats(c);
    if (floats > (r->n - r->i) / sizeof(float))
        return cmr_error_set(err, CMR_ETRUNCATED,
                             "%s: truncated model file: ends at byte %zu while reading tensors (a %s model of "
                             "this configuration needs %zu bytes of them)",
                             name, r->n, cmr_model_kind_name(c->kind), floats * sizeof(float));
    return CMR_OK;
}

static int load_meta(struct r *r, struct cmr_model *m, uint32_t n_meta)
{
    r->what = "the metadata";
    for (uint32_t i = 0; i < n_meta; i++) {
        char *k = NULL, *v = NULL;
        int rc;
        if ((rc = get_str(r, &k)) || (rc = get_str(r, &v))) {
            free(k);
            return rc;
        }
        rc = cmr_model_meta_set(m, k, v);
        free(k);
        free(v);
        if (rc)
            return cmr_error_set(r->err, rc, "%s: %s", r->name, cmr_strerror(rc));
    }
    return CMR_OK;
}

/* tensor i of the file: its name (a tensor of m not seen yet), shape, dtype, values */
static int load_tensor(struct r *r, struct cmr_model *m, char *seen, uint32_t i)
{
    const char *name = r->name;
    struct cmr_error *err = r->err;
    char *tn = NULL, what[128];
    uint32_t ndim, dtype;
    int64_t shape[8];
    int rc;
    snprintf(what, sizeof what, "tensor %" PRIu32, i);
    r->what = what;
    if ((rc = get_str(r, &tn)))
        return rc;
    snprintf(what, sizeof what, "tensor %.80s", tn);
    int idx = cmr_model_tensor_find(m, tn);
    if (idx < 0 || seen[idx]) {
        rc = cmr_error_set(err, CMR_EMODEL, "%s: tensor '%s' %s", name, tn,
                           idx < 0 ? "does not belong to this model" : "appears twice");
        free(tn);
        return rc;
    }
    free(tn);
    seen[idx] = 1;
    const struct cmr_tensor *mt = &m->tensors[idx];
    if ((rc = get(r, &ndim, 4)))
        return rc;
    if (ndim > 8)
        return cmr_error_set(err, CMR_EFORMAT, "%s: %s has rank %" PRIu32, name, what, ndim);
    int same = (int)ndim == mt->ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        if ((rc = get(r, &shape[d], 8)))
            return rc;
        same = same && shape[d] == mt->shape[d];
    }
    if (!same)
        return cmr_error_set(err, CMR_EMODEL, "%s: %s has the wrong shape for the configuration in the header",
                             name, what);
    if ((rc = get(r, &dtype, 4)))
        return rc;
    if (dtype != (mt->role == CMR_TENSOR_COUNT ? 1u : 0u))
        return cmr_error_set(err, CMR_EFORMAT, "%s: %s has dtype code %" PRIu32, name, what, dtype);
    if (mt->role == CMR_TENSOR_COUNT)
        return get(r, &m->bn_count[mt->offset], 8);
    float *dst = (mt->role == CMR_TENSOR_PARAM ? m->params : m->stats) + mt->offset;
    return get(r, dst, mt->numel * sizeof(float));
}

static int load_tensors(struct r *r, struct cmr_model *m)
{
    uint32_t n_tensors;
    int rc;
    r->what = "the tensor count";
    if ((rc = get(r, &n_tensors, 4)))
        return rc;
    if (n_tensors != (uint32_t)m->n_tensors)
        return cmr_error_set(r->err, CMR_EMODEL, "%s: %" PRIu32 " tensors, a %s model of this configuration has %d",
                             r->name, n_tensors, cmr_model_kind_name(m->cfg.kind), m->n_tensors);
    char *seen = calloc((size_t)m->n_tensors, 1);
    if (!seen)
        return cmr_error_set(r->err, CMR_ENOMEM, "%s: out of memory", r->name);
    for (uint32_t i = 0; i < n_tensors && !rc; i++)
        rc = load_tensor(r, m, seen, i);
    r->what = "the tensors"; /* not load_tensor's own buffer, gone now */
    free(seen);
    return rc;
}

static int load_adam(struct r *r, struct cmr_model *m)
{
    int64_t np;
    int rc;
    r->what = "Adam's state";
    if ((rc = get(r, &np, 8)))
        return rc;
    if (np != (int64_t)m->n_params)
        return cmr_error_set(r->err, CMR_EFORMAT, "%s: Adam state for %" PRId64 " parameters, the model has %zu",
                             r->name, np, m->n_params);
    m->adam_m = malloc(m->n_params * sizeof(float));
    m->adam_v = malloc(m->n_params * sizeof(float));
    if (!m->adam_m || !m->adam_v)
        return cmr_error_set(r->err, CMR_ENOMEM, "%s: out of memory", r->name);
    if ((rc = get(r, m->adam_m, m->n_params * sizeof(float))))
        return rc;
    return get(r, m->adam_v, m->n_params * sizeof(float));
}

/* the checksum of everything before it, and nothing after */
static int load_checksum(struct r *r)
{
    uint32_t crc_file, crc = crc_update(0, r->p, r->i);
    int rc;
    r->what = "the checksum";
    if ((rc = get(r, &crc_file, 4)))
        return rc;
    if (crc != crc_file)
        return cmr_error_set(r->err, CMR_EFORMAT, "%s: checksum mismatch: the file is corrupted", r->name);
    if (r->i != r->n)
        return cmr_error_set(r->err, CMR_EFORMAT, "%s: %zu bytes of garbage after the model", r->name,
                             r->n - r->i);
    return CMR_OK;
}

struct cmr_model *cmr_model_load_mem(const void *buf, size_t len, const char *name,
                                     struct cmr_error *err)
{
    struct r r = {buf, len, 0, name, err, "the header"};
    struct cmr_model_cfg c;
    struct cmr_train_state t;
    uint32_t flags, n_meta;
    struct cmr_model *m = NULL;

    memset(&c, 0, sizeof c);
    memset(&t, 0, sizeof t);
    if (load_header(&r, &c, &t, &flags, &n_meta) || !(m = cmr_model_new(&c, err)))
        return NULL;
    m->train = t;
    if (load_meta(&r, m, n_meta) || load_tensors(&r, m) || ((flags & FLAG_ADAM) && load_adam(&r, m)) ||
        load_checksum(&r) ||
        /* a valid checksum says nothing about the values (a diverged run, a tool) */
        cmr_model_check_values(m, name, err)) {
        cmr_model_free(m);
        return NULL;
    }
    return m;
}

struct cmr_model *cmr_model_load(const char *path, struct cmr_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        fclose(f);
        cmr_error_set(err, CMR_EIO, "%s: not a regular file", path);
        return NULL;
    }
    size_t len = (size_t)sb.st_size;
    void *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(f);
        cmr_error_set(err, CMR_ENOMEM, "%s: out of memory (%zu bytes)", path, len);
        return NULL;
    }
    size_t got = fread(buf, 1, len, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != len) {
        free(buf);
        cmr_error_set(err, CMR_EIO, "%s: read failed", path);
        return NULL;
    }
    struct cmr_model *m = cmr_model_load_mem(buf, len, path, err);
    free(buf);
    return m;
}
