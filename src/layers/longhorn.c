/* longhorn.c — the Longhorn mixer (docs/layers.md §2): a Mamba-1 block whose SSM is one implicit step of
 * online regression per token. Diagonal form (§2.2), the authors' default.
 *
 *   [x, z]     = W_in·h                       xz   [M, 2I]   (M = B·T tokens)
 *   u          = silu(conv(x))                xc, u [M, I]
 *   [r, k, q]  = W_x·u                        xdbl [M, R+2N]
 *   β          = σ(W_dt·r + b_dt)             beta [M, I]
 *   ε          = β / (1 + β‖k‖²)              eps  [M, I]
 *   S_t        = (1 − ε k²) ⊙ S_{t−1} + ε u kᵀ ;  y = S q + D ⊙ u      y [M, I]
 *   out        = W_out·(y ⊙ silu(z))          gated [M, I] → out [M, D]
 */
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/selective.h"
#include "layers/bidir.h"
#include "layers/layer.h"
#include "layers/selective.h"
#include "layers/statex_util.h"

enum { P_IN, P_CONV_W, P_CONV_B, P_X, P_DT_W, P_DT_B, P_D, P_OUT, NPARAM };
_Static_assert((int)P_IN == SEL_IN && (int)P_CONV_W == SEL_CONV_W && (int)P_CONV_B == SEL_CONV_B &&
                   (int)P_X == SEL_X && (int)P_DT_W == SEL_DT_W && (int)P_DT_B == SEL_DT_B, "shared input path: parameter order of selective.h");
enum { X_IN, XZ, XC, U, XDBL, BPRE, BETA, EPS, Y, GATED, SCK,         /* kept for backward (BPRE: W_dt·r;
                                                                          * U, BETA, EPS, GATED: scratch, recomputed) */
       D_GATED, D_XZ, D_U, D_XDBL, D_EPS, D_BRAW, SCAN_WORK,            /* backward scratch */
       RING,                                                            /* prefill: conv rings [B, I, K−1] */
       S_XZ, S_XC, S_U, S_XDBL, S_EPS, S_Y, NBUF }; /* one-token step */
_Static_assert(NBUF <= EID_MAX_BUFS, "longhorn: more buffers than Layer.buf holds");

typedef struct { int D, I, N, K, R, chunk; } Dims;
static Dims dims(const Layer *l) {
    const LayerCfg *c = l->cfg;
    return (Dims){l->D, c->expand * l->D, c->d_state, c->d_conv, c->dt_rank, c->chunk};
}

static int lh_resolve(LayerCfg *c, int D) { return selective_resolve(c, D, "longhorn"); }

static int lh_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    int I = c->expand * D, N = c->d_state, K = c->d_conv, R = c->dt_rank;
    param_spec(&o[P_IN], "mixer.", "in_proj.weight", 2 * I, D, 0, INIT_UNIFORM, 1 / sqrt((double)D), 1);
    param_spec(&o[P_CONV_W], "mixer.", "conv1d.weight", I, 1, K, INIT_UNIFORM, 1 / sqrt((double)K), 1);
    param_spec(&o[P_CONV_B], "mixer.", "conv1d.bias", I, 0, 0, INIT_UNIFORM, 1 / sqrt((double)K), 0);
    param_spec(&o[P_X], "mixer.", "x_proj.weight", R + 2 * N, I, 0, INIT_UNIFORM, 1 / sqrt((double)I), 1);
    param_spec(&o[P_DT_W], "mixer.", "dt_proj.weight", I, R, 0, INIT_UNIFORM, 1 / sqrt((double)R), 1);
    param_spec(&o[P_DT_B], "mixer.", "dt_proj.bias", I, 0, 0, INIT_ZERO, 0, 0);
    param_spec(&o[P_D], "mixer.", "D", I, 0, 0, INIT_ONE, 0, 0);
    param_spec(&o[P_OUT], "mixer.", "out_proj.weight", D, I, 0, INIT_UNIFORM, 1 / sqrt((double)I) / sqrt((double)n_res_layers), 1);
    return NPARAM;
}

