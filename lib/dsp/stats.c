/* Global mean/std accumulation and the stats file (see stats.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsp/stats.h"
#include "util/atomic.h"

void cmr_stats_init(struct cmr_stats *s)
{
    s->count = 0;
    s->mean = 0;
    s->m2 = 0;
}

void cmr_stats_merge(struct cmr_stats *a, const struct cmr_stats *b)
{
    /* ref: Chan, Golub, LeVeque, "Updating formulae and a pairwise algorithm
     * for computing sample variances" (1979); en.wikipedia.org/wiki/
     * Algorithms_for_calculating_variance#Parallel_algorithm */
    if (b->count == 0)
        return;
    if (a->count == 0) {
        *a = *b;
        return;
    }
    double na = (double)a->count, nb = (double)b->count, n = na + nb;
    double delta = b->mean - a->mean;
    a->mean += delta * nb / n;
    a->m2 += b->m2 + delta * delta * na * nb / n;
    a->count += b->count;
}

int cmr_stats_add(struct cmr_stats *s, const float *x, size_t n)
{
    if (n == 0)
        return CMR_OK;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return CMR_ENAN;
        sum += x[i];
    }
    struct cmr_stats c = { .count = n, .mean = sum / (double)n, .m2 = 0 };
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - c.mean;
        c.m2 += d * d;
    }
    cmr_stats_merge(s, &c);
    return CMR_OK;
}

double cmr_stats_mean(const struct cmr_stats *s) { return s->mean; }

double cmr_stats_std(const struct cmr_stats *s)
{
    return s->count < 2 ? 0.0 : sqrt(s->m2 / (double)s->count);
}

void cmr_stats_apply(float *x, size_t n, double mean, double std)
{
    float m = (float)mean, r = (float)(1.0 / std);
    for (size_t i = 0; i < n; i++)
        x[i] = (x[i] - m) * r;
}

/* a text field must stay on one line */
static int one_line(const char *s)
{
    return !s || (!strchr(s, '\n') && !strchr(s, '\r') && strlen(s) < CMR_STATS_TEXT_MAX);
}

int cmr_stats_write(const char *path, const struct cmr_stats *s, const char *kind,
                    const char *config, struct cmr_error *err)
{
    double mean = cmr_stats_mean(s), std = cmr_stats_std(s);
    if (s->count == 0)
        return cmr_error_set(err, CMR_EINVAL, "stats: no values to compute statistics from");
    if (!(std > 0) || !isfinite(std) || !isfinite(mean))
        return cmr_error_set(err, CMR_EINVAL, "stats: std should be > 0, got %g over %llu values",
                             std, (unsigned long long)s->count);
    if (!one_line(kind) || !one_line(config) || (kind && strlen(kind) >= 64))
        return cmr_error_set(err, CMR_EINVAL, "stats: kind and config should be one short line each");

    struct cmr_atomic a;
    int rc = cmr_atomic_open(&a, path, CMR_ATOMIC_STREAM, err);
    if (rc)
        return rc;
    FILE *f = a.f;
    fprintf(f, "%s %d\n", CMR_STATS_MAGIC, CMR_STATS_VERSION);
    if (kind && *kind)
        fprintf(f, "kind %s\n", kind);
    if (config && *config)
        fprintf(f, "config %s\n", config);
    fprintf(f, "count %llu\nmean %.17g\nstd %.17g\n", (unsigned long long)s->count, mean, std);
    return cmr_atomic_commit(&a, err);
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int cmr_stats_read(const char *path, struct cmr_stats_file *out, struct cmr_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f)
        return cmr_error_set(err, CMR_EIO, "stats: cannot open %s: %s", path, strerror(errno));
    char line[CMR_STATS_TEXT_MAX + 64];
    int lineno = 0, have_mean = 0, have_std = 0, rc = CMR_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        else if (!feof(f)) {
            rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s:%d: line too long", path, lineno);
            goto done;
        }
        if (n && line[n - 1] == '\r')
            line[--n] = 0;
        if (lineno == 1) {
            size_t m = strlen(CMR_STATS_MAGIC);
            long v;
            char *end;
            if (strncmp(line, CMR_STATS_MAGIC, m) != 0 || line[m] != ' ') {
                rc = cmr_error_set(err, CMR_EFORMAT,
                                   "stats: %s is not a cmr stats file (it should start with '%s %d')",
                                   path, CMR_STATS_MAGIC, CMR_STATS_VERSION);
                goto done;
            }
            errno = 0;
            v = strtol(line + m + 1, &end, 10);
            if (end == line + m + 1 || *end || errno || v < 1) {
                rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s:1: bad version '%s'", path, line + m + 1);
                goto done;
            }
            if (v > CMR_STATS_VERSION) {
                rc = cmr_error_set(err, CMR_EVERSION,
                                   "stats: %s has version %ld, this build reads up to %d; "
                                   "recompute it with this cmr-mel --stats", path, v, CMR_STATS_VERSION);
                goto done;
            }
            continue;
        }
        if (n == 0 || line[0] == '#')
            continue;
        char *val = strchr(line, ' ');
        if (!val) {
            rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s:%d: expected 'key value', got '%s'",
                               path, lineno, line);
            goto done;
        }
        *val++ = 0;
        if (!strcmp(line, "mean") || !strcmp(line, "std")) {
            double d;
            if (parse_double(val, &d)) {
                rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s:%d: %s should be a finite number, got '%s'",
                                   path, lineno, line, val);
                goto done;
            }
            if (line[0] == 'm') {
                out->mean = d;
                have_mean = 1;
            } else {
                out->std = d;
                have_std = 1;
            }
        } else if (!strcmp(line, "count")) {
            char *end;
            errno = 0;
            unsigned long long c = strtoull(val, &end, 10);
            if (end == val || *end || errno || val[0] == '-') {
                rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s:%d: count should be an integer, got '%s'",
                                   path, lineno, val);
                goto done;
            }
            out->count = c;
        } else if (!strcmp(line, "kind")) {
            snprintf(out->kind, sizeof out->kind, "%s", val);
        } else if (!strcmp(line, "config")) {
            snprintf(out->config, sizeof out->config, "%s", val);
        }
        /* other keys: from a later minor revision, ignored */
    }
    if (ferror(f)) {
        rc = cmr_error_set(err, CMR_EIO, "stats: cannot read %s", path);
        goto done;
    }
    if (lineno == 0) {
        rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s is empty", path);
        goto done;
    }
    if (!have_mean || !have_std) {
        rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s has no '%s' line", path,
                           have_mean ? "std" : "mean");
        goto done;
    }
    if (!(out->std > 0)) {
        rc = cmr_error_set(err, CMR_EFORMAT, "stats: %s: std should be > 0, got %g", path, out->std);
        goto done;
    }
done:
    fclose(f);
    return rc;
}
