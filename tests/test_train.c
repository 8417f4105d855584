/* test_train.c — training smoke tests: a tiny model overfits one fixed batch; the learning-rate
 * schedule and gradient clipping behave as documented; data-parallel shards give the batch's
 * gradients, loss and accuracy, the same bits on any thread count, and refuse bad input. */
#include "core/runtime.h"
#include "model_util.h"
#include "tasks/task.h"
#include "train/optim.h"
#include "train/shards.h"
#include "train/dist.h"

static void overfit_one_batch(const char *layers) {
    TaskCfg t = {.name = "mqar", .vocab_size = 64, .seq_len = 16, .kv_pairs = 2};
    task_resolve(&t);
    const int B = 4, L = 16;
    int in[B * L], lab[B * L];
    task_batch(&t, 1, STREAM_TRAIN, 0, 0, B, in, lab, NULL);
    Model *m = tiny_model(layers, 64, 16, 0, 1, 0, 3);
    OptimCfg oc = {.lr = 1e-2, .min_lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .total_steps = 300};
    AdamW o;
    adamw_init(&o, m);
    model_plan(m, B, L, B * L);
    Batch b = {in, lab, NULL, B, L, 0};
    LossOut lo, first = {0};
    for (int s = 0; s < 300; s++) {
        model_zero_grad(m);
        model_trunk_forward(m, in, NULL, B, L);
        model_loss(m, &b, &lo);
        if (s == 0) first = lo;
        model_backward(m, &b);
        adamw_step(&o, m, &oc, oc.lr, 1);
    }
    CHECK(lo.loss < 0.05 * first.loss, "[%s] did not overfit one batch: loss %.4f -> %.4f", layers, first.loss, lo.loss);
    CHECK(lo.accuracy == 1.0, "[%s] accuracy on the memorised batch %.3f", layers, lo.accuracy);
    adamw_free(&o);
    model_free(m);
}

static void schedule(void) {
    OptimCfg c = {.lr = 1.0, .min_lr = 0.1, .warmup = 10, .total_steps = 110};
    CHECK(fabs(lr_at(&c, 0) - 0.1) < 1e-12, "warm-up starts at lr/warmup");
    CHECK(fabs(lr_at(&c, 9) - 1.0) < 1e-12, "warm-up ends at lr");
    CHECK(fabs(lr_at(&c, 60) - 0.55) < 1e-12, "cosine midpoint is (lr+min)/2: %g", lr_at(&c, 60));
    CHECK(fabs(lr_at(&c, 110) - 0.1) < 1e-12, "cosine ends at min_lr");
}

/* no weight decay on parameters flagged decay = 0 (norms, biases, D) */
static void decay_mask(void) {
    Model *m = tiny_model("longhorn", 16, 8, 0, 1, 0, 1);
    AdamW o;
    adamw_init(&o, m);
    model_zero_grad(m);
    real *before = eid_xmalloc(sizeof(real) * m->n_reals);
    memcpy(before, m->w, sizeof(real) * m->n_reals);
    OptimCfg c = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.5};
    adamw_step(&o, m, &c, 0.1, 1); /* zero gradients: only decay moves weights */
    int bad = 0;
    for (int j = 0; j < m->nparam; j++) {
        const ParamEntry *p = &m->param[j];
        real w0 = before[p->offset], w1 = m->w[p->offset];
        int nodecay = strstr(p->name, "norm") || strstr(p->name, "bias") || strstr(p->name, ".D");
        if (nodecay ? w1 != w0 : fabs(w1 - 0.95 * w0) > 1e-12 * fabs(w0)) bad++, fprintf(stderr, "  decay wrong on %s\n", p->name);
    }
    CHECK(bad == 0, "%d tensors decayed wrongly", bad);
    free(before);
    adamw_free(&o);
    model_free(m);
}

/* MQAR batch with a varying number of labels per example (some queries unlabelled), so that a
 * shard's own label count differs from the batch's: the normalisation must be the batch's. */
