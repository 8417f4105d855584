/* test_phonebook_text.c — the text phone book (docs/tasks.md §3.2, task phonebook-text): the text of
 * every example re-read line by line against the format (question, book lines FIRST LAST: DDD-DDD,
 * the question again, the target = the queried numbers in query order joined by ", ", then EOS),
 * labels on the target only (or every next token with --full-lm on the training stream), the flags
 * of task_flags (prompt without CAUSAL, answer CAUSAL), determinism in (seed, index), the digit
 * accuracy of §3.2 on known strings and through task_greedy_score, and the refusals. */
#include <ctype.h>
#include "core/runtime.h"
#include "data/source.h"
#include "model_util.h"
#include "tasks/task.h"
#include "tasks/task_eval.h"
#include "testutil.h"
#include "text/tokenizer.h"

static TaskCfg mk(int V, int L, int Emin, int Emax, int qmax, int m, const char *fmt) {
    TaskCfg t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "phonebook-text");
    snprintf(t.format, sizeof t.format, "%s", fmt);
    t.vocab_size = V, t.seq_len = L, t.min_len = Emin, t.max_len = Emax, t.min_queries = 1, t.max_queries = qmax;
    t.digits = m;
    return t;
}

/* the expected text of a number of m digits: '-' after the 3rd (m >= 6) and the 6th (m >= 10) digit */
static int number_ok(const char *s, size_t n, int m) {
    size_t k = 0;
    for (int i = 0; i < m; i++) {
        if ((i == 3 && m >= 6) || (i == 6 && m >= 10)) {
            if (k >= n || s[k++] != '-') return 0;
        }
        if (k >= n || !isdigit((unsigned char)s[k]) || (i == 0 && s[k] == '0')) return 0;
        k++;
    }
    return k == n;
}

/* Re-reads one example (byte tokenizer: one token per byte) against the format; returns 1 iff all
 * holds. *q_out: the queries read. */
static int check_example(const TaskCfg *t, const int *in, const int *lab, int n, int test, int *q_out) {
    int L = t->seq_len, m = t->digits, qcq = strcmp(t->format, "cq") != 0, ok = 1;
    /* the whole sequence is in[0..n): text bytes, then the byte tokenizer's EOS (256), unlabelled */
    char *s = eid_xmalloc((size_t)L + 2);
    for (int p = 0; p < n - 1; p++) s[p] = (char)in[p], ok &= in[p] >= 1 && in[p] < 256;
    ok &= n >= 2 && in[n - 1] == 256 && lab[n - 1] == -100;
    s[n - 1] = 0;
    for (int p = n; p < L; p++) ok &= in[p] == 0 && lab[p] == -100; /* padding */
    /* lines */
    char *lines[256];
    int nl = 0;
    for (char *p = s, *e; *p && nl < 256; p = e + 1) {
        e = strchr(p, '\n');
        if (!e) { lines[nl++] = p; break; }
        *e = 0, lines[nl++] = p;
    }
    /* prompt = [question] book question; target = the last line (no newline after it) */
    const char *question = lines[nl - 2], *target = lines[nl - 1];
    int first_book = qcq ? 1 : 0, E = nl - 2 - first_book;
    ok &= E >= t->min_len && E <= t->max_len;
    if (qcq) ok &= !strcmp(lines[0], question);
    char names[256][40], nums[256][32];
    for (int e = 0; e < E && ok; e++) {
        const char *l = lines[first_book + e], *c = strstr(l, ": ");
        ok &= c != NULL && c > l;
        if (!ok) break;
        snprintf(names[e], sizeof names[e], "%.*s", (int)(c - l), l);
        ok &= strchr(names[e], ' ') != NULL && isupper((unsigned char)names[e][0]);
        snprintf(nums[e], sizeof nums[e], "%s", c + 2);
        ok &= number_ok(nums[e], strlen(nums[e]), m);
        for (int f = 0; f < e; f++) ok &= strcmp(names[f], names[e]) != 0; /* distinct entries */
    }
    /* the question: "What is the phone number for A B?" or "What are the phone numbers for A, B and C?" */
    char want_target[4096] = "", want_q[4096];
    int q = 0;
    const char *one = "What is the phone number for ", *many = "What are the phone numbers for ";
    const char *p = !strncmp(question, one, strlen(one)) ? question + strlen(one)
                    : !strncmp(question, many, strlen(many)) ? question + strlen(many) : NULL;
    ok &= p != NULL;
    int used[256] = {0};
    while (ok && p && *p && *p != '?') {
        int hit = -1;
        for (int e = 0; e < E; e++) {
            size_t k = strlen(names[e]);
            if (!strncmp(p, names[e], k) && (p[k] == '?' || p[k] == ',' || p[k] == ' ')) hit = e;
        }
        ok &= hit >= 0 && !used[hit];
        if (!ok) break;
        used[hit] = 1;
        if (q) strcat(want_target, ", ");
        strcat(want_target, nums[hit]);
        q++;
        p += strlen(names[hit]);
        if (!strncmp(p, ", ", 2)) p += 2;
        else if (!strncmp(p, " and ", 5)) p += 5;
    }
    ok &= p && !strcmp(p ? p : "", "?");
    ok &= q >= t->min_queries && q <= t->max_queries;
    /* the joiners: ", " between, " and " before the last */
    snprintf(want_q, sizeof want_q, "%s", q == 1 ? one : many);
    ok &= (q == 1) == (question == strstr(question, one));
    ok &= !strcmp(target, want_target);
    /* labels: the target bytes + EOS from the last prompt position on (test stream / no --full-lm) */
    int target_len = (int)strlen(target), p0 = n - 2 - target_len;
    for (int i = 0; i < n - 1; i++) ok &= lab[i] == ((t->full_lm && !test) || i >= p0 ? in[i + 1] : -100);
    ok &= in[p0] == '\n';
    *q_out = q;
    free(s);
    return ok;
}

