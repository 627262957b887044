/* lib/audio: reading files through libsndfile, errors naming the file */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sndfile.h>

#include "audio.h"
#include "../tap.h"

static int write_wav(const char *path, int rate, int channels, int frames, int format)
{
    SF_INFO si = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &si);
    if (!sf)
        return -1;
    short *x = calloc((size_t)(frames * channels) + 1, sizeof *x);
    for (int i = 0; i < frames * channels; i++)
        x[i] = (short)(((i % 200) - 100) * 256);
    sf_writef_short(sf, x, frames);
    sf_close(sf);
    free(x);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/test-audio-XXXXXX", p[300];
    struct cmr_audio_info info;
    struct cmr_error err = {0};
    struct cmr_audio *a;
    float buf[2 * 1000];
    size_t got, total = 0;
    int rc, bad = 0;

    tap_plan_none();
    if (!mkdtemp(dir))
        skip_all("mkdtemp failed");

    snprintf(p, sizeof p, "%s/s.wav", dir);
    write_wav(p, 22050, 2, 2500, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    a = cmr_audio_open(p, &info, &err);
    ok(a != NULL, "open a 16-bit stereo WAV: %s", err.msg);
    ok(info.rate == 22050 && info.channels == 2 && info.frames == 2500, "info: %d Hz, %d ch, %lld frames, %s",
       info.rate, info.channels, (long long)info.frames, info.format);
    while ((rc = cmr_audio_read(a, buf, 1000, &got, &err)) == CMR_OK) {
        for (size_t i = 0; i < got * 2; i++) {
            size_t k = total * 2 + i;
            if (buf[i] != (float)((int)(k % 200) - 100) * 256.0f / 32768.0f)
                bad++;
        }
        total += got;
    }
    ok(rc == CMR_EOF && total == 2500, "read in chunks of 1000: %zu frames then EOF", total);
    ok(bad == 0, "16-bit samples scaled by 1/32768 exactly (%d differ)", bad);
    ok(cmr_audio_read(a, buf, 1000, &got, &err) == CMR_EOF && got == 0, "EOF again after EOF");
    cmr_audio_close(a);

    snprintf(p, sizeof p, "%s/f.flac", dir);
    write_wav(p, 44100, 1, 3000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    a = cmr_audio_open(p, &info, &err);
    ok(a && info.rate == 44100 && info.channels == 1 && info.frames == 3000, "open FLAC: %s", info.format);
    cmr_audio_close(a);

    snprintf(p, sizeof p, "%s/empty.wav", dir);
    write_wav(p, 16000, 1, 0, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    a = cmr_audio_open(p, &info, &err);
    ok(a && info.frames == 0, "a 0-frame WAV opens");
    ok(a && cmr_audio_read(a, buf, 1000, &got, &err) == CMR_EOF && got == 0, "and reads EOF at once");
    cmr_audio_close(a);

    snprintf(p, sizeof p, "%s/text.wav", dir);
    {
        FILE *f = fopen(p, "w");
        fputs("this is not audio, just some text that is long enough to look at\n", f);
        fclose(f);
    }
    a = cmr_audio_open(p, &info, &err);
    ok(!a && err.code == CMR_EAUDIO && strstr(err.msg, p) == err.msg, "non-audio file: %s", err.msg);

    snprintf(p, sizeof p, "%s/missing.wav", dir);
    a = cmr_audio_open(p, &info, &err);
    ok(!a && err.code == CMR_EAUDIO && strstr(err.msg, "No such file or directory"), "missing file: %s", err.msg);

    ok(cmr_audio_read(NULL, buf, 10, &got, &err) == CMR_EINVAL, "read(NULL) refused");
    cmr_audio_close(NULL);

    snprintf(p, sizeof p, "rm -rf '%s'", dir);
    if (system(p) != 0)
        diag("could not remove %s", dir);
    return tap_done();
}
