/* cmr frames: the MessagePack stream every filter reads and writes.
 *
 * A stream is a sequence of MessagePack maps (docs/frames.md is the full
 * specification). The first frame is a header:
 *   {"t":"header", "magic":"CMRF", "version":1,
 *    "provenance":[{"program":"cmr-decode","version":"0.1.0","params":{...}}, ...]}
 * then, per track, tensor frames followed by one end-of-track frame:
 *   {"t":"tensor", "kind":"mel", "track":"a.flac", "index":0, "offset":0,
 *    "rate":16000.0, "shape":[188,96], "dtype":"f32", "data":<bin, LE>,
 *    "meta":{"split":"training",...}, "info":{"pitch":2.0,...}}
 *   {"t":"end", "track":"a.flac", "frames":12}
 * A header may appear again later (streams joined with cat); the reader
 * returns it like any frame and checks it the same way.
 *
 * The reader validates everything before a frame reaches the caller (types,
 * required keys, no key twice in a map, strings valid UTF-8, rank, shape x 4
 * bytes == data size, a hard bound on sizes, track order, and the rules of
 * cmr_frame_check: every dimension >= 1, a supported rate, sane audio frames)
 * and tells a clean end of stream (CMR_EOF) from a truncated one
 * (CMR_ETRUNCATED). The writer refuses a frame that breaks the same rules, so
 * what one stage writes the next can read. Frames own copies of their data: nothing points into
 * msgpack-c's zone after cmr_reader_next() returns.
 * Not thread-safe per object; distinct readers/writers are independent.
 */
#ifndef CMR_FRAME_H
#define CMR_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define CMR_FORMAT_MAGIC "CMRF"
#define CMR_FORMAT_VERSION 1
#define CMR_FRAME_MAX_DIMS 6
#define CMR_KIND_MAX 32
/* hard upper bound on one frame's data (and on the bytes buffered for one frame) */
#define CMR_FRAME_MAX_BYTES_DEFAULT ((size_t)1 << 30)
/* bounds on strings and maps, to keep a hostile header from allocating much */
#define CMR_FRAME_MAX_STRING 4096
#define CMR_FRAME_MAX_ENTRIES 4096
/* the supported sample rates, Hz: a tensor frame's rate is 0 (unknown) or in
 * [CMR_RATE_MIN, CMR_RATE_MAX]; an "audio" frame's is never 0. Every consumer
 * (resampler, mel, segmenter) is bounded in time and memory over this range. */
#define CMR_RATE_MIN 1000.0
#define CMR_RATE_MAX 768000.0
/* channels of an "audio" frame [n, channels] */
#define CMR_AUDIO_MAX_CHANNELS 256

enum cmr_frame_type {
    CMR_FRAME_NONE = 0,
    CMR_FRAME_HEADER,
    CMR_FRAME_TENSOR,
    CMR_FRAME_END
};

/* one metadata entry: user metadata is string -> string */
struct cmr_kv {
    char *key;
    char *val;
};

/* one info entry: numbers a stage records about a frame (positions drawn,
 * augmentation parameters); string -> double */
struct cmr_num {
    char *key;
    double val;
};

/* one provenance entry of a header: the program and its parameters */
struct cmr_stage {
    char *program;
    char *version;
    struct cmr_kv *params;
    int n_params, cap_params;
};

struct cmr_frame {
    enum cmr_frame_type type;

    /* header */
    int version;                 /* format version of the stream */
    struct cmr_stage *stages;    /* provenance, oldest first */
    int n_stages, cap_stages;

    /* tensor and end */
    char *track;                 /* track id, owned */

    /* tensor */
    char kind[CMR_KIND_MAX];     /* "audio", "mel", "mfcc", "segment", "pair", "embedding", "summary", ... */
    int64_t index;               /* running number of this frame within its track, from 0 */
    int64_t offset;              /* first time step in the track: samples (audio), frames (mel, segment) */
    double rate;                 /* sample rate of the track's audio, Hz; 0 if unknown */
    int ndim;
    int64_t shape[CMR_FRAME_MAX_DIMS];
    float *data;                 /* product(shape) floats, owned */
    size_t cap;                  /* allocated floats */
    struct cmr_kv *meta;         /* user metadata, passed through untouched */
    int n_meta, cap_meta;
    struct cmr_num *info;        /* stage-recorded numbers */
    int n_info, cap_info;

