/* mamba2.c — the Mamba-2 mixer (docs/layers.md §3): SSD with a scalar decay per head.
 *
 *   [z, xBC, dt] = W_in·h                    zx    [M, 2I + 2GN + H]   (M = B·T tokens)
 *   xBC          = silu(conv(xBC))           xc (pre-silu), xbc [M, conv_dim], conv_dim = I + 2GN
 *   Δ            = softplus(dt + dt_bias)    dlt   [M, H]
 *   y            = SSD(x, B, C, Δ, A_log) + D·x            y [M, I]      (kernels/cpu/ssd.c)
 *   yg           = y ⊙ silu(z)                              yg [M, I]
 *   n            = grouped RMSNorm(yg) ⊙ norm.weight         nrm [M, I]   (gate first, then normalise)
 *   out          = W_out·n
 * Training forward/backward use the chunked SSD form (chunk = cfg->chunk); step() the recurrent form;
 * prefill() the chunked form from and to the decode state.
 * Decode state per sequence: conv ring [conv_dim, K−1] then S [H, P, N]; for nseq sequences all rings
 * [nseq, conv_dim, K−1] come first, then all states [nseq, H, P, N]. */
#include <string.h>
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/ssd.h"
#include "layers/bidir.h"
#include "layers/layer.h"
#include "layers/statex_util.h"


enum { P_IN, P_CONV_W, P_CONV_B, P_DT_B, P_ALOG, P_D, P_NORM, P_OUT, NPARAM };
enum { X_IN, ZX, XC, XBC, DLT, Y, YG, RSTD, NRM, SIN, WORK, RING, /* forward (XBC, YG, RSTD, NRM: recomputed by
                                                                 * backward; WORK: backward scratch; RING: prefill) */
       D_N, D_ZX, D_XBC, D_DLT,                            /* backward */
       S_ZX, S_XBC, S_DLT, S_Y, S_YG, S_RSTD, S_N, NBUF }; /* one-token step */
_Static_assert(NBUF <= EID_MAX_BUFS, "mamba2: more buffers than Layer.buf holds");

typedef struct { int D, I, H, P, G, N, K, Q, CD, DP; } Dims; /* CD = conv_dim, DP = in_proj rows */
static Dims dims(const LayerCfg *c, int D) {
    Dims d;
    d.D = D, d.I = c->expand * D, d.P = c->headdim, d.H = d.I / d.P, d.G = c->ngroups, d.N = c->d_state;
    d.K = c->d_conv, d.Q = c->chunk, d.CD = d.I + 2 * d.G * d.N, d.DP = 2 * d.I + 2 * d.G * d.N + d.H;
    return d;
}

static int m2_resolve(LayerCfg *c, int D) {
    if (!c->expand) c->expand = 2;
    if (!c->d_state) c->d_state = 16;
    if (!c->d_conv) c->d_conv = 4;
    if (!c->ngroups) c->ngroups = 1;
    if (!c->chunk) c->chunk = 64;
    if (c->expand < 1 || c->expand > 16) return eid_error("mamba2: expand must be in [1, 16], got %d", c->expand), -1;
    int I = c->expand * D;
    if (!c->headdim) /* 16 (small-model default) when it divides d_inner, else the largest divisor of d_inner below 16 */
        for (c->headdim = EID_MIN(16, I); I % c->headdim; c->headdim--) {}
    if (c->headdim < 1 || I % c->headdim)
        return eid_error("mamba2: headdim must divide d_inner = expand*d_model = %d, got %d", I, c->headdim), -1;
    int H = I / c->headdim;
    if (c->d_state < 1 || c->d_state > 512)
        return eid_error("mamba2: d_state must be in [1, 512], got %d", c->d_state), -1;
    if (c->d_conv < 1 || c->d_conv > 16) return eid_error("mamba2: d_conv must be in [1, 16], got %d", c->d_conv), -1;
    if (c->ngroups < 1 || H % c->ngroups)
        return eid_error("mamba2: ngroups must divide the number of heads (%d), got %d", H, c->ngroups), -1;
    if (c->chunk < 1) return eid_error("mamba2: chunk must be >= 1, got %d", c->chunk), -1;
    if (c->bidir && H < 2) /* the reverse half is heads [H/2, H) (docs/layers.md §8.2) */
        return eid_error("mamba2: a bidirectional layer needs at least 2 heads (d_inner/headdim), got %d", H), -1;
    return 0;
}

