/* scan_mamba.c — the Mamba-1 selective scan (docs/layers.md §1.2, §1.4), CPU.
 *
 * Training kernels work on blocks of CB channels held "lane-major" ([N][CB]: one SIMD vector holds
 * one state index n for CB channels), as in scan_longhorn.c: B_t[n] and C_t[n] become broadcasts,
 * y_t = h·C needs no horizontal sum per channel, and the backward's dB, dC (sums over channels) are
 * accumulated lane-wise and reduced once per token. Public layouts stay [.., I, N]: states are
 * transposed at chunk boundaries only.
 * Channels i ≥ rev_from run right-to-left with the cut rule of docs/layers.md §8.1 (Birdie's reverse
 * half); PAD tokens are absent (docs/layers.md §0.6): no step, y = 0, no gradient.
 * Forward: parallel over (batch × channel blocks). Backward: tasks (row × channel range; ranges never
 * mix forward and reverse channels), each thread in its own workspace slot (lanes.h), the workspace
 * sized from the shape. Each task walks the chunks of its row (backwards for forward
 * channels, forwards for reverse ones), recomputes the chunk's states (and decays exp(ΔA)) from the
 * state saved at the chunk boundary (docs/layers.md §0.7), then runs the adjoint recurrence. dA
 * (summed over the batch) and dB, dC (summed over channel ranges) are written to per-task partial
 * buffers and reduced in a fixed order afterwards, so results do not depend on the scheduling (they
 * are deterministic for a given thread count, see bwd_range_width). */
#include <omp.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/mamba.h"
#include "kernels/cpu/lanes.h"
#include "kernels/seq.h"

#define CB LANE_CB /* channels per lane-major block = SIMD lanes (16 fp32: one AVX-512 vector) */
#define MAX_N 256   /* d_state limit (checked by the layer) */
#define MAX_RANGE 512  /* widest backward channel range (bounds each slot's workspace) */
#define TARGET_TASKS 16 /* backward tasks the workspace allows (rows × ranges) */

#define dexp rexp /* vectorisable in the fp32 build (core/vmath.h) */

/* One token of a lane-major block: h ← exp(Δ·A)⊙h + Δu·B ; acc = h·C. */
static inline void block_token(real *restrict h, const real *restrict At, const real *restrict dl,
                               const real *restrict dlu, const real *restrict Bt, const real *restrict Ct,
                               real *restrict acc, int N) {
    memset(acc, 0, sizeof(real) * CB);
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
}

static void zero_out(real *y, int nc) {
    for (int c = 0; c < nc; c++) y[c] = 0;
}

void k_mamba_scan_fwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      real *y, int B, int T, int I, int N, int chunk, const uint8_t *flags, int rev_from,
                      const real *S0, real *Sfinal, size_t ldS, real *Sck) {
    int ncb_f, ncb = lane_blocks(I, rev_from, &ncb_f), nck = EID_CDIV(T, chunk);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int i0, nc;
            lane_block_at(cb, ncb_f, rev_from, I, &i0, &nc);
            _Alignas(EID_ALIGN) real h[MAX_N * CB], At[MAX_N * CB];
            _Alignas(EID_ALIGN) real dl[CB], dlu[CB], acc[CB];
            const size_t SN = sizeof(real) * (size_t)N * CB;
            lane_block_load(At, A, i0, nc, N);
            if (cb < ncb_f) { /* left to right, from S0 */
                if (S0) lane_block_load(h, S0 + (size_t)b * ldS, i0, nc, N);
                else memset(h, 0, SN);
                for (int t = 0; t < T; t++) {
                    size_t bt = (size_t)b * T + t;
                    if (lane_reset_at(flags, bt)) memset(h, 0, SN);
                    if (Sck && t % chunk == 0) lane_block_store(Sck + ((size_t)b * nck + t / chunk) * I * N, h, i0, nc, N);
                    if (lane_pad_at(flags, bt)) { zero_out(y + bt * I + i0, nc); continue; }
                    lanes_and_product(dl, dlu, delta + bt * I + i0, u + bt * I + i0, nc);
                    block_token(h, At, dl, dlu, Bm + bt * ldbc, Cm + bt * ldbc, acc, N);
                    lanes_store(y + bt * I + i0, acc, nc);
                }
            } else { /* right to left with cuts; Sck[c] = the state to the right of chunk c */
                memset(h, 0, SN);
                for (int t = T - 1; t >= 0; t--) {
                    size_t bt = (size_t)b * T + t;
                    if (Sck && (t == T - 1 || (t + 1) % chunk == 0))
                        lane_block_store(Sck + ((size_t)b * nck + t / chunk) * I * N, h, i0, nc, N);
                    if (lane_pad_at(flags, bt)) { zero_out(y + bt * I + i0, nc); continue; }
                    if (!lane_rev_keep(flags, bt, t, T)) memset(h, 0, SN);
                    lanes_and_product(dl, dlu, delta + bt * I + i0, u + bt * I + i0, nc);
                    block_token(h, At, dl, dlu, Bm + bt * ldbc, Cm + bt * ldbc, acc, N);
                    lanes_store(y + bt * I + i0, acc, nc);
                }
                memset(h, 0, SN); /* reverse states are never carried out of a call (docs/layers.md §8.4) */
            }
            if (Sfinal) lane_block_store(Sfinal + (size_t)b * ldS, h, i0, nc, N);
        }
}

