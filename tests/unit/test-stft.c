/* lib/dsp/stft: window, one-frame spectrum against a naive DFT, streaming
 * framing against a naive padded-signal twin, bad parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "dsp/stft.h"
#include "util/rng.h"

static void test_wrong_params(void)
{
    struct cmr_stft_cfg c;
    struct cmr_error err;
    int n_fft[] = { 511, 0, 8, 131072 }, hop[] = { 0, 513 }, power[] = { 0, 3 };
    for (int i = 0; i < 4; i++) {
        c = cmr_stft_cfg_default();
        c.n_fft = n_fft[i];
        ok(!cmr_stft_new(&c, &err) && err.code == CMR_EINVAL, "rejects n_fft %d (%s)", n_fft[i], err.msg);
    }
    for (int i = 0; i < 2; i++) {
        c = cmr_stft_cfg_default();
        c.hop = hop[i];
        ok(!cmr_stft_new(&c, &err) && err.code == CMR_EINVAL, "rejects hop %d (%s)", hop[i], err.msg);
    }
    for (int i = 0; i < 2; i++) {
        c = cmr_stft_cfg_default();
        c.power = power[i];
        ok(!cmr_stft_new(&c, &err) && err.code == CMR_EINVAL, "rejects power %d (%s)", power[i], err.msg);
    }
    ok(!cmr_stft_new(NULL, NULL), "rejects NULL");
    cmr_stft_free(NULL);
}

static void test_window(void)
{
    float w[512];
    cmr_stft_hann(w, 512);
    int sym = 1;
    for (int i = 1; i < 512; i++)
        sym &= w[i] == w[512 - i];
    ok(w[0] == 0.0f && w[256] == 1.0f && fabsf(w[128] - 0.5f) < 1e-7f && sym,
       "periodic Hann: w[0] = 0, w[n/2] = 1, w[i] = w[n-i]");
}

/* |DFT(w x)|^power in double */
static void naive_spectrum(const float *x, int n, int power, float *out)
{
    float *w = malloc(sizeof(float) * n);
    cmr_stft_hann(w, n);
    for (int k = 0; k <= n / 2; k++) {
        double re = 0, im = 0;
        for (int i = 0; i < n; i++) {
            double a = -2 * M_PI * (double)k * i / n;
            re += (double)w[i] * x[i] * cos(a);
            im += (double)w[i] * x[i] * sin(a);
        }
        double p = re * re + im * im;
        out[k] = (float)(power == 2 ? p : sqrt(p));
    }
    free(w);
}

static void test_spectrum(void)
{
    int n = 512;
    float x[512], got[257], want[257];
    struct cmr_rng r;
    cmr_rng_seed(&r, 11);
    for (int i = 0; i < n; i++)
        x[i] = (float)(0.3 * sin(2 * M_PI * 1000 * i / 16000.0) + 0.1 * cmr_rng_normal(&r));
    for (int p = 1; p <= 2; p++) {
        struct cmr_stft_cfg c = cmr_stft_cfg_default();
        c.power = p;
        struct cmr_stft *st = cmr_stft_new(&c, NULL);
        cmr_stft_spectrum(st, x, got);
        naive_spectrum(x, n, p, want);
        float peak = 0;
        for (int k = 0; k < 257; k++)
            peak = fmaxf(peak, want[k]);
        check_close(p == 1 ? "magnitude vs naive DFT" : "power vs naive DFT", got, want, 257,
                    2e-6 * peak, 1e-5);
        ok(cmr_stft_n_bins(st) == 257, "257 bins");
        cmr_stft_free(st);
    }
}

/* numpy.pad(x, pad, mode="reflect") the way numpy computes it: reflect
 * repeatedly, at most L-1 samples at a time, off the array padded so far */
static float *naive_pad(const float *x, int L, int pad)
{
    int n = L + 2 * pad;
    float *y = calloc((size_t)n, sizeof(float));
    memcpy(y + pad, x, sizeof(float) * L);
    if (L == 1) {
        for (int i = 0; i < n; i++)
            y[i] = x[0];
        return y;
    }
    int lo = pad, hi = pad + L; /* filled: [lo, hi) */
    while (lo > 0 || hi < n) {
        int len = hi - lo;
        int k = lo < len - 1 ? lo : len - 1;
        for (int i = 1; i <= k; i++)
            y[lo - i] = y[lo + i];
        lo -= k;
        int m = n - hi < len - 1 ? n - hi : len - 1;
        for (int i = 1; i <= m; i++)
            y[hi - 1 + i] = y[hi - 1 - i];
        hi += m;
    }
    return y;
}

static void test_framing(void)
{
    static const int lens[] = { 1, 2, 3, 7, 100, 255, 256, 257, 258, 300, 511, 512, 513, 1000, 1500 };
    static const int hops[] = { 256, 160, 100, 512, 1 };
    struct cmr_rng r;
    cmr_rng_seed(&r, 5);
    float x[1500];
    for (int i = 0; i < 1500; i++)
        x[i] = (float)cmr_rng_normal(&r);
    int all = 1, cases = 0;
    float *got = malloc(sizeof(float) * 257), *want = malloc(sizeof(float) * 257);
    for (size_t h = 0; h < sizeof hops / sizeof hops[0]; h++) {
        struct cmr_stft_cfg c = cmr_stft_cfg_default();
        c.hop = hops[h];
        struct cmr_stft *st = cmr_stft_new(&c, NULL);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int L = lens[li];
            if (hops[h] == 1 && L > 300)
                continue;
            float *y = naive_pad(x, L, 256);
            int64_t T = cmr_stft_track_frames(L, hops[h]), t = 0;
            /* push in chunks of 1..97 samples */
            for (int pos = 0; pos < L;) {
                int n = 1 + (int)cmr_rng_below(&r, 97);
                if (n > L - pos)
                    n = L - pos;
                cmr_stft_push(st, x + pos, (size_t)n, NULL);
                pos += n;
                while (cmr_stft_next(st, got)) {
                    cmr_stft_spectrum(st, y + t * hops[h], want);
                    all &= t < T && !memcmp(got, want, sizeof(float) * 257);
                    t++;
                }
            }
            cmr_stft_end(st);
            while (cmr_stft_next(st, got)) {
                cmr_stft_spectrum(st, y + t * hops[h], want);
                all &= t < T && !memcmp(got, want, sizeof(float) * 257);
                t++;
            }
            all &= t == T;
            if (t != T)
                diag("L %d hop %d: %lld frames, want %lld", L, hops[h], (long long)t, (long long)T);
            cmr_stft_reset(st);
            free(y);
            cases++;
        }
        cmr_stft_free(st);
    }
    ok(all, "streamed frames equal numpy.pad reflect framing, bit for bit (%d cases)", cases);
    free(got);
    free(want);
    ok(cmr_stft_track_frames(48000, 256) == 188 && cmr_stft_track_frames(0, 256) == 0
       && cmr_stft_track_frames(1, 256) == 1, "track frames: 48000 -> 188, 0 -> 0, 1 -> 1");
}

int main(void)
{
    tap_plan_none();
    test_wrong_params();
    test_window();
    test_spectrum();
    test_framing();
    return tap_done();
}
