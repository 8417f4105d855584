/* gla.c — the GLA mixer (gated linear attention, per-key-channel gate; docs/layers.md §4).
 *
 *   q = W_q h, k = W_k h, v = W_v h, g = W_g h        Q, K [M, Dk]; V, G [M, Dv]   (M = B·T tokens)
 *   with d_conv = K > 0 (docs/layers.md §4.1, optional): q = silu(conv_q(W_q h)), likewise k and v, with the
 *   depthwise causal conv of §0.5 (segment-aware, no bias); the gate projections g, gk are unchanged
 *   h0 = W_gk0 h ; pre = W_gk1 h0 + b                  H0 [M, r]; PRE [M, Dk]
 *   gk = logsigmoid(pre) / τ                            GK [M, Dk]   (≤ 0, per key channel)
 *   per head: S_t = diag(exp gk_t) S_{t−1} + k_t ⊗ v_t ;  o_t = S_tᵀ (q_t · dk^−1/2)      O [M, Dv]
 *   gated = RMSNorm_dv(o; g_norm) ⊙ swish(g)            GATED [M, Dv] (RSTD [M·H]; eps g_norm_eps, 1e-5)
 *   out = W_o · gated
 * Training runs the chunked form with secondary chunking (kernels/cpu/gla_chunk.c); decoding runs
 * the recurrence. */
#include <string.h>
#include <math.h>
#include "core/runtime.h"
#include "kernels/gla.h"
#include "kernels/kernels.h"
#include "layers/bidir.h"
#include "layers/layer.h"
#include "layers/statex_util.h"

/* the three conv weights exist only when d_conv > 0 (params() then returns NPARAM_CONV) */
enum { P_Q, P_K, P_V, P_G, P_GK0, P_GK1, P_GK1B, P_NORM, P_O, NPARAM, P_QC = NPARAM, P_KC, P_VC, NPARAM_CONV };
/* CONV [2, M, C3] (C3 = 2·Dk + Dv, rows [q | k | v]): the conv inputs W_{q,k,v} h, then the conv
 * outputs before silu; D_CONV [M, C3]: their gradient. Both only when d_conv > 0. */
enum { X_IN, Q, K, V, G, H0, PRE, GK, O, RSTD, GATED, SIN, CONV,  /* kept for backward (GK, RSTD, GATED:
                                                                   * scratch, recomputed) */
       D_GATED, D_O, D_Q, D_K, D_V, D_G, D_PRE, D_H0, D_CONV, /* backward scratch */
       RING,                                                      /* prefill: conv rings [B, C3, K−1] */
       STEP, NBUF }; /* one-token step scratch */
_Static_assert(NBUF <= EID_MAX_BUFS, "gla: more buffers than Layer.buf holds");

typedef struct { int D, Dk, Dv, H, dk, dv, r, chunk, K, C3; real tau, scale, eps; } Dims;

static int round_size(double e, int D) { return (int)lround(e * D); }

static Dims dims(const Layer *l) {
    const LayerCfg *c = l->cfg;
    Dims d;
    d.D = l->D, d.Dk = round_size(c->expand_k, l->D), d.Dv = round_size(c->expand_v, l->D), d.H = c->num_heads;
    d.dk = d.Dk / d.H, d.dv = d.Dv / d.H, d.r = c->gate_low_rank_dim, d.chunk = c->chunk;
    d.tau = (real)c->gate_logit_normalizer, d.scale = (real)(1 / sqrt((double)d.dk));
    d.K = c->d_conv, d.C3 = 2 * d.Dk + d.Dv;
    d.eps = (real)(c->g_norm_eps > 0 ? c->g_norm_eps : 1e-5);
    return d;
}

