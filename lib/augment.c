/* Waveform augmentation on libsox: see augment.h.
 *
 * libsox runs an effects chain between a source effect and a sink effect; ours
 * are two small handlers over memory (the pattern of sox's src/example1.c):
 * cmr_in drains the float row into int32 samples, cmr_out collects what the
 * chain produces. No files, no format handlers. */
#include "augment.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sox.h>

#include "pair.h"

struct cmr_augment {
    struct cmr_augment_cfg cfg;
    /* the row being fed and the samples collected */
    const float *in;
    size_t n_in, pos;
    float *out;
    size_t n_out, cap_out;
    uint64_t clipped;
    int nomem;
};

/* ---- libsox's process-wide state ---- */

static pthread_once_t sox_once = PTHREAD_ONCE_INIT;
static int sox_init_rc = SOX_SUCCESS;

/* lib/ never prints: libsox's warnings ("clipped N samples") are counted instead */
static void sox_silent(unsigned level, const char *file, const char *fmt, va_list ap)
{
    (void)level, (void)file, (void)fmt, (void)ap;
}

static void sox_setup(void)
{
    sox_globals.output_message_handler = sox_silent;
    sox_globals.verbosity = 0;
    sox_init_rc = sox_init();
}

/* ---- the source and sink effects ---- */

static struct cmr_augment *priv_aug(sox_effect_t *e)
{
    return *(struct cmr_augment **)e->priv;
}

/* float -> libsox's int32 sample, 1.0 = 2^31 / HEADROOM, truncated like
 * SOX_FLOAT_32BIT_TO_SAMPLE (whose SOX_SAMPLE_MIN shifts 1 << 31 in int: UB) */
static inline sox_sample_t to_sample(float x, uint64_t *clipped)
{
    double v = (double)x * (2147483648.0 / CMR_AUGMENT_HEADROOM);
    if (v < -2147483648.0) {
        ++*clipped;
        return INT32_MIN;
    }
    if (v > 2147483647.0) {
        ++*clipped;
        return INT32_MAX;
    }
    return (sox_sample_t)v;
}

static int in_drain(sox_effect_t *e, sox_sample_t *obuf, size_t *osamp)
{
    struct cmr_augment *a = priv_aug(e);
    size_t k = a->n_in - a->pos;
    if (k > *osamp)
        k = *osamp;
    const float *x = a->in + a->pos;
    for (size_t i = 0; i < k; i++)
        obuf[i] = to_sample(x[i], &a->clipped);
    a->pos += k;
    *osamp = k;
    return k ? SOX_SUCCESS : SOX_EOF;
}

static int out_flow(sox_effect_t *e, const sox_sample_t *ibuf, sox_sample_t *obuf, size_t *isamp,
                    size_t *osamp)
{
    (void)obuf;
    struct cmr_augment *a = priv_aug(e);
    size_t k = *isamp;
    if (a->n_out + k > a->cap_out) {
        size_t cap = a->cap_out ? a->cap_out : 4096;
        while (cap < a->n_out + k)
            cap *= 2;
        float *p = realloc(a->out, cap * sizeof *p);
        if (!p) {
            a->nomem = 1;
            return SOX_EOF;
        }
        a->out = p;
        a->cap_out = cap;
    }
    float *y = a->out + a->n_out;
    for (size_t i = 0; i < k; i++)
        y[i] = (float)((double)ibuf[i] * (CMR_AUGMENT_HEADROOM / 2147483648.0));
    a->n_out += k;
    *osamp = 0;
    return SOX_SUCCESS;
}

static const sox_effect_handler_t in_handler = {
    "cmr_in", NULL, SOX_EFF_MCHAN, NULL, NULL, NULL, in_drain, NULL, NULL, sizeof(struct cmr_augment *)};
static const sox_effect_handler_t out_handler = {
    "cmr_out", NULL, SOX_EFF_MCHAN, NULL, NULL, out_flow, NULL, NULL, NULL, sizeof(struct cmr_augment *)};

/* ---- configuration ---- */

