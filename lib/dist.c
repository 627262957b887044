/* cmr data-parallel training: the collectives' front, the threads backend,
 * synchronised batch norm, the global InfoNCE loss, the gradient all-reduce,
 * weight checksums, the stream protocol and checkpoints. See dist.h.
 * ref: PyTorch DistributedDataParallel and SyncBatchNorm
 *      (torch/nn/modules/_functions.py: SyncBatchNorm forward/backward) */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "nn/nn.h"
#include "nn/vec.h"
#include "util/clock.h"

static size_t type_size(enum cmr_dist_type t)
{
    return t == CMR_DIST_F32 ? sizeof(float) : t == CMR_DIST_F64 ? sizeof(double) : sizeof(int64_t);
}

struct cmr_dist_cfg cmr_dist_cfg_default(void)
{
    return (struct cmr_dist_cfg){.sync_bn = 0, .input = CMR_DIST_SHARD, .check_every = 100};
}

/* ---- the group of one ---- */

static int local_allreduce(struct cmr_dist *d, void *buf, size_t n, enum cmr_dist_type type,
                           enum cmr_dist_op op)
{
    (void)d, (void)buf, (void)n, (void)type, (void)op;
    return CMR_OK;
}

static int local_allgather(struct cmr_dist *d, const void *send, void *recv, size_t n,
                           enum cmr_dist_type type)
{
    (void)d;
    if (n)
        memmove(recv, send, n * type_size(type));
    return CMR_OK;
}

static int local_bcast(struct cmr_dist *d, void *buf, size_t bytes, int root)
{
    (void)d, (void)buf, (void)bytes, (void)root;
    return CMR_OK;
}

static const struct cmr_dist_ops local_ops = {local_allreduce, local_allgather, local_bcast};

const struct cmr_dist_ops *cmr_dist_local_ops(void) { return &local_ops; }

/* ---- ranks as threads: every rank publishes a pointer, waits, reads the
 * others' in rank order, waits again (so nobody overwrites a buffer that is
 * still being read) ---- */

struct threads {
    int n;
    pthread_barrier_t bar;
    const void **ptr;    /* (n) one published buffer per rank */
};

void *cmr_dist_threads_new(int n, struct cmr_error *err)
{
    if (n < 1 || n > 4096) {
        cmr_error_set(err, CMR_EINVAL, "dist: threads group size should be in [1, 4096], got %d", n);
        return NULL;
    }
    struct threads *T = calloc(1, sizeof *T);
    if (!T || !(T->ptr = calloc((size_t)n, sizeof *T->ptr)) || pthread_barrier_init(&T->bar, NULL, (unsigned)n)) {
        if (T)
            free(T->ptr);
        free(T);
        cmr_error_set(err, CMR_ENOMEM, "dist: out of memory");
        return NULL;
    }
    T->n = n;
    return T;
}

void cmr_dist_threads_free(void *ctx)
{
    struct threads *T = ctx;
    if (!T)
        return;
    pthread_barrier_destroy(&T->bar);
    free(T->ptr);
    free(T);
}

static void reduce_into(void *acc, const void *x, size_t n, enum cmr_dist_type type, enum cmr_dist_op op)
{
    for (size_t i = 0; i < n; i++) {
        if (type == CMR_DIST_F32) {
            float *a = (float *)acc + i, v = ((const float *)x)[i];
            *a = op == CMR_DIST_SUM ? *a + v : op == CMR_DIST_MIN ? (v < *a ? v : *a) : (v > *a ? v : *a);
        } else if (type == CMR_DIST_F64) {
            double *a = (double *)acc + i, v = ((const double *)x)[i];
            *a = op == CMR_DIST_SUM ? *a + v : op == CMR_DIST_MIN ? (v < *a ? v : *a) : (v > *a ? v : *a);
        } else {
            int64_t *a = (int64_t *)acc + i, v = ((const int64_t *)x)[i];
            *a = op == CMR_DIST_SUM ? *a + v : op == CMR_DIST_MIN ? (v < *a ? v : *a) : (v > *a ? v : *a);
        }
    }
}

static int threads_allreduce(struct cmr_dist *d, void *buf, size_t n, enum cmr_dist_type type,
                             enum cmr_dist_op op)
{
    struct threads *T = d->ctx;
    size_t bytes = n * type_size(type);
    void *acc = malloc(bytes ? bytes : 1);
    T->ptr[d->rank] = buf;
    pthread_barrier_wait(&T->bar);
    if (acc) {
        memcpy(acc, T->ptr[0], bytes);
        for (int r = 1; r < T->n; r++)
            reduce_into(acc, T->ptr[r], n, type, op);
    }
    pthread_barrier_wait(&T->bar);
    if (!acc)
        return CMR_ENOMEM; /* the others finish; this rank's caller stops */
    memcpy(buf, acc, bytes);
    free(acc);
    return CMR_OK;
}

