/* scan_longhorn.c — the Longhorn diagonal recurrence (layers.md §2.2, §2.5), CPU.
 *
 * Forward is parallel over (batch × channel blocks) and vectorised over the state dimension n:
 * a block's state [CB, N] stays in L1 while t advances. Backward is parallel over the batch
 * (dk, dq sum over all channels of one sequence) and recomputes the states of each chunk from the
 * state saved at its start, then runs the adjoint recurrence backwards through the chunk. */
#include <omp.h>
#include <string.h>
#include "kernels/kernels.h"
#include "layers/layer.h"

#define SCAN_CB 16 /* channels per forward task */

static inline int reset_at(const uint8_t *flags, size_t i) { return flags && (flags[i] & FLAG_SEG_START); }

/* One token for channels [i0, i1): S ← (1 − ε k²) S + ε u k ; y = S·q. */
static inline void scan_token(real *restrict S, const real *restrict u, const real *restrict eps,
                              const real *restrict k, const real *restrict q, real *restrict y, int i0, int i1,
                              int N) {
    for (int i = i0; i < i1; i++) {
        real *restrict s = S + (size_t)(i - i0) * N;
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

void k_longhorn_scan_fwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, real *y, int B, int T,
                         int I, int N, int chunk, const uint8_t *flags, real *Sck, real *Sfinal) {
    int ncb = EID_CDIV(I, SCAN_CB), nck = EID_CDIV(T, chunk);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int cb = 0; cb < ncb; cb++) {
            int i0 = cb * SCAN_CB, i1 = EID_MIN(I, i0 + SCAN_CB);
            real S[SCAN_CB * 256]; /* N ≤ 256 (checked by the layer) */
            memset(S, 0, sizeof(real) * (size_t)(i1 - i0) * N);
            for (int t = 0; t < T; t++) {
                size_t bt = (size_t)b * T + t;
                if (reset_at(flags, bt)) memset(S, 0, sizeof(real) * (size_t)(i1 - i0) * N);
                if (Sck && t % chunk == 0)
                    memcpy(Sck + (((size_t)b * nck + t / chunk) * I + i0) * N, S, sizeof(real) * (i1 - i0) * N);
                scan_token(S, u + bt * I, eps + bt * I, k + bt * ldkq, q + bt * ldkq, y + bt * I, i0, i1, N);
            }
            if (Sfinal) memcpy(Sfinal + ((size_t)b * I + i0) * N, S, sizeof(real) * (i1 - i0) * N);
        }
}

size_t k_longhorn_scan_bwd_work(int I, int N, int chunk, int nthreads) {
    /* per thread: states of one chunk plus its entering state [(chunk+1), I, N], adjoint G [I, N] */
    return (size_t)nthreads * ((size_t)(chunk + 2) * I * N);
}

void k_longhorn_scan_bwd(const real *u, const real *eps, const real *k, const real *q, int ldkq, const real *dy,
                         const real *Sck, real *du, real *deps, real *dk, real *dq, int B, int T, int I, int N,
                         int chunk, const uint8_t *flags, real *work) {
    int nck = EID_CDIV(T, chunk);
    size_t IN = (size_t)I * N;
#pragma omp parallel for schedule(dynamic, 1)
    for (int b = 0; b < B; b++) {
        real *St = work + (size_t)omp_get_thread_num() * (chunk + 2) * IN; /* St[j] = state after token t0+j−1 */
        real *G = St + (size_t)(chunk + 1) * IN;                             /* ∂L/∂S carried backwards */
        memset(G, 0, sizeof(real) * IN);
        for (int c = nck - 1; c >= 0; c--) {
            int t0 = c * chunk, t1 = EID_MIN(T, t0 + chunk);
            /* recompute the chunk's states from the saved entering state (never by division) */
            memcpy(St, Sck + ((size_t)b * nck + c) * IN, sizeof(real) * IN);
            for (int t = t0; t < t1; t++) {
                size_t bt = (size_t)b * T + t;
                real *prev = St + (size_t)(t - t0) * IN, *cur = prev + IN;
                const real keep = reset_at(flags, bt) ? 0 : 1; /* a reset forgets S_{t−1} */
                const real *kt = k + bt * ldkq;
                for (int i = 0; i < I; i++) {
                    const real e = eps[bt * I + i], eu = e * u[bt * I + i];
                    const real *sp = prev + (size_t)i * N;
                    real *sc = cur + (size_t)i * N;
#pragma omp simd
                    for (int n = 0; n < N; n++) sc[n] = keep * (1 - e * kt[n] * kt[n]) * sp[n] + eu * kt[n];
                }
            }
            /* adjoint, t = t1−1 … t0 */
            for (int t = t1 - 1; t >= t0; t--) {
                size_t bt = (size_t)b * T + t;
                const real *prev = St + (size_t)(t - t0) * IN, *cur = prev + IN;
                const real *kt = k + bt * ldkq, *qt = q + bt * ldkq;
                real *dkt = dk + bt * ldkq, *dqt = dq + bt * ldkq;
                const real keep = reset_at(flags, bt) ? 0 : 1; /* S_{t−1} and the carried adjoint are cut */
                for (int i = 0; i < I; i++) {
                    const real g_y = dy[bt * I + i], e = eps[bt * I + i], ui = u[bt * I + i];
                    real *restrict g = G + (size_t)i * N;
                    const real *restrict sp = prev + (size_t)i * N, *restrict sc = cur + (size_t)i * N;
                    real du_acc = 0, de_acc = 0;
#pragma omp simd reduction(+ : du_acc, de_acc)
                    for (int n = 0; n < N; n++) {
                        const real kn = kt[n], spn = keep * sp[n];
                        const real gn = g[n] + qt[n] * g_y; /* G_t = q_t·dy_t + A_{t+1} G_{t+1} */
                        dqt[n] += g_y * sc[n];
                        du_acc += gn * e * kn;
                        de_acc += gn * (ui * kn - kn * kn * spn);
                        dkt[n] += gn * e * (ui - 2 * kn * spn);
                        g[n] = keep * gn * (1 - e * kn * kn); /* hand A_t G_t to t−1 */
                    }
                    du[bt * I + i] += du_acc;
                    deps[bt * I + i] = de_acc;
                }
            }
        }
    }
}

void k_longhorn_scan_step(real *S, const real *u, const real *eps, const real *k, const real *q, int ldkq, real *y,
                          int nseq, int I, int N) {
#pragma omp parallel for schedule(static) if (nseq * I >= 4096)
    for (int s = 0; s < nseq; s++)
        scan_token(S + (size_t)s * I * N, u + (size_t)s * I, eps + (size_t)s * I, k + (size_t)s * ldkq,
                   q + (size_t)s * ldkq, y + (size_t)s * I, 0, I, N);
}
