/* task.h — synthetic tasks (docs/tasks.md): seeded generators of (inputs, labels) and their scorers.
 *
 * Example j of a stream is a pure function of (seed, stream, j): batches are reproducible, can be
 * generated in parallel, and the data cursor of a run is just the index of the next example.
 * Train and test streams use disjoint keys (docs/tasks.md §0). Tasks whose spec trains on every next
 * token ("full-LM train / masked test") label every position on STREAM_TRAIN and only the answer
 * positions on every other stream. Every example has exactly seq_len inputs (the model length);
 * shorter examples are right-padded with the task's pad token, unlabelled.
 *
 * Tasks (--task): mqar, mqar-mix, copy, prefix-ngram, suffix-ngram, phonebook, phonebook-text, selcopy,
 * induction, assoc, mad-recall, mad-noisy, mad-fuzzy, mad-selcopy, mad-compress, mad-memorize, passkey,
 * niah. One file per family (mqar.c, copy.c, phonebook.c, phonebook_text.c, safari.c, mad.c, passkey.c)
 * behind TaskOps
 * (task_impl.h); task.c holds the registry, the scorers and the length scaling of §10. */
#ifndef EIDETIC_TASK_H
#define EIDETIC_TASK_H
#include <stdint.h>
#include "kernels/seq.h"

#define TASK_MAX_SLICES 8
#define TASK_NAMES                                                                                                  \
    "mqar, mqar-mix, copy, prefix-ngram, suffix-ngram, phonebook, phonebook-text, selcopy, induction, assoc, mad-recall, "         \
    "mad-noisy, mad-fuzzy, mad-selcopy, mad-compress, mad-memorize, passkey, niah"

typedef struct {
    char name[16];          /* --task */
    int vocab_size;         /* V (= the model's vocabulary) */
    int seq_len;            /* L: model input length of every example */
    /* MQAR (§1) */
    int kv_pairs;           /* K */
    double power_a;         /* query-gap power law, 0.01 */
    int num_passes;         /* P, 1 */
    int random_non_queries; /* fill zeros with random tokens */
    char mix[128];          /* mqar-mix training mixture "L:K:N,..." (N = relative weight) */
    char slices[128];       /* mqar-mix test slices "L:K,..." */
    /* copying and n-grams (§2), phone book (§3.3) */
    int min_len, max_len;   /* string lengths n ~ U{min..max} (copy, n-grams); entries E (phone book) */
    int ngram;              /* n-gram length, 3 */
    int answer_len;         /* Jelassi length_answer: 0 = whole string / to the end */
    int alphabet;           /* letters, ≤ 26 */
    int min_queries, max_queries; /* phone book q */
    int digits;             /* digits per number (phone book m, passkey m) */
    int first_names, surnames; /* phone book F, S */
    char format[16];        /* phone book: qcq (default) | cq | single; passkey haystack: pattern | random */
    int full_lm;            /* phone book / passkey: train on every next token instead of the answer */
    /* selective copying (§4, §7), MAD (§7) */
    int num_tokens;         /* tokens to copy M */
    int noise_vocab;        /* MAD noisy recall: noise tokens, 16 */
    double frac_noise;      /* MAD noisy recall: probability a pair slot is noise, 0.2 */
    int motif;              /* MAD fuzzy recall: max key/value motif size, 3 */
    /* passkey / NIAH (§9.3) */
    int key_vocab;          /* Kv key tokens */
    int needles;            /* needles per haystack; one is queried */
    char depth[16];         /* needle depth in [0, 1], or "random" (default) */
    /* text tasks (phonebook-text): the tokenizer that writes the text, not an option. NULL: the byte
     * tokenizer (task_resolve sets it); task_set_tokenizer gives the model's own. Not owned. */
    const struct Tokenizer *tok;
    /* derived by task_resolve (not options) */
    int ops;                /* registry index */
    double depth_val;       /* < 0: uniform */
    int n_mix, mix_L[TASK_MAX_SLICES], mix_K[TASK_MAX_SLICES];
    long mix_N[TASK_MAX_SLICES];
    int n_slices, slice_L[TASK_MAX_SLICES], slice_K[TASK_MAX_SLICES];
} TaskCfg;

