/* Streaming centred STFT over FFTW (see stft.h for the conventions). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "dsp/stft.h"

/* FFTW's planner is not thread-safe: every plan is made and destroyed under
 * this lock (aubio, src/spectral/fft.c: "a global mutex for FFTW thread safety") */
static pthread_mutex_t cmr_fftw_mutex = PTHREAD_MUTEX_INITIALIZER;

struct cmr_stft {
    int n_fft, hop, n_bins, power;
    float *window;       /* (n_fft) periodic Hann */
    float *frame;        /* (n_fft) windowed frame, FFT input (fftwf_malloc) */
    fftwf_complex *spec; /* (n_bins) FFT output (fftwf_malloc) */
    fftwf_plan plan;

    /* the current track: buf[0 .. buf_len) holds track samples
     * [buf_start, buf_start + buf_len); buf_start + buf_len == n_seen */
    float *buf;
    size_t buf_len, buf_cap;
    int64_t buf_start;
    int64_t n_seen;   /* samples pushed in this track */
    int64_t next_t;   /* next frame to return */
    int ended;        /* cmr_stft_end() was called */
};

struct cmr_stft_cfg cmr_stft_cfg_default(void)
{
    struct cmr_stft_cfg c = { .n_fft = 512, .hop = 256, .power = 1 };
    return c;
}

void cmr_stft_hann(float *w, int n)
{
    for (int i = 0; i < n; i++)
        w[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / n));
}

int64_t cmr_stft_track_frames(int64_t n_samples, int hop)
{
    return n_samples <= 0 ? 0 : 1 + n_samples / hop;
}

struct cmr_stft *cmr_stft_new(const struct cmr_stft_cfg *cfg, struct cmr_error *err)
{
    struct cmr_stft *st = NULL;

    if (!cfg) {
        cmr_error_set(err, CMR_EINVAL, "stft: no configuration given");
        return NULL;
    }
    if (cfg->n_fft < CMR_STFT_MIN_NFFT || cfg->n_fft > CMR_STFT_MAX_NFFT || cfg->n_fft % 2) {
        cmr_error_set(err, CMR_EINVAL, "stft: n_fft should be even and in [%d, %d], got %d",
                      CMR_STFT_MIN_NFFT, CMR_STFT_MAX_NFFT, cfg->n_fft);
        return NULL;
    }
    if (cfg->hop < 1 || cfg->hop > cfg->n_fft) {
        cmr_error_set(err, CMR_EINVAL, "stft: hop should be in [1, n_fft = %d], got %d",
                      cfg->n_fft, cfg->hop);
        return NULL;
    }
    if (cfg->power != 1 && cfg->power != 2) {
        cmr_error_set(err, CMR_EINVAL, "stft: power should be 1 or 2, got %d", cfg->power);
        return NULL;
    }
    st = calloc(1, sizeof *st);
    if (!st)
        goto nomem;
    st->n_fft = cfg->n_fft;
    st->hop = cfg->hop;
    st->power = cfg->power;
    st->n_bins = cfg->n_fft / 2 + 1;
    st->window = malloc(sizeof(float) * (size_t)st->n_fft);
    st->frame = fftwf_malloc(sizeof(float) * (size_t)st->n_fft);
    st->spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)st->n_bins);
    if (!st->window || !st->frame || !st->spec)
        goto nomem;
    cmr_stft_hann(st->window, st->n_fft);
    pthread_mutex_lock(&cmr_fftw_mutex);
    st->plan = fftwf_plan_dft_r2c_1d(st->n_fft, st->frame, st->spec, FFTW_ESTIMATE);
    pthread_mutex_unlock(&cmr_fftw_mutex);
    if (!st->plan)
        goto nomem;
    return st;

nomem:
    cmr_error_set(err, CMR_ENOMEM, "stft: out of memory for n_fft %d", cfg->n_fft);
    cmr_stft_free(st);
    return NULL;
}

void cmr_stft_free(struct cmr_stft *st)
{
    if (!st)
        return;
    if (st->plan) {
        pthread_mutex_lock(&cmr_fftw_mutex);
        fftwf_destroy_plan(st->plan);
        pthread_mutex_unlock(&cmr_fftw_mutex);
    }
    if (st->frame)
        fftwf_free(st->frame);
    if (st->spec)
        fftwf_free(st->spec);
    free(st->window);
    free(st->buf);
    free(st);
}

int cmr_stft_n_bins(const struct cmr_stft *st) { return st->n_bins; }
int64_t cmr_stft_frame_index(const struct cmr_stft *st) { return st->next_t; }

void cmr_stft_reset(struct cmr_stft *st)
{
    st->buf_len = 0;
    st->buf_start = 0;
    st->n_seen = 0;
    st->next_t = 0;
    st->ended = 0;
}

/* the first track sample frames from next_t on can touch: one before the
 * frame start, for the right reflection of a frame centred on the last
 * sample (x[L-1+k] = x[L-1-k] reaches x[s-1] when t*hop == L) */
