/* bmojo.c — B'MOJO mixers (docs/layers.md §6, §7; docs/bmojo.md): "bmojo-f" (sliding window over raw
 * tokens + fading tokens written by an SSM, one softmax) and "bmojo" (the same plus the eidetic
 * store of innovation-selected tokens — OUR design, docs/layers.md §7).
 *
 *   F  = SSM(x)                                  [M, D]   (any recurrent mixer, through its LayerOps)
 *   Q  = rope(n(x·W_qᵀ)), K = rope(n(x·W_kᵀ)), V = x·W_vᵀ       n = optional per-head RMSNorm
 *   Q~ = Q (tied) | rope(n(x·W_q'ᵀ)), K~ = rope(n(F·W_k'ᵀ)), V~ = F·W_v'ᵀ    (W' = W when tied)
 *   query i: raw keys (i−W, i], fading keys (i−2W, i−W], [bmojo] stored keys (≤ M, chunks ≤ c−2)
 *   o = one softmax over the union = the passes merged by log-sum-exp; out = o·W_oᵀ
 * Backward: each pass recomputes P = exp(s − lse) with the merged lse and o (docs/layers.md §6.3);
 * dF = dK~·W_k' + dV~·W_v' flows into the SSM's own backward. The layer output is the attention
 * output only (the SSM output is not added to the residual).
 * bmojo's store: e_t = ‖n(K⁰_t) − n(W_e·F_{t−1})‖²/(Hkv·dh) (stop-gradient), top-k_e per chunk of W,
 * FIFO of M visible from two chunks later. W_e (innov.weight) is trained by its own loss mean_t e_t,
 * whose gradient backward adds (it does not change the output).
 * Decode state per sequence: the SSM's state, then (kernels/bmojo.h) the raw ring of W, the fading
 * ring of 2W, a counter, and for bmojo the FIFO, the chunk candidates, the previous selection and
 * F_{t−1}. Positions restart at every SEG_START (RoPE at true positions on every path); PAD tokens
 * are absent. */
#include <math.h>
#include <string.h>
#include "core/runtime.h"
#include "kernels/attention.h"
#include "kernels/bmojo.h"
#include "kernels/kernels.h"
#include "kernels/model_ops.h"
#include "layers/attn_heads.h"
#include "layers/layer.h"

enum { SC_PRED, SC_RANDOM, SC_NONE };
static const char *const score_names[] = {"pred", "random", "none"}; /* docs/bmojo.md: ssm_residual not built */

enum { X_IN, INNER, F, QR, QF, KR, VV, KF, VF, K0, PRE, RSTD, ATT, LSE, PART, INTS, ROPE, E, FPREV, PRED, /* forward */
       D_ATT, DBUF, D_F, D_PRED,                                                                    /* backward */
       INNER_S, S_BUF, NBUF };                                                                        /* step */
_Static_assert(NBUF <= EID_MAX_BUFS, "bmojo: more buffers than Layer.buf holds");

#define QK_EPS 1e-6

typedef struct {
    int D, H, Hkv, dh, HD, KD, W, chunk, M, ke, score, store, qk, untied;
    double theta;
} Dims;

/* parameter indices (−1: absent); the SSM's come first, in its own order */
typedef struct { int nssm, q, k, v, o, qf, kf, vf, qn, kn, innov, n; } Idx;

typedef struct { Layer l; LayerCfg cfg; } Inner; /* the SSM as a layer of its own (lives in the arena) */

static int is_store(const LayerCfg *c) { return !strcmp(c->mixer, "bmojo"); }
static int score_of(const LayerCfg *c) {
    for (int i = 0; i < (int)(sizeof score_names / sizeof *score_names); i++)
        if (!strcmp(c->score, score_names[i])) return i;
    return c->score[0] ? -1 : SC_PRED;
}

/* The SSM's configuration from the layer's: its size fields, num_heads from ssm_heads. */
static void ssm_cfg(const LayerCfg *c, LayerCfg *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->mixer, sizeof s->mixer, "%s", c->ssm[0] ? c->ssm : "mamba2");
    s->expand = c->expand, s->d_state = c->d_state, s->d_conv = c->d_conv, s->dt_rank = c->dt_rank;
    s->headdim = c->headdim, s->ngroups = c->ngroups, s->gate_low_rank_dim = c->gate_low_rank_dim;
    s->expand_k = c->expand_k, s->expand_v = c->expand_v, s->gate_logit_normalizer = c->gate_logit_normalizer;
    s->num_heads = c->ssm_heads, s->chunk = c->chunk;
}

