/* cmr data-parallel training (docs/scaling.md): N processes ("ranks") train
 * one model, each on its own examples, and stay identical.
 *
 * A step on N ranks, each holding b examples (b = cmr-train --batch):
 *   1. the ranks agree on b (cmr_dist_step): an epoch ends for all of them
 *      when it ends for one (its stream changed epoch or ended), and the last
 *      step of an epoch takes the same number of examples from every rank;
 *   2. each rank runs the encoder forward on its 2b segments (pairs) or
 *      b (context + K) segments (sequences); with synchronised batch norm
 *      (cfg.sync_bn) the batch statistics are those of all N*2b segments
 *      (per-channel sums all-reduced in each training forward and backward),
 *      else those of the rank's own segments (PyTorch DDP's default);
 *   3. the embeddings are all-gathered and every rank computes the InfoNCE
 *      loss of the global batch of G = N*b examples (an anchor's negatives are
 *      the other G - 1 positives, as one process with --batch G), then
 *      back-propagates the part that belongs to its own examples;
 *   4. one all-reduce (sum) of the contiguous gradient block (lib/model.h:
 *      m->grads, n_params floats) gives every rank the gradient of the global
 *      loss; each rank takes the same Adam step.
 * So N ranks x batch b with synchronised batch norm compute what one process
 * with batch N*b computes, up to the order of float sums; without it, the
 * batch-norm statistics are per rank. Every `check_every` steps and at every
 * checkpoint a checksum of the parameters (and, with synchronised batch norm,
 * the running statistics) is compared across ranks: a mismatch is an error.
 *
 * The communication is a table of three collectives (struct cmr_dist_ops)
 * with two backends: MPI (lib/dist_mpi.c, only in programs built with MPI)
 * and threads of one process (cmr_dist_threads_new, for tests). A single
 * process is cmr_dist_local(): one rank, every collective the identity.
 *
 * Input: each rank reads its own stream. CMR_DIST_SHARD: the stream is the
 * rank's shard of the tracks (cmr-decode --shard RANK/SIZE upstream); every
 * example it holds is its own. CMR_DIST_ALL: every rank reads the same whole
 * stream and keeps examples r*b .. r*b+b-1 of each run of G (cmr_dist_admit),
 * so that the global batches are exactly one process's --batch G batches.
 *
 * Checkpoints (cmr_dist_save) are collective and written by rank 0 alone;
 * they record the epoch in progress and how many of its examples were
 * trained on, so that --resume works with any number of ranks
 * (cmr_dist_restore): exactly where the run stopped with the same number of
 * ranks and batch, at the same global position otherwise.
 *
 * Nothing here prints or exits. Not thread-safe: one struct per rank. */
#ifndef CMR_DIST_H
#define CMR_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "train.h"

enum cmr_dist_type { CMR_DIST_F32, CMR_DIST_F64, CMR_DIST_I64 };
enum cmr_dist_op { CMR_DIST_SUM, CMR_DIST_MIN, CMR_DIST_MAX };

/* The collectives, called by every rank in the same order. They must give
 * every rank the same bits (the threads backend sums in rank order; MPI's
 * reductions are checked by the weight checksum). CMR_OK or a CMR_E* code. */
struct cmr_dist;
struct cmr_dist_ops {
    /* buf (n values) := the element-wise op over the ranks' bufs, in place */
    int (*allreduce)(struct cmr_dist *d, void *buf, size_t n, enum cmr_dist_type type, enum cmr_dist_op op);
    /* recv (size x n values) := every rank's send (n values), in rank order */
    int (*allgather)(struct cmr_dist *d, const void *send, void *recv, size_t n, enum cmr_dist_type type);
    /* buf (bytes) := rank root's buf */
    int (*bcast)(struct cmr_dist *d, void *buf, size_t bytes, int root);
};

enum cmr_dist_input {
    CMR_DIST_SHARD = 0,  /* each rank's stream is its own shard */
    CMR_DIST_ALL = 1     /* every rank reads the whole stream, keeps its slice of each global batch */
};

struct cmr_dist_cfg {
    int sync_bn;                 /* 1: batch-norm statistics over the global batch */
    enum cmr_dist_input input;
    int check_every;             /* compare weight checksums every N steps (0: only at checkpoints) */
};
struct cmr_dist_cfg cmr_dist_cfg_default(void); /* per-rank BN, SHARD, check every 100 */

