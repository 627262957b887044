/* cmr-augment: "pair" / "sequence" audio frames [R, n] -> the same frames with
 * each row augmented independently (PAPER.md §3) and cut to --seconds:
 * pitch shift, time stretch and reverb through libsox, then white noise and
 * polarity inversion (lib/augment.h has the exact chain). Every row's
 * parameters are drawn from a generator keyed by (seed, track, epoch, frame
 * index, row) and recorded in the frame's info. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "cli.h"
#include "frame.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-augment [OPTION]... [FILE|-]\n"
        "Augment each row of \"pair\" and \"sequence\" audio frames [R, n] (from\n"
        "cmr-pair) independently, then keep the first --seconds of each row.\n"
        "Reads FILE or stdin, writes frames of the same kind, [R, seconds*rate].\n"
        "\n"
        "Per row, in this order (probability p, then the parameter drawn):\n"
        "  pitch shift, sample rate kept (sox tempo + rate)\n"
        "      --p-pitch P         [1]\n"
        "      --pitch-set LIST    semitones, comma-separated [-2,-1,1,2] (-12..12)\n"
        "  time stretch by a speed factor, pitch kept (sox tempo)\n"
        "      --p-stretch P       [1]\n"
        "      --stretch-min F     [0.8]  --stretch-max F  [1.2] (0.5..2)\n"
        "  reverberation (sox reverb; percent, 0..100)\n"
        "      --p-reverb P        [0.5]\n"
        "      --reverberance-min/--reverberance-max  [0] [100]\n"
        "      --damping-min/--damping-max            [0] [100]\n"
        "      --room-min/--room-max                  [0] [100]\n"
        "  length: the first --seconds of the result (zero-padded if shorter)\n"
        "      --seconds SEC       output row length [3]; 0 keeps each input row's\n"
        "                          length (the crop; rows stretched by > 1 are then\n"
        "                          zero-padded, without a warning)\n"
        "  additive white Gaussian noise, SNR relative to the row's mean power\n"
        "      --p-noise P         [0.5]\n"
        "      --snr-min DB        [10]   --snr-max DB  [30] (-20..100)\n"
        "  polarity inversion\n"
        "      --p-invert P        [0.5]\n"
        "\n"
        "      --seed N            random seed [0]\n"
        "      --force             write binary frames even to a terminal\n"
        "  -q, --quiet             no warnings\n"
        "  -v, --verbose           one line per frame on stderr\n"
        "  -h, --help              this help\n"
        "\n"
        "Ranges are uniform; every draw is made whether its effect applies or not.\n"
        "Info added per row r: pitch.r (semitones, 0 = none), stretch.r (1 = none),\n"
        "reverb.r, and reverberance.r damping.r room.r when it applies, noise.r and\n"
        "snr.r (dB) when it applies, invert.r, pad.r (zeros appended, when > 0).\n"
        "End frames pass through. Exit status: 0 ok, 1 bad input (wrong kind,\n"
        "a mel instead of audio, no sample rate, truncated stream) or output failed,\n"
        "2 usage.\n");
    exit(code);
}

/* "-2,-1,1,2" -> values, strictly */
static int parse_list(const char *arg, double *v, int max)
{
    int n = 0;
    const char *p = arg;
    for (;;) {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno || !isfinite(x) || fabs(x) > 12 || n == max)
            return -1;
        v[n++] = x;
        if (*end == 0)
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

struct state {
    struct cmr_augment_cfg cfg;
    struct cmr_augment *aug;
    double seconds;
    struct cmr_rng root;
    struct cmr_writer *w;
    struct cmr_frame out;
    long frames, rows, padded;
    uint64_t clipped;
};

static void oom(void)
{
    cli_die(CLI_EXIT_DATA, "out of memory");
}

static void info(struct cmr_frame *fr, const char *key, int row, double v)
{
    char k[64];
    snprintf(k, sizeof k, "%s.%d", key, row);
    if (cmr_frame_info_set(fr, k, v) != CMR_OK)
        oom();
}

static void tensor(struct state *s, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    if (strcmp(fr->kind, "pair") != 0 && strcmp(fr->kind, "sequence") != 0)
        cli_wrong_kind(fr, "\"pair\" or \"sequence\" audio");
    if (fr->ndim != 2)
        cli_die(CLI_EXIT_DATA, "track \"%s\": a %s frame of rank %d: cmr-augment works on audio [rows, samples]%s",
                fr->track, fr->kind, fr->ndim, fr->ndim == 3 ? "; put it before cmr-mel" : "");
    if (!(fr->rate > 0))
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame without a sample rate", fr->track, fr->kind);
    if (!s->aug || fr->rate != s->cfg.rate) {
        cmr_augment_free(s->aug);
        s->cfg.rate = fr->rate;
        if (!(s->aug = cmr_augment_new(&s->cfg, &err)))
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, err.msg);
    }
    int64_t rows = fr->shape[0], n = fr->shape[1];
    int64_t len = s->seconds > 0 ? (int64_t)llround(s->seconds * fr->rate) : n;
    int64_t shape[2] = {rows, len};
    double epoch = 0;
    cmr_frame_info_get(fr, "epoch", &epoch);

    cmr_frame_reset(&s->out);
    if (cmr_frame_make_tensor(&s->out, fr->kind, fr->track, 2, shape) != CMR_OK ||
        cmr_frame_meta_copy(&s->out, fr) != CMR_OK || cmr_frame_info_copy(&s->out, fr) != CMR_OK)
        oom();
    s->out.index = fr->index;
    s->out.offset = fr->offset;
    s->out.rate = fr->rate;
    for (int r = 0; r < rows; r++) {
        struct cmr_rng rng;
        struct cmr_augment_params p;
        struct cmr_augment_result res;
        cmr_augment_rng(&s->root, fr->track, (int64_t)epoch, fr->index, r, &rng);
        cmr_augment_draw(&s->cfg, &rng, &p);
        if (cmr_augment_apply(s->aug, &p, fr->data + r * n, (size_t)n, s->out.data + r * len, (size_t)len, &res,
                              &err) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "track \"%s\": row %d: %s", fr->track, r, err.msg);
        info(&s->out, "pitch", r, p.pitch);
        info(&s->out, "stretch", r, p.stretch);
        info(&s->out, "reverb", r, p.reverb);
        if (p.reverb) {
            info(&s->out, "reverberance", r, p.reverberance);
            info(&s->out, "damping", r, p.damping);
            info(&s->out, "room", r, p.room);
        }
        info(&s->out, "noise", r, p.noise);
        if (p.noise)
            info(&s->out, "snr", r, p.snr);
        info(&s->out, "invert", r, p.invert);
        if (res.padded) {
            info(&s->out, "pad", r, (double)res.padded);
            s->padded++;
        }
        s->clipped += res.clipped;
        s->rows++;
        if (cli_verbose)
            cli_info("track \"%s\" frame %lld row %d: pitch %+g, stretch %.3f%s%s%s", fr->track,
                     (long long)fr->index, r, p.pitch, p.stretch, p.reverb ? ", reverb" : "",
                     p.noise ? ", noise" : "", p.invert ? ", inverted" : "");
    }
    cli_put(s->w, &s->out);
    s->frames++;
}

