/* selective.h — elementwise kernels of the Mamba-1 / Longhorn block around the scan
 * (docs/layers.md §1.2, §1.4, §2.2, §2.5), CPU in kernels/cpu/selective.c.
 * Layouts: M = B·T tokens (or nseq sequences); per-channel tensors [M, I] with row stride I;
 * xz [M, 2I] = in_proj's output, x half then z half. */
#ifndef EIDETIC_KERNELS_SELECTIVE_H
#define EIDETIC_KERNELS_SELECTIVE_H
#include "core/common.h"

/* Mamba's step size: pre += b_dt (in place, kept for backward), Δ = softplus(pre) (docs/layers.md §0.1:
 * x if x > 20 else log1p(exp x)). pre and delta must not alias. */
void k_sel_delta_fwd(real *pre, const real *bias, real *delta, int M, int I);
/* Δ = softplus(pre) alone, from the biased pre k_sel_delta_fwd left: the same bits it wrote (backward
 * recomputes Δ instead of keeping it). */
void k_sel_softplus(const real *pre, real *delta, int M, int I);
/* Its backward in place: dpre = dΔ ⊙ σ(pre). */
void k_sel_delta_bwd(real *ddelta, const real *pre, int M, int I);
/* A = −exp(A_log) over n entries. */
void k_sel_neg_exp(const real *alog, real *A, size_t n);
/* A_log's gradient from A's: galog += dA ⊙ A (since ∂A/∂A_log = A). */
void k_sel_alog_bwd(const real *dA, const real *A, real *galog, size_t n);

/* Longhorn's step (docs/layers.md §2.2): beta holds W_dt·r on entry and β = σ(W_dt·r + b_dt) on exit;
 * ε = β / (1 + β‖k_t‖²) with k [M, N] at row stride ldk. */
void k_sel_beta_eps_fwd(real *beta, const real *bias, const real *k, int ldk, real *eps, int M, int I, int N);
/* Its backward (docs/layers.md §2.5): dβ = dε/(1+βK2)², dK2 = −Σ_i dε β²/(1+βK2)², dk += 2k·dK2
 * (dk [M, N] at row stride lddk), dbraw = dβ·β(1−β) (written). */
void k_sel_eps_bwd(const real *k, int ldk, const real *beta, const real *deps, real *dk, int lddk, real *dbraw, int M,
                   int I, int N);

/* The output path: y += D ⊙ u ; gated = y ⊙ silu(z), z = the z half of xz. */
void k_sel_skip_gate_fwd(const real *Dp, const real *u, const real *xz, real *y, real *gated, int M, int I);
/* Its second half alone, gated = y ⊙ silu(z) from the y it left: the same bits (backward recomputes
 * gated instead of keeping it). */
void k_sel_gate_fwd(const real *xz, const real *y, real *gated, int M, int I);
/* Its backward: dgated becomes dy_core = dgated ⊙ silu(z) (in place); dxz's z half = dz =
 * dgated ⊙ y ⊙ silu'(z) and its x half = 0 (the conv backward accumulates there); du = D ⊙ dy_core
 * (written). y includes the D skip (it is what the gate multiplied). */
void k_sel_gate_bwd(const real *Dp, const real *xz, const real *y, real *dgated, real *dxz, real *du, int M, int I);

#endif