static int gla_resolve(LayerCfg *c, int D) {
    if (c->expand_k == 0) c->expand_k = 0.5;
    if (c->expand_v == 0) c->expand_v = 1;
    if (!c->num_heads) c->num_heads = 4;
    if (!c->gate_low_rank_dim) c->gate_low_rank_dim = 16;
    if (c->gate_logit_normalizer == 0) c->gate_logit_normalizer = 16;
    if (!c->chunk) c->chunk = 64;
    double ek = c->expand_k * D, ev = c->expand_v * D;
    if (!(ek >= 1) || fabs(ek - lround(ek)) > 1e-9)
        return eid_error("gla: expand_k·d_model must be a positive integer, got %g (expand_k %g, d_model %d)", ek,
                         c->expand_k, D), -1;
    if (!(ev >= 1) || fabs(ev - lround(ev)) > 1e-9)
        return eid_error("gla: expand_v·d_model must be a positive integer, got %g (expand_v %g, d_model %d)", ev,
                         c->expand_v, D), -1;
    int Dk = (int)lround(ek), Dv = (int)lround(ev);
    if (c->num_heads < 1) return eid_error("gla: num_heads must be >= 1, got %d", c->num_heads), -1;
    if (Dk % c->num_heads)
        return eid_error("gla: num_heads must divide the key dim expand_k·d_model = %d, got %d", Dk, c->num_heads), -1;
    if (Dv % c->num_heads)
        return eid_error("gla: num_heads must divide the value dim expand_v·d_model = %d, got %d", Dv, c->num_heads), -1;
    if (c->gate_low_rank_dim < 1)
        return eid_error("gla: gate_low_rank_dim must be >= 1, got %d", c->gate_low_rank_dim), -1;
    if (!(c->gate_logit_normalizer > 0))
        return eid_error("gla: gate_logit_normalizer must be > 0, got %g", c->gate_logit_normalizer), -1;
    if (c->chunk < 1) return eid_error("gla: chunk must be >= 1, got %d", c->chunk), -1;
    if (c->bidir && c->num_heads < 2) /* the reverse half is heads [H/2, H) (docs/layers.md §8.2) */
        return eid_error("gla: a bidirectional layer needs num_heads >= 2, got %d", c->num_heads), -1;
    if (!(c->g_norm_eps >= 0 && c->g_norm_eps <= 1))
        return eid_error("gla: g_norm_eps must be in [0, 1] (0 = 1e-5), got %g", c->g_norm_eps), -1;
    if (c->d_conv < 0 || c->d_conv > 16)
        return eid_error("gla: d_conv (short-conv width on q/k/v) must be 0 (off) or in [1, 16], got %d", c->d_conv), -1;
    return 0;
}

/* xavier_uniform with gain 2^−2.5 (docs/layers.md §4.1): bound = gain·sqrt(6/(fan_in + fan_out)) */
static double xavier(int fan_out, int fan_in) { return pow(2.0, -2.5) * sqrt(6.0 / (fan_in + fan_out)); }

static int gla_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    int K = c->d_conv;
    if (!o) return K > 0 ? NPARAM_CONV : NPARAM;
    int Dk = round_size(c->expand_k, D), Dv = round_size(c->expand_v, D), r = c->gate_low_rank_dim;
    int dv = Dv / c->num_heads;
    param_spec(&o[P_Q], "mixer.", "q_proj.weight", Dk, D, 0, INIT_UNIFORM, xavier(Dk, D), 1);
    param_spec(&o[P_K], "mixer.", "k_proj.weight", Dk, D, 0, INIT_UNIFORM, xavier(Dk, D), 1);
    param_spec(&o[P_V], "mixer.", "v_proj.weight", Dv, D, 0, INIT_UNIFORM, xavier(Dv, D), 1);
    param_spec(&o[P_G], "mixer.", "g_proj.weight", Dv, D, 0, INIT_UNIFORM, xavier(Dv, D), 1);
    param_spec(&o[P_GK0], "mixer.", "gk_proj.0.weight", r, D, 0, INIT_UNIFORM, xavier(r, D), 1);
    param_spec(&o[P_GK1], "mixer.", "gk_proj.1.weight", Dk, r, 0, INIT_UNIFORM, xavier(Dk, r), 1);
    param_spec(&o[P_GK1B], "mixer.", "gk_proj.1.bias", Dk, 0, 0, INIT_ZERO, 0, 0);
    param_spec(&o[P_NORM], "mixer.", "g_norm.weight", dv, 0, 0, INIT_ONE, 0, 0);
    param_spec(&o[P_O], "mixer.", "o_proj.weight", D, Dv, 0, INIT_UNIFORM, xavier(D, Dv) / sqrt((double)n_res_layers), 1);
    if (K <= 0) return NPARAM;
    /* short convs: PyTorch's Conv1d default U(±1/sqrt(fan_in)), fan_in = K for a depthwise conv */
    param_spec(&o[P_QC], "mixer.", "q_conv1d.weight", Dk, 1, K, INIT_UNIFORM, 1 / sqrt((double)K), 1);
    param_spec(&o[P_KC], "mixer.", "k_conv1d.weight", Dk, 1, K, INIT_UNIFORM, 1 / sqrt((double)K), 1);
    param_spec(&o[P_VC], "mixer.", "v_conv1d.weight", Dv, 1, K, INIT_UNIFORM, 1 / sqrt((double)K), 1);
    return NPARAM_CONV;
}

