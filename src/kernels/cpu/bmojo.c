/* bmojo.c — B'MOJO kernels (kernels/bmojo.h; docs/layers.md §6, §7; docs/bmojo.md), CPU.
 * The store's attention is a dense loop per query over its list (≤ M keys): the list is small and
 * shared by the queries of a chunk; the backward runs one task per (row, kv head), so every dk/dv
 * row is written by exactly one task (no atomics, deterministic). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/attention.h"
#include "kernels/bmojo.h"
#include "kernels/seq.h"

static inline int is_pad(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_PAD); }
static inline int is_seg(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_SEG_START); }
static inline real attn_scale(int dh) { return (real)(1.0 / sqrt((double)dh)); }

void k_bmojo_fading_hi(const int *lo_w, int n, int *hi) {
    for (int i = 0; i < n; i++) hi[i] = lo_w[i] - 1;
}

/* 1 / rms(x) of a row (0 for the zero row: u(0) = 0) */
static inline double inv_rms(const real *x, int C) {
    double s = 0;
    for (int c = 0; c < C; c++) s += (double)x[c] * x[c];
    return s > 0 ? 1 / sqrt(s / C) : 0;
}

void k_bmojo_score(const real *k0, int ldk, const real *p, int ldp, int n, int C, real *e) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *a = k0 + (size_t)i * ldk, *b = p + (size_t)i * ldp;
        double ra = inv_rms(a, C), rb = inv_rms(b, C), s = 0;
        for (int c = 0; c < C; c++) {
            double d = a[c] * ra - b[c] * rb;
            s += d * d;
        }
        e[i] = (real)(s / C);
    }
}

/* e = Σ (a − u)² / C with u = p·r, r = 1/rms(p): ∂e/∂u = −2(a − u)/C =: g; ∂u/∂p = r(I − u uᵀ/C). */
void k_bmojo_score_dp(const real *k0, int ldk, const real *p, int ldp, int n, int C, real scale, const uint8_t *skip,
                      real *dp) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const real *a = k0 + (size_t)i * ldk, *b = p + (size_t)i * ldp;
        real *d = dp + (size_t)i * C;
        double ra = inv_rms(a, C), rb = inv_rms(b, C), gu = 0;
        if ((skip && skip[i]) || rb == 0) {
            memset(d, 0, sizeof(real) * C);
            continue;
        }
        for (int c = 0; c < C; c++) gu += -2 * (a[c] * ra - b[c] * rb) / C * (b[c] * rb);
        for (int c = 0; c < C; c++) {
            double g = -2 * (a[c] * ra - b[c] * rb) / C;
            d[c] = (real)(scale * rb * (g - b[c] * rb * gu / C));
        }
    }
}

real k_bmojo_score_random(long pos) {
    uint64_t z = (uint64_t)pos + 0x9E3779B97F4A7C15ull; /* splitmix64 finaliser */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (real)((double)(z >> 11) / 9007199254740992.0);
}

void k_bmojo_score_random_rows(const int *pos, int n, real *e) {
    for (int i = 0; i < n; i++) e[i] = k_bmojo_score_random(pos[i]);
}

void k_bmojo_shift_prev(const real *F, const uint8_t *flags, int B, int T, int D, real *fstate, size_t ldst, real *out) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const real *prev = NULL; /* NULL: the zero row */
        size_t bt0 = (size_t)b * T;
        if (fstate) prev = fstate + (size_t)b * ldst;
        for (int t = 0; t < T; t++) {
            size_t i = bt0 + t;
            real *o = out + i * D;
            if (is_pad(flags, i)) { memset(o, 0, sizeof(real) * D); continue; }
            if (is_seg(flags, i)) prev = NULL;
            if (prev) memmove(o, prev, sizeof(real) * D);
            else memset(o, 0, sizeof(real) * D);
            prev = F + i * D;
        }
        if (fstate) {
            real *f = fstate + (size_t)b * ldst;
            if (!prev) memset(f, 0, sizeof(real) * D);
            else if (prev != f) memcpy(f, prev, sizeof(real) * D);
        }
    }
}

