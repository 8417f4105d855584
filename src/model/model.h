/* model.h — embedding → blocks (pre-norm mixer + residual, optional pre-norm MLP + residual) →
 * final RMSNorm → LM head (tied to the embedding unless configured otherwise). docs/layers.md §0.3.
 *
 * Parameters live in one flat buffer described by a table (name, shape, offset): the table drives
 * initialisation, safetensors names, `info`, weight decay and the gradient checks. */
#ifndef EIDETIC_MODEL_H
#define EIDETIC_MODEL_H
#include "core/arena.h"
#include "layers/layer.h"
#include "model/config.h"

typedef struct {
    char name[96]; /* Hugging Face name, e.g. backbone.layers.0.mixer.in_proj.weight */
    int ndim, shape[EID_MAX_DIMS];
    size_t offset, numel; /* in reals, into Model.w / Model.grad */
    int decay;
    InitKind init;
    double a;
    int layer;         /* block index, −1 for embedding / final norm / head */
    const Layer *owner; /* NULL unless the parameter belongs to a Layer */
    int owner_idx;
    int frozen;        /* 1: the optimizer leaves it as it is (train --freeze) */
} ParamEntry;

typedef struct {
    real *norm_w, *norm_g; /* pre-norm of this sublayer */
    Layer op;              /* the mixer or the MLP */
} Sublayer;

typedef struct {
    ModelCfg cfg;
    int n_sub;          /* sublayers: each block's mixer, then its MLP when d_ff > 0 */
    Sublayer sub[2 * EID_MAX_LAYERS];
    int sub_block[2 * EID_MAX_LAYERS];
    int nparam;
    ParamEntry *param;
    size_t n_reals;     /* flat parameter buffer length (with alignment padding) */
    size_t n_weights;   /* number of actual parameters */
    int norm_entry[2 * EID_MAX_LAYERS]; /* parameter-table index of each sublayer's norm */
    real *w, *grad;
    int shares_w;       /* a replica: w belongs to another Model (model_new_replica) */
    real *embed, *embed_g, *head, *head_g, *norm_f, *norm_f_g;
    real *pos_emb, *pos_emb_g; /* [max_pos, D] learned absolute positions, or NULL (cfg.max_pos == 0) */
    /* activation plan for (B, T, max_labels) */
    Arena act;
    int B, T, max_labels;
    int plan_threads;   /* eid_threads() when planned (per-thread workspaces) */
    int plan_act16;     /* Layer.act16 when planned (bf16 saved activations: --precision bf16, fixed gemm plan) */
    int act16_off;      /* 1: fp32 saved activations even under --precision bf16 (tests measure the difference) */
    real *resid;  /* [(n_sub+1), M, D] residual stream before each sublayer, and after the last */
    real *normed; /* [M, D] the normed input of the sublayer running now: forward writes each in turn,
                   * backward recomputes each (the same kernel on the kept residual: the same bits) */
    real *rstd;   /* [n_sub+1, M] */
    real *fn;     /* [M, D] final normed hidden */
    int head_rows;      /* rows of the LM head computed at once (the loss works in row blocks) */
    int head_rows_req;  /* model_set_head_rows; 0 = sized by a byte budget */
    int measure_only;   /* model_plan_bytes's replica: plan measures and stops */
    real *gath;   /* [head_rows, D] rows of fn that carry a label (one block) */
    real *logits; /* [head_rows, V] one block's logits, then its dL/dlogits */
    real *dresid, *dnormed, *dgath, *tmp; /* backward: [M, D] each (dgath [head_rows, D]) */
    int *rows, *row_labels; /* [max_labels] positions (b·T+t) and their labels */
    int *posn;              /* [M] position of each token inside its segment (learned positions only) */
    uint8_t *correct;
    int n_rows;
} Model;

/* Batch of token sequences: tokens/labels [B*T]; label −100 = none; flags [B*T] or NULL.
 * label_norm: the loss gradient is that of the sum over this batch's labels ÷ label_norm (0 = this
 * batch's own label count: the mean); a data-parallel shard passes the whole batch's count. */
typedef struct {
    const int *tokens, *labels;
    const uint8_t *flags;
    int B, T;
    int label_norm;
} Batch;

typedef struct {
    double loss;     /* mean cross-entropy over labelled positions */
    int n_labels, n_correct;
    double accuracy; /* mean over examples of the fraction of correct labelled positions */
    int n_examples;  /* examples with at least one label */
} LossOut;