static void lh_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l);
    size_t M = (size_t)B * T;
    int nck = EID_CDIV(T, d.chunk);
    l->buf[XZ] = take_act16(l, a, M * 2 * d.I);
    l->buf[XC] = take_act16(l, a, M * d.I);
    l->buf[U] = arena_scratch(a, M * d.I); /* silu(XC) */
    l->buf[XDBL] = take_act16(l, a, M * (d.R + 2 * d.N));
    l->buf[BPRE] = take_act16(l, a, M * d.I);
    l->buf[BETA] = arena_scratch(a, M * d.I); /* β and ε: from BPRE and k */
    l->buf[EPS] = arena_scratch(a, M * d.I);
    l->buf[Y] = take_act16(l, a, M * d.I);
    l->buf[GATED] = arena_scratch(a, M * d.I); /* (y + D·u)·silu(z): backward recomputes it */
    l->buf[SCK] = arena_take(a, (size_t)B * nck * d.I * d.N);
    /* backward scratch (the model passes an arena that is shared by all layers' backward) */
    l->buf[D_GATED] = arena_scratch(a, M * d.I);
    l->buf[D_XZ] = arena_scratch(a, M * 2 * d.I);
    l->buf[D_U] = arena_scratch(a, M * d.I);
    l->buf[D_XDBL] = arena_scratch(a, M * (d.R + 2 * d.N));
    l->buf[D_EPS] = arena_scratch(a, M * d.I);
    l->buf[D_BRAW] = arena_scratch(a, M * d.I);
    l->buf[SCAN_WORK] = arena_scratch(a, k_longhorn_scan_bwd_work(B, T, d.I, d.N, d.chunk));
    l->buf[RING] = arena_scratch(a, (size_t)B * d.I * (d.K - 1));
    l->B = B, l->T = T;
}

/* β = σ(BPRE + b_dt) and ε = β/(1 + β‖k‖²) into scratch, from the kept BPRE (docs/layers.md §2) */
static void lh_beta_eps(Layer *l, int M, int ldx) {
    Dims d = dims(l);
    real **b = l->buf;
    k_copy(b[BPRE], d.I, b[BETA], d.I, M, d.I);
    k_sel_beta_eps_fwd(b[BETA], l->p[P_DT_B], b[XDBL] + d.R, ldx, b[EPS], M, d.I, d.N);
}

/* The forward pass; with `state` [B, state_size] (prefill) the conv and the scan continue from it
 * and leave in it the state after the last token (docs/layers.md §2.4). */
static void lh_run(Layer *l, const real *x, real *out, const SeqInfo *s, real *state) {
    Dims d = dims(l);
    int M = s->B * s->T, ldx = d.R + 2 * d.N;
    size_t ss = (size_t)d.I * (d.K - 1) + (size_t)d.I * d.N;
    real **b = l->buf, **p = l->p;
    real *S = state ? state + (size_t)d.I * (d.K - 1) : NULL;
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    if (state) selective_rings(state, ss, b[RING], s->B, d.I, d.K, 0);
    selective_input_fwd(s, d.D, d.I, d.K, ldx, p, x, b[XZ], b[XC], b[U], b[XDBL], state ? b[RING] : NULL);
    if (state) selective_rings(state, ss, b[RING], s->B, d.I, d.K, 1);
    eid_gemm(0, 1, M, d.I, d.R, 1, b[XDBL], ldx, p[P_DT_W], d.R, 0, b[BPRE], d.I);
    lh_beta_eps(l, M, ldx);
    k_longhorn_scan_fwd(b[U], b[EPS], b[XDBL] + d.R, b[XDBL] + d.R + d.N, ldx, b[Y], s->B, s->T, d.I, d.N, d.chunk,
                        s->flags, bidir_rev_from(l->cfg, d.I), S, S, ss, state ? NULL : b[SCK]);
    k_sel_skip_gate_fwd(p[P_D], b[U], b[XZ], b[Y], b[GATED], M, d.I);
    eid_gemm(0, 1, M, d.D, d.I, 1, b[GATED], d.I, p[P_OUT], d.I, 0, out, d.D);
}

