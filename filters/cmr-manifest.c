/* cmr-manifest: the real layouts of the paper's data sets -> the track-list
 * TSV that cmr-decode --list reads (see docs/evaluation.md#data-sets)
 *
 *   cmr-manifest fma   FMA_METADATA/tracks.csv [--audio DIR] [--subset small]
 *   cmr-manifest irmas IRMAS-TrainingData [--seed S] [--split 70/15/15]
 *   cmr-manifest aotm  aotm2011_playlists.json MAP [--audio DIR] [--min-tracks 4]
 *   cmr-manifest msd   INDEX_DIR [--audio DIR] [--name msd]
 *   cmr-manifest mtat  annotations_final.csv [--audio DIR] [--top 50]
 *
 * Output (stdout): a header line, then one line per track; columns
 * path, track, then split, label, tags or playlists as the set has them.
 * The readers are lib/dataset/ (dataset.h); this program parses the
 * options, writes the rows and prints the messages. */
#define _GNU_SOURCE /* vasprintf */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset/dataset.h"

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-manifest SET [OPTION]... INPUT...\n"
        "Write the track list (TSV) that cmr-decode --list reads, from the layout a\n"
        "data set is distributed in. Columns: path, track, then split, label, tags\n"
        "or playlists. Paths are absolute when the audio directory exists.\n"
        "\n"
        "Sets:\n"
        "  fma TRACKS_CSV       FMA: fma_metadata/tracks.csv (3 header rows, quoted\n"
        "                       multi-line fields); tracks of --subset with their\n"
        "                       (set, split) and (track, genre_top); audio\n"
        "                       DIR/000/000002.mp3. Known audio-less files of\n"
        "                       fma_small (099134, 108925, 133297) are skipped.\n"
        "                       columns: path track split label\n"
        "  irmas DIR            IRMAS training data: DIR/<class>/*.wav, label = the\n"
        "                       folder; split per class, seeded, grouping the\n"
        "                       excerpts of one recording (\"..__1.wav\", \"..__2.wav\")\n"
        "                       columns: path track split label\n"
        "  aotm JSON MAP        AOTM-2011: aotm2011_playlists.json (mix_id,\n"
        "                       filtered_lists) and MAP, a TSV without header:\n"
        "                       MSD id<TAB>audio path (relative to --audio)\n"
        "                       columns: path track playlists\n"
        "  msd INDEX_DIR        MSD tagging split in musicnn's layout:\n"
        "                       index_NAME.tsv (id<TAB>path), {train,val,test}_gt_NAME.tsv\n"
        "                       (id<TAB>[0, 1, ...]), output_labels_NAME.txt (the tag\n"
        "                       names as a Python list)\n"
        "                       columns: path track split tags\n"
        "  mtat ANNOTATIONS     MagnaTagATune annotations_final.csv (tab-separated,\n"
        "                       quoted: clip_id, 188 tags, mp3_path); the --top most\n"
        "                       frequent tags; split by folder: 0-b training,\n"
        "                       c validation, d-f test\n"
        "                       columns: path track split tags\n"
        "\n"
        "Options:\n"
        "  -a, --audio DIR      audio root [fma: TRACKS_CSV/../../fma_SUBSET;\n"
        "                       aotm: MAP's folder; msd: INDEX_DIR; mtat: the\n"
        "                       annotations' folder]\n"
        "      --subset NAME    fma: small, medium or large [small] (a larger\n"
        "                       subset includes the smaller ones)\n"
        "  -s, --seed S         irmas: split seed [0]\n"
        "      --split A/B/C    irmas: training/validation/test percentages [70/15/15]\n"
        "      --min-tracks N   aotm: keep playlists with at least N tracks that have\n"
        "                       audio [4] (1..100000)\n"
        "      --name NAME      msd: the index files' suffix [msd] (mtt for musicnn's\n"
        "                       MagnaTagATune index)\n"
        "      --top N          mtat: number of tags [50] (1..188)\n"
        "      --no-check       do not check that the audio files exist (by default\n"
        "                       a missing file is left out, with a count on stderr)\n"
        "  -q, --quiet          no warnings\n"
        "  -v, --verbose        one line per left-out track\n"
        "  -h, --help           this help\n"
        "\n"
        "Exit status: 0 ok, 1 a file is missing or malformed (the message names the\n"
        "file and line), 2 usage.\n");
    exit(code);
}

/* ------------------------------------------------------------------ */
/* the rows to stdout, the messages to stderr                          */

static int put_header(void *ctx, const char *columns, struct cmr_error *err)
{
    (void)ctx, (void)err;
    puts(columns);
    return CMR_OK;
}

