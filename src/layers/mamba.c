/* mamba.c — the Mamba-1 mixer (docs/layers.md §1): selective state-space scan (S6).
 *
 *   [x, z]     = W_in·h                         xz    [M, 2I]   (M = B·T tokens)
 *   u          = silu(conv(x))                  xc, u [M, I]
 *   [r, B, C]  = W_x·u                          xdbl  [M, R+2N]
 *   Δ          = softplus(W_dt·r + b_dt)        dtpre, delta [M, I]
 *   A          = −exp(A_log)                    A     [I, N]
 *   h_t        = exp(Δ_t A) ⊙ h_{t−1} + Δ_t u_t B_tᵀ ;  y = h C + D ⊙ u      y [M, I]
 *   out        = W_out·(y ⊙ silu(z))            gated [M, I] → out [M, D]
 *
 * The scan (kernels/cpu/scan_mamba.c) saves the state entering every cfg->chunk tokens; backward
 * recomputes the states inside each chunk from it (docs/layers.md §0.7).
 * Decode state per sequence: conv ring [I, K−1] (pre-conv x), then h [I, N]. */
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/mamba.h"
#include "kernels/selective.h"
#include "layers/bidir.h"
#include "layers/layer.h"
#include "layers/selective.h"


enum { P_IN, P_CONV_W, P_CONV_B, P_X, P_DT_W, P_DT_B, P_A_LOG, P_D, P_OUT, NPARAM };
_Static_assert((int)P_IN == SEL_IN && (int)P_CONV_W == SEL_CONV_W && (int)P_CONV_B == SEL_CONV_B &&
                   (int)P_X == SEL_X && (int)P_DT_W == SEL_DT_W && (int)P_DT_B == SEL_DT_B, "shared input path: parameter order of selective.h");
enum { X_IN, XZ, XC, U, XDBL, DTPRE, DELTA, Y, GATED, SCK, AD,           /* kept for backward; AD = [A ; dA];
                                                                          * U, DELTA, GATED: scratch, recomputed */
       D_GATED, D_XZ, D_U, D_XDBL, D_DELTA, SCAN_WORK,                   /* backward scratch */
       RING,                                                             /* prefill: conv rings [B, I, K−1] */
       S_XZ, S_XC, S_U, S_XDBL, S_DELTA, S_Y, NBUF }; /* one-token step */
_Static_assert(NBUF <= EID_MAX_BUFS, "mamba: more buffers than Layer.buf holds");

typedef struct { int D, I, N, K, R, chunk; } Dims;
static Dims dims(const Layer *l) {
    const LayerCfg *c = l->cfg;
    return (Dims){l->D, c->expand * l->D, c->d_state, c->d_conv, c->dt_rank, c->chunk};
}

static int mb_resolve(LayerCfg *c, int D) { return selective_resolve(c, D, "mamba"); }

static int mb_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    int I = c->expand * D, N = c->d_state, K = c->d_conv, R = c->dt_rank;
    param_spec(&o[P_IN], "mixer.", "in_proj.weight", 2 * I, D, 0, INIT_UNIFORM, 1 / sqrt((double)D), 1);
    param_spec(&o[P_CONV_W], "mixer.", "conv1d.weight", I, 1, K, INIT_UNIFORM, 1 / sqrt((double)K), 1);
    param_spec(&o[P_CONV_B], "mixer.", "conv1d.bias", I, 0, 0, INIT_UNIFORM, 1 / sqrt((double)K), 0);
    param_spec(&o[P_X], "mixer.", "x_proj.weight", R + 2 * N, I, 0, INIT_UNIFORM, 1 / sqrt((double)I), 1);
    param_spec(&o[P_DT_W], "mixer.", "dt_proj.weight", I, R, 0, INIT_UNIFORM, 1 / sqrt((double)R), 1); /* R^-1/2·dt_scale, dt_scale = 1 */
    param_spec(&o[P_DT_B], "mixer.", "dt_proj.bias", I, 0, 0, INIT_CUSTOM, 0, 0);
    param_spec(&o[P_A_LOG], "mixer.", "A_log", I, N, 0, INIT_CUSTOM, 0, 0);
    param_spec(&o[P_D], "mixer.", "D", I, 0, 0, INIT_ONE, 0, 0);
    param_spec(&o[P_OUT], "mixer.", "out_proj.weight", D, I, 0, INIT_UNIFORM, 1 / sqrt((double)I) / sqrt((double)n_res_layers), 1);
    return NPARAM;
}

