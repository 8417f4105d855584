/* registry.c — mixer names → implementations. A new mixer adds one line here.
 * Declarations are weak so that the registry links while a mixer is being written; an absent
 * mixer is simply not offered. */
#include <string.h>
#include "layers/layer.h"

extern const LayerOps longhorn_ops;
extern const LayerOps mamba_ops __attribute__((weak));
extern const LayerOps mamba2_ops __attribute__((weak));
extern const LayerOps gla_ops __attribute__((weak));
extern const LayerOps attn_ops __attribute__((weak));
extern const LayerOps swa_ops __attribute__((weak));

static const LayerOps *const g_mixers[] = {
    &longhorn_ops, &mamba_ops, &mamba2_ops, &gla_ops, &attn_ops, &swa_ops,
};
#define N_MIXERS (int)(sizeof g_mixers / sizeof g_mixers[0])

const LayerOps *layer_find(const char *name) {
    for (int i = 0; i < N_MIXERS; i++)
        if (g_mixers[i] && strcmp(g_mixers[i]->name, name) == 0) return g_mixers[i];
    return NULL;
}

const char *layer_names(void) {
    static char buf[256];
    if (!buf[0])
        for (int i = 0; i < N_MIXERS; i++) {
            if (!g_mixers[i]) continue;
            if (buf[0]) strcat(buf, ", ");
            strcat(buf, g_mixers[i]->name);
        }
    return buf;
}