static int put_row(void *ctx, const char *path, const char *track, const char *const *values, int n,
                   struct cmr_error *err)
{
    (void)ctx, (void)err;
    fputs(path, stdout);
    putchar('\t');
    fputs(track, stdout);
    for (int i = 0; i < n; i++) {
        putchar('\t');
        fputs(values[i], stdout);
    }
    putchar('\n');
    return CMR_OK;
}

static void put_note(void *ctx, enum cmr_dataset_level level, const char *fmt, va_list ap)
{
    (void)ctx;
    if (cli_quiet || (level == CMR_DATASET_INFO && !cli_verbose))
        return;
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        return;
    if (level == CMR_DATASET_INFO)
        cli_info("%s", msg);
    else
        cli_warn("%s", msg);
    free(msg);
}

/* ------------------------------------------------------------------ */
/* options                                                             */

static void parse_split(const char *arg, int pct[3])
{
    char extra;
    if (sscanf(arg, "%d/%d/%d%c", &pct[0], &pct[1], &pct[2], &extra) != 3 || pct[0] < 1 || pct[1] < 0 ||
        pct[2] < 0 || pct[0] + pct[1] + pct[2] != 100)
        cli_usage_error("--split takes three integer percentages A/B/C with A >= 1 and A+B+C = 100, got '%s'",
                        arg);
}

/* the options into cfg; returns the data set's name, argv[optind ..] its inputs */
static const char *parse_options(int argc, char **argv, struct cmr_dataset_cfg *cfg)
{
    enum { O_SUBSET = 256, O_SPLIT, O_MIN, O_NAME, O_TOP, O_NOCHECK };
    static const struct option opts[] = {
        {"audio", required_argument, NULL, 'a'},
        {"subset", required_argument, NULL, O_SUBSET},
        {"seed", required_argument, NULL, 's'},
        {"split", required_argument, NULL, O_SPLIT},
        {"min-tracks", required_argument, NULL, O_MIN},
        {"name", required_argument, NULL, O_NAME},
        {"top", required_argument, NULL, O_TOP},
        {"no-check", no_argument, NULL, O_NOCHECK},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":a:s:qvh", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            cfg->audio = cli_nonempty("--audio", "a directory", optarg);
            break;
        case O_SUBSET:
            if (cmr_dataset_fma_subset(optarg) < 0)
                cli_usage_error("--subset takes small, medium or large, got '%s'", optarg);
            cfg->subset = optarg;
            break;
        case 's': cfg->seed = cli_seed("--seed", optarg); break;
        case O_SPLIT: parse_split(optarg, cfg->split); break;
        case O_MIN: cfg->min_tracks = cli_long("--min-tracks", optarg, 1, 100000); break;
        case O_NAME:
            if (!*optarg || strchr(optarg, '/'))
                cli_usage_error("--name takes a file-name suffix such as msd or mtt, got '%s'", optarg);
            cfg->name = optarg;
            break;
        case O_TOP: cfg->top = cli_long("--top", optarg, 1, 188); break;
        case O_NOCHECK: cfg->check = 0; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    if (optind >= argc)
        cli_usage_error("no data set given: fma, irmas, aotm, msd or mtat");
    const char *set = argv[optind++];
    int nargs = argc - optind;
    int want = !strcmp(set, "aotm") ? 2 : 1;
    if (strcmp(set, "fma") && strcmp(set, "irmas") && strcmp(set, "aotm") && strcmp(set, "msd") &&
        strcmp(set, "mtat"))
        cli_usage_error("unknown data set '%s': fma, irmas, aotm, msd or mtat", set);
    if (nargs != want)
        cli_usage_error("%s takes %d input%s, got %d", set, want, want == 1 ? "" : "s", nargs);
    return set;
}

int main(int argc, char **argv)
{
    struct cmr_dataset_cfg cfg = cmr_dataset_cfg_default();
    cli_init("cmr-manifest");
    const char *set = parse_options(argc, argv, &cfg);

    const struct cmr_dataset_sink out = {put_header, put_row, put_note, NULL};
    const char *in = argv[optind];
    struct cmr_error err = {0};
    int rc;
    if (!strcmp(set, "fma"))
        rc = cmr_dataset_fma(in, &cfg, &out, &err);
    else if (!strcmp(set, "irmas"))
        rc = cmr_dataset_irmas(in, &cfg, &out, &err);
    else if (!strcmp(set, "aotm"))
        rc = cmr_dataset_aotm(in, argv[optind + 1], &cfg, &out, &err);
    else if (!strcmp(set, "msd"))
        rc = cmr_dataset_msd(in, &cfg, &out, &err);
    else
        rc = cmr_dataset_mtat(in, &cfg, &out, &err);
    if (rc)
        cli_die(CLI_EXIT_DATA, "%s", cmr_error_text(&err, rc));
    cli_finish_stdout();
    return CLI_EXIT_OK;
}