static int threads_allgather(struct cmr_dist *d, const void *send, void *recv, size_t n,
                             enum cmr_dist_type type)
{
    struct threads *T = d->ctx;
    size_t bytes = n * type_size(type);
    T->ptr[d->rank] = send;
    pthread_barrier_wait(&T->bar);
    for (int r = 0; r < T->n; r++)
        if (r != d->rank)
            memcpy((char *)recv + (size_t)r * bytes, T->ptr[r], bytes);
    pthread_barrier_wait(&T->bar);
    memmove((char *)recv + (size_t)d->rank * bytes, send, bytes);
    return CMR_OK;
}

static int threads_bcast(struct cmr_dist *d, void *buf, size_t bytes, int root)
{
    struct threads *T = d->ctx;
    T->ptr[d->rank] = buf;
    pthread_barrier_wait(&T->bar);
    if (d->rank != root)
        memcpy(buf, T->ptr[root], bytes);
    pthread_barrier_wait(&T->bar);
    return CMR_OK;
}

static const struct cmr_dist_ops threads_ops = {threads_allreduce, threads_allgather, threads_bcast};

const struct cmr_dist_ops *cmr_dist_threads_ops(void) { return &threads_ops; }

/* ---- the rank ---- */

struct cmr_dist *cmr_dist_new(int rank, int size, const struct cmr_dist_ops *ops, void *ctx,
                              const struct cmr_dist_cfg *cfg, struct cmr_error *err)
{
    if (size < 1 || rank < 0 || rank >= size || !ops) {
        cmr_error_set(err, CMR_EINVAL, "dist: rank %d of %d is not a rank", rank, size);
        return NULL;
    }
    struct cmr_dist *d = calloc(1, sizeof *d);
    if (!d) {
        cmr_error_set(err, CMR_ENOMEM, "dist: out of memory");
        return NULL;
    }
    d->rank = rank;
    d->size = size;
    d->ops = ops;
    d->ctx = ctx;
    if (cfg)
        d->cfg = *cfg;
    else
        d->cfg = cmr_dist_cfg_default();
    d->batch_scale = 1;
    return d;
}

void cmr_dist_free(struct cmr_dist *d)
{
    if (!d)
        return;
    if (d->m && d->m->bn_hook == &d->bn)
        d->m->bn_hook = NULL;
    if (d->t && d->t->hook_ctx == d) {
        d->t->loss_hook = NULL;
        d->t->grads_hook = NULL;
        d->t->hook_ctx = NULL;
        d->t->levels /= d->size;
    }
    free(d->fbuf);
    free(d->dbuf);
    free(d);
}

int cmr_dist_allreduce(struct cmr_dist *d, void *buf, size_t n, enum cmr_dist_type type, enum cmr_dist_op op)
{
    return d->ops->allreduce(d, buf, n, type, op);
}

int cmr_dist_allgather(struct cmr_dist *d, const void *send, void *recv, size_t n, enum cmr_dist_type type)
{
    return d->ops->allgather(d, send, recv, n, type);
}

int cmr_dist_bcast(struct cmr_dist *d, void *buf, size_t bytes, int root)
{
    return d->ops->bcast(d, buf, bytes, root);
}

static float *fgrow(struct cmr_dist *d, size_t n)
{
    if (n > d->fcap) {
        float *p = realloc(d->fbuf, n * sizeof *p);
        if (!p)
            return NULL;
        d->fbuf = p;
        d->fcap = n;
    }
    return d->fbuf;
}

static double *dgrow(struct cmr_dist *d, size_t n)
{
    if (n > d->dcap) {
        double *p = realloc(d->dbuf, n * sizeof *p);
        if (!p)
            return NULL;
        d->dbuf = p;
        d->dcap = n;
    }
    return d->dbuf;
}

/* ---- synchronised batch norm: cmr_batchnorm2d_forward_train and _backward
 * (lib/nn/batchnorm.c) with the per-channel sums all-reduced. The statistics
 * are computed in two passes as there: the global mean from the sums, then
 * the global variance from the sums of squared deviations from it. A failed
 * collective cannot be reported through the hook: MPI's default error
 * handler aborts the job, and the threads backend only fails for memory,
 * which leaves the statistics local (the checksum then tells). ---- */