/* Backward partition: channel ranges of cbs channels (a multiple of CB, at most MAX_RANGE), enough
 * of them that B rows give about `want_tasks` tasks; forward channels [0, rev_from) in nb_f ranges,
 * reverse ones after them. The workspace is sized from the shape (want_tasks = TARGET_TASKS: the
 * narrowest ranges, the most slots); a call uses ranges at least that wide, as many as its threads
 * need (splitting rows costs time: each range walks every token), so the dB/dC summation order and
 * the last bits of the result depend on the thread count, as they always did. */
static int bwd_range_width(int B, int I, int want_tasks) {
    int want = EID_CDIV(want_tasks, B), most = EID_CDIV(I, CB);
    if (want > most) want = most;
    if (want < 1) want = 1;
    return EID_MIN(MAX_RANGE, EID_CDIV(EID_CDIV(I, want), CB) * CB);
}
static int bwd_ranges(int I, int rev_from, int cbs, int *nb_f) {
    *nb_f = EID_CDIV(rev_from, cbs);
    return *nb_f + EID_CDIV(I - rev_from, cbs);
}
static void range_at(int blk, int nb_f, int cbs, int rev_from, int I, int *r0, int *r1) {
    if (blk < nb_f) *r0 = blk * cbs, *r1 = EID_MIN(rev_from, *r0 + cbs);
    else *r0 = rev_from + (blk - nb_f) * cbs, *r1 = EID_MIN(I, *r0 + cbs);
}

/* Per-slot work, lane-major over the cbs/CB blocks of a range (L = cbs·N reals, cl = min(chunk, T)):
 *   states (cl+1)·L | decays cl·L | G L | dA partial L | A L | dB, dC lanes 2·N·CB
 * then shared: [dA partial B·I·N] [dB/dC partial nb·B·T·2N]. */
static size_t per_slot_work(int cbs, int N, int cl) { return (2 * (size_t)cl + 4) * cbs * N + 2 * (size_t)N * CB; }
/* All slots, sized from the shape: one per task without a forward/reverse split, at most
 * EID_SCAN_SLOTS. Holds at least one slot of any wider range a call picks: with want = ⌈TARGET_TASKS/B⌉
 * ranges, want·cbs ≥ I rounded up to CB, and min(B·nb, EID_SCAN_SLOTS) ≥ want when
 * EID_SCAN_SLOTS ≥ TARGET_TASKS. */
static size_t slot_area(int B, int T, int I, int N, int chunk) {
    int cbs = bwd_range_width(B, I, TARGET_TASKS), nb = EID_CDIV(I, cbs);
    return EID_MIN((size_t)B * nb, (size_t)EID_SCAN_SLOTS) * per_slot_work(cbs, N, EID_MIN(chunk, T));
}
_Static_assert(EID_SCAN_SLOTS >= TARGET_TASKS, "scan_mamba: slot_area must hold one slot of the widest range");

