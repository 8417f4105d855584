/* scan_longhorn.c — the Longhorn diagonal recurrence (layers.md §2.2, §2.5), CPU.
 *
 * Training kernels work on blocks of SCAN_CB channels held "lane-major": a block's state is
 * [N][SCAN_CB], so one SIMD vector holds one state index n for SCAN_CB channels. k_t[n] and q_t[n]
 * are shared by all channels and become broadcasts; y_t = S·q needs no horizontal sum per channel,
 * and the backward's dk, dq (sums over channels) are accumulated lane-wise across blocks and reduced
 * once per token. Public layouts stay [.., I, N]: states are transposed at chunk boundaries only.
 *
 * Forward is parallel over (batch × channel blocks). Backward is parallel over the batch and
 * recomputes the states of each chunk from the state saved at its start (never dividing by the
 * decay), then runs the adjoint recurrence backwards through the chunk. */
#include <omp.h>
#include <string.h>
#include "kernels/kernels.h"
#include "kernels/cpu/lanes.h"
#include "kernels/seq.h"

#define SCAN_CB LANE_CB /* channels per block = SIMD lanes (16 fp32 = one AVX-512 vector) */

static inline int reset_at(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }

/* One token of a lane-major block: S ← (1 − ε k²) S + ε u k ; y = S·q. */
static inline void block_token(real *restrict S, const real *restrict e, const real *restrict eu,
                               const real *restrict k, const real *restrict q, real *restrict y, int N) {
    real acc[SCAN_CB] = {0};
    for (int n = 0; n < N; n++) {
        const real kn = k[n], kk = kn * kn, qn = q[n];
        real *restrict s = S + n * SCAN_CB;
#pragma omp simd
        for (int c = 0; c < SCAN_CB; c++) {
            real v = (1 - e[c] * kk) * s[c] + eu[c] * kn;
            s[c] = v;
            acc[c] += v * qn;
        }
    }
    for (int c = 0; c < SCAN_CB; c++) y[c] = acc[c];
}

/* The same update without the read-out, out of place (backward's recomputation):
 * next = keep·(1 − ε k²)·prev + ε u k, keep = 0 at a segment start. */
static inline void block_advance(real *restrict next, const real *restrict prev, real keep, const real *restrict e,
                                 const real *restrict eu, const real *restrict k, int N) {
    for (int n = 0; n < N; n++) {
        const real kn = k[n], kk = kn * kn;
        real *restrict s = next + n * SCAN_CB;
        const real *restrict sp = prev + n * SCAN_CB;
#pragma omp simd
        for (int c = 0; c < SCAN_CB; c++) s[c] = keep * (1 - e[c] * kk) * sp[c] + eu[c] * kn;
    }
}

void k_longhorn_scan_fwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, real *y, int B, int T,
                         int I, int N, int chunk, const uint8_t *flags, real *Sck, real *Sfinal) {
    int ncb = EID_CDIV(I, SCAN_CB), nck = EID_CDIV(T, chunk);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int i0 = cb * SCAN_CB, nc = EID_MIN(I, i0 + SCAN_CB) - i0;
            _Alignas(EID_ALIGN) real S[256 * SCAN_CB]; /* N ≤ 256 (checked by the layer) */
            _Alignas(EID_ALIGN) real e[SCAN_CB], eu[SCAN_CB], yt[SCAN_CB];
            memset(S, 0, sizeof(real) * (size_t)N * SCAN_CB);
            for (int t = 0; t < T; t++) {
                size_t bt = (size_t)b * T + t;
                if (reset_at(flags, bt)) memset(S, 0, sizeof(real) * (size_t)N * SCAN_CB);
                if (Sck && t % chunk == 0) lane_block_store(Sck + ((size_t)b * nck + t / chunk) * I * N, S, i0, nc, N);
                lanes_and_product(e, eu, eps + bt * I + i0, u + bt * I + i0, nc);
                block_token(S, e, eu, k + bt * ldkq, q + bt * ldkq, yt, N);
                lanes_store(y + bt * I + i0, yt, nc);
            }
            if (Sfinal) lane_block_store(Sfinal + (size_t)b * I * N, S, i0, nc, N);
        }
}

