/* test_tasks.c — every task generator of docs/tasks.md against its spec, the scorers, greedy digit
 * decoding, §10 length scaling and argument checks.
 *
 * For each task an independent checker re-derives the whole example from the random choices it
 * can read off the inputs (the string to copy, the phone book, the needle, ...) following the
 * spec's layout, and compares inputs and labels exactly; this runs over hundreds of examples of
 * both streams. Worked examples with hand-chosen choices are in test_mqar.c (MQAR, §1.1) and below
 * for the scorers. */
#include "core/runtime.h"
#include "model_util.h"
#include "tasks/task.h"
#include "tasks/task_eval.h"
#include "testutil.h"

#define MAXL 1100
static int in_[MAXL], lab_[MAXL];

static TaskCfg mk(const char *name, int V, int L) {
    TaskCfg t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.vocab_size = V, t.seq_len = L;
    return t;
}

/* expected labels from a full sequence x[0..n) with label mask on target tokens x[i], i >= from */
static int same_shift(const int *x, int n, int from, const TaskCfg *t, const int *in, const int *lab, int pad) {
    int ok = 1;
    for (int p = 0; p < t->seq_len; p++) {
        ok &= in[p] == (p < n ? x[p] : pad);
        ok &= lab[p] == ((p + 1 < n && p + 1 >= from) ? x[p + 1] : -100);
    }
    return ok;
}

/* ---- generic properties of every task ---- */
static void generic(TaskCfg t) {
    CHECK(task_resolve(&t) == 0, "%s: resolve: %s", t.name, eid_last_error());
    int L = t.seq_len, V = t.vocab_size, K = task_labels_per_example(&t), bad = 0, over = 0, nolab = 0;
    int *a = eid_xmalloc(sizeof(int) * 4 * L), *al = a + L, *b = al + L, *bl = b + L;
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < 200; j++) {
            task_example(&t, 5, s, j, a, al);
            int n = 0;
            for (int p = 0; p < L; p++) {
                bad += a[p] < 0 || a[p] >= V || (al[p] != -100 && (al[p] < 0 || al[p] >= V));
                n += al[p] != -100;
            }
            over += n > K, nolab += n == 0;
        }
    CHECK(!bad, "%s: %d tokens/labels outside [0, V)", t.name, bad);
    CHECK(!over, "%s: %d examples exceed task_labels_per_example = %d", t.name, over, K);
    CHECK(!nolab, "%s: %d examples without a label", t.name, nolab);
    task_example(&t, 5, STREAM_TEST, 3, a, al);
    task_example(&t, 5, STREAM_TEST, 3, b, bl);
    CHECK(!memcmp(a, b, sizeof(int) * L) && !memcmp(al, bl, sizeof(int) * L), "%s: not deterministic", t.name);
    task_example(&t, 6, STREAM_TEST, 3, b, bl);
    CHECK(memcmp(a, b, sizeof(int) * L), "%s: seeds 5 and 6 give the same example", t.name);
    int same = 0; /* disjoint streams: no test example repeats one of the first train examples */
    for (int j = 0; j < 40; j++) {
        task_example(&t, 5, STREAM_TEST, j, a, al);
        for (int i = 0; i < 100; i++) {
            task_example(&t, 5, STREAM_TRAIN, i, b, bl);
            same += !memcmp(a, b, sizeof(int) * L);
        }
    }
    CHECK(same == 0, "%s: %d test examples equal train examples", t.name, same);
    free(a);
}

/* ---- §2 copy / n-grams ---- */
static int check_copy(const TaskCfg *t, const int *in, const int *lab) {
    int A = t->alphabet, D = A, B = A + 1, DOT = A + 2, PAD = A + 3, x[MAXL], n = 0, s[MAXL], len = 0, ans;
    if (in[0] != D) return 0;
    if (!strcmp(t->name, "copy")) {
        while (in[1 + n] < A) x[n] = in[1 + n], n++;
        s[len++] = D;
        for (int i = 0; i < n; i++) s[len++] = x[i];
        s[len++] = B, ans = len;
        for (int i = 0; i < n; i++) s[len++] = x[i];
    } else {
        int g = t->ngram, pre = !strcmp(t->name, "prefix-ngram"), gs[16], at = -1, occ = 0;
        if (pre) {
            for (int i = 0; i < g; i++) gs[i] = in[1 + i];
            while (in[g + 2 + n] < A) x[n] = in[g + 2 + n], n++;
        } else {
            while (in[1 + n] < A) x[n] = in[1 + n], n++;
            for (int i = 0; i < g; i++) gs[i] = in[n + 2 + i];
        }
        for (int i = 0; i + g <= n; i++)
            if (!memcmp(x + i, gs, sizeof(int) * g)) occ++, at = at < 0 ? i : at;
        if (occ != 1 || at > n - g - 2) return 0; /* unique, with a start in [0, n − g − 1) */
        s[len++] = D;
        if (pre) {
            for (int i = 0; i < g; i++) s[len++] = gs[i];
            s[len++] = B;
        }
        for (int i = 0; i < n; i++) s[len++] = x[i];
        s[len++] = B;
        if (!pre)
            for (int i = 0; i < g; i++) s[len++] = gs[i];
        ans = len;
        for (int i = at + g; i < n; i++) s[len++] = x[i];
    }
    s[len++] = DOT;
    return n >= t->min_len && n <= t->max_len && same_shift(s, len, ans, t, in, lab, PAD);
}

