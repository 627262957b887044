/* cmr training loop pieces that are not I/O (PAPER.md section 6): batching
 * of pair / sequence examples, one optimizer step with its checks (NaN or
 * exploding loss, NaN gradient), the epoch loss and the plateau schedule,
 * and the training state a checkpoint needs to resume exactly.
 *
 * The trainer drives a cmr_model (lib/model.h) through its verbs:
 * zero_grad, loss (forward + InfoNCE + backward), update (Adam). It owns no
 * file and reads no stream: filters/cmr-train.c feeds it examples and decides
 * when an epoch ends (a change of the frames' info "epoch", or the end of the
 * stream).
 *
 * Batches: examples are collected until `batch` of them are buffered, then
 * one step trains on them. A batch never mixes epochs: at the end of an epoch
 * the examples left over (fewer than `batch`) are trained on as a short batch
 * if there are at least min_batch (2: InfoNCE needs one negative), else
 * dropped and counted.
 *
 * Epoch loss: the mean over the epoch's trained examples of their batch's
 * loss (each batch's loss weighted by its size), i.e. the mean per-example
 * loss when all batches are full.
 *
 * Plateau schedule: torch.optim.lr_scheduler.ReduceLROnPlateau(mode="min",
 * factor, patience, threshold=1e-4, threshold_mode="rel", cooldown=0,
 * min_lr=0, eps=1e-8) stepped once per epoch with the epoch loss:
 *   improved = loss < best * (1 - threshold)     (best = +inf at first)
 *   improved: best = loss, bad = 0;  otherwise bad += 1
 *   bad > patience: lr = lr * factor (unless the change is below 1e-8), bad = 0
 * so with patience 5 the rate drops at the 6th epoch in a row without
 * improvement, as PyTorch's does.
 * ref: https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.ReduceLROnPlateau.html
 *
 * Resuming: every number that decides what happens next is in the model
 * file, so a run restarted from a checkpoint on the same input stream does
 * the same arithmetic as one that was never stopped: the parameters, batch
 * norm running statistics, Adam's m, v and t (lib/model.h model files), the
 * step, epochs done, lr and the plateau state (struct cmr_train_state), and,
 * as model metadata (keys "train.*", exact decimal doubles), the examples
 * consumed from the stream, the epoch in progress and its loss sums, and the
 * options that must not change (batch, temperature, schedule). The trainer
 * draws no random numbers after the initialisation (the example order comes
 * from cmr-pair), so there is no generator state to keep; the seed is stored.
 * Nothing here prints or exits. */
#ifndef CMR_TRAIN_H
#define CMR_TRAIN_H

#include <stdint.h>

#include "err.h"
#include "model.h"

#define CMR_TRAIN_MIN_BATCH 2

struct cmr_train_cfg {
    int batch;           /* examples per step (16) */
    double tau;          /* InfoNCE temperature (1) */
    double lr;           /* initial learning rate (1e-3) */
    int patience;        /* epochs without improvement before the rate drops (5) */
    double factor;       /* rate multiplier on a plateau (0.2) */
    double threshold;    /* relative improvement that counts (1e-4, PyTorch's default) */
    double max_loss;     /* a batch loss above this stops training (1e4) */
    uint64_t seed;       /* the initialisation seed, stored in checkpoints */
};
struct cmr_train_cfg cmr_train_cfg_default(void);
/* CMR_OK or CMR_EINVAL with err naming the field */
int cmr_train_cfg_check(const struct cmr_train_cfg *cfg, struct cmr_error *err);

/* what one step did */
struct cmr_train_result {
    int n;               /* examples in the batch */
    int trained;         /* 1: a step was taken; 0: the batch was too short and dropped */
    double loss;         /* the batch loss (InfoNCE; multi: averaged over levels; cpc: summed over k) */
    int correct;         /* rows whose top score was their positive, over levels / predictors */
    int total;           /* n x levels (multi) or n x K (cpc) or n: accuracy = correct / total */
    double lr;           /* the learning rate the step used */
};

/* what one epoch did (cmr_train_end_epoch) */
struct cmr_train_epoch {
    int64_t epoch;       /* the stream's epoch label (info "epoch") */
    int64_t examples;    /* examples trained on */
    int64_t dropped;     /* examples dropped (short last batch) */
    int64_t steps;
    double loss;         /* epoch loss (see above); NAN when nothing was trained */
    double acc;          /* contrastive accuracy over the epoch; NAN when nothing was trained */
    int lr_dropped;      /* 1 when the plateau schedule lowered the rate */
    double lr;           /* the rate after the schedule */
};

struct cmr_train {
    struct cmr_model *m; /* not owned */
    struct cmr_train_cfg cfg;
    int rows;            /* segments per example: 2 (pair) or context + K (sequence) */
    int levels;          /* InfoNCE terms per example: 1, 5 (multi) or K (cpc) */
    float *buf;          /* (batch, rows, T, F): the examples, as they came */
    float *x;            /* (batch * rows, T, F): the model's input order */
    float *ebuf;         /* cmr_train_eval's buffers, allocated on first use */

