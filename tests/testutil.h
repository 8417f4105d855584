/* testutil.h — minimal test framework: CHECK records a failure with its location and goes on;
 * every test binary ends with "N passed, N failed" and exits non-zero on any failure. */
#ifndef EIDETIC_TESTUTIL_H
#define EIDETIC_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/common.h"

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) t_pass++;                                                     \
        else {                                                                  \
            t_fail++;                                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

static inline int t_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

/* max |a−b| / max(max|b|, floor) */
static inline double t_rel_err(const real *a, const real *b, size_t n, double floor) {
    double num = 0, den = floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= num)) num = d; /* NaN-propagating */
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / den;
}

#endif
