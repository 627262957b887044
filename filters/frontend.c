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
    struct cmr_error err = { 0 };
    int rc = 0;
    while (got < n && (rc = ops->next(ops->obj, out->data + got * (size_t)ops->width, &err)) == 1)
        got++;
    if (rc < 0)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s", t->id, cmr_error_text(&err, rc));
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
    if (cmr_all_finite(fr->data, n))
        return;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(fr->data[i]))
            cli_die(CLI_EXIT_DATA, "track \"%s\": audio frame %lld has a non-finite sample (%g) at "
                    "offset %lld", fr->track, (long long)fr->index, fr->data[i],
                    (long long)(fr->offset + (int64_t)i));
}

/* 1 for the training kinds ("pair", "sequence"): [R, n] rows of audio, each
 * an independent clip (cmr-pair, cmr-augment) */
static int is_clip_kind(const struct cmr_frame *fr)
{
    return strcmp(fr->kind, "pair") == 0 || strcmp(fr->kind, "sequence") == 0;
}

/* [R, n] clips -> [R, T, width]: each row is a whole track of its own
 * (reflect padding at both ends), so the values equal those of the row
 * decoded as a separate file. Metadata, info and position are kept. */
static void run_clips(const struct fe_ops *ops, struct cmr_writer *w, struct cmr_frame *out,
                      const struct cmr_frame *fr)
{
    struct cmr_error err = { 0 };
    if (fr->ndim != 2)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld should have shape [rows, samples] of audio, "
                "got %d dims%s", fr->track, fr->kind, (long long)fr->index, fr->ndim,
                fr->ndim == 3 ? " (is it a spectrogram already?)" : "");
    if (fr->rate != ops->rate)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s takes %g Hz audio, got %g Hz; resample it first",
                fr->track, cli_prog, ops->rate, fr->rate);
    size_t rows = (size_t)fr->shape[0], n = (size_t)fr->shape[1];
    if (!cmr_all_finite(fr->data, rows * n))
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld has a non-finite sample", fr->track, fr->kind,
                (long long)fr->index);
    /* frames of a whole clip: those ready after all samples plus the padded tail */
    ops->reset(ops->obj);
    if (ops->push(ops->obj, fr->data, n, &err) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, cmr_error_text(&err, err.code));
    ops->end(ops->obj);
    size_t T = ops->ready(ops->obj, 0);
    ops->reset(ops->obj);
    int64_t shape[3] = { (int64_t)rows, (int64_t)T, ops->width };
    if (cmr_frame_make_tensor(out, fr->kind, fr->track, 3, shape) != CMR_OK ||
        cmr_frame_meta_copy(out, fr) != CMR_OK || cmr_frame_info_copy(out, fr) != CMR_OK)
        cli_die(CLI_EXIT_DATA, "out of memory");
    for (size_t r = 0; r < rows; r++) {
        float *dst = out->data + r * T * (size_t)ops->width;
        if (ops->push(ops->obj, fr->data + r * n, n, &err) != CMR_OK)
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s", fr->track, cmr_error_text(&err, err.code));
        ops->end(ops->obj);
        size_t got = 0;
        int rc = 0;
        while (got < T && (rc = ops->next(ops->obj, dst + got * (size_t)ops->width, &err)) == 1)
            got++;
        if (rc < 0)
            cli_die(CLI_EXIT_DATA, "track \"%s\": %s frame %lld, row %zu: %s", fr->track, fr->kind,
                    (long long)fr->index, r, cmr_error_text(&err, rc));
        if (got != T)
            cli_die(CLI_EXIT_DATA, "track \"%s\": internal error: %zu of %zu frames ready", fr->track, got, T);
        ops->reset(ops->obj);
    }
    if (ops->post)
        ops->post(ops->post_ctx, fr, out->data, rows * T * (size_t)ops->width);
    out->rate = ops->rate;
    out->offset = fr->offset;
    out->index = fr->index;
    cli_put(w, out);
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
        if (fr.type == CMR_FRAME_TENSOR && is_clip_kind(&fr)) {
            run_clips(ops, w, &out, &fr);
        } else if (fr.type == CMR_FRAME_TENSOR) {
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
        } else if (fr.type == CMR_FRAME_END && !t.id) {
            cli_put(w, &fr); /* after clips, or a track without audio */
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
