/* Positive sampling for contrastive training (PAPER.md §2): where in a track
 * the anchor and the positive (or a MelCPC run of segments) are cut.
 *
 * Everything is in samples at the track's sample rate. A *segment* is what
 * the encoder sees (3 s); a *crop* is what is cut from the track (3.6 s): the
 * segment plus slack for the time stretch of cmr-augment, which cuts the
 * crop back to a segment after its effects. Crop r of a draw covers the
 * track's samples [offset[r], offset[r] + crop).
 *
 * Strategies (n = samples in the track, S = segment, C = crop, G = gap):
 *   self      one crop at a, a uniform in [0, n - C]; anchor and positive
 *             are the same crop (each is augmented independently downstream).
 *             Needs n >= C.
 *   adjacent  an earlier crop at a and a later one at a + S + G: in segment
 *             terms [a, a+S) and [a+S+G, a+2S+G), the 0.5 s gap between
 *             them; a uniform in [0, n - (S + G + C)]. With probability 1/2
 *             the order is swapped (the later crop becomes the anchor).
 *             Needs n >= S + G + C.
 *   random    anchor crop at a, positive crop at p, the two crops disjoint
 *             (|p - a| >= C): "the rest of the track" is every crop that
 *             shares no sample with the anchor's crop. a is uniform over the
 *             positions that leave room for such a positive
 *             ([0, n-2C] u [C, n-C]); then p is uniform over
 *             [0, a-C] u [a+C, n-C]. Needs n >= 2C.
 *   sequence  R = context + predict crops at a + r*S (r = 0..R-1): R
 *             consecutive segments, each crop with its own slack;
 *             a uniform in [0, n - ((R-1)*S + C)]. Needs n >= (R-1)*S + C.
 *
 * Randomness: every draw for a (track, epoch) comes from its own generator,
 * cmr_pair_rng(), derived from the run's seed, a hash of the track id and the
 * epoch; so a track's draws do not depend on the other tracks (sharding or
 * reordering the input changes nothing) nor on the order of the epochs.
 * Within a draw the order of the random numbers is fixed: a first, then the
 * swap coin (adjacent) or p (random).
 *
 * Stateless functions; thread-safe.
 */
#ifndef CMR_PAIR_H
#define CMR_PAIR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "util/rng.h"

enum cmr_pair_strategy {
    CMR_PAIR_SELF = 0,
    CMR_PAIR_ADJACENT,
    CMR_PAIR_RANDOM,
    CMR_PAIR_SEQUENCE
};

#define CMR_PAIR_MAX_ROWS 64

struct cmr_pair_cfg {
    enum cmr_pair_strategy strategy;
    int64_t segment;   /* samples in a segment (3 s = 48000 at 16 kHz) */
    int64_t crop;      /* samples in a crop, >= segment (3.6 s = 57600 at 16 kHz) */
    int64_t gap;       /* adjacent: samples between the two segments (0.5 s = 8000) */
    int context;       /* sequence: segments the GRU reads (4) */
    int predict;       /* sequence: future segments to predict (2) */
};

/* the paper's settings at `rate` Hz: self, 3 s segments, 3.6 s crops, 0.5 s gap,
 * context 4, predict 2 (sample counts rounded to the nearest integer) */
struct cmr_pair_cfg cmr_pair_cfg_default(double rate);
/* CMR_OK, or CMR_EINVAL with err saying which field is wrong */
int cmr_pair_cfg_check(const struct cmr_pair_cfg *cfg, struct cmr_error *err);

/* "self", "adjacent", "random", "sequence"; parse returns -1 for an unknown name */
const char *cmr_pair_strategy_name(enum cmr_pair_strategy s);
int cmr_pair_strategy_parse(const char *name);

/* rows per draw: 2 for the pair strategies, context + predict for sequence */
int cmr_pair_rows(const struct cmr_pair_cfg *cfg);
/* the shortest track (samples) the strategy can draw from */
int64_t cmr_pair_min_length(const struct cmr_pair_cfg *cfg);

struct cmr_pair_draw {
    int64_t offset[CMR_PAIR_MAX_ROWS]; /* crop start of each row, samples */
    int swapped;                       /* adjacent: 1 if row 0 is the later crop */
};

/* draws crop positions for a track of n samples. CMR_EINVAL (err filled) if
 * n < cmr_pair_min_length(cfg). */
int cmr_pair_draw(const struct cmr_pair_cfg *cfg, int64_t n, struct cmr_rng *rng,
                  struct cmr_pair_draw *d, struct cmr_error *err);

/* copies the drawn crops: out (rows, crop), row-major; audio has n samples */
void cmr_pair_extract(const struct cmr_pair_cfg *cfg, const struct cmr_pair_draw *d,
                      const float *audio, int64_t n, float *out);

/* 64-bit FNV-1a of the track id (the per-track stream number) */
uint64_t cmr_pair_track_hash(const char *track);
/* the generator for one (track, epoch): split(split(root, hash(track)), epoch) */
void cmr_pair_rng(const struct cmr_rng *root, const char *track, int64_t epoch, struct cmr_rng *out);
/* a uniformly random permutation of 0..n-1 (Fisher-Yates) */
void cmr_pair_shuffle(struct cmr_rng *rng, size_t *perm, size_t n);

#endif
