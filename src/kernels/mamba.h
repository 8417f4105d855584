/* mamba.h — the Mamba-1 (S6) selective scan kernels (docs/layers.md §1.2, §1.4), CPU in
 * kernels/cpu/scan_mamba.c.
 *
 *   h_t[i,n] = exp(Δ_t[i]·A[i,n])·h_{t−1}[i,n] + Δ_t[i]·B_t[n]·u_t[i] ;   y_t[i] = Σ_n h_t[i,n]·C_t[n]
 *
 * u, delta, y: [B,T,I] (row stride I). Bm, Cm: [B,T,N] with row stride ldbc (slices of x_proj's
 * output). A: [I,N] (the decay rates, A = −exp(A_log), already negated). h is reset to 0 at
 * SEG_START tokens (flags [B*T] or NULL); PAD tokens are absent (no step, y = 0, no gradient).
 * Channels i ≥ rev_from run right to left with the cut rule of docs/layers.md §8.1 (rev_from = I:
 * all forward). The D·u skip is not part of the scan. */
#ifndef EIDETIC_KERNELS_MAMBA_H
#define EIDETIC_KERNELS_MAMBA_H
#include "core/common.h"

/* Forward. S0, Sfinal: [B, I, N] with row stride ldS (the decode-state layout; may alias; NULL =
 * zeros / not wanted): forward channels start from S0 and end in Sfinal, so a pass over p1 then one
 * over p2 from Sfinal == one pass over p1‖p2; reverse channels ignore S0 and get 0 in Sfinal.
 * Sck [B, ceil(T/chunk), I, N] receives, per chunk, the state entering it (forward channels) or the
 * state to its right (reverse channels), for backward; may be NULL. */
void k_mamba_scan_fwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      real *y, int B, int T, int I, int N, int chunk, const uint8_t *flags, int rev_from,
                      const real *S0, real *Sfinal, size_t ldS, real *Sck);

/* Adjoint (docs/layers.md §1.4) with chunk recompute from Sck (§0.7, never divides by a decay).
 * dy [B,T,I] = ∂L/∂y (scan output, without the D skip). Accumulates du (+=) [B,T,I]; writes (=)
 * ddelta [B,T,I], dA [I,N], dB, dC ([B,T,N] with row stride ldbc); zeros at PAD. No gradient flows
 * into S0. work: k_mamba_scan_bwd_work(...) reals, from the shape alone. The result is deterministic
 * for a given thread count. */
size_t k_mamba_scan_bwd_work(int B, int T, int I, int N, int chunk);
void k_mamba_scan_bwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      const real *dy, const real *Sck, real *du, real *ddelta, real *dA, real *dB, real *dC, int B,
                      int T, int I, int N, int chunk, const uint8_t *flags, int rev_from, real *work);

/* One token for nseq sequences: sequence s's h [I, N] at h + s·ldh (the decode-state row stride); u, delta, y [nseq, I]; Bm, Cm [nseq, N] stride ldbc. */
void k_mamba_scan_step(real *h, size_t ldh, const real *u, const real *delta, const real *A, const real *Bm,
                       const real *Cm, int ldbc, real *y, int nseq, int I, int N);

#endif
