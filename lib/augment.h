/* Waveform augmentation for contrastive training (PAPER.md §3), on libsox.
 *
 * One example row (a crop of the track, see pair.h) goes through, in order:
 *   1. pitch shift by `pitch` semitones, sample rate kept, and time stretch by
 *      the speed factor `stretch`, pitch kept. Both are sox's WSOLA `tempo`
 *      and polyphase `rate` effects, in one pass: sox's own `pitch` effect is
 *      `tempo` by 1/r (r = 2^(pitch/12)) followed by `rate` from r*fs back to
 *      fs; the stretch is folded into the same tempo, whose factor becomes
 *      stretch/r (`tempo -m`, music settings). Output length: about n/stretch.
 *   2. reverberation: sox `reverb` with reverberance, HF damping and room
 *      scale in percent, stereo depth 0 (mono stays mono), no pre-delay,
 *      wet gain 0 dB (the dry signal is kept; the tail past the input's end
 *      is dropped, so the length is unchanged).
 *   3. length restore: the first out_len samples are kept (zero-padded at the
 *      end when the effects gave fewer: only when stretch > n/out_len).
 *   4. additive white Gaussian noise at `snr` dB below the mean power of the
 *      row after step 3 (a silent row gets no noise).
 *   5. polarity inversion (x -> -x).
 * Steps 1-2 run in libsox on 32-bit integer samples with 18 dB of headroom
 * (float x is fed as x/8), so the effects do not clip for |x| < 8; clipped
 * samples are counted in cmr_augment_result.clipped.
 *
 * Parameters are drawn by cmr_augment_draw() in a fixed order, every draw made
 * whether or not its effect applies (so changing one probability does not move
 * the others' draws): pitch coin, pitch choice, stretch coin, stretch,
 * reverb coin, reverberance, damping, room, noise coin, SNR, invert coin,
 * noise seed. Coins are uniform u < p; ranges are uniform [min, max).
 *
 * libsox keeps process-wide state: cmr_augment_new() initialises it once
 * (pthread_once; sox_init) and silences its message handler (libsox would
 * otherwise print warnings on stderr); nothing here calls sox_quit. Distinct
 * objects may be used from distinct threads as far as libsox allows (it keeps
 * no per-flow global state for these effects); not tested.
 */
#ifndef CMR_AUGMENT_H
#define CMR_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util/rng.h"

#define CMR_AUGMENT_MAX_PITCH 32
/* float samples are divided by this before libsox's int32 samples (18 dB headroom) */
#define CMR_AUGMENT_HEADROOM 8.0

struct cmr_augment_cfg {
    double rate;              /* Hz, sample rate of the rows */
    double p_pitch;           /* probability of a pitch shift (1) */
    int n_pitch;              /* number of semitone choices (4) */
    double pitch_set[CMR_AUGMENT_MAX_PITCH]; /* semitones, each in [-12, 12] ({-2,-1,1,2}) */
    double p_stretch;         /* probability of a time stretch (1) */
    double stretch_min, stretch_max;         /* speed factor, in [0.5, 2] (0.8, 1.2) */
    double p_reverb;          /* (0.5) */
    double reverberance_min, reverberance_max; /* percent, in [0, 100] (0, 100) */
    double damping_min, damping_max;           /* percent, in [0, 100] (0, 100) */
    double room_min, room_max;                 /* percent, in [0, 100] (0, 100) */
    double p_noise;           /* (0.5) */
    double snr_min, snr_max;  /* dB, in [-20, 100] (10, 30) */
    double p_invert;          /* (0.5) */
};

/* the parameters of one row; "not applied" is pitch 0, stretch 1, reverb 0, noise 0, invert 0 */
struct cmr_augment_params {
    double pitch;             /* semitones */
    double stretch;           /* speed factor: duration / stretch */
    int reverb;
    double reverberance, damping, room; /* percent */
    int noise;
    double snr;               /* dB */
    int invert;
    uint64_t noise_seed;      /* seeds the noise samples */
};

struct cmr_augment_result {
    size_t produced;          /* samples out of the effects (steps 1-2), before the length restore */
    size_t padded;            /* zeros appended by the length restore */
    uint64_t clipped;         /* samples clipped in or out of libsox */
};

struct cmr_augment;

/* the paper's settings (see the field comments) for rows at `rate` Hz */
struct cmr_augment_cfg cmr_augment_cfg_default(double rate);
int cmr_augment_cfg_check(const struct cmr_augment_cfg *cfg, struct cmr_error *err);

/* NULL on a bad cfg or no memory (err filled) */
struct cmr_augment *cmr_augment_new(const struct cmr_augment_cfg *cfg, struct cmr_error *err);
void cmr_augment_free(struct cmr_augment *a);

/* draws one row's parameters (order documented above) */
void cmr_augment_draw(const struct cmr_augment_cfg *cfg, struct cmr_rng *rng, struct cmr_augment_params *p);

/* steps 1-2 only: pitch, stretch and reverb through libsox. *out points into
 * the object (valid until the next call), *n_out samples. A NaN or infinite
 * input sample is CMR_ENAN. */
int cmr_augment_effects(struct cmr_augment *a, const struct cmr_augment_params *p,
                        const float *in, size_t n, const float **out, size_t *n_out,
                        uint64_t *clipped, struct cmr_error *err);

/* step 4: adds white Gaussian noise snr_db below the mean power of x[0..n) */
void cmr_augment_noise(float *x, size_t n, double snr_db, uint64_t seed);

/* steps 1-5 on one row: in (n samples) -> out (out_len samples); in and out may not overlap */
int cmr_augment_apply(struct cmr_augment *a, const struct cmr_augment_params *p,
                      const float *in, size_t n, float *out, size_t out_len,
                      struct cmr_augment_result *res, struct cmr_error *err);

/* the generator of one row of one example: split(root, hash(track)), then
 * epoch, frame index and row, each by cmr_rng_split */
void cmr_augment_rng(const struct cmr_rng *root, const char *track, int64_t epoch, int64_t index,
                     int row, struct cmr_rng *out);

#endif
