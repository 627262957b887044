/* lib/dist: data-parallel training with ranks as threads of this process
 * (the MPI backend runs the same code over other collectives: 975-mpi.bats).
 *   - the threads collectives (sum, min, max, gather, broadcast);
 *   - synchronised batch norm: two ranks with half a batch each compute the
 *     forward and the backward of the whole batch (cmr_batchnorm2d_*);
 *   - the global loss: N ranks x batch b with synchronised batch norm take
 *     the steps of one process with batch N*b (encoder, multi, cpc), and the
 *     ranks' weights stay bit for bit identical, with or without it;
 *   - a checksum mismatch is an error naming the rank;
 *   - the stream protocol: shards of different sizes end an epoch together,
 *     with the same number of steps, and CMR_DIST_ALL gives every rank its
 *     slice of one process's batches;
 *   - checkpoints: a run resumed from cmr_dist_save continues bit for bit
 *     with the same ranks, and at the same position with other ranks. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist.h"
#include "model.h"
#include "nn/nn.h"
#include "tap.h"
#include "train.h"
#include "util/rng.h"

#define MAXR 4

static char tmpdir[] = "/tmp/cmr-test-dist-XXXXXX";

static void bail(const char *what, const struct cmr_error *err)
{
    printf("Bail out! %s: %s\n", what, err ? err->msg : "");
    exit(99);
}

static struct cmr_model *tiny(enum cmr_model_kind kind, uint64_t seed)
{
    struct cmr_model_cfg c;
    struct cmr_error err = {0};
    c = cmr_model_cfg_default(kind, 0.0625);
    if (kind == CMR_MODEL_CPC) {
        c.hidden = 16;
        c.context = 2;
        c.k = 2;
    }
    struct cmr_model *m = cmr_model_new(&c, &err);
    if (!m)
        bail("model", &err);
    cmr_model_init(m, seed);
    return m;
}

static int rows_of(enum cmr_model_kind kind) { return kind == CMR_MODEL_CPC ? 4 : 2; }

/* example i (rows x T x F): track (i % tracks)'s profile plus noise of its own */
static void example(float *x, int i, int rows, int tracks)
{
    struct cmr_rng r;
    cmr_rng_seed(&r, 1000 + (uint64_t)i);
    int t = i % tracks;
    for (int row = 0; row < rows; row++)
        for (size_t k = 0; k < CMR_MODEL_SEG; k++) {
            int f = (int)(k % CMR_MODEL_F);
            x[(size_t)row * CMR_MODEL_SEG + k] = (float)(0.5 + 0.3 * sin(0.2 * f * (t + 1) + t) + 0.1 * cmr_rng_normal(&r));
        }
}

/* ---- collectives ---- */

struct coll_arg {
    struct cmr_dist *d;
    int ok;
};

static void *coll_main(void *p)
{
    struct coll_arg *a = p;
    struct cmr_dist *d = a->d;
    int r = d->rank, n = d->size, good = 1;
    float f[3] = {(float)r, 1.5f, -(float)r};
    double g[2] = {r * 0.25, 1e300};
    int64_t i[2] = {r, -r};
    cmr_dist_allreduce(d, f, 3, CMR_DIST_F32, CMR_DIST_SUM);
    good &= f[0] == (float)(n * (n - 1) / 2) && f[1] == 1.5f * n;
    cmr_dist_allreduce(d, g, 2, CMR_DIST_F64, CMR_DIST_MAX);
    good &= g[0] == (n - 1) * 0.25 && g[1] == 1e300;
    cmr_dist_allreduce(d, i, 2, CMR_DIST_I64, CMR_DIST_MIN);
    good &= i[0] == 0 && i[1] == -(n - 1);
    int64_t mine[2] = {r, 10 * r}, all[2 * MAXR];
    cmr_dist_allgather(d, mine, all, 2, CMR_DIST_I64);
    for (int k = 0; k < n; k++)
        good &= all[2 * k] == k && all[2 * k + 1] == 10 * k;
    char msg[32];
    snprintf(msg, sizeof msg, "rank %d", r);
    cmr_dist_bcast(d, msg, sizeof msg, n - 1);
    char want[32];
    snprintf(want, sizeof want, "rank %d", n - 1);
    good &= !strcmp(msg, want);
    a->ok = good;
    return NULL;
}

