/* lib/frame.c: round trips and one test per reader error code. */
#include "frame.h"
#include "tap.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building streams by hand ---- */
static msgpack_sbuffer sb;
static msgpack_packer pk;

static void begin(void)
{
    msgpack_sbuffer_clear(&sb);
}
static void s(const char *x)
{
    msgpack_pack_str(&pk, strlen(x));
    msgpack_pack_str_body(&pk, x, strlen(x));
}
static void header(int version, const char *magic)
{
    msgpack_pack_map(&pk, 4);
    s("t"), s("header"), s("magic"), s(magic), s("version");
    msgpack_pack_int(&pk, version);
    s("provenance");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2);
    s("program"), s("test"), s("params");
    msgpack_pack_map(&pk, 1);
    s("k"), s("v");
}
/* a tensor frame with n floats declared as `shape0 x 2`, and `bytes` of data */
static void tensor(const char *track, const char *dtype, uint64_t shape0, size_t bytes)
{
    static float zeros[64];
    msgpack_pack_map(&pk, 6);
    s("t"), s("tensor"), s("kind"), s("mel"), s("track"), s(track), s("dtype"), s(dtype);
    s("shape");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, shape0);
    msgpack_pack_int(&pk, 2);
    s("data");
    msgpack_pack_bin(&pk, bytes);
    msgpack_pack_bin_body(&pk, zeros, bytes);
}
static void end(const char *track)
{
    msgpack_pack_map(&pk, 2);
    s("t"), s("end"), s("track"), s(track);
}

/* reads the whole buffer; returns the first non-OK code */
static int read_all(const void *buf, size_t len, int *frames, struct cmr_error *err)
{
    struct cmr_reader *rd = cmr_reader_new_mem(buf, len, "test");
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    int rc;
    *frames = 0;
    while ((rc = cmr_reader_next(rd, &fr, err)) == CMR_OK)
        (*frames)++;
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    return rc;
}

static void expect(const char *what, int want)
{
    struct cmr_error err = {0};
    int n;
    int rc = read_all(sb.data, sb.size, &n, &err);
    ok(rc == want, "%s -> %s (got %d: %s)", what, cmr_strerror(want), rc, cmr_error_text(&err, rc));
}

