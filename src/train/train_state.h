/* train_state.h — training_state.safetensors: the AdamW moments of every parameter tensor
 * ("optimizer.exp_avg.NAME", "optimizer.exp_avg_sq.NAME") and the metadata a bit-exact resume
 * needs (step, optimizer step count, data cursor, seed, the resolved training config and the byte
 * length of metrics.jsonl at this step). docs/reliability.md "Crash-safe training". */
#ifndef EIDETIC_TRAIN_STATE_H
#define EIDETIC_TRAIN_STATE_H
#include <stdint.h>
#include "model/model.h"
#include "train/optim.h"
#include "train/train_cfg.h"

typedef struct {
    long step, adam_t;
    uint64_t cursor;
    long long metrics_bytes; /* -1: not recorded (run directories written before this field) */
} TrainState;

/* Write DIR/training_state.safetensors (atomically). -1 + eid_error. */
int train_state_save(const char *dir, const TrainCfg *c, const Model *m, const AdamW *o, const TrainState *s);
/* Read the state at PATH for model m into o (allocated here) and s. Everything is validated and
 * errors name the file and the tensor or key: missing or non-integer metadata, missing tensors,
 * wrong shapes, NaN/Inf moments, negative second moments. Tensors master.NAME (a run saved with
 * --save-dtype bf16) are the exact fp32 weights: they overwrite m's, which came rounded from the BF16
 * model file. -1 + eid_error, o left freed. */
int train_state_load(const char *path, Model *m, AdamW *o, TrainState *s);
/* Index of the first parameter tensor of m whose values in x (laid out like m->w) are not all
 * finite, or -1. Used for weights, gradients and moments. */
int train_first_nonfinite(const Model *m, const real *x);

#endif
