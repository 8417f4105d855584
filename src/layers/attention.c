/* attention.c — softmax attention mixers (docs/layers.md §5): "attn" (full causal) and "swa" (sliding
 * window of W keys including the query itself). Llama layout, no biases, RoPE (HF rotate-half) on
 * q and k with positions restarting at every SEG_START, grouped KV heads.
 *
 *   q = x·W_qᵀ, k = x·W_kᵀ, v = x·W_vᵀ        Q [M, H·dh], K, V [M, Hkv·dh]   (M = B·T tokens)
 *   q, k ← RoPE(q, k; pos)                     (stored rotated)
 *   o_i = Σ_j softmax_j(q_i·k_j/√dh) v_j       ATT [M, H·dh], lse [M, H]   (blocked online softmax)
 *   out = ATT·W_oᵀ
 *
 * Decode state (per sequence): a ring of the last `cap` rotated keys and values per kv head plus a
 * token counter (kernels/attention.h). swa: cap = W, exact. attn: cap = max_len (default 2048);
 * past max_len tokens decoding continues as a sliding window of the last max_len tokens (positions
 * keep counting), i.e. it equals the swa forward with W = max_len, not full attention.
 * PAD tokens (docs/layers.md §0.6) are absent: never keys, not counted in RoPE positions or windows,
 * output 0, gradient 0. Prefill fills the ring and counter from one parallel pass (k_attn_prefill),
 * continuing a ring that already holds earlier tokens.
 * Bidirectional (--bidir, docs/layers.md §5.3, §8.2): the prefix-LM mask, no split: a prompt token
 * (no CAUSAL flag) also sees the rest of its prompt run, swa within W tokens either way; CAUSAL tokens
 * stay causal, so decoding after a bidirectional prefill is the causal step over the ring. */
#include <math.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/attention.h"
#include "layers/attn_heads.h"
#include "layers/layer.h"

enum { P_Q, P_K, P_V, P_O, NPARAM };
enum { X_IN, QR, KR, VV, ATT, LSE, POS, LO, HI, RCOS, RSIN,  /* forward (kept for backward) */
       D_ATT, D_Q, D_K, D_V, DVEC,                          /* backward scratch */
       S_Q, S_K, S_V, S_ATT, S_SC, NBUF }; /* one-token step */
_Static_assert(NBUF <= EID_MAX_BUFS, "attention: more buffers than Layer.buf holds");

typedef struct { int D, H, Hkv, dh, W, cap, chunk; double theta; /* 0: no RoPE */ } Dims;

/* after resolve, window > 0 exactly for swa (attn requires window == 0) */
static int cap_of(const LayerCfg *c) { return c->window > 0 ? c->window : c->max_len; }

static Dims dims(const Layer *l) {
    const LayerCfg *c = l->cfg;
    return (Dims){l->D, c->num_heads, c->num_kv_heads, c->head_dim, c->window, cap_of(c), c->chunk,
                  c->no_rope ? 0 : c->rope_theta};
}

static int resolve_common(LayerCfg *c, int D, const char *nm) {
    if (attn_resolve_heads(c, D, nm) != 0) return -1;
    if (!c->chunk) c->chunk = 64;
    if (c->chunk < 1 || c->chunk > 4096) return eid_error("%s: chunk must be in [1, 4096], got %d", nm, c->chunk), -1;
    return 0;
}

static int attn_resolve(LayerCfg *c, int D) {
    if (resolve_common(c, D, "attn") != 0) return -1;
    if (c->window != 0)
        return eid_error("attn: window must be 0 for full attention (use the swa mixer for a window), got %d", c->window), -1;
    if (!c->max_len) c->max_len = 2048;
    if (c->max_len < 1 || c->max_len > (1 << 24))
        return eid_error("attn: max_len (decode KV-cache capacity) must be in [1, 16777216], got %d", c->max_len), -1;
    return 0;
}

/* swa without a window gets SWA_DEFAULT_WINDOW keys (docs/design.md "Options belong to layers") */
#define SWA_DEFAULT_WINDOW 64
static int swa_resolve(LayerCfg *c, int D) {
    if (resolve_common(c, D, "swa") != 0) return -1;
    if (!c->window) c->window = SWA_DEFAULT_WINDOW;
    if (c->window < 1 || c->window > (1 << 24))
        return eid_error("swa: window must be in [1, 16777216] (keys a query sees, itself included), got %d", c->window), -1;
    return 0;
}

/* docs/layers.md §5.1: q, k, v N(0, 0.02); o_proj N(0, 0.02/√(n_res·n_layer)) */
static int attn_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    if (!o) return NPARAM;
    int HD = c->num_heads * c->head_dim, KD = c->num_kv_heads * c->head_dim;
    param_spec(&o[P_Q], "mixer.", "q_proj.weight", HD, D, 0, INIT_NORMAL, 0.02, 1);
    param_spec(&o[P_K], "mixer.", "k_proj.weight", KD, D, 0, INIT_NORMAL, 0.02, 1);
    param_spec(&o[P_V], "mixer.", "v_proj.weight", KD, D, 0, INIT_NORMAL, 0.02, 1);
    param_spec(&o[P_O], "mixer.", "o_proj.weight", D, HD, 0, INIT_NORMAL, 0.02 / sqrt((double)(n_res_layers > 0 ? n_res_layers : 1)), 1);
    return NPARAM;
}

