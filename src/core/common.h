/* common.h — the numeric type, error reporting and small helpers every file uses.
 *
 * `real` is float in the normal build and double in the test build (-DEIDETIC_FP64), so that
 * finite-difference gradient checks can be tight (docs/layers.md §0.1). Use rexp/rlog/rsqrt on `real`
 * values so each build runs at its own precision. */
#ifndef EIDETIC_COMMON_H
#define EIDETIC_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <math.h>

#ifdef EIDETIC_FP64
typedef double real;
#define REAL_NAME "F64"
#define rexp exp
#define rlog log
#define rsqrt sqrt
#define rlog1p log1p
#else
#include "core/vmath.h"
typedef float real;
#define REAL_NAME "F32"
#define rexp eid_expf /* vectorisable, < 1 ulp (core/vmath.h) */
#define rlog logf
#define rlog1p eid_log1pf
#define rsqrt sqrtf
#endif

#define EID_ALIGN 64
#define EID_MIN(a, b) ((a) < (b) ? (a) : (b))
#define EID_MAX(a, b) ((a) > (b) ? (a) : (b))
#define EID_CDIV(a, b) (((a) + (b) - 1) / (b))

/* Σ a[j]·b[j] in 16 lanes of partial sums, added in double at the end. GCC 12 does not vectorise a
 * double accumulator over float products ("no vectype"); 16 lanes vectorise and keep the rounding
 * of an n-term sum near that of n/16 terms. */
static inline double rdot(const real *restrict a, const real *restrict b, int n) {
    real part[16] = {0};
    int j = 0;
    for (; j + 16 <= n; j += 16)
#pragma omp simd
        for (int l = 0; l < 16; l++) part[l] += a[j + l] * b[j + l];
    for (; j < n; j++) part[0] += a[j] * b[j];
    double total = 0;
    for (int l = 0; l < 16; l++) total += part[l];
    return total;
}

/* Error handling: library functions return 0 on success and -1 on failure after recording a
 * one-line message (what, where, hint) with eid_error(); the CLI prints it and exits non-zero.
 * Nothing in the library calls exit() except eid_fatal for programming errors (broken invariants). */
void eid_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *eid_last_error(void);
void eid_clear_error(void);
_Noreturn void eid_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logging to stderr, prefixed with "eidetic: ". Level 0 = quiet, 1 = info (default), 2 = debug. */
extern int eid_log_level;
void eid_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sends log lines (without the prefix or newline) to fn instead of stderr; NULL restores stderr.
 * level: 1 = info, 0 = an internal error just before abort (eid_fatal). Set it before other threads
 * start. The library API (include/eidetic.h) exposes this as eidetic_set_log_callback. */
typedef void (*EidLogSink)(int level, const char *msg, void *user);
void eid_set_log_sink(EidLogSink fn, void *user);

/* Allocation that never returns NULL (out of memory is fatal: nothing sensible to recover). */
void *eid_xmalloc(size_t n);
void *eid_xcalloc(size_t n, size_t size);
void *eid_xrealloc(void *p, size_t n);
void *eid_aligned_alloc(size_t n); /* zeroed, EID_ALIGN-aligned (2 MiB and huge pages when large: common.c) */
void *eid_aligned_alloc_try(size_t n); /* the same, NULL when out of memory (for caches that can do without) */
char *eid_xstrdup(const char *s);

double eid_now(void); /* monotonic seconds */

#endif
