/* config.h — model architecture: global sizes and a per-layer list (layers may differ in type and
 * size: hybrid stacks, StateX surgery). Serialised to/from config.json (io/config_json.c). */
#ifndef EIDETIC_CONFIG_H
#define EIDETIC_CONFIG_H

#define EID_MAX_LAYERS 64
#define EID_NAME_LEN 16

typedef struct {
    char mixer[EID_NAME_LEN]; /* "longhorn", ... (layers/registry.c) */
    int d_ff;                 /* SwiGLU hidden size of this block's MLP; 0 = no MLP */
    /* mixer size fields; 0 = the mixer's default (filled in by its resolve()) */
    int expand, d_state, d_conv, dt_rank;
    int num_heads, num_kv_heads, head_dim, headdim, ngroups, window, gate_low_rank_dim;
    double expand_k, expand_v;
    double rope_theta;            /* attention RoPE base (10000) */
    int no_rope;                  /* attention without RoPE (the Zoology Fig. 2 baseline, layers.md §5.2) */
    double gate_logit_normalizer; /* GLA τ (16) */
    int max_len;                  /* full attention: decode KV-cache capacity in tokens */
    int chunk; /* scan chunk length for saved states / chunked forms (default 64) */
} LayerCfg;

typedef struct {
    int vocab_size, d_model, n_layer;
    int tie_embeddings; /* only tied heads are implemented (the spec's default) */
    double norm_eps;
    int max_pos; /* > 0: learned absolute positions P [max_pos, D] added to the embeddings (the Zoology
                  * attention baseline, layers.md §0.3); sequences are then limited to max_pos tokens */
    LayerCfg layer[EID_MAX_LAYERS];
} ModelCfg;

/* Fill defaults and validate (every layer's resolve()). 0 ok, -1 with eid_error set. */
int modelcfg_resolve(ModelCfg *c);
/* "longhorn,longhorn" -> layers (d_ff applied to each). */
int modelcfg_set_layers(ModelCfg *c, const char *list, int d_ff);

#endif
