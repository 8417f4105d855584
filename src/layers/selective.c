/* selective.c — shared size resolution of the Mamba-1 / Longhorn block. */
#include "layers/selective.h"
#include "core/common.h"

int selective_resolve(LayerCfg *c, int D, const char *mixer) {
    if (!c->expand) c->expand = 2;
    if (!c->d_state) c->d_state = 16;
    if (!c->d_conv) c->d_conv = 4;
    if (!c->dt_rank) c->dt_rank = EID_CDIV(D, 16);
    if (!c->chunk) c->chunk = 64;
    if (c->expand < 1 || c->expand > 16) return eid_error("%s: expand must be in [1, 16], got %d", mixer, c->expand), -1;
    if (c->d_state < 1 || c->d_state > 256)
        return eid_error("%s: d_state must be in [1, 256], got %d", mixer, c->d_state), -1;
    if (c->d_conv < 1 || c->d_conv > 16)
        return eid_error("%s: d_conv must be in [1, 16], got %d", mixer, c->d_conv), -1;
    if (c->dt_rank < 1) return eid_error("%s: dt_rank must be >= 1, got %d", mixer, c->dt_rank), -1;
    if (c->chunk < 1) return eid_error("%s: chunk must be >= 1, got %d", mixer, c->chunk), -1;
    return 0;
}
