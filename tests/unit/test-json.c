/* lib/util/json.c: the strict grammar, strings and escapes, numbers, nesting
 * bound, container walking and the two message styles. */
#include <string.h>

#include "tap.h"
#include "util/json.h"

/* cmr_json_skip + cmr_json_end take text; on failure err is filled */
static int doc(const char *text, size_t len, struct cmr_error *err)
{
    struct cmr_json j;
    cmr_json_init(&j, text, len, "t.json", CMR_JSON_AT_LINE, 0, err);
    int rc = cmr_json_skip(&j);
    return rc ? rc : cmr_json_end(&j);
}

static int valid(const char *text) { struct cmr_error e = {0}; return doc(text, strlen(text), &e) == CMR_OK; }

/* refused, with a message ending in want */
static int refused(const char *text, size_t len, const char *want)
{
    struct cmr_error e = {0};
    int rc = doc(text, len, &e);
    size_t n = strlen(e.msg), m = strlen(want);
    if (rc != CMR_EFORMAT || n < m || strcmp(e.msg + n - m, want)) {
        diag("'%.40s': rc %d, message '%s', want '...%s'", text, rc, e.msg, want);
        return 0;
    }
    return 1;
}

/* the string literal lit decodes to want */
static int string_is(const char *lit, const char *want, size_t want_len)
{
    struct cmr_error e = {0};
    struct cmr_json j;
    char *s = NULL;
    size_t n = 0;
    cmr_json_init(&j, lit, strlen(lit), "t.json", CMR_JSON_AT_LINE, 0, &e);
    int rc = cmr_json_string(&j, &s, &n);
    int good = rc == CMR_OK && n == want_len && !memcmp(s, want, n) && s[n] == 0;
    if (!good)
        diag("%s: rc %d (%s), %zu bytes", lit, rc, e.msg, n);
    free(s);
    return good;
}

