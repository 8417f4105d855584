/* gla.h — gated linear attention recurrence kernels (docs/layers.md §4), CPU in kernels/cpu/gla_chunk.c.
 *
 * Per sequence b and head h (key dim dk, value dim dv), with per-key-channel log decay gk ≤ 0:
 *   S_t = diag(exp gk_t) · S_{t−1} + k_t ⊗ v_t        (S ∈ R^{dk×dv}; S := 0 before a SEG_START token)
 *   o_t = S_tᵀ · (scale · q_t)                           (scale = dk^−1/2)
 * Layouts (contiguous rows): q, k, gk [B, T, H·dk]; v, o [B, T, H·dv]; heads concatenated per row.
 * The training form is chunked with secondary chunking (docs/layers.md §4.3): every exponent is ≤ 0, so any
 * accumulated log decay stays finite. */
#ifndef EIDETIC_GLA_H
#define EIDETIC_GLA_H
#include "core/common.h"

/* Forward. o is overwritten (0 at PAD tokens). Sin [B, nchunks, H, dk, dv] receives the state entering
 * every chunk of `chunk` tokens (nchunks = ceil(T/chunk); reverse heads: in their run order).
 * flags [B·T] or NULL (docs/layers.md §0.6): SEG_START resets; PAD tokens are absent (no decay, no
 * input). Heads h >= rev_from run right-to-left with the Birdie cut (docs/layers.md §8); rev_from = H:
 * all heads forward. S0 (NULL = zeros) and Sfinal (may be NULL, may alias S0): per row b at offset
 * b·ldS, [H, dk, dv]: the state before the first token (a row continues from it unless its first
 * non-PAD token has SEG_START) and after the last, so fwd(p1) → Sfinal → fwd(p2) == fwd(p1‖p2).
 * Reverse heads ignore S0 and get a zero Sfinal. Scratch is allocated per thread from the shapes. */
void k_gla_chunk_fwd(const real *q, const real *k, const real *v, const real *gk, real *o, int B, int T, int H,
                     int dk, int dv, real scale, int chunk, const uint8_t *flags, int rev_from, const real *S0,
                     real *Sfinal, size_t ldS, real *Sin);

/* Backward (adjoint of the forward above, chunk by chunk in reverse from the saved Sin; never
 * divides by a decay). do_ = ∂L/∂o (ignored at PAD). Accumulates dq (w.r.t. the unscaled q), dk, dv (+=);
 * writes dgk (=) through the decay-gradient identity of docs/layers.md §0.7(4), per key dim. PAD
 * tokens get gradient 0. No gradient flows to S0. */
void k_gla_chunk_bwd(const real *q, const real *k, const real *v, const real *gk, const real *do_, const real *Sin,
                     real *dq, real *dk_, real *dv_, real *dgk, int B, int T, int H, int dk, int dv, real scale,
                     int chunk, const uint8_t *flags, int rev_from);

/* One token for nseq sequences (recurrent form). sequence s's S [H, dk, dv] at S + s·ldS (the decode-state row stride); q, k, gk [nseq, H·dk];
 * v, o [nseq, H·dv]; o overwritten. */
void k_gla_step(real *S, size_t ldS, const real *q, const real *k, const real *v, const real *gk, real *o, int nseq,
                int H, int dk, int dv, real scale);

/* Gate (docs/layers.md §4.2): pre [M, Dk] += bias (in place), gk = logsigmoid(pre)·inv_tau. */
void k_gla_gate_fwd(real *pre, const real *bias, real *gk, int M, int Dk, real inv_tau);
/* gk = logsigmoid(pre)·inv_tau alone, from the biased pre k_gla_gate_fwd left: the same bits it wrote
 * (backward recomputes gk instead of keeping it). */
void k_gla_gate_from_pre(const real *pre, real *gk, int M, int Dk, real inv_tau);
/* Its adjoint in place: dpre = dgk·(1 − σ(pre))·inv_tau (dgk given in dpre). */
void k_gla_gate_bwd(real *dpre, const real *pre, int M, int Dk, real inv_tau);
/* Output gate adjoint (docs/layers.md §4.5): gated = y ⊙ swish(g), y = w ⊙ o·rstd per head (dv channels).
 * Given dgated: dg = dgated·y·swish'(g) (overwrite) and dgated := dgated·swish(g) (in place). */
void k_gla_norm_gate_bwd(real *dgated, const real *g, const real *o, const real *w, const real *rstd, real *dg, int M,
                         int H, int dv);

#endif
