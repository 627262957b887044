/* Log-mel spectrogram over the streaming STFT (see mel.h for the maths). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/mel.h"
#include "dsp/stft.h"
#include "frame.h"

struct cmr_mel {
    struct cmr_mel_cfg cfg;
    struct cmr_stft *stft;
    int n_bins;
    /* sparse filterbank: band j weights w[off[j] .. off[j] + len[j]) apply to
     * spectrum bins lo[j] .. lo[j] + len[j] */
    int *lo, *len, *off;
    float *w;
    int n_empty;
    float *spec; /* (n_bins) one spectrum, scratch */
};

struct cmr_mel_cfg cmr_mel_cfg_default(void)
{
    struct cmr_mel_cfg c = {
        .sample_rate = 16000, .n_fft = 512, .hop = 256, .n_mels = 96,
        .f_min = 0, .f_max = 8000, .power = 1,
        .scale = CMR_MEL_SCALE_SLANEY, .norm = CMR_MEL_NORM_SLANEY, .log = CMR_MEL_LOG_1P,
    };
    return c;
}

struct cmr_mel_cfg cmr_mel_cfg_htk(void)
{
    struct cmr_mel_cfg c = cmr_mel_cfg_default();
    c.power = 2;
    c.scale = CMR_MEL_SCALE_HTK;
    c.norm = CMR_MEL_NORM_NONE;
    c.log = CMR_MEL_LOG_NONE;
    return c;
}

/* ref: torchaudio 0.13.1 functional/functional.py _hz_to_mel / _mel_to_hz,
 * from librosa core/convert.py hz_to_mel / mel_to_hz */
#define SLANEY_F_SP (200.0 / 3.0)
#define SLANEY_MIN_LOG_HZ 1000.0
#define SLANEY_MIN_LOG_MEL (SLANEY_MIN_LOG_HZ / SLANEY_F_SP)
#define SLANEY_LOGSTEP (log(6.4) / 27.0)

double cmr_mel_hz_to_mel(double hz, enum cmr_mel_scale scale)
{
    if (scale == CMR_MEL_SCALE_HTK)
        return 2595.0 * log10(1.0 + hz / 700.0);
    if (hz >= SLANEY_MIN_LOG_HZ)
        return SLANEY_MIN_LOG_MEL + log(hz / SLANEY_MIN_LOG_HZ) / SLANEY_LOGSTEP;
    return hz / SLANEY_F_SP;
}

double cmr_mel_mel_to_hz(double mel, enum cmr_mel_scale scale)
{
    if (scale == CMR_MEL_SCALE_HTK)
        return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
    if (mel >= SLANEY_MIN_LOG_MEL)
        return SLANEY_MIN_LOG_HZ * exp(SLANEY_LOGSTEP * (mel - SLANEY_MIN_LOG_MEL));
    return mel * SLANEY_F_SP;
}

int cmr_mel_cfg_check(const struct cmr_mel_cfg *c, struct cmr_error *err)
{
    if (!c)
        return cmr_error_set(err, CMR_EINVAL, "mel: no configuration given");
    if (!(c->sample_rate >= CMR_RATE_MIN && c->sample_rate <= CMR_RATE_MAX))
        return cmr_error_set(err, CMR_EINVAL, "mel: sample_rate should be in [1000, 768000] Hz, got %g",
                             c->sample_rate);
    if (c->n_fft < CMR_STFT_MIN_NFFT || c->n_fft > CMR_STFT_MAX_NFFT || c->n_fft % 2)
        return cmr_error_set(err, CMR_EINVAL, "mel: n_fft should be even and in [%d, %d], got %d",
                             CMR_STFT_MIN_NFFT, CMR_STFT_MAX_NFFT, c->n_fft);
    if (c->hop < 1 || c->hop > c->n_fft)
        return cmr_error_set(err, CMR_EINVAL, "mel: hop should be in [1, n_fft = %d], got %d",
                             c->n_fft, c->hop);
    if (c->n_mels < 1 || c->n_mels > CMR_MEL_MAX_MELS)
        return cmr_error_set(err, CMR_EINVAL, "mel: n_mels should be in [1, %d], got %d",
                             CMR_MEL_MAX_MELS, c->n_mels);
    if (!(c->f_min >= 0 && c->f_min < c->sample_rate / 2))
        return cmr_error_set(err, CMR_EINVAL, "mel: f_min should be in [0, %g) Hz, got %g",
                             c->sample_rate / 2, c->f_min);
    if (!(c->f_max > c->f_min && c->f_max <= c->sample_rate / 2))
        return cmr_error_set(err, CMR_EINVAL, "mel: f_max should be in (%g, %g] Hz, got %g",
                             c->f_min, c->sample_rate / 2, c->f_max);
    if (c->power != 1 && c->power != 2)
        return cmr_error_set(err, CMR_EINVAL, "mel: power should be 1 or 2, got %d", c->power);
    if (c->scale != CMR_MEL_SCALE_SLANEY && c->scale != CMR_MEL_SCALE_HTK)
        return cmr_error_set(err, CMR_EINVAL, "mel: unknown mel scale %d", (int)c->scale);
    if (c->norm != CMR_MEL_NORM_NONE && c->norm != CMR_MEL_NORM_SLANEY)
        return cmr_error_set(err, CMR_EINVAL, "mel: unknown normalisation %d", (int)c->norm);
    if (c->log != CMR_MEL_LOG_NONE && c->log != CMR_MEL_LOG_1P && c->log != CMR_MEL_LOG_DB)
        return cmr_error_set(err, CMR_EINVAL, "mel: unknown log compression %d", (int)c->log);
    return CMR_OK;
}