static int64_t keep_from(const struct cmr_stft *st)
{
    int64_t s = st->next_t * st->hop - st->n_fft / 2 - 1;
    return s > 0 ? s : 0;
}

int cmr_stft_push(struct cmr_stft *st, const float *in, size_t n, struct cmr_error *err)
{
    if (st->ended)
        return cmr_error_set(err, CMR_ESTATE, "stft: samples pushed after the end of the track");
    if (n == 0)
        return CMR_OK;
    /* drop the samples no future frame needs, when that frees room */
    int64_t k = keep_from(st);
    size_t drop = k > st->buf_start ? (size_t)(k - st->buf_start) : 0;
    if (drop > st->buf_len)
        drop = st->buf_len;
    if (drop && st->buf_len + n > st->buf_cap) {
        memmove(st->buf, st->buf + drop, sizeof(float) * (st->buf_len - drop));
        st->buf_len -= drop;
        st->buf_start += (int64_t)drop;
    }
    if (st->buf_len + n > st->buf_cap) {
        size_t cap = st->buf_cap ? st->buf_cap : 4096;
        while (cap < st->buf_len + n) {
            if (cap > SIZE_MAX / 2 / sizeof(float))
                return cmr_error_set(err, CMR_ENOMEM, "stft: chunk of %zu samples too large", n);
            cap *= 2;
        }
        float *b = realloc(st->buf, sizeof(float) * cap);
        if (!b)
            return cmr_error_set(err, CMR_ENOMEM, "stft: out of memory for %zu samples", cap);
        st->buf = b;
        st->buf_cap = cap;
    }
    memcpy(st->buf + st->buf_len, in, sizeof(float) * n);
    st->buf_len += n;
    st->n_seen += (int64_t)n;
    return CMR_OK;
}

void cmr_stft_end(struct cmr_stft *st) { st->ended = 1; }

/* frames ready when n_seen samples are known */
static int64_t ready_upto(const struct cmr_stft *st, int64_t n_seen, int ended)
{
    if (ended)
        return cmr_stft_track_frames(n_seen, st->hop);
    /* frame t needs samples up to t*hop + n_fft/2 - 1, and frame 0's left
     * reflection needs sample n_fft/2 */
    int64_t need = n_seen - st->n_fft / 2 - 1;
    return need < 0 ? 0 : need / st->hop + 1;
}

size_t cmr_stft_ready(const struct cmr_stft *st, size_t n)
{
    int64_t upto = ready_upto(st, st->n_seen + (st->ended ? 0 : (int64_t)n), st->ended);
    return upto > st->next_t ? (size_t)(upto - st->next_t) : 0;
}

size_t cmr_stft_left(const struct cmr_stft *st)
{
    int64_t upto = ready_upto(st, st->n_seen, 1);
    return upto > st->next_t ? (size_t)(upto - st->next_t) : 0;
}

/* track index i (any integer) -> index in [0, L): numpy.pad "reflect" */
static int64_t reflect(int64_t i, int64_t L)
{
    if (L == 1)
        return 0;
    int64_t p = 2 * (L - 1);
    i %= p;
    if (i < 0)
        i += p;
    return i >= L ? p - i : i;
}

/* FFT of st->frame (already windowed), |X|^power into out */
static void transform(struct cmr_stft *st, float *out)
{
    fftwf_execute(st->plan);
    const fftwf_complex *X = st->spec;
    if (st->power == 2)
        for (int k = 0; k < st->n_bins; k++)
            out[k] = X[k][0] * X[k][0] + X[k][1] * X[k][1];
    else
        for (int k = 0; k < st->n_bins; k++)
            out[k] = sqrtf(X[k][0] * X[k][0] + X[k][1] * X[k][1]);
}

void cmr_stft_spectrum(struct cmr_stft *st, const float *frame, float *out)
{
    for (int i = 0; i < st->n_fft; i++)
        st->frame[i] = frame[i] * st->window[i];
    transform(st, out);
}

int cmr_stft_next(struct cmr_stft *st, float *out)
{
    if (st->next_t >= ready_upto(st, st->n_seen, st->ended))
        return 0;
    const int n = st->n_fft;
    const int64_t L = st->n_seen;
    const int64_t s = st->next_t * st->hop - n / 2;
    const float *w = st->window;
    float *f = st->frame;
    if (s >= st->buf_start && s + n <= L) {
        /* the common case: the whole frame is inside the track */
        const float *x = st->buf + (s - st->buf_start);
        for (int i = 0; i < n; i++)
            f[i] = x[i] * w[i];
    } else {
        for (int i = 0; i < n; i++) {
            int64_t j = reflect(s + i, L) - st->buf_start;
            /* keep_from() guarantees the reflected sample is still buffered */
            f[i] = (j >= 0 && (size_t)j < st->buf_len ? st->buf[j] : 0.0f) * w[i];
        }
    }
    transform(st, out);
    st->next_t++;
    return 1;
}
