/* cmr-mel: mono 16 kHz "audio" frames -> "mel" frames [T, 96], streaming
 * (lib/dsp/mel.h; docs/frontend.md)
 *
 *   cmr-decode a.flac | cmr-resample | cmr-mel > a.mel
 *   cmr-decode --list train.tsv | cmr-resample | cmr-mel --stats train.stats > /dev/null
 *   cmr-decode b.flac | cmr-resample | cmr-mel --norm train.stats | cmr-segment ...
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dsp/mel.h"
#include "dsp/stats.h"
#include "frame.h"
#include "frontend.h"
#include "stream/frontend.h"
#include "util/atomic.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-mel [OPTION]... [FILE|-]\n"
        "Log-mel spectrogram of mono 16 kHz \"audio\" frames (from cmr-resample), streaming.\n"
        "Reads FILE or stdin, writes \"mel\" frames [T, N-MELS].\n"
        "Training clips (\"pair\", \"sequence\" frames [R, n] from cmr-pair or\n"
        "cmr-augment) become the same kind [R, T, N-MELS], each row a clip of its own.\n"
        "\n"
        "Default (PAPER.md 1): periodic Hann 512, FFT 512, hop 256, centred frames with\n"
        "reflect padding, Slaney mel scale and area norm on the magnitude spectrum, then\n"
        "log10(1 + 10 mel) = torchaudio MelSpectrogram(power=1, norm=\"slaney\",\n"
        "mel_scale=\"slaney\") + log10(1 + 10 x).\n"
        "\n"
        "  -m, --n-mels N      mel bands [96] (8..512)\n"
        "      --n-fft N       FFT size and window length, even [512] (64..8192)\n"
        "      --hop N         hop between frames, samples [256] (1..N-FFT)\n"
        "      --f-min HZ      lowest band edge [0] (0..8000)\n"
        "      --f-max HZ      highest band edge [8000] (0..8000), above --f-min\n"
        "      --htk           the reference code's literal variant: HTK mel scale, no\n"
        "                      area norm, POWER spectrum, no log\n"
        "      --stats FILE    also accumulate the mean and std of every value written\n"
        "                      (after --norm, if given) and write them to FILE at the end\n"
        "      --norm FILE     standardise every value: (x - mean) / std with the mean and\n"
        "                      std of a stats file written by --stats (or by hand)\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "A track of L samples gives 1 + floor(L / HOP) frames (3 s: 188); an empty track\n"
        "none. Tracks of at most N-FFT/2 samples are reflect-padded the way\n"
        "numpy.pad(mode=\"reflect\") does (the reflection repeats). Each audio frame\n"
        "yields one mel frame with the spectrogram frames it completed (offset: first\n"
        "frame index in the track); the track's last frames come at its end frame.\n"
        "Metadata is passed through. The values do not depend on the audio chunking.\n"
        "\n"
        "Exit status: 0 ok; 1 bad input (not mono 16 kHz audio: run cmr-resample; wrong\n"
        "kind, gaps, non-finite samples or results, truncated stream), a bad or\n"
        "mismatched stats file, nothing to compute --stats from, or output failed;\n"
        "2 usage.\n");
    exit(code);
}

/* one provenance parameter (stream/frontend.h) into the header */
static int stage_param(void *hdr, const char *key, const char *val)
{
    return cmr_frame_stage_param(hdr, key, "%s", val);
}

/* the feature object behind the shared loop */
static int v_push(void *o, const float *x, size_t n, struct cmr_error *e) { return cmr_mel_push(o, x, n, e); }
static void v_end(void *o) { cmr_mel_end(o); }
static int v_next(void *o, float *out, struct cmr_error *e) { return cmr_mel_take(o, out, e); }
static size_t v_ready(const void *o, size_t n) { return cmr_mel_ready(o, n); }
static void v_reset(void *o) { cmr_mel_reset(o); }

struct post {
    int norm;
    double mean, std;
    int stats;
    struct cmr_stats acc;
};

static void post(void *ctx, const struct cmr_frame *fr, float *x, size_t n)
{
    struct post *p = ctx;
    if (p->norm)
        cmr_stats_apply(x, n, p->mean, p->std);
    if (p->stats && cmr_stats_add(&p->acc, x, n) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "track \"%s\": non-finite mel value, cannot compute --stats", fr->track);
}

struct opts {
    struct cmr_mel_cfg cfg;
    const char *input, *stats_path, *norm_path;
    int force;
};

