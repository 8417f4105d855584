/* attention.c — softmax attention kernels (docs/layers.md §5), CPU.
 *
 * Forward: flash-style. Parallel over (batch, head, query block); each task walks the key blocks of
 * its query block, keeping a running max m and sum ℓ per row (online softmax), so memory is
 * O(block²) per thread, never O(T²). lse = m + log ℓ is saved per (token, head).
 * Backward: D_i = dO_i·O_i, then two passes that recompute P = exp(S − lse) block by block:
 *   pass 1, parallel over (batch, head, query block):  dQ = Σ_blocks dS·K / √dh
 *   pass 2, parallel over (batch, kv head, key block): dV = Σ Pᵀ·dO, dK = Σ dSᵀ·Q / √dh
 * (each output row is written by exactly one task: no atomics, deterministic).
 * Prefix-LM (Birdie bidirectional layers, docs/layers.md §8): query i sees keys up to hi[i] ≥ i
 * instead of i (k_attn_hi: the end of its prompt run); hi NULL is the causal mask. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/attention.h"
#include "kernels/seq.h"

static inline int is_pad(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_PAD); }
static inline int is_seg(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_SEG_START); }

/* The blocked kernels read flags only for PAD (segments and windows are in `lo`): without any PAD
 * token they get NULL, so the masking loops run unswitched as without flags (training data always
 * carries flags; a per-key flag load made attention steps 5-7% slower). */
static const uint8_t *pad_flags(const uint8_t *f, size_t n) {
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++)
        if (f[i] & FLAG_PAD) return f;
    return NULL;
}

void k_token_positions(const uint8_t *flags, int B, int T, const int *base, int *pos) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int p = base ? base[b] : 0;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (is_pad(flags, i)) { pos[i] = p; continue; } /* not a token: does not advance */
            if (is_seg(flags, i)) p = 0;
            pos[i] = p++;
        }
    }
}

void k_attn_lo(const uint8_t *flags, int B, int T, int window, int *lo) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int first = 0, cnt = 0; /* cnt: non-PAD tokens in [first, t] */
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t, r = (size_t)b * T;
            if (is_pad(flags, i)) { lo[i] = first; continue; }
            if (is_seg(flags, i)) first = t, cnt = 0;
            cnt++;
            while (window > 0 && cnt > window) cnt -= !is_pad(flags, r + first++);
            lo[i] = first;
        }
    }
}

void k_attn_hi(const uint8_t *flags, int B, int T, int window, int *hi) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int end = 0; /* end of the prompt run of token t+1 (valid when t+1 continues a run) */
        for (int t = T - 1; t >= 0; t--) {
            size_t i = (size_t)b * T + t;
            if (!flags || (flags[i] & (FLAG_CAUSAL | FLAG_PAD))) { hi[i] = t; continue; }
            /* a real prompt token: its run goes on through t+1 unless t+1 is CAUSAL, PAD, a segment
             * start or past the row (the reverse recurrences' cut, docs/layers.md §8.1) */
            int cont = t + 1 < T && !(flags[i + 1] & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START));
            end = cont ? end : t;
            hi[i] = window > 0 ? EID_MIN(end, t + window - 1) : end;
        }
    }
}

/* cos/sin of pos·θ_i, θ_i = theta^(−2i/dh), in double (shared by the table and the decode step,
 * so that both round to the same reals). */
static inline void rope_cs(long pos, int i, int dh, double theta, real *c, real *s) {
    double phi = (double)pos * pow(theta, -2.0 * i / dh);
    *c = (real)cos(phi), *s = (real)sin(phi);
}

void k_rope_table(int T, int dh, double theta, real *cs, real *sn) {
    int half = dh / 2;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) rope_cs(t, i, dh, theta, cs + (size_t)t * half + i, sn + (size_t)t * half + i);
}

/* x'[i] = x[i]·c − x[i+h]·s ;  x'[i+h] = x[i+h]·c + x[i]·s   (s negated for the inverse) */
static inline void rope_row(real *x, int nh, int dh, const real *c, const real *s, int inverse) {
    int half = dh / 2;
    for (int h = 0; h < nh; h++) {
        real *a = x + (size_t)h * dh, *b = a + half;
        for (int i = 0; i < half; i++) {
            real si = inverse ? -s[i] : s[i], x0 = a[i], x1 = b[i];
            a[i] = x0 * c[i] - x1 * si;
            b[i] = x1 * c[i] + x0 * si;
        }
    }
}

