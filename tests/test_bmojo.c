/* test_bmojo.c — the B'MOJO mixers (docs/layers.md §6, §7; docs/bmojo.md): the generic layer suite
 * (gradients through the fading keys into the SSM, forward == step past W and 2W, chunk sizes,
 * prefill, PAD) for several SSMs and options; the LSE-merged passes against one softmax over the
 * explicit union written here (window ∪ fading ∪ store, selection included); the store chosen while
 * decoding == the parallel pass's, token for token; score none == bmojo-f; W ≥ T == full attention;
 * the predictor's own gradient; resolve() errors. */
#include "layer_harness.h"
#include "kernels/bmojo.h"

/* ---- the explicit union, from the definitions (doubles, no kernels) ---- */

static void rope_naive(double *x, int nh, int dh, long pos, double theta) {
    int half = dh / 2;
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < half; i++) {
            double phi = pos * pow(theta, -2.0 * i / dh), c = cos(phi), s = sin(phi);
            double *a = x + (size_t)h * dh, x0 = a[i], x1 = a[i + half];
            a[i] = x0 * c - x1 * s, a[i + half] = x1 * c + x0 * s;
        }
}

static void matvec(const real *W, const real *x, int rows, int cols, double *y) {
    for (int r = 0; r < rows; r++) {
        double a = 0;
        for (int c = 0; c < cols; c++) a += (double)W[(size_t)r * cols + c] * x[c];
        y[r] = a;
    }
}

static void head_norm(double *x, int nh, int dh, const real *w) {
    for (int h = 0; h < nh; h++) {
        double *a = x + (size_t)h * dh, s = 0;
        for (int i = 0; i < dh; i++) s += a[i] * a[i];
        double r = 1 / sqrt(s / dh + 1e-6);
        for (int i = 0; i < dh; i++) a[i] *= r * w[i];
    }
}

static double score_naive(const double *k0, const double *p, int C) {
    double sa = 0, sb = 0, e = 0;
    for (int c = 0; c < C; c++) sa += k0[c] * k0[c], sb += p[c] * p[c];
    double ra = sa > 0 ? 1 / sqrt(sa / C) : 0, rb = sb > 0 ? 1 / sqrt(sb / C) : 0;
    for (int c = 0; c < C; c++) e += (k0[c] * ra - p[c] * rb) * (k0[c] * ra - p[c] * rb);
    return e / C;
}

/* The SSM of a B'MOJO TLayer as a layer of its own (same parameter memory). */
typedef struct { LayerCfg cfg; Layer l; Arena a; } Ssm;
static void ssm_open(Ssm *s, TLayer *t, int B, int T) {
    memset(s, 0, sizeof *s);
    snprintf(s->cfg.mixer, sizeof s->cfg.mixer, "%s", t->cfg.ssm);
    const LayerCfg *c = &t->cfg;
    s->cfg.expand = c->expand, s->cfg.d_state = c->d_state, s->cfg.d_conv = c->d_conv, s->cfg.dt_rank = c->dt_rank;
    s->cfg.headdim = c->headdim, s->cfg.ngroups = c->ngroups, s->cfg.gate_low_rank_dim = c->gate_low_rank_dim;
    s->cfg.expand_k = c->expand_k, s->cfg.expand_v = c->expand_v, s->cfg.gate_logit_normalizer = c->gate_logit_normalizer;
    s->cfg.num_heads = c->ssm_heads, s->cfg.chunk = c->chunk;
    s->l.ops = layer_find(s->cfg.mixer);
    s->l.ops->resolve(&s->cfg, t->l.D);
    s->l.cfg = &s->cfg, s->l.D = t->l.D;
    s->l.nparam = s->l.ops->params(&s->cfg, t->l.D, 1, NULL);
    for (int i = 0; i < s->l.nparam; i++) s->l.p[i] = t->l.p[i], s->l.g[i] = t->l.g[i];
    arena_begin_measure(&s->a);
    s->l.ops->plan(&s->l, &s->a, B, T);
    arena_commit(&s->a);
    s->l.ops->plan(&s->l, &s->a, B, T);
}

