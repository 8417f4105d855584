/* kt_scan.h — the Longhorn and Mamba-1 scans (docs/layers.md §2.2, §2.5, §1.2, §1.4) and the
 * elementwise kernels around them (kernels/selective.h, k_silu_bwd, k_copy), against naive
 * references: segment resets, PAD tokens absent, an initial state S0 with a row stride, the final
 * state, two parts through the state == one pass, reverse channels (docs/layers.md §8.1) against the
 * naive forward scan run on the literally time-reversed rows, backward by finite differences (zeros
 * at PAD), and the one-token step kernels. */
#include "kernels/mamba.h"
#include "kernels/selective.h"

typedef struct {
    int mamba; /* 1: Mamba-1 (e = Δ, A used), 0: Longhorn (e = ε) */
    int B, T, I, N, chunk, rev_from, ld;
    const uint8_t *f;
    real *u, *e, *A, *kq; /* kq [B·T, ld]: k (or B) at column 1, q (or C) at column 1+N */
    real *w, *y;          /* loss weights, output */
    const real *S0;       /* [B, ldS] rows, state [I, N] at offset 0; may be NULL */
    size_t ldS;
} KtScan;

static void kt_scan_fwd(const KtScan *c, real *y, const real *S0, real *Sf, real *Sck, int T, const uint8_t *f,
                        const real *u, const real *e, const real *kq) {
    if (c->mamba)
        k_mamba_scan_fwd(u, e, c->A, kq + 1, kq + 1 + c->N, c->ld, y, c->B, T, c->I, c->N, c->chunk, f, c->rev_from,
                         S0, Sf, c->ldS, Sck);
    else
        k_longhorn_scan_fwd(u, e, kq + 1, kq + 1 + c->N, c->ld, y, c->B, T, c->I, c->N, c->chunk, f, c->rev_from, S0,
                            Sf, c->ldS, Sck);
}

/* One channel of the naive recurrence over the tokens idx[0..L) in processing order, state reset
 * before token j when res[j]; S from s0 (or zeros). y at those tokens; final state into sfin. */
static void kt_naive_chan(const KtScan *c, int i, const size_t *idx, const uint8_t *res, int L, const real *s0,
                          double *sfin, double *y) {
    int I = c->I, N = c->N;
    double S[256];
    for (int n = 0; n < N; n++) S[n] = s0 ? s0[(size_t)i * N + n] : 0;
    for (int j = 0; j < L; j++) {
        size_t m = idx[j];
        const real *kt = c->kq + m * c->ld + 1, *qt = kt + N;
        if (res[j]) memset(S, 0, sizeof S);
        double acc = 0;
        for (int n = 0; n < N; n++) {
            double a, b, ev = c->e[m * I + i], uv = c->u[m * I + i];
            if (c->mamba) a = exp(ev * c->A[(size_t)i * N + n]), b = ev * kt[n] * uv;
            else a = 1 - ev * kt[n] * kt[n], b = ev * uv * kt[n];
            S[n] = a * S[n] + b;
            acc += S[n] * qt[n];
        }
        y[m * I + i] = acc;
    }
    for (int n = 0; n < N; n++) sfin[n] = S[n];
}

/* Naive y [B,T,I] and final states [B, I, N] (0 for reverse channels). */
static void kt_naive_scan(const KtScan *c, double *y, double *Sf) {
    int B = c->B, T = c->T, I = c->I, N = c->N;
    size_t *idx = eid_xmalloc(sizeof(size_t) * (T + 1));
    uint8_t *res = eid_xmalloc((size_t)T + 1);
    for (size_t j = 0; j < (size_t)B * T * I; j++) y[j] = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < I; i++) {
            int L = 0, rev = i >= c->rev_from;
            for (int s = 0; s < T; s++) {
                int t = rev ? T - 1 - s : s; /* the reverse channels read the row time-reversed */
                size_t m = (size_t)b * T + t;
                if (c->f && (c->f[m] & FLAG_PAD)) continue;
                idx[L] = m;
                if (!rev) res[L] = c->f && (c->f[m] & FLAG_SEG_START);
                else res[L] = t + 1 >= T || !c->f || (c->f[m + 1] & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START));
                L++;
            }
            double sf[256];
            kt_naive_chan(c, i, idx, res, L, rev || !c->S0 ? NULL : c->S0 + (size_t)b * c->ldS, sf, y);
            for (int n = 0; n < N; n++) Sf[((size_t)b * I + i) * N + n] = rev ? 0 : sf[n];
        }
    free(idx), free(res);
}

