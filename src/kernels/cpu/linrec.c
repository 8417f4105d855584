/* linrec.c — diagonal linear recurrences with one state number per channel and the gates of Hawk
 * and the gated SSM (docs/layers.md §12, §13), CPU.
 *
 * The scans run over (row × block of LR_CB channels) in parallel; inside a block one token is one
 * vector operation over contiguous channels, so the sequential dependence is only along time.
 * The state is the output, so the backward reads every state it needs from the forward's output
 * (no recompute, no division by a decay, docs/layers.md §0.7). */
#include <math.h>
#include <string.h>
#include "kernels/cpu/lanes.h"
#include "kernels/kernels.h"
#include "kernels/linrec.h"
#include "kernels/seq.h"

#define LR_CB 64 /* channels per block */

#ifdef EIDETIC_FP64
#define rerf erf
#else
#define rerf erff
#endif

/* 1 − eˣ for x ≤ 0 without cancellation near 0 (the RG-LRU's 1 − a² = 1 − exp(2·log a)). fp32: a
 * series for x > −1/4 (truncation < 2e−9 relative) and 1 − eˣ beyond, both vectorisable, unlike
 * libm's expm1f (a quarter of a Hawk training step when it was used). */
static inline real one_minus_exp(real x) {
#ifdef EIDETIC_FP64
    return -expm1(x);
#else
    real s = x * (1 + x * (1.f / 2 + x * (1.f / 6 + x * (1.f / 24 + x * (1.f / 120 + x * (1.f / 720 + x * (1.f / 5040)))))));
    return x > -0.25f ? -s : 1 - rexp(x);
#endif
}

/* Blocks: forward channels [0, rev_from) first, then reverse channels [rev_from, C). */
static int lr_blocks(int C, int rev_from, int *nf) {
    *nf = EID_CDIV(rev_from, LR_CB);
    return *nf + EID_CDIV(C - rev_from, LR_CB);
}
static void lr_block_at(int cb, int nf, int rev_from, int C, int *c0, int *nc) {
    if (cb < nf) *c0 = cb * LR_CB, *nc = EID_MIN(rev_from, *c0 + LR_CB) - *c0;
    else *c0 = rev_from + (cb - nf) * LR_CB, *nc = EID_MIN(C, *c0 + LR_CB) - *c0;
}

void k_linrec_fwd(const real *a, const real *b, real *h, int B, int T, int C, const uint8_t *flags, int rev_from,
                  const real *S0, real *Sfinal, size_t ldS) {
    int nf, nb = lr_blocks(C, rev_from, &nf);
#pragma omp parallel for collapse(2) schedule(static)
    for (int r = 0; r < B; r++)
        for (int cb = 0; cb < nb; cb++) {
            int c0, nc;
            lr_block_at(cb, nf, rev_from, C, &c0, &nc);
            real s[LR_CB];
            if (cb < nf) { /* left to right from S0 */
                for (int c = 0; c < nc; c++) s[c] = S0 ? S0[(size_t)r * ldS + c0 + c] : 0;
                for (int t = 0; t < T; t++) {
                    size_t o = ((size_t)r * T + t) * C + c0;
                    if (lane_pad_at(flags, (size_t)r * T + t)) { memset(h + o, 0, sizeof(real) * nc); continue; }
                    real keep = lane_reset_at(flags, (size_t)r * T + t) ? 0 : 1;
#pragma omp simd
                    for (int c = 0; c < nc; c++) h[o + c] = s[c] = keep * a[o + c] * s[c] + b[o + c];
                }
            } else { /* right to left with the cuts of docs/layers.md §8.1 */
                for (int c = 0; c < nc; c++) s[c] = 0;
                for (int t = T - 1; t >= 0; t--) {
                    size_t bt = (size_t)r * T + t, o = bt * C + c0;
                    if (lane_pad_at(flags, bt)) { memset(h + o, 0, sizeof(real) * nc); continue; }
                    real keep = lane_rev_keep(flags, bt, t, T) ? 1 : 0;
#pragma omp simd
                    for (int c = 0; c < nc; c++) h[o + c] = s[c] = keep * a[o + c] * s[c] + b[o + c];
                }
                for (int c = 0; c < nc; c++) s[c] = 0; /* a reverse half is never carried (§8.4) */
            }
            if (Sfinal)
                for (int c = 0; c < nc; c++) Sfinal[(size_t)r * ldS + c0 + c] = s[c];
        }
}

