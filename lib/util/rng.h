/* Seeded random numbers: xoshiro256** seeded through splitmix64.
 * ref: https://prng.di.unimi.it/xoshiro256starstar.c (Blackman & Vigna)
 * The state is a plain struct owned by the caller: no global state, and two
 * generators with the same seed give the same sequence on every platform. */
#ifndef CMR_RNG_H
#define CMR_RNG_H

#include <stdint.h>

struct cmr_rng {
    uint64_t s[4];
};

void cmr_rng_seed(struct cmr_rng *r, uint64_t seed);
uint64_t cmr_rng_u64(struct cmr_rng *r);
/* uniform double in [0, 1) with 53 random bits */
double cmr_rng_uniform(struct cmr_rng *r);
/* uniform integer in [0, n), n > 0, without modulo bias */
uint64_t cmr_rng_below(struct cmr_rng *r, uint64_t n);
/* standard normal (Box-Muller, no cached second value so the state alone is the stream) */
double cmr_rng_normal(struct cmr_rng *r);
/* an independent generator derived from r and a stream number (for per-track or per-thread draws) */
void cmr_rng_split(const struct cmr_rng *r, uint64_t stream, struct cmr_rng *out);

#endif