static void sync_bn_forward(void *ctx, int block, float *out, float *mean, float *rstd, float *running_mean,
                            float *running_var, const float *inp, const float *gamma, const float *beta, int B,
                            int C, int HW, float momentum, float eps)
{
    struct cmr_dist *d = ctx;
    double t0 = cmr_now();
    double *s = dgrow(d, 2 * (size_t)C + 1), nl = (double)B * HW;
    if (!s) {
        cmr_batchnorm2d_forward_train(out, mean, rstd, running_mean, running_var, inp, gamma, beta, B, C, HW,
                                      momentum, eps);
        return;
    }
    for (int c = 0; c < C; c++) {
        double sum = 0;
        for (int b = 0; b < B; b++)
            sum += vsum(inp + ((size_t)b * C + c) * HW, (size_t)HW);
        s[c] = sum;
    }
    s[C] = nl;
    cmr_dist_allreduce(d, s, (size_t)C + 1, CMR_DIST_F64, CMR_DIST_SUM);
    double n = s[C], *md = s + C + 1;
    for (int c = 0; c < C; c++) {
        md[c] = s[c] / n;
        mean[c] = (float)md[c];
    }
    for (int c = 0; c < C; c++) {
        double q = 0;
        for (int b = 0; b < B; b++)
            q += vsum_sqdev(inp + ((size_t)b * C + c) * HW, (size_t)HW, mean[c]);
        s[c] = q;
    }
    cmr_dist_allreduce(d, s, (size_t)C, CMR_DIST_F64, CMR_DIST_SUM);
    if (block >= 0 && block < CMR_MODEL_BLOCKS)
        d->bn_n[block] = n;
    for (int c = 0; c < C; c++) {
        double m = md[c], var = s[c] / n;
        float rs = (float)(1.0 / sqrt(var + eps));
        rstd[c] = rs;
        if (running_mean)
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
        if (running_var)
            running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * (n > 1 ? var * n / (n - 1) : 0.0));
        float scale = rs * gamma[c], shift = (float)(beta[c] - m * rs * gamma[c]);
        for (int b = 0; b < B; b++)
            vaffine(out + ((size_t)b * C + c) * HW, inp + ((size_t)b * C + c) * HW, (size_t)HW, scale, shift);
    }
    d->t_bn += cmr_now() - t0;
}

static void sync_bn_backward(void *ctx, int block, float *dinp, float *dgamma, float *dbeta, const float *dout,
                             const float *inp, const float *gamma, const float *mean, const float *rstd, int B,
                             int C, int HW)
{
    struct cmr_dist *d = ctx;
    double t0 = cmr_now();
    double *s = dgrow(d, 2 * (size_t)C);
    if (!s || block < 0 || block >= CMR_MODEL_BLOCKS) {
        cmr_batchnorm2d_backward(dinp, dgamma, dbeta, dout, inp, gamma, mean, rstd, B, C, HW);
        return;
    }
    /* this rank's sum(dout) and sum(dout * xhat) per channel: its share of
     * dbeta and dgamma (the gradient all-reduce adds the others') */
    for (int c = 0; c < C; c++) {
        double sd = 0, sdx = 0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW, *g = dout + ((size_t)b * C + c) * HW;
            sd += vsum(g, (size_t)HW);
            sdx += vsum_dev_dot(g, x, (size_t)HW, mean[c]);
        }
        sdx *= rstd[c];
        if (dbeta)
            dbeta[c] += (float)sd;
        if (dgamma)
            dgamma[c] += (float)sdx;
        s[c] = sd;
        s[C + c] = sdx;
    }
    if (!dinp) {
        d->t_bn += cmr_now() - t0;
        return;
    }
    cmr_dist_allreduce(d, s, 2 * (size_t)C, CMR_DIST_F64, CMR_DIST_SUM);
    const double n = d->bn_n[block];
    for (int c = 0; c < C; c++) {
        const float m = mean[c], rs = rstd[c], k = gamma[c] * rs;
        const float ka = (float)(-k * (s[c] / n)), kq = (float)(-k * rs * (s[C + c] / n));
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW, *g = dout + ((size_t)b * C + c) * HW;
            float *dx = dinp + ((size_t)b * C + c) * HW;
            for (int j = 0; j < HW; j++)
                dx[j] += k * g[j] + (x[j] - m) * kq + ka;
        }
    }
    d->t_bn += cmr_now() - t0;
}

/* ---- the model ---- */

static int hook_loss(void *ctx, const float *x, int n, float tau, double *loss, int *correct,
                     struct cmr_error *err)
{
    return cmr_dist_loss(ctx, x, n, tau, loss, correct, err);
}

static int hook_grads(void *ctx, struct cmr_error *err)
{
    return cmr_dist_reduce_grads(ctx, err);
}

int cmr_dist_attach(struct cmr_dist *d, struct cmr_model *m, struct cmr_train *t, struct cmr_error *err)
{
    if (d->m)
        return cmr_error_set(err, CMR_ESTATE, "dist: a model is already attached");
    d->m = m;
    d->bn.ctx = d;
    d->bn.forward = sync_bn_forward;
    d->bn.backward = sync_bn_backward;
    if (d->cfg.sync_bn && d->size > 1)
        m->bn_hook = &d->bn;
    if (t) {
        if (t->m != m)
            return cmr_error_set(err, CMR_EINVAL, "dist: the trainer trains another model");
        d->t = t;
        t->loss_hook = hook_loss;
        t->grads_hook = hook_grads;
        t->hook_ctx = d;
        t->levels *= d->size;
    }
    return CMR_OK;
}