static int m2_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    Dims d = dims(c, D);
    param_spec(&o[P_IN], "mixer.", "in_proj.weight", d.DP, D, 0, INIT_UNIFORM, 1 / sqrt((double)D), 1);
    param_spec(&o[P_CONV_W], "mixer.", "conv1d.weight", d.CD, 1, d.K, INIT_UNIFORM, 1 / sqrt((double)d.K), 1);
    param_spec(&o[P_CONV_B], "mixer.", "conv1d.bias", d.CD, 0, 0, INIT_UNIFORM, 1 / sqrt((double)d.K), 0);
    param_spec(&o[P_DT_B], "mixer.", "dt_bias", d.H, 0, 0, INIT_CUSTOM, 0, 0);
    param_spec(&o[P_ALOG], "mixer.", "A_log", d.H, 0, 0, INIT_CUSTOM, 0, 0);
    param_spec(&o[P_D], "mixer.", "D", d.H, 0, 0, INIT_ONE, 0, 0);
    param_spec(&o[P_NORM], "mixer.", "norm.weight", d.I, 0, 0, INIT_ONE, 0, 0);
    param_spec(&o[P_OUT], "mixer.", "out_proj.weight", D, d.I, 0, INIT_UNIFORM, 1 / sqrt((double)d.I) / sqrt((double)n_res_layers), 1);
    return NPARAM;
}

/* dt_bias: inverse softplus of dt = exp(U(log 1e-3, log 0.1)) clamped >= 1e-4; A_log = log(U[1, 16]). */
static void m2_init_custom(const LayerCfg *c, int D, int idx, real *p, Rng *r) {
    Dims d = dims(c, D);
    for (int h = 0; h < d.H; h++) {
        if (idx == P_DT_B) {
            double dt = exp(log(1e-3) + rng_uniform(r) * (log(0.1) - log(1e-3)));
            if (dt < 1e-4) dt = 1e-4;
            p[h] = (real)(dt + log(-expm1(-dt)));
        } else if (idx == P_ALOG) {
            p[h] = (real)log(1 + 15 * rng_uniform(r));
        }
    }
}

static void m2_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l->cfg, l->D);
    size_t M = (size_t)B * T;
    int nck = EID_CDIV(T, d.Q);
    l->buf[ZX] = take_act16(l, a, M * d.DP);
    l->buf[XC] = take_act16(l, a, M * d.CD);
    l->buf[XBC] = arena_scratch(a, M * d.CD); /* XBC, YG, RSTD, NRM: backward recomputes them */
    l->buf[DLT] = take_act16(l, a, M * d.H);
    l->buf[Y] = take_act16(l, a, M * d.I);
    l->buf[YG] = arena_scratch(a, M * d.I);
    l->buf[RSTD] = arena_scratch(a, M * d.G);
    l->buf[NRM] = arena_scratch(a, M * d.I);
    l->buf[SIN] = arena_take(a, (size_t)B * d.H * nck * d.P * d.N);
    l->buf[WORK] = arena_scratch(a, k_ssd_work(B, T, d.H, d.N));
    l->buf[RING] = arena_scratch(a, (size_t)B * d.CD * d.K); /* ≥ 1 even when K = 1 */
    l->buf[D_N] = arena_scratch(a, M * d.I);
    l->buf[D_ZX] = arena_scratch(a, M * d.DP);
    l->buf[D_XBC] = arena_scratch(a, M * d.CD);
    l->buf[D_DLT] = arena_scratch(a, M * d.H);
    l->B = B, l->T = T;
}

static void m2_forward(Layer *l, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l->cfg, l->D);
    int M = s->B * s->T;
    real **b = l->buf, **p = l->p;
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    eid_gemm(0, 1, M, d.DP, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[ZX], d.DP);
    k_conv1d_fwd(b[ZX] + d.I, d.DP, p[P_CONV_W], p[P_CONV_B], b[XC], d.CD, s->B, s->T, d.CD, d.K, s->flags, NULL, NULL);
    k_silu_fwd(b[XC], d.CD, b[XBC], d.CD, M, d.CD);
    k_ssd_delta_fwd(b[ZX] + d.DP - d.H, d.DP, p[P_DT_B], b[DLT], M, d.H);
    k_ssd_fwd(b[XBC], d.CD, b[DLT], p[P_ALOG], p[P_D], b[Y], b[SIN], s->B, s->T, d.H, d.P, d.G, d.N, d.Q, s->flags,
              bidir_rev_from(l->cfg, d.H), NULL, NULL, 0);
    k_mul_silu_fwd(b[Y], d.I, b[ZX], d.DP, b[YG], d.I, M, d.I);
    k_gnorm_fwd(b[YG], p[P_NORM], b[NRM], b[RSTD], M, d.I, d.G, (real)1e-5);
    eid_gemm(0, 1, M, d.D, d.I, 1, b[NRM], d.I, p[P_OUT], d.I, 0, out, d.D);
}

