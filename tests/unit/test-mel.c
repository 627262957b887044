/* lib/dsp/mel: the log-mel front end against torchaudio references
 * (tests/ref/make_refs_frontend.py), streaming invariance, bad parameters. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"
#include "dsp/mel.h"
#include "dsp/stft.h"
#include "frontend-ref.h"
#include "util/rng.h"

/* the front end's agreement with torchaudio, in absolute terms (PAPER.md section 1) */
#define MEL_ATOL 1e-4
/* the HTK variant is an unbounded power mel: compare relatively, with an
 * absolute floor at 1e-6 of the largest value */
#define HTK_RTOL 1e-4

/* whole track through process + flush in chunks drawn from rng (chunk 0: all at once);
 * returns malloc'ed (T, n_mels), T in *T */
static float *run_mel(struct cmr_mel *m, const float *x, size_t n, uint64_t seed, size_t *T)
{
    size_t total = (size_t)cmr_stft_track_frames((int64_t)n, 256) + 1;
    int nm = cmr_mel_n_mels(m);
    float *out = malloc(sizeof(float) * total * (size_t)nm);
    struct cmr_rng r;
    cmr_rng_seed(&r, seed);
    size_t pos = 0, t = 0, got;
    while (pos < n) {
        size_t c = seed ? 1 + (size_t)cmr_rng_below(&r, 3000) : n;
        if (c > n - pos)
            c = n - pos;
        if (cmr_mel_process(m, x + pos, c, out + t * nm, total - t, &got, NULL))
            goto fail;
        t += got;
        pos += c;
    }
    if (cmr_mel_flush(m, out + t * nm, total - t, &got, NULL))
        goto fail;
    *T = t + got;
    return out;
fail:
    free(out);
    return NULL;
}

static void test_wrong_params(void)
{
    struct cmr_error err;
    struct { const char *what; struct cmr_mel_cfg c; } bad[10];
    int n = 0;
    for (int i = 0; i < 10; i++)
        bad[i].c = cmr_mel_cfg_default();
    bad[n].what = "n_mels 0"; bad[n++].c.n_mels = 0;
    bad[n].what = "n_fft odd"; bad[n++].c.n_fft = 511;
    bad[n].what = "hop 0"; bad[n++].c.hop = 0;
    bad[n].what = "hop > n_fft"; bad[n++].c.hop = 513;
    bad[n].what = "f_max > nyquist"; bad[n++].c.f_max = 9000;
    bad[n].what = "f_min >= f_max"; bad[n].c.f_min = 5000; bad[n++].c.f_max = 4000;
    bad[n].what = "power 3"; bad[n++].c.power = 3;
    bad[n].what = "sample rate NaN"; bad[n++].c.sample_rate = NAN;
    bad[n].what = "scale 7"; bad[n++].c.scale = 7;
    bad[n].what = "log 9"; bad[n++].c.log = 9;
    for (int i = 0; i < n; i++) {
        memset(&err, 0, sizeof err);
        struct cmr_mel *m = cmr_mel_new(&bad[i].c, &err);
        ok(!m && err.code == CMR_EINVAL && !strncmp(err.msg, "mel: ", 5), "rejects %s (%s)",
           bad[i].what, err.msg);
        cmr_mel_free(m);
    }
    ok(!cmr_mel_new(NULL, NULL), "rejects a NULL configuration");
    cmr_mel_free(NULL);
    struct cmr_mel_cfg c = cmr_mel_cfg_default();
    c.n_mels = 512;
    struct cmr_mel *m = cmr_mel_new(&c, NULL);
    ok(m && cmr_mel_empty_filters(m) > 0, "512 bands on a 512 FFT: %d empty filters",
       m ? cmr_mel_empty_filters(m) : -1);
    cmr_mel_free(m);
    c = cmr_mel_cfg_default();
    m = cmr_mel_new(&c, NULL);
    ok(m && cmr_mel_empty_filters(m) == 0, "the default has no empty filter");
    cmr_mel_free(m);
}

static void test_scales(void)
{
    /* Slaney: linear below 1 kHz (15 mel at 1000 Hz), log above; HTK: 1000 mel at 1000 Hz */
    ok(fabs(cmr_mel_hz_to_mel(1000, CMR_MEL_SCALE_SLANEY) - 15.0) < 1e-12, "slaney mel(1000 Hz) = 15");
    ok(fabs(cmr_mel_hz_to_mel(200, CMR_MEL_SCALE_SLANEY) - 3.0) < 1e-12, "slaney mel(200 Hz) = 3");
    ok(fabs(cmr_mel_hz_to_mel(6400, CMR_MEL_SCALE_SLANEY) - 42.0) < 1e-12, "slaney mel(6400 Hz) = 42");
    ok(fabs(cmr_mel_hz_to_mel(1000, CMR_MEL_SCALE_HTK) - 999.985) < 1e-3, "htk mel(1000 Hz) ~ 1000");
    double worst = 0;
    for (double hz = 0; hz <= 8000; hz += 37.5)
        for (int s = 0; s < 2; s++)
            worst = fmax(worst, fabs(cmr_mel_mel_to_hz(cmr_mel_hz_to_mel(hz, s), s) - hz));
    ok(worst < 1e-9, "hz -> mel -> hz round trip (max error %.2e Hz)", worst);
}

