/* cmr-decode: audio files -> "audio" frames (see docs/filters.md#cmr-decode)
 *
 *   cmr-decode [OPTION]... [FILE|-]...
 *   cmr-decode [OPTION]... --list LIST
 *
 * Per track: audio frames of shape [n, channels] (interleaved float32, the
 * file's sample rate, offset = first sample frame, index = chunk number), then
 * one end frame. Memory is one chunk, whatever the track length. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio.h"
#include "cli.h"
#include "frame.h"
#include "tracklist.h"

#define CHUNK_DEFAULT 65536
#define CHUNK_MAX (1L << 20)
#define CHANNELS_MAX 256

static noreturn void usage(FILE *f, int code)
{
    fprintf(f,
        "Usage: cmr-decode [OPTION]... [FILE|-]...\n"
        "       cmr-decode [OPTION]... --list LIST\n"
        "Decode audio files (WAV, FLAC, Ogg/Vorbis, Opus, MP3, ... through libsndfile)\n"
        "into a stream of \"audio\" frames: float32 [n, channels] at the file's rate.\n"
        "With no FILE and stdin not a terminal, read one file from stdin ('-').\n"
        "\n"
        "  -l, --list LIST     tracks from a TSV list: header line, a 'path' column,\n"
        "                      an optional 'track' column (the id; default: the path),\n"
        "                      every other column becomes metadata of the track;\n"
        "                      relative paths are relative to LIST's directory\n"
        "  -c, --chunk N       sample frames per audio frame [%d] (1..%ld)\n"
        "  -s, --shard I/N     only tracks i (counted from 0 in the list or the\n"
        "                      arguments) with i %% N == I [0/1]\n"
        "  -k, --keep-going    after a file that fails, go on with the others: the\n"
        "                      failed track gets an end frame with 'error' set; exit 1\n"
        "      --force         write binary frames even to a terminal\n"
        "  -q, --quiet         no warnings\n"
        "  -v, --verbose       one line per track on stderr\n"
        "  -h, --help          this help\n"
        "\n"
        "Exit status: 0 ok, 1 a file could not be decoded or output failed, 2 usage.\n",
        CHUNK_DEFAULT, CHUNK_MAX);
    exit(code);
}

/* "I/N", strictly */
static void parse_shard(const char *arg, long *idx, long *count)
{
    const char *slash = strchr(arg, '/');
    char a[32], b[32];
    char *end;
    size_t na;

    if (!slash || (na = (size_t)(slash - arg)) == 0 || na >= sizeof a || strlen(slash + 1) >= sizeof b ||
        !slash[1])
        goto bad;
    memcpy(a, arg, na);
    a[na] = 0;
    strcpy(b, slash + 1);
    if (a[0] == '-' || a[0] == '+' || b[0] == '-' || b[0] == '+')
        goto bad;
    *idx = strtol(a, &end, 10);
    if (*end)
        goto bad;
    *count = strtol(b, &end, 10);
    if (*end || *count < 1 || *count > 1000000 || *idx < 0 || *idx >= *count)
        goto bad;
    return;
bad:
    cli_usage_error("--shard takes I/N with integers 0 <= I < N <= 1000000, got '%s'", arg);
}

struct decoder {
    struct cmr_writer *w;
    struct cmr_frame fr;
    long chunk;
    int keep_going;
};