/* runs fn on n ranks (threads), args[r].d set */
static void run_ranks(int n, void *(*fn)(void *), void *args, size_t arg_size, const struct cmr_dist_cfg *cfg,
                      void **ctx_out)
{
    struct cmr_error err = {0};
    void *ctx = cmr_dist_threads_new(n, &err);
    if (!ctx)
        bail("threads", &err);
    pthread_t th[MAXR];
    for (int r = 0; r < n; r++) {
        struct cmr_dist **dp = (struct cmr_dist **)((char *)args + (size_t)r * arg_size);
        if (!(*dp = cmr_dist_new(r, n, cmr_dist_threads_ops(), ctx, cfg, &err)))
            bail("dist", &err);
    }
    for (int r = 0; r < n; r++)
        pthread_create(&th[r], NULL, fn, (char *)args + (size_t)r * arg_size);
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
    if (ctx_out)
        *ctx_out = ctx;
    else
        cmr_dist_threads_free(ctx);
}

static void test_collectives(void)
{
    for (int n = 1; n <= 3; n++) {
        struct coll_arg a[MAXR];
        run_ranks(n, coll_main, a, sizeof a[0], NULL, NULL);
        int good = 1;
        for (int r = 0; r < n; r++) {
            good &= a[r].ok;
            cmr_dist_free(a[r].d);
        }
        ok(good, "threads collectives on %d rank%s: sum, max, min, gather, broadcast", n, n > 1 ? "s" : "");
    }
    struct cmr_error err = {0};
    ok(cmr_dist_new(2, 2, cmr_dist_local_ops(), NULL, NULL, &err) == NULL, "rank 2 of 2 refused: %s", err.msg);
}

/* ---- synchronised batch norm ---- */

#define BN_B 6
#define BN_C 3
#define BN_HW 37

struct bn_arg {
    struct cmr_dist *d;
    const float *x, *dout, *gamma, *beta;
    float out[BN_B * BN_C * BN_HW], dinp[BN_B * BN_C * BN_HW];
    float mean[BN_C], rstd[BN_C], rm[BN_C], rv[BN_C], dg[BN_C], db[BN_C];
};

static void *bn_main(void *p)
{
    struct bn_arg *a = p;
    struct cmr_dist *d = a->d;
    struct cmr_error err = {0};
    struct cmr_model *m = tiny(CMR_MODEL_ENCODER, 1);
    int h = BN_B / d->size; /* this rank's rows */
    size_t off = (size_t)d->rank * h * BN_C * BN_HW;
    if (cmr_dist_attach(d, m, NULL, &err))
        bail("attach", &err);
    for (int c = 0; c < BN_C; c++)
        a->rm[c] = 0, a->rv[c] = 1;
    m->bn_hook->forward(m->bn_hook->ctx, 0, a->out + off, a->mean, a->rstd, a->rm, a->rv, a->x + off, a->gamma,
                        a->beta, h, BN_C, BN_HW, 0.1f, 1e-5f);
    m->bn_hook->backward(m->bn_hook->ctx, 0, a->dinp + off, a->dg, a->db, a->dout + off, a->x + off, a->gamma,
                         a->mean, a->rstd, h, BN_C, BN_HW);
    cmr_dist_allreduce(d, a->dg, BN_C, CMR_DIST_F32, CMR_DIST_SUM);
    cmr_dist_allreduce(d, a->db, BN_C, CMR_DIST_F32, CMR_DIST_SUM);
    cmr_dist_free(d);
    cmr_model_free(m);
    return NULL;
}

