/* optim.c — AdamW and the learning-rate schedule. */
#include "train/optim.h"
#include <math.h>
#include <stdlib.h>

void adamw_init(AdamW *o, const Model *m) {
    o->m = eid_aligned_alloc(sizeof(real) * m->n_reals);
    o->v = eid_aligned_alloc(sizeof(real) * m->n_reals);
    o->t = 0;
}
void adamw_free(AdamW *o) { free(o->m), free(o->v), o->m = o->v = NULL; }

double lr_at(const OptimCfg *c, long step) {
    if (c->warmup > 0 && step < c->warmup) return c->lr * (step + 1) / c->warmup;
    long span = c->total_steps - c->warmup;
    if (span <= 0) return c->lr;
    double p = (double)(step - c->warmup) / span;
    if (p > 1) p = 1;
    return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1 + cos(M_PI * p));
}

double grad_norm(const Model *m) {
    double s = 0;
    const size_t blk = 4096; /* rdot per block: lanes vectorise, blocks add in double */
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i0 = 0; i0 < m->n_reals; i0 += blk)
        s += rdot(m->grad + i0, m->grad + i0, (int)EID_MIN(blk, m->n_reals - i0));
    return sqrt(s);
}

void adamw_step(AdamW *o, Model *m, const OptimCfg *c, double lr, double clip_scale) {
    o->t++;
    double bc1 = 1 - pow(c->beta1, (double)o->t), bc2 = 1 - pow(c->beta2, (double)o->t);
    real b1 = (real)c->beta1, b2 = (real)c->beta2, eps = (real)c->eps, cs = (real)clip_scale;
    real step = (real)(lr / bc1), rbc2 = (real)(1 / sqrt(bc2));
    for (int j = 0; j < m->nparam; j++) {
        const ParamEntry *p = &m->param[j];
        if (p->frozen) continue; /* --freeze: no update, no decay */
        real *w = m->w + p->offset, *g = m->grad + p->offset, *mm = o->m + p->offset, *vv = o->v + p->offset;
        real decay = p->decay ? (real)(1 - lr * c->weight_decay) : 1;
#pragma omp parallel for schedule(static) if (p->numel > 65536)
        for (size_t i = 0; i < p->numel; i++) {
            real gi = g[i] * cs;
            mm[i] = b1 * mm[i] + (1 - b1) * gi;
            vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
            w[i] = w[i] * decay - step * mm[i] / (rsqrt(vv[i]) * rbc2 + eps);
        }
    }
    model_weights_changed(m);
}
