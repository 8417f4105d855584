/* kt_attn.h — attention kernels (docs/layers.md §5) against a naive softmax reference:
 * k_token_positions and k_attn_lo (segments, windows counted in real tokens, PAD absent),
 * k_attn_fwd / k_attn_bwd (blocked, GQA, windows, segments, PAD keys and queries) vs a dense
 * softmax and its exact adjoint, k_attn_step vs the naive stream, and k_attn_prefill in two parts
 * (ring keys continued, resets, PAD) vs the naive stream and vs the step loop with RoPE; the
 * prefix-LM mask (k_attn_hi, docs/layers.md §5.3, §8) in all three against an explicit mask. */
#include "kernels/attention.h"

static int kt_pad(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_PAD); }
static int kt_seg(const uint8_t *f, size_t i) { return f && (f[i] & FLAG_SEG_START); }

/* Does query i of row b see key j? Walk back from i over real tokens: stop after a real token
 * with SEG_START, at the row start, or after W real tokens (W = 0: no window). With the prefix-LM
 * mask (pl) a query without CAUSAL also sees a later key j when every token in (i, j] is a real
 * token without CAUSAL or SEG_START, and j − i < W (W > 0), and (i, j] does not cross `cut` (a
 * prefill split: a prompt query sees no key of a later call); cut = T: none. */
static int kt_sees_cut(const uint8_t *f, int b, int T, int i, int j, int W, int pl, int cut) {
    size_t r = (size_t)b * T;
    if (kt_pad(f, r + i) || kt_pad(f, r + j)) return 0;
    if (j > i) {
        if (!pl || !f || (f[r + i] & FLAG_CAUSAL) || (W > 0 && j - i >= W) || (i < cut && j >= cut)) return 0;
        for (int u = i + 1; u <= j; u++)
            if (f[r + u] & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START)) return 0;
        return 1;
    }
    int cnt = 0;
    for (int u = i; u >= 0; u--) {
        if (kt_pad(f, r + u)) continue;
        cnt++;
        if (u == j) return 1;
        if (kt_seg(f, r + u) || (W > 0 && cnt == W)) return 0;
    }
    return 0;
}
static int kt_sees_pl(const uint8_t *f, int b, int T, int i, int j, int W, int pl) {
    return kt_sees_cut(f, b, T, i, j, W, pl, T);
}
static int kt_sees(const uint8_t *f, int b, int T, int i, int j, int W) { return kt_sees_pl(f, b, T, i, j, W, 0); }

/* kt_flags with prompts: runs of tokens without CAUSAL (a segment often starts with one), several
 * per row, so the prefix-LM mask has prompt runs cut by CAUSAL, PAD and SEG_START tokens. */
static uint8_t *kt_flags_prompts(Rng *r, int B, int T, double p_seg, double p_pad) {
    uint8_t *f = kt_flags(r, B, T, p_seg, p_pad);
    int prompt = 0;
    for (size_t i = 0; i < (size_t)B * T; i++) {
        if (f[i] & FLAG_SEG_START) prompt = rng_uniform(r) < 0.8;
        else if (rng_uniform(r) < 0.12) prompt = !prompt;
        if (prompt) f[i] &= (uint8_t)~FLAG_CAUSAL;
    }
    return f;
}

