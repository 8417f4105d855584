/* hawk.c — Hawk, Griffin's recurrent block with the RG-LRU (docs/layers.md §12).
 *
 *   [yp | xp]  = [W_y·h + b_y | W_x·h + b_x]        xy    [M, 2R]   (M = B·T tokens)
 *   xc         = conv(xp) + b_conv  (causal, width K) xc    [M, R]
 *   gr, gi     = xc·W_a + b_a, xc·W_i + b_i          (block-diagonal: H blocks of R/H)
 *   a, b       = RG-LRU gates (docs/layers.md §12.2) a, b  [M, R]
 *   s_t        = a_t ⊙ s_{t−1} + b_t                 hs    [M, R]
 *   out        = W_out·(gelu_tanh(yp) ⊙ s) + b_out   gated [M, R] → out [M, D]
 */
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/linrec.h"
#include "layers/bidir.h"
#include "layers/layer.h"

enum { P_Y_W, P_Y_B, P_X_W, P_X_B, P_CONV_W, P_CONV_B, P_IG_W, P_IG_B, P_RG_W, P_RG_B, P_LAMBDA, P_OUT_W, P_OUT_B,
       NPARAM };
enum { X_IN, XY, XC, GR, GI, A, BT, HS, GATED,              /* kept for backward (A, BT, GATED: scratch, recomputed) */
       D_GATED, D_XY, D_XC, D_GR, D_GI, D_A, D_B,           /* backward scratch */
       RING,                                                /* prefill: conv rings [B, R, K−1] */
       S_XY, S_XC, S_GR, S_GI, S_A, S_B, S_H, NBUF };       /* one-token step */
_Static_assert(NBUF <= EID_MAX_BUFS, "hawk: more buffers than Layer.buf holds");
_Static_assert(NPARAM <= EID_MAX_PARAMS, "hawk: more parameters than Layer.p holds");

typedef struct { int D, R, H, K; } Dims;
static Dims dims(const Layer *l) {
    const LayerCfg *c = l->cfg;
    return (Dims){l->D, c->expand * l->D, c->num_heads, c->d_conv};
}

/* Decode state per sequence (docs/layers.md §12.5): conv ring [R, K−1] | s [R] | fresh marker [1]. */
static size_t hk_state_size(const LayerCfg *c, int D) {
    size_t R = (size_t)c->expand * D;
    return R * (c->d_conv - 1) + R + 1;
}

static size_t hk_reverse_state(const LayerCfg *c, int D) {
    int R = c->expand * D;
    return (size_t)(R - bidir_rev_from(c, R)); /* the reverse channels of s */
}

static int hk_resolve(LayerCfg *c, int D) {
    if (!c->expand) c->expand = 1;
    if (!c->num_heads) c->num_heads = 1;
    if (!c->d_conv) c->d_conv = 4;
    if (c->expand < 1 || c->expand > 16) return eid_error("hawk: expand must be in [1, 16], got %d", c->expand), -1;
    if (c->d_conv < 1 || c->d_conv > EID_CONV_MAX_K)
        return eid_error("hawk: d_conv must be in [1, %d], got %d", EID_CONV_MAX_K, c->d_conv), -1;
    int R = c->expand * D;
    if (c->num_heads < 1 || R % c->num_heads)
        return eid_error("hawk: num_heads must divide the recurrence width R = expand*d_model = %d, got %d", R,
                         c->num_heads), -1;
    return 0;
}

static int hk_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    int R = c->expand * D, H = c->num_heads, W = R / H, K = c->d_conv;
    const char *m = "mixer.";
    param_spec(&o[P_Y_W], m, "linear_y.weight", R, D, 0, INIT_NORMAL, 1 / sqrt((double)D), 1);
    param_spec(&o[P_Y_B], m, "linear_y.bias", R, 0, 0, INIT_ZERO, 0, 0);
    param_spec(&o[P_X_W], m, "linear_x.weight", R, D, 0, INIT_NORMAL, 1 / sqrt((double)D), 1);
    param_spec(&o[P_X_B], m, "linear_x.bias", R, 0, 0, INIT_ZERO, 0, 0);
    param_spec(&o[P_CONV_W], m, "conv_1d.weight", R, 1, K, INIT_NORMAL, sqrt(0.01 / K), 1);
    param_spec(&o[P_CONV_B], m, "conv_1d.bias", R, 0, 0, INIT_ZERO, 0, 0);
    /* the RG-LRU's own parameters take no weight decay (docs/layers.md §12.3) */
    param_spec(&o[P_IG_W], m, "rg_lru.input_gate_weight", H, W, W, INIT_NORMAL, 1 / sqrt((double)W), 0);
    param_spec(&o[P_IG_B], m, "rg_lru.input_gate_bias", H, W, 0, INIT_ZERO, 0, 0);
    param_spec(&o[P_RG_W], m, "rg_lru.recurrent_gate_weight", H, W, W, INIT_NORMAL, 1 / sqrt((double)W), 0);
    param_spec(&o[P_RG_B], m, "rg_lru.recurrent_gate_bias", H, W, 0, INIT_ZERO, 0, 0);
    param_spec(&o[P_LAMBDA], m, "rg_lru.recurrent_param", R, 0, 0, INIT_CUSTOM, 0, 0);
    param_spec(&o[P_OUT_W], m, "linear_out.weight", D, R, 0, INIT_NORMAL, sqrt(2.0 / n_res_layers / R), 1);
    param_spec(&o[P_OUT_B], m, "linear_out.bias", D, 0, 0, INIT_ZERO, 0, 0);
    return NPARAM;
}

