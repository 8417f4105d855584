/* test_data.c — data sources (data/source.h) and the training step (train/trainer.h).
 *
 *  - every task's rows are bit-identical to the rows the generators gave before tasks emitted
 *    flags (hashes frozen from the code before that change);
 *  - per task, the flags: SEG_START on each example's first token only, CAUSAL on every real token,
 *    PAD only on right-padding, which carries no label; tasks that pad really do pad;
 *  - ranks: for every world size W = 1..12 dividing the batch, the ranks' slices concatenated are
 *    the one-process batch bit for bit (and the cursor advances alike);
 *  - the source state round-trips as text and bad text is refused;
 *  - train_step == the sequence it replaced (shards, norm, clip, AdamW), bit for bit, on 1 and 2
 *    shards; its label_count and all-reduce hook do what they promise. */
#include "core/runtime.h"
#include "data/source.h"
#include "model_util.h"
#include "tasks/task.h"
#include "train/optim.h"
#include "train/shards.h"
#include "train/trainer.h"

typedef struct {
    const char *name;
    int V, L;
    const char *extra;
    uint64_t hash; /* FNV-1a of 9 batches (3 streams x 3 seeds/offsets/wraps), frozen before flags */
} TaskCase;

static const TaskCase cases[] = {
    {"mqar", 8192, 64, "kv=4", 0x691e4c03949d61d3ull},
    {"mqar", 512, 128, "kv=8,rnq=1", 0xfc3c8271022d78c5ull},
    {"mqar-mix", 8192, 256, "", 0x0591d39cbe007e37ull},
    {"copy", 30, 48, "min=5", 0x83b7ee9217dc4aaaull},
    {"prefix-ngram", 30, 48, "min=5", 0xbdefae102adab924ull},
    {"suffix-ngram", 30, 48, "min=5", 0xe05803bdb1c8b264ull},
    {"phonebook", 64, 96, "pb", 0x663f3a407f8e2ff1ull},
    {"selcopy", 16, 256, "nt=16", 0x02c471a69aa7ce73ull},
    {"induction", 16, 257, "", 0x71b42c37268f297bull},
    {"assoc", 20, 42, "", 0xa978a174c0d5be2aull},
    {"mad-recall", 16, 127, "", 0x07993ee4a2b7b492ull},
    {"mad-noisy", 32, 127, "", 0x056dcc41bccaa4d5ull},
    {"mad-fuzzy", 16, 128, "", 0xe49b2c17afe1f4afull},
    {"mad-selcopy", 16, 256, "", 0x0780557c621aa2e3ull},
    {"mad-compress", 16, 62, "", 0xc33d2e86441a7953ull},
    {"mad-memorize", 256, 32, "", 0x45dbd52ef5f73960ull},
    {"passkey", 128, 256, "", 0x0aed1164b309ef23ull},
    {"niah", 128, 256, "", 0xb6ec558570b79f0cull},
};
#define N_CASES (int)(sizeof cases / sizeof cases[0])

