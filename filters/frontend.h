/* The streaming loop shared by cmr-mel and cmr-mfcc (filters/frontend.c):
 * mono "audio" frames at one sample rate in, feature frames out, track by
 * track, with the feature object behind five verbs (dsp/mel.h, dsp/mfcc.h). */
#ifndef CMR_FILTERS_FRONTEND_H
#define CMR_FILTERS_FRONTEND_H

#include <stddef.h>

#include "frame.h"

struct fe_ops {
    const char *kind;  /* output tensor kind: "mel", "mfcc" */
    int width;         /* values per output frame */
    double rate;       /* the input sample rate required, Hz */
    void *obj;         /* the feature object */
    int (*push)(void *obj, const float *in, size_t n, struct cmr_error *err);
    void (*end)(void *obj);
    /* 1 with a frame, 0 when none is ready, or a negative code with err
     * filled (a result that is not finite: dsp/mel.h cmr_mel_take) */
    int (*next)(void *obj, float *out, struct cmr_error *err);
    size_t (*ready)(const void *obj, size_t n);
    void (*reset)(void *obj);
    /* optional: called on every output chunk (n values) before it is written */
    void (*post)(void *ctx, const struct cmr_frame *fr, float *x, size_t n);
    void *post_ctx;
};

/* reads tensor and end frames from rd until the end of the stream (the
 * header has been read and written), writes feature frames to w; exits 1 on
 * bad input */
void fe_run(const struct fe_ops *ops, struct cmr_reader *rd, struct cmr_writer *w);

#endif