static void test_sync_bn(void)
{
    static float x[BN_B * BN_C * BN_HW], dout[BN_B * BN_C * BN_HW], out[BN_B * BN_C * BN_HW],
        dinp[BN_B * BN_C * BN_HW], gathered[BN_B * BN_C * BN_HW], gdinp[BN_B * BN_C * BN_HW];
    float gamma[BN_C] = {0.7f, 1.3f, -0.4f}, beta[BN_C] = {0.1f, -0.2f, 0.3f}, mean[BN_C], rstd[BN_C];
    float rm[BN_C] = {0, 0, 0}, rv[BN_C] = {1, 1, 1}, dg[BN_C] = {0}, db[BN_C] = {0};
    struct cmr_rng r;
    cmr_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        x[i] = (float)(3 + 2 * cmr_rng_normal(&r));
        dout[i] = (float)cmr_rng_normal(&r);
    }
    cmr_batchnorm2d_forward_train(out, mean, rstd, rm, rv, x, gamma, beta, BN_B, BN_C, BN_HW, 0.1f, 1e-5f);
    memset(dinp, 0, sizeof dinp);
    cmr_batchnorm2d_backward(dinp, dg, db, dout, x, gamma, mean, rstd, BN_B, BN_C, BN_HW);

    struct cmr_dist_cfg cfg;
    cfg = cmr_dist_cfg_default();
    cfg.sync_bn = 1;
    struct bn_arg a[2];
    memset(a, 0, sizeof a);
    for (int k = 0; k < 2; k++) {
        a[k].x = x;
        a[k].dout = dout;
        a[k].gamma = gamma;
        a[k].beta = beta;
    }
    run_ranks(2, bn_main, a, sizeof a[0], &cfg, NULL);
    /* each rank wrote its rows into its own copy: gather them */
    size_t half = (size_t)BN_B / 2 * BN_C * BN_HW;
    memcpy(gathered, a[0].out, half * sizeof(float));
    memcpy(gathered + half, a[1].out + half, half * sizeof(float));
    memcpy(gdinp, a[0].dinp, half * sizeof(float));
    memcpy(gdinp + half, a[1].dinp + half, half * sizeof(float));
    ok(check_close("sync bn out", gathered, out, 2 * half, 1e-5, 1e-5), "sync BN forward on 2 x 3 rows = one batch of 6");
    ok(check_close("sync bn mean", a[1].mean, mean, BN_C, 1e-6, 1e-6) &&
           check_close("sync bn rstd", a[1].rstd, rstd, BN_C, 1e-6, 1e-6),
       "batch mean and rstd are the whole batch's on every rank");
    ok(check_close("sync bn running mean", a[0].rm, rm, BN_C, 1e-6, 1e-6) &&
           check_close("sync bn running var", a[1].rv, rv, BN_C, 1e-6, 1e-6),
       "running statistics updated with the global count (unbiased N-1 of 6 x 37)");
    ok(check_close("sync bn dinp", gdinp, dinp, 2 * half, 1e-5, 1e-4), "sync BN backward: dinp of the whole batch");
    ok(check_close("sync bn dgamma", a[0].dg, dg, BN_C, 1e-5, 1e-5) &&
           check_close("sync bn dbeta", a[1].db, db, BN_C, 1e-5, 1e-5),
       "dgamma and dbeta: each rank's share, summed over the ranks = the whole batch's");
}

/* ---- the global loss and steps ---- */

struct step_arg {
    struct cmr_dist *d;
    enum cmr_model_kind kind;
    int B, steps;              /* per-rank batch, steps */
    double loss[8];
    float *params;             /* after the steps (malloc'd copy) */
    float *grads;              /* the reduced gradient of step 1 (malloc'd copy) */
    size_t n_params;
    int rc;
    char msg[256];
};

