/* scan_mamba.c — the Mamba-1 selective scan (layers.md §1.2, §1.4), CPU.
 *
 * Training kernels work on blocks of CB channels held "lane-major" ([N][CB]: one SIMD vector holds
 * one state index n for CB channels), as in scan_longhorn.c: B_t[n] and C_t[n] become broadcasts,
 * y_t = h·C needs no horizontal sum per channel, and the backward's dB, dC (sums over channels) are
 * accumulated lane-wise and reduced once per token. Public layouts stay [.., I, N]: states are
 * transposed at chunk boundaries only.
 * Forward: parallel over (batch × channel blocks). Backward: parallel over (batch × channel
 * ranges), the number of ranges chosen so that there are about two tasks per thread. Each task walks
 * the chunks of its row backwards, recomputes the chunk's states (and decays exp(ΔA)) from the state
 * saved at the chunk start (§0.7), then runs the adjoint recurrence. dA (summed over the batch) and
 * dB, dC (summed over channel ranges) are written to per-task partial buffers and reduced in a fixed
 * order afterwards, so results do not depend on the scheduling. */
#include <omp.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/mamba.h"
#include "kernels/cpu/lanes.h"
#include "kernels/seq.h"

#define CB LANE_CB /* channels per lane-major block = SIMD lanes (16 fp32: one AVX-512 vector) */
#define MAX_N 256   /* d_state limit (checked by the layer) */

#define dexp rexp /* vectorisable in the fp32 build (core/vmath.h) */

static inline int reset_at(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }

void k_mamba_scan_fwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      real *y, int B, int T, int I, int N, int chunk, const uint8_t *flags, real *Sck, real *Sfinal) {
    int ncb = EID_CDIV(I, CB), nck = EID_CDIV(T, chunk);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int i0 = cb * CB, nc = EID_MIN(I, i0 + CB) - i0;
            _Alignas(EID_ALIGN) real h[MAX_N * CB], At[MAX_N * CB];
            _Alignas(EID_ALIGN) real dl[CB], dlu[CB], acc[CB];
            memset(h, 0, sizeof(real) * (size_t)N * CB);
            lane_block_load(At, A, i0, nc, N);
            for (int t = 0; t < T; t++) {
                size_t bt = (size_t)b * T + t;
                if (reset_at(flags, bt)) memset(h, 0, sizeof(real) * (size_t)N * CB);
                if (Sck && t % chunk == 0) lane_block_store(Sck + ((size_t)b * nck + t / chunk) * I * N, h, i0, nc, N);
                lanes_and_product(dl, dlu, delta + bt * I + i0, u + bt * I + i0, nc);
                memset(acc, 0, sizeof acc);
                const real *Bt = Bm + bt * ldbc, *Ct = Cm + bt * ldbc;
                for (int n = 0; n < N; n++) {
                    const real bn = Bt[n], cn = Ct[n];
                    real *restrict hn = h + n * CB;
                    const real *restrict an = At + n * CB;
#pragma omp simd
                    for (int l = 0; l < CB; l++) {
                        real v = dexp(dl[l] * an[l]) * hn[l] + dlu[l] * bn;
                        hn[l] = v;
                        acc[l] += v * cn;
                    }
                }
                lanes_store(y + bt * I + i0, acc, nc);
            }
            if (Sfinal) lane_block_store(Sfinal + (size_t)b * I * N, h, i0, nc, N);
        }
}

/* Backward partition: nb channel ranges of cbs channels (a multiple of CB). */
static void bwd_blocks(int B, int I, int nthreads, int *nb, int *cbs) {
    int want = EID_CDIV(2 * nthreads, B);
    int most = EID_CDIV(I, CB);
    if (want > most) want = most;
    if (want < 1) want = 1;
    *cbs = EID_CDIV(EID_CDIV(I, want), CB) * CB;
    *nb = EID_CDIV(I, *cbs);
}

/* Per-thread work, lane-major over the cbs/CB blocks of a range (L = cbs·N reals):
 *   states (chunk+1)·L | decays chunk·L | G L | dA partial L | A L | dB, dC lanes 2·N·CB
 * then shared: [dA partial B·I·N] [dB/dC partial nb·B·T·2N]. */
static size_t per_thread_work(int cbs, int N, int chunk) { return (2 * (size_t)chunk + 4) * cbs * N + 2 * (size_t)N * CB; }

static size_t bwd_work(int B, int T, int I, int N, int chunk, int nthreads) {
    int nb, cbs;
    bwd_blocks(B, I, nthreads, &nb, &cbs);
    return (size_t)nthreads * per_thread_work(cbs, N, chunk) + (size_t)B * I * N + (size_t)nb * B * T * 2 * N;
}

