/* Batched inference over a segment stream, MelCPC's GRU carry (see encoder.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"
#include "stream/encoder.h"

struct cmr_encoder {
    struct cmr_model *m;
    int batch, dim;
    size_t seg;          /* floats per segment */
    float *x;            /* (batch, seg) queued input */
    float *emb;          /* (batch, emb) cpc: the trunk's output */
    float *out;          /* (batch, dim) embeddings */
    unsigned char *fresh;/* (batch) 1: the segment starts a run (zero GRU state) */
    int queued;
    int end_run;         /* the next segment queued starts a run */
    int have_h;          /* h holds the state after the run's last segment */
    float *h;            /* (hidden) */
};

struct cmr_encoder *cmr_encoder_new(struct cmr_model *m, int batch, int threads, struct cmr_error *err)
{
    struct cmr_encoder *e;
    const struct cmr_model_cfg *c;
    if (!m || batch < 1 || batch > 4096 || threads < 1)
        return cmr_error_set(err, CMR_EINVAL, "encoder: batch should be in [1, 4096] and threads >= 1, got %d, %d",
                             batch, threads), NULL;
    c = &m->cfg;
    if (threads > 1)
        cmr_model_set_threads(m, threads);
    else
        cmr_nn_set_threads(1);
    if (cmr_model_reserve(m, batch, 0, err) != CMR_OK)
        return NULL;
    if (!(e = calloc(1, sizeof *e)))
        goto nomem;
    e->m = m;
    e->batch = batch;
    e->dim = cmr_model_out_dim(c);
    e->seg = (size_t)c->n_time * (size_t)c->n_freq;
    e->x = malloc((size_t)batch * e->seg * sizeof(float));
    e->emb = malloc((size_t)batch * (size_t)c->emb * sizeof(float));
    e->out = malloc((size_t)batch * (size_t)e->dim * sizeof(float));
    e->fresh = calloc((size_t)batch, 1);
    e->h = malloc((size_t)(c->hidden > 0 ? c->hidden : 1) * sizeof(float));
    if (!e->x || !e->emb || !e->out || !e->fresh || !e->h)
        goto nomem;
    e->end_run = 1;
    return e;
nomem:
    cmr_encoder_free(e);
    cmr_error_set(err, CMR_ENOMEM, "encoder: out of memory for a batch of %d segments", batch);
    return NULL;
}

void cmr_encoder_free(struct cmr_encoder *e)
{
    if (!e)
        return;
    free(e->x);
    free(e->emb);
    free(e->out);
    free(e->fresh);
    free(e->h);
    free(e);
}

int cmr_encoder_dim(const struct cmr_encoder *e) { return e->dim; }
size_t cmr_encoder_seg_size(const struct cmr_encoder *e) { return e->seg; }
int cmr_encoder_batch(const struct cmr_encoder *e) { return e->batch; }
int cmr_encoder_queued(const struct cmr_encoder *e) { return e->queued; }

float *cmr_encoder_slot(struct cmr_encoder *e)
{
    return e->queued < e->batch ? e->x + (size_t)e->queued * e->seg : NULL;
}

int cmr_encoder_commit(struct cmr_encoder *e)
{
    e->fresh[e->queued++] = (unsigned char)e->end_run;
    e->end_run = 0;
    return e->queued;
}

int cmr_encoder_push(struct cmr_encoder *e, const float *seg, struct cmr_error *err)
{
    float *dst = cmr_encoder_slot(e);
    if (!dst)
        return cmr_error_set(err, CMR_ESTATE, "encoder: the batch of %d segments is full", e->batch);
    memcpy(dst, seg, e->seg * sizeof(float));
    cmr_encoder_commit(e);
    return CMR_OK;
}

void cmr_encoder_end_run(struct cmr_encoder *e)
{
    e->end_run = 1;
}

void cmr_encoder_reset(struct cmr_encoder *e)
{
    e->queued = 0;
    e->end_run = 1;
    e->have_h = 0;
}

/* cpc: the GRU over each run of consecutive segments, from the carried state */
static int run_gru(struct cmr_encoder *e, int n, struct cmr_error *err)
{
    const struct cmr_model_cfg *c = &e->m->cfg;
    for (int i = 0; i < n;) {
        int j = i + 1, rc;
        while (j < n && !e->fresh[j])
            j++;
        if (e->fresh[i])
            e->have_h = 0;
        rc = cmr_model_gru_forward(e->m, e->emb + (size_t)i * c->emb, e->have_h ? e->h : NULL, 1, j - i, 0,
                                   e->out + (size_t)i * c->hidden, err);
        if (rc != CMR_OK)
            return rc;
        memcpy(e->h, e->out + (size_t)(j - 1) * c->hidden, (size_t)c->hidden * sizeof(float));
        e->have_h = 1;
        i = j;
    }
    return CMR_OK;
}

int cmr_encoder_run(struct cmr_encoder *e, const float **out, int *n, struct cmr_error *err)
{
    int cpc = e->m->cfg.kind == CMR_MODEL_CPC, q = e->queued, rc;
    *out = e->out;
    *n = 0;
    if (q == 0)
        return CMR_OK;
    e->queued = 0;
    rc = cmr_model_forward(e->m, e->x, q, 0, cpc ? e->emb : e->out, err);
    if (rc == CMR_OK && cpc)
        rc = run_gru(e, q, err);
    if (rc != CMR_OK)
        return rc;
    *n = q;
    return CMR_OK;
}
