/* cmr-encode: "segment" frames -> "embedding" frames through a model file
 * (see docs/models.md and docs/filters.md#cmr-encode)
 *
 *   cmr-encode --model FILE [--threads N] [--batch N] [FILE|-]
 *
 * Segments are gathered across tracks into batches of --batch for speed;
 * frames come out in input order, end frames after their track's
 * embeddings. A MelCPC model runs its GRU over each track's sequence of
 * segment embeddings (state carried from batch to batch, reset per track)
 * and emits the GRU output at every segment. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "frame.h"
#include "model.h"
#include "model_default.h"

#define SEG (CMR_MODEL_T * CMR_MODEL_F)

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-encode [--model FILE] [OPTION]... [FILE|-]\n"
        "Turn \"segment\" frames (log-mel, shape [188, 96] = frames x mel bins) into\n"
        "\"embedding\" frames with a cmr model file. Reads FILE or stdin.\n"
        "\n"
        "  -m, --model FILE    model file (cmr-model init/import, cmr-train)\n"
        "                      [$CMR_MODEL, else the installed cmr-base:\n"
        "                      %s]\n"
        "  -j, --threads N     threads [1] (1..64)\n"
        "  -b, --batch N       segments per forward pass [16] (1..4096)\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       the model and the throughput on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "The model standardises its input itself: (x - mel_mean) / mel_std, with\n"
        "the values stored in the model file (0 and 1 when it has none).\n"
        "Output: one \"embedding\" frame per segment, shape [D]: 128 (encoder),\n"
        "640 (multi-level: the five levels concatenated) or 256 (MelCPC: the GRU\n"
        "output over the track's segments, in order, from a zero state).\n"
        "Track, index, offset, rate, metadata and info are passed through, and so\n"
        "are end frames.\n"
        "Exit status: 0 ok, 1 bad model file, bad input (wrong kind or shape,\n"
        "NaN or infinite values, truncated stream) or output failed, 2 usage.\n",
        cmr_model_installed_path());
    exit(code);
}

/* a queued output: an embedding frame waiting for its data, or an end frame */
struct item {
    struct cmr_frame fr;
    int seg;                /* row in the batch, or -1 for an end frame */
};

