/* cmr-mkframes: synthetic frame streams for the Bats tests (not installed).
 *
 *   cmr-mkframes [--kind mel] [--tracks 1] [--rows 400] [--features 96]
 *                [--chunk 100] [--rate 16000] [--meta k=v]... [--info k=v]...
 *                [--dims 188,96 --count N] [--no-end] [--gap] [--rate-change]
 *                [--end-error MSG] [--dims-change] [--fill V]
 *
 * Time streams (default): per track, `rows` rows of `features` values in
 * frames of `chunk` rows, offsets contiguous; row r, column f holds
 * r * 128 + f (exact in float32 up to 131072 rows).
 * --dims D1,D2,...: instead, `count` frames of exactly that shape per track,
 * frame i holding i * numel + k at flat position k, offset = i.
 * --no-end leaves the last track open (a truncated stream), --gap skips one
 * row before the second frame, --rate-change doubles the rate from the second
 * frame on, --end-error sets the error of every end frame, --dims-change adds
 * one to the last of --dims from the second frame on, --fill V sets every
 * value of --dims frames to V. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static void die(const char *msg)
{
    fprintf(stderr, "cmr-mkframes: %s\n", msg);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"kind", required_argument, NULL, 'k'}, {"tracks", required_argument, NULL, 't'},
        {"rows", required_argument, NULL, 'r'}, {"features", required_argument, NULL, 'f'},
        {"chunk", required_argument, NULL, 'c'}, {"rate", required_argument, NULL, 'R'},
        {"meta", required_argument, NULL, 'm'}, {"info", required_argument, NULL, 'i'},
        {"dims", required_argument, NULL, 'd'}, {"count", required_argument, NULL, 'n'},
        {"no-end", no_argument, NULL, 'E'}, {"gap", no_argument, NULL, 'g'},
        {"rate-change", no_argument, NULL, 'C'}, {"end-error", required_argument, NULL, 'e'},
        {"dims-change", no_argument, NULL, 'D'}, {"fill", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0}};
    const char *kind = "mel", *end_error = NULL;
    long tracks = 1, rows = 400, features = 96, chunk = 100, count = 1;
    double rate = 16000, fill = 0;
    int filled = 0;
    int no_end = 0, gap = 0, rate_change = 0, dims_change = 0, ndims = 0, c;
    int64_t dims[CMR_FRAME_MAX_DIMS];
    char *metas[64], *infos[64];
    int n_meta = 0, n_info = 0;
    struct cmr_frame fr;
    struct cmr_writer *w;
    struct cmr_error err = {0};

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': kind = optarg; break;
        case 't': tracks = atol(optarg); break;
        case 'r': rows = atol(optarg); break;
        case 'f': features = atol(optarg); break;
        case 'c': chunk = atol(optarg); break;
        case 'R': rate = atof(optarg); break;
        case 'm': if (n_meta < 64) metas[n_meta++] = optarg; break;
        case 'i': if (n_info < 64) infos[n_info++] = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'E': no_end = 1; break;
        case 'g': gap = 1; break;
        case 'C': rate_change = 1; break;
        case 'e': end_error = optarg; break;
        case 'D': dims_change = 1; break;
        case 'F': fill = atof(optarg), filled = 1; break;
        case 'd':
            for (char *p = optarg; *p && ndims < CMR_FRAME_MAX_DIMS; ndims++) {
                dims[ndims] = strtol(p, &p, 10);
                if (*p == ',')
                    p++;
            }
            break;
        default: die("bad option");
        }
    }
    if (chunk < 1 || tracks < 0 || rows < 0 || features < 1)
        die("bad numbers");
    cmr_frame_init(&fr);
    w = cmr_writer_new(stdout);
    cmr_frame_make_header(&fr, "cmr-mkframes");
    cmr_writer_put(w, &fr, &err);
    for (long t = 0; t < tracks; t++) {
        char track[64];
        int64_t index = 0;
        snprintf(track, sizeof track, "track%ld", t);
        cmr_frame_reset(&fr);
        for (int i = 0; i < n_meta; i++) {
            char *eq = strchr(metas[i], '=');
            if (!eq)
                die("--meta takes k=v");
            *eq = 0;
            cmr_frame_meta_set(&fr, metas[i], eq + 1);
            *eq = '=';
        }
        for (int i = 0; i < n_info; i++) {
            char *eq = strchr(infos[i], '=');
            if (!eq)
                die("--info takes k=v");
            *eq = 0;
            cmr_frame_info_set(&fr, infos[i], atof(eq + 1));
            *eq = '=';
        }
        if (ndims) {
            for (long i = 0; i < count; i++) {
                if (dims_change && i == 1)
                    dims[ndims - 1]++;
                if (cmr_frame_make_tensor(&fr, kind, track, ndims, dims) != CMR_OK)
                    die("bad --dims");
                size_t n = cmr_frame_numel(&fr);
                for (size_t k = 0; k < n; k++)
                    fr.data[k] = filled ? (float)fill : (float)((size_t)i * n + k);
                fr.index = index++;
                fr.offset = i;
                fr.rate = rate;
                if (cmr_writer_put(w, &fr, &err) != CMR_OK)
                    return 1;
            }
        } else {
            int64_t r = 0;
            while (r < rows) {
                int64_t n = rows - r < chunk ? rows - r : chunk;
                int64_t shape[2] = {n, features};
                if (gap && index == 1)
                    r++;
                cmr_frame_make_tensor(&fr, kind, track, 2, shape);
                for (int64_t i = 0; i < n; i++)
                    for (long f = 0; f < features; f++)
                        fr.data[i * features + f] = (float)((r + i) * 128 + f);
                fr.index = index++;
                fr.offset = r;
                fr.rate = (rate_change && index > 1) ? 2 * rate : rate;
                if (cmr_writer_put(w, &fr, &err) != CMR_OK)
                    return 1;
                r += n;
            }
        }
        if (no_end && t == tracks - 1)
            break;
        cmr_frame_make_end(&fr, track, index);
        if (end_error)
            cmr_frame_set_error(&fr, end_error);
        if (cmr_writer_put(w, &fr, &err) != CMR_OK)
            return 1;
        cmr_frame_set_error(&fr, NULL);
    }
    cmr_writer_free(w);
    cmr_frame_free(&fr);
    return fclose(stdout) != 0;
}