static void shard_batch(int *in, int *lab, int B, int L) {
    TaskCfg t = {.name = "mqar", .vocab_size = 64, .seq_len = L, .kv_pairs = 3};
    task_resolve(&t);
    task_batch(&t, 5, STREAM_TRAIN, 0, 0, B, in, lab, NULL);
    for (int b = 0; b < B; b++) /* example b keeps b % 3 + 1 of its labels */
        for (int i = 0, kept = 0; i < L; i++)
            if (lab[b * L + i] != -100 && kept++ >= b % 3 + 1) lab[b * L + i] = -100;
}

/* Gradients of n shards == one pass over the whole batch (fp64: rounding only), for every mixer */
static void shards_match_whole_batch(const char *layers) {
    enum { B = 6, L = 24 };
    int in[B * L], lab[B * L];
    shard_batch(in, lab, B, L);
    Batch bt = {in, lab, NULL, B, L, 0};
    Model *m = tiny_model(layers, 64, 16, 8, 1, 4, 7);
    real *whole = eid_xmalloc(sizeof(real) * m->n_reals);
    Shards sh;
    CHECK(shards_init(&sh, m, 1) == 0 && shards_plan(&sh, B, L, L) == 0, "[%s] 1 shard: %s", layers, eid_last_error());
    LossOut ref, lo;
    shards_grads(&sh, &bt, &ref);
    memcpy(whole, m->grad, sizeof(real) * m->n_reals);
    shards_free(&sh);
    static const int ns[] = {2, 3, 6};
    for (int k = 0; k < 3; k++) {
        int n = ns[k];
        CHECK(shards_init(&sh, m, n) == 0 && shards_plan(&sh, B, L, L) == 0, "[%s] %d shards: %s", layers, n, eid_last_error());
        CHECK(shards_grads(&sh, &bt, &lo) == 0, "[%s] %d shards: %s", layers, n, eid_last_error());
        double worst = 0, scale = 0;
        for (size_t i = 0; i < m->n_reals; i++) {
            worst = t_worst(worst, fabs(m->grad[i] - whole[i]));
            scale = t_worst(scale, fabs(whole[i]));
        }
        CHECK(scale > 0 && worst <= 1e-12 * scale, "[%s] %d shards: gradient differs by %.3g (max |g| %.3g)", layers, n,
              worst, scale);
        CHECK(fabs(lo.loss - ref.loss) <= 1e-12 * ref.loss && fabs(lo.accuracy - ref.accuracy) <= 1e-12 &&
                  lo.n_labels == ref.n_labels && lo.n_correct == ref.n_correct && lo.n_examples == ref.n_examples,
              "[%s] %d shards: loss %.15g acc %.15g labels %d, whole batch %.15g %.15g %d", layers, n, lo.loss,
              lo.accuracy, lo.n_labels, ref.loss, ref.accuracy, ref.n_labels);
        shards_free(&sh);
    }
    free(whole);
    model_free(m);
}

/* n shards give the same bits on 1 and 2 threads (they run in turn or side by side) */
static void shards_thread_independent(void) {
    enum { B = 4, L = 24 };
    int in[B * L], lab[B * L];
    shard_batch(in, lab, B, L);
    Batch bt = {in, lab, NULL, B, L, 0};
    Model *m = tiny_model("longhorn,mamba", 64, 16, 0, 1, 4, 9);
    real *g[2];
    LossOut lo[2];
    for (int th = 1; th <= 2; th++) {
        eid_runtime_setup(th, 0);
        Shards sh;
        shards_init(&sh, m, 2), shards_plan(&sh, B, L, L);
        shards_grads(&sh, &bt, &lo[th - 1]);
        g[th - 1] = eid_xmalloc(sizeof(real) * m->n_reals);
        memcpy(g[th - 1], m->grad, sizeof(real) * m->n_reals);
        shards_free(&sh);
    }
    CHECK(memcmp(g[0], g[1], sizeof(real) * m->n_reals) == 0 && lo[0].loss == lo[1].loss,
          "2 shards: gradients differ between 1 and 2 threads");
    free(g[0]), free(g[1]);
    model_free(m);
    eid_runtime_setup(2, 0);
}