/* y [B, T, D] = the layer by definition; sets per query the store positions it saw (memo [B·T][M],
 * memn [B·T]) when memo != NULL. Rows without PAD; SEG_START flags restart positions. */
static void naive_forward(TLayer *t, const real *x, real *y, int B, int T, const uint8_t *flags, int *memo, int *memn) {
    const LayerCfg *c = &t->cfg;
    int D = t->l.D, H = c->num_heads, Hkv = c->num_kv_heads, dh = c->head_dim, HD = H * dh, KD = Hkv * dh, W = c->window;
    int store = !strcmp(c->mixer, "bmojo") && strcmp(c->score, "none"), M = c->mem_size, ke = c->mem_topk;
    int G = H / Hkv, nssm, pi = 0;
    double theta = c->no_rope ? 0 : c->rope_theta;
    Ssm ss;
    ssm_open(&ss, t, B, T);
    nssm = ss.l.nparam;
    real *F = eid_aligned_alloc(sizeof(real) * (size_t)B * T * D);
    SeqInfo si = {B, T, flags};
    ss.l.ops->forward(&ss.l, x, F, &si);
    real **p = t->l.p;
    pi = nssm;
    const real *wq = p[pi++], *wk = p[pi++], *wv = p[pi++], *wo = p[pi++], *wqf = wq, *wkf = wk, *wvf = wv, *qn = NULL,
               *kn = NULL, *we = NULL;
    if (c->untied) wqf = p[pi++], wkf = p[pi++], wvf = p[pi++];
    if (c->qk_norm) qn = p[pi++], kn = p[pi++];
    if (store && !strcmp(c->score, "pred")) we = p[pi++];
    size_t n = (size_t)B * T;
    double *Q = calloc(n * HD, 8), *Qf = calloc(n * HD, 8), *K = calloc(n * KD, 8), *V = calloc(n * KD, 8);
    double *Kf = calloc(n * KD, 8), *Vf = calloc(n * KD, 8), *e = calloc(n, 8), *pr = calloc(KD, 8);
    double *sc = calloc((size_t)3 * T + M + 4, 8), *o = calloc(HD, 8);
    int *pos = calloc(n, sizeof(int));
    for (int b = 0; b < B; b++) {
        int p0 = 0;
        for (int tt = 0; tt < T; tt++) {
            size_t i = (size_t)b * T + tt;
            if (flags && (flags[i] & FLAG_SEG_START)) p0 = 0;
            pos[i] = p0++;
            matvec(wq, x + i * D, HD, D, Q + i * HD), matvec(wk, x + i * D, KD, D, K + i * KD);
            matvec(wv, x + i * D, KD, D, V + i * KD), matvec(wqf, x + i * D, HD, D, Qf + i * HD);
            matvec(wkf, F + i * D, KD, D, Kf + i * KD), matvec(wvf, F + i * D, KD, D, Vf + i * KD);
            if (qn) {
                head_norm(Q + i * HD, H, dh, qn), head_norm(Qf + i * HD, H, dh, qn);
                head_norm(K + i * KD, Hkv, dh, kn), head_norm(Kf + i * KD, Hkv, dh, kn);
            }
            if (store) { /* score on the key before RoPE, predicted from the previous F of the segment */
                if (we) {
                    if (pos[i] == 0) memset(pr, 0, sizeof(double) * KD);
                    else matvec(we, F + (i - 1) * D, KD, D, pr);
                    e[i] = score_naive(K + i * KD, pr, KD);
                } else e[i] = k_bmojo_score_random(pos[i]);
            }
            if (theta > 0) {
                rope_naive(Q + i * HD, H, dh, pos[i], theta), rope_naive(Qf + i * HD, H, dh, pos[i], theta);
                rope_naive(K + i * KD, Hkv, dh, pos[i], theta), rope_naive(Kf + i * KD, Hkv, dh, pos[i], theta);
            }
        }
    }
    int *sel = calloc(n, sizeof(int)), *ends = calloc(T + 1, sizeof(int)), *cand = calloc(T + 1, sizeof(int));
    for (int b = 0; b < B; b++)
        for (int tt = 0; tt < T; tt++) {
            size_t i = (size_t)b * T + tt;
            int s0 = tt - pos[i]; /* segment start */
            /* the store: selections of chunks 0 … c−2 of the segment (by sorting each chunk), last M */
            int c2 = pos[i] / W - 2, nsel = 0;
            for (int ch = 0; store && ch <= c2; ch++) {
                int nc = 0;
                for (int u = s0 + ch * W; u < s0 + (ch + 1) * W; u++) cand[nc++] = u;
                for (int a = 0; a < nc; a++) /* by (e desc, position desc) */
                    for (int z = a + 1; z < nc; z++) {
                        double ea = e[(size_t)b * T + cand[a]], ez = e[(size_t)b * T + cand[z]];
                        if (ez > ea || (ez == ea && cand[z] > cand[a])) { int tmp = cand[a]; cand[a] = cand[z], cand[z] = tmp; }
                    }
                int take = nc < ke ? nc : ke;
                for (int a = 0; a < take; a++) /* position order */
                    for (int z = a + 1; z < take; z++)
                        if (cand[z] < cand[a]) { int tmp = cand[a]; cand[a] = cand[z], cand[z] = tmp; }
                for (int a = 0; a < take; a++) sel[nsel++] = cand[a];
            }
            int m0 = nsel > M ? nsel - M : 0;
            if (memo) {
                memn[i] = nsel - m0;
                for (int a = m0; a < nsel; a++) memo[i * M + (a - m0)] = pos[(size_t)b * T + sel[a]];
            }
            for (int h = 0; h < H; h++) {
                int g = h / G, ns = 0;
                const double *qh = Q + i * HD + (size_t)h * dh, *qfh = Qf + i * HD + (size_t)h * dh;
                double mx = -1e300, sum = 0;
                /* (set, key index) pairs */
                int kind[3 * 4096], idx[3 * 4096];
                for (int j = s0; j <= tt; j++) {
                    int dist = pos[i] - pos[(size_t)b * T + j];
                    if (dist < W) kind[ns] = 0, idx[ns++] = j;
                    else if (dist < 2 * W) kind[ns] = 1, idx[ns++] = j;
                }
                for (int a = m0; a < nsel; a++) kind[ns] = 2, idx[ns++] = sel[a];
                for (int a = 0; a < ns; a++) {
                    size_t j = (size_t)b * T + idx[a];
                    const double *kk = (kind[a] == 1 ? Kf : K) + j * KD + (size_t)g * dh, *qq = kind[a] == 1 ? qfh : qh;
                    double s = 0;
                    for (int d = 0; d < dh; d++) s += qq[d] * kk[d];
                    sc[a] = s / sqrt((double)dh), mx = t_worst(mx, sc[a]);
                }
                memset(o + (size_t)h * dh, 0, sizeof(double) * dh);
                for (int a = 0; a < ns; a++) sum += exp(sc[a] - mx);
                for (int a = 0; a < ns; a++) {
                    size_t j = (size_t)b * T + idx[a];
                    const double *vv = (kind[a] == 1 ? Vf : V) + j * KD + (size_t)g * dh;
                    for (int d = 0; d < dh; d++) o[(size_t)h * dh + d] += exp(sc[a] - mx) / sum * vv[d];
                }
            }
            for (int r = 0; r < D; r++) {
                double a = 0;
                for (int k = 0; k < HD; k++) a += (double)wo[(size_t)r * HD + k] * o[k];
                y[i * D + r] = (real)a;
            }
        }
    free(Q), free(Qf), free(K), free(V), free(Kf), free(Vf), free(e), free(pr), free(sc), free(o), free(pos);
    free(sel), free(ends), free(cand), free(F);
    arena_free(&ss.a);
}

