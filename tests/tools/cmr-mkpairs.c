/* cmr-mkpairs: synthetic training streams for the cmr-train tests (not
 * installed): what cmr-pair | cmr-augment | cmr-mel would write, without
 * audio, so that make check trains in seconds.
 *
 *   cmr-mkpairs [--tracks 8] [--epochs 1] [--rows 2] [--seed 1]
 *               [--kind pair|sequence] [--nan EPOCH,TRACK] [--no-header-size]
 *
 * The header has a "cmr-pair" stage with `epochs` and `tracks`, as cmr-pair
 * writes it (--no-header-size leaves `tracks` out). Per epoch, every track
 * once (in a seeded order per epoch): one tensor frame [rows, 188, 96] with
 * info {"epoch": e}, then an end frame. Track i has its own mel profile (a
 * smooth random curve over the 96 bins and a modulation rate over time);
 * every row is that profile plus independent noise, values about in [0, 1]
 * like log10(1 + 10 mel). The rows of an example therefore share what makes
 * the track recognisable, so InfoNCE can learn to pair them. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "util/rng.h"

#define T 188
#define F 96

static void die(const char *msg)
{
    fprintf(stderr, "cmr-mkpairs: %s\n", msg);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tracks", required_argument, NULL, 't'}, {"epochs", required_argument, NULL, 'e'},
        {"rows", required_argument, NULL, 'r'},   {"seed", required_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},   {"nan", required_argument, NULL, 'n'},
        {"no-header-size", no_argument, NULL, 'H'}, {NULL, 0, NULL, 0}};
    int tracks = 8, epochs = 1, rows = 2, nan_e = -1, nan_t = -1, size = 1, c;
    unsigned long long seed = 1;
    const char *kind = "pair";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tracks = atoi(optarg); break;
        case 'e': epochs = atoi(optarg); break;
        case 'r': rows = atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'k': kind = optarg; break;
        case 'n':
            if (sscanf(optarg, "%d,%d", &nan_e, &nan_t) != 2)
                die("--nan takes EPOCH,TRACK");
            break;
        case 'H': size = 0; break;
        default: die("bad option");
        }
    }
    if (tracks < 1 || epochs < 1 || rows < 1 || rows > 64)
        die("bad sizes");

    struct cmr_frame fr;
    struct cmr_error err = {0};
    struct cmr_writer *w = cmr_writer_new(stdout);
    cmr_frame_init(&fr);
    if (cmr_frame_make_header(&fr, "cmr-mkpairs") || cmr_frame_add_stage(&fr, "cmr-pair") ||
        cmr_frame_stage_param(&fr, "seed", "%llu", seed) || cmr_frame_stage_param(&fr, "epochs", "%d", epochs) ||
        (size && cmr_frame_stage_param(&fr, "tracks", "%d", tracks)) || cmr_writer_put(w, &fr, &err))
        die("cannot write the header");

    /* per track: a smooth profile over the bins and a modulation rate */
    float *prof = malloc((size_t)tracks * F * sizeof *prof);
    double *rate = malloc((size_t)tracks * sizeof *rate);
    int *order = malloc((size_t)tracks * sizeof *order);
    if (!prof || !rate || !order)
        die("out of memory");
    struct cmr_rng root, r;
    cmr_rng_seed(&root, seed);
    for (int i = 0; i < tracks; i++) {
        cmr_rng_split(&root, (uint64_t)i, &r);
        double a[4];
        for (int k = 0; k < 4; k++)
            a[k] = cmr_rng_uniform(&r) * 2 * M_PI;
        for (int f = 0; f < F; f++) {
            double x = (double)f / F;
            prof[(size_t)i * F + f] = (float)(0.45 + 0.2 * sin(2 * M_PI * x + a[0]) + 0.15 * sin(6 * M_PI * x + a[1]) +
                                              0.1 * sin(14 * M_PI * x + a[2]));
        }
        rate[i] = 0.02 + 0.2 * cmr_rng_uniform(&r);
    }
    int64_t shape[3] = {rows, T, F};
    char id[32];
    for (int e = 0; e < epochs; e++) {
        for (int i = 0; i < tracks; i++)
            order[i] = i;
        cmr_rng_split(&root, 1000000 + (uint64_t)e, &r);
        for (int i = tracks - 1; i > 0; i--) {
            int j = (int)cmr_rng_below(&r, (uint64_t)i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < tracks; k++) {
            int i = order[k];
            snprintf(id, sizeof id, "t%02d.wav", i);
            cmr_frame_reset(&fr);
            if (cmr_frame_make_tensor(&fr, kind, id, 3, shape) || cmr_frame_info_set(&fr, "epoch", e))
                die("out of memory");
            fr.rate = 16000;
            struct cmr_rng n;
            cmr_rng_split(&root, 2000000 + (uint64_t)e * 100000 + (uint64_t)i, &n);
            for (int row = 0; row < rows; row++) {
                double ph = cmr_rng_uniform(&n) * 2 * M_PI;
                for (int t = 0; t < T; t++) {
                    float mod = (float)(0.75 + 0.25 * sin(rate[i] * t + ph));
                    float *dst = fr.data + ((size_t)row * T + t) * F;
                    for (int f = 0; f < F; f++)
                        dst[f] = prof[(size_t)i * F + f] * mod + (float)(0.08 * cmr_rng_normal(&n));
                }
            }
            if (e == nan_e && i == nan_t)
                fr.data[(size_t)T * F + 5] = NAN;
            if (cmr_writer_put(w, &fr, &err) || cmr_frame_make_end(&fr, id, 1) || cmr_writer_put(w, &fr, &err))
                die("write failed");
        }
    }
    cmr_writer_flush(w);
    cmr_writer_free(w);
    cmr_frame_free(&fr);
    free(prof);
    free(rate);
    free(order);
    return fflush(stdout) ? 1 : 0;
}
