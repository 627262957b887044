/* lib/model: configuration, parameter layout, initialisation, model files
 * (round trip and every kind of damage), safetensors export/import, API
 * state errors, threads, and end-to-end finite-difference gradient checks
 * (InfoNCE loss -> first conv weights through batch norm; MelCPC through the
 * GRU and the predictors). */
#include <unistd.h>

#include "model-test.h"

static char tmpdir[] = "/tmp/cmr-test-model-XXXXXX";

static struct cmr_model *new_model(enum cmr_model_kind kind, double width, int emb, int hidden)
{
    struct cmr_model_cfg c;
    struct cmr_error err = {0};
    c = cmr_model_cfg_default(kind, width);
    if (emb) {
        c.emb = emb;
        if (kind == CMR_MODEL_MULTI)
            c.widths[4] = emb;
    }
    if (hidden && kind == CMR_MODEL_CPC)
        c.hidden = hidden;
    struct cmr_model *m = cmr_model_new(&c, &err);
    if (!m) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    return m;
}

static void test_cfg(void)
{
    struct cmr_model_cfg c;
    struct cmr_error err = {0};
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 1);
    ok(c.widths[0] == 128 && c.widths[1] == 256 && c.widths[2] == 256 && c.widths[3] == 512 &&
           c.widths[4] == 512 && c.emb == 128 && !c.hidden,
       "paper widths 128 256 256 512 512, emb 128");
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.25);
    ok(c.widths[0] == 32 && c.widths[1] == 64 && c.widths[4] == 128, "width 0.25: 32 64 64 128 128");
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 2.5 / 128);
    ok(c.widths[0] == 2 && c.widths[1] == 5 && c.widths[3] == 10, "128 x 2.5/128 = 2.5 rounds half to even: 2 (Python round)");
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 3.5 / 128);
    ok(c.widths[0] == 4 && c.widths[1] == 7, "3.5 rounds to 4");
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.001);
    ok(c.widths[0] == 1 && c.widths[4] == 1, "tiny widths clamp to 1 channel");
    c = cmr_model_cfg_default(CMR_MODEL_MULTI, 0.25);
    ok(c.widths[4] == 128 && cmr_model_out_dim(&c) == 640, "multi: block 5 has emb channels, 640-d output");
    c = cmr_model_cfg_default(CMR_MODEL_CPC, 1);
    ok(c.hidden == 256 && c.k == 2 && c.context == 4 && cmr_model_out_dim(&c) == 256, "cpc: hidden 256, K 2, context 4");
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0);
    int refused0 = cmr_model_cfg_check(&c, NULL) == CMR_EMODEL;
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 5);
    ok(refused0 && cmr_model_cfg_check(&c, NULL) == CMR_EMODEL, "width 0 and 5 refused");

    c = cmr_model_cfg_default(CMR_MODEL_MULTI, 0.25);
    c.widths[4] = 64;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL, "multi with block 5 != emb refused: %s", err.msg);
    c = cmr_model_cfg_default(CMR_MODEL_CPC, 0.25);
    c.k = 0;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL, "K 0 refused: %s", err.msg);
    c.k = CMR_MODEL_MAX_K + 1;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL, "K above the maximum refused");
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.25);
    c.hidden = 5;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL, "hidden on an encoder refused: %s", err.msg);
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.25);
    c.widths[2] = 0;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL && !cmr_model_new(&c, &err), "0 channels refused: %s", err.msg);
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.25);
    c.mel_std = 0;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL, "mel_std 0 refused: %s", err.msg);
    c = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.25);
    c.n_time = 100;
    ok(cmr_model_cfg_check(&c, &err) == CMR_EMODEL, "segments other than 188 x 96 refused: %s", err.msg);
    enum cmr_model_kind k;
    ok(cmr_model_kind_parse("cpc", &k) == CMR_OK && k == CMR_MODEL_CPC &&
           cmr_model_kind_parse("Encoder", &k) == CMR_EINVAL && !strcmp(cmr_model_kind_name(CMR_MODEL_MULTI), "multi"),
       "kind names");
}

static void test_layout(void)
{
    static const size_t want[3] = {12361856, 9559552, 12724096}; /* cmr_models.py at width 1 */
    static const int ntens[3] = {37, 45, 45};
    for (int ki = 0; ki < 3; ki++) {
        struct cmr_model *m = new_model((enum cmr_model_kind)ki, 1, 0, 0);
        ok(m->n_params == want[ki] && m->n_tensors == ntens[ki], "%s: %zu parameters (cmr_models.py: %zu), %d tensors",
           cmr_model_kind_name((enum cmr_model_kind)ki), m->n_params, want[ki], m->n_tensors);
        size_t sum = 0;
        int contiguous = 1;
        for (int i = 0; i < m->n_tensors; i++)
            if (m->tensors[i].role == CMR_TENSOR_PARAM) {
                contiguous &= m->tensors[i].offset == sum;
                sum += m->tensors[i].numel;
            }
        ok(contiguous && sum == m->n_params, "%s: parameters laid out back to back in state_dict() order",
           cmr_model_kind_name((enum cmr_model_kind)ki));
        cmr_model_free(m);
    }
    struct cmr_model *m = new_model(CMR_MODEL_CPC, 0.25, 0, 0);
    char name[80];
    cmr_model_tensor_name(m, 0, name, sizeof name);
    ok(!strcmp(name, "encoder.blocks.0.conv.weight") && m->p.blk[0].conv_w == m->params, "cpc names carry 'encoder.'");
    cmr_model_tensor_name(m, m->n_tensors - 1, name, sizeof name);
    ok(!strcmp(name, "predictors.1.bias") && m->p.pred_b[1] + m->cfg.emb == m->params + m->n_params,
       "the last tensor ends the block");
    int i6 = cmr_model_tensor_find(m, "encoder.blocks.0.bn.num_batches_tracked");
    ok(i6 == 6 && m->tensors[i6].role == CMR_TENSOR_COUNT && m->tensors[i6].ndim == 0, "num_batches_tracked is a scalar counter");
    ok(cmr_model_tensor_find(m, "blocks.0.conv.weight") < 0 && cmr_model_tensor_find(m, "gru.weight_hh_l0") > 0,
       "find by full name only");
    ok(m->s.var[4] + m->cfg.widths[4] == m->stats + m->n_stats && m->s.var[0][3] == 1 && m->s.mean[2][0] == 0,
       "running statistics block: (0, 1) at creation");
    cmr_model_free(m);
}

