/* bidir.h — Birdie bidirectional layers, shared by every scan / chunked mixer (docs/layers.md §8).
 * A bidirectional layer runs the upper half of its state indices (channels or heads) right to left
 * over each prompt; the kernels do it given rev_from (the first reversed index) and the flags, cutting
 * at CAUSAL tokens, so a layer only picks rev_from and clears the reverse half before a decode step. */
#ifndef EIDETIC_BIDIR_H
#define EIDETIC_BIDIR_H
#include "kernels/kernels.h"
#include "layers/layer_cfg.h"

/* First reversed index of `count` (docs/layers.md §8.2: indices with 2·idx >= count); count when the
 * layer is causal, i.e. nothing reversed. */
static inline int bidir_rev_from(const LayerCfg *c, int count) { return c->bidir ? (count + 1) / 2 : count; }

/* Decoding runs in the causal region, where the reverse half is stateless (S_r[t] = b_t, §8.4): zero it
 * before a step so the step's recurrence writes exactly b_t. state [nseq, ldS]; the reverse half is
 * `len` floats at offset `off` of each row. The carried state is therefore the forward half only. */
static inline void bidir_step_clear(real *state, size_t ldS, int nseq, size_t off, size_t len) {
    if (len) k_zero(state + off, (int)ldS, nseq, (int)len);
}

#endif
