/* fuzz_hf_config.c — libFuzzer harness for Hugging Face config.json (io/hf_config.h, docs/lm.md
 * "Published checkpoints"; Mamba, Mamba-2 and fla GLA): the bytes are the file's text; detection and the strict, then lenient,
 * mapping run exactly as a checkpoint load does, and a small result gets a model and one forward pass. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/hf_config.h"
#include "model/model.h"

static int small(const ModelCfg *c) {
    if (c->vocab_size > 512 || c->d_model > 64 || c->n_layer > 4) return 0;
    const LayerCfg *l = &c->layer[0];
    return l->expand <= 4 && l->d_state <= 64 && l->d_conv <= 16 && l->dt_rank <= 64 && l->d_ff <= 1024 &&
           l->expand_k <= 4 && l->expand_v <= 4 && l->gate_low_rank_dim <= 64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    ModelCfg c;
    int tie = 1;
    (void)hf_config_detect(text);
    int rc = hf_config_from_json(text, "config.json", &c, &tie, 0);
    if (rc != 0) rc = hf_config_from_json(text, "config.json", &c, &tie, 1);
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