size_t k_longhorn_scan_bwd_work(int I, int N, int chunk, int nthreads) {
    /* per thread: lane-major states of one chunk plus its entering state [(chunk+1), ncb, N, CB],
     * the adjoint G [ncb, N, CB], and the lane-wise dk, dq accumulators [2, N, CB] */
    size_t blocks = (size_t)EID_CDIV(I, SCAN_CB) * N * SCAN_CB;
    return (size_t)nthreads * ((size_t)(chunk + 2) * blocks + 2 * (size_t)N * SCAN_CB);
}

/* Recompute a chunk's lane-major states: St[j] = state after token t0+j−1, St[0] from Sck. */
static void chunk_recompute(real *St, const real *Sck_c, const real *u, const real *eps, const real *k, int ldkq,
                            size_t bt0, int len, int I, int N, const uint8_t *flags) {
    int ncb = EID_CDIV(I, SCAN_CB);
    size_t blocks = (size_t)ncb * N * SCAN_CB;
    _Alignas(EID_ALIGN) real e[SCAN_CB], eu[SCAN_CB];
    for (int cb = 0; cb < ncb; cb++)
        lane_block_load(St + (size_t)cb * N * SCAN_CB, Sck_c, cb * SCAN_CB, EID_MIN(I, cb * SCAN_CB + SCAN_CB) - cb * SCAN_CB, N);
    for (int j = 0; j < len; j++) {
        size_t bt = bt0 + j;
        const real *prev = St + (size_t)j * blocks;
        real *cur = St + (size_t)(j + 1) * blocks;
        const real keep = reset_at(flags, bt) ? 0 : 1; /* a reset forgets S_{t−1} */
        for (int cb = 0; cb < ncb; cb++) {
            int i0 = cb * SCAN_CB, nc = EID_MIN(I, i0 + SCAN_CB) - i0;
            size_t off = (size_t)cb * N * SCAN_CB;
            lanes_and_product(e, eu, eps + bt * I + i0, u + bt * I + i0, nc);
            block_advance(cur + off, prev + off, keep, e, eu, k + bt * ldkq, N);
        }
    }
}