/* ---- §3.3 phone book ---- */
static int read_block(const int *x, int *p, int *f, int *s) {
    int q = 0;
    if (x[(*p)++] != 6) return -1;
    for (;;) {
        f[q] = x[(*p)++], s[q] = x[(*p)++], q++;
        int sep = x[(*p)++];
        if (sep == 7) return q;
        if (sep != 5 && sep != 9) return -1;
    }
}
static int check_pb(const TaskCfg *t, const int *in, const int *lab, int test) {
    int m = t->digits, F = t->first_names, S = t->surnames, p = 0, qf[64], qs[64], q = 0, q2, qf2[64], qs2[64];
    int ef[256], es[256], num[256][16], E = 0, x[MAXL], n = 0, fmt = !strcmp(t->format, "cq") ? 1 : !strcmp(t->format, "single") ? 2 : 0;
    if (fmt == 0 && (q = read_block(in, &p, qf, qs)) < 1) return 0;
    if (fmt != 2 && in[p++] != 8) return 0;
    while (in[p] >= 32) {
        if (fmt == 2 && in[p + 2] == 4 && (p + 3 + m >= t->seq_len || in[p + 3 + m] != 3)) break; /* the query */
        ef[E] = in[p], es[E] = in[p + 1];
        if (in[p + 2] != 4 || in[p + 3 + m] != 3) return 0;
        for (int d = 0; d < m; d++) num[E][d] = in[p + 3 + d] - 16;
        p += m + 4, E++;
    }
    if (fmt == 2) q2 = 1, qf2[0] = in[p], qs2[0] = in[p + 1], p += 3;
    else if ((q2 = read_block(in, &p, qf2, qs2)) < 1 || in[p++] != 1) return 0;
    if (fmt == 0 && (q2 != q || memcmp(qf, qf2, sizeof(int) * q) || memcmp(qs, qs2, sizeof(int) * q))) return 0;
    if (E < t->min_len || E > t->max_len || q2 < t->min_queries || q2 > t->max_queries) return 0;
    int ok = 1;
    for (int e = 0; e < E; e++) {
        ok &= ef[e] >= 32 && ef[e] < 32 + F && es[e] >= 32 + F && es[e] < 32 + F + S && num[e][0] >= 1 && num[e][0] <= 9;
        for (int d = 0; d < m; d++) ok &= num[e][d] >= 0 && num[e][d] <= 9;
        for (int e2 = 0; e2 < e; e2++) ok &= ef[e] != ef[e2] || es[e] != es[e2]; /* distinct names */
    }
    /* rebuild the whole sequence from the parsed book and queries */
    if (fmt == 0) {
        x[n++] = 6;
        for (int i = 0; i < q2; i++) {
            if (i) x[n++] = i == q2 - 1 ? 9 : 5;
            x[n++] = qf2[i], x[n++] = qs2[i];
        }
        x[n++] = 7;
    }
    if (fmt != 2) x[n++] = 8;
    for (int e = 0; e < E; e++) {
        x[n++] = ef[e], x[n++] = es[e], x[n++] = 4;
        for (int d = 0; d < m; d++) x[n++] = 16 + num[e][d];
        x[n++] = 3;
    }
    if (fmt == 2) x[n++] = qf2[0], x[n++] = qs2[0], x[n++] = 4;
    else {
        x[n++] = 6;
        for (int i = 0; i < q2; i++) {
            if (i) x[n++] = i == q2 - 1 ? 9 : 5;
            x[n++] = qf2[i], x[n++] = qs2[i];
        }
        x[n++] = 7, x[n++] = 1;
    }
    int target = n;
    for (int i = 0; i < q2; i++) {
        int e = 0;
        while (e < E && (ef[e] != qf2[i] || es[e] != qs2[i])) e++;
        if (e == E) return 0;
        for (int j = 0; j < i; j++) ok &= qf2[j] != qf2[i] || qs2[j] != qs2[i]; /* distinct queries */
        if (i) x[n++] = 5;
        for (int d = 0; d < m; d++) x[n++] = 16 + num[e][d];
    }
    if (fmt != 2) x[n++] = 2;
    return ok && same_shift(x, n, t->full_lm && !test ? 1 : target, t, in, lab, 0);
}

