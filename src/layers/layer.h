/* layer.h — the one interface every sequence layer implements (mixers and the SwiGLU MLP).
 *
 * A layer is a table of functions over a Layer instance. The model knows nothing else about it:
 * a new mixer is one file plus one line in layers/registry.c.
 *
 *   params      the parameter table (names relative to the block, shapes, init, weight decay)
 *   plan        take activation slices from the arena for a (B, T) sequence pass: arena_take for what
 *               forward keeps for backward, arena_scratch for what lives only inside one call (shared
 *               by all sublayers: core/arena.h)
 *   forward     y[B,T,D] = layer(x[B,T,D]); saves what backward needs (chunk-boundary states)
 *   backward    grads += dL/dparams, dx += dL/dx  (accumulating: residual branches compose)
 *   state_size  floats of recurrent state per sequence (constant in T, except full attention)
 *   plan_step   take slices for one-token decoding of nseq sequences
 *   step        y[nseq,D] = layer(x[nseq,D]) advancing state[nseq, state_size]; no allocation
 *   prefill     a parallel pass over a prompt (after plan(B, T)): y as forward, and state[B, state_size]
 *               goes from the state it holds on entry (zeros = fresh) to exactly the state `step`
 *               would have reached token by token (PAD tokens change nothing). NULL: the model steps.
 */
#ifndef EIDETIC_LAYER_H
#define EIDETIC_LAYER_H
#include "core/arena.h"
#include "core/common.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "kernels/kernels.h"
#include "kernels/seq.h"
#include "layers/layer_cfg.h"

typedef enum { INIT_ZERO, INIT_ONE, INIT_UNIFORM, INIT_NORMAL, INIT_CUSTOM } InitKind;

#define EID_MAX_DIMS 4
#define EID_MAX_PARAMS 32
#define EID_MAX_BUFS 32
#define EID_MAX_SAVED16 16

/* An activation kept in bf16 between a forward and its backward (take_act16 below): the fp32 slice the
 * layer reads and writes (scratch), its kept bf16 copy, their length. */
typedef struct {
    real *work;
    uint16_t *kept;
    size_t n;
} Saved16;

typedef struct {
    char name[64]; /* leaf name under the layer, e.g. "mixer.in_proj.weight" */
    int ndim, shape[EID_MAX_DIMS];
    InitKind init;
    double a;      /* uniform bound or normal std */
    int decay;     /* 1 = AdamW weight decay applies */
} ParamSpec;

/* One parameter-table entry: `leaf` under `prefix` ("mixer." or "mlp."), shape d0 × d1 × d2 where
 * trailing zeros mean "no such dimension". */
static inline void param_spec(ParamSpec *p, const char *prefix, const char *leaf, int d0, int d1, int d2,
                              InitKind init, double a, int decay) {
    snprintf(p->name, sizeof p->name, "%s%s", prefix, leaf);
    p->shape[0] = d0, p->shape[1] = d1, p->shape[2] = d2, p->shape[3] = 0;
    p->ndim = d2 ? 3 : d1 ? 2 : 1;
    p->init = init, p->a = a, p->decay = decay;
}

typedef struct Layer Layer;

/* The model-level options (train flags) a layer reads, declared in LayerOps.options: train_cfg
 * routes each flag only to the layers that declare it, and tools ask the same bits, so no code
 * outside src/layers/ routes by mixer name. A flag left at 0 keeps the layer's default, filled in
 * by its resolve(). */
enum {
    LOPT_D_STATE = 1 << 0,  /* --d-state: recurrent state size N per channel / head */
    LOPT_EXPAND = 1 << 1,   /* --expand: inner width factor E */
    LOPT_HEADS = 1 << 2,    /* --num-heads */
    LOPT_KV_HEADS = 1 << 3, /* --num-kv-heads (grouped-query attention) */
    LOPT_HEADDIM = 1 << 4,  /* --headdim (Mamba-2 head dimension P) */
    LOPT_WINDOW = 1 << 5,   /* --window: sliding-window length W */
    LOPT_CHUNK = 1 << 6,    /* --chunk: scan / chunked-form / attention block length */
    LOPT_D_CONV = 1 << 7,   /* --d-conv: short causal conv width */
    LOPT_ROPE = 1 << 8,     /* --no-rope: the layer applies RoPE and can go without */
    LOPT_MAX_LEN = 1 << 9,
    LOPT_BIDIR = 1 << 10,   /* --bidir: has a bidirectional form (layers/bidir.h, docs/layers.md §8) */  /* decode context capacity (full attention's KV cache, max_len) */
    LOPT_BMOJO = 1 << 11,   /* --bmojo-ssm, --ssm-heads, --qk-norm, --untied-fading (B'MOJO layers, docs/bmojo.md) */
    LOPT_STORE = 1 << 12,   /* --bmojo-score, --mem-size, --mem-topk (the bmojo layer's eidetic store) */
};

