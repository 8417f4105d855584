/* statex.c — StateX surgery over a whole model (docs/statex.md §1, §7). Selection, bookkeeping and
 * the copy of every tensor outside the selected mixers live here; each mixer's own expand() hook
 * (LayerOps.expand) builds its replacement, so nothing here knows a mixer's tensor layout. */
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "kernels/kernels.h"
#include "kernels/model_ops.h"
#include "layers/statex_util.h"
#include "model/statex.h"

const char *statex_mixers(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < layer_count(); i++)
            if (layer_at(i)->expand) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "", layer_at(i)->name);
    return buf;
}

/* the sublayer index of block i's mixer (each block's mixer comes before its MLP) */
static int mixer_sub(const Model *m, int blk) {
    for (int s = 0; s < m->n_sub; s++)
        if (m->sub_block[s] == blk && m->sub[s].op.ops != &mlp_ops) return s;
    return -1;
}

/* parameters of a sublayer's mixer (without its pre-norm) */
static long mixer_params(const Model *m, int s) {
    long n = 0;
    for (int j = 0; j < m->nparam; j++)
        if (m->param[j].owner == &m->sub[s].op) n += (long)m->param[j].numel;
    return n;
}

/* The selected blocks as a sorted list: every N (i % N == 0), or the given list checked for range and
 * repeats. */
static int select_blocks(const StatexPlan *p, int n_layer, int *sel) {
    int n = 0;
    if (p->every > 0) {
        for (int i = 0; i < n_layer; i += p->every) sel[n++] = i;
        return n;
    }
    if (p->every < 0) return eid_error("--every: must be >= 1, got %d", p->every), -1;
    if (p->n_list < 1) return eid_error("statex: no layers selected (give --every N or --layers LIST)"), -1;
    int seen[EID_MAX_LAYERS] = {0};
    for (int k = 0; k < p->n_list; k++) {
        int i = p->list[k];
        if (i < 0 || i >= n_layer)
            return eid_error("--layers: layer index %d out of range (the model has %d layers: 0..%d)", i, n_layer,
                             n_layer - 1), -1;
        if (seen[i]++) return eid_error("--layers: layer %d listed twice", i), -1;
    }
    for (int i = 0; i < n_layer; i++)
        if (seen[i]) sel[n++] = i;
    return n;
}

