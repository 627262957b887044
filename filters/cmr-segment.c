/* cmr-segment: "mel"/"mfcc" frames [T, F] -> "segment" frames [frames, F], or
 * with --context N "sequence" frames [N, frames, F] (see docs/filters.md#cmr-segment)
 *
 * A unit (a segment, or a run of N segments) covers L = (N-1)*hop + frames
 * input rows and units start every H rows (H = hop, or run_hop*hop with
 * --context). The input may arrive in chunks of any size; only the rows a
 * pending unit still needs are kept. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frame.h"

#define FRAMES_DEFAULT 188

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
        FRAMES_DEFAULT);
    exit(code);
}

/* the metadata and info of one buffered input chunk */
struct chunk {
    int64_t start;
    struct cmr_frame tags;
};

struct segmenter {
    /* configuration */
    long frames, hop, context, run_hop;
    int pad;
    int64_t unit_len, unit_hop;
    /* the track */
    char *track;
    int64_t F;
    double rate;
    float *buf;             /* rows [base, base + n_rows), F floats each */
    size_t cap_rows;
    int64_t base, n_rows;
    int64_t next_start;     /* start row of the next unit */
    int64_t units;          /* units emitted */
    struct chunk *chunks;   /* chunks that still have rows at or after base */
    int n_chunks, cap_chunks;
    /* output */
    struct cmr_writer *w;
    struct cmr_frame out;
    long short_tracks;
};

static void clear_track(struct segmenter *s)
{
    free(s->track);
    s->track = NULL;
    for (int i = 0; i < s->n_chunks; i++)
        cmr_frame_free(&s->chunks[i].tags);
    s->n_chunks = 0;
    s->n_rows = 0;
    s->units = 0;
}

/* the tags of the chunk holding row r */
static const struct cmr_frame *tags_at(const struct segmenter *s, int64_t r)
{
    int k = 0;
    for (int i = 0; i < s->n_chunks; i++)
        if (s->chunks[i].start <= r)
            k = i;
    return &s->chunks[k].tags;
}

/* emits the unit starting at row u; rows after `valid` (track rows) are zeros */
static void emit(struct segmenter *s, int64_t u, int64_t valid_end)
{
    int64_t shape[3];
    int ndim;
    size_t row = (size_t)s->F, seg = (size_t)s->frames * row;
    const struct cmr_frame *tags = tags_at(s, u);
    int rc;

    if (s->context) {
        shape[0] = s->context, shape[1] = s->frames, shape[2] = s->F, ndim = 3;
    } else {
        shape[0] = s->frames, shape[1] = s->F, ndim = 2;
    }
    rc = cmr_frame_make_tensor(&s->out, s->context ? "sequence" : "segment", s->track, ndim, shape);
    if (rc == CMR_ETOOBIG)
        cli_die(CLI_EXIT_DATA, "track \"%s\": a %s of %ld x %lld values is above the frame size limit",
                s->track, s->context ? "sequence" : "segment", (long)(s->context ? s->context : 1) * s->frames,
                (long long)s->F);
    if (rc != CMR_OK || cmr_frame_meta_copy(&s->out, tags) != CMR_OK ||
        cmr_frame_info_copy(&s->out, tags) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    for (long j = 0; j < (s->context ? s->context : 1); j++) {
        int64_t r0 = u + j * s->hop;
        float *dst = s->out.data + (size_t)j * seg;
        for (long t = 0; t < s->frames; t++) {
            int64_t r = r0 + t;
            if (r < valid_end)
                memcpy(dst + (size_t)t * row, s->buf + (size_t)(r - s->base) * row, row * sizeof(float));
            else
                memset(dst + (size_t)t * row, 0, row * sizeof(float));
        }
    }
    if (valid_end < u + s->unit_len && cmr_frame_info_set(&s->out, "valid_frames", (double)(valid_end - u)) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    s->out.index = s->units++;
    s->out.offset = u;
    s->out.rate = s->rate;
    cli_put(s->w, &s->out);
}

/* drops rows (and chunk tags) that no later unit needs */
static void compact(struct segmenter *s)
{
    int64_t keep_from = s->next_start, end = s->base + s->n_rows, drop;
    int k = 0;
    if (keep_from > end)
        keep_from = end;
    drop = keep_from - s->base;
    if (drop > 0) {
        memmove(s->buf, s->buf + (size_t)drop * (size_t)s->F,
                (size_t)(s->n_rows - drop) * (size_t)s->F * sizeof(float));
        s->base += drop;
        s->n_rows -= drop;
    }
    /* keep the last chunk starting at or before base, and all after it */
    for (int i = 0; i < s->n_chunks; i++)
        if (s->chunks[i].start <= s->base)
            k = i;
    for (int i = 0; i < k; i++)
        cmr_frame_free(&s->chunks[i].tags);
    if (k) {
        memmove(s->chunks, s->chunks + k, (size_t)(s->n_chunks - k) * sizeof *s->chunks);
        s->n_chunks -= k;
    }
}

static void tensor(struct segmenter *s, const struct cmr_frame *fr)
{
    int64_t T, F;
    struct chunk *c;

    if (strcmp(fr->kind, "mel") != 0 && strcmp(fr->kind, "mfcc") != 0)
        cli_wrong_kind(fr, "\"mel\" or \"mfcc\"");
    if (fr->ndim != 2 || fr->shape[1] < 1)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld should have shape [T, F] with F >= 1",
                fr->track, fr->kind, (long long)fr->index);
    T = fr->shape[0];
    F = fr->shape[1];
    if (!s->track) {
        if (!(s->track = strdup(fr->track)))
            cli_die(CLI_EXIT_DATA, "out of memory");
        s->F = F;
        s->rate = fr->rate;
        s->base = s->next_start = fr->offset;
        s->n_rows = 0;
        s->units = 0;
    }
    if (F != s->F)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld has %lld features, earlier frames %lld",
                fr->track, fr->kind, (long long)fr->index, (long long)F, (long long)s->F);
    if (fr->offset != s->base + s->n_rows)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld starts at row %lld, expected %lld "
                "(gaps and overlaps cannot be segmented)", fr->track, fr->kind, (long long)fr->index,
                (long long)fr->offset, (long long)(s->base + s->n_rows));
    if (T == 0)
        return;
    /* remember this chunk's metadata and info */
    if (s->n_chunks == s->cap_chunks) {
        int cap = s->cap_chunks ? 2 * s->cap_chunks : 8;
        struct chunk *p = realloc(s->chunks, (size_t)cap * sizeof *p);
        if (!p)
            cli_die(CLI_EXIT_DATA, "out of memory");
        s->chunks = p;
        s->cap_chunks = cap;
    }
    c = &s->chunks[s->n_chunks++];
    c->start = fr->offset;
    cmr_frame_init(&c->tags);
    if (cmr_frame_meta_copy(&c->tags, fr) != CMR_OK || cmr_frame_info_copy(&c->tags, fr) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    /* append the rows */
    if ((size_t)(s->n_rows + T) > s->cap_rows) {
        size_t cap = s->cap_rows ? s->cap_rows : 1024;
        while (cap < (size_t)(s->n_rows + T))
            cap *= 2;
        float *p = realloc(s->buf, cap * (size_t)F * sizeof *p);
        if (!p)
            cli_die(CLI_EXIT_DATA, "out of memory");
        s->buf = p;
        s->cap_rows = cap;
    }
    memcpy(s->buf + (size_t)s->n_rows * (size_t)F, fr->data, (size_t)T * (size_t)F * sizeof(float));
    s->n_rows += T;
    /* every unit that is now complete */
    while (s->next_start + s->unit_len <= s->base + s->n_rows) {
        emit(s, s->next_start, s->next_start + s->unit_len);
        s->next_start += s->unit_hop;
    }
    compact(s);
}