void k_linrec_bwd(const real *a, const real *h, const real *dh, real *da, real *db, int B, int T, int C,
                  const uint8_t *flags, int rev_from, const real *S0, size_t ldS) {
    int nf, nb = lr_blocks(C, rev_from, &nf);
#pragma omp parallel for collapse(2) schedule(static)
    for (int r = 0; r < B; r++)
        for (int cb = 0; cb < nb; cb++) {
            int c0, nc;
            lr_block_at(cb, nf, rev_from, C, &c0, &nc);
            real G[LR_CB], zero[LR_CB];
            for (int c = 0; c < nc; c++) G[c] = 0, zero[c] = 0;
            if (cb < nf) { /* adjoint runs right to left; G = ∂L/∂h_t carried from the right */
                for (int t = T - 1; t >= 0; t--) {
                    size_t bt = (size_t)r * T + t, o = bt * C + c0;
                    if (lane_pad_at(flags, bt)) {
                        memset(da + o, 0, sizeof(real) * nc), memset(db + o, 0, sizeof(real) * nc);
                        continue;
                    }
                    int p = t - 1; /* the state this token read: the previous real token's, or S0 */
                    while (p >= 0 && lane_pad_at(flags, (size_t)r * T + p)) p--;
                    const real *prev = p >= 0 ? h + ((size_t)r * T + p) * C + c0 : S0 ? S0 + (size_t)r * ldS + c0 : zero;
                    real keep = lane_reset_at(flags, bt) ? 0 : 1;
#pragma omp simd
                    for (int c = 0; c < nc; c++) {
                        real g = G[c] + dh[o + c];
                        db[o + c] = g;
                        da[o + c] = keep * g * prev[c];
                        G[c] = keep * g * a[o + c];
                    }
                }
            } else { /* reverse channels: the adjoint runs left to right */
                for (int t = 0; t < T; t++) {
                    size_t bt = (size_t)r * T + t, o = bt * C + c0;
                    if (lane_pad_at(flags, bt)) {
                        memset(da + o, 0, sizeof(real) * nc), memset(db + o, 0, sizeof(real) * nc);
                        for (int c = 0; c < nc; c++) G[c] = 0;
                        continue;
                    }
                    int keep = lane_rev_keep(flags, bt, t, T);
                    const real *next = keep ? h + o + C : zero;
                    real kf = keep ? 1 : 0;
#pragma omp simd
                    for (int c = 0; c < nc; c++) {
                        real g = G[c] + dh[o + c];
                        db[o + c] = g;
                        da[o + c] = kf * g * next[c];
                        G[c] = kf * g * a[o + c];
                    }
                }
            }
        }
}

void k_linrec_step(real *h, size_t ldh, const real *a, const real *b, real *y, int nseq, int C) {
#pragma omp parallel for schedule(static) if ((size_t)nseq * C >= 65536)
    for (int s = 0; s < nseq; s++) {
        real *restrict hs = h + (size_t)s * ldh;
        const real *restrict as = a + (size_t)s * C, *restrict bs = b + (size_t)s * C;
        real *restrict ys = y + (size_t)s * C;
#pragma omp simd
        for (int c = 0; c < C; c++) ys[c] = hs[c] = as[c] * hs[c] + bs[c];
    }
}

#define RGLRU_C 8 /* docs/layers.md §12.2 */

static inline real softplus(real x) { return x > 20 ? x : rlog1p(rexp(x)); }

/* The gates' square roots are of values ≥ 0 only: the Makefile compiles this file with
 * -fno-math-errno so that these per-token loops vectorise. */

/* a, b of k_rglru_gate_fwd for one channel from the biased pre-activations vr, vi */
static inline void rglru_ab(real vr, real vi, real sp, real xt, int fresh, real *a, real *b) {
    real la = -RGLRU_C * k_sigmoid(vr) * sp; /* log a, never log of a */
    real sq = rsqrt(one_minus_exp(2 * la)), m = fresh ? 1 : sq; /* sqrt(1 − a²) */
    *a = rexp(la);
    *b = m * k_sigmoid(vi) * xt;
}

/* One token of nc channels: gr, gi += biases (unless br is NULL: already biased); a, b of k_rglru_gate_fwd. */
static inline void rglru_fwd_token(real *restrict gr, real *restrict gi, const real *restrict br, const real *restrict bi,
                                     const real *restrict sp, const real *restrict xt, real *restrict a,
                                     real *restrict b, int nc, int fresh) {
    if (!br) {
#pragma omp simd
        for (int c = 0; c < nc; c++) rglru_ab(gr[c], gi[c], sp[c], xt[c], fresh, a + c, b + c);
        return;
    }
#pragma omp simd
    for (int c = 0; c < nc; c++) {
        real vr = gr[c] + br[c], vi = gi[c] + bi[c];
        gr[c] = vr, gi[c] = vi;
        rglru_ab(vr, vi, sp[c], xt[c], fresh, a + c, b + c);
    }
}

