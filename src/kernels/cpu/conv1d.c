/* conv1d.c — causal depthwise convolution (layers.md §0.5), segment-aware. */
#include "kernels/kernels.h"
#include "layers/layer.h"

#define CONV_CB 32 /* channels per task */

static inline int is_start(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }

/* y_t[c] = b[c] + Σ_j w[c,j]·x_{t−K+1+j}[c], inputs before the segment start are zero. */
void k_conv1d_fwd(const real *x, int ldx, const real *w, const real *bias, real *y, int ldy, int B, int T, int C,
                  int K, const uint8_t *flags) {
    int ncb = EID_CDIV(C, CONV_CB);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int c0 = cb * CONV_CB, c1 = EID_MIN(C, c0 + CONV_CB);
            int start = 0;
            for (int t = 0; t < T; t++) {
                if (is_start(flags, (size_t)b * T + t)) start = t;
                real *yr = y + ((size_t)b * T + t) * ldy;
                for (int c = c0; c < c1; c++) yr[c] = bias ? bias[c] : 0;
                for (int j = 0; j < K; j++) {
                    int src = t - K + 1 + j;
                    if (src < start) continue;
                    const real *xs = x + ((size_t)b * T + src) * ldx;
                    for (int c = c0; c < c1; c++) yr[c] += w[(size_t)c * K + j] * xs[c];
                }
            }
        }
}

/* Adjoint: dx_src += dy_t·w[j], dw[c,j] += dy_t·x_src, db += dy_t, for src in t's segment.
 * Parallel over channel blocks only (dw/db are shared across the batch). */
void k_conv1d_bwd(const real *dy, int lddy, const real *x, int ldx, const real *w, real *dx, int lddx, real *dw,
                  real *db, int B, int T, int C, int K, const uint8_t *flags) {
    int ncb = EID_CDIV(C, CONV_CB);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < ncb; cb++) {
        int c0 = cb * CONV_CB, c1 = EID_MIN(C, c0 + CONV_CB);
        for (int b = 0; b < B; b++) {
            int start = 0;
            for (int t = 0; t < T; t++) {
                if (is_start(flags, (size_t)b * T + t)) start = t;
                const real *g = dy + ((size_t)b * T + t) * lddy;
                if (db)
                    for (int c = c0; c < c1; c++) db[c] += g[c];
                for (int j = 0; j < K; j++) {
                    int src = t - K + 1 + j;
                    if (src < start) continue;
                    const real *xs = x + ((size_t)b * T + src) * ldx;
                    real *dxs = dx + ((size_t)b * T + src) * lddx;
                    for (int c = c0; c < c1; c++) {
                        dxs[c] += g[c] * w[(size_t)c * K + j];
                        dw[(size_t)c * K + j] += g[c] * xs[c];
                    }
                }
            }
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
