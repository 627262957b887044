/* lib/eval/probe: metrics and liblinear probes against scikit-learn
 * (tests/ref/eval/{metrics.txt, probe-*.msgpack, probe-*.sklearn.txt}, written by
 * tests/ref/make_refs_eval.py). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/probe.h"
#include "frame.h"
#include "tap.h"

static const char *ref_path(const char *name)
{
    static char path[4096];
    const char *src = getenv("CMR_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/ref/eval/%s", src ? src : ".", name);
    return path;
}

static FILE *open_ref(const char *name)
{
    FILE *f = fopen(ref_path(name), "r");
    if (!f)
        skip_all("cannot open %s (set CMR_SRCDIR)", ref_path(name));
    return f;
}

static void test_metrics(void)
{
    FILE *f = open_ref("metrics.txt");
    char kind[16];
    int n_rank = 0, n_class = 0;
    if (fscanf(f, "%*s %*s %*d") != 0) {
        ok(0, "metrics.txt: bad header");
        return;
    }
    while (fscanf(f, "%15s", kind) == 1) {
        if (!strcmp(kind, "rank")) {
            int n;
            double roc, ap;
            if (fscanf(f, "%d %lf %lf", &n, &roc, &ap) != 3)
                break;
            double *s = malloc(sizeof(double) * (size_t)n);
            uint8_t *l = malloc((size_t)n);
            int *order = malloc(sizeof(int) * (size_t)n);
            for (int i = 0; i < n; i++) {
                int v = 0;
                if (fscanf(f, "%lf %d", &s[i], &v) != 2)
                    s[i] = NAN;
                l[i] = (uint8_t)v;
            }
            double r = cmr_probe_roc_auc(s, l, n, order), a = cmr_probe_average_precision(s, l, n, order);
            ok(fabs(r - roc) < 1e-12 && fabs(a - ap) < 1e-12,
               "ranking case %d (n %d): roc %.15g (sklearn %.15g), ap %.15g (sklearn %.15g)", n_rank, n,
               r, roc, a, ap);
            n_rank++;
            free(s);
            free(l);
            free(order);
        } else if (!strcmp(kind, "class")) {
            int n, k;
            double acc, f1;
            if (fscanf(f, "%d %d %lf %lf", &n, &k, &acc, &f1) != 4)
                break;
            int *y = malloc(sizeof(int) * (size_t)n), *p = malloc(sizeof(int) * (size_t)n);
            for (int i = 0; i < n; i++)
                if (fscanf(f, "%d %d", &y[i], &p[i]) != 2)
                    y[i] = p[i] = -1;
            int64_t *cm = malloc(sizeof(int64_t) * (size_t)k * k);
            cmr_probe_confusion(y, p, n, k, cm);
            double a = cmr_probe_accuracy(y, p, n), m = cmr_probe_macro_f1(cm, k);
            ok(fabs(a - acc) < 1e-12 && fabs(m - f1) < 1e-12,
               "classification case %d (n %d, k %d): accuracy %.6f (sklearn %.6f), macro-F1 %.12f (sklearn %.12f)",
               n_class, n, k, a, acc, m, f1);
            n_class++;
            free(y);
            free(p);
            free(cm);
        } else {
            ok(0, "metrics.txt: unknown case '%s'", kind);
            break;
        }
    }
    fclose(f);
    ok(n_rank == 5 && n_class == 3, "read 5 ranking and 3 classification cases");
    /* degenerate cases */
    double s[3] = {1, 2, 3};
    uint8_t l[3] = {1, 1, 1};
    int order[3];
    ok(isnan(cmr_probe_roc_auc(s, l, 3, order)) && isnan(cmr_probe_average_precision(s, l, 3, order)),
       "one class only: NaN");
}

/* a frame stream of 1-D "summary" frames -> rows, split, class or tag matrix */
struct rows {
    int n, d, cap;
    float *X;
    int *split;
    char **label;
};

static int split_of(const char *s)
{
    if (!s)
        return CMR_SPLIT_NONE;
    if (!strcmp(s, "training") || !strcmp(s, "train"))
        return CMR_SPLIT_TRAIN;
    if (!strcmp(s, "validation") || !strcmp(s, "valid"))
        return CMR_SPLIT_VALID;
    if (!strcmp(s, "test"))
        return CMR_SPLIT_TEST;
    return CMR_SPLIT_NONE;
}

