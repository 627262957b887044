/* cmr-model: create, inspect, import and export model files
 * (see docs/models.md for the file format and the safetensors mapping).
 *
 *   cmr-model init --kind encoder|multi|cpc [--width W] [--seed S] OUT
 *   cmr-model info FILE
 *   cmr-model import [--kind K] [--width W] [--mel-mean M --mel-std S] IN.safetensors OUT
 *   cmr-model export IN OUT.safetensors
 *   cmr-model card [--set KEY=VALUE]... [--set-file KEY=FILE]... IN OUT
 */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"
#include "safetensors.h"
#include "util/atomic.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-model init --kind KIND [OPTION]... OUT\n"
        "       cmr-model info FILE\n"
        "       cmr-model import [OPTION]... IN.safetensors OUT\n"
        "       cmr-model export IN OUT.safetensors\n"
        "       cmr-model card [--set KEY=VALUE]... [--set-file KEY=FILE]... IN OUT\n"
        "Create, inspect and convert cmr model files. Tensor names in safetensors\n"
        "files are the state_dict() keys of the PyTorch reference's Encoder,\n"
        "MultiEncoder and MelCPC (tests/ref/cmr_models.py), so models move between\n"
        "cmr and PyTorch (docs/models.md).\n"
        "\n"
        "init: a freshly initialised model (PyTorch's default initialisation)\n"
        "  -k, --kind KIND     encoder (128-d), multi (multi-level, 640-d) or\n"
        "                      cpc (MelCPC: encoder + GRU, 256-d)\n"
        "  -w, --width W       channel multiplier, (0, 4] [1 = the paper's widths]\n"
        "  -s, --seed S        seed of the initialisation [0]\n"
        "      --emb N         embedding size [128]\n"
        "      --hidden N      cpc: GRU hidden size [256]\n"
        "      --steps K       cpc: prediction steps K [2]\n"
        "      --context N     cpc: GRU context in segments during training [4]\n"
        "      --mel-mean M    input standardisation mean [0]\n"
        "      --mel-std S     input standardisation std, > 0 [1]\n"
        "info: the configuration, parameter count, training state, metadata and\n"
        "  per-tensor statistics of a model file (or the header of a safetensors file)\n"
        "import: a safetensors file into a model file. What its __metadata__ lacks\n"
        "  is read from the tensor shapes; otherwise give it:\n"
        "      --kind, --width, --context, --mel-mean M --mel-std S (as for init)\n"
        "export: a model file to safetensors (F32, with __metadata__ cmr.kind,\n"
        "  cmr.width, cmr.mel_mean, cmr.mel_std, ...)\n"
        "card: a copy of IN for shipping: the weights, the running statistics and\n"
        "  the training counters, without Adam's moments, with metadata set\n"
        "  (the model card that 'info' shows; a value may not hold a newline)\n"
        "      --set KEY=VALUE       set (or replace) one metadata entry\n"
        "      --set-file KEY=FILE   the same, the value read from FILE (a trailing\n"
        "                            newline dropped; at most 4096 bytes)\n"
        "\n"
        "  -q, --quiet         no messages\n"
        "  -v, --verbose       more detail\n"
        "  -h, --help          this help\n"
        "\n"
        "OUT is written atomically (a temporary file beside it, renamed over it; a\n"
        "symbolic link's target is replaced, a FIFO or device is written directly);\n"
        "OUT may not be the input.\n"
        "Exit status: 0 ok, 1 bad or unreadable file, 2 usage.\n");
    exit(code);
}

enum { OPT_EMB = 256, OPT_HIDDEN, OPT_STEPS, OPT_CONTEXT, OPT_MEL_MEAN, OPT_MEL_STD, OPT_SET,
       OPT_SET_FILE };

static const struct option longopts[] = {
    {"kind", required_argument, NULL, 'k'},
    {"width", required_argument, NULL, 'w'},
    {"seed", required_argument, NULL, 's'},
    {"emb", required_argument, NULL, OPT_EMB},
    {"hidden", required_argument, NULL, OPT_HIDDEN},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"mel-mean", required_argument, NULL, OPT_MEL_MEAN},
    {"mel-std", required_argument, NULL, OPT_MEL_STD},
    {"set", required_argument, NULL, OPT_SET},
    {"set-file", required_argument, NULL, OPT_SET_FILE},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct opts {
    int kind;
    double width;
    uint64_t seed;
    int emb, hidden, steps, context;
    int have_mean, have_std;
    double mel_mean, mel_std;
    unsigned given; /* bit per option, to refuse options a command does not take */
    int n_set;      /* card: --set / --set-file, in order */
    char *set[CMR_MODEL_MAX_META];
    int set_is_file[CMR_MODEL_MAX_META];
};

