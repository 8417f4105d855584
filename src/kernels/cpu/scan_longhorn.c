/* scan_longhorn.c — the Longhorn diagonal recurrence (docs/layers.md §2.2, §2.5), CPU.
 *
 * Training kernels work on blocks of SCAN_CB channels held "lane-major": a block's state is
 * [N][SCAN_CB], so one SIMD vector holds one state index n for SCAN_CB channels. k_t[n] and q_t[n]
 * are shared by all channels and become broadcasts; y_t = S·q needs no horizontal sum per channel,
 * and the backward's dk, dq (sums over channels) are accumulated lane-wise across blocks and reduced
 * once per token. Public layouts stay [.., I, N]: states are transposed at chunk boundaries only.
 *
 * Channels i ≥ rev_from run right-to-left with the cut rule of docs/layers.md §8.1 (the reverse half
 * of a Birdie bidirectional layer): their state at t is ε_t u_t k_t plus (1 − ε_t k_t²)·(their state
 * at t+1) only when t+1 is a prefix token (not CAUSAL, not PAD) of the same segment.
 * PAD tokens are absent (docs/layers.md §0.6): no step, y = 0, no gradient.
 *
 * Forward is parallel over (batch × channel blocks). Backward is parallel over rows, each thread in
 * its own workspace slot (lanes.h), and recomputes the states of each chunk from the state saved at its boundary (never
 * dividing by the decay, docs/layers.md §0.7), then runs the adjoint recurrence through the chunk:
 * backwards in time for forward channels, forwards in time for reverse channels. */
#include <omp.h>
#include <string.h>
#include "kernels/kernels.h"
#include "kernels/cpu/lanes.h"
#include "kernels/seq.h"

#define SCAN_CB LANE_CB /* channels per block = SIMD lanes (16 fp32 = one AVX-512 vector) */

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
 * next = keep·(1 − ε k²)·prev + ε u k, keep = 0 where the state is cut (reset or reverse cut). */
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

static void zero_out(real *y, int nc) {
    for (int c = 0; c < nc; c++) y[c] = 0;
}

void k_longhorn_scan_fwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, real *y, int B, int T,
                         int I, int N, int chunk, const uint8_t *flags, int rev_from, const real *S0, real *Sfinal,
                         size_t ldS, real *Sck) {
    int ncb_f, ncb = lane_blocks(I, rev_from, &ncb_f), nck = EID_CDIV(T, chunk);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int i0, nc;
            lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
            _Alignas(EID_ALIGN) real S[256 * SCAN_CB]; /* N ≤ 256 (checked by the layer) */
            _Alignas(EID_ALIGN) real e[SCAN_CB], eu[SCAN_CB], yt[SCAN_CB];
            const size_t SN = sizeof(real) * (size_t)N * SCAN_CB;
            if (cb < ncb_f) { /* left to right, from S0 */
                if (S0) lane_block_load(S, S0 + (size_t)b * ldS, i0, nc, N);
                else memset(S, 0, SN);
                for (int t = 0; t < T; t++) {
                    size_t bt = (size_t)b * T + t;
                    if (lane_reset_at(flags, bt)) memset(S, 0, SN);
                    if (Sck && t % chunk == 0) lane_block_store(Sck + ((size_t)b * nck + t / chunk) * I * N, S, i0, nc, N);
                    if (lane_pad_at(flags, bt)) { zero_out(y + bt * I + i0, nc); continue; }
                    lanes_and_product(e, eu, eps + bt * I + i0, u + bt * I + i0, nc);
                    block_token(S, e, eu, k + bt * ldkq, q + bt * ldkq, yt, N);
                    lanes_store(y + bt * I + i0, yt, nc);
                }
            } else { /* right to left with cuts; Sck[c] = the state to the right of chunk c */
                memset(S, 0, SN);
                for (int t = T - 1; t >= 0; t--) {
                    size_t bt = (size_t)b * T + t;
                    if (Sck && (t == T - 1 || (t + 1) % chunk == 0))
                        lane_block_store(Sck + ((size_t)b * nck + t / chunk) * I * N, S, i0, nc, N);
                    if (lane_pad_at(flags, bt)) { zero_out(y + bt * I + i0, nc); continue; }
                    if (!lane_rev_keep(flags, bt, t, T)) memset(S, 0, SN);
                    lanes_and_product(e, eu, eps + bt * I + i0, u + bt * I + i0, nc);
                    block_token(S, e, eu, k + bt * ldkq, q + bt * ldkq, yt, N);
                    lanes_store(y + bt * I + i0, yt, nc);
                }
                memset(S, 0, SN); /* reverse states are never carried out of a call (docs/layers.md §8.4) */
            }
            if (Sfinal) lane_block_store(Sfinal + (size_t)b * ldS, S, i0, nc, N);
        }
}

