/* checkpoint.h — a checkpoint is a directory:
 *   config.json              the architecture (global sizes + per-layer list), docs/layers.md §0.2
 *   model.safetensors        weights, Hugging Face tensor names
 *   training_state.safetensors  (training runs) AdamW moments per tensor + metadata: step, data
 *                            cursor, RNG key, the resolved training config
 * Each file is written atomically; model and training state carry the same "step" metadata and a
 * mismatch is rejected on resume. */
#ifndef EIDETIC_CHECKPOINT_H
#define EIDETIC_CHECKPOINT_H
#include "model/model.h"

int config_to_json(const ModelCfg *c, char **out);                   /* malloc'd string */
int config_from_json(const char *text, const char *where, ModelCfg *c); /* -1 + eid_error */
int config_load(const char *path, ModelCfg *c);
/* lenient = 1 (--lenient): unknown top-level config.json keys holding string metadata are skipped */
int config_from_json_ex(const char *text, const char *where, ModelCfg *c, int lenient);
int config_load_ex(const char *path, ModelCfg *c, int lenient);

int ckpt_save_model(const Model *m, const char *dir, long step);   /* config.json + model.safetensors */
/* The same with the weights stored as BF16 when bf16 != 0 (--save-dtype bf16: half the bytes; loading
 * widens them back to fp32 exactly). The fp32 master weights are then the training state's. */
int ckpt_save_model_dtype(const Model *m, const char *dir, long step, int bf16);
Model *ckpt_load_model(const char *dir, long *step);               /* NULL + eid_error; strict */
Model *ckpt_load_model_ex(const char *dir, long *step, int lenient);
int ckpt_dir_exists(const char *dir);
int ensure_dir(const char *dir);

#endif