static void test_round_trip(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct cmr_writer *w = cmr_writer_new(f);
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    ok(cmr_frame_make_header(&fr, "cmr-test") == CMR_OK, "make header");
    ok(cmr_frame_stage_param(&fr, "rate", "%d", 16000) == CMR_OK, "stage param");
    ok(cmr_writer_put(w, &fr, NULL) == CMR_OK, "write header");
    int64_t shape[2] = {3, 4};
    for (int t = 0; t < 2; t++) {
        cmr_frame_reset(&fr);
        ok(cmr_frame_make_tensor(&fr, "mel", t ? "b" : "a", 2, shape) == CMR_OK, "make tensor");
        for (int i = 0; i < 12; i++)
            fr.data[i] = (float)i * 0.5f - 1.0f;
        fr.offset = 100;
        fr.index = 7;
        fr.rate = 16000;
        cmr_frame_meta_set(&fr, "split", "training");
        cmr_frame_meta_set(&fr, "label", "cello, \"bowed\"");
        cmr_frame_info_set(&fr, "pitch", -2);
        ok(cmr_writer_put(w, &fr, NULL) == CMR_OK, "write tensor");
        cmr_frame_make_end(&fr, t ? "b" : "a", 1);
        ok(cmr_writer_put(w, &fr, NULL) == CMR_OK, "write end");
    }
    fclose(f);

    struct cmr_reader *rd = cmr_reader_new_mem(buf, len, "mem");
    struct cmr_error err = {0};
    int rc = cmr_reader_next(rd, &fr, &err);
    ok(rc == CMR_OK && fr.type == CMR_FRAME_HEADER && fr.version == 1 && fr.n_stages == 1 &&
           strcmp(fr.stages[0].program, "cmr-test") == 0 && fr.stages[0].n_params == 1 &&
           strcmp(fr.stages[0].params[0].val, "16000") == 0,
       "header read back");
    rc = cmr_reader_next(rd, &fr, &err);
    ok(rc == CMR_OK && fr.type == CMR_FRAME_TENSOR && strcmp(fr.kind, "mel") == 0 &&
           strcmp(fr.track, "a") == 0 && fr.ndim == 2 && fr.shape[0] == 3 && fr.shape[1] == 4 &&
           fr.offset == 100 && fr.index == 7 && fr.rate == 16000,
       "tensor fields read back");
    float want[12];
    for (int i = 0; i < 12; i++)
        want[i] = (float)i * 0.5f - 1.0f;
    check_close("tensor data", fr.data, want, 12, 0, 0);
    const char *label = cmr_frame_meta_get(&fr, "label");
    double pitch = 0;
    ok(label && strcmp(label, "cello, \"bowed\"") == 0, "meta read back");
    ok(cmr_frame_info_get(&fr, "pitch", &pitch) && pitch == -2, "info read back");
    rc = cmr_reader_next(rd, &fr, &err);
    ok(rc == CMR_OK && fr.type == CMR_FRAME_END && fr.frames == 1, "end frame read back");
    int n = 0;
    while ((rc = cmr_reader_next(rd, &fr, &err)) == CMR_OK)
        n++;
    ok(rc == CMR_EOF && n == 2, "clean end of stream after 2 more frames");
    ok(cmr_reader_frame_count(rd) == 5 && cmr_reader_byte_offset(rd) == (int64_t)len,
       "frame count and byte offset");
    cmr_reader_free(rd);

    /* every proper prefix is a truncated stream, never a crash */
    int bad = 0, clean = 0;
    for (size_t cut = 1; cut < len; cut++) {
        int frames;
        rc = read_all(buf, cut, &frames, &err);
        if (rc == CMR_EOF && clean++ < 3)
            diag("prefix %zu of %zu reads clean, %d frames", cut, len, frames);
        if (rc == CMR_EOF)
            ; /* cut right after the header or after an end frame */
        else if (rc != CMR_ETRUNCATED && bad++ < 3)
            diag("prefix %zu: %s", cut, cmr_error_text(&err, rc));
    }
    ok(bad == 0 && clean == 2, "every prefix of the stream but 2 reads as truncated (%d did not, %d clean)",
       bad, clean);
    cmr_writer_free(w);
    cmr_frame_free(&fr);
    free(buf);
}

static void test_errors(void)
{
    begin();
    expect("empty input", CMR_ENOHEADER);

    begin();
    msgpack_sbuffer_write(&sb, "\xc1", 1); /* never used byte */
    expect("not MessagePack", CMR_EPARSE);

    begin();
    msgpack_pack_array(&pk, 0);
    expect("array root", CMR_EROOT);

    begin();
    msgpack_pack_map(&pk, 1);
    s("x"), s("y");
    expect("missing t", CMR_EKEY);

    begin();
    msgpack_pack_map(&pk, 1);
    s("t");
    msgpack_pack_int(&pk, 3);
    expect("t not a string", CMR_ETYPE);

    begin();
    end("a");
    expect("no header first", CMR_ENOHEADER);

    begin();
    header(1, "XXXX");
    expect("bad magic", CMR_EMAGIC);

    begin();
    header(2, "CMRF");
    expect("newer version", CMR_EVERSION);

    begin();
    header(1, "CMRF");
    msgpack_pack_map(&pk, 1);
    s("t"), s("bogus");
    expect("unknown frame type", CMR_EFRAMETYPE);

    begin();
    header(1, "CMRF");
    tensor("a", "f64", 1, 8);
    expect("dtype f64", CMR_EDTYPE);

    begin();
    header(1, "CMRF");
    tensor("a", "f32", 2, 8);
    expect("shape 2x2 with 8 bytes", CMR_ESIZE);

    begin();
    header(1, "CMRF");
    tensor("a", "f32", (uint64_t)1 << 62, 8);
    expect("absurd declared shape", CMR_ETOOBIG);

    begin();
    header(1, "CMRF");
    tensor("a", "f32", 1, 8);
    tensor("b", "f32", 1, 8);
    expect("track b before end of a", CMR_EORDER);

    begin();
    header(1, "CMRF");
    tensor("a", "f32", 1, 8);
    expect("stream ends inside a track", CMR_ETRUNCATED);

    begin();
    header(1, "CMRF");
    tensor("a", "f32", 1, 8);
    end("a");
    header(1, "CMRF"); /* concatenated streams */
    tensor("b", "f32", 1, 8);
    end("b");
    end("c"); /* a track with no frames */
    expect("concatenated streams and an empty track", CMR_EOF);

    /* a huge bin declared but never sent: bounded buffering */
    begin();
    header(1, "CMRF");
    msgpack_pack_map(&pk, 2);
    s("t"), s("tensor"), s("data");
    msgpack_pack_bin(&pk, 10000000);
    {
        static char junk[100000];
        msgpack_pack_bin_body(&pk, junk, sizeof junk);
        struct cmr_reader *rd = cmr_reader_new_mem(sb.data, sb.size, "test");
        cmr_reader_set_max_bytes(rd, 1024);
        struct cmr_frame fr;
        cmr_frame_init(&fr);
        struct cmr_error err = {0};
        cmr_reader_next(rd, &fr, &err);
        int rc = cmr_reader_next(rd, &fr, &err);
        ok(rc == CMR_ETOOBIG, "frame above max bytes -> %s (got %s)", cmr_strerror(CMR_ETOOBIG),
           cmr_error_text(&err, rc));
        ok(strstr(err.msg, "test: frame 2") != NULL, "message names the input and the frame: %s", err.msg);
        cmr_frame_free(&fr);
        cmr_reader_free(rd);
    }

    for (int c = CMR_ELAST + 1; c <= CMR_EOF; c++)
        if (strcmp(cmr_strerror(c), "unknown error") == 0)
            ok(0, "code %d has a message", c);
    ok(1, "every error code has a message");
}

