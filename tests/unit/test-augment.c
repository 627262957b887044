/* lib/augment: every effect checked by measurement on synthetic signals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tap.h"
#include "augment.h"

#define FS 16000.0
#define CROP 57600
#define SEG 48000

static float *sine(size_t n, double freq, double amp)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(amp * sin(2 * M_PI * freq * (double)i / FS));
    return x;
}

/* frequency from upward zero crossings (linearly interpolated) in the middle half */
static double zc_freq(const float *x, size_t n)
{
    size_t a = n / 4, b = 3 * n / 4;
    double first = -1, last = -1;
    int count = 0;
    for (size_t i = a + 1; i < b; i++)
        if (x[i - 1] < 0 && x[i] >= 0) {
            double t = (double)(i - 1) + x[i - 1] / (double)(x[i - 1] - x[i]);
            if (first < 0)
                first = t;
            last = t;
            count++;
        }
    return count > 1 ? (count - 1) * FS / (last - first) : 0;
}

static double power(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s / (double)n;
}

static struct cmr_augment_params none(void)
{
    struct cmr_augment_params p;
    memset(&p, 0, sizeof p);
    p.stretch = 1;
    return p;
}

static void test_wrong_params(void)
{
    struct cmr_augment_cfg c;
    struct cmr_error err = {0};
    c = cmr_augment_cfg_default(FS);
    ok(cmr_augment_cfg_check(&c, NULL) == CMR_OK, "defaults pass the check");
    ok(c.n_pitch == 4 && c.pitch_set[0] == -2 && c.pitch_set[3] == 2 && c.stretch_min == 0.8 &&
       c.stretch_max == 1.2 && c.p_reverb == 0.5 && c.p_noise == 0.5 && c.p_invert == 0.5 && c.p_pitch == 1,
       "defaults are the paper's: pitch {-2,-1,1,2}, stretch [0.8, 1.2], p = 0.5 for reverb, noise, invert");
    c.p_reverb = 1.5;
    ok(!cmr_augment_new(&c, &err) && err.code == CMR_EINVAL, "p_reverb 1.5 refused: %s", err.msg);
    c = cmr_augment_cfg_default(FS);
    c.stretch_min = 1.3;
    ok(!cmr_augment_new(&c, &err), "stretch min > max refused: %s", err.msg);
    c = cmr_augment_cfg_default(FS);
    c.stretch_max = 3;
    ok(!cmr_augment_new(&c, &err), "stretch 3 refused: %s", err.msg);
    c = cmr_augment_cfg_default(FS);
    c.pitch_set[1] = 13;
    ok(!cmr_augment_new(&c, &err), "pitch 13 refused: %s", err.msg);
    c = cmr_augment_cfg_default(FS);
    c.n_pitch = 0;
    ok(!cmr_augment_new(&c, &err), "empty pitch set refused: %s", err.msg);
    c = cmr_augment_cfg_default(FS);
    c.rate = 0;
    ok(!cmr_augment_new(&c, &err), "rate 0 refused: %s", err.msg);
    c = cmr_augment_cfg_default(FS);
    c.snr_min = NAN;
    ok(!cmr_augment_new(&c, &err), "NaN SNR refused: %s", err.msg);
    cmr_augment_free(NULL);
}

static void test_pitch(struct cmr_augment *a)
{
    float *x = sine(CROP, 440, 0.5);
    double f0 = zc_freq(x, CROP);
    for (int s = -2; s <= 2; s++) {
        if (!s)
            continue;
        struct cmr_augment_params p = none();
        p.pitch = s;
        const float *y;
        size_t ny;
        int rc = cmr_augment_effects(a, &p, x, CROP, &y, &ny, NULL, NULL);
        double want = f0 * pow(2, s / 12.0), got = rc == CMR_OK ? zc_freq(y, ny) : 0;
        ok(rc == CMR_OK && fabs(got / want - 1) < 0.003 && labs((long)ny - CROP) <= CROP / 200,
           "pitch %+d: 440 Hz -> %.2f Hz (want %.2f, ratio 2^(%d/12)), %zu samples (sample rate kept)", s, got,
           want, s, ny);
    }
    free(x);
}