/* Per slot: lane-major states of one chunk plus its boundary state [(cl+1), blocks], the adjoint
 * G [blocks] and the lane-wise dk, dq accumulators [2, N, CB]; blocks = (lane blocks)·N·CB, sized for
 * the worst split of I (one more block than without reverse channels). */
static size_t slot_size(int T, int I, int N, int chunk) {
    size_t blocks = (size_t)(EID_CDIV(I, SCAN_CB) + 1) * N * SCAN_CB;
    return (size_t)(EID_MIN(chunk, T) + 2) * blocks + 2 * (size_t)N * SCAN_CB;
}

size_t k_longhorn_scan_bwd_work(int B, int T, int I, int N, int chunk) {
    return (size_t)EID_MIN(B, EID_SCAN_SLOTS) * slot_size(T, I, N, chunk);
}

/* State of blocks [cb0, cb1) after token bt (one step from prev, or a copy at PAD). */
static inline __attribute__((always_inline)) void advance_blocks(real *cur, const real *prev, real keep, int cb0, int cb1, int ncb_f, int rev_from, int I,
                           int N, const real *u, const real *eps, const real *k, int ldkq, size_t bt, int pad) {
    _Alignas(EID_ALIGN) real e[SCAN_CB], eu[SCAN_CB];
    for (int cb = cb0; cb < cb1; cb++) {
        int i0, nc;
        lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
        size_t off = (size_t)cb * N * SCAN_CB;
        if (pad) { memcpy(cur + off, prev + off, sizeof(real) * (size_t)N * SCAN_CB); continue; }
        lanes_and_product(e, eu, eps + bt * I + i0, u + bt * I + i0, nc);
        block_advance(cur + off, prev + off, keep, e, eu, k + bt * ldkq, N);
    }
}

/* Adjoint of token bt over blocks [cb0, cb1): prev = the state the step read (times keep), cur = the
 * state it wrote. G holds the adjoint carried in and receives keep·A_t·G_t for the next token in the
 * adjoint's direction. du +=, deps =, lane-wise dk/dq partials += into dkv, dqv. */
static inline __attribute__((always_inline)) void adjoint_blocks(real *G, const real *prev, const real *cur, real keep, int cb0, int cb1, int ncb_f,
                           int rev_from, int I, int N, const real *u, const real *eps, const real *k, const real *q,
                           int ldkq, const real *dy, real *du, real *deps, real *dkv, real *dqv, size_t bt) {
    const real *kt = k + bt * ldkq, *qt = q + bt * ldkq;
    for (int cb = cb0; cb < cb1; cb++) {
        int i0, nc;
        lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
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
                const real gn = g[l] + qn * gy[l]; /* G_t = q_t·dy_t + A·G carried in */
                dqn[l] += gy[l] * sc[l];
                du_acc[l] += gn * e[l] * kn;
                de_acc[l] += gn * (ui[l] * kn - kk * spl);
                dkn[l] += gn * e[l] * (ui[l] - 2 * kn * spl);
                g[l] = keep * gn * (1 - e[l] * kk); /* hand keep·A_t G_t on */
            }
        }
        for (int l = 0; l < nc; l++) {
            du[bt * I + i0 + l] += du_acc[l];
            deps[bt * I + i0 + l] = de_acc[l];
        }
    }
}

/* dk_t, dq_t (=, or += when `add`) from the lane-wise partials. */
static void reduce_dkq(const real *dkv, const real *dqv, real *dkt, real *dqt, int N, int add) {
    for (int n = 0; n < N; n++) {
        real sk = 0, sq = 0;
        for (int l = 0; l < SCAN_CB; l++) sk += dkv[n * SCAN_CB + l], sq += dqv[n * SCAN_CB + l];
        dkt[n] = add ? dkt[n] + sk : sk;
        dqt[n] = add ? dqt[n] + sq : sq;
    }
}

static void zero_channels(real *x, int cb0, int cb1, int ncb_f, int rev_from, int I) {
    for (int cb = cb0; cb < cb1; cb++) {
        int i0, nc;
        lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
        zero_out(x + i0, nc);
    }
}

