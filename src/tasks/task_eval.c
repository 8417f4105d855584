/* task_eval.c — test-stream evaluation with each task's scorer. One teacher-forced forward pass
 * gives per-position correctness (argmax == label) for every metric; the phone book's digit
 * accuracy (docs/tasks.md §3.2) is measured by greedy decoding with the recurrent Decoder instead. */
#include "tasks/task_eval.h"
#include <stdlib.h>
#include <string.h>
#include "data/source.h"

typedef struct {
    double score, frac, exact, digit_tf, loss;
    long n_score, n_ex, n_digit, n_loss;
    long *cls_ok, *cls_n; /* [V] per target class */
} Acc;

static int argmax(const real *x, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (x[v] > x[best]) best = v;
    return best;
}

void task_greedy_digits(Model *m, const TaskCfg *t, const int *in, const int *lab, int B, double *acc) {
    int L = t->seq_len, V = m->cfg.vocab_size;
    int *p0 = eid_xmalloc(sizeof(int) * 3 * B), *tlen = p0 + B, *tok = tlen + B;
    int *gen = eid_xmalloc(sizeof(int) * (size_t)B * L);
    for (int b = 0; b < B; b++) {
        const int *y = lab + (size_t)b * L;
        p0[b] = 0, tlen[b] = 0;
        while (p0[b] < L && y[p0[b]] == -100) p0[b]++;
        while (p0[b] + tlen[b] < L && y[p0[b] + tlen[b]] != -100) tlen[b]++;
    }
    /* Every prompt, through its <gen> token (position p0, the first labelled one), goes through one
     * parallel model_prefill, left-padded to the longest: the prompt [0, p0) without CAUSAL, so a
     * bidirectional layer reads it both ways, <gen> CAUSAL (docs/layers.md §8.4; the flags of
     * task_flags). Then each sequence reads its own previous greedy token (0 once finished). */
    int P = 1, steps = 0;
    for (int b = 0; b < B; b++) {
        if (tlen[b]) P = EID_MAX(P, p0[b] + 1);
        steps = EID_MAX(steps, tlen[b]);
    }
    int *ptok = eid_xmalloc(sizeof(int) * (size_t)B * P);
    uint8_t *pfl = eid_xmalloc((size_t)B * P);
    for (int b = 0; b < B; b++) {
        int r = tlen[b] ? p0[b] + 1 : 1, o = P - r; /* real tokens of this row, left padding */
        for (int q = 0; q < P; q++) {
            int k = q - o;
            ptok[(size_t)b * P + q] = k < 0 ? 0 : in[(size_t)b * L + k];
            pfl[(size_t)b * P + q] = k < 0 ? FLAG_PAD : (k == 0 ? FLAG_SEG_START : 0) | (k >= r - 1 ? FLAG_CAUSAL : 0);
        }
    }
    Decoder *d = decoder_new(m, B);
    const real *logits = model_prefill(m, d, ptok, pfl, B, P);
    free(ptok), free(pfl);
    if (!logits) eid_fatal("greedy decoding: %s", eid_last_error());
    for (int j = 0; j < steps; j++) {
        if (j > 0) {
            for (int b = 0; b < B; b++) tok[b] = j - 1 < tlen[b] ? gen[(size_t)b * L + j - 1] : 0;
            logits = decoder_step(m, d, tok);
        }
        for (int b = 0; b < B; b++)
            if (j < tlen[b]) gen[(size_t)b * L + j] = argmax(logits + (size_t)b * V, V);
    }
    for (int b = 0; b < B; b++) /* digit accuracy of §3.2: token by token, or on the text of a text task */
        acc[b] = tlen[b] ? task_greedy_score(t, lab + (size_t)b * L + p0[b], tlen[b], gen + (size_t)b * L, tlen[b]) : -1;
    decoder_free(d);
    free(p0), free(gen);
}

/* per-example metrics of one teacher-forced batch */
static void score_batch(const TaskCfg *t, const int *lab, const uint8_t *cap, int nb, Acc *a) {
    int L = t->seq_len;
    ScoreKind k = task_score_kind(t);
    for (int b = 0; b < nb; b++) {
        const int *y = lab + (size_t)b * L;
        const uint8_t *c = cap + (size_t)b * L;
        int n = 0, ok = 0, nd = 0, okd = 0;
        for (int p = 0; p < L; p++) {
            if (y[p] == -100) continue;
            n++, ok += c[p];
            a->cls_n[y[p]]++, a->cls_ok[y[p]] += c[p];
            if (task_is_digit_label(t, y[p])) nd++, okd += c[p];
        }
        if (!n) continue;
        a->n_ex++, a->frac += (double)ok / n, a->exact += ok == n;
        if (nd) a->n_digit++, a->digit_tf += (double)okd / nd;
        double s = task_score_example(t, y, c);
        if (k != SCORE_DIGITS && s >= 0) a->score += s, a->n_score++;
    }
}

