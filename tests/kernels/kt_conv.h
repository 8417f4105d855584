/* kt_conv.h — k_conv1d_{fwd,bwd,step} against a naive reference (docs/layers.md §0.5):
 * segment resets, PAD tokens absent, an incoming ring, the outgoing ring, and
 * fwd(p1) → ring → fwd(p2) == fwd(p1‖p2) == the step loop. */

/* Naive: y_t = b + Σ_j w[j]·(the j-th of the K−1 previous non-PAD inputs in t's segment, or the
 * ring's entries before the row start), oldest first; ring_out = the last K−1 such inputs. */
static void naive_conv(const real *x, const real *w, const real *bias, real *y, int B, int T, int C, int K,
                       const uint8_t *f, const real *ring0, real *ring1) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            double hist[EID_CONV_MAX_K] = {0}; /* last K−1 inputs, oldest first */
            for (int j = 0; j < K - 1; j++) hist[j] = ring0 ? ring0[((size_t)b * C + c) * (K - 1) + j] : 0;
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)b * T + t;
                if (f && (f[i] & FLAG_PAD)) { y[i * C + c] = 0; continue; }
                if (f && (f[i] & FLAG_SEG_START)) memset(hist, 0, sizeof hist);
                double acc = bias ? bias[c] : 0;
                for (int j = 0; j < K - 1; j++) acc += w[(size_t)c * K + j] * hist[j];
                acc += w[(size_t)c * K + K - 1] * x[i * C + c];
                y[i * C + c] = (real)acc;
                for (int j = 0; j + 1 < K - 1; j++) hist[j] = hist[j + 1];
                if (K > 1) hist[K - 2] = x[i * C + c];
            }
            if (ring1)
                for (int j = 0; j < K - 1; j++) ring1[((size_t)b * C + c) * (K - 1) + j] = (real)hist[j];
        }
}

