/* test_attention.c — softmax attention mixers "attn" and "swa" (docs/layers.md §5):
 * the generic layer suite (gradients, step equivalence, chunk invariance) for several shapes, plus
 *   blocked (online-softmax) forward == a naive explicit-softmax attention written here, for block
 *   sizes that do not divide T, with segment resets, windows and GQA;
 *   SWA with W >= T == full attention (outputs and gradients);
 *   full attention decoding past max_len == SWA with W = max_len (documented fallback);
 *   resolve() defaults and validation; state sizes. */
#include "layer_harness.h"

extern const LayerOps attn_ops, swa_ops;

/* Naive reference: explicit scores over all j, mask, softmax, RoPE from its own trig. */
static void naive_attention(const TLayer *t, int B, int T, const uint8_t *flags, const real *x, real *y) {
    const LayerCfg *c = &t->cfg;
    int D = t->l.D, H = c->num_heads, Hkv = c->num_kv_heads, dh = c->head_dim, W = c->window;
    int HD = H * dh, KD = Hkv * dh;
    const real *Wq = t->l.p[0], *Wk = t->l.p[1], *Wv = t->l.p[2], *Wo = t->l.p[3];
    double *q = calloc((size_t)T * HD, sizeof(double)), *k = calloc((size_t)T * KD, sizeof(double));
    double *v = calloc((size_t)T * KD, sizeof(double)), *o = calloc((size_t)T * HD, sizeof(double));
    double *sc = calloc(T, sizeof(double));
    int *seg = calloc(T, sizeof(int)), *pos = calloc(T, sizeof(int));
    for (int b = 0; b < B; b++) {
        const real *xb = x + (size_t)b * T * D;
        for (int t2 = 0, sg = 0; t2 < T; t2++) {
            if (t2 > 0 && flags && (flags[(size_t)b * T + t2] & FLAG_SEG_START)) sg++;
            seg[t2] = sg;
            pos[t2] = (t2 > 0 && seg[t2] == seg[t2 - 1]) ? pos[t2 - 1] + 1 : 0;
        }
        for (int i = 0; i < T; i++) {
            for (int r = 0; r < HD; r++) {
                double a = 0;
                for (int e = 0; e < D; e++) a += (double)Wq[(size_t)r * D + e] * xb[(size_t)i * D + e];
                q[(size_t)i * HD + r] = a;
            }
            for (int r = 0; r < KD; r++) {
                double a = 0, bb = 0;
                for (int e = 0; e < D; e++)
                    a += (double)Wk[(size_t)r * D + e] * xb[(size_t)i * D + e],
                        bb += (double)Wv[(size_t)r * D + e] * xb[(size_t)i * D + e];
                k[(size_t)i * KD + r] = a, v[(size_t)i * KD + r] = bb;
            }
            /* RoPE, rotate-half: pairs (j, j + dh/2), angle pos·θ^(−2j/dh) */
            for (int pass = 0; pass < 2; pass++) {
                double *z = pass ? k + (size_t)i * KD : q + (size_t)i * HD;
                int nh = pass ? Hkv : H;
                for (int h = 0; h < nh; h++)
                    for (int j = 0; j < dh / 2; j++) {
                        double ang = pos[i] / pow(c->rope_theta, 2.0 * j / dh);
                        double a = z[h * dh + j], bb = z[h * dh + j + dh / 2];
                        z[h * dh + j] = a * cos(ang) - bb * sin(ang);
                        z[h * dh + j + dh / 2] = bb * cos(ang) + a * sin(ang);
                    }
            }
        }
        for (int h = 0; h < H; h++) {
            int g = h * Hkv / H;
            for (int i = 0; i < T; i++) {
                double mx = -1e300, sum = 0;
                for (int j = 0; j < T; j++) {
                    int ok = j <= i && seg[j] == seg[i] && (W == 0 || j > i - W);
                    double s = 0;
                    for (int e = 0; e < dh; e++) s += q[(size_t)i * HD + h * dh + e] * k[(size_t)j * KD + g * dh + e];
                    sc[j] = ok ? s / sqrt((double)dh) : -INFINITY;
                    if (ok && sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j < T; j++) sc[j] = exp(sc[j] - mx), sum += sc[j];
                for (int e = 0; e < dh; e++) {
                    double a = 0;
                    for (int j = 0; j < T; j++) a += sc[j] / sum * v[(size_t)j * KD + g * dh + e];
                    o[(size_t)i * HD + h * dh + e] = a;
                }
            }
        }
        for (int i = 0; i < T; i++)
            for (int r = 0; r < D; r++) {
                double a = 0;
                for (int e = 0; e < HD; e++) a += (double)Wo[(size_t)r * HD + e] * o[(size_t)i * HD + e];
                y[((size_t)b * T + i) * D + r] = (real)a;
            }
    }
    free(q), free(k), free(v), free(o), free(sc), free(seg), free(pos);
}

/* layer forward (several block sizes) vs the naive reference */
static void check_naive(const char *mixer, LayerCfg cfg, int D, int B, int T, const uint8_t *flags, const char *tag) {
    TLayer t;
    tl_init(&t, layer_find(mixer), &cfg, D, 77);
    size_t n = (size_t)B * T * D;
    Rng r;
    rng_init(&r, 5, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real));
    real *yr = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    naive_attention(&t, B, T, flags, x, yr);
    int blocks[] = {1, 3, 7, 16, 64};
    for (int bi = 0; bi < 5; bi++) {
        t.cfg.chunk = blocks[bi];
        tl_plan(&t, B, T);
        SeqInfo s = {B, T, flags};
        t.l.ops->forward(&t.l, x, y, &s);
        double e = t_rel_err(y, yr, n, 1e-6);
        CHECK(e < 1e-12, "%s %s block %d: blocked forward vs naive softmax rel err %.3g", mixer, tag, blocks[bi], e);
    }
    free(x), free(y), free(yr);
    tl_free(&t);
}

