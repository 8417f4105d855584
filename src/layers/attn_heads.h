/* attn_heads.h — the attention head configuration that attn, swa and B'MOJO's layers share
 * (docs/layers.md §5.1 sizes): heads, head width, key/value heads and RoPE, defaulted and checked. */
#ifndef EIDETIC_ATTN_HEADS_H
#define EIDETIC_ATTN_HEADS_H
#include "core/common.h"
#include "layers/layer.h"

/* Defaults: one head per 64 channels (a count that divides D), head_dim = D / heads, as many
 * key/value heads as heads, θ = 10000. Returns -1 with an error naming the layer `nm`. */
static inline int attn_resolve_heads(LayerCfg *c, int D, const char *nm) {
    if (!c->num_heads) {
        if (c->head_dim > 0) c->num_heads = EID_MAX(1, D / c->head_dim);
        else {
            int h = D < 64 ? 1 : D / 64;
            while (h > 1 && D % h) h--; /* a head count that divides D */
            c->num_heads = h;
        }
    }
    if (c->num_heads < 1 || c->num_heads > 1024)
        return eid_error("%s: num_heads must be in [1, 1024], got %d", nm, c->num_heads), -1;
    if (!c->head_dim) {
        if (D % c->num_heads)
            return eid_error("%s: d_model %d must be divisible by num_heads %d (or set head_dim)", nm, D, c->num_heads), -1;
        c->head_dim = D / c->num_heads;
    }
    if (c->head_dim < 2 || c->head_dim > 4096 || c->head_dim % 2)
        return eid_error("%s: head_dim must be even (RoPE) and in [2, 4096], got %d", nm, c->head_dim), -1;
    if (!c->num_kv_heads) c->num_kv_heads = c->num_heads;
    if (c->num_kv_heads < 1 || c->num_kv_heads > c->num_heads || c->num_heads % c->num_kv_heads)
        return eid_error("%s: num_kv_heads must divide num_heads %d, got %d", nm, c->num_heads, c->num_kv_heads), -1;
    if (c->rope_theta == 0) c->rope_theta = 10000;
    if (!(c->rope_theta > 1)) return eid_error("%s: rope_theta must be > 1, got %g", nm, c->rope_theta), -1;
    if (c->no_rope != 0 && c->no_rope != 1) return eid_error("%s: no_rope must be 0 or 1, got %d", nm, c->no_rope), -1;
    return 0;
}
#endif