/* ---- §4 selcopy, §5 induction, §6 assoc ---- */
static int check_selcopy(const TaskCfg *t, const int *in, const int *lab) {
    int A = t->vocab_size, M = t->num_tokens, n = t->seq_len - M, k = 0, ok = 1;
    for (int p = 0; p < n; p++) {
        ok &= lab[p] == -100 && in[p] >= 0 && in[p] <= A - 2;
        if (in[p]) ok &= k < M && lab[n + k++] == in[p];
    }
    for (int p = n; p < t->seq_len; p++) ok &= in[p] == A - 1;
    return ok && k == M;
}
static int check_induction(const TaskCfg *t, const int *in, const int *lab, int test) {
    int S = t->seq_len, V = t->vocab_size, arrows = 0, p = -1, ok = 1;
    for (int i = 0; i < S; i++)
        if (in[i] == V - 2) arrows++, p = p < 0 ? i : p;
        else ok &= in[i] < V - 2;
    ok &= arrows == 2 && in[S - 1] == V - 2 && p <= (S - 1) - 3;
    for (int i = 0; i < S - 1; i++) ok &= lab[i] == (test ? -100 : in[i + 1]);
    return ok && lab[S - 1] == in[p + 1];
}
static int check_assoc(const TaskCfg *t, const int *in, const int *lab, int test) {
    int S = t->seq_len, V = t->vocab_size, nk = (V - 2) / 2, map[64], ok = 1;
    for (int k = 0; k < nk; k++) map[k] = -1;
    for (int i = 0; i + 1 < S - 2; i += 2) {
        int k = in[i], v = in[i + 1];
        ok &= k >= 0 && k < nk && v >= nk && v < V - 2 && (map[k] < 0 || map[k] == v);
        map[k] = v;
    }
    ok &= in[S - 2] == V - 2 && in[S - 1] < nk && map[in[S - 1]] >= 0; /* the probe key was shown */
    for (int i = 0; i < S - 1; i++) ok &= lab[i] == (test ? -100 : in[i + 1]);
    return ok && lab[S - 1] == map[in[S - 1]];
}

/* ---- §7 MAD ---- */
static int check_recall(const TaskCfg *t, const int *in, const int *lab, int test) {
    int S = t->seq_len, ns = t->vocab_size - t->noise_vocab, nk = ns / 2, map[256], ok = 1, real_pairs = 0;
    for (int k = 0; k < nk; k++) map[k] = -1;
    for (int i = 0; i < S; i += 2) {
        int k = in[i], v = i + 1 < S ? in[i + 1] : lab[i]; /* the last value is only a label */
        if (k >= ns) { /* a noise slot: two noise tokens, unlabelled at test */
            ok &= v >= ns && (i + 1 < S) && (!test || (lab[i] == -100 && lab[i + 1] == -100));
            continue;
        }
        real_pairs++;
        ok &= k < nk && v >= nk && v < ns && (map[k] < 0 || map[k] == v);
        if (test) ok &= lab[i] == (map[k] >= 0 || i == S - 1 ? v : -100) && (i + 1 >= S || lab[i + 1] == -100);
        if (i == S - 1) ok &= map[k] >= 0; /* the final key was shown */
        map[k] = v;
    }
    if (!test)
        for (int i = 0; i + 1 < S; i++) ok &= lab[i] == in[i + 1];
    return ok && real_pairs >= 2;
}
static int check_fuzzy(const TaskCfg *t, const int *in, const int *lab, int test) {
    int L = t->seq_len, PADT = t->vocab_size - 1, ns = t->vocab_size - 1, nk = ns / 2, p = 0, ok = 1;
    while (p < L && in[p] == PADT) ok &= lab[p] == (test ? -100 : in[p + 1]), p++;
    for (int i = p; i < L; i++) {
        ok &= in[i] < ns;
        if (!test && i + 1 < L) ok &= lab[i] == in[i + 1];
        if (test && lab[i] != -100) ok &= lab[i] >= nk && lab[i] < ns && (i + 1 == L || lab[i] == in[i + 1]);
    }
    /* the sequence ends with the probe: a key motif then its value motif, the last value token labelled */
    ok &= lab[L - 1] >= nk && lab[L - 1] < ns;
    if (test) { /* test keys have exactly `motif` tokens: the 3 tokens before the final value motif */
        int e = L - 1;
        while (e >= 0 && in[e] >= nk) e--;
        ok &= e >= 2 && in[e] < nk && in[e - 1] < nk && in[e - 2] < nk && (e < 3 || in[e - 3] >= nk || in[e - 3] == PADT);
    }
    return ok;
}
static int check_madsel(const TaskCfg *t, const int *in, const int *lab) {
    int V = t->vocab_size, M = t->num_tokens, L = t->seq_len, k = 0, data[64], ok = 1;
    for (int p = 0; p < L - M - 1; p++) {
        ok &= lab[p] == -100 && in[p] <= V - 2;
        if (in[p] != V - 2) data[k++] = in[p];
    }
    ok &= k == M && in[L - M - 2] != V - 2 && in[L - M - 1] == V - 1 && lab[L - M - 1] == -100; /* no blank after the last data token */
    for (int i = 0; i < M && ok; i++) ok &= in[L - M + i] == V - 2 && lab[L - M + i] == data[i];
    return ok;
}
static int check_compress(const TaskCfg *t, const int *in, const int *lab) {
    int n = t->seq_len / 2, V = t->vocab_size, ok = 1;
    for (int i = 0; i < n; i++) ok &= in[i] < V - 1 && lab[i] == -100 && in[n + i] == V - 1 && lab[n + i] == in[i];
    return ok;
}
static int mem_map[4096];
static int check_memorize(const TaskCfg *t, const int *in, const int *lab) {
    int ns = t->vocab_size - 1, nk = ns / 2, ok = 1;
    for (int p = 0; p < t->seq_len; p += 2) {
        int k = in[p], v = lab[p + 1];
        ok &= k < nk && lab[p] == -100 && in[p + 1] == t->vocab_size - 1 && v >= nk && v < ns;
        if (ok) ok &= mem_map[k] < 0 || mem_map[k] == v, mem_map[k] = v;
    }
    return ok;
}

