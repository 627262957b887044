/* A small TAP emitter for cmr's C tests (automake's tap-driver.sh reads it).
 *
 *   int main(void) { tap_plan_none();  ok(1 + 1 == 2, "sums");  return tap_done(); }
 *
 * check_close() compares two float arrays with absolute and relative
 * tolerances, printing the first mismatching pairs and the max differences as
 * TAP comments (llm.c's check_tensor). Everything goes to stdout as TAP. */
#ifndef CMR_TAP_H
#define CMR_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_count, tap_failed;

static inline void tap_plan_none(void) { setvbuf(stdout, NULL, _IONBF, 0); }

__attribute__((format(printf, 2, 3)))
static inline int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_count++;
    if (!cond)
        tap_failed++;
    printf("%sok %d - ", cond ? "" : "not ", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return cond;
}

__attribute__((format(printf, 1, 2)))
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

__attribute__((format(printf, 1, 2)))
static inline void skip_all(const char *fmt, ...)
{
    va_list ap;
    printf("1..0 # SKIP ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    exit(0);
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

/* |got - want| <= atol + rtol * |want| for every element; NaN never passes */
static inline int check_close(const char *label, const float *got, const float *want, size_t n,
                              double atol, double rtol)
{
    double max_abs = 0, max_rel = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double r = d / (fabs((double)want[i]) + 1e-30);
        int fail = !(d <= atol + rtol * fabs((double)want[i]));
        if (d > max_abs || d != d)
            max_abs = d != d ? INFINITY : d;
        if (r > max_rel && want[i] != 0)
            max_rel = r;
        if (fail && bad++ < 5)
            diag("%s[%zu]: got %.8g want %.8g", label, i, got[i], want[i]);
    }
    return ok(bad == 0, "%s: %zu values, max abs diff %.3e, max rel diff %.3e (atol %.1e rtol %.1e)",
              label, n, max_abs, max_rel, atol, rtol);
}

#endif
