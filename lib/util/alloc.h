/* Checked allocation: sizes are counted in elements and multiplied with an
 * overflow check, and a failure comes back as NULL (or CMR_ENOMEM) with err
 * filled ("out of memory (N bytes)"), never as an exit. err may be NULL.
 * A request for 0 bytes allocates 1, so that NULL always means failure.
 *
 *   char **v = NULL;
 *   size_t n = 0, cap = 0;
 *   if (cmr_grow(&v, &cap, n + 1, sizeof *v, err)) return err->code;
 *   if (!(v[n++] = cmr_strdup(s, err))) return err->code;
 *
 * Nothing here prints or exits. Tests: tests/unit/test-alloc.c */
#ifndef CMR_UTIL_ALLOC_H
#define CMR_UTIL_ALLOC_H

#include <stddef.h>

#include "err.h"

/* malloc(n * size) */
void *cmr_mallocn(size_t n, size_t size, struct cmr_error *err);
/* calloc(n, size) */
void *cmr_callocn(size_t n, size_t size, struct cmr_error *err);
/* realloc(p, n * size); on failure p is left as it was (and still owned by the caller) */
void *cmr_reallocn(void *p, size_t n, size_t size, struct cmr_error *err);
/* makes *(void **)pp hold at least need elements of size bytes: the capacity
 * *cap doubles (from 8) until it is enough. CMR_OK, or CMR_ENOMEM with *pp and
 * *cap as they were. pp is the address of the caller's pointer (T **). */
int cmr_grow(void *pp, size_t *cap, size_t need, size_t size, struct cmr_error *err);
/* strdup */
char *cmr_strdup(const char *s, struct cmr_error *err);
/* a malloc'ed string, printf-style */
char *cmr_asprintf(struct cmr_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