static void test_init(void)
{
    struct cmr_model *a = new_model(CMR_MODEL_CPC, 0.25, 0, 0), *b = new_model(CMR_MODEL_CPC, 0.25, 0, 0);
    cmr_model_init(a, 7);
    cmr_model_init(b, 7);
    ok(!memcmp(a->params, b->params, a->n_params * sizeof(float)), "same seed, same weights");
    cmr_model_init(b, 8);
    ok(memcmp(a->params, b->params, a->n_params * sizeof(float)) != 0, "another seed, other weights");
    int good = 1;
    for (int i = 0; i < a->n_tensors; i++) {
        const struct cmr_tensor *t = &a->tensors[i];
        if (t->role != CMR_TENSOR_PARAM)
            continue;
        const float *v = a->params + t->offset;
        double bound, mx = mt_maxabs(v, t->numel), s2 = 0;
        for (size_t k = 0; k < t->numel; k++)
            s2 += (double)v[k] * v[k];
        if (strstr(t->name, "bn.weight") || strstr(t->name, "bn.bias")) {
            float want = strstr(t->name, "weight") ? 1.0f : 0.0f;
            for (size_t k = 0; k < t->numel; k++)
                good &= v[k] == want;
            continue;
        }
        if (!strncmp(t->name, "gru.", 4))
            bound = 1 / sqrt(256.0);
        else if (t->ndim >= 2 && (!strncmp(t->name, "fc.", 3)))
            bound = sqrt(6.0 / (double)(t->shape[0] + t->shape[1]));
        else if (t->ndim >= 2)
            bound = 1 / sqrt((double)t->numel / (double)t->shape[0]);
        else
            bound = 1 / sqrt((double)a->tensors[i - 1].numel / (double)a->tensors[i - 1].shape[0]);
        double sd = sqrt(s2 / (double)t->numel), want_sd = bound / sqrt(3.0);
        int tok = mx <= bound * (1 + 1e-6) && (t->numel < 200 || fabs(sd - want_sd) < 0.1 * want_sd);
        if (!tok)
            diag("%s: max %.4g bound %.4g std %.4g (uniform: %.4g)", t->name, mx, bound, sd, want_sd);
        good &= tok;
    }
    ok(good, "every tensor inside its PyTorch bound with the std of a uniform (kaiming a=sqrt(5), xavier, GRU 1/sqrt(H))");
    cmr_model_free(a);
    cmr_model_free(b);
}