static void test_stretch(struct cmr_augment *a)
{
    float *x = sine(CROP, 440, 0.5);
    const double factors[] = {0.8, 0.9, 1.1, 1.2};
    for (int i = 0; i < 4; i++) {
        struct cmr_augment_params p = none();
        p.stretch = factors[i];
        const float *y;
        size_t ny;
        int rc = cmr_augment_effects(a, &p, x, CROP, &y, &ny, NULL, NULL);
        double want = CROP / factors[i], f = rc == CMR_OK ? zc_freq(y, ny) : 0;
        ok(rc == CMR_OK && fabs(ny / want - 1) < 0.002 && fabs(f / 440 - 1) < 0.003,
           "stretch %.1f: %zu samples (want %.0f = n / factor), pitch kept (%.2f Hz)", factors[i], ny, want, f);
    }
    /* both at once: one tempo pass plus rate */
    struct cmr_augment_params p = none();
    p.stretch = 1.2;
    p.pitch = -2;
    const float *y;
    size_t ny;
    int rc = cmr_augment_effects(a, &p, x, CROP, &y, &ny, NULL, NULL);
    double f = rc == CMR_OK ? zc_freq(y, ny) : 0, want_f = 440 * pow(2, -2 / 12.0);
    ok(rc == CMR_OK && fabs(ny / (CROP / 1.2) - 1) < 0.003 && fabs(f / want_f - 1) < 0.003,
       "pitch -2 and stretch 1.2 together: %zu samples (want 48000), %.2f Hz (want %.2f)", ny, f, want_f);
    free(x);
}

static void test_reverb(struct cmr_augment *a)
{
    size_t n = 16000;
    float *x = calloc(n, sizeof *x);
    x[1000] = 0.5f;
    struct cmr_augment_params p = none();
    p.reverb = 1;
    p.reverberance = 80;
    p.damping = 50;
    p.room = 100;
    const float *y;
    size_t ny;
    uint64_t clipped = 1;
    int rc = cmr_augment_effects(a, &p, x, n, &y, &ny, &clipped, NULL);
    double tail = rc == CMR_OK ? power(y + 2600, 8000) : 0; /* 0.1 s to 0.6 s after the impulse */
    ok(rc == CMR_OK && ny == n && tail > 1e-7 && clipped == 0,
       "reverb: same length (%zu), an impulse gets a tail (power %.3g), no clipping", ny, tail);
    p.reverberance = 10;
    p.room = 10;
    rc = cmr_augment_effects(a, &p, x, n, &y, &ny, NULL, NULL);
    double small = rc == CMR_OK ? power(y + 2600, 8000) : 0;
    ok(rc == CMR_OK && small < tail, "reverb: a smaller room and reverberance give less tail (%.3g < %.3g)",
       small, tail);
    free(x);

    /* a loud signal keeps its headroom */
    x = sine(CROP, 440, 0.99);
    p.reverberance = 100;
    p.room = 100;
    p.damping = 0;
    rc = cmr_augment_effects(a, &p, x, CROP, &y, &ny, &clipped, NULL);
    ok(rc == CMR_OK && clipped == 0, "reverb on a 0 dBFS sine: nothing clipped (headroom 18 dB)");
    free(x);
}