/* global batch s: examples s*G .. s*G+G-1; this rank takes its slice */
static void *step_main(void *p)
{
    struct step_arg *a = p;
    struct cmr_dist *d = a->d;
    struct cmr_error err = {0};
    struct cmr_model *m = tiny(a->kind, 5);
    int rows = rows_of(a->kind), B = a->B, G = B * d->size;
    float *ex = malloc((size_t)B * rows * CMR_MODEL_SEG * sizeof *ex), *x = malloc((size_t)B * rows * CMR_MODEL_SEG * sizeof *x);
    a->rc = cmr_dist_attach(d, m, NULL, &err);
    for (int s = 0; s < a->steps && !a->rc; s++) {
        for (int i = 0; i < B; i++)
            example(ex + (size_t)i * rows * CMR_MODEL_SEG, s * G + d->rank * B + i, rows, 5);
        const float *in = ex;
        if (a->kind != CMR_MODEL_CPC) { /* anchors then positives, as the trainer does */
            for (int i = 0; i < B; i++) {
                memcpy(x + (size_t)i * CMR_MODEL_SEG, ex + (size_t)(2 * i) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
                memcpy(x + (size_t)(B + i) * CMR_MODEL_SEG, ex + (size_t)(2 * i + 1) * CMR_MODEL_SEG, CMR_MODEL_SEG * sizeof(float));
            }
            in = x;
        }
        double loss;
        int correct;
        if ((a->rc = cmr_model_zero_grad(m)) || (a->rc = cmr_dist_loss(d, in, B, 1.0f, &loss, &correct, &err)) ||
            (a->rc = cmr_dist_reduce_grads(d, &err)))
            break;
        if (s == 0 && (a->grads = malloc(m->n_params * sizeof(float))))
            memcpy(a->grads, m->grads, m->n_params * sizeof(float));
        if ((a->rc = cmr_model_update(m, &err)))
            break;
        a->loss[s] = loss;
    }
    if (a->rc)
        snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    a->n_params = m->n_params;
    a->params = malloc(m->n_params * sizeof(float));
    memcpy(a->params, m->params, m->n_params * sizeof(float));
    cmr_dist_free(d);
    cmr_model_free(m);
    free(ex);
    free(x);
    return NULL;
}

/* Compares the parameters tensor by tensor, leaving out the conv biases:
 * batch norm follows every convolution and removes any constant a channel
 * adds, so their true gradient is 0 and what backward computes for them is
 * float noise, which Adam turns into steps of +-lr whose signs depend on the
 * order of the sums. They change nothing the model computes (the training
 * forward is compared separately through the losses). */
static int close_weights(const char *what, const float *got, const float *want, const float *g1, const float *g2,
                         enum cmr_model_kind kind, int steps)
{
    struct cmr_model *m = tiny(kind, 5);
    const struct cmr_adam_cfg a = cmr_adam_cfg_default();
    int good = 1, gbad = 0;
    double worst = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *tn = &m->tensors[i];
        if (tn->role != CMR_TENSOR_PARAM)
            continue;
        /* step 1's gradients, normwise per tensor: the same sums in another
         * order (conv biases: float noise around a true 0, see above) */
        double md = 0, sc = 0;
        for (size_t k = tn->offset; k < tn->offset + tn->numel; k++) {
            md = fmax(md, fabs((double)g1[k] - g2[k]));
            sc = fmax(sc, fabs((double)g2[k]));
        }
        if (!strstr(tn->name, "conv.bias") && !(md <= 1e-4 * sc)) {
            diag("%s: gradient of %s: max diff %.3g, max |grad| %.3g", what, tn->name, md, sc);
            gbad++;
        }
        /* Adam's step is lr g / (|g| + eps) at step 1, so gradients within md
         * give steps within 2 lr min(1, md / |g|); each later step within
         * 2 R lr (|m_hat / sqrt(v_hat)| <= R ~ 1.001 for t <= 3; their
         * gradients are not compared); plus rounding */
        for (size_t k = tn->offset; k < tn->offset + tn->numel; k++) {
            double g = fabs((double)g2[k]);
            double tol = 2 * a.lr * fmin(1, md / (g > 0 ? g : 1e-300)) + 2 * 1.01 * a.lr * (steps - 1) +
                         4 * 5.96e-8 * (fabs((double)want[k]) + a.lr);
            double dlt = fabs((double)got[k] - want[k]);
            worst = fmax(worst, dlt / tol);
            if (!(dlt <= tol)) {
                if (good)
                    diag("%s: %s[%zu]: got %.8g want %.8g (bound %.3g)", what, tn->name, k - tn->offset, got[k],
                         want[k], tol);
                good = 0;
            }
        }
    }
    diag("%s: worst difference %.3g of its bound", what, worst);
    cmr_model_free(m);
    return good && !gbad;
}

/* the parameters within atol + rtol |want|, conv biases aside (see above) */
static int close_weights_abs(const char *what, const float *got, const float *want, enum cmr_model_kind kind,
                             double atol, double rtol)
{
    struct cmr_model *m = tiny(kind, 5);
    int good = 1;
    double worst = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct cmr_tensor *tn = &m->tensors[i];
        if (tn->role != CMR_TENSOR_PARAM || strstr(tn->name, "conv.bias"))
            continue;
        for (size_t k = tn->offset; k < tn->offset + tn->numel; k++) {
            double dlt = fabs((double)got[k] - want[k]);
            worst = dlt > worst ? dlt : worst;
            if (!(dlt <= atol + rtol * fabs((double)want[k]))) {
                if (good)
                    diag("%s: %s[%zu]: got %.8g want %.8g", what, tn->name, k - tn->offset, got[k], want[k]);
                good = 0;
            }
        }
    }
    diag("%s: max abs diff %.3g outside the conv biases", what, worst);
    cmr_model_free(m);
    return good;
}

