/* phonebook_text.c — the Birdie multi-number phone book as text (docs/tasks.md §3.2), tokenised by the
 * model's own tokenizer (TaskCfg.tok; the byte tokenizer until task_set_tokenizer gives another).
 *   qcq:  QUESTION \n  FIRST LAST: DDD-DDD-DDDD \n …  QUESTION \n   →  N1, N2, … Nq <eos>
 *   cq:   FIRST LAST: DDD-DDD-DDDD \n …  QUESTION \n                →  (same target)
 * QUESTION = "What is the phone number for A B?" (q = 1) or "What are the phone numbers for A B,
 * C D and E F?". The prompt text and the target text are encoded separately (the target starts a
 * fresh encode, so a subword tokenizer cannot merge across the boundary), then the tokenizer's EOS.
 * Sizes: --min-len/--max-len entries E, --min-queries/--max-queries q, --digits m (a '-' after the
 * 3rd digit when m >= 6 and after the 6th when m >= 10: m = 10 is DDD-DDD-DDDD), --first-names F and
 * --surnames S out of the lists below. Entries are distinct (first, last) pairs; the q queried
 * entries distinct, in random order. Labels: the target only (fine-tuning), --full-lm every next
 * token on the training stream. Score: digit accuracy of §3.2 on the decoded text
 * (task_text_digit_accuracy), by greedy decoding after the prompt (task_eval.c). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include "tasks/task_impl.h"
#include "text/tokenizer.h"

static const char *const FIRST[] = {
    "Ada", "Alan", "Alice", "Amy", "Anna", "Ben", "Bob", "Carl", "Cleo", "Dan", "Dora", "Ed", "Ella", "Emma", "Eva", "Fay",
    "Finn", "Gus", "Hal", "Ida", "Ian", "Ivy", "Jack", "Jane", "Jim", "Joy", "June", "Kai", "Kim", "Lea", "Leo", "Liam",
    "Lily", "Lou", "Luke", "Mae", "Max", "Mia", "Ned", "Nina", "Noah", "Ora", "Otto", "Owen", "Paul", "Pia", "Quinn", "Ray",
    "Rosa", "Ruth", "Sam", "Sara", "Ted", "Tina", "Tom", "Una", "Uma", "Vera", "Vic", "Will", "Xena", "Yara", "Zoe", "Zack"};
static const char *const LAST[] = {
    "Abbott", "Baker", "Bell", "Brown", "Burns", "Clark", "Cole", "Cook", "Cox", "Dale", "Dean", "Diaz", "Dunn", "Ellis",
    "Evans", "Fox", "Ford", "Gray", "Green", "Hall", "Hart", "Hill", "Hunt", "Jones", "Kane", "Kent", "King", "Knox",
    "Lane", "Lee", "Long", "Lowe", "Mann", "Marsh", "Moore", "Nash", "Neal", "Nunez", "Owens", "Page", "Park", "Pike",
    "Pope", "Price", "Reed", "Rice", "Rose", "Ross", "Ruiz", "Shaw", "Stone", "Todd", "Vance", "Wade", "Walsh", "Ward",
    "Webb", "West", "White", "Wood", "Wren", "Young", "York", "Zane"};
#define N_FIRST (int)(sizeof FIRST / sizeof *FIRST)
#define N_LAST (int)(sizeof LAST / sizeof *LAST)
#define Q_MANY "What are the phone numbers for "
#define Q_ONE "What is the phone number for "

static Tokenizer *byte_tok; /* the default tokenizer, made once by the first resolve (single-threaded) */

static int dashes(int m) { return (m >= 6) + (m >= 10); }

static int max_strlen(const char *const *s, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k = EID_MAX(k, (int)strlen(s[i]));
    return k;
}

/* upper bound of the bytes of a question naming q people, of a book line, of the target */
static int name_bytes(const TaskCfg *t) { return max_strlen(FIRST, t->first_names) + 1 + max_strlen(LAST, t->surnames); }
static int question_bytes(const TaskCfg *t, int q) {
    return (int)strlen(Q_MANY) + q * name_bytes(t) + 2 * EID_MAX(0, q - 2) + 5 + 2;
}
static int target_bytes(const TaskCfg *t, int q) { return q * (t->digits + dashes(t->digits)) + 2 * (q - 1); }

/* Every example's tokens are at most its bytes plus one per encode (a SentencePiece prefix) plus EOS:
 * the byte tokenizer gives exactly its bytes + EOS; every tokenizer here falls back to bytes. */
