/* conv1d.c — causal depthwise convolution (layers.md §0.5), segment-aware. */
#include "kernels/kernels.h"
#include "kernels/seq.h"

#define CONV_CB 32 /* channels per task */

static inline int is_start(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }

/* The weights are stored [C, K] (Hugging Face layout); each task copies its block transposed to
 * [K, CONV_CB] so the inner loops run over contiguous channels and vectorise. */
static void block_weights_kc(const real *w, int c0, int c1, int K, real *wt) {
    for (int j = 0; j < K; j++)
        for (int c = c0; c < c1; c++) wt[j * CONV_CB + (c - c0)] = w[(size_t)c * K + j];
}

/* y_t[c] = b[c] + Σ_j w[c,j]·x_{t−K+1+j}[c], inputs before the segment start are zero. */
void k_conv1d_fwd(const real *x, int ldx, const real *w, const real *bias, real *y, int ldy, int B, int T, int C,
                  int K, const uint8_t *flags) {
    int ncb = EID_CDIV(C, CONV_CB);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int c0 = cb * CONV_CB, c1 = EID_MIN(C, c0 + CONV_CB), nc = c1 - c0;
            real wt[EID_CONV_MAX_K * CONV_CB], b0[CONV_CB];
            block_weights_kc(w, c0, c1, K, wt);
            for (int c = 0; c < nc; c++) b0[c] = bias ? bias[c0 + c] : 0;
            int start = 0;
            for (int t = 0; t < T; t++) {
                if (is_start(flags, (size_t)b * T + t)) start = t;
                real *restrict yr = y + ((size_t)b * T + t) * ldy + c0;
                for (int c = 0; c < nc; c++) yr[c] = b0[c];
                for (int j = EID_MAX(0, start - (t - K + 1)); j < K; j++) {
                    const real *restrict xs = x + ((size_t)b * T + (t - K + 1 + j)) * ldx + c0;
                    const real *restrict wj = wt + j * CONV_CB;
#pragma omp simd
                    for (int c = 0; c < nc; c++) yr[c] += wj[c] * xs[c];
                }
            }
        }
}

/* Adjoint: dx_src += dy_t·w[j], dw[c,j] += dy_t·x_src, db += dy_t, for src in t's segment.
 * Parallel over channel blocks only (dw/db are shared across the batch); each task accumulates its
 * block's dw/db in a local [K, CONV_CB] buffer and adds it once. */
void k_conv1d_bwd(const real *dy, int lddy, const real *x, int ldx, const real *w, real *dx, int lddx, real *dw,
                  real *db, int B, int T, int C, int K, const uint8_t *flags) {
    int ncb = EID_CDIV(C, CONV_CB);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < ncb; cb++) {
        int c0 = cb * CONV_CB, c1 = EID_MIN(C, c0 + CONV_CB), nc = c1 - c0;
        real wt[EID_CONV_MAX_K * CONV_CB], dwt[EID_CONV_MAX_K * CONV_CB] = {0}, dbl[CONV_CB] = {0};
        block_weights_kc(w, c0, c1, K, wt);
        for (int b = 0; b < B; b++) {
            int start = 0;
            for (int t = 0; t < T; t++) {
                if (is_start(flags, (size_t)b * T + t)) start = t;
                const real *restrict g = dy + ((size_t)b * T + t) * lddy + c0;
#pragma omp simd
                for (int c = 0; c < nc; c++) dbl[c] += g[c];
                for (int j = EID_MAX(0, start - (t - K + 1)); j < K; j++) {
                    size_t src = (size_t)b * T + (t - K + 1 + j);
                    const real *restrict xs = x + src * ldx + c0;
                    real *restrict dxs = dx + src * lddx + c0;
                    const real *restrict wj = wt + j * CONV_CB;
                    real *restrict dwj = dwt + j * CONV_CB;
#pragma omp simd
                    for (int c = 0; c < nc; c++) {
                        dxs[c] += g[c] * wj[c];
                        dwj[c] += g[c] * xs[c];
                    }
                }
            }
        }
        for (int c = 0; c < nc; c++) {
            if (db) db[c0 + c] += dbl[c];
            for (int j = 0; j < K; j++) dw[(size_t)(c0 + c) * K + j] += dwt[j * CONV_CB + c];
        }
    }
}

void k_conv1d_step(real *ring, const real *x, int ldx, const real *w, const real *bias, real *y, int ldy, int nseq,
                   int C, int K) {
    for (int s = 0; s < nseq; s++) {
        const real *xs = x + (size_t)s * ldx;
        real *ys = y + (size_t)s * ldy;
        real *rs = ring + (size_t)s * C * (K - 1);
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