/* StateX post-training state expansion (docs/statex.md): what the surgery asks of one layer. The
 * surgery (model/statex.c) picks layers and copies everything outside their mixers; each mixer's
 * expand() alone knows its tensor layout. */
typedef enum { SX_REINIT, SX_INHERIT, SX_ZERO } StatexMethod;
typedef struct {
    StatexMethod method;
    int merge_heads;  /* GLA: target head count H' (0 = not given) */
    int state_mult;   /* Mamba-2, Longhorn: N' = state_mult·N (0 = not given) */
    int keep_resets;  /* 1: skip the resets (Mamba-2 dt_bias, A_log, norm; Longhorn dt_proj.bias) */
    int k_scale_none; /* Longhorn reinit: 1 = leave the fresh k rows as drawn (k_scale "none") */
    /* calibration batch (Longhorn k_scale "match"): this mixer's normed input in the source model,
     * calib [B·T, D] for the sequences calib_seq describes; NULL = none */
    const real *calib;
    const SeqInfo *calib_seq;
} StatexReq;
/* expand()'s out bits (set in both phases): the model resets this block's pre-mixer norm to 1; the
 * layer needs StatexReq.calib; it read merge_heads / state_mult / k_scale (an option no selected
 * layer reads is an error, never silently ignored) */
enum { SX_OUT_RESET_PRENORM = 1, SX_OUT_NEEDS_CALIB = 2, SX_OUT_USES_MERGE_HEADS = 4, SX_OUT_USES_STATE_MULT = 8,
       SX_OUT_USES_K_SCALE = 16 };

typedef struct {
    const char *name;
    int (*resolve)(LayerCfg *c, int D);                              /* defaults + validation */
    int (*params)(const LayerCfg *c, int D, int n_layer_total, ParamSpec *out); /* returns count */
    void (*init_custom)(const LayerCfg *c, int D, int idx, real *p, Rng *r);
    void (*plan)(Layer *l, Arena *a, int B, int T);
    void (*forward)(Layer *l, const real *x, real *y, const SeqInfo *s);
    void (*backward)(Layer *l, const real *dy, real *dx, const SeqInfo *s);
    size_t (*state_size)(const LayerCfg *c, int D);
    void (*plan_step)(Layer *l, Arena *a, int nseq);
    void (*step)(Layer *l, real *state, const real *x, real *y, int nseq);
    void (*prefill)(Layer *l, real *state, const real *x, real *y, const SeqInfo *s);
    double (*zoology_state)(const LayerCfg *c, int D, int L); /* docs/tasks.md §1.4 convention, floats */
    /* Floats of state_size that are a bidirectional layer's reverse half (docs/layers.md §8.4: stateless
     * at decode, zeroed before each step, so not carried between tokens); 0 for a causal layer. NULL:
     * no split (attention's prefix-LM mask keeps the whole KV ring). */
    size_t (*reverse_state)(const LayerCfg *c, int D);
    unsigned options; /* LOPT_* bits: the model options this layer reads */
    /* StateX (NULL: the mixer has no method; the surgery refuses it by name). dst starts as a copy of
     * the resolved src; expand() sets its new sizes and validates the request (-1 + eid_error naming
     * the option). With sp, dp (the source / destination parameters in table order, dst resolved)
     * it also fills every destination parameter from the source and rng (fresh draws) and returns
     * SX_OUT_* bits in *out. n_res_layers: the model's residual count, for fresh init bounds. */
    int (*expand)(const LayerCfg *src, LayerCfg *dst, int D, int n_res_layers, const StatexReq *r,
                  real *const *sp, real *const *dp, Rng *rng, unsigned *out);
} LayerOps;

