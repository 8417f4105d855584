/* seq.h — how a batch of sequences is described to kernels and layers: per-token flags and the
 * (B, T) shape. Lives with the kernels (the lowest layer that reads flags); layers and the model
 * include it from here. docs/layers.md §0.6. */
#ifndef EIDETIC_SEQ_H
#define EIDETIC_SEQ_H
#include <stdint.h>

/* Per-token flags (one byte per token):
 *   SEG_START  a new segment starts here: every recurrence and conv resets before this token;
 *   CAUSAL     this token is in the causal (generated / answer) region; tokens without it belong to
 *              a prompt that bidirectional layers may read in both directions (Birdie, docs/layers.md §8);
 *   PAD        not a token: changes no state, carries no label, its output is ignored. */
enum { FLAG_SEG_START = 1, FLAG_CAUSAL = 2, FLAG_PAD = 4 };

typedef struct {
    int B, T;
    const uint8_t *flags; /* [B*T] or NULL (one segment per row, no padding, all CAUSAL) */
} SeqInfo;

#endif