size_t k_mamba_scan_bwd_work(int B, int T, int I, int N, int chunk) {
    int cbs = bwd_range_width(B, I, TARGET_TASKS), nb = EID_CDIV(I, cbs) + 1; /* + 1: a forward/reverse split */
    return slot_area(B, T, I, N, chunk) + (size_t)B * I * N + (size_t)nb * B * T * 2 * N;
}

/* One token over the blocks of a range: cur = keep·dec⊙prev + Δu·B, dec = exp(ΔA) (or a copy at PAD). */
static void advance_range(real *cur, const real *prev, real *dec, real keep, int pad, const real *Al, int r0,
                          int r1, int I, int N, const real *u, const real *delta, const real *Bt, size_t bt) {
    int nbl = EID_CDIV(r1 - r0, CB);
    for (int k = 0; k < nbl; k++) {
        int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
        size_t off = (size_t)k * N * CB;
        if (pad) { memcpy(cur + off, prev + off, sizeof(real) * (size_t)N * CB); continue; }
        _Alignas(EID_ALIGN) real dl[CB], dlu[CB];
        lanes_and_product(dl, dlu, delta + bt * I + i0, u + bt * I + i0, nc);
        const real *At = Al + off;
        for (int n = 0; n < N; n++) {
            const real bn = Bt[n];
            real *restrict cn = cur + off + n * CB, *restrict en = dec + off + n * CB;
            const real *restrict pn = prev + off + n * CB, *restrict an = At + n * CB;
#pragma omp simd
            for (int l = 0; l < CB; l++) {
                real e = dexp(dl[l] * an[l]);
                en[l] = e;
                cn[l] = keep * e * pn[l] + dlu[l] * bn;
            }
        }
    }
}

/* Adjoint of one token over the blocks of a range: prev = the state the step read (times keep), cur
 * = the state it wrote, dec its decays. G holds the adjoint carried in and receives keep·dec⊙G_t for
 * the next token in the adjoint's direction. du +=, ddelta =, dA partial +=, lane-wise dB/dC +=. */
static void adjoint_range(real *G, const real *prev, const real *cur, const real *dec, real keep, const real *Al,
                          real *dAl, real *dBv, real *dCv, int r0, int r1, int I, int N, const real *u,
                          const real *delta, const real *Bt, const real *Ct, const real *dy, real *du, real *ddelta,
                          size_t bt) {
    int nbl = EID_CDIV(r1 - r0, CB);
    for (int k = 0; k < nbl; k++) {
        int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
        size_t koff = (size_t)k * N * CB;
        _Alignas(EID_ALIGN) real gy[CB], dl[CB], ui[CB], du_acc[CB] = {0}, ddl_acc[CB] = {0};
        lanes(gy, dy + bt * I + i0, nc);
        lanes(dl, delta + bt * I + i0, nc);
        lanes(ui, u + bt * I + i0, nc);
        const real *At = Al + koff;
        for (int n = 0; n < N; n++) {
            const real bn = Bt[n], cn = Ct[n];
            real *restrict gn_ = G + koff + n * CB, *restrict dan = dAl + koff + n * CB;
            real *restrict dbn = dBv + n * CB, *restrict dcn = dCv + n * CB;
            const real *restrict sp = prev + koff + n * CB, *restrict sc = cur + koff + n * CB;
            const real *restrict e = dec + koff + n * CB, *restrict an = At + n * CB;
#pragma omp simd
            for (int l = 0; l < CB; l++) {
                real gn = gn_[l] + cn * gy[l];     /* G_t = C_t·dy_t + decay·G carried in */
                real q = keep * gn * e[l] * sp[l]; /* G_t · ∂h_t/∂(ΔA) */
                dcn[l] += gy[l] * sc[l];
                dbn[l] += gn * dl[l] * ui[l];
                du_acc[l] += gn * bn;
                ddl_acc[l] += an[l] * q + gn * bn * ui[l];
                dan[l] += dl[l] * q;
                gn_[l] = keep * gn * e[l]; /* hand keep·exp(Δ_t A)·G_t on (0 across a cut) */
            }
        }
        for (int l = 0; l < nc; l++) {
            du[bt * I + i0 + l] += dl[l] * du_acc[l];
            ddelta[bt * I + i0 + l] = ddl_acc[l];
        }
    }
}