/* the options into s; returns the input, with *seed and *force */
static const char *parse_options(int argc, char **argv, struct state *s, uint64_t *seed, int *force)
{
    enum {
        O_SEED = 256, O_P_PITCH, O_PITCH_SET, O_P_STRETCH, O_STRETCH_MIN, O_STRETCH_MAX, O_P_REVERB,
        O_REV_MIN, O_REV_MAX, O_DAMP_MIN, O_DAMP_MAX, O_ROOM_MIN, O_ROOM_MAX, O_P_NOISE, O_SNR_MIN,
        O_SNR_MAX, O_P_INVERT, O_SECONDS, O_FORCE
    };
    static const struct option opts[] = {
        {"seed", required_argument, NULL, O_SEED},
        {"p-pitch", required_argument, NULL, O_P_PITCH},
        {"pitch-set", required_argument, NULL, O_PITCH_SET},
        {"p-stretch", required_argument, NULL, O_P_STRETCH},
        {"stretch-min", required_argument, NULL, O_STRETCH_MIN},
        {"stretch-max", required_argument, NULL, O_STRETCH_MAX},
        {"p-reverb", required_argument, NULL, O_P_REVERB},
        {"reverberance-min", required_argument, NULL, O_REV_MIN},
        {"reverberance-max", required_argument, NULL, O_REV_MAX},
        {"damping-min", required_argument, NULL, O_DAMP_MIN},
        {"damping-max", required_argument, NULL, O_DAMP_MAX},
        {"room-min", required_argument, NULL, O_ROOM_MIN},
        {"room-max", required_argument, NULL, O_ROOM_MAX},
        {"p-noise", required_argument, NULL, O_P_NOISE},
        {"snr-min", required_argument, NULL, O_SNR_MIN},
        {"snr-max", required_argument, NULL, O_SNR_MAX},
        {"p-invert", required_argument, NULL, O_P_INVERT},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"force", no_argument, NULL, O_FORCE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct cmr_error err = {0};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":qvh", opts, NULL)) != -1) {
        struct cmr_augment_cfg *g = &s->cfg;
        switch (c) {
        case O_SEED: *seed = cli_seed("--seed", optarg); break;
        case O_P_PITCH: g->p_pitch = cli_double("--p-pitch", optarg, 0, 1); break;
        case O_PITCH_SET:
            if ((g->n_pitch = parse_list(optarg, g->pitch_set, CMR_AUGMENT_MAX_PITCH)) < 1)
                cli_usage_error("--pitch-set takes 1 to %d comma-separated semitones in [-12, 12], got '%s'",
                                CMR_AUGMENT_MAX_PITCH, optarg);
            break;
        case O_P_STRETCH: g->p_stretch = cli_double("--p-stretch", optarg, 0, 1); break;
        case O_STRETCH_MIN: g->stretch_min = cli_double("--stretch-min", optarg, 0.5, 2); break;
        case O_STRETCH_MAX: g->stretch_max = cli_double("--stretch-max", optarg, 0.5, 2); break;
        case O_P_REVERB: g->p_reverb = cli_double("--p-reverb", optarg, 0, 1); break;
        case O_REV_MIN: g->reverberance_min = cli_double("--reverberance-min", optarg, 0, 100); break;
        case O_REV_MAX: g->reverberance_max = cli_double("--reverberance-max", optarg, 0, 100); break;
        case O_DAMP_MIN: g->damping_min = cli_double("--damping-min", optarg, 0, 100); break;
        case O_DAMP_MAX: g->damping_max = cli_double("--damping-max", optarg, 0, 100); break;
        case O_ROOM_MIN: g->room_min = cli_double("--room-min", optarg, 0, 100); break;
        case O_ROOM_MAX: g->room_max = cli_double("--room-max", optarg, 0, 100); break;
        case O_P_NOISE: g->p_noise = cli_double("--p-noise", optarg, 0, 1); break;
        case O_SNR_MIN: g->snr_min = cli_double("--snr-min", optarg, -20, 100); break;
        case O_SNR_MAX: g->snr_max = cli_double("--snr-max", optarg, -20, 100); break;
        case O_P_INVERT: g->p_invert = cli_double("--p-invert", optarg, 0, 1); break;
        case O_SECONDS: s->seconds = cli_double("--seconds", optarg, 0, 600); break;
        case O_FORCE: *force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    const char *input = cli_one_input(argc, argv);
    if (s->cfg.stretch_min > s->cfg.stretch_max)
        cli_usage_error("--stretch-min (%g) should not exceed --stretch-max (%g)", s->cfg.stretch_min,
                        s->cfg.stretch_max);
    if (s->cfg.snr_min > s->cfg.snr_max)
        cli_usage_error("--snr-min (%g) should not exceed --snr-max (%g)", s->cfg.snr_min, s->cfg.snr_max);
    if (s->cfg.reverberance_min > s->cfg.reverberance_max || s->cfg.damping_min > s->cfg.damping_max ||
        s->cfg.room_min > s->cfg.room_max)
        cli_usage_error("each --*-min should not exceed its --*-max");
    if (cmr_augment_cfg_check(&s->cfg, &err) != CMR_OK) /* anything the checks above missed */
        cli_usage_error("%s", err.msg);
    return input;
}

/* the stream's header with this stage's parameters */
static void put_header(struct state *s, struct cmr_frame *hdr, uint64_t seed)
{
    char set[CMR_AUGMENT_MAX_PITCH * 24] = "";
    for (int i = 0; i < s->cfg.n_pitch; i++)
        snprintf(set + strlen(set), sizeof set - strlen(set), "%s%g", i ? "," : "", s->cfg.pitch_set[i]);
    const struct cmr_augment_cfg *g = &s->cfg;
    int rc = cmr_frame_stage_param(hdr, "seed", "%llu", (unsigned long long)seed);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "p_pitch", "%g", g->p_pitch);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "pitch_set", "%s", set);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "p_stretch", "%g", g->p_stretch);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "stretch", "%g,%g", g->stretch_min, g->stretch_max);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "p_reverb", "%g", g->p_reverb);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "reverberance", "%g,%g", g->reverberance_min, g->reverberance_max);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "damping", "%g,%g", g->damping_min, g->damping_max);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "room", "%g,%g", g->room_min, g->room_max);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "p_noise", "%g", g->p_noise);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "snr", "%g,%g", g->snr_min, g->snr_max);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "p_invert", "%g", g->p_invert);
    rc = rc ? rc : cmr_frame_stage_param(hdr, "seconds", "%g", s->seconds);
    if (rc != CMR_OK)
        oom();
    cli_put(s->w, hdr);
}

