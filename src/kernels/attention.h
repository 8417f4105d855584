/* attention.h — softmax attention kernels (docs/layers.md §5): RoPE, blocked (flash-style) causal /
 * sliding-window attention forward and backward with segment restriction, one-token decode.
 *
 * Layouts (row-major, per token): q, o  [B, T, H, dh]   (row stride H·dh)
 *                                 k, v  [B, T, Hkv, dh] (row stride Hkv·dh)
 *                                 lse   [B, T, H]
 * Query head h reads key/value head h / (H/Hkv) (= ⌊h·Hkv/H⌋ since Hkv divides H).
 * Query i of a row sees the real keys j with lo_i ≤ j ≤ i (k_attn_lo: segment start, and for a
 * window W the W-th most recent real token), so keys never cross a SEG_START and PAD is never a key.
 * Prefix-LM (Birdie bidirectional layers, docs/layers.md §5.3, §8): with hi (k_attn_hi) query i sees
 * lo_i ≤ j ≤ hi_i instead, reaching forward over the rest of its prompt; hi NULL = causal.
 * Every block product (QKᵀ, PV, dO·Vᵀ, dS·K, Pᵀ·dO, dSᵀ·Q) goes through eid_gemm. */
#ifndef EIDETIC_KERNELS_ATTENTION_H
#define EIDETIC_KERNELS_ATTENTION_H
#include "core/common.h"

/* Token positions (docs/layers.md §0.6): pos[b*T+t] = number of real (non-PAD) tokens before t in
 * its segment, plus base[b] while row b continues the segment it started in (base NULL: every row
 * starts a segment at 0, the training forward). A real token with SEG_START restarts at 0; PAD
 * tokens do not count (their pos is the next real token's) and their SEG_START is ignored. */
void k_token_positions(const uint8_t *flags, int B, int T, const int *base, int *pos);
/* lo[b*T+t] = first key index (in the row) query t may see: the segment start (row start for the
 * first segment), and with window W > 0 the W-th most recent real token (itself included), so a
 * window counts real tokens only. Nondecreasing along a row (PAD queries repeat the current value). */
void k_attn_lo(const uint8_t *flags, int B, int T, int window, int *lo);
/* hi[b*T+t] = last key index query t may see under the prefix-LM mask (docs/layers.md §5.3, §8.1):
 * for a real token without CAUSAL, the last token of its prompt run (the run stops before a CAUSAL,
 * PAD or SEG_START token or at the row end, exactly where the recurrent layers cut their reverse
 * halves), and with window W > 0 at most t + W − 1 (|i − j| < W both ways); t for CAUSAL and PAD
 * tokens (causal). flags NULL: every token CAUSAL. hi[i] ≥ i and nondecreasing along a row. */
void k_attn_hi(const uint8_t *flags, int B, int T, int window, int *hi);

/* RoPE tables for positions [0, T): cs, sn [T, dh/2], angle pos·theta^(−2i/dh) computed in double. */
void k_rope_table(int T, int dh, double theta, real *cs, real *sn);
/* In place on x [M, ld] holding nh heads of dh at columns h·dh: HF "rotate-half" rotation by
 * +φ (inverse = 0) or −φ (inverse = 1, the backward), φ from the tables at row pos[m]. */
void k_rope_apply(real *x, int ld, int M, int nh, int dh, const int *pos, const real *cs, const real *sn, int inverse);

/* Forward. Query i of a row sees the keys j with lo[i] ≤ j ≤ hi[i] (i when hi is NULL) that are not
 * PAD (a PAD query sees none: o = 0, lse = 0). Writes o (normalised outputs) and lse = m + log ℓ per (token, head).
 * block = query and key block length (any >= 1); per-thread tiles are taken inside (O(block²)).
 * flags may be NULL (no PAD). */
void k_attn_fwd(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv, int dh,
                int block, const int *lo, const int *hi, const uint8_t *flags);