static Dims dims_of(const LayerCfg *c, int D) {
    Dims d;
    d.D = D, d.H = c->num_heads, d.Hkv = c->num_kv_heads, d.dh = c->head_dim, d.W = c->window, d.chunk = c->chunk;
    d.HD = d.H * d.dh, d.KD = d.Hkv * d.dh, d.theta = c->no_rope ? 0 : c->rope_theta;
    d.score = is_store(c) ? score_of(c) : SC_NONE;
    d.store = d.score != SC_NONE;
    d.M = d.store ? c->mem_size : 0, d.ke = d.store ? c->mem_topk : 0;
    d.qk = c->qk_norm, d.untied = c->untied;
    return d;
}
static Dims dims(const Layer *l) { return dims_of(l->cfg, l->D); }

static KBmojo kdims(const Dims *d) {
    return (KBmojo){d->H, d->Hkv, d->dh, d->W, d->M, d->ke, d->D, d->score == SC_RANDOM, d->theta};
}

static const char *const ssm_allowed[] = {"mamba2", "longhorn", "mamba", "gla", "hawk"};

static int bm_resolve(LayerCfg *c, int D) {
    const char *nm = c->mixer;
    /* the SSM first: its defaults are written back so that config.json states them */
    LayerCfg s;
    ssm_cfg(c, &s);
    int ok = 0;
    for (int i = 0; i < 5; i++) ok |= !strcmp(s.mixer, ssm_allowed[i]);
    if (!ok) return eid_error("%s: ssm must be one of mamba2, longhorn, mamba, gla, hawk, got \"%s\"", nm, s.mixer), -1;
    const LayerOps *so = layer_find(s.mixer);
    if (c->headdim && !(so->options & LOPT_HEADDIM))
        return eid_error("%s: headdim %d is set but the %s SSM has no headdim", nm, c->headdim, s.mixer), -1;
    if (c->d_state && !(so->options & LOPT_D_STATE))
        return eid_error("%s: d_state %d is set but the %s SSM has no d_state", nm, c->d_state, s.mixer), -1;
    if (c->ssm_heads && !(so->options & LOPT_HEADS))
        return eid_error("%s: ssm_heads %d is set but the %s SSM has no heads option", nm, c->ssm_heads, s.mixer), -1;
    if (!c->chunk) c->chunk = 64;
    if (c->chunk < 1 || c->chunk > 4096) return eid_error("%s: chunk must be in [1, 4096], got %d", nm, c->chunk), -1;
    s.chunk = c->chunk;
    if (so->resolve(&s, D) != 0) return -1;
    snprintf(c->ssm, sizeof c->ssm, "%s", s.mixer);
    c->expand = s.expand, c->d_state = s.d_state, c->d_conv = s.d_conv, c->dt_rank = s.dt_rank;
    c->headdim = s.headdim, c->ngroups = s.ngroups, c->gate_low_rank_dim = s.gate_low_rank_dim;
    c->expand_k = s.expand_k, c->expand_v = s.expand_v, c->gate_logit_normalizer = s.gate_logit_normalizer;
    c->ssm_heads = (so->options & LOPT_HEADS) ? s.num_heads : 0;
    /* the attention (docs/layers.md §5.1 sizes) */
    if (attn_resolve_heads(c, D, nm) != 0) return -1;
    if (!c->window) c->window = 64;
    if (c->window < 1 || c->window > (1 << 20))
        return eid_error("%s: window W must be in [1, 1048576] (raw tokens a query sees, itself included), got %d", nm,
                         c->window), -1;
    if (c->qk_norm != 0 && c->qk_norm != 1) return eid_error("%s: qk_norm must be 0 or 1, got %d", nm, c->qk_norm), -1;
    if (c->untied != 0 && c->untied != 1) return eid_error("%s: untied must be 0 or 1, got %d", nm, c->untied), -1;
    if (c->bidir) return eid_error("%s: no bidirectional form yet (docs/bmojo.md)", nm), -1;
    if (!is_store(c)) {
        if (c->score[0] || c->mem_size || c->mem_topk)
            return eid_error("%s: score, mem_size and mem_topk belong to the bmojo layer (the store), not %s", nm, nm), -1;
        return 0;
    }
    int sc = score_of(c);
    if (sc < 0) return eid_error("%s: score must be pred, random or none, got \"%s\"", nm, c->score), -1;
    snprintf(c->score, sizeof c->score, "%s", score_names[sc]);
    if (!c->mem_size) c->mem_size = c->window;
    if (!c->mem_topk) c->mem_topk = EID_MAX(1, c->window / 8);
    if (c->mem_size < 1 || c->mem_size > (1 << 20))
        return eid_error("%s: mem_size M must be in [1, 1048576] (0 = W; for no store use score none), got %d", nm,
                         c->mem_size), -1;
    if (c->mem_topk < 1 || c->mem_topk > c->window)
        return eid_error("%s: mem_topk k_e must be in [1, W = %d], got %d", nm, c->window, c->mem_topk), -1;
    return 0;
}

