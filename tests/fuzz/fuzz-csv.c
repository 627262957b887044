/* libFuzzer target for the CSV reader (lib/util/csv.c, cmr-manifest's fma and
 * mtat inputs): any bytes in, records or a clean error out, never a crash, a
 * leak or unbounded memory. The first byte picks the separator (odd: TAB,
 * even: ','). Every record read is written back quoted (RFC 4180) and read
 * again: the fields must come back the same. `make fuzz`. */
#include "util/csv.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* writes the record quoted, parses it, compares; aborts on a difference */
static void roundtrip(const struct cmr_csv *c, char sep)
{
    size_t cap = 3;
    for (int i = 0; i < c->n; i++)
        cap += 2 * strlen(c->field[i]) + 3;
    char *t = malloc(cap), *p = t;
    if (!t)
        return;
    for (int i = 0; i < c->n; i++) {
        if (i)
            *p++ = sep;
        *p++ = '"';
        for (const char *f = c->field[i]; *f; f++) {
            if (*f == '"')
                *p++ = '"';
            *p++ = *f;
        }
        *p++ = '"';
    }
    *p++ = '\r';
    *p++ = '\n';
    struct cmr_csv d;
    struct cmr_error err = {0};
    cmr_csv_init(&d, t, (size_t)(p - t), sep, "again");
    if (cmr_csv_next(&d, &err) != CMR_OK || d.n != c->n)
        abort();
    for (int i = 0; i < c->n; i++)
        if (strcmp(d.field[i], c->field[i]))
            abort();
    if (cmr_csv_next(&d, &err) != CMR_EOF)
        abort();
    cmr_csv_free(&d);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char sep = data[0] & 1 ? '\t' : ',';
    struct cmr_csv c;
    struct cmr_error err = {0};
    cmr_csv_init(&c, (const char *)data + 1, size - 1, sep, "fuzz.csv");
    int rc;
    long last = 0;
    while ((rc = cmr_csv_next(&c, &err)) == CMR_OK) {
        if (c.n < 1 || c.n > CMR_CSV_MAX_FIELDS || c.start_line <= last || c.line < c.start_line)
            abort();
        last = c.line;
        roundtrip(&c, sep);
    }
    if (rc != CMR_EOF && (rc >= 0 || !err.msg[0]))
        abort();
    cmr_csv_free(&c);
    return 0;
}