enum { STREAM_TRAIN = 0, STREAM_TEST = 1 }; /* streams ≥ 2: mqar-mix test slice s is stream 2 + s */

/* How an example is scored (docs/tasks.md per task). */
typedef enum {
    SCORE_FRAC,        /* fraction of correct labelled positions (§0 default) */
    SCORE_EXACT,       /* 1 iff every labelled position is correct (copy / n-gram string accuracy) */
    SCORE_DIGITS,      /* digit accuracy over the digit labels (phone book §3.2; evaluation decodes greedily) */
    SCORE_DIGIT_EXACT, /* 1 iff every digit label is correct (passkey: exact match of the m digits) */
    SCORE_MACRO,       /* MAD: class-macro-averaged accuracy over the test set (per example: SCORE_FRAC) */
} ScoreKind;

int task_resolve(TaskCfg *t);                          /* defaults + validation; -1 + eid_error naming the flag */
int task_labels_per_example(const TaskCfg *t);         /* upper bound over both streams, for planning */
/* One example: inputs[L], labels[L] (−100 = no label). Returns n, the real tokens of the row:
 * positions [n, L) are right-padding (the task's pad token, no label). */
int task_example(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, int *inputs, int *labels);
/* The prompt of a row whose first n tokens are real: the tokens before the first labelled position
 * (that position is <gen> or the last question token: its output predicts the first answer token).
 * 0 when the row has no label or a label at position 0 (next-token data: no prompt). */
int task_prompt_len(int n, const int *labels);
/* The per-token flags (kernels/seq.h) of a row of L tokens whose first n are real, labels[L] as
 * task_example wrote them: SEG_START on the first token (one example per row); the prompt
 * [0, task_prompt_len) without CAUSAL, so a bidirectional layer reads it both ways (docs/layers.md §8.1);
 * CAUSAL on every later real token (the answer region, <gen> included: nothing after the prompt is ever
 * read backwards); PAD alone on the padding. */
void task_flags(int n, int L, const int *labels, uint8_t *flags);
/* B consecutive examples starting at `index` (parallel); with wrap > 0 example indices cycle
 * modulo wrap (a finite training set). flags[B*L] (task_flags per row) may be NULL. */
void task_batch(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, uint64_t wrap, int B, int *inputs,
                int *labels, uint8_t *flags);

ScoreKind task_score_kind(const TaskCfg *t);
const char *task_score_name(const TaskCfg *t);        /* "string accuracy (exact match)", ... */
/* Score of one example from teacher-forced argmax: correct_at_pos[L] is 1 where argmax == label.
 * Returns −1 when the example has no scored position (it is then not counted). */
double task_score_example(const TaskCfg *t, const int *labels, const uint8_t *correct_at_pos);
int task_is_digit_label(const TaskCfg *t, int label); /* phone book / passkey digit tokens */
int task_eos_token(const TaskCfg *t);                 /* −1 when the task has none */
/* Greedy score of one example from its target ids (the labels from the first labelled position,
 * tlen of them) and the generated ids (glen): the digit accuracy of §3.2 — token by token for
 * the token tasks, on the decoded text for text tasks. −1 when the target has no digit. */
double task_greedy_score(const TaskCfg *t, const int *target, int tlen, const int *gen, int glen);
/* docs/tasks.md §3.2 on two strings: the fraction of the target's digit characters that the
 * generated text has at the same position (−1: no digit in the target). */
double task_text_digit_accuracy(const char *target, const char *generated);

/* Text tasks read their examples through a tokenizer: 1 iff the task named t->name (resolved or
 * not) is one. task_set_tokenizer gives it the model's own (tok must outlive t): -1 + eid_error
 * naming --vocab when the vocabulary cannot hold the tokenizer's ids; 0 and nothing done for a
 * token task. */
int task_needs_tokenizer(const TaskCfg *t);
int task_set_tokenizer(TaskCfg *t, const struct Tokenizer *tok);

/* §10: the same task at model length L, its size parameter scaled with L (MQAR K, copy string
 * lengths, phone-book entries; the rest follow L by construction). -1 + eid_error naming --lengths. */
