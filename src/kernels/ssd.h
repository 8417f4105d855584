/* ssd.h — Mamba-2 state-space-duality kernels (layers.md §3), CPU implementations in kernels/cpu/ssd.c.
 *
 * Per head h (P channels) with group g = h / (H/G) (N-dim B and C shared by the group's heads):
 *   S_t = α_t·S_{t−1} + Δ_t·x_t ⊗ B_t   (S ∈ R^{P×N}, α_t = exp(Δ_t·a_h), a_h = −exp(A_log_h), reset at SEG_START)
 *   y_t = S_t·C_t + D_h·x_t
 * Layout: xbc [B,T,*] with row stride ld holds x (I = H·P channels, head-major) at column 0, B (G·N) at
 * column I and C (G·N) at column I + G·N. dt [B,T,H] holds Δ (after softplus). y [B,T,I] stride I. */
#ifndef EIDETIC_SSD_H
#define EIDETIC_SSD_H
#include "core/common.h"

/* Chunked SSD forward (§3.3, resets §3.4) with chunk length `chunk`; y is overwritten (includes D·x).
 * Sin [B, H, nchunks, P, N] receives the state entering every chunk (chunk 0: zeros).
 * work: k_ssd_work(...) reals; nthreads = threads that may index it (eid_threads()). */
size_t k_ssd_work(int B, int T, int H, int P, int N, int chunk, int nthreads);
void k_ssd_fwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y, real *Sin, int B,
               int T, int H, int P, int G, int N, int chunk, const uint8_t *flags, real *work, int nthreads);
/* Backward: dy [B,T,I] = ∂L/∂y. Accumulates dxbc (x, B and C columns, same stride ld), ddt [B,T,H] (∂L/∂Δ),
 * dA_log [H], dD [H]. Uses Sin from the forward; never reconstructs a state by division. */
void k_ssd_bwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, const real *dy,
               const real *Sin, real *dxbc, real *ddt, real *dA_log, real *dD, int B, int T, int H, int P, int G,
               int N, int chunk, const uint8_t *flags, real *work, int nthreads);
/* One token for nseq sequences (the recurrent form, §3.2): S [nseq, H, P, N]; xbc [nseq, ld]; dt [nseq, H];
 * y [nseq, I]. */
void k_ssd_step(real *S, const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y,
                int nseq, int H, int P, int G, int N);

/* Grouped RMSNorm: each row of C channels is split into G groups of C/G; y = w ⊙ x·rstd(group).
 * rstd [N·G]. Backward writes dx (overwrite; dx may alias dy) and accumulates dw. */
void k_gnorm_fwd(const real *x, const real *w, real *y, real *rstd, int N, int C, int G, real eps);
void k_gnorm_bwd(const real *dy, const real *x, const real *w, const real *rstd, real *dx, real *dw, int N, int C,
                 int G);

#endif