/* ---- files ---- */

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static int models_equal(const struct cmr_model *a, const struct cmr_model *b)
{
    return a->n_params == b->n_params && !memcmp(&a->cfg, &b->cfg, sizeof a->cfg) &&
           !memcmp(a->params, b->params, a->n_params * sizeof(float)) &&
           !memcmp(a->stats, b->stats, a->n_stats * sizeof(float)) &&
           !memcmp(a->bn_count, b->bn_count, sizeof a->bn_count);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len);
    if (fread(b, 1, *len, f) != *len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void test_files(void)
{
    char p[512], p2[512];
    struct cmr_error err = {0};
    struct cmr_model *m = new_model(CMR_MODEL_CPC, 1.0 / 32, 16, 16);
    cmr_model_init(m, 3);
    m->cfg.mel_mean = 0.1326f;
    m->cfg.mel_std = 0.1844f;
    m->s.mean[1][2] = 0.5f;
    m->bn_count[3] = 42;
    m->train.epoch = 9;
    m->train.lr = 2e-4;
    m->train.best_loss = 1.25;
    m->train.bad_epochs = 2;
    cmr_model_meta_set(m, "train.positive", "adjacent");
    /* one training step, so that Adam's state exists */
    float *x = mt_segments(1, 2 * (4 + 2));
    ok(cmr_model_zero_grad(m) == CMR_OK && cmr_model_loss(m, x, 2, 1, 1, NULL, NULL, &err) == CMR_OK &&
           cmr_model_update(m, &err) == CMR_OK,
       "a training step on a small MelCPC");
    free(x);
    path_in(p, sizeof p, "m.cmr");
    ok(cmr_model_save(m, p, 1, &err) == CMR_OK, "save with Adam state");
    struct cmr_model *l = cmr_model_load(p, &err);
    ok(l && models_equal(m, l), "load: configuration, parameters, running statistics and counters equal");
    ok(l && l->adam_m && !memcmp(l->adam_m, m->adam_m, m->n_params * 4) && !memcmp(l->adam_v, m->adam_v, m->n_params * 4) &&
           l->train.step == 1 && l->train.adam_t == 1 && l->train.epoch == 9 && l->train.lr == 2e-4 &&
           l->train.best_loss == 1.25 && l->train.bad_epochs == 2,
       "load: Adam state and training position");
    ok(l && cmr_model_meta_get(l, "train.positive") && !strcmp(cmr_model_meta_get(l, "train.positive"), "adjacent"),
       "load: metadata");
    cmr_model_free(l);
    path_in(p2, sizeof p2, "noadam.cmr");
    ok(cmr_model_save(m, p2, 0, &err) == CMR_OK && (l = cmr_model_load(p2, &err)) && !l->adam_m && models_equal(m, l),
       "save without Adam state");
    cmr_model_free(l);

    /* values a checksum cannot vouch for: saved whole (valid CRC), refused on load */
    {
        char pv[512];
        path_in(pv, sizeof pv, "values.cmr");
        int fc = cmr_model_tensor_find(m, "encoder.fc.bias"), rv = cmr_model_tensor_find(m, "encoder.blocks.1.bn.running_var");
        float *w = m->params + m->tensors[fc].offset, *var = m->stats + m->tensors[rv].offset;
        float w0 = w[3], v0 = var[2], a0 = m->adam_v[7];
        w[3] = NAN;
        ok(cmr_model_save(m, pv, 1, &err) == CMR_OK && !(l = cmr_model_load(pv, &err)) && err.code == CMR_ENAN &&
               strstr(err.msg, "'encoder.fc.bias' holds NaN at element 3"),
           "a NaN weight with a valid checksum: %s", err.msg);
        w[3] = -INFINITY;
        ok(cmr_model_save(m, pv, 1, &err) == CMR_OK && !(l = cmr_model_load(pv, &err)) && err.code == CMR_ENAN &&
               strstr(err.msg, "an infinity"),
           "an infinite weight: %s", err.msg);
        w[3] = w0;
        var[2] = -0.5f;
        ok(cmr_model_save(m, pv, 1, &err) == CMR_OK && !(l = cmr_model_load(pv, &err)) && err.code == CMR_ENAN &&
               strstr(err.msg, "'encoder.blocks.1.bn.running_var' holds a negative variance at element 2"),
           "a negative running variance: %s", err.msg);
        var[2] = v0;
        m->adam_v[7] = NAN;
        ok(cmr_model_save(m, pv, 1, &err) == CMR_OK && !(l = cmr_model_load(pv, &err)) && err.code == CMR_ENAN &&
               strstr(err.msg, "Adam"),
           "a NaN in Adam's state: %s", err.msg);
        m->adam_v[7] = a0;
        ok(cmr_model_save(m, pv, 1, &err) == CMR_OK && (l = cmr_model_load(pv, &err)) && models_equal(m, l),
           "restored, it loads");
        cmr_model_free(l);
        unlink(pv);
    }

    /* damage */
    size_t len = 0;
    unsigned char *b = slurp(p, &len);
    int all = 1, crashes = 0;
    for (size_t cut = 0; cut < len; cut += cut < 400 ? 1 : 997) {
        l = cmr_model_load_mem(b, cut, "cut", &err);
        all &= !l && (err.code == CMR_ETRUNCATED || err.code == CMR_EMAGIC || err.code == CMR_EFORMAT);
        cmr_model_free(l);
    }
    ok(all, "every truncation refused (last: %s)", err.msg);
    b[len / 2] ^= 0x10;
    l = cmr_model_load_mem(b, len, "flip", &err);
    ok(!l && err.code == CMR_EFORMAT && strstr(err.msg, "checksum"), "a flipped bit in the data: %s", err.msg);
    b[len / 2] ^= 0x10;
    for (size_t i = 0; i < 400; i++) {
        unsigned char o = b[i];
        b[i] ^= 0xa5;
        l = cmr_model_load_mem(b, len, "flip", &err);
        crashes += l != NULL;
        cmr_model_free(l);
        b[i] = o;
    }
    ok(crashes == 0, "no corrupted header byte loads (400 bytes)");
    memcpy(b, "CMRMODEX", 8);
    l = cmr_model_load_mem(b, len, "magic", &err);
    ok(!l && err.code == CMR_EMAGIC, "bad magic: %s", err.msg);
    memcpy(b, CMR_MODEL_MAGIC, 8);
    b[8] = 2;
    l = cmr_model_load_mem(b, len, "version", &err);
    ok(!l && err.code == CMR_EVERSION && strstr(err.msg, "HINT"), "a newer version: %s", err.msg);
    b[8] = 1;
    unsigned char *c = malloc(len + 3);
    memcpy(c, b, len);
    memcpy(c + len, "xyz", 3);
    l = cmr_model_load_mem(c, len + 3, "tail", &err);
    ok(!l && err.code == CMR_EFORMAT, "garbage after the model: %s", err.msg);
    free(c);
    free(b);
    ok(!cmr_model_load("/nonexistent.cmr", &err) && err.code == CMR_EIO, "a missing file: %s", err.msg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 2", tmpdir);
    ok(system(cmd) == 0, "atomic writes leave no temporary files");
    ok(cmr_model_save(m, "/nonexistent-dir/m.cmr", 0, &err) == CMR_EIO, "save into a missing directory: %s", err.msg);
    cmr_model_free(m);
}

static void write_st(const char *path, struct cmr_model *m, const char *drop, const char *bad_shape,
                     const char *extra, int nan, const struct cmr_safetensors_kv *meta, int n_meta)
{
    struct cmr_safetensors_out *o = calloc((size_t)m->n_tensors + 1, sizeof *o);
    char(*names)[80] = calloc((size_t)m->n_tensors + 1, sizeof *names);
    float *vals = FBUF(m->n_params + m->n_stats + 16);
    int64_t shapes[64][4], n = 0;
    size_t off = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        cmr_model_tensor_name(m, i, names[n], sizeof names[n]);
        if (drop && !strcmp(names[n], drop))
            continue;
        memcpy(shapes[n], m->tensors[i].shape, sizeof shapes[n]);
        if (bad_shape && !strcmp(names[n], bad_shape))
            shapes[n][0] = 1, shapes[n][1] *= m->tensors[i].shape[0];
        cmr_model_tensor_get(m, i, vals + off);
        if (nan && i == 1)
            vals[off] = NAN;
        o[n] = (struct cmr_safetensors_out){names[n], m->tensors[i].ndim, shapes[n], vals + off};
        off += m->tensors[i].numel;
        n++;
    }
    if (extra) {
        static int64_t one = 1;
        o[n++] = (struct cmr_safetensors_out){extra, 1, &one, vals};
    }
    struct cmr_error err = {0};
    if (cmr_safetensors_write(path, o, (int)n, meta, n_meta, &err)) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    free(o);
    free(names);
    free(vals);
}

static void test_safetensors(void)
{
    char p[512];
    struct cmr_error err = {0};
    struct cmr_import_opts o;
    for (int ki = 0; ki < 3; ki++) {
        struct cmr_model *m = new_model((enum cmr_model_kind)ki, 0.1, 0, 0);
        cmr_model_init(m, 11);
        m->cfg.mel_mean = 0.25f;
        m->cfg.mel_std = 0.5f;
        m->bn_count[2] = 5;
        m->s.var[3][1] = 2;
        m->train.step = 77;
        cmr_model_meta_set(m, "user.key", "value");
        path_in(p, sizeof p, "x.safetensors");
        ok(cmr_model_export(m, p, &err) == CMR_OK, "%s: export", cmr_model_kind_name(m->cfg.kind));
        cmr_import_opts_init(&o);
        struct cmr_model *l = cmr_model_import(p, &o, &err);
        ok(l && models_equal(m, l) && l->train.step == 77 && cmr_model_meta_get(l, "user.key"),
           "%s: export then import gives the same model (width 0.1, channels %d..%d)",
           cmr_model_kind_name(m->cfg.kind), m->cfg.widths[0], m->cfg.widths[4]);
        cmr_model_free(l);
        cmr_model_free(m);
    }

    /* what import infers, and what it refuses */
    struct cmr_model *m = new_model(CMR_MODEL_ENCODER, 0.25, 0, 0);
    cmr_model_init(m, 1);
    struct cmr_safetensors_kv mel[2] = {{"cmr.mel_mean", "0.5"}, {"cmr.mel_std", "2"}};
    struct cmr_safetensors_kv wrong_w[3] = {{"cmr.mel_mean", "0"}, {"cmr.mel_std", "1"}, {"cmr.width", "0.5"}};
    struct cmr_safetensors_kv wrong_k[3] = {{"cmr.mel_mean", "0"}, {"cmr.mel_std", "1"}, {"cmr.kind", "multi"}};
    path_in(p, sizeof p, "y.safetensors");

    write_st(p, m, NULL, NULL, NULL, 0, mel, 2);
    cmr_import_opts_init(&o);
    struct cmr_model *l = cmr_model_import(p, &o, &err);
    ok(l && l->cfg.kind == CMR_MODEL_ENCODER && l->cfg.width == 0.25 && l->cfg.mel_std == 2 && models_equal(m, l) == 0 &&
           !memcmp(l->params, m->params, m->n_params * 4),
       "no cmr.kind or cmr.width: encoder at width 0.25 from the shapes");
    cmr_model_free(l);

    write_st(p, m, NULL, NULL, NULL, 0, NULL, 0);
    l = cmr_model_import(p, &o, &err);
    ok(!l && err.code == CMR_EMODEL && strstr(err.msg, "--mel-mean"), "no standardisation: %s", err.msg);
    o.have_mel = 1;
    o.mel_mean = 0;
    o.mel_std = 1;
    l = cmr_model_import(p, &o, &err);
    ok(l != NULL, "... accepted with --mel-mean 0 --mel-std 1");
    cmr_model_free(l);
    o.width = 0.5;
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "--width 0.5"), "--width disagreeing with the shapes: %s", err.msg);
    cmr_import_opts_init(&o);
    o.kind = CMR_MODEL_CPC;
    o.have_mel = 1;
    o.mel_std = 1;
    l = cmr_model_import(p, &o, &err);
    ok(!l && err.code == CMR_EMODEL && strstr(err.msg, "encoder.blocks.0.conv.weight"), "--kind cpc on an encoder: %s", err.msg);
    cmr_import_opts_init(&o);

    write_st(p, m, NULL, NULL, NULL, 0, wrong_w, 3);
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "cmr.width"), "cmr.width disagreeing with the shapes: %s", err.msg);
    write_st(p, m, NULL, NULL, NULL, 0, wrong_k, 3);
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "heads.0.weight"), "cmr.kind disagreeing with the names: %s", err.msg);
    o.kind = CMR_MODEL_ENCODER;
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "--kind encoder") && strstr(err.msg, "cmr.kind=multi"), "--kind against cmr.kind: %s", err.msg);
    cmr_import_opts_init(&o);

    write_st(p, m, "blocks.2.bn.running_var", NULL, NULL, 0, mel, 2);
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "blocks.2.bn.running_var") && strstr(err.msg, "missing"), "a missing tensor: %s", err.msg);
    write_st(p, m, "blocks.2.bn.num_batches_tracked", NULL, NULL, 0, mel, 2);
    l = cmr_model_import(p, &o, &err);
    ok(l && l->bn_count[2] == 0, "a missing num_batches_tracked is 0");
    cmr_model_free(l);
    write_st(p, m, NULL, "fc.weight", NULL, 0, mel, 2);
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "fc.weight") && strstr(err.msg, "shape"), "a wrong shape: %s", err.msg);
    write_st(p, m, NULL, NULL, "head.extra", 0, mel, 2);
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "unexpected tensor 'head.extra'"), "an extra tensor: %s", err.msg);
    write_st(p, m, NULL, NULL, NULL, 1, mel, 2);
    l = cmr_model_import(p, &o, &err);
    ok(!l && err.code == CMR_ENAN, "a NaN weight: %s", err.msg);
    write_st(p, m, "fc.weight", NULL, NULL, 0, mel, 2);
    l = cmr_model_import(p, &o, &err);
    ok(!l && strstr(err.msg, "--kind"), "no fc.weight, heads.0.weight or gru.*: %s", err.msg);
    path_in(p, sizeof p, "m-as-st.cmr");
    cmr_model_save(m, p, 0, &err);
    l = cmr_model_import(p, &o, &err);
    ok(!l && err.code == CMR_EFORMAT, "a model file is not safetensors: %s", err.msg);
    cmr_model_free(m);
    unlink(p);
    path_in(p, sizeof p, "x.safetensors");
    unlink(p);
    path_in(p, sizeof p, "y.safetensors");
    unlink(p);
}

