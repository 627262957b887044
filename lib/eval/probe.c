#include "eval/probe.h"

#include <linear.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cmr_probe_cfg cmr_probe_cfg_default(int solver)
{
    struct cmr_probe_cfg cfg = {.solver = solver, .n_C = CMR_PROBE_DEFAULT_N_C, .tol = CMR_PROBE_DEFAULT_TOL};
    for (int i = 0; i < cfg.n_C; i++)
        cfg.C[i] = pow(10.0, i - 4);
    return cfg;
}

void cmr_probe_result_free(struct cmr_probe_result *r)
{
    if (!r)
        return;
    free(r->confusion);
    free(r->pred);
    free(r->tag_roc);
    free(r->tag_ap);
    r->confusion = NULL;
    r->pred = NULL;
    r->tag_roc = r->tag_ap = NULL;
}

/* ---- standardisation ---- */

int cmr_probe_standardize(struct cmr_probe_data *data, double *mean, double *scale,
                          struct cmr_error *err)
{
    int n = data->n, d = data->d;
    int n_train = 0;
    for (int j = 0; j < d; j++)
        mean[j] = scale[j] = 0;
    for (int i = 0; i < n; i++) {
        const float *x = data->X + (size_t)i * d;
        for (int j = 0; j < d; j++)
            if (!isfinite(x[j]))
                return cmr_error_set(err, CMR_ENAN, "probe: row %d, feature %d is %g", i, j,
                                     (double)x[j]);
        if (data->split[i] != CMR_SPLIT_TRAIN)
            continue;
        n_train++;
        for (int j = 0; j < d; j++)
            mean[j] += x[j];
    }
    if (n_train == 0)
        return cmr_error_set(err, CMR_EINVAL, "probe: no training rows");
    for (int j = 0; j < d; j++)
        mean[j] /= n_train;
    /* two-pass variance, as numpy */
    for (int i = 0; i < n; i++) {
        if (data->split[i] != CMR_SPLIT_TRAIN)
            continue;
        const float *x = data->X + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            double c = x[j] - mean[j];
            scale[j] += c * c;
        }
    }
    for (int j = 0; j < d; j++) {
        double sd = sqrt(scale[j] / n_train);
        /* sklearn's _handle_zeros_in_scale: a (near-)constant feature keeps scale 1 */
        scale[j] = sd < 10 * 2.220446049250313e-16 * fmax(1.0, fabs(mean[j])) ? 1.0 : sd;
    }
    for (int i = 0; i < n; i++) {
        float *x = data->X + (size_t)i * d;
        for (int j = 0; j < d; j++)
            x[j] = (float)((x[j] - mean[j]) / scale[j]);
    }
    return CMR_OK;
}

/* ---- metrics ---- */

double cmr_probe_accuracy(const int *y, const int *pred, int n)
{
    int hit = 0;
    for (int i = 0; i < n; i++)
        hit += y[i] == pred[i];
    return n > 0 ? (double)hit / n : NAN;
}

void cmr_probe_confusion(const int *y, const int *pred, int n, int k, int64_t *cm)
{
    memset(cm, 0, sizeof *cm * (size_t)k * k);
    for (int i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < k && pred[i] >= 0 && pred[i] < k)
            cm[(size_t)y[i] * k + pred[i]]++;
}

double cmr_probe_macro_f1(const int64_t *cm, int k)
{
    double sum = 0;
    int used = 0;
    for (int c = 0; c < k; c++) {
        int64_t tp = cm[(size_t)c * k + c], t = 0, p = 0;
        for (int j = 0; j < k; j++) {
            t += cm[(size_t)c * k + j];
            p += cm[(size_t)j * k + c];
        }
        if (t == 0 && p == 0)
            continue; /* absent from both: sklearn leaves it out */
        used++;
        sum += tp > 0 ? 2.0 * tp / (double)(t + p) : 0.0;
    }
    return used ? sum / used : NAN;
}

/* heap sort of order[0..n) by score, decreasing */
static void sort_desc(const double *score, int *order, int n)
{
    for (int i = 0; i < n; i++)
        order[i] = i;
    /* min-heap on score, so that popping to the back gives decreasing order */
#define LESS(a, b) (score[order[a]] < score[order[b]])
    for (int start = n / 2 - 1; start >= 0; start--) {
        for (int root = start;;) {
            int c = 2 * root + 1, m = root;
            if (c < n && LESS(c, m))
                m = c;
            if (c + 1 < n && LESS(c + 1, m))
                m = c + 1;
            if (m == root)
                break;
            int t = order[m]; order[m] = order[root]; order[root] = t;
            root = m;
        }
    }
    for (int end = n - 1; end > 0; end--) {
        int t = order[0]; order[0] = order[end]; order[end] = t;
        for (int root = 0;;) {
            int c = 2 * root + 1, m = root;
            if (c < end && LESS(c, m))
                m = c;
            if (c + 1 < end && LESS(c + 1, m))
                m = c + 1;
            if (m == root)
                break;
            t = order[m]; order[m] = order[root]; order[root] = t;
            root = m;
        }
    }
#undef LESS
}