static void test_equivalence(enum cmr_model_kind kind, int sync)
{
    const char *name = cmr_model_kind_name(kind);
    struct cmr_dist_cfg cfg;
    cfg = cmr_dist_cfg_default();
    cfg.sync_bn = sync;
    int steps = 3;
    struct step_arg one[1], two[2];
    memset(one, 0, sizeof one);
    memset(two, 0, sizeof two);
    one[0].kind = kind, one[0].B = 8, one[0].steps = steps;
    for (int r = 0; r < 2; r++)
        two[r].kind = kind, two[r].B = 4, two[r].steps = steps;
    run_ranks(1, step_main, one, sizeof one[0], &cfg, NULL);
    run_ranks(2, step_main, two, sizeof two[0], &cfg, NULL);
    if (one[0].rc || two[0].rc || two[1].rc)
        diag("errors: %s / %s / %s", one[0].msg, two[0].msg, two[1].msg);
    ok(!one[0].rc && !two[0].rc && !two[1].rc, "%s%s: 1 x 8 and 2 x 4 ran %d steps", name, sync ? ", sync BN" : "",
       steps);
    ok(!memcmp(two[0].params, two[1].params, two[0].n_params * sizeof(float)),
       "%s%s: both ranks' weights are bit for bit identical after %d steps", name, sync ? ", sync BN" : "", steps);
    if (sync) {
        int same = 1;
        for (int s = 0; s < steps; s++) {
            /* step 1: each segment's forward is the same, the batch-norm
             * statistics and the loss are sums in another order; later steps
             * follow weights that may differ by up to 2 R lr (close_weights) */
            same &= (s > 0 || fabs(two[0].loss[s] - one[0].loss[s]) <= 1e-5 * fabs(one[0].loss[s])) &&
                    two[0].loss[s] == two[1].loss[s];
            diag("%s step %d: loss 1 x 8 %.9f, 2 x 4 %.9f", name, s + 1, one[0].loss[s], two[0].loss[s]);
        }
        ok(same, "%s, sync BN: 2 x 4 has step 1's loss of 1 x 8 (rel 1e-5), and the same losses on both ranks", name);
        ok(two[0].grads && one[0].grads &&
               close_weights("weights 2x4 vs 1x8", two[0].params, one[0].params, two[0].grads, one[0].grads, kind,
                             steps),
           "%s, sync BN: step 1's gradients of 2 x 4 are those of 1 x 8 (1e-4 normwise), and the weights after %d Adam "
           "steps within the lr/steps/gradient bound", name, steps);
    } else {
        ok(fabs(two[0].loss[0] - one[0].loss[0]) > 0, "%s, per-rank BN: the first loss differs from 1 x 8's (%.6f vs %.6f)",
           name, two[0].loss[0], one[0].loss[0]);
    }
    for (int r = 0; r < 2; r++) {
        free(two[r].params);
        free(two[r].grads);
    }
    free(one[0].params);
    free(one[0].grads);
}

/* ---- checksums ---- */

struct verify_arg {
    struct cmr_dist *d;
    int rc;
    char msg[256];
};

static void *verify_main(void *p)
{
    struct verify_arg *a = p;
    struct cmr_error err = {0};
    struct cmr_model *m = tiny(CMR_MODEL_ENCODER, 3);
    cmr_dist_attach(a->d, m, NULL, &err);
    a->rc = cmr_dist_verify(a->d, &err);
    if (!a->rc) {
        if (a->d->rank == 2)
            m->params[m->n_params / 2] += 1e-7f;
        a->rc = cmr_dist_verify(a->d, &err);
    }
    snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    cmr_dist_free(a->d);
    cmr_model_free(m);
    return NULL;
}