/* writes the end frame of a failed track (--keep-going) */
static void put_failed_end(struct decoder *d, const char *track, int64_t frames, const char *why)
{
    if (cmr_frame_make_end(&d->fr, track, frames) != CMR_OK || cmr_frame_set_error(&d->fr, why) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(d->w, &d->fr);
}

/* decodes one track; returns 0 ok, 1 failed (already reported) */
static int decode_track(struct decoder *d, const struct cmr_tracklist *tl, size_t i)
{
    const struct cmr_track_entry *e = &tl->entries[i];
    struct cmr_audio_info info;
    struct cmr_error err = {0};
    struct cmr_audio *a;
    int64_t shape[2], offset = 0, index = 0;
    size_t got;
    int rc;

    cmr_frame_reset(&d->fr);
    if (cmr_tracklist_set_meta(tl, i, &d->fr) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    a = cmr_audio_open(e->path, &info, &err);
    if (a && info.channels > CHANNELS_MAX) {
        cmr_error_set(&err, CMR_EAUDIO, "%s: %d channels, at most %d are supported", e->path,
                      info.channels, CHANNELS_MAX);
        cmr_audio_close(a);
        a = NULL;
    }
    if (!a) {
        if (!d->keep_going)
            cli_die(CLI_EXIT_DATA, "%s", err.msg); /* an error, said even with -q */
        cli_warn("%s", err.msg);
        put_failed_end(d, e->track, 0, err.msg);
        return 1;
    }
    cli_info("%s: %s, %d Hz, %d channels, %lld sample frames", e->path, info.format, info.rate,
             info.channels, (long long)info.frames);
    shape[0] = d->chunk;
    shape[1] = info.channels;
    for (;;) {
        if (cmr_frame_make_tensor(&d->fr, "audio", e->track, 2, shape) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "out of memory");
        rc = cmr_audio_read(a, d->fr.data, (size_t)d->chunk, &got, &err);
        if (rc != CMR_OK)
            break;
        d->fr.shape[0] = (int64_t)got;
        d->fr.rate = info.rate;
        d->fr.offset = offset;
        d->fr.index = index;
        /* the rules every frame obeys (a float file may hold NaN or infinity):
         * a failed track, not a failed write, so that --keep-going goes on */
        if ((rc = cmr_frame_check(&d->fr, &err)) != CMR_OK)
            break;
        index++;
        offset += (int64_t)got;
        cli_put(d->w, &d->fr);
    }
    cmr_audio_close(a);
    if (rc == CMR_EOF && offset == 0) {
        rc = CMR_EAUDIO;
        cmr_error_set(&err, CMR_EAUDIO, "%s: no audio (0 sample frames)", e->path);
    }
    if (rc != CMR_EOF) {
        if (!d->keep_going) /* the track is left open: the next stage sees a truncated stream */
            cli_die(CLI_EXIT_DATA, "%s", err.msg);
        cli_warn("%s", err.msg);
        put_failed_end(d, e->track, index, err.msg);
        return 1;
    }
    if (cmr_frame_make_end(&d->fr, e->track, index) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    cli_put(d->w, &d->fr);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"list", required_argument, NULL, 'l'},
        {"chunk", required_argument, NULL, 'c'},
        {"shard", required_argument, NULL, 's'},
        {"keep-going", no_argument, NULL, 'k'},
        {"force", no_argument, NULL, 'F'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *list = NULL;
    long shard_i = 0, shard_n = 1;
    int force = 0, c;
    struct decoder d = {.chunk = CHUNK_DEFAULT};
    struct cmr_tracklist tl;
    struct cmr_error err = {0};
    struct cmr_frame hdr;
    size_t failed = 0, done = 0;

    cli_init("cmr-decode");
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:c:s:kqvh", opts, NULL)) != -1) {
        switch (c) {
        case 'l': list = optarg; break;
        case 'c': d.chunk = cli_long("--chunk", optarg, 1, CHUNK_MAX); break;
        case 's': parse_shard(optarg, &shard_i, &shard_n); break;
        case 'k': d.keep_going = 1; break;
        case 'F': force = 1; break;
        case 'q': cli_quiet = 1; break;
        case 'v': cli_verbose = 1; break;
        case 'h': usage(stdout, CLI_EXIT_OK);
        default: cli_bad_option(argv, c);
        }
    }
    if (list && optind < argc)
        cli_usage_error("give either --list or files, not both");

    /* the tracks: all of them are known (and checked) before any output */
    if (list) {
        if (strcmp(list, "-") == 0 && isatty(STDIN_FILENO))
            cli_usage_error("--list -: stdin is a terminal");
        if (cmr_tracklist_read(&tl, list, &err) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "%s", err.msg);
    } else {
        cmr_tracklist_init(&tl);
        if (optind == argc) {
            if (isatty(STDIN_FILENO))
                cli_usage_error("no input files (give FILE..., '-' for stdin, or --list LIST)");
            if (cmr_tracklist_add(&tl, "-", "-", &err) != CMR_OK)
                cli_die(CLI_EXIT_DATA, "%s", err.msg);
        }
        for (int i = optind; i < argc; i++) {
            if (!argv[i][0])
                cli_usage_error("empty file name");
            if (strcmp(argv[i], "-") == 0 && isatty(STDIN_FILENO))
                cli_usage_error("'-': stdin is a terminal");
            if (cmr_tracklist_add(&tl, argv[i], argv[i], &err) != CMR_OK)
                cli_die(CLI_EXIT_DATA, "%s", err.msg);
        }
        if (cmr_tracklist_check_unique(&tl, "arguments", &err) != CMR_OK)
            cli_usage_error("the same file twice: %s", err.msg);
    }

    d.w = cli_stdout_writer(force);
    cmr_frame_init(&hdr);
    cmr_frame_init(&d.fr);
    {
        /* the inputs: the list, or the files as far as they fit (TAB-separated) */
        char files[CMR_FRAME_MAX_STRING];
        size_t k = 0;
        files[0] = 0;
        for (size_t i = 0; !list && i < tl.n && k + strlen(tl.entries[i].path) + 2 < sizeof files; i++)
            k += (size_t)snprintf(files + k, sizeof files - k, "%s%s", i ? "\t" : "", tl.entries[i].path);
        if (cmr_frame_make_header(&hdr, cli_prog) != CMR_OK ||
            cmr_frame_stage_param(&hdr, "chunk", "%ld", d.chunk) != CMR_OK ||
            cmr_frame_stage_param(&hdr, "shard", "%ld/%ld", shard_i, shard_n) != CMR_OK ||
            cmr_frame_stage_param(&hdr, "keep_going", "%d", d.keep_going) != CMR_OK ||
            cmr_frame_stage_param(&hdr, list ? "list" : "files", "%s", list ? list : files) != CMR_OK ||
            cmr_frame_stage_param(&hdr, "tracks", "%zu", tl.n) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "out of memory");
    }
    cli_put(d.w, &hdr);

    for (size_t i = 0; i < tl.n; i++) {
        if ((long)(i % (size_t)shard_n) != shard_i)
            continue;
        failed += (size_t)decode_track(&d, &tl, i);
        done++;
    }
    cmr_frame_free(&hdr);
    cmr_frame_free(&d.fr);
    cmr_writer_free(d.w);
    cmr_tracklist_free(&tl);
    cli_finish_stdout();
    if (failed) {
        cli_warn("%zu of %zu tracks failed", failed, done);
        return CLI_EXIT_DATA;
    }
    return CLI_EXIT_OK;
}
