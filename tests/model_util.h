/* model_util.h — small helpers shared by the model-level tests. */
#ifndef EIDETIC_MODEL_UTIL_H
#define EIDETIC_MODEL_UTIL_H
#include "core/rng.h"
#include "model/model.h"
#include "testutil.h"

/* A tiny model: layers = comma list, d_ff per layer (0 = none). chunk > 0 overrides every layer's chunk.
 * A "pos:" prefix ("pos:attn,swa") adds 200 learned absolute positions and turns RoPE off in the
 * attention layers (the Zoology Fig. 2 attention baseline). */
static Model *tiny_model(const char *layers, int V, int D, int d_ff, int tied, int chunk, uint64_t seed) {
    ModelCfg c;
    memset(&c, 0, sizeof c);
    c.vocab_size = V, c.d_model = D, c.tie_embeddings = tied, c.norm_eps = 1e-5;
    int learned_pos = !strncmp(layers, "pos:", 4);
    if (learned_pos) layers += 4, c.max_pos = 200;
    if (modelcfg_set_layers(&c, layers, d_ff) != 0) { fprintf(stderr, "%s\n", eid_last_error()); exit(2); }
    for (int i = 0; i < c.n_layer; i++) {
        c.layer[i].chunk = chunk;
        if (learned_pos && (!strcmp(c.layer[i].mixer, "attn") || !strcmp(c.layer[i].mixer, "swa"))) c.layer[i].no_rope = 1;
        if (!strcmp(c.layer[i].mixer, "swa")) c.layer[i].window = 5;
        if (!strcmp(c.layer[i].mixer, "longhorn") || !strcmp(c.layer[i].mixer, "mamba")) c.layer[i].d_state = 4;
    }
    Model *m = model_new(&c);
    if (!m) { fprintf(stderr, "model_new: %s\n", eid_last_error()); exit(2); }
    model_init_params(m, seed);
    /* perturb every tensor so that zero/one inits (biases, norms, D) do not hide gradient terms */
    Rng r;
    rng_init(&r, seed + 1, 0);
    for (int j = 0; j < m->nparam; j++)
        for (size_t i = 0; i < m->param[j].numel; i++) m->w[m->param[j].offset + i] += (real)(0.1 * (2 * rng_uniform(&r) - 1));
    return m;
}

static inline void rand_tokens(int *t, size_t n, int V, uint64_t seed) {
    Rng r;
    rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++) t[i] = (int)rng_below(&r, V);
}

#endif