/* dt_proj.bias: dt = exp(U(log 1e-3, log 0.1)), clamp ≥ 1e-4, bias = softplus⁻¹(dt) = dt + log(−expm1(−dt)).
 * A_log[i, n] = log(n + 1). */
static void mb_init_custom(const LayerCfg *c, int D, int idx, real *p, Rng *r) {
    int I = c->expand * D, N = c->d_state;
    if (idx == P_DT_B) {
        const double lo = log(1e-3), hi = log(0.1);
        for (int i = 0; i < I; i++) {
            double dt = exp(lo + (hi - lo) * rng_uniform(r));
            if (dt < 1e-4) dt = 1e-4;
            p[i] = (real)(dt + log(-expm1(-dt)));
        }
    } else if (idx == P_A_LOG) {
        for (int i = 0; i < I; i++)
            for (int n = 0; n < N; n++) p[(size_t)i * N + n] = (real)log((double)(n + 1));
    } else {
        eid_fatal("mamba: no custom init for parameter %d", idx);
    }
}

static void mb_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l);
    size_t M = (size_t)B * T;
    int nck = EID_CDIV(T, d.chunk);
    l->buf[XZ] = take_act16(l, a, M * 2 * d.I);
    l->buf[XC] = take_act16(l, a, M * d.I);
    l->buf[U] = arena_scratch(a, M * d.I);     /* silu(XC): backward recomputes it */
    l->buf[XDBL] = take_act16(l, a, M * (d.R + 2 * d.N));
    l->buf[DTPRE] = take_act16(l, a, M * d.I);
    l->buf[DELTA] = arena_scratch(a, M * d.I); /* softplus(DTPRE): backward recomputes it */
    l->buf[Y] = take_act16(l, a, M * d.I);
    l->buf[GATED] = arena_scratch(a, M * d.I); /* (y + D·u)·silu(z): backward recomputes it */
    l->buf[SCK] = arena_take(a, (size_t)B * nck * d.I * d.N);
    l->buf[AD] = arena_take(a, (size_t)2 * d.I * d.N);
    l->buf[D_GATED] = arena_scratch(a, M * d.I);
    l->buf[D_XZ] = arena_scratch(a, M * 2 * d.I);
    l->buf[D_U] = arena_scratch(a, M * d.I);
    l->buf[D_XDBL] = arena_scratch(a, M * (d.R + 2 * d.N));
    l->buf[D_DELTA] = arena_scratch(a, M * d.I);
    l->buf[SCAN_WORK] = arena_scratch(a, k_mamba_scan_bwd_work(B, T, d.I, d.N, d.chunk));
    l->buf[RING] = arena_scratch(a, (size_t)B * d.I * (d.K - 1));
    l->B = B, l->T = T;
}

/* The forward pass; with `state` [B, state_size] (prefill) the conv and the scan continue from it
 * and leave in it the state after the last token (docs/layers.md §1.3). */
