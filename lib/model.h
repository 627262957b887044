/* cmr models: the paper's encoders over lib/nn/ kernels (PAPER.md sections 4-5).
 *
 *   encoder  five blocks Conv2d 5x5 -> BatchNorm2d -> ReLU -> MaxPool2d, then
 *            Linear(C5, emb): one emb-d vector (128) per 3 s segment
 *   multi    the same blocks with block 5 at emb channels; after each block
 *            max over time, flatten (C x F), Linear(C*F, emb); concatenated:
 *            5*emb = 640-d
 *   cpc      MelCPC: the encoder over consecutive segments, a GRU(emb ->
 *            hidden = 256) and K linear predictors Linear(hidden, emb)
 *
 * The reference is tests/ref/cmr_models.py (Encoder, MultiEncoder,
 * MelCPC); tensor names are its state_dict() keys (docs/models.md).
 *
 * Layout (llm.c's GPT2): every trainable parameter sits in ONE contiguous
 * block (m->params, m->n_params floats); struct cmr_params holds named views
 * into it. The gradients (m->grads), and Adam's m and v (m->adam_m,
 * m->adam_v) have the same layout, so cmr_model_update is one loop.
 * Batch-norm running statistics are not parameters: they sit in their own
 * contiguous block (m->stats: running_mean then running_var per block) with
 * num_batches_tracked in m->bn_count[]; model files save them all.
 *
 * Verbs: cmr_model_new (from a cfg) or cmr_model_load, cmr_model_init
 * (PyTorch's initialisation, seeded), cmr_model_forward (inference or
 * training), cmr_model_zero_grad, cmr_model_backward, cmr_model_update
 * (Adam), cmr_model_free. cmr_model_loss is forward + loss + backward for
 * the three kinds' training losses.
 *
 * Inputs are raw log-mel segments (T=188 frames x F=96 bins, row-major, one
 * channel): the model applies its input standardisation (x - mel_mean) /
 * mel_std itself (0 and 1 when the model has none).
 *
 * Not thread-safe per model: one model serves one caller at a time (it owns
 * its activation buffers). With cmr_model_set_threads(m, n > 1) a forward
 * pass in inference mode runs on n threads of its own (one chunk of the batch
 * each); training passes use one thread and
 * OpenBLAS's threads (cmr_nn_set_threads). Nothing here prints or exits.
 *
 * Inference is a pure function of each segment: an embedding (and a MelCPC
 * context vector) has the same bytes whatever the batch, the segment's place
 * in it, the thread count and the other segments or tracks, under every
 * OpenBLAS kernel family: inference runs BLAS on one thread (it sets and
 * restores cmr_nn_set_threads around the pass), and every GEMM whose shape
 * depends on the batch runs on cmr_gemm_fixed (lib/nn/nn.h). Training passes
 * are batched GEMMs: their rounding may differ from inference's. */
#ifndef CMR_MODEL_H
#define CMR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "nn/nn.h"

#define CMR_MODEL_BLOCKS 5
#define CMR_MODEL_MAX_K 16
#define CMR_MODEL_T 188        /* frames per segment (3 s at hop 256, 16 kHz) */
#define CMR_MODEL_F 96         /* mel bins */
#define CMR_MODEL_SEG ((size_t)CMR_MODEL_T * CMR_MODEL_F) /* floats per segment */
#define CMR_MODEL_MAX_META 64  /* free-form string metadata entries */

enum cmr_model_kind {
    CMR_MODEL_ENCODER = 0,
    CMR_MODEL_MULTI = 1,
    CMR_MODEL_CPC = 2
};

struct cmr_model_cfg {
    enum cmr_model_kind kind;
    double width;        /* width multiplier the channels came from (1 = paper) */
    int widths[CMR_MODEL_BLOCKS]; /* channels per block; multi: widths[4] == emb */
    int emb;             /* embedding size (128) */
    int hidden;          /* cpc: GRU hidden size (256); 0 otherwise */
    int k;               /* cpc: prediction steps K (2); 0 otherwise */
    int context;         /* cpc: GRU context in segments during training (4); 0 otherwise */
    int n_time, n_freq;  /* input segment, 188 x 96 */
    float mel_mean;      /* input standardisation; 0 and 1 = none */
    float mel_std;
};

/* The paper's configuration for kind at width multiplier `width`:
 * channels max(1, round(c * width)) of (128, 256, 256, 512, 512) exactly as
 * cmr_models.py scaled_widths (Python rounds half to even), emb 128, and for cpc
 * hidden 256, K 2, context 4. A width outside (0, 4] (or an unknown kind)
 * gives a configuration that cmr_model_cfg_check refuses. */
