/* kernels.h — the compute kernels layers call (CPU implementations in kernels/cpu/).
 *
 * Layers never loop over big tensors themselves for anything but trivial elementwise work: they
 * call eid_gemm() (core/runtime.h) and these functions. A CUDA backend provides the same symbols.
 * Layout conventions: activations are row-major [B, T, C] with a row stride `ld` (>= C) so that
 * slices of a fused projection (e.g. the x half of in_proj's output) are used in place. */
#ifndef EIDETIC_KERNELS_H
#define EIDETIC_KERNELS_H
#include <stdint.h>
#include "core/common.h"

static inline real k_sigmoid(real x) { return 1 / (1 + rexp(-x)); }

/* RMSNorm, docs/layers.md §0.3: y = w ⊙ x / sqrt(mean(x²) + eps). x,y [N, D]; rstd [N] saved. */
void k_rmsnorm_fwd(const real *x, const real *w, real *y, real *rstd, int N, int D, real eps);
/* dx += ∂L/∂x, dw += ∂L/∂w (dw accumulation reduced over rows without races). */
void k_rmsnorm_bwd(const real *dy, const real *x, const real *w, const real *rstd, real *dx, real *dw, int N, int D);

/* y = silu(x) elementwise on [N, C] views with strides. */
void k_silu_fwd(const real *x, int ldx, real *y, int ldy, int N, int C);
/* SiLU backward in place: dy *= silu'(x) = σ(x)(1 + x(1 − σ(x))), on [N, C] views with strides. */
void k_silu_bwd(const real *x, int ldx, real *dy, int lddy, int N, int C);

/* Gate by SiLU: out = y ⊙ silu(z) on [N, C] views (out may alias y). */
void k_mul_silu_fwd(const real *y, int ldy, const real *z, int ldz, real *out, int ldo, int N, int C);
/* Its adjoint: given g = ∂L/∂out (in dy_io), dz = g·y·silu'(z) (overwrite, stride lddz) and then
 * dy_io = g·silu(z) (in place). */
void k_mul_silu_bwd(real *dy_io, int lddy, const real *y, int ldy, const real *z, int ldz, real *dz, int lddz, int N,
                    int C);
/* x[N, C] (row stride ld) = 0. */
void k_zero(real *x, int ld, int N, int C);
/* y[N, C] (stride ldy) = x[N, C] (stride ldx). */
void k_copy(const real *x, int ldx, real *y, int ldy, int N, int C);
/* x[N, C] (row stride ld) *= a. */
void k_scale(real *x, int ld, int N, int C, real a);

/* SwiGLU gate (docs/layers.md §0.3) on n elements: h = silu(g) ⊙ u; backward from dh:
 * dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = dh ⊙ silu(g) (overwritten). */
void k_swiglu_fwd(const real *g, const real *u, real *h, size_t n);
void k_swiglu_bwd(const real *dh, const real *g, const real *u, real *dg, real *du, size_t n);
/* The same backward from g, u saved in bf16 (Layer.act16): widened exactly, then as above. */
void k_swiglu_bwd_b16(const real *dh, const uint16_t *g, const uint16_t *u, real *dg, real *du, size_t n);

/* dst[n] = src[n] rounded to bf16 (core/bf16.h: nearest, ties to even): an activation saved in bf16. */
void k_to_bf16(uint16_t *dst, const real *src, size_t n);
/* dst[n] = src[n] widened (exact): a bf16-saved activation back in fp32 for backward. */
void k_from_bf16(real *dst, const uint16_t *src, size_t n);

/* out[c] += Σ_m a[m,c]·b[m,c] (b == NULL: Σ_m a[m,c]); a, b [M, C] with row strides lda, ldb. */
void k_colsum_add(const real *a, int lda, const real *b, int ldb, int M, int C, real *out);

