/* attention.h — softmax attention kernels (layers.md §5): RoPE, blocked (flash-style) causal /
 * sliding-window attention forward and backward with segment restriction, one-token decode.
 *
 * Layouts (row-major, per token): q, o  [B, T, H, dh]   (row stride H·dh)
 *                                 k, v  [B, T, Hkv, dh] (row stride Hkv·dh)
 *                                 lse   [B, T, H]
 * Query head h reads key/value head h / (H/Hkv) (= ⌊h·Hkv/H⌋ since Hkv divides H).
 * Query i of a row sees keys j with lo_i ≤ j ≤ i, lo_i = i − min(pos_i, W−1) (W = 0: no window),
 * pos_i = index of token i inside its segment (k_attn_positions), so keys never cross a SEG_START.
 * Every block product (QKᵀ, PV, dO·Vᵀ, dS·K, Pᵀ·dO, dSᵀ·Q) goes through eid_gemm. */
#ifndef EIDETIC_KERNELS_ATTENTION_H
#define EIDETIC_KERNELS_ATTENTION_H
#include "core/common.h"

/* pos[b*T+t] = index of token t inside its segment (restarts at 0 on FLAG_SEG_START); flags may be NULL. */
void k_attn_positions(const uint8_t *flags, int B, int T, int *pos);

/* RoPE tables for positions [0, T): cs, sn [T, dh/2], angle pos·theta^(−2i/dh) computed in double. */
void k_rope_table(int T, int dh, double theta, real *cs, real *sn);
/* In place on x [M, ld] holding nh heads of dh at columns h·dh: HF "rotate-half" rotation by
 * +φ (inverse = 0) or −φ (inverse = 1, the backward), φ from the tables at row pos[m]. */
void k_rope_apply(real *x, int ld, int M, int nh, int dh, const int *pos, const real *cs, const real *sn, int inverse);

/* Forward. Writes o (normalised outputs) and lse = m + log ℓ per (token, head). block = query and
 * key block length (any >= 1). work: k_attn_work(block, eid_threads()) reals. */
size_t k_attn_work(int block, int nthreads);
void k_attn_fwd(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv, int dh,
                int window, int block, const int *pos, real *work);

/* Backward (layers.md §5.5), recomputing P blockwise from lse. Overwrites dq [B,T,H,dh] and
 * dk, dv [B,T,Hkv,dh] (gradients w.r.t. the rotated q, k and v). dvec [B,T,H] scratch. */
void k_attn_bwd(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                real *dq, real *dk, real *dv, real *dvec, int B, int T, int H, int Hkv, int dh, int window, int block,
                const int *pos, real *work);

/* One decode token for nseq sequences. state per sequence (k_attn_state_size reals):
 *   Kc [Hkv, cap, dh], Vc [Hkv, cap, dh] (rotated keys / values, ring: position p in slot p % cap),
 *   then 1 real: the number of tokens seen (= position of the next token).
 * q [nseq, H·dh], k, v [nseq, Hkv·dh] are the unrotated projections (q, k rotated in place);
 * o [nseq, H·dh]; sc scratch [nseq, H·cap]. The query sees the last min(p+1, cap) tokens.
 * theta <= 0: no RoPE (the learned-position baseline). */
size_t k_attn_state_size(int Hkv, int dh, int cap);
void k_attn_step(real *state, real *q, real *k, const real *v, real *o, real *sc, int nseq, int H, int Hkv, int dh,
                 int cap, double theta);

#endif