static Idx idx_of(const LayerCfg *c, int D, int *nssm_out) {
    LayerCfg s;
    ssm_cfg(c, &s);
    Idx x;
    x.nssm = layer_find(s.mixer)->params(&s, D, 1, NULL);
    int n = x.nssm;
    Dims d = dims_of(c, D);
    x.q = n++, x.k = n++, x.v = n++, x.o = n++;
    x.qf = d.untied ? n++ : -1, x.kf = d.untied ? n++ : -1, x.vf = d.untied ? n++ : -1;
    x.qn = d.qk ? n++ : -1, x.kn = d.qk ? n++ : -1;
    x.innov = d.store && d.score == SC_PRED ? n++ : -1;
    x.n = n;
    if (nssm_out) *nssm_out = x.nssm;
    return x;
}

/* docs/layers.md §6.2: mixer.ssm.* as the SSM's table (out_proj not residual-rescaled: it writes F),
 * mixer.attn.* as attention (§5.1), [bmojo] mixer.innov.weight U(±1/√D) (§7.1). */
static int bm_params(const LayerCfg *c, int D, int n_res_layers, ParamSpec *o) {
    Idx x = idx_of(c, D, NULL);
    if (!o) return x.n;
    LayerCfg s;
    ssm_cfg(c, &s);
    const LayerOps *so = layer_find(s.mixer);
    so->resolve(&s, D);
    so->params(&s, D, 1, o);
    for (int i = 0; i < x.nssm; i++) { /* "mixer.leaf" → "mixer.ssm.leaf" */
        char leaf[64];
        const char *nm = o[i].name;
        snprintf(leaf, sizeof leaf, "%s", strncmp(nm, "mixer.", 6) ? nm : nm + 6);
        snprintf(o[i].name, sizeof o[i].name, "mixer.ssm.%.50s", leaf);
    }
    Dims d = dims_of(c, D);
    double so_std = 0.02 / sqrt((double)(n_res_layers > 0 ? n_res_layers : 1));
    param_spec(&o[x.q], "mixer.", "attn.q_proj.weight", d.HD, D, 0, INIT_NORMAL, 0.02, 1);
    param_spec(&o[x.k], "mixer.", "attn.k_proj.weight", d.KD, D, 0, INIT_NORMAL, 0.02, 1);
    param_spec(&o[x.v], "mixer.", "attn.v_proj.weight", d.KD, D, 0, INIT_NORMAL, 0.02, 1);
    param_spec(&o[x.o], "mixer.", "attn.o_proj.weight", D, d.HD, 0, INIT_NORMAL, so_std, 1);
    if (d.untied) {
        param_spec(&o[x.qf], "mixer.", "attn.q_proj_f.weight", d.HD, D, 0, INIT_NORMAL, 0.02, 1);
        param_spec(&o[x.kf], "mixer.", "attn.k_proj_f.weight", d.KD, D, 0, INIT_NORMAL, 0.02, 1);
        param_spec(&o[x.vf], "mixer.", "attn.v_proj_f.weight", d.KD, D, 0, INIT_NORMAL, 0.02, 1);
    }
    if (d.qk) {
        param_spec(&o[x.qn], "mixer.", "attn.q_norm.weight", d.dh, 0, 0, INIT_ONE, 0, 0);
        param_spec(&o[x.kn], "mixer.", "attn.k_norm.weight", d.dh, 0, 0, INIT_ONE, 0, 0);
    }
    if (x.innov >= 0) param_spec(&o[x.innov], "mixer.", "innov.weight", d.KD, D, 0, INIT_UNIFORM, 1 / sqrt((double)D), 0);
    return x.n;
}

static void bm_init_custom(const LayerCfg *c, int D, int idx, real *p, Rng *r) {
    LayerCfg s;
    ssm_cfg(c, &s);
    const LayerOps *so = layer_find(s.mixer);
    so->resolve(&s, D);
    so->init_custom(&s, D, idx, p, r); /* only the SSM's parameters are INIT_CUSTOM */
}

/* The SSM layer inside slot `which` with the current parameter pointers (the model may rebind them). */
static Layer *inner(Layer *l, int which) {
    Inner *in = (Inner *)l->buf[which];
    for (int i = 0; i < in->l.nparam; i++) in->l.p[i] = l->p[i], in->l.g[i] = l->g[i];
    return &in->l;
}

/* Take the SSM's Layer from the arena (a stack copy while measuring) and plan it. */
static Inner *take_inner(Layer *l, Arena *a, Inner *tmp) {
    Inner *in = arena_take_bytes(a, sizeof(Inner));
    Inner *u = in ? in : tmp;
    memset(u, 0, sizeof *u);
    ssm_cfg(l->cfg, &u->cfg);
    u->l.ops = layer_find(u->cfg.mixer);
    u->l.ops->resolve(&u->cfg, l->D);
    u->l.cfg = &u->cfg, u->l.D = l->D;
    u->l.nparam = u->l.ops->params(&u->cfg, l->D, 1, NULL);
    for (int i = 0; i < u->l.nparam; i++) u->l.p[i] = l->p[i], u->l.g[i] = l->g[i];
    return u;
}