Model *model_new(const ModelCfg *cfg); /* NULL + eid_error on an invalid configuration */
/* A model that shares src's weights (not copied: updates to src are seen) with its own gradients
 * and activations: a data-parallel shard (train/shards.h). Free it before src. */
Model *model_new_replica(Model *src);
void model_free(Model *m);
/* Call after writing m->w (the optimizer does after every step; the trainer and the decoder after
 * loading): refreshes what is derived from the weights, i.e. the bf16 mirror of --precision bf16
 * (core/gemm_onednn.h). Nothing to do in fp32. */
void model_weights_changed(Model *m);
void model_init_params(Model *m, uint64_t seed);
int model_plan(Model *m, int B, int T, int max_labels); /* (re)plans activations when the shape changes */
/* m->normed = sublayer s's normed input (RMSNorm of the residual before it; M = B·T rows of the plan) */
void model_norm_input(Model *m, int s, size_t M);
size_t model_act_bytes(const Model *m);
/* The bytes model_plan(m, B, T, max_labels) would take, measured without allocating them. */
size_t model_plan_bytes(Model *m, int B, int T, int max_labels);
/* Rows per LM-head block in the loss (rows ≥ max_labels: one block, the whole head at once); 0 = the
 * automatic size (16 MiB of logits, 64..4096 rows). Takes effect at the next model_plan. */
void model_set_head_rows(Model *m, int rows);
/* token ids must be in [0, V): checked, -1 + eid_error otherwise */
int model_check_tokens(const Model *m, const int *tokens, size_t n, const char *what);

void model_trunk_forward(Model *m, const int *tokens, const uint8_t *flags, int B, int T); /* → m->fn */
/* Loss over labelled positions (LM head only there), computed in row blocks of the head so that
 * only [head_rows, V] logits exist at once. -1 if a label is out of range or there are more labels
 * than planned. Touches no gradient. */
int model_loss(Model *m, const Batch *b, LossOut *out);
/* The same loss and grads += its gradient: each head block's backward runs right after its loss
 * (training's path: the head's product is computed once). */
int model_loss_backward(Model *m, const Batch *b, LossOut *out);
/* grads += after model_loss (recomputes the head block by block: model_loss_backward is cheaper) */
void model_backward(Model *m, const Batch *b);
void model_zero_grad(Model *m);
/* logits at every position [B*T, V] into out (for `eidetic forward`) */
void model_logits_all(Model *m, real *out);

/* Recurrent decoding: O(1) memory per token. */
typedef struct {
    int nseq;
    Arena arena;
    real *state;               /* all sublayers' states, [Σ nseq·state_size] */
    size_t state_off[2 * EID_MAX_LAYERS];
    size_t state_floats;       /* length of state */
    real *h, *xn, *y, *rstd, *logits; /* [nseq, D] ×3, [nseq], [nseq, V] */
    int *seq_pos;              /* [nseq] tokens each sequence has seen (its next learned position) */
    int *pidx, *rowidx;        /* [nseq] scratch each */
    int pos;                   /* the most tokens any sequence has seen (decoder_room) */
} Decoder;
Decoder *decoder_new(Model *m, int nseq); /* plans each layer's step buffers */
void decoder_free(Decoder *d);
void decoder_reset(Decoder *d);
const real *decoder_step(Model *m, Decoder *d, const int *tokens); /* → logits [nseq, V] */
/* 0 if `more` further tokens fit (a model with learned positions decodes at most max_pos tokens),
 * else -1 with eid_error set. */
/* One parallel pass over prompts for the decoder's nseq sequences: tokens, flags [nseq, T] (flags
 * may be NULL). Every sublayer runs its ops->prefill (a layer without one is stepped token by token
 * here), leaving the states, positions and logits exactly where decoder_step over the real tokens
 * would: PAD tokens are skipped (left padding for prompts of different lengths), a real token with
 * SEG_START restarts that sequence (state and learned position). Returns the logits [nseq, V] at
 * each sequence's last real token (a row with none keeps its previous logits). Callers check
 * decoder_room() for the real tokens first. */
const real *model_prefill(Model *m, Decoder *d, const int *tokens, const uint8_t *flags, int B, int T);
/* After model_prefill: the logits at every prompt position [nseq·T, V] (rows at PAD are finite
 * and meaningless), i.e. what decoder_step would have returned token by token. */
void model_prefill_logits_all(Model *m, real *out);
int decoder_room(const Model *m, const Decoder *d, long more);
size_t model_state_floats(const Model *m, int sub); /* per sequence, one sublayer */

#endif