static void test_apply(struct cmr_augment *a)
{
    float *x = sine(CROP, 440, 0.5);
    float *out = malloc(CROP * sizeof *out), *out2 = malloc(CROP * sizeof *out);
    struct cmr_augment_result res;

    struct cmr_augment_params p = none();
    int rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
    ok(rc == CMR_OK && memcmp(out, x, SEG * sizeof *out) == 0 && res.padded == 0 && res.produced == CROP,
       "nothing applied: the output is the crop's first 48000 samples, bit for bit");

    p.invert = 1;
    rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
    int flipped = rc == CMR_OK;
    for (size_t i = 0; i < SEG && flipped; i++)
        flipped = out[i] == -x[i];
    ok(flipped, "polarity inversion: every sample changes sign");

    const double snrs[] = {10, 20, 30};
    for (int i = 0; i < 3; i++) {
        p = none();
        p.noise = 1;
        p.snr = snrs[i];
        p.noise_seed = 1234 + i;
        rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
        for (size_t k = 0; k < SEG; k++)
            out2[k] = out[k] - x[k];
        double snr = 10 * log10(power(x, SEG) / power(out2, SEG));
        double mean = 0;
        for (size_t k = 0; k < SEG; k++)
            mean += out2[k];
        mean /= SEG;
        ok(rc == CMR_OK && fabs(snr - snrs[i]) < 0.15 && fabs(mean) < 0.01 * sqrt(power(out2, SEG)),
           "noise at %.0f dB: measured SNR %.3f dB, zero mean", snrs[i], snr);
    }
    float *silent = calloc(CROP, sizeof *silent);
    p.snr = 10;
    rc = cmr_augment_apply(a, &p, silent, CROP, out, SEG, &res, NULL);
    ok(rc == CMR_OK && power(out, SEG) == 0, "noise on silence: nothing added (SNR undefined)");
    free(silent);

    /* length restore */
    p = none();
    p.stretch = 0.8;
    rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
    ok(rc == CMR_OK && res.produced == 72000 && res.padded == 0, "stretch 0.8: 72000 produced, first 48000 kept");
    p.stretch = 1.2;
    rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
    ok(rc == CMR_OK && res.produced == 48000 && res.padded == 0, "stretch 1.2: exactly 48000 produced (%zu)",
       res.produced);
    p.stretch = 2;
    rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
    ok(rc == CMR_OK && res.produced == 28800 && res.padded == SEG - 28800 && out[SEG - 1] == 0 &&
       out[28799] != 0, "stretch 2: 28800 produced, zero-padded to 48000 at the end");
    rc = cmr_augment_apply(a, &p, x, CROP, out, CROP, &res, NULL);
    ok(rc == CMR_OK && res.padded == CROP - 28800, "out_len = crop length: restored to the crop length");

    /* the same parameters give the same samples */
    p = none();
    p.pitch = 1;
    p.stretch = 0.93;
    p.reverb = 1;
    p.reverberance = 40;
    p.damping = 60;
    p.room = 70;
    p.noise = 1;
    p.snr = 15;
    p.noise_seed = 99;
    p.invert = 1;
    cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, NULL);
    cmr_augment_apply(a, &p, x, CROP, out2, SEG, &res, NULL);
    ok(memcmp(out, out2, SEG * sizeof *out) == 0, "all effects: the same parameters give identical output");

    struct cmr_error err = {0};
    x[100] = NAN;
    rc = cmr_augment_apply(a, &p, x, CROP, out, SEG, &res, &err);
    ok(rc == CMR_ENAN, "a NaN sample is refused: %s", err.msg);
    free(x);
    free(out);
    free(out2);
}

