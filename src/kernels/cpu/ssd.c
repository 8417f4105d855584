/* ssd.c — Mamba-2 SSD (scalar decay per head), docs/layers.md §3: chunked forward/backward and one-token step.
 *
 * Chunked form, per (sequence, head), chunk rows r, s = 0..L−1 (L ≤ Q = chunk):
 *   seg_r = number of reset rows in 0..r;  Gc_r = Σ g_u over u ≤ r in row r's segment (g = Δ·a)
 *   E[r,s] = exp(Gc_r − Gc_s)  for s ≤ r, seg_s = seg_r, else 0
 *   M      = (C·Bᵀ) ⊙ E ⊙ Δ_s           (Q×Q)            Y  = M·X + Cw·S_inᵀ + D·X
 *   Cw_r   = C_r·exp(Gc_r)·[seg_r = 0]                    (rows that still see the entering state)
 *   Bw_s   = B_s·Δ_s·exp(Gc_{L−1} − Gc_s)·[seg_s = seg_{L−1}]
 *   S_out  = dec·S_in + Xᵀ·Bw,   dec = exp(Gc_{L−1})·[seg_{L−1} = 0]
 * A reset (SEG_START, or a cut of a reverse head) is a mask through seg, never log 0 (§0.7(3), §3.4).
 * The entering state of chunk 0 is S0 (zeros when absent) and the state leaving the last chunk is
 * Sfinal, so two calls chained through the state equal one call over the concatenation.
 * PAD tokens (§0.6) are absent: their Δ is taken as 0 (no decay, no input), their y is 0 and their
 * dy is ignored, and their inputs get gradient 0.
 * Reverse heads h ≥ rev_from (docs/layers.md §8.1–8.3) run right-to-left: the head's rows are
 * gathered time-reversed into scratch, with a reset at reversed row t whenever original row t+1 is
 * CAUSAL, PAD, a SEG_START or past the row end; the same chunk code then runs on them and the
 * results are scattered back. Reverse heads ignore S0 and leave Sfinal zero (a reverse half is not
 * carried into decoding, §8.4).
 * Every matrix product goes through eid_gemm; (sequence, head) pairs run in parallel (BLAS then runs
 * single-threaded inside), each thread with its own scratch sized from the shapes. The entering state
 * of every chunk is saved for backward, which walks the chunks in reverse carrying dS = ∂L/∂S_out.
 * The decay gradient uses the identity of docs/layers.md §0.7(4) with q = C, k = B (per head, summed
 * over N): dG_t = C_t·dC_t − B_t·dB_t, dg_t = Σ_{s ≥ t, same segment} dG_s, then dΔ_t += a·dg_t and
 * da += Σ_t Δ_t·dg_t. */
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/ssd.h"
#include "kernels/seq.h"

typedef struct {
    real *CB, *Mm, *dM, *Bw, *Cw, *dBw, *dCw, *dS, *Gc, *seg, *dts, *ddq, *dYc; /* one chunk */
    real *dtv, *keep, *rst, *ddtv, *dGv;                                      /* one row of T tokens */
    real *Xr, *BCr, *Yr, *dXr, *dBCr;                                         /* reversed copies */
} Scratch;

/* The reversed copies (3·T·P + 4·T·N reals) exist only when some head runs in reverse. */
static size_t scratch_size(int T, int P, int N, int Q, int with_rev) {
    return 3 * (size_t)Q * Q + 4 * (size_t)Q * N + (size_t)P * N + 4 * (size_t)Q + (size_t)Q * P + 5 * (size_t)T +
           (with_rev ? 3 * (size_t)T * P + 4 * (size_t)T * N : 0);
}

