/* conv1d.c — causal depthwise convolution (docs/layers.md §0.5), segment-aware, with PAD tokens
 * treated as absent and the last K−1 inputs carried in and out through a ring (prefill/decode). */
#include <string.h>
#include "kernels/kernels.h"
#include "kernels/seq.h"

#define CONV_CB 32 /* channels per task */
#define SRC_ZERO (-1)            /* a tap before the segment start: input 0 */
#define SRC_RING(j) (-2 - (j))   /* a tap that reads entry j of the incoming ring */

/* The weights are stored [C, K] (Hugging Face layout); each task copies its block transposed to
 * [K, CONV_CB] so the inner loops run over contiguous channels and vectorise. */
static void block_weights_kc(const real *w, int c0, int c1, int K, real *wt) {
    for (int j = 0; j < K; j++)
        for (int c = c0; c < c1; c++) wt[j * CONV_CB + (c - c0)] = w[(size_t)c * K + j];
}

/* The K−1 sources of the taps before the current token of one row, oldest first: token indices
 * (b·T + t), SRC_RING(j) or SRC_ZERO. A row starts from the incoming ring (or zeros); SEG_START
 * clears it; PAD tokens are never pushed, so they are invisible to later tokens. */
typedef struct { long s[EID_CONV_MAX_K]; int n; } Taps;

static void taps_start(Taps *h, int K, int have_ring) {
    h->n = K - 1;
    for (int j = 0; j < h->n; j++) h->s[j] = have_ring ? SRC_RING(j) : SRC_ZERO;
}
static void taps_clear(Taps *h) {
    for (int j = 0; j < h->n; j++) h->s[j] = SRC_ZERO;
}
static void taps_push(Taps *h, long src) {
    if (h->n == 0) return;
    memmove(h->s, h->s + 1, sizeof(long) * (h->n - 1));
    h->s[h->n - 1] = src;
}

/* Address of the input a tap reads for channels c0.. (NULL: zero); ring entries come from the
 * block gathered by ring_block. */
static inline const real *tap_src(long s, const real *x, int ldx, int c0, const real *ringblk) {
    if (s >= 0) return x + (size_t)s * ldx + c0;
    if (s == SRC_ZERO) return NULL;
    return ringblk + (size_t)(-2 - s) * CONV_CB; /* ring entries of this block, gathered [K−1][CONV_CB] */
}

/* Gather ring0[b, c0..c1, :] transposed into [K−1][CONV_CB]. */
static void ring_block(const real *ring0, int b, int C, int K, int c0, int nc, real *blk) {
    for (int c = 0; c < nc; c++) {
        const real *r = ring0 + ((size_t)b * C + c0 + c) * (K - 1);
        for (int j = 0; j < K - 1; j++) blk[j * CONV_CB + c] = r[j];
    }
}

static inline int has(const uint8_t *flags, size_t i, int f) { return flags && (flags[i] & f); }

/* y_t[c] = b[c] + Σ_j w[c,j]·x_{src_j}[c] + w[c,K−1]·x_t[c] over non-PAD tokens; y = 0 at PAD. */
void k_conv1d_fwd(const real *x, int ldx, const real *w, const real *bias, real *y, int ldy, int B, int T, int C,
                  int K, const uint8_t *flags, const real *ring0, real *ring1) {
    int ncb = EID_CDIV(C, CONV_CB);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int c0 = cb * CONV_CB, c1 = EID_MIN(C, c0 + CONV_CB), nc = c1 - c0;
            real wt[EID_CONV_MAX_K * CONV_CB], b0[CONV_CB], rblk[EID_CONV_MAX_K * CONV_CB];
            block_weights_kc(w, c0, c1, K, wt);
            if (ring0) ring_block(ring0, b, C, K, c0, nc, rblk);
            for (int c = 0; c < nc; c++) b0[c] = bias ? bias[c0 + c] : 0;
            Taps h;
            taps_start(&h, K, ring0 != NULL);
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                real *restrict yr = y + i * ldy + c0;
                if (has(flags, i, FLAG_PAD)) {
                    for (int c = 0; c < nc; c++) yr[c] = 0;
                    continue;
                }
                if (has(flags, i, FLAG_SEG_START)) taps_clear(&h);
                const real *restrict xt = x + i * ldx + c0;
                const real *restrict wl = wt + (K - 1) * CONV_CB;
#pragma omp simd
                for (int c = 0; c < nc; c++) yr[c] = b0[c] + wl[c] * xt[c];
                for (int j = 0; j < K - 1; j++) {
                    const real *restrict xs = tap_src(h.s[j], x, ldx, c0, rblk);
                    if (!xs) continue;
                    const real *restrict wj = wt + j * CONV_CB;
#pragma omp simd
                    for (int c = 0; c < nc; c++) yr[c] += wj[c] * xs[c];
                }
                taps_push(&h, (long)i);
            }
            if (ring1) /* after every read of ring0 in this block: ring1 may alias ring0 */
                for (int c = 0; c < nc; c++) {
                    real *r = ring1 + ((size_t)b * C + c0 + c) * (K - 1);
                    for (int j = 0; j < K - 1; j++) {
                        const real *xs = tap_src(h.s[j], x, ldx, c0, rblk);
                        r[j] = xs ? xs[c] : 0;
                    }
                }
        }
}