/* ---- §9.3 passkey / niah ---- */
static int check_passkey(const TaskCfg *t, const int *in, const int *lab, int test, int *depth_pos) {
    int L = t->seq_len, m = t->digits, F0 = 32 + t->key_vocab, keys[64], num[64][16], nn = 0, x[MAXL], n = 0, h = 0, ok = 1;
    *depth_pos = -1;
    for (int p = 0; p < L && in[p] != 5;) {
        if (in[p] == 3) {
            keys[nn] = in[p + 1];
            ok &= in[p + 2] == 4 && keys[nn] >= 32 && keys[nn] < F0;
            for (int d = 0; d < m; d++) num[nn][d] = in[p + 3 + d] - 16, ok &= num[nn][d] >= 0 && num[nn][d] <= 9;
            nn++, p += m + 3;
            continue;
        }
        ok &= in[p] >= F0;
        if (!strcmp(t->format, "pattern")) ok &= in[p] == F0 + h % 16;
        h++, p++;
    }
    int q = -1;
    for (int i = 0; i < nn; i++) {
        for (int j = 0; j < i; j++) ok &= keys[i] != keys[j];
        if (keys[i] == in[L - m - 2]) q = i;
    }
    if (nn != t->needles || q < 0) return 0;
    /* rebuild: inputs as read, target = the queried needle's digits then <eos> */
    for (int p = 0; p < L; p++) x[n++] = in[p];
    for (int d = 0; d < m; d++) ok &= x[L - m + d] == 16 + num[q][d]; /* d1..dm are the last inputs */
    x[L] = 2;
    int target = L - m; /* index in x of d1 (x[L−m−1] = <gen>) */
    ok &= in[L - m - 3] == 5 && in[L - m - 1] == 1;
    int pos = 0; /* filler tokens before the queried needle */
    for (int p = 0, hh = 0; p < L && in[p] != 5;) {
        if (in[p] == 3) { if (in[p + 1] == keys[q]) pos = hh; p += m + 3; } else hh++, p++;
    }
    *depth_pos = pos;
    return ok && same_shift(x, L + 1, t->full_lm && !test ? 1 : target, t, in, lab, 0) && h == L + 1 - t->needles * (m + 3) - 3 - (m + 1);
}

/* run `check` over 300 examples of both streams */
#define OVER_EXAMPLES(t, expr)                                                                                     \
    do {                                                                                                           \
        int bad_ = 0;                                                                                              \
        for (int test = 0; test < 2; test++)                                                                       \
            for (int j = 0; j < 150; j++) {                                                                        \
                task_example(&(t), 11, test, j, in_, lab_);                                                        \
                bad_ += !(expr);                                                                                   \
            }                                                                                                      \
        CHECK(bad_ == 0, "%s: %d of 300 examples break the spec's layout", (t).name, bad_);                       \
    } while (0)

/* ---- worked examples: literal sequences, checked by hand against docs/tasks.md, reproduced exactly ----
 * (seed 7, train stream, example 0). Reading them:
 * copy      ($=26 |=27 .=28 *=29): $ x | x . with x = 18 3 24 22 21; labels = x and '.' after "$x|".
 * selcopy   (L=8, M=2, A=6: noise 0, marker 5): tokens 4, 1 at positions 0 and 9 of the 10-token
 *           body, then 2 markers whose labels are the tokens in order.
 * induction (V=8, '=>'=6): 9 tokens with '=>' at 4 followed by 3; '=>' and 3 appended; labels = next token.
 * assoc     (V=12, '=>'=10): pairs 2→5 4→7 1→9 3→7, then '=> 3' whose next token is 7.
 * phonebook (F=S=8, m=3; qopen 6, qclose 7, book 8, colon 4, nl 3, gen 1, eos 2, digits 16+d):
 *           query (32,44), book of (34,43: 6 9 3) and (32,44: 8 8 2), query again, <gen>,
 *           answer 8 8 2 <eos> labelled from <gen> on. */
