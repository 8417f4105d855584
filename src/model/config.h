/* config.h — model architecture: global sizes and a per-layer list (layers may differ in type and
 * size: hybrid stacks, StateX surgery). Serialised to/from config.json (io/config_json.c). */
#ifndef EIDETIC_CONFIG_H
#define EIDETIC_CONFIG_H

#include "layers/layer_cfg.h"

#define EID_MAX_LAYERS 64

typedef struct {
    int vocab_size, d_model, n_layer;
    int tie_embeddings; /* only tied heads are implemented (the spec's default) */
    double norm_eps;
    int max_pos; /* > 0: learned absolute positions P [max_pos, D] added to the embeddings (the Zoology
                  * attention baseline, docs/layers.md §0.3); sequences are then limited to max_pos tokens */
    LayerCfg layer[EID_MAX_LAYERS];
} ModelCfg;

/* Fill defaults and validate (every layer's resolve()). 0 ok, -1 with eid_error set. */
int modelcfg_resolve(ModelCfg *c);
/* "longhorn,longhorn" -> layers (d_ff applied to each). */
int modelcfg_set_layers(ModelCfg *c, const char *list, int d_ff);

#endif
