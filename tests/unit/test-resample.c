/* lib/dsp/resample: parameters, chunking invariance, alignment, spectral SNR,
 * anti-aliasing, drain/reset. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/resample.h"
#include "util/rng.h"
#include "../tap.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* resamples x[0..n) fed in chunks of the given sizes (cycled); returns a
 * malloc'ed output and its length */
static float *run_chunked(const struct cmr_resample_cfg *cfg, const float *x, size_t n,
                          const size_t *chunks, int n_chunks, size_t *n_out)
{
    struct cmr_error err = {0};
    struct cmr_resample *r = cmr_resample_new(cfg, &err);
    size_t cap = (size_t)(n * cfg->out_rate / cfg->in_rate) + 4096, len = 0, pos = 0;
    float *y = malloc(cap * sizeof *y);
    const float *o;
    size_t no;
    int k = 0;

    if (!r || !y) {
        diag("resample_new: %s", err.msg);
        exit(1);
    }
    while (pos < n) {
        size_t c = chunks[k++ % n_chunks];
        if (c > n - pos)
            c = n - pos;
        if (cmr_resample_process(r, x + pos, c, &o, &no, &err) != CMR_OK) {
            diag("process: %s", err.msg);
            exit(1);
        }
        if (len + no > cap)
            exit(1);
        if (no)
            memcpy(y + len, o, no * sizeof *o);
        len += no;
        pos += c;
    }
    if (cmr_resample_drain(r, &o, &no, &err) != CMR_OK || len + no > cap)
        exit(1);
    if (no)
        memcpy(y + len, o, no * sizeof *o);
    len += no;
    cmr_resample_free(r);
    *n_out = len;
    return y;
}

static struct cmr_resample_cfg cfg_of(double in, double out, enum cmr_resample_quality q)
{
    struct cmr_resample_cfg c = cmr_resample_cfg_default();
    c.in_rate = in;
    c.out_rate = out;
    c.quality = q;
    return c;
}