void k_longhorn_scan_bwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, const real *dy,
                         const real *Sck, real *du, real *deps, real *dk, real *dq, int B, int T, int I, int N,
                         int chunk, const uint8_t *flags, real *work) {
    int nck = EID_CDIV(T, chunk), ncb = EID_CDIV(I, SCAN_CB);
    size_t blocks = (size_t)ncb * N * SCAN_CB;
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        real *St = work + (size_t)omp_get_thread_num() * ((size_t)(chunk + 2) * blocks + 2 * (size_t)N * SCAN_CB);
        real *G = St + (size_t)(chunk + 1) * blocks;  /* ∂L/∂S carried backwards, lane-major */
        real *dkv = G + blocks, *dqv = dkv + (size_t)N * SCAN_CB; /* lane-wise partial dk, dq of a token */
        memset(G, 0, sizeof(real) * blocks);
        for (int c = nck - 1; c >= 0; c--) {
            int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk);
            chunk_recompute(St, Sck + ((size_t)b * nck + c) * I * N, u, eps, k, ldkq, (size_t)b * T + t0, t1 - t0, I,
                            N, flags);
            for (int t = t1 - 1; t >= t0; t--) { /* adjoint, t = t1−1 … t0 */
                size_t bt = (size_t)b * T + t;
                const real *prev = St + (size_t)(t - t0) * blocks, *cur = prev + blocks;
                const real *kt = k + bt * ldkq, *qt = q + bt * ldkq;
                const real keep = reset_at(flags, bt) ? 0 : 1; /* S_{t−1} and the carried adjoint are cut */
                memset(dkv, 0, sizeof(real) * 2 * (size_t)N * SCAN_CB);
                for (int cb = 0; cb < ncb; cb++) {
                    int i0 = cb * SCAN_CB, nc = EID_MIN(I, i0 + SCAN_CB) - i0;
                    _Alignas(EID_ALIGN) real gy[SCAN_CB], e[SCAN_CB], ui[SCAN_CB];
                    _Alignas(EID_ALIGN) real du_acc[SCAN_CB] = {0}, de_acc[SCAN_CB] = {0};
                    lanes(gy, dy + bt * I + i0, nc);
                    lanes(e, eps + bt * I + i0, nc);
                    lanes(ui, u + bt * I + i0, nc);
                    size_t off = (size_t)cb * N * SCAN_CB;
                    for (int n = 0; n < N; n++) {
                        const real kn = kt[n], qn = qt[n], kk = kn * kn;
                        real *restrict g = G + off + n * SCAN_CB;
                        const real *restrict sp = prev + off + n * SCAN_CB, *restrict sc = cur + off + n * SCAN_CB;
                        real *restrict dkn = dkv + n * SCAN_CB, *restrict dqn = dqv + n * SCAN_CB;
#pragma omp simd
                        for (int l = 0; l < SCAN_CB; l++) {
                            const real spl = keep * sp[l];
                            const real gn = g[l] + qn * gy[l]; /* G_t = q_t·dy_t + A_{t+1} G_{t+1} */
                            dqn[l] += gy[l] * sc[l];
                            du_acc[l] += gn * e[l] * kn;
                            de_acc[l] += gn * (ui[l] * kn - kk * spl);
                            dkn[l] += gn * e[l] * (ui[l] - 2 * kn * spl);
                            g[l] = keep * gn * (1 - e[l] * kk); /* hand A_t G_t to t−1 */
                        }
                    }
                    for (int l = 0; l < nc; l++) {
                        du[bt * I + i0 + l] += du_acc[l];
                        deps[bt * I + i0 + l] = de_acc[l];
                    }
                }
                real *dkt = dk + bt * ldkq, *dqt = dq + bt * ldkq;
                for (int n = 0; n < N; n++) {
                    real sk = 0, sq = 0;
                    for (int l = 0; l < SCAN_CB; l++) sk += dkv[n * SCAN_CB + l], sq += dqv[n * SCAN_CB + l];
                    dkt[n] += sk;
                    dqt[n] += sq;
                }
            }
        }
    }
}

/* One token of the decode step, state [I, N] (the public layout): S ← (1 − ε k²) S + ε u k ; y = S·q. */
static inline void scan_token(real *restrict S, const real *restrict u, const real *restrict eps,
                              const real *restrict k, const real *restrict q, real *restrict y, int I, int N) {
    for (int i = 0; i < I; i++) {
        real *restrict s = S + (size_t)i * N;
        const real e = eps[i], eu = e * u[i];
        real acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int n = 0; n < N; n++) {
            real v = (1 - e * k[n] * k[n]) * s[n] + eu * k[n];
            s[n] = v;
            acc += v * q[n];
        }
        y[i] = acc;
    }
}

void k_longhorn_scan_step(real *S, const real *u, const real *eps, const real *k, const real *q, int ldkq, real *y,
                          int nseq, int I, int N) {
    /* channel ranges too, so that one sequence's state (decoding at batch 1) is split over threads */
    const int CR = 128, nr = EID_CDIV(I, CR);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * I * N >= 16384)
    for (int s = 0; s < nseq; s++)
        for (int r = 0; r < nr; r++) {
            int i0 = r * CR, n = EID_MIN(I, i0 + CR) - i0;
            size_t si = (size_t)s * I + i0;
            scan_token(S + si * N, u + si, eps + si, k + (size_t)s * ldkq, q + (size_t)s * ldkq, y + si, n, N);
        }
}
