/* The embedding API (cmr-embed.h): the filter chain cmr-resample | cmr-mel |
 * cmr-segment | cmr-encode in one object, from the same lib/ pieces. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmr-embed.h"
#include "dsp/mel.h"
#include "dsp/resample.h"
#include "frame.h"
#include "model.h"
#include "stream/encoder.h"
#include "stream/segmenter.h"

#define OUT_MAX ((double)(1 << 20)) /* resampler output per call, at most (about): as cmr-resample */

struct cmr_embedder {
    double rate;
    int channels;
    struct cmr_model *m;
    struct cmr_resample *rs;      /* NULL when the rate is 16 kHz already */
    struct cmr_mel *mel;
    struct cmr_segmenter *seg;
    struct cmr_encoder *enc;
    int dim;
    double frame_s;               /* seconds from one mel frame to the next */
    float *mono;                  /* downmixed input */
    size_t mono_cap;
    float *rows;                  /* mel frames ready, n_mels each */
    size_t rows_cap;
    int64_t mel_rows;             /* mel frames of the track so far */
    int64_t samples;              /* 16 kHz samples of the track so far */
    int64_t *starts;              /* (batch) start frame of each queued segment */
    float *out;                   /* embeddings not taken: (cap_out, dim) */
    int64_t *out_start;
    size_t n_out, head, cap_out;
};

struct cmr_embedder_cfg cmr_embedder_cfg_default(void)
{
    struct cmr_embedder_cfg cfg = {0};
    cfg.batch = 16;
    cfg.threads = 1;
    return cfg;
}

void cmr_embedder_free(struct cmr_embedder *e)
{
    if (!e)
        return;
    cmr_encoder_free(e->enc);
    cmr_segmenter_free(e->seg);
    cmr_mel_free(e->mel);
    cmr_resample_free(e->rs);
    cmr_model_free(e->m);
    free(e->mono);
    free(e->rows);
    free(e->starts);
    free(e->out);
    free(e->out_start);
    free(e);
}

/* the pieces, once the model is in */
static int build(struct cmr_embedder *e, const struct cmr_embedder_cfg *c, struct cmr_error *err)
{
    struct cmr_mel_cfg mc = cmr_mel_cfg_default();
    struct cmr_segmenter_cfg sc;
    if (e->m->cfg.n_freq != mc.n_mels)
        return cmr_error_set(err, CMR_EMODEL, "embedder: the model takes %d mel bands, the front end makes %d",
                             e->m->cfg.n_freq, mc.n_mels);
    if (e->rate != mc.sample_rate) {
        struct cmr_resample_cfg rc = cmr_resample_cfg_default();
        rc.in_rate = e->rate;
        rc.out_rate = mc.sample_rate;
        if (!(e->rs = cmr_resample_new(&rc, err)))
            return err ? err->code : CMR_EINVAL;
    }
    if (!(e->mel = cmr_mel_new(&mc, err)))
        return err ? err->code : CMR_EINVAL;
    sc = cmr_segmenter_cfg_default();
    sc.frames = e->m->cfg.n_time;
    sc.hop = c->hop;
    sc.pad = c->pad;
    if (!(e->seg = cmr_segmenter_new(&sc, err)) || !(e->enc = cmr_encoder_new(e->m, c->batch, c->threads, err)))
        return err ? err->code : CMR_EINVAL;
    e->dim = cmr_encoder_dim(e->enc);
    e->frame_s = mc.hop / mc.sample_rate;
    if (!(e->starts = malloc((size_t)c->batch * sizeof *e->starts)))
        return cmr_error_set(err, CMR_ENOMEM, "embedder: out of memory");
    return CMR_OK;
}

