/* gla_ops.c — GLA's elementwise pieces around the recurrence (docs/layers.md §4.2, §4.5), CPU. */
#include <math.h>
#include "kernels/gla.h"
#include "kernels/kernels.h"

/* logsigmoid(x) = −softplus(−x), evaluated stably for either sign (vectorisable: core/vmath.h) */
static inline real logsigmoid(real x) { return (x < 0 ? x : 0) - rlog1p(rexp(-fabs(x))); }

/* gk from the stored pre in both k_gla_gate_fwd and k_gla_gate_from_pre (one function: the same bits) */
void k_gla_gate_from_pre(const real *pre, real *gk, int M, int Dk, real inv_tau) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *restrict pr = pre + (size_t)m * Dk;
        real *restrict gr = gk + (size_t)m * Dk;
#pragma omp simd
        for (int j = 0; j < Dk; j++) gr[j] = logsigmoid(pr[j]) * inv_tau;
    }
}

void k_gla_gate_fwd(real *pre, const real *bias, real *gk, int M, int Dk, real inv_tau) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        real *restrict pr = pre + (size_t)m * Dk;
#pragma omp simd
        for (int j = 0; j < Dk; j++) pr[j] += bias[j];
    }
    k_gla_gate_from_pre(pre, gk, M, Dk, inv_tau);
}

void k_gla_gate_bwd(real *dpre, const real *pre, int M, int Dk, real inv_tau) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        real *restrict dr = dpre + (size_t)m * Dk;
        const real *restrict pr = pre + (size_t)m * Dk;
#pragma omp simd
        for (int j = 0; j < Dk; j++) dr[j] *= inv_tau / (1 + rexp(pr[j]));
    }
}

void k_gla_norm_gate_bwd(real *dgated, const real *g, const real *o, const real *w, const real *rstd, real *dg, int M,
                         int H, int dv) {
    size_t Dv = (size_t)H * dv;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++)
        for (int hh = 0; hh < H; hh++) {
            size_t i0 = (size_t)m * Dv + (size_t)hh * dv;
            const real rs = rstd[(size_t)m * H + hh];
            const real *restrict gv = g + i0, *restrict ov = o + i0;
            real *restrict dgt = dgated + i0, *restrict dgr = dg + i0;
#pragma omp simd
            for (int j = 0; j < dv; j++) {
                real gg = gv[j], sg = k_sigmoid(gg), d = dgt[j];
                real y = w[j] * ov[j] * rs;
                dgr[j] = d * y * sg * (1 + gg * (1 - sg));
                dgt[j] = d * gg * sg;
            }
        }
}