static void lh_forward(Layer *l, const real *x, real *out, const SeqInfo *s) { lh_run(l, x, out, s, NULL); }
static void lh_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) { lh_run(l, x, out, s, state); }

static void lh_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, ldx = d.R + 2 * d.N;
    real **b = l->buf, **p = l->p, **g = l->g;
    /* u, β, ε and the gated output again, bit for bit as the forward made them (the same kernels on the kept inputs) */
    k_silu_fwd(b[XC], d.I, b[U], d.I, M, d.I);
    lh_beta_eps(l, M, ldx);
    k_sel_gate_fwd(b[XZ], b[Y], b[GATED], M, d.I); /* Y holds y + D·u already */
    /* out = W_out·gated */
    eid_gemm(0, 0, M, d.I, d.D, 1, dout, d.D, p[P_OUT], d.I, 0, b[D_GATED], d.I);
    eid_gemm(1, 0, d.D, d.I, M, 1, dout, d.D, b[GATED], d.I, 1, g[P_OUT], d.I);
    k_sel_gate_bwd(p[P_D], b[XZ], b[Y], b[D_GATED], b[D_XZ], b[D_U], M, d.I);
    k_colsum_add(b[D_GATED], d.I, b[U], d.I, M, d.I, g[P_D]); /* dD = Σ dy_core ⊙ u */
    /* the scan writes dk, dq (columns R.. of D_XDBL) and deps */
    k_longhorn_scan_bwd(b[U], b[EPS], b[XDBL] + d.R, b[XDBL] + d.R + d.N, ldx, b[D_GATED], b[SCK], b[D_U], b[D_EPS],
                        b[D_XDBL] + d.R, b[D_XDBL] + d.R + d.N, s->B, s->T, d.I, d.N, d.chunk, s->flags, bidir_rev_from(l->cfg, d.I),
                        b[SCAN_WORK]);
    k_sel_eps_bwd(b[XDBL] + d.R, ldx, b[BETA], b[D_EPS], b[D_XDBL] + d.R, ldx, b[D_BRAW], M, d.I, d.N);
    SelectiveBwd sb = {s->B, s->T, d.D, d.I, d.N, d.K, d.R, s->flags, b[X_IN], b[XZ], b[XC], b[U], b[XDBL],
                       b[D_BRAW], b[D_XDBL], b[D_U], b[D_XZ]};
    selective_input_bwd(&sb, p, g, dx);
}

static size_t lh_state_size(const LayerCfg *c, int D) {
    size_t I = (size_t)c->expand * D;
    return I * (c->d_conv - 1) + I * c->d_state; /* conv ring + S (docs/layers.md §2.4) */
}

static size_t lh_reverse_state(const LayerCfg *c, int D) {
    int I = c->expand * D;
    return (size_t)(I - bidir_rev_from(c, I)) * c->d_state; /* the reverse channels' rows of S */
}

static void lh_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l);
    l->buf[S_XZ] = arena_take(a, (size_t)nseq * 2 * d.I);
    l->buf[S_XC] = arena_take(a, (size_t)nseq * d.I);
    l->buf[S_U] = arena_take(a, (size_t)nseq * d.I);
    l->buf[S_XDBL] = arena_take(a, (size_t)nseq * (d.R + 2 * d.N));
    l->buf[S_EPS] = arena_take(a, (size_t)nseq * 2 * d.I); /* β then ε */
    l->buf[S_Y] = arena_take(a, (size_t)nseq * 2 * d.I);   /* y then gated */
    l->nseq = nseq;
}

