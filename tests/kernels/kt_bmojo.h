/* kt_bmojo.h — the B'MOJO kernels (kernels/bmojo.h, and the range / list / merge attention and
 * k_rope_at of kernels/attention.h; docs/layers.md §6, §7, §14; docs/bmojo.md) against naive fp64
 * references written in this file from the header comments and the docs:
 *  - k_rope_at vs the rotate-half formula (angle pos·θ^(−2i/dh) in double), == k_rope_apply's row;
 *  - k_bmojo_fading_hi with k_attn_lo: the fading range holds exactly the real tokens W … 2W−1 back;
 *  - k_attn_fwd_range / k_attn_bwd_range on random nondecreasing ranges (hi < i, empty ranges, PAD,
 *    GQA) vs a dense softmax over [lo, hi] minus PAD (empty: o = 0, lse = K_LSE_NONE) and its exact
 *    adjoint;
 *  - k_attn_lse_merge vs one softmax over the union of two key sets (either or both empty);
 *  - k_attn_fwd_list on random lists and ranges vs a dense softmax over the listed keys;
 *  - the layer's three passes (k_attn_fwd raw, k_attn_fwd_range fading, k_attn_fwd_list store, merged)
 *    vs ONE dense softmax over window ∪ fading ∪ store (store = a naive top-k_e per chunk), and
 *    k_attn_bwd / k_attn_bwd_range / k_attn_bwd_list (which accumulates) each vs its set's part of
 *    that softmax's exact adjoint; the adjoint itself vs finite differences of Σ dout·o;
 *  - k_bmojo_score vs ‖u(a) − u(p)‖²/C (u(0) = 0, strides), k_bmojo_score_dp vs finite differences
 *    (PAD rows 0), k_bmojo_score_random(_rows) vs splitmix64 (and its published first output);
 *  - k_bmojo_shift_prev vs a walk back to the previous real token (segments, PAD, decode fstate);
 *  - k_bmojo_select vs a naive top-k_e per chunk of W real tokens (ties → later) and "the last M of
 *    chunks 0 … c−2 of the segment";
 *  - decode: k_bmojo_state_size vs the documented sum (docs/bmojo.md), k_bmojo_state_fprev at its end;
 *    k_bmojo_tokens vs the naive union softmax at every token (RoPE at true positions, tied and
 *    untied, segments, PAD, GQA, the random score), its rings and counter as documented, the FIFO
 *    (k_bmojo_state_store) vs the naive store; == a loop of k_bmojo_token, == the one-token step
 *    (B = nseq, T = 1) token by token; F_{t−1} and the SSM's part of the state never written. */
#include "kernels/attention.h"
#include "kernels/bmojo.h"

/* max |a − b| / max(floor, max |b|), b in double (NaN-propagating) */
static double kb_err(const real *a, const double *b, size_t n, double floor) {
    double num = 0, den = floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num)) num = d;
        den = t_worst(den, fabs(b[i]));
    }
    return num / den;
}
static double *kb_dalloc(size_t n) { return eid_xcalloc(n ? n : 1, sizeof(double)); }

/* kt_flags, and some PAD tokens also carry SEG_START (to be ignored); cont: a row may go on from a
 * decode state (no SEG_START on its first token) or begin with PAD. */
static uint8_t *kb_flags(Rng *r, int B, int T, double p_seg, double p_pad, int cont) {
    uint8_t *f = kt_flags(r, B, T, p_seg, p_pad);
    for (size_t i = 0; i < (size_t)B * T; i++)
        if ((f[i] & FLAG_PAD) && rng_uniform(r) < 0.5) f[i] |= FLAG_SEG_START;
    for (int b = 0; cont && b < B; b++) {
        if (rng_uniform(r) < 0.6) f[(size_t)b * T] &= (uint8_t)~FLAG_SEG_START;
        if (rng_uniform(r) < 0.3) f[(size_t)b * T] = FLAG_PAD;
    }
    return f;
}
static int kb_pad(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_PAD); }

/* pos = real tokens before t in its segment (−1 at PAD); seg = the row-local index of the real token
 * that started the segment (−1: the row start). A real token with SEG_START starts a segment. */
static void kb_pos(const uint8_t *f, int B, int T, int *pos, int *seg) {
    for (int b = 0; b < B; b++) {
        int p = 0, s = -1;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (kb_pad(f, i)) { pos[i] = -1, seg[i] = -2; continue; }
            if (f && (f[i] & FLAG_SEG_START)) p = 0, s = t;
            pos[i] = p++, seg[i] = s;
        }
    }
}

/* The store (docs/layers.md §7.2), one row (row-local arrays): sel[t] = 1 when real token t is among
 * the ke of largest (e, t) in its chunk (same segment, same pos / W). */
static void kb_selected(const real *e, const int *pos, const int *seg, int T, int W, int ke, uint8_t *sel) {
    for (int t = 0; t < T; t++) {
        sel[t] = 0;
        if (pos[t] < 0) continue;
        int above = 0;
        for (int u = 0; u < T; u++)
            if (pos[u] >= 0 && seg[u] == seg[t] && pos[u] / W == pos[t] / W && (e[u] > e[t] || (e[u] == e[t] && u > t)))
                above++;
        sel[t] = above < ke;
    }
}
/* the stored keys query t sees: the last M selected of chunks 0 … c−2 of its segment, ascending */
static int kb_store(const uint8_t *sel, const int *pos, const int *seg, int T, int t, int W, int M, int *out) {
    int n = 0;
    if (pos[t] < 0) return 0;
    for (int j = 0; j < T; j++)
        if (sel[j] && seg[j] == seg[t] && pos[j] / W <= pos[t] / W - 2) out[n++] = j;
    if (n > M) memmove(out, out + (n - M), sizeof(int) * M), n = M;
    return n;
}

/* One softmax entry: query, key, value (dh each) and where the adjoint goes (NULL: nowhere). */
typedef struct {
    const real *q, *k, *v;
    double *dq, *dk, *dv;
} KbEnt;
/* One softmax over n entries (score q·k/√dh), in double: o [dh]; returns lse (n = 0: o = 0 and
 * K_LSE_NONE). With dout, adds the exact adjoint of Σ dout·o to each entry's dq, dk, dv. p: n scratch. */
static double kb_softmax(const KbEnt *en, int n, int dh, const real *dout, double *o, double *p) {
    double sc = 1 / sqrt((double)dh), mx = -INFINITY, sum = 0;
    for (int d = 0; d < dh; d++) o[d] = 0;
    if (n == 0) return K_LSE_NONE;
    for (int a = 0; a < n; a++) {
        double s = 0;
        for (int d = 0; d < dh; d++) s += (double)en[a].q[d] * en[a].k[d];
        p[a] = s * sc, mx = t_worst(mx, s * sc);
    }
    for (int a = 0; a < n; a++) p[a] = exp(p[a] - mx), sum += p[a];
    for (int a = 0; a < n; a++) {
        p[a] /= sum;
        for (int d = 0; d < dh; d++) o[d] += p[a] * en[a].v[d];
    }
    if (dout) {
        double Dv = 0;
        for (int d = 0; d < dh; d++) Dv += (double)dout[d] * o[d];
        for (int a = 0; a < n; a++) {
            double dp = 0;
            for (int d = 0; d < dh; d++) dp += (double)dout[d] * en[a].v[d];
            double ds = p[a] * (dp - Dv);
            for (int d = 0; d < dh; d++) {
                if (en[a].dq) en[a].dq[d] += sc * ds * en[a].k[d];
                if (en[a].dk) en[a].dk[d] += sc * ds * en[a].q[d];
                if (en[a].dv) en[a].dv[d] += p[a] * dout[d];
            }
        }
    }
    return mx + log(sum);
}

/* naive rotate-half RoPE of nh heads by position pos (theta <= 0: a copy, as k_bmojo_token's no-RoPE) */
static void kb_rope(const real *x, real *y, int nh, int dh, long pos, double theta) {
    int half = dh / 2;
    memcpy(y, x, sizeof(real) * nh * dh);
    for (int h = 0; theta > 0 && h < nh; h++)
        for (int i = 0; i < half; i++) {
            double phi = (double)pos * pow(theta, -2.0 * i / dh), x0 = x[h * dh + i], x1 = x[h * dh + i + half];
            y[h * dh + i] = (real)(x0 * cos(phi) - x1 * sin(phi));
            y[h * dh + i + half] = (real)(x1 * cos(phi) + x0 * sin(phi));
        }
}