/* Slices of the int buffer and the backward buffer. */
typedef struct { int *pos, *lo1, *lo2, *hi, *sel, *mlo, *mhi, *scr; } Ints;
static Ints ints(const Layer *l, size_t M) {
    int *b = (int *)l->buf[INTS];
    return (Ints){b, b + M, b + 2 * M, b + 3 * M, b + 4 * M, b + 5 * M, b + 6 * M, b + 7 * M};
}
typedef struct { real *dq, *dk, *dv, *dqf, *dkf, *dvf, *dvec, *dpre; } DB;
static DB dbuf(const Layer *l, const Dims *d, size_t M) {
    real *b = l->buf[DBUF];
    DB x;
    x.dq = b, b += M * d->HD;
    x.dk = b, b += M * d->KD;
    x.dv = b, b += M * d->KD;
    x.dqf = b, b += M * d->HD;
    x.dkf = b, b += M * d->KD;
    x.dvf = b, b += M * d->KD;
    x.dvec = b, b += M * d->H;
    x.dpre = b; /* [M, 2·HD + 2·KD]: q, qf, k, kf pre-norm gradients */
    return x;
}
/* pre-norm projections (qk_norm) and their rstd: q, qf [M, HD], k, kf [M, KD] */
typedef struct { real *q, *qf, *k, *kf; } Pre;
static Pre pre_of(real *b, const Dims *d, size_t M) {
    return (Pre){b, b + M * d->HD, b + 2 * M * d->HD, b + 2 * M * d->HD + M * d->KD};
}
static Pre rstd_of(real *b, const Dims *d, size_t M) {
    return (Pre){b, b + M * d->H, b + 2 * M * d->H, b + 2 * M * d->H + M * d->Hkv};
}

static void bm_plan(Layer *l, Arena *a, int B, int T) {
    Dims d = dims(l);
    size_t M = (size_t)B * T;
    int pred = d.store && d.score == SC_PRED; /* the predictor's slices: only its score reads them */
    Inner tmp, *in = take_inner(l, a, &tmp);
    layer_plan_nested(l, &in->l, a, B, T);
    l->buf[INNER] = in == &tmp ? NULL : (real *)in;
    l->buf[F] = take_act16(l, a, M * d.D);
    /* queries and keys stay fp32: backward recomputes the merged softmax against the forward's lse
     * (attention.c) */
    l->buf[QR] = arena_take(a, M * d.HD);
    l->buf[QF] = arena_take(a, d.untied ? M * d.HD : 1); /* tied: q~ is q (QR) */
    l->buf[KR] = arena_take(a, M * d.KD);
    l->buf[VV] = take_act16(l, a, M * d.KD);
    l->buf[KF] = arena_take(a, M * d.KD);
    l->buf[VF] = take_act16(l, a, M * d.KD);
    l->buf[K0] = take_act16(l, a, pred ? M * d.KD : 1);
    l->buf[PRE] = take_act16(l, a, d.qk ? M * (2 * d.HD + 2 * d.KD) : 1);
    l->buf[RSTD] = arena_take(a, d.qk ? M * (2 * d.H + 2 * d.Hkv) : 1);
    l->buf[ATT] = take_act16(l, a, M * d.HD);
    l->buf[LSE] = arena_take(a, M * d.H);
    l->buf[PART] = arena_scratch(a, M * (d.HD + d.H)); /* the forward's partial outputs and lse: merged there */
    l->buf[INTS] = (real *)arena_take_bytes(a, sizeof(int) * M * 9);
    l->buf[ROPE] = arena_take(a, 2 * (size_t)T * (d.dh / 2));
    l->buf[E] = arena_take(a, M);
    l->buf[FPREV] = take_act16(l, a, pred ? M * d.D : 1);
    l->buf[PRED] = take_act16(l, a, pred ? M * d.KD : 1);
    l->buf[D_ATT] = arena_scratch(a, M * d.HD);
    l->buf[DBUF] = arena_scratch(a, M * (2 * d.HD + 4 * d.KD + d.H) + (d.qk ? M * (2 * d.HD + 2 * d.KD) : 0));
    l->buf[D_F] = arena_scratch(a, M * d.D);
    l->buf[D_PRED] = arena_scratch(a, pred ? M * d.KD : 1);
    l->B = B, l->T = T;
}