static void mb_run(Layer *l, const real *x, real *out, const SeqInfo *s, real *state) {
    Dims d = dims(l);
    int M = s->B * s->T, ldx = d.R + 2 * d.N;
    size_t ss = (size_t)d.I * (d.K - 1) + (size_t)d.I * d.N;
    real **b = l->buf, **p = l->p;
    real *h = state ? state + (size_t)d.I * (d.K - 1) : NULL;
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    if (state) selective_rings(state, ss, b[RING], s->B, d.I, d.K, 0);
    selective_input_fwd(s, d.D, d.I, d.K, ldx, p, x, b[XZ], b[XC], b[U], b[XDBL], state ? b[RING] : NULL);
    if (state) selective_rings(state, ss, b[RING], s->B, d.I, d.K, 1);
    eid_gemm(0, 1, M, d.I, d.R, 1, b[XDBL], ldx, p[P_DT_W], d.R, 0, b[DTPRE], d.I);
    k_sel_delta_fwd(b[DTPRE], p[P_DT_B], b[DELTA], M, d.I);
    k_sel_neg_exp(p[P_A_LOG], b[AD], (size_t)d.I * d.N);
    k_mamba_scan_fwd(b[U], b[DELTA], b[AD], b[XDBL] + d.R, b[XDBL] + d.R + d.N, ldx, b[Y], s->B, s->T, d.I, d.N,
                     d.chunk, s->flags, bidir_rev_from(l->cfg, d.I), h, h, ss, state ? NULL : b[SCK]);
    k_sel_skip_gate_fwd(p[P_D], b[U], b[XZ], b[Y], b[GATED], M, d.I);
    eid_gemm(0, 1, M, d.D, d.I, 1, b[GATED], d.I, p[P_OUT], d.I, 0, out, d.D);
}

static void mb_forward(Layer *l, const real *x, real *out, const SeqInfo *s) { mb_run(l, x, out, s, NULL); }
static void mb_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) { mb_run(l, x, out, s, state); }

static void mb_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, ldx = d.R + 2 * d.N;
    size_t IN = (size_t)d.I * d.N;
    real **b = l->buf, **p = l->p, **g = l->g;
    real *A = b[AD], *dA = b[AD] + IN;
    /* u, Δ and the gated output again, bit for bit as the forward made them (the same kernels on the kept inputs) */
    k_silu_fwd(b[XC], d.I, b[U], d.I, M, d.I);
    k_sel_softplus(b[DTPRE], b[DELTA], M, d.I);
    k_sel_gate_fwd(b[XZ], b[Y], b[GATED], M, d.I); /* Y holds y + D·u already */
    /* out = W_out·gated */
    eid_gemm(0, 0, M, d.I, d.D, 1, dout, d.D, p[P_OUT], d.I, 0, b[D_GATED], d.I);
    eid_gemm(1, 0, d.D, d.I, M, 1, dout, d.D, b[GATED], d.I, 1, g[P_OUT], d.I);
    k_sel_gate_bwd(p[P_D], b[XZ], b[Y], b[D_GATED], b[D_XZ], b[D_U], M, d.I);
    k_colsum_add(b[D_GATED], d.I, b[U], d.I, M, d.I, g[P_D]); /* dD = Σ dy_core ⊙ u */
    /* the scan writes dΔ, dA and dB, dC (columns R.. of D_XDBL) */
    k_mamba_scan_bwd(b[U], b[DELTA], A, b[XDBL] + d.R, b[XDBL] + d.R + d.N, ldx, b[D_GATED], b[SCK], b[D_U],
                     b[D_DELTA], dA, b[D_XDBL] + d.R, b[D_XDBL] + d.R + d.N, s->B, s->T, d.I, d.N, d.chunk, s->flags,
                     bidir_rev_from(l->cfg, d.I), b[SCAN_WORK]);
    k_sel_alog_bwd(dA, A, g[P_A_LOG], IN); /* A = −exp(A_log): dA_log = dA ⊙ A */
    k_sel_delta_bwd(b[D_DELTA], b[DTPRE], M, d.I);
    SelectiveBwd sb = {s->B, s->T, d.D, d.I, d.N, d.K, d.R, s->flags, b[X_IN], b[XZ], b[XC], b[U], b[XDBL],
                       b[D_DELTA], b[D_XDBL], b[D_U], b[D_XZ]};
    selective_input_bwd(&sb, p, g, dx);
}

static size_t mb_state_size(const LayerCfg *c, int D) {
    size_t I = (size_t)c->expand * D;
    return I * (c->d_conv - 1) + I * c->d_state; /* conv ring + h (docs/layers.md §1.3) */
}