static double kt_scan_loss(void *ctx) {
    KtScan *c = ctx;
    kt_scan_fwd(c, c->y, c->S0, NULL, NULL, c->T, c->f, c->u, c->e, c->kq);
    double L = 0;
    for (size_t j = 0; j < (size_t)c->B * c->T * c->I; j++) L += (double)c->w[j] * c->y[j];
    return L;
}

/* Flags: per row a prefix (no CAUSAL) of random length, then CAUSAL; SEG_START now and then (half the
 * rows at t = 0); PAD anywhere with probability 0.12. */
static uint8_t *kt_scan_flags(Rng *r, int B, int T) {
    uint8_t *f = eid_xcalloc((size_t)B * T, 1);
    for (int b = 0; b < B; b++) {
        int P = (int)rng_below(r, (uint64_t)T + 1);
        for (int t = 0; t < T; t++) {
            uint8_t v = t < P ? 0 : FLAG_CAUSAL;
            if ((t == 0 && b % 2 == 0) || rng_uniform(r) < 0.1) v |= FLAG_SEG_START;
            if (rng_uniform(r) < 0.12) v = FLAG_PAD;
            f[(size_t)b * T + t] = v;
        }
    }
    return f;
}

static void kt_scan_case(Rng *r, int mamba, int B, int T, int I, int N, int chunk, int rev_from, int use_flags,
                         int do_fd) {
    KtScan c = {mamba, B, T, I, N, chunk, rev_from, 2 * N + 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0};
    size_t M = (size_t)B * T, nI = M * I, nS = (size_t)B * I * N, nck = EID_CDIV(T, chunk);
    c.ldS = (size_t)I * N + 5; /* a row stride wider than the state, like the decode-state layout */
    uint8_t *f = use_flags ? kt_scan_flags(r, B, T) : NULL;
    c.f = f;
    c.u = kt_alloc(nI), c.e = kt_alloc(nI), c.A = kt_alloc((size_t)I * N), c.kq = kt_alloc(M * c.ld);
    c.w = kt_alloc(nI), c.y = kt_alloc(nI);
    real *S0 = kt_alloc((size_t)B * c.ldS), *Sf = kt_alloc((size_t)B * c.ldS), *Sck = kt_alloc((size_t)B * nck * I * N);
    kt_fill(c.u, nI, r, 1), kt_fill(c.w, nI, r, 1), kt_fill(S0, (size_t)B * c.ldS, r, 1);
    kt_fill(c.kq, M * c.ld, r, 0.7);
    for (int j = 0; j < I * N; j++) c.A[j] = -(0.1 + 3 * rng_uniform(r));
    for (size_t m = 0; m < M; m++) {
        double K2 = 0;
        for (int n = 0; n < N; n++) K2 += c.kq[m * c.ld + 1 + n] * c.kq[m * c.ld + 1 + n];
        for (int i = 0; i < I; i++) {
            double v = 0.05 + 0.9 * rng_uniform(r);
            c.e[m * I + i] = (real)(mamba ? v : v / (1 + v * K2)); /* Δ > 0; ε = β/(1+β‖k‖²) */
        }
    }
    c.S0 = S0;
    char tag[128];
    snprintf(tag, sizeof tag, "%s scan B=%d T=%d I=%d N=%d chunk=%d rev_from=%d%s", mamba ? "mamba" : "longhorn", B, T,
             I, N, chunk, rev_from, f ? " flags" : "");
    /* forward, final state, chunk-boundary states produced alongside */
    double *yn = malloc(sizeof(double) * (nI ? nI : 1)), *Sfn = malloc(sizeof(double) * (nS ? nS : 1));
    kt_naive_scan(&c, yn, Sfn);
    for (size_t j = 0; j < (size_t)B * c.ldS; j++) Sf[j] = 99; /* the padding between rows must survive */
    kt_scan_fwd(&c, c.y, S0, Sf, Sck, T, f, c.u, c.e, c.kq);
    double ey = 0, es = 0, ypad = 0, spad = 0, ymax = 1e-3;
    for (size_t j = 0; j < nI; j++) ymax = t_worst(ymax, fabs(yn[j]));
    for (size_t j = 0; j < nI; j++) ey = t_worst(ey, fabs(c.y[j] - yn[j]) / ymax);
    for (int b = 0; b < B; b++) {
        for (size_t j = 0; j < (size_t)I * N; j++)
            es = t_worst(es, fabs(Sf[(size_t)b * c.ldS + j] - Sfn[(size_t)b * I * N + j]) / fmax(1, fabs(Sfn[(size_t)b * I * N + j])));
        for (size_t j = (size_t)I * N; j < c.ldS; j++) spad = t_worst(spad, fabs(Sf[(size_t)b * c.ldS + j] - 99));
    }
    for (size_t m = 0; f && m < M; m++)
        if (f[m] & FLAG_PAD)
            for (int i = 0; i < I; i++) ypad = t_worst(ypad, fabs(c.y[m * I + i]));
    CHECK(ey < 1e-12, "%s: y vs naive (reverse channels: time-reversed rows) rel err %.3g", tag, ey);
    CHECK(es < 1e-12, "%s: final state vs naive err %.3g", tag, es);
    CHECK(spad == 0 && ypad == 0, "%s: wrote outside the state rows (%.3g) or y != 0 at PAD (%.3g)", tag, spad, ypad);
    /* two parts through the state == one pass (reverse channels only carry nothing when every token is CAUSAL) */
    int p = T / 3;
    if (p > 0 && (rev_from == I || !f)) {
        real *mid = kt_alloc((size_t)B * c.ldS), *y1 = kt_alloc((size_t)B * p * I), *y2 = kt_alloc((size_t)B * (T - p) * I);
        real *u1 = kt_alloc((size_t)B * p * I), *u2 = kt_alloc((size_t)B * (T - p) * I);
        real *e1 = kt_alloc((size_t)B * p * I), *e2 = kt_alloc((size_t)B * (T - p) * I);
        real *q1 = kt_alloc((size_t)B * p * c.ld), *q2 = kt_alloc((size_t)B * (T - p) * c.ld);
        uint8_t *f1 = f ? eid_xmalloc((size_t)B * p) : NULL, *f2 = f ? eid_xmalloc((size_t)B * (T - p)) : NULL;
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)b * T;
            memcpy(u1 + (size_t)b * p * I, c.u + o * I, sizeof(real) * p * I);
            memcpy(u2 + (size_t)b * (T - p) * I, c.u + (o + p) * I, sizeof(real) * (T - p) * I);
            memcpy(e1 + (size_t)b * p * I, c.e + o * I, sizeof(real) * p * I);
            memcpy(e2 + (size_t)b * (T - p) * I, c.e + (o + p) * I, sizeof(real) * (T - p) * I);
            memcpy(q1 + (size_t)b * p * c.ld, c.kq + o * c.ld, sizeof(real) * p * c.ld);
            memcpy(q2 + (size_t)b * (T - p) * c.ld, c.kq + (o + p) * c.ld, sizeof(real) * (T - p) * c.ld);
            if (f) memcpy(f1 + (size_t)b * p, f + o, p), memcpy(f2 + (size_t)b * (T - p), f + o + p, T - p);
        }
        memcpy(mid, S0, sizeof(real) * B * c.ldS);
        kt_scan_fwd(&c, y1, mid, mid, NULL, p, f1, u1, e1, q1); /* in place: Sfinal == S0 */
        kt_scan_fwd(&c, y2, mid, mid, NULL, T - p, f2, u2, e2, q2);
        double e = 0;
        for (int b = 0; b < B; b++) {
            for (size_t j = 0; j < (size_t)p * I; j++) e = t_worst(e, fabs(y1[(size_t)b * p * I + j] - c.y[(size_t)b * T * I + j]) / ymax);
            for (size_t j = 0; j < (size_t)(T - p) * I; j++)
                e = t_worst(e, fabs(y2[(size_t)b * (T - p) * I + j] - c.y[((size_t)b * T + p) * I + j]) / ymax);
            for (size_t j = 0; j < (size_t)I * N; j++) e = t_worst(e, fabs(mid[(size_t)b * c.ldS + j] - Sf[(size_t)b * c.ldS + j]));
        }
        CHECK(e < 1e-12, "%s: two parts through S0/Sfinal vs one pass (%.3g)", tag, e);
        free(mid), free(y1), free(y2), free(u1), free(u2), free(e1), free(e2), free(q1), free(q2), free(f1), free(f2);
    }
    /* the step kernel from S0 == forward (no flags, all forward channels) */
    if (!f && rev_from == I) {
        size_t lds = (size_t)I * N + 3; /* a decode-state row stride with room for other state */
        real *S = kt_alloc((size_t)B * lds), *ys = kt_alloc((size_t)B * I), *us = kt_alloc((size_t)B * I), *es_ = kt_alloc((size_t)B * I);
        real *qs = kt_alloc((size_t)B * c.ld), *ystep = kt_alloc(nI);
        for (int b = 0; b < B; b++) memcpy(S + (size_t)b * lds, S0 + (size_t)b * c.ldS, sizeof(real) * I * N);
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) {
                size_t m = (size_t)b * T + t;
                memcpy(us + (size_t)b * I, c.u + m * I, sizeof(real) * I);
                memcpy(es_ + (size_t)b * I, c.e + m * I, sizeof(real) * I);
                memcpy(qs + (size_t)b * c.ld, c.kq + m * c.ld, sizeof(real) * c.ld);
            }
            if (mamba) k_mamba_scan_step(S, lds, us, es_, c.A, qs + 1, qs + 1 + N, c.ld, ys, B, I, N);
            else k_longhorn_scan_step(S, lds, us, es_, qs + 1, qs + 1 + N, c.ld, ys, B, I, N);
            for (int b = 0; b < B; b++) memcpy(ystep + ((size_t)b * T + t) * I, ys + (size_t)b * I, sizeof(real) * I);
        }
        double e = t_rel_err(ystep, c.y, nI, 1e-3), e2 = 0;
        for (int b = 0; b < B; b++) e2 = t_worst(e2, t_rel_err(S + (size_t)b * lds, Sf + (size_t)b * c.ldS, (size_t)I * N, 1));
        CHECK(e < 1e-12 && e2 < 1e-12, "%s: step loop vs forward: y %.3g, state %.3g", tag, e, e2);
        free(S), free(ys), free(us), free(es_), free(qs), free(ystep);
    }
    /* backward vs finite differences of L = Σ w ⊙ y (with S0), outputs written over garbage */
    real *du = kt_alloc(nI), *de = kt_alloc(nI), *dkq = kt_alloc(M * c.ld), *dA = kt_alloc((size_t)I * N);
    size_t nw = mamba ? k_mamba_scan_bwd_work(B, T, I, N, chunk) : k_longhorn_scan_bwd_work(B, T, I, N, chunk);
    real *work = kt_alloc(nw);
    for (size_t j = 0; j < nI; j++) de[j] = 7;
    for (size_t j = 0; j < M * c.ld; j++) dkq[j] = 7;
    for (int j = 0; j < I * N; j++) dA[j] = 7;
    if (mamba)
        k_mamba_scan_bwd(c.u, c.e, c.A, c.kq + 1, c.kq + 1 + N, c.ld, c.w, Sck, du, de, dA, dkq + 1, dkq + 1 + N, B, T,
                         I, N, chunk, f, rev_from, work);
    else
        k_longhorn_scan_bwd(c.u, c.e, c.kq + 1, c.kq + 1 + N, c.ld, c.w, Sck, du, de, dkq + 1, dkq + 1 + N, B, T, I, N,
                            chunk, f, rev_from, work);
    double padg = 0;
    for (size_t m = 0; f && m < M; m++)
        if (f[m] & FLAG_PAD) {
            for (int i = 0; i < I; i++) padg = t_worst(padg, t_worst(fabs(du[m * I + i]), fabs(de[m * I + i])));
            for (int n = 0; n < 2 * N; n++) padg = t_worst(padg, fabs(dkq[m * c.ld + 1 + n]));
        }
    CHECK(padg == 0, "%s: gradient at PAD tokens %.3g, not 0", tag, padg);
    if (do_fd) {
        struct { const char *name; real *x, *g; size_t n, stride, off, cols; } ts[5] = {
            {"u", c.u, du, nI, I, 0, I}, {mamba ? "delta" : "eps", c.e, de, nI, I, 0, I},
            {mamba ? "B" : "k", c.kq, dkq, M * c.ld, c.ld, 1, N}, {mamba ? "C" : "q", c.kq, dkq, M * c.ld, c.ld, 1 + N, N},
            {"A", c.A, dA, (size_t)I * N, N, 0, N}};
        for (int ti = 0; ti < (mamba ? 5 : 4); ti++) {
            double gmax = 1e-6, worst = 0;
            size_t rows = ts[ti].n / ts[ti].stride;
            for (size_t rr = 0; rr < rows; rr++)
                for (size_t cc = 0; cc < ts[ti].cols; cc++) gmax = t_worst(gmax, fabs(ts[ti].g[rr * ts[ti].stride + ts[ti].off + cc]));
            for (int s = 0; s < 6; s++) {
                size_t j = rng_below(r, rows) * ts[ti].stride + ts[ti].off + rng_below(r, ts[ti].cols);
                double num = fd_estimate(&ts[ti].x[j], kt_scan_loss, &c, ts[ti].g[j]);
                worst = t_worst(worst, fabs(num - ts[ti].g[j]) / fmax(1e-3 * gmax, fabs(num) + fabs(ts[ti].g[j])));
            }
            CHECK(worst < 1e-6, "%s: gradient of %s vs finite differences off by %.3g", tag, ts[ti].name, worst);
        }
    }
    free(du), free(de), free(dkq), free(dA), free(work), free(yn), free(Sfn);
    free(c.u), free(c.e), free(c.A), free(c.kq), free(c.w), free(c.y), free(S0), free(Sf), free(Sck), free(f);
}