/* dense reference: o, lse (double accumulation); dq, dk, dv from dout (exact adjoint) if dout */
static void naive_attn(const real *q, const real *k, const real *v, const real *dout, real *o, real *lse, real *dq,
                       real *dk, real *dv, int B, int T, int H, int Hkv, int dh, int W, int pl, int cut,
                       const uint8_t *f) {
    int G = H / Hkv, ldq = H * dh, ldk = Hkv * dh;
    double sc = 1 / sqrt((double)dh), *p = eid_xmalloc(sizeof(double) * T), *dp = eid_xmalloc(sizeof(double) * T);
    if (dout) memset(dq, 0, sizeof(real) * B * T * ldq), memset(dk, 0, sizeof(real) * B * T * ldk),
              memset(dv, 0, sizeof(real) * B * T * ldk);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                size_t bi = (size_t)b * T + i;
                const real *qi = q + bi * ldq + (size_t)h * dh;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < T; j++) {
                    p[j] = 0;
                    if (!kt_sees_cut(f, b, T, i, j, W, pl, cut)) continue;
                    const real *kj = k + ((size_t)b * T + j) * ldk + (size_t)(h / G) * dh;
                    double s = 0;
                    for (int d = 0; d < dh; d++) s += (double)qi[d] * kj[d];
                    p[j] = s * sc, mx = t_worst(mx, s * sc);
                }
                for (int j = 0; j < T; j++)
                    if (kt_sees_cut(f, b, T, i, j, W, pl, cut)) p[j] = exp(p[j] - mx), sum += p[j];
                real *oi = o + bi * ldq + (size_t)h * dh;
                for (int d = 0; d < dh; d++) {
                    double a = 0;
                    for (int j = 0; j < T; j++)
                        if (p[j] != 0) a += p[j] / sum * v[((size_t)b * T + j) * ldk + (size_t)(h / G) * dh + d];
                    oi[d] = (real)a;
                }
                lse[bi * H + h] = sum > 0 ? (real)(mx + log(sum)) : 0;
                if (!dout || sum == 0) continue;
                const real *doi = dout + bi * ldq + (size_t)h * dh;
                double Dv = 0;
                for (int j = 0; j < T; j++) {
                    p[j] /= sum, dp[j] = 0;
                    if (p[j] == 0) continue;
                    for (int d = 0; d < dh; d++) dp[j] += (double)doi[d] * v[((size_t)b * T + j) * ldk + (size_t)(h / G) * dh + d];
                    Dv += p[j] * dp[j];
                }
                for (int j = 0; j < T; j++) {
                    if (p[j] == 0) continue;
                    double ds = p[j] * (dp[j] - Dv);
                    size_t kj = ((size_t)b * T + j) * ldk + (size_t)(h / G) * dh;
                    for (int d = 0; d < dh; d++) {
                        dq[bi * ldq + (size_t)h * dh + d] += (real)(sc * ds * k[kj + d]);
                        dk[kj + d] += (real)(sc * ds * qi[d]);
                        dv[kj + d] += (real)(p[j] * doi[d]);
                    }
                }
            }
    free(p), free(dp);
}