static void shards_refuse_bad_input(void) {
    enum { B = 4, L = 24 };
    int in[B * L], lab[B * L];
    shard_batch(in, lab, B, L);
    Model *m = tiny_model("longhorn", 64, 16, 0, 1, 0, 3);
    Shards sh;
    shards_init(&sh, m, 3);
    CHECK(shards_plan(&sh, B, L, L) != 0 && strstr(eid_last_error(), "--shards 3 must divide the batch size 4"),
          "3 shards of a batch of 4: %s", eid_last_error());
    shards_free(&sh);
    shards_init(&sh, m, 2), shards_plan(&sh, B, L, 1); /* at most 2 labels per shard */
    Batch bt = {in, lab, NULL, B, L, 0};
    LossOut lo;
    CHECK(shards_grads(&sh, &bt, &lo) != 0 && strstr(eid_last_error(), "more labelled positions than planned"),
          "too many labels: %s", eid_last_error());
    shards_plan(&sh, B, L, L);
    lab[3 * L + 2] = 64;
    CHECK(shards_grads(&sh, &bt, &lo) != 0 && strstr(eid_last_error(), "label 64 at position 74 is outside [0, 64)"),
          "bad label: %s", eid_last_error());
    shards_free(&sh);
    Shards bad;
    CHECK(shards_init(&bad, m, 0) != 0 && shards_init(&bad, m, EID_MAX_SHARDS + 1) != 0, "shard counts 0 and 65 refused");
    model_free(m);
    CHECK(shards_divisor(64, 2) == 2 && shards_divisor(15, 2) == 1 && shards_divisor(12, 8) == 6 &&
              shards_divisor(1, 16) == 1 && shards_divisor(16, 1) == 1 && shards_divisor(128, 100) == 64,
          "shards_divisor: the largest divisor of the batch <= n (<= 64)");
    ModelCfg small = {.d_model = 128}, wide = {.d_model = 512};
    CHECK(shards_auto(&small, 64, 2) == 2 && shards_auto(&wide, 64, 2) == 1 && shards_auto(&small, 15, 2) == 1,
          "shards_auto: one per thread up to d_model %d, else 1", SHARDS_AUTO_MAX_D);
}

/* The one-rank dist (train/dist.h, the build without MPI): one rank; the exchange of S shards is
 * the sequential shard-order sum, bit for bit; the collectives leave their data as it is. The MPI
 * build is tested across processes by tests/cli/mpi.sh. */
static void dist_one_rank(void) {
    CHECK(dist_init(5) == 0 && dist_rank() == 0 && dist_world() == 1 && !dist_mpi_built(), "one rank of one");
    enum { S = 3, N = 10007 };
    real *g[S], want[N];
    for (int k = 0; k < S; k++) {
        g[k] = eid_xmalloc(sizeof(real) * N);
        for (int i = 0; i < N; i++) g[k][i] = (real)((i * 7 + k * 3) % 101) * (real)0.01 + (real)k / 3;
    }
    for (int i = 0; i < N; i++) want[i] = (g[0][i] + g[1][i]) + g[2][i];
    CHECK(dist_reduce_shards(g, S, N) == 0 && !memcmp(g[0], want, sizeof want), "one-rank exchange != ((g0+g1)+g2)");
    CHECK(dist_take_reduce_seconds() >= 0 && dist_take_reduce_seconds() == 0, "exchange time not reset when taken");
    long v[2] = {3, -4};
    int mx[2] = {1, 7};
    LossOut a = {.loss = 1.5, .n_labels = 3}, b;
    CHECK(dist_sum_long(v, 2) == 0 && v[0] == 3 && v[1] == -4 && dist_max_int(mx, 2) == 0 && mx[1] == 7 &&
              dist_allgather(&a, sizeof a, &b) == 0 && b.loss == 1.5 && b.n_labels == 3 && dist_barrier() == 0,
          "one-rank collectives changed their data");
    for (int k = 0; k < S; k++) free(g[k]);
}

int main(void) {
    eid_runtime_setup(2, 0);
    dist_one_rank();
    static const char *mixers[] = {"longhorn", "mamba", "mamba2", "gla", "attn", "swa", "pos:attn,longhorn"};
    for (int i = 0; i < 7; i++) shards_match_whole_batch(mixers[i]);
    shards_thread_independent();
    shards_refuse_bad_input();
    overfit_one_batch("longhorn,longhorn");
    schedule();
    decay_mask();
    return t_summary("test_train");
}