/* swa with W >= T gives exactly the full-attention outputs and gradients */
static void check_swa_wide(int D, LayerCfg base, int B, int T, const uint8_t *flags) {
    LayerCfg ca = base, cs = base;
    snprintf(ca.mixer, sizeof ca.mixer, "attn"), snprintf(cs.mixer, sizeof cs.mixer, "swa");
    ca.window = 0, cs.window = T + 3;
    TLayer a, s;
    tl_init(&a, layer_find("attn"), &ca, D, 31);
    tl_init(&s, layer_find("swa"), &cs, D, 31); /* same seed: same parameters */
    size_t n = (size_t)B * T * D;
    Rng r;
    rng_init(&r, 6, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *w = eid_aligned_alloc(n * sizeof(real));
    real *ya = eid_aligned_alloc(n * sizeof(real)), *ys = eid_aligned_alloc(n * sizeof(real));
    real *dxa = eid_aligned_alloc(n * sizeof(real)), *dxs = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1), rand_fill(w, n, &r, 1);
    SeqInfo si = {B, T, flags};
    tl_plan(&a, B, T), tl_plan(&s, B, T);
    a.l.ops->forward(&a.l, x, ya, &si), s.l.ops->forward(&s.l, x, ys, &si);
    a.l.ops->backward(&a.l, w, dxa, &si), s.l.ops->backward(&s.l, w, dxs, &si);
    double e = fmax(t_rel_err(ys, ya, n, 1e-6), t_rel_err(dxs, dxa, n, 1e-6));
    for (int i = 0; i < a.l.nparam; i++) e = t_worst(e, t_rel_err(s.l.g[i], a.l.g[i], a.numel[i], 1e-6));
    CHECK(e < 1e-12, "swa W=%d >= T=%d vs attn: outputs/gradients differ by %.3g", cs.window, T, e);
    free(x), free(w), free(ya), free(ys), free(dxa), free(dxs);
    tl_free(&a), tl_free(&s);
}