/* enough for nthreads and for 1 (the call may come from a data-parallel shard: eid_team_threads) */
size_t k_mamba_scan_bwd_work(int B, int T, int I, int N, int chunk, int nthreads) {
    return EID_MAX(bwd_work(B, T, I, N, chunk, nthreads), bwd_work(B, T, I, N, chunk, 1));
}

void k_mamba_scan_bwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      const real *dy, const real *Sck, real *du, real *ddelta, real *dA, real *dB, real *dC, int B,
                      int T, int I, int N, int chunk, const uint8_t *flags, real *work) {
    /* the workspace holds eid_threads() per-thread parts (planned); a shard uses the first */
    int nthreads = eid_team_threads(), nb, cbs, nck = EID_CDIV(T, chunk);
    bwd_blocks(B, I, nthreads, &nb, &cbs);
    size_t per_thread = per_thread_work(cbs, N, chunk), M = (size_t)B * T, N2 = 2 * (size_t)N;
    real *dApart = work + (size_t)nthreads * per_thread; /* [B, I, N] */
    real *dBC = dApart + (size_t)B * I * N;               /* [nb, B·T, 2N]: dB then dC */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(nthreads)
    for (int b = 0; b < B; b++)
        for (int blk = 0; blk < nb; blk++) {
            int r0 = blk * cbs, r1 = EID_MIN(I, r0 + cbs), nbl = EID_CDIV(r1 - r0, CB);
            size_t L = (size_t)nbl * N * CB; /* one lane-major copy of the range */
            real *St = work + (size_t)omp_get_thread_num() * per_thread; /* St[j] = state after token t0+j−1 */
            real *Dec = St + (size_t)(chunk + 1) * L;                      /* Dec[j] = exp(Δ A) at token t0+j */
            real *G = Dec + (size_t)chunk * L;                             /* ∂L/∂h carried backwards */
            real *dAl = G + L, *Al = dAl + L, *dBv = Al + L, *dCv = dBv + (size_t)N * CB;
            real *part = dBC + ((size_t)blk * M + (size_t)b * T) * N2;
            memset(G, 0, sizeof(real) * L);
            for (int k = 0; k < nbl; k++) {
                int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                lane_block_load(Al + (size_t)k * N * CB, A, i0, nc, N);
            }
            memset(dAl, 0, sizeof(real) * L);
            memset(part, 0, sizeof(real) * (size_t)T * N2);
            for (int c = nck - 1; c >= 0; c--) {
                int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk);
                const real *Sc = Sck + ((size_t)b * nck + c) * I * N;
                /* recompute the chunk's states from the saved entering state (never by division) */
                for (int k = 0; k < nbl; k++) {
                    int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                    lane_block_load(St + (size_t)k * N * CB, Sc, i0, nc, N);
                }
                for (int t = t0; t < t1; t++) {
                    size_t bt = (size_t)b * T + t;
                    const real keep = reset_at(flags, bt) ? 0 : 1;
                    const real *Bt = Bm + bt * ldbc;
                    for (int k = 0; k < nbl; k++) {
                        int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                        size_t off = (size_t)(t - t0) * L + (size_t)k * N * CB;
                        const real *prev = St + off;
                        real *cur = St + L + off, *dec = Dec + off;
                        _Alignas(EID_ALIGN) real dl[CB], dlu[CB];
                        lanes_and_product(dl, dlu, delta + bt * I + i0, u + bt * I + i0, nc);
                        const real *At = Al + (size_t)k * N * CB;
                        for (int n = 0; n < N; n++) {
                            const real bn = Bt[n];
#pragma omp simd
                            for (int l = 0; l < CB; l++) {
                                real e = dexp(dl[l] * At[n * CB + l]);
                                dec[n * CB + l] = e;
                                cur[n * CB + l] = keep * e * prev[n * CB + l] + dlu[l] * bn;
                            }
                        }
                    }
                }
                /* adjoint, t = t1−1 … t0 */
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t bt = (size_t)b * T + t;
                    const real keep = reset_at(flags, bt) ? 0 : 1;
                    const real *Bt = Bm + bt * ldbc, *Ct = Cm + bt * ldbc;
                    memset(dBv, 0, sizeof(real) * 2 * (size_t)N * CB);
                    for (int k = 0; k < nbl; k++) {
                        int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                        size_t off = (size_t)(t - t0) * L + (size_t)k * N * CB, koff = (size_t)k * N * CB;
                        const real *prev = St + off, *cur = St + L + off, *dec = Dec + off;
                        real *g = G + koff, *dAk = dAl + koff;
                        _Alignas(EID_ALIGN) real gy[CB], dl[CB], ui[CB], du_acc[CB] = {0}, ddl_acc[CB] = {0};
                        lanes(gy, dy + bt * I + i0, nc);
                        lanes(dl, delta + bt * I + i0, nc);
                        lanes(ui, u + bt * I + i0, nc);
                        const real *At = Al + koff;
                        for (int n = 0; n < N; n++) {
                            const real bn = Bt[n], cn = Ct[n];
                            real *restrict gn_ = g + n * CB, *restrict dan = dAk + n * CB;
                            real *restrict dbn = dBv + n * CB, *restrict dcn = dCv + n * CB;
                            const real *restrict sp = prev + n * CB, *restrict sc = cur + n * CB;
                            const real *restrict e = dec + n * CB, *restrict an = At + n * CB;
#pragma omp simd
                            for (int l = 0; l < CB; l++) {
                                real gn = gn_[l] + cn * gy[l];        /* G_t = C_t·dy_t + exp(Δ_{t+1}A)·G_{t+1} */
                                real q = keep * gn * e[l] * sp[l];    /* G_t · ∂h_t/∂(ΔA) */
                                dcn[l] += gy[l] * sc[l];
                                dbn[l] += gn * dl[l] * ui[l];
                                du_acc[l] += gn * bn;
                                ddl_acc[l] += an[l] * q + gn * bn * ui[l];
                                dan[l] += dl[l] * q;
                                gn_[l] = keep * gn * e[l]; /* hand exp(Δ_t A)·G_t to t−1 (0 across a reset) */
                            }
                        }
                        for (int l = 0; l < nc; l++) {
                            du[bt * I + i0 + l] += dl[l] * du_acc[l];
                            ddelta[bt * I + i0 + l] += ddl_acc[l];
                        }
                    }
                    real *dBt = part + (size_t)t * N2, *dCt = dBt + N;
                    for (int n = 0; n < N; n++) {
                        real sb = 0, sc = 0;
                        for (int l = 0; l < CB; l++) sb += dBv[n * CB + l], sc += dCv[n * CB + l];
                        dBt[n] += sb;
                        dCt[n] += sc;
                    }
                }
            }
            real *dAb = dApart + (size_t)b * I * N;
            for (int k = 0; k < nbl; k++) {
                int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                lane_block_store(dAb, dAl + (size_t)k * N * CB, i0, nc, N);
            }
        }
    /* fixed-order reductions: dA over the batch, dB/dC over channel ranges */
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int i = 0; i < I; i++)
        for (int b = 0; b < B; b++) {
            const real *s = dApart + ((size_t)b * I + i) * N;
            for (int n = 0; n < N; n++) dA[(size_t)i * N + n] += s[n];
        }
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (size_t m = 0; m < M; m++)
        for (int blk = 0; blk < nb; blk++) {
            const real *s = dBC + ((size_t)blk * M + m) * N2;
            for (int n = 0; n < N; n++) dB[m * ldbc + n] += s[n], dC[m * ldbc + n] += s[N + n];
        }
}