/* Backward (docs/layers.md §5.5), recomputing P blockwise from lse. Overwrites dq [B,T,H,dh] and
 * dk, dv [B,T,Hkv,dh] (gradients w.r.t. the rotated q, k and v; 0 at PAD). dvec [B,T,H] scratch. */
void k_attn_bwd(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                real *dq, real *dk, real *dv, real *dvec, int B, int T, int H, int Hkv, int dh, int block,
                const int *lo, const int *hi, const uint8_t *flags);

/* Key ranges with an upper end (B'MOJO's fading pass, docs/layers.md §6.3): query i sees the keys
 * lo[i] ≤ j ≤ hi[i] (< i there) that are not PAD; lo and hi nondecreasing along a row. A query that sees
 * no key (an empty range, or PAD) gets o = 0 and lse = K_LSE_NONE, so that k_attn_lse_merge leaves
 * the other set alone. The backward takes o and lse of the merged softmax (docs/layers.md §6.3: P is
 * recomputed as exp(s − lse) with the merged lse) and overwrites dq, dk, dv like k_attn_bwd. */
#define K_LSE_NONE ((real)-1e30)
void k_attn_fwd_range(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                      int dh, int block, const int *lo, const int *hi, const uint8_t *flags);
void k_attn_bwd_range(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                      real *dq, real *dk, real *dv, real *dvec, int B, int T, int H, int Hkv, int dh, int block,
                      const int *lo, const int *hi, const uint8_t *flags);
/* One softmax over two key sets from the two normalised partial results: for each of MH rows
 * (token, head), lse ← logaddexp(lse, lse2), o ← o·e^{lse_old − lse} + o2·e^{lse2 − lse} (o, o2
 * [MH, dh]); a set with lse ≤ K_LSE_NONE is empty. */
void k_attn_lse_merge(real *o, real *lse, const real *o2, const real *lse2, size_t MH, int dh);
/* Rotate the nh heads of one row x [nh·dh] by the angle of position pos (the step's rounding). */
void k_rope_at(real *x, int nh, int dh, long pos, double theta);

/* One decode token for nseq sequences. state per sequence (k_attn_state_size reals):
 *   Kc [Hkv, cap, dh], Vc [Hkv, cap, dh] (rotated keys / values, ring: position p in slot p % cap),
 *   then 1 real: the number of tokens seen (= position of the next token).
 * q [nseq, H·dh], k, v [nseq, Hkv·dh] are the unrotated projections (q, k rotated in place);
 * o [nseq, H·dh]; sc scratch [nseq, H·cap]. The query sees the last min(p+1, cap) tokens.
 * theta <= 0: no RoPE (the learned-position baseline). */
size_t k_attn_state_size(int Hkv, int dh, int cap);
void k_attn_step(real *state, real *q, real *k, const real *v, real *o, real *sc, int nseq, int H, int Hkv, int dh,
                 int cap, double theta);

/* Prefill: a parallel pass over a prompt of B rows × T tokens from the decode states of B sequences
 * (layout of k_attn_step), giving exactly the outputs and states the step loop would. q [B,T,H·dh],
 * k, v [B,T,Hkv·dh] unrotated (q, k rotated in place); o [B,T,H·dh]; lse [B,T,H]; pos, lo [B·T]
 * int scratch. A row continues its state (positions from the counter, the ring's keys visible)
 * until a real token with SEG_START, which clears the state and restarts positions; PAD tokens are
 * absent (not keys, no position, not written; their o is 0). Each query sees the last cap real
 * tokens of its segment (itself included), as the step does; the ring then holds the newest.
 * hi: NULL (causal), or [B·T] int scratch for the prefix-LM mask of a bidirectional layer: a prompt
 * query also sees the rest of its prompt run in this call (at most cap − 1 tokens ahead, k_attn_hi);
 * the ring keeps the keys and values as computed, so decoding after the prompt stays causal. */
void k_attn_prefill(real *state, real *q, real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                    int dh, int cap, double theta, int block, const uint8_t *flags, int *pos, int *lo, int *hi);

#endif
