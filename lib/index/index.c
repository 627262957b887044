/* The catalogue index on FAISS: lib/index/index.h. The file layout is in
 * docs/index.md ("The index file"); little-endian. */
#include "index/index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "eval/knn.h"
#include "index/faiss_shim.h"
#include "util/atomic.h"

#define HEADER_BYTES 112

struct cmr_index {
    struct cmr_index_cfg cfg;
    int d;
    char kind[CMR_KIND_MAX];
    char factory[64];
    struct cmr_faiss *f;
    int64_t n, cap;
    char **track;          /* (n) */
    struct cmr_kv **meta;  /* (n) */
    int *n_meta;           /* (n) */
    double max_norm;       /* largest |x| stored (l2: bounds the float error of a score) */
    int64_t *slot;         /* track id hash: positions, -1 empty */
    int64_t n_slot;
};

void cmr_index_cfg_default(struct cmr_index_cfg *cfg)
{
    cfg->type = CMR_INDEX_FLAT;
    cfg->metric = CMR_METRIC_COSINE;
    cfg->hnsw_m = 32;
    cfg->ef_construction = 80;
    cfg->ef_search = 128;
    cfg->sq8 = 1;
    cfg->nlist = 0;
    cfg->pq_m = 0;
    cfg->nprobe = 32;
    cfg->refine = 0;
}

static const char *type_names[] = {"flat", "hnsw", "ivfpq"};
static const char *metric_names[] = {"cosine", "l2"};

const char *cmr_index_type_name(int type) { return type >= 0 && type < 3 ? type_names[type] : "?"; }
const char *cmr_index_metric_name(int m) { return m >= 0 && m < 2 ? metric_names[m] : "?"; }
int cmr_index_type_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, type_names[i]))
            return i;
    return -1;
}
int cmr_index_metric_parse(const char *s)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(s, metric_names[i]))
            return i;
    return -1;
}

int64_t cmr_index_size(const struct cmr_index *ix) { return ix->n; }
int cmr_index_dim(const struct cmr_index *ix) { return ix->d; }
const char *cmr_index_kind(const struct cmr_index *ix) { return ix->kind; }
const struct cmr_index_cfg *cmr_index_config(const struct cmr_index *ix) { return &ix->cfg; }
const char *cmr_index_factory(const struct cmr_index *ix) { return ix->factory; }
const char *cmr_index_track(const struct cmr_index *ix, int64_t pos) { return ix->track[pos]; }
const struct cmr_kv *cmr_index_meta(const struct cmr_index *ix, int64_t pos, int *n)
{
    *n = ix->n_meta[pos];
    return ix->meta[pos];
}

/* cosine: flat takes FAISS's inner product over unit vectors (an all-zero
 * vector stays zero and scores 0 against everything, as in cmr-knn); the
 * approximate types search unit vectors by L2, |a - b|^2 = 2 - 2 cos, which
 * IVF-PQ's residual codes serve far better than the inner product (recall
 * 0.57 against 0.29 on 4000 clustered vectors of 32 values, 128 lists, PQ4),
 * and refuse a zero vector */
static int inner_product(const struct cmr_index *ix)
{
    return ix->cfg.metric == CMR_METRIC_COSINE && ix->cfg.type == CMR_INDEX_FLAT;
}