static int load(const char *name, const char *key, struct rows *r)
{
    memset(r, 0, sizeof *r);
    int fd = open(ref_path(name), O_RDONLY);
    if (fd < 0)
        return -1;
    struct cmr_reader *rd = cmr_reader_new(fd, name);
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    struct cmr_error err = {0};
    int rc;
    while ((rc = cmr_reader_next(rd, &fr, &err)) == CMR_OK) {
        if (fr.type != CMR_FRAME_TENSOR)
            continue;
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 64;
            r->split = realloc(r->split, sizeof(int) * (size_t)r->cap);
            r->label = realloc(r->label, sizeof(char *) * (size_t)r->cap);
        }
        r->d = (int)fr.shape[0];
        r->X = realloc(r->X, sizeof(float) * (size_t)r->cap * r->d);
        memcpy(r->X + (size_t)r->n * r->d, fr.data, sizeof(float) * (size_t)r->d);
        r->split[r->n] = split_of(cmr_frame_meta_get(&fr, "split"));
        const char *v = cmr_frame_meta_get(&fr, key);
        r->label[r->n] = strdup(v ? v : "");
        r->n++;
    }
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    close(fd);
    return rc == CMR_EOF ? 0 : -1;
}

static void rows_free(struct rows *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->label[i]);
    free(r->label);
    free(r->X);
    free(r->split);
}

static void test_genre(void)
{
    struct rows r;
    if (load("probe-genre.msgpack", "label", &r)) {
        ok(0, "cannot read probe-genre.msgpack");
        return;
    }
    /* classes in sorted label order, as cmr-probe */
    const char *names[] = {"blues", "classical", "hiphop", "rock"};
    int *y = malloc(sizeof(int) * (size_t)r.n);
    for (int i = 0; i < r.n; i++) {
        y[i] = -1;
        for (int c = 0; c < 4; c++)
            if (!strcmp(r.label[i], names[c]))
                y[i] = c;
    }
    double *mean = malloc(sizeof(double) * (size_t)r.d), *scale = malloc(sizeof(double) * (size_t)r.d);
    struct cmr_probe_data data = {.n = r.n, .d = r.d, .X = r.X, .split = r.split, .y = y, .n_classes = 4};
    struct cmr_error err = {0};
    int rc0 = cmr_probe_standardize(&data, mean, scale, &err);
    ok(rc0 == CMR_OK && scale[3] == 1.0, "standardised; the constant feature keeps scale 1 (mean %g)",
       mean[3]);
    double m0 = 0, v0 = 0;
    int nt = 0;
    for (int i = 0; i < r.n; i++)
        if (r.split[i] == CMR_SPLIT_TRAIN) {
            m0 += r.X[(size_t)i * r.d];
            v0 += r.X[(size_t)i * r.d] * r.X[(size_t)i * r.d];
            nt++;
        }
    ok(fabs(m0 / nt) < 1e-5 && fabs(v0 / nt - 1) < 1e-4, "training rows: mean 0, variance 1");

    FILE *f = open_ref("probe-genre.sklearn.txt");
    char name[16];
    double C, val, acc, f1;
    if (fscanf(f, "%*s %*s %*d") != 0)
        ok(0, "probe-genre.sklearn.txt: bad header");
    while (fscanf(f, "%15s %lf %lf %lf %lf", name, &C, &val, &acc, &f1) == 5) {
        struct cmr_probe_cfg cfg;
        cfg = cmr_probe_cfg_default(!strcmp(name, "svm") ? CMR_PROBE_SVM : CMR_PROBE_LOGREG);
        struct cmr_probe_result res;
        int rc = cmr_probe_run(&cfg, &data, &res, &err);
        ok(rc == CMR_OK, "%s runs: %s", name, rc ? err.msg : "ok");
        if (rc)
            continue;
        ok(fabs(res.accuracy - acc) <= 0.005,
           "%s: test accuracy %.4f, sklearn %.4f (C %g, sklearn C %g; macro-F1 %.4f, sklearn %.4f)", name,
           res.accuracy, acc, res.C, C, res.macro_f1, f1);
        int64_t tot = 0;
        for (int i = 0; i < 16; i++)
            tot += res.confusion[i];
        ok(tot == res.n_test, "%s: the confusion matrix counts the %d test rows", name, res.n_test);
        cmr_probe_result_free(&res);
    }
    fclose(f);

    /* error paths */
    struct cmr_probe_cfg cfg;
    cfg = cmr_probe_cfg_default(CMR_PROBE_SVM);
    struct cmr_probe_result res;
    int *split2 = malloc(sizeof(int) * (size_t)r.n);
    for (int i = 0; i < r.n; i++)
        split2[i] = r.split[i] == CMR_SPLIT_TRAIN ? CMR_SPLIT_TEST : r.split[i];
    struct cmr_probe_data bad = data;
    bad.split = split2;
    ok(cmr_probe_run(&cfg, &bad, &res, &err) == CMR_EINVAL, "no training rows: %s", err.msg);
    for (int i = 0; i < r.n; i++)
        split2[i] = r.split[i] == CMR_SPLIT_VALID ? CMR_SPLIT_TEST : r.split[i];
    ok(cmr_probe_run(&cfg, &bad, &res, &err) == CMR_EINVAL, "no validation rows: %s", err.msg);
    int *y2 = malloc(sizeof(int) * (size_t)r.n);
    for (int i = 0; i < r.n; i++)
        y2[i] = r.split[i] == CMR_SPLIT_TRAIN && y[i] == 2 ? 1 : y[i];
    bad = data;
    bad.y = y2;
    ok(cmr_probe_run(&cfg, &bad, &res, &err) == CMR_EINVAL, "a test class without training rows: %s",
       err.msg);
    for (int i = 0; i < r.n; i++)
        y2[i] = 0;
    ok(cmr_probe_run(&cfg, &bad, &res, &err) == CMR_EINVAL, "one class: %s", err.msg);
    bad = data;
    float keep = r.X[5];
    r.X[5] = NAN;
    ok(cmr_probe_run(&cfg, &bad, &res, &err) == CMR_ENAN, "NaN feature: %s", err.msg);
    r.X[5] = keep;
    cfg.n_C = 0;
    ok(cmr_probe_run(&cfg, &data, &res, &err) == CMR_EINVAL, "empty C grid: %s", err.msg);
    cfg = cmr_probe_cfg_default(CMR_PROBE_SVM);
    cfg.C[0] = -1;
    ok(cmr_probe_run(&cfg, &data, &res, &err) == CMR_EINVAL, "negative C: %s", err.msg);
    /* determinism: two runs give identical results */
    cfg = cmr_probe_cfg_default(CMR_PROBE_SVM);
    struct cmr_probe_result a, b;
    cmr_probe_run(&cfg, &data, &a, NULL);
    cmr_probe_run(&cfg, &data, &b, NULL);
    ok(a.accuracy == b.accuracy && a.C == b.C && !memcmp(a.pred, b.pred, sizeof(int) * (size_t)r.n),
       "two runs agree exactly");
    cmr_probe_result_free(&a);
    cmr_probe_result_free(&b);
    free(split2);
    free(y2);
    free(y);
    free(mean);
    free(scale);
    rows_free(&r);
}

