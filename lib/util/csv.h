/* A CSV reader (RFC 4180) over text held in memory, record by record.
 *
 *   struct cmr_csv c;
 *   cmr_csv_init(&c, text, len, ',', "tracks.csv");
 *   while ((rc = cmr_csv_next(&c, &err)) == CMR_OK)
 *       ... c.n fields c.field[0 .. n), NUL-terminated, valid until the next call ...
 *   if (rc != CMR_EOF) ... err says "NAME:LINE: what" ...
 *   cmr_csv_free(&c);
 *
 * - Records end at CRLF, LF or a lone CR; the last may lack one. An empty line
 *   is a record of one empty field.
 * - A field that starts with '"' is quoted: it ends at the next '"' not
 *   doubled ("" is one '"'), may hold separators, CR and LF, and must be
 *   followed by a separator, an end of line or the end of the text.
 *   A quote that does not start a field is an ordinary character (as
 *   Python's csv module and most producers treat it).
 * - sep is any byte but '"', CR and LF (',' for CSV, '\t' for TSV).
 * - A NUL byte in a field is refused (fields come back as C strings).
 * - At most CMR_CSV_MAX_FIELDS fields a record; memory grows only with the
 *   largest record.
 * c.line is the line on which the last record read ends (from 1), and
 * c.start_line the line on which it starts (they differ when a quoted field
 * holds line breaks). Errors: CMR_EFORMAT, CMR_ENOMEM, with err filled.
 * Nothing here prints or exits. */
#ifndef CMR_UTIL_CSV_H
#define CMR_UTIL_CSV_H

#include <stddef.h>

#include "err.h"

#define CMR_CSV_MAX_FIELDS 65536

struct cmr_csv {
    /* the last record */
    char **field;
    int n;
    long line, start_line;
    /* private */
    const char *p, *end;
    const char *name;
    char sep;
    int cap;
    char *store;
    size_t store_n, store_cap;
    size_t *off;
};

void cmr_csv_init(struct cmr_csv *c, const char *text, size_t len, char sep, const char *name);
/* the next record: CMR_OK, CMR_EOF at the end of the text, or an error
 * (after which only cmr_csv_free is valid) */
int cmr_csv_next(struct cmr_csv *c, struct cmr_error *err);
void cmr_csv_free(struct cmr_csv *c);

#endif
