/* test_gated_ssm.c — Birdie's gated SSM (docs/layers.md §13): the generic layer suite (finite-difference
 * gradients, forward == step loop, chunk invariance, prefill, PAD), the layer against a naive
 * token-by-token recurrence written here, and resolve()'s validation and the parameter table. */
#include "layer_harness.h"

extern const LayerOps gated_ssm_ops;

enum { P_I, P_Z, P_O, P_F, P_OUT };

static double sigm(double x) { return 1 / (1 + exp(-x)); }

static void naive_forward(TLayer *t, const real *x, real *y, int B, int T, const uint8_t *flags) {
    int D = t->l.D, R = t->cfg.expand * D;
    real **p = t->l.p;
    double *s = calloc(R, sizeof(double)), *o = calloc(R, sizeof(double));
    for (int b = 0; b < B; b++) {
        for (int tt = 0; tt < T; tt++) {
            size_t m = (size_t)b * T + tt;
            const real *xm = x + m * D;
            if (tt == 0 || (flags && (flags[m] & FLAG_SEG_START))) memset(s, 0, sizeof(double) * R);
            for (int r = 0; r < R; r++) {
                double pr[4] = {0, 0, 0, 0};
                for (int k = 0; k < 4; k++)
                    for (int j = 0; j < D; j++) pr[k] += p[P_I + k][r * D + j] * xm[j];
                s[r] = sigm(pr[3]) * s[r] + sigm(pr[0]) * pr[1];
                o[r] = 0.5 * pr[2] * (1 + erf(pr[2] / sqrt(2.0))) * s[r];
            }
            for (int i = 0; i < D; i++) {
                double a = 0;
                for (int r = 0; r < R; r++) a += p[P_OUT][i * R + r] * o[r];
                y[m * D + i] = (real)a;
            }
        }
    }
    free(s), free(o);
}

static void check_naive(LayerCfg cfg, int D, int B, int T, const uint8_t *flags, const char *tag) {
    TLayer t;
    tl_init(&t, &gated_ssm_ops, &cfg, D, 42);
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
    CHECK(e < 1e-11, "gated-ssm %s: forward vs naive rel err %.3g", tag, e);
    free(x), free(y), free(yn);
    tl_free(&t);
}

static void sizes(void) {
    LayerCfg c = {.mixer = "gated-ssm"};
    CHECK(gated_ssm_ops.resolve(&c, 64) == 0 && c.expand == 1, "gated-ssm: default R = D");
    CHECK(gated_ssm_ops.state_size(&c, 64) == 64 && gated_ssm_ops.zoology_state(&c, 64, 9) == 64.0,
          "gated-ssm: state size %zu", gated_ssm_ops.state_size(&c, 64));
    ParamSpec ps[EID_MAX_PARAMS];
    LayerCfg c2 = {.mixer = "gated-ssm", .expand = 2};
    gated_ssm_ops.resolve(&c2, 16);
    int np = gated_ssm_ops.params(&c2, 16, 4, ps);
    CHECK(np == 5 && !strcmp(ps[P_I].name, "mixer.i_proj.weight") && !strcmp(ps[P_Z].name, "mixer.z_proj.weight") &&
              !strcmp(ps[P_O].name, "mixer.o_proj.weight") && !strcmp(ps[P_F].name, "mixer.f_proj.weight") &&
              !strcmp(ps[P_OUT].name, "mixer.out_proj.weight") && ps[P_F].shape[0] == 32 && ps[P_F].shape[1] == 16 &&
              ps[P_OUT].shape[0] == 16 && ps[P_OUT].shape[1] == 32 && ps[P_F].decay == 0 && ps[P_I].decay == 1 &&
              fabs(ps[P_OUT].a - 1 / sqrt(32.0) / 2) < 1e-15 && fabs(ps[P_Z].a - 0.25) < 1e-15,
          "gated-ssm: parameter table");
    LayerCfg b = {.mixer = "gated-ssm", .expand = 17};
    CHECK(gated_ssm_ops.resolve(&b, 16) == -1 && strstr(eid_last_error(), "expand"), "gated-ssm: expand 17 must be rejected");
}

int main(int argc, char **argv) {
    eid_runtime_setup(2, 0);
    sizes();
    LayerCfg c1 = {.mixer = "gated-ssm"};
    layer_suite("gated-ssm", c1, 8);
    LayerCfg c2 = {.mixer = "gated-ssm", .expand = 2};
    layer_suite("gated-ssm", c2, 5);
    uint8_t *f = make_flags(2, 29, 11);
    check_naive(c1, 8, 2, 29, NULL, "D=8");
    check_naive(c2, 5, 2, 29, f, "D=5 R=10 reset");
    free(f);
    return t_summary("test_gated_ssm");
}