static void test_verify(void)
{
    struct verify_arg a[3];
    memset(a, 0, sizeof a);
    run_ranks(3, verify_main, a, sizeof a[0], NULL, NULL);
    ok(a[0].rc == CMR_ENUMERIC && a[1].rc == CMR_ENUMERIC && a[2].rc == CMR_ENUMERIC &&
           strstr(a[0].msg, "rank 2 differ from rank 0's") != NULL,
       "one changed weight on rank 2: every rank fails: %s", a[0].msg);
    struct cmr_model *m = tiny(CMR_MODEL_ENCODER, 3);
    uint64_t h = cmr_dist_checksum(m, 0);
    m->stats[0] += 1;
    ok(cmr_dist_checksum(m, 0) == h && cmr_dist_checksum(m, 1) != h, "running statistics count only with_stats");
    m->train.step++;
    ok(cmr_dist_checksum(m, 0) != h, "the step counts");
    cmr_model_free(m);
}

/* ---- the stream protocol with trainers ---- */

/* a stream: epochs x per-epoch example ids (rank-specific) */
struct stream_arg {
    struct cmr_dist *d;
    int epochs, per_epoch[MAXR]; /* examples per epoch, per rank (SHARD) or of the whole stream (ALL: [0]) */
    int batch, every;            /* per-rank batch; checkpoint every N steps (0: none) */
    int kill_after;              /* stop (as if killed) after this many steps (0: never) */
    const char *ckpt, *resume;   /* checkpoint path; resume from */
    int64_t steps, epochs_done, trained;
    double last_loss;
    float *params;
    size_t n_params;
    int rc;
    char msg[256];
};

static void *stream_main(void *p)
{
    struct stream_arg *a = p;
    struct cmr_dist *d = a->d;
    struct cmr_error err = {0};
    struct cmr_train_cfg tc;
    struct cmr_train_result s;
    struct cmr_model *m;
    int rc = 0, rows = 2;
    tc = cmr_train_cfg_default();
    tc.batch = a->batch;
    if (a->resume) {
        if (!(m = cmr_model_load(a->resume, &err)))
            bail("load", &err);
    } else {
        m = tiny(CMR_MODEL_ENCODER, 9);
    }
    struct cmr_train *t = cmr_train_new(m, &tc, rows, &err);
    if (!t)
        bail("trainer", &err);
    if ((rc = cmr_dist_attach(d, m, t, &err)) || (a->resume && (rc = cmr_dist_restore(d, &err))) ||
        (rc = cmr_dist_sync_model(d, &err)))
        goto out;
    float *ex = malloc((size_t)rows * CMR_MODEL_SEG * sizeof *ex);
    int whole = d->cfg.input == CMR_DIST_ALL, stopped = 0;
    int n_ep = whole ? a->per_epoch[0] : a->per_epoch[d->rank];
    for (int e = 0; e < a->epochs && !stopped && !rc; e++) {
        for (int i = 0; i < n_ep && !rc; i++) {
            /* example id: unique per rank and position, the same for every rank in ALL mode */
            int id = whole ? e * 1000 + i : e * 1000 + d->rank * 100 + i;
            if (!cmr_dist_admit(d, e))
                continue;
            if (cmr_train_epoch_changes(t, e)) {
                if ((rc = cmr_dist_step(d, 1, 0, &s, NULL, &err)))
                    break;
                cmr_train_end_epoch(t, NULL);
                if (d->stop) {
                    stopped = 1;
                    break;
                }
            }
            cmr_train_begin_epoch(t, e);
            example(ex, id, rows, 6);
            if (cmr_train_add(t, ex)) {
                if ((rc = cmr_dist_step(d, 0, 0, &s, NULL, &err)))
                    break;
                if (s.trained)
                    a->last_loss = s.loss;
                if (s.trained && a->every && m->train.step % a->every == 0 && (rc = cmr_dist_save(d, a->ckpt, &err)))
                    break;
                if (a->kill_after && m->train.step >= a->kill_after) {
                    stopped = 2;
                    break;
                }
            }
        }
    }
    if (!rc && stopped != 2) {
        if (!stopped && !(rc = cmr_dist_step(d, 1, 1, &s, NULL, &err)))
            cmr_train_end_epoch(t, NULL);
    }
    free(ex);
out:
    a->rc = rc;
    snprintf(a->msg, sizeof a->msg, "%s", err.msg);
    a->steps = m->train.step;
    a->epochs_done = m->train.epoch;
    a->n_params = m->n_params;
    a->params = malloc(m->n_params * sizeof(float));
    memcpy(a->params, m->params, m->n_params * sizeof(float));
    cmr_dist_free(d);
    cmr_train_free(t);
    cmr_model_free(m);
    return NULL;
}