/* use_flags: 0 none, 1 random (all CAUSAL), 2 with prompt runs and the prefix-LM mask */
static void kt_attn_case(Rng *r, int B, int T, int H, int Hkv, int dh, int W, int block, int use_flags) {
    size_t nq = (size_t)B * T * H * dh, nk = (size_t)B * T * Hkv * dh, M = (size_t)B * T;
    real *q = kt_alloc(nq), *k = kt_alloc(nk), *v = kt_alloc(nk), *o = kt_alloc(nq), *on = kt_alloc(nq);
    real *lse = kt_alloc(M * H), *lsen = kt_alloc(M * H), *dout = kt_alloc(nq), *dvec = kt_alloc(M * H);
    real *dq = kt_alloc(nq), *dk = kt_alloc(nk), *dv = kt_alloc(nk), *dqn = kt_alloc(nq), *dkn = kt_alloc(nk), *dvn = kt_alloc(nk);
    int *pos = eid_xmalloc(sizeof(int) * M), *lo = eid_xmalloc(sizeof(int) * M), *hi = NULL, pl = use_flags == 2;
    kt_fill(q, nq, r, 1), kt_fill(k, nk, r, 1), kt_fill(v, nk, r, 1), kt_fill(dout, nq, r, 1);
    uint8_t *f = use_flags == 2 ? kt_flags_prompts(r, B, T, 0.08, 0.1) : use_flags ? kt_flags(r, B, T, 0.08, 0.2) : NULL;
    char tag[128];
    snprintf(tag, sizeof tag, "attn B=%d T=%d H=%d Hkv=%d dh=%d W=%d block=%d%s", B, T, H, Hkv, dh, W, block,
             pl ? " prefix-LM" : f ? " flags" : "");
    /* positions: real tokens before t in its segment */
    k_token_positions(f, B, T, NULL, pos);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int c = 0;
            for (int u = t - 1; u >= 0 && !(kt_pad(f, (size_t)b * T + u + 1) == 0 && kt_seg(f, (size_t)b * T + u + 1)); u--)
                c += !kt_pad(f, (size_t)b * T + u);
            if (!kt_pad(f, (size_t)b * T + t) && pos[(size_t)b * T + t] != c) bad++;
        }
    CHECK(bad == 0, "%s: k_token_positions wrong at %d tokens", tag, bad);
    k_attn_lo(f, B, T, W, lo);
    for (int b = 0; b < B; b++) /* lo is nondecreasing and never hides a visible key */
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            bad += t > 0 && lo[i] < lo[i - 1];
            for (int j = 0; j < T; j++) bad += kt_sees(f, b, T, t, j, W) && j < lo[i];
        }
    CHECK(bad == 0, "%s: k_attn_lo not monotone or hides keys (%d)", tag, bad);
    if (pl) { /* hi is nondecreasing, >= t, and is exactly the last key the explicit mask shows */
        hi = eid_xmalloc(sizeof(int) * M);
        k_attn_hi(f, B, T, W, hi);
        int later = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                int last = t;
                for (int j = t + 1; j < T; j++) last = kt_sees_pl(f, b, T, t, j, W, 1) ? j : last;
                bad += (t > 0 && hi[i] < hi[i - 1]) || (!kt_pad(f, i) && hi[i] != last) || hi[i] < t;
                later += last > t;
            }
        CHECK(bad == 0, "%s: k_attn_hi not monotone or not the mask's last key (%d)", tag, bad);
        CHECK(W == 1 || later > T / 4, "%s: the flags give too few prompt queries (%d) to test the mask", tag, later);
    }
    k_attn_fwd(q, k, v, o, lse, B, T, H, Hkv, dh, block, lo, hi, f);
    naive_attn(q, k, v, dout, on, lsen, dqn, dkn, dvn, B, T, H, Hkv, dh, W, pl, T, f);
    CHECK(t_rel_err(o, on, nq, 1e-3) < 1e-12, "%s: forward vs naive softmax", tag);
    CHECK(t_rel_err(lse, lsen, M * H, 1e-3) < 1e-12, "%s: lse vs naive", tag);
    k_attn_bwd(q, k, v, o, lse, dout, dq, dk, dv, dvec, B, T, H, Hkv, dh, block, lo, hi, f);
    CHECK(t_rel_err(dq, dqn, nq, 1e-3) < 1e-11, "%s: dq vs exact adjoint", tag);
    CHECK(t_rel_err(dk, dkn, nk, 1e-3) < 1e-11, "%s: dk vs exact adjoint", tag);
    CHECK(t_rel_err(dv, dvn, nk, 1e-3) < 1e-11, "%s: dv vs exact adjoint", tag);
    double padg = 0;
    for (size_t i = 0; f && i < M; i++)
        if (f[i] & FLAG_PAD)
            for (int d = 0; d < Hkv * dh; d++) padg = t_worst(padg, fabs((double)dk[i * Hkv * dh + d]) + fabs((double)dv[i * Hkv * dh + d]));
    CHECK(padg == 0, "%s: gradient reaches a PAD key (%.3g)", tag, padg);
    free(q), free(k), free(v), free(o), free(on), free(lse), free(lsen), free(dout), free(dvec);
    free(dq), free(dk), free(dv), free(dqn), free(dkn), free(dvn), free(pos), free(lo), free(hi), free(f);
}

/* k_attn_prefill over [0, p) then [p, T) from zero states == the naive stream (theta = 0: window
 * cap over real tokens, segments) and == the k_attn_step loop (with RoPE), outputs and states. */