void k_rope_apply(real *x, int ld, int M, int nh, int dh, const int *pos, const real *cs, const real *sn, int inverse) {
    int half = dh / 2;
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; m++)
        rope_row(x + (size_t)m * ld, nh, dh, cs + (size_t)pos[m] * half, sn + (size_t)pos[m] * half, inverse);
}

/* Max of s[a..e] over non-PAD keys (kf: the key block's flags, NULL = no PAD). Returns 0 when every
 * key is PAD. Two loops, not one with a flag test: the flag-free one vectorises, and a batch without
 * PAD (training data) always takes it. */
static inline int row_max(const real *s, int a, int e, const uint8_t *kf, real *mx) {
    if (!kf) {
        real m = s[a];
        for (int c = a + 1; c <= e; c++) m = s[c] > m ? s[c] : m;
        *mx = m;
        return 1;
    }
    int any = 0;
    for (int c = a; c <= e; c++)
        if (!(kf[c] & FLAG_PAD) && (!any || s[c] > *mx)) *mx = s[c], any = 1;
    return any;
}

/* s[c] = exp(s[c] − shift) on visible keys (a ≤ c ≤ e, not PAD), 0 elsewhere; returns the sum. */
static inline real row_exp(real *s, int nk, int a, int e, const uint8_t *kf, real shift) {
    real sum = 0;
    if (!kf) {
        for (int c = 0; c < nk; c++) {
            real p = (c >= a && c <= e) ? rexp(s[c] - shift) : 0;
            s[c] = p, sum += p;
        }
        return sum;
    }
    for (int c = 0; c < nk; c++) {
        real p = (c >= a && c <= e && !(kf[c] & FLAG_PAD)) ? rexp(s[c] - shift) : 0;
        s[c] = p, sum += p;
    }
    return sum;
}

static inline real attn_scale(int dh) { return (real)(1.0 / sqrt((double)dh)); }

/* Per-thread scratch of the blocked kernels: two block×block tiles and two block vectors. Each
 * call takes its own (sized by the block only), so no caller passes a thread-count-sized buffer. */
static inline size_t tile_reals(int block) { return 2 * (size_t)block * block + 2 * (size_t)block; }

/* Visible keys of query i inside one key block [j0, j0+nk): columns [a, e] minus PAD keys. Returns
 * 0 when none is visible (a PAD query sees nothing). */
static inline int visible_range(const int *lo, const int *hi, const uint8_t *f, size_t bt0, int i, int j0, int nk,
                                int *a, int *e) {
    if (is_pad(f, bt0 + i)) return 0;
    /* last visible key: hi[i] (prefix-LM: the end of the prompt run, ≥ i; B'MOJO's fading pass: < i) */
    int last = hi ? hi[bt0 + i] : i;
    *a = EID_MAX(lo[bt0 + i], j0) - j0, *e = EID_MIN(last, j0 + nk - 1) - j0;
    return *a <= *e;
}

/* One past the last key any query of rows [i0, i1) may see (hi NULL: i1). */
static inline int key_end(const int *hi, size_t bt0, int i0, int i1) {
    if (!hi) return i1;
    int e = i0;
    for (int i = i0; i < i1; i++) e = EID_MAX(e, hi[bt0 + i] + 1);
    return e;
}

/* The forward of k_attn_fwd / k_attn_fwd_range: keys lo[i] ≤ j ≤ hi[i] (hi NULL: i); a query that
 * sees no key gets o = 0 and lse = empty_lse. */