static int pbt_max_tokens(const TaskCfg *t) {
    int E = t->max_len, q = t->max_queries, line = name_bytes(t) + 2 + t->digits + dashes(t->digits) + 1;
    int prompt = (strcmp(t->format, "cq") ? 2 : 1) * question_bytes(t, q) + E * line;
    return prompt + 1 + target_bytes(t, q) + 2;
}

static int pbt_resolve(TaskCfg *t) {
    if (!t->format[0]) snprintf(t->format, sizeof t->format, "qcq");
    if (strcmp(t->format, "qcq") && strcmp(t->format, "cq"))
        return eid_error("--format: phonebook-text formats are qcq, cq; got '%s'", t->format), -1;
    if (!t->min_len) t->min_len = 20;
    if (!t->max_len) t->max_len = EID_MAX(60, t->min_len);
    if (!t->min_queries) t->min_queries = 1;
    if (!t->max_queries) t->max_queries = EID_MAX(8, t->min_queries);
    if (!t->digits) t->digits = 10;
    if (!t->first_names) t->first_names = N_FIRST;
    if (!t->surnames) t->surnames = N_LAST;
    if (t->min_len < 1 || t->max_len < t->min_len)
        return eid_error("--min-len/--max-len (phone-book entries): need 1 <= min <= max, got %d..%d", t->min_len, t->max_len), -1;
    if (t->min_queries < 1 || t->max_queries < t->min_queries)
        return eid_error("--min-queries/--max-queries: need 1 <= min <= max, got %d..%d", t->min_queries, t->max_queries), -1;
    if (t->max_queries > t->min_len)
        return eid_error("--max-queries %d: more than the smallest book's entries (--min-len %d)", t->max_queries, t->min_len), -1;
    if (t->digits < 1 || t->digits > 64) return eid_error("--digits: must be in [1, 64], got %d", t->digits), -1;
    if (t->first_names < 1 || t->first_names > N_FIRST)
        return eid_error("--first-names: phonebook-text has %d first names, got %d", N_FIRST, t->first_names), -1;
    if (t->surnames < 1 || t->surnames > N_LAST)
        return eid_error("--surnames: phonebook-text has %d surnames, got %d", N_LAST, t->surnames), -1;
    if ((long)t->first_names * t->surnames < 2L * t->max_len)
        return eid_error("--first-names x --surnames = %ld names: need at least 2 x --max-len (%d) for distinct entries",
                         (long)t->first_names * t->surnames, t->max_len), -1;
    if (!t->tok) {
        if (!byte_tok) byte_tok = tok_new_byte();
        t->tok = byte_tok;
    }
    if (t->vocab_size < tok_vocab_size(t->tok))
        return eid_error("--vocab %d: phonebook-text reads %s-tokenizer text of %d tokens", t->vocab_size,
                         tok_kind(t->tok), tok_vocab_size(t->tok)), -1;
    int need = pbt_max_tokens(t) - 1;
    if (t->seq_len < need)
        return eid_error("--seq-len %d: %d entries and %d queries of %d digits need seq_len >= %d", t->seq_len,
                         t->max_len, t->max_queries, t->digits, need), -1;
    return 0;
}

static int pbt_labels(const TaskCfg *t) {
    return t->full_lm ? t->seq_len : EID_MIN(t->seq_len, target_bytes(t, t->max_queries) + 2);
}

/* a growing text buffer */
typedef struct {
    char *s;
    size_t n, cap;
} Buf;
static void put(Buf *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) b->cap = (b->n + k + 1) * 2, b->s = eid_xrealloc(b->s, b->cap);
    memcpy(b->s + b->n, s, k + 1), b->n += k;
}

static void put_name(Buf *b, int pair, int S) {
    put(b, FIRST[pair / S]), put(b, " "), put(b, LAST[pair % S]);
}
static void put_number(Buf *b, const int *d, int m) {
    char s[96];
    int k = 0;
    for (int i = 0; i < m; i++) {
        if ((i == 3 && m >= 6) || (i == 6 && m >= 10)) s[k++] = '-';
        s[k++] = (char)('0' + d[i]);
    }
    s[k] = 0;
    put(b, s);
}
static void put_question(Buf *b, const int *pair, const int *qi, int q, int S) {
    put(b, q == 1 ? Q_ONE : Q_MANY);
    for (int i = 0; i < q; i++) {
        if (i) put(b, i == q - 1 ? " and " : ", ");
        put_name(b, pair[qi[i]], S);
    }
    put(b, "?\n");
}

static void encode(const Tokenizer *tk, const Buf *b, int **ids, size_t *cap, size_t *len) {
    if (tok_encode(tk, b->s, b->n, ids, cap, len) != 0) eid_fatal("phonebook-text: %s", eid_last_error());
}

