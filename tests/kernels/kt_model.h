/* kt_model.h — the model's kernels against naive references: RMSNorm forward and backward (exact
 * adjoint), softmax cross-entropy (loss, gradient, argmax), SiLU, column sums, SwiGLU forward and
 * backward, and the model ops (embedding gather / scatter-add with repeated ids, learned-position
 * rows with clamping, residual add, row gather / scatter, fills). */
#include "core/bf16.h"
#include "kernels/model_ops.h"

static void kt_norm_act(Rng *r) {
    int N = 13, D = 24, ld = 31, C = 19;
    real eps = (real)1e-5;
    real *x = kt_alloc((size_t)N * D), *w = kt_alloc(D), *y = kt_alloc((size_t)N * D), *yn = kt_alloc((size_t)N * D);
    real *rstd = kt_alloc(N), *dy = kt_alloc((size_t)N * D), *dx = kt_alloc((size_t)N * D), *dxn = kt_alloc((size_t)N * D);
    real *dw = kt_alloc(D), *dwn = kt_alloc(D);
    kt_fill(x, (size_t)N * D, r, 1), kt_fill(w, D, r, 1), kt_fill(dy, (size_t)N * D, r, 1);
    kt_fill(dx, (size_t)N * D, r, 1), kt_fill(dw, D, r, 1); /* accumulating: start from nonzero */
    memcpy(dxn, dx, sizeof(real) * N * D), memcpy(dwn, dw, sizeof(real) * D);
    k_rmsnorm_fwd(x, w, y, rstd, N, D, eps);
    k_rmsnorm_bwd(dy, x, w, rstd, dx, dw, N, D);
    for (int n = 0; n < N; n++) {
        const real *xr = x + (size_t)n * D, *g = dy + (size_t)n * D;
        double ss = 0, s, dot = 0;
        for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
        s = 1 / sqrt(ss / D + eps);
        for (int j = 0; j < D; j++) yn[(size_t)n * D + j] = (real)(w[j] * xr[j] * s), dot += (double)g[j] * w[j] * xr[j];
        for (int j = 0; j < D; j++) {
            /* y_j = w_j x_j s, ∂s/∂x_k = −s³ x_k / D */
            dxn[(size_t)n * D + j] += (real)(g[j] * w[j] * s - dot * s * s * s * xr[j] / D);
            dwn[j] += (real)(g[j] * xr[j] * s);
        }
    }
    CHECK(t_rel_err(y, yn, (size_t)N * D, 1e-3) < 1e-12, "rmsnorm forward vs naive");
    CHECK(t_rel_err(dx, dxn, (size_t)N * D, 1e-3) < 1e-12, "rmsnorm backward dx vs naive");
    CHECK(t_rel_err(dw, dwn, D, 1e-3) < 1e-12, "rmsnorm backward dw vs naive");
    /* SiLU on strided views */
    real *a = kt_alloc((size_t)N * ld), *b = kt_alloc((size_t)N * ld), *s1 = kt_alloc((size_t)N * ld);
    kt_fill(a, (size_t)N * ld, r, 2), kt_fill(b, (size_t)N * ld, r, 1);
    memcpy(s1, b, sizeof(real) * N * ld);
    k_silu_fwd(a, ld, s1, ld, N, C);
    double e = 0;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < ld; c++) {
            size_t i = (size_t)n * ld + c;
            double want = c < C ? a[i] / (1 + exp(-(double)a[i])) : b[i]; /* columns past C untouched */
            e = t_worst(e, fabs(s1[i] - want) / (1e-3 + fabs(want)));
        }
    CHECK(e < 1e-12, "silu vs naive (strided) err %.3g", e);
    /* column sums, with and without a second factor */
    real out[64], outn[64];
    for (int c = 0; c < C; c++) out[c] = outn[c] = (real)c;
    k_colsum_add(a, ld, b, ld, N, C, out);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) outn[c] += a[(size_t)n * ld + c] * b[(size_t)n * ld + c];
    CHECK(t_rel_err(out, outn, C, 1e-3) < 1e-12, "colsum a*b vs naive");
    k_colsum_add(a, ld, NULL, 0, N, C, out);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) outn[c] += a[(size_t)n * ld + c];
    CHECK(t_rel_err(out, outn, C, 1e-3) < 1e-12, "colsum a vs naive");
    /* SwiGLU and its backward */
    size_t n = (size_t)N * D;
    real *g = kt_alloc(n), *u = kt_alloc(n), *h = kt_alloc(n), *dh = kt_alloc(n), *dg = kt_alloc(n), *du = kt_alloc(n);
    kt_fill(g, n, r, 2), kt_fill(u, n, r, 1), kt_fill(dh, n, r, 1);
    k_swiglu_fwd(g, u, h, n);
    k_swiglu_bwd(dh, g, u, dg, du, n);
    double ef = 0, eb = 0;
    for (size_t i = 0; i < n; i++) {
        double sg = 1 / (1 + exp(-(double)g[i])), silu = g[i] * sg;
        ef = t_worst(ef, fabs(h[i] - silu * u[i]) / (1e-3 + fabs(silu * u[i])));
        double hp = 1e-6, fp = (g[i] + hp) / (1 + exp(-(g[i] + hp))), fm = (g[i] - hp) / (1 + exp(-(g[i] - hp)));
        double dgn = dh[i] * u[i] * (fp - fm) / (2 * hp); /* silu' by central differences */
        eb = t_worst(eb, fabs(dg[i] - dgn) / (1e-3 + fabs(dgn)));
        eb = t_worst(eb, fabs(du[i] - dh[i] * silu) / (1e-3 + fabs(dh[i] * silu)));
    }
    CHECK(ef < 1e-12, "swiglu forward vs naive err %.3g", ef);
    CHECK(eb < 1e-7, "swiglu backward vs finite differences err %.3g", eb);
    /* bf16 saved activations (Layer.act16): rounding to nearest even, and the SwiGLU backward from
     * bf16 gate/up equal to the fp32 one on the widened values */
    {
        real v[6] = {1.0, 1.00390625, 1.01171875, -2.5, 3.0e38, (real)NAN};
        uint16_t want[5] = {0x3f80, 0x3f80, 0x3f82, 0xc020, 0x7f62}, got[6];
        k_to_bf16(got, v, 6);
        int bad = 0;
        for (int i = 0; i < 5; i++) bad += got[i] != want[i];
        CHECK(!bad && (got[5] & 0x7f80) == 0x7f80 && (got[5] & 0x7f), "k_to_bf16: ties to even, NaN kept");
        uint16_t *g16 = malloc(n * 2), *u16 = malloc(n * 2);
        real *gw = kt_alloc(n), *uw = kt_alloc(n), *dg2 = kt_alloc(n), *du2 = kt_alloc(n);
        k_to_bf16(g16, g, n), k_to_bf16(u16, u, n);
        double er = 0;
        for (size_t i = 0; i < n; i++) {
            gw[i] = eid_bf16_float(g16[i]), uw[i] = eid_bf16_float(u16[i]);
            er = t_worst(er, fabs(gw[i] - g[i]) / (1e-30 + fabs(g[i])));
        }
        CHECK(er > 0 && er <= 1.0 / 256, "k_to_bf16: relative rounding error %.3g in (0, 2^-8]", er);
        /* k_from_bf16 widens exactly: the same values as the scalar widening, and a round trip of
         * widened values changes no bit */
        real *back = kt_alloc(n);
        uint16_t *again = malloc(n * 2);
        for (size_t i = 0; i < n; i++) back[i] = -1;
        k_from_bf16(back, g16, n);
        k_to_bf16(again, back, n);
        int differ = 0;
        for (size_t i = 0; i < n; i++) differ += back[i] != gw[i] || again[i] != g16[i];
        CHECK(differ == 0, "k_from_bf16: exact widening, round trip bit for bit (%d differ)", differ);
        free(back), free(again);
        k_swiglu_bwd(dh, gw, uw, dg, du, n);
        k_swiglu_bwd_b16(dh, g16, u16, dg2, du2, n);
        CHECK(t_rel_err(dg2, dg, n, 1e-30) < 1e-12 && t_rel_err(du2, du, n, 1e-30) < 1e-12,
              "k_swiglu_bwd_b16 == k_swiglu_bwd on the widened values");
        free(g16), free(u16), free(gw), free(uw), free(dg2), free(du2);
    }
    free(x), free(w), free(y), free(yn), free(rstd), free(dy), free(dx), free(dxn), free(dw), free(dwn);
    free(a), free(b), free(s1), free(g), free(u), free(h), free(dh), free(dg), free(du);
}