static void attn_fwd(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                     int dh, int block, const int *lo, const int *hi, const uint8_t *flags, real empty_lse) {
    int nqb = EID_CDIV(T, block), G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    flags = pad_flags(flags, (size_t)B * T);
    real scale = attn_scale(dh);
#pragma omp parallel
    {
        real *S = eid_aligned_alloc(tile_reals(block) * sizeof(real));
        real *m = S + (size_t)block * block, *l = m + block;
#pragma omp for collapse(3) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int qb = 0; qb < nqb; qb++) {
                    int i0 = qb * block, i1 = EID_MIN(T, i0 + block), nq = i1 - i0;
                    size_t bt0 = (size_t)b * T;
                    const real *qblk = q + (bt0 + i0) * ldq + (size_t)h * dh;
                    real *oblk = o + (bt0 + i0) * ldq + (size_t)h * dh;
                    const real *kb = k + bt0 * ldk + (size_t)(h / G) * dh, *vb = v + bt0 * ldk + (size_t)(h / G) * dh;
                    for (int r = 0; r < nq; r++) {
                        memset(oblk + (size_t)r * ldq, 0, sizeof(real) * dh);
                        m[r] = 0, l[r] = 0; /* l == 0: row has seen no key yet */
                    }
                    int jend = key_end(hi, bt0, i0, i1);
                    for (int j0 = lo[bt0 + i0]; j0 < jend; j0 += block) { /* lo is nondecreasing along a row */
                        int j1 = EID_MIN(jend, j0 + block), nk = j1 - j0;
                        eid_gemm(0, 1, nq, nk, dh, scale, qblk, ldq, kb + (size_t)j0 * ldk, ldk, 0, S, nk);
                        for (int r = 0; r < nq; r++) {
                            int a, e, any = 0;
                            real *s = S + (size_t)r * nk, mx = 0;
                            if (visible_range(lo, hi, flags, bt0, i0 + r, j0, nk, &a, &e))
                                any = row_max(s, a, e, flags ? flags + bt0 + j0 : NULL, &mx);
                            if (!any) { memset(s, 0, sizeof(real) * nk); continue; }
                            real mnew = l[r] > 0 && m[r] > mx ? m[r] : mx;
                            real f = l[r] > 0 ? rexp(m[r] - mnew) : 0;
                            real sum = row_exp(s, nk, a, e, flags ? flags + bt0 + j0 : NULL, mnew);
                            if (l[r] > 0 && f != 1) {
                                real *orow = oblk + (size_t)r * ldq;
                                for (int d = 0; d < dh; d++) orow[d] *= f;
                            }
                            l[r] = l[r] * f + sum, m[r] = mnew;
                        }
                        eid_gemm(0, 0, nq, dh, nk, 1, S, nk, vb + (size_t)j0 * ldk, ldk, 1, oblk, ldq);
                    }
                    for (int r = 0; r < nq; r++) { /* a query that saw nothing: o = 0, lse = empty_lse */
                        real inv = l[r] > 0 ? 1 / l[r] : 0, *orow = oblk + (size_t)r * ldq;
                        for (int d = 0; d < dh; d++) orow[d] *= inv;
                        lse[(bt0 + i0 + r) * H + h] = l[r] > 0 ? m[r] + rlog(l[r]) : empty_lse;
                    }
                }
        free(S);
    }
}

void k_attn_fwd(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv, int dh,
                int block, const int *lo, const int *hi, const uint8_t *flags) {
    attn_fwd(q, k, v, o, lse, B, T, H, Hkv, dh, block, lo, hi, flags, 0);
}

void k_attn_fwd_range(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                      int dh, int block, const int *lo, const int *hi, const uint8_t *flags) {
    attn_fwd(q, k, v, o, lse, B, T, H, Hkv, dh, block, lo, hi, flags, K_LSE_NONE);
}

void k_attn_lse_merge(real *o, real *lse, const real *o2, const real *lse2, size_t MH, int dh) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < MH; i++) {
        real a = lse[i], b = lse2[i], mx = a > b ? a : b;
        if (b <= K_LSE_NONE) continue; /* the second set is empty: nothing changes */
        if (a <= K_LSE_NONE) { memcpy(o + i * dh, o2 + i * dh, sizeof(real) * dh), lse[i] = b; continue; }
        real L = mx + rlog(rexp(a - mx) + rexp(b - mx)), fa = rexp(a - L), fb = rexp(b - L);
        real *x = o + i * dh;
        const real *y = o2 + i * dh;
        for (int d = 0; d < dh; d++) x[d] = x[d] * fa + y[d] * fb;
        lse[i] = L;
    }
}