static LayerCfg cfg_of(const char *mixer, const char *ssm, int W, int H, int Hkv) {
    LayerCfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.mixer, sizeof c.mixer, "%s", mixer);
    snprintf(c.ssm, sizeof c.ssm, "%s", ssm);
    c.window = W, c.num_heads = H, c.num_kv_heads = Hkv, c.d_state = !strcmp(ssm, "gla") || !strcmp(ssm, "hawk") ? 0 : 4;
    c.chunk = 8;
    return c;
}

/* the layer's forward == the explicit union (with a segment restart inside row 1) */
static void check_union(LayerCfg cfg, int D, int T, const char *tag) {
    TLayer t;
    tl_init(&t, layer_find(cfg.mixer), &cfg, D, 5);
    int B = 2;
    size_t n = (size_t)B * T * D;
    uint8_t *fl = make_flags(B, T, T / 2 + 1);
    Rng r;
    rng_init(&r, 3, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real)), *yn = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    SeqInfo s = {B, T, fl};
    tl_plan(&t, B, T);
    t.l.ops->forward(&t.l, x, y, &s);
    naive_forward(&t, x, yn, B, T, fl, NULL, NULL);
    double e = t_rel_err(y, yn, n, 1e-6);
    CHECK(e < 1e-10, "%s %s: LSE-merged passes vs one softmax over the explicit union rel err %.3g", cfg.mixer, tag, e);
    free(x), free(y), free(yn), free(fl);
    tl_free(&t);
}