static void worked_examples(void) {
    struct { const char *name; int V, L, a, b, c, d, e; int in[48], lab[48]; } ex[] = {
        {"copy", 30, 16, 4, 5, 0, 0, 0,
         {26, 18, 3, 24, 22, 21, 27, 18, 3, 24, 22, 21, 28, 29, 29, 29},
         {-100, -100, -100, -100, -100, -100, 18, 3, 24, 22, 21, 28, -100, -100, -100, -100}},
        {"selcopy", 6, 12, 0, 0, 2, 0, 0, {4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 5, 5},
         {-100, -100, -100, -100, -100, -100, -100, -100, -100, -100, 4, 1}},
        {"induction", 8, 10, 0, 0, 0, 0, 0, {3, 4, 3, 4, 6, 3, 5, 4, 2, 6}, {4, 3, 4, 6, 3, 5, 4, 2, 6, 3}},
        {"assoc", 12, 10, 0, 0, 0, 0, 0, {2, 5, 4, 7, 1, 9, 3, 7, 10, 3}, {5, 4, 7, 1, 9, 3, 7, 10, 3, 7}},
        {"phonebook", 64, 48, 2, 2, 0, 8, 3,
         {6, 32, 44, 7, 8, 34, 43, 4, 22, 25, 19, 3, 32, 44, 4, 24, 24, 18, 3, 6, 32, 44, 7, 1, 24, 24, 18, 2},
         {-100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100,
          -100, -100, -100, -100, -100, -100, 24, 24, 18, 2, -100, -100, -100, -100, -100, -100, -100, -100,
          -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100}},
    };
    for (size_t k = 0; k < sizeof ex / sizeof *ex; k++) {
        TaskCfg t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%s", ex[k].name);
        t.vocab_size = ex[k].V, t.seq_len = ex[k].L;
        if (!strcmp(ex[k].name, "copy")) t.min_len = ex[k].a, t.max_len = ex[k].b;
        if (!strcmp(ex[k].name, "selcopy")) t.num_tokens = ex[k].c;
        if (!strcmp(ex[k].name, "phonebook"))
            t.min_len = t.max_len = ex[k].a, t.min_queries = t.max_queries = 1, t.first_names = t.surnames = ex[k].d,
            t.digits = ex[k].e;
        if (task_resolve(&t) != 0) { CHECK(0, "%s: %s", ex[k].name, eid_last_error()); continue; }
        int in[48], lab[48];
        task_example(&t, 7, STREAM_TRAIN, 0, in, lab);
        CHECK(!memcmp(in, ex[k].in, sizeof(int) * t.seq_len), "%s: worked example inputs differ", ex[k].name);
        CHECK(!memcmp(lab, ex[k].lab, sizeof(int) * t.seq_len), "%s: worked example labels differ", ex[k].name);
    }
}

static void generators(void) {
    const char *cp[] = {"copy", "prefix-ngram", "suffix-ngram"};
    for (int i = 0; i < 3; i++) {
        TaskCfg t = mk(cp[i], 30, 48);
        generic(t);
        task_resolve(&t);
        OVER_EXAMPLES(t, check_copy(&t, in_, lab_));
    }
    const char *fmts[] = {"qcq", "cq", "single"};
    for (int i = 0; i < 3; i++)
        for (int full = 0; full < 2; full++) {
            TaskCfg t = mk("phonebook", 64, 200);
            t.min_len = 3, t.max_len = 9, t.max_queries = i == 2 ? 1 : 3, t.digits = 4, t.first_names = 8, t.surnames = 8;
            t.full_lm = full;
            snprintf(t.format, sizeof t.format, "%s", fmts[i]);
            generic(t);
            task_resolve(&t);
            OVER_EXAMPLES(t, check_pb(&t, in_, lab_, test));
        }
    TaskCfg s = mk("selcopy", 16, 80);
    generic(s), task_resolve(&s);
    OVER_EXAMPLES(s, check_selcopy(&s, in_, lab_));
    TaskCfg ind = mk("induction", 16, 65);
    generic(ind), task_resolve(&ind);
    OVER_EXAMPLES(ind, check_induction(&ind, in_, lab_, test));
    TaskCfg as = mk("assoc", 20, 42);
    generic(as), task_resolve(&as);
    OVER_EXAMPLES(as, check_assoc(&as, in_, lab_, test));
    TaskCfg r = mk("mad-recall", 16, 127), nz = mk("mad-noisy", 32, 127);
    generic(r), task_resolve(&r), generic(nz), task_resolve(&nz);
    OVER_EXAMPLES(r, check_recall(&r, in_, lab_, test));
    OVER_EXAMPLES(nz, check_recall(&nz, in_, lab_, test));
    TaskCfg fz = mk("mad-fuzzy", 16, 128);
    generic(fz), task_resolve(&fz);
    OVER_EXAMPLES(fz, check_fuzzy(&fz, in_, lab_, test));
    TaskCfg ms = mk("mad-selcopy", 16, 256);
    generic(ms), task_resolve(&ms);
    OVER_EXAMPLES(ms, check_madsel(&ms, in_, lab_));
    TaskCfg mc = mk("mad-compress", 16, 62);
    generic(mc), task_resolve(&mc);
    OVER_EXAMPLES(mc, check_compress(&mc, in_, lab_));
    TaskCfg mm = mk("mad-memorize", 256, 32);
    generic(mm), task_resolve(&mm);
    for (int k = 0; k < 4096; k++) mem_map[k] = -1;
    OVER_EXAMPLES(mm, check_memorize(&mm, in_, lab_));
    int seen = 0; /* the map is global: another run seed sees the same map */
    for (int j = 0; j < 50; j++) task_example(&mm, 999, STREAM_TRAIN, j, in_, lab_), seen += check_memorize(&mm, in_, lab_);
    CHECK(seen == 50, "mad-memorize: the key-value map depends on the run seed");
    int used[256] = {0}, inj = 1;
    for (int k = 0; k < 127; k++)
        if (mem_map[k] >= 0) inj &= !used[mem_map[k]]++;
    CHECK(inj, "mad-memorize: two keys share a value");
    const char *pk[] = {"passkey", "niah"};
    for (int i = 0; i < 2; i++) {
        TaskCfg t = mk(pk[i], 128, 200);
        generic(t), task_resolve(&t);
        int dp;
        OVER_EXAMPLES(t, check_passkey(&t, in_, lab_, test, &dp));
        snprintf(t.depth, sizeof t.depth, "0");
        task_resolve(&t);
        task_example(&t, 1, STREAM_TEST, 0, in_, lab_);
        CHECK(check_passkey(&t, in_, lab_, 1, &dp) && dp == 0, "%s: depth 0 must put the needle first (at %d)", t.name, dp);
        snprintf(t.depth, sizeof t.depth, "1");
        task_resolve(&t);
        task_example(&t, 1, STREAM_TEST, 0, in_, lab_);
        int H = 201 - t.needles * 8 - 3 - 6;
        CHECK(check_passkey(&t, in_, lab_, 1, &dp) && dp == H, "%s: depth 1 must put the needle last (%d of %d)", t.name, dp, H);
    }
    TaskCfg fl = mk("passkey", 128, 200);
    fl.full_lm = 1;
    task_resolve(&fl);
    int dp;
    OVER_EXAMPLES(fl, check_passkey(&fl, in_, lab_, test, &dp));
}

