/* kt_chunked.h — the chunked recurrences (Mamba-2 SSD, docs/layers.md §3; GLA, §4) against naive
 * token-by-token references: segment resets, PAD tokens absent, an incoming state S0 and the outgoing
 * state Sfinal, fwd(p1) → state → fwd(p2) == fwd(p1‖p2), reverse units (Birdie, §8) against a
 * literally time-reversed recurrence with the cut rule, and the backward by central differences of
 * the naive forward. */
#include "kernels/ssd.h"
#include "kernels/gla.h"

/* Flags with PAD, resets and a non-CAUSAL prefix of random length per row (Birdie prompts). */
static uint8_t *kt_flags_prefix(Rng *r, int B, int T, double p_seg, double p_pad) {
    uint8_t *f = kt_flags(r, B, T, p_seg, p_pad);
    for (int b = 0; b < B; b++) {
        int pref = (int)rng_below(r, (uint64_t)T + 1);
        for (int t = 0; t < pref; t++) f[(size_t)b * T + t] &= (uint8_t)~FLAG_CAUSAL;
    }
    return f;
}

/* Does the reverse state at t carry into t from t+1? (docs/layers.md §8.1: not when t+1 is CAUSAL,
 * PAD, a segment start or past the row end; flags NULL = all CAUSAL.) */
static int kt_rev_carries(const uint8_t *f, size_t base, int t, int T) {
    if (t + 1 >= T || !f) return 0;
    return !(f[base + t + 1] & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START));
}

/* ---------------------------------------------------------------- SSD */

/* Naive SSD, docs/layers.md §3.2, per (b, h) token by token in double: forward heads left to right from
 * S0 (resets at SEG_START), reverse heads (h >= rev_from) right to left with the cut rule; PAD: y = 0,
 * no step. Sfinal (may be NULL): forward heads' last state, reverse heads 0. */
static void naive_ssd(const real *xbc, int ld, const real *dt, const real *A_log, const real *Dp, real *y, int B, int T,
                      int H, int P, int G, int N, const uint8_t *f, int rev_from, const real *S0, real *Sfinal,
                      size_t ldS) {
    int I = H * P, hpg = H / G;
    double *S = eid_xcalloc((size_t)P * N, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int g = h / hpg, rev = h >= rev_from;
            size_t base = (size_t)b * T;
            double a = -exp((double)A_log[h]);
            for (int j = 0; j < P * N; j++) S[j] = S0 && !rev ? S0[(size_t)b * ldS + (size_t)h * P * N + j] : 0;
            for (int k = 0; k < T; k++) {
                int t = rev ? T - 1 - k : k;
                size_t i = base + t;
                const real *x = xbc + i * ld + h * P, *Bv = xbc + i * ld + I + g * N, *Cv = Bv + G * N;
                real *yr = y + i * I + h * P;
                if (f && (f[i] & FLAG_PAD)) {
                    for (int p = 0; p < P; p++) yr[p] = 0;
                    continue;
                }
                int reset = rev ? !kt_rev_carries(f, base, t, T) : f && (f[i] & FLAG_SEG_START);
                double d = dt[i * H + h], al = reset ? 0 : exp(d * a);
                for (int p = 0; p < P; p++) {
                    double acc = 0;
                    for (int n = 0; n < N; n++) {
                        double *s = &S[(size_t)p * N + n];
                        *s = al * *s + d * x[p] * Bv[n];
                        acc += *s * Cv[n];
                    }
                    yr[p] = (real)(acc + Dp[h] * x[p]);
                }
            }
            if (Sfinal)
                for (int j = 0; j < P * N; j++) Sfinal[(size_t)b * ldS + (size_t)h * P * N + j] = rev ? 0 : (real)S[j];
        }
    free(S);
}

typedef struct {
    const real *xbc, *dt, *A_log, *Dp, *w;
    int ld, B, T, H, P, G, N, rev_from;
    const uint8_t *f;
    const real *S0;
    size_t ldS;
    real *y;
} KtSsd;

static double kt_ssd_loss(const KtSsd *c) {
    naive_ssd(c->xbc, c->ld, c->dt, c->A_log, c->Dp, c->y, c->B, c->T, c->H, c->P, c->G, c->N, c->f, c->rev_from,
              c->S0, NULL, c->ldS);
    double L = 0;
    for (size_t i = 0; i < (size_t)c->B * c->T * c->H * c->P; i++) L += (double)c->w[i] * c->y[i];
    return L;
}