    /* end */
    int64_t frames;              /* tensor frames the track had (-1: not given) */
    char *error;                 /* set when the producer could not finish the track, owned */
};

/* ---- frames ---- */
void cmr_frame_init(struct cmr_frame *fr);
/* frees everything the frame owns and re-initialises it */
void cmr_frame_free(struct cmr_frame *fr);
/* forgets contents but keeps allocations for reuse */
void cmr_frame_reset(struct cmr_frame *fr);

/* a fresh header frame with one provenance entry for `program` */
int cmr_frame_make_header(struct cmr_frame *fr, const char *program);
/* appends a provenance entry (the stage that is about to write this header) */
int cmr_frame_add_stage(struct cmr_frame *fr, const char *program);
/* adds a parameter to the last provenance entry; printf-style value */
int cmr_frame_stage_param(struct cmr_frame *fr, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* turns fr into a tensor frame of the given kind, track and shape, with room
 * for the data (contents undefined). Keeps meta and info unless reset first. */
int cmr_frame_make_tensor(struct cmr_frame *fr, const char *kind, const char *track,
                          int ndim, const int64_t *shape);
/* turns fr into an end-of-track frame */
int cmr_frame_make_end(struct cmr_frame *fr, const char *track, int64_t frames);
int cmr_frame_set_track(struct cmr_frame *fr, const char *track);
/* the end frame's error text; bytes that are not UTF-8 become '?' and it is cut at
 * CMR_FRAME_MAX_STRING bytes */
int cmr_frame_set_error(struct cmr_frame *fr, const char *msg);
size_t cmr_frame_numel(const struct cmr_frame *fr);

/* The rules every tensor frame obeys beyond its encoding (docs/frames.md,
 * "What every frame guarantees"), checked in one place: by the reader on every
 * frame it returns and by the writer on every frame it writes.
 *   - rank 1 to CMR_FRAME_MAX_DIMS, every dimension >= 1 (CMR_ESHAPE);
 *   - rate 0 or in [CMR_RATE_MIN, CMR_RATE_MAX] and finite (CMR_EUNSUPPORTED);
 *   - kind "audio": shape [n, channels] with 1 <= channels <=
 *     CMR_AUDIO_MAX_CHANNELS (CMR_ESHAPE), a rate (CMR_EUNSUPPORTED) and
 *     finite samples (CMR_ENAN; the message gives the sample and its time).
 * Header and end frames always pass. Strings are checked by the writer and
 * the reader, not here. CMR_OK, or the code with err filled as
 * "track \"T\": KIND frame I: what". */
int cmr_frame_check(const struct cmr_frame *fr, struct cmr_error *err);

/* 1 if s[0..n) is valid UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF), else 0 with *bad (may be NULL) set to the offset of the
 * first invalid byte. Every string in a frame must be valid UTF-8. */
int cmr_utf8_valid(const char *s, size_t n, size_t *bad);

/* metadata (string -> string); get returns NULL when absent */
const char *cmr_frame_meta_get(const struct cmr_frame *fr, const char *key);
int cmr_frame_meta_set(struct cmr_frame *fr, const char *key, const char *val);
/* replaces dst's metadata with a copy of src's */
int cmr_frame_meta_copy(struct cmr_frame *dst, const struct cmr_frame *src);
/* info (string -> number); get returns 1 and sets *val when present, else 0 */
int cmr_frame_info_get(const struct cmr_frame *fr, const char *key, double *val);
int cmr_frame_info_set(struct cmr_frame *fr, const char *key, double val);
int cmr_frame_info_copy(struct cmr_frame *dst, const struct cmr_frame *src);

/* ---- reader ---- */
struct cmr_reader;

/* reads from fd (not closed by the reader); name is used in messages */
struct cmr_reader *cmr_reader_new(int fd, const char *name);
/* reads from memory (tests, fuzzing); the buffer must outlive the reader */
struct cmr_reader *cmr_reader_new_mem(const void *buf, size_t len, const char *name);
void cmr_reader_set_max_bytes(struct cmr_reader *rd, size_t max_bytes);
/* CMR_OK with the next frame in fr, CMR_EOF at a clean end, or a negative
 * code with err filled as "NAME: frame N (byte B): what". After an error the
 * reader stays in error. */
int cmr_reader_next(struct cmr_reader *rd, struct cmr_frame *fr, struct cmr_error *err);
int64_t cmr_reader_frame_count(const struct cmr_reader *rd);
int64_t cmr_reader_byte_offset(const struct cmr_reader *rd);
void cmr_reader_free(struct cmr_reader *rd);

/* ---- push-mode decoder ----
 * The reader for callers that are handed bytes instead of reading them (a
 * GStreamer element): feed bytes as they come, take the frames they complete.
 * It runs the reader's code, with the same checks and messages: the bounded
 * pre-scan refuses an over-limit declared length or count as soon as its
 * header bytes are fed, so it buffers at most one frame (max bytes plus 64 KiB
 * of keys) plus the bytes of the last feed.
 *
 *   dec = cmr_decoder_new("name");
 *   for each chunk: cmr_decoder_feed(dec, chunk, n, &err);
 *                   while ((rc = cmr_decoder_next(dec, &fr, &err)) == CMR_OK) use(&fr);
 *                   rc == CMR_DECODER_MORE: wait for the next chunk; rc < 0: error
 *   at the end:     cmr_decoder_finish(dec);
 *                   cmr_decoder_next() -> CMR_EOF, or CMR_ETRUNCATED / CMR_ENOHEADER
 */
#define CMR_DECODER_MORE 2 /* cmr_decoder_next: no complete frame yet, feed more bytes */

struct cmr_decoder;

/* name is used in messages; NULL: "stream" */
struct cmr_decoder *cmr_decoder_new(const char *name);
void cmr_decoder_set_max_bytes(struct cmr_decoder *dec, size_t max_bytes);
/* copies len bytes in; CMR_ENOMEM, or the sticky error of an earlier call */
int cmr_decoder_feed(struct cmr_decoder *dec, const void *buf, size_t len, struct cmr_error *err);
/* no more bytes will come: the next calls tell a clean end from a truncated one */
void cmr_decoder_finish(struct cmr_decoder *dec);
/* CMR_OK with the next frame in fr, CMR_DECODER_MORE when the bytes fed so far
 * hold no complete frame, CMR_EOF at a clean end after cmr_decoder_finish(),
 * or a negative code with err filled as cmr_reader_next() does (sticky) */
int cmr_decoder_next(struct cmr_decoder *dec, struct cmr_frame *fr, struct cmr_error *err);
int64_t cmr_decoder_frame_count(const struct cmr_decoder *dec);
/* bytes held: the fed bytes not yet returned as frames */
size_t cmr_decoder_buffered(const struct cmr_decoder *dec);
void cmr_decoder_free(struct cmr_decoder *dec);

/* ---- writer ---- */
struct cmr_writer;

/* writes to f (not closed by the writer) */
struct cmr_writer *cmr_writer_new(FILE *f);
/* validates and writes one frame; CMR_EIO when the stream fails */
int cmr_writer_put(struct cmr_writer *w, const struct cmr_frame *fr, struct cmr_error *err);
int cmr_writer_flush(struct cmr_writer *w);
void cmr_writer_free(struct cmr_writer *w);

/* serialises one frame into a malloc'ed buffer (GStreamer elements, tests) */
int cmr_frame_pack(const struct cmr_frame *fr, void **buf, size_t *len);

/* 1 if every value of x (n floats) is finite: an integer OR over the
 * exponent bits, which the compiler vectorises (isfinite() per sample cost
 * 7 % of cmr-mel) */
int cmr_all_finite(const float *x, size_t n);

#endif