static real *scratch_alloc(Scratch *s, int T, int P, int N, int Q, int with_rev) {
    real *base = eid_aligned_alloc(scratch_size(T, P, N, Q, with_rev) * sizeof(real)), *w = base;
    s->CB = w, w += (size_t)Q * Q;
    s->Mm = w, w += (size_t)Q * Q;
    s->dM = w, w += (size_t)Q * Q;
    s->Bw = w, w += (size_t)Q * N;
    s->Cw = w, w += (size_t)Q * N;
    s->dBw = w, w += (size_t)Q * N;
    s->dCw = w, w += (size_t)Q * N;
    s->dS = w, w += (size_t)P * N;
    s->Gc = w, w += Q;
    s->seg = w, w += Q;
    s->dts = w, w += Q;
    s->ddq = w, w += Q;
    s->dYc = w, w += (size_t)Q * P;
    s->dtv = w, w += T;
    s->keep = w, w += T;
    s->rst = w, w += T;
    s->ddtv = w, w += T;
    s->dGv = w, w += T;
    if (!with_rev) {
        s->Xr = s->Yr = s->dXr = s->BCr = s->dBCr = NULL;
        return base;
    }
    s->Xr = w, w += (size_t)T * P;
    s->Yr = w, w += (size_t)T * P;
    s->dXr = w, w += (size_t)T * P;
    s->BCr = w, w += 2 * (size_t)T * N;
    s->dBCr = w;
    return base;
}

/* One (sequence, head) in the order the recurrence runs: X rows (stride ldx), B and C rows (stride
 * ldbc), and per row Δ (0 at PAD), keep (0 at PAD), rst (1 = the state is zeroed before this row). */
typedef struct {
    const real *X, *Bm, *Cm;
    int ldx, ldbc, T;
} View;

/* Per-row Δ, keep and reset of head h of row b, in run order (reversed when rev). */
static void row_prep(const real *dt, int H, int h, const uint8_t *flags, size_t base, int T, int rev, const Scratch *s) {
    for (int j = 0; j < T; j++) {
        int t = rev ? T - 1 - j : j;
        uint8_t f = flags ? flags[base + t] : FLAG_CAUSAL;
        int pad = (f & FLAG_PAD) != 0, rs;
        if (!rev) rs = !pad && (f & FLAG_SEG_START);
        else { /* cut: a reverse state never carries out of a CAUSAL, PAD or segment-start token, or past the end */
            uint8_t fn = t + 1 < T ? (flags ? flags[base + t + 1] : FLAG_CAUSAL) : FLAG_CAUSAL;
            rs = (fn & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START)) != 0;
        }
        s->keep[j] = pad ? 0 : 1;
        s->dtv[j] = pad ? 0 : dt[(base + t) * H + h];
        s->rst[j] = rs;
    }
}

/* Segment index, restarted inclusive cumulative log-decay and Δ (contiguous) of rows j0..j0+L−1. */
static void prep(real a, int j0, int L, const Scratch *s) {
    for (int r = 0; r < L; r++) {
        int rs = s->rst[j0 + r] != 0;
        s->dts[r] = s->dtv[j0 + r];
        s->seg[r] = (r ? s->seg[r - 1] : 0) + rs;
        s->Gc[r] = (r == 0 || rs ? 0 : s->Gc[r - 1]) + s->dts[r] * a;
    }
}

/* E[r][c] = exp(G_r − G_c) where c ≤ r in r's segment, else 0 (the exponent is clamped at 0 so that
 * masked entries never overflow); a select, not a branch, so the row vectorises. gr, sr: G_r, seg_r. */
static inline real decay_mask(const real *restrict Gc, const real *restrict seg, real gr, real sr, int r, int c) {
    real e = rexp(EID_MIN(gr - Gc[c], 0));
    return c <= r && seg[c] == sr ? e : 0;
}

/* M = (C·Bᵀ) ⊙ E ⊙ Δ_s from CB (CB kept). */
static void build_M(const Scratch *s, int L, int Q) {
    const real *restrict Gc = s->Gc, *restrict seg = s->seg, *restrict dts = s->dts;
    for (int r = 0; r < L; r++) {
        const real *restrict cb = s->CB + (size_t)r * Q;
        real *restrict mr = s->Mm + (size_t)r * Q;
        const real gr = Gc[r], sr = seg[r];
#pragma omp simd
        for (int c = 0; c <= r; c++) mr[c] = cb[c] * decay_mask(Gc, seg, gr, sr, r, c) * dts[c];
        for (int c = r + 1; c < L; c++) mr[c] = 0; /* causal: the upper triangle is 0 */
    }
}