void k_longhorn_scan_bwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, const real *dy,
                         const real *Sck, real *du, real *deps, real *dk, real *dq, int B, int T, int I, int N,
                         int chunk, const uint8_t *flags, int rev_from, real *work) {
    int nck = EID_CDIV(T, chunk), ncb_f, ncb = lane_blocks(I, rev_from, &ncb_f);
    int nslots = EID_MIN(B, EID_SCAN_SLOTS);
    size_t blocks = (size_t)ncb * N * SCAN_CB, per_slot = slot_size(T, I, N, chunk);
    size_t fwd_blocks = (size_t)ncb_f * N * SCAN_CB;
    const int cl = EID_MIN(chunk, T);
#pragma omp parallel num_threads(EID_MIN(nslots, omp_get_max_threads()))
    {
        real *St = work + (size_t)omp_get_thread_num() * per_slot; /* this thread's slot */
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            real *G = St + (size_t)(cl + 1) * blocks; /* ∂L/∂S carried, lane-major */
            real *dkv = G + blocks, *dqv = dkv + (size_t)N * SCAN_CB; /* lane-wise partial dk, dq of a token */
            if (ncb_f > 0) { /* forward channels: chunks and tokens in reverse */
                memset(G, 0, sizeof(real) * fwd_blocks);
                for (int c = nck - 1; c >= 0; c--) {
                    int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk);
                    const real *Sc = Sck + ((size_t)b * nck + c) * I * N;
                    for (int cb = 0; cb < ncb_f; cb++) { /* St[j] = state after token t0+j−1, St[0] saved */
                        int i0, nc;
                        lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
                        lane_block_load(St + (size_t)cb * N * SCAN_CB, Sc, i0, nc, N);
                    }
                    for (int j = 0; j < t1 - t0; j++) {
                        size_t bt = (size_t)b * T + t0 + j;
                        advance_blocks(St + (size_t)(j + 1) * blocks, St + (size_t)j * blocks,
                                       lane_reset_at(flags, bt) ? 0 : 1, 0, ncb_f, ncb_f, rev_from, I, N, u, eps, k,
                                       ldkq, bt, lane_pad_at(flags, bt));
                    }
                    for (int t = t1 - 1; t >= t0; t--) {
                        size_t bt = (size_t)b * T + t;
                        memset(dkv, 0, sizeof(real) * 2 * (size_t)N * SCAN_CB);
                        if (lane_pad_at(flags, bt)) zero_channels(deps + bt * I, 0, ncb_f, ncb_f, rev_from, I);
                        else {
                            const real *prev = St + (size_t)(t - t0) * blocks;
                            adjoint_blocks(G, prev, prev + blocks, lane_reset_at(flags, bt) ? 0 : 1, 0, ncb_f, ncb_f,
                                           rev_from, I, N, u, eps, k, q, ldkq, dy, du, deps, dkv, dqv, bt);
                        }
                        reduce_dkq(dkv, dqv, dk + bt * ldkq, dq + bt * ldkq, N, 0);
                    }
                }
            }
            if (ncb > ncb_f) { /* reverse channels: chunks and tokens in order */
                memset(G + fwd_blocks, 0, sizeof(real) * (blocks - fwd_blocks));
                for (int c = 0; c < nck; c++) {
                    int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk), len = t1 - t0;
                    const real *Sc = Sck + ((size_t)b * nck + c) * I * N;
                    for (int cb = ncb_f; cb < ncb; cb++) { /* St[j] = state of token t0+j, St[len] saved */
                        int i0, nc;
                        lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
                        lane_block_load(St + (size_t)len * blocks + (size_t)cb * N * SCAN_CB, Sc, i0, nc, N);
                    }
                    for (int j = len - 1; j >= 0; j--) {
                        int t = t0 + j;
                        size_t bt = (size_t)b * T + t;
                        advance_blocks(St + (size_t)j * blocks, St + (size_t)(j + 1) * blocks,
                                       lane_rev_keep(flags, bt, t, T), ncb_f, ncb, ncb_f, rev_from, I, N, u, eps, k,
                                       ldkq, bt, lane_pad_at(flags, bt));
                    }
                    for (int t = t0; t < t1; t++) {
                        size_t bt = (size_t)b * T + t;
                        memset(dkv, 0, sizeof(real) * 2 * (size_t)N * SCAN_CB);
                        if (lane_pad_at(flags, bt)) { /* a cut on both sides: nothing carries through */
                            zero_channels(deps + bt * I, ncb_f, ncb, ncb_f, rev_from, I);
                            memset(G + fwd_blocks, 0, sizeof(real) * (blocks - fwd_blocks));
                        } else {
                            const real *cur = St + (size_t)(t - t0) * blocks;
                            adjoint_blocks(G, cur + blocks, cur, lane_rev_keep(flags, bt, t, T), ncb_f, ncb, ncb_f,
                                           rev_from, I, N, u, eps, k, q, ldkq, dy, du, deps, dkv, dqv, bt);
                        }
                        reduce_dkq(dkv, dqv, dk + bt * ldkq, dq + bt * ldkq, N, ncb_f > 0);
                    }
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

void k_longhorn_scan_step(real *S, size_t ldS, const real *u, const real *eps, const real *k, const real *q, int ldkq,
                          real *y, int nseq, int I, int N) {
    /* channel ranges too, so that one sequence's state (decoding at batch 1) is split over threads */
    const int CR = 128, nr = EID_CDIV(I, CR);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * I * N >= 16384)
    for (int s = 0; s < nseq; s++)
        for (int r = 0; r < nr; r++) {
            int i0 = r * CR, n = EID_MIN(I, i0 + CR) - i0;
            size_t si = (size_t)s * I + i0;
            scan_token(S + (size_t)s * ldS + (size_t)i0 * N, u + si, eps + si, k + (size_t)s * ldkq, q + (size_t)s * ldkq, y + si, n, N);
        }
}