/* ---- track ids ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int64_t cmr_index_find(const struct cmr_index *ix, const char *track)
{
    if (!ix->n_slot)
        return -1;
    uint64_t mask = (uint64_t)ix->n_slot - 1;
    for (uint64_t i = hash_str(track) & mask; ix->slot[i] >= 0; i = (i + 1) & mask)
        if (!strcmp(ix->track[ix->slot[i]], track))
            return ix->slot[i];
    return -1;
}

static void slot_put(struct cmr_index *ix, int64_t pos)
{
    uint64_t mask = (uint64_t)ix->n_slot - 1, i = hash_str(ix->track[pos]) & mask;
    while (ix->slot[i] >= 0)
        i = (i + 1) & mask;
    ix->slot[i] = pos;
}

/* room for n tracks in the catalogue arrays and the hash */
static int reserve(struct cmr_index *ix, int64_t n)
{
    if (n > ix->cap) {
        int64_t cap = ix->cap ? ix->cap : 64;
        while (cap < n)
            cap *= 2;
        char **t = realloc(ix->track, sizeof *t * (size_t)cap);
        if (t)
            ix->track = t;
        struct cmr_kv **m = realloc(ix->meta, sizeof *m * (size_t)cap);
        if (m)
            ix->meta = m;
        int *nm = realloc(ix->n_meta, sizeof *nm * (size_t)cap);
        if (nm)
            ix->n_meta = nm;
        if (!t || !m || !nm)
            return CMR_ENOMEM;
        ix->cap = cap;
    }
    if (2 * n > ix->n_slot) {
        int64_t ns = ix->n_slot ? ix->n_slot : 128;
        while (ns < 2 * n)
            ns *= 2;
        int64_t *s = malloc(sizeof *s * (size_t)ns);
        if (!s)
            return CMR_ENOMEM;
        for (int64_t i = 0; i < ns; i++)
            s[i] = -1;
        free(ix->slot);
        ix->slot = s;
        ix->n_slot = ns;
        for (int64_t p = 0; p < ix->n; p++)
            slot_put(ix, p);
    }
    return CMR_OK;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static void free_meta(struct cmr_kv *m, int n)
{
    for (int i = 0; i < n; i++) {
        free(m[i].key);
        free(m[i].val);
    }
    free(m);
}

/* appends one catalogue entry (the hash slot too) */
static int push_track(struct cmr_index *ix, const char *track, const struct cmr_kv *meta, int n_meta)
{
    int64_t p = ix->n;
    ix->track[p] = dup_str(track);
    ix->n_meta[p] = 0;
    ix->meta[p] = n_meta > 0 ? calloc((size_t)n_meta, sizeof(struct cmr_kv)) : NULL;
    if (!ix->track[p] || (n_meta > 0 && !ix->meta[p])) {
        free(ix->track[p]);
        free(ix->meta[p]);
        return CMR_ENOMEM;
    }
    for (int i = 0; i < n_meta; i++) {
        ix->meta[p][i].key = dup_str(meta[i].key);
        ix->meta[p][i].val = dup_str(meta[i].val);
        ix->n_meta[p]++;
        if (!ix->meta[p][i].key || !ix->meta[p][i].val) {
            free_meta(ix->meta[p], ix->n_meta[p]);
            free(ix->track[p]);
            return CMR_ENOMEM;
        }
    }
    slot_put(ix, p);
    ix->n++;
    return CMR_OK;
}

void cmr_index_free(struct cmr_index *ix)
{
    if (!ix)
        return;
    cmr_faiss_free(ix->f);
    for (int64_t i = 0; i < ix->n; i++) {
        free(ix->track[i]);
        free_meta(ix->meta[i], ix->n_meta[i]);
    }
    free(ix->track);
    free(ix->meta);
    free(ix->n_meta);
    free(ix->slot);
    free(ix);
}

/* ---- building ---- */

static int power_of_two_below(double x)
{
    int p = 1;
    while (2.0 * p <= x)
        p *= 2;
    return p;
}

static int check_cfg(const struct cmr_index_cfg *c, int d, struct cmr_error *err)
{
    if (c->type < 0 || c->type > 2)
        return cmr_error_set(err, CMR_EINVAL, "index: type should be flat, hnsw or ivfpq, got %d", c->type);
    if (c->metric < 0 || c->metric > 1)
        return cmr_error_set(err, CMR_EINVAL, "index: metric should be cosine or l2, got %d", c->metric);
    if (d < 1 || d > CMR_INDEX_MAX_DIM)
        return cmr_error_set(err, CMR_EINVAL, "index: vector length should be in [1, %d], got %d",
                             CMR_INDEX_MAX_DIM, d);
    if (c->hnsw_m < 2 || c->hnsw_m > 256 || c->ef_construction < 1 || c->ef_construction > 100000 ||
        c->ef_search < 1 || c->ef_search > 100000)
        return cmr_error_set(err, CMR_EINVAL, "index: HNSW M should be in [2, 256] and ef in [1, 100000]");
    if (c->nlist < 0 || c->nlist > 1 << 20 || c->nprobe < 1 || c->nprobe > 1 << 20)
        return cmr_error_set(err, CMR_EINVAL, "index: nlist should be in [0, 2^20] and nprobe in [1, 2^20]");
    if (c->refine < 0 || c->refine > 1000 || (c->refine && c->type != CMR_INDEX_IVFPQ))
        return cmr_error_set(err, CMR_EINVAL, "index: refine should be in [0, 1000], and > 0 only with ivfpq");
    if (c->pq_m < 0 || (c->pq_m > 0 && d % c->pq_m))
        return cmr_error_set(err, CMR_EINVAL, "index: PQ bytes per vector should divide the vector length %d, "
                             "got %d", d, c->pq_m);
    return CMR_OK;
}

/* the vectors as FAISS stores them: unit length for cosine (scaled in
 * double, as cmr-knn does, then rounded to float; an all-zero vector stays
 * zero in a flat index and is refused by the others), as they are for l2.
 * A NaN or an infinity is refused. */
static int prepare(struct cmr_index *ix, int64_t n, const float *X, const char *const *track, float *out,
                   struct cmr_error *err)
{
    int d = ix->d;
    double *u = malloc(sizeof(double) * (size_t)d);
    if (!u)
        return cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
    for (int64_t i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d;
        const char *name = track ? track[i] : "(query)";
        if (!cmr_all_finite(x, (size_t)d)) {
            free(u);
            return cmr_error_set(err, CMR_ENAN, "index: track \"%s\": the vector has a NaN or infinite value",
                                 name);
        }
        double s = 0;
        for (int j = 0; j < d; j++)
            s += (double)x[j] * x[j];
        if (ix->cfg.metric == CMR_METRIC_COSINE) {
            if (s == 0 && ix->cfg.type != CMR_INDEX_FLAT) {
                free(u);
                return cmr_error_set(err, CMR_EINVAL, "index: track \"%s\": an all-zero vector has no cosine "
                                     "(only a flat index takes it, scoring it 0)", name);
            }
            cmr_knn_normalise(x, 1, d, u);
            for (int j = 0; j < d; j++)
                out[(size_t)i * d + j] = (float)u[j];
        } else {
            memcpy(out + (size_t)i * d, x, sizeof(float) * (size_t)d);
            if (track && sqrt(s) > ix->max_norm)
                ix->max_norm = sqrt(s);
        }
    }
    free(u);
    return CMR_OK;
}

static struct cmr_index *index_alloc(const struct cmr_index_cfg *cfg, int d, const char *kind,
                                     struct cmr_error *err)
{
    struct cmr_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
        return NULL;
    }
    ix->cfg = *cfg;
    ix->d = d;
    snprintf(ix->kind, sizeof ix->kind, "%s", kind ? kind : "");
    return ix;
}

