/* cmr-segment: "mel"/"mfcc" frames [T, F] -> "segment" frames [frames, F], or
 * with --context N "sequence" frames [N, frames, F] (see docs/filters.md#cmr-segment)
 *
 * A unit (a segment, or a run of N segments) covers L = (N-1)*hop + frames
 * input rows and units start every H rows (H = hop, or run_hop*hop with
 * --context). The input may arrive in chunks of any size; only the rows a
 * pending unit still needs are kept. The cutting is lib/stream/segmenter.h's
 * (cmrencode runs the same); this file reads, checks and writes frames. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frame.h"
#include "stream/segmenter.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-segment [OPTION]... [FILE|-]\n"
        "Cut \"mel\" (or \"mfcc\") frame streams [T, F] into fixed-length segments.\n"
        "Reads FILE or stdin, writes frames.\n"
        "\n"
        "  -n, --frames N      rows (mel frames) per segment [%d] (1..100000)\n"
        "  -H, --hop N         rows from one segment's start to the next\n"
        "                      [= --frames: back to back, no overlap] (1..1000000)\n"
        "  -c, --context N     emit runs of N consecutive segments as \"sequence\"\n"
        "                      frames [N, frames, F] instead of \"segment\" frames (1..4096)\n"
        "      --run-hop M     segments from one run's start to the next [= N]\n"
        "  -p, --pad           zero-pad a last, incomplete segment (or run) instead of\n"
        "                      dropping the tail; it carries info valid_frames\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "Output: kind \"segment\" (or \"sequence\") for mel and mfcc input alike (the\n"
        "feature is in the header's provenance and in F); offset = first input row\n"
        "of the segment, index = segment number. Without --pad the rows after the\n"
        "last full segment are dropped, and a track shorter than one segment gives\n"
        "no segments (counted in one warning at the end).\n"
        "Exit status: 0 ok, 1 bad input (wrong kind, shape, gaps, truncated stream)\n"
        "or output failed, 2 usage.\n",
        CMR_SEGMENTER_FRAMES);
    exit(code);
}

/* the filter around the segmenter (lib/stream/segmenter.h) */
struct state {
    struct cmr_segmenter *seg;
    const struct cmr_segmenter_cfg *cfg;
    char *track;            /* the current track, NULL between tracks */
    double rate;
    int64_t F;              /* its features per row */
    struct cmr_writer *w;
    struct cmr_frame out;
    long short_tracks;
};

/* writes every unit the segmenter has ready */
static void emit_ready(struct state *s)
{
    const struct cmr_segmenter_cfg *c = s->cfg;
    const char *kind = c->context ? "sequence" : "segment";
    int64_t F = s->F, shape[3] = {c->context, c->frames, s->F};
    struct cmr_segment u;

    while (cmr_segmenter_ready(s->seg)) {
        int rc = cmr_frame_make_tensor(&s->out, kind, s->track, c->context ? 3 : 2, c->context ? shape : shape + 1);
        if (rc == CMR_ETOOBIG)
            cli_die(CLI_EXIT_DATA, "track \"%s\": a %s of %ld x %lld values is above the frame size limit",
                    s->track, kind, (long)(c->context ? c->context : 1) * c->frames, (long long)F);
        if (rc != CMR_OK)
            cli_die(CLI_EXIT_DATA, "out of memory");
        cmr_segmenter_next(s->seg, s->out.data, &u);
        if (cmr_frame_meta_copy(&s->out, u.tags) != CMR_OK || cmr_frame_info_copy(&s->out, u.tags) != CMR_OK ||
            (u.valid < cmr_segmenter_unit_rows(s->seg) &&
             cmr_frame_info_set(&s->out, "valid_frames", (double)u.valid) != CMR_OK))
            cli_die(CLI_EXIT_DATA, "out of memory");
        s->out.index = u.index;
        s->out.offset = u.start;
        s->out.rate = s->rate;
        cli_put(s->w, &s->out);
    }
}

