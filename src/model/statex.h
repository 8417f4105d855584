/* statex.h — StateX post-training state expansion of a trained model (docs/statex.md): pick blocks,
 * let each selected mixer's LayerOps.expand() build its larger-state replacement, copy everything
 * else. Knows nothing about any mixer's tensors. */
#ifndef EIDETIC_MODEL_STATEX_H
#define EIDETIC_MODEL_STATEX_H
#include "model/model.h"

typedef struct {
    StatexReq req;        /* method and sizes; the surgery fills the calibration fields */
    int every;            /* > 0: expand blocks i with i % every == 0 (docs/statex.md §1) */
    int n_list, list[EID_MAX_LAYERS]; /* else: these blocks (any order, no repeats) */
    uint64_t seed;        /* fresh draws (one stream per block) and the calibration tokens */
    char source[512];     /* recorded in the result's statex record */
    int calib_batch, calib_len; /* calibration batch (0: 4 × 128) */
    const int *calib_tokens;    /* its tokens [calib_batch · calib_len]; NULL: uniform random from seed */
} StatexPlan;

/* A new model: src with the selected blocks expanded, its cfg.statex record filled. src is only
 * read (its activations may be planned for the calibration pass). NULL + eid_error naming the
 * layer and the option on an impossible request. */
Model *statex_expand(Model *src, const StatexPlan *p);

/* Mixer names that have a StateX method, "gla, mamba2, longhorn", for messages. */
const char *statex_mixers(void);

#endif