/* For query rows [i0, i0+nq) of head h and keys [j0, j0+nk) of its kv head: P = exp(S − lse)
 * (0 where masked) and dS = P ⊙ (dO·Vᵀ − D). qblk, doblk point at row i0, column h·dh. */
static void block_p_ds(const real *qblk, const real *doblk, const real *kb, const real *vb, const real *lse,
                       const real *dvec, size_t bt0, int i0, int nq, int j0, int nk, int H, int h, int dh, int ldq,
                       int ldk, const int *lo, const int *hi, const uint8_t *flags, real scale, real *P, real *dS) {
    eid_gemm(0, 1, nq, nk, dh, scale, qblk, ldq, kb + (size_t)j0 * ldk, ldk, 0, P, nk);
    eid_gemm(0, 1, nq, nk, dh, 1, doblk, ldq, vb + (size_t)j0 * ldk, ldk, 0, dS, nk);
    for (int r = 0; r < nq; r++) {
        int i = i0 + r, a = 0, e = -1;
        visible_range(lo, hi, flags, bt0, i, j0, nk, &a, &e);
        real L = lse[(bt0 + i) * H + h], Dv = dvec[(bt0 + i) * H + h];
        real *p = P + (size_t)r * nk, *ds = dS + (size_t)r * nk;
        row_exp(p, nk, a, e, flags ? flags + bt0 + j0 : NULL, L);
        for (int c = 0; c < nk; c++) ds[c] = p[c] * (ds[c] - Dv);
    }
}

static void attn_bwd(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                     real *dq, real *dk, real *dv, real *dvec, int B, int T, int H, int Hkv, int dh, int block,
                     const int *lo, const int *hi, const uint8_t *flags) {
    int nb = EID_CDIV(T, block), G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    flags = pad_flags(flags, (size_t)B * T);
    size_t MH = (size_t)B * T * H;
    real scale = attn_scale(dh);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < MH; i++) {
        const real *a = dout + i * dh, *c = o + i * dh; /* [M, H, dh] rows are contiguous per (token, head) */
        real acc = 0;
        for (int d = 0; d < dh; d++) acc += a[d] * c[d];
        dvec[i] = acc;
    }
#pragma omp parallel
    {
        real *P = eid_aligned_alloc(tile_reals(block) * sizeof(real)), *dS = P + (size_t)block * block;
        /* pass 1: dQ */
#pragma omp for collapse(3) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int qb = 0; qb < nb; qb++) {
                    int i0 = qb * block, i1 = EID_MIN(T, i0 + block), nq = i1 - i0;
                    size_t bt0 = (size_t)b * T, off = (bt0 + i0) * ldq + (size_t)h * dh;
                    const real *kb = k + bt0 * ldk + (size_t)(h / G) * dh, *vb = v + bt0 * ldk + (size_t)(h / G) * dh;
                    for (int r = 0; r < nq; r++) memset(dq + off + (size_t)r * ldq, 0, sizeof(real) * dh);
                    int jend = key_end(hi, bt0, i0, i1);
                    for (int j0 = lo[bt0 + i0]; j0 < jend; j0 += block) {
                        int nk = EID_MIN(jend, j0 + block) - j0;
                        block_p_ds(q + off, dout + off, kb, vb, lse, dvec, bt0, i0, nq, j0, nk, H, h, dh, ldq, ldk, lo,
                                   hi, flags, scale, P, dS);
                        eid_gemm(0, 0, nq, dh, nk, scale, dS, nk, kb + (size_t)j0 * ldk, ldk, 1, dq + off, ldq);
                    }
                }
        /* pass 2: dK, dV (all query heads of a kv head in one task) */