/* q, k, v (and the fading q~, k~, v~) of M tokens, normed (qk_norm) but not rotated; K⁰ kept for the score. */
static void project(Layer *l, const Dims *d, const real *x, const real *f, int M, real *q, real *qf, real *k, real *v,
                    real *kf, real *vf, real *pre_b, real *rstd_b) {
    Idx ix = idx_of(l->cfg, l->D, NULL);
    real **p = l->p;
    int HD = d->HD, KD = d->KD, D = d->D;
    Pre pre = pre_of(pre_b, d, M), rs = rstd_of(rstd_b, d, M);
    const real *wkf = p[d->untied ? ix.kf : ix.k], *wvf = p[d->untied ? ix.vf : ix.v];
    eid_gemm(0, 1, M, HD, D, 1, x, D, p[ix.q], D, 0, d->qk ? pre.q : q, HD);
    eid_gemm(0, 1, M, KD, D, 1, x, D, p[ix.k], D, 0, d->qk ? pre.k : k, KD);
    eid_gemm(0, 1, M, KD, D, 1, x, D, p[ix.v], D, 0, v, KD);
    eid_gemm(0, 1, M, KD, D, 1, f, D, wkf, D, 0, d->qk ? pre.kf : kf, KD);
    eid_gemm(0, 1, M, KD, D, 1, f, D, wvf, D, 0, vf, KD);
    if (d->untied) eid_gemm(0, 1, M, HD, D, 1, x, D, p[ix.qf], D, 0, d->qk ? pre.qf : qf, HD);
    if (d->qk) {
        k_rmsnorm_fwd(pre.q, p[ix.qn], q, rs.q, M * d->H, d->dh, (real)QK_EPS);
        k_rmsnorm_fwd(pre.k, p[ix.kn], k, rs.k, M * d->Hkv, d->dh, (real)QK_EPS);
        k_rmsnorm_fwd(pre.kf, p[ix.kn], kf, rs.kf, M * d->Hkv, d->dh, (real)QK_EPS);
        if (d->untied) k_rmsnorm_fwd(pre.qf, p[ix.qn], qf, rs.qf, M * d->H, d->dh, (real)QK_EPS);
    }
}

static void bm_forward(Layer *l, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, B = s->B, T = s->T;
    real **b = l->buf, **p = l->p;
    Idx ix = idx_of(l->cfg, l->D, NULL);
    Ints I = ints(l, M);
    b[X_IN] = (real *)x; /* the model gives backward the same normed input again (model.h) */
    Layer *ssm = inner(l, INNER);
    layer_forward(ssm, x, b[F], s);
    real *qf = d.untied ? b[QF] : b[QR];
    project(l, &d, x, b[F], M, b[QR], qf, b[KR], b[VV], b[KF], b[VF], b[PRE], b[RSTD]);
    k_token_positions(s->flags, B, T, NULL, I.pos);
    if (d.store) { /* the score reads the keys before RoPE */
        if (d.score == SC_PRED) {
            k_bmojo_shift_prev(b[F], s->flags, B, T, d.D, NULL, 0, b[FPREV]);
            eid_gemm(0, 1, M, d.KD, d.D, 1, b[FPREV], d.D, p[ix.innov], d.D, 0, b[PRED], d.KD);
            k_bmojo_score(b[KR], d.KD, b[PRED], d.KD, M, d.KD, b[E]);
            k_copy(b[KR], d.KD, b[K0], d.KD, M, d.KD);
        } else k_bmojo_score_random_rows(I.pos, M, b[E]);
        k_bmojo_select(b[E], I.pos, s->flags, B, T, d.W, d.ke, d.M, I.sel, I.mlo, I.mhi, I.scr);
    }
    k_attn_lo(s->flags, B, T, d.W, I.lo1);
    k_attn_lo(s->flags, B, T, 2 * d.W, I.lo2);
    k_bmojo_fading_hi(I.lo1, M, I.hi);
    if (d.theta > 0) {
        real *cs = b[ROPE], *sn = cs + (size_t)T * (d.dh / 2);
        k_rope_table(T, d.dh, d.theta, cs, sn);
        k_rope_apply(b[QR], d.HD, M, d.H, d.dh, I.pos, cs, sn, 0);
        k_rope_apply(b[KR], d.KD, M, d.Hkv, d.dh, I.pos, cs, sn, 0);
        k_rope_apply(b[KF], d.KD, M, d.Hkv, d.dh, I.pos, cs, sn, 0);
        if (d.untied) k_rope_apply(b[QF], d.HD, M, d.H, d.dh, I.pos, cs, sn, 0);
    }
    real *o2 = b[PART], *lse2 = o2 + (size_t)M * d.HD;
    k_attn_fwd(b[QR], b[KR], b[VV], b[ATT], b[LSE], B, T, d.H, d.Hkv, d.dh, d.chunk, I.lo1, NULL, s->flags);
    k_attn_fwd_range(qf, b[KF], b[VF], o2, lse2, B, T, d.H, d.Hkv, d.dh, d.chunk, I.lo2, I.hi, s->flags);
    k_attn_lse_merge(b[ATT], b[LSE], o2, lse2, (size_t)M * d.H, d.dh);
    if (d.store) {
        k_attn_fwd_list(b[QR], b[KR], b[VV], o2, lse2, B, T, d.H, d.Hkv, d.dh, I.sel, I.mlo, I.mhi);
        k_attn_lse_merge(b[ATT], b[LSE], o2, lse2, (size_t)M * d.H, d.dh);
    }
    eid_gemm(0, 1, M, d.D, d.HD, 1, b[ATT], d.HD, p[ix.o], d.HD, 0, out, d.D);
}