static const char *log_name(enum cmr_mel_log log)
{
    switch (log) {
    case CMR_MEL_LOG_1P: return "log10(1+10x)";
    case CMR_MEL_LOG_DB: return "10log10(max(x,1e-10))";
    default: return "none";
    }
}

const char *cmr_mel_cfg_describe(const struct cmr_mel_cfg *c, char *buf, size_t size)
{
    snprintf(buf, size, "sr=%.17g n_fft=%d hop=%d n_mels=%d f_min=%.17g f_max=%.17g power=%d "
             "scale=%s norm=%s log=%s", c->sample_rate, c->n_fft, c->hop, c->n_mels, c->f_min,
             c->f_max, c->power, c->scale == CMR_MEL_SCALE_HTK ? "htk" : "slaney",
             c->norm == CMR_MEL_NORM_SLANEY ? "slaney" : "none", log_name(c->log));
    return buf;
}

/* weight of bin frequency f in band j, from the band edge points p (n_mels + 2) */
static double band_weight(const double *p, int j, double f, enum cmr_mel_norm norm)
{
    /* ref: torchaudio _create_triangular_filterbank and melscale_fbanks */
    double down = (f - p[j]) / (p[j + 1] - p[j]);
    double up = (p[j + 2] - f) / (p[j + 2] - p[j + 1]);
    double w = fmax(0.0, fmin(down, up));
    if (norm == CMR_MEL_NORM_SLANEY)
        w *= 2.0 / (p[j + 2] - p[j]);
    return w;
}

/* band edge points in Hz, p (n_mels + 2) */
static void edge_points(const struct cmr_mel_cfg *c, double *p)
{
    double m_min = cmr_mel_hz_to_mel(c->f_min, c->scale);
    double m_max = cmr_mel_hz_to_mel(c->f_max, c->scale);
    for (int i = 0; i < c->n_mels + 2; i++)
        p[i] = cmr_mel_mel_to_hz(m_min + i * (m_max - m_min) / (c->n_mels + 1), c->scale);
}

static double bin_hz(const struct cmr_mel_cfg *c, int k)
{
    return k * (c->sample_rate / 2) / (c->n_fft / 2);
}

int cmr_mel_filterbank(const struct cmr_mel_cfg *c, float *fb, struct cmr_error *err)
{
    int rc = cmr_mel_cfg_check(c, err);
    if (rc)
        return rc;
    double *p = malloc(sizeof(double) * (size_t)(c->n_mels + 2));
    if (!p)
        return cmr_error_set(err, CMR_ENOMEM, "mel: out of memory");
    edge_points(c, p);
    int n_bins = c->n_fft / 2 + 1;
    for (int j = 0; j < c->n_mels; j++)
        for (int k = 0; k < n_bins; k++)
            fb[(size_t)j * n_bins + k] = (float)band_weight(p, j, bin_hz(c, k), c->norm);
    free(p);
    return CMR_OK;
}

void cmr_mel_compress(float *x, size_t n, enum cmr_mel_log log)
{
    switch (log) {
    case CMR_MEL_LOG_1P:
        for (size_t i = 0; i < n; i++)
            x[i] = log10f(1.0f + CMR_MEL_LOG_GAIN * x[i]);
        break;
    case CMR_MEL_LOG_DB:
        for (size_t i = 0; i < n; i++)
            x[i] = 10.0f * log10f(fmaxf(x[i], CMR_MEL_DB_AMIN));
        break;
    default:
        break;
    }
}

struct cmr_mel *cmr_mel_new(const struct cmr_mel_cfg *cfg, struct cmr_error *err)
{
    struct cmr_mel *m = NULL;
    float *dense = NULL;