#pragma omp for collapse(3) schedule(dynamic, 1)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < Hkv; g++)
                for (int kbi = 0; kbi < nb; kbi++) {
                    int j0 = kbi * block, j1 = EID_MIN(T, j0 + block), nk = j1 - j0;
                    size_t bt0 = (size_t)b * T, koff = (bt0 + j0) * ldk + (size_t)g * dh;
                    const real *kb = k + bt0 * ldk + (size_t)g * dh, *vb = v + bt0 * ldk + (size_t)g * dh;
                    for (int c = 0; c < nk; c++) {
                        memset(dk + koff + (size_t)c * ldk, 0, sizeof(real) * dh);
                        memset(dv + koff + (size_t)c * ldk, 0, sizeof(real) * dh);
                    }
                    /* first query that may see a key of this block (hi is nondecreasing): earlier prompt
                     * queries under prefix-LM, later ones in B'MOJO's fading pass */
                    int ilo = j0;
                    while (hi && ilo > 0 && hi[bt0 + ilo - 1] >= j0) ilo--;
                    while (hi && ilo < T && hi[bt0 + ilo] < j0) ilo++;
                    int ihi = EID_MAX(j1 - 1, ilo - 1); /* last one (lo is nondecreasing) */
                    while (ihi + 1 < T && lo[bt0 + ihi + 1] <= j1 - 1) ihi++;
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int i0 = ilo; i0 <= ihi; i0 += block) {
                            int nq = EID_MIN(ihi + 1, i0 + block) - i0;
                            size_t off = (bt0 + i0) * ldq + (size_t)h * dh;
                            block_p_ds(q + off, dout + off, kb, vb, lse, dvec, bt0, i0, nq, j0, nk, H, h, dh, ldq, ldk,
                                       lo, hi, flags, scale, P, dS);
                            eid_gemm(1, 0, nk, dh, nq, 1, P, nk, dout + off, ldq, 1, dv + koff, ldk);
                            eid_gemm(1, 0, nk, dh, nq, scale, dS, nk, q + off, ldq, 1, dk + koff, ldk);
                        }
                }
        free(P);
    }
}

void k_attn_bwd(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                real *dq, real *dk, real *dv, real *dvec, int B, int T, int H, int Hkv, int dh, int block,
                const int *lo, const int *hi, const uint8_t *flags) {
    attn_bwd(q, k, v, o, lse, dout, dq, dk, dv, dvec, B, T, H, Hkv, dh, block, lo, hi, flags);
}

void k_attn_bwd_range(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                      real *dq, real *dk, real *dv, real *dvec, int B, int T, int H, int Hkv, int dh, int block,
                      const int *lo, const int *hi, const uint8_t *flags) {
    attn_bwd(q, k, v, o, lse, dout, dq, dk, dv, dvec, B, T, H, Hkv, dh, block, lo, hi, flags);
}

size_t k_attn_state_size(int Hkv, int dh, int cap) { return 2 * (size_t)Hkv * cap * dh + 1; }

/* One sequence's step (see k_attn_step). */
static void attn_step_one(real *state, real *q, real *k, const real *v, real *o, real *sc, int s, int H, int Hkv,
                          int dh, int cap, double theta) {
    size_t ss = k_attn_state_size(Hkv, dh, cap), kv = (size_t)Hkv * cap * dh;
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh, half = dh / 2;
    real scale = attn_scale(dh);
    real *Kc = state + (size_t)s * ss, *Vc = Kc + kv, *cnt = Vc + kv;
    long p = (long)cnt[0];
    int slot = (int)(p % cap), n = p + 1 < cap ? (int)(p + 1) : cap;
    real *qs = q + (size_t)s * ldq, *ks = k + (size_t)s * ldk;
    for (int i = 0; i < (theta > 0 ? half : 0); i++) { /* rotate q (H heads) and k (Hkv heads) by position p */
        real c, sn;
        rope_cs(p, i, dh, theta, &c, &sn);
        for (int h = 0; h < H; h++) {
            real *a = qs + (size_t)h * dh, x0 = a[i], x1 = a[i + half];
            a[i] = x0 * c - x1 * sn, a[i + half] = x1 * c + x0 * sn;
        }
        for (int h = 0; h < Hkv; h++) {
            real *a = ks + (size_t)h * dh, x0 = a[i], x1 = a[i + half];
            a[i] = x0 * c - x1 * sn, a[i + half] = x1 * c + x0 * sn;
        }
    }
    for (int g = 0; g < Hkv; g++) {
        memcpy(Kc + ((size_t)g * cap + slot) * dh, ks + (size_t)g * dh, sizeof(real) * dh);
        memcpy(Vc + ((size_t)g * cap + slot) * dh, v + (size_t)s * ldk + (size_t)g * dh, sizeof(real) * dh);
    }
    /* slots [0, n) hold exactly the visible tokens (before wrap-around n = p+1 = filled slots) */
    for (int g = 0; g < Hkv; g++) {
        real *sg = sc + ((size_t)s * H + (size_t)g * G) * cap; /* G rows of n */
        eid_gemm(0, 1, G, n, dh, scale, qs + (size_t)g * G * dh, dh, Kc + (size_t)g * cap * dh, dh, 0, sg, n);
        for (int r = 0; r < G; r++) {
            real *row = sg + (size_t)r * n, mx = row[0], sum = 0;
#pragma omp simd reduction(max : mx)
            for (int j = 1; j < n; j++) mx = row[j] > mx ? row[j] : mx;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < n; j++) row[j] = rexp(row[j] - mx), sum += row[j];
            const real inv = 1 / sum;
#pragma omp simd
            for (int j = 0; j < n; j++) row[j] *= inv;
        }
        eid_gemm(0, 0, G, dh, n, 1, sg, n, Vc + (size_t)g * cap * dh, dh, 0, o + (size_t)s * ldq + (size_t)g * G * dh,
                 dh);
    }
    cnt[0] = (real)(p + 1);
}