Model *statex_expand(Model *src, const StatexPlan *p) {
    const ModelCfg *sc = &src->cfg;
    int D = sc->d_model, sel[EID_MAX_LAYERS], ns = select_blocks(p, sc->n_layer, sel);
    if (ns < 0) return NULL;
    int has_mlp = 0;
    for (int i = 0; i < sc->n_layer; i++) has_mlp |= sc->layer[i].d_ff > 0;
    int n_res = (has_mlp ? 2 : 1) * sc->n_layer; /* as model_new: residual rescale, docs/layers.md §0.4 */
    /* phase 1: the new configuration, every request checked before anything is allocated */
    ModelCfg dc = *sc;
    unsigned used = 0, outs[EID_MAX_LAYERS];
    for (int k = 0; k < ns; k++) {
        int i = sel[k];
        const LayerOps *ops = layer_find(sc->layer[i].mixer);
        if (!ops->expand)
            return eid_error("layer %d (%s): this mixer has no StateX method (mixers with one: %s)", i, ops->name,
                             statex_mixers()), NULL;
        if (ops->expand(&sc->layer[i], &dc.layer[i], D, n_res, &p->req, NULL, NULL, NULL, &outs[k]) != 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", eid_last_error());
            return eid_error("layer %d: %s", i, msg), NULL;
        }
        used |= outs[k];
    }
    if (p->req.merge_heads && !(used & SX_OUT_USES_MERGE_HEADS))
        return eid_error("--merge-heads: no selected layer merges heads (StateX mixers: %s)", statex_mixers()), NULL;
    if (p->req.state_mult && !(used & SX_OUT_USES_STATE_MULT))
        return eid_error("--state-mult: no selected layer has a state multiplier (StateX mixers: %s)", statex_mixers()), NULL;
    if (p->req.k_scale_none && !(used & SX_OUT_USES_K_SCALE))
        return eid_error("--k-scale: no selected layer draws fresh keys (only a Longhorn layer with --method reinit does)"), NULL;
    StatexRecord *rec = &dc.statex;
    memset(rec, 0, sizeof *rec);
    rec->present = 1;
    snprintf(rec->source, sizeof rec->source, "%s", p->source);
    snprintf(rec->method, sizeof rec->method, "%s", sx_method_name(p->req.method));
    rec->merge_heads = (used & SX_OUT_USES_MERGE_HEADS) ? p->req.merge_heads : 0;
    rec->state_mult = (used & SX_OUT_USES_STATE_MULT) ? p->req.state_mult : 0;
    rec->keep_resets = p->req.keep_resets;
    if (used & SX_OUT_USES_K_SCALE) snprintf(rec->k_scale, sizeof rec->k_scale, "%s", p->req.k_scale_none ? "none" : "match");
    rec->seed = p->seed;
    rec->n = ns;
    for (int k = 0; k < ns; k++) {
        int s = mixer_sub(src, sel[k]);
        rec->layer[k] = sel[k];
        rec->before_state[k] = (long)model_state_floats(src, s);
        rec->before_params[k] = mixer_params(src, s);
    }
    Model *dst = model_new(&dc);
    if (!dst) return NULL;
    /* phase 2: everything outside the selected mixers is copied (same names, same order) */
    if (dst->nparam != src->nparam) eid_fatal("statex: parameter tables differ in length");
    for (int j = 0; j < dst->nparam; j++) {
        const ParamEntry *a = &src->param[j], *b = &dst->param[j];
        if (strcmp(a->name, b->name)) eid_fatal("statex: parameter %d is '%s' here, '%s' there", j, a->name, b->name);
        int expanded = 0;
        for (int k = 0; k < ns; k++) expanded |= b->owner && b->layer == sel[k] && b->owner->ops != &mlp_ops;
        if (expanded) continue;
        if (a->numel != b->numel) eid_fatal("statex: '%s' changed size outside an expanded mixer", b->name);
        k_copy(src->w + a->offset, 0, dst->w + b->offset, 0, 1, (int)a->numel);
    }
    /* calibration pass (only when a hook asks): each selected mixer's normed input on random tokens */
    unsigned need = 0;
    for (int k = 0; k < ns; k++) need |= outs[k] & SX_OUT_NEEDS_CALIB;
    int B = p->calib_batch > 0 ? p->calib_batch : 4, T = p->calib_len > 0 ? p->calib_len : 128;
    if (sc->max_pos > 0 && T > sc->max_pos && !p->calib_tokens) T = sc->max_pos;
    SeqInfo si = {B, T, NULL};
    int *tok = NULL;
    if (need) {
        tok = eid_xmalloc(sizeof(int) * (size_t)B * T);
        Rng r;
        rng_init(&r, rng_derive(p->seed, 0x5ca1), 0);
        for (size_t i = 0; i < (size_t)B * T; i++) tok[i] = p->calib_tokens ? p->calib_tokens[i] : (int)rng_below(&r, sc->vocab_size);
        if (model_check_tokens(src, tok, (size_t)B * T, "statex calibration") != 0) return free(tok), model_free(dst), NULL;
        if (model_plan(src, B, T, 1) != 0) return free(tok), model_free(dst), NULL;
        model_trunk_forward(src, tok, NULL, B, T);
    }
    /* phase 3: each selected mixer fills its own parameters */
    for (int k = 0; k < ns; k++) {
        int i = sel[k], s = mixer_sub(src, i);
        StatexReq q = p->req;
        if (need) { /* the mixer's normed input, as the forward made it (the model keeps one at a time) */
            model_norm_input(src, s, (size_t)B * T);
            q.calib = src->normed, q.calib_seq = &si;
        }
        Rng r;
        rng_init(&r, rng_derive(p->seed, 0x5000 + (uint64_t)i), 0); /* one stream per block */
        unsigned out = 0;
        const LayerOps *ops = src->sub[s].op.ops;
        if (ops->expand(&sc->layer[i], &dst->cfg.layer[i], D, n_res, &q, src->sub[s].op.p, dst->sub[s].op.p, &r, &out) != 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", eid_last_error());
            free(tok), model_free(dst);
            return eid_error("layer %d: %s", i, msg), NULL;
        }
        if (out & SX_OUT_RESET_PRENORM) k_fill(dst->sub[s].norm_w, (size_t)D, 1);
    }
    free(tok);
    return dst;
}