int main(void)
{
    tap_plan_none();
    ok(valid(" {\"a\": [1, -2.5e-3, 0, 1E+2, true, false, null, \"x\"], \"b\": {}} "), "a document");
    ok(valid("[]") && valid("{}") && valid("\"\"") && valid("0") && valid("-0.0"), "small values");
    ok(refused("[1,]", 4, "t.json:1: malformed JSON: expected a value"), "no trailing comma");
    ok(refused("{\"a\":1,}", 8, "expected '\"'"), "no trailing comma in an object");
    ok(refused("[1 2]", 5, "expected ']'"), "missing comma");
    ok(refused("[01]", 4, "leading zero in a number"), "no leading zeros");
    ok(refused("+1", 2, "expected a value"), "no '+'");
    ok(refused("1.", 2, "bad number") && refused(".5", 2, "expected a value") &&
       refused("1e", 2, "bad number") && refused("-", 1, "bad number"), "incomplete numbers");
    ok(refused("tru", 3, "bad literal") && refused("nul", 3, "bad literal"), "bad literals");
    ok(refused("[1] x", 5, "trailing characters after the JSON value"), "trailing text");
    ok(refused("// c\n1", 6, "expected a value"), "no comments");
    ok(refused("", 0, "expected a value"), "empty text");
    ok(refused("[\n\n\"a\"\n\"b\"]", 11, "t.json:4: malformed JSON: expected ']'"), "line numbers");

    /* strings */
    ok(string_is("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "a\"\\/\b\f\n\r\t", 9), "the simple escapes");
    ok(string_is("\"\\u00e9\\u20ac\"", "\xc3\xa9\xe2\x82\xac", 5), "\\u escapes to UTF-8");
    ok(string_is("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4), "a surrogate pair");
    ok(string_is("\"\xc3\xa9\xf0\x9f\x98\x80\"", "\xc3\xa9\xf0\x9f\x98\x80", 6), "raw UTF-8 passes");
    ok(refused("\"\\ud83d\"", 8, "unpaired surrogate in string"), "a lone high surrogate");
    ok(refused("\"\\ud83d\\u0041\"", 14, "unpaired surrogate in string"), "a high surrogate and no low one");
    ok(refused("\"\\ude00\"", 8, "unpaired surrogate in string"), "a lone low surrogate");
    ok(refused("\"\\u0000\"", 8, "NUL character in string"), "\\u0000");
    ok(refused("\"\\u12zz\"", 8, "bad \\u escape") && refused("\"\\u1", 4, "truncated \\u escape"),
       "short \\u escapes");
    ok(refused("\"\\x\"", 4, "bad escape in string"), "unknown escape");
    ok(refused("\"a\nb\"", 5, "control character in string"), "raw control characters");
    ok(refused("\"abc", 4, "unterminated string"), "unterminated");
    ok(refused("\"\xff\"", 3, "invalid UTF-8 in string") && refused("\"\xc3\"", 3, "invalid UTF-8 in string") &&
       refused("\"\xc0\xaf\"", 4, "invalid UTF-8 in string") &&
       refused("\"\xed\xa0\x80\"", 5, "invalid UTF-8 in string") &&
       refused("\"\xf4\x90\x80\x80\"", 6, "invalid UTF-8 in string"),
       "invalid UTF-8: stray byte, truncated, overlong, surrogate, above U+10FFFF");

    /* nesting: CMR_JSON_MAX_DEPTH arrays are fine, one more is not */
    char deep[2 * CMR_JSON_MAX_DEPTH + 4];
    int d = CMR_JSON_MAX_DEPTH;
    memset(deep, '[', (size_t)d);
    memset(deep + d, ']', (size_t)d);
    deep[2 * d] = 0;
    ok(valid(deep), "%d nested arrays", d);
    memset(deep, '[', (size_t)d + 1);
    memset(deep + d + 1, ']', (size_t)d + 1);
    deep[2 * d + 2] = 0;
    ok(refused(deep, strlen(deep), "nested too deeply"), "%d nested arrays are refused", d + 1);

    /* walking: begin / next / uint / number, byte-style messages */
    struct cmr_error e = {0};
    struct cmr_json j;
    const char *t = "{\"n\": [3, 9007199254740991], \"x\": -1.5, \"s\": \"v\"}";
    cmr_json_init(&j, t, strlen(t), "h.st", CMR_JSON_AT_BYTE, 8, &e);
    int more, more_a, rc = cmr_json_begin(&j, '{', &more), n_keys = 0;
    uint64_t u[2] = {0};
    double x = 0;
    while (!rc && more) {
        char *k = NULL;
        rc = cmr_json_string(&j, &k, NULL);
        rc = rc ? rc : cmr_json_expect(&j, ':');
        if (!rc && !strcmp(k, "n")) {
            int i = 0;
            rc = cmr_json_begin(&j, '[', &more_a);
            while (!rc && more_a && i < 2)
                if (!(rc = cmr_json_uint(&j, &u[i++])))
                    rc = cmr_json_next(&j, ']', &more_a);
        } else if (!rc && !strcmp(k, "x")) {
            rc = cmr_json_number(&j, &x);
        } else if (!rc) {
            rc = cmr_json_skip(&j);
        }
        free(k);
        n_keys++;
        rc = rc ? rc : cmr_json_next(&j, '}', &more);
    }
    rc = rc ? rc : cmr_json_end(&j);
    ok(rc == CMR_OK && n_keys == 3 && u[0] == 3 && u[1] == 9007199254740991ULL && x == -1.5 && j.depth == 0,
       "walk an object: rc %d, %d keys", rc, n_keys);

    const char *big = "[9007199254740992]";
    cmr_json_init(&j, big, strlen(big), "h.st", CMR_JSON_AT_BYTE, 8, &e);
    j.context = "safetensors header";
    rc = cmr_json_begin(&j, '[', &more);
    rc = rc ? rc : cmr_json_uint(&j, &u[0]);
    ok(rc == CMR_EFORMAT && !strcmp(e.msg, "h.st: safetensors header: integer too large at byte 24"),
       "2^53 is too large; byte-style message: %s", e.msg);
    const char *fr = "[1.5]";
    cmr_json_init(&j, fr, strlen(fr), "h.st", CMR_JSON_AT_BYTE, 0, &e);
    rc = cmr_json_begin(&j, '[', &more);
    rc = rc ? rc : cmr_json_uint(&j, &u[0]);
    ok(rc == CMR_EFORMAT && strstr(e.msg, "expected an integer"), "uint refuses a fraction");
    return tap_done();
}