/* Adjoint over the same taps: dx_src += dy_t·w[j], dw[c,j] += dy_t·x_src (ring0 entries included;
 * the ring itself receives no gradient), db += dy_t; nothing at PAD. Parallel over channel blocks
 * only (dw/db are shared across the batch); each task accumulates its block's dw/db locally. */
void k_conv1d_bwd(const real *dy, int lddy, const real *x, int ldx, const real *w, real *dx, int lddx, real *dw,
                  real *db, int B, int T, int C, int K, const uint8_t *flags, const real *ring0) {
    int ncb = EID_CDIV(C, CONV_CB);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < ncb; cb++) {
        int c0 = cb * CONV_CB, c1 = EID_MIN(C, c0 + CONV_CB), nc = c1 - c0;
        real wt[EID_CONV_MAX_K * CONV_CB], dwt[EID_CONV_MAX_K * CONV_CB] = {0}, dbl[CONV_CB] = {0};
        real rblk[EID_CONV_MAX_K * CONV_CB];
        block_weights_kc(w, c0, c1, K, wt);
        for (int b = 0; b < B; b++) {
            if (ring0) ring_block(ring0, b, C, K, c0, nc, rblk);
            Taps h;
            taps_start(&h, K, ring0 != NULL);
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                if (has(flags, i, FLAG_PAD)) continue;
                if (has(flags, i, FLAG_SEG_START)) taps_clear(&h);
                const real *restrict g = dy + i * lddy + c0;
                const real *restrict xt = x + i * ldx + c0;
                real *restrict dxt = dx + i * lddx + c0;
                const real *restrict wl = wt + (K - 1) * CONV_CB;
                real *restrict dwl = dwt + (K - 1) * CONV_CB;
#pragma omp simd
                for (int c = 0; c < nc; c++) {
                    dbl[c] += g[c];
                    dxt[c] += g[c] * wl[c];
                    dwl[c] += g[c] * xt[c];
                }
                for (int j = 0; j < K - 1; j++) {
                    long s = h.s[j];
                    if (s == SRC_ZERO) continue;
                    const real *restrict xs = tap_src(s, x, ldx, c0, rblk);
                    const real *restrict wj = wt + j * CONV_CB;
                    real *restrict dwj = dwt + j * CONV_CB;
                    if (s >= 0) {
                        real *restrict dxs = dx + (size_t)s * lddx + c0;
#pragma omp simd
                        for (int c = 0; c < nc; c++) dxs[c] += g[c] * wj[c];
                    }
#pragma omp simd
                    for (int c = 0; c < nc; c++) dwj[c] += g[c] * xs[c];
                }
                taps_push(&h, (long)i);
            }
        }
        for (int c = 0; c < nc; c++) {
            if (db) db[c0 + c] += dbl[c];
            for (int j = 0; j < K; j++) dw[(size_t)(c0 + c) * K + j] += dwt[j * CONV_CB + c];
        }
    }
}

void k_conv1d_step(real *ring, size_t ldr, const real *x, int ldx, const real *w, const real *bias, real *y, int ldy,
                   int nseq, int C, int K) {
    for (int s = 0; s < nseq; s++) {
        const real *xs = x + (size_t)s * ldx;
        real *ys = y + (size_t)s * ldy;
        real *rs = ring + (size_t)s * ldr;
        for (int c = 0; c < C; c++) {
            real *r = rs + (size_t)c * (K - 1);
            const real *wc = w + (size_t)c * K;
            real acc = bias ? bias[c] : 0;
            for (int j = 0; j < K - 1; j++) acc += wc[j] * r[j];
            acc += wc[K - 1] * xs[c];
            for (int j = 0; j + 1 < K - 1; j++) r[j] = r[j + 1]; /* window = window[1:] */
            if (K > 1) r[K - 2] = xs[c];
            ys[c] = acc;
        }
    }
}