/* Cw (returns 0 when no row sees the entering state) and Bw. */
static int build_w(const Scratch *s, const real *Bg, const real *Cg, int ld, int L, int N) {
    real last = s->seg[L - 1], GL = s->Gc[L - 1];
    for (int r = 0; r < L; r++) {
        const real *br = Bg + (size_t)r * ld;
        real wb = s->seg[r] == last ? rexp(GL - s->Gc[r]) * s->dts[r] : 0;
        for (int n = 0; n < N; n++) s->Bw[r * N + n] = br[n] * wb;
    }
    if (s->seg[0] != 0) return 0;
    for (int r = 0; r < L; r++) {
        const real *cr = Cg + (size_t)r * ld;
        real wc = s->seg[r] == 0 ? rexp(s->Gc[r]) : 0;
        for (int n = 0; n < N; n++) s->Cw[r * N + n] = cr[n] * wc;
    }
    return 1;
}

/* Forward over one view: Y [T, P] stride ldy; Sck [nck, P, N] entering states; S0 may be NULL;
 * Sfinal (may be NULL) receives the state after the last row. */
static void fwd_view(const View *v, real a, real Dh, real *Y, int ldy, real *Sck, const real *S0, real *Sfinal, int P,
                     int N, int Q, const Scratch *s) {
    int T = v->T, nck = EID_CDIV(T, Q);
    if (S0) memcpy(Sck, S0, sizeof(real) * P * N);
    else memset(Sck, 0, sizeof(real) * P * N);
    for (int c = 0; c < nck; c++) {
        int j0 = c * Q, L = EID_MIN(Q, T - j0);
        const real *X = v->X + (size_t)j0 * v->ldx, *Bg = v->Bm + (size_t)j0 * v->ldbc, *Cg = v->Cm + (size_t)j0 * v->ldbc;
        real *Yc = Y + (size_t)j0 * ldy, *S = Sck + (size_t)c * P * N;
        prep(a, j0, L, s);
        eid_gemm(0, 1, L, L, N, 1, Cg, v->ldbc, Bg, v->ldbc, 0, s->CB, Q);
        build_M(s, L, Q);
        eid_gemm(0, 0, L, P, L, 1, s->Mm, Q, X, v->ldx, 0, Yc, ldy);
        int has_off = build_w(s, Bg, Cg, v->ldbc, L, N);
        if ((c > 0 || S0) && has_off) eid_gemm(0, 1, L, P, N, 1, s->Cw, N, S, N, 1, Yc, ldy);
        for (int r = 0; r < L; r++) {
            real *yr = Yc + (size_t)r * ldy;
            const real *xr = X + (size_t)r * v->ldx;
            if (s->keep[j0 + r] == 0) memset(yr, 0, sizeof(real) * P); /* PAD: y = 0 */
            else
#pragma omp simd
                for (int p = 0; p < P; p++) yr[p] += Dh * xr[p];
        }
        real *Sn = c + 1 < nck ? S + (size_t)P * N : Sfinal;
        if (Sn) {
            real dec = s->seg[L - 1] == 0 ? rexp(s->Gc[L - 1]) : 0;
            for (int j = 0; j < P * N; j++) Sn[j] = dec * S[j];
            eid_gemm(1, 0, P, N, L, 1, X, v->ldx, s->Bw, N, 1, Sn, N);
        }
    }
}

size_t k_ssd_work(int B, int T, int H, int N) {
    size_t M = (size_t)B * T;
    return 2 * M * H * N + 2 * (size_t)B * H; /* dB, dC per head; per-(b,h) dA_log, dD partials */
}

/* Gather head h of row b time-reversed: X → Xr [T, P], B and C → BCr [T, 2N] (C at column N). */
static void gather_rev(const real *xbc, int ld, size_t base, int T, int xoff, int boff, int coff, int P, int N,
                       const Scratch *s) {
    for (int j = 0; j < T; j++) {
        const real *row = xbc + (base + T - 1 - j) * ld;
        memcpy(s->Xr + (size_t)j * P, row + xoff, sizeof(real) * P);
        memcpy(s->BCr + (size_t)j * 2 * N, row + boff, sizeof(real) * N);
        memcpy(s->BCr + (size_t)j * 2 * N + N, row + coff, sizeof(real) * N);
    }
}

