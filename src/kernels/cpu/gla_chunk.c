/* gla_chunk.c — GLA chunked form with secondary chunking (docs/layers.md §4.3, §4.5), CPU.
 *
 * Work is split over (sequence, head) pairs; each walks its chunks in order (forward) or in reverse
 * (backward) with the chunk's rows copied into per-thread scratch. Inside a chunk of Cn rows:
 *   G_r   = inclusive cumulative log decay per key dim, restarted at every SEG_START row;
 *   seg_r = number of SEG_START rows in 0..r (rows with seg 0 continue the entering state);
 *   O     = (Q̂ ⊙ exp G)[seg 0 rows] · S_in  +  A · V
 *   A     = lower-triangular intra-chunk scores, same segment only. For a sub-chunk a (rows a0..),
 *           all earlier rows j of a0's segment form one GEMM block with the reference point
 *           ref = G_{a0}: (Q̂_a ⊙ exp(G_a − ref)) · (K_j ⊙ exp(ref − G_j))ᵀ, both exponents ≤ 0;
 *           the diagonal sub-block is a plain loop whose decay Π_{j<u≤i} exp(gk_u) is a running
 *           product of factors ≤ 1 (one exp per row and key dim, none per pair).
 *   S_out = [no reset in chunk] diag(exp G_L) S_in + (K ⊙ exp(G_L − G))[rows of L's segment]ᵀ · V
 * Backward recomputes A from the saved S_in, runs the transposed products with the same reference
 * points, and gets dgk from dG = Q̂ ⊙ dQ̂ − K ⊙ dK by a reverse cumulative sum inside each segment. */
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/gla.h"
#include "kernels/seq.h"

#define GLA_SUB 16 /* secondary (sub-)chunk length */

typedef struct {
    real *Q, *K, *G, *E, *T1, *T2, *T3, *T4, *A, *dA, *dQ, *dK, *S, *dS, *dS2, *acc, *dec;
    int *seg;
} Work;

static size_t work_per_thread(int dk, int dv, int chunk) {
    size_t C = (size_t)chunk, Ck = C * dk, kv = (size_t)dk * dv;
    return 10 * Ck + 2 * C * C + 3 * kv + 2 * (size_t)dk + C + 16 * 8; /* + room for the int seg[] and alignment */
}

/* One (sequence, head) in run order (time-reversed copies for reverse heads): q, k, gk rows with
 * stride ldk, v and o rows with stride ldv; gradients likewise. rst[i] = 1: the state is zeroed before
 * row i; keep[i] = 0: row i is PAD (absent: k and gk read as 0, o = 0, do ignored, gradients 0). */
typedef struct {
    const real *q, *k, *gk, *v, *dO;
    real *o, *dq, *dk, *dgk, *dv;
    int ldk, ldv, T;
    const uint8_t *rst, *keep;
} GView;

/* Per-thread row arrays: rst, keep [T] bytes; reversed copies q, k, gk, dq, dk, dgk [T, dk]; v, o (or dO), dv [T, dv]. */
typedef struct {
    uint8_t *rst, *keep;
    real *q, *k, *gk, *dq, *dk, *dgk, *v, *o, *dv;
} Rows;

/* The reversed copies exist only when some head runs in reverse (with_rev). */
static size_t rows_size(int T, int dk, int dv, int with_rev) {
    return (with_rev ? 6 * (size_t)T * dk + 3 * (size_t)T * dv : (size_t)dk) + (size_t)T / 2 + 16; /* + 2T bytes of flags */
}