static void kt_conv_case(Rng *r, int B, int T, int C, int K, int use_flags, int use_ring) {
    size_t n = (size_t)B * T * C, nr = (size_t)B * C * (K - 1);
    real *x = kt_alloc(n), *w = kt_alloc((size_t)C * K), *bias = kt_alloc(C), *y = kt_alloc(n), *yn = kt_alloc(n);
    real *ring0 = kt_alloc(nr), *ring1 = kt_alloc(nr), *ringn = kt_alloc(nr), *dy = kt_alloc(n);
    kt_fill(x, n, r, 1), kt_fill(w, (size_t)C * K, r, 1), kt_fill(bias, C, r, 1), kt_fill(ring0, nr, r, 1);
    kt_fill(dy, n, r, 1);
    uint8_t *f = use_flags ? kt_flags(r, B, T, 0.1, 0.15) : NULL;
    const real *r0 = use_ring ? ring0 : NULL;
    if (use_ring && f) /* a row continuing from a ring must not reset at its first token */
        for (int b = 0; b < B; b++) f[(size_t)b * T] &= (uint8_t)~FLAG_SEG_START;
    char tag[96];
    snprintf(tag, sizeof tag, "conv B=%d T=%d C=%d K=%d%s%s", B, T, C, K, f ? " flags" : "", use_ring ? " ring" : "");
    k_conv1d_fwd(x, C, w, bias, y, C, B, T, C, K, f, r0, ring1);
    naive_conv(x, w, bias, yn, B, T, C, K, f, r0, ringn);
    CHECK(t_rel_err(y, yn, n, 1e-3) < 1e-12, "%s: forward vs naive", tag);
    CHECK(t_rel_err(ring1, ringn, nr, 1e-3) < 1e-12 || K == 1, "%s: outgoing ring vs naive", tag);
    /* two parts through the ring == one pass */
    int p = T / 3;
    if (p > 0 && p < T) {
        real *x1 = kt_alloc((size_t)B * p * C), *x2 = kt_alloc((size_t)B * (T - p) * C);
        real *y1 = kt_alloc((size_t)B * p * C), *y2 = kt_alloc((size_t)B * (T - p) * C), *mid = kt_alloc(nr);
        uint8_t *f1 = f ? eid_xmalloc((size_t)B * p) : NULL, *f2 = f ? eid_xmalloc((size_t)B * (T - p)) : NULL;
        for (int b = 0; b < B; b++) {
            memcpy(x1 + (size_t)b * p * C, x + (size_t)b * T * C, sizeof(real) * p * C);
            memcpy(x2 + (size_t)b * (T - p) * C, x + ((size_t)b * T + p) * C, sizeof(real) * (T - p) * C);
            if (f) memcpy(f1 + (size_t)b * p, f + (size_t)b * T, p), memcpy(f2 + (size_t)b * (T - p), f + (size_t)b * T + p, T - p);
        }
        if (r0) memcpy(mid, r0, sizeof(real) * nr);
        k_conv1d_fwd(x1, C, w, bias, y1, C, B, p, C, K, f1, r0 ? mid : NULL, mid); /* in place: ring1 == ring0 */
        k_conv1d_fwd(x2, C, w, bias, y2, C, B, T - p, C, K, f2, mid, mid);
        double e = 0;
        for (int b = 0; b < B; b++) {
            e = t_worst(e, t_rel_err(y1 + (size_t)b * p * C, yn + (size_t)b * T * C, (size_t)p * C, 1e-3));
            e = t_worst(e, t_rel_err(y2 + (size_t)b * (T - p) * C, yn + ((size_t)b * T + p) * C, (size_t)(T - p) * C, 1e-3));
        }
        CHECK(e < 1e-12, "%s: two parts through the ring vs one pass (%.3g)", tag, e);
        CHECK(K == 1 || t_rel_err(mid, ringn, nr, 1e-3) < 1e-12, "%s: ring after two parts", tag);
        free(x1), free(x2), free(y1), free(y2), free(mid), free(f1), free(f2);
    }
    /* backward: the conv is linear in x and in (w, b), so ⟨dy, y⟩ has exact directional derivatives */
    real *dx = kt_alloc(n), *dw = kt_alloc((size_t)C * K), *db = kt_alloc(C);
    k_conv1d_bwd(dy, C, x, C, w, dx, C, dw, db, B, T, C, K, f, r0);
    real *e1 = kt_alloc(n), *yy = kt_alloc(n);
    double worst = 0;
    for (int k = 0; k < 12; k++) { /* x: one entry at a time */
        size_t j = rng_below(r, n);
        memset(e1, 0, sizeof(real) * n);
        e1[j] = 1;
        naive_conv(e1, w, NULL, yy, B, T, C, K, f, NULL, NULL);
        double d = 0;
        for (size_t i = 0; i < n; i++) d += (double)dy[i] * yy[i];
        worst = t_worst(worst, fabs(d - dx[j]) / fmax(1, fabs(d)));
    }
    for (int k = 0; k < 12; k++) { /* w: perturb one tap */
        size_t j = rng_below(r, (size_t)C * K);
        real keep = w[j];
        double lp = 0, lm = 0;
        w[j] = keep + 1, naive_conv(x, w, bias, yy, B, T, C, K, f, r0, NULL);
        for (size_t i = 0; i < n; i++) lp += (double)dy[i] * yy[i];
        w[j] = keep - 1, naive_conv(x, w, bias, yy, B, T, C, K, f, r0, NULL);
        for (size_t i = 0; i < n; i++) lm += (double)dy[i] * yy[i];
        w[j] = keep;
        worst = t_worst(worst, fabs((lp - lm) / 2 - dw[j]) / fmax(1, fabs(dw[j])));
    }
    double dbn = 0;
    for (int c = 0; c < C; c++) { /* db = Σ dy over non-PAD tokens */
        double s = 0;
        for (size_t i = 0; i < (size_t)B * T; i++)
            if (!f || !(f[i] & FLAG_PAD)) s += dy[i * C + c];
        dbn = t_worst(dbn, fabs(s - db[c]));
    }
    double padg = 0;
    for (size_t i = 0; f && i < (size_t)B * T; i++)
        if (f[i] & FLAG_PAD)
            for (int c = 0; c < C; c++) padg = t_worst(padg, fabs(dx[i * C + c]));
    CHECK(worst < 1e-10 && dbn < 1e-10, "%s: backward vs exact directional derivatives (%.3g, db %.3g)", tag, worst, dbn);
    CHECK(padg == 0, "%s: input gradient at PAD is %.3g, not 0", tag, padg);
    /* the step kernel from the same ring == forward without flags */
    if (!f) {
        real *ring = kt_alloc(nr), *ys = kt_alloc((size_t)B * C), *xs = kt_alloc((size_t)B * C), *ystep = kt_alloc(n);
        if (r0) memcpy(ring, r0, sizeof(real) * nr);
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) memcpy(xs + (size_t)b * C, x + ((size_t)b * T + t) * C, sizeof(real) * C);
            k_conv1d_step(ring, (size_t)C * (K - 1), xs, C, w, bias, ys, C, B, C, K);
            for (int b = 0; b < B; b++) memcpy(ystep + ((size_t)b * T + t) * C, ys + (size_t)b * C, sizeof(real) * C);
        }
        CHECK(t_rel_err(ystep, yn, n, 1e-3) < 1e-12, "%s: step loop vs forward", tag);
        CHECK(K == 1 || t_rel_err(ring, ringn, nr, 1e-3) < 1e-12, "%s: step ring vs forward's outgoing ring", tag);
        free(ring), free(ys), free(xs), free(ystep);
    }
    free(x), free(w), free(bias), free(y), free(yn), free(ring0), free(ring1), free(ringn), free(dy), free(f);
    free(dx), free(dw), free(db), free(e1), free(yy);
}

static void kt_conv(void) {
    Rng r;
    rng_init(&r, 5, 0);
    int shapes[][4] = {{1, 1, 1, 1}, {2, 9, 5, 4}, {3, 37, 33, 4}, {2, 70, 64, 3}, {1, 19, 40, 16}};
    for (int s = 0; s < 5; s++)
        for (int fl = 0; fl < 2; fl++)
            for (int rg = 0; rg < 2; rg++) kt_conv_case(&r, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], fl, rg);
}