/* ---- k_rope_at ---- */
static void kb_rope_at_case(Rng *r, int nh, int dh, long pos, double theta) {
    size_t n = (size_t)nh * dh;
    real *x = kt_alloc(n), *y = kt_alloc(n), *ref = kt_alloc(n);
    kt_fill(x, n, r, 1);
    memcpy(y, x, sizeof(real) * n);
    k_rope_at(y, nh, dh, pos, theta);
    kb_rope(x, ref, nh, dh, pos, theta);
    CHECK(t_rel_err(y, ref, n, 1) < 1e-13, "k_rope_at nh=%d dh=%d pos=%ld theta=%g: vs rotate-half (%.3g)", nh, dh,
          pos, theta, t_rel_err(y, ref, n, 1));
    if (pos < 200) { /* the same reals as the training table's row pos, and k_rope_apply(inverse) undoes it */
        int T = (int)pos + 1, half = dh / 2, p = (int)pos;
        real *cs = kt_alloc((size_t)T * half), *sn = kt_alloc((size_t)T * half), *z = kt_alloc(n);
        k_rope_table(T, dh, theta, cs, sn);
        memcpy(z, x, sizeof(real) * n);
        k_rope_apply(z, (int)n, 1, nh, dh, &p, cs, sn, 0);
        CHECK(memcmp(z, y, sizeof(real) * n) == 0, "k_rope_at pos=%ld: != k_rope_apply at the table's row", pos);
        k_rope_apply(z, (int)n, 1, nh, dh, &p, cs, sn, 1);
        CHECK(t_rel_err(z, x, n, 1) < 1e-14, "k_rope_at pos=%ld: the inverse rotation does not undo it", pos);
        free(cs), free(sn), free(z);
    }
    free(x), free(y), free(ref);
}

/* ---- k_bmojo_fading_hi with k_attn_lo: the fading range of a real query is exactly the real tokens
 * of its segment W … 2W−1 back (docs/layers.md §6.1, §14.2) ---- */
static void kb_fading_case(Rng *r, int B, int T, int W) {
    uint8_t *f = kb_flags(r, B, T, 0.06, 0.2, 0);
    size_t M = (size_t)B * T;
    int *lo1 = eid_xmalloc(sizeof(int) * M), *lo2 = eid_xmalloc(sizeof(int) * M), *hi = eid_xmalloc(sizeof(int) * M);
    int *pos = eid_xmalloc(sizeof(int) * M), *seg = eid_xmalloc(sizeof(int) * M), bad = 0, seen = 0;
    kb_pos(f, B, T, pos, seg);
    k_attn_lo(f, B, T, W, lo1);
    k_attn_lo(f, B, T, 2 * W, lo2);
    k_bmojo_fading_hi(lo1, (int)M, hi);
    for (size_t i = 0; i < M; i++) bad += hi[i] != lo1[i] - 1;
    CHECK(bad == 0, "k_bmojo_fading_hi W=%d: hi != lo_w - 1 at %d tokens", W, bad);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (pos[i] < 0) continue;
            for (int j = 0; j < T; j++) {
                size_t jj = (size_t)b * T + j;
                int in = pos[jj] >= 0 && j >= lo2[i] && j <= hi[i];
                int want =
                    pos[jj] >= 0 && seg[jj] == seg[i] && j <= t && pos[i] - pos[jj] >= W && pos[i] - pos[jj] < 2 * W;
                bad += in != want, seen += want;
            }
        }
    CHECK(bad == 0 && seen > 0, "fading range W=%d: %d keys wrong (of %d fading keys)", W, bad, seen);
    free(f), free(lo1), free(lo2), free(hi), free(pos), free(seg);
}

/* ---- k_attn_fwd_range / k_attn_bwd_range alone, on random nondecreasing ranges with hi < i ---- */
static void kb_range_case(Rng *r, int B, int T, int H, int Hkv, int dh, int block, int use_flags) {
    size_t nq = (size_t)B * T * H * dh, nk = (size_t)B * T * Hkv * dh, M = (size_t)B * T;
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    real *q = kt_alloc(nq), *k = kt_alloc(nk), *v = kt_alloc(nk), *o = kt_alloc(nq), *lse = kt_alloc(M * H);
    real *dout = kt_alloc(nq), *dq = kt_alloc(nq), *dk = kt_alloc(nk), *dv = kt_alloc(nk), *dvec = kt_alloc(M * H);
    double *on = kb_dalloc(nq), *lsen = kb_dalloc(M * H), *dqn = kb_dalloc(nq), *dkn = kb_dalloc(nk),
           *dvn = kb_dalloc(nk);
    double *p = kb_dalloc((size_t)T);
    int *lo = eid_xmalloc(sizeof(int) * M), *hi = eid_xmalloc(sizeof(int) * M);
    KbEnt *en = eid_xmalloc(sizeof(KbEnt) * (size_t)T);
    uint8_t *f = use_flags ? kb_flags(r, B, T, 0.1, 0.25, 1) : NULL;
    kt_fill(q, nq, r, 1), kt_fill(k, nk, r, 1), kt_fill(v, nk, r, 1), kt_fill(dout, nq, r, 1);
    for (int b = 0; b < B; b++) { /* lo, hi nondecreasing, hi[t] ≤ t − 1, often lo > hi (empty) */
        int l = 0, h = -1;
        for (int t = 0; t < T; t++) {
            int a = t - 1 - (int)rng_below(r, 9), c = (int)rng_below(r, 6); /* (no calls inside EID_MAX) */
            l = EID_MAX(l, EID_MAX(a, 0));
            h = EID_MAX(h, EID_MIN(t - 1, l - 1 + c));
            lo[(size_t)b * T + t] = l, hi[(size_t)b * T + t] = h;
        }
    }
    int empty = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++) {
                size_t i = (size_t)b * T + t;
                int n = 0;
                for (int j = lo[i]; !kb_pad(f, i) && j <= hi[i]; j++) {
                    size_t jj = (size_t)b * T + j, kj = jj * ldk + (size_t)(h / G) * dh;
                    if (kb_pad(f, jj)) continue;
                    en[n++] = (KbEnt){q + i * ldq + (size_t)h * dh, k + kj, v + kj, dqn + i * ldq + (size_t)h * dh,
                                      dkn + kj, dvn + kj};
                }
                lsen[i * H + h] =
                    kb_softmax(en, n, dh, dout + i * ldq + (size_t)h * dh, on + i * ldq + (size_t)h * dh, p);
                empty += n == 0;
            }
    char tag[128];
    snprintf(tag, sizeof tag, "attn_range B=%d T=%d H=%d Hkv=%d dh=%d block=%d%s", B, T, H, Hkv, dh, block,
             f ? " flags" : "");
    k_attn_fwd_range(q, k, v, o, lse, B, T, H, Hkv, dh, block, lo, hi, f);
    double el = 0;
    int bad = 0;
    for (size_t i = 0; i < M * H; i++) {
        if (lsen[i] == K_LSE_NONE) bad += lse[i] != K_LSE_NONE;
        else el = t_worst(el, fabs(lse[i] - lsen[i]));
    }
    CHECK(kb_err(o, on, nq, 1e-3) < 1e-12, "%s: o vs dense softmax (%.3g)", tag, kb_err(o, on, nq, 1e-3));
    CHECK(bad == 0 && el < 1e-12 && empty > 0, "%s: lse vs dense (%.3g), %d of %d empty rows not K_LSE_NONE", tag,
          el, bad, empty);
    /* backward under its own softmax (the merged lse is checked in kb_union_case) */
    kt_fill(dq, nq, r, 1), kt_fill(dk, nk, r, 1), kt_fill(dv, nk, r, 1); /* overwritten */
    k_attn_bwd_range(q, k, v, o, lse, dout, dq, dk, dv, dvec, B, T, H, Hkv, dh, block, lo, hi, f);
    CHECK(kb_err(dq, dqn, nq, 1e-3) < 1e-11, "%s: dq vs exact adjoint (%.3g)", tag, kb_err(dq, dqn, nq, 1e-3));
    CHECK(kb_err(dk, dkn, nk, 1e-3) < 1e-11, "%s: dk vs exact adjoint (%.3g)", tag, kb_err(dk, dkn, nk, 1e-3));
    CHECK(kb_err(dv, dvn, nk, 1e-3) < 1e-11, "%s: dv vs exact adjoint (%.3g)", tag, kb_err(dv, dvn, nk, 1e-3));
    free(q), free(k), free(v), free(o), free(lse), free(dout), free(dq), free(dk), free(dv), free(dvec);
    free(on), free(lsen), free(dqn), free(dkn), free(dvn), free(p), free(lo), free(hi), free(en), free(f);
}