/* walks the distinct thresholds in decreasing order; calls back with the
 * cumulative true and false positives after each group of tied scores */
static int count_pos(const uint8_t *label, int n)
{
    int p = 0;
    for (int i = 0; i < n; i++)
        p += label[i] != 0;
    return p;
}

double cmr_probe_roc_auc(const double *score, const uint8_t *label, int n, int *order)
{
    int npos = count_pos(label, n), nneg = n - npos;
    if (npos == 0 || nneg == 0)
        return NAN;
    sort_desc(score, order, n);
    double auc = 0, tp = 0, fp = 0, tp0 = 0, fp0 = 0;
    for (int i = 0; i < n;) {
        double s = score[order[i]];
        while (i < n && score[order[i]] == s) {
            if (label[order[i]])
                tp++;
            else
                fp++;
            i++;
        }
        auc += (fp - fp0) * (tp + tp0) / 2;
        tp0 = tp;
        fp0 = fp;
    }
    return auc / ((double)npos * nneg);
}

double cmr_probe_average_precision(const double *score, const uint8_t *label, int n, int *order)
{
    int npos = count_pos(label, n);
    if (npos == 0 || npos == n)
        return NAN;
    sort_desc(score, order, n);
    double ap = 0, tp = 0, fp = 0, r0 = 0;
    for (int i = 0; i < n;) {
        double s = score[order[i]];
        while (i < n && score[order[i]] == s) {
            if (label[order[i]])
                tp++;
            else
                fp++;
            i++;
        }
        double r = tp / npos;
        ap += (r - r0) * (tp / (tp + fp));
        r0 = r;
    }
    return ap;
}

/* ---- liblinear ---- */

static void quiet(const char *s) { (void)s; }

/* liblinear's free_and_destroy_model() does not clear the pointer */
static void model_free(struct model **m)
{
    if (*m)
        free_and_destroy_model(m);
    *m = NULL;
}

/* the training rows as a liblinear problem, bias feature d+1 = 1 */
struct lin_problem {
    struct problem prob;
    struct feature_node *nodes;
    int *rows; /* (l) data row of each training row */
};

static void lin_problem_free(struct lin_problem *lp)
{
    free(lp->prob.x);
    free(lp->prob.y);
    free(lp->nodes);
    free(lp->rows);
}

static int lin_problem_build(struct lin_problem *lp, const struct cmr_probe_data *data)
{
    int d = data->d, l = 0;
    memset(lp, 0, sizeof *lp);
    for (int i = 0; i < data->n; i++)
        l += data->split[i] == CMR_SPLIT_TRAIN;
    lp->prob.l = l;
    lp->prob.n = d + 1;
    lp->prob.bias = 1.0;
    lp->prob.y = malloc(sizeof(double) * (size_t)l);
    lp->prob.x = malloc(sizeof(struct feature_node *) * (size_t)l);
    lp->nodes = malloc(sizeof(struct feature_node) * (size_t)l * (d + 2));
    lp->rows = malloc(sizeof(int) * (size_t)l);
    if (!lp->prob.y || !lp->prob.x || !lp->nodes || !lp->rows) {
        lin_problem_free(lp);
        return CMR_ENOMEM;
    }
    for (int i = 0, r = 0; i < data->n; i++) {
        if (data->split[i] != CMR_SPLIT_TRAIN)
            continue;
        struct feature_node *nd = lp->nodes + (size_t)r * (d + 2);
        const float *x = data->X + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            nd[j].index = j + 1;
            nd[j].value = x[j];
        }
        nd[d].index = d + 1;
        nd[d].value = lp->prob.bias;
        nd[d + 1].index = -1;
        nd[d + 1].value = 0;
        lp->prob.x[r] = nd;
        lp->rows[r] = i;
        r++;
    }
    return CMR_OK;
}