/* state [nseq, state_size]: per sequence the conv ring [I, K−1], then S [I, N] (the row prefill fills). */
static void lh_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    int ldx = d.R + 2 * d.N;
    real **b = l->buf, **p = l->p;
    size_t ss = (size_t)d.I * (d.K - 1) + (size_t)d.I * d.N;
    real *ring = state, *S = state + (size_t)d.I * (d.K - 1);
    real *beta = b[S_EPS], *eps = b[S_EPS] + (size_t)nseq * d.I;
    real *y = b[S_Y], *gated = b[S_Y] + (size_t)nseq * d.I;
    eid_gemm(0, 1, nseq, 2 * d.I, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[S_XZ], 2 * d.I);
    k_conv1d_step(ring, ss, b[S_XZ], 2 * d.I, p[P_CONV_W], p[P_CONV_B], b[S_XC], d.I, nseq, d.I, d.K);
    k_silu_fwd(b[S_XC], d.I, b[S_U], d.I, nseq, d.I);
    eid_gemm(0, 1, nseq, ldx, d.I, 1, b[S_U], d.I, p[P_X], d.I, 0, b[S_XDBL], ldx);
    eid_gemm(0, 1, nseq, d.I, d.R, 1, b[S_XDBL], ldx, p[P_DT_W], d.R, 0, beta, d.I);
    k_sel_beta_eps_fwd(beta, p[P_DT_B], b[S_XDBL] + d.R, ldx, eps, nseq, d.I, d.N);
    int rf = bidir_rev_from(l->cfg, d.I);
    bidir_step_clear(state, ss, nseq, (size_t)d.I * (d.K - 1) + (size_t)rf * d.N, (size_t)(d.I - rf) * d.N);
    k_longhorn_scan_step(S, ss, b[S_U], eps, b[S_XDBL] + d.R, b[S_XDBL] + d.R + d.N, ldx, y, nseq, d.I, d.N);
    k_sel_skip_gate_fwd(p[P_D], b[S_U], b[S_XZ], y, gated, nseq, d.I);
    eid_gemm(0, 1, nseq, d.D, d.I, 1, gated, d.I, p[P_OUT], d.I, 0, out, d.D);
}

static double lh_zoology_state(const LayerCfg *c, int D, int L) { return 2.0 * D * c->d_state; }


extern const LayerOps longhorn_ops;

/* Mean ‖k‖² per token of the source keys and of the fresh destination keys (rows [R, R+N') of
 * dst_x) on the calibration batch: the source layer's input path gives u, then k = W_k u. */
static void lh_calib_norms(const LayerCfg *src, int D, int Nn, real *const *sp, const real *dst_x, const real *x,
                           const SeqInfo *s, double *old_sq, double *new_sq) {
    int I = src->expand * D, N = src->d_state, R = src->dt_rank, K = src->d_conv, ldx = R + 2 * N;
    size_t M = (size_t)s->B * s->T;
    Arena a;
    real *xz = NULL, *xc = NULL, *u = NULL, *xdbl = NULL, *kn = NULL, *sq = NULL;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) arena_begin_measure(&a); else arena_commit(&a);
        xz = arena_take(&a, M * 2 * I), xc = arena_take(&a, M * I), u = arena_take(&a, M * I);
        xdbl = arena_take(&a, M * ldx), kn = arena_take(&a, M * Nn), sq = arena_take(&a, (size_t)N + Nn);
    }
    selective_input_fwd(s, D, I, K, ldx, sp, x, xz, xc, u, xdbl, NULL);
    eid_gemm(0, 1, (int)M, Nn, I, 1, u, I, dst_x + (size_t)R * I, I, 0, kn, Nn);
    k_colsum_add(xdbl + R, ldx, xdbl + R, ldx, (int)M, N, sq);
    k_colsum_add(kn, Nn, kn, Nn, (int)M, Nn, sq + N);
    double so = 0, sn = 0;
    for (int i = 0; i < N; i++) so += sq[i];
    for (int i = 0; i < Nn; i++) sn += sq[N + i];
    *old_sq = so / (double)M, *new_sq = sn / (double)M;
    arena_free(&a);
}

