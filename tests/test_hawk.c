/* test_hawk.c — the Hawk mixer (docs/layers.md §12): the generic layer suite (finite-difference
 * gradients, forward == step loop, chunk invariance, prefill, PAD), the whole layer against a naive
 * token-by-token RG-LRU written here (segment starts inside, multi-head block-diagonal gates), the
 * fresh-token input multiplier, the initialisation of recurrent_param, and resolve()'s validation. */
#include "layer_harness.h"

extern const LayerOps hawk_ops;

enum { P_Y_W, P_Y_B, P_X_W, P_X_B, P_CONV_W, P_CONV_B, P_IG_W, P_IG_B, P_RG_W, P_RG_B, P_LAMBDA, P_OUT_W, P_OUT_B };

static double sigm(double x) { return 1 / (1 + exp(-x)); }
static double gelu_tanh(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

/* docs/layers.md §12.1–12.2 token by token, in double, straight from the equations. */
static void naive_forward(TLayer *t, const real *x, real *y, int B, int T, const uint8_t *flags) {
    const LayerCfg *c = &t->cfg;
    int D = t->l.D, R = c->expand * D, H = c->num_heads, W = R / H, K = c->d_conv;
    real **p = t->l.p;
    double *xp = calloc((size_t)T * R, sizeof(double)), *s = calloc(R, sizeof(double));
    double *yp = malloc(sizeof(double) * R), *xc = malloc(sizeof(double) * R);
    for (int b = 0; b < B; b++) {
        int seg = 0;
        for (int tt = 0; tt < T; tt++) {
            size_t m = (size_t)b * T + tt;
            const real *xm = x + m * D;
            int fresh = tt == 0 || (flags && (flags[m] & FLAG_SEG_START));
            if (fresh) seg = tt;
            for (int r = 0; r < R; r++) {
                double ay = p[P_Y_B][r], ax = p[P_X_B][r];
                for (int j = 0; j < D; j++) ay += p[P_Y_W][r * D + j] * xm[j], ax += p[P_X_W][r * D + j] * xm[j];
                yp[r] = ay, xp[(size_t)tt * R + r] = ax;
            }
            for (int r = 0; r < R; r++) { /* causal conv inside the segment */
                double a = p[P_CONV_B][r];
                for (int j = 0; j < K; j++) {
                    int src = tt - K + 1 + j;
                    if (src >= seg) a += p[P_CONV_W][r * K + j] * xp[(size_t)src * R + r];
                }
                xc[r] = a;
            }
            double o[256];
            for (int h = 0; h < H; h++)
                for (int oo = 0; oo < W; oo++) {
                    double gr = p[P_RG_B][h * W + oo], gi = p[P_IG_B][h * W + oo];
                    for (int j = 0; j < W; j++) {
                        gr += xc[h * W + j] * p[P_RG_W][((size_t)h * W + j) * W + oo];
                        gi += xc[h * W + j] * p[P_IG_W][((size_t)h * W + j) * W + oo];
                    }
                    int r = h * W + oo;
                    double lam = -p[P_LAMBDA][r]; /* Λ = −p; a = σ(Λ)^(c·r) */
                    double a = pow(sigm(lam), 8 * sigm(gr));
                    double mult = fresh ? 1 : sqrt(1 - a * a);
                    s[r] = (fresh ? 0 : a * s[r]) + mult * sigm(gi) * xc[r];
                    o[r] = gelu_tanh(yp[r]) * s[r];
                }
            for (int i = 0; i < D; i++) {
                double a = p[P_OUT_B][i];
                for (int r = 0; r < R; r++) a += p[P_OUT_W][i * R + r] * o[r];
                y[m * D + i] = (real)a;
            }
        }
    }
    free(xp), free(s), free(yp), free(xc);
}

static void check_naive(LayerCfg cfg, int D, int B, int T, const uint8_t *flags, const char *tag) {
    TLayer t;
    tl_init(&t, &hawk_ops, &cfg, D, 99);
    size_t n = (size_t)B * T * D;
    SeqInfo s = {B, T, flags};
    Rng r;
    rng_init(&r, 5, 0);
    real *x = eid_aligned_alloc(n * sizeof(real)), *y = eid_aligned_alloc(n * sizeof(real)), *yn = eid_aligned_alloc(n * sizeof(real));
    rand_fill(x, n, &r, 1);
    naive_forward(&t, x, yn, B, T, flags);
    tl_plan(&t, B, T);
    t.l.ops->forward(&t.l, x, y, &s);
    double e = t_rel_err(y, yn, n, 1e-6);
    CHECK(e < 1e-11, "hawk %s: forward vs naive RG-LRU rel err %.3g", tag, e);
    free(x), free(y), free(yn);
    tl_free(&t);
}

/* The fresh-token multiplier really is 1: a one-token sequence's recurrence output is σ(gi)·x
 * exactly, so zeroing the input gate's recurrent_param (a → different) changes nothing there. */
static void check_fresh_multiplier(void) {
    LayerCfg cfg = {.mixer = "hawk", .d_conv = 1};
    TLayer t;
    tl_init(&t, &hawk_ops, &cfg, 4, 3);
    int D = 4;
    real x[4] = {0.3, -1.2, 0.7, 2.0}, y1[4], y2[4];
    SeqInfo s = {1, 1, NULL};
    tl_plan(&t, 1, 1);
    t.l.ops->forward(&t.l, x, y1, &s);
    for (int r = 0; r < D; r++) t.l.p[P_LAMBDA][r] = (real)(-3 - r); /* a very different decay */
    t.l.ops->forward(&t.l, x, y2, &s);
    CHECK(t_rel_err(y1, y2, D, 1e-9) < 1e-14, "hawk: the first token's output depends on a (multiplier not 1)");
    tl_free(&t);
}

static void sizes_and_init(void) {
    LayerCfg c = {.mixer = "hawk"};
    CHECK(hawk_ops.resolve(&c, 64) == 0 && c.expand == 1 && c.num_heads == 1 && c.d_conv == 4,
          "hawk: defaults R = D, H = 1, K = 4: %s", eid_last_error());
    CHECK(hawk_ops.state_size(&c, 64) == 64 * 3 + 64 + 1, "hawk: state_size %zu", hawk_ops.state_size(&c, 64));
    CHECK(hawk_ops.zoology_state(&c, 64, 128) == 64.0, "hawk: zoology_state");
    LayerCfg h4 = {.mixer = "hawk", .num_heads = 4, .expand = 2};
    CHECK(hawk_ops.resolve(&h4, 16) == 0, "hawk: H=4 R=32 must resolve");
    ParamSpec ps[EID_MAX_PARAMS];
    int np = hawk_ops.params(&h4, 16, 4, ps);
    CHECK(np == 13 && !strcmp(ps[P_IG_W].name, "mixer.rg_lru.input_gate_weight") && ps[P_IG_W].ndim == 3 &&
              ps[P_IG_W].shape[0] == 4 && ps[P_IG_W].shape[1] == 8 && ps[P_IG_W].shape[2] == 8 &&
              ps[P_IG_B].shape[0] == 4 && ps[P_IG_B].shape[1] == 8 && !strcmp(ps[P_CONV_W].name, "mixer.conv_1d.weight") &&
              ps[P_CONV_W].shape[0] == 32 && ps[P_CONV_W].shape[2] == 4 && ps[P_OUT_W].shape[0] == 16 &&
              ps[P_OUT_W].shape[1] == 32 && ps[P_LAMBDA].init == INIT_CUSTOM && ps[P_LAMBDA].decay == 0 &&
              ps[P_RG_W].decay == 0 && ps[P_Y_W].decay == 1,
          "hawk: parameter table");
    CHECK(fabs(ps[P_IG_W].a - 1 / sqrt(8.0)) < 1e-15 && fabs(ps[P_OUT_W].a - sqrt(2.0 / 4 / 32)) < 1e-15 &&
              fabs(ps[P_CONV_W].a - sqrt(0.01 / 4)) < 1e-15 && fabs(ps[P_Y_W].a - 0.25) < 1e-15,
          "hawk: init scales");
    /* σ(−p)^… : a0 = σ(−p) must lie in [0.9, 0.999] and a0² spread over [0.81, 0.998] */
    real p[4096];
    Rng r;
    rng_init(&r, 1, 0);
    LayerCfg big = {.mixer = "hawk", .expand = 1};
    hawk_ops.resolve(&big, 4096);
    hawk_ops.init_custom(&big, 4096, P_LAMBDA, p, &r);
    double lo = 1, hi = 0, mean = 0;
    for (int i = 0; i < 4096; i++) {
        double a0 = 1 / (1 + exp((double)p[i]));
        lo = fmin(lo, a0), hi = t_worst(hi, a0), mean += a0 * a0 / 4096;
    }
    CHECK(lo >= 0.9 - 1e-9 && hi <= 0.999 + 1e-9 && lo < 0.902 && hi > 0.997 && fabs(mean - (0.81 + 0.998) / 2) < 0.01,
          "hawk: recurrent_param init a0 in [%.4f, %.4f], mean a0^2 %.4f", lo, hi, mean);
    LayerCfg b1 = {.mixer = "hawk", .num_heads = 3};
    CHECK(hawk_ops.resolve(&b1, 16) == -1 && strstr(eid_last_error(), "num_heads"), "hawk: H=3 with R=16 must be rejected");
    LayerCfg b2 = {.mixer = "hawk", .d_conv = 17};
    CHECK(hawk_ops.resolve(&b2, 16) == -1, "hawk: d_conv 17 must be rejected");
    LayerCfg b3 = {.mixer = "hawk", .expand = -1};
    CHECK(hawk_ops.resolve(&b3, 16) == -1, "hawk: expand -1 must be rejected");
}

static uint8_t *resets(int B, int T) {
    uint8_t *f = eid_xcalloc((size_t)B * T, 1);
    int at[] = {3, 4, 11, 20};
    for (int b = 0; b < B; b++) f[(size_t)b * T] = FLAG_SEG_START;
    for (int i = 0; i < 4; i++)
        if (at[i] < T) f[(size_t)(B - 1) * T + at[i]] = FLAG_SEG_START;
    return f;
}

int main(int argc, char **argv) {
    eid_runtime_setup(2, 0);
    sizes_and_init();
    check_fresh_multiplier();
    LayerCfg c1 = {.mixer = "hawk", .d_conv = 4};
    layer_suite("hawk", c1, 8);
    LayerCfg c2 = {.mixer = "hawk", .expand = 2, .num_heads = 4, .d_conv = 2};
    layer_suite("hawk", c2, 6);
    LayerCfg c3 = {.mixer = "hawk", .num_heads = 2, .d_conv = 1};
    layer_suite("hawk", c3, 8);
    uint8_t *f = resets(2, 29);
    check_naive(c1, 8, 2, 29, NULL, "D=8 H=1 K=4");
    check_naive(c1, 8, 2, 29, f, "D=8 H=1 K=4 resets");
    check_naive(c2, 6, 2, 29, f, "D=6 R=12 H=4 K=2 resets");
    free(f);
    return t_summary("test_hawk");
}
