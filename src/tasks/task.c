/* task.c — the task registry: name → TaskOps, seeding of example j, scorers, §10 length scaling. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "tasks/task_impl.h"
#include "text/tokenizer.h"

static const TaskOps *const registry[] = {
    &task_mqar, &task_mqar_mix, &task_copy, &task_prefix_ngram, &task_suffix_ngram, &task_phonebook, &task_phonebook_text,
    &task_selcopy, &task_induction, &task_assoc, &task_mad_recall, &task_mad_noisy, &task_mad_fuzzy,
    &task_mad_selcopy, &task_mad_compress, &task_mad_memorize, &task_passkey, &task_niah,
};
#define N_TASKS (int)(sizeof registry / sizeof registry[0])

static const TaskTextOps *const text_registry[] = {&task_phonebook_text_ops};

static const TaskOps *ops_of(const TaskCfg *t) { return registry[t->ops]; }
static const TaskTextOps *text_ops(const TaskOps *o) {
    for (size_t i = 0; i < sizeof text_registry / sizeof *text_registry; i++)
        if (text_registry[i]->task == o) return text_registry[i];
    return NULL;
}

const char *task_names(void) {
    static char buf[512];
    if (!buf[0])
        for (int i = 0; i < N_TASKS; i++) {
            size_t k = strlen(buf);
            snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", registry[i]->name);
        }
    return buf;
}

const char *task_help(void) {
    static char buf[4096];
    if (!buf[0])
        for (int i = 0; i < N_TASKS; i++) {
            size_t k = strlen(buf);
            snprintf(buf + k, sizeof buf - k, "  %-13s %s\n", registry[i]->name, registry[i]->help);
        }
    return buf;
}

void task_distinct(Rng *r, int lo, int hi, int K, int *out) {
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

int task_resolve(TaskCfg *t) {
    if (!t->name[0]) snprintf(t->name, sizeof t->name, "mqar");
    for (char *p = t->name; *p; p++)
        if (*p == '_') *p = '-'; /* prefix_ngram == prefix-ngram */
    t->ops = -1;
    for (int i = 0; i < N_TASKS; i++)
        if (!strcmp(t->name, registry[i]->name)) t->ops = i;
    if (t->ops < 0) return eid_error("--task: unknown task '%s' (known: %s)", t->name, task_names()), -1;
    if (t->vocab_size < 1) return eid_error("--vocab: must be >= 1, got %d", t->vocab_size), -1;
    if (t->seq_len < 2) return eid_error("--seq-len: must be >= 2, got %d", t->seq_len), -1;
    return ops_of(t)->resolve(t);
}

int task_labels_per_example(const TaskCfg *t) { return ops_of(t)->labels(t); }

int task_example(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, int *inputs, int *labels) {
    Rng r;
    rng_init(&r, rng_derive(rng_derive(seed, 0x5EED0000u + (uint64_t)stream), index), 0);
    return ops_of(t)->example(t, &r, stream != STREAM_TRAIN, inputs, labels);
}

int task_prompt_len(int n, const int *labels) {
    int p0 = 0;
    while (p0 < n && labels[p0] == -100) p0++;
    return p0 < n ? p0 : 0;
}

void task_flags(int n, int L, const int *labels, uint8_t *flags) {
    int p0 = task_prompt_len(n, labels);
    for (int p = 0; p < L; p++) flags[p] = p < p0 ? 0 : p < n ? FLAG_CAUSAL : FLAG_PAD;
    if (n > 0) flags[0] |= FLAG_SEG_START;
}

void task_batch(const TaskCfg *t, uint64_t seed, int stream, uint64_t index, uint64_t wrap, int B, int *inputs,
                int *labels, uint8_t *flags) {
    int L = t->seq_len;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        uint64_t j = wrap ? (index + b) % wrap : index + b;
        int n = task_example(t, seed, stream, j, inputs + (size_t)b * L, labels + (size_t)b * L);
        if (flags) task_flags(n, L, labels + (size_t)b * L, flags + (size_t)b * L);
    }
}

/* ---- scoring ---- */

ScoreKind task_score_kind(const TaskCfg *t) { return ops_of(t)->score; }