/* mqar-mix: every example is one mixture entry's MQAR, padded; entries drawn ∝ their weights */
static void mqar_mix(void) {
    TaskCfg t = mk("mqar-mix", 8192, 256);
    t.random_non_queries = 1;
    generic(t);
    CHECK(task_resolve(&t) == 0, "mqar-mix resolve: %s", eid_last_error());
    CHECK(t.n_mix == 5 && t.n_slices == 7 && t.slice_L[6] == 1024 && t.slice_K[6] == 256, "Protocol B defaults");
    int count[5] = {0}, bad = 0;
    for (int j = 0; j < 1800; j++) {
        task_example(&t, 2, STREAM_TRAIN, j, in_, lab_);
        int nlab = 0, last = -1;
        for (int p = 0; p < 256; p++)
            if (lab_[p] != -100) nlab++, last = p;
        int e = nlab == 4 ? 0 : nlab == 8 ? 1 : nlab == 16 ? 2 : nlab == 32 ? 3 : nlab == 64 ? 4 : -1;
        if (e < 0 || last >= t.mix_L[e]) { bad++; continue; }
        for (int p = t.mix_L[e]; p < 256; p++) bad += in_[p] != 0 || lab_[p] != -100; /* unlabelled pad */
        count[e]++;
    }
    CHECK(!bad, "mqar-mix: %d malformed examples", bad);
    CHECK(abs(count[0] - 1000) < 90 && abs(count[1] - 200) < 50, "mqar-mix: mixture not ∝ weights (%d, %d of 1800)", count[0], count[1]);
    TaskCfg s;
    CHECK(task_slice(&t, 6, &s) == 0 && s.seq_len == 1024 && s.kv_pairs == 256 && !strcmp(s.name, "mqar"), "slice 6");
    TaskCfg bad1 = mk("mqar-mix", 8192, 256);
    snprintf(bad1.mix, sizeof bad1.mix, "64:4:1,300");
    CHECK(task_resolve(&bad1) != 0 && strstr(eid_last_error(), "--mix"), "a malformed --mix must be rejected naming it");
    TaskCfg bad2 = mk("mqar-mix", 8192, 128);
    CHECK(task_resolve(&bad2) != 0 && strstr(eid_last_error(), "--seq-len"), "seq_len below the longest mixture entry");
}

/* ---- scorers on hand-made predictions ---- */
static void scorers(void) {
    TaskCfg f = mk("mqar", 64, 12), e = mk("copy", 30, 48), d = mk("phonebook", 544, 720), x = mk("passkey", 128, 200);
    f.kv_pairs = 2, d.digits = 6;
    CHECK(!task_resolve(&f) && !task_resolve(&e) && !task_resolve(&d) && !task_resolve(&x), "resolve: %s", eid_last_error());
    e.seq_len = x.seq_len = 12; /* the scorers read seq_len positions */
    int lab[12] = {-100, 5, -100, 7, 9, -100, 11, -100, -100, -100, -100, -100};
    uint8_t all[12], none[12] = {0}, some[12] = {0};
    for (int i = 0; i < 12; i++) all[i] = 1;
    some[1] = 1, some[4] = 1, some[0] = 1; /* position 0 is unlabelled: must not count */
    CHECK(task_score_example(&f, lab, all) == 1 && task_score_example(&f, lab, none) == 0, "fraction: all/none");
    CHECK(fabs(task_score_example(&f, lab, some) - 0.5) < 1e-12, "fraction: 2 of 4 right = 0.5");
    CHECK(task_score_example(&e, lab, all) == 1 && task_score_example(&e, lab, some) == 0, "exact: all / partial = 0");
    int nol[48];
    for (int i = 0; i < 48; i++) nol[i] = -100;
    CHECK(task_score_example(&e, nol, all) < 0, "an example without labels is not scored");
    /* digits: labels 16..25 are digits, <comma> 5 and <eos> 2 are not */
    int dl[720];
    uint8_t dc[720] = {0};
    for (int i = 0; i < 720; i++) dl[i] = -100;
    int tgt[9] = {17, 18, 19, 5, 20, 21, 22, 23, 2};
    for (int i = 0; i < 9; i++) dl[100 + i] = tgt[i];
    dc[100] = dc[101] = dc[103] = dc[108] = dc[104] = 1; /* 3 of 7 digits right, plus comma and eos */
    CHECK(fabs(task_score_example(&d, dl, dc) - 3.0 / 7) < 1e-12, "digit accuracy: 3 of 7 digits = %g", task_score_example(&d, dl, dc));
    int xl[12] = {-100, -100, -100, -100, -100, -100, 16, 17, 18, 19, 20, 2};
    uint8_t xc[12] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0}; /* all digits right, eos wrong */
    CHECK(task_score_example(&x, xl, xc) == 1, "digit exact: the eos does not count");
    xc[8] = 0;
    CHECK(task_score_example(&x, xl, xc) == 0, "digit exact: one wrong digit = 0");
    CHECK(task_score_kind(&x) == SCORE_DIGIT_EXACT && task_score_kind(&d) == SCORE_DIGITS, "score kinds");
    TaskCfg mad = mk("mad-recall", 16, 127);
    task_resolve(&mad);
    CHECK(task_score_kind(&mad) == SCORE_MACRO, "MAD tasks score class-macro accuracy");
}