struct cmr_augment_cfg cmr_augment_cfg_default(double rate)
{
    return (struct cmr_augment_cfg){
        .rate = rate,
        .p_pitch = 1,
        .n_pitch = 4,
        .pitch_set = {-2, -1, 1, 2},
        .p_stretch = 1,
        .stretch_min = 0.8,
        .stretch_max = 1.2,
        .p_reverb = 0.5,
        .reverberance_max = 100,
        .damping_max = 100,
        .room_max = 100,
        .p_noise = 0.5,
        .snr_min = 10,
        .snr_max = 30,
        .p_invert = 0.5,
    };
}

static int check_range(struct cmr_error *err, const char *what, double lo, double hi, double min, double max)
{
    if (!(lo >= min && hi <= max && lo <= hi))
        return cmr_error_set(err, CMR_EINVAL, "augment: %s range should satisfy %g <= min <= max <= %g, got [%g, %g]",
                             what, min, max, lo, hi);
    return CMR_OK;
}

static int check_prob(struct cmr_error *err, const char *what, double p)
{
    if (!(p >= 0 && p <= 1))
        return cmr_error_set(err, CMR_EINVAL, "augment: %s should be a probability in [0, 1], got %g", what, p);
    return CMR_OK;
}

int cmr_augment_cfg_check(const struct cmr_augment_cfg *c, struct cmr_error *err)
{
    int rc;
    if (!(c->rate >= 1000 && c->rate <= 384000))
        return cmr_error_set(err, CMR_EINVAL, "augment: rate should be in [1000, 384000] Hz, got %g", c->rate);
    if (c->n_pitch < 1 || c->n_pitch > CMR_AUGMENT_MAX_PITCH)
        return cmr_error_set(err, CMR_EINVAL, "augment: pitch set should have 1 to %d values, got %d",
                             CMR_AUGMENT_MAX_PITCH, c->n_pitch);
    for (int i = 0; i < c->n_pitch; i++)
        if (!(fabs(c->pitch_set[i]) <= 12))
            return cmr_error_set(err, CMR_EINVAL, "augment: pitch shifts should be in [-12, 12] semitones, got %g",
                                 c->pitch_set[i]);
    if ((rc = check_prob(err, "p_pitch", c->p_pitch)) || (rc = check_prob(err, "p_stretch", c->p_stretch)) ||
        (rc = check_prob(err, "p_reverb", c->p_reverb)) || (rc = check_prob(err, "p_noise", c->p_noise)) ||
        (rc = check_prob(err, "p_invert", c->p_invert)))
        return rc;
    if ((rc = check_range(err, "stretch", c->stretch_min, c->stretch_max, 0.5, 2)) ||
        (rc = check_range(err, "reverberance", c->reverberance_min, c->reverberance_max, 0, 100)) ||
        (rc = check_range(err, "damping", c->damping_min, c->damping_max, 0, 100)) ||
        (rc = check_range(err, "room", c->room_min, c->room_max, 0, 100)) ||
        (rc = check_range(err, "snr", c->snr_min, c->snr_max, -20, 100)))
        return rc;
    return CMR_OK;
}

