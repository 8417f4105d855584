/* registry.c — mixer names → implementations. A new mixer adds one line here.
 * References are strong: a mixer missing from the build is a link error, never a silently absent
 * name. */
#include <string.h>
#include "layers/layer.h"

extern const LayerOps longhorn_ops;
extern const LayerOps mamba_ops;
extern const LayerOps mamba2_ops;
extern const LayerOps gla_ops;
extern const LayerOps attn_ops;
extern const LayerOps swa_ops;
extern const LayerOps hawk_ops;
extern const LayerOps gated_ssm_ops;
extern const LayerOps bmojo_f_ops;
extern const LayerOps bmojo_ops;

static const LayerOps *const g_mixers[] = {
    &longhorn_ops, &mamba_ops, &mamba2_ops, &gla_ops, &attn_ops, &swa_ops, &hawk_ops, &gated_ssm_ops,
    &bmojo_f_ops,
    &bmojo_ops,
};
#define N_MIXERS (int)(sizeof g_mixers / sizeof g_mixers[0])

const LayerOps *layer_find(const char *name) {
    for (int i = 0; i < N_MIXERS; i++)
        if (strcmp(g_mixers[i]->name, name) == 0) return g_mixers[i];
    return NULL;
}

const char *layer_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < N_MIXERS; i++) {
            if (buf[0]) strcat(buf, ", ");
            strcat(buf, g_mixers[i]->name);
        }
    return buf;
}

int layer_count(void) { return N_MIXERS; }

const LayerOps *layer_at(int i) { return i >= 0 && i < N_MIXERS ? g_mixers[i] : NULL; }
