/* kt_linrec.h — kernels/linrec.h against naive references: the diagonal recurrence (segment resets,
 * PAD absent, S0 with a row stride, final state, two parts == one pass, reverse channels against
 * the naive forward recurrence on the literally time-reversed rows, the one-token step, backward
 * by finite differences with zeros at PAD), the RG-LRU and gated-SSM gates (values, fresh-token
 * rule and markers, finite-difference backward), the GeLU gate in both forms and the bias add. */
#include "kernels/linrec.h"

typedef struct {
    int B, T, C, rev_from;
    const uint8_t *f;
    real *a, *b, *w, *h;
    const real *S0;
    size_t ldS;
} KtLin;

/* Naive h [B,T,C] and final states [B, C]: each channel's tokens in processing order. */
static void kt_lin_naive(const KtLin *c, double *h, double *Sf) {
    int B = c->B, T = c->T, C = c->C;
    for (size_t j = 0; j < (size_t)B * T * C; j++) h[j] = 0;
    for (int r = 0; r < B; r++)
        for (int ch = 0; ch < C; ch++) {
            int rev = ch >= c->rev_from;
            double s = !rev && c->S0 ? c->S0[(size_t)r * c->ldS + ch] : 0;
            for (int k = 0; k < T; k++) {
                int t = rev ? T - 1 - k : k;
                size_t m = (size_t)r * T + t;
                if (c->f && (c->f[m] & FLAG_PAD)) continue;
                int cut = rev ? (t + 1 >= T || !c->f || (c->f[m + 1] & (FLAG_CAUSAL | FLAG_PAD | FLAG_SEG_START)))
                              : (c->f && (c->f[m] & FLAG_SEG_START));
                s = (cut ? 0 : c->a[m * C + ch] * s) + c->b[m * C + ch];
                h[m * C + ch] = s;
            }
            Sf[(size_t)r * C + ch] = rev ? 0 : s;
        }
}

static double kt_lin_loss(void *ctx) {
    KtLin *c = ctx;
    k_linrec_fwd(c->a, c->b, c->h, c->B, c->T, c->C, c->f, c->rev_from, c->S0, NULL, c->ldS);
    double L = 0;
    for (size_t j = 0; j < (size_t)c->B * c->T * c->C; j++) L += (double)c->w[j] * c->h[j];
    return L;
}

