/* phonebook.c — synthetic-token phone book (docs/tasks.md §3.3) in the Birdie question–context–question
 * format of §3.2, or context–question (--format cq) or Jelassi's single query (--format single).
 *   entry:       first surname <colon> d1 … dm <nl>          (first digit 1..9, others 0..9)
 *   query block: <qopen> f1 s1 <comma> f2 s2 … <and> fq sq <qclose>
 *   qcq:         query-block <book> entries… query-block <gen>  →  d(1)… <comma> … d(q)… <eos>
 *   cq:          <book> entries… query-block <gen>              →  (same target)
 *   single:      entries… f s <colon>                           →  d1 … dm
 * Entries are distinct (first, surname) pairs; the q queried entries are distinct, in random order.
 * Labels: the target only (Birdie fine-tuning style), or with --full-lm every next token on the
 * training stream. Score: digit accuracy of §3.2, by greedy decoding from <gen> (task_eval.c). */
#include <stdlib.h>
#include "tasks/task_impl.h"

enum { PAD = 0, GEN = 1, EOS = 2, NL = 3, COLON = 4, COMMA = 5, QOPEN = 6, QCLOSE = 7, BOOK = 8, AND = 9, DIGIT0 = 16, NAME0 = 32 };
enum { QCQ, CQ, SINGLE };

static int fmt_of(const TaskCfg *t) { return !strcmp(t->format, "cq") ? CQ : !strcmp(t->format, "single") ? SINGLE : QCQ; }

/* tokens of the whole sequence (prompt + target) for E entries and q queries */
static int pb_tokens(const TaskCfg *t, int E, int q) {
    int m = t->digits, entries = E * (m + 4), block = 3 * q + 1, target = q * (m + 1);
    switch (fmt_of(t)) {
    case CQ: return 1 + entries + block + 1 + target;
    case SINGLE: return entries + 3 + m;
    default: return 2 * block + 1 + entries + 1 + target;
    }
}

static int pb_resolve(TaskCfg *t) {
    if (!t->format[0]) snprintf(t->format, sizeof t->format, "qcq");
    if (strcmp(t->format, "qcq") && strcmp(t->format, "cq") && strcmp(t->format, "single"))
        return eid_error("--format: phonebook formats are qcq, cq, single; got '%s'", t->format), -1;
    if (!t->min_len) t->min_len = 20;
    if (!t->max_len) t->max_len = EID_MAX(60, t->min_len);
    int single = fmt_of(t) == SINGLE;
    if (!t->min_queries) t->min_queries = 1;
    if (!t->max_queries) t->max_queries = single ? 1 : EID_MAX(8, t->min_queries);
    if (!t->digits) t->digits = 10;
    if (!t->first_names) t->first_names = 256;
    if (!t->surnames) t->surnames = 256;
    if (t->min_len < 1 || t->max_len < t->min_len)
        return eid_error("--min-len/--max-len (phone-book entries): need 1 <= min <= max, got %d..%d", t->min_len, t->max_len), -1;
    if (t->min_queries < 1 || t->max_queries < t->min_queries)
        return eid_error("--min-queries/--max-queries: need 1 <= min <= max, got %d..%d", t->min_queries, t->max_queries), -1;
    if (single && t->max_queries != 1) return eid_error("--max-queries: the single format queries one number, got %d", t->max_queries), -1;
    if (t->max_queries > t->min_len)
        return eid_error("--max-queries %d: more than the smallest book's entries (--min-len %d)", t->max_queries, t->min_len), -1;
    if (t->digits < 1 || t->digits > 64) return eid_error("--digits: must be in [1, 64], got %d", t->digits), -1;
    if (t->first_names < 1 || t->surnames < 1) return eid_error("--first-names/--surnames: must be >= 1"), -1;
    if ((long)t->first_names * t->surnames < 2L * t->max_len)
        return eid_error("--first-names x --surnames = %ld names: need at least 2 x --max-len (%d) for distinct entries",
                         (long)t->first_names * t->surnames, t->max_len), -1;
    if (t->vocab_size < (long)NAME0 + t->first_names + t->surnames) /* in long: huge flags must not wrap */
        return eid_error("--vocab %d: phonebook needs 32 + first-names + surnames = %ld tokens", t->vocab_size,
                         (long)NAME0 + t->first_names + t->surnames), -1;
    int need = pb_tokens(t, t->max_len, t->max_queries) - 1;
    if (t->seq_len < need)
        return eid_error("--seq-len %d: %d entries and %d queries need seq_len >= %d", t->seq_len, t->max_len, t->max_queries, need), -1;
    return 0;
}