/* decoding's FIFO after each token == the store the parallel definition gives that query */
static void check_store_decode(LayerCfg cfg, int D, int T, const char *tag) {
    TLayer t;
    tl_init(&t, layer_find(cfg.mixer), &cfg, D, 8);
    size_t n = (size_t)T * D, ss = t.l.ops->state_size(&t.cfg, D);
    int M = t.cfg.mem_size, *memo = calloc((size_t)T * M, sizeof(int)), *memn = calloc(T, sizeof(int)), got[4096];
    Rng r;
    rng_init(&r, 4, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real)), *ys = eid_aligned_alloc(D * sizeof(real));
    real *yp = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    naive_forward(&t, x, y, 1, T, NULL, memo, memn);
    SeqInfo s = {1, T, NULL};
    tl_plan(&t, 1, T);
    t.l.ops->forward(&t.l, x, yp, &s);
    tl_plan_step(&t, 1);
    real *st = eid_aligned_alloc(ss * sizeof(real));
    memset(st, 0, ss * sizeof(real));
    /* the attention part of the state sits after the SSM's */
    Ssm sm;
    ssm_open(&sm, &t, 1, 1);
    size_t off = sm.l.ops->state_size(&sm.cfg, D);
    arena_free(&sm.a);
    KBmojo kd = {t.cfg.num_heads, t.cfg.num_kv_heads, t.cfg.head_dim, t.cfg.window, M, t.cfg.mem_topk, D,
                 !strcmp(t.cfg.score, "random"), t.cfg.rope_theta};
    int bad = 0, nonempty = 0;
    double ey = 0;
    for (int tt = 0; tt < T; tt++) {
        t.l.ops->step(&t.l, st, x + (size_t)tt * D, ys, 1);
        ey = t_worst(ey, t_rel_err(ys, yp + (size_t)tt * D, D, 1e-6));
        int k = k_bmojo_state_store(st + off, &kd, got);
        nonempty += k > 0;
        if (k != memn[tt]) { bad++; continue; }
        for (int a = 0; a < k; a++) bad += got[a] != memo[(size_t)tt * M + a];
    }
    CHECK(bad == 0, "%s %s: the store chosen while decoding differs from the parallel selection at %d entries", cfg.mixer, tag, bad);
    CHECK(nonempty >= T / 2, "%s %s: the store was empty at %d of %d positions (the test must exercise it)", cfg.mixer, tag, T - nonempty, T);
    CHECK(ey < 1e-10, "%s %s: step vs forward rel err %.3g", cfg.mixer, tag, ey);
    free(memo), free(memn), free(x), free(y), free(ys), free(yp), free(st);
    tl_free(&t);
}

