/* selective.c — shared size resolution of the Mamba-1 / Longhorn block. */
#include "layers/selective.h"
#include <string.h>
#include "core/common.h"
#include "core/runtime.h"
#include "kernels/kernels.h"

int selective_resolve(LayerCfg *c, int D, const char *mixer) {
    if (!c->expand) c->expand = 2;
    if (!c->d_state) c->d_state = 16;
    if (!c->d_conv) c->d_conv = 4;
    if (!c->dt_rank) c->dt_rank = EID_CDIV(D, 16);
    if (!c->chunk) c->chunk = 64;
    if (c->expand < 1 || c->expand > 16) return eid_error("%s: expand must be in [1, 16], got %d", mixer, c->expand), -1;
    if (c->d_state < 1 || c->d_state > 256)
        return eid_error("%s: d_state must be in [1, 256], got %d", mixer, c->d_state), -1;
    if (c->d_conv < 1 || c->d_conv > 16)
        return eid_error("%s: d_conv must be in [1, 16], got %d", mixer, c->d_conv), -1;
    if (c->dt_rank < 1) return eid_error("%s: dt_rank must be >= 1, got %d", mixer, c->dt_rank), -1;
    if (c->chunk < 1) return eid_error("%s: chunk must be >= 1, got %d", mixer, c->chunk), -1;
    return 0;
}

void selective_input_bwd(const SelectiveBwd *a, real *const *p, real *const *g, real *dx) {
    int M = a->B * a->T, I = a->I, ldx = a->R + 2 * a->N;
    /* pre = W_dt·r + b_dt */
    eid_gemm(1, 0, I, a->R, M, 1, a->d_pre, I, a->xdbl, ldx, 1, g[SEL_DT_W], a->R);
    k_colsum_add(a->d_pre, I, NULL, 0, M, I, g[SEL_DT_B]);
    eid_gemm(0, 0, M, a->R, I, 1, a->d_pre, I, p[SEL_DT_W], a->R, 0, a->d_xdbl, ldx);
    /* xdbl = W_x·u */
    eid_gemm(1, 0, ldx, I, M, 1, a->d_xdbl, ldx, a->u, I, 1, g[SEL_X], I);
    eid_gemm(0, 0, M, I, ldx, 1, a->d_xdbl, ldx, p[SEL_X], I, 1, a->d_u, I);
    /* u = silu(xc): silu'(v) = σ(v)(1 + v(1 − σ(v))) */
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < (size_t)M * I; j++) {
        real sg = k_sigmoid(a->xc[j]);
        a->d_u[j] *= sg * (1 + a->xc[j] * (1 - sg));
    }
    /* xc = conv(x half of xz) */
    for (int m = 0; m < M; m++) memset(a->d_xz + (size_t)m * 2 * I, 0, sizeof(real) * I);
    k_conv1d_bwd(a->d_u, I, a->xz, 2 * I, p[SEL_CONV_W], a->d_xz, 2 * I, g[SEL_CONV_W], g[SEL_CONV_B], a->B, a->T, I,
                 a->K, a->flags, NULL);
    /* xz = W_in·x */
    eid_gemm(1, 0, 2 * I, a->D, M, 1, a->d_xz, 2 * I, a->x_in, a->D, 1, g[SEL_IN], a->D);
    eid_gemm(0, 0, M, a->D, 2 * I, 1, a->d_xz, 2 * I, p[SEL_IN], a->D, 1, dx, a->D);
}

void selective_skip_gate(int I, const real *Dp, const real *u, const real *xz, real *y, real *gated, size_t M) {
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        const real *restrict z = xz + m * 2 * I + I, *restrict um = u + m * I;
        real *restrict ym = y + m * I, *restrict gm = gated + m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            ym[i] += Dp[i] * um[i];
            gm[i] = ym[i] * z[i] * k_sigmoid(z[i]);
        }
    }
}

void selective_gate_bwd(int I, const real *Dp, const real *xz, const real *y, real *dgated, real *dxz, real *du,
                        size_t M) {
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        const real *restrict z = xz + m * 2 * I + I, *restrict ym = y + m * I;
        real *restrict g = dgated + m * I, *restrict dz = dxz + m * 2 * I + I, *restrict dum = du + m * I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            real sz = k_sigmoid(z[i]), gi = g[i];
            dz[i] = gi * ym[i] * sz * (1 + z[i] * (1 - sz));
            g[i] = gi * z[i] * sz;
            dum[i] = Dp[i] * g[i];
        }
    }
}
