/* mk-segments: writes a synthetic frame stream of log-mel "segment" frames
 * for the cmr-encode tests (make check needs no audio pipeline or Python).
 *
 *   mk-segments [--tracks N] [--segments N] [--seed S] [--kind K]
 *               [--shape T,F] [--nan TRACK,SEG] [--no-end]
 *
 * Track i is "t<i>.wav" with metadata {"split": "train", "n": "<i>"} and info
 * {"pos": <segment>}; values are uniform in [0, 2) from cmr_rng(seed + track),
 * so a track's segments do not depend on the others. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "util/rng.h"

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tracks", required_argument, NULL, 't'}, {"segments", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},   {"kind", required_argument, NULL, 'k'},
        {"shape", required_argument, NULL, 'x'},  {"nan", required_argument, NULL, 'n'},
        {"no-end", no_argument, NULL, 'e'},       {NULL, 0, NULL, 0}};
    int tracks = 1, segs = 3, T = 188, F = 96, nan_t = -1, nan_s = -1, no_end = 0, c;
    unsigned long long seed = 1;
    const char *kind = "segment";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tracks = atoi(optarg); break;
        case 's': segs = atoi(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'k': kind = optarg; break;
        case 'x': sscanf(optarg, "%d,%d", &T, &F); break;
        case 'n': sscanf(optarg, "%d,%d", &nan_t, &nan_s); break;
        case 'e': no_end = 1; break;
        default: return 2;
        }
    }
    struct cmr_writer *w = cmr_writer_new(stdout);
    struct cmr_frame fr;
    struct cmr_error err = {0};
    cmr_frame_init(&fr);
    if (cmr_frame_make_header(&fr, "mk-segments") || cmr_writer_put(w, &fr, &err))
        return 1;
    for (int t = 0; t < tracks; t++) {
        char id[32], n[16];
        struct cmr_rng r;
        cmr_rng_seed(&r, seed + (unsigned long long)t);
        snprintf(id, sizeof id, "t%d.wav", t);
        snprintf(n, sizeof n, "%d", t);
        for (int s = 0; s < segs; s++) {
            int64_t shape[2] = {T, F};
            cmr_frame_reset(&fr);
            if (cmr_frame_make_tensor(&fr, kind, id, 2, shape) ||
                cmr_frame_meta_set(&fr, "split", "train") || cmr_frame_meta_set(&fr, "n", n) ||
                cmr_frame_info_set(&fr, "pos", s))
                return 1;
            fr.index = s;
            fr.offset = (int64_t)s * T;
            fr.rate = 16000;
            for (int i = 0; i < T * F; i++)
                fr.data[i] = (float)(2 * cmr_rng_uniform(&r));
            if (t == nan_t && s == nan_s)
                fr.data[T * F / 2 + 7] = 0.0f / 0.0f;
            if (cmr_writer_put(w, &fr, &err))
                return 1;
        }
        if (!no_end) {
            cmr_frame_reset(&fr);
            if (cmr_frame_make_end(&fr, id, segs) || cmr_writer_put(w, &fr, &err))
                return 1;
        }
    }
    cmr_frame_free(&fr);
    cmr_writer_flush(w);
    cmr_writer_free(w);
    return fclose(stdout) ? 1 : 0;
}