/* ---- k_attn_lse_merge vs one softmax over the union of two key sets ---- */
static void kb_merge_case(Rng *r, int MH, int dh, int nmax) {
    real *q = kt_alloc((size_t)MH * dh), *kv = kt_alloc((size_t)MH * 4 * nmax * dh);
    real *oa = kt_alloc((size_t)MH * dh), *ob = kt_alloc((size_t)MH * dh), *la = kt_alloc(MH), *lb = kt_alloc(MH);
    double *ou = kb_dalloc((size_t)MH * dh), *lu = kb_dalloc(MH), *t = kb_dalloc(dh), *p = kb_dalloc(2 * (size_t)nmax);
    KbEnt en[64];
    int cases[4] = {0};
    kt_fill(q, (size_t)MH * dh, r, 1), kt_fill(kv, (size_t)MH * 4 * nmax * dh, r, 1);
    for (int i = 0; i < MH; i++) {
        real *qi = q + (size_t)i * dh, *ki = kv + (size_t)i * 4 * nmax * dh;
        if (i % 3 == 0)
            for (int d = 0; d < dh; d++) qi[d] *= 12; /* far-apart scores: the merge must not overflow */
        int na = (int)rng_below(r, (uint64_t)nmax + 1), nb = (int)rng_below(r, (uint64_t)nmax + 1);
        if (i < 4) na = i & 1 ? nmax : 0, nb = i & 2 ? nmax : 0; /* every empty / nonempty pair */
        cases[(na > 0) + 2 * (nb > 0)]++;
        for (int a = 0; a < na + nb; a++)
            en[a] = (KbEnt){qi, ki + (size_t)a * 2 * dh, ki + (size_t)(a * 2 + 1) * dh, NULL, NULL, NULL};
        la[i] = (real)kb_softmax(en, na, dh, NULL, t, p);
        for (int d = 0; d < dh; d++) oa[(size_t)i * dh + d] = (real)t[d];
        lb[i] = (real)kb_softmax(en + na, nb, dh, NULL, t, p);
        for (int d = 0; d < dh; d++) ob[(size_t)i * dh + d] = (real)t[d];
        lu[i] = kb_softmax(en, na + nb, dh, NULL, ou + (size_t)i * dh, p);
    }
    k_attn_lse_merge(oa, la, ob, lb, (size_t)MH, dh);
    double el = 0;
    int bad = 0;
    for (int i = 0; i < MH; i++) {
        if (lu[i] == K_LSE_NONE) bad += la[i] != K_LSE_NONE;
        else el = t_worst(el, fabs(la[i] - lu[i]) / fmax(1, fabs(lu[i])));
    }
    CHECK(kb_err(oa, ou, (size_t)MH * dh, 1e-3) < 1e-13 && el < 1e-14 && bad == 0,
          "k_attn_lse_merge MH=%d dh=%d: vs one softmax over the union (o %.3g, lse %.3g, %d both-empty rows wrong)",
          MH, dh, kb_err(oa, ou, (size_t)MH * dh, 1e-3), el, bad);
    CHECK(cases[0] && cases[1] && cases[2] && cases[3], "k_attn_lse_merge: not every empty/nonempty pair was tried");
    free(q), free(kv), free(oa), free(ob), free(la), free(lb), free(ou), free(lu), free(t), free(p);
}

/* ---- k_attn_fwd_list on random lists and ranges ---- */
static void kb_list_case(Rng *r, int B, int T, int H, int Hkv, int dh) {
    size_t nq = (size_t)B * T * H * dh, nk = (size_t)B * T * Hkv * dh, M = (size_t)B * T;
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh, empty = 0;
    real *q = kt_alloc(nq), *k = kt_alloc(nk), *v = kt_alloc(nk), *o = kt_alloc(nq), *lse = kt_alloc(M * H);
    double *on = kb_dalloc(nq), *lsen = kb_dalloc(M * H), *p = kb_dalloc((size_t)T);
    int *sel = eid_xmalloc(sizeof(int) * M), *mlo = eid_xmalloc(sizeof(int) * M), *mhi = eid_xmalloc(sizeof(int) * M);
    KbEnt *en = eid_xmalloc(sizeof(KbEnt) * (size_t)T);
    kt_fill(q, nq, r, 1), kt_fill(k, nk, r, 1), kt_fill(v, nk, r, 1);
    for (int b = 0; b < B; b++) {
        int *s = sel + (size_t)b * T;
        for (int t = 0; t < T; t++) s[t] = t;
        for (int t = T - 1; t > 0; t--) { /* a random permutation of the row */
            int u = (int)rng_below(r, (uint64_t)t + 1), x = s[t];
            s[t] = s[u], s[u] = x;
        }
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            int len = (int)rng_below(r, 7);
            mlo[i] = (int)rng_below(r, (uint64_t)T), mhi[i] = EID_MIN(T, mlo[i] + len);
            if (rng_uniform(r) < 0.15) mhi[i] = mlo[i];
        }
    }
    for (size_t i = 0; i < M; i++)
        for (int h = 0; h < H; h++) {
            int n = 0;
            for (int m = mlo[i]; m < mhi[i]; m++) {
                size_t kj = ((i / T) * T + sel[(i / T) * T + m]) * ldk + (size_t)(h / G) * dh;
                en[n++] = (KbEnt){q + i * ldq + (size_t)h * dh, k + kj, v + kj, NULL, NULL, NULL};
            }
            lsen[i * H + h] = kb_softmax(en, n, dh, NULL, on + i * ldq + (size_t)h * dh, p);
            empty += n == 0;
        }
    k_attn_fwd_list(q, k, v, o, lse, B, T, H, Hkv, dh, sel, mlo, mhi);
    double el = 0;
    int bad = 0;
    for (size_t i = 0; i < M * H; i++) {
        if (lsen[i] == K_LSE_NONE) bad += lse[i] != K_LSE_NONE;
        else el = t_worst(el, fabs(lse[i] - lsen[i]));
    }
    CHECK(kb_err(o, on, nq, 1e-3) < 1e-12 && el < 1e-12 && bad == 0 && empty > 0,
          "k_attn_fwd_list B=%d T=%d H=%d Hkv=%d dh=%d: vs dense softmax over the list (o %.3g, lse %.3g, %d empty "
          "wrong)",
          B, T, H, Hkv, dh, kb_err(o, on, nq, 1e-3), el, bad);
    free(q), free(k), free(v), free(o), free(lse), free(on), free(lsen), free(p), free(sel), free(mlo), free(mhi),
        free(en);
}

/* ---- the layer's three passes merged vs one softmax over window ∪ fading ∪ store, and the three
 * backward kernels vs that softmax's exact adjoint split by set (docs/layers.md §6.3, §7.3, §14.2) ---- */
typedef struct {
    int B, T, H, Hkv, dh, block;
    const real *q, *qf, *k, *v, *kf, *vf, *dout;
    const int *lo1, *lo2, *hi, *sel, *mlo, *mhi;
    const uint8_t *f;
    real *o, *lse, *o2, *lse2;
} KbUnion;
static void kb_union_fwd(KbUnion *u) {
    int B = u->B, T = u->T, H = u->H, Hkv = u->Hkv, dh = u->dh;
    size_t MH = (size_t)B * T * H;
    k_attn_fwd(u->q, u->k, u->v, u->o, u->lse, B, T, H, Hkv, dh, u->block, u->lo1, NULL, u->f);
    k_attn_fwd_range(u->qf, u->kf, u->vf, u->o2, u->lse2, B, T, H, Hkv, dh, u->block, u->lo2, u->hi, u->f);
    k_attn_lse_merge(u->o, u->lse, u->o2, u->lse2, MH, dh);
    if (u->sel) {
        k_attn_fwd_list(u->q, u->k, u->v, u->o2, u->lse2, B, T, H, Hkv, dh, u->sel, u->mlo, u->mhi);
        k_attn_lse_merge(u->o, u->lse, u->o2, u->lse2, MH, dh);
    }
}
static double kb_union_loss(void *ctx) { /* Σ dout·o of the merged forward */
    KbUnion *u = ctx;
    kb_union_fwd(u);
    double L = 0;
    for (size_t i = 0; i < (size_t)u->B * u->T * u->H * u->dh; i++) L += (double)u->dout[i] * u->o[i];
    return L;
}