/* One token of nc channels of k_rglru_gate_bwd; ∂L/∂p partials added into acc. */
static inline void rglru_bwd_token(const real *restrict gr, const real *restrict gi, const real *restrict sp,
                                     const real *restrict sg, const real *restrict xt, const real *restrict da,
                                     const real *restrict db, real *restrict dxt, real *restrict dgr,
                                     real *restrict dgi, real *restrict acc, int nc, int fresh) {
#pragma omp simd
    for (int c = 0; c < nc; c++) {
        real rg = k_sigmoid(gr[c]), ig = k_sigmoid(gi[c]);
        real la = -RGLRU_C * rg * sp[c], av = rexp(la), u = one_minus_exp(2 * la);
        real sq = rsqrt(u), m = fresh ? 1 : sq;
        real dm = db[c] * ig * xt[c];
        /* d sqrt(u)/du bounded like the reference (max 1000); du/dlog a = −2a² */
        real dsq = dm * (-2 * av * av) / rsqrt(u * 4 > (real)1e-6 ? u * 4 : (real)1e-6);
        real dla = da[c] * av + (fresh ? 0 : dsq);
        dgr[c] = dla * (-RGLRU_C * sp[c]) * rg * (1 - rg);
        acc[c] += dla * (-RGLRU_C * rg) * sg[c];
        dgi[c] = db[c] * m * xt[c] * ig * (1 - ig);
        dxt[c] = db[c] * m * ig;
    }
}

void k_rglru_gate_fwd(const real *x, int ldx, real *gr, real *gi, const real *br, const real *bi, const real *p,
                      real *a, real *b, int B, int T, int R, const uint8_t *flags, real *mark, size_t ldm) {
    int nb = EID_CDIV(R, LR_CB);
#pragma omp parallel
    {
#pragma omp for collapse(2) schedule(static)
        for (int r = 0; r < B; r++)
            for (int cb = 0; cb < nb; cb++) {
                int c0 = cb * LR_CB, nc = EID_MIN(R, c0 + LR_CB) - c0;
                real sp[LR_CB];
                for (int c = 0; c < nc; c++) sp[c] = softplus(p[c0 + c]);
                int fresh_row = !mark || mark[(size_t)r * ldm] == 0, seen = 0;
                for (int t = 0; t < T; t++) {
                    size_t bt = (size_t)r * T + t, o = bt * R + c0;
                    const real *xt = x + bt * ldx + c0;
                    if (lane_pad_at(flags, bt)) {
                        memset(a + o, 0, sizeof(real) * nc), memset(b + o, 0, sizeof(real) * nc);
                        continue;
                    }
                    int fresh = lane_reset_at(flags, bt) || (fresh_row && !seen);
                    seen = 1;
                    rglru_fwd_token(gr + o, gi + o, br ? br + c0 : NULL, br ? bi + c0 : NULL, sp, xt, a + o, b + o, nc, fresh);
                }
            }
        /* the markers after every block has read them */
#pragma omp for schedule(static)
        for (int r = 0; r < B; r++) {
            if (!mark) continue;
            for (int t = 0; t < T; t++)
                if (!lane_pad_at(flags, (size_t)r * T + t)) { mark[(size_t)r * ldm] = 1; break; }
        }
    }
}