static void tensor(struct state *s, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};

    if (strcmp(fr->kind, "mel") != 0 && strcmp(fr->kind, "mfcc") != 0)
        cli_wrong_kind(fr, "\"mel\" or \"mfcc\"");
    if (fr->ndim != 2 || fr->shape[1] < 1)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld should have shape [T, F] with F >= 1",
                fr->track, fr->kind, (long long)fr->index);
    if (!s->track) {
        if (!(s->track = strdup(fr->track)))
            cli_die(CLI_EXIT_DATA, "out of memory");
        s->rate = fr->rate;
        s->F = fr->shape[1];
    }
    int rc = cmr_segmenter_push(s->seg, fr->data, fr->shape[0], fr->shape[1], fr->offset, fr, &err);
    if (rc == CMR_ENOMEM)
        cli_die(CLI_EXIT_DATA, "out of memory");
    if (rc != CMR_OK)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld %s", fr->track, fr->kind, (long long)fr->index,
                err.msg);
    emit_ready(s);
}

static void end(struct state *s, struct cmr_frame *fr)
{
    if (s->track && !fr->error) {
        int64_t T_end = cmr_segmenter_next_row(s->seg);
        cmr_segmenter_drain(s->seg);
        emit_ready(s);
        if (cmr_segmenter_units(s->seg) == 0)
            s->short_tracks++;
        cli_info("track \"%s\": %lld rows -> %lld %s%s", s->track, (long long)T_end,
                 (long long)cmr_segmenter_units(s->seg), s->cfg->context ? "sequences" : "segments",
                 s->cfg->pad ? " (last one padded)" : "");
    }
    fr->frames = cmr_segmenter_units(s->seg);
    cli_put(s->w, fr);
    cmr_segmenter_reset(s->seg);
    free(s->track);
    s->track = NULL;
}

int main(int argc, char **argv)
{
    enum { OPT_RUN_HOP = 256 };
    static const struct option opts[] = {
        {"frames", required_argument, NULL, 'n'},
        {"hop", required_argument, NULL, 'H'},
        {"context", required_argument, NULL, 'c'},
        {"run-hop", required_argument, NULL, OPT_RUN_HOP},
        {"pad", no_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct cmr_segmenter_cfg cfg;
    struct cmr_error err = {0};
    struct state s;
    struct cmr_reader *rd;
    struct cmr_frame fr, hdr;
    const char *input = NULL;
    int force = 0, c;

    memset(&s, 0, sizeof s);
    cfg = cmr_segmenter_cfg_default();
    cli_init("cmr-segment");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:H:c:pqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': cfg.frames = cli_long("--frames", optarg, 1, 100000); break;
        case 'H': cfg.hop = cli_long("--hop", optarg, 1, 1000000); break;
        case 'c': cfg.context = cli_long("--context", optarg, 1, 4096); break;
        case OPT_RUN_HOP: cfg.run_hop = cli_long("--run-hop", optarg, 1, 1000000); break;
        case 'p': cfg.pad = 1; break;
        case 'F': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    input = cli_one_input(argc, argv);
    if (cfg.run_hop && !cfg.context)
        cli_usage_error("--run-hop needs --context");
    if (!(s.seg = cmr_segmenter_new(&cfg, &err)))
        cli_usage_error("%s", cmr_error_text(&err, err.code));
    s.cfg = cmr_segmenter_cfg(s.seg);

    s.w = cli_stdout_writer(force);
    rd = cli_open_reader(input);
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cmr_frame_init(&s.out);
    cli_read_header(rd, &hdr);
    if (cmr_frame_stage_param(&hdr, "frames", "%ld", s.cfg->frames) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "hop", "%ld", s.cfg->hop) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "context", "%ld", s.cfg->context) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "run_hop", "%ld", s.cfg->context ? s.cfg->run_hop : 0) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "pad", "%d", s.cfg->pad) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(s.w, &hdr);
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_TENSOR)
            tensor(&s, &fr);
        else if (fr.type == CMR_FRAME_END)
            end(&s, &fr);
        /* a later header (streams joined with cat) is dropped */
    }
    if (s.short_tracks)
        cli_warn("%ld track%s shorter than one %s (%lld rows) gave none", s.short_tracks,
                 s.short_tracks == 1 ? "" : "s", s.cfg->context ? "sequence" : "segment",
                 (long long)cmr_segmenter_unit_rows(s.seg));
    cmr_segmenter_free(s.seg);
    free(s.track);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_frame_free(&s.out);
    cmr_reader_free(rd);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