static void test_wrong_params(void)
{
    struct cmr_error err = {0};
    struct cmr_resample_cfg c = cfg_of(44100, 16000, CMR_RESAMPLE_HQ);
    enum cmr_resample_quality q;
    const float *o;
    size_t no;

    c.in_rate = 0;
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "in_rate 0 refused: %s", err.msg);
    c.in_rate = -1;
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "negative rate refused");
    c.in_rate = NAN;
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "NaN rate refused");
    c = cfg_of(44100, INFINITY, CMR_RESAMPLE_HQ);
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "infinite rate refused");
    /* issue 11 A/B: 0.01 Hz crashed soxr, hung or took gigabytes; the
     * supported range is 1000..768000 Hz (frame.h), which bounds the ratio */
    double bad[] = {0.01, 1e-300, 1, 999.99, 768000.01, 1e9};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = cfg_of(bad[i], 16000, CMR_RESAMPLE_MQ);
        ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL && strstr(err.msg, "[1000, 768000]"),
           "in_rate %g refused: %s", bad[i], err.msg);
        c = cfg_of(16000, bad[i], CMR_RESAMPLE_TORCHAUDIO);
        ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "out_rate %g refused", bad[i]);
    }
    {
        /* the extremes of the range work, with output of the expected length */
        double ends[][2] = {{1000, 768000}, {768000, 1000}};
        for (int k = 0; k < 2; k++) {
            c = cfg_of(ends[k][0], ends[k][1], CMR_RESAMPLE_HQ);
            struct cmr_resample *r = cmr_resample_new(&c, &err);
            static float z[7680];
            size_t total = 0;
            int good = r && cmr_resample_process(r, z, 7680, &o, &no, &err) == CMR_OK;
            total += no;
            good = good && cmr_resample_drain(r, &o, &no, &err) == CMR_OK;
            total += no;
            size_t want = (size_t)llround(7680 * ends[k][1] / ends[k][0]);
            ok(good && total == want, "%g -> %g Hz works: %zu samples (want %zu)", ends[k][0], ends[k][1],
               total, want);
            cmr_resample_free(r);
        }
    }
    c = cfg_of(44100, 16000, CMR_RESAMPLE_HQ);
    c.channels = 0;
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "0 channels refused");
    c.channels = 1;
    c.quality = (enum cmr_resample_quality)7;
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "unknown quality refused");
    ok(!cmr_resample_new(NULL, &err), "NULL cfg refused");
    c = cfg_of(44100.5, 16000, CMR_RESAMPLE_TORCHAUDIO);
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "torchaudio needs integer rates: %s", err.msg);
    c = cfg_of(44101, 16000, CMR_RESAMPLE_KAISER_BEST);
    ok(!cmr_resample_new(&c, &err) && err.code == CMR_EINVAL, "a huge kernel is refused: %s", err.msg);
    c = cfg_of(44100, 16000, CMR_RESAMPLE_HQ);
    ok(cmr_resample_quality_parse("vhq", &q) == CMR_OK && q == CMR_RESAMPLE_VHQ, "parse vhq");
    ok(cmr_resample_quality_parse("hq", &q) == CMR_OK && q == CMR_RESAMPLE_HQ, "parse hq");
    ok(cmr_resample_quality_parse("mq", &q) == CMR_OK && q == CMR_RESAMPLE_MQ, "parse mq");
    ok(cmr_resample_quality_parse("torchaudio", &q) == CMR_OK && q == CMR_RESAMPLE_TORCHAUDIO &&
           cmr_resample_quality_parse("kaiser-best", &q) == CMR_OK && q == CMR_RESAMPLE_KAISER_BEST,
       "parse torchaudio, kaiser-best");
    ok(cmr_resample_quality_parse("HQ", &q) == CMR_EINVAL &&
           cmr_resample_quality_parse("", &q) == CMR_EINVAL &&
           cmr_resample_quality_parse(NULL, &q) == CMR_EINVAL, "parse rejects HQ, '' and NULL");
    ok(strcmp(cmr_resample_quality_name(CMR_RESAMPLE_MQ), "mq") == 0, "quality name");
    cmr_resample_free(NULL);
    ok(cmr_resample_process(NULL, NULL, 0, &o, &no, &err) == CMR_EINVAL, "process(NULL) refused");

    c = cfg_of(44100, 16000, CMR_RESAMPLE_HQ);
    struct cmr_resample *r = cmr_resample_new(&c, &err);
    float x[100] = {0};
    ok(r && cmr_resample_process(r, x, 100, &o, &no, &err) == CMR_OK, "process ok");
    ok(cmr_resample_drain(r, &o, &no, &err) == CMR_OK, "drain ok");
    ok(cmr_resample_process(r, x, 100, &o, &no, &err) == CMR_ESTATE, "process after drain: ESTATE");
    ok(cmr_resample_drain(r, &o, &no, &err) == CMR_ESTATE, "drain twice: ESTATE");
    ok(cmr_resample_reset(r, &err) == CMR_OK &&
           cmr_resample_process(r, x, 100, &o, &no, &err) == CMR_OK, "process after reset ok");
    cmr_resample_free(r);
}

/* the same signal in different chunkings gives the same output */
static void test_chunking(enum cmr_resample_quality q, double in, double out)
{
    size_t n = (size_t)in + 1234, n1, n2, n3, n4;
    float *x = malloc(n * sizeof *x);
    struct cmr_rng rng;
    struct cmr_resample_cfg c = cfg_of(in, out, q);
    size_t whole[] = {n}, ones[] = {1}, odd[] = {7, 333, 4096, 1, 65536, 12};
    size_t rnd[64];

    cmr_rng_seed(&rng, 42);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 440 * (double)i / in) + 0.3 * (cmr_rng_uniform(&rng) - 0.5));
    for (int i = 0; i < 64; i++)
        rnd[i] = 1 + cmr_rng_below(&rng, 20000);
    float *y1 = run_chunked(&c, x, n, whole, 1, &n1);
    float *y2 = run_chunked(&c, x, n, ones, 1, &n2);
    float *y3 = run_chunked(&c, x, n, odd, 6, &n3);
    float *y4 = run_chunked(&c, x, n, rnd, 64, &n4);
    int sinc = q == CMR_RESAMPLE_TORCHAUDIO || q == CMR_RESAMPLE_KAISER_BEST;
    size_t want = sinc ? (size_t)ceil((double)n * out / in) : (size_t)llround((double)n * out / in);
    ok(n1 == want, "%s %g->%g: %zu in, %zu out (%s(n*ratio) = %zu)",
       cmr_resample_quality_name(q), in, out, n, n1, sinc ? "ceil" : "round", want);
    ok(n2 == n1 && n3 == n1 && n4 == n1, "same length for chunks of 1, odd sizes, random sizes (%zu %zu %zu)",
       n2, n3, n4);
    if (n2 == n1 && n3 == n1 && n4 == n1) {
        check_close("chunks of 1 vs whole", y2, y1, n1, 1e-6, 0);
        check_close("odd chunks vs whole", y3, y1, n1, 1e-6, 0);
        check_close("random chunks vs whole", y4, y1, n1, 1e-6, 0);
    }
    free(x), free(y1), free(y2), free(y3), free(y4);
}