static void kb_union_case(Rng *r, int B, int T, int H, int Hkv, int dh, int W, int ke, int M, int block, int tied,
                          int fd) {
    size_t nq = (size_t)B * T * H * dh, nk = (size_t)B * T * Hkv * dh, MT = (size_t)B * T;
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    real *q = kt_alloc(nq), *qf = tied ? q : kt_alloc(nq), *k = kt_alloc(nk), *v = kt_alloc(nk), *kf = kt_alloc(nk);
    real *vf = kt_alloc(nk), *dout = kt_alloc(nq), *o = kt_alloc(nq), *lse = kt_alloc(MT * H), *o2 = kt_alloc(nq);
    real *lse2 = kt_alloc(MT * H), *e = kt_alloc(MT), *dvec = kt_alloc(MT * H);
    real *dq = kt_alloc(nq), *dk = kt_alloc(nk), *dv = kt_alloc(nk), *dqf = kt_alloc(nq), *dkf = kt_alloc(nk),
         *dvf = kt_alloc(nk);
    double *on = kb_dalloc(nq), *p = kb_dalloc(3 * (size_t)T), *g[3][3], *acc = kb_dalloc(nq + 2 * nk);
    for (int s = 0; s < 3; s++) g[s][0] = kb_dalloc(nq), g[s][1] = kb_dalloc(nk), g[s][2] = kb_dalloc(nk);
    int *pos = eid_xmalloc(sizeof(int) * MT), *seg = eid_xmalloc(sizeof(int) * MT),
        *ipos = eid_xmalloc(sizeof(int) * MT);
    int *lo1 = eid_xmalloc(sizeof(int) * MT), *lo2 = eid_xmalloc(sizeof(int) * MT), *hi = eid_xmalloc(sizeof(int) * MT);
    int *sel = eid_xmalloc(sizeof(int) * MT), *mlo = eid_xmalloc(sizeof(int) * MT),
        *mhi = eid_xmalloc(sizeof(int) * MT);
    int *scr = eid_xmalloc(sizeof(int) * 2 * MT), *st = eid_xmalloc(sizeof(int) * (size_t)T);
    uint8_t *f = kb_flags(r, B, T, 0.04, 0.12, 0), *selected = eid_xmalloc((size_t)T);
    KbEnt *en = eid_xmalloc(sizeof(KbEnt) * 3 * (size_t)T);
    kt_fill(q, nq, r, 1), kt_fill(k, nk, r, 1), kt_fill(v, nk, r, 1), kt_fill(kf, nk, r, 1), kt_fill(vf, nk, r, 1);
    kt_fill(dout, nq, r, 1);
    if (!tied) kt_fill(qf, nq, r, 1);
    for (size_t i = 0; i < MT; i++) e[i] = (real)(rng_below(r, 4) * 0.25); /* ties */
    char tag[160];
    snprintf(tag, sizeof tag, "bmojo passes B=%d T=%d H=%d Hkv=%d dh=%d W=%d ke=%d M=%d block=%d%s", B, T, H, Hkv, dh,
             W, ke, M, block, tied ? " tied" : "");
    /* the kernels, as src/layers/bmojo.c chains them */
    k_token_positions(f, B, T, NULL, ipos);
    k_bmojo_select(e, ipos, f, B, T, W, ke, M, sel, mlo, mhi, scr);
    k_attn_lo(f, B, T, W, lo1);
    k_attn_lo(f, B, T, 2 * W, lo2);
    k_bmojo_fading_hi(lo1, (int)MT, hi);
    KbUnion u = {B, T, H, Hkv, dh, block, q, qf, k, v, kf, vf, dout, lo1, lo2, hi, M > 0 ? sel : NULL, mlo, mhi, f,
                 o, lse, o2, lse2};
    kb_union_fwd(&u);
    /* the reference: one softmax per (query, head) over the explicit union */
    kb_pos(f, B, T, pos, seg);
    int nstore = 0, nfade = 0;
    for (int b = 0; b < B; b++) {
        size_t r0 = (size_t)b * T;
        kb_selected(e + r0, pos + r0, seg + r0, T, W, ke, selected);
        for (int t = 0; t < T; t++) {
            size_t i = r0 + t;
            int ns = M > 0 ? kb_store(selected, pos + r0, seg + r0, T, t, W, M, st) : 0;
            nstore += ns;
            for (int h = 0; h < H; h++) {
                size_t qo = i * ldq + (size_t)h * dh;
                int n = 0;
                for (int j = 0; pos[i] >= 0 && j <= t; j++) {
                    size_t jj = r0 + j, kj = jj * ldk + (size_t)(h / G) * dh;
                    int dist = pos[i] - pos[jj];
                    if (pos[jj] < 0 || seg[jj] != seg[i] || dist >= 2 * W) continue;
                    if (dist < W) en[n++] = (KbEnt){q + qo, k + kj, v + kj, g[0][0] + qo, g[0][1] + kj, g[0][2] + kj};
                    else
                        en[n++] = (KbEnt){qf + qo, kf + kj, vf + kj, g[1][0] + qo, g[1][1] + kj, g[1][2] + kj}, nfade++;
                }
                for (int a = 0; a < ns; a++) {
                    size_t kj = (r0 + st[a]) * ldk + (size_t)(h / G) * dh;
                    en[n++] = (KbEnt){q + qo, k + kj, v + kj, g[2][0] + qo, g[2][1] + kj, g[2][2] + kj};
                }
                kb_softmax(en, n, dh, dout + qo, on + qo, p);
            }
        }
    }
    CHECK(kb_err(o, on, nq, 1e-3) < 1e-12, "%s: merged o vs one softmax over the union (%.3g)", tag,
          kb_err(o, on, nq, 1e-3));
    CHECK(nfade > 0 && (M == 0 || W >= T / 2 || nstore > 0), "%s: the case has no fading (%d) or stored (%d) keys", tag,
          nfade, nstore);
    /* backward: each pass under the merged o, lse */
    kt_fill(dq, nq, r, 1), kt_fill(dqf, nq, r, 1), kt_fill(dkf, nk, r, 1), kt_fill(dvf, nk, r, 1); /* overwritten */
    k_attn_bwd(q, k, v, o, lse, dout, dq, dk, dv, dvec, B, T, H, Hkv, dh, block, lo1, NULL, f);
    CHECK(kb_err(dq, g[0][0], nq, 1e-3) < 1e-11 && kb_err(dk, g[0][1], nk, 1e-3) < 1e-11 &&
              kb_err(dv, g[0][2], nk, 1e-3) < 1e-11,
          "%s: k_attn_bwd under the merged lse vs the window's part of the adjoint (%.3g %.3g %.3g)", tag,
          kb_err(dq, g[0][0], nq, 1e-3), kb_err(dk, g[0][1], nk, 1e-3), kb_err(dv, g[0][2], nk, 1e-3));
    k_attn_bwd_range(qf, kf, vf, o, lse, dout, dqf, dkf, dvf, dvec, B, T, H, Hkv, dh, block, lo2, hi, f);
    CHECK(kb_err(dqf, g[1][0], nq, 1e-3) < 1e-11 && kb_err(dkf, g[1][1], nk, 1e-3) < 1e-11 &&
              kb_err(dvf, g[1][2], nk, 1e-3) < 1e-11,
          "%s: k_attn_bwd_range under the merged lse vs the fading part of the adjoint (%.3g %.3g %.3g)", tag,
          kb_err(dqf, g[1][0], nq, 1e-3), kb_err(dkf, g[1][1], nk, 1e-3), kb_err(dvf, g[1][2], nk, 1e-3));
    if (M > 0) { /* accumulates: onto random values */
        kt_fill(dq, nq, r, 1), kt_fill(dk, nk, r, 1), kt_fill(dv, nk, r, 1);
        for (size_t i = 0; i < nq; i++) acc[i] = dq[i];
        for (size_t i = 0; i < nk; i++) acc[nq + i] = dk[i], acc[nq + nk + i] = dv[i];
        k_attn_bwd_list(q, k, v, o, lse, dout, dq, dk, dv, B, T, H, Hkv, dh, sel, mlo, mhi);
        for (size_t i = 0; i < nq; i++) acc[i] = dq[i] - acc[i];
        for (size_t i = 0; i < nk; i++) acc[nq + i] = dk[i] - acc[nq + i], acc[nq + nk + i] = dv[i] - acc[nq + nk + i];
        real *gs = kt_alloc(nq + 2 * nk); /* the increments, against the store's part */
        for (size_t i = 0; i < nq + 2 * nk; i++) gs[i] = (real)acc[i];
        double e0 = kb_err(gs, g[2][0], nq, 1e-3), e1 = kb_err(gs + nq, g[2][1], nk, 1e-3),
               e2 = kb_err(gs + nq + nk, g[2][2], nk, 1e-3);
        CHECK(e0 < 1e-11 && e1 < 1e-11 && e2 < 1e-11,
              "%s: k_attn_bwd_list's increments vs the store's part of the adjoint (%.3g %.3g %.3g)", tag, e0, e1, e2);
        free(gs);
    }
    double padg = 0; /* nothing reaches a PAD token */
    for (size_t i = 0; i < MT; i++)
        if (kb_pad(f, i))
            for (int d = 0; d < ldk; d++) padg = t_worst(padg, fabs(dkf[i * ldk + d]) + fabs(dvf[i * ldk + d]));
    CHECK(padg == 0, "%s: a fading gradient reaches a PAD token (%.3g)", tag, padg);
    if (fd) { /* the reference is the adjoint: finite differences of Σ dout·o through the kernels' forward */
        real *ten[6] = {q, qf, k, v, kf, vf};
        size_t len[6] = {nq, nq, nk, nk, nk, nk};
        double worst = 0;
        for (int w = 0; w < 6; w++)
            for (int s = 0; s < 4; s++) {
                size_t at = rng_below(r, len[w]);
                double an;
                if (w == 0) an = g[0][0][at] + g[2][0][at] + (tied ? g[1][0][at] : 0);
                else if (w == 1) an = g[1][0][at] + (tied ? g[0][0][at] + g[2][0][at] : 0);
                else if (w <= 3) an = g[0][w - 1][at] + g[2][w - 1][at];
                else an = g[1][w - 3][at];
                double num = fd_estimate(ten[w] + at, kb_union_loss, &u, an);
                worst = t_worst(worst, grad_rel_kt(an, num));
            }
        CHECK(worst < 1e-6, "%s: the dense adjoint vs finite differences (worst rel %.3g)", tag, worst);
    }
    free(q), free(k), free(v), free(kf), free(vf), free(dout), free(o), free(lse), free(o2), free(lse2), free(e);
    if (!tied) free(qf);
    free(dvec), free(dq), free(dk), free(dv), free(dqf), free(dkf), free(dvf), free(on), free(p), free(acc);
    for (int s = 0; s < 3; s++) free(g[s][0]), free(g[s][1]), free(g[s][2]);
    free(pos), free(seg), free(ipos), free(lo1), free(lo2), free(hi), free(sel), free(mlo), free(mhi), free(scr);
    free(st), free(f), free(selected), free(en);
}