void k_attn_step(real *state, real *q, real *k, const real *v, real *o, real *sc, int nseq, int H, int Hkv, int dh,
                 int cap, double theta) {
    /* One sequence: no parallel construct around it, so the BLAS products inside may use the
     * threads. (Inside even an inactive `parallel if(0)` region, OpenMP BLAS starts a nested team
     * of fresh threads while the pool's threads spin: 1000x slower on 2 cores, measured.) */
    if (nseq == 1) {
        attn_step_one(state, q, k, v, o, sc, 0, H, Hkv, dh, cap, theta);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int s = 0; s < nseq; s++) attn_step_one(state, q, k, v, o, sc, s, H, Hkv, dh, cap, theta);
}

/* Rotate the nh heads of row x by the angle of position p (computed like the step's, so the two
 * round alike). */
static void rope_row_at(real *x, int nh, int dh, long p, double theta) {
    int half = dh / 2;
    for (int i = 0; i < half; i++) {
        real c, sn;
        rope_cs(p, i, dh, theta, &c, &sn);
        for (int h = 0; h < nh; h++) {
            real *a = x + (size_t)h * dh, x0 = a[i], x1 = a[i + half];
            a[i] = x0 * c - x1 * sn, a[i + half] = x1 * c + x0 * sn;
        }
    }
}

/* Attention of one new query (head h, rotated qh) over the nvis newest ring entries (positions
 * p0−nvis … p0−1), merged into its output oh (normalised over the new keys, log-sum-exp *lse):
 * o = o_new·e^{lse_new − L} + o_old·e^{lse_old − L}, L = log(e^{lse_new} + e^{lse_old}). acc: dh scratch. */
static void merge_ring(const real *qh, const real *Kc, const real *Vc, long p0, int nvis, int cap, int dh, real scale,
                       real *oh, real *lse, real *acc) {
    real m = 0, l = 0;
    for (int d = 0; d < dh; d++) acc[d] = 0;
    for (long pq = p0 - nvis; pq < p0; pq++) {
        const real *kr = Kc + (size_t)(pq % cap) * dh, *vr = Vc + (size_t)(pq % cap) * dh;
        real s = 0;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < dh; d++) s += qh[d] * kr[d];
        s *= scale;
        if (l == 0 || s > m) { /* new running max: rescale what was accumulated */
            real f = l > 0 ? rexp(m - s) : 0;
            l *= f;
#pragma omp simd
            for (int d = 0; d < dh; d++) acc[d] *= f;
            m = s;
        }
        real p = rexp(s - m);
        l += p;
#pragma omp simd
        for (int d = 0; d < dh; d++) acc[d] += p * vr[d];
    }
    real lold = m + rlog(l), lnew = *lse, mx = lold > lnew ? lold : lnew;
    real L = mx + rlog(rexp(lnew - mx) + rexp(lold - mx)), fn = rexp(lnew - L), fo = rexp(lold - L) / l;