/* ---- the push-mode decoder ---- */

/* the frames of buf as the fd reader returns them, each packed again into one
 * string of bytes; returns the reader's last code (CMR_EOF or an error) */
static int packed_frames(const void *buf, size_t len, char *out, size_t cap, size_t *used)
{
    struct cmr_reader *rd = cmr_reader_new_mem(buf, len, "test");
    struct cmr_frame fr;
    int rc;
    cmr_frame_init(&fr);
    *used = 0;
    while ((rc = cmr_reader_next(rd, &fr, NULL)) == CMR_OK) {
        void *b;
        size_t n;
        if (cmr_frame_pack(&fr, &b, &n) != CMR_OK || *used + n > cap)
            abort();
        memcpy(out + *used, b, n);
        *used += n;
        free(b);
    }
    cmr_frame_free(&fr);
    cmr_reader_free(rd);
    return rc;
}

/* feeds buf to a decoder in pieces that end at the offsets cuts[0..ncuts)
 * (then the rest), taking frames after each feed; packs them as above */
static int decode_pieces(const unsigned char *buf, size_t len, const size_t *cuts, int ncuts,
                         char *out, size_t cap, size_t *used, struct cmr_error *err)
{
    struct cmr_decoder *dec = cmr_decoder_new("test");
    struct cmr_frame fr;
    size_t at = 0;
    int rc = CMR_OK;
    cmr_frame_init(&fr);
    *used = 0;
    for (int k = 0; k <= ncuts && rc >= 0; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        if ((rc = cmr_decoder_feed(dec, buf + at, to - at, err)) != CMR_OK)
            break;
        at = to;
        if (k == ncuts)
            cmr_decoder_finish(dec);
        while ((rc = cmr_decoder_next(dec, &fr, err)) == CMR_OK) {
            void *b;
            size_t n;
            if (cmr_frame_pack(&fr, &b, &n) != CMR_OK || *used + n > cap)
                abort();
            memcpy(out + *used, b, n);
            *used += n;
            free(b);
        }
    }
    cmr_frame_free(&fr);
    cmr_decoder_free(dec);
    return rc;
}