static void make_factory(struct cmr_index *ix)
{
    const struct cmr_index_cfg *c = &ix->cfg;
    if (c->type == CMR_INDEX_FLAT)
        snprintf(ix->factory, sizeof ix->factory, "Flat");
    else if (c->type == CMR_INDEX_HNSW)
        snprintf(ix->factory, sizeof ix->factory, "HNSW%d%s", c->hnsw_m, c->sq8 ? ",SQ8" : "");
    else
        snprintf(ix->factory, sizeof ix->factory, "IVF%d,PQ%dnp%s", c->nlist, c->pq_m,
                 c->refine ? ",Refine(SQ8)" : "");
}

struct cmr_index *cmr_index_build(const struct cmr_index_cfg *cfg, int64_t n, int d, const float *X,
                                  const char *const *track, struct cmr_kv *const *meta,
                                  const int *n_meta, const char *kind, struct cmr_error *err)
{
    if (check_cfg(cfg, d, err))
        return NULL;
    if (n < 1) {
        cmr_error_set(err, CMR_EINVAL, "index: the catalogue is empty: no vectors to index");
        return NULL;
    }
    struct cmr_index *ix = index_alloc(cfg, d, kind, err);
    if (!ix)
        return NULL;
    struct cmr_index_cfg *c = &ix->cfg;
    if (c->type == CMR_INDEX_IVFPQ) {
        if (!c->nlist) {
            int p = power_of_two_below(4 * sqrt((double)n));
            c->nlist = p < 16 ? 16 : p > 65536 ? 65536 : p;
        }
        if (!c->pq_m) {
            c->pq_m = d / 8 > 0 ? d / 8 : 1;
            while (d % c->pq_m)
                c->pq_m--;
        }
        /* k-means of the lists and of each PQ sub-quantiser (256 centroids) */
        int64_t need = c->nlist > 256 ? c->nlist : 256;
        if (n < need) {
            cmr_error_set(err, CMR_EINVAL, "index: ivfpq needs at least %lld vectors to train (%d lists, 256 "
                          "PQ centroids), got %lld: use --type flat or hnsw, or a smaller --nlist",
                          (long long)need, c->nlist, (long long)n);
            goto fail;
        }
    }
    make_factory(ix);
    if (!(ix->f = cmr_faiss_new(d, ix->factory, inner_product(ix), err)))
        goto fail;
    if (c->type == CMR_INDEX_HNSW && cmr_faiss_set(ix->f, "efConstruction", c->ef_construction, err))
        goto fail;
    if (cmr_index_add(ix, n, X, track, meta, n_meta, err))
        goto fail;
    return ix;
fail:
    cmr_index_free(ix);
    return NULL;
}