static Work work_slices(real *base, int dk, int dv, int chunk) {
    size_t C = (size_t)chunk, Ck = C * dk, kv = (size_t)dk * dv;
    Work w;
    real *p = base;
    w.Q = p, p += Ck;
    w.K = p, p += Ck;
    w.G = p, p += Ck;
    w.E = p, p += Ck;
    w.T1 = p, p += Ck;
    w.T2 = p, p += Ck;
    w.T3 = p, p += Ck;
    w.T4 = p, p += Ck;
    w.dQ = p, p += Ck;
    w.dK = p, p += Ck;
    w.A = p, p += C * C;
    w.dA = p, p += C * C;
    w.S = p, p += kv;
    w.dS = p, p += kv;
    w.dS2 = p, p += kv;
    w.acc = p, p += dk;
    w.dec = p, p += dk;
    w.seg = (int *)p; /* C ints fit in C reals */
    return w;
}

static real *thread_alloc(Work *w, Rows *r, int T, int dk, int dv, int chunk, int with_rev) {
    size_t wpt = work_per_thread(dk, dv, chunk);
    real *base = eid_aligned_alloc((wpt + rows_size(T, dk, dv, with_rev)) * sizeof(real)), *p = base + wpt;
    *w = work_slices(base, dk, dv, chunk);
    if (!with_rev) { /* only dgk (dk zeros, the forward's PAD row of k and gk) */
        r->q = r->k = r->gk = r->dq = r->dk = r->v = r->o = r->dv = NULL;
        r->dgk = p, p += dk;
        r->rst = (uint8_t *)p, r->keep = r->rst + T;
        return base;
    }
    r->q = p, p += (size_t)T * dk;
    r->k = p, p += (size_t)T * dk;
    r->gk = p, p += (size_t)T * dk;
    r->dq = p, p += (size_t)T * dk;
    r->dk = p, p += (size_t)T * dk;
    r->dgk = p, p += (size_t)T * dk;
    r->v = p, p += (size_t)T * dv;
    r->o = p, p += (size_t)T * dv;
    r->dv = p, p += (size_t)T * dv;
    r->rst = (uint8_t *)p, r->keep = r->rst + T; /* 2T bytes fit in T/4 + 16 reals */
    return base;
}

/* Reset and keep flags of row b in run order (docs/layers.md §0.6, §8.1: a reverse head's state never
 * carries out of a CAUSAL, PAD or segment-start token, or past the row end). */
static void row_flags(const uint8_t *flags, size_t base, int T, int rev, const Rows *r) {
    for (int j = 0; j < T; j++) {
        int t = rev ? T - 1 - j : j;
        uint8_t f = flags ? flags[base + t] : FLAG_CAUSAL;
        int pad = (f & FLAG_PAD) != 0;
        r->keep[j] = !pad;
        if (!rev) r->rst[j] = !pad && (f & FLAG_SEG_START);
        else {
            uint8_t fn = t + 1 < T ? (flags ? flags[base + t + 1] : FLAG_CAUSAL) : FLAG_CAUSAL;
            r->rst[j] = (fn & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START)) != 0;
        }
    }
}

/* rows [t0, t0+n) of a [·, ld] matrix at column c0, width C → time-reversed into dst [n, C] */
static void gather_rev(const real *src, size_t ld, size_t row0, int T, int C, real *dst) {
    for (int j = 0; j < T; j++) memcpy(dst + (size_t)j * C, src + (row0 + T - 1 - j) * ld, sizeof(real) * C);
}

/* Copy view rows t0..t0+Cn−1: Q̂ = scale·q, K (0 at PAD), G (restarted at resets; PAD adds 0),
 * E = exp(gk), seg. */
