/* mlp.c — SwiGLU MLP as a stateless layer (docs/layers.md §0.3):  y = W_down·(silu(W_gate·x) ⊙ (W_up·x)).
 * Shapes: x, y [M, D]; gate, up, h [M, F]. */
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "layers/layer.h"

enum { P_GATE, P_UP, P_DOWN, NPARAM };
enum { X_IN, GATE, UP, H, D_H, D_GATE, D_UP, S_GATE, S_UP, S_H, NBUF };
_Static_assert(NBUF <= EID_MAX_BUFS, "mlp: more buffers than Layer.buf holds");

static int mlp_resolve(LayerCfg *c, int D) {
    if (c->d_ff < 0) return eid_error("mlp: d_ff must be >= 0, got %d", c->d_ff), -1;
    return 0;
}

static int mlp_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    int F = c->d_ff;
    param_spec(&o[P_GATE], "mlp.", "gate_proj.weight", F, D, 0, INIT_UNIFORM, 1 / sqrt((double)D), 1);
    param_spec(&o[P_UP], "mlp.", "up_proj.weight", F, D, 0, INIT_UNIFORM, 1 / sqrt((double)D), 1);
    param_spec(&o[P_DOWN], "mlp.", "down_proj.weight", D, F, 0, INIT_UNIFORM, 1 / sqrt((double)F) / sqrt((double)n_res_layers), 1);
    return NPARAM;
}

/* gate and up are kept for backward; h is recomputed from them (scratch: the same kernel, the same
 * bits). With act16 all three are kept in bf16 (h is read only by the bf16 product dW_down += dyᵀ·h,
 * which rounds it to the same bits anyway; gate and up feed the SwiGLU backward, where their rounding
 * is the only change: measured in docs/performance.md "Memory"). D_H, D_GATE, D_UP are scratch:
 * backward's gradients, and with act16 forward's fp32 gate, up, h. */
static void mlp_plan(Layer *l, Arena *a, int B, int T) {
    size_t MF = (size_t)B * T * l->cfg->d_ff;
    l->buf[GATE] = take_saved16(l, a, MF), l->buf[UP] = take_saved16(l, a, MF);
    l->buf[H] = l->act16 ? take_saved16(l, a, MF) : arena_scratch(a, MF);
    for (int k = D_H; k <= D_UP; k++) l->buf[k] = arena_scratch(a, MF);
    l->B = B, l->T = T;
}

static void mlp_run(Layer *l, const real *x, real *y, int M, real *gate, real *up, real *h) {
    int D = l->D, F = l->cfg->d_ff;
    eid_gemm(0, 1, M, F, D, 1, x, D, l->p[P_GATE], D, 0, gate, F);
    eid_gemm(0, 1, M, F, D, 1, x, D, l->p[P_UP], D, 0, up, F);
    k_swiglu_fwd(gate, up, h, (size_t)M * F);
    eid_gemm(0, 1, M, D, F, 1, h, F, l->p[P_DOWN], F, 0, y, D);
}

static void mlp_forward(Layer *l, const real *x, real *y, const SeqInfo *s) {
    real **b = l->buf;
    size_t MF = (size_t)s->B * s->T * l->cfg->d_ff;
    b[X_IN] = (real *)x;
    if (!l->act16) {
        mlp_run(l, x, y, s->B * s->T, b[GATE], b[UP], b[H]);
        return;
    }
    mlp_run(l, x, y, s->B * s->T, b[D_GATE], b[D_UP], b[D_H]);
    save16(l, b[GATE], b[D_GATE], MF), save16(l, b[UP], b[D_UP], MF), save16(l, b[H], b[D_H], MF);
}

static void mlp_backward(Layer *l, const real *dy, real *dx, const SeqInfo *s) {
    int M = s->B * s->T, D = l->D, F = l->cfg->d_ff;
    real **b = l->buf, **p = l->p, **g = l->g;
    if (!l->act16) k_swiglu_fwd(b[GATE], b[UP], b[H], (size_t)M * F); /* h again, bit for bit */
    eid_gemm(0, 0, M, F, D, 1, dy, D, p[P_DOWN], F, 0, b[D_H], F);
    gemm_saved16(l, 1, 0, D, F, M, 1, dy, D, b[H], F, 1, g[P_DOWN], F);
    if (l->act16) k_swiglu_bwd_b16(b[D_H], (const uint16_t *)b[GATE], (const uint16_t *)b[UP], b[D_GATE], b[D_UP], (size_t)M * F);
    else k_swiglu_bwd(b[D_H], b[GATE], b[UP], b[D_GATE], b[D_UP], (size_t)M * F);
    eid_gemm(1, 0, F, D, M, 1, b[D_GATE], F, b[X_IN], D, 1, g[P_GATE], D);
    eid_gemm(1, 0, F, D, M, 1, b[D_UP], F, b[X_IN], D, 1, g[P_UP], D);
    eid_gemm(0, 0, M, D, F, 1, b[D_GATE], F, p[P_GATE], D, 1, dx, D);
    eid_gemm(0, 0, M, D, F, 1, b[D_UP], F, p[P_UP], D, 1, dx, D);
}

static size_t mlp_state_size(const LayerCfg *c, int D) { return 0; }

static void mlp_plan_step(Layer *l, Arena *a, int nseq) {
    size_t n = (size_t)nseq * l->cfg->d_ff;
    l->buf[S_GATE] = arena_take(a, n), l->buf[S_UP] = arena_take(a, n), l->buf[S_H] = arena_take(a, n);
    l->nseq = nseq;
}

static void mlp_step(Layer *l, real *state, const real *x, real *y, int nseq) {
    mlp_run(l, x, y, nseq, l->buf[S_GATE], l->buf[S_UP], l->buf[S_H]);
}

/* Stateless: a prompt's pass is the forward (PAD rows give finite outputs nobody reads). */
static void mlp_prefill(Layer *l, real *state, const real *x, real *y, const SeqInfo *s) {
    (void)state;
    mlp_forward(l, x, y, s);
}

static double mlp_zoology_state(const LayerCfg *c, int D, int L) { return 0; }

const LayerOps mlp_ops = {
    .name = "swiglu",
    .resolve = mlp_resolve,
    .params = mlp_params,
    .plan = mlp_plan,
    .forward = mlp_forward,
    .backward = mlp_backward,
    .state_size = mlp_state_size,
    .plan_step = mlp_plan_step,
    .step = mlp_step,
    .prefill = mlp_prefill,
    .zoology_state = mlp_zoology_state,
    .options = 0,
};
