/* scan_mamba.c — the Mamba-1 selective scan (layers.md §1.2, §1.4), CPU.
 *
 * Forward: parallel over (batch × blocks of FWD_CB channels); a block's state [CB, N] stays in L1
 * while t advances; the inner loop runs over the state dimension n.
 * Backward: parallel over (batch × channel blocks), the number of blocks chosen so that there are
 * about two tasks per thread. Each task walks the chunks of its row backwards, recomputes the
 * chunk's states (and decays exp(ΔA)) from the state saved at the chunk start (§0.7), then runs the
 * adjoint recurrence. dA (summed over the batch) and dB, dC (summed over channels) are written to
 * per-task partial buffers and reduced in a fixed order afterwards, so results do not depend on
 * the scheduling. */
#include <omp.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/mamba.h"
#include "layers/layer.h"

#define FWD_CB 16   /* channels per forward task */
#define MAX_N 256   /* d_state limit (checked by the layer) */

/* exp for the decays exp(Δ·A) (argument ≤ 0). The fp32 build uses a branch-free Cephes-style
 * polynomial (max rel. error 8e-8 over [−87, 88], i.e. < 1 ulp) that the compiler vectorises: libm's
 * expf is a scalar call and made the scan ~10x slower. The fp64 (test) build uses libm's exp. */
#ifdef EIDETIC_FP64
#define dexp(x) exp(x)
#else
static inline float dexp(float x) {
    x = x < -87.0f ? -87.0f : x; /* exp(−87) ≈ 1.6e-38 is still a normal float */
    x = x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2) */
    float r = x - n * 0.693359375f;                                       /* ln 2, high part */
    r = r + n * 2.12194440e-4f;                                           /* ln 2, low part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23; /* 2^n */
    float s;
    memcpy(&s, &e, sizeof s);
    return p * s;
}
#endif

static inline int reset_at(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }

/* One token for channels [i0, i1): h ← exp(ΔA)·h + Δ·u·B ; y = h·C. h holds rows i0.. only. */
static inline void scan_token(real *restrict h, const real *restrict u, const real *restrict delta,
                              const real *restrict A, const real *restrict Bt, const real *restrict Ct,
                              real *restrict y, int i0, int i1, int N) {
    for (int i = i0; i < i1; i++) {
        real *restrict s = h + (size_t)(i - i0) * N;
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

void k_mamba_scan_fwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      real *y, int B, int T, int I, int N, int chunk, const uint8_t *flags, real *Sck, real *Sfinal) {
    int ncb = EID_CDIV(I, FWD_CB), nck = EID_CDIV(T, chunk);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int i0 = cb * FWD_CB, i1 = EID_MIN(I, i0 + FWD_CB);
            size_t blk = (size_t)(i1 - i0) * N;
            real h[FWD_CB * MAX_N];
            memset(h, 0, sizeof(real) * blk);
            for (int t = 0; t < T; t++) {
                size_t bt = (size_t)b * T + t;
                if (reset_at(flags, bt)) memset(h, 0, sizeof(real) * blk);
                if (Sck && t % chunk == 0) memcpy(Sck + (((size_t)b * nck + t / chunk) * I + i0) * N, h, sizeof(real) * blk);
                scan_token(h, u + bt * I, delta + bt * I, A, Bm + bt * ldbc, Cm + bt * ldbc, y + bt * I, i0, i1, N);
            }
            if (Sfinal) memcpy(Sfinal + ((size_t)b * I + i0) * N, h, sizeof(real) * blk);
        }
}

/* Backward partition: nb channel blocks of cbs channels. */
static void bwd_blocks(int B, int I, int nthreads, int *nb, int *cbs) {
    int want = EID_CDIV(2 * nthreads, B);
    int most = EID_CDIV(I, 8);
    if (want > most) want = most;
    if (want < 1) want = 1;
    *cbs = EID_CDIV(I, want);
    *nb = EID_CDIV(I, *cbs);
}

/* Work layout: [per-thread: states (chunk+1)·cbs·N | decays chunk·cbs·N | G cbs·N]
 *              [dA partial B·I·N] [dB/dC partial nb·B·T·2N] */
size_t k_mamba_scan_bwd_work(int B, int T, int I, int N, int chunk, int nthreads) {
    int nb, cbs;
    bwd_blocks(B, I, nthreads, &nb, &cbs);
    return (size_t)nthreads * (2 * (size_t)chunk + 2) * cbs * N + (size_t)B * I * N + (size_t)nb * B * T * 2 * N;
}