static struct opts parse_options(int argc, char **argv)
{
    enum { O_NFFT = 256, O_HOP, O_FMIN, O_FMAX, O_HTK, O_STATS, O_NORM, O_FORCE };
    static const struct option opts[] = {
        {"n-mels", required_argument, NULL, 'm'},
        {"n-fft", required_argument, NULL, O_NFFT},
        {"hop", required_argument, NULL, O_HOP},
        {"f-min", required_argument, NULL, O_FMIN},
        {"f-max", required_argument, NULL, O_FMAX},
        {"htk", no_argument, NULL, O_HTK},
        {"stats", required_argument, NULL, O_STATS},
        {"norm", required_argument, NULL, O_NORM},
        {"force", no_argument, NULL, O_FORCE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct opts o = {.cfg = cmr_mel_cfg_default()};
    int htk = 0, c;
    long n_mels = o.cfg.n_mels, n_fft = o.cfg.n_fft, hop = -1;
    double f_min = o.cfg.f_min, f_max = o.cfg.f_max;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': n_mels = cli_long("--n-mels", optarg, 8, 512); break;
        case O_NFFT:
            n_fft = cli_long("--n-fft", optarg, 64, 8192);
            if (n_fft % 2)
                cli_usage_error("--n-fft takes an even integer in [64, 8192], got '%s'", optarg);
            break;
        case O_HOP: hop = cli_long("--hop", optarg, 1, 8192); break;
        case O_FMIN: f_min = cli_double("--f-min", optarg, 0, 8000); break;
        case O_FMAX: f_max = cli_double("--f-max", optarg, 0, 8000); break;
        case O_HTK: htk = 1; break;
        case O_STATS: o.stats_path = optarg; break;
        case O_NORM: o.norm_path = optarg; break;
        case O_FORCE: o.force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    o.input = cli_one_input(argc, argv);
    if (hop < 0)
        hop = n_fft / 2;
    if (hop > n_fft)
        cli_usage_error("--hop takes an integer in [1, %ld] (the FFT size), got '%ld'", n_fft, hop);
    if (f_min >= f_max)
        cli_usage_error("--f-min (%g Hz) should be below --f-max (%g Hz)", f_min, f_max);
    if (o.stats_path && o.norm_path && !strcmp(o.stats_path, o.norm_path))
        cli_usage_error("--stats and --norm name the same file '%s'", o.stats_path);

    if (htk)
        o.cfg = cmr_mel_cfg_htk();
    o.cfg.n_mels = (int)n_mels;
    o.cfg.n_fft = (int)n_fft;
    o.cfg.hop = (int)hop;
    o.cfg.f_min = f_min;
    o.cfg.f_max = f_max;
    return o;
}

/* --stats checked before any work (an input or stdout's frames in the way, an
 * unwritable place); --norm's statistics read, for this front end only */
static void setup_stats(const struct opts *o, const char *desc, struct post *p)
{
    struct cmr_error err = {0};
    if (o->stats_path) {
        const char *ins[] = {o->input ? o->input : "-", o->norm_path, "/dev/stdout"};
        if (cmr_output_check("--stats", o->stats_path, ins, 3, CMR_ATOMIC_STREAM, &err))
            cli_die(err.code == CMR_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_DATA, "%s", err.msg);
    }
    cmr_stats_init(&p->acc);
    p->stats = o->stats_path != NULL;
    if (o->norm_path) {
        struct cmr_stats_file sf;
        int rc = cmr_frontend_stats_load(o->norm_path, "mel", desc, &sf, &err);
        if (rc != CMR_OK)
            cli_die(CLI_EXIT_DATA, "--norm: %s", cmr_error_text(&err, rc));
        p->norm = 1;
        p->mean = sf.mean;
        p->std = sf.std;
    }
}

/* the mel frames of every track, from stdin or the input to stdout */
static void run(const struct opts *o, struct post *p)
{
    struct cmr_error err = {0};
    struct cmr_mel *mel = cmr_mel_new(&o->cfg, &err);
    if (!mel)
        cli_usage_error("%s", cmr_error_text(&err, err.code));
    if (cmr_mel_empty_filters(mel))
        cli_warn("%d of %d mel bands have no FFT bin (too many bands for --n-fft %d); they are 0",
                 cmr_mel_empty_filters(mel), o->cfg.n_mels, o->cfg.n_fft);

    struct cmr_writer *w = cli_stdout_writer(o->force);
    struct cmr_reader *rd = cli_open_reader(o->input);
    struct cmr_frame hdr;
    cmr_frame_init(&hdr);
    cli_read_header(rd, &hdr);
    if (cmr_frontend_params(&o->cfg, p->norm ? o->norm_path : NULL, p->mean, p->std, stage_param, &hdr))
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(w, &hdr);
    cmr_frame_free(&hdr);

    struct fe_ops ops = {
        .kind = "mel", .width = o->cfg.n_mels, .rate = o->cfg.sample_rate, .obj = mel,
        .push = v_push, .end = v_end, .next = v_next, .ready = v_ready, .reset = v_reset,
        .post = (p->norm || p->stats) ? post : NULL, .post_ctx = p,
    };
    fe_run(&ops, rd, w);
    cmr_mel_free(mel);
    cmr_reader_free(rd);
    cmr_writer_free(w);
    cli_finish_stdout();
}

/* --stats: statistics of standardised values must not pass for raw ones */
static void write_stats(const struct opts *o, const char *desc, const struct post *p)
{
    struct cmr_error err = {0};
    char sdesc[CMR_STATS_TEXT_MAX];
    snprintf(sdesc, sizeof sdesc, "%s%s", desc, p->norm ? " standardized" : "");
    int rc = cmr_stats_write(o->stats_path, &p->acc, "mel", sdesc, &err);
    if (rc == CMR_EINVAL && p->acc.count == 0)
        cli_die(CLI_EXIT_DATA, "--stats: no mel values in the input, %s not written", o->stats_path);
    if (rc != CMR_OK)
        cli_die(CLI_EXIT_DATA, "--stats: %s", cmr_error_text(&err, rc));
    cli_info("--stats: %s: mean %.6g std %.6g over %llu values", o->stats_path, cmr_stats_mean(&p->acc),
             cmr_stats_std(&p->acc), (unsigned long long)p->acc.count);
}

int main(int argc, char **argv)
{
    cli_init("cmr-mel");
    struct opts o = parse_options(argc, argv);
    char desc[CMR_STATS_TEXT_MAX - 16];
    cmr_mel_cfg_describe(&o.cfg, desc, sizeof desc);
    struct post p = {0};
    setup_stats(&o, desc, &p);
    run(&o, &p);
    if (o.stats_path)
        write_stats(&o, desc, &p);
    return CLI_EXIT_OK;
}