/* recurrent_param p = log(1/a0 − 1) with a0² uniform in [0.9², 0.999²], so a0 = σ(−p) ∈ [0.9, 0.999]. */
static void hk_init_custom(const LayerCfg *c, int D, int idx, real *p, Rng *r) {
    int R = c->expand * D;
    for (int i = 0; i < R; i++) {
        double a2 = 0.81 + (0.998001 - 0.81) * rng_uniform(r) + 1e-8;
        p[i] = (real)log(1 / sqrt(a2) - 1);
    }
}

static void hk_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l);
    size_t M = (size_t)B * T, MR = M * d.R;
    l->buf[XY] = take_act16(l, a, 2 * MR);
    l->buf[XC] = take_act16(l, a, MR);
    l->buf[GR] = take_act16(l, a, MR);
    l->buf[GI] = take_act16(l, a, MR);
    l->buf[A] = arena_scratch(a, MR); /* the decay: backward recomputes it (with BT) from XC, GR, GI */
    l->buf[BT] = arena_scratch(a, MR); /* the recurrence input (backward's recompute rewrites it, unread) */
    l->buf[HS] = take_act16(l, a, MR);
    l->buf[GATED] = arena_scratch(a, MR); /* gelu(y)·s: backward recomputes it */
    l->buf[D_GATED] = arena_scratch(a, MR);
    l->buf[D_XY] = arena_scratch(a, 2 * MR);
    l->buf[D_XC] = arena_scratch(a, MR);
    l->buf[D_GR] = arena_scratch(a, MR);
    l->buf[D_GI] = arena_scratch(a, MR);
    l->buf[D_A] = arena_scratch(a, MR);
    l->buf[D_B] = arena_scratch(a, MR);
    l->buf[RING] = arena_scratch(a, (size_t)B * d.R * (d.K - 1));
    l->B = B, l->T = T;
}

/* The two projections of the block input x [M, D] into xy [M, 2R] (y half, then x half). */
static void hk_in_proj(const Dims *d, real *const *p, const real *x, real *xy, int M) {
    eid_gemm(0, 1, M, d->R, d->D, 1, x, d->D, p[P_Y_W], d->D, 0, xy, 2 * d->R);
    eid_gemm(0, 1, M, d->R, d->D, 1, x, d->D, p[P_X_W], d->D, 0, xy + d->R, 2 * d->R);
    k_bias_add(xy, 2 * d->R, p[P_Y_B], M, d->R);
    k_bias_add(xy + d->R, 2 * d->R, p[P_X_B], M, d->R);
}

/* Block-diagonal gate products: g[:, blk h] = xc[:, blk h]·W[h] for both gates (W stored [H, in, out]). */
static void hk_gate_proj(const Dims *d, real *const *p, const real *xc, real *gr, real *gi, int M) {
    int W = d->R / d->H;
    for (int h = 0; h < d->H; h++) {
        size_t off = (size_t)h * W, woff = (size_t)h * W * W;
        eid_gemm(0, 0, M, W, W, 1, xc + off, d->R, p[P_RG_W] + woff, W, 0, gr + off, d->R);
        eid_gemm(0, 0, M, W, W, 1, xc + off, d->R, p[P_IG_W] + woff, W, 0, gi + off, d->R);
    }
}