static void gla_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l);
    size_t M = (size_t)B * T;
    int nck = EID_CDIV(T, d.chunk);
    l->buf[Q] = take_act16(l, a, M * d.Dk);
    l->buf[K] = take_act16(l, a, M * d.Dk);
    l->buf[V] = take_act16(l, a, M * d.Dv);
    l->buf[G] = take_act16(l, a, M * d.Dv);
    l->buf[H0] = take_act16(l, a, M * d.r);
    l->buf[PRE] = take_act16(l, a, M * d.Dk);
    l->buf[GK] = arena_scratch(a, M * d.Dk); /* logsigmoid(PRE)/τ: backward recomputes it */
    l->buf[O] = take_act16(l, a, M * d.Dv);
    l->buf[RSTD] = arena_scratch(a, M * d.H); /* with GATED: backward's norm_gate rewrites it */
    l->buf[GATED] = arena_scratch(a, M * d.Dv); /* RMSNorm(o)·swish(g): backward recomputes it (and RSTD) */
    l->buf[SIN] = arena_take(a, (size_t)B * nck * d.H * d.dk * d.dv);
    l->buf[CONV] = d.K > 0 ? take_act16(l, a, 2 * M * d.C3) : NULL;
    l->buf[D_GATED] = arena_scratch(a, M * d.Dv);
    l->buf[D_O] = arena_scratch(a, M * d.Dv);
    l->buf[D_Q] = arena_scratch(a, M * d.Dk);
    l->buf[D_K] = arena_scratch(a, M * d.Dk);
    l->buf[D_V] = arena_scratch(a, M * d.Dv);
    l->buf[D_G] = arena_scratch(a, M * d.Dv);
    l->buf[D_PRE] = arena_scratch(a, M * d.Dk);
    l->buf[D_H0] = arena_scratch(a, M * d.r);
    l->buf[D_CONV] = d.K > 0 ? arena_scratch(a, M * d.C3) : NULL;
    l->buf[RING] = d.K > 1 ? arena_scratch(a, (size_t)B * d.C3 * (d.K - 1)) : NULL;
    l->B = B, l->T = T;
}

/* Projections and gate for M tokens: q, k (row stride ldk), v (row stride ldv), g, h0, pre, gk. */
static void project(const Dims *d, real *const *p, const real *x, int M, real *q, real *k, int ldk, real *v, int ldv,
                    real *g, real *h0, real *pre, real *gk) {
    eid_gemm(0, 1, M, d->Dk, d->D, 1, x, d->D, p[P_Q], d->D, 0, q, ldk);
    eid_gemm(0, 1, M, d->Dk, d->D, 1, x, d->D, p[P_K], d->D, 0, k, ldk);
    eid_gemm(0, 1, M, d->Dv, d->D, 1, x, d->D, p[P_V], d->D, 0, v, ldv);
    eid_gemm(0, 1, M, d->Dv, d->D, 1, x, d->D, p[P_G], d->D, 0, g, d->Dv);
    eid_gemm(0, 1, M, d->r, d->D, 1, x, d->D, p[P_GK0], d->D, 0, h0, d->r);
    eid_gemm(0, 1, M, d->Dk, d->r, 1, h0, d->r, p[P_GK1], d->r, 0, pre, d->Dk);
    k_gla_gate_fwd(pre, p[P_GK1B], gk, M, d->Dk, 1 / d->tau);
}

/* Column offsets of q, k, v in a [·, C3] row, and their widths. */
static void qkv_cols(const Dims *d, int off[3], int n[3]) {
    off[0] = 0, off[1] = d->Dk, off[2] = 2 * d->Dk;
    n[0] = d->Dk, n[1] = d->Dk, n[2] = d->Dv;
}