static int eval_stream(Model *m, const TaskCfg *t, uint64_t seed, int stream, int n, int batch, Acc *a) {
    int L = t->seq_len, K = task_labels_per_example(t), rc = 0;
    if (batch > n) batch = n;
    if (model_plan(m, batch, L, batch * K) != 0) return -1;
    int *in = eid_xmalloc(sizeof(int) * batch * L), *lab = eid_xmalloc(sizeof(int) * batch * L);
    uint8_t *cap = eid_xmalloc((size_t)batch * L), *fl = eid_xmalloc((size_t)batch * L);
    DataSource src;
    source_task_init(&src, t, seed, 0);
    double *dacc = eid_xmalloc(sizeof(double) * batch);
    for (long i = 0; i < n; i += batch) {
        /* a short last batch is padded with unlabelled copies so the plan stays fixed */
        int nb = (int)EID_MIN((long)batch, n - i);
        if ((rc = source_rows(&src, stream, (uint64_t)i, nb, in, lab, fl)) != 0) break;
        for (int b = nb; b < batch; b++) {
            memcpy(in + (size_t)b * L, in, sizeof(int) * L);
            memcpy(fl + (size_t)b * L, fl, (size_t)L);
            for (int j = 0; j < L; j++) lab[(size_t)b * L + j] = -100;
        }
        if ((rc = model_check_tokens(m, in, (size_t)batch * L, "eval data")) != 0) break;
        if ((rc = model_plan(m, batch, L, batch * K)) != 0) break; /* greedy decoding's prefill replans */
        model_trunk_forward(m, in, fl, batch, L);
        Batch bt = {in, lab, fl, batch, L, 0};
        LossOut lo;
        if ((rc = model_loss(m, &bt, &lo)) != 0) break;
        a->loss += lo.loss * lo.n_examples, a->n_loss += lo.n_examples;
        memset(cap, 0, (size_t)batch * L);
        for (int r = 0; r < m->n_rows; r++) cap[m->rows[r]] = m->correct[r];
        score_batch(t, lab, cap, nb, a);
        if (task_score_kind(t) == SCORE_DIGITS) {
            task_greedy_digits(m, t, in, lab, batch, dacc);
            for (int b = 0; b < nb; b++)
                if (dacc[b] >= 0) a->score += dacc[b], a->n_score++;
        }
    }
    free(in), free(lab), free(cap), free(fl), free(dacc);
    return rc;
}

static double macro_of(const Acc *a, int V) {
    double s = 0;
    int c = 0;
    for (int v = 0; v < V; v++)
        if (a->cls_n[v]) s += (double)a->cls_ok[v] / a->cls_n[v], c++;
    return c ? s / c : 0;
}

int task_evaluate(Model *m, const TaskCfg *t, uint64_t seed, int n, int batch, TaskEval *out) {
    int V = m->cfg.vocab_size, rc = 0;
    Acc a = {0};
    a.cls_ok = eid_xcalloc((size_t)V, sizeof(long)), a.cls_n = eid_xcalloc((size_t)V, sizeof(long));
    memset(out, 0, sizeof *out);
    if (!strcmp(t->name, "mqar-mix")) {
        /* Protocol B: each test slice at its own length on its own stream; accuracy = mean over all examples */
        for (int s = 0; s < t->n_slices && rc == 0; s++) {
            TaskCfg ts;
            double before = a.score;
            long nb = a.n_score;
            if ((rc = task_slice(t, s, &ts)) == 0) rc = eval_stream(m, &ts, seed, 2 + s, n, batch, &a);
            out->slice_acc[s] = a.n_score > nb ? (a.score - before) / (a.n_score - nb) : 0;
        }
        out->n_slices = t->n_slices;
    } else {
        rc = eval_stream(m, t, seed, STREAM_TEST, n, batch, &a);
    }
    if (rc == 0) {
        out->examples = a.n_ex;
        out->loss = a.n_loss ? a.loss / a.n_loss : 0;
        out->token_acc = a.n_ex ? a.frac / a.n_ex : 0;
        out->exact = a.n_ex ? a.exact / a.n_ex : 0;
        out->macro = macro_of(&a, V);
        out->digit_tf = a.n_digit ? a.digit_tf / a.n_digit : -1;
        out->accuracy = task_score_kind(t) == SCORE_MACRO ? out->macro : a.n_score ? a.score / a.n_score : 0;
    }
    free(a.cls_ok), free(a.cls_n);
    return rc;
}
