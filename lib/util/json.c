/* A strict JSON reader; see json.h. */
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cmr_json_init(struct cmr_json *j, const char *s, size_t n, const char *name,
                   enum cmr_json_where where, size_t base, struct cmr_error *err)
{
    memset(j, 0, sizeof *j);
    j->s = s;
    j->n = n;
    j->name = name ? name : "JSON";
    j->context = "malformed JSON";
    j->where = where;
    j->base = base;
    j->err = err;
}

int cmr_json_fail(struct cmr_json *j, const char *what)
{
    size_t at = j->i < j->n ? j->i : j->n;
    if (j->where == CMR_JSON_AT_BYTE)
        return cmr_error_set(j->err, CMR_EFORMAT, "%s: %s: %s at byte %zu", j->name, j->context, what,
                             j->base + at);
    long line = 1;
    for (size_t k = 0; k < at; k++)
        line += j->s[k] == '\n';
    return cmr_error_set(j->err, CMR_EFORMAT, "%s:%ld: %s: %s", j->name, line, j->context, what);
}

static int nomem(struct cmr_json *j)
{
    return cmr_error_set(j->err, CMR_ENOMEM, "%s: out of memory", j->name);
}

static void ws(struct cmr_json *j)
{
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
                           j->s[j->i] == '\r'))
        j->i++;
}

char cmr_json_peek(struct cmr_json *j)
{
    ws(j);
    return j->i < j->n ? j->s[j->i] : 0;
}

int cmr_json_expect(struct cmr_json *j, char c)
{
    if (cmr_json_peek(j) != c || j->i >= j->n) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return cmr_json_fail(j, msg);
    }
    j->i++;
    return CMR_OK;
}

int cmr_json_begin(struct cmr_json *j, char open, int *more)
{
    int rc = cmr_json_expect(j, open);
    if (rc)
        return rc;
    if (j->depth >= CMR_JSON_MAX_DEPTH) {
        j->i--;
        return cmr_json_fail(j, "nested too deeply");
    }
    if (cmr_json_peek(j) == (open == '[' ? ']' : '}')) {
        j->i++;
        *more = 0;
        return CMR_OK;
    }
    j->depth++;
    *more = 1;
    return CMR_OK;
}

int cmr_json_next(struct cmr_json *j, char close, int *more)
{
    char c = cmr_json_peek(j);
    if (c == ',' && j->i < j->n) {
        j->i++;
        *more = 1;
        return CMR_OK;
    }
    int rc = cmr_json_expect(j, close);
    if (rc)
        return rc;
    j->depth--;
    *more = 0;
    return CMR_OK;
}

/* ---- strings ---- */

struct sbuf {
    char *p;
    size_t n, cap;
};

static int sb_room(struct sbuf *b, size_t k)
{
    if (b->n + k + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->n + k + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int hex4(struct cmr_json *j, unsigned *u)
{
    if (j->n - j->i < 4)
        return cmr_json_fail(j, "truncated \\u escape");
    *u = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(j->s[j->i + k]);
        if (h < 0)
            return cmr_json_fail(j, "bad \\u escape");
        *u = *u << 4 | (unsigned)h;
    }
    j->i += 4;
    return CMR_OK;
}

/* the length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80),
 * 0 if it is not one (RFC 3629: no overlong forms, surrogates or > U+10FFFF) */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (avail < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xbf)
            return 0;
    return len;
}

