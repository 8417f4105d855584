/* gated_ssm.c — Birdie's gated SSM (docs/layers.md §13): a diagonal recurrence whose state is its
 * channel width R.
 *
 *   [pi | pz | po | pf] = [W_i·h | W_z·h | W_o·h | W_f·h]   proj [M, 4R]   (M = B·T tokens)
 *   f = σ(pf), i = σ(pi)                                   a = f, b = i ⊙ pz   [M, R]
 *   s_t = f_t ⊙ s_{t−1} + i_t ⊙ z_t                        hs [M, R]
 *   out = W_out·(gelu(po) ⊙ s)                              gated [M, R] → out [M, D]
 */
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/linrec.h"
#include "layers/bidir.h"
#include "layers/layer.h"

enum { P_I, P_Z, P_O, P_F, P_OUT, NPARAM };
enum { X_IN, PROJ, A, BT, HS, GATED,    /* kept for backward (A, BT, GATED: scratch, recomputed) */
       D_GATED, D_PROJ, D_A, D_B,       /* backward scratch */
       S_PROJ, S_A, S_B, S_H, NBUF };   /* one-token step */
_Static_assert(NBUF <= EID_MAX_BUFS, "gated-ssm: more buffers than Layer.buf holds");

static int gs_width(const LayerCfg *c, int D) { return c->expand * D; }

static int gs_resolve(LayerCfg *c, int D) {
    if (!c->expand) c->expand = 1;
    if (c->expand < 1 || c->expand > 16) return eid_error("gated-ssm: expand must be in [1, 16], got %d", c->expand), -1;
    return 0;
}

static int gs_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    int R = gs_width(c, D);
    double bd = 1 / sqrt((double)D);
    param_spec(&o[P_I], "mixer.", "i_proj.weight", R, D, 0, INIT_UNIFORM, bd, 1);
    param_spec(&o[P_Z], "mixer.", "z_proj.weight", R, D, 0, INIT_UNIFORM, bd, 1);
    param_spec(&o[P_O], "mixer.", "o_proj.weight", R, D, 0, INIT_UNIFORM, bd, 1);
    param_spec(&o[P_F], "mixer.", "f_proj.weight", R, D, 0, INIT_UNIFORM, bd, 0); /* no decay on W_f (§13.3) */
    param_spec(&o[P_OUT], "mixer.", "out_proj.weight", D, R, 0, INIT_UNIFORM, 1 / sqrt((double)R) / sqrt((double)n_res_layers), 1);
    return NPARAM;
}

static void gs_plan(Layer *l, Arena *a, int B, int T) {
    size_t MR = (size_t)B * T * gs_width(l->cfg, l->D);
    l->buf[PROJ] = take_act16(l, a, 4 * MR);
    l->buf[A] = arena_scratch(a, MR); /* the gates: backward recomputes them from PROJ */
    l->buf[BT] = arena_scratch(a, MR); /* the recurrence input (backward's recompute rewrites it, unread) */
    l->buf[HS] = take_act16(l, a, MR);
    l->buf[GATED] = arena_scratch(a, MR); /* gelu(o)·s: backward recomputes it */
    l->buf[D_GATED] = arena_scratch(a, MR);
    l->buf[D_PROJ] = arena_scratch(a, 4 * MR);
    l->buf[D_A] = arena_scratch(a, MR);
    l->buf[D_B] = arena_scratch(a, MR);
    l->B = B, l->T = T;
}

/* proj [M, 4R] = the four projections of x [M, D]; then a, b of the recurrence. */
static void gs_in(Layer *l, const real *x, real *proj, real *a, real *b, int M) {
    int D = l->D, R = gs_width(l->cfg, D);
    for (int k = 0; k < 4; k++) eid_gemm(0, 1, M, R, D, 1, x, D, l->p[P_I + k], D, 0, proj + (size_t)k * R, 4 * R);
    k_gssm_gate_fwd(proj, 4 * R, a, b, M, R);
}

/* gated = gelu(po) ⊙ s ; out = W_out·gated */
static void gs_out(Layer *l, const real *proj, const real *s, real *gated, real *out, int M) {
    int D = l->D, R = gs_width(l->cfg, D);
    k_mul_gelu_fwd(proj + 2 * R, 4 * R, s, R, gated, R, M, R, 0);
    eid_gemm(0, 1, M, D, R, 1, gated, R, l->p[P_OUT], R, 0, out, D);
}

/* The forward pass; with `state` [B, R] (prefill) the recurrence continues from it and leaves in it
 * the state after the last token. */
