/* config.h — model architecture: global sizes and a per-layer list (layers may differ in type and
 * size: hybrid stacks, StateX surgery). Serialised to/from config.json (io/config_json.c). */
#ifndef EIDETIC_CONFIG_H
#define EIDETIC_CONFIG_H

#include <stdint.h>
#include "layers/layer_cfg.h"

#define EID_MAX_LAYERS 64

/* How a StateX surgery made this model (docs/statex.md §7); kept in config.json as "statex". */
typedef struct {
    int present;
    char source[512];   /* the source checkpoint directory */
    char method[8];     /* reinit | inherit | zero */
    int merge_heads;    /* GLA H' (0 = not used) */
    int state_mult;     /* Mamba-2 / Longhorn k (0 = not used) */
    int keep_resets;    /* 1: the resets were skipped */
    char k_scale[8];    /* Longhorn reinit: match | none ("" = not used) */
    uint64_t seed;
    int n;              /* expanded blocks, ascending */
    int layer[EID_MAX_LAYERS];
    long before_state[EID_MAX_LAYERS], before_params[EID_MAX_LAYERS]; /* each one's mixer state floats and parameters before */
} StatexRecord;

typedef struct {
    int vocab_size, d_model, n_layer;
    int tie_embeddings; /* only tied heads are implemented (the spec's default) */
    double norm_eps;
    int max_pos; /* > 0: learned absolute positions P [max_pos, D] added to the embeddings (the Zoology
                  * attention baseline, docs/layers.md §0.3); sequences are then limited to max_pos tokens */
    LayerCfg layer[EID_MAX_LAYERS];
    StatexRecord statex;
} ModelCfg;

/* Fill defaults and validate (every layer's resolve()). 0 ok, -1 with eid_error set. */
int modelcfg_resolve(ModelCfg *c);
/* "longhorn,longhorn" -> layers (d_ff applied to each). */
int modelcfg_set_layers(ModelCfg *c, const char *list, int d_ff);

#endif