static void test_tags(void)
{
    struct rows r;
    if (load("probe-tags.msgpack", "tags", &r)) {
        ok(0, "cannot read probe-tags.msgpack");
        return;
    }
    const char *names[] = {"rock", "pop", "female vocalists", "jazz", "80s", "sad"};
    int T = 6;
    uint8_t *tags = calloc((size_t)r.n * T, 1);
    for (int i = 0; i < r.n; i++) {
        char *s = r.label[i], *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save))
            for (int k = 0; k < T; k++)
                if (!strcmp(t, names[k]))
                    tags[(size_t)i * T + k] = 1;
    }
    double *mean = malloc(sizeof(double) * (size_t)r.d), *scale = malloc(sizeof(double) * (size_t)r.d);
    struct cmr_probe_data data = {.n = r.n, .d = r.d, .X = r.X, .split = r.split, .tags = tags, .n_tags = T};
    cmr_probe_standardize(&data, mean, scale, NULL);
    FILE *f = open_ref("probe-tags.sklearn.txt");
    double C, val, roc, ap;
    int used;
    if (fscanf(f, "%*s %*s %*d logreg %lf %lf %lf %lf %d", &C, &val, &roc, &ap, &used) == 5) {
        struct cmr_probe_cfg cfg;
        cfg = cmr_probe_cfg_default(CMR_PROBE_LOGREG);
        struct cmr_probe_result res;
        struct cmr_error err = {0};
        int rc = cmr_probe_run(&cfg, &data, &res, &err);
        ok(rc == CMR_OK, "tags run: %s", rc ? err.msg : "ok");
        if (!rc) {
            ok(res.C == C && res.n_tags_scored == used, "C %g (sklearn %g), %d tags scored (sklearn %d)",
               res.C, C, res.n_tags_scored, used);
            ok(fabs(res.roc_auc - roc) < 0.005 && fabs(res.pr_auc - ap) < 0.005,
               "macro ROC-AUC %.5f (sklearn %.5f), PR-AUC %.5f (sklearn %.5f)", res.roc_auc, roc,
               res.pr_auc, ap);
            ok(isnan(res.tag_roc[5]), "tag 'sad' has no positive test row: not scored");
            cmr_probe_result_free(&res);
        }
        cfg = cmr_probe_cfg_default(CMR_PROBE_SVM);
        ok(cmr_probe_run(&cfg, &data, &res, &err) == CMR_EINVAL, "tags need logistic regression: %s",
           err.msg);
    } else {
        ok(0, "probe-tags.sklearn.txt: bad format");
    }
    fclose(f);
    free(tags);
    free(mean);
    free(scale);
    rows_free(&r);
}

int main(void)
{
    tap_plan_none();
    test_metrics();
    test_genre();
    test_tags();
    return tap_done();
}
