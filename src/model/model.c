/* model.c — parameter table, forward/backward of the whole model, loss, recurrent decoding. */
#include <sys/mman.h>
#include "model/model.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "core/runtime.h"
#include "core/gemm_onednn.h"
#include "core/gemm_plan.h"
#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "kernels/model_ops.h"

#define PARAM_ALIGN 16 /* reals: every tensor starts on a 64-byte boundary */

static void bind_views(Model *m);

static void add_param(Model *m, int *cap, const char *name, int ndim, const int *shape, InitKind init, double a,
                      int decay, int layer, const Layer *owner, int owner_idx) {
    if (m->nparam == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        m->param = eid_xrealloc(m->param, sizeof(ParamEntry) * *cap);
        if (!m->param) eid_fatal("out of memory");
    }
    ParamEntry *p = &m->param[m->nparam++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i], p->numel *= shape[i];
    p->init = init, p->a = a, p->decay = decay, p->layer = layer, p->owner = owner, p->owner_idx = owner_idx;
    p->offset = m->n_reals;
    m->n_reals += EID_CDIV(p->numel, PARAM_ALIGN) * PARAM_ALIGN;
    m->n_weights += p->numel;
}

static void add_layer_params(Model *m, int *cap, int blk, Layer *l, int n_res_layers) {
    ParamSpec specs[EID_MAX_PARAMS];
    int n = l->ops->params(l->cfg, l->D, n_res_layers, NULL);
    if (n > EID_MAX_PARAMS) eid_fatal("layer %s has too many parameters", l->ops->name);
    l->ops->params(l->cfg, l->D, n_res_layers, specs);
    l->nparam = n;
    for (int i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "backbone.layers.%d.%.63s", blk, specs[i].name);
        add_param(m, cap, name, specs[i].ndim, specs[i].shape, specs[i].init, specs[i].a, specs[i].decay, blk, l, i);
    }
}

/* Gradients: zeroed pages from the kernel, mapped on first touch, so a model that never trains
 * (eval, generate, expand: docs/statex.md) costs no resident memory for them. */
static real *grad_alloc(size_t n) {
    void *p = mmap(NULL, sizeof(real) * (n ? n : 1), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) eid_fatal("out of memory allocating %zu gradient values", n);
    return p;
}
static void grad_free(real *g, size_t n) {
    if (g) munmap(g, sizeof(real) * (n ? n : 1));
}

Model *model_new(const ModelCfg *cfg_in) {
    Model *m = eid_xcalloc(1, sizeof *m);
    m->cfg = *cfg_in;
    ModelCfg *c = &m->cfg;
    if (modelcfg_resolve(c) != 0) return free(m), NULL;
    if (!c->tie_embeddings) c->tie_embeddings = 0;
    int D = c->d_model, V = c->vocab_size, cap = 0, has_mlp = 0;
    for (int i = 0; i < c->n_layer; i++) has_mlp |= c->layer[i].d_ff > 0;
    int n_res_layers = (has_mlp ? 2 : 1) * c->n_layer; /* residual rescale, docs/layers.md §0.4 */
    int shapeVD[2] = {V, D}, shapeD[1] = {D};
    add_param(m, &cap, "backbone.embeddings.weight", 2, shapeVD, INIT_NORMAL, 0.02, 1, -1, NULL, 0);
    if (c->max_pos > 0) { /* learned absolute positions (docs/layers.md §0.2 [OURS] name, §0.3) */
        int shapePD[2] = {c->max_pos, D};
        add_param(m, &cap, "backbone.pos_embeddings.weight", 2, shapePD, INIT_NORMAL, 0.02, 1, -1, NULL, 0);
    }
    /* sublayers and their parameter entries (norm first, as HF orders them) */
    for (int i = 0; i < c->n_layer; i++) {
        for (int mlp = 0; mlp <= 1; mlp++) {
            if (mlp && c->layer[i].d_ff <= 0) continue;
            Sublayer *s = &m->sub[m->n_sub];
            s->op.ops = mlp ? &mlp_ops : layer_find(c->layer[i].mixer);
            s->op.cfg = &c->layer[i];
            s->op.D = D;
            m->sub_block[m->n_sub] = i;
            char name[96];
            snprintf(name, sizeof name, "backbone.layers.%d.%s.weight", i, mlp ? "mlp_norm" : "norm");
            m->norm_entry[m->n_sub] = m->nparam;
            add_param(m, &cap, name, 1, shapeD, INIT_ONE, 0, 0, i, NULL, 0);
            add_layer_params(m, &cap, i, &s->op, n_res_layers);
            m->n_sub++;
        }
    }
    add_param(m, &cap, "backbone.norm_f.weight", 1, shapeD, INIT_ONE, 0, 0, -1, NULL, 0);
    if (!c->tie_embeddings) add_param(m, &cap, "lm_head.weight", 2, shapeVD, INIT_NORMAL, 0.02, 1, -1, NULL, 0);
    /* one flat buffer each for weights and gradients; hand out views */
    m->w = eid_aligned_alloc(sizeof(real) * m->n_reals);
    m->grad = grad_alloc(m->n_reals);
    bind_views(m);
    return m;
}