/* ---- k_bmojo_score, k_bmojo_score_dp ---- */
static double kb_score1(const real *a, const real *b, int C) { /* ‖u(a) − u(b)‖² / C, u(x) = x/rms(x), u(0) = 0 */
    double sa = 0, sb = 0, s = 0;
    for (int c = 0; c < C; c++) sa += (double)a[c] * a[c], sb += (double)b[c] * b[c];
    double ra = sa > 0 ? sqrt(C / sa) : 0, rb = sb > 0 ? sqrt(C / sb) : 0;
    for (int c = 0; c < C; c++) s += (a[c] * ra - b[c] * rb) * (a[c] * ra - b[c] * rb);
    return s / C;
}
typedef struct { const real *a, *b; int C; } KbScore;
static double kb_score_loss(void *ctx) {
    KbScore *s = ctx;
    return kb_score1(s->a, s->b, s->C);
}
static void kb_score_case(Rng *r, int n, int C) {
    int ldk = C + 3, ldp = C + 1;
    real *k0 = kt_alloc((size_t)n * ldk), *p = kt_alloc((size_t)n * ldp), *e = kt_alloc(n),
         *dp = kt_alloc((size_t)n * C);
    uint8_t *skip = eid_xcalloc((size_t)n, 1);
    kt_fill(k0, (size_t)n * ldk, r, 1), kt_fill(p, (size_t)n * ldp, r, 1.7);
    for (int c = 0; c < C; c++) {
        p[2 * ldp + c] = 0;                                 /* F_{t−1} = 0 (segment start): e = 1 */
        k0[3 * ldk + c] = 0;                                /* zero key: e = 1 */
        k0[4 * ldk + c] = 0, p[4 * ldp + c] = 0;            /* both zero: e = 0 */
        p[5 * ldp + c] = (real)(2.5 * k0[5 * ldk + c]);     /* a multiple: e = 0 */
        p[6 * ldp + c] = -k0[6 * ldk + c];                  /* opposite: e = 4 */
    }
    skip[1] = skip[n - 1] = 1;
    k_bmojo_score(k0, ldk, p, ldp, n, C, e);
    double err = 0;
    for (int i = 0; i < n; i++) err = t_worst(err, fabs(e[i] - kb_score1(k0 + (size_t)i * ldk, p + (size_t)i * ldp, C)));
    double known = fabs(e[2] - 1) + fabs(e[3] - 1) + fabs(e[4]) + fabs(e[5]) + fabs(e[6] - 4);
    CHECK(err < 1e-13 && known < 1e-13, "k_bmojo_score n=%d C=%d: vs ‖u(k0) − u(p)‖²/C (%.3g), known rows (%.3g)", n, C,
          err, known);
    real scale = (real)0.37;
    kt_fill(dp, (size_t)n * C, r, 1); /* overwritten */
    k_bmojo_score_dp(k0, ldk, p, ldp, n, C, scale, skip, dp);
    double worst = 0, zero = 0, ortho = 0;
    for (int i = 0; i < n; i++) {
        real *pi = p + (size_t)i * ldp;
        KbScore s = {k0 + (size_t)i * ldk, pi, C};
        double pp = 0, pd = 0;
        for (int c = 0; c < C; c++) {
            double an = dp[(size_t)i * C + c];
            if (skip[i] || i == 2 || i == 4) { zero = t_worst(zero, fabs(an)); continue; } /* PAD; p = 0: no gradient */
            worst = t_worst(worst, grad_rel_kt(an, scale * fd_estimate(pi + c, kb_score_loss, &s, an / scale)));
            pp += (double)pi[c] * pi[c], pd += (double)pi[c] * an;
        }
        if (pp > 0) ortho = t_worst(ortho, fabs(pd) / sqrt(pp)); /* e(λp) = e(p): dp ⟂ p */
    }
    CHECK(worst < 1e-7 && zero == 0 && ortho < 1e-13,
          "k_bmojo_score_dp n=%d C=%d: vs finite differences (%.3g), skipped/zero rows %.3g, p·dp %.3g", n, C, worst,
          zero, ortho);
    free(k0), free(p), free(e), free(dp), free(skip);
}

/* ---- k_bmojo_score_random: splitmix64 of the position, top 53 bits ---- */
static uint64_t kb_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static void kb_random_score(void) {
    enum { N = 4096 };
    int *pos = eid_xmalloc(sizeof(int) * N), bad = 0, range = 0, dup = 0;
    real *e = kt_alloc(N);
    double mean = 0;
    for (int i = 0; i < N; i++) pos[i] = i < N / 2 ? i : (int)(1000003u * (unsigned)i % 2000000u);
    k_bmojo_score_random_rows(pos, N, e);
    for (int i = 0; i < N; i++) {
        uint64_t s = (uint64_t)pos[i];
        double want = (double)(kb_splitmix64(&s) >> 11) / 9007199254740992.0;
        bad += e[i] != (real)want || e[i] != k_bmojo_score_random(pos[i]);
        range += !(e[i] >= 0 && e[i] < 1);
        mean += e[i] / N;
        dup += i > 0 && i < N / 2 && e[i] == e[i - 1];
    }
    /* splitmix64 seeded with 0: first output 0xE220A8397B1DCDAF (the reference implementation's) */
    double first = (double)(0xE220A8397B1DCDAFull >> 11) / 9007199254740992.0;
    CHECK(bad == 0 && range == 0 && dup == 0 && fabs(mean - 0.5) < 0.02 && k_bmojo_score_random(0) == (real)first,
          "k_bmojo_score_random(_rows): %d differ from splitmix64, %d outside [0, 1), %d repeats, mean %.4f", bad,
          range, dup, mean);
    free(pos), free(e);
}