enum { G_KIND = 1, G_WIDTH = 2, G_SEED = 4, G_EMB = 8, G_HIDDEN = 16, G_STEPS = 32,
       G_CONTEXT = 64, G_MEL = 128, G_SET = 256 };

static const char *human(double bytes, char *buf, size_t n)
{
    if (bytes >= 1e9)
        snprintf(buf, n, "%.2f GB", bytes / 1e9);
    else if (bytes >= 1e6)
        snprintf(buf, n, "%.2f MB", bytes / 1e6);
    else
        snprintf(buf, n, "%.1f kB", bytes / 1e3);
    return buf;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, d ? "," : "", shape[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

static void tensor_stats(const float *v, size_t n, double *mean, double *sd, double *mn, double *mx)
{
    double s = 0, s2 = 0;
    *mn = INFINITY;
    *mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        *mn = v[i] < *mn ? v[i] : *mn;
        *mx = v[i] > *mx ? v[i] : *mx;
    }
    *mean = s / (double)n;
    double var = s2 / (double)n - *mean * *mean;
    *sd = var > 0 ? sqrt(var) : 0;
}

static int info_safetensors(const char *path)
{
    struct cmr_safetensors *st;
    struct cmr_error err = {0};
    int rc = cmr_safetensors_read(path, &st, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    printf("file        %s (safetensors, not a cmr model file: convert with 'cmr-model import')\n", path);
    size_t total = 0;
    for (int i = 0; i < st->n_tensors; i++)
        total += cmr_safetensors_numel(&st->tensors[i]);
    printf("tensors     %d, %zu values\n", st->n_tensors, total);
    for (int i = 0; i < st->n_meta; i++)
        printf("meta        %s = %s\n", st->meta[i].key, st->meta[i].val);
    float *buf = NULL;
    for (int i = 0; i < st->n_tensors; i++) {
        const struct cmr_safetensors_tensor *t = &st->tensors[i];
        char sh[96];
        size_t n = cmr_safetensors_numel(t);
        shape_str(sh, sizeof sh, t->ndim, t->shape);
        if (!n) {
            printf("  %-40s %-4s %-18s (empty)\n", t->name, cmr_safetensors_dtype_name(t->dtype), sh);
            continue;
        }
        float *nb = realloc(buf, n * sizeof *buf);
        if (!nb)
            cli_die(CLI_EXIT_DATA, "out of memory");
        buf = nb;
        cmr_safetensors_get(st, t, buf);
        double mean, sd, mn, mx;
        tensor_stats(buf, n, &mean, &sd, &mn, &mx);
        printf("  %-40s %-4s %-18s mean %+.4g std %.4g min %+.4g max %+.4g\n", t->name,
               cmr_safetensors_dtype_name(t->dtype), sh, mean, sd, mn, mx);
    }
    free(buf);
    cmr_safetensors_free(st);
    return 0;
}

static struct cmr_model *load_or_die(const char *path)
{
    struct cmr_error err = {0};
    struct cmr_model *m = cmr_model_load(path, &err);
    if (!m)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    return m;
}

static int cmd_info(const char *path)
{
    struct cmr_error err = {0};
    struct cmr_model *m = cmr_model_load(path, &err);
    if (!m) {
        /* a safetensors file: show its header instead */
        FILE *f = fopen(path, "rb");
        unsigned char head[9];
        int st = f && fread(head, 1, 9, f) == 9 && head[8] == '{';
        if (f)
            fclose(f);
        if (st && err.code == CMR_EMAGIC)
            return info_safetensors(path);
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    }
    const struct cmr_model_cfg *c = &m->cfg;
    const struct cmr_train_state *t = &m->train;
    static const char *what[] = {"siamese encoder", "multi-level encoder", "MelCPC"};
    char hb[32];
    printf("file        %s\n", path);
    printf("kind        %s (%s, %d-d output)\n", cmr_model_kind_name(c->kind), what[c->kind],
           cmr_model_out_dim(c));
    printf("width       %g (channels %d %d %d %d %d)\n", c->width, c->widths[0], c->widths[1],
           c->widths[2], c->widths[3], c->widths[4]);
    printf("emb         %d\n", c->emb);
    if (c->kind == CMR_MODEL_CPC)
        printf("gru         hidden %d, prediction steps K %d, context %d segments\n", c->hidden, c->k,
               c->context);
    printf("input       %d x %d log-mel, standardisation (x - %g) / %g\n", c->n_time, c->n_freq,
           (double)c->mel_mean, (double)c->mel_std);
    int n_stat = 0, n_count = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        n_stat += m->tensors[i].role == CMR_TENSOR_STAT;
        n_count += m->tensors[i].role == CMR_TENSOR_COUNT;
    }
    printf("parameters  %zu (%s as float32)\n", m->n_params, human(4.0 * (double)m->n_params, hb, sizeof hb));
    printf("tensors     %d: %d parameters, %d batch-norm running statistics, %d counters\n",
           m->n_tensors, m->n_tensors - n_stat - n_count, n_stat, n_count);
    printf("training    step %" PRId64 ", epoch %" PRId64 ", lr %g, best loss %g, bad epochs %d\n",
           t->step, t->epoch, t->lr, t->best_loss, t->bad_epochs);
    printf("adam        t %" PRId64 ", betas %g/%g, eps %g, weight decay %g, state %s\n", t->adam_t, t->beta1,
           t->beta2, t->eps, t->weight_decay, m->adam_m ? "saved" : "none");
    for (int i = 0; i < m->n_meta; i++)
        printf("meta        %s = %s\n", m->meta[i].key, m->meta[i].val);
    size_t maxn = 1;
    for (int i = 0; i < m->n_tensors; i++)
        maxn = m->tensors[i].numel > maxn ? m->tensors[i].numel : maxn;
    float *buf = malloc(maxn * sizeof *buf);
    if (!buf)
        cli_die(CLI_EXIT_DATA, "out of memory");
    for (int i = 0; i < m->n_tensors; i++) {
        char name[80], sh[64];
        cmr_model_tensor_name(m, i, name, sizeof name);
        shape_str(sh, sizeof sh, m->tensors[i].ndim, m->tensors[i].shape);
        cmr_model_tensor_get(m, i, buf);
        if (m->tensors[i].role == CMR_TENSOR_COUNT) {
            printf("  %-40s %-16s %.0f\n", name, sh, (double)buf[0]);
            continue;
        }
        double mean, sd, mn, mx;
        tensor_stats(buf, m->tensors[i].numel, &mean, &sd, &mn, &mx);
        printf("  %-40s %-16s mean %+.4g std %.4g min %+.4g max %+.4g\n", name, sh, mean, sd, mn, mx);
    }
    free(buf);
    cmr_model_free(m);
    return 0;
}

/* before any work: out must not be the input, and must be writable
 * (util/atomic.h: a FIFO or a character device is written directly) */
static void check_out(const char *out, const char *in)
{
    struct cmr_error err = {0};
    if (cmr_output_check(NULL, out, &in, in ? 1 : 0, CMR_ATOMIC_STREAM, &err))
        cli_die(err.code == CMR_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_DATA, "%s", err.msg);
}

static void refuse(const struct opts *o, unsigned allowed, const char *cmd)
{
    static const char *names[] = {"--kind", "--width", "--seed", "--emb", "--hidden",
                                  "--steps", "--context", "--mel-mean/--mel-std",
                                  "--set/--set-file"};
    for (int i = 0; i < 9; i++)
        if ((o->given & (1u << i)) && !(allowed & (1u << i)))
            cli_usage_error("%s does not take %s", cmd, names[i]);
}

static void mel_opts(const struct opts *o)
{
    if (o->have_mean != o->have_std)
        cli_usage_error("--mel-mean and --mel-std go together");
}

static int cmd_init(const struct opts *o, const char *out)
{
    struct cmr_model_cfg cfg;
    struct cmr_error err = {0};
    refuse(o, G_KIND | G_WIDTH | G_SEED | G_EMB | G_HIDDEN | G_STEPS | G_CONTEXT | G_MEL, "init");
    if (o->kind < 0)
        cli_usage_error("init needs --kind encoder|multi|cpc");
    mel_opts(o);
    if (o->kind != CMR_MODEL_CPC && (o->given & (G_HIDDEN | G_STEPS | G_CONTEXT)))
        cli_usage_error("--hidden, --steps and --context are for --kind cpc");
    cfg = cmr_model_cfg_default((enum cmr_model_kind)o->kind, o->width);
    if (o->emb) {
        cfg.emb = o->emb;
        if (cfg.kind == CMR_MODEL_MULTI)
            cfg.widths[4] = o->emb;
    }
    if (o->hidden)
        cfg.hidden = o->hidden;
    if (o->steps)
        cfg.k = o->steps;
    if (o->context)
        cfg.context = o->context;
    if (o->have_mean) {
        cfg.mel_mean = (float)o->mel_mean;
        cfg.mel_std = (float)o->mel_std;
    }
    check_out(out, NULL);
    struct cmr_model *m = cmr_model_new(&cfg, &err);
    if (!m)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    cmr_model_init(m, o->seed);
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
    cmr_model_meta_set(m, "cmr.init_seed", seed);
    int rc = cmr_model_save(m, out, 0, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    cli_info("%s: %s model, width %g, %zu parameters, seed %" PRIu64, out,
             cmr_model_kind_name(cfg.kind), cfg.width, m->n_params, o->seed);
    cmr_model_free(m);
    return 0;
}

static int cmd_import(const struct opts *o, const char *in, const char *out)
{
    struct cmr_import_opts io;
    struct cmr_error err = {0};
    refuse(o, G_KIND | G_WIDTH | G_CONTEXT | G_MEL, "import");
    mel_opts(o);
    cmr_import_opts_init(&io);
    io.kind = o->kind;
    io.width = o->given & G_WIDTH ? o->width : 0;
    io.context = o->context;
    if (o->have_mean) {
        io.have_mel = 1;
        io.mel_mean = (float)o->mel_mean;
        io.mel_std = (float)o->mel_std;
    }
    check_out(out, in);
    struct cmr_model *m = cmr_model_import(in, &io, &err);
    if (!m)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    int rc = cmr_model_save(m, out, 0, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    cli_info("%s: %s model, width %g, %zu parameters", out, cmr_model_kind_name(m->cfg.kind),
             m->cfg.width, m->n_params);
    cmr_model_free(m);
    return 0;
}

static int cmd_export(const struct opts *o, const char *in, const char *out)
{
    struct cmr_error err = {0};
    refuse(o, 0, "export");
    check_out(out, in);
    struct cmr_model *m = load_or_die(in);
    int rc = cmr_model_export(m, out, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    cmr_model_free(m);
    return 0;
}

/* the value of --set-file KEY=FILE: FILE's text, one trailing newline dropped */
static char *read_value(const char *key, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        cli_die(CLI_EXIT_DATA, "--set-file %s: cannot read '%s'", key, path);
    char *buf = malloc(4098);
    if (!buf)
        cli_die(CLI_EXIT_DATA, "out of memory");
    size_t n = fread(buf, 1, 4097, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        cli_die(CLI_EXIT_DATA, "--set-file %s: reading '%s' failed", key, path);
    if (n && buf[n - 1] == '\n')
        n--;
    if (n > 4096)
        cli_die(CLI_EXIT_DATA, "--set-file %s: '%s' is longer than 4096 bytes", key, path);
    buf[n] = 0;
    return buf;
}

static int cmd_card(const struct opts *o, const char *in, const char *out)
{
    struct cmr_error err = {0};
    refuse(o, G_SET, "card");
    check_out(out, in);
    struct cmr_model *m = load_or_die(in);
    for (int i = 0; i < o->n_set; i++) {
        char *eq = strchr(o->set[i], '=');
        *eq = 0;
        const char *key = o->set[i];
        char *val = o->set_is_file[i] ? read_value(key, eq + 1) : eq + 1;
        if (strchr(val, '\n'))
            cli_usage_error("metadata %s: the value holds a newline", key);
        if (strlen(val) > 4096)
            cli_usage_error("metadata %s: the value is longer than 4096 bytes", key);
        if (cmr_model_meta_set(m, key, val))
            cli_die(CLI_EXIT_DATA, "%s: more than %d metadata entries", in, CMR_MODEL_MAX_META);
        if (o->set_is_file[i])
            free(val);
    }
    int rc = cmr_model_save(m, out, 0, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    cli_info("%s: %s model, width %g, %d metadata entries, no optimizer state", out,
             cmr_model_kind_name(m->cfg.kind), m->cfg.width, m->n_meta);
    cmr_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.kind = -1, .width = 1.0};
    int c;
    cli_init("cmr-model");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:w:s:qvh", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': {
            enum cmr_model_kind k;
            if (cmr_model_kind_parse(optarg, &k))
                cli_usage_error("--kind takes encoder, multi or cpc, got '%s'", optarg);
            o.kind = (int)k;
            o.given |= G_KIND;
            break;
        }
        case 'w':
            o.width = cli_double("--width", optarg, 1e-6, 4);
            if (!(o.width > 0))
                cli_usage_error("--width takes a number in (0, 4], got '%s'", optarg);
            o.given |= G_WIDTH;
            break;
        case 's':
            o.seed = cli_seed("--seed", optarg);
            o.given |= G_SEED;
            break;
        case OPT_EMB:
            o.emb = (int)cli_long("--emb", optarg, 1, 8192);
            o.given |= G_EMB;
            break;
        case OPT_HIDDEN:
            o.hidden = (int)cli_long("--hidden", optarg, 1, 8192);
            o.given |= G_HIDDEN;
            break;
        case OPT_STEPS:
            o.steps = (int)cli_long("--steps", optarg, 1, CMR_MODEL_MAX_K);
            o.given |= G_STEPS;
            break;
        case OPT_CONTEXT:
            o.context = (int)cli_long("--context", optarg, 1, 1024);
            o.given |= G_CONTEXT;
            break;
        case OPT_MEL_MEAN:
            o.mel_mean = cli_double("--mel-mean", optarg, -1e6, 1e6);
            o.have_mean = 1;
            o.given |= G_MEL;
            break;
        case OPT_MEL_STD:
            o.mel_std = cli_double("--mel-std", optarg, 1e-12, 1e6);
            o.have_std = 1;
            o.given |= G_MEL;
            break;
        case OPT_SET:
        case OPT_SET_FILE: {
            const char *name = c == OPT_SET ? "--set" : "--set-file";
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || strlen(optarg) > 4096 + 256)
                cli_usage_error("%s takes KEY=%s, got '%s'", name, c == OPT_SET ? "VALUE" : "FILE",
                                optarg);
            if (o.n_set == CMR_MODEL_MAX_META)
                cli_usage_error("at most %d --set/--set-file", CMR_MODEL_MAX_META);
            o.set_is_file[o.n_set] = c == OPT_SET_FILE;
            o.set[o.n_set++] = optarg;
            o.given |= G_SET;
            break;
        }
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, 0);
        default: cli_bad_option(argv, c);
        }
    }
    if (optind >= argc)
        cli_usage_error("missing command: init, info, import, export or card");
    const char *cmd = argv[optind++];
    int nargs = argc - optind;
    char **args = argv + optind;
    if (!strcmp(cmd, "init")) {
        if (nargs != 1)
            cli_usage_error("init takes one output file, got %d arguments", nargs);
        return cmd_init(&o, args[0]);
    }
    if (!strcmp(cmd, "info")) {
        if (nargs != 1)
            cli_usage_error("info takes one model file, got %d arguments", nargs);
        refuse(&o, 0, "info");
        int rc = cmd_info(args[0]);
        if (fflush(stdout) || ferror(stdout))
            cli_die(CLI_EXIT_DATA, "error: writing output failed");
        return rc;
    }
    if (!strcmp(cmd, "import")) {
        if (nargs != 2)
            cli_usage_error("import takes IN.safetensors OUT, got %d arguments", nargs);
        return cmd_import(&o, args[0], args[1]);
    }
    if (!strcmp(cmd, "export")) {
        if (nargs != 2)
            cli_usage_error("export takes IN OUT.safetensors, got %d arguments", nargs);
        return cmd_export(&o, args[0], args[1]);
    }
    if (!strcmp(cmd, "card")) {
        if (nargs != 2)
            cli_usage_error("card takes IN OUT, got %d arguments", nargs);
        return cmd_card(&o, args[0], args[1]);
    }
    cli_usage_error("unknown command '%s' (init, info, import, export or card)", cmd);
}
