#include "dsp/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <soxr.h>

struct cmr_resample {
    struct cmr_resample_cfg cfg;
    soxr_t soxr;
    float *buf;     /* output, cap sample frames */
    size_t cap;
    int drained;
};

struct cmr_resample_cfg cmr_resample_cfg_default(void)
{
    struct cmr_resample_cfg c = {.in_rate = 0, .out_rate = 16000, .channels = 1,
                                 .quality = CMR_RESAMPLE_HQ};
    return c;
}

static const char *const quality_names[] = {"mq", "hq", "vhq"};

int cmr_resample_quality_parse(const char *name, enum cmr_resample_quality *q)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, quality_names[i]) == 0) {
            *q = (enum cmr_resample_quality)i;
            return CMR_OK;
        }
    return CMR_EINVAL;
}

const char *cmr_resample_quality_name(enum cmr_resample_quality q)
{
    return (q >= CMR_RESAMPLE_MQ && q <= CMR_RESAMPLE_VHQ) ? quality_names[q] : "?";
}

static const unsigned long soxr_recipe[] = {SOXR_MQ, SOXR_HQ, SOXR_VHQ};

static int make_soxr(struct cmr_resample *r, struct cmr_error *err)
{
    soxr_error_t e = NULL;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t qs = soxr_quality_spec(soxr_recipe[r->cfg.quality], 0);
    soxr_runtime_spec_t rs = soxr_runtime_spec(1);

    r->soxr = soxr_create(r->cfg.in_rate, r->cfg.out_rate, (unsigned)r->cfg.channels, &e, &io,
                          &qs, &rs);
    if (!r->soxr || e)
        return cmr_error_set(err, CMR_EINVAL, "resample: soxr_create(%g -> %g Hz): %s",
                             r->cfg.in_rate, r->cfg.out_rate, e ? e : "failed");
    r->drained = 0;
    return CMR_OK;
}

struct cmr_resample *cmr_resample_new(const struct cmr_resample_cfg *cfg, struct cmr_error *err)
{
    struct cmr_resample *r;

    if (!cfg || !(cfg->in_rate > 0) || !(cfg->out_rate > 0) || !isfinite(cfg->in_rate) ||
        !isfinite(cfg->out_rate) || cfg->in_rate > 1e7 || cfg->out_rate > 1e7) {
        cmr_error_set(err, CMR_EINVAL, "resample: rates should be in (0, 1e7] Hz, got %g -> %g",
                      cfg ? cfg->in_rate : 0.0, cfg ? cfg->out_rate : 0.0);
        return NULL;
    }
    if (cfg->channels < 1 || cfg->channels > 256) {
        cmr_error_set(err, CMR_EINVAL, "resample: channels should be in [1, 256], got %d",
                      cfg->channels);
        return NULL;
    }
    if (cfg->quality < CMR_RESAMPLE_MQ || cfg->quality > CMR_RESAMPLE_VHQ) {
        cmr_error_set(err, CMR_EINVAL, "resample: unknown quality %d", (int)cfg->quality);
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        cmr_error_set(err, CMR_ENOMEM, "resample: out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    if (make_soxr(r, err) != CMR_OK) {
        cmr_resample_free(r);
        return NULL;
    }
    return r;
}

static int grow(struct cmr_resample *r, size_t need, struct cmr_error *err)
{
    float *p;
    size_t cap = r->cap ? r->cap : 4096;

    if (need <= r->cap)
        return CMR_OK;
    while (cap < need)
        cap *= 2;
    p = realloc(r->buf, cap * (size_t)r->cfg.channels * sizeof *p);
    if (!p)
        return cmr_error_set(err, CMR_ENOMEM, "resample: out of memory");
    r->buf = p;
    r->cap = cap;
    return CMR_OK;
}

/* runs soxr until it has taken all of in[0..n) (in == NULL: flush until empty) */
static int run(struct cmr_resample *r, const float *in, size_t n, const float **out,
               size_t *n_out, struct cmr_error *err)
{
    size_t pos = 0, done = 0;
    double ratio = r->cfg.out_rate / r->cfg.in_rate;
    size_t ch = (size_t)r->cfg.channels;
    int rc;

    *out = NULL;
    *n_out = 0;
    /* room for this chunk's share of output plus soxr's latency; grown if short */
    if ((rc = grow(r, (size_t)ceil((double)n * ratio) + 1024, err)) != CMR_OK)
        return rc;
    for (;;) {
        size_t idone = 0, odone = 0;
        soxr_error_t e;
        if (r->cap - done < 256 && (rc = grow(r, r->cap * 2, err)) != CMR_OK)
            return rc;
        if (in)
            e = soxr_process(r->soxr, in + pos * ch, n - pos, &idone, r->buf + done * ch,
                             r->cap - done, &odone);
        else
            e = soxr_process(r->soxr, NULL, 0, NULL, r->buf + done * ch, r->cap - done, &odone);
        if (e)
            return cmr_error_set(err, CMR_EIO, "resample: soxr_process: %s", e);
        pos += idone;
        done += odone;
        if (in && pos >= n && odone < r->cap - (done - odone))
            break;     /* all input taken and soxr did not fill the buffer */
        if (!in && odone == 0)
            break;     /* flushed */
    }
    *out = r->buf;
    *n_out = done;
    return CMR_OK;
}

int cmr_resample_process(struct cmr_resample *r, const float *in, size_t n,
                         const float **out, size_t *n_out, struct cmr_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (!r || (!in && n))
        return cmr_error_set(err, CMR_EINVAL, "resample: process needs an object and input");
    if (r->drained)
        return cmr_error_set(err, CMR_ESTATE, "resample: process after drain (reset first)");
    if (n == 0)
        return CMR_OK;
    return run(r, in, n, out, n_out, err);
}

int cmr_resample_drain(struct cmr_resample *r, const float **out, size_t *n_out,
                       struct cmr_error *err)
{
    int rc;
    *out = NULL;
    *n_out = 0;
    if (!r)
        return cmr_error_set(err, CMR_EINVAL, "resample: drain needs an object");
    if (r->drained)
        return cmr_error_set(err, CMR_ESTATE, "resample: drained twice (reset first)");
    rc = run(r, NULL, 0, out, n_out, err);
    r->drained = 1;
    return rc;
}

int cmr_resample_reset(struct cmr_resample *r, struct cmr_error *err)
{
    soxr_error_t e;
    if (!r)
        return cmr_error_set(err, CMR_EINVAL, "resample: reset needs an object");
    e = soxr_clear(r->soxr);
    if (e) {
        /* soxr_clear failed: make a fresh resampler instead */
        soxr_delete(r->soxr);
        r->soxr = NULL;
        return make_soxr(r, err);
    }
    r->drained = 0;
    return CMR_OK;
}

void cmr_resample_free(struct cmr_resample *r)
{
    if (!r)
        return;
    if (r->soxr)
        soxr_delete(r->soxr);
    free(r->buf);
    free(r);
}