/* ∂L/∂v by central differences of the naive forward. */
static double kt_ssd_fd(KtSsd *c, real *v) {
    real v0 = *v, h = (real)1e-5 * (1 + fabs(v0));
    *v = v0 + h;
    double lp = kt_ssd_loss(c);
    *v = v0 - h;
    double lm = kt_ssd_loss(c);
    *v = v0;
    return (lp - lm) / (2 * h);
}

static void kt_ssd_case(Rng *r, int B, int T, int H, int P, int G, int N, int chunk, int flags_kind, int rev_from,
                        int use_s0) {
    int I = H * P, ld = I + 2 * G * N + 3, nck = EID_CDIV(T, chunk);
    size_t M = (size_t)B * T, ldS = (size_t)H * P * N + 2, ns = (size_t)B * ldS;
    real *xbc = kt_alloc(M * ld), *dt = kt_alloc(M * H), *A_log = kt_alloc(H), *Dp = kt_alloc(H);
    real *y = kt_alloc(M * I), *yn = kt_alloc(M * I), *Sck = kt_alloc((size_t)B * H * nck * P * N);
    real *S0 = kt_alloc(ns), *Sf = kt_alloc(ns), *Sfn = kt_alloc(ns), *w = kt_alloc(M * I);
    kt_fill(xbc, M * ld, r, 1), kt_fill(S0, ns, r, 1), kt_fill(w, M * I, r, 1), kt_fill(Dp, H, r, 1);
    for (size_t i = 0; i < M * H; i++) dt[i] = (real)(0.02 + 0.8 * rng_uniform(r));
    for (int h = 0; h < H; h++) A_log[h] = (real)(-1 + 2.5 * rng_uniform(r));
    uint8_t *f = flags_kind == 0 ? NULL : flags_kind == 1 ? kt_flags(r, B, T, 0.08, 0.12) : kt_flags_prefix(r, B, T, 0.05, 0.1);
    if (f && use_s0) /* row 0 continues from S0; the others may reset at their first token */
        f[0] &= (uint8_t)~FLAG_SEG_START;
    const real *s0 = use_s0 ? S0 : NULL;
    char tag[128];
    snprintf(tag, sizeof tag, "ssd B=%d T=%d H=%d P=%d G=%d N=%d Q=%d flags=%d rev_from=%d%s", B, T, H, P, G, N, chunk,
             flags_kind, rev_from, use_s0 ? " S0" : "");
    k_ssd_fwd(xbc, ld, dt, A_log, Dp, y, Sck, B, T, H, P, G, N, chunk, f, rev_from, s0, Sf, ldS);
    naive_ssd(xbc, ld, dt, A_log, Dp, yn, B, T, H, P, G, N, f, rev_from, s0, Sfn, ldS);
    CHECK(t_rel_err(y, yn, M * I, 1e-3) < 1e-10, "%s: forward vs naive (%.3g)", tag, t_rel_err(y, yn, M * I, 1e-3));
    double es = 0;
    for (int b = 0; b < B; b++) es = t_worst(es, t_rel_err(Sf + b * ldS, Sfn + b * ldS, (size_t)H * P * N, 1e-3));
    CHECK(es < 1e-10, "%s: Sfinal vs naive (%.3g)", tag, es);
    /* two parts through the state == one pass (forward heads: the state is what decoding carries) */
    int p = T / 3 + 1;
    if (rev_from == H && p < T) {
        int T2 = T - p;
        real *x1 = kt_alloc((size_t)B * p * ld), *x2 = kt_alloc((size_t)B * T2 * ld), *d1 = kt_alloc((size_t)B * p * H);
        real *d2 = kt_alloc((size_t)B * T2 * H), *y1 = kt_alloc((size_t)B * p * I), *y2 = kt_alloc((size_t)B * T2 * I);
        real *mid = kt_alloc(ns), *S1 = kt_alloc((size_t)B * H * T * P * N);
        uint8_t *f1 = f ? eid_xmalloc((size_t)B * p) : NULL, *f2 = f ? eid_xmalloc((size_t)B * T2) : NULL;
        for (int b = 0; b < B; b++) {
            memcpy(x1 + (size_t)b * p * ld, xbc + (size_t)b * T * ld, sizeof(real) * p * ld);
            memcpy(x2 + (size_t)b * T2 * ld, xbc + ((size_t)b * T + p) * ld, sizeof(real) * T2 * ld);
            memcpy(d1 + (size_t)b * p * H, dt + (size_t)b * T * H, sizeof(real) * p * H);
            memcpy(d2 + (size_t)b * T2 * H, dt + ((size_t)b * T + p) * H, sizeof(real) * T2 * H);
            if (f) memcpy(f1 + (size_t)b * p, f + (size_t)b * T, p), memcpy(f2 + (size_t)b * T2, f + (size_t)b * T + p, T2);
        }
        if (s0) memcpy(mid, s0, sizeof(real) * ns);
        k_ssd_fwd(x1, ld, d1, A_log, Dp, y1, S1, B, p, H, P, G, N, chunk, f1, H, s0 ? mid : NULL, mid, ldS);
        k_ssd_fwd(x2, ld, d2, A_log, Dp, y2, S1, B, T2, H, P, G, N, chunk, f2, H, mid, mid, ldS);
        double e = 0;
        for (int b = 0; b < B; b++) {
            e = t_worst(e, t_rel_err(y1 + (size_t)b * p * I, yn + (size_t)b * T * I, (size_t)p * I, 1e-3));
            e = t_worst(e, t_rel_err(y2 + (size_t)b * T2 * I, yn + ((size_t)b * T + p) * I, (size_t)T2 * I, 1e-3));
            e = t_worst(e, t_rel_err(mid + b * ldS, Sfn + b * ldS, (size_t)H * P * N, 1e-3));
        }
        CHECK(e < 1e-10, "%s: two parts through the state vs one pass (%.3g)", tag, e);
        free(x1), free(x2), free(d1), free(d2), free(y1), free(y2), free(mid), free(S1), free(f1), free(f2);
    }
    /* backward vs central differences of the naive forward; L = Σ w·y (w non-zero at PAD too: ignored) */
    real *dx = kt_alloc(M * ld), *ddt = kt_alloc(M * H), *dA = kt_alloc(H), *dD = kt_alloc(H);
    real *work = kt_alloc(k_ssd_work(B, T, H, N));
    k_ssd_bwd(xbc, ld, dt, A_log, Dp, w, Sck, dx, ddt, dA, dD, B, T, H, P, G, N, chunk, f, rev_from, work);
    KtSsd c = {xbc, dt, A_log, Dp, w, ld, B, T, H, P, G, N, rev_from, f, s0, ldS, yn};
    double worst = 0;
    for (int k = 0; k < 24; k++) {
        size_t m = rng_below(r, M);
        int col = (int)rng_below(r, (uint64_t)(I + 2 * G * N));
        worst = t_worst(worst, grad_rel_kt(dx[m * ld + col], kt_ssd_fd(&c, &xbc[m * ld + col])));
        size_t j = rng_below(r, M * H);
        worst = t_worst(worst, grad_rel_kt(ddt[j], kt_ssd_fd(&c, &dt[j])));
    }
    for (int h = 0; h < H; h++) {
        worst = t_worst(worst, grad_rel_kt(dA[h], kt_ssd_fd(&c, &A_log[h])));
        worst = t_worst(worst, grad_rel_kt(dD[h], kt_ssd_fd(&c, &Dp[h])));
    }
    CHECK(worst < 1e-6, "%s: backward vs central differences (%.3g)", tag, worst);
    double epad = 0;
    for (size_t m = 0; f && m < M; m++)
        if (f[m] & FLAG_PAD) {
            for (int col = 0; col < I + 2 * G * N; col++) epad = t_worst(epad, fabs((double)dx[m * ld + col]));
            for (int h = 0; h < H; h++) epad = t_worst(epad, fabs((double)ddt[m * H + h]));
        }
    CHECK(epad == 0, "%s: gradient at PAD tokens is %.3g, not 0", tag, epad);
    free(xbc), free(dt), free(A_log), free(Dp), free(y), free(yn), free(Sck), free(S0), free(Sf), free(Sfn), free(w);
    free(dx), free(ddt), free(dA), free(dD), free(work), free(f);
}