Model *model_new_replica(Model *src) {
    Model *m = model_new(&src->cfg);
    if (!m) return NULL;
    free(m->w);
    m->w = src->w, m->shares_w = 1;
    m->act16_off = src->act16_off;
    bind_views(m);
    return m;
}

/* Point every layer, norm, embedding and head at its slice of m->w and m->grad. */
static void bind_views(Model *m) {
    const ModelCfg *c = &m->cfg;
    for (int j = 0; j < m->nparam; j++) {
        ParamEntry *p = &m->param[j];
        if (p->owner) {
            Layer *l = (Layer *)p->owner;
            l->p[p->owner_idx] = m->w + p->offset;
            l->g[p->owner_idx] = m->grad + p->offset;
        }
    }
    for (int s = 0; s < m->n_sub; s++) {
        m->sub[s].norm_w = m->w + m->param[m->norm_entry[s]].offset;
        m->sub[s].norm_g = m->grad + m->param[m->norm_entry[s]].offset;
    }
    m->embed = m->w, m->embed_g = m->grad;
    if (c->max_pos > 0) m->pos_emb = m->w + m->param[1].offset, m->pos_emb_g = m->grad + m->param[1].offset;
    int nf = c->tie_embeddings ? m->nparam - 1 : m->nparam - 2;
    m->norm_f = m->w + m->param[nf].offset, m->norm_f_g = m->grad + m->param[nf].offset;
    m->head = c->tie_embeddings ? m->embed : m->w + m->param[m->nparam - 1].offset;
    m->head_g = c->tie_embeddings ? m->embed_g : m->grad + m->param[m->nparam - 1].offset;
}

void model_weights_changed(Model *m) {
    if (m->shares_w) return;
    if (eid_precision() == EID_PREC_BF16) eid_bf16_mirror_sync(m->w, m->n_reals);
    /* auto: bf16 only for decoding, whose products read packed copies made from the fp32 weights */
    if (eid_precision() == EID_PREC_AUTO) eid_bf16_mirror_register(m->w, m->n_reals);
}

void model_free(Model *m) {
    if (!m) return;
    arena_free(&m->act);
    if (!m->shares_w) eid_bf16_mirror_drop(m->w), free(m->w);
    free(m->param);
    grad_free(m->grad, m->n_reals);
    free(m);
}

void model_init_params(Model *m, uint64_t seed) {
    for (int j = 0; j < m->nparam; j++) {
        ParamEntry *p = &m->param[j];
        real *w = m->w + p->offset;
        Rng r;
        rng_init(&r, rng_derive(seed, 0x1000 + j), 0); /* one stream per tensor: order-independent */
        switch (p->init) {
        case INIT_ZERO: k_fill(w, p->numel, 0); break;
        case INIT_ONE: k_fill(w, p->numel, 1); break;
        case INIT_UNIFORM: k_fill_uniform(w, p->numel, p->a, &r); break;
        case INIT_NORMAL: k_fill_normal(w, p->numel, p->a, &r); break;
        case INIT_CUSTOM: p->owner->ops->init_custom(p->owner->cfg, p->owner->D, p->owner_idx, w, &r); break;
        }
    }
}

void model_zero_grad(Model *m) { k_fill(m->grad, m->n_reals, 0); }

