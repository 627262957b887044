/* The streaming loop shared by cmr-mel and cmr-mfcc (see frontend.h).
 *
 * Per track: every "audio" frame must be [n, 1] at ops->rate with contiguous
 * offsets from 0; its samples are pushed into the feature object and the
 * feature frames that became ready are written as one tensor frame
 * ([T, width], offset = index of its first feature frame in the track,
 * index = running number of the output frame, metadata and info of the input
 * frame). At the track's end frame the last feature frames (those that need
 * the right-hand reflect padding) follow, then the end frame with the count of
 * output frames. The values do not depend on how the audio was chunked. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "frontend.h"

struct track {
    char *id;
    int64_t in_next;   /* expected offset of the next audio frame, samples */
    int64_t out_next;  /* feature frames written */
    int64_t out_index; /* output tensor frames written */
};

/* writes the n ready feature frames as one tensor frame with src's metadata */
static void emit(const struct fe_ops *ops, struct track *t, struct cmr_writer *w,
                 struct cmr_frame *out, const struct cmr_frame *src, size_t n)
{
    if (n == 0)
        return;
    int64_t shape[2] = { (int64_t)n, ops->width };
    if (cmr_frame_make_tensor(out, ops->kind, t->id, 2, shape) != CMR_OK ||
        cmr_frame_meta_copy(out, src) != CMR_OK || cmr_frame_info_copy(out, src) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    size_t got = 0;
    while (got < n && ops->next(ops->obj, out->data + got * (size_t)ops->width))
        got++;
    if (got != n) /* ready() promised n: a bug, not bad input */
        cli_die(CLI_EXIT_DATA, "track \"%s\": internal error: %zu of %zu frames ready", t->id, got, n);
    if (ops->post)
        ops->post(ops->post_ctx, src, out->data, n * (size_t)ops->width);
    out->rate = ops->rate;
    out->offset = t->out_next;
    out->index = t->out_index++;
    t->out_next += (int64_t)n;
    cli_put(w, out);
}

/* 1 if every value is finite: an integer OR over the exponent bits, which the
 * compiler vectorises (isfinite() per sample cost 7% of cmr-mel) */
static int all_finite(const float *x, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        bad |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return !bad;
}

static void check_audio(const struct fe_ops *ops, const struct track *t, const struct cmr_frame *fr)
{
    if (strcmp(fr->kind, "audio") != 0)
        cli_wrong_kind(fr, "\"audio\"");
    if (fr->ndim != 2)
        cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame %lld should have shape [n, 1], got %d dims",
                fr->track, (long long)fr->index, fr->ndim);
    if (fr->shape[1] != 1 || fr->rate != ops->rate)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s takes mono %g Hz audio, got %lld channel%s at %g Hz; "
                "convert it with cmr-resample (it downmixes and resamples to 16000 Hz by default)",
                fr->track, cli_prog, ops->rate, (long long)fr->shape[1], fr->shape[1] == 1 ? "" : "s",
                fr->rate);
    int64_t want = t->id ? t->in_next : 0;
    if (fr->offset != want)
        cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame %lld starts at offset %lld, expected %lld "
                "(the spectrogram needs contiguous audio)", fr->track, (long long)fr->index,
                (long long)fr->offset, (long long)want);
    size_t n = (size_t)fr->shape[0];
    if (all_finite(fr->data, n))
        return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(fr->data[i]))
            cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame %lld has a non-finite sample (%g) at "
                    "offset %lld", fr->track, (long long)fr->index, fr->data[i],
                    (long long)(fr->offset + (int64_t)i));
}

void fe_run(const struct fe_ops *ops, struct cmr_reader *rd, struct cmr_writer *w)
{
    struct cmr_frame fr, out, last;
    struct track t = { 0 };
    struct cmr_error err = { 0 };

    cmr_frame_init(&fr);
    cmr_frame_init(&out);
    cmr_frame_init(&last);
    while (cli_next(rd, &fr)) {
        if (fr.type == CMR_FRAME_TENSOR) {
            check_audio(ops, &t, &fr);
            if (!t.id && !(t.id = strdup(fr.track)))
                cli_die(CLI_EXIT_DATA, "out of memory");
            size_t n = (size_t)fr.shape[0];
            size_t ready = ops->ready(ops->obj, n);
            if (ops->push(ops->obj, fr.data, n, &err) != CMR_OK)
                cli_die(CLI_EXIT_DATA, "track \"%s\": %s", t.id, cmr_error_text(&err, err.code));
            t.in_next += (int64_t)n;
            emit(ops, &t, w, &out, &fr, ready);
            /* the last frames of the track carry the last audio frame's metadata */
            cmr_frame_reset(&last);
            if (cmr_frame_set_track(&last, fr.track) != CMR_OK || cmr_frame_meta_copy(&last, &fr) != CMR_OK ||
                cmr_frame_info_copy(&last, &fr) != CMR_OK)
                cli_die(CLI_EXIT_DATA, "out of memory");
        } else if (fr.type == CMR_FRAME_END) {
            if (t.id && !fr.error) {
                ops->end(ops->obj);
                emit(ops, &t, w, &out, &last, ops->ready(ops->obj, 0));
            } else if (fr.error) {
                cli_info("track \"%s\": ended with an error upstream, passed on", fr.track);
            }
            ops->reset(ops->obj);
            fr.frames = t.out_index;
            cli_put(w, &fr);
            cli_info("track \"%s\": %lld samples, %lld %s frames", fr.track, (long long)t.in_next,
                     (long long)t.out_next, ops->kind);
            free(t.id);
            memset(&t, 0, sizeof t);
        }
        /* a later header (streams joined with cat) is dropped: the first one describes the stream */
    }
    free(t.id);
    cmr_frame_free(&fr);
    cmr_frame_free(&out);
    cmr_frame_free(&last);
}