void k_ssd_fwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y, real *Sck, int B,
               int T, int H, int P, int G, int N, int chunk, const uint8_t *flags, int rev_from, const real *S0,
               real *Sfinal, size_t ldS) {
    int I = H * P, Q = chunk, nck = EID_CDIV(T, Q), hpg = H / G;
#pragma omp parallel
    {
        Scratch s;
        real *mem = scratch_alloc(&s, T, P, N, Q, rev_from < H);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                int g = h / hpg, rev = h >= rev_from;
                size_t base = (size_t)b * T;
                real a = -rexp(A_log[h]);
                real *Sh = Sck + ((size_t)b * H + h) * nck * P * N;
                real *Sf = Sfinal ? Sfinal + (size_t)b * ldS + (size_t)h * P * N : NULL;
                const real *S0h = S0 && !rev ? S0 + (size_t)b * ldS + (size_t)h * P * N : NULL;
                row_prep(dt, H, h, flags, base, T, rev, &s);
                View v;
                v.T = T;
                if (!rev) {
                    v.X = xbc + base * ld + h * P, v.Bm = xbc + base * ld + I + g * N, v.Cm = v.Bm + G * N;
                    v.ldx = ld, v.ldbc = ld;
                    fwd_view(&v, a, Dp[h], y + base * I + h * P, I, Sh, S0h, Sf, P, N, Q, &s);
                } else {
                    gather_rev(xbc, ld, base, T, h * P, I + g * N, I + G * N + g * N, P, N, &s);
                    v.X = s.Xr, v.Bm = s.BCr, v.Cm = s.BCr + N, v.ldx = P, v.ldbc = 2 * N;
                    fwd_view(&v, a, Dp[h], s.Yr, P, Sh, NULL, NULL, P, N, Q, &s);
                    for (int j = 0; j < T; j++)
                        memcpy(y + (base + T - 1 - j) * I + h * P, s.Yr + (size_t)j * P, sizeof(real) * P);
                    if (Sf) memset(Sf, 0, sizeof(real) * P * N);
                }
            }
        free(mem);
    }
}

/* Backward over one view. dY [T, P] stride ldy (PAD rows ignored); accumulates dX (stride lddx);
 * writes dB, dC (stride lddbc) and the per-row dΔ into s->ddtv; adds to *da (∂L/∂a) and *dDh. */