int cmr_index_add(struct cmr_index *ix, int64_t n, const float *X, const char *const *track,
                  struct cmr_kv *const *meta, const int *n_meta, struct cmr_error *err)
{
    int rc;
    if (n < 0)
        return cmr_error_set(err, CMR_EINVAL, "index: negative count");
    if (n == 0)
        return CMR_OK;
    if ((rc = reserve(ix, ix->n + n)))
        return cmr_error_set(err, rc, "index: out of memory");
    /* ids: new to the index and not twice in this batch (checked before
     * anything changes: a failed add leaves the index as it was) */
    int64_t n0 = ix->n;
    for (int64_t i = 0; i < n; i++) {
        int64_t p = cmr_index_find(ix, track[i]);
        if (p >= 0) {
            rc = cmr_error_set(err, CMR_EINVAL, "index: track \"%s\" is %s", track[i],
                               p < n0 ? "already in the index" : "given twice");
            goto undo;
        }
        if ((rc = push_track(ix, track[i], meta ? meta[i] : NULL, n_meta ? n_meta[i] : 0))) {
            rc = cmr_error_set(err, rc, "index: out of memory");
            goto undo;
        }
    }
    float *V = malloc(sizeof(float) * (size_t)n * (size_t)ix->d);
    if (!V) {
        rc = cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
        goto undo;
    }
    double norm0 = ix->max_norm;
    if ((rc = prepare(ix, n, X, track, V, err)))
        goto undo_v;
    if (!cmr_faiss_is_trained(ix->f) && (rc = cmr_faiss_train(ix->f, n, V, err)))
        goto undo_v;
    if ((rc = cmr_faiss_add(ix->f, n, V, err)))
        goto undo_v;
    free(V);
    return CMR_OK;
undo_v:
    free(V);
    ix->max_norm = norm0;
undo:
    while (ix->n > n0) {
        ix->n--;
        free(ix->track[ix->n]);
        free_meta(ix->meta[ix->n], ix->n_meta[ix->n]);
    }
    for (int64_t i = 0; i < ix->n_slot; i++)
        ix->slot[i] = -1;
    for (int64_t p = 0; p < ix->n; p++)
        slot_put(ix, p);
    return rc;
}

/* ---- searching ---- */

int cmr_index_set_search(struct cmr_index *ix, int ef_search, int nprobe, int refine, struct cmr_error *err)
{
    if (ef_search > 0)
        ix->cfg.ef_search = ef_search;
    if (nprobe > 0)
        ix->cfg.nprobe = nprobe;
    if (refine > 0) {
        if (!ix->cfg.refine)
            return cmr_error_set(err, CMR_EINVAL, "index: refine applies to an ivfpq index built with it (--refine "
                                 "at build time)");
        if (refine > 1000)
            return cmr_error_set(err, CMR_EINVAL, "index: refine should be in [1, 1000], got %d", refine);
        ix->cfg.refine = refine;
    }
    if (ix->cfg.type == CMR_INDEX_HNSW)
        return cmr_faiss_set(ix->f, "efSearch", ix->cfg.ef_search, err);
    if (ix->cfg.type == CMR_INDEX_IVFPQ) {
        int rc = cmr_faiss_set(ix->f, "nprobe", ix->cfg.nprobe, err);
        if (!rc && ix->cfg.refine)
            rc = cmr_faiss_set(ix->f, "k_factor_rf", ix->cfg.refine, err);
        return rc;
    }
    return CMR_OK;
}