static void test_decoder_splits(void)
{
    static char want[8192], got[8192];
    size_t nwant = 0, ngot = 0;
    begin();
    header(1, "CMRF");
    tensor("a", "f32", 3, 24);
    tensor("a", "f32", 1, 8);
    end("a");
    header(1, "CMRF"); /* concatenated streams */
    tensor("b", "f32", 2, 16);
    end("b");
    const unsigned char *buf = (const unsigned char *)sb.data;
    size_t len = sb.size;
    int want_rc = packed_frames(buf, len, want, sizeof want, &nwant);
    ok(want_rc == CMR_EOF && nwant > 0, "the fd reader reads the stream (%zu bytes)", len);

    /* every split into two pieces, then into three, then byte by byte */
    int bad = 0;
    for (size_t c = 0; c <= len; c++) {
        struct cmr_error err = {0};
        int rc = decode_pieces(buf, len, &c, 1, got, sizeof got, &ngot, &err);
        if ((rc != CMR_EOF || ngot != nwant || memcmp(got, want, nwant)) && bad++ < 3)
            diag("split at %zu: %s, %zu bytes of frames", c, cmr_error_text(&err, rc), ngot);
    }
    ok(bad == 0, "every 2-piece split gives the reader's frames (%d did not)", bad);
    bad = 0;
    for (size_t c1 = 1; c1 < len; c1 += 7)
        for (size_t c2 = c1; c2 <= len; c2 += 5) {
            size_t cuts[2] = {c1, c2};
            int rc = decode_pieces(buf, len, cuts, 2, got, sizeof got, &ngot, NULL);
            if ((rc != CMR_EOF || ngot != nwant || memcmp(got, want, nwant)) && bad++ < 3)
                diag("split at %zu, %zu: code %d", c1, c2, rc);
        }
    ok(bad == 0, "3-piece splits give the reader's frames (%d did not)", bad);
    {
        static size_t cuts[8192];
        for (size_t i = 0; i < len; i++)
            cuts[i] = i;
        int rc = decode_pieces(buf, len, cuts, (int)len, got, sizeof got, &ngot, NULL);
        ok(rc == CMR_EOF && ngot == nwant && !memcmp(got, want, nwant),
           "one byte at a time gives the reader's frames");
    }

    /* every proper prefix, then finish: the reader's verdict on that prefix */
    bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        size_t half = cut / 2;
        int rr = packed_frames(buf, cut, want, sizeof want, &nwant);
        int rc = decode_pieces(buf, cut, &half, 1, got, sizeof got, &ngot, NULL);
        if ((rc != rr || ngot != nwant || memcmp(got, want, nwant)) && bad++ < 3)
            diag("prefix %zu: decoder %d, reader %d", cut, rc, rr);
    }
    ok(bad == 0, "every prefix ends as the reader ends it (truncated or clean; %d differ)", bad);

    begin();
    header(1, "CMRF");
    tensor("a", "f32", 1, 8);
    {
        struct cmr_error err = {0};
        size_t cut = sb.size - 3;
        int rc = decode_pieces((const unsigned char *)sb.data, cut, NULL, 0, got, sizeof got, &ngot,
                               &err);
        ok(rc == CMR_ETRUNCATED && strstr(err.msg, "ends inside a frame"),
           "a stream cut inside a frame -> %s", cmr_error_text(&err, rc));
        rc = decode_pieces((const unsigned char *)sb.data, sb.size, NULL, 0, got, sizeof got, &ngot,
                           &err);
        ok(rc == CMR_ETRUNCATED && strstr(err.msg, "inside track"),
           "a stream cut inside a track -> %s", cmr_error_text(&err, rc));
        rc = decode_pieces((const unsigned char *)sb.data, 0, NULL, 0, got, sizeof got, &ngot, &err);
        ok(rc == CMR_ENOHEADER, "no bytes at all -> %s", cmr_error_text(&err, rc));
    }
}

/* a bin32 data field declaring 4 GiB: refused once its length bytes are in,
 * with the bytes of the stream so far buffered, nothing more */
