/* lib/util/rng.c: reproducibility, ranges and moments. */
#include "util/rng.h"
#include "tap.h"

int main(void)
{
    tap_plan_none();
    struct cmr_rng a, b, c;
    cmr_rng_seed(&a, 42);
    cmr_rng_seed(&b, 42);
    cmr_rng_seed(&c, 43);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = cmr_rng_u64(&a), y = cmr_rng_u64(&b), z = cmr_rng_u64(&c);
        same &= x == y;
        differ += x != z;
    }
    ok(same, "same seed, same sequence");
    ok(differ > 990, "different seed, different sequence");

    cmr_rng_seed(&a, 1);
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    int inrange = 1, counts[7] = {0};
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double u = cmr_rng_uniform(&a);
        inrange &= u >= 0 && u < 1;
        sum += u, sum2 += u * u;
        counts[cmr_rng_below(&a, 7)]++;
        double g = cmr_rng_normal(&a);
        nsum += g, nsum2 += g * g;
    }
    ok(inrange, "uniform in [0, 1)");
    ok(fabs(sum / N - 0.5) < 0.005 && fabs(sum2 / N - sum * sum / N / N - 1.0 / 12) < 0.002,
       "uniform mean %.4f and variance %.4f", sum / N, sum2 / N - sum * sum / N / N);
    int flat = 1;
    for (int k = 0; k < 7; k++)
        flat &= fabs(counts[k] - N / 7.0) < 5 * sqrt(N / 7.0);
    ok(flat, "below(7) is flat");
    ok(fabs(nsum / N) < 0.01 && fabs(nsum2 / N - 1) < 0.02, "normal mean %.4f variance %.4f", nsum / N,
       nsum2 / N);

    struct cmr_rng s1, s2, s3;
    cmr_rng_seed(&a, 5);
    cmr_rng_split(&a, 1, &s1);
    cmr_rng_split(&a, 1, &s2);
    cmr_rng_split(&a, 2, &s3);
    uint64_t x = cmr_rng_u64(&s1);
    ok(x == cmr_rng_u64(&s2) && x != cmr_rng_u64(&s3), "split streams are reproducible and distinct");
    return tap_done();
}
