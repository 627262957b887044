/* libFuzzer target for the JSON reader (lib/util/json.c: the safetensors
 * header, cmr-manifest's AOTM-2011 playlists): any bytes in, values or a
 * clean error out, never a crash, a leak, deep recursion or unbounded memory.
 * Each input is read twice: as any JSON document (cmr_json_skip), and walked
 * as the AOTM schema walks it (arrays of objects whose values are strings,
 * numbers, arrays of arrays of strings, or anything). Strings must come back
 * as valid UTF-8 without NUL, and the walk must not take a document the
 * first reading refuses. `make fuzz`. */
#include "util/json.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* aborts unless s[0..n) is valid UTF-8 without NUL */
static void check_utf8(const char *s, size_t n)
{
    if (strlen(s) != n)
        abort();
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!k || i + k > n)
            abort();
        uint32_t cp = k == 1 ? c : c & (0x7f >> k);
        for (size_t m = 1; m < k; m++) {
            if ((p[i + m] & 0xc0) != 0x80)
                abort();
            cp = cp << 6 | (p[i + m] & 0x3f);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
            abort();
        i += k;
    }
}

static int str(struct cmr_json *j)
{
    char *s;
    size_t n;
    int rc = cmr_json_string(j, &s, &n);
    if (rc == CMR_OK) {
        check_utf8(s, n);
        free(s);
    }
    return rc;
}

static int walk(struct cmr_json *j)
{
    int rc, more, more_o, more_l, more_t;
    if ((rc = cmr_json_begin(j, '[', &more)))
        return rc;
    while (more) {
        if ((rc = cmr_json_begin(j, '{', &more_o)))
            return rc;
        while (more_o) {
            if ((rc = str(j)) || (rc = cmr_json_expect(j, ':')))
                return rc;
            char c = cmr_json_peek(j);
            if (c == '"') {
                rc = str(j);
            } else if (c == '[') {
                if ((rc = cmr_json_begin(j, '[', &more_l)))
                    return rc;
                while (more_l) {
                    if ((rc = cmr_json_begin(j, '[', &more_t)))
                        return rc;
                    while (more_t)
                        if ((rc = str(j)) || (rc = cmr_json_next(j, ']', &more_t)))
                            return rc;
                    if ((rc = cmr_json_next(j, ']', &more_l)))
                        return rc;
                }
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                char *t;
                if ((rc = cmr_json_number_text(j, &t)) == CMR_OK)
                    free(t);
            } else {
                rc = cmr_json_skip(j);
            }
            if (rc || (rc = cmr_json_next(j, '}', &more_o)))
                return rc;
        }
        if ((rc = cmr_json_next(j, ']', &more)))
            return rc;
    }
    return cmr_json_end(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmr_error err = {0};
    struct cmr_json j;
    cmr_json_init(&j, (const char *)data, size, "fuzz.json", CMR_JSON_AT_LINE, 0, &err);
    int rc = cmr_json_skip(&j);
    if (rc == CMR_OK)
        rc = cmr_json_end(&j);
    if (rc != CMR_OK && (rc != CMR_EFORMAT || !err.msg[0]))
        if (rc != CMR_ENOMEM)
            abort();
    int any_ok = rc == CMR_OK;

    cmr_json_init(&j, (const char *)data, size, "fuzz.json", CMR_JSON_AT_BYTE, 8, &err);
    j.context = "walk";
    rc = walk(&j);
    if (rc == CMR_OK && !any_ok)
        abort(); /* the walk took a document the grammar refuses */
    if (rc == CMR_OK && j.depth != 0)
        abort();
    return 0;
}