#pragma omp simd
    for (int d = 0; d < dh; d++) oh[d] = oh[d] * fn + acc[d] * fo;
    *lse = L;
}

void k_rope_at(real *x, int nh, int dh, long pos, double theta) { rope_row_at(x, nh, dh, pos, theta); }

void k_attn_prefill(real *state, real *q, real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                    int dh, int cap, double theta, int block, const uint8_t *flags, int *pos, int *lo, int *hi) {
    size_t ss = k_attn_state_size(Hkv, dh, cap), kv = (size_t)Hkv * cap * dh;
    int ldq = H * dh, ldk = Hkv * dh, G = H / Hkv;
    real scale = attn_scale(dh);
    int *base = eid_xmalloc(sizeof(int) * 2 * (size_t)(B ? B : 1)), *cont = base + B;
    for (int b = 0; b < B; b++) { /* position of the next token; tokens before the first reset continue */
        base[b] = (int)state[(size_t)b * ss + 2 * kv];
        cont[b] = T; /* the first reset (on a real token: SEG_START on a PAD is ignored) */
        for (int u = 0; u < T; u++) {
            size_t i = (size_t)b * T + u;
            if (!is_pad(flags, i) && is_seg(flags, i)) { cont[b] = u; break; }
        }
    }
    k_token_positions(flags, B, T, base, pos);
    k_attn_lo(flags, B, T, cap, lo);
    if (hi) k_attn_hi(flags, B, T, cap, hi);
    if (theta > 0) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < (size_t)B * T; i++) {
            rope_row_at(q + i * ldq, H, dh, pos[i], theta);
            rope_row_at(k + i * ldk, Hkv, dh, pos[i], theta);
        }
    }
    k_attn_fwd(q, k, v, o, lse, B, T, H, Hkv, dh, block, lo, hi, flags);
    /* the keys still in the ring, for queries of the segment the ring continues */
#pragma omp parallel
    {
        real *acc = eid_aligned_alloc(sizeof(real) * (size_t)dh);
#pragma omp for collapse(2) schedule(dynamic, 4)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                long p0 = base[b];
                int n_old = p0 < cap ? (int)p0 : cap, nvis = EID_MIN(n_old, cap - (int)(pos[i] - p0 + 1));
                if (t >= cont[b] || is_pad(flags, i) || nvis <= 0) continue;
                const real *Kc = state + (size_t)b * ss, *Vc = Kc + kv;
                for (int h = 0; h < H; h++)
                    merge_ring(q + i * ldq + (size_t)h * dh, Kc + (size_t)(h / G) * cap * dh,
                               Vc + (size_t)(h / G) * cap * dh, p0, nvis, cap, dh, scale, o + i * ldq + (size_t)h * dh,
                               lse + i * H + h, acc);
            }
        free(acc);
    }
    /* the ring after the prompt: cleared by the last reset (as the step loop's state is), then the
     * rotated keys and values of the real tokens since, at slot position % cap */
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        real *Kc = state + (size_t)b * ss, *Vc = Kc + kv, *cnt = Vc + kv;
        int from = 0;
        for (int t = T - 1; t >= 0; t--) {
            size_t i = (size_t)b * T + t;
            if (!is_pad(flags, i) && is_seg(flags, i)) { from = t; memset(Kc, 0, sizeof(real) * ss); break; }
        }
        for (int t = from; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (is_pad(flags, i)) continue;
            int slot = pos[i] % cap;
            for (int g = 0; g < Hkv; g++) {
                memcpy(Kc + ((size_t)g * cap + slot) * dh, k + i * ldk + (size_t)g * dh, sizeof(real) * dh);
                memcpy(Vc + ((size_t)g * cap + slot) * dh, v + i * ldk + (size_t)g * dh, sizeof(real) * dh);
            }
            cnt[0] = (real)(pos[i] + 1);
        }
    }
    free(base);
}
