/* embed-wav: embeddings of an audio file through libcmr's embedding API
 * (cmr-embed.h, docs/library.md), the way another program would use it.
 *
 *   embed-wav [-H HOP] [-p] [-o OUT.f32] MODEL FILE
 *
 * Reads FILE with libsndfile (WAV, FLAC, Ogg, ...: anything it opens), feeds
 * its samples to a cmr_embedder in blocks of 4096 frames, and prints one line
 * per embedding: the segment's start time in seconds, then its values; or
 * with -o writes them to OUT.f32 as raw little-endian float32, one
 * embedding after the other. The values equal, bit for bit, those of
 *   cmr-decode FILE | cmr-resample | cmr-mel | cmr-segment [--hop HOP] [--pad] \
 *       | cmr-encode --model MODEL
 * Exit status: 0 ok, 1 a file or the model cannot be read, 2 usage.
 *
 * Build it against an installed cmr:
 *   cc embed-wav.c $(pkg-config --cflags --libs cmr sndfile) -lm
 * pkg-config: cmr sndfile
 */
#define _POSIX_C_SOURCE 200809L /* getopt under -std=c11 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sndfile.h>

#include "cmr-embed.h"

#define BLOCK 4096

static void usage(FILE *f, int code)
{
    fprintf(f, "Usage: embed-wav [-H HOP] [-p] [-o OUT.f32] MODEL FILE\n"
               "Print the cmr embeddings of an audio file, one line per 3 s segment:\n"
               "its start time (s), then its values.\n"
               "  -H HOP     mel frames between segment starts [188] (1..1000000)\n"
               "  -p         zero-pad a last, partial segment instead of dropping it\n"
               "  -o FILE    write the values as raw float32 to FILE instead\n"
               "  -h         this help\n");
    exit(code);
}

/* prints the embeddings ready, or writes them to out */
static int drain(struct cmr_embedder *e, float *v, FILE *out)
{
    int dim = cmr_embedder_dim(e);
    double t;
    while (cmr_embedder_next(e, v, &t) == 1) {
        if (out) {
            if (fwrite(v, sizeof *v, (size_t)dim, out) != (size_t)dim)
                return -1;
            continue;
        }
        printf("%.3f", t);
        for (int i = 0; i < dim; i++)
            printf(" %.9g", v[i]);
        printf("\n");
    }
    return 0;
}

static int embed(struct cmr_embedder *e, SNDFILE *sf, int channels, FILE *out, const char *path)
{
    struct cmr_error err = {0};
    float *buf = malloc((size_t)BLOCK * (size_t)channels * sizeof *buf);
    float *v = malloc((size_t)cmr_embedder_dim(e) * sizeof *v);
    sf_count_t n;
    int rc = 0;

    if (!buf || !v) {
        fprintf(stderr, "embed-wav: out of memory\n");
        rc = 1;
    }
    while (!rc && (n = sf_readf_float(sf, buf, BLOCK)) > 0) {
        if (cmr_embedder_push(e, buf, (size_t)n, &err) != CMR_OK) {
            fprintf(stderr, "embed-wav: %s: %s\n", path, err.msg);
            rc = 1;
        } else if (drain(e, v, out)) {
            rc = 1;
        }
    }
    if (!rc && sf_error(sf)) {
        fprintf(stderr, "embed-wav: %s: %s\n", path, sf_strerror(sf));
        rc = 1;
    }
    if (!rc && cmr_embedder_finish(e, &err) != CMR_OK) {
        fprintf(stderr, "embed-wav: %s: %s\n", path, err.msg);
        rc = 1;
    }
    if (!rc && drain(e, v, out))
        rc = 1;
    free(buf);
    free(v);
    return rc;
}

int main(int argc, char **argv)
{
    struct cmr_embedder_cfg cfg;
    struct cmr_error err = {0};
    struct cmr_embedder *e;
    const char *out_path = NULL;
    FILE *out = NULL;
    SF_INFO info;
    SNDFILE *sf;
    char *end;
    int c, rc;

    cfg = cmr_embedder_cfg_default();
    while ((c = getopt(argc, argv, "H:po:h")) != -1) {
        switch (c) {
        case 'H':
            errno = 0;
            cfg.hop = (int)strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || cfg.hop < 1 || cfg.hop > 1000000) {
                fprintf(stderr, "embed-wav: -H takes an integer in [1, 1000000], got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p': cfg.pad = 1; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(stdout, 0); break;
        default: usage(stderr, 2);
        }
    }
    if (argc - optind != 2)
        usage(stderr, 2);
    memset(&info, 0, sizeof info);
    if (!(sf = sf_open(argv[optind + 1], SFM_READ, &info))) {
        fprintf(stderr, "embed-wav: %s: %s\n", argv[optind + 1], sf_strerror(NULL));
        return 1;
    }
    if (!(e = cmr_embedder_new(argv[optind], info.samplerate, info.channels, &cfg, &err))) {
        fprintf(stderr, "embed-wav: %s\n", err.msg);
        sf_close(sf);
        return 1;
    }
    if (out_path && !(out = fopen(out_path, "wb"))) {
        fprintf(stderr, "embed-wav: %s: %s\n", out_path, strerror(errno));
        rc = 1;
    } else {
        rc = embed(e, sf, info.channels, out, argv[optind + 1]);
    }
    if (out && (fclose(out) != 0 || rc)) {
        if (!rc)
            fprintf(stderr, "embed-wav: %s: %s\n", out_path, strerror(errno));
        remove(out_path); /* no half-written output */
        rc = 1;
    }
    if (!out_path && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "embed-wav: writing the output failed\n");
        rc = 1;
    }
    cmr_embedder_free(e);
    sf_close(sf);
    return rc;
}