/* gated = gelu_tanh(yp) ⊙ s ; out = W_out·gated + b_out */
static void hk_out_proj(const Dims *d, real *const *p, const real *xy, const real *s, real *gated, real *out, int M) {
    k_mul_gelu_fwd(xy, 2 * d->R, s, d->R, gated, d->R, M, d->R, 1);
    eid_gemm(0, 1, M, d->D, d->R, 1, gated, d->R, p[P_OUT_W], d->R, 0, out, d->D);
    k_bias_add(out, d->D, p[P_OUT_B], M, d->D);
}

/* The forward pass; with `state` [B, state_size] (prefill) the conv, the fresh markers and the
 * recurrence continue from it and leave in it the state after the last token. */
static void hk_run(Layer *l, const real *x, real *out, const SeqInfo *s, real *state) {
    Dims d = dims(l);
    int M = s->B * s->T;
    size_t nr = (size_t)d.R * (d.K - 1), ss = nr + d.R + 1;
    real **b = l->buf, **p = l->p;
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    hk_in_proj(&d, p, x, b[XY], M);
    if (state && nr) k_copy(state, (int)ss, b[RING], (int)nr, s->B, (int)nr);
    real *ring = state ? b[RING] : NULL;
    k_conv1d_fwd(b[XY] + d.R, 2 * d.R, p[P_CONV_W], p[P_CONV_B], b[XC], d.R, s->B, s->T, d.R, d.K, s->flags, ring, ring);
    if (state && nr) k_copy(b[RING], (int)nr, state, (int)ss, s->B, (int)nr);
    hk_gate_proj(&d, p, b[XC], b[GR], b[GI], M);
    k_rglru_gate_fwd(b[XC], d.R, b[GR], b[GI], p[P_RG_B], p[P_IG_B], p[P_LAMBDA], b[A], b[BT], s->B, s->T, d.R,
                     s->flags, state ? state + nr + d.R : NULL, ss);
    real *S = state ? state + nr : NULL;
    k_linrec_fwd(b[A], b[BT], b[HS], s->B, s->T, d.R, s->flags, bidir_rev_from(l->cfg, d.R), S, S, ss);
    hk_out_proj(&d, p, b[XY], b[HS], b[GATED], out, M);
}

static void hk_forward(Layer *l, const real *x, real *out, const SeqInfo *s) { hk_run(l, x, out, s, NULL); }
static void hk_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) { hk_run(l, x, out, s, state); }

static void hk_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, R = d.R, W = R / d.H;
    real **b = l->buf, **p = l->p, **g = l->g;
    /* a (and b) again, bit for bit as the forward made them (the same kernel on the kept XC, GR, GI) */
    k_rglru_gate_fwd(b[XC], d.R, b[GR], b[GI], NULL, NULL, p[P_LAMBDA], b[A], b[BT], s->B, s->T, d.R, s->flags, NULL, 0);
    k_mul_gelu_fwd(b[XY], 2 * R, b[HS], R, b[GATED], R, M, R, 1); /* the gated output, as hk_out_proj made it */
    /* out = W_out·gated + b_out */
    eid_gemm(0, 0, M, R, d.D, 1, dout, d.D, p[P_OUT_W], R, 0, b[D_GATED], R);
    eid_gemm(1, 0, d.D, R, M, 1, dout, d.D, b[GATED], R, 1, g[P_OUT_W], R);
    k_colsum_add(dout, d.D, NULL, 0, M, d.D, g[P_OUT_B]);
    /* gated = gelu(yp) ⊙ s: D_GATED becomes ∂L/∂s, the y half of D_XY ∂L/∂yp */
    k_mul_gelu_bwd(b[D_GATED], R, b[HS], R, b[XY], 2 * R, b[D_XY], 2 * R, M, R, 1);
    /* the recurrence, then its gates */
    k_linrec_bwd(b[A], b[HS], b[D_GATED], b[D_A], b[D_B], s->B, s->T, R, s->flags, bidir_rev_from(l->cfg, R), NULL, 0);
    k_rglru_gate_bwd(b[XC], R, b[GR], b[GI], p[P_LAMBDA], b[D_A], b[D_B], b[D_XC], R, b[D_GR], b[D_GI], g[P_LAMBDA],
                     s->B, s->T, R, s->flags);
    k_colsum_add(b[D_GR], R, NULL, 0, M, R, g[P_RG_B]);
    k_colsum_add(b[D_GI], R, NULL, 0, M, R, g[P_IG_B]);
    for (int h = 0; h < d.H; h++) { /* block-diagonal gate products */
        size_t off = (size_t)h * W, woff = (size_t)h * W * W;
        eid_gemm(1, 0, W, W, M, 1, b[XC] + off, R, b[D_GR] + off, R, 1, g[P_RG_W] + woff, W);
        eid_gemm(1, 0, W, W, M, 1, b[XC] + off, R, b[D_GI] + off, R, 1, g[P_IG_W] + woff, W);
        eid_gemm(0, 1, M, W, W, 1, b[D_GR] + off, R, p[P_RG_W] + woff, W, 1, b[D_XC] + off, R);
        eid_gemm(0, 1, M, W, W, 1, b[D_GI] + off, R, p[P_IG_W] + woff, W, 1, b[D_XC] + off, R);
    }
    /* xc = conv(xp): the x half of D_XY receives ∂L/∂xp */
    k_zero(b[D_XY] + R, 2 * R, M, R);
    k_conv1d_bwd(b[D_XC], R, b[XY] + R, 2 * R, p[P_CONV_W], b[D_XY] + R, 2 * R, g[P_CONV_W], g[P_CONV_B], s->B, s->T, R,
                 d.K, s->flags, NULL);
    /* [yp | xp] = [W_y·x + b_y | W_x·x + b_x] */
    k_colsum_add(b[D_XY], 2 * R, NULL, 0, M, R, g[P_Y_B]);
    k_colsum_add(b[D_XY] + R, 2 * R, NULL, 0, M, R, g[P_X_B]);
    eid_gemm(1, 0, R, d.D, M, 1, b[D_XY], 2 * R, b[X_IN], d.D, 1, g[P_Y_W], d.D);
    eid_gemm(1, 0, R, d.D, M, 1, b[D_XY] + R, 2 * R, b[X_IN], d.D, 1, g[P_X_W], d.D);
    eid_gemm(0, 0, M, d.D, R, 1, b[D_XY], 2 * R, p[P_Y_W], d.D, 1, dx, d.D);
    eid_gemm(0, 0, M, d.D, R, 1, b[D_XY] + R, 2 * R, p[P_X_W], d.D, 1, dx, d.D);
}