static void m2_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l->cfg, l->D);
    int M = s->B * s->T;
    real **b = l->buf, **p = l->p, **g = l->g;
    /* xBC, the gated y and its norm again, bit for bit as the forward made them (the same kernels on
     * the kept ZX, XC, Y) */
    k_silu_fwd(b[XC], d.CD, b[XBC], d.CD, M, d.CD);
    k_mul_silu_fwd(b[Y], d.I, b[ZX], d.DP, b[YG], d.I, M, d.I);
    k_gnorm_fwd(b[YG], p[P_NORM], b[NRM], b[RSTD], M, d.I, d.G, (real)1e-5);
    /* out = W_out·n */
    eid_gemm(0, 0, M, d.I, d.D, 1, dout, d.D, p[P_OUT], d.I, 0, b[D_N], d.I);
    eid_gemm(1, 0, d.D, d.I, M, 1, dout, d.D, b[NRM], d.I, 1, g[P_OUT], d.I);
    /* grouped norm (in place: D_N becomes dyg), then the gate (D_N becomes dy) */
    k_gnorm_bwd(b[D_N], b[YG], p[P_NORM], b[RSTD], b[D_N], g[P_NORM], M, d.I, d.G);
    k_mul_silu_bwd(b[D_N], d.I, b[Y], d.I, b[ZX], d.DP, b[D_ZX], d.DP, M, d.I);
    /* the SSD */
    k_zero(b[D_XBC], d.CD, M, d.CD);
    k_zero(b[D_DLT], d.H, M, d.H);
    k_ssd_bwd(b[XBC], d.CD, b[DLT], p[P_ALOG], p[P_D], b[D_N], b[SIN], b[D_XBC], b[D_DLT], g[P_ALOG], g[P_D], s->B,
              s->T, d.H, d.P, d.G, d.N, d.Q, s->flags, bidir_rev_from(l->cfg, d.H), b[WORK]);
    k_ssd_delta_bwd(b[ZX] + d.DP - d.H, d.DP, p[P_DT_B], b[D_DLT], b[D_ZX] + d.DP - d.H, d.DP, g[P_DT_B], M, d.H);
    /* xBC = silu(conv(xBC_raw)) */
    k_silu_bwd(b[XC], d.CD, b[D_XBC], d.CD, M, d.CD);
    k_zero(b[D_ZX] + d.I, d.DP, M, d.CD);
    k_conv1d_bwd(b[D_XBC], d.CD, b[ZX] + d.I, d.DP, p[P_CONV_W], b[D_ZX] + d.I, d.DP, g[P_CONV_W], g[P_CONV_B], s->B,
                 s->T, d.CD, d.K, s->flags, NULL);
    /* zx = W_in·x */
    eid_gemm(1, 0, d.DP, d.D, M, 1, b[D_ZX], d.DP, b[X_IN], d.D, 1, g[P_IN], d.D);
    eid_gemm(0, 0, M, d.D, d.DP, 1, b[D_ZX], d.DP, p[P_IN], d.D, 1, dx, d.D);
}

static size_t m2_state_size(const LayerCfg *c, int D) {
    Dims d = dims(c, D);
    return (size_t)d.H * d.P * d.N + (size_t)d.CD * (d.K - 1); /* docs/layers.md §3.5, §9 */
}

static size_t m2_reverse_state(const LayerCfg *c, int D) {
    Dims d = dims(c, D);
    return (size_t)(d.H - bidir_rev_from(c, d.H)) * d.P * d.N; /* the reverse heads' S */
}

static void m2_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l->cfg, l->D);
    l->buf[S_ZX] = arena_take(a, (size_t)nseq * d.DP);
    l->buf[S_XBC] = arena_take(a, (size_t)nseq * d.CD);
    l->buf[S_DLT] = arena_take(a, (size_t)nseq * d.H);
    l->buf[S_Y] = arena_take(a, (size_t)nseq * d.I);
    l->buf[S_YG] = arena_take(a, (size_t)nseq * d.I);
    l->buf[S_RSTD] = arena_take(a, (size_t)nseq * d.G);
    l->buf[S_N] = arena_take(a, (size_t)nseq * d.I);
    l->nseq = nseq;
}

