/* task_impl.h — what one task family implements (internal to src/tasks/). */
#ifndef EIDETIC_TASK_IMPL_H
#define EIDETIC_TASK_IMPL_H
#include <string.h>
#include "core/common.h"
#include "core/rng.h"
#include "tasks/task.h"

typedef struct {
    const char *name, *help;
    ScoreKind score;
    int (*resolve)(TaskCfg *t);           /* defaults + checks (vocab_size, seq_len already set) */
    int (*labels)(const TaskCfg *t);      /* max labelled positions per example, both streams */
    /* one example from its own stream of random numbers; test = stream != STREAM_TRAIN. Returns the
     * number of real tokens n <= seq_len: positions [n, seq_len) are right-padding (PAD, unlabelled) */
    int (*example)(const TaskCfg *t, Rng *r, int test, int *in, int *lab);
    void (*scale)(TaskCfg *t, double ratio); /* §10: scale the size parameter with L (NULL: follows L) */
} TaskOps;

/* What a text task adds (listed in task.c's text registry beside its TaskOps): it reads TaskCfg.tok;
 * a digit label, the EOS id, and the greedy score of one example from its target and generated ids. */
typedef struct {
    const TaskOps *task;
    int (*is_digit)(const TaskCfg *t, int label);
    int (*eos)(const TaskCfg *t);
    double (*greedy_score)(const TaskCfg *t, const int *target, int tlen, const int *gen, int glen);
} TaskTextOps;
extern const TaskTextOps task_phonebook_text_ops;

extern const TaskOps task_mqar, task_mqar_mix, task_copy, task_prefix_ngram, task_suffix_ngram, task_phonebook,
    task_selcopy, task_induction, task_assoc, task_mad_recall, task_mad_noisy, task_mad_fuzzy, task_mad_selcopy,
    task_mad_compress, task_mad_memorize, task_passkey, task_niah, task_phonebook_text;

/* uniform integer in [lo, hi] */
static inline int rng_range(Rng *r, int lo, int hi) { return lo + (int)rng_below(r, (uint64_t)(hi - lo + 1)); }

/* Sequence x[0..n) → inputs = x[0..L), labels = x[1..L+1) where mask[t+1] (mask NULL = all);
 * positions ≥ n−1 get input `pad` (if t < n: x[t]) and no label. The next-token shift of §0.
 * Returns the real tokens in the row, min(n, L): positions ≥ n are padding. */
static inline int shift_labels(const int *x, const uint8_t *mask, int n, int L, int pad, int *in, int *lab) {
    for (int t = 0; t < L; t++) {
        in[t] = t < n ? x[t] : pad;
        lab[t] = (t + 1 < n && (!mask || mask[t + 1])) ? x[t + 1] : -100;
    }
    return n < L ? n : L;
}

/* K distinct values from [lo, hi) (rejection; K ≪ hi − lo in every caller) */
void task_distinct(Rng *r, int lo, int hi, int K, int *out);
/* MQAR example of length L into in/lab (shared by mqar and mqar-mix). */
void mqar_generate(Rng *r, int V, int L, int K, int P, double a, int rnq, int *in, int *lab);
int mqar_check(int V, int L, int K, int P, double a);

#endif