/* ---- k_bmojo_shift_prev ---- */
static void kb_shift_case(Rng *r, int B, int T, int D, int use_flags, int use_state) {
    size_t MT = (size_t)B * T, ldst = (size_t)D + 5;
    real *F = kt_alloc(MT * D), *out = kt_alloc(MT * D), *fs = kt_alloc(B * ldst), *fs0 = kt_alloc(B * ldst);
    double *ref = kb_dalloc(MT * D), *fsr = kb_dalloc(B * ldst);
    uint8_t *f = use_flags ? kb_flags(r, B, T, 0.1, 0.3, 1) : NULL;
    if (f) memset(f + (size_t)(B - 1) * T, FLAG_PAD, (size_t)T); /* a row of PAD only: fstate kept */
    kt_fill(F, MT * D, r, 1), kt_fill(fs, B * ldst, r, 1), kt_fill(out, MT * D, r, 1);
    memcpy(fs0, fs, sizeof(real) * B * ldst);
    for (size_t i = 0; i < B * ldst; i++) fsr[i] = fs[i];
    for (int b = 0; b < B; b++) {
        int last = -1;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (kb_pad(f, i)) continue;
            const real *src = NULL;
            if (!(f && (f[i] & FLAG_SEG_START))) {
                int u = t - 1;
                while (u >= 0 && kb_pad(f, (size_t)b * T + u)) u--;
                src = u >= 0 ? F + ((size_t)b * T + u) * D : use_state ? fs0 + b * ldst : NULL;
            }
            for (int d = 0; d < D; d++) ref[i * D + d] = src ? src[d] : 0;
            last = t;
        }
        if (use_state && last >= 0)
            for (int d = 0; d < D; d++) fsr[b * ldst + d] = F[((size_t)b * T + last) * D + d];
    }
    k_bmojo_shift_prev(F, f, B, T, D, use_state ? fs : NULL, ldst, out);
    CHECK(kb_err(out, ref, MT * D, 1) == 0, "k_bmojo_shift_prev B=%d T=%d D=%d%s%s: vs the previous real token", B, T,
          D, f ? " flags" : "", use_state ? " fstate" : "");
    CHECK(!use_state || kb_err(fs, fsr, B * ldst, 1) == 0,
          "k_bmojo_shift_prev: fstate is not the last real token's F (or its row stride was written)");
    free(F), free(out), free(fs), free(fs0), free(ref), free(fsr), free(f);
}

/* ---- k_bmojo_select vs the naive store ---- */
static void kb_select_case(Rng *r, int B, int T, int W, int ke, int M, int flags_mode) {
    size_t MT = (size_t)B * T;
    real *e = kt_alloc(MT);
    int *pos = eid_xmalloc(sizeof(int) * MT), *seg = eid_xmalloc(sizeof(int) * MT),
        *ipos = eid_xmalloc(sizeof(int) * MT);
    int *sel = eid_xmalloc(sizeof(int) * MT), *mlo = eid_xmalloc(sizeof(int) * MT),
        *mhi = eid_xmalloc(sizeof(int) * MT);
    int *scr = eid_xmalloc(sizeof(int) * 2 * MT), *st = eid_xmalloc(sizeof(int) * (size_t)T);
    uint8_t *f = flags_mode ? kb_flags(r, B, T, 0.05, 0.15, flags_mode == 2) : NULL, *selected = eid_xmalloc((size_t)T);
    for (size_t i = 0; i < MT; i++) e[i] = (real)(i % 2 ? rng_uniform(r) : rng_below(r, 3) * 0.5); /* ties */
    k_token_positions(f, B, T, NULL, ipos);
    k_bmojo_select(e, ipos, f, B, T, W, ke, M, sel, mlo, mhi, scr);
    kb_pos(f, B, T, pos, seg);
    int bad = 0, nonempty = 0, full = 0;
    for (int b = 0; b < B; b++) {
        size_t r0 = (size_t)b * T;
        kb_selected(e + r0, pos + r0, seg + r0, T, W, ke, selected);
        for (int t = 0; t < T; t++) {
            size_t i = r0 + t;
            int n = kb_store(selected, pos + r0, seg + r0, T, t, W, M, st),
                ok = mhi[i] - mlo[i] == n && mlo[i] >= 0 && mhi[i] <= T;
            for (int a = 0; ok && a < n; a++) ok = sel[r0 + mlo[i] + a] == st[a];
            bad += !ok, nonempty += n > 0, full += n == M;
        }
    }
    CHECK(bad == 0 && nonempty > 0 && (full > 0 || M > T / W * ke),
          "k_bmojo_select B=%d T=%d W=%d ke=%d M=%d flags=%d: %d queries see the wrong stored tokens", B, T, W, ke, M,
          flags_mode, bad);
    free(e), free(pos), free(seg), free(ipos), free(sel), free(mlo), free(mhi), free(scr), free(st), free(f),
        free(selected);
}

/* ---- decode: state size, k_bmojo_tokens vs the naive union, == k_bmojo_token loop, == the step ---- */
static size_t kb_state_doc(const KBmojo *d) { /* docs/bmojo.md "What it costs", docs/layers.md §14.4 */
    size_t KD = (size_t)d->Hkv * d->dh, n = 2 * KD * d->W + 2 * KD * 2 * d->W + 1;
    if (d->M > 0) n += d->M * (2 * KD + 1) + d->ke * (2 * KD + 2) + d->ke * (2 * KD + 1) + d->D + 4;
    return n;
}