static void kt_lin_case(Rng *r, int B, int T, int C, int rev_from, int use_flags) {
    KtLin c = {B, T, C, rev_from, NULL, NULL, NULL, NULL, NULL, NULL, (size_t)C + 3};
    size_t M = (size_t)B * T, n = M * C;
    uint8_t *f = use_flags ? kt_scan_flags(r, B, T) : NULL;
    c.f = f;
    c.a = kt_alloc(n), c.b = kt_alloc(n), c.w = kt_alloc(n), c.h = kt_alloc(n);
    real *S0 = kt_alloc((size_t)B * c.ldS), *Sf = kt_alloc((size_t)B * c.ldS);
    for (size_t j = 0; j < n; j++) c.a[j] = (real)(0.05 + 0.94 * rng_uniform(r));
    kt_fill(c.b, n, r, 1), kt_fill(c.w, n, r, 1), kt_fill(S0, (size_t)B * c.ldS, r, 1);
    c.S0 = S0;
    char tag[96];
    snprintf(tag, sizeof tag, "linrec B=%d T=%d C=%d rev_from=%d%s", B, T, C, rev_from, f ? " flags" : "");
    double *hn = malloc(sizeof(double) * (n ? n : 1)), *Sfn = malloc(sizeof(double) * B * C);
    kt_lin_naive(&c, hn, Sfn);
    for (size_t j = 0; j < (size_t)B * c.ldS; j++) Sf[j] = 99;
    k_linrec_fwd(c.a, c.b, c.h, B, T, C, f, rev_from, S0, Sf, c.ldS);
    double eh = 0, es = 0, spad = 0, hpad = 0;
    for (size_t j = 0; j < n; j++) eh = t_worst(eh, fabs(c.h[j] - hn[j]) / fmax(1, fabs(hn[j])));
    for (int b = 0; b < B; b++) {
        for (int ch = 0; ch < C; ch++) es = t_worst(es, fabs(Sf[(size_t)b * c.ldS + ch] - Sfn[(size_t)b * C + ch]));
        for (size_t j = C; j < c.ldS; j++) spad = t_worst(spad, fabs(Sf[(size_t)b * c.ldS + j] - 99));
    }
    for (size_t m = 0; f && m < M; m++)
        if (f[m] & FLAG_PAD)
            for (int ch = 0; ch < C; ch++) hpad = t_worst(hpad, fabs(c.h[m * C + ch]));
    CHECK(eh < 1e-12 && es < 1e-12, "%s: h vs naive %.3g, final state %.3g", tag, eh, es);
    CHECK(spad == 0 && hpad == 0, "%s: wrote outside the state rows (%.3g) or h != 0 at PAD (%.3g)", tag, spad, hpad);
    /* two parts through the state == one pass (causal channels) */
    int p = T / 3;
    if (p > 0 && rev_from == C) {
        real *mid = kt_alloc((size_t)B * c.ldS), *h1 = kt_alloc((size_t)B * p * C), *h2 = kt_alloc((size_t)B * (T - p) * C);
        real *a1 = kt_alloc((size_t)B * p * C), *a2 = kt_alloc((size_t)B * (T - p) * C);
        real *b1 = kt_alloc((size_t)B * p * C), *b2 = kt_alloc((size_t)B * (T - p) * C);
        uint8_t *f1 = f ? eid_xmalloc((size_t)B * p) : NULL, *f2 = f ? eid_xmalloc((size_t)B * (T - p)) : NULL;
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)b * T;
            memcpy(a1 + (size_t)b * p * C, c.a + o * C, sizeof(real) * p * C);
            memcpy(b1 + (size_t)b * p * C, c.b + o * C, sizeof(real) * p * C);
            memcpy(a2 + (size_t)b * (T - p) * C, c.a + (o + p) * C, sizeof(real) * (T - p) * C);
            memcpy(b2 + (size_t)b * (T - p) * C, c.b + (o + p) * C, sizeof(real) * (T - p) * C);
            if (f) memcpy(f1 + (size_t)b * p, f + o, p), memcpy(f2 + (size_t)b * (T - p), f + o + p, T - p);
        }
        memcpy(mid, S0, sizeof(real) * B * c.ldS);
        k_linrec_fwd(a1, b1, h1, B, p, C, f1, C, mid, mid, c.ldS);
        k_linrec_fwd(a2, b2, h2, B, T - p, C, f2, C, mid, mid, c.ldS);
        double e = 0;
        for (int b = 0; b < B; b++) {
            for (size_t j = 0; j < (size_t)p * C; j++) e = t_worst(e, fabs(h1[(size_t)b * p * C + j] - c.h[(size_t)b * T * C + j]));
            for (size_t j = 0; j < (size_t)(T - p) * C; j++)
                e = t_worst(e, fabs(h2[(size_t)b * (T - p) * C + j] - c.h[((size_t)b * T + p) * C + j]));
            for (int ch = 0; ch < C; ch++) e = t_worst(e, fabs(mid[(size_t)b * c.ldS + ch] - Sf[(size_t)b * c.ldS + ch]));
        }
        CHECK(e < 1e-12, "%s: two parts through S0/Sfinal vs one pass (%.3g)", tag, e);
        free(mid), free(h1), free(h2), free(a1), free(a2), free(b1), free(b2), free(f1), free(f2);
    }
    if (!f && rev_from == C) { /* the step kernel from S0 == forward */
        real *S = kt_alloc((size_t)B * c.ldS), *as = kt_alloc((size_t)B * C), *bs = kt_alloc((size_t)B * C), *ys = kt_alloc((size_t)B * C);
        memcpy(S, S0, sizeof(real) * B * c.ldS);
        double e = 0;
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) {
                memcpy(as + (size_t)b * C, c.a + ((size_t)b * T + t) * C, sizeof(real) * C);
                memcpy(bs + (size_t)b * C, c.b + ((size_t)b * T + t) * C, sizeof(real) * C);
            }
            k_linrec_step(S, c.ldS, as, bs, ys, B, C);
            for (int b = 0; b < B; b++)
                for (int ch = 0; ch < C; ch++) e = t_worst(e, fabs(ys[(size_t)b * C + ch] - c.h[((size_t)b * T + t) * C + ch]));
        }
        for (int b = 0; b < B; b++)
            for (int ch = 0; ch < C; ch++) e = t_worst(e, fabs(S[(size_t)b * c.ldS + ch] - Sf[(size_t)b * c.ldS + ch]));
        CHECK(e < 1e-12, "%s: step loop vs forward %.3g", tag, e);
        free(S), free(as), free(bs), free(ys);
    }
    /* backward vs finite differences of L = Σ w ⊙ h (from S0), written over garbage */
    real *da = kt_alloc(n), *db = kt_alloc(n);
    for (size_t j = 0; j < n; j++) da[j] = db[j] = 7;
    kt_lin_loss(&c);
    k_linrec_bwd(c.a, c.h, c.w, da, db, B, T, C, f, rev_from, S0, c.ldS);
    double padg = 0;
    for (size_t m = 0; f && m < M; m++)
        if (f[m] & FLAG_PAD)
            for (int ch = 0; ch < C; ch++) padg = t_worst(padg, t_worst(fabs(da[m * C + ch]), fabs(db[m * C + ch])));
    CHECK(padg == 0, "%s: gradient at PAD %.3g", tag, padg);
    real *xs[2] = {c.a, c.b}, *gs[2] = {da, db};
    for (int k = 0; k < 2; k++) {
        double worst = 0;
        for (int s = 0; s < 12 && n; s++) {
            size_t j = rng_below(r, n);
            double num = fd_estimate(&xs[k][j], kt_lin_loss, &c, gs[k][j]);
            worst = t_worst(worst, grad_rel_kt(gs[k][j], num));
        }
        CHECK(worst < 1e-6, "%s: gradient of %s vs finite differences off by %.3g", tag, k ? "b" : "a", worst);
    }
    free(da), free(db), free(hn), free(Sfn), free(c.a), free(c.b), free(c.w), free(c.h), free(S0), free(Sf), free(f);
}