/* One token of the decode step, state [I, N] (the public layout): h ← exp(ΔA)·h + Δ·u·B ; y = h·C. */
static inline void scan_token(real *restrict h, const real *restrict u, const real *restrict delta,
                              const real *restrict A, const real *restrict Bt, const real *restrict Ct,
                              real *restrict y, int I, int N) {
    for (int i = 0; i < I; i++) {
        real *restrict s = h + (size_t)i * N;
        const real *restrict a = A + (size_t)i * N;
        const real dl = delta[i], du = dl * u[i];
        real acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int n = 0; n < N; n++) {
            real v = dexp(dl * a[n]) * s[n] + du * Bt[n];
            s[n] = v;
            acc += v * Ct[n];
        }
        y[i] = acc;
    }
}

void k_mamba_scan_step(real *h, const real *u, const real *delta, const real *A, const real *Bm, const real *Cm,
                       int ldbc, real *y, int nseq, int I, int N) {
    /* channel ranges too, so that one sequence's state (decoding at batch 1) is split over threads */
    const int CR = 128, nr = EID_CDIV(I, CR);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * I * N >= 16384)
    for (int s = 0; s < nseq; s++)
        for (int r = 0; r < nr; r++) {
            int i0 = r * CR, n = EID_MIN(I, i0 + CR) - i0;
            size_t si = (size_t)s * I + i0;
            scan_token(h + si * N, u + si, delta + si, A + (size_t)i0 * N, Bm + (size_t)s * ldbc, Cm + (size_t)s * ldbc,
                       y + si, n, N);
        }
}