static void format_and_labels(void) {
    const char *fmts[2] = {"qcq", "cq"};
    for (int f = 0; f < 2; f++)
        for (int full = 0; full < 2; full++) {
            TaskCfg t = mk(320, 1400, 4, 12, 4, f ? 10 : 6, fmts[f]);
            t.full_lm = full;
            CHECK(task_resolve(&t) == 0, "resolve %s: %s", fmts[f], eid_last_error());
            int L = t.seq_len, bad = 0, qhist[5] = {0}, Kmax = task_labels_per_example(&t), over = 0;
            int *in = eid_xmalloc(sizeof(int) * L), *lab = eid_xmalloc(sizeof(int) * L);
            uint8_t *fl = eid_xmalloc((size_t)L);
            for (int stream = 0; stream < 2; stream++)
                for (int j = 0; j < 150; j++) {
                    int n = task_example(&t, 7, stream, (uint64_t)j, in, lab), q = 0;
                    if (!check_example(&t, in, lab, n, stream != STREAM_TRAIN, &q)) {
                        if (bad++ < 3) {
                            fprintf(stderr, "bad example (%s, stream %d, #%d):\n", fmts[f], stream, j);
                            for (int p = 0; p < n; p++) fputc(in[p] < 256 ? in[p] : '#', stderr);
                            fputc('\n', stderr);
                        }
                    }
                    qhist[q < 5 ? q : 0]++;
                    int nl = 0;
                    for (int p = 0; p < L; p++) nl += lab[p] != -100;
                    over += nl > Kmax;
                    /* flags: the prompt without CAUSAL, the answer (its first input the last '\n') CAUSAL */
                    task_flags(n, L, lab, fl);
                    int p0 = task_prompt_len(n, lab);
                    for (int p = 0; p < L; p++) {
                        uint8_t want = p < p0 ? 0 : p < n ? FLAG_CAUSAL : FLAG_PAD;
                        if (p == 0) want |= FLAG_SEG_START;
                        if (fl[p] != want) { bad++; break; }
                    }
                    if (!full || stream) bad += in[p0] != '\n' || p0 < n / 2;
                }
            CHECK(bad == 0, "%s full_lm=%d: %d examples off the format / labels / flags", fmts[f], full, bad);
            CHECK(over == 0, "%s: %d examples with more labels than task_labels_per_example (%d)", fmts[f], over, Kmax);
            CHECK(qhist[1] && qhist[2] && qhist[3] && qhist[4], "%s: every q in 1..4 drawn (%d %d %d %d)", fmts[f],
                  qhist[1], qhist[2], qhist[3], qhist[4]);
            free(in), free(lab), free(fl);
        }
}

/* A literal example checked by eye once and pinned: an independent reading of the layout. */
static void worked_example(void) {
    TaskCfg t = mk(320, 200, 2, 2, 1, 4, "qcq");
    t.first_names = 2, t.surnames = 2; /* Ada, Alan x Abbott, Baker */
    CHECK(task_resolve(&t) == 0, "resolve: %s", eid_last_error());
    int in[200], lab[200];
    int n = task_example(&t, 3, STREAM_TEST, 0, in, lab);
    char s[210];
    for (int p = 0; p < n - 1; p++) s[p] = (char)in[p];
    s[n - 1] = 0;
    int p0 = task_prompt_len(n, lab);
    /* "What is the phone number for X?\nA: DDDD\nB: DDDD\nWhat is the phone number for X?\n" + number */
    int nl = 0, ok = 1;
    for (int p = 0; p < n; p++) nl += s[p] == '\n';
    ok &= nl == 4 && p0 == n - 6 && s[p0] == '\n' && in[n - 1] == 256;
    for (int k = 0; k < 4; k++) ok &= lab[p0 + k] >= '0' && lab[p0 + k] <= '9';
    ok &= lab[p0 + 4] == 256 && lab[p0 + 5] == -100;
    ok &= !strncmp(s, "What is the phone number for A", 30);
    CHECK(ok, "worked example layout: [%s] p0 %d n %d", s, p0, n);
}

