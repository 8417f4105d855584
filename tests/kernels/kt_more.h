/* kt_more.h — the small kernels the other kt_*.h files do not cover, each against a naive fp64
 * reference written from its header comment: k_sigmoid, k_zero, k_mul_silu_{fwd,bwd},
 * k_gnorm_{fwd,bwd}, k_ssd_delta_{fwd,bwd}, k_ssd_step (docs/layers.md §3.2), k_gla_gate_{fwd,bwd}
 * (§4.2), k_gla_norm_gate_bwd (§4.5), k_gla_step (§4), k_rope_table and k_rope_apply (rotate-half).
 * Backward kernels are checked against central finite differences of the naive forward. */
#include "kernels/attention.h"
#include "kernels/gla.h"
#include "kernels/ssd.h"

/* kt_sig: tests/kernels/kt_scan.h */
static double kt_silu(double x) { return x * kt_sig(x); }
static double kt_softplus(double x) { return x > 30 ? x : log1p(exp(x)); }
/* max relative error of a against b over n entries (each entry against max(1, |b|)) */
static double kt_maxrel(const real *a, const double *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(1, fabs(b[i]));
        if (!(d <= e)) e = d;
    }
    return e;
}
/* 1 when x[r*ld + c] for c in [C, ld) still equals the sentinel written there before the call */
static int kt_gap_kept(const real *x, int ld, int N, int C, real sentinel) {
    for (int r = 0; r < N; r++)
        for (int c = C; c < ld; c++)
            if (x[(size_t)r * ld + c] != sentinel) return 0;
    return 1;
}
static void kt_set(real *x, size_t n, real v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static void kt_more_sigmoid(Rng *r) {
    double e = 0;
    for (int i = 0; i < 200; i++) {
        double x = 8 * rng_normal(r);
        e = t_worst(e, fabs((double)k_sigmoid((real)x) - kt_sig(x)));
        e = t_worst(e, fabs((double)k_sigmoid((real)-x) - (1 - kt_sig(x))));
    }
    CHECK(e < 1e-14, "k_sigmoid vs 1/(1+exp(-x)) (%.3g)", e);
    CHECK(k_sigmoid(0) == 0.5 && k_sigmoid(60) <= 1 && k_sigmoid(60) > 0.999 && k_sigmoid(-60) >= 0 &&
              k_sigmoid(-60) < 1e-20,
          "k_sigmoid at 0 and the extremes");
}

static void kt_more_zero(Rng *r, int N, int C, int ld) {
    real *x = kt_alloc((size_t)N * ld);
    kt_fill(x, (size_t)N * ld, r, 1);
    for (int i = 0; i < N; i++) kt_set(x + (size_t)i * ld + C, ld - C, 7);
    k_zero(x, ld, N, C);
    int ok = 1;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) ok &= x[(size_t)i * ld + c] == 0;
    CHECK(ok, "k_zero N=%d C=%d ld=%d: the view is zero", N, C, ld);
    CHECK(kt_gap_kept(x, ld, N, C, 7), "k_zero N=%d C=%d ld=%d: columns past C untouched", N, C, ld);
    free(x);
}

