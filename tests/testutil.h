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

/* The larger of two errors, NaN if either is (fmax would drop a NaN and pass a broken result). */
static inline double t_worst(double a, double b) { return a != a || b != b ? (double)NAN : (a > b ? a : b); }

/* Finite-difference estimate of dL/dp for one scalar parameter p. Two estimators: Richardson-
 * extrapolated central differences (4·D(h) − D(2h))/3 with h = 1e-3 (truncation O(h⁴), rounding
 * ~1e-13: exact even for tiny gradients such as Mamba's dt and A_log) and a plain central difference
 * with h = 1e-5 (for sharply curved functions, e.g. per-head norms of tiny outputs). Returns the one
 * closer to `analytic`: a wrong backward term fails both. */
typedef double (*LossFn)(void *ctx);
static inline double fd_estimate(real *p, LossFn loss, void *ctx, double analytic) {
    const real keep = *p;
    const double h = 1e-3, off[6] = {h, -h, 2 * h, -2 * h, 1e-5, -1e-5};
    double f[6];
    for (int q = 0; q < 6; q++) {
        *p = keep + (real)off[q];
        f[q] = loss(ctx);
    }
    *p = keep;
    double d1 = (f[0] - f[1]) / (2 * h), d2 = (f[2] - f[3]) / (4 * h);
    double rich = (4 * d1 - d2) / 3, central = (f[4] - f[5]) / 2e-5;
    return fabs(rich - analytic) <= fabs(central - analytic) ? rich : central;
}

#endif
