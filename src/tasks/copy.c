/* copy.c — copying and n-gram lookup of "Repeat After Me" (Jelassi et al., docs/tasks.md §2):
 *   copy          $x|x.        answer = x (or its first --answer-len letters)
 *   prefix-ngram  $g|x|a.      g a unique n-gram of x, a = what follows g in x
 *   suffix-ngram  $x|ga.
 * Letters are ids 0..A−1, then $ = A, | = A+1, . = A+2, * = A+3 (pad). One example per row,
 * right-padded with * (the eval format of §2; training rows are not packed here). Labels: the
 * answer including the final '.', masked in train and test. Score: string accuracy = exact match
 * of the whole answer span (teacher-forced argmax; an all-correct teacher-forced span is exactly
 * what greedy decoding would produce, so this equals greedy exact match). */
#include <stdlib.h>
#include "tasks/task_impl.h"

enum { COPY, PREFIX, SUFFIX };

static int kind_of(const TaskCfg *t) { return !strcmp(t->name, "copy") ? COPY : !strcmp(t->name, "prefix-ngram") ? PREFIX : SUFFIX; }

/* longest string (tokens) the task can produce */
static int max_string(const TaskCfg *t) {
    int n = t->max_len, g = t->ngram, la = t->answer_len, k = kind_of(t);
    if (k == COPY) return n + (la ? la : n) + 3;
    return n + g + (la ? la : n - g) + (k == PREFIX ? 4 : 3);
}

static int copy_resolve(TaskCfg *t) {
    int k = kind_of(t);
    if (!t->alphabet) t->alphabet = 26;
    if (!t->min_len) t->min_len = 5;
    if (!t->max_len) t->max_len = 20;
    if (!t->ngram) t->ngram = 3;
    if (t->alphabet < 2 || t->alphabet > 26) return eid_error("--alphabet: must be in [2, 26], got %d", t->alphabet), -1;
    if (t->answer_len < 0) return eid_error("--answer-len: must be >= 0, got %d", t->answer_len), -1;
    if (t->ngram < 1) return eid_error("--ngram: must be >= 1, got %d", t->ngram), -1;
    if (t->max_len > 4000) return eid_error("--max-len: at most 4000, got %d", t->max_len), -1;
    if (t->min_len < 1 || t->max_len < t->min_len)
        return eid_error("--min-len/--max-len: need 1 <= min-len <= max-len, got %d..%d", t->min_len, t->max_len), -1;
    if (k == COPY && t->answer_len > t->min_len)
        return eid_error("--answer-len %d: longer than the shortest string (--min-len %d)", t->answer_len, t->min_len), -1;
    /* n-grams: at least one start in [0, n − g − la − 1) (the reference's range) */
    if (k != COPY && t->min_len < (long)t->ngram + t->answer_len + 2) /* in long: huge flags must not wrap */
        return eid_error("--min-len %d: %s needs min-len >= ngram + answer-len + 2 = %ld", t->min_len, t->name,
                         (long)t->ngram + t->answer_len + 2), -1;
    if (t->vocab_size < t->alphabet + 4)
        return eid_error("--vocab %d: %s needs alphabet + 4 specials = %d tokens", t->vocab_size, t->name, t->alphabet + 4), -1;
    if (t->seq_len < max_string(t) - 1)
        return eid_error("--seq-len %d: strings of --max-len %d need seq_len >= %d for %s", t->seq_len, t->max_len,
                         max_string(t) - 1, t->name), -1;
    return 0;
}

static int copy_labels(const TaskCfg *t) { return t->max_len + 1; }

/* start of an n-gram of x[0..n) that occurs once in x, uniform among such starts in [0, lim);
 * −1 if there is none */
static int unique_ngram(Rng *r, const int *x, int n, int g, int lim) {
    int cand[4096], nc = 0;
    for (int i = 0; i < lim && nc < 4096; i++) {
        int occ = 0;
        for (int j = 0; j + g <= n && occ < 2; j++) occ += !memcmp(x + i, x + j, sizeof(int) * g);
        if (occ == 1) cand[nc++] = i;
    }
    return nc ? cand[rng_below(r, (uint64_t)nc)] : -1;
}

static int copy_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int A = t->alphabet, DOLLAR = A, BAR = A + 1, DOT = A + 2, PAD = A + 3, k = kind_of(t);
    int g = t->ngram, la = t->answer_len, n, x[4096], s[8192 + 16], len = 0, ans = 0, at = 0;
    uint8_t mask[8192 + 16];
    for (int attempt = 0;; attempt++) {
        n = rng_range(r, t->min_len, t->max_len);
        for (int i = 0; i < n; i++) x[i] = (int)rng_below(r, (uint64_t)A);
        if (k == COPY) break;
        int lim = la > 0 ? n - g - la - 1 : n - g - 1;
        if ((at = unique_ngram(r, x, n, g, lim)) >= 0) break;
        if (attempt == 10000) eid_fatal("%s: no string with a unique %d-gram after 10000 draws (raise --alphabet)", t->name, g);
    }
    s[len++] = DOLLAR;
    if (k == PREFIX) {
        for (int i = 0; i < g; i++) s[len++] = x[at + i];
        s[len++] = BAR;
    }
    for (int i = 0; i < n; i++) s[len++] = x[i];
    s[len++] = BAR;
    if (k == SUFFIX)
        for (int i = 0; i < g; i++) s[len++] = x[at + i];
    ans = len; /* the answer starts here: copy after $x|, prefix after $g|x|, suffix after $x|g */
    if (k == COPY)
        for (int i = 0; i < (la ? la : n); i++) s[len++] = x[i];
    else
        for (int i = at + g; i < (la ? at + g + la : n); i++) s[len++] = x[i];
    s[len++] = DOT;
    for (int i = 0; i < len; i++) mask[i] = i >= ans;
    (void)test;
    return shift_labels(s, mask, len, t->seq_len, PAD, in, lab);
}

static void copy_scale(TaskCfg *t, double ratio) {
    t->min_len = EID_MAX(1, (int)(t->min_len * ratio + 0.5));
    t->max_len = EID_MAX(t->min_len, (int)(t->max_len * ratio + 0.5));
}

const TaskOps task_copy = {"copy", "copy a random string, $x|x. (Jelassi, docs/tasks.md §2); --min-len, --max-len, "
                           "--alphabet, --answer-len; score: exact match", SCORE_EXACT, copy_resolve, copy_labels,
                           copy_example, copy_scale};
const TaskOps task_prefix_ngram = {"prefix-ngram", "continue x after a given n-gram, $g|x|a. (§2); --ngram, "
                                   "--answer-len, --min-len, --max-len; score: exact match", SCORE_EXACT, copy_resolve,
                                   copy_labels, copy_example, copy_scale};
const TaskOps task_suffix_ngram = {"suffix-ngram", "x then an n-gram and its continuation, $x|ga. (§2); same options; "
                                   "score: exact match", SCORE_EXACT, copy_resolve, copy_labels, copy_example, copy_scale};