static void bm_backward(Layer *l, const real *dout, real *dx, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, B = s->B, T = s->T, HD = d.HD, KD = d.KD, D = d.D;
    real **b = l->buf, **p = l->p, **g = l->g;
    Idx ix = idx_of(l->cfg, l->D, NULL);
    Ints I = ints(l, M);
    DB db = dbuf(l, &d, M);
    const real *x = b[X_IN];
    real *qf = d.untied ? b[QF] : b[QR];
    /* out = ATT·W_oᵀ */
    eid_gemm(0, 0, M, HD, D, 1, dout, D, p[ix.o], HD, 0, b[D_ATT], HD);
    eid_gemm(1, 0, D, HD, M, 1, dout, D, b[ATT], HD, 1, g[ix.o], HD);
    /* the passes, each under the merged softmax */
    k_attn_bwd(b[QR], b[KR], b[VV], b[ATT], b[LSE], b[D_ATT], db.dq, db.dk, db.dv, db.dvec, B, T, d.H, d.Hkv, d.dh,
               d.chunk, I.lo1, NULL, s->flags);
    k_attn_bwd_range(qf, b[KF], b[VF], b[ATT], b[LSE], b[D_ATT], db.dqf, db.dkf, db.dvf, db.dvec, B, T, d.H, d.Hkv,
                     d.dh, d.chunk, I.lo2, I.hi, s->flags);
    if (d.store)
        k_attn_bwd_list(b[QR], b[KR], b[VV], b[ATT], b[LSE], b[D_ATT], db.dq, db.dk, db.dv, B, T, d.H, d.Hkv, d.dh,
                        I.sel, I.mlo, I.mhi);
    if (!d.untied) k_add(db.dq, db.dq, db.dqf, (size_t)M * HD); /* Q~ = Q */
    if (d.theta > 0) { /* RoPE backward: rotate by −φ */
        real *cs = b[ROPE], *sn = cs + (size_t)T * (d.dh / 2);
        k_rope_apply(db.dq, HD, M, d.H, d.dh, I.pos, cs, sn, 1);
        k_rope_apply(db.dk, KD, M, d.Hkv, d.dh, I.pos, cs, sn, 1);
        k_rope_apply(db.dkf, KD, M, d.Hkv, d.dh, I.pos, cs, sn, 1);
        if (d.untied) k_rope_apply(db.dqf, HD, M, d.H, d.dh, I.pos, cs, sn, 1);
    }
    real *dq = db.dq, *dk = db.dk, *dkf = db.dkf, *dqf = db.dqf;
    if (d.qk) { /* through the per-head RMSNorm: gradients w.r.t. the projections */
        Pre pre = pre_of(b[PRE], &d, M), rs = rstd_of(b[RSTD], &d, M), dp = pre_of(db.dpre, &d, M);
        k_fill(db.dpre, (size_t)M * (2 * HD + 2 * KD), 0);
        k_rmsnorm_bwd(db.dq, pre.q, p[ix.qn], rs.q, dp.q, g[ix.qn], M * d.H, d.dh);
        k_rmsnorm_bwd(db.dk, pre.k, p[ix.kn], rs.k, dp.k, g[ix.kn], M * d.Hkv, d.dh);
        k_rmsnorm_bwd(db.dkf, pre.kf, p[ix.kn], rs.kf, dp.kf, g[ix.kn], M * d.Hkv, d.dh);
        if (d.untied) k_rmsnorm_bwd(db.dqf, pre.qf, p[ix.qn], rs.qf, dp.qf, g[ix.qn], M * d.H, d.dh);
        dq = dp.q, dk = dp.k, dkf = dp.kf, dqf = dp.qf;
    }
    int wk = d.untied ? ix.kf : ix.k, wv = d.untied ? ix.vf : ix.v;
    eid_gemm(1, 0, HD, D, M, 1, dq, HD, x, D, 1, g[ix.q], D);
    eid_gemm(1, 0, KD, D, M, 1, dk, KD, x, D, 1, g[ix.k], D);
    eid_gemm(1, 0, KD, D, M, 1, db.dv, KD, x, D, 1, g[ix.v], D);
    eid_gemm(1, 0, KD, D, M, 1, dkf, KD, b[F], D, 1, g[wk], D);
    eid_gemm(1, 0, KD, D, M, 1, db.dvf, KD, b[F], D, 1, g[wv], D);
    eid_gemm(0, 0, M, D, HD, 1, dq, HD, p[ix.q], D, 1, dx, D);
    eid_gemm(0, 0, M, D, KD, 1, dk, KD, p[ix.k], D, 1, dx, D);
    eid_gemm(0, 0, M, D, KD, 1, db.dv, KD, p[ix.v], D, 1, dx, D);
    if (d.untied) {
        eid_gemm(1, 0, HD, D, M, 1, dqf, HD, x, D, 1, g[ix.qf], D);
        eid_gemm(0, 0, M, D, HD, 1, dqf, HD, p[ix.qf], D, 1, dx, D);
    }
    /* into the SSM through its fading tokens */
    eid_gemm(0, 0, M, D, KD, 1, dkf, KD, p[wk], D, 0, b[D_F], D);
    eid_gemm(0, 0, M, D, KD, 1, db.dvf, KD, p[wv], D, 1, b[D_F], D);
    Layer *ssm = inner(l, INNER);
    layer_backward(ssm, b[D_F], dx, s);
    /* the predictor's own loss mean_t e_t (stop-gradient on K⁰ and F_{t−1}) */
    if (d.store && d.score == SC_PRED) {
        int n_real = 0;
        for (int i = 0; i < M; i++) n_real += !(s->flags && (s->flags[i] & FLAG_PAD));
        const uint8_t *skip = NULL;
        uint8_t *pad = NULL;
        if (s->flags) { /* PAD rows carry no loss */
            pad = (uint8_t *)I.scr; /* scratch free after forward */
            for (int i = 0; i < M; i++) pad[i] = (s->flags[i] & FLAG_PAD) != 0;
            skip = pad;
        }
        k_bmojo_score_dp(b[K0], KD, b[PRED], KD, M, KD, (real)(1.0 / (n_real ? n_real : 1)), skip, b[D_PRED]);
        eid_gemm(1, 0, KD, D, M, 1, b[D_PRED], KD, b[FPREV], D, 1, g[ix.innov], D);
    }
}

