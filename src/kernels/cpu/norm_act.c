/* norm_act.c — RMSNorm and activations (CPU). */
#include <math.h>
#include <string.h>
#include "kernels/kernels.h"
#include "core/common.h"
#include "core/bf16.h"

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

void k_silu_bwd(const real *x, int ldx, real *dy, int lddy, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const real *restrict xr = x + (size_t)r * ldx;
        real *restrict g = dy + (size_t)r * lddy;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            real sg = k_sigmoid(xr[c]);
            g[c] *= sg * (1 + xr[c] * (1 - sg));
        }
    }
}

void k_mul_silu_fwd(const real *y, int ldy, const real *z, int ldz, real *out, int ldo, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const real *yr = y + (size_t)r * ldy, *restrict zr = z + (size_t)r * ldz;
        real *orow = out + (size_t)r * ldo;
#pragma omp simd
        for (int c = 0; c < C; c++) orow[c] = yr[c] * zr[c] / (1 + rexp(-zr[c]));
    }
}

void k_mul_silu_bwd(real *dy_io, int lddy, const real *y, int ldy, const real *z, int ldz, real *dz, int lddz, int N,
                    int C) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        real *restrict gr = dy_io + (size_t)r * lddy, *restrict dzr = dz + (size_t)r * lddz;
        const real *restrict yr = y + (size_t)r * ldy, *restrict zr = z + (size_t)r * ldz;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            real zz = zr[c], s = 1 / (1 + rexp(-zz)), g = gr[c];
            dzr[c] = g * yr[c] * s * (1 + zz * (1 - s));
            gr[c] = g * zz * s;
        }
    }
}

void k_zero(real *x, int ld, int N, int C) {
    if (ld == C) {
        memset(x, 0, sizeof(real) * (size_t)N * C);
        return;
    }
    if ((size_t)N * C < 65536) { /* small (a decode step's state slice): no OpenMP region at all, not even an inactive one */
        for (int r = 0; r < N; r++) memset(x + (size_t)r * ld, 0, sizeof(real) * C);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) memset(x + (size_t)r * ld, 0, sizeof(real) * C);
}

void k_copy(const real *x, int ldx, real *y, int ldy, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= 65536)
    for (int r = 0; r < N; r++) memmove(y + (size_t)r * ldy, x + (size_t)r * ldx, sizeof(real) * C);
}

void k_scale(real *x, int ld, int N, int C, real a) {
    for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) x[(size_t)r * ld + c] *= a;
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

void k_swiglu_bwd_b16(const real *dh, const uint16_t *g, const uint16_t *u, real *dg, real *du, size_t n) {
#pragma omp parallel for simd schedule(static)
    for (size_t j = 0; j < n; j++) {
        real ga = eid_bf16_float(g[j]), ua = eid_bf16_float(u[j]), sg = k_sigmoid(ga);
        du[j] = dh[j] * ga * sg;
        dg[j] = dh[j] * ua * sg * (1 + ga * (1 - sg));
    }
}

void k_to_bf16(uint16_t *dst, const real *src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t j = 0; j < n; j++) dst[j] = eid_bf16_bits((float)src[j]);
}

void k_from_bf16(real *dst, const uint16_t *src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (size_t j = 0; j < n; j++) dst[j] = eid_bf16_float(src[j]);
}
