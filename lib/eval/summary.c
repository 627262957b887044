#include "eval/summary.h"

#include <math.h>
#include <stdlib.h>

struct cmr_summary {
    int dim;
    int64_t n;
    double *mean; /* (dim) running mean */
    double *m2;   /* (dim) running sum of squared deviations */
};

struct cmr_summary *cmr_summary_new(int dim, struct cmr_error *err)
{
    if (dim < 1 || dim > (1 << 24)) {
        cmr_error_set(err, CMR_EINVAL, "summary: dim should be in [1, %d], got %d", 1 << 24, dim);
        return NULL;
    }
    struct cmr_summary *s = calloc(1, sizeof *s);
    if (!s)
        goto failure;
    s->dim = dim;
    s->mean = calloc((size_t)dim, sizeof *s->mean);
    s->m2 = calloc((size_t)dim, sizeof *s->m2);
    if (!s->mean || !s->m2)
        goto failure;
    return s;
failure:
    cmr_summary_free(s);
    cmr_error_set(err, CMR_ENOMEM, "summary: out of memory");
    return NULL;
}

void cmr_summary_free(struct cmr_summary *s)
{
    if (!s)
        return;
    free(s->mean);
    free(s->m2);
    free(s);
}

void cmr_summary_reset(struct cmr_summary *s)
{
    s->n = 0;
    for (int j = 0; j < s->dim; j++)
        s->mean[j] = s->m2[j] = 0;
}

int64_t cmr_summary_count(const struct cmr_summary *s) { return s->n; }

int cmr_summary_add(struct cmr_summary *s, const float *rows, int64_t n_rows,
                    struct cmr_error *err)
{
    int d = s->dim;
    for (int64_t i = 0; i < n_rows * d; i++)
        if (!isfinite(rows[i]))
            return cmr_error_set(err, CMR_ENAN, "summary: row %lld, column %d is %g",
                                 (long long)(i / d), (int)(i % d), (double)rows[i]);
    /* Welford: mean += (x - mean) / n; m2 += (x - mean_old) * (x - mean_new) */
    for (int64_t i = 0; i < n_rows; i++) {
        const float *x = rows + i * d;
        s->n++;
        double inv = 1.0 / (double)s->n;
        for (int j = 0; j < d; j++) {
            double delta = x[j] - s->mean[j];
            s->mean[j] += delta * inv;
            s->m2[j] += delta * (x[j] - s->mean[j]);
        }
    }
    return CMR_OK;
}

int cmr_summary_get(const struct cmr_summary *s, float *out, struct cmr_error *err)
{
    if (s->n < 1)
        return cmr_error_set(err, CMR_ESTATE, "summary: no rows to summarise");
    for (int j = 0; j < s->dim; j++) {
        out[j] = (float)s->mean[j];
        double var = s->m2[j] / (double)s->n;
        out[s->dim + j] = (float)sqrt(var > 0 ? var : 0);
    }
    return CMR_OK;
}