static void kt_ssd(void) {
    Rng r;
    rng_init(&r, 77, 0);
    kt_ssd_case(&r, 2, 13, 2, 3, 1, 4, 4, 0, 2, 0);
    kt_ssd_case(&r, 2, 13, 2, 3, 1, 4, 4, 0, 2, 1);
    kt_ssd_case(&r, 3, 21, 4, 2, 2, 3, 5, 1, 4, 1);
    kt_ssd_case(&r, 3, 21, 4, 2, 2, 3, 8, 1, 4, 0);
    kt_ssd_case(&r, 3, 23, 4, 2, 2, 3, 5, 2, 2, 1); /* reverse heads 2, 3 */
    kt_ssd_case(&r, 2, 19, 4, 3, 1, 2, 64, 2, 2, 0); /* one chunk */
    kt_ssd_case(&r, 2, 17, 2, 2, 1, 3, 3, 2, 0, 1);  /* all heads reverse */
    kt_ssd_case(&r, 2, 17, 2, 2, 1, 3, 1, 2, 1, 1);  /* chunk 1 */
    kt_ssd_case(&r, 1, 40, 3, 2, 3, 2, 16, 1, 3, 1);
}

/* ---------------------------------------------------------------- GLA */

/* Naive GLA, docs/layers.md §4.2, per (b, h) token by token in double; directions, resets, PAD and S0 /
 * Sfinal as naive_ssd. */