/* two layers with the same parameter values give the same outputs */
static double same_outputs(LayerCfg ca, LayerCfg cb, int D, int T, int copy_attn_only) {
    TLayer a, b;
    tl_init(&a, layer_find(ca.mixer), &ca, D, 9);
    tl_init(&b, layer_find(cb.mixer), &cb, D, 10);
    if (!copy_attn_only) {
        for (int i = 0; i < b.l.nparam; i++) memcpy(b.l.p[i], a.l.p[i], b.numel[i] * sizeof(real));
    } else { /* b is attn: q, k, v, o after a's SSM parameters */
        int off = a.l.nparam - 4;
        for (int i = 0; i < 4; i++) memcpy(b.l.p[i], a.l.p[off + i], b.numel[i] * sizeof(real));
    }
    size_t n = (size_t)2 * T * D;
    Rng r;
    rng_init(&r, 6, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *ya = eid_aligned_alloc(n * sizeof(real)), *yb = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    SeqInfo s = {2, T, NULL};
    tl_plan(&a, 2, T), tl_plan(&b, 2, T);
    a.l.ops->forward(&a.l, x, ya, &s);
    b.l.ops->forward(&b.l, x, yb, &s);
    double e = t_rel_err(ya, yb, n, 1e-6);
    free(x), free(ya), free(yb);
    tl_free(&a), tl_free(&b);
    return e;
}

/* bmojo with score pred: finite differences for every parameter but W_e (which the output does not
 * depend on), and W_e's gradient == the derivative of its own loss mean_t e_t (with dy = 0). */
static void check_pred_gradients(LayerCfg cfg, int D) {
    TLayer t;
    tl_init(&t, layer_find(cfg.mixer), &cfg, D, 12);
    int B = 2, T = 9, ie = t.l.nparam - 1;
    CHECK(!strcmp(t.spec[ie].name, "mixer.innov.weight"), "the last parameter of bmojo (pred) is %s", t.spec[ie].name);
    size_t n = (size_t)B * T * D;
    SeqInfo s = {B, T, NULL};
    tl_plan(&t, B, T);
    Rng r;
    rng_init(&r, 13, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *w = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real));
    real *dx = eid_aligned_alloc(n * sizeof(real)), *z = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1), rand_fill(w, n, &r, 1);
    for (int i = 0; i < t.l.nparam; i++) memset(t.l.g[i], 0, t.numel[i] * sizeof(real));
    memset(dx, 0, n * sizeof(real));
    tl_loss(&t, x, w, y, &s);
    t.l.ops->backward(&t.l, w, dx, &s);
    LossCtx lc = {&t, x, w, y, &s};
    for (int i = -1; i < ie; i++) {
        real *p = i < 0 ? x : t.l.p[i], *g = i < 0 ? dx : t.l.g[i];
        size_t cnt = i < 0 ? n : t.numel[i];
        double worst = 0, gmax = 1e-6;
        for (size_t j = 0; j < cnt; j++) gmax = t_worst(gmax, fabs((double)g[j]));
        for (int k = 0; k < (cnt < 25 ? (int)cnt : 25); k++) {
            size_t j = cnt <= 25 ? (size_t)k : (size_t)rng_below(&r, cnt);
            worst = t_worst(worst, grad_rel(g[j], fd_estimate(&p[j], tl_loss_cb, &lc, g[j]), 1e-3 * gmax));
        }
        CHECK(worst < 1e-5, "bmojo pred: gradient of %s off by %.3g", i < 0 ? "the input" : t.spec[i].name, worst);
    }
    /* W_e: backward with dy = 0 leaves only the predictor's loss; compare with its finite difference */
    memset(z, 0, n * sizeof(real));
    memset(t.l.g[ie], 0, t.numel[ie] * sizeof(real));
    t.l.ops->forward(&t.l, x, y, &s);
    t.l.ops->backward(&t.l, z, dx, &s);
    Ssm sm;
    ssm_open(&sm, &t, B, T);
    real *F = eid_aligned_alloc(n * sizeof(real));
    sm.l.ops->forward(&sm.l, x, F, &s);
    int KD = t.cfg.num_kv_heads * t.cfg.head_dim, qkw = t.cfg.qk_norm;
    double worst = 0, gmax = 1e-9;
    for (size_t j = 0; j < t.numel[ie]; j++) gmax = t_worst(gmax, fabs((double)t.l.g[ie][j]));
    CHECK(gmax > 1e-6, "bmojo pred: the predictor got no gradient");
    for (int k = 0; k < 20; k++) {
        size_t j = (size_t)rng_below(&r, t.numel[ie]);
        double L[2], h = 1e-5, save = t.l.p[ie][j];
        for (int sgn = 0; sgn < 2; sgn++) {
            t.l.p[ie][j] = (real)(save + (sgn ? -h : h));
            double acc = 0, k0[256], pr[256];
            for (int b = 0; b < B; b++)
                for (int tt = 0; tt < T; tt++) {
                    size_t i = (size_t)b * T + tt;
                    matvec(t.l.p[ie - 3 - (qkw ? 2 : 0) - (t.cfg.untied ? 3 : 0)], x + i * D, KD, D, k0); /* k_proj */
                    if (qkw) head_norm(k0, t.cfg.num_kv_heads, t.cfg.head_dim, t.l.p[ie - 1]); /* K⁰ is after k_norm */
                    if (tt == 0) memset(pr, 0, sizeof pr);
                    else matvec(t.l.p[ie], F + (i - 1) * D, KD, D, pr);
                    acc += score_naive(k0, pr, KD);
                }
            L[sgn] = acc / (B * T);
        }
        t.l.p[ie][j] = (real)save;
        worst = t_worst(worst, grad_rel(t.l.g[ie][j], (L[0] - L[1]) / (2 * h), 1e-3 * gmax));
    }
    CHECK(worst < 1e-5, "bmojo pred: gradient of innov.weight vs its loss mean_t e_t off by %.3g", worst);
    arena_free(&sm.a);
    free(x), free(w), free(y), free(dx), free(z), free(F);
    tl_free(&t);
}