static struct model *lin_train(const struct problem *prob, int solver, double C, double tol,
                               struct cmr_error *err)
{
    struct parameter param;
    memset(&param, 0, sizeof param);
    param.solver_type = solver == CMR_PROBE_SVM ? L2R_L2LOSS_SVC_DUAL : L2R_LR;
    param.C = C;
    param.eps = tol;
    param.p = 0.1;
    const char *msg = check_parameter(prob, &param);
    if (msg) {
        cmr_error_set(err, CMR_EINVAL, "probe: liblinear: %s", msg);
        return NULL;
    }
    set_print_string_function(quiet);
    srand(1);
    struct model *m = train(prob, &param);
    if (!m)
        cmr_error_set(err, CMR_ENUMERIC, "probe: liblinear could not train (C = %g)", C);
    return m;
}

/* decision values of row x: dec (nr_w) with nr_w = 1 for two classes */
static void lin_decision(const struct model *m, const float *x, int d, double *dec)
{
    int nr_w = m->nr_class == 2 ? 1 : m->nr_class;
    for (int k = 0; k < nr_w; k++)
        dec[k] = 0;
    for (int j = 0; j < d; j++) {
        const double *w = m->w + (size_t)j * nr_w;
        for (int k = 0; k < nr_w; k++)
            dec[k] += w[k] * x[j];
    }
    if (m->bias >= 0) {
        const double *w = m->w + (size_t)d * nr_w;
        for (int k = 0; k < nr_w; k++)
            dec[k] += w[k] * m->bias;
    }
}

/* predicted label (liblinear's predict_values rule) */
static int lin_predict(const struct model *m, const float *x, int d, double *dec)
{
    lin_decision(m, x, d, dec);
    if (m->nr_class == 2)
        return dec[0] > 0 ? m->label[0] : m->label[1];
    int best = 0;
    for (int k = 1; k < m->nr_class; k++)
        if (dec[k] > dec[best])
            best = k;
    return m->label[best];
}

static int count_split(const struct cmr_probe_data *data, int which)
{
    int c = 0;
    for (int i = 0; i < data->n; i++)
        c += data->split[i] == which;
    return c;
}