struct cand {
    double s; /* exact score: larger is nearer (l2: minus the distance) */
    int64_t pos;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? 1 : -1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* exact search for one query (flat): FAISS's float search gives kk
 * candidates (ids, dist: given, or searched here when ids is NULL), re-scored
 * in double; the answer is exact once the worst float score among the
 * candidates, plus its error bound, is below the k-th exact score (nothing
 * outside could then rank in the top k, ties included), else the candidates
 * are widened, up to the whole catalogue. */
static int search_exact(struct cmr_index *ix, const float *qv, const double *uq, int k, int64_t excl,
                        int64_t kk, const int64_t *ids0, const float *dist0, int64_t *pos, float *score,
                        struct cmr_error *err)
{
    int d = ix->d, rc = CMR_OK;
    int cosine = ix->cfg.metric == CMR_METRIC_COSINE;
    float *dist = NULL, *v = malloc(sizeof(float) * (size_t)d);
    int64_t *ids = NULL;
    struct cand *c = NULL;
    double qnorm = 0;
    for (int j = 0; j < d; j++)
        qnorm += uq[j] * uq[j];
    qnorm = sqrt(qnorm);
    /* |float score - exact score| <= eps: a float sum of d products (and, for
     * l2, of the norms) has a relative error below d u, u = 2^-24; doubled */
    double eps = cosine ? (d + 8) * ldexp(1.0, -23)
                        : (d + 8) * ldexp(1.0, -23) * (ix->max_norm + qnorm) * (ix->max_norm + qnorm);
    if (!v)
        return cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
    for (;;) {
        if (kk > ix->n)
            kk = ix->n;
        free(c);
        if (!(c = malloc(sizeof(struct cand) * (size_t)kk))) {
            rc = cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
            break;
        }
        if (!ids0) {
            free(dist);
            free(ids);
            dist = malloc(sizeof(float) * (size_t)kk);
            ids = malloc(sizeof(int64_t) * (size_t)kk);
            if (!dist || !ids) {
                rc = cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
                break;
            }
            if ((rc = cmr_faiss_search(ix->f, 1, qv, (int)kk, dist, ids, err)))
                break;
        }
        const int64_t *I = ids0 ? ids0 : ids;
        const float *D = ids0 ? dist0 : dist;
        ids0 = NULL; /* given candidates serve the first round only */
        int m = 0;
        double worst = INFINITY; /* the float score of the last candidate */
        for (int64_t i = 0; i < kk; i++) {
            if (I[i] < 0)
                continue;
            double f = cosine ? D[i] : -(double)D[i];
            if (f < worst)
                worst = f;
            if (I[i] == excl)
                continue;
            if ((rc = cmr_faiss_reconstruct(ix->f, I[i], v, err)))
                goto done;
            double s = 0;
            if (cosine)
                for (int j = 0; j < d; j++)
                    s += (double)v[j] * uq[j];
            else
                for (int j = 0; j < d; j++)
                    s += ((double)v[j] - uq[j]) * ((double)v[j] - uq[j]);
            c[m].s = cosine ? s : -s;
            c[m].pos = I[i];
            m++;
        }
        qsort(c, (size_t)m, sizeof *c, cmp_cand);
        if (kk == ix->n || (m >= k && worst + eps < c[k - 1].s)) {
            if (m < k) { /* cannot happen: k <= n - (excl >= 0) */
                rc = cmr_error_set(err, CMR_ESTATE, "index: %d of %d results", m, k);
                break;
            }
            for (int i = 0; i < k; i++) {
                pos[i] = c[i].pos;
                score[i] = (float)(cosine ? c[i].s : -c[i].s);
            }
            break;
        }
        kk *= 4;
    }
done:
    free(v);
    free(dist);
    free(ids);
    free(c);
    return rc;
}

int cmr_index_search(struct cmr_index *ix, int64_t nq, const float *Q, int k, const int64_t *exclude,
                     int64_t *pos, float *score, int *n_found, struct cmr_error *err)
{
    int d = ix->d, rc = CMR_OK, any_excl = 0;
    for (int64_t i = 0; exclude && i < nq; i++)
        any_excl |= exclude[i] >= 0;
    int64_t avail = ix->n - any_excl;
    if (k < 1 || k > CMR_INDEX_MAX_K || k > avail)
        return cmr_error_set(err, CMR_EINVAL, "index: k = %d, but the index holds %lld track%s%s%s", k,
                             (long long)ix->n, ix->n == 1 ? "" : "s",
                             any_excl ? " (one of them the query's own)" : "",
                             k > CMR_INDEX_MAX_K ? " and k is at most 4000" : "");
    if ((rc = cmr_index_set_search(ix, 0, 0, 0, err)))
        return rc;
    int cosine = ix->cfg.metric == CMR_METRIC_COSINE;
    int exact = ix->cfg.type == CMR_INDEX_FLAT;
    const int64_t block = 256;
    /* flat: a few more candidates than asked, so that most queries are
     * proved exact by the first, batched search */
    int kk = exact ? (int)(k + any_excl + 16 < ix->n ? k + any_excl + 16 : ix->n) : k + any_excl;
    float *qv = malloc(sizeof(float) * (size_t)block * d);
    double *uq = malloc(sizeof(double) * (size_t)d);
    float *dist = malloc(sizeof(float) * (size_t)block * kk);
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)block * kk);
    if (!qv || !uq || !dist || !ids) {
        rc = cmr_error_set(err, CMR_ENOMEM, "index: out of memory");
        goto done;
    }
    for (int64_t q0 = 0; q0 < nq; q0 += block) {
        int64_t nb = nq - q0 < block ? nq - q0 : block;
        if ((rc = prepare(ix, nb, Q + (size_t)q0 * d, NULL, qv, err)))
            goto done;
        if ((rc = cmr_faiss_search(ix->f, nb, qv, kk, dist, ids, err)))
            goto done;
        if (exact) {
            for (int64_t i = 0; i < nb; i++) {
                const float *x = Q + (size_t)(q0 + i) * d;
                if (cosine)
                    cmr_knn_normalise(x, 1, d, uq);
                else
                    for (int j = 0; j < d; j++)
                        uq[j] = x[j];
                int64_t ex = exclude ? exclude[q0 + i] : -1;
                if ((rc = search_exact(ix, qv + (size_t)i * d, uq, k, ex, kk, ids + (size_t)i * kk,
                                       dist + (size_t)i * kk, pos + (size_t)(q0 + i) * k,
                                       score + (size_t)(q0 + i) * k, err)))
                    goto done;
                if (n_found)
                    n_found[q0 + i] = k;
            }
            continue;
        }
        for (int64_t i = 0; i < nb; i++) {
            int64_t ex = exclude ? exclude[q0 + i] : -1;
            int64_t *po = pos + (size_t)(q0 + i) * k;
            float *so = score + (size_t)(q0 + i) * k;
            int m = 0;
            for (int j = 0; j < kk && m < k; j++) {
                int64_t id = ids[(size_t)i * kk + j];
                if (id < 0 || id == ex)
                    continue;
                float f = dist[(size_t)i * kk + j];
                po[m] = id;
                so[m] = cosine ? 1.0f - f / 2 : f;
                m++;
            }
            if (n_found)
                n_found[q0 + i] = m;
            for (int j = m; j < k; j++) {
                po[j] = -1;
                so[j] = NAN;
            }
        }
    }