int cmr_dist_sync_model(struct cmr_dist *d, struct cmr_error *err)
{
    struct cmr_model *m = d->m;
    int rc;
    if (!m)
        return cmr_error_set(err, CMR_ESTATE, "dist: no model attached");
    if (d->size == 1)
        return CMR_OK;
    int64_t have[2] = {m->adam_m != NULL, m->adam_m != NULL};
    if ((rc = cmr_dist_allreduce(d, have, 1, CMR_DIST_I64, CMR_DIST_MIN)) ||
        (rc = cmr_dist_allreduce(d, have + 1, 1, CMR_DIST_I64, CMR_DIST_MAX)))
        return cmr_error_set(err, rc, "dist: a collective failed (%s)", cmr_strerror(rc));
    if (have[0] != have[1])
        return cmr_error_set(err, CMR_ESTATE, "dist: some ranks' models have an optimizer state, others not "
                             "(different --resume or --init files?)");
    struct { float mean, std; struct cmr_train_state st; int64_t count[CMR_MODEL_BLOCKS]; } hdr;
    memset(&hdr, 0, sizeof hdr);
    hdr.mean = m->cfg.mel_mean;
    hdr.std = m->cfg.mel_std;
    hdr.st = m->train;
    memcpy(hdr.count, m->bn_count, sizeof hdr.count);
    if ((rc = cmr_dist_bcast(d, &hdr, sizeof hdr, 0)) ||
        (rc = cmr_dist_bcast(d, m->params, m->n_params * sizeof(float), 0)) ||
        (rc = cmr_dist_bcast(d, m->stats, m->n_stats * sizeof(float), 0)) ||
        (have[0] && ((rc = cmr_dist_bcast(d, m->adam_m, m->n_params * sizeof(float), 0)) ||
                     (rc = cmr_dist_bcast(d, m->adam_v, m->n_params * sizeof(float), 0)))))
        return cmr_error_set(err, rc, "dist: broadcasting rank 0's model failed (%s)", cmr_strerror(rc));
    m->cfg.mel_mean = hdr.mean;
    m->cfg.mel_std = hdr.std;
    m->train = hdr.st;
    memcpy(m->bn_count, hdr.count, sizeof hdr.count);
    return cmr_dist_verify(d, err);
}

/* rows r*B .. r*B+B-1 of a (G, E) matrix are rank r's */

/* the siamese and multi-level losses over the global batch: each rank's
 * embeddings gathered, the InfoNCE of every level, this rank's rows of the
 * gradient back through its encoder */
static int loss_pairs(struct cmr_dist *d, const float *x, int B, float tau, double *L, int *ncorrect,
                      struct cmr_error *err)
{
    struct cmr_model *m = d->m;
    const struct cmr_model_cfg *c = &m->cfg;
    int rc, E = c->emb, N = d->size, G = B * N;
    size_t GE = (size_t)G * E;
    double t0;
    int n = 2 * B, D = cmr_model_out_dim(c), nl = c->kind == CMR_MODEL_MULTI ? CMR_MODEL_BLOCKS : 1;
    size_t nD = (size_t)n * D;
    /* emb (n, D), all (N, n, D), demb (n, D), FA FP dA dP (G, E), probs (G, G) */
    float *emb = fgrow(d, 2 * nD + (size_t)N * nD + 4 * GE + (size_t)G * G);
    if (!emb)
        return cmr_error_set(err, CMR_ENOMEM, "dist: out of memory");
    float *all = emb + nD, *demb = all + (size_t)N * nD, *FA = demb + nD, *FP = FA + GE, *dA = FP + GE,
          *dP = dA + GE, *probs = dP + GE;
    if ((rc = cmr_model_forward(m, x, n, 1, emb, err)))
        return rc;
    t0 = cmr_now();
    rc = cmr_dist_allgather(d, emb, all, nD, CMR_DIST_F32);
    d->t_embed += cmr_now() - t0;
    if (rc)
        return cmr_error_set(err, rc, "dist: gathering the embeddings failed (%s)", cmr_strerror(rc));
    memset(demb, 0, nD * sizeof(float));
    for (int l = 0; l < nl; l++) {
        for (int r = 0; r < N; r++)
            for (int i = 0; i < B; i++) {
                const float *src = all + (size_t)r * nD;
                memcpy(FA + ((size_t)r * B + i) * E, src + (size_t)i * D + (size_t)l * E, (size_t)E * sizeof(float));
                memcpy(FP + ((size_t)r * B + i) * E, src + (size_t)(B + i) * D + (size_t)l * E,
                       (size_t)E * sizeof(float));
            }
        *L += cmr_infonce_forward(probs, FA, FP, G, E, tau) / nl;
        *ncorrect += cmr_infonce_correct(probs, G);
        memset(dA, 0, 2 * GE * sizeof(float));
        cmr_infonce_backward(dA, dP, probs, FA, FP, G, E, tau, 1.0f / nl);
        for (int i = 0; i < B; i++) {
            const float *ga = dA + ((size_t)d->rank * B + i) * E, *gp = dP + ((size_t)d->rank * B + i) * E;
            float *ra = demb + (size_t)i * D + (size_t)l * E, *rp = demb + (size_t)(B + i) * D + (size_t)l * E;
            for (int j = 0; j < E; j++) {
                ra[j] += ga[j];
                rp[j] += gp[j];
            }
        }
    }
    if ((rc = cmr_model_backward(m, demb, err)))
        return rc;
    return CMR_OK;
}