/* Append to sel the ke best of the chunk's tokens cidx[0..nc) (largest e, ties → later), in
 * position order. */
static int select_chunk(const real *e, size_t bt0, int *cidx, int nc, int ke, int *sel, int n) {
    int take = nc < ke ? nc : ke;
    for (int k = 0; k < take; k++) { /* move the k-th best to cidx[k] */
        int best = k;
        for (int c = k + 1; c < nc; c++) {
            real ec = e[bt0 + cidx[c]], eb = e[bt0 + cidx[best]];
            if (ec > eb || (ec == eb && cidx[c] > cidx[best])) best = c;
        }
        int t = cidx[k];
        cidx[k] = cidx[best], cidx[best] = t;
    }
    for (int a = 1; a < take; a++) /* position order */
        for (int b = a; b > 0 && cidx[b - 1] > cidx[b]; b--) {
            int t = cidx[b];
            cidx[b] = cidx[b - 1], cidx[b - 1] = t;
        }
    for (int k = 0; k < take; k++) sel[n++] = cidx[k];
    return n;
}

void k_bmojo_select(const real *e, const int *pos, const uint8_t *flags, int B, int T, int W, int ke, int M, int *sel,
                    int *mlo, int *mhi, int *scratch) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        size_t bt0 = (size_t)b * T;
        int *ends = scratch + 2 * bt0, *cidx = ends + T; /* ends[c]: list length after chunk c */
        int *list = sel + bt0, n = 0, seg0 = 0, cur = -1, nc = 0;
        for (int t = 0; t < T; t++) {
            size_t i = bt0 + t;
            if (is_pad(flags, i)) { mlo[i] = mhi[i] = 0; continue; }
            if (is_seg(flags, i)) seg0 = n, cur = -1, nc = 0; /* an unfinished chunk is never seen again */
            int c = pos[i] / W;
            if (c != cur) {
                if (cur >= 0) n = select_chunk(e, bt0, cidx, nc, ke, list, n), ends[cur] = n;
                cur = c, nc = 0;
            }
            cidx[nc++] = t;
            int hi = c >= 2 ? ends[c - 2] : seg0;
            mlo[i] = hi - M > seg0 ? hi - M : seg0, mhi[i] = hi;
        }
    }
}

void k_attn_fwd_list(const real *q, const real *k, const real *v, real *o, real *lse, int B, int T, int H, int Hkv,
                     int dh, const int *sel, const int *mlo, const int *mhi) {
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    real scale = attn_scale(dh);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)B * T; i++) {
        const int *list = sel + (i / T) * T;
        size_t bt0 = (i / T) * T;
        for (int h = 0; h < H; h++) {
            const real *qh = q + i * ldq + (size_t)h * dh;
            real *oh = o + i * ldq + (size_t)h * dh, m = 0, l = 0;
            memset(oh, 0, sizeof(real) * dh);
            for (int pass = 0; pass < 2; pass++) /* max, then the weighted sum */
                for (int mm = mlo[i]; mm < mhi[i]; mm++) {
                    size_t j = bt0 + list[mm];
                    const real *kj = k + j * ldk + (size_t)(h / G) * dh, *vj = v + j * ldk + (size_t)(h / G) * dh;
                    real s = 0;
                    for (int d = 0; d < dh; d++) s += qh[d] * kj[d];
                    s *= scale;
                    if (pass == 0) { m = mm == mlo[i] || s > m ? s : m; continue; }
                    real pr = rexp(s - m);
                    l += pr;
                    for (int d = 0; d < dh; d++) oh[d] += pr * vj[d];
                }
            if (l > 0)
                for (int d = 0; d < dh; d++) oh[d] /= l;
            lse[i * H + h] = l > 0 ? m + rlog(l) : K_LSE_NONE;
        }
    }
}

