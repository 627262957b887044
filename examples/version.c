/* examples/version.c: libcmr from another program, through the public API
 * only (#include <cmr.h>, docs/library.md). Prints the library's version,
 * then makes a small encoder (or loads the model file given), embeds one
 * 3 s segment of a synthetic log-mel spectrogram, and writes the embedding
 * as a cmr frame stream to stdout (read it with cmr-dump).
 *
 *   cc version.c $(pkg-config --cflags --libs cmr) -o version
 *   ./version [MODEL] | cmr-dump
 *
 * Exit status: 0 ok, 1 error (a one-line message on stderr). */
#include <cmr.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* "version: [WHAT: ]error text", exit status 1 */
static int fail(const char *what, const struct cmr_error *err, int code)
{
    fprintf(stderr, "version: %s%s%s\n", what ? what : "", what ? ": " : "", cmr_error_text(err, code));
    return 1;
}

int main(int argc, char **argv)
{
    struct cmr_error err = {0};
    struct cmr_frame fr;
    struct cmr_model *m;
    int rc;

    /* the library's version: every header frame records it */
    cmr_frame_init(&fr);
    if ((rc = cmr_frame_make_header(&fr, "version")) != CMR_OK)
        return fail("header", NULL, rc);
    fprintf(stderr, "libcmr %s, frame format %d\n", fr.stages[0].version, fr.version);

    if (argc > 1) {
        if (!(m = cmr_model_load(argv[1], &err)))
            return fail(NULL, &err, err.code); /* the message names the file */
    } else {
        struct cmr_model_cfg cfg = cmr_model_cfg_default(CMR_MODEL_ENCODER, 0.125);
        if (!(m = cmr_model_new(&cfg, &err)))
            return fail("model", &err, err.code);
        cmr_model_init(m, 1);
    }

    /* one segment: T x F log-mel values, a slow sweep */
    int dim = cmr_model_out_dim(&m->cfg);
    float *x = malloc(sizeof(float) * CMR_MODEL_T * CMR_MODEL_F);
    if (!x)
        return fail("segment", NULL, CMR_ENOMEM);
    for (int t = 0; t < CMR_MODEL_T; t++)
        for (int f = 0; f < CMR_MODEL_F; f++)
            x[t * CMR_MODEL_F + f] = (float)sin(0.05 * t + 0.1 * f);

    /* the embedding goes straight into a tensor frame's data */
    struct cmr_writer *w = cmr_writer_new(stdout);
    int64_t shape[1] = {dim};
    if (!w || (rc = cmr_writer_put(w, &fr, &err)) != CMR_OK)
        return fail("stdout", &err, w ? rc : CMR_ENOMEM);
    if ((rc = cmr_frame_make_tensor(&fr, "embedding", "sweep", 1, shape)) != CMR_OK)
        return fail("frame", NULL, rc);
    if ((rc = cmr_model_forward(m, x, 1, 0, fr.data, &err)) != CMR_OK)
        return fail("encode", &err, rc);
    fprintf(stderr, "%s model, %d-d embedding, first value %.6f\n",
            cmr_model_kind_name(m->cfg.kind), dim, fr.data[0]);
    if ((rc = cmr_writer_put(w, &fr, &err)) != CMR_OK ||
        (rc = cmr_frame_make_end(&fr, "sweep", 1)) != CMR_OK ||
        (rc = cmr_writer_put(w, &fr, &err)) != CMR_OK || (rc = cmr_writer_flush(w)) != CMR_OK)
        return fail("stdout", &err, rc);

    cmr_writer_free(w);
    cmr_frame_free(&fr);
    cmr_model_free(m);
    free(x);
    return 0;
}