/* Rows of the LM head computed at once in the loss (a row block: its logits [rows, V] are the one
 * vocabulary-sized buffer the loss needs). Automatic: as many rows as fit HEAD_BLOCK_BYTES, at
 * least HEAD_MIN_ROWS (a matrix product of a few rows runs far below the sgemm peak) and at most
 * HEAD_MAX_ROWS. docs/lm.md "The LM head in row blocks". */
#define HEAD_BLOCK_BYTES ((size_t)16 << 20)
#define HEAD_MIN_ROWS 64
#define HEAD_MAX_ROWS 4096

static int head_rows_for(const Model *m, int max_labels) {
    int rows = m->head_rows_req;
    if (rows <= 0) {
        size_t fit = HEAD_BLOCK_BYTES / (sizeof(real) * (size_t)m->cfg.vocab_size);
        rows = (int)EID_MIN((size_t)HEAD_MAX_ROWS, EID_MAX((size_t)HEAD_MIN_ROWS, fit));
    }
    return EID_MAX(1, EID_MIN(rows, max_labels));
}

void model_set_head_rows(Model *m, int rows) {
    m->head_rows_req = rows > 0 ? rows : 0;
    arena_free(&m->act); /* the next model_plan carves the new block */
}

int model_plan(Model *m, int B, int T, int max_labels) {
    /* kernels size per-thread workspaces by the thread count: replan when it changed */
    /* layers may keep bf16 activations (layer.h) — not with a measured plan, which may give the products
     * that read them to an fp32 library: there the bf16 copy would change their bits */
    int act16 = eid_precision() == EID_PREC_BF16 && eid_gemm_plan_mode() == EID_PLAN_FIXED && !m->act16_off;
    if (m->act.base && m->B == B && m->T == T && m->max_labels >= max_labels && m->plan_threads == eid_threads() &&
        m->plan_act16 == act16)
        return 0;
    if (m->cfg.max_pos > 0 && T > m->cfg.max_pos)
        return eid_error("sequence length %d exceeds this model's %d learned positions (max_position_embeddings); "
                         "use sequences of at most %d tokens", T, m->cfg.max_pos, m->cfg.max_pos), -1;
    arena_free(&m->act);
    int D = m->cfg.d_model, V = m->cfg.vocab_size, S = m->n_sub;
    size_t M = (size_t)B * T;
    if (max_labels <= 0 || (size_t)max_labels > M) max_labels = (int)M;
    int hr = head_rows_for(m, max_labels);
    for (int pass = 0; pass < 2; pass++) { /* pass 0 measures, pass 1 carves */
        Arena *a = &m->act;
        if (pass == 0) arena_begin_measure(a); else arena_commit(a);
        m->resid = arena_take(a, (S + 1) * M * D);
        m->normed = arena_take(a, M * D); /* one sublayer's at a time: backward recomputes it (model.h) */
        m->rstd = arena_take(a, (S + 1) * M);
        m->fn = arena_take(a, M * D);
        m->gath = arena_take(a, (size_t)hr * D);
        m->logits = arena_take(a, (size_t)hr * V);
        m->dresid = arena_take(a, M * D);
        m->dnormed = arena_take(a, M * D);
        m->tmp = arena_take(a, M * D);
        m->dgath = arena_take(a, (size_t)hr * D);
        m->rows = arena_take_bytes(a, sizeof(int) * max_labels);
        m->row_labels = arena_take_bytes(a, sizeof(int) * max_labels);
        m->correct = arena_take_bytes(a, max_labels);
        m->posn = m->cfg.max_pos > 0 ? arena_take_bytes(a, sizeof(int) * M) : NULL;
        /* each sublayer's backward scratch is a slice of one zone they all share (core/arena.h) */
        for (int s = 0; s < S; s++) {
            arena_scratch_rewind(a);
            m->sub[s].op.act16 = act16;
            layer_plan(&m->sub[s].op, a, B, T);
        }
        if (pass == 0 && m->measure_only) return 0; /* model_plan_bytes: the size is all it wants */
    }
    m->B = B, m->T = T, m->max_labels = max_labels, m->plan_threads = eid_threads(), m->head_rows = hr;
    m->plan_act16 = act16;
    return 0;
}