/* Ties (equal scores): the later positions win, in the parallel selection and in decoding alike. */
static void check_ties(void) {
    enum { T = 16 };
    KBmojo kd = {1, 1, 2, 4, 8, 2, 2, 0, 0};
    size_t ss = k_bmojo_state_size(&kd);
    real *st = calloc(ss, sizeof(real)), q[T * 2], k[T * 2], v[T * 2], kf[T * 2], vf[T * 2], o[T * 2], e[T];
    int pos[T], sel[T], mlo[T], mhi[T], scr[2 * T], got[8];
    for (int i = 0; i < T; i++) {
        pos[i] = i, e[i] = (real)0.5;
        for (int c = 0; c < 2; c++) q[2 * i + c] = k[2 * i + c] = v[2 * i + c] = kf[2 * i + c] = vf[2 * i + c] = (real)(i + c);
    }
    k_bmojo_select(e, pos, NULL, 1, T, 4, 2, 8, sel, mlo, mhi, scr);
    k_bmojo_tokens(st, ss, 0, &kd, 1, T, NULL, q, q, k, v, kf, vf, e, o);
    int n = k_bmojo_state_store(st, &kd, got), want[4] = {2, 3, 6, 7};
    CHECK(mhi[T - 1] - mlo[T - 1] == 4 && n == 4, "ties: store sizes %d (parallel) and %d (decode), expected 4",
          mhi[T - 1] - mlo[T - 1], n);
    for (int a = 0; a < 4 && n == 4; a++)
        CHECK(sel[mlo[T - 1] + a] == want[a] && got[a] == want[a], "ties: entry %d is %d (parallel) / %d (decode), expected %d",
              a, sel[mlo[T - 1] + a], got[a], want[a]);
    free(st);
}

