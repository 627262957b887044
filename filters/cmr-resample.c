/* cmr-resample: "audio" frames -> mono "audio" frames at --rate (libsoxr, or
 * torchaudio's sinc resampler; streaming; see docs/filters.md#cmr-resample)
 *
 * Per track: downmix each frame to mono (mean of the channels), feed it to a
 * soxr resampler made for the track's rate, emit what comes out, and at the
 * track's end frame drain the filter tail, so output does not depend on how
 * the input was chunked. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dsp/resample.h"
#include "frame.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-resample [OPTION]... [FILE|-]\n"
        "Downmix \"audio\" frames to mono (mean of the channels) and resample them\n"
        "to --rate, streaming. Reads FILE or stdin, writes frames.\n"
        "\n"
        "  -r, --rate HZ       output sample rate [16000] (1000..384000)\n"
        "  -Q, --quality Q     vhq, hq or mq: libsoxr's recipes [hq];\n"
        "                      torchaudio: torchaudio.functional.resample's defaults\n"
        "                      (Hann-windowed sinc, width 6, rolloff 0.99), exactly;\n"
        "                      kaiser-best: the same with librosa's kaiser_best\n"
        "                      settings (Kaiser window, width 64, rolloff 0.9476)\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "A track already at --rate is only downmixed. Output frames: \"audio\"\n"
        "[n, 1] at --rate, offsets in output samples; the end frame is passed on.\n"
        "Exit status: 0 ok, 1 bad input (wrong kind, rate changing within a track,\n"
        "gaps in offsets, truncated stream) or output failed, 2 usage.\n");
    exit(code);
}

#define OUT_MAX ((double)(1 << 20)) /* output samples per frame, at most (about) */

struct track {
    char *id;
    double rate;            /* input rate of the track */
    int64_t in_next;        /* expected offset of the next input frame */
    int64_t out_offset;     /* output samples emitted */
    int64_t out_index;      /* output frames emitted */
    struct cmr_resample *rs;/* NULL when the rate already matches */
};

struct state {
    struct cmr_writer *w;
    struct cmr_resample_cfg cfg;
    double rate;
    struct track t;
    struct cmr_frame out;
    struct cmr_frame last;  /* metadata and info of the track's latest input frame */
    float *mono;
    size_t mono_cap;
};

/* emits n output samples as one frame carrying fr's metadata and info */
static void emit(struct state *s, const struct cmr_frame *fr, const float *y, size_t n)
{
    int64_t shape[2] = {(int64_t)n, 1};
    if (n == 0)
        return;
    if (cmr_frame_make_tensor(&s->out, "audio", fr->track, 2, shape) != CMR_OK ||
        cmr_frame_meta_copy(&s->out, fr) != CMR_OK || cmr_frame_info_copy(&s->out, fr) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    memcpy(s->out.data, y, n * sizeof *y);
    s->out.rate = s->rate;
    s->out.offset = s->t.out_offset;
    s->out.index = s->t.out_index++;
    s->t.out_offset += (int64_t)n;
    cli_put(s->w, &s->out);
}

static void start_track(struct state *s, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    free(s->t.id);
    memset(&s->t, 0, sizeof s->t);
    if (!(s->t.id = strdup(fr->track)))
        cli_die(CLI_EXIT_DATA, "out of memory");
    s->t.rate = fr->rate;
    s->t.in_next = fr->offset;
    if (fr->offset != 0)
        cli_die(CLI_EXIT_DATA, "track \"%s\": first audio frame starts at offset %lld, expected 0",
                fr->track, (long long)fr->offset);
    if (fr->rate != s->rate) {
        s->cfg.in_rate = fr->rate;
        s->cfg.out_rate = s->rate;
        s->t.rs = cmr_resample_new(&s->cfg, &err);
        if (!s->t.rs)
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, err.msg);
    }
    cli_info("track \"%s\": %g Hz -> %g Hz%s", fr->track, fr->rate, s->rate, s->t.rs ? "" : " (no resampling)");
}