static void kt_prefill_case_pl(Rng *r, int B, int T, int H, int Hkv, int dh, int cap, int p, double theta, int block,
                               int pl) {
    size_t nq = (size_t)B * T * H * dh, nk = (size_t)B * T * Hkv * dh, M = (size_t)B * T;
    size_t ss = k_attn_state_size(Hkv, dh, cap);
    int ldq = H * dh, ldk = Hkv * dh;
    real *q = kt_alloc(nq), *k = kt_alloc(nk), *v = kt_alloc(nk), *o = kt_alloc(nq), *on = kt_alloc(nq);
    real *lse = kt_alloc(M * H), *st = kt_alloc(B * ss), *sref = kt_alloc(B * ss), *sc = kt_alloc((size_t)H * cap);
    real *qs = kt_alloc(ldq), *ks = kt_alloc(ldk), *os = kt_alloc(ldq), *oref = kt_alloc(nq);
    kt_fill(q, nq, r, 1), kt_fill(k, nk, r, 1), kt_fill(v, nk, r, 1);
    uint8_t *f = pl ? kt_flags_prompts(r, B, T, 0.06, 0.1) : kt_flags(r, B, T, 0.06, 0.2);
    for (int b = 0; b < B; b++) f[(size_t)b * T] &= (uint8_t)~FLAG_SEG_START; /* rows start from the (zero) state */
    if (p < T) f[p] &= (uint8_t)~FLAG_SEG_START; /* row 0's second part continues the ring */
    char tag[128];
    snprintf(tag, sizeof tag, "attn prefill B=%d T=%d H=%d Hkv=%d dh=%d cap=%d split=%d theta=%g%s", B, T, H, Hkv, dh, cap,
             p, theta, pl ? " prefix-LM" : "");
    /* the step loop, one real token at a time, state cleared at SEG_START */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (kt_pad(f, i)) { memset(oref + i * ldq, 0, sizeof(real) * ldq); continue; }
            if (kt_seg(f, i)) memset(sref + b * ss, 0, sizeof(real) * ss);
            memcpy(qs, q + i * ldq, sizeof(real) * ldq), memcpy(ks, k + i * ldk, sizeof(real) * ldk);
            k_attn_step(sref + b * ss, qs, ks, v + i * ldk, oref + i * ldq, sc, 1, H, Hkv, dh, cap, theta);
        }
    /* two prefills over row slices */
    for (int part = 0; part < 2; part++) {
        int t0 = part ? p : 0, t1 = part ? T : p, n = t1 - t0;
        if (n <= 0) continue;
        real *qp = kt_alloc((size_t)B * n * ldq), *kp = kt_alloc((size_t)B * n * ldk), *vp = kt_alloc((size_t)B * n * ldk);
        real *op = kt_alloc((size_t)B * n * ldq), *lp = kt_alloc((size_t)B * n * H);
        uint8_t *fp = eid_xmalloc((size_t)B * n);
        int *pos = eid_xmalloc(sizeof(int) * B * n), *lo = eid_xmalloc(sizeof(int) * B * n);
        int *hi = pl ? eid_xmalloc(sizeof(int) * B * n) : NULL;
        for (int b = 0; b < B; b++) {
            size_t s0 = (size_t)b * T + t0, d0 = (size_t)b * n;
            memcpy(qp + d0 * ldq, q + s0 * ldq, sizeof(real) * n * ldq);
            memcpy(kp + d0 * ldk, k + s0 * ldk, sizeof(real) * n * ldk);
            memcpy(vp + d0 * ldk, v + s0 * ldk, sizeof(real) * n * ldk);
            memcpy(fp + d0, f + s0, n);
        }
        k_attn_prefill(st, qp, kp, vp, op, lp, B, n, H, Hkv, dh, cap, theta, block, fp, pos, lo, hi);
        for (int b = 0; b < B; b++) memcpy(o + ((size_t)b * T + t0) * ldq, op + (size_t)b * n * ldq, sizeof(real) * n * ldq);
        free(qp), free(kp), free(vp), free(op), free(lp), free(fp), free(pos), free(lo), free(hi);
    }
    if (theta <= 0) { /* against the naive stream (prefix-LM: the mask within each call's slice) */
        real *lsen = kt_alloc(M * H);
        naive_attn(q, k, v, NULL, on, lsen, NULL, NULL, NULL, B, T, H, Hkv, dh, cap, pl, p, f);
        CHECK(t_rel_err(o, on, nq, 1e-3) < 1e-11, "%s: outputs vs naive softmax over the stream", tag);
        free(lsen);
    }
    /* prefix-LM: a prompt query reads ahead, which the step loop cannot; its CAUSAL queries (decoding
     * after a prompt) and the ring must still agree, and the prompt queries must differ */
    double ahead = 0;
    for (size_t i = 0; pl && i < M; i++)
        if (!(f[i] & (FLAG_CAUSAL | FLAG_PAD)))
            for (int c = 0; c < ldq; c++) ahead = t_worst(ahead, fabs((double)o[i * ldq + c] - oref[i * ldq + c])), o[i * ldq + c] = oref[i * ldq + c];
    CHECK(!pl || ahead > 1e-3, "%s: prompt queries equal the causal step loop (%.3g): the mask reads nothing ahead", tag, ahead);
    CHECK(t_rel_err(o, oref, nq, 1e-3) < 1e-11, "%s: outputs vs the step loop", tag);
    CHECK(t_rel_err(st, sref, B * ss, 1e-3) < 1e-12, "%s: ring and counter vs the step loop", tag);
    free(q), free(k), free(v), free(o), free(on), free(lse), free(st), free(sref), free(sc), free(qs), free(ks), free(os);
    free(oref), free(f);
}