static void test_filterbank(void)
{
    const struct ref_tensor *r = ref_get("fb.slaney");
    struct cmr_mel_cfg c = cmr_mel_cfg_default();
    float *fb = malloc(sizeof(float) * 96 * 257);
    ok(r && r->n == 96 * 257 && cmr_mel_filterbank(&c, fb, NULL) == CMR_OK, "slaney filterbank computed");
    if (r)
        check_close("filterbank vs torchaudio melscale_fbanks", fb, r->data, r->n, 1e-7, 1e-5);
    free(fb);
}

static float max_abs(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* one signal against its .mel and .htk references */
static void check_signal(const char *name, const float *x, size_t n)
{
    char key[64], label[96];
    for (int v = 0; v < 2; v++) {
        struct cmr_mel_cfg c = v ? cmr_mel_cfg_htk() : cmr_mel_cfg_default();
        snprintf(key, sizeof key, "%s.%s", name, v ? "htk" : "mel");
        const struct ref_tensor *r = ref_get(key);
        struct cmr_mel *m = cmr_mel_new(&c, NULL);
        size_t T = 0;
        float *got = m ? run_mel(m, x, n, 0, &T) : NULL;
        if (!ok(r && got && r->ndim == 2 && T == r->dims[0] && r->dims[1] == 96,
                "%s: %zu frames (reference %u)", key, T, r ? r->dims[0] : 0)) {
            free(got);
            cmr_mel_free(m);
            continue;
        }
        snprintf(label, sizeof label, "%s vs torchaudio", key);
        if (v == 0)
            check_close(label, got, r->data, r->n, MEL_ATOL, 0);
        else
            check_close(label, got, r->data, r->n, 1e-6 * max_abs(r->data, r->n), HTK_RTOL);
        free(got);
        cmr_mel_free(m);
    }
}

static void test_references(void)
{
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
    /* tracks shorter than the reflect pad: numpy.pad(mode="reflect") semantics */
    r = ref_get("short.pcm16");
    static const int lens[] = { 1, 2, 3, 100, 256, 257, 300 };
    for (size_t i = 0; r && i < sizeof lens / sizeof lens[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "short.%d", lens[i]);
        check_signal(name, r->data, (size_t)lens[i]);
    }
}

static void test_streaming(void)
{
    const struct ref_tensor *r = ref_get("music.pcm16");
    if (!r)
        return;
    struct cmr_mel_cfg c = cmr_mel_cfg_default();
    struct cmr_mel *m = cmr_mel_new(&c, NULL);
    size_t T0 = 0, T1 = 0;
    float *whole = run_mel(m, r->data, r->n, 0, &T0);
    int same = 1;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        float *parts = run_mel(m, r->data, r->n, seed, &T1);
        same &= parts && T1 == T0 && !memcmp(parts, whole, sizeof(float) * T0 * 96);
        free(parts);
    }
    ok(same && T0 == 188, "random chunkings give bit-identical frames (%zu frames)", T0);

    /* one sample at a time, and frame by frame with push/next */
    float *one = malloc(sizeof(float) * T0 * 96);
    size_t t = 0, got;
    int okk = 1;
    for (size_t i = 0; i < r->n && okk; i++) {
        okk = cmr_mel_push(m, r->data + i, 1, NULL) == CMR_OK;
        while (t < T0 && cmr_mel_next(m, one + t * 96))
            t++;
        /* a frame is out as soon as its last sample (and frame 0's reflection) is known */
        int64_t expect = i + 1 < 257 ? 0 : (int64_t)(i + 1 - 257) / 256 + 1;
        okk &= (int64_t)t == expect;
    }
    ok(okk, "push/next: frames become ready as samples arrive (%zu before the end)", t);
    ok(cmr_mel_flush_frames(m) == T0 - t, "flush_frames: %zu left", cmr_mel_flush_frames(m));
    cmr_mel_end(m);
    struct cmr_error err;
    ok(cmr_mel_push(m, r->data, 1, &err) == CMR_ESTATE, "push after end: CMR_ESTATE (%s)", err.msg);
    while (t < T0 && cmr_mel_next(m, one + t * 96))
        t++;
    ok(t == T0 && !memcmp(one, whole, sizeof(float) * T0 * 96) && !cmr_mel_next(m, one),
       "sample by sample equals the whole track");
    cmr_mel_reset(m);

    /* too little room: nothing consumed */
    ok(cmr_mel_process(m, r->data, 1000, one, 2, &got, &err) == CMR_EINVAL && got == 0
       && cmr_mel_frame_index(m) == 0 && cmr_mel_ready(m, 0) == 0,
       "process refuses an output buffer that is too small (%s)", err.msg);
    ok(cmr_mel_ready(m, 48000) == 187 && cmr_mel_flush_frames(m) == 0, "ready(48000) = 187 before the end");

    ok(cmr_mel_push(m, r->data, r->n, NULL) == CMR_OK && cmr_mel_flush_frames(m) == 188
       && cmr_mel_flush(m, one, 187, &got, &err) == CMR_EINVAL && got == 0 && cmr_mel_ready(m, 0) == 187,
       "flush refuses an output buffer that is too small (%s)", err.msg);
    cmr_mel_reset(m);

    /* a second track after flush starts fresh */
    size_t T2 = 0;
    float *again = run_mel(m, r->data, r->n, 3, &T2);
    ok(again && T2 == T0 && !memcmp(again, whole, sizeof(float) * T0 * 96), "second track identical");
    free(again);

    /* frame counts */
    static const size_t lens[] = { 0, 1, 255, 256, 257, 511, 512, 48000 };
    static const size_t want[] = { 0, 1, 1, 2, 2, 2, 3, 188 };
    float *z = calloc(48000, sizeof(float));
    int counts = 1;
    for (int i = 0; i < 8; i++) {
        size_t T = 0;
        float *o = run_mel(m, z, lens[i], 0, &T);
        counts &= o && T == want[i];
        /* silence is exactly 0 after log10(1 + 10 x) */
        counts &= o && max_abs(o, T * 96) == 0.0f;
        free(o);
    }
    ok(counts, "1 + floor(L / 256) frames (0 for an empty track); silence gives 0");
    free(z);
    free(one);
    free(whole);
    cmr_mel_free(m);
}

