/* gla.h — gated linear attention recurrence kernels (layers.md §4), CPU in kernels/cpu/gla_chunk.c.
 *
 * Per sequence b and head h (key dim dk, value dim dv), with per-key-channel log decay gk ≤ 0:
 *   S_t = diag(exp gk_t) · S_{t−1} + k_t ⊗ v_t        (S ∈ R^{dk×dv}; S := 0 before a SEG_START token)
 *   o_t = S_tᵀ · (scale · q_t)                           (scale = dk^−1/2)
 * Layouts (contiguous rows): q, k, gk [B, T, H·dk]; v, o [B, T, H·dv]; heads concatenated per row.
 * The training form is chunked with secondary chunking (§4.3): every exponent is ≤ 0, so any
 * accumulated log decay stays finite. */
#ifndef EIDETIC_GLA_H
#define EIDETIC_GLA_H
#include "core/common.h"

/* Per-thread scratch (reals) of k_gla_chunk_fwd / k_gla_chunk_bwd for `nthreads` threads. */
size_t k_gla_work(int dk, int dv, int chunk, int nthreads);

/* Forward. o is overwritten. Sin [B, nchunks, H, dk, dv] receives the state entering every chunk
 * of `chunk` tokens (nchunks = ceil(T/chunk)); flags [B·T] or NULL. */
void k_gla_chunk_fwd(const real *q, const real *k, const real *v, const real *gk, real *o, int B, int T, int H,
                     int dk, int dv, real scale, int chunk, const uint8_t *flags, real *Sin, real *work);

/* Backward (adjoint of the forward above, chunk by chunk in reverse from the saved Sin; never
 * divides by a decay). do_ = ∂L/∂o. Accumulates dq (w.r.t. the unscaled q), dk, dv (+=);
 * writes dgk (=) through the decay-gradient identity of layers.md §0.7(4), per key dim. */
void k_gla_chunk_bwd(const real *q, const real *k, const real *v, const real *gk, const real *do_, const real *Sin,
                     real *dq, real *dk_, real *dv_, real *dgk, int B, int T, int H, int dk, int dv, real scale,
                     int chunk, const uint8_t *flags, real *work);

/* One token for nseq sequences (recurrent form). S [nseq, H, dk, dv]; q, k, gk [nseq, H·dk];
 * v, o [nseq, H·dv]; o overwritten. */
void k_gla_step(real *S, const real *q, const real *k, const real *v, const real *gk, real *o, int nseq, int H,
                int dk, int dv, real scale);

#endif
