/* lib/dsp/mfcc: DCT matrix, MFCC against torchaudio (top_db None), bad parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "dsp/mfcc.h"
#include "dsp/stft.h"
#include "frontend-ref.h"
#include "util/rng.h"

/* MFCCs are dB-scaled (tens of units): absolute 2e-3 plus relative 1e-4 */
#define MFCC_ATOL 2e-3
#define MFCC_RTOL 1e-4

static void test_wrong_params(void)
{
    struct cmr_error err;
    struct cmr_mfcc_cfg c = cmr_mfcc_cfg_default();
    c.n_mfcc = 0;
    ok(!cmr_mfcc_new(&c, &err) && err.code == CMR_EINVAL, "rejects n_mfcc 0 (%s)", err.msg);
    c.n_mfcc = 97;
    ok(!cmr_mfcc_new(&c, &err) && err.code == CMR_EINVAL, "rejects n_mfcc > n_mels (%s)", err.msg);
    c = cmr_mfcc_cfg_default();
    c.mel.n_mels = 0;
    ok(!cmr_mfcc_new(&c, &err) && err.code == CMR_EINVAL, "rejects a bad mel stage (%s)", err.msg);
    ok(!cmr_mfcc_new(NULL, NULL), "rejects NULL");
    cmr_mfcc_free(NULL);
    c = cmr_mfcc_cfg_default();
    ok(c.n_mfcc == 40 && c.mel.n_mels == 96 && c.mel.power == 2 && c.mel.log == CMR_MEL_LOG_DB,
       "default: 40 coefficients of 96 dB power mel bands");
}

static void test_dct(void)
{
    /* the full 96 x 96 DCT-II ortho matrix is orthonormal */
    int n = 96;
    float *d = malloc(sizeof(float) * n * n);
    cmr_mfcc_dct_matrix(d, n, n);
    double worst = 0;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++) {
            double s = 0;
            for (int j = 0; j < n; j++)
                s += (double)d[a * n + j] * d[b * n + j];
            worst = fmax(worst, fabs(s - (a == b)));
        }
    ok(worst < 1e-6, "DCT-II ortho: D D^T = I (max error %.2e)", worst);
    ok(fabsf(d[0] - (float)sqrt(1.0 / 96)) < 1e-8f && fabsf(d[96] - (float)(sqrt(2.0 / 96) * cos(M_PI / 96 * 0.5))) < 1e-8f,
       "first rows: sqrt(1/N), sqrt(2/N) cos(pi (j + 0.5) / N)");
    free(d);
}

static float *run(struct cmr_mfcc *m, const float *x, size_t n, uint64_t seed, size_t *T)
{
    size_t total = (size_t)cmr_stft_track_frames((int64_t)n, 256) + 1, t = 0, got;
    int nc = cmr_mfcc_n_mfcc(m);
    float *out = malloc(sizeof(float) * total * nc);
    struct cmr_rng r;
    cmr_rng_seed(&r, seed);
    for (size_t pos = 0; pos < n;) {
        size_t c = seed ? 1 + (size_t)cmr_rng_below(&r, 2000) : n - pos;
        if (c > n - pos)
            c = n - pos;
        if (cmr_mfcc_process(m, x + pos, c, out + t * nc, total - t, &got, NULL))
            return free(out), NULL;
        t += got;
        pos += c;
    }
    if (cmr_mfcc_flush(m, out + t * nc, total - t, &got, NULL))
        return free(out), NULL;
    *T = t + got;
    return out;
}

static void check_signal(const char *name, const float *x, size_t n)
{
    char key[64], label[96];
    snprintf(key, sizeof key, "%s.mfcc", name);
    const struct ref_tensor *r = ref_get(key);
    struct cmr_mfcc_cfg c = cmr_mfcc_cfg_default();
    struct cmr_mfcc *m = cmr_mfcc_new(&c, NULL);
    size_t T = 0;
    float *got = run(m, x, n, 0, &T);
    if (ok(r && got && T == r->dims[0] && r->dims[1] == 40, "%s: %zu frames of 40", key, T)) {
        snprintf(label, sizeof label, "%s vs torchaudio MFCC", key);
        /* a pure sine leaves most bands 90 dB below its peak, where the dB values are
         * float32 rounding noise: torchaudio's own float32 and float64 MFCCs of this
         * sine differ by 0.025, so it gets a tolerance of 0.1 */
        double atol = strcmp(name, "sine") ? MFCC_ATOL : 0.1;
        check_close(label, got, r->data, r->n, atol, MFCC_RTOL);
    }
    if (!strcmp(name, "music")) {
        size_t T2 = 0;
        float *parts = run(m, x, n, 9, &T2);
        ok(parts && T2 == T && !memcmp(parts, got, sizeof(float) * T * 40),
           "music: chunked MFCC identical to whole-track MFCC");
        free(parts);
    }
    free(got);
    cmr_mfcc_free(m);
}

/* issue 11 G: the log-mel of a 1e30 sine is inf and its DCT NaN: an error */
static void test_nonfinite(void)
{
    struct cmr_error err = {0};
    struct cmr_mfcc_cfg cfg = cmr_mfcc_cfg_default();
    struct cmr_mfcc *m = cmr_mfcc_new(&cfg, &err);
    size_t n = 4096, got = 0;
    float *x = malloc(n * sizeof *x), *out = malloc(sizeof(float) * 40 * 64);
    for (size_t i = 0; i < n; i++)
        x[i] = 1e30f * (float)sin(0.17 * (double)i);
    int rc = cmr_mfcc_process(m, x, n, out, 64, &got, &err);
    ok(rc == CMR_ENAN && strstr(err.msg, "frame 0 (0.000 s into the track)"), "mfcc of a 1e30 sine: %s", err.msg);
    cmr_mfcc_reset(m);
    for (size_t i = 0; i < n; i++)
        x[i] *= 1e-30f;
    ok(cmr_mfcc_process(m, x, n, out, 64, &got, &err) == CMR_OK && got > 0, "a normal sine: %zu frames", got);
    cmr_mfcc_free(m);
    free(x);
    free(out);
}

int main(void)
{
    tap_plan_none();
    if (ref_load())
        diag("cannot read tests/ref/frontend.ref (is CMR_SRCDIR set?)");
    ok(ref_count > 0, "reference tensors loaded (%d)", ref_count);
    test_wrong_params();
    test_dct();
    test_nonfinite();
    const struct ref_tensor *r;
    if ((r = ref_get("music.pcm16")))
        check_signal("music", r->data, r->n);
    if ((r = ref_get("noise.pcm16")))
        check_signal("noise", r->data, r->n);
    float *s = malloc(sizeof(float) * 8000);
    for (int i = 0; i < 8000; i++)
        s[i] = (float)(0.5 * sin(2 * M_PI * 440 * i / 16000.0));
    check_signal("sine", s, 8000);
    free(s);
    r = ref_get("short.pcm16");
    static const int lens[] = { 1, 2, 3, 100, 256, 257, 300 };
    for (size_t i = 0; r && i < sizeof lens / sizeof lens[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "short.%d", lens[i]);
        check_signal(name, r->data, (size_t)lens[i]);
    }
    return tap_done();
}