/* state [nseq, state_size]: per sequence the conv ring [CD, K−1], then S [H, P, N] (the row prefill fills). */
static void m2_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l->cfg, l->D);
    real **b = l->buf, **p = l->p;
    size_t ss = m2_state_size(l->cfg, l->D);
    real *ring = state, *S = state + (size_t)d.CD * (d.K - 1);
    eid_gemm(0, 1, nseq, d.DP, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[S_ZX], d.DP);
    k_conv1d_step(ring, ss, b[S_ZX] + d.I, d.DP, p[P_CONV_W], p[P_CONV_B], b[S_XBC], d.CD, nseq, d.CD, d.K);
    k_silu_fwd(b[S_XBC], d.CD, b[S_XBC], d.CD, nseq, d.CD);
    k_ssd_delta_fwd(b[S_ZX] + d.DP - d.H, d.DP, p[P_DT_B], b[S_DLT], nseq, d.H);
    int rf = bidir_rev_from(l->cfg, d.H);
    bidir_step_clear(state, ss, nseq, (size_t)d.CD * (d.K - 1) + (size_t)rf * d.P * d.N, (size_t)(d.H - rf) * d.P * d.N);
    k_ssd_step(S, ss, b[S_XBC], d.CD, b[S_DLT], p[P_ALOG], p[P_D], b[S_Y], nseq, d.H, d.P, d.G, d.N);
    k_mul_silu_fwd(b[S_Y], d.I, b[S_ZX], d.DP, b[S_YG], d.I, nseq, d.I);
    k_gnorm_fwd(b[S_YG], p[P_NORM], b[S_N], b[S_RSTD], nseq, d.I, d.G, (real)1e-5);
    eid_gemm(0, 1, nseq, d.D, d.I, 1, b[S_N], d.I, p[P_OUT], d.I, 0, out, d.D);
}

/* The forward over a prompt, from and to the decode state [B, ss] (per row: conv ring [conv_dim, K−1],
 * then S [H, P, N]; docs/layers.md §3.5): the conv continues from the rings (copied to a contiguous
 * [B, conv_dim, K−1] block for the conv kernel and back), the SSD from S0 = S to Sfinal = S. */
static void m2_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l->cfg, l->D);
    int M = s->B * s->T, nr = d.CD * (d.K - 1);
    size_t ss = m2_state_size(l->cfg, l->D);
    real **b = l->buf, **p = l->p;
    eid_gemm(0, 1, M, d.DP, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[ZX], d.DP);
    k_copy(state, (int)ss, b[RING], nr, s->B, nr);
    k_conv1d_fwd(b[ZX] + d.I, d.DP, p[P_CONV_W], p[P_CONV_B], b[XC], d.CD, s->B, s->T, d.CD, d.K, s->flags, b[RING],
                 b[RING]);
    k_copy(b[RING], nr, state, (int)ss, s->B, nr);
    k_silu_fwd(b[XC], d.CD, b[XBC], d.CD, M, d.CD);
    k_ssd_delta_fwd(b[ZX] + d.DP - d.H, d.DP, p[P_DT_B], b[DLT], M, d.H);
    k_ssd_fwd(b[XBC], d.CD, b[DLT], p[P_ALOG], p[P_D], b[Y], b[SIN], s->B, s->T, d.H, d.P, d.G, d.N, d.Q, s->flags,
              bidir_rev_from(l->cfg, d.H), state + nr, state + nr, ss);
    k_mul_silu_fwd(b[Y], d.I, b[ZX], d.DP, b[YG], d.I, M, d.I);
    k_gnorm_fwd(b[YG], p[P_NORM], b[NRM], b[RSTD], M, d.I, d.G, (real)1e-5);
    eid_gemm(0, 1, M, d.D, d.I, 1, b[NRM], d.I, p[P_OUT], d.I, 0, out, d.D);
}

static double m2_zoology_state(const LayerCfg *c, int D, int L) { return 2.0 * D * c->d_state; }


extern const LayerOps mamba2_ops;

/* The B or C row block of group g: rows [base + g·N', base + (g+1)·N') of the destination from rows
 * [base0 + g·N, …) of the source (cols per row): inherit tiles the old N rows k times (state index
 * n' ↦ n' mod N), zero keeps them and zeroes the rest, reinit leaves the fresh draw (§3.1, §3.2; with
 * G > 1 inside each group). */
