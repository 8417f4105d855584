/* linrec.h — diagonal linear recurrences whose state is one number per channel, and the gates of
 * the two mixers built on them: Hawk's RG-LRU (docs/layers.md §12) and Birdie's gated SSM
 * (docs/layers.md §13). CPU in kernels/cpu/linrec.c.
 *
 *   h_t[c] = a_t[c]·h_{t−1}[c] + b_t[c]          (the output is the state itself)
 *
 * Layouts: a, b, h [B,T,C] (row stride C); M = B·T tokens; flags [B·T] or NULL (docs/layers.md §0.6).
 * Channels c ≥ rev_from run right to left with the cut rule of docs/layers.md §8.1 (rev_from = C:
 * the causal layer). */
#ifndef EIDETIC_KERNELS_LINREC_H
#define EIDETIC_KERNELS_LINREC_H
#include <stddef.h>
#include <stdint.h>
#include "core/common.h"

/* Forward. The carry a_t·h_{t−1} is dropped at SEG_START; PAD tokens are absent (no step, h = 0
 * written there). S0, Sfinal: [B, C] with row stride ldS (the decode-state layout; may alias; NULL =
 * zeros / not wanted): forward channels start from S0 and end in Sfinal, so a pass over p1 then
 * one over p2 from Sfinal == one pass over p1‖p2. Reverse channels ignore S0 and get 0 in Sfinal. */
void k_linrec_fwd(const real *a, const real *b, real *h, int B, int T, int C, const uint8_t *flags, int rev_from,
                  const real *S0, real *Sfinal, size_t ldS);
/* Adjoint. h = the forward's output (it is every state, so nothing is recomputed and nothing is
 * divided, docs/layers.md §0.7); dh = ∂L/∂h. Writes da, db (=), 0 at PAD. S0 as in the forward (the
 * state before a row's first token, for da there; no gradient flows into it). */
void k_linrec_bwd(const real *a, const real *h, const real *dh, real *da, real *db, int B, int T, int C,
                  const uint8_t *flags, int rev_from, const real *S0, size_t ldS);
/* One token for nseq sequences: sequence s's state [C] at h + s·ldh; a, b, y [nseq, C]; y = new h. */
void k_linrec_step(real *h, size_t ldh, const real *a, const real *b, real *y, int nseq, int C);

/* RG-LRU gates (docs/layers.md §12.2), c = 8. x [M,R] (row stride ldx) is the conv output; gr, gi
 * [M,R] hold x·W_a and x·W_i on entry and the pre-activations + biases br, bi on exit (kept for
 * backward). p [R] = rg_lru.recurrent_param. Writes
 *   a = exp(−c·σ(gr)·softplus(p)),   b = m·σ(gi)·x,   m = sqrt(1 − a²), or 1 at a fresh token;
 * a fresh token is a SEG_START, or the first real token of a row that starts fresh: every row when
 * mark is NULL, else row r iff mark[r·ldm] == 0 (the decode state's marker; set to 1 here once the
 * row has a real token). a = b = 0 at PAD. br = bi = NULL: gr, gi already hold the biased
 * pre-activations and stay as they are (backward recomputes a, b this way: the same bits). */
void k_rglru_gate_fwd(const real *x, int ldx, real *gr, real *gi, const real *br, const real *bi, const real *p,
                      real *a, real *b, int B, int T, int R, const uint8_t *flags, real *mark, size_t ldm);
/* Its adjoint for rows that started fresh (training): from da, db (∂L/∂a, ∂L/∂b) writes dx (stride
 * lddx), dgr, dgi (=) and adds ∂L/∂p into gp. The derivative of sqrt(u) is bounded as the reference
 * code does: 1/sqrt(max(4u, 1e−6)) (at most 1000). */
void k_rglru_gate_bwd(const real *x, int ldx, const real *gr, const real *gi, const real *p, const real *da,
                      const real *db, real *dx, int lddx, real *dgr, real *dgi, real *gp, int B, int T, int R,
                      const uint8_t *flags);

/* Gated-SSM gates (docs/layers.md §13.2): proj [M, 4R] (row stride ldp) holds the pre-activations
 * [i | z | o | f]; writes a = σ(f), b = σ(i)·z ([M,R] each). */
void k_gssm_gate_fwd(const real *proj, int ldp, real *a, real *b, int M, int R);
/* Its adjoint: writes the i, z and f columns of dproj (stride lddp) from da, db; the o columns are
 * left to k_mul_gelu_bwd. */
void k_gssm_gate_bwd(const real *proj, int ldp, const real *da, const real *db, real *dproj, int lddp, int M, int R);

/* out = gelu(g) ⊙ y on [N, C] views; approx = 1: the tanh form (gelu_pytorch_tanh), 0: the exact
 * x·Φ(x). out may alias y. */
void k_mul_gelu_fwd(const real *g, int ldg, const real *y, int ldy, real *out, int ldo, int N, int C, int approx);
/* Its adjoint: from d = ∂L/∂out in dy_io, dg = d·y·gelu'(g) (written, stride lddg), then
 * dy_io = d·gelu(g) (in place). */
void k_mul_gelu_bwd(real *dy_io, int lddy, const real *y, int ldy, const real *g, int ldg, real *dg, int lddg, int N,
                    int C, int approx);

/* y[n, c] += bias[c] on an [N, C] view with row stride ldy. */
void k_bias_add(real *y, int ldy, const real *bias, int N, int C);

#endif