/* attn decoding past max_len == swa forward with W = max_len */
static void check_attn_overflow(int D, LayerCfg base, int T, int cap) {
    LayerCfg ca = base, cs = base;
    snprintf(ca.mixer, sizeof ca.mixer, "attn"), snprintf(cs.mixer, sizeof cs.mixer, "swa");
    ca.window = 0, ca.max_len = cap, cs.window = cap;
    TLayer a, s;
    tl_init(&a, layer_find("attn"), &ca, D, 41);
    tl_init(&s, layer_find("swa"), &cs, D, 41);
    size_t n = (size_t)T * D, ss = a.l.ops->state_size(&a.cfg, D);
    CHECK(ss == s.l.ops->state_size(&s.cfg, D), "attn max_len=%d and swa W=%d state sizes differ", cap, cap);
    Rng r;
    rng_init(&r, 8, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real));
    real *ys = eid_aligned_alloc(n * sizeof(real)), *st = eid_aligned_alloc(ss * sizeof(real));
    rand_fill(x, n, &r, 1);
    SeqInfo si = {1, T, NULL};
    tl_plan(&s, 1, T);
    s.l.ops->forward(&s.l, x, y, &si);
    tl_plan_step(&a, 1);
    for (int t2 = 0; t2 < T; t2++) a.l.ops->step(&a.l, st, x + (size_t)t2 * D, ys + (size_t)t2 * D, 1);
    double e = t_rel_err(ys, y, n, 1e-6);
    CHECK(e < 1e-10, "attn max_len=%d decoded %d tokens vs swa W=%d forward: rel err %.3g", cap, T, cap, e);
    CHECK(st[ss - 1] == T, "attn step counter %g, expected %d", (double)st[ss - 1], T);
    free(x), free(y), free(ys), free(st);
    tl_free(&a), tl_free(&s);
}

static void check_resolve(void) {
    LayerCfg c = {.mixer = "attn"};
    CHECK(attn_ops.resolve(&c, 8) == 0 && c.num_heads == 1 && c.head_dim == 8 && c.num_kv_heads == 1 &&
              c.rope_theta == 10000 && c.max_len == 2048 && c.chunk == 64,
          "attn defaults at D=8: H=%d dh=%d Hkv=%d theta=%g max_len=%d chunk=%d", c.num_heads, c.head_dim,
          c.num_kv_heads, c.rope_theta, c.max_len, c.chunk);
    LayerCfg c2 = {.mixer = "attn"};
    CHECK(attn_ops.resolve(&c2, 256) == 0 && c2.num_heads == 4 && c2.head_dim == 64, "attn defaults at D=256: H=%d dh=%d",
          c2.num_heads, c2.head_dim);
    LayerCfg c3 = {.mixer = "attn"};
    CHECK(attn_ops.resolve(&c3, 192) == 0 && c3.num_heads == 3 && c3.head_dim == 64, "attn defaults at D=192");
    LayerCfg sw = {.mixer = "swa"}; /* no window: the documented default W = 64 (docs/design.md) */
    CHECK(swa_ops.resolve(&sw, 8) == 0 && sw.window == 64, "swa without a window: window %d, want the default 64", sw.window);
    LayerCfg bad1 = {.mixer = "swa", .window = -3};
    CHECK(swa_ops.resolve(&bad1, 8) != 0 && strstr(eid_last_error(), "window"), "swa with a negative window must fail");
    LayerCfg bad2 = {.mixer = "attn", .num_heads = 4, .num_kv_heads = 3};
    CHECK(attn_ops.resolve(&bad2, 8) != 0 && strstr(eid_last_error(), "num_kv_heads"), "Hkv not dividing H must fail");
    LayerCfg bad3 = {.mixer = "attn", .num_heads = 2, .head_dim = 3};
    CHECK(attn_ops.resolve(&bad3, 8) != 0 && strstr(eid_last_error(), "head_dim"), "odd head_dim must fail");
    LayerCfg bad4 = {.mixer = "attn", .num_heads = 3};
    CHECK(attn_ops.resolve(&bad4, 8) != 0 && strstr(eid_last_error(), "divisible"), "D %% H != 0 must fail");
    LayerCfg bad5 = {.mixer = "attn", .window = 4};
    CHECK(attn_ops.resolve(&bad5, 8) != 0 && strstr(eid_last_error(), "window"), "attn with a window must fail");
    LayerCfg s = {.mixer = "swa", .window = 5, .num_heads = 2, .num_kv_heads = 1};
    CHECK(swa_ops.resolve(&s, 8) == 0, "swa resolve");
    CHECK(swa_ops.state_size(&s, 8) == 2 * 1 * 4 * 5 + 1, "swa state size %zu", swa_ops.state_size(&s, 8));
    CHECK(swa_ops.zoology_state(&s, 8, 100) == 2 * 8 * 5, "swa zoology state");
    CHECK(attn_ops.state_size(&c, 8) == 2 * 8 * 2048 + 1, "attn state size %zu", attn_ops.state_size(&c, 8));
    CHECK(attn_ops.zoology_state(&c, 8, 100) == 2 * 8 * 100, "attn zoology state");
    ParamSpec ps[EID_MAX_PARAMS];
    LayerCfg g = {.mixer = "attn", .num_heads = 4, .num_kv_heads = 2, .head_dim = 4};
    attn_ops.resolve(&g, 8);
    int np = attn_ops.params(&g, 8, 4, ps);
    CHECK(np == 4 && !strcmp(ps[0].name, "mixer.q_proj.weight") && ps[0].shape[0] == 16 && ps[0].shape[1] == 8 &&
              !strcmp(ps[1].name, "mixer.k_proj.weight") && ps[1].shape[0] == 8 && !strcmp(ps[2].name, "mixer.v_proj.weight") &&
              ps[2].shape[0] == 8 && !strcmp(ps[3].name, "mixer.o_proj.weight") && ps[3].shape[0] == 8 && ps[3].shape[1] == 16 &&
              ps[0].init == INIT_NORMAL && ps[0].a == 0.02 && fabs(ps[3].a - 0.01) < 1e-15,
          "attn parameter table");
}

