/* registry.c — mixer names → implementations. A new mixer adds one line here. */
#include <string.h>
#include "layers/layer.h"

extern const LayerOps longhorn_ops;

static const LayerOps *const g_mixers[] = {
    &longhorn_ops,
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
            if (i) strcat(buf, ", ");
            strcat(buf, g_mixers[i]->name);
        }
    return buf;
}