void k_mamba_scan_bwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      const real *dy, const real *Sck, real *du, real *ddelta, real *dA, real *dB, real *dC, int B,
                      int T, int I, int N, int chunk, const uint8_t *flags, int rev_from, real *work) {
    /* ranges for this call's threads, never narrower than the workspace's (so its partials suffice) */
    int nthr = eid_team_threads(), cl = EID_MIN(chunk, T), nck = EID_CDIV(T, chunk);
    int cbs = EID_MAX(bwd_range_width(B, I, TARGET_TASKS), bwd_range_width(B, I, 2 * nthr));
    int nb_f, nb = bwd_ranges(I, rev_from, cbs, &nb_f);
    size_t area = slot_area(B, T, I, N, chunk), per_slot = per_slot_work(cbs, N, cl);
    size_t M = (size_t)B * T, N2 = 2 * (size_t)N;
    int nslots = (int)EID_MIN(EID_MIN((size_t)B * nb, (size_t)nthr), area / per_slot); /* ≥ 1: see slot_area */
    real *dApart = work + area;             /* [B, I, N] */
    real *dBC = dApart + (size_t)B * I * N; /* [nb, B·T, 2N]: dB then dC */
    const int ntasks = B * nb;
#pragma omp parallel num_threads(EID_MAX(nslots, 1))
    {
        const int s = omp_get_thread_num(); /* this thread's workspace slot */
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < ntasks; task++) {
            int b = task / nb, blk = task % nb, r0, r1;
            range_at(blk, nb_f, cbs, rev_from, I, &r0, &r1);
            int nbl = EID_CDIV(r1 - r0, CB), rev = blk >= nb_f;
            size_t L = (size_t)nbl * N * CB; /* one lane-major copy of the range */
            real *St = work + (size_t)s * per_slot; /* the chunk's states (see the two walks below) */
            real *Dec = St + (size_t)(cl + 1) * L;  /* Dec[j] = exp(Δ A) at token t0+j */
            real *G = Dec + (size_t)cl * L;         /* ∂L/∂h carried */
            real *dAl = G + L, *Al = dAl + L, *dBv = Al + L, *dCv = dBv + (size_t)N * CB;
            real *part = dBC + ((size_t)blk * M + (size_t)b * T) * N2;
            memset(G, 0, sizeof(real) * L);
            for (int k = 0; k < nbl; k++) {
                int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                lane_block_load(Al + (size_t)k * N * CB, A, i0, nc, N);
            }
            memset(dAl, 0, sizeof(real) * L);
            memset(part, 0, sizeof(real) * (size_t)T * N2);
            if (!rev) /* forward channels: chunks and tokens in reverse */
                for (int c = nck - 1; c >= 0; c--) {
                    int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk);
                    const real *Sc = Sck + ((size_t)b * nck + c) * I * N;
                    /* recompute the chunk's states from the saved entering state (never by division):
                     * St[j] = state after token t0+j−1 */
                    for (int k = 0; k < nbl; k++) {
                        int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                        lane_block_load(St + (size_t)k * N * CB, Sc, i0, nc, N);
                    }
                    for (int t = t0; t < t1; t++) {
                        size_t bt = (size_t)b * T + t;
                        if (lane_pad_at(flags, bt)) { /* absent: the state passes through */
                            memcpy(St + (size_t)(t - t0 + 1) * L, St + (size_t)(t - t0) * L, sizeof(real) * L);
                            continue;
                        }
                        const real keep = lane_reset_at(flags, bt) ? 0 : 1;
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
                        if (lane_pad_at(flags, bt)) { /* no gradient; G passes through */
                            for (int i = r0; i < r1; i++) ddelta[bt * I + i] = 0;
                            continue;
                        }
                        const real keep = lane_reset_at(flags, bt) ? 0 : 1;
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
                                    real gn = gn_[l] + cn * gy[l];     /* G_t = C_t·dy_t + exp(Δ_{t+1}A)·G_{t+1} */
                                    real q = keep * gn * e[l] * sp[l]; /* G_t · ∂h_t/∂(ΔA) */
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
                                ddelta[bt * I + i0 + l] = ddl_acc[l];
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
            else /* reverse channels: chunks and tokens in order */
                for (int c = 0; c < nck; c++) {
                    int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk), len = t1 - t0;
                    const real *Sc = Sck + ((size_t)b * nck + c) * I * N;
                    /* recompute: St[j] = state of token t0+j, St[len] = the saved state to the right */
                    for (int k = 0; k < nbl; k++) {
                        int i0 = r0 + k * CB, nc = EID_MIN(r1, i0 + CB) - i0;
                        lane_block_load(St + (size_t)len * L + (size_t)k * N * CB, Sc, i0, nc, N);
                    }
                    for (int j = len - 1; j >= 0; j--) {
                        int t = t0 + j;
                        size_t bt = (size_t)b * T + t;
                        advance_range(St + (size_t)j * L, St + (size_t)(j + 1) * L, Dec + (size_t)j * L,
                                      lane_rev_keep(flags, bt, t, T), lane_pad_at(flags, bt), Al, r0, r1, I, N, u,
                                      delta, Bm + bt * ldbc, bt);
                    }
                    for (int j = 0; j < len; j++) { /* the adjoint runs left to right */
                        int t = t0 + j;
                        size_t bt = (size_t)b * T + t;
                        if (lane_pad_at(flags, bt)) { /* a cut on both sides: nothing carries through */
                            for (int i = r0; i < r1; i++) ddelta[bt * I + i] = 0;
                            memset(G, 0, sizeof(real) * L);
                            continue;
                        }
                        memset(dBv, 0, sizeof(real) * 2 * (size_t)N * CB);
                        adjoint_range(G, St + (size_t)(j + 1) * L, St + (size_t)j * L, Dec + (size_t)j * L,
                                      lane_rev_keep(flags, bt, t, T), Al, dAl, dBv, dCv, r0, r1, I, N, u, delta,
                                      Bm + bt * ldbc, Cm + bt * ldbc, dy, du, ddelta, bt);
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
    }
    /* fixed-order reductions: dA over the batch, dB/dC over channel ranges (written, not added) */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < I; i++) {
        real *d = dA + (size_t)i * N;
        for (int b = 0; b < B; b++) {
            const real *s = dApart + ((size_t)b * I + i) * N;
            for (int n = 0; n < N; n++) d[n] = b ? d[n] + s[n] : s[n];
        }
    }
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        real *db = dB + m * ldbc, *dc = dC + m * ldbc;
        for (int blk = 0; blk < nb; blk++) {
            const real *s = dBC + ((size_t)blk * M + m) * N2;
            for (int n = 0; n < N; n++) {
                db[n] = blk ? db[n] + s[n] : s[n];
                dc[n] = blk ? dc[n] + s[N + n] : s[N + n];
            }
        }
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

void k_mamba_scan_step(real *h, size_t ldh, const real *u, const real *delta, const real *A, const real *Bm,
                       const real *Cm, int ldbc, real *y, int nseq, int I, int N) {
    /* channel ranges too, so that one sequence's state (decoding at batch 1) is split over threads */
    const int CR = 128, nr = EID_CDIV(I, CR);
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * I * N >= 16384)
    for (int s = 0; s < nseq; s++)
        for (int r = 0; r < nr; r++) {
            int i0 = r * CR, n = EID_MIN(I, i0 + CR) - i0;
            size_t si = (size_t)s * I + i0;
            scan_token(h + (size_t)s * ldh + (size_t)i0 * N, u + si, delta + si, A + (size_t)i0 * N, Bm + (size_t)s * ldbc, Cm + (size_t)s * ldbc,
                       y + si, n, N);
        }
}