static void hk_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l);
    size_t nR = (size_t)nseq * d.R;
    l->buf[S_XY] = arena_take(a, 2 * nR);
    l->buf[S_XC] = arena_take(a, nR);
    l->buf[S_GR] = arena_take(a, nR);
    l->buf[S_GI] = arena_take(a, nR);
    l->buf[S_A] = arena_take(a, nR);
    l->buf[S_B] = arena_take(a, nR);
    l->buf[S_H] = arena_take(a, 2 * nR); /* s, then gated */
    l->nseq = nseq;
}

/* state [nseq, state_size]: per sequence the conv ring [R, K−1], s [R], the fresh marker (the row prefill fills). */
static void hk_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    real **b = l->buf, **p = l->p;
    size_t nr = (size_t)d.R * (d.K - 1), ss = nr + d.R + 1;
    real *h = b[S_H], *gated = b[S_H] + (size_t)nseq * d.R;
    hk_in_proj(&d, p, x, b[S_XY], nseq);
    k_conv1d_step(state, ss, b[S_XY] + d.R, 2 * d.R, p[P_CONV_W], p[P_CONV_B], b[S_XC], d.R, nseq, d.R, d.K);
    hk_gate_proj(&d, p, b[S_XC], b[S_GR], b[S_GI], nseq);
    int rf = bidir_rev_from(l->cfg, d.R); /* decoding: the reverse channels of s are stateless (§8.4) */
    bidir_step_clear(state, ss, nseq, nr + (size_t)rf, (size_t)(d.R - rf));
    k_rglru_gate_fwd(b[S_XC], d.R, b[S_GR], b[S_GI], p[P_RG_B], p[P_IG_B], p[P_LAMBDA], b[S_A], b[S_B], nseq, 1, d.R,
                     NULL, state + nr + d.R, ss);
    k_linrec_step(state + nr, ss, b[S_A], b[S_B], h, nseq, d.R);
    hk_out_proj(&d, p, b[S_XY], h, gated, out, nseq);
}

static double hk_zoology_state(const LayerCfg *c, int D, int L) { return (double)c->expand * D; }

const LayerOps hawk_ops = {
    .name = "hawk",
    .resolve = hk_resolve,
    .params = hk_params,
    .init_custom = hk_init_custom,
    .plan = hk_plan,
    .forward = hk_forward,
    .backward = hk_backward,
    .state_size = hk_state_size,
    .reverse_state = hk_reverse_state,
    .plan_step = hk_plan_step,
    .step = hk_step,
    .prefill = hk_prefill,
    .zoology_state = hk_zoology_state,
    .options = LOPT_EXPAND | LOPT_HEADS | LOPT_D_CONV | LOPT_BIDIR,
};