static int run_single(const struct cmr_probe_cfg *cfg, const struct cmr_probe_data *data,
                      struct cmr_probe_result *res, struct cmr_error *err)
{
    int n = data->n, d = data->d, k = data->n_classes;
    int rc = CMR_OK;
    struct lin_problem lp;
    struct model *best = NULL;
    int *seen = calloc((size_t)k, sizeof *seen);
    double *dec = malloc(sizeof(double) * (size_t)(k > 1 ? k : 1));
    int *yt = malloc(sizeof(int) * (size_t)n), *pt = malloc(sizeof(int) * (size_t)n);
    res->pred = malloc(sizeof(int) * (size_t)n);
    res->confusion = calloc((size_t)k * k, sizeof *res->confusion);
    if (!seen || !dec || !yt || !pt || !res->pred || !res->confusion) {
        rc = cmr_error_set(err, CMR_ENOMEM, "probe: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (data->y[i] < 0 || data->y[i] >= k) {
            rc = cmr_error_set(err, CMR_EINVAL, "probe: row %d has class %d, not in [0, %d)", i,
                               data->y[i], k);
            goto done;
        }
        if (data->split[i] == CMR_SPLIT_TRAIN)
            seen[data->y[i]] = 1;
    }
    int n_seen = 0;
    for (int c = 0; c < k; c++)
        n_seen += seen[c];
    if (n_seen < 2) {
        rc = cmr_error_set(err, CMR_EINVAL, "probe: the training rows have %d class%s, need at least 2",
                           n_seen, n_seen == 1 ? "" : "es");
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (data->split[i] != CMR_SPLIT_TRAIN && data->split[i] != CMR_SPLIT_NONE &&
            !seen[data->y[i]]) {
            rc = cmr_error_set(err, CMR_EINVAL,
                               "probe: class %d occurs in the %s rows but has no training row",
                               data->y[i], data->split[i] == CMR_SPLIT_VALID ? "validation" : "test");
            goto done;
        }
    rc = lin_problem_build(&lp, data);
    if (rc < 0) {
        cmr_error_set(err, rc, "probe: out of memory");
        goto done;
    }
    for (int r = 0; r < lp.prob.l; r++)
        lp.prob.y[r] = data->y[lp.rows[r]];

    double best_score = -1;
    for (int ci = 0; ci < cfg->n_C; ci++) {
        struct model *m = lin_train(&lp.prob, cfg->solver, cfg->C[ci], cfg->tol, err);
        if (!m) {
            rc = err ? err->code : CMR_ENUMERIC;
            break;
        }
        int nv = 0;
        for (int i = 0; i < n; i++) {
            if (data->split[i] != CMR_SPLIT_VALID)
                continue;
            yt[nv] = data->y[i];
            pt[nv] = lin_predict(m, data->X + (size_t)i * d, d, dec);
            nv++;
        }
        double score = nv > 0 ? cmr_probe_accuracy(yt, pt, nv) : 0;
        res->val_score[ci] = score;
        if (score > best_score) { /* strict: ties keep the smaller C */
            best_score = score;
            res->C = cfg->C[ci];
            model_free(&best);
            best = m;
        } else {
            model_free(&m);
        }
    }
    lin_problem_free(&lp);
    if (rc < 0)
        goto done;

    int nt = 0;
    for (int i = 0; i < n; i++) {
        res->pred[i] = -1;
        if (data->split[i] != CMR_SPLIT_TEST)
            continue;
        res->pred[i] = lin_predict(best, data->X + (size_t)i * d, d, dec);
        yt[nt] = data->y[i];
        pt[nt] = res->pred[i];
        nt++;
    }
    res->accuracy = cmr_probe_accuracy(yt, pt, nt);
    cmr_probe_confusion(yt, pt, nt, k, res->confusion);
    res->macro_f1 = cmr_probe_macro_f1(res->confusion, k);
done:
    model_free(&best);
    free(seen);
    free(dec);
    free(yt);
    free(pt);
    return rc;
}

/* mean ROC-AUC (and AP) over the tags with both classes among rows of `which` */
static void score_tags(struct model **models, const struct cmr_probe_data *data, int which,
                       double *score, uint8_t *lab, int *order, double *roc, double *ap,
                       double *mean_roc, double *mean_ap, int *n_scored)
{
    int d = data->d, T = data->n_tags;
    double sr = 0, sa = 0;
    int used = 0;
    for (int t = 0; t < T; t++) {
        if (roc)
            roc[t] = ap[t] = NAN;
        if (!models[t])
            continue;
        int m = 0;
        for (int i = 0; i < data->n; i++) {
            if (data->split[i] != which)
                continue;
            double dec;
            lin_decision(models[t], data->X + (size_t)i * d, d, &dec);
            /* liblinear's decision value is for label[0]; orient it towards "tag present" */
            score[m] = models[t]->label[0] == 1 ? dec : -dec;
            lab[m] = data->tags[(size_t)i * T + t] != 0;
            m++;
        }
        double r = cmr_probe_roc_auc(score, lab, m, order);
        if (isnan(r))
            continue;
        double a = cmr_probe_average_precision(score, lab, m, order);
        if (roc) {
            roc[t] = r;
            ap[t] = a;
        }
        sr += r;
        sa += a;
        used++;
    }
    *mean_roc = used ? sr / used : NAN;
    *mean_ap = used ? sa / used : NAN;
    *n_scored = used;
}

static int run_tags(const struct cmr_probe_cfg *cfg, const struct cmr_probe_data *data,
                    struct cmr_probe_result *res, struct cmr_error *err)
{
    int n = data->n, T = data->n_tags;
    int rc = CMR_OK;
    struct lin_problem lp;
    struct model **cur = calloc((size_t)T, sizeof *cur), **best = calloc((size_t)T, sizeof *best);
    double *score = malloc(sizeof(double) * (size_t)n);
    uint8_t *lab = malloc((size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n);
    res->tag_roc = malloc(sizeof(double) * (size_t)T);
    res->tag_ap = malloc(sizeof(double) * (size_t)T);
    int have_lp = 0;
    if (!cur || !best || !score || !lab || !order || !res->tag_roc || !res->tag_ap) {
        rc = cmr_error_set(err, CMR_ENOMEM, "probe: out of memory");
        goto done;
    }
    rc = lin_problem_build(&lp, data);
    if (rc < 0) {
        cmr_error_set(err, rc, "probe: out of memory");
        goto done;
    }
    have_lp = 1;
    /* tags with positives and negatives among the training rows get a model */
    int fitted = 0;
    double best_score = -1;
    for (int ci = 0; ci < cfg->n_C; ci++) {
        fitted = 0;
        for (int t = 0; t < T; t++) {
            int pos = 0;
            for (int r = 0; r < lp.prob.l; r++) {
                int v = data->tags[(size_t)lp.rows[r] * T + t] != 0;
                lp.prob.y[r] = v ? 1 : -1;
                pos += v;
            }
            if (pos == 0 || pos == lp.prob.l)
                continue;
            cur[t] = lin_train(&lp.prob, CMR_PROBE_LOGREG, cfg->C[ci], cfg->tol, err);
            if (!cur[t]) {
                rc = err ? err->code : CMR_ENUMERIC;
                goto done;
            }
            fitted++;
        }
        if (fitted == 0) {
            rc = cmr_error_set(err, CMR_EINVAL,
                               "probe: no tag has both positive and negative training rows");
            goto done;
        }
        double mroc, map;
        int used;
        score_tags(cur, data, CMR_SPLIT_VALID, score, lab, order, NULL, NULL, &mroc, &map, &used);
        if (used == 0)
            mroc = 0;
        res->val_score[ci] = mroc;
        if (mroc > best_score) {
            best_score = mroc;
            res->C = cfg->C[ci];
            for (int t = 0; t < T; t++) {
                model_free(&best[t]);
                best[t] = cur[t];
                cur[t] = NULL;
            }
        } else {
            for (int t = 0; t < T; t++)
                model_free(&cur[t]);
        }
    }
    score_tags(best, data, CMR_SPLIT_TEST, score, lab, order, res->tag_roc, res->tag_ap,
               &res->roc_auc, &res->pr_auc, &res->n_tags_scored);
    if (res->n_tags_scored == 0)
        rc = cmr_error_set(err, CMR_EINVAL,
                           "probe: no tag has both positive and negative rows in training and test");
done:
    if (have_lp)
        lin_problem_free(&lp);
    for (int t = 0; cur && t < T; t++)
        model_free(&cur[t]);
    for (int t = 0; best && t < T; t++)
        model_free(&best[t]);
    free(cur);
    free(best);
    free(score);
    free(lab);
    free(order);
    return rc;
}

int cmr_probe_run(const struct cmr_probe_cfg *cfg, const struct cmr_probe_data *data,
                  struct cmr_probe_result *res, struct cmr_error *err)
{
    memset(res, 0, sizeof *res);
    res->solver = cfg->solver;
    res->accuracy = res->macro_f1 = res->roc_auc = res->pr_auc = NAN;
    if (cfg->solver != CMR_PROBE_SVM && cfg->solver != CMR_PROBE_LOGREG)
        return cmr_error_set(err, CMR_EINVAL, "probe: unknown solver %d", cfg->solver);
    if (cfg->n_C < 1 || cfg->n_C > CMR_PROBE_MAX_C)
        return cmr_error_set(err, CMR_EINVAL, "probe: the C grid should have 1 to %d values, got %d",
                             CMR_PROBE_MAX_C, cfg->n_C);
    for (int i = 0; i < cfg->n_C; i++)
        if (!(cfg->C[i] > 0) || !isfinite(cfg->C[i]))
            return cmr_error_set(err, CMR_EINVAL, "probe: C should be > 0, got %g", cfg->C[i]);
    if (!(cfg->tol > 0))
        return cmr_error_set(err, CMR_EINVAL, "probe: tol should be > 0, got %g", cfg->tol);
    if (data->d < 1)
        return cmr_error_set(err, CMR_EINVAL, "probe: feature dim should be >= 1, got %d", data->d);
    for (size_t i = 0; i < (size_t)data->n * data->d; i++)
        if (!isfinite(data->X[i]))
            return cmr_error_set(err, CMR_ENAN, "probe: row %zu, feature %zu is %g",
                                 i / data->d, i % data->d, (double)data->X[i]);
    res->n_train = count_split(data, CMR_SPLIT_TRAIN);
    res->n_valid = count_split(data, CMR_SPLIT_VALID);
    res->n_test = count_split(data, CMR_SPLIT_TEST);
    if (res->n_train == 0)
        return cmr_error_set(err, CMR_EINVAL, "probe: no training rows");
    if (res->n_valid == 0 && cfg->n_C > 1)
        return cmr_error_set(err, CMR_EINVAL,
                             "probe: no validation rows to choose C among %d values", cfg->n_C);
    if (res->n_test == 0)
        return cmr_error_set(err, CMR_EINVAL, "probe: no test rows");
    int rc;
    if (data->y) {
        if (data->n_classes < 2)
            return cmr_error_set(err, CMR_EINVAL, "probe: need at least 2 classes, got %d",
                                 data->n_classes);
        rc = run_single(cfg, data, res, err);
    } else {
        if (!data->tags || data->n_tags < 1)
            return cmr_error_set(err, CMR_EINVAL, "probe: no labels and no tags");
        if (cfg->solver != CMR_PROBE_LOGREG)
            return cmr_error_set(err, CMR_EINVAL, "probe: tags are scored with logistic regression only");
        rc = run_tags(cfg, data, res, err);
    }
    if (rc < 0)
        cmr_probe_result_free(res);
    return rc;
}