static void naive_gla(const real *q, const real *k, const real *v, const real *gk, real *o, int B, int T, int H, int dk,
                      int dv, real scale, const uint8_t *f, int rev_from, const real *S0, real *Sfinal, size_t ldS) {
    int HK = H * dk, HV = H * dv;
    size_t kv = (size_t)dk * dv;
    double *S = eid_xcalloc(kv, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int rev = h >= rev_from;
            size_t base = (size_t)b * T;
            for (size_t j = 0; j < kv; j++) S[j] = S0 && !rev ? S0[(size_t)b * ldS + (size_t)h * kv + j] : 0;
            for (int u = 0; u < T; u++) {
                int t = rev ? T - 1 - u : u;
                size_t i = base + t;
                const real *qt = q + i * HK + h * dk, *kt = k + i * HK + h * dk, *gt = gk + i * HK + h * dk;
                const real *vt = v + i * HV + h * dv;
                real *ot = o + i * HV + h * dv;
                if (f && (f[i] & FLAG_PAD)) {
                    for (int e = 0; e < dv; e++) ot[e] = 0;
                    continue;
                }
                int reset = rev ? !kt_rev_carries(f, base, t, T) : f && (f[i] & FLAG_SEG_START);
                for (int d = 0; d < dk; d++) {
                    double a = reset ? 0 : exp((double)gt[d]);
                    for (int e = 0; e < dv; e++) S[(size_t)d * dv + e] = a * S[(size_t)d * dv + e] + kt[d] * vt[e];
                }
                for (int e = 0; e < dv; e++) {
                    double acc = 0;
                    for (int d = 0; d < dk; d++) acc += S[(size_t)d * dv + e] * scale * qt[d];
                    ot[e] = (real)acc;
                }
            }
            if (Sfinal)
                for (size_t j = 0; j < kv; j++) Sfinal[(size_t)b * ldS + (size_t)h * kv + j] = rev ? 0 : (real)S[j];
        }
    free(S);
}

typedef struct {
    real *q, *k, *v, *gk, *o;
    const real *w, *S0;
    int B, T, H, dk, dv, rev_from;
    real scale;
    const uint8_t *f;
    size_t ldS;
} KtGla;

static double kt_gla_loss(const KtGla *c) {
    naive_gla(c->q, c->k, c->v, c->gk, c->o, c->B, c->T, c->H, c->dk, c->dv, c->scale, c->f, c->rev_from, c->S0, NULL,
              c->ldS);
    double L = 0;
    for (size_t i = 0; i < (size_t)c->B * c->T * c->H * c->dv; i++) L += (double)c->w[i] * c->o[i];
    return L;
}