static void load_chunk(Work *w, const GView *v, int t0, int Cn, int dk, real scale, real *gz) {
    int s = 0;
    for (int i = 0; i < Cn; i++) {
        size_t off = (size_t)(t0 + i) * v->ldk;
        int reset = v->rst[t0 + i], kp = v->keep[t0 + i];
        const real *restrict qr = v->q + off, *restrict kr = kp ? v->k + off : gz; /* PAD: k = gk = 0 */
        s += reset;
        w->seg[i] = s;
        real *restrict Q = w->Q + (size_t)i * dk, *restrict K = w->K + (size_t)i * dk, *restrict G = w->G + (size_t)i * dk;
        real *restrict E = w->E + (size_t)i * dk;
        const real *restrict g = kp ? v->gk + off : gz;
        const int restart = i == 0 || reset;                    /* G restarts at a segment start */
        const real *restrict Gp = w->G + (size_t)(i ? i - 1 : 0) * dk; /* read only when !restart */
#pragma omp simd
        for (int d = 0; d < dk; d++) {
            Q[d] = scale * qr[d];
            K[d] = kr[d];
            const real prev = Gp[d];               /* loaded unconditionally: the select vectorises */
            G[d] = restart ? g[d] : prev + g[d];   /* a select, never 0·stale (stale could be NaN) */
        }
#pragma omp simd
        for (int d = 0; d < dk; d++) E[d] = rexp(g[d]);
    }
}

/* Rows [j0, a0) before sub-chunk a0 that share a0's segment, and rows [a0, ae) of the sub-chunk in it. */
static void sub_ranges(const int *seg, int a0, int a1, int *j0, int *ae) {
    int s = seg[a0], j = a0, e = a0;
    while (j > 0 && seg[j - 1] == s) j--;
    while (e < a1 && seg[e] == s) e++;
    *j0 = j, *ae = e;
}

/* Qa = Q̂ ⊙ exp(G − ref) for rows [a0, ae) into T2; Kp = K ⊙ exp(ref − G) for rows [j0, a0) into T1. */
static void sub_factors(Work *w, int j0, int a0, int ae, int dk) {
    const real *ref = w->G + (size_t)a0 * dk;
    for (int i = a0; i < ae; i++) {
        const real *Q = w->Q + (size_t)i * dk, *G = w->G + (size_t)i * dk;
        real *o = w->T2 + (size_t)(i - a0) * dk;
        for (int d = 0; d < dk; d++) o[d] = Q[d] * rexp(G[d] - ref[d]);
    }
    for (int j = j0; j < a0; j++) {
        const real *K = w->K + (size_t)j * dk, *G = w->G + (size_t)j * dk;
        real *o = w->T1 + (size_t)(j - j0) * dk;
        for (int d = 0; d < dk; d++) o[d] = K[d] * rexp(ref[d] - G[d]);
    }
}

/* Diagonal sub-block, row i: A[i,j] = Σ_d Q̂[i,d]·K[j,d]·Π_{j<u≤i} exp(gk_u[d]) for a0 ≤ j ≤ i in i's
 * segment. The decay is a running product of factors ≤ 1 (no exp of differences, no overflow). */
static void diag_row_fwd(Work *w, int i, int a0, int Cn, int dk) {
    const real *Q = w->Q + (size_t)i * dk;
    real *dec = w->dec;
    for (int d = 0; d < dk; d++) dec[d] = Q[d];
    for (int j = i; j >= a0 && w->seg[j] == w->seg[i]; j--) {
        const real *K = w->K + (size_t)j * dk;
        real acc = 0;
        if (j < i) {
            const real *E = w->E + (size_t)(j + 1) * dk;
            for (int d = 0; d < dk; d++) dec[d] *= E[d];
        }
        for (int d = 0; d < dk; d++) acc += dec[d] * K[d];
        w->A[(size_t)i * Cn + j] = acc;
    }
}

/* Backward of diag_row_fwd: dQ̂[i] += Σ_j dA[i,j]·decay⊙K[j], dK[j] += dA[i,j]·decay⊙Q̂[i]. */
static void diag_row_bwd(Work *w, int i, int a0, int Cn, int dk) {
    real *dec = w->dec;
    const real *Qi = w->Q + (size_t)i * dk;
    real *dQi = w->dQ + (size_t)i * dk;
    for (int d = 0; d < dk; d++) dec[d] = 1;
    for (int j = i; j >= a0 && w->seg[j] == w->seg[i]; j--) {
        if (j < i) {
            const real *E = w->E + (size_t)(j + 1) * dk;
            for (int d = 0; d < dk; d++) dec[d] *= E[d];
        }
        real g = w->dA[(size_t)i * Cn + j];
        const real *Kj = w->K + (size_t)j * dk;
        real *dKj = w->dK + (size_t)j * dk;
        for (int d = 0; d < dk; d++) {
            real e = g * dec[d];
            dQi[d] += e * Kj[d];
            dKj[d] += e * Qi[d];
        }
    }
}