/* what the ranks agreed for one step (cmr_dist_step) */
struct cmr_dist_agreement {
    int n;               /* examples every rank trains on */
    int over;            /* 1: the epoch is over for every rank after this step */
    int stop;            /* 1: a rank's stream ended: the job stops after this epoch */
};

struct cmr_dist {
    int rank, size;
    const struct cmr_dist_ops *ops;
    void *ctx;           /* the backend's */
    struct cmr_dist_cfg cfg;
    struct cmr_bn_hook bn;       /* synchronised batch norm (installed by cmr_dist_attach) */
    struct cmr_model *m;         /* attached: not owned */
    struct cmr_train *t;

    /* the stream protocol (cmr_dist_admit, cmr_dist_step) */
    int over;            /* the epoch in progress had its last step: drop the rest of it */
    int stop;            /* a rank's stream ended: stop after this epoch */
    int64_t label;       /* epoch label of the last example admitted */
    int have_label;
    int64_t pos;         /* CMR_DIST_ALL: examples of the epoch seen (every rank's) */
    int64_t epoch_examples; /* global examples of the epoch in progress trained in full steps */
    int done;            /* the epoch done_label had its last step (not yet ended) */
    int64_t done_label;
    /* --resume: skip what the checkpoint trained on */
    int resuming, resumed, reached;
    int64_t step_label;  /* the epoch label of the last trained step */
    int have_step;
    int64_t skip_label;  /* examples with a label below it are skipped ... */
    int skip_whole;      /* ... and with this label too when 1 ... */
    int64_t skip_n;      /* ... else this many examples of it */
    double batch_scale;  /* the checkpoint's ranks / this run's (its per-rank counts in ours) */

    /* timings of this process, for cmr-train -v and bench/scale (seconds, wall) */
    double t_grads;      /* the gradient all-reduce */
    double t_embed;      /* the embedding all-gather */
    double t_bn;         /* the batch-norm all-reduces */
    double t_check;      /* checksums */
    int64_t n_steps;     /* steps taken */

    /* scratch */
    float *fbuf;
    size_t fcap;
    double *dbuf;
    size_t dcap;
    double bn_n[CMR_MODEL_BLOCKS]; /* global values per channel in the last forward, per block */
};

/* A rank of a group: ops and ctx from a backend; cfg NULL for the defaults.
 * NULL with err filled on bad arguments or no memory. */
struct cmr_dist *cmr_dist_new(int rank, int size, const struct cmr_dist_ops *ops, void *ctx,
                              const struct cmr_dist_cfg *cfg, struct cmr_error *err);
/* detaches (restores the model's and trainer's hooks) and frees; not the backend */
void cmr_dist_free(struct cmr_dist *d);

/* a group of one: rank 0 of 1 */
const struct cmr_dist_ops *cmr_dist_local_ops(void);

/* n ranks as threads of this process: ctx_out receives one shared context to
 * pass as ctx to cmr_dist_new for ranks 0..n-1, each then driven by its own
 * thread; every collective waits for all n. Free with cmr_dist_threads_free
 * after the threads are joined. */
const struct cmr_dist_ops *cmr_dist_threads_ops(void);
void *cmr_dist_threads_new(int n, struct cmr_error *err);
void cmr_dist_threads_free(void *ctx);

/* MPI (lib/dist_mpi.c; declared here, defined only in programs built with
 * MPI, HAVE_MPI): MPI_Init, then a rank of MPI_COMM_WORLD. What a process
 * does when it fails (MPI_Abort, so that one failing rank stops the job) is
 * the program's business: filters/train-mpi.c. */
struct cmr_dist *cmr_dist_mpi_new(int *argc, char ***argv, const struct cmr_dist_cfg *cfg,
                                  struct cmr_error *err);
/* frees d, then MPI_Finalize */
void cmr_dist_mpi_finalize(struct cmr_dist *d);

/* typed shorthands for the collectives */
int cmr_dist_allreduce(struct cmr_dist *d, void *buf, size_t n, enum cmr_dist_type type, enum cmr_dist_op op);
int cmr_dist_allgather(struct cmr_dist *d, const void *send, void *recv, size_t n, enum cmr_dist_type type);
int cmr_dist_bcast(struct cmr_dist *d, void *buf, size_t bytes, int root);

