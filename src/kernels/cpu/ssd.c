/* ssd.c — Mamba-2 SSD (scalar decay per head), layers.md §3: chunked forward/backward and one-token step.
 *
 * Chunked form, per (sequence, head), chunk rows r, s = 0..L−1 (L ≤ Q = chunk):
 *   seg_r = number of SEG_START flags in rows 0..r;  Gc_r = Σ g_u over u ≤ r in row r's segment (g = Δ·a)
 *   E[r,s] = exp(Gc_r − Gc_s)  for s ≤ r, seg_s = seg_r, else 0
 *   M      = (C·Bᵀ) ⊙ E ⊙ Δ_s           (Q×Q)            Y  = M·X + Cw·S_inᵀ + D·X
 *   Cw_r   = C_r·exp(Gc_r)·[seg_r = 0]                    (rows that still see the entering state)
 *   Bw_s   = B_s·Δ_s·exp(Gc_{L−1} − Gc_s)·[seg_s = seg_{L−1}]
 *   S_out  = dec·S_in + Xᵀ·Bw,   dec = exp(Gc_{L−1})·[seg_{L−1} = 0]
 * Every matrix product goes through eid_gemm; (sequence, head) pairs run in parallel (BLAS then runs
 * single-threaded inside). The entering state of every chunk is saved for backward, which walks the
 * chunks in reverse carrying dS = ∂L/∂S_out. The decay gradient uses the identity of layers.md §0.7(4)
 * with q = C, k = B (per head, summed over N):  dG_t = C_t·dC_t − B_t·dB_t,  dg_t = Σ_{s ≥ t, same segment} dG_s,
 * then dΔ_t += a·dg_t and da += Σ_t Δ_t·dg_t. */
#include <omp.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/ssd.h"
#include "kernels/seq.h"

typedef struct {
    real *CB, *Mm, *dM, *Bw, *Cw, *dBw, *dCw, *dS, *Gc, *seg, *dts, *ddq;
} Scratch;

static size_t per_thread(int P, int N, int Q) { return 3 * (size_t)Q * Q + 4 * (size_t)Q * N + (size_t)P * N + 4 * (size_t)Q; }
static size_t shared_part(int B, int T, int H, int N) {
    size_t M = (size_t)B * T;
    return 2 * M * H * N + M * H + 2 * (size_t)B * H; /* dB, dC per head; dG; per-(b,h) dA_log, dD partials */
}

size_t k_ssd_work(int B, int T, int H, int P, int N, int chunk, int nthreads) {
    return shared_part(B, T, H, N) + (size_t)EID_MAX(1, nthreads) * per_thread(P, N, chunk);
}

static Scratch scratch(real *work, int B, int T, int H, int P, int N, int Q) {
    real *w = work + shared_part(B, T, H, N) + (size_t)omp_get_thread_num() * per_thread(P, N, Q);
    Scratch s;
    s.CB = w, w += (size_t)Q * Q;
    s.Mm = w, w += (size_t)Q * Q;
    s.dM = w, w += (size_t)Q * Q;
    s.Bw = w, w += (size_t)Q * N;
    s.Cw = w, w += (size_t)Q * N;
    s.dBw = w, w += (size_t)Q * N;
    s.dCw = w, w += (size_t)Q * N;
    s.dS = w, w += (size_t)P * N;
    s.Gc = w, w += Q;
    s.seg = w, w += Q;
    s.dts = w, w += Q;
    s.ddq = w;
    return s;
}

/* Segment index, restarted inclusive cumulative log-decay and Δ (contiguous) of head h's L rows
 * starting at token row0. */