/* A [Cn, Cn] (row stride Cn): masked intra-chunk scores. */
static void build_A(Work *w, int Cn, int dk) {
    memset(w->A, 0, sizeof(real) * (size_t)Cn * Cn);
    int c = EID_MIN(GLA_SUB, Cn);
    for (int a0 = 0; a0 < Cn; a0 += c) {
        int a1 = EID_MIN(Cn, a0 + c), j0, ae;
        sub_ranges(w->seg, a0, a1, &j0, &ae);
        if (j0 < a0) {
            sub_factors(w, j0, a0, ae, dk);
            eid_gemm(0, 1, ae - a0, a0 - j0, dk, 1, w->T2, dk, w->T1, dk, 0, w->A + (size_t)a0 * Cn + j0, Cn);
        }
        for (int i = a0; i < a1; i++) diag_row_fwd(w, i, a0, Cn, dk);
    }
}

static int seg0_rows(const int *seg, int Cn) {
    int n = 0;
    while (n < Cn && seg[n] == 0) n++;
    return n;
}

static int last_seg_start(const int *seg, int Cn) {
    int j = Cn - 1;
    while (j > 0 && seg[j - 1] == seg[Cn - 1]) j--;
    return j;
}

/* Forward over one view; Sc: the saved entering states, chunk c at Sc + c·sc_stride; S0 may be NULL,
 * Sfinal may be NULL. */
static void fwd_view(Work *w, const GView *v, real *Sc, size_t sc_stride, const real *S0, real *Sfinal, int dk, int dv,
                     real scale, int chunk, real *gz) {
    int T = v->T, nck = EID_CDIV(T, chunk), ldv = v->ldv;
    size_t kv = (size_t)dk * dv;
    if (S0) memcpy(w->S, S0, sizeof(real) * kv);
    else memset(w->S, 0, sizeof(real) * kv);
    for (int c = 0; c < nck; c++) {
        int t0 = c * chunk, Cn = EID_MIN(chunk, T - t0);
        memcpy(Sc + (size_t)c * sc_stride, w->S, sizeof(real) * kv);
        load_chunk(w, v, t0, Cn, dk, scale, gz);
        real *O = v->o + (size_t)t0 * ldv;
        const real *V = v->v + (size_t)t0 * ldv;
        /* inter-chunk: rows still in the entering segment read S_in */
        int n0 = seg0_rows(w->seg, Cn);
        for (int i = 0; i < n0; i++)
            for (int d = 0; d < dk; d++) w->T1[(size_t)i * dk + d] = w->Q[(size_t)i * dk + d] * rexp(w->G[(size_t)i * dk + d]);
        eid_gemm(0, 0, n0, dv, dk, 1, w->T1, dk, w->S, dv, 0, O, ldv);
        for (int i = n0; i < Cn; i++) memset(O + (size_t)i * ldv, 0, sizeof(real) * dv);
        /* intra-chunk */
        build_A(w, Cn, dk);
        eid_gemm(0, 0, Cn, dv, Cn, 1, w->A, Cn, V, ldv, 1, O, ldv);
        for (int i = 0; i < Cn; i++)
            if (!v->keep[t0 + i]) memset(O + (size_t)i * ldv, 0, sizeof(real) * dv); /* PAD: o = 0 */
        /* state leaving the chunk */
        int jL = last_seg_start(w->seg, Cn);
        const real *GL = w->G + (size_t)(Cn - 1) * dk;
        if (w->seg[Cn - 1] == 0)
            for (int d = 0; d < dk; d++) {
                real e = rexp(GL[d]);
                for (int j = 0; j < dv; j++) w->S[(size_t)d * dv + j] *= e;
            }
        else
            memset(w->S, 0, sizeof(real) * kv);
        for (int j = jL; j < Cn; j++)
            for (int d = 0; d < dk; d++)
                w->T1[(size_t)(j - jL) * dk + d] = w->K[(size_t)j * dk + d] * rexp(GL[d] - w->G[(size_t)j * dk + d]);
        eid_gemm(1, 0, dk, dv, Cn - jL, 1, w->T1, dk, V + (size_t)jL * ldv, ldv, 1, w->S, dv);
    }
    if (Sfinal) memcpy(Sfinal, w->S, sizeof(real) * kv);
}