static int pb_labels(const TaskCfg *t) { return t->full_lm ? t->seq_len : t->max_queries * (t->digits + 1); }

/* <qopen> f1 s1 <comma> … <and> fq sq <qclose> */
static int query_block(int *x, const int *first, const int *sur, const int *qi, int q) {
    int n = 0;
    x[n++] = QOPEN;
    for (int i = 0; i < q; i++) {
        if (i) x[n++] = i == q - 1 ? AND : COMMA;
        x[n++] = first[qi[i]], x[n++] = sur[qi[i]];
    }
    x[n++] = QCLOSE;
    return n;
}

static int pb_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int m = t->digits, F = t->first_names, S = t->surnames, fmt = fmt_of(t);
    int E = rng_range(r, t->min_len, t->max_len), q = rng_range(r, t->min_queries, t->max_queries);
    int n_tok = pb_tokens(t, E, q);
    int *pair = eid_xmalloc(sizeof(int) * (4 * E + q + (size_t)E * m + n_tok));
    int *first = pair + E, *sur = first + E, *qi = sur + E, *num = qi + q, *x = num + (size_t)E * m;
    uint8_t *mask = eid_xmalloc((size_t)n_tok);
    task_distinct(r, 0, F * S, E, pair); /* distinct (first, surname) pairs */
    for (int e = 0; e < E; e++) {
        first[e] = NAME0 + pair[e] / S, sur[e] = NAME0 + F + pair[e] % S;
        for (int d = 0; d < m; d++) num[e * m + d] = d ? rng_range(r, 0, 9) : rng_range(r, 1, 9);
    }
    task_distinct(r, 0, E, q, qi);
    int n = 0;
    if (fmt == QCQ) n += query_block(x + n, first, sur, qi, q);
    if (fmt != SINGLE) x[n++] = BOOK;
    for (int e = 0; e < E; e++) {
        x[n++] = first[e], x[n++] = sur[e], x[n++] = COLON;
        for (int d = 0; d < m; d++) x[n++] = DIGIT0 + num[e * m + d];
        x[n++] = NL;
    }
    if (fmt == SINGLE) x[n++] = first[qi[0]], x[n++] = sur[qi[0]], x[n++] = COLON;
    else n += query_block(x + n, first, sur, qi, q), x[n++] = GEN;
    int target = n;
    for (int i = 0; i < q; i++) {
        if (i) x[n++] = COMMA;
        for (int d = 0; d < m; d++) x[n++] = DIGIT0 + num[qi[i] * m + d];
    }
    if (fmt != SINGLE) x[n++] = EOS;
    if (n != n_tok) eid_fatal("phonebook: built %d tokens, expected %d", n, n_tok);
    for (int i = 0; i < n; i++) mask[i] = (t->full_lm && !test) || i >= target;
    int used = shift_labels(x, mask, n, t->seq_len, PAD, in, lab);
    free(pair), free(mask);
    return used;
}

static void pb_scale(TaskCfg *t, double ratio) {
    t->min_len = EID_MAX(t->max_queries, (int)(t->min_len * ratio + 0.5));
    t->max_len = EID_MAX(t->min_len, (int)(t->max_len * ratio + 0.5));
}

const TaskOps task_phonebook = {"phonebook", "synthetic-token phone book (§3.3; Birdie format §3.2): --min-len/--max-len "
                                "entries, --min-queries/--max-queries, --digits, --format qcq|cq|single, --full-lm; "
                                "score: digit accuracy, greedy decoding", SCORE_DIGITS, pb_resolve, pb_labels,
                                pb_example, pb_scale};