static void bwd_view(const View *v, real a, real Dh, const real *dY, int ldy, const real *Sck, real *dX, int lddx,
                     real *dB, real *dC, int lddbc, int P, int N, int Q, const Scratch *s, real *da, real *dDh) {
    int T = v->T, nck = EID_CDIV(T, Q);
    real dDacc = 0;
    memset(s->dS, 0, sizeof(real) * P * N);
    for (int c = nck - 1; c >= 0; c--) {
        int j0 = c * Q, L = EID_MIN(Q, T - j0);
        const real *X = v->X + (size_t)j0 * v->ldx, *Bg = v->Bm + (size_t)j0 * v->ldbc, *Cg = v->Cm + (size_t)j0 * v->ldbc;
        const real *S = Sck + (size_t)c * P * N;
        const real *dYc = dY + (size_t)j0 * ldy;
        int ldyc = ldy;
        real *dXc = dX + (size_t)j0 * lddx, *dBc = dB + (size_t)j0 * lddbc, *dCc = dC + (size_t)j0 * lddbc;
        real *dd = s->ddtv + j0;
        int npad = 0;
        for (int r = 0; r < L; r++) npad += s->keep[j0 + r] == 0;
        if (npad) { /* PAD rows: their dy is ignored (their y is defined as 0) */
            for (int r = 0; r < L; r++) {
                if (s->keep[j0 + r] != 0) memcpy(s->dYc + (size_t)r * P, dYc + (size_t)r * ldy, sizeof(real) * P);
                else memset(s->dYc + (size_t)r * P, 0, sizeof(real) * P);
            }
            dYc = s->dYc, ldyc = P;
        }
        prep(a, j0, L, s);
        eid_gemm(0, 1, L, L, N, 1, Cg, v->ldbc, Bg, v->ldbc, 0, s->CB, Q);
        build_M(s, L, Q);
        int has_off = build_w(s, Bg, Cg, v->ldbc, L, N);
        int carry = c + 1 < nck; /* dS (gradient of the state leaving this chunk) may be non-zero */
        /* Y = M·X + D·X ;  S_out ∋ Xᵀ·Bw */
        eid_gemm(1, 0, L, P, L, 1, s->Mm, Q, dYc, ldyc, 1, dXc, lddx);
        if (carry) eid_gemm(0, 1, L, P, N, 1, s->Bw, N, s->dS, N, 1, dXc, lddx);
        for (int r = 0; r < L; r++) {
            const real *gy = dYc + (size_t)r * ldyc, *xr = X + (size_t)r * v->ldx;
            real *dxr = dXc + (size_t)r * lddx, acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int p = 0; p < P; p++) {
                dxr[p] += Dh * gy[p];
                acc += gy[p] * xr[p];
            }
            dDacc += acc;
        }
        /* dM = dY·Xᵀ → dΔ_s (through M) and dCB = dM ⊙ E ⊙ Δ_s (in place) */
        eid_gemm(0, 1, L, L, P, 1, dYc, ldyc, X, v->ldx, 0, s->dM, Q);
        real *restrict ddq = s->ddq; /* dΔ_q through M, summed over the rows r */
        memset(ddq, 0, sizeof(real) * L);
        const real *restrict Gc = s->Gc, *restrict seg = s->seg, *restrict dts = s->dts;
        for (int r = 0; r < L; r++) {
            real *restrict dm = s->dM + (size_t)r * Q;
            const real *restrict cb = s->CB + (size_t)r * Q;
            const real gr = Gc[r], sr = seg[r];
#pragma omp simd
            for (int q = 0; q <= r; q++) {
                real e = decay_mask(Gc, seg, gr, sr, r, q), gm = dm[q];
                ddq[q] += gm * cb[q] * e;
                dm[q] = gm * e * dts[q];
            }
            for (int q = r + 1; q < L; q++) dm[q] = 0; /* causal: the upper triangle is 0 */
        }
        for (int q = 0; q < L; q++) dd[q] = ddq[q];
        eid_gemm(0, 0, L, N, L, 1, s->dM, Q, Bg, v->ldbc, 0, dCc, lddbc);
        eid_gemm(1, 0, L, N, L, 1, s->dM, Q, Cg, v->ldbc, 0, dBc, lddbc);
        /* Y ∋ Cw·S_inᵀ (chunk 0's entering state is S0, zeros when there was none) */
        if (has_off) {
            eid_gemm(0, 0, L, N, P, 1, dYc, ldyc, S, N, 0, s->dCw, N);
            for (int r = 0; r < L && s->seg[r] == 0; r++) {
                real e = rexp(s->Gc[r]);
                for (int n = 0; n < N; n++) dCc[(size_t)r * lddbc + n] += s->dCw[r * N + n] * e;
            }
        }
        /* S_out ∋ Xᵀ·Bw: dBw = X·dS */
        if (carry) {
            eid_gemm(0, 0, L, N, P, 1, X, v->ldx, s->dS, N, 0, s->dBw, N);
            real last = s->seg[L - 1], GL = s->Gc[L - 1];
            for (int r = 0; r < L; r++) {
                if (s->seg[r] != last) continue;
                real w = rexp(GL - s->Gc[r]), dl = s->dts[r], acc = 0;
                const real *br = Bg + (size_t)r * v->ldbc;
                for (int n = 0; n < N; n++) {
                    dBc[(size_t)r * lddbc + n] += s->dBw[r * N + n] * w * dl;
                    acc += s->dBw[r * N + n] * br[n];
                }
                dd[r] += acc * w;
            }
        }
        /* dS for the state entering this chunk: dec·dS + dYᵀ·Cw */
        if (c > 0) {
            real dec = s->seg[L - 1] == 0 ? rexp(s->Gc[L - 1]) : 0;
            for (int j = 0; j < P * N; j++) s->dS[j] *= dec;
            if (has_off) eid_gemm(1, 0, P, N, L, 1, dYc, ldyc, s->Cw, N, 1, s->dS, N);
        }
        /* dG_t = C_t·dC_t − B_t·dB_t (this head's full gradients of its query and key) */
        for (int r = 0; r < L; r++) {
            const real *br = Bg + (size_t)r * v->ldbc, *cr = Cg + (size_t)r * v->ldbc;
            const real *gb = dBc + (size_t)r * lddbc, *gc = dCc + (size_t)r * lddbc;
            real acc = 0;
            for (int n = 0; n < N; n++) acc += cr[n] * gc[n] - br[n] * gb[n];
            s->dGv[j0 + r] = acc;
        }
    }
    /* dg_t = Σ_{s ≥ t, same segment} dG_s ;  dΔ_t += a·dg_t ;  da += Δ_t·dg_t ; PAD rows get 0 */
    real acc = 0, dacc = 0;
    for (int j = T - 1; j >= 0; j--) {
        acc += s->dGv[j];
        s->ddtv[j] = (s->ddtv[j] + a * acc) * s->keep[j];
        dacc += s->dtv[j] * acc;
        if (s->rst[j] != 0) acc = 0;
    }
    *da += dacc, *dDh += dDacc;
}