done:
    free(qv);
    free(uq);
    free(dist);
    free(ids);
    return rc;
}

/* ---- the file ---- */

struct out {
    FILE *f;
    uLong crc;
    uint64_t bytes;
};

static int put(void *ctx, const void *buf, size_t n)
{
    struct out *o = ctx;
    const unsigned char *p = buf;
    o->bytes += n;
    while (n) { /* zlib's crc32 takes a uInt length */
        uInt m = n > (1u << 30) ? (1u << 30) : (uInt)n;
        o->crc = crc32(o->crc, p, m);
        if (fwrite(p, 1, m, o->f) != m)
            return -1;
        p += m;
        n -= m;
    }
    return 0;
}

static void le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int put_str(struct out *o, const char *s)
{
    unsigned char b[4];
    size_t n = strlen(s);
    le32(b, (uint32_t)n);
    return put(o, b, 4) || put(o, s, n);
}

static int count_bytes(void *ctx, const void *buf, size_t n)
{
    (void)buf;
    *(uint64_t *)ctx += n;
    return 0;
}

size_t cmr_index_faiss_bytes(const struct cmr_index *ix)
{
    uint64_t n = 0;
    struct cmr_error e;
    if (cmr_faiss_write(ix->f, count_bytes, &n, &e))
        return 0;
    return (size_t)n;
}

int cmr_index_save(const struct cmr_index *ix, const char *path, struct cmr_error *err)
{
    struct cmr_atomic a;
    int rc;
    uint64_t faiss_len = 0;
    if ((rc = cmr_faiss_write(ix->f, count_bytes, &faiss_len, err)))
        return rc;
    /* the whole file's size, for a clear message on a truncated copy */
    uint64_t total = HEADER_BYTES;
    for (int64_t i = 0; i < ix->n; i++) {
        total += 8 + strlen(ix->track[i]);
        for (int j = 0; j < ix->n_meta[i]; j++)
            total += 8 + strlen(ix->meta[i][j].key) + strlen(ix->meta[i][j].val);
    }
    total += 8 + faiss_len + 4;
    if ((rc = cmr_atomic_open(&a, path, CMR_ATOMIC_STREAM, err)))
        return rc;
    struct out o = {a.f, crc32(0, Z_NULL, 0), 0};
    unsigned char h[HEADER_BYTES] = {0};
    memcpy(h, CMR_INDEX_MAGIC, 4);
    le32(h + 4, CMR_INDEX_VERSION);
    le32(h + 8, (uint32_t)ix->d);
    le32(h + 12, (uint32_t)ix->cfg.type);
    le32(h + 16, (uint32_t)ix->cfg.metric);
    const struct cmr_index_cfg *c = &ix->cfg;
    int32_t params[7] = {c->hnsw_m, c->ef_construction, c->ef_search, c->sq8, c->nlist, c->pq_m, c->nprobe};
    for (int i = 0; i < 7; i++)
        le32(h + 20 + 4 * i, (uint32_t)params[i]);
    memcpy(h + 48, ix->kind, strlen(ix->kind));
    le64(h + 80, (uint64_t)ix->n);
    uint64_t bits;
    memcpy(&bits, &ix->max_norm, 8);
    le64(h + 88, bits);
    le64(h + 96, total);
    le32(h + 104, (uint32_t)c->refine);
    /* h + 108: 4 bytes reserved, zero */
    int bad = put(&o, h, sizeof h);
    for (int64_t i = 0; !bad && i < ix->n; i++) {
        unsigned char b[4];
        bad |= put_str(&o, ix->track[i]);
        le32(b, (uint32_t)ix->n_meta[i]);
        bad |= put(&o, b, 4);
        for (int j = 0; !bad && j < ix->n_meta[i]; j++)
            bad |= put_str(&o, ix->meta[i][j].key) || put_str(&o, ix->meta[i][j].val);
    }
    unsigned char b8[8];
    le64(b8, faiss_len);
    if (!bad)
        bad |= put(&o, b8, 8);
    if (!bad && (rc = cmr_faiss_write(ix->f, put, &o, err))) {
        cmr_atomic_abort(&a);
        return rc;
    }
    unsigned char b4[4];
    le32(b4, (uint32_t)o.crc);
    if (!bad)
        bad |= fwrite(b4, 1, 4, a.f) != 4;
    if (bad || o.bytes + 4 != total) {
        cmr_atomic_abort(&a);
        return cmr_error_set(err, CMR_EIO, "index: %s: write failed: %s", path, strerror(errno));
    }
    return cmr_atomic_commit(&a, err);
}