/* Short convs over the whole batch: xc = conv(xp) per q/k/v block (no bias, segment-aware), then
 * q, k, v = silu(xc).  xp, xc [M, C3]; q, k [M, Dk]; v [M, Dv]. */
static void short_conv_fwd(const Dims *d, real *const *p, const real *xp, real *xc, real *q, real *k, real *v,
                           const SeqInfo *s, real *rings) {
    int off[3], n[3], M = s->B * s->T;
    real *out[3] = {q, k, v};
    qkv_cols(d, off, n);
    for (int i = 0; i < 3; i++) {
        real *ring = rings ? rings + (size_t)s->B * off[i] * (d->K - 1) : NULL; /* [B, n_i, K−1] */
        k_conv1d_fwd(xp + off[i], d->C3, p[P_QC + i], NULL, xc + off[i], d->C3, s->B, s->T, n[i], d->K, s->flags, ring,
                     ring);
        k_silu_fwd(xc + off[i], d->C3, out[i], n[i], M, n[i]);
    }
}

/* gated = RMSNorm(o per head; w) ⊙ swish(g) */
static void norm_gate(const Dims *d, const real *w, const real *o, const real *g, real *rstd, real *gated, int M) {
    k_rmsnorm_fwd(o, w, gated, rstd, M * d->H, d->dv, d->eps);
    k_mul_silu_fwd(gated, d->Dv, g, d->Dv, gated, d->Dv, M, d->Dv);
}

static void gla_forward(Layer *l, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T;
    real **b = l->buf, **p = l->p;
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    if (d.K > 0) {
        real *xp = b[CONV], *xc = b[CONV] + (size_t)M * d.C3;
        project(&d, p, x, M, xp, xp + d.Dk, d.C3, xp + 2 * d.Dk, d.C3, b[G], b[H0], b[PRE], b[GK]);
        short_conv_fwd(&d, p, xp, xc, b[Q], b[K], b[V], s, NULL);
    } else {
        project(&d, p, x, M, b[Q], b[K], d.Dk, b[V], d.Dv, b[G], b[H0], b[PRE], b[GK]);
    }
    k_gla_chunk_fwd(b[Q], b[K], b[V], b[GK], b[O], s->B, s->T, d.H, d.dk, d.dv, d.scale, d.chunk, s->flags, bidir_rev_from(l->cfg, d.H), NULL,
                    NULL, 0, b[SIN]);
    norm_gate(&d, p[P_NORM], b[O], b[G], b[RSTD], b[GATED], M);
    eid_gemm(0, 1, M, d.D, d.Dv, 1, b[GATED], d.Dv, p[P_O], d.Dv, 0, out, d.D);
}

/* Adjoint of short_conv_fwd: dq, dk, dv (gradients of silu's outputs) become those of xc in place,
 * then dxp = conv adjoint (overwritten), dw += into the conv weights' gradients. */
static void short_conv_bwd(const Dims *d, real *const *p, real *const *g, const real *xp, const real *xc, real *dq,
                           real *dk, real *dv, real *dxp, const SeqInfo *s) {
    int off[3], n[3], M = s->B * s->T;
    real *dy[3] = {dq, dk, dv};
    qkv_cols(d, off, n);
    k_zero(dxp, d->C3, M, d->C3);
    for (int i = 0; i < 3; i++) {
        real *dyi = dy[i];
        int C = n[i];
        k_silu_bwd(xc + off[i], d->C3, dyi, C, M, C);
        k_conv1d_bwd(dyi, C, xp + off[i], d->C3, p[P_QC + i], dxp + off[i], d->C3, g[P_QC + i], NULL, s->B, s->T, C,
                     d->K, s->flags, NULL);
    }
}

