/* selective.c — what the Mamba-1 and Longhorn blocks share: sizes, the input path, the decode-state rings. */
#include "layers/selective.h"
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

void selective_input_fwd(const SeqInfo *s, int D, int I, int K, int ldx, real *const *p, const real *x, real *xz,
                         real *xc, real *u, real *xdbl, real *ring) {
    int M = s->B * s->T;
    eid_gemm(0, 1, M, 2 * I, D, 1, x, D, p[SEL_IN], D, 0, xz, 2 * I);
    k_conv1d_fwd(xz, 2 * I, p[SEL_CONV_W], p[SEL_CONV_B], xc, I, s->B, s->T, I, K, s->flags, ring, ring);
    k_silu_fwd(xc, I, u, I, M, I);
    eid_gemm(0, 1, M, ldx, I, 1, u, I, p[SEL_X], I, 0, xdbl, ldx);
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
    /* u = silu(xc) */
    k_silu_bwd(a->xc, I, a->d_u, I, M, I);
    /* xc = conv(x half of xz); the x half of d_xz is 0 on entry */
    k_conv1d_bwd(a->d_u, I, a->xz, 2 * I, p[SEL_CONV_W], a->d_xz, 2 * I, g[SEL_CONV_W], g[SEL_CONV_B], a->B, a->T, I,
                 a->K, a->flags, NULL);
    /* xz = W_in·x */
    eid_gemm(1, 0, 2 * I, a->D, M, 1, a->d_xz, 2 * I, a->x_in, a->D, 1, g[SEL_IN], a->D);
    eid_gemm(0, 0, M, a->D, 2 * I, 1, a->d_xz, 2 * I, p[SEL_IN], a->D, 1, dx, a->D);
}

void selective_rings(real *state, size_t ss, real *ring, int B, int I, int K, int to_state) {
    size_t nr = (size_t)I * (K - 1);
    if (nr == 0) return;
    if (to_state) k_copy(ring, (int)nr, state, (int)ss, B, (int)nr);
    else k_copy(state, (int)ss, ring, (int)nr, B, (int)nr);
}
