/* ssd.h — Mamba-2 state-space-duality kernels (docs/layers.md §3), CPU implementations in kernels/cpu/ssd.c.
 *
 * Per head h (P channels) with group g = h / (H/G) (N-dim B and C shared by the group's heads):
 *   S_t = α_t·S_{t−1} + Δ_t·x_t ⊗ B_t   (S ∈ R^{P×N}, α_t = exp(Δ_t·a_h), a_h = −exp(A_log_h), reset at SEG_START)
 *   y_t = S_t·C_t + D_h·x_t
 * Layout: xbc [B,T,*] with row stride ld holds x (I = H·P channels, head-major) at column 0, B (G·N) at
 * column I and C (G·N) at column I + G·N. dt [B,T,H] holds Δ (after softplus). y [B,T,I] stride I. */
#ifndef EIDETIC_SSD_H
#define EIDETIC_SSD_H
#include "core/common.h"

/* Chunked SSD forward (docs/layers.md §3.3, resets §3.4) with chunk length `chunk`; y is overwritten
 * (includes D·x; 0 at PAD tokens). Sck [B, H, nchunks, P, N] receives the state entering every chunk
 * (for backward; reverse heads store theirs in run order, i.e. reversed).
 * flags [B·T] or NULL (docs/layers.md §0.6): SEG_START resets, PAD tokens are absent (no decay, no
 * input, gradient 0). Heads h >= rev_from run right-to-left with the Birdie cut (docs/layers.md §8);
 * rev_from = H: all heads forward.
 * S0 (may be NULL = zeros) and Sfinal (may be NULL): per row b at offset b·ldS, [H, P, N] each: the
 * state before the first token (a row continues from it unless its first non-PAD token has SEG_START)
 * and after the last one, so fwd(p1) → Sfinal → fwd(p2) == fwd(p1‖p2). Reverse heads ignore S0 and get
 * a zero Sfinal. S0 may alias Sfinal. Scratch is allocated per thread inside (sized from the shapes). */
void k_ssd_fwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y, real *Sck, int B,
               int T, int H, int P, int G, int N, int chunk, const uint8_t *flags, int rev_from, const real *S0,
               real *Sfinal, size_t ldS);
/* Backward: dy [B,T,I] = ∂L/∂y (ignored at PAD). Accumulates dxbc (x, B and C columns, same stride ld),
 * ddt [B,T,H] (∂L/∂Δ), dA_log [H], dD [H]. Uses Sck from the forward (which also holds S0); never
 * reconstructs a state by division. No gradient flows to S0. work: k_ssd_work(B, T, H, N) reals. */
size_t k_ssd_work(int B, int T, int H, int N);
void k_ssd_bwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, const real *dy,
               const real *Sck, real *dxbc, real *ddt, real *dA_log, real *dD, int B, int T, int H, int P, int G,
               int N, int chunk, const uint8_t *flags, int rev_from, real *work);
/* One token for nseq sequences (the recurrent form, §3.2): sequence s's S [H, P, N] at S + s·ldS (the decode-state row stride); xbc [nseq, ld]; dt [nseq, H];
 * y [nseq, I]. */
void k_ssd_step(real *S, size_t ldS, const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp,
                real *y, int nseq, int H, int P, int G, int N);

/* Grouped RMSNorm: each row of C channels is split into G groups of C/G; y = w ⊙ x·rstd(group).
 * rstd [N·G]. Backward writes dx (overwrite; dx may alias dy) and accumulates dw. */
void k_gnorm_fwd(const real *x, const real *w, real *y, real *rstd, int N, int C, int G, real eps);
void k_gnorm_bwd(const real *dy, const real *x, const real *w, const real *rstd, real *dx, real *dw, int N, int C,
                 int G);

/* Δ = softplus(dt + bias) (docs/layers.md §3.2): dt [M, H] with row stride ld, bias [H], dlt [M, H]. */
void k_ssd_delta_fwd(const real *dt, int ld, const real *bias, real *dlt, int M, int H);
/* Its adjoint: ddt_raw [M, H] (stride ldd) = ddlt·σ(dt + bias) (overwrite); dbias += Σ_rows. */
void k_ssd_delta_bwd(const real *dt, int ld, const real *bias, const real *ddlt, real *ddt_raw, int ldd, real *dbias,
                     int M, int H);

#endif
