/* hf_config.h — Hugging Face config.json (transformers' MambaConfig and Mamba2Config, fla-hub's GLAConfig) mapped onto ModelCfg,
 * strictly: every published key is mapped, known harmless (docs/lm.md "Published checkpoints"), or
 * refused with an error naming the key and its value. */
#ifndef EIDETIC_HF_CONFIG_H
#define EIDETIC_HF_CONFIG_H
#include <stddef.h>
#include "model/config.h"

/* 1 if the JSON text is a Hugging Face config (has "model_type" or "architectures" and no "format") */
int hf_config_detect(const char *text);
/* Fill c (resolved); *tie = tie_word_embeddings. lenient: also admit unknown string metadata keys.
 * 0 or -1 + eid_error naming `where` and the key. */
int hf_config_from_json(const char *text, const char *where, ModelCfg *c, int *tie, int lenient);

/* How a checkpoint of that config names eidetic's parameters. */
typedef struct {
    int kind;         /* HF_MAMBA, HF_MAMBA2 or HF_GLA */
    int fused_g_norm; /* GLA, fuse_norm true: the output norm is attn.g_norm_swish_gate.weight */
} HfNaming;
enum { HF_MAMBA = 1, HF_MAMBA2 = 2, HF_GLA = 3 };
int hf_config_from_json_ex(const char *text, const char *where, ModelCfg *c, int *tie, int lenient, HfNaming *nm);
/* The name under which eidetic parameter `name` (backbone.layers.0.mixer.q_proj.weight, ...) is
 * stored in such a checkpoint: unchanged for Mamba / Mamba-2 (transformers' names are eidetic's),
 * fla's for GLA (model.layers.0.attn.q_proj.weight, ...). out holds cap bytes. */
void hf_tensor_name(const HfNaming *nm, const char *name, char *out, size_t cap);

#endif