/* a length-prefixed string at *p, bounded by end, valid UTF-8, no NUL */
static int get_str(const unsigned char **p, const unsigned char *end, char **out)
{
    if (end - *p < 4)
        return -1;
    uint32_t n = rd32(*p);
    *p += 4;
    if (n > CMR_FRAME_MAX_STRING || (uint64_t)(end - *p) < n || memchr(*p, 0, n) ||
        !cmr_utf8_valid((const char *)*p, n, NULL))
        return -1;
    if (!(*out = malloc(n + 1)))
        return -2;
    memcpy(*out, *p, n);
    (*out)[n] = 0;
    *p += n;
    return 0;
}

/* the whole file: its magic, version, length and CRC-32. 0, or -1 with err set */
static int load_check_file(const unsigned char *b, size_t len, const char *name, struct cmr_error *err)
{
    if (len < 4 || memcmp(b, CMR_INDEX_MAGIC, 4)) {
        cmr_error_set(err, CMR_EFORMAT, "%s: not a cmr index file (no \"" CMR_INDEX_MAGIC "\" magic)", name);
        return -1;
    }
    if (len < HEADER_BYTES + 12) {
        cmr_error_set(err, CMR_EFORMAT, "%s: truncated index file: %zu bytes", name, len);
        return -1;
    }
    uint32_t version = rd32(b + 4);
    if (version != CMR_INDEX_VERSION && version != 1) {
        cmr_error_set(err, version > CMR_INDEX_VERSION ? CMR_EVERSION : CMR_EFORMAT,
                      "%s: index format version %u, this build reads version %d%s", name, version,
                      CMR_INDEX_VERSION, version > CMR_INDEX_VERSION ? " (a newer cmr wrote it)" : "");
        return -1;
    }
    uint64_t total = rd64(b + 96);
    if (total != len) {
        cmr_error_set(err, CMR_EFORMAT, "%s: %s index file: %zu bytes, its header says %llu", name,
                      len < total ? "truncated" : "corrupt", len, (unsigned long long)total);
        return -1;
    }
    uLong crc = crc32(0, Z_NULL, 0);
    for (size_t off = 0; off < len - 4;) {
        uInt m = len - 4 - off > (1u << 30) ? (1u << 30) : (uInt)(len - 4 - off);
        crc = crc32(crc, b + off, m);
        off += m;
    }
    if ((uint32_t)crc != rd32(b + len - 4)) {
        cmr_error_set(err, CMR_EFORMAT, "%s: corrupt index file: CRC-32 mismatch", name);
        return -1;
    }
    return 0;
}

/* the header's fields: an empty index of its configuration, dimension and
 * kind, *n its track count; NULL with err set if they are out of range */
static struct cmr_index *load_header(const unsigned char *b, size_t len, const char *name, uint64_t *n,
                                     struct cmr_error *err)
{
    struct cmr_index_cfg cfg;
    cmr_index_cfg_default(&cfg);
    int d = (int)rd32(b + 8);
    cfg.type = (int)rd32(b + 12);
    cfg.metric = (int)rd32(b + 16);
    int32_t *params[7] = {&cfg.hnsw_m, &cfg.ef_construction, &cfg.ef_search, &cfg.sq8, &cfg.nlist,
                          &cfg.pq_m, &cfg.nprobe};
    for (int i = 0; i < 7; i++)
        *params[i] = (int32_t)rd32(b + 20 + 4 * i);
    cfg.refine = (int32_t)rd32(b + 104); /* version 1: reserved, zero */
    char kind[CMR_KIND_MAX] = {0};
    memcpy(kind, b + 48, CMR_KIND_MAX - 1);
    *n = rd64(b + 80);
    struct cmr_error e = {0};
    if (rd32(b + 8) > CMR_INDEX_MAX_DIM || check_cfg(&cfg, d, &e) || cfg.sq8 < 0 || cfg.sq8 > 1 ||
        !kind[0] || b[48 + CMR_KIND_MAX - 1] || *n < 1 || *n > (len - HEADER_BYTES) / 8) {
        cmr_error_set(err, CMR_EFORMAT, "%s: corrupt index file: bad header%s%s", name, e.msg[0] ? ": " : "",
                      e.msg);
        return NULL;
    }
    return index_alloc(&cfg, d, kind, err);
}