int task_at_length(const TaskCfg *t, int L, TaskCfg *out);
/* mqar-mix test slices (Protocol B): slice s as a plain MQAR task, evaluated on stream 2 + s. */
int task_slice(const TaskCfg *t, int s, TaskCfg *out);

const char *task_names(void); /* "mqar, mqar-mix, ..." */
const char *task_help(void);  /* one line per task */

/* MQAR (docs/tasks.md §1.1): lay out given keys, values and query gaps. */
void mqar_layout(int V, int L, int K, int P, const int *keys, const int *vals, const int *gaps, int *inputs,
                 int *labels);

/* The option entries of every task field, shared by `train` and `eval` (both keep a TaskCfg named
 * `task`); O is the caller's option macro O(name, type, field, help). */
#define TASK_OPTIONS(O)                                                                                             \
    O("task", OPT_STR, task.name, "task: " TASK_NAMES " (eidetic eval --help describes each)"),                 \
    O("seq-len", OPT_INT, task.seq_len, "model input length L of every example (shorter examples are padded)"),    \
    O("kv-pairs", OPT_INT, task.kv_pairs, "mqar: key-value pairs K"),                                              \
    O("power-a", OPT_DBL, task.power_a, "mqar: query-gap power law exponent a (0.01)"),                            \
    O("num-passes", OPT_INT, task.num_passes, "mqar: context repetitions (read-twice variant when > 1)"),           \
    O("random-non-queries", OPT_FLAG, task.random_non_queries, "mqar: fill empty positions with random tokens"),    \
    O("mix", OPT_STR, task.mix, "mqar-mix: training mixture L:K:N,... (N = weight; default Protocol B)"),         \
    O("slices", OPT_STR, task.slices, "mqar-mix: test slices L:K,... (default the 7 of Protocol B)"),             \
    O("min-len", OPT_INT, task.min_len, "copy/n-grams: min string length; phonebook: min entries"),               \
    O("max-len", OPT_INT, task.max_len, "copy/n-grams: max string length; phonebook: max entries"),               \
    O("ngram", OPT_INT, task.ngram, "prefix-/suffix-ngram: n-gram length (3)"),                                    \
    O("answer-len", OPT_INT, task.answer_len, "copy/n-grams: answer length (0 = whole string / to the end)"),     \
    O("alphabet", OPT_INT, task.alphabet, "copy/n-grams: letters (<= 26; specials follow them)"),                 \
    O("min-queries", OPT_INT, task.min_queries, "phonebook: min queried numbers q"),                              \
    O("max-queries", OPT_INT, task.max_queries, "phonebook: max queried numbers q"),                              \
    O("digits", OPT_INT, task.digits, "phonebook/passkey: digits per number m"),                                  \
    O("first-names", OPT_INT, task.first_names, "phonebook: first-name tokens F (256); phonebook-text: first names of its 64 (64)"),                          \
    O("surnames", OPT_INT, task.surnames, "phonebook: surname tokens S (256); phonebook-text: surnames of its 64 (64)"),                                   \
    O("format", OPT_STR, task.format, "phonebook: qcq (default) | cq | single; passkey/niah haystack: pattern | random"), \
    O("full-lm", OPT_FLAG, task.full_lm, "phonebook/passkey/niah: train on every next token, not only the answer"), \
    O("num-tokens", OPT_INT, task.num_tokens, "selcopy/mad-selcopy: tokens to copy M (16)"),                      \
    O("noise-vocab", OPT_INT, task.noise_vocab, "mad-noisy: noise tokens (16)"),                                  \
    O("frac-noise", OPT_DBL, task.frac_noise, "mad-noisy: probability that a pair slot is noise (0.2)"),          \
    O("motif", OPT_INT, task.motif, "mad-fuzzy: max key/value motif size (3)"),                                   \
    O("key-vocab", OPT_INT, task.key_vocab, "passkey/niah: key tokens Kv (64)"),                                   \
    O("needles", OPT_INT, task.needles, "passkey/niah: needles per haystack, one queried (passkey 1, niah 4)"),    \
    O("depth", OPT_STR, task.depth, "passkey/niah: depth of the queried needle in [0,1], or random (default)")

#endif