static void determinism(void) {
    TaskCfg t = mk(320, 1000, 4, 10, 3, 6, "qcq");
    CHECK(task_resolve(&t) == 0, "resolve: %s", eid_last_error());
    int L = t.seq_len, *a = eid_xmalloc(sizeof(int) * 4 * L), *al = a + L, *b = al + L, *bl = b + L;
    int same = 1, differ = 0, streams_differ = 0;
    for (int j = 0; j < 20; j++) {
        task_example(&t, 11, 0, (uint64_t)j, a, al);
        task_example(&t, 11, 0, (uint64_t)j, b, bl);
        same &= !memcmp(a, b, sizeof(int) * L) && !memcmp(al, bl, sizeof(int) * L);
        task_example(&t, 11, 0, (uint64_t)j + 1, b, bl);
        differ += memcmp(a, b, sizeof(int) * L) != 0;
        task_example(&t, 11, 1, (uint64_t)j, b, bl);
        streams_differ += memcmp(a, b, sizeof(int) * L) != 0;
        task_example(&t, 12, 0, (uint64_t)j, b, bl);
        differ += memcmp(a, b, sizeof(int) * L) != 0;
    }
    CHECK(same, "example j is a pure function of (seed, stream, j)");
    CHECK(differ == 40 && streams_differ == 20, "other index / seed / stream give other examples (%d/40, %d/20)", differ,
          streams_differ);
    /* through a data source: rows and flags equal task_example + task_flags, parallel batches too */
    DataSource src;
    source_task_init(&src, &t, 11, 0);
    int B = 6, *tok = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
    uint8_t *fl = eid_xmalloc((size_t)B * L), *f1 = eid_xmalloc((size_t)L);
    CHECK(source_rows(&src, 0, 5, B, tok, lab, fl) == 0, "source_rows");
    int eq = 1;
    for (int i = 0; i < B; i++) {
        int n = task_example(&t, 11, 0, 5 + (uint64_t)i, a, al);
        task_flags(n, L, al, f1);
        eq &= !memcmp(a, tok + (size_t)i * L, sizeof(int) * L) && !memcmp(al, lab + (size_t)i * L, sizeof(int) * L) &&
              !memcmp(f1, fl + (size_t)i * L, (size_t)L);
    }
    CHECK(eq, "source rows = task examples with task_flags");
    free(a), free(tok), free(lab), free(fl), free(f1);
}

static void digit_accuracy(void) {
    /* §3.2 on strings: position by position over the target, digit positions only */
    CHECK(task_text_digit_accuracy("123-456, 789-012", "123-456, 789-012") == 1.0, "exact");
    CHECK(fabs(task_text_digit_accuracy("123-456", "123-450") - 5.0 / 6) < 1e-12, "one digit wrong");
    CHECK(fabs(task_text_digit_accuracy("123-456", "123") - 0.5) < 1e-12, "generation stopped after 3 characters");
    CHECK(fabs(task_text_digit_accuracy("123-456", "1234567") - 3.0 / 6) < 1e-12, "a shifted answer loses the shifted digits");
    CHECK(task_text_digit_accuracy("12, 34", "") == 0.0, "nothing generated");
    CHECK(fabs(task_text_digit_accuracy("12, 34", "12x 34") - 1.0) < 1e-12, "separators do not count");
    CHECK(task_text_digit_accuracy("--", "12") == -1, "no digit in the target");
    /* through the task's greedy score: ids of the byte tokenizer, EOS 256 ends generation */
    TaskCfg t = mk(320, 400, 2, 4, 2, 4, "qcq");
    CHECK(task_resolve(&t) == 0, "resolve: %s", eid_last_error());
    int target[] = {'1', '2', ',', ' ', '3', '4', 256}, gen1[] = {'1', '2', ',', ' ', '3', '4', 256},
        gen2[] = {'1', '2', 256, '3', '4', ' ', ' '}, gen3[] = {'1', '9', ',', ' ', '3', '3', 256};
    CHECK(task_greedy_score(&t, target, 7, gen1, 7) == 1.0, "greedy score: exact");
    CHECK(fabs(task_greedy_score(&t, target, 7, gen2, 7) - 0.5) < 1e-12, "greedy score: EOS after 2 digits = 2/4");
    CHECK(fabs(task_greedy_score(&t, target, 7, gen3, 7) - 0.5) < 1e-12, "greedy score: 2 of 4 digits");
    CHECK(task_is_digit_label(&t, '7') && !task_is_digit_label(&t, 'a') && !task_is_digit_label(&t, 256) &&
          !task_is_digit_label(&t, 16), "digit labels are the digit bytes");
    CHECK(task_eos_token(&t) == 256, "EOS is the byte tokenizer's");
    /* the greedy decoder end to end on a tiny model: a score in [0, 1] for every example */
    Model *m = tiny_model("longhorn,longhorn", 320, 16, 0, 1, 0, 1);
    if (m) {
        int B = 3, L = t.seq_len, *in = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
        double acc[3];
        task_batch(&t, 5, STREAM_TEST, 0, 0, B, in, lab, NULL);
        task_greedy_digits(m, &t, in, lab, B, acc);
        int ok = 1;
        for (int b = 0; b < B; b++) ok &= acc[b] >= 0 && acc[b] <= 1;
        CHECK(ok, "greedy digit accuracy in [0, 1]: %g %g %g", acc[0], acc[1], acc[2]);
        free(in), free(lab);
        model_free(m);
    }
}