static void kb_decode_case(Rng *r, int B, int T, KBmojo d, int tied, int flags_mode, int all_tied) {
    int H = d.H, Hkv = d.Hkv, dh = d.dh, W = d.W, G = H / Hkv;
    size_t HD = (size_t)H * dh, KD = (size_t)Hkv * dh, MT = (size_t)B * T, nq = MT * HD, nk = MT * KD;
    size_t sz = k_bmojo_state_size(&d), off = 3, ss = off + sz + 2; /* an "SSM" part before, a gap after */
    real *q0 = kt_alloc(nq), *qf0 = kt_alloc(nq), *k0 = kt_alloc(nk), *kf0 = kt_alloc(nk), *v = kt_alloc(nk),
         *vf = kt_alloc(nk);
    real *q = kt_alloc(nq), *qf = tied ? q : kt_alloc(nq), *k = kt_alloc(nk), *kf = kt_alloc(nk), *o = kt_alloc(nq);
    real *qR = kt_alloc(nq), *qfR = kt_alloc(nq), *kR = kt_alloc(nk), *kfR = kt_alloc(nk), *e = kt_alloc(MT);
    real *state = kt_alloc(B * ss), *st2 = kt_alloc(B * ss), *st3 = kt_alloc(B * ss), *o2 = kt_alloc(nq);
    real *sc = kt_alloc(2 * (size_t)W + d.M), *bq = kt_alloc(B * HD), *bqf = kt_alloc(B * HD), *bk = kt_alloc(B * KD);
    real *bkf = kt_alloc(B * KD), *bv = kt_alloc(B * KD), *bvf = kt_alloc(B * KD), *bo = kt_alloc(B * HD),
         *be = kt_alloc(B);
    double *on = kb_dalloc(nq), *p = kb_dalloc(2 * (size_t)T + d.M);
    int *pos = eid_xmalloc(sizeof(int) * MT), *seg = eid_xmalloc(sizeof(int) * MT),
        *st = eid_xmalloc(sizeof(int) * (size_t)T);
    int *fifo = eid_xmalloc(sizeof(int) * (size_t)(d.M + 1));
    uint8_t *f = flags_mode ? kb_flags(r, B, T, 0.04, 0.15, flags_mode == 2) : NULL, *bf = eid_xcalloc((size_t)B, 1);
    uint8_t *selected = eid_xmalloc((size_t)T);
    KbEnt *en = eid_xmalloc(sizeof(KbEnt) * (2 * (size_t)T + d.M));
    char tag[200];
    snprintf(tag, sizeof tag, "bmojo decode B=%d T=%d H=%d Hkv=%d dh=%d W=%d M=%d ke=%d theta=%g%s%s%s%s", B, T, H,
             Hkv, dh, W, d.M, d.ke, d.theta, d.random ? " random" : "", tied ? " tied" : "", f ? " flags" : "",
             all_tied ? " e tied" : "");
    CHECK(sz == kb_state_doc(&d), "%s: k_bmojo_state_size %zu != the documented %zu", tag, sz, kb_state_doc(&d));
    if (d.M > 0) {
        real *s0 = kt_alloc(sz);
        CHECK(k_bmojo_state_fprev(s0, &d) == s0 + sz - d.D, "%s: F_{t-1} is not the state's last D reals", tag);
        free(s0);
    }
    kt_fill(q0, nq, r, 1), kt_fill(qf0, nq, r, 1), kt_fill(k0, nk, r, 1), kt_fill(kf0, nk, r, 1);
    kt_fill(v, nk, r, 1), kt_fill(vf, nk, r, 1);
    if (tied) memcpy(qf0, q0, sizeof(real) * nq);
    for (size_t i = 0; i < MT; i++) e[i] = (real)(rng_below(r, 3) * 0.5 + (i % 3 == 0) * rng_uniform(r));
    for (size_t i = 0; all_tied && i < MT; i++) e[i] = (real)0.25; /* every chunk keeps its last ke */
    kb_pos(f, B, T, pos, seg);
    if (d.random)
        for (size_t i = 0; i < MT; i++) e[i] = pos[i] >= 0 ? k_bmojo_score_random(pos[i]) : 0;
    /* the reference: rotated copies, then one softmax per real query over window ∪ fading ∪ store */
    for (size_t i = 0; i < MT; i++) {
        long pp = pos[i] >= 0 ? pos[i] : 0;
        kb_rope(q0 + i * HD, qR + i * HD, H, dh, pp, d.theta);
        kb_rope(qf0 + i * HD, qfR + i * HD, H, dh, pp, d.theta);
        kb_rope(k0 + i * KD, kR + i * KD, Hkv, dh, pp, d.theta);
        kb_rope(kf0 + i * KD, kfR + i * KD, Hkv, dh, pp, d.theta);
    }
    int bad_fifo = 0, nstore = 0;
    for (int b = 0; b < B; b++) {
        size_t r0 = (size_t)b * T;
        kb_selected(e + r0, pos + r0, seg + r0, T, W, d.ke, selected);
        for (int t = 0; t < T; t++) {
            size_t i = r0 + t;
            if (pos[i] < 0) continue;
            int ns = d.M > 0 ? kb_store(selected, pos + r0, seg + r0, T, t, W, d.M, st) : 0;
            nstore += ns;
            for (int h = 0; h < H; h++) {
                int n = 0, g = h / G;
                for (int j = 0; j <= t; j++) {
                    size_t jj = r0 + j;
                    int dist = pos[i] - pos[jj];
                    if (pos[jj] < 0 || seg[jj] != seg[i] || dist >= 2 * W) continue;
                    if (dist < W)
                        en[n++] = (KbEnt){
                            qR + i * HD + h * dh, kR + jj * KD + g * dh, v + jj * KD + g * dh, NULL, NULL, NULL};
                    else
                        en[n++] = (KbEnt){
                            qfR + i * HD + h * dh, kfR + jj * KD + g * dh, vf + jj * KD + g * dh, NULL, NULL, NULL};
                }
                for (int a = 0; a < ns; a++)
                    en[n++] = (KbEnt){qR + i * HD + h * dh,
                                      kR + (r0 + st[a]) * KD + g * dh,
                                      v + (r0 + st[a]) * KD + g * dh,
                                      NULL,
                                      NULL,
                                      NULL};
                kb_softmax(en, n, dh, NULL, on + i * HD + h * dh, p);
            }
        }
    }
    /* the kernel over all tokens from fresh states (the SSM part and F_{t−1} hold sentinels) */
    for (int b = 0; b < B; b++) {
        real *s = state + (size_t)b * ss;
        for (size_t a = 0; a < off; a++) s[a] = 3;
        s[ss - 1] = s[ss - 2] = 5;
        if (d.M > 0)
            for (int a = 0; a < d.D; a++) k_bmojo_state_fprev(s + off, &d)[a] = 7;
    }
    memcpy(st2, state, sizeof(real) * B * ss), memcpy(st3, state, sizeof(real) * B * ss);
    memcpy(q, q0, sizeof(real) * nq), memcpy(k, k0, sizeof(real) * nk), memcpy(kf, kf0, sizeof(real) * nk);
    if (!tied) memcpy(qf, qf0, sizeof(real) * nq);
    k_bmojo_tokens(state, ss, off, &d, B, T, f, q, qf, k, v, kf, vf, d.random || d.M == 0 ? NULL : e, o);
    CHECK(kb_err(o, on, nq, 1e-3) < 1e-12, "%s: o vs one softmax over window ∪ fading ∪ store (%.3g)", tag,
          kb_err(o, on, nq, 1e-3));
    CHECK(d.M == 0 || W >= T / 2 || nstore > 0, "%s: no query saw a stored key", tag);
    int bad_rot = 0, bad_keep = 0, bad_ring = 0;
    for (size_t i = 0; i < MT; i++) { /* rotated in place (PAD rows untouched) */
        int pad = pos[i] < 0;
        for (size_t c = 0; c < HD; c++) {
            bad_rot += pad ? q[i * HD + c] != q0[i * HD + c] : fabs(q[i * HD + c] - qR[i * HD + c]) > 1e-13;
            if (!tied)
                bad_rot += pad ? qf[i * HD + c] != qf0[i * HD + c] : fabs(qf[i * HD + c] - qfR[i * HD + c]) > 1e-13;
        }
        for (size_t c = 0; c < KD; c++)
            bad_rot +=
                pad ? k[i * KD + c] != k0[i * KD + c] || kf[i * KD + c] != kf0[i * KD + c]
                    : fabs(k[i * KD + c] - kR[i * KD + c]) > 1e-13 || fabs(kf[i * KD + c] - kfR[i * KD + c]) > 1e-13;
    }
    for (int b = 0; b < B; b++) {
        real *s = state + (size_t)b * ss, *a = s + off;
        for (size_t x = 0; x < off; x++) bad_keep += s[x] != 3;
        bad_keep += s[ss - 1] != 5 || s[ss - 2] != 5;
        for (int x = 0; d.M > 0 && x < d.D; x++) bad_keep += k_bmojo_state_fprev(a, &d)[x] != 7;
        /* the documented layout: raw ring K, V [Hkv, W, dh], fading ring [Hkv, 2W, dh], counter */
        int last = -1, cnt = 0;
        for (int t = 0; t < T; t++)
            if (pos[(size_t)b * T + t] >= 0) last = t;
        if (last >= 0) cnt = pos[(size_t)b * T + last] + 1;
        bad_ring += a[6 * KD * W] != cnt;
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (last < 0 || pos[i] < 0 || seg[i] != seg[(size_t)b * T + last]) continue;
            int pp = pos[i];
            for (int g = 0; g < Hkv; g++) {
                size_t rs = ((size_t)g * W + pp % W) * dh, fs = ((size_t)g * 2 * W + pp % (2 * W)) * dh;
                if (pp > cnt - 1 - W)
                    bad_ring += memcmp(a + rs, k + i * KD + g * dh, sizeof(real) * dh) != 0 ||
                                memcmp(a + KD * W + rs, v + i * KD + g * dh, sizeof(real) * dh) != 0;
                if (pp > cnt - 1 - 2 * W)
                    bad_ring += memcmp(a + 2 * KD * W + fs, kf + i * KD + g * dh, sizeof(real) * dh) != 0 ||
                                memcmp(a + 4 * KD * W + fs, vf + i * KD + g * dh, sizeof(real) * dh) != 0;
            }
        }
        /* the FIFO after the row == what its last real token saw, as positions in the segment */
        if (d.M > 0 && last >= 0) {
            size_t r0 = (size_t)b * T;
            kb_selected(e + r0, pos + r0, seg + r0, T, W, d.ke, selected);
            int n = kb_store(selected, pos + r0, seg + r0, T, last, W, d.M, st), m = k_bmojo_state_store(a, &d, fifo);
            int ok = m == n;
            for (int x = 0; ok && x < n; x++) ok = fifo[x] == pos[r0 + st[x]];
            bad_fifo += !ok;
        }
    }
    CHECK(bad_rot == 0, "%s: q, qf, k, kf not rotated in place by their positions (%d)", tag, bad_rot);
    CHECK(bad_keep == 0, "%s: wrote the SSM's part, past the state or F_{t-1} (%d)", tag, bad_keep);
    CHECK(bad_ring == 0, "%s: rings or counter not as documented (%d)", tag, bad_ring);
    CHECK(bad_fifo == 0, "%s: k_bmojo_state_store vs the naive FIFO (%d rows)", tag, bad_fifo);
    /* == a loop of k_bmojo_token (a real SEG_START clears all but F_{t−1}) */
    size_t keep = (size_t)(d.M > 0 ? k_bmojo_state_fprev(st2 + off, &d) - (st2 + off) : (ptrdiff_t)sz);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            real *s = st2 + (size_t)b * ss + off;
            if (kb_pad(f, i)) { memset(o2 + i * HD, 0, sizeof(real) * HD); continue; }
            if (f && (f[i] & FLAG_SEG_START)) memset(s, 0, sizeof(real) * keep);
            memcpy(bq, q0 + i * HD, sizeof(real) * HD), memcpy(bqf, (tied ? q0 : qf0) + i * HD, sizeof(real) * HD);
            memcpy(bk, k0 + i * KD, sizeof(real) * KD), memcpy(bkf, kf0 + i * KD, sizeof(real) * KD);
            k_bmojo_token(s, &d, bq, tied ? bq : bqf, bk, v + i * KD, bkf, vf + i * KD, e[i], o2 + i * HD, sc);
        }
    CHECK(memcmp(o2, o, sizeof(real) * nq) == 0 && memcmp(st2, state, sizeof(real) * B * ss) == 0,
          "%s: k_bmojo_tokens != a loop of k_bmojo_token (outputs or states)", tag);
    /* == the one-token step, B = nseq rows of T = 1, token by token */
    int bad_step = 0;
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * T + t;
            memcpy(bq + b * HD, q0 + i * HD, sizeof(real) * HD), memcpy(bqf + b * HD, qf0 + i * HD, sizeof(real) * HD);
            memcpy(bk + b * KD, k0 + i * KD, sizeof(real) * KD), memcpy(bkf + b * KD, kf0 + i * KD, sizeof(real) * KD);
            memcpy(bv + b * KD, v + i * KD, sizeof(real) * KD), memcpy(bvf + b * KD, vf + i * KD, sizeof(real) * KD);
            be[b] = e[i], bf[b] = f ? f[i] : (t == 0 ? FLAG_SEG_START | FLAG_CAUSAL : FLAG_CAUSAL);
        }
        k_bmojo_tokens(st3, ss, off, &d, B, 1, bf, bq, tied ? bq : bqf, bk, bv, bkf, bvf,
                       d.random || d.M == 0 ? NULL : be, bo);
        for (int b = 0; b < B; b++)
            bad_step += memcmp(bo + b * HD, o + ((size_t)b * T + t) * HD, sizeof(real) * HD) != 0;
    }
    CHECK(bad_step == 0 && memcmp(st3, state, sizeof(real) * B * ss) == 0,
          "%s: the one-token step (T = 1) != the prefill call (%d outputs, or the states)", tag, bad_step);
    free(q0), free(qf0), free(k0), free(kf0), free(v), free(vf), free(q), free(k), free(kf), free(o);
    if (!tied) free(qf);
    free(qR), free(qfR), free(kR), free(kfR), free(e), free(state), free(st2), free(st3), free(o2), free(sc);
    free(bq), free(bqf), free(bk), free(bkf), free(bv), free(bvf), free(bo), free(be), free(on), free(p);
    free(pos), free(seg), free(st), free(fifo), free(f), free(bf), free(selected), free(en);
}