/* MelCPC's loss over the global batch: each rank's predictions and targets
 * gathered, the InfoNCE of every step k, this rank's rows of the gradient
 * back through its predictors, GRU and encoder */
static int loss_cpc(struct cmr_dist *d, const float *x, int B, float tau, double *L, int *ncorrect,
                    struct cmr_error *err)
{
    struct cmr_model *m = d->m;
    const struct cmr_model_cfg *c = &m->cfg;
    int rc, E = c->emb, N = d->size, G = B * N;
    size_t GE = (size_t)G * E, BE = (size_t)B * E;
    double t0;
    int T = c->context, K = c->k, S = T + K, n = B * S, H = c->hidden;
    size_t nE = (size_t)n * E, KBE = (size_t)K * BE;
    /* z dz (n, E); zc dzc (B, T, E); cs dc (B, T, H); ct dct (B, H);
     * send (2, K, B, E); all (N, 2, K, B, E); PRED Y dPRED dY (G, E); probs (G, G) */
    size_t need = 2 * nE + 2 * (size_t)B * T * E + 2 * (size_t)B * T * H + 2 * (size_t)B * H + 2 * KBE +
                  (size_t)N * 2 * KBE + 4 * GE + (size_t)G * G;
    float *z = fgrow(d, need);
    if (!z)
        return cmr_error_set(err, CMR_ENOMEM, "dist: out of memory");
    float *dz = z + nE, *zc = dz + nE, *dzc = zc + (size_t)B * T * E, *cs = dzc + (size_t)B * T * E,
          *dc = cs + (size_t)B * T * H, *ct = dc + (size_t)B * T * H, *dct = ct + (size_t)B * H,
          *send = dct + (size_t)B * H, *all = send + 2 * KBE, *PRED = all + (size_t)N * 2 * KBE,
          *Y = PRED + GE, *dPRED = Y + GE, *dY = dPRED + GE, *probs = dY + GE;
    if ((rc = cmr_model_forward(m, x, n, 1, z, err)))
        return rc;
    for (int b = 0; b < B; b++)
        memcpy(zc + (size_t)b * T * E, z + (size_t)b * S * E, (size_t)T * E * sizeof(float));
    if ((rc = cmr_model_gru_forward(m, zc, NULL, B, T, 1, cs, err)))
        return rc;
    for (int b = 0; b < B; b++)
        memcpy(ct + (size_t)b * H, cs + ((size_t)b * T + T - 1) * H, (size_t)H * sizeof(float));
    /* this rank's predictions W_k c_t + b_k and targets z_{T+k}, for every k */
    for (int k = 0; k < K; k++) {
        cmr_linear_forward(send + (size_t)k * BE, ct, m->p.pred_w[k], m->p.pred_b[k], B, H, E);
        for (int b = 0; b < B; b++)
            memcpy(send + KBE + (size_t)k * BE + (size_t)b * E, z + ((size_t)b * S + T + k) * E,
                   (size_t)E * sizeof(float));
    }
    t0 = cmr_now();
    rc = cmr_dist_allgather(d, send, all, 2 * KBE, CMR_DIST_F32);
    d->t_embed += cmr_now() - t0;
    if (rc)
        return cmr_error_set(err, rc, "dist: gathering the predictions failed (%s)", cmr_strerror(rc));
    memset(dz, 0, nE * sizeof(float));
    memset(dct, 0, (size_t)B * H * sizeof(float));
    for (int k = 0; k < K; k++) {
        for (int r = 0; r < N; r++) {
            const float *src = all + (size_t)r * 2 * KBE;
            memcpy(PRED + (size_t)r * BE, src + (size_t)k * BE, BE * sizeof(float));
            memcpy(Y + (size_t)r * BE, src + KBE + (size_t)k * BE, BE * sizeof(float));
        }
        *L += cmr_infonce_forward(probs, PRED, Y, G, E, tau);
        *ncorrect += cmr_infonce_correct(probs, G);
        memset(dPRED, 0, 2 * GE * sizeof(float));
        cmr_infonce_backward(dPRED, dY, probs, PRED, Y, G, E, tau, 1.0f);
        const float *dpred = dPRED + (size_t)d->rank * BE, *dy = dY + (size_t)d->rank * BE;
        cmr_linear_backward(dct, m->g.pred_w[k], m->g.pred_b[k], dpred, ct, m->p.pred_w[k], B, H, E);
        for (int b = 0; b < B; b++) {
            float *row = dz + ((size_t)b * S + T + k) * E;
            for (int j = 0; j < E; j++)
                row[j] += dy[(size_t)b * E + j];
        }
    }
    memset(dc, 0, (size_t)B * T * H * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(dc + ((size_t)b * T + T - 1) * H, dct + (size_t)b * H, (size_t)H * sizeof(float));
    memset(dzc, 0, (size_t)B * T * E * sizeof(float));
    if ((rc = cmr_model_gru_backward(m, dc, dzc, err)))
        return rc;
    for (int b = 0; b < B; b++)
        for (size_t j = 0; j < (size_t)T * E; j++)
            dz[(size_t)b * S * E + j] += dzc[(size_t)b * T * E + j];
    if ((rc = cmr_model_backward(m, dz, err)))
        return rc;
    return CMR_OK;
}

int cmr_dist_loss(struct cmr_dist *d, const float *x, int B, float tau, double *loss, int *correct,
                  struct cmr_error *err)
{
    struct cmr_model *m = d->m;
    if (!m)
        return cmr_error_set(err, CMR_ESTATE, "dist: no model attached");
    int rc, N = d->size, G = B * N, ncorrect = 0;
    double L = 0;
    if (B < 1 || G < 2)
        return cmr_error_set(err, CMR_EINVAL, "dist: a contrastive batch needs >= 2 examples over the ranks, "
                             "got %d x %d", N, B);
    if (!(tau > 0))
        return cmr_error_set(err, CMR_EINVAL, "dist: temperature should be > 0, got %g", tau);
    if (!m->grads)
        return cmr_error_set(err, CMR_ESTATE, "dist: loss before cmr_model_zero_grad");
    rc = m->cfg.kind != CMR_MODEL_CPC ? loss_pairs(d, x, B, tau, &L, &ncorrect, err)
                                      : loss_cpc(d, x, B, tau, &L, &ncorrect, err);
    if (rc)
        return rc;
    if (!isfinite(L))
        return cmr_error_set(err, CMR_ENUMERIC, "model: the loss is not finite (%g)", L);
    if (loss)
        *loss = L;
    if (correct)
        *correct = ncorrect;
    return CMR_OK;
}

int cmr_dist_reduce_grads(struct cmr_dist *d, struct cmr_error *err)
{
    if (!d->m || !d->m->grads)
        return cmr_error_set(err, CMR_ESTATE, "dist: no gradients to reduce");
    if (d->size == 1)
        return CMR_OK;
    double t0 = cmr_now();
    int rc = cmr_dist_allreduce(d, d->m->grads, d->m->n_params, CMR_DIST_F32, CMR_DIST_SUM);
    d->t_grads += cmr_now() - t0;
    if (rc)
        return cmr_error_set(err, rc, "dist: the gradient all-reduce failed (%s)", cmr_strerror(rc));
    return CMR_OK;
}

/* ---- checksums ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t hash_floats(uint64_t h, const float *x, size_t n)
{
    /* four independent lanes, folded at the end */
    uint64_t l[4] = {h, h ^ 1, h ^ 2, h ^ 3};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w[4];
        memcpy(w, x + i, sizeof w);
        for (int k = 0; k < 4; k++)
            l[k] = mix(l[k], w[k]);
    }
    for (; i < n; i++) {
        uint32_t w;
        memcpy(&w, x + i, sizeof w);
        l[0] = mix(l[0], w);
    }
    return mix(mix(mix(mix(n, l[0]), l[1]), l[2]), l[3]);
}