static void gla_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T;
    real **b = l->buf, **p = l->p, **g = l->g;
    const real *x = b[X_IN];
    k_gla_gate_from_pre(b[PRE], b[GK], M, d.Dk, 1 / d.tau); /* gk again, bit for bit (the kept PRE) */
    norm_gate(&d, p[P_NORM], b[O], b[G], b[RSTD], b[GATED], M);  /* and the gated output (RSTD rewritten) */
    /* out = W_o·gated */
    eid_gemm(0, 0, M, d.Dv, d.D, 1, dout, d.D, p[P_O], d.Dv, 0, b[D_GATED], d.Dv);
    eid_gemm(1, 0, d.D, d.Dv, M, 1, dout, d.D, b[GATED], d.Dv, 1, g[P_O], d.Dv);
    /* gated = y ⊙ swish(g), y = w ⊙ o·rstd: dg, and dy into D_GATED */
    const real *w = p[P_NORM];
    k_gla_norm_gate_bwd(b[D_GATED], b[G], b[O], w, b[RSTD], b[D_G], M, d.H, d.dv);
    k_zero(b[D_O], d.Dv, M, d.Dv);
    k_rmsnorm_bwd(b[D_GATED], b[O], w, b[RSTD], b[D_O], g[P_NORM], M * d.H, d.dv);
    /* the recurrence */
    k_zero(b[D_Q], d.Dk, M, d.Dk);
    k_zero(b[D_K], d.Dk, M, d.Dk);
    k_zero(b[D_V], d.Dv, M, d.Dv);
    k_gla_chunk_bwd(b[Q], b[K], b[V], b[GK], b[D_O], b[SIN], b[D_Q], b[D_K], b[D_V], b[D_PRE], s->B, s->T, d.H, d.dk,
                    d.dv, d.scale, d.chunk, s->flags, bidir_rev_from(l->cfg, d.H));
    /* gk = logsigmoid(pre)/τ */
    k_gla_gate_bwd(b[D_PRE], b[PRE], M, d.Dk, 1 / d.tau);
    /* pre = W_gk1·h0 + b ; h0 = W_gk0·x */
    eid_gemm(1, 0, d.Dk, d.r, M, 1, b[D_PRE], d.Dk, b[H0], d.r, 1, g[P_GK1], d.r);
    k_colsum_add(b[D_PRE], d.Dk, NULL, 0, M, d.Dk, g[P_GK1B]);
    eid_gemm(0, 0, M, d.r, d.Dk, 1, b[D_PRE], d.Dk, p[P_GK1], d.r, 0, b[D_H0], d.r);
    eid_gemm(1, 0, d.r, d.D, M, 1, b[D_H0], d.r, x, d.D, 1, g[P_GK0], d.D);
    eid_gemm(0, 0, M, d.D, d.r, 1, b[D_H0], d.r, p[P_GK0], d.D, 1, dx, d.D);
    /* q, k, v, g projections; with short convs the q/k/v gradients are those of the conv inputs */
    const int pi[4] = {P_Q, P_K, P_V, P_G}, n[4] = {d.Dk, d.Dk, d.Dv, d.Dv};
    const real *dp[4] = {b[D_Q], b[D_K], b[D_V], b[D_G]};
    int ld[4] = {d.Dk, d.Dk, d.Dv, d.Dv};
    if (d.K > 0) {
        short_conv_bwd(&d, p, g, b[CONV], b[CONV] + (size_t)M * d.C3, b[D_Q], b[D_K], b[D_V], b[D_CONV], s);
        for (int t = 0; t < 3; t++) dp[t] = b[D_CONV] + (size_t)t * d.Dk, ld[t] = d.C3; /* [q | k | v] */
    }
    for (int t = 0; t < 4; t++) {
        eid_gemm(1, 0, n[t], d.D, M, 1, dp[t], ld[t], x, d.D, 1, g[pi[t]], d.D);
        eid_gemm(0, 0, M, d.D, n[t], 1, dp[t], ld[t], p[pi[t]], d.D, 1, dx, d.D);
    }
}

/* S [H, dk, dv], plus with short convs the last K−1 conv inputs of q, k, v (docs/layers.md §4.4) */
static size_t gla_state_size(const LayerCfg *c, int D) {
    int Dk = round_size(c->expand_k, D), Dv = round_size(c->expand_v, D);
    size_t rings = c->d_conv > 0 ? (size_t)(2 * Dk + Dv) * (c->d_conv - 1) : 0;
    return (size_t)Dk * (Dv / c->num_heads) + rings;
}

static size_t gla_reverse_state(const LayerCfg *c, int D) {
    int Dk = round_size(c->expand_k, D), Dv = round_size(c->expand_v, D), H = c->num_heads;
    return (size_t)(H - bidir_rev_from(c, H)) * (Dk / H) * (Dv / H); /* the reverse heads' S */
}