static void kt_bmojo(void) {
    Rng r;
    rng_init(&r, 606, 0);
    kb_rope_at_case(&r, 3, 8, 37, 10000), kb_rope_at_case(&r, 1, 2, 0, 500), kb_rope_at_case(&r, 2, 6, 123457, 10000);
    kb_fading_case(&r, 3, 60, 4), kb_fading_case(&r, 2, 40, 1), kb_fading_case(&r, 2, 50, 9);
    kb_range_case(&r, 2, 37, 4, 2, 6, 8, 1), kb_range_case(&r, 1, 30, 2, 1, 4, 1, 0);
    kb_range_case(&r, 3, 45, 3, 3, 4, 16, 1), kb_range_case(&r, 2, 70, 2, 1, 8, 64, 1);
    kb_merge_case(&r, 64, 5, 6), kb_merge_case(&r, 40, 1, 3);
    kb_list_case(&r, 2, 30, 4, 2, 4), kb_list_case(&r, 1, 25, 3, 1, 6);
    /* B, T, H, Hkv, dh, W, ke, M, block, tied, fd */
    kb_union_case(&r, 2, 40, 4, 2, 6, 5, 2, 3, 7, 1, 0);
    kb_union_case(&r, 1, 36, 2, 1, 4, 3, 1, 8, 16, 0, 0);
    kb_union_case(&r, 2, 30, 2, 2, 4, 1, 1, 2, 4, 0, 0);  /* W = 1: every token a chunk */
    kb_union_case(&r, 1, 30, 2, 1, 4, 4, 4, 20, 64, 1, 0); /* ke = W: every token stored */
    kb_union_case(&r, 2, 24, 3, 3, 4, 6, 2, 0, 5, 1, 0);  /* M = 0: bmojo-f */
    kb_union_case(&r, 1, 18, 2, 1, 4, 3, 1, 2, 4, 0, 1);  /* finite differences */
    kb_score_case(&r, 9, 4), kb_score_case(&r, 8, 1), kb_score_case(&r, 10, 24);
    kb_random_score();
    kb_shift_case(&r, 3, 30, 5, 1, 1), kb_shift_case(&r, 2, 20, 3, 1, 0), kb_shift_case(&r, 2, 7, 4, 0, 1);
    kb_shift_case(&r, 1, 9, 2, 0, 0);
    kb_select_case(&r, 3, 64, 4, 2, 3, 1), kb_select_case(&r, 2, 50, 1, 1, 4, 2),
        kb_select_case(&r, 2, 60, 8, 8, 100, 0);
    kb_select_case(&r, 3, 70, 5, 1, 1, 1), kb_select_case(&r, 2, 64, 3, 2, 5, 2);
    kb_select_case(&r, 2, 60, 4, 3, 2, 1), kb_select_case(&r, 2, 40, 3, 5, 6, 2); /* M < ke; ke > W */
    /* decode: {H, Hkv, dh, W, M, ke, D, random, theta}, tied, flags */
    kb_decode_case(&r, 3, 40, (KBmojo){4, 2, 4, 4, 3, 2, 6, 0, 10000}, 1, 1, 0);
    kb_decode_case(&r, 2, 33, (KBmojo){2, 1, 6, 3, 0, 1, 5, 0, 0}, 0, 1, 0);     /* bmojo-f, no RoPE */
    kb_decode_case(&r, 2, 30, (KBmojo){2, 2, 4, 2, 5, 1, 3, 1, 500}, 0, 1, 0);   /* the random score */
    kb_decode_case(&r, 1, 25, (KBmojo){3, 1, 2, 1, 2, 1, 2, 0, 100}, 1, 0, 0);   /* W = 1, no flags */
    kb_decode_case(&r, 2, 34, (KBmojo){2, 1, 4, 4, 20, 4, 4, 0, 10000}, 0, 1, 0); /* ke = W, M > all stored */
    kb_decode_case(&r, 2, 36, (KBmojo){2, 1, 4, 5, 4, 2, 3, 0, 1000}, 0, 1, 1);  /* all e equal: ties → later */
    kb_decode_case(&r, 2, 30, (KBmojo){2, 1, 4, 3, 1, 2, 3, 0, 1000}, 1, 2, 0);  /* M < ke; rows open with PAD */
    kb_decode_case(&r, 2, 30, (KBmojo){2, 2, 4, 3, 4, 5, 3, 0, 1000}, 0, 2, 0);  /* ke > W: all kept */
}