/* RG-LRU gates: Σ wa·a + Σ wb·b as a function of x, the raw gate products and p. */
typedef struct {
    int B, T, R;
    const uint8_t *f;
    real *x, *gr0, *gi0, *gr, *gi, *br, *bi, *p, *a, *b, *wa, *wb;
} KtRg;

static double kt_rg_loss(void *ctx) {
    KtRg *c = ctx;
    size_t n = (size_t)c->B * c->T * c->R;
    memcpy(c->gr, c->gr0, sizeof(real) * n), memcpy(c->gi, c->gi0, sizeof(real) * n);
    k_rglru_gate_fwd(c->x, c->R, c->gr, c->gi, c->br, c->bi, c->p, c->a, c->b, c->B, c->T, c->R, c->f, NULL, 0);
    double L = 0;
    for (size_t j = 0; j < n; j++) L += (double)c->wa[j] * c->a[j] + (double)c->wb[j] * c->b[j];
    return L;
}

static void kt_rglru_case(Rng *r, int B, int T, int R) {
    size_t n = (size_t)B * T * R;
    uint8_t *f = kt_flags(r, B, T, 0.15, 0.15);
    KtRg c = {B, T, R, f, kt_alloc(n), kt_alloc(n), kt_alloc(n), kt_alloc(n), kt_alloc(n), kt_alloc(R), kt_alloc(R),
              kt_alloc(R), kt_alloc(n), kt_alloc(n), kt_alloc(n), kt_alloc(n)};
    kt_fill(c.x, n, r, 1), kt_fill(c.gr0, n, r, 1), kt_fill(c.gi0, n, r, 1), kt_fill(c.br, R, r, 0.5);
    kt_fill(c.bi, R, r, 0.5), kt_fill(c.wa, n, r, 1), kt_fill(c.wb, n, r, 1);
    for (int i = 0; i < R; i++) c.p[i] = (real)(-7 + 5 * rng_uniform(r));
    char tag[64];
    snprintf(tag, sizeof tag, "rglru gates B=%d T=%d R=%d", B, T, R);
    kt_rg_loss(&c);
    double e = 0;
    for (int b = 0; b < B; b++) {
        int seen = 0;
        for (int t = 0; t < T; t++) {
            size_t m = (size_t)b * T + t;
            if (f[m] & FLAG_PAD) {
                for (int i = 0; i < R; i++) e = t_worst(e, fabs(c.a[m * R + i]) + fabs(c.b[m * R + i]));
                continue;
            }
            int fresh = !seen || (f[m] & FLAG_SEG_START);
            seen = 1;
            for (int i = 0; i < R; i++) {
                double vr = c.gr0[m * R + i] + c.br[i], vi = c.gi0[m * R + i] + c.bi[i];
                double a = pow(1 / (1 + exp(c.p[i])), 8 * kt_sig(vr)); /* σ(Λ)^(c·r), Λ = −p */
                double b = (fresh ? 1 : sqrt(1 - a * a)) * kt_sig(vi) * c.x[m * R + i];
                e = t_worst(e, t_worst(fabs(a - c.a[m * R + i]), fabs(b - c.b[m * R + i])));
                e = t_worst(e, t_worst(fabs(vr - c.gr[m * R + i]), fabs(vi - c.gi[m * R + i])));
            }
        }
    }
    CHECK(e < 1e-13, "%s: a, b, pre-activations vs naive err %.3g", tag, e);
    /* markers: a row starting from a marked state gets sqrt(1 − a²) on its first token */
    real mark[6] = {0, 5, 1, 5, 0, 5};
    real *a2 = kt_alloc(n), *b2 = kt_alloc(n);
    memcpy(c.gr, c.gr0, sizeof(real) * n), memcpy(c.gi, c.gi0, sizeof(real) * n);
    uint8_t *nf = eid_xcalloc((size_t)B * T, 1); /* no flags but a PAD row 2 */
    for (int t = 0; t < T; t++) nf[(size_t)2 * T + t] = B > 2 ? FLAG_PAD : 0;
    k_rglru_gate_fwd(c.x, R, c.gr, c.gi, c.br, c.bi, c.p, a2, b2, B, T, R, nf, mark, 2);
    double em = 0;
    for (int i = 0; i < R; i++) { /* row 1, token 0: marked → sqrt(1 − a²) */
        double a = a2[(size_t)T * R + i], want = sqrt(1 - a * a) * kt_sig(c.gi0[(size_t)T * R + i] + c.bi[i]) * c.x[(size_t)T * R + i];
        em = t_worst(em, fabs(b2[(size_t)T * R + i] - want));
        double want0 = kt_sig(c.gi0[i] + c.bi[i]) * c.x[i]; /* row 0 fresh: multiplier 1 */
        em = t_worst(em, fabs(b2[i] - want0));
    }
    CHECK(em < 1e-13 && mark[0] == 1 && mark[2] == 1 && mark[4] == (B > 2 ? 0 : 1) && mark[1] == 5 && mark[3] == 5,
          "%s: fresh markers (err %.3g, marks %g %g %g)", tag, em, (double)mark[0], (double)mark[2], (double)mark[4]);
    free(a2), free(b2), free(nf);
    /* backward */
    real *dx = kt_alloc(n), *dgr = kt_alloc(n), *dgi = kt_alloc(n), *gp = kt_alloc(R);
    for (int i = 0; i < R; i++) gp[i] = 0.5;
    kt_rg_loss(&c);
    k_rglru_gate_bwd(c.x, R, c.gr, c.gi, c.p, c.wa, c.wb, dx, R, dgr, dgi, gp, B, T, R, f);
    for (int i = 0; i < R; i++) gp[i] -= 0.5;
    real *xs[4] = {c.x, c.gr0, c.gi0, c.p}, *gs[4] = {dx, dgr, dgi, gp};
    const char *nm[4] = {"x", "gr", "gi", "p"};
    for (int k = 0; k < 4; k++) {
        size_t cnt = k == 3 ? (size_t)R : n;
        double worst = 0;
        for (int s = 0; s < 12; s++) {
            size_t j = rng_below(r, cnt);
            double num = fd_estimate(&xs[k][j], kt_rg_loss, &c, gs[k][j]);
            worst = t_worst(worst, grad_rel_kt(gs[k][j], num));
        }
        CHECK(worst < 1e-6, "%s: gradient of %s vs finite differences off by %.3g", tag, nm[k], worst);
    }
    double padg = 0;
    for (size_t m = 0; m < (size_t)B * T; m++)
        if (f[m] & FLAG_PAD)
            for (int i = 0; i < R; i++) padg = t_worst(padg, fabs(dx[m * R + i]) + fabs(dgr[m * R + i]) + fabs(dgi[m * R + i]));
    CHECK(padg == 0, "%s: gradient at PAD %.3g", tag, padg);
    { /* backward's recomputation: no biases on the biased gates the forward left, the same a, b bits */
        kt_rg_loss(&c); /* c.gr, c.gi biased; c.a, c.b */
        real *a2 = kt_alloc(n), *b2 = kt_alloc(n), *gr1 = kt_alloc(n);
        memcpy(gr1, c.gr, sizeof(real) * n);
        k_rglru_gate_fwd(c.x, R, c.gr, c.gi, NULL, NULL, c.p, a2, b2, B, T, R, f, NULL, 0);
        CHECK(memcmp(a2, c.a, sizeof(real) * n) == 0 && memcmp(b2, c.b, sizeof(real) * n) == 0 &&
                  memcmp(gr1, c.gr, sizeof(real) * n) == 0,
              "%s: k_rglru_gate_fwd without biases on the biased gates: the same a, b, gates untouched", tag);
        free(a2), free(b2), free(gr1);
    }
    free(dx), free(dgr), free(dgi), free(gp), free(f);
    free(c.x), free(c.gr0), free(c.gi0), free(c.gr), free(c.gi), free(c.br), free(c.bi), free(c.p), free(c.a), free(c.b),
        free(c.wa), free(c.wb);
}

