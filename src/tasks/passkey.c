/* passkey.c — synthetic-token passkey / needle-in-a-haystack (docs/tasks.md §9.3).
 * Tokens: <pad> 0, <gen> 1, <eos> 2, <needle> 3, <is> 4, <query> 5, digits 16..25, keys
 * 32..32+Kv−1, filler 32+Kv..V−1. A haystack of filler (a fixed repeating pattern of 16 tokens, or
 * i.i.d. uniform filler with --format random) holds `needles` needles `<needle> key <is> d1 … dm`
 * with distinct keys; the queried one sits at depth d (--depth, default uniform), the others at
 * uniform depths. Then `<query> key <gen>` → `d1 … dm <eos>`. The haystack fills the sequence
 * exactly to seq_len. passkey: 1 needle, pattern haystack; niah: 4 needles, random haystack.
 * Labels: the target (or every next token with --full-lm on the training stream). Score: exact
 * match of the m digits (teacher-forced, which equals greedy exact match); eval also reports
 * teacher-forced digit accuracy. */
#include <math.h>
#include <stdlib.h>
#include "io/strict.h"
#include "tasks/task_impl.h"

enum { GEN = 1, EOS = 2, NEEDLE = 3, IS = 4, QUERY = 5, DIGIT0 = 16, KEY0 = 32, PATTERN = 16 };

static long haystack_len(const TaskCfg *t) { /* in long: needles * digits cannot overflow */
    return t->seq_len + 1L - (long)t->needles * (t->digits + 3) - 3 - (t->digits + 1);
}

static int pk_resolve(TaskCfg *t) {
    int niah = !strcmp(t->name, "niah");
    if (!t->key_vocab) t->key_vocab = 64;
    if (!t->needles) t->needles = niah ? 4 : 1;
    if (!t->digits) t->digits = 5;
    if (!t->format[0]) snprintf(t->format, sizeof t->format, "%s", niah ? "random" : "pattern");
    if (!t->depth[0]) snprintf(t->depth, sizeof t->depth, "random");
    if (strcmp(t->format, "pattern") && strcmp(t->format, "random"))
        return eid_error("--format: %s haystacks are pattern or random, got '%s'", t->name, t->format), -1;
    if (!strcmp(t->depth, "random")) t->depth_val = -1;
    else {
        if (strict_double(t->depth, 0, 1, &t->depth_val, "--depth (a number in [0, 1] or 'random')") != 0) return -1;
    }
    if (t->digits < 1 || t->digits > 64) return eid_error("--digits: must be in [1, 64], got %d", t->digits), -1;
    if (t->needles < 1 || t->needles > t->key_vocab)
        return eid_error("--needles: must be in [1, key-vocab = %d], got %d", t->key_vocab, t->needles), -1;
    if (t->key_vocab < 1) return eid_error("--key-vocab: must be >= 1, got %d", t->key_vocab), -1;
    long fill = (long)t->vocab_size - KEY0 - t->key_vocab; /* in long: no overflow for any key-vocab */
    int need = strcmp(t->format, "pattern") ? 1 : PATTERN;
    if (t->key_vocab < 1 || fill < need)
        return eid_error("--vocab %d: %s needs 32 + key-vocab (%d) + %d filler tokens = %d", t->vocab_size, t->name,
                         t->key_vocab, need, KEY0 + t->key_vocab + need), -1;
    if (haystack_len(t) < 1)
        return eid_error("--seq-len %d: too short for %d needles of %d digits (need >= %ld)", t->seq_len, t->needles,
                         t->digits, t->seq_len + 1 - haystack_len(t)), -1;
    return 0;
}
static int pk_labels(const TaskCfg *t) { return t->full_lm ? t->seq_len : t->digits + 1; }

static int pk_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int H = haystack_len(t), N = t->needles, m = t->digits, F0 = KEY0 + t->key_vocab, nf = t->vocab_size - F0;
    int pattern = !strcmp(t->format, "pattern"), n = t->seq_len + 1, len = 0, f = 0;
    int *x = eid_xmalloc(sizeof(int) * (n + 2 * N + (size_t)N * m)), *key = x + n, *pos = key + N, *num = pos + N;
    uint8_t *mask = eid_xmalloc((size_t)n);
    task_distinct(r, KEY0, KEY0 + t->key_vocab, N, key); /* needle 0 is the queried one */
    for (int i = 0; i < N; i++) {
        pos[i] = (i == 0 && t->depth_val >= 0) ? (int)lround(t->depth_val * H) : rng_range(r, 0, H);
        for (int d = 0; d < m; d++) num[i * m + d] = rng_range(r, 0, 9);
    }
    for (int h = 0; h <= H; h++) {
        for (int i = 0; i < N; i++) /* needles inserted before filler token h */
            if (pos[i] == h) {
                x[len++] = NEEDLE, x[len++] = key[i], x[len++] = IS;
                for (int d = 0; d < m; d++) x[len++] = DIGIT0 + num[i * m + d];
            }
        if (h < H) x[len++] = pattern ? F0 + f++ % PATTERN : F0 + (int)rng_below(r, (uint64_t)nf);
    }
    x[len++] = QUERY, x[len++] = key[0], x[len++] = GEN;
    int target = len;
    for (int d = 0; d < m; d++) x[len++] = DIGIT0 + num[d];
    x[len++] = EOS;
    if (len != n) eid_fatal("passkey: built %d tokens, expected %d", len, n);
    for (int i = 0; i < n; i++) mask[i] = (t->full_lm && !test) || i >= target;
    int used = shift_labels(x, mask, n, t->seq_len, 0, in, lab);
    free(x), free(mask);
    return used;
}

const TaskOps task_passkey = {"passkey", "synthetic passkey retrieval (§9.3): 1 needle in a pattern haystack; --digits "
                              "5, --depth, --key-vocab 64, --format pattern|random, --full-lm; score: digit exact match",
                              SCORE_DIGIT_EXACT, pk_resolve, pk_labels, pk_example, NULL};
const TaskOps task_niah = {"niah", "synthetic needle in a haystack (§9.3): --needles 4 (one queried), random filler; "
                           "same options as passkey", SCORE_DIGIT_EXACT, pk_resolve, pk_labels, pk_example, NULL};