static void tokenizers_and_refusals(void) {
    TaskCfg a = mk(320, 400, 2, 4, 2, 4, "qcq");
    CHECK(task_needs_tokenizer(&a), "phonebook-text reads text");
    snprintf(a.name, sizeof a.name, "phonebook_text");
    CHECK(task_needs_tokenizer(&a), "phonebook_text == phonebook-text");
    TaskCfg b = mk(320, 400, 2, 4, 2, 4, "qcq");
    snprintf(b.name, sizeof b.name, "phonebook");
    CHECK(!task_needs_tokenizer(&b) && task_set_tokenizer(&b, NULL) == 0, "the token phone book needs no tokenizer");
    Tokenizer *bt = tok_new_byte();
    TaskCfg c = mk(320, 400, 2, 4, 2, 4, "qcq");
    CHECK(task_set_tokenizer(&c, bt) == 0 && c.tok == bt, "task_set_tokenizer");
    CHECK(task_resolve(&c) == 0 && c.tok == bt, "resolve keeps the given tokenizer");
    c.vocab_size = 200;
    CHECK(task_set_tokenizer(&c, bt) != 0 && strstr(eid_last_error(), "--vocab"), "vocab under the tokenizer's: %s",
          eid_last_error());
    tok_free(bt);
    struct {
        int V, L, Emin, Emax, q, m, F;
        const char *fmt, *flag;
    } bad[] = {
        {320, 400, 2, 4, 2, 4, 0, "single", "--format"},
        {320, 100, 2, 4, 2, 4, 0, "qcq", "--seq-len"},
        {200, 400, 2, 4, 2, 4, 0, "qcq", "--vocab"},
        {320, 400, 2, 4, 2, 4, 65, "qcq", "--first-names"},
        {320, 400, 2, 4, 3, 4, 0, "qcq", "--max-queries"},
        {320, 400, 4, 2, 2, 4, 0, "qcq", "--min-len"},
        {320, 400, 2, 4, 2, 65, 0, "qcq", "--digits"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        TaskCfg t = mk(bad[i].V, bad[i].L, bad[i].Emin, bad[i].Emax, bad[i].q, bad[i].m, bad[i].fmt);
        t.first_names = bad[i].F;
        int rc = task_resolve(&t);
        CHECK(rc != 0 && strstr(eid_last_error(), bad[i].flag), "refusal %zu names %s: %s", i, bad[i].flag,
              rc ? eid_last_error() : "accepted");
    }
    /* the bound on seq_len is tight enough to use: the longest example fits in the bound */
    TaskCfg t = mk(320, 10, 3, 3, 3, 10, "qcq");
    task_resolve(&t); /* fails: the message names the needed length */
    const char *e = strstr(eid_last_error(), ">= ");
    int need = e ? atoi(e + 3) : 0;
    t.seq_len = need;
    CHECK(need > 0 && task_resolve(&t) == 0, "resolve at the needed length %d: %s", need, eid_last_error());
    int *in = eid_xmalloc(sizeof(int) * need), *lab = eid_xmalloc(sizeof(int) * need), cut = 0;
    for (int j = 0; j < 50; j++) {
        int n = task_example(&t, 1, 1, (uint64_t)j, in, lab);
        cut += n > need || in[n - 1] != 256; /* the whole example, EOS included, fits */
    }
    CHECK(cut == 0, "%d examples cut at the bound", cut);
    free(in), free(lab);
}

int main(void) {
    eid_runtime_setup(1, 0);
    format_and_labels();
    worked_example();
    determinism();
    digit_accuracy();
    tokenizers_and_refusals();
    return t_summary("test_phonebook_text");
}
