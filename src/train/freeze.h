/* freeze.h — `train --freeze`: parameter groups the optimizer leaves untouched (docs/statex.md §4:
 * ablations of StateX post-training). */
#ifndef EIDETIC_FREEZE_H
#define EIDETIC_FREEZE_H
#include "model/model.h"

/* Mark ParamEntry.frozen from a comma list: embeddings (token and learned position embeddings, an
 * untied head), norms (every RMSNorm), mixers, mlps, unexpanded (everything but the mixers of the
 * blocks the model's StateX record lists, and their pre-norms), or block indices. "" = none.
 * -1 + eid_error naming --freeze on an unknown group, an index out of range, a group with no
 * parameters in this model, or nothing left to train. Returns the number of frozen tensors. */
int train_freeze(Model *m, const char *spec);

#endif
