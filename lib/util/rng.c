#include "util/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cmr_rng_seed(struct cmr_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t cmr_rng_u64(struct cmr_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double cmr_rng_uniform(struct cmr_rng *r)
{
    return (cmr_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t cmr_rng_below(struct cmr_rng *r, uint64_t n)
{
    /* rejection sampling: draws above the largest multiple of n are redrawn */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = cmr_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double cmr_rng_normal(struct cmr_rng *r)
{
    double u1 = 1.0 - cmr_rng_uniform(r); /* (0, 1] */
    double u2 = cmr_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void cmr_rng_split(const struct cmr_rng *r, uint64_t stream, struct cmr_rng *out)
{
    uint64_t x = r->s[0] ^ rotl(r->s[1], 13) ^ rotl(r->s[2], 29) ^ rotl(r->s[3], 47);
    x ^= splitmix64(&stream);
    cmr_rng_seed(out, x);
}
