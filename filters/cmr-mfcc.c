/* cmr-mfcc: mono 16 kHz "audio" frames -> "mfcc" frames [T, 40], streaming
 * (lib/dsp/mfcc.h; docs/frontend.md)
 *
 *   cmr-decode a.flac | cmr-resample | cmr-mfcc > a.mfcc
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dsp/mfcc.h"
#include "frame.h"
#include "frontend.h"
#include "stream/frontend.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-mfcc [OPTION]... [FILE|-]\n"
        "MFCCs of mono 16 kHz \"audio\" frames (from cmr-resample), streaming.\n"
        "Reads FILE or stdin, writes \"mfcc\" frames [T, N-MFCC].\n"
        "\n"
        "MFCC = DCT-II (orthonormal) of 10 log10(max(mel, 1e-10)), where mel is the\n"
        "Slaney-scale, Slaney-normalised mel filterbank applied to the POWER spectrum\n"
        "(same STFT as cmr-mel: Hann 512, hop 256, centred, reflect padding). This is\n"
        "librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=40) and\n"
        "torchaudio.transforms.MFCC with top_db=None; no top_db=80 clamp (it depends on\n"
        "the loudest frame of the whole input and cannot stream), no liftering.\n"
        "\n"
        "  -n, --n-mfcc N      coefficients kept [40] (1..N-MELS)\n"
        "  -m, --n-mels N      mel bands [96] (8..512)\n"
        "      --n-fft N       FFT size and window length, even [512] (64..8192)\n"
        "      --hop N         hop between frames, samples [256] (1..N-FFT)\n"
        "      --f-min HZ      lowest band edge [0] (0..8000)\n"
        "      --f-max HZ      highest band edge [8000] (0..8000), above --f-min\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "Frames, padding and chunking as cmr-mel: 1 + floor(L / HOP) frames per track.\n"
        "\n"
        "Exit status: 0 ok; 1 bad input (not mono 16 kHz audio: run cmr-resample; wrong\n"
        "kind, gaps, non-finite samples, truncated stream) or output failed; 2 usage.\n");
    exit(code);
}

/* one provenance parameter (stream/frontend.h) into the header */
static int stage_param(void *hdr, const char *key, const char *val)
{
    return cmr_frame_stage_param(hdr, key, "%s", val);
}

static int v_push(void *o, const float *x, size_t n, struct cmr_error *e) { return cmr_mfcc_push(o, x, n, e); }
static void v_end(void *o) { cmr_mfcc_end(o); }
static int v_next(void *o, float *out, struct cmr_error *e) { return cmr_mfcc_take(o, out, e); }
static size_t v_ready(const void *o, size_t n) { return cmr_mfcc_ready(o, n); }
static void v_reset(void *o) { cmr_mfcc_reset(o); }

int main(int argc, char **argv)
{
    enum { O_NFFT = 256, O_HOP, O_FMIN, O_FMAX, O_FORCE };
    static const struct option opts[] = {
        {"n-mfcc", required_argument, NULL, 'n'},
        {"n-mels", required_argument, NULL, 'm'},
        {"n-fft", required_argument, NULL, O_NFFT},
        {"hop", required_argument, NULL, O_HOP},
        {"f-min", required_argument, NULL, O_FMIN},
        {"f-max", required_argument, NULL, O_FMAX},
        {"force", no_argument, NULL, O_FORCE},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct cmr_mfcc_cfg cfg = cmr_mfcc_cfg_default();
    const char *input = NULL;
    int force = 0, c;
    long n_mfcc = cfg.n_mfcc, n_mels = cfg.mel.n_mels, n_fft = cfg.mel.n_fft, hop = -1;
    double f_min = cfg.mel.f_min, f_max = cfg.mel.f_max;

    cli_init("cmr-mfcc");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:m:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': n_mfcc = cli_long("--n-mfcc", optarg, 1, 512); break;
        case 'm': n_mels = cli_long("--n-mels", optarg, 8, 512); break;
        case O_NFFT:
            n_fft = cli_long("--n-fft", optarg, 64, 8192);
            if (n_fft % 2)
                cli_usage_error("--n-fft takes an even integer in [64, 8192], got '%s'", optarg);
            break;
        case O_HOP: hop = cli_long("--hop", optarg, 1, 8192); break;
        case O_FMIN: f_min = cli_double("--f-min", optarg, 0, 8000); break;
        case O_FMAX: f_max = cli_double("--f-max", optarg, 0, 8000); break;
        case O_FORCE: force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    input = cli_one_input(argc, argv);
    if (hop < 0)
        hop = n_fft / 2;
    if (hop > n_fft)
        cli_usage_error("--hop takes an integer in [1, %ld] (the FFT size), got '%ld'", n_fft, hop);
    if (f_min >= f_max)
        cli_usage_error("--f-min (%g Hz) should be below --f-max (%g Hz)", f_min, f_max);
    if (n_mfcc > n_mels)
        cli_usage_error("--n-mfcc (%ld) should be at most --n-mels (%ld)", n_mfcc, n_mels);

    cfg.n_mfcc = (int)n_mfcc;
    cfg.mel.n_mels = (int)n_mels;
    cfg.mel.n_fft = (int)n_fft;
    cfg.mel.hop = (int)hop;
    cfg.mel.f_min = f_min;
    cfg.mel.f_max = f_max;
    struct cmr_error err = {0};
    struct cmr_mfcc *m = cmr_mfcc_new(&cfg, &err);
    if (!m)
        cli_usage_error("%s", cmr_error_text(&err, err.code));

    struct cmr_writer *w = cli_stdout_writer(force);
    struct cmr_reader *rd = cli_open_reader(input);
    struct cmr_frame hdr;
    cmr_frame_init(&hdr);
    cli_read_header(rd, &hdr);
    if (cmr_frontend_params(&cfg.mel, NULL, 0, 0, stage_param, &hdr) ||
        cmr_frame_stage_param(&hdr, "n_mfcc", "%d", cfg.n_mfcc) ||
        cmr_frame_stage_param(&hdr, "dct", "II-ortho"))
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(w, &hdr);
    cmr_frame_free(&hdr);

    struct fe_ops ops = {
        .kind = "mfcc", .width = cfg.n_mfcc, .rate = cfg.mel.sample_rate, .obj = m,
        .push = v_push, .end = v_end, .next = v_next, .ready = v_ready, .reset = v_reset,
    };
    fe_run(&ops, rd, w);
    cmr_mfcc_free(m);
    cmr_reader_free(rd);
    cmr_writer_free(w);
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