/* StateX, our Longhorn extension (docs/statex.md §6): d_state N → N' = k·N on the keys and queries
 * of x_proj (no conv surgery: k, q come after the conv). reinit: fresh k, q rows, k rows rescaled so
 * the mean ‖k‖² on the calibration batch matches the source (k_scale "match", the default);
 * inherit: old rows tiled k times, scaled by 1/√k; zero: old rows then zeros. dt_proj.bias = 0 unless
 * keep_resets. */
static int lh_expand(const LayerCfg *src, LayerCfg *dst, int D, int n_res, const StatexReq *r, real *const *sp,
                     real *const *dp, Rng *rng, unsigned *out) {
    int k = r->state_mult;
    if (k < 1) return eid_error("longhorn: --state-mult k is required and must be >= 1, got %d", k), -1;
    if ((long)k * src->d_state > 256)
        return eid_error("longhorn: --state-mult %d gives d_state %ld, above 256", k, (long)k * src->d_state), -1;
    if (src->bidir) return eid_error("longhorn: a bidirectional layer has no StateX method"), -1;
    int match = r->method == SX_REINIT && !r->k_scale_none;
    if (match && dp && !r->calib)
        return eid_error("longhorn: k_scale match needs a calibration batch (or --k-scale none)"), -1;
    dst->d_state = k * src->d_state;
    *out = SX_OUT_USES_STATE_MULT | (r->method == SX_REINIT ? SX_OUT_USES_K_SCALE : 0) | (match ? SX_OUT_NEEDS_CALIB : 0);
    if (!dp) return 0;
    int I = src->expand * D, N = src->d_state, Nn = dst->d_state, R = src->dt_rank;
    ParamSpec ds[NPARAM];
    lh_params(dst, D, n_res, ds);
    for (int i = 0; i < NPARAM; i++)
        if (i != P_X && !(i == P_DT_B && !r->keep_resets)) sx_same(&ds[i], sp[i], dp[i]);
    if (!r->keep_resets) k_fill(dp[P_DT_B], (size_t)I, 0); /* Longhorn's reference init */
    sx_fresh(&longhorn_ops, dst, D, &ds[P_X], P_X, dp[P_X], rng);
    sx_rows(sp[P_X], 0, dp[P_X], 0, R, I); /* dt_low rows */
    for (int kq = 0; kq < 2; kq++) { /* k rows at R, q rows at R + N (R + N' in the destination) */
        int s0 = R + kq * N, d0 = R + kq * Nn;
        if (r->method == SX_REINIT) continue;
        for (int j = 0; j < k; j++) {
            if (r->method == SX_INHERIT || j == 0) sx_rows(sp[P_X], s0, dp[P_X], d0 + j * N, N, I);
            else k_zero(dp[P_X] + (size_t)(d0 + j * N) * I, I, N, I);
        }
        if (r->method == SX_INHERIT) k_scale(dp[P_X] + (size_t)d0 * I, I, Nn, I, (real)(1 / sqrt((double)k)));
    }
    if (match) {
        double old_sq, new_sq;
        lh_calib_norms(src, D, Nn, sp, dp[P_X], r->calib, r->calib_seq, &old_sq, &new_sq);
        if (new_sq > 0) k_scale(dp[P_X] + (size_t)R * I, I, Nn, I, (real)sqrt(old_sq / new_sq));
    }
    return 0;
}

const LayerOps longhorn_ops = {
    .name = "longhorn",
    .resolve = lh_resolve,
    .params = lh_params,
    .plan = lh_plan,
    .forward = lh_forward,
    .backward = lh_backward,
    .state_size = lh_state_size,
    .reverse_state = lh_reverse_state,
    .expand = lh_expand,
    .plan_step = lh_plan_step,
    .step = lh_step,
    .prefill = lh_prefill,
    .zoology_state = lh_zoology_state,
    .options = LOPT_D_STATE | LOPT_EXPAND | LOPT_CHUNK | LOPT_D_CONV | LOPT_BIDIR,
};