/* least-squares fit of a*sin + b*cos at freq over y[lo..hi); returns the
 * signal-to-residual ratio in dB and the fitted amplitude and phase */
static double sine_snr(const float *y, size_t lo, size_t hi, double freq, double rate,
                       double *amp, double *phase)
{
    double ss = 0, cc = 0, sc = 0, ys = 0, yc = 0, sig = 0, res = 0, a, b, det;
    for (size_t i = lo; i < hi; i++) {
        double s = sin(2 * M_PI * freq * (double)i / rate), co = cos(2 * M_PI * freq * (double)i / rate);
        ss += s * s, cc += co * co, sc += s * co, ys += y[i] * s, yc += y[i] * co;
    }
    det = ss * cc - sc * sc;
    a = (ys * cc - yc * sc) / det;
    b = (yc * ss - ys * sc) / det;
    for (size_t i = lo; i < hi; i++) {
        double f = a * sin(2 * M_PI * freq * (double)i / rate) + b * cos(2 * M_PI * freq * (double)i / rate);
        sig += f * f;
        res += (y[i] - f) * (y[i] - f);
    }
    *amp = sqrt(a * a + b * b);
    *phase = atan2(b, a);
    return 10 * log10(sig / (res + 1e-30));
}

/* a sine stays a sine: right frequency, gain 1, no delay, high spectral SNR */
static void test_sine(enum cmr_resample_quality q, double in, double out, double freq, double min_snr)
{
    size_t n = (size_t)(2 * in), ny;
    float *x = malloc(n * sizeof *x);
    struct cmr_resample_cfg c = cfg_of(in, out, q);
    size_t chunks[] = {4096, 1000, 65536};
    double amp, phase, snr, maxerr = 0;

    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.8 * sin(2 * M_PI * freq * (double)i / in));
    float *y = run_chunked(&c, x, n, chunks, 3, &ny);
    /* skip the first and last 0.1 s: the signal starts and stops abruptly */
    size_t lo = (size_t)(0.1 * out), hi = ny - (size_t)(0.1 * out);
    snr = sine_snr(y, lo, hi, freq, out, &amp, &phase);
    for (size_t i = lo; i < hi; i++) {
        double d = fabs(y[i] - 0.8 * sin(2 * M_PI * freq * (double)i / out));
        if (d > maxerr)
            maxerr = d;
    }
    ok(snr > min_snr, "%s %g->%g Hz, %g Hz sine: SNR %.1f dB (want > %.0f)", cmr_resample_quality_name(q),
       in, out, freq, snr, min_snr);
    ok(fabs(amp - 0.8) < 1e-3, "gain: amplitude %.6f (want 0.8)", amp);
    ok(fabs(phase) < 1e-3, "no delay: phase %.2e rad", phase);
    ok(maxerr < 1e-5, "max abs diff to the ideal sine %.2e", maxerr);
    free(x), free(y);
}

/* a tone above the output Nyquist is removed */
static void test_alias(void)
{
    size_t n = 44100, ny;
    float *x = malloc(n * sizeof *x);
    struct cmr_resample_cfg c = cfg_of(44100, 16000, CMR_RESAMPLE_HQ);
    size_t chunks[] = {8192};
    double e = 0;

    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.8 * sin(2 * M_PI * 10000 * (double)i / 44100));
    float *y = run_chunked(&c, x, n, chunks, 1, &ny);
    for (size_t i = 1600; i < ny - 1600; i++)
        e += (double)y[i] * y[i];
    e = sqrt(e / (double)(ny - 3200));
    ok(e < 1e-4, "10 kHz tone at 44.1 -> 16 kHz removed: rms %.2e (input rms 0.57)", e);
    free(x), free(y);
}

