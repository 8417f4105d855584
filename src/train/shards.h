/* shards.h — data parallelism inside one process: a batch's gradients computed by `n` shards at once.
 *
 * The batch is split into n shards of B/n consecutive examples. Shard 0 is the model itself; the
 * others are replicas that share its weights and own their gradients and activations
 * (model_new_replica). Shards run concurrently, one thread each, and every kernel inside a shard
 * runs on that one thread: no fork/join or BLAS thread synchronisation per kernel, which is what
 * limits small models on few cores (docs/performance.md). The shards' gradients are then summed
 * in shard order into the model's.
 *
 * Every shard's loss gradient is scaled by the whole batch's label count, so the sum is the
 * gradient of the batch's mean loss, as without shards (up to rounding: the sum is taken in a
 * different order). The result depends on n, never on the thread count: n shards on fewer threads
 * run in turn and give the same bits.
 *
 * Ranks (dist = 1, train/dist.h). A run of W processes with n shards each is one batch of W·n
 * shards: rank r holds shards r·n .. r·n+n−1 of it (its B rows are rows r·B .. r·B+B−1 of the
 * global batch, data/source.h). The label count, the gradient sum and the loss are taken over all
 * W·n shards in the same shard order as one process with W·n shards (dist_reduce_shards), so the
 * weights are the same bits for every W that divides the shard count (docs/distributed.md). */
#ifndef EIDETIC_SHARDS_H
#define EIDETIC_SHARDS_H
#include "model/model.h"

#define EID_MAX_SHARDS 64

typedef struct {
    int n;
    Model *rep[EID_MAX_SHARDS]; /* rep[0] = the model; rep[1..n-1] replicas */
    int B, T, labels_per_example; /* as planned: the whole batch (this rank's rows) */
    int dist; /* 1: one rank of dist_world() > 1: labels, gradients and loss summed over the ranks */
} Shards;

/* The largest divisor of `batch` that is at most n (and at most EID_MAX_SHARDS). */
int shards_divisor(int batch, int n);
/* The default shard count (--shards 0): one per thread (shards_divisor) for models of width
 * d_model <= SHARDS_AUTO_MAX_D, else 1. Small models gain (A-d128 1.1-1.4x per step: their kernels
 * are too short to split well over threads); at d_model 512 every shard packs the full weight matrices
 * for its single-threaded GEMMs and a step was 1.2x slower (docs/performance.md). */
#define SHARDS_AUTO_MAX_D 256
int shards_auto(const ModelCfg *c, int batch, int threads);
/* n shards for m (1 = none). -1 + eid_error if a replica cannot be made. */
int shards_init(Shards *s, Model *m, int n);
void shards_free(Shards *s); /* the replicas; never rep[0] */
/* Plan every shard for its part of a (B, T) batch with at most labels_per_example labels per
 * example. -1 + eid_error if n does not divide B (or the model refuses T). */
int shards_plan(Shards *s, int B, int T, int labels_per_example);
/* Bytes the shards hold beyond one model's weights and gradients: every shard's activation plan
 * and the replicas' gradients. */
size_t shards_bytes(const Shards *s);
/* rep[0]->grad = ∇ of the batch's mean loss (b->label_norm > 0: of the sum over its labels ÷
 * label_norm, the global count of a multi-process run); out = the batch's loss and accuracy (model_loss's
 * definitions). -1 + eid_error on a bad label or more labels than planned (nothing computed).
 * With dist: the global batch's gradient, loss, accuracy and counts, the same on every rank. */
int shards_grads(Shards *s, const Batch *b, LossOut *out);

#endif