int main(int argc, char **argv) {
    eid_runtime_setup(2, 0);
    check_resolve();
    /* the generic suite */
    LayerCfg a1 = {.mixer = "attn", .num_heads = 2};
    layer_suite("attn", a1, 8);
    LayerCfg a2 = {.mixer = "attn", .num_heads = 1};
    layer_suite("attn", a2, 6);
    LayerCfg a3 = {.mixer = "attn", .num_heads = 4, .num_kv_heads = 2, .head_dim = 4}; /* GQA, H·dh != D */
    layer_suite("attn", a3, 8);
    LayerCfg s1 = {.mixer = "swa", .num_heads = 2, .window = 5};
    layer_suite("swa", s1, 8);
    LayerCfg s2 = {.mixer = "swa", .num_heads = 4, .num_kv_heads = 2, .head_dim = 2, .window = 3, .rope_theta = 50};
    layer_suite("swa", s2, 6);
    LayerCfg s3 = {.mixer = "swa", .num_heads = 1, .window = 1}; /* W = 1: each token sees itself only */
    layer_suite("swa", s3, 4);
    /* blocked forward == naive softmax */
    uint8_t *f = make_flags(3, 29, 11);
    f[2 * 29 + 5] = f[2 * 29 + 6] = f[2 * 29 + 20] = FLAG_SEG_START; /* a one-token segment and another reset */
    LayerCfg n1 = {.mixer = "attn", .num_heads = 4, .num_kv_heads = 2, .head_dim = 4, .rope_theta = 100};
    check_naive("attn", n1, 8, 3, 29, NULL, "GQA H=4 Hkv=2");
    check_naive("attn", n1, 8, 3, 29, f, "GQA H=4 Hkv=2 with resets");
    LayerCfg n2 = {.mixer = "attn", .num_heads = 3, .num_kv_heads = 1, .head_dim = 6};
    check_naive("attn", n2, 5, 3, 29, f, "H=3 Hkv=1 dh=6 with resets");
    LayerCfg n3 = {.mixer = "swa", .num_heads = 2, .window = 6, .rope_theta = 100};
    check_naive("swa", n3, 8, 3, 29, NULL, "W=6");
    check_naive("swa", n3, 8, 3, 29, f, "W=6 with resets");
    LayerCfg n4 = {.mixer = "swa", .num_heads = 4, .num_kv_heads = 2, .head_dim = 4, .window = 17};
    check_naive("swa", n4, 8, 3, 29, f, "GQA W=17 with resets");
    /* SWA with W >= T == full attention */
    LayerCfg w1 = {.num_heads = 4, .num_kv_heads = 2, .head_dim = 4, .chunk = 7};
    check_swa_wide(8, w1, 3, 29, NULL);
    check_swa_wide(8, w1, 3, 29, f);
    /* full attention decoding past its KV capacity == SWA(max_len) */
    LayerCfg o1 = {.num_heads = 2, .num_kv_heads = 1};
    check_attn_overflow(8, o1, 23, 6);
    free(f);
    return t_summary("test_attention");
}