static size_t ssm_state(const LayerCfg *c, int D) {
    LayerCfg s;
    ssm_cfg(c, &s);
    const LayerOps *so = layer_find(s.mixer);
    so->resolve(&s, D);
    return so->state_size(&s, D);
}

static size_t bm_state_size(const LayerCfg *c, int D) {
    Dims d = dims_of(c, D);
    KBmojo k = kdims(&d);
    return ssm_state(c, D) + k_bmojo_state_size(&k); /* docs/layers.md §9 */
}

/* step buffers: q, qf [n, HD], k, v, kf, vf, k0 [n, KD], F, Fprev [n, D], pred [n, KD], e [n], att [n, HD],
 * pre [n, 2HD+2KD], rstd [n, 2H+2Hkv] */
typedef struct { real *q, *qf, *k, *v, *kf, *vf, *f, *fprev, *pred, *e, *att, *pre, *rstd; } SB;
static SB sbuf(const Layer *l, const Dims *d, int n) {
    real *b = l->buf[S_BUF];
    SB s;
    s.q = b, b += (size_t)n * d->HD;
    s.qf = b, b += (size_t)n * d->HD;
    s.k = b, b += (size_t)n * d->KD;
    s.v = b, b += (size_t)n * d->KD;
    s.kf = b, b += (size_t)n * d->KD;
    s.vf = b, b += (size_t)n * d->KD;
    s.f = b, b += (size_t)n * d->D;
    s.fprev = b, b += (size_t)n * d->D;
    s.pred = b, b += (size_t)n * d->KD;
    s.e = b, b += n;
    s.att = b, b += (size_t)n * d->HD;
    s.pre = b, b += (size_t)n * (2 * d->HD + 2 * d->KD);
    s.rstd = b;
    return s;
}

static void bm_plan_step(Layer *l, Arena *a, int nseq) {
    Dims d = dims(l);
    Inner tmp, *in = take_inner(l, a, &tmp);
    in->l.ops->plan_step(&in->l, a, 1); /* the SSM steps one sequence at a time: the state is sequence-major */
    l->buf[INNER_S] = in == &tmp ? NULL : (real *)in;
    l->buf[S_BUF] = arena_take(a, (size_t)nseq * (5 * d.HD + 7 * d.KD + 2 * d.D + 1 + 2 * d.H + 2 * d.Hkv) + 1);
    l->nseq = nseq;
}

/* The attention part over B rows × T tokens from the projections (shared by step and prefill):
 * the score of each token, then the rings and store token by token. */
static void attend_tokens(Layer *l, const Dims *d, real *state, const real *f, int B, int T, const uint8_t *flags,
                          real *q, real *qf, real *k, const real *v, real *kf, const real *vf, real *fprev, real *pred,
                          real *e, real *att) {
    size_t ss = bm_state_size(l->cfg, l->D), off = ssm_state(l->cfg, l->D);
    KBmojo kd = kdims(d);
    int M = B * T;
    if (d->store && d->score == SC_PRED) {
        Idx ix = idx_of(l->cfg, l->D, NULL);
        real *fs = k_bmojo_state_fprev(state + off, &kd);
        k_bmojo_shift_prev(f, flags, B, T, d->D, fs, ss, fprev);
        eid_gemm(0, 1, M, d->KD, d->D, 1, fprev, d->D, l->p[ix.innov], d->D, 0, pred, d->KD);
        k_bmojo_score(k, d->KD, pred, d->KD, M, d->KD, e);
    }
    k_bmojo_tokens(state, ss, off, &kd, B, T, flags, q, qf, k, v, kf, vf, d->store && d->score == SC_PRED ? e : NULL,
                   att);
}

