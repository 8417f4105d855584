/* config.c — architecture validation and defaults. */
#include <stdlib.h>
#include <string.h>
#include "layers/layer.h"
#include "model/config.h"

int modelcfg_resolve(ModelCfg *c) {
    if (c->vocab_size < 2 || c->vocab_size > (1 << 24))
        return eid_error("config: vocab_size must be in [2, 16777216], got %d", c->vocab_size), -1;
    if (c->d_model < 1 || c->d_model > 65536)
        return eid_error("config: d_model must be in [1, 65536], got %d", c->d_model), -1;
    if (c->n_layer < 1 || c->n_layer > EID_MAX_LAYERS)
        return eid_error("config: n_layer must be in [1, %d], got %d", EID_MAX_LAYERS, c->n_layer), -1;
    if (!(c->norm_eps > 0)) c->norm_eps = 1e-5;
    if (c->max_pos < 0 || c->max_pos > (1 << 20))
        return eid_error("config: max_position_embeddings must be in [0, 1048576] (0 = none), got %d", c->max_pos), -1;
    for (int i = 0; i < c->n_layer; i++) {
        LayerCfg *l = &c->layer[i];
        const LayerOps *ops = layer_find(l->mixer);
        if (!ops)
            return eid_error("config: layer %d: unknown mixer '%s' (known: %s)", i, l->mixer, layer_names()), -1;
        if (ops->resolve(l, c->d_model) != 0 || mlp_ops.resolve(l, c->d_model) != 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", eid_last_error());
            return eid_error("config: layer %d: %s", i, msg), -1;
        }
        if (l->bidir != 0 && l->bidir != 1) return eid_error("config: layer %d: bidir must be 0 or 1, got %d", i, l->bidir), -1;
        if (l->bidir && !(ops->options & LOPT_BIDIR)) {
            char have[256] = "";
            for (int k = 0; k < layer_count(); k++)
                if (layer_at(k)->options & LOPT_BIDIR)
                    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", *have ? ", " : "", layer_at(k)->name);
            return eid_error("config: layer %d: mixer '%s' has no bidirectional form (bidir is for %s)", i, l->mixer,
                             have), -1;
        }
    }
    return 0;
}

int modelcfg_set_layers(ModelCfg *c, const char *list, int d_ff) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (n >= EID_MAX_LAYERS) return eid_error("--layers: at most %d layers", EID_MAX_LAYERS), -1;
        if (!layer_find(tok))
            return eid_error("--layers: unknown mixer '%s' (known: %s)", tok, layer_names()), -1;
        LayerCfg *l = &c->layer[n++];
        memset(l, 0, sizeof *l);
        snprintf(l->mixer, sizeof l->mixer, "%s", tok);
        l->d_ff = d_ff;
    }
    if (n == 0) return eid_error("--layers: expected a comma list of mixers (known: %s)", layer_names()), -1;
    c->n_layer = n;
    return 0;
}
