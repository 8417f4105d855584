/* optim.h — AdamW (decoupled weight decay; none on norms, biases, D, A_log...: the parameter
 * table's `decay` flag), warm-up + cosine schedule, global gradient-norm clipping. */
#ifndef EIDETIC_OPTIM_H
#define EIDETIC_OPTIM_H
#include "model/model.h"

typedef struct {
    double lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip;
    int warmup, total_steps;
} OptimCfg;

typedef struct {
    real *m, *v; /* [n_reals], same layout as Model.w */
    long t;      /* updates done */
} AdamW;

void adamw_init(AdamW *o, const Model *m);
void adamw_free(AdamW *o);
double lr_at(const OptimCfg *c, long step);      /* linear warm-up, then cosine to min_lr */
double grad_norm(const Model *m);                /* L2 over all gradients */
void adamw_step(AdamW *o, Model *m, const OptimCfg *c, double lr, double clip_scale);

#endif
