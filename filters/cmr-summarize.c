/* cmr-summarize: per track, the mean and standard deviation of its frames'
 * rows -> one "summary" frame [2D] (see docs/evaluation.md)
 *
 *   cmr-summarize [OPTION]... [FILE|-]
 *
 * A 1-D frame [D] (an "embedding") is one row; a 2-D frame [T, D] ("mfcc",
 * "mel" chunks) is T rows. All rows of a track are summarised together:
 * [mean_0..mean_{D-1}, std_0..std_{D-1}], population std (ddof = 0, numpy's
 * default). Memory is O(D) per track, whatever its length. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/summary.h"
#include "frame.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-summarize [OPTION]... [FILE|-]\n"
        "Summarise each track: the mean and the standard deviation (population,\n"
        "ddof = 0) over all its rows, concatenated into one \"summary\" frame of\n"
        "shape [2D]. A 1-D tensor frame [D] (\"embedding\") is one row; a 2-D frame\n"
        "[T, D] (\"mfcc\" or \"mel\" chunks) is T rows. Metadata of the track's first\n"
        "frame is passed through; info \"rows\" records the rows summarised.\n"
        "Reads FILE or stdin; writes frames to stdout.\n"
        "\n"
        "  -k, --kind KIND     accept only tensor frames of this kind [any];\n"
        "                      \"summary\" frames are always refused\n"
        "  -t, --text          print one text line per track instead of frames:\n"
        "                      TRACK<TAB>2D<TAB>ROWS<TAB>v0,v1,...\n"
        "  -n, --values N      values per --text line [4] (0..1000000)\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "A track that failed upstream (end frame with an error) gets no summary;\n"
        "its end frame is passed on. A track without tensor frames gets none either.\n"
        "\n"
        "Exit status: 0 ok, 1 bad input (rank > 2, row lengths that differ within\n"
        "the stream, NaN or infinite values, wrong kind, \"summary\" frames) or a\n"
        "write error, 2 usage.\n");
    exit(code);
}

/* the options and the state of the stream */
struct run {
    const char *kind, *input;
    int text, force;
    long values;
    struct cmr_writer *w;     /* NULL with --text */
    struct cmr_summary *s;
    struct cmr_frame out;     /* the summary of the track in progress */
    int dim, in_track;
    long long n_tracks, n_skipped;
};