/* the tracks section at *p, bounded by end: n ids, each with its metadata,
 * appended to ix; *p moves past it. 0, or -1 with err set */
static int load_tracks(struct cmr_index *ix, uint64_t n, const unsigned char **p, const unsigned char *end,
                       const char *name, struct cmr_error *err)
{
    for (uint64_t i = 0; i < n; i++) {
        char *t = NULL;
        int r = get_str(p, end, &t);
        if (r)
            goto bad_str;
        ix->track[ix->n] = t;
        ix->meta[ix->n] = NULL;
        ix->n_meta[ix->n] = 0;
        ix->n++;
        if (end - *p < 4 || rd32(*p) > CMR_FRAME_MAX_ENTRIES || rd32(*p) > (uint64_t)(end - *p) / 8)
            goto corrupt;
        int nm = (int)rd32(*p);
        *p += 4;
        if (nm && !(ix->meta[ix->n - 1] = calloc((size_t)nm, sizeof(struct cmr_kv)))) {
            cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", name);
            return -1;
        }
        for (int j = 0; j < nm; j++) {
            struct cmr_kv *kv = &ix->meta[ix->n - 1][j];
            if ((r = get_str(p, end, &kv->key)) || (r = get_str(p, end, &kv->val))) {
                free(kv->key);
                kv->key = NULL;
                goto bad_str;
            }
            ix->n_meta[ix->n - 1]++;
        }
        if (cmr_index_find(ix, t) >= 0) {
            cmr_error_set(err, CMR_EFORMAT, "%s: corrupt index file: track \"%s\" twice", name, t);
            return -1;
        }
        slot_put(ix, ix->n - 1);
        continue;
    bad_str:
        if (r == -2) {
            cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", name);
            return -1;
        }
        goto corrupt;
    }
    return 0;
corrupt:
    cmr_error_set(err, CMR_EFORMAT, "%s: corrupt index file: inconsistent sizes", name);
    return -1;
}

struct cmr_index *cmr_index_load_mem(const void *buf, size_t len, const char *name, struct cmr_error *err)
{
    const unsigned char *b = buf, *p, *end;
    struct cmr_index *ix = NULL;
    uint64_t n;
    struct cmr_error e = {0};
    if (load_check_file(b, len, name, err) || !(ix = load_header(b, len, name, &n, err)))
        return NULL;
    memcpy(&ix->max_norm, b + 88, 8);
    if (!isfinite(ix->max_norm) || ix->max_norm < 0)
        goto corrupt;
    make_factory(ix);
    if (reserve(ix, (int64_t)n)) {
        cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", name);
        goto fail;
    }
    p = b + HEADER_BYTES;
    end = b + len - 4;
    if (load_tracks(ix, n, &p, end, name, err))
        goto fail;
    if (end - p < 8 || rd64(p) != (uint64_t)(end - p) - 8)
        goto corrupt;
    p += 8;
    if (!(ix->f = cmr_faiss_read(p, (size_t)(end - p), &e))) {
        cmr_error_set(err, e.code == CMR_ENOMEM ? CMR_ENOMEM : CMR_EFORMAT, "%s: corrupt index file: %s", name,
                      e.msg);
        goto fail;
    }
    if (cmr_faiss_dim(ix->f) != ix->d || cmr_faiss_ntotal(ix->f) != (int64_t)n || !cmr_faiss_is_trained(ix->f))
        goto corrupt;
    return ix;
corrupt:
    cmr_error_set(err, CMR_EFORMAT, "%s: corrupt index file: inconsistent sizes", name);
fail:
    cmr_index_free(ix);
    return NULL;
}

struct cmr_index *cmr_index_load(const char *path, struct cmr_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        cmr_error_set(err, CMR_EIO, "%s: %s", path, errno ? strerror(errno) : "not a regular file");
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        close(fd);
        cmr_error_set(err, CMR_EFORMAT, "%s: empty file, not a cmr index", path);
        return NULL;
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        cmr_error_set(err, CMR_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct cmr_index *ix = cmr_index_load_mem(m, len, path, err);
    munmap(m, len);
    return ix;
}
