/* selective.c — elementwise kernels of the Mamba-1 / Longhorn block (kernels/selective.h), CPU.
 * Each runs parallel over tokens and vectorised over channels. */
#include "kernels/selective.h"
#include "kernels/kernels.h"

static inline real softplus(real x) { return x > 20 ? x : rlog1p(rexp(x)); }

/* Δ from the stored pre in both k_sel_delta_fwd and k_sel_softplus (one function, so the bits agree) */
void k_sel_softplus(const real *pre, real *delta, int M, int I) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *restrict pr = pre + (size_t)m * I;
        real *restrict dl = delta + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) dl[i] = softplus(pr[i]);
    }
}

void k_sel_delta_fwd(real *pre, const real *bias, real *delta, int M, int I) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        real *restrict pr = pre + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) pr[i] += bias[i];
    }
    k_sel_softplus(pre, delta, M, I);
}

void k_sel_delta_bwd(real *ddelta, const real *pre, int M, int I) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        real *restrict d = ddelta + (size_t)m * I;
        const real *restrict p = pre + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) d[i] *= k_sigmoid(p[i]);
    }
}

void k_sel_neg_exp(const real *alog, real *A, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 16384)
    for (size_t j = 0; j < n; j++) A[j] = -rexp(alog[j]);
}

void k_sel_alog_bwd(const real *dA, const real *A, real *galog, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= 16384)
    for (size_t j = 0; j < n; j++) galog[j] += dA[j] * A[j];
}

void k_sel_beta_eps_fwd(real *beta, const real *bias, const real *k, int ldk, real *eps, int M, int I, int N) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *km = k + (size_t)m * ldk;
        real K2 = 0;
        for (int n = 0; n < N; n++) K2 += km[n] * km[n];
        real *restrict bm = beta + (size_t)m * I, *restrict em = eps + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            real b = k_sigmoid(bm[i] + bias[i]);
            bm[i] = b;
            em[i] = b / (1 + b * K2);
        }
    }
}

void k_sel_eps_bwd(const real *k, int ldk, const real *beta, const real *deps, real *dk, int lddk, real *dbraw, int M,
                   int I, int N) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *km = k + (size_t)m * ldk;
        real *dkm = dk + (size_t)m * lddk;
        real K2 = 0;
        for (int n = 0; n < N; n++) K2 += km[n] * km[n];
        const real *restrict bm = beta + (size_t)m * I, *restrict dem = deps + (size_t)m * I;
        real *restrict dbm = dbraw + (size_t)m * I;
        real dK2 = 0;
#pragma omp simd reduction(+ : dK2)
        for (int i = 0; i < I; i++) {
            real b = bm[i], den = 1 + b * K2, de = dem[i] / (den * den);
            dK2 -= de * b * b;
            dbm[i] = de * b * (1 - b);
        }
        for (int n = 0; n < N; n++) dkm[n] += 2 * km[n] * dK2;
    }
}

/* gated from the stored y in both k_sel_skip_gate_fwd and k_sel_gate_fwd (one function: the same bits) */
void k_sel_gate_fwd(const real *xz, const real *y, real *gated, int M, int I) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *restrict z = xz + (size_t)m * 2 * I + I, *restrict ym = y + (size_t)m * I;
        real *restrict gm = gated + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) gm[i] = ym[i] * z[i] * k_sigmoid(z[i]);
    }
}

void k_sel_skip_gate_fwd(const real *Dp, const real *u, const real *xz, real *y, real *gated, int M, int I) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *restrict um = u + (size_t)m * I;
        real *restrict ym = y + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) ym[i] += Dp[i] * um[i];
    }
    k_sel_gate_fwd(xz, y, gated, M, I);
}

void k_sel_gate_bwd(const real *Dp, const real *xz, const real *y, real *dgated, real *dxz, real *du, int M, int I) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *restrict z = xz + (size_t)m * 2 * I + I, *restrict ym = y + (size_t)m * I;
        real *restrict g = dgated + (size_t)m * I, *restrict dx = dxz + (size_t)m * 2 * I;
        real *restrict dz = dxz + (size_t)m * 2 * I + I, *restrict dum = du + (size_t)m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            real sz = k_sigmoid(z[i]), gi = g[i];
            dz[i] = gi * ym[i] * sz * (1 + z[i] * (1 - sz));
            g[i] = gi * z[i] * sz;
            dum[i] = Dp[i] * g[i];
            dx[i] = 0;
        }
    }
}