static void put_utf8(struct sbuf *b, unsigned cp)
{
    if (cp < 0x80) {
        b->p[b->n++] = (char)cp;
    } else if (cp < 0x800) {
        b->p[b->n++] = (char)(0xc0 | cp >> 6);
        b->p[b->n++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        b->p[b->n++] = (char)(0xe0 | cp >> 12);
        b->p[b->n++] = (char)(0x80 | (cp >> 6 & 0x3f));
        b->p[b->n++] = (char)(0x80 | (cp & 0x3f));
    } else {
        b->p[b->n++] = (char)(0xf0 | cp >> 18);
        b->p[b->n++] = (char)(0x80 | (cp >> 12 & 0x3f));
        b->p[b->n++] = (char)(0x80 | (cp >> 6 & 0x3f));
        b->p[b->n++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* one escape after the backslash into b */
static int escape(struct cmr_json *j, struct sbuf *b)
{
    if (j->i >= j->n)
        return cmr_json_fail(j, "unterminated string");
    char c = j->s[j->i++];
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *k = c ? strchr(from, c) : NULL;
    if (k) {
        b->p[b->n++] = to[k - from];
        return CMR_OK;
    }
    if (c != 'u') {
        j->i--;
        return cmr_json_fail(j, "bad escape in string");
    }
    unsigned cp;
    int rc = hex4(j, &cp);
    if (rc)
        return rc;
    if (cp >= 0xd800 && cp < 0xdc00) { /* high surrogate: a low one must follow */
        unsigned lo;
        if (j->n - j->i < 2 || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u')
            return cmr_json_fail(j, "unpaired surrogate in string");
        j->i += 2;
        if ((rc = hex4(j, &lo)))
            return rc;
        if (lo < 0xdc00 || lo >= 0xe000)
            return cmr_json_fail(j, "unpaired surrogate in string");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp < 0xe000) {
        return cmr_json_fail(j, "unpaired surrogate in string");
    }
    if (cp == 0)
        return cmr_json_fail(j, "NUL character in string");
    put_utf8(b, cp);
    return CMR_OK;
}

int cmr_json_string(struct cmr_json *j, char **out, size_t *len)
{
    int rc = cmr_json_expect(j, '"');
    *out = NULL;
    if (rc)
        return rc;
    struct sbuf b = {0};
    for (;;) {
        if (sb_room(&b, 4)) {
            rc = nomem(j);
            break;
        }
        if (j->i >= j->n) {
            rc = cmr_json_fail(j, "unterminated string");
            break;
        }
        unsigned char c = (unsigned char)j->s[j->i];
        if (c == '"') {
            j->i++;
            b.p[b.n] = 0;
            *out = b.p;
            if (len)
                *len = b.n;
            return CMR_OK;
        }
        if (c < 0x20) {
            rc = cmr_json_fail(j, "control character in string");
            break;
        }
        if (c == '\\') {
            j->i++;
            if ((rc = escape(j, &b)))
                break;
            continue;
        }
        size_t k = c < 0x80 ? 1 : utf8_len((const unsigned char *)j->s + j->i, j->n - j->i);
        if (k == 0) {
            rc = cmr_json_fail(j, "invalid UTF-8 in string");
            break;
        }
        memcpy(b.p + b.n, j->s + j->i, k);
        b.n += k;
        j->i += k;
    }
    free(b.p);
    return rc;
}

/* ---- numbers ---- */

static int digits(struct cmr_json *j)
{
    size_t start = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
        j->i++;
    return j->i > start;
}

/* checks the grammar; [*start, j->i) is the number's text */
static int scan_number(struct cmr_json *j, size_t *start)
{
    ws(j);
    *start = j->i;
    if (j->i < j->n && j->s[j->i] == '-')
        j->i++;
    if (j->i < j->n && j->s[j->i] == '0') {
        j->i++;
        if (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9')
            return cmr_json_fail(j, "leading zero in a number");
    } else if (!digits(j)) {
        return cmr_json_fail(j, j->i == *start ? "expected a value" : "bad number");
    }
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (!digits(j))
            return cmr_json_fail(j, "bad number");
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-'))
            j->i++;
        if (!digits(j))
            return cmr_json_fail(j, "bad number");
    }
    return CMR_OK;
}

int cmr_json_number_text(struct cmr_json *j, char **out)
{
    size_t start;
    *out = NULL;
    int rc = scan_number(j, &start);
    if (rc)
        return rc;
    size_t n = j->i - start;
    char *t = malloc(n + 1);
    if (!t)
        return nomem(j);
    memcpy(t, j->s + start, n);
    t[n] = 0;
    *out = t;
    return CMR_OK;
}

int cmr_json_number(struct cmr_json *j, double *v)
{
    char *t;
    int rc = cmr_json_number_text(j, &t);
    if (rc)
        return rc;
    *v = strtod(t, NULL);
    free(t);
    return CMR_OK;
}

int cmr_json_uint(struct cmr_json *j, uint64_t *v)
{
    ws(j);
    size_t start = j->i;
    uint64_t x = 0;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') {
        x = x * 10 + (uint64_t)(j->s[j->i] - '0');
        if (x >= (UINT64_C(1) << 53))
            return cmr_json_fail(j, "integer too large");
        j->i++;
    }
    if (j->i == start)
        return cmr_json_fail(j, "expected a non-negative integer");
    if (j->i - start > 1 && j->s[start] == '0')
        return cmr_json_fail(j, "leading zero in integer");
    if (j->i < j->n && (j->s[j->i] == '.' || j->s[j->i] == 'e' || j->s[j->i] == 'E'))
        return cmr_json_fail(j, "expected an integer");
    *v = x;
    return CMR_OK;
}

/* ---- any value ---- */

int cmr_json_skip(struct cmr_json *j)
{
    char c = cmr_json_peek(j);
    int rc, more;
    if (c == '{' || c == '[') {
        if ((rc = cmr_json_begin(j, c, &more)))
            return rc;
        while (more) {
            if (c == '{') {
                char *k;
                if ((rc = cmr_json_string(j, &k, NULL)))
                    return rc;
                free(k);
                if ((rc = cmr_json_expect(j, ':')))
                    return rc;
            }
            if ((rc = cmr_json_skip(j)) || (rc = cmr_json_next(j, c == '{' ? '}' : ']', &more)))
                return rc;
        }
        return CMR_OK;
    }
    if (c == '"') {
        char *s;
        rc = cmr_json_string(j, &s, NULL);
        free(s);
        return rc;
    }
    if (c == 't' || c == 'f' || c == 'n') {
        const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t n = strlen(lit);
        if (j->n - j->i < n || memcmp(j->s + j->i, lit, n))
            return cmr_json_fail(j, "bad literal");
        j->i += n;
        return CMR_OK;
    }
    size_t start;
    return scan_number(j, &start);
}

int cmr_json_end(struct cmr_json *j)
{
    ws(j);
    if (j->i != j->n)
        return cmr_json_fail(j, "trailing characters after the JSON value");
    return CMR_OK;
}