/* Causal depthwise conv1d, docs/layers.md §0.5, segment-aware (flags may be NULL).
 * x [B,T,C] stride ldx; w [C,K]; b [C]; y [B,T,C] stride ldy. K ≤ EID_CONV_MAX_K (layers check it).
 * Each row starts from ring0 [B, C, K−1] (its last K−1 inputs, oldest first; NULL = zeros) unless a
 * SEG_START clears it; PAD tokens are absent (y = 0 there, never an input to a later token).
 * ring1 [B, C, K−1] (may be NULL, may alias ring0) receives the last K−1 inputs after the row, so
 * fwd over p1 then over p2 from that ring == fwd over p1‖p2, and the ring is the decode state. */
#define EID_CONV_MAX_K 16
void k_conv1d_fwd(const real *x, int ldx, const real *w, const real *bias, real *y, int ldy, int B, int T, int C,
                  int K, const uint8_t *flags, const real *ring0, real *ring1);
/* dx += , dw += , db += ; dy [B,T,C] stride lddy; dx stride lddx; ring0 as in the forward (no gradient). */
void k_conv1d_bwd(const real *dy, int lddy, const real *x, int ldx, const real *w, real *dx, int lddx, real *dw,
                  real *db, int B, int T, int C, int K, const uint8_t *flags, const real *ring0);
/* One token: sequence s's ring [C, K−1] (its last K−1 inputs) at ring + s·ldr (the decode-state row stride); x [nseq, C] stride ldx; y [nseq,C] stride ldy. */
void k_conv1d_step(real *ring, size_t ldr, const real *x, int ldx, const real *w, const real *bias, real *y, int ldy,
                   int nseq, int C, int K);

/* Longhorn diagonal scan, docs/layers.md §2.2:
 *   S_t[i,n] = (1 − ε_t[i] k_t[n]²) S_{t−1}[i,n] + ε_t[i] u_t[i] k_t[n] ;  y_t[i] = Σ_n S_t[i,n] q_t[n]
 * u, eps, y: [B,T,I] (stride I). k, q: [B,T,N] with row stride ldkq. flags [B·T] or NULL.
 * Reset at SEG_START; PAD tokens are absent (no step, y = 0). Channels i ≥ rev_from run right to left
 * with the cut rule of docs/layers.md §8.1 (rev_from = I: all forward).
 * S0, Sfinal: [B, I, N] with row stride ldS (the decode-state layout; may alias; NULL = zeros / not
 * wanted): forward channels start from S0 and end in Sfinal, so a pass over p1 then one over p2 from
 * Sfinal == one pass over p1‖p2. Reverse channels ignore S0 and get 0 in Sfinal (never carried).
 * Sck [B, ceil(T/chunk), I, N] receives, per chunk, the state entering it (forward channels) or the
 * state to its right (reverse channels), for backward; may be NULL. */
void k_longhorn_scan_fwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, real *y, int B, int T,
                         int I, int N, int chunk, const uint8_t *flags, int rev_from, const real *S0, real *Sfinal,
                         size_t ldS, real *Sck);
/* Adjoint of the scan (docs/layers.md §2.5) with chunk recompute from Sck (§0.7, never divides).
 * dy [B,T,I] = ∂L/∂y (scan output, without the D skip). Accumulates du (+=); writes deps, and dk, dq
 * (=, columns of [B,T,N] with row stride ldkq); zeros at PAD. No gradient flows into S0.
 * work: k_longhorn_scan_bwd_work(B, T, I, N, chunk) reals (from the shape alone). */
size_t k_longhorn_scan_bwd_work(int B, int T, int I, int N, int chunk);
void k_longhorn_scan_bwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, const real *dy,
                         const real *Sck, real *du, real *deps, real *dk, real *dq, int B, int T, int I, int N,
                         int chunk, const uint8_t *flags, int rev_from, real *work);
/* One token for nseq sequences; sequence s's S [I, N] at S + s·ldS (the decode-state row stride). */
void k_longhorn_scan_step(real *S, size_t ldS, const real *u, const real *eps, const real *k, const real *q, int ldkq,
                          real *y, int nseq, int I, int N);

/* Softmax cross-entropy over rows: logits [M,V] is overwritten by dL/dlogits = (p − onehot)·scale.
 * Returns the summed loss; correct[m] = (argmax == label). */
double k_xent_fwd_bwd(real *logits, const int *labels, int M, int V, real scale, uint8_t *correct);

#endif