static void kt_xent(Rng *r) {
    int M = 9, V = 23;
    real *lg = kt_alloc((size_t)M * V), *g = kt_alloc((size_t)M * V);
    int lab[9];
    uint8_t ok[9];
    kt_fill(lg, (size_t)M * V, r, 3);
    for (int m = 0; m < M; m++) lab[m] = (int)rng_below(r, V);
    lg[2 * V + lab[2]] = 50; /* one row certainly right */
    memcpy(g, lg, sizeof(real) * M * V);
    real scale = (real)0.25;
    double loss = k_xent_fwd_bwd(g, lab, M, V, scale, ok), want = 0, e = 0;
    int bad = 0;
    for (int m = 0; m < M; m++) {
        const real *x = lg + (size_t)m * V;
        double mx = x[0], s = 0;
        int am = 0;
        for (int v = 1; v < V; v++)
            if (x[v] > x[am]) am = v, mx = x[v];
        for (int v = 0; v < V; v++) s += exp(x[v] - mx);
        want += mx + log(s) - x[lab[m]];
        for (int v = 0; v < V; v++) {
            double p = exp(x[v] - mx) / s, d = (p - (v == lab[m])) * scale;
            e = t_worst(e, fabs(g[(size_t)m * V + v] - d));
        }
        bad += ok[m] != (am == lab[m]);
    }
    CHECK(fabs(loss - want) < 1e-10 * fmax(1, fabs(want)), "xent loss %.12g vs naive %.12g", loss, want);
    CHECK(e < 1e-12, "xent gradient vs naive err %.3g", e);
    CHECK(bad == 0 && ok[2], "xent correct flags vs argmax (%d wrong)", bad);
    free(lg), free(g);
}

