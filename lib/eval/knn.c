#include "eval/knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

struct cmr_knn_cfg cmr_knn_cfg_default(void)
{
    return (struct cmr_knn_cfg){.queries = 3, .negatives = 100, .k = 10, .shuffle = 0, .seed = 0};
}

void cmr_knn_normalise(const float *emb, int n, int d, double *out)
{
    for (int i = 0; i < n; i++) {
        const float *x = emb + (size_t)i * d;
        double s = 0;
        for (int j = 0; j < d; j++)
            s += (double)x[j] * x[j];
        double inv = s > 0 ? 1.0 / sqrt(s) : 0.0;
        for (int j = 0; j < d; j++)
            out[(size_t)i * d + j] = x[j] * inv;
    }
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* the configuration and the vectors; counts the zero vectors */
static int check_input(const struct cmr_knn_cfg *cfg, const float *emb, int n, int d, int n_playlists,
                       struct cmr_knn_result *res, struct cmr_error *err)
{
    if (cfg->queries < 1)
        return cmr_error_set(err, CMR_EINVAL, "knn: queries should be >= 1, got %d", cfg->queries);
    if (cfg->k < 1)
        return cmr_error_set(err, CMR_EINVAL, "knn: k should be >= 1, got %d", cfg->k);
    if (cfg->negatives == 0)
        return cmr_error_set(err, CMR_EINVAL, "knn: negatives should be >= 1 (or < 0 for all), got 0");
    if (n < 1 || d < 1 || n_playlists < 0)
        return cmr_error_set(err, CMR_EINVAL, "knn: need tracks and a dimension, got n=%d d=%d", n, d);
    for (size_t i = 0; i < (size_t)n * d; i++)
        if (!isfinite(emb[i]))
            return cmr_error_set(err, CMR_ENAN, "knn: track %zu, value %zu is %g", i / d, i % d,
                                 (double)emb[i]);
    /* a zero vector has no direction, so no cosine: it scores 0 against
     * everything; when every vector is zero every score ties and the
     * result (MPR 1) says nothing */
    for (int i = 0; i < n; i++) {
        const float *x = emb + (size_t)i * d;
        int j = 0;
        while (j < d && x[j] == 0)
            j++;
        res->zero_vectors += j == d;
    }
    if (res->zero_vectors == n)
        return cmr_error_set(err, CMR_EINVAL, "knn: all %d vectors are zero: cosine similarity is undefined "
                             "(a collapsed or untrained encoder?)", n);
    return CMR_OK;
}

/* the evaluation's buffers and sums */
struct knn {
    const struct cmr_knn_cfg *cfg;
    int n, d;
    double *u;           /* (n, d) unit rows */
    double *qmean;       /* (d) */
    double *score;       /* (n) */
    double *sorted;      /* (n) the negatives' scores, decreasing (all negatives) */
    int *pool;           /* (n) the tracks outside the playlist */
    int *order;          /* (n) the playlist's tracks, queries first */
    unsigned char *in;   /* (n) 1 for the playlist's tracks */
    double mpr_sum;
    struct cmr_knn_result *res;
};

/* score(c) = (1/Q) sum_q <u_c, u_q> = <u_c, mean_q u_q> */
static void score_all(struct knn *k)
{
    int Q = k->cfg->queries, d = k->d;
    for (int j = 0; j < d; j++)
        k->qmean[j] = 0;
    for (int q = 0; q < Q; q++) {
        const double *uq = k->u + (size_t)k->order[q] * d;
        for (int j = 0; j < d; j++)
            k->qmean[j] += uq[j];
    }
    for (int j = 0; j < d; j++)
        k->qmean[j] /= Q;
    for (int c = 0; c < k->n; c++) {
        const double *uc = k->u + (size_t)c * d;
        double s = 0;
        for (int j = 0; j < d; j++)
            s += uc[j] * k->qmean[j];
        k->score[c] = s;
    }
}

/* each held-out track of the playlist (order[Q .. m)) ranked among the negatives */
static void rank_items(struct knn *k, int m, struct cmr_rng *r)
{
    const struct cmr_knn_cfg *cfg = k->cfg;
    int np = 0;
    for (int c = 0; c < k->n; c++)
        if (!k->in[c])
            k->pool[np++] = c;
    if (cfg->negatives < 0) {
        for (int i = 0; i < np; i++)
            k->sorted[i] = k->score[k->pool[i]];
        qsort(k->sorted, (size_t)np, sizeof *k->sorted, cmp_desc);
    }
    for (int it = cfg->queries; it < m; it++) {
        double s = k->score[k->order[it]];
        int64_t ge = 0, nneg;
        if (cfg->negatives < 0) {
            /* count of sorted (decreasing) values >= s: first index with value < s */
            int lo = 0, hi = np;
            while (lo < hi) {
                int mid = lo + (hi - lo) / 2;
                if (k->sorted[mid] >= s)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            ge = lo;
            nneg = np;
        } else {
            nneg = cfg->negatives;
            for (int i = 0; i < cfg->negatives; i++) {
                int j = i + (int)cmr_rng_below(r, (uint64_t)(np - i));
                int t = k->pool[i]; k->pool[i] = k->pool[j]; k->pool[j] = t;
                ge += k->score[k->pool[i]] >= s;
            }
        }
        int64_t rank = 1 + ge;
        k->res->items++;
        k->res->hits += rank <= cfg->k;
        k->mpr_sum += (double)(rank - 1) / (double)nneg;
    }
}

/* playlist p of m tracks mem[0 .. m), marked in k->in by the caller */
static int eval_playlist(struct knn *k, int p, const int *mem, int m, const struct cmr_rng *base,
                         struct cmr_error *err)
{
    const struct cmr_knn_cfg *cfg = k->cfg;
    int outside = k->n - m;
    if (m <= cfg->queries) {
        k->res->skipped++;
        return CMR_OK;
    }
    if (outside < 1 || (cfg->negatives > 0 && outside < cfg->negatives))
        return cmr_error_set(err, CMR_EINVAL,
                             "knn: playlist %d: %d track%s outside it, fewer than %d negatives "
                             "(use fewer negatives, or all)",
                             p, outside, outside == 1 ? "" : "s", cfg->negatives > 0 ? cfg->negatives : 1);
    struct cmr_rng r;
    cmr_rng_split(base, (uint64_t)p, &r);
    for (int i = 0; i < m; i++)
        k->order[i] = mem[i];
    if (cfg->shuffle)
        for (int i = m - 1; i > 0; i--) {
            int j = (int)cmr_rng_below(&r, (uint64_t)i + 1);
            int t = k->order[i]; k->order[i] = k->order[j]; k->order[j] = t;
        }
    score_all(k);
    rank_items(k, m, &r);
    k->res->playlists++;
    return CMR_OK;
}

/* marks playlist p's tracks in k->in: each a track, none twice */
static int mark_playlist(struct knn *k, int p, const int *mem, int m, struct cmr_error *err)
{
    for (int i = 0; i < m; i++) {
        if (mem[i] < 0 || mem[i] >= k->n)
            return cmr_error_set(err, CMR_EINVAL, "knn: playlist %d: track index %d not in [0, %d)", p, mem[i],
                                 k->n);
        if (k->in[mem[i]])
            return cmr_error_set(err, CMR_EINVAL, "knn: playlist %d lists track %d twice", p, mem[i]);
        k->in[mem[i]] = 1;
    }
    return CMR_OK;
}

int cmr_knn_eval(const struct cmr_knn_cfg *cfg, const float *emb, int n, int d,
                 const int *start, const int *members, int n_playlists,
                 struct cmr_knn_result *res, struct cmr_error *err)
{
    memset(res, 0, sizeof *res);
    res->hr = res->mpr = NAN;
    int rc = check_input(cfg, emb, n, d, n_playlists, res, err);
    if (rc)
        return rc;
    struct knn k = {.cfg = cfg, .n = n, .d = d, .res = res};
    k.u = malloc(sizeof(double) * (size_t)n * d);
    k.qmean = malloc(sizeof(double) * (size_t)d);
    k.score = malloc(sizeof(double) * (size_t)n);
    k.sorted = malloc(sizeof(double) * (size_t)n);
    k.pool = malloc(sizeof(int) * (size_t)n);
    k.order = malloc(sizeof(int) * (size_t)n);
    k.in = calloc((size_t)n, 1);
    if (!k.u || !k.qmean || !k.score || !k.sorted || !k.pool || !k.order || !k.in) {
        rc = cmr_error_set(err, CMR_ENOMEM, "knn: out of memory");
        goto done;
    }
    cmr_knn_normalise(emb, n, d, k.u);

    struct cmr_rng base;
    cmr_rng_seed(&base, cfg->seed);
    for (int p = 0; p < n_playlists && !rc; p++) {
        int m = start[p + 1] - start[p];
        if (m < 0 || start[p] < 0) {
            rc = cmr_error_set(err, CMR_EINVAL, "knn: playlist %d has a bad extent", p);
            break;
        }
        const int *mem = members + start[p];
        if ((rc = mark_playlist(&k, p, mem, m, err)) || (rc = eval_playlist(&k, p, mem, m, &base, err)))
            break;
        for (int i = 0; i < m; i++)
            k.in[mem[i]] = 0;
    }
    if (rc)
        goto done;
    if (res->items == 0) {
        rc = cmr_error_set(err, CMR_EINVAL,
                           "knn: no playlist has more than %d tracks, nothing to rank", cfg->queries);
        goto done;
    }
    res->hr = (double)res->hits / (double)res->items;
    res->mpr = k.mpr_sum / (double)res->items;
done:
    free(k.u);
    free(k.qmean);
    free(k.score);
    free(k.sorted);
    free(k.pool);
    free(k.order);
    free(k.in);
    return rc;
}