void k_attn_bwd_list(const real *q, const real *k, const real *v, const real *o, const real *lse, const real *dout,
                     real *dq, real *dk, real *dv, int B, int T, int H, int Hkv, int dh, const int *sel,
                     const int *mlo, const int *mhi) {
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    real scale = attn_scale(dh);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < Hkv; g++) {
            size_t bt0 = (size_t)b * T;
            const int *list = sel + bt0;
            for (int t = 0; t < T; t++) {
                size_t i = bt0 + t;
                for (int h = g * G; h < (g + 1) * G; h++) {
                    const real *qh = q + i * ldq + (size_t)h * dh, *doh = dout + i * ldq + (size_t)h * dh;
                    const real *oh = o + i * ldq + (size_t)h * dh;
                    real *dqh = dq + i * ldq + (size_t)h * dh, L = lse[i * H + h], Dv = 0;
                    if (mlo[i] >= mhi[i]) continue;
                    for (int d = 0; d < dh; d++) Dv += doh[d] * oh[d];
                    for (int mm = mlo[i]; mm < mhi[i]; mm++) {
                        size_t j = bt0 + list[mm];
                        const real *kj = k + j * ldk + (size_t)g * dh, *vj = v + j * ldk + (size_t)g * dh;
                        real *dkj = dk + j * ldk + (size_t)g * dh, *dvj = dv + j * ldk + (size_t)g * dh;
                        real s = 0, dp = 0;
                        for (int d = 0; d < dh; d++) s += qh[d] * kj[d], dp += doh[d] * vj[d];
                        real p = rexp(s * scale - L), ds = p * (dp - Dv) * scale;
                        for (int d = 0; d < dh; d++) {
                            dqh[d] += ds * kj[d];
                            dkj[d] += ds * qh[d];
                            dvj[d] += p * doh[d];
                        }
                    }
                }
            }
        }
}

/* ---- decode ---- */

typedef struct {
    size_t kr, vr, kf, vf, cnt;                  /* rings, counter */
    size_t mk, mv, mp, mn, mhead;                /* FIFO */
    size_t ck, cv, cp, ce, cn;                   /* candidates of the current chunk */
    size_t fk, fv, fp, fn;                       /* the previous chunk's selection */
    size_t fprev, total;
} Layout;

static Layout layout(const KBmojo *d) {
    Layout L;
    size_t KD = (size_t)d->Hkv * d->dh, o = 0;
    L.kr = o, o += KD * d->W;
    L.vr = o, o += KD * d->W;
    L.kf = o, o += KD * 2 * d->W;
    L.vf = o, o += KD * 2 * d->W;
    L.cnt = o, o += 1;
    if (d->M > 0) {
        L.mk = o, o += KD * d->M;
        L.mv = o, o += KD * d->M;
        L.mp = o, o += d->M;
        L.mn = o++, L.mhead = o++;
        L.ck = o, o += KD * d->ke;
        L.cv = o, o += KD * d->ke;
        L.cp = o, o += d->ke;
        L.ce = o, o += d->ke;
        L.cn = o++;
        L.fk = o, o += KD * d->ke;
        L.fv = o, o += KD * d->ke;
        L.fp = o, o += d->ke;
        L.fn = o++;
        L.fprev = o, o += d->D;
    } else {
        L.mk = L.mv = L.mp = L.mn = L.mhead = L.ck = L.cv = L.cp = L.ce = L.cn = L.fk = L.fv = L.fp = L.fn = L.fprev = o;
    }
    L.total = o;
    return L;
}

size_t k_bmojo_state_size(const KBmojo *d) { return layout(d).total; }
real *k_bmojo_state_fprev(real *st, const KBmojo *d) { return st + layout(d).fprev; }

int k_bmojo_state_store(const real *st, const KBmojo *d, int *pos) {
    if (d->M <= 0) return 0;
    Layout L = layout(d);
    int n = (int)st[L.mn], head = (int)st[L.mhead];
    for (int a = 0; a < n; a++) pos[a] = (int)st[L.mp + (size_t)((head - n + a + d->M) % d->M)];
    return n;
}

