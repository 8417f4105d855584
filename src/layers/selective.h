/* selective.h — what Mamba-1 and Longhorn share: the in_proj → conv → x_proj → dt_proj block
 * sizes (layers.md §1.5 and §2.6 have the same defaults and limits). */
#ifndef EIDETIC_SELECTIVE_H
#define EIDETIC_SELECTIVE_H
#include "model/config.h"

/* E = 2, N = 16, K = 4, R = ceil(D/16), chunk 64 when 0; validates ranges, errors name the mixer. */
int selective_resolve(LayerCfg *c, int D, const char *mixer);

#endif
