/* mqar.c — multi-query associative recall exactly as Zoology generates it (tasks.md §1.1):
 * keys in [1, V/2), values in [V/2, V), context [k1 v1 … kK vK] × P, each key queried once at an
 * even offset of the query region with power-law gaps (a = 0.01), label = value at the query key. */
#include <math.h>
#include <string.h>
#include "core/common.h"
#include "core/rng.h"
#include "tasks/task.h"

int task_resolve(TaskCfg *t) {
    if (!t->name[0]) snprintf(t->name, sizeof t->name, "mqar");
    if (strcmp(t->name, "mqar") != 0) return eid_error("--task: unknown task '%s' (known: mqar)", t->name), -1;
    if (!t->num_passes) t->num_passes = 1;
    if (t->power_a == 0) t->power_a = 0.01;
    int L = t->seq_len, K = t->kv_pairs, V = t->vocab_size, P = t->num_passes;
    if (L < 4 || L % 2) return eid_error("--seq-len: MQAR needs an even length >= 4, got %d", L), -1;
    if (K < 1) return eid_error("--kv-pairs: must be >= 1, got %d", K), -1;
    if (P < 1) return eid_error("--num-passes: must be >= 1, got %d", P), -1;
    if (2 * K * P + 2 * K > L)
        return eid_error("--kv-pairs %d with --seq-len %d: MQAR needs 2*K*passes + 2*K <= seq_len (K <= %d)", K, L,
                         L / (2 * P + 2)), -1;
    if (V <= L) return eid_error("--vocab: MQAR needs vocab > seq_len (%d > %d)", V, L), -1;
    if (V / 2 - 1 < K || V - V / 2 < K)
        return eid_error("--vocab %d is too small for %d distinct keys and values", V, K), -1;
    if (!(t->power_a > 0)) return eid_error("--power-a: must be > 0, got %g", t->power_a), -1;
    return 0;
}

int task_labels_per_example(const TaskCfg *t) { return t->kv_pairs; }

void mqar_layout(int V, int L, int K, int P, const int *keys, const int *vals, const int *gaps, int *inputs,
                 int *labels) {
    int C = 2 * K * P;
    /* x[0..L] (L+1 tokens), y[0..L]; inputs = x[0:L], labels = y[1:L+1] */
    for (int t = 0; t < L; t++) inputs[t] = 0, labels[t] = -100;
    for (int p = 0; p < P; p++)
        for (int i = 0; i < K; i++) inputs[2 * K * p + 2 * i] = keys[i], inputs[2 * K * p + 2 * i + 1] = vals[i];
    for (int i = 0; i < K; i++) {
        int pos = C + 2 * gaps[i];          /* x[pos] = key, y[pos+1] = value ⇒ labels[pos] = value */
        inputs[pos] = keys[i];
        labels[pos] = vals[i];
    }
    (void)V;
}

/* K distinct values from [lo, hi) */
static void distinct(Rng *r, int lo, int hi, int K, int *out) {
    for (int i = 0; i < K; i++) {
        int v, dup;
        do {
            v = lo + (int)rng_below(r, (uint64_t)(hi - lo));
            dup = 0;
            for (int j = 0; j < i; j++) dup |= out[j] == v;
        } while (dup);
        out[i] = v;
    }
}

void task_example(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, int *inputs, int *labels) {
    int V = t->vocab_size, L = t->seq_len, K = t->kv_pairs, P = t->num_passes;
    int C = 2 * K * P, S = (L - C) / 2;
    Rng r;
    rng_init(&r, rng_derive(rng_derive(seed, 0x5EED0000u + (uint64_t)stream), index), 0);
    int keys[4096], vals[4096], gaps[4096];
    double w[8192];
    if (K > 4096 || S > 8192) eid_fatal("mqar: sizes beyond generator limits");
    distinct(&r, 1, V / 2, K, keys);
    distinct(&r, V / 2, V, K, vals);
    /* gaps: K distinct slots, weights a·(g+1)^(a−1), drawn one at a time without replacement */
    double total = 0;
    for (int g = 0; g < S; g++) total += (w[g] = t->power_a * pow(g + 1.0, t->power_a - 1));
    for (int i = 0; i < K; i++) {
        double u = rng_uniform(&r) * total, acc = 0;
        int g = 0, last = -1;
        for (; g < S; g++) {
            if (w[g] == 0) continue;
            last = g;
            acc += w[g];
            if (u < acc) break;
        }
        if (g == S) g = last; /* rounding at the top end */
        gaps[i] = g;
        total -= w[g];
        w[g] = 0;
    }
    mqar_layout(V, L, K, P, keys, vals, gaps, inputs, labels);
    if (t->random_non_queries)
        for (int p = 0; p < L; p++)
            if (inputs[p] == 0) inputs[p] = (int)rng_below(&r, (uint64_t)V);
}

void task_batch(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, uint64_t wrap, int B, int *inputs,
                int *labels) {
    int L = t->seq_len;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        uint64_t j = wrap ? (index + b) % wrap : index + b;
        task_example(t, seed, stream, j, inputs + (size_t)b * L, labels + (size_t)b * L);
    }
}