/* interleaved stereo: channels do not mix */
static void test_stereo(void)
{
    struct cmr_error err = {0};
    struct cmr_resample_cfg c = cfg_of(48000, 16000, CMR_RESAMPLE_HQ);
    c.channels = 2;
    struct cmr_resample *r = cmr_resample_new(&c, &err);
    size_t n = 48000, got = 0;
    float *x = calloc(2 * n, sizeof *x);
    const float *o;
    size_t no;
    double left = 0, right = 0;
    for (size_t i = 0; i < n; i++)
        x[2 * i] = (float)sin(2 * M_PI * 1000 * (double)i / 48000);
    ok(r && cmr_resample_process(r, x, n, &o, &no, &err) == CMR_OK, "stereo process");
    for (size_t i = 0; i < no; i++)
        left += fabs(o[2 * i]), right += fabs(o[2 * i + 1]);
    got += no;
    ok(cmr_resample_drain(r, &o, &no, &err) == CMR_OK, "stereo drain");
    got += no;
    ok(got == 16000, "stereo: 16000 frames out, got %zu", got);
    ok(left > 1000 && right < 1e-3, "stereo: right channel stays silent (%.3g, %.3g)", left, right);
    cmr_resample_free(r);
    free(x);
}

/* reads tensor `name` of n floats from tests/ref/resample.ref (CMRT v1, see
 * tests/ref/make_refs_resample.py); NULL if missing or malformed */
static float *ref_tensor(const char *name, size_t n)
{
    char path[4096];
    const char *src = getenv("CMR_SRCDIR");
    unsigned char h[12];
    float *out = NULL;
    uint32_t count;
    FILE *f;

    snprintf(path, sizeof path, "%s/tests/ref/resample.ref", src ? src : ".");
    if (!(f = fopen(path, "rb"))) {
        diag("cannot open %s (set CMR_SRCDIR)", path);
        return NULL;
    }
    if (fread(h, 1, 12, f) != 12 || memcmp(h, "CMRT", 4) != 0 || h[4] != 1 || h[5] || h[6] || h[7])
        goto done;
    count = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    for (uint32_t k = 0; k < count && k < 16; k++) {
        uint32_t len, ndim, dims[6], total = 1;
        char nm[64];
        if (fread(&len, 4, 1, f) != 1 || len >= sizeof nm || fread(nm, 1, len, f) != len ||
            fread(&ndim, 4, 1, f) != 1 || ndim > 6 || fread(dims, 4, ndim, f) != ndim)
            goto done;
        nm[len] = 0;
        for (uint32_t i = 0; i < ndim; i++)
            total *= dims[i];
        if (total > (1u << 24))
            goto done;
        if (strcmp(nm, name) == 0 && total == n) {
            out = malloc(n * sizeof *out);
            if (out && fread(out, 4, n, f) != n) {
                free(out);
                out = NULL;
            }
            goto done;
        }
        if (fseek(f, (long)total * 4, SEEK_CUR) != 0)
            goto done;
    }
done:
    fclose(f);
    if (!out)
        diag("%s: no tensor %s of %zu floats (regenerate with tests/ref/make_refs_resample.py)", path,
             name, n);
    return out;
}

/* the fixture's inputs: sines below rate / 2 - 500 Hz (make_refs_resample.py) */
static void fixture_signal(float *x, size_t n, double rate)
{
    static const double sines[4][3] = {{220, .2, .1}, {1234.5, .2, .7}, {3000, .2, 1.3}, {5555, .2, 2.1}};
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        for (int k = 0; k < 4; k++)
            if (sines[k][0] < rate / 2 - 500)
                v += sines[k][1] * sin(2 * M_PI * sines[k][0] * (double)i / rate + sines[k][2]);
        x[i] = (float)v;
    }
}