struct cmr_model_cfg cmr_model_cfg_default(enum cmr_model_kind kind, double width);
/* checks every field: CMR_OK or CMR_EMODEL with err naming the field */
int cmr_model_cfg_check(const struct cmr_model_cfg *cfg, struct cmr_error *err);
/* "encoder", "multi", "cpc" */
const char *cmr_model_kind_name(enum cmr_model_kind kind);
/* CMR_OK or CMR_EINVAL */
int cmr_model_kind_parse(const char *s, enum cmr_model_kind *kind);
/* floats per output vector: emb (encoder), 5*emb (multi), hidden (cpc) */
int cmr_model_out_dim(const struct cmr_model_cfg *cfg);
/* the block's output map size (after pooling), l in [0, 5) */
void cmr_model_block_out(const struct cmr_model_cfg *cfg, int l, int *oh, int *ow);

/* named views into the parameter block (shapes as PyTorch) */
struct cmr_block_params {
    float *conv_w;       /* (C, Cin, 5, 5)  blocks.l.conv.weight */
    float *conv_b;       /* (C)             blocks.l.conv.bias   */
    float *bn_w;         /* (C)             blocks.l.bn.weight   */
    float *bn_b;         /* (C)             blocks.l.bn.bias     */
};
struct cmr_params {
    struct cmr_block_params blk[CMR_MODEL_BLOCKS];
    float *fc_w, *fc_b;  /* encoder, cpc: (emb, C5), (emb)              fc.* */
    float *head_w[CMR_MODEL_BLOCKS], *head_b[CMR_MODEL_BLOCKS]; /* multi: (emb, C*F), (emb) heads.l.* */
    float *gru_w_ih;     /* cpc: (3H, emb) gru.weight_ih_l0, gate order r, z, n */
    float *gru_w_hh;     /* cpc: (3H, H)   gru.weight_hh_l0 */
    float *gru_b_ih;     /* cpc: (3H)      gru.bias_ih_l0   */
    float *gru_b_hh;     /* cpc: (3H)      gru.bias_hh_l0   */
    float *pred_w[CMR_MODEL_MAX_K], *pred_b[CMR_MODEL_MAX_K]; /* cpc: (emb, H), (emb) predictors.k.* */
};
/* views into the statistics block */
struct cmr_bn_stats {
    float *mean[CMR_MODEL_BLOCKS];  /* (C) blocks.l.bn.running_mean */
    float *var[CMR_MODEL_BLOCKS];   /* (C) blocks.l.bn.running_var  */
};

/* one named tensor of the model, in state_dict() order */
enum cmr_tensor_role {
    CMR_TENSOR_PARAM,    /* trainable: in params/grads/adam_m/adam_v */
    CMR_TENSOR_STAT,     /* batch-norm running statistics: in stats */
    CMR_TENSOR_COUNT     /* num_batches_tracked: an integer scalar, bn_count[block] */
};
struct cmr_tensor {
    char name[64];       /* without the "encoder." prefix cpc adds (see cmr_model_tensor_name) */
    enum cmr_tensor_role role;
    int ndim;            /* 0 for num_batches_tracked (a scalar) */
    int64_t shape[4];
    size_t numel;
    size_t offset;       /* in params (PARAM) or stats (STAT); the block for COUNT */
};

/* training state that a model file keeps, for resuming */
struct cmr_train_state {
    int64_t step;        /* optimizer steps taken */
    int64_t epoch;       /* epochs completed */
    double lr;           /* current learning rate (1e-3; x0.2 on plateau) */
    double best_loss;    /* best epoch loss so far (plateau schedule); INFINITY if none */
    int bad_epochs;      /* epochs since best_loss improved */
    int64_t adam_t;      /* Adam's step count t (bias correction) */
    double beta1, beta2, eps, weight_decay; /* Adam hyper-parameters (double, as PyTorch's) */
};

struct cmr_kvpair {
    char *key, *val;
};

struct cmr_model_acts;   /* activation buffers and caches, private */

/* Optional batch-norm override for the training passes, for synchronised
 * batch norm across data-parallel processes (lib/dist.h): when a model's
 * bn_hook is set, a training forward calls hook->forward and the backward
 * calls hook->backward for block `block`, in place of
 * cmr_batchnorm2d_forward_train and cmr_batchnorm2d_backward, with the same
 * arguments (lib/nn/nn.h); inference never calls it. NULL (the default):
 * statistics of the local batch. */
struct cmr_bn_hook {
    void *ctx;
    void (*forward)(void *ctx, int block, float *out, float *mean, float *rstd, float *running_mean,
                    float *running_var, const float *inp, const float *gamma, const float *beta, int B,
                    int C, int HW, float momentum, float eps);
    void (*backward)(void *ctx, int block, float *dinp, float *dgamma, float *dbeta, const float *dout,
                     const float *inp, const float *gamma, const float *mean, const float *rstd, int B,
                     int C, int HW);
};