/* step scratch per sequence: q, k, pre, gk [Dk]; v, g, o, gated [Dv]; h0 [r]; rstd [H];
 * with short convs also the conv inputs and outputs [2·C3] */
static void gla_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l);
    size_t conv = d.K > 0 ? 2 * (size_t)d.C3 : 0;
    l->buf[STEP] = arena_take(a, (size_t)nseq * (4 * d.Dk + 4 * d.Dv + d.r + d.H + conv));
    l->nseq = nseq;
}

/* One token through the short convs: xp [nseq, C3] → rings advanced, q, k, v = silu(conv). */
static void short_conv_step(const Dims *d, real *const *p, real *rings, size_t ldr, const real *xp, real *xc, real *q,
                            real *k, real *v, int nseq) {
    int off[3], n[3];
    real *out[3] = {q, k, v};
    qkv_cols(d, off, n);
    for (int i = 0; i < 3; i++) {
        k_conv1d_step(rings, ldr, xp + off[i], d->C3, p[P_QC + i], NULL, xc + off[i], d->C3, nseq, n[i], d->K);
        k_silu_fwd(xc + off[i], d->C3, out[i], n[i], nseq, n[i]);
        rings += (size_t)n[i] * (d->K - 1);
    }
}

/* state [nseq, state_size]: per sequence S [H, dk, dv], then with short convs the rings of
 * q [Dk, K−1], k [Dk, K−1], v [Dv, K−1] (the row prefill fills). */
static void gla_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    real **p = l->p, *w = l->buf[STEP];
    size_t n = nseq, ss = gla_state_size(l->cfg, l->D);
    real *q = w, *k = q + n * d.Dk, *pre = k + n * d.Dk, *gk = pre + n * d.Dk;
    real *v = gk + n * d.Dk, *g = v + n * d.Dv, *o = g + n * d.Dv, *gated = o + n * d.Dv;
    real *h0 = gated + n * d.Dv, *rstd = h0 + n * d.r;
    if (d.K > 0) {
        real *xp = rstd + n * d.H, *xc = xp + n * d.C3;
        project(&d, p, x, nseq, xp, xp + d.Dk, d.C3, xp + 2 * d.Dk, d.C3, g, h0, pre, gk);
        short_conv_step(&d, p, state + (size_t)d.H * d.dk * d.dv, ss, xp, xc, q, k, v, nseq);
    } else {
        project(&d, p, x, nseq, q, k, d.Dk, v, d.Dv, g, h0, pre, gk);
    }
    int rf = bidir_rev_from(l->cfg, d.H);
    bidir_step_clear(state, ss, nseq, (size_t)rf * d.dk * d.dv, (size_t)(d.H - rf) * d.dk * d.dv);
    k_gla_step(state, ss, q, k, v, gk, o, nseq, d.H, d.dk, d.dv, d.scale);
    norm_gate(&d, p[P_NORM], o, g, rstd, gated, nseq);
    eid_gemm(0, 1, nseq, d.D, d.Dv, 1, gated, d.Dv, p[P_O], d.Dv, 0, out, d.D);
}

/* The forward over a prompt from and to the decode state [B, ss] (per row: S [H, dk, dv], then with
 * short convs the rings of q [Dk, K−1], k [Dk, K−1], v [Dv, K−1]; docs/layers.md §4.4): the convs continue
 * from the rings (copied to [B, C, K−1] blocks for the conv kernel and back), the recurrence from
 * S0 = S to Sfinal = S. */