static void tensor(struct state *s, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    const float *y;
    size_t n, ny, ch;

    if (strcmp(fr->kind, "audio") != 0)
        cli_wrong_kind(fr, "\"audio\"");
    /* the reader has checked the frame (frame.h cmr_frame_check): shape
     * [n >= 1, 1..256 channels], a rate in 1000..768000 Hz, finite samples */
    if (!s->t.id)
        start_track(s, fr);
    cmr_frame_reset(&s->last);
    if (cmr_frame_set_track(&s->last, fr->track) != CMR_OK || cmr_frame_meta_copy(&s->last, fr) != CMR_OK ||
        cmr_frame_info_copy(&s->last, fr) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    if (fr->rate != s->t.rate)
        cli_die(CLI_EXIT_DATA, "track \"%s\": the rate changes within the track (%g Hz, then %g Hz at frame %lld)",
                fr->track, s->t.rate, fr->rate, (long long)fr->index);
    if (fr->offset != s->t.in_next)
        cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame %lld starts at offset %lld, expected %lld "
                "(gaps and overlaps cannot be resampled)", fr->track, (long long)fr->index,
                (long long)fr->offset, (long long)s->t.in_next);
    n = (size_t)fr->shape[0];
    ch = (size_t)fr->shape[1];
    s->t.in_next += (int64_t)n;
    if (n == 0)
        return;
    if (n > s->mono_cap) {
        free(s->mono);
        s->mono_cap = n;
        if (!(s->mono = malloc(n * sizeof *s->mono)))
            cli_die(CLI_EXIT_DATA, "out of memory");
    }
    /* downmix: mean of the channels */
    if (ch == 1) {
        memcpy(s->mono, fr->data, n * sizeof *s->mono);
    } else {
        for (size_t i = 0; i < n; i++) {
            float acc = 0;
            const float *x = fr->data + i * ch;
            for (size_t c = 0; c < ch; c++)
                acc += x[c];
            s->mono[i] = acc / (float)ch;
        }
    }
    if (!s->t.rs) {
        emit(s, fr, s->mono, n);
        return;
    }
    /* at most about OUT_MAX output samples per call and per output frame, so
     * that memory stays bounded whatever the ratio (1000 -> 384000 Hz makes
     * 384 samples of each input sample); the values do not depend on it */
    size_t piece = (size_t)(OUT_MAX / ceil(s->rate / s->t.rate));
    if (piece < 1)
        piece = 1;
    for (size_t pos = 0; pos < n; pos += piece) {
        size_t m = n - pos < piece ? n - pos : piece;
        if (cmr_resample_process(s->t.rs, s->mono + pos, m, &y, &ny, &err) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, err.msg);
        emit(s, fr, y, ny);
    }
}

/* the track's end: drain the tail, then pass the end frame on */
static void end(struct state *s, struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    const float *y;
    size_t ny;

    if (s->t.rs && !fr->error) {
        /* the tail frame carries the metadata and info of the last input frame */
        if (cmr_resample_drain(s->t.rs, &y, &ny, &err) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, err.msg);
        emit(s, &s->last, y, ny);
    }
    cmr_resample_free(s->t.rs);
    fr->frames = s->t.out_index;
    cli_put(s->w, fr);
    free(s->t.id);
    memset(&s->t, 0, sizeof s->t);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rate", required_argument, NULL, 'r'},
        {"quality", required_argument, NULL, 'Q'},
        {"force", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct state s;
    struct cmr_reader *rd;
    struct cmr_frame fr, hdr;
    const char *input = NULL;
    int force = 0, c;

    memset(&s, 0, sizeof s);
    s.cfg = cmr_resample_cfg_default();
    s.rate = 16000;
    cli_init("cmr-resample");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:Q:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'r': s.rate = (double)cli_long("--rate", optarg, 1000, 384000); break;
        case 'Q':
            if (cmr_resample_quality_parse(optarg, &s.cfg.quality) != CMR_OK)
                cli_usage_error("--quality takes vhq, hq, mq, torchaudio or kaiser-best, got '%s'", optarg);
            break;
        case 'F': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    input = cli_one_input(argc, argv);

    s.w = cli_stdout_writer(force);
    rd = cli_open_reader(input);
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cmr_frame_init(&s.out);
    cmr_frame_init(&s.last);
    cli_read_header(rd, &hdr);
    if (cmr_frame_stage_param(&hdr, "rate", "%g", s.rate) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "quality", "%s", cmr_resample_quality_name(s.cfg.quality)) != CMR_OK ||
        cmr_frame_stage_param(&hdr, "downmix", "mean") != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(s.w, &hdr);
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_TENSOR)
            tensor(&s, &fr);
        else if (fr.type == CMR_FRAME_END)
            end(&s, &fr);
        /* a later header (streams joined with cat) is dropped: the first one describes the stream */
    }
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_frame_free(&s.out);
    cmr_frame_free(&s.last);
    free(s.mono);
    cmr_reader_free(rd);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