static size_t mb_reverse_state(const LayerCfg *c, int D) {
    int I = c->expand * D;
    return (size_t)(I - bidir_rev_from(c, I)) * c->d_state; /* the reverse channels' rows of h */
}

static void mb_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l);
    l->buf[S_XZ] = arena_take(a, (size_t)nseq * 2 * d.I);
    l->buf[S_XC] = arena_take(a, (size_t)nseq * d.I);
    l->buf[S_U] = arena_take(a, (size_t)nseq * d.I);
    l->buf[S_XDBL] = arena_take(a, (size_t)nseq * (d.R + 2 * d.N));
    l->buf[S_DELTA] = arena_take(a, (size_t)2 * nseq * d.I + (size_t)d.I * d.N); /* pre, Δ [nseq, I], A [I, N] */
    l->buf[S_Y] = arena_take(a, (size_t)nseq * 2 * d.I);                     /* y then gated */
    l->nseq = nseq;
}

/* state [nseq, state_size]: per sequence the conv ring [I, K−1], then h [I, N] (the row prefill fills). */
static void mb_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    int ldx = d.R + 2 * d.N;
    real **b = l->buf, **p = l->p;
    size_t ss = (size_t)d.I * (d.K - 1) + (size_t)d.I * d.N;
    real *ring = state, *h = state + (size_t)d.I * (d.K - 1);
    real *pre = b[S_DELTA], *delta = pre + (size_t)nseq * d.I, *A = delta + (size_t)nseq * d.I;
    real *y = b[S_Y], *gated = b[S_Y] + (size_t)nseq * d.I;
    eid_gemm(0, 1, nseq, 2 * d.I, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[S_XZ], 2 * d.I);
    k_conv1d_step(ring, ss, b[S_XZ], 2 * d.I, p[P_CONV_W], p[P_CONV_B], b[S_XC], d.I, nseq, d.I, d.K);
    k_silu_fwd(b[S_XC], d.I, b[S_U], d.I, nseq, d.I);
    eid_gemm(0, 1, nseq, ldx, d.I, 1, b[S_U], d.I, p[P_X], d.I, 0, b[S_XDBL], ldx);
    eid_gemm(0, 1, nseq, d.I, d.R, 1, b[S_XDBL], ldx, p[P_DT_W], d.R, 0, pre, d.I);
    k_sel_delta_fwd(pre, p[P_DT_B], delta, nseq, d.I);
    k_sel_neg_exp(p[P_A_LOG], A, (size_t)d.I * d.N);
    int rf = bidir_rev_from(l->cfg, d.I);
    bidir_step_clear(state, ss, nseq, (size_t)d.I * (d.K - 1) + (size_t)rf * d.N, (size_t)(d.I - rf) * d.N);
    k_mamba_scan_step(h, ss, b[S_U], delta, A, b[S_XDBL] + d.R, b[S_XDBL] + d.R + d.N, ldx, y, nseq, d.I, d.N);
    k_sel_skip_gate_fwd(p[P_D], b[S_U], b[S_XZ], y, gated, nseq, d.I);
    eid_gemm(0, 1, nseq, d.D, d.I, 1, gated, d.I, p[P_OUT], d.I, 0, out, d.D);
}

static double mb_zoology_state(const LayerCfg *c, int D, int L) { return 2.0 * D * c->d_state; }

const LayerOps mamba_ops = {
    .name = "mamba",
    .resolve = mb_resolve,
    .params = mb_params,
    .init_custom = mb_init_custom,
    .plan = mb_plan,
    .forward = mb_forward,
    .backward = mb_backward,
    .state_size = mb_state_size,
    .reverse_state = mb_reverse_state,
    .plan_step = mb_plan_step,
    .step = mb_step,
    .prefill = mb_prefill,
    .zoology_state = mb_zoology_state,
    .options = LOPT_D_STATE | LOPT_EXPAND | LOPT_CHUNK | LOPT_D_CONV | LOPT_BIDIR,
};
