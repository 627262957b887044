/* libFuzzer target for the audio path: the bytes are read as a frame stream
 * (lib/frame.c), and every "audio"-shaped tensor [n, channels] goes, per
 * track, through what cmr-resample and cmr-mel do: downmix to mono, resample
 * to 16 kHz (lib/dsp/resample.c; the quality is the track's first frame
 * index mod 5, so all five methods are reached) and the 16 kHz mel front end
 * (lib/dsp/mel.c); the mono signal also goes into a mel made for the track's
 * own rate (hostile rates into the filterbank). Hostile rates, shapes and
 * values must give a clean error or output, never a crash, a leak, a hang or
 * unbounded memory. `make fuzz`.
 *
 * Not covered: the segmenter, which lives only in filters/cmr-segment.c.
 * Every rate reaches the code: the reader refuses audio frames outside
 * 1000..768000 Hz (cmr_frame_check, issue 11 A/B), and cmr_resample_new
 * checks its own rates; CMR_FUZZ_SKIP_RATES=1 skips such frames here. */
#include "dsp/mel.h"
#include "dsp/resample.h"
#include "frame.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_RATE 1000.0
#define MAX_RATE 768000.0

struct track {
    char *id;
    double rate;
    struct cmr_resample *rs;
    struct cmr_mel *mel16, *mel_native;
    float *mono;
    size_t mono_cap;
    float melbuf[CMR_MEL_MAX_MELS];
};

static void mel_feed(struct cmr_mel *m, const float *x, size_t n, float *out)
{
    struct cmr_error err = {0};
    if (!m || !n)
        return;
    if (cmr_mel_push(m, x, n, &err) != CMR_OK)
        return;
    while (cmr_mel_next(m, out))
        ;
}

static void mel_end(struct cmr_mel *m, float *out)
{
    if (!m)
        return;
    cmr_mel_end(m);
    while (cmr_mel_next(m, out))
        ;
}

static void track_end(struct track *t)
{
    struct cmr_error err = {0};
    const float *y;
    size_t ny;
    if (t->rs && cmr_resample_drain(t->rs, &y, &ny, &err) == CMR_OK)
        mel_feed(t->mel16, y, ny, t->melbuf);
    mel_end(t->mel16, t->melbuf);
    mel_end(t->mel_native, t->melbuf);
    cmr_resample_free(t->rs);
    cmr_mel_free(t->mel16);
    cmr_mel_free(t->mel_native);
    free(t->id);
    t->id = NULL;
    t->rs = NULL;
    t->mel16 = t->mel_native = NULL;
}

static int track_start(struct track *t, const struct cmr_frame *fr)
{
    struct cmr_error err = {0};
    if (!(t->id = strdup(fr->track)))
        return -1;
    t->rate = fr->rate;
    struct cmr_resample_cfg rc = cmr_resample_cfg_default();
    rc.in_rate = fr->rate;
    rc.out_rate = 16000;
    rc.quality = (enum cmr_resample_quality)((uint64_t)fr->index % 5);
    t->rs = cmr_resample_new(&rc, &err); /* NULL: a clean refusal, fine */
    struct cmr_mel_cfg mc = cmr_mel_cfg_default();
    t->mel16 = cmr_mel_new(&mc, &err);
    mc.sample_rate = fr->rate;
    mc.f_max = fr->rate / 2;
    t->mel_native = cmr_mel_new(&mc, &err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int all_rates = -1;
    if (all_rates < 0)
        all_rates = getenv("CMR_FUZZ_SKIP_RATES") == NULL;
    struct cmr_reader *rd = cmr_reader_new_mem(data, size, "fuzz");
    if (!rd)
        return 0;
    cmr_reader_set_max_bytes(rd, 1 << 20);
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    struct cmr_error err = {0};
    struct track t;
    memset(&t, 0, sizeof t);
    while (cmr_reader_next(rd, &fr, &err) == CMR_OK) {
        if (fr.type == CMR_FRAME_END) {
            if (t.id)
                track_end(&t);
            continue;
        }
        if (fr.type != CMR_FRAME_TENSOR || fr.ndim != 2 || fr.shape[1] < 1)
            continue;
        if (!all_rates && !(fr.rate >= MIN_RATE && fr.rate <= MAX_RATE))
            continue; /* see the comment at the top */
        if (t.id && (strcmp(t.id, fr.track) != 0 || fr.rate != t.rate))
            track_end(&t);
        if (!t.id && track_start(&t, &fr))
            break;
        size_t n = (size_t)fr.shape[0], ch = (size_t)fr.shape[1];
        if (n == 0)
            continue;
        if (n > t.mono_cap) {
            free(t.mono);
            t.mono_cap = n;
            if (!(t.mono = malloc(n * sizeof *t.mono))) {
                t.mono_cap = 0;
                break;
            }
        }
        for (size_t i = 0; i < n; i++) {
            float acc = 0;
            for (size_t c = 0; c < ch; c++)
                acc += fr.data[i * ch + c];
            t.mono[i] = acc / (float)ch;
        }
        mel_feed(t.mel_native, t.mono, n, t.melbuf);
        const float *y;
        size_t ny;
        if (t.rs && cmr_resample_process(t.rs, t.mono, n, &y, &ny, &err) == CMR_OK)
            mel_feed(t.mel16, y, ny, t.melbuf);
    }
    if (t.id)
        track_end(&t);
    free(t.mono);
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    return 0;
}
