/* safari.c — the S4/H3/Mamba synthetic tasks:
 *   selcopy    selective copying (docs/tasks.md §4, s4 copying.py `torch_copying_data(variable=True)`)
 *   induction  induction heads (§5, safari synthetics.py `generate_induction_head`)
 *   assoc      H3 single-query associative recall (§6, safari `generate_assoc_recall`, allow_dot False)
 * The task vocabulary is the model's (--vocab = the spec's V or A). */
#include <stdlib.h>
#include "tasks/task_impl.h"

/* ---- selcopy (§4): M data tokens in {1..A−2} at sorted random positions of L+M blanks (0), then
 * M markers A−1; the tokens are predicted, in order, at the markers. --seq-len = L + 2M. ---- */

static int sel_resolve(TaskCfg *t) {
    if (!t->num_tokens) t->num_tokens = 16;
    if (t->num_tokens < 1) return eid_error("--num-tokens: must be >= 1, got %d", t->num_tokens), -1;
    if (t->seq_len < 2L * t->num_tokens + 1) /* in long: a huge --num-tokens must not wrap */
        return eid_error("--seq-len %d: selcopy needs seq_len = L + 2*num-tokens with L >= 1 (>= %ld)", t->seq_len,
                         2L * t->num_tokens + 1), -1;
    if (t->vocab_size < 3) return eid_error("--vocab: selcopy needs >= 3 tokens (noise 0, data, marker V-1)"), -1;
    return 0;
}
static int sel_labels(const TaskCfg *t) { return t->num_tokens; }

static int sel_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int A = t->vocab_size, M = t->num_tokens, n = t->seq_len - M; /* n = L + M positions hold the data */
    uint8_t *used = eid_xcalloc((size_t)n, 1);
    for (int j = n - M; j < n; j++) { /* Floyd: a uniform M-subset of {0..n−1} */
        int v = (int)rng_below(r, (uint64_t)j + 1);
        used[used[v] ? j : v] = 1;
    }
    int k = 0;
    for (int p = 0; p < t->seq_len; p++) lab[p] = -100;
    for (int p = 0; p < n; p++) in[p] = used[p] ? rng_range(r, 1, A - 2) : 0;
    for (int p = 0; p < n; p++)
        if (used[p]) lab[n + k++] = in[p];
    for (int p = n; p < t->seq_len; p++) in[p] = A - 1;
    free(used);
    (void)test;
    return t->seq_len;
}

const TaskOps task_selcopy = {"selcopy", "selective copying (Mamba §4.1.1, docs/tasks.md §4): --num-tokens M, "
                              "--seq-len = L + 2M, vocab A (noise 0, marker A-1)", SCORE_FRAC, sel_resolve, sel_labels,
                              sel_example, NULL};

/* ---- induction (§5): L ordinary tokens {0..V−3} with one trigger `=>` (V−2) at p ~ U{0..L−3}, then
 * `=>` and the token that followed the trigger. --seq-len = L + 1. Train: every next token; test:
 * the last label only. ---- */

static int ind_resolve(TaskCfg *t) {
    if (t->seq_len < 4) return eid_error("--seq-len: induction needs >= 4 (L + 1 with L >= 3), got %d", t->seq_len), -1;
    if (t->vocab_size < 3) return eid_error("--vocab: induction needs >= 3 tokens (V-2 ordinary + => + .)"), -1;
    return 0;
}
static int full_or_last(const TaskCfg *t) { return t->seq_len; }

static int ind_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int V = t->vocab_size, L = t->seq_len - 1, ARROW = V - 2;
    int *x = eid_xmalloc(sizeof(int) * (L + 2));
    for (int i = 0; i < L; i++) x[i] = (int)rng_below(r, (uint64_t)(V - 2));
    x[L] = ARROW;
    int p = (int)rng_below(r, (uint64_t)(L - 2));
    x[p] = ARROW;
    x[L + 1] = x[p + 1];
    int used = shift_labels(x, NULL, L + 2, t->seq_len, 0, in, lab);
    if (test)
        for (int i = 0; i < t->seq_len - 1; i++) lab[i] = -100;
    free(x);
    return used;
}

const TaskOps task_induction = {"induction", "induction heads (Mamba §4.1.2, docs/tasks.md §5): --seq-len = L + 1, "
                                "vocab V (V-2 ordinary); train full LM, test the copied token", SCORE_FRAC, ind_resolve,
                                full_or_last, ind_example, NULL};

/* ---- assoc (§6): a fresh key→value map (keys: first half of the V−2 ordinary tokens, values: the
 * rest); L/2 pairs `k v` drawn with replacement, then `=> k v` with k already shown.
 * --seq-len = L + 2. Train: every next token; test: the final value only. ---- */

static int assoc_resolve(TaskCfg *t) {
    if (t->seq_len < 4 || t->seq_len % 2)
        return eid_error("--seq-len: assoc needs an even length >= 4 (L + 2), got %d", t->seq_len), -1;
    if (t->vocab_size < 4) return eid_error("--vocab: assoc needs >= 4 tokens (keys, values, => and .)"), -1;
    return 0;
}

static int assoc_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int V = t->vocab_size, nk = (V - 2) / 2, nv = V - 2 - nk, P = (t->seq_len - 2) / 2, ARROW = V - 2;
    int *map = eid_xmalloc(sizeof(int) * (2 * nk + 2 * P + 3)), *shown = map + nk, *x = shown + nk;
    int n_shown = 0;
    for (int k = 0; k < nk; k++) map[k] = -1;
    for (int i = 0; i < P; i++) {
        int k = (int)rng_below(r, (uint64_t)nk);
        if (map[k] < 0) map[k] = nk + (int)rng_below(r, (uint64_t)nv), shown[n_shown++] = k; /* lazily drawn map */
        x[2 * i] = k, x[2 * i + 1] = map[k];
    }
    int k = (int)rng_below(r, (uint64_t)nk);
    if (map[k] < 0) k = shown[rng_below(r, (uint64_t)n_shown)]; /* allow_dot = False */
    x[2 * P] = ARROW, x[2 * P + 1] = k, x[2 * P + 2] = map[k];
    int used = shift_labels(x, NULL, 2 * P + 3, t->seq_len, 0, in, lab);
    if (test)
        for (int i = 0; i < t->seq_len - 1; i++) lab[i] = -100;
    free(map);
    return used;
}

const TaskOps task_assoc = {"assoc", "H3 single-query associative recall (docs/tasks.md §6): --seq-len = L + 2 (even); "
                            "train full LM, test the final value", SCORE_FRAC, assoc_resolve, full_or_last,
                            assoc_example, NULL};
