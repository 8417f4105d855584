/* bmojo.h — kernels of the B'MOJO layers (docs/layers.md §6, §7; docs/bmojo.md): the eidetic
 * store's innovation score and selection, attention over a per-query list of stored keys, and the
 * one-token decode over the two rings (raw window, fading window) and the store.
 *
 * Layouts as kernels/attention.h: q, o [B, T, H, dh]; k, v [B, T, Hkv, dh]; lse [B, T, H];
 * int arrays per token [B·T]. */
#ifndef EIDETIC_KERNELS_BMOJO_H
#define EIDETIC_KERNELS_BMOJO_H
#include "core/common.h"

/* hi[i] = lo_w[i] − 1: the fading keys of query i end just before its raw window (n tokens). */
void k_bmojo_fading_hi(const int *lo_w, int n, int *hi);

/* Innovation score [OURS, docs/layers.md §7.1] of n tokens: e = ‖u(k0) − u(p)‖² / C with
 * u(x) = x / rms(x) (u(0) = 0); k0, p [n, C] (row strides ldk, ldp). The same code serves the
 * parallel pass and decoding, so both round alike. */
void k_bmojo_score(const real *k0, int ldk, const real *p, int ldp, int n, int C, real *e);
/* Its gradient w.r.t. p, scaled by `scale` (the auxiliary loss mean_t e_t with stop-gradient on k0):
 * dp [n, C] overwritten; rows with skip[i] != 0 (PAD) get 0. */
void k_bmojo_score_dp(const real *k0, int ldk, const real *p, int ldp, int n, int C, real scale, const uint8_t *skip,
                      real *dp);
/* The `random` ablation: e = a fixed hash of the token's position in its segment, in [0, 1). */
real k_bmojo_score_random(long pos);
void k_bmojo_score_random_rows(const int *pos, int n, real *e);
/* out [B·T, D]: the F row of the previous real token of the same segment (0 at a segment start;
 * PAD rows 0). fstate (NULL: zeros) holds per row b, at fstate + b·ldst, the F of the token before
 * the first one (decode state) and receives the F of the row's last real token. */
void k_bmojo_shift_prev(const real *F, const uint8_t *flags, int B, int T, int D, real *fstate, size_t ldst, real *out);

/* Selection [OURS, docs/layers.md §7.2] for the parallel pass. Chunks of W real tokens counted
 * from each segment start (chunk of token i = pos[i] / W); in each chunk the ke tokens of largest
 * e (ties: the later position), listed by position in sel[b·T + 0 …] (row b's list). Query i of
 * chunk c sees the list entries [mlo[i], mhi[i]): the last M selected in chunks 0 … c−2 of its
 * segment (empty for PAD). scratch: 2·B·T ints (2·T per row). */
void k_bmojo_select(const real *e, const int *pos, const uint8_t *flags, int B, int T, int W, int ke, int M, int *sel,
                    int *mlo, int *mhi, int *scratch);

/* Attention of each query over its list of stored keys: keys sel[b·T + m], mlo[i] ≤ m < mhi[i]
 * (rotated k, v as the raw path's). o, lse as k_attn_fwd_range (empty: o = 0, lse = K_LSE_NONE). */
void k_attn_fwd_list(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                     int dh, const int *sel, const int *mlo, const int *mhi);
/* Its backward under the merged softmax (o, lse of the union): dq, dk, dv ACCUMULATE (the stored
 * keys are raw keys whose other gradient comes from the window pass). */
void k_attn_bwd_list(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                     real *dq, real *dk, real *dv, int B, int T, int H, int Hkv, int dh, const int *sel,
                     const int *mlo, const int *mhi);

/* Decode state of the attention part of one sequence (the SSM's state comes before it):
 *   raw ring K, V [Hkv, W, dh] (position p in slot p % W), fading ring K~, V~ [Hkv, 2W, dh]
 *   (slot p % 2W), the token counter; with a store (M > 0): the FIFO K, V [M, Hkv·dh], positions
 *   [M], count, next slot; the current chunk's candidates K, V [ke, Hkv·dh], positions, scores,
 *   count; the previous chunk's selection K, V, positions, count; then F_{t−1} [D] (layer's). */
typedef struct { int H, Hkv, dh, W, M, ke, D, random; double theta; } KBmojo; /* random: e = hash(p) */
size_t k_bmojo_state_size(const KBmojo *d);
/* One real token of one sequence at the state's position p: q (and qf, the fading query; == q when
 * tied), k, kf rotated in place by p; k, v into the raw ring, kf, vf into the fading ring; with a
 * store, at the start of a chunk the previous selection enters the FIFO and the candidates become
 * the selection, then (k, v, p, e) competes for the candidates. o [H·dh] = one softmax over the
 * raw window (p−W, p], the fading tokens (p−2W, p−W] and the FIFO. sc: scratch of 2W + M reals. */
void k_bmojo_token(real *st, const KBmojo *d, real *q, real *qf, real *k, const real *v, real *kf, const real *vf,
                   real e, real *o, real *sc);
/* Where F_{t−1} [D] sits in the attention part of the state (the layer reads and writes it). */
real *k_bmojo_state_fprev(real *st, const KBmojo *d);
/* k_bmojo_token over B rows of T tokens in order (rows in parallel): row b's state at
 * state + b·ss + off; q, qf, k, kf [B·T, ·] rotated in place; e [B·T] (NULL: no store or random);
 * o [B·T, H·dh], 0 at PAD (skipped). A real token with SEG_START clears the state first (all but
 * F_{t−1}, which k_bmojo_shift_prev handles). The one-token step is B = nseq, T = 1. */
void k_bmojo_tokens(real *state, size_t ss, size_t off, const KBmojo *d, int B, int T, const uint8_t *flags, real *q,
                    real *qf, real *k, const real *v, real *kf, const real *vf, const real *e, real *o);
/* The positions of the tokens in the FIFO, oldest first (count returned; pos [M]). */
int k_bmojo_state_store(const real *st, const KBmojo *d, int *pos);

#endif