static void kt_more_mul_silu(Rng *r, int N, int C) {
    int ldy = C + 3, ldz = C + 1, ldo = C + 2, lddz = C + 5;
    real *y = kt_alloc((size_t)N * ldy), *z = kt_alloc((size_t)N * ldz), *o = kt_alloc((size_t)N * ldo);
    real *g = kt_alloc((size_t)N * ldy), *dz = kt_alloc((size_t)N * lddz);
    double *ref = malloc(sizeof(double) * N * C), *rdz = malloc(sizeof(double) * N * C), *rdy = malloc(sizeof(double) * N * C);
    kt_fill(y, (size_t)N * ldy, r, 1), kt_fill(z, (size_t)N * ldz, r, 2), kt_fill(g, (size_t)N * ldy, r, 1);
    kt_set(o, (size_t)N * ldo, 5), kt_set(dz, (size_t)N * lddz, 5);
    real *gsave = kt_alloc((size_t)N * ldy);
    memcpy(gsave, g, sizeof(real) * N * ldy);
    k_mul_silu_fwd(y, ldy, z, ldz, o, ldo, N, C);
    real *of = kt_alloc((size_t)N * C), *dzf = kt_alloc((size_t)N * C), *dyf = kt_alloc((size_t)N * C);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            double yy = y[(size_t)i * ldy + c], zz = z[(size_t)i * ldz + c], gg = g[(size_t)i * ldy + c], h = 1e-5;
            ref[i * C + c] = yy * kt_silu(zz);
            rdz[i * C + c] = gg * yy * (kt_silu(zz + h) - kt_silu(zz - h)) / (2 * h); /* finite difference */
            rdy[i * C + c] = gg * kt_silu(zz);
            of[i * C + c] = o[(size_t)i * ldo + c];
        }
    CHECK(kt_maxrel(of, ref, (size_t)N * C) < 1e-13, "k_mul_silu_fwd N=%d C=%d vs naive", N, C);
    CHECK(kt_gap_kept(o, ldo, N, C, 5), "k_mul_silu_fwd N=%d C=%d: out columns past C untouched", N, C);
    k_mul_silu_bwd(g, ldy, y, ldy, z, ldz, dz, lddz, N, C);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) dzf[i * C + c] = dz[(size_t)i * lddz + c], dyf[i * C + c] = g[(size_t)i * ldy + c];
    CHECK(kt_maxrel(dzf, rdz, (size_t)N * C) < 1e-8, "k_mul_silu_bwd N=%d C=%d: dz vs finite differences", N, C);
    CHECK(kt_maxrel(dyf, rdy, (size_t)N * C) < 1e-13, "k_mul_silu_bwd N=%d C=%d: dy = g·silu(z)", N, C);
    CHECK(kt_gap_kept(dz, lddz, N, C, 5), "k_mul_silu_bwd N=%d C=%d: dz columns past C untouched", N, C);
    int gap = 1; /* g's columns past C are not part of the view */
    for (int i = 0; i < N; i++)
        for (int c = C; c < ldy; c++) gap &= g[(size_t)i * ldy + c] == gsave[(size_t)i * ldy + c];
    CHECK(gap, "k_mul_silu_bwd N=%d C=%d: dy columns past C untouched", N, C);
    free(y), free(z), free(o), free(g), free(dz), free(ref), free(rdz), free(rdy), free(gsave), free(of), free(dzf), free(dyf);
}

/* naive grouped RMSNorm on one row, in double */
static void kt_gnorm_row(const double *x, const real *w, double *y, double *rs, int C, int G, double eps) {
    int cg = C / G;
    for (int g = 0; g < G; g++) {
        double ss = 0;
        for (int j = 0; j < cg; j++) ss += x[g * cg + j] * x[g * cg + j];
        double s = 1 / sqrt(ss / cg + eps);
        if (rs) rs[g] = s;
        for (int j = 0; j < cg; j++) y[g * cg + j] = w[g * cg + j] * x[g * cg + j] * s;
    }
}