uint64_t cmr_dist_checksum(const struct cmr_model *m, int with_stats)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = mix(h, (uint64_t)m->train.step);
    h = mix(h, (uint64_t)m->train.adam_t);
    h = hash_floats(h, m->params, m->n_params);
    if (with_stats)
        h = hash_floats(h, m->stats, m->n_stats);
    return h;
}

int cmr_dist_verify(struct cmr_dist *d, struct cmr_error *err)
{
    if (!d->m)
        return cmr_error_set(err, CMR_ESTATE, "dist: no model attached");
    if (d->size == 1)
        return CMR_OK;
    double t0 = cmr_now();
    int64_t mine = (int64_t)cmr_dist_checksum(d->m, d->cfg.sync_bn), *all = malloc((size_t)d->size * sizeof *all);
    if (!all)
        return cmr_error_set(err, CMR_ENOMEM, "dist: out of memory");
    int rc = cmr_dist_allgather(d, &mine, all, 1, CMR_DIST_I64);
    d->t_check += cmr_now() - t0;
    if (rc) {
        free(all);
        return cmr_error_set(err, rc, "dist: comparing the weights failed (%s)", cmr_strerror(rc));
    }
    for (int r = 1; r < d->size; r++)
        if (all[r] != all[0]) {
            cmr_error_set(err, CMR_ENUMERIC, "dist: the weights of rank %d differ from rank 0's after step %" PRId64
                          " (checksum %016" PRIx64 ", rank 0 %016" PRIx64 "): the ranks diverged", r,
                          d->m->train.step, (uint64_t)all[r], (uint64_t)all[0]);
            free(all);
            return CMR_ENUMERIC;
        }
    free(all);
    return CMR_OK;
}

/* ---- the stream ---- */