static void check_resolve_errors(void) {
    LayerCfg c = cfg_of("bmojo-f", "attn", 4, 1, 1);
    CHECK(layer_find("bmojo-f")->resolve(&c, 8) != 0 && strstr(eid_last_error(), "ssm must be"), "ssm attn accepted");
    c = cfg_of("bmojo-f", "mamba2", 4, 1, 1);
    c.mem_size = 4;
    CHECK(layer_find("bmojo-f")->resolve(&c, 8) != 0 && strstr(eid_last_error(), "mem_size"), "bmojo-f took mem_size");
    c = cfg_of("bmojo", "mamba2", 4, 1, 1);
    snprintf(c.score, sizeof c.score, "surprise");
    CHECK(layer_find("bmojo")->resolve(&c, 8) != 0 && strstr(eid_last_error(), "score must be"), "score surprise accepted");
    c = cfg_of("bmojo", "mamba2", 4, 1, 1);
    c.mem_topk = 5;
    CHECK(layer_find("bmojo")->resolve(&c, 8) != 0 && strstr(eid_last_error(), "mem_topk"), "k_e > W accepted");
    c = cfg_of("bmojo", "longhorn", 8, 1, 1);
    CHECK(layer_find("bmojo")->resolve(&c, 8) == 0 && c.mem_size == 8 && c.mem_topk == 1 && !strcmp(c.score, "pred"),
          "bmojo defaults: M = W, k_e = max(1, W/8), score pred (got %d, %d, %s)", c.mem_size, c.mem_topk, c.score);
    c = cfg_of("bmojo-f", "longhorn", 8, 1, 1);
    c.headdim = 4;
    CHECK(layer_find("bmojo-f")->resolve(&c, 8) != 0 && strstr(eid_last_error(), "headdim"), "headdim for longhorn accepted");
}

#include <time.h>
static void lap(const char *what) {
    static double t0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = ts.tv_sec + 1e-9 * ts.tv_nsec;
    if (getenv("BMOJO_TIMES") && t0) fprintf(stderr, "  %-28s %.2f s\n", what, now - t0);
    t0 = now;
}