void k_gla_chunk_fwd(const real *q, const real *k, const real *v, const real *gk, real *o, int B, int T, int H,
                     int dk, int dv, real scale, int chunk, const uint8_t *flags, int rev_from, const real *S0,
                     real *Sfinal, size_t ldS, real *Sin) {
    int nck = EID_CDIV(T, chunk), HK = H * dk, HV = H * dv;
    size_t kv = (size_t)dk * dv;
#pragma omp parallel
    {
        Work w;
        Rows r;
        real *mem = thread_alloc(&w, &r, T, dk, dv, chunk, rev_from < H);
        real *gz = r.dgk; /* dk zeros (unused in the forward) */
        memset(gz, 0, sizeof(real) * dk);
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H, rev = h >= rev_from;
            size_t base = (size_t)b * T;
            real *Sc = Sin + ((size_t)b * nck * H + h) * kv, *Sf = Sfinal ? Sfinal + (size_t)b * ldS + (size_t)h * kv : NULL;
            row_flags(flags, base, T, rev, &r);
            GView gv = {0};
            gv.T = T, gv.rst = r.rst, gv.keep = r.keep;
            if (!rev) {
                gv.q = q + base * HK + (size_t)h * dk, gv.k = k + base * HK + (size_t)h * dk;
                gv.gk = gk + base * HK + (size_t)h * dk, gv.v = v + base * HV + (size_t)h * dv;
                gv.o = o + base * HV + (size_t)h * dv, gv.ldk = HK, gv.ldv = HV;
                fwd_view(&w, &gv, Sc, (size_t)H * kv, S0 ? S0 + (size_t)b * ldS + (size_t)h * kv : NULL, Sf, dk, dv,
                         scale, chunk, gz);
            } else {
                gather_rev(q + (size_t)h * dk, HK, base, T, dk, r.q);
                gather_rev(k + (size_t)h * dk, HK, base, T, dk, r.k);
                gather_rev(gk + (size_t)h * dk, HK, base, T, dk, r.gk);
                gather_rev(v + (size_t)h * dv, HV, base, T, dv, r.v);
                gv.q = r.q, gv.k = r.k, gv.gk = r.gk, gv.v = r.v, gv.o = r.o, gv.ldk = dk, gv.ldv = dv;
                fwd_view(&w, &gv, Sc, (size_t)H * kv, NULL, NULL, dk, dv, scale, chunk, gz);
                for (int j = 0; j < T; j++)
                    memcpy(o + (base + T - 1 - j) * HV + (size_t)h * dv, r.o + (size_t)j * dv, sizeof(real) * dv);
                if (Sf) memset(Sf, 0, sizeof(real) * kv);
            }
        }
        free(mem);
    }
}

/* Backward over one view (Sc as saved by fwd_view). dO rows of PAD tokens are ignored; accumulates
 * dq (w.r.t. the unscaled q), dk, dv; writes dgk; PAD rows get 0. dOc: scratch [chunk, dv]. */
