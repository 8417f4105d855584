/* longhorn.c — the Longhorn mixer (layers.md §2): a Mamba-1 block whose SSM is one implicit step of
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
#include <string.h>
#include <math.h>
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "layers/layer.h"
#include "layers/selective.h"

enum { P_IN, P_CONV_W, P_CONV_B, P_X, P_DT_W, P_DT_B, P_D, P_OUT, NPARAM };
_Static_assert((int)P_IN == SEL_IN && (int)P_CONV_W == SEL_CONV_W && (int)P_CONV_B == SEL_CONV_B &&
                   (int)P_X == SEL_X && (int)P_DT_W == SEL_DT_W && (int)P_DT_B == SEL_DT_B, "shared input path: parameter order of selective.h");
enum { X_IN, XZ, XC, U, XDBL, BETA, EPS, Y, GATED, SCK,               /* kept for backward */
       D_GATED, D_XZ, D_U, D_XDBL, D_EPS, D_BRAW, SCAN_WORK,            /* backward scratch */
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
    l->buf[XZ] = arena_take(a, M * 2 * d.I);
    l->buf[XC] = arena_take(a, M * d.I);
    l->buf[U] = arena_take(a, M * d.I);
    l->buf[XDBL] = arena_take(a, M * (d.R + 2 * d.N));
    l->buf[BETA] = arena_take(a, M * d.I);
    l->buf[EPS] = arena_take(a, M * d.I);
    l->buf[Y] = arena_take(a, M * d.I);
    l->buf[GATED] = arena_take(a, M * d.I);
    l->buf[SCK] = arena_take(a, (size_t)B * nck * d.I * d.N);
    /* backward scratch (the model passes an arena that is shared by all layers' backward) */
    l->buf[D_GATED] = arena_take(a, M * d.I);
    l->buf[D_XZ] = arena_take(a, M * 2 * d.I);
    l->buf[D_U] = arena_take(a, M * d.I);
    l->buf[D_XDBL] = arena_take(a, M * (d.R + 2 * d.N));
    l->buf[D_EPS] = arena_take(a, M * d.I);
    l->buf[D_BRAW] = arena_take(a, M * d.I);
    l->buf[SCAN_WORK] = arena_take(a, k_longhorn_scan_bwd_work(d.I, d.N, d.chunk, eid_threads()));
    l->B = B, l->T = T;
}

/* β = σ(braw + b), ε = β/(1 + β‖k‖²) for M tokens; braw arrives in beta. */
static void beta_eps(const Dims *d, const real *bias, const real *xdbl, real *beta, real *eps, size_t M) {
    int ld = d->R + 2 * d->N;
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        const real *k = xdbl + m * ld + d->R;
        real K2 = 0;
        for (int n = 0; n < d->N; n++) K2 += k[n] * k[n];
        for (int i = 0; i < d->I; i++) {
            real b = k_sigmoid(beta[m * d->I + i] + bias[i]);
            beta[m * d->I + i] = b;
            eps[m * d->I + i] = b / (1 + b * K2);
        }
    }
}

static void lh_forward(Layer *l, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, ldx = d.R + 2 * d.N;
    real **b = l->buf, **p = l->p;
    b[X_IN] = (real *)x; /* the model keeps the normed input alive until backward */
    eid_gemm(0, 1, M, 2 * d.I, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[XZ], 2 * d.I);
    k_conv1d_fwd(b[XZ], 2 * d.I, p[P_CONV_W], p[P_CONV_B], b[XC], d.I, s->B, s->T, d.I, d.K, s->flags, NULL, NULL);
    k_silu_fwd(b[XC], d.I, b[U], d.I, M, d.I);
    eid_gemm(0, 1, M, ldx, d.I, 1, b[U], d.I, p[P_X], d.I, 0, b[XDBL], ldx);
    eid_gemm(0, 1, M, d.I, d.R, 1, b[XDBL], ldx, p[P_DT_W], d.R, 0, b[BETA], d.I);
    beta_eps(&d, p[P_DT_B], b[XDBL], b[BETA], b[EPS], M);
    k_longhorn_scan_fwd(b[U], b[EPS], b[XDBL] + d.R, b[XDBL] + d.R + d.N, ldx, b[Y], s->B, s->T, d.I, d.N, d.chunk,
                        s->flags, b[SCK], NULL);
    selective_skip_gate(d.I, p[P_D], b[U], b[XZ], b[Y], b[GATED], M);
    eid_gemm(0, 1, M, d.D, d.I, 1, b[GATED], d.I, p[P_OUT], d.I, 0, out, d.D);
}