/* ---- the model ---- */

/* Attaches a model (and its trainer, which may be NULL for model-only use):
 * installs the synchronised batch norm (cfg.sync_bn, more than one rank) as
 * m->bn_hook and, when t is given, the global loss and the gradient
 * all-reduce as the trainer's hooks, and scales t->levels by the number of
 * ranks (a step's accuracy counts over the global batch). */
int cmr_dist_attach(struct cmr_dist *d, struct cmr_model *m, struct cmr_train *t, struct cmr_error *err);

/* Makes every rank's model rank 0's: parameters, running statistics, Adam's
 * state and train state (collective). Then the weight checksum is compared.
 * Call once after the model is built or loaded. */
int cmr_dist_sync_model(struct cmr_dist *d, struct cmr_error *err);

/* The training loss of the model's kind over the global batch (see above):
 * x is this rank's B examples in cmr_model_loss's layout; loss and correct
 * (over the global batch, all levels) are the same on every rank; the
 * gradients of this rank's part are accumulated into m->grads (zero them
 * first). Every rank must pass the same B. */
int cmr_dist_loss(struct cmr_dist *d, const float *x, int B, float tau, double *loss, int *correct,
                  struct cmr_error *err);
/* m->grads := their sum over the ranks (one all-reduce); timed in t_grads */
int cmr_dist_reduce_grads(struct cmr_dist *d, struct cmr_error *err);

/* 64-bit checksum of the parameters, the train state's step and Adam step,
 * and, when with_stats, the running statistics */
uint64_t cmr_dist_checksum(const struct cmr_model *m, int with_stats);
/* Compares the ranks' checksums (collective): CMR_ENUMERIC with err naming
 * the first rank whose weights differ from rank 0's. */
int cmr_dist_verify(struct cmr_dist *d, struct cmr_error *err);

/* ---- the training stream (cmr-train --mpi) ---- */

/* Decides whether this rank trains on the next example of its stream, whose
 * epoch label is `label`: returns 0 to drop it (the checkpoint being resumed
 * trained on it; the epoch in progress had its last step; CMR_DIST_ALL:
 * another rank's example), 1 to take it. Call for every example, in order,
 * before cmr_train_epoch_changes. */
int cmr_dist_admit(struct cmr_dist *d, int64_t label);

/* One data-parallel step of the attached trainer (collective). Call it when
 * the trainer's batch is full, when this rank's epoch ends (an example of
 * another epoch came: ended = 1) and at the end of its stream (ended = eof =
 * 1). The ranks agree (struct cmr_dist_agreement, filled if a is not NULL);
 * a rank holding more examples than agreed drops the rest; then
 * cmr_train_step runs (s as there). After a step with a->over on a rank
 * whose epoch had not ended, d->over is set: cmr_dist_admit drops the rest
 * of the epoch, and the next call (at the epoch's end) does nothing but
 * clear it (s->n = 0); the caller then ends the epoch as usual
 * (cmr_train_end_epoch).
 * CMR_EINVAL when the ranks' streams disagree on the epoch label, or a
 * resumed stream ended before the checkpoint's position. */
int cmr_dist_step(struct cmr_dist *d, int ended, int eof, struct cmr_train_result *s,
                  struct cmr_dist_agreement *a, struct cmr_error *err);
/* ---- checkpoints ---- */

/* Collective: checks the weights (cmr_dist_verify), averages the running
 * statistics over the ranks when they are per rank (every rank adopts the
 * mean), records the position (train.dist.* metadata), and rank 0 writes
 * the checkpoint with cmr_train_save. */
int cmr_dist_save(struct cmr_dist *d, const char *path, struct cmr_error *err);

/* cmr_train_restore for a data-parallel run: accepts the checkpoint's
 * per-rank batch, or any batch that keeps its global batch (N*b), and
 * prepares cmr_dist_admit to skip what the checkpoint trained on. A
 * checkpoint of a single process (no train.dist.* keys) is read as one rank.
 * Errors as cmr_train_restore's. */
int cmr_dist_restore(struct cmr_dist *d, struct cmr_error *err);

/* the number of ranks that wrote checkpoint m (train.dist.ranks), 0 if it
 * was not written by a data-parallel run */
int cmr_dist_checkpoint_ranks(const struct cmr_model *m);

#endif
