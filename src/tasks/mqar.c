/* mqar.c — multi-query associative recall exactly as Zoology generates it (docs/tasks.md §1.1):
 * keys in [1, V/2), values in [V/2, V), context [k1 v1 … kK vK] × P, each key queried once at an
 * even offset of the query region with power-law gaps (a = 0.01), label = value at the query key.
 * mqar-mix is Protocol B (§1.6): examples from a weighted mixture of (L, K), padded to the longest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "io/strict.h"
#include "tasks/task_impl.h"

#define MQAR_MAX_K 4096
#define MQAR_MAX_S 8192

int mqar_check(int V, int L, int K, int P, double a) {
    if (L < 4 || L % 2) return eid_error("--seq-len: MQAR needs an even length >= 4, got %d", L), -1;
    if (K < 1) return eid_error("--kv-pairs: must be >= 1, got %d", K), -1;
    if (P < 1) return eid_error("--num-passes: must be >= 1, got %d", P), -1;
    /* in long, after bounding K and P by L: 2*K*P + 2*K cannot overflow (it did in int) */
    if (P > (L - 2) / 2)
        return eid_error("--num-passes %d with --seq-len %d: MQAR needs 2*K*passes + 2*K <= seq_len (passes <= %d)", P,
                         L, (L - 2) / 2), -1;
    if (K > L / 4 || 2L * K * P + 2L * K > L)
        return eid_error("--kv-pairs %d with --seq-len %d: MQAR needs 2*K*passes + 2*K <= seq_len (K <= %d)", K, L,
                         L / (2 * P + 2)), -1;
    if (V <= L) return eid_error("--vocab: MQAR needs vocab > seq_len (%d > %d)", V, L), -1;
    if (V / 2 - 1 < K || V - V / 2 < K) return eid_error("--vocab %d is too small for %d distinct keys and values", V, K), -1;
    if (!(a > 0)) return eid_error("--power-a: must be > 0, got %g", a), -1;
    if (K > MQAR_MAX_K || (L - 2 * K * P) / 2 > MQAR_MAX_S)
        return eid_error("--seq-len %d / --kv-pairs %d: beyond the generator's limits (K <= %d, query slots <= %d)", L, K,
                         MQAR_MAX_K, MQAR_MAX_S), -1;
    return 0;
}

void mqar_layout(int V, int L, int K, int P, const int *keys, const int *vals, const int *gaps, int *inputs,
                 int *labels) {
    int C = 2 * K * P;
    /* x[0..L] (L+1 tokens), y[0..L]; inputs = x[0:L], labels = y[1:L+1] */
    for (int t = 0; t < L; t++) inputs[t] = 0, labels[t] = -100;
    for (int p = 0; p < P; p++)
        for (int i = 0; i < K; i++) inputs[2 * K * p + 2 * i] = keys[i], inputs[2 * K * p + 2 * i + 1] = vals[i];
    for (int i = 0; i < K; i++) {
        int pos = C + 2 * gaps[i]; /* x[pos] = key, y[pos+1] = value ⇒ labels[pos] = value */
        inputs[pos] = keys[i];
        labels[pos] = vals[i];
    }
    (void)V;
}

void mqar_generate(Rng *r, int V, int L, int K, int P, double a, int rnq, int *in, int *lab) {
    int C = 2 * K * P, S = (L - C) / 2;
    int *keys = eid_xmalloc(sizeof(int) * 3 * K), *vals = keys + K, *gaps = vals + K;
    double *w = eid_xmalloc(sizeof(double) * S);
    task_distinct(r, 1, V / 2, K, keys);
    task_distinct(r, V / 2, V, K, vals);
    /* gaps: K distinct slots, weights a·(g+1)^(a−1), drawn one at a time without replacement */
    double total = 0;
    for (int g = 0; g < S; g++) total += (w[g] = a * pow(g + 1.0, a - 1));
    for (int i = 0; i < K; i++) {
        double u = rng_uniform(r) * total, acc = 0;
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
    mqar_layout(V, L, K, P, keys, vals, gaps, in, lab);
    if (rnq)
        for (int p = 0; p < L; p++)
            if (in[p] == 0) in[p] = (int)rng_below(r, (uint64_t)V);
    free(keys), free(w);
}

/* ---- mqar ---- */

static int mqar_resolve(TaskCfg *t) {
    if (!t->num_passes) t->num_passes = 1;
    if (t->power_a == 0) t->power_a = 0.01;
    return mqar_check(t->vocab_size, t->seq_len, t->kv_pairs, t->num_passes, t->power_a);
}
static int mqar_labels(const TaskCfg *t) { return t->kv_pairs; }
static int mqar_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    mqar_generate(r, t->vocab_size, t->seq_len, t->kv_pairs, t->num_passes, t->power_a, t->random_non_queries, in, lab);
    return t->seq_len;
}
/* §10 / §1.8: K grows with L (K = L/16 stays L/16) */
static void mqar_scale(TaskCfg *t, double ratio) { t->kv_pairs = EID_MAX(1, (int)lround(t->kv_pairs * ratio)); }

