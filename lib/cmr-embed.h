/* Embedding audio in a few calls: libcmr's public API for other C programs
 * (and Python through ctypes). Load a model, feed PCM, take embeddings.
 *
 *   struct cmr_error err;
 *   struct cmr_embedder *e = cmr_embedder_new("model.cmr", 44100, 2, NULL, &err);
 *   float *v = malloc(cmr_embedder_dim(e) * sizeof *v);
 *   double t;
 *   while (have audio) {
 *       cmr_embedder_push(e, pcm, n_frames, &err);     // interleaved float, any length
 *       while (cmr_embedder_next(e, v, &t) == 1) use(v, t);
 *   }
 *   cmr_embedder_finish(e, &err);                       // end of the track
 *   while (cmr_embedder_next(e, v, &t) == 1) use(v, t);
 *   cmr_embedder_free(e);
 *
 * The embeddings are those of the filter chain
 *   cmr-resample | cmr-mel | cmr-segment [--hop H] [--pad] | cmr-encode --model M
 * on the same samples, bit for bit (examples/embed-wav.c, tests/cli/980-embed.bats):
 * the channels are averaged to mono, resampled to 16 kHz with soxr's HQ recipe
 * when the rate differs, turned into 96-band log-mel frames (dsp/mel.h
 * defaults), cut into 188-frame (3 s) segments every hop frames (188: back to
 * back) and run through the model (an encoder gives 128 values, multi-level
 * 640, MelCPC 256: its GRU carried from segment to segment within the track).
 * Without pad the audio after the last whole segment is dropped, so a track
 * shorter than 3 s gives none; with pad a last, zero-padded segment covers it.
 * Memory is bounded by the model, one batch and the largest push.
 *
 * All functions that can fail return CMR_OK (0) or a negative CMR_E* code
 * (err.h) and fill err (which may be NULL) with a one-line message; nothing
 * prints or exits. One embedder is not thread-safe; distinct embedders are
 * independent (each holds its own copy of the model).
 * See docs/library.md.
 */
#ifndef CMR_EMBED_H
#define CMR_EMBED_H

#include <stddef.h>

#include "err.h"

struct cmr_embedder_cfg {
    int hop;      /* mel frames from one segment's start to the next, 1..1000000; 0: 188 (0) */
    int pad;      /* zero-pad a last, partial segment at finish instead of dropping it (0) */
    int batch;    /* segments per forward pass, 1..4096: embeddings come out by batches (16) */
    int threads;  /* threads of the forward pass, 1..64 (1) */
};

struct cmr_embedder;

struct cmr_embedder_cfg cmr_embedder_cfg_default(void);

/* Loads a model file (cmr-model, cmr-train) for audio at sample_rate Hz
 * (1000..768000) with channels interleaved channels (1..256); cfg may be
 * NULL for the defaults. NULL with err filled on a bad argument (CMR_EINVAL),
 * a bad model file (CMR_EIO, CMR_EFORMAT, CMR_EMODEL, ...) or out of memory. */
struct cmr_embedder *cmr_embedder_new(const char *model_path, double sample_rate, int channels,
                                      const struct cmr_embedder_cfg *cfg, struct cmr_error *err);
/* tolerates NULL */
void cmr_embedder_free(struct cmr_embedder *e);

/* floats per embedding */
int cmr_embedder_dim(const struct cmr_embedder *e);

/* Feeds n_frames sample frames (n_frames * channels floats, interleaved,
 * nominally in [-1, 1]). CMR_ENAN for a sample that is not finite (nothing
 * is taken then); CMR_ENAN also when the audio is too loud for float32
 * arithmetic (dsp/mel.h). After an error the embedder must be reset. */
int cmr_embedder_push(struct cmr_embedder *e, const float *pcm, size_t n_frames, struct cmr_error *err);

/* Ends the track: the resampler's and spectrogram's tails go through, the
 * last batch is run, and the embedder is ready for the next track (which
 * starts from a fresh state, times from 0). */
int cmr_embedder_finish(struct cmr_embedder *e, struct cmr_error *err);

/* Writes the next embedding to out (cmr_embedder_dim floats) and, when
 * start_s is not NULL, the time of its segment's start in the track,
 * seconds; returns 1, or 0 when none is ready. */
int cmr_embedder_next(struct cmr_embedder *e, float *out, double *start_s);

/* Forgets the current track: audio, segments and embeddings not taken. */
void cmr_embedder_reset(struct cmr_embedder *e);

#endif