static void bm_step(Layer *l, real *state, const real *x, real *out, int nseq) {
    Dims d = dims(l);
    SB s = sbuf(l, &d, nseq);
    size_t ss = bm_state_size(l->cfg, l->D);
    Idx ix = idx_of(l->cfg, l->D, NULL);
    Layer *ssm = inner(l, INNER_S);
    for (int i = 0; i < nseq; i++) ssm->ops->step(ssm, state + (size_t)i * ss, x + (size_t)i * d.D, s.f + (size_t)i * d.D, 1);
    real *qf = d.untied ? s.qf : s.q;
    project(l, &d, x, s.f, nseq, s.q, qf, s.k, s.v, s.kf, s.vf, s.pre, s.rstd);
    attend_tokens(l, &d, state, s.f, nseq, 1, NULL, s.q, qf, s.k, s.v, s.kf, s.vf, s.fprev, s.pred, s.e, s.att);
    eid_gemm(0, 1, nseq, d.D, d.HD, 1, s.att, d.HD, l->p[ix.o], d.HD, 0, out, d.D);
}

/* Prefill (layer.h): the SSM's own prefill per row (its state sits first in each row's), the
 * projections of the whole prompt in one product each, then the rings and the store token by token
 * (O(T·(3W + M)) like the parallel passes, and exactly the step's arithmetic). */
static void bm_prefill(Layer *l, real *state, const real *x, real *out, const SeqInfo *s) {
    Dims d = dims(l);
    int M = s->B * s->T, T = s->T;
    real **b = l->buf;
    size_t ss = bm_state_size(l->cfg, l->D);
    Idx ix = idx_of(l->cfg, l->D, NULL);
    Layer *ssm = inner(l, INNER);
    for (int r = 0; r < s->B; r++) {
        SeqInfo sr = {1, T, s->flags ? s->flags + (size_t)r * T : NULL};
        ssm->ops->prefill(ssm, state + (size_t)r * ss, x + (size_t)r * T * d.D, b[F] + (size_t)r * T * d.D, &sr);
    }
    real *qf = d.untied ? b[QF] : b[QR];
    project(l, &d, x, b[F], M, b[QR], qf, b[KR], b[VV], b[KF], b[VF], b[PRE], b[RSTD]);
    attend_tokens(l, &d, state, b[F], s->B, T, s->flags, b[QR], qf, b[KR], b[VV], b[KF], b[VF], b[FPREV], b[PRED],
                  b[E], b[ATT]);
    eid_gemm(0, 1, M, d.D, d.HD, 1, b[ATT], d.HD, l->p[ix.o], d.HD, 0, out, d.D);
}

/* docs/layers.md §9 [OURS]: B'MOJO-F 2·D·W + 4·D·W + SSM; bmojo + 2·D·M */
static double bm_zoology_state(const LayerCfg *c, int D, int L) {
    LayerCfg s;
    ssm_cfg(c, &s);
    const LayerOps *so = layer_find(s.mixer);
    so->resolve(&s, D);
    Dims d = dims_of(c, D);
    return 6.0 * D * c->window + so->zoology_state(&s, D, L) + (d.store ? 2.0 * D * d.M : 0);
}

#define BM_OPTIONS (LOPT_HEADS | LOPT_KV_HEADS | LOPT_WINDOW | LOPT_CHUNK | LOPT_ROPE | LOPT_D_STATE | LOPT_EXPAND | \
                    LOPT_HEADDIM | LOPT_D_CONV | LOPT_BMOJO)

const LayerOps bmojo_f_ops = {
    .name = "bmojo-f",
    .resolve = bm_resolve,
    .params = bm_params,
    .init_custom = bm_init_custom,
    .plan = bm_plan,
    .forward = bm_forward,
    .backward = bm_backward,
    .state_size = bm_state_size,
    .plan_step = bm_plan_step,
    .step = bm_step,
    .prefill = bm_prefill,
    .zoology_state = bm_zoology_state,
    .options = BM_OPTIONS,
};

const LayerOps bmojo_ops = {
    .name = "bmojo",
    .resolve = bm_resolve,
    .params = bm_params,
    .init_custom = bm_init_custom,
    .plan = bm_plan,
    .forward = bm_forward,
    .backward = bm_backward,
    .state_size = bm_state_size,
    .plan_step = bm_plan_step,
    .step = bm_step,
    .prefill = bm_prefill,
    .zoology_state = bm_zoology_state,
    .options = BM_OPTIONS | LOPT_STORE,
};