struct Layer {
    const LayerOps *ops;
    const LayerCfg *cfg;
    int D;
    int nparam;
    real *p[EID_MAX_PARAMS]; /* parameters, in table order */
    real *g[EID_MAX_PARAMS]; /* their gradients */
    real *buf[EID_MAX_BUFS]; /* activation / scratch slices; meaning private to the layer */
    int B, T;                /* planned sequence shape */
    int nseq;                /* planned decode batch */
    /* Set before plan (model_plan: --precision bf16 in effect, --gemm-plan fixed): the layer may save
     * activations for backward as bf16 (uint16_t slices, core/bf16.h): the MLP's (take_saved16), the
     * mixers' scan and elementwise inputs (take_act16); error measured in docs/performance.md "Memory". */
    int act16;
    Saved16 saved16[EID_MAX_SAVED16]; /* the activations take_act16 registered (plan) */
    int n_saved16;
    /* Kept bytes of those bf16 copies, and what the same slices would keep in fp32 (both aligned as
     * the arena aligns), including a wrapped sublayer's (B'MOJO's SSM: layer_plan_nested). */
    size_t act16_kept, act16_kept_fp32;
};

/* Saved activations kept in bf16 under act16: take_saved16 plans the slice (half the bytes, or fp32
 * without act16), the forward computes the activation in fp32 in a scratch slice of the same size,
 * uses it, then save16 rounds it into the kept slice; gemm_saved16 multiplies by it in backward. For
 * an activation that backward reads only as the B operand of a product (dW += dyᵀ·act: the MLP's h)
 * nothing changes: the bf16 product rounds it to the same bits anyway. (The mixers' gated outputs,
 * the same kind, are recomputed instead: docs/performance.md "Memory".) */
static inline real *take_saved16(const Layer *l, Arena *a, size_t n) {
    return l->act16 ? (real *)arena_take_bytes(a, n * sizeof(uint16_t)) : arena_take(a, n);
}
static inline void save16(const Layer *l, real *saved, const real *work, size_t n) {
    if (l->act16) k_to_bf16((uint16_t *)saved, work, n);
}
static inline void gemm_saved16(const Layer *l, int ta, int tb, int M, int N, int K, real alpha, const real *A, int lda,
                                const real *saved, int ldb, real beta, real *C, int ldc) {
    if (l->act16) eid_gemm_b16(ta, tb, M, N, K, alpha, A, lda, (const uint16_t *)saved, ldb, beta, C, ldc);
    else eid_gemm(ta, tb, M, N, K, alpha, A, lda, saved, ldb, beta, C, ldc);
}

/* An activation the forward computes and the backward reads (an elementwise or scan backward: the
 * rounding changes its gradient, measured in docs/performance.md "Memory"). Without act16: a kept fp32
 * slice. With act16: the layer reads and writes an fp32 *scratch* slice, exactly as before, and a kept
 * bf16 copy is registered with it: layer_forward rounds the slice into the copy after the forward, and
 * layer_backward widens the copy back into the slice before the backward. The forward (and a prefill)
 * computes with the fp32 values, so outputs and decode states do not change; the backward sees the
 * rounded ones. */
real *take_act16(Layer *l, Arena *a, size_t n);

/* The model's (and a wrapping layer's) way to run a sublayer: plan (resets the registered bf16
 * activations first), forward then rounding them into their kept copies, widening them back then
 * backward. A layer without act16 registers nothing, and these are its ops'. */
void layer_plan(Layer *l, Arena *a, int B, int T);
void layer_plan_nested(Layer *outer, Layer *inner, Arena *a, int B, int T); /* plan inner inside outer's plan */
void layer_forward(Layer *l, const real *x, real *y, const SeqInfo *s);
void layer_backward(Layer *l, const real *dy, real *dx, const SeqInfo *s);

const LayerOps *layer_find(const char *name); /* registry.c; NULL if unknown */
const char *layer_names(void);                /* "longhorn, ..." for messages */
int layer_count(void);                        /* registered mixers, in registry order */
const LayerOps *layer_at(int i);              /* 0 <= i < layer_count() */
extern const LayerOps mlp_ops;                /* the SwiGLU MLP as a layer */

#endif