/* the store's chunk bookkeeping for a token at position p (before it competes) */
static void store_advance(real *st, const Layout *L, const KBmojo *d, long p) {
    size_t KD = (size_t)d->Hkv * d->dh;
    if (p == 0 || p % d->W) return;
    int fn = (int)st[L->fn], n = (int)st[L->mn], head = (int)st[L->mhead];
    for (int a = 0; a < fn; a++) { /* the selection of chunk c−2 enters the FIFO (it is in position order) */
        memcpy(st + L->mk + (size_t)head * KD, st + L->fk + (size_t)a * KD, sizeof(real) * KD);
        memcpy(st + L->mv + (size_t)head * KD, st + L->fv + (size_t)a * KD, sizeof(real) * KD);
        st[L->mp + head] = st[L->fp + a];
        head = (head + 1) % d->M, n = n < d->M ? n + 1 : n;
    }
    st[L->mn] = (real)n, st[L->mhead] = (real)head;
    int cn = (int)st[L->cn], ord[cn > 0 ? cn : 1];
    for (int a = 0; a < cn; a++) ord[a] = a;
    for (int a = 1; a < cn; a++) /* candidates by position */
        for (int b = a; b > 0 && st[L->cp + ord[b - 1]] > st[L->cp + ord[b]]; b--) {
            int t = ord[b];
            ord[b] = ord[b - 1], ord[b - 1] = t;
        }
    for (int a = 0; a < cn; a++) {
        memcpy(st + L->fk + (size_t)a * KD, st + L->ck + (size_t)ord[a] * KD, sizeof(real) * KD);
        memcpy(st + L->fv + (size_t)a * KD, st + L->cv + (size_t)ord[a] * KD, sizeof(real) * KD);
        st[L->fp + a] = st[L->cp + ord[a]];
    }
    st[L->fn] = (real)cn, st[L->cn] = 0;
}

/* (k, v, p, e) joins the ke best of the chunk: replaces the worst (smallest e, earliest among
 * equals) when e ≥ its score (a later token wins a tie), as k_bmojo_select ranks. */
static void store_compete(real *st, const Layout *L, const KBmojo *d, const real *k, const real *v, long p, real e) {
    size_t KD = (size_t)d->Hkv * d->dh;
    int cn = (int)st[L->cn], slot = cn;
    if (cn >= d->ke) {
        slot = 0;
        for (int a = 1; a < cn; a++) {
            real ea = st[L->ce + a], ew = st[L->ce + slot];
            if (ea < ew || (ea == ew && st[L->cp + a] < st[L->cp + slot])) slot = a;
        }
        if (!(e >= st[L->ce + slot])) return;
    } else st[L->cn] = (real)(cn + 1);
    memcpy(st + L->ck + (size_t)slot * KD, k, sizeof(real) * KD);
    memcpy(st + L->cv + (size_t)slot * KD, v, sizeof(real) * KD);
    st[L->cp + slot] = (real)p, st[L->ce + slot] = e;
}