static void stream_free(struct stream_arg *a, int n)
{
    for (int r = 0; r < n; r++)
        free(a[r].params);
}

static void test_stream(void)
{
    struct cmr_dist_cfg cfg;
    cfg = cmr_dist_cfg_default();
    cfg.check_every = 1;
    /* shards of 11 and 6 examples per epoch, batch 4: per epoch one full step
     * (4 + 4), then rank 1 has 2 left and its epoch ends: the last step takes
     * 2 + 2, rank 0 drops its other 3 */
    struct stream_arg a[2];
    memset(a, 0, sizeof a);
    for (int r = 0; r < 2; r++) {
        a[r].epochs = 3;
        a[r].per_epoch[0] = 11;
        a[r].per_epoch[1] = 6;
        a[r].batch = 4;
    }
    run_ranks(2, stream_main, a, sizeof a[0], &cfg, NULL);
    if (a[0].rc || a[1].rc)
        diag("%s / %s", a[0].msg, a[1].msg);
    ok(!a[0].rc && !a[1].rc && a[0].steps == 6 && a[1].steps == 6 && a[0].epochs_done == 3 && a[1].epochs_done == 3,
       "shards of 11 and 6 examples, batch 4: 2 steps per epoch on both ranks (%lld, %lld), 3 epochs",
       (long long)a[0].steps, (long long)a[1].steps);
    ok(!memcmp(a[0].params, a[1].params, a[0].n_params * sizeof(float)), "the ranks end with identical weights");
    stream_free(a, 2);

    /* a rank whose stream ends early stops the job at the end of that epoch */
    memset(a, 0, sizeof a);
    for (int r = 0; r < 2; r++) {
        a[r].epochs = r == 0 ? 3 : 1;
        a[r].per_epoch[0] = 8;
        a[r].per_epoch[1] = 8;
        a[r].batch = 4;
    }
    run_ranks(2, stream_main, a, sizeof a[0], &cfg, NULL);
    ok(!a[0].rc && !a[1].rc && a[0].epochs_done == 1 && a[1].epochs_done == 1 && a[0].steps == 2,
       "rank 1's stream ends after epoch 0: both stop there (%lld, %lld epochs)", (long long)a[0].epochs_done,
       (long long)a[1].epochs_done);
    stream_free(a, 2);

    /* CMR_DIST_ALL: 2 ranks x 4 on one stream = 1 process x 8 */
    struct cmr_dist_cfg all = cfg;
    all.input = CMR_DIST_ALL;
    all.sync_bn = 1;
    struct stream_arg one[1];
    memset(one, 0, sizeof one);
    memset(a, 0, sizeof a);
    one[0].epochs = 2, one[0].per_epoch[0] = 16, one[0].batch = 8;
    for (int r = 0; r < 2; r++)
        a[r].epochs = 2, a[r].per_epoch[0] = 16, a[r].batch = 4;
    run_ranks(1, stream_main, one, sizeof one[0], &all, NULL);
    run_ranks(2, stream_main, a, sizeof a[0], &all, NULL);
    ok(!one[0].rc && !a[0].rc && a[0].steps == 4 && one[0].steps == 4 &&
           fabs(a[0].last_loss - one[0].last_loss) < 1e-5 * fabs(one[0].last_loss) &&
           close_weights_abs("ALL 2x4 vs 1x8", a[0].params, one[0].params, CMR_MODEL_ENCODER, 2e-5, 1e-3),
       "one stream read by 2 ranks x 4 (CMR_DIST_ALL, sync BN) trains as 1 x 8: loss %.7f vs %.7f",
       a[0].last_loss, one[0].last_loss);
    stream_free(a, 2);
    stream_free(one, 1);
}

