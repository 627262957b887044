#include "dsp/resample.h"
#include "frame.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <soxr.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* torchaudio's windowed-sinc resampler, streaming (see resample.h) */
struct sinc {
    long orig, new_;      /* rates divided by their gcd */
    long width;           /* torchaudio's `width`: zero padding on the left */
    long taps;            /* 2 * width + orig: kernel length */
    long span;            /* most nonzero taps of any phase */
    long *k0;             /* per phase: first nonzero tap */
    long *nk;             /* per phase: nonzero taps */
    double *kern;         /* new_ x span coefficients */
    /* the padded input xpad (width zeros, the signal, width + orig zeros at the
     * end) from absolute index base: in[0 .. n_in) per channel, interleaved */
    float *in;
    size_t n_in, cap_in;
    int64_t base;         /* xpad index of in[0] */
    int64_t block;        /* next block j: outputs j*new_ .. j*new_ + new_ - 1 */
    int64_t length;       /* input samples seen */
    int64_t emitted;      /* outputs produced */
};

struct cmr_resample {
    struct cmr_resample_cfg cfg;
    soxr_t soxr;
    struct sinc *sinc;
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

static const char *const quality_names[] = {"mq", "hq", "vhq", "torchaudio", "kaiser-best"};
#define N_QUALITIES 5

int cmr_resample_quality_parse(const char *name, enum cmr_resample_quality *q)
{
    for (int i = 0; i < N_QUALITIES; i++)
        if (name && strcmp(name, quality_names[i]) == 0) {
            *q = (enum cmr_resample_quality)i;
            return CMR_OK;
        }
    return CMR_EINVAL;
}

const char *cmr_resample_quality_name(enum cmr_resample_quality q)
{
    return ((int)q >= 0 && (int)q < N_QUALITIES) ? quality_names[q] : "?";
}

static int is_sinc(enum cmr_resample_quality q)
{
    return q == CMR_RESAMPLE_TORCHAUDIO || q == CMR_RESAMPLE_KAISER_BEST;
}

/* ------------------------------------------------------------------ */
/* soxr                                                                */

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

/* ------------------------------------------------------------------ */
/* torchaudio's sinc kernels                                           */

/* modified Bessel function of the first kind, order 0 (power series) */
static double bessel_i0(double x)
{
    double sum = 1, term = 1, q = x * x / 4;
    for (int k = 1; k < 500; k++) {
        term *= q / ((double)k * k);
        sum += term;
        if (term < sum * 1e-17)
            break;
    }
    return sum;
}

static long gcd_l(long a, long b)
{
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void sinc_free(struct sinc *s)
{
    if (!s)
        return;
    free(s->k0);
    free(s->nk);
    free(s->kern);
    free(s->in);
    free(s);
}

/* torchaudio.functional._get_sinc_resample_kernel, in double precision
 * (transforms.Resample's default), keeping each phase's nonzero taps only */
static int make_sinc(struct cmr_resample *r, struct cmr_error *err)
{
    const int kaiser = r->cfg.quality == CMR_RESAMPLE_KAISER_BEST;
    const double lpw = kaiser ? 64 : 6;
    const double rolloff = kaiser ? 0.9475937167399596 : 0.99;
    const double beta = 14.769656459379492;
    long in = (long)r->cfg.in_rate, out = (long)r->cfg.out_rate, g;
    double base, scale, i0_beta = bessel_i0(beta);
    struct sinc *s;

    if ((double)in != r->cfg.in_rate || (double)out != r->cfg.out_rate)
        return cmr_error_set(err, CMR_EINVAL, "resample: %s needs integer rates, got %g -> %g Hz",
                             cmr_resample_quality_name(r->cfg.quality), r->cfg.in_rate, r->cfg.out_rate);
    g = gcd_l(in, out);
    s = calloc(1, sizeof *s);
    if (!s)
        return cmr_error_set(err, CMR_ENOMEM, "resample: out of memory");
    s->orig = in / g;
    s->new_ = out / g;
    base = (double)(s->orig < s->new_ ? s->orig : s->new_) * rolloff;
    s->width = (long)ceil(lpw * (double)s->orig / base);
    s->taps = 2 * s->width + s->orig;
    scale = base / (double)s->orig;
    /* t(i, k) = (-i / new + (k - width) / orig) * base is inside (-lpw, lpw), where the
     * window is nonzero, for k within orig * lpw / base (+1) of width + orig * i / new */
    s->span = 2 * (long)ceil((double)s->orig * lpw / base) + 3;
    if (s->span > s->taps)
        s->span = s->taps;
    if ((double)s->new_ * (double)s->span > (double)(1 << 22)) {
        long phases = s->new_, span = s->span;
        sinc_free(s);
        return cmr_error_set(err, CMR_EINVAL, "resample: %g -> %g Hz needs a %ld x %ld kernel, too large "
                             "for %s (use a soxr quality)", r->cfg.in_rate, r->cfg.out_rate, phases,
                             span, cmr_resample_quality_name(r->cfg.quality));
    }
    s->k0 = calloc((size_t)s->new_, sizeof *s->k0);
    s->nk = calloc((size_t)s->new_, sizeof *s->nk);
    s->kern = calloc((size_t)s->new_ * (size_t)s->span, sizeof *s->kern);
    if (!s->k0 || !s->nk || !s->kern) {
        sinc_free(s);
        return cmr_error_set(err, CMR_ENOMEM, "resample: out of memory");
    }
    for (long i = 0; i < s->new_; i++) {
        double centre = (double)s->width + (double)s->orig * (double)i / (double)s->new_;
        double half = (double)s->orig * lpw / base;
        long lo = (long)floor(centre - half) - 1, hi = (long)ceil(centre + half) + 1;
        if (lo < 0)
            lo = 0;
        if (hi > s->taps - 1)
            hi = s->taps - 1;
        if (hi - lo + 1 > s->span)
            hi = lo + s->span - 1;
        s->k0[i] = lo;
        s->nk[i] = hi - lo + 1;
        for (long k = lo; k <= hi; k++) {
            double t = (-(double)i / (double)s->new_ + (double)(k - s->width) / (double)s->orig) * base;
            double w, v;
            if (t < -lpw)
                t = -lpw;
            if (t > lpw)
                t = lpw;
            if (kaiser) {
                double u = 1 - (t / lpw) * (t / lpw);
                w = bessel_i0(beta * sqrt(u > 0 ? u : 0)) / i0_beta;
            } else {
                w = cos(t * M_PI / lpw / 2);
                w *= w;
            }
            t *= M_PI;
            v = t == 0 ? 1.0 : sin(t) / t;
            s->kern[(size_t)i * (size_t)s->span + (size_t)(k - lo)] = v * w * scale;
        }
    }
    r->sinc = s;
    r->drained = 0;
    return CMR_OK;
}

static void sinc_reset(struct sinc *s)
{
    s->n_in = 0;
    s->base = 0;
    s->block = 0;
    s->length = 0;
    s->emitted = 0;
}

/* appends n frames of x (NULL: zeros) to the padded input */
static int sinc_push(struct sinc *s, int ch, const float *x, size_t n, struct cmr_error *err)
{
    if (s->n_in + n > s->cap_in) {
        size_t cap = s->cap_in ? s->cap_in : 4096;
        while (cap < s->n_in + n)
            cap *= 2;
        float *p = realloc(s->in, cap * (size_t)ch * sizeof *p);
        if (!p)
            return cmr_error_set(err, CMR_ENOMEM, "resample: out of memory");
        s->in = p;
        s->cap_in = cap;
    }
    if (x)
        memcpy(s->in + s->n_in * (size_t)ch, x, n * (size_t)ch * sizeof *x);
    else
        memset(s->in + s->n_in * (size_t)ch, 0, n * (size_t)ch * sizeof *s->in);
    s->n_in += n;
    return CMR_OK;
}

/* ------------------------------------------------------------------ */

struct cmr_resample *cmr_resample_new(const struct cmr_resample_cfg *cfg, struct cmr_error *err)
{
    struct cmr_resample *r;
    int rc;

    /* the supported rates (frame.h) bound the ratio to [1/768, 768], and with
     * it soxr's filter and buffers and the output of one chunk: a rate of
     * 0.01 Hz made soxr crash, hang or take gigabytes */
    if (!cfg || !(cfg->in_rate >= CMR_RATE_MIN && cfg->in_rate <= CMR_RATE_MAX) ||
        !(cfg->out_rate >= CMR_RATE_MIN && cfg->out_rate <= CMR_RATE_MAX)) {
        cmr_error_set(err, CMR_EINVAL, "resample: rates should be in [%g, %g] Hz, got %g -> %g Hz",
                      CMR_RATE_MIN, CMR_RATE_MAX, cfg ? cfg->in_rate : 0.0, cfg ? cfg->out_rate : 0.0);
        return NULL;
    }
    if (cfg->channels < 1 || cfg->channels > 256) {
        cmr_error_set(err, CMR_EINVAL, "resample: channels should be in [1, 256], got %d",
                      cfg->channels);
        return NULL;
    }
    if ((int)cfg->quality < 0 || (int)cfg->quality >= N_QUALITIES) {
        cmr_error_set(err, CMR_EINVAL, "resample: unknown quality %d", (int)cfg->quality);
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        cmr_error_set(err, CMR_ENOMEM, "resample: out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    rc = is_sinc(cfg->quality) ? make_sinc(r, err) : make_soxr(r, err);
    if (rc != CMR_OK) {
        cmr_resample_free(r);
        return NULL;
    }
    if (r->sinc && sinc_push(r->sinc, cfg->channels, NULL, (size_t)r->sinc->width, err) != CMR_OK) {
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
static int run_soxr(struct cmr_resample *r, const float *in, size_t n, const float **out,
                    size_t *n_out, struct cmr_error *err)
{
    size_t pos = 0, done = 0;
    double ratio = r->cfg.out_rate / r->cfg.in_rate;
    size_t ch = (size_t)r->cfg.channels;
    int rc;

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

/* feeds n frames (in == NULL: the end of the signal) to the sinc resampler
 * and computes every output block the buffered input supports */
static int run_sinc(struct cmr_resample *r, const float *in, size_t n, const float **out,
                    size_t *n_out, struct cmr_error *err)
{
    struct sinc *s = r->sinc;
    const int ch = r->cfg.channels;
    int64_t target = -1;   /* total outputs, known at the end */
    size_t done = 0;
    int rc;

    if (in) {
        if ((rc = sinc_push(s, ch, in, n, err)) != CMR_OK)
            return rc;
        s->length += (int64_t)n;
    } else {
        /* torchaudio pads width + orig zeros on the right and keeps
         * ceil(new * length / orig) outputs */
        if ((rc = sinc_push(s, ch, NULL, (size_t)(s->width + s->orig), err)) != CMR_OK)
            return rc;
        target = (s->length * s->new_ + s->orig - 1) / s->orig;
    }
    {
        /* blocks that fit in the buffered input */
        int64_t avail = s->base + (int64_t)s->n_in;
        int64_t last = avail >= s->taps ? (avail - s->taps) / s->orig : -1;   /* last full block */
        int64_t blocks = last + 1 - s->block;
        if (blocks > 0 && (rc = grow(r, (size_t)(blocks * s->new_), err)) != CMR_OK)
            return rc;
        for (; s->block <= last; s->block++) {
            const float *x = s->in + (size_t)(s->block * s->orig - s->base) * (size_t)ch;
            for (long i = 0; i < s->new_; i++) {
                const double *kk = s->kern + (size_t)i * (size_t)s->span;
                const float *xi = x + (size_t)s->k0[i] * (size_t)ch;
                if (target >= 0 && s->emitted >= target)
                    break;
                for (int c = 0; c < ch; c++) {
                    double acc = 0;
                    for (long k = 0; k < s->nk[i]; k++)
                        acc += kk[k] * (double)xi[(size_t)k * (size_t)ch + (size_t)c];
                    r->buf[done * (size_t)ch + (size_t)c] = (float)acc;
                }
                done++;
                s->emitted++;
            }
        }
        /* drop the input no later block needs */
        {
            int64_t keep = s->block * s->orig - s->base;
            if (keep > (int64_t)s->n_in)
                keep = (int64_t)s->n_in;
            if (keep > 0) {
                memmove(s->in, s->in + (size_t)keep * (size_t)ch,
                        (s->n_in - (size_t)keep) * (size_t)ch * sizeof *s->in);
                s->n_in -= (size_t)keep;
                s->base += keep;
            }
        }
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
    return r->sinc ? run_sinc(r, in, n, out, n_out, err) : run_soxr(r, in, n, out, n_out, err);
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
    rc = r->sinc ? run_sinc(r, NULL, 0, out, n_out, err) : run_soxr(r, NULL, 0, out, n_out, err);
    r->drained = 1;
    return rc;
}

int cmr_resample_reset(struct cmr_resample *r, struct cmr_error *err)
{
    soxr_error_t e;
    if (!r)
        return cmr_error_set(err, CMR_EINVAL, "resample: reset needs an object");
    if (r->sinc) {
        sinc_reset(r->sinc);
        r->drained = 0;
        return sinc_push(r->sinc, r->cfg.channels, NULL, (size_t)r->sinc->width, err);
    }
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
    sinc_free(r->sinc);
    free(r->buf);
    free(r);
}