const TaskOps task_mqar = {"mqar", "multi-query associative recall (Zoology, docs/tasks.md §1.1); --kv-pairs, --power-a, "
                           "--num-passes, --random-non-queries", SCORE_FRAC, mqar_resolve, mqar_labels, mqar_example,
                           mqar_scale};

/* ---- mqar-mix (Protocol B) ---- */

/* "L:K[:N],..." into up to TASK_MAX_SLICES tuples of `arity` numbers, each strict (io/strict.h):
 * L in [4, 2^24], K in [1, MQAR_MAX_K], N in [1, 10^12] (the weights' sum stays far from overflow) */
static int parse_tuples(const char *s, int arity, const char *flag, int *n, int *A, int *B, long *C) {
    char buf[600], *items[TASK_MAX_SLICES + 1];
    const char *form = arity == 3 ? "L:K:N" : "L:K";
    *n = 0;
    if (!*s) return eid_error("%s: empty list (expected a comma list of %s)", flag, form), -1;
    int ni = strict_split(s, ',', buf, sizeof buf, items, TASK_MAX_SLICES, flag);
    if (ni < 0) return -1;
    for (int i = 0; i < ni; i++) {
        char pbuf[128], *parts[4], what[96];
        snprintf(what, sizeof what, "%s entry %d ('%.40s')", flag, i + 1, items[i]);
        int np = strict_split(items[i], ':', pbuf, sizeof pbuf, parts, 4, what);
        if (np != arity) return eid_error("%s: expected %s (a comma list of %s, no spaces)", what, form, form), -1;
        long v[3];
        static const long hi[3] = {1L << 24, MQAR_MAX_K, 1000000000000L};
        static const char *const name[3] = {"L", "K", "N"};
        for (int k = 0; k < arity; k++) {
            char w2[128];
            snprintf(w2, sizeof w2, "%s %s", what, name[k]);
            if (strict_long(parts[k], k ? 1 : 4, hi[k], &v[k], w2) != 0) return -1;
        }
        A[i] = (int)v[0], B[i] = (int)v[1];
        if (C) C[i] = v[2];
    }
    *n = ni;
    return 0;
}

static int mix_resolve(TaskCfg *t) {
    if (!t->num_passes) t->num_passes = 1;
    if (t->power_a == 0) t->power_a = 0.01;
    if (!t->mix[0]) snprintf(t->mix, sizeof t->mix, "64:4:100000,128:8:20000,256:16:20000,256:32:20000,256:64:20000");
    if (!t->slices[0]) snprintf(t->slices, sizeof t->slices, "64:4,64:8,64:16,128:32,256:64,512:128,1024:256");
    if (parse_tuples(t->mix, 3, "--mix", &t->n_mix, t->mix_L, t->mix_K, t->mix_N) != 0) return -1;
    if (parse_tuples(t->slices, 2, "--slices", &t->n_slices, t->slice_L, t->slice_K, NULL) != 0) return -1;
    int maxL = 0;
    for (int i = 0; i < t->n_mix; i++) {
        if (mqar_check(t->vocab_size, t->mix_L[i], t->mix_K[i], t->num_passes, t->power_a) != 0) {
            char m[400];
            snprintf(m, sizeof m, "%s", eid_last_error());
            return eid_error("--mix entry %d:%d: %s", t->mix_L[i], t->mix_K[i], m), -1;
        }
        maxL = EID_MAX(maxL, t->mix_L[i]);
    }
    for (int i = 0; i < t->n_slices; i++)
        if (mqar_check(t->vocab_size, t->slice_L[i], t->slice_K[i], t->num_passes, t->power_a) != 0) {
            char m[400];
            snprintf(m, sizeof m, "%s", eid_last_error());
            return eid_error("--slices entry %d:%d: %s", t->slice_L[i], t->slice_K[i], m), -1;
        }
    if (t->seq_len < maxL)
        return eid_error("--seq-len %d: mqar-mix examples are padded to the longest mixture length %d", t->seq_len, maxL), -1;
    return 0;
}
static int mix_labels(const TaskCfg *t) {
    int k = 0;
    for (int i = 0; i < t->n_mix; i++) k = EID_MAX(k, t->mix_K[i]);
    return k;
}
/* Pick a mixture entry with probability ∝ N (the Zoology dataset sizes), generate it at its own
 * length, pad with unlabelled zeros to seq_len. */
static int mix_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    long total = 0;
    for (int i = 0; i < t->n_mix; i++) total += t->mix_N[i];
    long u = (long)rng_below(r, (uint64_t)total);
    int s = 0;
    while (u >= t->mix_N[s]) u -= t->mix_N[s++];
    int Ls = t->mix_L[s];
    mqar_generate(r, t->vocab_size, Ls, t->mix_K[s], t->num_passes, t->power_a, t->random_non_queries, in, lab);
    for (int p = Ls; p < t->seq_len; p++) in[p] = 0, lab[p] = -100;
    return Ls; /* the zeros after it are PAD */
}

const TaskOps task_mqar_mix = {"mqar-mix", "MQAR Protocol B (§1.6): train on a (L,K) mixture padded to the longest, "
                               "test on slices; --mix, --slices", SCORE_FRAC, mix_resolve, mix_labels, mix_example, NULL};
