/* bench/plan_memory.c — the activation memory a training step plans, per mixer, in fp32, in bf16 with
 * fp32 saved activations and in bf16 with bf16 saved activations (act16), without running anything
 * (docs/performance.md "Memory"). Config B-d512 by default: L blocks of the mixer + SwiGLU MLP, d 512,
 * d_ff 1 376, vocab 8 192, seq 1 024, batch 4, every position labelled.
 *   make build/bench/plan_memory && build/bench/plan_memory [LAYERS [MIXER,...]]
 * Columns: kept MB (what forwards save for backwards), scratch MB (the zone all sublayers share),
 * total. The numbers are exact plan sizes: they do not depend on the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "layers/layer.h"
#include "model/model.h"

enum { D = 512, F = 1376, V = 8192, B = 4, T = 1024 };

typedef struct { double kept, zone; } Plan;

static Plan plan_of(Model *m, int act16_off) {
    m->act16_off = act16_off;
    Model *r = model_new_replica(m); /* measured only: nothing is allocated */
    r->measure_only = 1;
    if (model_plan(r, B, T, B * T) != 0) { fprintf(stderr, "plan_memory: %s\n", eid_last_error()); exit(1); }
    Plan p = {r->act.used / 1e6, (double)(arena_bytes(&r->act) - r->act.used) / 1e6};
    model_free(r);
    return p;
}

static void row(const char *mixer, int L) {
    char layers[512] = "";
    for (int i = 0; i < L; i++) snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%s", i ? "," : "", mixer);
    ModelCfg c;
    memset(&c, 0, sizeof c);
    c.vocab_size = V, c.d_model = D, c.norm_eps = 1e-5;
    if (modelcfg_set_layers(&c, layers, F) != 0) { fprintf(stderr, "plan_memory: %s\n", eid_last_error()); exit(1); }
    Model *m = model_new(&c);
    if (!m) { fprintf(stderr, "plan_memory: %s\n", eid_last_error()); exit(1); }
    eid_set_precision(EID_PREC_FP32, 0);
    Plan p32 = plan_of(m, 0);
    if (eid_set_precision(EID_PREC_BF16, 0) != EID_PREC_BF16) { fprintf(stderr, "plan_memory: no bf16 mode\n"); exit(1); }
    Plan p16off = plan_of(m, 1), p16 = plan_of(m, 0);
    printf("| %s | %d | %.0f + %.0f = %.0f | %.0f + %.0f = %.0f | %.0f + %.0f = %.0f | %+.1f %% |\n", mixer, L, p32.kept,
           p32.zone, p32.kept + p32.zone, p16off.kept, p16off.zone, p16off.kept + p16off.zone, p16.kept, p16.zone,
           p16.kept + p16.zone, 100 * ((p16.kept + p16.zone) / (p16off.kept + p16off.zone) - 1));
    model_free(m);
}

int main(int argc, char **argv) {
    int L = argc > 1 ? atoi(argv[1]) : 4;
    const char *mixers = argc > 2 ? argv[2] : NULL;
    if (L < 1) { fprintf(stderr, "usage: plan_memory [LAYERS [MIXER,...]]\n"); return 2; }
    setenv("EIDETIC_BF16_EMULATE", "1", 0); /* planning only: bf16 mode is needed, not bf16 hardware */
    eid_runtime_setup(2, 0);
    printf("| mixer | blocks | fp32: kept + scratch = MB | bf16, fp32 saved | bf16, act16 | act16 vs fp32 saved |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < layer_count(); i++) {
        const char *name = layer_at(i)->name;
        if (mixers) {
            char buf[256];
            snprintf(buf, sizeof buf, ",%s,", mixers);
            char key[64];
            snprintf(key, sizeof key, ",%s,", name);
            if (!strstr(buf, key)) continue;
        }
        row(name, L);
    }
    return 0;
}
