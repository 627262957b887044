/* Linear probes: standardisation, liblinear classifiers with C chosen on the
 * validation split, and the metrics they report (PAPER.md §7).
 *
 * Protocol (docs/evaluation.md has the full text):
 *  - features are standardised with the training rows' mean and population
 *    standard deviation (ddof = 0; a constant feature gets scale 1), as
 *    sklearn.preprocessing.StandardScaler;
 *  - for each C of the grid a model is fitted on the training rows only and
 *    scored on the validation rows (accuracy, or for tags the mean ROC-AUC
 *    over tags); the best C wins, ties going to the smallest C;
 *  - that same model (trained on the training rows only, no refit) is scored
 *    on the test rows.
 * Classifiers (liblinear 2.x, one-vs-rest for more than two classes, bias
 * term 1 appended to every row and regularised like the weights, as sklearn's
 * intercept_scaling=1):
 *   CMR_PROBE_SVM     L2-regularised L2-loss SVM, dual coordinate descent
 *                     (L2R_L2LOSS_SVC_DUAL) = sklearn LinearSVC(loss='squared_hinge', dual=True)
 *   CMR_PROBE_LOGREG  L2-regularised logistic regression (L2R_LR, trust-region
 *                     Newton) = sklearn LogisticRegression(solver='liblinear')
 * liblinear's dual solver draws its coordinate order from the C library's
 * rand(): every fit calls srand(1) first, so results do not depend on what
 * ran before (this touches the process-wide rand() state). liblinear's
 * progress output is silenced.
 *
 * Metrics follow scikit-learn 1.2 exactly:
 *   accuracy; macro-F1 over the classes that occur in the true or predicted
 *   labels (a class with no true and no predicted row is left out; F1 = 0 when
 *   TP = 0); ROC-AUC by the trapezoidal rule over distinct thresholds (ties
 *   give diagonal steps); average precision AP = sum_k (R_k - R_{k-1}) P_k over
 *   the distinct scores in decreasing order (sklearn.metrics.average_precision_score).
 * Pure computation: no I/O. Not thread-safe (liblinear's print hook and rand()).
 */
#ifndef CMR_EVAL_PROBE_H
#define CMR_EVAL_PROBE_H

#include <stdint.h>

#include "err.h"

enum cmr_probe_solver { CMR_PROBE_SVM = 0, CMR_PROBE_LOGREG = 1 };
enum cmr_probe_split { CMR_SPLIT_TRAIN = 0, CMR_SPLIT_VALID = 1, CMR_SPLIT_TEST = 2, CMR_SPLIT_NONE = 3 };

#define CMR_PROBE_MAX_C 64

/* the default C grid: 1e-4, 1e-3, ..., 1e4 (9 values) */
#define CMR_PROBE_DEFAULT_N_C 9
/* liblinear's stopping tolerance (sklearn's tol, default 1e-4 in both sklearn classes) */
#define CMR_PROBE_DEFAULT_TOL 1e-4

struct cmr_probe_cfg {
    int solver;                   /* enum cmr_probe_solver */
    double C[CMR_PROBE_MAX_C];    /* grid, increasing */
    int n_C;
    double tol;
};
struct cmr_probe_cfg cmr_probe_cfg_default(int solver);

/* The rows to evaluate. X is standardised in place by cmr_probe_standardize(). */
struct cmr_probe_data {
    int n, d;
    float *X;             /* (n, d) row-major */
    const int *split;     /* (n) enum cmr_probe_split; CMR_SPLIT_NONE rows are ignored */
    /* single-label */
    const int *y;         /* (n) class index in [0, n_classes) */
    int n_classes;
    /* multi-label */
    const uint8_t *tags;  /* (n, n_tags) 0/1 */
    int n_tags;
};

struct cmr_probe_result {
    int solver;
    int n_train, n_valid, n_test;
    double C;                          /* the C chosen */
    double val_score[CMR_PROBE_MAX_C]; /* validation accuracy (or mean ROC-AUC) per C */
    /* single-label, on the test rows */
    double accuracy, macro_f1;
    int64_t *confusion;                /* (n_classes, n_classes): rows true, columns predicted; malloc'ed */
    int *pred;                         /* (n) predicted class of every test row, -1 elsewhere; malloc'ed */
    /* multi-label, on the test rows */
    double roc_auc, pr_auc;            /* macro over the scored tags */
    double *tag_roc, *tag_ap;          /* (n_tags) per tag, NaN when not scored; malloc'ed */
    int n_tags_scored;                 /* tags with positives and negatives in training and test */
};
void cmr_probe_result_free(struct cmr_probe_result *r);

/* Fits mean and scale (population std; 1 where it is 0) on the training rows
 * and standardises every row in place. mean and scale are (d), caller-owned.
 * CMR_EINVAL without training rows. */
int cmr_probe_standardize(struct cmr_probe_data *data, double *mean, double *scale,
                          struct cmr_error *err);

/* Runs the protocol above for one classifier (single-label when data->y is
 * set, else multi-label over data->tags). data->X must already be standardised.
 * Errors: CMR_EINVAL (no training, validation or test rows, fewer than two
 * classes, a validation/test class without training rows, no usable tag),
 * CMR_ENAN (a non-finite feature), CMR_ENOMEM, CMR_ENUMERIC (liblinear failed). */
int cmr_probe_run(const struct cmr_probe_cfg *cfg, const struct cmr_probe_data *data,
                  struct cmr_probe_result *res, struct cmr_error *err);

/* ---- metrics (sklearn 1.2 definitions, see above) ---- */
double cmr_probe_accuracy(const int *y, const int *pred, int n);
/* cm (k, k) zeroed and filled; rows true, columns predicted */
void cmr_probe_confusion(const int *y, const int *pred, int n, int k, int64_t *cm);
double cmr_probe_macro_f1(const int64_t *cm, int k);
/* score (n), label (n) 0/1; NaN when all labels are equal. Allocation-free
 * variants need an (n) int scratch: order. */
double cmr_probe_roc_auc(const double *score, const uint8_t *label, int n, int *order);
double cmr_probe_average_precision(const double *score, const uint8_t *label, int n, int *order);

#endif