struct cmr_augment *cmr_augment_new(const struct cmr_augment_cfg *cfg, struct cmr_error *err)
{
    if (cmr_augment_cfg_check(cfg, err) != CMR_OK)
        return NULL;
    pthread_once(&sox_once, sox_setup);
    if (sox_init_rc != SOX_SUCCESS) {
        cmr_error_set(err, CMR_EUNSUPPORTED, "augment: libsox failed to initialise (sox_init)");
        return NULL;
    }
    struct cmr_augment *a = calloc(1, sizeof *a);
    if (!a) {
        cmr_error_set(err, CMR_ENOMEM, "augment: out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    return a;
}

void cmr_augment_free(struct cmr_augment *a)
{
    if (!a)
        return;
    free(a->out);
    free(a);
}

/* ---- drawing ---- */

static double uniform_in(struct cmr_rng *rng, double lo, double hi)
{
    return lo + (hi - lo) * cmr_rng_uniform(rng);
}

void cmr_augment_draw(const struct cmr_augment_cfg *c, struct cmr_rng *rng, struct cmr_augment_params *p)
{
    memset(p, 0, sizeof *p);
    int do_pitch = cmr_rng_uniform(rng) < c->p_pitch;
    double pitch = c->pitch_set[cmr_rng_below(rng, (uint64_t)c->n_pitch)];
    int do_stretch = cmr_rng_uniform(rng) < c->p_stretch;
    double stretch = uniform_in(rng, c->stretch_min, c->stretch_max);
    p->reverb = cmr_rng_uniform(rng) < c->p_reverb;
    double rev = uniform_in(rng, c->reverberance_min, c->reverberance_max);
    double damp = uniform_in(rng, c->damping_min, c->damping_max);
    double room = uniform_in(rng, c->room_min, c->room_max);
    p->noise = cmr_rng_uniform(rng) < c->p_noise;
    double snr = uniform_in(rng, c->snr_min, c->snr_max);
    p->invert = cmr_rng_uniform(rng) < c->p_invert;
    p->noise_seed = cmr_rng_u64(rng);

    p->pitch = do_pitch ? pitch : 0;
    p->stretch = do_stretch ? stretch : 1;
    if (p->reverb) {
        p->reverberance = rev;
        p->damping = damp;
        p->room = room;
    }
    if (p->noise)
        p->snr = snr;
}

void cmr_augment_rng(const struct cmr_rng *root, const char *track, int64_t epoch, int64_t index,
                     int row, struct cmr_rng *out)
{
    struct cmr_rng a, b;
    cmr_rng_split(root, cmr_pair_track_hash(track), &a);
    cmr_rng_split(&a, (uint64_t)epoch, &b);
    cmr_rng_split(&b, (uint64_t)index, &a);
    cmr_rng_split(&a, (uint64_t)row, out);
}

/* ---- the effects chain ---- */

/* creates the named effect, applies options, adds it; `out` is the signal
 * the effect should produce (only `rate` looks at it) */
static int add_effect(sox_effects_chain_t *chain, const char *name, int argc, char **argv,
                      sox_signalinfo_t *sig, const sox_signalinfo_t *out)
{
    const sox_effect_handler_t *h = sox_find_effect(name);
    if (!h)
        return CMR_EUNSUPPORTED;
    sox_effect_t *e = sox_create_effect(h);
    if (!e)
        return CMR_ENOMEM;
    size_t before = chain->length;
    int rc = sox_effect_options(e, argc, argv) == SOX_SUCCESS &&
             sox_add_effect(chain, e, sig, out ? out : sig) == SOX_SUCCESS ? CMR_OK : CMR_EINVAL;
    /* an added effect is copied into the chain, which then owns its private
     * data; one that failed or has no effect (tempo 1) was not */
    if (chain->length == before)
        free(e->priv);
    free(e);
    return rc;
}

static int add_io(sox_effects_chain_t *chain, const sox_effect_handler_t *h, struct cmr_augment *a,
                  sox_signalinfo_t *sig)
{
    sox_effect_t *e = sox_create_effect(h);
    if (!e)
        return CMR_ENOMEM;
    *(struct cmr_augment **)e->priv = a;
    size_t before = chain->length;
    int rc = sox_add_effect(chain, e, sig, sig) == SOX_SUCCESS ? CMR_OK : CMR_EINVAL;
    if (chain->length == before)
        free(e->priv);
    free(e);
    return rc;
}

int cmr_augment_effects(struct cmr_augment *a, const struct cmr_augment_params *p,
                        const float *in, size_t n, const float **out, size_t *n_out,
                        uint64_t *clipped, struct cmr_error *err)
{
    double fs = a->cfg.rate;
    double r = pow(2.0, p->pitch / 12.0);
    double tempo = p->stretch / r;
    int do_tempo = p->pitch != 0 || p->stretch != 1;
    a->in = in;
    a->n_in = n;
    a->pos = 0;
    a->n_out = 0;
    a->clipped = 0;
    a->nomem = 0;
    if (!(p->stretch >= 0.25 && p->stretch <= 4) || !(fabs(p->pitch) <= 24))
        return cmr_error_set(err, CMR_EINVAL, "augment: stretch %g or pitch %g out of range", p->stretch, p->pitch);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(in[i]))
            return cmr_error_set(err, CMR_ENAN, "augment: sample %zu is %g, should be finite", i, in[i]);

    if (!do_tempo && !p->reverb) { /* nothing for libsox to do */
        *out = in;
        *n_out = n;
        if (clipped)
            *clipped = 0;
        return CMR_OK;
    }

    sox_signalinfo_t sig = {fs, 1, 32, 0, NULL};
    const sox_signalinfo_t target = {fs, 1, 32, 0, NULL};
    sox_encodinginfo_t enc = {SOX_ENCODING_FLOAT, 32, 0, sox_option_default, sox_option_default,
                              sox_option_default, sox_false};
    sox_effects_chain_t *chain = sox_create_effects_chain(&enc, &enc);
    if (!chain)
        return cmr_error_set(err, CMR_ENOMEM, "augment: out of memory");
    char s[4][32];
    int rc = add_io(chain, &in_handler, a, &sig);
    if (rc == CMR_OK && do_tempo) {
        /* tempo by stretch/r; then `rate` declares the rows fs*r and resamples to fs */
        snprintf(s[0], sizeof s[0], "%.10g", tempo);
        char *targv[] = {"-m", s[0]};
        rc = add_effect(chain, "tempo", 2, targv, &sig, NULL);
        if (rc == CMR_OK && p->pitch != 0) {
            sig.rate = fs * r;
            rc = add_effect(chain, "rate", 0, NULL, &sig, &target);
        }
    }
    if (rc == CMR_OK && p->reverb) {
        /* reverb [-w] reverberance HF-damping room-scale stereo-depth pre-delay wet-gain */
        snprintf(s[1], sizeof s[1], "%.6g", p->reverberance);
        snprintf(s[2], sizeof s[2], "%.6g", p->damping);
        snprintf(s[3], sizeof s[3], "%.6g", p->room);
        char *rargv[] = {s[1], s[2], s[3], "0", "0", "0"};
        rc = add_effect(chain, "reverb", 6, rargv, &sig, NULL);
    }
    if (rc == CMR_OK)
        rc = add_io(chain, &out_handler, a, &sig);
    if (rc == CMR_OK && (sig.rate != fs || sig.channels != 1))
        rc = CMR_EUNSUPPORTED;
    if (rc == CMR_OK) {
        sox_flow_effects(chain, NULL, NULL);
        a->clipped += sox_effects_clips(chain);
        if (a->nomem)
            rc = CMR_ENOMEM;
    }
    sox_delete_effects_chain(chain);
    if (rc != CMR_OK)
        return cmr_error_set(err, rc, "augment: libsox effects chain failed (pitch %g, stretch %g, reverb %d): %s",
                             p->pitch, p->stretch, p->reverb, cmr_strerror(rc));
    *out = a->out;
    *n_out = a->n_out;
    if (clipped)
        *clipped = a->clipped;
    return CMR_OK;
}

/* ---- noise, and the whole row ---- */

void cmr_augment_noise(float *x, size_t n, double snr_db, uint64_t seed)
{
    double power = 0;
    for (size_t i = 0; i < n; i++)
        power += (double)x[i] * x[i];
    power = n ? power / (double)n : 0;
    if (power <= 0)
        return;
    double sigma = sqrt(power / pow(10.0, snr_db / 10.0));
    struct cmr_rng rng;
    cmr_rng_seed(&rng, seed);
    /* Box-Muller, both outputs used */
    for (size_t i = 0; i < n; i += 2) {
        double u1 = 1.0 - cmr_rng_uniform(&rng); /* (0, 1] */
        double u2 = cmr_rng_uniform(&rng);
        double rad = sigma * sqrt(-2.0 * log(u1));
        x[i] += (float)(rad * cos(2.0 * M_PI * u2));
        if (i + 1 < n)
            x[i + 1] += (float)(rad * sin(2.0 * M_PI * u2));
    }
}

int cmr_augment_apply(struct cmr_augment *a, const struct cmr_augment_params *p,
                      const float *in, size_t n, float *out, size_t out_len,
                      struct cmr_augment_result *res, struct cmr_error *err)
{
    const float *y;
    size_t ny;
    uint64_t clipped;
    int rc = cmr_augment_effects(a, p, in, n, &y, &ny, &clipped, err);
    if (rc != CMR_OK)
        return rc;
    size_t keep = ny < out_len ? ny : out_len;
    memcpy(out, y, keep * sizeof *out);
    memset(out + keep, 0, (out_len - keep) * sizeof *out);
    if (p->noise)
        cmr_augment_noise(out, out_len, p->snr, p->noise_seed);
    if (p->invert)
        for (size_t i = 0; i < out_len; i++)
            out[i] = -out[i];
    if (res) {
        res->produced = ny;
        res->padded = out_len - keep;
        res->clipped = clipped;
    }
    return CMR_OK;
}