void k_rglru_gate_bwd(const real *x, int ldx, const real *gr, const real *gi, const real *p, const real *da,
                      const real *db, real *dx, int lddx, real *dgr, real *dgi, real *gp, int B, int T, int R,
                      const uint8_t *flags) {
    const int CB = 16; /* narrow blocks: enough of them to share among threads */
    int nb = EID_CDIV(R, CB);
#pragma omp parallel for schedule(static)
    for (int cb = 0; cb < nb; cb++) {
        int c0 = cb * CB, nc = EID_MIN(R, c0 + CB) - c0;
        real sp[16], sg[16], acc[16] = {0};
        for (int c = 0; c < nc; c++) sp[c] = softplus(p[c0 + c]), sg[c] = k_sigmoid(p[c0 + c]);
        for (int r = 0; r < B; r++) {
            int seen = 0;
            for (int t = 0; t < T; t++) {
                size_t bt = (size_t)r * T + t, o = bt * R + c0;
                real *dxt = dx + bt * lddx + c0;
                if (lane_pad_at(flags, bt)) {
                    for (int c = 0; c < nc; c++) dxt[c] = dgr[o + c] = dgi[o + c] = 0;
                    continue;
                }
                int fresh = lane_reset_at(flags, bt) || !seen;
                seen = 1;
                rglru_bwd_token(gr + o, gi + o, sp, sg, x + bt * ldx + c0, da + o, db + o, dxt, dgr + o, dgi + o, acc,
                                nc, fresh);
            }
        }
        for (int c = 0; c < nc; c++) gp[c0 + c] += acc[c];
    }
}

void k_gssm_gate_fwd(const real *proj, int ldp, real *a, real *b, int M, int R) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *pi = proj + (size_t)m * ldp, *pz = pi + R, *pf = pi + 3 * R;
        real *am = a + (size_t)m * R, *bm = b + (size_t)m * R;
#pragma omp simd
        for (int c = 0; c < R; c++) {
            am[c] = k_sigmoid(pf[c]);
            bm[c] = k_sigmoid(pi[c]) * pz[c];
        }
    }
}

void k_gssm_gate_bwd(const real *proj, int ldp, const real *da, const real *db, real *dproj, int lddp, int M, int R) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++) {
        const real *pi = proj + (size_t)m * ldp, *pz = pi + R, *pf = pi + 3 * R;
        const real *dam = da + (size_t)m * R, *dbm = db + (size_t)m * R;
        real *di = dproj + (size_t)m * lddp, *dz = di + R, *df = di + 3 * R;
#pragma omp simd
        for (int c = 0; c < R; c++) {
            real ig = k_sigmoid(pi[c]), fg = k_sigmoid(pf[c]);
            df[c] = dam[c] * fg * (1 - fg);
            di[c] = dbm[c] * pz[c] * ig * (1 - ig);
            dz[c] = dbm[c] * ig;
        }
    }
}

/* gelu(x) and gelu'(x): the tanh form 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) or the exact x·Φ(x). */
static inline void gelu_and_grad(real x, int approx, real *g, real *dg) {
    if (approx) {
        const real k = (real)0.7978845608028654, c = (real)0.044715;
        real t = 2 * k_sigmoid(2 * k * (x + c * x * x * x)) - 1; /* tanh, vectorisable */
        *g = (real)0.5 * x * (1 + t);
        *dg = (real)0.5 * (1 + t) + (real)0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x);
    } else {
        real phi = (real)0.5 * (1 + rerf(x * (real)0.7071067811865476));
        *g = x * phi;
        *dg = phi + x * rexp((real)-0.5 * x * x) * (real)0.3989422804014327;
    }
}

/* The inner loops take `approx` as a constant, so the tanh form vectorises. */
#define GELU_ROWS(approx, body)                                                                                        \
    if (approx) {                                                                                                      \
        _Pragma("omp simd") for (int c = 0; c < C; c++) { real v, d; gelu_and_grad(g_[c], 1, &v, &d); body; }          \
    } else {                                                                                                           \
        _Pragma("omp simd") for (int c = 0; c < C; c++) { real v, d; gelu_and_grad(g_[c], 0, &v, &d); body; }          \
    }

void k_mul_gelu_fwd(const real *g, int ldg, const real *y, int ldy, real *out, int ldo, int N, int C, int approx) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *g_ = g + (size_t)n * ldg, *y_ = y + (size_t)n * ldy;
        real *o_ = out + (size_t)n * ldo;
        GELU_ROWS(approx, (void)d; o_[c] = v * y_[c])
    }
}

void k_mul_gelu_bwd(real *dy_io, int lddy, const real *y, int ldy, const real *g, int ldg, real *dg, int lddg, int N,
                    int C, int approx) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const real *g_ = g + (size_t)n * ldg, *y_ = y + (size_t)n * ldy;
        real *io = dy_io + (size_t)n * lddy, *dg_ = dg + (size_t)n * lddg;
        GELU_ROWS(approx, dg_[c] = io[c] * y_[c] * d; io[c] *= v)
    }
}

void k_bias_add(real *y, int ldy, const real *bias, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        real *restrict yn = y + (size_t)n * ldy;
#pragma omp simd
        for (int c = 0; c < C; c++) yn[c] += bias[c];
    }
}