static void m2_bc_block(StatexMethod m, const real *src, int base0, real *dst, int base, int N, int Nn, int cols) {
    if (m == SX_REINIT) return;
    for (int j = 0; j < Nn / N; j++) {
        if (m == SX_INHERIT || j == 0) sx_rows(src, base0, dst, base + j * N, N, cols);
        else k_zero(dst + (size_t)(base + j * N) * cols, cols, N, cols);
    }
}

/* StateX (docs/statex.md §3): d_state N → N' = k·N. in_proj and the conv get N' B and C rows /
 * channels (fresh, tiled or zero-padded per the method); z, x, dt rows and x channels, D, out_proj
 * are kept; dt_bias = 1, A_log = log(1..H), norm.weight = 1 unless keep_resets. */
static int m2_expand(const LayerCfg *src, LayerCfg *dst, int D, int n_res, const StatexReq *r, real *const *sp,
                     real *const *dp, Rng *rng, unsigned *out) {
    int k = r->state_mult;
    if (k < 1) return eid_error("mamba2: --state-mult k is required and must be >= 1, got %d", k), -1;
    if ((long)k * src->d_state > 512)
        return eid_error("mamba2: --state-mult %d gives d_state %ld, above 512", k, (long)k * src->d_state), -1;
    if (src->bidir) return eid_error("mamba2: a bidirectional layer has no StateX method (its heads are split by direction)"), -1;
    dst->d_state = k * src->d_state;
    *out = SX_OUT_USES_STATE_MULT;
    if (!dp) return 0;
    Dims a = dims(src, D), b = dims(dst, D);
    ParamSpec ds[NPARAM];
    m2_params(dst, D, n_res, ds);
    for (int i = 0; i < NPARAM; i++) sx_fresh(&mamba2_ops, dst, D, &ds[i], i, dp[i], rng);
    /* in_proj rows [z | x | B (G·N) | C (G·N) | dt (H)] */
    sx_rows(sp[P_IN], 0, dp[P_IN], 0, 2 * a.I, D);
    sx_rows(sp[P_IN], a.DP - a.H, dp[P_IN], b.DP - b.H, a.H, D);
    /* conv channels [x | B | C], weight rows of K taps, bias one each */
    sx_rows(sp[P_CONV_W], 0, dp[P_CONV_W], 0, a.I, a.K);
    sx_rows(sp[P_CONV_B], 0, dp[P_CONV_B], 0, a.I, 1);
    for (int bc = 0; bc < 2; bc++)
        for (int g = 0; g < a.G; g++) {
            int s0 = bc * a.G * a.N + g * a.N, d0 = bc * b.G * b.N + g * b.N;
            m2_bc_block(r->method, sp[P_IN], 2 * a.I + s0, dp[P_IN], 2 * b.I + d0, a.N, b.N, D);
            m2_bc_block(r->method, sp[P_CONV_W], a.I + s0, dp[P_CONV_W], b.I + d0, a.N, b.N, a.K);
            m2_bc_block(r->method, sp[P_CONV_B], a.I + s0, dp[P_CONV_B], b.I + d0, a.N, b.N, 1);
        }
    sx_same(&ds[P_D], sp[P_D], dp[P_D]);
    sx_same(&ds[P_OUT], sp[P_OUT], dp[P_OUT]);
    if (r->keep_resets) {
        sx_same(&ds[P_DT_B], sp[P_DT_B], dp[P_DT_B]);
        sx_same(&ds[P_ALOG], sp[P_ALOG], dp[P_ALOG]);
        sx_same(&ds[P_NORM], sp[P_NORM], dp[P_NORM]);
    } else { /* §3.1 step 4: dt_bias = 1, A_h = −h, norm.weight = 1 (already drawn as ones) */
        k_fill(dp[P_DT_B], (size_t)b.H, 1);
        for (int h = 0; h < b.H; h++) k_fill(dp[P_ALOG] + h, 1, (real)log(h + 1.0));
    }
    return 0;
}

const LayerOps mamba2_ops = {
    .name = "mamba2",
    .resolve = m2_resolve,
    .params = m2_params,
    .init_custom = m2_init_custom,
    .plan = m2_plan,
    .forward = m2_forward,
    .backward = m2_backward,
    .state_size = m2_state_size,
    .reverse_state = m2_reverse_state,
    .expand = m2_expand,
    .plan_step = m2_plan_step,
    .step = m2_step,
    .prefill = m2_prefill,
    .zoology_state = m2_zoology_state,
    .options = LOPT_D_STATE | LOPT_EXPAND | LOPT_HEADDIM | LOPT_CHUNK | LOPT_D_CONV | LOPT_BIDIR,
};