struct cmr_model {
    struct cmr_model_cfg cfg;

    size_t n_params;
    float *params;       /* the parameter block */
    struct cmr_params p; /* named views into params */
    float *grads;        /* same layout; NULL until cmr_model_zero_grad */
    struct cmr_params g; /* named views into grads (valid once grads exists) */
    float *adam_m, *adam_v; /* same layout; NULL until the first cmr_model_update or a load with Adam state */

    size_t n_stats;
    float *stats;        /* the running statistics block */
    struct cmr_bn_stats s;
    int64_t bn_count[CMR_MODEL_BLOCKS]; /* num_batches_tracked */

    struct cmr_tensor *tensors;  /* the state_dict(), in order */
    int n_tensors;

    struct cmr_train_state train;
    struct cmr_kvpair meta[CMR_MODEL_MAX_META]; /* free-form strings saved with the model */
    int n_meta;

    int threads;         /* inference threads (cmr_model_set_threads) */
    const struct cmr_bn_hook *bn_hook; /* NULL, or the batch-norm override above (not owned, not saved) */
    struct cmr_model_acts *acts;
};

/* a model with cfg's shapes; parameters zero, running statistics (0, 1),
 * train state fresh (lr 1e-3, Adam 0.9/0.999/1e-8). NULL with err filled on
 * a bad cfg or out of memory. */
struct cmr_model *cmr_model_new(const struct cmr_model_cfg *cfg, struct cmr_error *err);
/* floats of parameters and statistics a model of a checked cfg holds, without
 * allocating them (0 when out of memory): loaders check a file is big enough
 * before cmr_model_new */
size_t cmr_model_cfg_floats(const struct cmr_model_cfg *cfg);
void cmr_model_free(struct cmr_model *m);

/* PyTorch's default initialisation, drawn from a cmr_rng seeded with seed,
 * tensor by tensor in state_dict() order, elements in row-major order:
 *   Conv2d weight and bias, predictor Linear weight and bias: U(-1/sqrt(fan_in), +1/sqrt(fan_in))
 *     (kaiming_uniform_(a=sqrt(5)) and PyTorch's bias bound)
 *   encoder fc / multi heads: weight xavier_uniform_ U(+-sqrt(6/(fan_in+fan_out))), bias U(+-1/sqrt(fan_in))
 *   GRU weights and biases: U(-1/sqrt(H), 1/sqrt(H))
 *   BatchNorm: weight 1, bias 0, running mean 0, running var 1, count 0 */
void cmr_model_init(struct cmr_model *m, uint64_t seed);

/* the full interchange name of tensor i (cpc prefixes the encoder's with "encoder.") */
void cmr_model_tensor_name(const struct cmr_model *m, int i, char *buf, size_t n);
/* the index of the tensor with that full name, or -1 */
int cmr_model_tensor_find(const struct cmr_model *m, const char *name);
/* copies tensor i out of / into the model as floats (COUNT: one value) */
void cmr_model_tensor_get(const struct cmr_model *m, int i, float *dst);
void cmr_model_tensor_set(struct cmr_model *m, int i, const float *src);
/* What every loader (model files, safetensors import) checks once the
 * tensors are in: every weight, batch-norm running statistic and Adam value
 * finite, every running variance >= 0 (the input standardisation is checked
 * with the configuration, by cmr_model_cfg_check). CMR_ENAN naming the file
 * (name), the tensor and the element, e.g. "m.cmr: tensor 'fc.weight' holds
 * NaN at element 12". */
int cmr_model_check_values(const struct cmr_model *m, const char *name, struct cmr_error *err);

/* free-form metadata (saved in model files, exported as safetensors __metadata__) */
const char *cmr_model_meta_get(const struct cmr_model *m, const char *key);
int cmr_model_meta_set(struct cmr_model *m, const char *key, const char *val);

/* ---- forward and backward ---- */

/* Reserves activation buffers for up to max_batch segments per forward
 * (training: for backward too, which takes much more memory). Called
 * implicitly by forward with the batch it is given; call it first to fail
 * early. CMR_ENOMEM with err naming the size. */
int cmr_model_reserve(struct cmr_model *m, int max_batch, int train, struct cmr_error *err);
/* bytes the activation buffers hold now */
size_t cmr_model_act_bytes(const struct cmr_model *m);

/* Inference threads for cmr_model_forward in eval mode (>= 1). */
int cmr_model_set_threads(struct cmr_model *m, int n);