    if (cmr_mel_cfg_check(cfg, err))
        return NULL;
    m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    m->cfg = *cfg;
    struct cmr_stft_cfg sc = { .n_fft = cfg->n_fft, .hop = cfg->hop, .power = cfg->power };
    m->stft = cmr_stft_new(&sc, err);
    if (!m->stft)
        goto failure;
    m->n_bins = cmr_stft_n_bins(m->stft);
    int nm = cfg->n_mels, nb = m->n_bins;
    m->lo = malloc(sizeof(int) * (size_t)nm);
    m->len = malloc(sizeof(int) * (size_t)nm);
    m->off = malloc(sizeof(int) * (size_t)nm);
    m->spec = malloc(sizeof(float) * (size_t)nb);
    dense = malloc(sizeof(float) * (size_t)nm * (size_t)nb);
    if (!m->lo || !m->len || !m->off || !m->spec || !dense)
        goto nomem;
    if (cmr_mel_filterbank(cfg, dense, err))
        goto failure;
    /* keep each band's run from its first to its last nonzero bin */
    size_t total = 0;
    for (int j = 0; j < nm; j++) {
        const float *row = dense + (size_t)j * nb;
        int a = 0, b = nb - 1;
        while (a < nb && row[a] == 0.0f)
            a++;
        while (b >= a && row[b] == 0.0f)
            b--;
        m->lo[j] = a < nb ? a : 0;
        m->len[j] = a < nb ? b - a + 1 : 0;
        m->off[j] = (int)total;
        total += (size_t)m->len[j];
        if (m->len[j] == 0)
            m->n_empty++;
    }
    m->w = malloc(sizeof(float) * (total ? total : 1));
    if (!m->w)
        goto nomem;
    for (int j = 0; j < nm; j++)
        memcpy(m->w + m->off[j], dense + (size_t)j * nb + m->lo[j], sizeof(float) * (size_t)m->len[j]);
    free(dense);
    return m;

nomem:
    cmr_error_set(err, CMR_ENOMEM, "mel: out of memory");
failure:
    free(dense);
    cmr_mel_free(m);
    return NULL;
}

void cmr_mel_free(struct cmr_mel *m)
{
    if (!m)
        return;
    cmr_stft_free(m->stft);
    free(m->lo);
    free(m->len);
    free(m->off);
    free(m->w);
    free(m->spec);
    free(m);
}

int cmr_mel_n_mels(const struct cmr_mel *m) { return m->cfg.n_mels; }
int cmr_mel_empty_filters(const struct cmr_mel *m) { return m->n_empty; }

int cmr_mel_push(struct cmr_mel *m, const float *in, size_t n, struct cmr_error *err)
{
    return cmr_stft_push(m->stft, in, n, err);
}

void cmr_mel_end(struct cmr_mel *m) { cmr_stft_end(m->stft); }
void cmr_mel_reset(struct cmr_mel *m) { cmr_stft_reset(m->stft); }
size_t cmr_mel_ready(const struct cmr_mel *m, size_t n) { return cmr_stft_ready(m->stft, n); }
int64_t cmr_mel_frame_index(const struct cmr_mel *m) { return cmr_stft_frame_index(m->stft); }

int cmr_mel_next(struct cmr_mel *m, float *out)
{
    if (!cmr_stft_next(m->stft, m->spec))
        return 0;
    const float *s = m->spec;
    for (int j = 0; j < m->cfg.n_mels; j++) {
        const float *w = m->w + m->off[j];
        const float *x = s + m->lo[j];
        float acc = 0.0f;
        for (int k = 0; k < m->len[j]; k++)
            acc += w[k] * x[k];
        out[j] = acc;
    }
    cmr_mel_compress(out, (size_t)m->cfg.n_mels, m->cfg.log);
    return 1;
}

/* the first non-finite value of x[0..n), or -1 */
static long first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return (long)i;
    return -1;
}

int cmr_mel_take(struct cmr_mel *m, float *out, struct cmr_error *err)
{
    if (!cmr_mel_next(m, out))
        return 0;
    long j = first_nonfinite(out, (size_t)m->cfg.n_mels);
    if (j < 0)
        return 1;
    int64_t k = cmr_mel_frame_index(m) - 1;
    return cmr_error_set(err, CMR_ENAN, "mel: frame %lld (%.3f s into the track), band %ld is %s: the audio is "
                         "too loud for float32 arithmetic (or not finite)", (long long)k,
                         (double)k * m->cfg.hop / m->cfg.sample_rate, j, isnan(out[j]) ? "nan" : "infinite");
}

int cmr_mel_process(struct cmr_mel *m, const float *in, size_t n, float *out, size_t cap,
                    size_t *n_out, struct cmr_error *err)
{
    *n_out = 0;
    size_t want = cmr_mel_ready(m, n);
    if (want > cap)
        return cmr_error_set(err, CMR_EINVAL, "mel: output has room for %zu frames, %zu needed",
                             cap, want);
    int rc = cmr_mel_push(m, in, n, err);
    if (rc)
        return rc;
    while (*n_out < cap && (rc = cmr_mel_take(m, out + *n_out * (size_t)m->cfg.n_mels, err)) == 1)
        (*n_out)++;
    return rc < 0 ? rc : CMR_OK;
}

size_t cmr_mel_flush_frames(const struct cmr_mel *m)
{
    return cmr_stft_left(m->stft);
}

int cmr_mel_flush(struct cmr_mel *m, float *out, size_t cap, size_t *n_out, struct cmr_error *err)
{
    *n_out = 0;
    size_t want = cmr_mel_flush_frames(m);
    if (want > cap)
        return cmr_error_set(err, CMR_EINVAL, "mel: output has room for %zu frames, %zu needed",
                             cap, want);
    cmr_mel_end(m);
    int rc = 0;
    while (*n_out < cap && (rc = cmr_mel_take(m, out + *n_out * (size_t)m->cfg.n_mels, err)) == 1)
        (*n_out)++;
    cmr_mel_reset(m);
    return rc < 0 ? rc : CMR_OK;
}