int main(int argc, char **argv)
{
    struct state s;
    struct cmr_frame hdr, fr;
    uint64_t seed = 0;
    int force = 0;

    memset(&s, 0, sizeof s);
    s.cfg = cmr_augment_cfg_default(16000);
    s.seconds = 3;
    cli_init("cmr-augment");
    const char *input = parse_options(argc, argv, &s, &seed, &force);

    /* set up */
    cmr_rng_seed(&s.root, seed);
    s.w = cli_stdout_writer(force);
    struct cmr_reader *rd = cli_open_reader(input);
    cmr_frame_init(&hdr);
    cmr_frame_init(&fr);
    cmr_frame_init(&s.out);
    cli_read_header(rd, &hdr);
    put_header(&s, &hdr, seed);

    /* run */
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_TENSOR)
            tensor(&s, &fr);
        else if (fr.type == CMR_FRAME_END)
            cli_put(s.w, &fr);
        /* a later header (streams joined with cat) is dropped: the first one describes the stream */
    }
    if (s.padded && s.seconds > 0) /* with --seconds 0, every stretch > 1 pads: that is what was asked */
        cli_warn("%ld of %ld rows came out of the time stretch shorter than --seconds and were zero-padded "
                 "at the end (info pad.ROW)", s.padded, s.rows);
    if (s.clipped)
        cli_warn("%llu samples clipped in the effects (input beyond +-%g?)", (unsigned long long)s.clipped,
                 CMR_AUGMENT_HEADROOM);
    cmr_augment_free(s.aug);
    cmr_frame_free(&hdr);
    cmr_frame_free(&fr);
    cmr_frame_free(&s.out);
    cmr_reader_free(rd);
    cmr_writer_free(s.w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
