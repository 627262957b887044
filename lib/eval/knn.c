#include "eval/knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

void cmr_knn_cfg_default(struct cmr_knn_cfg *cfg)
{
    cfg->queries = 3;
    cfg->negatives = 100;
    cfg->k = 10;
    cfg->shuffle = 0;
    cfg->seed = 0;
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

int cmr_knn_eval(const struct cmr_knn_cfg *cfg, const float *emb, int n, int d,
                 const int *start, const int *members, int n_playlists,
                 struct cmr_knn_result *res, struct cmr_error *err)
{
    memset(res, 0, sizeof *res);
    res->hr = res->mpr = NAN;
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

    int rc = CMR_OK;
    double *u = malloc(sizeof(double) * (size_t)n * d);
    double *qmean = malloc(sizeof(double) * (size_t)d);
    double *score = malloc(sizeof(double) * (size_t)n);
    double *sorted = malloc(sizeof(double) * (size_t)n);
    int *pool = malloc(sizeof(int) * (size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n);
    unsigned char *in = calloc((size_t)n, 1);
    if (!u || !qmean || !score || !sorted || !pool || !order || !in) {
        rc = cmr_error_set(err, CMR_ENOMEM, "knn: out of memory");
        goto done;
    }
    cmr_knn_normalise(emb, n, d, u);

    struct cmr_rng base;
    cmr_rng_seed(&base, cfg->seed);
    double mpr_sum = 0;
    for (int p = 0; p < n_playlists; p++) {
        int m = start[p + 1] - start[p];
        if (m < 0 || start[p] < 0) {
            rc = cmr_error_set(err, CMR_EINVAL, "knn: playlist %d has a bad extent", p);
            goto done;
        }
        const int *mem = members + start[p];
        for (int i = 0; i < m; i++) {
            if (mem[i] < 0 || mem[i] >= n) {
                rc = cmr_error_set(err, CMR_EINVAL, "knn: playlist %d: track index %d not in [0, %d)",
                                   p, mem[i], n);
                goto done;
            }
            if (in[mem[i]]) {
                rc = cmr_error_set(err, CMR_EINVAL, "knn: playlist %d lists track %d twice", p, mem[i]);
                goto done;
            }
            in[mem[i]] = 1;
            order[i] = mem[i];
        }
        int outside = n - m;
        if (m <= cfg->queries) {
            res->skipped++;
            goto next;
        }
        if (outside < 1 || (cfg->negatives > 0 && outside < cfg->negatives)) {
            rc = cmr_error_set(err, CMR_EINVAL,
                               "knn: playlist %d: %d track%s outside it, fewer than %d negatives "
                               "(use fewer negatives, or all)",
                               p, outside, outside == 1 ? "" : "s",
                               cfg->negatives > 0 ? cfg->negatives : 1);
            goto done;
        }
        struct cmr_rng r;
        cmr_rng_split(&base, (uint64_t)p, &r);
        if (cfg->shuffle)
            for (int i = m - 1; i > 0; i--) {
                int j = (int)cmr_rng_below(&r, (uint64_t)i + 1);
                int t = order[i]; order[i] = order[j]; order[j] = t;
            }

        /* score(c) = (1/Q) sum_q <u_c, u_q> = <u_c, mean_q u_q> */
        int Q = cfg->queries;
        for (int j = 0; j < d; j++)
            qmean[j] = 0;
        for (int q = 0; q < Q; q++) {
            const double *uq = u + (size_t)order[q] * d;
            for (int j = 0; j < d; j++)
                qmean[j] += uq[j];
        }
        for (int j = 0; j < d; j++)
            qmean[j] /= Q;
        for (int c = 0; c < n; c++) {
            const double *uc = u + (size_t)c * d;
            double s = 0;
            for (int j = 0; j < d; j++)
                s += uc[j] * qmean[j];
            score[c] = s;
        }
        int np = 0;
        for (int c = 0; c < n; c++)
            if (!in[c])
                pool[np++] = c;
        if (cfg->negatives < 0) {
            for (int i = 0; i < np; i++)
                sorted[i] = score[pool[i]];
            qsort(sorted, (size_t)np, sizeof *sorted, cmp_desc);
        }
        for (int it = Q; it < m; it++) {
            double s = score[order[it]];
            int64_t ge = 0, nneg;
            if (cfg->negatives < 0) {
                /* count of sorted (decreasing) values >= s: first index with value < s */
                int lo = 0, hi = np;
                while (lo < hi) {
                    int mid = lo + (hi - lo) / 2;
                    if (sorted[mid] >= s)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                ge = lo;
                nneg = np;
            } else {
                nneg = cfg->negatives;
                for (int i = 0; i < cfg->negatives; i++) {
                    int j = i + (int)cmr_rng_below(&r, (uint64_t)(np - i));
                    int t = pool[i]; pool[i] = pool[j]; pool[j] = t;
                    ge += score[pool[i]] >= s;
                }
            }
            int64_t rank = 1 + ge;
            res->items++;
            res->hits += rank <= cfg->k;
            mpr_sum += (double)(rank - 1) / (double)nneg;
        }
        res->playlists++;
    next:
        for (int i = 0; i < m; i++)
            in[mem[i]] = 0;
    }
    if (res->items == 0) {
        rc = cmr_error_set(err, CMR_EINVAL,
                           "knn: no playlist has more than %d tracks, nothing to rank", cfg->queries);
        goto done;
    }
    res->hr = (double)res->hits / (double)res->items;
    res->mpr = mpr_sum / (double)res->items;
done:
    free(u);
    free(qmean);
    free(score);
    free(sorted);
    free(pool);
    free(order);
    free(in);
    return rc;
}
