/* lib/safetensors: round trip, dtype conversion, and the strict header parser
 * against malformed headers (every one must fail cleanly, none may crash). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tap.h"
#include "safetensors.h"

/* a file image: 8-byte length, header, data */
static unsigned char *image(const char *header, const void *data, size_t dlen, size_t *len)
{
    size_t h = strlen(header);
    unsigned char *b = malloc(8 + h + dlen + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    if (dlen)
        memcpy(b + 8 + h, data, dlen);
    *len = 8 + h + dlen;
    return b;
}

static int parse(const char *header, const void *data, size_t dlen, struct cmr_safetensors **st,
                 struct cmr_error *err)
{
    size_t len;
    unsigned char *b = image(header, data, dlen, &len);
    int rc = cmr_safetensors_parse(b, len, "t", st, err);
    free(b);
    return rc;
}

static void test_roundtrip(void)
{
    char dir[] = "/tmp/cmr-st-XXXXXX", path[256];
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        exit(99);
    }
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    float a[6] = {1, -2, 3.5f, 4, 5, 6}, s = 7, e = 0;
    int64_t sa[2] = {2, 3}, se[1] = {0};
    struct cmr_safetensors_out t[3] = {{"w \"quoted\"", 2, sa, a}, {"scalar", 0, NULL, &s}, {"empty", 1, se, &e}};
    struct cmr_safetensors_kv meta[2] = {{"cmr.kind", "encoder"}, {"note", "caf\xc3\xa9\n\"x\""}};
    struct cmr_error err = {0};
    ok(cmr_safetensors_write(path, t, 3, meta, 2, &err) == CMR_OK, "write: %s", err.msg);
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    ok(f && fread(len8, 1, 8, f) == 8 && len8[0] % 8 == 0, "header length is a multiple of 8");
    if (f)
        fclose(f);
    struct cmr_safetensors *st = NULL;
    ok(cmr_safetensors_read(path, &st, &err) == CMR_OK, "read back: %s", err.msg);
    if (!st)
        return;
    ok(st->n_tensors == 3 && !strcmp(st->tensors[0].name, "w \"quoted\"") &&
           !strcmp(st->tensors[1].name, "scalar") && !strcmp(st->tensors[2].name, "empty"),
       "names and order kept (escaped quotes)");
    const struct cmr_safetensors_tensor *w = cmr_safetensors_find(st, "w \"quoted\"");
    float got[6];
    cmr_safetensors_get(st, w, got);
    ok(w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && !memcmp(got, a, sizeof a), "values and shape");
    const struct cmr_safetensors_tensor *sc = cmr_safetensors_find(st, "scalar");
    cmr_safetensors_get(st, sc, got);
    ok(sc->ndim == 0 && cmr_safetensors_numel(sc) == 1 && got[0] == 7, "a scalar has shape []");
    ok(cmr_safetensors_numel(cmr_safetensors_find(st, "empty")) == 0, "an empty tensor");
    ok(!strcmp(cmr_safetensors_meta(st, "note"), "caf\xc3\xa9\n\"x\"") &&
           !strcmp(cmr_safetensors_meta(st, "cmr.kind"), "encoder") && !cmr_safetensors_meta(st, "nope"),
       "metadata strings with UTF-8, newline and quotes");
    cmr_safetensors_free(st);
    /* nothing left beside the file */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    ok(system(cmd) == 0, "no temporary file left in the directory");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
    ok(cmr_safetensors_write("/nonexistent-dir/x.safetensors", t, 1, NULL, 0, &err) == CMR_EIO,
       "write into a missing directory: %s", err.msg);
}

static void test_dtypes(void)
{
    struct cmr_safetensors *st = NULL;
    struct cmr_error err = {0};
    /* F16 1.5, -2, 65504, 2^-24; BF16 1.0, -3.0; I64 -5, 3; F64 0.25; I32 -7 */
    uint16_t h[4] = {0x3e00, 0xc000, 0x7bff, 0x0001}, bf[2] = {0x3f80, 0xc040};
    int64_t i64[2] = {-5, 3};
    double f64 = 0.25;
    int32_t i32 = -7;
    unsigned char data[8 + 4 + 16 + 8 + 4];
    memcpy(data, h, 8);
    memcpy(data + 8, bf, 4);
    memcpy(data + 12, i64, 16);
    memcpy(data + 28, &f64, 8);
    memcpy(data + 36, &i32, 4);
    const char *hdr = "{ \"h\" : {\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},\n"
                      "\"b\":{\"shape\":[2],\"dtype\":\"BF16\",\"data_offsets\":[8,12]},"
                      "\"i\":{\"dtype\":\"I64\",\"shape\":[2,1],\"data_offsets\":[12,28]},"
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[28,36]},"
                      "\"j\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[36,40]}, "
                      "\"__metadata__\":{\"k\\u00e9\\ud83c\\udfb5\":\"v\\/\\t\"}}";
    ok(parse(hdr, data, sizeof data, &st, &err) == CMR_OK, "dtypes F16 BF16 I64 F64 I32: %s", err.msg);
    if (!st)
        return;
    float v[4];
    cmr_safetensors_get(st, cmr_safetensors_find(st, "h"), v);
    ok(v[0] == 1.5f && v[1] == -2 && v[2] == 65504 && v[3] == 0x1p-24f, "F16 converts (incl. subnormal)");
    cmr_safetensors_get(st, cmr_safetensors_find(st, "b"), v);
    ok(v[0] == 1 && v[1] == -3, "BF16 converts");
    cmr_safetensors_get(st, cmr_safetensors_find(st, "i"), v);
    ok(v[0] == -5 && v[1] == 3, "I64 converts");
    cmr_safetensors_get(st, cmr_safetensors_find(st, "d"), v);
    ok(v[0] == 0.25f, "F64 converts");
    cmr_safetensors_get(st, cmr_safetensors_find(st, "j"), v);
    ok(v[0] == -7, "I32 converts");
    ok(cmr_safetensors_meta(st, "k\xc3\xa9\xf0\x9f\x8e\xb5") &&
           !strcmp(cmr_safetensors_meta(st, "k\xc3\xa9\xf0\x9f\x8e\xb5"), "v/\t"),
       "\\u escapes and surrogate pairs decode to UTF-8");
    cmr_safetensors_free(st);
}