static void kt_model_ops(Rng *r) {
    int V = 11, D = 20, n = 37, nP = 6;
    real *E = kt_alloc((size_t)V * D), *P = kt_alloc((size_t)nP * D), *h = kt_alloc((size_t)n * D), *hn = kt_alloc((size_t)n * D);
    real *d = kt_alloc((size_t)n * D), *gE = kt_alloc((size_t)V * D), *gP = kt_alloc((size_t)nP * D);
    real *gEn = kt_alloc((size_t)V * D), *gPn = kt_alloc((size_t)nP * D);
    int tok[37], idx[37], rows[5] = {3, 0, 36, 17, 8};
    kt_fill(E, (size_t)V * D, r, 1), kt_fill(P, (size_t)nP * D, r, 1), kt_fill(d, (size_t)n * D, r, 1);
    kt_fill(gE, (size_t)V * D, r, 1), kt_fill(gP, (size_t)nP * D, r, 1);
    memcpy(gEn, gE, sizeof(real) * V * D), memcpy(gPn, gP, sizeof(real) * nP * D);
    for (int i = 0; i < n; i++) tok[i] = (int)rng_below(r, 4), idx[i] = (int)rng_below(r, nP + 3); /* repeats; idx past nP */
    k_embed_gather(E, tok, n, D, h);
    k_add_rows_indexed(h, P, nP, idx, n, D);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++)
            hn[(size_t)i * D + j] = E[(size_t)tok[i] * D + j] + P[(size_t)EID_MIN(idx[i], nP - 1) * D + j];
    CHECK(t_rel_err(h, hn, (size_t)n * D, 1e-3) < 1e-14, "embedding gather + clamped position rows vs naive");
    k_embed_scatter_add(d, tok, idx, n, D, gE, NULL);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++) gEn[(size_t)tok[i] * D + j] += d[(size_t)i * D + j];
    k_embed_scatter_add(d, tok, NULL, 0, D, gE, NULL); /* n = 0: nothing */
    for (int i = 0; i < n; i++) idx[i] %= nP; /* position gradients: rows < nP */
    real *gE2 = kt_alloc((size_t)V * D);
    k_embed_scatter_add(d, tok, idx, n, D, gE2, gP);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < D; j++) gPn[(size_t)idx[i] * D + j] += d[(size_t)i * D + j];
    CHECK(t_rel_err(gE, gEn, (size_t)V * D, 1e-3) < 1e-13, "embedding scatter-add with repeated ids vs naive");
    CHECK(t_rel_err(gP, gPn, (size_t)nP * D, 1e-3) < 1e-13, "position scatter-add vs naive");
    k_add(hn, h, d, (size_t)n * D);
    double e = 0;
    for (size_t i = 0; i < (size_t)n * D; i++) e = t_worst(e, fabs(hn[i] - (h[i] + d[i])));
    CHECK(e == 0, "k_add vs naive");
    real *gath = kt_alloc((size_t)5 * D), *sc = kt_alloc((size_t)n * D);
    k_rows_gather(h, rows, 5, D, gath);
    k_fill(sc, (size_t)n * D, 0);
    k_rows_scatter(gath, rows, 5, D, sc);
    int bad = 0;
    for (int r5 = 0; r5 < 5; r5++)
        for (int j = 0; j < D; j++)
            bad += gath[(size_t)r5 * D + j] != h[(size_t)rows[r5] * D + j] || sc[(size_t)rows[r5] * D + j] != h[(size_t)rows[r5] * D + j];
    for (int i = 0; i < n; i++)
        if (i != 3 && i != 0 && i != 36 && i != 17 && i != 8)
            for (int j = 0; j < D; j++) bad += sc[(size_t)i * D + j] != 0;
    CHECK(bad == 0, "row gather / scatter vs naive (%d wrong)", bad);
    k_fill(sc, (size_t)n * D, (real)1.5);
    for (size_t i = 0; i < (size_t)n * D; i++) bad += sc[i] != (real)1.5;
    CHECK(bad == 0, "k_fill");
    Rng a, b;
    rng_init(&a, 9, 0), rng_init(&b, 9, 0);
    k_fill_normal(sc, 10, 0.5, &a);
    for (int i = 0; i < 10; i++) bad += sc[i] != (real)(0.5 * rng_normal(&b));
    k_fill_uniform(sc, 10, 0.5, &a);
    for (int i = 0; i < 10; i++) bad += sc[i] != (real)(0.5 * (2 * rng_uniform(&b) - 1));
    CHECK(bad == 0, "k_fill_normal / k_fill_uniform draw in index order");
    free(E), free(P), free(h), free(hn), free(d), free(gE), free(gP), free(gEn), free(gPn), free(gE2), free(gath), free(sc);
}

static void kt_model(void) {
    Rng r;
    rng_init(&r, 606, 0);
    kt_norm_act(&r);
    kt_xent(&r);
    kt_model_ops(&r);
}