static void kt_more_gnorm(Rng *r, int N, int C, int G) {
    double eps = 1e-5;
    size_t n = (size_t)N * C;
    real *x = kt_alloc(n), *w = kt_alloc(C), *y = kt_alloc(n), *rstd = kt_alloc((size_t)N * G), *dy = kt_alloc(n);
    real *dx = kt_alloc(n), *dw = kt_alloc(C), *dw0 = kt_alloc(C);
    double *yr = malloc(sizeof(double) * n), *rr = malloc(sizeof(double) * N * G), *xd = malloc(sizeof(double) * C);
    double *yp = malloc(sizeof(double) * C), *ym = malloc(sizeof(double) * C);
    kt_fill(x, n, r, 1.5), kt_fill(w, C, r, 1), kt_fill(dy, n, r, 1), kt_fill(dw0, C, r, 1);
    k_gnorm_fwd(x, w, y, rstd, N, C, G, (real)eps);
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < C; c++) xd[c] = x[(size_t)i * C + c];
        kt_gnorm_row(xd, w, yr + (size_t)i * C, rr + (size_t)i * G, C, G, eps);
    }
    CHECK(kt_maxrel(y, yr, n) < 1e-13, "k_gnorm_fwd N=%d C=%d G=%d: y vs naive", N, C, G);
    CHECK(kt_maxrel(rstd, rr, (size_t)N * G) < 1e-13, "k_gnorm_fwd N=%d C=%d G=%d: rstd vs naive", N, C, G);
    memcpy(dw, dw0, sizeof(real) * C);
    k_gnorm_bwd(dy, x, w, rstd, dx, dw, N, C, G);
    /* dx by finite differences of L = Σ dy·y(x), row by row (rows are independent) */
    double *rdx = malloc(sizeof(double) * n), *rdw = malloc(sizeof(double) * C);
    for (int c = 0; c < C; c++) rdw[c] = dw0[c];
    for (int i = 0; i < N; i++) {
        for (int c = 0; c < C; c++) xd[c] = x[(size_t)i * C + c];
        for (int c = 0; c < C; c++) {
            double h = 1e-6, keep = xd[c], lp = 0, lm = 0;
            xd[c] = keep + h, kt_gnorm_row(xd, w, yp, NULL, C, G, eps);
            xd[c] = keep - h, kt_gnorm_row(xd, w, ym, NULL, C, G, eps);
            xd[c] = keep;
            for (int j = 0; j < C; j++) lp += dy[(size_t)i * C + j] * yp[j], lm += dy[(size_t)i * C + j] * ym[j];
            rdx[(size_t)i * C + c] = (lp - lm) / (2 * h);
            /* y is linear in w: ∂L/∂w_c = Σ_rows dy·y/w */
            rdw[c] += dy[(size_t)i * C + c] * xd[c] * rr[(size_t)i * G + c / (C / G)];
        }
    }
    CHECK(kt_maxrel(dx, rdx, n) < 1e-7, "k_gnorm_bwd N=%d C=%d G=%d: dx vs finite differences", N, C, G);
    CHECK(kt_maxrel(dw, rdw, C) < 1e-12, "k_gnorm_bwd N=%d C=%d G=%d: dw accumulated", N, C, G);
    /* dx may alias dy */
    real *io = kt_alloc(n);
    memcpy(io, dy, sizeof(real) * n);
    memcpy(dw, dw0, sizeof(real) * C);
    k_gnorm_bwd(io, x, w, rstd, io, dw, N, C, G);
    CHECK(t_rel_err(io, dx, n, 1e-3) < 1e-13, "k_gnorm_bwd N=%d C=%d G=%d: dx aliasing dy", N, C, G);
    CHECK(kt_maxrel(dw, rdw, C) < 1e-12, "k_gnorm_bwd N=%d C=%d G=%d: dw with dx aliasing dy", N, C, G);
    free(x), free(w), free(y), free(rstd), free(dy), free(dx), free(dw), free(dw0), free(yr), free(rr), free(xd);
    free(yp), free(ym), free(rdx), free(rdw), free(io);
}