static void parse_options(int argc, char **argv, struct run *r)
{
    static const struct option opts[] = {
        {"kind", required_argument, NULL, 'k'},
        {"text", no_argument, NULL, 't'},
        {"values", required_argument, NULL, 'n'},
        {"force", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":k:tn:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            if (!*optarg || strlen(optarg) >= CMR_KIND_MAX)
                cli_usage_error("--kind takes a kind name of 1 to %d bytes, got '%s'", CMR_KIND_MAX - 1,
                                optarg);
            if (strcmp(optarg, "summary") == 0)
                cli_usage_error("--kind summary: summary frames are summarised already");
            r->kind = optarg;
            break;
        case 't': r->text = 1; break;
        case 'n': r->values = cli_long("--values", optarg, 0, 1000000); break;
        case 'F': r->force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    r->input = cli_one_input(argc, argv);
}

/* a tensor frame: its rows into the track's summary */
static void add_tensor(struct run *r, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    if (r->kind && strcmp(fr->kind, r->kind))
        cli_wrong_kind(fr, r->kind);
    if (strcmp(fr->kind, "summary") == 0) /* a second pass would summarise mean and std again */
        cli_die(CLI_EXIT_DATA, "track \"%s\": summary frame %lld: the input is summarised already "
                "(cmr-summarize takes embeddings or other rows, not its own output)", fr->track,
                (long long)fr->index);
    if (fr->ndim > 2)
        cli_die(CLI_EXIT_DATA,
                "track \"%s\": %s frame %lld has rank %d; summarize takes [D] or [T, D] frames",
                fr->track, fr->kind, (long long)fr->index, fr->ndim);
    int d = (int)fr->shape[fr->ndim - 1];
    int64_t rows = fr->ndim == 2 ? fr->shape[0] : 1;
    if (!r->dim) {
        r->dim = d;
        if (!(r->s = cmr_summary_new(r->dim, &err)))
            cli_die(CLI_EXIT_DATA, "%s", err.msg);
    } else if (d != r->dim) {
        cli_die(CLI_EXIT_DATA,
                "track \"%s\": %s frame %lld has rows of %d values, earlier frames %d",
                fr->track, fr->kind, (long long)fr->index, d, r->dim);
    }
    if (!r->in_track) {
        /* the track's first frame: keep its metadata, rate and kind */
        r->in_track = 1;
        cmr_summary_reset(r->s);
        cmr_frame_reset(&r->out);
        int64_t shape = 2 * (int64_t)r->dim;
        if (cmr_frame_make_tensor(&r->out, "summary", fr->track, 1, &shape) != CMR_OK ||
            cmr_frame_meta_copy(&r->out, fr) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "out of memory");
        r->out.rate = fr->rate;
        r->out.index = 0;
        r->out.offset = 0;
    }
    if (cmr_summary_add(r->s, fr->data, rows, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld: %s", fr->track, fr->kind,
                (long long)fr->index, err.msg);
}

/* the end of a track: its summary (a frame and an end frame, or a line of
 * --text), or its end frame passed on when it has none */
static void end_track(struct run *r, struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    if (fr->error) {
        cli_warn("track \"%s\" failed upstream (%s): no summary", fr->track, fr->error);
        r->n_skipped++;
        r->in_track = 0;
        if (!r->text) {
            fr->frames = 0;
            cli_put(r->w, fr);
        }
        return;
    }
    if (!r->in_track) {
        cli_info("track \"%s\" has no tensor frames: no summary", fr->track);
        r->n_skipped++;
        if (!r->text)
            cli_put(r->w, fr);
        return;
    }
    r->in_track = 0;
    if (cmr_summary_get(r->s, r->out.data, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, err.msg);
    long long rows = (long long)cmr_summary_count(r->s);
    if (cmr_frame_info_set(&r->out, "rows", (double)rows) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    r->n_tracks++;
    cli_info("track \"%s\": %lld rows of %d", fr->track, rows, r->dim);
    if (r->text) {
        printf("%s\t%d\t%lld\t", fr->track, 2 * r->dim, rows);
        for (long i = 0; i < r->values && i < 2 * r->dim; i++)
            printf("%s%.6g", i ? "," : "", r->out.data[i]);
        putchar('\n');
        return;
    }
    cli_put(r->w, &r->out);
    struct cmr_frame end;
    cmr_frame_init(&end);
    if (cmr_frame_make_end(&end, fr->track, 1) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(r->w, &end);
    cmr_frame_free(&end);
}

int main(int argc, char **argv)
{
    struct run r = {.values = 4};
    cli_init("cmr-summarize");
    parse_options(argc, argv, &r);

    /* set up */
    struct cmr_reader *rd = cli_open_reader(r.input);
    r.w = r.text ? NULL : cli_stdout_writer(r.force);
    struct cmr_frame hdr, fr;
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cmr_frame_init(&r.out);
    cli_read_header(rd, &hdr);
    if (!r.text) {
        if (cmr_frame_stage_param(&hdr, "kind", "%s", r.kind ? r.kind : "any") != CMR_OK)
            cli_die(CLI_EXIT_DATA, "out of memory");
        cli_put(r.w, &hdr);
    }

    /* run */
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_HEADER)
            continue; /* a joined stream: its header is not copied */
        if (fr.type == CMR_FRAME_TENSOR)
            add_tensor(&r, &fr);
        else
            end_track(&r, &fr);
    }
    cli_info("%lld tracks summarised, %lld without a summary", r.n_tracks, r.n_skipped);
    cmr_summary_free(r.s);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_frame_free(&r.out);
    cmr_reader_free(rd);
    if (r.w) {
        if (cmr_writer_flush(r.w) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "error: writing output failed");
        cmr_writer_free(r.w);
    }
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