static int pbt_example(const TaskCfg *t, Rng *r, int test, int *in, int *lab) {
    int m = t->digits, S = t->surnames;
    int E = rng_range(r, t->min_len, t->max_len), q = rng_range(r, t->min_queries, t->max_queries);
    int *pair = eid_xmalloc(sizeof(int) * ((size_t)E * (m + 1) + q)), *num = pair + E, *qi = num + (size_t)E * m;
    task_distinct(r, 0, t->first_names * S, E, pair); /* distinct (first, last) pairs */
    for (int e = 0; e < E; e++)
        for (int d = 0; d < m; d++) num[e * m + d] = d ? rng_range(r, 0, 9) : rng_range(r, 1, 9);
    task_distinct(r, 0, E, q, qi);
    Buf p = {0}, g = {0};
    put(&p, "");
    if (strcmp(t->format, "cq")) put_question(&p, pair, qi, q, S);
    for (int e = 0; e < E; e++) put_name(&p, pair[e], S), put(&p, ": "), put_number(&p, num + e * m, m), put(&p, "\n");
    put_question(&p, pair, qi, q, S);
    put(&g, "");
    for (int i = 0; i < q; i++) {
        if (i) put(&g, ", ");
        put_number(&g, num + qi[i] * m, m);
    }
    int *x = NULL;
    size_t cap = 0, n = 0;
    encode(t->tok, &p, &x, &cap, &n);
    size_t target = n;
    encode(t->tok, &g, &x, &cap, &n);
    int eos = tok_eos_id(t->tok);
    if (eos >= 0) {
        if (n + 1 > cap) cap = n + 1, x = eid_xrealloc(x, sizeof(int) * cap);
        x[n++] = eos;
    }
    uint8_t *mask = eid_xmalloc(n);
    for (size_t i = 0; i < n; i++) mask[i] = (t->full_lm && !test) || i >= target;
    int used = shift_labels(x, mask, (int)n, t->seq_len, 0, in, lab);
    free(pair), free(p.s), free(g.s), free(x), free(mask);
    return used;
}

static void pbt_scale(TaskCfg *t, double ratio) {
    t->min_len = EID_MAX(t->max_queries, (int)(t->min_len * ratio + 0.5));
    t->max_len = EID_MAX(t->min_len, (int)(t->max_len * ratio + 0.5));
}

static int pbt_is_digit(const TaskCfg *t, int id) {
    char piece[TOK_MAX_PIECE];
    if (id < 0 || id >= tok_vocab_size(t->tok) || tok_is_special(t->tok, id)) return 0;
    int k = tok_piece(t->tok, id, 0, piece, sizeof piece);
    for (int i = 0; i < k; i++)
        if (isdigit((unsigned char)piece[i])) return 1;
    return 0;
}

static int pbt_eos(const TaskCfg *t) { return tok_eos_id(t->tok); }

double task_text_digit_accuracy(const char *target, const char *generated) {
    size_t ng = strlen(generated);
    int nd = 0, ok = 0;
    for (size_t i = 0; target[i]; i++)
        if (isdigit((unsigned char)target[i])) nd++, ok += i < ng && generated[i] == target[i];
    return nd ? (double)ok / nd : -1;
}

/* the text of ids[0..n) up to the first special token (EOS ends generation) */
static char *text_of(const Tokenizer *tk, const int *ids, int n) {
    int k = 0;
    while (k < n && ids[k] >= 0 && ids[k] < tok_vocab_size(tk) && !tok_is_special(tk, ids[k])) k++;
    char *s = tok_decode(tk, ids, (size_t)k, NULL);
    if (!s) eid_fatal("phonebook-text: %s", eid_last_error());
    return s;
}

static double pbt_greedy_score(const TaskCfg *t, const int *target, int tlen, const int *gen, int glen) {
    char *a = text_of(t->tok, target, tlen), *b = text_of(t->tok, gen, glen);
    double s = task_text_digit_accuracy(a, b);
    free(a), free(b);
    return s;
}

const TaskOps task_phonebook_text = {
    "phonebook-text", "the Birdie phone book as text (§3.2) in the model's tokenizer (bytes by default): "
    "--min-len/--max-len entries, --min-queries/--max-queries, --digits, --first-names <= 64, --surnames <= 64, "
    "--format qcq|cq, --full-lm; score: digit accuracy of the decoded text, greedy decoding",
    SCORE_DIGITS, pbt_resolve, pbt_labels, pbt_example, pbt_scale};
const TaskTextOps task_phonebook_text_ops = {&task_phonebook_text, pbt_is_digit, pbt_eos, pbt_greedy_score};