void k_mamba_scan_bwd(const real *u, const real *delta, const real *A, const real *Bm, const real *Cm, int ldbc,
                      const real *dy, const real *Sck, real *du, real *ddelta, real *dA, real *dB, real *dC, int B,
                      int T, int I, int N, int chunk, const uint8_t *flags, real *work) {
    int nthreads = eid_threads(), nb, cbs, nck = EID_CDIV(T, chunk);
    bwd_blocks(B, I, nthreads, &nb, &cbs);
    size_t per_thread = (2 * (size_t)chunk + 2) * cbs * N, M = (size_t)B * T, N2 = 2 * (size_t)N;
    real *dApart = work + (size_t)nthreads * per_thread; /* [B, I, N] */
    real *dBC = dApart + (size_t)B * I * N;               /* [nb, B·T, 2N]: dB then dC */
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(nthreads)
    for (int b = 0; b < B; b++)
        for (int blk = 0; blk < nb; blk++) {
            int i0 = blk * cbs, i1 = EID_MIN(I, i0 + cbs), ni = i1 - i0;
            size_t CN = (size_t)ni * N;
            real *St = work + (size_t)omp_get_thread_num() * per_thread; /* St[j] = state after token t0+j−1 */
            real *Dec = St + (size_t)(chunk + 1) * CN;                     /* Dec[j] = exp(Δ A) at token t0+j */
            real *G = Dec + (size_t)chunk * CN;                            /* ∂L/∂h carried backwards */
            real *dAb = dApart + ((size_t)b * I + i0) * N;
            real *part = dBC + ((size_t)blk * M + (size_t)b * T) * N2;
            memset(G, 0, sizeof(real) * CN);
            memset(dAb, 0, sizeof(real) * CN);
            memset(part, 0, sizeof(real) * (size_t)T * N2);
            for (int c = nck - 1; c >= 0; c--) {
                int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk);
                /* recompute the chunk's states from the saved entering state (never by division) */
                memcpy(St, Sck + (((size_t)b * nck + c) * I + i0) * N, sizeof(real) * CN);
                for (int t = t0; t < t1; t++) {
                    size_t bt = (size_t)b * T + t;
                    const real keep = reset_at(flags, bt) ? 0 : 1;
                    real *prev = St + (size_t)(t - t0) * CN, *cur = prev + CN, *dec = Dec + (size_t)(t - t0) * CN;
                    const real *Bt = Bm + bt * ldbc;
                    for (int i = i0; i < i1; i++) {
                        const real dl = delta[bt * I + i], dlu = dl * u[bt * I + i];
                        const real *a = A + (size_t)i * N;
                        const real *sp = prev + (size_t)(i - i0) * N;
                        real *sc = cur + (size_t)(i - i0) * N, *e = dec + (size_t)(i - i0) * N;
#pragma omp simd
                        for (int n = 0; n < N; n++) {
                            e[n] = dexp(dl * a[n]);
                            sc[n] = keep * e[n] * sp[n] + dlu * Bt[n];
                        }
                    }
                }
                /* adjoint, t = t1−1 … t0 */
                for (int t = t1 - 1; t >= t0; t--) {
                    size_t bt = (size_t)b * T + t;
                    const real keep = reset_at(flags, bt) ? 0 : 1;
                    const real *prev = St + (size_t)(t - t0) * CN, *cur = prev + CN, *dec = Dec + (size_t)(t - t0) * CN;
                    const real *Bt = Bm + bt * ldbc, *Ct = Cm + bt * ldbc;
                    real *dBt = part + (size_t)t * N2, *dCt = dBt + N;
                    for (int i = i0; i < i1; i++) {
                        const real gy = dy[bt * I + i], dl = delta[bt * I + i], ui = u[bt * I + i];
                        const real *a = A + (size_t)i * N;
                        const real *sp = prev + (size_t)(i - i0) * N, *sc = cur + (size_t)(i - i0) * N;
                        const real *e = dec + (size_t)(i - i0) * N;
                        real *g = G + (size_t)(i - i0) * N, *dAi = dAb + (size_t)(i - i0) * N;
                        real du_acc = 0, ddl_acc = 0;
#pragma omp simd reduction(+ : du_acc, ddl_acc)
                        for (int n = 0; n < N; n++) {
                            real gn = g[n] + Ct[n] * gy;   /* G_t = C_t·dy_t + exp(Δ_{t+1}A)·G_{t+1} */
                            real q = keep * gn * e[n] * sp[n]; /* G_t · ∂h_t/∂(ΔA) */
                            dCt[n] += gy * sc[n];
                            dBt[n] += gn * dl * ui;
                            du_acc += gn * Bt[n];
                            ddl_acc += a[n] * q + gn * Bt[n] * ui;
                            dAi[n] += dl * q;
                            g[n] = keep * gn * e[n]; /* hand exp(Δ_t A)·G_t to t−1 (0 across a reset) */
                        }
                        du[bt * I + i] += dl * du_acc;
                        ddelta[bt * I + i] += ddl_acc;
                    }
                }
            }
        }
    /* fixed-order reductions: dA over the batch, dB/dC over channel blocks */
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

void k_mamba_scan_step(real *h, const real *u, const real *delta, const real *A, const real *Bm, const real *Cm,
                       int ldbc, real *y, int nseq, int I, int N) {
#pragma omp parallel for schedule(static) if (nseq * I >= 4096)
    for (int s = 0; s < nseq; s++)
        scan_token(h + (size_t)s * I * N, u + (size_t)s * I, delta + (size_t)s * I, A, Bm + (size_t)s * ldbc,
                   Cm + (size_t)s * ldbc, y + (size_t)s * I, 0, I, N);
}