static void bwd_view(Work *w_, const GView *v, const real *Sc, size_t sc_stride, int dk, int dv, real scale, int chunk,
                     real *gz, real *dOc) {
    Work w = *w_;
    int T = v->T, nck = EID_CDIV(T, chunk), HV = v->ldv, ldk = v->ldk;
    size_t kv = (size_t)dk * dv;
    {
        memset(w.dS, 0, sizeof(real) * kv); /* ∂L/∂(state leaving the current chunk) */
        memset(w.acc, 0, sizeof(real) * dk);
        for (int c = nck - 1; c >= 0; c--) {
            int t0 = c * chunk, Cn = EID_MIN(chunk, T - t0), cs = EID_MIN(GLA_SUB, Cn);
            const real *S = Sc + (size_t)c * sc_stride;
            load_chunk(&w, v, t0, Cn, dk, scale, gz);
            const real *dO = v->dO + (size_t)t0 * HV, *V = v->v + (size_t)t0 * HV;
            real *dV = v->dv + (size_t)t0 * HV;
            int npad = 0;
            for (int i = 0; i < Cn; i++) npad += !v->keep[t0 + i];
            if (npad) { /* PAD rows: their do is ignored (their o is defined as 0) */
                for (int i = 0; i < Cn; i++) {
                    if (v->keep[t0 + i]) memcpy(dOc + (size_t)i * dv, dO + (size_t)i * HV, sizeof(real) * dv);
                    else memset(dOc + (size_t)i * dv, 0, sizeof(real) * dv);
                }
            }
            const int ldo = npad ? dv : HV;
            if (npad) dO = dOc;
            memset(w.dQ, 0, sizeof(real) * (size_t)Cn * dk);
            memset(w.dK, 0, sizeof(real) * (size_t)Cn * dk);
            /* O += A·V:  dA = dO·Vᵀ (valid entries only), dV += Aᵀ·dO */
            build_A(&w, Cn, dk);
            eid_gemm(0, 1, Cn, Cn, dv, 1, dO, ldo, V, HV, 0, w.dA, Cn);
            for (int i = 0; i < Cn; i++)
                for (int j = 0; j < Cn; j++)
                    if (j > i || w.seg[j] != w.seg[i]) w.dA[(size_t)i * Cn + j] = 0;
            eid_gemm(1, 0, Cn, dv, Cn, 1, w.A, Cn, dO, ldo, 1, dV, HV);
            /* O += (Q̂ ⊙ exp G)·S_in on the entering segment's rows */
            int n0 = seg0_rows(w.seg, Cn);
            for (int i = 0; i < n0; i++)
                for (int d = 0; d < dk; d++) w.T1[(size_t)i * dk + d] = w.Q[(size_t)i * dk + d] * rexp(w.G[(size_t)i * dk + d]);
            eid_gemm(0, 1, n0, dk, dv, 1, dO, ldo, S, dv, 0, w.T3, dk);
            for (int i = 0; i < n0; i++)
                for (int d = 0; d < dk; d++)
                    w.dQ[(size_t)i * dk + d] += w.T3[(size_t)i * dk + d] * rexp(w.G[(size_t)i * dk + d]);
            eid_gemm(1, 0, dk, dv, n0, 1, w.T1, dk, dO, ldo, 0, w.dS2, dv); /* ∂L/∂S_in, first part */
            /* S_out = keep·diag(exp G_L)·S_in + Kdᵀ·V[jL..] */
            int jL = last_seg_start(w.seg, Cn), nL = Cn - jL;
            const real *GL = w.G + (size_t)(Cn - 1) * dk;
            for (int j = jL; j < Cn; j++)
                for (int d = 0; d < dk; d++)
                    w.T1[(size_t)(j - jL) * dk + d] = w.K[(size_t)j * dk + d] * rexp(GL[d] - w.G[(size_t)j * dk + d]);
            eid_gemm(0, 0, nL, dv, dk, 1, w.T1, dk, w.dS, dv, 1, dV + (size_t)jL * HV, HV);
            eid_gemm(0, 1, nL, dk, dv, 1, V + (size_t)jL * HV, HV, w.dS, dv, 0, w.T3, dk);
            for (int j = jL; j < Cn; j++)
                for (int d = 0; d < dk; d++)
                    w.dK[(size_t)j * dk + d] += w.T3[(size_t)(j - jL) * dk + d] * rexp(GL[d] - w.G[(size_t)j * dk + d]);
            if (w.seg[Cn - 1] == 0)
                for (int d = 0; d < dk; d++) {
                    real e = rexp(GL[d]);
                    for (int j = 0; j < dv; j++) w.dS2[(size_t)d * dv + j] += e * w.dS[(size_t)d * dv + j];
                }
            /* intra-chunk scores */
            for (int a0 = 0; a0 < Cn; a0 += cs) {
                int a1 = EID_MIN(Cn, a0 + cs), j0, ae;
                sub_ranges(w.seg, a0, a1, &j0, &ae);
                if (j0 < a0) {
                    const real *ref = w.G + (size_t)a0 * dk, *dAb = w.dA + (size_t)a0 * Cn + j0;
                    sub_factors(&w, j0, a0, ae, dk);
                    eid_gemm(0, 0, ae - a0, dk, a0 - j0, 1, dAb, Cn, w.T1, dk, 0, w.T3, dk); /* ∂L/∂Qa */
                    eid_gemm(1, 0, a0 - j0, dk, ae - a0, 1, dAb, Cn, w.T2, dk, 0, w.T4, dk); /* ∂L/∂Kp */
                    for (int i = a0; i < ae; i++)
                        for (int d = 0; d < dk; d++)
                            w.dQ[(size_t)i * dk + d] += w.T3[(size_t)(i - a0) * dk + d] * rexp(w.G[(size_t)i * dk + d] - ref[d]);
                    for (int j = j0; j < a0; j++)
                        for (int d = 0; d < dk; d++)
                            w.dK[(size_t)j * dk + d] += w.T4[(size_t)(j - j0) * dk + d] * rexp(ref[d] - w.G[(size_t)j * dk + d]);
                }
                for (int i = a0; i < a1; i++) diag_row_bwd(&w, i, a0, Cn, dk);
            }
            /* write back; dgk = reverse cumulative sum of dG = Q̂⊙dQ̂ − K⊙dK inside each segment */
            for (int i = Cn - 1; i >= 0; i--) {
                size_t off = (size_t)(t0 + i) * ldk;
                const real *Q = w.Q + (size_t)i * dk, *K = w.K + (size_t)i * dk;
                const real *dQ = w.dQ + (size_t)i * dk, *dK = w.dK + (size_t)i * dk;
                const real kp = v->keep[t0 + i] ? 1 : 0;
                for (int d = 0; d < dk; d++) {
                    w.acc[d] += Q[d] * dQ[d] - K[d] * dK[d];
                    v->dgk[off + d] = kp * w.acc[d];
                    v->dq[off + d] += scale * dQ[d];
                    v->dk[off + d] += kp * dK[d];
                }
                if (v->rst[t0 + i]) memset(w.acc, 0, sizeof(real) * dk);
            }
            real *t = w.dS;
            w.dS = w.dS2, w.dS2 = t; /* ∂L/∂S_in becomes ∂L/∂(state leaving the previous chunk) */
        }
    }
}