/* Gated-SSM gates and the GeLU gate: Σ w·outputs as a function of the inputs. */
typedef struct { int M, R, approx; real *proj, *a, *b, *wa, *wb, *g, *y, *out, *wo; } KtGs;
static double kt_gs_loss(void *ctx) {
    KtGs *c = ctx;
    size_t n = (size_t)c->M * c->R;
    k_gssm_gate_fwd(c->proj, 4 * c->R, c->a, c->b, c->M, c->R);
    k_mul_gelu_fwd(c->g, c->R + 1, c->y, c->R, c->out, c->R, c->M, c->R, c->approx);
    double L = 0;
    for (size_t j = 0; j < n; j++) L += (double)c->wa[j] * c->a[j] + (double)c->wb[j] * c->b[j] + (double)c->wo[j] * c->out[j];
    return L;
}

static void kt_gates_case(Rng *r, int M, int R, int approx) {
    size_t n = (size_t)M * R;
    KtGs c = {M, R, approx, kt_alloc(4 * n), kt_alloc(n), kt_alloc(n), kt_alloc(n), kt_alloc(n), kt_alloc((size_t)M * (R + 1)),
              kt_alloc(n), kt_alloc(n), kt_alloc(n)};
    kt_fill(c.proj, 4 * n, r, 1.5), kt_fill(c.wa, n, r, 1), kt_fill(c.wb, n, r, 1), kt_fill(c.g, (size_t)M * (R + 1), r, 2);
    kt_fill(c.y, n, r, 1), kt_fill(c.wo, n, r, 1);
    char tag[64];
    snprintf(tag, sizeof tag, "gssm/gelu gates M=%d R=%d %s", M, R, approx ? "tanh" : "erf");
    kt_gs_loss(&c);
    double e = 0;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < R; i++) {
            const real *pr = c.proj + (size_t)m * 4 * R;
            double x = c.g[(size_t)m * (R + 1) + i];
            double ge = approx ? 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) : 0.5 * x * (1 + erf(x / sqrt(2.0)));
            e = t_worst(e, fabs(c.a[(size_t)m * R + i] - kt_sig(pr[3 * R + i])));
            e = t_worst(e, fabs(c.b[(size_t)m * R + i] - kt_sig(pr[i]) * pr[R + i]));
            e = t_worst(e, fabs(c.out[(size_t)m * R + i] - ge * c.y[(size_t)m * R + i]));
        }
    CHECK(e < 1e-13, "%s: values vs naive err %.3g", tag, e);
    real *dproj = kt_alloc(4 * n), *dg = kt_alloc((size_t)M * (R + 1)), *dy = kt_alloc(n);
    for (size_t j = 0; j < 4 * n; j++) dproj[j] = 7;
    k_gssm_gate_bwd(c.proj, 4 * R, c.wa, c.wb, dproj, 4 * R, M, R);
    memcpy(dy, c.wo, sizeof(real) * n);
    k_mul_gelu_bwd(dy, R, c.y, R, c.g, R + 1, dg, R + 1, M, R, approx);
    double untouched = 0; /* the o columns are k_mul_gelu_bwd's */
    for (int m = 0; m < M; m++)
        for (int i = 0; i < R; i++) untouched = t_worst(untouched, fabs(dproj[(size_t)m * 4 * R + 2 * R + i] - 7));
    CHECK(untouched == 0, "%s: k_gssm_gate_bwd wrote the o columns", tag);
    double worst = 0;
    for (int s = 0; s < 16; s++) {
        size_t m = rng_below(r, M), i = rng_below(r, R), col = rng_below(r, 4);
        if (col == 2) col = 0;
        size_t j = m * 4 * R + col * R + i;
        worst = t_worst(worst, grad_rel_kt(dproj[j], fd_estimate(&c.proj[j], kt_gs_loss, &c, dproj[j])));
        size_t jg = m * (R + 1) + i, jy = m * R + i;
        worst = t_worst(worst, grad_rel_kt(dg[jg], fd_estimate(&c.g[jg], kt_gs_loss, &c, dg[jg])));
        worst = t_worst(worst, grad_rel_kt(dy[jy], fd_estimate(&c.y[jy], kt_gs_loss, &c, dy[jy])));
    }
    CHECK(worst < 1e-6, "%s: backward vs finite differences off by %.3g", tag, worst);
    /* bias add on a strided view */
    real *yb = kt_alloc((size_t)M * (R + 2)), *bias = kt_alloc(R);
    kt_fill(yb, (size_t)M * (R + 2), r, 1), kt_fill(bias, R, r, 1);
    real *y0 = kt_alloc((size_t)M * (R + 2));
    memcpy(y0, yb, sizeof(real) * M * (R + 2));
    k_bias_add(yb, R + 2, bias, M, R);
    double eb = 0;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < R + 2; i++)
            eb = t_worst(eb, fabs(yb[(size_t)m * (R + 2) + i] - y0[(size_t)m * (R + 2) + i] - (i < R ? bias[i] : 0)));
    CHECK(eb < 1e-15, "%s: k_bias_add err %.3g", tag, eb);
    free(yb), free(bias), free(y0), free(dproj), free(dg), free(dy);
    free(c.proj), free(c.a), free(c.b), free(c.wa), free(c.wb), free(c.g), free(c.y), free(c.out), free(c.wo);
}

static void kt_linrec(void) {
    Rng r;
    rng_init(&r, 1313, 0);
    kt_lin_case(&r, 2, 37, 5, 5, 0);
    kt_lin_case(&r, 3, 41, 70, 70, 1);  /* two channel blocks */
    kt_lin_case(&r, 3, 41, 70, 35, 1);  /* reverse half */
    kt_lin_case(&r, 2, 23, 9, 4, 1);    /* odd split */
    kt_lin_case(&r, 2, 19, 6, 0, 1);    /* all reverse */
    kt_lin_case(&r, 1, 1, 3, 3, 0);
    kt_rglru_case(&r, 3, 17, 5);
    kt_rglru_case(&r, 3, 9, 70);
    kt_gates_case(&r, 7, 5, 1);
    kt_gates_case(&r, 7, 5, 0);
}