static void test_bad(void)
{
    static const struct {
        const char *header;
        size_t dlen;
        int code;
        const char *what;
    } cases[] = {
        {"", 0, CMR_EFORMAT, "empty header"},
        {"[]", 0, CMR_EFORMAT, "header is not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, CMR_EFORMAT, "trailing comma"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "leading zero"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "negative dim"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "fractional dim"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, CMR_EFORMAT, "duplicate tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, CMR_EFORMAT, "unknown key"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "repeated key"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, CMR_EFORMAT, "no data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, CMR_EFORMAT, "offsets disagree with shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 8, CMR_EFORMAT, "reversed offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, CMR_EFORMAT, "overlapping tensors"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, CMR_ETRUNCATED, "data truncated"},
        {"{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 4, CMR_EDTYPE, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "rank 9"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "huge dim"},
        {"{\"a\\x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "bad escape"},
        {"{\"a\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "unpaired surrogate"},
        {"{\"a\\u0000\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "\\u0000 in a name"},
        {"{\"a\n\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, CMR_EFORMAT, "raw control character"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]", 4, CMR_EFORMAT, "unterminated object"},
        {"{\"a", 0, CMR_EFORMAT, "unterminated string"},
        {"{\"__metadata__\":{\"k\":1}}", 0, CMR_EFORMAT, "metadata value not a string"},
        {"{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, CMR_EFORMAT, "nested metadata"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, CMR_EFORMAT, "duplicate __metadata__"},
        {"{} x", 0, CMR_EFORMAT, "garbage after the object"},
        {"{\"a\":[1]}", 4, CMR_EFORMAT, "tensor entry not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmr_safetensors *st = NULL;
        struct cmr_error err = {0};
        unsigned char zeros[16] = {0};
        int rc = parse(cases[i].header, zeros, cases[i].dlen, &st, &err);
        ok(rc == cases[i].code && !st && err.msg[0], "rejects %s (%s)", cases[i].what, err.msg);
    }
    /* header length fields out of range */
    struct cmr_safetensors *st = NULL;
    struct cmr_error err = {0};
    unsigned char b[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    ok(cmr_safetensors_parse(b, 10, "t", &st, &err) == CMR_EFORMAT, "rejects a header length over the limit: %s", err.msg);
    unsigned char c2[10] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    ok(cmr_safetensors_parse(c2, 10, "t", &st, &err) == CMR_ETRUNCATED, "rejects a header longer than the file: %s", err.msg);
    ok(cmr_safetensors_parse(b, 5, "t", &st, &err) == CMR_ETRUNCATED, "rejects a 5-byte file: %s", err.msg);
    ok(cmr_safetensors_read("/nonexistent.safetensors", &st, &err) == CMR_EIO, "a missing file: %s", err.msg);
}

/* every truncation and single-byte change of a valid image fails cleanly or parses */
static void test_fuzz(void)
{
    const char *hdr = "{\"__metadata__\":{\"a\":\"b\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    float d[2] = {1, 2};
    size_t len;
    unsigned char *b = image(hdr, d, sizeof d, &len);
    int crashes = 0, parsed = 0;
    for (size_t cut = 0; cut < len; cut++) {
        struct cmr_safetensors *st = NULL;
        if (cmr_safetensors_parse(b, cut, "t", &st, NULL) == CMR_OK)
            parsed++;
        cmr_safetensors_free(st);
    }
    ok(parsed == 0, "no truncation of a valid file parses (%zu cuts)", len);
    unsigned char *c = malloc(len);
    static const unsigned char subst[] = {0, '"', '\\', '{', '}', '[', ']', ',', ':', '9', 0xff, ' '};
    for (size_t i = 8; i < len; i++)
        for (size_t k = 0; k < sizeof subst; k++) {
            struct cmr_safetensors *st = NULL;
            memcpy(c, b, len);
            c[i] = subst[k];
            if (cmr_safetensors_parse(c, len, "t", &st, NULL) == CMR_OK && !st)
                crashes++;
            cmr_safetensors_free(st);
        }
    ok(crashes == 0, "single-byte changes never crash or return OK without a result");
    free(c);
    free(b);
}

int main(void)
{
    tap_plan_none();
    test_roundtrip();
    test_dtypes();
    test_bad();
    test_fuzz();
    return tap_done();
}