/* greedy digit accuracy == an independent greedy loop over the parallel forward. Returns 1 when
 * the case generated <eos> before a later target digit that the continued generation matches (so
 * that stopping at EOS is exercised). With `prompt_flags` the parallel forward reads the prompt
 * [0, p0) without CAUSAL (what task_flags emits): on a bidirectional model, decoding after the
 * bidirectional prefill must equal it at every answer position (docs/layers.md §8.4). */
static int greedy_case(Model *m, const TaskCfg *t, uint64_t seed, int prompt_flags) {
    int L = t->seq_len, B = 3, p0[3] = {5, 9, 2}, tl[3] = {20, 14, 24}, V = m->cfg.vocab_size, discriminating = 0;
    int in[3 * 40], lab[3 * 40], seq[40], want_ok[3], want_nd[3];
    rand_tokens(in, (size_t)B * L, V, seed);
    real *logits = eid_xmalloc(sizeof(real) * 40 * V);
    for (int b = 0; b < B; b++) {
        int n = p0[b] + 1, nd = 0, ok = 0, ended = 0;
        memcpy(seq, in + b * L, sizeof(int) * n);
        for (int i = 0; i < L; i++) lab[b * L + i] = -100;
        for (int j = 0; j < tl[b]; j++) {
            uint8_t fl[40];
            for (int i = 0; i < n; i++) fl[i] = (i == 0 ? FLAG_SEG_START : 0) | (i >= p0[b] ? FLAG_CAUSAL : 0);
            model_plan(m, 1, n, 1);
            model_trunk_forward(m, seq, prompt_flags ? fl : NULL, 1, n);
            model_logits_all(m, logits);
            int g = 0;
            for (int v = 1; v < V; v++)
                if (logits[(n - 1) * V + v] > logits[(n - 1) * V + g]) g = v;
            /* target: the greedy token when it is a digit (right), for odd j a different digit (wrong) */
            int y = g >= 16 ? (j % 2 ? 16 + (g - 15) % 10 : g) : 16 + j % 10;
            lab[b * L + p0[b] + j] = y;
            nd++, ok += !ended && y == g;
            discriminating |= ended && y == g;
            ended |= g == 2;
            seq[n++] = g;
        }
        want_ok[b] = ok, want_nd[b] = nd;
    }
    double acc[3];
    task_greedy_digits(m, t, in, lab, B, acc);
    for (int b = 0; b < B; b++)
        CHECK(fabs(acc[b] - (double)want_ok[b] / want_nd[b]) < 1e-12, "greedy seed %llu example %d: %g, want %d/%d",
              (unsigned long long)seed, b, acc[b], want_ok[b], want_nd[b]);
    free(logits);
    return discriminating;
}

static void greedy(void) {
    Model *m = tiny_model("longhorn,mamba", 26, 16, 0, 1, 0, 3);
    TaskCfg t = mk("phonebook", 64, 64);
    t.min_len = 3, t.max_len = 4, t.max_queries = 1, t.digits = 2, t.first_names = 8, t.surnames = 8;
    CHECK(task_resolve(&t) == 0, "phonebook resolve: %s", eid_last_error());
    t.seq_len = 40; /* task_greedy_digits reads only seq_len and the digit/eos tokens */
    int found = 0;
    for (uint64_t seed = 1; seed < 200 && !found; seed++) found = greedy_case(m, &t, seed, 0);
    CHECK(found, "no greedy case generated <eos> before a matching digit: EOS stopping untested");
    model_free(m);
    /* bidirectional layers (every scan mixer, alternate and all): greedy decoding after the
     * bidirectional prefill == the parallel forward with the prompt flags; attention/swa with the prefix-LM mask */
    static const char *const stacks[] = {"longhorn,mamba", "mamba2,gla", "attn,hawk", "swa,gated-ssm"};
    for (int k = 0; k < 4; k++)
        for (int all = 0; all <= 1; all++) {
            Model *mb = tiny_model(stacks[k], 26, 16, 0, 1, 7, 5 + k);
            for (int i = 0; i < mb->cfg.n_layer; i++) mb->cfg.layer[i].bidir = all || i % 2 == 0;
            for (uint64_t seed = 1; seed <= 3; seed++) greedy_case(mb, &t, seed, 1);
            /* and the prompt flags matter (so the check above can fail): at <gen> the logits read with
             * them differ from those of the same tokens read causally */
            int tok[12], n = 12, V = 26;
            uint8_t fl[12];
            rand_tokens(tok, n, V, 77);
            for (int i = 0; i < n; i++) fl[i] = (i == 0 ? FLAG_SEG_START : 0) | (i >= 8 ? FLAG_CAUSAL : 0);
            real *lg = eid_xmalloc(sizeof(real) * 2 * n * V);
            model_plan(mb, 1, n, 1);
            model_trunk_forward(mb, tok, fl, 1, n);
            model_logits_all(mb, lg);
            model_trunk_forward(mb, tok, NULL, 1, n);
            model_logits_all(mb, lg + n * V);
            double dmax = 0;
            for (int v = 0; v < V; v++) dmax = t_worst(dmax, fabs((double)lg[8 * V + v] - (double)lg[(n + 8) * V + v]));
            CHECK(dmax > 1e-6, "%s bidir (%s): the prompt flags do not change the logits at <gen>", stacks[k],
                  all ? "all" : "alternate");
            free(lg);
            model_free(mb);
        }
}