/* against torchaudio: soxr has the same alignment and gain as a near-ideal
 * band-limited resampler (librosa's kaiser_best settings) away from the
 * edges; the torchaudio methods reproduce torchaudio everywhere */
static void test_torchaudio(double rate, size_t n)
{
    char name[64], label[128];
    size_t want = (size_t)ceil((double)n * 16000 / rate), ny;
    float *x = malloc(n * sizeof *x);
    size_t chunks[] = {1000, 4096, 7};
    float *kaiser, *hann;

    fixture_signal(x, n, rate);
    snprintf(name, sizeof name, "kaiser_best_%g", rate);
    kaiser = ref_tensor(name, want);
    snprintf(name, sizeof name, "hann_%g", rate);
    hann = ref_tensor(name, want);
    ok(kaiser && hann, "fixture tensors for %g Hz (%zu samples each)", rate, want);
    if (!kaiser || !hann)
        goto out;
    for (int q = CMR_RESAMPLE_MQ; q <= CMR_RESAMPLE_KAISER_BEST; q++) {
        struct cmr_resample_cfg c = cfg_of(rate, 16000, (enum cmr_resample_quality)q);
        float *y = run_chunked(&c, x, n, chunks, 3, &ny);
        const char *qn = cmr_resample_quality_name(c.quality);
        if (q <= CMR_RESAMPLE_VHQ) {
            size_t lo = want / 10, hi = want - want / 10, round_len = (size_t)llround((double)n * 16000 / rate);
            double edge = 0;
            ok(ny == round_len, "%s: %zu samples at %g Hz -> %zu at 16 kHz (round; torchaudio: ceil = %zu)", qn, n,
               rate, ny, want);
            snprintf(label, sizeof label, "%s vs torchaudio kaiser_best at %g Hz, samples %zu..%zu", qn, rate, lo, hi);
            check_close(label, y + lo, kaiser + lo, hi - lo, q == CMR_RESAMPLE_MQ ? 1e-3 : 1e-4, 0);
            for (size_t i = 0; i < lo; i++)
                if (fabs(y[i] - kaiser[i]) > edge)
                    edge = fabs(y[i] - kaiser[i]);
            diag("%s: max abs diff to kaiser_best in the first %zu samples (edge transient) %.2e", qn, lo, edge);
        } else {
            const float *want_y = q == CMR_RESAMPLE_TORCHAUDIO ? hann : kaiser;
            ok(ny == want, "%s: %zu samples at %g Hz -> %zu at 16 kHz (torchaudio: %zu)", qn, n, rate, ny, want);
            if (ny == want) {
                snprintf(label, sizeof label, "%s vs torchaudio %s at %g Hz, every sample", qn,
                         q == CMR_RESAMPLE_TORCHAUDIO ? "F.resample defaults" : "kaiser_best", rate);
                /* F.resample builds its kernel in float32 (the waveform's dtype), which
                 * costs it about 4e-6 at 44.1 kHz; ours is double, as transforms.Resample's */
                check_close(label, y, want_y, ny, 1e-5, 0);
            }
        }
        free(y);
    }
out:
    free(x), free(kaiser), free(hann);
}

int main(void)
{
    tap_plan_none();
    test_wrong_params();
    test_chunking(CMR_RESAMPLE_HQ, 44100, 16000);
    test_chunking(CMR_RESAMPLE_VHQ, 48000, 16000);
    test_chunking(CMR_RESAMPLE_MQ, 22050, 16000);
    test_chunking(CMR_RESAMPLE_HQ, 8000, 16000);
    test_sine(CMR_RESAMPLE_HQ, 44100, 16000, 1000, 90);
    test_sine(CMR_RESAMPLE_VHQ, 44100, 16000, 3000, 100);
    test_sine(CMR_RESAMPLE_HQ, 8000, 16000, 440, 90);
    test_sine(CMR_RESAMPLE_MQ, 48000, 16000, 1000, 80);
    test_alias();
    test_stereo();
    test_chunking(CMR_RESAMPLE_TORCHAUDIO, 44100, 16000);
    test_chunking(CMR_RESAMPLE_KAISER_BEST, 8000, 16000);
    test_torchaudio(44100, 11026);
    test_torchaudio(48000, 12001);
    test_torchaudio(8000, 2001);
    return tap_done();
}