int cmr_dist_admit(struct cmr_dist *d, int64_t label)
{
    struct cmr_train *t = d->t;
    int64_t G = (int64_t)d->size * t->cfg.batch;
    if (d->resuming) {
        d->reached |= label >= d->skip_label;
        if (label < d->skip_label || (label == d->skip_label && (d->skip_whole || d->skip_n > 0))) {
            if (label == d->skip_label && !d->skip_whole)
                d->skip_n--;
            return 0;
        }
        d->resuming = 0;
    }
    if (!d->have_label || label != d->label) {
        d->label = label;
        d->have_label = 1;
        d->pos = 0;
        d->epoch_examples = 0;
    }
    if (d->over && t->in_epoch && label == t->epoch) {
        t->consumed++;
        t->ep_dropped++;
        return 0;
    }
    if (d->cfg.input == CMR_DIST_ALL) {
        int64_t at = d->pos++ % G, lo = (int64_t)d->rank * t->cfg.batch;
        if (at < lo || at >= lo + t->cfg.batch)
            return 0;
    }
    return 1;
}

int cmr_dist_step(struct cmr_dist *d, int ended, int eof, struct cmr_train_result *s,
                  struct cmr_dist_agreement *a, struct cmr_error *err)
{
    struct cmr_train *t = d->t;
    struct cmr_dist_agreement tmp;
    int rc;
    if (!a)
        a = &tmp;
    memset(a, 0, sizeof *a);
    memset(s, 0, sizeof *s);
    if (!t)
        return cmr_error_set(err, CMR_ESTATE, "dist: no trainer attached");
    s->lr = t->m->train.lr;
    if (d->over) {
        /* the epoch had its last step; this is its end on this rank */
        d->over = 0;
        a->over = 1;
        a->stop = d->stop;
        return CMR_OK;
    }
    if (eof && d->resuming && (!d->reached || (!d->skip_whole && d->skip_n > 0)))
        return cmr_error_set(err, CMR_EINVAL, "dist: the input ended before the checkpoint's position (epoch %"
                             PRId64 "): not the stream it was trained on", d->skip_label);
    int64_t mine[4] = {t->n, ended != 0, eof != 0, t->in_epoch ? t->epoch : INT64_MIN};
    int64_t *all = malloc((size_t)d->size * sizeof mine);
    if (!all)
        return cmr_error_set(err, CMR_ENOMEM, "dist: out of memory");
    if ((rc = cmr_dist_allgather(d, mine, all, 4, CMR_DIST_I64))) {
        free(all);
        return cmr_error_set(err, rc, "dist: agreeing on the batch failed (%s)", cmr_strerror(rc));
    }
    int64_t n = mine[0], label = INT64_MIN;
    int who = -1;
    for (int r = 0; r < d->size; r++) {
        const int64_t *v = all + 4 * (size_t)r;
        n = v[0] < n ? v[0] : n;
        a->over |= v[1] != 0;
        a->stop |= v[2] != 0;
        if (v[3] != INT64_MIN) {
            if (label == INT64_MIN) {
                label = v[3];
                who = r;
            } else if (v[3] != label) {
                cmr_error_set(err, CMR_EINVAL, "dist: rank %d is in epoch %" PRId64 " and rank %d in epoch %" PRId64
                              ": the ranks' streams do not have the same epochs", who, label, r, v[3]);
                free(all);
                return CMR_EINVAL;
            }
        }
    }
    free(all);
    if (!a->over && n < t->cfg.batch)
        return cmr_error_set(err, CMR_ESTATE, "dist: a step with %" PRId64 " of %d examples before the epoch's end",
                             n, t->cfg.batch);
    a->n = (int)n;
    if (t->n > n) { /* the epoch's last step takes as many examples from every rank */
        t->consumed += t->n - n;
        t->ep_dropped += t->n - n;
        t->n = (int)n;
    }
    int full = t->n == t->cfg.batch;
    if ((rc = cmr_train_step(t, s, err)))
        return rc;
    if (s->trained) {
        d->n_steps++;
        d->step_label = t->epoch;
        d->have_step = 1;
        if (full)
            d->epoch_examples += (int64_t)d->size * t->cfg.batch;
        if (d->cfg.check_every > 0 && t->m->train.step % d->cfg.check_every == 0 && (rc = cmr_dist_verify(d, err)))
            return rc;
    }
    if (a->over) {
        d->done = 1;
        d->done_label = t->epoch;
    }
    d->over = a->over && !ended;
    d->stop |= a->stop;
    return CMR_OK;
}

/* ---- checkpoints ---- */

static int meta_i64(struct cmr_model *m, const char *key, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    return cmr_model_meta_set(m, key, b);
}

static int meta_get_i64(const struct cmr_model *m, const char *key, int64_t *v)
{
    const char *s = cmr_model_meta_get(m, key);
    char *end;
    if (!s)
        return 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end)
        return -1;
    *v = x;
    return 1;
}

int cmr_dist_checkpoint_ranks(const struct cmr_model *m)
{
    int64_t v = 0;
    return meta_get_i64(m, "train.dist.ranks", &v) == 1 && v > 0 && v < 1 << 30 ? (int)v : 0;
}

