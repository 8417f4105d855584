/* hf_config.h — Hugging Face config.json (transformers' MambaConfig and Mamba2Config) mapped onto ModelCfg,
 * strictly: every published key is mapped, known harmless (docs/lm.md "Published checkpoints"), or
 * refused with an error naming the key and its value. */
#ifndef EIDETIC_HF_CONFIG_H
#define EIDETIC_HF_CONFIG_H
#include "model/config.h"

/* 1 if the JSON text is a Hugging Face config (has "model_type" or "architectures" and no "format") */
int hf_config_detect(const char *text);
/* Fill c (resolved); *tie = tie_word_embeddings. lenient: also admit unknown string metadata keys.
 * 0 or -1 + eid_error naming `where` and the key. */
int hf_config_from_json(const char *text, const char *where, ModelCfg *c, int *tie, int lenient);

#endif