static void test_draw(void)
{
    struct cmr_augment_cfg c;
    c = cmr_augment_cfg_default(FS);
    struct cmr_rng r1, r2;
    struct cmr_augment_params p, q;
    cmr_rng_seed(&r1, 5);
    cmr_rng_seed(&r2, 5);
    int same = 1;
    for (int i = 0; i < 100; i++) {
        cmr_augment_draw(&c, &r1, &p);
        cmr_augment_draw(&c, &r2, &q);
        same &= memcmp(&p, &q, sizeof p) == 0;
    }
    ok(same, "draw: same seed, same parameters");

    cmr_rng_seed(&r1, 6);
    int n = 4000, reverb = 0, noise = 0, invert = 0, pitch[5] = {0}, bad = 0;
    double smin = 9, smax = 0, snrmin = 99, snrmax = -99;
    for (int i = 0; i < n; i++) {
        cmr_augment_draw(&c, &r1, &p);
        reverb += p.reverb;
        noise += p.noise;
        invert += p.invert;
        int k = (int)p.pitch + 2;
        if (p.pitch == 0 || k < 0 || k > 4)
            bad++;
        else
            pitch[k]++;
        smin = fmin(smin, p.stretch);
        smax = fmax(smax, p.stretch);
        if (p.noise) {
            snrmin = fmin(snrmin, p.snr);
            snrmax = fmax(snrmax, p.snr);
        }
        if (p.reverb && !(p.room >= 0 && p.room < 100 && p.damping >= 0 && p.damping < 100 &&
                          p.reverberance >= 0 && p.reverberance < 100))
            bad++;
    }
    ok(bad == 0 && pitch[0] > 900 && pitch[1] > 900 && pitch[3] > 900 && pitch[4] > 900,
       "draw: pitch always one of -2,-1,+1,+2 (%d %d %d %d)", pitch[0], pitch[1], pitch[3], pitch[4]);
    ok(smin >= 0.8 && smax < 1.2 && smin < 0.81 && smax > 1.19, "draw: stretch in [0.8, 1.2) (%.4f..%.4f)", smin,
       smax);
    ok(snrmin >= 10 && snrmax < 30 && snrmin < 10.2 && snrmax > 29.8, "draw: SNR in [10, 30) dB (%.2f..%.2f)",
       snrmin, snrmax);
    ok(abs(reverb - n / 2) < 150 && abs(noise - n / 2) < 150 && abs(invert - n / 2) < 150,
       "draw: reverb %d, noise %d, invert %d of %d (p = 0.5)", reverb, noise, invert, n);

    c.p_pitch = c.p_stretch = c.p_reverb = c.p_noise = c.p_invert = 0;
    int applied = 0;
    for (int i = 0; i < 200; i++) {
        cmr_augment_draw(&c, &r1, &p);
        applied += p.pitch != 0 || p.stretch != 1 || p.reverb || p.noise || p.invert;
    }
    ok(applied == 0, "draw: all probabilities 0, nothing applied");

    struct cmr_rng root, a1, a2;
    cmr_rng_seed(&root, 1);
    cmr_augment_rng(&root, "t", 0, 0, 0, &a1);
    cmr_augment_rng(&root, "t", 0, 0, 0, &a2);
    int eq = cmr_rng_u64(&a1) == cmr_rng_u64(&a2);
    cmr_augment_rng(&root, "t", 0, 0, 1, &a2);
    int row = cmr_rng_u64(&a1) != cmr_rng_u64(&a2);
    cmr_augment_rng(&root, "t", 1, 0, 0, &a2);
    int epoch = cmr_rng_u64(&a1) != cmr_rng_u64(&a2);
    ok(eq && row && epoch, "row generators: equal keys equal, other row or epoch differs");
}

static void test_speed(struct cmr_augment *a)
{
    struct cmr_augment_cfg c;
    c = cmr_augment_cfg_default(FS);
    float *x = sine(CROP, 440, 0.5), *out = malloc(SEG * sizeof *out);
    struct cmr_rng rng;
    cmr_rng_seed(&rng, 3);
    struct timespec t0, t1;
    int n = 40;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        struct cmr_augment_params p;
        cmr_augment_draw(&c, &rng, &p);
        cmr_augment_apply(a, &p, x, CROP, out, SEG, NULL, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    diag("speed: %.1f rows/s (3.6 s crops, default parameters, one thread)", n / dt);
    free(x);
    free(out);
}

int main(void)
{
    tap_plan_none();
    test_wrong_params();
    struct cmr_augment_cfg c;
    struct cmr_error err = {0};
    c = cmr_augment_cfg_default(FS);
    struct cmr_augment *a = cmr_augment_new(&c, &err);
    if (!ok(a != NULL, "new with the defaults%s%s", a ? "" : ": ", a ? "" : err.msg))
        return tap_done();
    test_pitch(a);
    test_stretch(a);
    test_reverb(a);
    test_apply(a);
    test_draw();
    test_speed(a);
    cmr_augment_free(a);
    return tap_done();
}