static void gla_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T;
    int ss = (int)gla_state_size(l->cfg, l->D), nS = d.H * d.dk * d.dv;
    real **b = l->buf, **p = l->p;
    if (d.K > 0) {
        real *xp = b[CONV], *xc = b[CONV] + (size_t)M * d.C3;
        int off[3], n[3];
        qkv_cols(&d, off, n);
        project(&d, p, x, M, xp, xp + d.Dk, d.C3, xp + 2 * d.Dk, d.C3, b[G], b[H0], b[PRE], b[GK]);
        int R = d.K - 1;
        for (int i = 0; i < 3 && R > 0; i++)
            k_copy(state + nS + off[i] * R, ss, b[RING] + (size_t)s->B * off[i] * R, n[i] * R, s->B, n[i] * R);
        short_conv_fwd(&d, p, xp, xc, b[Q], b[K], b[V], s, R > 0 ? b[RING] : NULL);
        for (int i = 0; i < 3 && R > 0; i++)
            k_copy(b[RING] + (size_t)s->B * off[i] * R, n[i] * R, state + nS + off[i] * R, ss, s->B, n[i] * R);
    } else {
        project(&d, p, x, M, b[Q], b[K], d.Dk, b[V], d.Dv, b[G], b[H0], b[PRE], b[GK]);
    }
    k_gla_chunk_fwd(b[Q], b[K], b[V], b[GK], b[O], s->B, s->T, d.H, d.dk, d.dv, d.scale, d.chunk, s->flags, bidir_rev_from(l->cfg, d.H), state,
                    state, (size_t)ss, b[SIN]);
    norm_gate(&d, p[P_NORM], b[O], b[G], b[RSTD], b[GATED], M);
    eid_gemm(0, 1, M, d.D, d.Dv, 1, b[GATED], d.Dv, p[P_O], d.Dv, 0, out, d.D);
}

/* docs/tasks.md §1.4: key_dim · head_v_dim (+ short-conv state, counted as §1.4 counts a short conv of
 * kernel k: channels · k, here over the q, k, v channels 2·Dk + Dv) */
static double gla_zoology_state(const LayerCfg *c, int D, int L) {
    int Dk = round_size(c->expand_k, D), Dv = round_size(c->expand_v, D);
    double conv = c->d_conv > 0 ? (double)(2 * Dk + Dv) * c->d_conv : 0;
    return (double)Dk * (Dv / c->num_heads) + conv;
}


extern const LayerOps gla_ops;

/* StateX (docs/statex.md §2): merge the H heads into H' (every projection keeps its shape; the state
 * grows H/H' times). reinit (§2.1): every mixer weight drawn fresh; inherit (§2.2): the projections
 * read as H' heads, g_norm tiled H/H' times. Both reset the block's pre-mixer norm unless
 * keep_resets. */
static int gla_expand(const LayerCfg *src, LayerCfg *dst, int D, int n_res, const StatexReq *r, real *const *sp,
                      real *const *dp, Rng *rng, unsigned *out) {
    int H = src->num_heads, Hn = r->merge_heads;
    if (r->method == SX_ZERO) return eid_error("gla: --method zero is not a GLA method (reinit or inherit)"), -1;
    if (Hn < 1) return eid_error("gla: --merge-heads H' is required (a divisor of num_heads %d), got %d", H, Hn), -1;
    if (Hn > H || H % Hn)
        return eid_error("gla: --merge-heads %d must divide num_heads %d (H' <= H)", Hn, H), -1;
    if (src->bidir) return eid_error("gla: a bidirectional layer has no StateX method (its heads are split by direction)"), -1;
    dst->num_heads = Hn;
    *out = SX_OUT_USES_MERGE_HEADS | (r->keep_resets ? 0 : SX_OUT_RESET_PRENORM);
    if (!dp) return 0;
    ParamSpec ss[NPARAM_CONV], ds[NPARAM_CONV];
    int n = gla_params(src, D, n_res, ss);
    gla_params(dst, D, n_res, ds);
    for (int i = 0; i < n; i++) {
        if (r->method == SX_REINIT) sx_fresh(&gla_ops, dst, D, &ds[i], i, dp[i], rng);
        else if (i != P_NORM) sx_same(&ds[i], sp[i], dp[i]);
        else /* g_norm [dv'] = the old [dv] repeated H/H' times */
            for (int j = 0; j < H / Hn; j++) k_copy(sp[i], 0, dp[i] + (size_t)j * ss[i].shape[0], 0, 1, ss[i].shape[0]);
    }
    return 0;
}

const LayerOps gla_ops = {
    .name = "gla",
    .resolve = gla_resolve,
    .params = gla_params,
    .plan = gla_plan,
    .forward = gla_forward,
    .backward = gla_backward,
    .state_size = gla_state_size,
    .reverse_state = gla_reverse_state,
    .expand = gla_expand,
    .plan_step = gla_plan_step,
    .step = gla_step,
    .prefill = gla_prefill,
    .zoology_state = gla_zoology_state,
    .options = LOPT_HEADS | LOPT_CHUNK | LOPT_D_CONV | LOPT_BIDIR,
};