static void test_decoder_limit(void)
{
    begin();
    header(1, "CMRF");
    size_t head_len = sb.size;
    msgpack_pack_map(&pk, 2);
    s("t"), s("tensor"), s("data");
    msgpack_pack_bin(&pk, 0xffffffffu);
    size_t prefix = sb.size; /* the stream up to and with the 4-byte length */
    const unsigned char *buf = (const unsigned char *)sb.data;
    ok(buf[prefix - 5] == 0xc6, "the stream declares a bin32");

    struct cmr_decoder *dec = cmr_decoder_new("test");
    struct cmr_frame fr;
    struct cmr_error err = {0};
    cmr_frame_init(&fr);
    int rc = cmr_decoder_feed(dec, buf, prefix - 1, &err);
    ok(rc == CMR_OK, "feed all but the last length byte");
    rc = cmr_decoder_next(dec, &fr, &err);
    ok(rc == CMR_OK && fr.type == CMR_FRAME_HEADER, "the header comes out");
    rc = cmr_decoder_next(dec, &fr, &err);
    ok(rc == CMR_DECODER_MORE, "then the decoder waits for more bytes (got %d)", rc);
    ok(cmr_decoder_buffered(dec) == prefix - 1 - head_len, "it holds the %zu bytes of the frame",
       prefix - 1 - head_len);
    cmr_decoder_feed(dec, buf + prefix - 1, 1, &err);
    rc = cmr_decoder_next(dec, &fr, &err);
    ok(rc == CMR_ETOOBIG, "the last length byte makes it refuse the frame -> %s",
       cmr_error_text(&err, rc));
    ok(strstr(err.msg, "test: frame 2") && strstr(err.msg, "declared length or count above the limit"),
       "with the reader's message: %s", err.msg);
    static char zeros[4096];
    rc = cmr_decoder_feed(dec, zeros, sizeof zeros, &err);
    ok(rc == CMR_ETOOBIG && cmr_decoder_buffered(dec) < 100,
       "bytes fed after the error are refused, not buffered (%zu held)", cmr_decoder_buffered(dec));
    rc = cmr_decoder_next(dec, &fr, &err);
    ok(rc == CMR_ETOOBIG, "and the error stays");
    cmr_decoder_free(dec);

    /* a lower limit applies the same way */
    begin();
    header(1, "CMRF");
    tensor("a", "f32", 8, 64);
    end("a");
    dec = cmr_decoder_new("test");
    cmr_decoder_set_max_bytes(dec, 32);
    cmr_decoder_feed(dec, sb.data, sb.size, &err);
    while ((rc = cmr_decoder_next(dec, &fr, &err)) == CMR_OK)
        ;
    ok(rc == CMR_ETOOBIG, "a 64-byte frame with max bytes 32 -> %s", cmr_error_text(&err, rc));
    cmr_decoder_free(dec);
    cmr_frame_free(&fr);
}

/* an "audio" tensor frame: shape [n0, n1] with `bytes` of data (value v), rate */
static void audio(const char *track, uint64_t n0, uint64_t n1, size_t bytes, float v, double rate)
{
    static float buf[512];
    if (bytes > sizeof buf) {
        printf("Bail out! audio(): %zu bytes of data, at most %zu\n", bytes, sizeof buf);
        exit(99);
    }
    for (int i = 0; i < 512; i++)
        buf[i] = v;
    msgpack_pack_map(&pk, 7);
    s("t"), s("tensor"), s("kind"), s("audio"), s("track"), s(track), s("dtype"), s("f32");
    s("rate");
    msgpack_pack_double(&pk, rate);
    s("shape");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, n0);
    msgpack_pack_uint64(&pk, n1);
    s("data");
    msgpack_pack_bin(&pk, bytes);
    msgpack_pack_bin_body(&pk, buf, bytes);
}

/* the first error's code and message, as expect() but returning the message */
static int first_error(struct cmr_error *err)
{
    int n;
    memset(err, 0, sizeof *err);
    return read_all(sb.data, sb.size, &n, err);
}