size_t model_plan_bytes(Model *m, int B, int T, int max_labels) {
    Model *r = model_new_replica(m); /* its layers take the measuring pass's pointers, not m's */
    if (!r) return 0;
    r->head_rows_req = m->head_rows_req, r->measure_only = 1;
    size_t bytes = model_plan(r, B, T, max_labels) == 0 ? arena_bytes(&r->act) : 0;
    model_free(r);
    return bytes;
}

size_t model_act_bytes(const Model *m) { return m->act.cap; }

int model_check_tokens(const Model *m, const int *tokens, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return eid_error("%s: token %d at position %zu is outside the vocabulary [0, %d)", what, tokens[i], i,
                             m->cfg.vocab_size),
                   -1;
    return 0;
}

/* m->normed = RMSNorm(h_s) for sublayer s over the M rows of the plan (rstd of s written too): what
 * its forward reads, and what its backward gets again — the same kernel on the kept residual, so the
 * same bits (model.h). */
void model_norm_input(Model *m, int s, size_t M) {
    int D = m->cfg.d_model;
    k_rmsnorm_fwd(m->resid + s * M * D, m->sub[s].norm_w, m->normed, m->rstd + s * M, (int)M, D, (real)m->cfg.norm_eps);
}

/* EIDETIC_POISON_SCRATCH=1 (the test runs set it): the arena's shared scratch zone is filled with NaN
 * before every sublayer call, so a layer that kept something in scratch from one call to the next,
 * or read scratch it had not written, gives NaN (core/arena.h). */
static void poison_scratch(Model *m) {
    const char *e = getenv("EIDETIC_POISON_SCRATCH");
    if (e && *e && strcmp(e, "0") != 0) arena_poison_scratch(&m->act);
}

void model_trunk_forward(Model *m, const int *tokens, const uint8_t *flags, int B, int T) {
    if (B != m->B || T != m->T) eid_fatal("model_trunk_forward: planned for (%d,%d), got (%d,%d)", m->B, m->T, B, T);
    int D = m->cfg.d_model;
    size_t M = (size_t)B * T;
    real eps = (real)m->cfg.norm_eps;
    SeqInfo si = {B, T, flags};
    k_embed_gather(m->embed, tokens, M, D, m->resid);
    if (m->pos_emb) { /* h += P[pos], pos = real tokens before it inside its segment */
        k_token_positions(flags, B, T, NULL, m->posn);
        k_add_rows_indexed(m->resid, m->pos_emb, m->cfg.max_pos, m->posn, M, D);
    }
    for (int s = 0; s < m->n_sub; s++) {
        real *h = m->resid + s * M * D, *hn = m->resid + (s + 1) * M * D, *xn = m->normed;
        model_norm_input(m, s, M);
        poison_scratch(m);
        layer_forward(&m->sub[s].op, xn, m->tmp, &si);
        k_add(hn, h, m->tmp, M * D);
    }
    k_rmsnorm_fwd(m->resid + m->n_sub * M * D, m->norm_f, m->fn, m->rstd + m->n_sub * M, (int)M, D, eps);
}

/* The labelled positions of a batch into m->rows / m->row_labels; their count, or -1. */
static int collect_rows(Model *m, const Batch *b) {
    int V = m->cfg.vocab_size, M = b->B * b->T, n = 0;
    for (int i = 0; i < M; i++) {
        int y = b->labels[i];
        if (y == -100) continue;
        if (y < 0 || y >= V) return eid_error("label %d at position %d is outside [0, %d)", y, i, V), -1;
        if (n == m->max_labels) return eid_error("batch has more labelled positions than planned (%d)", n), -1;
        m->rows[n] = i, m->row_labels[n++] = y;
    }
    return m->n_rows = n;
}

/* Rows [r0, r0 + n) of the head: logits = fn[rows] · Wᵀ [n, V], then the cross-entropy; leaves
 * scale · dL/dlogits in m->logits. Returns the block's summed nats. */
static double head_block_loss(Model *m, int r0, int n, real scale) {
    int D = m->cfg.d_model, V = m->cfg.vocab_size;
    k_rows_gather(m->fn, m->rows + r0, n, D, m->gath);
    eid_gemm(0, 1, n, V, D, 1, m->gath, D, m->head, D, 0, m->logits, V);
    return k_xent_fwd_bwd(m->logits, m->row_labels + r0, n, V, scale, m->correct + r0);
}

