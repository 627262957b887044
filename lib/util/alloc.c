/* see alloc.h */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static void *nomem(size_t n, size_t size, struct cmr_error *err)
{
    if (size && n > SIZE_MAX / size)
        cmr_error_set(err, CMR_ENOMEM, "out of memory (%zu x %zu bytes overflows)", n, size);
    else
        cmr_error_set(err, CMR_ENOMEM, "out of memory (%zu bytes)", n * size);
    return NULL;
}

void *cmr_mallocn(size_t n, size_t size, struct cmr_error *err)
{
    if (size && n > SIZE_MAX / size)
        return nomem(n, size, err);
    void *p = malloc(n * size != 0 ? n * size : 1);
    return p ? p : nomem(n, size, err);
}

void *cmr_callocn(size_t n, size_t size, struct cmr_error *err)
{
    if (size && n > SIZE_MAX / size)
        return nomem(n, size, err);
    void *p = n && size ? calloc(n, size) : calloc(1, 1);
    return p ? p : nomem(n, size, err);
}

void *cmr_reallocn(void *p, size_t n, size_t size, struct cmr_error *err)
{
    if (size && n > SIZE_MAX / size)
        return nomem(n, size, err);
    void *q = realloc(p, n * size != 0 ? n * size : 1);
    return q ? q : nomem(n, size, err);
}

int cmr_grow(void *pp, size_t *cap, size_t need, size_t size, struct cmr_error *err)
{
    if (need <= *cap)
        return CMR_OK;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2) {
            n = need;
            break;
        }
        n *= 2;
    }
    void *q = cmr_reallocn(*(void **)pp, n, size, err);
    if (!q)
        return CMR_ENOMEM;
    *(void **)pp = q;
    *cap = n;
    return CMR_OK;
}

char *cmr_strdup(const char *s, struct cmr_error *err)
{
    size_t n = strlen(s) + 1;
    char *d = cmr_mallocn(n, 1, err);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *cmr_asprintf(struct cmr_error *err, const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        cmr_error_set(err, CMR_ENOMEM, "out of memory");
        return NULL;
    }
    return s;
}