/* ---- API states ---- */

static void test_states(void)
{
    struct cmr_error err = {0};
    struct cmr_model *m = new_model(CMR_MODEL_ENCODER, 1.0 / 32, 16, 0);
    cmr_model_init(m, 2);
    float *x = mt_segments(3, 5), y[5 * 16], y3[5 * 16];
    ok(cmr_model_backward(m, y, &err) == CMR_ESTATE, "backward before any forward: %s", err.msg);
    ok(cmr_model_update(m, &err) == CMR_ESTATE, "update before any gradient: %s", err.msg);
    ok(cmr_model_loss(m, x, 1, 1, 0, NULL, NULL, &err) == CMR_EINVAL, "a batch of 1: %s", err.msg);
    ok(cmr_model_loss(m, x, 2, 0, 0, NULL, NULL, &err) == CMR_EINVAL, "temperature 0: %s", err.msg);
    ok(cmr_model_loss(m, x, 2, 1, 1, NULL, NULL, &err) == CMR_ESTATE, "backward before zero_grad: %s", err.msg);
    ok(cmr_model_gru_forward(m, y, NULL, 1, 1, 0, y3, &err) == CMR_ESTATE, "an encoder has no GRU: %s", err.msg);
    ok(cmr_model_forward(m, x, 0, 0, y, &err) == CMR_EINVAL, "a batch of 0: %s", err.msg);
    ok(cmr_model_forward(m, x, 5, 0, y, &err) == CMR_OK, "eval forward");
    ok(cmr_model_set_threads(m, 3) == CMR_OK && cmr_model_forward(m, x, 5, 0, y3, &err) == CMR_OK,
       "eval forward on 3 threads (5 segments: 2 + 2 + 1)");
    check_close("3 threads = 1 thread", y3, y, 5 * 16, 1e-6, 1e-6);
    ok(cmr_model_set_threads(m, 0) == CMR_EINVAL, "0 threads refused");
    cmr_model_set_threads(m, 1);
    float keep = x[SEGF + 100];
    x[SEGF + 100] = NAN;
    ok(cmr_model_forward(m, x, 5, 0, y, &err) == CMR_ENAN && strstr(err.msg, "segment 1"), "NaN input: %s", err.msg);
    x[SEGF + 100] = INFINITY;
    ok(cmr_model_forward(m, x, 5, 1, y, &err) == CMR_ENAN, "infinite input (training): %s", err.msg);
    x[SEGF + 100] = keep;
    /* training forward then an eval forward: backward refused (the caches are gone) */
    cmr_model_zero_grad(m);
    ok(cmr_model_forward(m, x, 4, 1, y, &err) == CMR_OK && cmr_model_forward(m, x, 2, 0, y3, &err) == CMR_OK &&
           cmr_model_backward(m, y, &err) == CMR_ESTATE,
       "backward after an eval forward: %s", err.msg);
    /* backward writes its gradients over the forward's conv outputs: once per forward */
    ok(cmr_model_forward(m, x, 4, 1, y, &err) == CMR_OK && cmr_model_backward(m, y, &err) == CMR_OK &&
           cmr_model_backward(m, y, &err) == CMR_ESTATE,
       "a second backward of one forward: %s", err.msg);
    ok(cmr_model_reserve(m, 3, 1, &err) == CMR_OK && cmr_model_act_bytes(m) > 0, "reserve: %.1f MB of activations",
       cmr_model_act_bytes(m) / 1e6);
    /* the eval forward does not touch the running statistics; training moves them */
    float mean0 = m->s.mean[0][0];
    int64_t c0 = m->bn_count[0];
    cmr_model_forward(m, x, 3, 0, y, &err);
    ok(m->s.mean[0][0] == mean0 && m->bn_count[0] == c0, "eval leaves running statistics alone");
    cmr_model_forward(m, x, 3, 1, y, &err);
    ok(m->s.mean[0][0] != mean0 && m->bn_count[0] == c0 + 1, "training updates them and counts the batch");
    free(x);
    cmr_model_free(m);
}