static void attn_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l);
    size_t M = (size_t)B * T, HD = (size_t)d.H * d.dh, KD = (size_t)d.Hkv * d.dh;
    /* q and k stay fp32: backward recomputes the softmax against the forward's lse, so its scores must
     * be the forward's (rounded q, k would leave the rows unnormalised by up to |s|·2⁻⁸) */
    l->buf[QR] = arena_take(a, M * HD);
    l->buf[KR] = arena_take(a, M * KD);
    l->buf[VV] = take_act16(l, a, M * KD);
    l->buf[ATT] = take_act16(l, a, M * HD);
    l->buf[LSE] = arena_take(a, M * d.H);
    l->buf[POS] = (real *)arena_take_bytes(a, M * sizeof(int));
    l->buf[LO] = (real *)arena_take_bytes(a, M * sizeof(int));
    l->buf[HI] = (real *)arena_take_bytes(a, M * sizeof(int));
    l->buf[RCOS] = arena_take(a, (size_t)T * (d.dh / 2));
    l->buf[RSIN] = arena_take(a, (size_t)T * (d.dh / 2));
    l->buf[D_ATT] = arena_scratch(a, M * HD);
    l->buf[D_Q] = arena_scratch(a, M * HD);
    l->buf[D_K] = arena_scratch(a, M * KD);
    l->buf[D_V] = arena_scratch(a, M * KD);
    l->buf[DVEC] = arena_scratch(a, M * d.H);
    l->B = B, l->T = T;
}

/* The prefix-LM extent of each query, or NULL for the causal mask (a causal layer, or rows without
 * flags: every token CAUSAL). */
static const int *attn_hi(const Layer *l, const SeqInfo *s) {
    return l->cfg->bidir && s->flags ? (const int *)l->buf[HI] : NULL;
}

static void attn_forward(Layer *l, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, HD = d.H * d.dh, KD = d.Hkv * d.dh;
    real **b = l->buf, **p = l->p;
    int *pos = (int *)b[POS];
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    eid_gemm(0, 1, M, HD, d.D, 1, x, d.D, p[P_Q], d.D, 0, b[QR], HD);
    eid_gemm(0, 1, M, KD, d.D, 1, x, d.D, p[P_K], d.D, 0, b[KR], KD);
    eid_gemm(0, 1, M, KD, d.D, 1, x, d.D, p[P_V], d.D, 0, b[VV], KD);
    k_token_positions(s->flags, s->B, s->T, NULL, pos);
    k_attn_lo(s->flags, s->B, s->T, d.W, (int *)b[LO]);
    const int *hi = attn_hi(l, s);
    if (hi) k_attn_hi(s->flags, s->B, s->T, d.W, (int *)hi);
    if (d.theta > 0) {
        k_rope_table(s->T, d.dh, d.theta, b[RCOS], b[RSIN]);
        k_rope_apply(b[QR], HD, M, d.H, d.dh, pos, b[RCOS], b[RSIN], 0);
        k_rope_apply(b[KR], KD, M, d.Hkv, d.dh, pos, b[RCOS], b[RSIN], 0);
    }
    k_attn_fwd(b[QR], b[KR], b[VV], b[ATT], b[LSE], s->B, s->T, d.H, d.Hkv, d.dh, d.chunk, (const int *)b[LO], hi, s->flags);
    eid_gemm(0, 1, M, d.D, HD, 1, b[ATT], HD, p[P_O], HD, 0, out, d.D);
}

static void attn_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, HD = d.H * d.dh, KD = d.Hkv * d.dh;
    real **b = l->buf, **p = l->p, **g = l->g;
    const int *pos = (const int *)b[POS];
    /* out = ATT·W_oᵀ */
    eid_gemm(0, 0, M, HD, d.D, 1, dout, d.D, p[P_O], HD, 0, b[D_ATT], HD);
    eid_gemm(1, 0, d.D, HD, M, 1, dout, d.D, b[ATT], HD, 1, g[P_O], HD);
    k_attn_bwd(b[QR], b[KR], b[VV], b[ATT], b[LSE], b[D_ATT], b[D_Q], b[D_K], b[D_V], b[DVEC], s->B, s->T, d.H, d.Hkv,
               d.dh, d.chunk, (const int *)b[LO], attn_hi(l, s), s->flags);
    /* RoPE backward: rotate the gradients by −φ */
    if (d.theta > 0) {
        k_rope_apply(b[D_Q], HD, M, d.H, d.dh, pos, b[RCOS], b[RSIN], 1);
        k_rope_apply(b[D_K], KD, M, d.Hkv, d.dh, pos, b[RCOS], b[RSIN], 1);
    }
    /* the projections */
    eid_gemm(1, 0, HD, d.D, M, 1, b[D_Q], HD, b[X_IN], d.D, 1, g[P_Q], d.D);
    eid_gemm(1, 0, KD, d.D, M, 1, b[D_K], KD, b[X_IN], d.D, 1, g[P_K], d.D);
    eid_gemm(1, 0, KD, d.D, M, 1, b[D_V], KD, b[X_IN], d.D, 1, g[P_V], d.D);
    eid_gemm(0, 0, M, d.D, HD, 1, b[D_Q], HD, p[P_Q], d.D, 1, dx, d.D);
    eid_gemm(0, 0, M, d.D, KD, 1, b[D_K], KD, p[P_K], d.D, 1, dx, d.D);
    eid_gemm(0, 0, M, d.D, KD, 1, b[D_V], KD, p[P_V], d.D, 1, dx, d.D);
}