void k_gla_chunk_bwd(const real *q, const real *k, const real *v, const real *gk, const real *do_, const real *Sin,
                     real *dq, real *dk_, real *dv_, real *dgk, int B, int T, int H, int dk, int dv, real scale,
                     int chunk, const uint8_t *flags, int rev_from) {
    int nck = EID_CDIV(T, chunk), HK = H * dk, HV = H * dv;
    size_t kv = (size_t)dk * dv;
#pragma omp parallel
    {
        Work w;
        Rows r;
        real *mem = thread_alloc(&w, &r, T, dk, dv, chunk, rev_from < H);
        real *gz = eid_aligned_alloc(((size_t)dk + (size_t)chunk * dv) * sizeof(real)), *dOc = gz + dk;
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * H; bh++) {
            int b = bh / H, h = bh % H, rev = h >= rev_from;
            size_t base = (size_t)b * T;
            const real *Sc = Sin + ((size_t)b * nck * H + h) * kv;
            row_flags(flags, base, T, rev, &r);
            GView gv = {0};
            gv.T = T, gv.rst = r.rst, gv.keep = r.keep;
            if (!rev) {
                size_t ok = base * HK + (size_t)h * dk, ov = base * HV + (size_t)h * dv;
                gv.q = q + ok, gv.k = k + ok, gv.gk = gk + ok, gv.v = v + ov, gv.dO = do_ + ov;
                gv.dq = dq + ok, gv.dk = dk_ + ok, gv.dgk = dgk + ok, gv.dv = dv_ + ov, gv.ldk = HK, gv.ldv = HV;
                bwd_view(&w, &gv, Sc, (size_t)H * kv, dk, dv, scale, chunk, gz, dOc);
            } else {
                gather_rev(q + (size_t)h * dk, HK, base, T, dk, r.q);
                gather_rev(k + (size_t)h * dk, HK, base, T, dk, r.k);
                gather_rev(gk + (size_t)h * dk, HK, base, T, dk, r.gk);
                gather_rev(v + (size_t)h * dv, HV, base, T, dv, r.v);
                gather_rev(do_ + (size_t)h * dv, HV, base, T, dv, r.o);
                memset(r.dq, 0, sizeof(real) * (size_t)T * dk), memset(r.dk, 0, sizeof(real) * (size_t)T * dk);
                memset(r.dv, 0, sizeof(real) * (size_t)T * dv);
                gv.q = r.q, gv.k = r.k, gv.gk = r.gk, gv.v = r.v, gv.dO = r.o;
                gv.dq = r.dq, gv.dk = r.dk, gv.dgk = r.dgk, gv.dv = r.dv, gv.ldk = dk, gv.ldv = dv;
                bwd_view(&w, &gv, Sc, (size_t)H * kv, dk, dv, scale, chunk, gz, dOc);
                for (int j = 0; j < T; j++) {
                    size_t m = base + T - 1 - j, ok = m * HK + (size_t)h * dk, ov = m * HV + (size_t)h * dv;
                    for (int d = 0; d < dk; d++) {
                        dq[ok + d] += r.dq[(size_t)j * dk + d];
                        dk_[ok + d] += r.dk[(size_t)j * dk + d];
                        dgk[ok + d] = r.dgk[(size_t)j * dk + d];
                    }
                    for (int d = 0; d < dv; d++) dv_[ov + d] += r.dv[(size_t)j * dv + d];
                }
            }
        }
        free(gz);
        free(mem);
    }
}

void k_gla_step(real *S, size_t ldS, const real *q, const real *k, const real *v, const real *gk, real *o, int nseq,
                int H, int dk, int dv, real scale) {
    int HK = H * dk, HV = H * dv;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)nseq * H * dk * dv >= 16384)
    for (int s = 0; s < nseq; s++)
        for (int h = 0; h < H; h++) {
            real *Sh = S + (size_t)s * ldS + (size_t)h * dk * dv;
            const real *qh = q + (size_t)s * HK + (size_t)h * dk, *kh = k + (size_t)s * HK + (size_t)h * dk;
            const real *gh = gk + (size_t)s * HK + (size_t)h * dk, *vh = v + (size_t)s * HV + (size_t)h * dv;
            real *oh = o + (size_t)s * HV + (size_t)h * dv;
            for (int j = 0; j < dv; j++) oh[j] = 0;
            for (int d = 0; d < dk; d++) {
                real a = rexp(gh[d]), kd = kh[d], qd = scale * qh[d];
                real *row = Sh + (size_t)d * dv;
                for (int j = 0; j < dv; j++) {
                    real x = a * row[j] + kd * vh[j];
                    row[j] = x;
                    oh[j] += qd * x;
                }
            }
        }
}