/* issue 11: rates, shapes and values every consumer can rely on */
static void test_frame_rules(void)
{
    struct cmr_error err;
    int rc;

    /* A, B: an audio frame at 0.01 Hz made cmr-resample crash, hang or take GBs */
    double bad_rates[] = {0.01, 1e-300, 999.9, 768000.5, -5, 1e9};
    for (size_t i = 0; i < sizeof bad_rates / sizeof *bad_rates; i++) {
        begin();
        header(1, "CMRF");
        audio("a", 4, 1, 16, 0.5f, bad_rates[i]);
        end("a");
        rc = first_error(&err);
        ok(rc == CMR_EUNSUPPORTED && strstr(err.msg, "outside the supported range 1000..768000 Hz"),
           "audio at %g Hz refused: %s", bad_rates[i], err.msg);
    }
    begin();
    header(1, "CMRF");
    audio("a", 4, 1, 16, 0.5f, 0);
    end("a");
    rc = first_error(&err);
    ok(rc == CMR_EUNSUPPORTED && strstr(err.msg, "no sample rate"), "audio without a rate: %s", err.msg);
    double good_rates[] = {1000, 16000, 44100, 768000};
    for (size_t i = 0; i < sizeof good_rates / sizeof *good_rates; i++) {
        begin();
        header(1, "CMRF");
        audio("a", 4, 2, 32, 0.5f, good_rates[i]);
        end("a");
        expect("audio at a supported rate", CMR_EOF);
    }

    /* shapes: [10, 0] said "got 2 dims"; zero dims are refused for every kind */
    begin();
    header(1, "CMRF");
    audio("a", 10, 0, 0, 0, 16000);
    end("a");
    rc = first_error(&err);
    ok(rc == CMR_ESHAPE && strstr(err.msg, "shape[1] should be an integer >= 1"), "audio [10, 0]: %s", err.msg);
    begin();
    header(1, "CMRF");
    tensor("a", "f32", 0, 0);
    end("a");
    expect("mel [0, 2]", CMR_ESHAPE);
    begin();
    header(1, "CMRF");
    audio("a", 1, 300, 1200, 0, 16000);
    end("a");
    rc = first_error(&err);
    ok(rc == CMR_ESHAPE && strstr(err.msg, "300 channels, the limit is 256"), "audio with 300 channels: %s",
       err.msg);

    /* values: a non-finite sample is refused with its position and time */
    begin();
    header(1, "CMRF");
    audio("a", 4, 1, 16, INFINITY, 16000);
    end("a");
    rc = first_error(&err);
    ok(rc == CMR_ENAN && strstr(err.msg, "track \"a\": audio frame 0: sample 0 (channel 0, 0.000000 s into the "
                                          "track) is infinite"), "infinite sample: %s", err.msg);

    /* the writer refuses what the reader would refuse */
    struct cmr_frame fr;
    cmr_frame_init(&fr);
    int64_t shape[2] = {4, 1};
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    FILE *f = fmemopen(NULL, 1 << 16, "w");
    struct cmr_writer *w = cmr_writer_new(f);
    cmr_frame_make_tensor(&fr, "audio", "a", 2, shape);
    for (int i = 0; i < 4; i++)
        fr.data[i] = 0;
    fr.rate = 0.01;
    rc = cmr_writer_put(w, &fr, &err);
    ok(rc == CMR_EUNSUPPORTED, "writer refuses audio at 0.01 Hz: %s", err.msg);
    fr.rate = 16000;
    fr.shape[1] = 0;
    rc = cmr_writer_put(w, &fr, &err);
    ok(rc == CMR_ESHAPE, "writer refuses shape [4, 0]: %s", err.msg);
    fr.shape[1] = 1;
    fr.data[2] = NAN;
    fr.offset = 16000;
    rc = cmr_writer_put(w, &fr, &err);
    ok(rc == CMR_ENAN && strstr(err.msg, "sample 16002 (channel 0, 1.000125 s"), "writer refuses NaN: %s", err.msg);
    fr.data[2] = 0;
    ok(cmr_writer_put(w, &fr, &err) == CMR_OK, "a sane audio frame is written");
    cmr_writer_free(w);
    fclose(f);
    msgpack_sbuffer_destroy(&out);
    cmr_frame_free(&fr);
}

