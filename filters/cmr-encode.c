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

#include "cli.h"
#include "frame.h"
#include "model.h"
#include "stream/encoder.h"
#include "util/clock.h"
#include "model_default.h"


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
    struct cmr_encoder *enc;
    struct cmr_writer *w;
    int batch, D;
    struct item *q;
    int nq, cap;
    long long segments;
    /* throughput, for -v: from the end of the first batch (a warm-up) to the end */
    double t_warm;
    long long seg_warm;
};

/* runs the queued segments (lib/stream/encoder.h) and writes the queued frames in order */
static void flush(struct state *s)
{
    struct cmr_error err = {0};
    const float *emb;
    int n, rc = cmr_encoder_run(s->enc, &emb, &n, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    for (int i = 0; i < s->nq; i++) {
        struct item *it = &s->q[i];
        if (it->seg >= 0)
            memcpy(it->fr.data, emb + (size_t)it->seg * s->D, (size_t)s->D * sizeof(float));
        cli_put(s->w, &it->fr);
    }
    s->segments += n;
    if (!s->seg_warm && n) {
        s->seg_warm = s->segments;
        s->t_warm = cmr_now();
    }
    s->nq = 0;
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
    for (size_t i = 0; i < CMR_MODEL_SEG; i++)
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
    it->seg = cmr_encoder_queued(s->enc);
    cmr_encoder_push(s->enc, fr->data, NULL); /* room: a full batch is flushed below */
    if (cmr_encoder_queued(s->enc) == s->batch)
        flush(s);
}

/* the track ends: its end frame is queued after its embeddings, and the next
 * track's segments start from a zero GRU state */
static void end(struct state *s, const struct cmr_frame *fr)
{
    struct item *it = push(s);
    cmr_frame_reset(&it->fr);
    if (cmr_frame_make_end(&it->fr, fr->track, fr->frames) != CMR_OK ||
        (fr->error && cmr_frame_set_error(&it->fr, fr->error) != CMR_OK))
        cli_die(CLI_EXIT_DATA, "out of memory");
    it->seg = -1;
    cmr_encoder_end_run(s->enc);
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

    struct cmr_model *m = cmr_model_load(model, &err);
    if (!m)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    const struct cmr_model_cfg *cfg = &m->cfg;
    s.D = cmr_model_out_dim(cfg);
    if (!(s.enc = cmr_encoder_new(m, s.batch, threads, &err)))
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, err.code));
    s.cap = s.batch + 64;
    s.q = calloc((size_t)s.cap, sizeof *s.q);
    if (!s.q)
        cli_die(CLI_EXIT_DATA, "out of memory for a batch of %d segments", s.batch);
    for (int i = 0; i < s.cap; i++)
        cmr_frame_init(&s.q[i].fr);
    cli_info("%s: %s model, width %g, %zu parameters, %d-d output, standardisation (x - %g) / %g",
             model, cmr_model_kind_name(cfg->kind), cfg->width, m->n_params, s.D,
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
        cmr_frame_stage_param(&hdr, "step", "%lld", (long long)m->train.step) != CMR_OK)
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
                 (double)(s.segments - s.seg_warm) / (cmr_now() - s.t_warm), s.segments - s.seg_warm,
                 cmr_now() - s.t_warm);
    else
        cli_info("%lld segments", s.segments);
    for (int i = 0; i < s.cap; i++)
        cmr_frame_free(&s.q[i].fr);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    free(s.q);
    cmr_encoder_free(s.enc);
    cmr_model_free(m);
    cmr_reader_free(rd);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