const char *task_score_name(const TaskCfg *t) {
    switch (task_score_kind(t)) {
    case SCORE_EXACT: return "string accuracy (exact match of the answer span)";
    case SCORE_DIGITS: return "digit accuracy (greedy decoding)";
    case SCORE_DIGIT_EXACT: return "exact match of the digits";
    case SCORE_MACRO: return "class-macro-averaged accuracy";
    default: return "accuracy (fraction of correct answer positions)";
    }
}

int task_is_digit_label(const TaskCfg *t, int label) {
    const TaskTextOps *x = text_ops(ops_of(t));
    if (x) return x->is_digit(t, label);
    ScoreKind k = task_score_kind(t);
    return (k == SCORE_DIGITS || k == SCORE_DIGIT_EXACT) && label >= 16 && label <= 25;
}

int task_eos_token(const TaskCfg *t) {
    const TaskTextOps *x = text_ops(ops_of(t));
    if (x) return x->eos(t);
    ScoreKind k = task_score_kind(t);
    return k == SCORE_DIGITS || k == SCORE_DIGIT_EXACT ? 2 : -1;
}

double task_greedy_score(const TaskCfg *t, const int *target, int tlen, const int *gen, int glen) {
    const TaskTextOps *x = text_ops(ops_of(t));
    if (x) return x->greedy_score(t, target, tlen, gen, glen);
    int eos = task_eos_token(t), nd = 0, ok = 0, ended = 0;
    for (int j = 0; j < tlen; j++) {
        /* generation ends at EOS: target digits from there on count as wrong */
        if (task_is_digit_label(t, target[j])) nd++, ok += !ended && j < glen && gen[j] == target[j];
        ended |= j < glen && gen[j] == eos;
    }
    return nd ? (double)ok / nd : -1;
}

int task_needs_tokenizer(const TaskCfg *t) {
    char name[sizeof t->name];
    snprintf(name, sizeof name, "%s", t->name);
    for (char *p = name; *p; p++)
        if (*p == '_') *p = '-';
    for (int i = 0; i < N_TASKS; i++)
        if (!strcmp(name, registry[i]->name)) return text_ops(registry[i]) != NULL;
    return 0;
}

int task_set_tokenizer(TaskCfg *t, const struct Tokenizer *tok) {
    if (!task_needs_tokenizer(t)) return 0;
    if (tok_vocab_size(tok) > t->vocab_size)
        return eid_error("--vocab %d: --task %s reads text through a %s tokenizer of %d tokens", t->vocab_size, t->name,
                         tok_kind(tok), tok_vocab_size(tok)), -1;
    t->tok = tok;
    return 0;
}

double task_score_example(const TaskCfg *t, const int *labels, const uint8_t *correct) {
    ScoreKind k = task_score_kind(t);
    int digits_only = k == SCORE_DIGITS || k == SCORE_DIGIT_EXACT, n = 0, ok = 0;
    for (int p = 0; p < t->seq_len; p++) {
        if (labels[p] == -100 || (digits_only && !task_is_digit_label(t, labels[p]))) continue;
        n++, ok += correct[p] != 0;
    }
    if (!n) return -1;
    if (k == SCORE_EXACT || k == SCORE_DIGIT_EXACT) return ok == n;
    return (double)ok / n;
}

/* ---- §10 length scaling, Protocol B slices ---- */

int task_at_length(const TaskCfg *t, int L, TaskCfg *out) {
    *out = *t;
    if (!strcmp(t->name, "mqar-mix"))
        return eid_error("--lengths: mqar-mix is evaluated on its test slices (--slices), not at one length"), -1;
    if (L < 2) return eid_error("--lengths: lengths must be >= 2, got %d", L), -1;
    if (ops_of(t)->scale) ops_of(t)->scale(out, (double)L / t->seq_len);
    out->seq_len = L;
    if (task_resolve(out) != 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", eid_last_error());
        return eid_error("--lengths %d: %s", L, msg), -1;
    }
    return 0;
}

int task_slice(const TaskCfg *t, int s, TaskCfg *out) {
    if (strcmp(t->name, "mqar-mix") || s < 0 || s >= t->n_slices) return eid_error("task_slice: no slice %d", s), -1;
    *out = *t;
    snprintf(out->name, sizeof out->name, "mqar");
    out->seq_len = t->slice_L[s], out->kv_pairs = t->slice_K[s];
    return task_resolve(out);
}
