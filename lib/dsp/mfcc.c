/* MFCC over the streaming mel (see mfcc.h for the convention). */
#include <math.h>
#include <stdlib.h>

#include "dsp/mfcc.h"

struct cmr_mfcc {
    struct cmr_mfcc_cfg cfg;
    struct cmr_mel *mel;
    float *dct;    /* (n_mfcc, n_mels) */
    float *logmel; /* (n_mels) scratch */
};

struct cmr_mfcc_cfg cmr_mfcc_cfg_default(void)
{
    struct cmr_mfcc_cfg c;
    c.mel = cmr_mel_cfg_default();
    c.mel.power = 2;
    c.mel.log = CMR_MEL_LOG_DB;
    c.n_mfcc = 40;
    return c;
}

int cmr_mfcc_cfg_check(const struct cmr_mfcc_cfg *c, struct cmr_error *err)
{
    if (!c)
        return cmr_error_set(err, CMR_EINVAL, "mfcc: no configuration given");
    int rc = cmr_mel_cfg_check(&c->mel, err);
    if (rc)
        return rc;
    if (c->n_mfcc < 1 || c->n_mfcc > c->mel.n_mels)
        return cmr_error_set(err, CMR_EINVAL, "mfcc: n_mfcc should be in [1, n_mels = %d], got %d",
                             c->mel.n_mels, c->n_mfcc);
    return CMR_OK;
}

/* ref: torchaudio 0.13.1 functional/functional.py create_dct (transposed) */
void cmr_mfcc_dct_matrix(float *dct, int n_mfcc, int n_mels)
{
    for (int c = 0; c < n_mfcc; c++) {
        double s = c == 0 ? sqrt(1.0 / n_mels) : sqrt(2.0 / n_mels);
        for (int j = 0; j < n_mels; j++)
            dct[(size_t)c * n_mels + j] = (float)(s * cos(M_PI / n_mels * (j + 0.5) * c));
    }
}

struct cmr_mfcc *cmr_mfcc_new(const struct cmr_mfcc_cfg *cfg, struct cmr_error *err)
{
    struct cmr_mfcc *m = NULL;
    if (cmr_mfcc_cfg_check(cfg, err))
        return NULL;
    m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    m->cfg = *cfg;
    m->mel = cmr_mel_new(&cfg->mel, err);
    if (!m->mel)
        goto failure;
    m->dct = malloc(sizeof(float) * (size_t)cfg->n_mfcc * (size_t)cfg->mel.n_mels);
    m->logmel = malloc(sizeof(float) * (size_t)cfg->mel.n_mels);
    if (!m->dct || !m->logmel)
        goto nomem;
    cmr_mfcc_dct_matrix(m->dct, cfg->n_mfcc, cfg->mel.n_mels);
    return m;

nomem:
    cmr_error_set(err, CMR_ENOMEM, "mfcc: out of memory");
failure:
    cmr_mfcc_free(m);
    return NULL;
}

void cmr_mfcc_free(struct cmr_mfcc *m)
{
    if (!m)
        return;
    cmr_mel_free(m->mel);
    free(m->dct);
    free(m->logmel);
    free(m);
}

int cmr_mfcc_n_mfcc(const struct cmr_mfcc *m) { return m->cfg.n_mfcc; }

int cmr_mfcc_push(struct cmr_mfcc *m, const float *in, size_t n, struct cmr_error *err)
{
    return cmr_mel_push(m->mel, in, n, err);
}

void cmr_mfcc_end(struct cmr_mfcc *m) { cmr_mel_end(m->mel); }
void cmr_mfcc_reset(struct cmr_mfcc *m) { cmr_mel_reset(m->mel); }
size_t cmr_mfcc_ready(const struct cmr_mfcc *m, size_t n) { return cmr_mel_ready(m->mel, n); }
size_t cmr_mfcc_flush_frames(const struct cmr_mfcc *m) { return cmr_mel_flush_frames(m->mel); }

/* the DCT of m->logmel into out */
static void dct(struct cmr_mfcc *m, float *out)
{
    const int nm = m->cfg.mel.n_mels;
    for (int c = 0; c < m->cfg.n_mfcc; c++) {
        const float *row = m->dct + (size_t)c * nm;
        double acc = 0.0;
        for (int j = 0; j < nm; j++)
            acc += (double)row[j] * m->logmel[j];
        out[c] = (float)acc;
    }
}

int cmr_mfcc_next(struct cmr_mfcc *m, float *out)
{
    if (!cmr_mel_next(m->mel, m->logmel))
        return 0;
    dct(m, out);
    return 1;
}

int cmr_mfcc_take(struct cmr_mfcc *m, float *out, struct cmr_error *err)
{
    /* a finite log-mel gives finite coefficients: the check is the mel's */
    int rc = cmr_mel_take(m->mel, m->logmel, err);
    if (rc == 1)
        dct(m, out);
    return rc;
}

int cmr_mfcc_process(struct cmr_mfcc *m, const float *in, size_t n, float *out, size_t cap,
                     size_t *n_out, struct cmr_error *err)
{
    *n_out = 0;
    size_t want = cmr_mfcc_ready(m, n);
    if (want > cap)
        return cmr_error_set(err, CMR_EINVAL, "mfcc: output has room for %zu frames, %zu needed",
                             cap, want);
    int rc = cmr_mfcc_push(m, in, n, err);
    if (rc)
        return rc;
    while (*n_out < cap && (rc = cmr_mfcc_take(m, out + *n_out * (size_t)m->cfg.n_mfcc, err)) == 1)
        (*n_out)++;
    return rc < 0 ? rc : CMR_OK;
}

int cmr_mfcc_flush(struct cmr_mfcc *m, float *out, size_t cap, size_t *n_out,
                   struct cmr_error *err)
{
    *n_out = 0;
    size_t want = cmr_mfcc_flush_frames(m);
    if (want > cap)
        return cmr_error_set(err, CMR_EINVAL, "mfcc: output has room for %zu frames, %zu needed",
                             cap, want);
    cmr_mfcc_end(m);
    int rc = 0;
    while (*n_out < cap && (rc = cmr_mfcc_take(m, out + *n_out * (size_t)m->cfg.n_mfcc, err)) == 1)
        (*n_out)++;
    cmr_mfcc_reset(m);
    return rc < 0 ? rc : CMR_OK;
}
