/* Reading audio files through libsndfile (WAV, FLAC, Ogg/Vorbis, Opus, MP3 and
 * everything else the installed libsndfile knows).
 *
 *   struct cmr_audio_info info;
 *   struct cmr_audio *a = cmr_audio_open("song.mp3", &info, &err);   // NULL on error
 *   while ((rc = cmr_audio_read(a, buf, 65536, &got, &err)) == CMR_OK)
 *       ... got sample frames, info.channels interleaved floats each ...
 *   cmr_audio_close(a);
 *
 * Samples come out as float, integer formats scaled to [-1, 1) (libsndfile's
 * SFC_SET_NORM_FLOAT default, the same as torchaudio.load / soundfile). Float
 * files are passed through unscaled. The path "-" reads standard input
 * (sf_open_fd on fd 0): fine for WAV/AU/FLAC/Ogg; formats that need seeking
 * may fail on a pipe, which libsndfile reports as an open error.
 * Memory is bounded by the caller's buffer: nothing here holds the whole track.
 * Not thread-safe per object; distinct objects are independent.
 */
#ifndef CMR_AUDIO_H
#define CMR_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cmr_audio_info {
    int64_t frames;      /* sample frames the file declares; -1 if unknown (pipes) */
    int channels;        /* >= 1 */
    int rate;            /* sample rate, Hz, in [CMR_RATE_MIN, CMR_RATE_MAX] (frame.h) */
    char format[64];     /* "WAV (Microsoft) / Signed 16 bit PCM" or similar */
};

struct cmr_audio;

/* Opens path ("-" = stdin). On error returns NULL with err filled as
 * "PATH: why" (code CMR_EAUDIO, or CMR_ENOMEM); a sample rate outside the
 * supported 1000..768000 Hz is such an error. info may not be NULL. */
struct cmr_audio *cmr_audio_open(const char *path, struct cmr_audio_info *info,
                                 struct cmr_error *err);

/* Reads up to max_frames sample frames (max_frames * channels floats) into buf.
 * Returns CMR_OK with *got >= 1, CMR_EOF with *got == 0 at the end of the file,
 * or CMR_EAUDIO with err filled when decoding fails. */
int cmr_audio_read(struct cmr_audio *a, float *buf, size_t max_frames, size_t *got,
                   struct cmr_error *err);

/* Closes the file (not stdin's descriptor); tolerates NULL. */
void cmr_audio_close(struct cmr_audio *a);

#endif