static void end(struct segmenter *s, struct cmr_frame *fr)
{
    int64_t T_end = s->base + s->n_rows;
    if (s->track && !fr->error) {
        if (s->pad && s->next_start < T_end)
            emit(s, s->next_start, T_end);
        if (s->units == 0)
            s->short_tracks++;
        cli_info("track \"%s\": %lld rows -> %lld %s%s", s->track, (long long)T_end, (long long)s->units,
                 s->context ? "sequences" : "segments", s->pad ? " (last one padded)" : "");
    }
    fr->frames = s->units;
    cli_put(s->w, fr);
    clear_track(s);
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
    struct segmenter s;
    struct cmr_reader *rd;
    struct cmr_frame fr, hdr;
    const char *input = NULL;
    int force = 0, c;

    memset(&s, 0, sizeof s);
    s.frames = FRAMES_DEFAULT;
    cli_init("cmr-segment");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:H:c:pqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': s.frames = cli_long("--frames", optarg, 1, 100000); break;
        case 'H': s.hop = cli_long("--hop", optarg, 1, 1000000); break;
        case 'c': s.context = cli_long("--context", optarg, 1, 4096); break;
        case OPT_RUN_HOP: s.run_hop = cli_long("--run-hop", optarg, 1, 1000000); break;
        case 'p': s.pad = 1; break;
        case 'F': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    input = cli_one_input(argc, argv);
    if (s.run_hop && !s.context)
        cli_usage_error("--run-hop needs --context");
    if (!s.hop)
        s.hop = s.frames;
    if (s.context && !s.run_hop)
        s.run_hop = s.context;
    s.unit_len = (int64_t)((s.context ? s.context : 1) - 1) * s.hop + s.frames;
    s.unit_hop = s.context ? (int64_t)s.run_hop * s.hop : s.hop;

    s.w = cli_stdout_writer(force);
    rd = cli_open_reader(input);
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cmr_frame_init(&s.out);
    cli_read_header(rd, &hdr);
    if (cmr_frame_stage_param(&hdr, "frames", "%ld", s.frames) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "hop", "%ld", s.hop) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "context", "%ld", s.context) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "run_hop", "%ld", s.context ? s.run_hop : 0) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "pad", "%d", s.pad) != CMR_OK)
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
                 s.short_tracks == 1 ? "" : "s", s.context ? "sequence" : "segment", (long long)s.unit_len);
    clear_track(&s);
    free(s.chunks);
    free(s.buf);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_frame_free(&s.out);
    cmr_reader_free(rd);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