struct cmr_embedder *cmr_embedder_new(const char *model_path, double sample_rate, int channels,
                                      const struct cmr_embedder_cfg *cfg, struct cmr_error *err)
{
    struct cmr_embedder_cfg def;
    struct cmr_embedder *e;
    if (!cfg) {
        def = cmr_embedder_cfg_default();
        cfg = &def;
    }
    if (!model_path || !(sample_rate >= CMR_RATE_MIN && sample_rate <= CMR_RATE_MAX) || channels < 1 ||
        channels > CMR_AUDIO_MAX_CHANNELS || cfg->hop < 0 || cfg->hop > 1000000)
        return cmr_error_set(err, CMR_EINVAL, "embedder: a model path, a rate in [%g, %g] Hz, 1 to %d channels "
                             "and a hop in [0, 1000000] are needed, got %g Hz, %d channels, hop %d",
                             (double)CMR_RATE_MIN, (double)CMR_RATE_MAX, CMR_AUDIO_MAX_CHANNELS, sample_rate,
                             channels, cfg->hop), NULL;
    if (!(e = calloc(1, sizeof *e)))
        return cmr_error_set(err, CMR_ENOMEM, "embedder: out of memory"), NULL;
    e->rate = sample_rate;
    e->channels = channels;
    if (!(e->m = cmr_model_load(model_path, err)) || build(e, cfg, err) != CMR_OK) {
        cmr_embedder_free(e);
        return NULL;
    }
    return e;
}

int cmr_embedder_dim(const struct cmr_embedder *e)
{
    return e->dim;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 64;
    void *q;
    if (need <= *cap)
        return CMR_OK;
    while (c < need)
        c *= 2;
    if (!(q = realloc(*p, c * size)))
        return CMR_ENOMEM;
    *p = q;
    *cap = c;
    return CMR_OK;
}

/* runs the queued segments and keeps their embeddings for next() */
static int run(struct cmr_embedder *e, struct cmr_error *err)
{
    const float *v;
    int n, rc = cmr_encoder_run(e->enc, &v, &n, err);
    size_t cap = e->cap_out;
    if (rc != CMR_OK)
        return rc;
    if (n == 0) /* nothing ran (v may be NULL) */
        return CMR_OK;
    if (e->head > 0) { /* drop the embeddings taken */
        memmove(e->out, e->out + e->head * (size_t)e->dim, (e->n_out - e->head) * (size_t)e->dim * sizeof(float));
        memmove(e->out_start, e->out_start + e->head, (e->n_out - e->head) * sizeof(int64_t));
        e->n_out -= e->head;
        e->head = 0;
    }
    if (grow((void **)&e->out, &cap, e->n_out + (size_t)n, (size_t)e->dim * sizeof(float)) ||
        grow((void **)&e->out_start, &e->cap_out, e->n_out + (size_t)n, sizeof(int64_t)))
        return cmr_error_set(err, CMR_ENOMEM, "embedder: out of memory");
    memcpy(e->out + e->n_out * (size_t)e->dim, v, (size_t)n * (size_t)e->dim * sizeof(float));
    memcpy(e->out_start + e->n_out, e->starts, (size_t)n * sizeof(int64_t));
    e->n_out += (size_t)n;
    return CMR_OK;
}

/* the segments the segmenter has ready to the encoder, running full batches */
static int queue_ready(struct cmr_embedder *e, struct cmr_error *err)
{
    struct cmr_segment u;
    int rc;
    while (cmr_segmenter_ready(e->seg)) {
        cmr_segmenter_next(e->seg, cmr_encoder_slot(e->enc), &u);
        e->starts[cmr_encoder_queued(e->enc)] = u.start;
        if (cmr_encoder_commit(e->enc) == cmr_encoder_batch(e->enc) && (rc = run(e, err)) != CMR_OK)
            return rc;
    }
    return CMR_OK;
}

/* n mel frames in e->rows to the segmenter (as cmr-segment does) and on */
static int segment(struct cmr_embedder *e, size_t n, struct cmr_error *err)
{
    int rc = cmr_segmenter_push(e->seg, e->rows, (int64_t)n, cmr_mel_n_mels(e->mel), e->mel_rows, NULL, err);
    if (rc != CMR_OK)
        return rc;
    e->mel_rows += (int64_t)n;
    return queue_ready(e, err);
}

/* n samples at 16 kHz through the spectrogram (as cmr-mel does) and on */
static int spectrogram(struct cmr_embedder *e, const float *x, size_t n, struct cmr_error *err)
{
    size_t ready = cmr_mel_ready(e->mel, n), got = 0;
    size_t width = (size_t)cmr_mel_n_mels(e->mel);
    int rc;
    if (grow((void **)&e->rows, &e->rows_cap, ready, width * sizeof(float)))
        return cmr_error_set(err, CMR_ENOMEM, "embedder: out of memory");
    if ((rc = cmr_mel_process(e->mel, x, n, e->rows, e->rows_cap, &got, err)) != CMR_OK)
        return rc;
    e->samples += (int64_t)n;
    return got ? segment(e, got, err) : CMR_OK;
}

