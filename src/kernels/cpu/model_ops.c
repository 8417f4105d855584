/* model_ops.c — embedding, positions, residual and row kernels of the model (CPU). */
#include <string.h>
#include "kernels/model_ops.h"

void k_embed_gather(const real *E, const int *tokens, size_t n, int D, real *out) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) memcpy(out + i * D, E + (size_t)tokens[i] * D, sizeof(real) * D);
}

void k_add_rows_indexed(real *h, const real *P, int nP, const int *idx, size_t n, int D) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        real *hr = h + i * D;
        const real *pr = P + (size_t)EID_MIN(idx[i], nP - 1) * D;
#pragma omp simd
        for (int j = 0; j < D; j++) hr[j] += pr[j];
    }
}

void k_embed_scatter_add(const real *d, const int *tokens, const int *idx, size_t n, int D, real *gE, real *gP) {
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < D; j0 += 16)
        for (size_t i = 0; i < n; i++) {
            int j1 = EID_MIN(D, j0 + 16);
            real *g = gE + (size_t)tokens[i] * D;
            const real *dr = d + i * D;
            for (int j = j0; j < j1; j++) g[j] += dr[j];
            if (gP) {
                real *gp = gP + (size_t)idx[i] * D;
                for (int j = j0; j < j1; j++) gp[j] += dr[j];
            }
        }
}

void k_add(real *y, const real *a, const real *b, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void k_rows_gather(const real *src, const int *rows, int n, int D, real *dst) {
    for (int r = 0; r < n; r++) memcpy(dst + (size_t)r * D, src + (size_t)rows[r] * D, sizeof(real) * D);
}

void k_rows_scatter(const real *src, const int *rows, int n, int D, real *dst) {
    for (int r = 0; r < n; r++) memcpy(dst + (size_t)rows[r] * D, src + (size_t)r * D, sizeof(real) * D);
}

void k_fill(real *x, size_t n, real value) {
    if (value == 0) { memset(x, 0, sizeof(real) * n); return; }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) x[i] = value;
}

void k_fill_uniform(real *x, size_t n, double a, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (real)((2 * rng_uniform(r) - 1) * a);
}

void k_fill_normal(real *x, size_t n, double a, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (real)(rng_normal(r) * a);
}