static void lengths(void) {
    TaskCfg t = mk("mqar", 8192, 64), o;
    t.kv_pairs = 4;
    task_resolve(&t);
    CHECK(task_at_length(&t, 256, &o) == 0 && o.seq_len == 256 && o.kv_pairs == 16, "mqar at 4x: K = 16 (got %d)", o.kv_pairs);
    TaskCfg c = mk("copy", 30, 48);
    task_resolve(&c);
    CHECK(task_at_length(&c, 96, &o) == 0 && o.min_len == 10 && o.max_len == 40, "copy at 2x: lengths 10..40");
    TaskCfg p = mk("phonebook", 544, 720);
    p.digits = 6;
    task_resolve(&p);
    CHECK(task_at_length(&p, 1440, &o) == 0 && o.max_len == 120, "phonebook at 2x: 120 entries (got %d)", o.max_len);
    TaskCfg s = mk("selcopy", 16, 80);
    task_resolve(&s);
    CHECK(task_at_length(&s, 160, &o) == 0 && o.num_tokens == 16, "selcopy keeps M");
    CHECK(task_at_length(&t, 63, &o) != 0 && strstr(eid_last_error(), "--lengths"), "an invalid length names --lengths");
    TaskCfg mix = mk("mqar-mix", 8192, 256);
    task_resolve(&mix);
    CHECK(task_at_length(&mix, 512, &o) != 0 && strstr(eid_last_error(), "--slices"), "mqar-mix points to --slices");
}

static void bad_arguments(void) {
    struct { const char *task; int V, L; const char *field, *val, *flag; } cases[] = {
        {"copy", 30, 48, "alphabet", "27", "--alphabet"},
        {"copy", 30, 20, NULL, NULL, "--seq-len"},
        {"copy", 20, 48, NULL, NULL, "--vocab"},
        {"prefix-ngram", 30, 48, "min", "3", "--min-len"},
        {"phonebook", 544, 100, NULL, NULL, "--seq-len"},
        {"phonebook", 300, 720, NULL, NULL, "--vocab"},
        {"phonebook", 544, 720, "format", "xml", "--format"},
        {"selcopy", 16, 20, NULL, NULL, "--seq-len"},
        {"assoc", 20, 41, NULL, NULL, "--seq-len"},
        {"mad-recall", 16, 128, NULL, NULL, "--seq-len"},
        {"mad-noisy", 32, 127, "frac", "1.5", "--frac-noise"},
        {"mad-compress", 16, 61, NULL, NULL, "--seq-len"},
        {"passkey", 128, 200, "depth", "2", "--depth"},
        {"passkey", 40, 200, NULL, NULL, "--vocab"},
        {"niah", 128, 20, NULL, NULL, "--seq-len"},
        {"nope", 128, 20, NULL, NULL, "--task"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TaskCfg t = mk(cases[i].task, cases[i].V, cases[i].L);
        const char *f = cases[i].field;
        if (f && !strcmp(f, "alphabet")) t.alphabet = atoi(cases[i].val);
        if (f && !strcmp(f, "min")) t.min_len = atoi(cases[i].val);
        if (f && !strcmp(f, "format")) snprintf(t.format, sizeof t.format, "%s", cases[i].val);
        if (f && !strcmp(f, "frac")) t.frac_noise = atof(cases[i].val);
        if (f && !strcmp(f, "depth")) snprintf(t.depth, sizeof t.depth, "%s", cases[i].val);
        if (!strcmp(cases[i].task, "phonebook")) t.min_len = 20, t.max_len = 60, t.digits = 6; /* pb-cpu sizes */
        CHECK(task_resolve(&t) != 0 && strstr(eid_last_error(), cases[i].flag), "%s: expected an error naming %s, got '%s'",
              cases[i].task, cases[i].flag, eid_last_error());
    }
    TaskCfg ok = mk("phonebook", 544, 720);
    ok.min_len = 20, ok.max_len = 60, ok.digits = 6;
    CHECK(task_resolve(&ok) == 0, "pb-cpu sizes fit 720 tokens: %s", eid_last_error());
    CHECK(!strcmp(task_names(), TASK_NAMES), "TASK_NAMES (help text) differs from the registry: %s", task_names());
}

int main(void) {
    eid_runtime_setup(2, 0);
    worked_examples();
    generators();
    mqar_mix();
    scorers();
    greedy();
    lengths();
    bad_arguments();
    return t_summary("test_tasks");
}