/* Its backward: dW_head += dlogitsᵀ · gath [V, D], dfn[rows] = dlogits · W (into m->tmp). */
static void head_block_backward(Model *m, int r0, int n) {
    int D = m->cfg.d_model, V = m->cfg.vocab_size;
    eid_gemm(1, 0, V, D, n, 1, m->logits, V, m->gath, D, 1, m->head_g, D);
    eid_gemm(0, 0, n, D, V, 1, m->logits, V, m->head, D, 0, m->dgath, D);
    k_rows_scatter(m->dgath, m->rows + r0, n, D, m->tmp);
}

/* The loss over the labelled rows, one row block of the head at a time, so the [labels, V] logits
 * never exist at once; with grad, each block's backward runs while its logits are at hand, leaving
 * dL/dfn in m->tmp (zero at unlabelled rows) and dW_head accumulated. */
static int head_pass(Model *m, const Batch *b, LossOut *out, int grad) {
    memset(out, 0, sizeof *out);
    int n = collect_rows(m, b);
    if (n < 0) return -1;
    if (grad) k_fill(m->tmp, (size_t)b->B * b->T * m->cfg.d_model, 0);
    if (n == 0) return 0;
    int norm = b->label_norm > 0 ? b->label_norm : n; /* gradient of the mean over `norm` labels */
    double sum = 0;
    for (int r0 = 0; r0 < n; r0 += m->head_rows) {
        int nb = EID_MIN(m->head_rows, n - r0);
        sum += head_block_loss(m, r0, nb, (real)(1.0 / norm));
        if (grad) head_block_backward(m, r0, nb);
    }
    out->loss = sum / n;
    out->n_labels = n;
    /* accuracy: per example fraction correct, then mean over examples (docs/tasks.md §0) */
    double acc = 0;
    int ex = 0;
    for (int r = 0; r < n;) {
        int e = m->rows[r] / b->T, cnt = 0, ok = 0;
        for (; r < n && m->rows[r] / b->T == e; r++) cnt++, ok += m->correct[r];
        out->n_correct += ok;
        acc += (double)ok / cnt, ex++;
    }
    out->accuracy = acc / ex;
    out->n_examples = ex;
    return 0;
}

int model_loss(Model *m, const Batch *b, LossOut *out) { return head_pass(m, b, out, 0); }

/* From dL/dfn in m->tmp down to the embedding. */
static void trunk_backward(Model *m, const Batch *b) {
    int D = m->cfg.d_model;
    size_t M = (size_t)b->B * b->T;
    SeqInfo si = {b->B, b->T, b->flags};
    k_fill(m->dresid, M * D, 0);
    k_rmsnorm_bwd(m->tmp, m->resid + m->n_sub * M * D, m->norm_f, m->rstd + m->n_sub * M, m->dresid, m->norm_f_g,
                  (int)M, D);
    for (int s = m->n_sub - 1; s >= 0; s--) {
        /* h_{s+1} = h_s + op(norm(h_s)): dresid flows through unchanged and gains the branch's part */
        k_fill(m->dnormed, M * D, 0);
        model_norm_input(m, s, M); /* the sublayer's normed input again */
        poison_scratch(m);
        layer_backward(&m->sub[s].op, m->dresid, m->dnormed, &si);
        k_rmsnorm_bwd(m->dnormed, m->resid + s * M * D, m->sub[s].norm_w, m->rstd + s * M, m->dresid, m->sub[s].norm_g,
                      (int)M, D);
    }
    k_embed_scatter_add(m->dresid, b->tokens, m->posn, M, D, m->embed_g, m->pos_emb_g);
}

int model_loss_backward(Model *m, const Batch *b, LossOut *out) {
    if (head_pass(m, b, out, 1) != 0) return -1;
    trunk_backward(m, b);
    return 0;
}

void model_backward(Model *m, const Batch *b) {
    LossOut lo; /* the head's logits were not kept: recompute them block by block */
    if (head_pass(m, b, &lo, 1) != 0) eid_fatal("model_backward: %s", eid_last_error());
    trunk_backward(m, b);
}

void model_logits_all(Model *m, real *out) {
    int D = m->cfg.d_model, V = m->cfg.vocab_size;
    eid_gemm(0, 1, m->B * m->T, V, D, 1, m->fn, D, m->head, D, 0, out, V);
}