static void test_resume(void)
{
    char ck[512], ck2[512];
    snprintf(ck, sizeof ck, "%s/ck.cmr", tmpdir);
    snprintf(ck2, sizeof ck2, "%s/ck2.cmr", tmpdir);
    struct cmr_dist_cfg cfg;
    cfg = cmr_dist_cfg_default();
    /* the uninterrupted run: 2 ranks, 3 epochs of 13 / 10 examples, batch 4 */
    struct stream_arg full[2], a[2], b[2];
    memset(full, 0, sizeof full);
    for (int r = 0; r < 2; r++)
        full[r].epochs = 3, full[r].per_epoch[0] = 13, full[r].per_epoch[1] = 10, full[r].batch = 4;
    run_ranks(2, stream_main, full, sizeof full[0], &cfg, NULL);
    /* killed after step 4 (mid epoch 1), checkpoint every 2 steps, resumed */
    memset(a, 0, sizeof a);
    for (int r = 0; r < 2; r++) {
        a[r] = full[r];
        a[r].params = NULL;
        a[r].every = 2, a[r].ckpt = ck, a[r].kill_after = 5;
    }
    run_ranks(2, stream_main, a, sizeof a[0], &cfg, NULL);
    memset(b, 0, sizeof b);
    for (int r = 0; r < 2; r++) {
        b[r] = full[r];
        b[r].params = NULL;
        b[r].resume = ck;
    }
    run_ranks(2, stream_main, b, sizeof b[0], &cfg, NULL);
    if (b[0].rc)
        diag("%s", b[0].msg);
    ok(!b[0].rc && b[0].steps == full[0].steps && !memcmp(b[0].params, full[0].params, full[0].n_params * sizeof(float)),
       "killed after step 5, resumed from the step-4 checkpoint: the same %lld steps and weights, bit for bit",
       (long long)b[0].steps);
    stream_free(a, 2);
    stream_free(b, 2);

    /* a checkpoint at an epoch's last step (step 2: epoch 0 = 2 steps) */
    memset(a, 0, sizeof a);
    for (int r = 0; r < 2; r++) {
        a[r] = full[r];
        a[r].params = NULL;
        a[r].every = 2, a[r].ckpt = ck2, a[r].kill_after = 2;
    }
    run_ranks(2, stream_main, a, sizeof a[0], &cfg, NULL);
    memset(b, 0, sizeof b);
    for (int r = 0; r < 2; r++) {
        b[r] = full[r];
        b[r].params = NULL;
        b[r].resume = ck2;
    }
    run_ranks(2, stream_main, b, sizeof b[0], &cfg, NULL);
    ok(!b[0].rc && b[0].steps == full[0].steps && !memcmp(b[0].params, full[0].params, full[0].n_params * sizeof(float)),
       "resumed from a checkpoint written at an epoch's last step: bit for bit (%lld steps)", (long long)b[0].steps);
    stream_free(a, 2);
    stream_free(b, 2);

    /* any number of ranks: the step-4 checkpoint of 2 x 4 on 1 rank x 8 (the
     * same global batch) and on 1 rank x 4 */
    struct stream_arg one[1];
    memset(one, 0, sizeof one);
    one[0].epochs = 3, one[0].per_epoch[0] = 23, one[0].batch = 8, one[0].resume = ck;
    run_ranks(1, stream_main, one, sizeof one[0], &cfg, NULL);
    if (one[0].rc)
        diag("%s", one[0].msg);
    ok(!one[0].rc && one[0].epochs_done == 3, "the 2-rank checkpoint resumed on 1 rank x 8: %lld steps, %lld epochs",
       (long long)one[0].steps, (long long)one[0].epochs_done);
    stream_free(one, 1);
    memset(one, 0, sizeof one);
    one[0].epochs = 3, one[0].per_epoch[0] = 23, one[0].batch = 3, one[0].resume = ck;
    run_ranks(1, stream_main, one, sizeof one[0], &cfg, NULL);
    ok(one[0].rc == CMR_EINVAL && strstr(one[0].msg, "batch 4 on 2 ranks") && strstr(one[0].msg, "--batch 8"),
       "batch 3 on 1 rank refused: %s", one[0].msg);
    stream_free(one, 1);
    stream_free(full, 2);
    unlink(ck);
    unlink(ck2);
}

int main(void)
{
    tap_plan_none();
    if (!mkdtemp(tmpdir))
        bail("mkdtemp", NULL);
    cmr_nn_set_threads(1);
    test_collectives();
    test_sync_bn();
    test_equivalence(CMR_MODEL_ENCODER, 1);
    test_equivalence(CMR_MODEL_ENCODER, 0);
    test_equivalence(CMR_MODEL_MULTI, 1);
    test_equivalence(CMR_MODEL_CPC, 1);
    test_verify();
    test_stream();
    test_resume();
    rmdir(tmpdir);
    return tap_done();
}