void k_ssd_bwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, const real *dy,
               const real *Sck, real *dxbc, real *ddt, real *dA_log, real *dD, int B, int T, int H, int P, int G,
               int N, int chunk, const uint8_t *flags, int rev_from, real *work) {
    int I = H * P, Q = chunk, nck = EID_CDIV(T, Q), hpg = H / G, HN = H * N;
    size_t M = (size_t)B * T;
    real *dBh = work, *dCh = dBh + M * HN, *part = dCh + M * HN;
#pragma omp parallel
    {
        Scratch s;
        real *mem = scratch_alloc(&s, T, P, N, Q, rev_from < H);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                int g = h / hpg, rev = h >= rev_from;
                size_t base = (size_t)b * T;
                real a = -rexp(A_log[h]), da = 0, dDh = 0;
                const real *Sh = Sck + ((size_t)b * H + h) * nck * P * N;
                row_prep(dt, H, h, flags, base, T, rev, &s);
                View v;
                v.T = T;
                if (!rev) {
                    v.X = xbc + base * ld + h * P, v.Bm = xbc + base * ld + I + g * N, v.Cm = v.Bm + G * N;
                    v.ldx = ld, v.ldbc = ld;
                    bwd_view(&v, a, Dp[h], dy + base * I + h * P, I, Sh, dxbc + base * ld + h * P, ld,
                             dBh + base * HN + h * N, dCh + base * HN + h * N, HN, P, N, Q, &s, &da, &dDh);
                    for (int t = 0; t < T; t++) ddt[(base + t) * H + h] += s.ddtv[t];
                } else {
                    gather_rev(xbc, ld, base, T, h * P, I + g * N, I + G * N + g * N, P, N, &s);
                    for (int j = 0; j < T; j++)
                        memcpy(s.Yr + (size_t)j * P, dy + (base + T - 1 - j) * I + h * P, sizeof(real) * P);
                    memset(s.dXr, 0, sizeof(real) * (size_t)T * P);
                    v.X = s.Xr, v.Bm = s.BCr, v.Cm = s.BCr + N, v.ldx = P, v.ldbc = 2 * N;
                    bwd_view(&v, a, Dp[h], s.Yr, P, Sh, s.dXr, P, s.dBCr, s.dBCr + N, 2 * N, P, N, Q, &s, &da, &dDh);
                    for (int j = 0; j < T; j++) {
                        size_t t = base + T - 1 - j;
                        real *dxr = dxbc + t * ld + h * P;
                        const real *src = s.dXr + (size_t)j * P;
                        for (int p = 0; p < P; p++) dxr[p] += src[p];
                        memcpy(dBh + t * HN + h * N, s.dBCr + (size_t)j * 2 * N, sizeof(real) * N);
                        memcpy(dCh + t * HN + h * N, s.dBCr + (size_t)j * 2 * N + N, sizeof(real) * N);
                        ddt[t * H + h] += s.ddtv[j];
                    }
                }
                part[(size_t)b * H + h] = da * a; /* a = −exp(A_log): da/dA_log = a */
                part[(size_t)(B + b) * H + h] = dDh;
            }
        free(mem);
    }
    for (int h = 0; h < H; h++)
        for (int b = 0; b < B; b++) dA_log[h] += part[(size_t)b * H + h], dD[h] += part[(size_t)(B + b) * H + h];
    /* B and C are shared by the heads of a group: sum the per-head gradients */
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++)
        for (int gg = 0; gg < G; gg++)
            for (int n = 0; n < N; n++) {
                real sb = 0, sc = 0;
                for (int h = gg * hpg; h < (gg + 1) * hpg; h++) sb += dBh[m * HN + h * N + n], sc += dCh[m * HN + h * N + n];
                dxbc[m * ld + I + gg * N + n] += sb;
                dxbc[m * ld + I + G * N + gg * N + n] += sc;
            }
}
void k_ssd_step(real *S, size_t ldS, const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp,
                real *y, int nseq, int H, int P, int G, int N) {
    int I = H * P, hpg = H / G;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * H * P * N >= 16384)
    for (int q = 0; q < nseq; q++)
        for (int h = 0; h < H; h++) {
            int g = h / hpg;
            real d = dt[(size_t)q * H + h], al = rexp(d * -rexp(A_log[h]));
            const real *x = xbc + (size_t)q * ld + h * P, *Bv = xbc + (size_t)q * ld + I + g * N, *Cv = Bv + G * N;
            real *Sh = S + (size_t)q * ldS + (size_t)h * P * N, *yh = y + (size_t)q * I + h * P;
            for (int p = 0; p < P; p++) {
                real dx = d * x[p], acc = 0;
                real *sr = Sh + (size_t)p * N;
                for (int n = 0; n < N; n++) {
                    sr[n] = al * sr[n] + dx * Bv[n];
                    acc += sr[n] * Cv[n];
                }
                yh[p] = acc + Dp[h] * x[p];
            }
        }
}