/* ---- recurrent decoding ---- */

size_t model_state_floats(const Model *m, int s) { return m->sub[s].op.ops->state_size(m->sub[s].op.cfg, m->cfg.d_model); }

Decoder *decoder_new(Model *m, int nseq) {
    model_weights_changed(m); /* a bf16 decoder streams the weights' bf16 mirror */
    Decoder *d = eid_xcalloc(1, sizeof *d);
    d->nseq = nseq;
    int D = m->cfg.d_model, V = m->cfg.vocab_size;
    for (int pass = 0; pass < 2; pass++) {
        Arena *a = &d->arena;
        if (pass == 0) arena_begin_measure(a); else arena_commit(a);
        size_t off = 0;
        for (int s = 0; s < m->n_sub; s++) d->state_off[s] = off, off += (size_t)nseq * model_state_floats(m, s);
        d->state = arena_take(a, off);
        d->state_floats = off;
        d->h = arena_take(a, (size_t)nseq * D);
        d->xn = arena_take(a, (size_t)nseq * D);
        d->y = arena_take(a, (size_t)nseq * D);
        d->rstd = arena_take(a, nseq);
        d->logits = arena_take(a, (size_t)nseq * V);
        d->seq_pos = arena_take_bytes(a, sizeof(int) * nseq);
        d->pidx = arena_take_bytes(a, sizeof(int) * nseq);
        d->rowidx = arena_take_bytes(a, sizeof(int) * nseq);
        for (int s = 0; s < m->n_sub; s++) m->sub[s].op.ops->plan_step(&m->sub[s].op, a, nseq);
    }
    return d;
}

void decoder_free(Decoder *d) {
    if (!d) return;
    arena_free(&d->arena);
    free(d);
}

void decoder_reset(Decoder *d) {
    k_fill(d->state, d->state_floats, 0);
    for (int i = 0; i < d->nseq; i++) d->seq_pos[i] = 0;
    d->pos = 0;
}

int decoder_room(const Model *m, const Decoder *d, long more) {
    if (m->cfg.max_pos > 0 && d->pos + more > m->cfg.max_pos)
        return eid_error("decoding %ld more tokens after %d would pass this model's %d learned positions "
                         "(max_position_embeddings)", more, d->pos, m->cfg.max_pos), -1;
    return 0;
}

const real *decoder_step(Model *m, Decoder *d, const int *tokens) {
    int D = m->cfg.d_model, V = m->cfg.vocab_size, n = d->nseq;
    real eps = (real)m->cfg.norm_eps;
    k_embed_gather(m->embed, tokens, n, D, d->h);
    if (m->pos_emb) { /* callers check decoder_room(); past max_pos the last learned row is reused */
        k_add_rows_indexed(d->h, m->pos_emb, m->cfg.max_pos, d->seq_pos, n, D);
    }
    for (int s = 0; s < m->n_sub; s++) {
        Sublayer *sl = &m->sub[s];
        k_rmsnorm_fwd(d->h, sl->norm_w, d->xn, d->rstd, n, D, eps);
        sl->op.ops->step(&sl->op, d->state + d->state_off[s], d->xn, d->y, n);
        k_add(d->h, d->h, d->y, (size_t)n * D);
    }
    k_rmsnorm_fwd(d->h, m->norm_f, d->xn, d->rstd, n, D, eps);
    eid_gemm(0, 1, n, V, D, 1, d->xn, D, m->head, D, 0, d->logits, V);
    for (int i = 0; i < n; i++) d->seq_pos[i]++;
    d->pos++;
    return d->logits;
}

/* A sublayer without ops->prefill: step it over the prompt token by token. A column where every
 * sequence has a real token without SEG_START steps all of them at once (rows gathered into the
 * decoder's [nseq, D] buffers), so it works for any batched state layout; a column with PAD or
 * SEG_START steps each real token's sequence alone at its row of [nseq, state_size] (layer.h: the
 * batched state is sequence-major), SEG_START first clearing that row as a fresh decoder's is.
 * y rows at PAD: 0. */
