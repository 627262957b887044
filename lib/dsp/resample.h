/* Streaming sample-rate conversion: libsoxr, or torchaudio's windowed sinc.
 *
 *   struct cmr_resample_cfg cfg = cmr_resample_cfg_default();   // HQ, mono
 *   cfg.in_rate = 44100; cfg.out_rate = 16000;
 *   struct cmr_resample *r = cmr_resample_new(&cfg, &err);
 *   for each chunk:  cmr_resample_process(r, in, n, &out, &n_out, &err);  // use out[0..n_out)
 *   at the end:      cmr_resample_drain(r, &out, &n_out, &err);           // the tail
 *   cmr_resample_reset(r);   // next track, same rates
 *   cmr_resample_free(r);
 *
 * Output is the same whatever the input chunking (soxr keeps its own FIFO and
 * filters in fixed blocks; tests/unit/test-resample.c checks it to 1e-6), is
 * time-aligned with the input (soxr compensates the filter delay) and, after
 * the drain, has round(n_in * out_rate / in_rate) samples with soxr (its
 * length convention), ceil(n_in * out_rate / in_rate) with the torchaudio
 * methods (torchaudio's).
 * Qualities MQ, HQ, VHQ are soxr's recipes: VHQ = SOXR_VHQ (28-bit, 95% band),
 * HQ = SOXR_HQ (20-bit, 91.3% band; librosa's default "soxr_hq"), MQ = SOXR_MQ.
 * soxr runs single-threaded here (runtime spec 1 thread).
 * TORCHAUDIO reproduces torchaudio.functional.resample with its defaults
 * (sinc_interpolation, Hann window, lowpass_filter_width 6, rolloff 0.99;
 * torchaudio 0.13 functional.py _get_sinc_resample_kernel and
 * _apply_sinc_resample_kernel), KAISER_BEST the same with librosa's
 * "kaiser_best" settings (kaiser_window, width 64, rolloff 0.9475937167399596,
 * beta 14.769656459379492). Kernels are computed in double precision, as
 * torchaudio.transforms.Resample does by default; rates must be integers;
 * output length ceil(n * out_rate / in_rate), as torchaudio's. Memory: the
 * kernel (out_rate/gcd phases x about 2 * width taps) plus one chunk.
 * Samples are interleaved float32 with cfg.channels channels.
 * Not thread-safe per object.
 */
#ifndef CMR_DSP_RESAMPLE_H
#define CMR_DSP_RESAMPLE_H

#include <stddef.h>

#include "err.h"

enum cmr_resample_quality {
    CMR_RESAMPLE_MQ = 0,
    CMR_RESAMPLE_HQ = 1,
    CMR_RESAMPLE_VHQ = 2,
    CMR_RESAMPLE_TORCHAUDIO = 3,   /* torchaudio.functional.resample defaults */
    CMR_RESAMPLE_KAISER_BEST = 4   /* torchaudio with librosa's kaiser_best settings */
};

struct cmr_resample_cfg {
    double in_rate;   /* Hz, in [CMR_RATE_MIN, CMR_RATE_MAX] = [1000, 768000] (frame.h) */
    double out_rate;  /* Hz, the same range */
    int channels;     /* >= 1 */
    enum cmr_resample_quality quality;
};

struct cmr_resample_cfg cmr_resample_cfg_default(void); /* 0 Hz -> 16000 Hz, mono, HQ */

/* "mq", "hq", "vhq", "torchaudio", "kaiser-best" -> quality; CMR_EINVAL for anything else */
int cmr_resample_quality_parse(const char *name, enum cmr_resample_quality *q);
const char *cmr_resample_quality_name(enum cmr_resample_quality q);

struct cmr_resample;

/* NULL with err filled (CMR_EINVAL for rates outside [1000, 768000] Hz, bad
 * channels or quality, or non-integer rates with the torchaudio methods).
 * Within that range time and memory are bounded: the ratio is at most 768. */
struct cmr_resample *cmr_resample_new(const struct cmr_resample_cfg *cfg, struct cmr_error *err);

/* Feeds n sample frames (n * channels floats). *out points at the output
 * produced so far (*n_out sample frames, possibly 0), valid until the next
 * call on r; r owns it. Memory grows only with the largest chunk given. */
int cmr_resample_process(struct cmr_resample *r, const float *in, size_t n,
                         const float **out, size_t *n_out, struct cmr_error *err);

/* Flushes the filter's tail at the end of a track; afterwards only
 * cmr_resample_reset or cmr_resample_free are valid (CMR_ESTATE otherwise). */
int cmr_resample_drain(struct cmr_resample *r, const float **out, size_t *n_out,
                       struct cmr_error *err);

/* Ready for a fresh signal with the same configuration. */
int cmr_resample_reset(struct cmr_resample *r, struct cmr_error *err);

/* Tolerates NULL. */
void cmr_resample_free(struct cmr_resample *r);

#endif
