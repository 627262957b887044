/* Running a model over a stream of segments: batching, and MelCPC's GRU state
 * carried from segment to segment within a run (a track, or a stretch
 * without discontinuity) and reset between runs. The one inference loop of
 * cmr-encode, cmrencode and the embedding API (cmr-embed.h).
 *
 *   struct cmr_encoder *e = cmr_encoder_new(model, batch, threads, &err);
 *   for each segment:  cmr_encoder_push(e, seg);             // T x F floats
 *                      if (cmr_encoder_queued(e) == batch) run;
 *   at a run's end:    cmr_encoder_end_run(e);               // next segment: fresh GRU state
 *   run:               cmr_encoder_run(e, &out, &n, &err);   // n x dim embeddings, in order
 *   cmr_encoder_free(e);
 *
 * The embeddings do not depend on the batch size, on when run is called or
 * on the thread count (model.h): segment i of a run gets the same values
 * whether it went through alone or with others.
 * Encoder and multi-level models give the trunk's output; MelCPC gives the
 * GRU output over the run's segments in order, from a zero state.
 * The model is borrowed: it must outlive the encoder, and nothing else may
 * run it meanwhile. Not thread-safe per object.
 */
#ifndef CMR_STREAM_ENCODER_H
#define CMR_STREAM_ENCODER_H

#include <stddef.h>

#include "err.h"
#include "model.h"

struct cmr_encoder;

/* Sets the model's inference threads (1: single-threaded BLAS) and reserves
 * its buffers for batch segments (1..4096). NULL with err filled: CMR_EINVAL,
 * CMR_ENOMEM. */
struct cmr_encoder *cmr_encoder_new(struct cmr_model *m, int batch, int threads, struct cmr_error *err);
/* tolerates NULL; does not free the model */
void cmr_encoder_free(struct cmr_encoder *e);

/* floats per embedding (cmr_model_out_dim) */
int cmr_encoder_dim(const struct cmr_encoder *e);
/* floats per segment: the model's n_time x n_freq */
size_t cmr_encoder_seg_size(const struct cmr_encoder *e);
int cmr_encoder_batch(const struct cmr_encoder *e);
/* segments queued and not run yet */
int cmr_encoder_queued(const struct cmr_encoder *e);

/* Where the next segment goes (cmr_encoder_seg_size floats), to be written
 * in place and then committed; NULL when the batch is full (run first). */
float *cmr_encoder_slot(struct cmr_encoder *e);
/* Queues the segment written at cmr_encoder_slot(); returns the segments queued. */
int cmr_encoder_commit(struct cmr_encoder *e);
/* Copies a segment into the next slot and commits it; CMR_ESTATE when the batch is full. */
int cmr_encoder_push(struct cmr_encoder *e, const float *seg, struct cmr_error *err);
/* The current run ends: the next segment queued starts from a zero GRU state. */
void cmr_encoder_end_run(struct cmr_encoder *e);

/* Runs the queued segments: *out points at their *n embeddings (n x dim, in
 * the order queued), valid until the next call on e. n may be 0. CMR_ENAN
 * for a segment that is not finite, and other errors of model.h, with err
 * filled; the queue is emptied either way. */
int cmr_encoder_run(struct cmr_encoder *e, const float **out, int *n, struct cmr_error *err);
/* Forgets the queued segments and the GRU state (a flush). */
void cmr_encoder_reset(struct cmr_encoder *e);

#endif