int cmr_dist_save(struct cmr_dist *d, const char *path, struct cmr_error *err)
{
    struct cmr_model *m = d->m;
    struct cmr_train *t = d->t;
    int rc;
    if (!m || !t)
        return cmr_error_set(err, CMR_ESTATE, "dist: no trainer attached");
    if ((rc = cmr_dist_verify(d, err)))
        return rc;
    if (!d->cfg.sync_bn && d->size > 1) {
        /* per-rank running statistics: every rank adopts their mean */
        if ((rc = cmr_dist_allreduce(d, m->stats, m->n_stats, CMR_DIST_F32, CMR_DIST_SUM)))
            return cmr_error_set(err, rc, "dist: averaging the running statistics failed (%s)", cmr_strerror(rc));
        for (size_t i = 0; i < m->n_stats; i++)
            m->stats[i] /= (float)d->size;
    }
    /* the position: the epoch in progress and its examples trained in full
     * steps, or -1 when the epoch had its last step (or ended) */
    int64_t label, skip;
    if (t->in_epoch) {
        label = t->epoch;
        skip = d->done && d->done_label == t->epoch ? -1 : d->epoch_examples;
    } else {
        label = d->have_step ? d->step_label : d->resumed ? d->skip_label : INT64_MIN / 2;
        skip = -1;
    }
    if ((rc = meta_i64(m, "train.dist.ranks", d->size)) ||
        (rc = meta_i64(m, "train.dist.batch", (int64_t)d->size * t->cfg.batch)) ||
        (rc = meta_i64(m, "train.dist.sync_bn", d->cfg.sync_bn)) ||
        (rc = cmr_model_meta_set(m, "train.dist.input", d->cfg.input == CMR_DIST_ALL ? "all" : "shard")) ||
        (rc = meta_i64(m, "train.dist.label", label)) || (rc = meta_i64(m, "train.dist.skip", skip)))
        return cmr_error_set(err, rc, "dist: cannot store the position in the model's metadata");
    if (d->rank != 0)
        return CMR_OK;
    return cmr_train_save(t, path, err);
}

int cmr_dist_restore(struct cmr_dist *d, struct cmr_error *err)
{
    struct cmr_model *m = d->m;
    struct cmr_train *t = d->t;
    int64_t ranks0 = 1, b0 = 0, label = 0, skip = 0;
    int rc, dist = cmr_dist_checkpoint_ranks(m) > 0;
    if (!m || !t)
        return cmr_error_set(err, CMR_ESTATE, "dist: no trainer attached");
    if (dist)
        ranks0 = cmr_dist_checkpoint_ranks(m);
    if (meta_get_i64(m, "train.batch", &b0) == 1 && b0 != t->cfg.batch) {
        int64_t b = t->cfg.batch;
        if (ranks0 * b0 != d->size * b) {
            char hint[64] = "";
            if (ranks0 * b0 % d->size == 0 && ranks0 * b0 / d->size >= 2)
                snprintf(hint, sizeof hint, " or --batch %" PRId64 " (the same global batch)", ranks0 * b0 / d->size);
            return cmr_error_set(err, CMR_EINVAL, "train: the checkpoint was trained with batch %" PRId64 " on %"
                                 PRId64 " rank%s (global batch %" PRId64 "), not %" PRId64 " on %d: give --batch %"
                                 PRId64 " (the same per rank)%s", b0, ranks0, ranks0 == 1 ? "" : "s", ranks0 * b0, b,
                                 d->size, b0, hint);
        }
        if ((rc = meta_i64(m, "train.batch", b)))
            return cmr_error_set(err, rc, "dist: out of memory");
    }
    /* the epoch's sums count this rank's examples: in this run's units */
    d->batch_scale = (double)ranks0 / d->size;
    if ((rc = cmr_train_restore(t, err)))
        return rc;
    /* where the checkpoint stopped: epoch `label`, of which `skip` examples
     * were trained on (all of it when -1) */
    if (dist) {
        if (meta_get_i64(m, "train.dist.label", &label) != 1 || meta_get_i64(m, "train.dist.skip", &skip) != 1)
            return cmr_error_set(err, CMR_EFORMAT, "train: the checkpoint has no train.dist position");
    } else if (t->in_epoch) {
        label = t->epoch;
        skip = t->ep_examples + t->ep_dropped; /* one process: every step before the epoch's end was full */
    } else {
        label = m->train.epoch - 1; /* cmr-pair numbers the epochs from 0 */
        skip = -1;
    }
    d->resuming = d->resumed = 1;
    d->skip_label = label;
    d->skip_whole = skip < 0;
    d->label = label;
    d->have_label = 1;
    if (skip >= 0) {
        d->epoch_examples = skip;
        if (d->cfg.input == CMR_DIST_ALL) {
            d->skip_n = skip;
            d->pos = skip;
        } else {
            d->skip_n = skip / d->size;
        }
    } else if (t->in_epoch) {
        /* the epoch's last step was taken: its end comes next */
        d->over = 1;
        d->done = 1;
        d->done_label = label;
    }
    if (d->batch_scale != 1) {
        t->ep_loss *= d->batch_scale;
        t->ep_examples = llround(t->ep_examples * d->batch_scale);
        t->ep_dropped = llround(t->ep_dropped * d->batch_scale);
    }
    t->consumed = 0; /* positions are the admit's business */
    return CMR_OK;
}
