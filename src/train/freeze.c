/* freeze.c — `train --freeze` groups (train/freeze.h). */
#include <string.h>
#include "io/strict.h"
#include "train/freeze.h"

/* the parameter-table index of the pre-norm of block blk's mixer, or -1 */
static int mixer_norm(const Model *m, int blk) {
    for (int s = 0; s < m->n_sub; s++)
        if (m->sub_block[s] == blk && m->sub[s].op.ops != &mlp_ops) return m->norm_entry[s];
    return -1;
}

static int in_group(const Model *m, int j, const char *g, int blk) {
    const ParamEntry *p = &m->param[j];
    if (blk >= 0) return p->layer == blk;
    if (!strcmp(g, "embeddings")) return !p->owner && p->ndim == 2;
    if (!strcmp(g, "norms")) return !p->owner && p->ndim == 1;
    if (!strcmp(g, "mixers")) return p->owner && p->owner->ops != &mlp_ops;
    if (!strcmp(g, "mlps")) return p->owner && p->owner->ops == &mlp_ops;
    /* unexpanded: all but the expanded mixers and their pre-norms */
    const StatexRecord *r = &m->cfg.statex;
    for (int k = 0; k < r->n; k++) {
        if (p->layer != r->layer[k]) continue;
        if ((p->owner && p->owner->ops != &mlp_ops) || j == mixer_norm(m, r->layer[k])) return 0;
    }
    return 1;
}

int train_freeze(Model *m, const char *spec) {
    for (int j = 0; j < m->nparam; j++) m->param[j].frozen = 0;
    if (!spec || !spec[0]) return 0;
    char buf[256], *items[64];
    int n = strict_split(spec, ',', buf, sizeof buf, items, 64, "--freeze");
    if (n < 0) return -1;
    for (int i = 0; i < n; i++) {
        const char *g = items[i];
        int blk = -1;
        if (g[0] >= '0' && g[0] <= '9') {
            if (strict_int(g, 0, m->cfg.n_layer - 1, &blk, "--freeze: block index") != 0) return -1;
        } else if (strcmp(g, "embeddings") && strcmp(g, "norms") && strcmp(g, "mixers") && strcmp(g, "mlps") &&
                   strcmp(g, "unexpanded")) {
            return eid_error("--freeze: unknown group '%s' (expected embeddings, norms, mixers, mlps, unexpanded or a "
                             "block index)", g), -1;
        } else if (!strcmp(g, "unexpanded") && !m->cfg.statex.present) {
            return eid_error("--freeze unexpanded: the model has no StateX record (start from a checkpoint made by "
                             "eidetic expand with --init)"), -1;
        }
        int hit = 0;
        for (int j = 0; j < m->nparam; j++)
            if (in_group(m, j, g, blk)) m->param[j].frozen = 1, hit++;
        if (!hit) return eid_error("--freeze %s: the model has no such parameters", g), -1;
    }
    int frozen = 0;
    for (int j = 0; j < m->nparam; j++) frozen += m->param[j].frozen;
    if (frozen == m->nparam) return eid_error("--freeze %s: nothing would be trained", spec), -1;
    return frozen;
}
