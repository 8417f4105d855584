/* fuzz_config.c — libFuzzer harness for config.json (docs/reliability.md "Fuzzing"): the bytes are
 * the file's text; config_from_json_ex resolves it (strict, then lenient) exactly as a checkpoint
 * load does, and what passes and is small gets a model (model_new) and one short forward pass, so
 * configurations that validate but break a layer are found too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/checkpoint.h"
#include "model/model.h"

static int small(const ModelCfg *c) {
    if (c->vocab_size > 512 || c->d_model > 64 || c->n_layer > 4 || c->max_pos > 64) return 0;
    for (int i = 0; i < c->n_layer; i++) {
        const LayerCfg *l = &c->layer[i];
        int v[] = {l->d_ff, l->expand, l->d_state, l->d_conv, l->dt_rank, l->num_heads, l->num_kv_heads, l->head_dim,
                   l->headdim, l->ngroups, l->window, l->gate_low_rank_dim, l->max_len};
        for (size_t k = 0; k < sizeof v / sizeof *v; k++)
            if (v[k] > 128) return 0;
        if (l->chunk > 256 || l->expand_k > 4 || l->expand_v > 4) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    ModelCfg c;
    int rc = config_from_json_ex(text, "config.json", &c, 0);
    if (rc != 0) rc = config_from_json_ex(text, "config.json", &c, 1);
    free(text);
    if (rc != 0 || !small(&c)) return 0;
    Model *m = model_new(&c);
    if (!m) return 0;
    enum { T = 5 };
    int tok[T];
    for (int t = 0; t < T; t++) tok[t] = (int)(size * 31u + (unsigned)t * 7u) % c.vocab_size;
    if (model_plan(m, 1, T, T) == 0) {
        model_trunk_forward(m, tok, NULL, 1, T);
        real *logits = malloc(sizeof(real) * (size_t)T * c.vocab_size);
        model_logits_all(m, logits);
        free(logits);
    }
    model_free(m);
    return 0;
}