    /* Optional hooks for data-parallel training (lib/dist.h), NULL otherwise.
     * loss_hook replaces cmr_model_loss(m, x, n, tau, 1, ...) in a step (the
     * forward, loss and backward of the global batch); grads_hook runs right
     * after it, before any check or update, on every rank alike (the gradient
     * all-reduce). Both return CMR_OK or a CMR_E* code with err filled. */
    int (*loss_hook)(void *ctx, const float *x, int n, float tau, double *loss, int *correct,
                     struct cmr_error *err);
    int (*grads_hook)(void *ctx, struct cmr_error *err);
    void *hook_ctx;
    int n;               /* examples buffered */

    /* position in the stream and the epoch in progress (saved in checkpoints) */
    int64_t consumed;    /* examples taken out of the stream into finished batches */
    int in_epoch;        /* 1 once an example of the current epoch was seen */
    int64_t epoch;       /* its label */
    double ep_loss;      /* sum over trained batches of loss x n */
    int64_t ep_examples, ep_correct, ep_total, ep_dropped, ep_steps;
};

/* A trainer for model m (kept, not owned) with examples of `rows` segments:
 * 2 for encoder and multi models, m->cfg.context + m->cfg.k for cpc.
 * Sets m->train.lr to cfg->lr when m has taken no step yet. NULL with err
 * filled on a bad cfg, a rows count the model cannot use, or no memory. */
struct cmr_train *cmr_train_new(struct cmr_model *m, const struct cmr_train_cfg *cfg, int rows,
                                    struct cmr_error *err);
void cmr_train_free(struct cmr_train *t);

/* Copies one example (rows x T x F floats, rows in stream order) into the
 * batch. Returns 1 when the batch is full (call cmr_train_step), else 0. */
int cmr_train_add(struct cmr_train *t, const float *example);

/* Trains on the buffered examples: zero_grad, loss with backward, checks,
 * Adam update, then empties the buffer and counts them as consumed. With
 * fewer than CMR_TRAIN_MIN_BATCH examples nothing is trained: they are
 * dropped and counted (s->trained = 0). Nothing buffered: CMR_OK with
 * s->n = 0.
 * CMR_ENUMERIC (err says which) when the loss is not finite or above
 * cfg.max_loss, or a gradient is not finite: the parameters and Adam state
 * are then left as they were before the step (the batch-norm running
 * statistics have seen the batch), and the trainer must not be used for
 * more steps. CMR_ENAN for non-finite input values. */
int cmr_train_step(struct cmr_train *t, struct cmr_train_result *s, struct cmr_error *err);

/* Evaluates the buffered examples without training: the model in inference
 * mode (batch norm with its running statistics, which stay untouched), the
 * same loss and contrastive accuracy as a step, no gradient, no update; then
 * empties the buffer. Fewer than CMR_TRAIN_MIN_BATCH examples are skipped
 * (s->n set, s->total 0). Nothing in the trainer's epoch or stream counters
 * changes. */
int cmr_train_eval(struct cmr_train *t, struct cmr_train_result *s, struct cmr_error *err);

/* Ends the epoch in progress (call after the last step of an epoch): the
 * epoch loss, the plateau schedule on it (skipped when nothing was trained),
 * m->train.epoch += 1, fresh accumulators. e may be NULL. No-op returning 0
 * when no example of an epoch was seen; 1 otherwise. */
int cmr_train_end_epoch(struct cmr_train *t, struct cmr_train_epoch *e);

/* Marks the start of an example of epoch label `epoch`: returns 1 when it
 * differs from the epoch in progress (the caller then steps the buffered
 * examples and calls cmr_train_end_epoch first), else 0. */
int cmr_train_epoch_changes(const struct cmr_train *t, int64_t epoch);
/* records `epoch` as the epoch in progress */
void cmr_train_begin_epoch(struct cmr_train *t, int64_t epoch);

/* The plateau schedule on its own: updates st->best_loss, st->bad_epochs and
 * st->lr from one epoch loss. Returns 1 when the rate was lowered. */
int cmr_train_plateau_step(struct cmr_train_state *st, double loss, int patience, double factor,
                     double threshold);

/* Writes the trainer's state into the model's metadata (train.* keys) and
 * saves the model with Adam's state atomically (temporary file, fsync,
 * rename): the file stays whole whenever the process dies. Call between
 * steps (the buffer is then empty, or holds examples not yet consumed). */
int cmr_train_save(struct cmr_train *t, const char *path, struct cmr_error *err);

/* Restores the stream position, the epoch in progress and its sums from
 * the model's metadata (a model loaded from a checkpoint), and checks that
 * cfg's batch, temperature and schedule equal the stored ones (CMR_EINVAL
 * naming the first that differs). CMR_EFORMAT when the model has no
 * training state (not written by cmr_train_save). */
int cmr_train_restore(struct cmr_train *t, struct cmr_error *err);

#endif