static void kt_more_delta(Rng *r, int M, int H) {
    int ld = H + 4, ldd = H + 3;
    real *dt = kt_alloc((size_t)M * ld), *bias = kt_alloc(H), *dlt = kt_alloc((size_t)M * H), *dd = kt_alloc((size_t)M * H);
    real *draw = kt_alloc((size_t)M * ldd), *db = kt_alloc(H), *db0 = kt_alloc(H), *drf = kt_alloc((size_t)M * H);
    double *ref = malloc(sizeof(double) * M * H), *rdr = malloc(sizeof(double) * M * H), *rdb = malloc(sizeof(double) * H);
    kt_fill(dt, (size_t)M * ld, r, 3), kt_fill(bias, H, r, 1), kt_fill(dd, (size_t)M * H, r, 1), kt_fill(db0, H, r, 1);
    dt[0] = 40, dt[1 % H] = -40; /* the large-argument branches */
    kt_set(draw, (size_t)M * ldd, 9);
    for (int h = 0; h < H; h++) rdb[h] = db0[h];
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++) {
            double v = (double)dt[(size_t)m * ld + h] + bias[h], e = 1e-6;
            ref[m * H + h] = kt_softplus(v);
            rdr[m * H + h] = dd[(size_t)m * H + h] * (kt_softplus(v + e) - kt_softplus(v - e)) / (2 * e);
            rdb[h] += rdr[m * H + h];
        }
    k_ssd_delta_fwd(dt, ld, bias, dlt, M, H);
    CHECK(kt_maxrel(dlt, ref, (size_t)M * H) < 1e-13, "k_ssd_delta_fwd M=%d H=%d vs softplus", M, H);
    memcpy(db, db0, sizeof(real) * H);
    k_ssd_delta_bwd(dt, ld, bias, dd, draw, ldd, db, M, H);
    for (int m = 0; m < M; m++)
        for (int h = 0; h < H; h++) drf[(size_t)m * H + h] = draw[(size_t)m * ldd + h];
    CHECK(kt_maxrel(drf, rdr, (size_t)M * H) < 1e-8, "k_ssd_delta_bwd M=%d H=%d: ddt vs finite differences", M, H);
    CHECK(kt_maxrel(db, rdb, H) < 1e-8, "k_ssd_delta_bwd M=%d H=%d: dbias accumulated", M, H);
    CHECK(kt_gap_kept(draw, ldd, M, H, 9), "k_ssd_delta_bwd M=%d H=%d: columns past H untouched", M, H);
    free(dt), free(bias), free(dlt), free(dd), free(draw), free(db), free(db0), free(drf), free(ref), free(rdr), free(rdb);
}

static void kt_more_gla_gate(Rng *r, int M, int Dk) {
    size_t n = (size_t)M * Dk;
    double inv_tau = 1.0 / 16;
    real *pre = kt_alloc(n), *pre0 = kt_alloc(n), *bias = kt_alloc(Dk), *gk = kt_alloc(n), *dp = kt_alloc(n);
    double *rpre = malloc(sizeof(double) * n), *rgk = malloc(sizeof(double) * n), *rdp = malloc(sizeof(double) * n);
    kt_fill(pre0, n, r, 4), kt_fill(bias, Dk, r, 1), kt_fill(dp, n, r, 1);
    pre0[0] = 50, pre0[n - 1] = -50;
    memcpy(pre, pre0, sizeof(real) * n);
    for (size_t i = 0; i < n; i++) {
        double v = (double)pre0[i] + bias[i % Dk], e = 1e-6;
        rpre[i] = v, rgk[i] = -kt_softplus(-v) * inv_tau;
        rdp[i] = dp[i] * (-kt_softplus(-(v + e)) + kt_softplus(-(v - e))) / (2 * e) * inv_tau;
    }
    k_gla_gate_fwd(pre, bias, gk, M, Dk, (real)inv_tau);
    CHECK(kt_maxrel(pre, rpre, n) < 1e-15, "k_gla_gate_fwd M=%d Dk=%d: pre += bias", M, Dk);
    CHECK(kt_maxrel(gk, rgk, n) < 1e-13, "k_gla_gate_fwd M=%d Dk=%d: gk = logsigmoid·inv_tau", M, Dk);
    int le0 = 1;
    for (size_t i = 0; i < n; i++) le0 &= gk[i] <= 0;
    CHECK(le0, "k_gla_gate_fwd M=%d Dk=%d: gk <= 0", M, Dk);
    real *gk2 = kt_alloc(n);
    k_gla_gate_from_pre(pre, gk2, M, Dk, (real)inv_tau);
    CHECK(memcmp(gk2, gk, sizeof(real) * n) == 0, "k_gla_gate_from_pre M=%d Dk=%d == the gk k_gla_gate_fwd wrote, bit for bit", M, Dk);
    free(gk2);
    k_gla_gate_bwd(dp, pre, M, Dk, (real)inv_tau);
    CHECK(kt_maxrel(dp, rdp, n) < 1e-8, "k_gla_gate_bwd M=%d Dk=%d vs finite differences", M, Dk);
    free(pre), free(pre0), free(bias), free(gk), free(dp), free(rpre), free(rgk), free(rdp);
}

