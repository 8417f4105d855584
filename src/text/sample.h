/* sample.h — choosing the next token from a row of logits (docs/lm.md "Generating text").
 *
 * Order of operations, each optional:
 *   1. repetition penalty (CTRL, Keskar et al. 2019): for every distinct token already in the
 *      context, a positive logit is divided by the penalty and a negative one multiplied by it;
 *   2. temperature 0 → greedy: the argmax (ties → the lowest id); otherwise logits / T;
 *   3. top-k: keep the k largest (ties broken by the lower id, so the kept set is deterministic);
 *   4. top-p: of the softmax over what is kept, the smallest prefix (most likely first) whose mass
 *      reaches p;
 *   5. renormalise and draw one token with the given Rng (same seed → same tokens).
 * Errors: sampler_new returns NULL + eid_error for a bad configuration. */
#ifndef EIDETIC_SAMPLE_H
#define EIDETIC_SAMPLE_H
#include "core/common.h"
#include "core/rng.h"

typedef struct {
    double temperature; /* 0 = greedy */
    int top_k;          /* 0 = off */
    double top_p;       /* (0, 1]; 1 = off */
    double rep_penalty; /* >= 1; 1 = off */
} SampleCfg;

typedef struct {
    SampleCfg cfg;
    int V;
    double *logit;       /* [V] penalised, temperature-scaled logits */
    int *order;          /* [V] candidate ids, most likely first */
    double *prob;        /* [V] probabilities of order[0..n) after sampler_dist */
    unsigned char *seen; /* [V] scratch for the penalty */
} Sampler;

Sampler *sampler_new(const SampleCfg *cfg, int V);
void sampler_free(Sampler *s);
/* The distribution the next token is drawn from: returns n ≥ 1, with s->order[0..n) the candidate
 * ids (most likely first) and s->prob[0..n) their probabilities (summing to 1). ctx[0..nctx) are
 * the tokens already in the context (for the penalty; ids outside [0, V) are ignored). */
int sampler_dist(Sampler *s, const real *logits, const int *ctx, int nctx);
/* One draw from sampler_dist's distribution. */
int sampler_pick(Sampler *s, const real *logits, const int *ctx, int nctx, Rng *r);
#endif