/* issue 11 I: every frame string is valid UTF-8 */
static void test_utf8(void)
{
    struct cmr_error err;
    size_t bad = 99;
    const char *good = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e";
    ok(cmr_utf8_valid("", 0, &bad) && cmr_utf8_valid(good, strlen(good), &bad),
       "UTF-8: ASCII, 2, 3 and 4 byte forms are valid");
    const char *invalid[] = {"\xff\xfe", "caf\xe9", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
                             "\x80"};
    size_t at[] = {0, 3, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
        ok(!cmr_utf8_valid(invalid[i], strlen(invalid[i]), &bad) && bad == at[i],
           "UTF-8: invalid case %zu found at %zu", i, bad);

    begin();
    header(1, "CMRF");
    tensor("\xff\xfe", "f32", 1, 8);
    end("\xff\xfe");
    int rc = first_error(&err);
    ok(rc == CMR_ETYPE && strstr(err.msg, "track is not valid UTF-8 (byte 0xff at offset 0)"),
       "reader refuses a track \\xff\\xfe: %s", err.msg);
    begin();
    header(1, "CMRF");
    tensor("caf\xc3\xa9", "f32", 1, 8);
    end("caf\xc3\xa9");
    expect("a UTF-8 track is read", CMR_EOF);

    struct cmr_frame fr;
    cmr_frame_init(&fr);
    FILE *f = fmemopen(NULL, 1 << 16, "w");
    struct cmr_writer *w = cmr_writer_new(f);
    cmr_frame_make_end(&fr, "caf\xe9", 0);
    rc = cmr_writer_put(w, &fr, &err);
    ok(rc == CMR_ETYPE && strstr(err.msg, "not valid UTF-8"), "writer refuses a track caf\\xe9: %s", err.msg);
    cmr_frame_make_end(&fr, "ok", 0);
    cmr_frame_meta_set(&fr, "label", "\xff");
    int64_t one = 1;
    cmr_frame_make_tensor(&fr, "mel", "ok", 1, &one);
    fr.data[0] = 0;
    rc = cmr_writer_put(w, &fr, &err);
    ok(rc == CMR_ETYPE, "writer refuses metadata \\xff: %s", err.msg);
    cmr_frame_free(&fr);
    cmr_frame_make_end(&fr, "ok", 0);
    cmr_frame_set_error(&fr, "cannot open caf\xe9.wav");
    ok(strcmp(fr.error, "cannot open caf?.wav") == 0 && cmr_writer_put(w, &fr, &err) == CMR_OK,
       "an end frame's error text has its invalid bytes replaced: %s", fr.error);
    cmr_frame_free(&fr);
    cmr_frame_make_header(&fr, "test");
    cmr_frame_stage_param(&fr, "k", "1");
    cmr_frame_stage_param(&fr, "k", "2");
    ok(fr.stages[0].n_params == 1 && strcmp(fr.stages[0].params[0].val, "2") == 0,
       "a parameter given twice replaces its value (no key twice)");
    cmr_writer_free(w);
    fclose(f);
    cmr_frame_free(&fr);
}

/* issue 11: a map with a key twice is refused */
static void test_duplicate_keys(void)
{
    struct cmr_error err;
    begin();
    header(1, "CMRF");
    msgpack_pack_map(&pk, 3);
    s("t"), s("end"), s("track"), s("a"), s("track"), s("b");
    int rc = first_error(&err);
    ok(rc == CMR_EKEY && strstr(err.msg, "the frame has the key \"track\" twice"), "root key twice: %s", err.msg);

    begin();
    header(1, "CMRF");
    msgpack_pack_map(&pk, 7);
    s("t"), s("tensor"), s("kind"), s("mel"), s("track"), s("a"), s("dtype"), s("f32");
    s("shape");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 1);
    s("data");
    msgpack_pack_bin(&pk, 4);
    msgpack_pack_bin_body(&pk, "\0\0\0\0", 4);
    s("meta");
    msgpack_pack_map(&pk, 40); /* above the small-map path */
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i == 39 ? 7 : i);
        s(k), s("v");
    }
    end("a");
    rc = first_error(&err);
    ok(rc == CMR_EKEY && strstr(err.msg, "meta has the key \"k7\" twice"), "meta key twice: %s", err.msg);

    begin();
    header(1, "CMRF");
    msgpack_pack_map(&pk, 2);
    s("t"), s("end");
    s("t"), s("end");
    rc = first_error(&err);
    ok(rc == CMR_EKEY, "\"t\" twice: %s", err.msg);
}

int main(void)
{
    tap_plan_none();
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    test_round_trip();
    test_errors();
    test_decoder_splits();
    test_decoder_limit();
    test_frame_rules();
    test_utf8();
    test_duplicate_keys();
    msgpack_sbuffer_destroy(&sb);
    return tap_done();
}
