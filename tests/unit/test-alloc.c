/* lib/util/alloc.c: overflow checks, errors instead of exits, growth. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "tap.h"

int main(void)
{
    tap_plan_none();
    struct cmr_error err = {0};

    int *a = cmr_mallocn(10, sizeof *a, &err);
    ok(a != NULL, "malloc of 10 ints");
    free(a);
    void *z = cmr_mallocn(0, 4, &err);
    ok(z != NULL, "a request for 0 bytes is not NULL");
    free(z);

    ok(cmr_mallocn(SIZE_MAX / 2, 4, &err) == NULL && err.code == CMR_ENOMEM && strstr(err.msg, "overflow"),
       "n x size overflow refused: %s", err.msg);
    memset(&err, 0, sizeof err);
    ok(cmr_callocn((size_t)1 << 40, (size_t)1 << 40, &err) == NULL && err.code == CMR_ENOMEM,
       "calloc overflow refused: %s", err.msg);
    ok(cmr_mallocn(SIZE_MAX / 2, 4, NULL) == NULL, "err may be NULL");

    unsigned char *c = cmr_callocn(100, 1, &err);
    int zero = c != NULL;
    for (int i = 0; c && i < 100; i++)
        zero &= c[i] == 0;
    ok(zero, "calloc zeroes");
    free(c);

    int *r = cmr_mallocn(4, sizeof *r, &err);
    r[0] = 7;
    memset(&err, 0, sizeof err);
    ok(cmr_reallocn(r, SIZE_MAX / 2, 4, &err) == NULL && err.code == CMR_ENOMEM && r[0] == 7,
       "realloc overflow refused, the block kept");
    int *r2 = cmr_reallocn(r, 1000, sizeof *r, &err);
    ok(r2 && r2[0] == 7, "realloc grows and keeps the contents");
    free(r2);

    char **v = NULL;
    size_t cap = 0, n = 0;
    int grew = 1;
    for (int i = 0; i < 100; i++) {
        grew &= cmr_grow(&v, &cap, n + 1, sizeof *v, &err) == CMR_OK && cap >= n + 1;
        v[n++] = NULL;
    }
    ok(grew && cap == 128, "cmr_grow doubles from 8: capacity %zu for 100", cap);
    void *keep = v;
    size_t keep_cap = cap;
    ok(cmr_grow(&v, &cap, SIZE_MAX / 2, sizeof *v, &err) == CMR_ENOMEM && v == keep && cap == keep_cap,
       "cmr_grow failure leaves the array and capacity");
    free(v);

    char *s = cmr_strdup("abc", &err);
    ok(s && !strcmp(s, "abc"), "strdup");
    free(s);
    char *f = cmr_asprintf(&err, "%s/%03d", "dir", 7);
    ok(f && !strcmp(f, "dir/007"), "asprintf: %s", f ? f : "(null)");
    free(f);
    return tap_done();
}
