/* norm_act.c — RMSNorm and activations (CPU). */
#include <math.h>
#include "kernels/kernels.h"
#include "core/common.h"

void k_rmsnorm_fwd(const real *x, const real *w, real *y, real *rstd, int N, int D, real eps) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const real *xr = x + (size_t)r * D;
        real *yr = y + (size_t)r * D;
        double ss = rdot(xr, xr, D);
        real s = (real)(1.0 / sqrt(ss / D + eps));
        rstd[r] = s;
        for (int j = 0; j < D; j++) yr[j] = w[j] * xr[j] * s;
    }
}

/* With n = x·s (s = rstd): y = w⊙n,  dx = s·(w⊙dy − n·mean(w⊙dy⊙n)),  dw = Σ_rows dy⊙n.
 * Two passes so that neither races nor needs per-thread buffers: rows for dx, column blocks for dw. */
void k_rmsnorm_bwd(const real *dy, const real *x, const real *w, const real *rstd, real *dx, real *dw, int N, int D) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const real *xr = x + (size_t)r * D, *dyr = dy + (size_t)r * D;
        real *dxr = dx + (size_t)r * D;
        real s = rstd[r];
        /* Σ dy·w·x·s, in lanes (rdot's form, with the weight inside) */
        real part[16] = {0};
        int j = 0;
        for (; j + 16 <= D; j += 16)
#pragma omp simd
            for (int l = 0; l < 16; l++) part[l] += dyr[j + l] * w[j + l] * xr[j + l];
        for (; j < D; j++) part[0] += dyr[j] * w[j] * xr[j];
        double dot = 0;
        for (int l = 0; l < 16; l++) dot += part[l];
        real m = (real)(dot * s / D);
        for (int j = 0; j < D; j++) dxr[j] += s * (w[j] * dyr[j] - xr[j] * s * m);
    }
    const int JB = 16;
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < D; j0 += JB) {
        int j1 = EID_MIN(D, j0 + JB);
        real acc[16] = {0};
        for (int r = 0; r < N; r++) {
            const real *xr = x + (size_t)r * D, *dyr = dy + (size_t)r * D;
            for (int j = j0; j < j1; j++) acc[j - j0] += dyr[j] * xr[j] * rstd[r];
        }
        for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
    }
}

void k_silu_fwd(const real *x, int ldx, real *y, int ldy, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
            real v = x[(size_t)r * ldx + c];
            y[(size_t)r * ldy + c] = v / (1 + rexp(-v));
        }
}

void k_colsum_add(const real *a, int lda, const real *b, int ldb, int M, int C, real *out) {
    const int JB = 16;
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < C; j0 += JB) {
        int j1 = EID_MIN(C, j0 + JB);
        real acc[16] = {0};
        for (int m = 0; m < M; m++) {
            const real *ar = a + (size_t)m * lda;
            if (b) {
                const real *br = b + (size_t)m * ldb;
                for (int j = j0; j < j1; j++) acc[j - j0] += ar[j] * br[j];
            } else {
                for (int j = j0; j < j1; j++) acc[j - j0] += ar[j];
            }
        }
        for (int j = j0; j < j1; j++) out[j] += acc[j - j0];
    }
}

void k_swiglu_fwd(const real *g, const real *u, real *h, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t j = 0; j < n; j++) h[j] = g[j] * k_sigmoid(g[j]) * u[j];
}

void k_swiglu_bwd(const real *dh, const real *g, const real *u, real *dg, real *du, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t j = 0; j < n; j++) {
        real ga = g[j], sg = k_sigmoid(ga);
        du[j] = dh[j] * ga * sg;
        dg[j] = dh[j] * u[j] * sg * (1 + ga * (1 - sg));
    }
}