int main(void) {
    eid_runtime_setup(getenv("BMOJO_THREADS") ? atoi(getenv("BMOJO_THREADS")) : 2, 0);
    lap("start");
    const int D = 8;
    /* the generic suite: W = 3 (fading from position 3, 2W = 6 ≪ T = 37), GQA, each SSM */
    LayerCfg c = cfg_of("bmojo-f", "mamba2", 3, 2, 1);
    layer_suite("bmojo-f", c, D);
    lap("suite mamba2");
    c = cfg_of("bmojo-f", "longhorn", 2, 2, 2);
    c.qk_norm = 1, c.untied = 1;
    layer_suite("bmojo-f", c, D);
    lap("suite longhorn");
    const char *others[] = {"mamba", "gla", "hawk"};
    for (int i = 0; i < 3; i++) {
        c = cfg_of("bmojo-f", others[i], 3, 1, 1);
        TLayer t;
        tl_init(&t, layer_find("bmojo-f"), &c, D, 77);
        if (i == 0) { /* Mamba-1: Δ and A drawn wider (as tests/test_mamba.c does) so that its gradients are not ~1e-10 */
            Rng r;
            rng_init(&r, 4321, 0);
            int I = t.cfg.expand * D, N = t.cfg.d_state;
            CHECK(!strcmp(t.spec[5].name, "mixer.ssm.dt_proj.bias") && !strcmp(t.spec[6].name, "mixer.ssm.A_log"),
                  "mamba parameter order: %s, %s", t.spec[5].name, t.spec[6].name);
            for (int k = 0; k < I; k++) t.l.p[5][k] = (real)(-2 + 2.5 * rng_uniform(&r));
            for (int k = 0; k < I; k++)
                for (int n = 0; n < N; n++) t.l.p[6][k * N + n] = (real)(log(n + 1.0) + 0.3 * (2 * rng_uniform(&r) - 1));
            int o = 0; /* and F larger: the fading path's share of the output (hence of every SSM gradient) grows */
            while (strcmp(t.spec[o].name, "mixer.ssm.out_proj.weight")) o++;
            for (size_t k = 0; k < t.numel[o]; k++) t.l.p[o][k] *= 10;
        }
        uint8_t *fl = make_flags(2, 7, 4), *f2 = make_flags(2, 19, 9);
        check_gradients(&t, 2, 7, fl, others[i]);
        check_step_equivalence(&t, 2, 19, NULL, 1e-10, others[i]);
        check_prefill(&t, 2, 19, f2, 1e-10, others[i]);
        free(fl), free(f2);
        tl_free(&t);
        lap(others[i]);
    }
    /* the store: random score in the suite (W_e absent), W = 2, M = 3, k_e = 1 */
    c = cfg_of("bmojo", "mamba2", 2, 2, 1);
    snprintf(c.score, sizeof c.score, "random");
    c.mem_size = 3, c.mem_topk = 1;
    layer_suite("bmojo", c, D);
    lap("suite bmojo random");
    /* pred: gradients (all but W_e by finite differences; W_e by its own loss) */
    c = cfg_of("bmojo", "mamba2", 2, 1, 1);
    c.mem_size = 2, c.mem_topk = 1;
    check_pred_gradients(c, D);
    c.qk_norm = 1, c.untied = 1;
    check_pred_gradients(c, D);
    lap("pred grads");
    {
        c = cfg_of("bmojo", "mamba2", 2, 1, 1);
        c.mem_size = 2, c.mem_topk = 1;
        TLayer t;
        tl_init(&t, layer_find("bmojo"), &c, D, 78);
        check_step_equivalence(&t, 2, 37, NULL, 1e-10, "pred T=37");
        check_prefill(&t, 2, 37, NULL, 1e-10, "pred T=37");
        tl_free(&t);
    }
    lap("pred step/prefill");
    /* the explicit union */
    c = cfg_of("bmojo-f", "mamba2", 3, 2, 1);
    check_union(c, D, 23, "W=3 GQA");
    c.qk_norm = 1, c.untied = 1;
    check_union(c, D, 23, "W=3 qk_norm untied");
    c = cfg_of("bmojo", "mamba2", 3, 2, 1);
    c.mem_size = 4, c.mem_topk = 2;
    check_union(c, D, 29, "W=3 M=4 k_e=2 pred");
    snprintf(c.score, sizeof c.score, "random");
    check_union(c, D, 29, "W=3 M=4 k_e=2 random");
    c = cfg_of("bmojo", "longhorn", 4, 1, 1);
    c.mem_size = 16, c.mem_topk = 3, c.qk_norm = 1;
    check_union(c, D, 33, "W=4 M=16 k_e=3 qk_norm");
    lap("union");
    /* decoding selects the same store */
    c = cfg_of("bmojo", "mamba2", 3, 1, 1);
    c.mem_size = 4, c.mem_topk = 2;
    check_store_decode(c, D, 40, "W=3 M=4 k_e=2");
    c.mem_size = 2, c.mem_topk = 3;
    check_store_decode(c, D, 40, "W=3 M=2 k_e=3");
    lap("store decode");
    /* score none == bmojo-f; W ≥ T == full attention */
    LayerCfg a = cfg_of("bmojo", "mamba2", 3, 2, 1), f = cfg_of("bmojo-f", "mamba2", 3, 2, 1);
    snprintf(a.score, sizeof a.score, "none");
    double e = same_outputs(a, f, D, 17, 0);
    CHECK(e == 0, "bmojo with score none vs bmojo-f: outputs differ by %.3g", e);
    LayerCfg big = cfg_of("bmojo-f", "mamba2", 40, 2, 1), at;
    memset(&at, 0, sizeof at);
    snprintf(at.mixer, sizeof at.mixer, "attn");
    at.num_heads = 2, at.num_kv_heads = 1, at.chunk = 8;
    e = same_outputs(big, at, D, 17, 1);
    CHECK(e < 1e-12, "bmojo-f with W >= T vs full attention rel err %.3g", e);
    check_resolve_errors();
    check_ties();
    return t_summary("test_bmojo");
}