void k_bmojo_token(real *st, const KBmojo *d, real *q, real *qf, real *k, const real *v, real *kf, const real *vf,
                   real e, real *o, real *sc) {
    Layout L = layout(d);
    if (d->random) e = k_bmojo_score_random((long)st[L.cnt]);
    int H = d->H, Hkv = d->Hkv, dh = d->dh, W = d->W, G = H / Hkv;
    size_t KD = (size_t)Hkv * dh;
    long p = (long)st[L.cnt];
    real scale = attn_scale(dh);
    if (d->theta > 0) {
        k_rope_at(q, H, dh, p, d->theta);
        if (qf != q) k_rope_at(qf, H, dh, p, d->theta);
        k_rope_at(k, Hkv, dh, p, d->theta);
        k_rope_at(kf, Hkv, dh, p, d->theta);
    }
    if (d->M > 0) store_advance(st, &L, d, p), store_compete(st, &L, d, k, v, p, e);
    for (int g = 0; g < Hkv; g++) {
        memcpy(st + L.kr + ((size_t)g * W + p % W) * dh, k + (size_t)g * dh, sizeof(real) * dh);
        memcpy(st + L.vr + ((size_t)g * W + p % W) * dh, v + (size_t)g * dh, sizeof(real) * dh);
        memcpy(st + L.kf + ((size_t)g * 2 * W + p % (2 * W)) * dh, kf + (size_t)g * dh, sizeof(real) * dh);
        memcpy(st + L.vf + ((size_t)g * 2 * W + p % (2 * W)) * dh, vf + (size_t)g * dh, sizeof(real) * dh);
    }
    long r0 = p - W + 1 > 0 ? p - W + 1 : 0, f0 = p - 2 * W + 1 > 0 ? p - 2 * W + 1 : 0, f1 = p - W;
    int nm = d->M > 0 ? (int)st[L.mn] : 0;
    for (int h = 0; h < H; h++) {
        int g = h / G, n = 0;
        const real *qh = q + (size_t)h * dh, *qfh = qf + (size_t)h * dh;
        /* scores: raw window, fading tokens, store; then one softmax */
        for (long j = r0; j <= p; j++) {
            const real *kr = st + L.kr + ((size_t)g * W + j % W) * dh;
            real s = 0;
            for (int c = 0; c < dh; c++) s += qh[c] * kr[c];
            sc[n++] = s * scale;
        }
        for (long j = f0; j <= f1; j++) {
            const real *kr = st + L.kf + ((size_t)g * 2 * W + j % (2 * W)) * dh;
            real s = 0;
            for (int c = 0; c < dh; c++) s += qfh[c] * kr[c];
            sc[n++] = s * scale;
        }
        for (int a = 0; a < nm; a++) {
            const real *kr = st + L.mk + (size_t)a * KD + (size_t)g * dh;
            real s = 0;
            for (int c = 0; c < dh; c++) s += qh[c] * kr[c];
            sc[n++] = s * scale;
        }
        real mx = sc[0], sum = 0;
        for (int a = 1; a < n; a++) mx = sc[a] > mx ? sc[a] : mx;
        for (int a = 0; a < n; a++) sc[a] = rexp(sc[a] - mx), sum += sc[a];
        real *oh = o + (size_t)h * dh;
        memset(oh, 0, sizeof(real) * dh);
        n = 0;
        for (long j = r0; j <= p; j++) {
            const real *vr = st + L.vr + ((size_t)g * W + j % W) * dh, w = sc[n++] / sum;
            for (int c = 0; c < dh; c++) oh[c] += w * vr[c];
        }
        for (long j = f0; j <= f1; j++) {
            const real *vr = st + L.vf + ((size_t)g * 2 * W + j % (2 * W)) * dh, w = sc[n++] / sum;
            for (int c = 0; c < dh; c++) oh[c] += w * vr[c];
        }
        for (int a = 0; a < nm; a++) {
            const real *vr = st + L.mv + (size_t)a * KD + (size_t)g * dh, w = sc[n++] / sum;
            for (int c = 0; c < dh; c++) oh[c] += w * vr[c];
        }
    }
    st[L.cnt] = (real)(p + 1);
}

void k_bmojo_tokens(real *state, size_t ss, size_t off, const KBmojo *d, int B, int T, const uint8_t *flags, real *q,
                    real *qf, real *k, const real *v, real *kf, const real *vf, const real *e, real *o) {
    Layout L = layout(d);
    size_t HD = (size_t)d->H * d->dh, KD = (size_t)d->Hkv * d->dh;
#pragma omp parallel if (B > 1)
    {
        real *sc = eid_aligned_alloc(sizeof(real) * (2 * (size_t)d->W + d->M + 1));
#pragma omp for schedule(static)
        for (int b = 0; b < B; b++) {
            real *st = state + (size_t)b * ss + off;
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                if (is_pad(flags, i)) { memset(o + i * HD, 0, sizeof(real) * HD); continue; }
                if (is_seg(flags, i)) memset(st, 0, sizeof(real) * L.fprev); /* F_{t−1} sits last */
                k_bmojo_token(st, d, q + i * HD, qf + i * HD, k + i * KD, v + i * KD, kf + i * KD, vf + i * KD,
                              e ? e[i] : 0, o + i * HD, sc);
            }
        }
        free(sc);
    }
}