void k_gnorm_fwd(const real *x, const real *w, real *y, real *rstd, int N, int C, int G, real eps) {
    int cg = C / G;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++)
        for (int g = 0; g < G; g++) {
            const real *xr = x + (size_t)r * C + g * cg;
            real *yr = y + (size_t)r * C + g * cg;
            const real *wg = w + g * cg;
            double ss = 0;
            for (int j = 0; j < cg; j++) ss += (double)xr[j] * xr[j];
            real s = (real)(1.0 / sqrt(ss / cg + eps));
            rstd[(size_t)r * G + g] = s;
            for (int j = 0; j < cg; j++) yr[j] = wg[j] * xr[j] * s;
        }
}

/* With n = x·s: dw += Σ_rows dy⊙n (first, since dx may overwrite dy), dx = s·(w⊙dy − n·mean_group(w⊙dy⊙n)). */
void k_gnorm_bwd(const real *dy, const real *x, const real *w, const real *rstd, real *dx, real *dw, int N, int C,
                 int G) {
    int cg = C / G;
    const int JB = 16;
#pragma omp parallel for schedule(static)
    for (int j0 = 0; j0 < C; j0 += JB) {
        int j1 = EID_MIN(C, j0 + JB);
        real acc[16] = {0};
        for (int r = 0; r < N; r++) {
            const real *xr = x + (size_t)r * C, *dyr = dy + (size_t)r * C;
            for (int j = j0; j < j1; j++) acc[j - j0] += dyr[j] * xr[j] * rstd[(size_t)r * G + j / cg];
        }
        for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
    }
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++)
        for (int g = 0; g < G; g++) {
            size_t o = (size_t)r * C + g * cg;
            const real *xr = x + o, *dyr = dy + o, *wg = w + g * cg;
            real *dxr = dx + o;
            real s = rstd[(size_t)r * G + g];
            double dot = 0;
            for (int j = 0; j < cg; j++) dot += (double)dyr[j] * wg[j] * xr[j] * s;
            real m = (real)(dot / cg);
            for (int j = 0; j < cg; j++) dxr[j] = s * (wg[j] * dyr[j] - xr[j] * s * m);
        }
}

static inline real softplus(real v) { return v > 20 ? v : rlog1p(rexp(v)); }

void k_ssd_delta_fwd(const real *dt, int ld, const real *bias, real *dlt, int M, int H) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++) dlt[(size_t)m * H + h] = softplus(dt[(size_t)m * ld + h] + bias[h]);
}

void k_ssd_delta_bwd(const real *dt, int ld, const real *bias, const real *ddlt, real *ddt_raw, int ldd, real *dbias,
                     int M, int H) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++) {
            real v = dt[(size_t)m * ld + h] + bias[h];
            ddt_raw[(size_t)m * ldd + h] = ddlt[(size_t)m * H + h] / (1 + rexp(-v));
        }
    const int JB = 16;
    for (int h0 = 0; h0 < H; h0 += JB) {
        int h1 = EID_MIN(H, h0 + JB);
        real acc[16] = {0};
        for (int m = 0; m < M; m++)
            for (int h = h0; h < h1; h++) acc[h - h0] += ddt_raw[(size_t)m * ldd + h];
        for (int h = h0; h < h1; h++) dbias[h] += acc[h - h0];
    }
}
