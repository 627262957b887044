/* A strict JSON reader (RFC 8259), pull style, over text held in memory: the
 * caller walks the document it expects, value by value, and any departure
 * from the grammar or from what the caller asks for is an error that names the
 * place. One reader for every JSON input of cmr (the safetensors header,
 * cmr-manifest's AOTM-2011 playlists).
 *
 *   struct cmr_json j;
 *   cmr_json_init(&j, text, len, "p.json", CMR_JSON_AT_LINE, 0, &err);
 *   int more;
 *   if (cmr_json_begin(&j, '[', &more)) ...          // an array; more = 0 if empty
 *   while (more) {
 *       char *s;
 *       if (cmr_json_string(&j, &s)) ...             // malloc'ed UTF-8, caller frees
 *       if (cmr_json_next(&j, ']', &more)) ...       // ',' (more = 1) or ']' (more = 0)
 *   }
 *   if (cmr_json_end(&j)) ...                        // nothing but white space after
 *
 * Strict: no comments, no trailing commas, no leading zeros or '+' in
 * numbers, no bare control characters, strings must be valid UTF-8 (no
 * overlong forms or encoded surrogates), \u escapes must pair surrogates
 * correctly, and U+0000 is refused (strings come back as C strings).
 * Nesting is bounded at CMR_JSON_MAX_DEPTH; nothing recurses deeper.
 * Every function returns CMR_OK or a negative CMR_E* code (CMR_EFORMAT for
 * malformed text, CMR_ENOMEM) with err filled:
 *   CMR_JSON_AT_LINE:  "NAME:LINE: CONTEXT: WHAT"
 *   CMR_JSON_AT_BYTE:  "NAME: CONTEXT: WHAT at byte B" (B = base + offset in the text)
 * CONTEXT is "malformed JSON" unless the caller sets j.context after init.
 * Nothing here prints or exits. */
#ifndef CMR_UTIL_JSON_H
#define CMR_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CMR_JSON_MAX_DEPTH 256

enum cmr_json_where { CMR_JSON_AT_LINE = 0, CMR_JSON_AT_BYTE = 1 };

struct cmr_json {
    const char *s;          /* the text (need not be NUL-terminated) */
    size_t n, i;            /* its length, the read position */
    const char *name;       /* for messages: the file */
    const char *context;    /* for messages: what is read ("malformed JSON") */
    enum cmr_json_where where;
    size_t base;            /* added to byte offsets in messages */
    int depth;              /* containers open */
    struct cmr_error *err;
};

void cmr_json_init(struct cmr_json *j, const char *s, size_t n, const char *name,
                   enum cmr_json_where where, size_t base, struct cmr_error *err);

/* CMR_EFORMAT with the message above (for the caller's own schema errors too) */
int cmr_json_fail(struct cmr_json *j, const char *what);

/* the next character after white space, without taking it; 0 at the end */
char cmr_json_peek(struct cmr_json *j);
/* takes the character c after white space */
int cmr_json_expect(struct cmr_json *j, char c);

/* opens a container: open is '[' or '{'; *more = 0 when it is empty (and
 * already closed), 1 when an element (a value, or a key for '{') follows */
int cmr_json_begin(struct cmr_json *j, char open, int *more);
/* after an element: takes ',' (*more = 1) or close (']' or '}', *more = 0) */
int cmr_json_next(struct cmr_json *j, char close, int *more);

/* a string, as a malloc'ed NUL-terminated UTF-8 string (*len its length if
 * len is not NULL) */
int cmr_json_string(struct cmr_json *j, char **out, size_t *len);
/* a number, as its exact text (malloc'ed) */
int cmr_json_number_text(struct cmr_json *j, char **out);
/* a number */
int cmr_json_number(struct cmr_json *j, double *v);
/* a non-negative integer below 2^53 written without fraction or exponent */
int cmr_json_uint(struct cmr_json *j, uint64_t *v);
/* any value (objects and arrays nested at most CMR_JSON_MAX_DEPTH deep) */
int cmr_json_skip(struct cmr_json *j);
/* only white space is left */
int cmr_json_end(struct cmr_json *j);

#endif
