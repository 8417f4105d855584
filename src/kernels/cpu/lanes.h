/* lanes.h — the lane-major channel blocks shared by the CPU scans (scan_longhorn.c, scan_mamba.c).
 *
 * A block holds LANE_CB channels of an [I, N] state as [N][LANE_CB]: one SIMD vector per state
 * index n (16 fp32 = one AVX-512 vector). Public layouts stay [.., I, N]; these helpers transpose a
 * block in and out (at chunk boundaries only) and gather a token's per-channel inputs.
 *
 * Forward channels [0, rev_from) and reverse channels [rev_from, I) (the reverse half of a Birdie
 * bidirectional layer, docs/layers.md §8.1–8.2) never share a block: blocks 0..ncb_f−1 tile the
 * forward channels, the following ones tile the reverse channels (lane_blocks, lane_block_at). */
#ifndef EIDETIC_KERNELS_CPU_LANES_H
#define EIDETIC_KERNELS_CPU_LANES_H
#include <string.h>
#include "core/common.h"
#include "kernels/seq.h"

#define LANE_CB 16

/* Backward workspace slots: a backward kernel splits its work into tasks fixed by the shape, and its
 * workspace holds min(tasks, EID_SCAN_SLOTS) slots (sized from the shape alone). At most that many
 * threads run it, each in its own slot (a thread keeps its slot warm in cache across its tasks);
 * slots are scratch only and every task writes its own results, so nothing depends on the thread
 * count or the schedule. Threads beyond this count stay idle in these kernels. */
#define EID_SCAN_SLOTS 16

/* Flags of token i (flags NULL = one segment per row, no PAD, every token CAUSAL; docs/layers.md §0.6). */
static inline int lane_reset_at(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }
static inline int lane_pad_at(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_PAD); }
/* Reverse units: the state of token t (row position t of T, flat index i) carries into t only if
 * t+1 exists and is a prefix token of the same segment (not CAUSAL, not PAD, no SEG_START). */
static inline int lane_rev_keep(const uint8_t *flags, size_t i, int t, int T) {
    return t + 1 < T && flags && !(flags[i + 1] & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START));
}

/* Number of lane blocks: forward channels first, then reverse ones. */
static inline int lane_blocks(int I, int rev_from, int *ncb_f) {
    *ncb_f = EID_CDIV(rev_from, LANE_CB);
    return *ncb_f + EID_CDIV(I - rev_from, LANE_CB);
}
/* First channel and width of block cb. */
static inline void lane_block_at(int cb, int ncb_f, int rev_from, int I, int *i0, int *nc) {
    if (cb < ncb_f) *i0 = cb * LANE_CB, *nc = EID_MIN(rev_from, *i0 + LANE_CB) - *i0;
    else *i0 = rev_from + (cb - ncb_f) * LANE_CB, *nc = EID_MIN(I, *i0 + LANE_CB) - *i0;
}

/* Channels [i0, i0+nc) of a [I, N] matrix → a lane-major block [N][LANE_CB] (lanes ≥ nc zero). */
static inline void lane_block_load(real *restrict blk, const real *restrict S, int i0, int nc, int N) {
    memset(blk, 0, sizeof(real) * (size_t)N * LANE_CB);
    for (int c = 0; c < nc; c++)
        for (int n = 0; n < N; n++) blk[n * LANE_CB + c] = S[(size_t)(i0 + c) * N + n];
}

/* The inverse: a lane-major block → channels [i0, i0+nc) of a [I, N] matrix. */
static inline void lane_block_store(real *restrict S, const real *restrict blk, int i0, int nc, int N) {
    for (int c = 0; c < nc; c++)
        for (int n = 0; n < N; n++) S[(size_t)(i0 + c) * N + n] = blk[n * LANE_CB + c];
}

/* A token's per-channel inputs of one block, zero-padded to LANE_CB lanes. */
static inline void lanes(real *restrict dst, const real *restrict src, int nc) {
    int c = 0;
    for (; c < nc; c++) dst[c] = src[c];
    for (; c < LANE_CB; c++) dst[c] = 0;
}

/* The first nc lanes of a block's per-channel outputs → dst (a loop, not memcpy: a libc call per
 * token and block cost 3–6% of a training step). */
static inline void lanes_store(real *restrict dst, const real *restrict src, int nc) {
    if (nc == LANE_CB) {
#pragma omp simd
        for (int c = 0; c < LANE_CB; c++) dst[c] = src[c];
    } else {
        for (int c = 0; c < nc; c++) dst[c] = src[c];
    }
}

/* a = the block's lanes of a_src, ab = a ⊙ b_src (the scans' ε and ε·u, or Δ and Δ·u), zero-padded. */
static inline void lanes_and_product(real *restrict a, real *restrict ab, const real *restrict a_src,
                                     const real *restrict b_src, int nc) {
    lanes(a, a_src, nc);
    for (int c = 0; c < LANE_CB; c++) ab[c] = c < nc ? a[c] * b_src[c] : 0;
}

#endif