static size_t attn_state_size(const LayerCfg *c, int D) {
    return k_attn_state_size(c->num_kv_heads, c->head_dim, cap_of(c)); /* K, V rings + counter */
}

static void attn_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l);
    size_t HD = (size_t)d.H * d.dh, KD = (size_t)d.Hkv * d.dh;
    l->buf[S_Q] = arena_take(a, (size_t)nseq * HD);
    l->buf[S_K] = arena_take(a, (size_t)nseq * KD);
    l->buf[S_V] = arena_take(a, (size_t)nseq * KD);
    l->buf[S_ATT] = arena_take(a, (size_t)nseq * HD);
    l->buf[S_SC] = arena_take(a, (size_t)nseq * d.H * d.cap);
    l->nseq = nseq;
}

/* state for nseq sequences: [nseq, state_size], each K ring [Hkv, cap, dh], V ring, counter. */
static void attn_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    int HD = d.H * d.dh, KD = d.Hkv * d.dh;
    real **b = l->buf, **p = l->p;
    eid_gemm(0, 1, nseq, HD, d.D, 1, x, d.D, p[P_Q], d.D, 0, b[S_Q], HD);
    eid_gemm(0, 1, nseq, KD, d.D, 1, x, d.D, p[P_K], d.D, 0, b[S_K], KD);
    eid_gemm(0, 1, nseq, KD, d.D, 1, x, d.D, p[P_V], d.D, 0, b[S_V], KD);
    k_attn_step(state, b[S_Q], b[S_K], b[S_V], b[S_ATT], b[S_SC], nseq, d.H, d.Hkv, d.dh, d.cap, d.theta);
    eid_gemm(0, 1, nseq, d.D, HD, 1, b[S_ATT], HD, p[P_O], HD, 0, out, d.D);
}

/* Prefill (layer.h): the projections of the whole prompt, then one kernel that attends over the
 * ring's keys and the prompt's, and leaves the ring and counter where the step loop would. */
static void attn_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, HD = d.H * d.dh, KD = d.Hkv * d.dh;
    real **b = l->buf, **p = l->p;
    eid_gemm(0, 1, M, HD, d.D, 1, x, d.D, p[P_Q], d.D, 0, b[QR], HD);
    eid_gemm(0, 1, M, KD, d.D, 1, x, d.D, p[P_K], d.D, 0, b[KR], KD);
    eid_gemm(0, 1, M, KD, d.D, 1, x, d.D, p[P_V], d.D, 0, b[VV], KD);
    k_attn_prefill(state, b[QR], b[KR], b[VV], b[ATT], b[LSE], s->B, s->T, d.H, d.Hkv, d.dh, d.cap, d.theta, d.chunk,
                   s->flags, (int *)b[POS], (int *)b[LO], (int *)attn_hi(l, s));
    eid_gemm(0, 1, M, d.D, HD, 1, b[ATT], HD, p[P_O], HD, 0, out, d.D);
}

/* docs/tasks.md §1.4 / docs/layers.md §9: attention 2·D·L, SWA 2·D·W */
static double attn_zoology_state(const LayerCfg *c, int D, int L) { return 2.0 * D * L; }
static double swa_zoology_state(const LayerCfg *c, int D, int L) { return 2.0 * D * c->window; }

const LayerOps attn_ops = {
    .name = "attn",
    .resolve = attn_resolve,
    .params = attn_params,
    .plan = attn_plan,
    .forward = attn_forward,
    .backward = attn_backward,
    .state_size = attn_state_size,
    .plan_step = attn_plan_step,
    .step = attn_step,
    .prefill = attn_prefill,
    .zoology_state = attn_zoology_state,
    .options = LOPT_HEADS | LOPT_KV_HEADS | LOPT_CHUNK | LOPT_ROPE | LOPT_MAX_LEN | LOPT_BIDIR,
};

const LayerOps swa_ops = {
    .name = "swa",
    .resolve = swa_resolve,
    .params = attn_params,
    .plan = attn_plan,
    .forward = attn_forward,
    .backward = attn_backward,
    .state_size = attn_state_size,
    .plan_step = attn_plan_step,
    .step = attn_step,
    .prefill = attn_prefill,
    .zoology_state = swa_zoology_state,
    .options = LOPT_HEADS | LOPT_KV_HEADS | LOPT_CHUNK | LOPT_ROPE | LOPT_WINDOW | LOPT_BIDIR,
};