static double kt_gla_fd(KtGla *c, real *x) {
    real x0 = *x, h = (real)1e-5 * (1 + fabs(x0));
    *x = x0 + h;
    double lp = kt_gla_loss(c);
    *x = x0 - h;
    double lm = kt_gla_loss(c);
    *x = x0;
    return (lp - lm) / (2 * h);
}

static void kt_gla_case(Rng *r, int B, int T, int H, int dk, int dv, int chunk, int flags_kind, int rev_from,
                        int use_s0) {
    int HK = H * dk, HV = H * dv, nck = EID_CDIV(T, chunk);
    size_t M = (size_t)B * T, kv = (size_t)dk * dv, ldS = (size_t)H * kv + 3, ns = (size_t)B * ldS;
    real scale = (real)(1 / sqrt((double)dk));
    real *q = kt_alloc(M * HK), *k = kt_alloc(M * HK), *gk = kt_alloc(M * HK), *v = kt_alloc(M * HV);
    real *o = kt_alloc(M * HV), *on = kt_alloc(M * HV), *w = kt_alloc(M * HV), *Sin = kt_alloc((size_t)B * nck * H * kv);
    real *S0 = kt_alloc(ns), *Sf = kt_alloc(ns), *Sfn = kt_alloc(ns);
    kt_fill(q, M * HK, r, 1), kt_fill(k, M * HK, r, 1), kt_fill(v, M * HV, r, 1), kt_fill(w, M * HV, r, 1);
    kt_fill(S0, ns, r, 1);
    for (size_t i = 0; i < M * HK; i++) gk[i] = (real)(-0.02 - 1.5 * rng_uniform(r));
    uint8_t *f = flags_kind == 0 ? NULL : flags_kind == 1 ? kt_flags(r, B, T, 0.08, 0.12) : kt_flags_prefix(r, B, T, 0.05, 0.1);
    if (f && use_s0) f[0] &= (uint8_t)~FLAG_SEG_START;
    const real *s0 = use_s0 ? S0 : NULL;
    char tag[128];
    snprintf(tag, sizeof tag, "gla B=%d T=%d H=%d dk=%d dv=%d C=%d flags=%d rev_from=%d%s", B, T, H, dk, dv, chunk,
             flags_kind, rev_from, use_s0 ? " S0" : "");
    k_gla_chunk_fwd(q, k, v, gk, o, B, T, H, dk, dv, scale, chunk, f, rev_from, s0, Sf, ldS, Sin);
    naive_gla(q, k, v, gk, on, B, T, H, dk, dv, scale, f, rev_from, s0, Sfn, ldS);
    CHECK(t_rel_err(o, on, M * HV, 1e-3) < 1e-10, "%s: forward vs naive (%.3g)", tag, t_rel_err(o, on, M * HV, 1e-3));
    double es = 0;
    for (int b = 0; b < B; b++) es = t_worst(es, t_rel_err(Sf + b * ldS, Sfn + b * ldS, (size_t)H * kv, 1e-3));
    CHECK(es < 1e-10, "%s: Sfinal vs naive (%.3g)", tag, es);
    int p = T / 3 + 1;
    if (rev_from == H && p < T) { /* two parts through the state == one pass */
        int T2 = T - p;
        real *parts[2][5];
        uint8_t *fp[2] = {NULL, NULL};
        int len[2] = {p, T2}, st[2] = {0, p};
        real *mid = kt_alloc(ns), *Sc = kt_alloc((size_t)B * T * H * kv);
        if (s0) memcpy(mid, s0, sizeof(real) * ns);
        double e = 0;
        for (int pi = 0; pi < 2; pi++) {
            int n = len[pi];
            const real *src[4] = {q, k, gk, v};
            int wd[4] = {HK, HK, HK, HV};
            for (int a = 0; a < 4; a++) {
                parts[pi][a] = kt_alloc((size_t)B * n * wd[a]);
                for (int b = 0; b < B; b++)
                    memcpy(parts[pi][a] + (size_t)b * n * wd[a], src[a] + ((size_t)b * T + st[pi]) * wd[a],
                           sizeof(real) * n * wd[a]);
            }
            parts[pi][4] = kt_alloc((size_t)B * n * HV);
            if (f) {
                fp[pi] = eid_xmalloc((size_t)B * n);
                for (int b = 0; b < B; b++) memcpy(fp[pi] + (size_t)b * n, f + (size_t)b * T + st[pi], n);
            }
            k_gla_chunk_fwd(parts[pi][0], parts[pi][1], parts[pi][3], parts[pi][2], parts[pi][4], B, n, H, dk, dv, scale,
                            chunk, fp[pi], H, pi || s0 ? mid : NULL, mid, ldS, Sc);
            for (int b = 0; b < B; b++)
                e = t_worst(e, t_rel_err(parts[pi][4] + (size_t)b * n * HV, on + ((size_t)b * T + st[pi]) * HV,
                                      (size_t)n * HV, 1e-3));
            for (int a = 0; a < 5; a++) free(parts[pi][a]);
            free(fp[pi]);
        }
        for (int b = 0; b < B; b++) e = t_worst(e, t_rel_err(mid + b * ldS, Sfn + b * ldS, (size_t)H * kv, 1e-3));
        CHECK(e < 1e-10, "%s: two parts through the state vs one pass (%.3g)", tag, e);
        free(mid), free(Sc);
    }
    /* backward vs central differences of the naive forward */
    real *dq = kt_alloc(M * HK), *dk_ = kt_alloc(M * HK), *dg = kt_alloc(M * HK), *dv_ = kt_alloc(M * HV);
    k_gla_chunk_bwd(q, k, v, gk, w, Sin, dq, dk_, dv_, dg, B, T, H, dk, dv, scale, chunk, f, rev_from);
    KtGla c = {q, k, v, gk, on, w, s0, B, T, H, dk, dv, rev_from, scale, f, ldS};
    double worst = 0;
    for (int it = 0; it < 16; it++) {
        size_t i = rng_below(r, M * HK), j = rng_below(r, M * HV);
        worst = t_worst(worst, grad_rel_kt(dq[i], kt_gla_fd(&c, &q[i])));
        worst = t_worst(worst, grad_rel_kt(dk_[i], kt_gla_fd(&c, &k[i])));
        worst = t_worst(worst, grad_rel_kt(dg[i], kt_gla_fd(&c, &gk[i])));
        worst = t_worst(worst, grad_rel_kt(dv_[j], kt_gla_fd(&c, &v[j])));
    }
    CHECK(worst < 1e-6, "%s: backward vs central differences (%.3g)", tag, worst);
    double epad = 0;
    for (size_t m = 0; f && m < M; m++)
        if (f[m] & FLAG_PAD) {
            for (int d = 0; d < HK; d++)
                epad = t_worst(epad, t_worst(fabs((double)dq[m * HK + d]), t_worst(fabs((double)dk_[m * HK + d]), fabs((double)dg[m * HK + d]))));
            for (int d = 0; d < HV; d++) epad = t_worst(epad, fabs((double)dv_[m * HV + d]));
        }
    CHECK(epad == 0, "%s: gradient at PAD tokens is %.3g, not 0", tag, epad);
    free(q), free(k), free(gk), free(v), free(o), free(on), free(w), free(Sin), free(S0), free(Sf), free(Sfn);
    free(dq), free(dk_), free(dg), free(dv_), free(f);
}

static void kt_gla(void) {
    Rng r;
    rng_init(&r, 78, 0);
    kt_gla_case(&r, 2, 13, 2, 3, 2, 4, 0, 2, 0);
    kt_gla_case(&r, 2, 13, 2, 3, 2, 4, 0, 2, 1);
    kt_gla_case(&r, 3, 37, 2, 2, 3, 16, 1, 2, 1); /* sub-chunks inside a chunk */
    kt_gla_case(&r, 3, 40, 2, 2, 3, 32, 1, 2, 0);
    kt_gla_case(&r, 3, 41, 4, 2, 2, 20, 2, 2, 1); /* reverse heads 2, 3 */
    kt_gla_case(&r, 2, 19, 2, 3, 2, 64, 2, 1, 0); /* one chunk */
    kt_gla_case(&r, 2, 17, 2, 2, 2, 5, 2, 0, 1);  /* all heads reverse */
    kt_gla_case(&r, 2, 9, 1, 2, 2, 1, 2, 0, 0);   /* chunk 1 */
}

static void kt_chunked(void) {
    kt_ssd();
    kt_gla();
}
