/* lib/frame.c: round trips and one test per reader error code. */
#include "frame.h"
#include "tap.h"

#include <msgpack.h>
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

int main(void)
{
    tap_plan_none();
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    test_round_trip();
    test_errors();
    msgpack_sbuffer_destroy(&sb);
    return tap_done();
}