static TaskCfg task_of(const TaskCase *c) {
    TaskCfg t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", c->name);
    t.vocab_size = c->V, t.seq_len = c->L;
    if (strstr(c->extra, "kv=4")) t.kv_pairs = 4;
    if (strstr(c->extra, "kv=8")) t.kv_pairs = 8;
    if (strstr(c->extra, "rnq")) t.random_non_queries = 1;
    if (strstr(c->extra, "min=5")) t.min_len = 5, t.max_len = 20;
    if (strstr(c->extra, "pb"))
        t.min_len = 4, t.max_len = 8, t.min_queries = 1, t.max_queries = 2, t.digits = 4, t.first_names = 16, t.surnames = 16;
    if (strstr(c->extra, "nt=16")) t.num_tokens = 16;
    if (task_resolve(&t) != 0) { fprintf(stderr, "%s: %s\n", c->name, eid_last_error()); exit(2); }
    return t;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

/* tokens and labels are what they were before flags existed, with and without flags requested */
static void frozen_rows(void) {
    for (int i = 0; i < N_CASES; i++) {
        TaskCfg t = task_of(&cases[i]);
        int B = 12, L = t.seq_len;
        int *in = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
        uint8_t *fl = eid_xmalloc((size_t)B * L);
        uint64_t h[2] = {1469598103934665603ull, 1469598103934665603ull};
        for (int f = 0; f < 2; f++)
            for (int s = 0; s < 3; s++)
                for (int k = 0; k < 3; k++) {
                    task_batch(&t, 11 + k, s, (uint64_t)k * 37, k == 2 ? 50 : 0, B, in, lab, f ? fl : NULL);
                    h[f] = fnv(h[f], in, sizeof(int) * B * L), h[f] = fnv(h[f], lab, sizeof(int) * B * L);
                }
        CHECK(h[0] == cases[i].hash && h[1] == cases[i].hash, "%s (L=%d): rows changed: hash %016llx / %016llx, frozen %016llx",
              t.name, L, (unsigned long long)h[0], (unsigned long long)h[1], (unsigned long long)cases[i].hash);
        free(in), free(lab), free(fl);
    }
}

/* Whether n real tokens fit the row's content, read off independently of the generator's count,
 * for the tasks that pad: copy/n-grams end with '.', the phone book with <eos>, an mqar-mix
 * example has a mixture length beyond its last query, zeros after it. Other tasks: n == L. */
static int len_ok(const TaskCfg *t, const int *in, const int *lab, int n, int *known) {
    int L = t->seq_len, end = L;
    *known = 1;
    if (!strcmp(t->name, "copy") || strstr(t->name, "ngram")) {
        for (int p = L - 1; p >= 0; p--)
            if (in[p] == t->alphabet + 2) end = p + 1; /* the first '.' */
        return n == end;
    }
    if (!strcmp(t->name, "phonebook")) {
        for (int p = L - 1; p >= 0; p--)
            if (in[p] == 2) end = p + 1; /* the first <eos> */
        return n == end;
    }
    if (!strcmp(t->name, "mqar-mix")) {
        int last = 0, mix = 0, zeros = 1;
        for (int p = 0; p < L; p++)
            if (lab[p] != -100) last = p;
        for (int i = 0; i < t->n_mix; i++) mix |= t->mix_L[i] == n;
        for (int p = n; p < L; p++) zeros &= in[p] == 0;
        return mix && last < n && zeros;
    }
    *known = 0;
    return n == L;
}

/* every task's flags, both streams */
static void task_flag_rules(void) {
    for (int i = 0; i < N_CASES; i++) {
        if (i > 0 && !strcmp(cases[i].name, cases[i - 1].name)) continue;
        TaskCfg t = task_of(&cases[i]);
        int B = 16, L = t.seq_len, bad_seg = 0, bad_causal = 0, bad_pad = 0, bad_len = 0, padded = 0, known = 0, prompts = 0;
        int *in = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
        uint8_t *fl = eid_xmalloc((size_t)B * L);
        for (int s = 0; s < 2; s++)
            for (int k = 0; k < 8; k++) {
                task_batch(&t, 3, s, (uint64_t)k * B, 0, B, in, lab, fl);
                for (int b = 0; b < B; b++) {
                    const int *x = in + (size_t)b * L, *y = lab + (size_t)b * L;
                    const uint8_t *f = fl + (size_t)b * L;
                    int n = 0;
                    while (n < L && !(f[n] & FLAG_PAD)) n++; /* real tokens first, then padding */
                    int p0 = 0; /* the prompt: tokens before the first labelled position */
                    while (p0 < n && y[p0] == -100) p0++;
                    if (p0 == n) p0 = 0;
                    prompts += p0 > 0;
                    for (int p = 0; p < L; p++) {
                        bad_seg += ((f[p] & FLAG_SEG_START) != 0) != (p == 0);
                        /* every token that is not prompt is CAUSAL (a missing flag would leak the future
                         * into a bidirectional layer, docs/layers.md §8.1); prompt tokens are not */
                        int want = (p == 0 ? FLAG_SEG_START : 0) | (p >= p0 ? FLAG_CAUSAL : 0);
                        if (p < n) bad_causal += f[p] != want || (y[p] != -100 && !(f[p] & FLAG_CAUSAL));
                        else bad_pad += f[p] != FLAG_PAD || y[p] != -100 || x[p] != x[L - 1];
                    }
                    padded += n < L;
                    int kn, ok = len_ok(&t, x, y, n, &kn);
                    known |= kn;
                    bad_len += !ok;
                }
            }
        CHECK(!bad_seg, "%s: %d tokens with SEG_START wrong (expected on each example's first token only)", t.name, bad_seg);
        CHECK(!bad_causal, "%s: %d real tokens with CAUSAL wrong (expected from the first labelled position on)",
              t.name, bad_causal);
        /* the tasks with a prompt and an answer region really emit the prompt */
        static const char *const prompted[] = {"phonebook", "copy", "prefix-ngram", "suffix-ngram", "passkey", "niah"};
        for (size_t k = 0; k < sizeof prompted / sizeof *prompted; k++)
            if (!strcmp(t.name, prompted[k])) CHECK(prompts > 0, "%s: no row has a bidirectional prompt", t.name);
        CHECK(!bad_pad, "%s: %d padding tokens not PAD alone, labelled, or not the pad token", t.name, bad_pad);
        CHECK(!bad_len, "%s: %d rows whose PAD does not start right after the example", t.name, bad_len);
        if (known) CHECK(padded > 0, "%s: a padding task produced no padded row in %d rows", t.name, 2 * 8 * B);
        free(in), free(lab), free(fl);
    }
}

/* rank r of W reads rows [r·B/W, (r+1)·B/W) of every global batch; all ranks = the W = 1 batch */
static void ranks(void) {
    TaskCfg t = task_of(&cases[3]); /* copy: padded rows, so flags vary */
    enum { B = 24, STEPS = 3 };
    int L = t.seq_len, bad = 0, tested = 0;
    size_t n = (size_t)B * L;
    int *in1 = eid_xmalloc(sizeof(int) * n * STEPS), *lab1 = eid_xmalloc(sizeof(int) * n * STEPS);
    uint8_t *fl1 = eid_xmalloc(n * STEPS);
    int *in = eid_xmalloc(sizeof(int) * n * STEPS), *lab = eid_xmalloc(sizeof(int) * n * STEPS);
    uint8_t *fl = eid_xmalloc(n * STEPS);
    DataSource one;
    source_task_init(&one, &t, 9, 40); /* a finite training set of 40 rows: batches wrap */
    for (int k = 0; k < STEPS; k++) source_next(&one, B, in1 + k * n, lab1 + k * n, fl1 + k * n);
    CHECK(one.cursor == (uint64_t)B * STEPS, "cursor after %d batches: %llu", STEPS, (unsigned long long)one.cursor);
    for (int W = 1; W <= 12; W++) {
        if (B % W) continue;
        tested++;
        memset(in, 0xff, sizeof(int) * n * STEPS), memset(fl, 0xff, n * STEPS);
        int b = B / W;
        for (int r = 0; r < W; r++) {
            DataSource s;
            source_task_init(&s, &t, 9, 40);
            CHECK(source_set_rank(&s, r, W) == 0, "rank %d of %d: %s", r, W, eid_last_error());
            CHECK(source_local_rows(&s, B) == b, "W=%d: local rows %d", W, source_local_rows(&s, B));
            for (int k = 0; k < STEPS; k++) {
                size_t at = k * n + (size_t)r * b * L;
                if (source_next(&s, B, in + at, lab + at, fl + at) != 0) bad++;
            }
            bad += s.cursor != one.cursor;
        }
        bad += memcmp(in, in1, sizeof(int) * n * STEPS) != 0 || memcmp(lab, lab1, sizeof(int) * n * STEPS) != 0 ||
               memcmp(fl, fl1, n * STEPS) != 0;
        CHECK(!bad, "world %d: the ranks' rows differ from the one-process batches", W);
    }
    CHECK(tested == 7, "tested %d world sizes", tested);
    DataSource s;
    source_task_init(&s, &t, 9, 0);
    CHECK(source_set_rank(&s, 3, 3) != 0 && strstr(eid_last_error(), "--rank"), "rank 3 of 3 accepted");
    CHECK(source_set_rank(&s, 0, 0) != 0 && strstr(eid_last_error(), "--world"), "world 0 accepted");
    source_set_rank(&s, 1, 5);
    CHECK(source_next(&s, B, in, lab, fl) != 0 && strstr(eid_last_error(), "--batch") && s.cursor == 0,
          "batch %d over 5 ranks accepted (or the cursor moved)", B);
    free(in1), free(lab1), free(fl1), free(in), free(lab), free(fl);
}

static void state_text(void) {
    TaskCfg t = task_of(&cases[0]);
    DataSource s, r;
    source_task_init(&s, &t, 1, 0);
    s.cursor = 123456789012345ull;
    char buf[64];
    CHECK(source_save(&s, buf, sizeof buf) == 0 && !strcmp(buf, "cursor=123456789012345"), "saved '%s'", buf);
    source_task_init(&r, &t, 1, 0);
    CHECK(source_restore(&r, buf) == 0 && r.cursor == s.cursor, "restored cursor %llu", (unsigned long long)r.cursor);
    /* the next batch of a restored source equals the original's */
    int a[4 * 64], al[4 * 64], b[4 * 64], bl[4 * 64];
    source_next(&s, 4, a, al, NULL), source_next(&r, 4, b, bl, NULL);
    CHECK(!memcmp(a, b, sizeof a) && !memcmp(al, bl, sizeof al), "restored source reads other rows");
    CHECK(source_restore(&r, "cursor=x") != 0 && strstr(eid_last_error(), "cursor=N"), "bad state accepted");
    CHECK(source_restore(&r, "pos=3") != 0, "state without cursor accepted");
    CHECK(source_restore(&r, "cursor=5 more") != 0 && strstr(eid_last_error(), "no state beyond"),
          "extra state accepted by a task source");
    CHECK(source_save(&s, buf, 8) != 0, "a too-small buffer was accepted");
}

/* ---- train_step ---- */

static void old_step(Shards *sh, AdamW *o, const OptimCfg *oc, long step, const Batch *b) {
    Model *m = sh->rep[0];
    LossOut lo;
    shards_grads(sh, b, &lo);
    double gn = grad_norm(m), scale = 1;
    if (oc->grad_clip > 0 && gn > oc->grad_clip) scale = oc->grad_clip / gn;
    adamw_step(o, m, oc, lr_at(oc, step), scale);
}

static int n_reduce;
static int reduce_twice(real *g, size_t n, void *ctx) { /* two identical processes: the sum doubles */
    n_reduce++;
    CHECK(n == ((Model *)ctx)->n_reals && g == ((Model *)ctx)->grad, "all-reduce got another vector");
    for (size_t i = 0; i < n; i++) g[i] *= 2;
    return 0;
}

static void step_equals_old_sequence(const char *layers, int shards, double clip) {
    TaskCfg t = task_of(&cases[3]); /* copy, L = 48: padded rows with flags */
    enum { B = 4, STEPS = 4 };
    int L = t.seq_len;
    int *in = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
    uint8_t *fl = eid_xmalloc((size_t)B * L);
    Model *m[2];
    AdamW o[2];
    Shards sh[2];
    OptimCfg oc = {.lr = 3e-3, .min_lr = 3e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1,
                   .grad_clip = clip, .warmup = 2, .total_steps = 10};
    for (int v = 0; v < 2; v++) {
        m[v] = tiny_model(layers, 30, 16, 8, 1, 8, 5);
        adamw_init(&o[v], m[v]);
        shards_init(&sh[v], m[v], shards), shards_plan(&sh[v], B, L, L);
    }
    DataSource src;
    source_task_init(&src, &t, 2, 0);
    int clipped = 0;
    for (long s = 0; s < STEPS; s++) {
        source_next(&src, B, in, lab, fl);
        Batch b = {in, lab, fl, B, L, 0};
        old_step(&sh[0], &o[0], &oc, s, &b);
        StepOut so;
        CHECK(train_step(&sh[1], &o[1], &oc, s, &b, 0, NULL, NULL, &so) == STEP_OK, "train_step: %s", eid_last_error());
        clipped |= so.clip_scale < 1;
        CHECK(so.lr == lr_at(&oc, s) && so.grad_norm > 0 && so.n_labels > 0, "step %ld: lr %g norm %g labels %d", s,
              so.lr, so.grad_norm, so.n_labels);
    }
    CHECK(!memcmp(m[0]->w, m[1]->w, sizeof(real) * m[0]->n_reals) && !memcmp(o[0].m, o[1].m, sizeof(real) * m[0]->n_reals) &&
              !memcmp(o[0].v, o[1].v, sizeof(real) * m[0]->n_reals) && o[0].t == o[1].t,
          "[%s, %d shards, clip %g] train_step differs from the old step sequence", layers, shards, clip);
    if (clip > 0 && clip < 1e-3) CHECK(clipped, "[%s] clip %g never clipped", layers, clip);
    for (int v = 0; v < 2; v++) shards_free(&sh[v]), adamw_free(&o[v]), model_free(m[v]);
    free(in), free(lab), free(fl);
}

/* label_count and the all-reduce hook: two identical "processes" each summing into the hook with the
 * global count (2x) give the one-process step exactly (power-of-two scalings are exact) */
static void step_label_count_and_reduce(void) {
    TaskCfg t = task_of(&cases[0]);
    enum { B = 2 };
    int L = t.seq_len;
    int in[B * 64], lab[B * 64];
    uint8_t fl[B * 64];
    DataSource src;
    source_task_init(&src, &t, 4, 0);
    source_next(&src, B, in, lab, fl);
    Batch b = {in, lab, fl, B, L, 0};
    OptimCfg oc = {.lr = 1e-3, .min_lr = 1e-4, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .grad_clip = 1.0, .total_steps = 10};
    Model *m[2];
    AdamW o[2];
    Shards sh[2];
    StepOut so[2];
    for (int v = 0; v < 2; v++) {
        m[v] = tiny_model("longhorn,mamba", 8192, 16, 0, 1, 8, 3);
        adamw_init(&o[v], m[v]);
        shards_init(&sh[v], m[v], 1), shards_plan(&sh[v], B, L, 64);
    }
    train_step(&sh[0], &o[0], &oc, 0, &b, 0, NULL, NULL, &so[0]);
    n_reduce = 0;
    int rc = train_step(&sh[1], &o[1], &oc, 0, &b, 2 * so[0].n_labels, reduce_twice, m[1], &so[1]);
    CHECK(rc == STEP_OK && n_reduce == 1, "train_step with a hook: rc %d, hook called %d times", rc, n_reduce);
    CHECK(so[1].grad_norm == so[0].grad_norm && so[1].clip_scale == so[0].clip_scale,
          "global count + hook: norm %.17g vs %.17g", so[1].grad_norm, so[0].grad_norm);
    CHECK(!memcmp(m[0]->w, m[1]->w, sizeof(real) * m[0]->n_reals), "global count + hook: weights differ");
    /* the count alone halves the gradient: the norm halves */
    model_zero_grad(m[1]);
    train_step(&sh[1], &o[1], &oc, 1, &b, 2 * so[0].n_labels, NULL, NULL, &so[1]);
    train_step(&sh[0], &o[0], &oc, 1, &b, 0, NULL, NULL, &so[0]);
    CHECK(fabs(so[1].grad_norm * 2 - so[0].grad_norm) <= 1e-12 * so[0].grad_norm, "label_count 2n: norm %.17g, n: %.17g",
          so[1].grad_norm, so[0].grad_norm);
    /* (a diverging step, STEP_DIVERGED: tests/cli/cli_errors.sh "diverging run" through the trainer) */
    /* bad labels: −1 */
    lab[0] = 99999;
    CHECK(train_step(&sh[1], &o[1], &oc, 2, &b, 0, NULL, NULL, &so[1]) == -1 && strstr(eid_last_error(), "label"),
          "a label outside the vocabulary was accepted");
    for (int v = 0; v < 2; v++) shards_free(&sh[v]), adamw_free(&o[v]), model_free(m[v]);
}

int main(void) {
    eid_runtime_setup(2, 0);
    frozen_rows();
    task_flag_rules();
    ranks();
    state_text();
    step_equals_old_sequence("longhorn,longhorn", 1, 1.0);
    step_equals_old_sequence("mamba,gla", 2, 1e-4);
    step_equals_old_sequence("attn,mamba2", 2, 0);
    step_label_count_and_reduce();
    return t_summary("test_data");
}