static void kt_prefill_case(Rng *r, int B, int T, int H, int Hkv, int dh, int cap, int p, double theta, int block) {
    kt_prefill_case_pl(r, B, T, H, Hkv, dh, cap, p, theta, block, 0);
}

static void kt_attn(void) {
    Rng r;
    rng_init(&r, 505, 0);
    kt_attn_case(&r, 1, 9, 1, 1, 4, 0, 4, 0);
    kt_attn_case(&r, 2, 37, 4, 2, 6, 0, 8, 1);
    kt_attn_case(&r, 2, 37, 2, 1, 4, 5, 7, 1);
    kt_attn_case(&r, 3, 50, 3, 3, 8, 3, 16, 1);
    kt_attn_case(&r, 2, 40, 2, 2, 4, 1, 5, 1);
    kt_attn_case(&r, 1, 70, 2, 1, 8, 0, 64, 1);
    kt_attn_case(&r, 2, 37, 4, 2, 6, 0, 8, 2); /* prefix-LM */
    kt_attn_case(&r, 2, 37, 2, 1, 4, 5, 7, 2);
    kt_attn_case(&r, 3, 50, 3, 3, 8, 3, 16, 2);
    kt_attn_case(&r, 2, 40, 2, 2, 4, 1, 5, 2);
    kt_attn_case(&r, 1, 70, 2, 1, 8, 0, 64, 2);
    kt_attn_case(&r, 2, 45, 2, 2, 4, 9, 4, 2);
    int splits[] = {0, 1, 7, 20, 33};
    for (int s = 0; s < 5; s++) {
        kt_prefill_case(&r, 3, 33, 2, 1, 4, 6, splits[s], 0, 4);        /* ring wraps (cap < T) */
        kt_prefill_case(&r, 2, 33, 4, 2, 6, 64, splits[s], 10000, 8);   /* full attention, RoPE */
        kt_prefill_case(&r, 2, 33, 2, 2, 4, 5, splits[s], 500, 3);      /* window, RoPE */
        kt_prefill_case_pl(&r, 3, 33, 2, 1, 4, 6, splits[s], 0, 4, 1);   /* prefix-LM, window */
        kt_prefill_case_pl(&r, 2, 33, 4, 2, 6, 64, splits[s], 0, 8, 1);  /* prefix-LM, full */
        kt_prefill_case_pl(&r, 2, 33, 2, 2, 4, 5, splits[s], 500, 3, 1); /* prefix-LM, window, RoPE */
    }
}