static void kt_more_norm_gate(Rng *r, int M, int H, int dv) {
    size_t n = (size_t)M * H * dv;
    real *dgt = kt_alloc(n), *g = kt_alloc(n), *o = kt_alloc(n), *w = kt_alloc(dv), *rs = kt_alloc((size_t)M * H);
    real *dg = kt_alloc(n);
    double *rdg = malloc(sizeof(double) * n), *rdgt = malloc(sizeof(double) * n);
    kt_fill(dgt, n, r, 1), kt_fill(g, n, r, 2), kt_fill(o, n, r, 1), kt_fill(w, dv, r, 1);
    for (int i = 0; i < M * H; i++) rs[i] = (real)(0.5 + rng_uniform(r));
    for (size_t i = 0; i < n; i++) {
        size_t m = i / ((size_t)H * dv), hh = (i / dv) % H, j = i % dv;
        double y = (double)w[j] * o[i] * rs[m * H + hh], gg = g[i], e = 1e-6;
        rdg[i] = dgt[i] * y * (kt_silu(gg + e) - kt_silu(gg - e)) / (2 * e); /* ∂(y·swish(g))/∂g */
        rdgt[i] = dgt[i] * kt_silu(gg);
    }
    k_gla_norm_gate_bwd(dgt, g, o, w, rs, dg, M, H, dv);
    CHECK(kt_maxrel(dg, rdg, n) < 1e-8, "k_gla_norm_gate_bwd M=%d H=%d dv=%d: dg vs finite differences", M, H, dv);
    CHECK(kt_maxrel(dgt, rdgt, n) < 1e-13, "k_gla_norm_gate_bwd M=%d H=%d dv=%d: dgated·swish(g)", M, H, dv);
    free(dgt), free(g), free(o), free(w), free(rs), free(dg), free(rdg), free(rdgt);
}

/* k_ssd_step: three tokens through the kernel vs the naive recurrence S = α·S + Δ·x⊗B, y = S·C + D·x,
 * with a state row stride ldS larger than H·P·N (the gap must stay untouched). */
static void kt_more_ssd_step(Rng *r, int nseq, int H, int P, int G, int N) {
    int I = H * P, ld = I + 2 * G * N + 3, hpg = H / G;
    size_t ssz = (size_t)H * P * N, ldS = ssz + 5;
    real *S = kt_alloc(nseq * ldS), *xbc = kt_alloc((size_t)nseq * ld), *dt = kt_alloc((size_t)nseq * H);
    real *Al = kt_alloc(H), *Dp = kt_alloc(H), *y = kt_alloc((size_t)nseq * I);
    double *Sr = malloc(sizeof(double) * nseq * ssz), *yr = malloc(sizeof(double) * nseq * I);
    kt_fill(S, nseq * ldS, r, 1), kt_fill(Al, H, r, 0.5), kt_fill(Dp, H, r, 1);
    for (int s = 0; s < nseq; s++) {
        kt_set(S + s * ldS + ssz, ldS - ssz, 3);
        for (size_t i = 0; i < ssz; i++) Sr[s * ssz + i] = S[s * ldS + i];
    }
    double es = 0, ey = 0;
    for (int step = 0; step < 3; step++) {
        kt_fill(xbc, (size_t)nseq * ld, r, 1);
        for (int i = 0; i < nseq * H; i++) dt[i] = (real)(0.05 + rng_uniform(r));
        for (int s = 0; s < nseq; s++)
            for (int h = 0; h < H; h++) {
                int g = h / hpg;
                double d = dt[s * H + h], al = exp(-d * exp((double)Al[h]));
                const real *x = xbc + (size_t)s * ld + h * P, *Bv = xbc + (size_t)s * ld + I + g * N, *Cv = Bv + G * N;
                for (int p = 0; p < P; p++) {
                    double acc = 0;
                    for (int k = 0; k < N; k++) {
                        double *sv = &Sr[s * ssz + ((size_t)h * P + p) * N + k];
                        *sv = al * *sv + d * x[p] * Bv[k];
                        acc += *sv * Cv[k];
                    }
                    yr[(size_t)s * I + h * P + p] = acc + Dp[h] * x[p];
                }
            }
        k_ssd_step(S, ldS, xbc, ld, dt, Al, Dp, y, nseq, H, P, G, N);
        ey = t_worst(ey, kt_maxrel(y, yr, (size_t)nseq * I));
        for (int s = 0; s < nseq; s++) es = t_worst(es, kt_maxrel(S + s * ldS, Sr + s * ssz, ssz));
    }
    CHECK(ey < 1e-12, "k_ssd_step nseq=%d H=%d P=%d G=%d N=%d: y vs naive (%.3g)", nseq, H, P, G, N, ey);
    CHECK(es < 1e-12, "k_ssd_step nseq=%d H=%d P=%d G=%d N=%d: state vs naive (%.3g)", nseq, H, P, G, N, es);
    CHECK(kt_gap_kept(S, (int)ldS, nseq, (int)ssz, 3), "k_ssd_step: state row gap (ldS > H·P·N) untouched");
    free(S), free(xbc), free(dt), free(Al), free(Dp), free(y), free(Sr), free(yr);
}