/* ---- end-to-end finite differences ---- */

/* the training loss recomputed in double from the model's float outputs, so
 * that the finite differences are not quantised to the float loss:
 *   siamese: InfoNCE per level of the (2B, D) training-mode outputs;
 *   cpc: z from the encoder, c from the GRU over the first `context`, the
 *        predictors applied in double, InfoNCE against z[:, context + k]. */
struct fd_ctx {
    struct cmr_model *m;
    const float *x;
    int B;
    double tau;
};

static double infonce_d(const double *a, const float *p, int ldp, int B, int D, double tau)
{
    double L = 0, s[64];
    for (int i = 0; i < B; i++) {
        double mx = -INFINITY, z = 0;
        for (int j = 0; j < B; j++) {
            double d = 0;
            for (int k = 0; k < D; k++)
                d += a[i * D + k] * p[(size_t)j * ldp + k];
            s[j] = d / tau;
            mx = fmax(mx, s[j]);
        }
        for (int j = 0; j < B; j++)
            z += exp(s[j] - mx);
        L -= s[i] - mx - log(z);
    }
    return L / B;
}

static double fd_loss(struct fd_ctx *c)
{
    struct cmr_model *m = c->m;
    const struct cmr_model_cfg *cf = &m->cfg;
    struct cmr_error err = {0};
    int B = c->B, E = cf->emb;
    double L = 0, a[64 * 64];
    if (cf->kind != CMR_MODEL_CPC) {
        int D = cmr_model_out_dim(cf), nl = D / E;
        float *o = FBUF(2 * B * D);
        if (cmr_model_forward(m, c->x, 2 * B, 1, o, &err)) {
            printf("Bail out! %s\n", err.msg);
            exit(99);
        }
        for (int l = 0; l < nl; l++) {
            for (int i = 0; i < B; i++)
                for (int k = 0; k < E; k++)
                    a[i * E + k] = o[(size_t)i * D + l * E + k];
            L += infonce_d(a, o + (size_t)B * D + l * E, D, B, E, c->tau) / nl;
        }
        free(o);
        return L;
    }
    int T = cf->context, S = T + cf->k, H = cf->hidden;
    float *z = FBUF(B * S * E), *zc = FBUF(B * T * E), *cs = FBUF(B * T * H);
    if (cmr_model_forward(m, c->x, B * S, 1, z, &err) ||
        (memcpy(zc, z, 0), 0)) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    for (int b = 0; b < B; b++)
        memcpy(zc + (size_t)b * T * E, z + (size_t)b * S * E, (size_t)T * E * sizeof(float));
    if (cmr_model_gru_forward(m, zc, NULL, B, T, 1, cs, &err)) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    for (int k = 0; k < cf->k; k++) {
        for (int b = 0; b < B; b++) {
            const float *ct = cs + ((size_t)b * T + T - 1) * H;
            for (int e = 0; e < E; e++) {
                double v = m->p.pred_b[k][e];
                for (int h = 0; h < H; h++)
                    v += (double)m->p.pred_w[k][e * H + h] * ct[h];
                a[b * E + e] = v;
            }
        }
        L += infonce_d(a, z + (size_t)(T + k) * E, S * E, B, E, c->tau);
    }
    free(z);
    free(zc);
    free(cs);
    return L;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Central differences (step eps) on up to nmax elements of tensor `name`
 * against the analytic gradient of cmr_model_loss.
 * rel_i = |a - n| / max(|a|, |n|, 5 % of the largest numeric gradient),
 * nmse = sum (a - n)^2 / sum n^2 (ggml).
 * Parameters after the last max pool (heads, fc, GRU, predictors) see a
 * smooth loss: max rel <= 1e-2 (the floor: 5 % of the tensor's largest
 * gradient), nmse <= 1e-4, and the derivative along a random direction over
 * the whole tensor within 1e-2, each counting only the part of |a - n| beyond
 * twice the central difference's own uncertainty, measured as its change
 * from step eps to 2 eps (float noise of the loss / eps, and truncation).
 * Parameters before max pools (`kinky`: the convolutions and batch norms)
 * see a float forward pass with a kink wherever a pooling window changes its
 * winner or a ReLU input crosses 0, and at these widths some windows always
 * do: an element whose one-sided slopes disagree by more than 10 % is
 * skipped (ggml's grad_expect; at least 2 and a quarter must remain), then median rel <= 5e-2
 * and nmse <= 5e-3 over the rest (a wrong term in the chain gives errors of
 * order 1; test-model-ref checks the same gradients against PyTorch's
 * autograd to 1e-4). */
static void gradcheck(struct fd_ctx *c, const char *name, int nmax, float eps, int kinky)
{
    struct cmr_model *m = c->m;
    struct cmr_error err = {0};
    int ti = cmr_model_tensor_find(m, name);
    const struct cmr_tensor *t = &m->tensors[ti];
    cmr_model_zero_grad(m);
    double l0 = 0;
    if (cmr_model_loss(m, c->x, c->B, (float)c->tau, 1, &l0, NULL, &err)) {
        printf("Bail out! %s\n", err.msg);
        exit(99);
    }
    double ld = fd_loss(c);
    float *p = m->params + t->offset, *g = m->grads + t->offset;
    int n = (int)t->numel < nmax ? (int)t->numel : nmax;
    double *num = calloc((size_t)n, sizeof *num), *ana = calloc((size_t)n, sizeof *ana), nmax_abs = 0;
    double *rels = calloc((size_t)n, sizeof *rels), *spread = calloc((size_t)n, sizeof *spread);
    char *kink = calloc((size_t)n, 1);
    int nk = 0, nr = 0;
    for (int k = 0; k < n; k++) {
        size_t i = (size_t)k * t->numel / (size_t)n;
        float keep = p[i];
        p[i] = keep + eps;
        double lp = fd_loss(c);
        p[i] = keep - eps;
        double lm = fd_loss(c);
        p[i] = keep;
        double sp = (lp - ld) / eps, sm = (ld - lm) / eps;
        num[k] = (lp - lm) / (2 * (double)eps);
        if (!kinky) {
            /* the difference's own uncertainty, measured: the same at step
             * 2 eps differs by the truncation (x4) and the float noise of the
             * loss over the step (/2); a gradient that is wrong differs by
             * far more than both */
            p[i] = keep + 2 * eps;
            double lp2 = fd_loss(c);
            p[i] = keep - 2 * eps;
            double lm2 = fd_loss(c);
            p[i] = keep;
            spread[k] = fabs((lp2 - lm2) / (4 * (double)eps) - num[k]);
        }
        ana[k] = g[i];
        kink[k] = kinky && fabs(sp - sm) > 0.1 * fmax(fmax(fabs(sp), fabs(sm)), 1e-3);
        nk += kink[k];
        if (!kink[k])
            nmax_abs = fmax(nmax_abs, fabs(num[k]));
    }
    if (!kinky)
        nmax_abs = fmax(nmax_abs, mt_maxabs(g, t->numel));
    double maxrel = 0, se = 0, sn = 0;
    for (int k = 0; k < n; k++) {
        if (kink[k])
            continue;
        double d = fmax(0, fabs(ana[k] - num[k]) - 2 * spread[k]); /* beyond the difference's uncertainty */
        double rel = d / fmax(fmax(fabs(ana[k]), fabs(num[k])), fmax(0.05 * nmax_abs, 1e-9));
        se += d * d;
        sn += num[k] * num[k];
        rels[nr++] = rel;
        maxrel = fmax(maxrel, rel);
        if (rel > (kinky ? 5e-2 : 1e-2))
            diag("%s[%d]: analytic %.6g numeric %.6g", name, k, ana[k], num[k]);
    }
    double nmse = sn > 0 ? se / sn : se, median = 0;
    if (nr) {
        qsort(rels, (size_t)nr, sizeof *rels, cmp_double);
        median = rels[nr / 2];
    }
    if (kinky)
        ok(nr >= 2 && 4 * nr >= n && median <= 5e-2 && nmse <= 5e-3,
           "%s: %d elements, %d on kinks skipped; median rel %.2e, max rel %.2e, nmse %.2e (loss %.6f, eps %g)",
           name, n, nk, median, maxrel, nmse, ld, (double)eps);
    else
        ok(maxrel <= 1e-2 && nmse <= 1e-4, "%s: %d elements, max rel %.2e, nmse %.2e (loss %.6f, eps %g)", name, n,
           maxrel, nmse, ld, (double)eps);
    if (!kinky) {
        struct cmr_rng r;
        cmr_rng_seed(&r, 77);
        float *v = FBUF(t->numel), *keep = FBUF(t->numel);
        double gv = 0, vv = 0, step;
        for (size_t i = 0; i < t->numel; i++) {
            v[i] = (float)(2 * cmr_rng_uniform(&r) - 1);
            gv += (double)g[i] * v[i];
            vv += (double)v[i] * v[i];
        }
        memcpy(keep, p, t->numel * sizeof *p);
        step = eps / sqrt(vv / (double)t->numel);
        for (size_t i = 0; i < t->numel; i++)
            p[i] = keep[i] + (float)(step * v[i]);
        double lp = fd_loss(c);
        for (size_t i = 0; i < t->numel; i++)
            p[i] = keep[i] - (float)(step * v[i]);
        double lm = fd_loss(c);
        memcpy(p, keep, t->numel * sizeof *p);
        double dnum = (lp - lm) / (2 * step), drel = fabs(dnum - gv) / fmax(fabs(gv), 1e-12);
        ok(drel <= 1e-2, "%s: along a random direction, g.v %.6g, numeric %.6g (rel %.2e)", name, gv, dnum, drel);
        free(v);
        free(keep);
    }
    free(rels);
    free(spread);
    free(kink);
    free(num);
    free(ana);
}

static void test_gradients(void)
{
    /* width 1/8 (channels 16 32 32 64 64; wider nets average their kinks
     * better than tiny ones), emb 16, batch 4, temperature 5 (logits O(1):
     * a smooth loss); MelCPC with hidden 16, context 2, K 2 */
    float eps = getenv("FDEPS") ? (float)atof(getenv("FDEPS")) : 3e-4f;
    for (int ki = 0; ki < 3; ki++) {
        struct cmr_model_cfg cfg;
        struct cmr_error err = {0};
        cfg = cmr_model_cfg_default((enum cmr_model_kind)ki, 1.0 / 8);
        cfg.emb = 16;
        if (ki == CMR_MODEL_MULTI)
            cfg.widths[4] = 16;
        if (ki == CMR_MODEL_CPC) {
            cfg.hidden = 16;
            cfg.context = 2;
        }
        struct cmr_model *m = cmr_model_new(&cfg, &err);
        cmr_model_init(m, 100 + (uint64_t)ki);
        struct fd_ctx c = {m, NULL, 4, 5.0};
        int n = ki == CMR_MODEL_CPC ? 4 * (cfg.context + cfg.k) : 8;
        float *x = mt_segments(200 + (uint64_t)ki, n);
        c.x = x;
        const char *pre = ki == CMR_MODEL_CPC ? "encoder." : "";
        char name[96];
        diag("---- %s: %s loss -> first conv weights, finite differences ----", cmr_model_kind_name(cfg.kind),
             ki == CMR_MODEL_MULTI ? "InfoNCE-Multi" : ki == CMR_MODEL_CPC ? "MelCPC (GRU, 2 predictors)" : "InfoNCE");
        snprintf(name, sizeof name, "%sblocks.0.conv.weight", pre);
        gradcheck(&c, name, 12, eps, 1);
        /* (MelCPC's first batch-norm weights have gradients ~1e-2 whose
         * central differences sit ~5 % low across the kinks: checked instead
         * against PyTorch's autograd, equal to 1e-5 at this configuration) */
        snprintf(name, sizeof name, "%sblocks.0.bn.weight", pre);
        if (ki != CMR_MODEL_CPC)
            gradcheck(&c, name, 16, eps, 1);
        snprintf(name, sizeof name, "%sblocks.3.conv.weight", pre);
        gradcheck(&c, name, 4, eps, 1);
        if (ki == CMR_MODEL_MULTI) {
            gradcheck(&c, "heads.1.weight", 2, 1e-3f, 0);
            gradcheck(&c, "heads.4.bias", 2, 1e-3f, 0);
        } else {
            snprintf(name, sizeof name, "%sfc.weight", pre);
            gradcheck(&c, name, 2, 1e-3f, 0);
        }
        if (ki == CMR_MODEL_CPC) {
            gradcheck(&c, "gru.weight_ih_l0", 3, 1e-3f, 0);
            gradcheck(&c, "gru.weight_hh_l0", 3, 1e-3f, 0);
            gradcheck(&c, "gru.bias_hh_l0", 2, 1e-3f, 0);
            gradcheck(&c, "predictors.1.weight", 2, 1e-3f, 0);
        }
        free(x);
        cmr_model_free(m);
    }
}

/* Inference is a pure function of the segment: the same bytes whatever the
 * batch (1, 5, 16), the chunk of it a thread takes (threads 1 and 2, and 3
 * on 5) and the segments beside it. Width 0.25 puts the Winograd blocks,
 * the small-map im2col blocks and the linear layers on the path (the
 * algorithm each block takes is printed). Under OpenBLAS's Haswell, Zen and
 * SkylakeX kernels a batched OpenBLAS GEMM broke this. MelCPC: the GRU over
 * the sequence in one call, in two pieces, and step by step. */
static void test_invariance(void)
{
    for (int ki = 0; ki < 3; ki++) {
        struct cmr_model_cfg cfg;
        struct cmr_error err = {0};
        cfg = cmr_model_cfg_default((enum cmr_model_kind)ki, 0.25);
        struct cmr_model *m = cmr_model_new(&cfg, &err);
        if (!m) {
            printf("Bail out! %s\n", err.msg);
            exit(99);
        }
        cmr_model_init(m, 3);
        for (int l = 0; l < CMR_MODEL_BLOCKS; l++)
            for (int ch = 0; ch < cfg.widths[l]; ch++) {
                m->s.mean[l][ch] = 0.01f * (float)(ch % 5 - 2);
                m->s.var[l][ch] = 0.5f + 0.1f * (float)(ch % 3);
            }
        if (ki == 0) {
            static const int H[5] = {188, 94, 47, 23, 5}, W[5] = {96, 48, 24, 12, 3};
            for (int l = 0; l < CMR_MODEL_BLOCKS; l++) {
                struct cmr_conv2d_dims d = {16, l ? cfg.widths[l - 1] : 1, H[l], W[l], cfg.widths[l], 5, 5, 2, 2};
                diag("width 0.25, block %d: %s", l + 1,
                     cmr_conv2d_algo(&d) == CMR_CONV2D_WINOGRAD ? "Winograd" : "im2col");
            }
        }
        const int n = 16, D = ki == CMR_MODEL_CPC ? cfg.emb : cmr_model_out_dim(&cfg);
        float *x = mt_segments(31, n), *ref = FBUF((size_t)n * D), *y = FBUF((size_t)n * D);
        cmr_model_set_threads(m, 1);
        int okf = cmr_model_forward(m, x, n, 0, ref, &err) == CMR_OK;
        static const int batches[] = {1, 5, 16};
        for (int threads = 1; threads <= 3; threads++) {
            cmr_model_set_threads(m, threads);
            for (int bi = 0; bi < 3; bi++) {
                int b = batches[bi];
                if (threads == 3 && b != 5)
                    continue;
                memset(y, 0xff, sizeof(float) * (size_t)n * D);
                for (int i0 = 0; i0 < n && okf; i0 += b) {
                    int cnt = n - i0 < b ? n - i0 : b;
                    okf &= cmr_model_forward(m, x + (size_t)i0 * SEGF, cnt, 0, y + (size_t)i0 * D, &err) == CMR_OK;
                }
                ok(okf && !memcmp(y, ref, sizeof(float) * (size_t)n * D),
                   "%s: batch %d, %d thread%s: the same bytes as batch 16, 1 thread", cmr_model_kind_name(ki), b,
                   threads, threads > 1 ? "s" : "");
            }
        }
        /* a segment beside other segments: its embedding alone, last in a batch */
        memcpy(x, x + (size_t)7 * SEGF, sizeof(float) * SEGF);
        cmr_model_set_threads(m, 1);
        ok(cmr_model_forward(m, x, 9, 0, y, &err) == CMR_OK && !memcmp(y, ref + (size_t)7 * D, sizeof(float) * D) &&
               !memcmp(y + (size_t)8 * D, ref + (size_t)8 * D, sizeof(float) * D),
           "%s: a segment's embedding does not depend on its place in the batch", cmr_model_kind_name(ki));
        if (ki == CMR_MODEL_CPC) {
            const int H = cfg.hidden;
            float *c1 = FBUF((size_t)n * H), *c2 = FBUF((size_t)n * H);
            int g = cmr_model_gru_forward(m, ref, NULL, 1, n, 0, c1, &err) == CMR_OK &&
                    cmr_model_gru_forward(m, ref, NULL, 1, 5, 0, c2, &err) == CMR_OK &&
                    cmr_model_gru_forward(m, ref + 5 * (size_t)D, c2 + 4 * (size_t)H, 1, n - 5, 0, c2 + 5 * (size_t)H,
                                          &err) == CMR_OK;
            ok(g && !memcmp(c1, c2, sizeof(float) * (size_t)n * H), "cpc: the GRU in one call or in two pieces");
            for (int t = 0; t < n && g; t++)
                g = cmr_model_gru_forward(m, ref + (size_t)t * D, t ? c2 + (size_t)(t - 1) * H : NULL, 1, 1, 0,
                                          c2 + (size_t)t * H, &err) == CMR_OK;
            ok(g && !memcmp(c1, c2, sizeof(float) * (size_t)n * H), "cpc: the GRU step by step");
            free(c1);
            free(c2);
        }
        free(x);
        free(ref);
        free(y);
        cmr_model_free(m);
    }
}

int main(void)
{
    tap_plan_none();
    cmr_nn_set_threads(1);
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp\n");
        return 99;
    }
    test_cfg();
    test_layout();
    test_init();
    test_files();
    test_safetensors();
    test_states();
    test_gradients();
    test_invariance();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    (void)!system(cmd);
    return tap_done();
}