/* The elementwise kernels of kernels/selective.h, k_silu_bwd and k_copy. */
typedef struct { real *x; const real *w; int n; int which; const real *aux; int M, I, N; } KtEw;
static double kt_ew_loss(void *ctx) {
    KtEw *c = ctx;
    double L = 0;
    if (c->which == 0) /* Σ w ⊙ silu(x) */
        for (int j = 0; j < c->n; j++) L += c->w[j] * c->x[j] / (1 + exp(-c->x[j]));
    return L;
}

static double kt_sig(double v) { return 1 / (1 + exp(-v)); }

/* Σ_i deps_i ⊙ ε_i(braw, k) of one token (ε = β/(1+β‖k‖²), β = σ(braw + b)). */
typedef struct { const real *k, *braw, *bias, *deps; int I, N; } KtEps;
static double kt_eps_loss(void *ctx) {
    KtEps *c = ctx;
    double K2 = 0, L = 0;
    for (int n = 0; n < c->N; n++) K2 += c->k[n] * c->k[n];
    for (int i = 0; i < c->I; i++) {
        double bt = kt_sig(c->braw[i] + c->bias[i]);
        L += c->deps[i] * bt / (1 + bt * K2);
    }
    return L;
}

static void kt_selective(Rng *r) {
    int M = 13, I = 21, N = 5, ld = 2 * N + 3;
    size_t nI = (size_t)M * I;
    real *pre = kt_alloc(nI), *pre0 = kt_alloc(nI), *bias = kt_alloc(I), *dl = kt_alloc(nI), *g = kt_alloc(nI);
    kt_fill(pre0, nI, r, 3), kt_fill(bias, I, r, 1), kt_fill(g, nI, r, 1);
    pre0[0] = 30, pre0[1] = -30; /* both branches of softplus */
    memcpy(pre, pre0, sizeof(real) * nI);
    k_sel_delta_fwd(pre, bias, dl, M, I);
    double e = 0, e2 = 0;
    for (size_t j = 0; j < nI; j++) {
        double v = pre0[j] + bias[j % I], sp = v > 20 ? v : log1p(exp(v));
        e = t_worst(e, fabs(pre[j] - v) + fabs(dl[j] - sp) / fmax(1, sp));
    }
    CHECK(e < 1e-13, "k_sel_delta_fwd vs naive softplus (%.3g)", e);
    { /* backward's recomputation of Δ from the biased pre: the same bits */
        real *dl2 = kt_alloc(nI);
        k_sel_softplus(pre, dl2, M, I);
        CHECK(memcmp(dl2, dl, sizeof(real) * nI) == 0, "k_sel_softplus == the Δ k_sel_delta_fwd wrote, bit for bit");
        free(dl2);
    }
    memcpy(dl, g, sizeof(real) * nI);
    k_sel_delta_bwd(dl, pre, M, I);
    for (size_t j = 0; j < nI; j++) e2 = t_worst(e2, fabs(dl[j] - g[j] * kt_sig(pre[j])));
    CHECK(e2 < 1e-14, "k_sel_delta_bwd vs g·σ(pre) (%.3g)", e2);
    real *al = kt_alloc((size_t)I * N), *A = kt_alloc((size_t)I * N), *dA = kt_alloc((size_t)I * N), *ga = kt_alloc((size_t)I * N);
    kt_fill(al, (size_t)I * N, r, 1), kt_fill(dA, (size_t)I * N, r, 1), kt_fill(ga, (size_t)I * N, r, 1);
    real *ga0 = kt_alloc((size_t)I * N);
    memcpy(ga0, ga, sizeof(real) * I * N);
    k_sel_neg_exp(al, A, (size_t)I * N);
    k_sel_alog_bwd(dA, A, ga, (size_t)I * N);
    e = 0;
    for (int j = 0; j < I * N; j++) e = t_worst(e, fabs(A[j] + exp(al[j])) / exp(al[j]) + fabs(ga[j] - ga0[j] + dA[j] * exp(al[j])));
    CHECK(e < 1e-13, "k_sel_neg_exp / k_sel_alog_bwd vs −exp(A_log), dA ⊙ A (%.3g)", e);
    /* β, ε and the ε backward by finite differences of Σ deps ⊙ ε(braw, k) */
    real *braw = kt_alloc(nI), *beta = kt_alloc(nI), *eps = kt_alloc(nI), *deps = kt_alloc(nI), *dbraw = kt_alloc(nI);
    real *kk = kt_alloc((size_t)M * ld), *dk = kt_alloc((size_t)M * ld), *dk0 = kt_alloc((size_t)M * ld);
    kt_fill(braw, nI, r, 1.5), kt_fill(kk, (size_t)M * ld, r, 0.8), kt_fill(deps, nI, r, 1), kt_fill(dk, (size_t)M * ld, r, 1);
    memcpy(dk0, dk, sizeof(real) * M * ld);
    memcpy(beta, braw, sizeof(real) * nI);
    k_sel_beta_eps_fwd(beta, bias, kk + 1, ld, eps, M, I, N);
    e = 0;
    for (int m = 0; m < M; m++) {
        double K2 = 0;
        for (int n = 0; n < N; n++) K2 += kk[(size_t)m * ld + 1 + n] * kk[(size_t)m * ld + 1 + n];
        for (int i = 0; i < I; i++) {
            double bt = kt_sig(braw[(size_t)m * I + i] + bias[i]);
            e = t_worst(e, fabs(beta[(size_t)m * I + i] - bt) + fabs(eps[(size_t)m * I + i] - bt / (1 + bt * K2)));
        }
    }
    CHECK(e < 1e-14, "k_sel_beta_eps_fwd vs naive (%.3g)", e);
    k_sel_eps_bwd(kk + 1, ld, beta, deps, dk + 1, ld, dbraw, M, I, N);
    double worst = 0;
    for (int s = 0; s < 16; s++) { /* d/dbraw and d/dk of Σ deps ⊙ ε */
        int m = (int)rng_below(r, M), i = (int)rng_below(r, I), n = (int)rng_below(r, N), onk = s % 2;
        real *x = onk ? &kk[(size_t)m * ld + 1 + n] : &braw[(size_t)m * I + i];
        double an = onk ? dk[(size_t)m * ld + 1 + n] - dk0[(size_t)m * ld + 1 + n] : dbraw[(size_t)m * I + i];
        KtEps ce = {kk + (size_t)m * ld + 1, braw + (size_t)m * I, bias, deps + (size_t)m * I, I, N};
        double num = fd_estimate(x, kt_eps_loss, &ce, an);
        worst = t_worst(worst, fabs(num - an) / fmax(1e-6, fabs(num) + fabs(an)));
    }
    CHECK(worst < 1e-9, "k_sel_eps_bwd vs finite differences (%.3g)", worst);
    /* skip + gate and its backward (L = Σ dgated ⊙ gated is bilinear in y and silu(z)) */
    real *xz = kt_alloc(nI * 2), *u = kt_alloc(nI), *y = kt_alloc(nI), *y0 = kt_alloc(nI), *gated = kt_alloc(nI);
    real *Dp = kt_alloc(I), *dg = kt_alloc(nI), *dxz = kt_alloc(nI * 2), *du = kt_alloc(nI);
    kt_fill(xz, nI * 2, r, 1.5), kt_fill(u, nI, r, 1), kt_fill(y0, nI, r, 1), kt_fill(Dp, I, r, 1), kt_fill(dg, nI, r, 1);
    memcpy(y, y0, sizeof(real) * nI);
    for (size_t j = 0; j < nI * 2; j++) dxz[j] = 7;
    k_sel_skip_gate_fwd(Dp, u, xz, y, gated, M, I);
    real *dgc = kt_alloc(nI);
    memcpy(dgc, dg, sizeof(real) * nI);
    k_sel_gate_bwd(Dp, xz, y, dgc, dxz, du, M, I);
    e = 0;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < I; i++) {
            size_t j = (size_t)m * I + i;
            double z = xz[(size_t)m * 2 * I + I + i], sz = kt_sig(z), yy = y0[j] + Dp[i] * u[j];
            double dyc = dg[j] * z * sz, dz = dg[j] * yy * sz * (1 + z * (1 - sz));
            e = t_worst(e, fabs(y[j] - yy) + fabs(gated[j] - yy * z * sz) + fabs(dgc[j] - dyc) +
                            fabs(dxz[(size_t)m * 2 * I + I + i] - dz) + fabs(du[j] - Dp[i] * dyc) +
                            fabs(dxz[(size_t)m * 2 * I + i]));
        }
    CHECK(e < 1e-13, "k_sel_skip_gate_fwd / k_sel_gate_bwd vs naive (x half of dxz zeroed) (%.3g)", e);
    { /* backward's recomputation of gated from the y the forward left: the same bits */
        real *g2 = kt_alloc(nI);
        k_sel_gate_fwd(xz, y, g2, M, I);
        CHECK(memcmp(g2, gated, sizeof(real) * nI) == 0, "k_sel_gate_fwd == the gated k_sel_skip_gate_fwd wrote, bit for bit");
        free(g2);
    }
    /* SiLU backward by finite differences; strided row copy */
    real *sx = kt_alloc(nI * 2), *sg = kt_alloc(nI * 2), *sg0 = kt_alloc(nI * 2);
    kt_fill(sx, nI * 2, r, 2), kt_fill(sg, nI * 2, r, 1);
    memcpy(sg0, sg, sizeof(real) * nI * 2);
    k_silu_bwd(sx, 2 * I, sg, 2 * I, M, I); /* the first I columns of [M, 2I] rows */
    worst = 0;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < 2 * I; i++) {
            size_t j = (size_t)m * 2 * I + i;
            if (i >= I) { worst = t_worst(worst, fabs(sg[j] - sg0[j])); continue; }
            real keep = sx[j];
            KtEw ew = {&sx[j], &sg0[j], 1, 0, NULL, 0, 0, 0};
            double num = fd_estimate(&sx[j], kt_ew_loss, &ew, sg[j]);
            sx[j] = keep;
            worst = t_worst(worst, fabs(num - sg[j]) / fmax(1e-6, fabs(num)));
        }
    CHECK(worst < 1e-8, "k_silu_bwd vs finite differences (columns outside the view untouched) (%.3g)", worst);
    real *dst = kt_alloc((size_t)M * 9);
    for (int j = 0; j < M * 9; j++) dst[j] = -1;
    k_copy(sx + 3, 2 * I, dst, 9, M, 7);
    e = 0;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < 9; j++) e = t_worst(e, fabs(dst[(size_t)m * 9 + j] - (j < 7 ? sx[(size_t)m * 2 * I + 3 + j] : -1)));
    CHECK(e == 0, "k_copy: strided copy wrong (%.3g)", e);
    free(pre), free(pre0), free(bias), free(dl), free(g), free(al), free(A), free(dA), free(ga), free(ga0);
    free(braw), free(beta), free(eps), free(deps), free(dbraw), free(kk), free(dk), free(dk0);
    free(xz), free(u), free(y), free(y0), free(gated), free(Dp), free(dg), free(dxz), free(du), free(dgc);
    free(sx), free(sg), free(sg0), free(dst);
}

static void kt_scan(void) {
    Rng r;
    rng_init(&r, 17, 0);
    /* B, T, I, N, chunk, finite differences */
    int shapes[][6] = {{1, 1, 1, 1, 1, 1}, {2, 9, 5, 3, 4, 1}, {3, 37, 33, 4, 7, 1}, {2, 70, 40, 16, 16, 0},
                       {1, 19, 17, 2, 64, 1}};
    for (int mamba = 0; mamba < 2; mamba++)
        for (int s = 0; s < 5; s++) {
            int I = shapes[s][2];
            int revs[3] = {I, (I + 1) / 2, 0};
            for (int fl = 0; fl < 2; fl++)
                for (int rv = 0; rv < 3; rv++) {
                    if (rv > 0 && revs[rv] == revs[rv - 1]) continue;
                    kt_scan_case(&r, mamba, shapes[s][0], shapes[s][1], I, shapes[s][3], shapes[s][4], revs[rv], fl,
                                 shapes[s][5]);
                }
        }
    kt_selective(&r);
}