/* k_gla_step: S = diag(exp gk)·S + k⊗v, o = Sᵀ(scale·q), three tokens, ldS > H·dk·dv. */
static void kt_more_gla_step(Rng *r, int nseq, int H, int dk, int dv) {
    int HK = H * dk, HV = H * dv;
    size_t ssz = (size_t)H * dk * dv, ldS = ssz + 7;
    double scale = 1 / sqrt((double)dk);
    real *S = kt_alloc(nseq * ldS), *q = kt_alloc((size_t)nseq * HK), *k = kt_alloc((size_t)nseq * HK);
    real *gk = kt_alloc((size_t)nseq * HK), *v = kt_alloc((size_t)nseq * HV), *o = kt_alloc((size_t)nseq * HV);
    double *Sr = malloc(sizeof(double) * nseq * ssz), *orf = malloc(sizeof(double) * nseq * HV);
    kt_fill(S, nseq * ldS, r, 1);
    for (int s = 0; s < nseq; s++) {
        kt_set(S + s * ldS + ssz, ldS - ssz, 3);
        for (size_t i = 0; i < ssz; i++) Sr[s * ssz + i] = S[s * ldS + i];
    }
    double es = 0, eo = 0;
    for (int step = 0; step < 3; step++) {
        kt_fill(q, (size_t)nseq * HK, r, 1), kt_fill(k, (size_t)nseq * HK, r, 1), kt_fill(v, (size_t)nseq * HV, r, 1);
        for (int i = 0; i < nseq * HK; i++) gk[i] = (real)(-2 * rng_uniform(r));
        kt_set(o, (size_t)nseq * HV, 11); /* o is overwritten, not accumulated */
        for (int s = 0; s < nseq; s++)
            for (int h = 0; h < H; h++)
                for (int j = 0; j < dv; j++) {
                    double acc = 0;
                    for (int d = 0; d < dk; d++) {
                        size_t ik = (size_t)s * HK + h * dk + d;
                        double *sv = &Sr[s * ssz + ((size_t)h * dk + d) * dv + j];
                        *sv = exp((double)gk[ik]) * *sv + (double)k[ik] * v[(size_t)s * HV + h * dv + j];
                        acc += scale * q[ik] * *sv;
                    }
                    orf[(size_t)s * HV + h * dv + j] = acc;
                }
        k_gla_step(S, ldS, q, k, v, gk, o, nseq, H, dk, dv, (real)scale);
        eo = t_worst(eo, kt_maxrel(o, orf, (size_t)nseq * HV));
        for (int s = 0; s < nseq; s++) es = t_worst(es, kt_maxrel(S + s * ldS, Sr + s * ssz, ssz));
    }
    CHECK(eo < 1e-12, "k_gla_step nseq=%d H=%d dk=%d dv=%d: o vs naive (%.3g)", nseq, H, dk, dv, eo);
    CHECK(es < 1e-12, "k_gla_step nseq=%d H=%d dk=%d dv=%d: state vs naive (%.3g)", nseq, H, dk, dv, es);
    CHECK(kt_gap_kept(S, (int)ldS, nseq, (int)ssz, 3), "k_gla_step: state row gap (ldS > H·dk·dv) untouched");
    free(S), free(q), free(k), free(gk), free(v), free(o), free(Sr), free(orf);
}