static void prep(const real *dt, int H, int h, real a, const uint8_t *flags, size_t row0, int L, const Scratch *s) {
    for (int r = 0; r < L; r++) {
        int rs = flags && (flags[row0 + r] & FLAG_SEG_START);
        s->dts[r] = dt[(row0 + r) * H + h];
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
static int build_w(const Scratch *s, const real *Bg, const real *Cg, int ld, const real *dt, int H, int h, size_t row0,
                   int L, int N) {
    real last = s->seg[L - 1], GL = s->Gc[L - 1];
    for (int r = 0; r < L; r++) {
        const real *br = Bg + (size_t)r * ld;
        real wb = s->seg[r] == last ? rexp(GL - s->Gc[r]) * dt[(row0 + r) * H + h] : 0;
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

void k_ssd_fwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y, real *Sin, int B,
               int T, int H, int P, int G, int N, int chunk, const uint8_t *flags, real *work, int nthreads) {
    int I = H * P, Q = chunk, nck = EID_CDIV(T, Q), hpg = H / G;
    nthreads = EID_MAX(1, nthreads);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(nthreads)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            Scratch s = scratch(work, B, T, H, P, N, Q);
            int g = h / hpg;
            real a = -rexp(A_log[h]), Dh = Dp[h];
            real *S0 = Sin + ((size_t)b * H + h) * nck * P * N;
            memset(S0, 0, sizeof(real) * P * N);
            for (int c = 0; c < nck; c++) {
                int t0 = c * Q, L = EID_MIN(Q, T - t0);
                size_t row0 = (size_t)b * T + t0;
                const real *X = xbc + row0 * ld + h * P, *Bg = xbc + row0 * ld + I + g * N, *Cg = Bg + G * N;
                real *Y = y + row0 * I + h * P, *S = S0 + (size_t)c * P * N;
                prep(dt, H, h, a, flags, row0, L, &s);
                eid_gemm(0, 1, L, L, N, 1, Cg, ld, Bg, ld, 0, s.CB, Q);
                build_M(&s, L, Q);
                eid_gemm(0, 0, L, P, L, 1, s.Mm, Q, X, ld, 0, Y, I);
                int has_off = build_w(&s, Bg, Cg, ld, dt, H, h, row0, L, N);
                if (c > 0 && has_off) eid_gemm(0, 1, L, P, N, 1, s.Cw, N, S, N, 1, Y, I);
                for (int r = 0; r < L; r++)
                    for (int p = 0; p < P; p++) Y[(size_t)r * I + p] += Dh * X[(size_t)r * ld + p];
                if (c + 1 < nck) {
                    real *Sn = S + (size_t)P * N, dec = s.seg[L - 1] == 0 ? rexp(s.Gc[L - 1]) : 0;
                    for (int j = 0; j < P * N; j++) Sn[j] = dec * S[j];
                    eid_gemm(1, 0, P, N, L, 1, X, ld, s.Bw, N, 1, Sn, N);
                }
            }
        }
}

void k_ssd_bwd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, const real *dy,
               const real *Sin, real *dxbc, real *ddt, real *dA_log, real *dD, int B, int T, int H, int P, int G,
               int N, int chunk, const uint8_t *flags, real *work, int nthreads) {
    int I = H * P, Q = chunk, nck = EID_CDIV(T, Q), hpg = H / G, HN = H * N;
    size_t M = (size_t)B * T;
    real *dBh = work, *dCh = dBh + M * HN, *dG = dCh + M * HN, *part = dG + M * H;
    nthreads = EID_MAX(1, nthreads);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(nthreads)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            Scratch s = scratch(work, B, T, H, P, N, Q);
            int g = h / hpg;
            real a = -rexp(A_log[h]), Dh = Dp[h], dDh = 0;
            const real *S0 = Sin + ((size_t)b * H + h) * nck * P * N;
            memset(s.dS, 0, sizeof(real) * P * N);
            for (int c = nck - 1; c >= 0; c--) {
                int t0 = c * Q, L = EID_MIN(Q, T - t0);
                size_t row0 = (size_t)b * T + t0;
                const real *X = xbc + row0 * ld + h * P, *Bg = xbc + row0 * ld + I + g * N, *Cg = Bg + G * N;
                const real *dY = dy + row0 * I + h * P, *S = S0 + (size_t)c * P * N;
                real *dX = dxbc + row0 * ld + h * P, *dB = dBh + row0 * HN + h * N, *dC = dCh + row0 * HN + h * N;
                real *dd = ddt + row0 * H + h;
                prep(dt, H, h, a, flags, row0, L, &s);
                eid_gemm(0, 1, L, L, N, 1, Cg, ld, Bg, ld, 0, s.CB, Q);
                build_M(&s, L, Q);
                int has_off = build_w(&s, Bg, Cg, ld, dt, H, h, row0, L, N);
                int carry = c + 1 < nck; /* dS (gradient of the state leaving this chunk) may be non-zero */
                /* Y = M·X + D·X ;  S_out ∋ Xᵀ·Bw */
                eid_gemm(1, 0, L, P, L, 1, s.Mm, Q, dY, I, 1, dX, ld);
                if (carry) eid_gemm(0, 1, L, P, N, 1, s.Bw, N, s.dS, N, 1, dX, ld);
                for (int r = 0; r < L; r++)
                    for (int p = 0; p < P; p++) {
                        real gy = dY[(size_t)r * I + p];
                        dX[(size_t)r * ld + p] += Dh * gy;
                        dDh += gy * X[(size_t)r * ld + p];
                    }
                /* dM = dY·Xᵀ → dΔ_s (through M) and dCB = dM ⊙ E ⊙ Δ_s (in place) */
                eid_gemm(0, 1, L, L, P, 1, dY, I, X, ld, 0, s.dM, Q);
                real *restrict ddq = s.ddq; /* dΔ_q through M, summed over the rows r */
                memset(ddq, 0, sizeof(real) * L);
                const real *restrict Gc = s.Gc, *restrict seg = s.seg, *restrict dts = s.dts;
                for (int r = 0; r < L; r++) {
                    real *restrict dm = s.dM + (size_t)r * Q;
                    const real *restrict cb = s.CB + (size_t)r * Q;
                    const real gr = Gc[r], sr = seg[r];
#pragma omp simd
                    for (int q = 0; q <= r; q++) {
                        real e = decay_mask(Gc, seg, gr, sr, r, q), gm = dm[q];
                        ddq[q] += gm * cb[q] * e;
                        dm[q] = gm * e * dts[q];
                    }
                    for (int q = r + 1; q < L; q++) dm[q] = 0; /* causal: the upper triangle is 0 */
                }
                for (int q = 0; q < L; q++) dd[(size_t)q * H] += ddq[q];
                eid_gemm(0, 0, L, N, L, 1, s.dM, Q, Bg, ld, 0, dC, HN);
                eid_gemm(1, 0, L, N, L, 1, s.dM, Q, Cg, ld, 0, dB, HN);
                /* Y ∋ Cw·S_inᵀ */
                if (c > 0 && has_off) {
                    eid_gemm(0, 0, L, N, P, 1, dY, I, S, N, 0, s.dCw, N);
                    for (int r = 0; r < L && s.seg[r] == 0; r++) {
                        real e = rexp(s.Gc[r]);
                        for (int n = 0; n < N; n++) dC[(size_t)r * HN + n] += s.dCw[r * N + n] * e;
                    }
                }
                /* S_out ∋ Xᵀ·Bw: dBw = X·dS */
                if (carry) {
                    eid_gemm(0, 0, L, N, P, 1, X, ld, s.dS, N, 0, s.dBw, N);
                    real last = s.seg[L - 1], GL = s.Gc[L - 1];
                    for (int r = 0; r < L; r++) {
                        if (s.seg[r] != last) continue;
                        real w = rexp(GL - s.Gc[r]), dl = dt[(row0 + r) * H + h], acc = 0;
                        const real *br = Bg + (size_t)r * ld;
                        for (int n = 0; n < N; n++) {
                            dB[(size_t)r * HN + n] += s.dBw[r * N + n] * w * dl;
                            acc += s.dBw[r * N + n] * br[n];
                        }
                        dd[(size_t)r * H] += acc * w;
                    }
                }
                /* dS for the state entering this chunk: dec·dS + dYᵀ·Cw */
                if (c > 0) {
                    real dec = s.seg[L - 1] == 0 ? rexp(s.Gc[L - 1]) : 0;
                    for (int j = 0; j < P * N; j++) s.dS[j] *= dec;
                    if (has_off) eid_gemm(1, 0, P, N, L, 1, dY, I, s.Cw, N, 1, s.dS, N);
                }
                /* dG_t = C_t·dC_t − B_t·dB_t (this head's full gradients of its query and key) */
                for (int r = 0; r < L; r++) {
                    const real *br = Bg + (size_t)r * ld, *cr = Cg + (size_t)r * ld;
                    real acc = 0;
                    for (int n = 0; n < N; n++) acc += cr[n] * dC[(size_t)r * HN + n] - br[n] * dB[(size_t)r * HN + n];
                    dG[(row0 + r) * H + h] = acc;
                }
            }
            /* dg_t = Σ_{s ≥ t, same segment} dG_s ;  dΔ_t += a·dg_t ;  da += Δ_t·dg_t */
            real acc = 0, da = 0;
            for (int t = T - 1; t >= 0; t--) {
                size_t i = (size_t)b * T + t;
                acc += dG[i * H + h];
                ddt[i * H + h] += a * acc;
                da += dt[i * H + h] * acc;
                if (flags && (flags[i] & FLAG_SEG_START)) acc = 0;
            }
            part[(size_t)b * H + h] = da * a; /* a = −exp(A_log): da/dA_log = a */
            part[(size_t)(B + b) * H + h] = dDh;
        }
    for (int h = 0; h < H; h++)
        for (int b = 0; b < B; b++) dA_log[h] += part[(size_t)b * H + h], dD[h] += part[(size_t)(B + b) * H + h];
    /* B and C are shared by the heads of a group: sum the per-head gradients */
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (size_t m = 0; m < M; m++)
        for (int gg = 0; gg < G; gg++)
            for (int n = 0; n < N; n++) {
                real sb = 0, sc = 0;
                for (int h = gg * hpg; h < (gg + 1) * hpg; h++) sb += dBh[m * HN + h * N + n], sc += dCh[m * HN + h * N + n];
                dxbc[m * ld + I + gg * N + n] += sb;
                dxbc[m * ld + I + G * N + gg * N + n] += sc;
            }
}

void k_ssd_step(real *S, const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y,
                int nseq, int H, int P, int G, int N) {
    int I = H * P, hpg = H / G;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * H * P * N >= 16384)
    for (int q = 0; q < nseq; q++)
        for (int h = 0; h < H; h++) {
            int g = h / hpg;
            real d = dt[(size_t)q * H + h], al = rexp(d * -rexp(A_log[h]));
            const real *x = xbc + (size_t)q * ld + h * P, *Bv = xbc + (size_t)q * ld + I + g * N, *Cv = Bv + G * N;
            real *Sh = S + ((size_t)q * H + h) * P * N, *yh = y + (size_t)q * I + h * P;
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