/* The encoder trunk on n segments x (n, T, F) of raw log-mel.
 * train = 0: batch norm with running statistics (inference);
 * train = 1: batch statistics, running statistics and num_batches_tracked
 *            updated (as a PyTorch module in train()), caches kept for
 *            cmr_model_backward.
 * out: encoder (n, emb); multi (n, 5*emb), levels in order; cpc: the
 * per-segment embeddings z (n, emb) that the GRU reads.
 * CMR_ENAN if x holds a NaN or infinity (err names the segment). */
int cmr_model_forward(struct cmr_model *m, const float *x, int n, int train, float *out,
                      struct cmr_error *err);
/* Backward of the last training forward: dout (n, out dim of forward) ->
 * accumulates (+=) into m->grads. cmr_model_zero_grad first. Once per
 * training forward: it overwrites the forward's caches (a second call is
 * CMR_ESTATE). */
int cmr_model_backward(struct cmr_model *m, const float *dout, struct cmr_error *err);
/* allocates m->grads if needed and zeroes it */
int cmr_model_zero_grad(struct cmr_model *m);
/* one Adam step with m->train's hyper-parameters and lr (PyTorch semantics,
 * see nn.h); increments m->train.adam_t and m->train.step */
int cmr_model_update(struct cmr_model *m, struct cmr_error *err);

/* cpc: the GRU over sequences of segment embeddings.
 * z (B, S, emb), h0 (B, hidden) or NULL (zeros) -> c (B, S, hidden).
 * train = 1 keeps caches for cmr_model_gru_backward. Inference over a long
 * track can run in pieces: pass the last output as h0 of the next piece. */
int cmr_model_gru_forward(struct cmr_model *m, const float *z, const float *h0, int B, int S,
                          int train, float *c, struct cmr_error *err);
/* dc (B, S, hidden) -> dz (B, S, emb) += ..., and the GRU's gradients */
int cmr_model_gru_backward(struct cmr_model *m, const float *dc, float *dz, struct cmr_error *err);

/* The training loss of the model's kind (forward in training mode; with
 * backward != 0 gradients are accumulated into m->grads, zero them first):
 *   encoder: x (2B, T, F) = B anchors then their B positives; InfoNCE
 *            (PAPER.md section 5) with temperature tau. One forward pass over
 *            all 2B segments: batch statistics cover anchors and positives.
 *   multi:   the same input; InfoNCE per level, averaged over the 5 levels.
 *   cpc:     x (B, context + K, T, F): B sequences of consecutive segments;
 *            the GRU reads the first `context`, c_t is its last output, and
 *            L = sum_k InfoNCE(W_k c_t + b_k, z_{context+k-1}) (cmr_models.py MelCPC.loss).
 * loss and correct (the number of rows whose top score is its positive,
 * summed over levels / predictors; may be NULL) are set. */
int cmr_model_loss(struct cmr_model *m, const float *x, int B, float tau, int backward,
                   double *loss, int *correct, struct cmr_error *err);

/* ---- files (lib/model_file.c): docs/models.md describes the format ---- */
#define CMR_MODEL_MAGIC "CMRMODEL"
#define CMR_MODEL_VERSION 1

/* writes the model atomically (temporary file in the same directory, fsync,
 * rename). with_adam != 0 also saves Adam's m and v (if present). */
int cmr_model_save(const struct cmr_model *m, const char *path, int with_adam,
                   struct cmr_error *err);
/* loads a model file; NULL with err filled (bad magic, newer version,
 * truncation, size mismatches, checksum) */
struct cmr_model *cmr_model_load(const char *path, struct cmr_error *err);
/* the same from memory (tests, fuzzing) */
struct cmr_model *cmr_model_load_mem(const void *buf, size_t len, const char *name,
                                     struct cmr_error *err);

/* ---- safetensors interchange (lib/model_safetensors.c) ---- */

/* What import may be told on the command line; a field left at its "unset"
 * value comes from the file's __metadata__, else from the tensor shapes, else
 * the import fails naming the option. */
struct cmr_import_opts {
    int kind;            /* enum cmr_model_kind, or -1 */
    double width;        /* > 0, or 0 */
    int context;         /* > 0, or 0 (cpc: default 4) */
    int have_mel;        /* mel_mean/mel_std given */
    float mel_mean, mel_std;
};
void cmr_import_opts_init(struct cmr_import_opts *o);
struct cmr_model *cmr_model_import(const char *path, const struct cmr_import_opts *o,
                                   struct cmr_error *err);
/* writes the state_dict() (F32; num_batches_tracked as a F32 scalar) with
 * __metadata__ cmr.kind, cmr.width, cmr.mel_mean, cmr.mel_std, cmr.emb,
 * cmr.widths, cmr.hidden, cmr.k, cmr.context, cmr.step, cmr.epoch and the
 * model's own metadata */
int cmr_model_export(const struct cmr_model *m, const char *path, struct cmr_error *err);

#endif
