#include "audio.h"
#include "frame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sndfile.h>

struct cmr_audio {
    SNDFILE *sf;
    char *path;
    int channels;
    int spool_fd;   /* temporary copy of a non-seekable stdin, or -1 */
};

/* Copies all of fd into an unlinked temporary file in $TMPDIR (or /tmp) and
 * returns its descriptor, rewound; -1 with errno set on failure. Several of
 * libsndfile's decoders (FLAC) seek, which a pipe cannot. */
static int spool(int fd)
{
    const char *dir = getenv("TMPDIR");
    char path[4096], buf[65536];
    ssize_t n;
    int out, e;

    if (!dir || !*dir)
        dir = "/tmp";
    snprintf(path, sizeof path, "%s/cmr-stdin.XXXXXX", dir);
    if ((out = mkstemp(path)) < 0)
        return -1;
    unlink(path);
    for (;;) {
        n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto fail;
            done += w;
        }
    }
    if (n < 0 || lseek(out, 0, SEEK_SET) != 0)
        goto fail;
    return out;
fail:
    e = errno;
    close(out);
    errno = e;
    return -1;
}

/* libsndfile's message for a failed open; the system's when the file is missing */
static const char *open_reason(const char *path)
{
    FILE *f;
    if (strcmp(path, "-") != 0 && (f = fopen(path, "rb")) == NULL)
        return strerror(errno);
    if (strcmp(path, "-") != 0)
        fclose(f);
    return sf_strerror(NULL);
}

struct cmr_audio *cmr_audio_open(const char *path, struct cmr_audio_info *info,
                                 struct cmr_error *err)
{
    SF_INFO si;
    struct cmr_audio *a;

    memset(info, 0, sizeof *info);
    memset(&si, 0, sizeof si);
    a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        cmr_error_set(err, CMR_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    a->spool_fd = -1;
    if (strcmp(path, "-") == 0) {
        int fd = STDIN_FILENO;
        if (lseek(fd, 0, SEEK_CUR) < 0) {
            if ((a->spool_fd = spool(fd)) < 0) {
                cmr_error_set(err, CMR_EIO, "%s: cannot copy stdin to a temporary file: %s", path,
                              strerror(errno));
                cmr_audio_close(a);
                return NULL;
            }
            fd = a->spool_fd;
        }
        a->sf = sf_open_fd(fd, SFM_READ, &si, 0);
    } else
        a->sf = sf_open(path, SFM_READ, &si);
    if (!a->sf) {
        cmr_error_set(err, CMR_EAUDIO, "%s: %s", path, open_reason(path));
        cmr_audio_close(a);
        return NULL;
    }
    if (si.channels < 1 || si.samplerate < 1) {
        cmr_error_set(err, CMR_EAUDIO, "%s: invalid stream (%d channels, %d Hz)", path,
                      si.channels, si.samplerate);
        cmr_audio_close(a);
        return NULL;
    }
    if (si.samplerate < CMR_RATE_MIN || si.samplerate > CMR_RATE_MAX) {
        cmr_error_set(err, CMR_EAUDIO, "%s: sample rate %d Hz is outside the supported range %g..%g Hz",
                      path, si.samplerate, CMR_RATE_MIN, CMR_RATE_MAX);
        cmr_audio_close(a);
        return NULL;
    }
    a->channels = si.channels;
    info->channels = si.channels;
    info->rate = si.samplerate;
    /* libsndfile reports SF_COUNT_MAX when the length is unknown (pipes) */
    info->frames = (si.frames >= 0 && si.frames < SF_COUNT_MAX) ? (int64_t)si.frames : -1;
    {
        SF_FORMAT_INFO major = {.format = si.format & SF_FORMAT_TYPEMASK};
        SF_FORMAT_INFO minor = {.format = si.format & SF_FORMAT_SUBMASK};
        const char *mj = "unknown", *mn = "unknown";
        if (sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0 && major.name)
            mj = major.name;
        if (sf_command(NULL, SFC_GET_FORMAT_INFO, &minor, sizeof minor) == 0 && minor.name)
            mn = minor.name;
        snprintf(info->format, sizeof info->format, "%s / %s", mj, mn);
    }
    sf_command(a->sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
    return a;
}

int cmr_audio_read(struct cmr_audio *a, float *buf, size_t max_frames, size_t *got,
                   struct cmr_error *err)
{
    sf_count_t n;
    int e;

    *got = 0;
    if (!a || !a->sf || !buf || max_frames == 0)
        return cmr_error_set(err, CMR_EINVAL, "audio: read needs an open file and a buffer");
    n = sf_readf_float(a->sf, buf, (sf_count_t)max_frames);
    e = sf_error(a->sf);
    if (e != SF_ERR_NO_ERROR)
        return cmr_error_set(err, CMR_EAUDIO, "%s: decoding failed: %s", a->path,
                             sf_strerror(a->sf));
    if (n < 0)
        return cmr_error_set(err, CMR_EAUDIO, "%s: decoding failed", a->path);
    if (n == 0)
        return CMR_EOF;
    *got = (size_t)n;
    return CMR_OK;
}

void cmr_audio_close(struct cmr_audio *a)
{
    if (!a)
        return;
    if (a->sf)
        sf_close(a->sf);
    if (a->spool_fd >= 0)
        close(a->spool_fd);
    free(a->path);
    free(a);
}
