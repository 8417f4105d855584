/* shards.c — data-parallel shards of a batch (shards.h). */
#include "train/shards.h"
#include <stdlib.h>
#include <string.h>
#include "core/runtime.h"
#include "train/dist.h"

int shards_divisor(int batch, int n) {
    n = EID_MAX(1, EID_MIN(EID_MIN(n, batch), EID_MAX_SHARDS));
    while (batch % n) n--;
    return n;
}

int shards_auto(const ModelCfg *c, int batch, int threads) {
    return c->d_model <= SHARDS_AUTO_MAX_D ? shards_divisor(batch, threads) : 1;
}

int shards_init(Shards *s, Model *m, int n) {
    memset(s, 0, sizeof *s);
    if (n < 1 || n > EID_MAX_SHARDS) return eid_error("shards: expected 1..%d, got %d", EID_MAX_SHARDS, n), -1;
    s->rep[0] = m, s->n = 1;
    for (; s->n < n; s->n++)
        if (!(s->rep[s->n] = model_new_replica(m))) return shards_free(s), -1;
    return 0;
}

void shards_free(Shards *s) {
    for (int k = 1; k < s->n; k++) model_free(s->rep[k]);
    s->n = s->rep[0] ? 1 : 0;
}

int shards_plan(Shards *s, int B, int T, int labels_per_example) {
    if (B % s->n)
        return eid_error("--shards %d must divide the batch size %d (each shard takes batch/shards examples)", s->n, B), -1;
    int b = B / s->n;
    for (int k = 0; k < s->n; k++)
        if (model_plan(s->rep[k], b, T, b * labels_per_example) != 0) return -1;
    s->B = B, s->T = T, s->labels_per_example = labels_per_example;
    return 0;
}

size_t shards_bytes(const Shards *s) {
    size_t bytes = 0;
    for (int k = 0; k < s->n; k++) bytes += model_act_bytes(s->rep[k]);
    return bytes + (size_t)(s->n - 1) * sizeof(real) * s->rep[0]->n_reals;
}

/* The labels of each shard, checked before any thread starts: the whole batch's count. */
static int count_labels(const Shards *s, const Batch *b, int per_shard) {
    int V = s->rep[0]->cfg.vocab_size, total = 0;
    for (int k = 0; k < s->n; k++) {
        int n = 0;
        for (size_t i = (size_t)k * per_shard; i < (size_t)(k + 1) * per_shard; i++) {
            int y = b->labels[i];
            if (y == -100) continue;
            if (y < 0 || y >= V) return eid_error("label %d at position %zu is outside [0, %d)", y, i, V), -1;
            n++;
        }
        if (n > s->rep[k]->max_labels)
            return eid_error("batch has more labelled positions than planned (%d in shard %d)", s->rep[k]->max_labels, k), -1;
        total += n;
    }
    return total;
}

/* rep[0]->grad += rep[k]->grad for k = 1..n−1, in that order for every element */
static void reduce_grads(Shards *s) {
    real *g = s->rep[0]->grad;
    size_t n = s->rep[0]->n_reals, blk = 4096;
#pragma omp parallel for schedule(static)
    for (size_t i0 = 0; i0 < n; i0 += blk) {
        size_t i1 = EID_MIN(n, i0 + blk);
        for (int k = 1; k < s->n; k++) {
            const real *restrict gk = s->rep[k]->grad;
#pragma omp simd
            for (size_t i = i0; i < i1; i++) g[i] += gk[i];
        }
    }
}

static void shard_pass(Model *m, const Batch *b, LossOut *out) {
    model_zero_grad(m);
    model_trunk_forward(m, b->tokens, b->flags, b->B, b->T);
    if (model_loss_backward(m, b, out) != 0) eid_fatal("shards: %s (labels were checked)", eid_last_error());
}

/* out = the batch's loss (Σ over labels ÷ their count) and accuracy (mean over examples: model_loss)
 * from the shards' parts, added in shard order */
static void combine_parts(const LossOut *part, int n, LossOut *out) {
    memset(out, 0, sizeof *out);
    double loss = 0, acc = 0;
    for (int k = 0; k < n; k++) {
        loss += part[k].loss * part[k].n_labels, acc += part[k].accuracy * part[k].n_examples;
        out->n_labels += part[k].n_labels, out->n_correct += part[k].n_correct, out->n_examples += part[k].n_examples;
    }
    out->loss = out->n_labels ? loss / out->n_labels : 0;
    out->accuracy = out->n_examples ? acc / out->n_examples : 0;
}

/* dist: every rank's shards, in global shard order: the gradient sum and the loss parts */
static int reduce_ranks(Shards *s, const LossOut *part, LossOut *out) {
    real *g[EID_MAX_SHARDS];
    for (int k = 0; k < s->n; k++) g[k] = s->rep[k]->grad;
    if (dist_reduce_shards(g, s->n, s->rep[0]->n_reals) != 0) return -1;
    int W = dist_world();
    LossOut *all = eid_xmalloc(sizeof(LossOut) * (size_t)W * s->n);
    int rc = dist_allgather(part, sizeof(LossOut) * s->n, all);
    if (rc == 0) combine_parts(all, W * s->n, out);
    free(all);
    return rc;
}

int shards_grads(Shards *s, const Batch *b, LossOut *out) {
    if (b->B != s->B || b->T != s->T) return eid_error("shards: planned for (%d,%d), got (%d,%d)", s->B, s->T, b->B, b->T), -1;
    int n = s->n, bs = b->B / n;
    size_t per = (size_t)bs * b->T;
    int total = count_labels(s, b, (int)per);
    if (total < 0) return -1;
    if (s->dist && b->label_norm <= 0) { /* the global batch's count */
        long t = total;
        if (dist_sum_long(&t, 1) != 0) return -1;
        total = (int)t;
    }
    if (b->label_norm > 0) total = b->label_norm; /* the global count of a multi-process run */
    if (n == 1 && !s->dist) {
        Batch one = *b;
        shard_pass(s->rep[0], &one, out);
        return 0;
    }
    LossOut part[EID_MAX_SHARDS];
    int threads = EID_MIN(n, eid_threads());
    /* one thread per shard; kernels inside it see an active parallel region and run on that
     * thread alone (max-active-levels 1, and OpenBLAS runs serially inside a parallel region) */
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int k = 0; k < n; k++) {
        const uint8_t *flags = b->flags ? b->flags + k * per : NULL;
        Batch sb = {b->tokens + k * per, b->labels + k * per, flags, bs, b->T, total};
        shard_pass(s->rep[k], &sb, &part[k]);
    }
    if (s->dist) return reduce_ranks(s, part, out);
    reduce_grads(s);
    combine_parts(part, n, out);
    return 0;
}