static void test_compress(void)
{
    float x[4] = { 0, 0.9f, 1e-12f, 99.9f };
    cmr_mel_compress(x, 4, CMR_MEL_LOG_1P);
    ok(x[0] == 0 && fabsf(x[1] - 1.0f) < 1e-6f && fabsf(x[3] - 3.0f) < 1e-6f, "log10(1 + 10 x)");
    float y[3] = { 0, 1e-12f, 100 };
    cmr_mel_compress(y, 3, CMR_MEL_LOG_DB);
    ok(y[0] == -100.0f && y[1] == -100.0f && fabsf(y[2] - 20.0f) < 1e-5f, "10 log10(max(x, 1e-10))");
    char buf[256];
    struct cmr_mel_cfg c = cmr_mel_cfg_default();
    cmr_mel_cfg_describe(&c, buf, sizeof buf);
    ok(!strcmp(buf, "sr=16000 n_fft=512 hop=256 n_mels=96 f_min=0 f_max=8000 power=1 scale=slaney "
                    "norm=slaney log=log10(1+10x)"), "describe: %s", buf);
}

/* issue 11 G: a float sine x 1e30 gave every value inf (mel) or NaN (mfcc);
 * now the first non-finite frame is an error naming the frame and its time */
static void test_nonfinite(void)
{
    struct cmr_error err = {0};
    struct cmr_mel_cfg cfg = cmr_mel_cfg_default();
    struct cmr_mel *m = cmr_mel_new(&cfg, &err);
    size_t n = 16000, got = 0;
    float *x = calloc(n, sizeof *x), *out = malloc(sizeof(float) * 96 * 200);
    for (size_t i = 8000; i < n; i++) /* half a second of silence, then loud */
        x[i] = 1e30f * (float)sin(0.17 * (double)i);
    int rc = cmr_mel_process(m, x, n, out, 200, &got, &err);
    ok(rc == CMR_ENAN && strstr(err.msg, "s into the track") && strstr(err.msg, "is infinite"),
       "mel of a 1e30 sine: %s", err.msg);
    int64_t k = -1;
    double t = -1;
    long long kk = -1;
    int parsed = sscanf(err.msg, "mel: frame %lld (%lf s", &kk, &t);
    k = kk;
    ok(parsed == 2 && t > 0.4 && t <= 0.5 && fabs(t - (double)k * 256 / 16000) < 1e-3,
       "the error's time is that of the first loud frame: %g s", t);
    ok(got == (size_t)k, "the frames before it were written: %zu", got);
    cmr_mel_free(m);
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
    test_scales();
    test_filterbank();
    test_references();
    test_streaming();
    test_nonfinite();
    test_compress();
    return tap_done();
}