/* RoPE: the table against cos/sin of pos·theta^(−2i/dh); apply against rotate-half
 * x'[i] = x[i]·c − x[i+dh/2]·s, x'[i+dh/2] = x[i+dh/2]·c + x[i]·s; apply then inverse == identity. */
static void kt_more_rope(Rng *r, int T, int M, int nh, int dh) {
    int half = dh / 2, ld = nh * dh + 3;
    double theta = 10000;
    real *cs = kt_alloc((size_t)T * half), *sn = kt_alloc((size_t)T * half);
    double *rc = malloc(sizeof(double) * T * half), *rsn = malloc(sizeof(double) * T * half);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double phi = t * pow(theta, -2.0 * i / dh);
            rc[t * half + i] = cos(phi), rsn[t * half + i] = sin(phi);
        }
    k_rope_table(T, dh, theta, cs, sn);
    CHECK(kt_maxrel(cs, rc, (size_t)T * half) < 1e-14 && kt_maxrel(sn, rsn, (size_t)T * half) < 1e-14,
          "k_rope_table T=%d dh=%d vs cos/sin", T, dh);
    real *x = kt_alloc((size_t)M * ld), *x0 = kt_alloc((size_t)M * ld);
    double *ref = malloc(sizeof(double) * M * ld);
    int *pos = malloc(sizeof(int) * M);
    kt_fill(x0, (size_t)M * ld, r, 1);
    for (int m = 0; m < M; m++) pos[m] = (int)rng_below(r, (uint64_t)T);
    memcpy(x, x0, sizeof(real) * M * ld);
    for (int m = 0; m < M; m++) {
        for (int c = 0; c < ld; c++) ref[(size_t)m * ld + c] = x0[(size_t)m * ld + c];
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < half; i++) {
                size_t a = (size_t)m * ld + h * dh + i, b = a + half;
                double c = rc[pos[m] * half + i], s = rsn[pos[m] * half + i];
                ref[a] = x0[a] * c - x0[b] * s, ref[b] = x0[b] * c + x0[a] * s;
            }
    }
    k_rope_apply(x, ld, M, nh, dh, pos, cs, sn, 0);
    CHECK(kt_maxrel(x, ref, (size_t)M * ld) < 1e-14, "k_rope_apply M=%d nh=%d dh=%d ld=%d vs rotate-half (incl. the row gap)",
          M, nh, dh, ld);
    k_rope_apply(x, ld, M, nh, dh, pos, cs, sn, 1);
    CHECK(t_rel_err(x, x0, (size_t)M * ld, 1) < 1e-14, "k_rope_apply M=%d nh=%d dh=%d: forward then inverse == identity", M,
          nh, dh);
    free(cs), free(sn), free(rc), free(rsn), free(x), free(x0), free(ref), free(pos);
}

static void kt_more(void) {
    Rng r;
    rng_init(&r, 4242, 0);
    kt_more_sigmoid(&r);
    kt_more_zero(&r, 5, 7, 7), kt_more_zero(&r, 9, 13, 20), kt_more_zero(&r, 1, 1, 4);
    kt_more_mul_silu(&r, 7, 13), kt_more_mul_silu(&r, 1, 33);
    kt_more_gnorm(&r, 5, 12, 3), kt_more_gnorm(&r, 3, 35, 1), kt_more_gnorm(&r, 4, 36, 4);
    kt_more_delta(&r, 9, 5), kt_more_delta(&r, 40, 19);
    kt_more_gla_gate(&r, 7, 13), kt_more_gla_gate(&r, 3, 40);
    kt_more_norm_gate(&r, 5, 3, 7), kt_more_norm_gate(&r, 2, 1, 16);
    kt_more_ssd_step(&r, 3, 4, 5, 2, 7), kt_more_ssd_step(&r, 2, 3, 3, 1, 16), kt_more_ssd_step(&r, 1, 2, 1, 2, 1);
    kt_more_gla_step(&r, 3, 2, 5, 7), kt_more_gla_step(&r, 2, 3, 16, 4), kt_more_gla_step(&r, 1, 1, 1, 1);
    kt_more_rope(&r, 17, 11, 3, 8), kt_more_rope(&r, 64, 5, 1, 2), kt_more_rope(&r, 9, 6, 2, 14);
}