static void gs_run(Layer *l, const real *x, real *out, const SeqInfo *s, real *state) {
    int M = s->B * s->T, R = gs_width(l->cfg, l->D);
    real **b = l->buf;
    b[X_IN] = (real *)x;
    gs_in(l, x, b[PROJ], b[A], b[BT], M);
    k_linrec_fwd(b[A], b[BT], b[HS], s->B, s->T, R, s->flags, bidir_rev_from(l->cfg, R), state, state, R);
    gs_out(l, b[PROJ], b[HS], b[GATED], out, M);
}

static void gs_forward(Layer *l, const real *x, real *out, const SeqInfo *s) { gs_run(l, x, out, s, NULL); }
static void gs_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) { gs_run(l, x, out, s, state); }

static void gs_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    int M = s->B * s->T, D = l->D, R = gs_width(l->cfg, D);
    real **b = l->buf, **p = l->p, **g = l->g;
    k_gssm_gate_fwd(b[PROJ], 4 * R, b[A], b[BT], M, R); /* a (and b) again, bit for bit (the kept PROJ) */
    k_mul_gelu_fwd(b[PROJ] + 2 * R, 4 * R, b[HS], R, b[GATED], R, M, R, 0); /* and the gated output, as gs_out */
    eid_gemm(0, 0, M, R, D, 1, dout, D, p[P_OUT], R, 0, b[D_GATED], R);
    eid_gemm(1, 0, D, R, M, 1, dout, D, b[GATED], R, 1, g[P_OUT], R);
    /* D_GATED becomes ∂L/∂s; the o columns of D_PROJ get ∂L/∂po */
    k_mul_gelu_bwd(b[D_GATED], R, b[HS], R, b[PROJ] + 2 * R, 4 * R, b[D_PROJ] + 2 * R, 4 * R, M, R, 0);
    k_linrec_bwd(b[A], b[HS], b[D_GATED], b[D_A], b[D_B], s->B, s->T, R, s->flags, bidir_rev_from(l->cfg, R), NULL, 0);
    k_gssm_gate_bwd(b[PROJ], 4 * R, b[D_A], b[D_B], b[D_PROJ], 4 * R, M, R);
    for (int k = 0; k < 4; k++) {
        const real *dk = b[D_PROJ] + (size_t)k * R;
        eid_gemm(1, 0, R, D, M, 1, dk, 4 * R, b[X_IN], D, 1, g[P_I + k], D);
        eid_gemm(0, 0, M, D, R, 1, dk, 4 * R, p[P_I + k], D, 1, dx, D);
    }
}

static size_t gs_state_size(const LayerCfg *c, int D) { return (size_t)gs_width(c, D); }

static size_t gs_reverse_state(const LayerCfg *c, int D) {
    int R = gs_width(c, D);
    return (size_t)(R - bidir_rev_from(c, R)); /* the reverse channels of s */
}

static void gs_plan_step(Layer *l, Arena *a, int nseq) {
    size_t nR = (size_t)nseq * gs_width(l->cfg, l->D);
    l->buf[S_PROJ] = arena_take(a, 4 * nR);
    l->buf[S_A] = arena_take(a, nR);
    l->buf[S_B] = arena_take(a, nR);
    l->buf[S_H] = arena_take(a, 2 * nR); /* s, then gated */
    l->nseq = nseq;
}

/* state [nseq, R]: s of each sequence. */
static void gs_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    int R = gs_width(l->cfg, l->D);
    real **b = l->buf;
    gs_in(l, x, b[S_PROJ], b[S_A], b[S_B], nseq);
    int rf = bidir_rev_from(l->cfg, R); /* decoding: the reverse channels are stateless (§8.4) */
    bidir_step_clear(state, R, nseq, (size_t)rf, (size_t)(R - rf));
    k_linrec_step(state, R, b[S_A], b[S_B], b[S_H], nseq, R);
    gs_out(l, b[S_PROJ], b[S_H], b[S_H] + (size_t)nseq * R, out, nseq);
}

static double gs_zoology_state(const LayerCfg *c, int D, int L) { return (double)gs_width(c, D); }

const LayerOps gated_ssm_ops = {
    .name = "gated-ssm",
    .resolve = gs_resolve,
    .params = gs_params,
    .plan = gs_plan,
    .forward = gs_forward,
    .backward = gs_backward,
    .state_size = gs_state_size,
    .reverse_state = gs_reverse_state,
    .plan_step = gs_plan_step,
    .step = gs_step,
    .prefill = gs_prefill,
    .zoology_state = gs_zoology_state,
    .options = LOPT_EXPAND | LOPT_BIDIR,
};
