/* A CSV reader (RFC 4180); see csv.h. */
#include "util/csv.h"

#include <stdlib.h>
#include <string.h>

void cmr_csv_init(struct cmr_csv *c, const char *text, size_t len, char sep, const char *name)
{
    memset(c, 0, sizeof *c);
    c->p = text;
    c->end = text + len;
    c->sep = sep;
    c->name = name ? name : "CSV";
}

void cmr_csv_free(struct cmr_csv *c)
{
    free(c->field);
    free(c->off);
    free(c->store);
    c->field = NULL;
    c->off = NULL;
    c->store = NULL;
    c->n = c->cap = 0;
}

static int put(struct cmr_csv *c, char ch)
{
    if (c->store_n + 1 >= c->store_cap) {
        size_t cap = c->store_cap ? 2 * c->store_cap : 256;
        char *s = realloc(c->store, cap);
        if (!s)
            return -1;
        c->store = s;
        c->store_cap = cap;
    }
    c->store[c->store_n++] = ch;
    return 0;
}

static int nomem(struct cmr_csv *c, struct cmr_error *err)
{
    return cmr_error_set(err, CMR_ENOMEM, "%s:%ld: out of memory", c->name, c->line);
}

int cmr_csv_next(struct cmr_csv *c, struct cmr_error *err)
{
    if (c->p >= c->end)
        return CMR_EOF;
    c->n = 0;
    c->store_n = 0;
    c->start_line = ++c->line;
    for (;;) {
        /* one field */
        if (c->n == c->cap) {
            if (c->cap >= CMR_CSV_MAX_FIELDS)
                return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: more than %d fields in a record",
                                     c->name, c->line, CMR_CSV_MAX_FIELDS);
            int cap = c->cap ? 2 * c->cap : 64;
            size_t *off = realloc(c->off, sizeof *off * (size_t)cap);
            if (!off)
                return nomem(c, err);
            c->off = off;
            char **field = realloc(c->field, sizeof *field * (size_t)cap);
            if (!field)
                return nomem(c, err);
            c->field = field;
            c->cap = cap;
        }
        c->off[c->n++] = c->store_n;
        if (c->p < c->end && *c->p == '"') {
            long start = c->line;
            c->p++;
            for (;;) {
                if (c->p >= c->end)
                    return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: a quoted field is not closed",
                                         c->name, start);
                if (*c->p == '"') {
                    if (c->p + 1 < c->end && c->p[1] == '"') {
                        if (put(c, '"'))
                            return nomem(c, err);
                        c->p += 2;
                        continue;
                    }
                    c->p++;
                    break;
                }
                if (*c->p == 0)
                    return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: a NUL byte in a field", c->name, c->line);
                if (*c->p == '\n' || (*c->p == '\r' && (c->p + 1 >= c->end || c->p[1] != '\n')))
                    c->line++;
                if (put(c, *c->p++))
                    return nomem(c, err);
            }
            /* after the closing quote: a separator, an end of line, or the end */
            if (c->p < c->end && *c->p != c->sep && *c->p != '\n' && *c->p != '\r')
                return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: text after a closing quote", c->name,
                                     c->line);
        } else {
            while (c->p < c->end && *c->p != c->sep && *c->p != '\n' && *c->p != '\r') {
                if (*c->p == 0)
                    return cmr_error_set(err, CMR_EFORMAT, "%s:%ld: a NUL byte in a field", c->name,
                                         c->line);
                if (put(c, *c->p++))
                    return nomem(c, err);
            }
        }
        if (put(c, 0))
            return nomem(c, err);
        if (c->p < c->end && *c->p == c->sep) {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '\r')
            c->p++;
        if (c->p < c->end && *c->p == '\n')
            c->p++;
        break;
    }
    for (int i = 0; i < c->n; i++)
        c->field[i] = c->store + c->off[i];
    return CMR_OK;
}