/* mono samples at the input rate to 16 kHz (as cmr-resample does) and on */
static int resample(struct cmr_embedder *e, const float *x, size_t n, struct cmr_error *err)
{
    size_t piece = (size_t)(OUT_MAX / ceil(cmr_mel_cfg_default().sample_rate / e->rate));
    const float *y;
    size_t ny;
    int rc;
    if (!e->rs)
        return spectrogram(e, x, n, err);
    if (piece < 1)
        piece = 1;
    for (size_t pos = 0; pos < n; pos += piece) {
        size_t k = n - pos < piece ? n - pos : piece;
        if ((rc = cmr_resample_process(e->rs, x + pos, k, &y, &ny, err)) != CMR_OK ||
            (ny && (rc = spectrogram(e, y, ny, err)) != CMR_OK))
            return rc;
    }
    return CMR_OK;
}

int cmr_embedder_push(struct cmr_embedder *e, const float *pcm, size_t n, struct cmr_error *err)
{
    size_t ch = (size_t)e->channels;
    if (n == 0)
        return CMR_OK;
    if (!cmr_all_finite(pcm, n * ch))
        return cmr_error_set(err, CMR_ENAN, "embedder: a sample is not finite");
    if (grow((void **)&e->mono, &e->mono_cap, n, sizeof(float)))
        return cmr_error_set(err, CMR_ENOMEM, "embedder: out of memory");
    /* downmix: mean of the channels (cmr-resample) */
    if (ch == 1) {
        memcpy(e->mono, pcm, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) {
            float acc = 0;
            for (size_t c = 0; c < ch; c++)
                acc += pcm[i * ch + c];
            e->mono[i] = acc / (float)ch;
        }
    }
    return resample(e, e->mono, n, err);
}

int cmr_embedder_finish(struct cmr_embedder *e, struct cmr_error *err)
{
    const float *y;
    size_t ny, got = 0;
    int rc = CMR_OK;
    if (e->rs && (rc = cmr_resample_drain(e->rs, &y, &ny, err)) == CMR_OK && ny)
        rc = spectrogram(e, y, ny, err);
    if (rc == CMR_OK && e->samples > 0) {
        /* the spectrogram's last frames, padded as at the end of a track */
        if (grow((void **)&e->rows, &e->rows_cap, cmr_mel_flush_frames(e->mel),
                 (size_t)cmr_mel_n_mels(e->mel) * sizeof(float)))
            return cmr_error_set(err, CMR_ENOMEM, "embedder: out of memory");
        if ((rc = cmr_mel_flush(e->mel, e->rows, e->rows_cap, &got, err)) == CMR_OK && got)
            rc = segment(e, got, err);
    }
    if (rc == CMR_OK) {
        cmr_segmenter_drain(e->seg);
        rc = queue_ready(e, err);
    }
    if (rc == CMR_OK)
        rc = run(e, err);
    if (rc != CMR_OK)
        return rc;
    /* the next track starts afresh; the embeddings not taken stay */
    cmr_encoder_end_run(e->enc);
    cmr_segmenter_reset(e->seg);
    cmr_mel_reset(e->mel);
    e->mel_rows = e->samples = 0;
    return e->rs ? cmr_resample_reset(e->rs, err) : CMR_OK;
}

int cmr_embedder_next(struct cmr_embedder *e, float *out, double *start_s)
{
    if (e->head == e->n_out)
        return 0;
    memcpy(out, e->out + e->head * (size_t)e->dim, (size_t)e->dim * sizeof(float));
    if (start_s)
        *start_s = (double)e->out_start[e->head] * e->frame_s;
    e->head++;
    return 1;
}

void cmr_embedder_reset(struct cmr_embedder *e)
{
    cmr_encoder_reset(e->enc);
    cmr_segmenter_reset(e->seg);
    cmr_mel_reset(e->mel);
    if (e->rs)
        cmr_resample_reset(e->rs, NULL);
    e->mel_rows = e->samples = 0;
    e->head = e->n_out = 0;
}