struct state {
    struct cmr_model *m;
    struct cmr_writer *w;
    int batch, D;
    float *x, *emb, *ctx;   /* (batch, SEG), (batch, emb), (batch, hidden) */
    struct item *q;
    int nq, cap, nseg;
    /* cpc: the GRU state of the current track */
    char *track;
    int have_h;
    float *h;
    long long segments;
    /* throughput, for -v: from the end of the first batch (a warm-up) to the end */
    double t_warm;
    long long seg_warm;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void flush(struct state *s)
{
    struct cmr_error err = {0};
    const struct cmr_model_cfg *c = &s->m->cfg;
    float *out = c->kind == CMR_MODEL_CPC ? s->emb : s->ctx;
    if (s->nseg > 0) {
        int rc = cmr_model_forward(s->m, s->x, s->nseg, 0, out, &err);
        if (rc)
            cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    }
    if (c->kind == CMR_MODEL_CPC) {
        /* run the GRU over each run of consecutive segments of one track */
        for (int i = 0; i < s->nq;) {
            struct item *it = &s->q[i];
            if (it->seg < 0) {
                if (s->track && !strcmp(s->track, it->fr.track)) {
                    free(s->track); /* the track ended: the next one starts from zero */
                    s->track = NULL;
                    s->have_h = 0;
                }
                i++;
                continue;
            }
            if (!s->track || strcmp(s->track, it->fr.track)) {
                free(s->track);
                if (!(s->track = strdup(it->fr.track)))
                    cli_die(CLI_EXIT_DATA, "out of memory");
                s->have_h = 0;
            }
            int j = i, n = 0;
            while (j < s->nq && s->q[j].seg >= 0 && !strcmp(s->q[j].fr.track, it->fr.track)) {
                j++;
                n++;
            }
            int rc = cmr_model_gru_forward(s->m, s->emb + (size_t)it->seg * c->emb,
                                           s->have_h ? s->h : NULL, 1, n, 0,
                                           s->ctx + (size_t)it->seg * c->hidden, &err);
            if (rc)
                cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
            memcpy(s->h, s->ctx + (size_t)(it->seg + n - 1) * c->hidden, (size_t)c->hidden * sizeof(float));
            s->have_h = 1;
            i = j;
        }
    }
    for (int i = 0; i < s->nq; i++) {
        struct item *it = &s->q[i];
        if (it->seg >= 0)
            memcpy(it->fr.data, s->ctx + (size_t)it->seg * s->D, (size_t)s->D * sizeof(float));
        cli_put(s->w, &it->fr);
    }
    s->segments += s->nseg;
    if (!s->seg_warm && s->nseg) {
        s->seg_warm = s->segments;
        s->t_warm = now();
    }
    s->nq = 0;
    s->nseg = 0;
}

static struct item *push(struct state *s)
{
    if (s->nq == s->cap)
        flush(s);
    return &s->q[s->nq++];
}

static void segment(struct state *s, const struct cmr_frame *fr)
{
    if (strcmp(fr->kind, "segment") != 0)
        cli_wrong_kind(fr, "\"segment\"");
    if (fr->ndim != 2 || fr->shape[0] != CMR_MODEL_T || fr->shape[1] != CMR_MODEL_F) {
        char sh[96] = "";
        for (int d = 0; d < fr->ndim; d++)
            snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", d ? ", " : "",
                     (long long)fr->shape[d]);
        cli_die(CLI_EXIT_DATA, "track \"%s\": segment %lld has shape [%s], the model takes [%d, %d]",
                fr->track, (long long)fr->index, sh, CMR_MODEL_T, CMR_MODEL_F);
    }
    for (size_t i = 0; i < SEG; i++)
        if (!isfinite(fr->data[i]))
            cli_die(CLI_EXIT_DATA, "track \"%s\": segment %lld holds %s (frame %zu, bin %zu)", fr->track,
                    (long long)fr->index, isnan(fr->data[i]) ? "NaN" : "an infinity", i / CMR_MODEL_F,
                    i % CMR_MODEL_F);
    struct item *it = push(s);
    int64_t shape[1] = {s->D};
    cmr_frame_reset(&it->fr);
    if (cmr_frame_make_tensor(&it->fr, "embedding", fr->track, 1, shape) != CMR_OK ||
        cmr_frame_meta_copy(&it->fr, fr) != CMR_OK || cmr_frame_info_copy(&it->fr, fr) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    it->fr.index = fr->index;
    it->fr.offset = fr->offset;
    it->fr.rate = fr->rate;
    it->seg = s->nseg++;
    memcpy(s->x + (size_t)it->seg * SEG, fr->data, SEG * sizeof(float));
    if (s->nseg == s->batch)
        flush(s);
}

static void end(struct state *s, const struct cmr_frame *fr)
{
    struct item *it = push(s);
    cmr_frame_reset(&it->fr);
    if (cmr_frame_make_end(&it->fr, fr->track, fr->frames) != CMR_OK ||
        (fr->error && cmr_frame_set_error(&it->fr, fr->error) != CMR_OK))
        cli_die(CLI_EXIT_DATA, "out of memory");
    it->seg = -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 'j'},
        {"batch", required_argument, NULL, 'b'},
        {"force", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct state s;
    struct cmr_error err = {0};
    struct cmr_frame fr, hdr;
    const char *model = NULL, *input = NULL;
    int force = 0, threads = 1, c;

    memset(&s, 0, sizeof s);
    s.batch = 16;
    cli_init("cmr-encode");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:j:b:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'j': threads = (int)cli_long("--threads", optarg, 1, 64); break;
        case 'b': s.batch = (int)cli_long("--batch", optarg, 1, 4096); break;
        case 'F': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    if (!(model = cmr_model_default_path(model, &err)))
        cli_die(CLI_EXIT_DATA, "%s", err.msg);
    input = cli_one_input(argc, argv);

    s.m = cmr_model_load(model, &err);
    if (!s.m)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    const struct cmr_model_cfg *cfg = &s.m->cfg;
    s.D = cmr_model_out_dim(cfg);
    if (threads > 1)
        cmr_model_set_threads(s.m, threads);
    else
        cmr_nn_set_threads(1);
    if (cmr_model_reserve(s.m, s.batch, 0, &err))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    s.cap = s.batch + 64;
    s.x = malloc((size_t)s.batch * SEG * sizeof(float));
    s.emb = malloc((size_t)s.batch * cfg->emb * sizeof(float));
    s.ctx = malloc((size_t)s.batch * s.D * sizeof(float));
    s.h = malloc((size_t)(cfg->hidden ? cfg->hidden : 1) * sizeof(float));
    s.q = calloc((size_t)s.cap, sizeof *s.q);
    if (!s.x || !s.emb || !s.ctx || !s.h || !s.q)
        cli_die(CLI_EXIT_DATA, "out of memory for a batch of %d segments", s.batch);
    for (int i = 0; i < s.cap; i++)
        cmr_frame_init(&s.q[i].fr);
    cli_info("%s: %s model, width %g, %zu parameters, %d-d output, standardisation (x - %g) / %g",
             model, cmr_model_kind_name(cfg->kind), cfg->width, s.m->n_params, s.D,
             (double)cfg->mel_mean, (double)cfg->mel_std);

    s.w = cli_stdout_writer(force);
    struct cmr_reader *rd = cli_open_reader(input);
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cli_read_header(rd, &hdr);
    if (cmr_frame_stage_param(&hdr, "model", "%s", model) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "kind", "%s", cmr_model_kind_name(cfg->kind)) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "width", "%g", cfg->width) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "dim", "%d", s.D) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "step", "%lld", (long long)s.m->train.step) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(s.w, &hdr);
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_TENSOR)
            segment(&s, &fr);
        else if (fr.type == CMR_FRAME_END)
            end(&s, &fr);
        /* a later header (streams joined with cat) is dropped: the first one describes the stream */
    }
    flush(&s);
    if (s.segments > s.seg_warm)
        cli_info("%lld segments; %.3f segments/s after the first batch (%lld segments in %.3f s)", s.segments,
                 (double)(s.segments - s.seg_warm) / (now() - s.t_warm), s.segments - s.seg_warm,
                 now() - s.t_warm);
    else
        cli_info("%lld segments", s.segments);
    for (int i = 0; i < s.cap; i++)
        cmr_frame_free(&s.q[i].fr);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    free(s.q);
    free(s.x);
    free(s.emb);
    free(s.ctx);
    free(s.h);
    free(s.track);
    cmr_model_free(s.m);
    cmr_reader_free(rd);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