/* ε = β/(1+βK2): dβ = dε/(1+βK2)², dK2 = −Σ_i dε β²/(1+βK2)², dk += 2k·dK2, dbraw = dβ·β(1−β). */
static void eps_bwd(const Dims *d, const real *xdbl, const real *beta, const real *deps, real *dxdbl, real *dbraw,
                    size_t M) {
    int ld = d->R + 2 * d->N;
#pragma omp parallel for schedule(static)
    for (size_t m = 0; m < M; m++) {
        const real *k = xdbl + m * ld + d->R;
        real *dk = dxdbl + m * ld + d->R;
        real K2 = 0;
        for (int n = 0; n < d->N; n++) K2 += k[n] * k[n];
        real dK2 = 0;
        for (int i = 0; i < d->I; i++) {
            size_t j = m * d->I + i;
            real b = beta[j], den = 1 + b * K2, de = deps[j] / (den * den);
            dK2 -= de * b * b;
            dbraw[j] = de * b * (1 - b);
        }
        for (int n = 0; n < d->N; n++) dk[n] += 2 * k[n] * dK2;
    }
}

static void lh_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, ldx = d.R + 2 * d.N;
    real **b = l->buf, **p = l->p, **g = l->g;
    /* out = W_out·gated */
    eid_gemm(0, 0, M, d.I, d.D, 1, dout, d.D, p[P_OUT], d.I, 0, b[D_GATED], d.I);
    eid_gemm(1, 0, d.D, d.I, M, 1, dout, d.D, b[GATED], d.I, 1, g[P_OUT], d.I);
    selective_gate_bwd(d.I, p[P_D], b[XZ], b[Y], b[D_GATED], b[D_XZ], b[D_U], M);
    k_colsum_add(b[D_GATED], d.I, b[U], d.I, M, d.I, g[P_D]); /* dD = Σ dy_core ⊙ u */
    /* the scan */
    memset(b[D_XDBL], 0, sizeof(real) * (size_t)M * ldx);
    k_longhorn_scan_bwd(b[U], b[EPS], b[XDBL] + d.R, b[XDBL] + d.R + d.N, ldx, b[D_GATED], b[SCK], b[D_U], b[D_EPS],
                        b[D_XDBL] + d.R, b[D_XDBL] + d.R + d.N, s->B, s->T, d.I, d.N, d.chunk, s->flags,
                        b[SCAN_WORK]);
    eps_bwd(&d, b[XDBL], b[BETA], b[D_EPS], b[D_XDBL], b[D_BRAW], M);
    SelectiveBwd sb = {s->B, s->T, d.D, d.I, d.N, d.K, d.R, s->flags, b[X_IN], b[XZ], b[XC], b[U], b[XDBL],
                       b[D_BRAW], b[D_XDBL], b[D_U], b[D_XZ]};
    selective_input_bwd(&sb, p, g, dx);
}

static size_t lh_state_size(const LayerCfg *c, int D) {
    size_t I = (size_t)c->expand * D;
    return I * (c->d_conv - 1) + I * c->d_state; /* conv ring + S (layers.md §2.4) */
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

/* state layout for nseq sequences: conv rings [nseq, I, K−1], then S [nseq, I, N]. */
static void lh_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    int ldx = d.R + 2 * d.N;
    real **b = l->buf, **p = l->p;
    real *ring = state, *S = state + (size_t)nseq * d.I * (d.K - 1);
    real *beta = b[S_EPS], *eps = b[S_EPS] + (size_t)nseq * d.I;
    real *y = b[S_Y], *gated = b[S_Y] + (size_t)nseq * d.I;
    eid_gemm(0, 1, nseq, 2 * d.I, d.D, 1, x, d.D, p[P_IN], d.D, 0, b[S_XZ], 2 * d.I);
    k_conv1d_step(ring, b[S_XZ], 2 * d.I, p[P_CONV_W], p[P_CONV_B], b[S_XC], d.I, nseq, d.I, d.K);
    k_silu_fwd(b[S_XC], d.I, b[S_U], d.I, nseq, d.I);
    eid_gemm(0, 1, nseq, ldx, d.I, 1, b[S_U], d.I, p[P_X], d.I, 0, b[S_XDBL], ldx);
    eid_gemm(0, 1, nseq, d.I, d.R, 1, b[S_XDBL], ldx, p[P_DT_W], d.R, 0, beta, d.I);
    beta_eps(&d, p[P_DT_B], b[S_XDBL], beta, eps, nseq);
    k_longhorn_scan_step(S, b[S_U], eps, b[S_XDBL] + d.R, b[S_XDBL] + d.R + d.N, ldx, y, nseq, d.I, d.N);
    selective_skip_gate(d.I, p[P_D], b[S_U], b[S_XZ], y, gated, nseq);
    eid_gemm(0, 1, nseq, d.D, d.I, 1, gated, d.I, p[P_OUT], d.I, 0, out, d.D);
}

static double lh_zoology_state(const LayerCfg *c, int D, int L) { return 2.0 * D * c->d_state; }

const LayerOps longhorn_ops = {
    .name = "longhorn",
    .resolve = lh_resolve,
    .params = lh_params,
    .plan = lh_plan,
    .forward = lh_forward,
    .backward = lh_backward,
    .state_size = lh_state_size,
    .plan_step = lh_plan_step,
    .step = lh_step,
    .zoology_state = lh_zoology_state,
    .options = LOPT_D_STATE | LOPT_EXPAND | LOPT_CHUNK | LOPT_D_CONV,
};