static void prefill_by_steps(Model *m, Decoder *d, int s, const real *xn, real *y, const uint8_t *flags, int B, int T) {
    Layer *l = &m->sub[s].op;
    int D = m->cfg.d_model, *rows = d->rowidx;
    size_t ss = model_state_floats(m, s);
    real *st = d->state + d->state_off[s];
    k_fill(y, (size_t)B * T * D, 0);
    for (int t = 0; t < T; t++) {
        int clean = 1;
        for (int b = 0; b < B; b++) clean &= !flags || !(flags[(size_t)b * T + t] & (FLAG_PAD | FLAG_SEG_START));
        if (clean) {
            for (int b = 0; b < B; b++) rows[b] = b * T + t;
            k_rows_gather(xn, rows, B, D, d->xn);
            l->ops->step(l, st, d->xn, d->y, B);
            k_rows_scatter(d->y, rows, B, D, y);
            continue;
        }
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * T + t;
            if (flags[i] & FLAG_PAD) continue;
            if (flags[i] & FLAG_SEG_START) k_fill(st + (size_t)b * ss, ss, 0);
            l->ops->step(l, st + (size_t)b * ss, xn + i * D, y + i * D, 1);
        }
    }
}

const real *model_prefill(Model *m, Decoder *d, const int *tokens, const uint8_t *flags, int B, int T) {
    if (B != d->nseq) eid_fatal("model_prefill: decoder holds %d sequences, got %d prompts", d->nseq, B);
    if (T <= 0) return d->logits;
    if (model_plan(m, B, T, B) != 0) return NULL;
    int D = m->cfg.d_model, V = m->cfg.vocab_size, n = 0;
    size_t M = (size_t)B * T;
    real eps = (real)m->cfg.norm_eps;
    SeqInfo si = {B, T, flags};
    /* per sequence: the last real token (its logits are returned) and the tokens seen afterwards */
    for (int b = 0; b < B; b++) {
        int last = -1, seen = d->seq_pos[b];
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (flags && (flags[i] & FLAG_PAD)) continue;
            if (flags && (flags[i] & FLAG_SEG_START)) seen = 0;
            seen++, last = t;
        }
        if (last >= 0) m->rows[n] = b * T + last, m->row_labels[n++] = b; /* row_labels: the sequence */
        d->pidx[b] = seen;
    }
    k_embed_gather(m->embed, tokens, M, D, m->resid);
    if (m->pos_emb) { /* each sequence continues its own positions (left padding shifts nothing) */
        k_token_positions(flags, B, T, d->seq_pos, m->posn);
        k_add_rows_indexed(m->resid, m->pos_emb, m->cfg.max_pos, m->posn, M, D);
    }
    for (int s = 0; s < m->n_sub; s++) {
        real *h = m->resid + s * M * D, *hn = m->resid + (s + 1) * M * D, *xn = m->normed;
        Layer *l = &m->sub[s].op;
        model_norm_input(m, s, M);
        if (l->ops->prefill) poison_scratch(m), l->ops->prefill(l, d->state + d->state_off[s], xn, m->tmp, &si);
        else prefill_by_steps(m, d, s, xn, m->tmp, flags, B, T);
        k_add(hn, h, m->tmp, M * D);
    }
    /* logits at each sequence's last real token, one row block of the head at a time */
    for (int r0 = 0; r0 < n; r0 += m->head_rows) {
        int nb = EID_MIN(m->head_rows, n - r0);
        k_rows_gather(m->resid + m->n_sub * M * D, m->rows + r0, nb, D, m->gath);
        k_rmsnorm_fwd(m->gath, m->norm_f, m->dgath, m->rstd, nb, D, eps);
        eid_gemm(0, 1, nb, V, D, 1, m->dgath, D, m->head, D, 0, m->logits, V);
        k_rows_scatter(m->logits, m->row_labels + r0, nb, V, d->logits);
    }
    d->pos = 0;
    for (int b = 0; b < B; b++) d->seq_pos[b] = d->pidx[b], d->pos = EID_MAX(d->pos, d->pidx[b]);
    return d->logits;
}

void model_prefill_logits_all(Model *m, real *out) {
    size_t M = (size_t)m->B * m->T;
    int D = m->cfg.d_model;
    k_rmsnorm_fwd(m->resid + m->n_sub * M * D, m->norm_f, m->fn, m->rstd + m->n_sub * M, (int)M, D,
                  (real)m->cfg.norm_eps);
    model_logits_all(m, out);
}
